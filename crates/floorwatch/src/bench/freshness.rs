//! `floorwatch bench freshness`: the whole factory as `floorwatch up` runs it (5 plant
//! nodes, projections, anomaly monitors, the simulator at real time: 50,000 readings/s),
//! and a client that LISTENs on plant 1's read models like the desktop app. For every
//! gateway batch it measures the time from the ingest API accepting it to the client
//! seeing its readings in `sensor_state`. Then the same stack at full speed, to find the
//! most readings per second the projections keep up with.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use chrono::Utc;
use eventlog::Database;
use fleet::{FleetConfig, FleetStats, Pace, PlantTarget};
use plant::ingest::system_clock;
use readmodel_contract::ReadModel;
use serde_json::json;
use simulator::{Factory, SimConfig};
use tokio::sync::watch;

use super::cpu::{Parts, shares};
use super::{BenchServer, percentile, write_json};
use crate::cli::FreshnessBenchArgs;
use crate::config::Config;
use crate::databases::plant_database;
use crate::factory::FactorySpec;
use crate::secrets::Secrets;

type Accepted = Arc<Mutex<HashMap<(String, i64), Instant>>>;

pub async fn run(args: FreshnessBenchArgs, server: &BenchServer, config: &Config) -> Result<()> {
    let dir = std::env::temp_dir().join(format!("floorwatch-bench-freshness-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let factory_args = crate::cli::FactoryArgs {
        plants: args.plants,
        sensors_per_plant: args.sensors_per_plant,
        lines_per_plant: None,
        layout: None,
    };
    let spec = FactorySpec::from_args(&factory_args)?;
    let plants = spec.plant_numbers();
    let mut secrets = Secrets::load_or_create(&dir, &spec.layout, &plants)?;
    let (stop_nodes, nodes_stopped) = watch::channel(false);
    let mut nodes = Vec::new();
    let mut targets = Vec::new();
    let mut dbs = Vec::new();
    for &n in &plants {
        let url = server.fresh_database(&plant_database(u32::from(n))).await?;
        let db = Database::new(&url, 24)?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        crate::people::ensure(&db, n, &mut secrets, crate::people::Demo::CrewOnly).await?;
        let node_secrets = secrets.node(n)?;
        targets.push(PlantTarget {
            plant_number: n,
            base_url: format!("http://{}", listener.local_addr()?),
            tokens: node_secrets.gateway_tokens.as_map().clone(),
            crew_token: secrets.plants.get(&n).map(|p| p.crew_token.clone()),
        });
        dbs.push(db.clone());
        let mut stop = nodes_stopped.clone();
        let shutdown = async move {
            let _ = stop.wait_for(|s| *s).await;
        };
        nodes.push(tokio::spawn(plant::node::run(
            db,
            spec.node_config(n, config),
            node_secrets,
            listener,
            system_clock(),
            shutdown,
            |_| {},
        )));
    }
    let parts = Parts::new(&[
        ("floorwatch", std::process::id(), false),
        (
            "postgres",
            server.postmaster_pid().context("the benchmark needs its own private cluster (no --database-url)")?,
            true,
        ),
    ]);
    let sensors_total = f64::from(args.sensors_per_plant) * plants.len() as f64;

    eprintln!("real time: {} plants × {} sensors for {} s…", plants.len(), args.sensors_per_plant, args.seconds);
    let accepted: Accepted = Arc::new(Mutex::new(HashMap::new()));
    let (stop_watch, watch_stopped) = watch::channel(false);
    let watcher = tokio::spawn(watch_freshness(dbs[0].clone(), spec.layout.clone(), accepted.clone(), watch_stopped));
    let now = Utc::now().timestamp_millis().div_euclid(1000) * 1000;
    let realtime =
        drive(&spec, &targets, Pace::RealTime, now, Some(accepted.clone()), args.seconds, &parts, &dbs).await?;
    let _ = stop_watch.send(true);
    let mut freshness = watcher.await.context("freshness watcher")??;
    freshness.sort_by(f64::total_cmp);
    anyhow::ensure!(!freshness.is_empty(), "the listening client saw no readings");

    eprintln!("full speed for {} s, to find what the projections keep up with…", args.seconds);
    let start = Utc::now().timestamp_millis().div_euclid(1000) * 1000 - 86_400_000;
    let max = drive(&spec, &targets, Pace::Max, start, None, args.seconds, &parts, &dbs).await?;

    let _ = stop_nodes.send(true);
    for node in nodes {
        node.await.context("plant node task")??;
    }
    let _ = std::fs::remove_dir_all(&dir);

    // At full speed the projections keep up when their lag did not grow: the most they
    // sustain is then at least what was accepted; else what they applied.
    let sustained = if max.lag_growth <= max.accepted_per_s * 0.02 / 1000.0 * args.seconds as f64 {
        max.accepted_per_s
    } else {
        max.applied_per_s
    };
    let figures = json!({
        "readings_per_s": realtime.accepted_per_s.round(),
        "freshness_p50_ms": round2(percentile(&freshness, 50.0)),
        "freshness_p99_ms": round2(percentile(&freshness, 99.0)),
        "freshness_max_ms": round2(percentile(&freshness, 100.0)),
        "freshness_samples": freshness.len(),
        "cpu_share": round3(realtime.cpu_share),
        "cpu_share_by_part": realtime.by_part,
        "max_sustained_readings_per_s": sustained.round(),
        "full_speed": {
            "accepted_readings_per_s": max.accepted_per_s.round(),
            "projected_readings_per_s": max.applied_per_s.round(),
            "projection_lag_growth_events": max.lag_growth,
            "cpu_share": round3(max.cpu_share),
        },
        "settings": { "plants": plants.len(), "sensors": sensors_total, "seconds": args.seconds,
                      "cpus": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1) },
    });
    write_json(&args.json, &figures)?;
    println!(
        "real time: {:.0} readings/s; accepted → visible in sensor_state p50 {:.0} ms, p99 {:.0} ms; CPU {:.1}% of the machine",
        realtime.accepted_per_s,
        percentile(&freshness, 50.0),
        percentile(&freshness, 99.0),
        100.0 * realtime.cpu_share
    );
    println!(
        "full speed: {:.0} readings/s accepted, {:.0} projected; the projections keep up to {:.0} readings/s",
        max.accepted_per_s, max.applied_per_s, sustained
    );
    Ok(())
}

struct Drive {
    accepted_per_s: f64,
    applied_per_s: f64,
    lag_growth: f64,
    cpu_share: f64,
    by_part: serde_json::Value,
}

/// Runs every plant's gateways at `pace` for a warm-up and `seconds`, measuring the latter.
#[allow(clippy::too_many_arguments)]
async fn drive(
    spec: &FactorySpec,
    targets: &[PlantTarget],
    pace: Pace,
    start_ms: i64,
    accepted: Option<Accepted>,
    seconds: u64,
    parts: &Parts,
    dbs: &[Database],
) -> Result<Drive> {
    let stats = Arc::new(FleetStats::default());
    if let Some(accepted) = accepted {
        stats.on_accepted(Arc::new(move |gateway: &str, sequence: u64| {
            if let Ok(mut m) = accepted.lock() {
                m.insert((gateway.to_owned(), sequence as i64), Instant::now());
            }
        }));
    }
    let (stop, stopped) = watch::channel(false);
    let mut tasks = Vec::new();
    for (plant, target) in
        Factory::new(&spec.layout, &SimConfig::default(), 3, start_ms)?.into_plants().into_iter().zip(targets)
    {
        let config = FleetConfig { pace, ..FleetConfig::default() };
        tasks.push(tokio::spawn(fleet::run_plant(plant, target.clone(), config, stats.clone(), stopped.clone())));
    }
    tokio::time::sleep(Duration::from_secs(10)).await;
    let (lag0, applied0) = lag_and_applied(dbs).await?;
    let accepted0 = stats.readings_accepted.load(Ordering::Relaxed);
    let cpu0 = parts.sample();
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    let cpu1 = parts.sample();
    let accepted1 = stats.readings_accepted.load(Ordering::Relaxed);
    let (lag1, applied1) = lag_and_applied(dbs).await?;
    let _ = stop.send(true);
    for t in tasks {
        t.await.context("gateway task")??;
    }
    let (per_part, total) = shares(parts, &cpu0, &cpu1);
    let sensors_per_line = spec.layout.lines().first().map_or(1.0, |l| l.sensors.len() as f64);
    Ok(Drive {
        accepted_per_s: (accepted1 - accepted0) as f64 / seconds as f64,
        // Telemetry events are line batches: readings ≈ events × sensors per line.
        applied_per_s: (applied1 - applied0) as f64 * sensors_per_line / seconds as f64,
        lag_growth: (lag1 - lag0) as f64,
        cpu_share: total,
        by_part: per_part
            .iter()
            .map(|(k, v)| (k.to_string(), json!(round3(*v))))
            .collect::<serde_json::Map<_, _>>()
            .into(),
    })
}

/// Sum over plants of (log head − live checkpoint) and of telemetry events applied.
async fn lag_and_applied(dbs: &[Database]) -> Result<(i64, i64)> {
    let mut lag = 0;
    let mut applied = 0;
    for db in dbs {
        let client = db.client().await?;
        let checkpoint = eventlog::checkpoint(&client, readmodels::LIVE).await?;
        lag += eventlog::head_position(&client).await? - checkpoint;
        applied += eventlog::count_telemetry_through(&client, checkpoint).await?;
    }
    Ok((lag, applied))
}

/// Listens on plant 1's read models like the desktop app: after each NOTIFY it fetches
/// the sensors changed since its last position and times each batch it sees.
async fn watch_freshness(
    db: Database,
    layout: Arc<layout::Layout>,
    accepted: Accepted,
    mut stop: watch::Receiver<bool>,
) -> Result<Vec<f64>> {
    let mut listener = db.listen(&[readmodels::CHANNEL]).await?;
    let client = db.client().await?;
    let mut position: i64 = 0;
    let mut seen: std::collections::HashSet<(String, i64)> = std::collections::HashSet::new();
    // Batches visible before their upload's answer reached the gateway: freshness 0.
    let mut early: HashMap<(String, i64), Instant> = HashMap::new();
    let mut samples = Vec::new();
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            woke = listener.wait(Duration::from_secs(5)) => { woke?; }
        }
        let rows = readmodel_contract::read_since(&client, ReadModel::SensorState, position).await?.sensor_state;
        let now = Instant::now();
        for row in &rows {
            position = position.max(row.position);
            let Some(info) = layout.sensor(row.sensor_id as u32) else { continue };
            let key = (info.line.id.clone(), row.ts_ms);
            if seen.contains(&key) {
                continue;
            }
            let at = accepted.lock().ok().and_then(|m| m.get(&key).copied());
            match at {
                Some(at) => samples.push(now.saturating_duration_since(at).as_secs_f64() * 1000.0),
                None => {
                    early.insert(key.clone(), now);
                }
            }
            seen.insert(key);
        }
    }
    let accepted = accepted.lock().map_err(|_| anyhow::anyhow!("acceptance log poisoned"))?;
    for (key, visible) in early {
        if let Some(at) = accepted.get(&key) {
            samples.push(visible.saturating_duration_since(*at).as_secs_f64() * 1000.0);
        }
    }
    Ok(samples)
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}
