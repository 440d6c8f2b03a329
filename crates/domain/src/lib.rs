//! Floorwatch's domain: the events every part agrees on, and the rules that decide them.
//!
//! Business rules live only in `decide(state, command, now) -> Result<Vec<Event>,
//! Rejection>`; `evolve(state, event)` only applies. No IO, no clock: the caller
//! passes the time.

pub mod anomaly;
pub mod events;
pub mod production;
pub mod workorder;

use thiserror::Error;

/// Why a command was not carried out.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Rejection {
    /// The thing the command is about does not exist.
    #[error("{0}")]
    NotFound(String),
    /// A business rule forbids it in the current state.
    #[error("{0}")]
    Rule(String),
    /// The command itself is malformed (empty name, note too long, …).
    #[error("{0}")]
    Invalid(String),
}

/// Checks a person's name as written in commands.
pub fn check_actor(by: &str) -> Result<(), Rejection> {
    let by = by.trim();
    if by.is_empty() || by.chars().count() > 100 || by.chars().any(char::is_control) {
        return Err(Rejection::Invalid("`by` must name who acts (1 to 100 characters, no control characters)".into()));
    }
    Ok(())
}

/// Checks free text (notes).
pub(crate) fn check_text(what: &str, text: &str, allow_empty: bool) -> Result<(), Rejection> {
    let n = text.chars().count();
    if (!allow_empty && text.trim().is_empty()) || n > 2000 {
        let least = if allow_empty { 0 } else { 1 };
        return Err(Rejection::Invalid(format!("{what} must be {least} to 2000 characters")));
    }
    if text.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
        return Err(Rejection::Invalid(format!("{what} must not contain control characters")));
    }
    Ok(())
}
