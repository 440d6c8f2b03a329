//! `floorwatch bench api`: the cloud's query API on a cloud holding simulated days of
//! every plant (backfilled through real plant nodes and forwarders, one reading per
//! sensor per minute), under a mix of the manager app's main queries: first sent at a
//! steady rate, as many managers' apps would (latency counted from when each request was
//! due), then by clients that send again as soon as they are answered (the capacity).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use fleet::{FleetStats, Pace};
use serde_json::json;
use tokio::sync::{Semaphore, mpsc, watch};
use tokio::time::MissedTickBehavior;

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
    // Days of history arrived in minutes: what autovacuum does over those days (statistics,
    // the visibility map, dead versions reclaimed) is done once here.
    // The checkpoint then writes the backfill's pages out now rather than while measuring.
    // (Two statements: VACUUM cannot share a query string with another.)
    let client = stack.cloud_db.client().await?;
    client.batch_execute("VACUUM (ANALYZE)").await.context("vacuuming the cloud database")?;
    client.batch_execute("CHECKPOINT").await.context("checkpointing the cloud database")?;
    drop(client);

    // Maintenance predictions need a model: trained on the cloud's history, published.
    let options = factory_history::FactoryTrainOptions {
        created_at_ms: Utc::now().timestamp_millis(),
        ..factory_history::FactoryTrainOptions::default()
    };
    let trained = match cloud::train::train(&stack.cloud_db, None, options, true).await {
        Ok((_, report)) => json!({ "model": report.model_version, "machines": report.machines }),
        Err(e) => json!({ "error": format!("{e:#}") }),
    };

    // The plants and their links are stopped: in a deployment they run at the plants, and
    // the cloud's machine serves the managers alone.
    stack.stop_plants().await?;
    // The plants' own read models were still catching up on the backfill until they
    // stopped; their writes are flushed now, and the machine left to settle, so that their
    // echo (writeback, autovacuum) is not counted as the cloud's latency.
    let client = stack.cloud_db.client().await?;
    client.batch_execute("CHECKPOINT").await.context("checkpointing after the plants stopped")?;
    drop(client);
    let (busy_at_start, settled) = super::cpu::wait_until_quiet(0.15, Duration::from_secs(90)).await;
    eprintln!(
        "measuring after {:.0} s of settling, CPU {} busy",
        settled.as_secs_f64(),
        busy_at_start.map_or("?".to_owned(), |b| format!("{:.0}%", b * 100.0))
    );

    let url = stack.cloud_url.clone().context("the cloud runs")?;
    let (_, token) = access::create(&stack.cloud_db, access::Role::Manager, access::Scope::AllPlants, "bench").await?;
    let mix = Arc::new(Mix::new(&stack, now));
    let warm_up = Duration::from_secs(5);
    let measure = Duration::from_secs(args.seconds);

    // The managers' apps run elsewhere: the load comes from a thread and runtime of its own,
    // so a request leaves when it is due even while the cloud's workers are busy. (Sharing
    // the cloud's runtime, a request waited for a worker that was serialising someone
    // else's answer before it was even sent, and that wait counted as the cloud's latency.)
    let (rate, concurrency) = (args.rate, args.concurrency);
    let (done_tx, done_rx) = tokio::sync::oneshot::channel();
    let client_mix = mix.clone();
    std::thread::Builder::new().name("api-load".into()).spawn(move || {
        let measured = (|| {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            runtime.block_on(async move {
                let http = reqwest::Client::builder().pool_max_idle_per_host(concurrency as usize).build()?;
                let target = Target { http, url, token, mix: client_mix };
                let load_before = load_average();
                let steady = steady_rate(&target, rate, concurrency as usize, warm_up, measure).await;
                let load_after = load_average();
                let capacity = closed_loop(&target, concurrency, warm_up, measure).await?;
                anyhow::Ok((load_before, steady, load_after, capacity, load_average()))
            })
        })();
        let _ = done_tx.send(measured);
    })?;
    let (load_before, steady, load_after, capacity, load_after_capacity) =
        done_rx.await.context("the load thread ended without its figures")??;

    let storage = storage(&stack.cloud_db).await?;
    stack.stop().await?;
    let figures = json!({
        "requests_per_s": steady.per_second(),
        "p50_ms": round2(steady.percentile(50.0)),
        "p99_ms": round2(steady.percentile(99.0)),
        "max_ms": round2(steady.percentile(100.0)),
        "errors": steady.errors,
        "offered_per_s": args.rate,
        "by_query": steady.by_query(&mix.names),
        "capacity": {
            "requests_per_s": capacity.per_second(),
            "p50_ms": round2(capacity.percentile(50.0)),
            "p99_ms": round2(capacity.percentile(99.0)),
            "errors": capacity.errors,
            "clients": args.concurrency,
            "by_query": capacity.by_query(&mix.names),
            "load_average_after": load_after_capacity,
        },
        "load_average_before": load_before,
        "cpu_busy_at_start_percent": busy_at_start.map(|b| (b * 100.0).round()),
        "settled_s": settled.as_secs(),
        "load_average_after": load_after,
        "model": trained,
        "storage": storage,
        "settings": { "plants": args.plants, "sensors_per_plant": args.sensors_per_plant, "lines_per_plant": 1, "days": args.days,
                      "vacuumed_after_backfill": true, "machines": mix.machines.len(), "readings": readings, "rate": args.rate,
                      "concurrency": args.concurrency, "seconds": args.seconds,
                      "cpus": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1) },
    });
    write_json(&args.json, &figures)?;
    println!(
        "at {} requests/s offered: {:.0} answered/s, p50 {:.1} ms, p99 {:.1} ms ({} failed); load average {load_after}",
        args.rate,
        steady.per_second(),
        steady.percentile(50.0),
        steady.percentile(99.0),
        steady.errors
    );
    println!(
        "capacity with {} clients: {:.0} requests/s, p50 {:.1} ms, p99 {:.1} ms ({} failed)",
        args.concurrency,
        capacity.per_second(),
        capacity.percentile(50.0),
        capacity.percentile(99.0),
        capacity.errors
    );
    Ok(())
}

/// Where and how the requests go.
#[derive(Clone)]
struct Target {
    http: reqwest::Client,
    url: String,
    token: String,
    mix: Arc<Mix>,
}

impl Target {
    /// Sends the `n`th request of the mix; true when it was answered with success, whole.
    async fn send(&self, n: usize) -> bool {
        let path = self.mix.path(n);
        match self.http.get(format!("{}{path}", self.url)).bearer_auth(&self.token).send().await {
            Ok(r) => r.status().is_success() && r.bytes().await.is_ok(),
            Err(_) => false,
        }
    }
}

/// What one measurement saw: each answered request's query and latency.
struct Measured {
    samples: Vec<(usize, f64)>,
    errors: u64,
    seconds: f64,
}

impl Measured {
    fn per_second(&self) -> f64 {
        (self.samples.len() as f64 / self.seconds).round()
    }

    fn percentile(&self, p: f64) -> f64 {
        let mut all: Vec<f64> = self.samples.iter().map(|s| s.1).collect();
        all.sort_by(f64::total_cmp);
        percentile(&all, p)
    }

    fn by_query(&self, names: &[&'static str]) -> serde_json::Value {
        let mut per: Vec<Vec<f64>> = vec![Vec::new(); names.len()];
        for &(q, ms) in &self.samples {
            per[q].push(ms);
        }
        let map: serde_json::Map<String, serde_json::Value> = names
            .iter()
            .zip(per.iter_mut())
            .map(|(name, v)| {
                v.sort_by(f64::total_cmp);
                ((*name).to_owned(), json!({ "requests": v.len(), "p50_ms": round2(percentile(v, 50.0)), "p99_ms": round2(percentile(v, 99.0)) }))
            })
            .collect();
        serde_json::Value::Object(map)
    }
}

/// Requests sent on a fixed schedule (`rate` a second) whatever the answers do, at most
/// `in_flight` at once; each is timed from when it was due, so a request that waited for a
/// connection or behind a slow server counts its wait. Those due during the first
/// `warm_up` are sent but not counted.
async fn steady_rate(target: &Target, rate: u32, in_flight: usize, warm_up: Duration, measure: Duration) -> Measured {
    let target = Arc::new(target.clone());
    let permits = Arc::new(Semaphore::new(in_flight));
    let (tx, mut rx) = mpsc::unbounded_channel();
    let mut ticks = tokio::time::interval(Duration::from_secs_f64(1.0 / f64::from(rate)));
    ticks.set_missed_tick_behavior(MissedTickBehavior::Burst);
    let begin = tokio::time::Instant::now();
    let (from, until) = (begin + warm_up, begin + warm_up + measure);
    let mut n = 0;
    loop {
        let due = ticks.tick().await;
        if due >= until {
            break;
        }
        let (target, permits, tx) = (target.clone(), permits.clone(), tx.clone());
        let counted = due >= from;
        tokio::spawn(async move {
            let ok = match permits.acquire_owned().await {
                Ok(_permit) => target.send(n).await,
                Err(_) => false,
            };
            if counted {
                let _ = tx.send((target.mix.query(n), due.elapsed().as_secs_f64() * 1000.0, ok));
            }
        });
        n += 1;
    }
    drop(tx);
    let mut measured = Measured { samples: Vec::new(), errors: 0, seconds: measure.as_secs_f64() };
    while let Some((q, ms, ok)) = rx.recv().await {
        if ok { measured.samples.push((q, ms)) } else { measured.errors += 1 }
    }
    measured
}

/// `clients` clients, each sending its next request as soon as its last is answered: the
/// most requests a second the cloud answers, and the latency it answers them with then.
async fn closed_loop(target: &Target, clients: u64, warm_up: Duration, measure: Duration) -> Result<Measured> {
    let measuring = Arc::new(AtomicBool::new(false));
    let stopping = Arc::new(AtomicBool::new(false));
    let mut workers = Vec::new();
    for w in 0..clients {
        let target = target.clone();
        let (measuring, stopping) = (measuring.clone(), stopping.clone());
        workers.push(tokio::spawn(async move {
            let mut samples: Vec<(usize, f64)> = Vec::new();
            let mut errors = 0u64;
            let mut n = w as usize;
            while !stopping.load(Ordering::Relaxed) {
                let t = Instant::now();
                let ok = target.send(n).await;
                let ms = t.elapsed().as_secs_f64() * 1000.0;
                if measuring.load(Ordering::Relaxed) {
                    if ok { samples.push((target.mix.query(n), ms)) } else { errors += 1 }
                }
                n += clients as usize;
            }
            (samples, errors)
        }));
    }
    tokio::time::sleep(warm_up).await;
    measuring.store(true, Ordering::Relaxed);
    let t0 = Instant::now();
    tokio::time::sleep(measure).await;
    measuring.store(false, Ordering::Relaxed);
    let seconds = t0.elapsed().as_secs_f64();
    stopping.store(true, Ordering::Relaxed);
    let mut measured = Measured { samples: Vec::new(), errors: 0, seconds };
    for w in workers {
        let (samples, errors) = w.await.context("client")?;
        measured.samples.extend(samples);
        measured.errors += errors;
    }
    Ok(measured)
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

/// The manager app's main questions over the backfilled history, each asked of a different
/// plant or machine in turn.
struct Mix {
    names: Vec<&'static str>,
    plants: Vec<u16>,
    machines: Vec<String>,
    now: i64,
}

impl Mix {
    fn new(stack: &Stack, now: i64) -> Mix {
        let layout = &stack.spec.layout;
        Mix {
            names: vec![
                "plants",
                "kpis_30d_by_day_all_plants",
                "kpis_30d_by_day_per_line",
                "kpis_24h_by_hour_all_plants",
                "anomalies_newest_50",
                "anomalies_critical_open",
                "maintenance_due",
                "maintenance_log",
                "trend_7d_hourly",
                "trend_30d_daily",
                "trend_6h_minutes",
                "machine",
            ],
            plants: layout.plants().iter().map(|p| p.number).collect(),
            machines: layout.machines().iter().map(|m| m.id.clone()).collect(),
            now,
        }
    }

    /// Which question the `n`th request asks.
    fn query(&self, n: usize) -> usize {
        n % self.names.len()
    }

    /// The `n`th request's path: the questions in turn, each round about another plant and
    /// machine.
    fn path(&self, n: usize) -> String {
        let t = |ms: i64| {
            DateTime::<Utc>::from_timestamp_millis(ms)
                .unwrap_or_default()
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        };
        let (day, now) = (86_400_000, self.now);
        let round = n / self.names.len();
        let plant = self.plants.get(round % self.plants.len().max(1)).copied().unwrap_or(1);
        // A stride prime to any small machine count visits every machine.
        let machine =
            self.machines.get(round.wrapping_mul(7_919) % self.machines.len().max(1)).map_or("", String::as_str);
        match self.names[self.query(n)] {
            "plants" => "/v1/plants".to_owned(),
            "kpis_30d_by_day_all_plants" => format!("/v1/kpis?from={}&to={}&bucket=day", t(now - 30 * day), t(now)),
            "kpis_30d_by_day_per_line" => {
                format!("/v1/kpis?plant={plant}&from={}&to={}&bucket=day&by=line", t(now - 30 * day), t(now))
            }
            "kpis_24h_by_hour_all_plants" => format!("/v1/kpis?from={}&to={}&bucket=hour", t(now - day), t(now)),
            "anomalies_newest_50" => "/v1/anomalies?limit=50".to_owned(),
            "anomalies_critical_open" => {
                "/v1/anomalies?severity=critical,major&state=new,acknowledged&limit=50".to_owned()
            }
            "maintenance_due" => "/v1/maintenance?due_within_days=14&limit=50".to_owned(),
            "maintenance_log" => "/v1/maintenance/log?limit=50".to_owned(),
            "trend_7d_hourly" => format!("/v1/machines/{machine}/trend?from={}&to={}", t(now - 7 * day), t(now)),
            "trend_30d_daily" => {
                format!("/v1/machines/{machine}/trend?from={}&to={}&resolution=day", t(now - 30 * day), t(now))
            }
            "trend_6h_minutes" => format!("/v1/machines/{machine}/trend?from={}&to={}", t(now - day / 4), t(now)),
            _ => format!("/v1/machines/{machine}"),
        }
    }
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}
