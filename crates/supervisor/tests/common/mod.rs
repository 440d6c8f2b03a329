//! Shared helpers for the supervisor's database tests: a fixture plant (a real log, the
//! real projections and command API), an app on it, and waiting for an update.

#![allow(dead_code)]
// Test helpers: a failed setup step should stop the test where it failed.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use plant_fixture::{CommandApi, Layout, PlantFixture, reader_url};
use supervisor::config::{Connection, Settings};
use supervisor::{Options, Supervisor, Update, now_ms};

/// The supervisor the app signs in as.
pub const SUPERVISOR: &str = "Ana";

pub struct Plant {
    pub fixture: Arc<tokio::sync::Mutex<Option<PlantFixture>>>,
    pub commands: CommandApi,
    pub reader_url: String,
    pub dir: tempfile::TempDir,
    /// Ana's own token.
    pub token: String,
}

/// A small plant (2 lines × 3 machines × 4 sensors) in the database of `admin_url`.
pub async fn plant(admin_url: &str) -> Plant {
    let mut fixture = PlantFixture::install(admin_url).await.unwrap();
    fixture.seed(Layout::small(2, 3, 4), now_ms()).await.unwrap();
    let commands = CommandApi::start(&fixture).await.unwrap();
    let token = fixture.person(access::Role::Supervisor, SUPERVISOR).await.unwrap();
    let slot = Arc::new(tokio::sync::Mutex::new(Some(fixture)));
    Plant { fixture: slot, commands, reader_url: reader_url(admin_url), dir: tempfile::tempdir().unwrap(), token }
}

impl Plant {
    pub fn options(&self) -> Options {
        let settings_path = self.dir.path().join("desktop.toml");
        if !settings_path.exists() {
            let settings = Settings {
                connection: Connection {
                    plant: "P1".into(),
                    database_url: self.reader_url.clone(),
                    command_url: self.commands.url(),
                    token: self.token.clone(),
                    user: SUPERVISOR.into(),
                    role: "supervisor".into(),
                },
                ..Settings::default()
            };
            settings.save(&settings_path).unwrap();
        }
        Options {
            settings_path,
            cache_path: Some(self.dir.path().join("cache.sqlite")),
            demo_dir: self.dir.path().join("demo"),
            floorwatch_bin: None,
            exe_dir: None,
            path_var: None,
        }
    }

    pub fn app(&self) -> Supervisor {
        Supervisor::open(self.options()).unwrap()
    }

    pub async fn with<T>(&self, f: impl AsyncFnOnce(&mut PlantFixture) -> T) -> T {
        let mut guard = self.fixture.lock().await;
        f(guard.as_mut().unwrap()).await
    }
}

/// Waits up to `secs` for a condition on the app.
pub async fn until(secs: u64, what: &str, mut f: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    while !f() {
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits for the first update matching `f`.
pub async fn next_update(
    rx: &mut tokio::sync::broadcast::Receiver<Update>,
    secs: u64,
    mut f: impl FnMut(&Update) -> bool,
) -> Update {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match tokio::time::timeout(left, rx.recv()).await {
            Ok(Ok(u)) if f(&u) => return u,
            Ok(Ok(_)) | Ok(Err(tokio::sync::broadcast::error::RecvError::Lagged(_))) => {}
            Ok(Err(e)) => panic!("updates ended: {e}"),
            Err(_) => panic!("no matching update within {secs} s"),
        }
    }
}
