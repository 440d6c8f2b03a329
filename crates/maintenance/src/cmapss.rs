//! Conversion of NASA's C-MAPSS turbofan text files to the run-to-failure CSV shape.
//!
//! C-MAPSS ("Turbofan Engine Degradation Simulation Data Set", NASA Ames Prognostics
//! Center of Excellence; A. Saxena, K. Goebel, D. Simon, N. Eklund, "Damage Propagation
//! Modeling for Aircraft Engine Run-to-Failure Simulation", PHM08, 2008) ships one row per
//! engine per cycle, 26 space-separated numbers, no header: unit, cycle, three operational
//! settings and 21 sensors.

use std::io::{BufRead, BufReader, Read, Write};

use crate::error::Error;

/// The 26 column names, in file order: `unit,cycle,setting1..3,s1..s21`.
pub fn column_names() -> Vec<String> {
    let mut names = vec!["unit".to_string(), "cycle".to_string()];
    names.extend((1..=3).map(|i| format!("setting{i}")));
    names.extend((1..=21).map(|i| format!("s{i}")));
    names
}

/// Longest accepted line, in bytes (a real row is under 200).
const MAX_LINE_BYTES: usize = 4_096;

/// Copies a C-MAPSS text file to CSV with a header, checking every value is a number.
/// Blank lines are skipped. Returns the number of data rows written.
pub fn cmapss_to_csv(input: impl Read, mut output: impl Write) -> Result<usize, Error> {
    let names = column_names();
    writeln!(output, "{}", names.join(",")).map_err(Error::Write)?;
    let mut reader = BufReader::new(input);
    let mut line = Vec::new();
    let mut number = 0u64;
    let mut rows = 0usize;
    loop {
        line.clear();
        let read = (&mut reader).take(MAX_LINE_BYTES as u64 + 1).read_until(b'\n', &mut line).map_err(Error::Read)?;
        if read == 0 {
            break;
        }
        number += 1;
        if line.len() > MAX_LINE_BYTES {
            return Err(Error::MalformedCsv {
                line: number,
                message: format!("line longer than {MAX_LINE_BYTES} bytes"),
            });
        }
        let text = std::str::from_utf8(&line)
            .map_err(|_| Error::MalformedCsv { line: number, message: "not UTF-8 text".into() })?;
        let fields: Vec<&str> = text.split_whitespace().collect();
        if fields.is_empty() {
            continue;
        }
        if fields.len() != names.len() {
            return Err(Error::CmapssFieldCount { line: number, found: fields.len() });
        }
        for (field, name) in fields.iter().zip(&names) {
            if !field.parse::<f64>().is_ok_and(f64::is_finite) {
                return Err(Error::NotNumeric {
                    line: number,
                    column: name.clone(),
                    value: field.chars().take(64).collect(),
                });
            }
        }
        writeln!(output, "{}", fields.join(",")).map_err(Error::Write)?;
        rows += 1;
    }
    output.flush().map_err(Error::Write)?;
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(unit: u32, cycle: u32) -> String {
        let mut v = vec![unit.to_string(), cycle.to_string()];
        v.extend((0..24).map(|i| format!("{}.5", i)));
        v.join(" ") + "  \n"
    }

    #[test]
    fn given_raw_rows_when_converting_then_a_header_and_comma_rows_come_out() {
        let input = row(1, 1) + &row(1, 2) + "\n";
        let mut out = Vec::new();
        assert_eq!(cmapss_to_csv(input.as_bytes(), &mut out).unwrap(), 2);
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(lines[0].starts_with("unit,cycle,setting1,setting2,setting3,s1,"));
        assert!(lines[0].ends_with(",s21"));
        assert!(lines[2].starts_with("1,2,0.5,1.5,"));
        assert_eq!(lines[2].split(',').count(), 26);
    }

    #[test]
    fn given_a_short_or_non_numeric_row_when_converting_then_the_line_is_named() {
        let short = row(1, 1) + "1 2 3\n";
        assert!(matches!(
            cmapss_to_csv(short.as_bytes(), Vec::new()),
            Err(Error::CmapssFieldCount { line: 2, found: 3 })
        ));
        let bad = row(1, 1).replace("3.5", "x");
        assert!(matches!(
            cmapss_to_csv(bad.as_bytes(), Vec::new()),
            Err(Error::NotNumeric { line: 1, column, .. }) if column == "s1"
        ));
        let long = "1 ".repeat(MAX_LINE_BYTES);
        assert!(matches!(cmapss_to_csv(long.as_bytes(), Vec::new()), Err(Error::MalformedCsv { line: 1, .. })));
    }
}
