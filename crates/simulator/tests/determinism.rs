//! The same inputs give the same bytes; plants do not depend on each other or on threads.
// Test helpers unwrap freely: a failure is the test failing.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use layout::Layout;
use simulator::{Factory, GroundTruthWriter, PlantSim, ReadingsWriter, SimConfig, Step};

/// Readings files (one per plant) and the ground truth of a run, as bytes.
fn record(layout: &Layout, config: &SimConfig, seed: u64, steps: usize) -> (Vec<Vec<u8>>, Vec<u8>) {
    let mut readings: Vec<_> = layout.plants().iter().map(|_| ReadingsWriter::new(Vec::new()).unwrap()).collect();
    let mut truth = GroundTruthWriter::new(Vec::new());
    let mut factory = Factory::new(layout, config, seed, START_MS).unwrap();
    let mut step = Step::default();
    for _ in 0..steps {
        factory.step_into(&mut step);
        for batch in &step.batches {
            let plant = layout.plant_index(&batch.plant).unwrap();
            readings[plant].write_batch(batch).unwrap();
        }
        truth.write_all(&step.events).unwrap();
    }
    (readings.into_iter().map(ReadingsWriter::into_inner).collect(), truth.into_inner())
}

#[test]
fn the_same_seed_gives_byte_identical_readings_and_ground_truth() {
    let layout = small_layout(2, 300, 3);
    let first = record(&layout, &busy(), 5, 1_800);
    let second = record(&layout, &busy(), 5, 1_800);
    assert!(first.1.len() > 1_000, "a busy half hour has plenty of ground truth");
    assert_eq!(first, second);

    let other = record(&layout, &busy(), 6, 1_800);
    assert_ne!(first.0[0], other.0[0], "another seed gives other readings");
    assert_ne!(first.0[1], other.0[1]);
    assert_ne!(first.1, other.1, "and other faults");
}

#[test]
fn the_same_seed_is_deterministic_over_days_of_backfill() {
    let layout = small_layout(1, 200, 2);
    let config = SimConfig { step_ms: 600_000, ..busy() };
    let first = record(&layout, &config, 9, 30 * 144);
    assert_eq!(first, record(&layout, &config, 9, 30 * 144));
    let truth = String::from_utf8(first.1).unwrap();
    assert!(truth.contains("maintenance_completed"), "a month sees maintenance");
}

#[test]
fn plants_stepped_on_threads_give_the_factory_output() {
    let layout = small_layout(3, 200, 2);
    let config = busy();
    let together: Vec<Step> = run(&layout, &config, 21, 600);

    let plants = Factory::new(&layout, &config, 21, START_MS).unwrap().into_plants();
    let apart: Vec<Vec<Step>> = std::thread::scope(|scope| {
        let handles: Vec<_> = plants
            .into_iter()
            .map(|mut plant: PlantSim| scope.spawn(move || (0..600).map(|_| plant.step()).collect::<Vec<_>>()))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (k, step) in together.iter().enumerate() {
        let mut batches = Vec::new();
        let mut events = Vec::new();
        for plant in &apart {
            assert_eq!(plant[k].ts_ms, step.ts_ms);
            batches.extend(plant[k].batches.iter().cloned());
            events.extend(plant[k].events.iter().cloned());
        }
        assert_eq!(batches, step.batches, "batches of step {k}");
        assert_eq!(events, step.events, "events of step {k}");
    }
}

#[test]
fn a_plant_does_not_depend_on_which_other_plants_run() {
    let config = busy();
    let two = run(&small_layout(2, 200, 2), &config, 3, 300);
    let three = run(&small_layout(3, 200, 2), &config, 3, 300);
    for (a, b) in two.iter().zip(&three) {
        assert_eq!(a.batches[..], b.batches[..4]);
        let p1_p2 = |e: &&simulator::FactoryEvent| e.plant() != "P3";
        assert_eq!(a.events.iter().collect::<Vec<_>>(), b.events.iter().filter(p1_p2).collect::<Vec<_>>());
    }
}

#[test]
fn reusing_a_step_buffer_changes_nothing() {
    let layout = small_layout(2, 200, 2);
    let fresh = run(&layout, &busy(), 8, 200);
    let mut factory = Factory::new(&layout, &busy(), 8, START_MS).unwrap();
    let mut step = Step::default();
    for expected in &fresh {
        factory.step_into(&mut step);
        assert_eq!(&step, expected);
    }
}
