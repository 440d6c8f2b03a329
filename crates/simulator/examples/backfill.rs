//! Generates days of history at one reading a minute and summarises what happened.
//!
//! `cargo run --release --example backfill -- [--days N] [--plants N] [--seed N]`
//!
//! Prints the time taken, readings per second, and the events by kind: faults, failures,
//! services and repairs, as a predictive-maintenance model would see them.

use layout::{Layout, Scale};
use simulator::{Factory, FactoryEvent, MaintenanceKind, SimConfig, Step};
use std::collections::BTreeMap;
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (mut days, mut seed) = (30u64, 1u64);
    let mut scale = Scale::default();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--days" => days = value()?.parse()?,
            "--plants" => scale.plants = Some(value()?.parse()?),
            "--seed" => seed = value()?.parse()?,
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    let layout = Layout::default_with(&scale)?;
    let mut factory = Factory::new(&layout, &SimConfig::with_step_ms(60_000), seed, 1_767_225_600_000)?;
    let mut step = Step::default();
    let mut counts: BTreeMap<String, u64> = BTreeMap::new();
    let mut readings = 0u64;
    let began = Instant::now();
    for _ in 0..days * 1_440 {
        factory.step_into(&mut step);
        readings += step.reading_count() as u64;
        for event in &step.events {
            let key = match event {
                FactoryEvent::FaultStarted(record) => format!("fault {}", record.kind().as_str()),
                FactoryEvent::FaultEnded { .. } => continue,
                FactoryEvent::MachineFailed { .. } => "machine failed".into(),
                FactoryEvent::MaintenanceStarted { kind: MaintenanceKind::Preventive, .. } => "service".into(),
                FactoryEvent::MaintenanceStarted { .. } => continue,
                FactoryEvent::MaintenanceCompleted { kind, .. } => format!("{kind:?} completed").to_lowercase(),
            };
            *counts.entry(key).or_default() += 1;
        }
    }
    let seconds = began.elapsed().as_secs_f64();
    println!(
        "{days} days, {} sensors, {} machines: {readings} readings in {seconds:.1} s ({:.0} readings/s)",
        layout.sensor_count(),
        layout.machines().len(),
        readings as f64 / seconds
    );
    for (what, n) in counts {
        println!("  {what:<24} {n:>7}  ({:.1} a day)", n as f64 / days as f64);
    }
    Ok(())
}
