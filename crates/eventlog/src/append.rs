//! Appending events: expected versions, idempotency keys, one global order.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, Utc};
use deadpool_postgres::{GenericClient, Transaction};
use thiserror::Error;

use crate::model::{Append, Appended, ExpectedVersion, InvalidInput, Payload, StreamName};
use crate::retention::{days_of, missing_partitions};

/// NOTIFY channel that carries the newest position after every append.
pub const LOG_CHANNEL: &str = "floorwatch_log";

#[derive(Debug, Error)]
pub enum AppendError {
    #[error(transparent)]
    Invalid(#[from] InvalidInput),
    /// Another writer got there first; re-read the stream and decide again.
    #[error("stream {stream} is at version {actual}, but the append expected {expected:?}")]
    Conflict { stream: StreamName, expected: ExpectedVersion, actual: u64 },
    #[error("database error while appending: {0}")]
    Database(#[from] tokio_postgres::Error),
    #[error("no database connection: {0}")]
    Pool(String),
    /// Telemetry for days without a partition: create them first
    /// ([`crate::ensure_partitions`], as [`crate::append_and_commit`] does) and try again.
    #[error("no telemetry partition for {0:?}")]
    MissingPartitions(Vec<NaiveDate>),
}

impl AppendError {
    /// Whether trying again (after re-reading, for a conflict) can succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            AppendError::Conflict { .. } => true,
            AppendError::Database(e) => e.is_closed() || e.code().is_some_and(|c| c.code().starts_with("40")),
            AppendError::Pool(_) | AppendError::MissingPartitions(_) => true,
            AppendError::Invalid(_) => false,
        }
    }
}

#[derive(Default)]
struct Rows<T> {
    position: Vec<i64>,
    stream: Vec<String>,
    version: Vec<i64>,
    event_type: Vec<String>,
    schema_version: Vec<i16>,
    payload: Vec<T>,
    metadata: Vec<serde_json::Value>,
    key: Vec<Option<String>>,
}

impl<T> Rows<T> {
    fn new() -> Self {
        Rows {
            position: Vec::new(),
            stream: Vec::new(),
            version: Vec::new(),
            event_type: Vec::new(),
            schema_version: Vec::new(),
            payload: Vec::new(),
            metadata: Vec::new(),
            key: Vec::new(),
        }
    }
}

/// Appends in the caller's transaction, so events commit together with whatever else
/// the transaction writes (a consumer's read-model rows and checkpoint, say).
///
/// Each [`Append`] is checked against its stream's version; on any error nothing of
/// the call should be kept: the caller rolls the transaction back. Appends with a key
/// already stored return what the first append stored, marked `duplicate`, and write
/// nothing. The transaction holds the log's head row from here until it ends, so keep
/// what follows an append short.
///
/// The day partitions of its telemetry must exist ([`telemetry_days`],
/// [`crate::ensure_partitions`]); creating one here, under the head, could wait for a
/// reader that waits for the head.
pub async fn append(tx: &Transaction<'_>, appends: &[Append]) -> Result<Vec<Appended>, AppendError> {
    for a in appends {
        a.validate()?;
    }
    let head: i64 = tx.query_one(&tx.prepare_cached(include_str!("../sql/lock_head.sql")).await?, &[]).await?.get(0);
    let known = stored_keys(tx, appends).await?;
    let versions = stream_versions(tx, appends).await?;
    let plan = Plan::new(head, appends, known, versions)?;
    if plan.position > head {
        plan.write(tx).await?;
    }
    Ok(plan.results)
}

/// What earlier appends with the same idempotency keys stored, by key.
async fn stored_keys(tx: &Transaction<'_>, appends: &[Append]) -> Result<HashMap<String, Appended>, AppendError> {
    let keys: Vec<&str> = appends.iter().filter_map(|a| a.idempotency_key.as_deref()).collect();
    let mut known = HashMap::new();
    if keys.is_empty() {
        return Ok(known);
    }
    let stmt = tx.prepare_cached(include_str!("../sql/find_idempotency_keys.sql")).await?;
    for row in tx.query(&stmt, &[&keys]).await? {
        let stream = StreamName::new(row.get::<_, String>(1))?;
        known.insert(
            row.get(0),
            Appended {
                stream,
                first_position: row.get(2),
                last_position: row.get(3),
                first_version: row.get::<_, i64>(4) as u64,
                last_version: row.get::<_, i64>(5) as u64,
                duplicate: true,
            },
        );
    }
    Ok(known)
}

/// The days whose telemetry partitions `appends` need.
pub fn telemetry_days(appends: &[Append]) -> Vec<NaiveDate> {
    days_of(appends.iter().flat_map(|a| &a.events).filter_map(|e| match &e.payload {
        Payload::Telemetry { occurred_at, .. } => Some(*occurred_at),
        Payload::Json(_) => None,
    }))
}

/// The current version of every stream appended to (absent: no events yet).
async fn stream_versions(tx: &Transaction<'_>, appends: &[Append]) -> Result<HashMap<String, u64>, AppendError> {
    let names: Vec<&str> = appends.iter().map(|a| a.stream.as_str()).collect();
    let stmt = tx.prepare_cached(include_str!("../sql/stream_versions.sql")).await?;
    Ok(tx.query(&stmt, &[&names]).await?.iter().map(|row| (row.get(0), row.get::<_, i64>(1) as u64)).collect())
}

/// The rows one call writes, numbered from the head: decided in memory, written at once.
struct Plan {
    events: Rows<serde_json::Value>,
    telemetry: Rows<Vec<u8>>,
    occurred_at: Vec<DateTime<Utc>>,
    /// (key, what its append stored, when its newest reading occurred).
    key_rows: Vec<(String, Appended, Option<DateTime<Utc>>)>,
    /// Stream → (its new version, its last position).
    touched: HashMap<String, (u64, i64)>,
    results: Vec<Appended>,
    /// The new head.
    position: i64,
}

impl Plan {
    /// Numbers every event after `head`, checks expected versions, and answers repeated
    /// keys with what they stored.
    fn new(
        head: i64,
        appends: &[Append],
        mut known: HashMap<String, Appended>,
        mut versions: HashMap<String, u64>,
    ) -> Result<Plan, AppendError> {
        let mut plan = Plan {
            events: Rows::new(),
            telemetry: Rows::new(),
            occurred_at: Vec::new(),
            key_rows: Vec::new(),
            touched: HashMap::new(),
            results: Vec::with_capacity(appends.len()),
            position: head,
        };
        for a in appends {
            if let Some(first) = a.idempotency_key.as_ref().and_then(|k| known.get(k)) {
                plan.results.push(first.clone());
                continue;
            }
            let current = versions.get(a.stream.as_str()).copied().unwrap_or(0);
            if !a.expected.admits(current) {
                return Err(AppendError::Conflict { stream: a.stream.clone(), expected: a.expected, actual: current });
            }
            let appended = plan.number(a, current);
            versions.insert(a.stream.as_str().to_owned(), appended.last_version);
            if let Some(key) = &a.idempotency_key {
                known.insert(key.clone(), Appended { duplicate: true, ..appended.clone() });
            }
            plan.results.push(appended);
        }
        Ok(plan)
    }

    /// Numbers the events of one append to a stream at version `current`.
    fn number(&mut self, a: &Append, current: u64) -> Appended {
        let first_position = self.position + 1;
        let mut latest_occurrence: Option<DateTime<Utc>> = None;
        for (i, e) in a.events.iter().enumerate() {
            self.position += 1;
            let version = (current + 1 + i as u64) as i64;
            let metadata = serde_json::to_value(&e.metadata).expect("metadata is plain strings");
            match &e.payload {
                Payload::Json(v) => push(&mut self.events, self.position, a, version, e, v.clone(), metadata),
                Payload::Telemetry { bytes, occurred_at: at } => {
                    push(&mut self.telemetry, self.position, a, version, e, bytes.clone(), metadata);
                    self.occurred_at.push(*at);
                    latest_occurrence = latest_occurrence.max(Some(*at));
                }
            }
        }
        let last_version = current + a.events.len() as u64;
        self.touched.insert(a.stream.as_str().to_owned(), (last_version, self.position));
        let appended = Appended {
            stream: a.stream.clone(),
            first_position,
            last_position: self.position,
            first_version: current + 1,
            last_version,
            duplicate: false,
        };
        if let Some(key) = &a.idempotency_key {
            self.key_rows.push((key.clone(), appended.clone(), latest_occurrence));
        }
        appended
    }

    /// Writes the rows, moves the head and announces it.
    async fn write(&self, tx: &Transaction<'_>) -> Result<(), AppendError> {
        self.write_telemetry(tx).await?;
        if !self.events.position.is_empty() {
            let stmt = tx.prepare_cached(include_str!("../sql/insert_events.sql")).await?;
            let e = &self.events;
            tx.execute(
                &stmt,
                &[
                    &e.position,
                    &e.stream,
                    &e.version,
                    &e.event_type,
                    &e.schema_version,
                    &e.payload,
                    &e.metadata,
                    &e.key,
                ],
            )
            .await?;
        }
        let (names, (stream_versions, last_positions)): (Vec<&str>, (Vec<i64>, Vec<i64>)) =
            self.touched.iter().map(|(s, (v, p))| (s.as_str(), (*v as i64, *p))).unzip();
        tx.execute(
            &tx.prepare_cached(include_str!("../sql/upsert_streams.sql")).await?,
            &[&names, &stream_versions, &last_positions],
        )
        .await?;
        self.write_keys(tx).await?;
        tx.execute(&tx.prepare_cached(include_str!("../sql/advance_head.sql")).await?, &[&self.position]).await?;
        tx.query(&tx.prepare_cached(include_str!("../sql/notify.sql")).await?, &[&self.position.to_string()]).await?;
        Ok(())
    }

    /// Telemetry batches go to the day partitions of their readings, which the caller
    /// created beforehand.
    async fn write_telemetry(&self, tx: &Transaction<'_>) -> Result<(), AppendError> {
        if self.telemetry.position.is_empty() {
            return Ok(());
        }
        let missing = missing_partitions(tx, &days_of(self.occurred_at.iter().copied())).await?;
        if !missing.is_empty() {
            return Err(AppendError::MissingPartitions(missing));
        }
        let stmt = tx.prepare_cached(include_str!("../sql/insert_telemetry.sql")).await?;
        let t = &self.telemetry;
        tx.execute(
            &stmt,
            &[
                &t.position,
                &t.stream,
                &t.version,
                &t.event_type,
                &t.schema_version,
                &t.payload,
                &t.metadata,
                &t.key,
                &self.occurred_at,
            ],
        )
        .await?;
        Ok(())
    }

    async fn write_keys(&self, tx: &Transaction<'_>) -> Result<(), AppendError> {
        if self.key_rows.is_empty() {
            return Ok(());
        }
        let rows = &self.key_rows;
        let stmt = tx.prepare_cached(include_str!("../sql/insert_idempotency_keys.sql")).await?;
        let key: Vec<&str> = rows.iter().map(|(k, ..)| k.as_str()).collect();
        let stream: Vec<&str> = rows.iter().map(|(_, a, _)| a.stream.as_str()).collect();
        let first_position: Vec<i64> = rows.iter().map(|(_, a, _)| a.first_position).collect();
        let last_position: Vec<i64> = rows.iter().map(|(_, a, _)| a.last_position).collect();
        let first_version: Vec<i64> = rows.iter().map(|(_, a, _)| a.first_version as i64).collect();
        let last_version: Vec<i64> = rows.iter().map(|(_, a, _)| a.last_version as i64).collect();
        let expires: Vec<Option<DateTime<Utc>>> = rows.iter().map(|(.., t)| *t).collect();
        tx.execute(&stmt, &[&key, &stream, &first_position, &last_position, &first_version, &last_version, &expires])
            .await?;
        Ok(())
    }
}

fn push<T>(
    rows: &mut Rows<T>,
    position: i64,
    append: &Append,
    version: i64,
    event: &crate::model::NewEvent,
    payload: T,
    metadata: serde_json::Value,
) {
    rows.position.push(position);
    rows.stream.push(append.stream.as_str().to_owned());
    rows.version.push(version);
    rows.event_type.push(event.event_type.clone());
    rows.schema_version.push(event.schema_version);
    rows.payload.push(payload);
    rows.metadata.push(metadata);
    rows.key.push(append.idempotency_key.clone());
}
