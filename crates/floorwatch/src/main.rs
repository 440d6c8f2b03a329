//! The `floorwatch` command: runs the factory, its databases, tools and benchmarks.

mod bench;
mod cli;
mod config;
mod db_cmd;
mod factory;
mod log_cmd;
mod plant_cmd;
mod secrets;
mod server;
mod simulate_cmd;
mod tools;
mod up;

use anyhow::Result;
use clap::Parser;

use crate::cli::{Cli, Command};
use crate::config::Config;
use crate::server::Server;

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
    let config = match &cli.global.config {
        Some(path) => Config::load(path)?,
        None => Config::defaults(),
    };
    let global = &cli.global;
    let server = || Server::new(global.data_dir.clone(), global.database_url.clone(), &config);
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    match cli.command {
        Command::Up(args) => runtime.block_on(up::run(args, global, &config)),
        Command::Plant(args) => runtime.block_on(plant_cmd::run(args, global, &config)),
        Command::Simulate(args) => runtime.block_on(simulate_cmd::run(args, global, &config)),
        Command::Rebuild(args) => runtime.block_on(tools::rebuild(args, global, &config)),
        Command::Detect(args) => runtime.block_on(tools::detect(args)),
        Command::Train(args) if args.factory.is_some() => runtime.block_on(tools::train_factory(args, global, &config)),
        Command::Train(args) => tools::train(args),
        Command::Eval(cli::EvalCommand::Maintenance(args)) => tools::eval_maintenance(args),
        Command::Eval(cli::EvalCommand::Anomalies(args)) => {
            runtime.block_on(tools::eval_anomalies(args, global, &config))
        }
        Command::Predict(args) => tools::predict(args),
        Command::Db(cmd) => db_cmd::run(cmd, &server()?),
        Command::Log(cmd) => runtime.block_on(log_cmd::run(cmd, &server()?)),
        Command::Bench(cmd) => runtime.block_on(bench::run(cmd, global, &config)),
    }
}
