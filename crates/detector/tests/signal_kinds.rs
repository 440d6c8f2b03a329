//! Sensors that real plants are full of and that never look like Gaussian noise: a flat
//! line, a square wave, a quantised reading and an on/off state. A simulated week of each
//! raises nothing; the same sensor with a real fault raises one alarm, at the fault's
//! onset; a level shift is one peak, not a plateau.

use detector::stats::SplitMix;
use detector::{Config, Score, StreamingDetector, Test};

const T0: i64 = 1_700_000_000_000;
const WEEK_S: usize = 7 * 86_400;
/// The default alarm threshold (`Config::alarm_score`).
const ALARM: f32 = 0.6;
/// Learning time excluded from "raises nothing".
const WARM_S: usize = 3600;

/// A signal kind: the value at second `t` (a week of them, deterministic for a seed).
type Signal = Box<dyn FnMut(usize) -> f64>;

fn flat() -> Signal {
    Box::new(|_| 42.5)
}

/// Batch cycles: 80 ↔ 20 with a period of 10 minutes and a duty that varies cycle to cycle.
fn square_wave(seed: u64) -> Signal {
    let mut rng = SplitMix::new(seed);
    let (mut cycle_end, mut high_until) = (0usize, 0usize);
    Box::new(move |t| {
        if t >= cycle_end {
            high_until = t + (600.0 * rng.range(0.2, 0.8)) as usize;
            cycle_end = t + 600;
        }
        if t < high_until { 80.0 } else { 20.0 }
    })
}

/// A temperature read through a coarse converter: 0.5-degree steps, noise of a third of a step,
/// and a daily cycle.
fn quantised(seed: u64) -> Signal {
    let mut rng = SplitMix::new(seed);
    Box::new(move |t| {
        let day = (t as f64 / 86_400.0 * std::f64::consts::TAU).sin();
        ((61.0 + 2.0 * day + 0.17 * rng.normal()) * 2.0).round() / 2.0
    })
}

/// A pump's run state: on and off for exponentially distributed stretches (mean 4 minutes on,
/// 2 off).
fn binary(seed: u64) -> Signal {
    let mut rng = SplitMix::new(seed);
    let (mut on, mut until) = (true, 0usize);
    Box::new(move |t| {
        if t >= until {
            on = !on;
            until = t + 1 + rng.exponential(if on { 240.0 } else { 120.0 }) as usize;
        }
        f64::from(u8::from(on))
    })
}

fn run(mut signal: Signal, seconds: usize, mut fault: impl FnMut(usize, f64) -> f64) -> Vec<Score> {
    let mut d = StreamingDetector::new(Config::default()).expect("default settings are valid");
    (0..seconds)
        .map(|t| {
            let v = fault(t, signal(t));
            d.next(T0 + t as i64 * 1000, v).expect("finite")
        })
        .collect()
}

/// Seconds at which the score crosses the alarm threshold from below.
fn alarms(scores: &[Score]) -> Vec<usize> {
    let mut out = Vec::new();
    let mut above = false;
    for (t, s) in scores.iter().enumerate() {
        let now = s.score >= ALARM;
        if now && !above {
            out.push(t);
        }
        above = now;
    }
    out
}

fn quiet_week(name: &str, signal: Signal) {
    let scores = run(signal, WEEK_S, |_, v| v);
    let late = &scores[WARM_S..];
    let worst = late.iter().enumerate().max_by(|a, b| a.1.score.total_cmp(&b.1.score)).map(|(i, s)| (i + WARM_S, *s));
    let above = late.iter().filter(|s| s.score >= ALARM).count();
    assert_eq!(above, 0, "{name}: {above} readings scored an alarm in a week; worst {worst:?}");
    let abnormal = late.iter().filter(|s| s.level >= ALARM).count();
    assert_eq!(abnormal, 0, "{name}: judged abnormal {abnormal} times in a week");
}

#[test]
fn a_flat_sensor_raises_nothing_in_a_week() {
    quiet_week("flat", flat());
}

#[test]
fn a_square_wave_raises_nothing_in_a_week() {
    quiet_week("square wave", square_wave(1));
}

#[test]
fn a_quantised_sensor_raises_nothing_in_a_week() {
    quiet_week("quantised", quantised(2));
}

#[test]
fn an_on_off_sensor_raises_nothing_in_a_week() {
    quiet_week("on/off", binary(3));
}

/// The fault starts on day 4 and lasts twenty minutes (less than the half hour after which
/// the detector accepts a lasting change as the new normal, so its end is a return to
/// normal, not a change of its own).
const FAULT_FROM: usize = 4 * 86_400;
const FAULT_TO: usize = FAULT_FROM + 1200;

fn one_alarm_at_onset(name: &str, signal: Signal, fault: impl FnMut(usize, f64) -> f64, within_s: usize, held: bool) {
    let scores = run(signal, FAULT_TO + 3600, fault);
    let raised: Vec<usize> = alarms(&scores).into_iter().filter(|t| *t >= WARM_S).collect();
    assert_eq!(raised.len(), 1, "{name}: alarms at {raised:?} (seconds)");
    let at = raised[0];
    assert!((FAULT_FROM..=FAULT_FROM + within_s).contains(&at), "{name}: alarm at {at}, fault from {FAULT_FROM}");
    if !held {
        return;
    }
    // The condition stays visible as a level while it lasts, beyond its one alarm.
    let held = scores[FAULT_FROM + within_s..FAULT_TO].iter().filter(|s| s.level >= ALARM).count();
    let span = FAULT_TO - FAULT_FROM - within_s;
    assert!(held * 10 >= span * 9, "{name}: the fault's level fell below the alarm after onset ({held} of {span})");
}

#[test]
fn a_flat_sensor_that_steps_raises_one_alarm_at_the_step() {
    let fault = |t: usize, v: f64| if (FAULT_FROM..FAULT_TO).contains(&t) { v + 1.5 } else { v };
    // A sensor that never moved has no resolution until its first step, which then sets
    // it: the step is the alarm, and the new level is one step away, not a condition.
    one_alarm_at_onset("flat + step", flat(), fault, 5, false);
}

#[test]
fn a_square_wave_that_stops_switching_raises_one_alarm() {
    // Stuck high for three hours: the batch cycle stops in a high phase.
    let stop = FAULT_FROM + 3 * 3600;
    let fault = |t: usize, v: f64| if (FAULT_FROM..stop).contains(&t) { 80.0 } else { v };
    let scores = run(square_wave(1), stop + 3600, fault);
    let raised: Vec<usize> = alarms(&scores).into_iter().filter(|t| *t >= WARM_S).collect();
    assert_eq!(raised.len(), 1, "alarms at {raised:?}");
    let at = raised[0];
    // A plateau normally lasts up to 8 minutes: the stop is clear within an hour and a half.
    assert!((FAULT_FROM..FAULT_FROM + 5400).contains(&at), "alarm at {at}, fault from {FAULT_FROM}");
    assert_eq!(scores[at].test, Test::Stuck, "{:?}", scores[at]);
}

#[test]
fn a_quantised_sensor_that_shifts_raises_one_alarm_at_the_shift() {
    let fault = |t: usize, v: f64| if (FAULT_FROM..FAULT_TO).contains(&t) { v + 2.0 } else { v };
    one_alarm_at_onset("quantised + shift", quantised(2), fault, 10, true);
}

#[test]
fn an_on_off_sensor_that_chatters_raises_one_alarm_at_the_onset() {
    // A failing contact: the state flips every second or two.
    let mut rng = SplitMix::new(9);
    let fault = move |t: usize, v: f64| {
        if (FAULT_FROM..FAULT_TO).contains(&t) { f64::from(u8::from(rng.chance(0.5))) } else { v }
    };
    let scores = run(binary(3), FAULT_TO + 3600, fault);
    let raised: Vec<usize> = alarms(&scores).into_iter().filter(|t| *t >= WARM_S).collect();
    assert_eq!(raised.len(), 1, "alarms at {raised:?}");
    // The state flips twice within seconds now and then by design: chatter is told from
    // such a burst after a minute or two of flipping.
    assert!((FAULT_FROM..FAULT_FROM + 120).contains(&raised[0]), "alarm at {}", raised[0]);
}

#[test]
fn a_level_shift_is_one_peak_not_a_plateau() {
    let mut rng = SplitMix::new(11);
    let noisy: Signal = Box::new(move |_| 70.0 + 0.5 * rng.normal());
    let fault = |t: usize, v: f64| if (FAULT_FROM..FAULT_TO).contains(&t) { v + 5.0 } else { v };
    let scores = run(noisy, FAULT_TO + 3600, fault);
    let raised: Vec<usize> = alarms(&scores).into_iter().filter(|t| *t >= WARM_S).collect();
    assert_eq!(raised.len(), 1, "alarms at {raised:?}");
    assert!((FAULT_FROM..FAULT_FROM + 10).contains(&raised[0]));
    let rows = scores[WARM_S..].iter().filter(|s| s.score >= ALARM).count();
    assert!(rows <= 5, "{rows} readings above the alarm threshold for one twenty-minute shift");
    // Its return to normal is not a new alarm either.
    assert!(scores[FAULT_TO..].iter().all(|s| s.score < ALARM));
}
