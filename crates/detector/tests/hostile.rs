//! Whatever a sensor sends, the detector's state stays finite and its checkpoint loads:
//! huge, tiny, alternating and non-finite values, during warm-up and after, for long runs,
//! through the per-sensor detector, the machine model and the episode tracker.

use detector::machine::{MachineModel, MachineModelConfig};
use detector::{Config, Detector, EpisodeConfig, EpisodeTracker, SensorState, StreamingDetector, Test, ValueError};
use proptest::prelude::*;

const T0: i64 = 1_700_000_000_000;

/// Values a faulty or hostile device can send, mixed with ordinary ones.
fn hostile_value() -> impl Strategy<Value = f64> {
    prop_oneof![
        3 => -1e3..1e3f64,
        1 => Just(1e300),
        1 => Just(-1e300),
        1 => Just(f64::MAX),
        1 => Just(f64::MIN),
        1 => Just(f64::MIN_POSITIVE),
        1 => Just(4.9e-324),
        1 => Just(-4.9e-324),
        1 => Just(0.0),
        1 => Just(-0.0),
        1 => Just(f64::NAN),
        1 => Just(f64::INFINITY),
        1 => Just(f64::NEG_INFINITY),
        1 => Just(1e15),
        1 => Just(3.0e38),
        1 => any::<f64>(),
    ]
}

/// Timestamps mostly a second apart, sometimes repeated, backwards or far away.
fn step_ms() -> impl Strategy<Value = i64> {
    prop_oneof![6 => Just(1000i64), 1 => Just(0i64), 1 => -5_000..5_000i64, 1 => any::<i64>()]
}

fn configs() -> Vec<Config> {
    vec![Config::default(), Config::beside_machine_model(), MachineModelConfig::default().residual]
}

/// Feeds the values to each configuration and checks the state after every reading.
fn check_detector(values: &[(i64, f64)]) {
    for cfg in configs() {
        let detector = Detector::new(cfg).expect("valid settings");
        let mut state = SensorState::default();
        let mut ts = T0;
        for (i, &(step, v)) in values.iter().enumerate() {
            ts = ts.saturating_add(step);
            match detector.next(&mut state, ts, v) {
                Ok(s) => {
                    assert!(s.score.is_finite() && (0.0..=1.0).contains(&s.score), "reading {i} ({v}): {s:?}");
                    for x in [s.expected, s.lower, s.upper] {
                        assert!(x.is_finite(), "reading {i} ({v}): {s:?}");
                    }
                    assert_eq!(s.clamped, v.abs() > detector::MAX_READING_MAGNITUDE, "reading {i} ({v})");
                }
                Err(ValueError::NonFinite) => assert!(!v.is_finite(), "reading {i}: {v} refused"),
            }
            assert!(state.is_finite(), "reading {i} ({v}) left a non-finite state: {state:?}");
            let back = SensorState::from_bytes(&state.to_bytes()).expect("the checkpoint loads");
            assert_eq!(back, state);
            let overdue = detector.overdue(&state, ts.saturating_add(60_000));
            assert!(overdue.score.is_finite() && overdue.expected.is_finite() && overdue.lower.is_finite());
        }
    }
}

/// Feeds the values as one sensor of a three-sensor machine (the others ordinary).
fn check_machine(values: &[(i64, f64)]) {
    let cfg = EpisodeConfig::default();
    let mut tracker = EpisodeTracker::new("P1-L01-M001", cfg.clone()).expect("valid settings");
    let mut model = MachineModel::default();
    let detector = Detector::new(Config::beside_machine_model()).expect("valid settings");
    let mut states = [SensorState::default(), SensorState::default(), SensorState::default()];
    let mut out = Vec::new();
    let mut ts = T0;
    for (i, &(step, v)) in values.iter().enumerate() {
        ts = ts.saturating_add(step);
        for (k, state) in states.iter_mut().enumerate() {
            let value = if k == 0 { v } else { 50.0 + k as f64 + (i % 7) as f64 * 0.1 };
            model.observe(k as u32, ts, value, &cfg.machine, &mut out).expect("valid settings");
            if let Ok(score) = detector.next(state, ts, value) {
                tracker.observe(k as u32, &score);
            }
        }
        for r in out.drain(..) {
            assert!(r.score.score.is_finite() && r.score.expected.is_finite(), "reading {i} ({v}): {r:?}");
            if r.sensor == 0 && r.score.ts_ms == ts {
                // A residual reports the reading as sent, and whether it was judged at the bound.
                assert_eq!(r.score.value.to_bits(), v.to_bits(), "reading {i}: {r:?}");
                assert_eq!(r.score.clamped, v.abs() > detector::MAX_READING_MAGNITUDE, "reading {i}: {r:?}");
            }
        }
        assert!(model.is_finite(), "reading {i} ({v}) left the machine model non-finite");
        assert!(tracker.is_finite(), "reading {i} ({v}) left the episode tracker non-finite");
    }
    let bytes = postcard::to_allocvec(&tracker).expect("serializes");
    let back: EpisodeTracker = postcard::from_bytes(&bytes).expect("the tracker's checkpoint loads");
    assert!(back.is_finite());
    let bytes = postcard::to_allocvec(&model).expect("serializes");
    let back: MachineModel = postcard::from_bytes(&bytes).expect("the model's checkpoint loads");
    assert!(back.is_finite());
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn any_sequence_of_values_leaves_a_finite_loadable_state(
        values in prop::collection::vec((step_ms(), hostile_value()), 1..400)
    ) {
        check_detector(&values);
    }

    #[test]
    fn any_sequence_leaves_the_machine_model_and_tracker_finite(
        values in prop::collection::vec((Just(1000i64), hostile_value()), 1..900)
    ) {
        check_machine(&values);
    }
}

/// A learned sensor, then extremes: alternating, one-sided, long enough for the detector
/// to accept them as normal, then ordinary readings again.
#[test]
fn long_runs_of_extremes_after_warm_up_keep_the_state_finite() {
    let mut values: Vec<(i64, f64)> = (0..3000).map(|i| (1000, 20.0 + (i % 13) as f64 * 0.05)).collect();
    values.extend((0..6000).map(|i| (1000, if i % 2 == 0 { 1e300 } else { -1e300 })));
    values.extend((0..4000).map(|_| (1000, f64::MAX)));
    values.extend((0..4000).map(|i| (1000, if i % 3 == 0 { f64::MIN } else { 4.9e-324 })));
    values.extend((0..3000).map(|i| (1000, 20.0 + (i % 13) as f64 * 0.05)));
    check_detector(&values);
    check_machine(&values[..8000]);
}

/// Extremes from the very first reading, while everything is still being learned.
#[test]
fn extremes_during_warm_up_keep_the_state_finite() {
    let values: Vec<(i64, f64)> =
        (0..2000).map(|i| (1000, [1e300, -1e300, f64::MAX, 1e-300, 0.0, 7.0][i % 6])).collect();
    check_detector(&values);
    check_machine(&values);
}

#[test]
fn a_clamped_reading_says_so_in_its_explanation() {
    let mut d = StreamingDetector::new(Config::default()).expect("valid settings");
    let mut ts = T0;
    for i in 0..600 {
        d.next(ts, 10.0 + (i % 5) as f64 * 0.1).expect("finite");
        ts += 1000;
    }
    let s = d.next(ts, 1e300).expect("finite");
    assert!(s.clamped);
    assert_eq!(s.value, 1e300, "the observed value is reported as sent");
    let text = s.explain();
    assert!(text.contains("beyond"), "{text}");
    assert!(s.score > 0.9, "a reading of 1e300 on a sensor near 10 is surprising: {}", s.score);
    assert!(!d.next(ts + 1000, 10.2).expect("finite").clamped);
}

/// However the detector is set (all tests, or only what a machine model leaves to it),
/// and however new or perfectly regular the sensor, a reading beyond the bound is no
/// measurement: it scores as abnormal as a reading can, every time, with finite numbers.
#[test]
fn a_reading_beyond_the_bound_scores_one_whatever_the_tests_and_the_warm_up() {
    for config in [Config::default(), Config::beside_machine_model()] {
        let mut d = StreamingDetector::new(config).expect("valid settings");
        let first = d.next(T0, 1e300).expect("finite");
        assert_eq!((first.score, first.level, first.clamped), (1.0, 1.0, true), "{first:?}");
        let mut ts = T0;
        for i in 0..700 {
            ts += 1000;
            d.next(ts, 40.0 + ((i * 13) % 10) as f64 / 20.0).expect("finite");
        }
        for _ in 0..200 {
            ts += 1000;
            let s = d.next(ts, 1e300).expect("finite");
            assert_eq!((s.score, s.level), (1.0, 1.0), "{s:?}");
            assert_ne!(s.test, Test::None, "{s:?}");
            for x in [s.expected, s.lower, s.upper] {
                assert!(x.is_finite(), "{s:?}");
            }
            assert!(s.explain().contains("beyond"), "{}", s.explain());
        }
    }
}
