//! A sensor's trend over a time window: which history to read for a span (raw readings,
//! minute or hour aggregates), and folding it into at most one point per pixel column.
//! Pure: data and times in, points out.

use serde::{Deserialize, Serialize};

use readmodel_contract::{Anomaly, Bucket, Sensor};

pub const MINUTE_MS: i64 = 60_000;
pub const HOUR_MS: i64 = 3_600_000;
/// The shortest and longest windows a chart may show.
pub const MIN_SPAN_MS: i64 = 15 * MINUTE_MS;
pub const MAX_SPAN_MS: i64 = 30 * 24 * HOUR_MS;

/// Which history a chart is drawn from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Resolution {
    Raw,
    Minute,
    Hour,
}

impl Resolution {
    /// Raw readings up to two hours (≤ 7,200 a sensor), minute buckets up to three days
    /// (≤ 4,320), hour buckets beyond (≤ 720 for 30 days): never more than a few
    /// thousand rows per sensor, whatever the window.
    pub fn for_span(span_ms: i64) -> Resolution {
        if span_ms <= 2 * HOUR_MS {
            Resolution::Raw
        } else if span_ms <= 3 * 24 * HOUR_MS {
            Resolution::Minute
        } else {
            Resolution::Hour
        }
    }

    /// The typical time between two points, to tell a gap in the data from its rhythm.
    pub fn step_ms(self) -> i64 {
        match self {
            Resolution::Raw => 1_000,
            Resolution::Minute => MINUTE_MS,
            Resolution::Hour => HOUR_MS,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Resolution::Raw => "raw",
            Resolution::Minute => "minute",
            Resolution::Hour => "hour",
        }
    }
}

/// A window [from_ms, to_ms) checked against the allowed spans.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Window {
    pub from_ms: i64,
    pub to_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WindowError {
    #[error("a chart spans 15 minutes to 30 days, not {0} ms")]
    Span(i64),
}

impl Window {
    /// The `span_ms` ending at `end_ms`.
    pub fn ending_at(end_ms: i64, span_ms: i64) -> Result<Window, WindowError> {
        if !(MIN_SPAN_MS..=MAX_SPAN_MS).contains(&span_ms) {
            return Err(WindowError::Span(span_ms));
        }
        Ok(Window { from_ms: end_ms.saturating_sub(span_ms), to_ms: end_ms })
    }

    pub fn span_ms(&self) -> i64 {
        self.to_ms - self.from_ms
    }

    pub fn resolution(&self) -> Resolution {
        Resolution::for_span(self.span_ms())
    }
}

/// One drawn point: the mean of what fell in its column, and its extremes.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct TrendPoint {
    pub ts_ms: i64,
    pub mean: f64,
    pub min: f64,
    pub max: f64,
}

/// An anomaly drawn on a chart: a shaded span and, where known, the observed value.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AnomalyMark {
    pub anomaly_id: String,
    pub severity: String,
    pub start_ms: i64,
    pub end_ms: Option<i64>,
    pub observed: Option<f64>,
}

/// Everything one chart shows.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Trend {
    pub sensor: Sensor,
    pub window: Window,
    pub resolution: Resolution,
    pub points: Vec<TrendPoint>,
    pub marks: Vec<AnomalyMark>,
}

/// Folds samples `(ts, mean, min, max, weight)` inside the window into at most `columns`
/// points (one per column), weighting means by how many readings each sample holds.
pub fn fold(
    samples: impl IntoIterator<Item = (i64, f64, f64, f64, f64)>,
    window: Window,
    columns: usize,
) -> Vec<TrendPoint> {
    let columns = columns.clamp(1, 10_000) as i64;
    let span = window.span_ms().max(1);
    // Per column: weighted sum, weight, min, max, first time.
    type Column = Option<(f64, f64, f64, f64, i64)>;
    let mut acc: Vec<Column> = vec![None; columns as usize];
    for (ts, mean, min, max, weight) in samples {
        if ts < window.from_ms || ts >= window.to_ms || !mean.is_finite() || !min.is_finite() || !max.is_finite() {
            continue;
        }
        let col = (((ts - window.from_ms) as i128 * columns as i128) / span as i128) as usize;
        let w = if weight.is_finite() && weight > 0.0 { weight } else { 1.0 };
        let slot = &mut acc[col.min(columns as usize - 1)];
        *slot = Some(match *slot {
            None => (mean * w, w, min, max, ts),
            Some((sum, n, lo, hi, first)) => (sum + mean * w, n + w, lo.min(min), hi.max(max), first.min(ts)),
        });
    }
    acc.into_iter().flatten().map(|(sum, n, min, max, ts)| TrendPoint { ts_ms: ts, mean: sum / n, min, max }).collect()
}

/// Raw readings as samples.
pub fn raw_samples(points: &[(i64, f64)]) -> impl Iterator<Item = (i64, f64, f64, f64, f64)> + '_ {
    points.iter().map(|&(ts, v)| (ts, v, v, v, 1.0))
}

/// Aggregate buckets as samples, weighted by their reading count.
pub fn bucket_samples(buckets: &[Bucket]) -> impl Iterator<Item = (i64, f64, f64, f64, f64)> + '_ {
    buckets.iter().map(|b| (b.ts_ms, b.mean, b.min, b.max, b.count as f64))
}

/// The anomalies of `sensor_id` that overlap the window.
pub fn marks<'a>(anomalies: impl IntoIterator<Item = &'a Anomaly>, sensor_id: i32, window: Window) -> Vec<AnomalyMark> {
    let mut out: Vec<AnomalyMark> = anomalies
        .into_iter()
        .filter(|a| a.involves_sensor(sensor_id))
        .filter(|a| a.started_at_ms < window.to_ms && a.resolved_at_ms.is_none_or(|r| r >= window.from_ms))
        .map(|a| AnomalyMark {
            anomaly_id: a.anomaly_id.clone(),
            severity: a.severity.clone(),
            start_ms: a.started_at_ms,
            end_ms: a.resolved_at_ms,
            observed: a.sensors.iter().find(|s| s.sensor == Some(i64::from(sensor_id))).and_then(|s| s.observed),
        })
        .collect();
    out.sort_by_key(|m| m.start_ms);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_span_picks_the_history() {
        assert_eq!(Resolution::for_span(15 * MINUTE_MS), Resolution::Raw);
        assert_eq!(Resolution::for_span(2 * HOUR_MS), Resolution::Raw);
        assert_eq!(Resolution::for_span(24 * HOUR_MS), Resolution::Minute);
        assert_eq!(Resolution::for_span(30 * 24 * HOUR_MS), Resolution::Hour);
        assert!(Window::ending_at(0, MINUTE_MS).is_err());
        assert!(Window::ending_at(0, 31 * 24 * HOUR_MS).is_err());
        assert_eq!(Window::ending_at(100 * HOUR_MS, HOUR_MS).unwrap().from_ms, 99 * HOUR_MS);
    }

    #[test]
    fn folding_keeps_extremes_and_weighted_means() {
        let w = Window { from_ms: 0, to_ms: 100 };
        let raw = [(0, 1.0), (10, 5.0), (49, 3.0), (50, -2.0), (99, 4.0), (100, 99.0), (-1, 99.0), (20, f64::NAN)];
        let pts = fold(raw_samples(&raw), w, 2);
        assert_eq!(pts.len(), 2);
        assert_eq!(pts[0], TrendPoint { ts_ms: 0, mean: 3.0, min: 1.0, max: 5.0 });
        assert_eq!(pts[1], TrendPoint { ts_ms: 50, mean: 1.0, min: -2.0, max: 4.0 });
        let buckets = [
            Bucket { ts_ms: 0, count: 3, min: 0.0, max: 2.0, mean: 1.0 },
            Bucket { ts_ms: 10, count: 1, min: 5.0, max: 5.0, mean: 5.0 },
        ];
        let pts = fold(bucket_samples(&buckets), w, 1);
        assert_eq!(pts[0].mean, 2.0);
        assert_eq!((pts[0].min, pts[0].max), (0.0, 5.0));
        assert!(fold(raw_samples(&raw), w, 0).len() <= 1, "zero columns is treated as one");
    }
}
