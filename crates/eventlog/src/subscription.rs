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

/// A consumer of the log.
///
/// Its in-memory state must equal what [`Handler::load`] rebuilds from the database:
/// when a batch's transaction fails, the runner calls `load` again before retrying.
pub trait Handler: Send {
    /// Rebuilds in-memory state from the database (called before the first batch and
    /// after any failure).
    fn load(&mut self, client: &deadpool_postgres::Client) -> impl Future<Output = Result<()>> + Send {
        let _ = client;
        async { Ok(()) }
    }

    /// Applies `events` (in position order) inside `tx`, which also stores the new
    /// checkpoint when it commits.
    fn apply(&mut self, tx: &Transaction<'_>, events: &[RecordedEvent]) -> impl Future<Output = Result<()>> + Send;

    /// Called after the batch ending at `position` has committed.
    fn committed(&mut self, position: i64) {
        let _ = position;
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
    /// Re-check the log this often even without a notification (a safety net, not the
    /// way new events are noticed).
    pub idle_recheck_ms: u64,
    /// Longest pause between attempts after an error.
    pub retry_max_backoff_ms: u64,
}

impl SubscriptionConfig {
    pub fn new(name: impl Into<String>) -> Self {
        SubscriptionConfig {
            name: name.into(),
            categories: None,
            batch_max_events: 500,
            idle_recheck_ms: 5_000,
            retry_max_backoff_ms: 5_000,
        }
    }

    pub fn categories(mut self, categories: &[&str]) -> Self {
        self.categories = Some(categories.iter().map(|c| (*c).to_owned()).collect());
        self
    }

    pub fn batch_max_events(mut self, n: usize) -> Self {
        self.batch_max_events = n.max(1);
        self
    }
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
    pub async fn apply_next_batch<H: Handler>(
        &self,
        client: &mut deadpool_postgres::Client,
        handler: &mut H,
    ) -> Result<usize> {
        let tx = client.transaction().await?;
        let create = tx.prepare_cached(include_str!("../sql/create_checkpoint.sql")).await?;
        tx.execute(&create, &[&self.config.name]).await?;
        let lock = tx.prepare_cached(include_str!("../sql/lock_checkpoint.sql")).await?;
        let after: i64 = tx.query_one(&lock, &[&self.config.name]).await?.get(0);
        // Read the head before the events: every position up to it is committed and
        // visible to the next statement, so a filtered reader that found fewer events
        // than it asked for may move its checkpoint up to the head.
        let head = head_position(&tx).await?;
        let events = read_all(&tx, after, self.config.batch_max_events, self.config.categories.as_deref()).await?;
        let mut last = events.last().map_or(after, |e| e.position);
        if events.len() < self.config.batch_max_events {
            last = last.max(head);
        }
        if last == after {
            tx.commit().await?;
            return Ok(0);
        }
        if !events.is_empty() {
            handler
                .apply(&tx, &events)
                .await
                .with_context(|| format!("{} applying events after {after}", self.config.name))?;
        }
        let save = tx.prepare_cached(include_str!("../sql/save_checkpoint.sql")).await?;
        tx.execute(&save, &[&self.config.name, &last]).await?;
        tx.commit().await?;
        handler.committed(last);
        Ok(events.len())
    }

    /// Applies batches until the log holds nothing newer; returns the checkpoint.
    pub async fn catch_up<H: Handler>(&self, handler: &mut H) -> Result<i64> {
        let mut client = self.db.client().await?;
        handler.load(&client).await?;
        while self.apply_next_batch(&mut client, handler).await? > 0 {}
        checkpoint(&client, &self.config.name).await
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
        handler.load(&client).await?;
        let idle = Duration::from_millis(self.config.idle_recheck_ms);
        loop {
            let applied = self.apply_next_batch(&mut client, handler).await?;
            if applied < self.config.batch_max_events {
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
