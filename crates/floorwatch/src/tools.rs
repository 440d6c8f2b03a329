//! The offline tools: `rebuild`, `detect`, `train`, `predict`, `eval`.

use std::fs::File;
use std::io::{BufReader, BufWriter, Write};
use std::path::Path;

use anyhow::{Context, Result};
use eventlog::Database;
use readmodels::ProjectionConfig;

use crate::cli::{DetectArgs, EvalMaintenanceArgs, Global, PredictArgs, RebuildArgs, TrainArgs};
use crate::config::Config;
use crate::server::{Server, plant_database};

pub async fn rebuild(args: RebuildArgs, global: &Global, config: &Config) -> Result<()> {
    let server = Server::new(global.data_dir.clone(), global.database_url.clone(), config)?;
    server.ensure_running()?;
    let db = Database::new(&server.database(&plant_database(u32::from(args.plant))).await?, 8)?;
    readmodels::migrate(&db).await?;
    eprintln!("rebuilding plant {}'s read models from its event log…", args.plant);
    let report = readmodels::rebuild(&db, ProjectionConfig::new(args.plant)).await?;
    println!(
        "rebuilt every read model of plant {} from {} log positions in {:.1} s",
        args.plant, report.events, report.seconds
    );
    Ok(())
}

fn output(path: &Path) -> Result<Box<dyn Write>> {
    if path == Path::new("-") {
        return Ok(Box::new(std::io::stdout().lock()));
    }
    Ok(Box::new(BufWriter::new(File::create(path).with_context(|| format!("creating {}", path.display()))?)))
}

fn input(path: &Path) -> Result<BufReader<File>> {
    Ok(BufReader::new(File::open(path).with_context(|| format!("opening {}", path.display()))?))
}

pub async fn detect(args: DetectArgs) -> Result<()> {
    if let Some(addr) = args.serve {
        let listener = tokio::net::TcpListener::bind(addr).await.with_context(|| format!("listening on {addr}"))?;
        eprintln!(
            "Anomaly Detector API on http://{}/anomalydetector/v1.1/timeseries/{{entire,last,changepoint}}/detect (Ctrl-C stops)",
            listener.local_addr()?
        );
        axum::serve(listener, plant::azure::router())
            .with_graceful_shutdown(async {
                let _ = tokio::signal::ctrl_c().await;
            })
            .await?;
        return Ok(());
    }
    let (Some(inp), Some(out)) = (args.input, args.output) else {
        anyhow::bail!("give --input and --output, or --serve");
    };
    let mut writer = output(&out)?;
    let summary = detector::detect_csv(input(&inp)?, &mut writer, &detector::Config::default())
        .with_context(|| format!("scoring {}", inp.display()))?;
    writer.flush()?;
    eprintln!(
        "scored {} rows (highest score {:.3}; {} timestamps went backwards, {} repeated)",
        summary.rows, summary.max_score, summary.backwards_timestamps, summary.repeated_timestamps
    );
    Ok(())
}

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

/// `floorwatch eval maintenance --from DIR [--model FILE] [--json FILE]`.
pub fn eval_maintenance(args: EvalMaintenanceArgs) -> Result<()> {
    let options =
        factory_history::FactoryTrainOptions { seed: args.seed, ..factory_history::FactoryTrainOptions::default() };
    let result =
        factory_history::cli::eval_maintenance(&args.from, args.model.as_deref(), args.json.as_deref(), &options)
            .with_context(|| format!("evaluating on {}", args.from.display()))?;
    print!("{}", factory_history::cli::summary(&result.evaluation));
    Ok(())
}

pub async fn eval_anomalies(args: crate::cli::EvalAnomaliesArgs, global: &Global, config: &Config) -> Result<()> {
    use anomaly_eval::cli::{EvalArgs, EvalSource, run_eval};
    let source = match (&args.from, args.plant) {
        (Some(dir), _) => EvalSource::Dir(dir.clone()),
        (None, plant) => {
            anyhow::ensure!(args.truth.is_some(), "scoring a plant's log needs --truth (or use --from DIR)");
            let server = Server::new(global.data_dir.clone(), global.database_url.clone(), config)?;
            server.ensure_running()?;
            let url = server.existing_database(&plant_database(u32::from(plant.unwrap_or(1))))?;
            EvalSource::Database { url }
        }
    };
    print!("{}", run_eval(&EvalArgs { source, truth: args.truth, json: args.json }).await?);
    Ok(())
}
