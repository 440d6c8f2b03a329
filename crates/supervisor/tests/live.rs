//! The app against a real PostgreSQL plant database: first sync, live updates after
//! NOTIFY, restart from the cache, catch-up, duplicate notifications, a connection
//! killed in the middle of a catch-up, and the command queue against a command API.

mod common;

use common::*;
use readmodel_contract::{CatchUp, Cursors, ReadModel, catch_up};
use supervisor::commands::{Command, CommandState};
use supervisor::{Update, now_ms};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_floor_goes_live_updates_on_notify_and_restarts_from_the_cache() {
    let db = pgcluster::testdb::TestDb::new().await.unwrap();
    let plant = plant(&db.url).await;
    let app = plant.app();
    assert!(app.floor().floor.machines.is_empty(), "nothing cached yet");
    let mut rx = app.subscribe();
    app.start();
    until(20, "live", || app.link().is_live()).await;
    let floor = app.floor();
    assert_eq!(floor.floor.machines.len(), 6);
    assert_eq!(floor.floor.plant_status.as_ref().unwrap().sensors, 24);
    // The plant says which machines are due (the fixture predicts a lower bound of 1.8 to
    // 5.8 days for these six), and the app shows its answer.
    assert!(
        floor.floor.machine_status.iter().all(|m| m.due && m.status == "service"),
        "{:?}",
        floor.floor.machine_status
    );
    assert_eq!(floor.floor.plant_status.as_ref().unwrap().machines_due_7d, 6);

    // A new anomaly arrives through NOTIFY within a moment, with a critical alert.
    let sensor = plant.with(async |f| f.sensor_ids("P1-L01-M002")[0]).await;
    let id = plant.with(async |f| f.raise_anomaly(sensor, "critical", now_ms()).await.unwrap()).await;
    let u = next_update(&mut rx, 10, |u| matches!(u, Update::Critical { .. })).await;
    let Update::Critical { anomaly } = u else { unreachable!() };
    assert_eq!(anomaly.anomaly_id, id);
    let status = app.floor().floor.machine_status.into_iter().find(|m| m.machine_id == "P1-L01-M002").unwrap();
    assert_eq!(status.status, "anomaly");

    // The machine page has its sensors, and their rows now come with updates.
    let page = app.machine("P1-L01-M002").unwrap();
    assert_eq!(page.sensors.len(), 4);
    assert_eq!(page.anomalies[0].anomaly_id, id);
    plant.with(async |f| f.tick(now_ms()).await.unwrap()).await;
    let u =
        next_update(&mut rx, 10, |u| matches!(u, Update::Delta { changes, .. } if !changes.sensor_state.is_empty()))
            .await;
    let Update::Delta { changes, .. } = u else { unreachable!() };
    assert!(changes.sensor_state.iter().all(|s| s.machine_id == "P1-L01-M002"));

    // Closed app; the plant moves on; the reopened app paints the cached floor at once
    // and then catches up.
    app.shutdown().await;
    let before = app.floor().synced;
    drop(app);
    let second =
        plant.with(async |f| f.raise_anomaly(f.sensor_ids("P1-L02-M001")[0], "major", now_ms()).await.unwrap()).await;
    let reopened = plant.app();
    let cached = reopened.floor();
    assert_eq!(cached.floor.machines.len(), 6);
    assert_eq!(cached.synced, before);
    assert!(cached.floor.anomalies.iter().all(|a| a.anomaly_id != second));
    reopened.start();
    until(20, "the catch-up after restart", || reopened.floor().floor.anomalies.iter().any(|a| a.anomaly_id == second))
        .await;
    reopened.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_killed_mid_catch_up_applies_nothing_and_the_next_catch_up_gets_everything() {
    let db = pgcluster::testdb::TestDb::new().await.unwrap();
    let plant = plant(&db.url).await;
    let (reader, conn) = tokio_postgres::connect(&plant.reader_url, tokio_postgres::NoTls).await.unwrap();
    let reader_task = tokio::spawn(conn);
    let admin = db.connect().await.unwrap();
    let pid: i32 = reader.query_one("SELECT pg_backend_pid()", &[]).await.unwrap().get(0);

    let cursors = Cursors::new();
    let mut run = CatchUp::begin(&reader, &cursors, 2).await.unwrap();
    assert!(run.next_page().await.unwrap());
    assert!(run.next_page().await.unwrap());
    admin.execute("SELECT pg_terminate_backend($1)", &[&pid]).await.unwrap();
    let mut failed = false;
    for _ in 0..100 {
        if run.next_page().await.is_err() {
            failed = true;
            break;
        }
    }
    assert!(failed, "the killed connection fails the catch-up");
    drop(run);
    let _ = reader_task.await;
    assert!(cursors.is_empty(), "nothing was applied");

    let (reader, conn) = tokio_postgres::connect(&plant.reader_url, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(conn);
    let full = catch_up(&reader, &cursors, 2).await.unwrap();
    assert_eq!(full.changes.sensor_state.len(), 24);
    assert_eq!(full.changes.machines.len(), 6);
    let again = catch_up(&reader, &full.cursors, 2).await.unwrap();
    assert!(again.changes.is_empty(), "a second catch-up from the new cursors finds nothing: {:?}", again.changes);
    let reached = full.cursors[&ReadModel::SensorState];
    assert!(reached > 0 && reached <= full.synced, "sensor rows read to {reached}, synced {}", full.synced);

    // The reader role may read the read models and nothing else.
    assert!(reader.execute("DELETE FROM readmodel.sensor_state", &[]).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicate_stale_and_garbage_notifications_change_nothing() {
    let db = pgcluster::testdb::TestDb::new().await.unwrap();
    let plant = plant(&db.url).await;
    let app = plant.app();
    app.start();
    until(20, "live", || app.link().is_live()).await;
    let mut rx = app.subscribe();
    let admin = db.connect().await.unwrap();
    admin
        .batch_execute("NOTIFY readmodel, '1'; NOTIFY readmodel, '1'; NOTIFY readmodel, 'not a number'")
        .await
        .unwrap();
    let quiet = tokio::time::timeout(std::time::Duration::from_secs(2), async {
        loop {
            if let Ok(Update::Delta { .. }) = rx.recv().await {
                return;
            }
        }
    })
    .await;
    assert!(quiet.is_err(), "no rows changed, so no delta is pushed");
    assert!(app.link().is_live());
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_are_sent_with_one_id_and_the_persons_token_and_retried_only_while_the_plant_is_unavailable() {
    let db = pgcluster::testdb::TestDb::new().await.unwrap();
    let plant = plant(&db.url).await;
    let sensor = plant.with(async |f| f.sensor_ids("P1-L01-M001")[0]).await;
    let id = plant.with(async |f| f.raise_anomaly(sensor, "major", now_ms()).await.unwrap()).await;
    let app = plant.app();
    app.start();
    until(20, "live", || app.link().is_live()).await;

    plant.commands.force(&[503, 429]);
    let queued = app.submit(Command::Acknowledge { anomaly_id: id.clone(), note: "checking the pump".into() }).unwrap();
    assert_eq!(queued.state, CommandState::Pending);
    until(20, "the acknowledgement in the read model", || {
        app.floor().floor.anomalies.iter().any(|a| a.anomaly_id == id && a.state == "acknowledged")
    })
    .await;
    let got = plant.commands.received();
    assert_eq!(got.len(), 3, "503, 429, then accepted");
    assert!(got.iter().all(|r| r.body["command_id"] == queued.command_id.as_str()), "one idempotency key throughout");
    assert_eq!(got[2].body["note"], "checking the pump");
    assert!(got[2].body.get("by").is_none(), "who acts is the token's, not the body's");
    assert_eq!(got[2].token, plant.token);
    until(10, "the outbox to empty", || app.commands().is_empty()).await;
    let a = app.floor().floor.anomalies.into_iter().find(|a| a.anomaly_id == id).unwrap();
    assert_eq!(a.acknowledged_by.as_deref(), Some(SUPERVISOR));
    assert_eq!(a.notes[0].text, "checking the pump");

    // A refusal is final: kept with its reason until dismissed.
    plant.commands.force(&[409]);
    let refused = app.submit(Command::AddNote { anomaly_id: id.clone(), text: "again".into() }).unwrap();
    until(10, "the refusal", || app.commands().iter().any(|c| c.state == CommandState::Failed)).await;
    let failed = app.commands().into_iter().find(|c| c.command_id == refused.command_id).unwrap();
    assert_eq!(failed.error.unwrap().code, "forced");
    app.dismiss(&refused.command_id).unwrap();
    assert!(app.commands().is_empty());
    assert!(app.dismiss(&refused.command_id).is_err());

    // Bad input never reaches the queue.
    assert!(app.submit(Command::AddNote { anomaly_id: "x y".into(), text: "n".into() }).is_err());
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_refused_for_good_moves_to_the_failed_list_and_never_holds_up_the_ones_behind_it() {
    let db = pgcluster::testdb::TestDb::new().await.unwrap();
    let plant = plant(&db.url).await;
    let sensor = plant.with(async |f| f.sensor_ids("P1-L01-M001")[0]).await;
    let id = plant.with(async |f| f.raise_anomaly(sensor, "major", now_ms()).await.unwrap()).await;
    let app = plant.app();
    app.start();
    until(20, "live", || app.link().is_live()).await;

    // A token the plant does not accept, then a refusal of the command's content: both final.
    plant.commands.force(&[401, 422]);
    let first = app.submit(Command::AddNote { anomaly_id: id.clone(), text: "first".into() }).unwrap();
    let second = app.submit(Command::AddNote { anomaly_id: id.clone(), text: "second".into() }).unwrap();
    let third = app.submit(Command::AddNote { anomaly_id: id.clone(), text: "third".into() }).unwrap();
    until(15, "the third note in the read model", || {
        app.floor().floor.anomalies.iter().any(|a| a.anomaly_id == id && a.notes.iter().any(|n| n.text == "third"))
    })
    .await;
    let listed = app.commands();
    let state = |id: &str| listed.iter().find(|c| c.command_id == id).map(|c| c.state);
    assert_eq!(state(&first.command_id), Some(CommandState::Failed), "{listed:?}");
    assert_eq!(state(&second.command_id), Some(CommandState::Failed), "{listed:?}");
    assert_ne!(state(&third.command_id), Some(CommandState::Failed));
    let sent = plant.commands.received();
    assert_eq!(sent.len(), 3, "each was sent once: a refusal is not retried");

    // A revoked credential: the plant refuses it for real, and the app says so.
    let revoked = plant.token.clone();
    plant.with(async |f| f.revoke(&revoked).await.unwrap()).await;
    let after = app.submit(Command::AddNote { anomaly_id: id.clone(), text: "after".into() }).unwrap();
    until(15, "the refusal of a revoked credential", || {
        app.commands().iter().any(|c| c.command_id == after.command_id && c.state == CommandState::Failed)
    })
    .await;
    let failed = app.commands().into_iter().find(|c| c.command_id == after.command_id).unwrap();
    assert!(failed.error.unwrap().message.contains("revoked"));
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signing_in_asks_the_plant_whose_token_it_is_and_keeps_a_refused_one_out() {
    let db = pgcluster::testdb::TestDb::new().await.unwrap();
    let plant = plant(&db.url).await;
    let app = plant.app();
    let mo = plant.with(async |f| f.person(access::Role::Maintenance, "Mo").await.unwrap()).await;
    let me = app.sign_in(&mo, None).await.unwrap();
    assert_eq!((me.name.as_str(), me.role.as_str(), me.confirmed), ("Mo", "maintenance", true));
    assert_eq!(app.settings().connection.token, mo);
    let user = app.floor().user.unwrap();
    assert_eq!(user.name, "Mo");
    let forged = format!("fwt_{}_{}", "1".repeat(16), "2".repeat(64));
    let refused = app.sign_in(&forged, None).await.unwrap_err();
    assert_eq!(refused.code, supervisor::ErrorCode::SignIn);
    assert_eq!(app.settings().connection.token, mo, "a refused token is not kept");
    app.sign_out().unwrap();
    assert!(app.floor().user.is_none());
    let err = app.submit(Command::AddNote { anomaly_id: "A-1".into(), text: "n".into() }).unwrap_err();
    assert_eq!(err.code, supervisor::ErrorCode::SignIn);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_and_maintenance_reach_the_machine_page_and_its_charts() {
    let db = pgcluster::testdb::TestDb::new().await.unwrap();
    let plant = plant(&db.url).await;
    let ids = plant.with(async |f| f.sensor_ids("P1-L01-M001")).await;
    let now = now_ms();
    plant.with(async |f| f.write_history(&ids, now - 2 * 3_600_000, now).await.unwrap()).await;
    plant.with(async |f| f.write_maintenance_history("P1-L01-M001", now).await.unwrap()).await;
    let app = plant.app();
    app.start();
    until(20, "live", || app.link().is_live()).await;
    // The track record folds the failure forty days ago: the machine was due from five
    // days before it, and every interval of the week before held the truth.
    until(20, "the track record", || app.machine("P1-L01-M001").is_ok_and(|p| !p.track.failures.is_empty())).await;
    let page = app.machine("P1-L01-M001").unwrap();
    assert_eq!(page.predictions.len(), 63, "the one made when the plant started, 48 before the failure, 14 past ones");
    assert_eq!(page.work_orders.len(), 1);
    let failure = &page.track.failures[0];
    assert!(failure.caught, "{failure:?}");
    assert_eq!(failure.model_version.as_deref(), Some("fixture-1"));
    assert!(failure.scored > 0 && failure.covered == failure.scored, "{failure:?}");
    let own: Vec<_> = page.track.machine.iter().filter(|r| r.model_version == "fixture-1").collect();
    assert_eq!(own.len(), 1, "{:?}", page.track.machine);
    assert_eq!((own[0].failures, own[0].caught), (1, 1));
    assert_eq!(own[0].coverage, Some(1.0));
    let of_type: i64 = page.track.machine_type.iter().map(|r| r.failures).sum();
    assert_eq!(of_type, 1, "the machine's type counts its failure: {:?}", page.track.machine_type);
    assert!(page.track.machine_type.iter().all(|r| r.id == page.machine.machine_type));
    let style = supervisor::chart::ChartStyle::default();
    // Two hours of history in 285 columns: every column of the last hour, a twelfth of a
    // day, and 2–3 hour buckets. A 30-day column is 2.5 hours wide, so that chart ends at
    // the next full hour: the last column then starts before the last two buckets and
    // after the one before them, whatever the time of day.
    let next_hour = (now / 3_600_000 + 1) * 3_600_000;
    for (span, end, resolution, least) in [
        (3_600_000, None, "raw", 50),
        (24 * 3_600_000, None, "minute", 20),
        (30 * 24 * 3_600_000, Some(next_hour), "hour", 2),
    ] {
        let charts = app.trends(&ids, span, end, style).await.unwrap();
        assert_eq!(charts.len(), 4);
        let c = &charts[0];
        assert_eq!(serde_json::to_value(c.resolution).unwrap(), resolution);
        assert!(!c.from_cache);
        assert!(c.points.len() >= least, "{resolution}: {} points", c.points.len());
        assert!(c.svg.contains("<polyline"));
    }
    // The plant goes away: the same charts come from the cache.
    app.shutdown().await;
    drop(app);
    let cached = plant.app();
    let charts = cached.trends(&ids, 3_600_000, None, style).await.unwrap();
    assert!(charts[0].from_cache);
    assert!(charts[0].points.len() > 20);
    let dir = tempfile::tempdir().unwrap();
    let png = cached.export_chart(ids[0], 3_600_000, None, style, dir.path().join("c.png"), "png").await.unwrap();
    assert!(std::fs::metadata(png).unwrap().len() > 1000);
}
