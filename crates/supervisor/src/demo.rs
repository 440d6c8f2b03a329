//! The first-run path: start the demo factory (`floorwatch up`) on this machine and read
//! the connection to its first plant, and the demo supervisor's token the app signs in
//! with, from the `desktop.json` it writes.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use tokio::process::{Child, Command};

use crate::config::{Connection, DesktopFile};
use crate::error::{AppError, ErrorCode};

/// How long the factory may take to write `desktop.json` (it creates a cluster and
/// five plant databases on first start).
const START_TIMEOUT: Duration = Duration::from_secs(240);

/// Finds the `floorwatch` binary: an explicit path, next to the app's executable, or on PATH.
pub fn find_floorwatch(explicit: Option<&Path>, exe_dir: Option<&Path>, path_var: Option<&str>) -> Option<PathBuf> {
    if let Some(p) = explicit {
        return p.is_file().then(|| p.to_path_buf());
    }
    if let Some(dir) = exe_dir {
        let p = dir.join("floorwatch");
        if p.is_file() {
            return Some(p);
        }
    }
    path_var.and_then(|paths| std::env::split_paths(paths).map(|d| d.join("floorwatch")).find(|p| p.is_file()))
}

/// A factory this app started; it is stopped (politely) when the app shuts down.
#[derive(Debug)]
pub struct DemoFactory {
    child: Child,
    pub data_dir: PathBuf,
}

impl DemoFactory {
    /// Starts `floorwatch up --data-dir DIR` and waits for the connection of plant 1.
    pub async fn start(bin: &Path, data_dir: &Path) -> Result<(DemoFactory, Connection), AppError> {
        let demo_err = |m: String| AppError::new(ErrorCode::Demo, m);
        std::fs::create_dir_all(data_dir).map_err(|e| demo_err(format!("creating {}: {e}", data_dir.display())))?;
        let log_path = data_dir.join("desktop-up.log");
        let log =
            std::fs::File::create(&log_path).map_err(|e| demo_err(format!("creating {}: {e}", log_path.display())))?;
        let log2 = log.try_clone().map_err(|e| demo_err(e.to_string()))?;
        let started = SystemTime::now();
        let child = Command::new(bin)
            .arg("up")
            .arg("--data-dir")
            .arg(data_dir)
            .stdin(std::process::Stdio::null())
            .stdout(log)
            .stderr(log2)
            .spawn()
            .map_err(|e| demo_err(format!("starting {}: {e}", bin.display())))?;
        let mut factory = DemoFactory { child, data_dir: data_dir.to_path_buf() };
        let desktop = data_dir.join("desktop.json");
        let deadline = tokio::time::Instant::now() + START_TIMEOUT;
        loop {
            if let Ok(Some(status)) = factory.child.try_wait() {
                let tail = std::fs::read_to_string(&log_path).unwrap_or_default();
                let tail: String =
                    tail.lines().rev().take(8).collect::<Vec<_>>().into_iter().rev().collect::<Vec<_>>().join("\n");
                return Err(demo_err(format!("the demo factory stopped ({status}):\n{tail}")));
            }
            // Only a file written by this run counts: an old one names ports of the past.
            let fresh = std::fs::metadata(&desktop).and_then(|m| m.modified()).is_ok_and(|t| t >= started);
            if fresh
                && let Ok(text) = std::fs::read_to_string(&desktop)
                && let Ok(file) = DesktopFile::parse(&text)
                && let Some(conn) = file.first_connection()
            {
                return Ok((factory, conn));
            }
            if tokio::time::Instant::now() > deadline {
                factory.stop().await;
                return Err(demo_err(format!(
                    "the demo factory did not write {} within {} s; see {}",
                    desktop.display(),
                    START_TIMEOUT.as_secs(),
                    log_path.display()
                )));
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// Asks the factory to stop (SIGTERM, so it stops its cluster cleanly) and waits a while.
    pub async fn stop(&mut self) {
        if let Some(pid) = self.child.id() {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), nix::sys::signal::Signal::SIGTERM);
        }
        if tokio::time::timeout(Duration::from_secs(20), self.child.wait()).await.is_err() {
            let _ = self.child.kill().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_binary_is_found_explicitly_beside_the_app_or_on_path() {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("floorwatch");
        std::fs::write(&bin, "").unwrap();
        assert_eq!(find_floorwatch(Some(&bin), None, None), Some(bin.clone()));
        assert_eq!(find_floorwatch(Some(&dir.path().join("nope")), Some(dir.path()), None), None);
        assert_eq!(find_floorwatch(None, Some(dir.path()), None), Some(bin.clone()));
        let path = format!("/nonexistent:{}", dir.path().display());
        assert_eq!(find_floorwatch(None, None, Some(&path)), Some(bin));
        assert_eq!(find_floorwatch(None, None, Some("/nonexistent")), None);
    }

    #[tokio::test]
    async fn a_factory_that_dies_at_once_is_reported_with_its_output() {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("fake-up");
        std::fs::write(&bin, "#!/bin/sh\necho 'no postgres here' >&2\nexit 3\n").unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
        let err = DemoFactory::start(&bin, &dir.path().join("data")).await.unwrap_err();
        assert_eq!(err.code, ErrorCode::Demo);
        assert!(err.message.contains("no postgres here"), "{}", err.message);
    }

    #[tokio::test]
    async fn a_factory_that_writes_desktop_json_gives_plant_one() {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("fake-up");
        let script = r#"#!/bin/sh
# $1=up $2=--data-dir $3=DIR
sleep 0.3
printf '{"plants":[{"plant":"P1","name":"Lyon","database_url":"postgresql://floorwatch_reader:x@127.0.0.1:1/floorwatch_p1","command_url":"http://127.0.0.1:2","token":"fwt_t","user":"Demo supervisor"}]}' > "$3/desktop.json"
sleep 60
"#;
        std::fs::write(&bin, script).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
        let (mut factory, conn) = DemoFactory::start(&bin, &dir.path().join("data")).await.unwrap();
        assert_eq!(conn.plant, "P1");
        assert_eq!((conn.token.as_str(), conn.user.as_str()), ("fwt_t", "Demo supervisor"));
        factory.stop().await;
    }
}
