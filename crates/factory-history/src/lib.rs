//! Predictive maintenance on the factory: a recorded simulator run (`floorwatch simulate
//! --backfill … --output DIR`) turned into per-machine hourly feature rows and runs that
//! end in a failure or are censored by a service, a days-until-failure model trained on
//! it, and the evaluation of predictions against the failures that actually happened.
//!
//! The hourly rows come from `maintenance::FactoryColumns`, the same code the plant's
//! scorer runs over its `sensor_hour` read model, so a model sees the same features in
//! training and in service.
//!
//! * [`read_history`]: recording → [`FactoryHistory`] (rows, stops, [`Run`]s).
//! * [`train_factory`]: recording → model and [`FactoryTrainReport`] (validation on
//!   held-out machines, and their hour-by-hour evaluation).
//! * [`evaluate_factory`]: recording (and optionally a model) → [`FactoryEvaluation`];
//!   [`evaluate_issued`]: a plant's issued predictions and a recording's ground truth.
//! * [`cli`]: the `floorwatch train --factory` and `floorwatch eval maintenance` commands'
//!   work, ready to call.
//!
//! Reading a recording is the only IO; it takes no clock (creation times are options)
//! and every random choice comes from the seed.

pub mod cli;
mod error;
mod evaluate;
mod history;
mod train;

pub use error::Error;
pub use evaluate::{
    FactoryEvaluation, IssuedPrediction, MaintenanceEvaluation, TypeRecord, evaluate_factory, evaluate_issued,
    evaluate_model, read_outcomes, trade_off_rules,
};
pub use history::{
    FactoryHistory, MAX_READINGS, MachineHistory, ReadOptions, Run, RunEndKind, Stop, StopKind, read_history,
};
pub use train::{FactoryTrainOptions, FactoryTrainReport, held_out_machines, train_factory, train_on_history};
