//! Appending events: expected versions, idempotency keys, one global order.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, Utc};
use deadpool_postgres::{GenericClient, Transaction};
use thiserror::Error;

use crate::model::{Append, Appended, ExpectedVersion, InvalidInput, Payload, StreamName};

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
}

impl AppendError {
    /// Whether trying again (after re-reading, for a conflict) can succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            AppendError::Conflict { .. } => true,
            AppendError::Database(e) => e.is_closed() || e.code().is_some_and(|c| c.code().starts_with("40")),
            AppendError::Pool(_) => true,
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
pub async fn append(tx: &Transaction<'_>, appends: &[Append]) -> Result<Vec<Appended>, AppendError> {
    for a in appends {
        a.validate()?;
    }
    let head: i64 = tx.query_one(&tx.prepare_cached(include_str!("../sql/lock_head.sql")).await?, &[]).await?.get(0);

    let keys: Vec<&str> = appends.iter().filter_map(|a| a.idempotency_key.as_deref()).collect();
    let mut known: HashMap<String, Appended> = HashMap::new();
    if !keys.is_empty() {
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
    }

    let names: Vec<&str> = appends.iter().map(|a| a.stream.as_str()).collect();
    let mut versions: HashMap<String, u64> = HashMap::new();
    let stmt = tx.prepare_cached(include_str!("../sql/stream_versions.sql")).await?;
    for row in tx.query(&stmt, &[&names]).await? {
        versions.insert(row.get(0), row.get::<_, i64>(1) as u64);
    }

    let mut events = Rows::<serde_json::Value>::new();
    let mut telemetry = Rows::<Vec<u8>>::new();
    let mut occurred_at: Vec<DateTime<Utc>> = Vec::new();
    let mut key_rows: Vec<(String, Appended, Option<DateTime<Utc>>)> = Vec::new();
    let mut touched: HashMap<String, (u64, i64)> = HashMap::new();
    let mut results = Vec::with_capacity(appends.len());
    let mut position = head;

    for a in appends {
        if let Some(first) = a.idempotency_key.as_ref().and_then(|k| known.get(k)) {
            results.push(first.clone());
            continue;
        }
        let current = versions.get(a.stream.as_str()).copied().unwrap_or(0);
        if !a.expected.admits(current) {
            return Err(AppendError::Conflict { stream: a.stream.clone(), expected: a.expected, actual: current });
        }
        let first_position = position + 1;
        let mut latest_occurrence: Option<DateTime<Utc>> = None;
        for (i, e) in a.events.iter().enumerate() {
            position += 1;
            let version = (current + 1 + i as u64) as i64;
            let metadata = serde_json::to_value(&e.metadata).expect("metadata is plain strings");
            match &e.payload {
                Payload::Json(v) => {
                    push(&mut events, position, a, version, e, v.clone(), metadata);
                }
                Payload::Telemetry { bytes, occurred_at: at } => {
                    push(&mut telemetry, position, a, version, e, bytes.clone(), metadata);
                    occurred_at.push(*at);
                    latest_occurrence = latest_occurrence.max(Some(*at));
                }
            }
        }
        let last_version = current + a.events.len() as u64;
        versions.insert(a.stream.as_str().to_owned(), last_version);
        touched.insert(a.stream.as_str().to_owned(), (last_version, position));
        let appended = Appended {
            stream: a.stream.clone(),
            first_position,
            last_position: position,
            first_version: current + 1,
            last_version,
            duplicate: false,
        };
        if let Some(key) = &a.idempotency_key {
            let repeat = Appended { duplicate: true, ..appended.clone() };
            known.insert(key.clone(), repeat);
            key_rows.push((key.clone(), appended.clone(), latest_occurrence));
        }
        results.push(appended);
    }

    if position == head {
        return Ok(results);
    }
    if !telemetry.position.is_empty() {
        let mut days: Vec<NaiveDate> = occurred_at.iter().map(|t| t.date_naive()).collect();
        days.sort();
        days.dedup();
        tx.query(&tx.prepare_cached(include_str!("../sql/ensure_partitions.sql")).await?, &[&days]).await?;
        let stmt = tx.prepare_cached(include_str!("../sql/insert_telemetry.sql")).await?;
        let t = &telemetry;
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
                &occurred_at,
            ],
        )
        .await?;
    }
    if !events.position.is_empty() {
        let stmt = tx.prepare_cached(include_str!("../sql/insert_events.sql")).await?;
        let e = &events;
        tx.execute(
            &stmt,
            &[&e.position, &e.stream, &e.version, &e.event_type, &e.schema_version, &e.payload, &e.metadata, &e.key],
        )
        .await?;
    }
    let (names, (stream_versions, last_positions)): (Vec<String>, (Vec<i64>, Vec<i64>)) =
        touched.into_iter().map(|(s, (v, p))| (s, (v as i64, p))).unzip();
    tx.execute(
        &tx.prepare_cached(include_str!("../sql/upsert_streams.sql")).await?,
        &[&names, &stream_versions, &last_positions],
    )
    .await?;
    if !key_rows.is_empty() {
        let stmt = tx.prepare_cached(include_str!("../sql/insert_idempotency_keys.sql")).await?;
        let key: Vec<&str> = key_rows.iter().map(|(k, ..)| k.as_str()).collect();
        let stream: Vec<&str> = key_rows.iter().map(|(_, a, _)| a.stream.as_str()).collect();
        let first_position: Vec<i64> = key_rows.iter().map(|(_, a, _)| a.first_position).collect();
        let last_position: Vec<i64> = key_rows.iter().map(|(_, a, _)| a.last_position).collect();
        let first_version: Vec<i64> = key_rows.iter().map(|(_, a, _)| a.first_version as i64).collect();
        let last_version: Vec<i64> = key_rows.iter().map(|(_, a, _)| a.last_version as i64).collect();
        let expires: Vec<Option<DateTime<Utc>>> = key_rows.iter().map(|(.., t)| *t).collect();
        tx.execute(&stmt, &[&key, &stream, &first_position, &last_position, &first_version, &last_version, &expires])
            .await?;
    }
    tx.execute(&tx.prepare_cached(include_str!("../sql/advance_head.sql")).await?, &[&position]).await?;
    tx.query(&tx.prepare_cached(include_str!("../sql/notify.sql")).await?, &[&position.to_string()]).await?;
    Ok(results)
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
