//! Predictive maintenance: remaining useful life (RUL) with an uncertainty interval, trained
//! from unit histories and scored on partial ones.
//!
//! The input is always a [`HistoryTable`]: per unit (an engine, a machine), rows of a time
//! index and numeric feature columns since the unit was new or last serviced. A run-to-failure
//! CSV (`unit,cycle,…`) is read into one by [`read_histories`]; the factory builds one from
//! per-machine hourly aggregates of its sensors, indexed in days, so the same features and
//! model serve both. Training ([`train`], [`train_csv`]) fits gradient-boosted trees on
//! features of each row's recent history, calibrates an interval on out-of-fold residuals,
//! and measures the result on held-out units; the [`Model`] is a versioned JSON document
//! carrying its feature set, training metadata, metrics and the [`AlertRule`] that makes a
//! unit "due". [`Model::predict`] and [`predict_csv`] score the last row of each unit, each
//! prediction with its interval (about the true remaining life) and its probability of
//! failing within the rule's horizon. [`TrackRecord`] folds predictions issued over time
//! and the failures and services that followed into per-unit, per-group and per-version
//! figures; [`lead_time_report`] is its total.
//!
//! This crate does no IO of its own (readers and writers are passed in), reads no clock
//! (creation time is an option) and keeps no global state; every random choice comes from
//! the seed in [`TrainOptions`].

mod alert;
mod cmapss;
mod error;
mod factory;
mod features;
mod interval;
mod lead_time;
mod metrics;
mod model;
mod run_csv;
mod table;
mod track_record;
mod train;

pub use alert::{AlertOn, AlertRule};
pub use cmapss::{cmapss_to_csv, column_names as cmapss_column_names};
pub use error::{Error, Location};
pub use factory::{
    DAY_MS, FactoryColumns, GROUP_STATS, HOUR_MS, MAX_MACHINE_SENSORS, MachineSchema, SensorHour, days_of_ms,
    hour_of_ms, hour_row_time,
};
pub use features::{DropReason, DroppedColumn, FeatureConfig, FeatureSet, MAX_FEATURE_CELLS, MAX_WINDOWS};
pub use interval::{CalibrationTruth, IntervalBin, IntervalCalibration};
pub use lead_time::{
    EarlyWarning, LeadError, LeadTimeOptions, LeadTimeReport, Outcome, OutcomeKind, lead_time_report, report_of,
    track_predictions,
};
pub use metrics::{Accuracy, BucketAccuracy, Scored, bucket_edges, by_bucket, nasa_score};
pub use model::{
    BoosterParams, FORMAT_VERSION, MODEL_KIND, Model, ModelSummary, Prediction, Target, TrainingMetadata,
    ValidationMetrics, version_of_json,
};
pub use run_csv::{CYCLE_COLUMN, PREDICTION_HEADER, UNIT_COLUMN, predict_csv, read_histories, train_csv};
pub use table::{
    HistoryTable, MAX_COLUMNS, MAX_ROWS, MAX_UNIT_ID_BYTES, RemainingLife, RunEnd, TrainingSet, UnitHistory,
};
pub use track_record::{
    FailureRecord, LeadPrediction, MAX_TRACKED_LIFE, TrackChanges, TrackFigures, TrackOptions, TrackRecord, TrackScope,
    TrackedPrediction,
};
pub use train::{CutFigures, MAX_ITERATIONS, TrainOptions, TrainReport, ValidationPoint, cut_figures, train};
