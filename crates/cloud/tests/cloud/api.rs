//! The query API over real HTTP: its document lists exactly its routes, every route
//! refuses a missing token, the wrong role and the wrong plant, every bad parameter gets
//! a clear 400, lists page, and live updates resume without missing anything.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use access::{Role, Scope};
use reqwest::StatusCode;
use serde_json::Value;

use crate::projections::{plant_story, projected};
use crate::support::*;

struct Api {
    cloud: eventlog::Database,
    node: CloudNode,
    http: reqwest::Client,
    plants: Vec<Plant>,
    forwarders: Vec<(tokio::sync::oneshot::Sender<()>, tokio::task::JoinHandle<anyhow::Result<()>>)>,
    t0: i64,
}

impl Api {
    /// A cloud holding two plants' stories.
    async fn start() -> Api {
        let cloud = cloud_db().await;
        let node = CloudNode::start(&cloud, 0).await;
        let plants = vec![Plant::new(1, 2).await, Plant::new(2, 2).await];
        let mut forwarders = Vec::new();
        for p in &plants {
            let t = token(&cloud, Role::Forwarder, Scope::plant(p.number)).await;
            forwarders.push(forwarder(p, &node.url, &t));
        }
        let t0 = {
            let now = now_s() - 86_400_000;
            now - now.rem_euclid(3_600_000)
        };
        futures_util::future::join_all(plants.iter().map(|p| plant_story(p, t0, 20))).await;
        for p in &plants {
            wait_for("the logs to arrive", Duration::from_secs(60), || async {
                cloud_copy(&cloud, p.number).await.len() == plant_log(&p.db).await.len()
            })
            .await;
        }
        projected(&cloud).await;
        Api { cloud, node, http: reqwest::Client::new(), plants, forwarders, t0 }
    }

    async fn get(&self, path: &str, token: Option<&str>) -> (StatusCode, Value) {
        let mut request = self.http.get(format!("{}{path}", self.node.url));
        if let Some(t) = token {
            request = request.bearer_auth(t);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    async fn stop(self) {
        self.node.stop().await;
        for (stop, task) in self.forwarders {
            let _ = stop.send(());
            task.await.unwrap().unwrap();
        }
    }
}

fn code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or("")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_openapi_document_lists_every_route_and_nothing_else() {
    let cloud = cloud_db().await;
    let (_, changes) = tokio::sync::watch::channel(0);
    let (_, routes) = cloud::api::router(cloud::api::ApiState::new(cloud.clone(), config(), changes));
    let mut served: Vec<(String, String)> = routes.iter().map(|r| (r.method.to_string(), r.path.to_owned())).collect();
    served.sort();
    let document: Value = serde_json::from_str(cloud::api::openapi::DOCUMENT).unwrap();
    assert_eq!(cloud::api::openapi::operations(&document), served);
    assert_eq!(document["openapi"], "3.0.3");
    // Served as it is, without a token.
    let node = CloudNode::start(&cloud, 0).await;
    let body: Value = reqwest::get(format!("{}/v1/openapi.json", node.url)).await.unwrap().json().await.unwrap();
    assert_eq!(body, document);
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_route_refuses_a_missing_token_the_wrong_role_and_the_wrong_plant() {
    let api = Api::start().await;
    let db = &api.cloud;
    let manager = token(db, Role::Manager, Scope::AllPlants).await;
    let viewer1 = token(db, Role::Viewer, Scope::plant(1)).await;
    let viewer2 = token(db, Role::Viewer, Scope::plant(2)).await;
    let admin = token(db, Role::Admin, Scope::AllPlants).await;
    let forwarder1 = token(db, Role::Forwarder, Scope::plant(1)).await;
    let forwarder2 = token(db, Role::Forwarder, Scope::plant(2)).await;
    let (revoked, revoked_token) = access::create(db, Role::Manager, Scope::AllPlants, "gone").await.unwrap();
    access::revoke(db, &revoked.id).await.unwrap();
    let m = api.plants[0].machine(0);
    let (from, to) = (rfc3339(at(api.t0)), rfc3339(at(api.t0 + 3_600_000)));
    // Routes that read plant 1's data: (path, allowed, refused for its role, refused for its plant).
    let reads = [
        "/v1/plants/1/lines".to_owned(),
        "/v1/plants/1/machines".to_owned(),
        format!("/v1/machines/{m}"),
        format!("/v1/machines/{m}/trend?from={from}&to={to}"),
        format!("/v1/machines/{m}/predictions"),
        format!("/v1/kpis?plant=1&from={from}&to={to}"),
        "/v1/anomalies?plant=1".to_owned(),
        "/v1/maintenance?plant=1".to_owned(),
        "/v1/maintenance/log?plant=1".to_owned(),
    ];
    for path in &reads {
        assert_eq!(api.get(path, None).await.0, StatusCode::UNAUTHORIZED, "{path} without a token");
        assert_eq!(api.get(path, Some("fwt_nonsense")).await.0, StatusCode::UNAUTHORIZED, "{path}");
        assert_eq!(api.get(path, Some(&revoked_token)).await.0, StatusCode::UNAUTHORIZED, "{path} revoked");
        for wrong_role in [&admin, &forwarder1] {
            let (status, body) = api.get(path, Some(wrong_role)).await;
            assert_eq!((status, code(&body)), (StatusCode::FORBIDDEN, "forbidden"), "{path}: {body}");
        }
        let (status, body) = api.get(path, Some(&viewer2)).await;
        assert_eq!((status, code(&body)), (StatusCode::FORBIDDEN, "forbidden"), "{path} for plant 2's viewer: {body}");
        for allowed in [&viewer1, &manager] {
            let (status, body) = api.get(path, Some(allowed)).await;
            assert_eq!(status, StatusCode::OK, "{path}: {body}");
        }
    }
    // Lists without a plant: each viewer sees only its plants.
    for (path, plural) in [("/v1/plants", false), ("/v1/anomalies", true), ("/v1/maintenance", true)] {
        assert_eq!(api.get(path, None).await.0, StatusCode::UNAUTHORIZED);
        assert_eq!(api.get(path, Some(&admin)).await.0, StatusCode::FORBIDDEN);
        assert_eq!(api.get(path, Some(&forwarder1)).await.0, StatusCode::FORBIDDEN);
        let plants_of = |body: &Value| -> BTreeSet<i64> {
            let rows = if plural { body["items"].as_array() } else { body.as_array() };
            rows.into_iter().flatten().filter_map(|r| r["plant"].as_i64()).collect()
        };
        assert_eq!(plants_of(&api.get(path, Some(&viewer1)).await.1), BTreeSet::from([1]), "{path}");
        assert_eq!(plants_of(&api.get(path, Some(&manager)).await.1), BTreeSet::from([1, 2]), "{path}");
    }
    assert_eq!(api.get("/v1/models", None).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(api.get("/v1/models", Some(&forwarder1)).await.0, StatusCode::FORBIDDEN);
    assert_eq!(api.get("/v1/models", Some(&viewer1)).await.0, StatusCode::OK);
    assert_eq!(api.get("/v1/events?plant=1", Some(&viewer2)).await.0, StatusCode::FORBIDDEN);
    assert_eq!(api.get("/v1/events", None).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(api.get("/v1/events", Some(&admin)).await.0, StatusCode::FORBIDDEN);

    // The ingest routes: only plant 1's forwarder, for plant 1.
    for path in ["/v1/ingest/plants/1/position", "/v1/ingest/plants/1/models/active"] {
        assert_eq!(api.get(path, None).await.0, StatusCode::UNAUTHORIZED, "{path}");
        for wrong in [&manager, &viewer1, &admin] {
            assert_eq!(api.get(path, Some(wrong)).await.0, StatusCode::FORBIDDEN, "{path}");
        }
        assert_eq!(api.get(path, Some(&forwarder2)).await.0, StatusCode::FORBIDDEN, "{path}");
    }
    assert_eq!(api.get("/v1/ingest/plants/1/position", Some(&forwarder1)).await.0, StatusCode::OK);
    let (status, body) = api.get("/v1/ingest/plants/1/models/active", Some(&forwarder1)).await;
    assert_eq!((status, code(&body)), (StatusCode::NOT_FOUND, "not_found"), "no model is active yet");
    let post = |token: Option<&str>, plant: u16, body: Vec<u8>| {
        let mut r = api
            .http
            .post(format!("{}/v1/ingest/plants/{plant}/events", api.node.url))
            .header("content-type", forwarder::wire::CONTENT_TYPE)
            .body(body);
        if let Some(t) = token {
            r = r.bearer_auth(t.to_owned());
        }
        r.send()
    };
    let empty = |plant: u16, after: i64| forwarder::wire::WireBatch::new(plant, after, vec![]).encode();
    assert_eq!(post(None, 1, empty(1, 0)).await.unwrap().status(), StatusCode::UNAUTHORIZED);
    for wrong in [&manager, &viewer1, &admin, &forwarder2] {
        assert_eq!(post(Some(wrong), 1, empty(1, 0)).await.unwrap().status(), StatusCode::FORBIDDEN);
    }
    // The plant in the body must be the token's too; garbage and gaps are refused.
    assert_eq!(post(Some(&forwarder1), 1, empty(2, 0)).await.unwrap().status(), StatusCode::FORBIDDEN);
    assert_eq!(post(Some(&forwarder1), 1, vec![1, 2, 3]).await.unwrap().status(), StatusCode::BAD_REQUEST);
    assert_eq!(post(Some(&forwarder1), 1, empty(1, i64::MAX)).await.unwrap().status(), StatusCode::CONFLICT);
    assert_eq!(post(Some(&forwarder1), 1, empty(1, 0)).await.unwrap().status(), StatusCode::OK);
    let wrong_type = api
        .http
        .post(format!("{}/v1/ingest/plants/1/events", api.node.url))
        .bearer_auth(&forwarder1)
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong_type.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    // No token at all is needed for the health and the document.
    assert_eq!(api.get("/v1/health", None).await.0, StatusCode::OK);
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_bad_parameter_gets_a_clear_400_and_nothing_a_500() {
    let api = Api::start().await;
    let manager = token(&api.cloud, Role::Manager, Scope::AllPlants).await;
    let m = api.plants[0].machine(0);
    let (from, to) = (rfc3339(at(api.t0)), rfc3339(at(api.t0 + 3_600_000)));
    let year_later = rfc3339(at(api.t0 + 400 * 86_400_000));
    let cases: Vec<(String, &str)> = vec![
        (format!("/v1/kpis?from=yesterday&to={to}"), "bad_parameter"),
        (format!("/v1/kpis?from={from}&to=2026-13-45T00:00:00Z"), "bad_parameter"),
        (format!("/v1/kpis?from={to}&to={from}"), "bad_parameter"),
        (format!("/v1/kpis?to={to}"), "bad_parameter"),
        (format!("/v1/kpis?from={from}&to={year_later}&bucket=hour"), "range_too_long"),
        (format!("/v1/kpis?from={from}&to={to}&bucket=week"), "bad_parameter"),
        (format!("/v1/kpis?from={from}&to={to}&by=shift"), "bad_parameter"),
        (format!("/v1/kpis?from={from}&to={to}&plant=99"), "unknown_id"),
        (format!("/v1/kpis?from={from}&to={to}&plant=x"), "bad_parameter"),
        (format!("/v1/kpis?from={from}&to={to}&colour=red"), "bad_parameter"),
        (format!("/v1/kpis?from=1999-01-01T00:00:00Z&to={to}"), "bad_parameter"),
        (format!("/v1/kpis?from={from}&to=9999-01-01T00:00:00Z"), "bad_parameter"),
        ("/v1/anomalies?limit=0".into(), "bad_parameter"),
        ("/v1/anomalies?limit=1000000".into(), "bad_parameter"),
        ("/v1/anomalies?limit=-5".into(), "bad_parameter"),
        ("/v1/anomalies?severity=apocalyptic".into(), "bad_parameter"),
        ("/v1/anomalies?state=maybe".into(), "bad_parameter"),
        ("/v1/anomalies?machine=P1-L09-M999".into(), "unknown_id"),
        ("/v1/anomalies?machine=%00%27".into(), "bad_parameter"),
        ("/v1/anomalies?cursor=zz".into(), "bad_cursor"),
        ("/v1/anomalies?cursor=ffff".into(), "bad_cursor"),
        (format!("/v1/anomalies?cursor={}", "61".repeat(600)), "bad_cursor"),
        (format!("/v1/anomalies?from={to}&to={from}"), "bad_parameter"),
        ("/v1/anomalies?unknown=1".into(), "bad_parameter"),
        ("/v1/maintenance?due_within_days=NaN".into(), "bad_parameter"),
        ("/v1/maintenance?due_within_days=inf".into(), "bad_parameter"),
        ("/v1/maintenance?due_within_days=1e300".into(), "bad_parameter"),
        ("/v1/maintenance?due_within_days=-1".into(), "bad_parameter"),
        ("/v1/maintenance/log?kind=lunch".into(), "bad_parameter"),
        ("/v1/plants/0/lines".into(), "bad_parameter"),
        ("/v1/plants/99/lines".into(), "unknown_id"),
        ("/v1/plants/1/machines?line=P1-L77".into(), "unknown_id"),
        ("/v1/plants/1/machines?machine_type=rocket".into(), "unknown_id"),
        ("/v1/plants/1/machines?limit=5000".into(), "bad_parameter"),
        ("/v1/machines/P1-L01-M999".into(), "unknown_id"),
        ("/v1/machines/nothing".into(), "unknown_id"),
        (format!("/v1/machines/{}", "A".repeat(500)), "bad_parameter"),
        (format!("/v1/machines/{m}/trend?from={from}"), "bad_parameter"),
        (format!("/v1/machines/{m}/trend?from={from}&to={year_later}&resolution=minute"), "range_too_long"),
        (format!("/v1/machines/{m}/trend?from={from}&to={to}&resolution=second"), "bad_parameter"),
        (format!("/v1/machines/{m}/trend?from={from}&to={to}&sensor=NOPE1"), "bad_parameter"),
        (format!("/v1/machines/{m}/predictions?from=then"), "bad_parameter"),
        ("/v1/events?after=-1".into(), "bad_parameter"),
        ("/v1/events?after=ten".into(), "bad_parameter"),
        ("/v1/plants?extra=1".into(), "bad_parameter"),
    ];
    for (path, expected) in &cases {
        let (status, body) = api.get(path, Some(&manager)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}: {body}");
        assert_eq!(code(&body), *expected, "{path}: {body}");
        assert!(body["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{path}: {body}");
    }
    // Hostile headers and paths: never a 500.
    let r = api
        .http
        .get(format!("{}/v1/events", api.node.url))
        .bearer_auth(&manager)
        .header("last-event-id", "not a number")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    for path in ["/v1/nope", "/v1/machines/%FF%FE", "/v1/plants/%00/lines"] {
        let (status, _) = api.get(path, Some(&manager)).await;
        assert!(status.is_client_error(), "{path}: {status}");
    }
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn lists_page_with_cursors_and_every_page_is_bounded() {
    let api = Api::start().await;
    let manager = token(&api.cloud, Role::Manager, Scope::AllPlants).await;
    for base in ["/v1/anomalies?", "/v1/maintenance/log?", "/v1/plants/1/machines?", "/v1/maintenance?"] {
        let (_, whole) = api.get(&format!("{base}limit=1000"), Some(&manager)).await;
        let whole = whole["items"].as_array().unwrap().clone();
        assert!(!whole.is_empty(), "{base}");
        let mut paged = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let path = match &cursor {
                Some(c) => format!("{base}limit=1&cursor={c}"),
                None => format!("{base}limit=1"),
            };
            let (status, page) = api.get(&path, Some(&manager)).await;
            assert_eq!(status, StatusCode::OK, "{path}: {page}");
            let items = page["items"].as_array().unwrap();
            assert!(items.len() <= 1);
            paged.extend(items.iter().cloned());
            match page["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_owned()),
                None => break,
            }
            assert!(paged.len() <= whole.len() + 1, "{base} pages past its end");
        }
        assert_eq!(paged, whole, "{base}");
    }
    // A state filter answers exactly the anomalies in those states (the open ones read
    // their own index), their evidence and notes as the JSON the plant wrote. Beside the
    // stories' resolved anomalies, one is left open.
    let plant = &api.plants[0];
    let machine = plant.machine(0);
    let ts = api.t0 + 600_000;
    let evidence = domain::events::SensorEvidence {
        sensor: 1_000_003,
        name: format!("{machine}-VIB1"),
        kind: "VIB".into(),
        unit: "mm/s \"peak\"".into(),
        at: at(ts),
        observed: 7.25,
        expected: 3.5,
        lower: 2.5,
        upper: 4.5,
        test: "spike".into(),
        score: 1.0,
        related: false,
    };
    let open = domain::events::AnomalyDetected {
        anomaly_id: format!("{machine}-{ts}"),
        machine_id: machine.clone(),
        line_id: machine.rsplit_once('-').unwrap().0.to_owned(),
        started_at: at(ts),
        severity: domain::events::Severity::Critical,
        score: 0.97,
        sensors: vec![evidence.clone()],
        explanation: "VIB1 7.25 mm/s, expected 3.5 (2.5–4.5): spike".into(),
        detector_version: "d1".into(),
    };
    plant.append(&format!("anomaly-{machine}-{ts}"), domain::events::ANOMALY_DETECTED, &open).await;
    let count =
        || async { api.get("/v1/anomalies?limit=1000", Some(&manager)).await.1["items"].as_array().unwrap().len() };
    let before = count().await;
    wait_for("the open anomaly to reach the cloud", Duration::from_secs(60), || async { count().await > before }).await;
    let (_, whole) = api.get("/v1/anomalies?limit=1000", Some(&manager)).await;
    let whole = whole["items"].as_array().unwrap().clone();
    assert!(whole.iter().any(|a| a["state"] == "resolved") && whole.iter().any(|a| a["state"] == "new"));
    assert!(whole.iter().all(|a| a["sensors"].is_array() && a["notes"].is_array()), "{whole:?}");
    let listed = whole.iter().find(|a| a["anomaly_id"] == open.anomaly_id.as_str()).unwrap();
    assert_eq!(listed["sensors"], serde_json::to_value(vec![evidence]).unwrap(), "the evidence as the plant wrote it");
    for states in ["new,acknowledged", "new,acknowledged,shelved", "acknowledged", "resolved", "new,resolved"] {
        let (status, body) = api.get(&format!("/v1/anomalies?limit=1000&state={states}"), Some(&manager)).await;
        assert_eq!(status, StatusCode::OK, "{states}: {body}");
        let want: Vec<&Value> = whole.iter().filter(|a| states.split(',').any(|s| a["state"] == s)).collect();
        assert_eq!(body["items"].as_array().unwrap().iter().collect::<Vec<_>>(), want, "{states}");
    }
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_trend_answers_each_sensors_stored_points_in_time_order() {
    let api = Api::start().await;
    let manager = token(&api.cloud, Role::Manager, Scope::AllPlants).await;
    let m = api.plants[0].machine(0);
    let client = api.cloud.client().await.unwrap();
    let (hour, day) = (3_600_000, 86_400_000);
    // Each range holds the whole story (its readings span a few minutes after t0).
    for (resolution, table, column, from, to) in [
        ("minute", "sensor_minute", "minute", api.t0, api.t0 + hour),
        ("hour", "sensor_hour", "hour", api.t0 - day, api.t0 + day),
        ("day", "sensor_day", "day", api.t0 - 2 * day, api.t0 + 2 * day),
    ] {
        let path =
            format!("/v1/machines/{m}/trend?from={}&to={}&resolution={resolution}", rfc3339(at(from)), rfc3339(at(to)));
        let (status, body) = api.get(&path, Some(&manager)).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
        let sensors = body["sensors"].as_array().unwrap();
        assert!(!sensors.is_empty(), "{path}: {body}");
        let mut points = 0;
        for s in sensors {
            let id = s["sensor_id"].as_i64().unwrap() as i32;
            let sql = format!(
                "SELECT {column}, count, min, max, mean FROM cloud.{table} WHERE plant = 1 AND sensor_id = $1 ORDER BY {column}"
            );
            let want: Vec<Value> = client
                .query(&sql, &[&id])
                .await
                .unwrap()
                .iter()
                .map(|r| {
                    serde_json::json!({
                        "t": r.get::<_, chrono::DateTime<chrono::Utc>>(0), "count": r.get::<_, i32>(1),
                        "min": r.get::<_, f64>(2), "max": r.get::<_, f64>(3), "mean": r.get::<_, f64>(4),
                    })
                })
                .collect();
            assert_eq!(s["points"].as_array().unwrap(), &want, "{resolution}: sensor {id}");
            points += want.len();
        }
        assert!(points >= sensors.len(), "{resolution}: every sensor of the machine has the story's readings");
    }
    api.stop().await;
}

/// Reads server-sent events until at least one event and `want` `changes` events have
/// arrived (or the timeout).
async fn read_events(response: &mut reqwest::Response, want: usize, timeout: Duration) -> Vec<(String, i64, Value)> {
    let mut out = Vec::new();
    let mut buffer = String::new();
    let deadline = tokio::time::Instant::now() + timeout;
    while out.is_empty() || out.iter().filter(|(e, ..): &&(String, i64, Value)| e == "changes").count() < want {
        let Ok(chunk) = tokio::time::timeout_at(deadline, response.chunk()).await else { break };
        let Some(chunk) = chunk.unwrap() else { break };
        buffer.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = buffer.find("\n\n") {
            let block: String = buffer.drain(..end + 2).collect();
            let (mut event, mut id, mut data) = (String::new(), -1, String::new());
            for line in block.lines() {
                if let Some(v) = line.strip_prefix("event:") {
                    event = v.trim().to_owned();
                } else if let Some(v) = line.strip_prefix("id:") {
                    id = v.trim().parse().unwrap();
                } else if let Some(v) = line.strip_prefix("data:") {
                    data.push_str(v.trim_start());
                }
            }
            if !event.is_empty() {
                out.push((event, id, serde_json::from_str(&data).unwrap_or(Value::Null)));
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn live_updates_resume_from_the_last_event_id_and_miss_nothing() {
    let api = Api::start().await;
    let manager = token(&api.cloud, Role::Manager, Scope::AllPlants).await;
    let viewer2 = token(&api.cloud, Role::Viewer, Scope::plant(2)).await;
    let connect = |after: Option<i64>, token: String| {
        let mut r = api.http.get(format!("{}/v1/events", api.node.url)).bearer_auth(token);
        if let Some(a) = after {
            r = r.header("last-event-id", a.to_string());
        }
        r.send()
    };
    let mut live = connect(None, manager.clone()).await.unwrap();
    assert_eq!(live.status(), StatusCode::OK);
    let ready = read_events(&mut live, 0, Duration::from_secs(5)).await;
    assert_eq!(ready.first().map(|e| e.0.as_str()), Some("ready"), "{ready:?}");
    let start = ready[0].1;
    let mut viewer = connect(Some(start), viewer2).await.unwrap();
    let viewer_ready = read_events(&mut viewer, 0, Duration::from_secs(5)).await;
    assert_eq!(viewer_ready.first().map(|e| (e.0.as_str(), e.1)), Some(("ready", start)));

    // More happens at both plants; the client drops after the first changes and resumes.
    let t1 = api.t0 + 3_600_000;
    let story = futures_util::future::join_all(api.plants.iter().map(|p| plant_story(p, t1, 20)));
    let (_, first) = tokio::join!(story, read_events(&mut live, 1, Duration::from_secs(60)));
    let changes: Vec<_> = first.into_iter().filter(|e| e.0 == "changes").collect();
    assert!(!changes.is_empty());
    drop(live);
    let resumed_at = changes.last().unwrap().1;
    for p in &api.plants {
        wait_for("the logs to arrive", Duration::from_secs(60), || async {
            cloud_copy(&api.cloud, p.number).await.len() == plant_log(&p.db).await.len()
        })
        .await;
    }
    projected(&api.cloud).await;
    let mut resumed = connect(Some(resumed_at), manager.clone()).await.unwrap();
    let head = eventlog::head_position(&api.cloud.client().await.unwrap()).await.unwrap();
    let mut all = changes;
    let ready = read_events(&mut resumed, 0, Duration::from_secs(5)).await;
    assert_eq!(ready.first().map(|e| (e.0.as_str(), e.1)), Some(("ready", resumed_at)));
    all.extend(ready.into_iter().filter(|e| e.0 == "changes"));
    // Read until the stream has nothing more to say for a while (its ids stop at the
    // newest change, which may be below the head: events that change no row move nothing).
    loop {
        let more = read_events(&mut resumed, 1, Duration::from_secs(5)).await;
        let fresh: Vec<_> = more.into_iter().filter(|e| e.0 == "changes").collect();
        if fresh.is_empty() {
            break;
        }
        all.extend(fresh);
    }
    let _ = head;
    // Ids only grow, and the newest state of every row changed after the start arrived.
    assert!(all.windows(2).all(|w| w[0].1 < w[1].1), "ids {:?}", all.iter().map(|e| e.1).collect::<Vec<_>>());
    let mut seen: BTreeMap<String, i64> = BTreeMap::new();
    for (_, _, body) in &all {
        for row in body["anomalies"].as_array().unwrap() {
            seen.insert(format!("a{}{}", row["plant"], row["anomaly_id"]), row["position"].as_i64().unwrap());
        }
        for row in body["kpi_hour"].as_array().unwrap() {
            seen.insert(format!("k{}{}{}{}", row["plant"], row["line_id"], row["machine_type"], row["hour"]), 0);
        }
    }
    let client = api.cloud.client().await.unwrap();
    for r in client
        .query("SELECT plant, anomaly_id, position FROM cloud.anomalies WHERE position > $1", &[&start])
        .await
        .unwrap()
    {
        let key = format!("a{}\"{}\"", r.get::<_, i16>(0), r.get::<_, String>(1));
        assert_eq!(seen.get(&key), Some(&r.get::<_, i64>(2)), "anomaly {key} missed or stale");
    }
    let kpis = client
        .query("SELECT plant, line_id, machine_type, hour FROM cloud.kpi_hour WHERE position > $1", &[&start])
        .await
        .unwrap();
    assert!(!kpis.is_empty());
    for r in kpis {
        let hour: chrono::DateTime<chrono::Utc> = r.get(3);
        let key = format!(
            "k{}\"{}\"\"{}\"{}",
            r.get::<_, i16>(0),
            r.get::<_, String>(1),
            r.get::<_, String>(2),
            serde_json::to_value(hour).unwrap()
        );
        assert!(seen.contains_key(&key), "kpi row {key} missed");
    }
    // A viewer of plant 2 sees plant 2's changes only.
    let theirs = read_events(&mut viewer, 1, Duration::from_secs(20)).await;
    let plants: BTreeSet<i64> = theirs
        .iter()
        .flat_map(|(_, _, b)| b["kpi_hour"].as_array().cloned().unwrap_or_default())
        .filter_map(|r| r["plant"].as_i64())
        .collect();
    assert_eq!(plants, BTreeSet::from([2]));
    api.stop().await;
}
