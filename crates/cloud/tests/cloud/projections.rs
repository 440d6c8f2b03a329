//! The cloud's read models: what plants send becomes the right KPIs, anomalies and
//! maintenance rows, and a rebuild from the cloud's log gives the same rows as the live
//! run, also after the node was stopped at random instants.

use std::time::Duration;

use access::{Role, Scope};
use chrono::Duration as Span;
use domain::events::*;
use domain::production::{PRODUCTION_REPORTED, ProductionReported};
use eventlog::Database;

use crate::support::*;

/// The telemetry projection's bound on readings per batch in these tests: more than one
/// line's batch, less than two, so nearly every batch is cut by it.
const READINGS_PER_BATCH: usize = 100;

/// Every row of every projected table, as text, in key order.
pub async fn snapshot(db: &Database) -> Vec<(String, Vec<String>)> {
    let client = db.client().await.unwrap();
    let mut out = Vec::new();
    for table in [
        "plants",
        "lines",
        "machines",
        "sensors",
        "groups",
        "kpi_hour",
        "kpi_day",
        "plant_status",
        "sensor_hour",
        "sensor_day",
        "sensor_minute",
        "anomalies",
        "maintenance",
        "predictions",
        "maintenance_log",
    ] {
        let rows = client
            .query(&format!("SELECT row_to_json(t)::text FROM cloud.{table} t ORDER BY 1"), &[])
            .await
            .unwrap()
            .iter()
            .map(|r| r.get::<_, String>(0))
            .collect();
        out.push((table.to_owned(), rows));
    }
    out
}

/// Panics naming the first rows that differ, table by table.
pub fn assert_same(live: &[(String, Vec<String>)], rebuilt: &[(String, Vec<String>)]) {
    let mut report = String::new();
    for ((table, a), (_, b)) in live.iter().zip(rebuilt) {
        if a != b {
            let only_live: Vec<&String> = a.iter().filter(|r| !b.contains(r)).take(3).collect();
            let only_rebuilt: Vec<&String> = b.iter().filter(|r| !a.contains(r)).take(3).collect();
            report.push_str(&format!(
                "{table}: {} rows live, {} rebuilt\n  live only: {only_live:?}\n  rebuilt only: {only_rebuilt:?}\n",
                a.len(),
                b.len()
            ));
        }
    }
    assert!(report.is_empty(), "the rebuild differs from the live read models:\n{report}");
}

/// Waits until both projections have read the whole cloud log.
pub async fn projected(db: &Database) {
    wait_for("the projections to catch up", Duration::from_secs(120), || async {
        let client = db.client().await.unwrap();
        let head = eventlog::head_position(&client).await.unwrap();
        let (read, started) =
            eventlog::read_through(&client, &[cloud::telemetry::TELEMETRY, cloud::operations::OPERATIONS])
                .await
                .unwrap();
        started && read >= head
    })
    .await;
}

/// What one plant did in the test's hour: readings, an anomaly's life, predictions, a
/// work order, a failure, production.
pub async fn plant_story(plant: &Plant, t0: i64, seconds: i64) {
    let m0 = plant.machine(0);
    let m1 = plant.machine(1);
    let line = m0.rsplit_once('-').unwrap().0.to_owned();
    for s in 0..seconds {
        // Sensor 7 of the plant misses every other second: availability below 1.
        let ts = t0 + s * 10_000;
        plant.readings(ts, |sensor| f64::from(sensor % 11) + (s % 13) as f64 * 0.5).await;
        if s == 3 {
            let detected = AnomalyDetected {
                anomaly_id: format!("{m0}-{ts}"),
                machine_id: m0.clone(),
                line_id: line.clone(),
                started_at: at(ts),
                severity: Severity::Major,
                score: 0.9,
                sensors: vec![],
                explanation: "TEMP1 91.3 °C, expected 70.1 ± 4.2 (level shift)".into(),
                detector_version: "d1".into(),
            };
            plant.append(&format!("anomaly-{m0}-{ts}"), ANOMALY_DETECTED, &detected).await;
        }
        if s == 6 {
            let a = format!("{m0}-{}", t0 + 30_000);
            let ack =
                AnomalyAcknowledged { anomaly_id: a.clone(), by: "Ana".into(), note: "looking".into(), at: at(ts) };
            plant.append(&format!("anomaly-{a}"), ANOMALY_ACKNOWLEDGED, &ack).await;
            let note = AnomalyNoteAdded { anomaly_id: a.clone(), by: "Ana".into(), text: "bearing".into(), at: at(ts) };
            plant.append(&format!("anomaly-{a}"), ANOMALY_NOTE_ADDED, &note).await;
            let p = MaintenancePredicted {
                machine_id: m1.clone(),
                at: at(ts),
                days: 5.25,
                lower_days: 3.5,
                upper_days: 9.0,
                model_version: "rul-1".into(),
                failure_probability: None,
                due: None,
            };
            plant.append(&format!("prediction-{m1}"), MAINTENANCE_PREDICTED, &p).await;
        }
        if s == 8 {
            let sched = MaintenanceScheduled {
                order_id: format!("{m1}-WO1"),
                machine_id: m1.clone(),
                kind: OrderKind::Planned,
                scheduled_for: at(ts),
                by: "crew".into(),
                note: "bearing".into(),
                at: at(ts),
            };
            plant.append(&format!("maintenance-{m1}"), MAINTENANCE_SCHEDULED, &sched).await;
            let failed = MachineFailed { machine_id: m0.clone(), at: at(ts), source: "gateway:x".into() };
            plant.append(&format!("machine-{m0}"), MACHINE_FAILED, &failed).await;
        }
        if s == 9 {
            let done = MaintenancePerformed {
                order_id: format!("{m1}-WO1"),
                machine_id: m1.clone(),
                performed_at: at(ts),
                by: "crew".into(),
                note: "done".into(),
                at: at(ts),
            };
            plant.append(&format!("maintenance-{m1}"), MAINTENANCE_PERFORMED, &done).await;
            let resolved = AnomalyResolved { anomaly_id: format!("{m0}-{}", t0 + 30_000), at: at(ts) };
            plant.append(&format!("anomaly-{m0}-{}", t0 + 30_000), ANOMALY_RESOLVED, &resolved).await;
            for (m, parts, rejects) in [(&m0, 80u64, 4u64), (&m1, 40, 0)] {
                let r = ProductionReported {
                    machine_id: m.clone(),
                    from: at(t0),
                    to: at(t0) + Span::minutes(15),
                    planned_s: 900.0,
                    running_s: 720.0,
                    parts,
                    rejects,
                    ideal_cycle_s: 8.0,
                    source: "gateway:x".into(),
                };
                plant.append(&format!("machine-{m}"), PRODUCTION_REPORTED, &r).await;
            }
        }
    }
}

/// The start of an hour a day ago: the story fits in it.
fn hour_start() -> i64 {
    let now = now_s() - 86_400_000;
    now - now.rem_euclid(3_600_000)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn what_plants_send_becomes_kpis_anomalies_and_maintenance() {
    let cloud = cloud_db().await;
    let node = CloudNode::start(&cloud, 0).await;
    let plant = Plant::new(1, 2).await;
    let forwarder_token = token(&cloud, Role::Forwarder, Scope::plant(1)).await;
    let (stop, task) = forwarder(&plant, &node.url, &forwarder_token);
    let t0 = hour_start();
    plant_story(&plant, t0, 30).await;
    wait_for("the log to arrive", Duration::from_secs(60), || async {
        cloud_copy(&cloud, 1).await.len() == plant_log(&plant.db).await.len()
    })
    .await;
    projected(&cloud).await;
    let client = cloud.client().await.unwrap();
    let m0 = plant.machine(0);
    let m1 = plant.machine(1);

    // The KPIs of the hour, as the manager's app reads them.
    let manager = token(&cloud, Role::Manager, Scope::AllPlants).await;
    let http = reqwest::Client::new();
    let kpis: serde_json::Value = http
        .get(format!(
            "{}/v1/kpis?from={}&to={}&bucket=hour",
            node.url,
            rfc3339(at(t0)),
            rfc3339(at(t0) + Span::hours(1))
        ))
        .bearer_auth(&manager)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let k = &kpis[0];
    assert_eq!(kpis.as_array().unwrap().len(), 1, "{kpis}");
    // Minutes 0 to 3 are written; minute 4 waits for the plant's clock to pass it.
    assert_eq!(k["readings"], 24 * 120, "{k}");
    assert_eq!(k["sensors"], 120);
    assert_eq!(k["sensor_availability"], 1.0);
    assert_eq!(k["anomalies"], serde_json::json!({ "minor": 0, "major": 1, "critical": 0 }));
    assert_eq!((k["acknowledged"].as_i64(), k["mean_time_to_acknowledge_s"].as_f64()), (Some(1), Some(30.0)));
    assert_eq!((k["failures"].as_i64(), k["maintenance_performed"].as_i64()), (Some(1), Some(1)));
    assert_eq!(k["mean_predicted_days_to_service"], 5.25);
    assert_eq!(
        k["production"],
        serde_json::json!({ "planned_s": 1800.0, "running_s": 1440.0, "parts": 120, "good_parts": 116 })
    );
    let oee = &k["oee"];
    let close = |v: &serde_json::Value, x: f64| (v.as_f64().unwrap() - x).abs() < 1e-9;
    assert!(close(&oee["availability"], 0.8) && close(&oee["performance"], 960.0 / 1440.0), "{oee}");
    assert!(
        close(&oee["quality"], 116.0 / 120.0) && close(&oee["oee"], 0.8 * (960.0 / 1440.0) * (116.0 / 120.0)),
        "{oee}"
    );

    // The anomaly keeps the plant's explanation and its life.
    let a = client
        .query_one(
            "SELECT state, acknowledged_by, explanation, jsonb_array_length(notes), severity FROM cloud.anomalies",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(a.get::<_, String>(0), "resolved");
    assert_eq!(a.get::<_, Option<String>>(1).as_deref(), Some("Ana"));
    assert!(a.get::<_, String>(2).contains("level shift"));
    assert_eq!((a.get::<_, i32>(3), a.get::<_, String>(4)), (1, "major".into()));
    let m = client
        .query_one(
            "SELECT predicted_days, lower_days, open_order_id FROM cloud.maintenance WHERE machine_id = $1",
            &[&m1],
        )
        .await
        .unwrap();
    assert_eq!((m.get::<_, Option<f64>>(0), m.get::<_, Option<f64>>(1)), (Some(5.25), Some(3.5)));
    assert_eq!(m.get::<_, Option<String>>(2), None, "the order was performed");
    let failed: Option<chrono::DateTime<chrono::Utc>> = client
        .query_one("SELECT last_failure_at FROM cloud.maintenance WHERE machine_id = $1", &[&m0])
        .await
        .unwrap()
        .get(0);
    assert!(failed.is_some());
    let log: Vec<(String, String)> = client
        .query("SELECT kind, state FROM cloud.maintenance_log ORDER BY at, kind", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(log, vec![("failure".to_owned(), "failed".to_owned()), ("planned".to_owned(), "performed".to_owned())]);

    // A rebuild from the cloud's log gives the same rows.
    let live = snapshot(&cloud).await;
    cloud::projections::rebuild(&cloud, cloud::CloudConfig::default().history_grace_ms).await.unwrap();
    projected(&cloud).await;
    assert_same(&live, &snapshot(&cloud).await);
    node.stop().await;
    let _ = stop.send(());
    task.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_rebuild_equals_the_live_read_models_after_stops_at_random_instants() {
    let cloud = cloud_db().await;
    let manager_port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let plants = [Plant::new(1, 2).await, Plant::new(2, 2).await];
    let mut forwarders = Vec::new();
    for p in &plants {
        let t = token(&cloud, Role::Forwarder, Scope::plant(p.number)).await;
        forwarders.push(forwarder(p, &format!("http://127.0.0.1:{manager_port}"), &t));
    }
    let t0 = hour_start();
    let writers: Vec<_> = plants.iter().map(|p| plant_story(p, t0, 40)).collect();
    let mut rng = 0x2545_f491_4f6c_dd1du64;
    let stops = async {
        for _ in 0..6 {
            let node = CloudNode::start(&cloud, manager_port).await;
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            tokio::time::sleep(Duration::from_millis(100 + rng % 700)).await;
            node.stop().await;
        }
    };
    tokio::join!(futures_util::future::join_all(writers), stops);
    let node = CloudNode::start(&cloud, manager_port).await;
    for p in &plants {
        wait_for("every plant's log to arrive", Duration::from_secs(90), || async {
            cloud_copy(&cloud, p.number).await.len() == plant_log(&p.db).await.len()
        })
        .await;
    }
    projected(&cloud).await;
    let live = snapshot(&cloud).await;
    assert!(live.iter().find(|(t, _)| t == "kpi_hour").is_some_and(|(_, rows)| !rows.is_empty()));
    cloud::projections::rebuild(&cloud, cloud::CloudConfig::default().history_grace_ms).await.unwrap();
    projected(&cloud).await;
    assert_same(&live, &snapshot(&cloud).await);
    node.stop().await;
    for (stop, task) in forwarders {
        let _ = stop.send(());
        task.await.unwrap().unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_projection_restarted_every_few_batches_writes_what_a_rebuild_writes() {
    let cloud = cloud_db().await;
    let plants = [Plant::new(1, 2).await, Plant::new(2, 2).await];
    let mut forwarders = Vec::new();
    let node_port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    for p in &plants {
        let t = token(&cloud, Role::Forwarder, Scope::plant(p.number)).await;
        forwarders.push(forwarder(p, &format!("http://127.0.0.1:{node_port}"), &t));
    }
    let t0 = hour_start();
    futures_util::future::join_all(plants.iter().map(|p| plant_story(p, t0, 40))).await;
    let sub = eventlog::Subscription::new(
        cloud.clone(),
        eventlog::SubscriptionConfig::new(cloud::telemetry::TELEMETRY)
            .categories(&["readings", "plant"])
            .batch_max_events(7)
            .batch_max_readings(READINGS_PER_BATCH),
    );
    let node = CloudNode::start(&cloud, node_port).await;
    for p in &plants {
        wait_for("every plant's log to arrive", Duration::from_secs(90), || async {
            cloud_copy(&cloud, p.number).await.len() == plant_log(&p.db).await.len()
        })
        .await;
    }
    node.stop().await;
    // Fold with a fresh handler every few batches, as if restarted; the last run goes to
    // the end. (A restart reads again from the durable checkpoint, which a plant's open
    // minute holds back: restarted every 30 small batches for ever, the fold might never
    // get past that minute.)
    let mut client = cloud.client().await.unwrap();
    let mut done = false;
    let (mut batches, mut largest, mut restarts) = (0, 0, 0);
    while !done {
        let mut handler = cloud::telemetry::TelemetryProjection::new(5_000);
        let mut cursor = None;
        let window = if restarts < 4 { 30 } else { usize::MAX };
        restarts += 1;
        for _ in 0..window {
            let applied = sub.apply_next_batch(&mut client, &mut handler, &mut cursor).await.unwrap();
            if applied == 0 {
                done = true;
                break;
            }
            batches += 1;
            largest = largest.max(applied);
        }
    }
    // Each line's batch holds half a plant's sensors: the readings bound, not the events
    // bound, cut every batch, so a transaction held at most two telemetry batches (and
    // the layout and domain events between them).
    let line = SENSORS_PER_PLANT as usize / LINES_PER_PLANT as usize;
    assert!(line < READINGS_PER_BATCH && READINGS_PER_BATCH <= 2 * line);
    assert!(largest < 7, "a batch of {largest} events: the readings bound did not cut");
    assert!(batches >= 2 * 40, "{batches} batches for 2 plants × 40 seconds of 2 lines");
    // The other projection catches up as it would have.
    cloud::projections::catch_up(&cloud, cloud::projections::BatchLimits { events: 50, readings: 100 }, 5_000)
        .await
        .unwrap();
    let restarted = snapshot(&cloud).await;
    cloud::projections::rebuild(&cloud, 5_000).await.unwrap();
    assert_same(&snapshot(&cloud).await, &restarted);
    for (stop, task) in forwarders {
        let _ = stop.send(());
        task.await.unwrap().unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_maintenance_list_calls_a_machine_due_as_the_plant_does() {
    let cloud = cloud_db().await;
    let node = CloudNode::start(&cloud, 0).await;
    let plant = Plant::new(1, 1).await;
    let forwarder_token = token(&cloud, Role::Forwarder, Scope::plant(1)).await;
    let (stop, task) = forwarder(&plant, &node.url, &forwarder_token);
    let t0 = hour_start();
    // (lower bound, what the model's rule said): the rule wins over the lower bound both
    // ways; a prediction that does not say falls back to "lower bound at most 7 days".
    let cases = [(3.5, Some(false)), (20.0, Some(true)), (3.5, None), (20.0, None)];
    for (i, (lower, due)) in cases.iter().enumerate() {
        let p = MaintenancePredicted {
            machine_id: plant.machine(i),
            at: at(t0),
            days: lower + 2.0,
            lower_days: *lower,
            upper_days: lower + 5.0,
            model_version: "rul-1".into(),
            failure_probability: None,
            due: *due,
        };
        plant.append(&format!("prediction-{}", plant.machine(i)), MAINTENANCE_PREDICTED, &p).await;
    }
    wait_for("the log to arrive", Duration::from_secs(60), || async {
        cloud_copy(&cloud, 1).await.len() == plant_log(&plant.db).await.len()
    })
    .await;
    projected(&cloud).await;
    let manager = token(&cloud, Role::Manager, Scope::AllPlants).await;
    let list: serde_json::Value = reqwest::Client::new()
        .get(format!("{}/v1/maintenance", node.url))
        .bearer_auth(&manager)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let items = list["items"].as_array().unwrap_or_else(|| panic!("a page of machines: {list}"));
    for (i, (lower, said)) in cases.iter().enumerate() {
        let row = items
            .iter()
            .find(|r| r["machine_id"] == plant.machine(i).as_str())
            .unwrap_or_else(|| panic!("machine {i} listed: {list}"));
        let expected = readmodels::live::model::is_due(Some(*lower), *said);
        assert_eq!(row["due"], expected, "machine {i} (lower {lower}, rule said {said:?}): {row}");
    }
    assert_eq!(
        cases.iter().map(|(l, d)| readmodels::live::model::is_due(Some(*l), *d)).collect::<Vec<_>>(),
        [false, true, true, false],
        "the cases cover both answers of both rules"
    );
    // A rebuild keeps what the rule said.
    let live = snapshot(&cloud).await;
    cloud::projections::rebuild(&cloud, cloud::CloudConfig::default().history_grace_ms).await.unwrap();
    projected(&cloud).await;
    assert_same(&live, &snapshot(&cloud).await);
    node.stop().await;
    let _ = stop.send(());
    task.await.unwrap().unwrap();
}
