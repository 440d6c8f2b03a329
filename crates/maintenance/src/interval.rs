//! Prediction intervals by conformal calibration on predictions for units the model did not see.
//!
//! The residuals `actual - predicted` of out-of-sample predictions are grouped into bins by
//! predicted value (errors far from failure are larger than close to it, so one width for
//! all would be too wide near failure and too narrow far from it). Within a bin, the
//! interval is `[predicted + q_lo, predicted + q_hi]` with `q_lo`, `q_hi` the residuals at
//! ranks `⌊(n+1)·α/2⌋` and `⌈(n+1)·(1-α/2)⌉`, the usual finite-sample split-conformal
//! ranks for a central interval of level `1-α`. Asymmetric offsets follow the capped target:
//! near the cap the truth can only be below.

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
    /// Learns offsets from paired predictions and actual values, using at most `bins` bins
    /// of at least `min_points` points each.
    pub(crate) fn fit(
        predicted: &[f64],
        actual: &[f64],
        level: f64,
        bins: usize,
        min_points: usize,
    ) -> Result<IntervalCalibration, Error> {
        check_level(level)?;
        if predicted.is_empty() || predicted.len() != actual.len() {
            return Err(Error::Training("no out-of-sample predictions to calibrate the interval on".into()));
        }
        let mut sorted: Vec<f64> = predicted.to_vec();
        sorted.sort_by(f64::total_cmp);
        let n = sorted.len();
        let bins = bins.clamp(1, n.div_ceil(min_points.max(1)).max(1));
        // Equal-count edges, then merge bins that ties left too small.
        let mut edges: Vec<f64> = (1..bins).map(|b| sorted[b * n / bins]).collect();
        edges.dedup();
        loop {
            let counts = bin_counts(&edges, predicted);
            match counts.iter().position(|&c| c < min_points) {
                Some(small) if !edges.is_empty() => {
                    // Merge with the neighbour by removing the edge between them.
                    edges.remove(small.min(edges.len() - 1));
                }
                _ => break,
            }
        }
        let alpha = 1.0 - level;
        let mut out = Vec::with_capacity(edges.len() + 1);
        for b in 0..=edges.len() {
            let mut residuals: Vec<f64> =
                predicted.iter().zip(actual).filter(|(p, _)| bin_of(&edges, **p) == b).map(|(p, a)| a - p).collect();
            residuals.sort_by(f64::total_cmp);
            let m = residuals.len();
            let rank_lo = ((m as f64 + 1.0) * alpha / 2.0).floor() as usize;
            let rank_hi = ((m as f64 + 1.0) * (1.0 - alpha / 2.0)).ceil() as usize;
            out.push(IntervalBin {
                below: edges.get(b).copied(),
                points: m,
                lower_offset: residuals[rank_lo.clamp(1, m) - 1],
                upper_offset: residuals[rank_hi.clamp(1, m) - 1],
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

fn bin_counts(edges: &[f64], predicted: &[f64]) -> Vec<usize> {
    let mut counts = vec![0; edges.len() + 1];
    for &p in predicted {
        counts[bin_of(edges, p)] += 1;
    }
    counts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_residuals_when_calibrating_then_offsets_are_the_conformal_ranks() {
        // 19 points, residuals -9..=9: at level 0.9, ranks ⌊20·0.05⌋ = 1 and ⌈20·0.95⌉ = 19.
        let predicted = vec![50.0; 19];
        let actual: Vec<f64> = (-9..=9).map(|r| 50.0 + r as f64).collect();
        let cal = IntervalCalibration::fit(&predicted, &actual, 0.9, 1, 1).unwrap();
        assert_eq!(cal.bins.len(), 1);
        assert_eq!(cal.offsets(50.0), (-9.0, 9.0));
        // At level 0.5: ranks ⌊20·0.25⌋ = 5 and ⌈20·0.75⌉ = 15.
        let cal = IntervalCalibration::fit(&predicted, &actual, 0.5, 1, 1).unwrap();
        assert_eq!(cal.offsets(50.0), (-5.0, 5.0));
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
        let cal = IntervalCalibration::fit(&predicted, &actual, 0.9, 2, 50).unwrap();
        assert_eq!(cal.bins.len(), 2);
        let (lo, hi) = cal.offsets(10.0);
        let (lo2, hi2) = cal.offsets(90.0);
        assert!(hi - lo < 3.0 && hi2 - lo2 > 10.0, "{cal:?}");
        assert!(cal.validate().is_ok());
    }

    #[test]
    fn given_too_few_points_per_bin_when_calibrating_then_bins_merge() {
        let predicted: Vec<f64> = (0..30).map(f64::from).collect();
        let cal = IntervalCalibration::fit(&predicted, &predicted, 0.9, 5, 20).unwrap();
        assert_eq!(cal.bins.len(), 1);
        assert_eq!(cal.bins[0].points, 30);
    }

    #[test]
    fn given_a_bad_level_when_calibrating_then_it_is_refused() {
        for level in [0.0, 1.0, f64::NAN, 1.5] {
            assert!(IntervalCalibration::fit(&[1.0], &[1.0], level, 1, 1).is_err());
        }
    }
}
