//! Shared helpers of the simulator's integration tests: small layouts, configs and runs.
#![allow(dead_code)]

use layout::{Layout, Scale};
use simulator::{Factory, FaultConfig, FaultKind, SimConfig, Step};

/// 2026-01-01T00:00:00Z.
pub const START_MS: i64 = 1_767_225_600_000;

pub fn small_layout(plants: u32, sensors_per_plant: u32, lines_per_plant: u32) -> Layout {
    let scale = Scale {
        plants: Some(plants),
        sensors_per_plant: Some(sensors_per_plant),
        lines_per_plant: Some(lines_per_plant),
    };
    Layout::default_with(&scale).unwrap()
}

/// The factory with mixed kinds of signal: set points, valves, states, counters, quantised,
/// idle-flat, spiky, heavy-tailed and irregular sensors beside the analog ones.
pub fn small_mixed_layout(plants: u32, sensors_per_plant: u32, lines_per_plant: u32) -> Layout {
    let scale = Scale {
        plants: Some(plants),
        sensors_per_plant: Some(sensors_per_plant),
        lines_per_plant: Some(lines_per_plant),
    };
    Layout::from_toml(layout::MIXED_SIGNALS_LAYOUT_TOML, &scale).unwrap()
}

/// Only faults of `kind`, at `rate` per sensor (or machine) and hour, with durations cut
/// down so that a short run holds many complete faults.
pub fn only(kind: FaultKind, rate: f64) -> SimConfig {
    let mut faults = FaultConfig {
        level_shift_min_s: 60.0,
        level_shift_max_s: 300.0,
        drift_min_s: 120.0,
        drift_max_s: 600.0,
        stuck_min_s: 30.0,
        stuck_max_s: 300.0,
        noise_burst_min_s: 60.0,
        noise_burst_max_s: 300.0,
        dropout_min_s: 10.0,
        dropout_max_s: 120.0,
        machine_fault_min_s: 120.0,
        machine_fault_max_s: 600.0,
        ..FaultConfig::none()
    };
    match kind {
        FaultKind::Spike => faults.spike_rate_per_sensor_hour = rate,
        FaultKind::LevelShift => faults.level_shift_rate_per_sensor_hour = rate,
        FaultKind::Drift => faults.drift_rate_per_sensor_hour = rate,
        FaultKind::Stuck => faults.stuck_rate_per_sensor_hour = rate,
        FaultKind::NoiseBurst => faults.noise_burst_rate_per_sensor_hour = rate,
        FaultKind::Dropout => faults.dropout_rate_per_sensor_hour = rate,
        FaultKind::Machine => faults.machine_fault_rate_per_machine_hour = rate,
        FaultKind::SetpointIgnored => faults.setpoint_ignored_rate_per_machine_hour = rate,
        FaultKind::ValveStuck => faults.valve_stuck_rate_per_sensor_hour = rate,
        FaultKind::CounterStopped => faults.counter_stopped_rate_per_sensor_hour = rate,
        FaultKind::QuantisedDrift => faults.quantised_drift_rate_per_sensor_hour = rate,
    }
    SimConfig { faults, ..SimConfig::default() }
}

pub fn clean() -> SimConfig {
    SimConfig { faults: FaultConfig::none(), ..SimConfig::default() }
}

/// Every fault kind at once, often.
pub fn busy() -> SimConfig {
    let mut config = only(FaultKind::Spike, 0.02);
    let faults = &mut config.faults;
    faults.level_shift_rate_per_sensor_hour = 0.01;
    faults.drift_rate_per_sensor_hour = 0.01;
    faults.stuck_rate_per_sensor_hour = 0.01;
    faults.noise_burst_rate_per_sensor_hour = 0.01;
    faults.dropout_rate_per_sensor_hour = 0.01;
    faults.machine_fault_rate_per_machine_hour = 0.1;
    config
}

pub fn run(layout: &Layout, config: &SimConfig, seed: u64, steps: usize) -> Vec<Step> {
    let mut factory = Factory::new(layout, config, seed, START_MS).unwrap();
    (0..steps).map(|_| factory.step()).collect()
}

/// Values by step and sensor position (`layout.sensor_index`); `None` where no reading.
pub fn grid(layout: &Layout, steps: &[Step]) -> Vec<Vec<Option<f64>>> {
    steps
        .iter()
        .map(|step| {
            let mut row = vec![None; layout.sensor_count()];
            for batch in &step.batches {
                for r in &batch.readings {
                    row[layout.sensor_index(r.sensor).unwrap()] = Some(r.value);
                }
            }
            row
        })
        .collect()
}
