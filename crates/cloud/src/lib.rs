//! The cloud node: one for all plants.
//!
//! * **Ingest** ([`ingest`]): each plant's forwarder sends its log's events; they are
//!   stored once, in the plant's order, in the cloud's own event log, stamped with the
//!   plant, its position there and the time the plant recorded them.
//! * **Projections** ([`projections`]): the cloud's read models (schema `cloud`), built
//!   from the cloud's log by two subscriptions — [`telemetry`] (per-sensor minute, hour
//!   and day aggregates; readings and sensor availability per KPI group) and
//!   [`operations`] (layouts, anomalies, maintenance, production) — and rebuildable.
//! * **Query API** ([`api`]): JSON over HTTP for the manager's app, with live updates as
//!   Server-Sent Events, an OpenAPI document, and bearer credentials ([`access`]).
//! * **Training** ([`train`]): the maintenance model trained on every plant's history, kept
//!   in the cloud's registry and published to the plants.
//! * **Citus** ([`citus`]): the schema distributes by plant; on a server with the `citus`
//!   extension the node distributes the tables itself.

pub mod api;
pub mod citus;
pub mod ingest;
pub mod kpi;
mod layout_tables;
pub mod layouts;
pub mod node;
pub mod operations;
pub mod projections;
pub mod telemetry;
pub mod train;

use anyhow::Result;
use eventlog::Database;

mod embedded {
    refinery::embed_migrations!("migrations");
}

/// NOTIFY channel of the cloud's read-model changes; the payload is the position applied.
pub const CHANNEL: &str = "cloud_readmodel";

/// Applies the event log's, the credentials' and the cloud's own migrations.
pub async fn migrate(db: &Database) -> Result<()> {
    db.migrate().await?;
    access::migrate(db).await?;
    db.run_migrations(embedded::migrations::runner(), "cloud_schema_history").await
}

/// How the cloud node runs.
#[derive(Debug, Clone)]
pub struct CloudConfig {
    /// Raw telemetry batches are kept in the cloud's log this many days (whole days).
    pub telemetry_retention_days: u32,
    /// Minute aggregates are kept this many days (hour and day aggregates forever).
    pub minute_retention_days: u32,
    /// How long after its end a minute's readings may still arrive before it is written.
    pub history_grace_ms: i64,
    /// Events per projection batch.
    pub batch_max_events: usize,
    /// Readings per batch of the telemetry projection: a backfill's batches carry
    /// thousands of readings each, and one transaction must not fold them for long (it
    /// holds back what waits for the tables it writes).
    pub batch_max_readings: usize,
    /// Largest forwarded batch accepted.
    pub max_batch_bytes: usize,
    /// How long an authenticated token is remembered (a revocation takes this long).
    pub auth_cache_ms: u64,
    /// Distribute the tables when the server has Citus.
    pub distribute_with_citus: bool,
}

impl Default for CloudConfig {
    fn default() -> Self {
        CloudConfig {
            telemetry_retention_days: 7,
            minute_retention_days: 7,
            history_grace_ms: 5_000,
            batch_max_events: 1_000,
            batch_max_readings: 50_000,
            max_batch_bytes: 64 * 1024 * 1024,
            auth_cache_ms: 5_000,
            distribute_with_citus: true,
        }
    }
}
