//! The factory deployed as an operator deploys it, one process per part: `floorwatch
//! cloud`, a `floorwatch plant` and a `floorwatch forward` per plant, and `floorwatch
//! simulate` sending to the plants, on the data directory's private cluster. Each part can
//! be killed with SIGKILL and started again on its own, PostgreSQL too; the simulator
//! always starts again at the same simulated instant (a quarter of an hour before the
//! first start, caught up at once) and seed, so it sends what an uninterrupted simulator
//! would (the plants keep one copy of each upload).
#![allow(clippy::unwrap_used, dead_code)]

use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};

use super::{FactoryRun, PLANTS, SENSORS_PER_PLANT, tail};

/// A part of the factory that runs as its own process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Part {
    Cloud,
    Plant(u32),
    Forwarder(u32),
    Simulator,
}

impl Part {
    /// What a kill of this part is counted as.
    pub fn kind(self) -> &'static str {
        match self {
            Part::Cloud => "cloud node",
            Part::Plant(_) => "plant node",
            Part::Forwarder(_) => "forwarder",
            Part::Simulator => "simulator",
        }
    }

    fn file_name(self) -> String {
        match self {
            Part::Cloud => "cloud".into(),
            Part::Plant(n) => format!("plant-{n}"),
            Part::Forwarder(n) => format!("forward-{n}"),
            Part::Simulator => "simulate".into(),
        }
    }

    /// Every part of a factory of `PLANTS` plants.
    pub fn all() -> Vec<Part> {
        let mut parts = vec![Part::Cloud];
        parts.extend((1..=PLANTS).map(Part::Plant));
        parts.extend((1..=PLANTS).map(Part::Forwarder));
        parts.push(Part::Simulator);
        parts
    }
}

/// The simulator's fault rates, scaled up so that a run of minutes has a few sensor and
/// machine faults for the anomaly monitor to find (and readings the plants refuse).
pub const FAULT_RATE_SCALE: f64 = 200.0;

/// How far in the past the simulation starts: the gateways catch up on it at once, and the
/// anomaly monitor's detectors have learned their sensors (a few minutes of plant time)
/// before the kills begin.
pub const HISTORY_MS: i64 = 15 * 60_000;

/// How long after PostgreSQL was killed a part may exit by itself (it lost its database)
/// and is started again, as a service manager would; any other exit fails the run.
const DATABASE_OUTAGE_GRACE: Duration = Duration::from_secs(90);

/// The deployed factory.
pub struct Deployment {
    pub run: FactoryRun,
    children: BTreeMap<Part, Child>,
    starts: BTreeMap<Part, u32>,
    plant_ports: BTreeMap<u32, u16>,
    cloud_port: u16,
    forwarder_tokens: BTreeMap<u32, String>,
    /// The simulation's first instant (ms since the epoch) and seed: every start of the
    /// simulator begins there, so a restart re-sends what the plants already have.
    pub sim_start_ms: i64,
    pub seed: u64,
    /// When PostgreSQL was last killed.
    database_killed: Option<Instant>,
    /// Parts that exited after PostgreSQL was killed and were started again.
    pub restarted_after_database: BTreeMap<&'static str, u32>,
}

fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

impl Deployment {
    /// Starts the cluster and then every part, each once the parts it needs are serving.
    pub fn start(run: FactoryRun, seed: u64) -> Result<Deployment> {
        let sim_start_ms = chrono::Utc::now().timestamp_millis().div_euclid(1000) * 1000 - HISTORY_MS;
        let mut d = Deployment {
            run,
            children: BTreeMap::new(),
            starts: BTreeMap::new(),
            plant_ports: (1..=PLANTS).map(|n| Ok((n, free_port()?))).collect::<Result<_>>()?,
            cloud_port: free_port()?,
            forwarder_tokens: BTreeMap::new(),
            sim_start_ms,
            seed,
            database_killed: None,
            restarted_after_database: BTreeMap::new(),
        };
        let out = d.command().args(["db", "start"]).output()?;
        ensure!(out.status.success(), "floorwatch db start: {}", String::from_utf8_lossy(&out.stderr));
        d.spawn(Part::Cloud)?;
        d.wait_listening(Part::Cloud)?;
        for n in 1..=PLANTS {
            let out = d
                .command()
                .args(["cloud", "token", "create", "--role", "forwarder", "--plant", &n.to_string()])
                .output()?;
            ensure!(
                out.status.success(),
                "creating plant {n}'s forwarder token: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            d.forwarder_tokens.insert(n, String::from_utf8(out.stdout)?.trim().to_owned());
        }
        // One after the other: the first start of each writes its secrets.
        for n in 1..=PLANTS {
            d.spawn(Part::Plant(n))?;
            d.wait_listening(Part::Plant(n))?;
        }
        for n in 1..=PLANTS {
            d.spawn(Part::Forwarder(n))?;
        }
        d.spawn(Part::Simulator)?;
        Ok(d)
    }

    fn command(&self) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_floorwatch"));
        c.arg("--data-dir").arg(self.run.data_dir()).arg("--config").arg(&self.run.config).env("RUST_LOG", "warn");
        c
    }

    fn log_path(&self, part: Part) -> std::path::PathBuf {
        let start = self.starts.get(&part).copied().unwrap_or(0);
        self.run.dir.join(format!("{}-{start}.log", part.file_name()))
    }

    /// What the current (or last) start of `part` printed.
    pub fn output(&self, part: Part) -> String {
        std::fs::read_to_string(self.log_path(part)).unwrap_or_default()
    }

    fn spawn(&mut self, part: Part) -> Result<()> {
        ensure!(!self.children.contains_key(&part), "{part:?} is already running");
        *self.starts.entry(part).or_default() += 1;
        let log = std::fs::File::create(self.log_path(part))?;
        let factory =
            ["--plants".to_owned(), PLANTS.to_string(), "--sensors-per-plant".into(), SENSORS_PER_PLANT.to_string()];
        let mut c = self.command();
        match part {
            Part::Cloud => {
                c.args(["cloud", "--listen", &format!("127.0.0.1:{}", self.cloud_port)]);
            }
            Part::Plant(n) => {
                c.args([
                    "plant",
                    "--plant",
                    &n.to_string(),
                    "--listen",
                    &format!("127.0.0.1:{}", self.plant_ports[&n]),
                ]);
                c.args(&factory);
            }
            Part::Forwarder(n) => {
                c.args([
                    "forward",
                    "--plant",
                    &n.to_string(),
                    "--cloud",
                    &format!("http://127.0.0.1:{}", self.cloud_port),
                ]);
                c.args(["--token", &self.forwarder_tokens[&n]]);
            }
            Part::Simulator => {
                let start = chrono::DateTime::from_timestamp_millis(self.sim_start_ms).context("simulation start")?;
                c.args([
                    "simulate",
                    "--fault-rate-scale",
                    &FAULT_RATE_SCALE.to_string(),
                    "--seed",
                    &self.seed.to_string(),
                ]);
                c.args(["--start", &start.to_rfc3339()]);
                c.args(&factory);
                for (n, port) in &self.plant_ports {
                    c.args(["--target", &format!("{n}=http://127.0.0.1:{port}")]);
                }
            }
        }
        let child = c
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {part:?}"))?;
        self.children.insert(part, child);
        Ok(())
    }

    /// Waits until `part` says it listens.
    fn wait_listening(&mut self, part: Part) -> Result<()> {
        let until = Instant::now() + Duration::from_secs(120);
        while !self.output(part).contains("listening on") {
            self.check()?;
            ensure!(Instant::now() < until, "{part:?} did not listen within 120 s:\n{}", tail(&self.output(part), 30));
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(())
    }

    /// SIGKILL to `part`, as a power cut or the OOM killer would.
    pub fn kill(&mut self, part: Part) -> Result<()> {
        let mut child = self.children.remove(&part).with_context(|| format!("{part:?} is not running"))?;
        child.kill()?;
        child.wait()?;
        Ok(())
    }

    /// Starts `part` again after a kill.
    pub fn restart(&mut self, part: Part) -> Result<()> {
        self.spawn(part)
    }

    /// SIGKILL to PostgreSQL's postmaster; then the cluster is started again, as the
    /// operator's service manager would (parts that lost their database meanwhile and
    /// exited are started again by [`Deployment::check`]).
    pub fn kill_postgres_and_restart(&mut self, down: Duration) -> Result<()> {
        self.run.kill_postgres()?;
        self.database_killed = Some(Instant::now());
        std::thread::sleep(down);
        let out = self.command().args(["db", "start"]).output()?;
        ensure!(out.status.success(), "floorwatch db start after a kill: {}", String::from_utf8_lossy(&out.stderr));
        Ok(())
    }

    /// Fails when a part exited by itself, unless PostgreSQL was killed shortly before:
    /// then the part is started again.
    pub fn check(&mut self) -> Result<()> {
        let parts: Vec<Part> = self.children.keys().copied().collect();
        for part in parts {
            let child = self.children.get_mut(&part).context("running")?;
            let Some(status) = child.try_wait()? else { continue };
            self.children.remove(&part);
            let outage = self.database_killed.is_some_and(|t| t.elapsed() < DATABASE_OUTAGE_GRACE);
            if !outage {
                bail!("{part:?} exited ({status}) on start {}:\n{}", self.starts[&part], tail(&self.output(part), 40));
            }
            *self.restarted_after_database.entry(part.kind()).or_default() += 1;
            self.spawn(part)?;
        }
        Ok(())
    }

    /// Waits `d` while checking every part runs.
    pub async fn run_for(&mut self, d: Duration) -> Result<()> {
        let until = Instant::now() + d;
        while Instant::now() < until {
            self.check()?;
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        Ok(())
    }

    /// Waits until every plant's newest reading is at most `fresh` old by the wall clock
    /// and the cloud holds every plant's log up to where it stood when the wait began:
    /// the simulator, the plants, the forwarders and the cloud all work again.
    pub async fn wait_recovered(&mut self, fresh: Duration, timeout: Duration) -> Result<Duration> {
        let began = Instant::now();
        let mut heads: Option<BTreeMap<u32, i64>> = None;
        loop {
            self.check()?;
            if heads.is_none() {
                heads = self.heads().await.ok();
            }
            let plants_fresh = self
                .run
                .reading_ages()
                .await
                .is_ok_and(|ages| ages.len() == PLANTS as usize && ages.values().all(|a| *a <= fresh));
            if plants_fresh
                && let Some(heads) = &heads
                && let Ok(copied) = self.cloud_heads().await
                && heads.iter().all(|(n, h)| copied.get(n).is_some_and(|c| c >= h))
            {
                return Ok(began.elapsed());
            }
            if began.elapsed() > timeout {
                let mut logs = String::new();
                for part in Part::all() {
                    logs.push_str(&format!("--- {part:?}:\n{}\n", tail(&self.output(part), 12)));
                }
                bail!(
                    "the factory did not recover within {timeout:?} (reading ages {:?}, plant heads {heads:?}, in the cloud {:?}):\n{logs}",
                    self.run.reading_ages().await.ok(),
                    self.cloud_heads().await.ok()
                );
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// Each plant's newest log position.
    pub async fn heads(&self) -> Result<BTreeMap<u32, i64>> {
        let mut out = BTreeMap::new();
        for n in 1..=PLANTS {
            let (_db, client) = self.run.log_client(n).await?;
            out.insert(n, eventlog::head_position(&client).await?);
        }
        Ok(out)
    }

    /// Each plant's newest position the cloud's log holds.
    pub async fn cloud_heads(&self) -> Result<BTreeMap<u32, i64>> {
        let url = self.run.cluster()?.url("floorwatch_cloud")?;
        let (cloud, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await?;
        tokio::spawn(conn);
        let mut out = BTreeMap::new();
        for n in 1..=PLANTS {
            let p: Option<i64> = cloud
                .query_one("SELECT max(origin_position) FROM eventlog.all_events WHERE origin = $1", &[&(n as i16)])
                .await?
                .get(0);
            out.insert(n, p.unwrap_or(0));
        }
        Ok(out)
    }

    /// Ctrl-C to every part, the simulator first (it must stop cleanly: no upload was
    /// refused since its last start), then stops the cluster.
    pub fn stop(&mut self) -> Result<()> {
        let mut order = vec![Part::Simulator];
        order.extend((1..=PLANTS).map(Part::Forwarder));
        order.extend((1..=PLANTS).map(Part::Plant));
        order.push(Part::Cloud);
        for part in order {
            let mut child = self.children.remove(&part).with_context(|| format!("{part:?} is not running"))?;
            nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), nix::sys::signal::Signal::SIGINT)?;
            let deadline = Instant::now() + Duration::from_secs(120);
            loop {
                if let Some(status) = child.try_wait()? {
                    ensure!(
                        status.success(),
                        "{part:?} did not stop cleanly ({status}):\n{}",
                        tail(&self.output(part), 40)
                    );
                    break;
                }
                if Instant::now() > deadline {
                    let _ = child.kill();
                    bail!("{part:?} did not stop within 120 s of Ctrl-C:\n{}", tail(&self.output(part), 40));
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        self.run.stop_database()
    }
}

impl Drop for Deployment {
    fn drop(&mut self) {
        for (_, mut child) in std::mem::take(&mut self.children) {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
