//! Accuracy and interval figures for a set of predictions with known outcomes: errors,
//! NASA's asymmetric score, interval coverage overall and by bucket of predicted life.

use serde::{Deserialize, Serialize};

/// One prediction next to the value it should have been.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Scored {
    pub predicted: f64,
    pub lower: f64,
    pub upper: f64,
    pub actual: f64,
}

/// Error and interval figures over a set of predictions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Accuracy {
    /// Units the predictions came from.
    pub units: usize,
    /// Predictions scored.
    pub points: usize,
    /// Root mean squared error.
    pub rmse: f64,
    /// Mean absolute error.
    pub mae: f64,
    /// Mean of `predicted - actual` (positive: predicts failure later than it comes).
    pub bias: f64,
    /// Share of actual values inside `[lower, upper]`.
    pub coverage: f64,
    /// Mean of `upper - lower`.
    pub mean_interval_width: f64,
    /// NASA's asymmetric score (PHM08; Saxena et al., 2008) per prediction: with
    /// `d = predicted - actual`, `exp(-d/13) - 1` when early (d < 0) and `exp(d/10) - 1`
    /// when late, so a late prediction costs more than an equally early one. The
    /// published figures sum it over 100 test engines: 100 × this mean. (The constants are
    /// in cycles; on other time units the figure only ranks models.) Absent in files
    /// written before it was kept.
    #[serde(default)]
    pub nasa_score: Option<f64>,
}

impl Accuracy {
    /// Figures over `points` from `units` units; `None` when there are no points.
    pub fn of(points: &[Scored], units: usize) -> Option<Accuracy> {
        if points.is_empty() {
            return None;
        }
        let n = points.len() as f64;
        let mut se = 0.0;
        let mut ae = 0.0;
        let mut bias = 0.0;
        let mut covered = 0usize;
        let mut width = 0.0;
        let mut score = 0.0;
        for p in points {
            let e = p.predicted - p.actual;
            score += nasa_score(e);
            se += e * e;
            ae += e.abs();
            bias += e;
            if p.lower <= p.actual && p.actual <= p.upper {
                covered += 1;
            }
            width += p.upper - p.lower;
        }
        Some(Accuracy {
            units,
            points: points.len(),
            rmse: (se / n).sqrt(),
            mae: ae / n,
            bias: bias / n,
            coverage: covered as f64 / n,
            mean_interval_width: width / n,
            nasa_score: Some(score / n),
        })
    }
}

/// NASA's asymmetric score of one error `d = predicted - actual` (PHM08): late predictions
/// (d > 0) cost more than early ones. Capped at `f64::MAX` so one absurd error cannot make
/// the mean infinite.
pub fn nasa_score(d: f64) -> f64 {
    let s = if d < 0.0 { (-d / 13.0).exp() - 1.0 } else { (d / 10.0).exp() - 1.0 };
    s.min(f64::MAX)
}

/// Predictions grouped by predicted life: where in its life the model thought the unit
/// was. Intervals must hold in every bucket, not only on average: a model can cover well
/// near failure and miss young units, or the other way round.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BucketAccuracy {
    /// `late`, `mid` or `early` life.
    pub bucket: String,
    /// Predictions in `[from, to)`; `to` is `None` for the last bucket.
    pub from: f64,
    pub to: Option<f64>,
    pub accuracy: Accuracy,
}

/// The edges between the late-, mid- and early-life buckets: 40 % and 80 % of the RUL cap
/// (C-MAPSS with cap 125: below 50, 50–100, from 100 cycles; the factory with cap 21:
/// below 8.4, 8.4–16.8, from 16.8 days). Without a cap, the terciles of the predictions.
pub fn bucket_edges(cap: Option<f64>, predicted: &[f64]) -> [f64; 2] {
    match cap {
        Some(cap) => [0.4 * cap, 0.8 * cap],
        None => {
            let mut sorted: Vec<f64> = predicted.iter().copied().filter(|p| p.is_finite()).collect();
            sorted.sort_by(f64::total_cmp);
            let at = |q: f64| sorted.get(((sorted.len() as f64 * q) as usize).min(sorted.len().saturating_sub(1)));
            [at(1.0 / 3.0).copied().unwrap_or(0.0), at(2.0 / 3.0).copied().unwrap_or(0.0)]
        }
    }
}

/// Figures per bucket of predicted life (buckets without points are left out). `unit_of`
/// names each point's unit, so each bucket counts its own units.
pub fn by_bucket(points: &[Scored], unit_of: &[usize], edges: [f64; 2]) -> Vec<BucketAccuracy> {
    let names = ["late", "mid", "early"];
    let bounds = [(f64::NEG_INFINITY, Some(edges[0])), (edges[0], Some(edges[1])), (edges[1], None)];
    let mut out = Vec::new();
    for (name, (from, to)) in names.iter().zip(bounds) {
        let inside = |p: &Scored| p.predicted >= from && to.is_none_or(|t| p.predicted < t);
        let (chosen, mut units): (Vec<Scored>, Vec<usize>) =
            points.iter().zip(unit_of).filter(|(p, _)| inside(p)).map(|(p, u)| (*p, *u)).unzip();
        units.sort_unstable();
        units.dedup();
        if let Some(accuracy) = Accuracy::of(&chosen, units.len()) {
            out.push(BucketAccuracy { bucket: (*name).to_string(), from: from.max(0.0), to, accuracy });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_known_errors_when_scoring_then_figures_match_by_hand() {
        let points = [
            Scored { predicted: 10.0, lower: 5.0, upper: 15.0, actual: 13.0 },
            Scored { predicted: 20.0, lower: 18.0, upper: 22.0, actual: 16.0 },
        ];
        let a = Accuracy::of(&points, 1).unwrap();
        assert_eq!(a.points, 2);
        assert!((a.rmse - 12.5f64.sqrt()).abs() < 1e-12);
        assert_eq!(a.mae, 3.5);
        assert_eq!(a.bias, 0.5);
        assert_eq!(a.coverage, 0.5);
        assert_eq!(a.mean_interval_width, 7.0);
        // Early by 3 (e^(3/13) - 1) and late by 4 (e^(4/10) - 1).
        let score = ((3.0f64 / 13.0).exp() - 1.0 + (0.4f64).exp() - 1.0) / 2.0;
        assert!((a.nasa_score.unwrap() - score).abs() < 1e-12);
        assert!(Accuracy::of(&[], 0).is_none());
    }

    #[test]
    fn given_a_late_and_an_early_miss_of_the_same_size_then_the_late_one_scores_worse() {
        assert!(nasa_score(20.0) > nasa_score(-20.0));
        assert_eq!(nasa_score(0.0), 0.0);
        assert!(nasa_score(1e6).is_finite() && nasa_score(-1e6).is_finite());
    }

    #[test]
    fn given_predictions_across_life_when_bucketing_then_each_bucket_has_its_own_coverage() {
        let p =
            |predicted: f64, actual: f64| Scored { predicted, lower: predicted - 5.0, upper: predicted + 5.0, actual };
        // Late: both covered; mid: one of two; early: none (young units live far longer).
        let points = [p(10.0, 12.0), p(20.0, 18.0), p(60.0, 61.0), p(70.0, 90.0), p(120.0, 200.0)];
        let units = [1, 2, 1, 3, 4];
        let edges = bucket_edges(Some(125.0), &[]);
        assert_eq!(edges, [50.0, 100.0]);
        let buckets = by_bucket(&points, &units, edges);
        let coverage: Vec<(&str, usize, usize, f64)> = buckets
            .iter()
            .map(|b| (b.bucket.as_str(), b.accuracy.points, b.accuracy.units, b.accuracy.coverage))
            .collect();
        assert_eq!(coverage, vec![("late", 2, 2, 1.0), ("mid", 2, 2, 0.5), ("early", 1, 1, 0.0)]);
        assert_eq!((buckets[0].from, buckets[0].to, buckets[2].to), (0.0, Some(50.0), None));
        // Without a cap: terciles of the predictions.
        let edges = bucket_edges(None, &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        assert_eq!(edges, [3.0, 5.0]);
    }
}
