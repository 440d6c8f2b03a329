//! The history projection: raw readings per sensor per minute (compact chunks), and
//! per-minute and per-hour aggregates.
//!
//! A minute is kept in memory until the plant's clock (its newest reading) is past the
//! minute's end plus a grace period, then written once: one row per sensor, far cheaper
//! than a row per reading and never rewritten every second. A reading that arrives after
//! its minute was written is appended as a late chunk at once.
//!
//! Because some effects wait in memory, the stored checkpoint is the position before the
//! oldest event that still has unwritten readings ([`Handler::durable_position`]). After a
//! restart those events are read again; readings already in a stored row are skipped (a
//! row's `position` is the event after which it was written, and every event up to it
//! that had readings for that sensor and minute is in the row). Write decisions are made
//! per event, so a rebuild writes exactly the same rows as the live run.

use std::collections::{BTreeMap, HashMap};

use anyhow::Result;
use chrono::{DateTime, NaiveDate, Utc};
use eventlog::{Handler, Payload, RecordedEvent, Transaction};
use serde_json::{Value, json};

/// Name of the history projection.
pub const HISTORY: &str = "readmodel-history";

const MINUTE_MS: i64 = 60_000;
const HOUR_MS: i64 = 3_600_000;

/// One sensor-minute to write.
#[derive(Debug, Clone, PartialEq)]
pub struct MinuteRow {
    pub sensor: u32,
    pub minute_ms: i64,
    pub chunk: Vec<u8>,
    pub count: i32,
    pub min: f64,
    pub max: f64,
    pub mean: f64,
}

/// Rows written together: no sensor appears twice, and all are from one minute, so the
/// per-hour aggregate is combined exactly once per round, in the same order every time.
#[derive(Debug, Clone, PartialEq)]
pub struct Round {
    pub position: i64,
    pub minute_ms: i64,
    pub rows: Vec<MinuteRow>,
}

#[derive(Debug, Default)]
struct OpenMinute {
    by_sensor: BTreeMap<u32, Vec<(i64, f64)>>,
    first_position: i64,
}

/// The fold.
#[derive(Debug)]
pub struct HistoryModel {
    /// How long after a minute's end its readings may still arrive before it is written.
    pub grace_ms: i64,
    open: BTreeMap<i64, OpenMinute>,
    /// Minutes before this (ms) have been written.
    flushed_through: i64,
    watermark: i64,
    /// After a restart: (sensor, minute) → position of the stored row, for rows written
    /// after the durable checkpoint.
    stored: HashMap<(u32, i64), i64>,
    out: Vec<Round>,
    pub unreadable: Vec<(i64, String)>,
}

impl HistoryModel {
    pub fn new(grace_ms: i64) -> Self {
        HistoryModel {
            grace_ms,
            open: BTreeMap::new(),
            flushed_through: i64::MIN,
            watermark: i64::MIN,
            stored: HashMap::new(),
            out: Vec::new(),
            unreadable: Vec::new(),
        }
    }

    pub fn apply(&mut self, e: &RecordedEvent) {
        if !matches!(e.payload, Payload::Telemetry { .. }) {
            return;
        }
        match e.readings() {
            Ok(readings) => self.readings(e.position, &readings),
            Err(err) => self.unreadable.push((e.position, err.to_string())),
        }
    }

    fn readings(&mut self, position: i64, readings: &[telemetry::Reading]) {
        let mut late: BTreeMap<i64, BTreeMap<u32, Vec<(i64, f64)>>> = BTreeMap::new();
        for r in readings {
            let minute = r.ts_ms.div_euclid(MINUTE_MS) * MINUTE_MS;
            if self.stored.get(&(r.sensor, minute)).is_some_and(|&p| p >= position) {
                continue; // already in a stored row
            }
            self.watermark = self.watermark.max(r.ts_ms);
            if minute < self.flushed_through && !self.open.contains_key(&minute) {
                late.entry(minute).or_default().entry(r.sensor).or_default().push((r.ts_ms, r.value));
            } else {
                let m = self
                    .open
                    .entry(minute)
                    .or_insert_with(|| OpenMinute { first_position: position, ..Default::default() });
                m.by_sensor.entry(r.sensor).or_default().push((r.ts_ms, r.value));
            }
        }
        for (minute, by_sensor) in late {
            self.emit(position, minute, by_sensor);
        }
        while let Some((&minute, _)) = self.open.first_key_value() {
            if minute.saturating_add(MINUTE_MS).saturating_add(self.grace_ms) > self.watermark {
                break;
            }
            let m = self.open.remove(&minute).expect("first key exists");
            self.flushed_through = self.flushed_through.max(minute + MINUTE_MS);
            self.emit(position, minute, m.by_sensor);
        }
    }

    fn emit(&mut self, position: i64, minute_ms: i64, by_sensor: BTreeMap<u32, Vec<(i64, f64)>>) {
        let rows = by_sensor
            .into_iter()
            .filter_map(|(sensor, points)| {
                let chunk = telemetry::history::encode_chunk(&points).ok()?;
                let (min, max, sum) = points.iter().fold((f64::INFINITY, f64::NEG_INFINITY, 0.0), |(lo, hi, s), p| {
                    (lo.min(p.1), hi.max(p.1), s + p.1)
                });
                let count = points.len() as i32;
                Some(MinuteRow { sensor, minute_ms, chunk, count, min, max, mean: sum / f64::from(count) })
            })
            .collect();
        self.out.push(Round { position, minute_ms, rows });
    }

    /// Writes every open minute that ended by `until_ms`, as of the event at `position`:
    /// for a reader of several plants' logs, a plant that went quiet must not hold its
    /// last minutes (and with them the durable checkpoint) open for ever. Readings that
    /// arrive for them later are appended as late chunks.
    pub fn close_before(&mut self, position: i64, until_ms: i64) {
        while let Some((&minute, _)) = self.open.first_key_value() {
            if minute.saturating_add(MINUTE_MS) > until_ms {
                break;
            }
            let m = self.open.remove(&minute).expect("first key exists");
            self.flushed_through = self.flushed_through.max(minute + MINUTE_MS);
            self.emit(position, minute, m.by_sensor);
        }
    }

    /// The newest reading's time seen so far (ms).
    pub fn watermark(&self) -> i64 {
        self.watermark
    }

    pub fn take_rounds(&mut self) -> Vec<Round> {
        std::mem::take(&mut self.out)
    }

    /// Position before the oldest event with readings still in memory.
    pub fn durable_position(&self, last: i64) -> i64 {
        self.open.values().map(|m| m.first_position - 1).min().map_or(last, |p| p.min(last))
    }

    /// Readings waiting in memory.
    pub fn buffered(&self) -> usize {
        self.open.values().flat_map(|m| m.by_sensor.values()).map(Vec::len).sum()
    }

    /// What must survive a restart besides the stored rows (see [`HistoryModel::restore`]).
    pub fn memory(&self) -> Value {
        json!({ "flushed_through": self.flushed_through, "watermark": self.watermark })
    }

    /// Resumes from `memory` and the rows stored after the durable checkpoint:
    /// (sensor, minute ms) → the position the row was written at.
    pub fn restore(&mut self, memory: &Value, stored: HashMap<(u32, i64), i64>) {
        self.flushed_through = memory.get("flushed_through").and_then(Value::as_i64).unwrap_or(i64::MIN);
        self.watermark = memory.get("watermark").and_then(Value::as_i64).unwrap_or(i64::MIN);
        self.stored = stored;
    }
}

/// The history projection of one plant's log.
#[derive(Debug)]
pub struct HistoryProjection {
    pub model: HistoryModel,
}

impl HistoryProjection {
    pub fn new(grace_ms: i64) -> Self {
        HistoryProjection { model: HistoryModel::new(grace_ms) }
    }
}

fn ts(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

impl Handler for HistoryProjection {
    async fn load(&mut self, tx: &Transaction<'_>) -> Result<()> {
        let mut model = HistoryModel::new(self.model.grace_ms);
        let checkpoint = eventlog::checkpoint(tx, HISTORY).await?;
        let memory: Value = tx
            .query_opt(include_str!("../sql/load_projection.sql"), &[&HISTORY])
            .await?
            .map_or(Value::Null, |r| r.get(1));
        let mut stored = HashMap::new();
        for row in tx.query(include_str!("../sql/history_rows_after.sql"), &[&checkpoint]).await? {
            let sensor: i32 = row.get(0);
            let minute: DateTime<Utc> = row.get(1);
            stored.insert((sensor as u32, minute.timestamp_millis()), row.get::<_, i64>(2));
        }
        model.restore(&memory, stored);
        self.model = model;
        Ok(())
    }

    async fn apply(&mut self, tx: &Transaction<'_>, events: &[RecordedEvent]) -> Result<()> {
        for e in events {
            self.model.apply(e);
        }
        for (position, reason) in self.model.unreadable.drain(..) {
            tracing::error!(position, reason, "a telemetry batch could not be read and is left out of the history");
        }
        let rounds = self.model.take_rounds();
        let mut days: Vec<NaiveDate> = rounds.iter().map(|r| ts(r.minute_ms).date_naive()).collect();
        days.sort();
        days.dedup();
        if !days.is_empty() {
            for table in ["sensor_history", "sensor_minute"] {
                tx.query(include_str!("../sql/ensure_day_partitions.sql"), &[&table, &days]).await?;
            }
        }
        let history = tx.prepare_cached(include_str!("../sql/upsert_history.sql")).await?;
        let minute = tx.prepare_cached(include_str!("../sql/upsert_minute.sql")).await?;
        let hour = tx.prepare_cached(include_str!("../sql/upsert_hour.sql")).await?;
        for round in &rounds {
            let n = round.rows.len();
            let sensors: Vec<i32> = round.rows.iter().map(|r| r.sensor as i32).collect();
            let minutes = vec![ts(round.minute_ms); n];
            let hours = vec![ts(round.minute_ms.div_euclid(HOUR_MS) * HOUR_MS); n];
            let chunks: Vec<&[u8]> = round.rows.iter().map(|r| r.chunk.as_slice()).collect();
            let counts: Vec<i32> = round.rows.iter().map(|r| r.count).collect();
            let mins: Vec<f64> = round.rows.iter().map(|r| r.min).collect();
            let maxs: Vec<f64> = round.rows.iter().map(|r| r.max).collect();
            let means: Vec<f64> = round.rows.iter().map(|r| r.mean).collect();
            let positions = vec![round.position; n];
            tx.execute(&history, &[&sensors, &minutes, &chunks, &positions]).await?;
            tx.execute(&minute, &[&sensors, &minutes, &counts, &mins, &maxs, &means, &positions]).await?;
            tx.execute(&hour, &[&sensors, &hours, &counts, &mins, &maxs, &means, &positions]).await?;
        }
        let last = events.last().map_or(0, |e| e.position);
        tx.execute(include_str!("../sql/save_projection.sql"), &[&HISTORY, &last, &self.model.memory()]).await?;
        if !rounds.is_empty() {
            tx.query(include_str!("../sql/notify.sql"), &[&last.to_string()]).await?;
        }
        Ok(())
    }

    fn durable_position(&self, last: i64) -> i64 {
        self.model.durable_position(last)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use eventlog::{Metadata, StreamName};
    use telemetry::Reading;

    const T0: i64 = 1_772_366_400_000; // a whole minute

    fn batch(position: i64, readings: &[Reading]) -> RecordedEvent {
        RecordedEvent {
            position,
            stream: StreamName::new("readings-P1-L01").unwrap(),
            version: position as u64,
            event_type: eventlog::READINGS_RECORDED.into(),
            schema_version: 1,
            payload: Payload::Telemetry {
                bytes: telemetry::encode(readings).unwrap(),
                occurred_at: DateTime::from_timestamp_millis(readings[0].ts_ms).unwrap(),
            },
            metadata: Metadata::default(),
            idempotency_key: None,
            recorded_at: DateTime::from_timestamp_millis(T0).unwrap(),
            origin: None,
        }
    }

    fn second(position: i64, s: i64) -> RecordedEvent {
        batch(position, &[Reading::new(1, T0 + s * 1000, s as f64), Reading::new(2, T0 + s * 1000, -(s as f64))])
    }

    #[test]
    fn a_minute_is_written_once_after_its_grace_period() {
        let mut m = HistoryModel::new(5_000);
        for s in 0..65 {
            m.apply(&second(s + 1, s));
        }
        assert!(m.take_rounds().is_empty(), "minute 0 waits for its grace period");
        assert_eq!(m.durable_position(65), 0);
        m.apply(&second(66, 65));
        let rounds = m.take_rounds();
        assert_eq!(rounds.len(), 1);
        let r = &rounds[0];
        assert_eq!((r.position, r.minute_ms, r.rows.len()), (66, T0, 2));
        let one = &r.rows[0];
        assert_eq!((one.sensor, one.count, one.min, one.max, one.mean), (1, 60, 0.0, 59.0, 29.5));
        let points = telemetry::history::decode(&one.chunk).unwrap();
        assert_eq!(points.len(), 60);
        assert_eq!(points[59], (T0 + 59_000, 59.0));
        // The events of minute 1 (positions 61..) are still in memory.
        assert_eq!(m.durable_position(66), 60);
    }

    #[test]
    fn a_late_reading_becomes_a_chunk_of_its_own_at_once() {
        let mut m = HistoryModel::new(5_000);
        for s in 0..70 {
            m.apply(&second(s + 1, s));
        }
        m.take_rounds();
        m.apply(&batch(71, &[Reading::new(1, T0 + 30_500, 99.0)]));
        let rounds = m.take_rounds();
        assert_eq!(rounds.len(), 1);
        assert_eq!((rounds[0].position, rounds[0].minute_ms, rounds[0].rows[0].count), (71, T0, 1));
    }

    #[test]
    fn after_a_restart_stored_rows_are_not_added_to_again() {
        let mut live = HistoryModel::new(5_000);
        for s in 0..70 {
            live.apply(&second(s + 1, s));
        }
        let written = live.take_rounds();
        let checkpoint = live.durable_position(70);
        assert_eq!(checkpoint, 60);
        // Restart: replay from the checkpoint, knowing the rows written after it.
        let mut restarted = HistoryModel::new(5_000);
        let stored = written[0].rows.iter().map(|r| ((r.sensor, r.minute_ms), written[0].position)).collect();
        restarted.restore(&live.memory(), stored);
        for s in 60..70 {
            restarted.apply(&second(s + 1, s));
        }
        assert!(restarted.take_rounds().is_empty());
        assert_eq!(restarted.buffered(), live.buffered());
        // Both then write minute 1 identically.
        live.apply(&second(71, 125));
        restarted.apply(&second(71, 125));
        assert_eq!(live.take_rounds(), restarted.take_rounds());
    }
}
