//! The kinds of signal of the mixed-signals factory behave as their layout says: set points step
//! with their machine's recipe, counters count up in whole numbers, states are on or off,
//! quantised sensors read multiples of their resolution, flat-when-idle sensors rest
//! exactly while their machine idles, irregular sensors skip slots; and the faults these
//! kinds make possible are injected on the right sensors.
// Test helpers unwrap freely: a failure is the test failing.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;

use common::*;
use layout::SignalKind;
use simulator::{FactoryEvent, FaultKind, SimConfig};

#[test]
fn each_kind_of_signal_reads_as_its_layout_says() {
    // Three weeks at one reading a minute: long enough for machines to stop for service.
    let layout = small_mixed_layout(1, 600, 1);
    let config = SimConfig { faults: simulator::FaultConfig::none(), ..SimConfig::with_step_ms(60_000) };
    let steps = run(&layout, &config, 3, 21 * 1440);
    let grid = grid(&layout, &steps);
    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    for (ix, sensor) in layout.sensors().iter().enumerate() {
        let spec = layout.sensor_at(ix).spec;
        let values: Vec<f64> = grid.iter().filter_map(|row| row[ix]).collect();
        let name = &sensor.name;
        match spec.signal {
            SignalKind::Setpoint => {
                let distinct = distinct(&values);
                assert!((2..=8).contains(&distinct), "{name}: {distinct} set point values in three weeks");
                *seen.entry("setpoint").or_default() += 1;
            }
            SignalKind::Counter => {
                assert!(values.windows(2).all(|w| w[1] >= w[0]), "{name} counts down");
                assert!(values.iter().all(|v| v.fract() == 0.0), "{name} reads a fraction");
                assert!(values.last().unwrap() > values.first().unwrap(), "{name} never counts");
                *seen.entry("counter").or_default() += 1;
            }
            SignalKind::State => {
                assert!(values.iter().all(|v| *v == spec.normal_min || *v == spec.normal_max), "{name}");
                *seen.entry("state").or_default() += 1;
            }
            SignalKind::Valve | SignalKind::Batch | SignalKind::Analog => {}
        }
        if spec.resolution > 0.0 {
            let off = values.iter().filter(|v| ((*v / spec.resolution).round() * spec.resolution - *v).abs() > 1e-3);
            assert_eq!(off.count(), 0, "{name} reads between multiples of {}", spec.resolution);
            *seen.entry("quantised").or_default() += 1;
        }
        if spec.flat_when_idle {
            // Only machines stopped in these three weeks rest.
            let rests = values.iter().filter(|v| **v == spec.normal_min).count();
            assert!(rests < values.len(), "{name} never runs");
            if rests > 0 {
                *seen.entry("flat_when_idle").or_default() += 1;
            }
        }
        if spec.irregular {
            let share = values.len() as f64 / grid.len() as f64;
            assert!((0.4..0.6).contains(&share), "{name} reports {share} of the slots");
            *seen.entry("irregular").or_default() += 1;
        }
    }
    for kind in ["setpoint", "counter", "state", "quantised", "flat_when_idle", "irregular"] {
        assert!(seen.get(kind).copied().unwrap_or(0) > 0, "no {kind} sensor in the mixed-signals factory: {seen:?}");
    }
}

fn distinct(values: &[f64]) -> usize {
    let mut v: Vec<u64> = values.iter().map(|x| x.to_bits()).collect();
    v.sort_unstable();
    v.dedup();
    v.len()
}

#[test]
fn the_new_faults_hit_the_sensors_they_are_about() {
    let layout = small_mixed_layout(1, 2000, 2);
    let mut config = SimConfig::with_step_ms(10_000);
    for kind in
        [FaultKind::SetpointIgnored, FaultKind::ValveStuck, FaultKind::CounterStopped, FaultKind::QuantisedDrift]
    {
        let faults = only(kind, 0.5).faults;
        config.faults.setpoint_ignored_rate_per_machine_hour += faults.setpoint_ignored_rate_per_machine_hour;
        config.faults.valve_stuck_rate_per_sensor_hour += faults.valve_stuck_rate_per_sensor_hour;
        config.faults.counter_stopped_rate_per_sensor_hour += faults.counter_stopped_rate_per_sensor_hour;
        config.faults.quantised_drift_rate_per_sensor_hour += faults.quantised_drift_rate_per_sensor_hour;
    }
    let steps = run(&layout, &config, 5, 6 * 360);
    let mut by_kind: BTreeMap<FaultKind, usize> = BTreeMap::new();
    for event in steps.iter().flat_map(|s| &s.events) {
        let FactoryEvent::FaultStarted(record) = event else { continue };
        *by_kind.entry(record.kind()).or_default() += 1;
        for s in &record.sensors {
            let spec = layout.sensor(s.id).unwrap().spec;
            let ok = match record.kind() {
                FaultKind::ValveStuck => spec.signal == SignalKind::Valve,
                FaultKind::CounterStopped => spec.signal == SignalKind::Counter,
                FaultKind::QuantisedDrift => spec.resolution > 0.0,
                FaultKind::SetpointIgnored => spec.signal == SignalKind::Analog,
                _ => true,
            };
            assert!(ok, "{:?} on {} ({:?})", record.kind(), s.name, spec.signal);
        }
    }
    for kind in
        [FaultKind::SetpointIgnored, FaultKind::ValveStuck, FaultKind::CounterStopped, FaultKind::QuantisedDrift]
    {
        assert!(by_kind.get(&kind).copied().unwrap_or(0) > 0, "no {kind:?}: {by_kind:?}");
    }
}
