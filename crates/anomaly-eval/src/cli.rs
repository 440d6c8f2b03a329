//! What the `floorwatch eval anomalies` and `floorwatch bench detect` commands run: plain
//! argument structs in, the text to print out (and the JSON file written when asked).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::score::Report;
use crate::{EvalError, LogOptions, RunOptions, evaluate_log_with, evaluate_run_with};

/// Where the episodes come from.
#[derive(Debug, Clone, PartialEq)]
pub enum EvalSource {
    /// A recorded run (`floorwatch simulate --output DIR`): its readings are replayed
    /// through the monitor in-process.
    Dir(PathBuf),
    /// A plant's database (its connection URL): the anomaly events its monitor appended.
    Database { url: String },
}

/// `floorwatch eval anomalies`.
#[derive(Debug, Clone, PartialEq)]
pub struct EvalArgs {
    pub source: EvalSource,
    /// Ground-truth file; for a directory, its own `ground-truth.jsonl` by default.
    pub truth: Option<PathBuf>,
    /// Also write the report as JSON here.
    pub json: Option<PathBuf>,
    /// The layout file a recorded run was simulated with (`None`: the built-in default).
    pub layout: Option<PathBuf>,
}

/// Runs the evaluation and returns the table to print.
pub async fn run_eval(args: &EvalArgs) -> Result<String, EvalError> {
    let report = match &args.source {
        EvalSource::Dir(dir) => {
            if let Some(truth) = &args.truth {
                let own = dir.join(simulator::GROUND_TRUTH_FILE);
                if !same_file(truth, &own) {
                    return Err(EvalError::Usage(format!(
                        "a recorded run is scored against its own ground truth ({}); --truth names another file",
                        own.display()
                    )));
                }
            }
            let mut options = RunOptions::default();
            if let Some(path) = &args.layout {
                let text =
                    std::fs::read_to_string(path).map_err(|source| EvalError::Io { path: path.clone(), source })?;
                options.layout_toml = Some(text);
            }
            evaluate_run_with(dir, &options)?
        }
        EvalSource::Database { url } => {
            let truth = args
                .truth
                .as_ref()
                .ok_or_else(|| EvalError::Usage("evaluating a plant's database needs --truth FILE".into()))?;
            let db = eventlog::Database::new(url, 2).map_err(|e| EvalError::Database(format!("{e:#}")))?;
            evaluate_log_with(&db, truth, &LogOptions::default()).await?
        }
    };
    if let Some(path) = &args.json {
        write_json(path, &report)?;
    }
    Ok(table(&report))
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

fn write_json(path: &Path, value: &impl serde::Serialize) -> Result<(), EvalError> {
    let text = serde_json::to_string_pretty(value).map_err(|e| EvalError::Usage(e.to_string()))?;
    std::fs::write(path, text + "\n").map_err(|source| EvalError::Io { path: path.to_path_buf(), source })
}

fn opt(v: Option<f64>, digits: usize) -> String {
    v.map_or_else(|| "-".to_owned(), |v| format!("{v:.digits$}"))
}

/// The report as a table for a terminal.
pub fn table(r: &Report) -> String {
    let sensors: u64 = r.plants.iter().map(|p| p.sensors).sum();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Anomaly detection on {}: {} plant(s), {} sensors, {:.1} h",
        r.source,
        r.plants.len(),
        sensors,
        r.hours
    );
    let _ = writeln!(
        out,
        "{:<12} {:>7} {:>9} {:>7} {:>10} {:>10}  first test",
        "kind", "faults", "detected", "recall", "median s", "p90 s"
    );
    for (kind, k) in &r.kinds {
        let tests: Vec<String> = k.first_test.iter().map(|(t, n)| format!("{t} {n}")).collect();
        let _ = writeln!(
            out,
            "{:<12} {:>7} {:>9} {:>7} {:>10} {:>10}  {}",
            kind,
            k.faults,
            k.detected,
            opt(k.recall, 3),
            opt(k.median_delay_s, 1),
            opt(k.p90_delay_s, 1),
            tests.join(", ")
        );
    }
    let e = &r.episodes;
    let _ = writeln!(
        out,
        "episodes: {} raised, {} matched a fault, {} while a machine was down, {} false ({} beside a fault on other sensors)",
        e.total, e.matched, e.during_maintenance, e.false_episodes, e.false_beside_a_fault
    );
    let by_test: Vec<String> = e.false_by_test.iter().map(|(t, n)| format!("{t} {n}")).collect();
    let _ = writeln!(
        out,
        "false episodes per plant-hour: {:.2} ({:.2} for a plant of 10,000 sensors; {:.2} after the first hour){}",
        r.false_episodes_per_plant_hour,
        r.false_episodes_per_plant_hour_at_10k_sensors,
        r.false_episodes_per_plant_hour_at_10k_sensors_after_first_hour,
        if by_test.is_empty() { String::new() } else { format!("; by test: {}", by_test.join(", ")) }
    );
    // The sensor kinds most false episodes come from, for tuning.
    let mut by_kind: Vec<(&String, &usize)> = e.false_by_sensor_kind.iter().collect();
    by_kind.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    if !by_kind.is_empty() {
        let top: Vec<String> = by_kind.iter().take(8).map(|(k, n)| format!("{k} {n}")).collect();
        let _ = writeln!(out, "false episodes by sensor kind: {}", top.join(", "));
    }
    let unmet: Vec<String> = r
        .targets
        .iter()
        .filter(|t| !t.met)
        .map(|t| format!("{} = {} (target {})", t.what, opt(t.got, 3), t.target))
        .collect();
    let met = r.targets.len() - unmet.len();
    let _ = writeln!(out, "targets met: {met} of {}", r.targets.len());
    for u in unmet {
        let _ = writeln!(out, "  not met: {u}");
    }
    out
}

/// `floorwatch bench detect`.
#[derive(Debug, Clone, PartialEq)]
pub struct BenchArgs {
    pub json: Option<PathBuf>,
    pub spec: detector::BenchSpec,
}

impl BenchArgs {
    pub fn new(json: Option<PathBuf>) -> Self {
        BenchArgs { json, spec: detector::BenchSpec::default() }
    }
}

/// Runs `detector::benchmark` with the default detector. `elapsed` is the wall clock
/// (time since any fixed start, e.g. `|| start.elapsed()`). Returns the text to print.
pub fn run_bench(args: &BenchArgs, elapsed: impl FnMut() -> Duration) -> Result<String, EvalError> {
    let report = detector::benchmark(&args.spec, detector::Config::default(), elapsed)
        .map_err(|e| EvalError::Bench(e.to_string()))?;
    if let Some(path) = &args.json {
        write_json(path, &report)?;
    }
    Ok(format!(
        "detector: {:.0} points/s per core ({:.1} ns a point; 50,000 sensors at 1 Hz take {:.2} % of a core), \
         {} bytes of state per sensor ({:.0} checkpointed), over {} sensors × {} readings\n\
         machine model: {:.0} points/s per core, {:.0} bytes per sensor; the monitor (both, as configured): \
         {:.0} points/s per core (50,000 sensors at 1 Hz take {:.2} % of a core)\n",
        report.points_per_s_per_core,
        report.ns_per_point,
        100.0 * report.core_share_at_50k_sensors_1hz,
        report.state_bytes_per_sensor,
        report.checkpoint_bytes_per_sensor,
        report.sensors,
        args.spec.readings_per_sensor,
        report.machine_model_points_per_s_per_core,
        report.machine_model_bytes_per_sensor,
        report.monitor_points_per_s_per_core,
        100.0 * 50_000.0 / report.monitor_points_per_s_per_core
    ))
}
