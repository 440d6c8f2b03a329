//! The command API over real HTTP: every route refuses whoever may not act (no
//! credential, a revoked one, the wrong role, another plant's person), the actor in the
//! events is the signed-in person whatever the body says, rules decide, retries are
//! answered not repeated, bad requests get clear errors.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use access::{Role, Scope};
use chrono::{DateTime, Duration, TimeZone, Utc};
use domain::anomaly::ShelvePolicy;
use domain::events::*;
use eventlog::{Append, Database, ExpectedVersion, Metadata, NewEvent, StreamName};
use layout::{Layout, Scale};
use plant::commands::{Accepted, CommandState, Me, router};
use reqwest::StatusCode;
use serde_json::{Value, json};

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap()
}

struct Api {
    base: String,
    db: Database,
    layout: Arc<Layout>,
    http: reqwest::Client,
    /// A supervisor of this plant, "Ana".
    token: String,
}

async fn person(db: &Database, role: Role, plant: u16, name: &str) -> String {
    access::create(db, role, Scope::plant(plant), name).await.unwrap().1
}

async fn api() -> Api {
    let test_db = pgcluster::testdb::TestDb::new().await.unwrap();
    let db = Database::new(&test_db.url, 8).unwrap();
    plant::migrate(&db).await.unwrap();
    access::migrate(&db).await.unwrap();
    let layout = Arc::new(
        Layout::default_with(&Scale { plants: Some(1), lines_per_plant: Some(1), sensors_per_plant: Some(100) })
            .unwrap(),
    );
    let state = CommandState {
        db: db.clone(),
        layout: layout.clone(),
        plant_number: 1,
        // No remembered answers: a revocation counts at once.
        auth: Arc::new(access::Authenticator::new(db.clone(), std::time::Duration::ZERO)),
        clock: Arc::new(|| now().timestamp_millis()),
        shelve: ShelvePolicy::default(),
    };
    let token = person(&db, Role::Supervisor, 1, "Ana").await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router(state)).await.unwrap() });
    Api { base, db, layout, http: reqwest::Client::new(), token }
}

impl Api {
    async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.post_as(Some(&self.token), path, body).await
    }

    async fn post_as(&self, token: Option<&str>, path: &str, body: Value) -> (StatusCode, Value) {
        let mut request = self.http.post(format!("{}{path}", self.base)).json(&body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let r = request.send().await.unwrap();
        let status = r.status();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    async fn events(&self, stream: &str) -> Vec<eventlog::RecordedEvent> {
        let client = self.db.client().await.unwrap();
        eventlog::read_stream(&client, &StreamName::new(stream).unwrap(), 0, 100).await.unwrap()
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
    let ack = |id: &str| json!({ "command_id": id, "note": "checking" });
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
    assert!(body["error"]["message"].as_str().unwrap().contains("already acknowledged by Ana"));
    assert_eq!(api.stream_types("anomaly-A-1").await, [ANOMALY_DETECTED, ANOMALY_ACKNOWLEDGED]);

    let (status, _) = api.post("/v1/commands/anomalies/NOPE/acknowledge", ack("cmd-0003")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn shelving_and_notes_follow_their_rules() {
    let api = api().await;
    api.detected("A-2").await;
    let shelve = |id: &str, until: DateTime<Utc>| json!({ "command_id": id, "until": until, "note": "" });
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
        .post("/v1/commands/anomalies/A-2/notes", json!({ "command_id": "note-0001", "text": "pump swapped" }))
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) =
        api.post("/v1/commands/anomalies/A-2/notes", json!({ "command_id": "note-0002", "text": "" })).await;
    assert_eq!((status, body["error"]["code"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid")));
}

#[tokio::test]
async fn work_orders_open_once_and_close_with_service() {
    let api = api().await;
    let m = api.layout.machines()[1].id.clone();
    let schedule = |id: &str, kind: &str| json!({ "command_id": id, "kind": kind, "scheduled_for": now() + Duration::days(1), "note": "" });
    let perform = |id: &str| json!({ "command_id": id, "note": "done" });
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
async fn malformed_commands_get_clear_errors() {
    let api = api().await;
    api.detected("A-3").await;
    let url = format!("{}/v1/commands/anomalies/A-3/acknowledge", api.base);
    for (body, code) in [
        (json!({}), "invalid_body"),
        (json!({ "command_id": "cmd-00001", "extra": 1 }), "invalid_body"),
        (json!({ "command_id": "short" }), "invalid_command_id"),
        (json!({ "command_id": "has spaces in it" }), "invalid_command_id"),
        (json!({ "command_id": "cmd-00001\u{0}" }), "invalid_command_id"),
        (json!({ "command_id": "cmd-00001", "note": "x".repeat(3000) }), "invalid"),
        (json!({ "command_id": "cmd-00001", "note": "bell\u{7}" }), "invalid"),
    ] {
        let (status, reply) = api.post("/v1/commands/anomalies/A-3/acknowledge", body.clone()).await;
        assert_eq!((status, reply["error"]["code"].as_str()), (StatusCode::BAD_REQUEST, Some(code)), "{body}");
    }
    let raw = api
        .http
        .post(&url)
        .bearer_auth(&api.token)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status(), StatusCode::BAD_REQUEST);
    let (status, _) =
        api.post("/v1/commands/anomalies/A-3/shelve", json!({ "command_id": "cmd-00009", "until": "tomorrow" })).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(api.stream_types("anomaly-A-3").await, [ANOMALY_DETECTED], "nothing was appended");
}

#[tokio::test]
async fn the_actor_in_the_events_is_the_signed_in_person_never_a_name_in_the_body() {
    let api = api().await;
    api.detected("A-4").await;
    let (status, reply) =
        api.post("/v1/commands/anomalies/A-4/acknowledge", json!({ "command_id": "cmd-00041", "by": "mallory" })).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{reply}");
    assert!(reply["error"]["message"].as_str().unwrap().contains("`by` is not accepted"), "{reply}");
    let (status, _) =
        api.post("/v1/commands/anomalies/A-4/acknowledge", json!({ "command_id": "cmd-00042", "note": "on it" })).await;
    assert_eq!(status, StatusCode::OK);
    let events = api.events("anomaly-A-4").await;
    let ack: AnomalyAcknowledged = events[1].json().unwrap();
    assert_eq!(ack.by, "Ana");
    let actor = events[1].metadata.actor.clone().unwrap();
    assert!(actor.starts_with("Ana (") && actor.len() > "Ana ()".len(), "{actor}");

    let mo = person(&api.db, Role::Maintenance, 1, "Mo Keller").await;
    let m = api.layout.machines()[0].id.clone();
    let body = json!({ "command_id": "sched-0042", "kind": "planned", "scheduled_for": now() + Duration::days(2) });
    let (status, _) = api.post_as(Some(&mo), &format!("/v1/commands/machines/{m}/maintenance/schedule"), body).await;
    assert_eq!(status, StatusCode::OK);
    let scheduled: MaintenanceScheduled = api.events(&format!("maintenance-{m}")).await[0].json().unwrap();
    assert_eq!(scheduled.by, "Mo Keller");

    let me: Me =
        api.http.get(format!("{}/v1/me", api.base)).bearer_auth(&mo).send().await.unwrap().json().await.unwrap();
    assert_eq!((me.name.as_str(), me.role, me.plant), ("Mo Keller", Role::Maintenance, 1));
}

#[tokio::test]
async fn every_command_route_refuses_who_may_not_act_and_stores_nothing() {
    let api = api().await;
    api.detected("A-5").await;
    let m = api.layout.machines()[0].id.clone();
    let viewer = person(&api.db, Role::Viewer, 1, "Vic").await;
    let maintenance = person(&api.db, Role::Maintenance, 1, "Mo").await;
    let other_plant = person(&api.db, Role::Supervisor, 2, "Otto").await;
    let (revoked_credential, revoked) =
        access::create(&api.db, Role::Supervisor, Scope::plant(1), "Rita").await.unwrap();
    assert!(access::revoke(&api.db, &revoked_credential.id).await.unwrap());
    let forged = format!("fwt_{}_{}", "0".repeat(16), "0".repeat(64));
    let later = now() + Duration::hours(1);
    // (route, body, who may act, a role that may not)
    let routes: Vec<(String, Value, &str)> = vec![
        ("/v1/commands/anomalies/A-5/acknowledge".into(), json!({ "command_id": "cmd-10001" }), "supervisor"),
        (
            "/v1/commands/anomalies/A-5/shelve".into(),
            json!({ "command_id": "cmd-10002", "until": later }),
            "supervisor",
        ),
        ("/v1/commands/anomalies/A-5/notes".into(), json!({ "command_id": "cmd-10003", "text": "n" }), "supervisor"),
        (
            format!("/v1/commands/machines/{m}/maintenance/schedule"),
            json!({ "command_id": "cmd-10004", "kind": "planned", "scheduled_for": later }),
            "maintenance",
        ),
        (format!("/v1/commands/machines/{m}/maintenance/perform"), json!({ "command_id": "cmd-10005" }), "maintenance"),
    ];
    for (path, body, needs) in &routes {
        let wrong_role = if *needs == "supervisor" { &maintenance } else { &viewer };
        for (who, token, status, code) in [
            ("no credential", None, StatusCode::UNAUTHORIZED, "unauthorized"),
            ("a forged token", Some(forged.as_str()), StatusCode::UNAUTHORIZED, "unauthorized"),
            ("a revoked credential", Some(revoked.as_str()), StatusCode::UNAUTHORIZED, "unauthorized"),
            ("a viewer", Some(viewer.as_str()), StatusCode::FORBIDDEN, "forbidden"),
            ("the wrong role", Some(wrong_role.as_str()), StatusCode::FORBIDDEN, "forbidden"),
            ("another plant's supervisor", Some(other_plant.as_str()), StatusCode::FORBIDDEN, "forbidden"),
        ] {
            let (got, reply) = api.post_as(token, path, body.clone()).await;
            assert_eq!((got, reply["error"]["code"].as_str()), (status, Some(code)), "{path} by {who}: {reply}");
        }
    }
    assert_eq!(api.stream_types("anomaly-A-5").await, [ANOMALY_DETECTED], "nothing was appended");
    assert!(api.stream_types(&format!("maintenance-{m}")).await.is_empty(), "nothing was appended");
    // The people who may, may.
    for (path, body, needs) in &routes {
        let token = if *needs == "supervisor" { api.token.clone() } else { maintenance.clone() };
        let (got, reply) = api.post_as(Some(&token), path, body.clone()).await;
        assert_eq!(got, StatusCode::OK, "{path} by a {needs}: {reply}");
    }
    // A supervisor also records service (the role grants it).
    let body = json!({ "command_id": "cmd-10006", "kind": "planned", "scheduled_for": later });
    let (got, _) = api.post(&format!("/v1/commands/machines/{m}/maintenance/schedule"), body).await;
    assert_eq!(got, StatusCode::OK);
}
