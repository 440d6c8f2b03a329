//! `cargo xtask e2e`: end-to-end tests of the desktop app's real window. Installs what
//! they need (WebKitGTK and friends, Xvfb, WebKitWebDriver, tauri-driver), builds the
//! app and the `floorwatch` binary, and runs the WebDriver tests under `xvfb-run`.
//! Screenshots are left in `target/e2e-screenshots/`.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::Result;

use crate::{POSTGRES, Requirement, cargo, ensure, on_path, sh, workspace_root};

/// The package of the desktop app (the Tauri shell).
pub(crate) const APP_CRATE: &str = "floorwatch-desktop";
/// The package of the end-to-end tests; they need a display, so plain test runs skip it.
pub(crate) const CRATE: &str = "floorwatch-e2e";

fn pkg_config(modules: &[&str]) -> bool {
    Command::new("pkg-config").arg("--exists").args(modules).status().is_ok_and(|s| s.success())
}

pub(crate) fn desktop_libraries_present() -> bool {
    pkg_config(&["webkit2gtk-4.1", "gtk+-3.0", "ayatana-appindicator3-0.1", "librsvg-2.0", "openssl"])
        && Path::new("/usr/include/xdo.h").is_file()
        && on_path("cc")
}

pub(crate) const DESKTOP_LIBRARIES: Requirement = Requirement {
    what: "WebKitGTK, GTK and the other libraries the desktop app builds against",
    present: desktop_libraries_present,
    debian_packages: &[
        "libwebkit2gtk-4.1-dev",
        "libgtk-3-dev",
        "libayatana-appindicator3-dev",
        "librsvg2-dev",
        "libxdo-dev",
        "libssl-dev",
        "build-essential",
        "pkg-config",
        "file",
    ],
};

const DISPLAY: Requirement = Requirement {
    what: "a virtual display (Xvfb, xvfb-run, xauth)",
    present: || on_path("Xvfb") && on_path("xvfb-run") && on_path("xauth"),
    debian_packages: &["xvfb", "xauth"],
};

const WEBDRIVER: Requirement = Requirement {
    what: "WebKitWebDriver",
    present: || on_path("WebKitWebDriver"),
    debian_packages: &["webkit2gtk-driver"],
};

fn cargo_program() -> PathBuf {
    std::env::var_os("CARGO").map(PathBuf::from).unwrap_or_else(|| "cargo".into())
}

/// Installs tauri-driver into `target/tools` unless it is there.
pub(crate) fn tauri_driver(root: &Path) -> Result<PathBuf> {
    let tools = root.join("target/tools");
    let driver = tools.join("bin/tauri-driver");
    if !driver.is_file() {
        sh(cargo().args(["install", "tauri-driver", "--locked", "--version", "^2", "--root"]).arg(&tools))?;
    }
    Ok(driver)
}

/// Everything the desktop crates and their end-to-end tests need from the system.
pub(crate) fn ensure_requirements() -> Result<()> {
    ensure(&[POSTGRES, DESKTOP_LIBRARIES, DISPLAY, WEBDRIVER])
}

pub(crate) fn run() -> Result<()> {
    ensure_requirements()?;
    let root = workspace_root();
    let target = root.join("target");
    let driver = tauri_driver(&root)?;
    sh(cargo().args(["build", "-p", APP_CRATE, "-p", "floorwatch"]))?;

    let shots = root.join("target/e2e-screenshots");
    if shots.is_dir() {
        for entry in std::fs::read_dir(&shots)?.flatten() {
            if entry.path().extension().is_some_and(|e| e == "png") {
                std::fs::remove_file(entry.path())?;
            }
        }
    }
    // One window at a time: each WebKitWebDriver serves one session.
    sh(Command::new("xvfb-run")
        .args(["-a", "-s", "-screen 0 1280x800x24"])
        .arg(cargo_program())
        .args(["test", "-p", CRATE, "--", "--test-threads=1"])
        .current_dir(&root)
        .env("FLOORWATCH_DESKTOP_APP", target.join("debug/floorwatch-desktop"))
        .env("TAURI_DRIVER", &driver)
        .env("FLOORWATCH_BIN", root.join("target/debug/floorwatch"))
        .env("FLOORWATCH_E2E_SCREENSHOTS", &shots))?;
    eprintln!("xtask: end-to-end tests passed; screenshots in {}", shots.display());
    Ok(())
}
