//! How long refused readings and uploads (dead letters) are kept, and how many: the table
//! must not grow without bound under a flood of bad uploads. Older ones go first.

use std::future::Future;
use std::time::Duration;

use anyhow::Result;
use chrono::{DateTime, Utc};
use eventlog::Database;

use crate::supervise::TaskSlot;

/// What is kept of the dead letters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeadLetterPolicy {
    /// Dead letters older than this are dropped.
    pub retention_days: u32,
    /// At most this many are kept (the newest).
    pub max_rows: i64,
    /// Refused bodies (up to 64 KiB each) are kept for the newest this many; older rows
    /// keep their reason without the body.
    pub max_bodies: i64,
}

impl Default for DeadLetterPolicy {
    fn default() -> Self {
        DeadLetterPolicy { retention_days: 30, max_rows: 1_000_000, max_bodies: 10_000 }
    }
}

/// What one pruning did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pruned {
    pub expired: u64,
    pub over_cap: u64,
    pub bodies_dropped: u64,
}

/// Applies `policy` at `now`.
pub async fn prune(db: &Database, policy: DeadLetterPolicy, now: DateTime<Utc>) -> Result<Pruned> {
    let client = db.client().await?;
    let cutoff = now - chrono::Duration::days(i64::from(policy.retention_days));
    let expired = client.execute(include_str!("../sql/expire_dead_letters.sql"), &[&cutoff]).await?;
    let over_cap = client.execute(include_str!("../sql/cap_dead_letters.sql"), &[&policy.max_rows.max(0)]).await?;
    let bodies_dropped =
        client.execute(include_str!("../sql/cap_dead_letter_bodies.sql"), &[&policy.max_bodies.max(0)]).await?;
    Ok(Pruned { expired, over_cap, bodies_dropped })
}

/// Prunes every minute until `stop`: often enough that a flood is cut back quickly. A
/// failed pruning shows on the task's slot and is tried again the next minute.
pub async fn keep(db: Database, policy: DeadLetterPolicy, slot: &TaskSlot, stop: impl Future<Output = ()>) {
    tokio::pin!(stop);
    loop {
        match prune(&db, policy, Utc::now()).await {
            Ok(p) => {
                slot.running();
                if p.over_cap > 0 || p.bodies_dropped > 0 {
                    tracing::warn!(
                        dropped = p.over_cap,
                        bodies = p.bodies_dropped,
                        "dead letters beyond the cap were dropped"
                    )
                } else if p.expired > 0 {
                    tracing::info!(expired = p.expired, "expired dead letters")
                }
            }
            Err(e) => {
                tracing::warn!(error = format!("{e:#}"), "dead-letter retention failed");
                slot.failing(&e);
            }
        }
        tokio::select! {
            () = &mut stop => return,
            () = tokio::time::sleep(Duration::from_secs(60)) => {}
        }
    }
}
