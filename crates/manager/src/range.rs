//! The range a manager looks at (a day, a week, a month, or one they pick), the bucket
//! its KPIs come in, and the period before it for comparisons. Pure: "now" is an argument.

use serde::{Deserialize, Serialize};
use thiserror::Error;

pub const HOUR_MS: i64 = 3_600_000;
pub const DAY_MS: i64 = 24 * HOUR_MS;
/// The longest range the view asks for: two years of day buckets (the API's limit).
pub const MAX_SPAN_MS: i64 = 730 * DAY_MS;
/// Ranges up to this long come in hour buckets; longer ones in day buckets.
const HOURLY_UP_TO_MS: i64 = 7 * DAY_MS;
/// 2000-01-01 and 2200-01-01: the API's bounds for times.
const EARLIEST_MS: i64 = 946_684_800_000;
const LATEST_MS: i64 = 7_258_118_400_000;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RangeError {
    #[error("the range must end after it starts")]
    Empty,
    #[error("a range is at most two years long")]
    TooLong,
    #[error("times are between the years 2000 and 2200")]
    OutOfBounds,
}

/// How the range was picked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Preset {
    Day,
    Week,
    Month,
    Custom,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Bucket {
    Hour,
    Day,
}

impl Bucket {
    pub fn as_str(self) -> &'static str {
        match self {
            Bucket::Hour => "hour",
            Bucket::Day => "day",
        }
    }

    pub fn ms(self) -> i64 {
        match self {
            Bucket::Hour => HOUR_MS,
            Bucket::Day => DAY_MS,
        }
    }
}

/// `[from_ms, to_ms)`, aligned to whole buckets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Range {
    pub from_ms: i64,
    pub to_ms: i64,
    pub bucket: Bucket,
}

fn floor_to(ms: i64, step: i64) -> i64 {
    ms.div_euclid(step) * step
}

fn ceil_to(ms: i64, step: i64) -> i64 {
    -floor_to(-ms, step)
}

impl Range {
    /// The last day, week or month up to `now_ms` (the current bucket included).
    pub fn preset(preset: Preset, now_ms: i64) -> Result<Range, RangeError> {
        let span = match preset {
            Preset::Day => DAY_MS,
            Preset::Week => 7 * DAY_MS,
            Preset::Month | Preset::Custom => 30 * DAY_MS,
        };
        Range::ending(now_ms - span, now_ms)
    }

    /// A range picked by hand, widened to whole buckets.
    pub fn ending(from_ms: i64, to_ms: i64) -> Result<Range, RangeError> {
        if !(EARLIEST_MS..=LATEST_MS).contains(&from_ms) || !(EARLIEST_MS..=LATEST_MS).contains(&to_ms) {
            return Err(RangeError::OutOfBounds);
        }
        if to_ms <= from_ms {
            return Err(RangeError::Empty);
        }
        if to_ms - from_ms > MAX_SPAN_MS {
            return Err(RangeError::TooLong);
        }
        let bucket = if to_ms - from_ms <= HOURLY_UP_TO_MS { Bucket::Hour } else { Bucket::Day };
        let step = bucket.ms();
        Ok(Range { from_ms: floor_to(from_ms, step), to_ms: ceil_to(to_ms, step), bucket })
    }

    pub fn span_ms(&self) -> i64 {
        self.to_ms - self.from_ms
    }

    /// The period of the same length just before this one.
    pub fn previous(&self) -> Range {
        Range { from_ms: self.from_ms - self.span_ms(), to_ms: self.from_ms, bucket: self.bucket }
    }

    /// Every bucket start of the range.
    pub fn buckets(&self) -> impl Iterator<Item = i64> + '_ {
        (self.from_ms..self.to_ms).step_by(self.bucket.ms() as usize)
    }

    /// "2026-03-01 00:00 – 2026-03-08 00:00 UTC", for stamps on exports.
    pub fn label(&self) -> String {
        let f = |ms: i64| {
            chrono::DateTime::from_timestamp_millis(ms)
                .map(|t| t.format("%Y-%m-%d %H:%M").to_string())
                .unwrap_or_default()
        };
        format!("{} – {} UTC ({} buckets)", f(self.from_ms), f(self.to_ms), self.bucket.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_772_366_400_000 + 5 * 60_000 + 123; // 2026-03-01 12:05:00.123 UTC

    #[test]
    fn presets_end_now_in_whole_buckets() {
        let d = Range::preset(Preset::Day, NOW).unwrap();
        assert_eq!(d.bucket, Bucket::Hour);
        assert_eq!(d.span_ms(), 25 * HOUR_MS, "the current hour is in, the hour a day ago too");
        assert_eq!(d.to_ms % HOUR_MS, 0);
        let m = Range::preset(Preset::Month, NOW).unwrap();
        assert_eq!(m.bucket, Bucket::Day);
        assert_eq!(m.buckets().count(), 31);
        assert_eq!(m.previous().to_ms, m.from_ms);
        assert_eq!(m.previous().span_ms(), m.span_ms());
    }

    #[test]
    fn bad_ranges_are_refused_with_a_reason() {
        assert_eq!(Range::ending(NOW, NOW), Err(RangeError::Empty));
        assert_eq!(Range::ending(NOW, NOW - 1), Err(RangeError::Empty));
        assert_eq!(Range::ending(NOW - 800 * DAY_MS, NOW), Err(RangeError::TooLong));
        assert_eq!(Range::ending(-1, NOW), Err(RangeError::OutOfBounds));
        assert_eq!(Range::ending(NOW, i64::MAX), Err(RangeError::OutOfBounds));
        assert_eq!(Range::ending(i64::MIN, i64::MAX), Err(RangeError::OutOfBounds));
    }
}
