//! Simulates a plant and evaluates the monitor on it, printing the report as JSON:
//! `cargo run --release -p anomaly_eval --example simulate -- [sensors] [hours] [seed]
//! [detector JSON] [episode JSON] [ablation] [fault rate factor]`. The JSON arguments override single
//! settings, e.g. `'{"min_shift_sigmas": 3.0}'`; `ablation` also runs the detector with
//! each of its parts switched off in turn. `LAYOUT=FILE` simulates another layout than the
//! default factory (e.g. `assets/plant-layout-mixed-signals.toml`, the one with mixed kinds of
//! signal).

use anomaly_eval::{RunOptions, Simulation, evaluate_simulation};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let sensors: u32 = args.get(1).map_or(Ok(1_000), |s| s.parse())?;
    let hours: u64 = args.get(2).map_or(Ok(24), |s| s.parse())?;
    let seed: u64 = args.get(3).map_or(Ok(1), |s| s.parse())?;
    let mut options = RunOptions::default();
    if let Ok(path) = std::env::var("LAYOUT") {
        options.layout_toml = Some(std::fs::read_to_string(path)?);
    }
    if let Some(text) = args.get(4).filter(|s| !s.is_empty()) {
        let mut value = serde_json::to_value(&options.detector)?;
        merge(&mut value, serde_json::from_str(text)?);
        options.detector = serde_json::from_value(value)?;
    }
    if let Some(text) = args.get(5).filter(|s| !s.is_empty()) {
        let mut value = serde_json::to_value(&options.episodes)?;
        merge(&mut value, serde_json::from_str(text)?);
        options.episodes = serde_json::from_value(value)?;
    }
    let mut sim = Simulation { sensors_per_plant: sensors, duration_s: hours * 3600, seed, ..Simulation::default() };
    if let Some(factor) = args.get(7) {
        sim.config.faults = sim.config.faults.scaled(factor.parse()?);
    }
    let mut runs = vec![("all".to_owned(), options.clone())];
    if args.get(6).is_some_and(|a| a == "ablation") {
        // Each part off in the readings' own detector and in the residual detector alike.
        for (name, change) in detector::eval::ablation_variants() {
            let mut o = options.clone();
            change(&mut o.detector);
            change(&mut o.episodes.machine.residual);
            runs.push((name.to_owned(), o));
        }
        // The detector alone on every reading, with no machine model.
        let mut o = options.clone();
        o.detector = detector::Config::default();
        o.episodes.machine.enabled = false;
        runs.push(("no_machine_model".to_owned(), o));
    }
    for (name, o) in runs {
        let report = evaluate_simulation(&sim, &o)?;
        println!("{}", serde_json::to_string(&serde_json::json!({ "variant": name, "report": report }))?);
    }
    Ok(())
}

fn merge(into: &mut serde_json::Value, from: serde_json::Value) {
    match (into, from) {
        (serde_json::Value::Object(a), serde_json::Value::Object(b)) => {
            for (k, v) in b {
                merge(a.entry(k).or_insert(serde_json::Value::Null), v);
            }
        }
        (slot, v) => *slot = v,
    }
}
