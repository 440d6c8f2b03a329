//! The desktop half of `cargo xtask run`: builds the desktop app in release mode and opens
//! it on plant 1 of the factory `floorwatch up` is running, with the managers' view on the
//! factory's cloud node.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result, bail};

use crate::e2e::DESKTOP_LIBRARIES;
use crate::{cargo, ensure, sh, workspace_root};

/// Whether a window can be opened here.
pub(crate) fn display_available() -> bool {
    std::env::var_os("DISPLAY").is_some_and(|d| !d.is_empty()) || std::env::var_os("WAYLAND_DISPLAY").is_some()
}

/// Builds `floorwatch-desktop` (release); returns its path.
pub(crate) fn build() -> Result<PathBuf> {
    ensure(&[DESKTOP_LIBRARIES])?;
    eprintln!("xtask: building the desktop app (the first build takes several minutes)");
    sh(cargo().args(["build", "--release", "-p", crate::e2e::APP_CRATE]))?;
    Ok(workspace_root().join("target/release/floorwatch-desktop"))
}

/// The data directory `floorwatch up` uses with these arguments, as the binary itself
/// decides it (`--data-dir`, `FLOORWATCH_DATA_DIR`, or its default).
pub(crate) fn data_dir(floorwatch: &Path, args: &[String]) -> Result<PathBuf> {
    let out = Command::new(floorwatch)
        .arg("up")
        .args(args)
        .arg("--print-data-dir")
        .output()
        .with_context(|| format!("asking {} for its data directory", floorwatch.display()))?;
    if !out.status.success() {
        bail!("floorwatch up {} failed: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(PathBuf::from(String::from_utf8_lossy(&out.stdout).trim_end_matches('\n')))
}

/// Waits for the factory started at `since` to write its connection file, then opens
/// the app on its first plant, signed in as the demo supervisor, with settings of its own
/// (the user's are left alone).
pub(crate) fn open(app: &Path, data_dir: &Path, since: SystemTime) -> Result<Child> {
    let desktop = data_dir.join("desktop.json");
    let deadline = SystemTime::now() + Duration::from_secs(600);
    let text = loop {
        let fresh = std::fs::metadata(&desktop).and_then(|m| m.modified()).is_ok_and(|t| t >= since);
        if fresh {
            break std::fs::read_to_string(&desktop).with_context(|| format!("reading {}", desktop.display()))?;
        }
        if SystemTime::now() > deadline {
            bail!("{} did not appear within 10 minutes", desktop.display());
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    let file: serde_json::Value = serde_json::from_str(&text)?;
    let plant = file["plants"].get(0).context("desktop.json lists no plant")?;
    let field = |k: &str| plant[k].as_str().unwrap_or_default().replace('\\', "\\\\").replace('"', "\\\"");
    let dir = workspace_root().join("target/desktop-run");
    std::fs::create_dir_all(&dir)?;
    let settings = dir.join("settings.toml");
    std::fs::write(
        &settings,
        format!(
            "[connection]\nplant = \"{}\"\ndatabase_url = \"{}\"\ncommand_url = \"{}\"\ntoken = \"{}\"\nuser = \"{}\"\n",
            field("plant"),
            field("database_url"),
            field("command_url"),
            field("token"),
            field("user")
        ),
    )?;
    // The managers' view reads the factory's cloud node with the manager's token it wrote.
    let cloud = |k: &str| file["cloud"][k].as_str().unwrap_or_default().replace('\\', "\\\\").replace('"', "\\\"");
    std::fs::write(
        dir.join("settings-manager.toml"),
        format!("[cloud]\nurl = \"{}\"\ntoken = \"{}\"\n", cloud("url"), cloud("token")),
    )?;
    eprintln!("xtask: opening the desktop app on plant {}", field("plant"));
    Command::new(app)
        .env("FLOORWATCH_DESKTOP_CONFIG", &settings)
        .env("FLOORWATCH_DESKTOP_CACHE", dir.join("cache.sqlite"))
        .spawn()
        .with_context(|| format!("starting {}", app.display()))
}
