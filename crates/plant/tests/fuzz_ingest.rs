//! Hostile input for the plant's ingest decoders, generated and fed to the real decoding
//! functions: JSON and binary upload bodies (through `check_json`, and `telemetry::decode`
//! then the validator, as the upload route does), the machine telemetry message (its
//! parser and its check), and the machine-event and production bodies through the ingest
//! routes themselves. Whatever arrives — invalid UTF-8, NUL, huge strings, numbers past
//! every range, non-finite values, counts at and past the limits — decoding answers with
//! a typed refusal or with readings every one of which is valid (a known sensor of the
//! sending gateway's line, a finite plausible value, a time inside the accepted window),
//! each reading accounted for once; it never panics and never answers 500.
//!
//! `PROPTEST_CASES=100000 cargo test -p plant --test fuzz_ingest` runs them longer.
#![allow(clippy::unwrap_used)]

use std::sync::{Arc, OnceLock};

use layout::{Layout, Scale};
use plant::GatewayTokens;
use plant::ingest::{
    BodyError, Checked, IngestConfig, IngestState, IngestStats, MAX_REPORTS, Validator, Writer, WriterConfig,
    check_json, parse_machine_message, router,
};
use proptest::prelude::*;
use telemetry::{MAX_READINGS, Reading};

/// The plant's clock in these tests (2027-01-15).
const NOW: i64 = 1_800_000_000_000;
const SKEW_MS: i64 = 5_000;
const RETENTION_MS: i64 = 7 * 86_400_000;

fn layout() -> &'static Layout {
    static LAYOUT: OnceLock<Layout> = OnceLock::new();
    LAYOUT.get_or_init(|| {
        let scale = Scale { plants: Some(2), lines_per_plant: None, sensors_per_plant: Some(300) };
        Layout::from_toml(layout::DEFAULT_LAYOUT_TOML, &scale).unwrap()
    })
}

/// Plant 1's first line: its gateway sends in these tests.
fn line() -> usize {
    layout().plant_by_number(1).unwrap().lines.start
}

fn validator() -> Validator<'static> {
    Validator { layout: layout(), line: line(), now_ms: NOW, skew_ms: SKEW_MS, retention_ms: RETENTION_MS }
}

/// The numeric ids of the sending line's sensors, the ids just outside them, and one of
/// the next line's.
fn line_sensor() -> impl Strategy<Value = u32> {
    let ids = layout().lines()[line()].sensor_ids.clone();
    let other = layout().lines()[line() + 1].sensor_ids.start;
    prop_oneof![8 => ids.clone(), 1 => Just(ids.start.saturating_sub(1)), 1 => Just(ids.end), 1 => Just(other)]
}

/// Every valid reading is one a working sensor of the sending line sent inside the
/// window; every reading of the upload is accounted for once.
fn sound(checked: &Checked, count: usize) -> Result<(), TestCaseError> {
    prop_assert_eq!(checked.valid.len() + checked.rejected.len(), count);
    let (from, to) = validator().window();
    for r in &checked.valid {
        prop_assert!(r.value.is_finite(), "a non-finite value was accepted: {:?}", r);
        prop_assert!((from..=to).contains(&r.ts_ms), "a reading outside the window was accepted: {:?}", r);
        let info = layout().sensor(r.sensor);
        prop_assert!(info.is_some_and(|i| i.sensor.line == line()), "a foreign sensor was accepted: {:?}", r);
    }
    for rej in &checked.rejected {
        prop_assert!((0..count as i64).contains(&rej.index));
        prop_assert!(!rej.reason.is_empty());
        // What is kept of how the gateway named a sensor is bounded, whatever it sent.
        prop_assert!(rej.sensor.as_ref().is_none_or(|s| s.chars().count() <= 100));
    }
    Ok(())
}

/// Text a gateway or an attacker may put in a string: NUL, control and non-Latin
/// characters, sensor ids, and long runs.
fn hostile_text() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => "\\PC{0,40}",
        1 => Just("\0".to_owned()),
        1 => Just("P1-L01-M001-TEMP1\0".to_owned()),
        1 => Just("P1-L01-M001-TEMP1".to_owned()),
        1 => "[\\x00-\\x1f\"\\\\]{1,20}",
        1 => (1usize..200_000).prop_map(|n| "x".repeat(n)),
        1 => Just("😀".repeat(5_000)),
    ]
}

/// A JSON string literal of `s`.
fn json_string(s: &str) -> String {
    serde_json::to_string(s).unwrap()
}

/// JSON number literals, some past every float or integer range.
fn json_number() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => (-1e4f64..1e4).prop_map(|v| v.to_string()),
        1 => Just("1e300".to_owned()),
        1 => Just("-1e300".to_owned()),
        1 => Just("1e999".to_owned()),
        1 => Just("-1e999".to_owned()),
        1 => Just("5e-324".to_owned()),
        1 => Just("-0".to_owned()),
        1 => Just("18446744073709551616".to_owned()),
        1 => Just("99999999999999999999999999999999999999".to_owned()),
        1 => any::<i64>().prop_map(|v| v.to_string()),
        1 => any::<u64>().prop_map(|v| v.to_string()),
    ]
}

fn json_sensor() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        4 => line_sensor().prop_map(|s| Some(s.to_string())),
        1 => any::<u32>().prop_map(|s| Some(s.to_string())),
        1 => json_number().prop_map(Some),
        1 => line_sensor().prop_map(|s| Some(json_string(&layout().sensor(s).map_or(format!("#{s}"), |i| i.name().to_owned())))),
        1 => hostile_text().prop_map(|t| Some(json_string(&t))),
        1 => Just(Some("null".to_owned())),
        1 => Just(Some("[1,2]".to_owned())),
        1 => Just(None),
    ]
}

fn json_ts() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        4 => (NOW - RETENTION_MS - 1_000..NOW + SKEW_MS + 1_000).prop_map(|t| Some(t.to_string())),
        1 => json_number().prop_map(Some),
        1 => (NOW - 3_600_000..NOW).prop_map(|t| {
            Some(json_string(&chrono::DateTime::from_timestamp_millis(t).unwrap().to_rfc3339()))
        }),
        1 => Just(Some(json_string("9999-12-31T23:59:59Z"))),
        1 => Just(Some(json_string("2026-13-45T25:61:61Z"))),
        1 => hostile_text().prop_map(|t| Some(json_string(&t))),
        1 => Just(Some("1.5".to_owned())),
        1 => Just(None),
    ]
}

fn json_value() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        4 => (-50f64..150.0).prop_map(|v| Some(v.to_string())),
        2 => json_number().prop_map(Some),
        1 => Just(Some("NaN".to_owned())),
        1 => Just(Some("Infinity".to_owned())),
        1 => Just(Some(json_string("NaN"))),
        1 => Just(Some("null".to_owned())),
        1 => Just(Some("true".to_owned())),
        1 => Just(None),
    ]
}

/// One JSON reading: an object with any of its fields, or not an object at all.
fn json_reading() -> impl Strategy<Value = String> {
    prop_oneof![
        8 => (json_sensor(), json_ts(), json_value(), prop::option::of(hostile_text())).prop_map(|(s, t, v, extra)| {
            let mut fields = Vec::new();
            if let Some(s) = s { fields.push(format!("\"sensor\":{s}")); }
            if let Some(t) = t { fields.push(format!("\"ts\":{t}")); }
            if let Some(v) = v { fields.push(format!("\"value\":{v}")); }
            if let Some(x) = extra { fields.push(format!("{}:1", json_string(&x))); }
            format!("{{{}}}", fields.join(","))
        }),
        1 => Just("null".to_owned()),
        1 => Just("[]".to_owned()),
        1 => json_number(),
    ]
}

/// Values a sensor, a faulty gateway or an attacker may send in a binary batch.
fn binary_value() -> impl Strategy<Value = f64> {
    prop_oneof![
        4 => -50f64..150.0,
        1 => Just(f64::NAN),
        1 => Just(f64::INFINITY),
        1 => Just(f64::NEG_INFINITY),
        1 => Just(1e300),
        1 => Just(-1e300),
        1 => any::<u64>().prop_map(f64::from_bits),
    ]
}

fn binary_reading() -> impl Strategy<Value = Reading> {
    (
        prop_oneof![4 => line_sensor(), 1 => any::<u32>()],
        prop_oneof![4 => NOW - RETENTION_MS - 1_000..NOW + SKEW_MS + 1_000, 1 => -(1i64 << 61)..(1i64 << 61)],
        binary_value(),
    )
        .prop_map(|(s, t, v)| Reading::new(s, t, v))
}

proptest! {
    #[test]
    fn any_bytes_as_a_json_upload_are_refused_or_checked_never_a_panic(
        bytes in prop::collection::vec(any::<u8>(), 0..4096),
    ) {
        if let Ok(checked) = check_json(&bytes, &validator()) {
            let n = checked.valid.len() + checked.rejected.len();
            prop_assert!((1..=MAX_READINGS).contains(&n));
            sound(&checked, n)?;
        }
    }

    #[test]
    fn hostile_json_readings_are_each_accepted_only_when_valid(
        readings in prop::collection::vec(json_reading(), 0..40),
        damage in prop::option::of((any::<prop::sample::Index>(), any::<u8>())),
    ) {
        let mut body = format!("{{\"readings\":[{}]}}", readings.join(",")).into_bytes();
        if let Some((at, b)) = damage {
            // One byte changed (invalid UTF-8, a NUL, a broken token) anywhere.
            let i = at.index(body.len());
            body[i] = b;
        }
        match check_json(&body, &validator()) {
            Ok(checked) => {
                let n = checked.valid.len() + checked.rejected.len();
                if damage.is_none() {
                    prop_assert_eq!(n, readings.len());
                }
                sound(&checked, n)?;
            }
            Err(BodyError::Count(n)) => prop_assert!(n == 0 || n > MAX_READINGS),
            Err(_) => {}
        }
    }

    #[test]
    fn any_bytes_as_a_binary_upload_are_refused_or_checked_never_a_panic(
        bytes in prop::collection::vec(any::<u8>(), 0..4096),
    ) {
        if let Ok(readings) = telemetry::decode(&bytes) {
            let n = readings.len();
            sound(&validator().check_all(readings), n)?;
        }
    }

    #[test]
    fn hostile_binary_readings_are_each_accepted_only_when_valid(
        readings in prop::collection::vec(binary_reading(), 1..300),
    ) {
        let bytes = telemetry::encode(&readings).unwrap();
        let decoded = telemetry::decode(&bytes).unwrap();
        let checked = validator().check_all(decoded);
        sound(&checked, readings.len())?;
        // NaN, ±inf and values no sensor can read never reach the log.
        let bad = readings.iter().filter(|r| !r.value.is_finite() || r.value.abs() >= 1e300).count();
        prop_assert!(checked.rejected.len() >= bad);
    }

    #[test]
    fn hostile_machine_messages_are_refused_or_mapped_onto_their_machine(
        factory in prop_oneof![4 => Just("1".to_owned()), 1 => Just("2".to_owned()), 1 => json_number(), 1 => hostile_text().prop_map(|t| json_string(&t))],
        machine in prop_oneof![4 => (1u32..40).prop_map(|m| m.to_string()), 1 => json_number(), 1 => hostile_text().prop_map(|t| json_string(&t))],
        at_top in any::<bool>(),
        values in prop::collection::vec(prop::option::of(prop_oneof![3 => (-50f64..150.0).prop_map(|v| v.to_string()), 1 => json_number()]), 5),
        time in prop_oneof![
            4 => (NOW - 3_600_000..NOW).prop_map(|t| json_string(&chrono::DateTime::from_timestamp_millis(t).unwrap().to_rfc3339())),
            1 => hostile_text().prop_map(|t| json_string(&t)),
            1 => Just(json_string("9999-12-31T23:59:59.999999999+23:59")),
            1 => json_number(),
        ],
        damage in prop::option::of((any::<prop::sample::Index>(), any::<u8>())),
    ) {
        let field = |name: &str, v: &Option<String>| v.as_ref().map(|v| format!(",\"{name}\":{v}")).unwrap_or_default();
        let (top, inner) = if at_top { (format!(",\"machineId\":{machine}"), String::new()) } else { (String::new(), format!("\"machineId\":{machine},")) };
        let mut body = format!(
            "{{\"factoryId\":{factory}{top},\"machine\":{{{inner}\"x\":0{}{}{}}},\"ambient\":{{\"y\":0{}{}}},\"timeCreated\":{time}}}",
            field("temperature", &values[0]),
            field("pressure", &values[1]),
            field("electricityUtilization", &values[2]),
            field("temperature", &values[3]),
            field("humidity", &values[4]),
        )
        .into_bytes();
        if let Some((at, b)) = damage {
            let i = at.index(body.len());
            body[i] = b;
        }
        if let Ok(message) = parse_machine_message(&body, layout(), 1) {
            let plant = layout().plant_by_number(1).unwrap();
            prop_assert!(plant.lines.contains(&message.line), "a message mapped onto another plant's line");
            let machine = layout().machine_by_id(&message.machine_id).unwrap();
            prop_assert_eq!(machine.line, message.line);
            prop_assert!(message.key().len() < 200);
            let v = Validator { line: message.line, ..validator() };
            let checked = message.check(layout(), &v);
            prop_assert_eq!(checked.valid.len() + checked.rejected.len(), message.values.len());
            let (from, to) = v.window();
            for r in &checked.valid {
                prop_assert!(r.value.is_finite() && (from..=to).contains(&r.ts_ms));
                prop_assert_eq!(layout().sensor(r.sensor).map(|s| s.sensor.line), Some(message.line));
            }
        }
    }

    #[test]
    fn any_bytes_as_a_machine_message_are_refused_never_a_panic(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        let _ = parse_machine_message(&bytes, layout(), 1);
    }
}

#[test]
fn json_uploads_at_and_past_the_reading_limit() {
    let reading = format!("{{\"sensor\":{},\"ts\":{NOW},\"value\":1}}", first_line_sensor());
    let body = |n: usize| format!("{{\"readings\":[{}]}}", vec![reading.as_str(); n].join(","));
    let at_limit = check_json(body(MAX_READINGS).as_bytes(), &validator()).unwrap();
    assert_eq!(at_limit.valid.len() + at_limit.rejected.len(), MAX_READINGS);
    assert_eq!(check_json(body(MAX_READINGS + 1).as_bytes(), &validator()), Err(BodyError::Count(MAX_READINGS + 1)));
    assert_eq!(check_json(body(0).as_bytes(), &validator()), Err(BodyError::Count(0)));
    assert_eq!(check_json(b"{\"readings\":{}}", &validator()), Err(BodyError::Shape));
}

fn first_line_sensor() -> u32 {
    layout().lines()[line()].sensor_ids.start
}

/// The ingest routes of plant 1, on a log that cannot be reached: a body that decodes and
/// passes every check then asks for a retry (503); everything else is refused (4xx).
struct Routes {
    runtime: tokio::runtime::Runtime,
    base: String,
    gateway: String,
    token: String,
    http: reqwest::Client,
}

fn routes() -> &'static Routes {
    static ROUTES: OnceLock<Routes> = OnceLock::new();
    ROUTES.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        let layout = Arc::new(layout().clone());
        let tokens = GatewayTokens::issue(&layout, 1, &GatewayTokens::default()).unwrap();
        let gateway = layout.lines()[line()].id.clone();
        let token = tokens.get(&gateway).unwrap().to_owned();
        let base = runtime.block_on(async {
            // Port 1 on loopback: nothing listens, every connection is refused at once.
            let db = eventlog::Database::new("postgresql://floorwatch@127.0.0.1:1/unreachable", 2).unwrap();
            let (writer, _loop) = Writer::new(db.clone(), WriterConfig::default());
            let state = IngestState {
                db,
                layout,
                plant_number: 1,
                tokens: Arc::new(tokens),
                writer,
                config: IngestConfig::default(),
                clock: Arc::new(|| NOW),
                stats: Arc::new(IngestStats::default()),
            };
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let base = format!("http://{}", listener.local_addr().unwrap());
            tokio::spawn(async move { axum::serve(listener, router(state)).await });
            base
        });
        // A fresh connection per request: one a refusal closed is never reused.
        let http = reqwest::Client::builder().pool_max_idle_per_host(0).build().unwrap();
        Routes { runtime, base, gateway, token, http }
    })
}

/// The answer's status; `None` when the connection broke first, which a server may do
/// to a body over its limit that it refuses before reading it all.
fn post(path: &str, body: Vec<u8>) -> Option<u16> {
    let r = routes();
    r.runtime.block_on(async {
        let answer =
            r.http.post(format!("{}{path}", r.base)).bearer_auth(&r.token).header("content-type", "application/json");
        answer.body(body).send().await.ok().map(|a| a.status().as_u16())
    })
}

/// The most a machine event may be (the route's own limit).
const MACHINE_EVENT_BYTES: usize = 64 * 1024;

fn machine_on_line() -> impl Strategy<Value = String> {
    let machines: Vec<String> = layout().machines().iter().filter(|m| m.line == line()).map(|m| m.id.clone()).collect();
    prop::sample::select(machines)
}

fn rfc3339(t: i64) -> String {
    chrono::DateTime::from_timestamp_millis(t).unwrap().to_rfc3339()
}

proptest! {
    #[test]
    fn hostile_machine_events_are_refused_and_only_valid_ones_reach_the_log(
        event_id in prop_oneof![3 => "[!-~]{1,100}", 1 => hostile_text(), 1 => Just(String::new()), 1 => "[!-~]{101,120}"],
        machine in prop_oneof![3 => machine_on_line(), 1 => hostile_text(), 1 => Just("P2-L01-M001".to_owned())],
        kind in prop_oneof![3 => Just("failed".to_owned()), 1 => hostile_text()],
        at in prop_oneof![
            3 => (NOW - 3_600_000..NOW).prop_map(|t| json_string(&rfc3339(t))),
            1 => (NOW + SKEW_MS + 1..NOW + 86_400_000).prop_map(|t| json_string(&rfc3339(t))),
            1 => hostile_text().prop_map(|t| json_string(&t)),
            1 => json_number(),
        ],
        extra in prop::option::of(hostile_text()),
        damage in prop::option::of((any::<prop::sample::Index>(), any::<u8>())),
    ) {
        let extra = extra.map(|x| format!(",{}:1", json_string(&x))).unwrap_or_default();
        let mut body = format!(
            "{{\"event_id\":{},\"machine_id\":{},\"kind\":{},\"at\":{at}{extra}}}",
            json_string(&event_id), json_string(&machine), json_string(&kind)
        ).into_bytes();
        if let Some((i, b)) = damage {
            let i = i.index(body.len());
            body[i] = b;
        }
        let status = post(&format!("/v1/gateways/{}/machine-events", routes().gateway), body.clone());
        prop_assert!(status.is_some() || body.len() > MACHINE_EVENT_BYTES, "the connection broke on a small body");
        let status = status.unwrap_or(413);
        prop_assert!(matches!(status, 400 | 413 | 503), "status {}", status);
        if status == 503 {
            // It reached the log: every field was valid.
            let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
            let id = v["event_id"].as_str().unwrap();
            prop_assert!((1..=100).contains(&id.len()) && id.chars().all(|c| c.is_ascii_graphic()));
            prop_assert_eq!(v["kind"].as_str(), Some("failed"));
            let machine = layout().machine_by_id(v["machine_id"].as_str().unwrap()).unwrap();
            prop_assert_eq!(machine.line, line());
        }
    }

    #[test]
    fn hostile_production_reports_are_refused_and_only_valid_ones_reach_the_log(
        reports in prop::collection::vec(
            (
                prop_oneof![3 => machine_on_line(), 1 => hostile_text()],
                prop_oneof![3 => (NOW - 7_200_000..NOW - 3_600_000).prop_map(|t| json_string(&rfc3339(t))), 1 => hostile_text().prop_map(|t| json_string(&t)), 1 => json_number()],
                prop_oneof![3 => (NOW - 3_600_000..NOW).prop_map(|t| json_string(&rfc3339(t))), 1 => (NOW + 60_000..NOW + 86_400_000).prop_map(|t| json_string(&rfc3339(t)))],
                prop::collection::vec(prop_oneof![3 => (0f64..3600.0).prop_map(|v| v.to_string()), 1 => json_number(), 1 => Just("-1".to_owned())], 3),
                prop::collection::vec(prop_oneof![3 => (0u64..10_000).prop_map(|v| v.to_string()), 1 => json_number()], 2),
            ),
            0..6,
        ),
        damage in prop::option::of((any::<prop::sample::Index>(), any::<u8>())),
    ) {
        let items: Vec<String> = reports.iter().map(|(m, from, to, secs, counts)| format!(
            "{{\"machine_id\":{},\"from\":{from},\"to\":{to},\"planned_s\":{},\"running_s\":{},\"ideal_cycle_s\":{},\"parts\":{},\"rejects\":{}}}",
            json_string(m), secs[0], secs[1], secs[2], counts[0], counts[1]
        )).collect();
        let mut body = format!("{{\"reports\":[{}]}}", items.join(",")).into_bytes();
        if let Some((i, b)) = damage {
            let i = i.index(body.len());
            body[i] = b;
        }
        let status = post(&format!("/v1/gateways/{}/production", routes().gateway), body);
        prop_assert!(matches!(status, Some(400 | 413 | 503)), "status {:?}", status);
        if status == Some(503) {
            prop_assert!((1..=MAX_REPORTS).contains(&reports.len()));
        }
    }
}

#[test]
fn production_uploads_past_the_report_limit_are_refused() {
    let machine = layout().machines().iter().find(|m| m.line == line()).unwrap().id.clone();
    let report = format!(
        "{{\"machine_id\":\"{machine}\",\"from\":\"{}\",\"to\":\"{}\",\"planned_s\":60,\"running_s\":60,\"ideal_cycle_s\":1,\"parts\":1,\"rejects\":0}}",
        rfc3339(NOW - 120_000),
        rfc3339(NOW - 60_000)
    );
    let body = |n: usize| format!("{{\"reports\":[{}]}}", vec![report.as_str(); n].join(",")).into_bytes();
    let path = format!("/v1/gateways/{}/production", routes().gateway);
    assert_eq!(post(&path, body(MAX_REPORTS + 1)), Some(400));
    assert_eq!(post(&path, body(0)), Some(400));
    // A report that passes every check: only the unreachable log stops it.
    assert_eq!(post(&path, body(1)), Some(503));
}

#[test]
fn a_valid_machine_event_passes_every_check_and_reaches_for_the_log() {
    let machine = layout().machines().iter().find(|m| m.line == line()).unwrap().id.clone();
    let body = format!(
        "{{\"event_id\":\"e-1\",\"machine_id\":\"{machine}\",\"kind\":\"failed\",\"at\":\"{}\"}}",
        rfc3339(NOW - 1_000)
    );
    let path = format!("/v1/gateways/{}/machine-events", routes().gateway);
    // Only the unreachable log stops it: a retry later, not a refusal.
    assert_eq!(post(&path, body.into_bytes()), Some(503));
}
