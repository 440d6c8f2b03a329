//! The `floorwatch-desktop` binary: reads where its files live from the environment and
//! opens the window.

#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

use std::path::PathBuf;

/// mimalloc returns freed memory to the system steadily; with the default allocator the
/// once-a-second churn of a 10,000-sensor catch-up spread over many threads' arenas and
/// kept the process hundreds of MB larger than its live data.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let mut options = supervisor::Options::standard();
    let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from);
    if let Some(p) = var("FLOORWATCH_DESKTOP_CONFIG") {
        options.settings_path = p;
    }
    if let Some(p) = var("FLOORWATCH_DESKTOP_CACHE") {
        options.cache_path = Some(p);
    }
    if let Some(p) = var("FLOORWATCH_DESKTOP_DEMO_DIR") {
        options.demo_dir = p;
    }
    options.floorwatch_bin = var("FLOORWATCH_BIN");
    options.exe_dir = std::env::current_exe().ok().and_then(|p| p.parent().map(PathBuf::from));
    options.path_var = std::env::var("PATH").ok();
    let exports = var("FLOORWATCH_DESKTOP_EXPORTS")
        .or_else(dirs::download_dir)
        .or_else(dirs::home_dir)
        .unwrap_or_else(std::env::temp_dir);
    if let Err(e) = floorwatch_desktop::run(options, exports) {
        eprintln!("floorwatch-desktop: {e}");
        std::process::exit(1);
    }
}
