//! What the scorer reads and writes: every query of the scorer, apart from the pure
//! feature and prediction code (`plan.rs`). Reads come from the read models (the plant's
//! clock, machines, sensors, hourly aggregates); the one write is the scorer's progress,
//! in the transaction that appends its predictions.

use std::collections::{BTreeMap, HashMap};

use anyhow::Result;
use chrono::{DateTime, Utc};
use eventlog::GenericClient;
use maintenance::SensorHour;

use super::plan::{HourRange, MachineRow};

/// The plant's clock: its newest projected reading.
pub(super) async fn plant_time(client: &impl GenericClient) -> Result<Option<DateTime<Utc>>> {
    Ok(client.query_one(include_str!("../../sql/scorer_plant_time.sql"), &[]).await?.get(0))
}

/// The last tick the scorer `name` scored.
pub(super) async fn last_tick(client: &impl GenericClient, name: &str) -> Result<Option<DateTime<Utc>>> {
    Ok(client.query_opt(include_str!("../../sql/scorer_load_state.sql"), &[&name]).await?.map(|r| r.get(0)))
}

/// Records that `tick` was scored with `version` (in the transaction of its predictions).
pub(super) async fn save_tick(
    client: &impl GenericClient,
    name: &str,
    tick: DateTime<Utc>,
    version: &str,
    predictions: usize,
) -> Result<()> {
    let predictions = i32::try_from(predictions).unwrap_or(i32::MAX);
    client.execute(include_str!("../../sql/scorer_save_state.sql"), &[&name, &tick, &version, &predictions]).await?;
    Ok(())
}

/// Every machine with its type and maintenance state.
pub(super) async fn machines(client: &impl GenericClient) -> Result<Vec<MachineRow>> {
    Ok(client
        .query(include_str!("../../sql/scorer_machines.sql"), &[])
        .await?
        .into_iter()
        .map(|r| MachineRow {
            id: r.get(0),
            machine_type: r.get(1),
            last_performed_at: r.get(2),
            open_order: r.get::<_, Option<String>>(3).is_some(),
            scheduled_for: r.get(4),
        })
        .collect())
}

/// Every machine's sensors as `(sensor id, kind)`.
pub(super) async fn sensors(client: &impl GenericClient) -> Result<HashMap<String, Vec<(u32, String)>>> {
    let mut sensors: HashMap<String, Vec<(u32, String)>> = HashMap::new();
    for r in client.query(include_str!("../../sql/scorer_sensors.sql"), &[]).await? {
        let id: i32 = r.get(0);
        sensors.entry(r.get(1)).or_default().push((id as u32, r.get(2)));
    }
    Ok(sensors)
}

/// Per machine: its first hour with readings at or after `since` and before `until`.
pub(super) async fn first_hours(
    client: &impl GenericClient,
    ids: &[&str],
    since: &[DateTime<Utc>],
    until: DateTime<Utc>,
) -> Result<HashMap<String, DateTime<Utc>>> {
    let mut first = HashMap::new();
    for r in client.query(include_str!("../../sql/scorer_first_hours.sql"), &[&ids, &since, &until]).await? {
        first.insert(r.get(0), r.get(1));
    }
    Ok(first)
}

/// Per machine: its sensors' hourly aggregates in the ranges the features use.
pub(super) async fn hours(
    client: &impl GenericClient,
    ranges: &[HourRange<'_>],
) -> Result<BTreeMap<String, Vec<SensorHour>>> {
    let ids: Vec<&str> = ranges.iter().map(|r| r.machine).collect();
    let first: Vec<DateTime<Utc>> = ranges.iter().map(|r| r.first).collect();
    let baseline_end: Vec<DateTime<Utc>> = ranges.iter().map(|r| r.baseline_end).collect();
    let recent_start: Vec<DateTime<Utc>> = ranges.iter().map(|r| r.recent_start).collect();
    let until: Vec<DateTime<Utc>> = ranges.iter().map(|r| r.until).collect();
    let mut hours: BTreeMap<String, Vec<SensorHour>> = BTreeMap::new();
    for r in client
        .query(include_str!("../../sql/scorer_hours.sql"), &[&ids, &first, &baseline_end, &recent_start, &until])
        .await?
    {
        let hour: DateTime<Utc> = r.get(2);
        hours.entry(r.get(0)).or_default().push(SensorHour {
            sensor: r.get::<_, i32>(1) as u32,
            hour_ms: hour.timestamp_millis(),
            count: i64::from(r.get::<_, i32>(3)),
            min: r.get(4),
            max: r.get(5),
            mean: r.get(6),
        });
    }
    Ok(hours)
}
