//! The SQLite cache: every read-model row the app has seen, how far it has got, the
//! history it has drawn, and the outbox of commands. A restart or an outage shows the
//! last state at once from here.

use std::path::Path;

use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;
use serde::de::DeserializeOwned;
use thiserror::Error;

use crate::commands::{ApiError, Command, CommandState, QueuedCommand};
use crate::state::PlantState;
use crate::timetravel::{Clock, Floor, FloorDelta, FloorDeltaRef, FloorRows, Span};
use readmodel_contract::*;

#[derive(Debug, Error)]
pub enum CacheError {
    #[error("cache database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("cache row of {model} could not be read: {source}")]
    Row { model: &'static str, source: serde_json::Error },
    #[error("cache row could not be written: {0}")]
    Encode(#[from] serde_json::Error),
}

/// A machine's predictions, work orders, audit entries and failures with what was
/// predicted before them.
pub type MachineHistory = (Vec<Prediction>, Vec<WorkOrder>, Vec<AuditEntry>, Vec<TrackFailure>);

/// The newest rows of a machine's history kept per machine.
const MACHINE_HISTORY_ROWS: i64 = 500;

/// How far back the floor as received is kept for time travel without the plant (the
/// time bar's scrubber reaches a day back).
pub const JOURNAL_SPAN_MS: i64 = 24 * 3_600_000;
/// At most this many bytes of floor rows as received: a busy plant keeps less than a day.
pub const JOURNAL_MAX_BYTES: i64 = 256 * 1024 * 1024;
/// Catch-ups come at least every 5 s while the app follows the plant: a longer silence
/// is a stretch it did not see.
pub const SPAN_GAP_MS: i64 = 30_000;
/// The plant's answers to "the floor at an instant" kept, newest fetched first.
pub const ANSWERS_KEPT: i64 = 16;
/// A larger answer is not kept (a floor of 10,000 sensors is about 2 MB).
const ANSWER_MAX_BYTES: usize = 8 * 1024 * 1024;
/// How often the journal is pruned: often, so that each pruning folds little (it runs in
/// a catch-up's cache write, after the screen has its rows).
const PRUNE_EVERY_MS: i64 = 10_000;
/// Journal entries read at once when folding.
const FOLD_PAGE: i64 = 64;

pub struct Cache {
    conn: Connection,
    pruned_at_ms: i64,
}

impl std::fmt::Debug for Cache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cache").finish_non_exhaustive()
    }
}

fn row_key_and_machine(changes: &Changes) -> Vec<(ReadModel, String, Option<String>, i64, String)> {
    fn rows<T: Serialize>(
        out: &mut Vec<(ReadModel, String, Option<String>, i64, String)>,
        model: ReadModel,
        items: &[T],
        key: impl Fn(&T) -> (String, Option<String>, i64),
    ) {
        for item in items {
            let (k, m, p) = key(item);
            // Model rows are plain data; serializing them cannot fail.
            if let Ok(body) = serde_json::to_string(item) {
                out.push((model, k, m, p, body));
            }
        }
    }
    let mut out = Vec::with_capacity(changes.row_count());
    let c = changes;
    rows(&mut out, ReadModel::Plant, &c.plant, |r| (r.plant_id.clone(), None, r.position));
    rows(&mut out, ReadModel::PlantStatus, &c.plant_status, |r| (r.id.clone(), None, r.position));
    rows(&mut out, ReadModel::Lines, &c.lines, |r| (r.line_id.clone(), None, r.position));
    rows(&mut out, ReadModel::LineStatus, &c.line_status, |r| (r.id.clone(), None, r.position));
    rows(&mut out, ReadModel::Machines, &c.machines, |r| {
        (r.machine_id.clone(), Some(r.machine_id.clone()), r.position)
    });
    rows(&mut out, ReadModel::MachineStatus, &c.machine_status, |r| {
        (r.machine_id.clone(), Some(r.machine_id.clone()), r.position)
    });
    rows(&mut out, ReadModel::Sensors, &c.sensors, |r| {
        (r.sensor_id.to_string(), Some(r.machine_id.clone()), r.position)
    });
    rows(&mut out, ReadModel::SensorState, &c.sensor_state, |r| {
        (r.sensor_id.to_string(), Some(r.machine_id.clone()), r.position)
    });
    rows(&mut out, ReadModel::Anomalies, &c.anomalies, |r| {
        (r.anomaly_id.clone(), Some(r.machine_id.clone()), r.position)
    });
    rows(&mut out, ReadModel::Maintenance, &c.maintenance, |r| {
        (r.machine_id.clone(), Some(r.machine_id.clone()), r.position)
    });
    rows(&mut out, ReadModel::Predictions, &c.predictions, |r| {
        (format!("{}@{}", r.machine_id, r.predicted_at_ms), Some(r.machine_id.clone()), r.position)
    });
    rows(&mut out, ReadModel::WorkOrders, &c.work_orders, |r| {
        (r.order_id.clone(), Some(r.machine_id.clone()), r.position)
    });
    rows(&mut out, ReadModel::Audit, &c.audit, |r| (r.position.to_string(), r.machine_id.clone(), r.position));
    rows(&mut out, ReadModel::TrackRecord, &c.track_record, |r| {
        let machine = (r.scope == "machine").then(|| r.id.clone());
        (format!("{} {} {}", r.scope, r.id, r.model_version), machine, r.position)
    });
    rows(&mut out, ReadModel::TrackFailures, &c.track_failures, |r| {
        (format!("{}@{}", r.machine_id, r.failed_at_ms), Some(r.machine_id.clone()), r.position)
    });
    rows(&mut out, ReadModel::NodeTasks, &c.node_tasks, |r| (r.task.clone(), None, r.position));
    out
}

impl Cache {
    /// Opens (creating if needed) the cache file.
    pub fn open(path: &Path) -> Result<Cache, CacheError> {
        if let Some(dir) = path.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        Self::init(Connection::open(path)?)
    }

    /// A cache that lives only as long as the process (tests, benchmarks).
    pub fn open_in_memory() -> Result<Cache, CacheError> {
        Self::init(Connection::open_in_memory()?)
    }

    fn init(conn: Connection) -> Result<Cache, CacheError> {
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.execute_batch(include_str!("../sql/cache/schema.sql"))?;
        Ok(Cache { conn, pruned_at_ms: i64::MIN })
    }

    fn meta(&self, key: &str) -> Result<Option<String>, CacheError> {
        Ok(self.conn.query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0)).optional()?)
    }

    /// Makes the cache belong to `source` (a plant's identity): rows of another plant are
    /// dropped, so switching plants never mixes two floors. Queued commands are kept only
    /// for the same plant. Returns whether the cache was cleared.
    pub fn bind_to_source(&mut self, source: &str) -> Result<bool, CacheError> {
        match self.meta("source")? {
            Some(s) if s == source => Ok(false),
            previous => {
                let tx = self.conn.transaction()?;
                tx.execute_batch(
                    "DELETE FROM rows; DELETE FROM cursors; DELETE FROM history_raw; DELETE FROM history_buckets;
                     DELETE FROM floor_base; DELETE FROM floor_journal; DELETE FROM floor_spans; DELETE FROM travel_answers;
                     DELETE FROM meta WHERE key IN ('as_of_ms', 'synced_position');",
                )?;
                if previous.is_some() {
                    tx.execute("DELETE FROM outbox", [])?;
                }
                tx.execute(
                    "INSERT INTO meta (key, value) VALUES ('source', ?1) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    [source],
                )?;
                tx.commit()?;
                Ok(true)
            }
        }
    }

    /// Every live row and the cursors, for the first paint.
    pub fn load(&self) -> Result<(PlantState, Cursors), CacheError> {
        let changes = Changes {
            plant: self.rows(ReadModel::Plant)?,
            plant_status: self.rows(ReadModel::PlantStatus)?,
            lines: self.rows(ReadModel::Lines)?,
            line_status: self.rows(ReadModel::LineStatus)?,
            machines: self.rows(ReadModel::Machines)?,
            machine_status: self.rows(ReadModel::MachineStatus)?,
            sensors: self.rows(ReadModel::Sensors)?,
            sensor_state: self.rows(ReadModel::SensorState)?,
            anomalies: self.rows(ReadModel::Anomalies)?,
            maintenance: self.rows(ReadModel::Maintenance)?,
            track_record: self.rows(ReadModel::TrackRecord)?,
            node_tasks: self.rows(ReadModel::NodeTasks)?,
            ..Changes::default()
        };
        let mut state = PlantState::default();
        state.apply(changes);
        Ok((state, self.cursors()?))
    }

    fn rows<T: DeserializeOwned>(&self, model: ReadModel) -> Result<Vec<T>, CacheError> {
        let mut stmt = self.conn.prepare_cached(include_str!("../sql/cache/rows_of_model.sql"))?;
        let bodies = stmt.query_map([model.name()], |r| r.get::<_, String>(0))?;
        let mut out = Vec::new();
        for body in bodies {
            out.push(serde_json::from_str(&body?).map_err(|source| CacheError::Row { model: model.name(), source })?);
        }
        Ok(out)
    }

    fn machine_rows<T: DeserializeOwned>(&self, model: ReadModel, machine_id: &str) -> Result<Vec<T>, CacheError> {
        let mut stmt = self.conn.prepare_cached(include_str!("../sql/cache/rows_of_machine.sql"))?;
        let bodies =
            stmt.query_map(params![model.name(), machine_id, MACHINE_HISTORY_ROWS], |r| r.get::<_, String>(0))?;
        let mut out = Vec::new();
        for body in bodies {
            out.push(serde_json::from_str(&body?).map_err(|source| CacheError::Row { model: model.name(), source })?);
        }
        Ok(out)
    }

    pub fn cursors(&self) -> Result<Cursors, CacheError> {
        let mut stmt = self.conn.prepare_cached("SELECT model, position FROM cursors")?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
        let mut out = Cursors::new();
        for row in rows {
            let (name, position) = row?;
            if let Some(model) = ReadModel::from_name(&name) {
                out.insert(model, position);
            }
        }
        Ok(out)
    }

    /// Stores one catch-up's rows with the cursors it reached, in one transaction, so a
    /// crash leaves either all of it or none.
    pub fn store(
        &mut self,
        changes: &Changes,
        cursors: &Cursors,
        synced_position: i64,
        as_of_ms: i64,
    ) -> Result<(), CacheError> {
        let rows = row_key_and_machine(changes);
        let tx = self.conn.transaction()?;
        {
            journal(&tx, changes, as_of_ms)?;
            let mut upsert = tx.prepare_cached(include_str!("../sql/cache/upsert_row.sql"))?;
            for (model, key, machine, position, body) in &rows {
                upsert.execute(params![model.name(), key, machine, position, body])?;
            }
            let mut cursor = tx.prepare_cached(include_str!("../sql/cache/upsert_cursor.sql"))?;
            for (model, position) in cursors {
                cursor.execute(params![model.name(), position])?;
            }
            let mut meta = tx.prepare_cached(
                "INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            )?;
            meta.execute(params!["as_of_ms", as_of_ms.to_string()])?;
            meta.execute(params!["synced_position", synced_position.to_string()])?;
            tx.execute(include_str!("../sql/cache/outbox_applied.sql"), [synced_position])?;
        }
        tx.commit()?;
        if as_of_ms.saturating_sub(self.pruned_at_ms) >= PRUNE_EVERY_MS {
            self.pruned_at_ms = as_of_ms;
            if let Err(e) = self.prune_journal(as_of_ms) {
                // The floor as received is for time travel only: start it afresh rather
                // than stop caching the live picture.
                tracing::warn!("the floor as received could not be pruned ({e}); starting it afresh");
                self.conn
                    .execute_batch("DELETE FROM floor_base; DELETE FROM floor_journal; DELETE FROM floor_spans;")?;
            }
        }
        Ok(())
    }

    /// Forgets rows of a read model by key (what the app no longer holds).
    pub fn forget(&mut self, model: ReadModel, keys: &[String]) -> Result<(), CacheError> {
        if keys.is_empty() {
            return Ok(());
        }
        let tx = self.conn.transaction()?;
        {
            let mut delete = tx.prepare_cached("DELETE FROM rows WHERE model = ?1 AND key = ?2")?;
            for key in keys {
                delete.execute(params![model.name(), key])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// When the cached picture was last known to be current.
    pub fn as_of_ms(&self) -> Result<Option<i64>, CacheError> {
        Ok(self.meta("as_of_ms")?.and_then(|v| v.parse().ok()))
    }

    /// The position every read model had reached at the last catch-up.
    pub fn synced_position(&self) -> Result<i64, CacheError> {
        Ok(self.meta("synced_position")?.and_then(|v| v.parse().ok()).unwrap_or(0))
    }

    /// A machine's recent predictions, work orders, audit entries and failures, newest first.
    pub fn machine_history(&self, machine_id: &str) -> Result<MachineHistory, CacheError> {
        Ok((
            self.machine_rows(ReadModel::Predictions, machine_id)?,
            self.machine_rows(ReadModel::WorkOrders, machine_id)?,
            self.machine_rows(ReadModel::Audit, machine_id)?,
            self.machine_rows(ReadModel::TrackFailures, machine_id)?,
        ))
    }

    // --- time travel without the plant ---

    /// Folds the journal's oldest entries into its base until what is left is within
    /// [`JOURNAL_SPAN_MS`] of `now_ms` and [`JOURNAL_MAX_BYTES`].
    fn prune_journal(&mut self, now_ms: i64) -> Result<(), CacheError> {
        let cutoff = now_ms.saturating_sub(JOURNAL_SPAN_MS);
        let tx = self.conn.transaction()?;
        let total: i64 = tx.query_row("SELECT coalesce(sum(bytes), 0) FROM floor_journal", [], |r| r.get(0))?;
        let (mut through, mut base_at, mut left) = (None, None, total);
        {
            let mut stmt = tx.prepare_cached(include_str!("../sql/cache/journal_sizes.sql"))?;
            let mut rows = stmt.query([])?;
            while let Some(r) = rows.next()? {
                let (seq, at, bytes): (i64, i64, i64) = (r.get(0)?, r.get(1)?, r.get(2)?);
                if at >= cutoff && left <= JOURNAL_MAX_BYTES {
                    break;
                }
                through = Some(seq);
                base_at = Some(base_at.unwrap_or(i64::MIN).max(at));
                left -= bytes;
            }
        }
        let (Some(through), Some(base_at)) = (through, base_at) else {
            return Ok(());
        };
        let mut rows = base(&tx)?.map(|(_, rows)| rows).unwrap_or_default();
        fold(&tx, &mut rows, include_str!("../sql/cache/journal_through.sql"), through)?;
        tx.execute(
            "INSERT INTO floor_base (id, at_ms, body) VALUES (1, ?1, ?2)
             ON CONFLICT (id) DO UPDATE SET at_ms = excluded.at_ms, body = excluded.body",
            params![base_at, rows.to_json()?],
        )?;
        tx.execute("DELETE FROM floor_journal WHERE seq <= ?1", [through])?;
        tx.execute("DELETE FROM floor_spans WHERE to_ms < ?1", [base_at])?;
        tx.execute("UPDATE floor_spans SET from_ms = ?1 WHERE from_ms < ?1", [base_at])?;
        tx.commit()?;
        Ok(())
    }

    /// The stretches of time whose floor this workstation received and still holds,
    /// oldest first.
    pub fn travel_spans(&self) -> Result<Vec<Span>, CacheError> {
        let base_at: Option<i64> = self.conn.query_row("SELECT at_ms FROM floor_base", [], |r| r.get(0)).optional()?;
        let mut stmt = self.conn.prepare_cached("SELECT from_ms, to_ms FROM floor_spans ORDER BY from_ms")?;
        let spans = stmt.query_map([], |r| Ok(Span { from_ms: r.get(0)?, to_ms: r.get(1)? }))?;
        let mut out = Vec::new();
        for span in spans {
            let mut span = span?;
            span.from_ms = span.from_ms.max(base_at.unwrap_or(i64::MIN));
            if span.from_ms <= span.to_ms {
                out.push(span);
            }
        }
        Ok(out)
    }

    /// The floor as this workstation had received it at `at_ms` ("as we knew it then",
    /// here); `None` when the app was not following the plant then or the cache no longer
    /// holds it.
    pub fn floor_received(&self, at_ms: i64) -> Result<Option<Floor>, CacheError> {
        if !self.travel_spans()?.iter().any(|s| s.from_ms <= at_ms && at_ms <= s.to_ms) {
            return Ok(None);
        }
        let tx = self.conn.unchecked_transaction()?;
        let Some((_, mut rows)) = base(&tx)? else {
            return Ok(None);
        };
        fold(&tx, &mut rows, include_str!("../sql/cache/journal_until.sql"), at_ms)?;
        Ok(Some(rows.floor(at_ms)))
    }

    /// Keeps the plant's answer for an instant (the [`ANSWERS_KEPT`] fetched last).
    pub fn keep_answer(&mut self, clock: Clock, at_ms: i64, floor: &Floor, now_ms: i64) -> Result<(), CacheError> {
        let body = serde_json::to_string(floor)?;
        if body.len() > ANSWER_MAX_BYTES {
            return Ok(());
        }
        let tx = self.conn.transaction()?;
        tx.execute(include_str!("../sql/cache/answer_upsert.sql"), params![clock.as_str(), at_ms, now_ms, body])?;
        tx.execute(include_str!("../sql/cache/answer_trim.sql"), [ANSWERS_KEPT])?;
        tx.commit()?;
        Ok(())
    }

    /// The plant's answer for exactly this instant and clock, if it was fetched. One that
    /// cannot be read (damaged, or from another version) is not an answer.
    pub fn answer(&self, clock: Clock, at_ms: i64) -> Result<Option<Floor>, CacheError> {
        let body: Option<String> = self
            .conn
            .query_row(
                "SELECT body FROM travel_answers WHERE clock = ?1 AND at_ms = ?2",
                params![clock.as_str(), at_ms],
                |r| r.get(0),
            )
            .optional()?;
        Ok(body.and_then(|b| match serde_json::from_str::<Floor>(&b) {
            Ok(f) if f.clock == clock && f.at_ms == at_ms => Some(f),
            Ok(_) => None,
            Err(e) => {
                tracing::warn!("a kept time-travel answer cannot be read: {e}");
                None
            }
        }))
    }

    // --- history ---

    pub fn store_raw(&mut self, rows: &[(i32, i64, Vec<u8>, i64)]) -> Result<(), CacheError> {
        let tx = self.conn.transaction()?;
        {
            let mut stmt = tx.prepare_cached(include_str!("../sql/cache/upsert_raw.sql"))?;
            for (sensor, minute, readings, position) in rows {
                stmt.execute(params![sensor, minute, readings, position])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Raw chunks of one sensor whose minute starts in [from_ms, to_ms).
    pub fn raw_range(&self, sensor_id: i32, from_ms: i64, to_ms: i64) -> Result<Vec<(i64, Vec<u8>)>, CacheError> {
        let mut stmt = self.conn.prepare_cached(include_str!("../sql/cache/raw_range.sql"))?;
        let rows = stmt.query_map(params![sensor_id, from_ms, to_ms], |r| Ok((r.get(1)?, r.get(2)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub fn store_buckets(&mut self, resolution: &str, rows: &[(i32, Bucket, i64)]) -> Result<(), CacheError> {
        let tx = self.conn.transaction()?;
        {
            let mut stmt = tx.prepare_cached(include_str!("../sql/cache/upsert_bucket.sql"))?;
            for (sensor, b, position) in rows {
                stmt.execute(params![resolution, sensor, b.ts_ms, b.count, b.min, b.max, b.mean, position])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    pub fn bucket_range(
        &self,
        resolution: &str,
        sensor_id: i32,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<Bucket>, CacheError> {
        let mut stmt = self.conn.prepare_cached(include_str!("../sql/cache/bucket_range.sql"))?;
        let rows = stmt.query_map(params![resolution, sensor_id, from_ms, to_ms], |r| {
            Ok(Bucket { ts_ms: r.get(0)?, count: r.get(1)?, min: r.get(2)?, max: r.get(3)?, mean: r.get(4)? })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    // --- outbox ---

    pub fn enqueue(&self, command_id: &str, by: &str, command: &Command, now_ms: i64) -> Result<(), CacheError> {
        let body = serde_json::to_string(command)?;
        self.conn.execute(include_str!("../sql/cache/outbox_insert.sql"), params![command_id, by, body, now_ms])?;
        Ok(())
    }

    fn queued(row: &rusqlite::Row<'_>) -> rusqlite::Result<(QueuedCommandRow, String)> {
        Ok((
            QueuedCommandRow {
                seq: row.get(0)?,
                command_id: row.get(1)?,
                by: row.get(2)?,
                created_at_ms: row.get(4)?,
                state: row.get(5)?,
                attempts: row.get(6)?,
                next_attempt_ms: row.get(7)?,
                error_code: row.get(8)?,
                error_message: row.get(9)?,
                position: row.get(10)?,
            },
            row.get(3)?,
        ))
    }

    fn to_command((r, body): (QueuedCommandRow, String)) -> Option<QueuedCommand> {
        // A row this version cannot read (written by a newer one) is left alone, not lost.
        let command: Command = serde_json::from_str(&body).ok()?;
        Some(QueuedCommand {
            seq: r.seq,
            label: command.label(),
            command,
            command_id: r.command_id,
            by: r.by,
            created_at_ms: r.created_at_ms,
            state: CommandState::parse(&r.state)?,
            attempts: r.attempts,
            next_attempt_ms: r.next_attempt_ms,
            error: r.error_code.map(|code| ApiError { code, message: r.error_message.unwrap_or_default() }),
            position: r.position,
        })
    }

    /// Every command not yet applied or dismissed, oldest first.
    pub fn outbox(&self) -> Result<Vec<QueuedCommand>, CacheError> {
        let mut stmt = self.conn.prepare_cached(include_str!("../sql/cache/outbox_list.sql"))?;
        let rows = stmt.query_map([], Self::queued)?;
        let mut out = Vec::new();
        for row in rows {
            out.extend(Self::to_command(row?));
        }
        Ok(out)
    }

    /// The oldest command still to send.
    pub fn outbox_head(&self) -> Result<Option<QueuedCommand>, CacheError> {
        let mut stmt = self.conn.prepare_cached(include_str!("../sql/cache/outbox_head.sql"))?;
        Ok(stmt.query_row([], Self::queued).optional()?.and_then(Self::to_command))
    }

    pub fn mark_sent(&self, command_id: &str, position: i64) -> Result<(), CacheError> {
        self.conn.execute(include_str!("../sql/cache/outbox_sent.sql"), params![command_id, position])?;
        Ok(())
    }

    pub fn mark_failed(&self, command_id: &str, error: &ApiError) -> Result<(), CacheError> {
        self.conn
            .execute(include_str!("../sql/cache/outbox_failed.sql"), params![command_id, error.code, error.message])?;
        Ok(())
    }

    pub fn mark_retry(&self, command_id: &str, next_attempt_ms: i64, error: &ApiError) -> Result<(), CacheError> {
        self.conn.execute(
            include_str!("../sql/cache/outbox_retry.sql"),
            params![command_id, next_attempt_ms, error.code, error.message],
        )?;
        Ok(())
    }

    /// Makes every pending command due now (the plant is reachable again).
    pub fn retry_now(&self, now_ms: i64) -> Result<(), CacheError> {
        self.conn.execute(include_str!("../sql/cache/outbox_retry_now.sql"), [now_ms])?;
        Ok(())
    }

    /// Forgets accepted commands whose effect the read models show.
    pub fn forget_applied(&mut self, command_ids: &[String]) -> Result<(), CacheError> {
        let tx = self.conn.transaction()?;
        {
            let mut stmt = tx.prepare_cached(include_str!("../sql/cache/outbox_forget.sql"))?;
            for id in command_ids {
                stmt.execute([id])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Forgets a refused command once the user has read why. Returns whether one was removed.
    pub fn dismiss(&self, command_id: &str) -> Result<bool, CacheError> {
        Ok(self.conn.execute(include_str!("../sql/cache/outbox_dismiss.sql"), [command_id])? > 0)
    }
}

/// Notes one catch-up in the journal of the floor as received (inside the transaction
/// that stores it): the first one starts from the rows the cache holds.
fn journal(tx: &rusqlite::Transaction<'_>, changes: &Changes, as_of_ms: i64) -> Result<(), CacheError> {
    let started: bool = tx.query_row("SELECT EXISTS (SELECT 1 FROM floor_base)", [], |r| r.get(0))?;
    if !started {
        let mut rows = FloorRows::default();
        let mut stmt = tx.prepare_cached(include_str!("../sql/cache/rows_of_model.sql"))?;
        let mut delta = FloorDelta::default();
        fn read<T: DeserializeOwned>(
            stmt: &mut rusqlite::CachedStatement<'_>,
            model: ReadModel,
        ) -> Result<Vec<T>, CacheError> {
            let bodies = stmt.query_map([model.name()], |r| r.get::<_, String>(0))?;
            let mut out = Vec::new();
            for body in bodies {
                out.push(
                    serde_json::from_str(&body?).map_err(|source| CacheError::Row { model: model.name(), source })?,
                );
            }
            Ok(out)
        }
        delta.plant_status = read(&mut stmt, ReadModel::PlantStatus)?;
        delta.line_status = read(&mut stmt, ReadModel::LineStatus)?;
        delta.machine_status = read(&mut stmt, ReadModel::MachineStatus)?;
        delta.sensor_state = read(&mut stmt, ReadModel::SensorState)?;
        delta.anomalies = read(&mut stmt, ReadModel::Anomalies)?;
        delta.maintenance = read(&mut stmt, ReadModel::Maintenance)?;
        rows.apply(delta);
        tx.execute("INSERT INTO floor_base (id, at_ms, body) VALUES (1, ?1, ?2)", params![as_of_ms, rows.to_json()?])?;
    }
    let extended = tx.execute(include_str!("../sql/cache/span_extend.sql"), params![as_of_ms, SPAN_GAP_MS])?;
    if extended == 0 {
        tx.execute("INSERT OR IGNORE INTO floor_spans (from_ms, to_ms) VALUES (?1, ?1)", [as_of_ms])?;
    }
    let delta = FloorDeltaRef::of(changes);
    if !delta.is_empty() {
        let body = serde_json::to_string(&delta)?;
        tx.execute(include_str!("../sql/cache/journal_insert.sql"), params![as_of_ms, body.len() as i64, body])?;
    }
    Ok(())
}

/// The journal's base: when it stands and its rows.
fn base(tx: &rusqlite::Transaction<'_>) -> Result<Option<(i64, FloorRows)>, CacheError> {
    let row: Option<(i64, String)> =
        tx.query_row("SELECT at_ms, body FROM floor_base", [], |r| Ok((r.get(0)?, r.get(1)?))).optional()?;
    let Some((at_ms, body)) = row else { return Ok(None) };
    let mut rows = FloorRows::default();
    rows.apply(serde_json::from_str(&body).map_err(|source| CacheError::Row { model: "floor_base", source })?);
    Ok(Some((at_ms, rows)))
}

/// Folds the journal entries `sql` selects (`?1` the bound, `?2` the entry after which,
/// `?3` how many) into `rows`, a page at a time: memory holds the floor and one page.
fn fold(tx: &rusqlite::Transaction<'_>, rows: &mut FloorRows, sql: &str, bound: i64) -> Result<(), CacheError> {
    let mut stmt = tx.prepare_cached(sql)?;
    let mut after = 0_i64;
    loop {
        let page = stmt
            .query_map(params![after, bound, FOLD_PAGE], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))?
            .collect::<Result<Vec<_>, _>>()?;
        let Some(&(last, _)) = page.last() else { return Ok(()) };
        for (_, body) in page {
            rows.apply(
                serde_json::from_str(&body).map_err(|source| CacheError::Row { model: "floor_journal", source })?,
            );
        }
        after = last;
    }
}

struct QueuedCommandRow {
    seq: i64,
    command_id: String,
    by: String,
    created_at_ms: i64,
    state: String,
    attempts: i64,
    next_attempt_ms: i64,
    error_code: Option<String>,
    error_message: Option<String>,
    position: Option<i64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(sensor_id: i32, value: f64, position: i64) -> SensorState {
        SensorState { sensor_id, machine_id: "M1".into(), value, ts_ms: 0, status: "ok".into(), position }
    }

    #[test]
    fn stored_rows_and_cursors_come_back_after_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cache.sqlite");
        {
            let mut cache = Cache::open(&path).unwrap();
            cache.bind_to_source("plant-a").unwrap();
            let changes = Changes { sensor_state: vec![state(1, 1.5, 7), state(2, 2.5, 9)], ..Changes::default() };
            let cursors = Cursors::from([(ReadModel::SensorState, 9)]);
            cache.store(&changes, &cursors, 9, 1234).unwrap();
            // An older row arriving late does not overwrite the newer one.
            let late = Changes { sensor_state: vec![state(2, 0.0, 8)], ..Changes::default() };
            cache.store(&late, &Cursors::from([(ReadModel::SensorState, 8)]), 9, 1300).unwrap();
        }
        let cache = Cache::open(&path).unwrap();
        let (state, cursors) = cache.load().unwrap();
        assert_eq!(state.sensor_state[&2].value, 2.5);
        assert_eq!(cursors[&ReadModel::SensorState], 9, "a cursor never moves back");
        assert_eq!(cache.as_of_ms().unwrap(), Some(1300));
        assert_eq!(cache.synced_position().unwrap(), 9);
    }

    #[test]
    fn forgotten_rows_do_not_come_back_and_others_stay() {
        let mut cache = Cache::open_in_memory().unwrap();
        let changes = Changes { sensor_state: vec![state(1, 1.0, 1), state(2, 2.0, 2)], ..Changes::default() };
        cache.store(&changes, &Cursors::from([(ReadModel::SensorState, 2)]), 2, 1).unwrap();
        // Another model's key of the same spelling is left alone.
        cache.forget(ReadModel::Anomalies, &["2".into()]).unwrap();
        cache.forget(ReadModel::SensorState, &["1".into()]).unwrap();
        let (state, cursors) = cache.load().unwrap();
        assert_eq!(state.sensor_state.keys().copied().collect::<Vec<_>>(), vec![2]);
        assert_eq!(cursors[&ReadModel::SensorState], 2, "the cursor stays: nothing is fetched again");
    }

    #[test]
    fn another_plant_starts_from_an_empty_cache() {
        let mut cache = Cache::open_in_memory().unwrap();
        assert!(cache.bind_to_source("a").unwrap());
        let changes = Changes { sensor_state: vec![state(1, 1.0, 1)], ..Changes::default() };
        cache.store(&changes, &Cursors::from([(ReadModel::SensorState, 1)]), 1, 1).unwrap();
        assert!(!cache.bind_to_source("a").unwrap());
        assert_eq!(cache.load().unwrap().0.sensor_state.len(), 1);
        assert!(cache.bind_to_source("b").unwrap());
        assert!(cache.load().unwrap().0.sensor_state.is_empty());
        assert!(cache.cursors().unwrap().is_empty());
    }

    #[test]
    fn the_outbox_keeps_order_and_forgets_what_the_read_models_show() {
        let cache = Cache::open_in_memory().unwrap();
        let ack = Command::Acknowledge { anomaly_id: "A1".into(), note: "seen".into() };
        let note = Command::AddNote { anomaly_id: "A1".into(), text: "more".into() };
        cache.enqueue("c1", "ana", &ack, 100).unwrap();
        cache.enqueue("c2", "ana", &note, 101).unwrap();
        assert_eq!(cache.outbox_head().unwrap().unwrap().command_id, "c1");
        cache.mark_sent("c1", 50).unwrap();
        assert_eq!(cache.outbox_head().unwrap().unwrap().command_id, "c2");
        let err = ApiError { code: "resolved".into(), message: "already resolved".into() };
        cache.mark_failed("c2", &err).unwrap();
        assert!(cache.outbox_head().unwrap().is_none());
        let all = cache.outbox().unwrap();
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].state, CommandState::Sent);
        assert_eq!(all[1].error.as_ref().unwrap().code, "resolved");
        // Once the read models reach position 50 the acknowledgement is shown by them.
        let mut cache = cache;
        cache.store(&Changes::default(), &Cursors::new(), 50, 1).unwrap();
        assert_eq!(cache.outbox().unwrap().len(), 1);
        assert!(cache.dismiss("c2").unwrap());
        assert!(cache.outbox().unwrap().is_empty());
        assert!(cache.enqueue("c1", "ana", &ack, 1).is_ok(), "an applied id may be reused");
    }

    #[test]
    fn the_floor_as_received_is_kept_a_day_folded_into_its_base_and_answers_the_same() {
        let mut cache = Cache::open_in_memory().unwrap();
        cache.bind_to_source("a").unwrap();
        let t0 = 1_700_000_000_000_i64;
        // A catch-up every 5 s for an hour and a half: sensor 1 counts the steps, sensor 2
        // changes every tenth one.
        let steps = 1_080_i64;
        for i in 0..steps {
            let mut rows = vec![state(1, i as f64, i + 1)];
            if i % 10 == 0 {
                rows.push(state(2, -(i as f64), i + 1));
            }
            let changes = Changes { sensor_state: rows, ..Changes::default() };
            cache.store(&changes, &Cursors::new(), i + 1, t0 + i * 5_000).unwrap();
        }
        let at = |i: i64| t0 + i * 5_000 + 2_000;
        let value = |f: &Floor, id: i32| f.sensor_state.iter().find(|s| s.sensor_id == id).map(|s| s.value);
        let f = cache.floor_received(at(700)).unwrap().unwrap();
        assert_eq!((value(&f, 1), value(&f, 2), f.through_position), (Some(700.0), Some(-700.0), 701));
        assert_eq!(cache.travel_spans().unwrap(), [Span { from_ms: t0, to_ms: t0 + (steps - 1) * 5_000 }]);
        let instants: Vec<i64> = (1_000..steps).step_by(7).map(at).collect();
        let before: Vec<Floor> = instants.iter().map(|t| cache.floor_received(*t).unwrap().unwrap()).collect();

        // A day later (nothing received meanwhile: a stretch not seen), the journal keeps
        // a day: what is older is folded into the base and no longer answered.
        let later = t0 + (steps - 1) * 5_000 + JOURNAL_SPAN_MS - 5_000 * 100;
        cache
            .store(
                &Changes { sensor_state: vec![state(1, -1.0, steps + 5)], ..Changes::default() },
                &Cursors::new(),
                0,
                later,
            )
            .unwrap();
        let kept: i64 = cache.conn.query_row("SELECT count(*) FROM floor_journal", [], |r| r.get(0)).unwrap();
        assert!(kept < 150, "older entries folded into the base: {kept} kept");
        let spans = cache.travel_spans().unwrap();
        assert_eq!(spans.len(), 2, "{spans:?}");
        assert_eq!(spans[1], Span { from_ms: later, to_ms: later });
        assert!(cache.floor_received(at(700)).unwrap().is_none(), "older than a day");
        for (t, was) in instants.iter().zip(before) {
            let now = cache.floor_received(*t).unwrap();
            if *t >= spans[0].from_ms {
                assert_eq!(now.as_ref(), Some(&was), "at {t}");
            } else {
                assert!(now.is_none(), "{t} is older than the base");
            }
        }
        // Between the two stretches nothing was seen; after the second, the new row.
        assert!(cache.floor_received(later - 60_000).unwrap().is_none());
        let f = cache.floor_received(later).unwrap().unwrap();
        assert_eq!((value(&f, 1), value(&f, 2)), (Some(-1.0), Some(-1070.0)));
    }

    #[test]
    fn the_plants_answers_are_kept_newest_first_and_a_damaged_one_is_none() {
        let mut cache = Cache::open_in_memory().unwrap();
        let floor = |at_ms| Floor {
            clock: Clock::Happened,
            at_ms,
            through_position: 3,
            plant_status: None,
            line_status: vec![],
            machine_status: vec![],
            sensor_state: vec![state(1, 2.0, 3)],
            anomalies: vec![],
            maintenance: vec![],
        };
        for i in 0..(ANSWERS_KEPT + 4) {
            cache.keep_answer(Clock::Happened, 1_000 + i, &floor(1_000 + i), 50 + i).unwrap();
        }
        assert!(cache.answer(Clock::Happened, 1_000).unwrap().is_none(), "the oldest fetched went");
        let newest = 1_000 + ANSWERS_KEPT + 3;
        assert_eq!(cache.answer(Clock::Happened, newest).unwrap(), Some(floor(newest)));
        assert!(cache.answer(Clock::Known, newest).unwrap().is_none(), "another clock");
        cache.conn.execute("UPDATE travel_answers SET body = 'not json \u{1}'", []).unwrap();
        assert!(cache.answer(Clock::Happened, newest).unwrap().is_none());
        // An answer stored under another instant than it says is not that instant's.
        cache.conn.execute("UPDATE travel_answers SET body = ?1", [serde_json::to_string(&floor(7)).unwrap()]).unwrap();
        assert!(cache.answer(Clock::Happened, newest).unwrap().is_none());
    }

    #[test]
    fn a_damaged_row_is_a_typed_error() {
        let cache = Cache::open_in_memory().unwrap();
        cache
            .conn
            .execute("INSERT INTO rows (model, key, machine_id, position, body) VALUES ('sensor_state', '1', 'M', 1, '{oops')", [])
            .unwrap();
        assert!(matches!(cache.load(), Err(CacheError::Row { model: "sensor_state", .. })));
    }
}
