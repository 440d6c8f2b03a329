//! The desktop app as a person installs it: the Debian package `cargo xtask dist` builds,
//! installed with dpkg. `cargo xtask dist --install-test` installs the package, runs this
//! test against `/usr/bin/floorwatch-desktop`, and removes the package again; plain test
//! runs skip it (it needs the package installed, which needs root).

use floorwatch_e2e::window::{AppWindow, settings_for};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the desktop package installed: cargo xtask dist --install-test runs it"]
async fn the_installed_app_opens_on_its_first_run_screen_with_the_demo_factory_it_carries() -> anyhow::Result<()> {
    let app = floorwatch_e2e::app_path();
    anyhow::ensure!(
        app.starts_with("/usr/bin"),
        "FLOORWATCH_DESKTOP_APP is {}, not the installed app in /usr/bin",
        app.display()
    );
    anyhow::ensure!(
        std::env::var_os("FLOORWATCH_BIN").is_none(),
        "FLOORWATCH_BIN is set: the app must find the floorwatch program its package installed"
    );
    let dir = tempfile::tempdir()?;
    let mut w = AppWindow::launch("installed", dir.path(), &settings_for(None)).await?;
    w.wait_css("#first-run #start-demo", 20).await?;
    w.wait_css("#first-run #first-token", 5).await?;
    assert_eq!(w.text("#link-text").await?, "No plant set up");
    // The package carries the floorwatch program, so the demo factory can be started.
    w.js("window.__installedDemo = undefined; \
         window.__TAURI__.core.invoke('settings').then(v => { window.__installedDemo = v.demo_available; }); \
         return true;")
        .await?;
    w.wait_js("the app's answer", "window.__installedDemo !== undefined", 10).await?;
    let demo = w.js("return window.__installedDemo;").await?;
    assert_eq!(demo, serde_json::Value::Bool(true), "the installed app does not find the floorwatch program");
    w.screenshot("first-run").await?;
    w.close().await
}
