//! The cloud query API's answers as both sides see them: the cloud node serializes these
//! types and the managers' view reads them, so a field renamed or added is renamed or
//! added for both at once (the desktop app does not depend on the cloud node).

use chrono::{DateTime, Utc};
pub use domain::production::Oee;
use serde::{Deserialize, Serialize};

/// Anomalies raised in a bucket, by severity.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Anomalies {
    pub minor: i64,
    pub major: i64,
    pub critical: i64,
}

/// Production in a bucket: the sums OEE is made of.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Production {
    pub planned_s: f64,
    pub running_s: f64,
    pub parts: i64,
    pub good_parts: i64,
}

/// One row of `GET /v1/kpis`: a plant (or one of its lines or machine types) in one bucket.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KpiRow {
    pub plant: u16,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub machine_type: Option<String>,
    pub bucket_start: DateTime<Utc>,
    pub bucket_end: DateTime<Utc>,
    pub readings: i64,
    pub sensors: i64,
    /// Share of the group's sensors that reported, per hour, over the bucket's elapsed hours.
    pub sensor_availability: Option<f64>,
    pub anomalies: Anomalies,
    pub acknowledged: i64,
    pub mean_time_to_acknowledge_s: Option<f64>,
    pub maintenance_performed: i64,
    pub failures: i64,
    pub predictions: i64,
    pub mean_predicted_days_to_service: Option<f64>,
    pub production: Production,
    pub oee: Oee,
}

impl KpiRow {
    /// The group the row is of within its plant ("" for the whole plant).
    pub fn group(&self) -> &str {
        self.line_id.as_deref().or(self.machine_type.as_deref()).unwrap_or("")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_row_reads_back_as_written_and_a_plant_row_names_no_group() {
        let at = DateTime::parse_from_rfc3339("2026-03-01T10:00:00Z").map(|t| t.with_timezone(&Utc)).unwrap();
        let row = KpiRow {
            plant: 3,
            line_id: None,
            machine_type: Some("press".into()),
            bucket_start: at,
            bucket_end: at + chrono::Duration::hours(1),
            readings: 40,
            sensors: 40,
            sensor_availability: Some(1.0),
            anomalies: Anomalies { minor: 1, major: 0, critical: 2 },
            acknowledged: 1,
            mean_time_to_acknowledge_s: None,
            maintenance_performed: 0,
            failures: 0,
            predictions: 0,
            mean_predicted_days_to_service: Some(12.5),
            production: Production { planned_s: 3600.0, running_s: 1800.0, parts: 10, good_parts: 9 },
            oee: Oee { oee: Some(0.25), availability: Some(0.5), performance: Some(0.5), quality: Some(1.0) },
        };
        let text = serde_json::to_string(&row).unwrap();
        assert!(!text.contains("line_id"), "an absent group is left out: {text}");
        assert_eq!(serde_json::from_str::<KpiRow>(&text).unwrap(), row);
        assert_eq!(row.group(), "press");
        assert_eq!(KpiRow { machine_type: None, ..row }.group(), "");
    }
}
