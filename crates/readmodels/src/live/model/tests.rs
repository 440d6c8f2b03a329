//! The live fold without a database: events in, the rows that changed out, one `check`
//! per behaviour. Each batch's changes are written as text under its number; run with
//! `UPDATE_EXPECT=1` to rewrite the expectations after a deliberate change, and read the
//! diff.

use std::fmt::Write;

use chrono::{DateTime, Duration, TimeZone, Utc};
use domain::events::*;
use eventlog::{Metadata, Payload, READINGS_RECORDED, RecordedEvent, StreamName};
use expect_test::{Expect, expect};
use serde_json::json;
use telemetry::Reading;

use super::*;

/// Two lines with one pump each; every pump has two temperature sensors, normal 20–50 °C.
/// Sensor ids: P1-L01-M001 has 1000000 and 1000001, P1-L02-M001 has 1000002 and 1000003.
const LAYOUT: &str = r#"
lines_per_plant = 2

[[plant]]
number = 1
name = "Test"

[[line_machines]]
machine_type = "pump"
count = 1

[[machine_type]]
name = "pump"
life_days = 30

[[machine_type.sensor]]
kind = "TEMP"
count = 2
unit = "°C"
normal_min = 20.0
normal_max = 50.0
nominal = 35.0
noise_sd = 0.1
"#;

const SENSORS: [u32; 4] = [1_000_000, 1_000_001, 1_000_002, 1_000_003];
const M1: &str = "P1-L01-M001";
const M2: &str = "P1-L02-M001";

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).single().expect("a valid time")
}

fn at(second: i64) -> DateTime<Utc> {
    t0() + Duration::seconds(second)
}

/// The log under test, cut into the batches a projection would apply.
#[derive(Default)]
struct Log {
    batches: Vec<Vec<RecordedEvent>>,
    position: i64,
}

impl Log {
    fn new() -> Log {
        let mut log = Log::default();
        log.batch();
        let layout = LayoutConfigured {
            plant: 1,
            layout_toml: LAYOUT.into(),
            plants: None,
            lines_per_plant: None,
            sensors_per_plant: None,
            stale_after_ms: 10_000,
        };
        log.json("plant-P1", LAYOUT_CONFIGURED, json!(layout), None);
        log
    }

    /// Events from here on are applied as the next batch.
    fn batch(&mut self) -> &mut Log {
        self.batches.push(Vec::new());
        self
    }

    fn push(&mut self, stream: &str, event_type: &str, payload: Payload, actor: Option<&str>) -> &mut Log {
        self.position += 1;
        let event = RecordedEvent {
            position: self.position,
            stream: StreamName::new(stream).expect("a valid stream name"),
            version: 1,
            event_type: event_type.into(),
            schema_version: 1,
            payload,
            metadata: Metadata { actor: actor.map(str::to_owned), ..Metadata::default() },
            idempotency_key: None,
            recorded_at: at(self.position),
            origin: None,
        };
        self.batches.last_mut().expect("a batch is open").push(event);
        self
    }

    fn json(&mut self, stream: &str, event_type: &str, body: serde_json::Value, actor: Option<&str>) -> &mut Log {
        self.push(stream, event_type, Payload::Json(body), actor)
    }

    /// One gateway upload: `(sensor, value)` read at `second`.
    fn readings(&mut self, second: i64, values: &[(u32, f64)]) -> &mut Log {
        let ts = at(second).timestamp_millis();
        let readings: Vec<Reading> = values.iter().map(|(s, v)| Reading::new(*s, ts, *v)).collect();
        let bytes = telemetry::encode(&readings).expect("readings encode");
        self.push("readings-P1-L01", READINGS_RECORDED, Payload::Telemetry { bytes, occurred_at: at(second) }, None)
    }

    /// Every sensor at 35 °C (inside its range) at `second`.
    fn all_ok(&mut self, second: i64) -> &mut Log {
        self.readings(second, &SENSORS.map(|s| (s, 35.0)))
    }

    fn detected(&mut self, id: &str, sensor: u32, severity: Severity, second: i64) -> &mut Log {
        let machine = if sensor < SENSORS[2] { M1 } else { M2 };
        let body = AnomalyDetected {
            anomaly_id: id.into(),
            machine_id: machine.into(),
            line_id: machine[..6].into(),
            started_at: at(second),
            severity,
            score: 0.9,
            sensors: vec![SensorEvidence {
                sensor,
                name: format!("{machine}-TEMP"),
                kind: "TEMP".into(),
                unit: "°C".into(),
                at: at(second),
                observed: 90.0,
                expected: 35.0,
                lower: 30.0,
                upper: 40.0,
                test: "level_shift".into(),
                score: 0.9,
                related: false,
            }],
            explanation: "TEMP high".into(),
            detector_version: "test".into(),
        };
        self.json(&format!("anomaly-{id}"), ANOMALY_DETECTED, json!(body), Some("monitor"))
    }

    fn acknowledged(&mut self, id: &str, note: &str) -> &mut Log {
        let body = AnomalyAcknowledged { anomaly_id: id.into(), by: "ana".into(), note: note.into(), at: at(50) };
        self.json(&format!("anomaly-{id}"), ANOMALY_ACKNOWLEDGED, json!(body), Some("ana"))
    }

    fn shelved(&mut self, id: &str) -> &mut Log {
        let body = AnomalyShelved {
            anomaly_id: id.into(),
            by: "ana".into(),
            until: at(3600),
            note: String::new(),
            at: at(60),
        };
        self.json(&format!("anomaly-{id}"), ANOMALY_SHELVED, json!(body), Some("ana"))
    }

    fn resolved(&mut self, id: &str) -> &mut Log {
        let body = AnomalyResolved { anomaly_id: id.into(), at: at(70) };
        self.json(&format!("anomaly-{id}"), ANOMALY_RESOLVED, json!(body), Some("monitor"))
    }

    fn predicted(&mut self, machine: &str, days: f64, lower_days: f64, upper_days: f64) -> &mut Log {
        self.predicted_saying(machine, days, lower_days, upper_days, None)
    }

    /// A prediction that says whether its machine is due (the model's own rule).
    fn predicted_saying(
        &mut self,
        machine: &str,
        days: f64,
        lower_days: f64,
        upper_days: f64,
        due: Option<bool>,
    ) -> &mut Log {
        let body = MaintenancePredicted {
            machine_id: machine.into(),
            at: at(100),
            days,
            lower_days,
            upper_days,
            model_version: "m1".into(),
            failure_probability: due.map(|d| if d { 0.6 } else { 0.02 }),
            due,
        };
        self.json(&format!("prediction-{machine}"), MAINTENANCE_PREDICTED, json!(body), Some("scorer"))
    }

    fn scheduled(&mut self, machine: &str, order_id: &str) -> &mut Log {
        let body = MaintenanceScheduled {
            order_id: order_id.into(),
            machine_id: machine.into(),
            kind: OrderKind::Emergency,
            scheduled_for: at(7200),
            by: "maria".into(),
            note: "noisy bearing".into(),
            at: at(110),
        };
        self.json(&format!("maintenance-{machine}"), MAINTENANCE_SCHEDULED, json!(body), Some("maria"))
    }

    fn performed(&mut self, machine: &str, order_id: &str) -> &mut Log {
        let body = MaintenancePerformed {
            order_id: order_id.into(),
            machine_id: machine.into(),
            performed_at: at(7300),
            by: "tom".into(),
            note: "bearing replaced".into(),
            at: at(7300),
        };
        self.json(&format!("maintenance-{machine}"), MAINTENANCE_PERFORMED, json!(body), Some("tom"))
    }
}

/// Folds the log batch by batch and writes what each batch changed.
fn fold(log: &Log) -> (LiveModel, String) {
    let mut model = LiveModel::new(1);
    let mut out = String::new();
    for (n, batch) in log.batches.iter().enumerate() {
        for e in batch {
            model.apply(e);
        }
        let changes = model.take_changes();
        let _ = writeln!(out, "-- batch {}", n + 1);
        out.push_str(&render(&model, &changes));
    }
    (model, out)
}

fn check(log: &Log, expect: Expect) {
    expect.assert_eq(&fold(log).1);
}

fn ms(t: Option<i64>) -> String {
    t.map_or("-".into(), |t| format!("{}s", (t - t0().timestamp_millis()) / 1000))
}

fn counts(r: &Rollup) -> String {
    format!(
        "sensors {} reporting {} stale {} warning {} anomalous {} open {}/{}/{} newest {}",
        r.sensors,
        r.reporting(),
        r.stale(),
        r.by_status[SensorStatus::Warning as usize],
        r.by_status[SensorStatus::Anomalous as usize],
        r.open[Severity::Critical as usize],
        r.open[Severity::Major as usize],
        r.open[Severity::Minor as usize],
        ms(r.newest_ms),
    )
}

/// The rows `changes` names, one line each, as the store would write them.
fn render(model: &LiveModel, changes: &Changes) -> String {
    let mut out = String::new();
    let Some(layout) = model.layout.as_ref() else { return out };
    if changes.reset {
        out.push_str("layout replaced\n");
    }
    for &ix in &changes.sensors {
        let s = &model.sensors[ix];
        let _ = writeln!(
            out,
            "sensor {} {} {} at {} p{}",
            layout.first_sensor_id + ix as u32,
            s.value,
            s.status.as_str(),
            ms(Some(s.ts_ms)),
            s.position
        );
    }
    for &m in &changes.machines {
        let agg = &model.machines[m];
        let due = agg.due_in_days.map_or("-".into(), |d| d.to_string());
        let _ = writeln!(
            out,
            "machine {} {} {} due_in {due} due {} p{}",
            layout.machine(m).id,
            agg.status().as_str(),
            counts(&agg.rollup),
            agg.is_due(),
            agg.rollup.position
        );
    }
    let watermark_s = model.watermark_ms.div_euclid(1000);
    let area = |out: &mut String, name: &str, a: &AreaAgg| {
        let _ = writeln!(
            out,
            "{name} {} due {} rate {} p{}",
            counts(&a.rollup),
            a.machines_due_7d,
            a.readings_per_s(watermark_s),
            a.rollup.position
        );
    };
    for &l in &changes.lines {
        area(&mut out, &format!("line {}", layout.line(l).id), &model.lines[l]);
    }
    if changes.plant {
        area(&mut out, &format!("plant {}", layout.plant().id), &model.plant);
    }
    for id in &changes.anomalies {
        let a = &model.anomalies[id];
        let notes: Vec<&str> = a.notes.iter().filter_map(|n| n["text"].as_str()).collect();
        let _ = writeln!(
            out,
            "anomaly {id} {} {} on {} sensors {:?} notes {notes:?} p{}",
            a.state.as_str(),
            a.severity.as_str(),
            a.machine_id,
            a.sensor_ids,
            a.position
        );
    }
    for machine in &changes.maintenance {
        let r = &model.maintenance[machine];
        let _ = writeln!(
            out,
            "maintenance {machine} days {:?} lower {:?} open order {:?} last service {:?} p{}",
            r.predicted_days,
            r.lower_days,
            r.open_order_id,
            r.last_performed_at.map(|t| ms(Some(t.timestamp_millis()))),
            r.position
        );
    }
    for p in &changes.predictions {
        let _ =
            writeln!(out, "prediction {} {} ({}–{}) p{}", p.machine_id, p.days, p.lower_days, p.upper_days, p.position);
    }
    for o in changes.orders.values() {
        let _ = writeln!(
            out,
            "order {} {} {} scheduled by {:?} performed by {:?}: {:?} p{}",
            o.order_id,
            o.kind,
            o.state.as_str(),
            o.scheduled_by,
            o.performed_by,
            o.performed_note,
            o.position
        );
    }
    for a in &changes.audit {
        let _ = writeln!(out, "audit p{} {} {:?} {:?}: {}", a.position, a.event_type, a.machine_id, a.actor, a.summary);
    }
    for (position, reason) in &changes.unreadable {
        let _ = writeln!(out, "unreadable p{position}: {reason}");
    }
    for (position, reason) in &changes.salvaged {
        let _ = writeln!(out, "salvaged p{position}: {reason}");
    }
    out
}

#[test]
fn a_layout_and_one_upload_give_every_sensor_machine_line_and_the_plant_a_row() {
    let mut log = Log::new();
    log.batch().all_ok(0);
    check(
        &log,
        expect![[r#"
            -- batch 1
            layout replaced
            machine P1-L01-M001 stale sensors 2 reporting 0 stale 2 warning 0 anomalous 0 open 0/0/0 newest - due_in - due false p1
            machine P1-L02-M001 stale sensors 2 reporting 0 stale 2 warning 0 anomalous 0 open 0/0/0 newest - due_in - due false p1
            line P1-L01 sensors 2 reporting 0 stale 2 warning 0 anomalous 0 open 0/0/0 newest - due 0 rate 0 p1
            line P1-L02 sensors 2 reporting 0 stale 2 warning 0 anomalous 0 open 0/0/0 newest - due 0 rate 0 p1
            plant P1 sensors 4 reporting 0 stale 4 warning 0 anomalous 0 open 0/0/0 newest - due 0 rate 0 p1
            audit p1 LayoutConfigured None None: plant layout configured
            -- batch 2
            sensor 1000000 35 ok at 0s p2
            sensor 1000001 35 ok at 0s p2
            sensor 1000002 35 ok at 0s p2
            sensor 1000003 35 ok at 0s p2
            machine P1-L01-M001 ok sensors 2 reporting 2 stale 0 warning 0 anomalous 0 open 0/0/0 newest 0s due_in - due false p2
            machine P1-L02-M001 ok sensors 2 reporting 2 stale 0 warning 0 anomalous 0 open 0/0/0 newest 0s due_in - due false p2
            line P1-L01 sensors 2 reporting 2 stale 0 warning 0 anomalous 0 open 0/0/0 newest 0s due 0 rate 2 p2
            line P1-L02 sensors 2 reporting 2 stale 0 warning 0 anomalous 0 open 0/0/0 newest 0s due 0 rate 2 p2
            plant P1 sensors 4 reporting 4 stale 0 warning 0 anomalous 0 open 0/0/0 newest 0s due 0 rate 4 p2
        "#]],
    );
}

#[test]
fn a_value_outside_its_range_is_a_warning_and_a_late_reading_counts_only_towards_the_rate() {
    let mut log = Log::new();
    log.all_ok(0);
    log.batch().readings(1, &[(SENSORS[0], 80.0), (SENSORS[1], 36.0)]);
    log.batch().readings(0, &[(SENSORS[1], 99.0)]);
    check(
        &log,
        expect![[r#"
        -- batch 1
        layout replaced
        sensor 1000000 35 ok at 0s p2
        sensor 1000001 35 ok at 0s p2
        sensor 1000002 35 ok at 0s p2
        sensor 1000003 35 ok at 0s p2
        machine P1-L01-M001 ok sensors 2 reporting 2 stale 0 warning 0 anomalous 0 open 0/0/0 newest 0s due_in - due false p2
        machine P1-L02-M001 ok sensors 2 reporting 2 stale 0 warning 0 anomalous 0 open 0/0/0 newest 0s due_in - due false p2
        line P1-L01 sensors 2 reporting 2 stale 0 warning 0 anomalous 0 open 0/0/0 newest 0s due 0 rate 2 p2
        line P1-L02 sensors 2 reporting 2 stale 0 warning 0 anomalous 0 open 0/0/0 newest 0s due 0 rate 2 p2
        plant P1 sensors 4 reporting 4 stale 0 warning 0 anomalous 0 open 0/0/0 newest 0s due 0 rate 4 p2
        audit p1 LayoutConfigured None None: plant layout configured
        -- batch 2
        sensor 1000000 80 warning at 1s p3
        sensor 1000001 36 ok at 1s p3
        machine P1-L01-M001 warning sensors 2 reporting 2 stale 0 warning 1 anomalous 0 open 0/0/0 newest 1s due_in - due false p3
        line P1-L01 sensors 2 reporting 2 stale 0 warning 1 anomalous 0 open 0/0/0 newest 1s due 0 rate 2 p3
        plant P1 sensors 4 reporting 4 stale 0 warning 1 anomalous 0 open 0/0/0 newest 1s due 0 rate 3 p3
        -- batch 3
        line P1-L01 sensors 2 reporting 2 stale 0 warning 1 anomalous 0 open 0/0/0 newest 1s due 0 rate 2.5 p4
        plant P1 sensors 4 reporting 4 stale 0 warning 1 anomalous 0 open 0/0/0 newest 1s due 0 rate 3.5 p4
    "#]],
    );
}

#[test]
fn an_anomaly_lives_through_detection_acknowledgement_shelving_and_resolution() {
    let mut log = Log::new();
    log.all_ok(0);
    log.batch().detected("a1", SENSORS[0], Severity::Major, 1);
    log.batch().acknowledged("a1", "on it");
    log.batch().shelved("a1");
    log.batch().resolved("a1");
    log.batch().acknowledged("a1", "too late");
    check(
        &log,
        expect![[r#"
        -- batch 1
        layout replaced
        sensor 1000000 35 ok at 0s p2
        sensor 1000001 35 ok at 0s p2
        sensor 1000002 35 ok at 0s p2
        sensor 1000003 35 ok at 0s p2
        machine P1-L01-M001 ok sensors 2 reporting 2 stale 0 warning 0 anomalous 0 open 0/0/0 newest 0s due_in - due false p2
        machine P1-L02-M001 ok sensors 2 reporting 2 stale 0 warning 0 anomalous 0 open 0/0/0 newest 0s due_in - due false p2
        line P1-L01 sensors 2 reporting 2 stale 0 warning 0 anomalous 0 open 0/0/0 newest 0s due 0 rate 2 p2
        line P1-L02 sensors 2 reporting 2 stale 0 warning 0 anomalous 0 open 0/0/0 newest 0s due 0 rate 2 p2
        plant P1 sensors 4 reporting 4 stale 0 warning 0 anomalous 0 open 0/0/0 newest 0s due 0 rate 4 p2
        audit p1 LayoutConfigured None None: plant layout configured
        -- batch 2
        sensor 1000000 35 anomalous at 0s p3
        machine P1-L01-M001 anomaly sensors 2 reporting 2 stale 0 warning 0 anomalous 1 open 0/1/0 newest 0s due_in - due false p3
        line P1-L01 sensors 2 reporting 2 stale 0 warning 0 anomalous 1 open 0/1/0 newest 0s due 0 rate 2 p3
        plant P1 sensors 4 reporting 4 stale 0 warning 0 anomalous 1 open 0/1/0 newest 0s due 0 rate 4 p3
        anomaly a1 new major on P1-L01-M001 sensors [1000000] notes [] p3
        audit p3 AnomalyDetected Some("P1-L01-M001") Some("monitor"): major anomaly: TEMP high
        -- batch 3
        machine P1-L01-M001 anomaly sensors 2 reporting 2 stale 0 warning 0 anomalous 1 open 0/1/0 newest 0s due_in - due false p4
        line P1-L01 sensors 2 reporting 2 stale 0 warning 0 anomalous 1 open 0/1/0 newest 0s due 0 rate 2 p4
        plant P1 sensors 4 reporting 4 stale 0 warning 0 anomalous 1 open 0/1/0 newest 0s due 0 rate 4 p4
        anomaly a1 acknowledged major on P1-L01-M001 sensors [1000000] notes ["on it"] p4
        audit p4 AnomalyAcknowledged Some("P1-L01-M001") Some("ana"): acknowledged by ana: on it
        -- batch 4
        machine P1-L01-M001 warning sensors 2 reporting 2 stale 0 warning 0 anomalous 1 open 0/0/0 newest 0s due_in - due false p5
        line P1-L01 sensors 2 reporting 2 stale 0 warning 0 anomalous 1 open 0/0/0 newest 0s due 0 rate 2 p5
        plant P1 sensors 4 reporting 4 stale 0 warning 0 anomalous 1 open 0/0/0 newest 0s due 0 rate 4 p5
        anomaly a1 shelved major on P1-L01-M001 sensors [1000000] notes ["on it"] p5
        audit p5 AnomalyShelved Some("P1-L01-M001") Some("ana"): shelved by ana until 2026-03-01T13:00:00Z
        -- batch 5
        sensor 1000000 35 ok at 0s p6
        machine P1-L01-M001 ok sensors 2 reporting 2 stale 0 warning 0 anomalous 0 open 0/0/0 newest 0s due_in - due false p6
        line P1-L01 sensors 2 reporting 2 stale 0 warning 0 anomalous 0 open 0/0/0 newest 0s due 0 rate 2 p6
        plant P1 sensors 4 reporting 4 stale 0 warning 0 anomalous 0 open 0/0/0 newest 0s due 0 rate 4 p6
        anomaly a1 resolved major on P1-L01-M001 sensors [1000000] notes ["on it"] p6
        audit p6 AnomalyResolved Some("P1-L01-M001") Some("monitor"): anomaly resolved
        -- batch 6
        anomaly a1 resolved major on P1-L01-M001 sensors [1000000] notes ["on it", "too late"] p7
        audit p7 AnomalyAcknowledged Some("P1-L01-M001") Some("ana"): acknowledged by ana: too late
    "#]],
    );
}

#[test]
fn a_sensor_goes_stale_by_the_plants_clock_and_comes_back_with_a_reading() {
    let mut log = Log::new();
    log.all_ok(0);
    log.batch().readings(11, &[(SENSORS[0], 35.0), (SENSORS[2], 35.0), (SENSORS[3], 35.0)]);
    log.batch().readings(12, &[(SENSORS[1], 36.0)]);
    check(
        &log,
        expect![[r#"
        -- batch 1
        layout replaced
        sensor 1000000 35 ok at 0s p2
        sensor 1000001 35 ok at 0s p2
        sensor 1000002 35 ok at 0s p2
        sensor 1000003 35 ok at 0s p2
        machine P1-L01-M001 ok sensors 2 reporting 2 stale 0 warning 0 anomalous 0 open 0/0/0 newest 0s due_in - due false p2
        machine P1-L02-M001 ok sensors 2 reporting 2 stale 0 warning 0 anomalous 0 open 0/0/0 newest 0s due_in - due false p2
        line P1-L01 sensors 2 reporting 2 stale 0 warning 0 anomalous 0 open 0/0/0 newest 0s due 0 rate 2 p2
        line P1-L02 sensors 2 reporting 2 stale 0 warning 0 anomalous 0 open 0/0/0 newest 0s due 0 rate 2 p2
        plant P1 sensors 4 reporting 4 stale 0 warning 0 anomalous 0 open 0/0/0 newest 0s due 0 rate 4 p2
        audit p1 LayoutConfigured None None: plant layout configured
        -- batch 2
        sensor 1000000 35 ok at 11s p3
        sensor 1000002 35 ok at 11s p3
        sensor 1000003 35 ok at 11s p3
        sensor 1000001 35 stale at 0s p3
        machine P1-L01-M001 ok sensors 2 reporting 1 stale 1 warning 0 anomalous 0 open 0/0/0 newest 11s due_in - due false p3
        machine P1-L02-M001 ok sensors 2 reporting 2 stale 0 warning 0 anomalous 0 open 0/0/0 newest 11s due_in - due false p3
        line P1-L01 sensors 2 reporting 1 stale 1 warning 0 anomalous 0 open 0/0/0 newest 11s due 0 rate 0.25 p3
        line P1-L02 sensors 2 reporting 2 stale 0 warning 0 anomalous 0 open 0/0/0 newest 11s due 0 rate 0.3333333333333333 p3
        plant P1 sensors 4 reporting 3 stale 1 warning 0 anomalous 0 open 0/0/0 newest 11s due 0 rate 0.5833333333333334 p3
        -- batch 3
        sensor 1000001 36 ok at 12s p4
        machine P1-L01-M001 ok sensors 2 reporting 2 stale 0 warning 0 anomalous 0 open 0/0/0 newest 12s due_in - due false p4
        line P1-L01 sensors 2 reporting 2 stale 0 warning 0 anomalous 0 open 0/0/0 newest 12s due 0 rate 0.3076923076923077 p4
        plant P1 sensors 4 reporting 4 stale 0 warning 0 anomalous 0 open 0/0/0 newest 12s due 0 rate 0.6153846153846154 p4
    "#]],
    );
}

#[test]
fn a_machine_is_due_while_its_latest_lower_bound_is_within_the_week() {
    let mut log = Log::new();
    log.all_ok(0);
    log.batch().predicted(M1, 12.0, 6.5, 20.0);
    log.batch().predicted(M1, 12.0, 7.5, 20.0);
    check(
        &log,
        expect![[r#"
        -- batch 1
        layout replaced
        sensor 1000000 35 ok at 0s p2
        sensor 1000001 35 ok at 0s p2
        sensor 1000002 35 ok at 0s p2
        sensor 1000003 35 ok at 0s p2
        machine P1-L01-M001 ok sensors 2 reporting 2 stale 0 warning 0 anomalous 0 open 0/0/0 newest 0s due_in - due false p2
        machine P1-L02-M001 ok sensors 2 reporting 2 stale 0 warning 0 anomalous 0 open 0/0/0 newest 0s due_in - due false p2
        line P1-L01 sensors 2 reporting 2 stale 0 warning 0 anomalous 0 open 0/0/0 newest 0s due 0 rate 2 p2
        line P1-L02 sensors 2 reporting 2 stale 0 warning 0 anomalous 0 open 0/0/0 newest 0s due 0 rate 2 p2
        plant P1 sensors 4 reporting 4 stale 0 warning 0 anomalous 0 open 0/0/0 newest 0s due 0 rate 4 p2
        audit p1 LayoutConfigured None None: plant layout configured
        -- batch 2
        machine P1-L01-M001 service sensors 2 reporting 2 stale 0 warning 0 anomalous 0 open 0/0/0 newest 0s due_in 6.5 due true p3
        line P1-L01 sensors 2 reporting 2 stale 0 warning 0 anomalous 0 open 0/0/0 newest 0s due 1 rate 2 p3
        plant P1 sensors 4 reporting 4 stale 0 warning 0 anomalous 0 open 0/0/0 newest 0s due 1 rate 4 p3
        maintenance P1-L01-M001 days Some(12.0) lower Some(6.5) open order None last service None p3
        prediction P1-L01-M001 12 (6.5–20) p3
        audit p3 MaintenancePredicted Some("P1-L01-M001") Some("scorer"): service predicted in 12.0 days (6.5–20.0)
        -- batch 3
        machine P1-L01-M001 ok sensors 2 reporting 2 stale 0 warning 0 anomalous 0 open 0/0/0 newest 0s due_in 7.5 due false p4
        line P1-L01 sensors 2 reporting 2 stale 0 warning 0 anomalous 0 open 0/0/0 newest 0s due 0 rate 2 p4
        plant P1 sensors 4 reporting 4 stale 0 warning 0 anomalous 0 open 0/0/0 newest 0s due 0 rate 4 p4
        maintenance P1-L01-M001 days Some(12.0) lower Some(7.5) open order None last service None p4
        prediction P1-L01-M001 12 (7.5–20) p4
        audit p4 MaintenancePredicted Some("P1-L01-M001") Some("scorer"): service predicted in 12.0 days (7.5–20.0)
    "#]],
    );
}

#[test]
fn a_prediction_that_says_whether_its_machine_is_due_is_taken_at_its_word() {
    let mut log = Log::new();
    log.all_ok(0);
    // A low lower bound the model's rule does not call due, then a high one it does.
    log.batch().predicted_saying(M1, 12.0, 3.0, 20.0, Some(false));
    log.batch().predicted_saying(M1, 9.0, 8.0, 20.0, Some(true));
    check(
        &log,
        expect![[r#"
        -- batch 1
        layout replaced
        sensor 1000000 35 ok at 0s p2
        sensor 1000001 35 ok at 0s p2
        sensor 1000002 35 ok at 0s p2
        sensor 1000003 35 ok at 0s p2
        machine P1-L01-M001 ok sensors 2 reporting 2 stale 0 warning 0 anomalous 0 open 0/0/0 newest 0s due_in - due false p2
        machine P1-L02-M001 ok sensors 2 reporting 2 stale 0 warning 0 anomalous 0 open 0/0/0 newest 0s due_in - due false p2
        line P1-L01 sensors 2 reporting 2 stale 0 warning 0 anomalous 0 open 0/0/0 newest 0s due 0 rate 2 p2
        line P1-L02 sensors 2 reporting 2 stale 0 warning 0 anomalous 0 open 0/0/0 newest 0s due 0 rate 2 p2
        plant P1 sensors 4 reporting 4 stale 0 warning 0 anomalous 0 open 0/0/0 newest 0s due 0 rate 4 p2
        audit p1 LayoutConfigured None None: plant layout configured
        -- batch 2
        machine P1-L01-M001 ok sensors 2 reporting 2 stale 0 warning 0 anomalous 0 open 0/0/0 newest 0s due_in 3 due false p3
        maintenance P1-L01-M001 days Some(12.0) lower Some(3.0) open order None last service None p3
        prediction P1-L01-M001 12 (3–20) p3
        audit p3 MaintenancePredicted Some("P1-L01-M001") Some("scorer"): service predicted in 12.0 days (3.0–20.0)
        -- batch 3
        machine P1-L01-M001 service sensors 2 reporting 2 stale 0 warning 0 anomalous 0 open 0/0/0 newest 0s due_in 8 due true p4
        line P1-L01 sensors 2 reporting 2 stale 0 warning 0 anomalous 0 open 0/0/0 newest 0s due 1 rate 2 p4
        plant P1 sensors 4 reporting 4 stale 0 warning 0 anomalous 0 open 0/0/0 newest 0s due 1 rate 4 p4
        maintenance P1-L01-M001 days Some(9.0) lower Some(8.0) open order None last service None p4
        prediction P1-L01-M001 9 (8–20) p4
        audit p4 MaintenancePredicted Some("P1-L01-M001") Some("scorer"): service predicted in 9.0 days (8.0–20.0)
    "#]],
    );
}

#[test]
fn a_work_order_is_scheduled_and_performed_in_place() {
    let mut log = Log::new();
    log.batch().scheduled(M2, "P1-L02-M001-WO1");
    log.batch().performed(M2, "P1-L02-M001-WO1");
    check(
        &log,
        expect![[r#"
        -- batch 1
        layout replaced
        machine P1-L01-M001 stale sensors 2 reporting 0 stale 2 warning 0 anomalous 0 open 0/0/0 newest - due_in - due false p1
        machine P1-L02-M001 stale sensors 2 reporting 0 stale 2 warning 0 anomalous 0 open 0/0/0 newest - due_in - due false p1
        line P1-L01 sensors 2 reporting 0 stale 2 warning 0 anomalous 0 open 0/0/0 newest - due 0 rate 0 p1
        line P1-L02 sensors 2 reporting 0 stale 2 warning 0 anomalous 0 open 0/0/0 newest - due 0 rate 0 p1
        plant P1 sensors 4 reporting 0 stale 4 warning 0 anomalous 0 open 0/0/0 newest - due 0 rate 0 p1
        audit p1 LayoutConfigured None None: plant layout configured
        -- batch 2
        maintenance P1-L02-M001 days None lower None open order Some("P1-L02-M001-WO1") last service None p2
        order P1-L02-M001-WO1 emergency scheduled scheduled by Some("maria") performed by None: "" p2
        audit p2 MaintenanceScheduled Some("P1-L02-M001") Some("maria"): emergency service P1-L02-M001-WO1 scheduled by maria for 2026-03-01T14:00:00Z
        -- batch 3
        maintenance P1-L02-M001 days None lower None open order None last service Some("7300s") p3
        order P1-L02-M001-WO1 emergency performed scheduled by None performed by Some("tom"): "bearing replaced" p3
        audit p3 MaintenancePerformed Some("P1-L02-M001") Some("tom"): service P1-L02-M001-WO1 recorded by tom: bearing replaced
    "#]],
    );
}

#[test]
fn an_unreadable_event_is_reported_and_only_audited() {
    let mut log = Log::new();
    let body = json!({ "anomaly_id": "a9", "severity": "huge", "explanation": "?" });
    log.batch().json("anomaly-a9", ANOMALY_DETECTED, body, None);
    log.json("anomaly-a9", "SomethingNew", json!({ "machine_id": M1 }), Some("someone"));
    check(
        &log,
        expect![[r#"
        -- batch 1
        layout replaced
        machine P1-L01-M001 stale sensors 2 reporting 0 stale 2 warning 0 anomalous 0 open 0/0/0 newest - due_in - due false p1
        machine P1-L02-M001 stale sensors 2 reporting 0 stale 2 warning 0 anomalous 0 open 0/0/0 newest - due_in - due false p1
        line P1-L01 sensors 2 reporting 0 stale 2 warning 0 anomalous 0 open 0/0/0 newest - due 0 rate 0 p1
        line P1-L02 sensors 2 reporting 0 stale 2 warning 0 anomalous 0 open 0/0/0 newest - due 0 rate 0 p1
        plant P1 sensors 4 reporting 0 stale 4 warning 0 anomalous 0 open 0/0/0 newest - due 0 rate 0 p1
        audit p1 LayoutConfigured None None: plant layout configured
        -- batch 2
        audit p2 AnomalyDetected None None: huge anomaly: ?
        audit p3 SomethingNew Some("P1-L01-M001") Some("someone"): SomethingNew
        unreadable p2: AnomalyDetected body: unknown variant `huge`, expected one of `minor`, `major`, `critical`
    "#]],
    );
}

#[test]
fn an_anomaly_an_older_version_wrote_with_null_numbers_is_shown_with_those_numbers_unknown() {
    let mut log = Log::new();
    log.all_ok(0);
    log.batch().detected("a1", SENSORS[0], Severity::Critical, 1);
    let event = log.batches.last_mut().and_then(|b| b.last_mut()).expect("the detection");
    let Payload::Json(body) = &mut event.payload else { panic!("a JSON event") };
    // JSON has no infinity: an older monitor wrote `null` where its numbers overflowed.
    body["score"] = serde_json::Value::Null;
    body["sensors"][0]["expected"] = serde_json::Value::Null;
    body["sensors"][0]["upper"] = serde_json::Value::Null;
    let (model, text) = fold(&log);
    assert!(!text.contains("unreadable"), "{text}");
    assert!(text.contains("anomaly a1 new critical on P1-L01-M001"), "{text}");
    let row = &model.anomalies["a1"];
    assert_eq!(row.score, 0.0);
    assert!(row.explanation.ends_with("(some of this anomaly's numbers were not recorded)"), "{}", row.explanation);
    assert_eq!(row.sensors[0]["expected"], serde_json::Value::Null);
    assert_eq!(row.sensors[0]["observed"], 90.0);
    let readers: Vec<readmodel_contract::AnomalySensor> =
        serde_json::from_value(row.sensors.clone()).expect("readers read the evidence");
    assert_eq!((readers[0].observed, readers[0].expected), (Some(90.0), None));
}

#[test]
fn an_anomaly_event_of_an_unknown_shape_is_shown_from_what_can_be_read_as_critical() {
    let mut log = Log::new();
    log.all_ok(0);
    log.batch().json(
        "anomaly-a7",
        ANOMALY_DETECTED,
        json!({ "anomaly_id": "a7", "machine_id": M2, "severity": "catastrophic", "score": "high",
                "explanation": "TEMP1 far above", "started_at": at(2) }),
        None,
    );
    let (model, text) = fold(&log);
    let row = model.anomalies.get("a7").expect("the anomaly is not lost");
    assert_eq!((row.severity, row.line_id.as_str()), (Severity::Critical, "P1-L02"));
    assert!(
        row.explanation.starts_with("TEMP1 far above (this event could not be read in full:"),
        "{}",
        row.explanation
    );
    assert_eq!(row.started_at, at(2));
    assert!(text.contains("machine P1-L02-M001"), "its machine counts it: {text}");
}

#[test]
fn the_rows_do_not_depend_on_how_the_log_is_cut_into_batches() {
    let mut log = Log::new();
    log.all_ok(0);
    log.detected("a1", SENSORS[3], Severity::Critical, 1);
    log.readings(2, &[(SENSORS[0], 80.0), (SENSORS[1], 35.0)]);
    log.predicted(M2, 3.0, 1.0, 5.0);
    log.acknowledged("a1", "");
    log.readings(15, &[(SENSORS[0], 35.0)]);
    let everything = fold(&log).0;
    let one_by_one =
        Log { batches: log.batches.concat().into_iter().map(|e| vec![e]).collect(), position: log.position };
    let split = fold(&one_by_one).0;
    let rows = |m: &LiveModel| {
        let all = Changes {
            sensors: (0..m.sensors.len()).collect(),
            machines: (0..m.machines.len()).collect(),
            lines: (0..m.lines.len()).collect(),
            plant: true,
            anomalies: m.anomalies.keys().cloned().collect(),
            maintenance: m.maintenance.keys().cloned().collect(),
            ..Changes::default()
        };
        render(m, &all)
    };
    assert_eq!(rows(&split), rows(&everything));
}
