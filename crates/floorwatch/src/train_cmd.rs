//! `floorwatch train` and `floorwatch predict`: remaining-useful-life models from
//! run-to-failure CSV files, days-until-failure models from a recorded factory (and
//! registering one as a plant's active model).

use std::io::Write;

use anyhow::{Context, Result};
use eventlog::Database;

use crate::cli::{DueArgs, Global, PredictArgs, TrainArgs};
use crate::config::Config;
use crate::databases::{Server, plant_database};
use crate::files::{input, output};

pub fn train(args: TrainArgs) -> Result<()> {
    let Some(input_path) = args.input else { anyhow::bail!("give --input or --factory") };
    let options = maintenance::TrainOptions {
        rul_cap: Some(args.rul_cap.unwrap_or(125.0)),
        seed: args.seed,
        interval_level: args.interval_level,
        created_at_ms: chrono::Utc::now().timestamp_millis(),
        ..maintenance::TrainOptions::default()
    };
    eprintln!("training on {} …", input_path.display());
    let (model, report) = maintenance::train_csv(input(&input_path)?, &options)
        .with_context(|| format!("training on {}", input_path.display()))?;
    std::fs::write(&args.model, model.to_json()?).with_context(|| format!("writing {}", args.model.display()))?;
    println!("model written to {} ({} units, {} rows)", args.model.display(), report.units, report.rows);
    let cap = options.rul_cap.unwrap_or(f64::INFINITY);
    let metrics = report.metrics.as_ref();
    if let Some(m) = metrics.and_then(|m| m.truncated.as_ref()) {
        println!(
            "validation on held-out units (histories cut at random points), truth capped at {cap}: RMSE {:.2}, MAE {:.2}, NASA score per 100 cuts {:.0}",
            m.rmse,
            m.mae,
            m.nasa_score.unwrap_or(f64::NAN) * 100.0
        );
    }
    if let Some(m) = metrics.and_then(|m| m.truncated_as_given.as_ref()) {
        println!(
            "  against the true remaining life: RMSE {:.2}, interval coverage {:.3} at nominal {:.2}, mean width {:.1}",
            m.rmse, m.coverage, args.interval_level, m.mean_interval_width
        );
    }
    for b in metrics.map(|m| m.truncated_by_bucket.as_slice()).unwrap_or_default() {
        println!(
            "    {} life (predicted {}): coverage {:.3}, mean width {:.1} ({} cuts)",
            b.bucket,
            b.to.map_or(format!("≥ {:.0}", b.from), |to| format!("{:.0}–{to:.0}", b.from)),
            b.accuracy.coverage,
            b.accuracy.mean_interval_width,
            b.accuracy.points
        );
    }
    Ok(())
}

/// The "due" rule the flags ask for; `None` when they leave it to the default (or, when
/// evaluating a model file, to the model's own rule).
pub fn due_rule(due: &DueArgs) -> Result<Option<maintenance::AlertRule>> {
    let default = maintenance::AlertRule::factory_default();
    let rule = if due.due_on_lower_bound {
        maintenance::AlertRule::lower_bound(default.horizon)
    } else if due.due_probability.is_none() && due.due_hold_hours.is_none() {
        return Ok(None);
    } else {
        maintenance::AlertRule::probability(
            default.horizon,
            due.due_probability.unwrap_or(default.min_probability),
            due.due_hold_hours.map_or(default.persist, |h| h / 24.0),
        )
    };
    rule.validate().map_err(|e| anyhow::anyhow!("--due-probability / --due-hold-hours: {e}"))?;
    Ok(Some(rule))
}

pub fn predict(args: PredictArgs) -> Result<()> {
    let text = std::fs::read_to_string(&args.model).with_context(|| format!("reading {}", args.model.display()))?;
    let model = maintenance::Model::from_json(&text).with_context(|| format!("loading {}", args.model.display()))?;
    let mut writer = output(&args.output)?;
    maintenance::predict_csv(&model, input(&args.input)?, &mut writer)
        .with_context(|| format!("predicting for {}", args.input.display()))?;
    writer.flush()?;
    Ok(())
}

/// `floorwatch train --factory DIR --model FILE [--register --plant N]`.
pub async fn train_factory(args: TrainArgs, global: &Global, config: &Config) -> Result<()> {
    let Some(dir) = args.factory else { anyhow::bail!("give --factory DIR") };
    let mut options = factory_history::FactoryTrainOptions {
        seed: args.seed,
        interval_level: args.interval_level,
        rul_cap_days: args.rul_cap.unwrap_or(21.0),
        created_at_ms: chrono::Utc::now().timestamp_millis(),
        ..factory_history::FactoryTrainOptions::default()
    };
    if let Some(rule) = due_rule(&args.due)? {
        options.lead.alert = rule;
    }
    eprintln!("training on the factory recorded in {} …", dir.display());
    let (model, report) = factory_history::cli::train_to_file(&dir, &args.model, &options)
        .with_context(|| format!("training on {}", dir.display()))?;
    println!(
        "model {} written to {} ({} machines: {} for training, {} held out; {} failed runs, {} serviced)",
        report.model_version,
        args.model.display(),
        report.machines,
        report.training_machines,
        report.validation_machines,
        report.runs_failed,
        report.runs_serviced
    );
    if let Some(m) = report.validation.as_ref().and_then(|m| m.every_row.as_ref()) {
        println!(
            "held-out machines, every hour: RMSE {:.2} days, MAE {:.2} (truth capped at {} days)",
            m.rmse, m.mae, options.rul_cap_days
        );
    }
    println!("due within 7 days when {}", options.lead.alert.describe());
    if let Some(e) = &report.evaluation {
        print!("{}", factory_history::cli::summary(e));
    }
    if let (true, Some(plant)) = (args.register, args.plant) {
        let server = Server::new(global.data_dir.clone(), global.database_url.clone(), config)?;
        server.ensure_running()?;
        let db = Database::new(&server.database(&plant_database(u32::from(plant))).await?, 2)?;
        plant::migrate(&db).await?;
        let version = plant::registry::register(&db, &model, Some(serde_json::to_value(&report)?), true).await?;
        println!("registered {version} at plant {plant} and made it the active model");
    }
    Ok(())
}
