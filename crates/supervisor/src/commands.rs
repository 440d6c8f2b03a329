//! The supervisor's actions as commands to the plant node's command API: validation,
//! the request each one becomes, and how an answer is classified (accepted, rejected
//! for good, or worth retrying). Pure: no IO here; `outbox` sends.
//!
//! What a command may say (who acts, its note, its times) is the domain's rule, checked
//! here with the same functions the plant decides with; only what the request itself
//! needs (ids that are safe in a URL, times that exist) is this crate's.

use chrono::{DateTime, Utc};
use domain::Rejection;
use domain::anomaly::{self, AnomalyCommand};
use domain::events::OrderKind;
use domain::workorder::{self, OrderCommand};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use thiserror::Error;

/// Longest id (anomaly, machine, work order) a command may name.
pub const MAX_ID_CHARS: usize = 128;

/// One user action, as queued and sent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Command {
    Acknowledge { anomaly_id: String, note: String },
    Shelve { anomaly_id: String, until_ms: i64, note: String },
    AddNote { anomaly_id: String, text: String },
    ScheduleMaintenance { machine_id: String, service: OrderKind, scheduled_for_ms: i64, note: String },
    RecordMaintenance { machine_id: String, order_id: Option<String>, performed_at_ms: Option<i64>, note: String },
}

/// Why a command was refused before it was queued.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum InvalidCommand {
    #[error("{what} must be 1 to {MAX_ID_CHARS} characters of letters, digits, '-', '_', '.' or ':'")]
    Id { what: &'static str },
    #[error("{what} is not a valid time")]
    BadTime { what: &'static str },
    /// A rule of the domain refuses it, as the plant would.
    #[error("{0}")]
    Refused(String),
}

impl From<Rejection> for InvalidCommand {
    fn from(r: Rejection) -> Self {
        InvalidCommand::Refused(r.to_string())
    }
}

fn check_id(id: &str, what: &'static str) -> Result<(), InvalidCommand> {
    let ok = !id.is_empty()
        && id.chars().count() <= MAX_ID_CHARS
        && id.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':'));
    if ok { Ok(()) } else { Err(InvalidCommand::Id { what }) }
}

fn time(ms: i64, what: &'static str) -> Result<DateTime<Utc>, InvalidCommand> {
    DateTime::from_timestamp_millis(ms).ok_or(InvalidCommand::BadTime { what })
}

/// Milliseconds since the epoch as RFC 3339 in UTC.
pub fn rfc3339(ms: i64) -> Option<String> {
    DateTime::from_timestamp_millis(ms).map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
}

/// Checks a name of who acts (the domain's rule).
pub fn check_operator(by: &str) -> Result<(), InvalidCommand> {
    Ok(domain::check_actor(by)?)
}

impl Command {
    /// Refuses what the plant node would refuse for its form, so a typo is caught at once
    /// rather than after a round trip (or, offline, hours later). What depends on the
    /// plant's state or settings (is the anomaly resolved, how long may it be shelved) is
    /// left to the plant.
    pub fn validate(&self, by: &str, now_ms: i64) -> Result<(), InvalidCommand> {
        let now = time(now_ms, "now")?;
        let by = by.to_owned();
        match self {
            Command::Acknowledge { anomaly_id, note } => {
                check_id(anomaly_id, "the anomaly id")?;
                AnomalyCommand::Acknowledge { by, note: note.clone() }.validate()?;
            }
            Command::Shelve { anomaly_id, until_ms, note } => {
                check_id(anomaly_id, "the anomaly id")?;
                let until = time(*until_ms, "the shelve time")?;
                AnomalyCommand::Shelve { by, until, note: note.clone() }.validate()?;
                anomaly::check_shelve_ends_later(until, now)?;
            }
            Command::AddNote { anomaly_id, text } => {
                check_id(anomaly_id, "the anomaly id")?;
                AnomalyCommand::AddNote { by, text: text.clone() }.validate()?;
            }
            Command::ScheduleMaintenance { machine_id, service, scheduled_for_ms, note } => {
                check_id(machine_id, "the machine id")?;
                let scheduled_for = time(*scheduled_for_ms, "the service time")?;
                OrderCommand::Schedule { kind: *service, scheduled_for, by, note: note.clone() }.validate()?;
                workorder::check_scheduled_for(scheduled_for, now)?;
            }
            Command::RecordMaintenance { machine_id, order_id, performed_at_ms, note } => {
                check_id(machine_id, "the machine id")?;
                if let Some(o) = order_id {
                    check_id(o, "the work order id")?;
                }
                let performed_at = performed_at_ms.map(|at| time(at, "the service time")).transpose()?;
                OrderCommand::Perform { order_id: order_id.clone(), performed_at, by, note: note.clone() }
                    .validate()?;
                if let Some(at) = performed_at {
                    workorder::check_performed_at(at, now)?;
                }
            }
        }
        Ok(())
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

    /// The JSON body; `command_id` is the idempotency key, the same on every resend. Who
    /// acts is not in it: the plant takes that from the request's token.
    pub fn body(&self, command_id: &str) -> Value {
        let time = |ms: i64| rfc3339(ms).map(Value::String).unwrap_or(Value::Null);
        match self {
            Command::Acknowledge { note, .. } => json!({"command_id": command_id, "note": note}),
            Command::Shelve { until_ms, note, .. } => {
                json!({"command_id": command_id, "until": time(*until_ms), "note": note})
            }
            Command::AddNote { text, .. } => json!({"command_id": command_id, "text": text}),
            Command::ScheduleMaintenance { service, scheduled_for_ms, note, .. } => json!({
                "command_id": command_id, "kind": service,
                "scheduled_for": time(*scheduled_for_ms), "note": note
            }),
            Command::RecordMaintenance { order_id, performed_at_ms, note, .. } => {
                let mut body = json!({"command_id": command_id, "note": note});
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

/// Classifies an HTTP answer. A refusal (4xx: a rule, a malformed command, a token the
/// plant does not accept, a role that may not) is final: the command moves to the failed
/// list and the ones behind it go on. Only the plant being unavailable (5xx) is retried,
/// and the two 4xx that say "not now" rather than "no": 408 (request took too long) and
/// 429 (too many requests).
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
        408 | 429 => Outcome::Retry(error()),
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
        let b = c.body("id-1");
        assert_eq!(b["command_id"], "id-1");
        assert!(b.get("by").is_none(), "who acts is the token's, not the body's");
        assert_eq!(b["until"], "2026-05-28T21:26:40.000Z");
        let s = Command::ScheduleMaintenance {
            machine_id: "P1-L01-M001".into(),
            service: OrderKind::Emergency,
            scheduled_for_ms: NOW + 1,
            note: String::new(),
        };
        assert_eq!(s.body("x")["kind"], "emergency");
        let r = Command::RecordMaintenance {
            machine_id: "P1-L01-M001".into(),
            order_id: None,
            performed_at_ms: None,
            note: "belt".into(),
        };
        let b = r.body("x");
        assert!(b.get("order_id").is_none() && b.get("performed_at").is_none());
        assert_eq!(r.path(), "/v1/commands/machines/P1-L01-M001/maintenance/perform");
    }

    #[test]
    fn bad_commands_are_refused_with_a_reason() {
        let ack = |id: &str| Command::Acknowledge { anomaly_id: id.into(), note: String::new() };
        assert!(ack("A-1").validate("ana", NOW).is_ok());
        assert_eq!(ack("").validate("ana", NOW), Err(InvalidCommand::Id { what: "the anomaly id" }));
        assert!(ack("../../admin").validate("ana", NOW).is_err(), "no path tricks");
        assert!(ack("a b").validate("ana", NOW).is_err());
        assert!(ack(&"x".repeat(129)).validate("ana", NOW).is_err());
        let long = Command::Acknowledge { anomaly_id: "A".into(), note: "n".repeat(2001) };
        assert!(matches!(long.validate("ana", NOW), Err(InvalidCommand::Refused(m)) if m.contains("2000")));
        let past = Command::Shelve { anomaly_id: "A".into(), until_ms: NOW - 1, note: String::new() };
        assert!(
            matches!(past.validate("ana", NOW), Err(InvalidCommand::Refused(m)) if m.contains("not in the future"))
        );
        let huge = Command::Shelve { anomaly_id: "A".into(), until_ms: i64::MAX, note: String::new() };
        assert!(matches!(huge.validate("ana", NOW), Err(InvalidCommand::BadTime { .. })));
        let blank = Command::AddNote { anomaly_id: "A".into(), text: "  ".into() };
        assert!(matches!(blank.validate("ana", NOW), Err(InvalidCommand::Refused(_))));
        let far = Command::ScheduleMaintenance {
            machine_id: "M".into(),
            service: OrderKind::Planned,
            scheduled_for_ms: NOW + 400 * 86_400_000,
            note: String::new(),
        };
        assert!(matches!(far.validate("ana", NOW), Err(InvalidCommand::Refused(m)) if m.contains("within a year")));
        let bad_order = Command::RecordMaintenance {
            machine_id: "M".into(),
            order_id: Some("bad id".into()),
            performed_at_ms: None,
            note: String::new(),
        };
        assert!(bad_order.validate("ana", NOW).is_err());
        let ahead = Command::RecordMaintenance {
            machine_id: "M".into(),
            order_id: None,
            performed_at_ms: Some(NOW + 3_600_000),
            note: String::new(),
        };
        assert!(matches!(ahead.validate("ana", NOW), Err(InvalidCommand::Refused(_))));
        assert!(check_operator(" ").is_err());
        assert!(check_operator("Ana").is_ok());
    }

    #[test]
    fn control_characters_are_refused_in_notes_and_names_as_the_plant_refuses_them() {
        for hostile in ["bell\u{7}", "nul\0byte", "\u{1b}[2Jcleared", "del\u{7f}"] {
            let note = Command::AddNote { anomaly_id: "A-1".into(), text: hostile.into() };
            assert!(matches!(note.validate("ana", NOW), Err(InvalidCommand::Refused(_))), "note {hostile:?}");
            let ack = Command::Acknowledge { anomaly_id: "A-1".into(), note: hostile.into() };
            assert!(ack.validate("ana", NOW).is_err(), "acknowledgement note {hostile:?}");
            let schedule = Command::ScheduleMaintenance {
                machine_id: "M".into(),
                service: OrderKind::Planned,
                scheduled_for_ms: NOW + 86_400_000,
                note: hostile.into(),
            };
            assert!(schedule.validate("ana", NOW).is_err(), "service note {hostile:?}");
            assert!(ack_by(hostile).is_err(), "operator {hostile:?}");
            assert!(check_operator(hostile).is_err(), "operator {hostile:?}");
        }
        let fine = Command::AddNote { anomaly_id: "A-1".into(), text: "line one\nline two\tend".into() };
        assert!(fine.validate("ana", NOW).is_ok(), "newlines and tabs are fine in a note");
    }

    fn ack_by(by: &str) -> Result<(), InvalidCommand> {
        Command::Acknowledge { anomaly_id: "A-1".into(), note: String::new() }.validate(by, NOW)
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
        assert!(matches!(classify(401, err), Outcome::Rejected(_)), "a token the plant refuses will not work later");
        assert!(matches!(classify(403, err), Outcome::Rejected(_)));
        assert!(matches!(classify(422, err), Outcome::Rejected(_)));
        assert!(matches!(classify(408, b""), Outcome::Retry(_)));
        assert!(matches!(classify(429, b""), Outcome::Retry(_)));
        assert!(matches!(classify(503, b""), Outcome::Retry(e) if e.code == "http_503"));
        assert!(matches!(classify(500, b""), Outcome::Retry(_)));
        assert!(matches!(classify(200, b"{}"), Outcome::Retry(e) if e.code == "bad_answer"));
    }
}
