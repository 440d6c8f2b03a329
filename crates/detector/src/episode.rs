//! Machine-level anomaly episodes: turns per-sensor scores into one episode per machine
//! incident (detected, updated as more sensors join, resolved after a quiet period).
//!
//! Opening needs confirmation, so one surprising reading of ordinary noise does not page
//! anyone: an episode opens when
//! * one reading scores at least `extreme_threshold`, or
//! * `confirm_readings` readings (of any sensors of the machine) score at least
//!   `threshold` within `confirm_window_ms`, or
//! * `joint_sensors` different sensors of the machine score at least `joint_threshold`
//!   within `confirm_window_ms` (a machine-level fault that is moderate on each sensor).
//!
//! It resolves when no reading has scored at least `threshold` for `quiet_ms`.
//!
//! A sensor already in the open episode that crosses again with another test, after
//! having been quiet for `quiet_ms`, is a new finding (it spiked with the rest of the
//! machine an hour ago, now it is stuck): its evidence is replaced and the episode is
//! updated, so a fault that begins while an episode is open still reaches the supervisor.
//!
//! Episodes are about state ("this machine is still abnormal"), so the tracker judges each
//! reading by its [`Score::level`] (how abnormal the sensor is now), not by its onset-shaped
//! `score`: a condition that lasts keeps its episode open however old it is.
//!
//! Besides the scores it is given, the tracker scores the machine's sensors against one
//! another (see [`crate::machine`]): a change of load moves all of a machine's sensors and
//! is not an anomaly, while one sensor leaving the others is. Those residual scores open
//! and grow episodes exactly like the sensors' own.

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::config::ConfigError;
use crate::detector::{Score, Test};
use crate::machine::{MachineModel, MachineModelConfig};

pub type SensorId = u32;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EpisodeConfig {
    pub threshold: f32,
    pub extreme_threshold: f32,
    pub confirm_readings: u32,
    pub confirm_window_ms: i64,
    pub joint_threshold: f32,
    pub joint_sensors: u32,
    /// Sensors scoring at least this during an episode are listed as having moved with it.
    pub related_threshold: f32,
    pub quiet_ms: i64,
    /// Bound on sensors listed per episode (the strongest are kept).
    pub max_sensors: usize,
    /// The model of the machine's common mode and the residual tests run on it.
    pub machine: MachineModelConfig,
}

impl Default for EpisodeConfig {
    fn default() -> Self {
        EpisodeConfig {
            threshold: 0.6,
            extreme_threshold: 0.75,
            confirm_readings: 3,
            confirm_window_ms: 10_000,
            joint_threshold: 0.5,
            joint_sensors: 3,
            related_threshold: 0.3,
            quiet_ms: 120_000,
            max_sensors: 32,
            machine: MachineModelConfig::default(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Error)]
pub enum EpisodeConfigError {
    #[error("{field} must lie strictly between 0 and 1, got {got}")]
    NotAFraction { field: &'static str, got: f32 },
    #[error("thresholds must satisfy related <= joint <= threshold <= extreme")]
    Order,
    #[error("{field} must be at least {min}, got {got}")]
    TooSmall { field: &'static str, min: i64, got: i64 },
    #[error("machine model: {0}")]
    Machine(#[from] ConfigError),
}

impl EpisodeConfig {
    pub fn validate(&self) -> Result<(), EpisodeConfigError> {
        for (field, got) in [
            ("threshold", self.threshold),
            ("extreme_threshold", self.extreme_threshold),
            ("joint_threshold", self.joint_threshold),
            ("related_threshold", self.related_threshold),
        ] {
            if !(got.is_finite() && got > 0.0 && got <= 1.0) {
                return Err(EpisodeConfigError::NotAFraction { field, got });
            }
        }
        if !(self.related_threshold <= self.joint_threshold
            && self.joint_threshold <= self.threshold
            && self.threshold <= self.extreme_threshold)
        {
            return Err(EpisodeConfigError::Order);
        }
        for (field, got, min) in [
            ("confirm_readings", i64::from(self.confirm_readings), 1),
            ("confirm_window_ms", self.confirm_window_ms, 0),
            ("joint_sensors", i64::from(self.joint_sensors), 2),
            ("quiet_ms", self.quiet_ms, 1),
            ("max_sensors", self.max_sensors as i64, 1),
        ] {
            if got < min {
                return Err(EpisodeConfigError::TooSmall { field, min, got });
            }
        }
        self.machine.validate()?;
        Ok(())
    }
}

/// Evidence from one sensor: its strongest reading in the episode.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SensorEvidence {
    pub sensor: SensorId,
    /// When this sensor first crossed the threshold (or the related threshold).
    pub first_ms: i64,
    /// When this sensor last crossed it.
    #[serde(default)]
    pub last_ms: i64,
    pub ts_ms: i64,
    pub observed: f64,
    pub expected: f64,
    pub lower: f64,
    pub upper: f64,
    pub test: Test,
    pub score: f32,
}

impl SensorEvidence {
    fn from_score(sensor: SensorId, s: &Score) -> Self {
        SensorEvidence {
            sensor,
            first_ms: s.ts_ms,
            last_ms: s.ts_ms,
            ts_ms: s.ts_ms,
            observed: s.value,
            expected: s.expected,
            lower: s.lower,
            upper: s.upper,
            test: s.test,
            score: s.level,
        }
    }

    /// Folds in more evidence of the same sensor: the earliest first crossing, the latest
    /// crossing, and the strongest reading.
    fn merge(&mut self, other: SensorEvidence) {
        let (first, last) = (self.first_ms.min(other.first_ms), self.last_ms.max(other.last_ms));
        if other.score > self.score {
            *self = other;
        }
        (self.first_ms, self.last_ms) = (first, last);
    }

    /// Whether `s` is a new finding on this sensor rather than more of the same: another
    /// test, after the sensor has been quiet as long as it takes an episode to resolve.
    fn renewed_by(&self, s: &Score, quiet_ms: i64) -> bool {
        s.test != self.test && s.ts_ms.saturating_sub(self.last_ms) >= quiet_ms
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Minor,
    Major,
    Critical,
}

/// Everything an `AnomalyDetected` / `AnomalyUpdated` / `AnomalyResolved` event needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Episode {
    /// `{machine}-{start_ms}`: deterministic, so a replay from a checkpoint names the
    /// episode the same way.
    pub id: String,
    pub machine: String,
    pub start_ms: i64,
    /// Last reading that scored at or above the threshold.
    pub last_alarm_ms: i64,
    /// Sensors that crossed the threshold, strongest first.
    pub sensors: Vec<SensorEvidence>,
    /// Other sensors of the machine that moved with it (above the related threshold).
    pub related: Vec<SensorEvidence>,
    pub peak_score: f32,
    pub severity: Severity,
}

impl Episode {
    /// The strongest evidence (the first of `sensors`).
    pub fn primary(&self) -> Option<&SensorEvidence> {
        self.sensors.first()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum EpisodeEvent {
    Detected(Episode),
    Updated(Episode),
    Resolved { episode: Episode, resolved_ms: i64 },
}

/// Tracks the anomaly episodes of one machine. Feed it every score of the machine's
/// sensors (readings and overdue checks) in roughly time order, and call [`tick`]
/// periodically so episodes resolve even when readings stop.
///
/// [`tick`]: EpisodeTracker::tick
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpisodeTracker {
    machine: String,
    cfg: EpisodeConfig,
    /// Recent readings above the joint threshold, for confirmation.
    pending: Vec<SensorEvidence>,
    open: Option<Episode>,
    #[serde(default)]
    model: MachineModel,
}

impl EpisodeTracker {
    pub fn new(machine: impl Into<String>, cfg: EpisodeConfig) -> Result<Self, EpisodeConfigError> {
        cfg.validate()?;
        Ok(EpisodeTracker {
            machine: machine.into(),
            cfg,
            pending: Vec::new(),
            open: None,
            model: MachineModel::default(),
        })
    }

    pub fn machine(&self) -> &str {
        &self.machine
    }

    pub fn open_episode(&self) -> Option<&Episode> {
        self.open.as_ref()
    }

    /// Feeds one score of one of the machine's sensors. Returns the events it caused, in
    /// order (usually none; a resolution can be followed by a new detection).
    pub fn observe(&mut self, sensor: SensorId, s: &Score) -> Vec<EpisodeEvent> {
        let mut events = Vec::new();
        if let Some(e) = self.tick(s.ts_ms) {
            events.push(e);
        }
        // An overdue check carries the last value again: it is no new instant of the machine.
        if !s.overdue {
            let mut residuals = Vec::new();
            // The settings were validated when the tracker was made, so this cannot fail.
            let _ = self.model.observe(sensor, s.ts_ms, s.value, &self.cfg.machine, &mut residuals);
            for r in residuals {
                if let Some(e) = self.absorb(r.sensor, &r.score) {
                    events.push(e);
                }
            }
            if let Some(c) = self.model.counter_reading(sensor, s.ts_ms, s.value)
                && let Some(e) = self.absorb(sensor, &c)
            {
                events.push(e);
            }
        }
        if let Some(e) = self.absorb(sensor, s) {
            events.push(e);
        }
        events
    }

    /// Leaves a sensor out of the machine model (see [`MachineModel::leave_out`]): its own
    /// scores, from a detector running every test, are all it is judged by.
    pub fn leave_out_of_model(&mut self, sensor: SensorId) {
        self.model.leave_out(sensor);
    }

    /// Judges a counter by the rate its machine's operating point gives (see
    /// [`MachineModel::watch_counter`]), besides its own scores.
    pub fn watch_counter(&mut self, sensor: SensorId) {
        self.model.watch_counter(sensor);
    }

    /// Whether every number the tracker keeps (its machine model and the evidence it holds)
    /// is finite.
    pub fn is_finite(&self) -> bool {
        let evidence_ok = |e: &SensorEvidence| {
            [e.observed, e.expected, e.lower, e.upper].iter().all(|v| v.is_finite()) && e.score.is_finite()
        };
        let episode_ok =
            |ep: &Episode| ep.sensors.iter().chain(&ep.related).all(evidence_ok) && ep.peak_score.is_finite();
        self.model.is_finite() && self.pending.iter().all(evidence_ok) && self.open.as_ref().is_none_or(episode_ok)
    }

    /// Makes a tracker finite again that was loaded from a checkpoint of an older version
    /// (one that let infinity in): a non-finite machine model starts learning again and
    /// non-finite evidence is dropped; the open episode keeps its id, so it is still
    /// resolved. Returns whether anything had to be repaired.
    pub fn repair(&mut self) -> bool {
        if self.is_finite() {
            return false;
        }
        let evidence_ok = |e: &SensorEvidence| {
            [e.observed, e.expected, e.lower, e.upper].iter().all(|v| v.is_finite()) && e.score.is_finite()
        };
        if !self.model.is_finite() {
            self.model = MachineModel::default();
        }
        self.pending.retain(evidence_ok);
        if let Some(open) = self.open.as_mut() {
            open.sensors.retain(evidence_ok);
            open.related.retain(evidence_ok);
            if !open.peak_score.is_finite() {
                open.peak_score = open.sensors.iter().map(|e| e.score).fold(0.0, f32::max);
            }
        }
        true
    }

    /// Whether the machine's common mode is learned, so its residual tests speak.
    pub fn machine_model_ready(&self) -> bool {
        self.model.ready(&self.cfg.machine)
    }

    fn absorb(&mut self, sensor: SensorId, s: &Score) -> Option<EpisodeEvent> {
        let cfg = &self.cfg;
        if s.level < cfg.related_threshold || s.test == Test::None {
            return None;
        }
        if let Some(ep) = &mut self.open {
            if s.level >= cfg.threshold {
                ep.last_alarm_ms = ep.last_alarm_ms.max(s.ts_ms);
                let before_sev = ep.severity;
                // A sensor joining, or one renewed by a new finding, is announced.
                let mut announce = false;
                if let Some(e) = ep.sensors.iter_mut().find(|e| e.sensor == sensor) {
                    if e.renewed_by(s, cfg.quiet_ms) {
                        *e = SensorEvidence::from_score(sensor, s);
                        announce = true;
                    } else {
                        e.merge(SensorEvidence::from_score(sensor, s));
                    }
                } else {
                    let mut ev = SensorEvidence::from_score(sensor, s);
                    if let Some(pos) = ep.related.iter().position(|e| e.sensor == sensor) {
                        ev.first_ms = ep.related.remove(pos).first_ms;
                    }
                    ep.sensors.push(ev);
                    announce = true;
                }
                finish(ep, cfg.max_sensors);
                if announce || ep.severity > before_sev {
                    return Some(EpisodeEvent::Updated(ep.clone()));
                }
            } else if !ep.sensors.iter().any(|e| e.sensor == sensor) {
                if let Some(e) = ep.related.iter_mut().find(|e| e.sensor == sensor) {
                    e.merge(SensorEvidence::from_score(sensor, s));
                } else if ep.related.len() < cfg.max_sensors {
                    ep.related.push(SensorEvidence::from_score(sensor, s));
                }
            }
            return None;
        }
        if s.level < cfg.joint_threshold {
            return None;
        }
        let horizon = s.ts_ms.saturating_sub(cfg.confirm_window_ms);
        self.pending.retain(|e| e.ts_ms >= horizon);
        self.pending.push(SensorEvidence::from_score(sensor, s));
        let strong = self.pending.iter().filter(|e| e.score >= cfg.threshold).count();
        let mut distinct: Vec<SensorId> = self.pending.iter().map(|e| e.sensor).collect();
        distinct.sort_unstable();
        distinct.dedup();
        let confirmed = s.level >= cfg.extreme_threshold
            || strong >= cfg.confirm_readings as usize
            || distinct.len() >= cfg.joint_sensors as usize;
        if !confirmed {
            return None;
        }
        let mut sensors: Vec<SensorEvidence> = Vec::new();
        for e in self.pending.drain(..) {
            if let Some(x) = sensors.iter_mut().find(|x| x.sensor == e.sensor) {
                x.merge(e);
            } else {
                sensors.push(e);
            }
        }
        let start_ms = sensors.iter().map(|e| e.first_ms).min().unwrap_or(s.ts_ms);
        let mut ep = Episode {
            id: format!("{}-{}", self.machine, start_ms),
            machine: self.machine.clone(),
            start_ms,
            last_alarm_ms: s.ts_ms,
            sensors,
            related: Vec::new(),
            peak_score: 0.0,
            severity: Severity::Minor,
        };
        finish(&mut ep, cfg.max_sensors);
        self.open = Some(ep.clone());
        Some(EpisodeEvent::Detected(ep))
    }

    /// Resolves the open episode if it has been quiet for `quiet_ms` at `now_ms`.
    pub fn tick(&mut self, now_ms: i64) -> Option<EpisodeEvent> {
        let quiet = self.cfg.quiet_ms;
        let due = self.open.as_ref().is_some_and(|ep| now_ms.saturating_sub(ep.last_alarm_ms) >= quiet);
        if due {
            let episode = self.open.take()?;
            let resolved_ms = episode.last_alarm_ms.saturating_add(quiet);
            return Some(EpisodeEvent::Resolved { episode, resolved_ms });
        }
        None
    }
}

/// Orders evidence strongest first, bounds it, and derives peak and severity:
/// critical when three or more sensors are involved or two with a near-certain score;
/// major when two sensors are involved or one reading scores at least 0.9; minor otherwise.
fn finish(ep: &mut Episode, max: usize) {
    ep.sensors.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.sensor.cmp(&b.sensor)));
    ep.sensors.truncate(max);
    ep.related.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.sensor.cmp(&b.sensor)));
    ep.related.truncate(max);
    ep.peak_score = ep.sensors.first().map_or(0.0, |e| e.score);
    let breadth = ep.sensors.len();
    ep.severity = if breadth >= 3 || (breadth >= 2 && ep.peak_score >= 0.95) {
        Severity::Critical
    } else if breadth >= 2 || ep.peak_score >= 0.9 {
        Severity::Major
    } else {
        Severity::Minor
    };
}
