//! One plant's simulation: its sensors' signals, its machines and its faults, step by step.

use crate::config::{ConfigError, SimConfig, check_step_ms};
use crate::event::{FactoryEvent, FaultKind, FaultRecord, MaintenanceKind, SensorRef};
use crate::fault::{ActiveFault, FaultBook, NO_FAULT, SensorScale};
use crate::machine::{Change, MachineSim, MachineState};
use crate::seed::{Purpose, SimRng, stream};
use crate::{GatewayBatch, Step};
use layout::{Layout, NoiseKind, SignalKind};
use rand::RngExt;
use rand_distr::StandardNormal;
use std::ops::Range;
use std::sync::Arc;
use telemetry::Reading;
use thiserror::Error;

/// Load at which a sensor reads its nominal value.
pub const TYPICAL_LOAD: f64 = 0.75;
/// Correlation time of a sensor's slow drift.
const DRIFT_TIME_MS: f64 = 2.0 * 86_400_000.0;
/// Drift is updated at most once per ten simulated minutes: it moves over days (each
/// update moves it by under a tenth of its spread, far below the noise), and updating it
/// every step would cost a second random draw per reading.
const DRIFT_UPDATE_MS: i64 = 600_000;
const MS_PER_DAY: i64 = 86_400_000;
/// Below this load a machine idles: its states read off, its flat-when-idle sensors rest.
const IDLE_LOAD: f64 = 0.2;
/// A normally spiky sensor spikes about once in this many readings.
const SPIKE_EVERY_READINGS: f64 = 240.0;

#[derive(Debug, Clone, PartialEq, Error)]
pub enum SimError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("the layout has no plant at index {0}")]
    NoSuchPlant(usize),
    #[error("machine {machine} is not in plant {plant}")]
    MachineOutsidePlant { machine: String, plant: String },
    #[error("no machines to simulate")]
    NoMachines,
}

/// The state of one sensor that changes from step to step, and its fixed parameters.
#[derive(Debug, Clone)]
struct SensorSim {
    rng: SimRng,
    id: u32,
    level: f64,
    drift: f64,
    drift_sd: f64,
    /// Daily cycle `a·sin(θ + φ)` written as `a·cos φ · sin θ + a·sin φ · cos θ`, so a
    /// step computes one sine for the whole plant rather than one per sensor.
    day_sin: f64,
    day_cos: f64,
    load_gain: f64,
    wear_gain: f64,
    noise_sd: f64,
    signal: SignalKind,
    noise: NoiseKind,
    resolution: f64,
    flat_when_idle: bool,
    irregular: bool,
    /// The normal band: a state's off and on values, a valve's closed and open positions,
    /// the rest value of a flat-when-idle sensor.
    low: f64,
    high: f64,
    /// A counter's count (fractional between whole parts) and its rate per millisecond at
    /// typical load.
    count: f64,
    count_per_ms: f64,
    /// The current batch cycle: start, length and share of it spent high.
    cycle_start_ms: i64,
    cycle_ms: i64,
    duty: f64,
}

/// A plant of the factory, simulated on its own. Its output depends only on the layout,
/// the configuration, the seed, the plant's number and the steps taken, so plants can be
/// stepped on separate threads with the same result.
#[derive(Debug, Clone)]
pub struct PlantSim {
    plant_id: Arc<str>,
    plant_number: u16,
    config: SimConfig,
    gateway_ids: Vec<Arc<str>>,
    /// Global index (in the layout) of the plant's first line and machine.
    first_line: usize,
    first_machine: usize,
    machine_ids: Vec<String>,
    machine_line: Vec<usize>,
    machine_sensors: Vec<Range<usize>>,
    sensor_names: Vec<String>,
    sensors: Vec<SensorSim>,
    scales: Vec<SensorScale>,
    machines: Vec<MachineSim>,
    faults: FaultBook,
    /// Plant-local indices of the machines simulated (all, unless built for a few).
    scope: Vec<usize>,
    in_scope: Vec<bool>,
    day_offset_ms: i64,
    step_ms: i64,
    next_ts_ms: i64,
    last_ts_ms: Option<i64>,
    last_drift_ms: i64,
    /// Scratch space reused between steps.
    changes: Vec<Change>,
    ended: Vec<ActiveFault>,
    started: Vec<usize>,
}

impl PlantSim {
    /// Simulates every machine and sensor of plant `plant` (an index of `layout.plants()`).
    pub fn new(layout: &Layout, plant: usize, config: &SimConfig, seed: u64, start_ms: i64) -> Result<Self, SimError> {
        let p = layout.plants().get(plant).ok_or(SimError::NoSuchPlant(plant))?;
        let all: Vec<usize> = p.machines.clone().collect();
        Self::build(layout, plant, &all, config, seed, start_ms)
    }

    /// Simulates only the given machines (indices of `layout.machines()`, all in plant
    /// `plant`). Their readings and events are exactly those of the full plant, at a
    /// fraction of the cost: each sensor and machine has its own random stream, and the
    /// plant's fault arrivals are drawn in full either way.
    pub fn for_machines(
        layout: &Layout,
        plant: usize,
        machines: &[usize],
        config: &SimConfig,
        seed: u64,
        start_ms: i64,
    ) -> Result<Self, SimError> {
        Self::build(layout, plant, machines, config, seed, start_ms)
    }

    fn build(
        layout: &Layout,
        plant: usize,
        machines: &[usize],
        config: &SimConfig,
        seed: u64,
        start_ms: i64,
    ) -> Result<Self, SimError> {
        config.validate()?;
        let p = layout.plants().get(plant).ok_or(SimError::NoSuchPlant(plant))?;
        let mut scope = Vec::with_capacity(machines.len());
        for &m in machines {
            if !p.machines.contains(&m) {
                let machine = layout.machines().get(m).map_or_else(|| format!("#{m}"), |m| m.id.clone());
                return Err(SimError::MachineOutsidePlant { machine, plant: p.id.clone() });
            }
            scope.push(m - p.machines.start);
        }
        scope.sort_unstable();
        scope.dedup();
        if scope.is_empty() {
            return Err(SimError::NoMachines);
        }
        let number = p.number;
        let first_sensor = p.sensors.start;
        let plant_id: Arc<str> = p.id.as_str().into();

        let mut plant_rng = stream(seed, number, Purpose::Plant, 0);
        // Plants sit in different time zones: shift the daily cycle by whole hours.
        let day_offset_ms = plant_rng.random_range(0..24) * 3_600_000;

        let machine_list = &layout.machines()[p.machines.clone()];
        let mut sims = Vec::with_capacity(machine_list.len());
        for (i, m) in machine_list.iter().enumerate() {
            let life = layout.machine_type_of(m).life_days;
            sims.push(MachineSim::new(stream(seed, number, Purpose::Machine, i as u64), life, config, start_ms));
        }
        let mut sensors = Vec::with_capacity(p.sensors.len());
        let mut scales = Vec::with_capacity(p.sensors.len());
        for (i, s) in layout.sensors_in(&p.sensors).iter().enumerate() {
            let spec = layout.sensor_at(first_sensor + i).spec;
            let mut rng = stream(seed, number, Purpose::Sensor, i as u64);
            let width = spec.normal_max - spec.normal_min;
            let amplitude = spec.daily_amplitude * rng.random_range(0.7..1.3);
            let phase: f64 = rng.random_range(-0.3..0.3);
            let drift_sd = spec.drift_sd * rng.random_range(0.5..1.5);
            let drift = drift_sd * rng.sample::<f64, _>(StandardNormal);
            let noise_sd = spec.noise_sd * rng.random_range(0.8..1.25);
            let count_per_ms = spec.nominal.max(0.0) / 60_000.0 * rng.random_range(0.8..1.25);
            sensors.push(SensorSim {
                signal: spec.signal,
                noise: spec.noise,
                resolution: spec.resolution,
                flat_when_idle: spec.flat_when_idle,
                irregular: spec.irregular,
                low: spec.normal_min,
                high: spec.normal_max,
                count: 0.0,
                count_per_ms,
                cycle_start_ms: start_ms,
                cycle_ms: 0,
                duty: 0.5,
                id: s.id,
                level: spec.nominal + width * rng.random_range(-0.04..0.04),
                drift,
                drift_sd,
                day_sin: amplitude * phase.cos(),
                day_cos: amplitude * phase.sin(),
                load_gain: spec.load_response * rng.random_range(0.85..1.15),
                wear_gain: spec.wear_response * rng.random_range(0.7..1.3),
                noise_sd,
                rng,
            });
            let follows_load = spec.signal == SignalKind::Analog && spec.load_response.abs() > 10.0 * spec.noise_sd;
            scales.push(SensorScale {
                width,
                noise_sd,
                signal: spec.signal,
                resolution: spec.resolution,
                follows_load,
            });
        }
        let machine_sensors: Vec<Range<usize>> =
            machine_list.iter().map(|m| m.sensors.start - first_sensor..m.sensors.end - first_sensor).collect();
        let faults = FaultBook::new(
            stream(seed, number, Purpose::Faults, 0),
            &config.faults,
            &scales,
            &machine_sensors,
            start_ms,
        );
        let mut in_scope = vec![false; machine_list.len()];
        for &m in &scope {
            in_scope[m] = true;
        }
        Ok(PlantSim {
            plant_number: number,
            config: config.clone(),
            gateway_ids: layout.lines()[p.lines.clone()].iter().map(|l| Arc::from(l.id.as_str())).collect(),
            first_line: p.lines.start,
            first_machine: p.machines.start,
            machine_ids: machine_list.iter().map(|m| m.id.clone()).collect(),
            machine_line: machine_list.iter().map(|m| m.line - p.lines.start).collect(),
            machine_sensors,
            sensor_names: layout.sensors_in(&p.sensors).iter().map(|s| s.name.clone()).collect(),
            sensors,
            scales,
            machines: sims,
            faults,
            scope,
            in_scope,
            day_offset_ms,
            step_ms: config.step_ms as i64,
            next_ts_ms: start_ms,
            last_ts_ms: None,
            last_drift_ms: start_ms,
            changes: Vec::new(),
            ended: Vec::new(),
            started: Vec::new(),
            plant_id,
        })
    }

    /// `P1`.
    pub fn plant_id(&self) -> &str {
        &self.plant_id
    }
    pub fn plant_number(&self) -> u16 {
        self.plant_number
    }
    /// Indices of `layout.lines()` (= gateways) of this plant.
    pub fn lines(&self) -> Range<usize> {
        self.first_line..self.first_line + self.gateway_ids.len()
    }
    /// The plant's gateway ids (= line ids), in line order.
    pub fn gateways(&self) -> impl Iterator<Item = &str> + '_ {
        self.gateway_ids.iter().map(|g| &**g)
    }
    /// Timestamp of the readings the next step produces.
    pub fn next_ts_ms(&self) -> i64 {
        self.next_ts_ms
    }
    pub fn step_ms(&self) -> u64 {
        self.step_ms as u64
    }
    /// Changes the sampling interval from the next step on (e.g. after a backfill).
    pub fn set_step_ms(&mut self, step_ms: u64) -> Result<(), ConfigError> {
        check_step_ms(step_ms)?;
        self.step_ms = step_ms as i64;
        Ok(())
    }
    /// Readings a step produces when no sensor is in a dropout.
    pub fn sensors_per_step(&self) -> usize {
        self.scope.iter().map(|&m| self.machine_sensors[m].len()).sum()
    }

    /// The state of a machine (an index of `layout.machines()`) after the last step;
    /// `None` if it is not simulated here.
    pub fn machine_state(&self, machine: usize) -> Option<MachineState> {
        let local = machine.checked_sub(self.first_machine)?;
        self.in_scope.get(local).copied().unwrap_or(false).then(|| self.machines[local].state())
    }

    /// A batch per gateway of this plant, with no readings yet.
    pub(crate) fn empty_batches(&self) -> impl Iterator<Item = GatewayBatch> + '_ {
        self.gateway_ids.iter().enumerate().map(|(i, gateway)| GatewayBatch {
            gateway: gateway.clone(),
            plant: self.plant_id.clone(),
            line: self.first_line + i,
            sequence: 0,
            readings: Vec::new(),
        })
    }

    /// Simulates the next step.
    pub fn step(&mut self) -> Step {
        let mut out = Step::default();
        self.step_into(&mut out);
        out
    }

    /// Simulates the next step into `out`, reusing its buffers.
    pub fn step_into(&mut self, out: &mut Step) {
        let fits = out.batches.len() == self.gateway_ids.len()
            && out.batches.iter().enumerate().all(|(i, b)| b.line == self.first_line + i);
        if !fits {
            out.batches = self.empty_batches().collect();
        }
        out.events.clear();
        out.ts_ms = self.next_ts_ms;
        self.advance(&mut out.batches, &mut out.events);
    }

    /// Simulates the next step into this plant's batches (one per line, in order).
    pub(crate) fn advance(&mut self, batches: &mut [GatewayBatch], events: &mut Vec<FactoryEvent>) {
        let ts = self.next_ts_ms;
        let dt = self.last_ts_ms.map_or(0, |last| ts - last);
        self.advance_machines(ts, dt, events);

        self.ended.clear();
        self.faults.expire(ts, &mut self.ended);
        for fault in &self.ended {
            if self.in_scope[fault.machine] {
                events.push(FactoryEvent::FaultEnded { plant: self.plant_id.to_string(), fault: fault.id, ts_ms: ts });
            }
        }
        self.started.clear();
        self.faults.arrive(ts, self.step_ms, &self.scales, &self.machine_sensors, &mut self.started);
        for &slot in &self.started {
            let Some(fault) = self.faults.get(slot) else { continue };
            if matches!(fault.kind, FaultKind::SetpointIgnored | FaultKind::ValveStuck) {
                // These faults show when the machine is asked to change: they begin at its
                // next change of load target (if it comes within the hour).
                let change = self.machines[fault.machine].next_load_change_ms();
                if change > ts && change - ts <= 3_600_000 {
                    let fault = self.faults.get_mut(slot as u32);
                    let length = fault.end_ms - fault.start_ms;
                    fault.start_ms = change;
                    fault.end_ms = change + length;
                }
            }
        }

        if ts - self.last_drift_ms >= DRIFT_UPDATE_MS {
            let keep = (-((ts - self.last_drift_ms) as f64) / DRIFT_TIME_MS).exp();
            let fresh = (1.0 - keep * keep).sqrt();
            for &m in &self.scope {
                for s in &mut self.sensors[self.machine_sensors[m].clone()] {
                    let z: f64 = s.rng.sample(StandardNormal);
                    s.drift = s.drift * keep + s.drift_sd * fresh * z;
                }
            }
            self.last_drift_ms = ts;
        }

        self.read_sensors(ts, batches);

        for &slot in &self.started {
            let Some(fault) = self.faults.get(slot) else { continue };
            if !self.in_scope[fault.machine] {
                continue;
            }
            events.push(FactoryEvent::FaultStarted(FaultRecord {
                plant: self.plant_id.to_string(),
                fault: fault.id,
                machine: self.machine_ids[fault.machine].clone(),
                sensors: fault
                    .sensors
                    .iter()
                    .map(|&(s, _)| SensorRef { id: self.sensors[s].id, name: self.sensor_names[s].clone() })
                    .collect(),
                start_ms: fault.start_ms,
                end_ms: fault.end_ms,
                shape: fault.shape(),
            }));
        }
        self.last_ts_ms = Some(ts);
        self.next_ts_ms = ts + self.step_ms;
    }

    fn advance_machines(&mut self, ts: i64, dt: i64, events: &mut Vec<FactoryEvent>) {
        let lag = 1.0 - (-(dt as f64) / (self.config.load.response_s * 1_000.0)).exp();
        for &m in &self.scope {
            self.changes.clear();
            self.machines[m].advance(ts, dt, lag, &self.config, &mut self.changes);
            let plant = || self.plant_id.to_string();
            let machine = || self.machine_ids[m].clone();
            for change in &self.changes {
                match *change {
                    Change::Completed { kind, wear } => events.push(FactoryEvent::MaintenanceCompleted {
                        plant: plant(),
                        machine: machine(),
                        ts_ms: ts,
                        kind,
                        wear,
                    }),
                    Change::Failed { wear, until_ms } => {
                        events.push(FactoryEvent::MachineFailed {
                            plant: plant(),
                            machine: machine(),
                            ts_ms: ts,
                            wear,
                        });
                        events.push(FactoryEvent::MaintenanceStarted {
                            plant: plant(),
                            machine: machine(),
                            ts_ms: ts,
                            kind: MaintenanceKind::Corrective,
                            wear,
                            until_ms,
                        });
                    }
                    Change::ServiceStarted { wear, until_ms } => events.push(FactoryEvent::MaintenanceStarted {
                        plant: plant(),
                        machine: machine(),
                        ts_ms: ts,
                        kind: MaintenanceKind::Preventive,
                        wear,
                        until_ms,
                    }),
                }
            }
        }
    }

    /// The hot loop: one reading per sensor in scope, appended to its line's batch.
    fn read_sensors(&mut self, ts: i64, batches: &mut [GatewayBatch]) {
        let angle =
            std::f64::consts::TAU * ((ts + self.day_offset_ms).rem_euclid(MS_PER_DAY) as f64) / MS_PER_DAY as f64;
        let (sin_t, cos_t) = angle.sin_cos();
        for batch in batches.iter_mut() {
            batch.readings.clear();
            batch.sequence = ts.max(0) as u64;
        }
        let dt = self.last_ts_ms.map_or(0, |last| ts - last);
        let Self { scope, machines, machine_sensors, machine_line, sensors, faults, .. } = self;
        for &m in scope.iter() {
            let machine = &machines[m];
            let idle = !machine.running() || machine.load < IDLE_LOAD;
            let readings = &mut batches[machine_line[m]].readings;
            let range = machine_sensors[m].clone();
            let first = range.start;
            for (offset, s) in sensors[range].iter_mut().enumerate() {
                let z: f64 = s.rng.sample(StandardNormal);
                let slot = faults.sensor_fault[first + offset];
                let mut fault = (slot != NO_FAULT).then(|| faults.get_mut(slot));
                // A process value ignoring its set point stays where the load left it.
                let load = match fault.as_deref_mut() {
                    Some(f) if f.kind == FaultKind::SetpointIgnored && ts >= f.start_ms => {
                        *f.load.get_or_insert(machine.load)
                    }
                    _ => machine.load,
                };
                let (base, noise) = s.signal_at(ts, dt, load, machine, idle, z, sin_t, cos_t);
                let value = match fault {
                    None => base + noise,
                    Some(f) => match f.apply(first + offset, base, noise, z, ts) {
                        Some(v) => v,
                        None => continue,
                    },
                };
                let value = s.finish(value);
                if s.irregular && s.rng.random::<f64>() < 0.5 {
                    continue;
                }
                // Readings are f32 values, so a batch stores each in 4 bytes.
                readings.push(Reading { sensor: s.id, ts_ms: ts, value: f64::from(value as f32) });
            }
        }
    }
}

impl SensorSim {
    /// The sensor's healthy value without noise, and its noise, at `ts` (`dt` after the
    /// last step) for its machine at `load` (`z` is the step's standard normal draw).
    #[allow(clippy::too_many_arguments)]
    #[inline]
    fn signal_at(
        &mut self,
        ts: i64,
        dt: i64,
        load: f64,
        machine: &MachineSim,
        idle: bool,
        z: f64,
        sin_t: f64,
        cos_t: f64,
    ) -> (f64, f64) {
        let width = self.high - self.low;
        match self.signal {
            SignalKind::Analog => {
                if self.flat_when_idle && !machine.running() {
                    return (self.low, 0.0);
                }
                let wear = machine.wear * machine.wear;
                let base = self.level
                    + self.drift
                    + self.day_sin * sin_t
                    + self.day_cos * cos_t
                    + self.load_gain * (load - TYPICAL_LOAD)
                    + self.wear_gain * wear;
                (base, self.noise_draw(z))
            }
            SignalKind::Setpoint => {
                // Recipes in steps of a quarter of full load.
                let recipe = (machine.target() * 4.0).round() / 4.0;
                (self.level + self.load_gain * (recipe - TYPICAL_LOAD), 0.0)
            }
            SignalKind::Valve => {
                let opening = if machine.running() { load.clamp(0.0, 1.0) } else { 0.0 };
                (self.low + width * opening + self.drift, self.noise_draw(z))
            }
            SignalKind::State => (if idle { self.low } else { self.high }, 0.0),
            SignalKind::Counter => {
                if machine.running() {
                    self.count += self.count_per_ms * dt.max(0) as f64 * load / TYPICAL_LOAD;
                }
                (self.count.floor(), 0.0)
            }
            SignalKind::Batch => {
                if ts >= self.cycle_start_ms + self.cycle_ms {
                    self.cycle_start_ms = ts;
                    self.cycle_ms = self.rng.random_range(300_000..900_000);
                    self.duty = self.rng.random_range(0.3..0.7);
                }
                let (lo, hi) = (self.low + 0.2 * width, self.high - 0.2 * width);
                if idle {
                    return (lo, self.noise_draw(z));
                }
                // A trapezoid: ramps up and down over a tenth of the cycle each.
                let phase = (ts - self.cycle_start_ms) as f64 / self.cycle_ms.max(1) as f64;
                let ramp = 0.1;
                let up = (phase / ramp).min(1.0);
                let down = ((self.duty + ramp - phase) / ramp).clamp(0.0, 1.0);
                (lo + (hi - lo) * up.min(down) + self.drift, self.noise_draw(z))
            }
        }
    }

    /// The noise of one reading, from the step's standard normal draw.
    #[inline]
    fn noise_draw(&mut self, z: f64) -> f64 {
        match self.noise {
            NoiseKind::Gaussian => self.noise_sd * z,
            NoiseKind::Heavy => {
                // Laplace (exponential tails), scaled to noise_sd: the sign from the step's
                // normal draw, the magnitude from an exponential draw.
                let u: f64 = self.rng.random::<f64>().max(1e-300);
                self.noise_sd * z.signum() * -u.ln() / std::f64::consts::SQRT_2
            }
            NoiseKind::Spiky => {
                let spike = if self.rng.random::<f64>() < 1.0 / SPIKE_EVERY_READINGS {
                    let sign = if self.rng.random::<bool>() { 1.0 } else { -1.0 };
                    sign * self.rng.random_range(5.0..10.0) * self.noise_sd
                } else {
                    0.0
                };
                self.noise_sd * z + spike
            }
        }
    }

    /// The value as the sensor reports it: an on/off state is on or off, a counter whole,
    /// a quantised sensor a multiple of its resolution.
    #[inline]
    fn finish(&self, value: f64) -> f64 {
        match self.signal {
            SignalKind::State => {
                if value > 0.5 * (self.low + self.high) {
                    self.high
                } else {
                    self.low
                }
            }
            SignalKind::Counter => value.max(0.0).floor(),
            _ if self.resolution > 0.0 => (value / self.resolution).round() * self.resolution,
            _ => value,
        }
    }
}
