//! A real cloud node holding backfilled weeks of every plant, for the managers' view: a
//! private PostgreSQL database with the cloud's migrations, each plant's layout and
//! hourly production reports and sensor readings (and a few anomalies and services) imported into the
//! cloud's log exactly as the forwarders' ingest stores them (`eventlog::import_and_commit`),
//! the real projections folding them into KPIs, and the real query API on a free port.

use std::time::Duration;

use anyhow::{Context, Result, bail};
use chrono::{DateTime, Utc};
use domain::events::{
    ANOMALY_DETECTED, AnomalyDetected, LAYOUT_CONFIGURED, LayoutConfigured, MAINTENANCE_PERFORMED, MaintenancePerformed,
};
use domain::production::{PRODUCTION_REPORTED, ProductionReported};
use eventlog::{Database, ImportedEvent, Metadata, NewEvent, StreamName};
use layout::{Layout, Scale};
use manager::api::{By, CloudClient};
use manager::config::CloudConnection;
use manager::range::{Bucket, DAY_MS, HOUR_MS};
use pgcluster::testdb::TestDb;
use tokio::sync::oneshot;

/// A cloud node with history; the API stops with [`BackfilledCloud::stop_api`] or on drop.
pub struct BackfilledCloud {
    pub url: String,
    pub token: String,
    pub plants: u16,
    /// The last whole hour of history (exclusive).
    pub through_ms: i64,
    pub db: Database,
    /// Each plant's machines (id, line), as backfilled.
    machines: std::collections::HashMap<u16, Vec<(String, String)>>,
    /// Each plant's streams' last versions, so what is forwarded later follows them.
    versions: std::collections::HashMap<u16, std::collections::HashMap<String, u64>>,
    addr: std::net::SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
    _database: TestDb,
}

fn at(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

/// A plant's hourly running share: each plant its own level, with a weekly swing, so the
/// plants and the periods differ visibly.
pub fn running_share(plant: u16, hour_ms: i64) -> f64 {
    let day = hour_ms.div_euclid(DAY_MS) as f64;
    (0.55 + 0.07 * f64::from(plant) + 0.08 * (day * std::f64::consts::TAU / 7.0).sin()).clamp(0.05, 1.0)
}

struct Events {
    plant: u16,
    next: i64,
    versions: std::collections::HashMap<String, u64>,
    out: Vec<ImportedEvent>,
}

impl Events {
    fn push(&mut self, stream: &str, event_type: &str, body: &impl serde::Serialize, recorded_ms: i64) -> Result<()> {
        let event = NewEvent::json(event_type, 1, body, Metadata::by(format!("plant P{}", self.plant)))?;
        self.push_event(stream, event, recorded_ms)
    }

    fn push_event(&mut self, stream: &str, event: NewEvent, recorded_ms: i64) -> Result<()> {
        let version = self.versions.entry(stream.to_string()).or_insert(0);
        *version += 1;
        self.next += 1;
        self.out.push(ImportedEvent {
            origin_position: self.next,
            origin_recorded_at: at(recorded_ms),
            stream: StreamName::new(stream)?,
            version: *version,
            idempotency_key: None,
            event,
        });
        Ok(())
    }
}

impl BackfilledCloud {
    /// `plants` plants of `machines_per_plant`-ish machines with `days` days of hourly
    /// production up to the last whole hour, and the node serving them.
    pub async fn start(plants: u16, days: u32) -> Result<BackfilledCloud> {
        let database = TestDb::new().await?;
        let db = Database::new(&database.url, 8)?;
        cloud::migrate(&db).await?;
        let scale = Scale { plants: Some(u32::from(plants)), lines_per_plant: Some(2), sensors_per_plant: Some(40) };
        let layout = Layout::default_with(&scale)?;
        let now = Utc::now().timestamp_millis();
        let through_ms = now - now.rem_euclid(HOUR_MS);
        let start_ms = through_ms - i64::from(days) * DAY_MS;
        let mut all_machines = std::collections::HashMap::new();
        let mut all_versions = std::collections::HashMap::new();
        for plant in 1..=plants {
            let p = layout.plant_by_number(plant).with_context(|| format!("plant {plant} in the layout"))?;
            let machines: Vec<(String, String)> = layout.machines()[p.machines.clone()]
                .iter()
                .map(|m| (m.id.clone(), layout.lines()[m.line].id.clone()))
                .collect();
            let mut ev = Events { plant, next: 0, versions: Default::default(), out: Vec::new() };
            let config = LayoutConfigured {
                plant,
                layout_toml: layout::DEFAULT_LAYOUT_TOML.to_owned(),
                plants: scale.plants,
                lines_per_plant: scale.lines_per_plant,
                sensors_per_plant: scale.sensors_per_plant,
                stale_after_ms: 10_000,
            };
            ev.push(&format!("plant-P{plant}"), LAYOUT_CONFIGURED, &config, start_ms)?;
            // Each line's sensors, each with its nominal value, read once an hour: enough for
            // the sensors' availability and the machines' trends to be real.
            let lines: Vec<(String, Vec<(u32, f64)>)> = layout.lines()[p.lines.clone()]
                .iter()
                .map(|l| {
                    let sensors = l.sensors.clone().map(|ix| layout.sensor_at(ix)).map(|s| (s.id(), s.spec.nominal));
                    (l.id.clone(), sensors.collect())
                })
                .collect();
            let mut hour = start_ms;
            while hour < through_ms {
                let h = hour.div_euclid(HOUR_MS);
                for (line, sensors) in &lines {
                    let at_ms = hour + 1_800_000;
                    let readings: Vec<telemetry::Reading> = sensors
                        .iter()
                        .map(|&(id, nominal)| {
                            let swing = 1.0 + 0.05 * ((h + i64::from(id)) as f64 / 5.0).sin();
                            telemetry::Reading::new(id, at_ms, nominal * swing)
                        })
                        .collect();
                    let event =
                        NewEvent::readings(&readings, (hour, hour + HOUR_MS), Metadata::by(format!("plant P{plant}")))?;
                    ev.push_event(&format!("readings-{line}"), event, at_ms)?;
                }
                for (i, (machine, line)) in machines.iter().enumerate() {
                    let running = 3600.0 * running_share(plant, hour);
                    let parts = (running / 10.0 * 0.9).floor() as u64;
                    let rejects = parts / (20 + plant as u64 * 5 + i as u64);
                    let report = ProductionReported {
                        machine_id: machine.clone(),
                        from: at(hour),
                        to: at(hour + HOUR_MS),
                        planned_s: 3600.0,
                        running_s: running,
                        parts,
                        rejects,
                        ideal_cycle_s: 10.0,
                        source: format!("gateway:{line}"),
                    };
                    ev.push(&format!("machine-{machine}"), PRODUCTION_REPORTED, &report, hour + HOUR_MS)?;
                    // Now and then an anomaly, and a service a few days apart.
                    let h = h as u64;
                    if (h + i as u64 * 7 + u64::from(plant) * 3).is_multiple_of(37) {
                        let anomaly_id = format!("{machine}-{hour}");
                        let detected = anomaly(&anomaly_id, machine, line, hour + 600_000, (h % 3) as u8);
                        ev.push(&format!("anomaly-{anomaly_id}"), ANOMALY_DETECTED, &detected, hour + 600_000)?;
                    }
                    if (h + i as u64 * 11).is_multiple_of(24 * 5 + u64::from(plant)) {
                        let done = MaintenancePerformed {
                            order_id: format!("{machine}-WO{h}"),
                            machine_id: machine.clone(),
                            performed_at: at(hour + 1_800_000),
                            by: "crew".into(),
                            note: "serviced".into(),
                            at: at(hour + 1_800_000),
                        };
                        ev.push(&format!("maintenance-{machine}"), MAINTENANCE_PERFORMED, &done, hour + 1_800_000)?;
                    }
                }
                hour += HOUR_MS;
            }
            // A last reading of each line just before the end: a minute is written once the
            // plant's clock has passed it, so the last hour's readings are not held back.
            for (line, sensors) in &lines {
                let at_ms = through_ms - 1_000;
                let readings: Vec<telemetry::Reading> =
                    sensors.iter().map(|&(id, nominal)| telemetry::Reading::new(id, at_ms, nominal)).collect();
                let event = NewEvent::readings(&readings, (at_ms, at_ms), Metadata::by(format!("plant P{plant}")))?;
                ev.push_event(&format!("readings-{line}"), event, at_ms)?;
            }
            let mut after = 0;
            for batch in ev.out.chunks(2_000) {
                let imported = eventlog::import_and_commit(&db, plant, after, batch).await?;
                after = imported.acknowledged;
            }
            all_versions.insert(plant, ev.versions);
            all_machines.insert(plant, machines);
        }
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let url = format!("http://{addr}");
        let (tx, task) = serve(&db, listener);
        let (_, token) =
            access::create(&db, access::Role::Manager, access::Scope::AllPlants, "managers' view tests").await?;
        let node = BackfilledCloud {
            url,
            token,
            plants,
            through_ms,
            db,
            machines: all_machines,
            versions: all_versions,
            addr,
            stop: Some(tx),
            task: Some(task),
            _database: database,
        };
        node.wait_projected(start_ms).await?;
        Ok(node)
    }

    pub fn connection(&self) -> CloudConnection {
        CloudConnection { url: self.url.clone(), token: self.token.clone() }
    }

    /// Waits until the projections have folded the whole history (production and readings): the last hour's KPIs of
    /// every plant and the first day's are there.
    async fn wait_projected(&self, start_ms: i64) -> Result<()> {
        let client = CloudClient::new(&self.connection());
        let deadline = tokio::time::Instant::now() + Duration::from_secs(600);
        loop {
            let last = client.kpis(&[], self.through_ms - HOUR_MS, self.through_ms, Bucket::Hour, By::Plant).await;
            let first = client.kpis(&[], start_ms, start_ms + HOUR_MS, Bucket::Hour, By::Plant).await;
            if let (Ok(last), Ok(first)) = (last, first)
                && last.len() == usize::from(self.plants)
                && last.iter().chain(&first).all(|r| r.oee.oee.is_some())
                && last.iter().all(|r| r.sensor_availability.is_some_and(|a| a > 0.0))
            {
                return Ok(());
            }
            if tokio::time::Instant::now() > deadline {
                bail!("the cloud's projections did not fold the backfill within 600 s");
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// Starts the node again on the same address (after [`BackfilledCloud::stop_api`]).
    pub async fn restart_api(&mut self) -> Result<()> {
        self.stop_api().await?;
        let listener = tokio::net::TcpListener::bind(self.addr).await.context("the node's address again")?;
        let (tx, task) = serve(&self.db, listener);
        self.stop = Some(tx);
        self.task = Some(task);
        Ok(())
    }

    /// Forwards one hour of a plant's production to the cloud as the plant's forwarder
    /// does: a batch following the cloud's position for the plant, posted to
    /// `/v1/ingest/plants/{plant}/events` with a forwarder's credential. Every machine
    /// ran `running_share` of the hour. Returns the cloud's acknowledged position.
    pub async fn forward_hour(&mut self, plant: u16, hour_ms: i64, running_share: f64) -> Result<i64> {
        let (_, token) =
            access::create(&self.db, access::Role::Forwarder, access::Scope::plant(plant), "forwarder in tests")
                .await?;
        let http = reqwest::Client::new();
        let base = format!("{}/v1/ingest/plants/{plant}", self.url);
        let position: forwarder::wire::Ack =
            http.get(format!("{base}/position")).bearer_auth(&token).send().await?.error_for_status()?.json().await?;
        let versions = self.versions.entry(plant).or_default();
        let mut events = Vec::new();
        let machines = self.machines.get(&plant).context("a backfilled plant")?;
        for (next, (machine, line)) in (position.acknowledged + 1..).zip(machines) {
            let running = 3600.0 * running_share;
            let parts = (running / 10.0 * 0.9).floor() as u64;
            let report = ProductionReported {
                machine_id: machine.clone(),
                from: at(hour_ms),
                to: at(hour_ms + HOUR_MS),
                planned_s: 3600.0,
                running_s: running,
                parts,
                rejects: 0,
                ideal_cycle_s: 10.0,
                source: format!("gateway:{line}"),
            };
            let stream = format!("machine-{machine}");
            let version = versions.entry(stream.clone()).or_insert(0);
            *version += 1;
            events.push(forwarder::wire::WireEvent {
                position: next,
                recorded_at_ms: Utc::now().timestamp_millis(),
                stream,
                version: *version,
                event_type: PRODUCTION_REPORTED.to_string(),
                schema_version: 1,
                metadata: forwarder::wire::WireMetadata {
                    actor: Some(format!("plant P{plant}")),
                    ..Default::default()
                },
                idempotency_key: None,
                body: forwarder::wire::WireBody::Json(serde_json::to_string(&report)?),
            });
        }
        let batch = forwarder::wire::WireBatch::new(plant, position.acknowledged, events);
        let ack: forwarder::wire::Ack = http
            .post(format!("{base}/events"))
            .bearer_auth(&token)
            .header("content-type", forwarder::wire::CONTENT_TYPE)
            .body(batch.encode())
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        Ok(ack.acknowledged)
    }

    /// Stops the node: its API is gone (the database stays).
    pub async fn stop_api(&mut self) -> Result<()> {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            task.await??;
        }
        Ok(())
    }
}

/// The node on `listener`, with its projections, until the sender is used or dropped.
fn serve(
    db: &Database,
    listener: tokio::net::TcpListener,
) -> (oneshot::Sender<()>, tokio::task::JoinHandle<anyhow::Result<()>>) {
    let (tx, rx) = oneshot::channel::<()>();
    let config = cloud::CloudConfig { auth_cache_ms: 0, ..cloud::CloudConfig::default() };
    let task = tokio::spawn(cloud::node::run(db.clone(), config, listener, async move {
        let _ = rx.await;
    }));
    (tx, task)
}

fn anomaly(anomaly_id: &str, machine: &str, line: &str, at_ms: i64, severity: u8) -> AnomalyDetected {
    let severity = match severity {
        0 => domain::events::Severity::Minor,
        1 => domain::events::Severity::Major,
        _ => domain::events::Severity::Critical,
    };
    AnomalyDetected {
        anomaly_id: anomaly_id.to_string(),
        machine_id: machine.to_string(),
        line_id: line.to_string(),
        started_at: at(at_ms),
        severity,
        score: 4.0,
        sensors: Vec::new(),
        explanation: "TEMP1 above its expected band (level shift)".into(),
        detector_version: "backfill".into(),
    }
}

impl Drop for BackfilledCloud {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}
