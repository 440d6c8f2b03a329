//! A counter judged by its machine's operating point: parts, strokes or batches are counted
//! at a rate that follows the machine's load, so a counter that stops while its machine
//! runs as it did while it counted is stuck, whereas one that pauses because its machine
//! went idle is not.
//!
//! # Model
//! The counter's rate is learned as a straight line of the machine's operating point `L`
//! (the position along the direction in which its measurements move together, see
//! [`crate::machine`]): each completed run (the time from one count to the next) teaches
//! the counts it made against the time it took and the mean operating point over it, a
//! least-squares line weighted by time that forgets over `HISTORY_S`. While a run lasts, the
//! counts the line expects for it are summed instant by instant; a count normally comes
//! when about one is expected, give or take the counter's learned error (the mean distance
//! between counts expected and counts made at each count, Laplace-tailed, which is
//! conservative for a counter ticking at a steady cycle time). A run with `Λ` counts
//! expected and none made has surprise `log10 2 + (Λ - 1) / error · log10 e`.
//!
//! Counts are expected only where the line can be trusted and the machine clearly runs:
//! at operating points within the spread of those it was learned at, and where the line
//! gives at least half the counter's mean rate (an idle or stopped machine counts slowly or
//! not at all, and its pause is no fault). Runs that began before the machine model knew
//! its operating point and a counter going backwards (a reset) teach nothing; runs judged
//! abnormal teach the line but not the error.

use serde::{Deserialize, Serialize};

use crate::detector::{Score, Test, f32_sat};

/// Time over which the rate's line forgets (seconds of runs).
const HISTORY_S: f64 = 4.0 * 3600.0;
/// Completed runs learned before a run is judged; the first runs only teach the line.
const READY_RUNS: u32 = 30;
/// Completed runs after which the counter's error starts to be learned from the line.
const ERROR_FROM_RUNS: u32 = 10;
/// Weight of each count in the counter's mean error.
const ERROR_WEIGHT: f32 = 0.05;
/// Smallest error assumed (in counts): no counter keeps its cycle time to better than a
/// tenth of a count, and the line is never that exact.
const ERROR_FLOOR: f32 = 0.1;
/// Share of the counter's mean rate below which the machine is taken as idle: no counts are
/// expected there.
const RUNNING_SHARE: f64 = 0.5;
/// Operating points farther than this many spreads (plus `POINT_MARGIN` noise units) from
/// the mean of those the line was learned at are beyond what it knows.
const POINT_SPREADS: f64 = 2.5;
const POINT_MARGIN: f64 = 2.0;
/// A gap between readings counts for at most this long (a silent counter is the dropout
/// test's to judge, not a stop).
const MAX_STEP_S: f64 = 60.0;
/// Level (as a score) from which a run is judged abnormal and not learned from.
const ABNORMAL_LEVEL: f32 = 0.35;

/// What one counter has learned about its rate and its current run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CounterWatch {
    pub(crate) sensor: u32,
    started: bool,
    last_value: f64,
    last_ts_ms: i64,
    /// The current run: its time (s), time × operating point, counts expected, whether
    /// some of it passed without a known operating point, and its highest level.
    run_s: f64,
    run_point_s: f64,
    expected: f64,
    blind: bool,
    peak: f32,
    /// Time-weighted sums of the rate's line: time, time × point, time × point², counts,
    /// counts × point.
    w: f64,
    x: f64,
    xx: f64,
    y: f64,
    xy: f64,
    runs: u32,
    /// Mean |counts expected - counts made| at a count (0 while not learned).
    error: f32,
}

impl CounterWatch {
    pub fn new(sensor: u32) -> Self {
        CounterWatch {
            sensor,
            started: false,
            last_value: 0.0,
            last_ts_ms: 0,
            run_s: 0.0,
            run_point_s: 0.0,
            expected: 0.0,
            blind: false,
            peak: 0.0,
            w: 0.0,
            x: 0.0,
            xx: 0.0,
            y: 0.0,
            xy: 0.0,
            runs: 0,
            error: 0.0,
        }
    }

    /// Whether every number kept is finite.
    pub fn is_finite(&self) -> bool {
        [self.last_value, self.run_s, self.run_point_s, self.expected, self.w, self.x, self.xx, self.y, self.xy]
            .iter()
            .all(|v| v.is_finite())
            && self.error.is_finite()
            && self.peak.is_finite()
    }

    /// Counts per second the line gives at operating point `point`, when the line knows
    /// that point and the machine clearly runs there.
    fn rate_at(&self, point: f64) -> Option<f64> {
        if self.runs < READY_RUNS || self.w <= 0.0 || self.y <= 0.0 {
            return None;
        }
        let mean_point = self.x / self.w;
        let var = (self.xx / self.w - mean_point * mean_point).max(0.0);
        if (point - mean_point).abs() > POINT_SPREADS * var.sqrt() + POINT_MARGIN {
            return None;
        }
        let mean_rate = self.y / self.w;
        let denom = self.w * self.xx - self.x * self.x;
        // Learned at one operating point only, the line is flat there.
        let slope = if denom > 1e-9 * self.w * self.w { (self.w * self.xy - self.x * self.y) / denom } else { 0.0 };
        let rate = mean_rate + slope * (point - mean_point);
        (rate >= RUNNING_SHARE * mean_rate).then_some(rate)
    }

    /// Takes one reading of the counter, with the machine's operating point at its latest
    /// instant (None while the machine model does not know it). Returns the score of the
    /// run so far when counts were expected and did not come.
    pub fn reading(&mut self, ts_ms: i64, value: f64, point: Option<f64>) -> Option<Score> {
        if !value.is_finite() {
            return None;
        }
        if !self.started {
            self.started = true;
            (self.last_value, self.last_ts_ms) = (value, ts_ms);
            self.new_run(true);
            return None;
        }
        let dt = (ts_ms.saturating_sub(self.last_ts_ms) as f64 / 1000.0).clamp(0.0, MAX_STEP_S);
        self.last_ts_ms = self.last_ts_ms.max(ts_ms);
        match point {
            Some(p) if p.is_finite() => {
                if let Some(rate) = self.rate_at(p) {
                    self.expected += rate * dt;
                }
                self.run_s += dt;
                self.run_point_s += dt * p;
            }
            _ => self.blind = true,
        }
        if value < self.last_value {
            // Reset or rolled over: a new count begins, nothing learned.
            self.last_value = value;
            self.new_run(true);
            return None;
        }
        if value > self.last_value {
            let counts = (value - self.last_value).min(1e6);
            self.last_value = value;
            self.complete(counts);
            return None;
        }
        self.judge(ts_ms, value)
    }

    /// A count came: the run teaches the line unless it was blind, and the error unless it
    /// was also judged abnormal. A run judged abnormal still teaches the line (weighted by
    /// its time, a stop of minutes moves a line of hours little): were it left out, a line
    /// that is off at some operating point could never learn better there.
    fn complete(&mut self, counts: f64) {
        if !self.blind && self.run_s > 0.0 {
            if self.runs >= ERROR_FROM_RUNS && self.peak < ABNORMAL_LEVEL {
                let e = f32_sat((self.expected - counts).abs());
                self.error = if self.error > 0.0 { self.error + ERROR_WEIGHT * (e - self.error) } else { e };
            }
            let keep = (-self.run_s / HISTORY_S).exp();
            let mean_point = self.run_point_s / self.run_s;
            for v in [&mut self.w, &mut self.x, &mut self.xx, &mut self.y, &mut self.xy] {
                *v *= keep;
            }
            self.w += self.run_s;
            self.x += self.run_point_s;
            self.xx += self.run_point_s * mean_point;
            self.y += counts;
            self.xy += counts * mean_point;
            self.runs = self.runs.saturating_add(1);
        }
        self.new_run(false);
    }

    fn new_run(&mut self, blind: bool) {
        (self.run_s, self.run_point_s, self.expected, self.peak) = (0.0, 0.0, 0.0, 0.0);
        self.blind = blind;
    }

    /// The run so far: counts were expected (`expected`) and none came.
    fn judge(&mut self, ts_ms: i64, value: f64) -> Option<Score> {
        if self.blind || self.error <= 0.0 || self.expected <= 1.0 {
            return None;
        }
        let error = f64::from(self.error.max(ERROR_FLOOR));
        let surprise = std::f64::consts::LOG10_2 + (self.expected - 1.0) / error * std::f64::consts::LOG10_E;
        let level = (surprise / crate::config::SURPRISE_SCALE).clamp(0.0, 1.0) as f32;
        self.peak = self.peak.max(level);
        Some(Score {
            ts_ms,
            value,
            expected: value + self.expected,
            lower: value,
            upper: value + self.expected + error,
            score: level,
            level,
            test: Test::Stuck,
            gap_ms: 0,
            adapted: false,
            clamped: false,
            overdue: false,
        })
    }
}
