//! The error every front end receives: a small code to branch on and a sentence for the
//! user. It serializes as `{ "code": "...", "message": "..." }`.

use serde::Serialize;

use crate::cache::CacheError;
use crate::chart::ChartError;
use crate::commands::InvalidCommand;
use crate::config::ConfigError;
use crate::trend::WindowError;
use readmodel_contract::ReadError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// What the user typed or picked is not acceptable; the message says why.
    InvalidInput,
    /// No such machine, sensor or command.
    NotFound,
    /// No plant is configured yet.
    NotConfigured,
    /// No one is signed in, or the plant does not accept the token given.
    SignIn,
    /// The plant node could not be reached.
    Unreachable,
    /// The local cache could not be read or written.
    Cache,
    /// The plant database could not be reached or answered with an error.
    Database,
    /// The settings file could not be read or written.
    Settings,
    /// The demo factory could not be started.
    Demo,
    /// A chart could not be drawn or written.
    Chart,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{message}")]
pub struct AppError {
    pub code: ErrorCode,
    pub message: String,
}

impl AppError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> AppError {
        AppError { code, message: message.into() }
    }
}

impl From<CacheError> for AppError {
    fn from(e: CacheError) -> Self {
        AppError::new(ErrorCode::Cache, e.to_string())
    }
}

impl From<ReadError> for AppError {
    fn from(e: ReadError) -> Self {
        AppError::new(ErrorCode::Database, e.to_string())
    }
}

impl From<InvalidCommand> for AppError {
    fn from(e: InvalidCommand) -> Self {
        AppError::new(ErrorCode::InvalidInput, e.to_string())
    }
}

impl From<ConfigError> for AppError {
    fn from(e: ConfigError) -> Self {
        let code = match e {
            ConfigError::Invalid(_) | ConfigError::Parse { .. } => ErrorCode::InvalidInput,
            ConfigError::Read { .. } | ConfigError::Write { .. } => ErrorCode::Settings,
        };
        AppError::new(code, e.to_string())
    }
}

impl From<ChartError> for AppError {
    fn from(e: ChartError) -> Self {
        let code = match e {
            ChartError::Size { .. } | ChartError::Format { .. } => ErrorCode::InvalidInput,
            ChartError::Draw(_) | ChartError::Write(_) => ErrorCode::Chart,
        };
        AppError::new(code, e.to_string())
    }
}

impl From<WindowError> for AppError {
    fn from(e: WindowError) -> Self {
        AppError::new(ErrorCode::InvalidInput, e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_reach_the_screen_as_code_and_message() {
        let e: AppError = InvalidCommand::BadTime { what: "the shelve time" }.into();
        assert_eq!(
            serde_json::to_value(&e).unwrap(),
            serde_json::json!({"code": "invalid_input", "message": "the shelve time is not a valid time"})
        );
    }
}
