//! Training across plants: the maintenance model trained on every plant's history as
//! the cloud holds it, registered with its metrics in the cloud's registry
//! (`cloud.models`), and published to the plants.
//!
//! The history is built from the cloud's read models exactly as a recording is
//! (`factory_history`): each machine's hourly rows through `maintenance::FactoryColumns`
//! over the `sensor_hour` aggregates — the rows the plants' scorers compute — and its
//! stops from the maintenance history (failures, planned services, completions).
//!
//! Publishing is a pull over the forwarding link: each plant's forwarder asks for the
//! active model (`GET /v1/ingest/plants/{plant}/models/active`) and registers it in its
//! plant's registry, so a plant keeps scoring with the model it has while the cloud is
//! away.

use std::collections::BTreeMap;

use anyhow::{Context, Result};
use axum::Json;
use axum::extract::{Path, State};
use chrono::{DateTime, Utc};
use eventlog::Database;
use factory_history::{FactoryHistory, FactoryTrainOptions, FactoryTrainReport, MachineHistory, Stop, StopKind};
use futures_util::{TryStreamExt, pin_mut};
use maintenance::{FactoryColumns, MachineSchema, Model, SensorHour};
use serde_json::Value;

use crate::api::error::ApiError;
use crate::api::params::plant_number;
use crate::api::{ApiState, Caller};

/// Reads every machine's history of `plants` (all when `None`) from the cloud's read models.
pub async fn history(db: &Database, plants: Option<&[u16]>) -> Result<FactoryHistory> {
    let client = db.client().await?;
    let keys: Option<Vec<i16>> = plants.map(|p| p.iter().map(|&n| n as i16).collect());
    // (plant, machine) → (machine type, its sensors' ids and kinds)
    type Machines = BTreeMap<(i16, String), (String, Vec<(u32, String)>)>;
    let mut by_machine: Machines = BTreeMap::new();
    for r in client.query(include_str!("../sql/train_machines.sql"), &[&keys]).await? {
        let entry = by_machine.entry((r.get(0), r.get(1))).or_insert_with(|| (r.get(2), Vec::new()));
        entry.1.push((r.get::<_, i32>(3) as u32, r.get(4)));
    }
    anyhow::ensure!(!by_machine.is_empty(), "the cloud holds no plant layout to train on");
    let mut machines = Vec::with_capacity(by_machine.len());
    let mut index: BTreeMap<(i16, String), usize> = BTreeMap::new();
    for ((plant, id), (machine_type, sensors)) in by_machine {
        let schema = MachineSchema::new(&machine_type, sensors.iter().map(|(s, k)| (*s, k.as_str())))
            .with_context(|| format!("machine {id}"))?;
        index.insert((plant, id.clone()), machines.len());
        machines.push(MachineHistory { id, schema, hours: Vec::new(), rows: Vec::new(), stops: Vec::new() });
    }
    let columns = FactoryColumns::of_machines(machines.iter().map(|m| &m.schema));
    let mut history =
        FactoryHistory { columns, machines, start_ms: i64::MAX, end_ms: i64::MIN, readings: 0, readings_ignored: 0 };
    let plant_list: Vec<i16> =
        index.keys().map(|(p, _)| *p).collect::<std::collections::BTreeSet<_>>().into_iter().collect();
    for plant in plant_list {
        let stream = client
            .query_raw(include_str!("../sql/train_hours.sql"), &[&plant])
            .await
            .context("reading the plants' sensor hours")?;
        pin_mut!(stream);
        let mut current: Option<(usize, i64)> = None;
        let mut hours: Vec<SensorHour> = Vec::new();
        let flush = |history: &mut FactoryHistory, key: Option<(usize, i64)>, hours: &mut Vec<SensorHour>| {
            if let Some((m, hour)) = key
                && !hours.is_empty()
            {
                let row = history.columns.row(&history.machines[m].schema, hours);
                history.machines[m].hours.push(hour);
                history.machines[m].rows.push(row);
                history.start_ms = history.start_ms.min(hour);
                history.end_ms = history.end_ms.max(hour + maintenance::HOUR_MS);
            }
            hours.clear();
        };
        while let Some(r) = stream.try_next().await? {
            let machine: String = r.get(0);
            let Some(&m) = index.get(&(plant, machine)) else { continue };
            let hour: DateTime<Utc> = r.get(2);
            let key = (m, hour.timestamp_millis());
            if current != Some(key) {
                flush(&mut history, current, &mut hours);
                current = Some(key);
            }
            let count = i64::from(r.get::<_, i32>(3));
            history.readings += count as u64;
            hours.push(SensorHour {
                sensor: r.get::<_, i32>(1) as u32,
                hour_ms: key.1,
                count,
                min: r.get(4),
                max: r.get(5),
                mean: r.get(6),
            });
        }
        flush(&mut history, current, &mut hours);
    }
    anyhow::ensure!(history.start_ms < history.end_ms, "the cloud holds no sensor history to train on");
    for r in client.query(include_str!("../sql/train_stops.sql"), &[&keys]).await? {
        let Some(&m) = index.get(&(r.get::<_, i16>(0), r.get::<_, String>(1))) else { continue };
        let kind: String = r.get(2);
        let state: String = r.get(3);
        let stops = &mut history.machines[m].stops;
        if kind == "failure" {
            let at: DateTime<Utc> = r.get(4);
            stops.push(Stop { ts_ms: at.timestamp_millis(), kind: StopKind::Failed });
            continue;
        }
        if kind == "planned"
            && let Some(at) = r.get::<_, Option<DateTime<Utc>>>(5)
        {
            stops.push(Stop { ts_ms: at.timestamp_millis(), kind: StopKind::ServiceStarted });
        }
        if state == "performed"
            && let Some(at) = r.get::<_, Option<DateTime<Utc>>>(6)
        {
            stops.push(Stop { ts_ms: at.timestamp_millis(), kind: StopKind::Completed });
        }
    }
    for m in &mut history.machines {
        m.stops.sort_by_key(|s| s.ts_ms);
    }
    Ok(history)
}

/// Trains on every plant's history and registers the model (active when `activate`).
pub async fn train(
    db: &Database,
    plants: Option<&[u16]>,
    options: FactoryTrainOptions,
    activate: bool,
) -> Result<(Model, FactoryTrainReport)> {
    let history = history(db, plants).await?;
    let (model, report) = tokio::task::spawn_blocking(move || factory_history::train_on_history(&history, &options))
        .await
        .context("training task")??;
    let report_json = serde_json::to_value(&report)?;
    register(db, &model, Some(report_json), activate).await?;
    Ok((model, report))
}

/// Registers a model in the cloud's registry (a version already there stays as it is)
/// and, if asked, makes it the one published to the plants. Returns its version.
pub async fn register(db: &Database, model: &Model, report: Option<Value>, activate: bool) -> Result<String> {
    let json = model.to_json()?;
    let version = maintenance::version_of_json(&json);
    let created_at = DateTime::from_timestamp_millis(model.training().created_at_ms).unwrap_or_default();
    let metrics = serde_json::json!({
        "validation": model.metrics(),
        "interval_level": model.interval().level,
        "rul_cap": model.target().rul_cap,
        "time_unit": model.target().time_unit,
        "training_units": model.training().units,
        "training_rows": model.training().rows,
        "report": report,
    });
    let mut client = db.client().await?;
    let tx = client.transaction().await?;
    tx.execute(include_str!("../sql/register_model.sql"), &[&version, &created_at, &metrics, &json]).await?;
    if activate {
        tx.execute(include_str!("../sql/deactivate_models.sql"), &[&version]).await?;
        tx.execute(include_str!("../sql/activate_model.sql"), &[&version]).await?;
    }
    tx.commit().await?;
    Ok(version)
}

/// The model published to the plants (the forwarding link's message).
pub use forwarder::wire::PublishedModel as Published;

pub async fn active(db: &Database) -> Result<Option<Published>> {
    let client = db.client().await?;
    let row = client.query_opt(include_str!("../sql/active_model.sql"), &[]).await?;
    Ok(row.map(|r| Published { version: r.get(0), metrics: r.get(1), model: r.get(2) }))
}

/// `GET /v1/ingest/plants/{plant}/models/active`: what a plant's forwarder fetches.
pub async fn active_for_plant(
    State(s): State<ApiState>,
    caller: Caller,
    Path(plant): Path<String>,
) -> Result<Json<Published>, ApiError> {
    let plant = plant_number(&plant)?;
    caller.forward(plant)?;
    active(&s.db).await?.map(Json).ok_or_else(|| ApiError::not_found("no model is active in the cloud's registry"))
}
