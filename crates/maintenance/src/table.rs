//! Unit histories: the one input shape for training and scoring (unit, time, feature columns).
//!
//! A unit is whatever wears out and is serviced: a turbofan engine in C-MAPSS, a machine
//! on the factory floor. Its history is a sequence of rows with a strictly increasing time
//! index (cycles, hours, days: any unit, used consistently) and one value per feature
//! column; a missing value is `NaN`. The *origin* of a unit is the time at which it was new
//! or last serviced, so `time - origin` is its age; when history begins before the last
//! service was recorded, the origin is unknown and so is the age. Training needs, per unit,
//! how its run ended: in a failure, or censored (serviced or still running) at a known time.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Location};

/// At most this many feature columns in one table.
pub const MAX_COLUMNS: usize = 1_024;
/// At most this many rows in one table (all units together).
pub const MAX_ROWS: usize = 5_000_000;
/// At most this many bytes in a unit id.
pub const MAX_UNIT_ID_BYTES: usize = 256;

/// The history of one unit since its origin.
#[derive(Debug, Clone, PartialEq)]
pub struct UnitHistory {
    id: String,
    origin: Option<f64>,
    times: Vec<f64>,
    /// Row-major: `times.len()` rows of `width` values.
    values: Vec<f64>,
    width: usize,
}

impl UnitHistory {
    /// The unit's id as given (`"7"`, `"P1-L03-M042"`).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The time at which the unit was new or last serviced, when known.
    pub fn origin(&self) -> Option<f64> {
        self.origin
    }

    /// The time index of every row, strictly increasing.
    pub fn times(&self) -> &[f64] {
        &self.times
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.times.len()
    }

    /// True when the unit has no rows yet.
    pub fn is_empty(&self) -> bool {
        self.times.is_empty()
    }

    /// The values of row `row`, one per table column; `NaN` where missing.
    pub fn row(&self, row: usize) -> &[f64] {
        &self.values[row * self.width..(row + 1) * self.width]
    }

    /// The time of the last row, if any.
    pub fn last_time(&self) -> Option<f64> {
        self.times.last().copied()
    }

    /// The same unit cut after its first `rows` rows (all rows if `rows` is larger).
    pub fn truncated(&self, rows: usize) -> UnitHistory {
        let rows = rows.min(self.len());
        UnitHistory {
            id: self.id.clone(),
            origin: self.origin,
            times: self.times[..rows].to_vec(),
            values: self.values[..rows * self.width].to_vec(),
            width: self.width,
        }
    }
}

/// A table of unit histories sharing one set of named feature columns.
///
/// Build it with [`HistoryTable::start_unit`] and [`HistoryTable::push_row`]; every row is
/// checked as it arrives (width, finite time strictly after the unit's previous row, values
/// finite or `NaN`), so a table that exists is well-formed.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryTable {
    columns: Vec<String>,
    units: Vec<UnitHistory>,
    index: HashMap<String, usize>,
    rows: usize,
    max_rows: usize,
}

/// Why a row was refused; the caller adds where it came from.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum RowProblem {
    UnknownUnit,
    Width { found: usize },
    TimeNotFinite,
    ValueNotFinite { column: usize },
    DuplicateTime,
    DecreasingTime { previous: f64 },
    TooManyRows,
}

impl HistoryTable {
    /// An empty table with these feature columns (names unique and non-empty), holding at
    /// most [`MAX_ROWS`] rows.
    pub fn new(columns: Vec<String>) -> Result<Self, Error> {
        Self::with_row_limit(columns, MAX_ROWS)
    }

    /// An empty table that refuses rows beyond `max_rows` (at most [`MAX_ROWS`]).
    pub fn with_row_limit(columns: Vec<String>, max_rows: usize) -> Result<Self, Error> {
        if columns.is_empty() {
            return Err(Error::NoFeatureColumns);
        }
        if columns.len() > MAX_COLUMNS {
            return Err(Error::TooManyColumns { found: columns.len(), max: MAX_COLUMNS });
        }
        let mut seen = HashMap::new();
        for (position, name) in columns.iter().enumerate() {
            if name.trim().is_empty() {
                return Err(Error::EmptyColumnName { position: position + 1 });
            }
            if seen.insert(name.as_str(), position).is_some() {
                return Err(Error::DuplicateColumn { name: name.clone() });
            }
        }
        Ok(HistoryTable {
            columns,
            units: Vec::new(),
            index: HashMap::new(),
            rows: 0,
            max_rows: max_rows.min(MAX_ROWS),
        })
    }

    /// The feature column names, in table order.
    pub fn columns(&self) -> &[String] {
        &self.columns
    }

    /// The units, in the order they were started.
    pub fn units(&self) -> &[UnitHistory] {
        &self.units
    }

    /// The unit with this id.
    pub fn unit(&self, id: &str) -> Option<&UnitHistory> {
        self.index.get(id).map(|&i| &self.units[i])
    }

    /// Total number of rows over all units.
    pub fn row_count(&self) -> usize {
        self.rows
    }

    /// Starts a unit whose age is counted from `origin` (when it was new or last serviced).
    pub fn start_unit(&mut self, id: &str, origin: f64) -> Result<(), Error> {
        self.start_unit_with(id, Some(origin))
    }

    /// Starts a unit whose origin may be unknown (its history begins before any recorded
    /// service): its age is then missing, like any other missing value.
    pub fn start_unit_with(&mut self, id: &str, origin: Option<f64>) -> Result<(), Error> {
        if id.trim().is_empty() {
            return Err(Error::EmptyUnitId);
        }
        if id.len() > MAX_UNIT_ID_BYTES {
            return Err(Error::InvalidOption {
                name: "unit",
                reason: format!("unit ids are at most {MAX_UNIT_ID_BYTES} bytes"),
            });
        }
        if let Some(origin) = origin.filter(|o| !o.is_finite()) {
            return Err(Error::InvalidOption {
                name: "origin",
                reason: format!("unit `{id}`: {origin} is not a finite time"),
            });
        }
        if self.index.contains_key(id) {
            return Err(Error::DuplicateUnit { unit: id.into() });
        }
        self.index.insert(id.to_string(), self.units.len());
        self.units.push(UnitHistory {
            id: id.to_string(),
            origin,
            times: Vec::new(),
            values: Vec::new(),
            width: self.columns.len(),
        });
        Ok(())
    }

    /// Whether a unit with this id has been started.
    pub fn has_unit(&self, id: &str) -> bool {
        self.index.contains_key(id)
    }

    /// Appends one row to a started unit: its time and one value per column (`NaN` = missing).
    pub fn push_row(&mut self, unit: &str, time: f64, values: &[f64]) -> Result<(), Error> {
        let row = self.unit(unit).map_or(0, UnitHistory::len) + 1;
        self.try_push_row(unit, time, values)
            .map_err(|problem| self.describe(problem, unit, time, values, Location::UnitRow(row), "time"))
    }

    pub(crate) fn try_push_row(&mut self, unit: &str, time: f64, values: &[f64]) -> Result<(), RowProblem> {
        let &i = self.index.get(unit).ok_or(RowProblem::UnknownUnit)?;
        if values.len() != self.columns.len() {
            return Err(RowProblem::Width { found: values.len() });
        }
        if !time.is_finite() {
            return Err(RowProblem::TimeNotFinite);
        }
        if let Some(column) = values.iter().position(|v| v.is_infinite()) {
            return Err(RowProblem::ValueNotFinite { column });
        }
        let history = &mut self.units[i];
        if let Some(previous) = history.last_time() {
            if time == previous {
                return Err(RowProblem::DuplicateTime);
            }
            if time < previous {
                return Err(RowProblem::DecreasingTime { previous });
            }
        }
        if self.rows >= self.max_rows {
            return Err(RowProblem::TooManyRows);
        }
        history.times.push(time);
        history.values.extend_from_slice(values);
        self.rows += 1;
        Ok(())
    }

    pub(crate) fn describe(
        &self,
        problem: RowProblem,
        unit: &str,
        time: f64,
        values: &[f64],
        at: Location,
        time_column: &str,
    ) -> Error {
        match problem {
            RowProblem::UnknownUnit => Error::UnknownUnit { unit: unit.into() },
            RowProblem::Width { found } => Error::RowWidth { unit: unit.into(), expected: self.columns.len(), found },
            RowProblem::TimeNotFinite => Error::NotFinite { at, column: time_column.into(), value: time.to_string() },
            RowProblem::ValueNotFinite { column } => {
                Error::NotFinite { at, column: self.columns[column].clone(), value: values[column].to_string() }
            }
            RowProblem::DuplicateTime => {
                Error::DuplicateTime { at, unit: unit.into(), column: time_column.into(), time }
            }
            RowProblem::DecreasingTime { previous } => {
                Error::DecreasingTime { at, unit: unit.into(), column: time_column.into(), time, previous }
            }
            RowProblem::TooManyRows => Error::TooManyRows { max: self.max_rows },
        }
    }

    /// Checks that every unit has at least one row.
    pub fn check_non_empty(&self) -> Result<(), Error> {
        if self.units.is_empty() {
            return Err(Error::NoRows);
        }
        match self.units.iter().find(|u| u.is_empty()) {
            Some(u) => Err(Error::UnitWithoutRows { unit: u.id.clone() }),
            None => Ok(()),
        }
    }

    /// A table with the same columns holding only the units for which `keep` is true,
    /// each cut to the number of rows `rows` returns for it.
    pub(crate) fn select(&self, mut keep: impl FnMut(&UnitHistory) -> Option<usize>) -> HistoryTable {
        let mut out = HistoryTable {
            columns: self.columns.clone(),
            units: Vec::new(),
            index: HashMap::new(),
            rows: 0,
            max_rows: self.max_rows,
        };
        for unit in &self.units {
            if let Some(rows) = keep(unit) {
                let cut = unit.truncated(rows);
                out.rows += cut.len();
                out.index.insert(cut.id.clone(), out.units.len());
                out.units.push(cut);
            }
        }
        out
    }
}

/// How a unit's run ended, in the table's time unit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RunEnd {
    /// The unit failed at this time: the remaining useful life of a row is `at - time`.
    Failed { at: f64 },
    /// The unit was serviced, or observation stopped, at this time without a failure: a row
    /// only says the remaining life was more than `at - time`.
    Censored { at: f64 },
}

impl RunEnd {
    /// The time at which the run ended.
    pub fn at(&self) -> f64 {
        match *self {
            RunEnd::Failed { at } | RunEnd::Censored { at } => at,
        }
    }

    /// The true remaining life of a row at `time`, uncapped: exact for a failed run; for a
    /// censored run only a lower bound (the unit was still working at the run's end).
    pub fn remaining(&self, time: f64) -> RemainingLife {
        match *self {
            RunEnd::Failed { at } => RemainingLife { value: at - time, censored: false },
            RunEnd::Censored { at } => RemainingLife { value: at - time, censored: true },
        }
    }

    /// The training label of a row at `time`, or `None` when the row's remaining life is
    /// not known well enough: for a censored run, a row is labelled only when the run lasted
    /// at least `cap` beyond it, because the capped target is then exactly `cap`.
    pub fn label(&self, time: f64, cap: Option<f64>) -> Option<f64> {
        match (*self, cap) {
            (RunEnd::Failed { at }, None) => Some(at - time),
            (RunEnd::Failed { at }, Some(cap)) => Some((at - time).min(cap)),
            (RunEnd::Censored { at }, Some(cap)) if at - time >= cap => Some(cap),
            (RunEnd::Censored { .. }, _) => None,
        }
    }
}

/// The true remaining life of a row as far as it is known: `value` exactly, or — when the
/// run was `censored` (serviced, or still running) — more than `value`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RemainingLife {
    pub value: f64,
    pub censored: bool,
}

/// Unit histories together with how each run ended: what training needs.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainingSet {
    table: HistoryTable,
    ends: Vec<RunEnd>,
}

impl TrainingSet {
    /// Run-to-failure data: every unit failed at its last row.
    pub fn run_to_failure(table: HistoryTable) -> Result<Self, Error> {
        table.check_non_empty()?;
        let ends = table.units.iter().map(|u| RunEnd::Failed { at: u.last_time().unwrap_or(0.0) }).collect();
        Ok(TrainingSet { table, ends })
    }

    /// Histories with an explicit end per unit id; every unit needs one, at or after its
    /// last row.
    pub fn new(table: HistoryTable, ends: &HashMap<String, RunEnd>) -> Result<Self, Error> {
        table.check_non_empty()?;
        let mut out = Vec::with_capacity(table.units.len());
        for unit in &table.units {
            let end = *ends.get(&unit.id).ok_or_else(|| Error::MissingRunEnd { unit: unit.id.clone() })?;
            let last = unit.last_time().unwrap_or(f64::NEG_INFINITY);
            if !end.at().is_finite() {
                return Err(Error::InvalidOption {
                    name: "run_end",
                    reason: format!("unit `{}`: {} is not a finite time", unit.id, end.at()),
                });
            }
            if end.at() < last {
                return Err(Error::EndBeforeLastRow { unit: unit.id.clone(), end: end.at(), last });
            }
            out.push(end);
        }
        Ok(TrainingSet { table, ends: out })
    }

    /// The histories.
    pub fn table(&self) -> &HistoryTable {
        &self.table
    }

    /// How each unit's run ended, aligned with `table().units()`.
    pub fn ends(&self) -> &[RunEnd] {
        &self.ends
    }

    pub(crate) fn subset(&self, units: &[usize]) -> TrainingSet {
        let mut wanted = vec![false; self.table.units.len()];
        for &u in units {
            wanted[u] = true;
        }
        let mut i = 0;
        let table = self.table.select(|unit| {
            let keep = wanted[i];
            i += 1;
            keep.then_some(unit.len())
        });
        let ends = units_in_order(&wanted).map(|u| self.ends[u]).collect();
        TrainingSet { table, ends }
    }
}

fn units_in_order(wanted: &[bool]) -> impl Iterator<Item = usize> + '_ {
    wanted.iter().enumerate().filter_map(|(i, &w)| w.then_some(i))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> HistoryTable {
        let mut t = HistoryTable::new(vec!["a".into(), "b".into()]).unwrap();
        t.start_unit("m1", 0.0).unwrap();
        t
    }

    #[test]
    fn given_rows_in_order_when_pushed_then_they_are_kept() {
        let mut t = table();
        t.push_row("m1", 1.0, &[1.0, f64::NAN]).unwrap();
        t.push_row("m1", 2.5, &[2.0, 3.0]).unwrap();
        let u = t.unit("m1").unwrap();
        assert_eq!(u.times(), &[1.0, 2.5]);
        assert_eq!(u.row(1), &[2.0, 3.0]);
        assert!(u.row(0)[1].is_nan());
        assert_eq!(t.row_count(), 2);
    }

    #[test]
    fn given_a_repeated_time_when_pushed_then_it_is_refused_with_its_row() {
        let mut t = table();
        t.push_row("m1", 1.0, &[1.0, 1.0]).unwrap();
        let err = t.push_row("m1", 1.0, &[1.0, 1.0]).unwrap_err();
        assert!(matches!(err, Error::DuplicateTime { at: Location::UnitRow(2), .. }), "{err}");
        let err = t.push_row("m1", 0.5, &[1.0, 1.0]).unwrap_err();
        assert!(matches!(err, Error::DecreasingTime { previous, .. } if previous == 1.0));
    }

    #[test]
    fn given_bad_rows_when_pushed_then_each_is_refused() {
        let mut t = table();
        assert!(matches!(t.push_row("m2", 1.0, &[1.0, 1.0]), Err(Error::UnknownUnit { .. })));
        assert!(matches!(t.push_row("m1", 1.0, &[1.0]), Err(Error::RowWidth { expected: 2, found: 1, .. })));
        assert!(matches!(t.push_row("m1", f64::NAN, &[1.0, 1.0]), Err(Error::NotFinite { .. })));
        let err = t.push_row("m1", 1.0, &[1.0, f64::INFINITY]).unwrap_err();
        assert!(matches!(&err, Error::NotFinite { column, .. } if column == "b"), "{err}");
        assert!(matches!(t.start_unit("m1", 0.0), Err(Error::DuplicateUnit { .. })));
        assert!(matches!(t.start_unit(" ", 0.0), Err(Error::EmptyUnitId)));
        assert!(matches!(t.start_unit("m9", f64::NAN), Err(Error::InvalidOption { name: "origin", .. })));
        assert!(matches!(t.check_non_empty(), Err(Error::UnitWithoutRows { .. })));
    }

    #[test]
    fn given_too_many_rows_or_a_huge_unit_id_when_pushing_then_they_are_refused() {
        let mut t = HistoryTable::with_row_limit(vec!["a".into()], 3).unwrap();
        t.start_unit("m", 0.0).unwrap();
        for i in 0..3 {
            t.push_row("m", i as f64, &[1.0]).unwrap();
        }
        let err = t.push_row("m", 3.0, &[1.0]).unwrap_err();
        assert!(matches!(err, Error::TooManyRows { max: 3 }), "{err}");
        let huge = HistoryTable::with_row_limit(vec!["a".into()], usize::MAX).unwrap();
        assert_eq!(huge.max_rows, MAX_ROWS);
        let long = "x".repeat(MAX_UNIT_ID_BYTES + 1);
        assert!(matches!(t.start_unit(&long, 0.0), Err(Error::InvalidOption { name: "unit", .. })));
    }

    #[test]
    fn given_bad_columns_when_creating_a_table_then_it_is_refused() {
        assert!(matches!(HistoryTable::new(vec![]), Err(Error::NoFeatureColumns)));
        assert!(matches!(HistoryTable::new(vec!["a".into(), "a".into()]), Err(Error::DuplicateColumn { .. })));
        assert!(matches!(HistoryTable::new(vec!["a".into(), "".into()]), Err(Error::EmptyColumnName { position: 2 })));
        assert!(matches!(
            HistoryTable::new((0..=MAX_COLUMNS).map(|i| i.to_string()).collect()),
            Err(Error::TooManyColumns { .. })
        ));
    }

    #[test]
    fn given_run_ends_when_labelling_then_censored_rows_count_only_beyond_the_cap() {
        let failed = RunEnd::Failed { at: 100.0 };
        assert_eq!(failed.label(90.0, Some(125.0)), Some(10.0));
        assert_eq!(failed.label(0.0, Some(50.0)), Some(50.0));
        assert_eq!(failed.label(0.0, None), Some(100.0));
        let censored = RunEnd::Censored { at: 100.0 };
        assert_eq!(censored.label(40.0, Some(50.0)), Some(50.0));
        assert_eq!(censored.label(60.0, Some(50.0)), None);
        assert_eq!(censored.label(0.0, None), None);
    }

    #[test]
    fn given_an_end_before_the_last_row_when_building_a_training_set_then_it_is_refused() {
        let mut t = table();
        t.push_row("m1", 5.0, &[1.0, 1.0]).unwrap();
        let mut ends = HashMap::new();
        assert!(matches!(TrainingSet::new(t.clone(), &ends), Err(Error::MissingRunEnd { .. })));
        ends.insert("m1".to_string(), RunEnd::Failed { at: 4.0 });
        assert!(matches!(TrainingSet::new(t.clone(), &ends), Err(Error::EndBeforeLastRow { .. })));
        ends.insert("m1".to_string(), RunEnd::Censored { at: 9.0 });
        let set = TrainingSet::new(t, &ends).unwrap();
        assert_eq!(set.ends(), &[RunEnd::Censored { at: 9.0 }]);
    }
}
