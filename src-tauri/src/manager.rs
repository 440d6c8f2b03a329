//! The commands of the managers' view: each hands its arguments to the `manager` crate and
//! returns its answer; errors reach the page as `{ code, message }`.

use std::path::PathBuf;

use manager::{MachineTrendView, ManagerSettingsView, ManagerView, SavedSnapshot, ViewRequest};
use supervisor::AppError;
use tauri::State;

use crate::App;

type Answer<T> = Result<T, AppError>;

#[tauri::command]
pub fn manager_settings(app: State<'_, App>) -> ManagerSettingsView {
    app.manager.settings()
}

#[tauri::command]
pub fn manager_configure(app: State<'_, App>, url: String, token: String, open_at_start: bool) -> Answer<()> {
    app.manager.configure(&url, &token, open_at_start)
}

#[tauri::command]
pub async fn manager_view(app: State<'_, App>, request: ViewRequest) -> Answer<ManagerView> {
    app.manager.view(&request).await
}

#[tauri::command]
pub async fn manager_machine_trend(
    app: State<'_, App>,
    machine_id: String,
    request: ViewRequest,
) -> Answer<MachineTrendView> {
    app.manager.machine_trend(&machine_id, &request).await
}

#[tauri::command]
pub fn manager_export(app: State<'_, App>, request: ViewRequest, what: String, format: String) -> Answer<String> {
    Ok(app.manager.export(&request, &what, &format, &app.exports)?.display().to_string())
}

#[tauri::command]
pub async fn manager_save_snapshot(app: State<'_, App>, request: ViewRequest) -> Answer<SavedSnapshot> {
    app.manager.save_snapshot(&request, &app.exports).await
}

#[tauri::command]
pub fn manager_cancel_snapshot(app: State<'_, App>) {
    app.manager.cancel_snapshot()
}

#[tauri::command]
pub fn manager_open_snapshot(app: State<'_, App>, path: String) -> Answer<manager::range::Range> {
    app.manager.open_snapshot(&PathBuf::from(path.trim()))
}

#[tauri::command]
pub fn manager_close_snapshot(app: State<'_, App>) {
    app.manager.close_snapshot()
}
