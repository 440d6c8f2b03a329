//! Time travel against a real PostgreSQL: the plant served for an instant equals the live
//! read models as they were recorded at that instant, on both clocks, across a gateway
//! outage whose readings arrive late.
#![allow(clippy::unwrap_used)]

mod common;

use chrono::{DateTime, Duration, Utc};
use common::*;
use domain::events::*;
use eventlog::Database;
use readmodel_contract::{ReadModel, read_since};
use readmodels::ProjectionConfig;
use readmodels::timetravel::{ChangeKind, Clock, Floor, floor_at};
use telemetry::Reading;

/// Seconds of plant time between two steps of the factory.
const STEP_S: i64 = 15;
const STEPS: i64 = 60;
/// Line 2's gateway is cut off for these steps; what it measured arrives at `BACKLOG_AT`,
/// more than the late grace (5 minutes) after it was taken.
const OUTAGE: std::ops::RangeInclusive<i64> = 10..=40;
const BACKLOG_AT: i64 = 45;
/// The moments the live tables are captured.
const CAPTURES: [i64; 7] = [0, 5, 15, 30, 44, 46, 59];

fn at(step: i64) -> DateTime<Utc> {
    t0() + Duration::seconds(step * STEP_S)
}

fn small_batches_and_checkpoints() -> ProjectionConfig {
    ProjectionConfig { batch_max_events: 3, checkpoint_every_events: 7, ..ProjectionConfig::new(1) }
}

fn layout_event_30s() -> LayoutConfigured {
    LayoutConfigured { stale_after_ms: 30_000, ..layout_event() }
}

/// Every sensor's reading at a step: inside its range, except a few that wander out now
/// and then (warnings), and one sensor that stops for a while (stale).
fn step_readings(step: i64) -> Vec<Reading> {
    let l = layout();
    let ts = at(step).timestamp_millis();
    l.sensors()
        .iter()
        .enumerate()
        .filter(|(i, _)| !(*i == 7 && (20..30).contains(&step)))
        .map(|(i, s)| {
            let (lo, hi) = l.sensor(s.id).unwrap().normal_range();
            let out = (i as i64 + step) % 23 == 0;
            let v = if out { hi + (hi - lo) } else { lo + (hi - lo) * ((i as i64 * 7 + step) % 10) as f64 / 10.0 };
            Reading::new(s.id, ts, f64::from(v as f32))
        })
        .collect()
}

/// The layout's line of a reading.
fn on_line(r: &Reading, line: usize) -> bool {
    layout().lines()[line].sensor_ids.contains(&r.sensor)
}

struct Domain {
    /// Steps at which an event happens, with its stream, type and body.
    events: Vec<(i64, String, &'static str, serde_json::Value)>,
}

fn domain_events() -> Domain {
    let l = layout();
    let m1 = &l.machines()[1];
    let line2_machine = l.machines().iter().find(|m| m.line == 1).unwrap();
    let ev = |m: &layout::Machine, step: i64| {
        let s = &l.sensors_in(&m.sensors)[0];
        vec![SensorEvidence {
            sensor: s.id,
            name: s.name.clone(),
            kind: "TEMP".into(),
            unit: "°C".into(),
            at: at(step),
            observed: 91.3,
            expected: 40.0,
            lower: 36.0,
            upper: 44.0,
            test: "level_shift".into(),
            score: 0.99,
            related: false,
        }]
    };
    let json = |v: serde_json::Result<serde_json::Value>| v.unwrap();
    let mut events = Vec::new();
    let detected = |id: &str, m: &layout::Machine, step: i64| AnomalyDetected {
        anomaly_id: id.into(),
        machine_id: m.id.clone(),
        line_id: l.lines()[m.line].id.clone(),
        started_at: at(step),
        severity: Severity::Major,
        score: 0.93,
        sensors: ev(m, step),
        explanation: "level shift".into(),
        detector_version: "test".into(),
    };
    events.push((3, "anomaly-A1".to_owned(), ANOMALY_DETECTED, json(serde_json::to_value(detected("A1", m1, 3)))));
    let ack = AnomalyAcknowledged { anomaly_id: "A1".into(), by: "Ana Lima".into(), note: "on it".into(), at: at(8) };
    events.push((8, "anomaly-A1".into(), ANOMALY_ACKNOWLEDGED, json(serde_json::to_value(&ack))));
    let predicted = MaintenancePredicted {
        machine_id: m1.id.clone(),
        at: at(12),
        days: 5.0,
        lower_days: 3.0,
        upper_days: 8.0,
        model_version: "m1".into(),
        failure_probability: Some(0.4),
        due: Some(true),
    };
    events.push((12, format!("prediction-{}", m1.id), MAINTENANCE_PREDICTED, json(serde_json::to_value(&predicted))));
    // Found in line 2's readings while its gateway was cut off: known only after the backlog.
    events.push((
        20,
        "anomaly-A2".into(),
        ANOMALY_DETECTED,
        json(serde_json::to_value(detected("A2", line2_machine, 20))),
    ));
    events.push((
        25,
        "anomaly-A1".into(),
        ANOMALY_RESOLVED,
        json(serde_json::to_value(AnomalyResolved { anomaly_id: "A1".into(), at: at(25) })),
    ));
    let scheduled = MaintenanceScheduled {
        order_id: "WO-1".into(),
        machine_id: m1.id.clone(),
        kind: OrderKind::Planned,
        scheduled_for: at(50),
        by: "Bo Berg".into(),
        note: "bearings".into(),
        at: at(35),
    };
    events.push((35, format!("maintenance-{}", m1.id), MAINTENANCE_SCHEDULED, json(serde_json::to_value(&scheduled))));
    let shelved = AnomalyShelved {
        anomaly_id: "A2".into(),
        by: "Ana Lima".into(),
        until: at(80),
        note: "known cause".into(),
        at: at(50),
    };
    events.push((50, "anomaly-A2".into(), ANOMALY_SHELVED, json(serde_json::to_value(&shelved))));
    let performed = MaintenancePerformed {
        order_id: "WO-1".into(),
        machine_id: m1.id.clone(),
        performed_at: at(52),
        by: "Bo Berg".into(),
        note: "done".into(),
        at: at(52),
    };
    events.push((52, format!("maintenance-{}", m1.id), MAINTENANCE_PERFORMED, json(serde_json::to_value(&performed))));
    Domain { events }
}

/// The live read models the floor shows, as a reader reads them, in key order.
async fn live_floor(db: &Database) -> Floor {
    let client = db.client().await.unwrap();
    let read = async |m| read_since(&client, m, 0).await.unwrap();
    let mut plant = read(ReadModel::PlantStatus).await.plant_status;
    let mut f = Floor {
        clock: Clock::Known,
        at_ms: 0,
        through_position: 0,
        plant_status: plant.pop(),
        line_status: read(ReadModel::LineStatus).await.line_status,
        machine_status: read(ReadModel::MachineStatus).await.machine_status,
        sensor_state: read(ReadModel::SensorState).await.sensor_state,
        anomalies: read(ReadModel::Anomalies).await.anomalies,
        maintenance: read(ReadModel::Maintenance).await.maintenance,
    };
    f.line_status.sort_by(|a, b| a.id.cmp(&b.id));
    f.machine_status.sort_by(|a, b| a.machine_id.cmp(&b.machine_id));
    f.sensor_state.sort_by_key(|s| s.sensor_id);
    f.anomalies.sort_by(|a, b| a.anomaly_id.cmp(&b.anomaly_id));
    f.maintenance.sort_by(|a, b| a.machine_id.cmp(&b.machine_id));
    f
}

/// The rows without what only the instant's question sets, and optionally without
/// positions (which differ between two logs holding the same facts in another order).
fn comparable(mut f: Floor, positions: bool) -> Floor {
    f.clock = Clock::Known;
    f.at_ms = 0;
    f.through_position = 0;
    if !positions {
        f.plant_status.iter_mut().for_each(|r| r.position = 0);
        f.line_status.iter_mut().for_each(|r| r.position = 0);
        f.machine_status.iter_mut().for_each(|r| r.position = 0);
        f.sensor_state.iter_mut().for_each(|r| r.position = 0);
        f.anomalies.iter_mut().for_each(|r| r.position = 0);
        f.maintenance.iter_mut().for_each(|r| r.position = 0);
    }
    f
}

fn assert_floor_eq(what: &str, served: Floor, live: Floor) {
    if served == live {
        return;
    }
    let s = serde_json::to_value(&served).unwrap();
    let l = serde_json::to_value(&live).unwrap();
    for (k, v) in s.as_object().unwrap() {
        if l[k] != *v {
            let (a, b) = (
                v.as_array().cloned().unwrap_or_else(|| vec![v.clone()]),
                l[k].as_array().cloned().unwrap_or_else(|| vec![l[k].clone()]),
            );
            let first = a.iter().zip(&b).find(|(x, y)| x != y);
            panic!(
                "{what}: {k} differs ({} vs {} rows); first difference (served, live):\n{first:#?}",
                a.len(),
                b.len()
            );
        }
    }
    panic!("{what}: floors differ");
}

/// The database's clock, ms: the clock `recorded_at` is stamped with.
async fn db_now_ms(db: &Database) -> i64 {
    let client = db.client().await.unwrap();
    client.query_one("SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint", &[]).await.unwrap().get(0)
}

async fn append(db: &Database, stream: &str, event_type: &str, body: &serde_json::Value) {
    append_json(db, stream, event_type, body).await;
}

/// Runs the factory on `db`. With `outage`, line 2's gateway is cut off during `OUTAGE`
/// and uploads what it measured at `BACKLOG_AT`, and the anomaly found in it is reported
/// after that. At each capture step, once the read models have caught up, `capture` is
/// called with the step.
async fn run_factory(db: &Database, outage: bool, mut capture: impl AsyncFnMut(i64)) {
    append(db, "plant-P1", LAYOUT_CONFIGURED, &serde_json::to_value(layout_event_30s()).unwrap()).await;
    let domain = domain_events();
    let mut held: Vec<Vec<Reading>> = Vec::new();
    for step in 0..STEPS {
        let mut now = step_readings(step);
        if outage && OUTAGE.contains(&step) {
            held.push(now.iter().copied().filter(|r| on_line(r, 1)).collect());
            now.retain(|r| !on_line(r, 1));
        }
        readings(db, &now).await;
        if outage && step == BACKLOG_AT {
            for batch in held.drain(..) {
                readings(db, &batch).await;
            }
        }
        for (when, stream, event_type, body) in &domain.events {
            // What the monitor finds in the backlog it reports once the backlog is in.
            let found_in_backlog = outage && stream == "anomaly-A2" && OUTAGE.contains(when);
            let reported = if found_in_backlog { BACKLOG_AT } else { *when };
            if reported == step {
                append(db, stream, event_type, body).await;
            }
        }
        if CAPTURES.contains(&step) {
            readmodels::catch_up(db, small_batches_and_checkpoints()).await.unwrap();
            capture(step).await;
        }
    }
}

#[tokio::test]
async fn the_plant_served_for_an_instant_equals_the_live_read_models_recorded_then_on_both_clocks() {
    // The factory as it happened: every upload on time. Its live tables at each step are
    // the plant as it happened at that step's time.
    let on_time = plant_db().await;
    let mut happened = Vec::new();
    run_factory(&on_time, false, async |step| happened.push((step, live_floor(&on_time).await))).await;

    // The same factory with line 2's gateway cut off: its live tables at each moment are
    // what a supervisor saw then.
    let db = plant_db().await;
    let mut known = Vec::new();
    run_factory(&db, true, async |step| {
        let floor = live_floor(&db).await;
        // Appends of the next step start after this instant.
        let t = db_now_ms(&db).await;
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        known.push((step, t, floor));
    })
    .await;
    readmodels::catch_up(&db, small_batches_and_checkpoints()).await.unwrap();

    let client = db.client().await.unwrap();
    let late: i64 = client.query_one("SELECT count(*) FROM readmodel.timetravel_late", &[]).await.unwrap().get(0);
    let checkpoints: i64 =
        client.query_one("SELECT count(*) FROM readmodel.timetravel_checkpoints", &[]).await.unwrap().get(0);
    assert!(late >= 10, "the backlog and its anomaly are listed as late: {late}");
    assert!(checkpoints > 5, "the live projection froze its model along the way: {checkpoints}");

    for (step, t, live) in known {
        let (served, r) = floor_at(&client, 1, Clock::Known, t, None).await.unwrap();
        assert_eq!(served.clock, Clock::Known);
        if step == 30 {
            // A supervisor saw line 2 stale and did not see the anomaly in its backlog.
            assert!(!served.anomalies.iter().any(|a| a.anomaly_id == "A2"));
            assert!(served.plant_status.as_ref().unwrap().stale > 50, "{:?}", served.plant_status);
        }
        assert_floor_eq(&format!("as we knew it at step {step}"), comparable(served, true), comparable(live, true));
        if step > 5 {
            assert!(r.checkpoint > 0, "step {step} starts from a checkpoint");
        }
    }
    for (step, live) in happened {
        let instant = at(step).timestamp_millis();
        let (served, _) = floor_at(&client, 1, Clock::Happened, instant, None).await.unwrap();
        assert_floor_eq(&format!("as it happened at step {step}"), comparable(served, false), comparable(live, false));
    }

    // By its own time line 2 reported through its gateway's outage, with the anomaly in it;
    // only the sensor that stopped is stale.
    let during = at(28).timestamp_millis();
    let (as_happened, _) = floor_at(&client, 1, Clock::Happened, during, None).await.unwrap();
    assert!(as_happened.anomalies.iter().any(|a| a.anomaly_id == "A2"));
    assert_eq!(as_happened.plant_status.as_ref().unwrap().stale, 1, "{:?}", as_happened.plant_status);
}

#[tokio::test]
async fn instants_before_the_log_and_after_it_are_an_empty_plant_and_the_newest() {
    let db = plant_db().await;
    run_factory(&db, false, async |_| {}).await;
    readmodels::catch_up(&db, small_batches_and_checkpoints()).await.unwrap();
    let client = db.client().await.unwrap();
    // Before anything was recorded there was nothing; before any reading was taken the
    // plant had its layout and no values yet.
    let (before, r) = floor_at(&client, 1, Clock::Known, i64::MIN, None).await.unwrap();
    assert_eq!((before.plant_status, before.sensor_state.len(), r.through), (None, 0, 0));
    let (before, _) = floor_at(&client, 1, Clock::Happened, i64::MIN, None).await.unwrap();
    assert_eq!((before.plant_status.map(|p| p.reporting), before.sensor_state.len()), (Some(0), 0));
    assert!(before.anomalies.is_empty() && before.maintenance.is_empty());
    let live = live_floor(&db).await;
    for clock in [Clock::Known, Clock::Happened] {
        let (after, _) = floor_at(&client, 1, clock, i64::MAX, None).await.unwrap();
        assert_floor_eq(&format!("{clock:?} after the log"), comparable(after, true), comparable(live.clone(), true));
    }
}

#[tokio::test]
async fn what_changed_between_two_instants_and_the_shift_report_come_from_the_events() {
    let db = plant_db().await;
    run_factory(&db, false, async |_| {}).await;
    readmodels::catch_up(&db, small_batches_and_checkpoints()).await.unwrap();
    let client = db.client().await.unwrap();
    let l = layout();
    let m1 = l.machines()[1].id.clone();

    let between = readmodels::timetravel::between(
        &client,
        1,
        Clock::Happened,
        at(2).timestamp_millis(),
        at(28).timestamp_millis(),
        None,
    )
    .await
    .unwrap();
    let events: Vec<(ChangeKind, Option<&str>, Option<&str>)> = between
        .diff
        .changes
        .iter()
        .filter(|c| !matches!(c.kind, ChangeKind::SensorState | ChangeKind::MachineStatus))
        .map(|c| (c.kind, c.anomaly_id.as_deref(), c.by.as_deref()))
        .collect();
    assert_eq!(
        events,
        [
            (ChangeKind::AnomalyOpened, Some("A1"), None),
            (ChangeKind::AnomalyAcknowledged, Some("A1"), Some("Ana Lima")),
            (ChangeKind::PredictionDue, None, None),
            (ChangeKind::AnomalyOpened, Some("A2"), None),
            (ChangeKind::AnomalyResolved, Some("A1"), None),
        ]
    );
    let times: Vec<i64> = between.diff.changes.iter().map(|c| c.at_ms).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "in time order");
    let a1 = between.diff.changes.iter().find(|c| c.kind == ChangeKind::AnomalyAcknowledged).unwrap();
    assert_eq!((a1.machine_id.as_deref(), a1.at_ms), (Some(m1.as_str()), at(8).timestamp_millis()));
    // The sensor that stopped reporting is stale at the later instant.
    let stopped = l.sensors()[7].id as i32;
    assert!(between.diff.changes.iter().any(|c| c.kind == ChangeKind::SensorState
        && c.sensor_id == Some(stopped)
        && c.to.as_deref() == Some("stale")));
    // Nothing changes between an instant and itself.
    let same = readmodels::timetravel::between(&client, 1, Clock::Known, i64::MAX, i64::MAX, None).await.unwrap();
    assert!(same.diff.changes.is_empty(), "{:?}", same.diff.changes);

    let report = readmodels::timetravel::shift_report(
        &client,
        1,
        Clock::Happened,
        at(0).timestamp_millis(),
        at(55).timestamp_millis(),
        None,
    )
    .await
    .unwrap();
    let raised: Vec<(&str, &str, Option<f64>)> = report
        .anomalies
        .iter()
        .map(|a| (a.anomaly_id.as_str(), a.state_at_end.as_str(), a.time_to_acknowledge_s))
        .collect();
    assert_eq!(raised, [("A1", "resolved", Some(75.0)), ("A2", "shelved", None)]);
    assert_eq!(report.mean_time_to_acknowledge_s, Some(75.0));
    let notes: Vec<(&str, &str)> = report.notes.iter().map(|n| (n.by.as_str(), n.text.as_str())).collect();
    assert_eq!(notes, [("Ana Lima", "on it"), ("Ana Lima", "known cause"), ("Bo Berg", "done")]);
    assert_eq!(report.services.len(), 1);
    assert_eq!(report.predictions.iter().map(|p| p.kind).collect::<Vec<_>>(), [ChangeKind::PredictionDue]);
    assert_eq!(report.open_anomalies.iter().map(|a| a.anomaly_id.as_str()).collect::<Vec<_>>(), ["A2"]);
    assert!(report.open_work_orders.is_empty(), "the order was performed in the shift");
    assert_eq!(report.machines_due, [m1]);
    let csv = report.to_csv().unwrap();
    let mut rows = csv::Reader::from_reader(csv.as_bytes());
    let sections: Vec<String> = rows.records().map(|r| r.unwrap()[0].to_owned()).collect();
    for s in ["anomaly", "service", "prediction", "note", "open_anomaly", "machine_due"] {
        assert!(sections.iter().any(|x| x == s), "{s} in {csv}");
    }
}

#[tokio::test]
async fn pruning_with_the_retention_forgets_old_checkpoints_and_late_events_and_no_instant_inside_changes() {
    let db = plant_db().await;
    let mut known = Vec::new();
    run_factory(&db, true, async |step| {
        let floor = live_floor(&db).await;
        let t = db_now_ms(&db).await;
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        known.push((step, t, floor));
    })
    .await;
    readmodels::catch_up(&db, small_batches_and_checkpoints()).await.unwrap();
    let client = db.client().await.unwrap();
    let count = async |table: &str| -> i64 {
        client.query_one(&format!("SELECT count(*) FROM readmodel.{table}"), &[]).await.unwrap().get(0)
    };
    let (checkpoints, late) = (count("timetravel_checkpoints").await, count("timetravel_late").await);
    assert!(late >= 10 && checkpoints > 5, "{checkpoints} checkpoints, {late} late events");

    // The window starts just after the backlog came in (step 46): everything the
    // reconstructions inside it may start from stays; the rest goes.
    let cutoff_ms = known.iter().find(|(s, ..)| *s == 46).unwrap().1;
    let inside: Vec<(Clock, i64)> = known
        .iter()
        .filter(|(_, t, _)| *t >= cutoff_ms)
        .flat_map(|(_, t, _)| [(Clock::Known, *t), (Clock::Known, *t + 1), (Clock::Happened, *t)])
        .chain([(Clock::Known, cutoff_ms), (Clock::Happened, cutoff_ms), (Clock::Known, i64::MAX)])
        .collect();
    let mut before = Vec::new();
    for (clock, t) in &inside {
        before.push(floor_at(&client, 1, *clock, *t, None).await.unwrap().0);
    }
    let cutoff = DateTime::from_timestamp_millis(cutoff_ms).unwrap();
    let pruned = readmodels::timetravel::prune(&db, cutoff).await.unwrap();
    let (checkpoints_after, late_after) = (count("timetravel_checkpoints").await, count("timetravel_late").await);
    assert_eq!(pruned.checkpoints as i64, checkpoints - checkpoints_after);
    assert_eq!(pruned.late_events as i64, late - late_after);
    assert!(pruned.checkpoints > 0, "checkpoints before the window go: {pruned:?}");
    assert!(late_after < late, "the backlog came in before the window: {pruned:?}");
    let late_before_kept: i64 = client
        .query_one(
            "SELECT count(*) FROM readmodel.timetravel_late
              WHERE position <= (SELECT min(position) FROM readmodel.timetravel_checkpoints)",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(late_before_kept, 0, "no late event before the oldest checkpoint kept is left");
    // The checkpoint an instant at the cutoff starts from is kept.
    let oldest_kept: i64 = client
        .query_one("SELECT min(recorded_through_ms) FROM readmodel.timetravel_checkpoints", &[])
        .await
        .unwrap()
        .get(0);
    assert!(oldest_kept <= cutoff_ms, "a checkpoint at or before the cutoff is kept");

    for ((clock, t), was) in inside.iter().zip(before) {
        let (now, r) = floor_at(&client, 1, *clock, *t, None).await.unwrap();
        assert_floor_eq(&format!("{clock:?} at {t} after pruning"), now, was);
        assert!(r.checkpoint > 0, "{clock:?} at {t} still starts from a checkpoint");
    }
    // And still equal to what the live read models showed then.
    for (step, t, live) in known.into_iter().filter(|(_, t, _)| *t >= cutoff_ms) {
        let (served, _) = floor_at(&client, 1, Clock::Known, t, None).await.unwrap();
        assert_floor_eq(
            &format!("as we knew it at step {step}, pruned"),
            comparable(served, true),
            comparable(live, true),
        );
    }
    // Pruning again with the same window forgets nothing more.
    assert_eq!(readmodels::timetravel::prune(&db, cutoff).await.unwrap(), Default::default());
}

/// Time travel's checkpoints of the log in `db` as a live projection folding it in
/// batches of `batch` events from the start writes them (in a transaction rolled back
/// after): (position, the three clocks, the frozen model's digest).
async fn checkpoints_folded_in_batches_of(db: &Database, batch: usize) -> Vec<(i64, i64, i64, i64, String)> {
    use eventlog::Handler;
    let mut client = db.client().await.unwrap();
    let tx = client.transaction().await.unwrap();
    tx.batch_execute(include_str!("../sql/reset_live.sql")).await.unwrap();
    let every = small_batches_and_checkpoints().checkpoint_every_events;
    let mut projection = readmodels::LiveProjection::with_checkpoints(1, every);
    let mut after = 0;
    loop {
        let events = eventlog::read_all(&tx, after, batch, None).await.unwrap();
        let Some(last) = events.last() else { break };
        after = last.position;
        projection.apply(&tx, &events).await.unwrap();
    }
    let rows = checkpoint_rows(&tx).await;
    tx.rollback().await.unwrap();
    rows
}

async fn checkpoint_rows(client: &impl eventlog::GenericClient) -> Vec<(i64, i64, i64, i64, String)> {
    client
        .query(
            "SELECT position, recorded_through_ms, happened_through_ms, started_through_ms, md5(state)
               FROM readmodel.timetravel_checkpoints ORDER BY position",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4)))
        .collect()
}

#[tokio::test]
async fn checkpoints_land_at_exact_multiples_of_the_interval_whatever_the_batches() {
    let db = plant_db().await;
    // Caught up now and then while the factory runs (each time loading the live model from
    // its rows, as after a restart), in batches of 3.
    run_factory(&db, true, async |_| {}).await;
    readmodels::catch_up(&db, small_batches_and_checkpoints()).await.unwrap();
    let client = db.client().await.unwrap();
    let live = checkpoint_rows(&client).await;
    let head = eventlog::head_position(&client).await.unwrap();
    let every = small_batches_and_checkpoints().checkpoint_every_events;
    let multiples: Vec<i64> = (1..=head / every).map(|k| k * every).collect();
    assert!(multiples.len() > 10, "a log of {head} positions");
    assert_eq!(live.iter().map(|c| c.0).collect::<Vec<_>>(), multiples, "live checkpoints at the multiples of {every}");
    for batch in [1, 2, every as usize, every as usize + 1, 50, 5_000] {
        let folded = checkpoints_folded_in_batches_of(&db, batch).await;
        assert_eq!(folded, live, "the checkpoints of a fold in batches of {batch} equal the live ones");
    }
    // A rebuild (batches of its own) writes the same rows.
    readmodels::rebuild(&db, small_batches_and_checkpoints()).await.unwrap();
    assert_eq!(checkpoint_rows(&client).await, live, "a rebuild's checkpoints equal the live ones");
}
