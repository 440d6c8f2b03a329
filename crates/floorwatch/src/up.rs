//! `floorwatch up`: the whole factory on this machine — the private cluster, one plant
//! node per plant (ingest, commands, projections, anomaly monitor), the cloud node with
//! each plant's forwarder, and the simulator sending like a fleet of gateways — with a
//! live status screen. Ctrl-C stops it all cleanly; starting again resumes the
//! simulation where it stopped (also after a kill: the position is saved as uploads are
//! acknowledged). A plant node that stops ends the run at once, saying why.

mod liveness;

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use eventlog::Database;
use fleet::{FleetConfig, FleetStats, PlantTarget};
use futures_util::future::JoinAll;
use plant::ingest::system_clock;
use serde::{Deserialize, Serialize};
use simulator::Factory;
use tokio::sync::watch;

use crate::cli::{Global, Speed, UpArgs};
use crate::config::Config;
use crate::databases::{Server, data_dir, plant_database};
use crate::factory::FactorySpec;
use crate::secrets::Secrets;
use crate::simulate_cmd::{pace, sim_config, whole_second};
use liveness::{NodeEnded, NodeTask, PositionSaver, RateGuard, first_node_ended, fleet_file};

/// Where the simulation stood when `up` last stopped.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct FleetState {
    seed: u64,
    plants: u32,
    sensors_per_plant: u32,
    lines_per_plant: Option<u32>,
    start_ms: i64,
    sent_through_ms: i64,
}

/// What the desktop app needs to connect (written to `DATA_DIR/desktop.json`): the plant,
/// and the demo supervisor's token it signs in with, with that person's name and role so
/// the app can show who is signed in before it first reaches the plant.
#[derive(Debug, Serialize)]
struct DesktopPlant {
    plant: String,
    name: String,
    database_url: String,
    command_url: String,
    token: String,
    user: String,
    role: String,
}

pub fn desktop_file(dir: &Path) -> PathBuf {
    dir.join("desktop.json")
}

pub async fn run(args: UpArgs, global: &Global, config: &Config) -> Result<()> {
    let dir = data_dir(global);
    if args.print_data_dir {
        println!("{}", dir.display());
        return Ok(());
    }
    let spec = FactorySpec::from_args(&args.factory)?;
    let server = Server::new(global.data_dir.clone(), global.database_url.clone(), config)?;
    eprintln!("starting PostgreSQL…");
    let started_cluster = server.ensure_running()?;
    let mut secrets = Secrets::load_or_create(&dir, &spec.layout, &spec.plant_numbers())?;
    ensure_demo_people(&server, &spec, &mut secrets, &dir).await?;

    let mut nodes = PlantNodes::start(&server, &spec, &secrets, config).await?;
    let cloud = start_cloud(&server, config, &dir, &mut secrets, &spec.plant_numbers()).await?;
    let links = start_links(&nodes.urls, &cloud, &secrets).await?;
    write_private(&desktop_file(&dir), &nodes.desktop_json(&cloud, &secrets)?)?;

    let now = whole_second(Utc::now());
    let resume = FleetState::resume(&dir, &args, config, now);
    let mut fleet = Fleet::start(&spec, &args, &resume, nodes.targets.clone(), now, config)?;
    let interactive = std::io::stdout().is_terminal() && !args.plain;
    let mut saver = PositionSaver::new(spec.plant_numbers(), resume.sent_through_ms);
    let ended = show_status(&mut nodes, &cloud, &spec, &mut fleet, &dir, interactive, |stats| {
        saver.save_if_moved(stats, |through| resume.save_sent_through(&dir, through))
    })
    .await;
    if let Some(ended) = &ended {
        eprintln!("\n{ended}\nstopping the factory: a plant without its node would only pile up retries");
    }

    eprintln!("stopping: gateways first, then the plant nodes…");
    if let Some(sent_through) = fleet.stop().await? {
        resume.save_sent_through(&dir, sent_through)?;
    }
    nodes.stop().await?;
    stop_cloud(cloud, links).await;
    if started_cluster && let Server::Private(cluster) = &server {
        eprintln!("stopping PostgreSQL…");
        cluster.stop()?;
    }
    if let Some(ended) = ended {
        anyhow::bail!("{ended}");
    }
    eprintln!("stopped; `floorwatch up` again resumes where this left off");
    Ok(())
}

/// One plant node per plant, each on its own database and port.
struct PlantNodes {
    tasks: Vec<NodeTask>,
    stop: watch::Sender<bool>,
    /// What the desktop app connects to, per plant.
    desktop: Vec<DesktopPlant>,
    /// Where the fleet sends each plant's readings.
    targets: Vec<PlantTarget>,
    /// A small pool per plant for the status screen.
    status: Vec<(u16, Database)>,
    /// Each plant's database, for its link to the cloud.
    urls: Vec<(u16, String)>,
}

impl PlantNodes {
    async fn start(server: &Server, spec: &FactorySpec, secrets: &Secrets, config: &Config) -> Result<PlantNodes> {
        let (stop, stopped) = watch::channel(false);
        let mut nodes = PlantNodes {
            tasks: Vec::new(),
            stop,
            desktop: Vec::new(),
            targets: Vec::new(),
            status: Vec::new(),
            urls: Vec::new(),
        };
        for n in spec.plant_numbers() {
            let name = plant_database(u32::from(n));
            let url = server.database(&name).await?;
            let addr: std::net::SocketAddr = ([127, 0, 0, 1], FactorySpec::port(n, config)).into();
            let listener = tokio::net::TcpListener::bind(addr).await.with_context(|| {
                format!("listening on {addr} for plant {n} (set plant.http_base_port, or 0 for any free port)")
            })?;
            let base = format!("http://{}", listener.local_addr()?);
            let node_secrets = secrets.node(n)?;
            let people = secrets.plants.get(&n).with_context(|| format!("no secrets for plant {n}"))?;
            nodes.desktop.push(DesktopPlant {
                plant: format!("P{n}"),
                name: spec.layout.plant_by_number(n).map(|p| p.name.clone()).unwrap_or_default(),
                database_url: server.reader_url(&name, &secrets.reader_password)?,
                command_url: base.clone(),
                token: people.supervisor_token.clone(),
                user: crate::people::DEMO_SUPERVISOR.into(),
                role: access::Role::Supervisor.as_str().into(),
            });
            nodes.targets.push(PlantTarget {
                plant_number: n,
                base_url: base,
                tokens: node_secrets.gateway_tokens.as_map().clone(),
                crew_token: Some(people.crew_token.clone()),
            });
            nodes.status.push((n, Database::new(&url, 2)?));
            nodes.urls.push((n, url.clone()));
            let mut stopped = stopped.clone();
            let shutdown = async move {
                let _ = stopped.wait_for(|s| *s).await;
            };
            let serving = Arc::new(AtomicBool::new(false));
            let task = tokio::spawn(plant::node::run(
                Database::new(&url, 24)?,
                spec.node_config(n, config),
                node_secrets,
                listener,
                system_clock(),
                shutdown,
                {
                    let serving = serving.clone();
                    move |_| serving.store(true, Ordering::Relaxed)
                },
            ));
            nodes.tasks.push(NodeTask { plant: n, task, serving });
        }
        Ok(nodes)
    }

    /// What the desktop app connects to: each plant, and the cloud with a manager's token.
    fn desktop_json(&self, cloud: &CloudRun, secrets: &Secrets) -> Result<String> {
        let cloud = serde_json::json!({ "url": cloud.url, "token": secrets.cloud.manager_token });
        Ok(serde_json::to_string_pretty(&serde_json::json!({ "plants": self.desktop, "cloud": cloud }))?)
    }

    /// Stops every node and waits for each to finish its work in hand.
    async fn stop(self) -> Result<()> {
        let _ = self.stop.send(true);
        drop(self.status);
        for node in self.tasks {
            if let Err(e) = node.task.await.context("plant node task")? {
                eprintln!("plant P{}'s node stopped with an error: {e:#}", node.plant);
            }
        }
        Ok(())
    }
}

/// Gives every plant its demo people (the simulated maintenance crew, the demo supervisor
/// the desktop app signs in as), keeping their tokens in the secrets file.
async fn ensure_demo_people(server: &Server, spec: &FactorySpec, secrets: &mut Secrets, dir: &Path) -> Result<()> {
    let mut changed = false;
    for n in spec.plant_numbers() {
        let db = Database::new(&server.database(&plant_database(u32::from(n))).await?, 2)?;
        changed |= crate::people::ensure(&db, n, secrets, crate::people::Demo::CrewAndSupervisor).await?;
    }
    if changed {
        secrets.save(dir)?;
    }
    Ok(())
}

impl FleetState {
    /// Where to start: where the last run stopped, if it ran this factory in real time
    /// recently enough that its readings are still in the log; else now.
    fn resume(dir: &Path, args: &UpArgs, config: &Config, now: i64) -> FleetState {
        let retention_ms = i64::from(config.log.telemetry_retention_days) * 86_400_000;
        let fresh = FleetState {
            seed: config.simulator.seed,
            plants: args.factory.plants,
            sensors_per_plant: args.factory.sensors_per_plant,
            lines_per_plant: args.factory.lines_per_plant,
            start_ms: now,
            sent_through_ms: now - 1_000,
        };
        let same_factory = |old: &FleetState| {
            FleetState { start_ms: 0, sent_through_ms: 0, ..old.clone() }
                == FleetState { start_ms: 0, sent_through_ms: 0, ..fresh.clone() }
        };
        match std::fs::read_to_string(fleet_file(dir)).ok().and_then(|t| serde_json::from_str::<FleetState>(&t).ok()) {
            Some(old)
                if same_factory(&old)
                    && old.sent_through_ms > now - retention_ms + 3_600_000
                    && matches!(args.speed, Speed::Realtime) =>
            {
                old
            }
            _ => fresh,
        }
    }

    fn save_sent_through(&self, dir: &Path, sent_through_ms: i64) -> Result<()> {
        if sent_through_ms < self.start_ms {
            return Ok(());
        }
        let saved = FleetState { sent_through_ms, ..self.clone() };
        write_private(&fleet_file(dir), &serde_json::to_string_pretty(&saved)?)
    }
}

/// The simulated factory's gateways, one task per plant.
struct Fleet {
    /// Every plant's gateways: each ends with the time its readings were sent through.
    done: std::pin::Pin<Box<JoinAll<tokio::task::JoinHandle<Result<i64>>>>>,
    /// What `done` gave, once the fleet finished by itself (a `--duration` run).
    finished: Option<Vec<Result<Result<i64>, tokio::task::JoinError>>>,
    stats: Arc<FleetStats>,
    stop: watch::Sender<bool>,
}

impl Fleet {
    fn start(
        spec: &FactorySpec,
        args: &UpArgs,
        state: &FleetState,
        targets: Vec<PlantTarget>,
        now: i64,
        app_config: &Config,
    ) -> Result<Fleet> {
        let sim = sim_config(args.fault_rate_scale)?;
        let mut plants = Factory::new(&spec.layout, &sim, state.seed, state.start_ms)?.into_plants();
        if state.sent_through_ms >= state.start_ms {
            eprintln!(
                "resuming the simulation from {}",
                DateTime::from_timestamp_millis(state.sent_through_ms)
                    .unwrap_or_default()
                    .format("%Y-%m-%d %H:%M:%S UTC")
            );
            for p in &mut plants {
                fleet::fast_forward(p, state.sent_through_ms, 60_000)?;
            }
        }
        let behind_ms = now - state.sent_through_ms;
        let config = FleetConfig {
            pace: pace(args.speed),
            end_ms: args.duration.map(|d| state.sent_through_ms.max(now) + d.as_millis() as i64),
            // A long pause is caught up a reading a minute, then in real time.
            coarse_until_ms: (behind_ms > 600_000).then_some(now - 60_000),
            max_steps_in_flight: app_config.simulator.max_steps_in_flight,
            ..FleetConfig::default()
        };
        let stats = Arc::new(FleetStats::default());
        let (stop, stopped) = watch::channel(false);
        let mut tasks = Vec::new();
        for (i, (plant, target)) in plants.into_iter().zip(targets).enumerate() {
            // Each machine's production counts, reported by its line's gateway.
            let production =
                simulator::ProductionSim::new(&spec.layout, i, &simulator::ProductionConfig::default(), state.seed)?;
            tasks.push(tokio::spawn(fleet::run_plant_with(
                plant,
                Some(production),
                target,
                config.clone(),
                stats.clone(),
                stopped.clone(),
            )));
        }
        Ok(Fleet { done: Box::pin(futures_util::future::join_all(tasks)), finished: None, stats, stop })
    }

    /// Stops the gateways; returns the time every plant's readings were sent through.
    async fn stop(mut self) -> Result<Option<i64>> {
        let _ = self.stop.send(true);
        let results = match self.finished.take() {
            Some(r) => r,
            None => self.done.await,
        };
        let mut sent_through = None::<i64>;
        for r in results {
            match r.context("gateway task")? {
                Ok(t) => sent_through = Some(sent_through.map_or(t, |s| s.min(t))),
                Err(e) => eprintln!("a plant's gateways stopped with an error: {e:#}"),
            }
        }
        Ok(sent_through)
    }
}

/// Shows the status screen until Ctrl-C, until the fleet finishes a `--duration` run, or
/// until a plant node stops (returned). Every second `each_second` sees the fleet's
/// progress (to save it).
async fn show_status(
    nodes: &mut PlantNodes,
    cloud: &CloudRun,
    spec: &FactorySpec,
    fleet: &mut Fleet,
    dir: &Path,
    interactive: bool,
    mut each_second: impl FnMut(&FleetStats) -> Result<()>,
) -> Option<NodeEnded> {
    let every = if interactive { Duration::from_secs(1) } else { Duration::from_secs(10) };
    let mut ticker = tokio::time::interval(every);
    let mut second = tokio::time::interval(Duration::from_secs(1));
    let mut rates = RateGuard::default();
    let began = Instant::now();
    loop {
        tokio::select! {
            results = &mut fleet.done => {
                fleet.finished = Some(results);
                return None;
            }
            ended = first_node_ended(&mut nodes.tasks) => return Some(ended),
            _ = second.tick() => {
                if let Err(e) = each_second(&fleet.stats) {
                    tracing::warn!(error = format!("{e:#}"), "could not save the simulation's position");
                }
            }
            _ = ticker.tick() => {
                let serving: Vec<bool> = nodes.tasks.iter().map(|t| t.serving.load(Ordering::Relaxed)).collect();
                let screen = status(&nodes.status, &serving, &mut rates, spec, &fleet.stats, dir, began).await
                    + &cloud_status(cloud, &nodes.status).await;
                // A status that cannot be written (stdout redirected to a full disk, a
                // closed pipe) is lost, and the factory goes on: print! would panic.
                let mut out = std::io::stdout().lock();
                let _ = if interactive {
                    write!(out, "\x1b[H\x1b[2J{screen}")
                } else {
                    writeln!(out, "{screen}")
                };
                let _ = out.flush();
            }
            _ = tokio::signal::ctrl_c() => return None,
        }
    }
}

/// The local cloud node `up` runs, and its database.
struct CloudRun {
    url: String,
    db: Database,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<Result<()>>,
}

/// The links (forwarders) of every plant, stopped together.
struct Links {
    stop: watch::Sender<bool>,
    tasks: Vec<(u16, tokio::task::JoinHandle<Result<()>>)>,
}

/// Starts the cloud node on its own database of the cluster, with the credentials of the
/// plants' forwarders and of the desktop app's manager.
async fn start_cloud(
    server: &Server,
    config: &Config,
    dir: &Path,
    secrets: &mut Secrets,
    plants: &[u16],
) -> Result<CloudRun> {
    let db = crate::cloud_cmd::cloud_database(server, 24).await?;
    crate::cloud_cmd::ensure_local_credentials(&db, dir, secrets, plants).await?;
    let addr: std::net::SocketAddr = ([127, 0, 0, 1], config.cloud.http_port).into();
    let listener = tokio::net::TcpListener::bind(addr).await.with_context(|| {
        format!("listening on {addr} for the cloud node (set cloud.http_port, or 0 for any free port)")
    })?;
    let url = format!("http://{}", listener.local_addr()?);
    let (stop, mut stopped) = watch::channel(false);
    let task = tokio::spawn(cloud::node::run(db.clone(), config.cloud_config(), listener, async move {
        let _ = stopped.wait_for(|s| *s).await;
    }));
    Ok(CloudRun { url, db, stop, task })
}

/// Starts each plant's link to the cloud (its forwarder and model check).
async fn start_links(plant_urls: &[(u16, String)], cloud: &CloudRun, secrets: &Secrets) -> Result<Links> {
    let (stop, stopped) = watch::channel(false);
    let mut tasks = Vec::new();
    for (n, url) in plant_urls {
        let token = secrets
            .cloud
            .forwarder_tokens
            .get(n)
            .cloned()
            .with_context(|| format!("no forwarder token for plant {n}"))?;
        let db = Database::new(url, 4)?;
        let config = forwarder::ForwarderConfig::new(*n, cloud.url.clone(), token);
        let mut stopped = stopped.clone();
        tasks.push((
            *n,
            tokio::spawn(crate::link::run_link(db, config, async move {
                let _ = stopped.wait_for(|s| *s).await;
            })),
        ));
    }
    Ok(Links { stop, tasks })
}

/// Stops the links, then the cloud node.
async fn stop_cloud(cloud: CloudRun, links: Links) {
    let _ = links.stop.send(true);
    for (n, task) in links.tasks {
        match task.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => eprintln!("plant {n}'s link to the cloud stopped with an error: {e:#}"),
            Err(e) => eprintln!("plant {n}'s link to the cloud failed: {e}"),
        }
    }
    let _ = cloud.stop.send(true);
    match cloud.task.await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => eprintln!("the cloud node stopped with an error: {e:#}"),
        Err(e) => eprintln!("the cloud node failed: {e}"),
    }
}

/// The status screen's cloud part: the cloud's position and each plant's forwarding lag.
async fn cloud_status(cloud: &CloudRun, plants: &[(u16, Database)]) -> String {
    let mut out = String::new();
    match cloud.db.client().await {
        Ok(client) => {
            let head = eventlog::head_position(&client).await.unwrap_or_default();
            let projected = cloud::api::sse::projected(&cloud.db).await.unwrap_or_default();
            out.push_str(&format!(
                "\ncloud {}: log position {head}, read models at {projected} ({} behind)\n",
                cloud.url,
                head.saturating_sub(projected)
            ));
        }
        Err(e) => out.push_str(&format!("\ncloud {}: not ready ({})\n", cloud.url, e.root_cause())),
    }
    for (n, db) in plants {
        let line = match db.client().await {
            Ok(client) => match readmodel_contract::forwarding_lag(&client).await {
                Ok(Some(l)) => format!(
                    "  P{n} → cloud: {:<11} lag {} events, {:.1} s{}\n",
                    l.state,
                    l.events,
                    l.seconds,
                    l.last_error.map(|e| format!(" ({})", e.chars().take(60).collect::<String>())).unwrap_or_default()
                ),
                Ok(None) => format!("  P{n} → cloud: not started\n"),
                Err(e) => format!("  P{n} → cloud: {}\n", e),
            },
            Err(e) => format!("  P{n} → cloud: {}\n", e.root_cause()),
        };
        out.push_str(&line);
    }
    out
}

fn write_private(path: &Path, text: &str) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&tmp)?;
    f.write_all(text.as_bytes())?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}

async fn status(
    dbs: &[(u16, Database)],
    serving: &[bool],
    rates: &mut RateGuard,
    spec: &FactorySpec,
    stats: &FleetStats,
    dir: &Path,
    began: Instant,
) -> String {
    let mut out = format!(
        "Floorwatch — {} plants × {} sensors          {}   (up {}, Ctrl-C stops)\n\n",
        dbs.len(),
        spec.layout.plants().first().map_or(0, |p| p.sensors.len()),
        Utc::now().format("%H:%M:%S"),
        humantime::format_duration(Duration::from_secs(began.elapsed().as_secs()))
    );
    out.push_str(&format!(
        "{:<5} {:<11} {:>11} {:>10} {:>15} {:>16} {:>8} {:>15}\n",
        "plant", "name", "readings/s", "freshness", "reporting", "open anomalies", "due ≤7d", "projection lag"
    ));
    let mut alarms = Vec::new();
    for (i, (n, db)) in dbs.iter().enumerate() {
        let name = spec.layout.plant_by_number(*n).map(|p| p.name.clone()).unwrap_or_default();
        let result = if serving.get(i).copied().unwrap_or(false) { Some(plant_status(db).await) } else { None };
        let line = match result {
            None => format!("{:<5} {:<11} starting…\n", format!("P{n}"), name),
            Some(Ok(PlantStatus { rollup: s, lag, down })) => {
                alarms.extend(down.into_iter().map(|d| format!("P{n} {name}: {d}")));
                let open = s.open_critical + s.open_major + s.open_minor;
                format!(
                    "{:<5} {:<11} {:>11} {:>10} {:>15} {:>16} {:>8} {:>15}\n",
                    format!("P{n}"),
                    name,
                    rates
                        .rate(*n, s.position, s.readings_per_s, Instant::now())
                        .map_or("-".into(), |r| format!("{r:.0}")),
                    s.newest_reading_ms.map_or("-".into(), |t| format!(
                        "{:.1} s",
                        (Utc::now().timestamp_millis() - t) as f64 / 1000.0
                    )),
                    format!("{}/{}", s.reporting, s.sensors),
                    if s.open_critical > 0 {
                        format!("{open} ({} critical)", s.open_critical)
                    } else {
                        open.to_string()
                    },
                    s.machines_due_7d,
                    format!("{lag} events")
                )
            }
            Some(Err(e)) => match e.downcast_ref::<NoRollupYet>() {
                Some(_) => format!("{:<5} {:<11} starting… (waiting for the first readings)\n", format!("P{n}"), name),
                None => format!("{:<5} {:<11} database unreachable: {}\n", format!("P{n}"), name, e.root_cause()),
            },
        };
        out.push_str(&line);
    }
    if !alarms.is_empty() {
        out.push('\n');
        for a in alarms {
            out.push_str(&format!("!! {a}\n"));
        }
    }
    out.push_str(&format!(
        "\ngateways: {} readings sent, {} refused, {} retries; upload p99 {:.1} ms\n",
        stats.readings_sent.load(Ordering::Relaxed),
        stats.refused.load(Ordering::Relaxed),
        stats.retries.load(Ordering::Relaxed),
        stats.latency_ms(99.0)
    ));
    out.push_str(&format!("desktop app: connection details in {}\n", desktop_file(dir).display()));
    out
}

/// The projections have not written the plant's rollup yet (no readings so far).
#[derive(Debug)]
struct NoRollupYet;

impl std::fmt::Display for NoRollupYet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("no plant status yet")
    }
}

impl std::error::Error for NoRollupYet {}

struct PlantStatus {
    rollup: readmodel_contract::Rollup,
    lag: i64,
    /// The node's tasks that are down, in words ("anomaly detection stopped since …").
    down: Vec<String>,
}

async fn plant_status(db: &Database) -> Result<PlantStatus> {
    let client = db.client().await?;
    let rows = readmodel_contract::read_since(&client, readmodel_contract::ReadModel::PlantStatus, 0).await?;
    let rollup = rows.plant_status.into_iter().next().ok_or(NoRollupYet)?;
    let tasks = readmodel_contract::read_since(&client, readmodel_contract::ReadModel::NodeTasks, 0).await?;
    let down = liveness::tasks_down(&tasks.node_tasks);
    Ok(PlantStatus { rollup, lag: eventlog::lag(&client, readmodels::LIVE).await?, down })
}
