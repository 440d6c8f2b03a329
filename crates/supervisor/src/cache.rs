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

pub struct Cache {
    conn: Connection,
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
        Ok(Cache { conn })
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
    fn a_damaged_row_is_a_typed_error() {
        let cache = Cache::open_in_memory().unwrap();
        cache
            .conn
            .execute("INSERT INTO rows (model, key, machine_id, position, body) VALUES ('sensor_state', '1', 'M', 1, '{oops')", [])
            .unwrap();
        assert!(matches!(cache.load(), Err(CacheError::Row { model: "sensor_state", .. })));
    }
}
