//! The read side of the cloud's read models: one plain async function per question, each
//! answering serialisable rows. The HTTP handlers and the live-update stream call these.

use std::collections::BTreeMap;

use anyhow::Result;
use chrono::{DateTime, Duration, Utc};
use domain::production::ProductionSums;
use eventlog::{Database, GenericClient};
use serde::Serialize;
use serde_json::Value;
use serde_json::value::RawValue;
use tokio_postgres::Row;
use tokio_postgres::types::{Json, ToSql};

/// What a request names that the cloud must know.
#[derive(Debug, Default)]
pub struct Named<'a> {
    pub plants: Vec<u16>,
    /// The plant the machine, line or type belong to.
    pub plant: Option<u16>,
    pub machine: Option<&'a str>,
    pub line: Option<&'a str>,
    pub machine_type: Option<&'a str>,
}

/// Runs one of the API's statements, prepared once per connection and kept: the API asks
/// the same few questions over and over, and each then costs the server no parsing and
/// the connection a single round trip.
async fn rows(client: &impl GenericClient, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Vec<Row>> {
    let statement = client.prepare_cached(sql).await?;
    Ok(client.query(&statement, params).await?)
}

/// The one row `sql` answers, as [`rows`] runs it.
async fn row(client: &impl GenericClient, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Row> {
    let statement = client.prepare_cached(sql).await?;
    Ok(client.query_one(&statement, params).await?)
}

/// The first thing `named` names that the cloud does not know, as a message.
pub async fn unknown(db: &Database, named: &Named<'_>) -> Result<Option<String>> {
    let client = db.client().await?;
    let plants: Vec<i16> = named.plants.iter().map(|&p| p as i16).collect();
    let plant = named.plant.map(|p| p as i16);
    let row = row(
        &client,
        include_str!("../../sql/api/known.sql"),
        &[&plants, &plant, &named.machine, &named.line, &named.machine_type],
    )
    .await?;
    if row.get::<_, i32>(0) as usize != plants.len() {
        return Ok(Some(format!("the cloud knows no plant among {:?}", named.plants)));
    }
    for (i, what, value) in
        [(1, "machine", named.machine), (2, "line", named.line), (3, "machine type", named.machine_type)]
    {
        if !row.get::<_, bool>(i) {
            return Ok(Some(format!("the cloud knows no {what} {:?}", value.unwrap_or_default())));
        }
    }
    Ok(None)
}

/// One page of a list; `next_cursor` fetches the next (absent on the last page).
#[derive(Debug, Serialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct Forwarding {
    /// The plant log position the cloud has stored through.
    pub acknowledged: i64,
    /// The cloud log position of the plant's newest event.
    pub cloud_position: i64,
    /// When the plant recorded its newest event the cloud holds.
    pub newest_event_recorded_at: Option<DateTime<Utc>>,
    /// When the cloud last stored an event of the plant.
    pub last_received_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Serialize)]
pub struct PlantInfo {
    pub plant: u16,
    pub plant_id: String,
    pub name: String,
    pub lines: i32,
    pub machines: i32,
    pub sensors: i32,
    pub readings: i64,
    pub newest_reading: Option<DateTime<Utc>>,
    pub forwarding: Option<Forwarding>,
}

pub async fn plants(db: &Database, scope: Option<&[i16]>) -> Result<Vec<PlantInfo>> {
    let client = db.client().await?;
    let origins: BTreeMap<u16, eventlog::OriginPosition> =
        eventlog::origins(&client).await?.into_iter().map(|o| (o.origin, o)).collect();
    let rows = rows(&client, include_str!("../../sql/api/plants.sql"), &[&scope]).await?;
    Ok(rows
        .iter()
        .map(|r| {
            let plant = r.get::<_, i16>(0) as u16;
            PlantInfo {
                plant,
                plant_id: r.get(1),
                name: r.get(2),
                lines: r.get(3),
                machines: r.get(4),
                sensors: r.get(5),
                readings: r.get(6),
                newest_reading: r.get(7),
                forwarding: origins.get(&plant).map(|o| Forwarding {
                    acknowledged: o.acknowledged,
                    cloud_position: o.position,
                    newest_event_recorded_at: o.recorded_at,
                    last_received_at: o.updated_at,
                }),
            }
        })
        .collect())
}

#[derive(Debug, Serialize)]
pub struct GroupInfo {
    pub machine_type: String,
    pub machines: i32,
    pub sensors: i32,
}

#[derive(Debug, Serialize)]
pub struct LineInfo {
    pub line_id: String,
    pub number: i32,
    pub machines: i32,
    pub sensors: i32,
    pub machine_types: Vec<GroupInfo>,
}

/// The plant's lines; `None` when the cloud knows no layout of the plant.
pub async fn lines(db: &Database, plant: u16) -> Result<Option<Vec<LineInfo>>> {
    let client = db.client().await?;
    let key = plant as i16;
    let mut groups: BTreeMap<String, Vec<GroupInfo>> = BTreeMap::new();
    for r in rows(&client, include_str!("../../sql/api/groups.sql"), &[&key]).await? {
        groups.entry(r.get(0)).or_default().push(GroupInfo {
            machine_type: r.get(1),
            machines: r.get(2),
            sensors: r.get(3),
        });
    }
    let rows = rows(&client, include_str!("../../sql/api/lines.sql"), &[&key]).await?;
    if rows.is_empty() {
        return Ok(None);
    }
    Ok(Some(
        rows.iter()
            .map(|r| {
                let line_id: String = r.get(0);
                LineInfo {
                    machine_types: groups.remove(&line_id).unwrap_or_default(),
                    line_id,
                    number: r.get(1),
                    machines: r.get(2),
                    sensors: r.get(3),
                }
            })
            .collect(),
    ))
}

#[derive(Debug, Serialize)]
pub struct MachineInfo {
    pub plant: u16,
    pub machine_id: String,
    pub line_id: String,
    pub number: i32,
    pub machine_type: String,
    pub description: String,
    pub sensors: i32,
    pub open_anomalies: i64,
    pub predicted_days: Option<f64>,
    pub lower_days: Option<f64>,
    pub upper_days: Option<f64>,
    pub predicted_at: Option<DateTime<Utc>>,
    pub model_version: Option<String>,
    pub open_order_id: Option<String>,
    pub scheduled_for: Option<DateTime<Utc>>,
    pub last_performed_at: Option<DateTime<Utc>>,
    pub last_failure_at: Option<DateTime<Utc>>,
}

pub struct MachineFilter<'a> {
    pub line: Option<&'a str>,
    pub machine_type: Option<&'a str>,
    pub machine: Option<&'a str>,
    pub after: Option<&'a str>,
    pub limit: i64,
}

pub async fn machines(db: &Database, plant: u16, f: &MachineFilter<'_>) -> Result<Vec<MachineInfo>> {
    let client = db.client().await?;
    let rows = rows(
        &client,
        include_str!("../../sql/api/machines.sql"),
        &[&(plant as i16), &f.line, &f.machine_type, &f.machine, &f.after, &f.limit],
    )
    .await?;
    Ok(rows
        .iter()
        .map(|r| MachineInfo {
            plant,
            machine_id: r.get(0),
            line_id: r.get(1),
            number: r.get(2),
            machine_type: r.get(3),
            description: r.get(4),
            sensors: r.get(5),
            predicted_days: r.get(6),
            lower_days: r.get(7),
            upper_days: r.get(8),
            predicted_at: r.get(9),
            model_version: r.get(10),
            open_order_id: r.get(11),
            scheduled_for: r.get(12),
            last_performed_at: r.get(13),
            last_failure_at: r.get(14),
            open_anomalies: r.get(15),
        })
        .collect())
}

#[derive(Debug, Clone, Serialize)]
pub struct SensorInfo {
    pub sensor_id: i32,
    pub name: String,
    pub kind: String,
    pub unit: String,
    pub normal_min: f64,
    pub normal_max: f64,
}

pub async fn machine_sensors(client: &impl GenericClient, plant: u16, machine: &str) -> Result<Vec<SensorInfo>> {
    let rows = rows(client, include_str!("../../sql/api/machine_sensors.sql"), &[&(plant as i16), &machine]).await?;
    Ok(rows
        .iter()
        .map(|r| SensorInfo {
            sensor_id: r.get(0),
            name: r.get(1),
            kind: r.get(2),
            unit: r.get(3),
            normal_min: r.get(4),
            normal_max: r.get(5),
        })
        .collect())
}

/// KPI bucket size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bucket {
    Hour,
    Day,
}

impl Bucket {
    pub fn duration(self) -> Duration {
        match self {
            Bucket::Hour => Duration::hours(1),
            Bucket::Day => Duration::days(1),
        }
    }
}

// A row of `/v1/kpis` is the API's contract with its readers: one owner, `cloud_contract`.
pub use cloud_contract::{Anomalies, KpiRow, Production};

static KPIS: std::sync::LazyLock<[String; 2]> = std::sync::LazyLock::new(|| {
    [crate::kpi::KPI_HOUR, crate::kpi::KPI_DAY].map(|t| t.sql(include_str!("../../sql/api/kpis.sql")))
});

/// KPIs of `plants` (None: all) per bucket in `[from, to)` (aligned to buckets), grouped
/// `by` plant, line or machine type.
pub async fn kpis(
    db: &Database,
    plants: Option<&[i16]>,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    bucket: Bucket,
    by: &str,
    now: DateTime<Utc>,
) -> Result<Vec<KpiRow>> {
    let client = db.client().await?;
    let (sql, step) = match bucket {
        Bucket::Hour => (&KPIS[0], "1 hour"),
        Bucket::Day => (&KPIS[1], "1 day"),
    };
    let rows = rows(&client, sql.as_str(), &[&plants, &from, &to, &by, &step]).await?;
    let width = bucket.duration();
    Ok(rows
        .iter()
        .map(|r| {
            let g = |i: usize| r.get::<_, i64>(i);
            let start: DateTime<Utc> = r.get(3);
            let sensors = g(4);
            let elapsed_h = ((now.min(start + width) - start).num_milliseconds().max(0) as f64) / 3_600_000.0;
            let expected = sensors as f64 * elapsed_h;
            let ratio = |a: f64, b: f64| (b > 0.0).then(|| a / b);
            let sums = ProductionSums {
                planned_s: g(16) as f64 / 1000.0,
                running_s: g(17) as f64 / 1000.0,
                parts: g(18) as f64,
                good_parts: g(19) as f64,
                ideal_s: g(20) as f64 / 1000.0,
            };
            let line: String = r.get(1);
            let machine_type: String = r.get(2);
            KpiRow {
                plant: r.get::<_, i16>(0) as u16,
                line_id: (!line.is_empty()).then_some(line),
                machine_type: (!machine_type.is_empty()).then_some(machine_type),
                bucket_start: start,
                bucket_end: start + width,
                readings: g(5),
                sensors,
                sensor_availability: ratio(g(6) as f64, expected).map(|a| a.min(1.0)),
                anomalies: Anomalies { minor: g(7), major: g(8), critical: g(9) },
                acknowledged: g(10),
                mean_time_to_acknowledge_s: ratio(g(11) as f64 / 1000.0, g(10) as f64),
                maintenance_performed: g(12),
                failures: g(13),
                predictions: g(14),
                mean_predicted_days_to_service: ratio(g(15) as f64 / 1000.0, g(14) as f64),
                production: Production {
                    planned_s: sums.planned_s,
                    running_s: sums.running_s,
                    parts: g(18),
                    good_parts: g(19),
                },
                oee: sums.oee(),
            }
        })
        .collect())
}

#[derive(Debug, Serialize)]
pub struct AnomalyOut {
    pub plant: u16,
    pub anomaly_id: String,
    pub machine_id: String,
    pub line_id: String,
    pub machine_type: String,
    pub severity: String,
    pub state: String,
    pub score: f64,
    /// Each sensor's evidence: observed value, expected band, the test that fired, score;
    /// passed on as stored, unparsed.
    pub sensors: Box<RawValue>,
    pub explanation: String,
    pub detector_version: String,
    pub started_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub resolved_at: Option<DateTime<Utc>>,
    pub acknowledged_by: Option<String>,
    pub acknowledged_at: Option<DateTime<Utc>>,
    pub shelved_by: Option<String>,
    pub shelved_until: Option<DateTime<Utc>>,
    pub notes: Box<RawValue>,
    pub position: i64,
}

/// A `jsonb` column as the JSON text it holds, without building it into a tree only to
/// write it out again.
fn raw_json(r: &Row, column: usize) -> Box<RawValue> {
    r.get::<_, Json<Box<RawValue>>>(column).0
}

pub fn anomaly(r: &Row) -> AnomalyOut {
    AnomalyOut {
        plant: r.get::<_, i16>(0) as u16,
        anomaly_id: r.get(1),
        machine_id: r.get(2),
        line_id: r.get(3),
        machine_type: r.get(4),
        severity: r.get(5),
        state: r.get(6),
        score: r.get(7),
        sensors: raw_json(r, 8),
        explanation: r.get(9),
        detector_version: r.get(10),
        started_at: r.get(11),
        updated_at: r.get(12),
        resolved_at: r.get(13),
        acknowledged_by: r.get(14),
        acknowledged_at: r.get(15),
        shelved_by: r.get(16),
        shelved_until: r.get(17),
        notes: raw_json(r, 18),
        position: r.get(19),
    }
}

pub struct AnomalyFilter {
    pub plants: Option<Vec<i16>>,
    pub severity: Option<Vec<String>>,
    pub state: Option<Vec<String>>,
    pub machine: Option<String>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    pub before: Option<(DateTime<Utc>, i16, String)>,
    pub limit: i64,
}

const ANOMALIES: &str = include_str!("../../sql/api/anomalies.sql");

/// The same question asked of the anomalies not yet resolved, said so in the statement
/// itself so that every plan of it reads the partial index of open anomalies
/// (`anomalies_open`), not the whole history.
static OPEN_ANOMALIES: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| ANOMALIES.replacen("\n WHERE ", "\n WHERE state <> 'resolved'\n   AND ", 1));

pub async fn anomalies(db: &Database, f: &AnomalyFilter) -> Result<Vec<AnomalyOut>> {
    let client = db.client().await?;
    let (t, p, id) = match &f.before {
        Some((t, p, id)) => (Some(*t), Some(*p), Some(id.as_str())),
        None => (None, None, None),
    };
    let open_only = f.state.as_ref().is_some_and(|states| !states.iter().any(|s| s == "resolved"));
    let sql = if open_only { OPEN_ANOMALIES.as_str() } else { ANOMALIES };
    let rows =
        rows(&client, sql, &[&f.plants, &f.severity, &f.state, &f.machine, &f.from, &f.to, &t, &p, &id, &f.limit])
            .await?;
    Ok(rows.iter().map(anomaly).collect())
}

#[derive(Debug, Serialize)]
pub struct MaintenanceOut {
    pub plant: u16,
    pub machine_id: String,
    pub line_id: String,
    pub machine_type: String,
    pub predicted_days: Option<f64>,
    pub lower_days: Option<f64>,
    pub upper_days: Option<f64>,
    pub predicted_at: Option<DateTime<Utc>>,
    pub model_version: Option<String>,
    pub open_order_id: Option<String>,
    pub open_order_kind: Option<String>,
    pub scheduled_for: Option<DateTime<Utc>>,
    pub last_performed_at: Option<DateTime<Utc>>,
    pub last_failure_at: Option<DateTime<Utc>>,
    /// The plant's own rule ([`readmodels::live::model::is_due`]): what the model's alert rule
    /// decided, or for older predictions the interval's lower bound being at most 7 days.
    pub due: bool,
}

pub fn maintenance_row(r: &Row) -> MaintenanceOut {
    let lower: Option<f64> = r.get(5);
    MaintenanceOut {
        plant: r.get::<_, i16>(0) as u16,
        machine_id: r.get(1),
        line_id: r.get(2),
        machine_type: r.get(3),
        predicted_days: r.get(4),
        lower_days: lower,
        upper_days: r.get(6),
        predicted_at: r.get(7),
        model_version: r.get(8),
        open_order_id: r.get(9),
        open_order_kind: r.get(10),
        scheduled_for: r.get(11),
        last_performed_at: r.get(12),
        last_failure_at: r.get(13),
        due: readmodels::live::model::is_due(lower, r.get(14)),
    }
}

pub async fn maintenance(
    db: &Database,
    plants: Option<&[i16]>,
    due_within_days: Option<f64>,
    after: Option<(f64, i16, String)>,
    limit: i64,
) -> Result<Vec<MaintenanceOut>> {
    let client = db.client().await?;
    let (d, p, m) = match &after {
        Some((d, p, m)) => (Some(*d), Some(*p), Some(m.as_str())),
        None => (None, None, None),
    };
    let rows =
        rows(&client, include_str!("../../sql/api/maintenance.sql"), &[&plants, &due_within_days, &d, &p, &m, &limit])
            .await?;
    Ok(rows.iter().map(maintenance_row).collect())
}

#[derive(Debug, Serialize)]
pub struct LogOut {
    pub plant: u16,
    pub entry_id: String,
    pub machine_id: String,
    /// planned | emergency | failure
    pub kind: String,
    /// scheduled | performed | failed
    pub state: String,
    pub at: DateTime<Utc>,
    pub scheduled_for: Option<DateTime<Utc>>,
    pub scheduled_by: Option<String>,
    pub performed_at: Option<DateTime<Utc>>,
    pub performed_by: Option<String>,
    pub note: String,
    pub performed_note: String,
}

pub fn log_row(r: &Row) -> LogOut {
    LogOut {
        plant: r.get::<_, i16>(0) as u16,
        entry_id: r.get(1),
        machine_id: r.get(2),
        kind: r.get(3),
        state: r.get(4),
        at: r.get(5),
        scheduled_for: r.get(6),
        scheduled_by: r.get(7),
        performed_at: r.get(8),
        performed_by: r.get(9),
        note: r.get(10),
        performed_note: r.get(11),
    }
}

pub struct LogFilter {
    pub plants: Option<Vec<i16>>,
    pub machine: Option<String>,
    pub kind: Option<Vec<String>>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    pub before: Option<(DateTime<Utc>, i16, String)>,
    pub limit: i64,
}

pub async fn maintenance_log(db: &Database, f: &LogFilter) -> Result<Vec<LogOut>> {
    let client = db.client().await?;
    let (t, p, id) = match &f.before {
        Some((t, p, id)) => (Some(*t), Some(*p), Some(id.as_str())),
        None => (None, None, None),
    };
    let rows = rows(
        &client,
        include_str!("../../sql/api/maintenance_log.sql"),
        &[&f.plants, &f.machine, &f.kind, &f.from, &f.to, &t, &p, &id, &f.limit],
    )
    .await?;
    Ok(rows.iter().map(log_row).collect())
}

#[derive(Debug, Serialize)]
pub struct PredictionOut {
    pub predicted_at: DateTime<Utc>,
    pub days: f64,
    pub lower_days: f64,
    pub upper_days: f64,
    pub model_version: String,
}

pub async fn predictions(
    db: &Database,
    plant: u16,
    machine: &str,
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
    before: Option<DateTime<Utc>>,
    limit: i64,
) -> Result<Vec<PredictionOut>> {
    let client = db.client().await?;
    let rows = rows(
        &client,
        include_str!("../../sql/api/predictions.sql"),
        &[&(plant as i16), &machine, &from, &to, &before, &limit],
    )
    .await?;
    Ok(rows
        .iter()
        .map(|r| PredictionOut {
            predicted_at: r.get(0),
            days: r.get(1),
            lower_days: r.get(2),
            upper_days: r.get(3),
            model_version: r.get(4),
        })
        .collect())
}

/// Trend resolution.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Resolution {
    Minute,
    Hour,
    Day,
}

impl Resolution {
    pub fn duration(self) -> Duration {
        match self {
            Resolution::Minute => Duration::minutes(1),
            Resolution::Hour => Duration::hours(1),
            Resolution::Day => Duration::days(1),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Resolution::Minute => "minute",
            Resolution::Hour => "hour",
            Resolution::Day => "day",
        }
    }
}

#[derive(Debug, Serialize)]
pub struct Point {
    pub t: DateTime<Utc>,
    pub count: i32,
    pub min: f64,
    pub max: f64,
    pub mean: f64,
}

#[derive(Debug, Serialize)]
pub struct SensorTrend {
    #[serde(flatten)]
    pub sensor: SensorInfo,
    pub points: Vec<Point>,
}

#[derive(Debug, Serialize)]
pub struct Trend {
    pub plant: u16,
    pub machine_id: String,
    pub resolution: Resolution,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub sensors: Vec<SensorTrend>,
}

pub async fn trend(
    db: &Database,
    plant: u16,
    machine: &str,
    sensors: Vec<SensorInfo>,
    resolution: Resolution,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Trend> {
    let client = db.client().await?;
    let sql = match resolution {
        Resolution::Minute => include_str!("../../sql/api/trend_minute.sql"),
        Resolution::Hour => include_str!("../../sql/api/trend_hour.sql"),
        Resolution::Day => include_str!("../../sql/api/trend_day.sql"),
    };
    let ids: Vec<i32> = sensors.iter().map(|s| s.sensor_id).collect();
    let rows = rows(&client, sql, &[&(plant as i16), &ids, &from, &to]).await?;
    drop(client);
    // The rows come in the order they lie on disk (nearly in time); each sensor's points
    // are put in time order here, cheaper than a sort of whole rows in the server.
    let slot: std::collections::HashMap<i32, usize> = ids.iter().enumerate().map(|(i, &id)| (id, i)).collect();
    let mut points: Vec<Vec<Point>> = sensors.iter().map(|_| Vec::new()).collect();
    for r in &rows {
        let Some(&i) = slot.get(&r.get::<_, i32>(0)) else { continue };
        points[i].push(Point { t: r.get(1), count: r.get(2), min: r.get(3), max: r.get(4), mean: r.get(5) });
    }
    for p in &mut points {
        p.sort_unstable_by_key(|p| p.t);
    }
    Ok(Trend {
        plant,
        machine_id: machine.to_owned(),
        resolution,
        from,
        to,
        sensors: sensors.into_iter().zip(points).map(|(sensor, points)| SensorTrend { sensor, points }).collect(),
    })
}

#[derive(Debug, Serialize)]
pub struct ModelOut {
    pub version: String,
    pub created_at: DateTime<Utc>,
    pub registered_at: DateTime<Utc>,
    pub metrics: Value,
    pub active: bool,
}

pub async fn models(db: &Database) -> Result<Vec<ModelOut>> {
    let client = db.client().await?;
    let rows = rows(&client, include_str!("../../sql/api/models.sql"), &[]).await?;
    Ok(rows
        .iter()
        .map(|r| ModelOut {
            version: r.get(0),
            created_at: r.get(1),
            registered_at: r.get(2),
            metrics: r.get(3),
            active: r.get(4),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    /// The open anomalies' statement differs from the whole list's by its condition alone,
    /// so a change to the list that moved its `WHERE` cannot leave it silently unfiltered.
    #[test]
    fn the_open_anomalies_question_is_the_list_with_the_partial_index_condition() {
        let open = super::OPEN_ANOMALIES.as_str();
        assert_eq!(open.matches("state <> 'resolved'").count(), 1, "{open}");
        assert_eq!(open.replacen(" state <> 'resolved'\n   AND", "", 1), super::ANOMALIES);
    }
}
