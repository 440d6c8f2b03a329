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
//! at every multiple of [`CHECKPOINT_EVERY_EVENTS`] positions ([`Recorder`]), with how far
//! each clock had got, and lists the events that arrived late. It freezes the model as it
//! stands right after the event at the multiple, in the middle of a batch if need be, so
//! the checkpoints are a function of the log alone: a rebuild, whatever its batches,
//! writes them row for row as the live projection did. A reconstruction thaws the newest
//! checkpoint wholly before the instant on its clock and replays what follows: by
//! recorded time until the first event recorded after the instant; by happened time until
//! the plant's clock is past the instant by more than [`LATE_AFTER_MS`], and then only the
//! late events that had happened by then.

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use domain::events::*;
use eventlog::{GenericClient, Payload, RecordedEvent, Transaction};
pub use readmodel_contract::timetravel::{
    Change, ChangeKind, Clock, Diff, Floor, ShiftAnomaly, ShiftNote, ShiftReport,
};
use readmodel_contract::{Anomaly, MachineStatus, Maintenance, Rollup, SensorState};
use serde_json::{Value, json};

use crate::live::{LIVE, LiveModel, PlantLayout, SensorStatus};

/// An event whose time is more than this before the plant's clock (the newest earliest-
/// reading time seen) arrived late and is listed in `timetravel_late`. Changing it needs
/// a rebuild of the live read models (the list is kept by it).
pub const LATE_AFTER_MS: i64 = 5 * 60_000;

/// The live model is frozen at every multiple of this many positions.
pub const CHECKPOINT_EVERY_EVENTS: i64 = 1_000;

/// Events read from the log per query while replaying.
const PAGE_EVENTS: usize = 500;

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
    /// The position at which the model is frozen next: the first multiple of `every` after
    /// the last position folded.
    next: i64,
}

impl Recorder {
    /// A recorder that checkpoints every `every` positions (at least 1).
    pub fn new(every: i64) -> Recorder {
        Recorder::at(every, Clocks::default(), 0)
    }

    fn at(every: i64, clocks: Clocks, position: i64) -> Recorder {
        let every = every.max(1);
        let next = position.div_euclid(every).saturating_add(1).saturating_mul(every);
        Recorder { clocks, late: Vec::new(), every, next }
    }

    pub fn every(&self) -> i64 {
        self.every
    }

    /// The recorder of a projection whose stored memory is `memory` at `position`; `None`
    /// when a projection that has folded events kept no clocks (a version from before time
    /// travel): its read models must be folded again.
    pub fn restore(every: i64, memory: &Value, position: i64) -> Option<Recorder> {
        match memory.get("timetravel").and_then(Clocks::from_memory) {
            Some(clocks) => Some(Recorder::at(every, clocks, position)),
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

    /// Whether the model, having just folded the event at `position`, is to be frozen
    /// now ([`Recorder::checkpoint`]). The one test the live projection makes per event.
    #[inline]
    pub fn due(&self, position: i64) -> bool {
        position >= self.next
    }

    /// Freezes `model`, which has folded the log through `position` (a multiple of the
    /// interval: the log's positions have no gaps), as a checkpoint.
    pub async fn checkpoint(&mut self, tx: &Transaction<'_>, model: &LiveModel, position: i64) -> Result<()> {
        let state = model.freeze()?;
        let c = self.clocks;
        tx.execute(
            include_str!("../sql/timetravel/save_checkpoint.sql"),
            &[&position, &c.recorded_ms, &c.happened_ms, &c.started_ms, &state],
        )
        .await?;
        self.next = position.div_euclid(self.every).saturating_add(1).saturating_mul(self.every);
        Ok(())
    }

    /// Adds the clocks to the projection's memory.
    pub fn remember(&self, memory: &mut Value) {
        if let Some(m) = memory.as_object_mut() {
            m.insert("timetravel".into(), self.clocks.memory());
        }
    }

    /// Writes the late events of the batch just folded.
    pub async fn store(&mut self, tx: &Transaction<'_>) -> Result<()> {
        if !self.late.is_empty() {
            let (positions, at): (Vec<i64>, Vec<i64>) = self.late.drain(..).unzip();
            tx.execute(include_str!("../sql/timetravel/insert_late.sql"), &[&positions, &at]).await?;
        }
        Ok(())
    }
}

/// What time travel keeps beside the read models.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Kept {
    pub checkpoints: i64,
    /// The frozen models' bytes (as stored, before TOAST compression).
    pub checkpoint_bytes: i64,
    pub late_events: i64,
}

pub async fn storage(client: &impl GenericClient) -> Result<Kept> {
    let row = client.query_one(include_str!("../sql/timetravel/storage.sql"), &[]).await?;
    Ok(Kept { checkpoints: row.get(0), checkpoint_bytes: row.get(1), late_events: row.get(2) })
}

/// What one pruning forgot.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pruned {
    pub checkpoints: u64,
    pub late_events: u64,
}

/// Forgets the checkpoints and late events that no instant at or after `cutoff` needs:
/// time travel only reaches back as far as the raw telemetry is kept, so the node prunes
/// with that retention. Every instant from `cutoff` on is rebuilt exactly as before.
pub async fn prune(db: &eventlog::Database, cutoff: DateTime<Utc>) -> Result<Pruned> {
    let client = db.client().await?;
    let row = client
        .query_one(include_str!("../sql/timetravel/prune.sql"), &[&cutoff.timestamp_millis()])
        .await
        .context("pruning time travel's checkpoints")?;
    let count = |i: usize| u64::try_from(row.get::<_, i64>(i)).unwrap_or(0);
    Ok(Pruned { checkpoints: count(0), late_events: count(1) })
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

fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

fn list<T: serde::de::DeserializeOwned>(v: &[Value]) -> Vec<T> {
    v.iter().filter_map(|x| serde_json::from_value(x.clone()).ok()).collect()
}

/// The rows the live model holds, each as the live projection writes it, in key order.
pub fn floor(model: &LiveModel, clock: Clock, at_ms: i64, through_position: i64) -> Floor {
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

/// The plant at `at_ms` on `clock`, as rows.
pub async fn floor_at(
    client: &impl GenericClient,
    plant_number: u16,
    clock: Clock,
    at_ms: i64,
    known_layout: Option<&PlantLayout>,
) -> Result<(Floor, Reconstruction)> {
    let r = reconstruct(client, plant_number, clock, at_ms, known_layout).await?;
    Ok((floor(&r.model, clock, at_ms, r.through), r))
}

/// Sensor changes a diff lists at most; the others are counted.
pub const MAX_SENSOR_CHANGES: usize = 2_000;

/// The categories of the streams whose events a diff lists (readings are summed up as
/// sensors' and machines' states).
const LISTED_CATEGORIES: [&str; 4] = [ANOMALY, MAINTENANCE, PREDICTION, "machine"];

/// What changed between `from_ms` and `to_ms` on `clock`, in time order, with the notes
/// people wrote and the plant at both ends.
pub struct Between {
    pub diff: Diff,
    pub notes: Vec<ShiftNote>,
    pub from: Floor,
    pub to: Floor,
}

/// What changed in the plant between two instants: the anomalies opened, acknowledged,
/// shelved, resolved and annotated, predictions crossing the 7-day line, work orders and
/// failures (each event, when it happened on `clock`), and the machines and sensors whose
/// state differs between the two instants.
pub async fn between(
    client: &impl GenericClient,
    plant_number: u16,
    clock: Clock,
    from_ms: i64,
    to_ms: i64,
    known_layout: Option<&PlantLayout>,
) -> Result<Between> {
    let (from_ms, to_ms) = (from_ms.min(to_ms), from_ms.max(to_ms));
    let (from, a) = floor_at(client, plant_number, clock, from_ms, known_layout).await?;
    let layout = a.model.layout.as_ref().or(known_layout);
    let (to, b) = floor_at(client, plant_number, clock, to_ms, layout).await?;
    // Events before the earlier instant's checkpoint all happened (or were recorded)
    // before it; every event folded at the later instant is at or before its `through`.
    let after = match clock {
        Clock::Known => a.through,
        Clock::Happened => a.checkpoint,
    };
    let mut changes = Vec::new();
    let mut notes = Vec::new();
    let machine_of: std::collections::HashMap<&str, &str> =
        from.anomalies.iter().chain(&to.anomalies).map(|x| (x.anomaly_id.as_str(), x.machine_id.as_str())).collect();
    let mut due: std::collections::HashMap<String, bool> =
        from.machine_status.iter().map(|m| (m.machine_id.clone(), m.due)).collect();
    let categories: Vec<String> = LISTED_CATEGORIES.iter().map(|c| (*c).to_owned()).collect();
    let mut cursor = after;
    'read: loop {
        let events = eventlog::read_all(client, cursor, PAGE_EVENTS, Some(&categories)).await?;
        let Some(last) = events.last().map(|e| e.position) else { break };
        for e in &events {
            if e.position > b.through {
                break 'read;
            }
            let Payload::Json(body) = &e.payload else { continue };
            let at = match clock {
                Clock::Known => e.recorded_at.timestamp_millis(),
                Clock::Happened => happened(e, &[], i64::MIN).first_ms,
            };
            if at <= from_ms || at > to_ms {
                continue;
            }
            listed(e, body, at, &machine_of, &mut due, &mut changes, &mut notes);
        }
        cursor = last;
    }
    // States that differ between the two instants.
    let before: std::collections::HashMap<&str, &str> =
        from.machine_status.iter().map(|m| (m.machine_id.as_str(), m.status.as_str())).collect();
    for m in &to.machine_status {
        let was = before.get(m.machine_id.as_str()).copied().unwrap_or("none");
        if was != m.status {
            changes.push(Change {
                at_ms: m.newest_reading_ms.filter(|t| *t > from_ms && *t <= to_ms).unwrap_or(to_ms),
                kind: ChangeKind::MachineStatus,
                machine_id: Some(m.machine_id.clone()),
                anomaly_id: None,
                order_id: None,
                sensor_id: None,
                by: None,
                from: Some(was.to_owned()),
                to: Some(m.status.clone()),
                summary: format!("{} {was} → {}", m.machine_id, m.status),
                position: 0,
            });
        }
    }
    let before: std::collections::HashMap<i32, &str> =
        from.sensor_state.iter().map(|s| (s.sensor_id, s.status.as_str())).collect();
    let mut not_listed = 0u64;
    let mut listed_sensors = 0usize;
    for s in &to.sensor_state {
        let was = before.get(&s.sensor_id).copied().unwrap_or("none");
        if was == s.status {
            continue;
        }
        if listed_sensors >= MAX_SENSOR_CHANGES {
            not_listed += 1;
            continue;
        }
        listed_sensors += 1;
        changes.push(Change {
            at_ms: Some(s.ts_ms).filter(|t| *t > from_ms && *t <= to_ms).unwrap_or(to_ms),
            kind: ChangeKind::SensorState,
            machine_id: Some(s.machine_id.clone()),
            anomaly_id: None,
            order_id: None,
            sensor_id: Some(s.sensor_id),
            by: None,
            from: Some(was.to_owned()),
            to: Some(s.status.clone()),
            summary: format!("sensor {} {was} → {}", s.sensor_id, s.status),
            position: 0,
        });
    }
    changes.sort_by_key(|c| (c.at_ms, c.position, c.kind));
    let diff = Diff { clock, from_ms, to_ms, changes, sensor_changes_not_listed: not_listed };
    Ok(Between { diff, notes, from, to })
}

/// The change one domain event makes to the list (and the note it carries).
fn listed(
    e: &RecordedEvent,
    body: &Value,
    at_ms: i64,
    machine_of: &std::collections::HashMap<&str, &str>,
    due: &mut std::collections::HashMap<String, bool>,
    changes: &mut Vec<Change>,
    notes: &mut Vec<ShiftNote>,
) {
    let change = |kind, machine: Option<&str>, anomaly: Option<&str>, by: Option<&str>, summary: String| Change {
        at_ms,
        kind,
        machine_id: machine.map(str::to_owned),
        anomaly_id: anomaly.map(str::to_owned),
        order_id: None,
        sensor_id: None,
        by: by.map(str::to_owned),
        from: None,
        to: None,
        summary,
        position: e.position,
    };
    let mut note = |by: &str, anomaly: &str, text: &str| {
        if !text.is_empty() {
            notes.push(ShiftNote {
                at_ms,
                by: by.to_owned(),
                anomaly_id: Some(anomaly.to_owned()),
                machine_id: machine_of.get(anomaly).map(|m| (*m).to_owned()),
                text: text.to_owned(),
            });
        }
    };
    match e.event_type.as_str() {
        ANOMALY_DETECTED => {
            if let Ok(d) = serde_json::from_value::<AnomalyDetected>(body.clone()) {
                let summary = format!("{} anomaly: {}", d.severity.as_str(), d.explanation);
                changes.push(change(
                    ChangeKind::AnomalyOpened,
                    Some(&d.machine_id),
                    Some(&d.anomaly_id),
                    None,
                    summary,
                ));
            }
        }
        ANOMALY_ACKNOWLEDGED => {
            if let Ok(a) = serde_json::from_value::<AnomalyAcknowledged>(body.clone()) {
                let m = machine_of.get(a.anomaly_id.as_str()).copied();
                let summary = format!("acknowledged by {}", a.by);
                changes.push(change(ChangeKind::AnomalyAcknowledged, m, Some(&a.anomaly_id), Some(&a.by), summary));
                note(&a.by, &a.anomaly_id, &a.note);
            }
        }
        ANOMALY_SHELVED => {
            if let Ok(s) = serde_json::from_value::<AnomalyShelved>(body.clone()) {
                let m = machine_of.get(s.anomaly_id.as_str()).copied();
                let summary = format!("shelved by {} until {}", s.by, s.until.format("%Y-%m-%d %H:%M"));
                changes.push(change(ChangeKind::AnomalyShelved, m, Some(&s.anomaly_id), Some(&s.by), summary));
                note(&s.by, &s.anomaly_id, &s.note);
            }
        }
        ANOMALY_RESOLVED => {
            if let Ok(r) = serde_json::from_value::<AnomalyResolved>(body.clone()) {
                let m = machine_of.get(r.anomaly_id.as_str()).copied();
                changes.push(change(
                    ChangeKind::AnomalyResolved,
                    m,
                    Some(&r.anomaly_id),
                    None,
                    "anomaly resolved".into(),
                ));
            }
        }
        ANOMALY_NOTE_ADDED => {
            if let Ok(n) = serde_json::from_value::<AnomalyNoteAdded>(body.clone()) {
                let m = machine_of.get(n.anomaly_id.as_str()).copied();
                let summary = format!("note by {}: {}", n.by, n.text);
                changes.push(change(ChangeKind::NoteAdded, m, Some(&n.anomaly_id), Some(&n.by), summary));
                note(&n.by, &n.anomaly_id, &n.text);
            }
        }
        MAINTENANCE_PREDICTED => {
            if let Ok(p) = serde_json::from_value::<MaintenancePredicted>(body.clone()) {
                let now = crate::live::model::is_due(Some(p.lower_days), p.due);
                let was = due.insert(p.machine_id.clone(), now).unwrap_or(false);
                if was != now {
                    let (kind, words) = if now {
                        (ChangeKind::PredictionDue, "due within 7 days")
                    } else {
                        (ChangeKind::PredictionNoLongerDue, "no longer due within 7 days")
                    };
                    let summary =
                        format!("{words}: service in {:.1} days ({:.1}–{:.1})", p.days, p.lower_days, p.upper_days);
                    let mut c = change(kind, Some(&p.machine_id), None, None, summary);
                    c.from = Some(if was { "due" } else { "not due" }.to_owned());
                    c.to = Some(if now { "due" } else { "not due" }.to_owned());
                    changes.push(c);
                }
            }
        }
        MAINTENANCE_SCHEDULED => {
            if let Ok(s) = serde_json::from_value::<MaintenanceScheduled>(body.clone()) {
                let summary = format!(
                    "{} service {} scheduled by {} for {}",
                    s.kind.as_str(),
                    s.order_id,
                    s.by,
                    s.scheduled_for.format("%Y-%m-%d %H:%M")
                );
                let mut c = change(ChangeKind::WorkOrderScheduled, Some(&s.machine_id), None, Some(&s.by), summary);
                c.order_id = Some(s.order_id);
                changes.push(c);
            }
        }
        MAINTENANCE_PERFORMED => {
            if let Ok(p) = serde_json::from_value::<MaintenancePerformed>(body.clone()) {
                let summary = format!("service {} recorded by {}", p.order_id, p.by);
                let mut c = change(ChangeKind::WorkOrderPerformed, Some(&p.machine_id), None, Some(&p.by), summary);
                c.order_id = Some(p.order_id);
                changes.push(c);
                if !p.note.is_empty() {
                    notes.push(ShiftNote {
                        at_ms,
                        by: p.by,
                        anomaly_id: None,
                        machine_id: Some(p.machine_id),
                        text: p.note,
                    });
                }
            }
        }
        MACHINE_FAILED => {
            if let Ok(f) = serde_json::from_value::<MachineFailed>(body.clone()) {
                let summary = format!("machine failed (reported by {})", f.source);
                changes.push(change(ChangeKind::MachineFailed, Some(&f.machine_id), None, None, summary));
            }
        }
        _ => {}
    }
}

/// The report of a shift (`from_ms`–`to_ms`): the anomalies raised in it and how they
/// ended, time to acknowledge, machines failed and serviced, predictions that crossed the
/// 7-day line, the notes people wrote, and what is handed over open.
pub async fn shift_report(
    client: &impl GenericClient,
    plant_number: u16,
    clock: Clock,
    from_ms: i64,
    to_ms: i64,
    known_layout: Option<&PlantLayout>,
) -> Result<ShiftReport> {
    let Between { diff, notes, to, .. } = between(client, plant_number, clock, from_ms, to_ms, known_layout).await?;
    let rows: std::collections::HashMap<&str, &Anomaly> =
        to.anomalies.iter().map(|a| (a.anomaly_id.as_str(), a)).collect();
    let of = |kind: ChangeKind| diff.changes.iter().filter(|c| c.kind == kind).cloned().collect::<Vec<_>>();
    let anomalies: Vec<ShiftAnomaly> = diff
        .changes
        .iter()
        .filter(|c| c.kind == ChangeKind::AnomalyOpened)
        .filter_map(|c| rows.get(c.anomaly_id.as_deref()?))
        .map(|a| ShiftAnomaly {
            anomaly_id: a.anomaly_id.clone(),
            machine_id: a.machine_id.clone(),
            severity: a.severity.clone(),
            started_at_ms: a.started_at_ms,
            state_at_end: a.state.clone(),
            acknowledged_by: a.acknowledged_by.clone(),
            time_to_acknowledge_s: a
                .acknowledged_at_ms
                .filter(|t| *t <= diff.to_ms)
                .map(|t| (t - a.started_at_ms).max(0) as f64 / 1000.0),
            resolved_at_ms: a.resolved_at_ms,
            explanation: a.explanation.clone(),
        })
        .collect();
    let acked: Vec<f64> = anomalies.iter().filter_map(|a| a.time_to_acknowledge_s).collect();
    let mean = (!acked.is_empty()).then(|| acked.iter().sum::<f64>() / acked.len() as f64);
    let max = acked.iter().copied().reduce(f64::max);
    let mut predictions = of(ChangeKind::PredictionDue);
    predictions.extend(of(ChangeKind::PredictionNoLongerDue));
    predictions.sort_by_key(|c| (c.at_ms, c.position));
    Ok(ShiftReport {
        clock,
        from_ms: diff.from_ms,
        to_ms: diff.to_ms,
        plant_id: to.plant_status.as_ref().map(|p| p.id.clone()),
        mean_time_to_acknowledge_s: mean,
        max_time_to_acknowledge_s: max,
        anomalies,
        failures: of(ChangeKind::MachineFailed),
        services: of(ChangeKind::WorkOrderPerformed),
        predictions,
        notes,
        open_anomalies: to.anomalies.iter().filter(|a| !a.is_resolved()).cloned().collect(),
        open_work_orders: to.maintenance.iter().filter(|m| m.open_order_id.is_some()).cloned().collect(),
        machines_due: to.machine_status.iter().filter(|m| m.due).map(|m| m.machine_id.clone()).collect(),
    })
}
