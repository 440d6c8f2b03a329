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
    MonitorConfig { snapshot_every_ms: 30_000, snapshot_min_interval: Duration::ZERO, ..MonitorConfig::new(1) }
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

/// Every sensor of the layout from `from_s` to `to_s` (seconds after t0), one upload a
/// second: about 40 with a little noise, or what `value` says for a sensor.
async fn feed(db: &Database, from_s: i64, to_s: i64, value: impl Fn(u32, i64) -> Option<f64>) {
    let layout = Layout::default_with(&scale()).unwrap();
    let mut noise = 0x1234_5678_u64 ^ from_s as u64;
    for s in from_s..to_s {
        let readings: Vec<Reading> = layout
            .sensors()
            .iter()
            .map(|sensor| {
                noise ^= noise << 13;
                noise ^= noise >> 7;
                noise ^= noise << 17;
                let jitter = (noise % 1000) as f64 / 1000.0 - 0.5;
                let v = value(sensor.id, s).unwrap_or(f64::from((40.0 + jitter) as f32));
                Reading::new(sensor.id, t0() + s * 1000, v)
            })
            .collect();
        append_readings(db, &readings).await;
    }
}

async fn events_holding_null(db: &Database) -> i64 {
    let client = db.client().await.unwrap();
    let sql = "SELECT count(*) FROM eventlog.events WHERE jsonb_path_exists(payload, 'strict $.** ? (@ == null)')";
    client.query_one(sql, &[]).await.unwrap().get(0)
}

async fn snapshots(db: &Database) -> Vec<(i64, Vec<u8>)> {
    let client = db.client().await.unwrap();
    let rows = client.query("SELECT position, state FROM monitor.state ORDER BY position", &[]).await.unwrap();
    rows.iter().map(|r| (r.get(0), r.get(1))).collect()
}

async fn head(db: &Database) -> i64 {
    eventlog::head_position(&db.client().await.unwrap()).await.unwrap()
}

#[tokio::test]
async fn readings_of_1e300_in_the_log_raise_an_anomaly_whose_event_holds_numbers_and_says_they_were_bounded() {
    let db = plant_db().await;
    let layout = Layout::default_with(&scale()).unwrap();
    let target = layout.sensors()[3].id;
    // As a log written before ingest refused such values holds them.
    feed(&db, 0, 1200, |id, s| (id == target && (900..1100).contains(&s)).then_some(1e300)).await;
    subscription(&db).catch_up(&mut MonitorHandler::new(config()).unwrap()).await.unwrap();
    let events = anomaly_events(&db).await;
    let detected: AnomalyDetected = events
        .iter()
        .filter(|e| e.1 == ANOMALY_DETECTED)
        .map(|e| serde_json::from_value(e.2.clone()).unwrap())
        .find(|d: &AnomalyDetected| d.sensors.iter().any(|s| s.sensor == target && !s.related))
        .expect("the huge readings raise an anomaly");
    assert_eq!(events_holding_null(&db).await, 0, "no event holds null where a number belongs");
    let evidence = detected.sensors.iter().find(|s| s.sensor == target).unwrap();
    assert_eq!(evidence.observed, 1e300);
    for x in [detected.score, evidence.expected, evidence.lower, evidence.upper, evidence.score] {
        assert!(x.is_finite(), "{detected:?}");
    }
    assert!(detected.explanation.contains("1.000e300"), "{}", detected.explanation);
    assert!(detected.explanation.contains("beyond ±1e15, judged at that bound"), "{}", detected.explanation);

    // Its snapshot loads: a restarted monitor goes on with what follows.
    feed(&db, 1200, 1300, |_, _| None).await;
    subscription(&db).catch_up(&mut MonitorHandler::new(config()).unwrap()).await.unwrap();
    let (position, _) = snapshots(&db).await.pop().unwrap();
    assert!(position > head(&db).await - 40, "the monitor went on: snapshot at {position}");
}

#[tokio::test]
async fn a_snapshot_an_older_version_saved_with_infinity_is_repaired_loudly_and_the_monitor_goes_on() {
    let db = plant_db().await;
    let target = Layout::default_with(&scale()).unwrap().sensors()[3].id;
    const MARK: f64 = 12_345.678_901_234_5;
    feed(&db, 0, 100, |id, s| (id == target && s >= 80).then_some(MARK)).await;
    subscription(&db).catch_up(&mut MonitorHandler::new(config()).unwrap()).await.unwrap();
    // What an older version saved: the sensor's learned numbers overflowed to infinity.
    let (position, mut state) = snapshots(&db).await.pop().unwrap();
    let (mark, inf) = (MARK.to_le_bytes(), f64::INFINITY.to_le_bytes());
    let mut replaced = 0;
    for i in 0..state.len().saturating_sub(7) {
        if state[i..i + 8] == mark {
            state[i..i + 8].copy_from_slice(&inf);
            replaced += 1;
        }
    }
    assert!(replaced > 0, "the snapshot holds the sensor's last value");
    let client = db.client().await.unwrap();
    client.execute("UPDATE monitor.state SET state = $1 WHERE position = $2", &[&state, &position]).await.unwrap();

    feed(&db, 100, 200, |_, _| None).await;
    subscription(&db).catch_up(&mut MonitorHandler::new(config()).unwrap()).await.unwrap();
    let newest = snapshots(&db).await.pop().unwrap().0;
    assert!(newest > position, "the monitor went on after the damaged snapshot at {position}: {newest}");
    // And what it saved since loads.
    subscription(&db).catch_up(&mut MonitorHandler::new(config()).unwrap()).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unloadable_snapshot_falls_back_to_an_older_one_then_to_the_whole_log_and_appends_nothing_twice() {
    let (calm, broken) = (plant_db().await, plant_db().await);
    simulate(&calm, 1500).await;
    simulate(&broken, 1500).await;
    subscription(&calm).catch_up(&mut MonitorHandler::new(config()).unwrap()).await.unwrap();
    let expected = anomaly_events(&calm).await;
    assert!(expected.iter().any(|e| e.1 == ANOMALY_DETECTED), "the injected faults raised no anomaly");
    subscription(&broken).catch_up(&mut MonitorHandler::new(config()).unwrap()).await.unwrap();
    let kept = snapshots(&broken).await;
    assert!(kept.len() >= 2, "older snapshots are kept: {}", kept.len());

    // The newest snapshot does not load: the one before it is used.
    let client = broken.client().await.unwrap();
    let newest = kept.last().unwrap().0;
    client.execute("UPDATE monitor.state SET state = '\\xdeadbeef' WHERE position = $1", &[&newest]).await.unwrap();
    subscription(&broken).catch_up(&mut MonitorHandler::new(config()).unwrap()).await.unwrap();
    assert_eq!(anomaly_events(&broken).await, expected);
    assert!(snapshots(&broken).await.iter().all(|(_, s)| s != &[0xde, 0xad, 0xbe, 0xef]), "the damaged one is gone");

    // None loads: the monitor reads the whole log again.
    client.execute("UPDATE monitor.state SET state = '\\x00'", &[]).await.unwrap();
    subscription(&broken).catch_up(&mut MonitorHandler::new(config()).unwrap()).await.unwrap();
    assert_eq!(anomaly_events(&broken).await, expected);
    assert!(snapshots(&broken).await.iter().all(|(_, s)| s.len() > 1));
    subscription(&broken).catch_up(&mut MonitorHandler::new(config()).unwrap()).await.unwrap();
}

#[tokio::test]
async fn catching_up_saves_a_snapshot_no_more_often_than_the_clock_allows() {
    let (eager, patient) = (plant_db().await, plant_db().await);
    simulate(&eager, 1500).await;
    simulate(&patient, 1500).await;
    subscription(&eager).catch_up(&mut MonitorHandler::new(config()).unwrap()).await.unwrap();
    let hourly = MonitorConfig { snapshot_min_interval: Duration::from_secs(3600), ..config() };
    subscription(&patient).catch_up(&mut MonitorHandler::new(hourly).unwrap()).await.unwrap();
    // 25 minutes of plant time read in seconds: a snapshot every 30 s of plant time
    // without the clock's limit, one with it (the first one due), and the same anomalies.
    assert!(snapshots(&eager).await.len() >= 2, "{}", snapshots(&eager).await.len());
    assert_eq!(snapshots(&patient).await.len(), 1);
    assert_eq!(anomaly_events(&patient).await, anomaly_events(&eager).await);
}
