//! `floorwatch simulate`: the factory simulator, sending to plant nodes like a fleet of
//! gateways or writing its readings and ground truth to files.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use chrono::{DateTime, Utc};
use fleet::{FleetConfig, FleetStats, Pace, PlantTarget};
use simulator::{Factory, FaultConfig, OutputDir, SimConfig, Step};
use tokio::sync::watch;

use crate::cli::{Global, SimulateArgs, Speed};
use crate::config::Config;
use crate::databases::data_dir;
use crate::factory::FactorySpec;
use crate::secrets::Secrets;

pub fn pace(speed: Speed) -> Pace {
    match speed {
        Speed::Realtime => Pace::RealTime,
        Speed::Max => Pace::Max,
        Speed::Factor(factor) => Pace::Clock { factor },
    }
}

pub fn sim_config(fault_rate_scale: f64) -> Result<SimConfig> {
    anyhow::ensure!(
        fault_rate_scale.is_finite() && (0.0..=10_000.0).contains(&fault_rate_scale),
        "--fault-rate-scale must be between 0 and 10000, got {fault_rate_scale}"
    );
    let faults =
        if fault_rate_scale == 0.0 { FaultConfig::none() } else { FaultConfig::default().scaled(fault_rate_scale) };
    let config = SimConfig { faults, ..SimConfig::default() };
    config.validate()?;
    Ok(config)
}

/// Whole seconds, so every gateway's sequence numbers fall on whole seconds.
pub fn whole_second(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis().div_euclid(1000) * 1000
}

pub async fn run(args: SimulateArgs, global: &Global, config: &Config) -> Result<()> {
    let spec = FactorySpec::from_args(&args.factory)?;
    let seed = args.seed.unwrap_or(config.simulator.seed);
    let sim = sim_config(args.fault_rate_scale)?;
    let duration_ms = args.duration.map(|d| d.as_millis() as i64);
    let backfill_ms = args.backfill.map_or(0, |d| d.as_millis() as i64);
    let now = whole_second(Utc::now());
    let start = match (args.start, args.speed, duration_ms) {
        (Some(t), ..) => whole_second(t),
        // Faster than real time must stay in the past, or the plant refuses the future.
        (None, Speed::Max | Speed::Factor(_), Some(d)) => now - d,
        (None, Speed::Max | Speed::Factor(_), None) => {
            bail!(
                "faster than real time needs --duration (or --start in the past): readings may not run ahead of the clock"
            )
        }
        (None, Speed::Realtime, _) => now,
    };
    let end = duration_ms.map(|d| start + d);
    let mut factory = Factory::new(&spec.layout, &sim, seed, start - backfill_ms)?;

    if let Some(dir) = &args.output {
        let end = end.context("--output needs --duration: files have an end")?;
        return write_files(&mut factory, dir, start, end);
    }
    let retention_ms = i64::from(config.log.telemetry_retention_days) * 86_400_000;
    if start - backfill_ms < now - retention_ms {
        bail!(
            "the plants keep {} days of readings and refuse older ones; write a longer history to files with --output",
            config.log.telemetry_retention_days
        );
    }
    let targets = targets(&args, global, config, &spec)?;
    let fleet_config = FleetConfig {
        pace: pace(args.speed),
        end_ms: end,
        coarse_until_ms: (backfill_ms > 0).then_some(start),
        ..FleetConfig::default()
    };
    let stats = Arc::new(FleetStats::default());
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut tasks = Vec::new();
    for plant in factory.into_plants() {
        let target = targets
            .get(&plant.plant_number())
            .cloned()
            .with_context(|| format!("no target for plant {}", plant.plant_number()))?;
        tasks.push(tokio::spawn(fleet::run_plant(plant, target, fleet_config.clone(), stats.clone(), stop_rx.clone())));
    }
    eprintln!(
        "simulating {} plants × {} sensors from {} ({}), seed {seed}",
        spec.layout.plants().len(),
        args.factory.sensors_per_plant,
        DateTime::from_timestamp_millis(start - backfill_ms).unwrap_or_default().format("%Y-%m-%d %H:%M:%S UTC"),
        match args.speed {
            Speed::Realtime => "real time".to_owned(),
            Speed::Max => "as fast as the plants accept".to_owned(),
            Speed::Factor(f) => format!("{f}× real time"),
        }
    );
    let started = Instant::now();
    let mut last = (Instant::now(), 0u64);
    let all_done = futures_util::future::join_all(tasks);
    tokio::pin!(all_done);
    let mut ticker = tokio::time::interval(Duration::from_secs(2));
    let results = loop {
        tokio::select! {
            results = &mut all_done => break results,
            _ = ticker.tick() => {
                let sent = stats.readings_sent.load(Ordering::Relaxed);
                let rate = (sent - last.1) as f64 / last.0.elapsed().as_secs_f64().max(1e-3);
                last = (Instant::now(), sent);
                eprintln!("{}", progress(&stats, rate));
            }
            _ = tokio::signal::ctrl_c() => {
                eprintln!("stopping…");
                let _ = stop_tx.send(true);
            }
        }
    };
    for r in results {
        r.context("gateway task")??;
    }
    let secs = started.elapsed().as_secs_f64();
    let sent = stats.readings_sent.load(Ordering::Relaxed);
    println!(
        "sent {} readings in {:.1} s ({:.0}/s): {} accepted, {} rejected by validation, {} uploads refused, {} retries ({} asked to slow down); upload latency p50 {:.1} ms, p99 {:.1} ms",
        sent,
        secs,
        sent as f64 / secs.max(1e-9),
        stats.readings_accepted.load(Ordering::Relaxed),
        stats.readings_rejected.load(Ordering::Relaxed),
        stats.refused.load(Ordering::Relaxed),
        stats.retries.load(Ordering::Relaxed),
        stats.busy.load(Ordering::Relaxed),
        stats.latency_ms(50.0),
        stats.latency_ms(99.0)
    );
    anyhow::ensure!(stats.refused.load(Ordering::Relaxed) == 0, "some uploads were refused; see the log above");
    Ok(())
}

pub fn progress(stats: &FleetStats, rate: f64) -> String {
    let through = stats.sent_through_ms.load(Ordering::Relaxed);
    format!(
        "{:>12} readings sent ({:>9.0}/s), simulated time {}, {} refused, {} retries, upload p99 {:.1} ms",
        stats.readings_sent.load(Ordering::Relaxed),
        rate,
        DateTime::from_timestamp_millis(through).map_or("-".into(), |t| t.format("%Y-%m-%d %H:%M:%S").to_string()),
        stats.refused.load(Ordering::Relaxed),
        stats.retries.load(Ordering::Relaxed),
        stats.latency_ms(99.0)
    )
}

fn targets(
    args: &SimulateArgs,
    global: &Global,
    config: &Config,
    spec: &FactorySpec,
) -> Result<BTreeMap<u16, PlantTarget>> {
    let plants = spec.plant_numbers();
    let (tokens, crew_tokens): (BTreeMap<String, String>, BTreeMap<u16, String>) = match &args.tokens {
        Some(path) => {
            let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
            let tokens = serde_json::from_str(&text)
                .with_context(|| format!("{} is not a JSON object of gateway → token", path.display()))?;
            (tokens, BTreeMap::new())
        }
        None => {
            let secrets = Secrets::load_or_create(&data_dir(global), &spec.layout, &plants)?;
            (
                secrets.plants.values().flat_map(|p| p.gateway_tokens.as_map().clone()).collect(),
                secrets
                    .plants
                    .iter()
                    .filter(|(_, p)| !p.crew_token.is_empty())
                    .map(|(n, p)| (*n, p.crew_token.clone()))
                    .collect(),
            )
        }
    };
    let urls: BTreeMap<u16, String> = if args.target.is_empty() {
        plants.iter().map(|&n| (n, format!("http://127.0.0.1:{}", FactorySpec::port(n, config)))).collect()
    } else {
        args.target.iter().cloned().collect()
    };
    plants
        .iter()
        .map(|&n| {
            let base_url = urls.get(&n).cloned().with_context(|| format!("no --target for plant {n}"))?;
            let prefix = format!("P{n}-");
            let tokens =
                tokens.iter().filter(|(g, _)| g.starts_with(&prefix)).map(|(g, t)| (g.clone(), t.clone())).collect();
            Ok((n, PlantTarget { plant_number: n, base_url, tokens, crew_token: crew_tokens.get(&n).cloned() }))
        })
        .collect()
}

fn write_files(factory: &mut Factory, dir: &std::path::Path, start: i64, end: i64) -> Result<()> {
    let mut out = OutputDir::create(dir, factory)?;
    let mut step = Step::default();
    let started = Instant::now();
    let mut last_report = Instant::now();
    let mut readings = 0usize;
    if factory.next_ts_ms() < start {
        factory.set_step_ms(60_000)?;
    }
    while factory.next_ts_ms() < end {
        if factory.next_ts_ms() >= start && factory.step_ms() != 1_000 {
            factory.set_step_ms(1_000)?;
        }
        factory.step_into(&mut step);
        readings += step.reading_count();
        out.write_step(&step)?;
        if last_report.elapsed() > Duration::from_secs(5) {
            last_report = Instant::now();
            let at = DateTime::from_timestamp_millis(step.ts_ms).unwrap_or_default();
            eprintln!("{readings} readings written, simulated time {}", at.format("%Y-%m-%d %H:%M"));
        }
    }
    let manifest = out.finish()?;
    println!(
        "wrote {readings} readings of {} plants and the ground truth to {} in {:.1} s",
        manifest.plants.len(),
        dir.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
