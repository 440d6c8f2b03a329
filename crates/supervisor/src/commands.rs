//! The supervisor's actions as commands to the plant node's command API: validation,
//! the request each one becomes, and how an answer is classified (accepted, rejected
//! for good, or worth retrying). Pure: no IO here; `outbox` sends.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use thiserror::Error;

/// Longest note or free text a command may carry, in characters.
pub const MAX_TEXT_CHARS: usize = 4_000;
/// Longest id (anomaly, machine, work order) a command may name.
pub const MAX_ID_CHARS: usize = 128;
/// How far ahead a shelve or a scheduled service may be set.
pub const MAX_AHEAD_MS: i64 = 366 * 24 * 3600 * 1000;

/// A planned or an emergency service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ServiceKind {
    Planned,
    Emergency,
}

/// One user action, as queued and sent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Command {
    Acknowledge { anomaly_id: String, note: String },
    Shelve { anomaly_id: String, until_ms: i64, note: String },
    AddNote { anomaly_id: String, text: String },
    ScheduleMaintenance { machine_id: String, service: ServiceKind, scheduled_for_ms: i64, note: String },
    RecordMaintenance { machine_id: String, order_id: Option<String>, performed_at_ms: Option<i64>, note: String },
}

/// Why a command was refused before it was queued.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum InvalidCommand {
    #[error("{what} must be 1 to {MAX_ID_CHARS} characters of letters, digits, '-', '_', '.' or ':'")]
    Id { what: &'static str },
    #[error("{what} is longer than {MAX_TEXT_CHARS} characters")]
    TooLong { what: &'static str },
    #[error("a note is required")]
    EmptyText,
    #[error("{what} must be in the future")]
    NotInFuture { what: &'static str },
    #[error("{what} is more than a year ahead")]
    TooFarAhead { what: &'static str },
    #[error("{what} is not a valid time")]
    BadTime { what: &'static str },
    #[error("the operator name must be 1 to 100 characters")]
    Operator,
}

fn check_id(id: &str, what: &'static str) -> Result<(), InvalidCommand> {
    let ok = !id.is_empty()
        && id.chars().count() <= MAX_ID_CHARS
        && id.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':'));
    if ok { Ok(()) } else { Err(InvalidCommand::Id { what }) }
}

fn check_text(text: &str, what: &'static str) -> Result<(), InvalidCommand> {
    if text.chars().count() > MAX_TEXT_CHARS { Err(InvalidCommand::TooLong { what }) } else { Ok(()) }
}

fn check_future(at_ms: i64, now_ms: i64, what: &'static str) -> Result<(), InvalidCommand> {
    rfc3339(at_ms).ok_or(InvalidCommand::BadTime { what })?;
    if at_ms <= now_ms {
        return Err(InvalidCommand::NotInFuture { what });
    }
    if at_ms - now_ms > MAX_AHEAD_MS {
        return Err(InvalidCommand::TooFarAhead { what });
    }
    Ok(())
}

/// Milliseconds since the epoch as RFC 3339 in UTC.
pub fn rfc3339(ms: i64) -> Option<String> {
    chrono::DateTime::from_timestamp_millis(ms).map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
}

/// Checks the operator's name sent as `by`.
pub fn check_operator(by: &str) -> Result<(), InvalidCommand> {
    let n = by.trim().chars().count();
    if (1..=100).contains(&n) { Ok(()) } else { Err(InvalidCommand::Operator) }
}

impl Command {
    /// Refuses what the plant node would refuse for its form, so a typo is caught at once
    /// rather than after a round trip (or, offline, hours later).
    pub fn validate(&self, now_ms: i64) -> Result<(), InvalidCommand> {
        match self {
            Command::Acknowledge { anomaly_id, note } => {
                check_id(anomaly_id, "the anomaly id")?;
                check_text(note, "the note")
            }
            Command::Shelve { anomaly_id, until_ms, note } => {
                check_id(anomaly_id, "the anomaly id")?;
                check_future(*until_ms, now_ms, "the shelve time")?;
                check_text(note, "the note")
            }
            Command::AddNote { anomaly_id, text } => {
                check_id(anomaly_id, "the anomaly id")?;
                if text.trim().is_empty() {
                    return Err(InvalidCommand::EmptyText);
                }
                check_text(text, "the note")
            }
            Command::ScheduleMaintenance { machine_id, scheduled_for_ms, note, .. } => {
                check_id(machine_id, "the machine id")?;
                check_future(*scheduled_for_ms, now_ms, "the service time")?;
                check_text(note, "the note")
            }
            Command::RecordMaintenance { machine_id, order_id, performed_at_ms, note } => {
                check_id(machine_id, "the machine id")?;
                if let Some(o) = order_id {
                    check_id(o, "the work order id")?;
                }
                if let Some(at) = performed_at_ms {
                    rfc3339(*at).ok_or(InvalidCommand::BadTime { what: "the service time" })?;
                    if *at > now_ms + 5 * 60 * 1000 {
                        return Err(InvalidCommand::BadTime { what: "a service time in the future" });
                    }
                }
                check_text(note, "the note")
            }
        }
    }

    /// The anomaly or machine the command is about.
    pub fn target(&self) -> &str {
        match self {
            Command::Acknowledge { anomaly_id, .. }
            | Command::Shelve { anomaly_id, .. }
            | Command::AddNote { anomaly_id, .. } => anomaly_id,
            Command::ScheduleMaintenance { machine_id, .. } | Command::RecordMaintenance { machine_id, .. } => {
                machine_id
            }
        }
    }

    /// The request path under the command URL. Ids were validated to need no escaping.
    pub fn path(&self) -> String {
        match self {
            Command::Acknowledge { anomaly_id, .. } => format!("/v1/commands/anomalies/{anomaly_id}/acknowledge"),
            Command::Shelve { anomaly_id, .. } => format!("/v1/commands/anomalies/{anomaly_id}/shelve"),
            Command::AddNote { anomaly_id, .. } => format!("/v1/commands/anomalies/{anomaly_id}/notes"),
            Command::ScheduleMaintenance { machine_id, .. } => {
                format!("/v1/commands/machines/{machine_id}/maintenance/schedule")
            }
            Command::RecordMaintenance { machine_id, .. } => {
                format!("/v1/commands/machines/{machine_id}/maintenance/perform")
            }
        }
    }

    /// The JSON body; `command_id` is the idempotency key, the same on every resend.
    pub fn body(&self, command_id: &str, by: &str) -> Value {
        let time = |ms: i64| rfc3339(ms).map(Value::String).unwrap_or(Value::Null);
        match self {
            Command::Acknowledge { note, .. } => json!({"command_id": command_id, "by": by, "note": note}),
            Command::Shelve { until_ms, note, .. } => {
                json!({"command_id": command_id, "by": by, "until": time(*until_ms), "note": note})
            }
            Command::AddNote { text, .. } => json!({"command_id": command_id, "by": by, "text": text}),
            Command::ScheduleMaintenance { service, scheduled_for_ms, note, .. } => json!({
                "command_id": command_id, "by": by, "kind": service,
                "scheduled_for": time(*scheduled_for_ms), "note": note
            }),
            Command::RecordMaintenance { order_id, performed_at_ms, note, .. } => {
                let mut body = json!({"command_id": command_id, "by": by, "note": note});
                if let Some(o) = order_id {
                    body["order_id"] = json!(o);
                }
                if let Some(at) = performed_at_ms {
                    body["performed_at"] = time(*at);
                }
                body
            }
        }
    }

    /// A short description for the pending list ("Acknowledge P1-A-17").
    pub fn label(&self) -> String {
        match self {
            Command::Acknowledge { anomaly_id, .. } => format!("Acknowledge {anomaly_id}"),
            Command::Shelve { anomaly_id, .. } => format!("Shelve {anomaly_id}"),
            Command::AddNote { anomaly_id, .. } => format!("Note on {anomaly_id}"),
            Command::ScheduleMaintenance { machine_id, .. } => format!("Schedule service of {machine_id}"),
            Command::RecordMaintenance { machine_id, .. } => format!("Record service of {machine_id}"),
        }
    }
}

/// An error as the command API (or the app) reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiError {
    pub code: String,
    pub message: String,
}

/// What became of one attempt to send a command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Applied (or already applied: `duplicate`) at log position `position`.
    Accepted { position: i64, duplicate: bool },
    /// Refused for good: tell the user why and drop it from the queue.
    Rejected(ApiError),
    /// Not applied this time; keep it queued and try again later.
    Retry(ApiError),
}

#[derive(Deserialize)]
struct Accepted {
    position: i64,
    #[serde(default)]
    duplicate: bool,
}

#[derive(Deserialize)]
struct ErrorBody {
    error: ApiError,
}

/// Classifies an HTTP answer. 4xx other than 401 are final; 401 (a token being rotated)
/// and 5xx keep the command queued.
pub fn classify(status: u16, body: &[u8]) -> Outcome {
    let error = || {
        serde_json::from_slice::<ErrorBody>(body).map(|b| b.error).unwrap_or_else(|_| ApiError {
            code: format!("http_{status}"),
            message: format!(
                "the plant node answered {status}: {}",
                String::from_utf8_lossy(&body[..body.len().min(200)]).trim()
            ),
        })
    };
    match status {
        200..=299 => match serde_json::from_slice::<Accepted>(body) {
            Ok(a) => Outcome::Accepted { position: a.position, duplicate: a.duplicate },
            Err(e) => Outcome::Retry(ApiError {
                code: "bad_answer".into(),
                message: format!("the plant node's answer could not be read: {e}"),
            }),
        },
        401 => Outcome::Retry(error()),
        400..=499 => Outcome::Rejected(error()),
        _ => Outcome::Retry(error()),
    }
}

/// Where a queued command stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CommandState {
    /// Not yet accepted by the plant node (offline, or retrying).
    Pending,
    /// Accepted; the read models do not show it yet.
    Sent,
    /// Refused for good; kept until the user dismisses it.
    Failed,
}

impl CommandState {
    pub fn as_str(self) -> &'static str {
        match self {
            CommandState::Pending => "pending",
            CommandState::Sent => "sent",
            CommandState::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<CommandState> {
        match s {
            "pending" => Some(CommandState::Pending),
            "sent" => Some(CommandState::Sent),
            "failed" => Some(CommandState::Failed),
            _ => None,
        }
    }
}

/// A command in the outbox.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QueuedCommand {
    pub seq: i64,
    pub command_id: String,
    pub by: String,
    pub command: Command,
    pub label: String,
    pub created_at_ms: i64,
    pub state: CommandState,
    pub attempts: i64,
    pub next_attempt_ms: i64,
    pub error: Option<ApiError>,
    pub position: Option<i64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_780_000_000_000;

    #[test]
    fn bodies_carry_the_idempotency_key_and_rfc3339_times() {
        let c = Command::Shelve { anomaly_id: "A-1".into(), until_ms: NOW + 3_600_000, note: "pump swap".into() };
        assert_eq!(c.path(), "/v1/commands/anomalies/A-1/shelve");
        let b = c.body("id-1", "ana");
        assert_eq!(b["command_id"], "id-1");
        assert_eq!(b["by"], "ana");
        assert_eq!(b["until"], "2026-05-28T21:26:40.000Z");
        let s = Command::ScheduleMaintenance {
            machine_id: "P1-L01-M001".into(),
            service: ServiceKind::Emergency,
            scheduled_for_ms: NOW + 1,
            note: String::new(),
        };
        assert_eq!(s.body("x", "y")["kind"], "emergency");
        let r = Command::RecordMaintenance {
            machine_id: "P1-L01-M001".into(),
            order_id: None,
            performed_at_ms: None,
            note: "belt".into(),
        };
        let b = r.body("x", "y");
        assert!(b.get("order_id").is_none() && b.get("performed_at").is_none());
        assert_eq!(r.path(), "/v1/commands/machines/P1-L01-M001/maintenance/perform");
    }

    #[test]
    fn bad_commands_are_refused_with_a_reason() {
        let ack = |id: &str| Command::Acknowledge { anomaly_id: id.into(), note: String::new() };
        assert!(ack("A-1").validate(NOW).is_ok());
        assert_eq!(ack("").validate(NOW), Err(InvalidCommand::Id { what: "the anomaly id" }));
        assert!(ack("../../admin").validate(NOW).is_err(), "no path tricks");
        assert!(ack("a b").validate(NOW).is_err());
        assert!(ack(&"x".repeat(129)).validate(NOW).is_err());
        let long = Command::Acknowledge { anomaly_id: "A".into(), note: "n".repeat(MAX_TEXT_CHARS + 1) };
        assert_eq!(long.validate(NOW), Err(InvalidCommand::TooLong { what: "the note" }));
        let past = Command::Shelve { anomaly_id: "A".into(), until_ms: NOW - 1, note: String::new() };
        assert_eq!(past.validate(NOW), Err(InvalidCommand::NotInFuture { what: "the shelve time" }));
        let far = Command::Shelve { anomaly_id: "A".into(), until_ms: NOW + MAX_AHEAD_MS + 1, note: String::new() };
        assert!(matches!(far.validate(NOW), Err(InvalidCommand::TooFarAhead { .. })));
        let huge = Command::Shelve { anomaly_id: "A".into(), until_ms: i64::MAX, note: String::new() };
        assert!(matches!(huge.validate(NOW), Err(InvalidCommand::BadTime { .. })));
        let blank = Command::AddNote { anomaly_id: "A".into(), text: "  ".into() };
        assert_eq!(blank.validate(NOW), Err(InvalidCommand::EmptyText));
        let future = Command::RecordMaintenance {
            machine_id: "M".into(),
            order_id: Some("bad id".into()),
            performed_at_ms: None,
            note: String::new(),
        };
        assert!(future.validate(NOW).is_err());
        assert!(check_operator(" ").is_err());
        assert!(check_operator("Ana").is_ok());
    }

    #[test]
    fn answers_are_classified_as_accepted_final_or_retry() {
        assert_eq!(
            classify(200, br#"{"position": 42, "duplicate": true}"#),
            Outcome::Accepted { position: 42, duplicate: true }
        );
        let err = br#"{"error":{"code":"resolved","message":"the anomaly is resolved"}}"#;
        assert_eq!(
            classify(409, err),
            Outcome::Rejected(ApiError { code: "resolved".into(), message: "the anomaly is resolved".into() })
        );
        assert!(matches!(classify(400, b"not json"), Outcome::Rejected(e) if e.code == "http_400"));
        assert!(matches!(classify(404, err), Outcome::Rejected(_)));
        assert!(matches!(classify(401, err), Outcome::Retry(_)));
        assert!(matches!(classify(503, b""), Outcome::Retry(e) if e.code == "http_503"));
        assert!(matches!(classify(200, b"{}"), Outcome::Retry(e) if e.code == "bad_answer"));
    }
}
