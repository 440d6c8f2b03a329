//! The factory shape: hourly sensor aggregates per machine indexed in days, runs that end in
//! failure or in maintenance, and lead-time evaluation of predictions issued every hour.
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;

use maintenance::{
    BoosterParams, FeatureConfig, HistoryTable, LeadTimeOptions, Outcome, OutcomeKind, RunEnd, TrainOptions,
    TrainingSet, lead_time_report, train,
};

const COLUMNS: [&str; 3] = ["vibration_mean", "vibration_max", "temperature_mean"];

fn noise(machine: u32, hour: u32, salt: u32) -> f64 {
    let h = machine
        .wrapping_mul(2_654_435_761)
        .wrapping_add(hour.wrapping_mul(40_503))
        .wrapping_add(salt.wrapping_mul(97))
        .rotate_left(11)
        .wrapping_mul(2_246_822_519);
    f64::from(h % 1000) / 1000.0 - 0.5
}

/// Days from service to failure.
fn life(machine: u32) -> f64 {
    8.0 + f64::from((machine * 5) % 9)
}

/// Service time of a machine, in days since the plant's epoch.
fn serviced_at(machine: u32) -> f64 {
    100.0 + f64::from(machine)
}

/// Adds a machine's hourly rows from its last service until `days` later; one hour in 37
/// has no data.
fn add_machine(table: &mut HistoryTable, machine: u32, days: f64) {
    let id = format!("P1-L01-M{machine:03}");
    let origin = serviced_at(machine);
    table.start_unit(&id, origin).unwrap();
    let hours = (days * 24.0 + 1e-9).floor() as u32;
    for h in 1..=hours {
        let age = f64::from(h) / 24.0;
        let wear = age / life(machine);
        let t = origin + age;
        let values = if h % 37 == 0 {
            [f64::NAN; 3]
        } else {
            let vib = 1.0 + 2.0 * wear.powi(3) + 0.05 * noise(machine, h, 1);
            [
                vib,
                vib + 0.5 + 0.1 * noise(machine, h, 2),
                40.0 + 5.0 * wear + 2.0 * (t * std::f64::consts::TAU).sin() + 0.3 * noise(machine, h, 3),
            ]
        };
        table.push_row(&id, t, &values).unwrap();
    }
}

fn table() -> HistoryTable {
    HistoryTable::new(COLUMNS.iter().map(|c| c.to_string()).collect()).unwrap()
}

#[test]
fn given_failed_and_serviced_machines_when_training_in_days_then_predictions_warn_ahead() {
    // Every fourth machine was serviced at 80 % of its life (censored); the rest failed.
    let mut history = table();
    let mut ends = HashMap::new();
    for m in 1..=16 {
        let id = format!("P1-L01-M{m:03}");
        let end = if m % 4 == 0 {
            let at = serviced_at(m) + 0.8 * life(m);
            add_machine(&mut history, m, 0.8 * life(m));
            RunEnd::Censored { at }
        } else {
            add_machine(&mut history, m, life(m));
            RunEnd::Failed { at: serviced_at(m) + life(m) }
        };
        ends.insert(id, end);
    }
    let set = TrainingSet::new(history, &ends).unwrap();
    let options = TrainOptions {
        rul_cap: Some(10.0),
        seed: 9,
        validation_units: 3,
        calibration_folds: 3,
        interval_min_bin_points: 100,
        truncations_per_unit: 5,
        min_history_rows: 24,
        time_unit: "days".into(),
        features: FeatureConfig { windows: vec![0.25, 1.0, 3.0], baseline_window: 1.0 },
        booster: BoosterParams {
            iterations: 40,
            learning_rate: 0.15,
            min_leaf_weight: 10.0,
            nbins: 32,
            ..BoosterParams::default()
        },
        ..TrainOptions::default()
    };
    let (model, report) = train(&set, &options).unwrap();
    assert_eq!(model.target().time_unit, "days");
    assert!(model.feature_set().dropped.is_empty());
    let every = model.metrics().unwrap().every_row.clone().unwrap();
    assert!(every.rmse < 1.0, "every-row RMSE {} days", every.rmse);
    assert!(report.training_rows < report.rows, "censored rows near the end are unlabelled");

    // New machines run to failure, scored every hour as the plant would.
    let mut fresh = table();
    let mut outcomes = Vec::new();
    for m in 201..=206 {
        add_machine(&mut fresh, m, life(m) - 1.0 / 24.0);
        outcomes.push(Outcome {
            unit: format!("P1-L01-M{m:03}"),
            time: serviced_at(m) + life(m),
            kind: OutcomeKind::Failure,
        });
    }
    let predictions = model.predict_every_row(&fresh).unwrap();
    assert!(predictions.iter().all(|p| 0.0 <= p.lower && p.lower <= p.predicted_rul && p.predicted_rul <= p.upper));
    // Far from failure the truth is past the cap (lives are 8–16 days), and so is the
    // interval's upper bound.
    assert!(predictions.iter().any(|p| p.upper > 10.0));
    let report = lead_time_report(&predictions, &outcomes, &LeadTimeOptions::default()).unwrap();
    assert_eq!(report.failures, 6);
    let at_1 = &report.mae_at[0];
    assert_eq!(at_1.failures, 6);
    assert!(at_1.mae.unwrap() < 0.5, "MAE one day ahead {:?}", at_1.mae);
    // Only machines living more than 14 days have a prediction 14 days before failing.
    let long_lived = (201..=206).filter(|&m| life(m) > 14.0).count();
    assert_eq!(report.mae_at[3].failures, long_lived);
    assert!(report.early_warning.share.unwrap() >= 5.0 / 6.0, "{report:?}");
}

#[test]
fn given_only_the_baseline_and_the_longest_window_when_predicting_then_the_prediction_is_the_full_historys() {
    // A scorer reads only these rows of a long run; the features of the last row are the same.
    let mut history = table();
    let mut ends = HashMap::new();
    for m in 1..=8 {
        add_machine(&mut history, m, life(m));
        ends.insert(format!("P1-L01-M{m:03}"), RunEnd::Failed { at: serviced_at(m) + life(m) });
    }
    let options = TrainOptions {
        rul_cap: Some(10.0),
        validation_units: 0,
        calibration_folds: 2,
        interval_min_bin_points: 50,
        time_unit: "days".into(),
        features: FeatureConfig { windows: vec![0.25, 1.0, 3.0], baseline_window: 1.0 },
        booster: BoosterParams { iterations: 20, learning_rate: 0.3, nbins: 32, ..BoosterParams::default() },
        ..TrainOptions::default()
    };
    let (model, _) = train(&TrainingSet::new(history, &ends).unwrap(), &options).unwrap();
    let config = &model.feature_set().config;

    let mut full = table();
    add_machine(&mut full, 301, 12.0);
    let unit = &full.units()[0];
    let first = unit.times()[0];
    let last = unit.last_time().unwrap();
    let mut cut = table();
    cut.start_unit_with(unit.id(), unit.origin()).unwrap();
    let mut kept = 0;
    for r in 0..unit.len() {
        let t = unit.times()[r];
        if t - first < config.baseline_window || t > last - config.longest_window() - 1.0 / 24.0 {
            cut.push_row(unit.id(), t, unit.row(r)).unwrap();
            kept += 1;
        }
    }
    assert!(kept < unit.len() / 2, "the cut leaves most rows out");
    let a = &model.predict(&full).unwrap()[0];
    let b = &model.predict(&cut).unwrap()[0];
    assert_eq!(a.time, b.time);
    assert!((a.predicted_rul - b.predicted_rul).abs() < 1e-9, "{a:?} vs {b:?}");
    assert!((a.lower - b.lower).abs() < 1e-9 && (a.upper - b.upper).abs() < 1e-9);

    // A machine whose last service is unknown: no age, still a prediction.
    let mut unknown = table();
    unknown.start_unit_with("P1-L01-M302", None).unwrap();
    for r in 0..unit.len() {
        unknown.push_row("P1-L01-M302", unit.times()[r], unit.row(r)).unwrap();
    }
    let p = &model.predict(&unknown).unwrap()[0];
    assert!(p.predicted_rul.is_finite() && p.lower <= p.predicted_rul && p.predicted_rul <= p.upper);
    assert_eq!(unknown.units()[0].origin(), None);
    assert!(matches!(unknown.start_unit_with("x", Some(f64::INFINITY)), Err(maintenance::Error::InvalidOption { .. })));
}
