//! A small synthetic factory for measuring the detector: realistic normal signals, injected
//! faults of every kind, and the ground truth of each fault's window.
//!
//! Signals: a level, Gaussian noise, a daily cycle, machine load changes that move all of a
//! machine's sensors together (ramped over a couple of minutes), slow drift, gradual wear,
//! occasional single lost readings, values rounded to single precision and, for some
//! sensors, a coarse measurement resolution (so exact repeats are normal for them).
//! Deterministic for a seed.

use serde::{Deserialize, Serialize};

use crate::stats::SplitMix;

const DAY_S: f64 = 86_400.0;

/// Kinds of injected fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    Spike,
    LevelShift,
    Drift,
    Stuck,
    NoiseBurst,
    Dropout,
    /// Several sensors of one machine shift together.
    Correlated,
}

impl FaultKind {
    pub const ALL: [FaultKind; 7] = [
        FaultKind::Spike,
        FaultKind::LevelShift,
        FaultKind::Drift,
        FaultKind::Stuck,
        FaultKind::NoiseBurst,
        FaultKind::Dropout,
        FaultKind::Correlated,
    ];

    pub fn name(self) -> &'static str {
        match self {
            FaultKind::Spike => "spike",
            FaultKind::LevelShift => "level_shift",
            FaultKind::Drift => "drift",
            FaultKind::Stuck => "stuck",
            FaultKind::NoiseBurst => "noise_burst",
            FaultKind::Dropout => "dropout",
            FaultKind::Correlated => "correlated",
        }
    }

    /// Abrupt faults have a detection-delay target of seconds.
    pub fn is_abrupt(self) -> bool {
        matches!(self, FaultKind::Spike | FaultKind::LevelShift | FaultKind::Stuck | FaultKind::Dropout)
    }
}

/// One injected fault and its window `[start_ms, end_ms)`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fault {
    pub kind: FaultKind,
    pub machine: u32,
    pub sensors: Vec<u32>,
    pub start_ms: i64,
    pub end_ms: i64,
    /// Size in units of the sensor's noise (shift, spike height, drift end, noise factor).
    pub magnitude: f64,
}

/// Shape of a synthetic plant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlantSpec {
    pub machines: u32,
    pub sensors_per_machine: u32,
    pub seed: u64,
    pub start_ms: i64,
    /// Mean number of injected faults per sensor per day.
    pub faults_per_sensor_day: f64,
    /// Faults start only after this many seconds (the detector's learning time).
    pub faults_after_s: f64,
    /// Length of the simulated run, used to place faults.
    pub duration_s: f64,
    /// Probability that any one reading is lost in transit (normal, not a fault).
    pub loss_rate: f64,
}

impl Default for PlantSpec {
    fn default() -> Self {
        PlantSpec {
            machines: 25,
            sensors_per_machine: 8,
            seed: 7,
            start_ms: 1_700_000_000_000,
            faults_per_sensor_day: 0.3,
            faults_after_s: 6.0 * 3600.0,
            duration_s: 7.0 * DAY_S,
            loss_rate: 0.0005,
        }
    }
}

#[derive(Debug, Clone)]
struct SensorModel {
    machine: u32,
    level: f64,
    noise: f64,
    daily_amp: f64,
    daily_phase: f64,
    load_gain: f64,
    drift_per_s: f64,
    wear_per_s: f64,
    quantum: f64,
    /// Indices into `Plant::effects` for this sensor, sorted by start.
    effects: Vec<usize>,
    cursor: usize,
    stuck_value: Option<f64>,
}

#[derive(Debug, Clone)]
struct Effect {
    fault: usize,
    kind: FaultKind,
    start_s: f64,
    end_s: f64,
    magnitude: f64,
}

#[derive(Debug, Clone)]
struct MachineLoad {
    from: f64,
    to: f64,
    change_at_s: f64,
    ramp_s: f64,
    next_change_s: f64,
}

/// A synthetic plant that emits one reading per sensor per second.
#[derive(Debug, Clone)]
pub struct Plant {
    pub spec: PlantSpec,
    sensors: Vec<SensorModel>,
    loads: Vec<MachineLoad>,
    effects: Vec<Effect>,
    faults: Vec<Fault>,
    rng: SplitMix,
    second: u64,
}

impl Plant {
    pub fn new(spec: PlantSpec) -> Self {
        let mut rng = SplitMix::new(spec.seed);
        let mut sensors = Vec::new();
        for m in 0..spec.machines {
            for _ in 0..spec.sensors_per_machine {
                let level = 10f64.powf(rng.range(-2.0, 4.0)) * if rng.chance(0.2) { -1.0 } else { 1.0 };
                let noise = level.abs() * 10f64.powf(rng.range(-3.0, -1.3));
                let quantum = if rng.chance(0.1) { noise * rng.range(0.2, 0.6) } else { 0.0 };
                sensors.push(SensorModel {
                    machine: m,
                    level,
                    noise,
                    daily_amp: noise * rng.range(0.0, 6.0),
                    daily_phase: rng.range(0.0, std::f64::consts::TAU),
                    load_gain: noise * rng.range(-2.0, 2.0),
                    drift_per_s: noise * rng.range(-1.0, 1.0) / DAY_S,
                    wear_per_s: noise * rng.range(0.0, 0.5) / DAY_S,
                    quantum,
                    effects: Vec::new(),
                    cursor: 0,
                    stuck_value: None,
                });
            }
        }
        let loads = (0..spec.machines)
            .map(|_| {
                let l = rng.range(0.3, 1.0);
                MachineLoad { from: l, to: l, change_at_s: 0.0, ramp_s: 1.0, next_change_s: rng.exponential(2700.0) }
            })
            .collect();
        let mut plant = Plant { spec, sensors, loads, effects: Vec::new(), faults: Vec::new(), rng, second: 0 };
        plant.place_faults();
        plant
    }

    fn place_faults(&mut self) {
        let spec = self.spec.clone();
        let n_sensors = self.sensors.len() as f64;
        let span = (spec.duration_s - spec.faults_after_s - 3600.0).max(0.0);
        let expected = spec.faults_per_sensor_day * n_sensors * span / DAY_S;
        let count = expected.round() as usize;
        // Faults are spread evenly in time with jitter so a sensor rarely has two at once.
        for f in 0..count {
            let rng = &mut self.rng;
            let slot = span / count.max(1) as f64;
            let start_s = (spec.faults_after_s + slot * (f as f64 + rng.range(0.05, 0.95))).floor();
            let kind = FaultKind::ALL[rng.below(FaultKind::ALL.len() as u64) as usize];
            let sensor = rng.below(self.sensors.len() as u64) as usize;
            let machine = self.sensors[sensor].machine;
            let (duration_s, magnitude) = match kind {
                FaultKind::Spike => (1.0 + rng.below(2) as f64, rng.range(6.0, 12.0)),
                FaultKind::LevelShift => (rng.range(300.0, 1800.0), rng.range(3.0, 8.0)),
                FaultKind::Drift => (rng.range(900.0, 3600.0), rng.range(5.0, 12.0)),
                FaultKind::Stuck => (rng.range(120.0, 1800.0), 0.0),
                FaultKind::NoiseBurst => (rng.range(120.0, 900.0), rng.range(3.0, 6.0)),
                FaultKind::Dropout => (rng.range(60.0, 1200.0), 0.0),
                FaultKind::Correlated => (rng.range(300.0, 1200.0), rng.range(2.5, 5.0)),
            };
            let duration_s = f64::floor(duration_s);
            let sign = if rng.chance(0.5) { 1.0 } else { -1.0 };
            let members: Vec<usize> = if kind == FaultKind::Correlated {
                let per = spec.sensors_per_machine as usize;
                let first = machine as usize * per;
                let k = (2 + rng.below(3) as usize).min(per);
                let mut chosen: Vec<usize> = (first..first + per).collect();
                for i in 0..k {
                    let j = i + rng.below((per - i) as u64) as usize;
                    chosen.swap(i, j);
                }
                chosen.truncate(k);
                chosen.sort_unstable();
                chosen
            } else {
                vec![sensor]
            };
            let fault_index = self.faults.len();
            let start_ms = spec.start_ms + (start_s * 1000.0) as i64;
            self.faults.push(Fault {
                kind,
                machine,
                sensors: members.iter().map(|s| *s as u32).collect(),
                start_ms,
                end_ms: start_ms + (duration_s * 1000.0) as i64,
                magnitude,
            });
            for s in members {
                let m = if kind == FaultKind::Correlated {
                    magnitude * if rng.chance(0.5) { 1.0 } else { -1.0 }
                } else {
                    magnitude * sign
                };
                self.effects.push(Effect {
                    fault: fault_index,
                    kind,
                    start_s: start_s.floor(),
                    end_s: (start_s + duration_s).floor(),
                    magnitude: m,
                });
                let e = self.effects.len() - 1;
                self.sensors[s].effects.push(e);
            }
        }
        let effects = &self.effects;
        for s in &mut self.sensors {
            s.effects.sort_by(|a, b| effects[*a].start_s.total_cmp(&effects[*b].start_s));
        }
    }

    pub fn faults(&self) -> &[Fault] {
        &self.faults
    }

    pub fn sensor_count(&self) -> usize {
        self.sensors.len()
    }

    pub fn machine_of(&self, sensor: u32) -> u32 {
        self.sensors.get(sensor as usize).map_or(0, |s| s.machine)
    }

    /// Current timestamp (of the next reading) in ms.
    pub fn now_ms(&self) -> i64 {
        self.spec.start_ms + self.second as i64 * 1000
    }

    /// Emits this second's readings as `(sensor, value)` (dropped readings are absent) and
    /// advances one second.
    pub fn step(&mut self, out: &mut Vec<(u32, f64)>) {
        out.clear();
        let t = self.second as f64;
        for load in &mut self.loads {
            if t >= load.next_change_s {
                let current = load_at(load, t);
                load.from = current;
                load.to = self.rng.range(0.3, 1.0);
                load.change_at_s = t;
                load.ramp_s = self.rng.range(60.0, 240.0);
                load.next_change_s = t + self.rng.exponential(2700.0);
            }
        }
        let day_angle = std::f64::consts::TAU * t / DAY_S;
        for (i, s) in self.sensors.iter_mut().enumerate() {
            let load = load_at(&self.loads[s.machine as usize], t);
            let mut v = s.level
                + s.daily_amp * (day_angle + s.daily_phase).sin()
                + s.load_gain * (load - 0.65)
                + (s.drift_per_s + s.wear_per_s) * t
                + s.noise * self.rng.normal();
            let mut dropped = self.rng.chance(self.spec.loss_rate);
            while s.cursor < s.effects.len() && self.effects[s.effects[s.cursor]].end_s <= t {
                s.cursor += 1;
                s.stuck_value = None;
            }
            let mut stuck = None;
            for &e in &s.effects[s.cursor..] {
                let eff = &self.effects[e];
                if eff.start_s > t {
                    break;
                }
                if t >= eff.end_s {
                    continue;
                }
                let progress = (t - eff.start_s) / (eff.end_s - eff.start_s).max(1.0);
                match eff.kind {
                    FaultKind::Spike => v += eff.magnitude * s.noise,
                    FaultKind::LevelShift | FaultKind::Correlated => v += eff.magnitude * s.noise,
                    FaultKind::Drift => v += eff.magnitude * s.noise * progress,
                    FaultKind::NoiseBurst => {
                        let extra = (eff.magnitude * eff.magnitude - 1.0).max(0.0).sqrt();
                        v += extra * s.noise * self.rng.normal();
                    }
                    FaultKind::Dropout => dropped = true,
                    FaultKind::Stuck => stuck = Some(eff.fault),
                }
            }
            if s.quantum > 0.0 {
                v = (v / s.quantum).round() * s.quantum;
            }
            let v = f64::from(v as f32);
            let v = match (stuck, s.stuck_value) {
                (Some(_), Some(held)) => held,
                (Some(_), None) => {
                    s.stuck_value = Some(v);
                    v
                }
                (None, _) => v,
            };
            if !dropped {
                out.push((i as u32, v));
            }
        }
        self.second += 1;
    }
}

fn load_at(load: &MachineLoad, t: f64) -> f64 {
    let x = ((t - load.change_at_s) / load.ramp_s).clamp(0.0, 1.0);
    // Smooth ramp: operators change load gradually.
    let w = x * x * (3.0 - 2.0 * x);
    load.from + (load.to - load.from) * w
}
