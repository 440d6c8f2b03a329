//! Prediction intervals by conformal calibration on predictions for units the model did not see.
//!
//! The residuals `actual - predicted` of out-of-sample predictions are grouped into bins by
//! predicted value (errors far from failure are larger than close to it, so one width for
//! all would be too wide near failure and too narrow far from it). Within a bin, the
//! interval is `[predicted + q_lo, predicted + q_hi]`.
//!
//! **Against the remaining life as given, not the capped target.** The trees learn a target
//! capped at the RUL cap (early life carries no wear signal), so a young unit is predicted
//! "the cap" whatever its true remaining life. The interval is about the truth: its
//! residuals are taken against the uncapped remaining life, so its upper bound reaches past
//! the cap by as much as young units' lives actually do, and a young unit is covered like
//! an old one. The calibration points are out-of-fold predictions at every row of every
//! training unit from its `min_history_rows`-th on, each unit weighing one: the histories
//! cut at random points that validation and service score.
//!
//! **Censored runs.** A run that ended in a service (or had not ended) only says its
//! remaining life was *more than* what it lasted. Within a bin, the residual distribution
//! is the Kaplan–Meier estimate over the units' weights: a censored point's weight passes on
//! to the larger residuals, as an exact one of those would have been. When censoring leaves
//! the upper quantile out of reach, the upper offset is the largest residual seen and the bin
//! says so (`upper_open`): the bound is a floor, not a promise.
//!
//! **Calibrated by unit, not by row.** The rows of one unit are not independent draws: a
//! unit that lives longer than the model expects is under-predicted at every row of its
//! life, and it also has more rows. What is exchangeable is the units, so each calibration
//! unit gets the same total weight in a bin, shared equally among its rows there, and the
//! offsets are the quantiles of that unit-weighted distribution at `α/2` and `1 − α/2`: the
//! "pooled CDF" for grouped data (Dunn, Wasserman & Ramdas, 2022, *Distribution-free
//! prediction sets for two-layer hierarchical models*). A "unit" here is whatever is one
//! exchangeable draw: an engine, or a factory machine with all its runs
//! (`TrainOptions::calibration_groups`); a bin needs enough of them that each tail holds at
//! least one (19 at 90 %), and a calibration with fewer units in all spans every residual
//! seen. Weighting rows instead lets long-lived units dominate and
//! under-covers a new unit (on FD001: 0.877 instead of 0.900 over 300 random 20-engine
//! splits of cross-validated predictions). The split-conformal finite-sample correction
//! counted in units (ranks `⌈(k+1)(1−α/2)⌉` of `k`) is not applied: it assumes a unit's rows
//! are one draw, which they are not (a unit's rows span its life), and on FD001's cut
//! histories it made the intervals cover 1–2 points more than nominal.
//!
//! **A probability, not only an interval.** Each bin also keeps its residual distribution
//! as percentiles, so the model can say how likely a unit is to fail within a horizon
//! (`probability_within`): the share of comparable units whose remaining life was that
//! short. The 90 % interval's lower bound is that distribution's 5th percentile, so
//! "lower bound ≤ 7 days" is "at least a 5 % chance of failing within the week"; an alert
//! rule can ask for more (`AlertRule`).

use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::table::RemainingLife;

/// What the interval was calibrated against.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CalibrationTruth {
    /// The capped training target (files written before intervals were calibrated on the
    /// truth): the upper bound stops at the cap.
    #[default]
    Capped,
    /// The remaining life as given, uncapped.
    AsGiven,
}

/// Percentile levels kept per bin: 1 % to 99 %.
const PERCENTILES: usize = 99;

/// One bin of predicted values with its residual offsets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IntervalBin {
    /// Predictions below this value belong to this bin or an earlier one; `None` for the
    /// last bin.
    pub below: Option<f64>,
    /// Calibration points in the bin.
    pub points: usize,
    /// Calibration units with points in the bin (0 in files written before units were
    /// counted).
    #[serde(default)]
    pub units: usize,
    /// Added to the prediction for the lower bound (usually negative).
    pub lower_offset: f64,
    /// Added to the prediction for the upper bound (usually positive).
    pub upper_offset: f64,
    /// Calibration points whose run was censored (their remaining life is a lower bound).
    #[serde(default)]
    pub censored: usize,
    /// Censoring left the upper quantile out of reach: the upper offset is the largest
    /// residual seen, a floor rather than a calibrated bound.
    #[serde(default)]
    pub upper_open: bool,
    /// The residual distribution's percentiles 1 % … 99 % (empty in files written before
    /// they were kept).
    #[serde(default)]
    pub percentiles: Vec<f64>,
}

/// Interval offsets learned from out-of-sample residuals.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IntervalCalibration {
    /// Nominal coverage, in (0, 1).
    pub level: f64,
    /// Calibration points over all bins.
    pub points: usize,
    /// Bins in increasing order of predicted value.
    pub bins: Vec<IntervalBin>,
    /// What the residuals were taken against.
    #[serde(default)]
    pub truth: CalibrationTruth,
}

/// One calibration point: a prediction, the truth as far as it is known, and its unit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct CalibrationPoint {
    pub predicted: f64,
    pub truth: RemainingLife,
    pub unit: usize,
}

impl IntervalCalibration {
    /// Learns offsets from out-of-sample predictions against the remaining life as given,
    /// using at most `bins` bins of at least `min_points` points each. A bin also needs
    /// enough units for each tail (19 at level 0.9); bins short of either are merged with a
    /// neighbour.
    pub(crate) fn fit(
        points: &[CalibrationPoint],
        level: f64,
        bins: usize,
        min_points: usize,
    ) -> Result<IntervalCalibration, Error> {
        check_level(level)?;
        if points.is_empty() {
            return Err(Error::Training("no out-of-sample predictions to calibrate the interval on".into()));
        }
        let predicted: Vec<f64> = points.iter().map(|p| p.predicted).collect();
        let unit: Vec<usize> = points.iter().map(|p| p.unit).collect();
        let alpha = 1.0 - level;
        // Enough units that each tail holds a unit beyond the split-conformal rank:
        // the fewest k with ⌈(k+1)(1-α/2)⌉ ≤ k (19 at 90 %).
        let min_units = ((2.0 - alpha) / alpha).ceil() as usize;
        let mut sorted: Vec<f64> = predicted.clone();
        sorted.sort_by(f64::total_cmp);
        let n = sorted.len();
        let bins = bins.clamp(1, n.div_ceil(min_points.max(1)).max(1));
        // Equal-count edges, then merge bins that ties or few units left too small.
        let mut edges: Vec<f64> = (1..bins).map(|b| sorted[b * n / bins]).collect();
        edges.dedup();
        loop {
            let counts = bin_counts(&edges, &predicted, &unit);
            match counts.iter().position(|&(points, units)| points < min_points || units < min_units) {
                Some(small) if !edges.is_empty() => {
                    // Merge with the neighbour by removing the edge between them.
                    edges.remove(small.min(edges.len() - 1));
                }
                _ => break,
            }
        }
        let mut out = Vec::with_capacity(edges.len() + 1);
        for b in 0..=edges.len() {
            let members: Vec<(f64, bool, usize)> = points
                .iter()
                .filter(|p| bin_of(&edges, p.predicted) == b)
                .map(|p| (p.truth.value - p.predicted, p.truth.censored, p.unit))
                .collect();
            let distribution = Distribution::of(&members);
            // Too few units to say where 90 % of them lie (possible only when the whole
            // calibration has too few): the interval spans every residual seen.
            let (lo, hi) = if distribution.units < min_units { (0.0, 1.0) } else { (alpha / 2.0, 1.0 - alpha / 2.0) };
            let (lower_offset, _) = distribution.quantile(lo);
            let (upper_offset, upper_open) = distribution.quantile(hi);
            let percentiles =
                (1..=PERCENTILES).map(|i| distribution.quantile(i as f64 / (PERCENTILES + 1) as f64).0).collect();
            out.push(IntervalBin {
                below: edges.get(b).copied(),
                points: members.len(),
                units: distribution.units,
                lower_offset,
                upper_offset: upper_offset.max(lower_offset),
                censored: members.iter().filter(|m| m.1).count(),
                upper_open,
                percentiles,
            });
        }
        Ok(IntervalCalibration { level, points: n, bins: out, truth: CalibrationTruth::AsGiven })
    }

    fn bin(&self, predicted: f64) -> Option<&IntervalBin> {
        self.bins.iter().find(|b| b.below.is_none_or(|edge| predicted < edge)).or(self.bins.last())
    }

    /// The (lower, upper) offsets for a prediction.
    pub fn offsets(&self, predicted: f64) -> (f64, f64) {
        self.bin(predicted).map_or((0.0, 0.0), |b| (b.lower_offset, b.upper_offset))
    }

    /// The probability that the remaining life is at most `horizon`, for a prediction:
    /// the share of the bin's calibration units (Kaplan–Meier over censored runs) whose
    /// residual was at most `horizon - predicted`, interpolated between percentiles (below
    /// the 1st: 0; from the 99th: 0.99). `None` for files without percentiles.
    pub fn probability_within(&self, predicted: f64, horizon: f64) -> Option<f64> {
        let q = &self.bin(predicted)?.percentiles;
        if q.is_empty() || !predicted.is_finite() || !horizon.is_finite() {
            return None;
        }
        let x = horizon - predicted;
        let step = 1.0 / (q.len() + 1) as f64;
        // The last percentile at or below x.
        let below = q.partition_point(|&v| v <= x);
        Some(match below {
            0 => 0.0,
            n if n == q.len() => step * n as f64,
            n => {
                let (lo, hi) = (q[n - 1], q[n]);
                let within = if hi > lo { (x - lo) / (hi - lo) } else { 0.0 };
                step * (n as f64 + within)
            }
        })
    }

    /// Checks a calibration read from a file.
    pub(crate) fn validate(&self) -> Result<(), String> {
        if !(self.level > 0.0 && self.level < 1.0) {
            return Err(format!("interval level {} is not in (0, 1)", self.level));
        }
        if self.bins.is_empty() {
            return Err("interval has no bins".into());
        }
        let edges: Vec<f64> = self.bins.iter().filter_map(|b| b.below).collect();
        if !edges.windows(2).all(|e| e[0] < e[1]) {
            return Err("interval bins are not in increasing order".into());
        }
        for (i, b) in self.bins.iter().enumerate() {
            let last = i + 1 == self.bins.len();
            if b.below.is_none() != last
                || !b.lower_offset.is_finite()
                || !b.upper_offset.is_finite()
                || b.below.is_some_and(|e| !e.is_finite())
                || b.lower_offset > b.upper_offset
                || !(b.percentiles.is_empty() || b.percentiles.len() == PERCENTILES)
                || !b.percentiles.iter().all(|v| v.is_finite())
                || !b.percentiles.windows(2).all(|w| w[0] <= w[1])
            {
                return Err(format!("interval bin {i} is malformed"));
            }
        }
        Ok(())
    }
}

/// Checks a nominal interval level.
pub(crate) fn check_level(level: f64) -> Result<(), Error> {
    if level > 0.0 && level < 1.0 {
        Ok(())
    } else {
        Err(Error::InvalidOption { name: "interval_level", reason: format!("{level} is not strictly between 0 and 1") })
    }
}

fn bin_of(edges: &[f64], p: f64) -> usize {
    edges.partition_point(|&e| p >= e)
}

/// Points and distinct units per bin.
fn bin_counts(edges: &[f64], predicted: &[f64], unit: &[usize]) -> Vec<(usize, usize)> {
    let mut members: Vec<Vec<usize>> = vec![Vec::new(); edges.len() + 1];
    for (&p, &u) in predicted.iter().zip(unit) {
        members[bin_of(edges, p)].push(u);
    }
    members
        .into_iter()
        .map(|mut units| {
            let points = units.len();
            units.sort_unstable();
            units.dedup();
            (points, units.len())
        })
        .collect()
}

/// One bin's residual distribution: each unit weighs 1, shared among its points, and
/// censored points hand their weight on to larger residuals (Kaplan–Meier).
struct Distribution {
    /// `(residual, share of the weight at or below it)` at every exact residual, increasing.
    steps: Vec<(f64, f64)>,
    smallest: f64,
    largest: f64,
    units: usize,
}

impl Distribution {
    /// From `(residual, censored, unit)` points.
    fn of(members: &[(f64, bool, usize)]) -> Distribution {
        let mut rows_of_unit: Vec<(usize, usize)> = Vec::new();
        let mut ids: Vec<usize> = members.iter().map(|m| m.2).collect();
        ids.sort_unstable();
        for u in ids {
            match rows_of_unit.last_mut() {
                Some((last, rows)) if *last == u => *rows += 1,
                _ => rows_of_unit.push((u, 1)),
            }
        }
        let rows = |u: usize| {
            let i = rows_of_unit.binary_search_by_key(&u, |&(id, _)| id).expect("every member's unit was counted");
            rows_of_unit[i].1
        };
        // A unit with m points in the bin gives each of them 1/m. At a tie, exact points
        // come first: a run censored at r was still working at r.
        let mut weighted: Vec<(f64, bool, f64)> =
            members.iter().map(|&(r, c, u)| (r, c, 1.0 / rows(u) as f64)).collect();
        weighted.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        let mut at_risk: f64 = weighted.iter().map(|w| w.2).sum();
        let mut surviving = 1.0;
        let mut steps: Vec<(f64, f64)> = Vec::new();
        let mut i = 0;
        while i < weighted.len() {
            let value = weighted[i].0;
            let (mut failed, mut left) = (0.0, 0.0);
            while i < weighted.len() && weighted[i].0 == value {
                if weighted[i].1 {
                    left += weighted[i].2;
                } else {
                    failed += weighted[i].2;
                }
                i += 1;
            }
            if failed > 0.0 && at_risk > 0.0 {
                surviving *= (1.0 - failed / at_risk).max(0.0);
                steps.push((value, 1.0 - surviving));
            }
            at_risk -= failed + left;
        }
        Distribution {
            steps,
            smallest: weighted.first().map_or(0.0, |w| w.0),
            largest: weighted.last().map_or(0.0, |w| w.0),
            units: rows_of_unit.len(),
        }
    }

    /// The smallest residual with at least `share` of the weight at or below it, and
    /// whether that share was out of reach (censoring or no exact point: then the largest
    /// residual seen). A share of 0 gives the smallest exact residual.
    fn quantile(&self, share: f64) -> (f64, bool) {
        // Tolerance for the rounding in sums of 1/m.
        const EPS: f64 = 1e-9;
        if self.steps.is_empty() {
            return if share <= 0.0 { (self.smallest, false) } else { (self.largest, true) };
        }
        match self.steps.iter().find(|&&(_, cdf)| cdf >= share - EPS) {
            Some(&(value, _)) => (value, false),
            None => (self.largest, true),
        }
    }
}

#[cfg(test)]
mod tests {
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    use super::*;

    /// Every point its own unit.
    fn own_units(n: usize) -> Vec<usize> {
        (0..n).collect()
    }

    /// Calibration on exact truths (runs that ended in failure).
    fn fit(
        predicted: &[f64],
        actual: &[f64],
        unit: &[usize],
        level: f64,
        bins: usize,
        min_points: usize,
    ) -> Result<IntervalCalibration, Error> {
        let points: Vec<CalibrationPoint> = predicted
            .iter()
            .zip(actual)
            .zip(unit)
            .map(|((&p, &a), &u)| CalibrationPoint {
                predicted: p,
                truth: RemainingLife { value: a, censored: false },
                unit: u,
            })
            .collect();
        IntervalCalibration::fit(&points, level, bins, min_points)
    }

    #[test]
    fn given_one_point_per_unit_when_calibrating_then_offsets_are_the_units_quantiles() {
        // 19 units, residuals -9..=9: at level 0.9, the 5 % and 95 % of 19 units: the
        // first (0.95 of a unit) and the 19th (18.05 units).
        let predicted = vec![50.0; 19];
        let actual: Vec<f64> = (-9..=9).map(|r| 50.0 + r as f64).collect();
        let cal = fit(&predicted, &actual, &own_units(19), 0.9, 1, 1).unwrap();
        assert_eq!(cal.bins.len(), 1);
        assert_eq!(cal.bins[0].units, 19);
        assert_eq!(cal.offsets(50.0), (-9.0, 9.0));
        // At level 0.5: 4.75 and 14.25 units: the 5th and the 15th.
        let cal = fit(&predicted, &actual, &own_units(19), 0.5, 1, 1).unwrap();
        assert_eq!(cal.offsets(50.0), (-5.0, 5.0));
    }

    #[test]
    fn given_one_unit_with_many_rows_when_calibrating_then_it_weighs_as_one_unit() {
        // Units 1..=19 have one residual each (-9..=9); unit 0 has 1,000 rows at +100.
        // Counted by row, the upper offset would be +100; counted by unit, at level 0.8 the
        // quantiles are at 2 and 18 of 20 units: -8 and +8.
        let mut predicted = vec![50.0; 19];
        let mut actual: Vec<f64> = (-9..=9).map(|r| 50.0 + r as f64).collect();
        let mut unit: Vec<usize> = (1..=19).collect();
        predicted.extend([50.0; 1000]);
        actual.extend([150.0; 1000]);
        unit.extend([0; 1000]);
        let cal = fit(&predicted, &actual, &unit, 0.8, 1, 1).unwrap();
        assert_eq!((cal.bins[0].points, cal.bins[0].units), (1019, 20));
        assert_eq!(cal.offsets(50.0), (-8.0, 8.0));
    }

    #[test]
    fn given_one_unit_when_calibrating_then_the_interval_spans_its_residuals() {
        // One unit with 7 rows of 1/7 each: 5 % is its first row, 95 % its last.
        let predicted = vec![10.0; 7];
        let actual: Vec<f64> = (-3..=3).map(|r| 10.0 + r as f64).collect();
        let cal = fit(&predicted, &actual, &[4; 7], 0.9, 1, 1).unwrap();
        assert_eq!((cal.bins[0].points, cal.bins[0].units), (7, 1));
        assert_eq!(cal.offsets(10.0), (-3.0, 3.0));
    }

    #[test]
    fn given_errors_growing_with_the_prediction_when_binning_then_widths_follow() {
        let mut predicted = Vec::new();
        let mut actual = Vec::new();
        for i in 0..400 {
            let p = (i % 100) as f64;
            let spread = if p < 50.0 { 1.0 } else { 10.0 };
            predicted.push(p);
            actual.push(p + spread * (((i * 7919) % 21) as f64 - 10.0) / 10.0);
        }
        let cal = fit(&predicted, &actual, &own_units(400), 0.9, 2, 50).unwrap();
        assert_eq!(cal.bins.len(), 2);
        let (lo, hi) = cal.offsets(10.0);
        let (lo2, hi2) = cal.offsets(90.0);
        assert!(hi - lo < 3.0 && hi2 - lo2 > 10.0, "{cal:?}");
        assert!(cal.validate().is_ok());
    }

    #[test]
    fn given_too_few_points_or_units_per_bin_when_calibrating_then_bins_merge() {
        let predicted: Vec<f64> = (0..30).map(f64::from).collect();
        let cal = fit(&predicted, &predicted, &own_units(30), 0.9, 5, 20).unwrap();
        assert_eq!(cal.bins.len(), 1);
        assert_eq!(cal.bins[0].points, 30);
        // Enough points for 3 bins, and 30 units: a 90 % bin needs 19.
        let many: Vec<f64> = (0..3000).map(|i| f64::from(i / 30)).collect();
        let units: Vec<usize> = (0..3000).map(|i| i % 30).collect();
        let cal = fit(&many, &many, &units, 0.9, 3, 100).unwrap();
        assert_eq!(cal.bins.len(), 3, "every unit has points in every bin: {cal:?}");
        // Each unit's points in a narrow range: 10 units a bin, 15 in two, all 30 in one.
        let units: Vec<usize> = (0..3000).map(|i| i / 100).collect();
        let cal = fit(&many, &many, &units, 0.9, 3, 100).unwrap();
        assert_eq!(cal.bins.len(), 1, "{cal:?}");
    }

    #[test]
    fn given_a_bad_level_when_calibrating_then_it_is_refused() {
        for level in [0.0, 1.0, f64::NAN, 1.5] {
            assert!(fit(&[1.0], &[1.0], &[0], level, 1, 1).is_err());
        }
        assert!(IntervalCalibration::fit(&[], 0.9, 1, 1).is_err());
    }

    /// Rows of synthetic units: predicted value uniform in [0, 100], truth = predicted +
    /// the unit's own offset (shared by all its rows, scale growing with the prediction) +
    /// row noise. Units with a positive offset have more rows, as long-lived engines do.
    fn grouped(units: usize, rng: &mut ChaCha8Rng) -> Vec<(usize, f64, f64)> {
        let mut rows = Vec::new();
        for u in 0..units {
            let effect = normal(rng);
            let n = if effect > 0.0 { 60 } else { 15 };
            for _ in 0..n {
                let p: f64 = rng.gen_range(0.0..100.0);
                let scale = 1.0 + p / 10.0;
                rows.push((u, p, p + scale * (effect + 0.5 * normal(rng))));
            }
        }
        rows
    }

    /// A standard normal draw (Box–Muller).
    fn normal(rng: &mut ChaCha8Rng) -> f64 {
        let u1: f64 = rng.gen_range(f64::EPSILON..1.0);
        let u2: f64 = rng.gen_range(0.0..1.0);
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }

    #[test]
    fn given_correlated_rows_within_units_when_scoring_new_units_then_coverage_is_nominal() {
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        let calibration = grouped(1000, &mut rng);
        let (unit, (predicted, actual)): (Vec<usize>, (Vec<f64>, Vec<f64>)) =
            calibration.iter().map(|&(u, p, a)| (u, (p, a))).unzip();
        let cal = fit(&predicted, &actual, &unit, 0.9, 5, 200).unwrap();
        assert_eq!(cal.bins.len(), 5);
        // New units, one row each (their first, at a random point of life), as one cut
        // history per unit: independent checks.
        let mut covered = [0usize; 2];
        let mut scored = [0usize; 2];
        let mut last_unit = None;
        for (u, p, a) in grouped(4000, &mut rng) {
            if last_unit.replace(u) == Some(u) {
                continue;
            }
            let (lo, hi) = cal.offsets(p);
            let half = usize::from(p >= 50.0);
            scored[half] += 1;
            covered[half] += usize::from(p + lo <= a && a <= p + hi);
        }
        for half in 0..2 {
            let coverage = covered[half] as f64 / scored[half] as f64;
            assert!((0.87..=0.93).contains(&coverage), "half {half}: coverage {coverage:.3} over {}", scored[half]);
        }
    }

    #[test]
    fn given_censored_runs_when_calibrating_then_their_weight_passes_to_longer_lives() {
        // 40 units, residuals 1..=20 exact; units 21..=40 were serviced at residual 20
        // (censored: they would have lived longer). Counting the censored as exact would put
        // the 95 % quantile at 20 as a calibrated bound; Kaplan–Meier hands their weight to
        // larger residuals, of which there are none seen, so it is out of reach.
        let mut points = Vec::new();
        for u in 1..=40usize {
            let censored = u > 20;
            let value = if censored { 20.0 } else { u as f64 };
            points.push(CalibrationPoint { predicted: 0.0, truth: RemainingLife { value, censored }, unit: u });
        }
        let cal = IntervalCalibration::fit(&points, 0.9, 1, 1).unwrap();
        let bin = &cal.bins[0];
        assert_eq!((bin.units, bin.censored), (40, 20));
        assert!(bin.upper_open);
        assert_eq!(bin.upper_offset, 20.0, "the largest residual seen: a floor");
        // 5 % of 40 units: the second smallest.
        assert_eq!(bin.lower_offset, 2.0);
        // Half the units were still working at 20: P(residual ≤ 10) is 10/40.
        let p = cal.probability_within(0.0, 10.0).unwrap();
        assert!((p - 0.25).abs() < 0.011, "{p}");
        assert_eq!(cal.truth, CalibrationTruth::AsGiven);
        assert!(cal.validate().is_ok());
    }

    #[test]
    fn given_a_residual_distribution_when_asking_for_a_probability_then_it_is_the_share_below() {
        // 100 units, residuals -49..=50 around a prediction of 10.
        let predicted = vec![10.0; 100];
        let actual: Vec<f64> = (-49..=50).map(|r| 10.0 + f64::from(r)).collect();
        let cal = fit(&predicted, &actual, &own_units(100), 0.9, 1, 1).unwrap();
        let p = |horizon: f64| cal.probability_within(10.0, horizon).unwrap();
        assert!((p(10.0) - 0.5).abs() < 0.011, "{}", p(10.0));
        assert!((p(-15.0) - 0.25).abs() < 0.011);
        assert_eq!(p(-100.0), 0.0);
        assert!((p(1000.0) - 0.99).abs() < 1e-9);
        let mut last = 0.0;
        for h in -60..=70 {
            let now = p(f64::from(h));
            assert!(now >= last, "non-decreasing in the horizon");
            last = now;
        }
        assert!(cal.probability_within(f64::NAN, 7.0).is_none());
        // A calibration from a file without percentiles has no probability.
        let mut old = cal.clone();
        old.bins[0].percentiles.clear();
        assert!(old.probability_within(10.0, 7.0).is_none());
        assert!(old.validate().is_ok());
        old.bins[0].percentiles = vec![1.0, 0.0];
        assert!(old.validate().is_err());
    }
}
