//! How well days-until-failure predictions anticipated the failures that happened: MAE in
//! days at 1, 3, 7 and 14 days before each failure, the share of failures alerted at least 3
//! days ahead, false alerts per 1,000 machine-days, the trade-off between the two under
//! several alert rules, and each machine type's track record (`maintenance::track_record`
//! and `maintenance::lead_time_report` define them all).
//!
//! Two sources of predictions: a model scored hour by hour over held-out machines of a
//! recording (the same feature code as the plant's scorer), or predictions a plant
//! actually issued (its `maintenance_predictions` read model), against a recording's
//! ground truth.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::Path;

use maintenance::{
    AlertRule, EarlyWarning, LeadTimeOptions, Model, Outcome, OutcomeKind, Prediction, TrackScope, report_of,
};
use serde::{Deserialize, Serialize};
use simulator::{FactoryEvent, MaintenanceKind};

use crate::error::Error;
use crate::history::{FactoryHistory, read_history};
use crate::train::{FactoryTrainOptions, FactoryTrainReport, train_on_history};

/// The evaluation, as `floorwatch eval maintenance --json` writes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MaintenanceEvaluation {
    pub model_version: Option<String>,
    /// Machines whose predictions were scored, and the predictions.
    pub machines: usize,
    pub predictions: usize,
    /// Failures among those machines.
    pub failures: usize,
    /// Mean absolute error in days of the latest prediction at most a day older than
    /// L days before each failure, keyed by L ("1", "3", "7", "14"); `null` when no failure
    /// had such a prediction.
    pub mae_days_at: BTreeMap<String, Option<f64>>,
    /// Failures that had a prediction at each lead.
    pub failures_at: BTreeMap<String, usize>,
    /// Share of failures with an alert under `alert_rule` issued between the alert horizon
    /// and the warning lead before it.
    pub predicted_3d_ahead_share: Option<f64>,
    /// The same share among the failures watched through their whole alert window (the
    /// machine had predictions from at least 7 days before): a failure in the recording's
    /// first days could not have been warned of.
    pub watched_failures: usize,
    pub predicted_3d_ahead_share_watched: Option<f64>,
    /// The rule that decides "due" (the model's, as the plant's scorer applies it).
    pub alert_rule: AlertRule,
    /// The figures behind the share: alerts raised, premature ones, those in runs that
    /// ended without a failure, and false alerts (no failure within 14 days) per 1,000
    /// machine-days, so "always alert" would show.
    pub early_warning: EarlyWarning,
    /// An alert is false when the machine does not fail within this many days of it.
    pub quiet_days: f64,
    /// Alerting hourly predictions on machines that did not fail within `quiet_days`, per
    /// 1,000 machine-days judged (`early_warning.false_alert_time_per_1000` in hours).
    pub false_alerts_per_1000_machine_days: Option<f64>,
    /// The same figures under other rules: the trade-off between failures caught in time
    /// and false alerts.
    pub trade_off: Vec<EarlyWarning>,
    /// Interval coverage of the predictions issued in the 14 days before each failure (the
    /// truth is known there), and their mean absolute error in days.
    pub coverage_before_failures: Option<f64>,
    pub mae_days_before_failures: Option<f64>,
    /// The track record of each machine type, under `alert_rule`.
    pub by_machine_type: BTreeMap<String, TypeRecord>,
}

/// How one machine type's predictions turned out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TypeRecord {
    pub machines: usize,
    pub failures: u64,
    pub caught_share: Option<f64>,
    pub watched_failures: u64,
    pub caught_watched_share: Option<f64>,
    pub coverage_before_failures: Option<f64>,
    pub mae_days_before_failures: Option<f64>,
    pub false_alerts_per_1000_machine_days: Option<f64>,
}

/// Hours in a day: the factory's predictions are hourly and its time unit is the day.
const HOURS: f64 = 24.0;

/// The rules `floorwatch eval maintenance` compares with the chosen one: the interval's
/// lower bound and the point prediction at once, and the probability of failing within
/// the horizon at a few thresholds, at once and held for 6 or 12 hours.
pub fn trade_off_rules(horizon: f64) -> Vec<AlertRule> {
    let mut rules = vec![AlertRule::lower_bound(horizon), AlertRule::point(horizon)];
    for persist_hours in [0.0, 6.0, 12.0] {
        for threshold in [0.1, 0.2, 0.3, 0.4, 0.5] {
            rules.push(AlertRule::probability(horizon, threshold, persist_hours / HOURS));
        }
    }
    rules
}

/// Scores `model` at every hour of the given machines' runs and evaluates the predictions
/// against their failures.
pub fn evaluate_model(
    model: &Model,
    history: &FactoryHistory,
    machines: &[usize],
    lead: &LeadTimeOptions,
) -> Result<MaintenanceEvaluation, Error> {
    let wanted: HashSet<usize> = machines.iter().copied().collect();
    let runs: Vec<_> = history.runs().into_iter().filter(|r| wanted.contains(&r.machine)).collect();
    let machine_of: BTreeMap<String, String> =
        runs.iter().map(|r| (r.unit.clone(), history.machines[r.machine].id.clone())).collect();
    let (table, _) = history.table(&runs)?;
    let mut predictions = if table.units().is_empty() { Vec::new() } else { model.predict_every_row(&table)? };
    for p in &mut predictions {
        if let Some(machine) = machine_of.get(&p.unit) {
            p.unit = machine.clone();
        }
    }
    let outcomes = history.outcomes(machines);
    let types: BTreeMap<String, String> = machines
        .iter()
        .map(|&m| (history.machines[m].id.clone(), history.machines[m].schema.machine_type().to_string()))
        .collect();
    let version = model.version()?;
    evaluate(Some(version.clone()), wanted.len(), &predictions, &outcomes, &types, |_| version.clone(), lead)
}

fn evaluate(
    model_version: Option<String>,
    machines: usize,
    predictions: &[Prediction],
    outcomes: &[Outcome],
    types: &BTreeMap<String, String>,
    version_of: impl Fn(usize) -> String + Copy,
    lead: &LeadTimeOptions,
) -> Result<MaintenanceEvaluation, Error> {
    let type_of = |unit: &str| types.get(unit).cloned().unwrap_or_default();
    let record = maintenance::track_predictions(predictions, outcomes, type_of, version_of, lead)?;
    let all = record.total(&TrackScope::All);
    let chosen = report_of(&all, lead);
    let mut trade_off = Vec::new();
    for rule in trade_off_rules(lead.alert.horizon) {
        let options = LeadTimeOptions { alert: rule, ..lead.clone() };
        trade_off.push(maintenance::lead_time_report(predictions, outcomes, &options)?.early_warning);
    }
    let mut by_machine_type = BTreeMap::new();
    for machine_type in types.values().collect::<BTreeSet<_>>() {
        let f = record.total(&TrackScope::Group(machine_type.clone()));
        by_machine_type.insert(
            machine_type.clone(),
            TypeRecord {
                machines: types.values().filter(|t| *t == machine_type).count(),
                failures: f.failures,
                caught_share: f.caught_share(),
                watched_failures: f.watched,
                caught_watched_share: f.caught_watched_share(),
                coverage_before_failures: f.coverage(),
                mae_days_before_failures: f.mae(),
                false_alerts_per_1000_machine_days: f.false_alert_time_per_1000().map(|d| d * HOURS),
            },
        );
    }
    let key = |lead: f64| if lead.fract() == 0.0 { format!("{lead:.0}") } else { lead.to_string() };
    Ok(MaintenanceEvaluation {
        model_version,
        machines,
        predictions: predictions.len(),
        failures: chosen.failures,
        mae_days_at: chosen.mae_at.iter().map(|e| (key(e.lead), e.mae)).collect(),
        failures_at: chosen.mae_at.iter().map(|e| (key(e.lead), e.failures)).collect(),
        predicted_3d_ahead_share: chosen.early_warning.share,
        watched_failures: chosen.early_warning.watched_failures,
        predicted_3d_ahead_share_watched: chosen.early_warning.watched_share,
        alert_rule: lead.alert,
        quiet_days: lead.quiet_horizon,
        false_alerts_per_1000_machine_days: chosen.early_warning.false_alert_time_per_1000.map(|d| d * HOURS),
        early_warning: chosen.early_warning,
        trade_off,
        coverage_before_failures: all.coverage(),
        mae_days_before_failures: all.mae(),
        by_machine_type,
    })
}

/// A prediction a plant issued (a `MaintenancePredicted` event).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IssuedPrediction {
    pub machine: String,
    pub at_ms: i64,
    pub days: f64,
    pub lower_days: f64,
    pub upper_days: f64,
    pub model_version: String,
    /// The probability of failing within the alert horizon, when the model gave one.
    #[serde(default)]
    pub failure_probability: Option<f64>,
}

/// Evaluates predictions a plant issued against a recording's ground truth (failures and
/// preventive services of the machines that have predictions).
pub fn evaluate_issued(
    predictions: &[IssuedPrediction],
    ground_truth_dir: &Path,
    lead: &LeadTimeOptions,
) -> Result<MaintenanceEvaluation, Error> {
    let machines: HashSet<&str> = predictions.iter().map(|p| p.machine.as_str()).collect();
    let outcomes: Vec<Outcome> =
        read_outcomes(ground_truth_dir)?.into_iter().filter(|o| machines.contains(o.unit.as_str())).collect();
    let converted: Vec<Prediction> = predictions
        .iter()
        .map(|p| Prediction {
            unit: p.machine.clone(),
            time: maintenance::days_of_ms(p.at_ms),
            predicted_rul: p.days,
            lower: p.lower_days,
            upper: p.upper_days,
            failure_probability: p.failure_probability,
        })
        .collect();
    let versions: BTreeSet<&str> = predictions.iter().map(|p| p.model_version.as_str()).collect();
    let version = (versions.len() == 1).then(|| versions.iter().map(|v| (*v).to_string()).collect());
    let types = BTreeMap::new();
    evaluate(version, machines.len(), &converted, &outcomes, &types, |i| predictions[i].model_version.clone(), lead)
}

/// Every failure and preventive service in a recording's ground truth (unit = machine id,
/// time in days).
pub fn read_outcomes(dir: &Path) -> Result<Vec<Outcome>, Error> {
    let mut out = Vec::new();
    for event in simulator::open_ground_truth(dir)? {
        match event.map_err(|e| Error::GroundTruth(e.to_string()))? {
            FactoryEvent::MachineFailed { machine, ts_ms, .. } => {
                out.push(Outcome { unit: machine, time: maintenance::days_of_ms(ts_ms), kind: OutcomeKind::Failure });
            }
            FactoryEvent::MaintenanceStarted { machine, ts_ms, kind: MaintenanceKind::Preventive, .. } => {
                out.push(Outcome {
                    unit: machine,
                    time: maintenance::days_of_ms(ts_ms),
                    kind: OutcomeKind::Maintenance,
                });
            }
            _ => {}
        }
    }
    Ok(out)
}

/// What `floorwatch eval maintenance --from DIR` produces.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FactoryEvaluation {
    pub evaluation: MaintenanceEvaluation,
    /// When no model was given: the model trained on the other machines.
    pub training: Option<FactoryTrainReport>,
    /// When a model was given: how many machines of the recording have ids the model was
    /// trained on. Ids repeat across recordings of one layout; on the recording the model
    /// was trained on, the figures are not out-of-sample.
    pub machines_named_in_training: Option<usize>,
}

/// Evaluates on a recording. With a model, every machine is scored hour by hour (give it
/// a recording it was not trained on, e.g. another seed); without one, a model is trained on the machines not
/// held out (`options.validation_share`) and the held-out machines are scored.
pub fn evaluate_factory(
    dir: &Path,
    model: Option<&Model>,
    options: &FactoryTrainOptions,
) -> Result<FactoryEvaluation, Error> {
    let history = read_history(dir, &options.read)?;
    match model {
        Some(model) => {
            let seen: HashSet<&str> = model
                .training()
                .training_units
                .iter()
                .map(|u| u.rsplit_once('@').map_or(u.as_str(), |(machine, _)| machine))
                .collect();
            let machines: Vec<usize> = (0..history.machines.len()).collect();
            let named_in_training = history.machines.iter().filter(|m| seen.contains(m.id.as_str())).count();
            Ok(FactoryEvaluation {
                evaluation: evaluate_model(model, &history, &machines, &options.lead)?,
                training: None,
                machines_named_in_training: Some(named_in_training),
            })
        }
        None => {
            if options.validation_share <= 0.0 {
                return Err(Error::InvalidOption {
                    name: "validation_share",
                    reason: "without a model, some machines must be held out to evaluate on".into(),
                });
            }
            let (_, report) = train_on_history(&history, options)?;
            let evaluation =
                report.evaluation.clone().ok_or_else(|| Error::TooFewMachines("no machine was held out".into()))?;
            Ok(FactoryEvaluation { evaluation, training: Some(report), machines_named_in_training: None })
        }
    }
}
