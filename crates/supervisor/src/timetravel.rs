//! Time travel from the app: the plant at an instant, what changed between two instants
//! and a shift's report, asked of the plant node (`/v1/timetravel/…`) with the signed-in
//! person's token; the report exported as a one-page PNG and a CSV.

use std::path::{Path, PathBuf};

use plotters::prelude::*;
pub use readmodel_contract::timetravel::{Clock, Diff, Floor, ShiftReport};
use serde::de::DeserializeOwned;

use crate::config::Connection;
use crate::error::{AppError, ErrorCode};

/// Largest answer read (a whole floor of 10,000 sensors is about 2 MB).
const MAX_ANSWER_BYTES: usize = 32 * 1024 * 1024;

fn url(conn: &Connection, path: &str, query: &[(&str, String)]) -> Result<reqwest::Url, AppError> {
    let base = conn.command_url.trim().trim_end_matches('/');
    if base.is_empty() {
        return Err(AppError::new(ErrorCode::NotConfigured, "no command URL is configured for this plant"));
    }
    reqwest::Url::parse_with_params(&format!("{base}{path}"), query)
        .map_err(|e| AppError::new(ErrorCode::NotConfigured, format!("the plant's URL: {e}")))
}

/// Asks the plant node and reads its JSON answer; its refusals keep the plant's words.
async fn get<T: DeserializeOwned>(
    http: &reqwest::Client,
    conn: &Connection,
    path: &str,
    query: &[(&str, String)],
) -> Result<T, AppError> {
    let response = http.get(url(conn, path, query)?).bearer_auth(conn.token.trim()).send().await.map_err(|e| {
        AppError::new(ErrorCode::Unreachable, format!("the plant could not be asked: {}", e.without_url()))
    })?;
    let status = response.status();
    let bytes = response.bytes().await.map_err(|e| {
        AppError::new(ErrorCode::Unreachable, format!("the plant's answer broke off: {}", e.without_url()))
    })?;
    if bytes.len() > MAX_ANSWER_BYTES {
        return Err(AppError::new(ErrorCode::Unreachable, "the plant's answer is too large"));
    }
    if status.is_success() {
        return serde_json::from_slice(&bytes)
            .map_err(|e| AppError::new(ErrorCode::Unreachable, format!("the plant's answer could not be read: {e}")));
    }
    let message = serde_json::from_slice::<serde_json::Value>(&bytes)
        .ok()
        .and_then(|v| v["error"]["message"].as_str().map(str::to_owned))
        .unwrap_or_else(|| format!("the plant answered {status}"));
    let code = match status.as_u16() {
        401 | 403 => ErrorCode::SignIn,
        400..=499 => ErrorCode::InvalidInput,
        _ => ErrorCode::Unreachable,
    };
    Err(AppError::new(code, message))
}

pub async fn floor_at(http: &reqwest::Client, conn: &Connection, at_ms: i64, clock: Clock) -> Result<Floor, AppError> {
    get(http, conn, "/v1/timetravel/floor", &[("at", at_ms.to_string()), ("clock", clock.as_str().into())]).await
}

pub async fn changes(
    http: &reqwest::Client,
    conn: &Connection,
    from_ms: i64,
    to_ms: i64,
    clock: Clock,
) -> Result<Diff, AppError> {
    let q = [("from", from_ms.to_string()), ("to", to_ms.to_string()), ("clock", clock.as_str().into())];
    get(http, conn, "/v1/timetravel/changes", &q).await
}

pub async fn shift_report(
    http: &reqwest::Client,
    conn: &Connection,
    from_ms: i64,
    to_ms: i64,
    clock: Clock,
) -> Result<ShiftReport, AppError> {
    let q = [("from", from_ms.to_string()), ("to", to_ms.to_string()), ("clock", clock.as_str().into())];
    get(http, conn, "/v1/timetravel/shift-report", &q).await
}

fn time(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms).map(|t| t.format("%Y-%m-%d %H:%M").to_string()).unwrap_or_default()
}

fn clock_time(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms).map(|t| t.format("%H:%M:%S").to_string()).unwrap_or_default()
}

/// The report's lines as the page shows them (headings start with `#`).
pub fn report_lines(r: &ShiftReport) -> Vec<String> {
    let mut lines = vec![
        format!("# Shift report {} — {}", r.plant_id.as_deref().unwrap_or(""), r.clock.label()),
        format!("{} to {} (UTC)", time(r.from_ms), time(r.to_ms)),
        String::new(),
        format!("# Anomalies raised: {}", r.anomalies.len()),
    ];
    let ack = |s: Option<f64>| s.map_or("—".to_owned(), |s| format!("{:.0} min", s / 60.0));
    lines.push(format!(
        "time to acknowledge: mean {}, longest {}",
        ack(r.mean_time_to_acknowledge_s),
        ack(r.max_time_to_acknowledge_s)
    ));
    for a in &r.anomalies {
        lines.push(format!(
            "{} {} {} on {}: {}{}",
            clock_time(a.started_at_ms),
            a.severity,
            a.anomaly_id,
            a.machine_id,
            a.state_at_end,
            a.acknowledged_by.as_ref().map_or(String::new(), |b| format!(", acknowledged by {b}"))
        ));
    }
    for (title, list) in [
        ("Machines failed", &r.failures),
        ("Services", &r.services),
        ("Predictions across the 7-day line", &r.predictions),
    ] {
        lines.push(String::new());
        lines.push(format!("# {title}: {}", list.len()));
        lines.extend(
            list.iter()
                .map(|c| format!("{} {}: {}", clock_time(c.at_ms), c.machine_id.as_deref().unwrap_or(""), c.summary)),
        );
    }
    lines.push(String::new());
    lines.push(format!("# Notes: {}", r.notes.len()));
    lines.extend(r.notes.iter().map(|n| format!("{} {}: {}", clock_time(n.at_ms), n.by, n.text)));
    lines.push(String::new());
    lines.push(format!(
        "# Handed over: {} anomalies open, {} work orders open, {} machines due",
        r.open_anomalies.len(),
        r.open_work_orders.len(),
        r.machines_due.len()
    ));
    lines.extend(
        r.open_anomalies.iter().map(|a| format!("{} {} on {}: {}", a.severity, a.anomaly_id, a.machine_id, a.state)),
    );
    lines.extend(
        r.open_work_orders
            .iter()
            .map(|m| format!("work order {} on {}", m.open_order_id.as_deref().unwrap_or(""), m.machine_id)),
    );
    if !r.machines_due.is_empty() {
        lines.push(format!("due: {}", r.machines_due.join(", ")));
    }
    lines
}

/// Page size of the PNG: A4 at 100 dpi.
const PAGE: (u32, u32) = (827, 1169);
const LINE_PX: i32 = 17;

/// Writes the report as a one-page PNG (what does not fit is cut, and says so) and as
/// CSV, beside each other in `dir`; returns both paths.
pub fn export_report(r: &ShiftReport, dir: &Path, stem: &str) -> Result<(PathBuf, PathBuf), AppError> {
    std::fs::create_dir_all(dir).map_err(|e| AppError::new(ErrorCode::Chart, format!("{}: {e}", dir.display())))?;
    let csv_path = dir.join(format!("{stem}.csv"));
    let png_path = dir.join(format!("{stem}.png"));
    let csv = r.to_csv().map_err(|e| AppError::new(ErrorCode::Chart, e.to_string()))?;
    std::fs::write(&csv_path, csv)
        .map_err(|e| AppError::new(ErrorCode::Chart, format!("{}: {e}", csv_path.display())))?;
    let draw = || -> Result<(), Box<dyn std::error::Error>> {
        let root = BitMapBackend::new(&png_path, PAGE).into_drawing_area();
        root.fill(&WHITE)?;
        let lines = report_lines(r);
        let fits = ((PAGE.1 as i32 - 80) / LINE_PX) as usize;
        let mut y = 40;
        for (i, line) in lines.iter().enumerate() {
            if i + 1 == fits && lines.len() > fits {
                let more = format!("… {} more lines in the CSV", lines.len() - i);
                root.draw(&Text::new(more, (40, y), ("sans-serif", 13).into_font().color(&BLACK)))?;
                break;
            }
            let (text, font) = match line.strip_prefix("# ") {
                Some(h) => (h, ("sans-serif", 15).into_font().style(FontStyle::Bold).color(&BLACK)),
                None => (line.as_str(), ("sans-serif", 13).into_font().color(&BLACK)),
            };
            let text: String = text.chars().take(110).collect();
            root.draw(&Text::new(text, (40, y), font))?;
            y += LINE_PX;
        }
        root.present()?;
        Ok(())
    };
    draw().map_err(|e| AppError::new(ErrorCode::Chart, format!("drawing the report: {e}")))?;
    Ok((png_path, csv_path))
}

impl crate::Supervisor {
    fn travel(&self) -> (reqwest::Client, Connection) {
        (crate::outbox::http_client(), self.shared.settings().connection)
    }

    /// The plant as it was at `at_ms`, on `clock`.
    pub async fn floor_at(&self, at_ms: i64, clock: Clock) -> Result<Floor, AppError> {
        let (http, conn) = self.travel();
        floor_at(&http, &conn, at_ms, clock).await
    }

    /// What changed between two instants.
    pub async fn changes(&self, from_ms: i64, to_ms: i64, clock: Clock) -> Result<Diff, AppError> {
        let (http, conn) = self.travel();
        changes(&http, &conn, from_ms, to_ms, clock).await
    }

    /// A shift's report, with the lines the page shows.
    pub async fn shift_report(&self, from_ms: i64, to_ms: i64, clock: Clock) -> Result<ShiftReport, AppError> {
        let (http, conn) = self.travel();
        shift_report(&http, &conn, from_ms, to_ms, clock).await
    }

    /// Writes a shift's report as a PNG page and a CSV in `dir`.
    pub async fn export_shift_report(
        &self,
        from_ms: i64,
        to_ms: i64,
        clock: Clock,
        dir: &Path,
    ) -> Result<(PathBuf, PathBuf), AppError> {
        let report = self.shift_report(from_ms, to_ms, clock).await?;
        let stem = format!("floorwatch-shift-{}-{}", report.plant_id.as_deref().unwrap_or("plant"), from_ms);
        export_report(&report, dir, &stem)
    }
}
