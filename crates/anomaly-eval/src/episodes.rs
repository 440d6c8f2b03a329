//! Anomaly episodes rebuilt from the monitor's `AnomalyDetected` / `AnomalyUpdated` /
//! `AnomalyResolved` events, whether they come straight from the monitor or from a log.

use std::collections::BTreeMap;

use domain::events::{ANOMALY_DETECTED, ANOMALY_RESOLVED, ANOMALY_UPDATED, AnomalyDetected, AnomalyUpdated};
use domain::events::{AnomalyResolved, SensorEvidence};
use serde::Deserialize;
use thiserror::Error;

/// A sensor named as crossing the threshold in an anomaly event.
#[derive(Debug, Clone, PartialEq)]
pub struct Alarmed {
    pub sensor: u32,
    pub test: String,
    pub score: f64,
}

/// One anomaly event, reduced to what scoring needs. `at_ms` is the plant time at which
/// the event was raised (see [`parse_event`]).
#[derive(Debug, Clone, PartialEq)]
pub enum AnomalyEvent {
    Detected { id: String, machine: String, started_ms: i64, at_ms: i64, sensors: Vec<Alarmed> },
    Updated { id: String, at_ms: i64, sensors: Vec<Alarmed> },
    Resolved { id: String, at_ms: i64 },
}

#[derive(Debug, Error)]
pub enum EpisodeError {
    #[error("{event_type} event does not parse: {source}")]
    Body { event_type: String, source: serde_json::Error },
    #[error("{event_type} for anomaly {id}, which was never detected")]
    Unknown { event_type: String, id: String },
    #[error("anomaly {0} is detected twice")]
    Twice(String),
}

fn alarmed(sensors: &[SensorEvidence]) -> Vec<Alarmed> {
    sensors
        .iter()
        .filter(|s| !s.related)
        .map(|s| Alarmed { sensor: s.sensor, test: s.test.clone(), score: s.score })
        .collect()
}

/// Parses one event of the `anomaly` category; `Ok(None)` for the ones that say nothing
/// about detection (acknowledged, shelved, notes).
///
/// `raised_ms` is the plant time of the reading that made the monitor raise the event,
/// when the caller knows it (driving the monitor in-process). Read back from a log, an
/// `AnomalyUpdated` carries it (`at`), but an `AnomalyDetected` carries only its
/// sensors' strongest readings; then the latest of those stands in, which can precede
/// the confirming reading by up to the confirmation window.
pub fn parse_event(
    event_type: &str,
    body: &serde_json::Value,
    raised_ms: Option<i64>,
) -> Result<Option<AnomalyEvent>, EpisodeError> {
    let parse_err = |source| EpisodeError::Body { event_type: event_type.to_owned(), source };
    Ok(Some(match event_type {
        ANOMALY_DETECTED => {
            let e = AnomalyDetected::deserialize(body).map_err(parse_err)?;
            let started_ms = e.started_at.timestamp_millis();
            let latest = e.sensors.iter().filter(|s| !s.related).map(|s| s.at.timestamp_millis()).max();
            AnomalyEvent::Detected {
                at_ms: raised_ms.unwrap_or_else(|| latest.unwrap_or(started_ms).max(started_ms)),
                sensors: alarmed(&e.sensors),
                id: e.anomaly_id,
                machine: e.machine_id,
                started_ms,
            }
        }
        ANOMALY_UPDATED => {
            let e = AnomalyUpdated::deserialize(body).map_err(parse_err)?;
            AnomalyEvent::Updated {
                at_ms: raised_ms.unwrap_or(e.at.timestamp_millis()),
                sensors: alarmed(&e.sensors),
                id: e.anomaly_id,
            }
        }
        ANOMALY_RESOLVED => {
            let e = AnomalyResolved::deserialize(body).map_err(parse_err)?;
            AnomalyEvent::Resolved { at_ms: e.at.timestamp_millis(), id: e.anomaly_id }
        }
        _ => return Ok(None),
    }))
}

/// When a sensor first crossed the threshold within an episode by a test.
#[derive(Debug, Clone, PartialEq)]
pub struct Joined {
    pub sensor: u32,
    /// Plant time of the first event naming the sensor as crossing.
    pub joined_ms: i64,
    pub test: String,
}

/// One anomaly episode as a supervisor saw it.
#[derive(Debug, Clone, PartialEq)]
pub struct Episode {
    pub id: String,
    pub machine: String,
    /// The episode's own start (the first abnormal reading it cites).
    pub start_ms: i64,
    /// When it was raised.
    pub detected_ms: i64,
    pub resolved_ms: Option<i64>,
    pub sensors: Vec<Joined>,
    /// The test of the strongest sensor when it was raised.
    pub first_test: String,
    pub peak_score: f64,
}

impl Episode {
    /// The plant (`P1`) of the episode's machine (`P1-L03-M042`).
    pub fn plant(&self) -> &str {
        self.machine.split('-').next().unwrap_or("")
    }
}

/// Folds anomaly events, in log order, into episodes (in the order they were raised).
pub fn fold(events: impl IntoIterator<Item = AnomalyEvent>) -> Result<Vec<Episode>, EpisodeError> {
    let mut episodes: Vec<Episode> = Vec::new();
    let mut by_id: BTreeMap<String, usize> = BTreeMap::new();
    let join = |ep: &mut Episode, sensors: &[Alarmed], at_ms: i64| {
        for s in sensors {
            ep.peak_score = ep.peak_score.max(s.score);
            // A sensor named again with another test is a new finding on it (the monitor
            // renews a sensor's evidence when it crosses again with another test).
            if !ep.sensors.iter().any(|j| j.sensor == s.sensor && j.test == s.test) {
                ep.sensors.push(Joined { sensor: s.sensor, joined_ms: at_ms, test: s.test.clone() });
            }
        }
    };
    for event in events {
        match event {
            AnomalyEvent::Detected { id, machine, started_ms, at_ms, sensors } => {
                if by_id.contains_key(&id) {
                    return Err(EpisodeError::Twice(id));
                }
                let mut ep = Episode {
                    id: id.clone(),
                    machine,
                    start_ms: started_ms,
                    detected_ms: at_ms,
                    resolved_ms: None,
                    sensors: Vec::new(),
                    first_test: sensors.first().map_or_else(|| "none".to_owned(), |s| s.test.clone()),
                    peak_score: 0.0,
                };
                join(&mut ep, &sensors, at_ms);
                by_id.insert(id, episodes.len());
                episodes.push(ep);
            }
            AnomalyEvent::Updated { id, at_ms, sensors } => {
                let ix = *by_id
                    .get(&id)
                    .ok_or_else(|| EpisodeError::Unknown { event_type: ANOMALY_UPDATED.to_owned(), id: id.clone() })?;
                join(&mut episodes[ix], &sensors, at_ms);
            }
            AnomalyEvent::Resolved { id, at_ms } => {
                let ix = *by_id
                    .get(&id)
                    .ok_or_else(|| EpisodeError::Unknown { event_type: ANOMALY_RESOLVED.to_owned(), id: id.clone() })?;
                episodes[ix].resolved_ms = Some(at_ms);
            }
        }
    }
    Ok(episodes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alarmed(sensor: u32, test: &str) -> Alarmed {
        Alarmed { sensor, test: test.to_owned(), score: 0.9 }
    }

    #[test]
    fn a_sensor_named_again_by_another_test_joins_again_and_the_same_test_does_not() {
        let id = "P1-L01-M001-0".to_owned();
        let events = vec![
            AnomalyEvent::Detected {
                id: id.clone(),
                machine: "P1-L01-M001".to_owned(),
                started_ms: 0,
                at_ms: 0,
                sensors: vec![alarmed(7, "spike")],
            },
            AnomalyEvent::Updated {
                id: id.clone(),
                at_ms: 60_000,
                sensors: vec![alarmed(7, "spike"), alarmed(8, "drift")],
            },
            AnomalyEvent::Updated {
                id: id.clone(),
                at_ms: 900_000,
                sensors: vec![alarmed(7, "stuck"), alarmed(8, "drift")],
            },
            AnomalyEvent::Resolved { id, at_ms: 1_000_000 },
        ];
        let episodes = fold(events).expect("folds");
        let joined: Vec<(u32, i64, &str)> =
            episodes[0].sensors.iter().map(|j| (j.sensor, j.joined_ms, j.test.as_str())).collect();
        assert_eq!(joined, vec![(7, 0, "spike"), (8, 60_000, "drift"), (7, 900_000, "stuck")]);
    }
}
