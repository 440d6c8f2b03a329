//! What the cloud's tests share: plants with their own logs, a cloud node on a real port,
//! credentials, forwarders, and waiting for a condition.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use access::{Role, Scope};
use chrono::{DateTime, Utc};
use cloud::CloudConfig;
use domain::events::{LAYOUT_CONFIGURED, LayoutConfigured};
use eventlog::{Append, Database, ExpectedVersion, Metadata, NewEvent, StreamName};
use layout::{Layout, Scale};
use pgcluster::testdb::TestDb;
use serde::Serialize;
use telemetry::Reading;
use tokio::sync::oneshot;

pub const SENSORS_PER_PLANT: u32 = 120;
pub const LINES_PER_PLANT: u32 = 2;

pub fn scale(plants: u32) -> Scale {
    Scale { plants: Some(plants), lines_per_plant: Some(LINES_PER_PLANT), sensors_per_plant: Some(SENSORS_PER_PLANT) }
}

/// A plant's own database: its log (with the forwarding read model) and its layout.
pub struct Plant {
    pub number: u16,
    pub db: Database,
    pub layout: Arc<Layout>,
}

impl Plant {
    pub async fn new(number: u16, plants: u32) -> Plant {
        let t = TestDb::new().await.expect("test database");
        let db = Database::new(&t.url, 8).expect("pool");
        readmodels::migrate(&db).await.expect("plant migrations");
        let layout = Arc::new(Layout::default_with(&scale(plants)).expect("layout"));
        let s = scale(plants);
        let event = LayoutConfigured {
            plant: number,
            layout_toml: layout::DEFAULT_LAYOUT_TOML.to_owned(),
            plants: s.plants,
            lines_per_plant: s.lines_per_plant,
            sensors_per_plant: s.sensors_per_plant,
            stale_after_ms: 10_000,
        };
        let plant = Plant { number, db, layout };
        plant.append(&format!("plant-P{number}"), LAYOUT_CONFIGURED, &event).await;
        plant
    }

    /// Appends one domain event.
    pub async fn append(&self, stream: &str, event_type: &str, body: &impl Serialize) -> i64 {
        let event = NewEvent::json(event_type, 1, body, Metadata::by("test")).expect("event");
        let append = Append::new(StreamName::new(stream).expect("stream"), ExpectedVersion::Any, vec![event]);
        eventlog::append_and_commit(&self.db, &[append]).await.expect("append")[0].last_position
    }

    /// Every sensor of the plant reads `value(sensor)` at `ts_ms`, one batch per line.
    pub async fn readings(&self, ts_ms: i64, value: impl Fn(u32) -> f64) -> usize {
        let p = self.layout.plant_by_number(self.number).expect("plant in layout");
        let mut appends = Vec::new();
        let mut n = 0;
        for line in &self.layout.lines()[p.lines.clone()] {
            let readings: Vec<Reading> = line.sensor_ids.clone().map(|s| Reading::new(s, ts_ms, value(s))).collect();
            n += readings.len();
            let event = NewEvent::readings(
                &readings,
                (ts_ms - 1, ts_ms + 1),
                Metadata::from_source(format!("gateway:{}", line.id)),
            )
            .expect("batch");
            appends.push(
                Append::new(StreamName::of("readings", &line.id).expect("stream"), ExpectedVersion::Any, vec![event])
                    .idempotent(format!("{}:{ts_ms}", line.id)),
            );
        }
        eventlog::append_and_commit(&self.db, &appends).await.expect("append readings");
        n
    }

    pub fn machine(&self, i: usize) -> String {
        let p = self.layout.plant_by_number(self.number).expect("plant in layout");
        self.layout.machines()[p.machines.start + i].id.clone()
    }
}

/// A cloud node on a real port, stopped when dropped or by [`CloudNode::stop`].
pub struct CloudNode {
    pub url: String,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

pub fn config() -> CloudConfig {
    // Bounded by readings well below the events bound (a line's batch holds 60), so the
    // live runs that rebuilds are compared with fold in many short transactions.
    CloudConfig { batch_max_events: 50, batch_max_readings: 150, auth_cache_ms: 0, ..CloudConfig::default() }
}

impl CloudNode {
    /// Starts on `port` (0: any free port).
    pub async fn start(db: &Database, port: u16) -> CloudNode {
        Self::start_with(db, port, config()).await
    }

    pub async fn start_with(db: &Database, port: u16, config: CloudConfig) -> CloudNode {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.expect("bind");
        let port = listener.local_addr().expect("address").port();
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(cloud::node::run(db.clone(), config, listener, async move {
            let _ = rx.await;
        }));
        let node = CloudNode { url: format!("http://127.0.0.1:{port}"), stop: Some(tx), task: Some(task) };
        let http = reqwest::Client::new();
        wait_for("the cloud node to answer", Duration::from_secs(60), || {
            let http = http.clone();
            let url = format!("{}/v1/health", node.url);
            async move { http.get(url).send().await.is_ok_and(|r| r.status().is_success()) }
        })
        .await;
        node
    }

    pub async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.expect("cloud task").expect("cloud node ran");
        }
    }
}

impl Drop for CloudNode {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}

/// The cloud's database, migrated.
pub async fn cloud_db() -> Database {
    let t = TestDb::new().await.expect("test database");
    let db = Database::new(&t.url, 16).expect("pool");
    cloud::migrate(&db).await.expect("cloud migrations");
    db
}

pub async fn token(db: &Database, role: Role, scope: Scope) -> String {
    access::create(db, role, scope, &format!("test {role}")).await.expect("credential").1
}

/// A forwarder of `plant` to `url`, running until the returned sender is dropped or fired.
pub fn forwarder(
    plant: &Plant,
    url: &str,
    token: &str,
) -> (oneshot::Sender<()>, tokio::task::JoinHandle<anyhow::Result<()>>) {
    let mut config = forwarder::ForwarderConfig::new(plant.number, url, token);
    config.batch_max_events = 40;
    config.retry_max_backoff_ms = 300;
    config.request_timeout_ms = 5_000;
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(forwarder::run(plant.db.clone(), config, async move {
        let _ = rx.await;
    }));
    (tx, task)
}

/// Waits until `check` holds, polling; panics naming `what` after `timeout`.
pub async fn wait_for<F, Fut>(what: &str, timeout: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if check().await {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Every event of a plant's log: (position, type, payload as text).
pub async fn plant_log(db: &Database) -> Vec<(i64, String, String)> {
    let client = db.client().await.expect("client");
    let mut out = Vec::new();
    let mut after = 0;
    loop {
        let events = eventlog::read_all(&client, after, 1_000, None).await.expect("read");
        let Some(last) = events.last() else { return out };
        after = last.position;
        out.extend(events.iter().map(|e| (e.position, e.event_type.clone(), payload(&e.payload))));
    }
}

/// The cloud's copy of `plant`'s events: (plant position, type, payload as text).
pub async fn cloud_copy(db: &Database, plant: u16) -> Vec<(i64, String, String)> {
    let client = db.client().await.expect("client");
    let mut out = Vec::new();
    let mut after = 0;
    loop {
        let events = eventlog::read_all(&client, after, 1_000, None).await.expect("read");
        let Some(last) = events.last() else { return out };
        after = last.position;
        out.extend(
            events
                .iter()
                .filter(|e| e.origin.is_some_and(|o| o.plant == plant))
                .map(|e| (e.origin.map_or(0, |o| o.position), e.event_type.clone(), payload(&e.payload))),
        );
    }
}

fn payload(p: &eventlog::Payload) -> String {
    match p {
        eventlog::Payload::Json(v) => v.to_string(),
        eventlog::Payload::Telemetry { bytes, occurred_at } => format!("{occurred_at}:{bytes:?}"),
    }
}

pub fn now_s() -> i64 {
    Utc::now().timestamp_millis().div_euclid(1000) * 1000
}

pub fn at(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).expect("time")
}

/// A time as a query parameter needs it (`Z`, no `+`).
pub fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}
