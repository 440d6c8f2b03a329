//! Drives the real desktop app through WebDriver (tauri-driver + WebKitWebDriver) under
//! Xvfb, against a plant: a fixture plant ([`plant::FixturePlant`]: a private PostgreSQL
//! cluster with a real event log, the real projections and command API, driven by the
//! test) or the real demo factory ([`factory::FactoryPlant`], `floorwatch up`); and, for
//! the managers' view, a real cloud node holding backfilled weeks of every plant
//! ([`cloud::BackfilledCloud`]).

pub mod cloud;
pub mod factory;
pub mod manager_bench;
pub mod plant;
pub mod window;

use std::path::PathBuf;

/// The repository's root.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap_or_else(|_| PathBuf::from("."))
}

fn env_path(name: &str) -> Option<PathBuf> {
    std::env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from)
}

/// The built app: `FLOORWATCH_DESKTOP_APP`, else where `cargo xtask e2e` builds it.
pub fn app_path() -> PathBuf {
    env_path("FLOORWATCH_DESKTOP_APP").unwrap_or_else(|| repo_root().join("target/debug/floorwatch-desktop"))
}

/// tauri-driver: `TAURI_DRIVER`, else where `cargo xtask e2e` installs it, else PATH.
pub fn tauri_driver() -> PathBuf {
    env_path("TAURI_DRIVER").unwrap_or_else(|| {
        let local = repo_root().join("target/tools/bin/tauri-driver");
        if local.is_file() { local } else { PathBuf::from("tauri-driver") }
    })
}

/// Where each test leaves its screenshots.
pub fn screenshots_dir() -> PathBuf {
    env_path("FLOORWATCH_E2E_SCREENSHOTS").unwrap_or_else(|| repo_root().join("target/e2e-screenshots"))
}
