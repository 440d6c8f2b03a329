//! The read models against a real PostgreSQL: given these events, when projected, then
//! these rows.
#![allow(clippy::unwrap_used)]

mod common;

use chrono::Duration;
use common::*;
use domain::events::*;
use readmodels::ProjectionConfig;
use serde_json::{Value, json};
use telemetry::Reading;

async fn rows(db: &eventlog::Database, sql: &str) -> Vec<Value> {
    let client = db.client().await.unwrap();
    let wrapped = format!("SELECT coalesce(json_agg(t), '[]') FROM ({sql}) t");
    let v: Value = client.query_one(&wrapped, &[]).await.unwrap().get(0);
    v.as_array().unwrap().clone()
}

async fn one(db: &eventlog::Database, sql: &str) -> Value {
    let mut r = rows(db, sql).await;
    assert_eq!(r.len(), 1, "{sql}: {r:?}");
    r.remove(0)
}

fn config() -> ProjectionConfig {
    ProjectionConfig::new(1)
}

fn evidence(sensor: u32, name: &str) -> SensorEvidence {
    SensorEvidence {
        sensor,
        name: name.into(),
        kind: "TEMP".into(),
        unit: "°C".into(),
        at: t0(),
        observed: 91.3,
        expected: 40.0,
        lower: 36.0,
        upper: 44.0,
        test: "level_shift".into(),
        score: 0.99,
        related: false,
    }
}

#[tokio::test]
async fn given_a_layout_and_readings_then_every_sensor_machine_line_and_the_plant_has_a_row() {
    let db = plant_db().await;
    configure(&db).await;
    let l = layout();
    let hot = l.sensors()[5].id;
    for s in 0..3 {
        let mut r = all_sensors_at(s);
        r.iter_mut().find(|r| r.sensor == hot).unwrap().value = 1e6; // far outside its range
        readings(&db, &r).await;
    }
    readmodels::catch_up(&db, config()).await.unwrap();

    assert_eq!(rows(&db, "SELECT * FROM readmodel.sensor_state").await.len(), SENSORS as usize);
    assert_eq!(rows(&db, "SELECT * FROM readmodel.sensors").await.len(), SENSORS as usize);
    let state = one(&db, &format!("SELECT value, status FROM readmodel.sensor_state WHERE sensor_id = {hot}")).await;
    assert_eq!((state["value"].as_f64(), state["status"].as_str()), (Some(1e6), Some("warning")));
    let machine = &l.machines()[l.sensor(hot).unwrap().sensor.machine];
    let m = one(
        &db,
        &format!(
            "SELECT status, warning, reporting, sensors FROM readmodel.machine_status WHERE machine_id = '{}'",
            machine.id
        ),
    )
    .await;
    assert_eq!(m["status"], "warning");
    assert_eq!(m["warning"], 1);
    assert_eq!(m["reporting"], m["sensors"]);
    let plant = one(&db, "SELECT sensors, reporting, stale, warning FROM readmodel.plant_status").await;
    assert_eq!(plant, json!({ "sensors": SENSORS, "reporting": SENSORS, "stale": 0, "warning": 1 }));
    let rate = one(&db, "SELECT readings_per_s FROM readmodel.plant_status").await["readings_per_s"].as_f64();
    assert_eq!(rate, Some(f64::from(SENSORS)));
    let lines = rows(&db, "SELECT readings_per_s FROM readmodel.line_status").await;
    let per_line: f64 = lines.iter().map(|l| l["readings_per_s"].as_f64().unwrap()).sum();
    assert_eq!(per_line, f64::from(SENSORS));
}

#[tokio::test]
async fn a_sensor_that_stops_reporting_goes_stale_and_recovers() {
    let db = plant_db().await;
    configure(&db).await;
    let quiet = layout().sensors()[0].id;
    for s in 0..25 {
        let r: Vec<Reading> = all_sensors_at(s).into_iter().filter(|r| r.sensor != quiet || s < 5).collect();
        readings(&db, &r).await;
    }
    readmodels::catch_up(&db, config()).await.unwrap();
    let state = one(&db, &format!("SELECT status FROM readmodel.sensor_state WHERE sensor_id = {quiet}")).await;
    assert_eq!(state["status"], "stale");
    let plant = one(&db, "SELECT stale, reporting FROM readmodel.plant_status").await;
    assert_eq!(plant, json!({ "stale": 1, "reporting": SENSORS - 1 }));

    readings(&db, &all_sensors_at(26)).await;
    readmodels::catch_up(&db, config()).await.unwrap();
    let state = one(&db, &format!("SELECT status FROM readmodel.sensor_state WHERE sensor_id = {quiet}")).await;
    assert_eq!(state["status"], "ok");
    assert_eq!(one(&db, "SELECT stale FROM readmodel.plant_status").await["stale"], 0);
}

#[tokio::test]
async fn an_anomaly_colours_its_machine_until_resolved_and_keeps_who_did_what() {
    let db = plant_db().await;
    configure(&db).await;
    readings(&db, &all_sensors_at(0)).await;
    let l = layout();
    let m = &l.machines()[3];
    let (a, b) = (l.sensors_in(&m.sensors)[0].clone(), l.sensors_in(&m.sensors)[1].clone());
    let detected = AnomalyDetected {
        anomaly_id: "A-1".into(),
        machine_id: m.id.clone(),
        line_id: l.lines()[m.line].id.clone(),
        started_at: t0(),
        severity: Severity::Major,
        score: 0.99,
        sensors: vec![evidence(a.id, &a.name), evidence(b.id, &b.name)],
        explanation: "TEMP1 91.3 °C, expected 40.0 ± 4.0".into(),
        detector_version: "test".into(),
    };
    append_json(&db, "anomaly-A-1", ANOMALY_DETECTED, &detected).await;
    readmodels::catch_up(&db, config()).await.unwrap();

    let machine_sql =
        format!("SELECT status, open_major, anomalous FROM readmodel.machine_status WHERE machine_id = '{}'", m.id);
    assert_eq!(one(&db, &machine_sql).await, json!({ "status": "anomaly", "open_major": 1, "anomalous": 2 }));
    assert_eq!(one(&db, "SELECT open_major FROM readmodel.plant_status").await["open_major"], 1);
    let row =
        one(&db, "SELECT state, severity, explanation, jsonb_array_length(sensors) AS n FROM readmodel.anomalies")
            .await;
    assert_eq!(row, json!({ "state": "new", "severity": "major", "explanation": detected.explanation, "n": 2 }));

    let ack =
        AnomalyAcknowledged { anomaly_id: "A-1".into(), by: "alice".into(), note: "checking coolant".into(), at: t0() };
    append_json(&db, "anomaly-A-1", ANOMALY_ACKNOWLEDGED, &ack).await;
    readmodels::catch_up(&db, config()).await.unwrap();
    let row = one(&db, "SELECT state, acknowledged_by, notes->0->>'text' AS note FROM readmodel.anomalies").await;
    assert_eq!(row, json!({ "state": "acknowledged", "acknowledged_by": "alice", "note": "checking coolant" }));
    assert_eq!(one(&db, &machine_sql).await["status"], "anomaly", "acknowledged is still open");

    append_json(
        &db,
        "anomaly-A-1",
        ANOMALY_RESOLVED,
        &AnomalyResolved { anomaly_id: "A-1".into(), at: t0() + Duration::minutes(3) },
    )
    .await;
    readmodels::catch_up(&db, config()).await.unwrap();
    assert_eq!(one(&db, &machine_sql).await, json!({ "status": "ok", "open_major": 0, "anomalous": 0 }));
    let statuses =
        rows(&db, &format!("SELECT status FROM readmodel.sensor_state WHERE sensor_id IN ({}, {})", a.id, b.id)).await;
    assert!(statuses.iter().all(|s| s["status"] == "ok"), "{statuses:?}");

    let audit = rows(
        &db,
        &format!(
            "SELECT event_type, actor, summary FROM readmodel.audit WHERE machine_id = '{}' ORDER BY position",
            m.id
        ),
    )
    .await;
    let types: Vec<&str> = audit.iter().map(|a| a["event_type"].as_str().unwrap()).collect();
    assert_eq!(types, [ANOMALY_DETECTED, ANOMALY_ACKNOWLEDGED, ANOMALY_RESOLVED]);
    assert_eq!(audit[1]["summary"], "acknowledged by alice: checking coolant");
}

#[tokio::test]
async fn predictions_and_work_orders_fill_maintenance() {
    let db = plant_db().await;
    configure(&db).await;
    readings(&db, &all_sensors_at(0)).await;
    let l = layout();
    let m = l.machines()[0].id.clone();
    // Due means "could plausibly fail within 7 days": the interval's lower bound is what
    // counts, not the point prediction. 12 days (10–15) is not due; 9.5 days (6.5–12.5) is.
    let status = format!("SELECT status, due_in_days FROM readmodel.machine_status WHERE machine_id = '{m}'");
    let due = "SELECT machines_due_7d FROM readmodel.plant_status";
    for (hours, days, lower_days, upper_days, is_due) in [(0, 12.0, 10.0, 15.0, false), (1, 9.5, 6.5, 12.5, true)] {
        let p = MaintenancePredicted {
            machine_id: m.clone(),
            at: t0() + Duration::hours(hours),
            days,
            lower_days,
            upper_days,
            model_version: "v1".into(),
            failure_probability: None,
            due: None,
        };
        append_json(&db, &format!("prediction-{m}"), MAINTENANCE_PREDICTED, &p).await;
        readmodels::catch_up(&db, config()).await.unwrap();
        let row = one(&db, &status).await;
        assert_eq!(row["due_in_days"], lower_days, "{row}");
        assert_eq!(row["status"] == "service", is_due, "{row}");
        assert_eq!(one(&db, due).await["machines_due_7d"], i32::from(is_due));
    }
    let row = one(
        &db,
        &format!("SELECT predicted_days, lower_days, upper_days FROM readmodel.maintenance WHERE machine_id = '{m}'"),
    )
    .await;
    assert_eq!(row, json!({ "predicted_days": 9.5, "lower_days": 6.5, "upper_days": 12.5 }));
    assert_eq!(rows(&db, "SELECT * FROM readmodel.maintenance_predictions").await.len(), 2);

    // Scheduled and performed in one batch, then another order in two batches: same rows.
    let scheduled = |n: u32| MaintenanceScheduled {
        order_id: format!("{m}-WO{n}"),
        machine_id: m.clone(),
        kind: OrderKind::Planned,
        scheduled_for: t0() + Duration::days(1),
        by: "maria".into(),
        note: "bearings".into(),
        at: t0(),
    };
    let performed = |n: u32| MaintenancePerformed {
        order_id: format!("{m}-WO{n}"),
        machine_id: m.clone(),
        performed_at: t0() + Duration::days(1),
        by: "tom".into(),
        note: "replaced".into(),
        at: t0() + Duration::days(1),
    };
    append_json(&db, &format!("maintenance-{m}"), MAINTENANCE_SCHEDULED, &scheduled(1)).await;
    append_json(&db, &format!("maintenance-{m}"), MAINTENANCE_PERFORMED, &performed(1)).await;
    readmodels::catch_up(&db, config()).await.unwrap();
    append_json(&db, &format!("maintenance-{m}"), MAINTENANCE_SCHEDULED, &scheduled(2)).await;
    readmodels::catch_up(&db, config()).await.unwrap();
    append_json(&db, &format!("maintenance-{m}"), MAINTENANCE_PERFORMED, &performed(2)).await;
    readmodels::catch_up(&db, config()).await.unwrap();
    let log = rows(&db, "SELECT state, scheduled_by, note, performed_by, performed_note FROM readmodel.maintenance_log ORDER BY order_id").await;
    let want = json!({ "state": "performed", "scheduled_by": "maria", "note": "bearings", "performed_by": "tom", "performed_note": "replaced" });
    assert_eq!(log, vec![want.clone(), want]);
    let row = one(&db, &format!("SELECT open_order_id, last_performed_at IS NOT NULL AS serviced FROM readmodel.maintenance WHERE machine_id = '{m}'")).await;
    assert_eq!(row, json!({ "open_order_id": null, "serviced": true }));
}

#[tokio::test]
async fn a_minute_of_readings_becomes_one_history_row_per_sensor() {
    let db = plant_db().await;
    configure(&db).await;
    for s in 0..70 {
        readings(&db, &all_sensors_at(s)).await;
    }
    readmodels::catch_up(&db, config()).await.unwrap();
    let minute = one(&db, "SELECT count(*) AS rows, sum(count) AS readings FROM readmodel.sensor_minute").await;
    assert_eq!(minute, json!({ "rows": SENSORS, "readings": SENSORS * 60 }));
    let client = db.client().await.unwrap();
    let id = layout().sensors()[0].id as i32;
    let row =
        client.query_one("SELECT readings FROM readmodel.sensor_history WHERE sensor_id = $1", &[&id]).await.unwrap();
    let points = telemetry::history::decode(row.get(0)).unwrap();
    assert_eq!(points.len(), 60);
    assert_eq!(points[0].0, t0().timestamp_millis());
    let hour = one(&db, "SELECT count(*) AS rows, sum(count) AS readings FROM readmodel.sensor_hour").await;
    assert_eq!(hour, json!({ "rows": SENSORS, "readings": SENSORS * 60 }));
}

#[tokio::test]
async fn a_subscriber_hears_a_notify_after_each_applied_batch() {
    let db = plant_db().await;
    let mut listener = db.listen(&[readmodels::CHANNEL]).await.unwrap();
    configure(&db).await;
    let position = readings(&db, &all_sensors_at(0)).await;
    readmodels::catch_up(&db, config()).await.unwrap();
    let mut heard = Vec::new();
    while let Ok(Some(n)) = tokio::time::timeout(std::time::Duration::from_secs(2), listener.recv()).await {
        heard.push(n.payload.parse::<i64>().unwrap());
    }
    assert_eq!(heard.last(), Some(&position), "{heard:?}");
}
