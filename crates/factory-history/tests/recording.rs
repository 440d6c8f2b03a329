//! A small recorded factory (machines that wear out in days) read, cut into runs, trained
//! on and evaluated; and recordings that cannot be read refused with a reason.
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::path::Path;

use factory_history::{
    Error, FactoryTrainOptions, IssuedPrediction, ReadOptions, RunEndKind, evaluate_factory, evaluate_issued,
    read_history, read_outcomes, train_factory,
};
use layout::{Layout, Scale};
use maintenance::{AlertOn, AlertRule, BoosterParams, LeadTimeOptions, OutcomeKind, SensorHour};
use simulator::{Factory, FaultConfig, SimConfig};

/// 2026-01-01T00:00:00Z.
const START_MS: i64 = 1_767_225_600_000;
const DAY_MS: i64 = 86_400_000;

/// The shipped layout with machines that live days instead of months.
fn short_lived_layout() -> String {
    let mut text = layout::DEFAULT_LAYOUT_TOML.to_owned();
    for (from, to) in [("40", "3"), ("55", "4"), ("70", "5"), ("90", "6"), ("60", "4.5")] {
        text = text.replace(&format!("life_days = {from}\n"), &format!("life_days = {to}\n"));
    }
    text
}

fn scale() -> Scale {
    Scale { plants: Some(1), lines_per_plant: Some(1), sensors_per_plant: Some(150) }
}

fn record(dir: &Path, days: i64, faults: bool) {
    let layout = Layout::from_toml(&short_lived_layout(), &scale()).unwrap();
    let config = SimConfig {
        faults: if faults { FaultConfig::default().scaled(20.0) } else { FaultConfig::none() },
        ..SimConfig::with_step_ms(60_000)
    };
    let mut factory = Factory::new(&layout, &config, 5, START_MS).unwrap();
    simulator::write_run(dir, &mut factory, START_MS + days * DAY_MS).unwrap();
}

fn read_options() -> ReadOptions {
    ReadOptions { layout_toml: Some(short_lived_layout()), plants: vec![] }
}

fn train_options() -> FactoryTrainOptions {
    FactoryTrainOptions {
        read: read_options(),
        seed: 3,
        validation_share: 0.3,
        rul_cap_days: 3.0,
        windows_days: vec![0.25, 1.0],
        baseline_days: 0.25,
        stride_hours: 2,
        calibration_folds: 3,
        created_at_ms: START_MS,
        booster: BoosterParams { iterations: 30, learning_rate: 0.2, min_leaf_weight: 5.0, ..BoosterParams::default() },
        lead: LeadTimeOptions {
            leads: vec![0.25, 0.5, 1.0],
            max_staleness: 0.25,
            warning_lead: 0.25,
            alert: AlertRule::probability(1.0, 0.3, 0.125),
            quiet_horizon: 2.0,
        },
        ..FactoryTrainOptions::default()
    }
}

#[test]
fn given_a_recording_when_reading_then_hours_match_the_readings_and_runs_follow_the_stops() {
    let dir = tempfile::tempdir().unwrap();
    record(dir.path(), 10, true);
    let history = read_history(dir.path(), &read_options()).unwrap();
    assert!(history.machines.len() >= 5);
    assert_eq!(history.end_ms, START_MS + 10 * DAY_MS);
    assert_eq!(history.readings_ignored, 0);
    for m in &history.machines {
        assert_eq!(m.hours.len(), 240, "{} has an hour for every hour", m.id);
        assert!(m.rows.iter().all(|r| r.len() == history.columns.names().len()));
    }

    // One machine-hour recomputed from the raw readings.
    let machine = &history.machines[1];
    let hour = START_MS + 30 * 3_600_000;
    let mut sums: HashMap<u32, (i64, f64, f64, f64)> = HashMap::new();
    for record in simulator::open_readings(dir.path(), "P1").unwrap() {
        for r in record.unwrap().readings().unwrap() {
            if machine.schema.has_sensor(r.sensor) && maintenance::hour_of_ms(r.ts_ms) == hour {
                let e = sums.entry(r.sensor).or_insert((0, f64::INFINITY, f64::NEG_INFINITY, 0.0));
                *e = (e.0 + 1, e.1.min(r.value), e.2.max(r.value), e.3 + r.value);
            }
        }
    }
    let hours: Vec<SensorHour> = sums
        .iter()
        .map(|(&sensor, &(count, min, max, sum))| SensorHour {
            sensor,
            hour_ms: hour,
            count,
            min,
            max,
            mean: sum / count as f64,
        })
        .collect();
    let expected = history.columns.row(&machine.schema, &hours);
    let at = machine.hours.iter().position(|&h| h == hour).unwrap();
    for (a, b) in machine.rows[at].iter().zip(&expected) {
        assert!((a.is_nan() && b.is_nan()) || (a - b).abs() < 1e-9, "{a} vs {b}");
    }

    // Runs: failures and services cut the timeline; rows stay inside their run.
    let runs = history.runs();
    assert!(runs.iter().any(|r| r.end == RunEndKind::Failed), "machines this short-lived fail in 10 days");
    assert!(runs.iter().any(|r| r.end == RunEndKind::Serviced));
    let outcomes = read_outcomes(dir.path()).unwrap();
    let failures = outcomes.iter().filter(|o| o.kind == OutcomeKind::Failure).count();
    // A failure in the recording's first hour leaves its run without a complete hour.
    assert!(runs.iter().filter(|r| r.end == RunEndKind::Failed).count() <= failures);
    for run in &runs {
        let m = &history.machines[run.machine];
        let first = m.hours[run.rows.start];
        let last = m.hours[run.rows.end - 1];
        assert!(!run.origin_known || first >= run.start_ms, "{run:?}");
        assert!(last + 3_600_000 <= run.end_ms, "{run:?}");
        assert!(run.origin_known || run.unit.ends_with("@0"));
    }
}

#[test]
fn given_a_recording_when_training_then_the_model_validates_and_evaluates_on_held_out_machines() {
    let dir = tempfile::tempdir().unwrap();
    record(dir.path(), 12, false);
    let options = train_options();
    let (model, report) = train_factory(dir.path(), &options).unwrap();
    assert_eq!(model.target().time_unit, "days");
    assert_eq!(report.model_version, model.version().unwrap());
    assert!(report.validation_machines >= 1 && report.training_machines > report.validation_machines);
    assert!(report.runs_failed > 0);
    let validation = report.validation.clone().unwrap().every_row.unwrap();
    assert!(validation.rmse < 1.5, "validation RMSE {} days (cap 3)", validation.rmse);
    let evaluation = report.evaluation.clone().unwrap();
    assert_eq!(evaluation.machines, report.validation_machines);
    assert_eq!(evaluation.mae_days_at.keys().cloned().collect::<Vec<_>>(), ["0.25", "0.5", "1"]);
    // The model carries the rule the evaluation scored, and the plant's scorer will apply.
    assert_eq!(model.alert(), Some(&options.lead.alert));
    assert_eq!(evaluation.alert_rule, options.lead.alert);
    assert_eq!(evaluation.trade_off.len(), factory_history::trade_off_rules(1.0).len());
    assert!(evaluation.false_alerts_per_1000_machine_days.is_some());
    let types: usize = evaluation.by_machine_type.values().map(|t| t.machines).sum();
    assert_eq!(types, evaluation.machines);
    // The due rules on the recording: a probability that must hold for hours never alerts
    // more often, on more healthy machines or on more failures than the same probability
    // at once, and a higher threshold never alerts more than a lower one.
    let under = |threshold: f64, hours: f64| {
        let rule = AlertRule::probability(1.0, threshold, hours / 24.0);
        evaluation.trade_off.iter().find(|w| w.rule == rule).unwrap_or_else(|| panic!("{rule:?} in the trade-off"))
    };
    let mut alerted = 0;
    for threshold in [0.1, 0.2, 0.3, 0.4, 0.5] {
        let (at_once, held) = (under(threshold, 0.0), under(threshold, 6.0));
        assert!(held.alerts <= at_once.alerts && held.false_alerts <= at_once.false_alerts, "{held:?} {at_once:?}");
        assert!(held.predicted <= at_once.predicted);
        alerted += at_once.alerts;
    }
    let any_rule: u64 = evaluation.trade_off.iter().map(|w| w.alerts as u64).sum();
    assert!(any_rule > 0, "the model alerts on the recording under some rule of the trade-off");
    eprintln!("alerts at the probability thresholds: {alerted}; under every rule of the trade-off: {any_rule}");
    for pair in [0.1, 0.2, 0.3, 0.4, 0.5].windows(2) {
        assert!(under(pair[1], 0.0).alerts <= under(pair[0], 0.0).alerts);
    }

    // Deterministic for a seed.
    let (again, _) = train_factory(dir.path(), &options).unwrap();
    assert_eq!(again.to_json().unwrap(), model.to_json().unwrap());

    // The same evaluation without a model, and with the model on every machine.
    let without = evaluate_factory(dir.path(), None, &options).unwrap();
    assert_eq!(without.evaluation, evaluation);
    let with = evaluate_factory(dir.path(), Some(&model), &options).unwrap();
    assert_eq!(with.evaluation.machines, report.machines);
    assert_eq!(with.machines_named_in_training, Some(report.training_machines));
}

#[test]
fn given_issued_predictions_when_evaluating_against_the_ground_truth_then_errors_are_measured() {
    let dir = tempfile::tempdir().unwrap();
    record(dir.path(), 8, false);
    let outcomes = read_outcomes(dir.path()).unwrap();
    let start = maintenance::days_of_ms(START_MS);
    let failure = outcomes.iter().find(|o| o.kind == OutcomeKind::Failure && o.time > start + 2.0).unwrap();
    let t_fail = (failure.time * DAY_MS as f64).round() as i64;
    // Hourly predictions over the day before the failure, half a day too optimistic.
    let issued: Vec<IssuedPrediction> = (1..=24)
        .map(|h| {
            let at_ms = t_fail - h * 3_600_000;
            let days = (t_fail - at_ms) as f64 / DAY_MS as f64 + 0.5;
            IssuedPrediction {
                machine: failure.unit.clone(),
                at_ms,
                days,
                lower_days: days - 0.5,
                upper_days: days + 0.5,
                model_version: "rul-test".into(),
                failure_probability: None,
            }
        })
        .collect();
    let lead = LeadTimeOptions {
        leads: vec![0.25, 0.5],
        max_staleness: 0.1,
        warning_lead: 0.25,
        alert: AlertRule::lower_bound(1.0),
        quiet_horizon: 2.0,
    };
    let e = evaluate_issued(&issued, dir.path(), &lead).unwrap();
    assert_eq!((e.machines, e.predictions), (1, 24));
    assert!(e.failures >= 1);
    assert_eq!(e.model_version.as_deref(), Some("rul-test"));
    for mae in e.mae_days_at.values() {
        assert!((mae.unwrap() - 0.5).abs() < 1e-6, "{:?}", e.mae_days_at);
    }
    // The predictions say ≤ 1 day from half a day before the failure on: warned in time.
    // Their lower bounds are the truth: an alert from a day before.
    assert_eq!(e.alert_rule.on, AlertOn::Lower);
    assert_eq!(e.early_warning.predicted, 1);
    // On the lower bound every prediction of the day alerts; none is premature or false.
    assert_eq!((e.early_warning.alerts, e.early_warning.premature_alerts), (24, 0));
    assert_eq!(e.early_warning.false_alerts, 0);
    // On the point prediction, only the last half day.
    let point = e.trade_off.iter().find(|w| w.rule.on == AlertOn::Predicted).unwrap();
    assert_eq!((point.predicted, point.alerts), (1, 12));
    let json = serde_json::to_value(&e).unwrap();
    assert!(json["mae_days_at"]["0.5"].is_number() && json["predicted_3d_ahead_share"].is_number());
}

#[test]
fn given_recordings_that_cannot_be_read_when_reading_then_each_is_refused_with_its_reason() {
    let dir = tempfile::tempdir().unwrap();
    let missing = read_history(&dir.path().join("nothing"), &read_options()).unwrap_err();
    assert_eq!(missing.code(), "recording");

    record(dir.path(), 1, false);
    // A layout without the recording's plant.
    let other =
        ReadOptions { layout_toml: Some(short_lived_layout().replace("number = 1\n", "number = 9\n")), plants: vec![] };
    assert!(matches!(read_history(dir.path(), &other), Err(Error::LayoutMismatch(p)) if p == "P1"));
    let broken = ReadOptions { layout_toml: Some("plants = [".into()), plants: vec![] };
    assert_eq!(read_history(dir.path(), &broken).unwrap_err().code(), "layout");
    let err = read_history(dir.path(), &ReadOptions { plants: vec!["P9".into()], ..read_options() }).unwrap_err();
    assert!(matches!(err, Error::UnknownPlant(p) if p == "P9"));

    // A recording that did not finish.
    let manifest = dir.path().join("manifest.json");
    let text = std::fs::read_to_string(&manifest).unwrap().replace("\"complete\": true", "\"complete\": false");
    std::fs::write(&manifest, text).unwrap();
    assert!(matches!(read_history(dir.path(), &read_options()), Err(Error::Incomplete(_))));
    std::fs::write(&manifest, "{").unwrap();
    assert_eq!(read_history(dir.path(), &read_options()).unwrap_err().code(), "recording");

    // A readings file cut short.
    let dir = tempfile::tempdir().unwrap();
    record(dir.path(), 1, false);
    let file = dir.path().join("readings-P1.bin");
    let bytes = std::fs::read(&file).unwrap();
    std::fs::write(&file, &bytes[..bytes.len() - 3]).unwrap();
    assert_eq!(read_history(dir.path(), &read_options()).unwrap_err().code(), "readings");

    // Options out of range.
    let bad = FactoryTrainOptions { validation_share: 1.0, ..train_options() };
    assert_eq!(train_factory(dir.path(), &bad).unwrap_err().code(), "invalid_option");
}
