//! The plant node: one process per plant that runs the ingest and command APIs, the
//! read-model projections (the maintenance track record among them), the anomaly
//! monitor, the maintenance scorer and telemetry retention against the plant's database,
//! and stops them all cleanly.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use domain::anomaly::ShelvePolicy;
use domain::events::{LAYOUT_CONFIGURED, LayoutConfigured, PLANT};
use eventlog::{Append, Database, ExpectedVersion, Metadata, NewEvent, StreamName, Subscription, SubscriptionConfig};
use layout::{Layout, Scale};
use readmodels::ProjectionConfig;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::commands::{self, CommandState};
use crate::ingest::{self, Clock, IngestConfig, IngestState, IngestStats, Writer, WriterConfig};
use crate::monitor::{MONITOR, MonitorConfig, MonitorHandler};
use crate::scorer::ScorerConfig;
use crate::tokens::GatewayTokens;

/// How a plant node runs.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    pub plant_number: u16,
    /// The layout file's text and the scale it is built at.
    pub layout_toml: String,
    pub scale: Scale,
    /// A sensor is stale after this long without a reading.
    pub stale_after_ms: i64,
    pub ingest: IngestConfig,
    pub writer: WriterConfig,
    pub projections: ProjectionConfig,
    pub monitor: MonitorConfig,
    /// The maintenance scorer: plant time between predictions, machines per query.
    pub scorer: ScorerConfig,
    pub shelve: ShelvePolicy,
    /// Minute aggregates are kept this many days (hourly ones forever).
    pub minute_retention_days: u32,
}

impl NodeConfig {
    pub fn new(plant_number: u16, layout_toml: String, scale: Scale) -> Self {
        NodeConfig {
            plant_number,
            layout_toml,
            scale,
            stale_after_ms: 10_000,
            ingest: IngestConfig::default(),
            writer: WriterConfig::default(),
            projections: ProjectionConfig::new(plant_number),
            monitor: MonitorConfig::new(plant_number),
            scorer: ScorerConfig::default(),
            shelve: ShelvePolicy::default(),
            minute_retention_days: 35,
        }
    }

    fn layout_event(&self) -> LayoutConfigured {
        LayoutConfigured {
            plant: self.plant_number,
            layout_toml: self.layout_toml.clone(),
            plants: self.scale.plants,
            lines_per_plant: self.scale.lines_per_plant,
            sensors_per_plant: self.scale.sensors_per_plant,
            stale_after_ms: self.stale_after_ms,
        }
    }
}

/// Secrets of one plant: who may upload, who may command, and the reader's password.
#[derive(Debug, Clone)]
pub struct NodeSecrets {
    pub gateway_tokens: GatewayTokens,
    pub command_token: String,
    pub reader_password: String,
}

/// Prepares a plant's database: migrations, the reader's password, and the layout
/// recorded in the log (a `LayoutConfigured` event when it differs from the last one).
pub async fn prepare(db: &Database, config: &NodeConfig, secrets: &NodeSecrets) -> Result<Arc<Layout>> {
    crate::migrate(db).await?;
    readmodels::migrate(db).await?;
    readmodels::set_reader_password(db, &secrets.reader_password).await?;
    let layout = Arc::new(Layout::from_toml(&config.layout_toml, &config.scale).context("building the plant layout")?);
    anyhow::ensure!(
        layout.plant_by_number(config.plant_number).is_some(),
        "plant {} is not in the layout (it has plants {:?})",
        config.plant_number,
        layout.plants().iter().map(|p| p.number).collect::<Vec<_>>()
    );
    let wanted = config.layout_event();
    let stream = StreamName::of(PLANT, &format!("P{}", config.plant_number))?;
    let client = db.client().await?;
    let current = eventlog::read_stream(&client, &stream, 0, 100_000)
        .await?
        .into_iter()
        .rfind(|e| e.event_type == LAYOUT_CONFIGURED)
        .map(|e| e.json::<LayoutConfigured>())
        .transpose()?;
    drop(client);
    if current.as_ref() != Some(&wanted) {
        let event = NewEvent::json(LAYOUT_CONFIGURED, 1, &wanted, Metadata::by("plant-node"))?;
        eventlog::append_and_commit(db, &[Append::new(stream, ExpectedVersion::Any, vec![event])]).await?;
    }
    eventlog::prepare_days_ahead(db, chrono::Utc::now()).await?;
    Ok(layout)
}

/// A running plant node's handles, for status displays.
#[derive(Clone)]
pub struct NodeHandle {
    pub stats: Arc<IngestStats>,
    pub writer: Writer,
}

/// Runs a plant node on `listener` until `shutdown`; then stops accepting, finishes the
/// uploads in flight, and stops the projections and the monitor.
pub async fn run(
    db: Database,
    config: NodeConfig,
    secrets: NodeSecrets,
    listener: TcpListener,
    clock: Clock,
    shutdown: impl Future<Output = ()> + Send + 'static,
    on_start: impl FnOnce(NodeHandle) + Send,
) -> Result<()> {
    let layout = prepare(&db, &config, &secrets).await?;
    let (writer, writer_task) = Writer::spawn(db.clone(), config.writer);
    let stats = Arc::new(IngestStats::default());
    on_start(NodeHandle { stats: stats.clone(), writer: writer.clone() });
    let ingest_state = IngestState {
        db: db.clone(),
        layout: layout.clone(),
        plant_number: config.plant_number,
        tokens: Arc::new(secrets.gateway_tokens.clone()),
        writer,
        config: config.ingest,
        clock: clock.clone(),
        stats,
    };
    let command_state = CommandState {
        db: db.clone(),
        layout: layout.clone(),
        token: Arc::new(secrets.command_token.clone()),
        clock: clock.clone(),
        shelve: config.shelve,
    };
    let app = ingest::router(ingest_state).merge(commands::router(command_state)).merge(crate::azure::router());

    let (stop_tx, stop_rx) = watch::channel(false);
    let stopped = |mut rx: watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let projections = tokio::spawn({
        let db = db.clone();
        let stop = stopped(stop_rx.clone());
        let config = config.projections;
        async move { readmodels::run(&db, config, stop).await }
    });
    let monitor = tokio::spawn({
        let sub = Subscription::new(
            db.clone(),
            SubscriptionConfig::new(MONITOR).categories(&["readings", PLANT]).batch_max_events(200),
        );
        let mut handler = MonitorHandler::new(config.monitor.clone())?;
        let stop = stopped(stop_rx.clone());
        async move { sub.run(&mut handler, stop).await }
    });
    let scorer = tokio::spawn({
        let db = db.clone();
        let stop = stopped(stop_rx.clone());
        let config = config.scorer.clone();
        async move { crate::scorer::run(db, config, stop).await }
    });
    let retention = tokio::spawn({
        let db = db.clone();
        let stop = stopped(stop_rx.clone());
        let days = config.ingest.retention_days;
        let minute_days = config.minute_retention_days;
        async move { retain(db, days, minute_days, stop).await }
    });

    axum::serve(listener, app).with_graceful_shutdown(shutdown).await.context("serving the plant's HTTP API")?;
    // The router (and with it every writer handle) is gone: the writer drains and ends.
    writer_task.await.context("log writer")?;
    let _ = stop_tx.send(true);
    projections.await.context("projections task")??;
    monitor.await.context("monitor task")??;
    scorer.await.context("maintenance scorer task")??;
    retention.await.context("retention task")?;
    Ok(())
}

/// Expires old telemetry and read-model partitions once an hour (and at start).
async fn retain(db: Database, days: u32, minute_days: u32, stop: impl Future<Output = ()>) {
    tokio::pin!(stop);
    loop {
        let now = chrono::Utc::now();
        let cutoff = now - chrono::Duration::days(i64::from(days));
        let minute_cutoff = now - chrono::Duration::days(i64::from(minute_days));
        if let Err(e) = eventlog::prepare_days_ahead(&db, now).await {
            tracing::warn!(error = format!("{e:#}"), "could not create telemetry partitions ahead");
        }
        match eventlog::expire_telemetry(&db, cutoff).await {
            Ok(r) if !r.dropped.is_empty() => tracing::info!(dropped = ?r.dropped, "expired telemetry"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = format!("{e:#}"), "telemetry retention failed"),
        }
        if let Err(e) = readmodels::expire(&db, cutoff, minute_cutoff).await {
            tracing::warn!(error = format!("{e:#}"), "read-model retention failed");
        }
        tokio::select! {
            () = &mut stop => return,
            () = tokio::time::sleep(Duration::from_secs(3600)) => {}
        }
    }
}
