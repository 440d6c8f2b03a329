//! Runs the series in `data/real/` and Microsoft's Azure predictive-maintenance telemetry
//! through the offline CSV path (what `floorwatch detect` runs), as single series and as
//! machines, and prints the figures the README reports:
//! `cargo run --release -p detector --example real_series -- [AZURE_PDM_DIR]`
//! (default `../shared/data/azure-pdm`, relative to the repository).
//!
//! Per series: the share of rows scored at or above the default threshold (0.6). For the
//! labelled telemetry, alarms are the rows where a machine's score rises to the threshold;
//! a failure counts as detected when an alarm falls in the 48 hours before it, and an alarm
//! more than 48 hours before and 6 hours after every failure of its machine is false.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use detector::{Config, detect_csv, parse_timestamp_ms};

const THRESHOLD: f64 = 0.6;
const BEFORE_MS: i64 = 48 * 3_600_000;
const AFTER_MS: i64 = 6 * 3_600_000;

/// Scores a CSV text; returns each row's timestamp and score (the last column for a
/// single series, `anomaly_score` for a machine).
fn score(csv: &str) -> Result<Vec<(i64, f64)>, Box<dyn std::error::Error>> {
    let mut out = Vec::new();
    detect_csv(csv.as_bytes(), &mut out, &Config::default())?;
    let text = String::from_utf8(out)?;
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap_or_default().split(',').collect();
    let col = header.iter().position(|h| *h == "anomaly_score").ok_or("no anomaly_score column")?;
    let mut rows = Vec::new();
    for line in lines {
        let fields: Vec<&str> = line.split(',').collect();
        let ts = parse_timestamp_ms(fields[0]).ok_or("bad timestamp")?;
        rows.push((ts, fields[col].parse()?));
    }
    Ok(rows)
}

fn share_above(rows: &[(i64, f64)]) -> f64 {
    rows.iter().filter(|r| r.1 >= THRESHOLD).count() as f64 / rows.len().max(1) as f64
}

/// Timestamps at which the score rises to the threshold.
fn alarms(rows: &[(i64, f64)]) -> Vec<i64> {
    let mut above = false;
    let mut out = Vec::new();
    for &(ts, s) in rows {
        if s >= THRESHOLD && !above {
            out.push(ts);
        }
        above = s >= THRESHOLD;
    }
    out
}

fn read(path: &Path) -> Result<String, Box<dyn std::error::Error>> {
    std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()).into())
}

/// One machine's columns as separate `timestamp,value` series.
fn columns(csv: &str) -> Vec<(String, String)> {
    let mut lines = csv.lines();
    let header: Vec<String> = lines.next().unwrap_or_default().split(',').map(str::to_owned).collect();
    let mut out: Vec<(String, String)> =
        header[1..].iter().map(|h| (h.clone(), String::from("timestamp,value\n"))).collect();
    for line in lines {
        let f: Vec<&str> = line.split(',').collect();
        for (k, (_, csv)) in out.iter_mut().enumerate() {
            csv.push_str(&format!("{},{}\n", f[0], f[k + 1]));
        }
    }
    out
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let here = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let azure =
        std::env::args().nth(1).map(PathBuf::from).unwrap_or_else(|| here.join("../../../shared/data/azure-pdm"));

    // A gas turbine's sensors, hourly (UCI 551).
    let gt = read(&here.join("data/real/gas-turbine-2011-first-16-days.csv"))?;
    let machine = score(&gt)?;
    println!("gas turbine (1 machine, {} hourly rows, 11 sensors):", machine.len());
    let mut rows = 0;
    let mut above = 0.0;
    for (name, csv) in columns(&gt) {
        let s = score(&csv)?;
        println!("  {name:<5} single series: {:.2} % of rows >= {THRESHOLD}", 100.0 * share_above(&s));
        rows += s.len();
        above += share_above(&s) * s.len() as f64;
    }
    println!("  all single series: {:.2} % of {rows} rows", 100.0 * above / rows as f64);
    println!("  as a machine: {:.2} % of rows, {} alarms", 100.0 * share_above(&machine), alarms(&machine).len());

    // Microsoft's predictive-maintenance telemetry, machines 1–20, hourly, with failures.
    let telemetry = read(&azure.join("PdM_telemetry_subset_m001-020_2015Q1.csv"))?;
    let failures = read(&azure.join("PdM_failures.csv"))?;
    let mut by_machine: BTreeMap<u32, String> = BTreeMap::new();
    for line in telemetry.lines().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        let m: u32 = f[1].parse()?;
        by_machine
            .entry(m)
            .or_insert_with(|| String::from("timestamp,volt,rotate,pressure,vibration\n"))
            .push_str(&format!("{},{},{},{},{}\n", f[0], f[2], f[3], f[4], f[5]));
    }
    let mut failed: BTreeMap<u32, Vec<i64>> = BTreeMap::new();
    for line in failures.lines().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        let m: u32 = f[1].parse()?;
        if by_machine.contains_key(&m) {
            failed.entry(m).or_default().push(parse_timestamp_ms(f[0]).ok_or("bad failure time")?);
        }
    }
    let (mut rows, mut single_above, mut machine_rows, mut machine_above) = (0usize, 0.0, 0usize, 0.0);
    let (mut detected, mut scored, mut false_alarms, mut true_alarms, mut weeks) = (0, 0, 0, 0, 0.0);
    for (m, csv) in &by_machine {
        for (_, series) in columns(csv) {
            let s = score(&series)?;
            rows += s.len();
            single_above += share_above(&s) * s.len() as f64;
        }
        let s = score(csv)?;
        machine_rows += s.len();
        machine_above += share_above(&s) * s.len() as f64;
        let (first, last) = (s.first().map_or(0, |r| r.0), s.last().map_or(0, |r| r.0));
        weeks += (last - first) as f64 / (7.0 * 86_400_000.0);
        let raised = alarms(&s);
        let times = failed.get(m).map_or(&[][..], Vec::as_slice);
        // Failures in the first two days (the detector still learning) are not scored.
        for &t in times.iter().filter(|t| **t >= first + BEFORE_MS && **t <= last) {
            scored += 1;
            if raised.iter().any(|a| *a >= t - BEFORE_MS && *a <= t) {
                detected += 1;
            }
        }
        for a in raised.iter().filter(|a| **a >= first + BEFORE_MS) {
            if times.iter().any(|t| *a >= t - BEFORE_MS && *a <= t + AFTER_MS) {
                true_alarms += 1;
            } else {
                false_alarms += 1;
            }
        }
    }
    println!("azure predictive maintenance ({} machines, {machine_rows} hourly rows):", by_machine.len());
    println!("  single series: {:.2} % of {rows} rows >= {THRESHOLD}", 100.0 * single_above / rows as f64);
    println!("  as machines: {:.2} % of rows >= {THRESHOLD}", 100.0 * machine_above / machine_rows as f64);
    println!(
        "  failures with an alarm in the 48 h before: {detected} of {scored} ({:.0} %); alarms: {true_alarms} before a failure, {false_alarms} false ({:.2} per machine-week)",
        100.0 * detected as f64 / scored.max(1) as f64,
        false_alarms as f64 / weeks.max(1e-9)
    );
    Ok(())
}
