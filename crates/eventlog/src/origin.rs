//! Importing another log's events: the cloud's log stores every plant's events, each
//! once, in the plant's order, stamped with the plant, its position there and the time
//! the plant recorded it.
//!
//! A plant's events arrive as batches that continue where the last one stopped: a batch
//! says which plant position it follows (`after`), and its events are the plant's next
//! events in order, with nothing left out in between (the plant reads its log with a
//! subscription, which never skips one). The log keeps, per plant, the position it has
//! stored through (`eventlog.origins`), locked for the import's transaction, so:
//!
//! * a batch that overlaps what is stored (a retry, or a sender that restarted behind
//!   the acknowledged position) stores only what is new;
//! * a batch that starts beyond it is refused ([`ImportError::Gap`]): something would be
//!   missing, and the sender must resume from the acknowledged position;
//! * a unique index on (plant, plant position) refuses a second copy whatever happens.

use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use deadpool_postgres::{GenericClient, Transaction};
use thiserror::Error;

use crate::model::{InvalidInput, NewEvent, Payload, StreamName};
use crate::retention::{create_partitions, days_of, missing_partitions};

/// One event of another log, as it is imported.
#[derive(Debug, Clone, PartialEq)]
pub struct ImportedEvent {
    /// Its position in the log it comes from.
    pub origin_position: i64,
    /// When that log recorded it.
    pub origin_recorded_at: DateTime<Utc>,
    pub stream: StreamName,
    /// Its version in its stream there (kept as it was).
    pub version: u64,
    pub idempotency_key: Option<String>,
    pub event: NewEvent,
}

/// What an import stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Imported {
    /// The origin's position stored through, after this batch.
    pub acknowledged: i64,
    /// Events stored by this call.
    pub stored: usize,
    /// Events of the batch that were stored before (a retry).
    pub already_stored: usize,
    /// This log's position of the newest event of the origin.
    pub position: i64,
}

/// Where one origin's import stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OriginPosition {
    pub origin: u16,
    /// The origin's position stored through (0: nothing yet).
    pub acknowledged: i64,
    /// This log's position of the newest event of the origin.
    pub position: i64,
    /// When the origin recorded its newest stored event.
    pub recorded_at: Option<DateTime<Utc>>,
    pub updated_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Error)]
pub enum ImportError {
    #[error(transparent)]
    Invalid(#[from] InvalidInput),
    /// Origin 0 is this log's own events.
    #[error("origin must be 1..=32767, got {0}")]
    Origin(u16),
    /// The batch's events are not in increasing position order after `after`.
    #[error("event {index} of the batch is at position {position}, not after {previous}")]
    Order { index: usize, position: i64, previous: i64 },
    /// The batch starts beyond what is stored: the events in between would be missing.
    #[error("the batch follows position {after} of origin {origin}, but only {acknowledged} is stored")]
    Gap { origin: u16, after: i64, acknowledged: i64 },
    #[error("database error while importing: {0}")]
    Database(#[from] tokio_postgres::Error),
    #[error("no database connection: {0}")]
    Pool(String),
    /// Telemetry for days without a partition: create them first
    /// ([`crate::ensure_partitions`], as [`import_and_commit`] does) and try again.
    #[error("no telemetry partition for {0:?}")]
    MissingPartitions(Vec<NaiveDate>),
}

impl ImportError {
    /// Whether sending the same batch again later can succeed as it is.
    pub fn is_transient(&self) -> bool {
        match self {
            ImportError::Database(e) => {
                e.is_closed() || e.code().is_some_and(|c| c.code().starts_with("40") || c.code().starts_with("08"))
            }
            ImportError::Pool(_) | ImportError::MissingPartitions(_) => true,
            _ => false,
        }
    }
}

/// Checks a batch without touching the database: origin, order, each event.
pub fn check_batch(origin: u16, after: i64, events: &[ImportedEvent]) -> Result<(), ImportError> {
    if origin == 0 || origin > i16::MAX as u16 {
        return Err(ImportError::Origin(origin));
    }
    let mut previous = after;
    for (index, e) in events.iter().enumerate() {
        if e.origin_position <= previous {
            return Err(ImportError::Order { index, position: e.origin_position, previous });
        }
        previous = e.origin_position;
        if e.version == 0 || e.version > i64::MAX as u64 {
            return Err(InvalidInput::Batch(format!(
                "event at position {} has version {}",
                e.origin_position, e.version
            ))
            .into());
        }
        e.event.validate()?;
        if let Some(key) = &e.idempotency_key
            && (key.is_empty() || key.len() > 200 || !key.chars().all(|c| c.is_ascii_graphic()))
        {
            return Err(InvalidInput::IdempotencyKey.into());
        }
    }
    Ok(())
}

/// Stores the events of `origin` that follow position `after`, in the caller's
/// transaction; events already stored are left out. Holds the origin's row and then the
/// log's head until the transaction ends.
///
/// The day partitions of its telemetry must exist ([`crate::ensure_partitions`]):
/// creating one here, under the head, would wait for every open reader of the telemetry
/// table, and every plant's imports would queue behind that wait.
pub async fn import(
    tx: &Transaction<'_>,
    origin: u16,
    after: i64,
    events: &[ImportedEvent],
) -> Result<Imported, ImportError> {
    check_batch(origin, after, events)?;
    let origin_key = origin as i16;
    tx.execute(&tx.prepare_cached(include_str!("../sql/create_origin.sql")).await?, &[&origin_key]).await?;
    let row = tx.query_one(&tx.prepare_cached(include_str!("../sql/lock_origin.sql")).await?, &[&origin_key]).await?;
    let (acknowledged, cloud_position): (i64, i64) = (row.get(0), row.get(1));
    if after > acknowledged {
        return Err(ImportError::Gap { origin, after, acknowledged });
    }
    let fresh: Vec<&ImportedEvent> = events.iter().filter(|e| e.origin_position > acknowledged).collect();
    let already_stored = events.len() - fresh.len();
    let Some(newest) = fresh.last() else {
        return Ok(Imported { acknowledged, stored: 0, already_stored, position: cloud_position });
    };
    let head: i64 = tx.query_one(&tx.prepare_cached(include_str!("../sql/lock_head.sql")).await?, &[]).await?.get(0);

    let mut json = Columns::default();
    let mut json_bodies: Vec<serde_json::Value> = Vec::new();
    let mut binary = Columns::default();
    let mut binary_bodies: Vec<&[u8]> = Vec::new();
    let mut occurred_at: Vec<DateTime<Utc>> = Vec::new();
    let mut position = head;
    for e in &fresh {
        position += 1;
        let metadata = serde_json::to_value(&e.event.metadata).expect("metadata is plain strings");
        match &e.event.payload {
            Payload::Json(v) => {
                json.push(position, e, metadata);
                json_bodies.push(v.clone());
            }
            Payload::Telemetry { bytes, occurred_at: at } => {
                binary.push(position, e, metadata);
                binary_bodies.push(bytes);
                occurred_at.push(*at);
            }
        }
    }
    if !binary.position.is_empty() {
        let missing = missing_partitions(tx, &days_of(occurred_at.iter().copied())).await?;
        if !missing.is_empty() {
            return Err(ImportError::MissingPartitions(missing));
        }
        let c = &binary;
        tx.execute(
            &tx.prepare_cached(include_str!("../sql/import_telemetry.sql")).await?,
            &[
                &c.position,
                &c.stream,
                &c.version,
                &c.event_type,
                &c.schema_version,
                &binary_bodies,
                &c.metadata,
                &c.key,
                &occurred_at,
                &origin_key,
                &c.origin_position,
                &c.origin_recorded_at,
            ],
        )
        .await?;
    }
    if !json.position.is_empty() {
        let c = &json;
        tx.execute(
            &tx.prepare_cached(include_str!("../sql/import_events.sql")).await?,
            &[
                &c.position,
                &c.stream,
                &c.version,
                &c.event_type,
                &c.schema_version,
                &json_bodies,
                &c.metadata,
                &c.key,
                &origin_key,
                &c.origin_position,
                &c.origin_recorded_at,
            ],
        )
        .await?;
    }
    tx.execute(
        &tx.prepare_cached(include_str!("../sql/save_origin.sql")).await?,
        &[&origin_key, &newest.origin_position, &newest.origin_recorded_at, &position],
    )
    .await?;
    tx.execute(&tx.prepare_cached(include_str!("../sql/advance_head.sql")).await?, &[&position]).await?;
    tx.query(&tx.prepare_cached(include_str!("../sql/notify.sql")).await?, &[&position.to_string()]).await?;
    Ok(Imported { acknowledged: newest.origin_position, stored: fresh.len(), already_stored, position })
}

/// Imports in a transaction of its own and commits. Creates the telemetry partitions the
/// batch needs first, before any lock of the import.
pub async fn import_and_commit(
    db: &crate::Database,
    origin: u16,
    after: i64,
    events: &[ImportedEvent],
) -> Result<Imported, ImportError> {
    check_batch(origin, after, events)?;
    let mut client = db.pool().get().await.map_err(|e| ImportError::Pool(e.to_string()))?;
    let days = days_of(events.iter().filter_map(|e| match &e.event.payload {
        Payload::Telemetry { occurred_at, .. } => Some(*occurred_at),
        Payload::Json(_) => None,
    }));
    // A plant catching up may send days older than this log keeps: retention can drop
    // such a day's partition, still empty, between its creation here and the import's
    // check under the head. Made again, it stays: from the import's commit on, the day
    // holds events no subscriber has read. A day retention is still dropping can outlast
    // the attempts; the caller hears a transient error then.
    let mut attempt = 1;
    loop {
        create_partitions(&mut client, &days).await?;
        let tx = client.transaction().await?;
        match import(&tx, origin, after, events).await {
            Err(ImportError::MissingPartitions(_)) if attempt < IMPORT_ATTEMPTS => {
                drop(tx);
                tokio::time::sleep(Duration::from_millis(50 * attempt)).await;
                attempt += 1;
            }
            imported => {
                let imported = imported?;
                tx.commit().await?;
                return Ok(imported);
            }
        }
    }
}

/// How often [`import_and_commit`] makes a batch's partitions again when retention
/// dropped one before the import could use it.
const IMPORT_ATTEMPTS: u64 = 4;

/// Where `origin`'s import stands (all zero before its first batch).
pub async fn origin_position(client: &impl GenericClient, origin: u16) -> Result<OriginPosition, ImportError> {
    if origin == 0 || origin > i16::MAX as u16 {
        return Err(ImportError::Origin(origin));
    }
    let stmt = client.prepare_cached(include_str!("../sql/read_origin.sql")).await?;
    Ok(match client.query_opt(&stmt, &[&(origin as i16)]).await? {
        Some(row) => OriginPosition {
            origin,
            acknowledged: row.get(0),
            position: row.get(1),
            recorded_at: row.get(2),
            updated_at: None,
        },
        None => OriginPosition { origin, acknowledged: 0, position: 0, recorded_at: None, updated_at: None },
    })
}

/// Every origin imported so far, by number.
pub async fn origins(client: &impl GenericClient) -> Result<Vec<OriginPosition>, ImportError> {
    let stmt = client.prepare_cached(include_str!("../sql/read_origins.sql")).await?;
    Ok(client
        .query(&stmt, &[])
        .await?
        .iter()
        .map(|row| OriginPosition {
            origin: row.get::<_, i16>(0) as u16,
            acknowledged: row.get(1),
            position: row.get(2),
            recorded_at: row.get(3),
            updated_at: row.get(4),
        })
        .collect())
}

#[derive(Default)]
struct Columns {
    position: Vec<i64>,
    stream: Vec<String>,
    version: Vec<i64>,
    event_type: Vec<String>,
    schema_version: Vec<i16>,
    metadata: Vec<serde_json::Value>,
    key: Vec<Option<String>>,
    origin_position: Vec<i64>,
    origin_recorded_at: Vec<DateTime<Utc>>,
}

impl Columns {
    fn push(&mut self, position: i64, e: &ImportedEvent, metadata: serde_json::Value) {
        self.position.push(position);
        self.stream.push(e.stream.as_str().to_owned());
        self.version.push(e.version as i64);
        self.event_type.push(e.event.event_type.clone());
        self.schema_version.push(e.event.schema_version);
        self.metadata.push(metadata);
        self.key.push(e.idempotency_key.clone());
        self.origin_position.push(e.origin_position);
        self.origin_recorded_at.push(e.origin_recorded_at);
    }
}
