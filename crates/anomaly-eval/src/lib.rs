//! Measures Floorwatch's anomaly monitor against the simulator's ground truth: recall and
//! detection delay per fault kind, and false anomaly episodes per plant-hour.
//!
//! Two ways in:
//! * [`evaluate_run`] reads a recorded run (`floorwatch simulate --output DIR`), drives the
//!   production monitor (`plant::monitor::Monitor`, the very fold the plant runs, no
//!   database) over every recorded gateway batch in order, and scores the episodes it raises.
//!   [`evaluate_simulation`] does the same straight from the simulator, without files.
//! * [`evaluate_log`] scores the anomaly events already in a plant's log against a
//!   ground-truth file.
//!
//! # Scoring rules
//!
//! **Episodes.** An episode is what the supervisor sees: one `AnomalyDetected` and the
//! `AnomalyUpdated` / `AnomalyResolved` events of the same anomaly id. A sensor *joins* an
//! episode at the plant time of the first of those events that names it as crossing the
//! threshold (sensors listed only as having moved with it do not count).
//!
//! **Match.** An episode matches a fault when it is on the fault's machine and one of the
//! fault's sensors joins it at a time `t` with `fault.start <= t <= fault.end + grace`
//! (grace 120 s: a one-reading spike is often confirmed a few readings later, and a fault's
//! end is itself a change). A sensor already in an open episode when its fault starts does
//! not join again, so such a fault counts as missed (rare, and on the safe side).
//!
//! **Recall** of a kind is the share of its faults matched by some episode. Faults that
//! start within `skip_first_s` of the start, or less than `grace` before the end, are not
//! scored (they cannot be judged fairly); episodes that match them are still not false.
//! A fault whose window holds no reading of any of its sensors (a two-second spike on a
//! sensor that reports irregularly and was silent all through it) cannot be seen by any
//! detector: it is left out of recall and reported apart, per kind (`unread`) and in the
//! report's `unread` list, never silently dropped. A dropout is never unread: its silence
//! is the fault. Only a run whose readings are seen (simulated or replayed) knows this; one
//! scored from a log counts every fault.
//!
//! **Delay** of a detected fault is the earliest join time of one of its sensors minus the
//! fault's start; per kind the median (the middle value, the mean of the two middle ones
//! for an even count) and the nearest-rank 90th percentile are reported. Driven in-process,
//! join times are exact (the plant time of the batch that made the monitor raise the event,
//! `delay_basis: raised`). Read back from a log, an `AnomalyDetected` does not carry that
//! time; the latest reading it cites stands in (`delay_basis: evidence`), which can be up to
//! the confirmation window (10 s) early.
//!
//! **False episodes** are episodes that match no fault. Episodes that start while their
//! machine is down for maintenance or repair (from `maintenance_started` to
//! `maintenance_completed` in the ground truth) or within `settle_s` (600 s) after it runs
//! again are counted apart (`during_maintenance`), not as false: the machine really
//! stopped, and alarm-management practice suppresses alarms of equipment out of service.
//! Wear is not excused: an episode caused by a worn machine's creeping readings, with no
//! fault injected, is false. False episodes are divided by the plant-hours evaluated
//! (`false_episodes_per_plant_hour`), and also scaled to a plant of 10,000 sensors
//! (`false_episodes_per_plant_hour_at_10k_sensors`), since they grow with the number of
//! sensors watched; the target is checked on the latter.

pub mod cli;
pub mod episodes;
pub mod log;
pub mod run;
pub mod score;
pub mod truth;

use std::path::PathBuf;

pub use episodes::{AnomalyEvent, Episode, EpisodeError};
pub use log::{LogOptions, evaluate_log, evaluate_log_with};
pub use run::{RunOptions, Simulation, evaluate_run, evaluate_run_with, evaluate_simulation};
pub use score::{Report, ScoreRules, Span};
pub use truth::{GroundTruth, TruthError, read_truth};

#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    #[error(transparent)]
    Truth(#[from] TruthError),
    #[error(transparent)]
    Episode(#[from] EpisodeError),
    #[error(transparent)]
    Output(#[from] simulator::OutputError),
    #[error("{path}: {source}")]
    Replay { path: PathBuf, source: simulator::ReplayError },
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("the run in {0} is not complete (its manifest says so): the simulation stopped early")]
    Incomplete(PathBuf),
    #[error("plant layout: {0}")]
    Layout(String),
    #[error("the run does not match the layout: {0}")]
    LayoutMismatch(String),
    #[error("the plant's log has no LayoutConfigured event: its monitor never ran")]
    NoLayout,
    #[error("cannot tell which plant time to evaluate: no manifest.json beside {0}; give the span explicitly")]
    NoSpan(PathBuf),
    #[error("the span to evaluate is empty ({} .. {} ms)", .0.start_ms, .0.end_ms)]
    EmptySpan(Span),
    #[error("the anomaly monitor: {0}")]
    Monitor(String),
    #[error("the simulator: {0}")]
    Sim(String),
    #[error("database: {0}")]
    Database(String),
    #[error("{0}")]
    Usage(String),
    #[error("benchmark: {0}")]
    Bench(String),
}
