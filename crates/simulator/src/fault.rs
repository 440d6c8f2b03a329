//! Injected faults: when they arrive, which sensors they hit, and how they bend a reading.

use crate::config::FaultConfig;
use crate::event::{FaultKind, FaultShape};
use crate::seed::SimRng;
use rand::RngExt;
use rand_distr::Exp1;

/// Marks a sensor without an active fault.
pub(crate) const NO_FAULT: u32 = u32::MAX;

/// What the fault scheduler needs to know about a sensor to size a fault for it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SensorScale {
    /// Width of the normal band.
    pub width: f64,
    pub noise_sd: f64,
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
        }
    }

    /// The reading of sensor `sensor` under this fault, from its healthy value without
    /// noise (`base`), its noise draw `z` and noise level; `None` when it sends nothing.
    #[inline]
    pub fn apply(&mut self, sensor: usize, base: f64, z: f64, noise_sd: f64, ts_ms: i64) -> Option<f64> {
        let param = || self.sensors.iter().find(|s| s.0 == sensor).map_or(0.0, |s| s.1);
        let healthy = base + noise_sd * z;
        match self.kind {
            FaultKind::Spike | FaultKind::LevelShift => Some(healthy + param()),
            FaultKind::Drift => {
                let share = (ts_ms - self.start_ms) as f64 / (self.end_ms - self.start_ms) as f64;
                Some(healthy + param() * share)
            }
            FaultKind::Machine => {
                let share = ((ts_ms - self.start_ms) as f64 / self.ramp_ms as f64).min(1.0);
                Some(healthy + param() * share)
            }
            FaultKind::NoiseBurst => Some(base + param() * z),
            FaultKind::Stuck => Some(f64::from(*self.stuck.get_or_insert(healthy as f32))),
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
    rates_per_ms: [f64; 7],
    next_arrival_ms: [f64; 7],
    slots: Vec<Option<ActiveFault>>,
    free: Vec<usize>,
    /// Slot of each sensor's active fault, or `NO_FAULT`.
    pub sensor_fault: Vec<u32>,
    next_id: u64,
}

impl FaultBook {
    pub fn new(rng: SimRng, config: &FaultConfig, sensors: usize, machines: usize, start_ms: i64) -> Self {
        let per_sensor = sensors as f64 / 3_600_000.0;
        let rates_per_ms = [
            config.spike_rate_per_sensor_hour * per_sensor,
            config.level_shift_rate_per_sensor_hour * per_sensor,
            config.drift_rate_per_sensor_hour * per_sensor,
            config.stuck_rate_per_sensor_hour * per_sensor,
            config.noise_burst_rate_per_sensor_hour * per_sensor,
            config.dropout_rate_per_sensor_hour * per_sensor,
            config.machine_fault_rate_per_machine_hour * machines as f64 / 3_600_000.0,
        ];
        let mut book = FaultBook {
            rng,
            config: config.clone(),
            rates_per_ms,
            next_arrival_ms: [f64::INFINITY; 7],
            slots: Vec::new(),
            free: Vec::new(),
            sensor_fault: vec![NO_FAULT; sensors],
            next_id: 1,
        };
        for k in 0..FaultKind::ALL.len() {
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
            let mut free: Vec<usize> =
                machine_sensors[machine].clone().filter(|&s| self.sensor_fault[s] == NO_FAULT).collect();
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
        } else {
            let sensor = self.rng.random_range(0..scales.len());
            if self.sensor_fault[sensor] != NO_FAULT {
                return None;
            }
            let machine = machine_sensors.partition_point(|r| r.end <= sensor);
            let SensorScale { width, noise_sd } = scales[sensor];
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
                FaultKind::NoiseBurst => {
                    let sd =
                        (self.rng.random_range(4.0..10.0) * noise_sd).max(self.rng.random_range(0.03..0.08) * width);
                    (sd, self.seconds(c.noise_burst_min_s, c.noise_burst_max_s))
                }
                FaultKind::Stuck => (0.0, self.seconds(c.stuck_min_s, c.stuck_max_s)),
                FaultKind::Dropout | FaultKind::Machine => (0.0, self.seconds(c.dropout_min_s, c.dropout_max_s)),
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
        })
    }
}
