//! The one error type of the crate: every way input, options or a model file can be wrong.

use std::fmt;

use thiserror::Error;

/// Where in the input a row-level problem is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Location {
    /// A line of a CSV or text file, 1-based (the header is line 1).
    Line(u64),
    /// A row of one unit pushed through the table API, 1-based within the unit.
    UnitRow(usize),
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Line(line) => write!(f, "line {line}"),
            Location::UnitRow(row) => write!(f, "row {row}"),
        }
    }
}

/// Everything that can go wrong when reading histories, training, or predicting.
///
/// Messages name the line (1-based, the header is line 1) and the column where the input
/// is at fault, so a user can find the cell. [`Error::code`] gives a stable short code for
/// callers that branch or show errors in a UI.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum Error {
    #[error("input is empty: expected a header line")]
    EmptyInput,
    #[error("header has no `{0}` column")]
    MissingColumn(String),
    #[error("header column {position} has an empty name")]
    EmptyColumnName { position: usize },
    #[error("column `{name}` appears twice in the header")]
    DuplicateColumn { name: String },
    #[error("no feature columns: the header has only `unit` and `cycle`")]
    NoFeatureColumns,
    #[error("too many columns: {found} (at most {max})")]
    TooManyColumns { found: usize, max: usize },
    #[error("input has a header but no data rows")]
    NoRows,
    #[error("too many rows (at most {max})")]
    TooManyRows { max: usize },
    #[error("line {line}: expected {expected} fields, found {found}")]
    FieldCount { line: u64, expected: usize, found: usize },
    #[error("line {line}, column `{column}`: `{value}` is not a number")]
    NotNumeric { line: u64, column: String, value: String },
    #[error("{at}, column `{column}`: `{value}` is not a finite number")]
    NotFinite { at: Location, column: String, value: String },
    #[error("line {line}, column `{column}`: a value is required")]
    MissingValue { line: u64, column: String },
    #[error("{at}: unit `{unit}` repeats {column} {time}; each {column} appears once per unit")]
    DuplicateTime { at: Location, unit: String, column: String, time: f64 },
    #[error("{at}: unit `{unit}` has {column} {time} after {previous}; {column} must increase within a unit")]
    DecreasingTime { at: Location, unit: String, column: String, time: f64, previous: f64 },
    #[error("line {line}: malformed CSV: {message}")]
    MalformedCsv { line: u64, message: String },
    #[error("reading input: {0}")]
    Read(#[source] std::io::Error),
    #[error("writing output: {0}")]
    Write(#[source] std::io::Error),
    #[error("{rows} rows × {features} features exceed {max} values; train with a larger row stride or fewer columns")]
    TooManyFeatureCells { rows: usize, features: usize, max: usize },
    #[error("unit `{unit}` has no rows")]
    UnitWithoutRows { unit: String },
    #[error("unit `{unit}` was started twice")]
    DuplicateUnit { unit: String },
    #[error("unit `{unit}` was not started before its rows")]
    UnknownUnit { unit: String },
    #[error("unit id is empty")]
    EmptyUnitId,
    #[error("unit `{unit}`: row has {found} values, the table has {expected} columns")]
    RowWidth { unit: String, expected: usize, found: usize },
    #[error("unit `{unit}`: run end {end} is before its last row at {last}")]
    EndBeforeLastRow { unit: String, end: f64, last: f64 },
    #[error("unit `{unit}` has no run end")]
    MissingRunEnd { unit: String },
    #[error(
        "feature set mismatch: the model was trained on columns [{expected}]; the input lacks [{missing}] and has unexpected [{unexpected}]"
    )]
    FeatureSetMismatch { expected: String, missing: String, unexpected: String },
    #[error("model file: unsupported format version {found} (this build reads version {supported})")]
    UnsupportedModelVersion { found: u64, supported: u32 },
    #[error("model file: {0}")]
    ModelFormat(String),
    #[error("invalid option `{name}`: {reason}")]
    InvalidOption { name: &'static str, reason: String },
    #[error("too few units: {found} {what}, at least {needed} needed")]
    TooFewUnits { what: &'static str, found: usize, needed: usize },
    #[error("no labelled training rows: every run is censored before the RUL cap")]
    NoTrainingRows,
    #[error("training the model failed: {0}")]
    Training(String),
    #[error("line {line}: C-MAPSS rows have 26 values, found {found}")]
    CmapssFieldCount { line: u64, found: usize },
}

impl Error {
    /// A stable, short, machine-readable code for this kind of error.
    pub fn code(&self) -> &'static str {
        match self {
            Error::EmptyInput => "empty_input",
            Error::MissingColumn(_) => "missing_column",
            Error::EmptyColumnName { .. } => "empty_column_name",
            Error::DuplicateColumn { .. } => "duplicate_column",
            Error::NoFeatureColumns => "no_feature_columns",
            Error::TooManyColumns { .. } => "too_many_columns",
            Error::NoRows => "no_rows",
            Error::TooManyRows { .. } => "too_many_rows",
            Error::FieldCount { .. } => "field_count",
            Error::NotNumeric { .. } => "not_numeric",
            Error::NotFinite { .. } => "not_finite",
            Error::MissingValue { .. } => "missing_value",
            Error::DuplicateTime { .. } => "duplicate_time",
            Error::DecreasingTime { .. } => "decreasing_time",
            Error::MalformedCsv { .. } => "malformed_csv",
            Error::Read(_) => "read",
            Error::Write(_) => "write",
            Error::TooManyFeatureCells { .. } => "too_many_feature_cells",
            Error::UnitWithoutRows { .. } => "unit_without_rows",
            Error::DuplicateUnit { .. } => "duplicate_unit",
            Error::UnknownUnit { .. } => "unknown_unit",
            Error::EmptyUnitId => "empty_unit_id",
            Error::RowWidth { .. } => "row_width",
            Error::EndBeforeLastRow { .. } => "end_before_last_row",
            Error::MissingRunEnd { .. } => "missing_run_end",
            Error::FeatureSetMismatch { .. } => "feature_set_mismatch",
            Error::UnsupportedModelVersion { .. } => "unsupported_model_version",
            Error::ModelFormat(_) => "model_format",
            Error::InvalidOption { .. } => "invalid_option",
            Error::TooFewUnits { .. } => "too_few_units",
            Error::NoTrainingRows => "no_training_rows",
            Error::Training(_) => "training",
            Error::CmapssFieldCount { .. } => "cmapss_field_count",
        }
    }
}
