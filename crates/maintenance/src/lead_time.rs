//! How well predictions issued over time anticipated the failures that actually happened.
//!
//! Every unit's timeline is cut into *runs* by its outcomes (failures and maintenance): a
//! prediction issued at `t` belongs to the run that ends at the first outcome at or after
//! `t`. Only runs that end in a failure are scored.
//!
//! * **Error at a lead `L`**: for a failure at `T`, the latest prediction of its run issued
//!   in `[T - L - max_staleness, T - L]`; its error is `|predicted - (T - t)|`. The mean
//!   over failures that have such a prediction is the MAE at `L`.
//! * **Early warning**: a failure at `T` counts as *predicted at least `lead` ahead* when
//!   some prediction of its run, issued at `t` with `T - alert_horizon ≤ t ≤ T - lead`,
//!   raised an alert: the lower bound of its interval (by default; or its point prediction,
//!   [`AlertOn`]) was at most `alert_horizon`. The alert had to be issued while the failure
//!   was at most `alert_horizon` away, so it was true when issued, and at least `lead`
//!   before the failure, so there was time to act. Alerts issued more than `alert_horizon`
//!   before their run's failure are counted as premature, and alerts in runs that end in
//!   maintenance or are still open as without failure, so a model that always alerts
//!   shows up as such.
//!
//! Why the lower bound by default: a planner wants to hear about a machine that *could*
//! plausibly fail within the horizon, not only about one that most likely will — a missed
//! failure costs an unplanned stop, an early alert costs a service a few days early. The
//! point prediction is the middle of the interval, so alerting on it misses about half of
//! the failures that come sooner than predicted. The plant's "due within 7 days" count
//! (`readmodels`) uses the same rule.
//!
//! Times and lengths are in one unit (days for the factory).

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Location};
use crate::model::Prediction;

/// What ended a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutcomeKind {
    Failure,
    Maintenance,
}

/// A failure or a maintenance of a unit at a time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Outcome {
    pub unit: String,
    pub time: f64,
    pub kind: OutcomeKind,
}

/// Which value of a prediction raises an alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertOn {
    /// The point prediction (later alerts: misses failures that come sooner than predicted).
    Predicted,
    /// The lower bound of the interval: the machine could plausibly fail within the horizon
    /// (the default).
    Lower,
}

impl AlertOn {
    /// The value of `p` this rule compares with the alert horizon.
    pub fn value(self, p: &Prediction) -> f64 {
        match self {
            AlertOn::Predicted => p.predicted_rul,
            AlertOn::Lower => p.lower,
        }
    }

    /// The other rule.
    pub fn other(self) -> AlertOn {
        match self {
            AlertOn::Predicted => AlertOn::Lower,
            AlertOn::Lower => AlertOn::Predicted,
        }
    }
}

/// Parameters of the lead-time evaluation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LeadTimeOptions {
    /// Leads before failure at which the error is measured.
    pub leads: Vec<f64>,
    /// How much older than `T - L` the prediction used at lead `L` may be.
    pub max_staleness: f64,
    /// The lead for the early-warning share.
    pub warning_lead: f64,
    /// An alert says "failure within this horizon".
    pub alert_horizon: f64,
    /// Which value raises an alert.
    pub alert_on: AlertOn,
}

impl Default for LeadTimeOptions {
    /// Days: errors at 1, 3, 7 and 14 days, warnings at least 3 days ahead of failure from
    /// predictions whose lower bound is at most 7 days, predictions at most 1 day stale.
    fn default() -> Self {
        LeadTimeOptions {
            leads: vec![1.0, 3.0, 7.0, 14.0],
            max_staleness: 1.0,
            warning_lead: 3.0,
            alert_horizon: 7.0,
            alert_on: AlertOn::Lower,
        }
    }
}

/// The error at one lead.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LeadError {
    pub lead: f64,
    /// Failures that had a prediction at this lead.
    pub failures: usize,
    /// Mean absolute error over them; `None` when there were none.
    pub mae: Option<f64>,
}

/// Early-warning figures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EarlyWarning {
    pub lead: f64,
    pub alert_horizon: f64,
    /// Which value raised the alerts.
    pub alert_on: AlertOn,
    /// Failures predicted at least `lead` ahead.
    pub predicted: usize,
    /// `predicted / failures`; `None` when there were no failures.
    pub share: Option<f64>,
    /// Predictions that raised an alert.
    pub alerts: usize,
    /// Alerts issued more than `alert_horizon` before their run's failure.
    pub premature_alerts: usize,
    /// Alerts in runs that ended in maintenance or had not ended.
    pub alerts_without_failure: usize,
}

/// Lead-time evaluation of predictions against failures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LeadTimeReport {
    /// Failures scored.
    pub failures: usize,
    /// Error per lead, in the order of `LeadTimeOptions::leads`.
    pub mae_at: Vec<LeadError>,
    pub early_warning: EarlyWarning,
}

impl LeadTimeOptions {
    fn validate(&self) -> Result<(), Error> {
        let positive = |v: f64| v.is_finite() && v > 0.0;
        if self.leads.is_empty() || !self.leads.iter().all(|&l| positive(l)) {
            return Err(Error::InvalidOption {
                name: "leads",
                reason: "give at least one positive finite lead".into(),
            });
        }
        if !(self.max_staleness.is_finite() && self.max_staleness >= 0.0) {
            return Err(Error::InvalidOption {
                name: "max_staleness",
                reason: format!("{} is not a finite length ≥ 0", self.max_staleness),
            });
        }
        if !positive(self.warning_lead) || !positive(self.alert_horizon) {
            return Err(Error::InvalidOption {
                name: "warning_lead",
                reason: "the warning lead and the alert horizon must be positive and finite".into(),
            });
        }
        if self.alert_horizon < self.warning_lead {
            return Err(Error::InvalidOption {
                name: "alert_horizon",
                reason: format!(
                    "{} is shorter than the warning lead {}: no alert could count",
                    self.alert_horizon, self.warning_lead
                ),
            });
        }
        Ok(())
    }
}

/// Scores `predictions` against `outcomes` as described in the module documentation.
pub fn lead_time_report(
    predictions: &[Prediction],
    outcomes: &[Outcome],
    options: &LeadTimeOptions,
) -> Result<LeadTimeReport, Error> {
    options.validate()?;
    let mut by_unit: HashMap<&str, (Vec<&Prediction>, Vec<&Outcome>)> = HashMap::new();
    for (i, p) in predictions.iter().enumerate() {
        if !p.time.is_finite() || !p.predicted_rul.is_finite() || !p.lower.is_finite() {
            return Err(Error::NotFinite {
                at: Location::UnitRow(i + 1),
                column: "prediction".into(),
                value: format!("{} at {}", p.predicted_rul, p.time),
            });
        }
        by_unit.entry(p.unit.as_str()).or_default().0.push(p);
    }
    for (i, o) in outcomes.iter().enumerate() {
        if !o.time.is_finite() {
            return Err(Error::NotFinite {
                at: Location::UnitRow(i + 1),
                column: "outcome time".into(),
                value: o.time.to_string(),
            });
        }
        by_unit.entry(o.unit.as_str()).or_default().1.push(o);
    }

    let mut failures = 0usize;
    let mut lead_errors: Vec<Vec<f64>> = vec![Vec::new(); options.leads.len()];
    let mut warned = 0usize;
    let mut alerts = 0usize;
    let mut premature = 0usize;
    let mut without_failure = 0usize;
    let alert_value = |p: &Prediction| options.alert_on.value(p);
    // Units in a fixed order so float sums do not depend on hash order.
    let mut units: Vec<_> = by_unit.into_iter().collect();
    units.sort_by(|a, b| a.0.cmp(b.0));
    for (_, (mut preds, mut outs)) in units {
        preds.sort_by(|a, b| a.time.total_cmp(&b.time));
        outs.sort_by(|a, b| a.time.total_cmp(&b.time));
        let mut next = 0usize;
        let run_ends = outs.iter().map(Some).chain(std::iter::once(None));
        // Walk runs in time order; each takes the predictions issued after the previous
        // run's end and at or before its own end (an open last run takes the rest).
        for end in run_ends {
            let end_time = end.map_or(f64::INFINITY, |o| o.time);
            let start = next;
            while next < preds.len() && preds[next].time <= end_time {
                next += 1;
            }
            let run = &preds[start..next];
            let failure = end.filter(|o| o.kind == OutcomeKind::Failure).map(|o| o.time);
            for p in run.iter().filter(|p| alert_value(p) <= options.alert_horizon) {
                alerts += 1;
                match failure {
                    Some(t) if t - p.time > options.alert_horizon => premature += 1,
                    Some(_) => {}
                    None => without_failure += 1,
                }
            }
            if let Some(t_fail) = failure {
                failures += 1;
                for (k, &lead) in options.leads.iter().enumerate() {
                    let latest = run.iter().rev().find(|p| p.time <= t_fail - lead);
                    if let Some(p) = latest.filter(|p| p.time >= t_fail - lead - options.max_staleness) {
                        lead_errors[k].push((p.predicted_rul - (t_fail - p.time)).abs());
                    }
                }
                let caught = run.iter().any(|p| {
                    p.time <= t_fail - options.warning_lead
                        && p.time >= t_fail - options.alert_horizon
                        && alert_value(p) <= options.alert_horizon
                });
                if caught {
                    warned += 1;
                }
            }
        }
    }
    let mae_at = options
        .leads
        .iter()
        .zip(&lead_errors)
        .map(|(&lead, errors)| LeadError {
            lead,
            failures: errors.len(),
            mae: (!errors.is_empty()).then(|| errors.iter().sum::<f64>() / errors.len() as f64),
        })
        .collect();
    Ok(LeadTimeReport {
        failures,
        mae_at,
        early_warning: EarlyWarning {
            lead: options.warning_lead,
            alert_horizon: options.alert_horizon,
            alert_on: options.alert_on,
            predicted: warned,
            share: (failures > 0).then(|| warned as f64 / failures as f64),
            alerts,
            premature_alerts: premature,
            alerts_without_failure: without_failure,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pred(unit: &str, time: f64, predicted: f64) -> Prediction {
        Prediction {
            unit: unit.into(),
            time,
            predicted_rul: predicted,
            lower: (predicted - 2.0).max(0.0),
            upper: predicted + 2.0,
        }
    }

    fn failure(unit: &str, time: f64) -> Outcome {
        Outcome { unit: unit.into(), time, kind: OutcomeKind::Failure }
    }

    fn maintenance(unit: &str, time: f64) -> Outcome {
        Outcome { unit: unit.into(), time, kind: OutcomeKind::Maintenance }
    }

    /// Daily predictions from day 0 to day `until` that are off by `bias` days.
    fn daily(unit: &str, fail_at: f64, until: f64, bias: f64) -> Vec<Prediction> {
        (0..=until as i64).map(|d| pred(unit, d as f64, (fail_at - d as f64 + bias).max(0.0))).collect()
    }

    /// The default options, alerting on the point prediction.
    fn on_point() -> LeadTimeOptions {
        LeadTimeOptions { alert_on: AlertOn::Predicted, ..LeadTimeOptions::default() }
    }

    #[test]
    fn given_predictions_off_by_two_days_when_scoring_then_mae_is_two_at_every_lead() {
        let predictions = daily("m1", 20.0, 19.0, 2.0);
        let report = lead_time_report(&predictions, &[failure("m1", 20.0)], &on_point()).unwrap();
        assert_eq!(report.failures, 1);
        for e in &report.mae_at {
            assert_eq!(e.failures, 1);
            assert_eq!(e.mae, Some(2.0), "lead {}", e.lead);
        }
        // Predicted RUL 7 + 2 = 9 at day 13 is no alert; day 15 says 7: alert 5 days ahead.
        assert_eq!(report.early_warning.predicted, 1);
        assert_eq!(report.early_warning.share, Some(1.0));
        assert_eq!(report.early_warning.premature_alerts, 0);
    }

    #[test]
    fn given_a_late_alert_when_scoring_then_the_failure_was_not_predicted_ahead() {
        // Says 30 days until day 18, then 1: alert only 2 days ahead.
        let mut predictions: Vec<Prediction> = (0..=17).map(|d| pred("m1", d as f64, 30.0)).collect();
        predictions.push(pred("m1", 18.0, 1.0));
        let report = lead_time_report(&predictions, &[failure("m1", 20.0)], &on_point()).unwrap();
        assert_eq!(report.early_warning.predicted, 0);
        assert_eq!(report.early_warning.share, Some(0.0));
        // At lead 1 the latest prediction is from day 18 (error |1 - 2|).
        assert_eq!(report.mae_at[0].mae, Some(1.0));
        // At lead 3 (day 17): |30 - 3|.
        assert_eq!(report.mae_at[1].mae, Some(27.0));
    }

    #[test]
    fn given_an_always_alarming_model_when_scoring_then_premature_alerts_show_it() {
        let predictions: Vec<Prediction> = (0..=19).map(|d| pred("m1", d as f64, 0.0)).collect();
        for options in [LeadTimeOptions::default(), on_point()] {
            let report = lead_time_report(&predictions, &[failure("m1", 20.0)], &options).unwrap();
            assert_eq!(report.early_warning.predicted, 1);
            assert_eq!(report.early_warning.alerts, 20);
            assert_eq!(report.early_warning.premature_alerts, 13);
        }
    }

    #[test]
    fn given_maintenance_before_failure_when_scoring_then_runs_are_kept_apart() {
        // Run 1 ends in maintenance on day 10 (alerts there are without failure); run 2
        // fails on day 30 and has no prediction within a day of 14 days before.
        let mut predictions = vec![pred("m1", 9.0, 1.0), pred("m1", 10.0, 0.5)];
        predictions.extend((25..=29).map(|d| pred("m1", d as f64, (30 - d) as f64)));
        let outcomes = [maintenance("m1", 10.0), failure("m1", 30.0), failure("m2", 5.0)];
        let report = lead_time_report(&predictions, &outcomes, &on_point()).unwrap();
        assert_eq!(report.failures, 2);
        assert_eq!(report.early_warning.alerts_without_failure, 2);
        assert_eq!(report.mae_at[3].failures, 0);
        assert_eq!(report.mae_at[3].mae, None);
        assert_eq!(report.mae_at[0].failures, 1);
        assert_eq!(report.early_warning.predicted, 1);
        assert_eq!(report.early_warning.share, Some(0.5));
    }

    #[test]
    fn given_the_default_lower_bound_rule_when_scoring_then_alerts_come_earlier() {
        // Predicted 9 at day 14 (6 days ahead): no alert on the point, an alert on the lower
        // bound (7). Then nothing until day 18.
        let predictions = vec![pred("m1", 14.0, 9.0), pred("m1", 18.0, 2.0)];
        let point = lead_time_report(&predictions, &[failure("m1", 20.0)], &on_point()).unwrap();
        assert_eq!(point.early_warning.predicted, 0);
        assert_eq!(point.early_warning.alert_on, AlertOn::Predicted);
        let lower = lead_time_report(&predictions, &[failure("m1", 20.0)], &LeadTimeOptions::default()).unwrap();
        assert_eq!(lower.early_warning.alert_on, AlertOn::Lower);
        assert_eq!(lower.early_warning.predicted, 1);
        assert_eq!(lower.early_warning.alerts, 2);
    }

    #[test]
    fn given_bad_options_when_scoring_then_they_are_refused() {
        let bad = [
            LeadTimeOptions { leads: vec![], ..Default::default() },
            LeadTimeOptions { leads: vec![-1.0], ..Default::default() },
            LeadTimeOptions { max_staleness: f64::NAN, ..Default::default() },
            LeadTimeOptions { alert_horizon: 2.0, ..Default::default() },
        ];
        for options in bad {
            assert!(matches!(lead_time_report(&[], &[], &options), Err(Error::InvalidOption { .. })));
        }
        let nan = [pred("m1", f64::NAN, 1.0)];
        assert!(lead_time_report(&nan, &[], &LeadTimeOptions::default()).is_err());
    }
}
