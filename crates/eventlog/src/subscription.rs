//! Subscriptions (the change feed): a consumer reads the log after its checkpoint, in
//! order, woken by NOTIFY, and commits its effects and its new checkpoint in one
//! transaction, so stopping it at any instant loses and doubles nothing.

use std::future::Future;
use std::time::Duration;

use anyhow::{Context, Result};
use deadpool_postgres::{GenericClient, Transaction};

use crate::append::LOG_CHANNEL;
use crate::db::Database;
use crate::model::RecordedEvent;
use crate::read::{head_position, read_all};

/// Why a handler's stored state cannot be loaded: it is damaged or was written by a
/// version that cannot be resumed. Loading it again cannot help, so the runner asks the
/// handler to [`Handler::recover`] instead of retrying forever.
#[derive(Debug, Clone, thiserror::Error)]
#[error("stored state cannot be loaded: {0}")]
pub struct Unloadable(pub String);

/// A consumer of the log.
///
/// Its in-memory state must equal what [`Handler::load`] rebuilds from the database at
/// the stored checkpoint: the runner calls `load` before the first batch, after any
/// failure, and whenever the checkpoint was moved by someone else (a rebuild).
pub trait Handler: Send {
    /// Rebuilds in-memory state from the database, inside the transaction that holds
    /// the subscriber's checkpoint.
    fn load(&mut self, tx: &Transaction<'_>) -> impl Future<Output = Result<()>> + Send {
        let _ = tx;
        async { Ok(()) }
    }

    /// Applies `events` (in position order) inside `tx`, which also stores the new
    /// checkpoint when it commits.
    fn apply(&mut self, tx: &Transaction<'_>, events: &[RecordedEvent]) -> impl Future<Output = Result<()>> + Send;

    /// The checkpoint to store after applying a batch ending at `last`: every event up
    /// to it must be fully reflected in the database. A handler that holds some effects
    /// in memory (to write them later, in bulk) returns less; after a restart it is given
    /// the events after that position again and must not apply them twice.
    fn durable_position(&self, last: i64) -> i64 {
        last
    }

    /// Called after the batch ending at `position` has committed.
    fn committed(&mut self, position: i64) {
        let _ = position;
    }

    /// Called, inside the same transaction, when [`Handler::load`] failed with an
    /// [`Unloadable`] error: fall back to an older state, or to nothing (a rebuild from
    /// the log), and return the position that state stands at, at most `stored`. The
    /// runner stores it as the checkpoint, so a restart resumes from the same fallback.
    /// `None` (the default) keeps failing, with back-off.
    fn recover(
        &mut self,
        tx: &Transaction<'_>,
        stored: i64,
        reason: &str,
    ) -> impl Future<Output = Result<Option<i64>>> + Send {
        let _ = (tx, stored, reason);
        async { Ok(None) }
    }
}

/// Where a running subscriber has read to, and what it last stored as its checkpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    pub read_after: i64,
    pub stored: i64,
    /// The last batch stopped at a bound (its events or its readings): more is waiting.
    pub more: bool,
}

/// Told how a running subscriber fares, for whoever supervises it: the subscription
/// retries an error by itself, forever, so without this a subscriber that fails on
/// every batch looks alive from outside.
pub trait SubscriberHealth: Send + Sync {
    /// A batch failed (or the connection went); the subscription will retry.
    fn interrupted(&self, error: &anyhow::Error);
    /// The subscription is connected and reading (a batch applied, or nothing to read).
    fn reading(&self);
}

/// A [`SubscriberHealth`] shared by the subscription and its supervisor.
#[derive(Clone)]
pub struct HealthHook(pub std::sync::Arc<dyn SubscriberHealth>);

impl std::fmt::Debug for HealthHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HealthHook")
    }
}

/// How a subscription reads.
#[derive(Debug, Clone)]
pub struct SubscriptionConfig {
    /// The checkpoint's name; one live instance per name (a second one waits).
    pub name: String,
    /// Only events of streams in these categories (all events when `None`).
    pub categories: Option<Vec<String>>,
    pub batch_max_events: usize,
    /// At most this many readings (telemetry batches counted by their readings) per batch,
    /// so a backlog of large telemetry batches does not make one transaction run for long;
    /// a single batch larger than this still goes, on its own. `None`: no bound.
    pub batch_max_readings: Option<usize>,
    /// Re-check the log this often even without a notification (a safety net, not the
    /// way new events are noticed).
    pub idle_recheck_ms: u64,
    /// Longest pause between attempts after an error.
    pub retry_max_backoff_ms: u64,
    /// Told of every interruption and of reading again after one.
    pub health: Option<HealthHook>,
}

impl SubscriptionConfig {
    pub fn new(name: impl Into<String>) -> Self {
        SubscriptionConfig {
            name: name.into(),
            categories: None,
            batch_max_events: 500,
            batch_max_readings: None,
            idle_recheck_ms: 5_000,
            retry_max_backoff_ms: 5_000,
            health: None,
        }
    }

    pub fn health(mut self, hook: std::sync::Arc<dyn SubscriberHealth>) -> Self {
        self.health = Some(HealthHook(hook));
        self
    }

    pub fn categories(mut self, categories: &[&str]) -> Self {
        self.categories = Some(categories.iter().map(|c| (*c).to_owned()).collect());
        self
    }

    pub fn batch_max_events(mut self, n: usize) -> Self {
        self.batch_max_events = n.max(1);
        self
    }

    pub fn batch_max_readings(mut self, n: usize) -> Self {
        self.batch_max_readings = Some(n.max(1));
        self
    }
}

/// How many of `events` one batch takes under a bound of `max` readings: up to and
/// including the event that reaches it (at least one event, so a batch larger than the
/// bound still goes, alone).
fn cut_at_readings(events: &[RecordedEvent], max: usize) -> usize {
    let mut readings = 0usize;
    for (i, e) in events.iter().enumerate() {
        readings = readings.saturating_add(e.reading_count());
        if readings >= max {
            return i + 1;
        }
    }
    events.len()
}

/// A named reader of one database's log.
#[derive(Debug, Clone)]
pub struct Subscription {
    db: Database,
    config: SubscriptionConfig,
}

impl Subscription {
    pub fn new(db: Database, config: SubscriptionConfig) -> Self {
        Subscription { db, config }
    }

    pub fn name(&self) -> &str {
        &self.config.name
    }

    /// The stored checkpoint (0 when the subscriber has never run).
    pub async fn checkpoint(&self) -> Result<i64> {
        let client = self.db.client().await?;
        checkpoint(&client, &self.config.name).await
    }

    /// Applies one batch if there is one; returns the number of events applied.
    /// `cursor` carries the position between calls (`None` before the first).
    pub async fn apply_next_batch<H: Handler>(
        &self,
        client: &mut deadpool_postgres::Client,
        handler: &mut H,
        cursor: &mut Option<Cursor>,
    ) -> Result<usize> {
        let result = self.try_apply_next_batch(client, handler, cursor).await;
        if result.is_err() {
            // Whatever happened, memory may be ahead of the database: reload next time.
            *cursor = None;
        }
        result
    }

    async fn try_apply_next_batch<H: Handler>(
        &self,
        client: &mut deadpool_postgres::Client,
        handler: &mut H,
        cursor: &mut Option<Cursor>,
    ) -> Result<usize> {
        let tx = client.transaction().await?;
        let create = tx.prepare_cached(include_str!("../sql/create_checkpoint.sql")).await?;
        tx.execute(&create, &[&self.config.name]).await?;
        let lock = tx.prepare_cached(include_str!("../sql/lock_checkpoint.sql")).await?;
        let row = tx.query_one(&lock, &[&self.config.name]).await?;
        let (mut stored, read_through): (i64, i64) = (row.get(0), row.get(1));
        // Another instance (or a rebuild) moved on since this one's last batch when either
        // the checkpoint or how far it was read differs: memory is stale, reload (or fall
        // back to an older state, which moves `stored`).
        let after = match *cursor {
            Some(c) if c.stored == stored && c.read_after == read_through => c.read_after,
            _ => {
                stored = self.load_or_recover(&tx, handler, stored).await?;
                stored
            }
        };
        // Read the head before the events: every position up to it is committed and
        // visible to the next statement, so a filtered reader that found fewer events
        // than it asked for may move past everything up to the head.
        //
        // Events past that head are left for the next batch. A day partition is attached
        // without waiting for open readers, and a statement plans with the partitions it
        // knew when it took its locks, while it sees rows committed up to its snapshot,
        // taken a moment later: events of a partition attached in that moment could be
        // missing from the read while later events of older days are in it. Every event
        // up to the head was committed before the head was read, so its partition was
        // attached before the read took its locks, and the read sees it.
        let head = head_position(&tx).await?;
        let mut events = read_all(&tx, after, self.config.batch_max_events, self.config.categories.as_deref()).await?;
        events.retain(|e| e.position <= head);
        let cut = self.config.batch_max_readings.map(|max| cut_at_readings(&events, max)).unwrap_or(events.len());
        let bounded = cut < events.len();
        events.truncate(cut);
        let mut last = events.last().map_or(after, |e| e.position);
        // A batch cut short by its readings is followed at once by the rest.
        if events.len() < self.config.batch_max_events && !bounded {
            last = last.max(head);
        }
        if last == after {
            tx.commit().await?;
            *cursor = Some(Cursor { read_after: after, stored, more: false });
            return Ok(0);
        }
        if !events.is_empty() {
            handler
                .apply(&tx, &events)
                .await
                .with_context(|| format!("{} applying events after {after}", self.config.name))?;
        }
        let durable = handler.durable_position(last).clamp(stored, last);
        // Saved even when the checkpoint stays: `read_through` says how far it has read.
        let save = tx.prepare_cached(include_str!("../sql/save_checkpoint.sql")).await?;
        tx.execute(&save, &[&self.config.name, &durable, &last]).await?;
        tx.commit().await?;
        let more = bounded || events.len() >= self.config.batch_max_events;
        *cursor = Some(Cursor { read_after: last, stored: durable, more });
        handler.committed(last);
        Ok(events.len())
    }

    /// Loads the handler's state at `stored`; when that state cannot be loaded at all,
    /// lets the handler fall back (loudly) and moves the checkpoint to where it fell back.
    async fn load_or_recover<H: Handler>(&self, tx: &Transaction<'_>, handler: &mut H, stored: i64) -> Result<i64> {
        let name = &self.config.name;
        let Err(e) = handler.load(tx).await else { return Ok(stored) };
        let Some(unloadable) = e.chain().find_map(|c| c.downcast_ref::<Unloadable>()) else {
            return Err(e.context(format!("{name} loading its state at {stored}")));
        };
        let reason = unloadable.0.clone();
        let Some(position) = handler.recover(tx, stored, &reason).await? else {
            return Err(e.context(format!("{name} loading its state at {stored}")));
        };
        let position = position.clamp(0, stored);
        tracing::error!(
            subscriber = %name,
            reason = %reason,
            from = stored,
            to = position,
            "state could not be loaded: fell back to an older state and reads the log again from there"
        );
        if position != stored {
            // Read again from the fallback: both the checkpoint and how far it was read
            // stand at the state it fell back to.
            let save = tx.prepare_cached(include_str!("../sql/save_checkpoint.sql")).await?;
            tx.execute(&save, &[name, &position, &position]).await?;
        }
        Ok(position)
    }

    /// Applies batches until the log holds nothing newer; returns the position read to.
    pub async fn catch_up<H: Handler>(&self, handler: &mut H) -> Result<i64> {
        let mut client = self.db.client().await?;
        let mut cursor = None;
        while self.apply_next_batch(&mut client, handler, &mut cursor).await? > 0 {}
        Ok(cursor.map_or(0, |c| c.read_after))
    }

    /// Runs until `shutdown` completes: applies new events as NOTIFY announces them,
    /// and after any error reconnects with back-off and resumes from the checkpoint.
    pub async fn run<H: Handler>(&self, handler: &mut H, shutdown: impl Future<Output = ()>) -> Result<()> {
        tokio::pin!(shutdown);
        let mut backoff = Duration::from_millis(100);
        loop {
            tokio::select! {
                biased;
                () = &mut shutdown => return Ok(()),
                result = self.run_connected(handler) => {
                    let e = result.expect_err("run_connected only returns on error");
                    if let Some(h) = &self.config.health {
                        h.0.interrupted(&e);
                    }
                    tracing::warn!(subscriber = %self.config.name, error = format!("{e:#}"), retry_in_ms = backoff.as_millis() as u64, "subscription interrupted");
                }
            }
            tokio::select! {
                biased;
                () = &mut shutdown => return Ok(()),
                () = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(Duration::from_millis(self.config.retry_max_backoff_ms));
        }
    }

    async fn run_connected<H: Handler>(&self, handler: &mut H) -> Result<std::convert::Infallible> {
        // Listen before the first read, so nothing appended in between goes unnoticed.
        let mut listener = self.db.listen(&[LOG_CHANNEL]).await?;
        let mut client = self.db.client().await?;
        let mut cursor = None;
        let idle = Duration::from_millis(self.config.idle_recheck_ms);
        loop {
            let applied = self.apply_next_batch(&mut client, handler, &mut cursor).await?;
            if let Some(h) = &self.config.health {
                h.0.reading();
            }
            if applied == 0 || !cursor.is_some_and(|c| c.more) {
                listener.wait(idle).await?;
            }
        }
    }
}

/// The stored checkpoint of `subscriber` (0 when none).
pub async fn checkpoint(client: &impl GenericClient, subscriber: &str) -> Result<i64> {
    let stmt = client.prepare_cached(include_str!("../sql/read_checkpoint.sql")).await?;
    Ok(client.query_opt(&stmt, &[&subscriber]).await?.map_or(0, |r| r.get(0)))
}

/// How many positions of the log `subscriber` has not stored yet (head − its checkpoint).
pub async fn lag(client: &impl GenericClient, subscriber: &str) -> Result<i64> {
    Ok(head_position(client).await? - checkpoint(client, subscriber).await?)
}

/// Moves the checkpoints of `subscribers` back to 0 (creating those missing), so they
/// read the whole log again. The rows stay locked until `tx` ends: a running instance
/// waits instead of storing a batch over it, and then notices its checkpoint moved.
pub async fn reset_checkpoints(tx: &Transaction<'_>, subscribers: &[&str]) -> Result<()> {
    let create = tx.prepare_cached(include_str!("../sql/create_checkpoint.sql")).await?;
    let lock = tx.prepare_cached(include_str!("../sql/lock_checkpoint.sql")).await?;
    let save = tx.prepare_cached(include_str!("../sql/save_checkpoint.sql")).await?;
    for name in subscribers {
        tx.execute(&create, &[name]).await?;
        tx.query_one(&lock, &[name]).await?;
    }
    for name in subscribers {
        tx.execute(&save, &[name, &0i64, &0i64]).await?;
    }
    Ok(())
}

/// How far every one of `subscribers` has read (the lowest of them), and whether all of
/// them have started: a reader of their effects may trust everything up to it.
pub async fn read_through(client: &impl GenericClient, subscribers: &[&str]) -> Result<(i64, bool)> {
    let stmt = client.prepare_cached(include_str!("../sql/read_through.sql")).await?;
    let row = client.query_one(&stmt, &[&subscribers]).await?;
    Ok((row.get(0), row.get::<_, i64>(1) == subscribers.len() as i64))
}

/// Creates `subscriber`'s checkpoint at 0 unless it has one. A consumer that must hold
/// retention back before it first runs (a forwarder whose cloud is unreachable) calls
/// this at start: telemetry is only dropped once every checkpoint has passed it.
pub async fn ensure_checkpoint(client: &impl GenericClient, subscriber: &str) -> Result<()> {
    let stmt = client.prepare_cached(include_str!("../sql/create_checkpoint.sql")).await?;
    client.execute(&stmt, &[&subscriber]).await?;
    Ok(())
}
