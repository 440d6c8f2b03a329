//! The plant's read models (schema `readmodel`) and the projections that build them.
//!
//! Two projections follow the log, each with its own checkpoint:
//! * [`live`] — sensor state, machine/line/plant roll-ups, anomalies, maintenance, the
//!   layout tables and the audit trail, written after every batch;
//! * [`history`] — raw readings per sensor per minute and per-minute/per-hour aggregates,
//!   written as each minute closes.
//!
//! Both are pure folds (`model`) plus a [`eventlog::Handler`] that writes what changed
//! in the same transaction as the checkpoint and sends `NOTIFY readmodel, '<position>'`.
//! [`rebuild`] drops every row and folds the whole log again; the result equals the
//! live tables row for row. [`since`] holds the query per table that answers "what
//! changed since position N".

pub mod history;
pub mod live;
pub mod since;

use std::future::Future;
use std::time::Duration;

use anyhow::{Context, Result};
use eventlog::{Database, Subscription, SubscriptionConfig};

pub use history::{HISTORY, HistoryProjection};
pub use live::{LIVE, LiveProjection};

/// NOTIFY channel of read-model changes; the payload is the position applied.
pub const CHANNEL: &str = "readmodel";

/// The role desktop clients log in as.
pub const READER_ROLE: &str = "floorwatch_reader";

mod embedded {
    refinery::embed_migrations!("migrations");
}

/// Applies the event log's and the read models' migrations.
pub async fn migrate(db: &Database) -> Result<()> {
    db.migrate().await?;
    db.run_migrations(embedded::migrations::runner(), "readmodel_schema_history").await
}

/// Sets the read-only role's password (the role exists once [`migrate`] has run).
pub async fn set_reader_password(db: &Database, password: &str) -> Result<()> {
    let client = db.client().await?;
    // ALTER ROLE takes no parameters; the password is quoted as a literal.
    let literal = format!("'{}'", password.replace('\'', "''"));
    client.batch_execute(&format!("ALTER ROLE {READER_ROLE} PASSWORD {literal}")).await?;
    Ok(())
}

/// How the projections run.
#[derive(Debug, Clone, Copy)]
pub struct ProjectionConfig {
    pub plant_number: u16,
    /// Events per live batch (one transaction).
    pub batch_max_events: usize,
    /// How long after its end a minute's readings may still arrive before it is written.
    pub history_grace_ms: i64,
}

impl ProjectionConfig {
    pub fn new(plant_number: u16) -> Self {
        ProjectionConfig { plant_number, batch_max_events: 200, history_grace_ms: 5_000 }
    }
}

fn subscriptions(db: &Database, batch: usize) -> (Subscription, Subscription) {
    let live = Subscription::new(db.clone(), SubscriptionConfig::new(LIVE).batch_max_events(batch));
    let history = Subscription::new(
        db.clone(),
        SubscriptionConfig::new(HISTORY).categories(&["readings"]).batch_max_events(batch),
    );
    (live, history)
}

/// Runs both projections until `shutdown` completes.
pub async fn run(db: &Database, config: ProjectionConfig, shutdown: impl Future<Output = ()> + Send) -> Result<()> {
    let (live, history) = subscriptions(db, config.batch_max_events);
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let live_task = {
        let stop = stopped(stop_rx.clone());
        tokio::spawn(async move { live.run(&mut LiveProjection::new(config.plant_number), stop).await })
    };
    let history_task = {
        let stop = stopped(stop_rx);
        tokio::spawn(async move { history.run(&mut HistoryProjection::new(config.history_grace_ms), stop).await })
    };
    shutdown.await;
    let _ = stop_tx.send(true);
    live_task.await.context("live projection task")??;
    history_task.await.context("history projection task")??;
    Ok(())
}

/// Applies everything in the log now; returns the live projection's position.
pub async fn catch_up(db: &Database, config: ProjectionConfig) -> Result<i64> {
    let (live, history) = subscriptions(db, config.batch_max_events);
    let position = live.catch_up(&mut LiveProjection::new(config.plant_number)).await?;
    history.catch_up(&mut HistoryProjection::new(config.history_grace_ms)).await?;
    Ok(position)
}

/// What a rebuild did.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RebuildReport {
    pub events: i64,
    pub seconds: f64,
}

/// Drops every read-model row and folds the whole log again. Safe while the node runs:
/// running projections notice their checkpoint moved and reload.
pub async fn rebuild(db: &Database, config: ProjectionConfig) -> Result<RebuildReport> {
    let started = std::time::Instant::now();
    {
        let mut client = db.client().await?;
        let tx = client.transaction().await?;
        for name in [LIVE, HISTORY] {
            tx.execute(
                "INSERT INTO eventlog.checkpoints (subscriber, position) VALUES ($1, 0) ON CONFLICT DO NOTHING",
                &[&name],
            )
            .await?;
            tx.query("SELECT 1 FROM eventlog.checkpoints WHERE subscriber = $1 FOR UPDATE", &[&name]).await?;
        }
        tx.batch_execute(include_str!("../sql/reset_projections.sql")).await?;
        tx.execute("UPDATE eventlog.checkpoints SET position = 0 WHERE subscriber = ANY($1)", &[&vec![LIVE, HISTORY]])
            .await?;
        tx.commit().await?;
    }
    // Big batches: a rebuild wants throughput, not latency.
    let (live, history) = subscriptions(db, 2_000);
    let mut live_handler = LiveProjection::new(config.plant_number);
    let mut history_handler = HistoryProjection::new(config.history_grace_ms);
    let (a, b) = tokio::join!(live.catch_up(&mut live_handler), history.catch_up(&mut history_handler));
    let events = a?;
    b?;
    Ok(RebuildReport { events, seconds: started.elapsed().as_secs_f64() })
}

/// Drops raw-history partitions whose day ended before `history_cutoff` and minute
/// aggregates before `minute_cutoff` (hourly aggregates are kept).
pub async fn expire(
    db: &Database,
    history_cutoff: chrono::DateTime<chrono::Utc>,
    minute_cutoff: chrono::DateTime<chrono::Utc>,
) -> Result<Vec<String>> {
    let client = db.client().await?;
    let mut dropped = Vec::new();
    for (parent, cutoff) in [("sensor_history", history_cutoff), ("sensor_minute", minute_cutoff)] {
        let rows = client
            .query(
                "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid \
                 WHERE i.inhparent = ('readmodel.' || $1)::regclass ORDER BY c.relname",
                &[&parent],
            )
            .await?;
        for row in rows {
            let name: String = row.get(0);
            let Some(day) = name.rsplit('_').next().and_then(|d| chrono::NaiveDate::parse_from_str(d, "%Y%m%d").ok())
            else {
                continue;
            };
            let end = (day + chrono::Duration::days(1)).and_hms_opt(0, 0, 0).expect("midnight exists").and_utc();
            if end <= cutoff {
                client.batch_execute(&format!("DROP TABLE readmodel.{name}")).await?;
                dropped.push(name);
            }
        }
    }
    Ok(dropped)
}

/// Waits until both projections have applied everything up to `position` (or the
/// timeout passes); for tools and tests that need read-your-writes.
pub async fn wait_for(db: &Database, position: i64, timeout: Duration) -> Result<bool> {
    let deadline = tokio::time::Instant::now() + timeout;
    let client = db.client().await?;
    loop {
        let live = eventlog::checkpoint(&client, LIVE).await?;
        if live >= position {
            return Ok(true);
        }
        if tokio::time::Instant::now() >= deadline {
            return Ok(false);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
