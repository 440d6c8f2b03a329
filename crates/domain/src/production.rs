//! Production: what a machine's controller counts (parts made, parts rejected, time
//! planned and time running), and OEE, the headline figure built from those counts.
//!
//! OEE = availability × performance × quality, where
//! * availability = running time / planned production time,
//! * performance  = (parts × ideal cycle time) / running time,
//! * quality      = good parts / parts.
//!
//! Every input is a sum (seconds, parts, ideal seconds), so reports of many machines and
//! periods roll up by adding them before dividing, never by averaging ratios.

use chrono::{DateTime, Timelike, Utc};
use serde::{Deserialize, Serialize};

use crate::Rejection;

pub const PRODUCTION_REPORTED: &str = "ProductionReported";

/// A machine's counts for one period (at most an hour, inside one clock hour), as its
/// controller reports them through its line's gateway.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProductionReported {
    pub machine_id: String,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    /// Production time the schedule planned in the period, seconds.
    pub planned_s: f64,
    /// Time the machine ran producing within the planned time, seconds.
    pub running_s: f64,
    /// Parts made in the period, and how many of them were rejected.
    pub parts: u64,
    pub rejects: u64,
    /// The machine's ideal cycle time: seconds per part at its rated speed.
    pub ideal_cycle_s: f64,
    /// Who reported it (`gateway:P1-L03`).
    pub source: String,
}

/// Longest ideal cycle time accepted (a day per part).
pub const MAX_IDEAL_CYCLE_S: f64 = 86_400.0;
/// How far above its rated speed a machine may seem to run in one report (a part
/// finished just after the period began was mostly made in the one before).
const PERFORMANCE_TOLERANCE: f64 = 1.5;

impl ProductionReported {
    /// Checks a report before it is stored: a permanent refusal names what is wrong.
    pub fn check(&self) -> Result<(), Rejection> {
        let bad = |why: String| Err(Rejection::Invalid(why));
        let period_s = (self.to - self.from).num_milliseconds() as f64 / 1000.0;
        if period_s <= 0.0 || period_s > 3600.0 {
            return bad(format!("the period must be longer than 0 and at most an hour, got {period_s} s"));
        }
        let hour_start = self.from.with_minute(0).and_then(|t| t.with_second(0)).and_then(|t| t.with_nanosecond(0));
        if hour_start.is_none_or(|h| self.to > h + chrono::Duration::hours(1)) {
            return bad("the period must lie within one clock hour".into());
        }
        for (name, v) in [("planned_s", self.planned_s), ("running_s", self.running_s)] {
            if !v.is_finite() || v < 0.0 || v > period_s + 1e-6 {
                return bad(format!("{name} must be between 0 and the period's {period_s} s, got {v}"));
            }
        }
        if self.running_s > self.planned_s + 1e-6 {
            return bad(format!(
                "running_s {} exceeds planned_s {}: time running is counted within the planned time",
                self.running_s, self.planned_s
            ));
        }
        if self.rejects > self.parts {
            return bad(format!("rejects {} exceed parts {}", self.rejects, self.parts));
        }
        if !self.ideal_cycle_s.is_finite() || self.ideal_cycle_s <= 0.0 || self.ideal_cycle_s > MAX_IDEAL_CYCLE_S {
            return bad(format!(
                "ideal_cycle_s must be above 0 and at most {MAX_IDEAL_CYCLE_S}, got {}",
                self.ideal_cycle_s
            ));
        }
        let ideal_s = self.parts as f64 * self.ideal_cycle_s;
        if ideal_s > self.running_s * PERFORMANCE_TOLERANCE + self.ideal_cycle_s {
            return bad(format!(
                "{} parts at an ideal {} s each need {ideal_s} s, more than the {} s running allow",
                self.parts, self.ideal_cycle_s, self.running_s
            ));
        }
        if self.source.chars().count() > 200 || self.source.contains('\0') {
            return bad("source must be at most 200 characters".into());
        }
        Ok(())
    }

    /// The sums this report adds to its hour.
    pub fn sums(&self) -> ProductionSums {
        ProductionSums {
            planned_s: self.planned_s,
            running_s: self.running_s,
            parts: self.parts as f64,
            good_parts: (self.parts - self.rejects.min(self.parts)) as f64,
            ideal_s: self.parts as f64 * self.ideal_cycle_s,
        }
    }
}

/// Additive production figures of any set of machines and periods.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct ProductionSums {
    pub planned_s: f64,
    pub running_s: f64,
    pub parts: f64,
    pub good_parts: f64,
    /// Σ parts × ideal cycle time: the time the parts would have taken at rated speed.
    pub ideal_s: f64,
}

impl ProductionSums {
    pub fn add(&mut self, other: &ProductionSums) {
        self.planned_s += other.planned_s;
        self.running_s += other.running_s;
        self.parts += other.parts;
        self.good_parts += other.good_parts;
        self.ideal_s += other.ideal_s;
    }

    /// OEE and its factors; `None` for a factor whose denominator is zero (nothing
    /// planned, nothing run, nothing made).
    pub fn oee(&self) -> Oee {
        let ratio = |a: f64, b: f64| (b > 0.0).then(|| a / b);
        let availability = ratio(self.running_s, self.planned_s);
        let performance = ratio(self.ideal_s, self.running_s);
        let quality = ratio(self.good_parts, self.parts);
        let oee = match (availability, performance, quality) {
            (Some(a), Some(p), Some(q)) => Some(a * p * q),
            // Planned but never ran: nothing was made, so OEE is 0 whatever else.
            (Some(0.0), _, _) => Some(0.0),
            _ => None,
        };
        Oee { oee, availability, performance, quality }
    }
}

/// OEE and its three factors, each in 0..=1 for sound inputs (performance may exceed 1
/// slightly when a part made mostly in one period is counted in the next).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Oee {
    pub oee: Option<f64>,
    pub availability: Option<f64>,
    pub performance: Option<f64>,
    pub quality: Option<f64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report() -> ProductionReported {
        let from = DateTime::parse_from_rfc3339("2026-03-01T10:15:00Z").expect("time").with_timezone(&Utc);
        ProductionReported {
            machine_id: "P1-L01-M001".into(),
            from,
            to: from + chrono::Duration::minutes(15),
            planned_s: 900.0,
            running_s: 720.0,
            parts: 80,
            rejects: 4,
            ideal_cycle_s: 8.0,
            source: "gateway:P1-L01".into(),
        }
    }

    #[test]
    fn oee_is_availability_times_performance_times_quality() {
        let r = report();
        assert_eq!(r.check(), Ok(()));
        let o = r.sums().oee();
        assert_eq!(o.availability, Some(0.8));
        assert_eq!(o.performance, Some(640.0 / 720.0));
        assert_eq!(o.quality, Some(76.0 / 80.0));
        let expected = 0.8 * (640.0 / 720.0) * (76.0 / 80.0);
        assert!((o.oee.expect("defined") - expected).abs() < 1e-12);
        // Roll-ups add sums: two machines, one idle all period.
        let mut sums = r.sums();
        sums.add(&ProductionReported { running_s: 0.0, parts: 0, rejects: 0, ..report() }.sums());
        assert_eq!(sums.oee().availability, Some(720.0 / 1800.0));
        assert_eq!(ProductionSums::default().oee().oee, None);
        let idle = ProductionReported { running_s: 0.0, parts: 0, rejects: 0, ..report() }.sums().oee();
        assert_eq!((idle.oee, idle.performance, idle.quality), (Some(0.0), None, None));
    }

    #[test]
    fn impossible_reports_are_refused() {
        let t = |f: fn(&mut ProductionReported)| {
            let mut r = report();
            f(&mut r);
            r.check()
        };
        for bad in [
            t(|r| r.to = r.from),
            t(|r| r.to = r.from + chrono::Duration::minutes(61)),
            t(|r| r.from -= chrono::Duration::minutes(20)),
            t(|r| r.planned_s = f64::NAN),
            t(|r| r.planned_s = 1e300),
            t(|r| r.running_s = -1.0),
            t(|r| r.running_s = f64::INFINITY),
            t(|r| r.running_s = 901.0),
            t(|r| r.rejects = 81),
            t(|r| r.ideal_cycle_s = 0.0),
            t(|r| r.ideal_cycle_s = f64::NEG_INFINITY),
            t(|r| r.parts = u64::MAX),
            t(|r| r.source = "x\0".into()),
        ] {
            assert!(matches!(bad, Err(Rejection::Invalid(_))), "{bad:?}");
        }
    }
}
