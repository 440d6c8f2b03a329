//! A plant for the desktop app's tests and benchmarks, made of the real parts: an event
//! log, the real projections following it, and the plant node's real command API. A test
//! makes things happen by appending the events a plant appends — every sensor's readings
//! as its gateways upload them, an anomaly as the monitor detects it, predictions as the
//! scorer makes them, work orders as the rules decide them — never by writing read-model
//! rows, so what the app is shown cannot drift from what a plant shows it.
//!
//! The command API sits behind a door that records every request and can be told to
//! answer the next ones with an error status, to test the app's retries and refusals.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use domain::anomaly::ShelvePolicy;
use domain::events::*;
use domain::workorder::{self, MachineOrders, OrderCommand};
use eventlog::{Append, Database, ExpectedVersion, Metadata, NewEvent, Payload, StreamName};
use layout::{LayoutConfig, LineMachines, Scale};
use readmodel_contract::{READER_ROLE, ReadModel};
use readmodels::ProjectionConfig;
use serde_json::{Value, json};
use telemetry::Reading;
use tokio::sync::watch;

/// The reader's password in fixture databases.
pub const READER_PASSWORD: &str = "fixture-reader";

/// The fixture is plant 1 of its layout.
const PLANT_NUMBER: u16 = 1;
/// How long a write may take to reach every read model before the fixture gives up.
const SYNC_TIMEOUT: Duration = Duration::from_secs(60);

/// How big the plant is.
#[derive(Debug, Clone, Copy)]
pub struct Layout {
    pub lines: u32,
    /// `None`: the shipped layout's lines of 67 machines and 1,000 sensors;
    /// `Some((machines, sensors))`: lines of that many CNC machines with that many sensors each.
    pub small: Option<(u32, u32)>,
}

impl Layout {
    /// The shipped layout's first plant: 10 lines × 67 machines = 10,000 sensors.
    pub fn full() -> Layout {
        Layout { lines: 10, small: None }
    }

    pub fn small(lines: u32, machines: u32, sensors: u32) -> Layout {
        Layout { lines, small: Some((machines, sensors)) }
    }

    /// The layout event the plant node would append for this plant.
    fn event(&self) -> Result<LayoutConfigured> {
        let layout_toml = match self.small {
            None => layout::DEFAULT_LAYOUT_TOML.to_owned(),
            Some((machines, sensors)) => small_layout_toml(self.lines, machines, sensors)?,
        };
        Ok(LayoutConfigured {
            plant: PLANT_NUMBER,
            layout_toml,
            plants: Some(1),
            lines_per_plant: Some(self.lines),
            sensors_per_plant: None,
            stale_after_ms: 10_000,
        })
    }
}

/// The shipped layout cut down to one plant whose lines hold `machines` CNC machines
/// with the first `sensors` sensors of that machine type.
fn small_layout_toml(lines: u32, machines: u32, sensors: u32) -> Result<String> {
    let mut config = LayoutConfig::from_toml(layout::DEFAULT_LAYOUT_TOML)?;
    config.plants.truncate(1);
    config.lines_per_plant = lines;
    config.line_machines = vec![LineMachines { machine_type: "cnc".into(), count: machines }];
    config.machine_types.retain(|t| t.name == "cnc");
    let cnc = config.machine_types.first_mut().context("the shipped layout has a cnc machine type")?;
    let mut left = sensors;
    for spec in &mut cnc.sensors {
        spec.count = spec.count.min(left);
        left -= spec.count;
    }
    cnc.sensors.retain(|s| s.count > 0);
    if left > 0 {
        bail!("a cnc machine has fewer than {sensors} sensors");
    }
    Ok(toml::to_string(&config)?)
}

/// One plant database with its projections running.
pub struct PlantFixture {
    db: Database,
    layout: Option<Arc<layout::Layout>>,
    anomalies: u32,
    /// Sensor id → how far its readings are pushed out of their normal range.
    faults: HashMap<u32, f64>,
    /// Position of the newest upload appended.
    last_readings: i64,
    stop: watch::Sender<bool>,
}

impl std::fmt::Debug for PlantFixture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PlantFixture").field("anomalies", &self.anomalies).finish_non_exhaustive()
    }
}

impl Drop for PlantFixture {
    fn drop(&mut self) {
        self.stop.send_replace(true);
    }
}

fn at(ms: i64) -> Result<DateTime<Utc>> {
    DateTime::from_timestamp_millis(ms).with_context(|| format!("{ms} ms is not a time"))
}

/// The reader's URL for a superuser URL of the same database.
pub fn reader_url(admin_url: &str) -> String {
    match (admin_url.find("://"), admin_url.rfind('@')) {
        (Some(s), Some(at)) => {
            format!("{}{READER_ROLE}:{READER_PASSWORD}@{}", &admin_url[..s + 3], &admin_url[at + 1..])
        }
        _ => admin_url.to_string(),
    }
}

/// How long before the seed its first maintenance predictions were made: before the
/// history [`PlantFixture::write_maintenance_history`] writes.
pub const FIRST_PREDICTION_AGE_MS: i64 = 60 * 86_400_000;

impl PlantFixture {
    /// Installs the event log and the read models in the database of `admin_url` (as the
    /// plant node does), gives the reader its password, and starts the projections.
    pub async fn install(admin_url: &str) -> Result<PlantFixture> {
        let db = Database::new(admin_url, 8)?;
        {
            // The reader role belongs to the whole server: one database at a time.
            static INSTALL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
            let _one_at_a_time = INSTALL.lock().await;
            readmodels::migrate(&db).await.context("installing the read models")?;
            readmodels::set_reader_password(&db, READER_PASSWORD).await?;
        }
        access::migrate(&db).await.context("installing people's credentials")?;
        let (stop, stopped) = watch::channel(false);
        let projections = db.clone();
        tokio::spawn(async move {
            let mut stopped = stopped;
            let shutdown = async move {
                let _ = stopped.wait_for(|s| *s).await;
            };
            if let Err(e) = readmodels::run(&projections, ProjectionConfig::new(PLANT_NUMBER), shutdown).await {
                eprintln!("fixture projections stopped: {e:#}");
            }
        });
        Ok(PlantFixture { db, layout: None, anomalies: 0, faults: HashMap::new(), last_readings: 0, stop })
    }

    pub fn database(&self) -> &Database {
        &self.db
    }

    /// A person with their own credential at this plant; returns their token.
    pub async fn person(&self, role: access::Role, name: &str) -> Result<String> {
        Ok(access::create(&self.db, role, access::Scope::plant(PLANT_NUMBER), name).await?.1)
    }

    /// Revokes the credential of `token`.
    pub async fn revoke(&self, token: &str) -> Result<()> {
        let (id, _) = access::parse_token(token).context("not a token")?;
        access::revoke(&self.db, id).await?;
        Ok(())
    }

    fn layout(&self) -> Result<&Arc<layout::Layout>> {
        self.layout.as_ref().context("seed the fixture first")
    }

    fn plant(&self) -> Result<&layout::Plant> {
        self.layout()?.plant_by_number(PLANT_NUMBER).context("plant 1 is in the layout")
    }

    /// Configures the plant's layout, reports every sensor once and gives every machine a
    /// maintenance prediction, made [`FIRST_PREDICTION_AGE_MS`] ago (a machine's
    /// predictions come in time order, and [`Self::write_maintenance_history`] adds older
    /// history than a prediction made now would allow); returns the log position once every
    /// read model shows it.
    pub async fn seed(&mut self, layout: Layout, now_ms: i64) -> Result<i64> {
        let event = layout.event()?;
        let scale = Scale {
            plants: event.plants,
            lines_per_plant: event.lines_per_plant,
            sensors_per_plant: event.sensors_per_plant,
        };
        self.layout = Some(Arc::new(layout::Layout::from_toml(&event.layout_toml, &scale)?));
        let configured = Append::new(
            StreamName::of(PLANT, &format!("P{PLANT_NUMBER}"))?,
            ExpectedVersion::Any,
            vec![NewEvent::json(LAYOUT_CONFIGURED, 1, &event, Metadata::from_source("plant-node"))?],
        );
        let mut appends = vec![configured];
        appends.extend(self.readings_at(now_ms)?);
        let machines = self.machine_ids()?;
        for (n, machine_id) in machines.into_iter().enumerate() {
            // Spread over two months, some within the week: (n % 60) as the scorer's inputs would.
            let k = ((n + 1) % 60) as f64;
            let p = MaintenancePredicted {
                at: at(now_ms - FIRST_PREDICTION_AGE_MS)?,
                days: 3.0 + k,
                lower_days: 1.0 + k * 0.8,
                upper_days: 6.0 + k * 1.3,
                model_version: "fixture-1".into(),
                failure_probability: None,
                due: None,
                machine_id,
            };
            appends.push(prediction(&p)?);
        }
        self.append(&appends).await
    }

    /// The numeric ids of a machine's sensors.
    pub fn sensor_ids(&self, machine_id: &str) -> Vec<i32> {
        let Some(l) = self.layout.as_ref() else { return Vec::new() };
        l.machine_by_id(machine_id).map(|m| m.sensor_ids.clone().map(|id| id as i32).collect()).unwrap_or_default()
    }

    /// Every machine of the plant, in layout order.
    pub fn machine_ids(&self) -> Result<Vec<String>> {
        let l = self.layout()?;
        Ok(l.machines()[self.plant()?.machines.clone()].iter().map(|m| m.id.clone()).collect())
    }

    /// A reading of `sensor` at `ts_ms`: inside its normal range, moving slowly, unless a
    /// fault pushes it out.
    fn value(&self, sensor: u32, ts_ms: i64) -> Result<f64> {
        let info = self.layout()?.sensor(sensor).context("no such sensor")?;
        let (lo, hi) = info.normal_range();
        let mid = (lo + hi) / 2.0;
        let amp = (hi - lo) * 0.3;
        let t = ts_ms as f64 / 1000.0;
        let phase = f64::from(sensor % 97) / 97.0 * std::f64::consts::TAU;
        let noise = ((t * 12.9898 + f64::from(sensor) * 78.233).sin() * 43758.5453).fract() * amp * 0.2;
        Ok(mid + amp * (t / 300.0 + phase).sin() + noise + self.faults.get(&sensor).copied().unwrap_or(0.0))
    }

    /// One batch per line, as each line's gateway uploads its sensors, with `readings_of`
    /// choosing the readings of each of the line's sensors.
    fn batches(&self, mut readings_of: impl FnMut(u32) -> Result<Vec<Reading>>) -> Result<Vec<Append>> {
        let l = self.layout()?;
        let mut appends = Vec::new();
        for line in &l.lines()[self.plant()?.lines.clone()] {
            let mut readings = Vec::new();
            for id in line.sensor_ids.clone() {
                readings.extend(readings_of(id)?);
            }
            if readings.is_empty() {
                continue;
            }
            let event = NewEvent::readings(&readings, (i64::MIN / 4, i64::MAX / 4), gateway(&line.id))?;
            appends.push(Append::new(StreamName::of("readings", &line.id)?, ExpectedVersion::Any, vec![event]));
        }
        Ok(appends)
    }

    fn readings_at(&self, now_ms: i64) -> Result<Vec<Append>> {
        self.batches(|id| Ok(vec![Reading::new(id, now_ms, self.value(id, now_ms)?)]))
    }

    /// Every sensor reports once, at `now_ms`.
    pub async fn tick(&mut self, now_ms: i64) -> Result<i64> {
        let appends = self.readings_at(now_ms)?;
        self.append(&appends).await
    }

    /// A fault on a sensor, as the monitor reports it: the sensor's readings jump out of
    /// their range and an anomaly opens; returns the anomaly's id.
    pub async fn raise_anomaly(&mut self, sensor_id: i32, severity: &str, now_ms: i64) -> Result<String> {
        let severity = Severity::parse(severity).with_context(|| format!("{severity:?} is not a severity"))?;
        let sensor = u32::try_from(sensor_id).context("no such sensor")?;
        let (lo, hi, machine_id, line_id, name, kind, unit) = {
            let info = self.layout()?.sensor(sensor).context("no such sensor")?;
            let (lo, hi) = info.normal_range();
            let (name, kind, unit) = (info.name().to_owned(), info.kind().to_owned(), info.unit().to_owned());
            (lo, hi, info.machine.id.clone(), info.line.id.clone(), name, kind, unit)
        };
        self.faults.insert(sensor, (hi - lo) * 1.2);
        self.anomalies += 1;
        let anomaly_id = format!("P{PLANT_NUMBER}-A{:05}", self.anomalies);
        let observed = self.value(sensor, now_ms)?;
        let detected = AnomalyDetected {
            anomaly_id: anomaly_id.clone(),
            machine_id,
            line_id,
            started_at: at(now_ms)?,
            severity,
            score: 0.97,
            sensors: vec![SensorEvidence {
                sensor,
                name: name.clone(),
                kind,
                unit,
                at: at(now_ms)?,
                observed,
                expected: (lo + hi) / 2.0,
                lower: lo,
                upper: hi,
                test: "level_shift".into(),
                score: 0.97,
                related: false,
            }],
            explanation: format!("{name} read {observed:.1}, above its expected band {lo:.1}–{hi:.1} for 3 readings"),
            detector_version: "fixture".into(),
        };
        let mut appends = self.readings_at(now_ms)?;
        appends.push(Append::new(
            StreamName::of(ANOMALY, &anomaly_id)?,
            ExpectedVersion::NoStream,
            vec![NewEvent::json(ANOMALY_DETECTED, 1, &detected, Metadata::by("monitor"))?],
        ));
        self.append(&appends).await?;
        Ok(anomaly_id)
    }

    /// Readings of `sensor_ids` every second over [from_ms, to_ms), uploaded late (the
    /// plant's other sensors have already reported past them): raw history and its
    /// minute and hour aggregates.
    pub async fn write_history(&mut self, sensor_ids: &[i32], from_ms: i64, to_ms: i64) -> Result<()> {
        let wanted: Vec<u32> = sensor_ids.iter().filter_map(|id| u32::try_from(*id).ok()).collect();
        let mut minute = from_ms - from_ms.rem_euclid(60_000);
        while minute < to_ms {
            let end = (minute + 60_000).min(to_ms);
            let appends = self.batches(|id| {
                if !wanted.contains(&id) {
                    return Ok(Vec::new());
                }
                (minute.max(from_ms)..end).step_by(1000).map(|t| Ok(Reading::new(id, t, self.value(id, t)?))).collect()
            })?;
            self.append(&appends).await?;
            minute += 60_000;
        }
        Ok(())
    }

    /// A machine's maintenance history: a failure forty days ago with the predictions of
    /// the twelve days before it (every six hours, each a day too late, due from five days
    /// before), so the track record has something to show; a prediction a day over the
    /// last two weeks; and a
    /// planned service scheduled and recorded twenty days ago, decided by the rules.
    pub async fn write_maintenance_history(&mut self, machine_id: &str, now_ms: i64) -> Result<()> {
        let mut appends = Vec::new();
        let failed_ms = now_ms - 40 * 86_400_000;
        for q in 0..48i64 {
            let left = (48 - q) as f64 / 4.0;
            let days = (left + 1.0).max(0.0);
            let p = MaintenancePredicted {
                machine_id: machine_id.to_owned(),
                at: at(failed_ms - (48 - q) * 6 * 3_600_000)?,
                days,
                lower_days: (days - 2.5).max(0.0),
                upper_days: days + 3.0,
                model_version: "fixture-1".into(),
                failure_probability: Some(if left <= 5.0 { 0.6 } else { 0.05 }),
                due: Some(left <= 5.0),
            };
            appends.push(prediction(&p)?);
        }
        let failed = MachineFailed { machine_id: machine_id.to_owned(), at: at(failed_ms)?, source: "fixture".into() };
        appends.push(Append::new(
            StreamName::of("machine", machine_id)?,
            ExpectedVersion::Any,
            vec![NewEvent::json(MACHINE_FAILED, 1, &failed, Metadata::from_source("fixture"))?],
        ));
        for d in 0..14i64 {
            let days = 30.0 - d as f64 * 1.6;
            let p = MaintenancePredicted {
                machine_id: machine_id.to_owned(),
                at: at(now_ms - (14 - d) * 86_400_000)?,
                days,
                lower_days: days * 0.7,
                upper_days: days * 1.4,
                model_version: "fixture-1".into(),
                failure_probability: None,
                due: None,
            };
            appends.push(prediction(&p)?);
        }
        let now = at(now_ms)?;
        let serviced = at(now_ms - 20 * 86_400_000)?;
        let mut orders = MachineOrders::default();
        let mut events = Vec::new();
        for (command, by) in [
            (
                OrderCommand::Schedule {
                    kind: OrderKind::Planned,
                    scheduled_for: serviced,
                    by: "planner".into(),
                    note: String::new(),
                },
                "planner",
            ),
            (
                OrderCommand::Perform {
                    order_id: None,
                    performed_at: Some(serviced),
                    by: "tech".into(),
                    note: "bearing greased".into(),
                },
                "tech",
            ),
        ] {
            for e in workorder::decide(&orders, machine_id, &command, now)? {
                workorder::evolve(&mut orders, &e);
                events.push(NewEvent::json(e.event_type(), 1, &e.to_json(), Metadata::by(by))?);
            }
        }
        appends.push(Append::new(StreamName::of(MAINTENANCE, machine_id)?, ExpectedVersion::Any, events));
        self.append(&appends).await?;
        Ok(())
    }

    /// The anomaly's state as the read models hold it.
    pub async fn anomaly_state(&self, anomaly_id: &str) -> Result<Option<String>> {
        let client = self.db.client().await?;
        let rows = readmodel_contract::read_since(&client, ReadModel::Anomalies, 0).await?;
        Ok(rows.anomalies.into_iter().find(|a| a.anomaly_id == anomaly_id).map(|a| a.state))
    }

    /// Appends in one transaction and waits until every read model shows it.
    async fn append(&mut self, appends: &[Append]) -> Result<i64> {
        let done = eventlog::append_and_commit(&self.db, appends).await?;
        let position = done.iter().map(|a| a.last_position).max().unwrap_or(0);
        let readings = appends
            .iter()
            .zip(&done)
            .filter(|(a, _)| a.events.iter().any(|e| matches!(e.payload, Payload::Telemetry { .. })))
            .map(|(_, d)| d.last_position);
        self.last_readings = readings.fold(self.last_readings, i64::max);
        self.wait_until_shown(position).await?;
        Ok(position)
    }

    /// Reports a plant node task's state as the node's supervisor does (through the same
    /// `readmodels::record_node_tasks`), e.g. the anomaly monitor failing since `since_ms`.
    pub async fn report_task(&self, task: &str, state: &'static str, since_ms: i64, error: Option<&str>) -> Result<()> {
        let report = readmodels::NodeTaskReport {
            task: task.to_owned(),
            state,
            since: chrono::DateTime::from_timestamp_millis(since_ms).context("a time in range")?,
            restarts: 0,
            last_error: error.map(str::to_owned),
            lag_events: None,
        };
        readmodels::record_node_tasks(&self.db, &[report]).await
    }

    /// Waits until every projection has applied what it follows up to `position`: the
    /// live projection follows every event, the history projection only uploads (its
    /// position stays at the last one it applied).
    pub async fn wait_until_shown(&self, position: i64) -> Result<()> {
        let deadline = tokio::time::Instant::now() + SYNC_TIMEOUT;
        let readings = self.last_readings.min(position);
        loop {
            let client = self.db.client().await?;
            let progress = readmodel_contract::progress(&client).await;
            if progress.is_ok_and(|p| p.head >= position && p.synced >= readings) {
                return Ok(());
            }
            drop(client);
            if tokio::time::Instant::now() > deadline {
                bail!("the read models did not reach position {position} within {SYNC_TIMEOUT:?}");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

fn gateway(line_id: &str) -> Metadata {
    Metadata::from_source(format!("gateway:{line_id}"))
}

fn prediction(p: &MaintenancePredicted) -> Result<Append> {
    Ok(Append::new(
        StreamName::of(PREDICTION, &p.machine_id)?,
        ExpectedVersion::Any,
        vec![NewEvent::json(MAINTENANCE_PREDICTED, 1, p, Metadata::by("scorer"))?],
    ))
}

/// One request the command API received.
#[derive(Debug, Clone)]
pub struct Received {
    pub path: String,
    pub token: String,
    pub body: Value,
}

/// What the door in front of the command API keeps: what came in, and the statuses to
/// answer the next requests with instead of passing them on.
#[derive(Debug, Clone, Default)]
struct Door {
    received: Arc<Mutex<Vec<Received>>>,
    forced: Arc<Mutex<VecDeque<u16>>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

async fn door(State(door): State<Door>, request: Request, next: Next) -> Response {
    let (parts, body) = request.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, 1 << 20).await else {
        return axum::http::StatusCode::PAYLOAD_TOO_LARGE.into_response();
    };
    let token = parts
        .headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .trim_start_matches("Bearer ")
        .to_string();
    lock(&door.received).push(Received {
        path: parts.uri.path().to_string(),
        token,
        body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    });
    if let Some(status) = lock(&door.forced).pop_front() {
        let status = axum::http::StatusCode::from_u16(status).unwrap_or(axum::http::StatusCode::INTERNAL_SERVER_ERROR);
        let body = json!({"error": {"code": "forced", "message": "answer forced by the test"}});
        return (status, axum::Json(body)).into_response();
    }
    next.run(Request::from_parts(parts, axum::body::Body::from(bytes))).await
}

/// The plant node's command API on a loopback port, behind the recording door.
#[derive(Debug, Clone)]
pub struct CommandApi {
    pub addr: SocketAddr,
    door: Door,
}

impl CommandApi {
    /// Serves the command API of `fixture`'s plant on 127.0.0.1 (a free port), and its
    /// time-travel routes. People sign their commands with their own credentials
    /// ([`PlantFixture::person`]).
    pub async fn start(fixture: &PlantFixture) -> Result<CommandApi> {
        let state = plant::commands::CommandState {
            db: fixture.db.clone(),
            layout: fixture.layout()?.clone(),
            plant_number: PLANT_NUMBER,
            // No remembered answers: a revocation counts at once.
            auth: Arc::new(access::Authenticator::new(fixture.db.clone(), Duration::ZERO)),
            clock: plant::ingest::system_clock(),
            shelve: ShelvePolicy::default(),
        };
        let door_state = Door::default();
        // Time travel's routes are read-only: they pass outside the recording door.
        let travel = plant::timetravel::TimeTravelState::new(state.clone(), 7, 2);
        let app = plant::commands::router(state)
            .layer(axum::middleware::from_fn_with_state(door_state.clone(), door))
            .merge(plant::timetravel::router(travel));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(CommandApi { addr, door: door_state })
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn received(&self) -> Vec<Received> {
        lock(&self.door.received).clone()
    }

    /// Answers the next requests with these statuses instead of passing them on.
    pub fn force(&self, statuses: &[u16]) {
        lock(&self.door.forced).extend(statuses.iter().copied());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn built(l: Layout) -> layout::Layout {
        let e = l.event().expect("a layout event");
        let scale =
            Scale { plants: e.plants, lines_per_plant: e.lines_per_plant, sensors_per_plant: e.sensors_per_plant };
        layout::Layout::from_toml(&e.layout_toml, &scale).expect("the fixture's layout builds")
    }

    #[test]
    fn small_and_full_plants_have_the_asked_size_and_the_product_ids() {
        let small = built(Layout::small(2, 3, 4));
        assert_eq!((small.plants().len(), small.lines().len(), small.machines().len()), (1, 2, 6));
        assert_eq!(small.sensor_count(), 24);
        assert!(small.machines().iter().all(|m| m.sensors.len() == 4));
        assert_eq!(small.machine_by_id("P1-L02-M003").map(|m| m.sensor_ids.start), Some(1_000_020));
        let full = built(Layout::full());
        assert_eq!((full.lines().len(), full.machines().len(), full.sensor_count()), (10, 670, 10_000));
        assert!(small_layout_toml(1, 1, 10_000).is_err(), "a cnc machine has fewer sensors");
    }
}
