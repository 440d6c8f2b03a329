//! The offline path: a `timestamp,value` CSV in, `timestamp,value,anomaly_score` out; or a
//! machine's CSV, `timestamp,<sensor>,<sensor>,…` (one row per instant), in and the same
//! columns plus `anomaly_score` and `<sensor>_score` for each sensor out.
//!
//! A single series is scored with one [`StreamingDetector`]. A machine's sensors are
//! scored as the plant monitor scores them: each sensor's readings by the detector the
//! monitor runs beside the machine model (stuck, dropout, chatter), and its departures
//! from the rest of the machine by the machine model ([`crate::machine`]); a sensor's
//! score is the higher of the two, the row's `anomaly_score` the highest of its sensors'.
//! An empty cell is a missing reading. Rows are scored in file order, so each score uses
//! only that row and the rows above it. Timestamps may repeat or go backwards (the row is still
//! scored; the gap test only looks at forward steps). The timestamp and value fields are
//! written back exactly as read. Accepted timestamps are those of
//! [`crate::timestamp::parse_timestamp_ms`].

use std::io::{Read, Write};

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::config::{Config, ConfigError};
use crate::detector::{Detector, SensorState, StreamingDetector};
use crate::machine::{MachineModel, MachineModelConfig, Residual};
use crate::timestamp::parse_timestamp_ms;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub rows: u64,
    pub max_score: f32,
    /// Rows whose timestamp is earlier than the row before.
    pub backwards_timestamps: u64,
    /// Rows whose timestamp equals the row before.
    pub repeated_timestamps: u64,
}

#[derive(Debug, Error)]
pub enum CsvError {
    #[error("the input is empty: expected a header line `timestamp,value`")]
    Empty,
    #[error(
        "line {line}: the header must name the columns `timestamp` and `value`, or `timestamp` and a machine's sensors, found `{found}`"
    )]
    MissingHeader { line: u64, found: String },
    #[error("line {line}: malformed CSV: {message}")]
    Malformed { line: u64, message: String },
    #[error("line {line}: expected at least {expected} fields, found {found}")]
    FieldCount { line: u64, expected: usize, found: usize },
    #[error("line {line}: timestamp `{text}` is neither ISO 8601 / RFC 3339 nor integer epoch seconds or milliseconds")]
    BadTimestamp { line: u64, text: String },
    #[error("line {line}: value `{text}` is not a number")]
    BadValue { line: u64, text: String },
    #[error("line {line}: value `{text}` is not finite (NaN and infinities are not readings)")]
    NonFinite { line: u64, text: String },
    #[error("the input has a header but no rows")]
    NoRows,
    #[error("writing the output failed: {0}")]
    Write(#[source] std::io::Error),
    #[error("reading the input failed: {0}")]
    Read(#[source] std::io::Error),
    #[error(transparent)]
    Config(#[from] ConfigError),
}

fn read_error(e: csv::Error, line: u64) -> CsvError {
    let line = e.position().map_or(line, |p| p.line());
    match e.into_kind() {
        csv::ErrorKind::Io(io) => CsvError::Read(io),
        csv::ErrorKind::Utf8 { err, .. } => CsvError::Malformed { line, message: format!("not UTF-8 text ({err})") },
        other => CsvError::Malformed { line, message: format!("{other:?}") },
    }
}

fn write_error(e: csv::Error) -> CsvError {
    match e.into_kind() {
        csv::ErrorKind::Io(io) => CsvError::Write(io),
        other => CsvError::Write(std::io::Error::other(format!("{other:?}"))),
    }
}

/// Scores every row of `input` and writes `timestamp,value,anomaly_score` rows to `output`.
pub fn detect_csv<R: Read, W: Write>(input: R, output: W, cfg: &Config) -> Result<Summary, CsvError> {
    let mut detector = StreamingDetector::new(cfg.clone())?;
    let mut reader =
        csv::ReaderBuilder::new().has_headers(false).flexible(true).trim(csv::Trim::All).from_reader(input);
    let mut writer = csv::Writer::from_writer(output);
    let mut record = csv::StringRecord::new();

    let got = reader.read_record(&mut record).map_err(|e| read_error(e, 1))?;
    if !got {
        return Err(CsvError::Empty);
    }
    let header_line = record.position().map_or(1, |p| p.line());
    let names: Vec<String> =
        record.iter().map(|f| f.trim_start_matches('\u{feff}').trim().to_ascii_lowercase()).collect();
    let ts_col = names.iter().position(|n| n == "timestamp");
    let value_col = names.iter().position(|n| n == "value");
    let missing = || CsvError::MissingHeader { line: header_line, found: record.iter().collect::<Vec<_>>().join(",") };
    let Some(ts_col) = ts_col else { return Err(missing()) };
    let Some(value_col) = value_col else {
        if names.len() < 2 || names.iter().any(String::is_empty) {
            return Err(missing());
        }
        let sensors: Vec<(usize, String)> = record
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != ts_col)
            .map(|(i, n)| (i, n.trim_start_matches('\u{feff}').trim().to_owned()))
            .collect();
        return detect_machine(reader, writer, cfg, ts_col, &sensors, header_line);
    };
    let needed = ts_col.max(value_col) + 1;
    writer.write_record(["timestamp", "value", "anomaly_score"]).map_err(write_error)?;

    let mut summary = Summary { rows: 0, max_score: 0.0, backwards_timestamps: 0, repeated_timestamps: 0 };
    let mut prev_ts: Option<i64> = None;
    let mut line = header_line;
    loop {
        match reader.read_record(&mut record) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => return Err(read_error(e, line + 1)),
        }
        line = record.position().map_or(line + 1, |p| p.line());
        if record.len() == 1 && record.get(0).is_some_and(str::is_empty) {
            continue; // blank line
        }
        if record.len() < needed {
            return Err(CsvError::FieldCount { line, expected: needed, found: record.len() });
        }
        let ts_text = record.get(ts_col).unwrap_or_default();
        let value_text = record.get(value_col).unwrap_or_default();
        let ts =
            parse_timestamp_ms(ts_text).ok_or_else(|| CsvError::BadTimestamp { line, text: ts_text.to_owned() })?;
        let value: f64 = value_text.parse().map_err(|_| CsvError::BadValue { line, text: value_text.to_owned() })?;
        if !value.is_finite() {
            return Err(CsvError::NonFinite { line, text: value_text.to_owned() });
        }
        match prev_ts {
            Some(p) if ts < p => summary.backwards_timestamps += 1,
            Some(p) if ts == p => summary.repeated_timestamps += 1,
            _ => {}
        }
        prev_ts = Some(ts);
        let score = detector.next(ts, value).map_err(|_| CsvError::NonFinite { line, text: value_text.to_owned() })?;
        let s = if score.score.is_finite() { score.score.clamp(0.0, 1.0) } else { 0.0 };
        summary.max_score = summary.max_score.max(s);
        summary.rows += 1;
        writer.write_record([ts_text, value_text, &format!("{s:.6}")]).map_err(write_error)?;
    }
    writer.flush().map_err(CsvError::Write)?;
    if summary.rows == 0 {
        return Err(CsvError::NoRows);
    }
    Ok(summary)
}

/// Scores a machine's CSV (see the module documentation); `sensors` are the value columns
/// and their names.
fn detect_machine<R: Read, W: Write>(
    mut reader: csv::Reader<R>,
    mut writer: csv::Writer<W>,
    cfg: &Config,
    ts_col: usize,
    sensors: &[(usize, String)],
    header_line: u64,
) -> Result<Summary, CsvError> {
    // The monitor's split: the readings' own detector keeps the tests the machine model
    // does not run, with the same timing settings as the caller's.
    let own = Detector::new(Config { enabled: Config::beside_machine_model().enabled, ..cfg.clone() })?;
    let model_cfg = MachineModelConfig::default();
    let mut model = MachineModel::default();
    let mut states = vec![SensorState::default(); sensors.len()];
    let mut header: Vec<String> = vec!["timestamp".to_owned()];
    header.extend(sensors.iter().map(|(_, n)| n.clone()));
    header.push("anomaly_score".to_owned());
    header.extend(sensors.iter().map(|(_, n)| format!("{n}_score")));
    writer.write_record(&header).map_err(write_error)?;

    let mut summary = Summary { rows: 0, max_score: 0.0, backwards_timestamps: 0, repeated_timestamps: 0 };
    let mut prev_ts: Option<i64> = None;
    let mut line = header_line;
    let mut record = csv::StringRecord::new();
    let mut residuals: Vec<Residual> = Vec::new();
    let mut scores = vec![0.0f32; sensors.len()];
    let needed = sensors.iter().map(|(i, _)| *i).max().unwrap_or(0).max(ts_col) + 1;
    loop {
        match reader.read_record(&mut record) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => return Err(read_error(e, line + 1)),
        }
        line = record.position().map_or(line + 1, |p| p.line());
        if record.len() == 1 && record.get(0).is_some_and(str::is_empty) {
            continue;
        }
        if record.len() < needed {
            return Err(CsvError::FieldCount { line, expected: needed, found: record.len() });
        }
        let ts_text = record.get(ts_col).unwrap_or_default();
        let ts =
            parse_timestamp_ms(ts_text).ok_or_else(|| CsvError::BadTimestamp { line, text: ts_text.to_owned() })?;
        match prev_ts {
            Some(p) if ts < p => summary.backwards_timestamps += 1,
            Some(p) if ts == p => summary.repeated_timestamps += 1,
            _ => {}
        }
        prev_ts = Some(ts);
        scores.iter_mut().for_each(|s| *s = 0.0);
        for (k, (col, _)) in sensors.iter().enumerate() {
            let text = record.get(*col).unwrap_or_default();
            if text.is_empty() {
                continue; // a missing reading
            }
            let value: f64 = text.parse().map_err(|_| CsvError::BadValue { line, text: text.to_owned() })?;
            if !value.is_finite() {
                return Err(CsvError::NonFinite { line, text: text.to_owned() });
            }
            let score =
                own.next(&mut states[k], ts, value).map_err(|_| CsvError::NonFinite { line, text: text.to_owned() })?;
            scores[k] = scores[k].max(score.score);
            model.observe(k as u32, ts, value, &model_cfg, &mut residuals)?;
        }
        // The row is complete: its residuals are scored now, not when the next row starts.
        model.flush(&model_cfg, &mut residuals)?;
        for r in residuals.drain(..) {
            if let Some(s) = scores.get_mut(r.sensor as usize) {
                *s = s.max(r.score.score);
            }
        }
        let row = scores.iter().copied().fold(0.0f32, f32::max);
        summary.max_score = summary.max_score.max(row);
        summary.rows += 1;
        let mut out: Vec<String> = Vec::with_capacity(header.len());
        out.push(ts_text.to_owned());
        out.extend(sensors.iter().map(|(col, _)| record.get(*col).unwrap_or_default().to_owned()));
        out.push(format!("{row:.6}"));
        out.extend(scores.iter().map(|s| format!("{s:.6}")));
        writer.write_record(&out).map_err(write_error)?;
    }
    writer.flush().map_err(CsvError::Write)?;
    if summary.rows == 0 {
        return Err(CsvError::NoRows);
    }
    Ok(summary)
}
