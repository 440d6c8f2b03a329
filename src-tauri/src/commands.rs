//! The commands the page calls: each hands its arguments to the supervisor and returns
//! its answer; errors reach the page as `{ code, message }`.

use std::path::PathBuf;

use serde::Serialize;
use supervisor::chart::ChartStyle;
use supervisor::commands::{Command, QueuedCommand};
use supervisor::config::{Connection, Settings};
use supervisor::{AppError, ChartView, FloorView, MachineView, SignedIn};
use tauri::State;

use crate::App;

type Answer<T> = Result<T, AppError>;

#[tauri::command]
pub fn floor(app: State<'_, App>) -> FloorView {
    app.supervisor.floor()
}

#[tauri::command]
pub fn machine(app: State<'_, App>, machine_id: String) -> Answer<MachineView> {
    app.supervisor.machine(&machine_id)
}

#[tauri::command]
pub fn unwatch(app: State<'_, App>) {
    app.supervisor.unwatch()
}

#[tauri::command]
pub async fn trends(
    app: State<'_, App>,
    sensor_ids: Vec<i32>,
    span_ms: i64,
    end_ms: Option<i64>,
    style: ChartStyle,
) -> Answer<Vec<ChartView>> {
    app.supervisor.trends(&sensor_ids, span_ms, end_ms, style).await
}

#[tauri::command]
pub async fn export_chart(
    app: State<'_, App>,
    sensor_id: i32,
    span_ms: i64,
    end_ms: Option<i64>,
    style: ChartStyle,
    format: String,
) -> Answer<String> {
    let name = format!("floorwatch-{sensor_id}-{}.{format}", supervisor::now_ms());
    let path = app.exports.join(name);
    let written = app.supervisor.export_chart(sensor_id, span_ms, end_ms, style, path, &format).await?;
    Ok(written.display().to_string())
}

#[tauri::command]
pub fn submit(app: State<'_, App>, command: Command) -> Answer<QueuedCommand> {
    app.supervisor.submit(command)
}

#[tauri::command]
pub fn dismiss(app: State<'_, App>, command_id: String) -> Answer<()> {
    app.supervisor.dismiss(&command_id)
}

#[tauri::command]
pub fn commands(app: State<'_, App>) -> Vec<QueuedCommand> {
    app.supervisor.commands()
}

/// The settings screen's contents.
#[derive(Debug, Serialize)]
pub struct SettingsView {
    pub settings: Settings,
    pub demo_available: bool,
}

#[tauri::command]
pub fn settings(app: State<'_, App>) -> SettingsView {
    SettingsView { settings: app.supervisor.settings(), demo_available: app.supervisor.demo_available() }
}

#[tauri::command]
pub fn save_settings(app: State<'_, App>, settings: Settings) -> Answer<()> {
    app.supervisor.save_settings(settings)
}

#[tauri::command]
pub async fn start_demo(app: State<'_, App>) -> Answer<()> {
    app.supervisor.start_demo().await?;
    // The factory also runs a cloud node: the managers' view reads it with the manager's
    // token the factory wrote beside the plants'.
    let dir = PathBuf::from(app.supervisor.settings().demo.data_dir);
    app.manager.configure_from_desktop_json(&dir.join("desktop.json"))
}

#[tauri::command]
pub async fn sign_in(app: State<'_, App>, token: String, connection: Option<Connection>) -> Answer<SignedIn> {
    app.supervisor.sign_in(&token, connection).await
}

#[tauri::command]
pub fn sign_out(app: State<'_, App>) -> Answer<()> {
    app.supervisor.sign_out()
}
