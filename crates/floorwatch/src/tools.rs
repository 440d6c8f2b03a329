//! The offline tools: `rebuild`, `detect`, `train`, `predict`.

use std::fs::File;
use std::io::{BufReader, BufWriter, Write};
use std::path::Path;

use anyhow::{Context, Result};
use eventlog::Database;
use readmodels::ProjectionConfig;

use crate::cli::{DetectArgs, Global, PredictArgs, RebuildArgs, TrainArgs};
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
    let options = maintenance::TrainOptions {
        rul_cap: Some(args.rul_cap),
        seed: args.seed,
        interval_level: args.interval_level,
        created_at_ms: chrono::Utc::now().timestamp_millis(),
        ..maintenance::TrainOptions::default()
    };
    eprintln!("training on {} …", args.input.display());
    let (model, report) = maintenance::train_csv(input(&args.input)?, &options)
        .with_context(|| format!("training on {}", args.input.display()))?;
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
