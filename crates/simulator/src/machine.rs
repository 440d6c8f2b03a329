//! One machine over time: its load, its wear, and the failures and maintenance that end a cycle.

use crate::config::SimConfig;
use crate::event::MaintenanceKind;
use crate::seed::SimRng;
use rand::RngExt;
use rand_distr::{Exp1, StandardNormal};
use serde::{Deserialize, Serialize};

const MS_PER_DAY: f64 = 86_400_000.0;
const MS_PER_HOUR: f64 = 3_600_000.0;

/// What a machine is doing.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum MachineStatus {
    Running,
    /// Stopped for maintenance (after a failure when `kind` is corrective) until `until_ms`.
    Down {
        kind: MaintenanceKind,
        until_ms: i64,
    },
}

/// A machine's state at the last step, for inspection and evaluation.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct MachineState {
    /// 0 = idle, 1 = full; 0.75 is typical.
    pub load: f64,
    /// 0 after maintenance; the machine fails when it reaches `wear_limit`.
    pub wear: f64,
    /// This machine's hidden failure threshold (about 1).
    pub wear_limit: f64,
    /// Whether the machine is serviced on a schedule (otherwise it runs to failure).
    pub scheduled: bool,
    /// When the next scheduled service is due (`i64::MAX` when none is planned).
    pub next_service_ms: i64,
    pub status: MachineStatus,
}

/// What changed in a machine during one step.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Change {
    Completed { kind: MaintenanceKind, wear: f64 },
    Failed { wear: f64, until_ms: i64 },
    ServiceStarted { wear: f64, until_ms: i64 },
}

#[derive(Debug, Clone)]
pub(crate) struct MachineSim {
    rng: SimRng,
    pub load: f64,
    target: f64,
    next_load_change_ms: i64,
    pub wear: f64,
    /// Wear added per millisecond at a load factor of 1.
    wear_per_ms: f64,
    limit: f64,
    scheduled: bool,
    service_interval_ms: i64,
    next_service_ms: i64,
    status: MachineStatus,
}

impl MachineSim {
    /// A machine at a random point of its service cycle, so failures and services happen
    /// from the first simulated day rather than all together after a month.
    pub fn new(mut rng: SimRng, life_days: f64, config: &SimConfig, start_ms: i64) -> Self {
        let spread: f64 = rng.sample::<f64, _>(StandardNormal) * config.wear.life_spread;
        let life_ms = life_days * spread.exp() * MS_PER_DAY;
        let limit = rng.random_range(0.9..1.1);
        let scheduled = rng.random::<f64>() >= config.maintenance.run_to_failure_share;
        let service_interval_ms = (life_days * config.maintenance.service_at_life_share * MS_PER_DAY) as i64;
        let wear_per_ms = 1.0 / life_ms;
        let failure_after_ms = limit * life_ms;
        let cycle_ms = if scheduled { failure_after_ms.min(service_interval_ms as f64) } else { failure_after_ms };
        let age_ms = rng.random::<f64>() * cycle_ms * 0.95;
        let mut machine = MachineSim {
            load: 0.0,
            target: 0.0,
            next_load_change_ms: start_ms,
            wear: age_ms * wear_per_ms,
            wear_per_ms,
            limit,
            scheduled,
            service_interval_ms,
            next_service_ms: if scheduled { start_ms + service_interval_ms - age_ms as i64 } else { i64::MAX },
            status: MachineStatus::Running,
            rng,
        };
        machine.change_load(start_ms, config);
        machine.load = machine.target;
        machine
    }

    /// The load the machine is heading for (its set points follow it).
    pub fn target(&self) -> f64 {
        self.target
    }

    /// When the load target next changes.
    pub fn next_load_change_ms(&self) -> i64 {
        self.next_load_change_ms
    }

    pub fn running(&self) -> bool {
        self.status == MachineStatus::Running
    }

    pub fn state(&self) -> MachineState {
        MachineState {
            load: self.load,
            wear: self.wear,
            wear_limit: self.limit,
            scheduled: self.scheduled,
            next_service_ms: self.next_service_ms,
            status: self.status,
        }
    }

    fn change_load(&mut self, ts_ms: i64, config: &SimConfig) {
        self.target = if self.rng.random::<f64>() < config.load.idle_share {
            self.rng.random_range(0.02..0.15)
        } else {
            self.rng.random_range(0.55..1.0)
        };
        let wait: f64 = self.rng.sample(Exp1);
        let wait_ms = (wait * config.load.mean_minutes_between_changes * 60_000.0).max(1.0);
        self.next_load_change_ms = ts_ms.max(self.next_load_change_ms) + wait_ms as i64;
    }

    /// Advances to `ts_ms`, `dt_ms` after the previous step. `lag` is the share of the
    /// gap to the target load closed in `dt_ms`.
    pub fn advance(&mut self, ts_ms: i64, dt_ms: i64, lag: f64, config: &SimConfig, changes: &mut Vec<Change>) {
        if let MachineStatus::Down { kind, until_ms } = self.status
            && ts_ms >= until_ms
        {
            self.wear = self.rng.random_range(0.0..0.03);
            self.limit = self.rng.random_range(0.9..1.1);
            self.next_service_ms = if self.scheduled { ts_ms + self.service_interval_ms } else { i64::MAX };
            self.status = MachineStatus::Running;
            changes.push(Change::Completed { kind, wear: self.wear });
        }
        while self.next_load_change_ms <= ts_ms {
            let due = self.next_load_change_ms;
            self.change_load(due, config);
        }
        if self.status != MachineStatus::Running {
            self.load = 0.0;
            return;
        }
        self.load += (self.target - self.load) * lag;
        self.wear += self.wear_per_ms * dt_ms as f64 * (0.4 + 0.8 * self.load);
        if self.wear >= self.limit {
            let until_ms = ts_ms + self.hours(config.maintenance.repair_min_hours, config.maintenance.repair_max_hours);
            changes.push(Change::Failed { wear: self.wear, until_ms });
            self.status = MachineStatus::Down { kind: MaintenanceKind::Corrective, until_ms };
            self.load = 0.0;
        } else if ts_ms >= self.next_service_ms {
            let until_ms =
                ts_ms + self.hours(config.maintenance.service_min_hours, config.maintenance.service_max_hours);
            changes.push(Change::ServiceStarted { wear: self.wear, until_ms });
            self.status = MachineStatus::Down { kind: MaintenanceKind::Preventive, until_ms };
            self.load = 0.0;
        }
    }

    fn hours(&mut self, min: f64, max: f64) -> i64 {
        let hours = if max > min { self.rng.random_range(min..max) } else { min };
        (hours * MS_PER_HOUR).max(1.0) as i64
    }
}
