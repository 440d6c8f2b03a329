//! The ingest API over real HTTP against a real PostgreSQL: what is accepted lands in
//! the log once, what is refused lands in the dead-letter table with its reason, and
//! every kind of bad request gets its own clear error.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use eventlog::{Database, read_all};
use layout::{Layout, Scale};
use pgcluster::testdb::TestDb;
use plant::GatewayTokens;
use plant::ingest::{
    BINARY_CONTENT_TYPE, IngestConfig, IngestState, IngestStats, UploadOutcome, Writer, WriterConfig, router,
};
use reqwest::StatusCode;
use serde_json::json;
use telemetry::Reading;

/// 2026-03-01T12:00:00Z: the node's clock in these tests.
const NOW: i64 = 1_772_366_400_000;

struct Node {
    base: String,
    db: Database,
    layout: Arc<Layout>,
    tokens: Arc<GatewayTokens>,
    http: reqwest::Client,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    server: tokio::task::JoinHandle<()>,
    /// A handle on the node's writer, to see how many uploads wait in its queue.
    writer: Writer,
}

async fn node_with(writer_config: WriterConfig) -> Node {
    node_configured(writer_config, IngestConfig { max_body_bytes: 64 * 1024, ..IngestConfig::default() }).await
}

async fn node_configured(writer_config: WriterConfig, config: IngestConfig) -> Node {
    let test_db = TestDb::new().await.unwrap();
    let db = Database::new(&test_db.url, 8).unwrap();
    plant::migrate(&db).await.unwrap();
    let scale = Scale { plants: Some(1), lines_per_plant: Some(2), sensors_per_plant: Some(200) };
    let layout = Arc::new(Layout::default_with(&scale).unwrap());
    let tokens = Arc::new(GatewayTokens::issue(&layout, 1, &GatewayTokens::default()).unwrap());
    let (writer, _task) = Writer::spawn(db.clone(), writer_config);
    let state = IngestState {
        db: db.clone(),
        layout: layout.clone(),
        plant_number: 1,
        tokens: tokens.clone(),
        writer: writer.clone(),
        config,
        clock: Arc::new(|| NOW),
        stats: Arc::new(IngestStats::default()),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        axum::serve(listener, router(state))
            .with_graceful_shutdown(async {
                let _ = rx.await;
            })
            .await
            .unwrap();
    });
    Node { base, db, layout, tokens, http: reqwest::Client::new(), shutdown: Some(tx), server, writer }
}

async fn node() -> Node {
    node_with(WriterConfig::default()).await
}

impl Node {
    fn gateway(&self, n: usize) -> &str {
        &self.layout.lines()[n].id
    }

    fn sensors(&self, line: usize) -> std::ops::Range<u32> {
        self.layout.lines()[line].sensor_ids.clone()
    }

    fn post(&self, gateway: &str, seq: &str) -> reqwest::RequestBuilder {
        let token = self.tokens.get(gateway).unwrap_or("nope");
        self.http.post(format!("{}/v1/gateways/{gateway}/batches/{seq}", self.base)).bearer_auth(token)
    }

    async fn binary(&self, gateway: &str, seq: u64, readings: &[Reading]) -> reqwest::Response {
        let body = telemetry::encode(readings).unwrap();
        self.post(gateway, &seq.to_string())
            .header("content-type", BINARY_CONTENT_TYPE)
            .body(body)
            .send()
            .await
            .unwrap()
    }

    async fn logged_readings(&self) -> Vec<Reading> {
        let client = self.db.client().await.unwrap();
        read_all(&client, 0, 10_000, None).await.unwrap().iter().flat_map(|e| e.readings().unwrap()).collect()
    }

    async fn dead_letters(&self) -> Vec<(String, i32, Option<String>, String, bool)> {
        let client = self.db.client().await.unwrap();
        client
            .query("SELECT upload, item, sensor, reason, raw IS NOT NULL FROM ingest.dead_letters ORDER BY id", &[])
            .await
            .unwrap()
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4)))
            .collect()
    }
}

async fn error_code(response: reqwest::Response) -> String {
    let body: serde_json::Value = response.json().await.unwrap();
    body["error"]["code"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_binary_batch_is_stored_once_even_when_retried() {
    let node = node().await;
    let gw = node.gateway(0).to_owned();
    let readings: Vec<Reading> = node.sensors(0).map(|s| Reading::new(s, NOW - 1000, f64::from(s % 7))).collect();

    let first = node.binary(&gw, 17, &readings).await;
    assert_eq!(first.status(), StatusCode::OK);
    let first: UploadOutcome = first.json().await.unwrap();
    assert_eq!((first.accepted, first.rejected.len(), first.duplicate), (readings.len(), 0, false));

    let again: UploadOutcome = node.binary(&gw, 17, &readings).await.json().await.unwrap();
    assert!(again.duplicate);
    assert_eq!(again.position, first.position);

    assert_eq!(node.logged_readings().await, readings);
}

#[tokio::test]
async fn a_day_partition_dropped_after_the_writer_saw_it_is_made_again_for_the_next_upload() {
    let node = node().await;
    let sensor = node.sensors(0).start;
    let first = [Reading::new(sensor, NOW, 1.0)];
    assert_eq!(node.binary(node.gateway(0), 1, &first).await.status(), StatusCode::OK);
    // Dropped behind the writer's back (as retention drops a day), after it saw the day.
    let day = chrono::DateTime::from_timestamp_millis(NOW).unwrap().date_naive();
    let client = node.db.client().await.unwrap();
    let name = format!("telemetry_{}", day.format("%Y%m%d"));
    let table = eventlog::DayTable { name, state: eventlog::DayTableState::Attached };
    eventlog::drop_day_table(&client, "eventlog.telemetry", &table).await.unwrap();
    let second = [Reading::new(sensor, NOW - 1000, 2.0)];
    let response = node.binary(node.gateway(0), 2, &second).await;
    assert_eq!(response.status(), StatusCode::OK, "{:?}", response.text().await);
    assert_eq!(node.logged_readings().await, second);
}

#[tokio::test]
async fn each_bad_reading_is_refused_on_its_own_and_kept_with_its_reason() {
    let node = node().await;
    let gw = node.gateway(0).to_owned();
    let mine = node.sensors(0).start;
    let other_line = node.sensors(1).start;
    let name = node.layout.sensor(mine + 1).unwrap().name().to_owned();
    let body = json!({ "readings": [
        { "sensor": mine, "ts": NOW, "value": 20.5 },                      // 0 ok
        { "sensor": name, "ts": "2026-03-01T11:59:59Z", "value": 21 },    // 1 ok, by text id
        { "sensor": 99, "ts": NOW, "value": 1.0 },                         // 2 unknown
        { "sensor": other_line, "ts": NOW, "value": 1.0 },                 // 3 other gateway's
        { "sensor": mine, "ts": NOW + 60_000, "value": 1.0 },              // 4 future
        { "sensor": mine, "ts": NOW - 8 * 86_400_000_i64, "value": 1.0 },  // 5 too old
        { "sensor": mine, "ts": NOW, "value": "NaN" },                     // 6 not a number
        { "sensor": mine, "ts": "yesterday", "value": 1.0 },               // 7 bad time
        { "sensor": "P9-L99-M999-TEMP1", "ts": NOW, "value": 1.0 },        // 8 unknown name
        { "ts": NOW, "value": 1.0 },                                       // 9 no sensor
        [1, 2, 3],                                                         // 10 not an object
        { "sensor": -4, "ts": NOW, "value": 1.0 },                         // 11 negative id
    ]});
    // A number beyond f64 (it would read as infinity) makes the whole body unreadable.
    let overflow = format!("{{\"readings\": [{{\"sensor\": {mine}, \"ts\": {NOW}, \"value\": 1e309}}]}}");
    let response = node.post(&gw, "5").header("content-type", "application/json").body(overflow).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let items = body["readings"].as_array().unwrap().clone();
    let response = node.post(&gw, "6").json(&json!({ "readings": items })).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let outcome: UploadOutcome = response.json().await.unwrap();
    assert_eq!(outcome.accepted, 2);
    let refused: Vec<i64> = outcome.rejected.iter().map(|r| r.index).collect();
    assert_eq!(refused, [2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
    let reason = |i: i64| outcome.rejected.iter().find(|r| r.index == i).unwrap().reason.clone();
    assert!(reason(2).contains("unknown sensor id 99"), "{}", reason(2));
    assert!(reason(3).contains("not served by gateway"), "{}", reason(3));
    assert!(reason(4).contains("ahead of the node's clock"), "{}", reason(4));
    assert!(reason(5).contains("retention window"), "{}", reason(5));
    assert!(reason(6).contains("must be a JSON number"), "{}", reason(6));
    assert!(reason(7).contains("RFC 3339"), "{}", reason(7));
    assert!(reason(8).contains("unknown sensor P9-L99-M999-TEMP1"), "{}", reason(8));
    assert!(reason(9).contains("missing sensor"), "{}", reason(9));

    let letters = node.dead_letters().await;
    // The refused body of upload 5 is kept whole; upload 6's ten readings one by one.
    assert_eq!(letters.iter().filter(|l| l.0.ends_with(":5") && l.1 == -1 && l.4).count(), 1);
    let six: Vec<i32> = letters.iter().filter(|l| l.0.ends_with(":6")).map(|l| l.1).collect();
    assert_eq!(six, [2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
    assert_eq!(node.logged_readings().await.len(), 2);

    // A retry records nothing twice.
    node.post(&gw, "6").json(&json!({ "readings": items })).send().await.unwrap();
    assert_eq!(node.dead_letters().await.len(), letters.len());
}

#[tokio::test]
async fn values_no_working_sensor_can_read_are_refused_as_dead_letters_naming_the_plausible_range() {
    let node = node().await;
    let gw = node.gateway(0).to_owned();
    let mine = node.sensors(0).start;
    let (lo, hi) = node.layout.sensor(mine).unwrap().plausible_range();
    let values = [1e300, -1e300, f64::MAX, f64::MIN, 1e16, hi + (hi - lo) * 0.01, hi, lo, 0.5 * (lo + hi)];
    let body = json!({ "readings": values.iter().map(|v| json!({ "sensor": mine, "ts": NOW, "value": v })).collect::<Vec<_>>() });
    let outcome: UploadOutcome = node.post(&gw, "1").json(&body).send().await.unwrap().json().await.unwrap();
    assert_eq!(outcome.accepted, 3, "{outcome:?}");
    assert_eq!(outcome.rejected.iter().map(|r| r.index).collect::<Vec<_>>(), [0, 1, 2, 3, 4, 5]);
    for r in &outcome.rejected {
        assert!(r.reason.contains("outside the plausible range"), "{}", r.reason);
    }
    assert!(outcome.rejected[0].reason.contains("1e300"), "{}", outcome.rejected[0].reason);

    // The binary path, in double precision, is checked the same way.
    let readings: Vec<Reading> = values.iter().map(|v| Reading::new(mine, NOW - 1000, *v)).collect();
    let outcome: UploadOutcome = node.binary(&gw, 2, &readings).await.json().await.unwrap();
    assert_eq!((outcome.accepted, outcome.rejected.len()), (3, 6));

    let client = node.db.client().await.unwrap();
    let kept: Vec<f64> = client
        .query("SELECT value FROM ingest.dead_letters WHERE item = 0 ORDER BY id", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(kept, [1e300, 1e300], "the refused value is kept as sent");
    let logged = node.logged_readings().await;
    assert_eq!(logged.len(), 6);
    assert!(logged.iter().all(|r| (lo..=hi).contains(&r.value)), "{logged:?}");
}

#[tokio::test]
async fn requests_that_cannot_be_taken_get_clear_errors_and_store_nothing() {
    let node = node().await;
    let gw = node.gateway(0).to_owned();
    let ok = json!({ "readings": [{ "sensor": node.sensors(0).start, "ts": NOW, "value": 1.0 }] });

    let no_token = node.http.post(format!("{}/v1/gateways/{gw}/batches/1", node.base)).json(&ok).send().await.unwrap();
    assert_eq!(no_token.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(no_token.headers()["www-authenticate"], "Bearer");
    let other_token = node.tokens.get(node.gateway(1)).unwrap().to_owned();
    let url = format!("{}/v1/gateways/{gw}/batches/1", node.base);
    let wrong = node.http.post(&url).bearer_auth(other_token).json(&ok).send().await.unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let unknown = node.post("P1-L99", "1").json(&ok).send().await.unwrap();
    assert_eq!(unknown.status(), StatusCode::UNAUTHORIZED);
    let hostile_gateway = node.post("P1-L01%27%3B%20DROP%20TABLE", "1").json(&ok).send().await.unwrap();
    assert_eq!(hostile_gateway.status(), StatusCode::UNAUTHORIZED);

    let text = node.post(&gw, "2").header("content-type", "text/plain").body("hello").send().await.unwrap();
    assert_eq!(text.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(error_code(text).await, "unsupported_content_type");

    let huge = node
        .post(&gw, "3")
        .header("content-type", BINARY_CONTENT_TYPE)
        .body(vec![1u8; 65 * 1024])
        .send()
        .await
        .unwrap();
    assert_eq!(huge.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(error_code(huge).await, "body_too_large");

    let bad_seq = node.post(&gw, "-1").json(&ok).send().await.unwrap();
    assert_eq!(bad_seq.status(), StatusCode::BAD_REQUEST);
    assert_eq!(error_code(bad_seq).await, "bad_sequence");

    assert!(node.dead_letters().await.is_empty(), "nothing from refused requests is stored");
    assert!(node.logged_readings().await.is_empty());
}

#[tokio::test]
async fn malformed_bodies_are_refused_whole_and_kept_as_dead_letters() {
    let node = node().await;
    let gw = node.gateway(0).to_owned();
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (BINARY_CONTENT_TYPE, vec![], "empty input"),
        (BINARY_CONTENT_TYPE, vec![9, 0, 1], "unsupported batch format version 9"),
        (BINARY_CONTENT_TYPE, vec![1, 0, 0xa0, 0x8d, 0x06, 0, 1], "ends early"),
        ("application/json", b"{\"readings\": [".to_vec(), "not valid JSON"),
        ("application/json", b"[1,2,3]".to_vec(), "\"readings\" array"),
        ("application/json", b"{\"readings\": []}".to_vec(), "1 to 100000 readings"),
        ("application/json", "[".repeat(5000).into_bytes(), "not valid JSON"),
    ];
    for (i, (content_type, body, expect)) in cases.iter().enumerate() {
        let response = node
            .post(&gw, &i.to_string())
            .header("content-type", *content_type)
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "case {i}");
        let message =
            response.json::<serde_json::Value>().await.unwrap()["error"]["message"].as_str().unwrap().to_owned();
        assert!(message.contains(expect), "case {i}: {message}");
    }
    let letters = node.dead_letters().await;
    assert_eq!(letters.len(), cases.len());
    assert!(letters.iter().all(|l| l.1 == -1 && l.4));
}

#[tokio::test]
async fn a_machine_message_of_the_reference_simulator_maps_onto_its_sensors() {
    let node = node().await;
    let machine = &node.layout.machines()[0];
    let gw = node.gateway(machine.line).to_owned();
    let message = json!({
        "factoryId": 1,
        "machine": { "machineId": 1, "temperature": 71.25, "pressure": 2.5, "electricityUtilization": 33.0 },
        "ambient": { "temperature": 21.5, "humidity": 40 },
        "timeCreated": "2026-03-01T11:59:58Z"
    });
    let response = node
        .http
        .post(format!("{}/v1/machine-telemetry", node.base))
        .bearer_auth(node.tokens.get(&gw).unwrap())
        .json(&message)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let outcome: UploadOutcome = response.json().await.unwrap();
    let logged = node.logged_readings().await;
    assert_eq!(logged.len(), outcome.accepted);
    let temp1 = node.layout.machine_sensor(machine, "TEMP", 1).unwrap();
    assert!(logged.contains(&Reading::new(temp1, NOW - 2000, 71.25)));
    // Kinds this machine does not have are refused by name, not silently dropped.
    for r in &outcome.rejected {
        assert!(r.reason.contains("has no"), "{}", r.reason);
    }
    assert_eq!(outcome.accepted + outcome.rejected.len(), 5);

    let wrong_plant = json!({ "factoryId": 2, "machine": { "machineId": 1, "temperature": 1.0 }, "timeCreated": "2026-03-01T11:59:58Z" });
    let send = |token: String, body: serde_json::Value| {
        node.http.post(format!("{}/v1/machine-telemetry", node.base)).bearer_auth(token).json(&body).send()
    };
    let response = send("x".into(), wrong_plant.clone()).await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "no gateway's token: refused before the body is read");
    let response = send(node.tokens.get(&gw).unwrap().to_owned(), wrong_plant).await.unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    // Another line's gateway may not speak for this machine.
    let response = send(node.tokens.get(node.gateway(1)).unwrap().to_owned(), message).await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn when_the_log_cannot_keep_up_the_api_says_retry_later() {
    let node = node_with(WriterConfig { queue_uploads: 1, uploads_per_transaction: 1 }).await;
    let gw = node.gateway(0).to_owned();
    // Hold the log's head: the writer blocks on its first upload.
    let mut blocker = node.db.client().await.unwrap();
    let held = blocker.transaction().await.unwrap();
    held.query("SELECT position FROM eventlog.head FOR UPDATE", &[]).await.unwrap();

    let sensor = node.sensors(0).start;
    let uploads: Vec<_> = (0..6u64)
        .map(|seq| {
            let http = node.http.clone();
            let url = format!("{}/v1/gateways/{gw}/batches/{seq}", node.base);
            let token = node.tokens.get(&gw).unwrap().to_owned();
            let body = telemetry::encode(&[Reading::new(sensor, NOW, seq as f64)]).unwrap();
            tokio::spawn(async move {
                http.post(url)
                    .bearer_auth(token)
                    .header("content-type", BINARY_CONTENT_TYPE)
                    .body(body)
                    .send()
                    .await
                    .unwrap()
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;
    held.rollback().await.unwrap();
    let mut busy = 0;
    for u in uploads {
        let response = u.await.unwrap();
        match response.status() {
            StatusCode::OK => {}
            StatusCode::SERVICE_UNAVAILABLE => {
                assert_eq!(response.headers()["retry-after"], "1");
                busy += 1;
            }
            other => panic!("unexpected {other}"),
        }
    }
    assert!(busy >= 3, "only {busy} of 6 uploads were told to retry");
    assert_eq!(node.logged_readings().await.len(), 6 - busy);
}

#[tokio::test]
async fn shutdown_finishes_uploads_in_flight() {
    let mut node = node().await;
    let gw = node.gateway(0).to_owned();
    let mut blocker = node.db.client().await.unwrap();
    let held = blocker.transaction().await.unwrap();
    held.query("SELECT position FROM eventlog.head FOR UPDATE", &[]).await.unwrap();
    let readings = vec![Reading::new(node.sensors(0).start, NOW, 3.0)];
    let in_flight = {
        let body = telemetry::encode(&readings).unwrap();
        let request = node.post(&gw, "1").header("content-type", BINARY_CONTENT_TYPE).body(body);
        tokio::spawn(async move { request.send().await.unwrap() })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    node.shutdown.take().unwrap().send(()).unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!node.server.is_finished(), "the server stopped before its upload was stored");
    held.rollback().await.unwrap();
    assert_eq!(in_flight.await.unwrap().status(), StatusCode::OK);
    (&mut node.server).await.unwrap();
    assert_eq!(node.logged_readings().await, readings);
}

async fn queued_uploads(node: &Node) -> u64 {
    node.writer.queued() as u64
}

/// Sends `uploads` (gateway, sequence, content type, body) so that they are all stored
/// in one transaction of the writer: the log's head is held so the writer waits on the
/// upload it took first while the others queue behind it. Returns each one's answer.
async fn send_together(
    node: &Node,
    uploads: Vec<(String, u64, &'static str, Vec<u8>)>,
) -> Vec<(StatusCode, serde_json::Value)> {
    let blocker = node.db.client().await.unwrap();
    blocker.batch_execute("BEGIN; SELECT position FROM eventlog.head FOR UPDATE").await.unwrap();
    let send = |gw: String, seq: u64, content_type: &'static str, body: Vec<u8>| {
        let request = node.post(&gw, &seq.to_string()).header("content-type", content_type).body(body);
        tokio::spawn(async move {
            let response = request.send().await.unwrap();
            let status = response.status();
            (status, response.json::<serde_json::Value>().await.unwrap_or_default())
        })
    };
    // The first one takes the writer's attention and waits on the head...
    let warm = Reading::new(node.sensors(1).start, NOW, 1.0);
    let first = send(node.gateway(1).to_owned(), 999, BINARY_CONTENT_TYPE, telemetry::encode(&[warm]).unwrap());
    tokio::time::sleep(Duration::from_millis(300)).await;
    // ...while the others queue behind it.
    let n = uploads.len() as u64;
    let tasks: Vec<_> = uploads.into_iter().map(|(gw, seq, ct, body)| send(gw, seq, ct, body)).collect();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while queued_uploads(node).await < n {
        assert!(tokio::time::Instant::now() < deadline, "the uploads did not queue");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    blocker.batch_execute("ROLLBACK").await.unwrap();
    assert_eq!(first.await.unwrap().0, StatusCode::OK);
    let mut answers = Vec::new();
    for t in tasks {
        answers.push(t.await.unwrap());
    }
    answers
}

fn json_upload(sensor: serde_json::Value, ts: serde_json::Value) -> Vec<u8> {
    serde_json::to_vec(&json!({ "readings": [{ "sensor": sensor, "ts": ts, "value": 1.0 }] })).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_strings_fail_only_their_own_upload_and_the_good_uploads_beside_them_are_stored() {
    let config = IngestConfig { max_body_bytes: 4 * 1024 * 1024, ..IngestConfig::default() };
    let node = node_configured(WriterConfig::default(), config).await;
    let hostile = node.gateway(0).to_owned();
    let good = node.gateway(1).to_owned();
    let name = node.layout.sensor(node.sensors(0).start).unwrap().name().to_owned();
    let mut invalid_utf8 = b"{\"readings\": [{\"sensor\": \"".to_vec();
    invalid_utf8.extend([0xff, 0xfe, 0x00, 0xc3]);
    invalid_utf8.extend(format!("\", \"ts\": {NOW}, \"value\": 1}}]}}").bytes());
    let hostile_bodies: Vec<(&'static str, Vec<u8>)> = vec![
        ("application/json", json_upload(json!(format!("{name}\u{0}")), json!(NOW))),
        ("application/json", json_upload(json!("\u{0}"), json!(NOW))),
        ("application/json", json_upload(json!("\u{0}".repeat(100_000)), json!(NOW))),
        ("application/json", json_upload(json!("x".repeat(1_000_000)), json!(NOW))),
        ("application/json", json_upload(json!("\u{1}\u{1b}[2J\u{7f}\u{85}\u{feff}"), json!(NOW))),
        ("application/json", json_upload(json!(name.clone()), json!("2026-03-01T12:00:00Z\u{0}"))),
        ("application/json", invalid_utf8),
        ("application/json", br#"{"readings": [{"sensor": "\ud800", "ts": 0, "value": 1}]}"#.to_vec()),
        (BINARY_CONTENT_TYPE, vec![1, 0, 0xff, 0xff, 0x00, 0x00, 0xff]),
    ];
    let mut uploads = Vec::new();
    for (i, (content_type, body)) in hostile_bodies.iter().enumerate() {
        uploads.push((hostile.clone(), 100 + i as u64, *content_type, body.clone()));
        let readings: Vec<Reading> =
            node.sensors(1).take(50).map(|s| Reading::new(s, NOW - 1000 * i as i64, 2.0)).collect();
        uploads.push((good.clone(), 200 + i as u64, BINARY_CONTENT_TYPE, telemetry::encode(&readings).unwrap()));
    }
    let answers = send_together(&node, uploads).await;
    for (i, (status, body)) in answers.iter().enumerate() {
        if i % 2 == 1 {
            assert_eq!(*status, StatusCode::OK, "good upload {i} beside a hostile one: {body}");
            assert_eq!(body["accepted"], 50);
        } else {
            assert!(status.is_client_error() || *status == StatusCode::OK, "hostile upload {i}: {status} {body}");
            assert_eq!(body["accepted"].as_u64().unwrap_or(0), 0, "hostile upload {i}: {body}");
        }
    }
    assert_eq!(node.logged_readings().await.len(), 1 + 50 * hostile_bodies.len());
    // Every hostile upload is kept, its text made storable: NUL is kept visibly as ␀.
    let letters = node.dead_letters().await;
    for i in 0..hostile_bodies.len() {
        let key = format!("{hostile}:{}", 100 + i);
        assert!(letters.iter().any(|l| l.0 == key), "no dead letter for {key}");
    }
    let nul = letters.iter().find(|l| l.0 == format!("{hostile}:100")).unwrap();
    assert_eq!(nul.2.as_deref(), Some(format!("{name}\u{2400}").as_str()));
    assert!(
        letters.iter().all(|l| l.2.as_ref().is_none_or(|s| s.chars().count() <= 100)),
        "names are cut to 100 characters"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_the_database_refuses_for_its_data_is_refused_alone_for_good_and_kept_as_a_dead_letter() {
    let node = node().await;
    // The database refuses one dead letter for its data, as it might for a value nothing
    // here foresaw.
    node.db
        .client()
        .await
        .unwrap()
        .batch_execute(
            "CREATE FUNCTION ingest.poison() RETURNS trigger LANGUAGE plpgsql AS $$
             BEGIN
                 IF NEW.sensor = 'poison' THEN
                     RAISE EXCEPTION 'value not storable' USING ERRCODE = '22023';
                 END IF;
                 RETURN NEW;
             END $$;
             CREATE TRIGGER poison BEFORE INSERT ON ingest.dead_letters FOR EACH ROW EXECUTE FUNCTION ingest.poison();",
        )
        .await
        .unwrap();
    let hostile = node.gateway(0).to_owned();
    let good = node.gateway(1).to_owned();
    let mut uploads = vec![(hostile.clone(), 7, "application/json", json_upload(json!("poison"), json!(NOW)))];
    for seq in 0..5u64 {
        let readings = [Reading::new(node.sensors(1).start, NOW - seq as i64 * 1000, 3.0)];
        uploads.push((good.clone(), seq, BINARY_CONTENT_TYPE, telemetry::encode(&readings).unwrap()));
    }
    let answers = send_together(&node, uploads).await;
    assert_eq!(answers[0].0, StatusCode::UNPROCESSABLE_ENTITY, "{}", answers[0].1);
    assert_eq!(answers[0].1["error"]["code"], "unstorable_upload");
    assert!(answers[1..].iter().all(|(s, _)| *s == StatusCode::OK), "{answers:?}");
    assert_eq!(node.logged_readings().await.len(), 6);
    let letters = node.dead_letters().await;
    let kept = letters.iter().find(|l| l.0 == format!("{hostile}:7")).expect("the refused upload is kept");
    assert_eq!(kept.1, -1);
    assert!(kept.3.contains("refused"), "{}", kept.3);
    // Sent again, it is refused again, for good, and kept once.
    let again = node
        .post(&hostile, "7")
        .header("content-type", "application/json")
        .body(json_upload(json!("poison"), json!(NOW)))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(node.dead_letters().await.len(), letters.len());
}

#[tokio::test]
async fn production_reports_are_stored_once_per_machine_and_period_and_impossible_ones_refused() {
    let n = node().await;
    let gateway = n.gateway(0).to_owned();
    let machine = n.layout.machines()[n.layout.lines()[0].machines.start].id.clone();
    let other_line_machine = n.layout.machines()[n.layout.lines()[1].machines.start].id.clone();
    let report = |machine: &str| {
        json!({ "machine_id": machine, "from": "2026-03-01T11:00:00Z", "to": "2026-03-01T11:15:00Z",
                "planned_s": 900.0, "running_s": 800.0, "parts": 90, "rejects": 3, "ideal_cycle_s": 8.0 })
    };
    let send = |body: serde_json::Value, token: &str| {
        n.http
            .post(format!("{}/v1/gateways/{gateway}/production", n.base))
            .bearer_auth(token.to_owned())
            .json(&body)
            .send()
    };
    let token = n.tokens.get(&gateway).unwrap().to_owned();
    let first = send(json!({ "reports": [report(&machine)] }), &token).await.unwrap();
    assert_eq!(first.status(), StatusCode::OK);
    let outcome: plant::ingest::ProductionOutcome = first.json().await.unwrap();
    assert_eq!((outcome.stored, outcome.duplicates), (1, 0));
    let again: plant::ingest::ProductionOutcome =
        send(json!({ "reports": [report(&machine)] }), &token).await.unwrap().json().await.unwrap();
    assert_eq!((again.stored, again.duplicates), (0, 1));
    let client = n.db.client().await.unwrap();
    let events = read_all(&client, 0, 100, None).await.unwrap();
    let stored: Vec<_> = events.iter().filter(|e| e.event_type == "ProductionReported").collect();
    assert_eq!(stored.len(), 1);
    let body: domain::production::ProductionReported = stored[0].json().unwrap();
    assert_eq!((body.parts, body.rejects, body.source.as_str()), (90, 3, format!("gateway:{gateway}").as_str()));

    let with = |f: &dyn Fn(&mut serde_json::Value)| {
        let mut r = report(&machine);
        f(&mut r);
        json!({ "reports": [r] })
    };
    let too_many: Vec<_> = (0..1001).map(|_| report(&machine)).collect();
    for (body, code) in [
        (with(&|r| r["parts"] = json!(-1)), "malformed_body"),
        (with(&|r| r["parts"] = json!(1e300)), "malformed_body"),
        (with(&|r| r["planned_s"] = json!(1e300)), "invalid_report"),
        (with(&|r| r["running_s"] = json!(901.0)), "invalid_report"),
        (with(&|r| r["rejects"] = json!(91)), "invalid_report"),
        (with(&|r| r["ideal_cycle_s"] = json!(0.0)), "invalid_report"),
        (with(&|r| r["parts"] = json!(100_000)), "invalid_report"),
        (with(&|r| r["to"] = json!("2026-03-01T12:30:00Z")), "invalid_report"),
        (with(&|r| r["from"] = json!("2020-01-01T00:00:00Z")), "invalid_report"),
        (with(&|r| r["from"] = json!("not a time")), "malformed_body"),
        (with(&|r| r["machine_id"] = json!(other_line_machine)), "invalid_report"),
        (with(&|r| r["machine_id"] = json!("P1-L01-M001\u{0}")), "invalid_report"),
        (with(&|r| r["extra"] = json!(1)), "malformed_body"),
        (json!({ "reports": [] }), "invalid_report"),
    ] {
        let response = send(body.clone(), &token).await.unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(error_code(response).await, code, "{body}");
    }
    // More reports than one upload may carry: refused whole (by the body limit here).
    let response = send(json!({ "reports": too_many }), &token).await.unwrap();
    assert!(response.status().is_client_error() && response.status() != StatusCode::UNAUTHORIZED);
    let wrong = send(json!({ "reports": [report(&machine)] }), "wrong").await.unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let after = read_all(&client, 0, 100, None).await.unwrap();
    assert_eq!(after.len(), events.len(), "nothing refused was stored");
}
