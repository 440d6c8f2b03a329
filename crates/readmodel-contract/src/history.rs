//! A sensor's history for charts, read by time range rather than followed: the raw
//! minutes (`telemetry::history` chunks) and the minute and hour aggregates.

use chrono::{DateTime, Utc};
use tokio_postgres::Client;

use crate::rows::Bucket;
use crate::since::{ReadError, ms};

fn ts(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

/// Raw history chunks of `sensors` whose minute overlaps [from_ms, to_ms):
/// (sensor, minute in ms, chunk, position).
pub async fn raw(
    client: &Client,
    sensors: &[i32],
    from_ms: i64,
    to_ms: i64,
) -> Result<Vec<(i32, i64, Vec<u8>, i64)>, ReadError> {
    let rows = client.query(include_str!("../sql/history/raw.sql"), &[&sensors, &ts(from_ms), &ts(to_ms)]).await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        out.push((r.try_get(0)?, ms(r.try_get(1)?), r.try_get(2)?, r.try_get(3)?));
    }
    Ok(out)
}

/// Aggregate buckets (per minute, or per hour when `hourly`) of `sensors` starting in
/// [from_ms, to_ms): (sensor, bucket, position).
pub async fn buckets(
    client: &Client,
    hourly: bool,
    sensors: &[i32],
    from_ms: i64,
    to_ms: i64,
) -> Result<Vec<(i32, Bucket, i64)>, ReadError> {
    let sql = if hourly { include_str!("../sql/history/hour.sql") } else { include_str!("../sql/history/minute.sql") };
    let rows = client.query(sql, &[&sensors, &ts(from_ms), &ts(to_ms)]).await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let count: i32 = r.try_get(2)?;
        out.push((
            r.try_get(0)?,
            Bucket {
                ts_ms: ms(r.try_get(1)?),
                count: i64::from(count),
                min: r.try_get(3)?,
                max: r.try_get(4)?,
                mean: r.try_get(5)?,
            },
            r.try_get(6)?,
        ));
    }
    Ok(out)
}

/// How many readings the minute aggregates cover, over every sensor and minute kept.
pub async fn readings_in_minutes(client: &Client) -> Result<i64, ReadError> {
    Ok(client.query_one(include_str!("../sql/history/readings_in_minutes.sql"), &[]).await?.try_get(0)?)
}
