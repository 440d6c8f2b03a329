//! The app's window through WebDriver: launch (tauri-driver on its own ports, the app
//! with its own settings and cache), wait for what the page shows, click, type, and
//! save screenshots.

use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};
use supervisor::config::{Connection, Settings};
use tokio::process::{Child, Command};

/// One WebKitWebDriver session at a time: windows are opened one after another.
static ONE_WINDOW: LazyLock<Arc<tokio::sync::Mutex<()>>> = LazyLock::new(|| Arc::new(tokio::sync::Mutex::new(())));

/// A running app and the WebDriver session that drives it.
pub struct AppWindow {
    pub client: Client,
    driver: Child,
    test: String,
    shots: u32,
    pub dir: PathBuf,
    _one: tokio::sync::OwnedMutexGuard<()>,
}

/// Every process below `root` (WebKitWebDriver, the app, its WebKit processes).
fn descendants(root: u32) -> Vec<u32> {
    let mut parents = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else { continue };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { continue };
        // The parent is the second field after the command, which is in parentheses.
        let ppid = stat.rsplit_once(')').and_then(|(_, rest)| rest.split_whitespace().nth(1)?.parse::<u32>().ok());
        if let Some(ppid) = ppid {
            parents.push((pid, ppid));
        }
    }
    let mut found = vec![root];
    let mut i = 0;
    while i < found.len() {
        let p = found[i];
        found.extend(parents.iter().filter(|(_, pp)| *pp == p).map(|(c, _)| *c));
        i += 1;
    }
    found.retain(|p| *p != root);
    found
}

/// Whether `pid` is still running (a zombie has ended).
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rsplit_once(") ").and_then(|(_, rest)| rest.chars().next()))
        .is_some_and(|state| state != 'Z' && state != 'X')
}

/// An answer that means the element was replaced while the driver held it.
fn is_rerender(e: &fantoccini::error::CmdError) -> bool {
    e.is_stale_element_reference() || e.to_string().to_ascii_lowercase().contains("stale element")
}

fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Settings with this connection (or none: the first run).
pub fn settings_for(connection: Option<Connection>) -> Settings {
    Settings { connection: connection.unwrap_or_default(), ..Settings::default() }
}

impl AppWindow {
    /// Starts the app with `settings`, its cache in `dir` (kept across launches in the same dir).
    pub async fn launch(test: &str, dir: &Path, settings: &Settings) -> Result<AppWindow> {
        let one = ONE_WINDOW.clone().lock_owned().await;
        if std::env::var_os("DISPLAY").is_none() {
            bail!("no DISPLAY: run the end-to-end tests under xvfb-run (cargo xtask e2e does)");
        }
        let app = crate::app_path();
        if !app.is_file() {
            bail!("the app is not built at {} (cargo xtask e2e builds it)", app.display());
        }
        std::fs::create_dir_all(dir)?;
        let config = dir.join("desktop.toml");
        settings.save(&config)?;
        let port = free_port()?;
        let native = free_port()?;
        let log = std::fs::File::create(dir.join("tauri-driver.log"))?;
        let driver = Command::new(crate::tauri_driver())
            .args(["--port", &port.to_string(), "--native-port", &native.to_string()])
            .env("FLOORWATCH_DESKTOP_CONFIG", &config)
            .env("FLOORWATCH_DESKTOP_CACHE", dir.join("cache.sqlite"))
            .env("FLOORWATCH_DESKTOP_DEMO_DIR", dir.join("demo"))
            .env("FLOORWATCH_DESKTOP_EXPORTS", dir.join("exports"))
            .env("WEBKIT_DISABLE_COMPOSITING_MODE", "1")
            .env("RUST_LOG", "info")
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", crate::tauri_driver().display()))?;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err() {
            if tokio::time::Instant::now() > deadline {
                bail!("tauri-driver did not listen on {port}; see {}", dir.join("tauri-driver.log").display());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let mut caps = serde_json::Map::new();
        caps.insert("browserName".into(), json!("wry"));
        caps.insert("tauri:options".into(), json!({ "application": app }));
        let client = ClientBuilder::native()
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
            .context("opening a WebDriver session on the app")?;
        let window = AppWindow { client, driver, test: test.to_string(), shots: 0, dir: dir.to_path_buf(), _one: one };
        let _ = window.client.set_window_size(1280, 800).await;
        window.wait_css("#link-badge", 30).await?;
        Ok(window)
    }

    /// Closes the app as a person or the desktop session does (SIGTERM to the app, which
    /// it answers as its close button: a clean exit), waits for it to end, then closes the
    /// WebDriver session. Ending the session alone may take the app down without a close.
    pub async fn close_like_a_person(self) -> Result<()> {
        let app = self.driver.id().map(descendants).unwrap_or_default().into_iter().find(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.starts_with("floorwatch-desk"))
        });
        let app = app.context("the app's process was not found under tauri-driver")?;
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(app as i32), nix::sys::signal::Signal::SIGTERM)?;
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while alive(app) {
            anyhow::ensure!(std::time::Instant::now() < deadline, "the app did not close within 60 s of SIGTERM");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.close().await
    }

    /// Closes the session and stops tauri-driver with SIGTERM (SIGKILL would orphan
    /// WebKitWebDriver with its port and session).
    pub async fn close(mut self) -> Result<()> {
        let stragglers = self.driver.id().map(descendants).unwrap_or_default();
        let _ = self.client.clone().close().await;
        if let Some(pid) = self.driver.id() {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), nix::sys::signal::Signal::SIGTERM);
        }
        let _ = tokio::time::timeout(Duration::from_secs(10), self.driver.wait()).await;
        // The app (and its WebKit processes) must not outlive its session: a window left
        // behind would keep its cache open and skew every measurement after it.
        for pid in stragglers {
            if std::path::Path::new(&format!("/proc/{pid}")).exists() {
                let _ =
                    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), nix::sys::signal::Signal::SIGTERM);
            }
        }
        Ok(())
    }

    /// Saves a PNG of the window as `target/e2e-screenshots/<test>-<n>-<name>.png`.
    pub async fn screenshot(&mut self, name: &str) -> Result<PathBuf> {
        self.shots += 1;
        let dir = crate::screenshots_dir();
        std::fs::create_dir_all(&dir)?;
        let path = dir.join(format!("{}-{}-{name}.png", self.test, self.shots));
        let png = self.client.screenshot().await?;
        std::fs::write(&path, png)?;
        Ok(path)
    }

    /// Waits until `css` matches an element. A page that re-renders while it is being
    /// searched makes WebKitWebDriver answer "stale element": that is retried like
    /// "not there yet", as is every other answer a re-render can cause.
    pub async fn wait_css(&self, css: &str, secs: u64) -> Result<fantoccini::elements::Element> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
        loop {
            match self.client.find(Locator::Css(css)).await {
                Ok(element) => return Ok(element),
                Err(e) if (e.is_no_such_element() || is_rerender(&e)) && tokio::time::Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(150)).await;
                }
                Err(e) => return Err(e).with_context(|| format!("waiting {secs} s for {css}")),
            }
        }
    }

    /// Runs `script` in the page and returns its value.
    pub async fn js(&self, script: &str) -> Result<Value> {
        Ok(self.client.execute(script, vec![]).await?)
    }

    /// Waits until `script` (an expression) is truthy in the page.
    pub async fn wait_js(&self, what: &str, expression: &str, secs: u64) -> Result<()> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
        loop {
            let v = self.js(&format!("return !!({expression});")).await?;
            if v == Value::Bool(true) {
                return Ok(());
            }
            if tokio::time::Instant::now() > deadline {
                bail!("waited {secs} s for {what} ({expression})");
            }
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
    }

    /// The text of the element `css` matches, found again if a re-render replaced it.
    pub async fn text(&self, css: &str) -> Result<String> {
        for _ in 0..20 {
            match self.wait_css(css, 10).await?.text().await {
                Err(e) if is_rerender(&e) => tokio::time::sleep(Duration::from_millis(100)).await,
                other => return Ok(other?),
            }
        }
        bail!("{css} kept being replaced while its text was read")
    }

    pub async fn count(&self, css: &str) -> Result<usize> {
        Ok(self.client.find_all(Locator::Css(css)).await?.len())
    }

    /// Clicks the element `css` matches, found again if a re-render replaced it.
    pub async fn click(&self, css: &str) -> Result<()> {
        for _ in 0..20 {
            match self.wait_css(css, 10).await?.click().await {
                Err(e) if is_rerender(&e) => tokio::time::sleep(Duration::from_millis(100)).await,
                other => return Ok(other?),
            }
        }
        bail!("{css} kept being replaced while it was clicked")
    }

    /// Sends keys to the page as a person typing.
    pub async fn keys(&self, css: &str, text: &str) -> Result<()> {
        self.wait_css(css, 10).await?.send_keys(text).await?;
        Ok(())
    }

    pub async fn go(&self, hash: &str) -> Result<()> {
        self.js(&format!("location.hash = {}; return true;", json!(hash))).await?;
        Ok(())
    }
}
