//! What saving a snapshot fetches, so the file can be explored with no cloud at every
//! level the view drills to: the scope's KPIs by plant, line and machine type in day
//! buckets and in hour buckets (for zooming below a week), over the range and the period
//! before it, and every machine's trend at a resolution that fits the range. The requests
//! are cut to the API's bounds, and the whole is estimated before anything is fetched,
//! so a scope too big for a file is refused with a sentence that says what to narrow.

use serde::Serialize;

use crate::api::{By, MachineInfo};
use crate::range::{Bucket, DAY_MS, HOUR_MS, Range};

/// The largest snapshot saved (estimated before fetching).
pub const MAX_BYTES: u64 = 384 << 20;
/// The most requests a snapshot makes (each machine's trend is one).
pub const MAX_REQUESTS: usize = 20_000;
/// Most rows one KPI answer may hold (the cloud's bound).
const API_MAX_ROWS: i64 = 20_000;
/// Groups the cloud counts per plant when it bounds an answer (plant, line, machine type).
fn api_groups(by: By) -> i64 {
    match by {
        By::Plant => 1,
        By::Line => 100,
        By::MachineType => 20,
    }
}
/// Points a snapshot keeps per sensor and machine trend at most: enough for a chart's
/// width, small enough that a month of every sensor of a plant fits a file.
const TREND_POINTS: i64 = 250;
/// Bytes one KPI row and one trend point take as JSON (measured on the cloud's answers,
/// rounded up).
const KPI_ROW_BYTES: u64 = 700;
const TREND_POINT_BYTES: u64 = 110;
const TREND_SENSOR_BYTES: u64 = 200;

/// One request of a snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fetch {
    Kpis { plants: Vec<u16>, from_ms: i64, to_ms: i64, bucket: Bucket, by: By },
    Trend { machine: String, from_ms: i64, to_ms: i64, resolution: &'static str },
}

/// The requests of a snapshot and the size they are expected to take.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Plan {
    #[serde(skip)]
    pub fetches: Vec<Fetch>,
    pub machines: usize,
    pub sensors: u64,
    pub kpi_rows: u64,
    pub estimated_bytes: u64,
    pub trend_resolution: &'static str,
}

/// The trend resolution that fits a range: the finest that keeps each sensor's points
/// within [`TREND_POINTS`].
pub fn trend_resolution(range: &Range) -> (&'static str, i64) {
    let span = range.span_ms();
    [("minute", 60_000), ("hour", HOUR_MS), ("day", DAY_MS)]
        .into_iter()
        .find(|(_, w)| span / w <= TREND_POINTS)
        .unwrap_or(("day", DAY_MS))
}

/// `[from, to)` cut into pieces the API answers in one go for `groups` groups per plant
/// of `plants` plants.
fn chunks(from_ms: i64, to_ms: i64, bucket: Bucket, by: By, plants: usize) -> Vec<(i64, i64)> {
    let (width, max_span) = match bucket {
        Bucket::Hour => (HOUR_MS, 30 * DAY_MS),
        Bucket::Day => (DAY_MS, 730 * DAY_MS),
    };
    let buckets = (API_MAX_ROWS / (api_groups(by) * plants.max(1) as i64)).max(1);
    let step = (buckets * width).min(max_span);
    let mut out = Vec::new();
    let mut from = from_ms;
    while from < to_ms {
        let to = (from + step).min(to_ms);
        out.push((from, to));
        from = to;
    }
    out
}

/// Plans a snapshot of `scope` over `range` and the period before it. `groups` is, per
/// plant, its number of lines and machine types (for the estimate); `machines` every
/// machine of the scope.
pub fn plan(scope: &[u16], range: &Range, groups: &[(u16, usize, usize)], machines: &[MachineInfo]) -> Plan {
    let wide = Range { from_ms: range.previous().from_ms, ..*range };
    let mut fetches = Vec::new();
    let mut kpi_rows = 0u64;
    for bucket in [Bucket::Day, Bucket::Hour] {
        let width = if bucket == Bucket::Hour { HOUR_MS } else { DAY_MS };
        let buckets = (wide.span_ms() / width + 1) as u64;
        for (from_ms, to_ms) in chunks(wide.from_ms, wide.to_ms, bucket, By::Plant, scope.len()) {
            fetches.push(Fetch::Kpis { plants: scope.to_vec(), from_ms, to_ms, bucket, by: By::Plant });
        }
        kpi_rows = kpi_rows.saturating_add(buckets.saturating_mul(scope.len() as u64));
        for &p in scope {
            let (lines, types) = groups.iter().find(|g| g.0 == p).map_or((0, 0), |g| (g.1, g.2));
            for (by, n) in [(By::Line, lines), (By::MachineType, types)] {
                // One plant at a time: the API bounds one answer's rows by the plants asked.
                for (from_ms, to_ms) in chunks(wide.from_ms, wide.to_ms, bucket, by, 1) {
                    fetches.push(Fetch::Kpis { plants: vec![p], from_ms, to_ms, bucket, by });
                }
                kpi_rows = kpi_rows.saturating_add(buckets.saturating_mul(n as u64));
            }
        }
    }
    let (resolution, width) = trend_resolution(range);
    let points = (range.span_ms() / width + 1) as u64;
    let sensors: u64 = machines.iter().fold(0u64, |n, m| n.saturating_add(m.sensors.max(0) as u64));
    for m in machines {
        fetches.push(Fetch::Trend {
            machine: m.machine_id.clone(),
            from_ms: range.from_ms,
            to_ms: range.to_ms,
            resolution,
        });
    }
    let estimated_bytes = kpi_rows
        .saturating_mul(KPI_ROW_BYTES)
        .saturating_add(sensors.saturating_mul(points * TREND_POINT_BYTES + TREND_SENSOR_BYTES));
    Plan { fetches, machines: machines.len(), sensors, kpi_rows, estimated_bytes, trend_resolution: resolution }
}

impl Plan {
    /// Why this plan is too big for a file, in a sentence that says what to narrow.
    pub fn too_big(&self) -> Option<String> {
        if self.estimated_bytes > MAX_BYTES {
            Some(format!(
                "a snapshot of this scope would take about {} ({} machines, {} sensors, {} KPI rows); the most a snapshot holds is {}: choose fewer plants or a shorter range",
                human_bytes(self.estimated_bytes),
                self.machines,
                self.sensors,
                self.kpi_rows,
                human_bytes(MAX_BYTES)
            ))
        } else if self.fetches.len() > MAX_REQUESTS {
            Some(format!(
                "a snapshot of this scope needs {} answers of the cloud ({} machines); the most is {MAX_REQUESTS}: choose fewer plants or a shorter range",
                self.fetches.len(),
                self.machines
            ))
        } else {
            None
        }
    }
}

/// `12.3 MB`: sizes as people read them (powers of 1,000, as file managers show).
pub fn human_bytes(n: u64) -> String {
    let n = n as f64;
    match n {
        n if n >= 1e9 => format!("{:.1} GB", n / 1e9),
        n if n >= 1e6 => format!("{:.1} MB", n / 1e6),
        n if n >= 1e3 => format!("{:.0} kB", n / 1e3),
        n => format!("{n:.0} bytes"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_772_366_400_000;

    fn machine(plant: u16, i: usize, sensors: i32) -> MachineInfo {
        MachineInfo {
            plant,
            machine_id: format!("P{plant}-M{i}"),
            line_id: format!("P{plant}-L1"),
            machine_type: "press".into(),
            sensors,
            open_anomalies: 0,
            predicted_days: None,
            last_failure_at: None,
        }
    }

    fn month() -> Range {
        Range { from_ms: T0, to_ms: T0 + 30 * DAY_MS, bucket: Bucket::Day }
    }

    #[test]
    fn every_request_stays_within_the_apis_bounds_and_covers_the_whole_range() {
        let r = month();
        let wide = Range { from_ms: r.previous().from_ms, ..r };
        let scope = [1, 2, 3, 4, 5];
        let machines: Vec<_> = scope.iter().flat_map(|&p| (0..4).map(move |i| machine(p, i, 5))).collect();
        let p = plan(&scope, &r, &[(1, 2, 3), (2, 2, 3), (3, 2, 3), (4, 2, 3), (5, 2, 3)], &machines);
        let mut covered: std::collections::HashMap<(Bucket, By, Vec<u16>), i64> = Default::default();
        for f in &p.fetches {
            if let Fetch::Kpis { plants, from_ms, to_ms, bucket, by } = f {
                let width = if *bucket == Bucket::Hour { HOUR_MS } else { DAY_MS };
                let max = if *bucket == Bucket::Hour { 31 * DAY_MS } else { 731 * DAY_MS };
                assert!(to_ms - from_ms <= max, "{f:?}");
                let rows = (to_ms - from_ms) / width * api_groups(*by) * plants.len() as i64;
                assert!(rows <= API_MAX_ROWS, "{f:?} asks for {rows} rows");
                *covered.entry((*bucket, *by, plants.clone())).or_default() += to_ms - from_ms;
            }
        }
        // Day and hour × (every plant by plant + each plant by line and by type).
        assert_eq!(covered.len(), 2 * (1 + 5 * 2));
        assert!(covered.values().all(|&span| span == wide.span_ms()));
        let trends = p.fetches.iter().filter(|f| matches!(f, Fetch::Trend { .. })).count();
        assert_eq!(trends, 20);
        assert_eq!(p.trend_resolution, "day");
        assert!(p.too_big().is_none());
    }

    #[test]
    fn the_trend_resolution_fits_the_range() {
        let r = |days: i64| Range { from_ms: T0, to_ms: T0 + days * DAY_MS, bucket: Bucket::Hour };
        assert_eq!(trend_resolution(&r(7)).0, "hour");
        assert_eq!(trend_resolution(&r(10)).0, "hour");
        assert_eq!(trend_resolution(&r(30)).0, "day");
        assert_eq!(trend_resolution(&Range { from_ms: T0, to_ms: T0 + 3 * HOUR_MS, bucket: Bucket::Hour }).0, "minute");
    }

    #[test]
    fn a_scope_too_big_is_refused_with_its_size_and_what_to_narrow() {
        // Five plants of 10,000 sensors over a year: far beyond a file.
        let r = Range { from_ms: T0, to_ms: T0 + 365 * DAY_MS, bucket: Bucket::Day };
        let machines: Vec<_> = (1..=5).flat_map(|p| (0..500).map(move |i| machine(p, i, 20))).collect();
        let p = plan(&[1, 2, 3, 4, 5], &r, &[], &machines);
        let why = p.too_big().expect("refused");
        assert!(why.contains("GB") && why.contains("fewer plants or a shorter range"), "{why}");
        // Hostile sensor counts do not wrap the estimate.
        let odd = [machine(1, 0, i32::MIN), machine(1, 1, i32::MAX)];
        let p = plan(&[1], &month(), &[(1, usize::MAX / 1_000_000_000, 0)], &odd);
        assert_eq!(p.sensors, i32::MAX as u64);
        assert!(p.too_big().is_some());
    }

    #[test]
    fn sizes_read_as_people_read_them() {
        assert_eq!(human_bytes(512), "512 bytes");
        assert_eq!(human_bytes(12_300_000), "12.3 MB");
        assert_eq!(human_bytes(MAX_BYTES), "402.7 MB");
    }
}
