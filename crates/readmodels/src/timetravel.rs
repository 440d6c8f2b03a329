//! Time travel: the plant exactly as it was at an instant, folded from the log by the live
//! model itself (not from sampled copies), on either of two clocks.
//!
//! * **As we knew it then** ([`Clock::Known`]): the longest prefix of the log recorded at
//!   or before the instant — what the live read models showed a supervisor then.
//! * **As it happened** ([`Clock::Happened`]): every event that had happened by the
//!   instant, by the time it states (a reading's own time, an anomaly's start, an
//!   acknowledgement's time; `domain::events::occurred_at`), folded in log order; a
//!   gateway's upload that arrived late after an outage counts from when its readings
//!   were taken. A layout holds from when it was configured on the plant's clock.
//!
//! So that a fold never starts from the beginning, the live projection freezes its model
//! every [`CHECKPOINT_EVERY_EVENTS`] positions ([`Recorder`]), with how far each clock had
//! got, and lists the events that arrived late. A reconstruction thaws the newest
//! checkpoint wholly before the instant on its clock and replays what follows: by
//! recorded time until the first event recorded after the instant; by happened time until
//! the plant's clock is past the instant by more than [`LATE_AFTER_MS`], and then only the
//! late events that had happened by then.

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use domain::events::LAYOUT_CONFIGURED;
use eventlog::{GenericClient, Payload, RecordedEvent, Transaction};
use readmodel_contract::{Anomaly, MachineStatus, Maintenance, Rollup, SensorState};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::live::{LIVE, LiveModel, PlantLayout, SensorStatus};

/// An event whose time is more than this before the plant's clock (the newest earliest-
/// reading time seen) arrived late and is listed in `timetravel_late`. Changing it needs
/// a rebuild of the live read models (the list is kept by it).
pub const LATE_AFTER_MS: i64 = 5 * 60_000;

/// The live model is frozen when a batch crosses a multiple of this many positions.
pub const CHECKPOINT_EVERY_EVENTS: i64 = 2_000;

/// Events read from the log per query while replaying.
const PAGE_EVENTS: usize = 500;

/// Which clock an instant is read on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Clock {
    /// By the readings' own time (and the time each event states).
    Happened,
    /// By when the plant recorded each event: what a supervisor could have seen.
    Known,
}

impl Clock {
    pub fn as_str(self) -> &'static str {
        match self {
            Clock::Happened => "happened",
            Clock::Known => "known",
        }
    }

    pub fn parse(s: &str) -> Option<Clock> {
        match s {
            "happened" => Some(Clock::Happened),
            "known" => Some(Clock::Known),
            _ => None,
        }
    }
}

/// How far each clock had got after a prefix of the log (ms since the epoch; `i64::MIN`
/// before any event said).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Clocks {
    /// Newest `recorded_at`.
    pub recorded_ms: i64,
    /// Newest time anything happened (a batch's latest reading).
    pub happened_ms: i64,
    /// Newest earliest-reading time (a batch's first reading): the plant's clock that
    /// decides whether an event is late.
    pub started_ms: i64,
}

impl Default for Clocks {
    fn default() -> Self {
        Clocks { recorded_ms: i64::MIN, happened_ms: i64::MIN, started_ms: i64::MIN }
    }
}

/// When one event happened: from its first to its last reading (one instant for a domain
/// event).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Happened {
    first_ms: i64,
    last_ms: i64,
}

/// When `e` happened, on a plant whose clock stands at `started_ms`; `readings` are its
/// readings when it is a telemetry batch.
fn happened(e: &RecordedEvent, readings: &[telemetry::Reading], started_ms: i64) -> Happened {
    match &e.payload {
        Payload::Telemetry { occurred_at, .. } => {
            let first_ms = occurred_at.timestamp_millis();
            let last_ms = readings.iter().map(|r| r.ts_ms).max().unwrap_or(first_ms).max(first_ms);
            Happened { first_ms, last_ms }
        }
        Payload::Json(body) => {
            let at = match domain::events::occurred_at(&e.event_type, body) {
                Some(t) => t.timestamp_millis(),
                // A layout holds from when it is configured, on the plant's own clock.
                None if e.event_type == LAYOUT_CONFIGURED => started_ms,
                None => e.recorded_at.timestamp_millis(),
            };
            Happened { first_ms: at, last_ms: at }
        }
    }
}

impl Clocks {
    /// Moves the clocks past `e`; returns when it happened if it arrived late.
    fn advance(&mut self, e: &RecordedEvent, h: Happened) -> Option<i64> {
        let late = h.first_ms < self.started_ms.saturating_sub(LATE_AFTER_MS);
        self.recorded_ms = self.recorded_ms.max(e.recorded_at.timestamp_millis());
        self.happened_ms = self.happened_ms.max(h.last_ms);
        self.started_ms = self.started_ms.max(h.first_ms);
        late.then_some(h.first_ms)
    }

    fn memory(&self) -> Value {
        json!([self.recorded_ms, self.happened_ms, self.started_ms])
    }

    fn from_memory(v: &Value) -> Option<Clocks> {
        let n = |i: usize| v.get(i)?.as_i64();
        Some(Clocks { recorded_ms: n(0)?, happened_ms: n(1)?, started_ms: n(2)? })
    }
}

/// The live projection's part in time travel: the clocks, the late events, the
/// checkpoints (written in the projection's own transactions).
#[derive(Debug)]
pub struct Recorder {
    clocks: Clocks,
    late: Vec<(i64, i64)>,
    every: i64,
}

impl Recorder {
    /// A recorder that checkpoints every `every` positions (at least 1).
    pub fn new(every: i64) -> Recorder {
        Recorder { clocks: Clocks::default(), late: Vec::new(), every: every.max(1) }
    }

    pub fn every(&self) -> i64 {
        self.every
    }

    /// The recorder of a projection whose stored memory is `memory` at `position`; `None`
    /// when a projection that has folded events kept no clocks (a version from before time
    /// travel): its read models must be folded again.
    pub fn restore(every: i64, memory: &Value, position: i64) -> Option<Recorder> {
        match memory.get("timetravel").and_then(Clocks::from_memory) {
            Some(clocks) => Some(Recorder { clocks, ..Recorder::new(every) }),
            None if position == 0 => Some(Recorder::new(every)),
            None => None,
        }
    }

    /// Notes one event about to be folded.
    pub fn observe(&mut self, e: &RecordedEvent) {
        let readings = match &e.payload {
            Payload::Telemetry { .. } => e.readings().unwrap_or_default(),
            Payload::Json(_) => Vec::new(),
        };
        let h = happened(e, &readings, self.clocks.started_ms);
        if let Some(at) = self.clocks.advance(e, h) {
            self.late.push((e.position, at));
        }
    }

    /// Adds the clocks to the projection's memory.
    pub fn remember(&self, memory: &mut Value) {
        if let Some(m) = memory.as_object_mut() {
            m.insert("timetravel".into(), self.clocks.memory());
        }
    }

    /// Writes the late events of the batch that ends at `last` (which began after
    /// `first_before`) and, when the batch crossed a multiple of
    /// its interval, the model as a checkpoint.
    pub async fn store(&mut self, tx: &Transaction<'_>, model: &LiveModel, first_before: i64, last: i64) -> Result<()> {
        if !self.late.is_empty() {
            let (positions, at): (Vec<i64>, Vec<i64>) = self.late.drain(..).unzip();
            tx.execute(include_str!("../sql/timetravel/insert_late.sql"), &[&positions, &at]).await?;
        }
        if last.div_euclid(self.every) > first_before.div_euclid(self.every) {
            let state = model.freeze()?;
            let c = self.clocks;
            tx.execute(
                include_str!("../sql/timetravel/save_checkpoint.sql"),
                &[&last, &c.recorded_ms, &c.happened_ms, &c.started_ms, &state],
            )
            .await?;
        }
        Ok(())
    }
}

/// A reconstruction: the live model at the instant and what it took.
#[derive(Debug)]
pub struct Reconstruction {
    pub model: LiveModel,
    /// The newest position folded (0: none).
    pub through: i64,
    /// The checkpoint the fold started from (0: the beginning).
    pub checkpoint: i64,
    /// Events folded after the checkpoint.
    pub replayed: usize,
}

/// The plant `plant_number` exactly as it was at `at_ms` on `clock`, from the events the
/// live projection has stored. `known_layout` spares building a layout already built.
pub async fn reconstruct(
    client: &impl GenericClient,
    plant_number: u16,
    clock: Clock,
    at_ms: i64,
    known_layout: Option<&PlantLayout>,
) -> Result<Reconstruction> {
    let frontier = eventlog::checkpoint(client, LIVE).await?;
    let sql = match clock {
        Clock::Known => include_str!("../sql/timetravel/checkpoint_recorded.sql"),
        Clock::Happened => include_str!("../sql/timetravel/checkpoint_happened.sql"),
    };
    let stmt = client.prepare_cached(sql).await?;
    let (mut model, checkpoint, mut clocks) = match client.query_opt(&stmt, &[&at_ms, &frontier]).await? {
        Some(row) => {
            let position: i64 = row.get(0);
            let bytes: Vec<u8> = row.get(4);
            match LiveModel::thaw(&bytes, known_layout) {
                Ok(model) => (
                    model,
                    position,
                    Clocks { recorded_ms: row.get(1), happened_ms: row.get(2), started_ms: row.get(3) },
                ),
                Err(e) => {
                    // Folding from the beginning gives the same answer, only slower.
                    tracing::error!(position, "a time-travel checkpoint cannot be read, folding from the start: {e:#}");
                    (LiveModel::new(plant_number), 0, Clocks::default())
                }
            }
        }
        None => (LiveModel::new(plant_number), 0, Clocks::default()),
    };
    let mut after = checkpoint;
    let mut through = checkpoint;
    let mut replayed = 0;
    // Where the scan in log order stopped with events of the log still to come.
    let mut stopped_at = None;
    'scan: loop {
        let events = eventlog::read_all(client, after, PAGE_EVENTS, None).await.context("reading the log")?;
        let Some(last) = events.last().map(|e| e.position) else { break };
        for e in &events {
            if e.position > frontier {
                break 'scan;
            }
            match clock {
                Clock::Known => {
                    if e.recorded_at.timestamp_millis() > at_ms {
                        break 'scan;
                    }
                    model.apply(e);
                    through = e.position;
                    replayed += 1;
                }
                Clock::Happened => {
                    if clocks.started_ms.saturating_sub(LATE_AFTER_MS) > at_ms {
                        stopped_at = Some(e.position - 1);
                        break 'scan;
                    }
                    if fold_happened(&mut model, &mut clocks, e, at_ms) {
                        through = e.position;
                        replayed += 1;
                    }
                }
            }
        }
        model.take_changes();
        after = last;
    }
    if let Some(scanned) = stopped_at {
        let stmt = client.prepare_cached(include_str!("../sql/timetravel/late_events.sql")).await?;
        let positions: Vec<i64> =
            client.query(&stmt, &[&scanned, &frontier, &at_ms]).await?.iter().map(|r| r.get(0)).collect();
        for chunk in positions.chunks(PAGE_EVENTS) {
            for e in eventlog::read_positions(client, chunk).await.context("reading late events")? {
                if fold_happened(&mut model, &mut clocks, &e, at_ms) {
                    through = e.position;
                    replayed += 1;
                }
            }
            model.take_changes();
        }
    }
    model.take_changes();
    Ok(Reconstruction { model, through, checkpoint, replayed })
}

/// Folds what of `e` had happened by `at_ms`; says whether anything had.
fn fold_happened(model: &mut LiveModel, clocks: &mut Clocks, e: &RecordedEvent, at_ms: i64) -> bool {
    match &e.payload {
        Payload::Telemetry { .. } => {
            let mut readings = match e.readings() {
                Ok(r) => r,
                Err(_) => {
                    // The live fold reports it; here it is left out the same way.
                    model.apply(e);
                    return false;
                }
            };
            let h = happened(e, &readings, clocks.started_ms);
            clocks.advance(e, h);
            if h.first_ms > at_ms {
                return false;
            }
            readings.retain(|r| r.ts_ms <= at_ms);
            model.apply_readings(e.position, &readings);
            true
        }
        Payload::Json(_) => {
            let h = happened(e, &[], clocks.started_ms);
            clocks.advance(e, h);
            if h.first_ms > at_ms {
                return false;
            }
            model.apply(e);
            true
        }
    }
}

/// The plant at an instant, as readers see the read models' rows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Floor {
    pub clock: Clock,
    pub at_ms: i64,
    /// The newest event folded (0: none yet).
    pub through_position: i64,
    pub plant_status: Option<Rollup>,
    pub line_status: Vec<Rollup>,
    pub machine_status: Vec<MachineStatus>,
    pub sensor_state: Vec<SensorState>,
    pub anomalies: Vec<Anomaly>,
    pub maintenance: Vec<Maintenance>,
}

fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

fn list<T: serde::de::DeserializeOwned>(v: &[Value]) -> Vec<T> {
    v.iter().filter_map(|x| serde_json::from_value(x.clone()).ok()).collect()
}

impl Floor {
    /// The rows the live model holds, each as the live projection writes it, in key order.
    pub fn of(model: &LiveModel, clock: Clock, at_ms: i64, through_position: i64) -> Floor {
        use domain::events::Severity;
        let mut floor = Floor {
            clock,
            at_ms,
            through_position,
            plant_status: None,
            line_status: Vec::new(),
            machine_status: Vec::new(),
            sensor_state: Vec::new(),
            anomalies: Vec::new(),
            maintenance: Vec::new(),
        };
        let rollup = |id: &str, r: &crate::live::model::Rollup, due: u32, rate: f64| Rollup {
            id: id.to_owned(),
            sensors: r.sensors as i32,
            reporting: r.reporting() as i32,
            stale: r.stale() as i32,
            warning: r.by_status[SensorStatus::Warning as usize] as i32,
            anomalous: r.by_status[SensorStatus::Anomalous as usize] as i32,
            open_critical: r.open[Severity::Critical as usize] as i32,
            open_major: r.open[Severity::Major as usize] as i32,
            open_minor: r.open[Severity::Minor as usize] as i32,
            machines_due_7d: due as i32,
            readings_per_s: rate,
            newest_reading_ms: r.newest_ms,
            position: r.position,
        };
        if let Some(l) = model.layout.as_ref() {
            let p = &model.plant;
            floor.plant_status = Some(rollup(&l.plant().id, &p.rollup, p.machines_due_7d, p.shown_rate));
            floor.line_status = model
                .lines
                .iter()
                .enumerate()
                .map(|(x, a)| rollup(&l.line(x).id, &a.rollup, a.machines_due_7d, a.shown_rate))
                .collect();
            floor.machine_status = model
                .machines
                .iter()
                .enumerate()
                .map(|(m, agg)| {
                    let machine = l.machine(m);
                    let r = rollup(&machine.id, &agg.rollup, 0, 0.0);
                    MachineStatus {
                        machine_id: r.id,
                        line_id: l.layout.lines()[machine.line].id.clone(),
                        status: agg.status().as_str().to_owned(),
                        sensors: r.sensors,
                        reporting: r.reporting,
                        stale: r.stale,
                        warning: r.warning,
                        anomalous: r.anomalous,
                        open_critical: r.open_critical,
                        open_major: r.open_major,
                        open_minor: r.open_minor,
                        due_in_days: agg.due_in_days,
                        due: agg.is_due(),
                        newest_reading_ms: r.newest_reading_ms,
                        position: r.position,
                    }
                })
                .collect();
            floor.sensor_state = model
                .sensors
                .iter()
                .enumerate()
                .filter(|(_, s)| s.has_value)
                .map(|(ix, s)| SensorState {
                    sensor_id: (l.first_sensor_id + ix as u32) as i32,
                    machine_id: l.machine(l.machine_of[ix] as usize).id.clone(),
                    value: s.value,
                    ts_ms: s.ts_ms,
                    status: s.status.as_str().to_owned(),
                    position: s.position,
                })
                .collect();
            floor.line_status.sort_by(|a, b| a.id.cmp(&b.id));
            floor.machine_status.sort_by(|a, b| a.machine_id.cmp(&b.machine_id));
            floor.sensor_state.sort_by_key(|s| s.sensor_id);
        }
        floor.anomalies = model
            .anomalies
            .values()
            .map(|a| Anomaly {
                anomaly_id: a.anomaly_id.clone(),
                machine_id: a.machine_id.clone(),
                line_id: a.line_id.clone(),
                severity: a.severity.as_str().to_owned(),
                state: a.state.as_str().to_owned(),
                score: a.score,
                sensors: a.sensors.as_array().map(|v| list(v)).unwrap_or_default(),
                explanation: a.explanation.clone(),
                started_at_ms: ms(a.started_at),
                updated_at_ms: ms(a.updated_at),
                resolved_at_ms: a.resolved_at.map(ms),
                acknowledged_by: a.acknowledged_by.clone(),
                acknowledged_at_ms: a.acknowledged_at.map(ms),
                shelved_by: a.shelved_by.clone(),
                shelved_until_ms: a.shelved_until.map(ms),
                notes: list(&a.notes),
                position: a.position,
            })
            .collect();
        floor.anomalies.sort_by(|a, b| a.anomaly_id.cmp(&b.anomaly_id));
        floor.maintenance = model
            .maintenance
            .iter()
            .map(|(m, r)| Maintenance {
                machine_id: m.clone(),
                predicted_days: r.predicted_days,
                lower_days: r.lower_days,
                upper_days: r.upper_days,
                predicted_at_ms: r.predicted_at.map(ms),
                model_version: r.model_version.clone(),
                open_order_id: r.open_order_id.clone(),
                open_order_kind: r.open_order_kind.clone(),
                scheduled_for_ms: r.scheduled_for.map(ms),
                last_performed_at_ms: r.last_performed_at.map(ms),
                position: r.position,
            })
            .collect();
        floor.maintenance.sort_by(|a, b| a.machine_id.cmp(&b.machine_id));
        floor
    }
}

/// The plant at `at_ms` on `clock`, as rows.
pub async fn floor_at(
    client: &impl GenericClient,
    plant_number: u16,
    clock: Clock,
    at_ms: i64,
    known_layout: Option<&PlantLayout>,
) -> Result<(Floor, Reconstruction)> {
    let r = reconstruct(client, plant_number, clock, at_ms, known_layout).await?;
    Ok((Floor::of(&r.model, clock, at_ms, r.through), r))
}
