//! Steps match the layout (one sorted batch per gateway) and healthy signals look like machines.
// Test helpers unwrap freely: a failure is the test failing.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use layout::{Layout, Scale};
use simulator::{Factory, FactoryEvent, FaultKind, SimConfig, Step};

#[test]
fn a_step_has_one_sorted_batch_per_gateway_with_every_sensor() {
    let layout = small_layout(2, 500, 3);
    let mut factory = Factory::new(&layout, &clean(), 1, START_MS).unwrap();
    assert_eq!(factory.sensors_per_step(), 1_000);
    for k in 0..5 {
        let step = factory.step();
        assert_eq!(step.ts_ms, START_MS + k * 1_000);
        assert_eq!(step.batches.len(), layout.gateways().len());
        for (batch, line) in step.batches.iter().zip(layout.gateways()) {
            assert_eq!(&*batch.gateway, line.id);
            assert_eq!(&*batch.plant, layout.plants()[line.plant].id);
            assert_eq!(batch.sequence, step.ts_ms as u64);
            let ids: Vec<u32> = batch.readings.iter().map(|r| r.sensor).collect();
            let expected: Vec<u32> = layout.gateway_sensors(line).iter().map(|s| s.id).collect();
            assert_eq!(ids, expected, "gateway {} reports its sensors in id order", line.id);
            for r in &batch.readings {
                assert_eq!(r.ts_ms, step.ts_ms);
                assert!(r.value.is_finite());
                assert_eq!(f64::from(r.value as f32), r.value, "values are f32");
            }
            let bytes = telemetry::encode(&batch.readings).unwrap();
            assert_eq!(telemetry::decode(&bytes).unwrap(), batch.readings);
            assert!(bytes.len() <= 5 * batch.readings.len() + 16, "about 5 bytes a reading");
        }
    }
}

#[test]
fn the_default_factory_generates_fifty_thousand_readings_a_second() {
    let layout = Layout::default_with(&Scale::default()).unwrap();
    let mut factory = Factory::new(&layout, &SimConfig::default(), 1, START_MS).unwrap();
    let step = factory.step();
    assert_eq!(step.batches.len(), 50);
    // A dropout may already be running at the first step; nothing else removes readings.
    assert!(step.reading_count() > 49_900 && step.reading_count() <= 50_000);
}

#[test]
fn default_fault_rates_give_tens_of_faults_an_hour_of_every_kind() {
    // The factory with mixed kinds of signal: it has the valves, counters, set points and
    // quantised sensors the faults of every kind need.
    let scale = Scale { plants: Some(1), ..Scale::default() };
    let layout = Layout::from_toml(layout::MIXED_SIGNALS_LAYOUT_TOML, &scale).unwrap();
    let hours = 6;
    let steps = run(&layout, &SimConfig::with_step_ms(60_000), 2, hours * 60);
    let mut by_kind = std::collections::BTreeMap::new();
    for event in steps.iter().flat_map(|s| &s.events) {
        if let FactoryEvent::FaultStarted(record) = event {
            *by_kind.entry(record.kind()).or_insert(0) += 1;
        }
    }
    let total: usize = by_kind.values().sum();
    let per_hour = total as f64 / hours as f64;
    assert!((8.0..=40.0).contains(&per_hour), "{per_hour} faults an hour: {by_kind:?}");
    assert_eq!(by_kind.len(), FaultKind::ALL.len(), "every kind occurs: {by_kind:?}");
}

#[test]
fn healthy_readings_stay_inside_their_normal_band() {
    let layout = small_layout(1, 1_000, 2);
    let steps = run(&layout, &SimConfig { step_ms: 30_000, ..clean() }, 4, 2 * 2_880);
    let (mut inside, mut total) = (0usize, 0usize);
    for r in steps.iter().flat_map(|s| &s.batches).flat_map(|b| &b.readings) {
        let (min, max) = layout.sensor(r.sensor).unwrap().normal_range();
        total += 1;
        inside += usize::from((min..=max).contains(&r.value));
    }
    // Machines close to failure leave the band on purpose; nothing else should.
    let share = inside as f64 / total as f64;
    assert!(share > 0.97, "only {share} of healthy readings inside the normal band");
}

/// Pearson correlation of the first differences of two series.
fn diff_correlation(a: &[f64], b: &[f64]) -> f64 {
    let da: Vec<f64> = a.windows(2).map(|w| w[1] - w[0]).collect();
    let db: Vec<f64> = b.windows(2).map(|w| w[1] - w[0]).collect();
    let n = da.len() as f64;
    let (ma, mb) = (da.iter().sum::<f64>() / n, db.iter().sum::<f64>() / n);
    let cov: f64 = da.iter().zip(&db).map(|(x, y)| (x - ma) * (y - mb)).sum();
    let va: f64 = da.iter().map(|x| (x - ma).powi(2)).sum();
    let vb: f64 = db.iter().map(|y| (y - mb).powi(2)).sum();
    cov / (va * vb).sqrt()
}

fn series(steps: &[Step], layout: &Layout, name: &str) -> Vec<f64> {
    let id = layout.sensor_id(name).unwrap();
    steps.iter().map(|s| s.batches.iter().flat_map(|b| &b.readings).find(|r| r.sensor == id).unwrap().value).collect()
}

#[test]
fn load_moves_the_sensors_of_one_machine_together() {
    let layout = small_layout(1, 1_000, 1);
    // At one reading a minute a load change shows mostly within one step, well above the noise.
    let steps = run(&layout, &SimConfig { step_ms: 60_000, ..clean() }, 6, 2 * 1_440);
    let same =
        diff_correlation(&series(&steps, &layout, "P1-L01-M001-TEMP1"), &series(&steps, &layout, "P1-L01-M001-CURR1"));
    let other =
        diff_correlation(&series(&steps, &layout, "P1-L01-M001-TEMP1"), &series(&steps, &layout, "P1-L01-M002-CURR1"));
    assert!(same > 0.5, "same machine: {same}");
    assert!(other.abs() < 0.15, "different machines: {other}");
}

#[test]
fn temperatures_follow_a_daily_cycle() {
    // Average a conveyor motor temperature (3 °C daily amplitude) hour by hour over
    // four days: the hourly means must swing more than noise and load can explain.
    let layout = small_layout(1, 1_000, 1);
    let machine = layout.machines().iter().find(|m| layout.machine_type_of(m).name == "conveyor").unwrap();
    let name = format!("{}-TEMP1", machine.id);
    let steps = run(&layout, &SimConfig { step_ms: 60_000, ..clean() }, 12, 4 * 1_440);
    let values = series(&steps, &layout, &name);
    let mut by_hour = [(0.0, 0usize); 24];
    for (k, v) in values.iter().enumerate() {
        let hour = (k / 60) % 24;
        by_hour[hour].0 += v;
        by_hour[hour].1 += 1;
    }
    let means: Vec<f64> = by_hour.iter().map(|(sum, n)| sum / *n as f64).collect();
    let swing = means.iter().cloned().fold(f64::MIN, f64::max) - means.iter().cloned().fold(f64::MAX, f64::min);
    assert!(swing > 3.0, "hourly means of {name} swing only {swing}");
}
