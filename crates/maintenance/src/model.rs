//! A trained model: feature set, boosted trees, interval calibration, training metadata and
//! evaluation metrics, stored as one versioned JSON document.

use forust_ml::{GradientBooster, Matrix};
use serde::{Deserialize, Serialize};

use crate::alert::AlertRule;
use crate::error::Error;
use crate::features::{FeatureMatrix, FeatureSet, MAX_FEATURE_CELLS, Rows};
use crate::interval::{CalibrationTruth, IntervalCalibration};
use crate::metrics::{Accuracy, BucketAccuracy};
use crate::table::HistoryTable;

/// Version of the model file format this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;
/// The `kind` field of a model file, so another JSON document is refused by name.
pub const MODEL_KIND: &str = "floorwatch.maintenance.rul";

/// One prediction: remaining useful life of a unit as of `time`, with its interval.
/// All values are in the table's time unit and at least 0; with a RUL cap, a prediction
/// equal to the cap means "at least the cap", while the interval is about the true
/// remaining life and may reach past the cap.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Prediction {
    pub unit: String,
    /// Time of the last row the prediction used.
    pub time: f64,
    pub predicted_rul: f64,
    pub lower: f64,
    pub upper: f64,
    /// The probability that the unit fails within the model's alert horizon
    /// ([`Model::alert`]); `None` when the model has no alert rule or no percentiles.
    #[serde(default)]
    pub failure_probability: Option<f64>,
}

/// What the model predicts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Target {
    /// Remaining life is capped at this value in training and prediction (`None`: uncapped).
    pub rul_cap: Option<f64>,
    /// Name of the time unit (`cycles`, `days`), for people reading the model.
    pub time_unit: String,
}

/// Hyper-parameters of the boosted trees.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BoosterParams {
    /// Number of trees.
    pub iterations: usize,
    pub learning_rate: f64,
    pub max_depth: usize,
    /// Minimum number of training rows in a leaf (the hessian sum for squared loss).
    pub min_leaf_weight: f64,
    /// Share of rows each tree is grown on.
    pub subsample: f64,
    /// Share of features each tree may use.
    pub colsample: f64,
    /// L2 penalty on leaf weights.
    pub l2: f64,
    /// Histogram bins per feature (at most 255).
    pub nbins: u16,
}

impl Default for BoosterParams {
    fn default() -> Self {
        BoosterParams {
            iterations: 300,
            learning_rate: 0.05,
            max_depth: 5,
            min_leaf_weight: 20.0,
            subsample: 0.8,
            colsample: 0.5,
            l2: 1.0,
            nbins: 64,
        }
    }
}

/// How, when and on what the model was trained.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainingMetadata {
    pub seed: u64,
    /// Passed in by the caller (milliseconds since the Unix epoch); never read from a clock.
    pub created_at_ms: i64,
    /// Units the trees were fitted on.
    pub units: usize,
    /// Labelled rows the trees were fitted on.
    pub rows: usize,
    pub training_units: Vec<String>,
    /// Units held out for the metrics.
    pub validation_units: Vec<String>,
    /// Folds (by unit) of the out-of-fold predictions the interval was calibrated on.
    pub calibration_folds: usize,
    pub booster: BoosterParams,
}

/// Accuracy on the held-out validation units.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ValidationMetrics {
    /// Nominal interval level the coverage is to be compared with.
    pub interval_level: f64,
    /// Each validation history cut at random rows (at least `min_history_rows` long), one
    /// prediction per cut at its last row: the shape of the usual C-MAPSS test protocol.
    /// Truth capped at the RUL cap, as the literature scores C-MAPSS.
    pub truncated: Option<Accuracy>,
    pub truncations_per_unit: usize,
    pub min_history_rows: usize,
    /// A prediction at every labelled row of every validation unit.
    pub every_row: Option<Accuracy>,
    /// The same cuts against the true remaining life as given (uncapped), on the cuts whose
    /// run ended in a failure (a censored run's remaining life is unknown): what the
    /// interval promises to cover.
    #[serde(default)]
    pub truncated_as_given: Option<Accuracy>,
    /// The cuts with a known remaining life by bucket of predicted life (late, mid, early),
    /// against the truth as given.
    #[serde(default)]
    pub truncated_by_bucket: Vec<BucketAccuracy>,
}

/// Everything about a model except its trees: what a model registry row shows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelSummary {
    pub format_version: u32,
    pub feature_set: FeatureSet,
    pub target: Target,
    pub interval: IntervalCalibration,
    pub training: TrainingMetadata,
    pub metrics: Option<ValidationMetrics>,
    pub alert: Option<AlertRule>,
    /// Number of trees.
    pub trees: usize,
}

/// A trained remaining-useful-life model.
#[derive(Serialize, Deserialize)]
pub struct Model {
    kind: String,
    format_version: u32,
    feature_set: FeatureSet,
    target: Target,
    interval: IntervalCalibration,
    training: TrainingMetadata,
    metrics: Option<ValidationMetrics>,
    /// When a prediction of this model means "due" (files written before models carried
    /// one have none: the plant then uses the interval's lower bound).
    #[serde(default)]
    alert: Option<AlertRule>,
    booster: GradientBooster,
}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Model")
            .field("format_version", &self.format_version)
            .field("feature_set", &self.feature_set)
            .field("target", &self.target)
            .field("interval", &self.interval)
            .field("training", &self.training)
            .field("metrics", &self.metrics)
            .field("alert", &self.alert)
            .field("trees", &self.booster.trees.len())
            .finish()
    }
}

/// Only the fields needed to decide whether a document is a model this build can read.
#[derive(Deserialize)]
struct Header {
    kind: Option<String>,
    format_version: Option<u64>,
}

impl Model {
    pub(crate) fn assemble(
        feature_set: FeatureSet,
        target: Target,
        interval: IntervalCalibration,
        training: TrainingMetadata,
        alert: Option<AlertRule>,
        booster: GradientBooster,
    ) -> Model {
        Model {
            kind: MODEL_KIND.into(),
            format_version: FORMAT_VERSION,
            feature_set,
            target,
            interval,
            training,
            metrics: None,
            alert,
            booster,
        }
    }

    pub(crate) fn set_metrics(&mut self, metrics: Option<ValidationMetrics>) {
        self.metrics = metrics;
    }

    /// The file format version.
    pub fn format_version(&self) -> u32 {
        self.format_version
    }

    /// Input columns, dropped columns and derived features.
    pub fn feature_set(&self) -> &FeatureSet {
        &self.feature_set
    }

    /// RUL cap and time unit.
    pub fn target(&self) -> &Target {
        &self.target
    }

    /// The interval calibration (level, bins).
    pub fn interval(&self) -> &IntervalCalibration {
        &self.interval
    }

    /// Seed, creation time, units, rows, hyper-parameters.
    pub fn training(&self) -> &TrainingMetadata {
        &self.training
    }

    /// Accuracy on held-out units, if any were held out.
    pub fn metrics(&self) -> Option<&ValidationMetrics> {
        self.metrics.as_ref()
    }

    /// When a prediction of this model means "due within the horizon", if the model says.
    pub fn alert(&self) -> Option<&AlertRule> {
        self.alert.as_ref()
    }

    /// Everything but the trees, for a registry row or a report.
    pub fn summary(&self) -> ModelSummary {
        ModelSummary {
            format_version: self.format_version,
            feature_set: self.feature_set.clone(),
            target: self.target.clone(),
            interval: self.interval.clone(),
            training: self.training.clone(),
            metrics: self.metrics.clone(),
            alert: self.alert,
            trees: self.booster.trees.len(),
        }
    }

    /// Checks that input with these columns can be scored by this model.
    pub fn check_columns(&self, columns: &[String]) -> Result<(), Error> {
        self.feature_set.bind(columns).map(|_| ())
    }

    /// One prediction per unit, as of its last row.
    pub fn predict(&self, table: &HistoryTable) -> Result<Vec<Prediction>, Error> {
        table.check_non_empty()?;
        self.predict_rows(table, Rows::Last)
    }

    /// A prediction at every row of every unit, each using only that row and earlier ones:
    /// how the estimate moved over the history.
    pub fn predict_every_row(&self, table: &HistoryTable) -> Result<Vec<Prediction>, Error> {
        table.check_non_empty()?;
        self.predict_rows(table, Rows::Every)
    }

    /// A prediction at each row of every unit within `span` of the unit's last row (the
    /// last included): what an alert that must persist looks at. Rows further back are
    /// only read as the features' history.
    pub fn predict_recent(&self, table: &HistoryTable, span: f64) -> Result<Vec<Prediction>, Error> {
        table.check_non_empty()?;
        if !(span.is_finite() && span >= 0.0) {
            return Err(Error::InvalidOption { name: "span", reason: format!("{span} is not a finite length ≥ 0") });
        }
        self.predict_rows(table, Rows::Recent(span))
    }

    /// Features are computed a group of units at a time, so a long table (a whole plant
    /// scored hour by hour) needs a quarter of the feature memory limit at most.
    fn predict_rows(&self, table: &HistoryTable, rows: Rows) -> Result<Vec<Prediction>, Error> {
        let budget = (MAX_FEATURE_CELLS / 4 / self.feature_set.features.len().max(1)).max(1);
        let units = table.units();
        let mut out = Vec::new();
        let mut start = 0;
        while start < units.len() {
            let mut end = start;
            let mut count = 0;
            while end < units.len() && (end == start || count + units[end].len() <= budget) {
                count += units[end].len();
                end += 1;
            }
            let mut index = 0;
            let chunk = table.select(|unit| {
                let keep = (start..end).contains(&index);
                index += 1;
                keep.then_some(unit.len())
            });
            let m = self.feature_set.matrix(&chunk, rows)?;
            out.extend(self.predictions(&chunk, &m));
            start = end;
        }
        Ok(out)
    }

    fn predictions(&self, table: &HistoryTable, m: &FeatureMatrix) -> Vec<Prediction> {
        let raw = self.point_predictions(m);
        m.origin
            .iter()
            .zip(raw)
            .map(|(&(u, r), predicted)| {
                let unit = &table.units()[u];
                let (lower, upper) = self.bounds(predicted);
                Prediction {
                    unit: unit.id().to_string(),
                    time: unit.times()[r],
                    predicted_rul: predicted,
                    lower,
                    upper,
                    failure_probability: self.failure_probability(predicted),
                }
            })
            .collect()
    }

    /// Point predictions, clamped to `[0, cap]`.
    pub(crate) fn point_predictions(&self, m: &FeatureMatrix) -> Vec<f64> {
        raw_predictions(&self.booster, m, self.target.rul_cap)
    }

    /// The interval around a clamped point prediction: at least 0 and containing the
    /// prediction. Calibrated on the truth as given, the upper bound may exceed the cap (a
    /// young unit's life does); a file calibrated on the capped target stops at the cap.
    pub(crate) fn bounds(&self, predicted: f64) -> (f64, f64) {
        let (lo, hi) = self.interval.offsets(predicted);
        let lower = (predicted + lo).max(0.0).min(predicted);
        let mut upper = predicted + hi;
        if let (Some(cap), CalibrationTruth::Capped) = (self.target.rul_cap, self.interval.truth) {
            upper = upper.min(cap);
        }
        (lower, upper.max(predicted))
    }

    /// The probability of failing within the alert horizon for a point prediction.
    pub(crate) fn failure_probability(&self, predicted: f64) -> Option<f64> {
        let rule = self.alert.as_ref()?;
        self.interval.probability_within(predicted, rule.horizon)
    }

    /// A short name for this exact model: `rul-` and the first 12 hex digits of the SHA-256
    /// of its JSON document, so the same model always gets the same version.
    pub fn version(&self) -> Result<String, Error> {
        Ok(version_of_json(&self.to_json()?))
    }

    /// The model as a JSON document.
    pub fn to_json(&self) -> Result<String, Error> {
        serde_json::to_string(self).map_err(|e| Error::ModelFormat(e.to_string()))
    }

    /// Reads a model written by [`Model::to_json`], refusing other documents, other format
    /// versions and models whose parts do not fit together.
    pub fn from_json(text: &str) -> Result<Model, Error> {
        let header: Header =
            serde_json::from_str(text).map_err(|e| Error::ModelFormat(format!("not a JSON object: {e}")))?;
        if header.kind.as_deref() != Some(MODEL_KIND) {
            return Err(Error::ModelFormat(format!(
                "not a maintenance model (kind {:?}, expected {MODEL_KIND:?})",
                header.kind.unwrap_or_default()
            )));
        }
        match header.format_version {
            Some(v) if v == u64::from(FORMAT_VERSION) => {}
            Some(found) => {
                return Err(Error::UnsupportedModelVersion { found, supported: FORMAT_VERSION });
            }
            None => return Err(Error::ModelFormat("no format_version".into())),
        }
        let model: Model = serde_json::from_str(text).map_err(|e| Error::ModelFormat(e.to_string()))?;
        model.validate().map_err(Error::ModelFormat)?;
        Ok(model)
    }

    /// Consistency checks on a model read from outside: anything that could make
    /// prediction index out of range or loop is refused here.
    fn validate(&self) -> Result<(), String> {
        self.feature_set.config.validate().map_err(|e| e.to_string())?;
        if self.feature_set.derived_names() != self.feature_set.features {
            return Err("feature names do not match the columns and windows".into());
        }
        for d in &self.feature_set.dropped {
            if !self.feature_set.columns.contains(&d.name) {
                return Err(format!("dropped column `{}` is not an input column", d.name));
            }
        }
        if let Some(cap) = self.target.rul_cap
            && !(cap.is_finite() && cap > 0.0)
        {
            return Err(format!("RUL cap {cap} is not positive"));
        }
        self.interval.validate()?;
        if let Some(rule) = &self.alert {
            rule.validate().map_err(|e| e.to_string())?;
        }
        validate_booster(&self.booster, self.feature_set.features.len())
    }
}

/// The version of a model document, as [`Model::version`] names it.
pub fn version_of_json(json: &str) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(json.as_bytes());
    let hex: String = digest.iter().take(6).map(|b| format!("{b:02x}")).collect();
    format!("rul-{hex}")
}

pub(crate) fn raw_predictions(booster: &GradientBooster, m: &FeatureMatrix, cap: Option<f64>) -> Vec<f64> {
    if m.rows == 0 {
        return Vec::new();
    }
    let matrix = Matrix::new(&m.data, m.rows, m.cols);
    booster
        .predict(&matrix, false)
        .into_iter()
        .map(|p| {
            let p = if p.is_finite() { p.max(0.0) } else { 0.0 };
            cap.map_or(p, |c| p.min(c))
        })
        .collect()
}

fn validate_booster(booster: &GradientBooster, features: usize) -> Result<(), String> {
    if booster.trees.is_empty() {
        return Err("the model has no trees".into());
    }
    if !booster.base_score.is_finite() {
        return Err("base score is not finite".into());
    }
    if booster.prediction_iteration.is_some_and(|n| n > booster.trees.len()) {
        return Err("prediction iteration beyond the number of trees".into());
    }
    for (t, tree) in booster.trees.iter().enumerate() {
        if tree.nodes.is_empty() {
            return Err(format!("tree {t} has no nodes"));
        }
        let len = tree.nodes.len();
        for (i, node) in tree.nodes.iter().enumerate() {
            if node.is_leaf {
                if !node.weight_value.is_finite() {
                    return Err(format!("tree {t} node {i} has a non-finite weight"));
                }
                continue;
            }
            // Children after their parent: prediction walks forward and always ends.
            let child_ok = |c: usize| c > i && c < len;
            if node.split_feature >= features
                || !child_ok(node.left_child)
                || !child_ok(node.right_child)
                || !child_ok(node.missing_node)
            {
                return Err(format!("tree {t} node {i} is malformed"));
            }
        }
    }
    Ok(())
}
