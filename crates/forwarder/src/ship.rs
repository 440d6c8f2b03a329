//! The forwarder's subscription: read, ship, and move the checkpoint once acknowledged.

use std::future::Future;
use std::time::Duration;

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use eventlog::{Database, Handler, LOG_CHANNEL, RecordedEvent, Subscription, SubscriptionConfig, Transaction};
use futures_util::StreamExt;
use readmodels::forwarding::LinkState;

use crate::client::{CloudClient, CloudError};
use crate::wire::{WireBatch, WireEvent};

/// The forwarder's checkpoint name in the plant's log.
pub const FORWARDER: &str = "forwarder";

/// How a plant's forwarder runs.
#[derive(Debug, Clone)]
pub struct ForwarderConfig {
    pub plant: u16,
    /// The cloud node, e.g. `http://127.0.0.1:8090`.
    pub cloud_url: String,
    /// A forwarder credential of this plant.
    pub token: String,
    /// Events read from the plant's log per transaction.
    pub batch_max_events: usize,
    /// Most events in one request; a read batch is split into requests of this size.
    pub request_max_events: usize,
    /// Largest request body; a read batch is split to fit.
    pub request_max_bytes: usize,
    /// Requests sent and not yet answered, at most: while the cloud stores one, the next
    /// ones travel and are checked. The cloud stores them in order.
    pub requests_in_flight: usize,
    /// A request not answered in this time is abandoned and sent again.
    pub request_timeout_ms: u64,
    /// Longest pause between attempts while the cloud is away.
    pub retry_max_backoff_ms: u64,
    /// Look at the log this often even without a notification.
    pub idle_recheck_ms: u64,
}

impl ForwarderConfig {
    pub fn new(plant: u16, cloud_url: impl Into<String>, token: impl Into<String>) -> Self {
        ForwarderConfig {
            plant,
            cloud_url: cloud_url.into(),
            token: token.into(),
            batch_max_events: 4_000,
            request_max_events: 1_000,
            request_max_bytes: 8 * 1024 * 1024,
            requests_in_flight: 3,
            request_timeout_ms: 30_000,
            retry_max_backoff_ms: 30_000,
            idle_recheck_ms: 5_000,
        }
    }
}

/// The handler: what the cloud has acknowledged, and where the plant's reader stands.
struct Shipper {
    client: CloudClient,
    config: ForwarderConfig,
    plant_id: String,
    /// The plant position the cloud has stored through.
    acknowledged: i64,
    /// The position the subscription has read through (its stored checkpoint at load).
    cursor: i64,
    cloud_position: Option<i64>,
    last_shipped_at: Option<DateTime<Utc>>,
    /// Set when a batch was shipped since the last look (resets the back-off).
    progressed: bool,
}

impl Shipper {
    /// Sends `events` (all after `acknowledged`, nothing left out in between) in requests
    /// bounded in events and bytes, up to `requests_in_flight` of them at once. Each
    /// request follows the previous one's last event; the answers are taken in order, so
    /// `acknowledged` only ever moves over what the cloud stored without a gap. A request
    /// is encoded only once a place in flight is free, so memory stays bounded by the
    /// read batch and the requests in flight.
    async fn ship(&mut self, events: &[&RecordedEvent]) -> Result<()> {
        let requests = split(events, self.config.request_max_events, self.config.request_max_bytes);
        let plant = self.config.plant;
        let mut after = self.acknowledged;
        let sends = requests.into_iter().map(|range| {
            let chunk = &events[range];
            let last = chunk.last().map_or(after, |e| e.position);
            let batch: Vec<WireEvent> = chunk.iter().map(|e| WireEvent::from_recorded(e)).collect();
            let body = WireBatch::new(plant, after, batch).encode();
            after = last;
            let client = self.client.clone();
            async move { (last, client.send(body).await) }
        });
        let mut answers = futures_util::stream::iter(sends).buffered(self.config.requests_in_flight.max(1));
        while let Some((last, ack)) = answers.next().await {
            let ack = ack?;
            if ack.acknowledged < last {
                return Err(CloudError::Gap(format!(
                    "the cloud acknowledged {} after a batch through {last}",
                    ack.acknowledged
                ))
                .into());
            }
            self.acknowledged = ack.acknowledged;
            self.cloud_position = Some(ack.cloud_position);
            self.last_shipped_at = Some(Utc::now());
            self.progressed = true;
        }
        Ok(())
    }

    fn link(&self, state: &'static str, error: Option<String>) -> LinkState {
        LinkState {
            plant_id: self.plant_id.clone(),
            state,
            acknowledged: self.acknowledged,
            cloud_position: self.cloud_position,
            last_shipped_at: self.last_shipped_at,
            last_error_at: error.as_ref().map(|_| Utc::now()),
            last_error: error,
        }
    }
}

impl Handler for Shipper {
    async fn load(&mut self, tx: &Transaction<'_>) -> Result<()> {
        self.cursor = eventlog::checkpoint(tx, FORWARDER).await?;
        let ack = self.client.position().await.context("asking the cloud where it stands")?;
        if ack.acknowledged < self.cursor {
            tracing::warn!(
                plant = self.config.plant,
                cloud = ack.acknowledged,
                shipped = self.cursor,
                "the cloud holds less of this plant's log than was shipped; sending the rest again"
            );
        }
        self.acknowledged = ack.acknowledged;
        self.cloud_position = Some(ack.cloud_position);
        Ok(())
    }

    async fn apply(&mut self, tx: &Transaction<'_>, events: &[RecordedEvent]) -> Result<()> {
        // What the cloud lacks before this batch (it lost events it had acknowledged):
        // read it again. An empty read means the log holds nothing in between any more.
        while self.acknowledged < self.cursor {
            let missing = eventlog::read_all(tx, self.acknowledged, self.config.batch_max_events, None).await?;
            let missing: Vec<&RecordedEvent> = missing.iter().take_while(|e| e.position <= self.cursor).collect();
            if missing.is_empty() {
                break;
            }
            self.ship(&missing).await?;
        }
        let fresh: Vec<&RecordedEvent> = events.iter().filter(|e| e.position > self.acknowledged).collect();
        self.ship(&fresh).await?;
        if let Some(last) = events.last() {
            self.cursor = self.cursor.max(last.position);
        }
        let state = if events.len() >= self.config.batch_max_events { "shipping" } else { "caught_up" };
        readmodels::forwarding::record(tx, &self.link(state, None)).await?;
        Ok(())
    }

    fn committed(&mut self, position: i64) {
        self.cursor = self.cursor.max(position);
    }
}

/// Runs the forwarder until `shutdown`: ships the plant's log to the cloud, and after any
/// failure records it, backs off and resumes from what the cloud acknowledged.
pub async fn run(db: Database, config: ForwarderConfig, shutdown: impl Future<Output = ()>) -> Result<()> {
    anyhow::ensure!(config.batch_max_events > 0, "forwarder batch_max_events must be at least 1");
    let client = CloudClient::new(
        &config.cloud_url,
        &config.token,
        config.plant,
        Duration::from_millis(config.request_timeout_ms),
    )?;
    let sub =
        Subscription::new(db.clone(), SubscriptionConfig::new(FORWARDER).batch_max_events(config.batch_max_events));
    let mut shipper = Shipper {
        client,
        plant_id: format!("P{}", config.plant),
        config: config.clone(),
        acknowledged: 0,
        cursor: 0,
        cloud_position: None,
        last_shipped_at: None,
        progressed: false,
    };
    tokio::pin!(shutdown);
    let max_backoff = Duration::from_millis(config.retry_max_backoff_ms.max(100));
    let mut backoff = Duration::from_millis(100);
    let mut holding_retention = false;
    loop {
        let result = tokio::select! {
            biased;
            () = &mut shutdown => return Ok(()),
            result = async {
                if !holding_retention {
                    // From the first start on, the plant keeps what is not shipped yet.
                    eventlog::ensure_checkpoint(&db.client().await?, FORWARDER).await?;
                    holding_retention = true;
                }
                forward(&db, &sub, &mut shipper, config.idle_recheck_ms).await
            } => result,
        };
        let e = result.expect_err("forward only returns on error");
        let refused = e.chain().any(|c| matches!(c.downcast_ref::<CloudError>(), Some(CloudError::Refused { .. })));
        let state = if refused { "refused" } else { "unreachable" };
        if shipper.progressed {
            backoff = Duration::from_millis(100);
        }
        shipper.progressed = false;
        if refused {
            backoff = max_backoff;
            tracing::error!(plant = config.plant, error = format!("{e:#}"), "the cloud refuses this plant's forwarder");
        } else {
            tracing::warn!(
                plant = config.plant,
                error = format!("{e:#}"),
                retry_in_ms = backoff.as_millis() as u64,
                "forwarding interrupted"
            );
        }
        if let Ok(client) = db.client().await
            && let Err(e) = readmodels::forwarding::record(&client, &shipper.link(state, Some(format!("{e:#}")))).await
        {
            tracing::debug!(error = format!("{e:#}"), "could not record the forwarding state");
        }
        tokio::select! {
            biased;
            () = &mut shutdown => return Ok(()),
            () = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(max_backoff);
    }
}

/// Where `events` split into requests of at most `max_events` events and (roughly)
/// `max_bytes` bytes; an event larger than `max_bytes` goes alone.
fn split(events: &[&RecordedEvent], max_events: usize, max_bytes: usize) -> Vec<std::ops::Range<usize>> {
    let mut out = Vec::new();
    let (mut start, mut size) = (0, 0);
    for (i, e) in events.iter().enumerate() {
        let s = WireEvent::size_hint_of(e);
        if i > start && (i - start >= max_events.max(1) || size + s > max_bytes) {
            out.push(start..i);
            (start, size) = (i, 0);
        }
        size += s;
    }
    if start < events.len() {
        out.push(start..events.len());
    }
    out
}

async fn forward(
    db: &Database,
    sub: &Subscription,
    shipper: &mut Shipper,
    idle_recheck_ms: u64,
) -> Result<std::convert::Infallible> {
    // Listen before the first read, so nothing appended in between goes unnoticed.
    let mut listener = db.listen(&[LOG_CHANNEL]).await?;
    let mut client = db.client().await?;
    let mut cursor = None;
    let idle = Duration::from_millis(idle_recheck_ms);
    loop {
        let applied = sub.apply_next_batch(&mut client, shipper, &mut cursor).await?;
        if applied < shipper.config.batch_max_events {
            listener.wait(idle).await?;
        }
    }
}
