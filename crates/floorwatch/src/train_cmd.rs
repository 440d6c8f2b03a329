//! `floorwatch train` and `floorwatch predict`: remaining-useful-life models from
//! run-to-failure CSV files, days-until-failure models from a recorded factory (and
//! registering one as a plant's active model).

use std::io::Write;

use anyhow::{Context, Result};
use eventlog::Database;

use crate::cli::{Global, PredictArgs, TrainArgs};
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
    if let Some(m) = report.metrics.as_ref().and_then(|m| m.truncated.as_ref()) {
        println!(
            "validation on held-out units (histories cut at random points): RMSE {:.2}, MAE {:.2}, interval coverage {:.3} at nominal {:.2}, mean width {:.1}",
            m.rmse, m.mae, m.coverage, args.interval_level, m.mean_interval_width
        );
    }
    Ok(())
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
    let options = factory_history::FactoryTrainOptions {
        seed: args.seed,
        interval_level: args.interval_level,
        rul_cap_days: args.rul_cap.unwrap_or(21.0),
        created_at_ms: chrono::Utc::now().timestamp_millis(),
        ..factory_history::FactoryTrainOptions::default()
    };
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
            "held-out machines, every hour: RMSE {:.2} days, MAE {:.2}, interval coverage {:.3} at nominal {:.2}",
            m.rmse, m.mae, m.coverage, args.interval_level
        );
    }
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
