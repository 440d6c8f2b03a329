//! The desktop shell: a window whose page calls the commands in `commands` and listens to
//! the `update` event. Everything the commands do is done by the `supervisor` crate.

mod commands;

use std::path::PathBuf;

use supervisor::{Supervisor, Update};
use tauri::{Emitter, Manager, Runtime};
use tauri_plugin_notification::NotificationExt;

/// What the commands reach through `tauri::State`.
pub struct App {
    pub supervisor: Supervisor,
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
    let supervisor = Supervisor::open(options).map_err(|e| e.to_string())?;
    let app = builder(tauri::Builder::default())
        .plugin(tauri_plugin_notification::init())
        .setup(move |app| {
            let handle = app.handle().clone();
            let s = supervisor.clone();
            tauri::async_runtime::block_on(async move {
                forward(handle.clone(), s.clone());
                s.start();
                exit_on_signal(handle);
            });
            app.manage(App { supervisor, exports });
            Ok(())
        })
        .build(tauri::generate_context!())
        .map_err(|e| e.to_string())?;
    app.run(|handle, event| {
        if let tauri::RunEvent::Exit = event {
            let app = handle.state::<App>();
            tauri::async_runtime::block_on(app.supervisor.shutdown());
        }
    });
    Ok(())
}
