//! The plant's model registry (`maintenance.models`): every predictive-maintenance model
//! version registered here, its metrics and its document, and which one is active (at
//! most one, enforced by a unique index). The scorer uses the active model.
//!
//! Each version's figures are kept twice, in the same terms: as measured before it was
//! registered (its validation and the evaluation in its training report: the figures of
//! `floorwatch eval maintenance`), and as it turned out at this plant (its plant-wide row of
//! the track record read model, which [`list`] adds).

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use eventlog::{Database, GenericClient};
use maintenance::Model;
use thiserror::Error;

/// Errors a caller branches on; everything else is infrastructure (`anyhow`).
#[derive(Debug, Error)]
pub enum RegistryError {
    #[error("no model version {0} is registered at this plant")]
    UnknownVersion(String),
    #[error("registered model {version} cannot be read: {source}")]
    Unreadable { version: String, source: maintenance::Error },
}

/// One registered model, without its document.
#[derive(Debug, Clone, PartialEq)]
pub struct RegisteredModel {
    pub version: String,
    pub created_at: DateTime<Utc>,
    pub registered_at: DateTime<Utc>,
    pub metrics: serde_json::Value,
    pub active: bool,
    /// How this version's predictions have turned out at the plant so far (none before the
    /// track record saw one of them).
    pub track_record: Option<readmodel_contract::TrackRecord>,
}

/// Registers a model (a version already registered is left as it is) and, if asked,
/// makes it the active one. `report` (a training report, say) is kept with the model's
/// own validation metrics. Returns the version.
pub async fn register(
    db: &Database,
    model: &Model,
    report: Option<serde_json::Value>,
    activate: bool,
) -> Result<String> {
    let json = model.to_json()?;
    let version = maintenance::version_of_json(&json);
    let created_at = DateTime::from_timestamp_millis(model.training().created_at_ms).unwrap_or_default();
    let metrics = serde_json::json!({
        "validation": model.metrics(),
        "interval_level": model.interval().level,
        "rul_cap": model.target().rul_cap,
        "time_unit": model.target().time_unit,
        "alert": model.alert(),
        "training_units": model.training().units,
        "training_rows": model.training().rows,
        "seed": model.training().seed,
        "report": report,
    });
    let mut client = db.client().await?;
    let tx = client.transaction().await?;
    tx.execute(include_str!("../sql/registry_insert.sql"), &[&version, &created_at, &metrics, &json])
        .await
        .context("registering the model")?;
    if activate {
        switch_active(&tx, &version).await?;
    }
    tx.commit().await?;
    Ok(version)
}

/// Makes `version` the active model (and no other).
pub async fn activate(db: &Database, version: &str) -> Result<()> {
    let mut client = db.client().await?;
    let tx = client.transaction().await?;
    switch_active(&tx, version).await?;
    tx.commit().await?;
    Ok(())
}

async fn switch_active(tx: &eventlog::Transaction<'_>, version: &str) -> Result<()> {
    // Deactivate first: the unique index admits one active row at any moment.
    tx.execute(include_str!("../sql/registry_deactivate_others.sql"), &[&version]).await?;
    let n = tx.execute(include_str!("../sql/registry_activate.sql"), &[&version]).await?;
    if n == 0 {
        return Err(RegistryError::UnknownVersion(version.to_owned()).into());
    }
    Ok(())
}

/// Leaves no model active: the scorer stops predicting.
pub async fn deactivate(db: &Database) -> Result<()> {
    db.client().await?.execute(include_str!("../sql/registry_deactivate_all.sql"), &[]).await?;
    Ok(())
}

/// The active model's version, if any.
pub async fn active_version(client: &impl GenericClient) -> Result<Option<String>> {
    let row = client.query_opt(include_str!("../sql/registry_active_version.sql"), &[]).await?;
    Ok(row.map(|r| r.get(0)))
}

/// A registered model by version.
pub async fn load(client: &impl GenericClient, version: &str) -> Result<Model> {
    let row = client
        .query_opt(include_str!("../sql/registry_load.sql"), &[&version])
        .await?
        .ok_or_else(|| RegistryError::UnknownVersion(version.to_owned()))?;
    let text: String = row.get(0);
    Model::from_json(&text).map_err(|source| RegistryError::Unreadable { version: version.to_owned(), source }.into())
}

/// The active model with its version, if any.
pub async fn active_model(client: &impl GenericClient) -> Result<Option<(String, Model)>> {
    match active_version(client).await? {
        Some(version) => {
            let model = load(client, &version).await?;
            Ok(Some((version, model)))
        }
        None => Ok(None),
    }
}

/// Every registered model, oldest first, with its track record at the plant.
pub async fn list(db: &Database) -> Result<Vec<RegisteredModel>> {
    let client = db.client().await?;
    let rows = client.query(include_str!("../sql/registry_list.sql"), &[]).await?;
    let mut records: std::collections::HashMap<String, readmodel_contract::TrackRecord> =
        readmodel_contract::model_track_records(&client)
            .await
            .context("reading the track record")?
            .into_iter()
            .map(|r| (r.model_version.clone(), r))
            .collect();
    Ok(rows
        .into_iter()
        .map(|r| {
            let version: String = r.get(0);
            RegisteredModel {
                track_record: records.remove(&version),
                version,
                created_at: r.get(1),
                registered_at: r.get(2),
                metrics: r.get(3),
                active: r.get(4),
            }
        })
        .collect())
}
