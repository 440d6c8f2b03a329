//! The `floorwatch` command: runs the factory, its databases, tools and benchmarks.

/// mimalloc keeps the memory it frees for reuse: with the default allocator the plant
/// node's per-batch churn (decoded readings, read-model rows) made the heap grow and
/// shrink all the time, and at 50,000 readings/s about a third of the node's CPU went
/// into the kernel zeroing the pages it got back.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod bench;
mod cli;
mod cloud_cmd;
mod config;
mod databases;
mod db_cmd;
mod detect_cmd;
mod eval_cmd;
mod factory;
mod files;
mod link;
mod log_cmd;
mod people;
mod plant_cmd;
mod rebuild_cmd;
mod secrets;
mod simulate_cmd;
mod train_cmd;
mod up;
mod user_cmd;

use anyhow::Result;
use clap::Parser;

use crate::cli::{Cli, Command};
use crate::config::Config;
use crate::databases::Server;

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("FLOORWATCH_LOG")
                .unwrap_or_else(|_| "warn,floorwatch=info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    match run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    let mut config = match &cli.global.config {
        Some(path) => Config::load(path)?,
        None => Config::defaults(),
    };
    config.anomaly_detector_key = cli.global.anomaly_detector_key.clone().filter(|k| !k.is_empty());
    let global = &cli.global;
    let server = || Server::new(global.data_dir.clone(), global.database_url.clone(), &config);
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    match cli.command {
        Command::Up(args) => runtime.block_on(up::run(args, global, &config)),
        Command::Plant(args) => runtime.block_on(plant_cmd::run(args, global, &config)),
        Command::Cloud(args) => runtime.block_on(cloud_cmd::run(args, global, &config)),
        Command::Forward(args) => runtime.block_on(link::run(args, global, &config)),
        Command::Simulate(args) => runtime.block_on(simulate_cmd::run(args, global, &config)),
        Command::Rebuild(args) => runtime.block_on(rebuild_cmd::run(args, global, &config)),
        Command::Detect(args) => runtime.block_on(detect_cmd::run(args, global, &config)),
        Command::Train(args) if args.factory.is_some() => {
            runtime.block_on(train_cmd::train_factory(args, global, &config))
        }
        Command::Train(args) => train_cmd::train(args),
        Command::Eval(cli::EvalCommand::Maintenance(args)) => eval_cmd::maintenance(args),
        Command::Eval(cli::EvalCommand::Anomalies(args)) => {
            runtime.block_on(eval_cmd::anomalies(args, global, &config))
        }
        Command::Predict(args) => train_cmd::predict(args),
        Command::Db(cmd) => db_cmd::run(cmd, &server()?),
        Command::Log(cmd) => runtime.block_on(log_cmd::run(cmd, &server()?)),
        Command::User(cmd) => runtime.block_on(user_cmd::run(cmd, global, &config)),
        Command::Bench(cmd) => runtime.block_on(bench::run(cmd, global, &config)),
    }
}
