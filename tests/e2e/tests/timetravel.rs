//! Time travel in the real window: scrub back to before an injected fault and forward
//! past its acknowledgement, a diff between two instants that lists the anomaly, and a
//! shift report shown and exported. Run under Xvfb: `cargo xtask e2e`.

use anyhow::Context;

use floorwatch_e2e::plant::{FixturePlant, PlantUnderTest};
use floorwatch_e2e::window::{AppWindow, settings_for};
use plant_fixture::Layout;
use supervisor::now_ms;

fn layout() -> Layout {
    Layout::small(4, 12, 6)
}

/// Sets a `datetime-local` input to the instant `ms` (in the page's time zone) and
/// tells the page, as picking it would.
async fn pick(w: &AppWindow, css: &str, ms: i64, event: &str) -> anyhow::Result<()> {
    let script = format!(
        r#"const d = new Date({ms}); const p = (n) => String(n).padStart(2, '0');
           const i = document.querySelector('{css}');
           i.value = `${{d.getFullYear()}}-${{p(d.getMonth() + 1)}}-${{p(d.getDate())}}T${{p(d.getHours())}}:${{p(d.getMinutes())}}:${{p(d.getSeconds())}}`;
           i.dispatchEvent(new Event('{event}')); return true;"#
    );
    w.js(&script).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scrubbing_back_before_a_fault_and_past_its_acknowledgement_then_the_diff_and_the_shift_report()
-> anyhow::Result<()> {
    let plant = FixturePlant::start(layout()).await?;
    let dir = tempfile::tempdir()?;
    let mut w = AppWindow::launch("timetravel", dir.path(), &settings_for(Some(plant.connection()))).await?;
    w.wait_js("the live badge", r#"document.getElementById('link-badge').dataset.state === 'live'"#, 30).await?;
    w.wait_js("48 tiles", "document.querySelectorAll('.tile[data-machine]').length === 48", 20).await?;
    w.wait_css("#travel-at", 10).await?;

    // Seconds of normal running, then a fault, acknowledged in the app.
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    let before_fault = now_ms() - 1_000;
    let id = plant.inject_fault("P1-L03-M007", "critical").await?;
    let tile = r#".tile[data-machine="P1-L03-M007"]"#;
    w.wait_js("the tile in anomaly", &format!("document.querySelector('{tile}').dataset.state === 'anomaly'"), 30)
        .await?;
    w.go("#/anomalies").await?;
    let row = format!(r#"#anomaly-rows tr[data-anomaly="{id}"]"#);
    w.wait_css(&row, 30).await?;
    w.click(&format!("{row} td:nth-child(3)")).await.context("selecting the row")?;
    w.js("document.dispatchEvent(new KeyboardEvent('keydown', { key: 'a', bubbles: true })); return true;").await?;
    w.wait_css("dialog[open] #f-note", 5).await?;
    w.keys("#f-note", "Seal replaced").await?;
    w.click("#dialog-submit").await?;
    let acknowledged = format!(
        r#"(document.querySelector('{}') || {{}}).textContent?.includes('acknowledged')"#,
        row.replace('\'', "\\'")
    );
    w.wait_js("the row acknowledged", &acknowledged, 20).await?;
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    let after_ack = now_ms();
    assert_eq!(plant.anomaly_state(&id).await?, "acknowledged");

    // Back to before the fault: the screen says it shows the past, the tile is calm.
    w.go("#/floor").await?;
    w.wait_css(tile, 10).await?;
    pick(&w, "#travel-at", before_fault, "change").await?;
    w.wait_js("the replay banner", "!document.getElementById('replay-banner').hidden", 20).await?;
    let banner = w.text("#replay-text").await?;
    assert!(banner.contains("replay") && banner.contains("as it happened"), "{banner}");
    w.wait_js(
        "the tile before the fault",
        &format!("document.querySelector('{tile}').dataset.state !== 'anomaly'"),
        20,
    )
    .await?;
    w.screenshot("timetravel-before-fault").await?;

    // Forward past the acknowledgement: the anomaly is there, acknowledged by Ana, and
    // acting on it is disabled in the past.
    pick(&w, "#travel-at", after_ack, "change").await?;
    w.wait_js("the tile after the fault", &format!("document.querySelector('{tile}').dataset.state === 'anomaly'"), 20)
        .await?;
    w.screenshot("timetravel-after-acknowledgement").await?;
    w.go("#/anomalies").await?;
    w.wait_js("the acknowledged row in the past", &acknowledged, 20).await?;
    w.click(&format!("{row} td:nth-child(3)")).await?;
    w.wait_js(
        "actions disabled",
        "[...document.querySelectorAll('#view button')].filter(b => /^(Shelve|Add note)/.test(b.textContent.trim())).every(b => b.disabled)",
        10,
    )
    .await?;
    w.screenshot("timetravel-actions-disabled").await?;

    // One click back to live.
    w.click("#back-to-live").await?;
    w.wait_js(
        "live again",
        "document.getElementById('replay-banner').hidden && !document.body.classList.contains('replay')",
        20,
    )
    .await?;

    // What changed between the two instants lists the anomaly.
    w.go("#/floor").await?;
    w.click("#travel-changes").await?;
    w.wait_css("dialog[open] #range-from", 5).await?;
    pick(&w, "#range-from", before_fault, "input").await?;
    pick(&w, "#range-to", after_ack, "input").await?;
    w.click("#range-go").await?;
    w.wait_css(&format!(r#"#changes-list tr[data-anomaly="{id}"][data-kind="anomaly_opened"]"#), 20).await?;
    w.wait_css(&format!(r#"#changes-list tr[data-anomaly="{id}"][data-kind="anomaly_acknowledged"]"#), 5).await?;
    w.screenshot("timetravel-what-changed").await?;
    w.js("document.getElementById('dialog').close(); return true;").await?;

    // The shift report: shown, then exported as a PNG page and a CSV.
    w.click("#travel-report").await?;
    w.wait_css("dialog[open] #range-from", 5).await?;
    pick(&w, "#range-from", before_fault - 60_000, "input").await?;
    pick(&w, "#range-to", after_ack, "input").await?;
    w.click("#range-go").await?;
    w.wait_js(
        "the report",
        "(document.getElementById('report-lines') || {}).textContent?.includes('Anomalies raised: 1')",
        20,
    )
    .await?;
    assert!(w.text("#report-lines").await?.contains("Seal replaced"), "the note is in the report");
    w.click("#export-report").await?;
    w.wait_css("#export-done", 20).await?;
    let done = w.text("#export-done").await?;
    let png = done.split_whitespace().find(|p| p.ends_with(".png")).context("the PNG's path")?;
    let csv = done.split_whitespace().find(|p| p.ends_with(".csv")).context("the CSV's path")?;
    let bytes = std::fs::read(png)?;
    assert_eq!(&bytes[..4], b"\x89PNG");
    assert!(std::fs::read_to_string(csv)?.contains(&id));
    let shots = floorwatch_e2e::screenshots_dir();
    std::fs::create_dir_all(&shots)?;
    std::fs::copy(png, shots.join("timetravel-shift-report-export.png"))?;
    w.screenshot("timetravel-shift-report").await?;
    w.close().await
}
