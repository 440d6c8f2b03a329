//! A rebuild gives the live tables row for row; "since N" returns exactly what changed;
//! a projection killed at random instants loses and doubles nothing; the read-only role
//! can read the read models and nothing else.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::Duration as Span;
use common::*;
use domain::events::*;
use eventlog::Database;
use readmodel_contract::ReadModel;
use readmodels::ProjectionConfig;
use serde_json::Value;
use simulator::{Factory, FaultConfig, SimConfig, Step};

/// Runs the simulated plant for `seconds`, appending every gateway batch as the ingest
/// API would, plus domain events along the way and a late batch now and then.
async fn simulate(db: &Database, seconds: usize, mut after_each: impl AsyncFnMut(usize)) -> BTreeMap<(u32, i64), u32> {
    let l = layout();
    let sim = SimConfig { faults: FaultConfig::default().scaled(200.0), ..SimConfig::default() };
    let mut factory = Factory::new(&l, &sim, 7, t0().timestamp_millis()).unwrap();
    let mut step = Step::default();
    let mut expected: BTreeMap<(u32, i64), u32> = BTreeMap::new();
    let mut held_back = Vec::new();
    for s in 0..seconds {
        factory.step_into(&mut step);
        let mut now: Vec<telemetry::Reading> = step.batches.iter().flat_map(|b| b.readings.iter().copied()).collect();
        // Line 2's batch of second 40 arrives 90 s late (after its minute was written).
        if s == 40 {
            let line = &l.lines()[1].sensor_ids;
            held_back = now.iter().copied().filter(|r| line.contains(&r.sensor)).collect();
            now.retain(|r| !line.contains(&r.sensor));
        }
        if s == 130 {
            now.append(&mut held_back);
        }
        for r in &now {
            *expected.entry((r.sensor, r.ts_ms.div_euclid(60_000) * 60_000)).or_default() += 1;
        }
        if !now.is_empty() {
            readings(db, &now).await;
        }
        domain_events(db, s).await;
        after_each(s).await;
    }
    expected
}

async fn domain_events(db: &Database, s: usize) {
    let l = layout();
    let m = &l.machines()[2];
    let line = l.lines()[m.line].id.clone();
    let sensor = &l.sensors_in(&m.sensors)[0];
    let evidence = SensorEvidence {
        sensor: sensor.id,
        name: sensor.name.clone(),
        kind: "TEMP".into(),
        unit: "°C".into(),
        at: t0(),
        observed: 1.0,
        expected: 2.0,
        lower: 1.5,
        upper: 2.5,
        test: "spike".into(),
        score: 0.9,
        related: false,
    };
    let at = t0() + Span::seconds(s as i64);
    match s {
        20 => {
            let d = AnomalyDetected {
                anomaly_id: "A-7".into(),
                machine_id: m.id.clone(),
                line_id: line,
                started_at: at,
                severity: Severity::Critical,
                score: 0.9,
                sensors: vec![evidence],
                explanation: "spike".into(),
                detector_version: "t".into(),
            };
            append_json(db, "anomaly-A-7", ANOMALY_DETECTED, &d).await;
        }
        45 => {
            let a = AnomalyAcknowledged { anomaly_id: "A-7".into(), by: "al".into(), note: "ok".into(), at };
            append_json(db, "anomaly-A-7", ANOMALY_ACKNOWLEDGED, &a).await;
        }
        50 | 100 => {
            let p = MaintenancePredicted {
                machine_id: m.id.clone(),
                at,
                days: 3.0 + s as f64 / 100.0,
                lower_days: 1.0,
                upper_days: 9.0,
                model_version: "v".into(),
                failure_probability: None,
                due: None,
            };
            append_json(db, &format!("prediction-{}", m.id), MAINTENANCE_PREDICTED, &p).await;
        }
        90 => {
            append_json(db, "anomaly-A-7", ANOMALY_RESOLVED, &AnomalyResolved { anomaly_id: "A-7".into(), at }).await;
        }
        _ => {}
    }
}

async fn count_minutes(db: &Database) -> BTreeMap<(u32, i64), u32> {
    let client = db.client().await.unwrap();
    client
        .query("SELECT sensor_id, minute, count FROM readmodel.sensor_minute", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| {
            let minute: chrono::DateTime<chrono::Utc> = r.get(1);
            ((r.get::<_, i32>(0) as u32, minute.timestamp_millis()), r.get::<_, i32>(2) as u32)
        })
        .collect()
}

/// Small batches, and time travel's checkpoints often enough that the log has many.
fn small_batches() -> ProjectionConfig {
    ProjectionConfig { batch_max_events: 3, checkpoint_every_events: 7, ..ProjectionConfig::new(1) }
}

/// A rebuild's configuration: batches of its own, the same checkpoint interval.
fn rebuild_config() -> ProjectionConfig {
    ProjectionConfig { checkpoint_every_events: small_batches().checkpoint_every_events, ..ProjectionConfig::new(1) }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rebuild_equals_the_live_tables_row_for_row() {
    let db = plant_db().await;
    configure(&db).await;
    let expected = simulate(&db, 150, async |s| {
        if s % 7 == 0 {
            readmodels::catch_up(&db, small_batches()).await.unwrap();
        }
    })
    .await;
    readmodels::catch_up(&db, small_batches()).await.unwrap();
    let live = snapshot(&db).await;
    // Every reading of every closed minute is in the aggregates, once.
    let counted = count_minutes(&db).await;
    let closed: BTreeMap<_, _> =
        expected.iter().filter(|(k, _)| counted.contains_key(k)).map(|(k, v)| (*k, *v)).collect();
    assert_eq!(counted, closed);
    assert!(closed.len() >= (SENSORS as usize) * 2, "only {} sensor-minutes closed", closed.len());

    let size = |t: &str| live.iter().find(|(n, _)| n == t).unwrap().1.as_array().unwrap().len();
    assert_eq!((size("anomalies"), size("maintenance_predictions")), (1, 2));
    assert!(size("sensor_history") >= closed.len() && size("audit") >= 5);
    assert!(size("timetravel_checkpoints") > 20, "time travel's checkpoints are compared too");
    let report = readmodels::rebuild(&db, rebuild_config()).await.unwrap();
    assert!(report.events > 0);
    assert_same(&live, &snapshot(&db).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn projections_killed_at_random_lose_and_double_nothing() {
    let db = plant_db().await;
    configure(&db).await;
    let mut state = 0x5eed_u64;
    let expected = simulate(&db, 140, async |s| {
        if s % 9 == 0 {
            let db = db.clone();
            let task = tokio::spawn(async move { readmodels::run(&db, small_batches(), std::future::pending()).await });
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            tokio::time::sleep(Duration::from_millis(20 + state % 150)).await;
            task.abort();
            let _ = task.await;
        }
    })
    .await;
    readmodels::catch_up(&db, small_batches()).await.unwrap();
    let live = snapshot(&db).await;
    let counted = count_minutes(&db).await;
    let closed: BTreeMap<_, _> =
        expected.iter().filter(|(k, _)| counted.contains_key(k)).map(|(k, v)| (*k, *v)).collect();
    assert_eq!(counted, closed, "a reading was lost or doubled in the minute aggregates");
    readmodels::rebuild(&db, rebuild_config()).await.unwrap();
    assert_same(&live, &snapshot(&db).await);
}

#[tokio::test]
async fn since_n_returns_exactly_the_rows_that_changed() {
    let db = plant_db().await;
    configure(&db).await;
    for s in 0..65 {
        readings(&db, &all_sensors_at(s)).await;
    }
    readmodels::catch_up(&db, ProjectionConfig::new(1)).await.unwrap();
    let before = snapshot(&db).await;
    let n = eventlog::head_position(&db.client().await.unwrap()).await.unwrap();

    // A few sensors report; a machine gets a prediction; one anomaly appears.
    let some: Vec<_> = all_sensors_at(66).into_iter().take(7).collect();
    readings(&db, &some).await;
    let m = layout().machines()[1].id.clone();
    let p = MaintenancePredicted {
        machine_id: m.clone(),
        at: t0(),
        days: 20.0,
        lower_days: 15.0,
        upper_days: 30.0,
        model_version: "v".into(),
        failure_probability: None,
        due: None,
    };
    append_json(&db, &format!("prediction-{m}"), MAINTENANCE_PREDICTED, &p).await;
    readmodels::catch_up(&db, ProjectionConfig::new(1)).await.unwrap();
    let after = snapshot(&db).await;

    let client = db.client().await.unwrap();
    let mut followed = 0;
    for ((table, old), (_, new)) in before.iter().zip(&after) {
        // Raw history and aggregates are read by time range, not followed.
        let Some(model) = ReadModel::from_name(table) else { continue };
        followed += 1;
        let returned = readmodel_contract::read_since(&client, model, n).await.unwrap().row_count();
        let old: Vec<&Value> = old.as_array().unwrap().iter().collect();
        let changed = new.as_array().unwrap().iter().filter(|row| !old.contains(row)).count();
        assert_eq!(returned, changed, "{table}: since({n}) returned {returned} rows, {changed} changed");
    }
    // The node's task states are followed too, but not derived from the log (their
    // positions are their own): `plant/tests/health.rs` checks them.
    let from_the_log = ReadModel::ALL.iter().filter(|m| **m != ReadModel::NodeTasks).count();
    assert_eq!(followed, from_the_log, "every table a reader follows was checked");
    let sensors = readmodel_contract::read_since(&client, ReadModel::SensorState, n).await.unwrap();
    assert_eq!(sensors.sensor_state.len(), 7);
}

#[tokio::test]
async fn the_reader_role_reads_read_models_and_listens_and_nothing_else() {
    let db = plant_db().await;
    configure(&db).await;
    readings(&db, &all_sensors_at(0)).await;
    readmodels::catch_up(&db, ProjectionConfig::new(1)).await.unwrap();
    let client = db.client().await.unwrap();
    client
        .batch_execute("CREATE SCHEMA IF NOT EXISTS ingest; CREATE TABLE IF NOT EXISTS ingest.secret (v int)")
        .await
        .unwrap();
    readmodels::set_reader_password(&db, "reader-test-password-0123456789").await.unwrap();
    let config = db.config();
    let url = format!(
        "postgresql://floorwatch_reader:reader-test-password-0123456789@{}:{}/{}",
        match &config.get_hosts()[0] {
            tokio_postgres::config::Host::Tcp(h) => h.clone(),
            tokio_postgres::config::Host::Unix(p) => p.display().to_string(),
        },
        config.get_ports()[0],
        config.get_dbname().unwrap()
    );
    let reader = pgcluster::testdb::connect(&url).await.unwrap();

    let n: i64 = reader.query_one("SELECT count(*) FROM readmodel.sensor_state", &[]).await.unwrap().get(0);
    assert_eq!(n, i64::from(SENSORS));
    reader.batch_execute("LISTEN readmodel").await.unwrap();
    for forbidden in [
        "SELECT * FROM eventlog.events",
        "SELECT * FROM eventlog.telemetry",
        "SELECT * FROM eventlog.checkpoints",
        "SELECT * FROM ingest.secret",
        "INSERT INTO readmodel.audit VALUES (999999, now(), 'x-1', 'X', NULL, NULL, 'x')",
        "UPDATE readmodel.sensor_state SET value = 0",
        "DELETE FROM readmodel.anomalies",
        "TRUNCATE readmodel.plant",
        "CREATE TEMP TABLE t (v int)",
        "CREATE TABLE public.t (v int)",
        "CREATE TABLE readmodel.t (v int)",
        "SELECT readmodel.ensure_day_partition('sensor_history', '2031-01-01')",
    ] {
        let result = reader.batch_execute(forbidden).await;
        assert!(result.is_err(), "the reader could run: {forbidden}");
    }
}
