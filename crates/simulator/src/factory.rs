//! The whole factory: every plant stepped together, one batch per gateway per step.

use crate::config::{ConfigError, SimConfig, check_step_ms};
use crate::event::FactoryEvent;
use crate::plant::{PlantSim, SimError};
use layout::Layout;
use std::sync::Arc;
use telemetry::Reading;

/// The readings one gateway (one production line) reports for one step.
#[derive(Debug, Clone, PartialEq)]
pub struct GatewayBatch {
    /// Gateway id = line id, `P1-L03`.
    pub gateway: Arc<str>,
    /// `P1`.
    pub plant: Arc<str>,
    /// Index of the line in `layout.lines()`.
    pub line: usize,
    /// The gateway's batch sequence number: the step's timestamp in milliseconds. It
    /// grows with every batch of a gateway and identifies a batch across runs, so a
    /// run restarted at a later `start` never reuses a number (the ingest API stores a
    /// batch once per gateway and sequence).
    pub sequence: u64,
    /// Sorted by sensor id, all with the step's timestamp; `telemetry::encode` turns
    /// them into the wire format (a line has at most `layout::MAX_SENSORS_PER_LINE`
    /// sensors, which one batch can carry). Empty when every sensor of the line is in a
    /// dropout; such a batch is not sent.
    pub readings: Vec<Reading>,
}

/// Everything one step of simulated time produced.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Step {
    /// Timestamp of every reading of the step.
    pub ts_ms: i64,
    /// One batch per gateway, in `layout.lines()` order.
    pub batches: Vec<GatewayBatch>,
    /// What happened in the step, plant by plant, in order.
    pub events: Vec<FactoryEvent>,
}

impl Step {
    pub fn reading_count(&self) -> usize {
        self.batches.iter().map(|b| b.readings.len()).sum()
    }
}

/// Every plant of a layout, stepped in lockstep.
///
/// `seed + layout + config + start + steps → readings and events`, exactly: no clock, no
/// IO, no threads. For parallel generation, [`Factory::into_plants`] gives the plants to
/// step independently; their output is the same as the factory's.
#[derive(Debug, Clone)]
pub struct Factory {
    plants: Vec<PlantSim>,
    config: SimConfig,
    seed: u64,
    start_ms: i64,
}

impl Factory {
    pub fn new(layout: &Layout, config: &SimConfig, seed: u64, start_ms: i64) -> Result<Self, SimError> {
        config.validate()?;
        let plants = (0..layout.plants().len())
            .map(|plant| PlantSim::new(layout, plant, config, seed, start_ms))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Factory { plants, config: config.clone(), seed, start_ms })
    }

    pub fn seed(&self) -> u64 {
        self.seed
    }
    pub fn config(&self) -> &SimConfig {
        &self.config
    }
    pub fn start_ms(&self) -> i64 {
        self.start_ms
    }
    /// Timestamp of the readings the next step produces.
    pub fn next_ts_ms(&self) -> i64 {
        self.plants.first().map_or(self.start_ms, PlantSim::next_ts_ms)
    }
    pub fn step_ms(&self) -> u64 {
        self.plants.first().map_or(self.config.step_ms, PlantSim::step_ms)
    }
    /// Changes the sampling interval from the next step on, e.g. from a minute during a
    /// backfill to a second when the run catches up with the present.
    pub fn set_step_ms(&mut self, step_ms: u64) -> Result<(), ConfigError> {
        check_step_ms(step_ms)?;
        for plant in &mut self.plants {
            plant.set_step_ms(step_ms)?;
        }
        Ok(())
    }
    pub fn plants(&self) -> &[PlantSim] {
        &self.plants
    }
    /// The plants, to be stepped separately (e.g. one thread each).
    pub fn into_plants(self) -> Vec<PlantSim> {
        self.plants
    }
    /// Readings a step produces when no sensor is in a dropout.
    pub fn sensors_per_step(&self) -> usize {
        self.plants.iter().map(PlantSim::sensors_per_step).sum()
    }

    /// The state of a machine (an index of `layout.machines()`) after the last step.
    pub fn machine_state(&self, machine: usize) -> Option<crate::MachineState> {
        self.plants.iter().find_map(|p| p.machine_state(machine))
    }

    pub fn step(&mut self) -> Step {
        let mut out = Step::default();
        self.step_into(&mut out);
        out
    }

    /// Simulates the next step into `out`, reusing its buffers: after the first step no
    /// memory is allocated per reading or per batch.
    pub fn step_into(&mut self, out: &mut Step) {
        let lines: usize = self.plants.iter().map(|p| p.lines().len()).sum();
        // The factory holds every plant of its layout, so batch i is line i.
        let fits = out.batches.len() == lines && out.batches.iter().enumerate().all(|(i, b)| b.line == i);
        if !fits {
            out.batches = self.plants.iter().flat_map(PlantSim::empty_batches).collect();
        }
        out.ts_ms = self.next_ts_ms();
        out.events.clear();
        let mut rest = out.batches.as_mut_slice();
        for plant in &mut self.plants {
            let (mine, others) = rest.split_at_mut(plant.lines().len());
            plant.advance(mine, &mut out.events);
            rest = others;
        }
    }
}
