//! Each fault kind changes the signal exactly as its ground-truth record says, and nothing else.
// Test helpers unwrap freely: a failure is the test failing.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use layout::Layout;
use simulator::{FactoryEvent, FaultKind, FaultRecord, FaultShape, Step};
use std::sync::OnceLock;

const STEPS: usize = 3_600;
const SEED: u64 = 11;

/// The readings of one sensor inside one fault window: (timestamp, clean, faulted).
type Window = Vec<(i64, Option<f64>, Option<f64>)>;

fn layout() -> &'static Layout {
    static LAYOUT: OnceLock<Layout> = OnceLock::new();
    LAYOUT.get_or_init(|| small_layout(1, 200, 2))
}

fn clean_grid() -> &'static Vec<Vec<Option<f64>>> {
    static GRID: OnceLock<Vec<Vec<Option<f64>>>> = OnceLock::new();
    GRID.get_or_init(|| grid(layout(), &run(layout(), &clean(), SEED, STEPS)))
}

/// Whether `faulted` is `clean + delta` up to rounding: both readings went through f32,
/// so allow a few f32 roundings of the largest term.
fn shifted(faulted: f64, clean: f64, delta: f64) -> bool {
    (faulted - (clean + delta)).abs() <= 4e-7 * (faulted.abs() + clean.abs() + delta.abs()) + 1e-9
}

/// Runs with only `kind` injected, checks that readings outside every fault window equal
/// the clean run's, and hands each (fault, sensor, window) to `check`. Returns the faults.
fn check_kind(kind: FaultKind, rate: f64, check: impl Fn(&FaultRecord, usize, &Window)) -> Vec<FaultRecord> {
    let layout = layout();
    let steps: Vec<Step> = run(layout, &only(kind, rate), SEED, STEPS);
    let faulted = grid(layout, &steps);
    let clean = clean_grid();
    let faults: Vec<FaultRecord> = steps
        .iter()
        .flat_map(|s| &s.events)
        .filter_map(|e| match e {
            FactoryEvent::FaultStarted(record) => Some(record.clone()),
            _ => None,
        })
        .collect();
    assert!(faults.len() >= 3, "only {} {kind:?} faults in an hour", faults.len());
    let mut covered = vec![vec![false; layout.sensor_count()]; STEPS];
    for fault in &faults {
        assert_eq!(fault.kind(), kind);
        assert_eq!(fault.plant, "P1");
        assert!(fault.end_ms > fault.start_ms);
        for (i, sensor) in fault.sensors.iter().enumerate() {
            assert!(sensor.name.starts_with(&fault.machine), "{} not on {}", sensor.name, fault.machine);
            assert_eq!(layout.sensor_id(&sensor.name), Some(sensor.id));
            let pos = layout.sensor_index(sensor.id).unwrap();
            let mut window = Window::new();
            for (k, step) in steps.iter().enumerate() {
                if fault.covers(step.ts_ms) {
                    covered[k][pos] = true;
                    window.push((step.ts_ms, clean[k][pos], faulted[k][pos]));
                }
            }
            assert!(!window.is_empty(), "fault {} covers no reading", fault.fault);
            check(fault, i, &window);
        }
    }
    for (k, row) in faulted.iter().enumerate() {
        for (pos, value) in row.iter().enumerate() {
            if !covered[k][pos] {
                assert_eq!(*value, clean[k][pos], "step {k}, sensor {} changed outside any fault", pos);
            }
        }
    }
    check_fault_ends(&steps, &faults);
    faults
}

/// Every fault that ends within the run gets a `fault_ended` at the first step at or after its end.
fn check_fault_ends(steps: &[Step], faults: &[FaultRecord]) {
    let last = steps.last().unwrap().ts_ms;
    for fault in faults {
        let ended: Vec<i64> = steps
            .iter()
            .flat_map(|s| &s.events)
            .filter_map(|e| match e {
                FactoryEvent::FaultEnded { fault: id, ts_ms, .. } if *id == fault.fault => Some(*ts_ms),
                _ => None,
            })
            .collect();
        let expected = steps.iter().map(|s| s.ts_ms).find(|&ts| ts >= fault.end_ms);
        match expected {
            Some(ts) if ts <= last => assert_eq!(ended, [ts], "end of fault {}", fault.fault),
            _ => assert!(ended.is_empty()),
        }
    }
}

fn delta_of(fault: &FaultRecord) -> f64 {
    match fault.shape {
        FaultShape::Spike { delta } | FaultShape::LevelShift { delta } => delta,
        ref other => panic!("no delta in {other:?}"),
    }
}

#[test]
fn a_spike_adds_its_delta_to_one_to_three_readings() {
    check_kind(FaultKind::Spike, 0.05, |fault, _, window| {
        assert!((1..=3).contains(&window.len()), "spike of {} readings", window.len());
        for &(ts, clean, faulted) in window {
            let (clean, faulted) = (clean.unwrap(), faulted.unwrap());
            assert!(shifted(faulted, clean, delta_of(fault)), "at {ts}: {clean} + {} != {faulted}", delta_of(fault));
        }
    });
}

#[test]
fn a_level_shift_moves_the_level_by_its_delta_for_its_whole_window() {
    let faults = check_kind(FaultKind::LevelShift, 0.05, |fault, _, window| {
        for &(_, clean, faulted) in window {
            assert!(shifted(faulted.unwrap(), clean.unwrap(), delta_of(fault)));
        }
        let n = window.len() as f64;
        let mean = |values: Vec<f64>| values.iter().sum::<f64>() / n;
        let moved =
            mean(window.iter().map(|w| w.2.unwrap()).collect()) - mean(window.iter().map(|w| w.1.unwrap()).collect());
        assert!((moved - delta_of(fault)).abs() < 1e-3 * delta_of(fault).abs(), "mean moved {moved}");
    });
    assert!(
        faults.iter().any(|f| delta_of(f) > 0.0) && faults.iter().any(|f| delta_of(f) < 0.0),
        "shifts go both ways"
    );
}

#[test]
fn a_drift_ramps_linearly_to_its_final_delta() {
    check_kind(FaultKind::Drift, 0.05, |fault, _, window| {
        let FaultShape::Drift { delta_at_end } = fault.shape else { panic!("not a drift") };
        for &(ts, clean, faulted) in window {
            let share = (ts - fault.start_ms) as f64 / (fault.end_ms - fault.start_ms) as f64;
            assert!(shifted(faulted.unwrap(), clean.unwrap(), delta_at_end * share));
        }
    });
}

#[test]
fn a_stuck_sensor_repeats_its_first_reading() {
    check_kind(FaultKind::Stuck, 0.05, |fault, _, window| {
        let FaultShape::Stuck { value } = fault.shape else { panic!("not stuck") };
        assert_eq!(window[0].1, Some(value), "the stuck value is the healthy reading at the start");
        assert!(window.iter().all(|w| w.2 == Some(value)));
        if window.len() > 5 {
            assert!(window.iter().any(|w| w.1 != Some(value)), "the healthy signal would have moved");
        }
    });
}

#[test]
fn a_noise_burst_replaces_the_noise_with_a_larger_one() {
    check_kind(FaultKind::NoiseBurst, 0.05, |fault, _, window| {
        let FaultShape::NoiseBurst { noise_sd } = fault.shape else { panic!("not a noise burst") };
        // faulted - clean = (burst sd - own sd) · z, and the burst is at least 4 times the own noise.
        let diffs: Vec<f64> = window.iter().map(|w| w.2.unwrap() - w.1.unwrap()).collect();
        let n = diffs.len() as f64;
        let mean = diffs.iter().sum::<f64>() / n;
        let sd = (diffs.iter().map(|d| (d - mean).powi(2)).sum::<f64>() / n).sqrt();
        if diffs.len() >= 50 {
            assert!(sd > 0.5 * noise_sd && sd < 1.3 * noise_sd, "sd {sd} for a burst of {noise_sd}");
            assert!(mean.abs() < 5.0 * noise_sd / n.sqrt(), "a burst moves no level: mean {mean}");
        }
    });
}

#[test]
fn a_dropout_sends_nothing() {
    check_kind(FaultKind::Dropout, 0.05, |_, _, window| {
        assert!(window.iter().all(|w| w.2.is_none() && w.1.is_some()));
    });
}

#[test]
fn a_machine_fault_moves_several_sensors_of_one_machine_together() {
    let faults = check_kind(FaultKind::Machine, 0.6, |fault, i, window| {
        let FaultShape::Machine { ref deltas, ramp_ms } = fault.shape else { panic!("not a machine fault") };
        for &(ts, clean, faulted) in window {
            let share = ((ts - fault.start_ms) as f64 / ramp_ms as f64).min(1.0);
            assert!(shifted(faulted.unwrap(), clean.unwrap(), deltas[i] * share));
        }
    });
    for fault in &faults {
        let FaultShape::Machine { ref deltas, .. } = fault.shape else { unreachable!() };
        assert!((2..=5).contains(&fault.sensors.len()));
        assert_eq!(deltas.len(), fault.sensors.len());
        assert!(deltas.iter().all(|d| d.signum() == deltas[0].signum()), "sensors move the same way");
        assert!(fault.sensors.windows(2).all(|w| w[0].id < w[1].id));
    }
}
