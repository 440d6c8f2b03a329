//! The plant's link to the cloud as readers see it (`readmodel.forwarding`, written by the
//! plant's forwarder): how far behind the cloud is, in events and in seconds.

use chrono::{DateTime, Utc};
use tokio_postgres::Client;

/// How far behind the link is, as its forwarder last wrote it.
#[derive(Debug, Clone, PartialEq)]
pub struct ForwardingLag {
    /// `shipping`, `caught_up`, `unreachable` or `refused`.
    pub state: String,
    /// The plant log position the cloud acknowledged storing through.
    pub acknowledged: i64,
    /// Events of the plant's log not yet acknowledged, and the age of the oldest of them.
    pub events: i64,
    pub seconds: f64,
    pub updated_at_ms: i64,
    pub last_error: Option<String>,
}

/// The link's last written state; `None` when no forwarder has run at this plant.
pub async fn forwarding_lag(client: &Client) -> Result<Option<ForwardingLag>, tokio_postgres::Error> {
    let row = client.query_opt(include_str!("../sql/forwarding.sql"), &[]).await?;
    Ok(row.map(|r| ForwardingLag {
        state: r.get(0),
        acknowledged: r.get(1),
        events: r.get(2),
        seconds: r.get(3),
        updated_at_ms: r.get::<_, DateTime<Utc>>(4).timestamp_millis(),
        last_error: r.get(5),
    }))
}
