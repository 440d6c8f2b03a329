//! The node's task states in `node_tasks`: written as reported, a row gets a new position
//! only when something a reader shows changed, and an error text carrying anything a
//! device sent (NUL, megabytes, control characters) is stored, cut short. Beside them the
//! link to the cloud's lag, which the same screens show.
#![allow(clippy::unwrap_used)]

mod common;

use chrono::TimeZone;
use common::plant_db;
use readmodel_contract::{ReadModel, read_since};
use readmodels::{NodeTaskReport, record_node_tasks};

fn report(task: &str, state: &'static str, error: Option<String>) -> NodeTaskReport {
    NodeTaskReport {
        task: task.into(),
        state,
        since: chrono::Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap(),
        restarts: 2,
        last_error: error,
        lag_events: Some(7),
    }
}

#[tokio::test]
async fn task_states_are_stored_and_followed_by_position() {
    let db = plant_db().await;
    let client = db.client().await.unwrap();
    record_node_tasks(&db, &[report("monitor", "running", None), report("writer", "running", None)]).await.unwrap();
    let rows = read_since(&client, ReadModel::NodeTasks, 0).await.unwrap().node_tasks;
    assert_eq!(rows.len(), 2);
    let newest = rows.iter().map(|r| r.position).max().unwrap();

    // The same report again changes nothing a reader follows.
    record_node_tasks(&db, &[report("monitor", "running", None), report("writer", "running", None)]).await.unwrap();
    assert!(read_since(&client, ReadModel::NodeTasks, newest).await.unwrap().node_tasks.is_empty());

    // The monitor fails: only its row moves, and it says so in words.
    record_node_tasks(&db, &[report("monitor", "failing", Some("checkpoint refused".into()))]).await.unwrap();
    let changed = read_since(&client, ReadModel::NodeTasks, newest).await.unwrap().node_tasks;
    assert_eq!(changed.len(), 1);
    let m = &changed[0];
    assert_eq!(
        (m.task.as_str(), m.state.as_str(), m.down, m.label.as_str()),
        ("monitor", "failing", true, "anomaly detection")
    );
    assert_eq!(m.last_error.as_deref(), Some("checkpoint refused"));
    assert_eq!(m.restarts, 2);
    assert_eq!(m.down_since().unwrap(), "anomaly detection stopped since 2026-03-01 12:00:00 UTC");
}

#[tokio::test]
async fn a_hostile_error_text_is_stored_storable_and_short() {
    let db = plant_db().await;
    let client = db.client().await.unwrap();
    let hostile = format!("sensor \u{0}name\u{7}\r\n{}", "x".repeat(1_000_000));
    record_node_tasks(&db, &[report("monitor", "failing", Some(hostile)), report("writer", "running", None)])
        .await
        .unwrap();
    let rows = read_since(&client, ReadModel::NodeTasks, 0).await.unwrap().node_tasks;
    let m = rows.iter().find(|r| r.task == "monitor").unwrap();
    let stored = m.last_error.as_deref().unwrap();
    assert!(stored.starts_with("sensor \u{FFFD}name\u{7}\r\n"), "{:?}", &stored[..20]);
    assert_eq!(stored.chars().count(), 2_000);
    assert!(rows.iter().any(|r| r.task == "writer"), "the other rows of the report were stored too");
    // A task name or state never seen before is kept as it is, not lost.
    record_node_tasks(&db, &[report("forwarder", "draining", None)]).await.unwrap();
    let rows = read_since(&client, ReadModel::NodeTasks, 0).await.unwrap().node_tasks;
    let f = rows.iter().find(|r| r.task == "forwarder").unwrap();
    assert_eq!((f.label.as_str(), f.down), ("forwarding to the cloud", false));
}

#[tokio::test]
async fn the_links_lag_in_seconds_is_never_negative_when_the_next_event_is_newer_than_the_writers_clock() {
    let db = plant_db().await;
    let note = serde_json::json!({ "n": 1 });
    common::append_json(&db, "note-1", "NoteAdded", &note).await;
    // The forwarder records the link in a transaction of its own, whose clock (now())
    // stopped when it began; the plant appends its next event after that.
    let mut writer = db.client().await.unwrap();
    let tx = writer.transaction().await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    common::append_json(&db, "note-1", "NoteAdded", &note).await;
    let link = readmodels::forwarding::LinkState {
        plant_id: "P1".into(),
        state: "caught_up",
        acknowledged: 1,
        cloud_position: Some(1),
        last_shipped_at: None,
        last_error: None,
        last_error_at: None,
    };
    readmodels::forwarding::record(&tx, &link).await.unwrap();
    tx.commit().await.unwrap();
    let lag = readmodel_contract::forwarding_lag(&db.client().await.unwrap()).await.unwrap().unwrap();
    assert_eq!(lag.events, 1);
    assert_eq!(lag.seconds, 0.0, "a lag behind an event from the future reads as none, not as -0.0 s");
}
