//! The anomaly aggregate (stream `anomaly-<id>`): the monitor opens, updates and
//! resolves an episode; people acknowledge it, shelve it, and add notes.

use chrono::{DateTime, Duration, Utc};
use serde_json::Value;

use crate::events::*;
use crate::{Rejection, check_actor, check_text};

/// An anomaly event, typed.
#[derive(Debug, Clone, PartialEq)]
pub enum AnomalyEvent {
    Detected(AnomalyDetected),
    Updated(AnomalyUpdated),
    Resolved(AnomalyResolved),
    Acknowledged(AnomalyAcknowledged),
    Shelved(AnomalyShelved),
    NoteAdded(AnomalyNoteAdded),
}

impl AnomalyEvent {
    pub fn event_type(&self) -> &'static str {
        match self {
            AnomalyEvent::Detected(_) => ANOMALY_DETECTED,
            AnomalyEvent::Updated(_) => ANOMALY_UPDATED,
            AnomalyEvent::Resolved(_) => ANOMALY_RESOLVED,
            AnomalyEvent::Acknowledged(_) => ANOMALY_ACKNOWLEDGED,
            AnomalyEvent::Shelved(_) => ANOMALY_SHELVED,
            AnomalyEvent::NoteAdded(_) => ANOMALY_NOTE_ADDED,
        }
    }

    pub fn to_json(&self) -> Value {
        let v = match self {
            AnomalyEvent::Detected(e) => serde_json::to_value(e),
            AnomalyEvent::Updated(e) => serde_json::to_value(e),
            AnomalyEvent::Resolved(e) => serde_json::to_value(e),
            AnomalyEvent::Acknowledged(e) => serde_json::to_value(e),
            AnomalyEvent::Shelved(e) => serde_json::to_value(e),
            AnomalyEvent::NoteAdded(e) => serde_json::to_value(e),
        };
        v.expect("event bodies are plain data")
    }

    /// The typed event for a recorded one; `Ok(None)` for types that are not anomaly events.
    pub fn from_json(event_type: &str, body: &Value) -> Result<Option<AnomalyEvent>, serde_json::Error> {
        let de = |v: &Value| v.clone();
        Ok(Some(match event_type {
            ANOMALY_DETECTED => AnomalyEvent::Detected(serde_json::from_value(de(body))?),
            ANOMALY_UPDATED => AnomalyEvent::Updated(serde_json::from_value(de(body))?),
            ANOMALY_RESOLVED => AnomalyEvent::Resolved(serde_json::from_value(de(body))?),
            ANOMALY_ACKNOWLEDGED => AnomalyEvent::Acknowledged(serde_json::from_value(de(body))?),
            ANOMALY_SHELVED => AnomalyEvent::Shelved(serde_json::from_value(de(body))?),
            ANOMALY_NOTE_ADDED => AnomalyEvent::NoteAdded(serde_json::from_value(de(body))?),
            _ => return Ok(None),
        }))
    }
}

/// Where an anomaly stands.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum AnomalyState {
    /// No such anomaly (no events yet).
    #[default]
    Unknown,
    New,
    Acknowledged,
    Shelved,
    Resolved,
}

impl AnomalyState {
    pub fn as_str(self) -> &'static str {
        match self {
            AnomalyState::Unknown => "unknown",
            AnomalyState::New => "new",
            AnomalyState::Acknowledged => "acknowledged",
            AnomalyState::Shelved => "shelved",
            AnomalyState::Resolved => "resolved",
        }
    }

    /// The state an anomaly's record names (`new`, `acknowledged`, `shelved`, `resolved`).
    pub fn parse(s: &str) -> Option<AnomalyState> {
        Some(match s {
            "new" => AnomalyState::New,
            "acknowledged" => AnomalyState::Acknowledged,
            "shelved" => AnomalyState::Shelved,
            "resolved" => AnomalyState::Resolved,
            _ => return None,
        })
    }

    /// The lifecycle: the state after `event`. The monitor opens an episode (new) and
    /// resolves it; a person acknowledges or shelves it; nothing reopens a resolved one
    /// except a new detection, and updates and notes leave the state as it is.
    pub fn after(self, event: &AnomalyEvent) -> AnomalyState {
        match event {
            AnomalyEvent::Detected(_) => AnomalyState::New,
            AnomalyEvent::Updated(_) | AnomalyEvent::NoteAdded(_) => self,
            AnomalyEvent::Resolved(_) => AnomalyState::Resolved,
            AnomalyEvent::Acknowledged(_) if self != AnomalyState::Resolved => AnomalyState::Acknowledged,
            AnomalyEvent::Shelved(_) if self != AnomalyState::Resolved => AnomalyState::Shelved,
            AnomalyEvent::Acknowledged(_) | AnomalyEvent::Shelved(_) => self,
        }
    }

    /// Counts among the plant's open anomalies (KPIs, a machine's colour): it still asks
    /// for attention. A shelved anomaly is silenced, a resolved one is over.
    pub fn is_open(self) -> bool {
        matches!(self, AnomalyState::New | AnomalyState::Acknowledged)
    }

    pub fn is_resolved(self) -> bool {
        self == AnomalyState::Resolved
    }
}

/// The folded state of one anomaly, as the rules need it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Anomaly {
    pub state: AnomalyState,
    pub machine_id: String,
    pub acknowledged_by: Option<String>,
    pub shelved_until: Option<DateTime<Utc>>,
}

/// What a person asks of an anomaly.
#[derive(Debug, Clone, PartialEq)]
pub enum AnomalyCommand {
    Acknowledge { by: String, note: String },
    Shelve { by: String, until: DateTime<Utc>, note: String },
    AddNote { by: String, text: String },
}

/// Limits on shelving.
#[derive(Debug, Clone, Copy)]
pub struct ShelvePolicy {
    pub max_shelve: Duration,
}

impl Default for ShelvePolicy {
    fn default() -> Self {
        ShelvePolicy { max_shelve: Duration::hours(12) }
    }
}

impl ShelvePolicy {
    /// Checks the end of a shelve asked for at `now`: later than now, and no further
    /// ahead than this plant allows.
    pub fn check(&self, until: DateTime<Utc>, now: DateTime<Utc>) -> Result<(), Rejection> {
        check_shelve_ends_later(until, now)?;
        if until - now > self.max_shelve {
            return Err(Rejection::Rule(format!(
                "anomalies may be shelved for at most {} hours",
                self.max_shelve.num_minutes() as f64 / 60.0
            )));
        }
        Ok(())
    }
}

/// A shelve must end later than `now`. (How far ahead is the plant's policy, see
/// [`ShelvePolicy::check`].)
pub fn check_shelve_ends_later(until: DateTime<Utc>, now: DateTime<Utc>) -> Result<(), Rejection> {
    if until <= now {
        return Err(Rejection::Rule(format!("shelve until {until} is not in the future")));
    }
    Ok(())
}

impl AnomalyCommand {
    /// Checks the command's own form, whatever the anomaly's state: who acts, and the
    /// note. Any client can check this before sending.
    pub fn validate(&self) -> Result<(), Rejection> {
        match self {
            AnomalyCommand::Acknowledge { by, note } | AnomalyCommand::Shelve { by, note, .. } => {
                check_actor(by)?;
                check_text("the note", note, true)
            }
            AnomalyCommand::AddNote { by, text } => {
                check_actor(by)?;
                check_text("the note", text, false)
            }
        }
    }
}

pub fn evolve(state: &mut Anomaly, event: &AnomalyEvent) {
    state.state = state.state.after(event);
    match event {
        AnomalyEvent::Detected(e) => state.machine_id = e.machine_id.clone(),
        AnomalyEvent::Acknowledged(e) => state.acknowledged_by = Some(e.by.clone()),
        AnomalyEvent::Shelved(e) => state.shelved_until = Some(e.until),
        AnomalyEvent::Updated(_) | AnomalyEvent::NoteAdded(_) | AnomalyEvent::Resolved(_) => {}
    }
}

/// Decides what a command on anomaly `id` does, at `now`.
pub fn decide(
    state: &Anomaly,
    id: &str,
    command: &AnomalyCommand,
    now: DateTime<Utc>,
    policy: ShelvePolicy,
) -> Result<Vec<AnomalyEvent>, Rejection> {
    if state.state == AnomalyState::Unknown {
        return Err(Rejection::NotFound(format!("no anomaly {id}")));
    }
    command.validate()?;
    let anomaly_id = id.to_owned();
    match command {
        AnomalyCommand::Acknowledge { by, note } => match state.state {
            AnomalyState::Resolved => {
                Err(Rejection::Rule(format!("anomaly {id} is resolved; there is nothing to acknowledge")))
            }
            AnomalyState::Acknowledged => Err(Rejection::Rule(format!(
                "anomaly {id} is already acknowledged by {}",
                state.acknowledged_by.as_deref().unwrap_or("someone")
            ))),
            _ => Ok(vec![AnomalyEvent::Acknowledged(AnomalyAcknowledged {
                anomaly_id,
                by: by.trim().to_owned(),
                note: note.clone(),
                at: now,
            })]),
        },
        AnomalyCommand::Shelve { by, until, note } => {
            if state.state == AnomalyState::Resolved {
                return Err(Rejection::Rule(format!("anomaly {id} is resolved; it cannot be shelved")));
            }
            policy.check(*until, now)?;
            Ok(vec![AnomalyEvent::Shelved(AnomalyShelved {
                anomaly_id,
                by: by.trim().to_owned(),
                until: *until,
                note: note.clone(),
                at: now,
            })])
        }
        AnomalyCommand::AddNote { by, text } => Ok(vec![AnomalyEvent::NoteAdded(AnomalyNoteAdded {
            anomaly_id,
            by: by.trim().to_owned(),
            text: text.clone(),
            at: now,
        })]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap()
    }

    fn detected() -> AnomalyEvent {
        AnomalyEvent::Detected(AnomalyDetected {
            anomaly_id: "a1".into(),
            machine_id: "P1-L01-M001".into(),
            line_id: "P1-L01".into(),
            started_at: now(),
            severity: Severity::Major,
            score: 0.9,
            sensors: vec![],
            explanation: "TEMP1 high".into(),
            detector_version: "1".into(),
        })
    }

    fn given(events: &[AnomalyEvent]) -> Anomaly {
        let mut state = Anomaly::default();
        for e in events {
            evolve(&mut state, e);
        }
        state
    }

    fn when(events: &[AnomalyEvent], command: AnomalyCommand) -> Result<Vec<AnomalyEvent>, Rejection> {
        decide(&given(events), "a1", &command, now(), ShelvePolicy::default())
    }

    fn ack(by: &str) -> AnomalyCommand {
        AnomalyCommand::Acknowledge { by: by.into(), note: "on it".into() }
    }

    #[test]
    fn an_open_anomaly_is_acknowledged_once() {
        let events = when(&[detected()], ack("alice")).unwrap();
        assert!(matches!(&events[..], [AnomalyEvent::Acknowledged(a)] if a.by == "alice" && a.note == "on it"));
        let mut history = vec![detected()];
        history.extend(events);
        assert_eq!(given(&history).state, AnomalyState::Acknowledged);
        assert!(
            matches!(when(&history, ack("bob")), Err(Rejection::Rule(m)) if m.contains("already acknowledged by alice"))
        );
    }

    #[test]
    fn unknown_and_resolved_anomalies_cannot_be_acknowledged() {
        assert!(matches!(when(&[], ack("alice")), Err(Rejection::NotFound(_))));
        let resolved = AnomalyEvent::Resolved(AnomalyResolved { anomaly_id: "a1".into(), at: now() });
        assert!(
            matches!(when(&[detected(), resolved], ack("alice")), Err(Rejection::Rule(m)) if m.contains("resolved"))
        );
    }

    #[test]
    fn shelving_needs_a_future_end_within_the_maximum() {
        let shelve = |minutes: i64| AnomalyCommand::Shelve {
            by: "al".into(),
            until: now() + Duration::minutes(minutes),
            note: String::new(),
        };
        assert!(matches!(when(&[detected()], shelve(0)), Err(Rejection::Rule(m)) if m.contains("not in the future")));
        assert!(matches!(when(&[detected()], shelve(-5)), Err(Rejection::Rule(_))));
        assert!(
            matches!(when(&[detected()], shelve(13 * 60)), Err(Rejection::Rule(m)) if m.contains("at most 12 hours"))
        );
        let shelved = when(&[detected()], shelve(30)).unwrap();
        let state = given(&[detected(), shelved[0].clone()]);
        assert_eq!(state.state, AnomalyState::Shelved);
        assert_eq!(state.shelved_until, Some(now() + Duration::minutes(30)));
    }

    #[test]
    fn commands_with_bad_input_are_invalid() {
        for by in ["", "   ", &"x".repeat(101), "al\u{7}ice"] {
            assert!(matches!(when(&[detected()], ack(by)), Err(Rejection::Invalid(_))), "{by:?}");
        }
        let long = AnomalyCommand::AddNote { by: "al".into(), text: "x".repeat(2001) };
        assert!(matches!(when(&[detected()], long), Err(Rejection::Invalid(_))));
        let empty = AnomalyCommand::AddNote { by: "al".into(), text: "  ".into() };
        assert!(matches!(when(&[detected()], empty), Err(Rejection::Invalid(_))));
        let fine = AnomalyCommand::AddNote { by: "al".into(), text: "bearing replaced\nsee WO-7".into() };
        assert!(when(&[detected()], fine).is_ok());
    }

    #[test]
    fn the_lifecycle_moves_only_where_it_may() {
        use AnomalyState::*;
        let resolved = AnomalyEvent::Resolved(AnomalyResolved { anomaly_id: "a1".into(), at: now() });
        let ack = AnomalyEvent::Acknowledged(AnomalyAcknowledged {
            anomaly_id: "a1".into(),
            by: "al".into(),
            note: String::new(),
            at: now(),
        });
        let shelved = AnomalyEvent::Shelved(AnomalyShelved {
            anomaly_id: "a1".into(),
            by: "al".into(),
            until: now(),
            note: String::new(),
            at: now(),
        });
        let note = AnomalyEvent::NoteAdded(AnomalyNoteAdded {
            anomaly_id: "a1".into(),
            by: "al".into(),
            text: "x".into(),
            at: now(),
        });
        let cases = [
            (Unknown, detected(), New),
            (Resolved, detected(), New),
            (New, ack.clone(), Acknowledged),
            (Shelved, ack.clone(), Acknowledged),
            (Resolved, ack, Resolved),
            (New, shelved.clone(), Shelved),
            (Acknowledged, shelved.clone(), Shelved),
            (Resolved, shelved, Resolved),
            (Shelved, resolved.clone(), Resolved),
            (Acknowledged, note.clone(), Acknowledged),
            (Resolved, note, Resolved),
        ];
        for (from, event, to) in cases {
            assert_eq!(from.after(&event), to, "{from:?} after {}", event.event_type());
        }
        assert_eq!(
            [New, Acknowledged, Shelved, Resolved].map(AnomalyState::is_open),
            [true, true, false, false],
            "shelved anomalies are silenced"
        );
        for s in [New, Acknowledged, Shelved, Resolved] {
            assert_eq!(AnomalyState::parse(s.as_str()), Some(s));
        }
        assert_eq!(AnomalyState::parse("unknown"), None);
    }

    #[test]
    fn notes_with_control_characters_are_invalid_before_any_state_is_known() {
        for text in ["bell\u{7}", "nul\0", "escape\u{1b}[2J"] {
            let command = AnomalyCommand::AddNote { by: "al".into(), text: text.into() };
            assert!(matches!(command.validate(), Err(Rejection::Invalid(_))), "{text:?}");
        }
        assert!(AnomalyCommand::AddNote { by: "al".into(), text: "line\nand\ttab".into() }.validate().is_ok());
    }

    #[test]
    fn events_round_trip_through_json() {
        for e in [detected(), AnomalyEvent::Resolved(AnomalyResolved { anomaly_id: "a1".into(), at: now() })] {
            assert_eq!(AnomalyEvent::from_json(e.event_type(), &e.to_json()).unwrap(), Some(e));
        }
        assert_eq!(AnomalyEvent::from_json("SomethingElse", &Value::Null).unwrap(), None);
        assert!(AnomalyEvent::from_json(ANOMALY_RESOLVED, &serde_json::json!({"nope": 1})).is_err());
    }
}
