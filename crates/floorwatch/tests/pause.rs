//! A factory stopped for a quarter of an hour and started again catches up: every plant
//! returns to real time, none stays behind.
#![allow(clippy::unwrap_used)]

mod factory_run;

use std::time::Duration;

use factory_run::{FactoryRun, run_for};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_pause_every_plant_returns_to_real_time() {
    let mut run = FactoryRun::new("pause").unwrap();
    run.start().unwrap();
    run.wait_all_fresh(Duration::from_secs(5), Duration::from_secs(300)).await.unwrap();
    run_for(&mut run, Duration::from_secs(5)).await.unwrap();
    run.stop().unwrap();

    // The pause: the saved position moves 15 minutes back, as if the stop had happened
    // then (no clock can be moved here); the readings of those minutes are sent again
    // and the plants keep each once.
    let text = std::fs::read_to_string(run.fleet_file()).unwrap();
    let mut saved: serde_json::Value = serde_json::from_str(&text).unwrap();
    let paused_ms = 15 * 60_000;
    for field in ["start_ms", "sent_through_ms"] {
        saved[field] = serde_json::json!(saved[field].as_i64().unwrap() - paused_ms);
    }
    std::fs::write(run.fleet_file(), serde_json::to_string(&saved).unwrap()).unwrap();

    run.start().unwrap();
    let took = run.wait_all_fresh(Duration::from_secs(5), Duration::from_secs(600)).await.unwrap();
    assert!(run.output().contains("resuming the simulation from"), "{}", run.output());
    // And they stay there.
    run_for(&mut run, Duration::from_secs(15)).await.unwrap();
    let ages = run.reading_ages().await.unwrap();
    assert!(ages.values().all(|a| *a <= Duration::from_secs(5)), "a plant fell behind again: {ages:?}");
    run.stop().unwrap();
    println!("pause test: 15 minutes behind; every plant back in real time after {:.1} s", took.as_secs_f64());
}
