//! The live read models as a pure fold over events: sensor state, machine/line/plant
//! roll-ups, anomalies, maintenance, the layout tables and the audit trail.
//!
//! Every change is stamped with the position of the event that caused it, and staleness
//! is judged against the plant's own clock (the newest reading seen, its "watermark"),
//! so folding the same events in any batch sizes gives the same rows: a rebuild equals
//! the live tables row for row.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use domain::anomaly::{AnomalyEvent, AnomalyState};
use domain::events::*;
use domain::workorder::OrderEvent;
use eventlog::{Payload, RecordedEvent};
use layout::{Layout, Scale};
pub use readmodel_contract::SensorStatus;
use readmodel_contract::{MachineCondition, OrderState};
use serde_json::{Value, json};

/// Seconds of readings the rate (`readings_per_s`) is averaged over.
pub const RATE_WINDOW_S: i64 = 60;

/// "Due within 7 days": the horizon of the due count. A prediction says itself whether its
/// machine is due (`MaintenancePredicted::due`, the model's own rule, which `floorwatch eval
/// maintenance` scores); one from before predictions said so is due when the lower bound
/// of its interval is at most this many days (`maintenance::AlertRule::lower_bound`).
pub const DUE_WITHIN_DAYS: f64 = 7.0;

/// One sensor's state.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Slot {
    pub has_value: bool,
    pub value: f64,
    pub ts_ms: i64,
    pub stale: bool,
    /// Open anomalies this sensor is part of.
    pub anomalies: u16,
    pub status: SensorStatus,
    pub position: i64,
    /// Included in the roll-ups' status counts (every sensor with a value is).
    counted: bool,
    dirty: bool,
}

impl Default for Slot {
    fn default() -> Self {
        Slot {
            has_value: false,
            value: 0.0,
            ts_ms: 0,
            stale: false,
            anomalies: 0,
            status: SensorStatus::Ok,
            position: 0,
            counted: false,
            dirty: false,
        }
    }
}

/// Counts shared by machine, line and plant roll-ups.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Rollup {
    pub sensors: u32,
    /// Sensors with a value, by status.
    pub by_status: [u32; 4],
    /// Open (not shelved, not resolved) anomalies by severity: minor, major, critical.
    pub open: [u32; 3],
    pub newest_ms: Option<i64>,
    pub position: i64,
    dirty: bool,
}

impl Rollup {
    pub fn reporting(&self) -> u32 {
        self.by_status[0] + self.by_status[1] + self.by_status[2]
    }

    pub fn stale(&self) -> u32 {
        self.sensors - self.reporting()
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct MachineAgg {
    pub rollup: Rollup,
    /// Days within which the machine could plausibly fail: the lower bound of its latest
    /// prediction's interval, so "service in N days" is the latest safe time to service.
    pub due_in_days: Option<f64>,
    /// Whether its latest prediction calls it due ([`is_due`]).
    pub due: bool,
}

/// Whether a machine whose latest prediction has this lower bound and says `due` (or,
/// from before predictions said so, nothing) counts as due: the one definition of "due
/// within 7 days" (the `service` status, `machines_due_7d`, `machine_status.due`).
pub fn is_due(lower_days: Option<f64>, due: Option<bool>) -> bool {
    match (due, lower_days) {
        (Some(due), Some(_)) => due,
        (_, lower) => lower.is_some_and(|d| d <= DUE_WITHIN_DAYS),
    }
}

impl MachineAgg {
    /// The tile colour: anomaly > stale > service > warning > ok.
    pub fn status(&self) -> MachineCondition {
        let r = &self.rollup;
        if r.open.iter().sum::<u32>() > 0 {
            MachineCondition::Anomaly
        } else if r.sensors > 0 && r.stale() * 2 > r.sensors {
            MachineCondition::Stale
        } else if self.is_due() {
            MachineCondition::Service
        } else if r.by_status[SensorStatus::Warning as usize] + r.by_status[SensorStatus::Anomalous as usize] > 0 {
            MachineCondition::Warning
        } else {
            MachineCondition::Ok
        }
    }

    pub fn is_due(&self) -> bool {
        self.due
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct AreaAgg {
    pub rollup: Rollup,
    pub machines_due_7d: u32,
    /// Readings per event-time second, newest last, within the rate window.
    pub rate: VecDeque<(i64, u32)>,
    /// The readings per second the row shows: the rate as of the event that last changed
    /// the row, so a row does not depend on where a batch of events ended.
    pub shown_rate: f64,
    rate_dirty: bool,
}

impl AreaAgg {
    /// Readings per second over the newest [`RATE_WINDOW_S`] seconds up to `watermark_s`.
    pub fn readings_per_s(&self, watermark_s: i64) -> f64 {
        let from = watermark_s - RATE_WINDOW_S + 1;
        let first = self.rate.front().map_or(watermark_s, |(s, _)| *s).max(from);
        let total: u64 = self.rate.iter().filter(|(s, _)| *s >= from).map(|(_, n)| u64::from(*n)).sum();
        let span = (watermark_s - first + 1).clamp(1, RATE_WINDOW_S);
        total as f64 / span as f64
    }

    fn count(&mut self, second: i64, n: u32, watermark_s: i64) {
        match self.rate.iter_mut().rev().find(|(s, _)| *s == second) {
            Some((_, c)) => *c += n,
            None => {
                let at = self.rate.iter().rposition(|(s, _)| *s < second).map_or(0, |i| i + 1);
                self.rate.insert(at, (second, n));
            }
        }
        while self.rate.front().is_some_and(|(s, _)| *s <= watermark_s - RATE_WINDOW_S) {
            self.rate.pop_front();
        }
    }
}

/// An anomaly row.
#[derive(Debug, Clone, PartialEq)]
pub struct AnomalyRow {
    pub anomaly_id: String,
    pub machine_id: String,
    pub line_id: String,
    pub severity: Severity,
    pub state: AnomalyState,
    pub score: f64,
    pub sensors: Value,
    pub sensor_ids: Vec<u32>,
    pub explanation: String,
    pub started_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub resolved_at: Option<DateTime<Utc>>,
    pub acknowledged_by: Option<String>,
    pub acknowledged_at: Option<DateTime<Utc>>,
    pub shelved_by: Option<String>,
    pub shelved_until: Option<DateTime<Utc>>,
    pub notes: Vec<Value>,
    pub position: i64,
}

/// A number of an anomaly row: an unknown one (an older version wrote `null`) is 0, and
/// [`explained`] says so.
fn known(x: f64) -> f64 {
    if x.is_finite() { x } else { 0.0 }
}

/// The evidence as the read model keeps it: numbers that are unknown stay `null`, which
/// readers show as unknown (`readmodel_contract::AnomalySensor` has optional numbers).
fn evidence_json(sensors: &[SensorEvidence]) -> Value {
    let n = |x: f64| if x.is_finite() { json!(x) } else { Value::Null };
    Value::Array(
        sensors
            .iter()
            .map(|e| {
                json!({
                    "sensor": e.sensor, "name": e.name, "kind": e.kind, "unit": e.unit, "at": e.at,
                    "observed": n(e.observed), "expected": n(e.expected), "lower": n(e.lower),
                    "upper": n(e.upper), "test": e.test, "score": n(e.score), "related": e.related,
                })
            })
            .collect(),
    )
}

/// The explanation, saying when some of the anomaly's numbers are unknown.
fn explained(explanation: &str, score: f64, sensors: &[SensorEvidence]) -> String {
    let unknown = !score.is_finite()
        || sensors.iter().any(|e| [e.observed, e.expected, e.lower, e.upper, e.score].iter().any(|v| !v.is_finite()));
    if unknown {
        format!("{explanation} (some of this anomaly's numbers were not recorded)")
    } else {
        explanation.to_owned()
    }
}

/// What can be read of an anomaly event whose body does not read in full (a field of a
/// newer or older shape): it needs at least the anomaly's id and, for a detection, its
/// machine. A severity that cannot be read is shown as critical, so it is not overlooked.
fn salvage_anomaly(
    e: &RecordedEvent,
    body: &Value,
    reason: &str,
    layout: Option<&PlantLayout>,
) -> Option<AnomalyEvent> {
    let text = |k: &str| body.get(k).and_then(Value::as_str).map(str::to_owned);
    let time = |k: &str| {
        text(k).and_then(|t| DateTime::parse_from_rfc3339(&t).ok()).map_or(e.recorded_at, |t| t.with_timezone(&Utc))
    };
    let anomaly_id = text("anomaly_id")?;
    let severity = text("severity").as_deref().and_then(Severity::parse).unwrap_or(Severity::Critical);
    let score = body.get("score").and_then(Value::as_f64).unwrap_or(f64::NAN);
    let sensors: Vec<SensorEvidence> = body
        .get("sensors")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|s| serde_json::from_value(s.clone()).ok())
        .collect();
    let explanation =
        format!("{} (this event could not be read in full: {reason})", text("explanation").unwrap_or_default());
    match e.event_type.as_str() {
        ANOMALY_DETECTED => {
            let machine_id = text("machine_id")?;
            let line_id = text("line_id").or_else(|| {
                let l = layout?;
                let m = l.machine_ix(&machine_id)?;
                Some(l.layout.lines()[l.machine(m).line].id.clone())
            })?;
            Some(AnomalyEvent::Detected(AnomalyDetected {
                anomaly_id,
                machine_id,
                line_id,
                started_at: time("started_at"),
                severity,
                score,
                sensors,
                explanation,
                detector_version: text("detector_version").unwrap_or_default(),
            }))
        }
        ANOMALY_UPDATED => Some(AnomalyEvent::Updated(AnomalyUpdated {
            anomaly_id,
            at: time("at"),
            severity,
            score,
            sensors,
            explanation,
        })),
        _ => None,
    }
}

impl AnomalyRow {
    /// Counts towards open anomalies (tile colour, KPIs).
    pub fn is_open(&self) -> bool {
        self.state.is_open()
    }

    /// Its sensors are marked anomalous until it is resolved (shelving silences the
    /// anomaly, not the sensors' state).
    fn marks_sensors(&self) -> bool {
        !self.state.is_resolved()
    }
}

/// A machine's maintenance row.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MaintenanceRow {
    pub predicted_days: Option<f64>,
    pub lower_days: Option<f64>,
    pub upper_days: Option<f64>,
    pub predicted_at: Option<DateTime<Utc>>,
    pub model_version: Option<String>,
    pub open_order_id: Option<String>,
    pub open_order_kind: Option<String>,
    pub scheduled_for: Option<DateTime<Utc>>,
    pub last_performed_at: Option<DateTime<Utc>>,
    /// Whether the latest prediction called the machine due (`None`: it did not say).
    pub due: Option<bool>,
    pub position: i64,
}

impl MaintenanceRow {
    /// Whether this row makes its machine due.
    pub fn is_due(&self) -> bool {
        is_due(self.lower_days, self.due)
    }

    /// Takes `p` as the machine's latest prediction.
    pub fn take_prediction(&mut self, p: &MaintenancePredicted) {
        self.predicted_days = Some(p.days);
        self.lower_days = Some(p.lower_days);
        self.upper_days = Some(p.upper_days);
        self.predicted_at = Some(p.at);
        self.model_version = Some(p.model_version.clone());
        self.due = p.due;
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct PredictionRow {
    pub machine_id: String,
    pub predicted_at: DateTime<Utc>,
    pub days: f64,
    pub lower_days: f64,
    pub upper_days: f64,
    pub model_version: String,
    pub position: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct OrderRow {
    pub order_id: String,
    pub machine_id: String,
    pub kind: String,
    pub state: OrderState,
    pub scheduled_for: Option<DateTime<Utc>>,
    /// `None` when this change only completes an order scheduled in an earlier batch.
    pub scheduled_by: Option<String>,
    pub note: Option<String>,
    pub performed_at: Option<DateTime<Utc>>,
    pub performed_by: Option<String>,
    pub performed_note: String,
    pub position: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct AuditRow {
    pub position: i64,
    pub recorded_at: DateTime<Utc>,
    pub stream: String,
    pub event_type: String,
    pub machine_id: Option<String>,
    pub actor: Option<String>,
    pub summary: String,
}

/// What changed since the last [`LiveModel::take_changes`].
#[derive(Debug, Default)]
pub struct Changes {
    /// The layout changed: every layout-dependent table is replaced.
    pub reset: bool,
    pub layout: bool,
    pub sensors: Vec<usize>,
    pub machines: BTreeSet<usize>,
    pub lines: BTreeSet<usize>,
    pub plant: bool,
    pub anomalies: BTreeSet<String>,
    pub maintenance: BTreeSet<String>,
    pub predictions: Vec<PredictionRow>,
    pub orders: BTreeMap<String, OrderRow>,
    pub audit: Vec<AuditRow>,
    /// Events whose body could not be read (kept out of the read models, reported).
    pub unreadable: Vec<(i64, String)>,
    /// Anomaly events that could not be read in full: the anomaly is shown from what
    /// could be read, and the reason is reported.
    pub salvaged: Vec<(i64, String)>,
}

impl Changes {
    pub fn is_empty(&self) -> bool {
        !self.reset
            && !self.layout
            && self.sensors.is_empty()
            && self.machines.is_empty()
            && self.lines.is_empty()
            && !self.plant
            && self.anomalies.is_empty()
            && self.maintenance.is_empty()
            && self.predictions.is_empty()
            && self.orders.is_empty()
            && self.audit.is_empty()
    }
}

/// The plant's layout as the model uses it.
#[derive(Debug, Clone)]
pub struct PlantLayout {
    pub layout: Arc<Layout>,
    pub event: LayoutConfigured,
    pub plant_ix: usize,
    pub first_sensor_id: u32,
    pub first_machine: usize,
    pub first_line: usize,
    /// Plant-local machine index of each plant-local sensor index.
    pub machine_of: Vec<u32>,
    /// Plant-local line index of each plant-local machine index.
    pub line_of: Vec<u32>,
    /// Position of the `LayoutConfigured` event this layout came from.
    pub layout_position: i64,
}

impl PlantLayout {
    pub fn build(event: &LayoutConfigured) -> Result<PlantLayout, String> {
        let scale = Scale {
            plants: event.plants,
            lines_per_plant: event.lines_per_plant,
            sensors_per_plant: event.sensors_per_plant,
        };
        let layout = Layout::from_toml(&event.layout_toml, &scale).map_err(|e| e.to_string())?;
        let plant_ix = layout
            .plants()
            .iter()
            .position(|p| p.number == event.plant)
            .ok_or_else(|| format!("plant {} is not in the layout", event.plant))?;
        let plant = &layout.plants()[plant_ix];
        let first_machine = plant.machines.start;
        let first_line = plant.lines.start;
        let machine_of =
            layout.sensors()[plant.sensors.clone()].iter().map(|s| (s.machine - first_machine) as u32).collect();
        let line_of = layout.machines()[plant.machines.clone()].iter().map(|m| (m.line - first_line) as u32).collect();
        Ok(PlantLayout {
            first_sensor_id: plant.sensor_ids.start,
            first_machine,
            first_line,
            machine_of,
            line_of,
            plant_ix,
            event: event.clone(),
            layout: Arc::new(layout),
            layout_position: 0,
        })
    }

    pub fn plant(&self) -> &layout::Plant {
        &self.layout.plants()[self.plant_ix]
    }

    pub fn sensor_ix(&self, id: u32) -> Option<usize> {
        let ix = id.checked_sub(self.first_sensor_id)? as usize;
        (ix < self.machine_of.len()).then_some(ix)
    }

    pub fn machine_ix(&self, machine_id: &str) -> Option<usize> {
        let ix = self.layout.machine_index(machine_id)?.checked_sub(self.first_machine)?;
        (ix < self.line_of.len()).then_some(ix)
    }

    pub fn machine(&self, ix: usize) -> &layout::Machine {
        &self.layout.machines()[self.first_machine + ix]
    }

    pub fn line(&self, ix: usize) -> &layout::Line {
        &self.layout.lines()[self.first_line + ix]
    }

    pub fn sensor(&self, ix: usize) -> layout::SensorInfo<'_> {
        self.layout.sensor_at(self.plant().sensors.start + ix)
    }
}

/// The fold.
#[derive(Debug)]
pub struct LiveModel {
    pub plant_number: u16,
    pub layout: Option<PlantLayout>,
    pub sensors: Vec<Slot>,
    pub machines: Vec<MachineAgg>,
    pub lines: Vec<AreaAgg>,
    pub plant: AreaAgg,
    pub watermark_ms: i64,
    /// (deadline, sensor) for every sensor with a value that is not stale.
    deadlines: BTreeSet<(i64, u32)>,
    pub anomalies: HashMap<String, AnomalyRow>,
    pub maintenance: HashMap<String, MaintenanceRow>,
    changes: Changes,
}

impl LiveModel {
    pub fn new(plant_number: u16) -> Self {
        LiveModel {
            plant_number,
            layout: None,
            sensors: Vec::new(),
            machines: Vec::new(),
            lines: Vec::new(),
            plant: AreaAgg::default(),
            watermark_ms: i64::MIN,
            deadlines: BTreeSet::new(),
            anomalies: HashMap::new(),
            maintenance: HashMap::new(),
            changes: Changes::default(),
        }
    }

    pub fn take_changes(&mut self) -> Changes {
        for s in &mut self.sensors {
            s.dirty = false;
        }
        for m in &mut self.machines {
            m.rollup.dirty = false;
        }
        for l in &mut self.lines {
            l.rollup.dirty = false;
        }
        self.plant.rollup.dirty = false;
        std::mem::take(&mut self.changes)
    }

    fn stale_after_ms(&self) -> i64 {
        self.layout.as_ref().map_or(i64::MAX / 4, |l| l.event.stale_after_ms)
    }

    /// Folds one event.
    pub fn apply(&mut self, e: &RecordedEvent) {
        self.apply_through(e, None);
    }

    /// Folds one event, keeping only its readings taken at or before `through_ms` (all of
    /// them with `None`): the plant as it was at an instant by the readings' own time.
    pub fn apply_through(&mut self, e: &RecordedEvent, through_ms: Option<i64>) {
        match &e.payload {
            Payload::Telemetry { .. } => match e.readings() {
                Ok(mut readings) => {
                    if let Some(t) = through_ms {
                        readings.retain(|r| r.ts_ms <= t);
                    }
                    self.readings(e.position, &readings);
                }
                Err(err) => self.changes.unreadable.push((e.position, err.to_string())),
            },
            Payload::Json(body) => {
                if let Err(err) = self.domain_event(e, body) {
                    self.changes.unreadable.push((e.position, err));
                }
                self.audit(e, body);
            }
        }
        self.settle_rates();
    }

    /// Folds the readings of the telemetry event at `position` (decoded already, perhaps
    /// only some of them).
    pub fn apply_readings(&mut self, position: i64, readings: &[telemetry::Reading]) {
        self.readings(position, readings);
        self.settle_rates();
    }

    fn domain_event(&mut self, e: &RecordedEvent, body: &Value) -> Result<(), String> {
        let bad = |err: serde_json::Error| format!("{} body: {err}", e.event_type);
        match e.event_type.as_str() {
            LAYOUT_CONFIGURED => {
                let event: LayoutConfigured = serde_json::from_value(body.clone()).map_err(bad)?;
                if event.plant == self.plant_number {
                    self.configure(PlantLayout::build(&event)?, e.position);
                }
            }
            MAINTENANCE_PREDICTED => {
                let p: MaintenancePredicted = serde_json::from_value(body.clone()).map_err(bad)?;
                self.predicted(p, e.position);
            }
            _ => match AnomalyEvent::from_json(&e.event_type, body) {
                Ok(Some(a)) => self.anomaly(a, e.position),
                Ok(None) => {
                    if let Some(o) = OrderEvent::from_json(&e.event_type, body).map_err(bad)? {
                        self.order(o, e.position);
                    }
                }
                Err(err) => {
                    let reason = bad(err);
                    // An anomaly must not vanish from every screen because a field of its
                    // event cannot be read: show what can be.
                    let a = salvage_anomaly(e, body, &reason, self.layout.as_ref()).ok_or(reason.clone())?;
                    self.changes.salvaged.push((e.position, reason));
                    self.anomaly(a, e.position);
                }
            },
        }
        Ok(())
    }

    /// Installs a (new) layout: every layout-dependent row starts over.
    pub fn configure(&mut self, mut layout: PlantLayout, position: i64) {
        if self.layout.as_ref().is_some_and(|l| l.event == layout.event) {
            return;
        }
        layout.layout_position = position;
        let n_sensors = layout.machine_of.len();
        let n_machines = layout.line_of.len();
        let n_lines = layout.plant().lines.len();
        self.sensors = vec![Slot::default(); n_sensors];
        self.machines = vec![MachineAgg::default(); n_machines];
        self.lines = vec![AreaAgg::default(); n_lines];
        self.plant = AreaAgg::default();
        self.deadlines.clear();
        for m in &layout.machine_of {
            self.machines[*m as usize].rollup.sensors += 1;
        }
        for (m, l) in layout.line_of.iter().enumerate() {
            let sensors = self.machines[m].rollup.sensors;
            self.lines[*l as usize].rollup.sensors += sensors;
        }
        self.plant.rollup.sensors = n_sensors as u32;
        self.layout = Some(layout);
        // Open anomalies and predictions survive a re-layout; count them again.
        let anomalies: Vec<AnomalyRow> = self.anomalies.values().filter(|a| a.is_open()).cloned().collect();
        for a in &anomalies {
            self.count_anomaly(a, 1, position);
        }
        let due: Vec<(String, Option<f64>, bool)> =
            self.maintenance.iter().map(|(m, r)| (m.clone(), r.lower_days, r.is_due())).collect();
        for (machine, days, is) in due {
            self.set_due(&machine, days, is, position);
        }
        self.changes.reset = true;
        self.changes.layout = true;
        for m in 0..n_machines {
            self.touch_machine(m, position);
        }
        for l in 0..n_lines {
            self.touch_line(l, position);
        }
        self.plant.rollup.position = position;
        self.changes.plant = true;
        self.settle_rates();
    }

    fn readings(&mut self, position: i64, readings: &[telemetry::Reading]) {
        let Some(layout) = self.layout.as_ref() else { return };
        let stale_after = layout.event.stale_after_ms;
        let mut newest = self.watermark_ms;
        // Per line: newest reading and readings per second.
        let mut per_line: BTreeMap<usize, (i64, BTreeMap<i64, u32>)> = BTreeMap::new();
        for r in readings {
            let Some(layout) = self.layout.as_ref() else { return };
            let Some(ix) = layout.sensor_ix(r.sensor) else { continue };
            let machine = layout.machine_of[ix] as usize;
            let line = layout.line_of[machine] as usize;
            newest = newest.max(r.ts_ms);
            let entry = per_line.entry(line).or_insert((i64::MIN, BTreeMap::new()));
            entry.0 = entry.0.max(r.ts_ms);
            *entry.1.entry(r.ts_ms.div_euclid(1000)).or_default() += 1;
            let slot = self.sensors[ix];
            if slot.has_value && r.ts_ms < slot.ts_ms {
                continue; // a late reading: the state keeps the newest
            }
            if slot.has_value && !slot.stale {
                self.deadlines.remove(&(slot.ts_ms.saturating_add(stale_after), ix as u32));
            }
            let s = &mut self.sensors[ix];
            s.has_value = true;
            s.value = r.value;
            s.ts_ms = r.ts_ms;
            s.stale = false;
            self.deadlines.insert((r.ts_ms.saturating_add(stale_after), ix as u32));
            self.refresh_sensor(ix, position, true);
            let m = &mut self.machines[machine].rollup;
            m.newest_ms = m.newest_ms.max(Some(r.ts_ms));
            self.touch_machine(machine, position);
        }
        if per_line.is_empty() {
            return;
        }
        self.watermark_ms = newest;
        let watermark_s = newest.div_euclid(1000);
        for (line, (line_newest, seconds)) in per_line {
            for (second, n) in seconds {
                self.lines[line].count(second, n, watermark_s);
                self.plant.count(second, n, watermark_s);
            }
            let r = &mut self.lines[line].rollup;
            r.newest_ms = r.newest_ms.max(Some(line_newest));
            self.touch_line(line, position);
        }
        self.plant.rollup.newest_ms = self.plant.rollup.newest_ms.max(Some(newest));
        self.touch_plant(position);
        // Sensors whose deadline the plant's clock has passed are stale now.
        while let Some(&(deadline, ix)) = self.deadlines.first() {
            if deadline >= newest {
                break;
            }
            self.deadlines.pop_first();
            self.sensors[ix as usize].stale = true;
            self.refresh_sensor(ix as usize, position, false);
        }
    }

    /// Recomputes a sensor's status and moves it between its roll-ups' counts. The row
    /// changes when its value did (`value_changed`) or its status does.
    fn refresh_sensor(&mut self, ix: usize, position: i64, value_changed: bool) {
        let Some(layout) = self.layout.as_ref() else { return };
        let slot = self.sensors[ix];
        if !slot.has_value {
            return;
        }
        let (lo, hi) = layout.sensor(ix).normal_range();
        let status = if slot.stale {
            SensorStatus::Stale
        } else if slot.anomalies > 0 {
            SensorStatus::Anomalous
        } else if slot.value < lo || slot.value > hi {
            SensorStatus::Warning
        } else {
            SensorStatus::Ok
        };
        let machine = layout.machine_of[ix] as usize;
        let line = layout.line_of[machine] as usize;
        let counts_change = !slot.counted || slot.status != status;
        for r in [&mut self.machines[machine].rollup, &mut self.lines[line].rollup, &mut self.plant.rollup] {
            if slot.counted {
                r.by_status[slot.status as usize] -= 1;
            }
            r.by_status[status as usize] += 1;
        }
        let s = &mut self.sensors[ix];
        s.counted = true;
        s.status = status;
        if value_changed || counts_change {
            s.position = position;
            if !s.dirty {
                s.dirty = true;
                self.changes.sensors.push(ix);
            }
        }
        if counts_change {
            self.touch_machine(machine, position);
            self.touch_line(line, position);
            self.touch_plant(position);
        }
    }

    fn touch_machine(&mut self, m: usize, position: i64) {
        let r = &mut self.machines[m].rollup;
        r.position = position;
        r.dirty = true;
        self.changes.machines.insert(m);
    }

    fn touch_line(&mut self, l: usize, position: i64) {
        let r = &mut self.lines[l].rollup;
        r.position = position;
        r.dirty = true;
        self.lines[l].rate_dirty = true;
        self.changes.lines.insert(l);
    }

    fn touch_plant(&mut self, position: i64) {
        self.plant.rollup.position = position;
        self.plant.rollup.dirty = true;
        self.plant.rate_dirty = true;
        self.changes.plant = true;
    }

    /// Fixes the rate shown by every area row the last event changed, at that event's
    /// clock.
    fn settle_rates(&mut self) {
        let watermark_s = self.watermark_ms.div_euclid(1000);
        for a in self.lines.iter_mut().chain(std::iter::once(&mut self.plant)) {
            if a.rate_dirty {
                a.shown_rate = a.readings_per_s(watermark_s);
                a.rate_dirty = false;
            }
        }
    }

    fn anomaly(&mut self, event: AnomalyEvent, position: i64) {
        let id = match &event {
            AnomalyEvent::Detected(e) => e.anomaly_id.clone(),
            AnomalyEvent::Updated(e) => e.anomaly_id.clone(),
            AnomalyEvent::Resolved(e) => e.anomaly_id.clone(),
            AnomalyEvent::Acknowledged(e) => e.anomaly_id.clone(),
            AnomalyEvent::Shelved(e) => e.anomaly_id.clone(),
            AnomalyEvent::NoteAdded(e) => e.anomaly_id.clone(),
        };
        let before = self.anomalies.get(&id).cloned();
        if let AnomalyEvent::Detected(d) = &event {
            let row = AnomalyRow {
                anomaly_id: d.anomaly_id.clone(),
                machine_id: d.machine_id.clone(),
                line_id: d.line_id.clone(),
                severity: d.severity,
                state: AnomalyState::Unknown.after(&event),
                score: known(d.score),
                sensors: evidence_json(&d.sensors),
                sensor_ids: d.sensors.iter().filter(|s| !s.related).map(|s| s.sensor).collect(),
                explanation: explained(&d.explanation, d.score, &d.sensors),
                started_at: d.started_at,
                updated_at: d.started_at,
                resolved_at: None,
                acknowledged_by: None,
                acknowledged_at: None,
                shelved_by: None,
                shelved_until: None,
                notes: Vec::new(),
                position,
            };
            self.anomalies.insert(id.clone(), row);
        } else {
            let Some(row) = self.anomalies.get_mut(&id) else { return };
            row.state = row.state.after(&event);
            match &event {
                AnomalyEvent::Updated(u) => {
                    row.severity = u.severity;
                    row.score = known(u.score);
                    row.sensors = evidence_json(&u.sensors);
                    row.sensor_ids = u.sensors.iter().filter(|s| !s.related).map(|s| s.sensor).collect();
                    row.explanation = explained(&u.explanation, u.score, &u.sensors);
                    row.updated_at = u.at;
                }
                AnomalyEvent::Resolved(r) => {
                    row.resolved_at = Some(r.at);
                    row.updated_at = r.at;
                }
                AnomalyEvent::Acknowledged(a) => {
                    row.acknowledged_by = Some(a.by.clone());
                    row.acknowledged_at = Some(a.at);
                    if !a.note.is_empty() {
                        row.notes.push(json!({ "by": a.by, "at": a.at, "text": a.note }));
                    }
                }
                AnomalyEvent::Shelved(s) => {
                    row.shelved_by = Some(s.by.clone());
                    row.shelved_until = Some(s.until);
                    if !s.note.is_empty() {
                        row.notes.push(json!({ "by": s.by, "at": s.at, "text": s.note }));
                    }
                }
                AnomalyEvent::NoteAdded(n) => row.notes.push(json!({ "by": n.by, "at": n.at, "text": n.text })),
                AnomalyEvent::Detected(_) => {}
            }
            row.position = position;
        }
        self.changes.anomalies.insert(id.clone());
        let after = self.anomalies.get(&id).cloned();
        // Move the anomaly's weight in the roll-ups and its sensors' statuses.
        if let Some(b) = before.as_ref().filter(|b| b.is_open()) {
            self.count_anomaly(b, -1, position);
        }
        if let Some(a) = after.as_ref().filter(|a| a.is_open()) {
            self.count_anomaly(a, 1, position);
        }
        let old_sensors: Vec<u32> = before.filter(AnomalyRow::marks_sensors).map(|b| b.sensor_ids).unwrap_or_default();
        let new_sensors: Vec<u32> = after.filter(AnomalyRow::marks_sensors).map(|a| a.sensor_ids).unwrap_or_default();
        if old_sensors != new_sensors {
            for id in &old_sensors {
                self.mark_sensor(*id, -1, position);
            }
            for id in &new_sensors {
                self.mark_sensor(*id, 1, position);
            }
        }
    }

    fn count_anomaly(&mut self, a: &AnomalyRow, delta: i32, position: i64) {
        let Some(layout) = self.layout.as_ref() else { return };
        let Some(m) = layout.machine_ix(&a.machine_id) else { return };
        let l = layout.line_of[m] as usize;
        let sev = a.severity as usize;
        for r in [&mut self.machines[m].rollup, &mut self.lines[l].rollup, &mut self.plant.rollup] {
            r.open[sev] = r.open[sev].saturating_add_signed(delta);
        }
        self.touch_machine(m, position);
        self.touch_line(l, position);
        self.touch_plant(position);
    }

    fn mark_sensor(&mut self, id: u32, delta: i32, position: i64) {
        let Some(ix) = self.layout.as_ref().and_then(|l| l.sensor_ix(id)) else { return };
        let s = &mut self.sensors[ix];
        s.anomalies = s.anomalies.saturating_add_signed(delta as i16);
        self.refresh_sensor(ix, position, false);
    }

    fn predicted(&mut self, p: MaintenancePredicted, position: i64) {
        let row = self.maintenance.entry(p.machine_id.clone()).or_default();
        row.take_prediction(&p);
        row.position = position;
        let due = row.is_due();
        self.changes.maintenance.insert(p.machine_id.clone());
        self.changes.predictions.push(PredictionRow {
            machine_id: p.machine_id.clone(),
            predicted_at: p.at,
            days: p.days,
            lower_days: p.lower_days,
            upper_days: p.upper_days,
            model_version: p.model_version,
            position,
        });
        self.set_due(&p.machine_id, Some(p.lower_days), due, position);
    }

    /// Sets a machine's `due_in_days` (its latest lower bound), whether it is due, and the
    /// due counts.
    fn set_due(&mut self, machine_id: &str, days: Option<f64>, is: bool, position: i64) {
        let Some(layout) = self.layout.as_ref() else { return };
        let Some(m) = layout.machine_ix(machine_id) else { return };
        let l = layout.line_of[m] as usize;
        let was = self.machines[m].due;
        self.machines[m].due_in_days = days;
        self.machines[m].due = is;
        if was != is {
            let delta: i32 = if is { 1 } else { -1 };
            self.lines[l].machines_due_7d = self.lines[l].machines_due_7d.saturating_add_signed(delta);
            self.plant.machines_due_7d = self.plant.machines_due_7d.saturating_add_signed(delta);
            self.touch_line(l, position);
            self.touch_plant(position);
        }
        self.touch_machine(m, position);
    }

    fn order(&mut self, event: OrderEvent, position: i64) {
        match event {
            OrderEvent::Scheduled(s) => {
                let row = self.maintenance.entry(s.machine_id.clone()).or_default();
                row.open_order_id = Some(s.order_id.clone());
                row.open_order_kind = Some(s.kind.as_str().to_owned());
                row.scheduled_for = Some(s.scheduled_for);
                row.position = position;
                self.changes.maintenance.insert(s.machine_id.clone());
                self.changes.orders.insert(
                    s.order_id.clone(),
                    OrderRow {
                        order_id: s.order_id,
                        machine_id: s.machine_id,
                        kind: s.kind.as_str().to_owned(),
                        state: OrderState::Scheduled,
                        scheduled_for: Some(s.scheduled_for),
                        scheduled_by: Some(s.by),
                        note: Some(s.note),
                        performed_at: None,
                        performed_by: None,
                        performed_note: String::new(),
                        position,
                    },
                );
            }
            OrderEvent::Performed(p) => {
                let row = self.maintenance.entry(p.machine_id.clone()).or_default();
                let kind = row.open_order_kind.take().unwrap_or_else(|| "planned".into());
                let scheduled_for = row.scheduled_for.take();
                row.open_order_id = None;
                row.last_performed_at = Some(p.performed_at);
                row.position = position;
                self.changes.maintenance.insert(p.machine_id.clone());
                // Completes the order in place: the scheduling half is either in this
                // batch's changes already or in the stored row (which the store keeps).
                let entry = self.changes.orders.entry(p.order_id.clone()).or_insert_with(|| OrderRow {
                    order_id: p.order_id.clone(),
                    machine_id: p.machine_id.clone(),
                    kind,
                    state: OrderState::Performed,
                    scheduled_for,
                    scheduled_by: None,
                    note: None,
                    performed_at: None,
                    performed_by: None,
                    performed_note: String::new(),
                    position,
                });
                entry.state = OrderState::Performed;
                entry.performed_at = Some(p.performed_at);
                entry.performed_by = Some(p.by);
                entry.performed_note = p.note;
                entry.position = position;
            }
        }
    }

    fn audit(&mut self, e: &RecordedEvent, body: &Value) {
        let machine_id = body.get("machine_id").and_then(Value::as_str).map(str::to_owned).or_else(|| {
            let id = body.get("anomaly_id").and_then(Value::as_str)?;
            self.anomalies.get(id).map(|a| a.machine_id.clone())
        });
        let text = |k: &str| body.get(k).and_then(Value::as_str).unwrap_or("");
        let summary = match e.event_type.as_str() {
            LAYOUT_CONFIGURED => "plant layout configured".to_owned(),
            ANOMALY_DETECTED => format!("{} anomaly: {}", text("severity"), text("explanation")),
            ANOMALY_UPDATED => format!("anomaly now {}: {}", text("severity"), text("explanation")),
            ANOMALY_RESOLVED => "anomaly resolved".to_owned(),
            ANOMALY_ACKNOWLEDGED => format!("acknowledged by {}{}", text("by"), note_suffix(text("note"))),
            ANOMALY_SHELVED => {
                format!("shelved by {} until {}{}", text("by"), text("until"), note_suffix(text("note")))
            }
            ANOMALY_NOTE_ADDED => format!("note by {}: {}", text("by"), text("text")),
            MAINTENANCE_PREDICTED => format!(
                "service predicted in {:.1} days ({:.1}–{:.1})",
                body.get("days").and_then(Value::as_f64).unwrap_or(f64::NAN),
                body.get("lower_days").and_then(Value::as_f64).unwrap_or(f64::NAN),
                body.get("upper_days").and_then(Value::as_f64).unwrap_or(f64::NAN)
            ),
            MAINTENANCE_SCHEDULED => {
                format!(
                    "{} service {} scheduled by {} for {}",
                    text("kind"),
                    text("order_id"),
                    text("by"),
                    text("scheduled_for")
                )
            }
            MAINTENANCE_PERFORMED => {
                format!("service {} recorded by {}{}", text("order_id"), text("by"), note_suffix(text("note")))
            }
            MACHINE_FAILED => format!("machine failed (reported by {})", text("source")),
            other => other.to_owned(),
        };
        self.changes.audit.push(AuditRow {
            position: e.position,
            recorded_at: e.recorded_at,
            stream: e.stream.as_str().to_owned(),
            event_type: e.event_type.clone(),
            machine_id,
            actor: e.metadata.actor.clone(),
            summary,
        });
    }

    /// Restores a sensor's state (from the stored `sensor_state` row).
    pub fn restore_sensor(&mut self, id: u32, value: f64, ts_ms: i64, status: SensorStatus, position: i64) {
        let Some(layout) = self.layout.as_ref() else { return };
        let Some(ix) = layout.sensor_ix(id) else { return };
        let stale_after = layout.event.stale_after_ms;
        let machine = layout.machine_of[ix] as usize;
        let line = layout.line_of[machine] as usize;
        let s = &mut self.sensors[ix];
        *s = Slot {
            has_value: true,
            value,
            ts_ms,
            stale: status == SensorStatus::Stale,
            anomalies: s.anomalies,
            status,
            position,
            counted: true,
            dirty: false,
        };
        if !s.stale {
            self.deadlines.insert((ts_ms.saturating_add(stale_after), ix as u32));
        }
        for r in [&mut self.machines[machine].rollup, &mut self.lines[line].rollup, &mut self.plant.rollup] {
            r.by_status[status as usize] += 1;
            r.newest_ms = r.newest_ms.max(Some(ts_ms));
        }
        self.watermark_ms = self.watermark_ms.max(ts_ms);
    }

    /// Restores an anomaly row and its weight in the roll-ups (sensor statuses are
    /// restored from their own rows).
    pub fn restore_anomaly(&mut self, row: AnomalyRow) {
        if row.marks_sensors()
            && let Some(layout) = self.layout.as_ref()
        {
            for id in &row.sensor_ids {
                if let Some(ix) = layout.sensor_ix(*id) {
                    self.sensors[ix].anomalies += 1;
                }
            }
        }
        if row.is_open()
            && let Some(layout) = self.layout.as_ref()
            && let Some(m) = layout.machine_ix(&row.machine_id)
        {
            let l = layout.line_of[m] as usize;
            let sev = row.severity as usize;
            self.machines[m].rollup.open[sev] += 1;
            self.lines[l].rollup.open[sev] += 1;
            self.plant.rollup.open[sev] += 1;
        }
        self.anomalies.insert(row.anomaly_id.clone(), row);
    }

    /// Restores a machine's maintenance row and its due count.
    pub fn restore_maintenance(&mut self, machine_id: String, row: MaintenanceRow) {
        if let Some(layout) = self.layout.as_ref()
            && let Some(m) = layout.machine_ix(&machine_id)
        {
            self.machines[m].due_in_days = row.lower_days;
            self.machines[m].due = row.is_due();
            if row.is_due() {
                let l = layout.line_of[m] as usize;
                self.lines[l].machines_due_7d += 1;
                self.plant.machines_due_7d += 1;
            }
        }
        self.maintenance.insert(machine_id, row);
    }

    /// Sets the rest of what a restart needs: roll-up positions and rate windows.
    pub fn restore_positions(&mut self, machines: &[(usize, i64)], lines: &[(usize, i64)], plant: i64) {
        for (m, p) in machines {
            if let Some(agg) = self.machines.get_mut(*m) {
                agg.rollup.position = *p;
            }
        }
        for (l, p) in lines {
            if let Some(agg) = self.lines.get_mut(*l) {
                agg.rollup.position = *p;
            }
        }
        self.plant.rollup.position = plant;
    }

    /// The in-memory part that is not in any row: the rate windows.
    pub fn memory(&self) -> Value {
        json!({
            "lines": self.lines.iter().map(|l| l.rate.iter().map(|(s, n)| [*s, i64::from(*n)]).collect::<Vec<_>>()).collect::<Vec<_>>(),
            "plant": self.plant.rate.iter().map(|(s, n)| [*s, i64::from(*n)]).collect::<Vec<_>>(),
            "shown": {
                "lines": self.lines.iter().map(|l| l.shown_rate).collect::<Vec<_>>(),
                "plant": self.plant.shown_rate,
            },
        })
    }

    pub fn restore_memory(&mut self, memory: &Value) {
        let window = |v: &Value| -> VecDeque<(i64, u32)> {
            v.as_array()
                .into_iter()
                .flatten()
                .filter_map(|pair| Some((pair.get(0)?.as_i64()?, u32::try_from(pair.get(1)?.as_i64()?).ok()?)))
                .collect()
        };
        if let Some(lines) = memory.get("lines").and_then(Value::as_array) {
            for (l, w) in self.lines.iter_mut().zip(lines) {
                l.rate = window(w);
            }
        }
        if let Some(p) = memory.get("plant") {
            self.plant.rate = window(p);
        }
        // Rows written before the shown rate was remembered keep 0 until they change.
        let shown = memory.get("shown");
        if let Some(lines) = shown.and_then(|s| s.get("lines")).and_then(Value::as_array) {
            for (l, r) in self.lines.iter_mut().zip(lines) {
                l.shown_rate = r.as_f64().unwrap_or(0.0);
            }
        }
        if let Some(p) = shown.and_then(|s| s.get("plant")).and_then(Value::as_f64) {
            self.plant.shown_rate = p;
        }
    }

    /// How long without a reading makes a sensor stale.
    pub fn stale_after(&self) -> i64 {
        self.stale_after_ms()
    }
}

fn note_suffix(note: &str) -> String {
    if note.is_empty() { String::new() } else { format!(": {note}") }
}

mod frozen;

#[cfg(test)]
mod tests;
