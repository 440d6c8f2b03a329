//! When a prediction becomes an alert ("due within the horizon"): the one rule the plant's
//! scorer applies and the evaluation scores.
//!
//! A rule looks at one value of each prediction — the point prediction, the interval's
//! lower bound, or the model's probability of failure within the horizon — and can ask for
//! the condition to *persist*: to have held at every prediction of the run over the last
//! `persist` time units. One hourly prediction that dips is noise a crew should not be sent
//! for; a machine whose estimate stays low for half a day is not.
//!
//! Why a probability: the interval's lower bound is the predictive distribution's 5th
//! percentile (at 90 %), so "lower bound ≤ 7 days" alerts on a 5 % chance of failing within
//! the week. On the factory that flags about one prediction in five, mostly on machines
//! that then run for weeks. A calibrated probability lets the threshold be chosen from the
//! trade-off between failures caught in time and alerts on machines that do not fail
//! (`floorwatch eval maintenance` prints it).

use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::model::Prediction;

/// Which value of a prediction raises an alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertOn {
    /// The point prediction is at most the horizon (later alerts: misses failures that
    /// come sooner than predicted).
    Predicted,
    /// The interval's lower bound is at most the horizon: the unit could plausibly fail
    /// within it.
    Lower,
    /// The model's probability of failure within the horizon is at least
    /// [`AlertRule::min_probability`].
    Probability,
}

/// When a unit is flagged as due within a horizon.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct AlertRule {
    /// The alert says "failure within this long" (the model's time unit: days in the
    /// factory).
    pub horizon: f64,
    pub on: AlertOn,
    /// With [`AlertOn::Probability`]: the smallest probability that alerts, in (0, 1).
    #[serde(default)]
    pub min_probability: f64,
    /// The condition must have held at every prediction of the run issued in the last
    /// `persist` time units, and the run must be at least that old (0: the latest
    /// prediction decides alone).
    #[serde(default)]
    pub persist: f64,
}

/// Slack for comparing times that went through floating-point arithmetic (a millisecond
/// in days).
const TIME_EPS: f64 = 1e-8;

impl AlertRule {
    /// Alerts when the interval's lower bound is at most `horizon`, at once.
    pub fn lower_bound(horizon: f64) -> AlertRule {
        AlertRule { horizon, on: AlertOn::Lower, min_probability: 0.0, persist: 0.0 }
    }

    /// Alerts when the point prediction is at most `horizon`, at once.
    pub fn point(horizon: f64) -> AlertRule {
        AlertRule { horizon, on: AlertOn::Predicted, min_probability: 0.0, persist: 0.0 }
    }

    /// Alerts when the probability of failure within `horizon` has been at least
    /// `min_probability` for `persist`.
    pub fn probability(horizon: f64, min_probability: f64, persist: f64) -> AlertRule {
        AlertRule { horizon, on: AlertOn::Probability, min_probability, persist }
    }

    /// The factory's rule: due within 7 days when the probability of failing within them
    /// has been at least 20 % for the last 6 hours: inside the region of the trade-off curves
    /// where three recordings all meet both targets, not at its edge: a neighbouring
    /// threshold or hold still alerts ≥ 90 % of failures in time (README of
    /// `factory_history`).
    pub fn factory_default() -> AlertRule {
        AlertRule::probability(7.0, 0.2, 0.25)
    }

    /// Checks the rule's numbers.
    pub fn validate(&self) -> Result<(), Error> {
        let invalid = |name: &'static str, reason: String| Err(Error::InvalidOption { name, reason });
        if !(self.horizon.is_finite() && self.horizon > 0.0) {
            return invalid("alert.horizon", format!("{} is not a positive finite length", self.horizon));
        }
        if self.on == AlertOn::Probability && !(self.min_probability > 0.0 && self.min_probability < 1.0) {
            return invalid(
                "alert.min_probability",
                format!("{} is not strictly between 0 and 1", self.min_probability),
            );
        }
        // Held longer than the horizon it warns about, an alert would come when the failure
        // may already have.
        if !(self.persist >= 0.0 && self.persist <= self.horizon) {
            return invalid(
                "alert.persist",
                format!("{} is not between 0 and the horizon {}", self.persist, self.horizon),
            );
        }
        Ok(())
    }

    /// Whether this one prediction meets the condition (before persistence). A prediction
    /// without a probability (a model file without percentiles) meets the probability
    /// condition when its lower bound does.
    pub fn meets(&self, p: &Prediction) -> bool {
        match self.on {
            AlertOn::Predicted => p.predicted_rul <= self.horizon,
            AlertOn::Lower => p.lower <= self.horizon,
            AlertOn::Probability => match p.failure_probability {
                Some(probability) => probability >= self.min_probability,
                None => p.lower <= self.horizon,
            },
        }
    }

    /// The alert state at each prediction of one run (one unit between two services), given
    /// in time order: the condition held at every prediction of the last `persist`, and
    /// the run is at least that old.
    pub fn states(&self, run: &[&Prediction]) -> Vec<bool> {
        let Some(first) = run.first().map(|p| p.time) else { return Vec::new() };
        let mut out = Vec::with_capacity(run.len());
        // Time of the latest prediction that did not meet the condition.
        let mut last_miss = f64::NEG_INFINITY;
        for p in run {
            if !self.meets(p) {
                last_miss = p.time;
                out.push(false);
                continue;
            }
            if self.persist <= 0.0 {
                out.push(true);
                continue;
            }
            let since = p.time - self.persist;
            out.push(last_miss <= since + TIME_EPS && first <= since + TIME_EPS);
        }
        out
    }

    /// Whether a run is in alert at its latest prediction: `recent` holds the run's
    /// predictions of at least the last `persist` (in time order, the latest last), and the
    /// run's first prediction was at `run_start`. The same decision as [`AlertRule::states`]
    /// makes for that prediction; the scorer calls this with the last hours it predicted.
    pub fn alert_at(&self, recent: &[&Prediction], run_start: f64) -> bool {
        let Some(last) = recent.last() else { return false };
        if !self.meets(last) {
            return false;
        }
        if self.persist <= 0.0 {
            return true;
        }
        let since = last.time - self.persist;
        run_start <= since + TIME_EPS && recent.iter().filter(|p| p.time > since + TIME_EPS).all(|p| self.meets(p))
    }

    /// Short text for people: `P(fail ≤ 7) ≥ 0.30 for 0.25`.
    pub fn describe(&self) -> String {
        let condition = match self.on {
            AlertOn::Predicted => format!("point prediction ≤ {}", self.horizon),
            AlertOn::Lower => format!("lower bound ≤ {}", self.horizon),
            AlertOn::Probability => format!("P(failure within {}) ≥ {:.2}", self.horizon, self.min_probability),
        };
        if self.persist > 0.0 { format!("{condition}, held for {}", self.persist) } else { condition }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(time: f64, predicted: f64, lower: f64, probability: Option<f64>) -> Prediction {
        Prediction {
            unit: "m".into(),
            time,
            predicted_rul: predicted,
            lower,
            upper: predicted + 5.0,
            failure_probability: probability,
        }
    }

    #[test]
    fn given_each_rule_when_judging_one_prediction_then_it_looks_at_its_own_value() {
        let p = at(0.0, 9.0, 6.0, Some(0.2));
        assert!(!AlertRule::point(7.0).meets(&p));
        assert!(AlertRule::lower_bound(7.0).meets(&p));
        assert!(AlertRule::probability(7.0, 0.2, 0.0).meets(&p));
        assert!(!AlertRule::probability(7.0, 0.25, 0.0).meets(&p));
        // A model file without percentiles: the probability rule falls back on the bound.
        assert!(AlertRule::probability(7.0, 0.9, 0.0).meets(&at(0.0, 9.0, 6.0, None)));
        assert!(!AlertRule::probability(7.0, 0.1, 0.0).meets(&at(0.0, 9.0, 8.0, None)));
    }

    #[test]
    fn given_a_condition_that_must_persist_when_scanning_a_run_then_alerts_start_once_it_held_long_enough() {
        // Hourly: meets at hours 2..=9 except 5, and from 12 on.
        let meets = |h: i32| (2..=9).contains(&h) && h != 5 || h >= 12;
        let run: Vec<Prediction> =
            (0..16).map(|h| at(f64::from(h) / 24.0, 5.0, 1.0, Some(if meets(h) { 0.8 } else { 0.1 }))).collect();
        let refs: Vec<&Prediction> = run.iter().collect();
        let rule = AlertRule::probability(7.0, 0.5, 3.0 / 24.0);
        let states = rule.states(&refs);
        let alerting: Vec<usize> = (0..16).filter(|&h| states[h]).collect();
        // Three predictions in a row that meet it: hours 4, 8, 9, then 14 and 15.
        assert_eq!(alerting, vec![4, 8, 9, 14, 15]);
        for i in 0..refs.len() {
            let from = i.saturating_sub(5);
            assert_eq!(rule.alert_at(&refs[from..=i], refs[0].time), states[i], "hour {i}");
        }
        // At once: every prediction that meets it.
        let at_once = AlertRule::probability(7.0, 0.5, 0.0).states(&refs);
        assert_eq!(at_once.iter().filter(|a| **a).count(), (0..16).filter(|&h| meets(h)).count());
        // A run younger than the persistence cannot alert yet.
        assert!(!rule.alert_at(&refs[2..=3], refs[2].time));
        assert!(rule.states(&[]).is_empty());
    }

    #[test]
    fn given_bad_numbers_when_validating_a_rule_then_they_are_refused() {
        for bad in [
            AlertRule::point(0.0),
            AlertRule::lower_bound(f64::NAN),
            AlertRule::probability(7.0, 0.0, 0.0),
            AlertRule::probability(7.0, 1.0, 0.0),
            AlertRule::probability(7.0, 0.5, -1.0),
            AlertRule::probability(f64::INFINITY, 0.5, 0.0),
            AlertRule::probability(7.0, 0.5, 8.0),
            AlertRule::probability(7.0, 0.5, f64::NAN),
        ] {
            assert!(bad.validate().is_err(), "{bad:?}");
        }
        assert!(AlertRule::factory_default().validate().is_ok());
        assert!(AlertRule::factory_default().describe().contains("P(failure within 7)"));
    }
}
