//! Machine-level episodes: given scores of a machine's sensors, when they cross the
//! threshold, then one episode opens, grows, and resolves.

use detector::{EpisodeConfig, EpisodeConfigError, EpisodeEvent, EpisodeTracker, Score, Severity, Test};

const T0: i64 = 1_700_000_000_000;

fn score(ts_ms: i64, value: f64, score: f32, test: Test) -> Score {
    Score {
        ts_ms,
        value,
        expected: 70.0,
        lower: 67.0,
        upper: 73.0,
        score,
        level: score,
        test,
        gap_ms: 1000,
        adapted: false,
        clamped: false,
        // A dropout here stands for the monitor's overdue check of a silent sensor.
        overdue: test == Test::Dropout,
    }
}

fn tracker() -> EpisodeTracker {
    EpisodeTracker::new("P1-L03-M042", EpisodeConfig::default()).expect("default config is valid")
}

#[test]
fn given_a_quiet_machine_when_one_reading_is_extreme_then_an_episode_opens_at_once() {
    let mut t = tracker();
    let ev = t.observe(7, &score(T0, 91.3, 0.95, Test::Spike));
    let [EpisodeEvent::Detected(ep)] = ev.as_slice() else { panic!("expected a detection, got {ev:?}") };
    assert_eq!(ep.id, format!("P1-L03-M042-{T0}"));
    assert_eq!(ep.start_ms, T0);
    assert_eq!(ep.sensors.len(), 1);
    let e = ep.primary().expect("evidence");
    assert_eq!((e.sensor, e.observed, e.expected, e.test), (7, 91.3, 70.0, Test::Spike));
    assert_eq!(ep.severity, Severity::Major);
}

#[test]
fn given_a_quiet_machine_when_one_reading_is_merely_high_then_nothing_opens() {
    let mut t = tracker();
    assert!(t.observe(7, &score(T0, 80.0, 0.65, Test::Spike)).is_empty());
    assert!(t.observe(7, &score(T0 + 30_000, 80.0, 0.65, Test::Spike)).is_empty());
    assert!(t.open_episode().is_none());
}

#[test]
fn given_repeated_high_readings_within_the_window_then_the_episode_opens_from_the_first() {
    let mut t = tracker();
    assert!(t.observe(3, &score(T0, 80.0, 0.65, Test::LevelShift)).is_empty());
    assert!(t.observe(3, &score(T0 + 1000, 80.0, 0.66, Test::LevelShift)).is_empty());
    let ev = t.observe(3, &score(T0 + 2000, 80.0, 0.7, Test::LevelShift));
    let [EpisodeEvent::Detected(ep)] = ev.as_slice() else { panic!("{ev:?}") };
    assert_eq!(ep.start_ms, T0);
    assert_eq!(ep.sensors[0].score, 0.7);
}

#[test]
fn given_three_sensors_moving_together_moderately_then_a_machine_episode_opens() {
    let mut t = tracker();
    assert!(t.observe(1, &score(T0, 75.0, 0.52, Test::LevelShift)).is_empty());
    assert!(t.observe(2, &score(T0 + 500, 75.0, 0.55, Test::LevelShift)).is_empty());
    let ev = t.observe(4, &score(T0 + 900, 75.0, 0.53, Test::LevelShift));
    let [EpisodeEvent::Detected(ep)] = ev.as_slice() else { panic!("{ev:?}") };
    assert_eq!(ep.sensors.len(), 3);
    assert_eq!(ep.severity, Severity::Critical);
}

#[test]
fn given_an_open_episode_when_another_sensor_joins_then_it_is_updated_and_lists_both() {
    let mut t = tracker();
    t.observe(7, &score(T0, 91.3, 0.95, Test::Spike));
    // A related sensor below the threshold is listed without an event.
    assert!(t.observe(9, &score(T0 + 1000, 72.0, 0.35, Test::Drift)).is_empty());
    let ev = t.observe(8, &score(T0 + 2000, 40.0, 0.7, Test::LevelShift));
    let [EpisodeEvent::Updated(ep)] = ev.as_slice() else { panic!("{ev:?}") };
    let sensors: Vec<u32> = ep.sensors.iter().map(|e| e.sensor).collect();
    assert_eq!(sensors, vec![7, 8]);
    assert_eq!(ep.related.iter().map(|e| e.sensor).collect::<Vec<_>>(), vec![9]);
    assert_eq!(ep.id, format!("P1-L03-M042-{T0}"));
    // The same sensor again, weaker: no event.
    assert!(t.observe(8, &score(T0 + 3000, 41.0, 0.65, Test::LevelShift)).is_empty());
}

#[test]
fn given_an_open_episode_when_a_quiet_sensor_crosses_again_by_another_test_then_it_is_a_new_finding() {
    let mut t = tracker();
    t.observe(7, &score(T0, 91.3, 0.95, Test::Spike));
    // Sensor 8 keeps the episode open.
    let keep_open = |t: &mut EpisodeTracker, s: i64| t.observe(8, &score(T0 + s * 1000, 40.0, 0.7, Test::LevelShift));
    assert!(matches!(keep_open(&mut t, 60).as_slice(), [EpisodeEvent::Updated(_)]));
    // Another test soon after: more of the same incident, no event.
    assert!(t.observe(7, &score(T0 + 100_000, 70.0, 0.8, Test::Stuck)).is_empty());
    for s in [120, 180, 240, 300] {
        assert!(keep_open(&mut t, s).is_empty());
    }
    // The same test after a quiet spell: the evidence keeps its strongest reading.
    assert!(t.observe(7, &score(T0 + 230_000, 90.0, 0.9, Test::Spike)).is_empty());
    let ep = t.open_episode().expect("open");
    let e = ep.sensors.iter().find(|e| e.sensor == 7).expect("sensor 7");
    assert_eq!((e.test, e.score, e.first_ms, e.last_ms), (Test::Spike, 0.95, T0, T0 + 230_000));
    // Another test after the sensor has been quiet for the quiet period: a new finding.
    let ev = t.observe(7, &score(T0 + 350_000, 70.0, 0.8, Test::Stuck));
    let [EpisodeEvent::Updated(ep)] = ev.as_slice() else { panic!("expected an update, got {ev:?}") };
    assert_eq!(ep.id, format!("P1-L03-M042-{T0}"));
    let e = ep.sensors.iter().find(|e| e.sensor == 7).expect("sensor 7");
    assert_eq!((e.test, e.score, e.first_ms, e.observed), (Test::Stuck, 0.8, T0 + 350_000, 70.0));
    // ... announced once.
    assert!(t.observe(7, &score(T0 + 351_000, 70.0, 0.85, Test::Stuck)).is_empty());
}

#[test]
fn given_an_open_episode_when_the_machine_is_quiet_long_enough_then_it_resolves() {
    let mut t = tracker();
    t.observe(7, &score(T0, 91.3, 0.95, Test::Spike));
    assert!(t.tick(T0 + 60_000).is_none());
    let Some(EpisodeEvent::Resolved { episode, resolved_ms }) = t.tick(T0 + 120_000) else {
        panic!("expected a resolution")
    };
    assert_eq!(episode.id, format!("P1-L03-M042-{T0}"));
    assert_eq!(resolved_ms, T0 + 120_000);
    assert!(t.open_episode().is_none());
    // A later alarm is a new episode with a new id.
    let ev = t.observe(7, &score(T0 + 500_000, 91.3, 0.95, Test::Spike));
    let [EpisodeEvent::Detected(ep)] = ev.as_slice() else { panic!("{ev:?}") };
    assert_eq!(ep.id, format!("P1-L03-M042-{}", T0 + 500_000));
}

#[test]
fn a_reading_after_the_quiet_period_resolves_then_opens_in_one_call() {
    let mut t = tracker();
    t.observe(7, &score(T0, 91.3, 0.95, Test::Spike));
    let ev = t.observe(7, &score(T0 + 300_000, 91.3, 0.95, Test::Spike));
    assert!(matches!(ev.as_slice(), [EpisodeEvent::Resolved { .. }, EpisodeEvent::Detected(_)]), "{ev:?}");
}

#[test]
fn tracker_state_round_trips_through_serde_and_continues_identically() {
    let mut a = tracker();
    a.observe(7, &score(T0, 91.3, 0.95, Test::Spike));
    a.observe(3, &score(T0 + 100, 80.0, 0.65, Test::LevelShift));
    let json = serde_json::to_string(&a).expect("serializes");
    let mut b: EpisodeTracker = serde_json::from_str(&json).expect("deserializes");
    assert_eq!(a, b);
    let s = score(T0 + 2000, 50.0, 0.9, Test::Stuck);
    assert_eq!(a.observe(5, &s), b.observe(5, &s));
    assert_eq!(a.tick(T0 + 200_000), b.tick(T0 + 200_000));
}

#[test]
fn bad_episode_settings_are_rejected() {
    let bad = [
        EpisodeConfig { threshold: 0.0, ..EpisodeConfig::default() },
        EpisodeConfig { threshold: f32::NAN, ..EpisodeConfig::default() },
        EpisodeConfig { extreme_threshold: 0.5, ..EpisodeConfig::default() },
        EpisodeConfig { quiet_ms: 0, ..EpisodeConfig::default() },
        EpisodeConfig { confirm_readings: 0, ..EpisodeConfig::default() },
        EpisodeConfig { joint_sensors: 1, ..EpisodeConfig::default() },
    ];
    for cfg in bad {
        assert!(EpisodeTracker::new("M", cfg.clone()).is_err(), "{cfg:?}");
    }
    assert_eq!(
        EpisodeConfig { related_threshold: 0.9, ..EpisodeConfig::default() }.validate(),
        Err(EpisodeConfigError::Order)
    );
}

#[test]
fn many_sensors_are_bounded_in_the_episode() {
    let mut t = EpisodeTracker::new("M", EpisodeConfig { max_sensors: 4, ..EpisodeConfig::default() }).expect("valid");
    for s in 0..50u32 {
        t.observe(s, &score(T0 + i64::from(s), 90.0, 0.7 + s as f32 / 1000.0, Test::Spike));
    }
    let ep = t.open_episode().expect("open");
    assert_eq!(ep.sensors.len(), 4);
    assert_eq!(ep.sensors[0].sensor, 49, "strongest first");
}
