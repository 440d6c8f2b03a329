//! `floorwatch bench log`: telemetry through the event log against two references on
//! the same cluster — raw binary COPY of plain rows into an indexed table (the physical
//! reference) and one INSERT per reading in autocommit (what a naive consumer does) —
//! plus delivery throughput and append-to-delivery latency of a subscription.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use eventlog::{
    Append, Database, ExpectedVersion, Handler, Metadata, NewEvent, RecordedEvent, StreamName, Subscription,
    SubscriptionConfig, Transaction, append_and_commit,
};
use futures_util::pin_mut;
use serde_json::json;
use telemetry::Reading;
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::Type;

use super::{BenchServer, percentile, write_json};
use crate::cli::LogBenchArgs;

const GATEWAYS: u32 = 10;
const SENSORS_PER_GATEWAY: u32 = 1_000;

pub async fn run(args: LogBenchArgs, server: &BenchServer) -> Result<()> {
    let start_time = Utc::now() - chrono::Duration::hours(1);
    let batches = make_batches(args.readings as usize, args.batch_readings as usize, start_time);
    let total: usize = batches.iter().map(|b| b.readings.len()).sum();

    eprintln!("(a) {total} readings through the log in batches of {}…", args.batch_readings);
    let log_url = server.fresh_database("log").await?;
    let db = Database::connect_and_migrate(&log_url, 8).await?;
    eventlog::prepare_days_ahead(&db, start_time).await?;
    let log_rate = append_through_log(&db, &batches, args.batches_per_transaction).await?;
    let log_bytes = eventlog::telemetry_storage(&db.client().await?).await?.batch_bytes;

    eprintln!("(b) the same readings by binary COPY into an indexed table…");
    let copy_rate = copy_rows(&db, &batches).await?;

    eprintln!("(c) one INSERT per reading, autocommit, for {} s…", args.insert_seconds);
    let insert_rate = insert_rows(&db, &batches, Duration::from_secs(args.insert_seconds)).await?;

    eprintln!("delivery: telemetry batches to a checkpointing consumer…");
    let (batch_rate, delivered_readings_rate) = deliver_telemetry(&db).await?;

    eprintln!("delivery: {} domain events to a checkpointing consumer…", args.delivery_events);
    let delivery_rate = deliver_domain_events(&db, args.delivery_events).await?;

    eprintln!("latency: {} events appended at {}/s to a live subscriber…", args.latency_events, args.latency_rate);
    let mut latencies = append_to_delivery_latency(&db, args.latency_events, args.latency_rate).await?;
    latencies.sort_by(f64::total_cmp);
    let (p50, p99) = (percentile(&latencies, 50.0), percentile(&latencies, 99.0));

    let figures = json!({
        "log_readings_per_s": log_rate.round(),
        "copy_readings_per_s": copy_rate.round(),
        "insert_readings_per_s": insert_rate.round(),
        "log_vs_copy": round2(log_rate / copy_rate),
        "log_vs_insert": round2(log_rate / insert_rate),
        "delivery_events_per_s": delivery_rate.round(),
        "delivery_p50_ms": round2(p50),
        "delivery_p99_ms": round2(p99),
        "delivery_telemetry_batches_per_s": batch_rate.round(),
        "delivery_telemetry_readings_per_s": delivered_readings_rate.round(),
        "log_bytes_per_reading": round2(log_bytes as f64 / total as f64),
        "settings": {
            "readings": total,
            "batch_readings": args.batch_readings,
            "batches_per_transaction": args.batches_per_transaction,
            "copy_rows_per_statement": COPY_ROWS,
            "delivery_events": args.delivery_events,
            "latency_events": args.latency_events,
            "latency_rate_per_s": args.latency_rate,
            "cpus": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        }
    });
    write_json(&args.json, &figures)?;
    println!("{:<48} {:>14}", "telemetry through the log (readings/s)", fmt(log_rate));
    println!("{:<48} {:>14}", "binary COPY, indexed rows (readings/s)", fmt(copy_rate));
    println!("{:<48} {:>14}", "one INSERT per reading (readings/s)", fmt(insert_rate));
    println!("{:<48} {:>14}", "log ÷ COPY", format!("{:.2}×", log_rate / copy_rate));
    println!("{:<48} {:>14}", "log ÷ INSERT", format!("{:.0}×", log_rate / insert_rate));
    println!("{:<48} {:>14}", "delivery to a checkpointing consumer (events/s)", fmt(delivery_rate));
    println!("{:<48} {:>14}", "delivery of telemetry (readings/s)", fmt(delivered_readings_rate));
    println!("{:<48} {:>11.2} ms", "append → delivery p50", p50);
    println!("{:<48} {:>11.2} ms", "append → delivery p99", p99);
    println!("{:<48} {:>14.2}", "log bytes per reading (indexes included)", log_bytes as f64 / total as f64);
    Ok(())
}

struct Batch {
    gateway: u32,
    seq: u64,
    readings: Vec<Reading>,
}

/// Gateway batches for one reading per sensor per second, values with f32 precision
/// (as gateways send them).
fn make_batches(wanted: usize, per_batch: usize, start: DateTime<Utc>) -> Vec<Batch> {
    let per_batch = per_batch.clamp(1, SENSORS_PER_GATEWAY as usize);
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut noise = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 11) as f64 / (1u64 << 53) as f64 - 0.5
    };
    let mut out = Vec::new();
    let mut made = 0;
    let mut second = 0i64;
    'outer: loop {
        let ts = start.timestamp_millis() + second * 1000;
        for g in 0..GATEWAYS {
            for chunk_start in (0..SENSORS_PER_GATEWAY).step_by(per_batch) {
                let n = per_batch.min((SENSORS_PER_GATEWAY - chunk_start) as usize).min(wanted - made);
                let readings: Vec<Reading> = (0..n as u32)
                    .map(|i| {
                        let sensor = g * SENSORS_PER_GATEWAY + chunk_start + i;
                        let level = 20.0 + f64::from(sensor % 50);
                        Reading::new(sensor, ts, f64::from((level + noise()) as f32))
                    })
                    .collect();
                made += n;
                out.push(Batch { gateway: g, seq: out.len() as u64, readings });
                if made >= wanted {
                    break 'outer;
                }
            }
        }
        second += 1;
    }
    out
}

async fn append_through_log(db: &Database, batches: &[Batch], per_tx: usize) -> Result<f64> {
    let (from, to) = batches
        .iter()
        .flat_map(|b| &b.readings)
        .fold((i64::MAX, i64::MIN), |(lo, hi), r| (lo.min(r.ts_ms), hi.max(r.ts_ms)));
    let started = Instant::now();
    let mut readings = 0usize;
    for group in batches.chunks(per_tx.max(1)) {
        let mut appends = Vec::with_capacity(group.len());
        for b in group {
            let source = format!("gateway:G{}", b.gateway);
            let event = NewEvent::readings(&b.readings, (from, to), Metadata::from_source(source))?;
            let stream = StreamName::new(format!("readings-G{}", b.gateway))?;
            appends.push(
                Append::new(stream, ExpectedVersion::Any, vec![event]).idempotent(format!("G{}:{}", b.gateway, b.seq)),
            );
            readings += b.readings.len();
        }
        append_and_commit(db, &appends).await?;
    }
    Ok(readings as f64 / started.elapsed().as_secs_f64())
}

const COPY_ROWS: usize = 100_000;

async fn copy_rows(db: &Database, batches: &[Batch]) -> Result<f64> {
    let client = db.client().await?;
    client
        .batch_execute(
            "CREATE TABLE bench_copy (sensor integer NOT NULL, ts timestamptz NOT NULL, value double precision NOT NULL);
             CREATE INDEX ON bench_copy (sensor, ts);",
        )
        .await?;
    let rows: Vec<(i32, DateTime<Utc>, f64)> = batches
        .iter()
        .flat_map(|b| &b.readings)
        .map(|r| (r.sensor as i32, DateTime::from_timestamp_millis(r.ts_ms).unwrap_or_default(), r.value))
        .collect();
    let started = Instant::now();
    for chunk in rows.chunks(COPY_ROWS) {
        let sink = client.copy_in("COPY bench_copy (sensor, ts, value) FROM STDIN BINARY").await?;
        let writer = BinaryCopyInWriter::new(sink, &[Type::INT4, Type::TIMESTAMPTZ, Type::FLOAT8]);
        pin_mut!(writer);
        for (sensor, ts, value) in chunk {
            writer.as_mut().write(&[sensor, ts, value]).await?;
        }
        writer.finish().await?;
    }
    Ok(rows.len() as f64 / started.elapsed().as_secs_f64())
}

async fn insert_rows(db: &Database, batches: &[Batch], duration: Duration) -> Result<f64> {
    let client = db.client().await?;
    client
        .batch_execute(
            "CREATE TABLE bench_insert (sensor integer NOT NULL, ts timestamptz NOT NULL, value double precision NOT NULL);
             CREATE INDEX ON bench_insert (sensor, ts);",
        )
        .await?;
    let stmt = client.prepare("INSERT INTO bench_insert (sensor, ts, value) VALUES ($1, $2, $3)").await?;
    let started = Instant::now();
    let mut n = 0usize;
    for r in batches.iter().flat_map(|b| &b.readings) {
        let ts = DateTime::from_timestamp_millis(r.ts_ms).context("timestamp")?;
        client.execute(&stmt, &[&(r.sensor as i32), &ts, &r.value]).await?;
        n += 1;
        if n.is_multiple_of(256) && started.elapsed() >= duration {
            break;
        }
    }
    Ok(n as f64 / started.elapsed().as_secs_f64())
}

/// Counts and decodes what it is given, and checkpoints.
#[derive(Default)]
struct Counter {
    events: usize,
    readings: usize,
}

impl Handler for Counter {
    async fn apply(&mut self, _tx: &Transaction<'_>, events: &[RecordedEvent]) -> Result<()> {
        for e in events {
            self.readings += e.readings()?.len();
            if let eventlog::Payload::Json(v) = &e.payload {
                std::hint::black_box(v);
            }
        }
        self.events += events.len();
        Ok(())
    }
}

async fn deliver_telemetry(db: &Database) -> Result<(f64, f64)> {
    let sub = Subscription::new(
        db.clone(),
        SubscriptionConfig::new("bench-telemetry").categories(&["readings"]).batch_max_events(100),
    );
    let mut counter = Counter::default();
    let started = Instant::now();
    sub.catch_up(&mut counter).await?;
    let secs = started.elapsed().as_secs_f64();
    Ok((counter.events as f64 / secs, counter.readings as f64 / secs))
}

async fn deliver_domain_events(db: &Database, n: usize) -> Result<f64> {
    for chunk_start in (0..n).step_by(500) {
        let appends: Vec<Append> = (chunk_start..(chunk_start + 500).min(n))
            .map(|i| {
                let body = json!({ "machine": format!("M{:03}", i % 100), "sequence": i, "note": "serviced" });
                let event = NewEvent::json("MaintenancePerformed", 1, &body, Metadata::by("bench"))?;
                Ok(Append::new(StreamName::new(format!("machine-B{}", i % 100))?, ExpectedVersion::Any, vec![event]))
            })
            .collect::<Result<_>>()?;
        append_and_commit(db, &appends).await?;
    }
    let sub = Subscription::new(db.clone(), SubscriptionConfig::new("bench-domain").categories(&["machine"]));
    let mut counter = Counter::default();
    let started = Instant::now();
    sub.catch_up(&mut counter).await?;
    Ok(counter.events as f64 / started.elapsed().as_secs_f64())
}

/// Records when each latency-probe event reaches the subscriber.
struct Stopwatch {
    delivered: Arc<Mutex<Vec<Option<Instant>>>>,
}

impl Handler for Stopwatch {
    async fn apply(&mut self, _tx: &Transaction<'_>, events: &[RecordedEvent]) -> Result<()> {
        let now = Instant::now();
        let mut delivered = self.delivered.lock().expect("no panics while holding this lock");
        for e in events {
            let n = e.json::<serde_json::Value>()?["n"].as_u64().context("probe without n")? as usize;
            if let Some(slot) = delivered.get_mut(n) {
                *slot = Some(now);
            }
        }
        Ok(())
    }
}

async fn append_to_delivery_latency(db: &Database, n: usize, rate: u32) -> Result<Vec<f64>> {
    let delivered = Arc::new(Mutex::new(vec![None; n]));
    let sub = Subscription::new(db.clone(), SubscriptionConfig::new("bench-latency").categories(&["probe"]));
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let mut stopwatch = Stopwatch { delivered: delivered.clone() };
    let task = tokio::spawn(async move {
        sub.run(&mut stopwatch, async {
            let _ = stop_rx.await;
        })
        .await
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    let interval = Duration::from_secs_f64(1.0 / f64::from(rate.max(1)));
    let mut ticker = tokio::time::interval(interval);
    let stream = StreamName::new("probe-latency")?;
    let mut sent = Vec::with_capacity(n);
    for i in 0..n {
        ticker.tick().await;
        let event = NewEvent::json("ProbeSent", 1, &json!({ "n": i }), Metadata::by("bench"))?;
        sent.push(Instant::now());
        append_and_commit(db, &[Append::new(stream.clone(), ExpectedVersion::Any, vec![event])]).await?;
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while delivered.lock().expect("lock").iter().any(Option::is_none) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let _ = stop_tx.send(());
    task.await??;
    let delivered = delivered.lock().expect("lock");
    let missing = delivered.iter().filter(|d| d.is_none()).count();
    anyhow::ensure!(missing == 0, "{missing} probe events were not delivered within 30 s");
    Ok(sent.iter().zip(delivered.iter()).filter_map(|(s, d)| d.map(|d| (d - *s).as_secs_f64() * 1000.0)).collect())
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

fn fmt(x: f64) -> String {
    let s = format!("{:.0}", x);
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}
