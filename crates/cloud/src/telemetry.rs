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
    let written: Vec<(u16, &Round)> =
        rounds.iter().filter(|(_, round)| !round.rows.is_empty()).map(|(plant, round)| (*plant, round)).collect();
    let minutes: Vec<Columns> = written
        .iter()
        .map(|(plant, round)| {
            let rows = round.rows.iter().map(|r| {
                (
                    r.sensor as i32,
                    Aggregate { count: r.count, min: r.min, max: r.max, mean: r.mean, position: round.position },
                )
            });
            Columns::new(*plant, ts(round.minute_ms), rows)
        })
        .collect();
    Columns::upsert(tx, include_str!("../sql/upsert_sensor_minute.sql"), &minutes).await?;
    // Hour and day rows take every minute of their period: combined here, in round order,
    // with the stored row, and written once a batch. Combined by one upsert a round, a
    // batch spanning hours of a backfill updated each row dozens of times in one
    // transaction, every update a new version the readers then walk past.
    let hours = Folded::fold(tx, Period::Hour, &written).await?;
    let days = Folded::fold(tx, Period::Day, &written).await?;
    hours.write(tx).await?;
    days.write(tx).await?;
    for (i, (plant, round)) in written.iter().enumerate() {
        let at = ts(round.minute_ms);
        let p = round.position;
        if let Some(groups) = layouts.get(*plant) {
            for r in &round.rows {
                if let Some(g) = groups.sensor_group(r.sensor) {
                    deltas.add(*plant, g, at, p, Sums { readings: i64::from(r.count), ..Sums::default() });
                }
            }
            // A sensor's first minute in an hour: one more sensor-hour of its group.
            for &sensor in &hours.started[i] {
                if let Some(g) = groups.sensor_group(sensor as u32) {
                    deltas.add(*plant, g, at, p, Sums { sensor_hours: 1, ..Sums::default() });
                }
            }
        }
        let readings: i64 = round.rows.iter().map(|r| i64::from(r.count)).sum();
        status.entry(*plant).or_insert((0, i64::MIN, p)).0 += readings;
    }
    Ok(())
}

/// One row of per-sensor aggregates (a minute, hour or day).
#[derive(Debug, Clone, Copy, PartialEq)]
struct Aggregate {
    count: i32,
    min: f64,
    max: f64,
    mean: f64,
    position: i64,
}

impl Aggregate {
    /// `self` followed by `more`, computed exactly as `sql/upsert_sensor_minute.sql`
    /// combines a stored minute with a late part of it (PostgreSQL's float8 is IEEE
    /// double, as f64; ties keep the stored bound, as `least`/`greatest`), so every row is
    /// one order of combinations however a rebuild groups the log into batches.
    fn then(self, more: Aggregate) -> Aggregate {
        let count = self.count + more.count;
        Aggregate {
            count,
            min: if more.min < self.min { more.min } else { self.min },
            max: if more.max > self.max { more.max } else { self.max },
            mean: (self.mean * f64::from(self.count) + more.mean * f64::from(more.count)) / f64::from(count),
            position: more.position,
        }
    }
}

/// The rows a fold writes: a sensor's hours or its days.
#[derive(Debug, Clone, Copy)]
enum Period {
    Hour,
    Day,
}

impl Period {
    fn start(self, t: DateTime<Utc>) -> DateTime<Utc> {
        match self {
            Period::Hour => hour_of(t),
            Period::Day => day_of(t),
        }
    }

    fn stored(self) -> &'static str {
        match self {
            Period::Hour => include_str!("../sql/sensor_hour_rows.sql"),
            Period::Day => include_str!("../sql/sensor_day_rows.sql"),
        }
    }

    fn upsert(self) -> &'static str {
        match self {
            Period::Hour => include_str!("../sql/upsert_sensor_hour.sql"),
            Period::Day => include_str!("../sql/upsert_sensor_day.sql"),
        }
    }
}

/// The hour or day rows a batch's rounds touch, each folded from its stored value and
/// every minute of the batch in round order.
struct Folded {
    period: Period,
    rows: BTreeMap<(u16, DateTime<Utc>), BTreeMap<i32, Aggregate>>,
    /// For each round, the sensors whose row it started (none was stored or folded before).
    started: Vec<Vec<i32>>,
}

impl Folded {
    async fn fold(tx: &Transaction<'_>, period: Period, rounds: &[(u16, &Round)]) -> Result<Folded> {
        // The sensors each row key needs, to read only their stored rows.
        let mut wanted: BTreeMap<(u16, DateTime<Utc>), Vec<i32>> = BTreeMap::new();
        for (plant, round) in rounds {
            let ids = wanted.entry((*plant, period.start(ts(round.minute_ms)))).or_default();
            ids.extend(round.rows.iter().map(|r| r.sensor as i32));
        }
        for ids in wanted.values_mut() {
            ids.sort_unstable();
            ids.dedup();
        }
        let stored = tx.prepare_cached(period.stored()).await?;
        let reads = wanted.iter().map(|((plant, start), ids)| {
            let plant = *plant as i16;
            let stored = &stored;
            async move { tx.query(stored, &[&plant, start, ids]).await }
        });
        let answers = futures_util::future::try_join_all(reads).await?;
        let mut rows: BTreeMap<(u16, DateTime<Utc>), BTreeMap<i32, Aggregate>> = BTreeMap::new();
        for (key, answer) in wanted.keys().zip(answers) {
            let sensors = rows.entry(*key).or_default();
            for row in answer {
                let aggregate = Aggregate {
                    count: row.get(1),
                    min: row.get(2),
                    max: row.get(3),
                    mean: row.get(4),
                    position: row.get(5),
                };
                sensors.insert(row.get(0), aggregate);
            }
        }
        let mut started = Vec::with_capacity(rounds.len());
        for (plant, round) in rounds {
            let mut new = Vec::new();
            let sensors = rows.entry((*plant, period.start(ts(round.minute_ms)))).or_default();
            for r in &round.rows {
                let minute =
                    Aggregate { count: r.count, min: r.min, max: r.max, mean: r.mean, position: round.position };
                let sensor = r.sensor as i32;
                let combined = match sensors.get(&sensor) {
                    Some(row) => row.then(minute),
                    None => {
                        new.push(sensor);
                        minute
                    }
                };
                sensors.insert(sensor, combined);
            }
            started.push(new);
        }
        Ok(Folded { period, rows, started })
    }

    async fn write(&self, tx: &Transaction<'_>) -> Result<()> {
        let columns: Vec<Columns> = self
            .rows
            .iter()
            .map(|((plant, start), sensors)| Columns::new(*plant, *start, sensors.iter().map(|(id, a)| (*id, *a))))
            .collect();
        Columns::upsert(tx, self.period.upsert(), &columns).await
    }
}

/// One plant's aggregate rows of one minute, hour or day, as the upserts take them:
/// `$1` plant, then arrays of `$2` sensors, `$3` period starts, `$4` counts, `$5` minimums,
/// `$6` maximums, `$7` means and `$8` log positions.
struct Columns {
    plant: i16,
    ids: Vec<i32>,
    starts: Vec<DateTime<Utc>>,
    counts: Vec<i32>,
    mins: Vec<f64>,
    maxs: Vec<f64>,
    means: Vec<f64>,
    positions: Vec<i64>,
}

impl Columns {
    fn new(plant: u16, start: DateTime<Utc>, rows: impl Iterator<Item = (i32, Aggregate)>) -> Columns {
        let mut c = Columns {
            plant: plant as i16,
            ids: Vec::new(),
            starts: Vec::new(),
            counts: Vec::new(),
            mins: Vec::new(),
            maxs: Vec::new(),
            means: Vec::new(),
            positions: Vec::new(),
        };
        for (id, a) in rows {
            c.ids.push(id);
            c.starts.push(start);
            c.counts.push(a.count);
            c.mins.push(a.min);
            c.maxs.push(a.max);
            c.means.push(a.mean);
            c.positions.push(a.position);
        }
        c
    }

    /// Runs `statement` for each of `columns`, pipelined in their order.
    async fn upsert(tx: &Transaction<'_>, statement: &str, columns: &[Columns]) -> Result<()> {
        let upsert = &tx.prepare_cached(statement).await?;
        let writes = columns.iter().map(|c| async move {
            tx.execute(upsert, &[&c.plant, &c.ids, &c.starts, &c.counts, &c.mins, &c.maxs, &c.means, &c.positions])
                .await
        });
        futures_util::future::try_join_all(writes).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::Aggregate;

    #[test]
    fn a_row_combines_as_the_upserts_do() {
        let a = Aggregate { count: 3, min: 1.0, max: 4.0, mean: 2.5, position: 7 };
        let b = Aggregate { count: 1, min: 0.5, max: 4.0, mean: 0.1, position: 9 };
        let c = a.then(b);
        assert_eq!(c.count, 4);
        assert_eq!((c.min, c.max, c.position), (0.5, 4.0, 9));
        assert_eq!(c.mean.to_bits(), ((2.5 * 3.0 + 0.1 * 1.0) / 4.0_f64).to_bits());
        // Ties keep the stored bound (-0.0 and 0.0 compare equal, as in PostgreSQL).
        let z = Aggregate { count: 1, min: -0.0, max: -0.0, mean: 0.0, position: 1 };
        let w = Aggregate { count: 1, min: 0.0, max: 0.0, mean: 0.0, position: 2 };
        assert!(z.then(w).min.is_sign_negative() && z.then(w).max.is_sign_negative());
    }
}
