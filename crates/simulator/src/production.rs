//! Production: the parts each machine makes, as its controller would count them.
//!
//! Every machine has a planned schedule (its line works two shifts, 06:00–22:00 local
//! time Monday to Friday, or three shifts Monday to Saturday), an ideal cycle time (its
//! type's, varied per machine), and part counters. While planned, a running machine
//! under load makes parts at a speed that falls a little with load and with wear; each
//! part is rejected with a probability that grows with the machine's wear and jumps
//! while one of its sensors has a fault. Outside the schedule nothing is counted.
//!
//! [`ProductionSim`] watches a [`PlantSim`] step by step (its machines' states and the
//! step's fault events) and, at the end of every report period (15 minutes by default,
//! aligned to the clock, so a period never straddles an hour), hands out one
//! [`ProductionReport`] per machine: what a line's gateway sends to the plant. It draws
//! from its own random streams, so adding it changes no reading of the run.
//!
//! Sensor signals do not follow the schedule: a machine's load process is the same
//! planned or not (only what is counted differs).

use std::collections::HashMap;

use layout::Layout;
use rand::RngExt;
use serde::{Deserialize, Serialize};

use crate::event::FactoryEvent;
use crate::machine::MachineStatus;
use crate::plant::PlantSim;
use crate::seed::{Purpose, SimRng, stream};

const MS_PER_HOUR: i64 = 3_600_000;
const MS_PER_DAY: i64 = 86_400_000;
/// Production streams are machine streams far beyond any machine index, so they are
/// independent of every other stream of the run (see `seed`).
const PRODUCTION_STREAM: u64 = 1 << 48;

/// How production is simulated.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProductionConfig {
    /// Length of a report period; it must divide an hour.
    pub report_interval_ms: i64,
    /// Share of parts rejected by a new, healthy machine.
    pub base_reject_rate: f64,
    /// Added to the reject rate at wear 1 (in proportion to wear²).
    pub wear_reject_rate: f64,
    /// Added while a sensor of the machine has a fault.
    pub fault_reject_rate: f64,
    /// Below this load a running machine idles and makes nothing.
    pub producing_load: f64,
}

impl Default for ProductionConfig {
    fn default() -> Self {
        ProductionConfig {
            report_interval_ms: 15 * 60_000,
            base_reject_rate: 0.01,
            wear_reject_rate: 0.12,
            fault_reject_rate: 0.25,
            producing_load: 0.3,
        }
    }
}

impl ProductionConfig {
    pub fn validate(&self) -> Result<(), ProductionError> {
        let bad = |what: &str| Err(ProductionError(what.to_owned()));
        if self.report_interval_ms < 60_000 || MS_PER_HOUR % self.report_interval_ms != 0 {
            return bad("report_interval_ms must be at least a minute and divide an hour");
        }
        for rate in [self.base_reject_rate, self.wear_reject_rate, self.fault_reject_rate] {
            if !(0.0..=1.0).contains(&rate) {
                return bad("reject rates must be between 0 and 1");
            }
        }
        if !(0.0..1.0).contains(&self.producing_load) {
            return bad("producing_load must be in 0..1");
        }
        Ok(())
    }
}

/// A production setting, or a plant, that cannot be simulated.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("production: {0}")]
pub struct ProductionError(pub String);

/// Ideal cycle time of a machine type, seconds per part (a type the table does not
/// know makes a part a minute).
fn ideal_cycle_s(machine_type: &str) -> f64 {
    match machine_type {
        "cnc" => 90.0,
        "press" => 8.0,
        "pump" => 30.0,
        "conveyor" => 5.0,
        "oven" => 120.0,
        _ => 60.0,
    }
}

/// One machine's counts for one period, as its controller reports them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProductionReport {
    /// `P1-L03-M042`.
    pub machine: String,
    /// Its line's gateway, `P1-L03`.
    pub gateway: String,
    pub from_ms: i64,
    pub to_ms: i64,
    pub planned_ms: i64,
    pub running_ms: i64,
    pub parts: u64,
    pub rejects: u64,
    pub ideal_cycle_ms: i64,
}

#[derive(Debug, Clone)]
struct MachineCounter {
    id: String,
    gateway: String,
    /// Global machine index in the layout.
    index: usize,
    /// Whether its line works three shifts (else two).
    three_shifts: bool,
    ideal_cycle_ms: i64,
    rng: SimRng,
    /// Part in progress, as a share of one part.
    progress: f64,
    planned_ms: i64,
    running_ms: i64,
    parts: u64,
    rejects: u64,
    faults: u32,
}

/// The production of one plant, following its simulation.
#[derive(Debug, Clone)]
pub struct ProductionSim {
    config: ProductionConfig,
    plant_id: String,
    machines: Vec<MachineCounter>,
    by_id: HashMap<String, usize>,
    /// Which machine each open fault hits (to count its end).
    open_faults: HashMap<u64, usize>,
    day_offset_ms: i64,
    period_start_ms: Option<i64>,
    last_ts_ms: Option<i64>,
}

impl ProductionSim {
    /// The production of plant `plant` (an index of `layout.plants()`), for a run with
    /// this seed.
    pub fn new(layout: &Layout, plant: usize, config: &ProductionConfig, seed: u64) -> Result<Self, ProductionError> {
        config.validate()?;
        let p = layout
            .plants()
            .get(plant)
            .ok_or_else(|| ProductionError(format!("the layout has no plant at index {plant}")))?;
        // The plant's time zone, drawn exactly as its signals' daily cycle draws it.
        let day_offset_ms = stream(seed, p.number, Purpose::Plant, 0).random_range(0..24) * MS_PER_HOUR;
        let mut line_rng = stream(seed, p.number, Purpose::Machine, PRODUCTION_STREAM - 1);
        let three_shifts: Vec<bool> = p.lines.clone().map(|_| line_rng.random::<f64>() < 0.4).collect();
        let mut machines = Vec::new();
        for (i, m) in layout.machines()[p.machines.clone()].iter().enumerate() {
            let mut rng = stream(seed, p.number, Purpose::Machine, PRODUCTION_STREAM + i as u64);
            let ideal = ideal_cycle_s(&layout.machine_type_of(m).name) * rng.random_range(0.85..1.15);
            machines.push(MachineCounter {
                id: m.id.clone(),
                gateway: layout.lines()[m.line].id.clone(),
                index: p.machines.start + i,
                three_shifts: three_shifts[m.line - p.lines.start],
                ideal_cycle_ms: (ideal * 1000.0).round() as i64,
                rng,
                progress: 0.0,
                planned_ms: 0,
                running_ms: 0,
                parts: 0,
                rejects: 0,
                faults: 0,
            });
        }
        let by_id = machines.iter().enumerate().map(|(i, m)| (m.id.clone(), i)).collect();
        Ok(ProductionSim {
            config: config.clone(),
            plant_id: p.id.clone(),
            machines,
            by_id,
            open_faults: HashMap::new(),
            day_offset_ms,
            period_start_ms: None,
            last_ts_ms: None,
        })
    }

    /// Whether a machine whose line works `three_shifts` is planned to produce at `ts_ms`.
    fn planned(&self, three_shifts: bool, ts_ms: i64) -> bool {
        let local = ts_ms + self.day_offset_ms;
        let hour = local.rem_euclid(MS_PER_DAY) / MS_PER_HOUR;
        // 1970-01-01 was a Thursday: day 0 → weekday 3 (Monday = 0).
        let weekday = (local.div_euclid(MS_PER_DAY) + 3).rem_euclid(7);
        if three_shifts { weekday <= 5 } else { weekday <= 4 && (6..22).contains(&hour) }
    }

    /// Counts the step the plant just took (`plant` after `step_into`, with the step's
    /// `ts_ms` and `events`), and appends the reports of a period that ended.
    pub fn observe(&mut self, plant: &PlantSim, ts_ms: i64, events: &[FactoryEvent], out: &mut Vec<ProductionReport>) {
        for e in events {
            match e {
                FactoryEvent::FaultStarted(f) if f.plant == self.plant_id => {
                    if let Some(&m) = self.by_id.get(&f.machine) {
                        self.machines[m].faults += 1;
                        self.open_faults.insert(f.fault, m);
                    }
                }
                FactoryEvent::FaultEnded { plant, fault, .. } if *plant == self.plant_id => {
                    if let Some(m) = self.open_faults.remove(fault) {
                        self.machines[m].faults = self.machines[m].faults.saturating_sub(1);
                    }
                }
                _ => {}
            }
        }
        let interval = self.config.report_interval_ms;
        let Some(last) = self.last_ts_ms.replace(ts_ms) else {
            self.period_start_ms = Some(ts_ms.div_euclid(interval) * interval);
            return;
        };
        let dt = ts_ms - last;
        if dt <= 0 {
            return;
        }
        // The step covers (last, ts]: it belongs to the period holding its last instant.
        let period = (ts_ms - 1).div_euclid(interval) * interval;
        if let Some(start) = self.period_start_ms
            && period != start
        {
            self.report(start, start + interval, out);
        }
        self.period_start_ms = Some(period);
        let producing_load = self.config.producing_load;
        let (base, wear_rate, fault_rate) =
            (self.config.base_reject_rate, self.config.wear_reject_rate, self.config.fault_reject_rate);
        for i in 0..self.machines.len() {
            // The step's last instant decides, so steps of any size agree at shift changes.
            let planned = self.planned(self.machines[i].three_shifts, ts_ms - 1);
            let m = &mut self.machines[i];
            if !planned {
                continue;
            }
            m.planned_ms += dt;
            let Some(state) = plant.machine_state(m.index) else { continue };
            if state.status != MachineStatus::Running || state.load < producing_load {
                continue;
            }
            m.running_ms += dt;
            let wear2 = state.wear * state.wear;
            // Rated speed at full load; a little slower at low load and when worn.
            let speed = (0.75 + 0.25 * (state.load / 0.9).min(1.0) - 0.15 * wear2).clamp(0.3, 1.0);
            m.progress += dt as f64 * speed / m.ideal_cycle_ms as f64;
            let reject_rate = (base + wear_rate * wear2 + if m.faults > 0 { fault_rate } else { 0.0 }).min(1.0);
            while m.progress >= 1.0 {
                m.progress -= 1.0;
                m.parts += 1;
                if m.rng.random::<f64>() < reject_rate {
                    m.rejects += 1;
                }
            }
        }
    }

    fn report(&mut self, from_ms: i64, to_ms: i64, out: &mut Vec<ProductionReport>) {
        for m in &mut self.machines {
            out.push(ProductionReport {
                machine: m.id.clone(),
                gateway: m.gateway.clone(),
                from_ms,
                to_ms,
                planned_ms: std::mem::take(&mut m.planned_ms),
                running_ms: std::mem::take(&mut m.running_ms),
                parts: std::mem::take(&mut m.parts),
                rejects: std::mem::take(&mut m.rejects),
                ideal_cycle_ms: m.ideal_cycle_ms,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{SimConfig, Step};
    use layout::Scale;

    const MONDAY_MIDNIGHT_UTC: i64 = 1_772_409_600_000; // 2026-03-02

    fn run(hours: i64, step_ms: u64, seed: u64) -> Vec<ProductionReport> {
        let scale = Scale { plants: Some(1), sensors_per_plant: Some(300), ..Scale::default() };
        let layout = Layout::default_with(&scale).expect("layout");
        let config = SimConfig::default();
        let mut plant = PlantSim::new(&layout, 0, &config, seed, MONDAY_MIDNIGHT_UTC).expect("plant");
        plant.set_step_ms(step_ms).expect("step");
        let mut production = ProductionSim::new(&layout, 0, &ProductionConfig::default(), seed).expect("production");
        let mut step = Step::default();
        let mut out = Vec::new();
        while plant.next_ts_ms() <= MONDAY_MIDNIGHT_UTC + hours * MS_PER_HOUR {
            plant.step_into(&mut step);
            production.observe(&plant, step.ts_ms, &step.events, &mut out);
        }
        out
    }

    #[test]
    fn reports_cover_whole_periods_and_add_up() {
        let reports = run(48, 60_000, 7);
        assert!(!reports.is_empty());
        let machines: std::collections::HashSet<&str> = reports.iter().map(|r| r.machine.as_str()).collect();
        assert_eq!(reports.len() % machines.len(), 0, "one report per machine per period");
        let mut made = 0;
        for r in &reports {
            assert_eq!(r.to_ms - r.from_ms, 15 * 60_000);
            assert_eq!(r.from_ms % (15 * 60_000), 0);
            assert!(r.running_ms <= r.planned_ms && r.planned_ms <= r.to_ms - r.from_ms);
            assert!(r.rejects <= r.parts);
            // Never faster than rated speed (plus the part in progress).
            assert!(r.parts as i64 * r.ideal_cycle_ms <= r.running_ms + r.ideal_cycle_ms, "{r:?}");
            made += r.parts;
        }
        assert!(made > 0, "two working days make parts");
        // Weekday nights of two-shift lines are not planned.
        assert!(reports.iter().any(|r| r.planned_ms == 0));
        assert!(reports.iter().any(|r| r.planned_ms == 15 * 60_000));
    }

    #[test]
    fn production_is_deterministic_and_coarse_steps_tell_the_same_story() {
        assert_eq!(run(6, 60_000, 3), run(6, 60_000, 3));
        let fine = run(6, 10_000, 3);
        let coarse = run(6, 60_000, 3);
        let total = |r: &[ProductionReport]| r.iter().map(|r| r.parts).sum::<u64>() as f64;
        let planned = |r: &[ProductionReport]| r.iter().map(|r| r.planned_ms).sum::<i64>();
        assert_eq!(planned(&fine), planned(&coarse));
        let (f, c) = (total(&fine), total(&coarse));
        assert!((f - c).abs() <= 0.05 * f.max(1.0), "parts at 10 s steps {f} vs 60 s steps {c}");
    }
}
