//! Aggregate snapshots: the folded state of a stream at a version, so loading an
//! aggregate reads the snapshot and only the events after it.

use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::model::{InvalidInput, StreamName};

/// How many snapshots of one stream are kept.
const KEEP_PER_STREAM: i64 = 3;

#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot<T> {
    pub version: u64,
    pub schema_version: i16,
    pub state: T,
    pub taken_at: DateTime<Utc>,
}

#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error(transparent)]
    Invalid(#[from] InvalidInput),
    #[error("snapshot state does not (de)serialise: {0}")]
    State(#[from] serde_json::Error),
    #[error("database error on snapshots: {0}")]
    Database(#[from] tokio_postgres::Error),
}

/// Stores `state` as the snapshot of `stream` at `version` (replacing one at the same
/// version) and prunes all but the newest few.
pub async fn save_snapshot<T: Serialize>(
    client: &impl GenericClient,
    stream: &StreamName,
    version: u64,
    schema_version: i16,
    state: &T,
) -> Result<(), SnapshotError> {
    let value = serde_json::to_value(state)?;
    let stmt = client.prepare_cached(include_str!("../sql/save_snapshot.sql")).await?;
    client.execute(&stmt, &[&stream.as_str(), &(version as i64), &schema_version, &value]).await?;
    let prune = client.prepare_cached(include_str!("../sql/prune_snapshots.sql")).await?;
    client.execute(&prune, &[&stream.as_str(), &KEEP_PER_STREAM]).await?;
    Ok(())
}

/// The newest snapshot of `stream` at or below `at_most_version` (use `u64::MAX` for
/// the newest of all).
pub async fn load_snapshot<T: DeserializeOwned>(
    client: &impl GenericClient,
    stream: &StreamName,
    at_most_version: u64,
) -> Result<Option<Snapshot<T>>, SnapshotError> {
    let stmt = client.prepare_cached(include_str!("../sql/load_snapshot.sql")).await?;
    let bound = at_most_version.min(i64::MAX as u64) as i64;
    let Some(row) = client.query_opt(&stmt, &[&stream.as_str(), &bound]).await? else {
        return Ok(None);
    };
    Ok(Some(Snapshot {
        version: row.get::<_, i64>(0) as u64,
        schema_version: row.get(1),
        state: serde_json::from_value(row.get(2))?,
        taken_at: row.get(3),
    }))
}
