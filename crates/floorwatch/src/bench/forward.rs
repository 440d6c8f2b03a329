//! `floorwatch bench forward`: store-and-forward catch-up. The cloud is away while the
//! plants ingest a backlog (as fast as they accept it); then the cloud comes back and the
//! plants keep ingesting at real time, and the benchmark times how long each plant's
//! backlog takes to reach the cloud's log *and* its read models.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::Result;
use chrono::Utc;
use fleet::{FleetStats, Pace};
use serde_json::json;
use tokio::sync::watch;

use super::stack::{Stack, join};
use super::{BenchServer, load_average, write_json};
use crate::cli::ForwardBenchArgs;
use crate::config::Config;

pub async fn run(args: ForwardBenchArgs, server: &BenchServer, config: &Config) -> Result<()> {
    let mut stack = Stack::start(server, config, args.plants, args.sensors_per_plant, None, 7).await?;
    let sensors = u64::from(args.plants) * u64::from(args.sensors_per_plant);
    let backlog_s = args.backlog_readings.div_ceil(sensors.max(1)) as i64;
    let now = Utc::now().timestamp_millis().div_euclid(1000) * 1000;
    eprintln!(
        "the cloud is away: {} plants × {} sensors ingest a backlog of {} simulated seconds…",
        args.plants, args.sensors_per_plant, backlog_s
    );
    let backlog_stats = Arc::new(FleetStats::default());
    let (_keep, never) = watch::channel(false);
    let started = Instant::now();
    join(stack.drive(Pace::Max, now - backlog_s * 1000, Some(now), None, backlog_stats.clone(), never)?).await?;
    let backlog = backlog_stats.readings_accepted.load(Ordering::Relaxed);
    let heads = stack.plant_heads().await?;
    eprintln!(
        "backlog of {backlog} readings ingested in {:.0} s; the cloud comes back",
        started.elapsed().as_secs_f64()
    );

    let load_before = load_average();
    let live_stats = Arc::new(FleetStats::default());
    let (stop_live, live_stopped) = watch::channel(false);
    // The plants keep ingesting in real time from now on.
    let live = stack.drive(Pace::RealTime, now, None, None, live_stats.clone(), live_stopped)?;
    let t0 = Instant::now();
    stack.start_cloud(config).await?;
    let cloud_position = stack.wait_shipped(&heads, Duration::from_secs(6 * 3600)).await?;
    let elapsed = t0.elapsed().as_secs_f64();
    let live_accepted = live_stats.readings_accepted.load(Ordering::Relaxed);
    let load_after = load_average();
    let _ = stop_live.send(true);
    join(live).await?;
    let live_rate = live_accepted as f64 / elapsed;
    stack.stop().await?;

    // Everything the link carried in the time: the backlog and what the plants ingested meanwhile.
    let shipped = backlog as f64 + live_accepted as f64;
    let figures = json!({
        "catchup_readings_per_s": (shipped / elapsed).round(),
        "backlog_drain_readings_per_s": (backlog as f64 / elapsed).round(),
        "backlog_readings": backlog,
        "catchup_seconds": (elapsed * 10.0).round() / 10.0,
        "live_readings_per_s_during_catchup": live_rate.round(),
        "cloud_position": cloud_position,
        "load_average_before": load_before,
        "load_average_after": load_after,
        "settings": { "plants": args.plants, "sensors_per_plant": args.sensors_per_plant,
                      "cpus": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1) },
    });
    write_json(&args.json, &figures)?;
    println!(
        "backlog of {backlog} readings stored in the cloud and its read models in {elapsed:.1} s while the plants ingested {live_rate:.0}/s: \
         {:.0} readings/s through the link ({:.0}/s of backlog); load average {load_after}",
        shipped / elapsed,
        backlog as f64 / elapsed
    );
    Ok(())
}
