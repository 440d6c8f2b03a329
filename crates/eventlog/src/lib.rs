//! The append-only event log in PostgreSQL: the only crate that knows the log's SQL.
//!
//! * One global order: every event has a `position`; appenders serialise on the log's
//!   head row until they commit, so positions commit in order and a reader can never
//!   skip an event that commits late.
//! * Streams (`category-id`) with versions and expected-version checks; optional
//!   idempotency keys; many streams in one transaction.
//! * Domain events carry JSON; telemetry batches carry the compact binary encoding of
//!   the `telemetry` crate and live in day partitions that expire whole.
//! * Subscriptions read after a checkpoint, woken by NOTIFY, and store their effects
//!   and checkpoint in one transaction.
//! * Snapshots of aggregates at a stream version.
//! * Imports of another log's events (the cloud's copy of every plant's log), each
//!   stored once and stamped with its plant, position and time there.
//!
//! Every statement lives in `sql/`, the schema in `migrations/`.

mod append;
mod db;
mod model;
mod origin;
mod read;
mod retention;
mod snapshot;
mod subscription;

pub use append::{AppendError, LOG_CHANNEL, append, telemetry_days};
pub use db::{Database, Listener, Notification, execute_server_wide, quote_ident, server_wide};
pub use deadpool_postgres::{Client, GenericClient, Pool, Transaction};
pub use model::{
    Append, Appended, ExpectedVersion, InvalidInput, MAX_BINARY_PAYLOAD_BYTES, MAX_JSON_PAYLOAD_BYTES, Metadata,
    NewEvent, Origin, Payload, READINGS_RECORDED, RecordedEvent, StreamName,
};
pub use origin::{
    ImportError, Imported, ImportedEvent, OriginPosition, check_batch, import, import_and_commit, origin_position,
    origins,
};
pub use read::{
    ReadError, count_telemetry_through, find_idempotency_key, head_position, read_all, read_origin_stream,
    read_positions, read_stream,
};
pub use retention::{
    DayTable, DayTableState, Partition, RetentionReport, TelemetryStorage, day_tables, drop_day_table,
    ensure_partitions, expire_telemetry, partitions, prepare_days_ahead, telemetry_storage,
};
pub use snapshot::{Snapshot, SnapshotError, load_snapshot, save_snapshot};
pub use subscription::{
    Cursor, Handler, HealthHook, SubscriberHealth, Subscription, SubscriptionConfig, Unloadable, checkpoint,
    ensure_checkpoint, lag, read_through, reset_checkpoints,
};

/// Appends in a transaction of its own and commits: the convenience for writers that
/// write nothing else. Creates the telemetry partitions it needs first, before the head.
pub async fn append_and_commit(db: &Database, appends: &[Append]) -> Result<Vec<Appended>, AppendError> {
    let mut client = db.pool().get().await.map_err(|e| AppendError::Pool(e.to_string()))?;
    retention::create_partitions(&mut client, &telemetry_days(appends)).await?;
    let tx = client.transaction().await?;
    let result = append(&tx, appends).await?;
    tx.commit().await?;
    Ok(result)
}
