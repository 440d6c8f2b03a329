//! Command-line arguments.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "floorwatch",
    version,
    about = "Factory monitoring: event log, live read models, anomaly detection and predictive maintenance"
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Args)]
pub struct Global {
    /// Where the private PostgreSQL cluster and other state live
    /// [default: $FLOORWATCH_DATA_DIR, /var/lib/floorwatch as root, else ~/.local/share/floorwatch]
    #[arg(long, global = true, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,

    /// Use this PostgreSQL server (a superuser URL such as postgresql://user:pw@host/postgres)
    /// instead of the private cluster; Floorwatch creates its databases on it
    #[arg(long, global = true, env = "FLOORWATCH_DATABASE_URL", value_name = "URL")]
    pub database_url: Option<String>,

    /// Configuration file (defaults: assets/floorwatch.toml, built in)
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Start, stop or inspect the private PostgreSQL cluster
    #[command(subcommand)]
    Db(DbCommand),
    /// Read a plant's event log
    #[command(subcommand)]
    Log(LogCommand),
    /// Measure performance and write the figures to a JSON file
    #[command(subcommand)]
    Bench(BenchCommand),
}

#[derive(Debug, Subcommand)]
pub enum DbCommand {
    /// Start the private cluster (initialising it on first use) and print its URL
    Start,
    /// Stop the private cluster
    Stop,
    /// Say whether the private cluster is running, and where
    Status,
}

#[derive(Debug, Subcommand)]
pub enum LogCommand {
    /// Print events of a plant's log, oldest first; with --follow, keep printing new ones
    Tail(TailArgs),
}

#[derive(Debug, Args)]
pub struct TailArgs {
    /// Plant number (1-based)
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=99))]
    pub plant: u32,
    /// Start after this position [default: the last --lines events]
    #[arg(long, value_name = "POSITION")]
    pub after: Option<i64>,
    /// How many of the newest events to show when --after is not given
    #[arg(long, default_value_t = 20)]
    pub lines: i64,
    /// Only events of these stream categories (e.g. readings, anomaly, machine)
    #[arg(long, value_delimiter = ',')]
    pub category: Vec<String>,
    /// Keep waiting for new events (Ctrl-C to stop)
    #[arg(long, short)]
    pub follow: bool,
}

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Telemetry through the log vs raw COPY vs one INSERT per reading; delivery to a subscriber
    Log(LogBenchArgs),
}

#[derive(Debug, Args)]
pub struct LogBenchArgs {
    /// Write the figures to this JSON file
    #[arg(long, value_name = "FILE")]
    pub json: PathBuf,
    /// Readings to push through the log and through COPY
    #[arg(long, default_value_t = 3_000_000, value_parser = clap::value_parser!(u64).range(1_000..))]
    pub readings: u64,
    /// Readings per telemetry batch (one event), 1 to 1000
    #[arg(long, default_value_t = 1_000, value_parser = clap::value_parser!(u64).range(1..=1_000))]
    pub batch_readings: u64,
    /// Batches appended per transaction (how the plant node groups gateway uploads)
    #[arg(long, default_value_t = 20)]
    pub batches_per_transaction: usize,
    /// How long to run the one-INSERT-per-reading baseline
    #[arg(long, default_value_t = 5)]
    pub insert_seconds: u64,
    /// Domain events for the delivery-throughput run
    #[arg(long, default_value_t = 50_000)]
    pub delivery_events: usize,
    /// Events for the append-to-delivery latency run (appended at --latency-rate per second)
    #[arg(long, default_value_t = 2_000)]
    pub latency_events: usize,
    #[arg(long, default_value_t = 200)]
    pub latency_rate: u32,
}
