//! Reading the log: one stream by version, or the whole log (or some categories) by
//! position.

use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use thiserror::Error;
use tokio_postgres::Row;

use crate::model::{Metadata, Origin, Payload, RecordedEvent, StreamName};

#[derive(Debug, Error)]
pub enum ReadError {
    #[error("database error while reading the log: {0}")]
    Database(#[from] tokio_postgres::Error),
    #[error("event at position {position} is unreadable: {reason}")]
    Corrupt { position: i64, reason: String },
}

/// Events after `after` (a position; 0 for the beginning), in position order, at most
/// `limit`. With `categories`, only events of streams in those categories.
pub async fn read_all(
    client: &impl GenericClient,
    after: i64,
    limit: usize,
    categories: Option<&[String]>,
) -> Result<Vec<RecordedEvent>, ReadError> {
    let limit = limit as i64;
    let rows = match categories {
        None => {
            client.query(&client.prepare_cached(include_str!("../sql/read_all.sql")).await?, &[&after, &limit]).await?
        }
        Some(c) => {
            let stmt = client.prepare_cached(include_str!("../sql/read_categories.sql")).await?;
            client.query(&stmt, &[&after, &limit, &c]).await?
        }
    };
    rows.iter().map(from_row).collect()
}

/// The events at `positions` (those that exist), in position order.
pub async fn read_positions(client: &impl GenericClient, positions: &[i64]) -> Result<Vec<RecordedEvent>, ReadError> {
    if positions.is_empty() {
        return Ok(Vec::new());
    }
    let stmt = client.prepare_cached(include_str!("../sql/read_positions.sql")).await?;
    client.query(&stmt, &[&positions]).await?.iter().map(from_row).collect()
}

/// Events of one stream with a version above `after_version`, in version order.
pub async fn read_stream(
    client: &impl GenericClient,
    stream: &StreamName,
    after_version: u64,
    limit: usize,
) -> Result<Vec<RecordedEvent>, ReadError> {
    let stmt = client.prepare_cached(include_str!("../sql/read_stream.sql")).await?;
    let rows = client.query(&stmt, &[&stream.as_str(), &(after_version as i64), &(limit as i64)]).await?;
    rows.iter().map(from_row).collect()
}

/// Events of one stream as `origin` (a plant, in a log that imports plants' events) wrote
/// it, with a version above `after_version`, in version order.
pub async fn read_origin_stream(
    client: &impl GenericClient,
    origin: u16,
    stream: &StreamName,
    after_version: u64,
    limit: usize,
) -> Result<Vec<RecordedEvent>, ReadError> {
    let stmt = client.prepare_cached(include_str!("../sql/read_origin_stream.sql")).await?;
    let origin = i16::try_from(origin).unwrap_or(i16::MAX);
    let rows = client.query(&stmt, &[&stream.as_str(), &origin, &(after_version as i64), &(limit as i64)]).await?;
    rows.iter().map(from_row).collect()
}

/// What an append with `key` stored, if one did.
pub async fn find_idempotency_key(
    client: &impl GenericClient,
    key: &str,
) -> Result<Option<crate::Appended>, ReadError> {
    let stmt = client.prepare_cached(include_str!("../sql/find_idempotency_key.sql")).await?;
    let Some(row) = client.query_opt(&stmt, &[&key]).await? else { return Ok(None) };
    let first_position: i64 = row.get(1);
    let stream = StreamName::new(row.get::<_, String>(0))
        .map_err(|e| ReadError::Corrupt { position: first_position, reason: e.to_string() })?;
    Ok(Some(crate::Appended {
        stream,
        first_position,
        last_position: row.get(2),
        first_version: row.get::<_, i64>(3) as u64,
        last_version: row.get::<_, i64>(4) as u64,
        duplicate: true,
    }))
}

/// The newest position in the log (0 when empty).
pub async fn head_position(client: &impl GenericClient) -> Result<i64, ReadError> {
    let stmt = client.prepare_cached(include_str!("../sql/head_position.sql")).await?;
    Ok(client.query_one(&stmt, &[]).await?.get(0))
}

/// How many telemetry batches the log holds at or before `position`.
pub async fn count_telemetry_through(client: &impl GenericClient, position: i64) -> Result<i64, ReadError> {
    let stmt = client.prepare_cached(include_str!("../sql/count_telemetry.sql")).await?;
    Ok(client.query_one(&stmt, &[&position]).await?.get(0))
}

fn from_row(row: &Row) -> Result<RecordedEvent, ReadError> {
    let position: i64 = row.get(0);
    let corrupt = |reason: String| ReadError::Corrupt { position, reason };
    let stream = StreamName::new(row.get::<_, String>(1)).map_err(|e| corrupt(e.to_string()))?;
    let json: Option<serde_json::Value> = row.get(5);
    let bytes: Option<Vec<u8>> = row.get(6);
    let occurred_at: Option<DateTime<Utc>> = row.get(10);
    let payload = match (json, bytes, occurred_at) {
        (Some(v), None, _) => Payload::Json(v),
        (None, Some(bytes), Some(occurred_at)) => Payload::Telemetry { bytes, occurred_at },
        _ => {
            return Err(corrupt("payload is neither JSON nor a telemetry batch".into()));
        }
    };
    let metadata: Metadata =
        serde_json::from_value(row.get::<_, serde_json::Value>(7)).map_err(|e| corrupt(format!("metadata: {e}")))?;
    let origin = match (row.get::<_, i16>(11), row.get::<_, Option<i64>>(12), row.get::<_, Option<DateTime<Utc>>>(13)) {
        (0, ..) => None,
        (plant, Some(position), Some(recorded_at)) if plant > 0 => {
            Some(Origin { plant: plant as u16, position, recorded_at })
        }
        (plant, ..) => return Err(corrupt(format!("origin {plant} without its position and time"))),
    };
    Ok(RecordedEvent {
        position,
        stream,
        version: row.get::<_, i64>(2) as u64,
        event_type: row.get(3),
        schema_version: row.get(4),
        payload,
        metadata,
        idempotency_key: row.get(8),
        recorded_at: row.get(9),
        origin,
    })
}
