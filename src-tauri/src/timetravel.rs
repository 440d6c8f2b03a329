//! Time travel's commands: the plant at an instant (from this workstation's cache when the
//! plant cannot be reached), what changed between two instants, a shift's report and its
//! export; each hands its arguments to the supervisor.

use serde::Serialize;
use supervisor::AppError;
use supervisor::timetravel::{Clock, Diff, ShiftReport, TravelFloor};
use tauri::State;

use crate::App;

type Answer<T> = Result<T, AppError>;

#[tauri::command]
pub async fn floor_at(app: State<'_, App>, at_ms: i64, clock: Clock) -> Answer<TravelFloor> {
    app.supervisor.floor_at(at_ms, clock).await
}

#[tauri::command]
pub async fn changes(app: State<'_, App>, from_ms: i64, to_ms: i64, clock: Clock) -> Answer<Diff> {
    app.supervisor.changes(from_ms, to_ms, clock).await
}

/// A shift's report and its lines as the page shows them.
#[derive(Debug, Serialize)]
pub struct ReportView {
    pub report: ShiftReport,
    pub lines: Vec<String>,
}

#[tauri::command]
pub async fn shift_report(app: State<'_, App>, from_ms: i64, to_ms: i64, clock: Clock) -> Answer<ReportView> {
    let report = app.supervisor.shift_report(from_ms, to_ms, clock).await?;
    Ok(ReportView { lines: supervisor::timetravel::report_lines(&report), report })
}

/// Where an exported report was written.
#[derive(Debug, Serialize)]
pub struct Exported {
    pub png: String,
    pub csv: String,
}

#[tauri::command]
pub async fn export_shift_report(app: State<'_, App>, from_ms: i64, to_ms: i64, clock: Clock) -> Answer<Exported> {
    let (png, csv) = app.supervisor.export_shift_report(from_ms, to_ms, clock, &app.exports).await?;
    Ok(Exported { png: png.display().to_string(), csv: csv.display().to_string() })
}
