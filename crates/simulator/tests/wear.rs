//! Machines wear out: worn machines read differently, fail unless serviced, and maintenance resets them.
// Test helpers unwrap freely: a failure is the test failing.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use layout::Layout;
use simulator::{Factory, FactoryEvent, MachineStatus, MaintenanceConfig, MaintenanceKind, PlantSim, SimConfig, Step};

const TEN_MINUTES: u64 = 600_000;

fn months(layout: &Layout, maintenance: MaintenanceConfig, days: usize) -> (Factory, Vec<FactoryEvent>) {
    let config = SimConfig { step_ms: TEN_MINUTES, maintenance, ..clean() };
    let mut factory = Factory::new(layout, &config, 31, START_MS).unwrap();
    let mut events = Vec::new();
    let mut step = Step::default();
    for _ in 0..days * 144 {
        factory.step_into(&mut step);
        events.extend(step.events.iter().cloned());
    }
    (factory, events)
}

fn count(events: &[FactoryEvent], what: impl Fn(&FactoryEvent) -> bool) -> usize {
    events.iter().filter(|e| what(e)).count()
}

fn is_failure(e: &FactoryEvent) -> bool {
    matches!(e, FactoryEvent::MachineFailed { .. })
}

fn started(kind: MaintenanceKind) -> impl Fn(&FactoryEvent) -> bool {
    move |e| matches!(e, FactoryEvent::MaintenanceStarted { kind: k, .. } if *k == kind)
}

#[test]
fn machines_fail_or_get_serviced_and_maintenance_resets_wear() {
    let layout = small_layout(1, 600, 2);
    let (factory, events) = months(&layout, MaintenanceConfig::default(), 120);
    let failures = count(&events, is_failure);
    let services = count(&events, started(MaintenanceKind::Preventive));
    assert!(failures >= 5, "{failures} failures in 120 days of {} machines", layout.machines().len());
    assert!(services >= 5, "{services} services");

    for (i, event) in events.iter().enumerate() {
        match event {
            FactoryEvent::MachineFailed { machine, ts_ms, wear, .. } => {
                assert!(*wear > 0.85, "failed at wear {wear}");
                // The repair starts at the same instant.
                assert!(
                    matches!(&events[i + 1], FactoryEvent::MaintenanceStarted { machine: m, ts_ms: t, kind: MaintenanceKind::Corrective, .. } if m == machine && t == ts_ms)
                );
            }
            FactoryEvent::MaintenanceStarted { machine, kind, until_ms, .. } => {
                let done = events[i..]
                    .iter()
                    .find(|e| matches!(e, FactoryEvent::MaintenanceCompleted { machine: m, .. } if m == machine));
                if let Some(FactoryEvent::MaintenanceCompleted { ts_ms, kind: k, wear, .. }) = done {
                    assert_eq!(k, kind);
                    assert!(ts_ms >= until_ms && *ts_ms < until_ms + TEN_MINUTES as i64);
                    assert!(*wear < 0.05, "wear after maintenance {wear}");
                }
            }
            _ => {}
        }
    }
    for (ix, _) in layout.machines().iter().enumerate() {
        let state = factory.machine_state(ix).unwrap();
        if state.status == MachineStatus::Running {
            assert!(state.wear < state.wear_limit);
        }
    }
}

#[test]
fn run_to_failure_machines_are_never_serviced() {
    let layout = small_layout(1, 300, 1);
    let policy = MaintenanceConfig { run_to_failure_share: 1.0, ..MaintenanceConfig::default() };
    let (_, events) = months(&layout, policy, 90);
    assert_eq!(count(&events, started(MaintenanceKind::Preventive)), 0);
    assert!(count(&events, is_failure) >= 5);
}

#[test]
fn early_service_prevents_every_failure() {
    let layout = small_layout(1, 300, 1);
    let policy =
        MaintenanceConfig { run_to_failure_share: 0.0, service_at_life_share: 0.3, ..MaintenanceConfig::default() };
    let (_, events) = months(&layout, policy, 90);
    assert_eq!(count(&events, is_failure), 0);
    assert!(count(&events, started(MaintenanceKind::Preventive)) >= 20);
}

#[test]
fn a_worn_machine_vibrates_more_than_after_its_repair() {
    let layout = small_layout(1, 600, 2);
    let (_, events) = months(&layout, MaintenanceConfig::default(), 60);
    let (machine, failed_at) = events
        .iter()
        .find_map(|e| match e {
            FactoryEvent::MachineFailed { machine, ts_ms, .. } if *ts_ms > START_MS + 86_400_000 => {
                Some((machine.clone(), *ts_ms))
            }
            _ => None,
        })
        .expect("a failure after the first day");
    let repaired_at = events
        .iter()
        .find_map(|e| match e {
            FactoryEvent::MaintenanceCompleted { machine: m, ts_ms, .. } if *m == machine && *ts_ms > failed_at => {
                Some(*ts_ms)
            }
            _ => None,
        })
        .expect("the repair completes");

    // Replay the machine alone: it must see the same failure, and its sensors tell the story.
    let machine_ix = layout.machine_index(&machine).unwrap();
    let plant = layout.machines()[machine_ix].plant;
    let config = SimConfig { step_ms: TEN_MINUTES, ..clean() };
    let mut sim = PlantSim::for_machines(&layout, plant, &[machine_ix], &config, 31, START_MS).unwrap();
    let vib: Vec<u32> = layout
        .sensors_in(&layout.machines()[machine_ix].sensors)
        .iter()
        .filter(|s| layout.sensor(s.id).unwrap().kind() == "VIB")
        .map(|s| s.id)
        .collect();
    assert!(!vib.is_empty(), "{machine} has vibration sensors");
    let (mut before, mut after) = (Vec::new(), Vec::new());
    let mut alone = Vec::new();
    while sim.next_ts_ms() < repaired_at + 86_400_000 {
        let step = sim.step();
        alone.extend(step.events.iter().cloned());
        let values = step.batches.iter().flat_map(|b| &b.readings).filter(|r| vib.contains(&r.sensor)).map(|r| r.value);
        if (failed_at - 86_400_000..failed_at).contains(&step.ts_ms) {
            before.extend(values);
        } else if (repaired_at..repaired_at + 86_400_000).contains(&step.ts_ms) {
            after.extend(values);
        }
    }
    let full: Vec<_> =
        events.iter().filter(|e| e.machine() == Some(&machine) && e.ts_ms() < sim.next_ts_ms()).cloned().collect();
    assert_eq!(alone, full, "the machine alone has the same history as in the full plant");
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    assert!(
        mean(&before) > mean(&after) + 1.0,
        "vibration before failure {} vs after repair {}",
        mean(&before),
        mean(&after)
    );
}

/// The plant node refuses readings outside a sensor's plausible range: nothing the
/// simulated factory sends, faults and worn-out machines included, may fall outside it.
#[test]
fn every_reading_of_worn_and_faulty_machines_is_plausible_for_its_sensor() {
    let maintenance = MaintenanceConfig { run_to_failure_share: 1.0, ..MaintenanceConfig::default() };
    let config = SimConfig { step_ms: TEN_MINUTES, maintenance, ..busy() };
    every_reading_is_plausible(&small_layout(1, 600, 2), &config);
}

/// The same for the mixed-signals factory: set points, valves, on/off states, batch
/// cycles, quantised and spiky sensors, and counters that count for four months (a
/// counter's range is open above), with the faults of those kinds often.
#[test]
fn every_reading_of_the_mixed_signals_factory_is_plausible_for_its_sensor() {
    let maintenance = MaintenanceConfig { run_to_failure_share: 1.0, ..MaintenanceConfig::default() };
    let mut config = SimConfig { step_ms: TEN_MINUTES, maintenance, ..busy() };
    config.faults.setpoint_ignored_rate_per_machine_hour = 0.01;
    config.faults.valve_stuck_rate_per_sensor_hour = 0.01;
    config.faults.counter_stopped_rate_per_sensor_hour = 0.01;
    config.faults.quantised_drift_rate_per_sensor_hour = 0.01;
    every_reading_is_plausible(&small_mixed_layout(1, 600, 2), &config);
}

fn every_reading_is_plausible(layout: &Layout, config: &SimConfig) {
    let mut factory = Factory::new(layout, config, 5, START_MS).unwrap();
    let mut step = Step::default();
    let mut readings = 0usize;
    for _ in 0..120 * 144 {
        factory.step_into(&mut step);
        for r in step.batches.iter().flat_map(|b| &b.readings) {
            let sensor = layout.sensor(r.sensor).unwrap();
            let (lo, hi) = sensor.plausible_range();
            assert!((lo..=hi).contains(&r.value), "{} read {} outside {lo}..={hi}", sensor.name(), r.value);
            readings += 1;
        }
    }
    assert!(readings > 1_000_000, "{readings} readings");
}
