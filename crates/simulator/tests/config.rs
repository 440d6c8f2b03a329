//! Settings have defaults, reject unknown keys and bad values, and bad setups are named.
// Test helpers unwrap freely: a failure is the test failing.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use simulator::{ConfigError, Factory, PlantSim, SimConfig, SimError};

fn parse(json: &str) -> Result<SimConfig, serde_json::Error> {
    serde_json::from_str(json)
}

#[track_caller]
fn invalid(json: &str, field: &str) {
    let config = parse(json).unwrap();
    let err = config.validate().unwrap_err();
    assert!(err.to_string().contains(field), "{err} does not name {field}");
}

#[test]
fn an_empty_document_gives_the_defaults_and_they_are_valid() {
    let config = parse("{}").unwrap();
    assert_eq!(config, SimConfig::default());
    config.validate().unwrap();
    assert_eq!(config.step_ms, 1_000);
    let partial = parse(r#"{"step_ms": 60000, "faults": {"spike_rate_per_sensor_hour": 0.01}}"#).unwrap();
    assert_eq!(partial.step_ms, 60_000);
    assert_eq!(partial.faults.spike_rate_per_sensor_hour, 0.01);
    assert_eq!(partial.faults.dropout_rate_per_sensor_hour, SimConfig::default().faults.dropout_rate_per_sensor_hour);
    let round = serde_json::to_string(&partial).unwrap();
    assert_eq!(parse(&round).unwrap(), partial);
}

#[test]
fn unknown_keys_are_rejected() {
    for json in [r#"{"speed": 2}"#, r#"{"faults": {"spike_rate": 1}}"#, r#"{"maintenance": {"every_days": 3}}"#] {
        let err = parse(json).unwrap_err();
        assert!(err.to_string().contains("unknown field"), "{json}: {err}");
    }
}

#[test]
fn bad_values_name_their_setting() {
    invalid(r#"{"step_ms": 0}"#, "step_ms");
    invalid(r#"{"step_ms": 3600001}"#, "step_ms");
    invalid(r#"{"faults": {"spike_rate_per_sensor_hour": -1}}"#, "spike_rate_per_sensor_hour");
    invalid(r#"{"faults": {"dropout_rate_per_sensor_hour": 61}}"#, "dropout_rate_per_sensor_hour");
    invalid(r#"{"faults": {"machine_fault_rate_per_machine_hour": 1e300}}"#, "machine_fault_rate");
    invalid(r#"{"faults": {"spike_max_readings": 0}}"#, "spike_max_readings");
    invalid(r#"{"faults": {"dropout_min_s": 0}}"#, "dropout_min_s");
    invalid(r#"{"faults": {"stuck_min_s": 600, "stuck_max_s": 60}}"#, "stuck_min_s/max_s");
    invalid(r#"{"load": {"idle_share": 1.5}}"#, "idle_share");
    invalid(r#"{"load": {"response_s": 0}}"#, "response_s");
    invalid(r#"{"wear": {"life_spread": -0.1}}"#, "life_spread");
    invalid(r#"{"maintenance": {"run_to_failure_share": 2}}"#, "run_to_failure_share");
    invalid(r#"{"maintenance": {"repair_min_hours": 10, "repair_max_hours": 5}}"#, "repair_min_hours");
    let err = parse(r#"{"faults": {"stuck_min_s": 600, "stuck_max_s": 60}}"#).unwrap().validate().unwrap_err();
    assert!(matches!(err, ConfigError::Inverted { min, max, .. } if min == 600.0 && max == 60.0));
    // Non-finite values cannot come from JSON, but can from code.
    let mut config = SimConfig::default();
    config.faults.spike_rate_per_sensor_hour = f64::NAN;
    assert!(matches!(config.validate(), Err(ConfigError::Invalid { .. })));
}

#[test]
fn a_bad_setup_is_refused_before_anything_runs() {
    let layout = small_layout(2, 200, 2);
    let bad = SimConfig { step_ms: 0, ..SimConfig::default() };
    assert!(matches!(Factory::new(&layout, &bad, 1, START_MS), Err(SimError::Config(_))));
    assert!(matches!(PlantSim::new(&layout, 2, &SimConfig::default(), 1, START_MS), Err(SimError::NoSuchPlant(2))));
    let foreign = layout.plants()[1].machines.start;
    let err = PlantSim::for_machines(&layout, 0, &[foreign], &SimConfig::default(), 1, START_MS).unwrap_err();
    assert!(matches!(err, SimError::MachineOutsidePlant { ref machine, .. } if machine == "P2-L01-M001"), "{err}");
    let err = PlantSim::for_machines(&layout, 0, &[], &SimConfig::default(), 1, START_MS).unwrap_err();
    assert!(matches!(err, SimError::NoMachines));
    let err = PlantSim::for_machines(&layout, 0, &[usize::MAX], &SimConfig::default(), 1, START_MS).unwrap_err();
    assert!(matches!(err, SimError::MachineOutsidePlant { .. }));
    let mut factory = Factory::new(&layout, &SimConfig::default(), 1, START_MS).unwrap();
    assert!(factory.set_step_ms(0).is_err());
    assert_eq!(factory.step_ms(), 1_000);
}
