//! Losing the plant database: the app keeps its screen, says it is offline as of the
//! last sync, queues actions, and when the server returns it catches up and sends them.
//! This test owns its cluster, because it stops the server.

mod common;

use common::*;
use supervisor::commands::{Command, CommandState};
use supervisor::link::Link;
use supervisor::now_ms;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_keeps_the_screen_queues_actions_and_catches_up_after() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = pgcluster::Cluster::new(dir.path().join("pg"), pgcluster::Options::for_tests()).unwrap();
    let server = cluster.start_attached().unwrap();
    let port = server.port();
    pgcluster::ensure_database(&server.url("postgres").unwrap(), "plant").await.unwrap();
    let plant = plant(&server.url("plant").unwrap()).await;
    let sensor = plant.with(async |f| f.sensor_ids("P1-L02-M003")[0]).await;
    let id = plant.with(async |f| f.raise_anomaly(sensor, "critical", now_ms()).await.unwrap()).await;
    let app = plant.app();
    app.start();
    until(20, "live", || app.link().is_live()).await;
    let synced = app.floor().synced;

    server.stop().unwrap();
    until(20, "offline", || matches!(app.link(), Link::Offline { .. })).await;
    let floor = app.floor();
    assert_eq!(floor.floor.machines.len(), 6, "the screen keeps the last state");
    assert!(matches!(app.link(), Link::Offline { as_of_ms: Some(t), .. } if t > 0));

    // Offline, an acknowledgement is queued and shown as pending; the plant cannot apply it.
    let queued = app.submit(Command::Acknowledge { anomaly_id: id.clone(), note: "on it".into() }).unwrap();
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    let pending = app.commands();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].state, CommandState::Pending, "{pending:?}");

    let server = cluster.start_attached().unwrap();
    assert_eq!(server.port(), port);
    until(60, "live again", || app.link().is_live()).await;
    until(30, "the queued acknowledgement applied", || {
        app.floor().floor.anomalies.iter().any(|a| a.anomaly_id == id && a.state == "acknowledged")
    })
    .await;
    assert!(
        plant.commands.received().iter().filter(|r| r.body["command_id"] == queued.command_id.as_str()).count() >= 1
    );
    // The plant's sensors report again; the app follows them past where it went offline.
    plant.with(async |f| f.tick(now_ms()).await.unwrap()).await;
    until(30, "synced past the outage", || app.floor().synced > synced).await;
    until(10, "the outbox to empty", || app.commands().is_empty()).await;
    app.shutdown().await;
    drop(server);
}
