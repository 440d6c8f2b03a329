//! Shared fixtures: a plant database, a small layout, events to append, table snapshots.
#![allow(clippy::unwrap_used, dead_code)]

use chrono::{DateTime, Duration, TimeZone, Utc};
use domain::events::*;
use eventlog::{Append, Database, ExpectedVersion, Metadata, NewEvent, StreamName, append_and_commit};
use serde_json::Value;
use telemetry::Reading;

pub const SENSORS: u32 = 200;

pub fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap()
}

pub async fn plant_db() -> Database {
    let test_db = pgcluster::testdb::TestDb::new().await.unwrap();
    let db = Database::new(&test_db.url, 8).unwrap();
    readmodels::migrate(&db).await.unwrap();
    db
}

pub fn layout_event() -> LayoutConfigured {
    LayoutConfigured {
        plant: 1,
        layout_toml: layout::DEFAULT_LAYOUT_TOML.to_owned(),
        plants: Some(1),
        lines_per_plant: Some(2),
        sensors_per_plant: Some(SENSORS),
        stale_after_ms: 10_000,
    }
}

pub fn layout() -> layout::Layout {
    let e = layout_event();
    layout::Layout::default_with(&layout::Scale {
        plants: e.plants,
        lines_per_plant: e.lines_per_plant,
        sensors_per_plant: e.sensors_per_plant,
    })
    .unwrap()
}

pub async fn append_json(db: &Database, stream: &str, event_type: &str, body: &impl serde::Serialize) -> i64 {
    let e = NewEvent::json(event_type, 1, body, Metadata::by("test")).unwrap();
    let a = append_and_commit(db, &[Append::new(StreamName::new(stream).unwrap(), ExpectedVersion::Any, vec![e])])
        .await
        .unwrap();
    a[0].last_position
}

pub async fn configure(db: &Database) -> i64 {
    append_json(db, "plant-P1", LAYOUT_CONFIGURED, &layout_event()).await
}

/// One gateway batch per line, as the ingest API appends them.
pub async fn readings(db: &Database, readings: &[Reading]) -> i64 {
    let l = layout();
    let mut appends = Vec::new();
    for line in l.lines() {
        let mine: Vec<Reading> = readings.iter().copied().filter(|r| line.sensor_ids.contains(&r.sensor)).collect();
        if mine.is_empty() {
            continue;
        }
        let event = NewEvent::readings(
            &mine,
            (i64::MIN / 4, i64::MAX / 4),
            Metadata::from_source(format!("gateway:{}", line.id)),
        )
        .unwrap();
        appends.push(Append::new(StreamName::of("readings", &line.id).unwrap(), ExpectedVersion::Any, vec![event]));
    }
    let a = append_and_commit(db, &appends).await.unwrap();
    a.last().unwrap().last_position
}

/// Every sensor at `second` seconds after t0, at a value inside its normal range.
pub fn all_sensors_at(second: i64) -> Vec<Reading> {
    let l = layout();
    let ts = (t0() + Duration::seconds(second)).timestamp_millis();
    l.sensors()
        .iter()
        .map(|s| {
            let (lo, hi) = l.sensor(s.id).unwrap().normal_range();
            Reading::new(s.id, ts, f64::from(((lo + hi) / 2.0) as f32))
        })
        .collect()
}

pub const TABLES: &[(&str, &str)] = &[
    ("plant", "plant_id"),
    ("lines", "line_id"),
    ("machines", "machine_id"),
    ("sensors", "sensor_id"),
    ("sensor_state", "sensor_id"),
    ("sensor_history", "sensor_id, minute"),
    ("sensor_minute", "sensor_id, minute"),
    ("sensor_hour", "sensor_id, hour"),
    ("machine_status", "machine_id"),
    ("line_status", "line_id"),
    ("plant_status", "plant_id"),
    ("anomalies", "anomaly_id"),
    ("maintenance", "machine_id"),
    ("maintenance_predictions", "machine_id, predicted_at"),
    ("maintenance_log", "order_id"),
    ("audit", "position"),
    ("track_record", "scope, id, model_version"),
    ("track_failures", "machine_id, failed_at"),
    ("timetravel_checkpoints", "position"),
    ("timetravel_late", "position"),
];

/// Every read-model table as JSON rows in key order.
pub async fn snapshot(db: &Database) -> Vec<(String, Value)> {
    let client = db.client().await.unwrap();
    let mut out = Vec::new();
    for (table, key) in TABLES {
        let sql = format!("SELECT coalesce(json_agg(t ORDER BY {key}), '[]') FROM readmodel.{table} t");
        let rows: Value = client.query_one(&sql, &[]).await.unwrap().get(0);
        out.push((table.to_string(), rows));
    }
    let projections: Value = client
        .query_one("SELECT coalesce(json_agg(json_build_array(name, position, memory) ORDER BY name), '[]') FROM readmodel.projections", &[])
        .await
        .unwrap()
        .get(0);
    out.push(("projections".into(), projections));
    out
}

pub fn assert_same(a: &[(String, Value)], b: &[(String, Value)]) {
    for ((ta, ra), (_, rb)) in a.iter().zip(b) {
        if ra != rb {
            let ra = ra.as_array().unwrap();
            let rb = rb.as_array().unwrap();
            let first = ra.iter().zip(rb).find(|(x, y)| x != y);
            panic!("table {ta} differs ({} vs {} rows); first difference:\n{first:#?}", ra.len(), rb.len());
        }
    }
}
