//! Follows one simulated sensor through the monitor's per-reading detector and prints its
//! readings and scores over a window, with its machine's events and the faults injected on
//! it: `cargo run --release -p anomaly_eval --example sensor -- SENSOR FROM_S TO_S [seed] [sensors]`.

use detector::{Detector, SensorState};
use layout::{Layout, Scale};
use plant::monitor::MonitorConfig;
use simulator::{Factory, FactoryEvent, SimConfig, Step};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let sensor: u32 = args.get(1).ok_or("usage: sensor SENSOR FROM_S TO_S [seed] [sensors]")?.parse()?;
    let from_s: i64 = args.get(2).map_or(Ok(0), |s| s.parse())?;
    let to_s: i64 = args.get(3).map_or(Ok(3600), |s| s.parse())?;
    let seed: u64 = args.get(4).map_or(Ok(7), |s| s.parse())?;
    let sensors: u32 = args.get(5).map_or(Ok(1000), |s| s.parse())?;
    let layout =
        Layout::default_with(&Scale { plants: Some(1), lines_per_plant: None, sensors_per_plant: Some(sensors) })?;
    let start = 1_772_409_600_000_i64;
    let mut factory = Factory::new(&layout, &SimConfig::default(), seed, start)?;
    let ix = layout.sensor_index(sensor).ok_or("no such sensor")?;
    let machine = layout.machines()[layout.sensors()[ix].machine].id.clone();
    let detector = Detector::new(MonitorConfig::new(1).detector.clone())?;
    let mut state = SensorState::default();
    let mut step = Step::default();
    for s in 0..to_s {
        factory.step_into(&mut step);
        let t = s + 1;
        for e in &step.events {
            let mine = match e {
                FactoryEvent::FaultStarted(f) => f.sensors.iter().any(|x| x.id == sensor),
                _ => e.machine() == Some(machine.as_str()),
            };
            if mine && t >= from_s - 3600 {
                println!("t={t} event {e:?}");
            }
        }
        let mut seen = false;
        for r in step.batches.iter().flat_map(|b| &b.readings).filter(|r| r.sensor == sensor) {
            seen = true;
            let score = detector.next(&mut state, r.ts_ms, r.value)?;
            if t >= from_s {
                println!("t={t} v={:.4} {:?} score={:.3} exp={:.3}", r.value, score.test, score.score, score.expected);
            }
        }
        if !seen && t >= from_s {
            println!("t={t} (no reading)");
        }
    }
    Ok(())
}
