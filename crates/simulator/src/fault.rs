//! Injected faults: when they arrive, which sensors they hit, and how they bend a reading.

use crate::config::FaultConfig;
use crate::event::{FaultKind, FaultShape};
use crate::seed::SimRng;
use layout::SignalKind;
use rand::RngExt;
use rand_distr::Exp1;

const KINDS: usize = FaultKind::ALL.len();

/// Marks a sensor without an active fault.
pub(crate) const NO_FAULT: u32 = u32::MAX;

/// What the fault scheduler needs to know about a sensor to size a fault for it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SensorScale {
    /// Width of the normal band.
    pub width: f64,
    pub noise_sd: f64,
    pub signal: SignalKind,
    /// Resolution of its readings (0: none).
    pub resolution: f64,
    /// Whether its value follows its machine's load (candidates for a set point ignored).
    pub follows_load: bool,
}

impl SensorScale {
    /// Whether a fault of this kind makes sense on this sensor: a set point has no noise to
    /// burst and no level to drift (it is written, not measured); an on/off state can
    /// chatter or fall silent; a counter can fall silent (or stop: `CounterStopped`).
    fn admits(&self, kind: FaultKind) -> bool {
        match self.signal {
            SignalKind::Analog | SignalKind::Valve | SignalKind::Batch => true,
            SignalKind::Setpoint | SignalKind::Counter => kind == FaultKind::Dropout,
            SignalKind::State => matches!(kind, FaultKind::NoiseBurst | FaultKind::Dropout),
        }
    }

    /// Whether the sensor takes part in a machine fault (a measurement that can move).
    fn measures(&self) -> bool {
        matches!(self.signal, SignalKind::Analog | SignalKind::Valve | SignalKind::Batch)
    }
}

/// Sensors and machines each kind of fault can hit.
#[derive(Debug, Clone, Default)]
pub(crate) struct Eligible {
    pub valves: Vec<usize>,
    pub counters: Vec<usize>,
    pub quantised: Vec<usize>,
    /// Machines with a set point and at least one process value following the load.
    pub setpoint_machines: Vec<usize>,
}

impl Eligible {
    pub fn new(scales: &[SensorScale], machine_sensors: &[std::ops::Range<usize>]) -> Self {
        let of = |f: &dyn Fn(&SensorScale) -> bool| (0..scales.len()).filter(|&i| f(&scales[i])).collect::<Vec<_>>();
        Eligible {
            valves: of(&|s| s.signal == SignalKind::Valve),
            counters: of(&|s| s.signal == SignalKind::Counter),
            quantised: of(&|s| s.signal == SignalKind::Analog && s.resolution > 0.0),
            setpoint_machines: (0..machine_sensors.len())
                .filter(|&m| {
                    let r = machine_sensors[m].clone();
                    scales[r.clone()].iter().any(|s| s.signal == SignalKind::Setpoint)
                        && scales[r].iter().any(|s| s.follows_load)
                })
                .collect(),
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct ActiveFault {
    pub id: u64,
    pub kind: FaultKind,
    pub start_ms: i64,
    pub end_ms: i64,
    /// Plant-local machine index.
    pub machine: usize,
    /// Plant-local sensor index and that sensor's parameter: the added delta, or the
    /// noise standard deviation of a noise burst.
    pub sensors: Vec<(usize, f64)>,
    pub ramp_ms: i64,
    /// The repeated value of a stuck sensor, taken at its first reading.
    pub stuck: Option<f32>,
    /// The load a set point ignored leaves its process values at, taken at the start.
    pub load: Option<f64>,
}

impl ActiveFault {
    pub fn shape(&self) -> FaultShape {
        let first = self.sensors.first().map_or(0.0, |s| s.1);
        match self.kind {
            FaultKind::Spike => FaultShape::Spike { delta: first },
            FaultKind::LevelShift => FaultShape::LevelShift { delta: first },
            FaultKind::Drift => FaultShape::Drift { delta_at_end: first },
            FaultKind::Stuck => FaultShape::Stuck { value: self.stuck.map_or(f64::NAN, f64::from) },
            FaultKind::NoiseBurst => FaultShape::NoiseBurst { noise_sd: first },
            FaultKind::Dropout => FaultShape::Dropout,
            FaultKind::Machine => {
                FaultShape::Machine { deltas: self.sensors.iter().map(|s| s.1).collect(), ramp_ms: self.ramp_ms }
            }
            FaultKind::SetpointIgnored => FaultShape::SetpointIgnored { load: self.load.unwrap_or(f64::NAN) },
            FaultKind::ValveStuck => FaultShape::ValveStuck { value: self.stuck.map_or(f64::NAN, f64::from) },
            FaultKind::CounterStopped => FaultShape::CounterStopped { value: self.stuck.map_or(f64::NAN, f64::from) },
            FaultKind::QuantisedDrift => FaultShape::QuantisedDrift { delta_at_end: first },
        }
    }

    /// The reading of sensor `sensor` under this fault, from its healthy value without
    /// noise (`base`), its noise, and its noise draw `z`; `None` when it sends nothing.
    /// A fault that starts later (one waiting for its machine's next change of load) leaves
    /// the reading as it is until then.
    #[inline]
    pub fn apply(&mut self, sensor: usize, base: f64, noise: f64, z: f64, ts_ms: i64) -> Option<f64> {
        let param = || self.sensors.iter().find(|s| s.0 == sensor).map_or(0.0, |s| s.1);
        let healthy = base + noise;
        if ts_ms < self.start_ms {
            return Some(healthy);
        }
        match self.kind {
            FaultKind::Spike | FaultKind::LevelShift => Some(healthy + param()),
            FaultKind::SetpointIgnored => Some(healthy),
            FaultKind::Drift | FaultKind::QuantisedDrift => {
                let share = (ts_ms - self.start_ms) as f64 / (self.end_ms - self.start_ms) as f64;
                Some(healthy + param() * share)
            }
            FaultKind::Machine => {
                let share = ((ts_ms - self.start_ms) as f64 / self.ramp_ms as f64).min(1.0);
                Some(healthy + param() * share)
            }
            FaultKind::NoiseBurst => Some(base + param() * z),
            FaultKind::Stuck | FaultKind::ValveStuck | FaultKind::CounterStopped => {
                Some(f64::from(*self.stuck.get_or_insert(healthy as f32)))
            }
            FaultKind::Dropout => None,
        }
    }
}

/// The plant's active faults and the arrival process of new ones.
#[derive(Debug, Clone)]
pub(crate) struct FaultBook {
    rng: SimRng,
    config: FaultConfig,
    /// Arrival rate per millisecond for the whole plant, per kind in `FaultKind::ALL` order.
    rates_per_ms: [f64; KINDS],
    next_arrival_ms: [f64; KINDS],
    eligible: Eligible,
    slots: Vec<Option<ActiveFault>>,
    free: Vec<usize>,
    /// Slot of each sensor's active fault, or `NO_FAULT`.
    pub sensor_fault: Vec<u32>,
    next_id: u64,
}

impl FaultBook {
    pub fn new(
        rng: SimRng,
        config: &FaultConfig,
        scales: &[SensorScale],
        machine_sensors: &[std::ops::Range<usize>],
        start_ms: i64,
    ) -> Self {
        let (sensors, machines) = (scales.len(), machine_sensors.len());
        let eligible = Eligible::new(scales, machine_sensors);
        let per_sensor = sensors as f64 / 3_600_000.0;
        let per_hour = |n: usize| n as f64 / 3_600_000.0;
        let rates_per_ms = [
            config.spike_rate_per_sensor_hour * per_sensor,
            config.level_shift_rate_per_sensor_hour * per_sensor,
            config.drift_rate_per_sensor_hour * per_sensor,
            config.stuck_rate_per_sensor_hour * per_sensor,
            config.noise_burst_rate_per_sensor_hour * per_sensor,
            config.dropout_rate_per_sensor_hour * per_sensor,
            config.machine_fault_rate_per_machine_hour * machines as f64 / 3_600_000.0,
            config.setpoint_ignored_rate_per_machine_hour * per_hour(eligible.setpoint_machines.len()),
            config.valve_stuck_rate_per_sensor_hour * per_hour(eligible.valves.len()),
            config.counter_stopped_rate_per_sensor_hour * per_hour(eligible.counters.len()),
            config.quantised_drift_rate_per_sensor_hour * per_hour(eligible.quantised.len()),
        ];
        let mut book = FaultBook {
            rng,
            config: config.clone(),
            rates_per_ms,
            next_arrival_ms: [f64::INFINITY; KINDS],
            eligible,
            slots: Vec::new(),
            free: Vec::new(),
            sensor_fault: vec![NO_FAULT; sensors],
            next_id: 1,
        };
        for k in 0..KINDS {
            book.next_arrival_ms[k] = start_ms as f64 + book.wait_ms(k);
        }
        book
    }

    fn wait_ms(&mut self, k: usize) -> f64 {
        if self.rates_per_ms[k] > 0.0 {
            let wait: f64 = self.rng.sample(Exp1);
            wait / self.rates_per_ms[k]
        } else {
            f64::INFINITY
        }
    }

    pub fn get_mut(&mut self, slot: u32) -> &mut ActiveFault {
        self.slots[slot as usize].as_mut().expect("a sensor only points at a live fault slot")
    }

    pub fn get(&self, slot: usize) -> Option<&ActiveFault> {
        self.slots.get(slot).and_then(Option::as_ref)
    }

    /// Removes faults that ended at or before `ts_ms`; returns them in slot order.
    pub fn expire(&mut self, ts_ms: i64, ended: &mut Vec<ActiveFault>) {
        for slot in 0..self.slots.len() {
            if self.slots[slot].as_ref().is_some_and(|f| f.end_ms <= ts_ms)
                && let Some(fault) = self.slots[slot].take()
            {
                for &(sensor, _) in &fault.sensors {
                    self.sensor_fault[sensor] = NO_FAULT;
                }
                self.free.push(slot);
                ended.push(fault);
            }
        }
    }

    /// Starts the faults that arrive by `ts_ms`; pushes their slots to `started`.
    pub fn arrive(
        &mut self,
        ts_ms: i64,
        step_ms: i64,
        scales: &[SensorScale],
        machine_sensors: &[std::ops::Range<usize>],
        started: &mut Vec<usize>,
    ) {
        for (k, kind) in FaultKind::ALL.into_iter().enumerate() {
            while self.next_arrival_ms[k] <= ts_ms as f64 {
                if let Some(fault) = self.draw(kind, ts_ms, step_ms, scales, machine_sensors) {
                    started.push(self.insert(fault));
                }
                self.next_arrival_ms[k] += self.wait_ms(k);
            }
        }
    }

    fn insert(&mut self, fault: ActiveFault) -> usize {
        let slot = match self.free.pop() {
            Some(slot) => slot,
            None => {
                self.slots.push(None);
                self.slots.len() - 1
            }
        };
        for &(sensor, _) in &fault.sensors {
            self.sensor_fault[sensor] = slot as u32;
        }
        self.slots[slot] = Some(fault);
        slot
    }

    fn sign(&mut self, positive_share: f64) -> f64 {
        if self.rng.random::<f64>() < positive_share { 1.0 } else { -1.0 }
    }

    fn seconds(&mut self, min_s: f64, max_s: f64) -> i64 {
        // Log-uniform: short and long faults are both common, as in real plants.
        let s =
            if max_s > min_s { (min_s.ln() + self.rng.random::<f64>() * (max_s / min_s).ln()).exp() } else { min_s };
        (s * 1_000.0) as i64
    }

    fn draw(
        &mut self,
        kind: FaultKind,
        ts_ms: i64,
        step_ms: i64,
        scales: &[SensorScale],
        machine_sensors: &[std::ops::Range<usize>],
    ) -> Option<ActiveFault> {
        let c = self.config.clone();
        let (sensors, duration_ms, ramp_ms, machine) = if kind == FaultKind::Machine {
            let machine = self.rng.random_range(0..machine_sensors.len());
            let mut free: Vec<usize> = machine_sensors[machine]
                .clone()
                .filter(|&s| self.sensor_fault[s] == NO_FAULT && scales[s].measures())
                .collect();
            if free.len() < 2 {
                return None;
            }
            let count = self.rng.random_range(2..=free.len().min(5));
            for i in 0..count {
                let j = self.rng.random_range(i..free.len());
                free.swap(i, j);
            }
            free.truncate(count);
            free.sort_unstable();
            // Overheating, vibration and overcurrent push values up more often than down.
            let sign = self.sign(0.75);
            let sensors = free
                .into_iter()
                .map(|s| {
                    let scale = scales[s];
                    let size = self.rng.random_range(0.25..0.6) * scale.width;
                    (s, sign * size.max(6.0 * scale.noise_sd))
                })
                .collect();
            let duration_ms = self.seconds(c.machine_fault_min_s, c.machine_fault_max_s);
            let ramp_ms = ((duration_ms as f64 * self.rng.random_range(0.2..0.5)) as i64).max(1);
            (sensors, duration_ms, ramp_ms, machine)
        } else if kind == FaultKind::SetpointIgnored {
            let list = &self.eligible.setpoint_machines;
            if list.is_empty() {
                return None;
            }
            let machine = list[self.rng.random_range(0..list.len())];
            let mut free: Vec<usize> = machine_sensors[machine]
                .clone()
                .filter(|&s| self.sensor_fault[s] == NO_FAULT && scales[s].follows_load)
                .collect();
            if free.is_empty() {
                return None;
            }
            let count = self.rng.random_range(1..=free.len().min(3));
            for i in 0..count {
                let j = self.rng.random_range(i..free.len());
                free.swap(i, j);
            }
            free.truncate(count);
            free.sort_unstable();
            let duration_ms = self.seconds(c.level_shift_min_s, c.level_shift_max_s);
            (free.into_iter().map(|s| (s, 0.0)).collect(), duration_ms, 0, machine)
        } else {
            let pick = |rng: &mut SimRng, list: &[usize]| -> Option<usize> {
                (!list.is_empty()).then(|| list[rng.random_range(0..list.len())])
            };
            let sensor = match kind {
                FaultKind::ValveStuck => pick(&mut self.rng, &self.eligible.valves)?,
                FaultKind::CounterStopped => pick(&mut self.rng, &self.eligible.counters)?,
                FaultKind::QuantisedDrift => pick(&mut self.rng, &self.eligible.quantised)?,
                _ => self.rng.random_range(0..scales.len()),
            };
            if self.sensor_fault[sensor] != NO_FAULT || !(scales[sensor].admits(kind) || kind.is_of_its_own()) {
                return None;
            }
            let machine = machine_sensors.partition_point(|r| r.end <= sensor);
            let SensorScale { width, noise_sd, signal, resolution, .. } = scales[sensor];
            let (param, duration_ms) = match kind {
                FaultKind::Spike => {
                    let size = (self.rng.random_range(0.4..1.0) * width).max(8.0 * noise_sd);
                    let readings = self.rng.random_range(1..=c.spike_max_readings);
                    (self.sign(0.5) * size, i64::from(readings) * step_ms)
                }
                FaultKind::LevelShift => {
                    let size = (self.rng.random_range(0.15..0.4) * width).max(5.0 * noise_sd);
                    (self.sign(0.5) * size, self.seconds(c.level_shift_min_s, c.level_shift_max_s))
                }
                FaultKind::Drift => {
                    let size = (self.rng.random_range(0.3..0.8) * width).max(8.0 * noise_sd);
                    (self.sign(0.5) * size, self.seconds(c.drift_min_s, c.drift_max_s))
                }
                FaultKind::QuantisedDrift => {
                    let size = (self.rng.random_range(0.3..0.8) * width).max(8.0 * noise_sd).max(6.0 * resolution);
                    (self.sign(0.5) * size, self.seconds(c.drift_min_s, c.drift_max_s))
                }
                FaultKind::NoiseBurst if signal == SignalKind::State => {
                    // A failing contact: the state flips at random.
                    (2.0 * width, self.seconds(c.noise_burst_min_s, c.noise_burst_max_s))
                }
                FaultKind::NoiseBurst => {
                    let sd =
                        (self.rng.random_range(4.0..10.0) * noise_sd).max(self.rng.random_range(0.03..0.08) * width);
                    (sd, self.seconds(c.noise_burst_min_s, c.noise_burst_max_s))
                }
                FaultKind::Stuck | FaultKind::ValveStuck | FaultKind::CounterStopped => {
                    (0.0, self.seconds(c.stuck_min_s, c.stuck_max_s))
                }
                FaultKind::Dropout | FaultKind::Machine | FaultKind::SetpointIgnored => {
                    (0.0, self.seconds(c.dropout_min_s, c.dropout_max_s))
                }
            };
            (vec![(sensor, param)], duration_ms, 0, machine)
        };
        let id = self.next_id;
        self.next_id += 1;
        Some(ActiveFault {
            id,
            kind,
            start_ms: ts_ms,
            // Every fault covers at least one reading, whatever the sampling interval.
            end_ms: ts_ms + duration_ms.max(step_ms),
            machine,
            sensors,
            ramp_ms,
            stuck: None,
            load: None,
        })
    }
}
