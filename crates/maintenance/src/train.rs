//! Training: a unit-level split, boosted trees, an interval calibrated out of fold, and
//! metrics on held-out units.
//!
//! 1. Units are shuffled with the seed; the first `validation_units` are held out and
//!    touch nothing but the metrics.
//! 2. The rest are split by unit into `calibration_folds` folds. For each fold, trees are
//!    fitted on the other folds and predict the fold's rows from the `min_history_rows`-th
//!    on — censored runs' rows too; these out-of-fold residuals against the remaining life
//!    as given calibrate the interval (cross-conformal: every training unit serves as
//!    calibration data without a unit ever predicting itself), counted by unit
//!    (`interval.rs` says why).
//! 3. The final trees are fitted on all training units, and scored on the validation units
//!    at every labelled row and on histories cut at random rows.
//!
//! Everything random (the split, row and column sampling, the cut points) comes from the
//! seed, and the trees are grown single-threaded, so one seed gives one model.

use std::collections::{BTreeMap, HashMap};

use forust_ml::GradientBooster;
use forust_ml::objective::ObjectiveType;
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::alert::AlertRule;
use crate::error::Error;
use crate::features::{FeatureConfig, FeatureMatrix, FeatureSet, Rows};
use crate::interval::{CalibrationPoint, IntervalCalibration, check_level};
use crate::metrics::{Accuracy, BucketAccuracy, Scored, bucket_edges, by_bucket};
use crate::model::{BoosterParams, Model, Target, TrainingMetadata, ValidationMetrics, raw_predictions};
use crate::table::{RemainingLife, TrainingSet};

/// At most this many trees.
pub const MAX_ITERATIONS: usize = 10_000;

/// Everything training takes besides the data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainOptions {
    /// Remaining life is capped at this value (early life carries no wear signal);
    /// `None` for no cap.
    pub rul_cap: Option<f64>,
    pub seed: u64,
    /// Nominal coverage of the interval, in (0, 1).
    pub interval_level: f64,
    /// Units held out for the metrics, drawn with the seed (0: none, the model has no
    /// metrics). Ignored when `validation_unit_ids` is given.
    pub validation_units: usize,
    /// Exactly these units are held out (for k-fold evaluation by unit).
    pub validation_unit_ids: Option<Vec<String>>,
    /// Folds by unit for the out-of-fold calibration (at least 2).
    pub calibration_folds: usize,
    /// Units that are one draw for the interval's calibration: unit id → group name (a
    /// factory machine's successive runs are one machine). Units not named are their own
    /// group. The rows of a group are correlated, so the interval counts groups, not rows.
    pub calibration_groups: Option<BTreeMap<String, String>>,
    /// Interval bins by predicted value, and the fewest calibration points per bin.
    pub interval_bins: usize,
    pub interval_min_bin_points: usize,
    /// Cut points per validation unit for the truncated-history metrics.
    pub truncations_per_unit: usize,
    /// Shortest cut history, in rows.
    pub min_history_rows: usize,
    /// Fit on every k-th row of each training unit, counting back from its last row
    /// (1: every row). Consecutive hourly rows carry nearly the same information, so a
    /// stride keeps long factory histories within memory at little cost in accuracy.
    pub training_row_stride: usize,
    /// Milliseconds since the Unix epoch, recorded in the model.
    pub created_at_ms: i64,
    /// Name of the time unit, recorded in the model.
    pub time_unit: String,
    pub features: FeatureConfig,
    pub booster: BoosterParams,
    /// When a prediction means "due", recorded in the model (its horizon is also the one
    /// of each prediction's failure probability); `None`: the model says nothing.
    #[serde(default)]
    pub alert: Option<AlertRule>,
}

impl Default for TrainOptions {
    fn default() -> Self {
        TrainOptions {
            rul_cap: Some(125.0),
            seed: 0,
            interval_level: 0.9,
            validation_units: 20,
            validation_unit_ids: None,
            calibration_folds: 5,
            calibration_groups: None,
            interval_bins: 5,
            interval_min_bin_points: 200,
            truncations_per_unit: 10,
            min_history_rows: 30,
            training_row_stride: 1,
            created_at_ms: 0,
            time_unit: "cycles".into(),
            features: FeatureConfig::default(),
            booster: BoosterParams::default(),
            alert: None,
        }
    }
}

impl TrainOptions {
    /// Checks every option; training calls this first.
    pub fn validate(&self) -> Result<(), Error> {
        let invalid = |name: &'static str, reason: String| Err(Error::InvalidOption { name, reason });
        if let Some(cap) = self.rul_cap
            && !(cap.is_finite() && cap > 0.0)
        {
            return invalid("rul_cap", format!("{cap} is not a positive finite number"));
        }
        check_level(self.interval_level)?;
        if self.calibration_folds < 2 {
            return invalid("calibration_folds", "at least 2 folds are needed".into());
        }
        if self.training_row_stride == 0 {
            return invalid("training_row_stride", "the stride is at least 1".into());
        }
        if self.interval_bins == 0 {
            return invalid("interval_bins", "at least 1 bin is needed".into());
        }
        self.features.validate()?;
        if let Some(rule) = &self.alert {
            rule.validate()?;
        }
        let b = &self.booster;
        if b.iterations == 0 || b.iterations > MAX_ITERATIONS {
            return invalid("booster.iterations", format!("give 1 to {MAX_ITERATIONS}"));
        }
        if !(b.learning_rate.is_finite() && b.learning_rate > 0.0 && b.learning_rate <= 1.0) {
            return invalid("booster.learning_rate", format!("{} is not in (0, 1]", b.learning_rate));
        }
        if b.max_depth == 0 || b.max_depth > 16 {
            return invalid("booster.max_depth", format!("{} is not in 1..=16", b.max_depth));
        }
        for (name, v) in [("booster.subsample", b.subsample), ("booster.colsample", b.colsample)] {
            if !(v.is_finite() && v > 0.0 && v <= 1.0) {
                return invalid(name, format!("{v} is not in (0, 1]"));
            }
        }
        for (name, v) in [("booster.min_leaf_weight", b.min_leaf_weight), ("booster.l2", b.l2)] {
            if !(v.is_finite() && v >= 0.0) {
                return invalid(name, format!("{v} is not a finite number ≥ 0"));
            }
        }
        if !(2..=255).contains(&b.nbins) {
            return invalid("booster.nbins", format!("{} is not in 2..=255", b.nbins));
        }
        Ok(())
    }
}

/// One validation prediction on a cut history, next to the truth.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ValidationPoint {
    pub unit: String,
    /// Time of the last row of the cut history.
    pub time: f64,
    pub predicted_rul: f64,
    pub lower: f64,
    pub upper: f64,
    /// The true (capped) remaining life.
    pub actual_rul: f64,
    /// The true remaining life as given (uncapped); `None` when the run was censored.
    #[serde(default)]
    pub actual_rul_as_given: Option<f64>,
}

/// What training did, beyond what the model records.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainReport {
    /// Units in the input.
    pub units: usize,
    /// Rows in the input.
    pub rows: usize,
    /// Labelled rows of the training units (what the trees were fitted on).
    pub training_rows: usize,
    /// Out-of-fold accuracy on the training units (what the interval was calibrated on).
    pub out_of_fold: Option<Accuracy>,
    /// Predictions on the cut validation histories.
    pub validation_points: Vec<ValidationPoint>,
    pub metrics: Option<ValidationMetrics>,
}

/// Trains a model on unit histories with known run ends.
pub fn train(set: &TrainingSet, options: &TrainOptions) -> Result<(Model, TrainReport), Error> {
    options.validate()?;
    let table = set.table();
    let n_units = table.units().len();
    let mut rng = ChaCha8Rng::seed_from_u64(options.seed);
    let mut order: Vec<usize> = (0..n_units).collect();
    order.shuffle(&mut rng);
    let mut validation: Vec<usize> = match &options.validation_unit_ids {
        Some(ids) => ids
            .iter()
            .map(|id| {
                table.units().iter().position(|u| u.id() == id).ok_or_else(|| Error::InvalidOption {
                    name: "validation_unit_ids",
                    reason: format!("unit `{id}` is not in the input"),
                })
            })
            .collect::<Result<_, _>>()?,
        None => order[..options.validation_units.min(n_units)].to_vec(),
    };
    validation.sort_unstable();
    validation.dedup();
    let training: Vec<usize> = (0..n_units).filter(|u| validation.binary_search(u).is_err()).collect();
    if training.len() < 2 {
        return Err(Error::TooFewUnits {
            what: "left for training after the validation split",
            found: training.len(),
            needed: 2,
        });
    }

    let train_set = set.subset(&training);
    let feature_set = FeatureSet::fit(train_set.table(), options.features.clone())?;
    let rows = TrainingRows::of(&feature_set, &train_set, options)?;
    let x = rows.all.take(&rows.fit);
    let y: Vec<f64> = rows.fit.iter().map(|&i| rows.label[i].unwrap_or(f64::NAN)).collect();
    if y.is_empty() {
        return Err(Error::NoTrainingRows);
    }

    // Out-of-fold predictions by unit folds, in the shuffled order so folds mix units: the
    // trees of the other folds predict every calibration row of a fold's units.
    let folds = options.calibration_folds.min(training.len());
    let mut fold_of_unit = vec![0usize; training.len()];
    let mut shuffled: Vec<usize> = (0..training.len()).collect();
    shuffled.shuffle(&mut rng);
    for (k, &u) in shuffled.iter().enumerate() {
        fold_of_unit[u] = k % folds;
    }
    let fold_of_row = |i: usize| fold_of_unit[rows.unit[i]];
    let mut oof = vec![f64::NAN; rows.unit.len()];
    for fold in 0..folds {
        let fit: Vec<usize> = rows.fit.iter().copied().filter(|&i| fold_of_row(i) != fold).collect();
        let held: Vec<usize> = rows.calibrate.iter().copied().filter(|&i| fold_of_row(i) == fold).collect();
        if fit.is_empty() || held.is_empty() {
            continue;
        }
        let fit_y: Vec<f64> = fit.iter().map(|&i| rows.label[i].unwrap_or(f64::NAN)).collect();
        let booster =
            fit_booster(&rows.all.take(&fit), &fit_y, &options.booster, options.seed.wrapping_add(1 + fold as u64))?;
        let predicted = raw_predictions(&booster, &rows.all.take(&held), options.rul_cap);
        for (&i, p) in held.iter().zip(predicted) {
            oof[i] = p;
        }
    }
    let scored: Vec<usize> = rows.calibrate.iter().copied().filter(|&i| !oof[i].is_nan()).collect();
    let group_of_unit = calibration_groups(&train_set, options.calibration_groups.as_ref());
    let calibration: Vec<CalibrationPoint> = scored
        .iter()
        .map(|&i| CalibrationPoint { predicted: oof[i], truth: rows.remaining[i], unit: group_of_unit[rows.unit[i]] })
        .collect();
    let interval = IntervalCalibration::fit(
        &calibration,
        options.interval_level,
        options.interval_bins,
        options.interval_min_bin_points,
    )?;

    let booster = fit_booster(&x, &y, &options.booster, options.seed)?;
    let unit_ids =
        |units: &[usize]| -> Vec<String> { units.iter().map(|&u| table.units()[u].id().to_string()).collect() };
    let mut model = Model::assemble(
        feature_set,
        Target { rul_cap: options.rul_cap, time_unit: options.time_unit.clone() },
        interval,
        TrainingMetadata {
            seed: options.seed,
            created_at_ms: options.created_at_ms,
            units: training.len(),
            rows: y.len(),
            training_units: unit_ids(&training),
            validation_units: unit_ids(&validation),
            calibration_folds: folds,
            booster: options.booster.clone(),
        },
        options.alert,
        booster,
    );
    let out_of_fold = {
        let points: Vec<Scored> = scored
            .iter()
            .filter_map(|&i| {
                let actual = rows.label[i]?;
                let (lower, upper) = model.bounds(oof[i]);
                Some(Scored { predicted: oof[i], lower, upper, actual })
            })
            .collect();
        Accuracy::of(&points, training.len())
    };

    let (metrics, validation_points) = if validation.is_empty() {
        (None, Vec::new())
    } else {
        let (metrics, points) = validate(&model, &set.subset(&validation), options, &mut rng)?;
        (Some(metrics), points)
    };
    model.set_metrics(metrics.clone());
    let report = TrainReport {
        units: n_units,
        rows: table.row_count(),
        training_rows: y.len(),
        out_of_fold,
        validation_points,
        metrics,
    };
    Ok((model, report))
}

/// The calibration group of each unit of `set`, as an index.
fn calibration_groups(set: &TrainingSet, groups: Option<&BTreeMap<String, String>>) -> Vec<usize> {
    let mut index: HashMap<&str, usize> = HashMap::new();
    set.table()
        .units()
        .iter()
        .map(|unit| {
            let name = groups.and_then(|g| g.get(unit.id())).map_or(unit.id(), String::as_str);
            let next = index.len();
            *index.entry(name).or_insert(next)
        })
        .collect()
}

/// The rows of the training units: features of every `training_row_stride`-th row, with
/// the capped label where it is known (what the trees fit) and the remaining life as
/// given (what the interval is calibrated against).
struct TrainingRows {
    all: FeatureMatrix,
    /// Per row of `all`: its unit, capped label and remaining life.
    unit: Vec<usize>,
    label: Vec<Option<f64>>,
    remaining: Vec<RemainingLife>,
    /// Rows with a label: what the trees are fitted on.
    fit: Vec<usize>,
    /// Rows at least `min_history_rows` into their unit's history (a shorter unit's last
    /// row): the cut histories the interval is calibrated on, censored runs included.
    calibrate: Vec<usize>,
}

impl TrainingRows {
    fn of(feature_set: &FeatureSet, set: &TrainingSet, options: &TrainOptions) -> Result<TrainingRows, Error> {
        let all = feature_set.matrix(set.table(), Rows::Stride(options.training_row_stride))?;
        let n = all.origin.len();
        let mut rows = TrainingRows {
            unit: Vec::with_capacity(n),
            label: Vec::with_capacity(n),
            remaining: Vec::with_capacity(n),
            fit: Vec::new(),
            calibrate: Vec::new(),
            all: FeatureMatrix { data: Vec::new(), rows: 0, cols: 0, origin: Vec::new() },
        };
        for (i, &(u, r)) in all.origin.iter().enumerate() {
            let time = set.table().units()[u].times()[r];
            let end = set.ends()[u];
            let label = end.label(time, options.rul_cap);
            rows.unit.push(u);
            rows.label.push(label);
            rows.remaining.push(end.remaining(time));
            if label.is_some() {
                rows.fit.push(i);
            }
            // A unit shorter than that still calibrates with its last rows.
            let len = set.table().units()[u].len();
            if r + 1 >= options.min_history_rows.min(len) {
                rows.calibrate.push(i);
            }
        }
        rows.all = all;
        Ok(rows)
    }
}

fn fit_booster(x: &FeatureMatrix, y: &[f64], params: &BoosterParams, seed: u64) -> Result<GradientBooster, Error> {
    let data = forust_ml::Matrix::new(&x.data, x.rows, x.cols);
    let mut booster = GradientBooster::default()
        .set_objective_type(ObjectiveType::SquaredLoss)
        .set_iterations(params.iterations)
        .set_learning_rate(params.learning_rate as f32)
        .set_max_depth(params.max_depth)
        .set_min_leaf_weight(params.min_leaf_weight as f32)
        .set_subsample(params.subsample as f32)
        .set_colsample_bytree(params.colsample)
        .set_l2(params.l2 as f32)
        .set_nbins(params.nbins)
        .set_seed(seed)
        .set_parallel(false)
        .set_initialize_base_score(true);
    let weights = vec![1.0; y.len()];
    booster.fit(&data, y, &weights, None).map_err(|e| Error::Training(e.to_string()))?;
    Ok(booster)
}

/// Metrics on the validation units: every labelled row, and random cuts.
fn validate(
    model: &Model,
    set: &TrainingSet,
    options: &TrainOptions,
    rng: &mut ChaCha8Rng,
) -> Result<(ValidationMetrics, Vec<ValidationPoint>), Error> {
    let table = set.table();
    // Features are causal, so the prediction at row r of the full history is the
    // prediction for the history cut at r: one pass serves both protocols.
    let every = model.predict_every_row(table)?;
    let mut every_row = Vec::new();
    let mut cuts = Vec::new();
    let mut offset = 0;
    for (u, unit) in table.units().iter().enumerate() {
        let rows = &every[offset..offset + unit.len()];
        offset += unit.len();
        let mut eligible = Vec::new();
        let end = set.ends()[u];
        for (r, p) in rows.iter().enumerate() {
            let Some(actual) = end.label(p.time, options.rul_cap) else {
                continue;
            };
            every_row.push(Scored { predicted: p.predicted_rul, lower: p.lower, upper: p.upper, actual });
            if r + 1 >= options.min_history_rows {
                eligible.push((r, actual));
            }
        }
        let picked: Vec<_> = eligible.choose_multiple(rng, options.truncations_per_unit).copied().collect();
        for (r, actual) in picked {
            let p = &rows[r];
            let remaining = end.remaining(p.time);
            cuts.push(ValidationPoint {
                unit: unit.id().to_string(),
                time: p.time,
                predicted_rul: p.predicted_rul,
                lower: p.lower,
                upper: p.upper,
                actual_rul: actual,
                actual_rul_as_given: (!remaining.censored).then_some(remaining.value),
            });
        }
    }
    cuts.sort_by(|a, b| a.unit.cmp(&b.unit).then(a.time.total_cmp(&b.time)));
    let units = table.units().len();
    let truncated: Vec<Scored> = cuts
        .iter()
        .map(|c| Scored { predicted: c.predicted_rul, lower: c.lower, upper: c.upper, actual: c.actual_rul })
        .collect();
    let cut = cut_figures(&cuts, options.rul_cap);
    let metrics = ValidationMetrics {
        interval_level: options.interval_level,
        truncated: Accuracy::of(&truncated, units),
        truncations_per_unit: options.truncations_per_unit,
        min_history_rows: options.min_history_rows,
        every_row: Accuracy::of(&every_row, units),
        truncated_as_given: cut.as_given,
        truncated_by_bucket: cut.by_bucket,
    };
    Ok((metrics, cuts))
}

/// Figures of cut-history predictions against the truth as given (the cuts of failed
/// runs), overall and by bucket of predicted life.
#[derive(Debug, Clone, PartialEq)]
pub struct CutFigures {
    pub as_given: Option<Accuracy>,
    pub by_bucket: Vec<BucketAccuracy>,
}

/// [`CutFigures`] of validation points (from one model or pooled over several folds).
pub fn cut_figures(points: &[ValidationPoint], rul_cap: Option<f64>) -> CutFigures {
    let mut unit_index: HashMap<&str, usize> = HashMap::new();
    let mut scored = Vec::new();
    let mut unit_of = Vec::new();
    for p in points {
        let Some(actual) = p.actual_rul_as_given else { continue };
        let next = unit_index.len();
        unit_of.push(*unit_index.entry(p.unit.as_str()).or_insert(next));
        scored.push(Scored { predicted: p.predicted_rul, lower: p.lower, upper: p.upper, actual });
    }
    let predicted: Vec<f64> = scored.iter().map(|s| s.predicted).collect();
    CutFigures {
        as_given: Accuracy::of(&scored, unit_index.len()),
        by_bucket: by_bucket(&scored, &unit_of, bucket_edges(rul_cap, &predicted)),
    }
}
