//! Command-line arguments.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "floorwatch",
    version,
    about = "Factory monitoring: event log, live read models, anomaly detection and predictive maintenance",
    long_about = "Factory monitoring on an event-sourced backend. `floorwatch up` runs a whole simulated \
factory on this machine (a private PostgreSQL cluster, one node per plant, the simulator); the other \
commands run or inspect one part."
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Args)]
pub struct Global {
    /// Where the private PostgreSQL cluster, secrets and other state live
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

    /// Require this key (header Ocp-Apim-Subscription-Key, as Azure's clients send it) on
    /// the Anomaly Detector routes of every plant node and of `detect --serve`
    #[arg(long, global = true, env = "FLOORWATCH_ANOMALY_DETECTOR_KEY", value_name = "KEY", hide_env_values = true)]
    pub anomaly_detector_key: Option<String>,
}

/// The factory's size (the layout file scaled).
#[derive(Debug, Clone, Args)]
pub struct FactoryArgs {
    /// Number of plants
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=99))]
    pub plants: u32,
    /// Sensors in every plant
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u32).range(10..=1_000_000))]
    pub sensors_per_plant: u32,
    /// Production lines in every plant [default: the layout file's]
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=99))]
    pub lines_per_plant: Option<u32>,
    /// Layout file [default: assets/plant-layout.toml, built in]
    #[arg(long, value_name = "FILE")]
    pub layout: Option<PathBuf>,
}

/// How fast simulated time runs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Speed {
    Realtime,
    Max,
    Factor(f64),
}

pub fn parse_speed(s: &str) -> Result<Speed, String> {
    match s {
        "realtime" | "1x" => Ok(Speed::Realtime),
        "max" => Ok(Speed::Max),
        other => other
            .strip_suffix('x')
            .and_then(|f| f.parse::<f64>().ok())
            .filter(|f| f.is_finite() && *f > 0.0 && *f <= 10_000.0)
            .map(Speed::Factor)
            .ok_or_else(|| format!("{other:?} is not realtime, max or a factor such as 10x (0 < factor ≤ 10000)")),
    }
}

/// A duration such as `90s`, `15m`, `2h`, `30d`.
pub fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    humantime::parse_duration(s).map_err(|e| format!("{s:?} is not a duration such as 90s, 15m, 2h or 30d ({e})"))
}

/// `now` or an RFC 3339 time.
pub fn parse_time(s: &str) -> Result<chrono::DateTime<chrono::Utc>, String> {
    if s == "now" {
        return Ok(chrono::Utc::now());
    }
    chrono::DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&chrono::Utc))
        .map_err(|e| format!("{s:?} is not `now` or an RFC 3339 time such as 2026-03-01T00:00:00Z ({e})"))
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the whole factory on this machine: cluster, plant nodes, projections, anomaly
    /// monitor and the simulator at real time, with a live status screen (Ctrl-C stops)
    Up(UpArgs),
    /// Run one plant node: ingest and command APIs, projections, anomaly monitor
    Plant(PlantArgs),
    /// Run the cloud node (every plant's log, cross-plant read models, the query API), or
    /// manage its credentials, train its maintenance model, rebuild its read models
    Cloud(CloudArgs),
    /// Ship one plant's event log to the cloud node (store-and-forward) and keep its
    /// maintenance model the one the cloud publishes
    Forward(ForwardArgs),
    /// Run the factory simulator: send to plant nodes like a fleet of gateways, or write files
    Simulate(SimulateArgs),
    /// Drop a plant's read models and rebuild them from its event log
    Rebuild(RebuildArgs),
    /// Score a `timestamp,value` CSV (or a machine's `timestamp,<sensor>,…` CSV) with the streaming
    /// anomaly detector, or serve the
    /// Azure-Anomaly-Detector-compatible API
    Detect(DetectArgs),
    /// Train a remaining-useful-life model on run-to-failure data, or a days-until-failure
    /// model on a recorded factory
    Train(TrainArgs),
    /// Predict remaining useful life, with an interval, for partial histories
    Predict(PredictArgs),
    /// Measure predictions against what actually happened
    #[command(subcommand)]
    Eval(EvalCommand),
    /// Start, stop or inspect the private PostgreSQL cluster
    #[command(subcommand)]
    Db(DbCommand),
    /// Read a plant's event log
    #[command(subcommand)]
    Log(LogCommand),
    /// People's own credentials at a plant: each signs in (the desktop app, the command
    /// API) with a token of their own, and every event they cause names them
    #[command(subcommand)]
    User(UserCommand),
    /// Measure performance and write the figures to a JSON file
    #[command(subcommand)]
    Bench(BenchCommand),
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Give a person a credential at a plant and print its token (only this once)
    Add(UserAddArgs),
    /// List a plant's credentials (never their tokens)
    List(UserPlantArgs),
    /// Revoke a credential: the plant node refuses its token within seconds
    Revoke(UserRevokeArgs),
}

#[derive(Debug, Args)]
pub struct UserAddArgs {
    /// The person's name, as events and the audit trail will show it
    pub name: String,
    /// What they may do: a viewer reads; maintenance also schedules and records service;
    /// a supervisor also acknowledges, shelves and annotates anomalies
    #[arg(long, value_enum)]
    pub role: PersonRole,
    /// The plant (1-based)
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=9999))]
    pub plant: u16,
}

#[derive(Debug, Args)]
pub struct UserPlantArgs {
    /// The plant (1-based)
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=9999))]
    pub plant: u16,
}

#[derive(Debug, Args)]
pub struct UserRevokeArgs {
    /// The credential's id (`floorwatch user list` shows it; it is also the part of the
    /// token after `fwt_`)
    pub id: String,
    /// The plant (1-based)
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=9999))]
    pub plant: u16,
}

/// The roles of people at a plant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PersonRole {
    Supervisor,
    Maintenance,
    Viewer,
}

impl From<PersonRole> for access::Role {
    fn from(r: PersonRole) -> access::Role {
        match r {
            PersonRole::Supervisor => access::Role::Supervisor,
            PersonRole::Maintenance => access::Role::Maintenance,
            PersonRole::Viewer => access::Role::Viewer,
        }
    }
}

#[derive(Debug, Args)]
pub struct UpArgs {
    #[command(flatten)]
    pub factory: FactoryArgs,
    /// Simulated speed: realtime, max, or a factor such as 10x
    #[arg(long, default_value = "realtime", value_parser = parse_speed)]
    pub speed: Speed,
    /// Stop by itself after this long of simulated time (e.g. 10m)
    #[arg(long, value_parser = parse_duration)]
    pub duration: Option<std::time::Duration>,
    /// Multiply every fault rate of the simulator by this (0 turns faults off)
    #[arg(long, default_value_t = 1.0)]
    pub fault_rate_scale: f64,
    /// Print the status as plain lines every 10 s instead of a refreshing screen
    #[arg(long)]
    pub plain: bool,
    /// Print the data directory these arguments use, and exit
    #[arg(long)]
    pub print_data_dir: bool,
}

#[derive(Debug, Args)]
pub struct PlantArgs {
    /// Plant number (1-based)
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=99))]
    pub plant: u16,
    /// Address of the HTTP API [default: 127.0.0.1:<plant.http_base_port + plant>]
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<std::net::SocketAddr>,
    #[command(flatten)]
    pub factory: FactoryArgs,
}

#[derive(Debug, Args)]
pub struct CloudArgs {
    #[command(subcommand)]
    pub command: Option<CloudCommand>,
    /// Address of the cloud API [default: 127.0.0.1:<cloud.http_port>]
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<std::net::SocketAddr>,
}

#[derive(Debug, Subcommand)]
pub enum CloudCommand {
    /// Make, list or revoke the cloud API's credentials
    #[command(subcommand)]
    Token(TokenCommand),
    /// Train the maintenance model on every plant's history in the cloud, register it with
    /// its metrics, and (with --activate) publish it to the plants
    Train(CloudTrainArgs),
    /// Drop the cloud's read models and rebuild them from its event log
    Rebuild,
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Make a credential and print its token (shown this once; only its hash is kept)
    Create(TokenCreateArgs),
    /// List the credentials (never their tokens)
    List,
    /// Revoke a credential by its id (the part of the token after `fwt_`, before `_`)
    Revoke {
        /// The credential's id
        id: String,
    },
}

#[derive(Debug, Args)]
pub struct TokenCreateArgs {
    /// viewer (reads its plants), manager (reads every plant), forwarder (ships one
    /// plant's log), admin (manages credentials); maintenance and supervisor are for plants
    #[arg(long, value_parser = parse_role)]
    pub role: access::Role,
    /// A plant the credential is for (repeat for several; none for manager and admin)
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=9999))]
    pub plant: Vec<u16>,
    /// Who or what holds it, as audit trails will name it
    #[arg(long, default_value = "")]
    pub label: String,
}

fn parse_role(s: &str) -> Result<access::Role, String> {
    access::Role::parse(s)
        .ok_or_else(|| format!("{s:?} is not a role ({})", access::Role::ALL.map(access::Role::as_str).join(", ")))
}

#[derive(Debug, Args)]
pub struct CloudTrainArgs {
    /// Only these plants' history (repeat; default: every plant)
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=9999))]
    pub plant: Vec<u16>,
    /// Make the new model the active one, which the plants' forwarders then fetch
    #[arg(long)]
    pub activate: bool,
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    /// Also write the model file here
    #[arg(long, value_name = "FILE")]
    pub model: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ForwardArgs {
    /// The plant whose log is shipped (its database in the data directory's cluster, or
    /// on --database-url)
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=9999))]
    pub plant: u16,
    /// The cloud node, e.g. http://127.0.0.1:8090 [default: 127.0.0.1:<cloud.http_port>]
    #[arg(long, value_name = "URL")]
    pub cloud: Option<String>,
    /// The plant's database [default: floorwatch_p<N> on the data directory's cluster, or on
    /// --database-url]
    #[arg(long, value_name = "URL")]
    pub plant_database: Option<String>,
    /// The plant's forwarder token [default: the one kept in the data directory]
    #[arg(long, env = "FLOORWATCH_FORWARDER_TOKEN", value_name = "TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Events read from the plant's log per batch (sent as requests of at most 1,000
    /// events, three in flight at once)
    #[arg(long, default_value_t = 4_000, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    pub batch_events: u64,
}

#[derive(Debug, Args)]
pub struct SimulateArgs {
    #[command(flatten)]
    pub factory: FactoryArgs,
    /// Send plant N's gateways to URL (repeat per plant) [default: the local plant nodes at
    /// http://127.0.0.1:<plant.http_base_port + N>, tokens from the data directory]
    #[arg(long, value_name = "N=URL", value_parser = parse_target)]
    pub target: Vec<(u16, String)>,
    /// Write readings and ground truth to this directory instead of sending them
    #[arg(long, value_name = "DIR")]
    pub output: Option<PathBuf>,
    /// Simulated speed: realtime, max, or a factor such as 10x
    #[arg(long, default_value = "realtime", value_parser = parse_speed)]
    pub speed: Speed,
    /// Simulated start time: `now` or RFC 3339 [default: now, or now minus --duration at max speed]
    #[arg(long, value_parser = parse_time)]
    pub start: Option<chrono::DateTime<chrono::Utc>>,
    /// Stop after this long of simulated time (e.g. 1h)
    #[arg(long, value_parser = parse_duration)]
    pub duration: Option<std::time::Duration>,
    /// Generate this much history before the start, one reading per sensor per minute (e.g. 30d)
    #[arg(long, value_parser = parse_duration)]
    pub backfill: Option<std::time::Duration>,
    /// Seed of the simulation [default: simulator.seed of the configuration]
    #[arg(long)]
    pub seed: Option<u64>,
    /// Multiply every fault rate by this (0 turns faults off)
    #[arg(long, default_value_t = 1.0)]
    pub fault_rate_scale: f64,
    /// Gateway tokens file (JSON: gateway → token) [default: from the data directory, which
    /// also holds the credential the simulated maintenance crew records work orders with]
    #[arg(long, value_name = "FILE")]
    pub tokens: Option<PathBuf>,
}

fn parse_target(s: &str) -> Result<(u16, String), String> {
    let (n, url) = s.split_once('=').ok_or_else(|| format!("{s:?} is not N=URL"))?;
    let n: u16 = n.parse().map_err(|_| format!("{n:?} is not a plant number"))?;
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(format!("{url:?} is not an http:// or https:// URL"));
    }
    Ok((n, url.trim_end_matches('/').to_owned()))
}

#[derive(Debug, Args)]
pub struct RebuildArgs {
    /// Plant number (1-based)
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=99))]
    pub plant: u16,
}

#[derive(Debug, Args)]
pub struct DetectArgs {
    /// Input CSV with header `timestamp,value` (one series), or `timestamp,<sensor>,<sensor>,…`
    /// (one machine's sensors, one row per instant; an empty cell is a missing reading),
    /// timestamps RFC 3339 or epoch seconds or milliseconds
    #[arg(long, value_name = "IN.csv", required_unless_present = "serve")]
    pub input: Option<PathBuf>,
    /// Output CSV: `timestamp,value,anomaly_score`, or for a machine the input's columns,
    /// `anomaly_score` (the row's highest) and `<sensor>_score` per sensor (- for standard output)
    #[arg(long, value_name = "OUT.csv", required_unless_present = "serve")]
    pub output: Option<PathBuf>,
    /// Serve the Azure-Anomaly-Detector-compatible API on this address instead
    #[arg(long, value_name = "ADDR", conflicts_with_all = ["input", "output"])]
    pub serve: Option<std::net::SocketAddr>,
}

#[derive(Debug, Args)]
pub struct TrainArgs {
    /// Run-to-failure CSV: header with `unit`, `cycle` and numeric feature columns
    #[arg(long, value_name = "CSV", required_unless_present = "factory", conflicts_with = "factory")]
    pub input: Option<PathBuf>,
    /// A recorded factory (`floorwatch simulate --backfill 30d --duration … --output DIR`):
    /// train in days until failure, validated on held-out machines
    #[arg(long, value_name = "DIR")]
    pub factory: Option<PathBuf>,
    /// Register the model in plant N's registry and make it the active one
    #[arg(long, requires_all = ["factory", "plant"])]
    pub register: bool,
    /// The plant whose registry `--register` writes to
    #[arg(long, requires = "register")]
    pub plant: Option<u16>,
    /// Where to write the model file
    #[arg(long, value_name = "FILE")]
    pub model: PathBuf,
    /// Cap of the remaining-useful-life target (early life carries no signal)
    /// [default: 125 cycles; 21 days with --factory]
    #[arg(long)]
    pub rul_cap: Option<f64>,
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    /// Nominal coverage of the prediction interval
    #[arg(long, default_value_t = 0.9)]
    pub interval_level: f64,
    #[command(flatten)]
    pub due: DueArgs,
}

/// When a factory model calls a machine due within 7 days (recorded in the model; the
/// plant's scorer applies it).
#[derive(Debug, Args, Clone, Copy)]
pub struct DueArgs {
    /// Due when the probability of failing within 7 days is at least this [default: 0.2]
    #[arg(long, value_name = "P", conflicts_with = "due_on_lower_bound")]
    pub due_probability: Option<f64>,
    /// Only once that probability has held this many hours [default: 6]
    #[arg(long, value_name = "HOURS", conflicts_with = "due_on_lower_bound")]
    pub due_hold_hours: Option<f64>,
    /// Due when the 90 % interval's lower bound is at most 7 days, at once (the rule before
    /// probabilities; many more alerts)
    #[arg(long)]
    pub due_on_lower_bound: bool,
}

#[derive(Debug, Args)]
pub struct PredictArgs {
    #[arg(long, value_name = "FILE")]
    pub model: PathBuf,
    /// Partial histories, the same columns as the training file
    #[arg(long, value_name = "CSV")]
    pub input: PathBuf,
    /// Output CSV `unit,predicted_rul,lower,upper` (- for standard output)
    #[arg(long, value_name = "CSV")]
    pub output: PathBuf,
}

#[derive(Debug, Subcommand)]
pub enum EvalCommand {
    /// Anomaly episodes against the simulator's injected faults: recall and median
    /// detection delay per fault kind, false episodes per plant-hour
    Anomalies(EvalAnomaliesArgs),
    /// Maintenance predictions against a recorded factory's failures: MAE in days at 1, 3,
    /// 7 and 14 days before failure, share of failures alerted at least 3 days ahead by the
    /// "due" rule the plant applies, alerts on machines that did not fail within 14 days
    /// per 1,000 machine-days, the trade-off under other rules, interval coverage before
    /// failures, and each machine type's track record
    Maintenance(EvalMaintenanceArgs),
}

#[derive(Debug, Args)]
pub struct EvalAnomaliesArgs {
    /// A recorded factory (`floorwatch simulate … --output DIR`): its readings are run
    /// through the plant's anomaly monitor here and scored against its ground truth
    #[arg(long, value_name = "DIR", conflicts_with = "plant")]
    pub from: Option<PathBuf>,
    /// Score the anomalies in plant N's log (the data directory's cluster, or
    /// --database-url) against --truth
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=99))]
    pub plant: Option<u16>,
    /// Ground truth (`ground-truth.jsonl` of the simulator run that fed the plant; a
    /// `manifest.json` beside it gives the time span)
    #[arg(long, value_name = "FILE")]
    pub truth: Option<PathBuf>,
    /// Write the figures as JSON (`recall_by_kind`, `median_delay_s_by_kind`,
    /// `false_episodes_per_plant_hour`, …)
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// The layout file the recorded run was simulated with (`simulate --layout`), e.g.
    /// `assets/plant-layout-mixed-signals.toml` [default: the built-in plant layout]
    #[arg(long, value_name = "FILE", requires = "from")]
    pub layout: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct EvalMaintenanceArgs {
    /// The recorded factory (`floorwatch simulate … --output DIR`)
    #[arg(long, value_name = "DIR")]
    pub from: PathBuf,
    /// Evaluate this model on every machine [default: train one on 75 % of the machines
    /// and evaluate on the rest]
    #[arg(long, value_name = "FILE")]
    pub model: Option<PathBuf>,
    /// Write the figures as JSON (`mae_days_at`, `predicted_3d_ahead_share`,
    /// `false_alerts_per_1000_machine_days`, `trade_off`, `by_machine_type`, …)
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    /// The rule scored (with --model: the model's own rule unless one is given here)
    #[command(flatten)]
    pub due: DueArgs,
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
    /// The simulator at full speed, then at 50,000 readings/s, against one plant node process
    Ingest(IngestBenchArgs),
    /// The whole factory at real time: from a reading accepted to it visible in sensor_state
    /// for a LISTENing client; then the most the projections keep up with
    Freshness(FreshnessBenchArgs),
    /// Rebuild every read model of a plant from its log
    Rebuild(RebuildBenchArgs),
    /// Bytes per reading in the log and in the raw-history read model after a simulated day
    Storage(StorageBenchArgs),
    /// The cloud query API on a cloud holding simulated days of 5 plants: p50/p99 latency of a
    /// mix of the main queries at a steady request rate, and the most requests per second it answers
    Api(ApiBenchArgs),
    /// Store-and-forward catch-up: how fast a backlog of plant readings reaches the cloud's
    /// log and read models while the plants keep ingesting
    Forward(ForwardBenchArgs),
    /// Time travel: the plant rebuilt at random instants of a simulated day on both clocks
    /// (as it happened, as we knew it then): p50/p99 of one reconstruction
    Timetravel(TimeTravelBenchArgs),
    /// Points per second per core of the streaming detector, of the machine model and of both
    /// as the monitor runs them, and their state per sensor
    Detect(DetectBenchArgs),
    /// Memory of a real `floorwatch up` over a long run, through a stall of its database
    /// (uploads refused, retried, caught up): resident set and PSS every 10 s, growth
    Up(UpBenchArgs),
}

#[derive(Debug, Args)]
pub struct UpBenchArgs {
    /// Write the figures to this JSON file
    #[arg(long, value_name = "FILE")]
    pub json: PathBuf,
    /// Minutes to run
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=1440))]
    pub minutes: u64,
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=99))]
    pub plants: u32,
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u32).range(10..=1_000_000))]
    pub sensors_per_plant: u32,
    /// Seconds PostgreSQL is stalled (SIGSTOP) a third of the way in; 0 for none
    #[arg(long, default_value_t = 120, value_parser = clap::value_parser!(u64).range(0..=3600))]
    pub stall_seconds: u64,
}

#[derive(Debug, Args)]
pub struct DetectBenchArgs {
    /// Write the figures to this JSON file
    #[arg(long, value_name = "FILE")]
    pub json: PathBuf,
}

#[derive(Debug, Args)]
pub struct IngestBenchArgs {
    /// Write the figures to this JSON file
    #[arg(long, value_name = "FILE")]
    pub json: PathBuf,
    /// Sensors of the plant
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u32).range(10..=1_000_000))]
    pub sensors: u32,
    /// Seconds measured in each phase (after a 5 s warm-up)
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub seconds: u64,
}

#[derive(Debug, Args)]
pub struct FreshnessBenchArgs {
    /// Write the figures to this JSON file
    #[arg(long, value_name = "FILE")]
    pub json: PathBuf,
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=99))]
    pub plants: u32,
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u32).range(10..=1_000_000))]
    pub sensors_per_plant: u32,
    /// Seconds measured in each phase (after a 10 s warm-up)
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub seconds: u64,
}

#[derive(Debug, Args)]
pub struct RebuildBenchArgs {
    /// Write the figures to this JSON file
    #[arg(long, value_name = "FILE")]
    pub json: PathBuf,
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u32).range(10..=1_000_000))]
    pub sensors: u32,
    /// Simulated seconds of history to rebuild from
    #[arg(long, default_value_t = 300, value_parser = clap::value_parser!(i64).range(60..=604_800))]
    pub seconds: i64,
}

#[derive(Debug, Args)]
pub struct TimeTravelBenchArgs {
    /// Write the figures to this JSON file
    #[arg(long, value_name = "FILE")]
    pub json: PathBuf,
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u32).range(10..=1_000_000))]
    pub sensors: u32,
    /// Simulated hours of history the plant holds
    #[arg(long, default_value_t = 24, value_parser = clap::value_parser!(u32).range(1..=168))]
    pub hours: u32,
    /// Simulated ms between two readings of a sensor (60,000: one a minute)
    #[arg(long, default_value_t = 60_000, value_parser = clap::value_parser!(i64).range(1_000..=3_600_000))]
    pub step_ms: i64,
    /// Random instants to rebuild the plant at (half on each clock)
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u32).range(2..=100_000))]
    pub instants: u32,
    /// The live model is frozen every this many log positions
    #[arg(long, default_value_t = readmodels::timetravel::CHECKPOINT_EVERY_EVENTS,
          value_parser = clap::value_parser!(i64).range(10..=1_000_000))]
    pub checkpoint_every: i64,
    /// Seed of the random instants
    #[arg(long, default_value_t = 19)]
    pub seed: u64,
}

#[derive(Debug, Args)]
pub struct StorageBenchArgs {
    /// Write the figures to this JSON file
    #[arg(long, value_name = "FILE")]
    pub json: PathBuf,
    /// Sensors of the one production line simulated (one gateway batch a second)
    #[arg(long, default_value_t = 1_000, value_parser = clap::value_parser!(u32).range(10..=100_000))]
    pub sensors: u32,
    /// Simulated hours
    #[arg(long, default_value_t = 24, value_parser = clap::value_parser!(u32).range(1..=168))]
    pub hours: u32,
}

#[derive(Debug, Args)]
pub struct ApiBenchArgs {
    /// Write the figures to this JSON file
    #[arg(long, value_name = "FILE")]
    pub json: PathBuf,
    /// Simulated days of history (one reading per sensor per minute)
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u32).range(1..=400))]
    pub days: u32,
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=99))]
    pub plants: u32,
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(10..=1_000_000))]
    pub sensors_per_plant: u32,
    /// Seconds of each measurement (after a 5 s warm-up): the steady rate, then the capacity
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub seconds: u64,
    /// Requests sent per second, on schedule whether or not earlier ones were answered; each
    /// is timed from when it was due, so waiting behind a slow server counts
    #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub rate: u32,
    /// Clients of the capacity measurement, each sending its next request when its last is
    /// answered; also the most requests in flight at the steady rate
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u64).range(1..=1024))]
    pub concurrency: u64,
}

#[derive(Debug, Args)]
pub struct ForwardBenchArgs {
    /// Write the figures to this JSON file
    #[arg(long, value_name = "FILE")]
    pub json: PathBuf,
    /// Readings in the backlog (over every plant)
    #[arg(long, default_value_t = 10_000_000, value_parser = clap::value_parser!(u64).range(10_000..))]
    pub backlog_readings: u64,
    /// Plants; during the catch-up each keeps ingesting a reading a second from every sensor
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=99))]
    pub plants: u32,
    /// Sensors per plant (5 × 10,000 ingest 50,000 readings a second during the catch-up)
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u32).range(10..=1_000_000))]
    pub sensors_per_plant: u32,
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
