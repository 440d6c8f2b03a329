//! Time travel from the app: the plant at an instant, what changed between two instants
//! and a shift's report, asked of the plant node (`/v1/timetravel/…`) with the signed-in
//! person's token; the report exported as a one-page PNG and a CSV. When the plant cannot
//! be reached, an instant is answered from this workstation's cache (the plant's answers
//! fetched before, or the floor rows as they were received), and says so.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use plotters::prelude::*;
use readmodel_contract::Changes;
pub use readmodel_contract::timetravel::{Clock, Diff, Floor, ShiftReport};
use readmodel_contract::{Anomaly, MachineStatus, Maintenance, Rollup, SensorState};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

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

/// One catch-up's floor rows, as the cache's journal stores them.
#[derive(Debug, Serialize)]
pub(crate) struct FloorDeltaRef<'a> {
    plant_status: &'a [Rollup],
    line_status: &'a [Rollup],
    machine_status: &'a [MachineStatus],
    sensor_state: &'a [SensorState],
    anomalies: &'a [Anomaly],
    maintenance: &'a [Maintenance],
}

impl<'a> FloorDeltaRef<'a> {
    pub(crate) fn of(c: &'a Changes) -> Self {
        FloorDeltaRef {
            plant_status: &c.plant_status,
            line_status: &c.line_status,
            machine_status: &c.machine_status,
            sensor_state: &c.sensor_state,
            anomalies: &c.anomalies,
            maintenance: &c.maintenance,
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.plant_status.is_empty()
            && self.line_status.is_empty()
            && self.machine_status.is_empty()
            && self.sensor_state.is_empty()
            && self.anomalies.is_empty()
            && self.maintenance.is_empty()
    }
}

/// A journal entry read back (the same fields as [`FloorDeltaRef`]).
#[derive(Debug, Default, Deserialize)]
pub(crate) struct FloorDelta {
    pub(crate) plant_status: Vec<Rollup>,
    pub(crate) line_status: Vec<Rollup>,
    pub(crate) machine_status: Vec<MachineStatus>,
    pub(crate) sensor_state: Vec<SensorState>,
    pub(crate) anomalies: Vec<Anomaly>,
    pub(crate) maintenance: Vec<Maintenance>,
}

/// The floor's rows by key, folded from what this workstation received: a row replaces
/// the one it had only when it comes from a later position, as in the cache's rows.
#[derive(Debug, Default)]
pub(crate) struct FloorRows {
    plant_status: BTreeMap<String, Rollup>,
    line_status: BTreeMap<String, Rollup>,
    machine_status: BTreeMap<String, MachineStatus>,
    sensor_state: BTreeMap<i32, SensorState>,
    anomalies: BTreeMap<String, Anomaly>,
    maintenance: BTreeMap<String, Maintenance>,
    through: i64,
}

fn upsert<K: Ord, T>(
    map: &mut BTreeMap<K, T>,
    rows: Vec<T>,
    key: impl Fn(&T) -> K,
    position: impl Fn(&T) -> i64,
) -> i64 {
    let mut newest = 0;
    for row in rows {
        let p = position(&row);
        newest = newest.max(p);
        let k = key(&row);
        if map.get(&k).is_none_or(|old| p > position(old)) {
            map.insert(k, row);
        }
    }
    newest
}

impl FloorRows {
    pub(crate) fn apply(&mut self, d: FloorDelta) {
        let newest = [
            upsert(&mut self.plant_status, d.plant_status, |r| r.id.clone(), |r| r.position),
            upsert(&mut self.line_status, d.line_status, |r| r.id.clone(), |r| r.position),
            upsert(&mut self.machine_status, d.machine_status, |r| r.machine_id.clone(), |r| r.position),
            upsert(&mut self.sensor_state, d.sensor_state, |r| r.sensor_id, |r| r.position),
            upsert(&mut self.anomalies, d.anomalies, |r| r.anomaly_id.clone(), |r| r.position),
            upsert(&mut self.maintenance, d.maintenance, |r| r.machine_id.clone(), |r| r.position),
        ];
        self.through = newest.into_iter().fold(self.through, i64::max);
    }

    /// The rows as one journal entry (the base the journal starts from).
    pub(crate) fn to_json(&self) -> Result<String, serde_json::Error> {
        fn rows<K, T: Clone>(m: &BTreeMap<K, T>) -> Vec<T> {
            m.values().cloned().collect()
        }
        let (plant_status, line_status, machine_status) =
            (rows(&self.plant_status), rows(&self.line_status), rows(&self.machine_status));
        let (sensor_state, anomalies, maintenance) =
            (rows(&self.sensor_state), rows(&self.anomalies), rows(&self.maintenance));
        serde_json::to_string(&FloorDeltaRef {
            plant_status: &plant_status,
            line_status: &line_status,
            machine_status: &machine_status,
            sensor_state: &sensor_state,
            anomalies: &anomalies,
            maintenance: &maintenance,
        })
    }

    /// The floor these rows make at `at_ms`, in key order as the plant serves it.
    pub(crate) fn floor(self, at_ms: i64) -> Floor {
        Floor {
            clock: Clock::Known,
            at_ms,
            through_position: self.through,
            plant_status: self.plant_status.into_values().next(),
            line_status: self.line_status.into_values().collect(),
            machine_status: self.machine_status.into_values().collect(),
            sensor_state: self.sensor_state.into_values().collect(),
            anomalies: self.anomalies.into_values().collect(),
            maintenance: self.maintenance.into_values().collect(),
        }
    }
}

/// A stretch of time this workstation followed the plant (ms).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Span {
    pub from_ms: i64,
    pub to_ms: i64,
}

/// Where an answer shown without the plant came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CacheSource {
    /// The plant's own answer for this instant, fetched earlier.
    Answer,
    /// Folded from the floor rows as this workstation received them ("as we knew it then").
    Received,
}

/// Said with an answer that comes from this workstation's cache.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FromCache {
    pub source: CacheSource,
    /// What the cache holds of the floor as received (oldest first).
    pub covers: Vec<Span>,
    /// Why the plant was not asked.
    pub reason: String,
}

/// The plant at an instant, and whether it comes from this workstation's cache.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TravelFloor {
    #[serde(flatten)]
    pub floor: Floor,
    pub from_cache: Option<FromCache>,
}

impl std::ops::Deref for TravelFloor {
    type Target = Floor;
    fn deref(&self) -> &Floor {
        &self.floor
    }
}

fn local_span(s: &Span) -> String {
    format!("{} to {}", time(s.from_ms), clock_time(s.to_ms))
}

/// Why an instant cannot be shown without the plant, with what the cache does hold.
fn not_in_cache(at_ms: i64, clock: Clock, covers: &[Span], reason: &str) -> AppError {
    let holds = match covers {
        [] => "this workstation's cache holds no floor for time travel yet".to_owned(),
        spans => format!(
            "this workstation's cache holds the floor as received here ({}) from {} (UTC)",
            Clock::Known.label(),
            spans.iter().rev().take(3).map(local_span).collect::<Vec<_>>().join(", ")
        ),
    };
    let hint = match clock {
        Clock::Happened if !covers.is_empty() => {
            format!("; choose \"{}\" and an instant inside it, or reconnect", Clock::Known.label())
        }
        _ => "; pick an instant inside it, or reconnect".to_owned(),
    };
    AppError::new(
        ErrorCode::Unreachable,
        format!(
            "The plant cannot be reached ({reason}) and {} {} is not in the cache: {holds}{hint}.",
            time(at_ms),
            clock.label()
        ),
    )
}

impl crate::Supervisor {
    fn travel(&self) -> (reqwest::Client, Connection) {
        (crate::outbox::http_client(), self.shared.settings().connection)
    }

    /// The plant as it was at `at_ms`, on `clock`. The plant's answer is kept in the cache;
    /// when the plant cannot be reached, the cache answers what it holds, and says so.
    pub async fn floor_at(&self, at_ms: i64, clock: Clock) -> Result<TravelFloor, AppError> {
        let (http, conn) = self.travel();
        let shared = self.shared.clone();
        match floor_at(&http, &conn, at_ms, clock).await {
            Ok(floor) => {
                let keep = floor.clone();
                let kept = tokio::task::spawn_blocking(move || {
                    shared.with_cache(|c| c.keep_answer(clock, at_ms, &keep, crate::now_ms()))
                })
                .await;
                if let Ok(Err(e)) = kept {
                    tracing::warn!("could not keep a time-travel answer in the cache: {e}");
                }
                Ok(TravelFloor { floor, from_cache: None })
            }
            Err(e) if e.code == ErrorCode::Unreachable => {
                let reason = e.message;
                tokio::task::spawn_blocking(move || from_cache(&shared, at_ms, clock, reason))
                    .await
                    .map_err(|e| AppError::new(ErrorCode::Cache, format!("reading the cache: {e}")))?
            }
            Err(e) => Err(e),
        }
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

/// The instant from this workstation's cache: the plant's own answer if it was fetched,
/// else (on "as we knew it then") the floor folded from the rows as received.
fn from_cache(shared: &crate::Shared, at_ms: i64, clock: Clock, reason: String) -> Result<TravelFloor, AppError> {
    let why = reason.clone();
    let cache_error = move |e: crate::cache::CacheError| {
        AppError::new(
            ErrorCode::Cache,
            format!("The plant cannot be reached ({why}) and this workstation's cache could not be read: {e}"),
        )
    };
    let covers = shared.with_cache(|c| c.travel_spans()).map_err(&cache_error)?;
    if let Some(floor) = shared.with_cache(|c| c.answer(clock, at_ms)).map_err(&cache_error)? {
        return Ok(TravelFloor { floor, from_cache: Some(FromCache { source: CacheSource::Answer, covers, reason }) });
    }
    if clock == Clock::Known
        && let Some(floor) = shared.with_cache(|c| c.floor_received(at_ms)).map_err(cache_error)?
    {
        return Ok(TravelFloor {
            floor,
            from_cache: Some(FromCache { source: CacheSource::Received, covers, reason }),
        });
    }
    Err(not_in_cache(at_ms, clock, &covers, &reason))
}
