//! A whole plant node (`node::run`) over real HTTP and a real PostgreSQL, tried as an
//! attacker and as a faulty sensor would: requests are authenticated before their body is
//! read, slow and idle clients are cut off, connections are bounded, the Anomaly Detector
//! routes need their key and keep their CPU work off the runtime, dead letters are kept
//! within bounds, the node runs as its own least-privileged database role, and a reading
//! of 1e300 is followed from HTTP to the log, the monitor, its events, the read models,
//! the snapshot and a restart.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use chrono::Utc;
use eventlog::{Append, Database, ExpectedVersion, Metadata, NewEvent, StreamName};
use layout::{Layout, Scale};
use plant::GatewayTokens;
use plant::ingest::system_clock;
use plant::node::{NodeConfig, NodeSecrets};
use reqwest::StatusCode;
use serde_json::{Value, json};
use telemetry::Reading;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn scale() -> Scale {
    Scale { plants: Some(1), lines_per_plant: Some(2), sensors_per_plant: Some(60) }
}

struct Node {
    base: String,
    addr: String,
    db: Database,
    test_db: pgcluster::testdb::TestDb,
    layout: Layout,
    secrets: NodeSecrets,
    config: NodeConfig,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

fn secrets(layout: &Layout) -> NodeSecrets {
    NodeSecrets {
        gateway_tokens: GatewayTokens::issue(layout, 1, &GatewayTokens::default()).unwrap(),
        reader_password: "reader-password-for-tests-0123456789".into(),
        node_password: "node-password-for-tests-0123456789".into(),
    }
}

async fn start(configure: impl FnOnce(&mut NodeConfig)) -> Node {
    let test_db = pgcluster::testdb::TestDb::new().await.unwrap();
    let layout = Layout::default_with(&scale()).unwrap();
    let mut config = NodeConfig::new(1, layout::DEFAULT_LAYOUT_TOML.into(), scale());
    configure(&mut config);
    let db = Database::new(&test_db.url, 8).unwrap();
    let secrets = secrets(&layout);
    let mut node =
        Node { base: String::new(), addr: String::new(), db, test_db, layout, secrets, config, stop: None, task: None };
    node.run().await;
    node
}

impl Node {
    /// Starts the node (again), on a new port, and waits until it answers.
    async fn run(&mut self) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        self.addr = listener.local_addr().unwrap().to_string();
        self.base = format!("http://{}", self.addr);
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        self.stop = Some(tx);
        self.task = Some(tokio::spawn(plant::node::run(
            Database::new(&self.test_db.url, 8).unwrap(),
            self.config.clone(),
            self.secrets.clone(),
            listener,
            system_clock(),
            async move {
                let _ = rx.await;
            },
            |_| {},
        )));
        let deadline = Instant::now() + Duration::from_secs(60);
        while reqwest::get(format!("{}/v1/health", self.base)).await.is_err() {
            // A node that stopped says why, rather than the wait running out.
            if self.task.as_ref().is_some_and(|t| t.is_finished()) {
                let ended = self.task.take().unwrap().await.unwrap();
                panic!("the node stopped while starting: {ended:?}");
            }
            assert!(Instant::now() < deadline, "the node did not start");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.unwrap().unwrap();
        }
    }

    fn gateway(&self) -> &str {
        &self.layout.lines()[0].id
    }

    fn token(&self) -> String {
        self.secrets.gateway_tokens.get(self.gateway()).unwrap().to_owned()
    }

    fn sensors(&self) -> std::ops::Range<u32> {
        self.layout.lines()[0].sensor_ids.clone()
    }

    async fn head(&self) -> i64 {
        eventlog::head_position(&self.db.client().await.unwrap()).await.unwrap()
    }
}

/// Sends raw bytes and waits up to `wait` for the status line of an answer (`None` when
/// nothing came, `Some("")` when the server closed the connection without answering).
async fn raw(addr: &str, request: &[u8], wait: Duration) -> Option<String> {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(request).await.unwrap();
    let mut got = Vec::new();
    let read = async {
        let mut buf = [0u8; 4096];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return String::from_utf8_lossy(&got).lines().next().unwrap_or("").to_owned(),
                Ok(n) => {
                    got.extend_from_slice(&buf[..n]);
                    if got.windows(4).any(|w| w == b"\r\n\r\n") {
                        return String::from_utf8_lossy(&got).lines().next().unwrap_or("").to_owned();
                    }
                }
            }
        }
    };
    tokio::time::timeout(wait, read).await.ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sender_that_is_not_known_is_refused_from_its_headers_without_its_body_being_read() {
    let node = start(|_| {}).await;
    let gw = node.gateway().to_owned();
    // Each request announces a megabyte and sends none of it: an answer can only come
    // before the body.
    for (path, auth) in [
        (format!("/v1/gateways/{gw}/batches/1"), "Bearer wrong-token-wrong-token-wrong-token"),
        (format!("/v1/gateways/{gw}/batches/1"), ""),
        (format!("/v1/gateways/{gw}/machine-events"), "Bearer wrong-token-wrong-token-wrong-token"),
        ("/v1/machine-telemetry".into(), "Bearer wrong-token-wrong-token-wrong-token"),
        (
            "/v1/commands/anomalies/A-1/acknowledge".into(),
            "Bearer fwt_0000000000000000_0000000000000000000000000000000000000000000000000000000000000000",
        ),
        ("/v1/commands/machines/P1-L01-M001/maintenance/schedule".into(), ""),
    ] {
        let auth = if auth.is_empty() { String::new() } else { format!("Authorization: {auth}\r\n") };
        let request = format!(
            "POST {path} HTTP/1.1\r\nHost: plant\r\n{auth}Content-Type: application/json\r\nContent-Length: 1000000\r\n\r\n"
        );
        let status = raw(&node.addr, request.as_bytes(), Duration::from_secs(5)).await;
        assert!(status.as_deref().is_some_and(|s| s.contains(" 401 ")), "{path}: {status:?}");
    }
    // A known gateway announcing more than the limit is refused from its headers too.
    let request = format!(
        "POST /v1/gateways/{gw}/batches/2 HTTP/1.1\r\nHost: plant\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: 999999999\r\n\r\n",
        node.token()
    );
    let status = raw(&node.addr, request.as_bytes(), Duration::from_secs(5)).await;
    assert!(status.as_deref().is_some_and(|s| s.contains(" 413 ")), "{status:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_and_silent_clients_are_cut_off_and_connections_are_bounded() {
    let node = start(|c| {
        c.http.header_timeout_ms = 700;
        c.http.request_timeout_ms = 1_500;
        c.http.max_connections = 3;
    })
    .await;
    // Headers that never end: the connection is closed.
    let started = Instant::now();
    let closed = raw(&node.addr, b"GET /v1/health HTTP/1.1\r\nHost: pl", Duration::from_secs(5)).await;
    assert!(closed.is_some(), "a client dribbling its headers is still connected after 5 s");
    assert!(!closed.unwrap().contains("200"));
    assert!(started.elapsed() < Duration::from_secs(4));
    // A body that never comes, from a known gateway: 408 within the request time-out.
    let request = format!(
        "POST /v1/gateways/{}/batches/3 HTTP/1.1\r\nHost: plant\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{{\"readings\"",
        node.gateway(),
        node.token()
    );
    let status = raw(&node.addr, request.as_bytes(), Duration::from_secs(5)).await;
    assert!(status.as_deref().is_some_and(|s| s.contains(" 408 ")), "{status:?}");

    // Three connections that hold their slot (a request line, then nothing)...
    let mut held = Vec::new();
    for _ in 0..3 {
        let mut s = tokio::net::TcpStream::connect(&node.addr).await.unwrap();
        s.write_all(b"GET /v1/health HTTP/1.1\r\n").await.unwrap();
        held.push(s);
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    // ...keep a fourth waiting, until the header time-out frees their slots.
    let fourth = tokio::spawn({
        let addr = node.addr.clone();
        async move {
            let started = Instant::now();
            let status = raw(&addr, b"GET /v1/health HTTP/1.1\r\nHost: plant\r\n\r\n", Duration::from_secs(10)).await;
            (status, started.elapsed())
        }
    });
    let (status, waited) = fourth.await.unwrap();
    assert!(status.as_deref().is_some_and(|s| s.contains(" 200 ")), "{status:?}");
    assert!(waited >= Duration::from_millis(400), "the fourth connection was served at once ({waited:?})");
    drop(held);
}

fn series(points: usize) -> Value {
    let start = chrono::DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z").unwrap();
    let series: Vec<Value> = (0..points)
        .map(|i| {
            let t = start + chrono::Duration::minutes(i as i64);
            json!({ "timestamp": t.to_rfc3339(), "value": (i as f64 / 30.0).sin() * 10.0 + if i == points / 2 { 80.0 } else { 0.0 } })
        })
        .collect();
    json!({ "series": series, "granularity": "minutely", "period": 60 })
}

#[tokio::test]
async fn the_anomaly_detector_routes_need_their_key_limit_bodies_and_keep_detection_off_the_runtime() {
    // One runtime thread: were a detection run on it, nothing else could be answered meanwhile.
    let node = start(|c| {
        c.anomaly_detector.api_key = Some("k3y-for-the-anomaly-detector".into());
        c.anomaly_detector.max_body_bytes = 2 * 1024 * 1024;
    })
    .await;
    let url = format!("{}/anomalydetector/v1.1/timeseries/entire/detect", node.base);
    let http = reqwest::Client::new();
    let body = series(8640);
    let no_key = http.post(&url).json(&body).send().await.unwrap();
    assert_eq!(no_key.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(no_key.headers()["x-ms-error-code"], "Unauthorized");
    let wrong = http.post(&url).header("Ocp-Apim-Subscription-Key", "k3y-for-the-anomaly-detectoR").json(&body).send();
    assert_eq!(wrong.await.unwrap().status(), StatusCode::UNAUTHORIZED);
    let huge = http
        .post(&url)
        .header("Ocp-Apim-Subscription-Key", "k3y-for-the-anomaly-detector")
        .header("content-type", "application/json")
        .body(vec![b' '; 3 * 1024 * 1024])
        .send()
        .await
        .unwrap();
    assert_eq!(huge.status(), StatusCode::PAYLOAD_TOO_LARGE);

    // A long detection and, while it runs, a health check: the check is answered first.
    // The node first reports every task running (right after its start a task may still
    // be starting, and health then answers 503).
    let started = Instant::now();
    while http.get(format!("{}/v1/health", node.base)).send().await.unwrap().status() != StatusCode::OK {
        assert!(started.elapsed() < Duration::from_secs(60), "the node's tasks never all ran");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let detection = tokio::spawn({
        let request = http.post(&url).header("Ocp-Apim-Subscription-Key", "k3y-for-the-anomaly-detector").json(&body);
        async move {
            let response = request.send().await.unwrap();
            let status = response.status();
            let answer: Value = response.json().await.unwrap();
            (status, answer, Instant::now())
        }
    });
    tokio::time::sleep(Duration::from_millis(30)).await;
    let health = http.get(format!("{}/v1/health", node.base)).send().await.unwrap();
    let health_at = Instant::now();
    assert_eq!(health.status(), StatusCode::OK);
    let (status, answer, detected_at) = detection.await.unwrap();
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["isAnomaly"].as_array().unwrap().len(), 8640);
    assert!(health_at < detected_at, "the health check waited for the detection");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_node_runs_as_its_own_role_which_cannot_rewrite_the_log_make_credentials_or_change_the_schema() {
    let node = start(|_| {}).await;
    let gw = node.gateway().to_owned();
    let readings: Vec<Reading> = node.sensors().map(|s| Reading::new(s, Utc::now().timestamp_millis(), 30.0)).collect();
    let upload = reqwest::Client::new()
        .post(format!("{}/v1/gateways/{gw}/batches/1", node.base))
        .bearer_auth(node.token())
        .header("content-type", plant::ingest::BINARY_CONTENT_TYPE)
        .body(telemetry::encode(&readings).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(upload.status(), StatusCode::OK);
    let admin = node.test_db.connect().await.unwrap();
    let role = plant::roles::node_role(&node.test_db.name);
    let sql = "SELECT DISTINCT usename::text FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'floorwatch'";
    // The owner's connections (migrations) close once the node has started.
    wait_until("only the node's role to be connected", 20, || async {
        let users: Vec<String> = admin.query(sql, &[]).await.unwrap().iter().map(|r| r.get(0)).collect();
        users == [role.clone()]
    })
    .await;
    let attrs = admin
        .query_one("SELECT rolsuper, rolcreaterole, rolcreatedb FROM pg_roles WHERE rolname = $1", &[&role])
        .await
        .unwrap();
    assert_eq!((attrs.get::<_, bool>(0), attrs.get::<_, bool>(1), attrs.get::<_, bool>(2)), (false, false, false));

    let as_node = Database::new(&node.test_db.url, 1).unwrap().as_role(&role, &node.secrets.node_password, 1).unwrap();
    let client = as_node.client().await.unwrap();
    for (what, sql) in [
        ("change an event", "UPDATE eventlog.events SET type = 'Forged'"),
        ("remove an event", "DELETE FROM eventlog.events"),
        ("remove telemetry", "DELETE FROM eventlog.telemetry"),
        (
            "make a credential",
            "INSERT INTO access.credentials (id, secret_sha256, role, label) VALUES ('x', 'y', 'supervisor', 'z')",
        ),
        ("revoke a credential", "UPDATE access.credentials SET revoked_at = now()"),
        ("create a table", "CREATE TABLE readmodel.mine (x int)"),
        ("create a table in public", "CREATE TABLE public.mine (x int)"),
        ("drop a read model", "DROP TABLE readmodel.audit"),
        ("change the schema", "ALTER TABLE eventlog.events ADD COLUMN x int"),
        (
            "register a model",
            "INSERT INTO maintenance.models (version, created_at, metrics, model) VALUES ('v', now(), '{}', 'm')",
        ),
        ("make a role", "CREATE ROLE intruder"),
        ("read the migrations' history", "SELECT * FROM eventlog_schema_history"),
    ] {
        assert!(client.batch_execute(sql).await.is_err(), "the node's role may {what}");
    }
    // What it needs it may do: read the log, its credentials, and write the read models.
    client
        .batch_execute("SELECT count(*) FROM eventlog.all_events; SELECT count(*) FROM access.credentials")
        .await
        .unwrap();
}

#[tokio::test]
async fn dead_letters_are_kept_thirty_days_and_never_beyond_their_caps() {
    // The pruning alone (a running node prunes every minute with its own policy).
    let test_db = pgcluster::testdb::TestDb::new().await.unwrap();
    let db = Database::new(&test_db.url, 2).unwrap();
    plant::migrate(&db).await.unwrap();
    let client = db.client().await.unwrap();
    // 40 days of refused readings, one every 6 hours, 20 of them with a refused body.
    let now = Utc::now();
    for i in 0..160i64 {
        let at = now - chrono::Duration::hours(6 * (160 - i));
        let raw: Option<Vec<u8>> = (i % 8 == 0).then(|| vec![b'x'; 1000]);
        client
            .execute(
                "INSERT INTO ingest.dead_letters (received_at, gateway, upload, item, reason, raw) VALUES ($1, 'P1-L01', $2, -1, 'bad', $3)",
                &[&at, &format!("P1-L01:{i}"), &raw],
            )
            .await
            .unwrap();
    }
    let count = |sql: &'static str| {
        let client = &client;
        async move { client.query_one(sql, &[]).await.unwrap().get::<_, i64>(0) }
    };
    let policy = plant::dead_letters::DeadLetterPolicy { retention_days: 30, max_rows: 100, max_bodies: 5 };
    let pruned = plant::dead_letters::prune(&db, policy, now).await.unwrap();
    assert_eq!(pruned.expired, 40, "ten days beyond the thirty");
    assert_eq!(count("SELECT count(*) FROM ingest.dead_letters").await, 100);
    assert_eq!(count("SELECT count(*) FROM ingest.dead_letters WHERE raw IS NOT NULL").await, 5);
    assert_eq!(
        count("SELECT count(*) FROM ingest.dead_letters WHERE received_at < now() - interval '30 days'").await,
        0
    );
    // The newest are the ones kept.
    assert_eq!(count("SELECT max(split_part(upload, ':', 2)::int)::bigint FROM ingest.dead_letters").await, 159);
    assert_eq!(count("SELECT min(split_part(upload, ':', 2)::int)::bigint FROM ingest.dead_letters").await, 60);
}

async fn anomalies_in_read_models(node: &Node) -> Vec<(String, String, f64)> {
    let client = node.db.client().await.unwrap();
    client
        .query("SELECT anomaly_id, explanation, score FROM readmodel.anomalies ORDER BY started_at", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect()
}

async fn wait_until<F: std::future::Future<Output = bool>>(what: &str, seconds: u64, mut check: impl FnMut() -> F) {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    while !check().await {
        assert!(Instant::now() < deadline, "waited {seconds} s for {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn monitor_checkpoint(node: &Node) -> i64 {
    eventlog::checkpoint(&node.db.client().await.unwrap(), plant::monitor::MONITOR).await.unwrap()
}

/// A minute of readings of every sensor of line 1 from `from_s` on (seconds before now):
/// about 40, or what `value` says.
async fn append_minutes(node: &Node, from_s: i64, seconds: i64, value: impl Fn(u32, i64) -> Option<f64>) {
    let now = Utc::now().timestamp_millis().div_euclid(1000) * 1000;
    let mut appends = Vec::new();
    // Quiet readings jitter irregularly (a regular pattern is a signal of its own).
    let mut noise = 0x1234_5678_u64 ^ from_s as u64;
    for s in 0..seconds {
        let ts = now - (from_s - s) * 1000;
        let readings: Vec<Reading> = node
            .sensors()
            .map(|id| {
                noise ^= noise << 13;
                noise ^= noise >> 7;
                noise ^= noise << 17;
                let jitter = (noise % 1000) as f64 / 1000.0 - 0.5;
                Reading::new(id, ts, value(id, s).unwrap_or(40.0 + jitter))
            })
            .collect();
        let e = NewEvent::readings(&readings, (ts - 1, ts + 1), Metadata::from_source("gateway:P1-L01")).unwrap();
        appends.push(Append::new(StreamName::new("readings-P1-L01").unwrap(), ExpectedVersion::Any, vec![e]));
        if appends.len() == 50 {
            eventlog::append_and_commit(&node.db, &appends).await.unwrap();
            appends.clear();
        }
    }
    if !appends.is_empty() {
        eventlog::append_and_commit(&node.db, &appends).await.unwrap();
    }
}

/// A perfectly regular reading: ten values in steps of 0.05, one a second, each sensor
/// at its own phase (every value of it exactly 40.0 once in ten seconds).
fn regular(id: u32, s: i64) -> f64 {
    40.0 + ((i64::from(id) * 7 + s * 13) % 10) as f64 / 20.0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reading_of_1e300_is_refused_at_the_door_and_one_already_in_the_log_is_followed_to_a_restart() {
    let mut node = start(|c| {
        c.monitor.snapshot_every_ms = 30_000;
        c.monitor.snapshot_min_interval = Duration::ZERO;
        c.credential_cache_ms = 0;
    })
    .await;
    let target = node.sensors().start + 3;
    // At the door: refused as a dead letter with its reason.
    let body = json!({ "readings": [{ "sensor": target, "ts": Utc::now().timestamp_millis(), "value": 1e300 }] });
    let response = reqwest::Client::new()
        .post(format!("{}/v1/gateways/{}/batches/1", node.base, node.gateway()))
        .bearer_auth(node.token())
        .json(&body)
        .send()
        .await
        .unwrap();
    let outcome: Value = response.json().await.unwrap();
    assert_eq!(outcome["accepted"], 0);
    assert!(outcome["rejected"][0]["reason"].as_str().unwrap().contains("outside the plausible range"), "{outcome}");
    let client = node.db.client().await.unwrap();
    let kept: f64 = client.query_one("SELECT value FROM ingest.dead_letters", &[]).await.unwrap().get(0);
    assert_eq!(kept, 1e300);

    // In a log an older version wrote: 200 readings of 1e300 after 700 s of a perfectly
    // regular pattern (every sensor repeats ten values in steps of 0.05): however quiet,
    // they are an anomaly.
    append_minutes(&node, 1500, 1000, |id, s| {
        Some(if id == target && (700..900).contains(&s) { 1e300 } else { regular(id, s) })
    })
    .await;
    let head = node.head().await;
    wait_until("the monitor to read the log", 120, || async { monitor_checkpoint(&node).await > head - 60 }).await;
    wait_until("the anomaly in the read models", 60, || async {
        anomalies_in_read_models(&node).await.iter().any(|(_, e, _)| e.contains("1.000e300"))
    })
    .await;
    let nulls: i64 = client
        .query_one(
            "SELECT count(*) FROM eventlog.events WHERE jsonb_path_exists(payload, 'strict $.** ? (@ == null)')",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(nulls, 0, "no event holds null where a number belongs");
    let (_, explanation, score) =
        anomalies_in_read_models(&node).await.into_iter().find(|(_, e, _)| e.contains("1.000e300")).unwrap();
    assert!(explanation.contains("judged at that bound"), "{explanation}");
    assert!(score.is_finite() && score > 0.0);

    // A restart: the monitor loads its snapshot and goes on with what follows.
    node.shutdown().await;
    let before = monitor_checkpoint(&node).await;
    node.run().await;
    // Readings that are exactly 40.0 every ten seconds, so the snapshot holds that number.
    append_minutes(&node, 500, 300, |id, s| Some(regular(id, s))).await;
    let head = node.head().await;
    wait_until("the monitor after the restart", 120, || async { monitor_checkpoint(&node).await > head - 60 }).await;
    assert!(monitor_checkpoint(&node).await > before);

    // A snapshot an older version saved with infinity: repaired, and the monitor goes on.
    node.shutdown().await;
    let (position, mut state): (i64, Vec<u8>) = {
        let row = client
            .query_one("SELECT position, state FROM monitor.state ORDER BY position DESC LIMIT 1", &[])
            .await
            .unwrap();
        (row.get(0), row.get(1))
    };
    let forty = 40.0f64.to_le_bytes();
    let mut poisoned = 0;
    for i in 0..state.len().saturating_sub(7) {
        if state[i..i + 8] == forty {
            state[i..i + 8].copy_from_slice(&f64::INFINITY.to_le_bytes());
            poisoned += 1;
        }
    }
    assert!(poisoned > 0, "the snapshot holds readings of 40.0");
    client.execute("UPDATE monitor.state SET state = $1 WHERE position = $2", &[&state, &position]).await.unwrap();
    client.execute("UPDATE monitor.state SET state = '\\xdeadbeef' WHERE position < $1", &[&position]).await.unwrap();
    node.run().await;
    append_minutes(&node, 200, 120, |_, _| None).await;
    let head = node.head().await;
    wait_until("the monitor after a damaged snapshot", 120, || async { monitor_checkpoint(&node).await > head - 60 })
        .await;
    node.shutdown().await;
}
