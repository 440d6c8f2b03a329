//! How well predictions issued over time anticipated the failures that actually happened.
//!
//! Every unit's timeline is cut into *runs* by its outcomes (failures and maintenance): a
//! prediction issued at `t` belongs to the run that ends at the first outcome at or after
//! `t`. Only runs that end in a failure are scored for error and warning.
//!
//! * **Error at a lead `L`**: for a failure at `T`, the latest prediction of its run issued
//!   in `[T - L - max_staleness, T - L]`; its error is `|predicted - (T - t)|`. The mean
//!   over failures that have such a prediction is the MAE at `L`.
//! * **Early warning**: a failure at `T` counts as *predicted at least `lead` ahead* when
//!   the unit was in alert (by the [`AlertRule`], persistence included) at some prediction
//!   of its run issued at `t` with `T - horizon ≤ t ≤ T - lead`: the alert was true when
//!   issued, and left time to act. Alerts issued more than the horizon before their run's
//!   failure are counted as premature, and alerts in runs that end in maintenance or are
//!   still open as without failure, so a model that always alerts shows up as such.
//! * **False alerts**: an alert at `t` on a unit with no failure in `(t, t + quiet_horizon]`
//!   (14 days by default: a service in between counts as no failure). Alerts too close to
//!   the end of the unit's observation to tell are left out, with the time they cover. The
//!   figure is the machine-time spent falsely flagged per 1,000 machine-time units judged
//!   (each prediction stands for the time until the unit's next one, at most
//!   `max_staleness`), so it does not depend on how often predictions are issued; and the
//!   number of times a unit *became* falsely flagged (alert onsets: a crew sent out) per
//!   1,000.
//!
//! The plant's "due within 7 days" is the same [`AlertRule`] (`maintenance::AlertRule`,
//! recorded in the model and applied by the scorer). Times and lengths are in one unit
//! (days for the factory).

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::alert::AlertRule;
use crate::error::{Error, Location};
use crate::model::Prediction;
use crate::track_record::{TrackFigures, TrackOptions, TrackRecord, TrackScope, TrackedPrediction};

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

/// Parameters of the lead-time evaluation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LeadTimeOptions {
    /// Leads before failure at which the error is measured.
    pub leads: Vec<f64>,
    /// How much older than `T - L` the prediction used at lead `L` may be; also the most
    /// time one prediction stands for in the false-alert figures.
    pub max_staleness: f64,
    /// The lead for the early-warning share.
    pub warning_lead: f64,
    /// When a prediction is an alert.
    pub alert: AlertRule,
    /// An alert on a unit that does not fail within this long after it is false.
    pub quiet_horizon: f64,
}

impl Default for LeadTimeOptions {
    /// Days: errors at 1, 3, 7 and 14 days, warnings at least 3 days ahead of failure under
    /// the factory's alert rule, alerts false when no failure follows within 14 days,
    /// predictions at most 1 day stale.
    fn default() -> Self {
        LeadTimeOptions {
            leads: vec![1.0, 3.0, 7.0, 14.0],
            max_staleness: 1.0,
            warning_lead: 3.0,
            alert: AlertRule::factory_default(),
            quiet_horizon: 14.0,
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

/// Early-warning and false-alert figures under one alert rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EarlyWarning {
    pub lead: f64,
    pub rule: AlertRule,
    /// Failures predicted at least `lead` ahead.
    pub predicted: usize,
    /// `predicted / failures`; `None` when there were no failures.
    pub share: Option<f64>,
    /// Failures watched through their whole alert window (predictions from at least the
    /// horizon before them), and the share of them predicted at least `lead` ahead.
    pub watched_failures: usize,
    pub watched_share: Option<f64>,
    /// Judged predictions in alert.
    pub alerts: usize,
    /// Alerts issued more than the horizon before their run's failure.
    pub premature_alerts: usize,
    /// Alerts in runs that ended in maintenance or had not ended.
    pub alerts_without_failure: usize,
    /// Alerts on units that did not fail within the quiet horizon.
    pub false_alerts: usize,
    /// Machine-time judged: predictions whose quiet horizon passed, or a failure came.
    pub judged_time: f64,
    /// Machine-time spent in a false alert per 1,000 units of judged machine-time
    /// (machine-days per 1,000 machine-days in the factory; × 24 for hourly predictions).
    pub false_alert_time_per_1000: Option<f64>,
    /// Times a unit went into a false alert, per 1,000 units of judged machine-time.
    pub false_alert_onsets_per_1000: Option<f64>,
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
        self.alert.validate()?;
        if !positive(self.warning_lead) || !positive(self.quiet_horizon) {
            return Err(Error::InvalidOption {
                name: "warning_lead",
                reason: "the warning lead and the quiet horizon must be positive and finite".into(),
            });
        }
        if self.alert.horizon < self.warning_lead {
            return Err(Error::InvalidOption {
                name: "alert.horizon",
                reason: format!(
                    "{} is shorter than the warning lead {}: no alert could count",
                    self.alert.horizon, self.warning_lead
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
    let record = track_predictions(predictions, outcomes, |_| String::new(), |_| String::new(), options)?;
    Ok(report_of(&record.total(&TrackScope::All), options))
}

/// The report behind a set of track-record figures (of the fleet, a group or a unit).
pub fn report_of(figures: &TrackFigures, options: &LeadTimeOptions) -> LeadTimeReport {
    let mae_at = options
        .leads
        .iter()
        .enumerate()
        .map(|(k, &lead)| LeadError {
            lead,
            failures: figures.lead_count.get(k).copied().unwrap_or(0) as usize,
            mae: figures.lead_mae(k),
        })
        .collect();
    LeadTimeReport {
        failures: figures.failures as usize,
        mae_at,
        early_warning: EarlyWarning {
            lead: options.warning_lead,
            rule: options.alert,
            predicted: figures.caught as usize,
            share: figures.caught_share(),
            watched_failures: figures.watched as usize,
            watched_share: figures.caught_watched_share(),
            alerts: figures.alerts as usize,
            premature_alerts: figures.premature_alerts as usize,
            alerts_without_failure: figures.alerts_without_failure as usize,
            false_alerts: figures.false_alerts as usize,
            judged_time: figures.judged_time,
            false_alert_time_per_1000: figures.false_alert_time_per_1000(),
            false_alert_onsets_per_1000: figures.false_alert_onsets_per_1000(),
        },
    }
}

/// One unit's predictions (with their index in the input) and outcomes.
type UnitEvents<'a> = (Vec<(usize, &'a Prediction)>, Vec<&'a Outcome>);

/// Folds `predictions` and `outcomes` into a [`TrackRecord`] in time order, each unit in
/// the group `group_of(unit)` names and each prediction of the model version
/// `version_of(index)` names, with alerts decided by `options.alert` run by run.
pub fn track_predictions(
    predictions: &[Prediction],
    outcomes: &[Outcome],
    group_of: impl Fn(&str) -> String,
    version_of: impl Fn(usize) -> String,
    options: &LeadTimeOptions,
) -> Result<TrackRecord, Error> {
    options.validate()?;
    let mut by_unit: HashMap<&str, UnitEvents<'_>> = HashMap::new();
    for (i, p) in predictions.iter().enumerate() {
        if !p.time.is_finite()
            || !p.predicted_rul.is_finite()
            || !p.lower.is_finite()
            || !p.upper.is_finite()
            || p.failure_probability.is_some_and(|q| !q.is_finite())
        {
            return Err(Error::NotFinite {
                at: Location::UnitRow(i + 1),
                column: "prediction".into(),
                value: format!("{} at {}", p.predicted_rul, p.time),
            });
        }
        by_unit.entry(p.unit.as_str()).or_default().0.push((i, p));
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
    let mut record = TrackRecord::new(TrackOptions {
        leads: options.leads.clone(),
        max_staleness: options.max_staleness,
        warning_lead: options.warning_lead,
        horizon: options.alert.horizon,
        quiet_horizon: options.quiet_horizon,
        resolution: 0.0,
    });
    // Units in a fixed order so float sums do not depend on hash order.
    let mut units: Vec<_> = by_unit.into_iter().collect();
    units.sort_by(|a, b| a.0.cmp(b.0));
    for (unit, (mut preds, mut outs)) in units {
        let group = group_of(unit);
        preds.sort_by(|a, b| a.1.time.total_cmp(&b.1.time));
        outs.sort_by(|a, b| a.time.total_cmp(&b.time));
        let mut next = 0usize;
        // A prediction issued at `t` belongs to the run that ends at the first outcome at
        // or after `t`: its alert state is decided within that run.
        for end in outs.iter().map(Some).chain(std::iter::once(None)) {
            let end_time = end.map_or(f64::INFINITY, |o| o.time);
            let start = next;
            while next < preds.len() && preds[next].1.time <= end_time {
                next += 1;
            }
            let run: Vec<&Prediction> = preds[start..next].iter().map(|(_, p)| *p).collect();
            for (&(index, p), alert) in preds[start..next].iter().zip(options.alert.states(&run)) {
                let tracked = TrackedPrediction {
                    time: p.time,
                    predicted: p.predicted_rul,
                    lower: p.lower,
                    upper: p.upper,
                    alert,
                    model_version: version_of(index),
                };
                record.predicted(unit, &group, &tracked);
            }
            match end {
                Some(o) if o.kind == OutcomeKind::Failure => record.failed(unit, &group, o.time),
                Some(o) => record.serviced(unit, &group, o.time),
                None => {}
            }
        }
    }
    Ok(record)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::AlertOn;

    fn pred(unit: &str, time: f64, predicted: f64) -> Prediction {
        Prediction {
            unit: unit.into(),
            time,
            predicted_rul: predicted,
            lower: (predicted - 2.0).max(0.0),
            upper: predicted + 2.0,
            failure_probability: None,
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

    /// The default options, alerting on the point prediction at once.
    fn on_point() -> LeadTimeOptions {
        LeadTimeOptions { alert: AlertRule::point(7.0), ..LeadTimeOptions::default() }
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
        assert_eq!(report.early_warning.false_alerts, 0);
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
    fn given_an_always_alarming_model_when_scoring_then_premature_and_false_alerts_show_it() {
        let predictions: Vec<Prediction> = (0..=19).map(|d| pred("m1", d as f64, 0.0)).collect();
        for options in [LeadTimeOptions { alert: AlertRule::lower_bound(7.0), ..on_point() }, on_point()] {
            let report = lead_time_report(&predictions, &[failure("m1", 20.0)], &options).unwrap();
            let w = &report.early_warning;
            assert_eq!(w.predicted, 1);
            assert_eq!(w.alerts, 20);
            assert_eq!(w.premature_alerts, 13);
            // Days 0..=5 had no failure within the next 14 days: false, one onset; each
            // stood for a day of the 20 judged.
            assert_eq!(w.false_alerts, 6);
            assert_eq!(w.judged_time, 20.0);
            assert_eq!(w.false_alert_time_per_1000, Some(300.0));
            assert_eq!(w.false_alert_onsets_per_1000, Some(50.0));
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
        // Nothing failed within 14 days of days 9 and 10.
        assert_eq!(report.early_warning.false_alerts, 2);
        assert_eq!(report.mae_at[3].failures, 0);
        assert_eq!(report.mae_at[3].mae, None);
        assert_eq!(report.mae_at[0].failures, 1);
        assert_eq!(report.early_warning.predicted, 1);
        assert_eq!(report.early_warning.share, Some(0.5));
    }

    #[test]
    fn given_the_lower_bound_rule_when_scoring_then_alerts_come_earlier() {
        // Predicted 9 at day 14 (6 days ahead): no alert on the point, an alert on the lower
        // bound (7). Then nothing until day 18.
        let predictions = vec![pred("m1", 14.0, 9.0), pred("m1", 18.0, 2.0)];
        let point = lead_time_report(&predictions, &[failure("m1", 20.0)], &on_point()).unwrap();
        assert_eq!(point.early_warning.predicted, 0);
        assert_eq!(point.early_warning.rule.on, AlertOn::Predicted);
        let lower = LeadTimeOptions { alert: AlertRule::lower_bound(7.0), ..on_point() };
        let lower = lead_time_report(&predictions, &[failure("m1", 20.0)], &lower).unwrap();
        assert_eq!(lower.early_warning.predicted, 1);
        assert_eq!(lower.early_warning.alerts, 2);
    }

    /// Hourly predictions of `unit` over `[from, to)` days with a failure probability each.
    fn hourly(unit: &str, from: f64, to: f64, probability: impl Fn(f64) -> f64) -> Vec<Prediction> {
        let hours = ((to - from) * 24.0).round() as i64;
        (0..hours)
            .map(|h| {
                let t = from + h as f64 / 24.0;
                Prediction { failure_probability: Some(probability(t)), ..pred(unit, t, 10.0) }
            })
            .collect()
    }

    #[test]
    fn given_one_hour_dips_when_alerts_must_persist_then_only_the_sustained_rise_alerts() {
        // A healthy machine whose probability jumps to 0.9 for one hour every day, and a
        // failing one whose probability stays at 0.9 from 6 days before its failure.
        let mut predictions = hourly("healthy", 0.0, 40.0, |t| if (t.fract() - 0.5).abs() < 0.01 { 0.9 } else { 0.1 });
        predictions.extend(hourly("failing", 0.0, 30.0, |t| if t >= 24.0 { 0.9 } else { 0.1 }));
        let outcomes = [failure("failing", 30.0)];
        let at_once = LeadTimeOptions { alert: AlertRule::probability(7.0, 0.5, 0.0), ..on_point() };
        let held = LeadTimeOptions { alert: AlertRule::probability(7.0, 0.5, 0.25), ..on_point() };
        let a = lead_time_report(&predictions, &outcomes, &at_once).unwrap().early_warning;
        let b = lead_time_report(&predictions, &outcomes, &held).unwrap().early_warning;
        assert_eq!((a.predicted, b.predicted), (1, 1));
        // Each daily dip alerted at once (26 of the 40 days judged), never when held.
        assert_eq!(a.false_alerts, 26);
        assert!(a.false_alert_onsets_per_1000.unwrap() > 0.0);
        assert_eq!(b.false_alerts, 0);
        assert_eq!(b.false_alert_onsets_per_1000, Some(0.0));
        // Held for 6 hours (six hourly predictions): the failing machine's alert starts at
        // its sixth prediction above the threshold.
        assert_eq!(a.alerts - b.alerts, 26 + 5);
    }

    #[test]
    fn given_per_unit_groups_and_versions_when_tracking_then_each_scope_has_its_figures() {
        let mut predictions = daily("m1", 20.0, 19.0, 0.0);
        predictions.extend(daily("m2", 12.0, 11.0, 0.0));
        let outcomes = [failure("m1", 20.0), failure("m2", 12.0)];
        let n1 = 20;
        let record = track_predictions(
            &predictions,
            &outcomes,
            |u| if u == "m1" { "press".into() } else { "oven".into() },
            |i| if i < n1 { "rul-a".into() } else { "rul-b".into() },
            &on_point(),
        )
        .unwrap();
        let all = record.total(&TrackScope::All);
        assert_eq!((all.failures, all.caught), (2, 2));
        let press = record.figures(&TrackScope::Group("press".into()));
        assert_eq!(press.len(), 1);
        assert_eq!((press[0].0, press[0].1.failures), ("rul-a", 1));
        let oven = record.figures(&TrackScope::Unit("m2".into()));
        assert_eq!(oven[0].0, "rul-b");
        // Exact predictions: every one scored is covered, with no error.
        assert_eq!(all.coverage(), Some(1.0));
        assert_eq!(all.mae(), Some(0.0));
    }

    #[test]
    fn given_bad_options_when_scoring_then_they_are_refused() {
        let bad = [
            LeadTimeOptions { leads: vec![], ..Default::default() },
            LeadTimeOptions { leads: vec![-1.0], ..Default::default() },
            LeadTimeOptions { max_staleness: f64::NAN, ..Default::default() },
            LeadTimeOptions { alert: AlertRule::point(2.0), ..Default::default() },
            LeadTimeOptions { alert: AlertRule::probability(7.0, 1.5, 0.0), ..Default::default() },
            LeadTimeOptions { alert: AlertRule::probability(7.0, 0.5, f64::INFINITY), ..Default::default() },
            LeadTimeOptions { quiet_horizon: 0.0, ..Default::default() },
        ];
        for options in bad {
            assert!(matches!(lead_time_report(&[], &[], &options), Err(Error::InvalidOption { .. })), "{options:?}");
        }
        let nan = [pred("m1", f64::NAN, 1.0)];
        assert!(lead_time_report(&nan, &[], &LeadTimeOptions::default()).is_err());
        let nan = [Prediction { failure_probability: Some(f64::NAN), ..pred("m1", 1.0, 1.0) }];
        assert!(lead_time_report(&nan, &[], &LeadTimeOptions::default()).is_err());
        let inf = [Outcome { unit: "m1".into(), time: f64::INFINITY, kind: OutcomeKind::Failure }];
        assert!(lead_time_report(&[], &inf, &LeadTimeOptions::default()).is_err());
    }
}
