//! Follows one simulated machine through the monitor's detectors (each sensor's own, and
//! the machine model's residuals) and prints every reading that scores at least 0.3 over a
//! window: `cargo run --release -p anomaly_eval --example machine_trace -- SENSORS SEED
//! MACHINE FROM_S TO_S [SENSOR]` (every reading of `SENSOR` is printed). `LAYOUT=FILE`
//! simulates another layout.

use detector::{EpisodeConfig, MachineModel, StreamingDetector};
use layout::{Layout, Scale, SignalKind};
use plant::monitor::{MonitorConfig, standalone_tests};
use simulator::{Factory, SimConfig, Step};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let a: Vec<String> = std::env::args().collect();
    let usage = "usage: machine_trace SENSORS SEED MACHINE FROM_S TO_S [SENSOR]";
    let sensors: u32 = a.get(1).ok_or(usage)?.parse()?;
    let seed: u64 = a.get(2).ok_or(usage)?.parse()?;
    let machine = a.get(3).ok_or(usage)?.clone();
    let from_s: i64 = a.get(4).ok_or(usage)?.parse()?;
    let to_s: i64 = a.get(5).ok_or(usage)?.parse()?;
    let only: Option<u32> = a.get(6).and_then(|s| s.parse().ok());
    let layout_toml = match std::env::var("LAYOUT") {
        Ok(p) => std::fs::read_to_string(p)?,
        Err(_) => layout::DEFAULT_LAYOUT_TOML.to_owned(),
    };
    let scale = Scale { plants: Some(1), lines_per_plant: None, sensors_per_plant: Some(sensors) };
    let layout = Layout::from_toml(&layout_toml, &scale)?;
    let start = 1_772_409_600_000i64;
    let mut factory = Factory::new(&layout, &SimConfig::default(), seed, start)?;
    if machine == "ALL" {
        for s in layout.sensors() {
            let info = layout.sensor(s.id).ok_or("no such sensor")?;
            println!("{} {} {}", s.id, info.name(), info.machine_type.name);
        }
        return Ok(());
    }
    if machine == "READY" {
        return ready_times(&layout, seed, start, to_s);
    }
    let m = layout.machines().iter().find(|m| m.id == machine).ok_or("no such machine")?;
    let ids: Vec<u32> = m.sensor_ids.clone().collect();
    let mc = MonitorConfig::new(1);
    let mut own = Vec::new();
    let mut model = MachineModel::default();
    let ec = EpisodeConfig::default();
    for id in &ids {
        let info = layout.sensor(*id).ok_or("no such sensor")?;
        let sig = info.spec.signal;
        let cfg = if matches!(sig, SignalKind::Analog | SignalKind::Valve) {
            mc.detector.clone()
        } else {
            model.leave_out(*id);
            detector::Config { enabled: standalone_tests(sig), ..mc.standalone.clone() }
        };
        own.push(StreamingDetector::new(cfg)?);
        println!(
            "SENSOR {id} {} {sig:?} resolution={} noise={:?} flat_when_idle={} irregular={}",
            info.name(),
            info.spec.resolution,
            info.spec.noise,
            info.spec.flat_when_idle,
            info.spec.irregular
        );
    }
    let mut step = Step::default();
    let mut res = Vec::new();
    let end = start + to_s * 1000;
    while factory.next_ts_ms() < end {
        factory.step_into(&mut step);
        let t = (step.ts_ms - start) / 1000;
        for ev in &step.events {
            let s = format!("{ev:?}");
            if t >= from_s && s.contains(&machine) {
                println!("EVENT t={t} {s}");
            }
        }
        let mut line = Vec::new();
        for r in step.batches.iter().flat_map(|b| &b.readings) {
            let Some(k) = ids.iter().position(|i| *i == r.sensor) else { continue };
            let s = own[k].next(r.ts_ms, r.value)?;
            if s.level >= 0.3 || only == Some(r.sensor) {
                line.push(format!(
                    "own {} v={:.4} sc={:.2} lv={:.2} {:?} exp={:.3}±{:.3}",
                    r.sensor,
                    r.value,
                    s.score,
                    s.level,
                    s.test,
                    s.expected,
                    0.5 * (s.upper - s.lower)
                ));
            }
            // As the episode tracker does: every reading (never an overdue check) is an
            // instant of the machine.
            if !s.overdue {
                model.observe(r.sensor, r.ts_ms, r.value, &ec.machine, &mut res)?;
            }
        }
        model.flush(&ec.machine, &mut res)?;
        for x in res.drain(..) {
            if x.score.level >= 0.3 || only == Some(x.sensor) {
                line.push(format!(
                    "res {} v={:.4} sc={:.2} lv={:.2} {:?} exp={:.3}±{:.3}",
                    x.sensor,
                    x.score.value,
                    x.score.score,
                    x.score.level,
                    x.score.test,
                    x.score.expected,
                    0.5 * (x.score.upper - x.score.lower)
                ));
            }
        }
        if t >= from_s && t % 300 == 0 && std::env::var_os("LOADINGS").is_some() {
            let l: Vec<String> =
                model.loadings().iter().map(|(id, v, sc, _)| format!("{}:{v:.3}/{sc:.3}", id % 1000)).collect();
            line.push(format!("loadings {}", l.join(" ")));
        }
        if let Some(d) =
            only.filter(|_| t >= from_s && t % 60 == 0).and_then(|sensor| model.residual_diagnostics(sensor))
        {
            line.push(format!(
                "diag n={} level={:.3} sigma={:.3} base={:.3} shift_sd={:.3} interval={:.0} tails={:?} envelope={:.1} season={:.2?}",
                d.readings, d.level, d.noise_sigma, d.baseline, d.shift_sd, d.interval_ms, d.tails, d.envelope, d.season
            ));
        }
        if t >= from_s && !line.is_empty() {
            println!("t={t} ready={} {}", model.ready(&ec.machine), line.join(" | "));
        }
    }
    Ok(())
}

/// When each machine's model becomes ready (`READY` as the machine): the machine's type, the
/// plant time in seconds (or `never`).
fn ready_times(layout: &Layout, seed: u64, start: i64, to_s: i64) -> Result<(), Box<dyn std::error::Error>> {
    let mut factory = Factory::new(layout, &SimConfig::default(), seed, start)?;
    let ec = EpisodeConfig::default();
    let machines = layout.machines();
    let mut models: Vec<MachineModel> = machines.iter().map(|_| MachineModel::default()).collect();
    for s in layout.sensors() {
        let info = layout.sensor(s.id).ok_or("no such sensor")?;
        if !matches!(info.spec.signal, SignalKind::Analog | SignalKind::Valve) {
            models[s.machine].leave_out(s.id);
        }
    }
    let mut ready = vec![None; machines.len()];
    let mut step = Step::default();
    let mut res = Vec::new();
    let end = start + to_s * 1000;
    while factory.next_ts_ms() < end {
        factory.step_into(&mut step);
        for r in step.batches.iter().flat_map(|b| &b.readings) {
            let Some(ix) = layout.sensor_index(r.sensor) else { continue };
            let m = layout.sensors()[ix].machine;
            models[m].observe(r.sensor, r.ts_ms, r.value, &ec.machine, &mut res)?;
            res.clear();
        }
        for (m, model) in models.iter_mut().enumerate() {
            model.flush(&ec.machine, &mut res)?;
            res.clear();
            if ready[m].is_none() && model.ready(&ec.machine) {
                ready[m] = Some((step.ts_ms - start) / 1000);
            }
        }
    }
    for (m, t) in ready.iter().enumerate() {
        let kind = &layout.machine_types()[machines[m].machine_type].name;
        println!("{} {kind} {}", machines[m].id, t.map_or("never".to_owned(), |t| t.to_string()));
        if t.is_none() {
            let loads: Vec<String> = models[m]
                .loadings()
                .iter()
                .map(|(id, v, _, _)| {
                    let name = layout
                        .sensor(*id)
                        .map_or("?".to_owned(), |i| i.name().rsplit('-').next().unwrap_or("").to_owned());
                    format!("{name}:{v:.2}")
                })
                .collect();
            println!("   eigenvalue {:.1} {}", models[m].eigenvalue(), loads.join(" "));
        }
    }
    Ok(())
}
