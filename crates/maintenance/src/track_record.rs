//! The track record: how predictions issued over time turned out, per unit, per group of
//! units (a machine type) and per model version — a pure fold over predictions and
//! outcomes in the order they happened.
//!
//! The plant folds its log with it (predictions are `MaintenancePredicted` events, outcomes
//! failures and services), and the offline evaluation folds a model's hourly predictions
//! over a recording with it ([`crate::lead_time_report`]), so a planner's "how far can I
//! trust this number" and the evaluation's figures are the same figures.
//!
//! Every unit keeps its recent predictions (one per `resolution`, the latest: the plant
//! predicts every few minutes, a record needs no more than one an hour) for the quiet
//! horizon plus the longest lead. What happens next settles them:
//!
//! * **A failure at `T`** ends the unit's run. Its predictions of the quiet horizon before
//!   `T` are *scored*: covered when `T - t` lies in `[lower, upper]`, and their absolute
//!   error `|predicted - (T - t)|`. The prediction at each lead `L` is the latest issued in
//!   `[T - L - max_staleness, T - L]`. The failure was *caught* when the unit was in alert at
//!   a prediction issued between `T - horizon` and `T - warning_lead`, and *watched* when the
//!   run had predictions from `T - horizon` on. Kept predictions not judged yet (of any run)
//!   are judged with a failure after them: none of their alerts was false, unless the
//!   failure came later than the quiet horizon.
//! * **A service** ends the run without a failure: its alerts are counted as alerts
//!   without failure.
//! * **The quiet horizon passes** after a prediction with no failure: it is *judged*, and if
//!   it was an alert, a false one. The time it stood for (until the unit's next kept
//!   prediction, at most `max_staleness`) counts towards the machine-time judged and, for a
//!   false alert, the time spent falsely flagged. A unit going into a false alert is an
//!   *onset*: a crew sent out for nothing. Alerts are counted when judged.
//!
//! Alerts issued more than the horizon before their run's failure are premature. Figures
//! are kept for every unit, every group and the whole fleet, each per model version (the
//! version of the prediction; a failure counts for the version of the last prediction
//! before it). Predictions of the last quiet horizon when the fold stops are not judged yet.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use serde::{Deserialize, Serialize};

/// Slack for comparing times that went through floating-point arithmetic.
const TIME_EPS: f64 = 1e-9;

/// A remaining life beyond this (in any time unit) is not a prediction but bad data: left
/// out, so no sum can overflow.
pub const MAX_TRACKED_LIFE: f64 = 1e9;

/// What the track record measures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrackOptions {
    /// Leads before failure at which the prediction is recorded and its error measured.
    pub leads: Vec<f64>,
    /// How much older than `T - L` the prediction at lead `L` may be; the most time one
    /// prediction stands for.
    pub max_staleness: f64,
    /// A failure is caught when an alert was up at least this long before it…
    pub warning_lead: f64,
    /// …and at most this long (the alert horizon: "due within 7 days").
    pub horizon: f64,
    /// An alert with no failure within this long after it is false.
    pub quiet_horizon: f64,
    /// One prediction per unit is kept per this much time (the latest); 0 keeps all.
    pub resolution: f64,
}

impl TrackOptions {
    /// How far back a unit's predictions are kept.
    fn window(&self) -> f64 {
        let longest = self.leads.iter().copied().fold(self.horizon, f64::max) + self.max_staleness;
        longest.max(self.quiet_horizon)
    }
}

/// One prediction as the record sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrackedPrediction {
    /// When it was issued.
    pub time: f64,
    pub predicted: f64,
    pub lower: f64,
    pub upper: f64,
    /// Whether the unit was in alert ("due") with this prediction.
    pub alert: bool,
    pub model_version: String,
}

/// What the record is kept for.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TrackScope {
    /// One unit (a machine).
    Unit(String),
    /// A group of units (a machine type).
    Group(String),
    /// Every unit.
    All,
}

/// Counts and sums behind a track record; the derived figures are methods.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TrackFigures {
    /// Failures, and those caught (an alert up between the horizon and the warning lead
    /// before them).
    pub failures: u64,
    pub caught: u64,
    /// Failures whose run was watched through the whole alert window (a prediction at or
    /// before `T - horizon`), and those of them caught: a failure that comes days after
    /// the record begins could not have been warned of by any rule.
    #[serde(default)]
    pub watched: u64,
    #[serde(default)]
    pub caught_watched: u64,
    /// Predictions scored against a failure that followed (within the window), those whose
    /// interval covered it, and the sum of their absolute errors.
    pub scored: u64,
    pub covered: u64,
    pub abs_error_sum: f64,
    /// Per lead (in `TrackOptions::leads` order): failures with a prediction at that lead,
    /// and the sum of those predictions' absolute errors.
    pub lead_count: Vec<u64>,
    pub lead_error_sum: Vec<f64>,
    /// Predictions in alert, those issued more than the horizon before their run's failure,
    /// and those in runs that ended in a service.
    pub alerts: u64,
    pub premature_alerts: u64,
    pub alerts_without_failure: u64,
    /// Judged predictions (no failure within the quiet horizon, or a failure) and the
    /// machine-time they stood for; false alerts among them, their time and onsets.
    pub judged: u64,
    pub judged_time: f64,
    pub false_alerts: u64,
    pub false_alert_time: f64,
    pub false_alert_onsets: u64,
}

impl TrackFigures {
    /// Share of failures caught in time.
    pub fn caught_share(&self) -> Option<f64> {
        ratio(self.caught as f64, self.failures as f64)
    }

    /// Share of the failures watched through their alert window that were caught in time.
    pub fn caught_watched_share(&self) -> Option<f64> {
        ratio(self.caught_watched as f64, self.watched as f64)
    }

    /// Share of scored predictions whose interval held the truth.
    pub fn coverage(&self) -> Option<f64> {
        ratio(self.covered as f64, self.scored as f64)
    }

    /// Mean absolute error of the scored predictions.
    pub fn mae(&self) -> Option<f64> {
        ratio(self.abs_error_sum, self.scored as f64)
    }

    /// Mean absolute error at lead index `k`.
    pub fn lead_mae(&self, k: usize) -> Option<f64> {
        ratio(*self.lead_error_sum.get(k)?, *self.lead_count.get(k)? as f64)
    }

    /// Machine-time falsely flagged per 1,000 units of judged machine-time.
    pub fn false_alert_time_per_1000(&self) -> Option<f64> {
        ratio(1000.0 * self.false_alert_time, self.judged_time)
    }

    /// False-alert onsets per 1,000 units of judged machine-time.
    pub fn false_alert_onsets_per_1000(&self) -> Option<f64> {
        ratio(1000.0 * self.false_alert_onsets as f64, self.judged_time)
    }

    fn leads(&mut self, n: usize) {
        self.lead_count.resize(n, 0);
        self.lead_error_sum.resize(n, 0.0);
    }
}

fn ratio(a: f64, b: f64) -> Option<f64> {
    (b > 0.0).then(|| a / b)
}

/// The prediction at one lead before a failure.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LeadPrediction {
    pub lead: f64,
    /// When it was issued, and what it said.
    pub issued: f64,
    pub predicted: f64,
    pub lower: f64,
    pub upper: f64,
    /// The true remaining life then: failure time − issue time.
    pub actual: f64,
}

/// How the predictions before one failure turned out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FailureRecord {
    pub unit: String,
    pub group: String,
    pub time: f64,
    /// The version of the last prediction before the failure (none when there was none).
    pub model_version: Option<String>,
    /// The prediction at each lead that had one.
    pub at_leads: Vec<LeadPrediction>,
    pub caught: bool,
    /// How long before the failure the last alert episode of the run began.
    pub alert_lead: Option<f64>,
    pub scored: u64,
    pub covered: u64,
}

/// What changed since the last [`TrackRecord::take_changes`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TrackChanges {
    pub failures: Vec<FailureRecord>,
    /// Every figure row that changed: scope, model version, figures.
    pub figures: Vec<(TrackScope, String, TrackFigures)>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Kept {
    time: f64,
    predicted: f64,
    lower: f64,
    upper: f64,
    alert: bool,
    /// The first alert after a prediction without one (of the unit).
    onset: bool,
    version: u32,
    /// The run it belongs to (counted per unit).
    run: u64,
    /// Judged already (its quiet horizon passed): kept only for the leads.
    settled: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct UnitTrack {
    group: String,
    run: u64,
    kept: VecDeque<Kept>,
    /// Alerts of the current run by model version (older ones may have left `kept`).
    run_alerts: BTreeMap<u32, u64>,
    last_alert: bool,
    /// When the current run's first prediction was issued.
    #[serde(default)]
    run_started: Option<f64>,
}

/// The fold. Serializable, so a projection can snapshot it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrackRecord {
    options: TrackOptions,
    versions: Vec<String>,
    units: BTreeMap<String, UnitTrack>,
    #[serde(with = "pairs")]
    figures: BTreeMap<(TrackScope, String), TrackFigures>,
    #[serde(skip)]
    dirty: BTreeSet<(TrackScope, String)>,
    #[serde(skip)]
    failures: Vec<FailureRecord>,
}

impl TrackRecord {
    pub fn new(options: TrackOptions) -> TrackRecord {
        TrackRecord {
            options,
            versions: Vec::new(),
            units: BTreeMap::new(),
            figures: BTreeMap::new(),
            dirty: BTreeSet::new(),
            failures: Vec::new(),
        }
    }

    pub fn options(&self) -> &TrackOptions {
        &self.options
    }

    fn unit(&mut self, unit: &str, group: &str) -> &mut UnitTrack {
        let track = self.units.entry(unit.to_string()).or_default();
        if track.group != group {
            track.group = group.to_string();
        }
        track
    }

    /// A prediction for `unit` (of `group`). Predictions of a unit come in time order; one
    /// in the same `resolution` slot as the unit's latest replaces it, an older one is
    /// ignored, and so is one with a value that is not finite, negative or beyond
    /// [`MAX_TRACKED_LIFE`], or an interval that does not hold its prediction.
    pub fn predicted(&mut self, unit: &str, group: &str, p: &TrackedPrediction) {
        let life = |v: f64| (0.0..=MAX_TRACKED_LIFE).contains(&v);
        let usable = p.time.is_finite()
            && life(p.predicted)
            && life(p.lower)
            && life(p.upper)
            && p.lower <= p.predicted
            && p.predicted <= p.upper;
        if !usable {
            return;
        }
        let version = self.version(&p.model_version);
        let resolution = self.options.resolution;
        let slot = |t: f64| if resolution > 0.0 { (t / resolution + 1e-6).floor() } else { t };
        let track = self.unit(unit, group);
        if let Some(last) = track.kept.back() {
            if p.time < last.time - TIME_EPS {
                return;
            }
            if slot(p.time) == slot(last.time) && !last.settled {
                let replaced = track.kept.pop_back().expect("a last one exists");
                if replaced.alert && replaced.run == track.run {
                    let n = track.run_alerts.entry(replaced.version).or_default();
                    *n = n.saturating_sub(1);
                }
                track.last_alert = track.kept.back().is_some_and(|k| k.alert);
            }
        }
        track.run_started.get_or_insert(p.time);
        let onset = p.alert && !track.last_alert;
        track.last_alert = p.alert;
        if p.alert {
            *track.run_alerts.entry(version).or_default() += 1;
        }
        let run = track.run;
        track.kept.push_back(Kept {
            time: p.time,
            predicted: p.predicted,
            lower: p.lower,
            upper: p.upper,
            alert: p.alert,
            onset,
            version,
            run,
            settled: false,
        });
        self.settle_quiet(unit, p.time);
    }

    /// Judges the unit's predictions whose quiet horizon has passed by `now` without a
    /// failure, and forgets those older than the window.
    fn settle_quiet(&mut self, unit: &str, now: f64) {
        let quiet = self.options.quiet_horizon;
        let window = self.options.window();
        let max = self.options.max_staleness;
        let Some(track) = self.units.get_mut(unit) else { return };
        let group = track.group.clone();
        let mut judged = Vec::new();
        for i in 0..track.kept.len() {
            let k = &track.kept[i];
            if k.time > now - quiet + TIME_EPS {
                break;
            }
            if k.settled {
                continue;
            }
            let next = track.kept.get(i + 1).map_or(now, |n| n.time);
            judged.push((k.clone(), (next - k.time).clamp(0.0, max)));
            track.kept[i].settled = true;
        }
        while track.kept.front().is_some_and(|k| k.settled && k.time < now - window) {
            track.kept.pop_front();
        }
        for (k, span) in judged {
            self.settle(unit, &group, &k, span, false);
        }
    }

    /// Counts one prediction as judged: `failed_soon` when a failure followed within the
    /// quiet horizon (else an alert was false).
    fn settle(&mut self, unit: &str, group: &str, k: &Kept, span: f64, failed_soon: bool) {
        self.add(unit, group, k.version, |f| {
            f.judged += 1;
            f.judged_time += span;
            if k.alert {
                f.alerts += 1;
                if !failed_soon {
                    f.false_alerts += 1;
                    f.false_alert_time += span;
                    f.false_alert_onsets += u64::from(k.onset);
                }
            }
        });
    }

    /// `unit` (of `group`) failed at `time`.
    pub fn failed(&mut self, unit: &str, group: &str, time: f64) {
        if !time.is_finite() {
            return;
        }
        let o = self.options.clone();
        let track = self.unit(unit, group);
        let run = track.run;
        let started = track.run_started;
        // Predictions issued after the failure (reported late) belong to the next run.
        let split = track.kept.partition_point(|k| k.time <= time + TIME_EPS);
        let before: Vec<Kept> = track.kept.drain(..split).collect();
        let next_time = track.kept.front().map(|k| k.time);
        track.run_started = next_time;
        let run_alerts = std::mem::take(&mut track.run_alerts);
        track.run += 1;
        let new_run = track.run;
        for k in track.kept.iter_mut() {
            k.run = new_run;
            if k.alert {
                *track.run_alerts.entry(k.version).or_default() += 1;
            }
        }
        let in_run: Vec<&Kept> = before.iter().filter(|k| k.run == run).collect();
        let last_version = in_run.last().map(|k| k.version);
        let mut at_leads = Vec::new();
        let mut lead_errors = Vec::new();
        for (i, &lead) in o.leads.iter().enumerate() {
            let latest = in_run.iter().rev().find(|k| k.time <= time - lead + TIME_EPS);
            if let Some(k) = latest.filter(|k| k.time >= time - lead - o.max_staleness - TIME_EPS) {
                let actual = time - k.time;
                at_leads.push(LeadPrediction {
                    lead,
                    issued: k.time,
                    predicted: k.predicted,
                    lower: k.lower,
                    upper: k.upper,
                    actual,
                });
                lead_errors.push((i, k.version, (k.predicted - actual).abs()));
            }
        }
        let caught = in_run
            .iter()
            .any(|k| k.alert && k.time >= time - o.horizon - TIME_EPS && k.time <= time - o.warning_lead + TIME_EPS);
        let watched = started.is_some_and(|t| t <= time - o.horizon + TIME_EPS);
        let alert_lead = in_run.iter().rposition(|k| k.alert).map(|last| {
            let mut first = last;
            while first > 0 && in_run[first - 1].alert {
                first -= 1;
            }
            time - in_run[first].time
        });
        let mut scored = 0;
        let mut covered = 0;
        for (i, k) in before.iter().enumerate() {
            if !k.settled {
                let next = before.get(i + 1).map(|n| n.time).or(next_time).unwrap_or(time).min(time.max(k.time));
                let span = (next - k.time).clamp(0.0, o.max_staleness);
                self.settle(unit, group, k, span, time - k.time <= o.quiet_horizon + TIME_EPS);
            }
            if k.run != run || time - k.time > o.quiet_horizon + TIME_EPS {
                continue;
            }
            let actual = time - k.time;
            let hit = k.lower <= actual + TIME_EPS && actual <= k.upper + TIME_EPS;
            scored += 1;
            covered += u64::from(hit);
            self.add(unit, group, k.version, |f| {
                f.scored += 1;
                f.covered += u64::from(hit);
                f.abs_error_sum += (k.predicted - actual).abs();
            });
        }
        // Alerts of this run issued within the horizon before the failure; the rest were
        // premature.
        let mut in_horizon: BTreeMap<u32, u64> = BTreeMap::new();
        for k in in_run.iter().filter(|k| k.alert && time - k.time <= o.horizon + TIME_EPS) {
            *in_horizon.entry(k.version).or_default() += 1;
        }
        for (v, n) in run_alerts {
            let premature = n.saturating_sub(in_horizon.get(&v).copied().unwrap_or(0));
            if premature > 0 {
                self.add(unit, group, v, |f| f.premature_alerts += premature);
            }
        }
        let leads = o.leads.len();
        for (i, v, error) in lead_errors {
            self.add(unit, group, v, |f| {
                f.leads(leads);
                f.lead_count[i] += 1;
                f.lead_error_sum[i] += error;
            });
        }
        let version = match last_version {
            Some(v) => v,
            None => self.version(""),
        };
        self.add(unit, group, version, |f| {
            f.leads(leads);
            f.failures += 1;
            f.caught += u64::from(caught);
            f.watched += u64::from(watched);
            f.caught_watched += u64::from(caught && watched);
        });
        self.failures.push(FailureRecord {
            unit: unit.to_string(),
            group: group.to_string(),
            time,
            model_version: last_version.map(|v| self.versions[v as usize].clone()),
            at_leads,
            caught,
            alert_lead,
            scored,
            covered,
        });
    }

    /// `unit` (of `group`) was serviced at `time` without having failed: its run ends.
    pub fn serviced(&mut self, unit: &str, group: &str, time: f64) {
        if !time.is_finite() {
            return;
        }
        let track = self.unit(unit, group);
        track.run += 1;
        let new_run = track.run;
        track.run_started = track.kept.iter().find(|k| k.time > time + TIME_EPS).map(|k| k.time);
        let mut moved = BTreeMap::new();
        for k in track.kept.iter_mut().filter(|k| k.time > time + TIME_EPS) {
            k.run = new_run;
            if k.alert {
                *moved.entry(k.version).or_default() += 1;
            }
        }
        let ended = std::mem::replace(&mut track.run_alerts, moved.clone());
        for (v, n) in ended {
            let without = n.saturating_sub(moved.get(&v).copied().unwrap_or(0));
            if without > 0 {
                self.add(unit, group, v, |f| f.alerts_without_failure += without);
            }
        }
    }

    fn version(&mut self, v: &str) -> u32 {
        match self.versions.iter().position(|x| x == v) {
            Some(i) => i as u32,
            None => {
                self.versions.push(v.to_string());
                (self.versions.len() - 1) as u32
            }
        }
    }

    /// Applies `change` to the unit's, its group's and the fleet's figures of a version.
    fn add(&mut self, unit: &str, group: &str, version: u32, change: impl Fn(&mut TrackFigures)) {
        let v = &self.versions[version as usize];
        for scope in [TrackScope::Unit(unit.to_string()), TrackScope::Group(group.to_string()), TrackScope::All] {
            let key = (scope, v.clone());
            change(self.figures.entry(key.clone()).or_default());
            self.dirty.insert(key);
        }
    }

    /// The figures of a scope, per model version (`""`: failures without any prediction).
    pub fn figures(&self, scope: &TrackScope) -> Vec<(&str, &TrackFigures)> {
        self.figures
            .range((scope.clone(), String::new())..)
            .take_while(|((s, _), _)| s == scope)
            .map(|((_, v), f)| (v.as_str(), f))
            .collect()
    }

    /// The figures of a scope over every model version together.
    pub fn total(&self, scope: &TrackScope) -> TrackFigures {
        let mut total = TrackFigures::default();
        for (_, f) in self.figures(scope) {
            total.merge(f);
        }
        total
    }

    /// Every scope with figures, in order (units, groups, all).
    pub fn scopes(&self) -> Vec<TrackScope> {
        let mut out: Vec<TrackScope> = self.figures.keys().map(|(s, _)| s.clone()).collect();
        out.dedup();
        out
    }

    /// Failures recorded and figure rows changed since the last call.
    pub fn take_changes(&mut self) -> TrackChanges {
        let figures = std::mem::take(&mut self.dirty)
            .into_iter()
            .filter_map(|k| self.figures.get(&k).map(|f| (k.0, k.1, f.clone())))
            .collect();
        TrackChanges { failures: std::mem::take(&mut self.failures), figures }
    }
}

impl TrackFigures {
    /// Adds another set of counts (another version, another unit).
    pub fn merge(&mut self, o: &TrackFigures) {
        self.failures += o.failures;
        self.caught += o.caught;
        self.watched += o.watched;
        self.caught_watched += o.caught_watched;
        self.scored += o.scored;
        self.covered += o.covered;
        self.abs_error_sum += o.abs_error_sum;
        let n = self.lead_count.len().max(o.lead_count.len());
        self.leads(n);
        for (i, (&c, &e)) in o.lead_count.iter().zip(&o.lead_error_sum).enumerate() {
            self.lead_count[i] += c;
            self.lead_error_sum[i] += e;
        }
        self.alerts += o.alerts;
        self.premature_alerts += o.premature_alerts;
        self.alerts_without_failure += o.alerts_without_failure;
        self.judged += o.judged;
        self.judged_time += o.judged_time;
        self.false_alerts += o.false_alerts;
        self.false_alert_time += o.false_alert_time;
        self.false_alert_onsets += o.false_alert_onsets;
    }
}

/// A map with keys that are not strings, (de)serialized as a list of pairs.
mod pairs {
    use std::collections::BTreeMap;

    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<S: Serializer, K: Serialize, V: Serialize>(map: &BTreeMap<K, V>, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(map.iter())
    }

    pub fn deserialize<'de, D, K, V>(d: D) -> Result<BTreeMap<K, V>, D::Error>
    where
        D: Deserializer<'de>,
        K: Deserialize<'de> + Ord,
        V: Deserialize<'de>,
    {
        Ok(Vec::<(K, V)>::deserialize(d)?.into_iter().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options() -> TrackOptions {
        TrackOptions {
            leads: vec![1.0, 3.0, 7.0],
            max_staleness: 1.0,
            warning_lead: 3.0,
            horizon: 7.0,
            quiet_horizon: 14.0,
            resolution: 1.0 / 24.0,
        }
    }

    fn p(time: f64, predicted: f64, alert: bool, version: &str) -> TrackedPrediction {
        TrackedPrediction {
            time,
            predicted,
            lower: (predicted - 2.0).max(0.0),
            upper: predicted + 2.0,
            alert,
            model_version: version.into(),
        }
    }

    /// Hourly predictions of a unit failing at `fail`, exact, alerting within 7 days.
    fn run_to(record: &mut TrackRecord, unit: &str, from: f64, fail: f64, version: &str) {
        let mut t = from;
        while t < fail - 1e-9 {
            record.predicted(unit, "press", &p(t, fail - t, fail - t <= 7.0, version));
            t += 1.0 / 24.0;
        }
    }

    #[test]
    fn given_a_failure_when_recording_then_leads_coverage_and_the_alert_lead_are_kept() {
        let mut record = TrackRecord::new(options());
        run_to(&mut record, "m1", 100.0, 120.0, "rul-a");
        record.failed("m1", "press", 120.0);
        let changes = record.take_changes();
        assert_eq!(changes.failures.len(), 1);
        let f = &changes.failures[0];
        assert_eq!((f.unit.as_str(), f.group.as_str(), f.model_version.as_deref()), ("m1", "press", Some("rul-a")));
        assert!(f.caught);
        assert_eq!(f.at_leads.iter().map(|l| l.lead).collect::<Vec<_>>(), vec![1.0, 3.0, 7.0]);
        for l in &f.at_leads {
            assert!((l.predicted - l.actual).abs() < 1e-9 && l.actual >= l.lead - 1e-9);
        }
        // The alert began when 7 days were left.
        assert!((f.alert_lead.unwrap() - 7.0).abs() < 1e-6, "{:?}", f.alert_lead);
        // Scored: the predictions of the run's last 14 days, all covered.
        assert_eq!(f.scored, f.covered);
        assert_eq!(f.scored, 14 * 24);
        let all = record.total(&TrackScope::All);
        assert_eq!((all.failures, all.caught, all.false_alerts, all.premature_alerts), (1, 1, 0, 0));
        // Watched for 20 days before it: the alert window was in view.
        assert_eq!((all.watched, all.caught_watched), (1, 1));
        assert_eq!(all.coverage(), Some(1.0));
        assert_eq!(all.lead_mae(2).map(|e| e < 1e-9), Some(true));
        // Changed rows: the unit's, the group's and the fleet's, for one version.
        assert_eq!(changes.figures.len(), 3);
        assert!(record.take_changes().figures.is_empty());
    }

    #[test]
    fn given_alerts_on_a_unit_that_does_not_fail_when_time_passes_then_they_turn_false() {
        let mut record = TrackRecord::new(options());
        // Alerting from day 0 to day 3, then quiet until day 30, serviced on day 4.
        for h in 0..(30 * 24) {
            let t = f64::from(h) / 24.0;
            record.predicted("m1", "press", &p(t, 10.0, t < 3.0, "rul-a"));
            if h == 4 * 24 {
                record.serviced("m1", "press", t);
            }
        }
        let all = record.total(&TrackScope::All);
        assert_eq!(all.alerts_without_failure, 72);
        assert_eq!((all.false_alerts, all.false_alert_onsets), (72, 1));
        // Judged: every hour up to 14 days before the last prediction.
        assert_eq!(all.judged, 16 * 24);
        assert!((all.false_alert_time - 3.0).abs() < 1e-9);
        assert!((all.false_alert_time_per_1000().unwrap() - 3000.0 / all.judged_time).abs() < 1e-9);
        assert_eq!(all.failures, 0);
    }

    #[test]
    fn given_predictions_every_few_minutes_when_recording_then_one_an_hour_is_kept() {
        let mut record = TrackRecord::new(options());
        for q in 0..(40 * 96) {
            let t = f64::from(q) / 96.0;
            record.predicted("m1", "press", &p(t, 40.0 - t, false, "rul-a"));
        }
        record.failed("m1", "press", 40.0);
        let f = &record.take_changes().failures[0];
        assert_eq!(f.scored, 14 * 24, "the last quarter-hour of each hour stands for it");
        // A prediction older than the unit's latest is ignored, and so are non-finite ones.
        let mut record = TrackRecord::new(options());
        record.predicted("m1", "press", &p(2.0, 5.0, true, "rul-a"));
        record.predicted("m1", "press", &p(1.0, 5.0, true, "rul-a"));
        record.predicted("m1", "press", &TrackedPrediction { predicted: f64::NAN, ..p(3.0, 5.0, true, "rul-a") });
        record.failed("m1", "press", f64::INFINITY);
        record.failed("m1", "press", 8.0);
        assert_eq!(record.take_changes().failures[0].scored, 1);
    }

    #[test]
    fn given_a_failure_reported_after_later_predictions_when_recording_then_they_belong_to_the_next_run() {
        let mut record = TrackRecord::new(options());
        run_to(&mut record, "m1", 0.0, 10.0, "rul-a");
        // Predictions kept coming for two hours after the failure before it was reported.
        record.predicted("m1", "press", &p(10.0 + 1.0 / 24.0, 3.0, true, "rul-a"));
        record.predicted("m1", "press", &p(10.0 + 2.0 / 24.0, 3.0, true, "rul-a"));
        record.failed("m1", "press", 10.0);
        let f = record.take_changes().failures.remove(0);
        assert_eq!(f.scored, 10 * 24);
        // The next run holds the two late predictions and their alerts.
        record.serviced("m1", "press", 10.5);
        assert_eq!(record.total(&TrackScope::All).alerts_without_failure, 2);
    }

    #[test]
    fn given_two_model_versions_and_groups_when_recording_then_figures_are_kept_apart() {
        let mut record = TrackRecord::new(options());
        run_to(&mut record, "m1", 0.0, 20.0, "rul-a");
        record.failed("m1", "press", 20.0);
        record.predicted("m2", "oven", &p(0.0, 30.0, false, "rul-b"));
        record.failed("m2", "oven", 5.0);
        record.failed("m3", "oven", 5.0);
        let oven = record.figures(&TrackScope::Group("oven".into()));
        let versions: Vec<(&str, u64, u64)> = oven.iter().map(|(v, f)| (*v, f.failures, f.caught)).collect();
        assert_eq!(versions, vec![("", 1, 0), ("rul-b", 1, 0)]);
        // m2 was watched from 5 days before its failure, m3 never: neither through the
        // 7 days an alert needs.
        assert_eq!(record.total(&TrackScope::Group("oven".into())).watched, 0);
        assert_eq!(record.total(&TrackScope::All).failures, 3);
        assert_eq!(record.total(&TrackScope::Unit("m1".into())).caught, 1);
        let scopes = record.scopes();
        assert_eq!(scopes.last(), Some(&TrackScope::All));
        assert!(scopes.contains(&TrackScope::Unit("m3".into())));
        // m2's prediction was off by 25 days and outside its interval.
        let m2 = record.total(&TrackScope::Unit("m2".into()));
        assert_eq!((m2.scored, m2.covered, m2.mae()), (1, 0, Some(25.0)));
    }

    #[test]
    fn given_a_record_when_saved_and_restored_then_it_continues_the_same() {
        let mut a = TrackRecord::new(options());
        run_to(&mut a, "m1", 0.0, 5.0, "rul-a");
        let saved = serde_json::to_string(&a).unwrap();
        let mut b: TrackRecord = serde_json::from_str(&saved).unwrap();
        a.failed("m1", "press", 5.0);
        b.failed("m1", "press", 5.0);
        assert_eq!(a.total(&TrackScope::All), b.total(&TrackScope::All));
        assert_eq!(a.take_changes().failures, b.take_changes().failures);
    }
}
