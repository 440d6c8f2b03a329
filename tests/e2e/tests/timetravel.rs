//! Time travel in the real window: scrub back to before an injected fault and forward
//! past its acknowledgement, the past kept on the plant's views and left for Settings, a
//! diff between two instants that lists the anomaly, a shift report shown and exported,
//! play at 3600× through hours the plant recorded, and, with the plant stopped, instants
//! from this workstation's cache. Run under Xvfb: `cargo xtask e2e`.

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

/// The plant's past hours: every sensor every 10 minutes from `from_ms` to `to_ms`, with
/// an anomaly on `machine` raised at `fault_ms`; returns its id.
async fn backfill(
    plant: &FixturePlant,
    machine: &str,
    from_ms: i64,
    to_ms: i64,
    fault_ms: i64,
) -> anyhow::Result<String> {
    let mut guard = plant.fixture.lock().await;
    let f = guard.as_mut().context("no fixture")?;
    let sensor = f.sensor_ids(machine)[0];
    let mut id = None;
    let mut t = from_ms;
    while t < to_ms {
        f.tick(t).await?;
        if id.is_none() && t >= fault_ms {
            id = Some(f.raise_anomaly(sensor, "major", t).await?);
        }
        t += 600_000;
    }
    id.context("the fault lies inside the hours")
}

/// The text of the replay banner.
async fn replay_text(w: &AppWindow) -> anyhow::Result<String> {
    Ok(w.js("return document.getElementById('replay-text')?.textContent || ''")
        .await?
        .as_str()
        .unwrap_or("")
        .to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scrubbing_back_before_a_fault_and_past_its_acknowledgement_then_the_diff_and_the_shift_report()
-> anyhow::Result<()> {
    let mut plant = FixturePlant::start(layout()).await?;
    // Hours the plant recorded before the window opened, with a fault three hours ago.
    let started = now_ms();
    let past_fault = started - 3 * 3_600_000;
    let past_id = backfill(&plant, "P1-L02-M003", started - 4 * 3_600_000, started - 300_000, past_fault).await?;
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
    // The time bar is only where picking an instant means something; the past stays on
    // the plant's views (the banner says which), and Settings goes back to live.
    assert!(w.js("return document.getElementById('timebar').offsetParent === null").await?.as_bool() == Some(true));
    assert!(w.text("#replay-scope").await?.contains("Settings or Managers go back to live"));
    w.go("#/floor").await?;
    w.wait_js("the bar on the floor", "document.getElementById('timebar').offsetParent !== null", 10).await?;
    w.go("#/settings").await?;
    w.wait_js(
        "live again on Settings",
        "document.getElementById('replay-banner').hidden && !document.body.classList.contains('replay')",
        20,
    )
    .await?;
    w.wait_js("the bar hidden on Settings", "document.getElementById('timebar').offsetParent === null", 10).await?;
    w.wait_js("the toast", "document.getElementById('toasts').textContent.includes('Back to live')", 10).await?;

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
    w.js("document.getElementById('dialog').close(); return true;").await?;

    // Play at 3600× from four and a half hours ago: the clock runs an hour a second and
    // the floor moves with it (the fault three hours ago appears), then pause holds it.
    let past_tile = r#".tile[data-machine="P1-L02-M003"]"#;
    w.go("#/floor").await?;
    pick(&w, "#travel-at", started - 4 * 3_600_000 - 1_800_000, "change").await?;
    w.wait_js("the replay banner", "!document.getElementById('replay-banner').hidden", 20).await?;
    w.wait_js(
        "the tile before the old fault",
        &format!("document.querySelector('{past_tile}').dataset.state !== 'anomaly'"),
        20,
    )
    .await?;
    let start_text = replay_text(&w).await?;
    w.screenshot("timetravel-play-start").await?;
    w.js("const s = document.getElementById('travel-speed'); s.value = '3600'; s.dispatchEvent(new Event('change')); return true;")
        .await?;
    w.js("document.getElementById('travel-play').click(); return true;").await?;
    w.wait_js(
        "the old fault while playing",
        &format!("document.querySelector('{past_tile}').dataset.state === 'anomaly'"),
        20,
    )
    .await?;
    w.js("document.getElementById('travel-play').click(); return true;").await?;
    let paused_text = replay_text(&w).await?;
    assert!(!paused_text.is_empty() && paused_text != start_text, "the clock moved: {start_text} → {paused_text}");
    w.wait_js("the pause button reads Play", "document.getElementById('travel-play').textContent === 'Play'", 5)
        .await?;
    w.screenshot("timetravel-play-paused").await?;
    tokio::time::sleep(std::time::Duration::from_millis(2_500)).await;
    assert_eq!(replay_text(&w).await?, paused_text, "paused: the instant holds");
    w.click("#back-to-live").await?;
    w.wait_js("live after play", "document.getElementById('replay-banner').hidden", 20).await?;

    // The plant stopped: the instant seen before comes from this workstation's cache and
    // says so; another instant the cache holds is folded from what the app received; one
    // it does not hold is refused plainly.
    let answers_before = after_ack - after_ack % 1_000;
    plant.stop_database().await?;
    w.wait_js("offline", r#"document.getElementById('link-badge').dataset.state !== 'live'"#, 40).await?;
    pick(&w, "#travel-at", answers_before, "change").await?;
    w.wait_js(
        "the cached instant",
        "(document.getElementById('replay-text') || {}).textContent?.includes(\"from this workstation's cache\")",
        40,
    )
    .await?;
    assert!(w.text("#replay-cache").await?.contains("the plant cannot be reached"));
    w.wait_js("the tile as it was", &format!("document.querySelector('{tile}').dataset.state === 'anomaly'"), 10)
        .await?;
    w.screenshot("timetravel-offline-cache").await?;
    w.js("const c = document.getElementById('travel-clock'); c.value = 'known'; c.dispatchEvent(new Event('change')); return true;")
        .await?;
    pick(&w, "#travel-at", answers_before - 2_000, "change").await?;
    w.wait_js(
        "the floor as received",
        "(document.getElementById('replay-cache') || {}).textContent?.includes('as this workstation received it')",
        40,
    )
    .await?;
    assert!(w.text("#replay-text").await?.contains("as we knew it then"));
    w.screenshot("timetravel-offline-received").await?;
    pick(&w, "#travel-at", past_fault, "change").await?;
    w.wait_js("the refusal", "document.getElementById('toasts').textContent.includes('not in the cache')", 40).await?;
    w.screenshot("timetravel-offline-outside").await?;
    assert!(!past_id.is_empty());
    w.close().await
}
