//! The time-travel routes over real HTTP: who may ask, what a hostile query gets, and
//! that the answer is the fold's.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use access::{Role, Scope};
use chrono::{DateTime, Duration, TimeZone, Utc};
use domain::anomaly::ShelvePolicy;
use domain::events::*;
use eventlog::{Append, Database, ExpectedVersion, Metadata, NewEvent, StreamName};
use layout::{Layout, Scale};
use plant::commands::CommandState;
use plant::timetravel::{TimeTravelState, router};
use readmodels::timetravel::{ChangeKind, Clock, Diff, Floor, ShiftReport};
use reqwest::StatusCode;
use serde_json::Value;
use telemetry::Reading;

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap()
}

/// The node's clock: an hour after the factory started.
fn now() -> DateTime<Utc> {
    t0() + Duration::hours(1)
}

struct Api {
    base: String,
    db: Database,
    http: reqwest::Client,
    viewer: String,
}

fn scale() -> Scale {
    Scale { plants: Some(1), lines_per_plant: Some(1), sensors_per_plant: Some(100) }
}

async fn append(db: &Database, stream: &str, event_type: &str, body: &impl serde::Serialize) {
    let e = NewEvent::json(event_type, 1, body, Metadata::by("test")).unwrap();
    let s = StreamName::new(stream).unwrap();
    eventlog::append_and_commit(db, &[Append::new(s, ExpectedVersion::Any, vec![e])]).await.unwrap();
}

/// A plant that ran ten minutes, with one anomaly acknowledged after two.
async fn api() -> Api {
    let test_db = pgcluster::testdb::TestDb::new().await.unwrap();
    let db = Database::new(&test_db.url, 8).unwrap();
    plant::migrate(&db).await.unwrap();
    readmodels::migrate(&db).await.unwrap();
    access::migrate(&db).await.unwrap();
    let layout = Arc::new(Layout::default_with(&scale()).unwrap());
    let configured = LayoutConfigured {
        plant: 1,
        layout_toml: layout::DEFAULT_LAYOUT_TOML.to_owned(),
        plants: scale().plants,
        lines_per_plant: scale().lines_per_plant,
        sensors_per_plant: scale().sensors_per_plant,
        stale_after_ms: 30_000,
    };
    append(&db, "plant-P1", LAYOUT_CONFIGURED, &configured).await;
    for minute in 0..10 {
        let ts = (t0() + Duration::minutes(minute)).timestamp_millis();
        let readings: Vec<Reading> = layout
            .sensors()
            .iter()
            .map(|s| {
                let (lo, hi) = layout.sensor(s.id).unwrap().normal_range();
                Reading::new(s.id, ts, f64::from(((lo + hi) / 2.0) as f32))
            })
            .collect();
        let e = NewEvent::readings(&readings, (i64::MIN / 4, i64::MAX / 4), Metadata::from_source("gateway:P1-L01"))
            .unwrap();
        let s = StreamName::of("readings", &layout.lines()[0].id).unwrap();
        eventlog::append_and_commit(&db, &[Append::new(s, ExpectedVersion::Any, vec![e])]).await.unwrap();
        if minute == 3 {
            let m = &layout.machines()[0];
            let d = AnomalyDetected {
                anomaly_id: "A-1".into(),
                machine_id: m.id.clone(),
                line_id: layout.lines()[0].id.clone(),
                started_at: t0() + Duration::minutes(3),
                severity: Severity::Critical,
                score: 0.97,
                sensors: vec![],
                explanation: "spike".into(),
                detector_version: "t".into(),
            };
            append(&db, "anomaly-A-1", ANOMALY_DETECTED, &d).await;
        }
        if minute == 5 {
            let a = AnomalyAcknowledged {
                anomaly_id: "A-1".into(),
                by: "Ana".into(),
                note: "checking".into(),
                at: t0() + Duration::minutes(5),
            };
            append(&db, "anomaly-A-1", ANOMALY_ACKNOWLEDGED, &a).await;
        }
    }
    readmodels::catch_up(&db, readmodels::ProjectionConfig::new(1)).await.unwrap();
    let commands = CommandState {
        db: db.clone(),
        layout,
        plant_number: 1,
        auth: Arc::new(access::Authenticator::new(db.clone(), std::time::Duration::ZERO)),
        clock: Arc::new(|| now().timestamp_millis()),
        shelve: ShelvePolicy::default(),
    };
    let viewer = access::create(&db, Role::Viewer, Scope::plant(1), "Vic").await.unwrap().1;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let app = router(TimeTravelState::new(commands, 7, 2));
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Api { base, db, http: reqwest::Client::new(), viewer }
}

impl Api {
    async fn get(&self, token: Option<&str>, path_and_query: &str) -> (StatusCode, String) {
        let mut r = self.http.get(format!("{}{path_and_query}", self.base));
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        let r = r.send().await.unwrap();
        (r.status(), r.text().await.unwrap())
    }
}

fn ms(minutes: i64) -> i64 {
    (t0() + Duration::minutes(minutes)).timestamp_millis()
}

#[tokio::test]
async fn anyone_of_the_plant_reads_the_plant_at_an_instant_as_the_fold_gives_it() {
    let api = api().await;
    let v = Some(api.viewer.as_str());
    let path = format!("/v1/timetravel/floor?at={}&clock=known", ms(4));
    let (status, body) = api.get(v, &path).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let served: Floor = serde_json::from_str(&body).unwrap();
    let client = api.db.client().await.unwrap();
    let (direct, _) = readmodels::timetravel::floor_at(&client, 1, Clock::Known, ms(4), None).await.unwrap();
    assert_eq!(served, direct);

    // As it happened, four minutes in: the anomaly is open and not yet acknowledged;
    // six minutes in it is acknowledged by Ana, with her note.
    let at = |m: i64| {
        format!(
            "/v1/timetravel/floor?at={}",
            (t0() + Duration::minutes(m)).to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
        )
    };
    let floor: Floor = serde_json::from_str(&api.get(v, &at(4)).await.1).unwrap();
    assert_eq!(floor.clock, Clock::Happened);
    assert_eq!(floor.anomalies[0].state, "new");
    assert_eq!(floor.plant_status.as_ref().unwrap().open_critical, 1);
    let floor: Floor = serde_json::from_str(&api.get(v, &at(6)).await.1).unwrap();
    assert_eq!(floor.anomalies[0].acknowledged_by.as_deref(), Some("Ana"));
    assert_eq!(floor.anomalies[0].notes[0].text, "checking");
    // Before the anomaly, every sensor ok and nothing open.
    let floor: Floor = serde_json::from_str(&api.get(v, &at(2)).await.1).unwrap();
    assert!(floor.anomalies.is_empty());
    assert_eq!(floor.sensor_state.len(), 100);
    assert!(floor.sensor_state.iter().all(|s| s.status == "ok" && s.ts_ms == ms(2)));

    let (status, body) = api.get(v, &format!("/v1/timetravel/changes?from={}&to={}", ms(2), ms(8))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let diff: Diff = serde_json::from_str(&body).unwrap();
    let kinds: Vec<ChangeKind> = diff.changes.iter().filter(|c| c.anomaly_id.is_some()).map(|c| c.kind).collect();
    assert_eq!(kinds, [ChangeKind::AnomalyOpened, ChangeKind::AnomalyAcknowledged]);

    let path = format!("/v1/timetravel/shift-report?from={}&to={}", ms(0), ms(10));
    let (status, body) = api.get(v, &path).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let report: ShiftReport = serde_json::from_str(&body).unwrap();
    assert_eq!(report.anomalies[0].time_to_acknowledge_s, Some(120.0));
    let r = api.http.get(format!("{}{path}&format=csv", api.base)).bearer_auth(&api.viewer).send().await.unwrap();
    assert_eq!(r.headers()["content-type"], "text/csv; charset=utf-8");
    let csv = r.text().await.unwrap();
    assert!(csv.starts_with("section,at,machine,item,by,state,detail\n"), "{csv}");
    assert!(csv.contains("open_anomaly,") && csv.contains("note,"), "{csv}");
}

#[tokio::test]
async fn only_people_of_this_plant_may_ask_and_before_anything_is_read() {
    let api = api().await;
    let other_plant = access::create(&api.db, Role::Supervisor, Scope::plant(2), "Otto").await.unwrap().1;
    let (revoked_credential, revoked) = access::create(&api.db, Role::Viewer, Scope::plant(1), "Rita").await.unwrap();
    assert!(access::revoke(&api.db, &revoked_credential.id).await.unwrap());
    let forged = format!("fwt_{}_{}", "0".repeat(16), "0".repeat(64));
    for path in
        ["/v1/timetravel/floor?at=0", "/v1/timetravel/changes?from=0&to=1", "/v1/timetravel/shift-report?from=0&to=1"]
    {
        for (token, expected) in [
            (None, StatusCode::UNAUTHORIZED),
            (Some(forged.as_str()), StatusCode::UNAUTHORIZED),
            (Some(revoked.as_str()), StatusCode::UNAUTHORIZED),
            (Some(other_plant.as_str()), StatusCode::FORBIDDEN),
        ] {
            let (status, body) = api.get(token, path).await;
            assert_eq!(status, expected, "{path}: {body}");
            let error: Value = serde_json::from_str(&body).unwrap();
            assert!(error["error"]["code"].is_string(), "{body}");
        }
    }
}

#[tokio::test]
async fn hostile_and_impossible_instants_are_refused_by_name() {
    let api = api().await;
    let v = Some(api.viewer.as_str());
    let long = "9".repeat(4_000);
    let cases: Vec<(String, &str)> = vec![
        ("/v1/timetravel/floor".into(), "bad_parameter"),
        ("/v1/timetravel/floor?at=NaN".into(), "bad_parameter"),
        ("/v1/timetravel/floor?at=inf".into(), "bad_parameter"),
        ("/v1/timetravel/floor?at=-inf".into(), "bad_parameter"),
        ("/v1/timetravel/floor?at=1e300".into(), "bad_parameter"),
        ("/v1/timetravel/floor?at=%00".into(), "bad_parameter"),
        ("/v1/timetravel/floor?at=%FF%FE".into(), "bad_parameter"),
        (format!("/v1/timetravel/floor?at={long}"), "bad_parameter"),
        (format!("/v1/timetravel/floor?at={}&clock=%00evil", ms(1)), "bad_parameter"),
        (format!("/v1/timetravel/floor?at={}&by=Ana", ms(1)), "bad_parameter"),
        // Before the retention window, and in the future.
        (format!("/v1/timetravel/floor?at={}", ms(-8 * 24 * 60)), "out_of_window"),
        (format!("/v1/timetravel/floor?at={}", i64::MIN), "out_of_window"),
        (format!("/v1/timetravel/floor?at={}", i64::MAX), "bad_parameter"),
        (format!("/v1/timetravel/floor?at={}", ms(24 * 60)), "bad_parameter"),
        (format!("/v1/timetravel/changes?from={}&to={}", ms(5), ms(5)), "bad_parameter"),
        (format!("/v1/timetravel/changes?from={}&to={}", ms(5), ms(1)), "bad_parameter"),
        (format!("/v1/timetravel/changes?from={}&to={}", ms(-25 * 60), ms(0)), "range_too_long"),
        (format!("/v1/timetravel/shift-report?from={}&to={}&format=pdf%00", ms(0), ms(5)), "bad_parameter"),
    ];
    for (path, code) in cases {
        let (status, body) = api.get(v, &path).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}: {body}");
        let error: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(error["error"]["code"], code, "{path}: {body}");
        let message = error["error"]["message"].as_str().unwrap();
        assert!(message.len() < 300 && !message.contains('\0'), "{message}");
    }
}
