//! What the managers' view computes from KPI rows: the value of a metric in a bucket, a
//! range's totals for the side-by-side table (ratios re-made from their sums, never
//! averaged), and the series a chart draws. Pure: rows in, numbers out.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::api::KpiRow;
use crate::range::Range;

/// A KPI the view can chart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    Oee,
    Availability,
    Performance,
    Quality,
    SensorAvailability,
    Anomalies,
    CriticalAnomalies,
    TimeToAcknowledge,
    MaintenancePerformed,
    Failures,
    PredictedDays,
}

impl Metric {
    pub const ALL: [Metric; 11] = [
        Metric::Oee,
        Metric::Availability,
        Metric::Performance,
        Metric::Quality,
        Metric::SensorAvailability,
        Metric::Anomalies,
        Metric::CriticalAnomalies,
        Metric::TimeToAcknowledge,
        Metric::MaintenancePerformed,
        Metric::Failures,
        Metric::PredictedDays,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Metric::Oee => "OEE",
            Metric::Availability => "Availability",
            Metric::Performance => "Performance",
            Metric::Quality => "Quality",
            Metric::SensorAvailability => "Sensor availability",
            Metric::Anomalies => "Anomalies",
            Metric::CriticalAnomalies => "Critical anomalies",
            Metric::TimeToAcknowledge => "Mean time to acknowledge (min)",
            Metric::MaintenancePerformed => "Maintenance performed",
            Metric::Failures => "Failures",
            Metric::PredictedDays => "Mean predicted days to service",
        }
    }

    /// Whether the metric is a share (drawn 0–100 %).
    pub fn is_share(self) -> bool {
        matches!(
            self,
            Metric::Oee | Metric::Availability | Metric::Performance | Metric::Quality | Metric::SensorAvailability
        )
    }

    /// Whether the metric counts things (shown as whole numbers).
    pub fn is_count(self) -> bool {
        matches!(self, Metric::Anomalies | Metric::CriticalAnomalies | Metric::MaintenancePerformed | Metric::Failures)
    }

    /// The metric in one bucket; `None` where there is nothing to divide by.
    pub fn of_row(self, r: &KpiRow) -> Option<f64> {
        let v = match self {
            Metric::Oee => r.oee.oee,
            Metric::Availability => r.oee.availability,
            Metric::Performance => r.oee.performance,
            Metric::Quality => r.oee.quality,
            Metric::SensorAvailability => r.sensor_availability,
            Metric::Anomalies => Some((r.anomalies.minor + r.anomalies.major + r.anomalies.critical) as f64),
            Metric::CriticalAnomalies => Some(r.anomalies.critical as f64),
            Metric::TimeToAcknowledge => r.mean_time_to_acknowledge_s.map(|s| s / 60.0),
            Metric::MaintenancePerformed => Some(r.maintenance_performed as f64),
            Metric::Failures => Some(r.failures as f64),
            Metric::PredictedDays => r.mean_predicted_days_to_service,
        };
        // A value the cloud should never send (NaN, ±inf) is drawn as missing, not as a spike.
        v.filter(|v| v.is_finite())
    }

    pub fn of_summary(self, s: &Summary) -> Option<f64> {
        match self {
            Metric::Oee => s.oee,
            Metric::Availability => s.availability,
            Metric::Performance => s.performance,
            Metric::Quality => s.quality,
            Metric::SensorAvailability => s.sensor_availability,
            Metric::Anomalies => Some((s.anomalies_minor + s.anomalies_major + s.anomalies_critical) as f64),
            Metric::CriticalAnomalies => Some(s.anomalies_critical as f64),
            Metric::TimeToAcknowledge => s.mean_time_to_acknowledge_s.map(|v| v / 60.0),
            Metric::MaintenancePerformed => Some(s.maintenance_performed as f64),
            Metric::Failures => Some(s.failures as f64),
            Metric::PredictedDays => s.mean_predicted_days_to_service,
        }
    }
}

/// A range's KPIs of one plant or group: sums, and ratios re-made from them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub plant: u16,
    /// The line or machine type ("" for the whole plant).
    pub group: String,
    pub oee: Option<f64>,
    pub availability: Option<f64>,
    pub performance: Option<f64>,
    pub quality: Option<f64>,
    pub sensor_availability: Option<f64>,
    pub anomalies_minor: i64,
    pub anomalies_major: i64,
    pub anomalies_critical: i64,
    pub mean_time_to_acknowledge_s: Option<f64>,
    pub maintenance_performed: i64,
    pub failures: i64,
    pub mean_predicted_days_to_service: Option<f64>,
    pub parts: i64,
    pub good_parts: i64,
}

fn finite(v: Option<f64>) -> Option<f64> {
    v.filter(|v| v.is_finite())
}

#[derive(Default)]
struct Sums {
    planned_s: f64,
    running_s: f64,
    ideal_s: f64,
    parts: i64,
    good_parts: i64,
    availability_weighted: f64,
    availability_weight: f64,
    ack: i64,
    ack_s: f64,
    predictions: i64,
    predicted_days: f64,
    minor: i64,
    major: i64,
    critical: i64,
    maintenance: i64,
    failures: i64,
}

/// One summary per plant and group, in plant then group order.
pub fn summarize(rows: &[KpiRow]) -> Vec<Summary> {
    let mut groups: BTreeMap<(u16, String), Sums> = BTreeMap::new();
    for r in rows {
        let s = groups.entry((r.plant, r.group().to_string())).or_default();
        let p = &r.production;
        if p.planned_s.is_finite() && p.running_s.is_finite() {
            s.planned_s += p.planned_s.max(0.0);
            s.running_s += p.running_s.max(0.0);
            // The cloud sends performance = ideal ÷ running; the ideal time adds up.
            if let Some(perf) = finite(r.oee.performance) {
                s.ideal_s += perf * p.running_s.max(0.0);
            }
        }
        s.parts += p.parts.max(0);
        s.good_parts += p.good_parts.max(0);
        if let Some(a) = finite(r.sensor_availability) {
            let w = r.sensors.max(0) as f64;
            s.availability_weighted += a * w;
            s.availability_weight += w;
        }
        if let Some(t) = finite(r.mean_time_to_acknowledge_s) {
            s.ack += r.acknowledged.max(0);
            s.ack_s += t * r.acknowledged.max(0) as f64;
        }
        if let Some(d) = finite(r.mean_predicted_days_to_service) {
            s.predictions += r.predictions.max(0);
            s.predicted_days += d * r.predictions.max(0) as f64;
        }
        s.minor += r.anomalies.minor.max(0);
        s.major += r.anomalies.major.max(0);
        s.critical += r.anomalies.critical.max(0);
        s.maintenance += r.maintenance_performed.max(0);
        s.failures += r.failures.max(0);
    }
    let ratio = |a: f64, b: f64| (b > 0.0 && a.is_finite()).then(|| a / b);
    groups
        .into_iter()
        .map(|((plant, group), s)| {
            // OEE of the range is the domain's, from the range's sums, as the cloud makes a bucket's.
            let oee = domain::production::ProductionSums {
                planned_s: s.planned_s,
                running_s: s.running_s,
                parts: s.parts as f64,
                good_parts: s.good_parts as f64,
                ideal_s: s.ideal_s,
            }
            .oee();
            Summary {
                plant,
                group,
                oee: finite(oee.oee),
                availability: finite(oee.availability),
                performance: finite(oee.performance),
                quality: finite(oee.quality),
                sensor_availability: ratio(s.availability_weighted, s.availability_weight),
                anomalies_minor: s.minor,
                anomalies_major: s.major,
                anomalies_critical: s.critical,
                mean_time_to_acknowledge_s: ratio(s.ack_s, s.ack as f64),
                maintenance_performed: s.maintenance,
                failures: s.failures,
                mean_predicted_days_to_service: ratio(s.predicted_days, s.predictions as f64),
                parts: s.parts,
                good_parts: s.good_parts,
            }
        })
        .collect()
}

/// One point of a drawn series: where it is drawn (`x_ms`), the bucket it is of, its value.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SeriesPoint {
    pub x_ms: i64,
    pub bucket_start_ms: i64,
    pub value: Option<f64>,
}

/// One line of a chart.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Series {
    pub label: String,
    pub points: Vec<SeriesPoint>,
}

/// One series per plant (and group) of the rows: every bucket of `range` present, a
/// bucket without a row or without a value is `None` (a gap in the line).
/// `shift_ms` moves the drawn position (a previous period drawn over this one).
pub fn series(
    rows: &[KpiRow],
    metric: Metric,
    range: &Range,
    label: impl Fn(u16, &str) -> String,
    shift_ms: i64,
) -> Vec<Series> {
    let mut by_group: BTreeMap<(u16, String), BTreeMap<i64, Option<f64>>> = BTreeMap::new();
    for r in rows {
        let t = r.bucket_start.timestamp_millis();
        if t < range.from_ms || t >= range.to_ms {
            continue;
        }
        by_group.entry((r.plant, r.group().to_string())).or_default().insert(t, metric.of_row(r));
    }
    by_group
        .into_iter()
        .map(|((plant, group), values)| Series {
            label: label(plant, &group),
            points: range
                .buckets()
                .map(|t| SeriesPoint {
                    x_ms: t + shift_ms,
                    bucket_start_ms: t,
                    value: values.get(&t).copied().flatten(),
                })
                .collect(),
        })
        .collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::api::{Anomalies, Oee, Production};
    use crate::range::{Bucket, HOUR_MS};

    pub(crate) fn row(plant: u16, t_ms: i64, planned: f64, running: f64, parts: i64, good: i64, ideal: f64) -> KpiRow {
        let ratio = |a: f64, b: f64| (b > 0.0).then(|| a / b);
        let (a, p, q) = (ratio(running, planned), ratio(ideal, running), ratio(good as f64, parts as f64));
        KpiRow {
            plant,
            line_id: None,
            machine_type: None,
            bucket_start: chrono::DateTime::from_timestamp_millis(t_ms).unwrap(),
            bucket_end: chrono::DateTime::from_timestamp_millis(t_ms + HOUR_MS).unwrap(),
            readings: 100,
            sensors: 10,
            sensor_availability: Some(0.9),
            anomalies: Anomalies { minor: 1, major: 0, critical: 1 },
            acknowledged: 2,
            mean_time_to_acknowledge_s: Some(60.0),
            maintenance_performed: 0,
            failures: 0,
            predictions: 1,
            mean_predicted_days_to_service: Some(10.0),
            production: Production { planned_s: planned, running_s: running, parts, good_parts: good },
            oee: Oee { oee: a.zip(p).zip(q).map(|((a, p), q)| a * p * q), availability: a, performance: p, quality: q },
        }
    }

    const T0: i64 = 1_772_366_400_000;

    #[test]
    fn a_ranges_oee_is_made_from_its_sums_not_from_averaged_ratios() {
        // An idle hour and a busy one: averaging the two ratios would say 50 % availability.
        let rows = vec![row(1, T0, 100.0, 10.0, 10, 10, 10.0), row(1, T0 + HOUR_MS, 3600.0, 3600.0, 100, 90, 3600.0)];
        let s = &summarize(&rows)[0];
        let a = 3610.0 / 3700.0;
        assert!((s.availability.unwrap() - a).abs() < 1e-12);
        assert!((s.performance.unwrap() - 1.0).abs() < 1e-12);
        assert!((s.quality.unwrap() - 100.0 / 110.0).abs() < 1e-12);
        assert!((s.oee.unwrap() - a * 100.0 / 110.0).abs() < 1e-12);
        assert_eq!(s.anomalies_critical, 2);
        assert!((s.mean_time_to_acknowledge_s.unwrap() - 60.0).abs() < 1e-12);
    }

    #[test]
    fn nothing_to_divide_by_is_no_value_and_hostile_numbers_never_reach_a_chart() {
        let mut r = row(2, T0, 0.0, 0.0, 0, 0, 0.0);
        r.sensor_availability = Some(f64::NAN);
        r.mean_time_to_acknowledge_s = Some(f64::INFINITY);
        r.mean_predicted_days_to_service = Some(1e300);
        let s = &summarize(std::slice::from_ref(&r))[0];
        assert_eq!(
            (s.oee, s.availability, s.sensor_availability, s.mean_time_to_acknowledge_s),
            (None, None, None, None)
        );
        assert_eq!(Metric::SensorAvailability.of_row(&r), None);
        assert_eq!(Metric::TimeToAcknowledge.of_row(&r), None);
    }

    #[test]
    fn every_bucket_of_the_range_is_in_a_series_and_a_missing_one_is_a_gap() {
        let range = Range { from_ms: T0, to_ms: T0 + 3 * HOUR_MS, bucket: Bucket::Hour };
        let rows = vec![row(1, T0, 100.0, 50.0, 1, 1, 50.0), row(1, T0 + 2 * HOUR_MS, 100.0, 100.0, 1, 1, 100.0)];
        let s = series(&rows, Metric::Availability, &range, |p, _| format!("P{p}"), 0);
        assert_eq!(s.len(), 1);
        let values: Vec<Option<f64>> = s[0].points.iter().map(|p| p.value).collect();
        assert_eq!(values, vec![Some(0.5), None, Some(1.0)]);
        let shifted = series(&rows, Metric::Availability, &range, |p, _| format!("P{p}"), 3 * HOUR_MS);
        assert_eq!(shifted[0].points[0].x_ms, T0 + 3 * HOUR_MS);
        assert_eq!(shifted[0].points[0].bucket_start_ms, T0);
    }
}
