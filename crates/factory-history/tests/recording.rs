//! A small recorded factory (machines that wear out in days) read, cut into runs, trained
//! on and evaluated; its due rule alerting a failing machine ahead of its failure and
//! leaving healthy ones alone; and recordings that cannot be read refused with a reason.
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
/// The due rule's horizon on machines that live 3–6 days: "due within 2 days".
const HORIZON: f64 = 2.0;

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
            alert: AlertRule::probability(HORIZON, 0.3, 0.125),
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
    assert_eq!(evaluation.trade_off.len(), factory_history::trade_off_rules(HORIZON).len());
    assert!(evaluation.false_alerts_per_1000_machine_days.is_some());
    let types: usize = evaluation.by_machine_type.values().map(|t| t.machines).sum();
    assert_eq!(types, evaluation.machines);
    // The model's own rule on the held-out machines: every held-out failure is alerted
    // at least the warning lead ahead, with fewer false alerts than the interval's lower
    // bound raises.
    let own = &evaluation.early_warning;
    assert!(evaluation.failures >= 1, "held-out machines fail in 12 days");
    assert_eq!(own.rule, options.lead.alert);
    assert_eq!(own.predicted, evaluation.failures, "{own:?}");
    let lower = evaluation.trade_off.iter().find(|w| w.rule == AlertRule::lower_bound(HORIZON)).unwrap();
    assert!(own.false_alerts < lower.false_alerts, "{own:?} against {lower:?}");
    // The due rules on the recording: a probability that must hold for hours never alerts
    // more often, on more healthy machines or on more failures than the same probability
    // at once, and a higher threshold never alerts more than a lower one. Each of these
    // rules alerts here, and holding and raising the threshold each remove some alerts.
    let under = |threshold: f64, hours: f64| {
        let rule = AlertRule::probability(HORIZON, threshold, hours / 24.0);
        evaluation.trade_off.iter().find(|w| w.rule == rule).unwrap_or_else(|| panic!("{rule:?} in the trade-off"))
    };
    for threshold in [0.1, 0.2, 0.3] {
        let (at_once, held) = (under(threshold, 0.0), under(threshold, 6.0));
        assert!(held.alerts > 0 && held.predicted > 0, "{held:?}");
        assert!(held.alerts < at_once.alerts && held.false_alerts <= at_once.false_alerts, "{held:?} {at_once:?}");
        assert!(held.predicted <= at_once.predicted);
    }
    for pair in [0.1, 0.2, 0.3, 0.4, 0.5].windows(2) {
        assert!(under(pair[1], 0.0).alerts <= under(pair[0], 0.0).alerts);
    }
    assert!(under(0.3, 0.0).alerts < under(0.1, 0.0).alerts);

    // A machine just back from service is healthy: in the first half day of every run
    // that began with a completed service, the model's rule raises no alert.
    let history = read_history(dir.path(), &read_options()).unwrap();
    let held = factory_history::held_out_machines(&history, options.validation_share, options.seed);
    let fresh: Vec<_> = history.runs().into_iter().filter(|r| held.contains(&r.machine) && r.origin_known).collect();
    assert!(!fresh.is_empty(), "held-out machines come back from service");
    let (table, _) = history.table(&fresh).unwrap();
    let predictions = model.predict_every_row(&table).unwrap();
    let rule = model.alert().unwrap();
    let mut judged = 0;
    for run in &fresh {
        let start = maintenance::days_of_ms(run.start_ms);
        let in_run: Vec<&maintenance::Prediction> = predictions.iter().filter(|p| p.unit == run.unit).collect();
        for (p, alert) in in_run.iter().zip(rule.states(&in_run)) {
            if p.time <= start + 0.5 {
                judged += 1;
                assert!(!alert, "{} in alert {:.2} days after its service: {p:?}", run.unit, p.time - start);
            }
        }
    }
    assert!(judged > 0);

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

/// Hourly predictions a plant could have issued for `machine` over `[from, to)` (days),
/// with the probability of failing within the horizon given by `probability(t)`.
fn issued(machine: &str, from: f64, to: f64, probability: impl Fn(f64) -> f64) -> Vec<IssuedPrediction> {
    (0..)
        .map(|h| from + f64::from(h) / 24.0)
        .take_while(|&at| at < to)
        .map(|at| {
            let p = probability(at);
            // The point prediction says the same as the probability (high: soon).
            let days = if p >= 0.5 { 0.5 } else { 3.0 };
            IssuedPrediction {
                machine: machine.into(),
                at_ms: (at * DAY_MS as f64).round() as i64,
                days,
                lower_days: days * 0.5,
                upper_days: days * 2.0,
                model_version: "rul-fixture".into(),
                failure_probability: Some(p),
            }
        })
        .collect()
}

#[test]
fn given_a_recorded_factory_when_the_due_rule_judges_predictions_then_the_failing_machine_is_alerted_ahead_and_the_healthy_one_never()
 {
    let dir = tempfile::tempdir().unwrap();
    record(dir.path(), 10, false);
    let outcomes = read_outcomes(dir.path()).unwrap();
    let start = maintenance::days_of_ms(START_MS);
    let failures = |machine: &str| -> Vec<f64> {
        outcomes.iter().filter(|o| o.unit == machine && o.kind == OutcomeKind::Failure).map(|o| o.time).collect()
    };
    // A machine that fails with three days of the recording before it.
    let failure = outcomes.iter().find(|o| o.kind == OutcomeKind::Failure && o.time > start + 3.0).unwrap();
    let (failing, t_fail) = (failure.unit.clone(), failure.time);
    // A machine that does not fail in the recording's first six days (its services are no
    // failures), judged over days 1–4 against a quiet horizon of 2 days.
    let history = read_history(dir.path(), &read_options()).unwrap();
    let healthy = history
        .machines
        .iter()
        .map(|m| m.id.clone())
        .find(|m| *m != failing && failures(m).iter().all(|&t| t > start + 6.0))
        .expect("a machine of the recording runs six days without failing");

    // The failing machine: its chance of failing within the horizon (2 days) climbs to 0.8
    // a day and a half before the failure, after a one-hour blip to 0.9 two and a half
    // days before it.
    let mut predictions = issued(&failing, start + 0.5, t_fail, |t| {
        if t >= t_fail - 1.5 {
            0.8
        } else if (t - (t_fail - 2.5)).abs() < 0.5 / 24.0 {
            0.9
        } else {
            0.05
        }
    });
    // The healthy machine: low, with one-hour and two-hour blips a held rule must ride out.
    let blip = |t: f64, at: f64, hours: f64| t >= start + at && t < start + at + hours / 24.0 - 1e-9;
    predictions.extend(issued(&healthy, start + 1.0, start + 6.0, |t| {
        if blip(t, 1.5, 1.0) || blip(t, 2.5, 2.0) { 0.9 } else { 0.05 }
    }));

    let lead = |alert: AlertRule| LeadTimeOptions {
        leads: vec![0.25, 0.5],
        max_staleness: 0.1,
        warning_lead: 0.25,
        alert,
        quiet_horizon: 2.0,
    };
    // Due when the probability has been at least 0.3 for 3 hours.
    let rule = AlertRule::probability(HORIZON, 0.3, 0.125);
    let e = evaluate_issued(&predictions, dir.path(), &lead(rule)).unwrap();
    assert_eq!(e.machines, 2);
    // Every failure of the two machines counts; only the one predicted on can be caught.
    assert_eq!(e.failures, failures(&failing).len() + failures(&healthy).len());
    let w = &e.early_warning;
    // Alerted from 1.5 days - 3 hours before the failure until it: caught in time, and
    // none of its alerts false or premature.
    assert_eq!(w.predicted, 1, "{w:?}");
    assert_eq!(w.alerts, 36 - 3 + 1, "{w:?}");
    assert_eq!((w.premature_alerts, w.false_alerts, w.alerts_without_failure), (0, 0, 0), "{w:?}");
    assert_eq!(e.false_alerts_per_1000_machine_days, Some(0.0));

    // At once, the same probability alerts the healthy machine for its blips (three hours)
    // and the failing one prematurely (a false alert too: no failure within 2 days).
    let at_once = evaluate_issued(&predictions, dir.path(), &lead(AlertRule::probability(HORIZON, 0.3, 0.0))).unwrap();
    let w = &at_once.early_warning;
    assert_eq!(w.predicted, 1);
    assert_eq!(w.false_alerts, 4, "{w:?}");
    assert_eq!(w.premature_alerts, 1, "{w:?}");
    // A threshold above what the failing machine reaches misses it; the interval's lower
    // bound (half the point prediction: within the horizon at every hour) keeps the
    // healthy machine in alert all along.
    let too_high =
        evaluate_issued(&predictions, dir.path(), &lead(AlertRule::probability(HORIZON, 0.85, 0.125))).unwrap();
    assert_eq!((too_high.early_warning.predicted, too_high.early_warning.alerts), (0, 0));
    let bound = evaluate_issued(&predictions, dir.path(), &lead(AlertRule::lower_bound(HORIZON))).unwrap();
    assert!(bound.early_warning.false_alerts >= 24, "{:?}", bound.early_warning);
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
