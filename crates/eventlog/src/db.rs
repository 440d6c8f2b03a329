//! A connection pool to one database (a plant's or the cloud's), its migrations, and
//! LISTEN connections.

use std::time::Duration;

use anyhow::{Context, Result};
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use futures_util::StreamExt;
use tokio::sync::mpsc;
use tokio_postgres::{AsyncMessage, Config, NoTls};

mod embedded {
    refinery::embed_migrations!("migrations");
}

/// Session advisory lock key that serialises migration runs on one database.
const MIGRATION_LOCK: i64 = 0x666c_6f6f_7277_0001;

/// One database: a pool for ordinary work and its configuration for dedicated
/// connections (LISTEN).
#[derive(Clone)]
pub struct Database {
    pool: Pool,
    config: Config,
}

impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Database").field("dbname", &self.config.get_dbname()).finish_non_exhaustive()
    }
}

impl Database {
    /// A pool of up to `max_connections` connections to `url`; nothing is opened yet.
    pub fn new(url: &str, max_connections: usize) -> Result<Database> {
        let config: Config = url.parse().context("parsing the database URL")?;
        Database::from_config(config, max_connections)
    }

    fn from_config(mut config: Config, max_connections: usize) -> Result<Database> {
        if config.get_application_name().is_none() {
            config.application_name("floorwatch");
        }
        config.connect_timeout(Duration::from_secs(10));
        let manager =
            Manager::from_config(config.clone(), NoTls, ManagerConfig { recycling_method: RecyclingMethod::Fast });
        let pool = Pool::builder(manager)
            .max_size(max_connections)
            .wait_timeout(Some(Duration::from_secs(30)))
            .create_timeout(Some(Duration::from_secs(10)))
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .build()
            .context("building the connection pool")?;
        Ok(Database { pool, config })
    }

    /// Opens the pool and applies the event log's migrations.
    pub async fn connect_and_migrate(url: &str, max_connections: usize) -> Result<Database> {
        let db = Database::new(url, max_connections)?;
        db.migrate().await?;
        Ok(db)
    }

    /// A pool to the same database as another role: how a service that was prepared by the
    /// database's owner (migrations) then runs with only its own role's privileges.
    pub fn as_role(&self, user: &str, password: &str, max_connections: usize) -> Result<Database> {
        let mut config = self.config.clone();
        config.user(user).password(password);
        Database::from_config(config, max_connections)
    }

    /// Another pool to the same database as the same role, with nothing opened yet: for a
    /// task that connects now and then and must not keep connections between its runs.
    pub fn another_pool(&self, max_connections: usize) -> Result<Database> {
        Database::from_config(self.config.clone(), max_connections)
    }

    /// The most connections this pool opens.
    pub fn max_connections(&self) -> usize {
        self.pool.status().max_size
    }

    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub async fn client(&self) -> Result<deadpool_postgres::Object> {
        self.pool.get().await.context("getting a database connection")
    }

    /// Applies the event log's migrations (idempotent; safe to run from several
    /// processes at once).
    pub async fn migrate(&self) -> Result<()> {
        self.run_migrations(embedded::migrations::runner(), "eventlog_schema_history").await
    }

    /// Applies another component's migrations under the same lock, each component with
    /// its own history table.
    pub async fn run_migrations(&self, runner: refinery::Runner, history_table: &str) -> Result<()> {
        let mut client = self.client().await?;
        client.execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK]).await?;
        let mut runner = runner.set_grouped(true);
        runner.set_migration_table_name(history_table);
        let result = runner
            .run_async(&mut **client)
            .await
            .with_context(|| format!("applying migrations recorded in {history_table}"));
        client.execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK]).await?;
        result.map(|_| ())
    }

    /// A dedicated connection that LISTENs on `channels`; notifications arrive on the
    /// returned receiver, which closes when the connection is lost.
    pub async fn listen(&self, channels: &[&str]) -> Result<Listener> {
        let (client, mut connection) = self.config.connect(NoTls).await.context("opening a LISTEN connection")?;
        let (tx, rx) = mpsc::unbounded_channel();
        let task = tokio::spawn(async move {
            let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
            while let Some(message) = messages.next().await {
                match message {
                    Ok(AsyncMessage::Notification(n)) => {
                        if tx
                            .send(Notification { channel: n.channel().to_owned(), payload: n.payload().to_owned() })
                            .is_err()
                        {
                            break;
                        }
                    }
                    Ok(_) => {}
                    Err(e) => {
                        tracing::warn!(error = %e, "LISTEN connection lost");
                        break;
                    }
                }
            }
        });
        for channel in channels {
            client.batch_execute(&format!("LISTEN {}", quote_ident(channel))).await?;
        }
        Ok(Listener { _client: client, rx, task })
    }
}

/// One NOTIFY received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    pub channel: String,
    pub payload: String,
}

/// A LISTEN connection; dropping it closes the connection.
#[derive(Debug)]
pub struct Listener {
    _client: tokio_postgres::Client,
    rx: mpsc::UnboundedReceiver<Notification>,
    task: tokio::task::JoinHandle<()>,
}

impl Listener {
    /// The next notification, or `None` once the connection is lost.
    pub async fn recv(&mut self) -> Option<Notification> {
        self.rx.recv().await
    }

    /// Waits for a notification or the timeout. Ok(true): something arrived (any
    /// queued notifications are drained, since one wake-up covers them all);
    /// Ok(false): the timeout passed; Err: the connection is lost.
    pub async fn wait(&mut self, timeout: Duration) -> Result<bool> {
        match tokio::time::timeout(timeout, self.rx.recv()).await {
            Ok(Some(_)) => {
                while self.rx.try_recv().is_ok() {}
                Ok(true)
            }
            Ok(None) => anyhow::bail!("the LISTEN connection was lost"),
            Err(_) => Ok(false),
        }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Runs `sql` that changes an object the whole server shares (a role), from one of the
/// several databases that may change it at the same instant (every plant node sets the
/// reader's password at start): see [`server_wide`].
pub async fn execute_server_wide(db: &Database, sql: &str) -> Result<()> {
    server_wide(|| async {
        let client = db.client().await?;
        client.batch_execute(sql).await.context("changing a server-wide object (a role)")
    })
    .await
}

/// Runs `change`, which changes objects the whole server shares (roles, their grants),
/// until it is not refused for a concurrent change of the same catalog rows. PostgreSQL
/// does not queue two updates of one role: when databases change it at the same instant
/// (plants started together), the later one fails with "tuple concurrently updated" once
/// the first commits. That failure is transient by nature, so `change` (which must be
/// repeatable) is run again, with a short random back-off; any other error is returned.
/// The one place such a change is retried.
pub async fn server_wide<T, F, Fut>(mut change: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T>>,
{
    const ATTEMPTS: u32 = 20;
    let mut attempt = 0;
    loop {
        attempt += 1;
        match change().await {
            Ok(done) => return Ok(done),
            Err(e) if attempt < ATTEMPTS && is_concurrent_catalog_update(&e) => {
                let jitter_ms = u64::from(rand_byte()) % 50;
                tracing::debug!(attempt, "another database changed the same server-wide object; retrying");
                tokio::time::sleep(Duration::from_millis(10 * u64::from(attempt) + jitter_ms)).await;
            }
            Err(e) => return Err(e),
        }
    }
}

/// PostgreSQL's answer to two transactions updating one catalog row at once, wherever in
/// `e`'s chain it is.
fn is_concurrent_catalog_update(e: &anyhow::Error) -> bool {
    e.chain().filter_map(|c| c.downcast_ref::<tokio_postgres::Error>()).any(|e| {
        e.code() == Some(&tokio_postgres::error::SqlState::INTERNAL_ERROR)
            && e.as_db_error().is_some_and(|d| d.message().contains("tuple concurrently updated"))
    })
}

/// A byte that differs between processes and calls, to spread retries apart.
fn rand_byte() -> u8 {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    (nanos ^ std::process::id()).to_le_bytes()[0]
}

/// Quotes an SQL identifier (for LISTEN, which takes no parameters).
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}
