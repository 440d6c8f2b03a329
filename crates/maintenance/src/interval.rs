//! Prediction intervals by conformal calibration on predictions for units the model did not see.
//!
//! The residuals `actual - predicted` of out-of-sample predictions are grouped into bins by
//! predicted value (errors far from failure are larger than close to it, so one width for
//! all would be too wide near failure and too narrow far from it). Within a bin, the
//! interval is `[predicted + q_lo, predicted + q_hi]`, asymmetric because of the capped
//! target (near the cap the truth can only be below).
//!
//! **Calibrated by unit, not by row.** The rows of one unit are not independent draws: a
//! unit that lives longer than the model expects is under-predicted at every row of its
//! life, and it also has more rows. What is exchangeable is the units, so each calibration
//! unit gets the same total weight in a bin, shared equally among its rows there, and the
//! offsets are the split-conformal quantiles over the `k` units of the bin: the smallest
//! residuals whose cumulative weight reaches `⌊(k+1)·α/2⌋` units (lower offset; the smallest
//! residual when that is 0) and `⌈(k+1)·(1-α/2)⌉` units (upper offset; the largest when that
//! exceeds `k`) — the finite-sample correction, counted in units. With one row per unit
//! these are exactly the ranks of ordinary split conformal. A "unit" here is whatever is one
//! exchangeable draw: an engine, or a factory machine with all its runs
//! (`TrainOptions::calibration_groups`). This is
//! the "pooled CDF" construction for grouped data (Dunn, Wasserman & Ramdas, 2022,
//! *Distribution-free prediction sets for two-layer hierarchical models*). Weighting rows
//! instead lets long-lived units dominate and under-covers a new unit (on FD001: 0.877
//! instead of 0.900 over 300 random 20-engine splits of cross-validated predictions).

use serde::{Deserialize, Serialize};

use crate::error::Error;

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
}

impl IntervalCalibration {
    /// Learns offsets from paired predictions and actual values, `unit[i]` naming the unit
    /// of point `i`, using at most `bins` bins of at least `min_points` points each. A bin
    /// also needs enough units for its upper rank to exist (19 at level 0.9); bins short of
    /// either are merged with a neighbour.
    pub(crate) fn fit(
        predicted: &[f64],
        actual: &[f64],
        unit: &[usize],
        level: f64,
        bins: usize,
        min_points: usize,
    ) -> Result<IntervalCalibration, Error> {
        check_level(level)?;
        if predicted.is_empty() || predicted.len() != actual.len() || predicted.len() != unit.len() {
            return Err(Error::Training("no out-of-sample predictions to calibrate the interval on".into()));
        }
        let alpha = 1.0 - level;
        // The fewest units k with ⌈(k+1)(1-α/2)⌉ ≤ k.
        let min_units = ((2.0 - alpha) / alpha).ceil() as usize;
        let mut sorted: Vec<f64> = predicted.to_vec();
        sorted.sort_by(f64::total_cmp);
        let n = sorted.len();
        let bins = bins.clamp(1, n.div_ceil(min_points.max(1)).max(1));
        // Equal-count edges, then merge bins that ties or few units left too small.
        let mut edges: Vec<f64> = (1..bins).map(|b| sorted[b * n / bins]).collect();
        edges.dedup();
        loop {
            let counts = bin_counts(&edges, predicted, unit);
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
            let members: Vec<(f64, usize)> = predicted
                .iter()
                .zip(actual)
                .zip(unit)
                .filter(|((p, _), _)| bin_of(&edges, **p) == b)
                .map(|((p, a), &u)| (a - p, u))
                .collect();
            let (lower_offset, upper_offset, units) = unit_quantiles(&members, alpha);
            out.push(IntervalBin {
                below: edges.get(b).copied(),
                points: members.len(),
                units,
                lower_offset,
                upper_offset,
            });
        }
        Ok(IntervalCalibration { level, points: n, bins: out })
    }

    /// The (lower, upper) offsets for a prediction.
    pub fn offsets(&self, predicted: f64) -> (f64, f64) {
        let bin = self.bins.iter().find(|b| b.below.is_none_or(|edge| predicted < edge)).or(self.bins.last());
        bin.map_or((0.0, 0.0), |b| (b.lower_offset, b.upper_offset))
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

/// The lower and upper conformal offsets of one bin's `(residual, unit)` points, each unit
/// weighing 1 in total, and the number of units `k`: the smallest residuals with
/// `⌊(k+1)·α/2⌋` and `⌈(k+1)·(1-α/2)⌉` units' weight at or below them. A rank of 0 gives the
/// smallest residual, a rank above `k` the largest.
fn unit_quantiles(members: &[(f64, usize)], alpha: f64) -> (f64, f64, usize) {
    let mut rows_of_unit: Vec<(usize, usize)> = Vec::new();
    let mut ids: Vec<usize> = members.iter().map(|&(_, u)| u).collect();
    ids.sort_unstable();
    for u in ids {
        match rows_of_unit.last_mut() {
            Some((last, rows)) if *last == u => *rows += 1,
            _ => rows_of_unit.push((u, 1)),
        }
    }
    let k = rows_of_unit.len();
    let rows = |u: usize| {
        let i = rows_of_unit.binary_search_by_key(&u, |&(id, _)| id).expect("every member's unit was counted");
        rows_of_unit[i].1
    };
    // Weights in units: a unit with m rows in the bin gives each of them 1/m.
    let mut weighted: Vec<(f64, f64)> = members.iter().map(|&(r, u)| (r, 1.0 / rows(u) as f64)).collect();
    weighted.sort_by(|a, b| a.0.total_cmp(&b.0));
    let k_f = k as f64;
    let rank_lo = ((k_f + 1.0) * alpha / 2.0).floor().clamp(0.0, k_f);
    let rank_hi = ((k_f + 1.0) * (1.0 - alpha / 2.0)).ceil().clamp(0.0, k_f);
    (weighted_rank(&weighted, rank_lo), weighted_rank(&weighted, rank_hi), k)
}

/// The smallest value whose cumulative weight reaches `rank` (in units) in `(value,
/// weight)` pairs sorted by value (the first value for rank 0).
fn weighted_rank(sorted: &[(f64, f64)], rank: f64) -> f64 {
    // Tolerance for the rounding in sums of 1/m.
    const EPS: f64 = 1e-9;
    let mut cumulative = 0.0;
    for &(value, weight) in sorted {
        cumulative += weight;
        if cumulative >= rank - EPS {
            return value;
        }
    }
    sorted.last().map_or(0.0, |&(value, _)| value)
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

    #[test]
    fn given_one_point_per_unit_when_calibrating_then_offsets_are_the_conformal_ranks() {
        // 19 units, residuals -9..=9: at level 0.9, ranks ⌊20·0.05⌋ = 1 and ⌈20·0.95⌉ = 19.
        let predicted = vec![50.0; 19];
        let actual: Vec<f64> = (-9..=9).map(|r| 50.0 + r as f64).collect();
        let cal = IntervalCalibration::fit(&predicted, &actual, &own_units(19), 0.9, 1, 1).unwrap();
        assert_eq!(cal.bins.len(), 1);
        assert_eq!(cal.bins[0].units, 19);
        assert_eq!(cal.offsets(50.0), (-9.0, 9.0));
        // At level 0.5: ranks ⌊20·0.25⌋ = 5 and ⌈20·0.75⌉ = 15.
        let cal = IntervalCalibration::fit(&predicted, &actual, &own_units(19), 0.5, 1, 1).unwrap();
        assert_eq!(cal.offsets(50.0), (-5.0, 5.0));
    }

    #[test]
    fn given_one_unit_with_many_rows_when_calibrating_then_it_weighs_as_one_unit() {
        // Units 1..=19 have one residual each (-9..=9); unit 0 has 1,000 rows at +100.
        // Counted by row, the upper offset would be +100; counted by unit, at level 0.8 the
        // ranks are ⌊21·0.1⌋ = 2 and ⌈21·0.9⌉ = 19 of 20 units: -8 and +9.
        let mut predicted = vec![50.0; 19];
        let mut actual: Vec<f64> = (-9..=9).map(|r| 50.0 + r as f64).collect();
        let mut unit: Vec<usize> = (1..=19).collect();
        predicted.extend([50.0; 1000]);
        actual.extend([150.0; 1000]);
        unit.extend([0; 1000]);
        let cal = IntervalCalibration::fit(&predicted, &actual, &unit, 0.8, 1, 1).unwrap();
        assert_eq!((cal.bins[0].points, cal.bins[0].units), (1019, 20));
        assert_eq!(cal.offsets(50.0), (-8.0, 9.0));
    }

    #[test]
    fn given_fewer_units_than_the_ranks_need_when_calibrating_then_the_interval_spans_every_residual() {
        // One unit with 7 rows: ranks ⌊2·0.05⌋ = 0 and ⌈2·0.95⌉ = 2 > 1 unit.
        let predicted = vec![10.0; 7];
        let actual: Vec<f64> = (-3..=3).map(|r| 10.0 + r as f64).collect();
        let cal = IntervalCalibration::fit(&predicted, &actual, &[4; 7], 0.9, 1, 1).unwrap();
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
        let cal = IntervalCalibration::fit(&predicted, &actual, &own_units(400), 0.9, 2, 50).unwrap();
        assert_eq!(cal.bins.len(), 2);
        let (lo, hi) = cal.offsets(10.0);
        let (lo2, hi2) = cal.offsets(90.0);
        assert!(hi - lo < 3.0 && hi2 - lo2 > 10.0, "{cal:?}");
        assert!(cal.validate().is_ok());
    }

    #[test]
    fn given_too_few_points_or_units_per_bin_when_calibrating_then_bins_merge() {
        let predicted: Vec<f64> = (0..30).map(f64::from).collect();
        let cal = IntervalCalibration::fit(&predicted, &predicted, &own_units(30), 0.9, 5, 20).unwrap();
        assert_eq!(cal.bins.len(), 1);
        assert_eq!(cal.bins[0].points, 30);
        // Enough points for 3 bins, and 30 units: a 90 % bin needs 19.
        let many: Vec<f64> = (0..3000).map(|i| f64::from(i / 30)).collect();
        let units: Vec<usize> = (0..3000).map(|i| i % 30).collect();
        let cal = IntervalCalibration::fit(&many, &many, &units, 0.9, 3, 100).unwrap();
        assert_eq!(cal.bins.len(), 3, "every unit has points in every bin: {cal:?}");
        // Each unit's points in a narrow range: 10 units a bin, 15 in two, all 30 in one.
        let units: Vec<usize> = (0..3000).map(|i| i / 100).collect();
        let cal = IntervalCalibration::fit(&many, &many, &units, 0.9, 3, 100).unwrap();
        assert_eq!(cal.bins.len(), 1, "{cal:?}");
    }

    #[test]
    fn given_a_bad_level_when_calibrating_then_it_is_refused() {
        for level in [0.0, 1.0, f64::NAN, 1.5] {
            assert!(IntervalCalibration::fit(&[1.0], &[1.0], &[0], level, 1, 1).is_err());
        }
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
        let cal = IntervalCalibration::fit(&predicted, &actual, &unit, 0.9, 5, 200).unwrap();
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
}
