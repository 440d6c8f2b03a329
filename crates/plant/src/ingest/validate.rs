//! Per-reading validation of an upload: known sensor of this gateway, a finite value a
//! working sensor of its kind can read (the layout's plausible range), timestamp inside
//! the accepted window. Pure: the caller passes the time.

use layout::Layout;
use serde::Serialize;
use telemetry::Reading;

/// A number as people read it: plain, or in exponent form when it is very large or small.
fn number(v: f64) -> String {
    if v != 0.0 && !(1e-4..1e9).contains(&v.abs()) { format!("{v:e}") } else { format!("{v}") }
}

/// A reading the node refused, and why.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Rejection {
    /// Position of the reading in the upload (0-based); -1 for the whole body.
    pub index: i64,
    /// The sensor as the gateway named it (numeric id or text id), if it named one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sensor: Option<String>,
    #[serde(skip_serializing)]
    pub ts_ms: Option<i64>,
    #[serde(skip_serializing)]
    pub value: Option<f64>,
    pub reason: String,
}

impl Rejection {
    /// A refusal of one reading that could not even be read.
    pub fn unreadable(index: usize, sensor: Option<String>, reason: impl Into<String>) -> Self {
        Rejection { index: index as i64, sensor, ts_ms: None, value: None, reason: reason.into() }
    }
}

/// An upload split into what is accepted and what is not.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Checked {
    pub valid: Vec<Reading>,
    pub rejected: Vec<Rejection>,
}

/// Checks readings from one gateway at one instant.
#[derive(Debug, Clone, Copy)]
pub struct Validator<'a> {
    pub layout: &'a Layout,
    /// Index of the gateway's line in the layout.
    pub line: usize,
    pub now_ms: i64,
    /// How far ahead of `now_ms` a timestamp may be (clock skew of the gateway).
    pub skew_ms: i64,
    /// How far behind `now_ms` a timestamp may be (the telemetry retention window).
    pub retention_ms: i64,
}

impl Validator<'_> {
    /// Accepted timestamps, inclusive, ms since the epoch.
    pub fn window(&self) -> (i64, i64) {
        (self.now_ms.saturating_sub(self.retention_ms), self.now_ms.saturating_add(self.skew_ms))
    }

    /// Checks one reading whose sensor is a numeric id (`named`: how the gateway wrote it).
    pub fn check(&self, index: usize, r: Reading, named: Option<&str>) -> Result<Reading, Rejection> {
        let reject = |reason: String| Rejection {
            index: index as i64,
            sensor: Some(named.map_or_else(|| r.sensor.to_string(), str::to_owned)),
            ts_ms: Some(r.ts_ms),
            value: Some(r.value),
            reason,
        };
        let Some(info) = self.layout.sensor(r.sensor) else {
            return Err(reject(format!("unknown sensor id {}", r.sensor)));
        };
        if info.sensor.line != self.line {
            let gateway = &self.layout.lines()[self.line].id;
            return Err(reject(format!(
                "sensor {} is not served by gateway {gateway} (it belongs to {})",
                info.name(),
                info.line.id
            )));
        }
        if !r.value.is_finite() {
            return Err(reject(format!("value {} is not a finite number", r.value)));
        }
        let (lo, hi) = info.plausible_range();
        if !(lo..=hi).contains(&r.value) {
            // A counter's range is open above: say so rather than "to inf".
            let range = if hi.is_finite() {
                format!("{} to {} {}", number(lo), number(hi), info.unit())
            } else {
                format!("at least {} {}", number(lo), info.unit())
            };
            return Err(reject(format!(
                "value {} is outside the plausible range of {} ({range}): no working sensor reads it",
                number(r.value),
                info.name(),
            )));
        }
        let (from, to) = self.window();
        if r.ts_ms > to {
            return Err(reject(format!(
                "timestamp {} ms is {:.1} s ahead of the node's clock; at most {:.1} s of skew is accepted",
                r.ts_ms,
                (r.ts_ms - self.now_ms) as f64 / 1000.0,
                self.skew_ms as f64 / 1000.0
            )));
        }
        if r.ts_ms < from {
            return Err(reject(format!(
                "timestamp {} ms is older than the {}-day retention window",
                r.ts_ms,
                self.retention_ms / 86_400_000
            )));
        }
        Ok(r)
    }

    /// Splits decoded binary readings.
    pub fn check_all(&self, readings: Vec<Reading>) -> Checked {
        let mut checked = Checked::default();
        for (i, r) in readings.into_iter().enumerate() {
            match self.check(i, r, None) {
                Ok(r) => checked.valid.push(r),
                Err(rej) => checked.rejected.push(rej),
            }
        }
        checked
    }
}
