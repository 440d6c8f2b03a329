//! Event types and their JSON bodies. Names are past-tense facts; each body is the
//! event's schema version 1.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub const LAYOUT_CONFIGURED: &str = "LayoutConfigured";
pub const ANOMALY_DETECTED: &str = "AnomalyDetected";
pub const ANOMALY_UPDATED: &str = "AnomalyUpdated";
pub const ANOMALY_RESOLVED: &str = "AnomalyResolved";
pub const ANOMALY_ACKNOWLEDGED: &str = "AnomalyAcknowledged";
pub const ANOMALY_SHELVED: &str = "AnomalyShelved";
pub const ANOMALY_NOTE_ADDED: &str = "AnomalyNoteAdded";
pub const MAINTENANCE_PREDICTED: &str = "MaintenancePredicted";
pub const MAINTENANCE_SCHEDULED: &str = "MaintenanceScheduled";
pub const MAINTENANCE_PERFORMED: &str = "MaintenancePerformed";
pub const MACHINE_FAILED: &str = "MachineFailed";

/// Stream categories.
pub const PLANT: &str = "plant";
pub const ANOMALY: &str = "anomaly";
pub const MAINTENANCE: &str = "maintenance";
pub const PREDICTION: &str = "prediction";

/// The plant's layout as the node runs it: the layout file's text and the scale it
/// was built at, so every projection builds the same layout.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LayoutConfigured {
    pub plant: u16,
    pub layout_toml: String,
    pub plants: Option<u32>,
    pub lines_per_plant: Option<u32>,
    pub sensors_per_plant: Option<u32>,
    /// A sensor is stale after this long without a reading while the plant's others report.
    pub stale_after_ms: i64,
}

/// Severity of an anomaly episode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Minor,
    Major,
    Critical,
}

impl Severity {
    pub const fn as_str(self) -> &'static str {
        match self {
            Severity::Minor => "minor",
            Severity::Major => "major",
            Severity::Critical => "critical",
        }
    }

    pub fn parse(s: &str) -> Option<Severity> {
        Some(match s {
            "minor" => Severity::Minor,
            "major" => Severity::Major,
            "critical" => Severity::Critical,
            _ => return None,
        })
    }
}

/// What one sensor contributed to an anomaly.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SensorEvidence {
    pub sensor: u32,
    pub name: String,
    pub kind: String,
    pub unit: String,
    pub at: DateTime<Utc>,
    pub observed: f64,
    pub expected: f64,
    pub lower: f64,
    pub upper: f64,
    /// Which test fired (spike, level_shift, drift, variance, stuck, dropout).
    pub test: String,
    pub score: f64,
    /// Moved with the anomaly without crossing the threshold itself.
    #[serde(default)]
    pub related: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AnomalyDetected {
    pub anomaly_id: String,
    pub machine_id: String,
    pub line_id: String,
    pub started_at: DateTime<Utc>,
    pub severity: Severity,
    pub score: f64,
    pub sensors: Vec<SensorEvidence>,
    /// Plain-language reason, e.g. "TEMP1 91.3 °C, expected 70.1 ± 4.2 (level shift)".
    pub explanation: String,
    pub detector_version: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AnomalyUpdated {
    pub anomaly_id: String,
    pub at: DateTime<Utc>,
    pub severity: Severity,
    pub score: f64,
    pub sensors: Vec<SensorEvidence>,
    pub explanation: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AnomalyResolved {
    pub anomaly_id: String,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AnomalyAcknowledged {
    pub anomaly_id: String,
    pub by: String,
    pub note: String,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AnomalyShelved {
    pub anomaly_id: String,
    pub by: String,
    pub until: DateTime<Utc>,
    pub note: String,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AnomalyNoteAdded {
    pub anomaly_id: String,
    pub by: String,
    pub text: String,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MaintenancePredicted {
    pub machine_id: String,
    pub at: DateTime<Utc>,
    /// Predicted days until the machine needs service, with an interval.
    pub days: f64,
    pub lower_days: f64,
    pub upper_days: f64,
    pub model_version: String,
    /// The probability that the machine fails within the model's alert horizon, when the
    /// model gives one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_probability: Option<f64>,
    /// Whether the machine is due by the model's alert rule. Absent in events written before
    /// the scorer decided it: then due means the lower bound is at most 7 days.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub due: Option<bool>,
}

/// Kind of work order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OrderKind {
    Planned,
    Emergency,
}

impl OrderKind {
    pub fn as_str(self) -> &'static str {
        match self {
            OrderKind::Planned => "planned",
            OrderKind::Emergency => "emergency",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MaintenanceScheduled {
    pub order_id: String,
    pub machine_id: String,
    pub kind: OrderKind,
    pub scheduled_for: DateTime<Utc>,
    pub by: String,
    pub note: String,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MaintenancePerformed {
    pub order_id: String,
    pub machine_id: String,
    pub performed_at: DateTime<Utc>,
    pub by: String,
    pub note: String,
    pub at: DateTime<Utc>,
}

/// A machine stopped with a failure (reported by its controller).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MachineFailed {
    pub machine_id: String,
    pub at: DateTime<Utc>,
    pub source: String,
}
