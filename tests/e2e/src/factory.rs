//! The real demo factory as the plant under test: `floorwatch up` on a private data
//! directory (a small plant with the simulator, faults made frequent), and the
//! connection it writes to `desktop.json`.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result, bail};
use readmodel_contract::{Changes, ReadModel};
use supervisor::config::{Connection, DesktopFile};
use tokio::process::{Child, Command};

/// A running `floorwatch up`.
pub struct FactoryPlant {
    bin: PathBuf,
    dir: PathBuf,
    config: PathBuf,
    child: Option<Child>,
    connection: Connection,
}

/// The `floorwatch` binary: `FLOORWATCH_BIN`, else the workspace's debug build.
pub fn floorwatch_bin() -> PathBuf {
    std::env::var_os("FLOORWATCH_BIN")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| crate::repo_root().join("target/debug/floorwatch"))
}

impl FactoryPlant {
    /// Starts one plant of `sensors` sensors on `lines` lines, faults `fault_rate_scale`
    /// times as frequent as by default, and waits for its `desktop.json`.
    pub async fn start(dir: &Path, sensors: u32, lines: u32, fault_rate_scale: f64) -> Result<FactoryPlant> {
        let bin = floorwatch_bin();
        if !bin.is_file() {
            bail!("{} is not built (cargo xtask e2e builds it)", bin.display());
        }
        std::fs::create_dir_all(dir)?;
        // The shipped defaults with free ports and a small cluster, so tests never collide.
        let defaults = std::fs::read_to_string(crate::repo_root().join("assets/floorwatch.toml"))?;
        let config = dir.join("floorwatch.toml");
        std::fs::write(
            &config,
            defaults
                .replace("http_base_port = 8080", "http_base_port = 0")
                .replace("http_port = 8090", "http_port = 0")
                .replace("shared_buffers_mb = 512", "shared_buffers_mb = 128"),
        )?;
        let log = std::fs::File::create(dir.join("up.log"))?;
        let started = SystemTime::now();
        let child = Command::new(&bin)
            .arg("--data-dir")
            .arg(dir)
            .arg("--config")
            .arg(&config)
            .args(["up", "--plants", "1", "--plain"])
            .args(["--sensors-per-plant", &sensors.to_string(), "--lines-per-plant", &lines.to_string()])
            .args(["--fault-rate-scale", &fault_rate_scale.to_string()])
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {} up", bin.display()))?;
        let mut plant =
            FactoryPlant { bin, dir: dir.to_path_buf(), config, child: Some(child), connection: Connection::default() };
        let desktop = dir.join("desktop.json");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(180);
        loop {
            if let Some(child) = plant.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                let log = std::fs::read_to_string(dir.join("up.log")).unwrap_or_default();
                bail!("floorwatch up stopped ({status}):\n{log}");
            }
            let fresh = std::fs::metadata(&desktop).and_then(|m| m.modified()).is_ok_and(|t| t >= started);
            if fresh
                && let Ok(text) = std::fs::read_to_string(&desktop)
                && let Ok(file) = DesktopFile::parse(&text)
                && let Some(c) = file.first_connection()
            {
                plant.connection = c;
                break;
            }
            if tokio::time::Instant::now() > deadline {
                bail!("floorwatch up wrote no desktop.json within 180 s; see {}", dir.join("up.log").display());
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        // desktop.json comes first; the plant node then installs its read models and
        // publishes the layout.
        loop {
            if plant.rows(ReadModel::Machines).await.is_ok_and(|r| !r.machines.is_empty()) {
                return Ok(plant);
            }
            if tokio::time::Instant::now() > deadline {
                bail!("the factory's plant published no machines within 180 s; see {}", dir.join("up.log").display());
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    pub fn connection(&self) -> Connection {
        self.connection.clone()
    }

    /// Rows of one read model, read as the app's role reads them.
    pub async fn rows(&self, model: ReadModel) -> Result<Changes> {
        let client = pgcluster::testdb::connect(&self.connection.database_url).await?;
        Ok(readmodel_contract::read_since(&client, model, 0).await?)
    }

    pub async fn anomaly_state(&self, anomaly_id: &str) -> Result<String> {
        let rows = self.rows(ReadModel::Anomalies).await?.anomalies;
        let anomaly = rows.into_iter().find(|a| a.anomaly_id == anomaly_id);
        Ok(anomaly.with_context(|| format!("no anomaly {anomaly_id} in the read models"))?.state)
    }

    fn db(&self, action: &str) -> Result<()> {
        let status = std::process::Command::new(&self.bin)
            .arg("--data-dir")
            .arg(&self.dir)
            .arg("--config")
            .arg(&self.config)
            .args(["db", action])
            .stdout(Stdio::null())
            .status()?;
        if !status.success() {
            bail!("floorwatch db {action} failed ({status})");
        }
        Ok(())
    }

    /// Stops the factory's PostgreSQL under it (the factory keeps running).
    pub fn stop_database(&self) -> Result<()> {
        self.db("stop")
    }

    pub fn start_database(&self) -> Result<()> {
        self.db("start")
    }

    /// Stops the factory (SIGTERM, as Ctrl-C) and its cluster.
    pub async fn stop(mut self) -> Result<()> {
        if let Some(mut child) = self.child.take() {
            if let Some(pid) = child.id() {
                let _ =
                    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), nix::sys::signal::Signal::SIGINT);
            }
            if tokio::time::timeout(Duration::from_secs(30), child.wait()).await.is_err() {
                let _ = child.kill().await;
            }
        }
        self.db("stop")
    }
}

impl Drop for FactoryPlant {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.start_kill();
            let _ = self.db("stop");
        }
    }
}
