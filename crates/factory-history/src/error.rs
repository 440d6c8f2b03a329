//! What can go wrong reading a recording, training on it or evaluating predictions.

use std::path::PathBuf;

use thiserror::Error;

#[derive(Debug, Error)]
#[non_exhaustive]
pub enum Error {
    #[error(transparent)]
    Output(#[from] simulator::OutputError),
    #[error("{0}: the recording did not finish (its manifest is not marked complete)")]
    Incomplete(PathBuf),
    #[error("the recording has no plants")]
    NoPlants,
    #[error("the recording has no plant {0}")]
    UnknownPlant(String),
    #[error(
        "plant {0} of the recording does not match the layout (other gateways or sensor count); pass the layout file it was simulated with"
    )]
    LayoutMismatch(String),
    #[error("layout: {0}")]
    Layout(#[from] layout::LayoutError),
    #[error("plant {plant}: readings file: {source}")]
    Replay { plant: String, source: Box<simulator::ReplayError> },
    #[error("plant {plant}: unreadable batch: {message}")]
    Batch { plant: String, message: String },
    #[error("ground truth: {0}")]
    GroundTruth(String),
    #[error("more than {0} readings in one recording")]
    TooManyReadings(u64),
    #[error(transparent)]
    Model(#[from] maintenance::Error),
    #[error("invalid option `{name}`: {reason}")]
    InvalidOption { name: &'static str, reason: String },
    #[error("too few machines: {0}")]
    TooFewMachines(String),
    #[error("reading {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("writing {path}: {source}")]
    Write { path: PathBuf, source: std::io::Error },
    #[error("writing JSON: {0}")]
    Json(String),
}

impl Error {
    /// A stable, short, machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            Error::Output(_) => "recording",
            Error::Incomplete(_) => "incomplete_recording",
            Error::NoPlants => "no_plants",
            Error::UnknownPlant(_) => "unknown_plant",
            Error::LayoutMismatch(_) => "layout_mismatch",
            Error::Layout(_) => "layout",
            Error::Replay { .. } | Error::Batch { .. } => "readings",
            Error::GroundTruth(_) => "ground_truth",
            Error::TooManyReadings(_) => "too_many_readings",
            Error::Model(e) => e.code(),
            Error::InvalidOption { .. } => "invalid_option",
            Error::TooFewMachines(_) => "too_few_machines",
            Error::Read { .. } => "read",
            Error::Write { .. } => "write",
            Error::Json(_) => "json",
        }
    }
}
