//! Hostile forwarded batches against a running cloud node and its real PostgreSQL: what a
//! forwarder's credential may send to `POST /v1/ingest/plants/{plant}/events`, generated
//! — arbitrary bytes; valid batches cut short, with bytes changed, inserted or appended,
//! with invalid UTF-8 inside a string; batches whose every field is hostile (NUL, control
//! and non-Latin characters, huge strings, JSON that does not parse or holds numbers past
//! every range, telemetry with non-finite and huge values, other plants' sensors, a lying
//! first-reading time, times past any calendar, versions and positions at and past their
//! ranges, counts at and past every limit) — and bodies past the size limit.
//!
//! Each answer is checked against the decoder itself (`forwarder::wire::WireBatch::decode`,
//! the one the route uses): a body it refuses is answered 400 (403 for another plant's
//! batch, 413 past the size limit) with an error code and a message, and not a byte of it
//! is stored; a body it accepts is stored whole (every event after the acknowledged
//! position, once) or refused whole as a gap. Never a 5xx (the database is up: a 503
//! would tell a forwarder to send again what will never be accepted), never a panic.
//! At the end the cloud's projections still fold everything stored.
//!
//! `PROPTEST_CASES=100000 cargo test -p cloud --test fuzz_forwarded` runs them longer.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "cloud/support.rs"]
#[allow(dead_code)]
mod support;

use std::collections::BTreeMap;
use std::sync::{Mutex, OnceLock};

use access::{Role, Scope};
use cloud::CloudConfig;
use eventlog::{Database, MAX_BINARY_PAYLOAD_BYTES, MAX_JSON_PAYLOAD_BYTES};
use forwarder::wire::{CONTENT_TYPE, WIRE_VERSION, WireBatch, WireBody, WireError, WireEvent, WireMetadata};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::Value;
use support::*;
use telemetry::{MAX_READINGS, Reading};

/// The largest body the node under test accepts (the product's default is 64 MiB; a
/// smaller one keeps the bodies past it cheap).
const MAX_BODY: usize = 4 * 1024 * 1024;
/// 2026-03-01 12:00 UTC: the readings' time.
const T: i64 = 1_772_366_400_000;

/// The cloud node, its database and a forwarder credential per plant, shared by every
/// case (each property sends for a plant of its own, so their logs do not mix).
struct Fixture {
    rt: tokio::runtime::Runtime,
    db: Database,
    url: String,
    tokens: Vec<String>,
    http: reqwest::Client,
    _node: CloudNode,
}

const PLANTS: u16 = 6;

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        let (db, node, tokens) = rt.block_on(async {
            let db = cloud_db().await;
            let node =
                CloudNode::start_with(&db, 0, CloudConfig { max_batch_bytes: MAX_BODY, ..support::config() }).await;
            let mut tokens = Vec::new();
            for plant in 1..=PLANTS {
                tokens.push(token(&db, Role::Forwarder, Scope::plant(plant)).await);
            }
            (db, node, tokens)
        });
        // A fresh connection per request: the node closes one after refusing a body
        // past the limit unread, and a reused one would fail the next request.
        let http = reqwest::Client::builder().pool_max_idle_per_host(0).build().unwrap();
        Fixture { url: node.url.clone(), rt, db, tokens, http, _node: node }
    })
}

/// What the cloud holds of `plant`'s log: (acknowledged, events stored, the newest
/// plant position among them) — a batch stored in part or twice changes them otherwise
/// than whole.
async fn held(db: &Database, plant: u16) -> (i64, i64, i64) {
    let client = db.client().await.unwrap();
    let acknowledged = eventlog::origin_position(&client, plant).await.unwrap().acknowledged;
    let row = client
        .query_one(
            "SELECT count(*), coalesce(max(origin_position), 0) FROM eventlog.all_events WHERE origin = $1",
            &[&(plant as i16)],
        )
        .await
        .unwrap();
    (acknowledged, row.get(0), row.get(1))
}

/// The plant positions the cloud holds of `plant` after `after`, in order.
async fn stored_after(db: &Database, plant: u16, after: i64) -> Vec<i64> {
    let client = db.client().await.unwrap();
    client
        .query(
            "SELECT origin_position FROM eventlog.all_events WHERE origin = $1 AND origin_position > $2 ORDER BY 1",
            &[&(plant as i16), &after],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

/// Posts `body` as plant `plant`'s forwarder; returns the status and the error code.
async fn post(f: &Fixture, plant: u16, body: Vec<u8>, content_type: &str) -> (u16, Option<String>, Value) {
    let response = f
        .http
        .post(format!("{}/v1/ingest/plants/{plant}/events", f.url))
        .bearer_auth(&f.tokens[plant as usize - 1])
        .header("content-type", content_type)
        .body(body)
        .send()
        .await;
    let response = match response {
        Ok(r) => r,
        Err(e) => return (0, Some(format!("no answer: {e}")), Value::Null),
    };
    let status = response.status().as_u16();
    let answer: Value = response.json().await.unwrap_or(Value::Null);
    let code = answer.pointer("/error/code").and_then(Value::as_str).map(str::to_owned);
    (status, code, answer)
}

/// The answers each plant's bodies got: (plant, status) → count.
static ANSWERS: Mutex<BTreeMap<(u16, u16), usize>> = Mutex::new(BTreeMap::new());

/// The answers plant `plant`'s bodies got, by status; fails unless some were stored and
/// some refused (a fuzzer that only ever hits one side proves little).
fn answers(plant: u16) -> BTreeMap<u16, usize> {
    let all = ANSWERS.lock().unwrap();
    let mine: BTreeMap<u16, usize> = all.iter().filter(|((p, _), _)| *p == plant).map(|((_, s), n)| (*s, *n)).collect();
    println!("plant {plant}: answers by status {mine:?}");
    assert!(mine.contains_key(&200) && mine.contains_key(&400), "plant {plant}: {mine:?}");
    mine
}

/// Sends `body` for `plant` and checks the answer and what was stored against the decoder.
fn check(plant: u16, body: Vec<u8>) -> Result<(), TestCaseError> {
    let f = fixture();
    f.rt.block_on(async {
        let before = held(&f.db, plant).await;
        let decoded = WireBatch::decode(&body, plant);
        let len = body.len();
        let (status, code, answer) = post(f, plant, body, CONTENT_TYPE).await;
        *ANSWERS.lock().unwrap().entry((plant, status)).or_default() += 1;
        let after = held(&f.db, plant).await;
        prop_assert!(status != 0 && status < 500, "answered {status} {code:?}: {answer}");
        if len > MAX_BODY {
            prop_assert_eq!(status, 413, "a body past the limit: {}", answer);
            prop_assert_eq!(after, before, "a body past the limit stored something");
            return Ok(());
        }
        match decoded {
            Err(WireError::Plant { .. }) => {
                prop_assert_eq!(status, 403, "another plant's batch: {}", answer);
            }
            Err(e) => {
                prop_assert_eq!(
                    (status, code.as_deref()),
                    (400, Some("malformed_batch")),
                    "refusing {}: {}",
                    e,
                    answer
                );
                let message = answer.pointer("/error/message").and_then(Value::as_str).unwrap_or("");
                prop_assert!(!message.is_empty(), "a refusal names its reason: {}", answer);
            }
            Ok((batch_after, events)) if batch_after > before.0 => {
                prop_assert_eq!((status, code.as_deref()), (409, Some("gap")), "a batch beyond the log: {}", answer);
                prop_assert!(!events.is_empty() || batch_after > before.0);
            }
            Ok((_, events)) => {
                prop_assert_eq!(status, 200, "a valid batch was refused: {}\n{:?}", answer, events);
                let fresh: Vec<i64> = events.iter().map(|e| e.origin_position).filter(|p| *p > before.0).collect();
                let expected = (
                    fresh.last().copied().unwrap_or(before.0),
                    before.1 + fresh.len() as i64,
                    before.2.max(fresh.last().copied().unwrap_or(0)),
                );
                prop_assert_eq!(after, expected, "a valid batch was not stored whole and once");
                prop_assert_eq!(&stored_after(&f.db, plant, before.0).await, &fresh, "stored other positions");
                prop_assert_eq!(answer["stored"].as_u64(), Some(fresh.len() as u64));
                prop_assert_eq!(answer["acknowledged"].as_i64(), Some(expected.0));
                return Ok(());
            }
        }
        prop_assert_eq!(after, before, "a refused batch stored something");
        Ok(())
    })
}

fn runner() -> TestRunner {
    TestRunner::new(Config { failure_persistence: None, ..Config::default() })
}

/// Runs `test` on `strategy` and fails with the smallest failing input.
fn fuzz<S: Strategy>(strategy: S, test: impl Fn(S::Value) -> Result<(), TestCaseError>)
where
    S::Value: std::fmt::Debug,
{
    if let Err(e) = runner().run(&strategy, test) {
        panic!("{e}");
    }
}

// ---------------------------------------------------------------------------------------
// Valid batches, to be sent as they are or damaged.

fn wire_event(plant: u16, position: i64, body: WireBody) -> WireEvent {
    let telemetry = matches!(body, WireBody::Telemetry { .. });
    WireEvent {
        position,
        recorded_at_ms: T.saturating_add(position),
        stream: if telemetry { format!("readings-P{plant}-L01") } else { format!("anomaly-P{plant}.{position}") },
        version: position as u64,
        event_type: if telemetry { "ReadingsRecorded".into() } else { "AnomalyNoteAdded".into() },
        schema_version: 1,
        metadata: WireMetadata { source: Some("gateway:P1-L01".into()), ..WireMetadata::default() },
        idempotency_key: Some(format!("k:{position}")),
        body,
    }
}

fn readings_body(readings: &[Reading]) -> WireBody {
    WireBody::Telemetry {
        occurred_at_ms: readings.iter().map(|r| r.ts_ms).min().unwrap_or(T),
        bytes: telemetry::encode(readings).unwrap(),
    }
}

/// The first sensor id of `plant`.
fn first_sensor(plant: u16) -> u32 {
    u32::from(plant) * layout::PLANT_ID_STRIDE
}

/// `n` valid events following `after`: telemetry and notes, alternately.
fn valid_batch(plant: u16, after: i64, n: usize) -> WireBatch {
    let events = (1..=n as i64)
        .map(|i| {
            let p = after + i;
            let body = if p % 2 == 0 {
                readings_body(&[Reading::new(first_sensor(plant) + 1, T + p * 1_000, p as f64)])
            } else {
                WireBody::Json(
                    serde_json::json!({ "anomaly_id": format!("A{p}"), "by": "ana", "text": "ok" }).to_string(),
                )
            };
            wire_event(plant, p, body)
        })
        .collect();
    WireBatch::new(plant, after, events)
}

#[derive(Debug, Clone)]
enum Damage {
    /// The body as it is.
    None,
    /// Cut at this share of its length.
    Truncate(f64),
    /// The byte at this share set to a value.
    Set(f64, u8),
    /// Bytes put in at this share.
    Insert(f64, Vec<u8>),
    /// Bytes after the batch.
    Append(Vec<u8>),
    /// A string's bytes (the note's text) replaced by invalid UTF-8 of the same length.
    InvalidUtf8,
}

fn at(share: f64, len: usize) -> usize {
    ((share * len as f64) as usize).min(len.saturating_sub(1))
}

fn damaged(mut bytes: Vec<u8>, damage: &Damage) -> Vec<u8> {
    match damage {
        Damage::None => {}
        Damage::Truncate(s) => bytes.truncate(at(*s, bytes.len())),
        Damage::Set(s, b) => {
            let i = at(*s, bytes.len());
            bytes[i] = *b;
        }
        Damage::Insert(s, more) => {
            let i = at(*s, bytes.len());
            bytes.splice(i..i, more.iter().copied());
        }
        Damage::Append(more) => bytes.extend_from_slice(more),
        Damage::InvalidUtf8 => {
            if let Some(i) = bytes.windows(2).position(|w| w == b"ok") {
                bytes[i] = 0xff;
                bytes[i + 1] = 0xfe;
            }
        }
    }
    bytes
}

fn damage() -> impl Strategy<Value = Damage> {
    prop_oneof![
        2 => Just(Damage::None),
        3 => (0.0..1.0).prop_map(Damage::Truncate),
        4 => (0.0..1.0, any::<u8>()).prop_map(|(s, b)| Damage::Set(s, b)),
        2 => (0.0..1.0, prop::collection::vec(any::<u8>(), 1..16)).prop_map(|(s, b)| Damage::Insert(s, b)),
        1 => prop::collection::vec(any::<u8>(), 1..64).prop_map(Damage::Append),
        1 => Just(Damage::InvalidUtf8),
    ]
}

#[test]
fn arbitrary_and_damaged_bodies_are_refused_or_stored_whole() {
    const PLANT: u16 = 1;
    let body = prop_oneof![
        1 => prop::collection::vec(any::<u8>(), 0..512).prop_map(|b| (None, b)),
        1 => prop::collection::vec(any::<u8>(), 0..64).prop_map(|mut b| {
            // Arbitrary bytes behind the right version byte reach postcard itself.
            b.insert(0, WIRE_VERSION);
            (None, b)
        }),
        4 => (1usize..6, damage()).prop_map(|(n, d)| (Some((n, d)), Vec::new())),
    ];
    fuzz(body, |(valid, bytes)| {
        let bytes = match valid {
            Some((n, d)) => {
                let f = fixture();
                let acknowledged = f.rt.block_on(held(&f.db, PLANT)).0;
                damaged(valid_batch(PLANT, acknowledged, n).encode(), &d)
            }
            None => bytes,
        };
        check(PLANT, bytes)
    });
    answers(PLANT);
}

// ---------------------------------------------------------------------------------------
// Batches whose fields are hostile.

/// Text a hostile sender may put in a string: NUL, control and non-Latin characters,
/// names of the right shape, and long runs at and past the limits.
fn hostile_text() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => "\\PC{0,40}",
        1 => Just("\0".to_owned()),
        1 => Just("anomaly-P1.x\0".to_owned()),
        1 => "[\\x00-\\x1f\"\\\\]{1,20}",
        1 => Just("😀".repeat(60)),
        1 => prop_oneof![Just(199usize), Just(200), Just(201), 1usize..100_000].prop_map(|n| "x".repeat(n)),
    ]
}

/// JSON text: valid documents holding hostile strings and numbers, and text that is not
/// JSON or not storable.
fn json_text() -> impl Strategy<Value = String> {
    let number = prop_oneof![
        Just("1e300"),
        Just("-1e300"),
        Just("1e999"),
        Just("-1e999"),
        Just("5e-324"),
        Just("-0"),
        Just("18446744073709551616"),
        Just("99999999999999999999999999999999999999"),
        Just("NaN"),
        Just("Infinity"),
    ];
    prop_oneof![
        3 => hostile_text().prop_map(|t| serde_json::json!({ "anomaly_id": "A1", "by": t.clone(), "text": t }).to_string()),
        2 => number.prop_map(|n| format!(r#"{{"anomaly_id":"A1","by":"x","text":"y","score":{n}}}"#)),
        1 => Just(r#"{"a":"x\u0000y"}"#.to_owned()),
        1 => Just(r#"{"x\u0000":1}"#.to_owned()),
        1 => Just(r#""\ud800""#.to_owned()),
        1 => Just("{not json".to_owned()),
        1 => Just(String::new()),
        1 => (1usize..300).prop_map(|d| format!("{}{}", "[".repeat(d), "]".repeat(d))),
        1 => prop_oneof![
            Just(MAX_JSON_PAYLOAD_BYTES - 2),
            Just(MAX_JSON_PAYLOAD_BYTES - 1),
            Just(MAX_JSON_PAYLOAD_BYTES + 1)
        ]
        .prop_map(|n| format!("\"{}\"", "x".repeat(n))),
        1 => Just("null".to_owned()),
        1 => Just("[]".to_owned()),
    ]
}

fn value() -> impl Strategy<Value = f64> {
    prop_oneof![
        6 => -1e4f64..1e4,
        1 => Just(f64::NAN),
        1 => Just(f64::INFINITY),
        1 => Just(f64::NEG_INFINITY),
        1 => Just(1e300),
        1 => Just(-1e300),
        1 => Just(f64::MAX),
        1 => Just(f64::MIN_POSITIVE / 2.0),
        1 => Just(-0.0),
    ]
}

/// A reading's time: mostly around `T`, sometimes far outside any calendar a database
/// keeps.
fn reading_time() -> impl Strategy<Value = i64> {
    prop_oneof![
        20 => (T - 86_400_000)..(T + 86_400_000),
        1 => Just(0i64),
        1 => Just(-62_135_596_800_000i64 - 1),
        1 => Just(-8_334_632_851_200_000i64),
        1 => Just(8_210_298_412_799_999i64),
        1 => Just(9_000_000_000_000_000i64),
        1 => Just(i64::MAX),
        1 => Just(i64::MIN),
    ]
}

fn sensor(plant: u16) -> impl Strategy<Value = u32> {
    let first = first_sensor(plant);
    let stride = layout::PLANT_ID_STRIDE;
    prop_oneof![
        8 => first..first + 2_000,
        1 => Just(first.wrapping_sub(1)),
        1 => Just(first + stride),
        1 => Just(first + stride - 1),
        1 => any::<u32>(),
    ]
}

fn telemetry_body(plant: u16) -> impl Strategy<Value = WireBody> {
    let readings = prop::collection::vec(
        (sensor(plant), reading_time(), value()).prop_map(|(s, t, v)| Reading::new(s, t, v)),
        1..40,
    );
    prop_oneof![
        6 => (readings, prop_oneof![8 => Just(0i64), 1 => Just(-1), 1 => Just(1), 1 => Just(i64::MIN)]).prop_map(
            |(readings, lie)| {
                let earliest = readings.iter().map(|r| r.ts_ms).min().unwrap_or(T);
                WireBody::Telemetry {
                    occurred_at_ms: if lie == i64::MIN { lie } else { earliest.saturating_add(lie) },
                    // Times too far apart for the encoding travel as no readings at all.
                    bytes: telemetry::encode(&readings).unwrap_or_default(),
                }
            }
        ),
        1 => prop::collection::vec(any::<u8>(), 0..64)
            .prop_map(|bytes| WireBody::Telemetry { occurred_at_ms: T, bytes }),
        1 => prop_oneof![Just(MAX_READINGS as u64), Just(MAX_READINGS as u64 + 1), Just(u64::MAX)].prop_map(|n| {
            // A count at and past the limit in front of too few readings.
            let bytes = with_count(telemetry::encode(&[Reading::new(1, T, 1.0)]).unwrap(), n);
            WireBody::Telemetry { occurred_at_ms: T, bytes }
        }),
        1 => Just(WireBody::Telemetry { occurred_at_ms: T, bytes: vec![0; MAX_BINARY_PAYLOAD_BYTES + 1] }),
    ]
}

/// A telemetry batch whose header declares `n` readings (the count follows the version
/// and flag bytes).
fn with_count(mut bytes: Vec<u8>, n: u64) -> Vec<u8> {
    let end = 2 + bytes[2..].iter().position(|b| b & 0x80 == 0).unwrap();
    let mut count = Vec::new();
    let mut v = n;
    while v >= 0x80 {
        count.push((v as u8) | 0x80);
        v >>= 7;
    }
    count.push(v as u8);
    bytes.splice(2..=end, count);
    bytes
}

fn stream(plant: u16) -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        6 => Just(None),
        1 => hostile_text().prop_map(Some),
        1 => Just(Some(format!("anomaly-P{plant}.{}", "x".repeat(200 - 11)))),
        1 => Just(Some(format!("anomaly-P{plant}.{}", "x".repeat(201 - 11)))),
        1 => Just(Some(format!("readings-P{}-L01", plant + 1))),
    ]
}

fn event_type() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        6 => Just(None),
        1 => hostile_text().prop_map(Some),
        1 => Just(Some("A".repeat(100))),
        1 => Just(Some("A".repeat(101))),
        1 => Just(Some("AnomalyDetected".to_owned())),
        1 => Just(Some("LayoutConfigured".to_owned())),
        1 => Just(Some("ReadingsRecorded".to_owned())),
    ]
}

fn key() -> impl Strategy<Value = Option<Option<String>>> {
    prop_oneof![
        6 => Just(None),
        1 => Just(Some(None)),
        1 => hostile_text().prop_map(|t| Some(Some(t))),
        1 => Just(Some(Some(String::new()))),
        1 => Just(Some(Some("k".repeat(200)))),
        1 => Just(Some(Some("k".repeat(201)))),
    ]
}

fn metadata() -> impl Strategy<Value = Option<WireMetadata>> {
    let field = prop_oneof![2 => Just(None), 1 => hostile_text().prop_map(Some)];
    prop_oneof![
        3 => Just(None),
        1 => (field.clone(), field.clone(), field.clone(), field).prop_map(|(a, b, c, d)| Some(WireMetadata {
            correlation_id: a,
            causation_id: b,
            actor: c,
            source: d,
        })),
    ]
}

/// How far an event's position is from the one before: next (mostly), the same, a hole,
/// backwards, or a position at the end of the range.
fn step() -> impl Strategy<Value = i64> {
    prop_oneof![20 => Just(1i64), 1 => Just(0), 1 => Just(2), 1 => Just(-1), 1 => Just(i64::MAX)]
}

#[derive(Debug, Clone)]
struct HostileEvent {
    step: i64,
    body: WireBody,
    stream: Option<String>,
    event_type: Option<String>,
    key: Option<Option<String>>,
    metadata: Option<WireMetadata>,
    version: Option<u64>,
    schema_version: i16,
    recorded_at_ms: Option<i64>,
}

fn hostile_event(plant: u16) -> impl Strategy<Value = HostileEvent> {
    let body = prop_oneof![1 => json_text().prop_map(WireBody::Json), 1 => telemetry_body(plant)];
    let version = prop_oneof![
        8 => Just(None),
        1 => Just(Some(0u64)),
        1 => Just(Some(i64::MAX as u64)),
        1 => Just(Some(i64::MAX as u64 + 1)),
        1 => Just(Some(u64::MAX)),
    ];
    let recorded = prop_oneof![8 => Just(None), 1 => reading_time().prop_map(Some)];
    (
        (step(), body, stream(plant), event_type()),
        (key(), metadata(), version, prop_oneof![8 => Just(1i16), 1 => any::<i16>()], recorded),
    )
        .prop_map(
            |((step, body, stream, event_type), (key, metadata, version, schema_version, recorded_at_ms))| {
                HostileEvent { step, body, stream, event_type, key, metadata, version, schema_version, recorded_at_ms }
            },
        )
}

#[derive(Debug, Clone)]
struct HostileBatch {
    /// The plant the body says (0: the one sending).
    plant: u16,
    /// `after` relative to what is acknowledged.
    after: i64,
    events: Vec<HostileEvent>,
}

fn hostile_batch(plant: u16) -> impl Strategy<Value = HostileBatch> {
    (
        prop_oneof![12 => Just(0u16), 1 => Just(plant + 1), 1 => Just(40_000u16)],
        prop_oneof![12 => Just(0i64), 1 => Just(-1), 1 => Just(1), 1 => Just(i64::MIN)],
        prop::collection::vec(hostile_event(plant), 0..5),
    )
        .prop_map(|(plant, after, events)| HostileBatch { plant, after, events })
}

fn build(plant: u16, acknowledged: i64, b: HostileBatch) -> WireBatch {
    let after = if b.after == i64::MIN { i64::MIN } else { acknowledged.saturating_add(b.after).max(0) };
    let mut position = after;
    let events = b
        .events
        .into_iter()
        .map(|h| {
            position = if h.step == i64::MAX { i64::MAX } else { position.saturating_add(h.step) };
            let mut e = wire_event(plant, position, h.body);
            if let Some(s) = h.stream {
                e.stream = s;
            }
            if let Some(t) = h.event_type {
                e.event_type = t;
            }
            if let Some(k) = h.key {
                e.idempotency_key = k;
            }
            if let Some(m) = h.metadata {
                e.metadata = m;
            }
            e.version = h.version.unwrap_or(position.max(1) as u64);
            e.schema_version = h.schema_version;
            e.recorded_at_ms = h.recorded_at_ms.unwrap_or(T);
            e
        })
        .collect();
    WireBatch { version: WIRE_VERSION, plant: if b.plant == 0 { plant } else { b.plant }, after, events }
}

#[test]
fn batches_with_hostile_fields_are_refused_with_the_reason_or_stored_whole() {
    const PLANT: u16 = 2;
    fuzz(hostile_batch(PLANT), |b| {
        let f = fixture();
        let acknowledged = f.rt.block_on(held(&f.db, PLANT)).0;
        check(PLANT, build(PLANT, acknowledged, b).encode())
    });
    let seen = answers(PLANT);
    assert!(seen.contains_key(&403), "another plant's batch was sent: {seen:?}");
    // What was stored is folded by the cloud's projections like anything a plant sends.
    let f = fixture();
    f.rt.block_on(async {
        cloud::projections::catch_up(&f.db, cloud::projections::BatchLimits::REBUILD, 5_000).await.unwrap();
    });
}

// ---------------------------------------------------------------------------------------
// At and past each limit, and what the route refuses before decoding.

#[test]
fn counts_and_sizes_at_the_limits_are_stored_and_past_them_refused() {
    const PLANT: u16 = 3;
    let f = fixture();
    let acknowledged = || f.rt.block_on(held(&f.db, PLANT)).0;
    let with_body = |body: WireBody| {
        let a = acknowledged();
        WireBatch::new(PLANT, a, vec![wire_event(PLANT, a + 1, body)]).encode()
    };
    let stored = |bytes: Vec<u8>| {
        let before = acknowledged();
        check(PLANT, bytes).unwrap();
        assert_eq!(acknowledged(), before + 1, "stored at the limit");
    };
    let refused = |bytes: Vec<u8>| {
        let before = acknowledged();
        check(PLANT, bytes).unwrap();
        assert_eq!(acknowledged(), before, "refused past the limit");
    };
    // Readings: as many as a batch holds, and one more.
    let many: Vec<Reading> =
        (0..MAX_READINGS).map(|i| Reading::new(first_sensor(PLANT) + (i % 500) as u32, T + i as i64, 1.0)).collect();
    stored(with_body(readings_body(&many)));
    let bytes = with_count(telemetry::encode(&many).unwrap(), MAX_READINGS as u64 + 1);
    refused(with_body(WireBody::Telemetry { occurred_at_ms: T, bytes }));
    // A JSON payload of the largest size, and one byte more.
    let text = |n: usize| format!("\"{}\"", "x".repeat(n - 2));
    stored(with_body(WireBody::Json(text(MAX_JSON_PAYLOAD_BYTES))));
    refused(with_body(WireBody::Json(text(MAX_JSON_PAYLOAD_BYTES + 1))));
    // Names and keys at their limits and one past.
    for (at_limit, past) in [
        ((Some("s".repeat(200 - 8)), None, None, None), (Some("s".repeat(201 - 8)), None, None, None)),
        ((None, Some("A".repeat(100)), None, None), (None, Some("A".repeat(101)), None, None)),
        ((None, None, Some("k".repeat(200)), None), (None, None, Some("k".repeat(201)), None)),
        ((None, None, None, Some("a".repeat(200))), (None, None, None, Some("a".repeat(201)))),
    ] {
        for (fields, ok) in [(at_limit, true), (past, false)] {
            let a = acknowledged();
            let mut e = wire_event(PLANT, a + 1, WireBody::Json("{}".into()));
            if let Some(id) = fields.0 {
                e.stream = format!("anomaly-{id}");
            }
            if let Some(t) = fields.1 {
                e.event_type = t;
            }
            if let Some(k) = fields.2 {
                e.idempotency_key = Some(k);
            }
            if let Some(actor) = fields.3 {
                e.metadata.actor = Some(actor);
            }
            let bytes = WireBatch::new(PLANT, a, vec![e]).encode();
            if ok { stored(bytes) } else { refused(bytes) }
        }
    }
    // Many events in one batch.
    let a = acknowledged();
    let batch = valid_batch(PLANT, a, 5_000);
    check(PLANT, batch.encode()).unwrap();
    assert_eq!(acknowledged(), a + 5_000);
    // A body of the largest size the node reads is decoded; one byte more is refused unread.
    let a = acknowledged();
    let mut padded = WireBatch::new(PLANT, a, vec![wire_event(PLANT, a + 1, WireBody::Json("{}".into()))]).encode();
    padded.resize(MAX_BODY, 0);
    check(PLANT, padded.clone()).unwrap();
    padded.push(0);
    check(PLANT, padded).unwrap();
    assert_eq!(acknowledged(), a, "neither was stored");

    // Refused before decoding: another content type, no credential, another plant's path.
    let body = valid_batch(PLANT, acknowledged(), 1).encode();
    f.rt.block_on(async {
        let (status, code, _) = post(f, PLANT, body.clone(), "application/json").await;
        assert_eq!((status, code.as_deref()), (415, Some("unsupported_content_type")));
        let response = f
            .http
            .post(format!("{}/v1/ingest/plants/{PLANT}/events", f.url))
            .header("content-type", CONTENT_TYPE)
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 401);
        let response = f
            .http
            .post(format!("{}/v1/ingest/plants/{}/events", f.url, PLANT + 1))
            .bearer_auth(&f.tokens[PLANT as usize - 1])
            .header("content-type", CONTENT_TYPE)
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 403);
        for path in ["0", "65536", "-1", "P1", "%00", "1%FF"] {
            let response = f
                .http
                .post(format!("{}/v1/ingest/plants/{path}/events", f.url))
                .bearer_auth(&f.tokens[PLANT as usize - 1])
                .header("content-type", CONTENT_TYPE)
                .body(vec![WIRE_VERSION])
                .send()
                .await
                .unwrap();
            let status = response.status().as_u16();
            assert!((400..500).contains(&status), "plant {path:?}: {status}");
        }
    });
}

// ---------------------------------------------------------------------------------------
// What the fuzzers found, kept as regressions.

/// A batch whose event repeats a stream's version that another event of the plant holds
/// was answered 409 "gap" ("another batch was stored meanwhile"): a forwarder told so
/// resumes from the acknowledged position and sends the same batch again, for ever. It is
/// refused as malformed, with the reason, and nothing of it is stored.
#[test]
fn a_stream_version_stored_already_is_refused_as_malformed_not_answered_as_a_race() {
    const PLANT: u16 = 4;
    let f = fixture();
    let note = |position: i64| {
        let mut e = wire_event(PLANT, position, WireBody::Json("{}".into()));
        e.stream = format!("anomaly-P{PLANT}.same");
        e.version = 7;
        e
    };
    check(PLANT, WireBatch::new(PLANT, 0, vec![note(1)]).encode()).unwrap();
    // In a later batch, and twice in one batch.
    for batch in [vec![note(2)], vec![wire_event(PLANT, 2, WireBody::Json("{}".into())), note(3), note(4)]] {
        let before = f.rt.block_on(held(&f.db, PLANT));
        let (status, code, answer) =
            f.rt.block_on(post(f, PLANT, WireBatch::new(PLANT, before.0, batch).encode(), CONTENT_TYPE));
        assert_eq!((status, code.as_deref()), (400, Some("malformed_batch")), "{answer}");
        assert!(answer.to_string().contains("stream version"), "{answer}");
        assert_eq!(f.rt.block_on(held(&f.db, PLANT)), before, "nothing of it stored");
    }
}

/// A body with bytes after its batch was decoded and stored, the bytes ignored: a body
/// framed or cut wrongly must be refused, not half read.
#[test]
fn bytes_after_the_batch_are_refused() {
    const PLANT: u16 = 5;
    let f = fixture();
    let mut body = valid_batch(PLANT, 0, 2).encode();
    body.extend_from_slice(&[0, 1, 2]);
    let before = f.rt.block_on(held(&f.db, PLANT));
    let (status, code, answer) = f.rt.block_on(post(f, PLANT, body, CONTENT_TYPE));
    assert_eq!((status, code.as_deref()), (400, Some("malformed_batch")), "{answer}");
    assert_eq!(f.rt.block_on(held(&f.db, PLANT)), before);
}

/// A batch whose recorded time lay before the earliest instant PostgreSQL holds passed the
/// decoder and was refused by the database ("timestamp out of range"). The decoder refuses
/// it now, saying why; the earliest storable instant itself is stored.
#[test]
fn a_time_before_the_earliest_the_log_can_store_is_refused_by_the_decoder() {
    const PLANT: u16 = 6;
    let f = fixture();
    for (recorded_at_ms, stored) in [
        (forwarder::wire::EARLIEST_STORABLE_MS - 1, false),
        (i64::MIN, false),
        (forwarder::wire::EARLIEST_STORABLE_MS, true),
    ] {
        let before = f.rt.block_on(held(&f.db, PLANT));
        let mut e = wire_event(PLANT, before.0 + 1, WireBody::Json("{}".into()));
        e.recorded_at_ms = recorded_at_ms;
        let body = WireBatch::new(PLANT, before.0, vec![e]).encode();
        assert_eq!(WireBatch::decode(&body, PLANT).is_ok(), stored, "{recorded_at_ms}");
        check(PLANT, body).unwrap();
        assert_eq!(f.rt.block_on(held(&f.db, PLANT)).0 > before.0, stored, "{recorded_at_ms}");
    }
}
