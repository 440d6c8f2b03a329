//! How well days-until-failure predictions anticipated the failures that happened: MAE in
//! days at 1, 3, 7 and 14 days before each failure, and the share of failures predicted at
//! least 3 days ahead (`maintenance::lead_time_report` explains both).
//!
//! Two sources of predictions: a model scored hour by hour over held-out machines of a
//! recording (the same feature code as the plant's scorer), or predictions a plant
//! actually issued (its `maintenance_predictions` read model), against a recording's
//! ground truth.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;

use maintenance::{AlertOn, EarlyWarning, LeadTimeOptions, LeadTimeReport, Model, Outcome, OutcomeKind, Prediction};
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
    /// Share of failures with an alert (a prediction whose value under `alert_on` — by
    /// default the interval's lower bound — is at most the alert horizon) issued between
    /// the alert horizon and the warning lead before it.
    pub predicted_3d_ahead_share: Option<f64>,
    pub alert_on: AlertOn,
    /// The figures behind the share, with the alerts raised, the premature ones and those
    /// in runs that ended without a failure (so "always alert" would show).
    pub early_warning: EarlyWarning,
    /// The same figures under the other rule, for comparison.
    pub other_rule_warning: EarlyWarning,
}

impl MaintenanceEvaluation {
    /// `chosen` is the report under the configured rule, `other` under the other one; the
    /// errors at each lead do not depend on the rule.
    fn from_reports(
        model_version: Option<String>,
        machines: usize,
        predictions: usize,
        chosen: LeadTimeReport,
        other: LeadTimeReport,
    ) -> Self {
        let key = |lead: f64| if lead.fract() == 0.0 { format!("{lead:.0}") } else { lead.to_string() };
        MaintenanceEvaluation {
            model_version,
            machines,
            predictions,
            failures: chosen.failures,
            mae_days_at: chosen.mae_at.iter().map(|e| (key(e.lead), e.mae)).collect(),
            failures_at: chosen.mae_at.iter().map(|e| (key(e.lead), e.failures)).collect(),
            predicted_3d_ahead_share: chosen.early_warning.share,
            alert_on: chosen.early_warning.alert_on,
            early_warning: chosen.early_warning,
            other_rule_warning: other.early_warning,
        }
    }
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
    evaluate(Some(model.version()?), wanted.len(), &predictions, &outcomes, lead)
}

fn evaluate(
    model_version: Option<String>,
    machines: usize,
    predictions: &[Prediction],
    outcomes: &[Outcome],
    lead: &LeadTimeOptions,
) -> Result<MaintenanceEvaluation, Error> {
    let chosen = maintenance::lead_time_report(predictions, outcomes, lead)?;
    let other = maintenance::lead_time_report(
        predictions,
        outcomes,
        &LeadTimeOptions { alert_on: lead.alert_on.other(), ..lead.clone() },
    )?;
    Ok(MaintenanceEvaluation::from_reports(model_version, machines, predictions.len(), chosen, other))
}

/// A prediction a plant issued (a `maintenance_predictions` row).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IssuedPrediction {
    pub machine: String,
    pub at_ms: i64,
    pub days: f64,
    pub lower_days: f64,
    pub upper_days: f64,
    pub model_version: String,
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
        })
        .collect();
    let versions: std::collections::BTreeSet<&str> = predictions.iter().map(|p| p.model_version.as_str()).collect();
    let version = (versions.len() == 1).then(|| versions.iter().map(|v| (*v).to_string()).collect());
    evaluate(version, machines.len(), &converted, &outcomes, lead)
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
