//! Fresh databases for tests: one private cluster per test process, one new database
//! per test.
//!
//! Set `FLOORWATCH_TEST_DATABASE_URL` (a superuser URL of a server you run) to use that
//! server instead of starting a cluster; each test still gets its own database.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};

use anyhow::{Context, Result, anyhow};
use tokio_postgres::{Client, NoTls};

use crate::{AttachedServer, Cluster, Options, url_with_database};

enum Server {
    Private(AttachedServer),
    External(String),
}

static SERVER: OnceLock<Result<Server, String>> = OnceLock::new();
static COUNTER: AtomicU32 = AtomicU32::new(0);

fn server() -> Result<&'static Server> {
    SERVER
        .get_or_init(|| start_server().map_err(|e| format!("{e:#}")))
        .as_ref()
        .map_err(|e| anyhow!("test PostgreSQL unavailable: {e}"))
}

fn start_server() -> Result<Server> {
    if let Ok(url) = std::env::var("FLOORWATCH_TEST_DATABASE_URL") {
        return Ok(Server::External(url));
    }
    let root = std::env::temp_dir();
    remove_abandoned_clusters(&root);
    let dir = root.join(format!("floorwatch-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let cluster = Cluster::new(&dir, Options::for_tests())?;
    Ok(Server::Private(cluster.start_attached()?))
}

/// Clusters of earlier test processes that are gone (their servers died with them).
fn remove_abandoned_clusters(root: &std::path::Path) {
    let Ok(entries) = std::fs::read_dir(root) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) =
            name.to_str().and_then(|n| n.strip_prefix("floorwatch-test-")).and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

fn url_for(database: &str) -> Result<String> {
    match server()? {
        Server::Private(s) => s.url(database),
        Server::External(url) => url_with_database(url, database),
    }
}

/// A database created for one test.
#[derive(Debug, Clone)]
pub struct TestDb {
    pub name: String,
    pub url: String,
}

impl TestDb {
    /// Creates a new, empty database on the test server.
    pub async fn new() -> Result<TestDb> {
        let admin_url = url_for("postgres")?;
        let admin = connect(&admin_url).await?;
        let name = format!("t{}_{}", std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed));
        admin.batch_execute(&format!("CREATE DATABASE {name}")).await.with_context(|| format!("creating {name}"))?;
        Ok(TestDb { url: url_for(&name)?, name })
    }

    /// A new connection to this database (its connection task runs on the current runtime).
    pub async fn connect(&self) -> Result<Client> {
        connect(&self.url).await
    }

    /// A superuser URL for another database on the same server.
    pub fn url_of(&self, database: &str) -> Result<String> {
        url_for(database)
    }
}

/// Opens a connection and drives it on the current runtime.
pub async fn connect(url: &str) -> Result<Client> {
    let (client, connection) = tokio_postgres::connect(url, NoTls).await.context("connecting to the test database")?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(client)
}
