//! Where Floorwatch's databases live: the private cluster in the data directory, or a
//! PostgreSQL server the user names with `--database-url`.

use std::path::PathBuf;

use anyhow::{Context, Result};
use pgcluster::{Cluster, Options};

use crate::config::Config;

/// The database of plant `n` (1-based).
pub fn plant_database(plant: u32) -> String {
    format!("floorwatch_p{plant}")
}

/// The data directory of a command.
pub fn data_dir(global: &crate::cli::Global) -> PathBuf {
    global.data_dir.clone().unwrap_or_else(default_data_dir)
}

/// The data directory when none is given: FLOORWATCH_DATA_DIR, else /var/lib/floorwatch
/// for root (the server user must be able to reach it), else the XDG data directory.
pub fn default_data_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("FLOORWATCH_DATA_DIR") {
        return PathBuf::from(dir);
    }
    if pgcluster::running_as_root() {
        return PathBuf::from("/var/lib/floorwatch");
    }
    let base = std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))
        .unwrap_or_else(std::env::temp_dir);
    base.join("floorwatch")
}

#[derive(Debug, Clone)]
pub enum Server {
    Private(Cluster),
    External(String),
}

impl Server {
    pub fn new(data_dir: Option<PathBuf>, database_url: Option<String>, config: &Config) -> Result<Server> {
        if let Some(url) = database_url {
            return Ok(Server::External(url));
        }
        let dir = data_dir.unwrap_or_else(default_data_dir).join("postgres");
        let options = Options {
            durable: true,
            shared_buffers_mb: config.cluster.shared_buffers_mb,
            max_connections: config.cluster.max_connections,
        };
        Ok(Server::Private(Cluster::new(dir, options)?))
    }

    /// Starts the private cluster if it is not running; returns whether this call started it.
    pub fn ensure_running(&self) -> Result<bool> {
        match self {
            Server::External(_) => Ok(false),
            // Even a server that looks running is waited for: it may be dying (killed a
            // moment ago) or replaying its WAL after a crash.
            Server::Private(cluster) => Ok(cluster
                .ensure_started()
                .with_context(|| format!("starting PostgreSQL in {}", cluster.dir().display()))?
                .1),
        }
    }

    /// The URL of `database` on this server, creating the database if it is missing.
    pub async fn database(&self, database: &str) -> Result<String> {
        let admin = self.admin_url()?;
        pgcluster::ensure_database(&admin, database).await?;
        pgcluster::url_with_database(&admin, database)
    }

    /// The URL of an existing database (not created when missing).
    pub fn existing_database(&self, database: &str) -> Result<String> {
        pgcluster::url_with_database(&self.admin_url()?, database)
    }

    /// The URL desktop clients use for `database`: the read-only role over TCP.
    pub fn reader_url(&self, database: &str, password: &str) -> Result<String> {
        let config: tokio_postgres::Config = self.admin_url()?.parse()?;
        let host = match config.get_hosts().first() {
            Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
            _ => "127.0.0.1".to_owned(),
        };
        let port = config.get_ports().first().copied().unwrap_or(5432);
        Ok(format!("postgresql://{}:{password}@{host}:{port}/{database}", readmodels::READER_ROLE))
    }

    fn admin_url(&self) -> Result<String> {
        match self {
            Server::External(url) => Ok(url.clone()),
            Server::Private(cluster) => cluster.url("postgres"),
        }
    }
}
