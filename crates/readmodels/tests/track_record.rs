//! The maintenance track record on a real PostgreSQL: given predictions, failures and
//! services in the log, the rows per machine, machine type and plant equal the pure fold's
//! figures as readers read them (`readmodel_contract`); "since N" returns what changed;
//! stopping the projection at random instants and restarting it (also from a snapshot that
//! cannot be read) gives the same rows; events about unknown machines and hostile values
//! never reach a row; the reader role can read the record but not the fold's state.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use chrono::{DateTime, TimeZone, Utc};
use domain::events::*;
use eventlog::{Append, Database, ExpectedVersion, Metadata, NewEvent, StreamName, Subscription, SubscriptionConfig};
use maintenance::{TrackFigures, TrackRecord, TrackScope, TrackedPrediction};
use rand::{Rng, SeedableRng};
use readmodel_contract::{ReadModel, read_since};
use readmodels::track::{self, CATEGORIES, TRACK, TrackConfig, TrackRecordProjection};

const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 86_400_000;

fn start_ms() -> i64 {
    Utc.with_ymd_and_hms(2026, 2, 1, 0, 0, 0).unwrap().timestamp_millis()
}

fn at(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap()
}

fn layout_event() -> LayoutConfigured {
    LayoutConfigured {
        plant: 1,
        layout_toml: layout::DEFAULT_LAYOUT_TOML.into(),
        plants: Some(1),
        lines_per_plant: Some(1),
        sensors_per_plant: Some(80),
        stale_after_ms: 10_000,
    }
}

async fn plant_db() -> Database {
    let test_db = pgcluster::testdb::TestDb::new().await.unwrap();
    let db = Database::new(&test_db.url, 8).unwrap();
    readmodels::migrate(&db).await.unwrap();
    append(&db, "plant-P1", LAYOUT_CONFIGURED, &serde_json::to_value(layout_event()).unwrap()).await;
    db
}

async fn append(db: &Database, stream: &str, event_type: &str, body: &serde_json::Value) {
    let e = NewEvent::json(event_type, 1, body, Metadata::by("test")).unwrap();
    let a = Append::new(StreamName::new(stream).unwrap(), ExpectedVersion::Any, vec![e]);
    eventlog::append_and_commit(db, &[a]).await.unwrap();
}

/// What happened, in log order: a machine's prediction, failure or service.
#[derive(Debug, Clone)]
enum Happened {
    Predicted(MaintenancePredicted),
    Failed(String, i64),
    Serviced(String, i64),
}

/// Three machines over 24 days, predicted every 30 minutes: the first wears out and fails
/// on day 18 (due from 6 days before), the second is serviced on day 10 after a due spell
/// and keeps running, the third never alerts; each prediction sometimes from model "b".
fn history(machines: &[String]) -> Vec<Happened> {
    let mut out = Vec::new();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
    for step in 0..(24 * 48) {
        let t = start_ms() + step * HOUR_MS / 2;
        let day = (t - start_ms()) as f64 / DAY_MS as f64;
        for (i, m) in machines.iter().enumerate() {
            let days = match i {
                0 if day < 18.0 => 18.0 - day + rng.gen_range(-0.5..0.5),
                0 => continue,
                1 if day < 10.0 => (9.0 - day).max(0.0) + 2.0,
                1 => 40.0 - (day - 10.0),
                _ => 30.0,
            };
            let days: f64 = days.max(0.0);
            out.push(Happened::Predicted(MaintenancePredicted {
                machine_id: m.clone(),
                at: at(t),
                days,
                lower_days: (days - 2.0).max(0.0),
                upper_days: days + 3.0,
                model_version: if step % 7 == 0 { "rul-b".into() } else { "rul-a".into() },
                failure_probability: Some(if days < 7.0 { 0.6 } else { 0.05 }),
                due: Some(days < 6.0),
            }));
        }
        if step == 18 * 48 {
            out.push(Happened::Failed(machines[0].clone(), t));
        }
        if step == 10 * 48 {
            out.push(Happened::Serviced(machines[1].clone(), t));
        }
    }
    out
}

async fn write(db: &Database, events: &[Happened]) {
    for chunk in events.chunks(200) {
        let mut appends = Vec::new();
        for h in chunk {
            let (stream, event) = match h {
                Happened::Predicted(p) => (
                    format!("prediction-{}", p.machine_id),
                    NewEvent::json(MAINTENANCE_PREDICTED, 1, p, Metadata::by("scorer")).unwrap(),
                ),
                Happened::Failed(m, t) => {
                    let body = MachineFailed { machine_id: m.clone(), at: at(*t), source: "gateway:P1-L01".into() };
                    (format!("machine-{m}"), NewEvent::json(MACHINE_FAILED, 1, &body, Metadata::by("gw")).unwrap())
                }
                Happened::Serviced(m, t) => {
                    let body = MaintenancePerformed {
                        order_id: format!("wo-{m}-{t}"),
                        machine_id: m.clone(),
                        performed_at: at(*t),
                        by: "crew".into(),
                        note: String::new(),
                        at: at(*t),
                    };
                    (
                        format!("maintenance-{m}"),
                        NewEvent::json(MAINTENANCE_PERFORMED, 1, &body, Metadata::by("crew")).unwrap(),
                    )
                }
            };
            appends.push(Append::new(StreamName::new(&stream).unwrap(), ExpectedVersion::Any, vec![event]));
        }
        eventlog::append_and_commit(db, &appends).await.unwrap();
    }
}

/// The pure fold over the same history, as the projection must hold it.
fn folded(events: &[Happened], types: &BTreeMap<String, String>) -> TrackRecord {
    let mut record = TrackRecord::new(TrackConfig::new(1).options);
    let days = |ms: i64| maintenance::days_of_ms(ms);
    for h in events {
        match h {
            Happened::Predicted(p) => record.predicted(
                &p.machine_id,
                &types[&p.machine_id],
                &TrackedPrediction {
                    time: days(p.at.timestamp_millis()),
                    predicted: p.days,
                    lower: p.lower_days,
                    upper: p.upper_days,
                    alert: p.due.unwrap(),
                    model_version: p.model_version.clone(),
                },
            ),
            Happened::Failed(m, t) => record.failed(m, &types[m], days(*t)),
            Happened::Serviced(m, t) => record.serviced(m, &types[m], days(*t)),
        }
    }
    record
}

fn machines() -> (Vec<String>, BTreeMap<String, String>) {
    let types: BTreeMap<String, String> = track::machine_types(&layout_event()).unwrap().into_iter().collect();
    let ids: Vec<String> = types.keys().take(3).cloned().collect();
    (ids, types)
}

/// Every row of both tables, as text, in key order.
async fn rows(db: &Database) -> Vec<String> {
    let client = db.client().await.unwrap();
    let mut out = Vec::new();
    for r in client
        .query("SELECT t::text FROM readmodel.track_record t ORDER BY scope, id, model_version", &[])
        .await
        .unwrap()
    {
        out.push(r.get(0));
    }
    for r in client
        .query(
            "SELECT machine_id, failed_at::text, machine_type, model_version, caught, alert_lead_days, scored, covered, \
             at_leads::text, position FROM readmodel.track_failures ORDER BY 1, 2",
            &[],
        )
        .await
        .unwrap()
    {
        let key: (String, String, String, Option<String>) = (r.get(0), r.get(1), r.get(2), r.get(3));
        let record: (bool, Option<f64>, i64, i64, String, i64) =
            (r.get(4), r.get(5), r.get(6), r.get(7), r.get(8), r.get(9));
        out.push(format!("{key:?} {record:?}"));
    }
    out
}

fn config() -> TrackConfig {
    // Snapshots every 2 hours of prediction time, so restarts resume from them.
    TrackConfig { snapshot_every_ms: 2 * HOUR_MS, ..TrackConfig::new(1) }
}

#[tokio::test]
async fn given_predictions_failures_and_services_when_projecting_then_each_scope_holds_the_folds_figures() {
    let db = plant_db().await;
    let (ids, types) = machines();
    let events = history(&ids);
    write(&db, &events).await;
    track::catch_up(&db, config()).await.unwrap();
    let expected = folded(&events, &types);

    let client = db.client().await.unwrap();
    let stored = read_since(&client, ReadModel::TrackRecord, 0).await.unwrap().track_record;
    for (scope, kind, id) in [
        (TrackScope::Unit(ids[0].clone()), "machine", ids[0].clone()),
        (TrackScope::Unit(ids[1].clone()), "machine", ids[1].clone()),
        (TrackScope::Group(types[&ids[0]].clone()), "machine_type", types[&ids[0]].clone()),
        (TrackScope::All, "plant", "P1".to_string()),
    ] {
        let mut rows: Vec<_> = stored.iter().filter(|r| r.scope == kind && r.id == id).collect();
        rows.sort_by(|a, b| a.model_version.cmp(&b.model_version));
        let want = expected.figures(&scope);
        assert_eq!(rows.len(), want.len(), "{kind} {id}");
        for (row, (version, f)) in rows.iter().zip(want) {
            assert_eq!(row.model_version, version, "{kind} {id}");
            assert_eq!(counts(row), counts_of(f), "{kind} {id} {version}");
            assert!((row.judged_days - f.judged_time).abs() < 1e-9);
            assert_eq!(row.coverage.map(|c| (c * 1e9).round()), f.coverage().map(|c| (c * 1e9).round()));
            assert_eq!(row.mae_days.map(|c| (c * 1e9).round()), f.mae().map(|c| (c * 1e9).round()));
        }
    }
    let plant = expected.total(&TrackScope::All);
    assert_eq!((plant.failures, plant.caught), (1, 1));
    assert!(plant.alerts_without_failure > 0 && plant.false_alerts > 0, "{plant:?}");

    // The failure with what was predicted before it.
    let f = client
        .query_one("SELECT machine_id, caught, model_version, alert_lead_days, jsonb_array_length(at_leads) FROM readmodel.track_failures", &[])
        .await
        .unwrap();
    assert_eq!(f.get::<_, String>(0), ids[0]);
    assert!(f.get::<_, bool>(1));
    assert!(f.get::<_, Option<String>>(2).is_some());
    let lead: f64 = f.get(3);
    assert!((5.0..=6.5).contains(&lead), "due about 6 days before: {lead}");
    assert_eq!(f.get::<_, i32>(4), 4);
    // As readers get it.
    let failures = read_since(&client, ReadModel::TrackFailures, 0).await.unwrap().track_failures;
    assert_eq!(failures.len(), 1);
    assert!(failures[0].caught && failures[0].at_leads.as_array().is_some_and(|a| a.len() == 4));
}

/// The counts of a row, in one order.
fn counts(r: &readmodel_contract::TrackRecord) -> [i64; 11] {
    [
        r.failures,
        r.caught,
        r.watched,
        r.caught_watched,
        r.scored,
        r.covered,
        r.alerts,
        r.premature_alerts,
        r.alerts_without_failure,
        r.false_alerts,
        r.false_alert_onsets,
    ]
}

fn counts_of(f: &TrackFigures) -> [i64; 11] {
    [
        f.failures,
        f.caught,
        f.watched,
        f.caught_watched,
        f.scored,
        f.covered,
        f.alerts,
        f.premature_alerts,
        f.alerts_without_failure,
        f.false_alerts,
        f.false_alert_onsets,
    ]
    .map(|v| v as i64)
}

#[tokio::test]
async fn given_a_position_when_asking_what_changed_since_then_only_later_rows_come() {
    let db = plant_db().await;
    let (ids, _) = machines();
    let events = history(&ids);
    let (early, late) = events.split_at(events.len() / 2);
    write(&db, early).await;
    let n = track::catch_up(&db, config()).await.unwrap();
    let client = db.client().await.unwrap();
    let since = |n: i64| {
        let client = &client;
        async move {
            let a = read_since(client, ReadModel::TrackRecord, n).await.unwrap().track_record.len();
            let b = read_since(client, ReadModel::TrackFailures, n).await.unwrap().track_failures.len();
            (a, b)
        }
    };
    assert_eq!(since(n).await, (0, 0));
    write(&db, late).await;
    track::catch_up(&db, config()).await.unwrap();
    let (changed, failures) = since(n).await;
    assert!(changed > 0 && failures == 1, "{changed} {failures}");
    let (all, _) = since(0).await;
    assert!(all >= changed);
}

#[tokio::test]
async fn given_stops_at_random_instants_when_restarting_then_the_rows_equal_one_uninterrupted_fold() {
    let (ids, _) = machines();
    let events = history(&ids);
    let reference = plant_db().await;
    write(&reference, &events).await;
    track::catch_up(&reference, config()).await.unwrap();
    let want = rows(&reference).await;

    let db = plant_db().await;
    write(&db, &events).await;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
    let sub = |batch: usize| {
        Subscription::new(db.clone(), SubscriptionConfig::new(TRACK).categories(&CATEGORIES).batch_max_events(batch))
    };
    let mut stops = 0;
    loop {
        // A new process: fresh memory, a few batches, then killed (dropped mid-run).
        let mut handler = TrackRecordProjection::new(config());
        let subscription = sub(rng.gen_range(7..150));
        let mut client = db.client().await.unwrap();
        let mut cursor = None;
        let batches = rng.gen_range(1..6);
        let mut applied = 0;
        for _ in 0..batches {
            applied = subscription.apply_next_batch(&mut client, &mut handler, &mut cursor).await.unwrap();
            if applied == 0 {
                break;
            }
        }
        stops += 1;
        if applied == 0 {
            break;
        }
        if stops == 10 {
            // A snapshot from another build cannot be read: folded again from the start.
            db.client()
                .await
                .unwrap()
                .execute("UPDATE readmodel.track_state SET state = '\\x00ff'", &[])
                .await
                .unwrap();
        }
    }
    assert!(stops > 5, "the history took {stops} restarts");
    track::catch_up(&db, config()).await.unwrap();
    assert_eq!(rows(&db).await, want);

    // A rebuild gives the same rows too.
    track::rebuild(&db, config()).await.unwrap();
    assert_eq!(rows(&db).await, want);
}

#[tokio::test]
async fn given_hostile_events_when_projecting_then_they_are_left_out_and_the_projection_goes_on() {
    let db = plant_db().await;
    let (ids, _) = machines();
    let good = MaintenancePredicted {
        machine_id: ids[0].clone(),
        at: at(start_ms()),
        days: 3.0,
        lower_days: 1.0,
        upper_days: 5.0,
        model_version: "rul-a".into(),
        failure_probability: Some(0.4),
        due: Some(true),
    };
    let huge = "M".repeat(100_000);
    let hostile = [
        serde_json::json!({ "machine_id": "P9-L01-M001", "at": at(start_ms()), "days": 1.0, "lower_days": 0.0, "upper_days": 2.0, "model_version": "rul-a" }),
        serde_json::json!({ "machine_id": "P1-\u{7}", "at": at(start_ms()), "days": 1.0, "lower_days": 0.0, "upper_days": 2.0, "model_version": "rul-a" }),
        serde_json::json!({ "machine_id": huge, "at": at(start_ms()), "days": 1.0, "lower_days": 0.0, "upper_days": 2.0, "model_version": "rul-a" }),
        serde_json::json!({ "machine_id": ids[0], "at": at(start_ms()), "days": 1e300, "lower_days": 0.0, "upper_days": 1e308, "model_version": "rul-a" }),
        serde_json::json!({ "machine_id": ids[0], "at": at(start_ms()), "days": -5.0, "lower_days": -9.0, "upper_days": 2.0, "model_version": "rul-a" }),
        serde_json::json!({ "machine_id": ids[0], "at": at(start_ms()), "days": 1.0, "lower_days": 0.0, "upper_days": 2.0, "model_version": "rul-\u{1b}[2J" }),
        serde_json::json!({ "machine_id": ids[0], "at": "yesterday", "days": 1.0 }),
        serde_json::json!({ "machine_id": ids[0], "days": null }),
    ];
    for body in &hostile {
        append(&db, &format!("prediction-{}", ids[0]), MAINTENANCE_PREDICTED, body).await;
    }
    append(&db, &format!("machine-{}", ids[1]), MACHINE_FAILED, &serde_json::json!({ "machine_id": ids[1], "at": 17 }))
        .await;
    append(&db, &format!("prediction-{}", ids[0]), MAINTENANCE_PREDICTED, &serde_json::to_value(&good).unwrap()).await;
    let fail = MachineFailed { machine_id: ids[0].clone(), at: at(start_ms() + 2 * DAY_MS), source: "gw".into() };
    append(&db, &format!("machine-{}", ids[0]), MACHINE_FAILED, &serde_json::to_value(&fail).unwrap()).await;
    track::catch_up(&db, config()).await.unwrap();

    let client = db.client().await.unwrap();
    let rows: Vec<_> = read_since(&client, ReadModel::TrackRecord, 0)
        .await
        .unwrap()
        .track_record
        .into_iter()
        .filter(|r| r.scope == "machine" && r.id == ids[0])
        .collect();
    assert_eq!(rows.len(), 1, "{rows:?}");
    let f = &rows[0];
    // Only the good prediction counts: scored once, covered (2 days left, interval 1–5),
    // due but only 2 days ahead: not in time.
    assert_eq!((f.failures, f.scored, f.covered, f.caught), (1, 1, 1, 0));
    let ids_seen: i64 = client
        .query_one("SELECT count(DISTINCT id) FROM readmodel.track_record WHERE scope = 'machine'", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(ids_seen, 1);

    // The reader role reads the record, not the fold's state.
    client.batch_execute("SET ROLE floorwatch_reader").await.unwrap();
    assert!(client.query("SELECT * FROM readmodel.track_record", &[]).await.is_ok());
    assert!(client.query("SELECT * FROM readmodel.track_failures", &[]).await.is_ok());
    assert!(client.query("SELECT * FROM readmodel.track_state", &[]).await.is_err());
}
