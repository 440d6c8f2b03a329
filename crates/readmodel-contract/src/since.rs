//! "What changed since position N" for every read model a reader follows, read page by
//! page inside one snapshot, and how far the projections have got.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde_json::Value;
use thiserror::Error;
use tokio_postgres::{Client, Row};

use crate::rows::*;

#[derive(Debug, Error)]
pub enum ReadError {
    #[error("plant database: {0}")]
    Postgres(#[from] tokio_postgres::Error),
    #[error("the read models are not installed in this database (readmodel.projections is missing)")]
    NotInstalled,
}

/// Rows fetched per query; a read model with more changes is read in several pages.
pub const PAGE_ROWS: i64 = 5_000;

/// The read models a reader follows, in the order a catch-up reads them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ReadModel {
    Plant,
    PlantStatus,
    Lines,
    LineStatus,
    Machines,
    MachineStatus,
    Sensors,
    SensorState,
    Anomalies,
    Maintenance,
    Predictions,
    WorkOrders,
    Audit,
    TrackRecord,
    TrackFailures,
    NodeTasks,
}

impl ReadModel {
    pub const ALL: [ReadModel; 16] = [
        ReadModel::Plant,
        ReadModel::PlantStatus,
        ReadModel::Lines,
        ReadModel::LineStatus,
        ReadModel::Machines,
        ReadModel::MachineStatus,
        ReadModel::Sensors,
        ReadModel::SensorState,
        ReadModel::Anomalies,
        ReadModel::Maintenance,
        ReadModel::Predictions,
        ReadModel::WorkOrders,
        ReadModel::Audit,
        ReadModel::TrackRecord,
        ReadModel::TrackFailures,
        ReadModel::NodeTasks,
    ];

    pub fn name(self) -> &'static str {
        match self {
            ReadModel::Plant => "plant",
            ReadModel::PlantStatus => "plant_status",
            ReadModel::Lines => "lines",
            ReadModel::LineStatus => "line_status",
            ReadModel::Machines => "machines",
            ReadModel::MachineStatus => "machine_status",
            ReadModel::Sensors => "sensors",
            ReadModel::SensorState => "sensor_state",
            ReadModel::Anomalies => "anomalies",
            ReadModel::Maintenance => "maintenance",
            ReadModel::Predictions => "maintenance_predictions",
            ReadModel::WorkOrders => "maintenance_log",
            ReadModel::Audit => "audit",
            ReadModel::TrackRecord => "track_record",
            ReadModel::TrackFailures => "track_failures",
            ReadModel::NodeTasks => "node_tasks",
        }
    }

    /// The read model of a table (`ReadModel::name` is the table's name).
    pub fn from_name(name: &str) -> Option<ReadModel> {
        ReadModel::ALL.into_iter().find(|m| m.name() == name)
    }

    fn sql(self) -> &'static str {
        match self {
            ReadModel::Plant => include_str!("../sql/since/plant.sql"),
            ReadModel::PlantStatus => include_str!("../sql/since/plant_status.sql"),
            ReadModel::Lines => include_str!("../sql/since/lines.sql"),
            ReadModel::LineStatus => include_str!("../sql/since/line_status.sql"),
            ReadModel::Machines => include_str!("../sql/since/machines.sql"),
            ReadModel::MachineStatus => include_str!("../sql/since/machine_status.sql"),
            ReadModel::Sensors => include_str!("../sql/since/sensors.sql"),
            ReadModel::SensorState => include_str!("../sql/since/sensor_state.sql"),
            ReadModel::Anomalies => include_str!("../sql/since/anomalies.sql"),
            ReadModel::Maintenance => include_str!("../sql/since/maintenance.sql"),
            ReadModel::Predictions => include_str!("../sql/since/maintenance_predictions.sql"),
            ReadModel::WorkOrders => include_str!("../sql/since/maintenance_log.sql"),
            ReadModel::Audit => include_str!("../sql/since/audit.sql"),
            ReadModel::TrackRecord => include_str!("../sql/since/track_record.sql"),
            ReadModel::TrackFailures => include_str!("../sql/since/track_failures.sql"),
            ReadModel::NodeTasks => include_str!("../sql/since/node_tasks.sql"),
        }
    }

    /// Appends a page of rows to `changes`; returns (rows read, highest position).
    fn push_rows(self, rows: &[Row], changes: &mut Changes) -> Result<(usize, i64), tokio_postgres::Error> {
        let mut newest = 0;
        for row in rows {
            let position: i64 = row.try_get("position")?;
            newest = newest.max(position);
            match self {
                ReadModel::Plant => changes.plant.push(plant(row)?),
                ReadModel::PlantStatus => changes.plant_status.push(rollup(row, "plant_id")?),
                ReadModel::Lines => changes.lines.push(line(row)?),
                ReadModel::LineStatus => changes.line_status.push(rollup(row, "line_id")?),
                ReadModel::Machines => changes.machines.push(machine(row)?),
                ReadModel::MachineStatus => changes.machine_status.push(machine_status(row)?),
                ReadModel::Sensors => changes.sensors.push(sensor(row)?),
                ReadModel::SensorState => changes.sensor_state.push(sensor_state(row)?),
                ReadModel::Anomalies => changes.anomalies.push(anomaly(row)?),
                ReadModel::Maintenance => changes.maintenance.push(maintenance(row)?),
                ReadModel::Predictions => changes.predictions.push(prediction(row)?),
                ReadModel::WorkOrders => changes.work_orders.push(work_order(row)?),
                ReadModel::Audit => changes.audit.push(audit(row)?),
                ReadModel::TrackRecord => changes.track_record.push(track_record(row)?),
                ReadModel::TrackFailures => changes.track_failures.push(track_failure(row)?),
                ReadModel::NodeTasks => changes.node_tasks.push(node_task(row)?),
            }
        }
        Ok((rows.len(), newest))
    }
}

pub(crate) fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

fn opt_ms(t: Option<DateTime<Utc>>) -> Option<i64> {
    t.map(ms)
}

fn track_record(r: &Row) -> Result<TrackRecord, tokio_postgres::Error> {
    Ok(TrackRecord {
        scope: r.try_get("scope")?,
        id: r.try_get("id")?,
        model_version: r.try_get("model_version")?,
        failures: r.try_get("failures")?,
        caught: r.try_get("caught")?,
        watched: r.try_get("watched")?,
        caught_watched: r.try_get("caught_watched")?,
        scored: r.try_get("scored")?,
        covered: r.try_get("covered")?,
        alerts: r.try_get("alerts")?,
        premature_alerts: r.try_get("premature_alerts")?,
        alerts_without_failure: r.try_get("alerts_without_failure")?,
        false_alerts: r.try_get("false_alerts")?,
        false_alert_onsets: r.try_get("false_alert_onsets")?,
        judged_days: r.try_get("judged_days")?,
        coverage: r.try_get("coverage")?,
        mae_days: r.try_get("mae_days")?,
        false_alert_hours_per_1000_machine_days: r.try_get("false_alert_hours_per_1000_machine_days")?,
        position: r.try_get("position")?,
    })
}

fn track_failure(r: &Row) -> Result<TrackFailure, tokio_postgres::Error> {
    Ok(TrackFailure {
        machine_id: r.try_get("machine_id")?,
        failed_at_ms: ms(r.try_get("failed_at")?),
        machine_type: r.try_get("machine_type")?,
        model_version: r.try_get("model_version")?,
        caught: r.try_get("caught")?,
        alert_lead_days: r.try_get("alert_lead_days")?,
        scored: r.try_get("scored")?,
        covered: r.try_get("covered")?,
        at_leads: r.try_get("at_leads")?,
        position: r.try_get("position")?,
    })
}

fn plant(r: &Row) -> Result<Plant, tokio_postgres::Error> {
    Ok(Plant {
        plant_id: r.try_get("plant_id")?,
        name: r.try_get("name")?,
        lines: r.try_get("lines")?,
        machines: r.try_get("machines")?,
        sensors: r.try_get("sensors")?,
        position: r.try_get("position")?,
    })
}

fn line(r: &Row) -> Result<Line, tokio_postgres::Error> {
    Ok(Line {
        line_id: r.try_get("line_id")?,
        number: r.try_get("number")?,
        machines: r.try_get("machines")?,
        sensors: r.try_get("sensors")?,
        position: r.try_get("position")?,
    })
}

fn machine(r: &Row) -> Result<Machine, tokio_postgres::Error> {
    Ok(Machine {
        machine_id: r.try_get("machine_id")?,
        line_id: r.try_get("line_id")?,
        number: r.try_get("number")?,
        machine_type: r.try_get("machine_type")?,
        description: r.try_get("description")?,
        sensors: r.try_get("sensors")?,
        position: r.try_get("position")?,
    })
}

fn sensor(r: &Row) -> Result<Sensor, tokio_postgres::Error> {
    Ok(Sensor {
        sensor_id: r.try_get("sensor_id")?,
        name: r.try_get("name")?,
        machine_id: r.try_get("machine_id")?,
        kind: r.try_get("kind")?,
        unit: r.try_get("unit")?,
        normal_min: r.try_get("normal_min")?,
        normal_max: r.try_get("normal_max")?,
        position: r.try_get("position")?,
    })
}

fn sensor_state(r: &Row) -> Result<SensorState, tokio_postgres::Error> {
    Ok(SensorState {
        sensor_id: r.try_get("sensor_id")?,
        machine_id: r.try_get("machine_id")?,
        value: r.try_get("value")?,
        ts_ms: ms(r.try_get("ts")?),
        status: r.try_get("status")?,
        position: r.try_get("position")?,
    })
}

fn machine_status(r: &Row) -> Result<MachineStatus, tokio_postgres::Error> {
    Ok(MachineStatus {
        machine_id: r.try_get("machine_id")?,
        line_id: r.try_get("line_id")?,
        status: r.try_get("status")?,
        sensors: r.try_get("sensors")?,
        reporting: r.try_get("reporting")?,
        stale: r.try_get("stale")?,
        warning: r.try_get("warning")?,
        anomalous: r.try_get("anomalous")?,
        open_critical: r.try_get("open_critical")?,
        open_major: r.try_get("open_major")?,
        open_minor: r.try_get("open_minor")?,
        due_in_days: r.try_get("due_in_days")?,
        due: r.try_get("due")?,
        newest_reading_ms: opt_ms(r.try_get("newest_reading")?),
        position: r.try_get("position")?,
    })
}

fn rollup(r: &Row, id: &str) -> Result<Rollup, tokio_postgres::Error> {
    Ok(Rollup {
        id: r.try_get(id)?,
        sensors: r.try_get("sensors")?,
        reporting: r.try_get("reporting")?,
        stale: r.try_get("stale")?,
        warning: r.try_get("warning")?,
        anomalous: r.try_get("anomalous")?,
        open_critical: r.try_get("open_critical")?,
        open_major: r.try_get("open_major")?,
        open_minor: r.try_get("open_minor")?,
        machines_due_7d: r.try_get("machines_due_7d")?,
        readings_per_s: r.try_get("readings_per_s")?,
        newest_reading_ms: opt_ms(r.try_get("newest_reading")?),
        position: r.try_get("position")?,
    })
}

/// Reads a JSON array leniently: a malformed element is skipped rather than losing the row.
fn json_list<T: serde::de::DeserializeOwned>(v: Value, what: &str, id: &str) -> Vec<T> {
    match v {
        Value::Array(items) => items
            .into_iter()
            .filter_map(|item| match serde_json::from_value(item) {
                Ok(x) => Some(x),
                Err(e) => {
                    tracing::warn!(anomaly = id, "skipping an unreadable {what} entry: {e}");
                    None
                }
            })
            .collect(),
        _ => Vec::new(),
    }
}

fn anomaly(r: &Row) -> Result<Anomaly, tokio_postgres::Error> {
    let id: String = r.try_get("anomaly_id")?;
    Ok(Anomaly {
        sensors: json_list(r.try_get("sensors")?, "sensor", &id),
        notes: json_list(r.try_get("notes")?, "note", &id),
        machine_id: r.try_get("machine_id")?,
        line_id: r.try_get("line_id")?,
        severity: r.try_get("severity")?,
        state: r.try_get("state")?,
        score: r.try_get("score")?,
        explanation: r.try_get("explanation")?,
        started_at_ms: ms(r.try_get("started_at")?),
        updated_at_ms: ms(r.try_get("updated_at")?),
        resolved_at_ms: opt_ms(r.try_get("resolved_at")?),
        acknowledged_by: r.try_get("acknowledged_by")?,
        acknowledged_at_ms: opt_ms(r.try_get("acknowledged_at")?),
        shelved_by: r.try_get("shelved_by")?,
        shelved_until_ms: opt_ms(r.try_get("shelved_until")?),
        position: r.try_get("position")?,
        anomaly_id: id,
    })
}

fn maintenance(r: &Row) -> Result<Maintenance, tokio_postgres::Error> {
    Ok(Maintenance {
        machine_id: r.try_get("machine_id")?,
        predicted_days: r.try_get("predicted_days")?,
        lower_days: r.try_get("lower_days")?,
        upper_days: r.try_get("upper_days")?,
        predicted_at_ms: opt_ms(r.try_get("predicted_at")?),
        model_version: r.try_get("model_version")?,
        open_order_id: r.try_get("open_order_id")?,
        open_order_kind: r.try_get("open_order_kind")?,
        scheduled_for_ms: opt_ms(r.try_get("scheduled_for")?),
        last_performed_at_ms: opt_ms(r.try_get("last_performed_at")?),
        position: r.try_get("position")?,
    })
}

fn prediction(r: &Row) -> Result<Prediction, tokio_postgres::Error> {
    Ok(Prediction {
        machine_id: r.try_get("machine_id")?,
        predicted_at_ms: ms(r.try_get("predicted_at")?),
        days: r.try_get("days")?,
        lower_days: r.try_get("lower_days")?,
        upper_days: r.try_get("upper_days")?,
        model_version: r.try_get("model_version")?,
        position: r.try_get("position")?,
    })
}

fn work_order(r: &Row) -> Result<WorkOrder, tokio_postgres::Error> {
    Ok(WorkOrder {
        order_id: r.try_get("order_id")?,
        machine_id: r.try_get("machine_id")?,
        kind: r.try_get("kind")?,
        state: r.try_get("state")?,
        scheduled_for_ms: opt_ms(r.try_get("scheduled_for")?),
        scheduled_by: r.try_get("scheduled_by")?,
        performed_at_ms: opt_ms(r.try_get("performed_at")?),
        performed_by: r.try_get("performed_by")?,
        note: r.try_get("note")?,
        performed_note: r.try_get("performed_note")?,
        position: r.try_get("position")?,
    })
}

fn audit(r: &Row) -> Result<AuditEntry, tokio_postgres::Error> {
    Ok(AuditEntry {
        position: r.try_get("position")?,
        recorded_at_ms: ms(r.try_get("recorded_at")?),
        stream: r.try_get("stream")?,
        event_type: r.try_get("event_type")?,
        machine_id: r.try_get("machine_id")?,
        actor: r.try_get("actor")?,
        summary: r.try_get("summary")?,
    })
}

fn node_task(r: &Row) -> Result<NodeTask, tokio_postgres::Error> {
    let task: String = r.try_get("task")?;
    let state: String = r.try_get("state")?;
    Ok(NodeTask {
        label: crate::status::task_label(&task).to_owned(),
        down: crate::status::TaskState::parse(&state).is_some_and(crate::status::TaskState::is_down),
        task,
        state,
        since_ms: ms(r.try_get("since")?),
        restarts: r.try_get("restarts")?,
        last_error: r.try_get("last_error")?,
        lag_events: r.try_get("lag_events")?,
        updated_at_ms: ms(r.try_get("updated_at")?),
        position: r.try_get("position")?,
    })
}

/// How far each read model has been read.
pub type Cursors = BTreeMap<ReadModel, i64>;

/// How far the projections have got: every read model reflects the log up to `synced`
/// (the slowest projection); the fastest has got to `head`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Progress {
    pub synced: i64,
    pub head: i64,
}

/// How far the projections have got now.
pub async fn progress(client: &Client) -> Result<Progress, ReadError> {
    match client.query_one(include_str!("../sql/progress.sql"), &[]).await {
        Ok(row) => Ok(Progress { synced: row.try_get(0)?, head: row.try_get(1)? }),
        Err(e) if e.code() == Some(&tokio_postgres::error::SqlState::UNDEFINED_TABLE) => Err(ReadError::NotInstalled),
        Err(e) => Err(e.into()),
    }
}

/// Every model version's plant-wide track record.
pub async fn model_track_records(client: &Client) -> Result<Vec<TrackRecord>, ReadError> {
    let rows = client.query(include_str!("../sql/track_of_models.sql"), &[]).await?;
    Ok(rows.iter().map(track_record).collect::<Result<_, _>>()?)
}

/// Every row of `model` changed after `position`, read page by page (outside a
/// snapshot: for tools and checks that look at one table).
pub async fn read_since(client: &Client, model: ReadModel, position: i64) -> Result<Changes, ReadError> {
    let mut changes = Changes::default();
    let mut after: (i64, Option<String>) = (position, None);
    loop {
        let rows = client.query(model.sql(), &[&after.0, &after.1, &PAGE_ROWS]).await?;
        model.push_rows(&rows, &mut changes)?;
        match rows.last() {
            Some(last) if rows.len() as i64 == PAGE_ROWS => {
                after = (last.try_get("position")?, Some(last.try_get("page_key")?));
            }
            _ => return Ok(changes),
        }
    }
}

/// What one catch-up brought: the rows, the cursors they reach, and how far every read
/// model had got (`synced`: the slowest projection) in the snapshot they were read from.
#[derive(Debug, Clone, Default)]
pub struct Fetched {
    pub changes: Changes,
    pub cursors: Cursors,
    pub synced: i64,
    pub head: i64,
}

/// One catch-up, read page by page inside one read-only repeatable-read transaction so
/// every read model is seen at the same instant. Nothing is applied until it finishes:
/// a connection lost half-way leaves the caller's cursors untouched.
pub struct CatchUp<'a> {
    client: &'a Client,
    pending: std::vec::IntoIter<ReadModel>,
    current: Option<ReadModel>,
    after: (i64, Option<String>),
    page_rows: i64,
    fetched: Fetched,
}

impl std::fmt::Debug for CatchUp<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CatchUp").field("current", &self.current).finish_non_exhaustive()
    }
}

impl<'a> CatchUp<'a> {
    /// Opens the snapshot and reads how far the projections have got.
    pub async fn begin(client: &'a Client, cursors: &Cursors, page_rows: i64) -> Result<CatchUp<'a>, ReadError> {
        client.batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY").await?;
        let Progress { synced, head } = match progress(client).await {
            Ok(p) => p,
            Err(e) => {
                let _ = client.batch_execute("ROLLBACK").await;
                return Err(e);
            }
        };
        let fetched = Fetched { synced, head, cursors: cursors.clone(), ..Fetched::default() };
        Ok(CatchUp {
            client,
            pending: ReadModel::ALL.to_vec().into_iter(),
            current: None,
            after: (0, None),
            page_rows: page_rows.max(1),
            fetched,
        })
    }

    /// Reads the next page; `Ok(false)` when every read model has been read.
    pub async fn next_page(&mut self) -> Result<bool, ReadError> {
        let model = match self.current {
            Some(m) => m,
            None => match self.pending.next() {
                Some(m) => {
                    self.current = Some(m);
                    // Everything after the cursor's position: rows at it were read before.
                    self.after = (self.fetched.cursors.get(&m).copied().unwrap_or(0), None);
                    m
                }
                None => return Ok(false),
            },
        };
        let rows = self.client.query(model.sql(), &[&self.after.0, &self.after.1, &self.page_rows]).await?;
        let (count, newest) = model.push_rows(&rows, &mut self.fetched.changes)?;
        if let Some(last) = rows.last() {
            // Pages follow (position, key): many rows share the position of one batch.
            self.after = (last.try_get("position")?, Some(last.try_get("page_key")?));
        }
        if newest > self.fetched.cursors.get(&model).copied().unwrap_or(0) {
            self.fetched.cursors.insert(model, newest);
        }
        if (count as i64) < self.page_rows {
            self.current = None;
        }
        Ok(true)
    }

    /// Reads everything and ends the snapshot.
    pub async fn finish(mut self) -> Result<Fetched, ReadError> {
        while self.next_page().await? {}
        self.client.batch_execute("COMMIT").await?;
        Ok(self.fetched)
    }
}

/// Convenience: one whole catch-up from `cursors`.
pub async fn catch_up(client: &Client, cursors: &Cursors, page_rows: i64) -> Result<Fetched, ReadError> {
    let run = CatchUp::begin(client, cursors, page_rows).await?;
    match run.finish().await {
        Ok(f) => Ok(f),
        Err(e) => {
            let _ = client.batch_execute("ROLLBACK").await;
            Err(e)
        }
    }
}
