//! `floorwatch up`: the whole factory on this machine — the private cluster, one plant
//! node per plant (ingest, commands, projections, anomaly monitor), and the simulator
//! sending like a fleet of gateways — with a live status screen. Ctrl-C stops it all
//! cleanly; starting again resumes the simulation where it stopped.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use eventlog::Database;
use fleet::{FleetConfig, FleetStats, PlantTarget};
use plant::ingest::system_clock;
use serde::{Deserialize, Serialize};
use simulator::Factory;
use tokio::sync::watch;

use crate::cli::{Global, Speed, UpArgs};
use crate::config::Config;
use crate::factory::FactorySpec;
use crate::secrets::Secrets;
use crate::server::{Server, data_dir, plant_database};
use crate::simulate_cmd::{pace, sim_config, whole_second};

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

/// What the desktop app needs to connect (written to `DATA_DIR/desktop.json`).
#[derive(Debug, Serialize)]
struct DesktopPlant {
    plant: String,
    name: String,
    database_url: String,
    command_url: String,
    command_token: String,
}

pub fn desktop_file(dir: &Path) -> PathBuf {
    dir.join("desktop.json")
}

pub async fn run(args: UpArgs, global: &Global, config: &Config) -> Result<()> {
    let spec = FactorySpec::from_args(&args.factory)?;
    let dir = data_dir(global);
    let server = Server::new(global.data_dir.clone(), global.database_url.clone(), config)?;
    eprintln!("starting PostgreSQL…");
    let started_cluster = server.ensure_running()?;
    let plants = spec.plant_numbers();
    let secrets = Secrets::load_or_create(&dir, &spec.layout, &plants)?;

    // Plant nodes.
    let (stop_nodes, nodes_stopped) = watch::channel(false);
    let mut nodes = Vec::new();
    let mut desktop = Vec::new();
    let mut targets = Vec::new();
    let mut status_dbs = Vec::new();
    for &n in &plants {
        let name = plant_database(u32::from(n));
        let url = server.database(&name).await?;
        let db = Database::new(&url, 24)?;
        let addr: std::net::SocketAddr = ([127, 0, 0, 1], FactorySpec::port(n, config)).into();
        let listener = tokio::net::TcpListener::bind(addr).await.with_context(|| {
            format!("listening on {addr} for plant {n} (set plant.http_base_port, or 0 for any free port)")
        })?;
        let base = format!("http://{}", listener.local_addr()?);
        let node_secrets = secrets.node(n)?;
        desktop.push(DesktopPlant {
            plant: format!("P{n}"),
            name: spec.layout.plant_by_number(n).map(|p| p.name.clone()).unwrap_or_default(),
            database_url: server.reader_url(&name, &secrets.reader_password)?,
            command_url: base.clone(),
            command_token: node_secrets.command_token.clone(),
        });
        targets.push(PlantTarget {
            plant_number: n,
            base_url: base,
            tokens: node_secrets.gateway_tokens.as_map().clone(),
            command_token: Some(node_secrets.command_token.clone()),
        });
        status_dbs.push((n, Database::new(&url, 2)?));
        let node_config = spec.node_config(n, config);
        let mut stop = nodes_stopped.clone();
        let shutdown = async move {
            let _ = stop.wait_for(|s| *s).await;
        };
        nodes.push(tokio::spawn(plant::node::run(
            db,
            node_config,
            node_secrets,
            listener,
            system_clock(),
            shutdown,
            |_| {},
        )));
    }
    write_private(&desktop_file(&dir), &serde_json::to_string_pretty(&serde_json::json!({ "plants": desktop }))?)?;

    // The simulated factory, resumed where it stopped if it can be.
    let seed = config.simulator.seed;
    let now = whole_second(Utc::now());
    let state_file = dir.join("fleet.json");
    let retention_ms = i64::from(config.log.telemetry_retention_days) * 86_400_000;
    let fresh = FleetState {
        seed,
        plants: args.factory.plants,
        sensors_per_plant: args.factory.sensors_per_plant,
        lines_per_plant: args.factory.lines_per_plant,
        start_ms: now,
        sent_through_ms: now - 1_000,
    };
    let state =
        match std::fs::read_to_string(&state_file).ok().and_then(|t| serde_json::from_str::<FleetState>(&t).ok()) {
            Some(old)
                if FleetState { start_ms: 0, sent_through_ms: 0, ..old.clone() }
                    == FleetState { start_ms: 0, sent_through_ms: 0, ..fresh.clone() }
                    && old.sent_through_ms > now - retention_ms + 3_600_000
                    && matches!(args.speed, Speed::Realtime) =>
            {
                old
            }
            _ => fresh,
        };
    let sim = sim_config(args.fault_rate_scale)?;
    let mut factory_plants = Factory::new(&spec.layout, &sim, state.seed, state.start_ms)?.into_plants();
    if state.sent_through_ms >= state.start_ms {
        eprintln!(
            "resuming the simulation from {}",
            DateTime::from_timestamp_millis(state.sent_through_ms).unwrap_or_default().format("%Y-%m-%d %H:%M:%S UTC")
        );
        for p in &mut factory_plants {
            fleet::fast_forward(p, state.sent_through_ms, 60_000)?;
        }
    }
    let behind_ms = now - state.sent_through_ms;
    let fleet_config = FleetConfig {
        pace: pace(args.speed),
        end_ms: args.duration.map(|d| state.sent_through_ms.max(now) + d.as_millis() as i64),
        // A long pause is caught up a reading a minute, then in real time.
        coarse_until_ms: (behind_ms > 600_000).then_some(now - 60_000),
        ..FleetConfig::default()
    };
    let stats = Arc::new(FleetStats::default());
    let (stop_fleet, fleet_stopped) = watch::channel(false);
    let mut fleet_tasks = Vec::new();
    for (plant, target) in factory_plants.into_iter().zip(targets) {
        fleet_tasks.push(tokio::spawn(fleet::run_plant(
            plant,
            target,
            fleet_config.clone(),
            stats.clone(),
            fleet_stopped.clone(),
        )));
    }

    // Status until Ctrl-C (or the fleet finishes a --duration run).
    let interactive = std::io::stdout().is_terminal() && !args.plain;
    let every = if interactive { Duration::from_secs(1) } else { Duration::from_secs(10) };
    let mut ticker = tokio::time::interval(every);
    let fleet_done = futures_util::future::join_all(fleet_tasks);
    tokio::pin!(fleet_done);
    let began = Instant::now();
    let mut fleet_results = None;
    loop {
        tokio::select! {
            results = &mut fleet_done, if fleet_results.is_none() => {
                fleet_results = Some(results);
                break;
            }
            _ = ticker.tick() => {
                let screen = status(&status_dbs, &spec, &stats, &dir, began).await;
                if interactive {
                    print!("\x1b[H\x1b[2J{screen}");
                } else {
                    println!("{screen}");
                }
                let _ = std::io::stdout().flush();
            }
            _ = tokio::signal::ctrl_c() => break,
        }
    }
    eprintln!("stopping: gateways first, then the plant nodes…");
    let _ = stop_fleet.send(true);
    let results = match fleet_results {
        Some(r) => r,
        None => fleet_done.await,
    };
    let mut sent_through = i64::MAX;
    for r in results {
        match r.context("gateway task")? {
            Ok(t) => sent_through = sent_through.min(t),
            Err(e) => eprintln!("a plant's gateways stopped with an error: {e:#}"),
        }
    }
    if sent_through != i64::MAX && sent_through >= state.start_ms {
        let saved = FleetState { sent_through_ms: sent_through, ..state };
        write_private(&state_file, &serde_json::to_string_pretty(&saved)?)?;
    }
    let _ = stop_nodes.send(true);
    drop(status_dbs);
    for node in nodes {
        if let Err(e) = node.await.context("plant node task")? {
            eprintln!("a plant node stopped with an error: {e:#}");
        }
    }
    if started_cluster && let Server::Private(cluster) = &server {
        eprintln!("stopping PostgreSQL…");
        cluster.stop()?;
    }
    eprintln!("stopped; `floorwatch up` again resumes where this left off");
    Ok(())
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

async fn status(dbs: &[(u16, Database)], spec: &FactorySpec, stats: &FleetStats, dir: &Path, began: Instant) -> String {
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
    for (n, db) in dbs {
        let name = spec.layout.plant_by_number(*n).map(|p| p.name.clone()).unwrap_or_default();
        let line = match plant_status(db).await {
            Ok(s) => format!(
                "{:<5} {:<11} {:>11.0} {:>10} {:>15} {:>16} {:>8} {:>15}\n",
                format!("P{n}"),
                name,
                s.readings_per_s,
                s.newest
                    .map_or("-".into(), |t| format!("{:.1} s", (Utc::now() - t).num_milliseconds() as f64 / 1000.0)),
                format!("{}/{}", s.reporting, s.sensors),
                if s.critical > 0 { format!("{} ({} critical)", s.open, s.critical) } else { s.open.to_string() },
                s.due,
                format!("{} events", s.lag)
            ),
            Err(e) => format!("{:<5} {:<11} (not ready: {})\n", format!("P{n}"), name, e.root_cause()),
        };
        out.push_str(&line);
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

struct PlantStatus {
    readings_per_s: f64,
    newest: Option<DateTime<Utc>>,
    reporting: i32,
    sensors: i32,
    open: i32,
    critical: i32,
    due: i32,
    lag: i64,
}

async fn plant_status(db: &Database) -> Result<PlantStatus> {
    let client = db.client().await?;
    let row = client
        .query_one(
            "SELECT p.readings_per_s, p.newest_reading, p.reporting, p.sensors,
                    p.open_critical + p.open_major + p.open_minor, p.open_critical, p.machines_due_7d,
                    (SELECT position FROM eventlog.head)
                      - coalesce((SELECT position FROM eventlog.checkpoints WHERE subscriber = $1), 0)
               FROM readmodel.plant_status p",
            &[&readmodels::LIVE],
        )
        .await?;
    Ok(PlantStatus {
        readings_per_s: row.get(0),
        newest: row.get(1),
        reporting: row.get(2),
        sensors: row.get(3),
        open: row.get(4),
        critical: row.get(5),
        due: row.get(6),
        lag: row.get(7),
    })
}
