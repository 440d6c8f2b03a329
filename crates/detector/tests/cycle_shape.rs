//! A batch cycle (trapezoids of varying length and duty, as an oven's load temperature or a
//! press's cylinder pressure) judged against its cycle's shape: its ramps and plateaus are
//! normal, while a spike inside its range, a shift of its plateaus and a burst of noise are
//! not, though none of them leaves the range a level test would allow.

use detector::stats::SplitMix;
use detector::{Config, Detector, Enabled, SensorState};

const LOW: f64 = 56.0;
const HIGH: f64 = 164.0;
const NOISE: f64 = 0.6;
const ALARM: f32 = 0.6;
const HOUR: i64 = 3600;

/// The tests the plant runs on a batch cycle, with or without its shape.
fn batch_detector(cycle_shape: bool) -> Detector {
    let enabled = Enabled {
        spike: false,
        level_shift: false,
        drift: false,
        variance: true,
        stuck: true,
        chatter: true,
        dropout: true,
        cycle_shape,
        ..Enabled::default()
    };
    Detector::new(Config { enabled, ..Config::default() }).expect("valid settings")
}

/// One reading a second of a trapezoid cycle: 5 to 15 minutes, high for 30 to 70 % of it,
/// ramping over a tenth of it each way.
struct Cycle {
    rng: SplitMix,
    start_s: i64,
    length_s: i64,
    duty: f64,
}

impl Cycle {
    fn value(&mut self, t_s: i64) -> f64 {
        if t_s >= self.start_s + self.length_s {
            self.start_s = t_s;
            self.length_s = self.rng.range(300.0, 900.0) as i64;
            self.duty = self.rng.range(0.3, 0.7);
        }
        let phase = (t_s - self.start_s) as f64 / self.length_s as f64;
        let up = (phase / 0.1).min(1.0);
        let down = ((self.duty + 0.1 - phase) / 0.1).clamp(0.0, 1.0);
        LOW + (HIGH - LOW) * up.min(down) + NOISE * self.rng.normal()
    }
}

/// Seconds (from 2 h on, after learning) at which a reading scored an alarm, the readings
/// altered by `fault(t_s, value)`.
fn alarms(hours: i64, cycle_shape: bool, mut fault: impl FnMut(i64, f64) -> f64) -> Vec<i64> {
    let detector = batch_detector(cycle_shape);
    let mut state = SensorState::default();
    let mut cycle = Cycle { rng: SplitMix::new(7), start_s: 0, length_s: 0, duty: 0.5 };
    let mut out = Vec::new();
    for t in 0..hours * HOUR {
        let value = fault(t, cycle.value(t));
        let s = detector.next(&mut state, 1_772_409_600_000 + t * 1000, value).expect("finite");
        if t >= 2 * HOUR && s.score >= ALARM {
            out.push(t);
        }
    }
    out
}

#[test]
fn a_batch_cycle_running_for_two_days_raises_nothing() {
    let found = alarms(48, true, |_, v| v);
    assert!(found.is_empty(), "alarms at {found:?} s");
}

#[test]
fn a_spike_inside_the_cycles_range_is_seen() {
    // 67 noise units for one reading, well inside the 108 the cycle spans.
    let at = 5 * HOUR + 1234;
    let spike = |t: i64, v: f64| if t == at { v - 67.0 * NOISE } else { v };
    let found = alarms(6, true, spike);
    assert!(found.iter().any(|t| (at..at + 3).contains(t)), "alarms at {found:?} s");
    assert!(found.len() <= 2, "{found:?}");
    assert!(alarms(6, false, spike).is_empty(), "judged against a level, the spike was seen");
}

#[test]
fn a_spike_of_two_readings_inside_the_cycles_range_is_seen_on_plateaus_and_ramps() {
    // 67 noise units for two readings (a spike that lasts two seconds), at a dozen places
    // of the cycle: on a ramp, the noise test's few capped readings cannot show it.
    for k in 0..12 {
        let at = 3 * HOUR + k * 617;
        let spike = |t: i64, v: f64| if (at..at + 2).contains(&t) { v + 67.0 * NOISE } else { v };
        let found = alarms(5, true, spike);
        assert!(found.iter().any(|t| (at..at + 4).contains(t)), "spike at {at} s: alarms at {found:?} s");
    }
}

#[test]
fn a_shift_of_the_cycles_plateaus_is_seen_once() {
    let at = 5 * HOUR;
    let shift = |t: i64, v: f64| if (at..at + 700).contains(&t) { v + 43.0 } else { v };
    let found = alarms(6, true, shift);
    assert!(found.iter().any(|t| (at..at + 700).contains(t)), "alarms at {found:?} s");
    assert!(alarms(6, false, shift).is_empty(), "judged against a level, the shift was seen");
}

#[test]
fn a_burst_of_noise_on_the_cycle_is_seen() {
    let at = 5 * HOUR;
    let mut rng = SplitMix::new(99);
    let mut burst = move |t: i64, v: f64| if (at..at + 97).contains(&t) { v + 10.8 * rng.normal() } else { v };
    let found = alarms(6, true, &mut burst);
    assert!(found.iter().any(|t| (at..at + 97).contains(t)), "alarms at {found:?} s");
}
