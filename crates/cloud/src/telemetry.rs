//! The telemetry projection: every plant's readings into per-sensor minute, hour and day
//! aggregates, and the readings and sensor availability of each KPI group.
//!
//! Each plant has its own fold (`readmodels::history::HistoryModel`, the plant's own):
//! a minute is written once its plant's clock has passed its end plus a grace period, so
//! one plant catching up on a backlog never makes another's readings look late. A minute
//! row is combined into its hour and day rows in the same order in the live run and in a
//! rebuild, so both give the same values to the last bit; a sensor's first minute in an
//! hour adds one sensor-hour to its group (sensor availability).
//!
//! Minutes waiting in memory are covered by the durable checkpoint, as at the plant: after
//! a restart the events after it are read again, and readings already in a stored minute
//! row are skipped.

use std::collections::{BTreeMap, HashMap};

use anyhow::{Context, Result};
use chrono::{DateTime, NaiveDate, Utc};
use eventlog::{Handler, Payload, RecordedEvent, Transaction};
use readmodels::history::{HistoryModel, Round};
use serde_json::{Map, Value};

use crate::kpi::{Deltas, Sums, day_of, hour_of};
use crate::layouts::{LayoutChange, Layouts};

/// A plant from which nothing has arrived for this long (the cloud's time of arrival) has
/// its open minutes written anyway: a plant whose link is down must not hold the durable
/// checkpoint (and with it the cloud's telemetry retention) back. A plant catching up on a
/// backlog keeps sending, so its minutes are written whole, as usual.
const STALLED_PLANT_MS: i64 = 10 * 60_000;

/// Name of the telemetry projection (its checkpoint and its row in `cloud.projections`).
pub const TELEMETRY: &str = "cloud-telemetry";

/// The telemetry projection of the cloud's log.
#[derive(Debug)]
pub struct TelemetryProjection {
    grace_ms: i64,
    models: BTreeMap<u16, HistoryModel>,
    /// When the cloud stored each plant's newest telemetry batch (ms).
    arrived: BTreeMap<u16, i64>,
    layouts: Layouts,
}

impl TelemetryProjection {
    pub fn new(grace_ms: i64) -> Self {
        TelemetryProjection { grace_ms, models: BTreeMap::new(), arrived: BTreeMap::new(), layouts: Layouts::default() }
    }

    fn memory(&self) -> Value {
        Value::Object(
            self.models
                .iter()
                .map(|(p, m)| {
                    let arrived = self.arrived.get(p).copied().unwrap_or(i64::MIN);
                    (p.to_string(), serde_json::json!({ "history": m.memory(), "arrived_ms": arrived }))
                })
                .collect::<Map<_, _>>(),
        )
    }
}

fn ts(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

impl Handler for TelemetryProjection {
    async fn load(&mut self, tx: &Transaction<'_>) -> Result<()> {
        let checkpoint = eventlog::checkpoint(tx, TELEMETRY).await?;
        let memory: Value = tx
            .query_opt(include_str!("../sql/load_projection.sql"), &[&TELEMETRY])
            .await?
            .map_or(Value::Null, |r| r.get(1));
        let mut stored: BTreeMap<u16, HashMap<(u32, i64), i64>> = BTreeMap::new();
        for row in tx.query(include_str!("../sql/minute_rows_after.sql"), &[&checkpoint]).await? {
            let plant: i16 = row.get(0);
            let sensor: i32 = row.get(1);
            let minute: DateTime<Utc> = row.get(2);
            stored
                .entry(plant as u16)
                .or_default()
                .insert((sensor as u32, minute.timestamp_millis()), row.get::<_, i64>(3));
        }
        let mut models = BTreeMap::new();
        let mut arrived = BTreeMap::new();
        // Each plant once: its memory and its stored rows go to one model.
        let plants: std::collections::BTreeSet<u16> = memory
            .as_object()
            .into_iter()
            .flat_map(|m| m.keys())
            .filter_map(|k| k.parse().ok())
            .chain(stored.keys().copied())
            .collect();
        for plant in plants {
            let mine = &memory[plant.to_string()];
            let mut model = HistoryModel::new(self.grace_ms);
            model.restore(&mine["history"], stored.remove(&plant).unwrap_or_default());
            models.insert(plant, model);
            if let Some(ms) = mine["arrived_ms"].as_i64() {
                arrived.insert(plant, ms);
            }
        }
        self.models = models;
        self.arrived = arrived;
        self.layouts = Layouts::load(tx, checkpoint).await.context("loading the plants' layouts")?;
        Ok(())
    }

    async fn apply(&mut self, tx: &Transaction<'_>, events: &[RecordedEvent]) -> Result<()> {
        let mut rounds: Vec<(u16, Round)> = Vec::new();
        let mut status: BTreeMap<u16, (i64, i64, i64)> = BTreeMap::new();
        for e in events {
            let Some(origin) = e.origin else { continue };
            let plant = origin.plant;
            if let Some(LayoutChange::Refused(reason)) = self.layouts.apply(plant, e) {
                tracing::warn!(plant, position = e.position, reason, "layout left out of the cloud's read models");
            }
            if let Payload::Telemetry { .. } = e.payload {
                let model = self.models.entry(plant).or_insert_with(|| HistoryModel::new(self.grace_ms));
                model.apply(e);
                let now = e.recorded_at.timestamp_millis();
                self.arrived.insert(plant, now);
                let entry = status.entry(plant).or_insert((0, i64::MIN, e.position));
                entry.2 = entry.2.max(e.position);
                for (position, reason) in model.unreadable.drain(..) {
                    tracing::warn!(plant, position, reason, "telemetry batch left out of the cloud's read models");
                }
                for (&p, m) in &mut self.models {
                    let quiet = self.arrived.get(&p).is_none_or(|&t| now.saturating_sub(t) >= STALLED_PLANT_MS);
                    if p != plant && quiet {
                        m.close_before(e.position, i64::MAX);
                    }
                    rounds.extend(m.take_rounds().into_iter().map(|r| (p, r)));
                }
            }
        }
        let mut deltas = Deltas::default();
        write_rounds(tx, &self.layouts, &rounds, &mut deltas, &mut status).await?;
        for (plant, entry) in status.iter_mut() {
            // The plant's clock: its newest reading so far.
            entry.1 = self.models.get(plant).map_or(i64::MIN, HistoryModel::watermark);
        }
        deltas.write(tx).await?;
        if !status.is_empty() {
            let plants: Vec<i16> = status.keys().map(|p| *p as i16).collect();
            let readings: Vec<i64> = status.values().map(|s| s.0).collect();
            let newest: Vec<Option<DateTime<Utc>>> =
                status.values().map(|s| (s.1 != i64::MIN).then(|| ts(s.1))).collect();
            let positions: Vec<i64> = status.values().map(|s| s.2).collect();
            tx.execute(include_str!("../sql/upsert_plant_status.sql"), &[&plants, &readings, &newest, &positions])
                .await?;
        }
        let last = events.last().map_or(0, |e| e.position);
        tx.execute(include_str!("../sql/save_projection.sql"), &[&TELEMETRY, &last, &self.memory()]).await?;
        if !rounds.is_empty() {
            tx.query(include_str!("../sql/notify.sql"), &[&last.to_string()]).await?;
        }
        Ok(())
    }

    fn durable_position(&self, last: i64) -> i64 {
        self.models.values().map(|m| m.durable_position(last)).min().unwrap_or(last)
    }
}

/// Writes each round (one plant's minute: no sensor twice) in order: the minute rows,
/// then their hour and day rows, so values combine in the same order every time.
///
/// The statements go to the server pipelined (sent in order without waiting for each
/// answer; it runs them in that order): a batch of a backfill holds a round for every
/// minute of it, and a round trip each would keep the transaction, and with it the
/// cloud log's telemetry table, open for that long.
async fn write_rounds(
    tx: &Transaction<'_>,
    layouts: &Layouts,
    rounds: &[(u16, Round)],
    deltas: &mut Deltas,
    status: &mut BTreeMap<u16, (i64, i64, i64)>,
) -> Result<()> {
    let mut days: Vec<NaiveDate> = rounds.iter().map(|(_, r)| ts(r.minute_ms).date_naive()).collect();
    days.sort();
    days.dedup();
    if !days.is_empty() {
        tx.query(include_str!("../sql/ensure_minute_partitions.sql"), &[&days]).await?;
    }
    let minute = tx.prepare_cached(include_str!("../sql/upsert_sensor_minute.sql")).await?;
    let hour = tx.prepare_cached(include_str!("../sql/upsert_sensor_hour.sql")).await?;
    let day = tx.prepare_cached(include_str!("../sql/upsert_sensor_day.sql")).await?;
    struct Columns {
        plant: i16,
        sensors: Vec<i32>,
        counts: Vec<i32>,
        mins: Vec<f64>,
        maxs: Vec<f64>,
        means: Vec<f64>,
        minutes: Vec<DateTime<Utc>>,
        hours: Vec<DateTime<Utc>>,
        days: Vec<DateTime<Utc>>,
        position: i64,
    }
    let written: Vec<(u16, &Round, Columns)> = rounds
        .iter()
        .filter(|(_, round)| !round.rows.is_empty())
        .map(|(plant, round)| {
            let n = round.rows.len();
            let at = ts(round.minute_ms);
            let columns = Columns {
                plant: *plant as i16,
                sensors: round.rows.iter().map(|r| r.sensor as i32).collect(),
                counts: round.rows.iter().map(|r| r.count).collect(),
                mins: round.rows.iter().map(|r| r.min).collect(),
                maxs: round.rows.iter().map(|r| r.max).collect(),
                means: round.rows.iter().map(|r| r.mean).collect(),
                minutes: vec![at; n],
                hours: vec![hour_of(at); n],
                days: vec![day_of(at); n],
                position: round.position,
            };
            (*plant, round, columns)
        })
        .collect();
    type Params<'a> = [&'a (dyn tokio_postgres::types::ToSql + Sync); 8];
    fn params(c: &Columns, t: usize) -> Params<'_> {
        let times = match t {
            0 => &c.minutes,
            1 => &c.days,
            _ => &c.hours,
        };
        [&c.plant, &c.sensors, times, &c.counts, &c.mins, &c.maxs, &c.means, &c.position]
    }
    let by_round: Vec<[Params<'_>; 3]> =
        written.iter().map(|(_, _, c)| [params(c, 0), params(c, 1), params(c, 2)]).collect();
    let mut minute_and_day = Vec::with_capacity(written.len() * 2);
    let mut hours = Vec::with_capacity(written.len());
    for [m, d, h] in &by_round {
        minute_and_day.push(tx.execute(&minute, m));
        minute_and_day.push(tx.execute(&day, d));
        hours.push(tx.query(&hour, h));
    }
    // Polled in the order pushed: each round's minute and day rows, then the hour rows of
    // every round in order (a sensor's hour row combines its minutes in order either way).
    let (written_rows, inserted) = futures_util::future::join(
        futures_util::future::try_join_all(minute_and_day),
        futures_util::future::try_join_all(hours),
    )
    .await;
    written_rows?;
    let inserted = inserted?;
    for ((plant, round, c), inserted) in written.iter().zip(inserted) {
        let at = ts(round.minute_ms);
        let p = c.position;
        if let Some(groups) = layouts.get(*plant) {
            for r in &round.rows {
                if let Some(g) = groups.sensor_group(r.sensor) {
                    deltas.add(*plant, g, at, p, Sums { readings: i64::from(r.count), ..Sums::default() });
                }
            }
            for row in inserted {
                let (sensor, new): (i32, bool) = (row.get(0), row.get(1));
                if new && let Some(g) = groups.sensor_group(sensor as u32) {
                    deltas.add(*plant, g, at, p, Sums { sensor_hours: 1, ..Sums::default() });
                }
            }
        }
        let readings: i64 = round.rows.iter().map(|r| i64::from(r.count)).sum();
        status.entry(*plant).or_insert((0, i64::MIN, p)).0 += readings;
    }
    Ok(())
}
