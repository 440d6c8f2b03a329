//! The ground truth of a run: the injected faults and the machines' downtime, read from the
//! simulator's `ground-truth.jsonl` (or taken from its steps) and checked before scoring.

use std::collections::{BTreeMap, BTreeSet};
use std::io::BufRead;

use simulator::{FactoryEvent, FaultRecord, FaultShape, GroundTruthError, read_ground_truth};
use thiserror::Error;

/// Longest list of sensors accepted for one fault: a machine fault names at most a
/// machine's sensors, and no machine type has more than a few dozen.
pub const MAX_FAULT_SENSORS: usize = 1_000;

/// A machine stopped for maintenance or repair.
#[derive(Debug, Clone, PartialEq)]
pub struct Downtime {
    pub machine: String,
    pub start_ms: i64,
    /// When it ran again; `None` if it was still down when the record ends.
    pub end_ms: Option<i64>,
}

/// What was injected into a run, and when its machines were down.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GroundTruth {
    pub faults: Vec<FaultRecord>,
    pub downtime: Vec<Downtime>,
    /// Faults (plant, number) whose window held no reading of any of their sensors (an
    /// irregular sensor silent all through a two-second spike): no detector can see them,
    /// so they are reported apart rather than counted as missed. Known only where the
    /// readings were seen (a run simulated or replayed, not one scored from a log).
    pub unread: BTreeSet<(String, u64)>,
}

/// Finds the faults whose window holds no reading of their sensors: told of each fault as
/// it starts and of every reading after, it keeps the faults that have seen none (a
/// dropout, whose silence is the fault, is never one of them).
#[derive(Debug, Default)]
pub struct UnreadFaults {
    /// Faults not yet read, by sensor id: (plant, fault, start, end).
    waiting: BTreeMap<u32, Vec<(String, u64, i64, i64)>>,
    /// Faults read at least once.
    read: BTreeSet<(String, u64)>,
    all: BTreeSet<(String, u64)>,
}

impl UnreadFaults {
    pub fn new() -> Self {
        UnreadFaults::default()
    }

    /// A fault starts. A dropout is left out: its silence is the fault, which is seen
    /// without any reading.
    pub fn fault(&mut self, record: &FaultRecord) {
        if record.kind() == simulator::FaultKind::Dropout {
            return;
        }
        self.all.insert((record.plant.clone(), record.fault));
        for s in &record.sensors {
            self.waiting.entry(s.id).or_default().push((
                record.plant.clone(),
                record.fault,
                record.start_ms,
                record.end_ms,
            ));
        }
    }

    /// A reading of `sensor` at `ts_ms` (the faults it falls in are read).
    #[inline]
    pub fn reading(&mut self, sensor: u32, ts_ms: i64) {
        if self.waiting.is_empty() {
            return;
        }
        let Some(faults) = self.waiting.get_mut(&sensor) else { return };
        faults.retain(|(plant, fault, start, end)| {
            if (*start..*end).contains(&ts_ms) {
                self.read.insert((plant.clone(), *fault));
                false
            } else {
                true
            }
        });
        if faults.is_empty() {
            self.waiting.remove(&sensor);
        }
    }

    /// The faults no reading fell in.
    pub fn finish(self) -> BTreeSet<(String, u64)> {
        self.all.difference(&self.read).cloned().collect()
    }
}

#[derive(Debug, Error)]
pub enum TruthError {
    #[error("ground truth: {0}")]
    Read(#[from] GroundTruthError),
    #[error("ground truth: fault {plant}#{fault}: {reason}")]
    InvalidFault { plant: String, fault: u64, reason: String },
    #[error("ground truth: fault {plant}#{fault} is started twice")]
    DuplicateFault { plant: String, fault: u64 },
    #[error("ground truth: maintenance of machine {machine:?} at {ts_ms}: {reason}")]
    InvalidMaintenance { machine: String, ts_ms: i64, reason: &'static str },
}

/// Collects factory events into a checked [`GroundTruth`].
#[derive(Debug, Default)]
pub struct TruthBuilder {
    truth: GroundTruth,
    seen: BTreeSet<(String, u64)>,
    /// Index into `truth.downtime` of each machine's open downtime.
    down: BTreeMap<String, usize>,
}

impl TruthBuilder {
    pub fn new() -> Self {
        TruthBuilder::default()
    }

    pub fn push(&mut self, event: &FactoryEvent) -> Result<(), TruthError> {
        match event {
            FactoryEvent::FaultStarted(record) => {
                check_fault(record)?;
                if !self.seen.insert((record.plant.clone(), record.fault)) {
                    return Err(TruthError::DuplicateFault { plant: record.plant.clone(), fault: record.fault });
                }
                self.truth.faults.push(record.clone());
            }
            FactoryEvent::MaintenanceStarted { machine, ts_ms, until_ms, .. } => {
                if machine.is_empty() {
                    return Err(TruthError::InvalidMaintenance {
                        machine: machine.clone(),
                        ts_ms: *ts_ms,
                        reason: "no machine named",
                    });
                }
                if until_ms < ts_ms {
                    return Err(TruthError::InvalidMaintenance {
                        machine: machine.clone(),
                        ts_ms: *ts_ms,
                        reason: "it ends before it starts",
                    });
                }
                self.down.insert(machine.clone(), self.truth.downtime.len());
                self.truth.downtime.push(Downtime { machine: machine.clone(), start_ms: *ts_ms, end_ms: None });
            }
            FactoryEvent::MaintenanceCompleted { machine, ts_ms, .. } => {
                // A machine already down when the record began has no start: it counts
                // as down from the beginning.
                match self.down.remove(machine) {
                    Some(ix) => self.truth.downtime[ix].end_ms = Some(*ts_ms),
                    None => self.truth.downtime.push(Downtime {
                        machine: machine.clone(),
                        start_ms: i64::MIN,
                        end_ms: Some(*ts_ms),
                    }),
                }
            }
            FactoryEvent::FaultEnded { .. } | FactoryEvent::MachineFailed { .. } => {}
        }
        Ok(())
    }

    pub fn finish(self) -> GroundTruth {
        self.truth
    }
}

fn check_fault(record: &FaultRecord) -> Result<(), TruthError> {
    let invalid =
        |reason: String| TruthError::InvalidFault { plant: record.plant.clone(), fault: record.fault, reason };
    if record.plant.is_empty() || record.machine.is_empty() {
        return Err(invalid("names no plant or no machine".into()));
    }
    if !record.machine.starts_with(&format!("{}-", record.plant)) {
        return Err(invalid(format!("machine {} is not in plant {}", record.machine, record.plant)));
    }
    if record.sensors.is_empty() || record.sensors.len() > MAX_FAULT_SENSORS {
        return Err(invalid(format!("names {} sensors; a fault names 1 to {MAX_FAULT_SENSORS}", record.sensors.len())));
    }
    if record.end_ms <= record.start_ms {
        return Err(invalid(format!("ends at {} ms, not after its start at {} ms", record.end_ms, record.start_ms)));
    }
    if let FaultShape::Machine { deltas, .. } = &record.shape
        && deltas.len() != record.sensors.len()
    {
        return Err(invalid(format!("has {} deltas for {} sensors", deltas.len(), record.sensors.len())));
    }
    Ok(())
}

/// Reads and checks ground-truth JSON lines (the simulator's `ground-truth.jsonl`).
pub fn read_truth<R: BufRead>(input: R) -> Result<GroundTruth, TruthError> {
    let mut builder = TruthBuilder::new();
    for event in read_ground_truth(input) {
        builder.push(&event?)?;
    }
    Ok(builder.finish())
}
