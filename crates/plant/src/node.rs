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

use crate::azure::AzureConfig;
use crate::commands::{self, CommandState};
use crate::dead_letters::DeadLetterPolicy;
use crate::ingest::{self, Clock, IngestConfig, IngestState, IngestStats, Writer, WriterConfig};
use crate::monitor::{MONITOR, MonitorConfig, MonitorHandler};
use crate::scorer::ScorerConfig;
use crate::server::ServerLimits;
use crate::supervise::{Backoff, TaskBoard, TaskSlot, stopped, supervise};
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
    /// How long an answer about a credential is remembered: a revocation takes effect
    /// within this time.
    pub credential_cache_ms: u64,
    /// Connections, header and request time-outs of the HTTP API.
    pub http: ServerLimits,
    /// The Anomaly Detector routes: key, body limit, detections at once.
    pub anomaly_detector: AzureConfig,
    /// How long, and how many, refused readings and uploads are kept.
    pub dead_letters: DeadLetterPolicy,
    /// Supervision of the node's tasks and what `/v1/health` calls far behind.
    pub tasks: TasksConfig,
}

/// How the node's tasks are supervised and reported.
#[derive(Debug, Clone, Copy)]
pub struct TasksConfig {
    pub restart: Backoff,
    /// A task following the log this many events behind makes `/v1/health` answer 503.
    pub max_lag_events: i64,
    /// The task states are written to the read models at least this often.
    pub report_every_ms: u64,
}

impl Default for TasksConfig {
    fn default() -> Self {
        TasksConfig { restart: Backoff::default(), max_lag_events: 5_000, report_every_ms: 10_000 }
    }
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
            credential_cache_ms: 5_000,
            http: ServerLimits::default(),
            anomaly_detector: AzureConfig::default(),
            dead_letters: DeadLetterPolicy::default(),
            tasks: TasksConfig::default(),
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

/// Secrets of one plant: who may upload, the reader's password, and the password of the
/// node's own database role. (People command with their own credentials, kept hashed in
/// the plant's database.)
#[derive(Debug, Clone)]
pub struct NodeSecrets {
    pub gateway_tokens: GatewayTokens,
    pub reader_password: String,
    pub node_password: String,
}

/// Prepares a plant's database: migrations (the log, ingest, monitor, read models, people's
/// credentials), the reader's password, and the layout
/// recorded in the log (a `LayoutConfigured` event when it differs from the last one).
pub async fn prepare(db: &Database, config: &NodeConfig, secrets: &NodeSecrets) -> Result<Arc<Layout>> {
    crate::migrate(db).await?;
    readmodels::migrate(db).await?;
    access::migrate(db).await?;
    // Both change roles the whole server shares, each retried (in one place) when plants
    // prepared at the same moment change them at once.
    readmodels::set_reader_password(db, &secrets.reader_password).await?;
    crate::roles::grant_node_role(db, &secrets.node_password).await?;
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
/// uploads in flight, and stops the projections and the monitor. `owner` is the database
/// as its owner: it prepares it (migrations, roles); the node then runs as its own role.
pub async fn run(
    owner: Database,
    config: NodeConfig,
    secrets: NodeSecrets,
    listener: TcpListener,
    clock: Clock,
    shutdown: impl Future<Output = ()> + Send + 'static,
    on_start: impl FnOnce(NodeHandle) + Send,
) -> Result<()> {
    let layout = prepare(&owner, &config, &secrets).await?;
    let db = crate::roles::connect_as_node(&owner, &secrets.node_password)?;
    // Retention alone connects as the owner, for its runs only (see `retain`); the
    // owner's connections from preparing close here.
    let keeper = owner.another_pool(1)?;
    drop(owner);
    let board = Arc::new(TaskBoard::default());
    let (writer, writing) = Writer::new(db.clone(), config.writer);
    let (stop_writer, writer_stop) = watch::channel(false);
    let writer_task = supervise(board.slot("writer", None), config.tasks.restart, writer_stop, move |slot, stop| {
        let writing = writing.clone();
        async move {
            slot.running();
            // A run ends when the API is gone and the queue drained: then only stop.
            writing.run().await;
            stopped(stop).await;
            Ok(())
        }
    });
    let stats = Arc::new(IngestStats::default());
    on_start(NodeHandle { stats: stats.clone(), writer: writer.clone() });
    let ingest_state = IngestState {
        db: db.clone(),
        layout: layout.clone(),
        plant_number: config.plant_number,
        tokens: Arc::new(secrets.gateway_tokens.clone()),
        writer: writer.clone(),
        config: config.ingest,
        clock: clock.clone(),
        stats,
    };
    let command_state = CommandState {
        db: db.clone(),
        layout: layout.clone(),
        plant_number: config.plant_number,
        auth: Arc::new(access::Authenticator::new(db.clone(), Duration::from_millis(config.credential_cache_ms))),
        clock: clock.clone(),
        shelve: config.shelve,
    };
    let health = crate::health::HealthState {
        board: board.clone(),
        db: db.clone(),
        plant_number: config.plant_number,
        // The last handle moves into the router: when it is gone the writer drains and ends.
        writer,
        max_lag_events: config.tasks.max_lag_events,
    };
    let travel = crate::timetravel::TimeTravelState::new(
        command_state.clone(),
        config.ingest.retention_days,
        std::thread::available_parallelism().map_or(1, |n| n.get()),
    );
    let app = ingest::router(ingest_state)
        .merge(commands::router(command_state))
        .merge(crate::timetravel::router(travel))
        .merge(crate::azure::router(config.anomaly_detector.clone()))
        .merge(crate::health::router(health));

    let (stop_tx, stop_rx) = watch::channel(false);
    let tasks = spawn_tasks(&db, keeper, &config, &board, &stop_rx)?;
    let reporter = tokio::spawn(crate::health::report_to_read_models(
        board.clone(),
        db.clone(),
        Duration::from_millis(config.tasks.report_every_ms),
        stop_rx.clone(),
    ));

    let served = crate::server::serve(listener, app, config.http, shutdown).await;
    // The router (and with it every writer handle) is gone: the writer drains and ends.
    let _ = stop_writer.send(true);
    writer_task.await.context("log writer")?;
    let _ = stop_tx.send(true);
    for task in tasks {
        task.await.context("a supervised task")?;
    }
    let _ = reporter.await;
    crate::health::write(&board, &db).await;
    served.context("serving the plant's HTTP API")
}

/// Starts the node's tasks that follow the log or the clock, each under supervision:
/// the projections, the anomaly monitor, the maintenance scorer, retention and the
/// dead letters' retention. A task
/// added to the node belongs here (one line and a slot name), so it is restarted when
/// it dies and shown on `/v1/health` and in the read models.
fn spawn_tasks(
    db: &Database,
    owner: Database,
    config: &NodeConfig,
    board: &Arc<TaskBoard>,
    stop: &watch::Receiver<bool>,
) -> Result<Vec<tokio::task::JoinHandle<()>>> {
    let restart = config.tasks.restart;
    let mut tasks = Vec::new();
    for which in [readmodels::Projection::Live, readmodels::Projection::History] {
        let name = match which {
            readmodels::Projection::Live => "live projection",
            readmodels::Projection::History => "history projection",
        };
        let (db, projections) = (db.clone(), config.projections);
        tasks.push(supervise(board.slot(name, Some(which.subscriber())), restart, stop.clone(), move |slot, stop| {
            let db = db.clone();
            async move { readmodels::run_projection(&db, which, projections, Arc::new(slot), stopped(stop)).await }
        }));
    }
    // Checked once here, so a bad setting fails the start instead of every restart.
    MonitorHandler::new(config.monitor.clone())?;
    let (monitor_db, monitor_config) = (db.clone(), config.monitor.clone());
    tasks.push(supervise(board.slot("monitor", Some(MONITOR)), restart, stop.clone(), move |slot, stop| {
        let (db, config) = (monitor_db.clone(), monitor_config.clone());
        async move {
            let sub = Subscription::new(
                db,
                SubscriptionConfig::new(MONITOR)
                    .categories(&["readings", PLANT])
                    .batch_max_events(MonitorConfig::BATCH_MAX_EVENTS)
                    .health(Arc::new(slot)),
            );
            let mut handler = MonitorHandler::new(config)?;
            sub.run(&mut handler, stopped(stop)).await
        }
    }));
    let (scorer_db, scorer_config) = (db.clone(), config.scorer.clone());
    tasks.push(supervise(board.slot("scorer", None), restart, stop.clone(), move |slot, stop| {
        let (db, config) = (scorer_db.clone(), scorer_config.clone());
        async move { crate::scorer::run_reporting(db, config, Some(slot), stopped(stop)).await }
    }));
    let (retention_db, days, minute_days) = (db.clone(), config.ingest.retention_days, config.minute_retention_days);
    tasks.push(supervise(board.slot("retention", None), restart, stop.clone(), move |slot, stop| {
        let (db, owner) = (retention_db.clone(), owner.clone());
        async move {
            retain(db, owner, days, minute_days, &slot, stopped(stop)).await;
            Ok(())
        }
    }));
    let (letters_db, policy) = (db.clone(), config.dead_letters);
    tasks.push(supervise(board.slot("dead letters", None), restart, stop.clone(), move |slot, stop| {
        let db = letters_db.clone();
        async move {
            crate::dead_letters::keep(db, policy, &slot, stopped(stop)).await;
            Ok(())
        }
    }));
    Ok(tasks)
}

/// Expires old telemetry and read-model partitions once an hour (and at start), and
/// prunes time travel with them.
///
/// Day partitions are detached concurrently (`DETACH PARTITION … CONCURRENTLY`, so no
/// reader or writer waits for a drop), which only their owner may do and no function can
/// do on another role's behalf: each run connects as the database's owner (`owner`, a
/// pool that opens nothing until used) and closes that connection when done, so the
/// node's own role still drops no table and no owner's connection stays open.
async fn retain(
    db: Database,
    owner: Database,
    days: u32,
    minute_days: u32,
    slot: &TaskSlot,
    stop: impl Future<Output = ()>,
) {
    tokio::pin!(stop);
    loop {
        let mut failed = None;
        let now = chrono::Utc::now();
        let cutoff = now - chrono::Duration::days(i64::from(days));
        let minute_cutoff = now - chrono::Duration::days(i64::from(minute_days));
        if let Err(e) = eventlog::prepare_days_ahead(&db, now).await {
            tracing::warn!(error = format!("{e:#}"), "could not create telemetry partitions ahead");
        }
        if let Err(e) = expire(&owner, cutoff, minute_cutoff).await {
            tracing::warn!(error = format!("{e:#}"), "retention failed");
            failed = Some(e);
        }
        // Time travel reaches back as far as the raw telemetry: its checkpoints go with it.
        match readmodels::timetravel::prune(&db, cutoff).await {
            Ok(p) if p != readmodels::timetravel::Pruned::default() => {
                tracing::info!(checkpoints = p.checkpoints, late_events = p.late_events, "pruned time travel")
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = format!("{e:#}"), "time travel pruning failed");
                failed = Some(e);
            }
        }
        match &failed {
            Some(e) => slot.failing(e),
            None => slot.running(),
        }
        tokio::select! {
            () = &mut stop => return,
            () = tokio::time::sleep(Duration::from_secs(3600)) => {}
        }
    }
}

/// One retention run over the log's telemetry and the read models' history, on a
/// connection as the owner opened for it and closed after.
async fn expire(
    owner: &Database,
    cutoff: chrono::DateTime<chrono::Utc>,
    minute_cutoff: chrono::DateTime<chrono::Utc>,
) -> Result<()> {
    let keeper = owner.another_pool(1)?;
    let telemetry = eventlog::expire_telemetry(&keeper, cutoff).await.context("telemetry retention");
    match &telemetry {
        Ok(r) if !r.dropped.is_empty() => tracing::info!(dropped = ?r.dropped, "expired telemetry"),
        _ => {}
    }
    let history = readmodels::expire(&keeper, cutoff, minute_cutoff).await.context("read-model retention");
    telemetry?;
    history?;
    Ok(())
}
