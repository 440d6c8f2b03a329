//! `floorwatch bench ingest`: the simulator at full speed against one plant node, then
//! paced at 50,000 readings/s, measuring accepted readings/s, upload latency, and the
//! CPU of each part. The plant node runs as its own process (`floorwatch plant`, with
//! its projections and anomaly monitor, as in production); the simulator runs in this
//! process; PostgreSQL is the benchmark's private cluster.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::{Context, Result};
use chrono::Utc;
use fleet::{FleetConfig, FleetStats, Pace, PlantTarget};
use serde_json::{Value, json};
use simulator::{Factory, SimConfig};
use tokio::sync::watch;

use super::cpu::{Parts, shares};
use super::{BenchServer, write_json};
use crate::cli::IngestBenchArgs;
use crate::secrets::Secrets;

pub async fn run(args: IngestBenchArgs, server: &BenchServer) -> Result<()> {
    let dir = std::env::temp_dir().join(format!("floorwatch-bench-ingest-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let node = NodeProcess::start(server, &dir, args.sensors).await?;
    let secrets: Secrets = serde_json::from_str(&std::fs::read_to_string(crate::secrets::path(&dir))?)?;
    let plant = secrets.plants.get(&1).context("the node wrote no secrets for plant 1")?;
    let target = PlantTarget {
        plant_number: 1,
        base_url: node.base_url.clone(),
        tokens: plant.gateway_tokens.as_map().clone(),
        crew_token: Some(plant.crew_token.clone()).filter(|t| !t.is_empty()),
    };
    let parts = Parts::new(&[
        ("simulator", std::process::id(), false),
        ("plant_node", node.pid(), false),
        (
            "postgres",
            server.postmaster_pid().context("the benchmark needs its own private cluster (no --database-url)")?,
            true,
        ),
    ]);
    let layout = layout::Layout::default_with(&layout::Scale {
        plants: Some(1),
        lines_per_plant: None,
        sensors_per_plant: Some(args.sensors),
    })?;

    eprintln!("full speed for {} s…", args.seconds);
    // Simulated time runs far ahead of the clock at full speed: start a day back.
    let max =
        phase(&layout, &target, Pace::Max, Utc::now().timestamp_millis() - 86_400_000, args.seconds, &parts).await?;
    let factor = 50_000.0 / f64::from(args.sensors);
    eprintln!("paced at 50,000 readings/s ({factor}× real time for {} sensors) for {} s…", args.sensors, args.seconds);
    let paced = phase(
        &layout,
        &target,
        Pace::Clock { factor },
        Utc::now().timestamp_millis() - 43_200_000,
        args.seconds,
        &parts,
    )
    .await?;
    node.stop().await?;
    let _ = std::fs::remove_dir_all(&dir);

    let mut figures = max.clone();
    figures["at_50k"] = paced.clone();
    figures["settings"] = json!({
        "sensors": args.sensors,
        "lines": layout.lines().len(),
        "measured_seconds": args.seconds,
        "cpus": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
    });
    write_json(&args.json, &figures)?;
    for (name, f) in [("full speed", &max), ("paced at 50,000/s", &paced)] {
        println!(
            "{name:<18} accepted {:>10.0} readings/s   upload p99 {:>7.1} ms   CPU {:>5.1}% of the machine ({})",
            f["accepted_readings_per_s"].as_f64().unwrap_or(f64::NAN),
            f["http_p99_ms"].as_f64().unwrap_or(f64::NAN),
            100.0 * f["cpu_share"].as_f64().unwrap_or(f64::NAN),
            f["cpu_share_by_part"]
                .as_object()
                .map(|o| o
                    .iter()
                    .map(|(k, v)| format!("{k} {:.1}%", 100.0 * v.as_f64().unwrap_or(0.0)))
                    .collect::<Vec<_>>()
                    .join(", "))
                .unwrap_or_default()
        );
    }
    Ok(())
}

/// Runs the fleet for a warm-up and then `seconds`, measuring the second part.
async fn phase(
    layout: &layout::Layout,
    target: &PlantTarget,
    pace: Pace,
    start_ms: i64,
    seconds: u64,
    parts: &Parts,
) -> Result<Value> {
    let start_ms = start_ms.div_euclid(1000) * 1000;
    let plant = Factory::new(layout, &SimConfig::default(), 1, start_ms)?.into_plants().remove(0);
    let stats = Arc::new(FleetStats::default());
    let (stop, stopped) = watch::channel(false);
    let config = FleetConfig { pace, ..FleetConfig::default() };
    let task = tokio::spawn(fleet::run_plant(plant, target.clone(), config, stats.clone(), stopped));
    tokio::time::sleep(Duration::from_secs(5)).await;
    stats.reset_latency();
    let accepted0 = stats.readings_accepted.load(Ordering::Relaxed);
    let cpu0 = parts.sample();
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    let cpu1 = parts.sample();
    let accepted1 = stats.readings_accepted.load(Ordering::Relaxed);
    let p99 = stats.latency_ms(99.0);
    let p50 = stats.latency_ms(50.0);
    let _ = stop.send(true);
    task.await.context("gateway task")??;
    let (per_part, total) = shares(parts, &cpu0, &cpu1);
    let refused = stats.refused.load(Ordering::Relaxed);
    anyhow::ensure!(refused == 0, "{refused} uploads were refused during the benchmark");
    let rate = (accepted1 - accepted0) as f64 / seconds as f64;
    Ok(json!({
        "accepted_readings_per_s": rate.round(),
        "http_p50_ms": (p50 * 100.0).round() / 100.0,
        "http_p99_ms": (p99 * 100.0).round() / 100.0,
        "cpu_share": (total * 1000.0).round() / 1000.0,
        "cpu_share_by_part": per_part.iter().map(|(k, v)| (k.to_string(), json!((v * 1000.0).round() / 1000.0))).collect::<serde_json::Map<_, _>>(),
        "busy_responses": stats.busy.load(Ordering::Relaxed),
        "retries": stats.retries.load(Ordering::Relaxed),
    }))
}

/// A `floorwatch plant` process of this executable.
struct NodeProcess {
    child: tokio::process::Child,
    base_url: String,
}

impl NodeProcess {
    async fn start(server: &BenchServer, dir: &std::path::Path, sensors: u32) -> Result<NodeProcess> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let exe = std::env::current_exe()?;
        let child = tokio::process::Command::new(exe)
            .arg("--data-dir")
            .arg(dir)
            .args(["--database-url", server.admin_url()])
            .args(["plant", "--plant", "1", "--plants", "1", "--sensors-per-plant", &sensors.to_string()])
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .kill_on_drop(true)
            .spawn()
            .context("starting the plant node")?;
        let base_url = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::new();
        for _ in 0..600 {
            if http.get(format!("{base_url}/v1/health")).send().await.is_ok_and(|r| r.status().is_success()) {
                return Ok(NodeProcess { child, base_url });
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        anyhow::bail!("the plant node did not answer within a minute")
    }

    fn pid(&self) -> u32 {
        self.child.id().unwrap_or(0)
    }

    /// Ctrl-C, as a user would: the node finishes its uploads and stops.
    async fn stop(mut self) -> Result<()> {
        if let Some(pid) = self.child.id() {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), nix::sys::signal::Signal::SIGINT);
        }
        tokio::time::timeout(Duration::from_secs(60), self.child.wait())
            .await
            .context("the plant node did not stop")??;
        Ok(())
    }
}
