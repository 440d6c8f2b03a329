//! Accuracy and interval figures for a set of predictions with known outcomes.

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
        for p in points {
            let e = p.predicted - p.actual;
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
        })
    }
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
        assert!(Accuracy::of(&[], 0).is_none());
    }
}
