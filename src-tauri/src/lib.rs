//! The desktop shell: a window whose page calls the commands in `commands` and listens to
//! the `update` event. Everything the commands do is done by the `supervisor` crate.

mod commands;
mod manager;
mod timetravel;

use std::path::PathBuf;

use supervisor::{Supervisor, Update};
use tauri::{Emitter, Manager, Runtime};
use tauri_plugin_notification::NotificationExt;

/// What the commands reach through `tauri::State`.
pub struct App {
    pub supervisor: Supervisor,
    /// The managers' view (the cloud query API).
    pub manager: ::manager::Manager,
    /// Where exported charts are written.
    pub exports: PathBuf,
}

/// The event every pushed update travels on.
pub const UPDATE_EVENT: &str = "update";

/// Registers the commands the page may call.
fn builder<R: Runtime>(builder: tauri::Builder<R>) -> tauri::Builder<R> {
    builder.invoke_handler(tauri::generate_handler![
        commands::floor,
        commands::machine,
        commands::unwatch,
        commands::trends,
        commands::export_chart,
        commands::submit,
        commands::dismiss,
        commands::commands,
        commands::settings,
        commands::save_settings,
        commands::start_demo,
        commands::sign_in,
        commands::sign_out,
        manager::manager_settings,
        manager::manager_configure,
        manager::manager_view,
        manager::manager_machine_trend,
        manager::manager_export,
        manager::manager_save_snapshot,
        manager::manager_cancel_snapshot,
        manager::manager_open_snapshot,
        manager::manager_close_snapshot,
        timetravel::floor_at,
        timetravel::changes,
        timetravel::shift_report,
        timetravel::export_shift_report,
    ])
}

/// Forwards the supervisor's updates to the page, and raises a desktop notification
/// for each new critical anomaly.
fn forward<R: Runtime>(handle: tauri::AppHandle<R>, supervisor: Supervisor) {
    let mut rx = supervisor.subscribe();
    tauri::async_runtime::spawn(async move {
        loop {
            match rx.recv().await {
                Ok(update) => {
                    if let Update::Critical { anomaly } = &update
                        && supervisor.settings().notify_critical
                    {
                        let title = format!("Critical anomaly on {}", anomaly.machine_id);
                        let shown = handle.notification().builder().title(title).body(&anomaly.explanation).show();
                        if let Err(e) = shown {
                            tracing::info!("desktop notification not shown: {e}");
                        }
                    }
                    let _ = handle.emit(UPDATE_EVENT, &update);
                }
                // The page missed updates: it fetches the whole floor again.
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                    let _ = handle.emit(UPDATE_EVENT, &Update::Reset);
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
            }
        }
    });
}

/// Forwards the managers' view's updates (link state, changed KPIs) on the same event.
fn forward_manager<R: Runtime>(handle: tauri::AppHandle<R>, manager: ::manager::Manager) {
    let mut rx = manager.subscribe();
    tauri::async_runtime::spawn(async move {
        loop {
            match rx.recv().await {
                Ok(update) => {
                    let _ = handle.emit(UPDATE_EVENT, &update);
                }
                // Missed changes only mean the view is refetched later than it could be.
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
            }
        }
    });
}

/// Closes the app as its window's close button does when the session ends or someone
/// asks it to (SIGTERM, SIGINT, SIGHUP): through `RunEvent::Exit`, which waits until
/// what the window showed is in the cache.
fn exit_on_signal(handle: tauri::AppHandle) {
    use tokio::signal::unix::{SignalKind, signal};
    tauri::async_runtime::spawn(async move {
        let (Ok(mut term), Ok(mut int), Ok(mut hup)) =
            (signal(SignalKind::terminate()), signal(SignalKind::interrupt()), signal(SignalKind::hangup()))
        else {
            tracing::warn!("cannot listen for termination signals; they will end the app without a clean close");
            return;
        };
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
            _ = hup.recv() => {}
        }
        handle.exit(0);
    });
}

/// Opens the window; returns when it is closed.
pub fn run(options: supervisor::Options, exports: PathBuf) -> Result<(), String> {
    let manager = ::manager::Manager::open(::manager::Options::beside(&options)).map_err(|e| e.to_string())?;
    let supervisor = Supervisor::open(options).map_err(|e| e.to_string())?;
    let app = builder(tauri::Builder::default())
        .plugin(tauri_plugin_notification::init())
        .setup(move |app| {
            let handle = app.handle().clone();
            let s = supervisor.clone();
            let m = manager.clone();
            tauri::async_runtime::block_on(async move {
                forward(handle.clone(), s.clone());
                forward_manager(handle.clone(), m.clone());
                s.start();
                m.start();
                exit_on_signal(handle);
            });
            app.manage(App { supervisor, manager, exports });
            Ok(())
        })
        .build(tauri::generate_context!())
        .map_err(|e| e.to_string())?;
    app.run(|handle, event| {
        if let tauri::RunEvent::Exit = event {
            let app = handle.state::<App>();
            app.manager.shutdown();
            tauri::async_runtime::block_on(app.supervisor.shutdown());
        }
    });
    Ok(())
}
