//! `floorwatch bench …`: benchmarks that write their figures to a JSON file.
//!
//! Each runs on a throw-away private cluster (started and stopped by the benchmark)
//! unless `--database-url` names a server, where it creates a fresh database.

mod api;
mod cpu;
mod forward;
mod freshness;
mod ingest;
mod log;
mod rebuild;
mod stack;
mod timetravel;
mod up;

use anyhow::Result;
use pgcluster::{AttachedServer, Cluster, Options};

use crate::cli::{BenchCommand, Global};
use crate::config::Config;

pub async fn run(cmd: BenchCommand, global: &Global, config: &Config) -> Result<()> {
    if let BenchCommand::Detect(args) = &cmd {
        // Pure computation: no database.
        let start = std::time::Instant::now();
        let table = anomaly_eval::cli::run_bench(&anomaly_eval::cli::BenchArgs::new(Some(args.json.clone())), || {
            start.elapsed()
        })?;
        print!("{table}");
        return Ok(());
    }
    if let BenchCommand::Up(args) = cmd {
        // A whole `floorwatch up` in its own data directory, with its own cluster.
        return up::run(args).await;
    }
    let server = BenchServer::start(global, config)?;
    match cmd {
        BenchCommand::Log(args) => log::run(args, &server).await,
        BenchCommand::Ingest(args) => ingest::run(args, &server).await,
        BenchCommand::Freshness(args) => freshness::run(args, &server, config).await,
        BenchCommand::Rebuild(args) => rebuild::rebuild(args, &server, config).await,
        BenchCommand::Storage(args) => rebuild::storage(args, &server, config).await,
        BenchCommand::Api(args) => api::run(args, &server, config).await,
        BenchCommand::Forward(args) => forward::run(args, &server, config).await,
        BenchCommand::Timetravel(args) => timetravel::run(args, &server, config).await,
        BenchCommand::Detect(_) => unreachable!("handled above without a database"),
        BenchCommand::Up(_) => unreachable!("handled above with its own cluster"),
    }
}

/// The server a benchmark measures.
pub struct BenchServer {
    attached: Option<AttachedServer>,
    /// The private cluster's directory, removed when the benchmark ends.
    dir: Option<std::path::PathBuf>,
    admin_url: String,
}

impl Drop for BenchServer {
    fn drop(&mut self) {
        // The server stops first; then its files go (a benchmark's cluster is a gigabyte).
        if let Some(attached) = self.attached.take() {
            drop(attached);
            if let Some(dir) = &self.dir {
                let _ = std::fs::remove_dir_all(dir);
            }
        }
    }
}

/// Directories a benchmark makes in the temporary directory: `floorwatch-bench-…-<pid>`.
const SCRATCH_PREFIX: &str = "floorwatch-bench-";

/// Removes what benchmarks that were interrupted left behind: scratch directories whose
/// process is gone.
fn sweep_leftovers() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str().and_then(|n| n.strip_prefix(SCRATCH_PREFIX)) else { continue };
        let Some(pid) = name.rsplit('-').next().and_then(|p| p.parse::<i32>().ok()) else { continue };
        let gone = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None) == Err(nix::errno::Errno::ESRCH);
        if gone && pid > 0 {
            eprintln!("removing {}, left by an interrupted benchmark", entry.path().display());
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

impl BenchServer {
    fn start(global: &Global, config: &Config) -> Result<BenchServer> {
        if let Some(url) = &global.database_url {
            return Ok(BenchServer { attached: None, dir: None, admin_url: url.clone() });
        }
        sweep_leftovers();
        let dir = std::env::temp_dir().join(format!("{SCRATCH_PREFIX}{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        // The same settings as the product's cluster, durability included.
        let options = Options {
            durable: true,
            shared_buffers_mb: config.cluster.shared_buffers_mb,
            max_connections: config.cluster.max_connections,
        };
        eprintln!("starting a private PostgreSQL cluster in {}", dir.display());
        let attached = Cluster::new(&dir, options)?.start_attached()?;
        let admin_url = attached.url("postgres")?;
        Ok(BenchServer { attached: Some(attached), dir: Some(dir), admin_url })
    }

    pub fn admin_url(&self) -> &str {
        &self.admin_url
    }

    /// The private cluster's postmaster, whose process tree is PostgreSQL's CPU.
    pub fn postmaster_pid(&self) -> Option<u32> {
        self.attached.as_ref().and_then(AttachedServer::pid)
    }

    /// A new, empty database for one benchmark.
    pub async fn fresh_database(&self, name: &str) -> Result<String> {
        let name = format!("bench_{name}_{}", std::process::id());
        let url = pgcluster::url_with_database(&self.admin_url, &name)?;
        let (client, conn) = tokio_postgres::connect(&self.admin_url, tokio_postgres::NoTls).await?;
        let task = tokio::spawn(conn);
        client.batch_execute(&format!("DROP DATABASE IF EXISTS {name}")).await?;
        drop(client);
        let _ = task.await;
        pgcluster::ensure_database(&self.admin_url, &name).await?;
        Ok(url)
    }
}

/// Nearest-rank percentile of a sorted slice.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// The machine's load average (1, 5, 15 minutes), as `uptime` shows it: figures taken on
/// a shared machine are read beside it.
pub fn load_average() -> serde_json::Value {
    let text = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let v: Vec<f64> = text.split_whitespace().take(3).filter_map(|x| x.parse().ok()).collect();
    serde_json::json!(v)
}

/// Writes `value` as pretty JSON to `path`.
pub fn write_json(path: &std::path::Path, value: &serde_json::Value) -> Result<()> {
    std::fs::write(path, serde_json::to_string_pretty(value)? + "\n")?;
    eprintln!("figures written to {}", path.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::percentile;

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 50.0), 50.0);
        assert_eq!(percentile(&v, 99.0), 99.0);
        assert_eq!(percentile(&v, 100.0), 100.0);
        assert_eq!(percentile(&[7.0], 99.0), 7.0);
        assert!(percentile(&[], 50.0).is_nan());
    }
}
