//! The simulator's settings: one typed struct with defaults, units in every name.

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Longest allowed sampling interval. Faults, load changes and drift are modelled at
/// minute to hour scales; coarser steps would hide them entirely.
pub const MAX_STEP_MS: u64 = 3_600_000;
/// Highest fault rate accepted for any kind, per sensor (or machine) and hour. Rates
/// above one a minute would leave no normal signal to compare against.
pub const MAX_FAULT_RATE_PER_HOUR: f64 = 60.0;

/// Everything the simulator can be told, besides the layout, the seed and the clock.
/// Deserializing an empty document gives the defaults; unknown keys are rejected.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SimConfig {
    /// Simulated time between two readings of a sensor: 1,000 is real time (1 Hz);
    /// a backfill of history typically uses 60,000 (one reading a minute).
    pub step_ms: u64,
    pub faults: FaultConfig,
    pub load: LoadConfig,
    pub wear: WearConfig,
    pub maintenance: MaintenanceConfig,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            step_ms: 1_000,
            faults: FaultConfig::default(),
            load: LoadConfig::default(),
            wear: WearConfig::default(),
            maintenance: MaintenanceConfig::default(),
        }
    }
}

/// Injected sensor faults. Rates are per sensor (or per machine) and simulated hour;
/// durations are drawn log-uniformly between their min and max.
///
/// The defaults give a plant of 10,000 sensors and 670 machines about 20 faults an hour:
/// 6 spikes, 2 level shifts, 2 drifts, 2 stuck values, 3 noise bursts, 3 dropouts and
/// 2 correlated machine faults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FaultConfig {
    /// A reading or a few far outside the normal band.
    pub spike_rate_per_sensor_hour: f64,
    /// The level jumps and stays shifted until the fault ends.
    pub level_shift_rate_per_sensor_hour: f64,
    /// The level moves away linearly, ending the fault far from normal.
    pub drift_rate_per_sensor_hour: f64,
    /// The sensor repeats one value exactly.
    pub stuck_rate_per_sensor_hour: f64,
    /// The noise grows several times larger.
    pub noise_burst_rate_per_sensor_hour: f64,
    /// The sensor sends nothing.
    pub dropout_rate_per_sensor_hour: f64,
    /// Two to five sensors of one machine move together, ramping up then holding.
    pub machine_fault_rate_per_machine_hour: f64,
    /// A machine's set point steps and one to three of its process values ignore it
    /// (machines with a set point only).
    pub setpoint_ignored_rate_per_machine_hour: f64,
    /// A valve or damper freezes as its machine's load changes (per valve sensor).
    pub valve_stuck_rate_per_sensor_hour: f64,
    /// A counter stops counting (per counter).
    pub counter_stopped_rate_per_sensor_hour: f64,
    /// A quantised sensor drifts (per quantised sensor).
    pub quantised_drift_rate_per_sensor_hour: f64,
    /// A spike lasts 1 to this many readings.
    pub spike_max_readings: u32,
    pub level_shift_min_s: f64,
    pub level_shift_max_s: f64,
    pub drift_min_s: f64,
    pub drift_max_s: f64,
    pub stuck_min_s: f64,
    pub stuck_max_s: f64,
    pub noise_burst_min_s: f64,
    pub noise_burst_max_s: f64,
    pub dropout_min_s: f64,
    pub dropout_max_s: f64,
    pub machine_fault_min_s: f64,
    pub machine_fault_max_s: f64,
}

impl Default for FaultConfig {
    fn default() -> Self {
        FaultConfig {
            spike_rate_per_sensor_hour: 6e-4,
            level_shift_rate_per_sensor_hour: 2e-4,
            drift_rate_per_sensor_hour: 2e-4,
            stuck_rate_per_sensor_hour: 2e-4,
            noise_burst_rate_per_sensor_hour: 3e-4,
            dropout_rate_per_sensor_hour: 3e-4,
            machine_fault_rate_per_machine_hour: 3e-3,
            setpoint_ignored_rate_per_machine_hour: 3e-3,
            valve_stuck_rate_per_sensor_hour: 4e-3,
            counter_stopped_rate_per_sensor_hour: 4e-3,
            quantised_drift_rate_per_sensor_hour: 1.5e-3,
            spike_max_readings: 3,
            level_shift_min_s: 300.0,
            level_shift_max_s: 3_600.0,
            drift_min_s: 1_800.0,
            drift_max_s: 14_400.0,
            stuck_min_s: 300.0,
            stuck_max_s: 3_600.0,
            noise_burst_min_s: 60.0,
            noise_burst_max_s: 900.0,
            dropout_min_s: 30.0,
            dropout_max_s: 600.0,
            machine_fault_min_s: 900.0,
            machine_fault_max_s: 10_800.0,
        }
    }
}

impl FaultConfig {
    /// No faults at all: the clean signal, for comparisons and for training on healthy data.
    pub fn none() -> Self {
        FaultConfig {
            spike_rate_per_sensor_hour: 0.0,
            level_shift_rate_per_sensor_hour: 0.0,
            drift_rate_per_sensor_hour: 0.0,
            stuck_rate_per_sensor_hour: 0.0,
            noise_burst_rate_per_sensor_hour: 0.0,
            dropout_rate_per_sensor_hour: 0.0,
            machine_fault_rate_per_machine_hour: 0.0,
            setpoint_ignored_rate_per_machine_hour: 0.0,
            valve_stuck_rate_per_sensor_hour: 0.0,
            counter_stopped_rate_per_sensor_hour: 0.0,
            quantised_drift_rate_per_sensor_hour: 0.0,
            ..FaultConfig::default()
        }
    }

    /// Every rate multiplied by `factor` (durations unchanged).
    pub fn scaled(&self, factor: f64) -> Self {
        FaultConfig {
            spike_rate_per_sensor_hour: self.spike_rate_per_sensor_hour * factor,
            level_shift_rate_per_sensor_hour: self.level_shift_rate_per_sensor_hour * factor,
            drift_rate_per_sensor_hour: self.drift_rate_per_sensor_hour * factor,
            stuck_rate_per_sensor_hour: self.stuck_rate_per_sensor_hour * factor,
            noise_burst_rate_per_sensor_hour: self.noise_burst_rate_per_sensor_hour * factor,
            dropout_rate_per_sensor_hour: self.dropout_rate_per_sensor_hour * factor,
            machine_fault_rate_per_machine_hour: self.machine_fault_rate_per_machine_hour * factor,
            setpoint_ignored_rate_per_machine_hour: self.setpoint_ignored_rate_per_machine_hour * factor,
            valve_stuck_rate_per_sensor_hour: self.valve_stuck_rate_per_sensor_hour * factor,
            counter_stopped_rate_per_sensor_hour: self.counter_stopped_rate_per_sensor_hour * factor,
            quantised_drift_rate_per_sensor_hour: self.quantised_drift_rate_per_sensor_hour * factor,
            ..self.clone()
        }
    }
}

/// How a machine's load (0 = idle, 1 = full; 0.75 typical) changes over time. A change
/// of load moves all the machine's sensors together.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LoadConfig {
    /// Mean time between changes of a machine's target load (exponentially distributed).
    pub mean_minutes_between_changes: f64,
    /// Time constant with which the load follows a new target.
    pub response_s: f64,
    /// Share of load changes that idle the machine.
    pub idle_share: f64,
}

impl Default for LoadConfig {
    fn default() -> Self {
        LoadConfig { mean_minutes_between_changes: 20.0, response_s: 60.0, idle_share: 0.08 }
    }
}

/// Machine-to-machine variation of wear. A machine type's `life_days` (in the layout) is
/// the typical time from service to failure.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WearConfig {
    /// Standard deviation of the natural log of a machine's life relative to its type's.
    pub life_spread: f64,
}

impl Default for WearConfig {
    fn default() -> Self {
        WearConfig { life_spread: 0.3 }
    }
}

/// Who gets serviced, when, and how long machines are down.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MaintenanceConfig {
    /// Share of machines never serviced on a schedule: they run until they fail.
    pub run_to_failure_share: f64,
    /// Scheduled machines are serviced this share of their type's life after their last
    /// maintenance; machines that wear faster than typical fail before that.
    pub service_at_life_share: f64,
    pub service_min_hours: f64,
    pub service_max_hours: f64,
    /// Repair after a failure.
    pub repair_min_hours: f64,
    pub repair_max_hours: f64,
}

impl Default for MaintenanceConfig {
    fn default() -> Self {
        MaintenanceConfig {
            run_to_failure_share: 0.25,
            service_at_life_share: 0.8,
            service_min_hours: 2.0,
            service_max_hours: 6.0,
            repair_min_hours: 8.0,
            repair_max_hours: 36.0,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Error)]
pub enum ConfigError {
    #[error("simulator setting {field} must be {rule}, got {value}")]
    Invalid { field: &'static str, value: f64, rule: &'static str },
    #[error("simulator settings {field}: the minimum {min} is above the maximum {max}")]
    Inverted { field: &'static str, min: f64, max: f64 },
}

impl SimConfig {
    /// The defaults with a different sampling interval.
    pub fn with_step_ms(step_ms: u64) -> Self {
        SimConfig { step_ms, ..SimConfig::default() }
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        check_step_ms(self.step_ms)?;
        let f = &self.faults;
        for (field, value) in [
            ("faults.spike_rate_per_sensor_hour", f.spike_rate_per_sensor_hour),
            ("faults.level_shift_rate_per_sensor_hour", f.level_shift_rate_per_sensor_hour),
            ("faults.drift_rate_per_sensor_hour", f.drift_rate_per_sensor_hour),
            ("faults.stuck_rate_per_sensor_hour", f.stuck_rate_per_sensor_hour),
            ("faults.noise_burst_rate_per_sensor_hour", f.noise_burst_rate_per_sensor_hour),
            ("faults.dropout_rate_per_sensor_hour", f.dropout_rate_per_sensor_hour),
            ("faults.machine_fault_rate_per_machine_hour", f.machine_fault_rate_per_machine_hour),
            ("faults.setpoint_ignored_rate_per_machine_hour", f.setpoint_ignored_rate_per_machine_hour),
            ("faults.valve_stuck_rate_per_sensor_hour", f.valve_stuck_rate_per_sensor_hour),
            ("faults.counter_stopped_rate_per_sensor_hour", f.counter_stopped_rate_per_sensor_hour),
            ("faults.quantised_drift_rate_per_sensor_hour", f.quantised_drift_rate_per_sensor_hour),
        ] {
            if !(value.is_finite() && (0.0..=MAX_FAULT_RATE_PER_HOUR).contains(&value)) {
                return Err(ConfigError::Invalid { field, value, rule: "between 0 and 60 per hour" });
            }
        }
        if !(1..=1_000).contains(&f.spike_max_readings) {
            return Err(ConfigError::Invalid {
                field: "faults.spike_max_readings",
                value: f64::from(f.spike_max_readings),
                rule: "between 1 and 1000",
            });
        }
        for (field, min, max) in [
            ("faults.level_shift_min_s/max_s", f.level_shift_min_s, f.level_shift_max_s),
            ("faults.drift_min_s/max_s", f.drift_min_s, f.drift_max_s),
            ("faults.stuck_min_s/max_s", f.stuck_min_s, f.stuck_max_s),
            ("faults.noise_burst_min_s/max_s", f.noise_burst_min_s, f.noise_burst_max_s),
            ("faults.dropout_min_s/max_s", f.dropout_min_s, f.dropout_max_s),
            ("faults.machine_fault_min_s/max_s", f.machine_fault_min_s, f.machine_fault_max_s),
            (
                "maintenance.service_min_hours/max_hours",
                self.maintenance.service_min_hours,
                self.maintenance.service_max_hours,
            ),
            (
                "maintenance.repair_min_hours/max_hours",
                self.maintenance.repair_min_hours,
                self.maintenance.repair_max_hours,
            ),
        ] {
            check_duration(field, min, max)?;
        }
        check_positive("load.mean_minutes_between_changes", self.load.mean_minutes_between_changes, 0.05)?;
        check_positive("load.response_s", self.load.response_s, 0.0)?;
        check_share("load.idle_share", self.load.idle_share)?;
        if !(self.wear.life_spread.is_finite() && (0.0..=2.0).contains(&self.wear.life_spread)) {
            return Err(ConfigError::Invalid {
                field: "wear.life_spread",
                value: self.wear.life_spread,
                rule: "between 0 and 2",
            });
        }
        check_share("maintenance.run_to_failure_share", self.maintenance.run_to_failure_share)?;
        check_positive("maintenance.service_at_life_share", self.maintenance.service_at_life_share, 0.0)?;
        Ok(())
    }
}

pub(crate) fn check_step_ms(step_ms: u64) -> Result<(), ConfigError> {
    if (1..=MAX_STEP_MS).contains(&step_ms) {
        Ok(())
    } else {
        Err(ConfigError::Invalid { field: "step_ms", value: step_ms as f64, rule: "between 1 and 3,600,000 ms" })
    }
}

fn check_duration(field: &'static str, min: f64, max: f64) -> Result<(), ConfigError> {
    // Up to a year: long enough for any fault or repair, short enough that time arithmetic
    // in milliseconds stays exact.
    for value in [min, max] {
        if !(value.is_finite() && value > 0.0 && value <= 366.0 * 86_400.0) {
            return Err(ConfigError::Invalid { field, value, rule: "a positive duration of at most a year" });
        }
    }
    if min > max {
        return Err(ConfigError::Inverted { field, min, max });
    }
    Ok(())
}

fn check_positive(field: &'static str, value: f64, above: f64) -> Result<(), ConfigError> {
    if value.is_finite() && value > above && value <= 1e6 {
        Ok(())
    } else {
        Err(ConfigError::Invalid { field, value, rule: "a positive number in range" })
    }
}

fn check_share(field: &'static str, value: f64) -> Result<(), ConfigError> {
    if value.is_finite() && (0.0..=1.0).contains(&value) {
        Ok(())
    } else {
        Err(ConfigError::Invalid { field, value, rule: "a share between 0 and 1" })
    }
}
