//! A recorded simulator run turned into what a maintenance model learns from: every
//! machine's hourly rows (the shared feature columns of `maintenance::FactoryColumns`) and
//! its failures and services, cut into runs.
//!
//! Readings are folded into per-sensor hourly aggregates exactly as the plant's
//! `sensor_hour` read model holds them (count, min, max, mean over the clock hour), and
//! each machine's hour becomes a row through the same function the plant's scorer calls.
//!
//! A *run* is the time a machine works between two maintenance stops. It starts when a
//! service or repair is completed (its origin) or, for a machine already working when the
//! recording began, at the first hour of the recording (origin unknown). It ends in a
//! failure, in a preventive service (censored: it would have lasted longer), or with the
//! end of the recording (censored). Its rows are the clock hours that begin at or after
//! its start and end at or before its end, so no hour mixes in a stopped machine's idle
//! readings; a run of unknown origin also keeps the recording's first, partial hour, as
//! the plant's read model does.

use std::collections::BTreeMap;
use std::path::Path;

use layout::{Layout, Scale};
use maintenance::{FactoryColumns, HOUR_MS, HistoryTable, MachineSchema, Outcome, OutcomeKind, RunEnd, SensorHour};
use serde::{Deserialize, Serialize};
use simulator::{FactoryEvent, MaintenanceKind, Manifest};

use crate::error::Error;

/// At most this many readings are read from one recording (about 100 plant-months at one
/// reading a minute): a bound on time, not on memory, which grows with hours × sensors.
pub const MAX_READINGS: u64 = 50_000_000_000;

/// How a recording is read.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ReadOptions {
    /// The layout file the run was simulated with (default: the shipped layout).
    pub layout_toml: Option<String>,
    /// Only these plants (`P1`, …); all when empty.
    pub plants: Vec<String>,
}

/// One machine's rows and stops.
#[derive(Debug, Clone, PartialEq)]
pub struct MachineHistory {
    /// `P1-L03-M042`.
    pub id: String,
    pub schema: MachineSchema,
    /// Start of every hour with readings, increasing.
    pub hours: Vec<i64>,
    /// One row per hour, `columns.names().len()` values each.
    pub rows: Vec<Vec<f64>>,
    /// Failures and maintenance, in time order.
    pub stops: Vec<Stop>,
}

/// A moment a machine stopped or started again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stop {
    pub ts_ms: i64,
    pub kind: StopKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopKind {
    Failed,
    ServiceStarted,
    /// A service or a repair completed: the machine works again.
    Completed,
}

/// One run of one machine.
#[derive(Debug, Clone, PartialEq)]
pub struct Run {
    /// `P1-L03-M042@2`: machine and run number (from 0).
    pub unit: String,
    /// Index into [`FactoryHistory::machines`].
    pub machine: usize,
    /// When the run began (ms); the origin when `origin_known`.
    pub start_ms: i64,
    pub origin_known: bool,
    pub end_ms: i64,
    pub end: RunEndKind,
    /// Rows of the machine's history that belong to the run.
    pub rows: std::ops::Range<usize>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunEndKind {
    Failed,
    Serviced,
    /// The recording ended.
    Open,
}

/// Everything read from a recording.
#[derive(Debug, Clone)]
pub struct FactoryHistory {
    pub columns: FactoryColumns,
    pub machines: Vec<MachineHistory>,
    pub start_ms: i64,
    /// End of the recording (after its last step).
    pub end_ms: i64,
    pub readings: u64,
    /// Readings for an hour already closed (out of order) or an unknown sensor.
    pub readings_ignored: u64,
}

impl FactoryHistory {
    /// Every run of every machine.
    pub fn runs(&self) -> Vec<Run> {
        let mut out = Vec::new();
        for (m, machine) in self.machines.iter().enumerate() {
            let mut start = self.start_ms;
            let mut origin_known = false;
            let mut k = 0usize;
            let mut close = |start: i64, origin_known: bool, end_ms: i64, end: RunEndKind, out: &mut Vec<Run>| {
                let first = if origin_known { start } else { maintenance::hour_of_ms(start) };
                let lo = machine.hours.partition_point(|&h| h < first);
                let hi = machine.hours.partition_point(|&h| h + HOUR_MS <= end_ms);
                if hi > lo {
                    out.push(Run {
                        unit: format!("{}@{k}", machine.id),
                        machine: m,
                        start_ms: start,
                        origin_known,
                        end_ms,
                        end,
                        rows: lo..hi,
                    });
                    k += 1;
                }
            };
            let mut running = true;
            for stop in &machine.stops {
                match stop.kind {
                    StopKind::Failed | StopKind::ServiceStarted if running => {
                        let end = if stop.kind == StopKind::Failed { RunEndKind::Failed } else { RunEndKind::Serviced };
                        close(start, origin_known, stop.ts_ms, end, &mut out);
                        running = false;
                    }
                    StopKind::Completed => {
                        start = stop.ts_ms;
                        origin_known = true;
                        running = true;
                    }
                    // A second stop while stopped (a repair's start after its failure).
                    StopKind::Failed | StopKind::ServiceStarted => {}
                }
            }
            if running {
                close(start, origin_known, self.end_ms, RunEndKind::Open, &mut out);
            }
        }
        out
    }

    /// A table of these runs (one unit each, time in days) and how each ended.
    pub fn table(&self, runs: &[Run]) -> Result<(HistoryTable, std::collections::HashMap<String, RunEnd>), Error> {
        let mut table = HistoryTable::new(self.columns.names().to_vec())?;
        let mut ends = std::collections::HashMap::new();
        for run in runs {
            let machine = &self.machines[run.machine];
            let origin = run.origin_known.then(|| maintenance::days_of_ms(run.start_ms));
            table.start_unit_with(&run.unit, origin)?;
            for r in run.rows.clone() {
                table.push_row(&run.unit, maintenance::hour_row_time(machine.hours[r]), &machine.rows[r])?;
            }
            let at = maintenance::days_of_ms(run.end_ms);
            let end = match run.end {
                RunEndKind::Failed => RunEnd::Failed { at },
                RunEndKind::Serviced | RunEndKind::Open => RunEnd::Censored { at },
            };
            ends.insert(run.unit.clone(), end);
        }
        Ok((table, ends))
    }

    /// The failures and services of these machines, as the lead-time evaluation wants them
    /// (unit = machine id, time in days).
    pub fn outcomes(&self, machines: &[usize]) -> Vec<Outcome> {
        let mut out = Vec::new();
        for &m in machines {
            let machine = &self.machines[m];
            for stop in &machine.stops {
                let kind = match stop.kind {
                    StopKind::Failed => OutcomeKind::Failure,
                    StopKind::ServiceStarted => OutcomeKind::Maintenance,
                    StopKind::Completed => continue,
                };
                out.push(Outcome { unit: machine.id.clone(), time: maintenance::days_of_ms(stop.ts_ms), kind });
            }
        }
        out
    }
}

/// Reads a recording made by `floorwatch simulate --output DIR` (or `simulator::write_run`).
pub fn read_history(dir: &Path, options: &ReadOptions) -> Result<FactoryHistory, Error> {
    let manifest = simulator::read_manifest(dir)?;
    if !manifest.complete {
        return Err(Error::Incomplete(dir.to_path_buf()));
    }
    let layout = layout_of(&manifest, options)?;
    let wanted: Vec<&simulator::ManifestPlant> =
        manifest.plants.iter().filter(|p| options.plants.is_empty() || options.plants.contains(&p.id)).collect();
    if let Some(missing) = options.plants.iter().find(|id| !manifest.plants.iter().any(|p| &p.id == *id)) {
        return Err(Error::UnknownPlant(missing.clone()));
    }
    let mut machines = Vec::new();
    let mut plant_ranges = Vec::new();
    for plant in &wanted {
        let p = layout.plant_by_id(&plant.id).ok_or_else(|| Error::UnknownPlant(plant.id.clone()))?;
        let first = machines.len();
        for m in &layout.machines()[p.machines.clone()] {
            let machine_type = layout.machine_type_of(m);
            let sensors =
                layout.sensors_in(&m.sensors).iter().map(|s| (s.id, machine_type.sensors[s.spec].kind.as_str()));
            let schema = MachineSchema::new(&machine_type.name, sensors)?;
            machines.push(MachineHistory {
                id: m.id.clone(),
                schema,
                hours: Vec::new(),
                rows: Vec::new(),
                stops: Vec::new(),
            });
        }
        plant_ranges.push((plant.id.clone(), p.sensor_ids.clone(), first..machines.len()));
    }
    let columns = FactoryColumns::of_machines(machines.iter().map(|m| &m.schema));
    let end_ms = manifest.last_ts_ms.map_or(manifest.start_ms, |t| t.saturating_add(step_of(&manifest)));
    let mut history =
        FactoryHistory { columns, machines, start_ms: manifest.start_ms, end_ms, readings: 0, readings_ignored: 0 };
    for (plant_id, sensor_ids, range) in &plant_ranges {
        read_plant(dir, plant_id, sensor_ids.clone(), range.clone(), &mut history)?;
    }
    read_stops(dir, &mut history)?;
    Ok(history)
}

/// The layout the run was simulated with: the given (or shipped) layout file at the scale
/// the manifest records, checked against the manifest's gateways and sensor counts.
fn layout_of(manifest: &Manifest, options: &ReadOptions) -> Result<Layout, Error> {
    let first = manifest.plants.first().ok_or(Error::NoPlants)?;
    let scale = Scale {
        plants: Some(manifest.plants.len() as u32),
        lines_per_plant: Some(first.gateways.len() as u32),
        sensors_per_plant: Some(u32::try_from(first.sensors).unwrap_or(u32::MAX)),
    };
    let text = options.layout_toml.as_deref().unwrap_or(layout::DEFAULT_LAYOUT_TOML);
    let layout = Layout::from_toml(text, &scale)?;
    for plant in &manifest.plants {
        let p = layout.plant_by_id(&plant.id).ok_or_else(|| Error::LayoutMismatch(plant.id.clone()))?;
        let gateways: Vec<&str> = layout.lines()[p.lines.clone()].iter().map(|l| l.id.as_str()).collect();
        if gateways != plant.gateways.iter().map(String::as_str).collect::<Vec<_>>()
            || p.sensors.len() as u64 != plant.sensors
        {
            return Err(Error::LayoutMismatch(plant.id.clone()));
        }
    }
    Ok(layout)
}

fn step_of(manifest: &Manifest) -> i64 {
    i64::try_from(manifest.config.step_ms).unwrap_or(0)
}

/// Running aggregate of one sensor over the open hour.
#[derive(Debug, Clone, Copy)]
struct Acc {
    count: i64,
    min: f64,
    max: f64,
    sum: f64,
}

impl Acc {
    const EMPTY: Acc = Acc { count: 0, min: f64::INFINITY, max: f64::NEG_INFINITY, sum: 0.0 };
}

fn read_plant(
    dir: &Path,
    plant_id: &str,
    sensor_ids: std::ops::Range<u32>,
    machines: std::ops::Range<usize>,
    history: &mut FactoryHistory,
) -> Result<(), Error> {
    let reader = simulator::open_readings(dir, plant_id)?;
    let base = sensor_ids.start;
    let width = (sensor_ids.end - sensor_ids.start) as usize;
    let mut acc = vec![Acc::EMPTY; width];
    let mut open_hour: Option<i64> = None;
    // Each machine's sensors as indices into `acc`.
    let sensor_slots: Vec<Vec<u32>> = history.machines[machines.clone()].iter().map(|m| m.schema.sensors()).collect();
    let flush = |hour: i64, acc: &mut [Acc], history: &mut FactoryHistory| {
        let mut hours = Vec::new();
        for (k, m) in machines.clone().enumerate() {
            hours.clear();
            for &id in &sensor_slots[k] {
                let Some(a) = acc.get_mut((id - base) as usize) else { continue };
                if a.count > 0 {
                    hours.push(SensorHour {
                        sensor: id,
                        hour_ms: hour,
                        count: a.count,
                        min: a.min,
                        max: a.max,
                        mean: a.sum / a.count as f64,
                    });
                }
                *a = Acc::EMPTY;
            }
            if hours.is_empty() {
                continue;
            }
            let row = history.columns.row(&history.machines[m].schema, &hours);
            let machine = &mut history.machines[m];
            machine.hours.push(hour);
            machine.rows.push(row);
        }
    };
    for record in reader {
        let record = record.map_err(|source| Error::Replay { plant: plant_id.into(), source: Box::new(source) })?;
        let readings =
            record.readings().map_err(|e| Error::Batch { plant: plant_id.into(), message: e.to_string() })?;
        for r in readings {
            history.readings += 1;
            if history.readings > MAX_READINGS {
                return Err(Error::TooManyReadings(MAX_READINGS));
            }
            let hour = maintenance::hour_of_ms(r.ts_ms);
            match open_hour {
                Some(h) if hour < h => {
                    history.readings_ignored += 1;
                    continue;
                }
                Some(h) if hour > h => {
                    flush(h, &mut acc, history);
                    open_hour = Some(hour);
                }
                None => open_hour = Some(hour),
                Some(_) => {}
            }
            let Some(a) = r.sensor.checked_sub(base).and_then(|i| acc.get_mut(i as usize)) else {
                history.readings_ignored += 1;
                continue;
            };
            if !r.value.is_finite() {
                history.readings_ignored += 1;
                continue;
            }
            a.count += 1;
            a.min = a.min.min(r.value);
            a.max = a.max.max(r.value);
            a.sum += r.value;
        }
    }
    if let Some(h) = open_hour {
        flush(h, &mut acc, history);
    }
    Ok(())
}

fn read_stops(dir: &Path, history: &mut FactoryHistory) -> Result<(), Error> {
    let index: BTreeMap<String, usize> = history.machines.iter().enumerate().map(|(i, m)| (m.id.clone(), i)).collect();
    for event in simulator::open_ground_truth(dir)? {
        let event = event.map_err(|e| Error::GroundTruth(e.to_string()))?;
        let (machine, stop) = match &event {
            FactoryEvent::MachineFailed { machine, ts_ms, .. } => {
                (machine, Stop { ts_ms: *ts_ms, kind: StopKind::Failed })
            }
            FactoryEvent::MaintenanceStarted { machine, ts_ms, kind: MaintenanceKind::Preventive, .. } => {
                (machine, Stop { ts_ms: *ts_ms, kind: StopKind::ServiceStarted })
            }
            FactoryEvent::MaintenanceCompleted { machine, ts_ms, .. } => {
                (machine, Stop { ts_ms: *ts_ms, kind: StopKind::Completed })
            }
            _ => continue,
        };
        if let Some(&m) = index.get(machine) {
            history.machines[m].stops.push(stop);
        }
    }
    for m in &mut history.machines {
        m.stops.sort_by_key(|s| s.ts_ms);
    }
    Ok(())
}
