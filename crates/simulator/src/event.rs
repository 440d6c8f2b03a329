//! What happens in the factory besides readings: faults, failures, maintenance.
//!
//! These events are both the simulator's output per step and, written one per line as
//! JSON, the ground truth of a run (see the crate documentation for the format).

use serde::{Deserialize, Serialize};

/// The kinds of injected fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    Spike,
    LevelShift,
    Drift,
    Stuck,
    NoiseBurst,
    Dropout,
    /// Several sensors of one machine at once.
    Machine,
    /// A machine's set point changes and its process values do not follow.
    SetpointIgnored,
    /// A valve or damper stops moving while its machine's load asks it to.
    ValveStuck,
    /// A counter stops counting while its machine runs.
    CounterStopped,
    /// A quantised sensor drifts away, step by step.
    QuantisedDrift,
}

impl FaultKind {
    pub const ALL: [FaultKind; 11] = [
        FaultKind::Spike,
        FaultKind::LevelShift,
        FaultKind::Drift,
        FaultKind::Stuck,
        FaultKind::NoiseBurst,
        FaultKind::Dropout,
        FaultKind::Machine,
        FaultKind::SetpointIgnored,
        FaultKind::ValveStuck,
        FaultKind::CounterStopped,
        FaultKind::QuantisedDrift,
    ];

    /// Kinds that pick their own sensors (a valve, a counter, a quantised sensor), whatever
    /// the general rule of which fault a kind of signal admits.
    pub(crate) fn is_of_its_own(self) -> bool {
        matches!(self, FaultKind::ValveStuck | FaultKind::CounterStopped | FaultKind::QuantisedDrift)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            FaultKind::Spike => "spike",
            FaultKind::LevelShift => "level_shift",
            FaultKind::Drift => "drift",
            FaultKind::Stuck => "stuck",
            FaultKind::NoiseBurst => "noise_burst",
            FaultKind::Dropout => "dropout",
            FaultKind::Machine => "machine",
            FaultKind::SetpointIgnored => "setpoint_ignored",
            FaultKind::ValveStuck => "valve_stuck",
            FaultKind::CounterStopped => "counter_stopped",
            FaultKind::QuantisedDrift => "quantised_drift",
        }
    }
}

/// How a fault changes its sensors' readings during `start_ms..end_ms`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FaultShape {
    /// `delta` is added to each reading of the fault (one to a few readings).
    Spike { delta: f64 },
    /// `delta` is added to every reading.
    LevelShift { delta: f64 },
    /// `delta_at_end × (t − start) / (end − start)` is added: a linear ramp.
    Drift { delta_at_end: f64 },
    /// Every reading repeats `value`, the sensor's reading at the start of the fault.
    Stuck { value: f64 },
    /// The noise of every reading has standard deviation `noise_sd` instead of the
    /// sensor's own.
    NoiseBurst { noise_sd: f64 },
    /// No readings at all.
    Dropout,
    /// Sensor `i` of the record gets `deltas[i] × min(1, (t − start) / ramp_ms)` added:
    /// the sensors move together, ramping up, then holding.
    Machine { deltas: Vec<f64>, ramp_ms: i64 },
    /// The machine's load target changes at `start_ms` (its set points step with it) and the
    /// listed process values keep reading as at load `load` instead of following.
    SetpointIgnored { load: f64 },
    /// Every reading of the valve repeats `value` while the machine's load changes.
    ValveStuck { value: f64 },
    /// Every reading of the counter repeats `value` while the machine runs.
    CounterStopped { value: f64 },
    /// As a drift, on a quantised sensor: the readings stay multiples of its resolution.
    QuantisedDrift { delta_at_end: f64 },
}

impl FaultShape {
    pub fn kind(&self) -> FaultKind {
        match self {
            FaultShape::Spike { .. } => FaultKind::Spike,
            FaultShape::LevelShift { .. } => FaultKind::LevelShift,
            FaultShape::Drift { .. } => FaultKind::Drift,
            FaultShape::Stuck { .. } => FaultKind::Stuck,
            FaultShape::NoiseBurst { .. } => FaultKind::NoiseBurst,
            FaultShape::Dropout => FaultKind::Dropout,
            FaultShape::Machine { .. } => FaultKind::Machine,
            FaultShape::SetpointIgnored { .. } => FaultKind::SetpointIgnored,
            FaultShape::ValveStuck { .. } => FaultKind::ValveStuck,
            FaultShape::CounterStopped { .. } => FaultKind::CounterStopped,
            FaultShape::QuantisedDrift { .. } => FaultKind::QuantisedDrift,
        }
    }
}

/// A sensor named by both its wire id and its text id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SensorRef {
    pub id: u32,
    pub name: String,
}

/// One injected fault: where, when, and its exact shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FaultRecord {
    /// `P1`.
    pub plant: String,
    /// Numbered from 1 within the plant; `(plant, fault)` is unique in a run.
    pub fault: u64,
    /// `P1-L03-M042`.
    pub machine: String,
    pub sensors: Vec<SensorRef>,
    /// Readings with `start_ms <= ts_ms < end_ms` are affected. The end may lie beyond
    /// the end of the run.
    pub start_ms: i64,
    pub end_ms: i64,
    #[serde(flatten)]
    pub shape: FaultShape,
}

impl FaultRecord {
    pub fn kind(&self) -> FaultKind {
        self.shape.kind()
    }
    pub fn covers(&self, ts_ms: i64) -> bool {
        (self.start_ms..self.end_ms).contains(&ts_ms)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MaintenanceKind {
    /// Scheduled service before failure.
    Preventive,
    /// Repair after a failure.
    Corrective,
}

/// Something that happened in a step, in the order it happened.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum FactoryEvent {
    /// Emitted at the step of `start_ms`.
    FaultStarted(FaultRecord),
    /// Emitted at the first step at or after the fault's `end_ms`.
    FaultEnded { plant: String, fault: u64, ts_ms: i64 },
    /// The machine's wear reached its limit; it stops and a repair begins at once.
    MachineFailed { plant: String, machine: String, ts_ms: i64, wear: f64 },
    /// The machine stops for maintenance until `until_ms`; `wear` is its wear now.
    MaintenanceStarted { plant: String, machine: String, ts_ms: i64, kind: MaintenanceKind, wear: f64, until_ms: i64 },
    /// The machine runs again with its wear reset to `wear` (close to 0).
    MaintenanceCompleted { plant: String, machine: String, ts_ms: i64, kind: MaintenanceKind, wear: f64 },
}

impl FactoryEvent {
    pub fn ts_ms(&self) -> i64 {
        match self {
            FactoryEvent::FaultStarted(record) => record.start_ms,
            FactoryEvent::FaultEnded { ts_ms, .. }
            | FactoryEvent::MachineFailed { ts_ms, .. }
            | FactoryEvent::MaintenanceStarted { ts_ms, .. }
            | FactoryEvent::MaintenanceCompleted { ts_ms, .. } => *ts_ms,
        }
    }

    pub fn plant(&self) -> &str {
        match self {
            FactoryEvent::FaultStarted(record) => &record.plant,
            FactoryEvent::FaultEnded { plant, .. }
            | FactoryEvent::MachineFailed { plant, .. }
            | FactoryEvent::MaintenanceStarted { plant, .. }
            | FactoryEvent::MaintenanceCompleted { plant, .. } => plant,
        }
    }

    /// The machine concerned, when there is one (a fault's end names only the fault).
    pub fn machine(&self) -> Option<&str> {
        match self {
            FactoryEvent::FaultStarted(record) => Some(&record.machine),
            FactoryEvent::FaultEnded { .. } => None,
            FactoryEvent::MachineFailed { machine, .. }
            | FactoryEvent::MaintenanceStarted { machine, .. }
            | FactoryEvent::MaintenanceCompleted { machine, .. } => Some(machine),
        }
    }
}
