//! Running the cloud's two projections, catching up, rebuilding, and expiring what has
//! aged out.

use std::future::Future;

use anyhow::{Context, Result};
use eventlog::{Database, Subscription, SubscriptionConfig};

use crate::operations::{CATEGORIES, OPERATIONS, OperationsProjection};
use crate::telemetry::{TELEMETRY, TelemetryProjection};

/// The most one projection transaction takes on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchLimits {
    pub events: usize,
    /// Readings in the telemetry batches among them (the telemetry projection's work).
    pub readings: usize,
}

impl BatchLimits {
    /// A rebuild's: more events per transaction, readings bounded as in a live run.
    pub const REBUILD: BatchLimits = BatchLimits { events: 5_000, readings: 50_000 };
}

impl From<&crate::CloudConfig> for BatchLimits {
    fn from(config: &crate::CloudConfig) -> Self {
        BatchLimits { events: config.batch_max_events, readings: config.batch_max_readings }
    }
}

fn subscriptions(db: &Database, batch: BatchLimits) -> (Subscription, Subscription) {
    let telemetry = Subscription::new(
        db.clone(),
        SubscriptionConfig::new(TELEMETRY)
            .categories(&["readings", "plant"])
            .batch_max_events(batch.events)
            .batch_max_readings(batch.readings),
    );
    let operations = Subscription::new(
        db.clone(),
        SubscriptionConfig::new(OPERATIONS).categories(CATEGORIES).batch_max_events(batch.events),
    );
    (telemetry, operations)
}

/// Gives both projections their checkpoints (at the start of the log) unless they have
/// them, before anything expires: the log's telemetry is dropped only once every
/// checkpoint has passed it, and a projection's checkpoint is otherwise made by its
/// first batch. A node starting on a log it has not read (a backfill, or plants that
/// caught up while it was away) ran its retention beside that first batch: with no
/// checkpoint yet nothing held the old days, which were dropped before they were read
/// and never reached the KPIs.
pub async fn hold_retention(db: &Database) -> Result<()> {
    let client = db.client().await?;
    for name in [TELEMETRY, OPERATIONS] {
        eventlog::ensure_checkpoint(&client, name).await?;
    }
    Ok(())
}

/// Runs both projections until `shutdown`.
pub async fn run(
    db: &Database,
    batch: BatchLimits,
    grace_ms: i64,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<()> {
    let (telemetry, operations) = subscriptions(db, batch);
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let t = {
        let stop = stopped(stop_rx.clone());
        tokio::spawn(async move { telemetry.run(&mut TelemetryProjection::new(grace_ms), stop).await })
    };
    let o = {
        let stop = stopped(stop_rx);
        tokio::spawn(async move { operations.run(&mut OperationsProjection::new(), stop).await })
    };
    shutdown.await;
    let _ = stop_tx.send(true);
    t.await.context("telemetry projection task")??;
    o.await.context("operations projection task")??;
    Ok(())
}

/// Applies everything in the log now; returns the position read to.
pub async fn catch_up(db: &Database, batch: BatchLimits, grace_ms: i64) -> Result<i64> {
    let (telemetry, operations) = subscriptions(db, batch);
    let a = telemetry.catch_up(&mut TelemetryProjection::new(grace_ms)).await?;
    let b = operations.catch_up(&mut OperationsProjection::new()).await?;
    Ok(a.min(b))
}

/// Drops every read-model row and folds the cloud's log again (safe while the node runs:
/// running projections notice their checkpoints moved and reload).
pub async fn rebuild(db: &Database, grace_ms: i64) -> Result<i64> {
    {
        let mut client = db.client().await?;
        let tx = client.transaction().await?;
        for name in [TELEMETRY, OPERATIONS] {
            eventlog::ensure_checkpoint(&tx, name).await?;
            tx.query(include_str!("../sql/lock_checkpoint.sql"), &[&name]).await?;
        }
        tx.batch_execute(include_str!("../sql/reset_projections.sql")).await?;
        tx.execute(include_str!("../sql/reset_checkpoints.sql"), &[&vec![TELEMETRY, OPERATIONS]]).await?;
        tx.commit().await?;
    }
    catch_up(db, BatchLimits::REBUILD, grace_ms).await
}

/// Where each projection stands: (name, checkpoint).
pub async fn positions(db: &Database) -> Result<Vec<(&'static str, i64)>> {
    let client = db.client().await?;
    let mut out = Vec::new();
    for name in [TELEMETRY, OPERATIONS] {
        out.push((name, eventlog::checkpoint(&client, name).await?));
    }
    Ok(out)
}

/// Drops minute-aggregate partitions whose day ended before `cutoff` once the telemetry
/// projection is past every row in them (a restart may still need the newest rows), and
/// finishes any drop an earlier run left half-way. Each day is detached concurrently and
/// then dropped ([`eventlog::drop_day_table`]): the API's readers and the projection's
/// batches never wait for it.
pub async fn expire_minutes(db: &Database, cutoff: chrono::DateTime<chrono::Utc>) -> Result<Vec<String>> {
    let client = db.client().await?;
    let checkpoint = eventlog::checkpoint(&client, TELEMETRY).await?;
    let mut dropped = Vec::new();
    for table in eventlog::day_tables(&client, MINUTES).await? {
        let Some(day) = table.name.rsplit('_').next().and_then(|d| chrono::NaiveDate::parse_from_str(d, "%Y%m%d").ok())
        else {
            continue;
        };
        // A day a drop left half-way goes whatever its age: it was checked then, and while
        // its table is there the day cannot be made again.
        if table.state == eventlog::DayTableState::Attached {
            let end = (day + chrono::Duration::days(1)).and_hms_opt(0, 0, 0).expect("midnight exists").and_utc();
            if end > cutoff {
                continue;
            }
            // The name comes from the catalog and matches sensor_minute_YYYYMMDD.
            let newest: Option<i64> =
                client.query_one(&format!("SELECT max(position) FROM cloud.{}", table.name), &[]).await?.get(0);
            if newest.is_some_and(|p| p > checkpoint) {
                continue;
            }
        }
        eventlog::drop_day_table(&client, MINUTES, &table).await?;
        dropped.push(table.name);
    }
    Ok(dropped)
}

/// The minute aggregates, one partition a day.
const MINUTES: &str = "cloud.sensor_minute";
