//! The plant's read models (schema `readmodel`) and the projections that build them.
//!
//! Three projections follow the log, each with its own checkpoint:
//! * [`live`] — sensor state, machine/line/plant roll-ups, anomalies, maintenance, the
//!   layout tables and the audit trail, written after every batch;
//! * [`history`] — raw readings per sensor per minute and per-minute/per-hour aggregates,
//!   written as each minute closes;
//! * [`track`] — the maintenance track record: how predictions turned out per machine,
//!   machine type and model version, and each failure with what was predicted before it
//!   (the fold is `maintenance::TrackRecord`, the evaluation's own).
//!
//! Each is a pure fold plus a [`eventlog::Handler`] that writes what changed
//! in the same transaction as the checkpoint and sends `NOTIFY readmodel, '<position>'`.
//! [`rebuild`] drops every row and folds the whole log again; the result equals the
//! live tables row for row. [`forwarding`] is the plant's link to the cloud, written by
//! its forwarder. What readers see of the tables — rows, status values, "what changed
//! since position N" — is `readmodel_contract`'s.

pub mod forwarding;
pub mod history;
pub mod live;
pub mod timetravel;
pub mod track;

use std::future::Future;

use anyhow::{Context, Result};
use eventlog::{Database, Subscription, SubscriptionConfig};

pub use history::{HISTORY, HistoryProjection};
pub use live::{LIVE, LiveProjection};
pub use track::{TRACK, TrackConfig, TrackRecordProjection};

pub use readmodel_contract::{CHANNEL, READER_ROLE};

mod embedded {
    refinery::embed_migrations!("migrations");
}

/// Applies the event log's and the read models' migrations.
pub async fn migrate(db: &Database) -> Result<()> {
    db.migrate().await?;
    db.run_migrations(embedded::migrations::runner(), "readmodel_schema_history").await
}

/// Sets the read-only role's password (the role exists once [`migrate`] has run). The
/// role is the server's, shared by every plant database, whose nodes may set it at the
/// same instant: see [`eventlog::execute_server_wide`].
pub async fn set_reader_password(db: &Database, password: &str) -> Result<()> {
    // ALTER ROLE takes no parameters; the password is quoted as a literal.
    let literal = format!("'{}'", password.replace('\'', "''"));
    eventlog::execute_server_wide(db, &format!("ALTER ROLE {READER_ROLE} PASSWORD {literal}"))
        .await
        .context("setting the reader role's password")
}

/// How the projections run.
#[derive(Debug, Clone, Copy)]
pub struct ProjectionConfig {
    pub plant_number: u16,
    /// Events per batch (one transaction). Only a projection that is behind reads full
    /// batches, and then every sensor a batch touches costs one row write whatever the
    /// batch's length, so catching up gets cheaper per reading the longer the batch.
    pub batch_max_events: usize,
    /// How long after its end a minute's readings may still arrive before it is written.
    pub history_grace_ms: i64,
    /// Time travel's checkpoints: the live model is frozen every this many positions.
    pub checkpoint_every_events: i64,
}

impl ProjectionConfig {
    pub fn new(plant_number: u16) -> Self {
        ProjectionConfig {
            plant_number,
            batch_max_events: 1_000,
            history_grace_ms: 5_000,
            checkpoint_every_events: timetravel::CHECKPOINT_EVERY_EVENTS,
        }
    }
}

fn live_config(batch: usize) -> SubscriptionConfig {
    SubscriptionConfig::new(LIVE).batch_max_events(batch)
}

fn history_config(batch: usize) -> SubscriptionConfig {
    SubscriptionConfig::new(HISTORY).categories(&["readings"]).batch_max_events(batch)
}

fn subscriptions(db: &Database, batch: usize) -> (Subscription, Subscription) {
    (Subscription::new(db.clone(), live_config(batch)), Subscription::new(db.clone(), history_config(batch)))
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
        tokio::spawn(async move {
            live.run(&mut LiveProjection::with_checkpoints(config.plant_number, config.checkpoint_every_events), stop)
                .await
        })
    };
    let history_task = {
        let stop = stopped(stop_rx.clone());
        tokio::spawn(async move { history.run(&mut HistoryProjection::new(config.history_grace_ms), stop).await })
    };
    let track_task = {
        let stop = stopped(stop_rx);
        let db = db.clone();
        tokio::spawn(async move { track::run(db, TrackConfig::new(config.plant_number), stop).await })
    };
    shutdown.await;
    let _ = stop_tx.send(true);
    live_task.await.context("live projection task")??;
    history_task.await.context("history projection task")??;
    track_task.await.context("track record projection task")??;
    Ok(())
}

/// One of the two projections, to run on its own (under a supervisor).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Projection {
    Live,
    History,
}

impl Projection {
    /// The subscriber's name (its checkpoint).
    pub fn subscriber(self) -> &'static str {
        match self {
            Projection::Live => LIVE,
            Projection::History => HISTORY,
        }
    }
}

/// Runs one projection until `shutdown`, telling `health` of every interruption and of
/// reading again, so a supervisor sees a projection that keeps failing.
pub async fn run_projection(
    db: &Database,
    which: Projection,
    config: ProjectionConfig,
    health: std::sync::Arc<dyn eventlog::SubscriberHealth>,
    shutdown: impl Future<Output = ()>,
) -> Result<()> {
    let batch = config.batch_max_events;
    match which {
        Projection::Live => {
            let live = Subscription::new(db.clone(), live_config(batch).health(health));
            live.run(
                &mut LiveProjection::with_checkpoints(config.plant_number, config.checkpoint_every_events),
                shutdown,
            )
            .await
        }
        Projection::History => {
            let history = Subscription::new(db.clone(), history_config(batch).health(health));
            history.run(&mut HistoryProjection::new(config.history_grace_ms), shutdown).await
        }
    }
}

/// Applies everything in the log now; returns the live projection's position.
pub async fn catch_up(db: &Database, config: ProjectionConfig) -> Result<i64> {
    let (live, history) = subscriptions(db, config.batch_max_events);
    let position = live
        .catch_up(&mut LiveProjection::with_checkpoints(config.plant_number, config.checkpoint_every_events))
        .await?;
    history.catch_up(&mut HistoryProjection::new(config.history_grace_ms)).await?;
    track::catch_up(db, TrackConfig::new(config.plant_number)).await?;
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
        eventlog::reset_checkpoints(&tx, &[LIVE, HISTORY, TRACK]).await?;
        tx.batch_execute(include_str!("../sql/reset_projections.sql")).await?;
        tx.batch_execute(include_str!("../sql/track/reset.sql")).await?;
        tx.commit().await?;
    }
    // Big batches: a rebuild wants throughput, not latency.
    let (live, history) = subscriptions(db, 2_000);
    let mut live_handler = LiveProjection::with_checkpoints(config.plant_number, config.checkpoint_every_events);
    let mut history_handler = HistoryProjection::new(config.history_grace_ms);
    let (a, b, c) = tokio::join!(
        live.catch_up(&mut live_handler),
        history.catch_up(&mut history_handler),
        track::catch_up(db, TrackConfig::new(config.plant_number))
    );
    let events = a?;
    b?;
    c?;
    Ok(RebuildReport { events, seconds: started.elapsed().as_secs_f64() })
}

/// The read models partitioned by day: raw history and minute aggregates.
const RAW_HISTORY: &str = "readmodel.sensor_history";
const MINUTE_AGGREGATES: &str = "readmodel.sensor_minute";

/// Space the day-partitioned history takes, indexes included.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HistoryStorage {
    pub raw_bytes: i64,
    pub minute_bytes: i64,
}

pub async fn history_storage(db: &Database) -> Result<HistoryStorage> {
    let client = db.client().await?;
    let bytes = async |parent| -> Result<i64> {
        Ok(eventlog::partitions(&client, parent).await?.iter().map(|p| p.bytes).sum())
    };
    Ok(HistoryStorage { raw_bytes: bytes(RAW_HISTORY).await?, minute_bytes: bytes(MINUTE_AGGREGATES).await? })
}

/// Drops raw-history partitions whose day ended before `history_cutoff` and minute
/// aggregates before `minute_cutoff` (hourly aggregates are kept), and finishes any drop
/// an earlier run left half-way. Each day is detached concurrently and then dropped
/// ([`eventlog::drop_day_table`]): readers of the read models never wait for it. `db`
/// must connect as the read models' owner (only the owner may detach a partition).
pub async fn expire(
    db: &Database,
    history_cutoff: chrono::DateTime<chrono::Utc>,
    minute_cutoff: chrono::DateTime<chrono::Utc>,
) -> Result<Vec<String>> {
    let client = db.client().await?;
    let mut dropped = Vec::new();
    for (parent, cutoff) in [(RAW_HISTORY, history_cutoff), (MINUTE_AGGREGATES, minute_cutoff)] {
        for table in eventlog::day_tables(&client, parent).await? {
            let Some(day) =
                table.name.rsplit('_').next().and_then(|d| chrono::NaiveDate::parse_from_str(d, "%Y%m%d").ok())
            else {
                continue;
            };
            let end = (day + chrono::Duration::days(1)).and_hms_opt(0, 0, 0).expect("midnight exists").and_utc();
            // A day a drop left half-way goes whatever its age: it was old enough then,
            // and while its table is there the day cannot be made again.
            if end <= cutoff || table.state != eventlog::DayTableState::Attached {
                eventlog::drop_day_table(&client, parent, &table).await?;
                dropped.push(table.name);
            }
        }
    }
    Ok(dropped)
}

/// One task of the plant node as its supervisor reports it (see `readmodel.node_tasks`).
#[derive(Debug, Clone, PartialEq)]
pub struct NodeTaskReport {
    pub task: String,
    /// A `readmodel_contract::TaskState` name.
    pub state: &'static str,
    pub since: chrono::DateTime<chrono::Utc>,
    pub restarts: u32,
    pub last_error: Option<String>,
    pub lag_events: Option<i64>,
}

/// Longest error text kept per task: enough to read the cause, never a flood.
const TASK_ERROR_CHARS: usize = 2_000;

/// Writes the node's task states; rows that changed get a new position and readers are
/// woken. An error's text may carry anything a device sent (a NUL, which PostgreSQL
/// text refuses, or megabytes): it is made storable and cut short.
pub async fn record_node_tasks(db: &Database, tasks: &[NodeTaskReport]) -> Result<()> {
    let mut client = db.client().await?;
    let tx = client.transaction().await?;
    let upsert = tx.prepare_cached(include_str!("../sql/upsert_node_task.sql")).await?;
    let mut newest = None::<i64>;
    for t in tasks {
        let error = t.last_error.as_deref().map(storable_text);
        let restarts = i32::try_from(t.restarts).unwrap_or(i32::MAX);
        let row = tx.query_opt(&upsert, &[&t.task, &t.state, &t.since, &restarts, &error, &t.lag_events]).await?;
        if let Some(row) = row {
            newest = newest.max(Some(row.get::<_, i64>(0)));
        }
    }
    if let Some(position) = newest {
        tx.execute(include_str!("../sql/notify.sql"), &[&position.to_string()]).await?;
    }
    tx.commit().await.context("recording the node's task states")
}

fn storable_text(text: &str) -> String {
    text.chars().take(TASK_ERROR_CHARS).map(|c| if c == '\0' { '\u{FFFD}' } else { c }).collect()
}
