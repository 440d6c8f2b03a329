//! Features from a unit's recent history, computed the same way for training and scoring.
//!
//! For every kept input column and every row: the current value; the level (mean),
//! variability (standard deviation) and trend (least-squares slope against time) over a
//! few trailing time windows; and the drift of the shortest window's level from the
//! unit's own baseline (its first rows). One more feature is the unit's age (time since
//! its origin). Every feature of a row uses only that row and earlier rows of the same
//! unit, so a prediction on a history cut at row `k` equals the prediction at row `k` of
//! the full history: training, validation and scoring share one code path.
//!
//! Missing values (`NaN`) are skipped inside windows; a feature with nothing to summarise
//! is `NaN`, which the trees route down their learned missing branch. Columns that were
//! constant or entirely missing in training carry no information and are dropped, and the
//! model records which.

use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::table::{HistoryTable, UnitHistory};

/// At most this many trailing windows.
pub const MAX_WINDOWS: usize = 8;
/// At most this many feature values (rows × derived features) in memory at once: 800 MB.
pub const MAX_FEATURE_CELLS: usize = 100_000_000;

/// Which windows the features summarise, in the table's time unit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureConfig {
    /// Trailing window lengths: a window of length `w` at time `t` holds the rows with
    /// time in `(t - w, t]`. For consecutive integer cycles, `w` rows.
    pub windows: Vec<f64>,
    /// The baseline of a unit is the mean of its rows in its first `baseline_window`
    /// time units (from its first row).
    pub baseline_window: f64,
}

impl Default for FeatureConfig {
    /// Windows suited to one row per operating cycle (C-MAPSS); for hourly factory
    /// aggregates indexed in days, something like `[0.25, 1.0, 3.0, 7.0]` fits.
    fn default() -> Self {
        FeatureConfig { windows: vec![5.0, 10.0, 20.0, 30.0], baseline_window: 20.0 }
    }
}

impl FeatureConfig {
    /// The longest trailing window. The features of a row use only the rows this recent and
    /// the unit's baseline rows (its first `baseline_window`), so a scorer may leave out
    /// every row in between and get the same features.
    pub fn longest_window(&self) -> f64 {
        self.windows.iter().copied().fold(0.0, f64::max)
    }

    /// Checks the windows: 1 to [`MAX_WINDOWS`] of them, finite, positive, distinct.
    pub fn validate(&self) -> Result<(), Error> {
        let invalid = |reason: String| Error::InvalidOption { name: "features.windows", reason };
        if self.windows.is_empty() || self.windows.len() > MAX_WINDOWS {
            return Err(invalid(format!("give 1 to {MAX_WINDOWS} windows, not {}", self.windows.len())));
        }
        if let Some(w) = self.windows.iter().find(|w| !(w.is_finite() && **w > 0.0)) {
            return Err(invalid(format!("{w} is not a positive finite length")));
        }
        if !self.windows.windows(2).all(|p| p[0] < p[1]) {
            return Err(invalid("windows must be in increasing order without repeats".into()));
        }
        if !(self.baseline_window.is_finite() && self.baseline_window > 0.0) {
            return Err(Error::InvalidOption {
                name: "features.baseline_window",
                reason: format!("{} is not a positive finite length", self.baseline_window),
            });
        }
        Ok(())
    }
}

/// Why a column was left out of the features.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DropReason {
    /// Every value seen in training was the same.
    Constant,
    /// No value was seen in training.
    AllMissing,
}

/// A column the model expects in its input but does not use.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DroppedColumn {
    pub name: String,
    pub reason: DropReason,
}

/// The model's view of its input: which columns it expects, which it uses, and the names of
/// the features it derives from them, in the order the trees see them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureSet {
    /// Every input column, in training order. Scoring input must have exactly these
    /// (in any order).
    pub columns: Vec<String>,
    /// Columns present in the input but not used.
    pub dropped: Vec<DroppedColumn>,
    /// The windows.
    pub config: FeatureConfig,
    /// Derived feature names, in model order.
    pub features: Vec<String>,
}

/// Derived features, column-major as the trees want them, with where each row came from.
#[derive(Debug, Clone)]
pub(crate) struct FeatureMatrix {
    /// `features × rows`, column-major.
    pub data: Vec<f64>,
    pub rows: usize,
    pub cols: usize,
    /// For each row: (unit index in the table, row index within the unit).
    pub origin: Vec<(usize, usize)>,
}

impl FeatureMatrix {
    /// The chosen rows, in the order given.
    pub(crate) fn take(&self, rows: &[usize]) -> FeatureMatrix {
        let n = rows.len();
        let mut data = Vec::with_capacity(n * self.cols);
        for f in 0..self.cols {
            let column = &self.data[f * self.rows..(f + 1) * self.rows];
            data.extend(rows.iter().map(|&r| column[r]));
        }
        FeatureMatrix { data, rows: n, cols: self.cols, origin: rows.iter().map(|&r| self.origin[r]).collect() }
    }
}

/// Which rows of each unit to produce features for.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Rows {
    Every,
    Last,
    /// Every k-th row counting back from the last (k ≥ 1).
    Stride(usize),
    /// Every row within this much time of the last one.
    Recent(f64),
}

impl Rows {
    fn selects(self, row: usize, times: &[f64]) -> bool {
        let len = times.len();
        match self {
            Rows::Every => true,
            Rows::Last => row + 1 == len,
            Rows::Stride(k) => (len - 1 - row).is_multiple_of(k.max(1)),
            Rows::Recent(span) => times.last().is_some_and(|&last| times[row] >= last - span),
        }
    }
}

impl FeatureSet {
    /// Looks at training histories: drops constant and all-missing columns and names the
    /// derived features.
    pub(crate) fn fit(table: &HistoryTable, config: FeatureConfig) -> Result<FeatureSet, Error> {
        config.validate()?;
        let mut dropped = Vec::new();
        for (c, name) in table.columns().iter().enumerate() {
            let mut first: Option<f64> = None;
            let mut varies = false;
            'units: for unit in table.units() {
                for r in 0..unit.len() {
                    let v = unit.row(r)[c];
                    if v.is_nan() {
                        continue;
                    }
                    match first {
                        None => first = Some(v),
                        Some(f) if f != v => {
                            varies = true;
                            break 'units;
                        }
                        Some(_) => {}
                    }
                }
            }
            if !varies {
                dropped.push(DroppedColumn {
                    name: name.clone(),
                    reason: if first.is_some() { DropReason::Constant } else { DropReason::AllMissing },
                });
            }
        }
        let mut set = FeatureSet { columns: table.columns().to_vec(), dropped, config, features: Vec::new() };
        set.features = set.derived_names();
        Ok(set)
    }

    /// The columns the features are computed from, in order.
    pub fn kept(&self) -> impl Iterator<Item = &String> {
        self.columns.iter().filter(|c| !self.dropped.iter().any(|d| &d.name == *c))
    }

    /// The feature names implied by the kept columns and the windows.
    pub(crate) fn derived_names(&self) -> Vec<String> {
        let mut names = vec!["age".to_string()];
        for c in self.kept() {
            names.push(format!("{c}.last"));
            for stat in ["mean", "std", "slope"] {
                for w in &self.config.windows {
                    names.push(format!("{c}.{stat}_{w}"));
                }
            }
            names.push(format!("{c}.drift"));
        }
        names
    }

    /// Checks that a table has exactly the model's columns and returns, for each kept
    /// column, its position in the table.
    pub(crate) fn bind(&self, columns: &[String]) -> Result<Vec<usize>, Error> {
        let missing: Vec<&str> = self.columns.iter().filter(|c| !columns.contains(c)).map(String::as_str).collect();
        let unexpected: Vec<&str> = columns.iter().filter(|c| !self.columns.contains(c)).map(String::as_str).collect();
        if !missing.is_empty() || !unexpected.is_empty() {
            return Err(Error::FeatureSetMismatch {
                expected: self.columns.join(", "),
                missing: missing.join(", "),
                unexpected: unexpected.join(", "),
            });
        }
        // Every kept column is an expected column, and all of those are present.
        Ok(self.kept().filter_map(|k| columns.iter().position(|c| c == k)).collect())
    }

    /// Features for the chosen rows of every unit.
    pub(crate) fn matrix(&self, table: &HistoryTable, rows: Rows) -> Result<FeatureMatrix, Error> {
        let bound = self.bind(table.columns())?;
        let origin: Vec<(usize, usize)> = table
            .units()
            .iter()
            .enumerate()
            .flat_map(|(u, unit)| {
                let times = unit.times();
                (0..unit.len()).filter(move |&r| rows.selects(r, times)).map(move |r| (u, r))
            })
            .collect();
        let n = origin.len();
        let cols = self.features.len();
        if n.saturating_mul(cols) > MAX_FEATURE_CELLS {
            return Err(Error::TooManyFeatureCells { rows: n, features: cols, max: MAX_FEATURE_CELLS });
        }
        let mut data = vec![f64::NAN; n * cols];
        let mut out_row = 0;
        for unit in table.units() {
            let len = unit.len();
            // Output row of each selected row of this unit.
            let mut slot = vec![usize::MAX; len];
            let mut count = 0;
            for (r, s) in slot.iter_mut().enumerate() {
                if rows.selects(r, unit.times()) {
                    *s = out_row + count;
                    count += 1;
                }
            }
            if count == 0 {
                continue;
            }
            let mut put = |feature: usize, r: usize, value: f64| {
                if let Some(&at) = slot.get(r).filter(|&&at| at != usize::MAX) {
                    data[feature * n + at] = if value.is_finite() { value } else { f64::NAN };
                }
            };
            unit_features(unit, &bound, &self.config, &mut put);
            out_row += count;
        }
        Ok(FeatureMatrix { data, rows: n, cols, origin })
    }
}

/// Running sums over the finite values of one column of one unit, as prefix sums, so any
/// window's count, mean, variance and slope cost O(1). Values and times are shifted by the
/// unit's first value and time to keep the sums small and the subtractions exact enough.
struct Prefix {
    n: Vec<f64>,
    x: Vec<f64>,
    xx: Vec<f64>,
    t: Vec<f64>,
    tt: Vec<f64>,
    tx: Vec<f64>,
}

impl Prefix {
    fn new(times: &[f64], values: impl Iterator<Item = f64>, x0: f64) -> Prefix {
        let len = times.len() + 1;
        let mut p = Prefix {
            n: Vec::with_capacity(len),
            x: Vec::with_capacity(len),
            xx: Vec::with_capacity(len),
            t: Vec::with_capacity(len),
            tt: Vec::with_capacity(len),
            tx: Vec::with_capacity(len),
        };
        let t0 = times.first().copied().unwrap_or(0.0);
        let mut acc = [0.0f64; 6];
        p.push(acc);
        for (&time, v) in times.iter().zip(values) {
            if !v.is_nan() {
                let x = v - x0;
                let t = time - t0;
                acc[0] += 1.0;
                acc[1] += x;
                acc[2] += x * x;
                acc[3] += t;
                acc[4] += t * t;
                acc[5] += t * x;
            }
            p.push(acc);
        }
        p
    }

    fn push(&mut self, a: [f64; 6]) {
        self.n.push(a[0]);
        self.x.push(a[1]);
        self.xx.push(a[2]);
        self.t.push(a[3]);
        self.tt.push(a[4]);
        self.tx.push(a[5]);
    }

    /// (count, mean, std, slope) over rows `lo..hi`, mean relative to the shift.
    fn window(&self, lo: usize, hi: usize) -> (f64, f64, f64, f64) {
        let n = self.n[hi] - self.n[lo];
        if n < 0.5 {
            return (0.0, f64::NAN, f64::NAN, f64::NAN);
        }
        let sx = self.x[hi] - self.x[lo];
        let mean = sx / n;
        if n < 1.5 {
            return (n, mean, f64::NAN, f64::NAN);
        }
        let sxx = self.xx[hi] - self.xx[lo];
        let var = ((sxx - sx * mean) / (n - 1.0)).max(0.0);
        let st = self.t[hi] - self.t[lo];
        let stt = self.tt[hi] - self.tt[lo];
        let stx = self.tx[hi] - self.tx[lo];
        let denom = n * stt - st * st;
        let slope =
            if denom > 1e-12 * (n * stt).abs().max(f64::MIN_POSITIVE) { (n * stx - st * sx) / denom } else { f64::NAN };
        (n, mean, var.sqrt(), slope)
    }
}

/// Computes every feature of every row of one unit and hands each to `put(feature, row, value)`.
fn unit_features(
    unit: &UnitHistory,
    columns: &[usize],
    config: &FeatureConfig,
    put: &mut impl FnMut(usize, usize, f64),
) {
    let times = unit.times();
    let len = times.len();
    let Some(&t_first) = times.first() else {
        return;
    };
    for (r, &t) in times.iter().enumerate() {
        put(0, r, unit.origin().map_or(f64::NAN, |origin| t - origin));
    }
    // For each window, the first row inside it, per row: two pointers, O(len). A row is
    // always inside its own window, even where `t - w` rounds to `t` (a cycle near 1e300).
    let starts: Vec<Vec<usize>> = config
        .windows
        .iter()
        .map(|&w| {
            let mut lo = 0;
            times
                .iter()
                .enumerate()
                .map(|(r, &t)| {
                    while lo < r && times[lo] <= t - w {
                        lo += 1;
                    }
                    lo
                })
                .collect()
        })
        .collect();
    let baseline_end = times.partition_point(|&t| t - t_first < config.baseline_window);
    let windows = config.windows.len();
    let per_column = 2 + 3 * windows;
    for (k, &c) in columns.iter().enumerate() {
        let base = 1 + k * per_column;
        let column = || (0..len).map(|r| unit.row(r)[c]);
        let x0 = column().find(|v| !v.is_nan()).unwrap_or(0.0);
        let prefix = Prefix::new(times, column(), x0);
        for r in 0..len {
            put(base, r, unit.row(r)[c]);
            let mut shortest_mean = f64::NAN;
            for (i, lo) in starts.iter().enumerate() {
                let (_, mean, std, slope) = prefix.window(lo[r], r + 1);
                if i == 0 {
                    shortest_mean = mean;
                }
                put(base + 1 + i, r, mean + x0);
                put(base + 1 + windows + i, r, std);
                put(base + 1 + 2 * windows + i, r, slope);
            }
            let (_, baseline, _, _) = prefix.window(0, baseline_end.min(r + 1));
            put(base + 1 + 3 * windows, r, shortest_mean - baseline);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(rows: &[(f64, [f64; 3])]) -> HistoryTable {
        let mut t = HistoryTable::new(vec!["flat".into(), "ramp".into(), "gappy".into()]).unwrap();
        t.start_unit("u", 0.0).unwrap();
        for (time, values) in rows {
            t.push_row("u", *time, values).unwrap();
        }
        t
    }

    fn config() -> FeatureConfig {
        FeatureConfig { windows: vec![2.0, 4.0], baseline_window: 2.0 }
    }

    fn feature(set: &FeatureSet, m: &FeatureMatrix, name: &str, row: usize) -> f64 {
        let f = set.features.iter().position(|n| n == name).unwrap();
        m.data[f * m.rows + row]
    }

    #[test]
    fn given_a_constant_column_when_fitting_then_it_is_dropped_and_recorded() {
        let t = table(&[(1.0, [5.0, 1.0, f64::NAN]), (2.0, [5.0, 2.0, f64::NAN])]);
        let set = FeatureSet::fit(&t, config()).unwrap();
        assert_eq!(
            set.dropped,
            vec![
                DroppedColumn { name: "flat".into(), reason: DropReason::Constant },
                DroppedColumn { name: "gappy".into(), reason: DropReason::AllMissing },
            ]
        );
        assert_eq!(set.kept().collect::<Vec<_>>(), vec!["ramp"]);
        assert_eq!(set.features.len(), 1 + 2 + 3 * 2);
        assert_eq!(set.features[0], "age");
        assert!(set.features.contains(&"ramp.slope_4".to_string()));
    }

    #[test]
    fn given_a_linear_ramp_when_computing_features_then_levels_slopes_and_drift_are_exact() {
        // ramp = 2 * time; rows at times 1..=5.
        let rows: Vec<(f64, [f64; 3])> = (1..=5).map(|t| (t as f64, [1.0, 2.0 * t as f64, t as f64])).collect();
        let t = table(&rows);
        let set = FeatureSet::fit(&t, config()).unwrap();
        let m = set.matrix(&t, Rows::Every).unwrap();
        assert_eq!(m.rows, 5);
        // Row 4 (time 5): window 2 holds times 4, 5; window 4 holds times 2..=5.
        assert_eq!(feature(&set, &m, "age", 4), 5.0);
        assert_eq!(feature(&set, &m, "ramp.last", 4), 10.0);
        assert_eq!(feature(&set, &m, "ramp.mean_2", 4), 9.0);
        assert_eq!(feature(&set, &m, "ramp.mean_4", 4), 7.0);
        assert!((feature(&set, &m, "ramp.slope_4", 4) - 2.0).abs() < 1e-12);
        assert!((feature(&set, &m, "ramp.std_2", 4) - 2f64.sqrt()).abs() < 1e-12);
        // Baseline = mean of times 1, 2 = 3; drift = 9 - 3.
        assert_eq!(feature(&set, &m, "ramp.drift", 4), 6.0);
        // One row: a mean but no spread or trend.
        assert_eq!(feature(&set, &m, "ramp.mean_2", 0), 2.0);
        assert!(feature(&set, &m, "ramp.std_2", 0).is_nan());
        assert!(feature(&set, &m, "ramp.slope_2", 0).is_nan());
    }

    #[test]
    fn given_missing_values_when_computing_features_then_windows_skip_them() {
        let t = table(&[
            (1.0, [1.0, 1.0, 1.0]),
            (2.0, [2.0, f64::NAN, f64::NAN]),
            (3.0, [3.0, 3.0, f64::NAN]),
            (4.0, [4.0, 4.0, 5.0]),
        ]);
        let set = FeatureSet::fit(&t, config()).unwrap();
        let m = set.matrix(&t, Rows::Every).unwrap();
        assert_eq!(feature(&set, &m, "ramp.mean_4", 2), 2.0);
        assert!(feature(&set, &m, "ramp.last", 1).is_nan());
        assert!(feature(&set, &m, "gappy.mean_2", 2).is_nan());
        assert_eq!(feature(&set, &m, "gappy.mean_4", 2), 1.0);
    }

    #[test]
    fn given_a_cut_history_when_computing_its_last_row_then_it_equals_the_full_history_row() {
        let rows: Vec<(f64, [f64; 3])> = (1..=30)
            .map(|t| {
                let t = t as f64;
                (t, [t.sin(), (t * 0.7).cos() * t, if t as i64 % 4 == 0 { f64::NAN } else { t }])
            })
            .collect();
        let full = table(&rows);
        let set = FeatureSet::fit(&full, config()).unwrap();
        let every = set.matrix(&full, Rows::Every).unwrap();
        for cut in [1, 2, 7, 19, 30] {
            let part = table(&rows[..cut]);
            let last = set.matrix(&part, Rows::Last).unwrap();
            assert_eq!(last.rows, 1);
            for f in 0..set.features.len() {
                let a = every.data[f * every.rows + cut - 1];
                let b = last.data[f];
                assert!(a == b || (a.is_nan() && b.is_nan()), "{} at {cut}", set.features[f]);
            }
        }
    }

    #[test]
    fn given_a_stride_when_computing_then_every_kth_row_back_from_the_last_is_kept() {
        let rows: Vec<(f64, [f64; 3])> = (1..=7).map(|t| (t as f64, [t as f64, 2.0 * t as f64, 1.0])).collect();
        let t = table(&rows);
        let set = FeatureSet::fit(&t, config()).unwrap();
        let every = set.matrix(&t, Rows::Every).unwrap();
        let strided = set.matrix(&t, Rows::Stride(3)).unwrap();
        assert_eq!(strided.origin, vec![(0, 0), (0, 3), (0, 6)]);
        for (i, &(_, r)) in strided.origin.iter().enumerate() {
            for f in 0..set.features.len() {
                let a = every.data[f * every.rows + r];
                let b = strided.data[f * strided.rows + i];
                assert!(a == b || (a.is_nan() && b.is_nan()));
            }
        }
    }

    #[test]
    fn given_extreme_values_when_computing_then_features_are_finite_or_missing() {
        let t = table(&[(1.0, [1e300, -1e300, 1.0]), (2.0, [-1e300, 1e300, 2.0])]);
        let set = FeatureSet::fit(&t, config()).unwrap();
        let m = set.matrix(&t, Rows::Every).unwrap();
        assert!(m.data.iter().all(|v| v.is_finite() || v.is_nan()));
    }

    #[test]
    fn given_more_feature_values_than_memory_allows_when_computing_then_it_is_refused() {
        let columns: Vec<String> = (0..crate::table::MAX_COLUMNS).map(|c| format!("c{c}")).collect();
        let mut t = HistoryTable::new(columns).unwrap();
        t.start_unit("u", 0.0).unwrap();
        let config = FeatureConfig { windows: (1..=MAX_WINDOWS).map(|w| w as f64).collect(), baseline_window: 1.0 };
        let per_row = crate::table::MAX_COLUMNS * (2 + 3 * MAX_WINDOWS) + 1;
        for r in 0..=MAX_FEATURE_CELLS / per_row {
            t.push_row("u", r as f64, &vec![r as f64; crate::table::MAX_COLUMNS]).unwrap();
        }
        let set = FeatureSet::fit(&t, config).unwrap();
        assert_eq!(set.features.len(), per_row);
        assert!(matches!(set.matrix(&t, Rows::Every), Err(Error::TooManyFeatureCells { .. })));
    }

    #[test]
    fn given_other_columns_when_binding_then_the_mismatch_is_named() {
        let t = table(&[(1.0, [1.0, 2.0, 3.0]), (2.0, [1.0, 3.0, 4.0])]);
        let set = FeatureSet::fit(&t, config()).unwrap();
        let err = set.bind(&["ramp".into(), "gappy".into(), "extra".into()]).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("lacks [flat]") && text.contains("unexpected [extra]"), "{text}");
        let order = set.bind(&["gappy".into(), "flat".into(), "ramp".into()]).unwrap();
        assert_eq!(order, vec![2, 0]);
    }

    #[test]
    fn given_bad_windows_when_validating_then_they_are_refused() {
        for windows in [vec![], vec![0.0], vec![f64::NAN], vec![3.0, 2.0], vec![1.0; 9]] {
            let c = FeatureConfig { windows, baseline_window: 1.0 };
            assert!(matches!(c.validate(), Err(Error::InvalidOption { .. })));
        }
        let c = FeatureConfig { windows: vec![1.0], baseline_window: -1.0 };
        assert!(c.validate().is_err());
    }

    #[test]
    fn given_a_cycle_so_large_that_its_window_rounds_away_when_computing_then_each_row_keeps_itself() {
        // 1e300 - 2.0 == 1e300: the window (t - w, t] is empty in floating point.
        let t = table(&[(1.0, [5.0, 1.0, 0.0]), (2.0, [5.0, 2.0, 1.0]), (1e300, [5.0, 3.0, 2.0])]);
        let set = FeatureSet::fit(&t, config()).unwrap();
        let m = set.matrix(&t, Rows::Every).unwrap();
        assert_eq!(feature(&set, &m, "ramp.last", 2), 3.0);
        assert_eq!(feature(&set, &m, "ramp.mean_2", 2), 3.0);
        assert_eq!(feature(&set, &m, "ramp.mean_4", 2), 3.0);
    }
}
