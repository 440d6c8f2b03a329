//! The plant's link to the cloud (`readmodel.forwarding`): written by the forwarder each
//! time it ships or fails, so the plant's screens and the status display show how far
//! behind the cloud is, in events and in seconds. Readers read it through
//! `readmodel_contract::forwarding_lag`.

use anyhow::Result;
use chrono::{DateTime, Utc};
use eventlog::GenericClient;

/// What the forwarder knows about the link.
#[derive(Debug, Clone, PartialEq)]
pub struct LinkState {
    pub plant_id: String,
    /// `shipping`, `caught_up`, `unreachable` or `refused`.
    pub state: &'static str,
    /// The plant log position the cloud acknowledged.
    pub acknowledged: i64,
    pub cloud_position: Option<i64>,
    pub last_shipped_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub last_error_at: Option<DateTime<Utc>>,
}

/// Writes the link's state; the lag is measured here, against the log's head. Sends the
/// read models' NOTIFY, as a projection does.
pub async fn record(client: &impl GenericClient, link: &LinkState) -> Result<()> {
    let stmt = client.prepare_cached(include_str!("../sql/upsert_forwarding.sql")).await?;
    let error: Option<String> = link.last_error.as_ref().map(|e| e.chars().take(500).collect());
    let row = client
        .query_one(
            &stmt,
            &[
                &link.plant_id,
                &link.state,
                &link.acknowledged,
                &link.cloud_position,
                &link.last_shipped_at,
                &error,
                &link.last_error_at,
            ],
        )
        .await?;
    let position: i64 = row.get(0);
    client.query(include_str!("../sql/notify.sql"), &[&position.to_string()]).await?;
    Ok(())
}
