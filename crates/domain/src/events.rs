//! Event types and their JSON bodies. Names are past-tense facts; each body is the
//! event's schema version 1.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Numbers in event bodies. JSON has no infinity or NaN (`serde_json` writes them as
/// `null`), so writing one is refused rather than stored as `null` where a number belongs;
/// a `null` that an older version did store is read back as NaN ("unknown"), so the event
/// is still read and its other facts kept. Readers show an unknown number as unknown.
pub mod finite {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(value: &f64, s: S) -> Result<S::Ok, S::Error> {
        if value.is_finite() {
            s.serialize_f64(*value)
        } else {
            Err(serde::ser::Error::custom(format!("{value} is not a finite number: events hold only finite numbers")))
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
    }
}

/// [`finite`] for a number that may be absent: absent stays absent, a present one must be
/// finite, and a `null` reads as absent.
pub mod finite_option {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(value: &Option<f64>, s: S) -> Result<S::Ok, S::Error> {
        match value {
            Some(v) => super::finite::serialize(v, s),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
        Option::<f64>::deserialize(d)
    }
}

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
    #[serde(with = "finite")]
    pub observed: f64,
    #[serde(with = "finite")]
    pub expected: f64,
    #[serde(with = "finite")]
    pub lower: f64,
    #[serde(with = "finite")]
    pub upper: f64,
    /// Which test fired (spike, level_shift, drift, variance, stuck, dropout).
    pub test: String,
    #[serde(with = "finite")]
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
    #[serde(with = "finite")]
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
    #[serde(with = "finite")]
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
    #[serde(with = "finite")]
    pub days: f64,
    #[serde(with = "finite")]
    pub lower_days: f64,
    #[serde(with = "finite")]
    pub upper_days: f64,
    pub model_version: String,
    /// The probability that the machine fails within the model's alert horizon, when the
    /// model gives one.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "finite_option")]
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

/// When the fact an event records happened, by the time it states (an anomaly's start,
/// a reading period's end, the instant of anything else: its `at`); `None` for an event
/// that states no time of its own (the plant's layout, which holds from when it is
/// configured). The one reading of "as it happened" for domain events.
pub fn occurred_at(event_type: &str, body: &serde_json::Value) -> Option<DateTime<Utc>> {
    let field = match event_type {
        LAYOUT_CONFIGURED => return None,
        ANOMALY_DETECTED => "started_at",
        crate::production::PRODUCTION_REPORTED => "to",
        _ => "at",
    };
    let text = body.get(field)?.as_str()?;
    DateTime::parse_from_rfc3339(text).ok().map(|t| t.with_timezone(&Utc))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn evidence(observed: f64) -> SensorEvidence {
        SensorEvidence {
            sensor: 1_000_001,
            name: "P1-L01-M001-TEMP1".into(),
            kind: "TEMP".into(),
            unit: "°C".into(),
            at: DateTime::UNIX_EPOCH,
            observed,
            expected: 35.0,
            lower: 30.0,
            upper: 40.0,
            test: "spike".into(),
            score: 0.99,
            related: false,
        }
    }

    fn detected(score: f64, observed: f64) -> AnomalyDetected {
        AnomalyDetected {
            anomaly_id: "P1-L01-M001-1".into(),
            machine_id: "P1-L01-M001".into(),
            line_id: "P1-L01".into(),
            started_at: DateTime::UNIX_EPOCH,
            severity: Severity::Critical,
            score,
            sensors: vec![evidence(observed)],
            explanation: "TEMP1 far above".into(),
            detector_version: "test".into(),
        }
    }

    #[test]
    fn an_event_happened_at_the_time_it_states() {
        let at = |t: &str, body: serde_json::Value| occurred_at(t, &body).map(|d| d.to_rfc3339());
        let t = "2026-03-01T12:00:00+00:00";
        assert_eq!(at(ANOMALY_DETECTED, serde_json::json!({"started_at": t, "at": "x"})).as_deref(), Some(t));
        assert_eq!(at(ANOMALY_ACKNOWLEDGED, serde_json::json!({"at": t})).as_deref(), Some(t));
        assert_eq!(at(crate::production::PRODUCTION_REPORTED, serde_json::json!({"to": t})).as_deref(), Some(t));
        assert_eq!(at(LAYOUT_CONFIGURED, serde_json::json!({"at": t})), None);
        for hostile in
            [serde_json::json!({"at": "not a time\u{0}"}), serde_json::json!({"at": 1e300}), serde_json::json!({})]
        {
            assert_eq!(at(MACHINE_FAILED, hostile), None);
        }
    }

    #[test]
    fn an_event_with_a_number_json_cannot_hold_is_refused_not_written_with_null() {
        for bad in [f64::INFINITY, f64::NEG_INFINITY, f64::NAN] {
            assert!(serde_json::to_value(detected(bad, 1.0)).is_err(), "score {bad}");
            assert!(serde_json::to_value(detected(0.9, bad)).is_err(), "observed {bad}");
            let p = MaintenancePredicted {
                machine_id: "M".into(),
                at: DateTime::UNIX_EPOCH,
                days: bad,
                lower_days: 1.0,
                upper_days: 2.0,
                model_version: "v".into(),
                failure_probability: None,
                due: None,
            };
            assert!(serde_json::to_value(&p).is_err(), "days {bad}");
            let p = MaintenancePredicted { days: 3.0, failure_probability: Some(bad), ..p };
            assert!(serde_json::to_value(p).is_err(), "failure_probability {bad}");
        }
        let fine = serde_json::to_value(detected(0.9, 1e300)).expect("finite numbers are written");
        assert_eq!(fine["sensors"][0]["observed"], 1e300);
        assert_eq!(serde_json::from_value::<AnomalyDetected>(fine).expect("read back"), detected(0.9, 1e300));
    }

    #[test]
    fn a_null_an_older_version_wrote_for_a_number_is_read_as_unknown_and_the_event_kept() {
        let mut body = serde_json::to_value(detected(0.9, 1.0)).expect("written");
        body["score"] = serde_json::Value::Null;
        body["sensors"][0]["lower"] = serde_json::Value::Null;
        let read: AnomalyDetected = serde_json::from_value(body).expect("still read");
        assert!(read.score.is_nan() && read.sensors[0].lower.is_nan());
        assert_eq!(read.sensors[0].upper, 40.0);
        assert_eq!(read.anomaly_id, "P1-L01-M001-1");
    }
}
