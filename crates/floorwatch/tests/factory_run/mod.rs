//! Runs `floorwatch up` as an operator does — started, killed, paused, started again — in
//! its own data directory, and checks what it left: the plants' logs and read models.
//! Shared by the kill test and the pause-and-resume test; a longer chaos run grows from
//! the same pieces (more kills, more kinds of kill, more invariants).
#![allow(clippy::unwrap_used, dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};

pub mod deployment;
pub mod invariants;

pub const PLANTS: u32 = 2;
pub const SENSORS_PER_PLANT: u32 = 300;

/// A small factory in its own data directory, on free ports.
pub struct FactoryRun {
    pub dir: PathBuf,
    config: PathBuf,
    up: Option<Child>,
    starts: u32,
    /// When the current `up` was started (ms since the epoch).
    started_ms: i64,
}

impl FactoryRun {
    pub fn new(name: &str) -> Result<FactoryRun> {
        // The cluster's files belong to the server user, who must reach the directory.
        let dir = std::env::temp_dir().join(format!("floorwatch-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)?;
        let config = dir.join("floorwatch.toml");
        let defaults = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../assets/floorwatch.toml"))?;
        // Any free port: never collide with another factory on this machine.
        let text = defaults.replace("http_base_port = 8080", "http_base_port = 0");
        ensure!(text != defaults, "the shipped configuration no longer sets http_base_port = 8080");
        let plants_only = text.clone();
        let text = text.replace("http_port = 8090", "http_port = 0");
        ensure!(text != plants_only, "the shipped configuration no longer sets the cloud's http_port = 8090");
        std::fs::write(&config, text)?;
        Ok(FactoryRun { dir, config, up: None, starts: 0, started_ms: 0 })
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// Starts `floorwatch up` (faults off, so every sensor reports every second).
    pub fn start(&mut self) -> Result<()> {
        ensure!(self.up.is_none(), "already running");
        self.starts += 1;
        self.started_ms = chrono::Utc::now().timestamp_millis();
        let log = std::fs::File::create(self.dir.join(format!("up-{}.log", self.starts)))?;
        let child = Command::new(env!("CARGO_BIN_EXE_floorwatch"))
            .arg("--data-dir")
            .arg(self.data_dir())
            .arg("--config")
            .arg(&self.config)
            .args(["up", "--plain", "--fault-rate-scale", "0"])
            .args(["--plants", &PLANTS.to_string(), "--sensors-per-plant", &SENSORS_PER_PLANT.to_string()])
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("starting floorwatch up")?;
        self.up = Some(child);
        Ok(())
    }

    /// What the current (or last) start printed.
    pub fn output(&self) -> String {
        std::fs::read_to_string(self.dir.join(format!("up-{}.log", self.starts))).unwrap_or_default()
    }

    /// Fails when `up` has exited: it must run until it is stopped.
    pub fn check_running(&mut self) -> Result<()> {
        let child = self.up.as_mut().context("not started")?;
        if let Some(status) = child.try_wait()? {
            self.up = None;
            bail!("floorwatch up exited ({status}) on start {}:\n{}", self.starts, tail(&self.output(), 40));
        }
        Ok(())
    }

    /// Waits until every plant has a reading sent by this start (newer than it) and
    /// from the last `fresh` of wall-clock time.
    pub async fn wait_all_fresh(&mut self, fresh: Duration, timeout: Duration) -> Result<Duration> {
        let began = Instant::now();
        loop {
            self.check_running()?;
            let since_start =
                Duration::from_millis((chrono::Utc::now().timestamp_millis() - self.started_ms).max(0) as u64);
            if let Ok(ages) = self.reading_ages().await
                && ages.len() == PLANTS as usize
                && ages.values().all(|a| *a <= fresh && *a < since_start)
            {
                return Ok(began.elapsed());
            }
            if began.elapsed() > timeout {
                bail!(
                    "not every plant reached real time within {timeout:?} (ages {:?}):\n{}",
                    self.reading_ages().await.ok(),
                    tail(&self.output(), 40)
                );
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// How old each plant's newest reading is, by the wall clock.
    pub async fn reading_ages(&self) -> Result<BTreeMap<u32, Duration>> {
        let mut out = BTreeMap::new();
        let now = chrono::Utc::now().timestamp_millis();
        for n in 1..=PLANTS {
            let client = self.connect(n).await?;
            let newest: Option<chrono::DateTime<chrono::Utc>> =
                client.query_one("SELECT max(newest_reading) FROM readmodel.plant_status", &[]).await?.get(0);
            if let Some(t) = newest {
                out.insert(n, Duration::from_millis((now - t.timestamp_millis()).max(0) as u64));
            }
        }
        Ok(out)
    }

    fn cluster(&self) -> Result<pgcluster::Cluster> {
        pgcluster::Cluster::new(self.data_dir().join("postgres"), pgcluster::Options::default())
    }

    pub async fn connect(&self, plant: u32) -> Result<tokio_postgres::Client> {
        let url = self.cluster()?.url(&format!("floorwatch_p{plant}"))?;
        let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await?;
        tokio::spawn(conn);
        Ok(client)
    }

    /// A pooled connection to plant `plant`'s database, as the log's readers take.
    pub async fn log_client(&self, plant: u32) -> Result<(eventlog::Database, eventlog::Client)> {
        let url = self.cluster()?.url(&format!("floorwatch_p{plant}"))?;
        let db = eventlog::Database::new(&url, 2)?;
        let client = db.client().await?;
        Ok((db, client))
    }

    /// SIGKILL to `up`, as a power cut or the OOM killer would.
    pub fn kill_up(&mut self) -> Result<()> {
        let mut child = self.up.take().context("not running")?;
        child.kill()?;
        child.wait()?;
        Ok(())
    }

    /// SIGKILL to PostgreSQL's postmaster; its other processes are left to notice.
    pub fn kill_postgres(&self) -> Result<()> {
        let pid_file = self.data_dir().join("postgres/data/postmaster.pid");
        let text = std::fs::read_to_string(&pid_file).context("reading postmaster.pid")?;
        let pid: i32 = text.lines().next().context("an empty postmaster.pid")?.trim().parse()?;
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL)?;
        Ok(())
    }

    /// Ctrl-C, and waits for the clean stop (which stops PostgreSQL too).
    pub fn stop(&mut self) -> Result<()> {
        let mut child = self.up.take().context("not running")?;
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), nix::sys::signal::Signal::SIGINT)?;
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            if let Some(status) = child.try_wait()? {
                ensure!(status.success(), "a clean stop failed ({status}):\n{}", tail(&self.output(), 40));
                return Ok(());
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                bail!("floorwatch up did not stop within 120 s of Ctrl-C:\n{}", tail(&self.output(), 40));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Starts the stopped cluster for the checks (not the factory).
    pub fn start_database(&self) -> Result<()> {
        self.cluster()?.start()?;
        Ok(())
    }

    pub fn stop_database(&self) -> Result<()> {
        self.cluster()?.stop()
    }

    /// Every reading in plant `plant`'s log, per gateway: (timestamps, readings), checked
    /// for doubles. Gateways send one batch per second with one reading per sensor.
    pub async fn readings(&self, plant: u32) -> Result<ReadingsCheck> {
        let (_db, client) = self.log_client(plant).await?;
        let mut per_gateway: BTreeMap<String, BTreeMap<i64, u64>> = BTreeMap::new();
        let mut doubled = 0u64;
        let mut seen: BTreeSet<(u32, i64)> = BTreeSet::new();
        each_stored_batch(&client, |e, readings| {
            let seconds = per_gateway.entry(e.stream.to_string()).or_default();
            for r in readings {
                if !seen.insert((r.sensor, r.ts_ms)) {
                    doubled += 1;
                }
                *seconds.entry(r.ts_ms).or_default() += 1;
            }
        })
        .await?;
        let mut gaps = Vec::new();
        for (gateway, seconds) in &per_gateway {
            let (Some(first), Some(last)) = (seconds.keys().next(), seconds.keys().next_back()) else { continue };
            let expected = (last - first) / 1000 + 1;
            if seconds.len() as i64 != expected {
                let missing: Vec<i64> =
                    (0..expected).map(|i| first + i * 1000).filter(|t| !seconds.contains_key(t)).take(5).collect();
                gaps.push(format!("{gateway}: {} of {expected} seconds, missing e.g. {missing:?}", seconds.len()));
            }
        }
        Ok(ReadingsCheck { readings: seen.len() as u64, doubled, gaps, gateways: per_gateway.len() })
    }

    /// A digest of every read-model table of plant `plant` but the supervisor's task rows
    /// (the node's task states, written by its supervisor and not derived from the log).
    /// Time travel's checkpoints are compared too: the live model is frozen at exact
    /// multiples of the interval, wherever the projection's batches end.
    pub async fn read_model_digests(&self, plant: u32) -> Result<BTreeMap<String, (i64, String)>> {
        digests(&self.connect(plant).await?, "readmodel", &["node_tasks"]).await
    }

    /// A digest of every read-model table of the cloud (schema `cloud`) but the model
    /// registry (`models`): its rows are models trained by `floorwatch cloud train` and
    /// activated by an operator, not projected from the log, and a rebuild leaves them as
    /// they are. A projection's `updated_at` (wall clock) is left out as for the plants.
    pub async fn cloud_read_model_digests(&self) -> Result<BTreeMap<String, (i64, String)>> {
        digests(&self.connect_cloud().await?, "cloud", &["models"]).await
    }

    pub async fn connect_cloud(&self) -> Result<tokio_postgres::Client> {
        let url = self.cluster()?.url("floorwatch_cloud")?;
        let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await?;
        tokio::spawn(conn);
        Ok(client)
    }

    /// Applies what the projections had not applied when the factory stopped (a node
    /// stops its projections where they are), as the next start would.
    pub async fn catch_up_projections(&self, plant: u32) -> Result<()> {
        let url = self.cluster()?.url(&format!("floorwatch_p{plant}"))?;
        let db = eventlog::Database::new(&url, 2)?;
        readmodels::catch_up(&db, readmodels::ProjectionConfig::new(plant as u16)).await?;
        Ok(())
    }

    /// The same for the cloud's projections, with the cloud node's settings.
    pub async fn catch_up_cloud_projections(&self) -> Result<()> {
        let url = self.cluster()?.url("floorwatch_cloud")?;
        let db = eventlog::Database::new(&url, 2)?;
        let config = cloud::CloudConfig::default();
        cloud::projections::catch_up(&db, (&config).into(), config.history_grace_ms).await?;
        Ok(())
    }

    /// Keeps a copy of plant `plant`'s read models (schema `live_copy`), to show how
    /// they differ from a rebuild.
    pub async fn copy_read_models(&self, plant: u32) -> Result<()> {
        let tables: Vec<String> = self.read_model_digests(plant).await?.into_keys().collect();
        copy_tables(&self.connect(plant).await?, "readmodel", &tables).await
    }

    /// A few rows of `table` that differ between the copy and the rebuilt read models.
    pub async fn differing_rows(&self, plant: u32, table: &str) -> Result<String> {
        differing_rows(&self.connect(plant).await?, "readmodel", table).await
    }

    /// `floorwatch cloud rebuild` on the stopped factory's database.
    pub fn rebuild_cloud(&self) -> Result<()> {
        let out = Command::new(env!("CARGO_BIN_EXE_floorwatch"))
            .arg("--data-dir")
            .arg(self.data_dir())
            .arg("--config")
            .arg(&self.config)
            .args(["cloud", "rebuild"])
            .output()?;
        ensure!(out.status.success(), "the cloud's rebuild failed: {}", String::from_utf8_lossy(&out.stderr));
        Ok(())
    }

    /// `floorwatch rebuild --plant N` on the stopped factory's database.
    pub fn rebuild(&self, plant: u32) -> Result<()> {
        let out = Command::new(env!("CARGO_BIN_EXE_floorwatch"))
            .arg("--data-dir")
            .arg(self.data_dir())
            .arg("--config")
            .arg(&self.config)
            .args(["rebuild", "--plant", &plant.to_string()])
            .output()?;
        ensure!(out.status.success(), "rebuild failed: {}", String::from_utf8_lossy(&out.stderr));
        Ok(())
    }

    /// Where the simulation's position is kept.
    pub fn fleet_file(&self) -> PathBuf {
        self.data_dir().join("fleet.json")
    }

    pub fn data_dir_path(&self) -> PathBuf {
        self.data_dir()
    }
}

impl FactoryRun {
    /// Every plant's read models and the cloud's (their projections caught up first, as
    /// the next start would) against a fresh rebuild from their logs, on the stopped
    /// factory's cluster (running when called, and again after). Fails naming the tables
    /// and rows that differ; returns what it checked.
    pub async fn read_models_equal_rebuild(&self) -> Result<Vec<String>> {
        let mut before = Vec::new();
        for plant in 1..=PLANTS {
            self.catch_up_projections(plant).await?;
            before.push(self.read_model_digests(plant).await?);
            self.copy_read_models(plant).await?;
        }
        self.catch_up_cloud_projections().await?;
        let cloud_before = self.cloud_read_model_digests().await?;
        let cloud_tables: Vec<String> = cloud_before.keys().cloned().collect();
        copy_tables(&self.connect_cloud().await?, "cloud", &cloud_tables).await?;
        self.stop_database()?;
        for plant in 1..=PLANTS {
            self.rebuild(plant)?;
        }
        self.rebuild_cloud()?;
        self.start_database()?;
        let mut report = Vec::new();
        for plant in 1..=PLANTS {
            let after = self.read_model_digests(plant).await?;
            let live = &before[plant as usize - 1];
            let client = self.connect(plant).await?;
            report.push(compare(&format!("plant {plant}"), live, &after, &client, "readmodel").await?);
            let checkpoints = live.get("timetravel_checkpoints").map_or(0, |(n, _)| *n);
            report.push(format!("plant {plant}: {checkpoints} time-travel checkpoints among them"));
        }
        let after = self.cloud_read_model_digests().await?;
        report.push(compare("cloud", &cloud_before, &after, &self.connect_cloud().await?, "cloud").await?);
        Ok(report)
    }
}

/// A digest of every table of `schema` but `excluded`: (rows, md5 of the rows in a fixed
/// order). A projection's row says when it was last written (wall clock): not part of
/// what a rebuild must reproduce.
async fn digests(
    client: &tokio_postgres::Client,
    schema: &str,
    excluded: &[&str],
) -> Result<BTreeMap<String, (i64, String)>> {
    let excluded: Vec<String> = excluded.iter().map(|t| (*t).to_owned()).collect();
    let tables: Vec<String> = client
        .query(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname = $1 AND c.relkind IN ('r', 'p') AND NOT c.relispartition
               AND c.relname <> ALL($2)",
            &[&schema, &excluded],
        )
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let mut out = BTreeMap::new();
    for t in tables {
        let row_text = if t == "projections" { "(t.name, t.position, t.memory)::text" } else { "t::text" };
        let row = client
            .query_one(
                &format!(
                    "SELECT count(*), coalesce(md5(string_agg(md5({row_text}), '' ORDER BY md5({row_text}))), '')
                     FROM {schema}.{t} t"
                ),
                &[],
            )
            .await?;
        out.insert(t, (row.get(0), row.get(1)));
    }
    Ok(out)
}

/// Copies `tables` of `schema` into schema `live_copy`.
async fn copy_tables(client: &tokio_postgres::Client, schema: &str, tables: &[String]) -> Result<()> {
    client.batch_execute("DROP SCHEMA IF EXISTS live_copy CASCADE; CREATE SCHEMA live_copy").await?;
    for t in tables {
        client.batch_execute(&format!("CREATE TABLE live_copy.{t} AS SELECT * FROM {schema}.{t}")).await?;
    }
    Ok(())
}

/// A few rows of `table` that differ between the copy and `schema`'s.
async fn differing_rows(client: &tokio_postgres::Client, schema: &str, table: &str) -> Result<String> {
    let mut out = String::new();
    for (label, a, b) in [("live only", "live_copy", schema), ("rebuild only", schema, "live_copy")] {
        // Compared as text: a table with a json column has no equality operator.
        let rows = client
            .query(
                &format!(
                    "SELECT x FROM (SELECT t::text AS x FROM {a}.{table} t EXCEPT SELECT t::text FROM {b}.{table} t) d LIMIT 4"
                ),
                &[],
            )
            .await?;
        for r in rows {
            let text: String = r.get(0);
            out.push_str(&format!("  {label}: {}\n", text.chars().take(600).collect::<String>()));
        }
    }
    Ok(out)
}

/// The tables whose digests differ, with a few of their rows.
async fn compare(
    what: &str,
    live: &BTreeMap<String, (i64, String)>,
    rebuilt: &BTreeMap<String, (i64, String)>,
    client: &tokio_postgres::Client,
    schema: &str,
) -> Result<String> {
    ensure!(
        live.keys().collect::<Vec<_>>() == rebuilt.keys().collect::<Vec<_>>(),
        "{what}: the rebuild made other read-model tables"
    );
    let differing: Vec<&String> = live.iter().filter(|(t, d)| rebuilt.get(*t) != Some(d)).map(|(t, _)| t).collect();
    if !differing.is_empty() {
        let mut rows = String::new();
        for t in &differing {
            rows.push_str(&format!("{t}:\n{}", differing_rows(client, schema, t).await?));
        }
        bail!("{what}: read models differ from a fresh rebuild: {differing:?}\n{rows}");
    }
    Ok(format!(
        "{what}: {} read-model tables ({} rows) equal a fresh rebuild",
        live.len(),
        live.values().map(|(n, _)| n).sum::<i64>()
    ))
}

impl Drop for FactoryRun {
    fn drop(&mut self) {
        if let Some(mut child) = self.up.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if let Ok(c) = self.cluster() {
            let _ = c.stop();
        }
        if std::env::var_os("FLOORWATCH_KEEP_RUN").is_none() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// How plant `plant`'s log arrived in the cloud's log.
#[derive(Debug)]
pub struct CloudCheck {
    /// Events in the plant's log.
    pub plant_events: usize,
    /// Of them, in the cloud's log (the forwarder ships in order: a prefix).
    pub copied: usize,
    /// Plant positions up to the last one copied that the cloud lacks.
    pub missing: Vec<i64>,
    /// Cloud copies of one plant position beyond the first, or of positions the plant
    /// never recorded.
    pub doubled_or_foreign: Vec<i64>,
}

impl CloudCheck {
    /// Says how plant `plant`'s log arrived (printed at once, and returned for the run's
    /// report), then fails unless every event up to the last one forwarded is in the
    /// cloud exactly once and something was forwarded at all.
    pub fn exactly_once(&self, plant: u32) -> String {
        let line = format!(
            "plant {plant} in the cloud: {} of {} events copied, {} missing, {} doubled ({} not yet forwarded at the stop)",
            self.copied,
            self.plant_events,
            self.missing.len(),
            self.doubled_or_foreign.len(),
            self.plant_events - self.copied - self.missing.len()
        );
        eprintln!("{line}");
        assert!(
            self.missing.is_empty(),
            "plant {plant}: events the cloud skipped: {:?}",
            &self.missing[..self.missing.len().min(20)]
        );
        assert!(
            self.doubled_or_foreign.is_empty(),
            "plant {plant}: cloud copies twice or foreign: {:?}",
            self.doubled_or_foreign
        );
        assert!(self.copied > 0, "plant {plant}: nothing reached the cloud");
        line
    }
}

impl FactoryRun {
    /// Compares plant `plant`'s log with the cloud's copy of it: every plant event up to
    /// the last one forwarded is there exactly once, none skipped.
    pub async fn cloud_copy(&self, plant: u32) -> Result<CloudCheck> {
        let plant_db = self.connect(plant).await?;
        let url = self.cluster()?.url("floorwatch_cloud")?;
        let (cloud, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await?;
        tokio::spawn(conn);
        let positions: Vec<i64> = plant_db
            .query("SELECT position FROM eventlog.all_events ORDER BY position", &[])
            .await?
            .iter()
            .map(|r| r.get(0))
            .collect();
        let copies: Vec<i64> = cloud
            .query(
                "SELECT origin_position FROM eventlog.all_events WHERE origin = $1 ORDER BY origin_position",
                &[&(plant as i16)],
            )
            .await?
            .iter()
            .map(|r| r.get(0))
            .collect();
        let recorded: BTreeSet<i64> = positions.iter().copied().collect();
        let mut seen = BTreeSet::new();
        let doubled_or_foreign: Vec<i64> =
            copies.iter().copied().filter(|p| !seen.insert(*p) || !recorded.contains(p)).collect();
        let through = copies.last().copied().unwrap_or(0);
        let missing: Vec<i64> = positions.iter().copied().filter(|p| *p <= through && !seen.contains(p)).collect();
        Ok(CloudCheck { plant_events: positions.len(), copied: seen.len(), missing, doubled_or_foreign })
    }
}

/// What a plant's log holds.
#[derive(Debug)]
pub struct ReadingsCheck {
    pub readings: u64,
    /// Readings of one sensor at one instant stored more than once.
    pub doubled: u64,
    /// Gateways whose seconds are not contiguous from their first to their last.
    pub gaps: Vec<String>,
    pub gateways: usize,
}

pub fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// A small random generator for kill instants, from a seed that is printed so a failing
/// run can be repeated (`FLOORWATCH_KILL_SEED`).
pub struct Rng(u64);

impl Rng {
    pub fn from_env() -> (Rng, u64) {
        let seed = std::env::var("FLOORWATCH_KILL_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| chrono::Utc::now().timestamp_nanos_opt().unwrap_or(1) as u64 | 1);
        (Rng(seed), seed)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n.max(1)
    }
}

/// Waits `d` while checking `up` is still running.
pub async fn run_for(run: &mut FactoryRun, d: Duration) -> Result<()> {
    let until = Instant::now() + d;
    while Instant::now() < until {
        run.check_running()?;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Ok(())
}

pub fn path_exists(p: &Path) -> bool {
    p.exists()
}

/// Pages through a plant log's telemetry batches in order, handing `f` each event with
/// its decoded readings.
pub async fn each_stored_batch(
    client: &eventlog::Client,
    mut f: impl FnMut(&eventlog::RecordedEvent, &[telemetry::Reading]),
) -> Result<()> {
    let mut after = 0i64;
    loop {
        let events = eventlog::read_all(client, after, 1000, Some(&["readings".to_owned()])).await?;
        let Some(last) = events.last() else { return Ok(()) };
        after = last.position;
        for e in &events {
            f(e, &e.readings().context("a stored batch does not decode")?);
        }
    }
}
