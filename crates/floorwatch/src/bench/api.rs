//! `floorwatch bench api`: the cloud's query API on a cloud holding simulated days of
//! every plant (backfilled through real plant nodes and forwarders, one reading per
//! sensor per minute), under a mix of the manager app's main queries.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use fleet::{FleetStats, Pace};
use serde_json::json;
use tokio::sync::watch;

use super::stack::{Stack, join};
use super::{BenchServer, load_average, percentile, write_json};
use crate::cli::ApiBenchArgs;
use crate::config::Config;

pub async fn run(args: ApiBenchArgs, server: &BenchServer, config: &Config) -> Result<()> {
    // One gateway a plant: a backfill of small plants is then a few large uploads a minute,
    // not many tiny ones.
    let mut stack = Stack::start(server, config, args.plants, args.sensors_per_plant, Some(1), args.days + 2).await?;
    stack.start_cloud(config).await?;
    // Half an hour of a gateway's readings an upload: the history arrives as a plant's
    // gateways would send it after an outage, in batches of thousands of readings.
    stack.coarse_steps_per_upload = 30;
    let now = Utc::now().timestamp_millis().div_euclid(60_000) * 60_000;
    let start = now - i64::from(args.days) * 86_400_000;
    eprintln!(
        "backfilling {} days of {} plants × {} sensors through the plants to the cloud…",
        args.days, args.plants, args.sensors_per_plant
    );
    let began = Instant::now();
    let stats = Arc::new(FleetStats::default());
    let (_keep, never) = watch::channel(false);
    join(stack.drive(Pace::Max, start, Some(now), Some(now), stats.clone(), never)?).await?;
    let heads = stack.plant_heads().await?;
    stack.wait_shipped(&heads, Duration::from_secs(12 * 3600)).await?;
    let readings = stats.readings_accepted.load(Ordering::Relaxed);
    eprintln!("{readings} readings in the cloud after {:.0} s", began.elapsed().as_secs_f64());

    // Maintenance predictions need a model: trained on the cloud's history, published.
    let options = factory_history::FactoryTrainOptions {
        created_at_ms: Utc::now().timestamp_millis(),
        ..factory_history::FactoryTrainOptions::default()
    };
    let trained = match cloud::train::train(&stack.cloud_db, None, options, true).await {
        Ok((_, report)) => json!({ "model": report.model_version, "machines": report.machines }),
        Err(e) => json!({ "error": format!("{e:#}") }),
    };

    let url = stack.cloud_url.clone().context("the cloud runs")?;
    let (_, token) = access::create(&stack.cloud_db, access::Role::Manager, access::Scope::AllPlants, "bench").await?;
    let queries = mix(&stack, now);
    let http = reqwest::Client::builder().pool_max_idle_per_host(64).build()?;
    let measuring = Arc::new(AtomicBool::new(false));
    let stopping = Arc::new(AtomicBool::new(false));
    let mut workers = Vec::new();
    for w in 0..args.concurrency {
        let (http, url, token, queries) = (http.clone(), url.clone(), token.clone(), queries.clone());
        let (measuring, stopping) = (measuring.clone(), stopping.clone());
        workers.push(tokio::spawn(async move {
            let mut samples: Vec<(usize, f64)> = Vec::new();
            let mut errors = 0u64;
            let mut i = w as usize;
            while !stopping.load(Ordering::Relaxed) {
                let q = i % queries.len();
                i += 7;
                let t = Instant::now();
                let ok = match http.get(format!("{url}{}", queries[q].1)).bearer_auth(&token).send().await {
                    Ok(r) => r.status().is_success() && r.bytes().await.is_ok(),
                    Err(_) => false,
                };
                let ms = t.elapsed().as_secs_f64() * 1000.0;
                if measuring.load(Ordering::Relaxed) {
                    if ok { samples.push((q, ms)) } else { errors += 1 }
                }
            }
            (samples, errors)
        }));
    }
    tokio::time::sleep(Duration::from_secs(5)).await;
    let load_before = load_average();
    measuring.store(true, Ordering::Relaxed);
    let t0 = Instant::now();
    tokio::time::sleep(Duration::from_secs(args.seconds)).await;
    measuring.store(false, Ordering::Relaxed);
    let elapsed = t0.elapsed().as_secs_f64();
    stopping.store(true, Ordering::Relaxed);
    let load_after = load_average();
    let mut all = Vec::new();
    let mut by_query: Vec<Vec<f64>> = vec![Vec::new(); queries.len()];
    let mut errors = 0;
    for w in workers {
        let (samples, e) = w.await.context("worker")?;
        errors += e;
        for (q, ms) in samples {
            all.push(ms);
            by_query[q].push(ms);
        }
    }
    let storage = storage(&stack.cloud_db).await?;
    stack.stop().await?;
    all.sort_by(f64::total_cmp);
    let per_query: serde_json::Map<String, serde_json::Value> = queries
        .iter()
        .zip(by_query.iter_mut())
        .map(|((name, _), v)| {
            v.sort_by(f64::total_cmp);
            ((*name).to_owned(), json!({ "requests": v.len(), "p50_ms": round2(percentile(v, 50.0)), "p99_ms": round2(percentile(v, 99.0)) }))
        })
        .collect();
    let figures = json!({
        "requests_per_s": (all.len() as f64 / elapsed).round(),
        "p50_ms": round2(percentile(&all, 50.0)),
        "p99_ms": round2(percentile(&all, 99.0)),
        "errors": errors,
        "by_query": per_query,
        "load_average_before": load_before,
        "load_average_after": load_after,
        "model": trained,
        "storage": storage,
        "settings": { "plants": args.plants, "sensors_per_plant": args.sensors_per_plant, "lines_per_plant": 1, "days": args.days,
                      "readings": readings, "concurrency": args.concurrency, "seconds": args.seconds,
                      "cpus": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1) },
    });
    write_json(&args.json, &figures)?;
    println!(
        "{:.0} requests/s, p50 {:.1} ms, p99 {:.1} ms over {} requests ({errors} failed); load average {load_after}",
        all.len() as f64 / elapsed,
        percentile(&all, 50.0),
        percentile(&all, 99.0),
        all.len()
    );
    Ok(())
}

/// Rows and bytes (with indexes) of the cloud's per-sensor and KPI tables: what a year of a
/// bigger factory costs is extrapolated from these.
async fn storage(db: &eventlog::Database) -> Result<serde_json::Value> {
    let client = db.client().await?;
    let mut out = serde_json::Map::new();
    for table in ["sensor_minute", "sensor_hour", "sensor_day", "kpi_hour", "kpi_day", "anomalies", "predictions"] {
        let row = client
            .query_one(
                &format!(
                    "SELECT count(*), coalesce((SELECT sum(pg_total_relation_size(c.oid)) FROM pg_class c
                         JOIN pg_namespace n ON n.oid = c.relnamespace
                        WHERE n.nspname = 'cloud' AND (c.relname = '{table}' OR c.relname LIKE '{table}\\_%')
                          AND c.relkind IN ('r', 'p')), 0)::bigint FROM cloud.{table}"
                ),
                &[],
            )
            .await?;
        let (rows, bytes): (i64, i64) = (row.get(0), row.get(1));
        out.insert(
            table.to_owned(),
            json!({ "rows": rows, "bytes": bytes, "bytes_per_row": if rows > 0 { (bytes as f64 / rows as f64).round() } else { 0.0 } }),
        );
    }
    Ok(serde_json::Value::Object(out))
}

/// The manager app's main questions, over the backfilled history.
fn mix(stack: &Stack, now: i64) -> Arc<Vec<(&'static str, String)>> {
    let t = |ms: i64| {
        DateTime::<Utc>::from_timestamp_millis(ms)
            .unwrap_or_default()
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    };
    let day = 86_400_000;
    let layout = &stack.spec.layout;
    let machine = layout.machines().first().map_or_else(String::new, |m| m.id.clone());
    let plant = layout.plants().first().map_or(1, |p| p.number);
    Arc::new(vec![
        ("plants", "/v1/plants".to_owned()),
        ("kpis_30d_by_day_all_plants", format!("/v1/kpis?from={}&to={}&bucket=day", t(now - 30 * day), t(now))),
        (
            "kpis_30d_by_day_per_line",
            format!("/v1/kpis?plant={plant}&from={}&to={}&bucket=day&by=line", t(now - 30 * day), t(now)),
        ),
        ("kpis_24h_by_hour_all_plants", format!("/v1/kpis?from={}&to={}&bucket=hour", t(now - day), t(now))),
        ("anomalies_newest_50", "/v1/anomalies?limit=50".to_owned()),
        ("anomalies_critical_open", "/v1/anomalies?severity=critical,major&state=new,acknowledged&limit=50".to_owned()),
        ("maintenance_due", "/v1/maintenance?due_within_days=14&limit=50".to_owned()),
        ("maintenance_log", "/v1/maintenance/log?limit=50".to_owned()),
        ("trend_7d_hourly", format!("/v1/machines/{machine}/trend?from={}&to={}", t(now - 7 * day), t(now))),
        (
            "trend_30d_daily",
            format!("/v1/machines/{machine}/trend?from={}&to={}&resolution=day", t(now - 30 * day), t(now)),
        ),
        ("trend_6h_minutes", format!("/v1/machines/{machine}/trend?from={}&to={}", t(now - day / 4), t(now))),
        ("machine", format!("/v1/machines/{machine}")),
    ])
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}
