//! Measures factory predictive maintenance: records a backfill, trains, evaluates.
//!
//! ```text
//! cargo run --release --example factory -- record DIR [--days 30] [--plants 1] [--sensors 10000] [--seed 1]
//! cargo run --release --example factory -- train DIR MODEL [--seed 7] [--stride 6] [--cap 21] [--trees 300]
//! cargo run --release --example factory -- eval DIR [MODEL] [--seed 7] [--stride 6]
//! cargo run --release --example factory -- held-out DIR MODEL [--seed 7]
//! cargo run --release --example factory -- rules DIR MODEL [--seed 7]
//! ```
//!
//! `record` writes what `floorwatch simulate --backfill Nd --output DIR` writes (one
//! reading a minute); `train` prints the training report as JSON; `eval` prints the
//! evaluation JSON (with a model: on every machine it was not trained on; without: on
//! machines held out from a model trained on the rest). `held-out` evaluates a model file
//! on the machines that training with the same seed held out of the same recording, so a
//! model trained by an earlier build is scored by this build's rules and figures. `rules`
//! scores those held-out machines' predictions under a finer grid of due rules than
//! `floorwatch eval maintenance` prints (how the factory default was chosen).

use std::path::PathBuf;
use std::time::Instant;

use factory_history::{FactoryTrainOptions, cli};
use layout::{Layout, Scale};
use simulator::{Factory, SimConfig};

/// 2026-01-01T00:00:00Z.
const START_MS: i64 = 1_767_225_600_000;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let flag = |name: &str, default: u64| -> Result<u64, Box<dyn std::error::Error>> {
        match args.iter().position(|a| a == name) {
            Some(i) => Ok(args.get(i + 1).ok_or(format!("{name} needs a value"))?.parse()?),
            None => Ok(default),
        }
    };
    let positional: Vec<&String> = {
        let mut out = Vec::new();
        let mut skip = false;
        for a in &args {
            if skip {
                skip = false;
            } else if a.starts_with("--") {
                skip = true;
            } else {
                out.push(a);
            }
        }
        out
    };
    let mut options = FactoryTrainOptions {
        seed: flag("--seed", 7)?,
        stride_hours: flag("--stride", 6)? as usize,
        ..FactoryTrainOptions::default()
    };
    options.booster.iterations = flag("--trees", 300)? as usize;
    options.rul_cap_days = flag("--cap", 21)? as f64;
    let began = Instant::now();
    match positional.as_slice() {
        [cmd, dir] if cmd.as_str() == "record" => {
            let scale = Scale {
                plants: Some(flag("--plants", 1)? as u32),
                sensors_per_plant: Some(flag("--sensors", 10_000)? as u32),
                lines_per_plant: None,
            };
            let layout = Layout::default_with(&scale)?;
            let days = flag("--days", 30)? as i64;
            let mut factory = Factory::new(&layout, &SimConfig::with_step_ms(60_000), flag("--seed", 1)?, START_MS)?;
            let manifest = simulator::write_run(&PathBuf::from(dir), &mut factory, START_MS + days * 86_400_000)?;
            eprintln!("recorded {} events in {:.1} s", manifest.events, began.elapsed().as_secs_f64());
        }
        [cmd, dir, model] if cmd.as_str() == "train" => {
            let (_, report) = cli::train_to_file(&PathBuf::from(dir), &PathBuf::from(model), &options)?;
            println!("{}", serde_json::to_string_pretty(&report)?);
            eprintln!("trained in {:.1} s", began.elapsed().as_secs_f64());
        }
        [cmd, dir, rest @ ..] if cmd.as_str() == "eval" => {
            let model = rest.first().map(PathBuf::from);
            let result = cli::eval_maintenance(&PathBuf::from(dir), model.as_deref(), None, None, &options)?;
            println!("{}", serde_json::to_string_pretty(&result)?);
            eprintln!("{}", cli::summary(&result.evaluation));
            eprintln!("evaluated in {:.1} s", began.elapsed().as_secs_f64());
        }
        [cmd, dir, model] if cmd.as_str() == "held-out" => {
            let text = std::fs::read_to_string(model)?;
            let model = maintenance::Model::from_json(&text)?;
            let history = factory_history::read_history(&PathBuf::from(dir), &options.read)?;
            let held: Vec<usize> = factory_history::held_out_machines(&history, options.validation_share, options.seed)
                .into_iter()
                .collect();
            let mut lead = options.lead.clone();
            if model.alert().is_none() {
                // A model from before alert rules: scored by the rule of its time.
                lead.alert = maintenance::AlertRule::lower_bound(lead.alert.horizon);
            }
            let evaluation = factory_history::evaluate_model(&model, &history, &held, &lead)?;
            println!("{}", serde_json::to_string_pretty(&evaluation)?);
            eprintln!("{}", cli::summary(&evaluation));
            eprintln!("evaluated in {:.1} s", began.elapsed().as_secs_f64());
        }
        [cmd, dir, model] if cmd.as_str() == "rules" => {
            let model = maintenance::Model::from_json(&std::fs::read_to_string(model)?)?;
            let history = factory_history::read_history(&PathBuf::from(dir), &options.read)?;
            let held: Vec<usize> = factory_history::held_out_machines(&history, options.validation_share, options.seed)
                .into_iter()
                .collect();
            let runs: Vec<_> = history.runs().into_iter().filter(|r| held.contains(&r.machine)).collect();
            let machine_of: std::collections::HashMap<String, String> =
                runs.iter().map(|r| (r.unit.clone(), history.machines[r.machine].id.clone())).collect();
            let (table, _) = history.table(&runs)?;
            let mut predictions = model.predict_every_row(&table)?;
            for p in &mut predictions {
                p.unit = machine_of[&p.unit].clone();
            }
            let outcomes = history.outcomes(&held);
            let horizon = options.lead.alert.horizon;
            let mut rules = vec![maintenance::AlertRule::lower_bound(horizon), maintenance::AlertRule::point(horizon)];
            for hours in [0.0, 3.0, 6.0, 12.0, 24.0] {
                for p in [0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.5] {
                    rules.push(maintenance::AlertRule::probability(horizon, p, hours / 24.0));
                }
            }
            println!(
                "rule | alerted ≥ 3 days ahead: all, watched | false hourly alerts per 1,000 machine-days | onsets"
            );
            for rule in rules {
                let lead = maintenance::LeadTimeOptions { alert: rule, ..options.lead.clone() };
                let w = maintenance::lead_time_report(&predictions, &outcomes, &lead)?.early_warning;
                let watched = (w.watched_share.unwrap_or(0.0) * w.watched_failures as f64).round();
                println!(
                    "{:<48} | {:>2} {:>2}/{} | {:>5.0} | {:>5.1}",
                    rule.describe(),
                    w.predicted,
                    watched,
                    w.watched_failures,
                    w.false_alert_time_per_1000.unwrap_or(f64::NAN) * 24.0,
                    w.false_alert_onsets_per_1000.unwrap_or(f64::NAN)
                );
            }
        }
        _ => {
            return Err("usage: factory record DIR | train DIR MODEL | eval DIR [MODEL] | held-out DIR MODEL | rules DIR MODEL (see the file's header)".into());
        }
    }
    Ok(())
}
