//! The command API over real HTTP: rules decide, retries are answered not repeated,
//! bad requests get clear errors.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use chrono::{DateTime, Duration, TimeZone, Utc};
use domain::anomaly::ShelvePolicy;
use domain::events::*;
use eventlog::{Append, Database, ExpectedVersion, Metadata, NewEvent, StreamName};
use layout::{Layout, Scale};
use plant::commands::{Accepted, CommandState, router};
use reqwest::StatusCode;
use serde_json::{Value, json};

const TOKEN: &str = "command-token-for-tests-0123456789abcdef";

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap()
}

struct Api {
    base: String,
    db: Database,
    layout: Arc<Layout>,
    http: reqwest::Client,
}

async fn api() -> Api {
    let test_db = pgcluster::testdb::TestDb::new().await.unwrap();
    let db = Database::new(&test_db.url, 8).unwrap();
    plant::migrate(&db).await.unwrap();
    let layout = Arc::new(
        Layout::default_with(&Scale { plants: Some(1), lines_per_plant: Some(1), sensors_per_plant: Some(100) })
            .unwrap(),
    );
    let state = CommandState {
        db: db.clone(),
        layout: layout.clone(),
        token: Arc::new(TOKEN.into()),
        clock: Arc::new(|| now().timestamp_millis()),
        shelve: ShelvePolicy::default(),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router(state)).await.unwrap() });
    Api { base, db, layout, http: reqwest::Client::new() }
}

impl Api {
    async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        let r = self.http.post(format!("{}{path}", self.base)).bearer_auth(TOKEN).json(&body).send().await.unwrap();
        let status = r.status();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    async fn detected(&self, id: &str) {
        let m = &self.layout.machines()[0];
        let d = AnomalyDetected {
            anomaly_id: id.into(),
            machine_id: m.id.clone(),
            line_id: self.layout.lines()[0].id.clone(),
            started_at: now(),
            severity: Severity::Major,
            score: 0.9,
            sensors: vec![],
            explanation: "x".into(),
            detector_version: "t".into(),
        };
        let e = NewEvent::json(ANOMALY_DETECTED, 1, &d, Metadata::by("anomaly-monitor")).unwrap();
        let s = StreamName::of(ANOMALY, id).unwrap();
        eventlog::append_and_commit(&self.db, &[Append::new(s, ExpectedVersion::Any, vec![e])]).await.unwrap();
    }

    async fn stream_types(&self, stream: &str) -> Vec<String> {
        let client = self.db.client().await.unwrap();
        eventlog::read_stream(&client, &StreamName::new(stream).unwrap(), 0, 100)
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.event_type)
            .collect()
    }
}

#[tokio::test]
async fn acknowledging_is_decided_by_the_rules_and_retries_are_answered_once() {
    let api = api().await;
    api.detected("A-1").await;
    let ack = |id: &str| json!({ "command_id": id, "by": "alice", "note": "checking" });
    let (status, body) = api.post("/v1/commands/anomalies/A-1/acknowledge", ack("cmd-0001")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let first: Accepted = serde_json::from_value(body).unwrap();
    assert!(!first.duplicate);

    let (status, body) = api.post("/v1/commands/anomalies/A-1/acknowledge", ack("cmd-0001")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        serde_json::from_value::<Accepted>(body).unwrap(),
        Accepted { position: first.position, duplicate: true }
    );

    let (status, body) = api.post("/v1/commands/anomalies/A-1/acknowledge", ack("cmd-0002")).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(body["error"]["message"].as_str().unwrap().contains("already acknowledged by alice"));
    assert_eq!(api.stream_types("anomaly-A-1").await, [ANOMALY_DETECTED, ANOMALY_ACKNOWLEDGED]);

    let (status, _) = api.post("/v1/commands/anomalies/NOPE/acknowledge", ack("cmd-0003")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn shelving_and_notes_follow_their_rules() {
    let api = api().await;
    api.detected("A-2").await;
    let shelve = |id: &str, until: DateTime<Utc>| json!({ "command_id": id, "by": "bob", "until": until, "note": "" });
    let (status, body) =
        api.post("/v1/commands/anomalies/A-2/shelve", shelve("shelve-01", now() - Duration::minutes(1))).await;
    assert_eq!((status, body["error"]["code"].as_str()), (StatusCode::CONFLICT, Some("rejected")));
    let (status, _) =
        api.post("/v1/commands/anomalies/A-2/shelve", shelve("shelve-02", now() + Duration::hours(13))).await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (status, _) =
        api.post("/v1/commands/anomalies/A-2/shelve", shelve("shelve-03", now() + Duration::hours(2))).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = api
        .post(
            "/v1/commands/anomalies/A-2/notes",
            json!({ "command_id": "note-0001", "by": "bob", "text": "pump swapped" }),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = api
        .post("/v1/commands/anomalies/A-2/notes", json!({ "command_id": "note-0002", "by": "bob", "text": "" }))
        .await;
    assert_eq!((status, body["error"]["code"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid")));
}

#[tokio::test]
async fn work_orders_open_once_and_close_with_service() {
    let api = api().await;
    let m = api.layout.machines()[1].id.clone();
    let schedule = |id: &str, kind: &str| json!({ "command_id": id, "by": "maria", "kind": kind, "scheduled_for": now() + Duration::days(1), "note": "" });
    let perform = |id: &str| json!({ "command_id": id, "by": "tom", "note": "done" });
    let path = |what: &str| format!("/v1/commands/machines/{m}/maintenance/{what}");
    assert_eq!(
        api.post(&path("perform"), perform("perf-0001")).await.0,
        StatusCode::CONFLICT,
        "nothing to perform yet"
    );
    assert_eq!(api.post(&path("schedule"), schedule("sched-001", "planned")).await.0, StatusCode::OK);
    assert_eq!(api.post(&path("schedule"), schedule("sched-002", "emergency")).await.0, StatusCode::CONFLICT);
    assert_eq!(api.post(&path("perform"), perform("perf-0002")).await.0, StatusCode::OK);
    assert_eq!(api.post(&path("schedule"), schedule("sched-003", "emergency")).await.0, StatusCode::OK);
    assert_eq!(
        api.stream_types(&format!("maintenance-{m}")).await,
        [MAINTENANCE_SCHEDULED, MAINTENANCE_PERFORMED, MAINTENANCE_SCHEDULED]
    );
    let (status, _) =
        api.post("/v1/commands/machines/P1-L09-M999/maintenance/schedule", schedule("sched-004", "planned")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn malformed_and_unauthorised_commands_get_clear_errors() {
    let api = api().await;
    api.detected("A-3").await;
    let url = format!("{}/v1/commands/anomalies/A-3/acknowledge", api.base);
    let ok = json!({ "command_id": "cmd-00001", "by": "al" });
    let no_token = api.http.post(&url).json(&ok).send().await.unwrap();
    assert_eq!(no_token.status(), StatusCode::UNAUTHORIZED);
    let wrong = api.http.post(&url).bearer_auth("x".repeat(TOKEN.len())).json(&ok).send().await.unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    for (body, code) in [
        (json!({ "by": "al" }), "invalid_body"),
        (json!({ "command_id": "cmd-00001", "by": "al", "extra": 1 }), "invalid_body"),
        (json!({ "command_id": "short", "by": "al" }), "invalid_command_id"),
        (json!({ "command_id": "has spaces in it", "by": "al" }), "invalid_command_id"),
        (json!({ "command_id": "cmd-00001", "by": "" }), "invalid"),
        (json!({ "command_id": "cmd-00001", "by": "al", "note": "x".repeat(3000) }), "invalid"),
    ] {
        let (status, reply) = api.post("/v1/commands/anomalies/A-3/acknowledge", body.clone()).await;
        assert_eq!((status, reply["error"]["code"].as_str()), (StatusCode::BAD_REQUEST, Some(code)), "{body}");
    }
    let raw = api
        .http
        .post(&url)
        .bearer_auth(TOKEN)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status(), StatusCode::BAD_REQUEST);
    let (status, _) = api
        .post(
            "/v1/commands/anomalies/A-3/shelve",
            json!({ "command_id": "cmd-00009", "by": "al", "until": "tomorrow" }),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(api.stream_types("anomaly-A-3").await, [ANOMALY_DETECTED], "nothing was appended");
}
