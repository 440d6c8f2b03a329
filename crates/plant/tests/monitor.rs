//! The anomaly monitor over a real log: a fault becomes one episode with an
//! explanation, it resolves when the machine calms down, and a monitor killed at random
//! instants appends exactly what an uninterrupted one does.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use chrono::{TimeZone, Utc};
use domain::events::*;
use eventlog::{Append, Database, ExpectedVersion, Metadata, NewEvent, StreamName, Subscription, SubscriptionConfig};
use layout::{Layout, Scale};
use plant::monitor::{MONITOR, MonitorConfig, MonitorHandler};
use simulator::{Factory, FaultConfig, SimConfig, Step};
use telemetry::Reading;

fn scale() -> Scale {
    Scale { plants: Some(1), lines_per_plant: Some(1), sensors_per_plant: Some(60) }
}

fn t0() -> i64 {
    Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 0).unwrap().timestamp_millis()
}

async fn plant_db() -> Database {
    let test_db = pgcluster::testdb::TestDb::new().await.unwrap();
    let db = Database::new(&test_db.url, 8).unwrap();
    plant::migrate(&db).await.unwrap();
    let s = scale();
    let layout = LayoutConfigured {
        plant: 1,
        layout_toml: layout::DEFAULT_LAYOUT_TOML.into(),
        plants: s.plants,
        lines_per_plant: s.lines_per_plant,
        sensors_per_plant: s.sensors_per_plant,
        stale_after_ms: 10_000,
    };
    let e = NewEvent::json(LAYOUT_CONFIGURED, 1, &layout, Metadata::default()).unwrap();
    eventlog::append_and_commit(
        &db,
        &[Append::new(StreamName::new("plant-P1").unwrap(), ExpectedVersion::Any, vec![e])],
    )
    .await
    .unwrap();
    db
}

async fn append_readings(db: &Database, readings: &[Reading]) {
    let e = NewEvent::readings(readings, (i64::MIN / 4, i64::MAX / 4), Metadata::default()).unwrap();
    eventlog::append_and_commit(
        db,
        &[Append::new(StreamName::new("readings-P1-L01").unwrap(), ExpectedVersion::Any, vec![e])],
    )
    .await
    .unwrap();
}

fn subscription(db: &Database) -> Subscription {
    Subscription::new(
        db.clone(),
        SubscriptionConfig::new(MONITOR).categories(&["readings", "plant"]).batch_max_events(5),
    )
}

fn config() -> MonitorConfig {
    MonitorConfig { snapshot_every_ms: 30_000, ..MonitorConfig::new(1) }
}

async fn anomaly_events(db: &Database) -> Vec<(String, String, serde_json::Value)> {
    let client = db.client().await.unwrap();
    eventlog::read_all(&client, 0, 100_000, Some(&["anomaly".to_owned()]))
        .await
        .unwrap()
        .into_iter()
        .map(|e| (e.stream.to_string(), e.event_type.clone(), e.json::<serde_json::Value>().unwrap()))
        .collect()
}

#[tokio::test]
async fn a_spike_becomes_one_explained_episode_that_resolves_when_quiet() {
    let db = plant_db().await;
    let layout = Layout::default_with(&scale()).unwrap();
    let target = layout.sensors()[3].id;
    let mut noise = 0x1234_5678_u64;
    for s in 0..1200i64 {
        let readings: Vec<Reading> = layout
            .sensors()
            .iter()
            .map(|sensor| {
                noise ^= noise << 13;
                noise ^= noise >> 7;
                noise ^= noise << 17;
                let jitter = (noise % 1000) as f64 / 1000.0 - 0.5;
                let value = if sensor.id == target && (900..903).contains(&s) { 500.0 } else { 40.0 + jitter };
                Reading::new(sensor.id, t0() + s * 1000, f64::from(value as f32))
            })
            .collect();
        append_readings(&db, &readings).await;
    }
    subscription(&db).catch_up(&mut MonitorHandler::new(config()).unwrap()).await.unwrap();
    let events = anomaly_events(&db).await;
    let types: Vec<&str> = events.iter().map(|e| e.1.as_str()).collect();
    assert_eq!(types.first(), Some(&ANOMALY_DETECTED), "{types:?}");
    assert_eq!(types.last(), Some(&ANOMALY_RESOLVED), "{types:?}");
    assert_eq!(types.iter().filter(|t| **t == ANOMALY_DETECTED).count(), 1, "one episode, not one alarm per reading");
    let detected: AnomalyDetected = serde_json::from_value(events[0].2.clone()).unwrap();
    assert_eq!(detected.sensors[0].sensor, target);
    assert_eq!(detected.machine_id, layout.machines()[layout.sensor(target).unwrap().sensor.machine].id);
    assert!(detected.explanation.contains("500.0"), "{}", detected.explanation);
    assert_eq!(detected.started_at.timestamp_millis(), t0() + 900_000);
}

async fn simulate(db: &Database, seconds: i64) {
    let layout = Layout::default_with(&scale()).unwrap();
    let sim = SimConfig { faults: FaultConfig::default().scaled(400.0), ..SimConfig::default() };
    let mut factory = Factory::new(&layout, &sim, 11, t0()).unwrap();
    let mut step = Step::default();
    for _ in 0..seconds {
        factory.step_into(&mut step);
        for b in &step.batches {
            if !b.readings.is_empty() {
                append_readings(db, &b.readings).await;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_monitor_killed_at_random_appends_exactly_what_an_uninterrupted_one_does() {
    let (calm, chaotic) = (plant_db().await, plant_db().await);
    simulate(&calm, 1500).await;
    simulate(&chaotic, 1500).await;
    subscription(&calm).catch_up(&mut MonitorHandler::new(config()).unwrap()).await.unwrap();
    let expected = anomaly_events(&calm).await;
    assert!(expected.iter().any(|e| e.1 == ANOMALY_DETECTED), "the injected faults raised no anomaly");

    let mut state = 99u64;
    let mut interrupted_at = Vec::new();
    for _ in 0..12 {
        let sub = subscription(&chaotic);
        let task =
            tokio::spawn(
                async move { sub.run(&mut MonitorHandler::new(config()).unwrap(), std::future::pending()).await },
            );
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        tokio::time::sleep(Duration::from_millis(30 + state % 250)).await;
        task.abort();
        let _ = task.await;
        interrupted_at.push(subscription(&chaotic).checkpoint().await.unwrap());
    }
    let head = eventlog::head_position(&chaotic.client().await.unwrap()).await.unwrap();
    interrupted_at.dedup();
    assert!(interrupted_at.iter().filter(|p| **p < head - 100).count() >= 2, "not killed mid-way: {interrupted_at:?}");
    subscription(&chaotic).catch_up(&mut MonitorHandler::new(config()).unwrap()).await.unwrap();
    assert_eq!(anomaly_events(&chaotic).await, expected);
}
