//! `floorwatch bench timetravel`: a plant's log filled with a simulated day (with anomalies
//! people acknowledge, and a gateway outage whose backlog arrives late), projected as the
//! node does it (checkpoints included), then the plant rebuilt at random instants on both
//! clocks: how long one reconstruction takes, rows included, as the node serves it.

use std::time::Instant;

use anyhow::Result;
use chrono::{DateTime, Utc};
use domain::events::*;
use eventlog::{Append, Database, ExpectedVersion, Metadata, NewEvent, StreamName};
use readmodels::ProjectionConfig;
use readmodels::timetravel::{self, Clock};
use serde_json::json;
use simulator::{Factory, SimConfig, Step};

use super::{BenchServer, load_average, percentile, write_json};
use crate::cli::TimeTravelBenchArgs;
use crate::config::Config;
use crate::secrets::Secrets;

/// A small deterministic generator for the instants (splitmix64).
struct Instants(u64);

impl Instants {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `lo..=hi`.
    fn between(&mut self, lo: i64, hi: i64) -> i64 {
        let span = (hi - lo).max(0) as u64 + 1;
        lo + (self.next() % span) as i64
    }
}

fn at(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

async fn append_json(db: &Database, stream: &str, event_type: &str, body: &impl serde::Serialize) -> Result<()> {
    let e = NewEvent::json(event_type, 1, body, Metadata::by("bench"))?;
    eventlog::append_and_commit(db, &[Append::new(StreamName::new(stream)?, ExpectedVersion::Any, vec![e])]).await?;
    Ok(())
}

/// What was appended.
struct Populated {
    readings: u64,
    events: u64,
    from_ms: i64,
    to_ms: i64,
}

/// Appends `hours` of one plant, a step every `step_ms`: every gateway's batch (the second
/// line's held from the middle of the day for two hours and uploaded 10 minutes after it
/// comes back), an anomaly on a machine every 15 minutes, acknowledged after 5 and resolved
/// after 30.
async fn populate(db: &Database, layout: &layout::Layout, hours: u32, step_ms: i64) -> Result<Populated> {
    let now = Utc::now().timestamp_millis().div_euclid(60_000) * 60_000;
    let from_ms = now - i64::from(hours) * 3_600_000;
    let days: Vec<chrono::NaiveDate> =
        (0..=i64::from(hours) / 24 + 1).map(|d| at(from_ms + d * 86_400_000).date_naive()).collect();
    eventlog::ensure_partitions(db, &days).await?;
    let config = SimConfig { step_ms: step_ms as u64, ..SimConfig::default() };
    let mut factory = Factory::new(layout, &config, 7, from_ms)?;
    // The outage: from the middle of the history, two hours (a quarter of it when shorter).
    let length = (i64::from(hours) * 900_000).min(7_200_000);
    let outage = (from_ms + i64::from(hours) * 1_800_000, from_ms + i64::from(hours) * 1_800_000 + length);
    let mut held: Vec<Append> = Vec::new();
    let machines = layout.plants()[0].machines.clone();
    let (mut readings, mut events) = (0u64, 0u64);
    let mut step = Step::default();
    let mut pending = Vec::new();
    let started = Instant::now();
    let mut anomaly = 0usize;
    while step.ts_ms < now - step_ms {
        factory.step_into(&mut step);
        for b in step.batches.iter().filter(|b| !b.readings.is_empty()) {
            readings += b.readings.len() as u64;
            let event = NewEvent::readings(
                &b.readings,
                (from_ms, now + 1000),
                Metadata::from_source(format!("gateway:{}", b.gateway)),
            )?;
            let append = Append::new(StreamName::of("readings", &b.gateway)?, ExpectedVersion::Any, vec![event])
                .idempotent(format!("{}:{}", b.gateway, b.sequence));
            events += 1;
            if b.line == layout.plants()[0].lines.start + 1 && (outage.0..outage.1).contains(&step.ts_ms) {
                held.push(append);
            } else {
                pending.push(append);
            }
        }
        if pending.len() >= 20 {
            eventlog::append_and_commit(db, &pending).await?;
            pending.clear();
        }
        if step.ts_ms >= outage.1 + 600_000 && !held.is_empty() {
            eventlog::append_and_commit(db, &pending).await?;
            pending.clear();
            for chunk in held.chunks(20) {
                eventlog::append_and_commit(db, chunk).await?;
            }
            held.clear();
        }
        // People and the monitor, by the plant's clock.
        let minute = (step.ts_ms - from_ms).div_euclid(60_000);
        let this_step = |every: i64, offset: i64| {
            let t = step.ts_ms - from_ms - offset * 60_000;
            t >= 0 && t.rem_euclid(every * 60_000) < step_ms
        };
        if this_step(15, 0) {
            eventlog::append_and_commit(db, &pending).await?;
            pending.clear();
            let m = &layout.machines()[machines.start + anomaly % machines.len()];
            let sensor = layout.sensors_in(&m.sensors)[0].clone();
            let d = AnomalyDetected {
                anomaly_id: format!("bench-{minute}"),
                machine_id: m.id.clone(),
                line_id: layout.lines()[m.line].id.clone(),
                started_at: at(step.ts_ms),
                severity: Severity::Major,
                score: 0.9,
                sensors: vec![SensorEvidence {
                    sensor: sensor.id,
                    name: sensor.name.clone(),
                    kind: "TEMP".into(),
                    unit: "°C".into(),
                    at: at(step.ts_ms),
                    observed: 91.0,
                    expected: 40.0,
                    lower: 36.0,
                    upper: 44.0,
                    test: "level_shift".into(),
                    score: 0.9,
                    related: false,
                }],
                explanation: "level shift".into(),
                detector_version: "bench".into(),
            };
            append_json(db, &format!("anomaly-bench-{minute}"), ANOMALY_DETECTED, &d).await?;
            anomaly += 1;
            events += 1;
        }
        if this_step(15, 5) {
            let id = format!("bench-{}", minute - 5);
            let a = AnomalyAcknowledged {
                anomaly_id: id.clone(),
                by: "Ana Lima".into(),
                note: "checking".into(),
                at: at(step.ts_ms),
            };
            append_json(db, &format!("anomaly-{id}"), ANOMALY_ACKNOWLEDGED, &a).await?;
            events += 1;
        }
        if this_step(15, 30) {
            let id = format!("bench-{}", minute - 30);
            append_json(
                db,
                &format!("anomaly-{id}"),
                ANOMALY_RESOLVED,
                &AnomalyResolved { anomaly_id: id.clone(), at: at(step.ts_ms) },
            )
            .await?;
            events += 1;
        }
        if this_step(120, 0) {
            eprintln!("  {readings} readings appended ({:.0}/s)", readings as f64 / started.elapsed().as_secs_f64());
        }
    }
    pending.extend(held);
    for chunk in pending.chunks(20) {
        eventlog::append_and_commit(db, chunk).await?;
    }
    Ok(Populated { readings, events, from_ms, to_ms: step.ts_ms })
}

pub async fn run(args: TimeTravelBenchArgs, server: &BenchServer, config: &Config) -> Result<()> {
    let db = Database::new(&server.fresh_database("timetravel").await?, 8)?;
    let spec = super::rebuild::spec(args.sensors, None)?;
    let dir = std::env::temp_dir().join(format!("floorwatch-bench-timetravel-{}", std::process::id()));
    let secrets = Secrets::load_or_create(&dir, &spec.layout, &[1])?;
    let mut node = spec.node_config(1, config);
    // Sensors report once a step: stale after three steps without a reading.
    node.stale_after_ms = 3 * args.step_ms;
    plant::node::prepare(&db, &node, &secrets.node(1)?).await?;
    let _ = std::fs::remove_dir_all(&dir);

    eprintln!("appending {} h of a {}-sensor plant, a reading every {} ms…", args.hours, args.sensors, args.step_ms);
    let p = populate(&db, &spec.layout, args.hours, args.step_ms).await?;
    eprintln!(
        "projecting {} readings ({} events) with a checkpoint every {} positions…",
        p.readings, p.events, args.checkpoint_every
    );
    let projected = Instant::now();
    readmodels::catch_up(
        &db,
        ProjectionConfig { checkpoint_every_events: args.checkpoint_every, ..ProjectionConfig::new(1) },
    )
    .await?;
    let projection_s = projected.elapsed().as_secs_f64();

    let client = db.client().await?;
    let kept = timetravel::storage(&client).await?;
    let head = eventlog::head_position(&client).await?;
    let first = eventlog::read_all(&client, 0, 1, None).await?;
    let last = eventlog::read_all(&client, head - 1, 1, None).await?;
    let recorded = |e: &[eventlog::RecordedEvent]| e.first().map_or(0, |e| e.recorded_at.timestamp_millis());
    let (recorded_from, recorded_to) = (recorded(&first), recorded(&last));

    let mut rng = Instants(args.seed);
    let mut layout = None;
    let (mut all, mut happened, mut known) = (Vec::new(), Vec::new(), Vec::new());
    let mut replayed = 0usize;
    eprintln!("rebuilding the plant at {} random instants…", args.instants);
    for i in 0..args.instants {
        let (clock, instant) = if i % 2 == 0 {
            (Clock::Happened, rng.between(p.from_ms, p.to_ms))
        } else {
            (Clock::Known, rng.between(recorded_from, recorded_to))
        };
        let t = Instant::now();
        let r = timetravel::reconstruct(&client, 1, clock, instant, layout.as_ref()).await?;
        let floor = timetravel::floor(&r.model, clock, instant, r.through);
        let ms = t.elapsed().as_secs_f64() * 1000.0;
        anyhow::ensure!(floor.plant_status.is_some(), "the plant at {instant} has no layout");
        replayed += r.replayed;
        if layout.is_none() {
            layout = r.model.layout.clone();
        }
        all.push(ms);
        match clock {
            Clock::Happened => happened.push(ms),
            Clock::Known => known.push(ms),
        }
    }
    for v in [&mut all, &mut happened, &mut known] {
        v.sort_by(f64::total_cmp);
    }
    let round = |x: f64| (x * 10.0).round() / 10.0;
    write_json(
        &args.json,
        &json!({
            "reconstruct_p50_ms": round(percentile(&all, 50.0)),
            "reconstruct_p99_ms": round(percentile(&all, 99.0)),
            "reconstruct_max_ms": round(all.last().copied().unwrap_or(f64::NAN)),
            "happened_p50_ms": round(percentile(&happened, 50.0)),
            "happened_p99_ms": round(percentile(&happened, 99.0)),
            "known_p50_ms": round(percentile(&known, 50.0)),
            "known_p99_ms": round(percentile(&known, 99.0)),
            "mean_events_replayed": round(replayed as f64 / f64::from(args.instants)),
            "instants": args.instants,
            "readings": p.readings,
            "events": p.events,
            "simulated_hours": args.hours,
            "checkpoints": kept.checkpoints,
            "checkpoint_bytes_mean": kept.checkpoint_bytes / kept.checkpoints.max(1),
            "late_events": kept.late_events,
            "projection_seconds": round(projection_s),
            "load_average": load_average(),
            "settings": { "sensors": args.sensors, "step_ms": args.step_ms, "checkpoint_every_events": args.checkpoint_every,
                          "seed": args.seed },
        }),
    )?;
    println!(
        "reconstructed a {}-sensor plant holding {} h at {} instants: p50 {:.1} ms, p99 {:.1} ms",
        args.sensors,
        args.hours,
        args.instants,
        percentile(&all, 50.0),
        percentile(&all, 99.0)
    );
    Ok(())
}
