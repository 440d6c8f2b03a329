//! The plant at an instant, what changed between two instants and a shift's report, as
//! the plant node serves them (`GET /v1/timetravel/…`) and readers show and export them.
//! The folds that make them are `readmodels::timetravel`'s; times are ms since the epoch.

use serde::{Deserialize, Serialize};

use crate::rows::{Anomaly, MachineStatus, Maintenance, Rollup, SensorState};

/// Which clock an instant is read on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Clock {
    /// By the readings' own time and the time each event states: how the plant was.
    #[default]
    Happened,
    /// By when the plant recorded each event: what a supervisor could have seen then.
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

    /// How screens name it.
    pub fn label(self) -> &'static str {
        match self {
            Clock::Happened => "as it happened",
            Clock::Known => "as we knew it then",
        }
    }
}

/// The plant at an instant: the rows the live read models held, in key order.
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

/// What kind of change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    AnomalyOpened,
    AnomalyAcknowledged,
    AnomalyShelved,
    AnomalyResolved,
    NoteAdded,
    /// A machine's latest prediction made it due within the week.
    PredictionDue,
    /// A machine's latest prediction no longer makes it due.
    PredictionNoLongerDue,
    WorkOrderScheduled,
    WorkOrderPerformed,
    MachineFailed,
    /// A machine's tile colour differs between the two instants.
    MachineStatus,
    /// A sensor's state differs between the two instants.
    SensorState,
}

impl ChangeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeKind::AnomalyOpened => "anomaly_opened",
            ChangeKind::AnomalyAcknowledged => "anomaly_acknowledged",
            ChangeKind::AnomalyShelved => "anomaly_shelved",
            ChangeKind::AnomalyResolved => "anomaly_resolved",
            ChangeKind::NoteAdded => "note_added",
            ChangeKind::PredictionDue => "prediction_due",
            ChangeKind::PredictionNoLongerDue => "prediction_no_longer_due",
            ChangeKind::WorkOrderScheduled => "work_order_scheduled",
            ChangeKind::WorkOrderPerformed => "work_order_performed",
            ChangeKind::MachineFailed => "machine_failed",
            ChangeKind::MachineStatus => "machine_status",
            ChangeKind::SensorState => "sensor_state",
        }
    }
}

/// One change between two instants, linking to its machine as it was at `at_ms`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Change {
    /// When it happened on the clock asked for (for a state that differs: the newest
    /// reading or event that made it so).
    pub at_ms: i64,
    pub kind: ChangeKind,
    pub machine_id: Option<String>,
    pub anomaly_id: Option<String>,
    pub order_id: Option<String>,
    pub sensor_id: Option<i32>,
    /// Who did it, for people's actions.
    pub by: Option<String>,
    /// From and to, for a state that differs (`ok` → `anomalous`, `7.2` → `4.1` days).
    pub from: Option<String>,
    pub to: Option<String>,
    /// In words, as the audit trail says it.
    pub summary: String,
    /// The log position of the event (0 for a state that differs).
    pub position: i64,
}

/// What changed between two instants, in time order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Diff {
    pub clock: Clock,
    pub from_ms: i64,
    pub to_ms: i64,
    pub changes: Vec<Change>,
    /// Sensor changes beyond the list's limit, counted but not listed.
    pub sensor_changes_not_listed: u64,
}

/// An anomaly raised in a shift and how it ended by the shift's end.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShiftAnomaly {
    pub anomaly_id: String,
    pub machine_id: String,
    pub severity: String,
    pub started_at_ms: i64,
    /// Its state at the end of the shift.
    pub state_at_end: String,
    pub acknowledged_by: Option<String>,
    /// From its start to its acknowledgement, when acknowledged within the shift.
    pub time_to_acknowledge_s: Option<f64>,
    pub resolved_at_ms: Option<i64>,
    pub explanation: String,
}

/// A note someone wrote during the shift (with an acknowledgement, a shelving or alone).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShiftNote {
    pub at_ms: i64,
    pub by: String,
    pub anomaly_id: Option<String>,
    pub machine_id: Option<String>,
    pub text: String,
}

/// The shift report: generated from the events of the shift and the plant at its end.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShiftReport {
    pub clock: Clock,
    pub from_ms: i64,
    pub to_ms: i64,
    pub plant_id: Option<String>,
    pub anomalies: Vec<ShiftAnomaly>,
    /// Mean and longest time to acknowledge, over the shift's anomalies acknowledged in it.
    pub mean_time_to_acknowledge_s: Option<f64>,
    pub max_time_to_acknowledge_s: Option<f64>,
    /// Failures, services and predictions that crossed the 7-day line, in time order.
    pub failures: Vec<Change>,
    pub services: Vec<Change>,
    pub predictions: Vec<Change>,
    pub notes: Vec<ShiftNote>,
    /// Handed over: anomalies not resolved at the end, open work orders, machines due.
    pub open_anomalies: Vec<Anomaly>,
    pub open_work_orders: Vec<Maintenance>,
    pub machines_due: Vec<String>,
}

fn time(ms: Option<i64>) -> String {
    ms.and_then(chrono::DateTime::from_timestamp_millis)
        .map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_default()
}

impl ShiftReport {
    /// The report as CSV: one row per item, `section` first (`anomaly`, `failure`,
    /// `service`, `prediction`, `note`, `open_anomaly`, `open_work_order`, `machine_due`).
    pub fn to_csv(&self) -> Result<String, csv::Error> {
        let mut w = csv::Writer::from_writer(Vec::new());
        w.write_record(["section", "at", "machine", "item", "by", "state", "detail"])?;
        for a in &self.anomalies {
            let ack = a.time_to_acknowledge_s.map(|s| format!("acknowledged after {s:.0} s")).unwrap_or_default();
            w.write_record([
                "anomaly",
                &time(Some(a.started_at_ms)),
                &a.machine_id,
                &a.anomaly_id,
                a.acknowledged_by.as_deref().unwrap_or(""),
                &a.state_at_end,
                &format!("{} {}; {ack}", a.severity, a.explanation),
            ])?;
        }
        for (section, list) in
            [("failure", &self.failures), ("service", &self.services), ("prediction", &self.predictions)]
        {
            for c in list {
                w.write_record([
                    section,
                    &time(Some(c.at_ms)),
                    c.machine_id.as_deref().unwrap_or(""),
                    c.order_id.as_deref().unwrap_or(""),
                    c.by.as_deref().unwrap_or(""),
                    c.to.as_deref().unwrap_or(""),
                    &c.summary,
                ])?;
            }
        }
        for n in &self.notes {
            w.write_record([
                "note",
                &time(Some(n.at_ms)),
                n.machine_id.as_deref().unwrap_or(""),
                n.anomaly_id.as_deref().unwrap_or(""),
                &n.by,
                "",
                &n.text,
            ])?;
        }
        for a in &self.open_anomalies {
            w.write_record([
                "open_anomaly",
                &time(Some(a.started_at_ms)),
                &a.machine_id,
                &a.anomaly_id,
                a.acknowledged_by.as_deref().unwrap_or(""),
                &a.state,
                &a.explanation,
            ])?;
        }
        for m in &self.open_work_orders {
            w.write_record([
                "open_work_order",
                &time(m.scheduled_for_ms),
                &m.machine_id,
                m.open_order_id.as_deref().unwrap_or(""),
                "",
                m.open_order_kind.as_deref().unwrap_or(""),
                "",
            ])?;
        }
        for m in &self.machines_due {
            w.write_record(["machine_due", "", m, "", "", "due", ""])?;
        }
        let bytes = w.into_inner().map_err(|e| csv::Error::from(e.into_error()))?;
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }
}
