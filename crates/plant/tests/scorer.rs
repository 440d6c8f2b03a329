//! The maintenance scorer and the model registry on a real PostgreSQL: given hourly
//! history in the read models and an active model, every machine gets a prediction that
//! reaches the `maintenance` read model; a restart doubles nothing; without an active
//! model nothing is predicted; machines under maintenance are left out.
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;

use chrono::{DateTime, TimeZone, Utc};
use domain::events::*;
use eventlog::{Append, Database, ExpectedVersion, Metadata, NewEvent, StreamName};
use maintenance::{
    AlertRule, BoosterParams, FactoryColumns, FeatureConfig, HOUR_MS, HistoryTable, MachineSchema, Model, RunEnd,
    SensorHour, TrainOptions, TrainingSet,
};
use plant::registry;
use plant::scorer::{ScoreOutcome, Scorer, ScorerConfig};
use readmodels::ProjectionConfig;

const DAY_MS: i64 = 86_400_000;

fn tick() -> i64 {
    Utc.with_ymd_and_hms(2026, 3, 10, 12, 0, 0).unwrap().timestamp_millis()
}

fn at(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap()
}

/// A plant database with the layout projected: a few machines of several types.
async fn plant_db() -> Database {
    let test_db = pgcluster::testdb::TestDb::new().await.unwrap();
    let db = Database::new(&test_db.url, 8).unwrap();
    plant::migrate(&db).await.unwrap();
    readmodels::migrate(&db).await.unwrap();
    let layout = LayoutConfigured {
        plant: 1,
        layout_toml: layout::DEFAULT_LAYOUT_TOML.into(),
        plants: Some(1),
        lines_per_plant: Some(1),
        sensors_per_plant: Some(80),
        stale_after_ms: 10_000,
    };
    append(&db, "plant-P1", LAYOUT_CONFIGURED, &serde_json::to_value(layout).unwrap(), None).await;
    readmodels::catch_up(&db, ProjectionConfig::new(1)).await.unwrap();
    db
}

async fn append(db: &Database, stream: &str, event_type: &str, body: &serde_json::Value, key: Option<String>) {
    let e = NewEvent::json(event_type, 1, body, Metadata::by("test")).unwrap();
    let mut a = Append::new(StreamName::new(stream).unwrap(), ExpectedVersion::Any, vec![e]);
    if let Some(key) = key {
        a = a.idempotent(key);
    }
    eventlog::append_and_commit(db, &[a]).await.unwrap();
}

/// The machines of the read model with their sensors' (id, kind).
async fn machines(db: &Database) -> Vec<(String, MachineSchema)> {
    let client = db.client().await.unwrap();
    let mut sensors: HashMap<String, Vec<(u32, String)>> = HashMap::new();
    for r in client.query("SELECT sensor_id, machine_id, kind FROM readmodel.sensors", &[]).await.unwrap() {
        sensors.entry(r.get(1)).or_default().push((r.get::<_, i32>(0) as u32, r.get(2)));
    }
    let rows = client.query("SELECT machine_id, machine_type FROM readmodel.machines ORDER BY 1", &[]).await.unwrap();
    rows.into_iter()
        .map(|r| {
            let id: String = r.get(0);
            let list = &sensors[&id];
            let schema =
                MachineSchema::new(&r.get::<_, String>(1), list.iter().map(|(s, k)| (*s, k.as_str()))).unwrap();
            (id, schema)
        })
        .collect()
}

/// A machine's sensors over the hours from `service_ms` to `until_ms`: wear grows as
/// the square of the time since service over a life of `life_days`.
fn hours(schema: &MachineSchema, service_ms: i64, until_ms: i64, life_days: f64) -> Vec<SensorHour> {
    let mut out = Vec::new();
    let mut hour = service_ms;
    while hour + HOUR_MS <= until_ms {
        let wear = ((hour + HOUR_MS - service_ms) as f64 / DAY_MS as f64 / life_days).min(1.2);
        for sensor in schema.sensors() {
            let wobble = f64::from((sensor.wrapping_mul(2_654_435_761) ^ (hour / HOUR_MS) as u32) % 100) / 500.0;
            let mean = 10.0 + f64::from(sensor % 7) + 8.0 * wear * wear + wobble;
            out.push(SensorHour { sensor, hour_ms: hour, count: 60, min: mean - 0.5, max: mean + 0.5, mean });
        }
        hour += HOUR_MS;
    }
    out
}

/// A small model trained on synthetic runs to failure of these machines' types.
fn model(schemas: &[&MachineSchema]) -> Model {
    let columns = FactoryColumns::of_machines(schemas.iter().copied());
    let mut table = HistoryTable::new(columns.names().to_vec()).unwrap();
    let mut ends = HashMap::new();
    for (m, schema) in schemas.iter().enumerate() {
        for k in 0..6 {
            let life = 4.0 + 0.4 * k as f64;
            let service = (k as i64 * 20 + 1) * DAY_MS;
            let unit = format!("{m}-{k}");
            table.start_unit(&unit, maintenance::days_of_ms(service)).unwrap();
            let failure = service + (life * DAY_MS as f64) as i64;
            for (time, row) in columns.rows(schema, &hours(schema, service, failure, life)) {
                table.push_row(&unit, time, &row).unwrap();
            }
            ends.insert(unit, RunEnd::Failed { at: maintenance::days_of_ms(failure) });
        }
    }
    let options = TrainOptions {
        rul_cap: Some(4.0),
        seed: 3,
        validation_units: 0,
        calibration_folds: 3,
        interval_min_bin_points: 50,
        time_unit: "days".into(),
        features: FeatureConfig { windows: vec![0.25, 1.0], baseline_window: 0.25 },
        booster: BoosterParams { iterations: 40, learning_rate: 0.2, min_leaf_weight: 5.0, ..BoosterParams::default() },
        alert: Some(rule()),
        ..TrainOptions::default()
    };
    maintenance::train(&TrainingSet::new(table, &ends).unwrap(), &options).unwrap().0
}

/// The test models' alert rule: due when failing within 1.5 days is at least 30 % likely,
/// held for 3 hours.
fn rule() -> AlertRule {
    AlertRule::probability(1.5, 0.3, 3.0 / 24.0)
}

async fn insert_hours(db: &Database, rows: &[SensorHour]) {
    let client = db.client().await.unwrap();
    let ids: Vec<i32> = rows.iter().map(|h| h.sensor as i32).collect();
    let hours: Vec<DateTime<Utc>> = rows.iter().map(|h| at(h.hour_ms)).collect();
    let counts: Vec<i32> = rows.iter().map(|h| h.count as i32).collect();
    let mins: Vec<f64> = rows.iter().map(|h| h.min).collect();
    let maxs: Vec<f64> = rows.iter().map(|h| h.max).collect();
    let means: Vec<f64> = rows.iter().map(|h| h.mean).collect();
    client
        .execute(
            "INSERT INTO readmodel.sensor_hour (sensor_id, hour, count, min, max, mean, position) \
             SELECT *, 0 FROM unnest($1::int[], $2::timestamptz[], $3::int[], $4::float8[], $5::float8[], $6::float8[])",
            &[&ids, &hours, &counts, &mins, &maxs, &means],
        )
        .await
        .unwrap();
}

/// Records a completed service of `machine` at `ms`, as the maintenance crew does.
async fn serviced(db: &Database, machine: &str, ms: i64) {
    let order = format!("wo-{machine}-{ms}");
    let scheduled = serde_json::json!({
        "order_id": order, "machine_id": machine, "kind": "planned", "scheduled_for": at(ms - 3 * HOUR_MS),
        "by": "crew", "note": "", "at": at(ms - 3 * HOUR_MS)
    });
    let performed = serde_json::json!({
        "order_id": order, "machine_id": machine, "performed_at": at(ms), "by": "crew", "note": "", "at": at(ms)
    });
    let stream = format!("maintenance-{machine}");
    append(db, &stream, MAINTENANCE_SCHEDULED, &scheduled, None).await;
    append(db, &stream, MAINTENANCE_PERFORMED, &performed, None).await;
}

/// One reading at `ms`, so the plant's clock (its newest reading) reads `ms`.
async fn plant_time(db: &Database, sensor: u32, ms: i64) {
    let e = NewEvent::readings(
        &[telemetry::Reading::new(sensor, ms, 1.0)],
        (i64::MIN / 4, i64::MAX / 4),
        Metadata::default(),
    )
    .unwrap();
    let a = Append::new(StreamName::new("readings-P1-L01").unwrap(), ExpectedVersion::Any, vec![e]);
    eventlog::append_and_commit(db, &[a]).await.unwrap();
    readmodels::catch_up(db, ProjectionConfig::new(1)).await.unwrap();
}

async fn predictions(db: &Database) -> Vec<MaintenancePredicted> {
    let client = db.client().await.unwrap();
    eventlog::read_all(&client, 0, 100_000, Some(&[PREDICTION.to_owned()]))
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.json().unwrap())
        .collect()
}

fn config() -> ScorerConfig {
    ScorerConfig { poll_ms: 20, ..ScorerConfig::default() }
}

/// A plant with three days of history: the first machine serviced 3.4 days ago (worn),
/// the second 0.5 days ago (fresh), the others without a recorded service.
async fn plant_with_history() -> (Database, Vec<(String, MachineSchema)>) {
    let db = plant_db().await;
    let ms = machines(&db).await;
    assert!(ms.len() >= 3, "the test layout has {} machines", ms.len());
    let t = tick();
    let mut rows = Vec::new();
    for (i, (id, schema)) in ms.iter().enumerate() {
        let service = match i {
            0 => t - (3.4 * DAY_MS as f64) as i64,
            1 => t - DAY_MS / 2,
            _ => t - 3 * DAY_MS,
        };
        if i < 2 {
            serviced(&db, id, service).await;
        }
        rows.extend(hours(schema, maintenance::hour_of_ms(service) + HOUR_MS, t, 4.0));
    }
    insert_hours(&db, &rows).await;
    let first_sensor = ms[0].1.sensors()[0];
    plant_time(&db, first_sensor, t + 5 * 60_000).await;
    (db, ms)
}

#[tokio::test]
async fn given_history_and_an_active_model_when_scoring_then_every_machine_gets_a_prediction() {
    let (db, ms) = plant_with_history().await;
    let schemas: Vec<&MachineSchema> = ms.iter().map(|(_, s)| s).collect();
    let model = model(&schemas);
    let version = registry::register(&db, &model, Some(serde_json::json!({"note": "test"})), true).await.unwrap();
    assert_eq!(version, model.version().unwrap());

    let mut scorer = Scorer::new(config()).unwrap();
    let outcome = scorer.score_once(&db).await.unwrap();
    let ScoreOutcome::Scored { tick_ms, predictions: n, model_version, skipped } = outcome else {
        panic!("expected predictions, got {outcome:?}")
    };
    assert_eq!(tick_ms, tick());
    assert_eq!(model_version, version);
    assert_eq!(n, ms.len());
    assert_eq!(skipped, Default::default());

    let events = predictions(&db).await;
    assert_eq!(events.len(), ms.len());
    let by_machine: HashMap<&str, &MaintenancePredicted> = events.iter().map(|e| (e.machine_id.as_str(), e)).collect();
    let worn = by_machine[ms[0].0.as_str()];
    let fresh = by_machine[ms[1].0.as_str()];
    assert!(worn.days < 1.5, "worn machine: {worn:?}");
    assert!(fresh.days > 2.5, "fresh machine: {fresh:?}");
    for e in &events {
        assert_eq!(e.at.timestamp_millis(), tick());
        assert!(e.lower_days <= e.days && e.days <= e.upper_days && e.lower_days >= 0.0, "{e:?}");
        assert!(e.failure_probability.is_some_and(|p| (0.0..=1.0).contains(&p)), "{e:?}");
    }
    // Due by the model's rule: the worn machine, not the fresh one.
    assert_eq!((worn.due, fresh.due), (Some(true), Some(false)), "{worn:?} {fresh:?}");

    // The scorer read only the baseline and the recent hours, and decided "due" as the
    // evaluation decides it from the whole history, hour by hour.
    let service = tick() - (3.4 * DAY_MS as f64) as i64;
    let (id, schema) = &ms[0];
    let columns = FactoryColumns::new(model.feature_set().columns.clone());
    let mut full = HistoryTable::new(columns.names().to_vec()).unwrap();
    full.start_unit(id, maintenance::days_of_ms(service)).unwrap();
    for (time, row) in columns.rows(schema, &hours(schema, maintenance::hour_of_ms(service) + HOUR_MS, tick(), 4.0)) {
        full.push_row(id, time, &row).unwrap();
    }
    let every = model.predict_every_row(&full).unwrap();
    let refs: Vec<&maintenance::Prediction> = every.iter().collect();
    let states = rule().states(&refs);
    assert_eq!(worn.due, states.last().copied());
    assert_eq!(worn.failure_probability, every.last().unwrap().failure_probability);

    // The live projection shows the latest prediction per machine.
    readmodels::catch_up(&db, ProjectionConfig::new(1)).await.unwrap();
    let client = db.client().await.unwrap();
    let rows = client
        .query("SELECT machine_id, predicted_days, model_version FROM readmodel.maintenance WHERE predicted_days IS NOT NULL", &[])
        .await
        .unwrap();
    assert_eq!(rows.len(), ms.len());
    assert!(rows.iter().all(|r| r.get::<_, String>(2) == version));

    // Same plant time: nothing more to do.
    assert_eq!(scorer.score_once(&db).await.unwrap(), ScoreOutcome::UpToDate { tick_ms: tick() });

    // The worn machine fails a day later: the registry shows how this version did.
    let failed =
        MachineFailed { machine_id: ms[0].0.clone(), at: at(tick() + DAY_MS), source: "gateway:P1-L01".into() };
    append(&db, &format!("machine-{}", ms[0].0), MACHINE_FAILED, &serde_json::to_value(failed).unwrap(), None).await;
    readmodels::catch_up(&db, ProjectionConfig::new(1)).await.unwrap();
    let listed = registry::list(&db).await.unwrap();
    let record = listed.iter().find(|m| m.version == version).unwrap().track_record.clone().unwrap();
    assert_eq!((record.failures, record.scored), (1, 1));
    assert_eq!(record.caught, 0, "due only a day ahead: not in time");
    assert_eq!(listed[0].metrics["alert"], serde_json::to_value(rule()).unwrap());
}

#[tokio::test]
async fn given_a_restart_when_scoring_the_same_tick_again_then_no_prediction_is_doubled() {
    let (db, ms) = plant_with_history().await;
    let schemas: Vec<&MachineSchema> = ms.iter().map(|(_, s)| s).collect();
    registry::register(&db, &model(&schemas), None, true).await.unwrap();
    let mut first = Scorer::new(config()).unwrap();
    assert!(matches!(first.score_once(&db).await.unwrap(), ScoreOutcome::Scored { .. }));
    let before = predictions(&db).await;

    // A new process sees the stored progress.
    let mut restarted = Scorer::new(config()).unwrap();
    assert_eq!(restarted.score_once(&db).await.unwrap(), ScoreOutcome::UpToDate { tick_ms: tick() });

    // Even with the progress lost, the idempotency keys keep the log as it was.
    db.client().await.unwrap().execute("DELETE FROM maintenance.scorer", &[]).await.unwrap();
    let mut amnesic = Scorer::new(config()).unwrap();
    assert!(matches!(amnesic.score_once(&db).await.unwrap(), ScoreOutcome::Scored { .. }));
    assert_eq!(predictions(&db).await, before);

    // The next tick of plant time brings one more prediction per machine.
    plant_time(&db, ms[0].1.sensors()[0], tick() + 16 * 60_000).await;
    assert!(matches!(restarted.score_once(&db).await.unwrap(), ScoreOutcome::Scored { .. }));
    assert_eq!(predictions(&db).await.len(), 2 * before.len());
}

#[tokio::test]
async fn given_no_active_model_when_scoring_then_nothing_is_predicted() {
    let (db, ms) = plant_with_history().await;
    let mut scorer = Scorer::new(config()).unwrap();
    assert_eq!(scorer.score_once(&db).await.unwrap(), ScoreOutcome::NoModel);
    assert!(predictions(&db).await.is_empty());

    // Registered but not activated, then activated and deactivated again.
    let schemas: Vec<&MachineSchema> = ms.iter().map(|(_, s)| s).collect();
    let version = registry::register(&db, &model(&schemas), None, false).await.unwrap();
    assert_eq!(scorer.score_once(&db).await.unwrap(), ScoreOutcome::NoModel);
    registry::activate(&db, &version).await.unwrap();
    registry::deactivate(&db).await.unwrap();
    assert_eq!(scorer.score_once(&db).await.unwrap(), ScoreOutcome::NoModel);
    assert!(predictions(&db).await.is_empty());
}

#[tokio::test]
async fn given_a_machine_under_maintenance_when_scoring_then_it_gets_no_prediction() {
    let (db, ms) = plant_with_history().await;
    let schemas: Vec<&MachineSchema> = ms.iter().map(|(_, s)| s).collect();
    registry::register(&db, &model(&schemas), None, true).await.unwrap();
    let down = &ms[2].0;
    let order = serde_json::json!({
        "order_id": "wo-down", "machine_id": down, "kind": "emergency", "scheduled_for": at(tick() - HOUR_MS),
        "by": "crew", "note": "", "at": at(tick() - HOUR_MS)
    });
    append(&db, &format!("maintenance-{down}"), MAINTENANCE_SCHEDULED, &order, None).await;
    readmodels::catch_up(&db, ProjectionConfig::new(1)).await.unwrap();
    let mut scorer = Scorer::new(config()).unwrap();
    let ScoreOutcome::Scored { predictions: n, skipped, .. } = scorer.score_once(&db).await.unwrap() else {
        panic!("expected predictions")
    };
    assert_eq!((n, skipped.in_maintenance), (ms.len() - 1, 1));
    assert!(predictions(&db).await.iter().all(|p| &p.machine_id != down));
}

#[tokio::test]
async fn the_registry_keeps_one_active_model_and_refuses_unknown_versions() {
    let (db, ms) = plant_with_history().await;
    let schemas: Vec<&MachineSchema> = ms.iter().map(|(_, s)| s).collect();
    let a = model(&schemas);
    let b = model(&schemas[..1]);
    let va = registry::register(&db, &a, None, true).await.unwrap();
    let vb = registry::register(&db, &b, None, true).await.unwrap();
    assert_ne!(va, vb);
    // Registering again changes nothing.
    assert_eq!(registry::register(&db, &a, None, false).await.unwrap(), va);
    let listed = registry::list(&db).await.unwrap();
    assert_eq!(listed.len(), 2);
    assert_eq!(listed.iter().filter(|m| m.active).map(|m| m.version.clone()).collect::<Vec<_>>(), vec![vb.clone()]);
    registry::activate(&db, &va).await.unwrap();
    let client = db.client().await.unwrap();
    let (version, loaded) = registry::active_model(&client).await.unwrap().unwrap();
    assert_eq!(version, va);
    assert_eq!(loaded.to_json().unwrap(), a.to_json().unwrap());
    let err = registry::activate(&db, "rul-000000000000").await.unwrap_err();
    assert!(matches!(err.downcast_ref::<registry::RegistryError>(), Some(registry::RegistryError::UnknownVersion(_))));
    assert_eq!(registry::active_version(&client).await.unwrap(), Some(va));
    // The database refuses a second active row, whoever writes it.
    let second = client.execute("UPDATE maintenance.models SET active = true", &[]).await;
    assert!(second.is_err());
}
