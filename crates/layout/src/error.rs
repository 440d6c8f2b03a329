//! What can be wrong with a layout file or a scaling request.

use thiserror::Error;

#[derive(Debug, Error)]
pub enum LayoutError {
    /// Not TOML, a wrong type, a missing key, or a key the layout does not know
    /// (the message names the key and its line).
    #[error("plant layout: {0}")]
    Parse(#[from] toml::de::Error),
    #[error("plant layout needs {0}")]
    Missing(&'static str),
    #[error("plant layout: {0} must be at least 1, got 0")]
    Zero(String),
    #[error("plant layout: {what} must be between {min} and {max}, got {got}")]
    TooMany { what: String, got: u64, min: u64, max: u64 },
    #[error("plant layout: {what} has normal_min {min} not below normal_max {max}")]
    BadRange { what: String, min: f64, max: f64 },
    #[error("plant layout: {what}: {field} must be {rule}, got {value}")]
    BadNumber { what: String, field: &'static str, value: f64, rule: &'static str },
    #[error("plant layout: duplicate {what} \"{name}\"")]
    Duplicate { what: &'static str, name: String },
    #[error("plant layout: line_machines names machine type \"{0}\", which no [[machine_type]] defines")]
    UnknownMachineType(String),
    #[error("plant layout: {what} \"{name}\" is not allowed: {rule}")]
    BadName { what: &'static str, name: String, rule: &'static str },
    #[error("plant layout: {sensors} sensors cannot fill {lines} lines (each line needs at least one sensor)")]
    TooFewSensors { sensors: u32, lines: u32 },
}
