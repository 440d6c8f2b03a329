//! The plant node: the ingest API that gateways send readings to, with its validation
//! and dead letters. One node per plant, writing that plant's event log.

pub mod ingest;
mod tokens;

pub use tokens::{GatewayTokens, TokenError};

use eventlog::Database;

mod embedded {
    refinery::embed_migrations!("migrations");
}

/// Applies the event log's and the ingest schema's migrations.
pub async fn migrate(db: &Database) -> anyhow::Result<()> {
    db.migrate().await?;
    db.run_migrations(embedded::migrations::runner(), "ingest_schema_history").await
}
