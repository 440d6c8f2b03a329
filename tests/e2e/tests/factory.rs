//! The main end-to-end test, against the real demo factory: a private cluster, one small
//! plant node with the simulator, faults made frequent. The floor shows the plant's
//! machines; a fault the simulator injects appears in the anomaly list; acknowledging
//! it with a note changes its state in the plant's read models; stopping PostgreSQL
//! shows offline with cached data; restarting it catches up.

use std::time::Duration;

use anyhow::Context;
use floorwatch_e2e::factory::FactoryPlant;
use floorwatch_e2e::window::{AppWindow, settings_for};
use readmodel_contract::ReadModel;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_factory_end_to_end() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let plant = FactoryPlant::start(&dir.path().join("factory"), 400, 4, 40.0).await?;
    let machines = plant.rows(ReadModel::Machines).await?.machines.len();
    let app_dir = dir.path().join("app");
    let mut w = AppWindow::launch("factory", &app_dir, &settings_for(Some(plant.connection()))).await?;
    w.wait_js("the live badge", "document.getElementById('link-badge').dataset.state === 'live'", 60).await?;
    w.wait_js(
        "every machine on the floor",
        &format!("document.querySelectorAll('.tile[data-machine]').length === {machines} && {machines} > 0"),
        60,
    )
    .await?;
    w.wait_js("sensors reporting", "!document.getElementById('kpi-reporting').textContent.startsWith('0 ')", 60)
        .await?;
    w.screenshot("plant-floor").await?;

    // A fault injected by the simulator reaches the anomaly list.
    w.go("#/anomalies").await?;
    w.wait_css("#anomaly-rows", 10).await?;
    w.wait_js("a new anomaly", "document.querySelector('#anomaly-rows tr[data-anomaly] .state.new')", 240).await?;
    let id = w
        .js("return document.querySelector('#anomaly-rows .state.new').closest('tr').dataset.anomaly;")
        .await?
        .as_str()
        .context("an anomaly id")?
        .to_string();
    w.screenshot("anomaly").await?;

    let row = format!(r#"#anomaly-rows tr[data-anomaly="{id}"]"#);
    w.click(&format!("{row} td:nth-child(3)")).await?;
    w.js("document.dispatchEvent(new KeyboardEvent('keydown', { key: 'a', bubbles: true })); return true;").await?;
    w.wait_css("dialog[open] #f-note", 5).await?;
    w.keys("#f-note", "Checked on the floor: sensor reading confirmed").await?;
    w.click("#dialog-submit").await?;
    let mut state = String::new();
    for _ in 0..60 {
        state = plant.anomaly_state(&id).await?;
        if state != "new" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(state == "acknowledged" || state == "resolved", "the plant holds {id} as {state}");
    w.wait_js(
        "the acknowledgement on screen",
        &format!("(document.querySelector('{row}') || {{ textContent: 'acknowledged' }}).textContent.toLowerCase().match(/acknowledged|resolved/)"),
        20,
    )
    .await?;
    w.screenshot("acknowledged").await?;

    // PostgreSQL goes away: offline with the cached floor; back: live and caught up.
    w.go("#/floor").await?;
    plant.stop_database()?;
    w.wait_js("offline", "document.getElementById('link-badge').dataset.state === 'offline'", 60).await?;
    assert_eq!(w.count(".tile[data-machine]").await?, machines);
    w.screenshot("offline").await?;
    let before = w.js("return window.__fwPerf.updates;").await?.as_i64().unwrap_or(0);
    plant.start_database()?;
    w.wait_js("live again", "document.getElementById('link-badge').dataset.state === 'live'", 90).await?;
    w.wait_js("updates flowing again", &format!("window.__fwPerf.updates > {before} + 2"), 90).await?;
    w.screenshot("caught-up").await?;
    w.close().await?;
    plant.stop().await
}
