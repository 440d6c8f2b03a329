//! `floorwatch bench rebuild` and `floorwatch bench storage`: a plant's log filled with
//! simulated history (appended as the ingest writer does), then the read models rebuilt
//! from it, and the bytes each reading costs in the log and in the raw-history read model.

use std::time::Instant;

use anyhow::Result;
use eventlog::{Append, Database, ExpectedVersion, Metadata, NewEvent, StreamName};
use readmodels::ProjectionConfig;
use serde_json::json;
use simulator::{Factory, SimConfig, Step};

use super::{BenchServer, write_json};
use crate::cli::{FactoryArgs, RebuildBenchArgs, StorageBenchArgs};
use crate::config::Config;
use crate::factory::FactorySpec;
use crate::secrets::Secrets;

/// Appends `seconds` of one plant's simulated readings, 20 gateway batches per
/// transaction with their idempotency keys; returns the readings appended.
async fn populate(db: &Database, spec: &FactorySpec, config: &Config, seconds: i64) -> Result<u64> {
    let dir = std::env::temp_dir().join(format!("floorwatch-bench-populate-{}", std::process::id()));
    let secrets = Secrets::load_or_create(&dir, &spec.layout, &[1])?;
    plant::node::prepare(db, &spec.node_config(1, config), &secrets.node(1)?).await?;
    let _ = std::fs::remove_dir_all(&dir);
    let now = chrono::Utc::now().timestamp_millis().div_euclid(60_000) * 60_000;
    let start = now - seconds * 1000;
    eventlog::ensure_partitions(db, &[chrono::DateTime::from_timestamp_millis(start).unwrap_or_default().date_naive()])
        .await?;
    let mut factory = Factory::new(&spec.layout, &SimConfig::default(), 5, start)?;
    let mut step = Step::default();
    let mut pending = Vec::new();
    let mut readings = 0u64;
    let started = Instant::now();
    for s in 0..seconds {
        factory.step_into(&mut step);
        for b in step.batches.iter().filter(|b| !b.readings.is_empty()) {
            readings += b.readings.len() as u64;
            let event = NewEvent::readings(
                &b.readings,
                (start, now + 1000),
                Metadata::from_source(format!("gateway:{}", b.gateway)),
            )?;
            let append = Append::new(StreamName::of("readings", &b.gateway)?, ExpectedVersion::Any, vec![event])
                .idempotent(format!("{}:{}", b.gateway, b.sequence));
            pending.push(append);
            if pending.len() == 20 {
                eventlog::append_and_commit(db, &pending).await?;
                pending.clear();
            }
        }
        if s % 600 == 599 {
            eprintln!("  {readings} readings appended ({:.0}/s)", readings as f64 / started.elapsed().as_secs_f64());
        }
    }
    if !pending.is_empty() {
        eventlog::append_and_commit(db, &pending).await?;
    }
    Ok(readings)
}

pub(super) fn spec(sensors: u32, lines: Option<u32>) -> Result<FactorySpec> {
    FactorySpec::from_args(&FactoryArgs { plants: 1, sensors_per_plant: sensors, lines_per_plant: lines, layout: None })
}

pub async fn rebuild(args: RebuildBenchArgs, server: &BenchServer, config: &Config) -> Result<()> {
    let db = Database::new(&server.fresh_database("rebuild").await?, 8)?;
    let spec = spec(args.sensors, None)?;
    eprintln!("appending {} s of a {}-sensor plant…", args.seconds, args.sensors);
    let readings = populate(&db, &spec, config, args.seconds).await?;
    eprintln!("rebuilding every read model from {readings} readings…");
    let report = readmodels::rebuild(&db, ProjectionConfig::new(1)).await?;
    let rate = readings as f64 / report.seconds;
    write_json(
        &args.json,
        &json!({
            "rebuild_readings_per_s": rate.round(),
            "rebuild_seconds": (report.seconds * 100.0).round() / 100.0,
            "readings": readings,
            "log_positions": report.events,
            "settings": { "sensors": args.sensors, "simulated_seconds": args.seconds,
                          "cpus": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1) },
        }),
    )?;
    println!("rebuilt the read models from {readings} readings in {:.1} s: {rate:.0} readings/s", report.seconds);
    Ok(())
}

pub async fn storage(args: StorageBenchArgs, server: &BenchServer, config: &Config) -> Result<()> {
    let db = Database::new(&server.fresh_database("storage").await?, 8)?;
    // One line: every gateway batch holds the line's 1,000 readings of one second, as in
    // the default layout.
    let spec = spec(args.sensors, Some(1))?;
    let seconds = i64::from(args.hours) * 3600;
    eprintln!("appending {} h of a {}-sensor line…", args.hours, args.sensors);
    let readings = populate(&db, &spec, config, seconds).await?;
    eprintln!("projecting the raw history…");
    readmodels::catch_up(&db, ProjectionConfig::new(1)).await?;
    let client = db.client().await?;
    let eventlog::TelemetryStorage { batch_bytes: telemetry, idempotency_key_bytes: keys } =
        eventlog::telemetry_storage(&client).await?;
    let readmodels::HistoryStorage { raw_bytes: history, minute_bytes: minute } =
        readmodels::history_storage(&db).await?;
    let in_history = readmodel_contract::history::readings_in_minutes(&client).await?;
    let log_per = (telemetry + keys) as f64 / readings as f64;
    let history_per = history as f64 / in_history.max(1) as f64;
    write_json(
        &args.json,
        &json!({
            "log_bytes_per_reading": (log_per * 100.0).round() / 100.0,
            "history_bytes_per_reading": (history_per * 100.0).round() / 100.0,
            "minute_aggregate_bytes_per_reading": ((minute as f64 / in_history.max(1) as f64) * 100.0).round() / 100.0,
            "readings": readings,
            "readings_in_history": in_history,
            "log_bytes": telemetry + keys,
            "history_bytes": history,
            "row_per_reading_bytes_for_comparison": 107,
            "settings": { "sensors": args.sensors, "hours": args.hours },
        }),
    )?;
    println!(
        "{readings} readings: the log costs {log_per:.2} bytes a reading, the raw-history read model {history_per:.2} (indexes included)"
    );
    Ok(())
}
