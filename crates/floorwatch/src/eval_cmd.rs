//! `floorwatch eval`: measure anomaly episodes and maintenance predictions against what
//! actually happened.

use anyhow::{Context, Result};

use crate::cli::{EvalAnomaliesArgs, EvalMaintenanceArgs, Global};
use crate::config::Config;
use crate::databases::{Server, plant_database};

/// `floorwatch eval maintenance --from DIR [--model FILE] [--json FILE]`.
pub fn maintenance(args: EvalMaintenanceArgs) -> Result<()> {
    let options =
        factory_history::FactoryTrainOptions { seed: args.seed, ..factory_history::FactoryTrainOptions::default() };
    let rule = crate::train_cmd::due_rule(&args.due)?;
    let result =
        factory_history::cli::eval_maintenance(&args.from, args.model.as_deref(), args.json.as_deref(), rule, &options)
            .with_context(|| format!("evaluating on {}", args.from.display()))?;
    print!("{}", factory_history::cli::summary(&result.evaluation));
    Ok(())
}

pub async fn anomalies(args: EvalAnomaliesArgs, global: &Global, config: &Config) -> Result<()> {
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
    print!("{}", run_eval(&EvalArgs { source, truth: args.truth, json: args.json, layout: args.layout }).await?);
    Ok(())
}
