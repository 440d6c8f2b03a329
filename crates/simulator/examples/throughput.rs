//! Measures how many readings a second the generator produces on one core.
//!
//! `cargo run --release --example throughput -- [--steps N] [--plants N] [--sensors-per-plant N] [--json FILE]`
//!
//! Reports three figures: generating only, generating and encoding every batch with
//! `telemetry::encode`, and a backfill at one reading a minute.

use layout::{Layout, Scale};
use simulator::{Factory, SimConfig, Step};
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut steps = 120u64;
    let mut scale = Scale::default();
    let mut json = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--steps" => steps = value()?.parse()?,
            "--plants" => scale.plants = Some(value()?.parse()?),
            "--sensors-per-plant" => scale.sensors_per_plant = Some(value()?.parse()?),
            "--json" => json = Some(value()?),
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    let layout = Layout::default_with(&scale)?;
    let start_ms = 1_767_225_600_000;

    let generate = run(&layout, &SimConfig::default(), start_ms, steps, false)?;
    let encode = run(&layout, &SimConfig::default(), start_ms, steps, true)?;
    let backfill = run(&layout, &SimConfig::with_step_ms(60_000), start_ms, steps, false)?;
    println!("sensors: {}", layout.sensor_count());
    println!("generate only:         {:>12.0} readings/s", generate);
    println!("generate + encode:     {:>12.0} readings/s", encode);
    println!("backfill (1/min):      {:>12.0} readings/s", backfill);
    if let Some(path) = json {
        let body = format!(
            "{{\"sensors\":{},\"steps\":{steps},\"generate_readings_per_s\":{generate:.0},\
             \"generate_encode_readings_per_s\":{encode:.0},\"backfill_readings_per_s\":{backfill:.0}}}\n",
            layout.sensor_count()
        );
        std::fs::write(path, body)?;
    }
    Ok(())
}

fn run(
    layout: &Layout,
    config: &SimConfig,
    start_ms: i64,
    steps: u64,
    encode: bool,
) -> Result<f64, Box<dyn std::error::Error>> {
    let mut factory = Factory::new(layout, config, 7, start_ms)?;
    let mut step = Step::default();
    // One step to size the buffers, as a long-running caller would have.
    factory.step_into(&mut step);
    let mut readings = 0usize;
    let mut bytes = 0usize;
    let began = Instant::now();
    for _ in 0..steps {
        factory.step_into(&mut step);
        readings += step.reading_count();
        if encode {
            for batch in &step.batches {
                bytes += telemetry::encode(&batch.readings).map_or(0, |b| b.len());
            }
        }
    }
    let seconds = began.elapsed().as_secs_f64();
    if encode {
        println!("encoded {:.2} bytes per reading", bytes as f64 / readings as f64);
    }
    Ok(readings as f64 / seconds)
}
