//! A sensor that spikes by design (a press frame's vibration, up to ten noise units at
//! every impact) still shows a fault's far larger spike.

use detector::stats::SplitMix;
use detector::{Config, Detector, SensorState, Test};

/// Readings of a vibration with a spike of 5 to 10 noise units one reading in 240.
fn spiky(rng: &mut SplitMix) -> f64 {
    let spike = if rng.range(0.0, 1.0) < 1.0 / 240.0 {
        rng.range(5.0, 10.0) * if rng.range(0.0, 1.0) < 0.5 { -1.0 } else { 1.0 }
    } else {
        0.0
    };
    3.0 + 0.15 * (rng.normal() + spike)
}

#[test]
fn a_fault_spike_far_beyond_a_spiky_sensors_own_spikes_opens_an_episode() {
    let detector = Detector::new(Config::default()).expect("valid settings");
    let mut state = SensorState::default();
    let mut rng = SplitMix::new(5);
    let t0 = 1_772_409_600_000i64;
    let mut normal_peak = 0.0f32;
    for t in 0..20 * 3600 {
        let s = detector.next(&mut state, t0 + t * 1000, spiky(&mut rng)).expect("finite");
        if t > 3600 {
            normal_peak = normal_peak.max(s.score);
        }
    }
    // 25 noise units, two and a half times the sensor's own largest spikes: one reading
    // must reach the 0.75 that opens an episode on its own.
    let t = 20 * 3600;
    let s = detector.next(&mut state, t0 + t * 1000, 3.0 + 0.15 * 25.0).expect("finite");
    assert_eq!(s.test, Test::Spike);
    assert!(s.level >= 0.75, "the fault's spike scored {} (normal spikes at most {normal_peak})", s.level);
    // Its own spikes stay below what opens an episode on one reading.
    assert!(normal_peak < 0.75, "the sensor's own spikes scored up to {normal_peak}");
}

#[test]
fn a_heavy_tailed_sensors_new_largest_readings_are_no_alarm() {
    // Laplace noise has no largest excursion: every day brings a new one, which the tail
    // extrapolated through the calibration judges, not a Gaussian on top of the last one.
    let detector = Detector::new(Config::default()).expect("valid settings");
    let mut state = SensorState::default();
    let mut rng = SplitMix::new(17);
    let t0 = 1_772_409_600_000i64;
    let mut alarms = Vec::new();
    for t in 0..72 * 3600 {
        let u = rng.range(1e-12, 1.0);
        let laplace = -u.ln() * if rng.range(0.0, 1.0) < 0.5 { -1.0 } else { 1.0 } / std::f64::consts::SQRT_2;
        let s = detector.next(&mut state, t0 + t * 1000, 1.5 + 0.06 * laplace).expect("finite");
        // Well below the 0.75 that opens an episode on one reading.
        if t > 3600 && s.level >= 0.5 {
            alarms.push((t, s.level));
        }
    }
    assert!(alarms.is_empty(), "readings scoring half an alarm or more: {alarms:?}");
}
