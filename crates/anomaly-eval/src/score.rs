//! Scoring episodes against the ground truth: recall and detection delay per fault kind,
//! false episodes per plant-hour. The rules are stated in the crate documentation.

use std::collections::BTreeMap;

use layout::Layout;
use serde::{Deserialize, Serialize};
use simulator::{FaultKind, FaultRecord};

use crate::episodes::Episode;
use crate::truth::GroundTruth;

/// Sensors of the plant the product is sized for; false episodes are also given per hour
/// of a plant this size, so runs of smaller plants compare with the target.
pub const REFERENCE_SENSORS_PER_PLANT: f64 = 10_000.0;

/// Fault kinds whose onset is a step: their median delay has the 10 s target.
pub const ABRUPT_KINDS: [FaultKind; 5] =
    [FaultKind::Spike, FaultKind::LevelShift, FaultKind::Stuck, FaultKind::NoiseBurst, FaultKind::Dropout];

/// The matching rules' parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ScoreRules {
    /// A sensor that joins an episode up to this long after its fault ended still counts
    /// for the fault (the return to normal is a change too, and an alarm a few readings
    /// after a one-reading spike is about the spike).
    pub grace_s: f64,
    /// Episodes of a machine that start while it is down for maintenance or repair, or
    /// within this long after it runs again, are counted apart, not as false.
    pub settle_s: f64,
    /// Neither faults nor episodes that start within this long of the start are scored
    /// (the detectors are still learning).
    pub skip_first_s: f64,
}

impl Default for ScoreRules {
    fn default() -> Self {
        ScoreRules { grace_s: 120.0, settle_s: 600.0, skip_first_s: 0.0 }
    }
}

/// The stretch of plant time evaluated, `[start_ms, end_ms)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Span {
    pub start_ms: i64,
    pub end_ms: i64,
}

/// A plant evaluated, and its size.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlantSize {
    pub id: String,
    pub sensors: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KindReport {
    pub faults: usize,
    pub detected: usize,
    pub recall: Option<f64>,
    pub median_delay_s: Option<f64>,
    pub p90_delay_s: Option<f64>,
    pub max_delay_s: Option<f64>,
    /// Which test named the fault's sensor first, over detected faults.
    pub first_test: BTreeMap<String, usize>,
    /// Faults of this kind whose window held no reading of their sensors: no detector can
    /// see them, so they are left out of `faults` and recall and reported here.
    #[serde(default)]
    pub unread: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpisodeCounts {
    /// Episodes raised in the scored span.
    pub total: usize,
    /// Matched at least one injected fault.
    pub matched: usize,
    /// Unmatched, but started while the machine was down or settling after it.
    pub during_maintenance: usize,
    pub false_episodes: usize,
    /// False episodes whose machine had an active fault on other sensors at the time.
    pub false_beside_a_fault: usize,
    /// False episodes by the test of their strongest sensor when raised.
    pub false_by_test: BTreeMap<String, usize>,
    /// False episodes that started in the first hour scored, while the monitor learns.
    pub false_in_first_hour: usize,
    /// False episodes by the kind of their strongest sensor when raised (`press VIB`) and
    /// its test, when the layout is known: which sensors a detector setting should be
    /// tuned for.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub false_by_sensor_kind: BTreeMap<String, usize>,
}

/// A fault that no episode matched, for inspection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Missed {
    pub kind: String,
    pub plant: String,
    pub fault: u64,
    pub machine: String,
    pub sensors: Vec<u32>,
    pub start_ms: i64,
    pub duration_s: f64,
    /// The fault's size, as recorded (delta, noise, …).
    pub shape: serde_json::Value,
}

/// A false episode, for inspection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FalseEpisode {
    pub id: String,
    pub start_ms: i64,
    pub sensors: Vec<u32>,
    pub first_test: String,
    pub peak_score: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TargetCheck {
    pub what: String,
    pub target: String,
    pub got: Option<f64>,
    pub met: bool,
}

/// Detection quality of one run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// What was evaluated (a directory, a database).
    pub source: String,
    pub span: Span,
    pub hours: f64,
    pub plants: Vec<PlantSize>,
    /// Share of faults of each kind that some episode matched (`null`: none injected).
    pub recall_by_kind: BTreeMap<String, Option<f64>>,
    /// Median time from a fault's start to the first episode event naming its sensor.
    pub median_delay_s_by_kind: BTreeMap<String, Option<f64>>,
    pub p90_delay_s_by_kind: BTreeMap<String, Option<f64>>,
    /// False episodes per hour of an evaluated plant.
    pub false_episodes_per_plant_hour: f64,
    /// The same, scaled to a plant of 10,000 sensors (false episodes grow with the number
    /// of sensors watched), so runs of smaller plants compare with the target.
    pub false_episodes_per_plant_hour_at_10k_sensors: f64,
    /// The same, leaving out the first hour (the monitor's learning: see the crate docs).
    pub false_episodes_per_plant_hour_at_10k_sensors_after_first_hour: f64,
    pub kinds: BTreeMap<String, KindReport>,
    pub episodes: EpisodeCounts,
    /// How delays were timed: `raised` (plant time at which the monitor raised the event)
    /// or `evidence` (read back from a log, see `episodes::parse_event`).
    pub delay_basis: String,
    pub rules: ScoreRules,
    pub targets: Vec<TargetCheck>,
    /// Up to 10 missed faults per kind.
    pub missed: Vec<Missed>,
    /// Faults whose window held no reading of their sensors (see `KindReport::unread`).
    #[serde(default)]
    pub unread: Vec<Missed>,
    /// Up to 40 false episodes.
    pub false_samples: Vec<FalseEpisode>,
    /// Settings of the monitor that produced the episodes, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub monitor: Option<serde_json::Value>,
}

impl Report {
    /// Whether every target of the issue is met.
    pub fn all_targets_met(&self) -> bool {
        self.targets.iter().all(|t| t.met)
    }
}

/// Faults of one kind, the delays of those detected, and which test named them first.
type KindTally = (usize, Vec<f64>, BTreeMap<String, usize>);

fn ms(s: f64) -> i64 {
    (s * 1000.0).round() as i64
}

/// The middle value (mean of the two middle ones for an even count) of sorted values.
fn median(sorted: &[f64]) -> Option<f64> {
    let n = sorted.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(sorted[n / 2]),
        _ => Some(0.5 * (sorted[n / 2 - 1] + sorted[n / 2])),
    }
}

/// Nearest-rank quantile of sorted values.
fn quantile(sorted: &[f64], q: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (q * sorted.len() as f64).ceil().max(1.0) as usize;
    Some(sorted[rank.min(sorted.len()) - 1])
}

/// First time an episode named one of the fault's sensors within the fault's window
/// (plus grace), with that sensor's test.
fn detection(fault: &FaultRecord, episodes: &[&Episode], grace_ms: i64) -> Option<(i64, String)> {
    let until = fault.end_ms.saturating_add(grace_ms);
    let mut best: Option<(i64, String)> = None;
    for ep in episodes {
        for j in &ep.sensors {
            if j.joined_ms >= fault.start_ms
                && j.joined_ms <= until
                && fault.sensors.iter().any(|s| s.id == j.sensor)
                && best.as_ref().is_none_or(|(t, _)| j.joined_ms < *t)
            {
                best = Some((j.joined_ms, j.test.clone()));
            }
        }
    }
    best
}

/// Scores `episodes` against `truth` over `span` for the given plants; with the plants'
/// `layout`, false episodes are also counted by the kind of sensor that raised them.
#[allow(clippy::too_many_arguments)]
pub fn score(
    episodes: &[Episode],
    truth: &GroundTruth,
    span: Span,
    plants: &[PlantSize],
    rules: &ScoreRules,
    source: &str,
    delay_basis: &str,
    layout: Option<&Layout>,
) -> Report {
    let scope = Scope {
        grace_ms: ms(rules.grace_s),
        settle_ms: ms(rules.settle_s),
        from_ms: span.start_ms.saturating_add(ms(rules.skip_first_s)),
        span,
        plants,
    };
    let mut by_machine: BTreeMap<&str, Vec<&Episode>> = BTreeMap::new();
    for ep in episodes.iter().filter(|e| scope.holds(e.plant())) {
        by_machine.entry(ep.machine.as_str()).or_default().push(ep);
    }
    let faults = tally_faults(truth, &by_machine, &scope);
    let (counts, false_samples) = count_episodes(episodes, truth, &faults.matched, &scope, layout);

    let hours = (span.end_ms - scope.from_ms).max(0) as f64 / 3_600_000.0;
    let plant_hours = hours * plants.len() as f64;
    let sensor_hours: f64 = hours * plants.iter().map(|p| p.sensors as f64).sum::<f64>();
    let per = |n: usize, d: f64| if d > 0.0 { n as f64 / d } else { 0.0 };
    let mut report = Report {
        source: source.to_owned(),
        span,
        hours,
        plants: plants.to_vec(),
        recall_by_kind: BTreeMap::new(),
        median_delay_s_by_kind: BTreeMap::new(),
        p90_delay_s_by_kind: BTreeMap::new(),
        false_episodes_per_plant_hour: per(counts.false_episodes, plant_hours),
        false_episodes_per_plant_hour_at_10k_sensors: per(counts.false_episodes, sensor_hours)
            * REFERENCE_SENSORS_PER_PLANT,
        false_episodes_per_plant_hour_at_10k_sensors_after_first_hour: per(
            counts.false_episodes - counts.false_in_first_hour,
            sensor_hours * (1.0 - 1.0 / hours.max(1.0)),
        ) * REFERENCE_SENSORS_PER_PLANT,
        kinds: BTreeMap::new(),
        episodes: counts,
        delay_basis: delay_basis.to_owned(),
        rules: rules.clone(),
        targets: Vec::new(),
        missed: faults.missed,
        unread: faults.unread.iter().map(|f| missed(f)).collect(),
        false_samples,
        monitor: None,
    };
    for (kind, tally) in faults.tallies {
        add_kind(&mut report, kind, tally);
    }
    for f in &faults.unread {
        if let Some(k) = report.kinds.get_mut(f.kind().as_str()) {
            k.unread += 1;
        }
    }
    report.targets = targets(&report);
    report
}

/// What is scored: the plants, the span, and the matching rules' times in milliseconds.
struct Scope<'a> {
    grace_ms: i64,
    settle_ms: i64,
    /// Start of the scored span (after `skip_first_s`).
    from_ms: i64,
    span: Span,
    plants: &'a [PlantSize],
}

impl Scope<'_> {
    fn holds(&self, plant: &str) -> bool {
        self.plants.iter().any(|p| p.id == plant)
    }
}

/// The faults, matched against the episodes of their machines.
struct FaultTally<'a> {
    tallies: BTreeMap<FaultKind, KindTally>,
    /// Ids of the episodes about some fault.
    matched: BTreeMap<&'a str, ()>,
    missed: Vec<Missed>,
    /// Faults that would be scored but whose window held no reading of their sensors.
    unread: Vec<&'a FaultRecord>,
}

/// Matches every fault against the episodes of its machine: which episodes are about a
/// fault, and, for the faults that can be judged fairly, whether and when each was detected.
fn tally_faults<'a>(
    truth: &'a GroundTruth,
    by_machine: &BTreeMap<&str, Vec<&'a Episode>>,
    scope: &Scope<'_>,
) -> FaultTally<'a> {
    let grace_ms = scope.grace_ms;
    let mut out = FaultTally {
        tallies: FaultKind::ALL.iter().map(|k| (*k, (0, Vec::new(), BTreeMap::new()))).collect(),
        matched: BTreeMap::new(),
        missed: Vec::new(),
        unread: Vec::new(),
    };
    let mut missed_per_kind: BTreeMap<FaultKind, usize> = BTreeMap::new();
    for fault in truth.faults.iter().filter(|f| scope.holds(&f.plant)) {
        let on_machine = by_machine.get(fault.machine.as_str()).map_or(&[][..], Vec::as_slice);
        // Every episode that names a fault's sensor in its window is about that fault,
        // whether or not the fault is itself scored.
        for ep in on_machine {
            let until = fault.end_ms.saturating_add(grace_ms);
            if ep.sensors.iter().any(|j| {
                j.joined_ms >= fault.start_ms && j.joined_ms <= until && fault.sensors.iter().any(|s| s.id == j.sensor)
            }) {
                out.matched.insert(ep.id.as_str(), ());
            }
        }
        // Faults starting too near either end cannot be judged fairly.
        if fault.start_ms < scope.from_ms || fault.start_ms > scope.span.end_ms.saturating_sub(grace_ms) {
            continue;
        }
        // A fault with no reading in its window is beyond any detector: reported apart.
        if truth.unread.contains(&(fault.plant.clone(), fault.fault)) {
            out.unread.push(fault);
            continue;
        }
        let tally = out.tallies.entry(fault.kind()).or_default();
        tally.0 += 1;
        match detection(fault, on_machine, grace_ms) {
            Some((t, test)) => {
                tally.1.push((t - fault.start_ms) as f64 / 1000.0);
                *tally.2.entry(test).or_default() += 1;
            }
            None => {
                let n = missed_per_kind.entry(fault.kind()).or_default();
                *n += 1;
                if *n <= 10 {
                    out.missed.push(missed(fault));
                }
            }
        }
    }
    out
}

fn missed(fault: &FaultRecord) -> Missed {
    Missed {
        kind: fault.kind().as_str().to_owned(),
        plant: fault.plant.clone(),
        fault: fault.fault,
        machine: fault.machine.clone(),
        sensors: fault.sensors.iter().map(|s| s.id).collect(),
        start_ms: fault.start_ms,
        duration_s: (fault.end_ms - fault.start_ms) as f64 / 1000.0,
        shape: serde_json::to_value(&fault.shape).unwrap_or(serde_json::Value::Null),
    }
}

/// Sorts the scored span's episodes into matched, during maintenance and false, with up to
/// 40 false ones kept for inspection.
fn count_episodes(
    episodes: &[Episode],
    truth: &GroundTruth,
    matched: &BTreeMap<&str, ()>,
    scope: &Scope<'_>,
    layout: Option<&Layout>,
) -> (EpisodeCounts, Vec<FalseEpisode>) {
    let down = |ep: &Episode| {
        truth.downtime.iter().any(|d| {
            d.machine == ep.machine
                && ep.start_ms >= d.start_ms
                && d.end_ms.is_none_or(|end| ep.start_ms <= end.saturating_add(scope.settle_ms))
        })
    };
    let beside_fault = |ep: &Episode| {
        truth.faults.iter().any(|f| {
            f.machine == ep.machine
                && ep.start_ms >= f.start_ms
                && ep.start_ms <= f.end_ms.saturating_add(scope.grace_ms)
        })
    };
    let mut counts = EpisodeCounts {
        total: 0,
        matched: 0,
        during_maintenance: 0,
        false_episodes: 0,
        false_beside_a_fault: 0,
        false_by_test: BTreeMap::new(),
        false_in_first_hour: 0,
        false_by_sensor_kind: BTreeMap::new(),
    };
    let mut false_samples = Vec::new();
    let scored = |e: &&Episode| scope.holds(e.plant()) && e.start_ms >= scope.from_ms && e.start_ms < scope.span.end_ms;
    for ep in episodes.iter().filter(scored) {
        counts.total += 1;
        if matched.contains_key(ep.id.as_str()) {
            counts.matched += 1;
        } else if down(ep) {
            counts.during_maintenance += 1;
        } else {
            counts.false_episodes += 1;
            if ep.start_ms < scope.from_ms.saturating_add(3_600_000) {
                counts.false_in_first_hour += 1;
            }
            if beside_fault(ep) {
                counts.false_beside_a_fault += 1;
            }
            *counts.false_by_test.entry(ep.first_test.clone()).or_default() += 1;
            let kind = layout.zip(ep.sensors.first()).and_then(|(l, j)| l.sensor(j.sensor));
            if let Some(info) = kind {
                let key = format!("{} {}: {}", info.machine_type.name, info.kind(), ep.first_test);
                *counts.false_by_sensor_kind.entry(key).or_default() += 1;
            }
            if false_samples.len() < 100 {
                false_samples.push(FalseEpisode {
                    id: ep.id.clone(),
                    start_ms: ep.start_ms,
                    sensors: ep.sensors.iter().map(|j| j.sensor).collect(),
                    first_test: ep.first_test.clone(),
                    peak_score: ep.peak_score,
                });
            }
        }
    }
    (counts, false_samples)
}

/// Recall and delays of one kind of fault, into the report.
fn add_kind(report: &mut Report, kind: FaultKind, (faults, mut delays, first_test): KindTally) {
    delays.sort_by(f64::total_cmp);
    let recall = (faults > 0).then(|| delays.len() as f64 / faults as f64);
    let name = kind.as_str().to_owned();
    report.recall_by_kind.insert(name.clone(), recall);
    report.median_delay_s_by_kind.insert(name.clone(), median(&delays));
    report.p90_delay_s_by_kind.insert(name.clone(), quantile(&delays, 0.9));
    report.kinds.insert(
        name,
        KindReport {
            faults,
            detected: delays.len(),
            recall,
            median_delay_s: median(&delays),
            p90_delay_s: quantile(&delays, 0.9),
            max_delay_s: delays.last().copied(),
            first_test,
            unread: 0,
        },
    );
}

/// Fault kinds every factory has sensors for; the others (set points ignored, valves
/// stuck, counters stopped, quantised drifts) only where the layout has such sensors.
const EVERY_FACTORY: [FaultKind; 7] = [
    FaultKind::Spike,
    FaultKind::LevelShift,
    FaultKind::Drift,
    FaultKind::Stuck,
    FaultKind::NoiseBurst,
    FaultKind::Dropout,
    FaultKind::Machine,
];

/// The targets, checked: recall of at least 0.95 for every kind of fault. A kind every
/// factory has sensors for cannot meet its target without an injected fault; the others
/// are checked where they were injected.
fn targets(r: &Report) -> Vec<TargetCheck> {
    let mut out = Vec::new();
    let min = 0.95;
    for kind in FaultKind::ALL {
        let got = r.recall_by_kind.get(kind.as_str()).copied().flatten();
        if got.is_none() && !EVERY_FACTORY.contains(&kind) {
            continue;
        }
        out.push(TargetCheck {
            what: format!("recall {}", kind.as_str()),
            target: format!(">= {min}"),
            got,
            met: got.is_some_and(|g| g >= min),
        });
    }
    for kind in ABRUPT_KINDS {
        let got = r.median_delay_s_by_kind.get(kind.as_str()).copied().flatten();
        out.push(TargetCheck {
            what: format!("median delay {} (s)", kind.as_str()),
            target: "<= 10".into(),
            got,
            met: got.is_some_and(|g| g <= 10.0),
        });
    }
    let got = r.false_episodes_per_plant_hour_at_10k_sensors;
    out.push(TargetCheck {
        what: "false episodes per plant-hour (10,000 sensors)".into(),
        target: "<= 6".into(),
        got: Some(got),
        met: got <= 6.0,
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_and_quantile_follow_their_definitions() {
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[3.0]), Some(3.0));
        assert_eq!(median(&[1.0, 2.0, 4.0, 9.0]), Some(3.0));
        assert_eq!(quantile(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0], 0.9), Some(9.0));
        assert_eq!(quantile(&[5.0], 0.9), Some(5.0));
    }
}
