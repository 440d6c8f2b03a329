//! The work of `floorwatch train --factory DIR --model FILE` and `floorwatch eval
//! maintenance --from DIR [--model FILE] [--json FILE]`, so the commands are a few lines.

use std::path::Path;

use maintenance::{AlertRule, Model};

use crate::error::Error;
use crate::evaluate::{FactoryEvaluation, evaluate_factory};
use crate::train::{FactoryTrainOptions, FactoryTrainReport, train_factory};

/// Trains on a recording and writes the model file; returns the model (to register) and
/// the report.
pub fn train_to_file(
    dir: &Path,
    model_path: &Path,
    options: &FactoryTrainOptions,
) -> Result<(Model, FactoryTrainReport), Error> {
    let (model, report) = train_factory(dir, options)?;
    let json = model.to_json()?;
    std::fs::write(model_path, json).map_err(|source| Error::Write { path: model_path.to_path_buf(), source })?;
    Ok((model, report))
}

/// Evaluates on a recording, with the model in `model_path` if given (else one trained on
/// the recording's other machines), and writes the evaluation as JSON to `json_path` if
/// given. The "due" rule scored is `rule` if given, else the model's own (a model from
/// before models carried one: the interval's lower bound), else the options'.
pub fn eval_maintenance(
    dir: &Path,
    model_path: Option<&Path>,
    json_path: Option<&Path>,
    rule: Option<AlertRule>,
    options: &FactoryTrainOptions,
) -> Result<FactoryEvaluation, Error> {
    let model = match model_path {
        Some(path) => {
            let text =
                std::fs::read_to_string(path).map_err(|source| Error::Read { path: path.to_path_buf(), source })?;
            Some(Model::from_json(&text)?)
        }
        None => None,
    };
    let mut options = options.clone();
    let horizon = options.lead.alert.horizon;
    options.lead.alert = match (rule, &model) {
        (Some(rule), _) => rule,
        (None, Some(m)) => m.alert().copied().unwrap_or(AlertRule::lower_bound(horizon)),
        (None, None) => options.lead.alert,
    };
    let result = evaluate_factory(dir, model.as_ref(), &options)?;
    if let Some(path) = json_path {
        let text = serde_json::to_string_pretty(&result.evaluation).map_err(|e| Error::Json(e.to_string()))?;
        std::fs::write(path, text).map_err(|source| Error::Write { path: path.to_path_buf(), source })?;
    }
    Ok(result)
}

/// One line per figure, for people.
pub fn summary(evaluation: &crate::MaintenanceEvaluation) -> String {
    let mut text = format!(
        "{} failures on {} machines, {} predictions ({})\n",
        evaluation.failures,
        evaluation.machines,
        evaluation.predictions,
        evaluation.model_version.as_deref().unwrap_or("several models")
    );
    let mut leads: Vec<(&String, &Option<f64>)> = evaluation.mae_days_at.iter().collect();
    leads.sort_by(|a, b| a.0.parse::<f64>().unwrap_or(f64::MAX).total_cmp(&b.0.parse::<f64>().unwrap_or(f64::MAX)));
    for (lead, mae) in leads {
        let n = evaluation.failures_at.get(lead).copied().unwrap_or(0);
        match mae {
            Some(mae) => text.push_str(&format!("MAE {lead:>2} days before failure: {mae:.2} days ({n} failures)\n")),
            None => text.push_str(&format!("MAE {lead:>2} days before failure: no prediction\n")),
        }
    }
    let share = |s: Option<f64>| s.map_or("n/a".to_string(), |s| format!("{:.1} %", 100.0 * s));
    let number = |v: Option<f64>, digits: usize| v.map_or("n/a".to_string(), |v| format!("{v:.digits$}"));
    // Alerts as a share of predictions, so a rule that always alerts shows at a glance.
    let of_predictions = |n: usize| {
        if evaluation.predictions == 0 {
            String::new()
        } else {
            format!(" ({:.1} % of predictions)", 100.0 * n as f64 / evaluation.predictions as f64)
        }
    };
    let w = &evaluation.early_warning;
    text.push_str(&format!(
        "due when {}: failures alerted ≥ {} days ahead: {} ({} of the {} watched for the week before them); {} alerts{}, {} premature (> {} days before the failure), {} in runs without a failure\n",
        rule_in_hours(&w.rule),
        w.lead,
        share(w.share),
        share(w.watched_share),
        w.watched_failures,
        w.alerts,
        of_predictions(w.alerts),
        w.premature_alerts,
        w.rule.horizon,
        w.alerts_without_failure
    ));
    text.push_str(&format!(
        "alerts on machines that did not fail within {} days: {} hourly alerts per 1,000 machine-days; {} times a machine became falsely due\n",
        evaluation.quiet_days,
        number(evaluation.false_alerts_per_1000_machine_days, 0),
        number(w.false_alert_onsets_per_1000, 1)
    ));
    text.push_str(&format!(
        "intervals in the {} days before failures: coverage {}, MAE {} days\n",
        evaluation.quiet_days,
        number(evaluation.coverage_before_failures, 3),
        number(evaluation.mae_days_before_failures, 2)
    ));
    text.push_str("trade-off (rule: failures alerted ≥ 3 days ahead, all | watched | false hourly alerts per 1,000 machine-days | false onsets per 1,000 machine-days | alerts):\n");
    for t in &evaluation.trade_off {
        let marker = if t.rule == evaluation.alert_rule { "*" } else { " " };
        text.push_str(&format!(
            "{marker} {:<46} {:>7} | {:>7} | {:>6} | {:>6} | {:>6}\n",
            rule_in_hours(&t.rule),
            share(t.share),
            share(t.watched_share),
            number(t.false_alert_time_per_1000.map(|d| d * 24.0), 0),
            number(t.false_alert_onsets_per_1000, 1),
            t.alerts
        ));
    }
    if !evaluation.by_machine_type.is_empty() {
        text.push_str("by machine type (machines, failures, alerted ≥ 3 days ahead: all, watched; coverage before failures, MAE, false hourly alerts per 1,000 machine-days):\n");
        for (machine_type, r) in &evaluation.by_machine_type {
            text.push_str(&format!(
                "  {machine_type:<12} {:>4} {:>4} {:>7} {:>7} {:>6} {:>6} {:>6}\n",
                r.machines,
                r.failures,
                share(r.caught_share),
                share(r.caught_watched_share),
                number(r.coverage_before_failures, 3),
                number(r.mae_days_before_failures, 2),
                number(r.false_alerts_per_1000_machine_days, 0)
            ));
        }
    }
    text
}

/// A rule for people, its persistence in hours (the factory's time unit is the day).
fn rule_in_hours(rule: &AlertRule) -> String {
    let at_once = AlertRule { persist: 0.0, ..*rule }.describe();
    if rule.persist > 0.0 { format!("{at_once}, held for {:.0} h", rule.persist * 24.0) } else { at_once }
}
