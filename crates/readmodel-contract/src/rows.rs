//! The read-model rows as readers hold them: plain data, times in milliseconds since the
//! Unix epoch, serializable (a cache, a screen). Status fields keep the text the table
//! holds, so a value this version does not know never loses a row; [`crate::status`]
//! and `domain` name and interpret the values.

use domain::anomaly::AnomalyState;
use serde::{Deserialize, Serialize};

/// The plant's layout row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plant {
    pub plant_id: String,
    pub name: String,
    pub lines: i32,
    pub machines: i32,
    pub sensors: i32,
    pub position: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Line {
    pub line_id: String,
    pub number: i32,
    pub machines: i32,
    pub sensors: i32,
    pub position: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Machine {
    pub machine_id: String,
    pub line_id: String,
    pub number: i32,
    pub machine_type: String,
    pub description: String,
    pub sensors: i32,
    pub position: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sensor {
    pub sensor_id: i32,
    pub name: String,
    pub machine_id: String,
    pub kind: String,
    pub unit: String,
    pub normal_min: f64,
    pub normal_max: f64,
    pub position: i64,
}

/// A sensor's last value. `status`: a [`crate::SensorStatus`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SensorState {
    pub sensor_id: i32,
    pub machine_id: String,
    pub value: f64,
    pub ts_ms: i64,
    pub status: String,
    pub position: i64,
}

/// A machine's roll-up. `status`: a [`crate::MachineCondition`]; `due`: the machine
/// could plausibly fail within the week (the plant's rule, applied by the projection;
/// readers show it rather than recompute it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MachineStatus {
    pub machine_id: String,
    pub line_id: String,
    pub status: String,
    pub sensors: i32,
    pub reporting: i32,
    pub stale: i32,
    pub warning: i32,
    pub anomalous: i32,
    pub open_critical: i32,
    pub open_major: i32,
    pub open_minor: i32,
    pub due_in_days: Option<f64>,
    /// Rows cached before the column existed read as not due until they change.
    #[serde(default)]
    pub due: bool,
    pub newest_reading_ms: Option<i64>,
    pub position: i64,
}

/// A line's or the plant's roll-up: the KPIs on top of the floor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rollup {
    pub id: String,
    pub sensors: i32,
    pub reporting: i32,
    pub stale: i32,
    pub warning: i32,
    pub anomalous: i32,
    pub open_critical: i32,
    pub open_major: i32,
    pub open_minor: i32,
    pub machines_due_7d: i32,
    pub readings_per_s: f64,
    pub newest_reading_ms: Option<i64>,
    pub position: i64,
}

/// One sensor involved in an anomaly, with the evidence the monitor recorded.
/// Every field is optional on the wire: a missing field never loses the anomaly.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct AnomalySensor {
    pub sensor: Option<i64>,
    pub name: Option<String>,
    pub kind: Option<String>,
    pub observed: Option<f64>,
    pub expected: Option<f64>,
    pub lower: Option<f64>,
    pub upper: Option<f64>,
    pub test: Option<String>,
    pub score: Option<f64>,
}

/// A note on an anomaly; `at` is kept as the backend wrote it (RFC 3339).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Note {
    pub by: String,
    pub at: String,
    pub text: String,
}

/// An anomaly episode. `severity`: a `domain::events::Severity`; `state`: a
/// [`AnomalyState`] (the lifecycle `domain` defines).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Anomaly {
    pub anomaly_id: String,
    pub machine_id: String,
    pub line_id: String,
    pub severity: String,
    pub state: String,
    pub score: f64,
    pub sensors: Vec<AnomalySensor>,
    pub explanation: String,
    pub started_at_ms: i64,
    pub updated_at_ms: i64,
    pub resolved_at_ms: Option<i64>,
    pub acknowledged_by: Option<String>,
    pub acknowledged_at_ms: Option<i64>,
    pub shelved_by: Option<String>,
    pub shelved_until_ms: Option<i64>,
    pub notes: Vec<Note>,
    pub position: i64,
}

impl Anomaly {
    /// The anomaly's place in its lifecycle (`None` for a state this version does not know).
    pub fn state(&self) -> Option<AnomalyState> {
        AnomalyState::parse(&self.state)
    }

    /// Over: listed with past anomalies. Anything else is still current (shelved included).
    pub fn is_resolved(&self) -> bool {
        self.state().is_some_and(AnomalyState::is_resolved)
    }

    pub fn involves_sensor(&self, sensor_id: i32) -> bool {
        self.sensors.iter().any(|s| s.sensor == Some(i64::from(sensor_id)))
    }
}

/// A machine's latest maintenance prediction and open work order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Maintenance {
    pub machine_id: String,
    pub predicted_days: Option<f64>,
    pub lower_days: Option<f64>,
    pub upper_days: Option<f64>,
    pub predicted_at_ms: Option<i64>,
    pub model_version: Option<String>,
    pub open_order_id: Option<String>,
    pub open_order_kind: Option<String>,
    pub scheduled_for_ms: Option<i64>,
    pub last_performed_at_ms: Option<i64>,
    pub position: i64,
}

/// One past prediction, to show how the estimate moved.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Prediction {
    pub machine_id: String,
    pub predicted_at_ms: i64,
    pub days: f64,
    pub lower_days: f64,
    pub upper_days: f64,
    pub model_version: String,
    pub position: i64,
}

/// How a model version's predictions turned out for one machine, one machine type or the
/// whole plant (`scope`: `machine` | `machine_type` | `plant`; `model_version` `""`:
/// failures no prediction preceded). Failures were *caught* when the machine was due 3 to
/// 7 days before, *watched* when it was predicted on through the week before. The
/// predictions of the 14 days before failures are *scored* (coverage of their interval,
/// mean absolute error in days); an alert with no failure within 14 days is false.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrackRecord {
    pub scope: String,
    pub id: String,
    pub model_version: String,
    pub failures: i64,
    pub caught: i64,
    pub watched: i64,
    pub caught_watched: i64,
    pub scored: i64,
    pub covered: i64,
    pub alerts: i64,
    pub premature_alerts: i64,
    pub alerts_without_failure: i64,
    pub false_alerts: i64,
    pub false_alert_onsets: i64,
    pub judged_days: f64,
    pub coverage: Option<f64>,
    pub mae_days: Option<f64>,
    pub false_alert_hours_per_1000_machine_days: Option<f64>,
    pub position: i64,
}

/// One failure with what was predicted before it: `at_leads` holds the prediction at 1,
/// 3, 7 and 14 days before (each `{lead_days, issued_at_ms, predicted_days, lower_days,
/// upper_days, actual_days}`), `alert_lead_days` how long before the failure the machine's
/// last alert began, `scored`/`covered` its predictions of the 14 days before and those
/// whose interval held the truth.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrackFailure {
    pub machine_id: String,
    pub failed_at_ms: i64,
    pub machine_type: String,
    pub model_version: Option<String>,
    pub caught: bool,
    pub alert_lead_days: Option<f64>,
    pub scored: i64,
    pub covered: i64,
    pub at_leads: serde_json::Value,
    pub position: i64,
}

/// A work order. `kind`: a `domain::events::OrderKind`; `state`: an [`crate::OrderState`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkOrder {
    pub order_id: String,
    pub machine_id: String,
    pub kind: String,
    pub state: String,
    pub scheduled_for_ms: Option<i64>,
    pub scheduled_by: Option<String>,
    pub performed_at_ms: Option<i64>,
    pub performed_by: Option<String>,
    pub note: String,
    /// What the technician wrote when recording the service.
    #[serde(default)]
    pub performed_note: String,
    pub position: i64,
}

/// Who did what, when: one domain event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub position: i64,
    pub recorded_at_ms: i64,
    pub stream: String,
    pub event_type: String,
    pub machine_id: Option<String>,
    pub actor: Option<String>,
    pub summary: String,
}

/// One task of the plant node (the log writer, a projection, the anomaly monitor, …) as
/// its supervisor last reported it. Not derived from the log: the node writes it when a
/// task's state changes (and every few seconds), so a task that cannot write to the log
/// is still seen to be down. `position` orders these rows among themselves only.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeTask {
    pub task: String,
    /// A [`crate::status::TaskState`] name.
    pub state: String,
    pub since_ms: i64,
    pub restarts: i32,
    pub last_error: Option<String>,
    /// Events of the log the task has not handled yet (subscribers only).
    pub lag_events: Option<i64>,
    pub updated_at_ms: i64,
    pub position: i64,
    /// What the task does, in a screen's words ([`crate::status::task_label`]).
    #[serde(default)]
    pub label: String,
    /// Whether the task is not doing its work ([`crate::status::TaskState::is_down`]).
    #[serde(default)]
    pub down: bool,
}

impl NodeTask {
    /// "anomaly detection stopped since 12:03:04" when the task is down, else `None`.
    /// The time is given in UTC; a screen with a local clock formats `since_ms` itself.
    pub fn down_since(&self) -> Option<String> {
        let state = crate::status::TaskState::parse(&self.state)?;
        if !state.is_down() {
            return None;
        }
        let since = chrono::DateTime::from_timestamp_millis(self.since_ms)?;
        Some(format!(
            "{} stopped since {} UTC",
            crate::status::task_label(&self.task),
            since.format("%Y-%m-%d %H:%M:%S")
        ))
    }
}

/// Rows of every read model, as fetched in one catch-up or applied as one change.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Changes {
    pub plant: Vec<Plant>,
    pub plant_status: Vec<Rollup>,
    pub lines: Vec<Line>,
    pub line_status: Vec<Rollup>,
    pub machines: Vec<Machine>,
    pub machine_status: Vec<MachineStatus>,
    pub sensors: Vec<Sensor>,
    pub sensor_state: Vec<SensorState>,
    pub anomalies: Vec<Anomaly>,
    pub maintenance: Vec<Maintenance>,
    pub predictions: Vec<Prediction>,
    pub work_orders: Vec<WorkOrder>,
    pub audit: Vec<AuditEntry>,
    pub track_record: Vec<TrackRecord>,
    pub track_failures: Vec<TrackFailure>,
    #[serde(default)]
    pub node_tasks: Vec<NodeTask>,
}

impl Changes {
    pub fn is_empty(&self) -> bool {
        self.row_count() == 0
    }

    pub fn row_count(&self) -> usize {
        self.plant.len()
            + self.plant_status.len()
            + self.lines.len()
            + self.line_status.len()
            + self.machines.len()
            + self.machine_status.len()
            + self.sensors.len()
            + self.sensor_state.len()
            + self.anomalies.len()
            + self.maintenance.len()
            + self.predictions.len()
            + self.work_orders.len()
            + self.audit.len()
            + self.track_record.len()
            + self.track_failures.len()
            + self.node_tasks.len()
    }
}

/// One aggregate bucket (a minute or an hour) of one sensor.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Bucket {
    pub ts_ms: i64,
    pub count: i64,
    pub min: f64,
    pub max: f64,
    pub mean: f64,
}
