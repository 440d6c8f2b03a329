//! Maintenance work orders of one machine (stream `maintenance-<machine>`): at most one
//! open order at a time; service is recorded against an open order.

use chrono::{DateTime, Duration, Utc};
use serde_json::Value;

use crate::events::*;
use crate::{Rejection, check_actor, check_text};

#[derive(Debug, Clone, PartialEq)]
pub enum OrderEvent {
    Scheduled(MaintenanceScheduled),
    Performed(MaintenancePerformed),
}

impl OrderEvent {
    pub fn event_type(&self) -> &'static str {
        match self {
            OrderEvent::Scheduled(_) => MAINTENANCE_SCHEDULED,
            OrderEvent::Performed(_) => MAINTENANCE_PERFORMED,
        }
    }

    pub fn to_json(&self) -> Value {
        match self {
            OrderEvent::Scheduled(e) => serde_json::to_value(e),
            OrderEvent::Performed(e) => serde_json::to_value(e),
        }
        .expect("event bodies are plain data")
    }

    pub fn from_json(event_type: &str, body: &Value) -> Result<Option<OrderEvent>, serde_json::Error> {
        Ok(Some(match event_type {
            MAINTENANCE_SCHEDULED => OrderEvent::Scheduled(serde_json::from_value(body.clone())?),
            MAINTENANCE_PERFORMED => OrderEvent::Performed(serde_json::from_value(body.clone())?),
            _ => return Ok(None),
        }))
    }
}

/// The open order of a machine, if any.
#[derive(Debug, Clone, PartialEq)]
pub struct OpenOrder {
    pub order_id: String,
    pub kind: OrderKind,
    pub scheduled_for: DateTime<Utc>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct MachineOrders {
    pub open: Option<OpenOrder>,
    pub issued: u32,
    pub last_performed: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum OrderCommand {
    Schedule { kind: OrderKind, scheduled_for: DateTime<Utc>, by: String, note: String },
    Perform { order_id: Option<String>, performed_at: Option<DateTime<Utc>>, by: String, note: String },
}

impl OrderCommand {
    /// Checks the command's own form, whatever the machine's orders: who acts, and the
    /// note. Any client can check this before sending.
    pub fn validate(&self) -> Result<(), Rejection> {
        match self {
            OrderCommand::Schedule { by, note, .. } | OrderCommand::Perform { by, note, .. } => {
                check_actor(by)?;
                check_text("the note", note, true)
            }
        }
    }
}

/// Service is scheduled within a year of `now`, either way: past dates record work
/// already planned (or done) elsewhere.
pub fn check_scheduled_for(scheduled_for: DateTime<Utc>, now: DateTime<Utc>) -> Result<(), Rejection> {
    if scheduled_for < now - Duration::days(366) || scheduled_for > now + Duration::days(366) {
        return Err(Rejection::Invalid("scheduled_for must lie within a year of now".into()));
    }
    Ok(())
}

/// Service is recorded as done, so not later than `now` (five minutes of clock skew allowed).
pub fn check_performed_at(performed_at: DateTime<Utc>, now: DateTime<Utc>) -> Result<(), Rejection> {
    if performed_at > now + Duration::minutes(5) {
        return Err(Rejection::Invalid("performed_at must not lie in the future".into()));
    }
    Ok(())
}

pub fn evolve(state: &mut MachineOrders, event: &OrderEvent) {
    match event {
        OrderEvent::Scheduled(e) => {
            state.issued += 1;
            state.open = Some(OpenOrder { order_id: e.order_id.clone(), kind: e.kind, scheduled_for: e.scheduled_for });
        }
        OrderEvent::Performed(e) => {
            state.open = None;
            state.last_performed = Some(e.performed_at);
        }
    }
}

/// Decides a command on the orders of `machine_id`, at `now`.
pub fn decide(
    state: &MachineOrders,
    machine_id: &str,
    command: &OrderCommand,
    now: DateTime<Utc>,
) -> Result<Vec<OrderEvent>, Rejection> {
    command.validate()?;
    match command {
        OrderCommand::Schedule { kind, scheduled_for, by, note } => {
            if let Some(open) = &state.open {
                return Err(Rejection::Rule(format!(
                    "machine {machine_id} already has an open {} order {}; record or finish it first",
                    open.kind.as_str(),
                    open.order_id
                )));
            }
            check_scheduled_for(*scheduled_for, now)?;
            Ok(vec![OrderEvent::Scheduled(MaintenanceScheduled {
                order_id: format!("{machine_id}-WO{}", state.issued + 1),
                machine_id: machine_id.to_owned(),
                kind: *kind,
                scheduled_for: *scheduled_for,
                by: by.trim().to_owned(),
                note: note.clone(),
                at: now,
            })])
        }
        OrderCommand::Perform { order_id, performed_at, by, note } => {
            let Some(open) = &state.open else {
                return Err(Rejection::Rule(format!(
                    "machine {machine_id} has no open work order; schedule one (planned or emergency) first"
                )));
            };
            if let Some(id) = order_id
                && id != &open.order_id
            {
                return Err(Rejection::Rule(format!("the open order of {machine_id} is {}, not {id}", open.order_id)));
            }
            let performed_at = performed_at.unwrap_or(now);
            check_performed_at(performed_at, now)?;
            Ok(vec![OrderEvent::Performed(MaintenancePerformed {
                order_id: open.order_id.clone(),
                machine_id: machine_id.to_owned(),
                performed_at,
                by: by.trim().to_owned(),
                note: note.clone(),
                at: now,
            })])
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap()
    }

    fn given(events: &[OrderEvent]) -> MachineOrders {
        let mut s = MachineOrders::default();
        events.iter().for_each(|e| evolve(&mut s, e));
        s
    }

    fn schedule(kind: OrderKind) -> OrderCommand {
        OrderCommand::Schedule {
            kind,
            scheduled_for: now() + Duration::days(2),
            by: "maria".into(),
            note: String::new(),
        }
    }

    fn perform() -> OrderCommand {
        OrderCommand::Perform { order_id: None, performed_at: None, by: "maria".into(), note: "bearing".into() }
    }

    #[test]
    fn one_open_order_per_machine() {
        let first = decide(&given(&[]), "M1", &schedule(OrderKind::Planned), now()).unwrap();
        assert!(matches!(&first[..], [OrderEvent::Scheduled(s)] if s.order_id == "M1-WO1"));
        let again = decide(&given(&first), "M1", &schedule(OrderKind::Emergency), now());
        assert!(matches!(again, Err(Rejection::Rule(m)) if m.contains("already has an open planned order M1-WO1")));
    }

    #[test]
    fn service_is_recorded_only_against_an_open_order() {
        assert!(
            matches!(decide(&given(&[]), "M1", &perform(), now()), Err(Rejection::Rule(m)) if m.contains("no open work order"))
        );
        let mut history = decide(&given(&[]), "M1", &schedule(OrderKind::Emergency), now()).unwrap();
        let wrong = OrderCommand::Perform {
            order_id: Some("M1-WO9".into()),
            performed_at: None,
            by: "m".into(),
            note: String::new(),
        };
        assert!(matches!(decide(&given(&history), "M1", &wrong, now()), Err(Rejection::Rule(_))));
        history.extend(decide(&given(&history), "M1", &perform(), now()).unwrap());
        let state = given(&history);
        assert_eq!((state.open.clone(), state.last_performed), (None, Some(now())));
        let next = decide(&state, "M1", &schedule(OrderKind::Planned), now()).unwrap();
        assert!(matches!(&next[..], [OrderEvent::Scheduled(s)] if s.order_id == "M1-WO2"));
    }

    #[test]
    fn dates_out_of_range_are_refused() {
        let far = OrderCommand::Schedule {
            kind: OrderKind::Planned,
            scheduled_for: now() + Duration::days(400),
            by: "m".into(),
            note: String::new(),
        };
        assert!(matches!(decide(&given(&[]), "M1", &far, now()), Err(Rejection::Invalid(_))));
        let history = decide(&given(&[]), "M1", &schedule(OrderKind::Planned), now()).unwrap();
        let future = OrderCommand::Perform {
            order_id: None,
            performed_at: Some(now() + Duration::hours(1)),
            by: "m".into(),
            note: String::new(),
        };
        assert!(matches!(decide(&given(&history), "M1", &future, now()), Err(Rejection::Invalid(_))));
    }
}
