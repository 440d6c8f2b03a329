//! A running plant node over real HTTP and PostgreSQL: `/v1/health` names every task
//! with its state and lag, answers 503 while one is down, and the `node_tasks` read
//! model (what the app and the status screen read) says "anomaly detection stopped".
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use eventlog::Database;
use layout::{Layout, Scale};
use pgcluster::testdb::TestDb;
use plant::GatewayTokens;
use plant::ingest::system_clock;
use plant::node::{NodeConfig, NodeSecrets};
use readmodel_contract::{ReadModel, read_since};
use tokio::sync::watch;

struct RunningNode {
    base: String,
    db: Database,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

async fn start() -> RunningNode {
    let test_db = TestDb::new().await.unwrap();
    let db = Database::new(&test_db.url, 16).unwrap();
    let scale = Scale { plants: Some(1), lines_per_plant: Some(2), sensors_per_plant: Some(40) };
    let layout = Layout::default_with(&scale).unwrap();
    let secrets = NodeSecrets {
        gateway_tokens: GatewayTokens::issue(&layout, 1, &GatewayTokens::default()).unwrap(),
        command_token: "c".repeat(40),
        reader_password: "reader-password-for-tests-0123456789".into(),
    };
    let mut config = NodeConfig::new(1, layout::DEFAULT_LAYOUT_TOML.into(), scale);
    config.tasks.report_every_ms = 500;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = watch::channel(false);
    let task = tokio::spawn(plant::node::run(
        db.clone(),
        config,
        secrets,
        listener,
        system_clock(),
        async move {
            let mut s = stopped;
            let _ = s.wait_for(|v| *v).await;
        },
        |_| {},
    ));
    RunningNode { base, db, stop, task }
}

async fn health(base: &str) -> (u16, serde_json::Value) {
    loop {
        if let Ok(r) = reqwest::get(format!("{base}/v1/health")).await {
            return (r.status().as_u16(), r.json().await.unwrap());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Polls `/v1/health` until `check` holds (the tasks settle within seconds).
async fn health_until(base: &str, what: &str, check: impl Fn(u16, &serde_json::Value) -> bool) -> serde_json::Value {
    for _ in 0..600 {
        let (status, body) = health(base).await;
        if check(status, &body) {
            return body;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("health never showed {what}: {:?}", health(base).await);
}

fn task<'a>(body: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    body["tasks"].as_array().unwrap().iter().find(|t| t["task"] == name).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_names_every_task_and_a_failing_monitor_is_503_and_shown_in_the_read_models() {
    let node = start().await;
    let body = health_until(&node.base, "every task running", |s, _| s == 200).await;
    let names: Vec<&str> = body["tasks"].as_array().unwrap().iter().map(|t| t["task"].as_str().unwrap()).collect();
    assert_eq!(names, ["history projection", "live projection", "monitor", "retention", "scorer", "writer"]);
    assert!(body["tasks"].as_array().unwrap().iter().all(|t| t["state"] == "running"), "{body}");
    assert!(task(&body, "monitor")["lag_events"].is_i64(), "a subscriber reports its lag: {body}");
    assert_eq!(task(&body, "monitor")["label"], "anomaly detection");

    // The monitor cannot store its checkpoint any more …
    let client = node.db.client().await.unwrap();
    client
        .batch_execute(
            "CREATE FUNCTION refuse_monitor() RETURNS trigger LANGUAGE plpgsql AS $$
             BEGIN IF NEW.subscriber = 'anomaly-monitor' THEN RAISE EXCEPTION 'the disk under the monitor is full'; END IF;
                   RETURN NEW; END $$;
             CREATE TRIGGER refuse_monitor BEFORE INSERT OR UPDATE ON eventlog.checkpoints
                 FOR EACH ROW EXECUTE FUNCTION refuse_monitor();",
        )
        .await
        .unwrap();
    // (every batch, idle or not, begins by making sure its checkpoint row exists):
    // wake it now rather than at its next idle re-check.
    client.batch_execute("NOTIFY floorwatch_log").await.unwrap();

    let body =
        health_until(&node.base, "the monitor failing", |s, b| s == 503 && task(b, "monitor")["state"] == "failing")
            .await;
    assert!(
        task(&body, "monitor")["last_error"].as_str().unwrap().contains("the disk under the monitor is full"),
        "{body}"
    );
    let problems = body["problems"].as_array().unwrap();
    assert!(problems.iter().any(|p| p.as_str().unwrap().starts_with("anomaly detection stopped since ")), "{body}");

    // What the app and the status screen read says so too.
    let row = loop {
        let rows = read_since(&client, ReadModel::NodeTasks, 0).await.unwrap().node_tasks;
        if let Some(r) = rows.into_iter().find(|r| r.task == "monitor" && r.down) {
            break r;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(row.label, "anomaly detection");
    assert!(row.down_since().unwrap().starts_with("anomaly detection stopped since "));

    // Fixed: the monitor reads again by itself, and health is 200 again.
    client.batch_execute("DROP TRIGGER refuse_monitor ON eventlog.checkpoints").await.unwrap();
    health_until(&node.base, "every task running again", |s, _| s == 200).await;

    node.stop.send(true).unwrap();
    node.task.await.unwrap().unwrap();
    // Stopped with the node: the read model says so.
    let rows = read_since(&client, ReadModel::NodeTasks, 0).await.unwrap().node_tasks;
    assert!(rows.iter().all(|r| r.state == "stopped"), "{rows:?}");
}
