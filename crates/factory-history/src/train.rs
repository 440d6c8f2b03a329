//! Training a days-until-failure model on a recorded factory, validated on held-out machines.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use maintenance::{
    Accuracy, BoosterParams, FeatureConfig, LeadTimeOptions, Model, TrainOptions, TrainingSet, ValidationMetrics,
};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::evaluate::{MaintenanceEvaluation, evaluate_model};
use crate::history::{FactoryHistory, ReadOptions, Run, RunEndKind, read_history};

/// Everything factory training takes besides the recording.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FactoryTrainOptions {
    pub read: ReadOptions,
    pub seed: u64,
    /// Share of machines held out for validation, drawn with the seed (0: none).
    pub validation_share: f64,
    /// Days until failure are capped here: far from failure the signals carry no wear.
    pub rul_cap_days: f64,
    /// Trailing feature windows, in days.
    pub windows_days: Vec<f64>,
    /// A run's baseline: its first this many days.
    pub baseline_days: f64,
    /// Train on every k-th hour of each run (consecutive hours say nearly the same).
    pub stride_hours: usize,
    /// Nominal coverage of the interval.
    pub interval_level: f64,
    pub calibration_folds: usize,
    /// Recorded in the model (ms since the Unix epoch).
    pub created_at_ms: i64,
    pub booster: BoosterParams,
    /// How the held-out machines are evaluated over time; its alert rule is recorded in the
    /// model and is what the plant's scorer calls "due".
    pub lead: LeadTimeOptions,
}

impl Default for FactoryTrainOptions {
    fn default() -> Self {
        FactoryTrainOptions {
            read: ReadOptions::default(),
            seed: 0,
            validation_share: 0.25,
            rul_cap_days: 21.0,
            windows_days: vec![1.0, 3.0, 7.0],
            baseline_days: 1.0,
            stride_hours: 6,
            interval_level: 0.9,
            calibration_folds: 5,
            created_at_ms: 0,
            booster: BoosterParams::default(),
            lead: LeadTimeOptions::default(),
        }
    }
}

impl FactoryTrainOptions {
    fn validate(&self) -> Result<(), Error> {
        if !(0.0..1.0).contains(&self.validation_share) {
            return Err(Error::InvalidOption {
                name: "validation_share",
                reason: format!("{} is not in [0, 1)", self.validation_share),
            });
        }
        if self.stride_hours == 0 || self.stride_hours > 24 * 7 {
            return Err(Error::InvalidOption { name: "stride_hours", reason: "give 1 to 168 hours".into() });
        }
        Ok(())
    }

    /// `machine_of_unit`: each run's machine, the calibration group (one machine's runs
    /// are one draw, and the plant scores machines hour by hour).
    fn train_options(&self, validation_units: Vec<String>, machine_of_unit: BTreeMap<String, String>) -> TrainOptions {
        TrainOptions {
            rul_cap: Some(self.rul_cap_days),
            seed: self.seed,
            interval_level: self.interval_level,
            validation_units: 0,
            validation_unit_ids: Some(validation_units),
            calibration_folds: self.calibration_folds,
            calibration_groups: Some(machine_of_unit),
            interval_bins: 5,
            interval_min_bin_points: 200,
            truncations_per_unit: 10,
            min_history_rows: 24,
            training_row_stride: self.stride_hours,
            created_at_ms: self.created_at_ms,
            time_unit: "days".into(),
            features: FeatureConfig { windows: self.windows_days.clone(), baseline_window: self.baseline_days },
            booster: self.booster.clone(),
            alert: Some(self.lead.alert),
        }
    }
}

/// What factory training did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FactoryTrainReport {
    pub model_version: String,
    pub machines: usize,
    pub training_machines: usize,
    pub validation_machines: usize,
    /// Runs by how they ended.
    pub runs_failed: usize,
    pub runs_serviced: usize,
    pub runs_open: usize,
    /// Hourly rows in the recording (all runs).
    pub rows: usize,
    /// Labelled rows the trees were fitted on.
    pub training_rows: usize,
    /// Readings read, and ignored (out of order, unknown sensor, not finite).
    pub readings: u64,
    pub readings_ignored: u64,
    /// Out-of-fold accuracy on the training machines (what the interval was calibrated on).
    pub out_of_fold: Option<Accuracy>,
    /// Accuracy on the held-out machines' hourly rows (capped truth, labelled rows only).
    pub validation: Option<ValidationMetrics>,
    /// The held-out machines scored hour by hour against their failures.
    pub evaluation: Option<MaintenanceEvaluation>,
}

/// Reads a recording and trains on it: target days until failure (runs ending in a
/// service or with the recording are censored), interval by conformal calibration,
/// validated on held-out machines. Deterministic for a seed.
pub fn train_factory(dir: &Path, options: &FactoryTrainOptions) -> Result<(Model, FactoryTrainReport), Error> {
    options.validate()?;
    let history = read_history(dir, &options.read)?;
    train_on_history(&history, options)
}

/// Trains on a recording already read.
pub fn train_on_history(
    history: &FactoryHistory,
    options: &FactoryTrainOptions,
) -> Result<(Model, FactoryTrainReport), Error> {
    options.validate()?;
    let runs = history.runs();
    let held_out = held_out_machines(history, options.validation_share, options.seed);
    let validation_units: Vec<String> =
        runs.iter().filter(|r| held_out.contains(&r.machine)).map(|r| r.unit.clone()).collect();
    let (table, ends) = history.table(&runs)?;
    let set = TrainingSet::new(table, &ends)?;
    let machine_of_unit: BTreeMap<String, String> =
        runs.iter().map(|r| (r.unit.clone(), history.machines[r.machine].id.clone())).collect();
    let (model, report) = maintenance::train(&set, &options.train_options(validation_units, machine_of_unit))?;
    let held: Vec<usize> = held_out.iter().copied().collect();
    let evaluation = if held.is_empty() { None } else { Some(evaluate_model(&model, history, &held, &options.lead)?) };
    let count = |kind: RunEndKind| runs.iter().filter(|r: &&Run| r.end == kind).count();
    let report = FactoryTrainReport {
        model_version: model.version()?,
        machines: history.machines.len(),
        training_machines: history.machines.len() - held.len(),
        validation_machines: held.len(),
        runs_failed: count(RunEndKind::Failed),
        runs_serviced: count(RunEndKind::Serviced),
        runs_open: count(RunEndKind::Open),
        rows: report.rows,
        training_rows: report.training_rows,
        readings: history.readings,
        readings_ignored: history.readings_ignored,
        out_of_fold: report.out_of_fold,
        validation: report.metrics,
        evaluation,
    };
    Ok((model, report))
}

/// The machines held out, drawn with the seed: `share` of them, at least one when the
/// share is positive, never all.
pub fn held_out_machines(history: &FactoryHistory, share: f64, seed: u64) -> BTreeSet<usize> {
    let n = history.machines.len();
    if share <= 0.0 || n < 2 {
        return BTreeSet::new();
    }
    let mut order: Vec<usize> = (0..n).collect();
    order.shuffle(&mut ChaCha8Rng::seed_from_u64(seed ^ 0x6d61_6368_696e_6573));
    let k = ((n as f64 * share).round() as usize).clamp(1, n - 1);
    order[..k].iter().copied().collect()
}
