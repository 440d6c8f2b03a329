//! Behaviour of the streaming detector: given a learned sensor, when a fault happens, then
//! the right test fires; and calibration, adaptation, checkpoints, bad settings.

use detector::stats::SplitMix;
use detector::{Config, ConfigError, Detector, Score, SensorState, StreamingDetector, Test, ValueError};

const T0: i64 = 1_700_000_000_000;
const ALARM: f32 = 0.6;

/// A sensor that has learned one hour of `level ± noise` at 1 Hz.
fn learned(level: f64, noise: f64, seed: u64) -> (StreamingDetector, SplitMix, i64) {
    let mut d = StreamingDetector::new(Config::default()).expect("default config is valid");
    let mut rng = SplitMix::new(seed);
    let mut ts = T0;
    for _ in 0..3600 {
        d.next(ts, level + noise * rng.normal()).expect("finite");
        ts += 1000;
    }
    (d, rng, ts)
}

/// Feeds `n` readings made by `f(i, noise_sample)`; returns the scores.
fn feed(
    d: &mut StreamingDetector,
    rng: &mut SplitMix,
    ts: &mut i64,
    n: usize,
    mut f: impl FnMut(usize, f64) -> f64,
) -> Vec<Score> {
    (0..n)
        .map(|i| {
            let s = d.next(*ts, f(i, rng.normal())).expect("finite");
            *ts += 1000;
            s
        })
        .collect()
}

fn first_alarm(scores: &[Score]) -> Option<(usize, Test)> {
    scores.iter().position(|s| s.score >= ALARM).map(|i| (i, scores[i].test))
}

#[test]
fn given_a_quiet_sensor_when_one_reading_spikes_then_the_spike_test_fires_at_once() {
    let (mut d, mut rng, mut ts) = learned(70.0, 0.5, 1);
    let s = feed(&mut d, &mut rng, &mut ts, 1, |_, _| 70.0 + 8.0 * 0.5);
    assert_eq!(s[0].test, Test::Spike);
    assert!(s[0].score >= 0.75, "8-sigma spike scored {}", s[0].score);
    assert!(s[0].lower < 70.0 && 70.0 < s[0].upper);
    assert!((s[0].expected - 70.0).abs() < 0.3);
    let text = s[0].explain();
    assert!(text.contains("spike test"), "{text}");
}

#[test]
fn given_a_quiet_sensor_when_its_level_shifts_then_the_level_shift_test_fires_within_seconds() {
    let (mut d, mut rng, mut ts) = learned(70.0, 0.5, 2);
    let scores = feed(&mut d, &mut rng, &mut ts, 60, |_, e| 70.0 + 4.0 * 0.5 + 0.5 * e);
    let (at, test) = first_alarm(&scores).expect("a 4-sigma shift is flagged");
    assert!(at <= 10, "flagged after {at} s");
    assert_eq!(test, Test::LevelShift);
    // The explanation's expected value is the baseline before the shift.
    assert!((scores[at].expected - 70.0).abs() < 0.3, "expected {}", scores[at].expected);
}

#[test]
fn given_a_quiet_sensor_when_it_drifts_then_an_alarm_comes_before_the_drift_is_large() {
    let (mut d, mut rng, mut ts) = learned(70.0, 0.5, 3);
    // 8 sigma over 30 minutes.
    let slope = 8.0 * 0.5 / 1800.0;
    let scores = feed(&mut d, &mut rng, &mut ts, 1800, |i, e| 70.0 + slope * i as f64 + 0.5 * e);
    let (at, test) = first_alarm(&scores).expect("the drift is flagged");
    assert!(at < 1500, "flagged after {at} s");
    assert!(matches!(test, Test::Drift | Test::LevelShift), "{test:?}");
}

#[test]
fn given_a_noisy_sensor_when_its_value_freezes_then_the_stuck_test_fires() {
    let (mut d, mut rng, mut ts) = learned(70.0, 0.5, 4);
    let scores = feed(&mut d, &mut rng, &mut ts, 30, |_, _| 70.123);
    let (at, test) = first_alarm(&scores).expect("a frozen value is flagged");
    assert!(at <= 10, "flagged after {at} s");
    assert_eq!(test, Test::Stuck);
}

#[test]
fn given_a_sensor_that_normally_repeats_values_when_it_repeats_then_no_stuck_alarm() {
    let mut d = StreamingDetector::new(Config::default()).expect("valid");
    let mut rng = SplitMix::new(5);
    let mut ts = T0;
    let mut worst = 0.0f32;
    for i in 0..20_000 {
        // Coarse resolution: about half the readings repeat the previous one.
        let v = (70.0 + 0.3 * rng.normal()).round();
        let s = d.next(ts, v).expect("finite");
        if i > 3600 {
            worst = worst.max(s.score);
        }
        ts += 1000;
    }
    assert!(worst < ALARM, "quantised sensor alarmed with {worst}");
}

#[test]
fn given_a_quiet_sensor_when_its_noise_triples_then_an_alarm_follows() {
    let (mut d, mut rng, mut ts) = learned(70.0, 0.5, 6);
    let scores = feed(&mut d, &mut rng, &mut ts, 120, |_, e| 70.0 + 1.5 * e);
    let (at, _) = first_alarm(&scores).expect("a noise burst is flagged");
    assert!(at <= 30, "flagged after {at} s");
    assert!(scores.iter().any(|s| s.test == Test::Variance && s.score >= 0.3));
}

#[test]
fn given_a_sensor_reporting_each_second_when_it_goes_silent_then_it_is_overdue_within_ten_seconds() {
    let (d, _, ts) = learned(70.0, 0.5, 7);
    let last = ts - 1000;
    assert_eq!(d.overdue(last + 1000).test, Test::None);
    assert!(d.overdue(last + 1500).score < ALARM);
    let at = (1..60).find(|s| d.overdue(last + s * 1000).score >= ALARM).expect("silence is flagged");
    assert!(at <= 10, "overdue after {at} s");
    let s = d.overdue(last + 30_000);
    assert_eq!(s.test, Test::Dropout);
    assert_eq!(s.gap_ms, 30_000);
    assert!(s.explain().contains("no reading for 30.0 s"), "{}", s.explain());
}

#[test]
fn given_a_reading_after_a_gap_then_the_gap_itself_is_scored() {
    let (mut d, mut rng, ts) = learned(70.0, 0.5, 8);
    let s = d.next(ts + 60_000, 70.0 + 0.5 * rng.normal()).expect("finite");
    assert_eq!(s.test, Test::Dropout);
    assert!(s.score >= ALARM);
}

#[test]
fn given_a_lasting_new_level_then_the_detector_adapts_instead_of_alarming_forever() {
    let (mut d, mut rng, mut ts) = learned(70.0, 0.5, 9);
    let scores = feed(&mut d, &mut rng, &mut ts, 3 * 3600, |_, e| 80.0 + 0.5 * e);
    // One alarm at the onset; the condition stays visible as the level until accepted.
    assert!(scores[0].score >= ALARM);
    assert!(scores[5].level >= ALARM && scores[5].score < ALARM);
    let adapted = scores.iter().position(|s| s.adapted).expect("new level accepted");
    assert!(adapted <= 3600, "adapted after {adapted} readings");
    let late = &scores[scores.len() - 3600..];
    let worst = late.iter().map(|s| s.score).fold(0.0, f32::max);
    assert!(worst < ALARM, "still alarming ({worst}) an hour after adapting");
    assert!((late[late.len() - 1].expected - 80.0).abs() < 0.5);
}

#[test]
fn given_clean_noise_on_very_different_sensors_then_one_threshold_gives_the_same_false_alarm_rate() {
    // Scales from 1e-3 to 1e6, noise from 0.01 % to 10 % of the level, Gaussian and
    // heavy-tailed noise: the share of readings above a moderate threshold stays within a
    // small factor of the calibrated rate, and nothing reaches the alarm threshold.
    let threshold = 0.3f32; // p ≈ 1e-3 per reading before the multiple-test correction
    let mut rates = Vec::new();
    for (k, (level, noise, heavy)) in [
        (1e-3, 1e-4, false),
        (70.0, 0.5, false),
        (1e6, 100.0, false),
        (-40.0, 4.0, false),
        (5.0, 0.0005, false),
        (300.0, 3.0, true),
    ]
    .into_iter()
    .enumerate()
    {
        let mut d = StreamingDetector::new(Config::default()).expect("valid");
        let mut rng = SplitMix::new(100 + k as u64);
        let mut ts = T0;
        let (mut above, mut alarms, mut count) = (0u32, 0u32, 0u32);
        for i in 0..40_000 {
            let e = if heavy {
                // Laplace noise (exponential tails), unit variance.
                let sign = if rng.chance(0.5) { 1.0 } else { -1.0 };
                sign * rng.exponential(std::f64::consts::FRAC_1_SQRT_2)
            } else {
                rng.normal()
            };
            let v = f64::from((level + noise * e) as f32);
            let s = d.next(ts, v).expect("finite");
            ts += 1000;
            if i >= 4000 {
                count += 1;
                above += u32::from(s.score >= threshold);
                alarms += u32::from(s.score >= ALARM);
            }
        }
        assert_eq!(alarms, 0, "sensor {k} alarmed on clean noise");
        rates.push(f64::from(above) / f64::from(count));
    }
    let nominal = 10f64.powf(-f64::from(threshold) * 10.0);
    for (k, r) in rates.iter().enumerate() {
        assert!(*r < 8.0 * nominal, "sensor {k}: rate {r} vs nominal {nominal}");
    }
}

#[test]
fn given_a_checkpoint_when_restored_then_scoring_continues_identically() {
    let (mut a, mut rng, mut ts) = learned(70.0, 0.5, 11);
    let bytes = a.state().to_bytes();
    assert!(bytes.len() <= SensorState::MEMORY_BYTES + 16, "checkpoint is {} bytes", bytes.len());
    let state = SensorState::from_bytes(&bytes).expect("decodes");
    let mut b = StreamingDetector::with_state(Config::default(), state).expect("valid");
    for i in 0..500 {
        let v = 70.0 + 0.5 * rng.normal() + if i == 250 { 10.0 } else { 0.0 };
        assert_eq!(a.next(ts, v).expect("finite"), b.next(ts, v).expect("finite"));
        ts += 1000;
    }
    assert_eq!(a.state(), b.state());
}

#[test]
fn given_a_corrupt_checkpoint_then_restoring_fails_cleanly() {
    assert!(SensorState::from_bytes(&[]).is_err());
    assert!(SensorState::from_bytes(&[0xff; 7]).is_err());
    let (a, _, _) = learned(70.0, 0.5, 12);
    let mut bytes = a.state().to_bytes();
    bytes.truncate(bytes.len() / 2);
    assert!(SensorState::from_bytes(&bytes).is_err());
}

/// The state must stay small: 50,000 sensors share one plant node (the budget is 4 KiB a
/// sensor, machine model included; the reading's own state is a small part of it).
const _: () = assert!(SensorState::MEMORY_BYTES <= 320);

#[test]
fn a_checkpoint_is_about_the_size_of_the_state() {
    let (d, _, _) = learned(70.0, 0.5, 17);
    let bytes = d.state().to_bytes();
    assert!(bytes.len() <= 320, "checkpoint is {} bytes", bytes.len());
}

#[test]
fn bad_settings_are_rejected() {
    let bad: Vec<(Config, &str)> = vec![
        (Config { fast_half_life_s: 0.0, ..Config::default() }, "fast_half_life_s"),
        (Config { scale_half_life_s: f32::NAN, ..Config::default() }, "scale_half_life_s"),
        (Config { warmup_s: 1.0, ..Config::default() }, "warmup_s"),
        (Config { learn_gate_score: 1.5, ..Config::default() }, "learn_gate_score"),
        (Config { band_score: 0.0, ..Config::default() }, "band_score"),
        (Config { shift_half_life_s: 1000.0, ..Config::default() }, "shift_half_life_s"),
        (Config { min_shift_sigmas: -1.0, ..Config::default() }, "min_shift_sigmas"),
        (Config { baseline_half_life_s: f32::INFINITY, ..Config::default() }, "baseline_half_life_s"),
        (Config { rare_half_life_s: -1.0, ..Config::default() }, "rare_half_life_s"),
    ];
    for (cfg, field) in bad {
        let err = Detector::new(cfg).expect_err(field);
        assert!(err.to_string().contains(field), "{err}");
    }
    let mut none = Config::default();
    none.enabled.spike = false;
    none.enabled.level_shift = false;
    none.enabled.drift = false;
    none.enabled.variance = false;
    none.enabled.stuck = false;
    none.enabled.chatter = false;
    none.enabled.dropout = false;
    assert_eq!(Detector::new(none).expect_err("no tests"), ConfigError::NoTests);
}

#[test]
fn non_finite_values_are_refused_and_not_learned() {
    let (mut d, _, ts) = learned(70.0, 0.5, 13);
    let before = d.state().clone();
    assert_eq!(d.next(ts, f64::NAN), Err(ValueError::NonFinite));
    assert_eq!(d.next(ts, f64::INFINITY), Err(ValueError::NonFinite));
    assert_eq!(d.state(), &before);
}

#[test]
fn timestamps_that_repeat_or_go_backwards_are_scored_without_trouble() {
    let mut d = StreamingDetector::new(Config::default()).expect("valid");
    let mut rng = SplitMix::new(14);
    for i in 0..2000i64 {
        let ts = T0 + (i % 7) * 1000 - (i % 3) * 5000;
        let s = d.next(ts, 10.0 + rng.normal()).expect("finite");
        assert!(s.score.is_finite() && (0.0..=1.0).contains(&s.score));
    }
    let s = d.next(i64::MIN, 10.0).expect("finite");
    assert!((0.0..=1.0).contains(&s.score));
    let s = d.next(i64::MAX, 10.0).expect("finite");
    assert!((0.0..=1.0).contains(&s.score));
    assert!((0.0..=1.0).contains(&d.overdue(i64::MIN).score));
}

#[test]
fn extreme_values_give_finite_scores() {
    let (mut d, _, ts) = learned(70.0, 0.5, 15);
    for v in [1e300, -1e300, 0.0, f64::MIN_POSITIVE, 70.0] {
        let s = d.next(ts, v).expect("finite");
        assert!(s.score.is_finite() && (0.0..=1.0).contains(&s.score), "{v}: {s:?}");
        assert!(s.expected.is_finite() && s.lower.is_finite() && s.upper.is_finite(), "{v}: {s:?}");
    }
}

#[test]
fn reset_forgets_everything() {
    let (mut d, _, _) = learned(70.0, 0.5, 16);
    d.reset();
    assert_eq!(d.state(), &SensorState::default());
    assert_eq!(d.state().last_ts_ms(), None);
}
