//! Traces the episodes the monitor's detectors raise on a simulated plant, one line each,
//! with the machine's state at the time, so false episodes can be told apart by cause:
//! `cargo run --release -p anomaly_eval --example trace -- [hours] [seed] [sensors] [faults|clean]`.
//! `clean` runs without injected faults, so every episode outside maintenance is false.

use detector::{Detector, EpisodeEvent, EpisodeTracker, SensorState, Test};
use layout::{Layout, Scale};
use plant::monitor::MonitorConfig;
use simulator::{Factory, FactoryEvent, FaultConfig, MachineStatus, SimConfig, Step};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let hours: i64 = args.get(1).map_or(Ok(24), |s| s.parse())?;
    let seed: u64 = args.get(2).map_or(Ok(7), |s| s.parse())?;
    let sensors: u32 = args.get(3).map_or(Ok(1000), |s| s.parse())?;
    let clean = args.get(4).is_some_and(|a| a == "clean");
    // Machines whose updates and resolutions are printed too (comma-separated, `TRACE_MACHINES`).
    let watch: Vec<String> =
        std::env::var("TRACE_MACHINES").map(|v| v.split(',').map(str::to_owned).collect()).unwrap_or_default();
    let layout =
        Layout::default_with(&Scale { plants: Some(1), lines_per_plant: None, sensors_per_plant: Some(sensors) })?;
    let sim =
        if clean { SimConfig { faults: FaultConfig::none(), ..SimConfig::default() } } else { SimConfig::default() };
    let start = 1_772_409_600_000_i64;
    let mut factory = Factory::new(&layout, &sim, seed, start)?;
    let config = MonitorConfig::new(1);
    let detector = Detector::new(config.detector.clone())?;
    let machines = layout.machines();
    let mut trackers = machines
        .iter()
        .map(|m| EpisodeTracker::new(m.id.clone(), config.episodes.clone()))
        .collect::<Result<Vec<_>, _>>()?;
    let mut states = vec![SensorState::default(); layout.sensors().len()];
    let mut step = Step::default();
    // Per machine: when its last maintenance ended (episodes within 10 min are excused),
    // and whether it is down; active fault windows per sensor.
    let mut settle_until = vec![i64::MIN; machines.len()];
    let mut completed_ms = vec![i64::MIN; machines.len()];
    let mut faults: Vec<(u32, i64, i64, String)> = Vec::new();
    let mut last_load = vec![0.0f64; machines.len()];
    let mut last_move_ms = vec![start; machines.len()];
    let mut events = Vec::new();
    let mut per_hour = vec![0usize; hours as usize + 1];
    for _ in 0..hours * 3600 {
        factory.step_into(&mut step);
        let now = step.ts_ms;
        for e in &step.events {
            match e {
                FactoryEvent::FaultStarted(f) => {
                    for s in &f.sensors {
                        faults.push((s.id, f.start_ms, f.end_ms, f.kind().as_str().to_owned()));
                    }
                }
                FactoryEvent::MaintenanceStarted { machine, until_ms, .. } => {
                    if let Some(m) = layout.machine_index(machine) {
                        settle_until[m] = until_ms + 600_000;
                    }
                }
                FactoryEvent::MaintenanceCompleted { machine, ts_ms, .. } => {
                    if let Some(m) = layout.machine_index(machine) {
                        completed_ms[m] = *ts_ms;
                        println!("MAINT {machine} completed t={:.3}h", (ts_ms - start) as f64 / 3.6e6);
                    }
                }
                _ => {}
            }
        }
        for (m, slot) in last_load.iter_mut().enumerate() {
            let load = factory.machine_state(m).map_or(0.0, |s| s.load);
            if (load - *slot).abs() > 1e-3 {
                last_move_ms[m] = now;
            }
            *slot = load;
        }
        for r in step.batches.iter().flat_map(|b| &b.readings) {
            let Some(ix) = layout.sensor_index(r.sensor) else { continue };
            let m = layout.sensors()[ix].machine;
            let score = detector.next(&mut states[ix], r.ts_ms, r.value)?;
            events.extend(trackers[m].observe(r.sensor, &score).into_iter().map(|e| (m, e)));
        }
        for (ix, state) in states.iter().enumerate() {
            if state.last_ts_ms().is_some_and(|t| t < now) {
                let score = detector.overdue(state, now);
                if score.test == Test::Dropout {
                    let sensor = &layout.sensors()[ix];
                    events.extend(
                        trackers[sensor.machine].observe(sensor.id, &score).into_iter().map(|e| (sensor.machine, e)),
                    );
                }
            }
        }
        for (m, t) in trackers.iter_mut().enumerate() {
            if let Some(e) = t.tick(now) {
                events.push((m, e));
            }
        }
        for (m, e) in events.drain(..) {
            if watch.iter().any(|w| *w == machines[m].id) {
                match &e {
                    EpisodeEvent::Updated(ep) => println!(
                        "UPD t={:.3}h {} {:?}",
                        (now - start) as f64 / 3.6e6,
                        ep.id,
                        ep.sensors.iter().map(|s| (s.sensor, s.test, s.first_ms)).collect::<Vec<_>>()
                    ),
                    EpisodeEvent::Resolved { episode, .. } => {
                        println!("RES t={:.3}h {}", (now - start) as f64 / 3.6e6, episode.id)
                    }
                    EpisodeEvent::Detected(_) => {}
                }
            }
            let EpisodeEvent::Detected(ep) = e else { continue };
            let st = factory.machine_state(m).ok_or("machine")?;
            let down = matches!(st.status, MachineStatus::Down { .. }) || now <= settle_until[m];
            let faulty = ep.sensors.iter().any(|s| {
                faults
                    .iter()
                    .any(|(id, a, b, _)| *id == s.sensor && s.first_ms >= *a - 10_000 && s.first_ms <= b + 120_000)
            });
            let class = if faulty {
                "fault"
            } else if down {
                "down"
            } else {
                per_hour[((now - start) / 3_600_000) as usize] += 1;
                "FALSE"
            };
            let kind = &layout.machine_types()[machines[m].machine_type].name;
            print!(
                "EP {class} t={:.3}h {} {kind} load={:.2} wear={:.2} since_move={}s since_maint={:.1}h ready={}",
                (now - start) as f64 / 3.6e6,
                machines[m].id,
                st.load,
                st.wear,
                (now - last_move_ms[m]) / 1000,
                if completed_ms[m] == i64::MIN { -1.0 } else { (now - completed_ms[m]) as f64 / 3.6e6 },
                trackers[m].machine_model_ready()
            );
            for s in &ep.sensors {
                let name = layout.sensor(s.sensor).map_or("?".to_owned(), |i| i.name().to_owned());
                print!(
                    " | {} {:?} {:.2} obs={:.3} exp={:.3} half={:.3} dt={}s",
                    name.rsplit('-').next().unwrap_or(""),
                    s.test,
                    s.score,
                    s.observed,
                    s.expected,
                    0.5 * (s.upper - s.lower),
                    (s.ts_ms - s.first_ms) / 1000
                );
            }
            println!();
        }
    }
    let scale = 10_000.0 / f64::from(sensors);
    for (h, n) in per_hour.iter().enumerate() {
        println!("HOUR {h} false={n} per10k={:.1}", *n as f64 * scale);
    }
    Ok(())
}
