//! The plant node: one per plant. It runs the ingest API that gateways send readings
//! to (validation, dead letters), the command API people act through, the read-model
//! projections (the maintenance track record among them), the anomaly monitor, the
//! maintenance scorer, and telemetry retention, all on the plant's own database.

mod api;
pub mod azure;
pub mod commands;
pub mod dead_letters;
pub mod health;
pub mod ingest;
pub mod monitor;
pub mod node;
pub mod registry;
pub mod roles;
pub mod scorer;
pub mod server;
pub mod supervise;
pub mod timetravel;
mod tokens;

pub use tokens::{GatewayTokens, TokenError};

use eventlog::Database;

mod embedded {
    refinery::embed_migrations!("migrations");
}

/// Applies the event log's and the plant node's own migrations (ingest, monitor, model
/// registry).
pub async fn migrate(db: &Database) -> anyhow::Result<()> {
    db.migrate().await?;
    db.run_migrations(embedded::migrations::runner(), "plant_schema_history").await
}
