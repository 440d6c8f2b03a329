//! Run-to-failure CSV files: `unit,cycle,<numeric feature columns…>` in, predictions out.
//!
//! The header names a `unit` column (any non-empty text), a `cycle` column (a finite
//! number, strictly increasing within a unit) and at least one feature column, in any
//! order. A feature cell may be empty, `NaN` or `NA` for a missing value; anything else
//! must be a finite number. A unit's rows need not be contiguous. For training, each unit
//! runs until it fails at its last cycle; for prediction, each history stops before failure.
//! Cycles are counted from the unit's start, so a unit's age is its cycle.

use std::io::{Read, Write};

use crate::error::{Error, Location};
use crate::model::Model;
use crate::table::{HistoryTable, MAX_COLUMNS, TrainingSet};
use crate::train::{TrainOptions, TrainReport, train};

/// Name of the unit column.
pub const UNIT_COLUMN: &str = "unit";
/// Name of the time column.
pub const CYCLE_COLUMN: &str = "cycle";
/// Header of the prediction output.
pub const PREDICTION_HEADER: [&str; 4] = ["unit", "predicted_rul", "lower", "upper"];

/// Reads a `unit,cycle,…` CSV into a table of unit histories.
pub fn read_histories(input: impl Read) -> Result<HistoryTable, Error> {
    let mut reader =
        csv::ReaderBuilder::new().has_headers(false).flexible(true).trim(csv::Trim::All).from_reader(input);
    let mut record = csv::StringRecord::new();
    if !read(&mut reader, &mut record)? {
        return Err(Error::EmptyInput);
    }
    let header: Vec<String> = record.iter().map(str::to_string).collect();
    if header.len() > MAX_COLUMNS + 2 {
        return Err(Error::TooManyColumns { found: header.len(), max: MAX_COLUMNS + 2 });
    }
    if let Some(position) = header.iter().position(|h| h.is_empty()) {
        return Err(Error::EmptyColumnName { position: position + 1 });
    }
    for (i, name) in header.iter().enumerate() {
        if header[..i].contains(name) {
            return Err(Error::DuplicateColumn { name: name.clone() });
        }
    }
    let find = |name: &str| header.iter().position(|h| h == name).ok_or_else(|| Error::MissingColumn(name.into()));
    let unit_at = find(UNIT_COLUMN)?;
    let cycle_at = find(CYCLE_COLUMN)?;
    let feature_at: Vec<usize> = (0..header.len()).filter(|&i| i != unit_at && i != cycle_at).collect();
    let mut table = HistoryTable::new(feature_at.iter().map(|&i| header[i].clone()).collect())?;

    let mut values = vec![0.0; feature_at.len()];
    while read(&mut reader, &mut record)? {
        let line = line_of(&record);
        if record.len() != header.len() {
            return Err(Error::FieldCount { line, expected: header.len(), found: record.len() });
        }
        let unit = &record[unit_at];
        if unit.is_empty() {
            return Err(Error::MissingValue { line, column: UNIT_COLUMN.into() });
        }
        let cycle_text = &record[cycle_at];
        if cycle_text.is_empty() {
            return Err(Error::MissingValue { line, column: CYCLE_COLUMN.into() });
        }
        let cycle = number(cycle_text, line, CYCLE_COLUMN)?;
        if cycle.is_nan() {
            return Err(Error::NotNumeric { line, column: CYCLE_COLUMN.into(), value: cycle_text.into() });
        }
        for (slot, &i) in values.iter_mut().zip(&feature_at) {
            let cell = &record[i];
            *slot = if is_missing(cell) { f64::NAN } else { number(cell, line, &header[i])? };
        }
        if !table.has_unit(unit) {
            table.start_unit(unit, 0.0)?;
        }
        if let Err(problem) = table.try_push_row(unit, cycle, &values) {
            return Err(table.describe(problem, unit, cycle, &values, Location::Line(line), CYCLE_COLUMN));
        }
    }
    if table.units().is_empty() {
        return Err(Error::NoRows);
    }
    Ok(table)
}

/// Trains on a run-to-failure CSV: every unit fails at its last cycle.
pub fn train_csv(input: impl Read, options: &TrainOptions) -> Result<(Model, TrainReport), Error> {
    let table = read_histories(input)?;
    let set = TrainingSet::run_to_failure(table)?;
    train(&set, options)
}

/// Predicts from partial histories: writes `unit,predicted_rul,lower,upper`, one row per
/// unit in order of first appearance, every value at least 0.
pub fn predict_csv(model: &Model, input: impl Read, output: impl Write) -> Result<(), Error> {
    let table = read_histories(input)?;
    let predictions = model.predict(&table)?;
    let mut writer = csv::Writer::from_writer(output);
    let write_err = |e: csv::Error| match e.into_kind() {
        csv::ErrorKind::Io(io) => Error::Write(io),
        other => Error::Write(std::io::Error::other(format!("{other:?}"))),
    };
    writer.write_record(PREDICTION_HEADER).map_err(write_err)?;
    for p in &predictions {
        writer
            .write_record([p.unit.clone(), format_value(p.predicted_rul), format_value(p.lower), format_value(p.upper)])
            .map_err(write_err)?;
    }
    writer.flush().map_err(Error::Write)
}

/// Three decimals, never `-0.000`.
fn format_value(v: f64) -> String {
    format!("{:.3}", v.max(0.0) + 0.0)
}

fn read<R: Read>(reader: &mut csv::Reader<R>, record: &mut csv::StringRecord) -> Result<bool, Error> {
    reader.read_record(record).map_err(|e| {
        let line = e.position().map_or(0, csv::Position::line);
        match e.into_kind() {
            csv::ErrorKind::Io(io) => Error::Read(io),
            csv::ErrorKind::Utf8 { err, .. } => {
                Error::MalformedCsv { line, message: format!("not UTF-8 text ({err})") }
            }
            other => Error::MalformedCsv { line, message: format!("{other:?}") },
        }
    })
}

fn line_of(record: &csv::StringRecord) -> u64 {
    record.position().map_or(0, csv::Position::line)
}

fn is_missing(cell: &str) -> bool {
    cell.is_empty() || cell.eq_ignore_ascii_case("nan") || cell.eq_ignore_ascii_case("na")
}

fn number(cell: &str, line: u64, column: &str) -> Result<f64, Error> {
    let v: f64 = cell.parse().map_err(|_| Error::NotNumeric {
        line,
        column: column.into(),
        value: cell.chars().take(64).collect(),
    })?;
    if v.is_infinite() {
        return Err(Error::NotFinite {
            at: Location::Line(line),
            column: column.into(),
            value: cell.chars().take(64).collect(),
        });
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_str(text: &str) -> Result<HistoryTable, Error> {
        read_histories(text.as_bytes())
    }

    #[test]
    fn given_a_well_formed_file_when_reading_then_units_rows_and_missing_values_are_kept() {
        let t = read_str("cycle,unit,a,b\n1,7,1.5,\n2,7,2.5,NaN\n1,x y,3,4\n3,7, 4 ,NA\n").unwrap();
        assert_eq!(t.columns(), &["a".to_string(), "b".to_string()]);
        assert_eq!(t.units().len(), 2);
        let u = t.unit("7").unwrap();
        assert_eq!(u.times(), &[1.0, 2.0, 3.0]);
        assert_eq!(u.row(2)[0], 4.0);
        assert!(u.row(0)[1].is_nan() && u.row(1)[1].is_nan() && u.row(2)[1].is_nan());
        assert_eq!(t.unit("x y").unwrap().row(0), &[3.0, 4.0]);
    }

    fn err(text: &str) -> Error {
        read_str(text).unwrap_err()
    }

    #[test]
    fn given_each_malformed_file_when_reading_then_the_error_names_line_and_column() {
        assert!(matches!(err(""), Error::EmptyInput));
        assert!(matches!(err("unit,cycle,a\n"), Error::NoRows));
        assert!(matches!(err("unit,a\n1,2\n"), Error::MissingColumn(c) if c == "cycle"));
        assert!(matches!(err("cycle,a\n1,2\n"), Error::MissingColumn(c) if c == "unit"));
        assert!(matches!(err("unit,cycle\n1,2\n"), Error::NoFeatureColumns));
        assert!(matches!(err("unit,cycle,a,a\n"), Error::DuplicateColumn { .. }));
        assert!(matches!(err("unit,cycle,,a\n"), Error::EmptyColumnName { position: 3 }));
        assert!(matches!(err("unit,cycle,a\n1,1,2\n1,2\n"), Error::FieldCount { line: 3, expected: 3, found: 2 }));
        let e = err("unit,cycle,a\n1,1,2\n1,2,abc\n");
        assert!(matches!(&e, Error::NotNumeric { line: 3, column, value } if column == "a" && value == "abc"), "{e}");
        assert_eq!(e.to_string(), "line 3, column `a`: `abc` is not a number");
        assert!(matches!(
            err("unit,cycle,a\n1,one,2\n"),
            Error::NotNumeric { line: 2, column, .. } if column == "cycle"
        ));
        assert!(matches!(
            err("unit,cycle,a\n1,nan,2\n"),
            Error::NotNumeric { line: 2, column, .. } if column == "cycle"
        ));
        assert!(matches!(
            err("unit,cycle,a\n1,1,inf\n"),
            Error::NotFinite { at: Location::Line(2), column, .. } if column == "a"
        ));
        assert!(matches!(
            err("unit,cycle,a\n,1,2\n"),
            Error::MissingValue { line: 2, column } if column == "unit"
        ));
        assert!(matches!(
            err("unit,cycle,a\n1,,2\n"),
            Error::MissingValue { line: 2, column } if column == "cycle"
        ));
        let e = err("unit,cycle,a\n1,1,2\n1,1,3\n");
        assert!(matches!(&e, Error::DuplicateTime { at: Location::Line(3), .. }), "{e}");
        assert_eq!(e.to_string(), "line 3: unit `1` repeats cycle 1; each cycle appears once per unit");
        assert!(matches!(
            err("unit,cycle,a\n1,2,2\n2,1,1\n1,1,3\n"),
            Error::DecreasingTime { at: Location::Line(4), previous, .. } if previous == 2.0
        ));
        assert!(matches!(
            read_histories(&b"unit,cycle,a\n1,1,\xff\n"[..]).unwrap_err(),
            Error::MalformedCsv { line: 2, .. }
        ));
        let wide = format!("unit,cycle,{}\n", (0..=MAX_COLUMNS).map(|i| format!("c{i}")).collect::<Vec<_>>().join(","));
        assert!(matches!(err(&wide), Error::TooManyColumns { .. }));
    }

    #[test]
    fn given_negative_zero_when_formatting_then_it_prints_as_zero() {
        assert_eq!(format_value(-0.0), "0.000");
        assert_eq!(format_value(12.3456), "12.346");
    }
}
