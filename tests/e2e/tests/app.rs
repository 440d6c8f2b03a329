//! The real app window against a plant: the floor, a machine's trends, a new anomaly
//! arriving, acknowledging it, an outage and the catch-up after it, and the first run.
//! Run one at a time under Xvfb: `cargo xtask e2e`.

use anyhow::Context;

use floorwatch_e2e::plant::{FixturePlant, PlantUnderTest};
use floorwatch_e2e::window::{AppWindow, settings_for};
use plant_fixture::Layout;

/// A plant big enough to look like one: 4 lines of 12 machines, 6 sensors each.
fn layout() -> Layout {
    Layout::small(4, 12, 6)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_plant_floor_shows_every_machine_and_a_machine_page_draws_its_trends() -> anyhow::Result<()> {
    let plant = FixturePlant::start(layout()).await?;
    plant.write_history("P1-L02-M003").await?;
    let dir = tempfile::tempdir()?;
    let mut w = AppWindow::launch("floor", dir.path(), &settings_for(Some(plant.connection()))).await?;
    w.wait_js("the live badge", r#"document.getElementById('link-badge').dataset.state === 'live'"#, 30).await?;
    w.wait_js("48 tiles", "document.querySelectorAll('.tile[data-machine]').length === 48", 20).await?;
    w.wait_js("KPIs", "document.getElementById('kpi-reporting').textContent.includes('288')", 10).await?;
    assert_eq!(w.count("section.line").await?, 4);
    w.screenshot("plant-floor").await?;

    // A machine page: prediction, trends drawn by the app (SVG), hover reads a value.
    w.click(r#".tile[data-machine="P1-L02-M003"]"#).await?;
    w.wait_js("six charts drawn", "document.querySelectorAll('#charts .chart-body svg').length === 6", 30).await?;
    let days = w.text("#prediction .days").await?;
    assert!(days.ends_with("days"), "{days}");
    w.js(r#"const b = document.querySelector('#charts .chart-body');
            const r = b.getBoundingClientRect();
            b.dispatchEvent(new MouseEvent('mousemove', { clientX: r.left + r.width * 0.6, clientY: r.top + 40, bubbles: true }));
            return true;"#)
        .await?;
    let readout = w.text("#charts .readout").await?;
    assert!(readout.contains('·'), "hover shows time and value: {readout}");
    w.screenshot("machine-page").await?;

    // How far to trust the number: the failure forty days ago was alerted five days ahead,
    // with what was predicted a week, three days and a day before it.
    w.wait_js(
        "the machine's track record",
        "(document.getElementById('track-machine') || {}).textContent?.includes('1 of 1 failures alerted 3–7 days ahead')",
        30,
    )
    .await?;
    assert!(w.text("#track-machine").await?.contains("intervals held 100 %"));
    assert!(w.text("#track-type").await?.contains("1 of 1 failures"));
    assert_eq!(w.count("#track-failures tbody tr").await?, 1);
    let week_before = w.text("#track-failures tbody tr td:nth-child(4)").await?;
    assert!(week_before.contains("was 7"), "the prediction a week before, beside the truth: {week_before}");
    w.js("document.getElementById('track-record').scrollIntoView(); return true;").await?;
    w.screenshot("machine-track-record").await?;

    // Maintenance: machines by predicted days to service, with their track record.
    w.go("#/maintenance").await?;
    w.wait_css("#maintenance-rows tr[data-machine]", 10).await?;
    let first = w.text("#maintenance-rows tr[data-machine] td:nth-child(3)").await?;
    assert!(first.ends_with(" d"), "{first}");
    let track = w.text(r#"#maintenance-rows tr[data-machine="P1-L02-M003"] td:nth-child(5)"#).await?;
    assert_eq!(track, "1/1 in time · 100 %");
    w.screenshot("maintenance").await?;

    // Dark theme, from the settings screen.
    w.go("#/settings").await?;
    w.wait_css("#set-theme", 10).await?;
    w.js("const s = document.getElementById('set-theme'); s.value = 'dark'; s.dispatchEvent(new Event('change')); return true;").await?;
    w.click("#settings-save").await?;
    w.wait_js("saved", "document.getElementById('settings-status').textContent === 'Saved.'", 10).await?;
    w.go("#/floor").await?;
    w.wait_js("tiles again", "document.querySelectorAll('.tile[data-machine]').length === 48", 10).await?;
    w.screenshot("plant-floor-dark").await?;
    w.close().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_anomaly_appears_within_seconds_and_acknowledging_it_sends_the_command() -> anyhow::Result<()> {
    let plant = FixturePlant::start(layout()).await?;
    let dir = tempfile::tempdir()?;
    let mut w = AppWindow::launch("anomaly", dir.path(), &settings_for(Some(plant.connection()))).await?;
    w.wait_js("the live badge", r#"document.getElementById('link-badge').dataset.state === 'live'"#, 30).await?;
    w.go("#/anomalies").await?;
    w.wait_css("#anomaly-rows", 10).await?;

    let id = plant.inject_fault("P1-L03-M007", "critical").await?;
    let row = format!(r#"#anomaly-rows tr[data-anomaly="{id}"]"#);
    w.wait_css(&row, 30).await?;
    w.screenshot("new-anomaly").await?;

    // Acknowledge it with a note, from the keyboard: select the row, press a, type, submit.
    w.click(&format!("{row} td:nth-child(3)")).await.context("selecting the row")?;
    w.js("document.dispatchEvent(new KeyboardEvent('keydown', { key: 'a', bubbles: true })); return true;").await?;
    w.wait_css("dialog[open] #f-note", 5).await?;
    w.keys("#f-note", "Coolant pump checked, restarting").await.context("typing the note")?;
    w.screenshot("acknowledge-dialog").await?;
    w.click("#dialog-submit").await.context("submitting")?;
    w.wait_js(
        "the row acknowledged",
        &format!(
            r#"(document.querySelector('{}') || {{}}).textContent?.includes('acknowledged')"#,
            row.replace('\'', "\\'")
        ),
        10,
    )
    .await?;
    let sent: Vec<_> =
        plant.received().into_iter().filter(|r| r.path.ends_with(&format!("{id}/acknowledge"))).collect();
    assert_eq!(sent.len(), 1, "one acknowledge command reached the plant");
    assert_eq!(sent[0].body["note"], "Coolant pump checked, restarting");
    assert!(sent[0].body.get("by").is_none(), "who acts is the token's");
    assert_eq!(sent[0].token, plant.token);
    assert!(sent[0].body["command_id"].as_str().is_some_and(|c| c.len() == 36));
    assert_eq!(plant.anomaly_state(&id).await?, "acknowledged");
    w.screenshot("acknowledged").await?;
    w.close().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopping_postgres_shows_offline_with_cached_data_and_restarting_catches_up() -> anyhow::Result<()> {
    let mut plant = FixturePlant::start(layout()).await?;
    let dir = tempfile::tempdir()?;
    let mut w = AppWindow::launch("outage", dir.path(), &settings_for(Some(plant.connection()))).await?;
    w.wait_js("the live badge", r#"document.getElementById('link-badge').dataset.state === 'live'"#, 30).await?;
    w.wait_js("48 tiles", "document.querySelectorAll('.tile[data-machine]').length === 48", 20).await?;

    plant.stop_database().await?;
    w.wait_js("offline", r#"document.getElementById('link-badge').dataset.state === 'offline'"#, 40).await?;
    let badge = w.text("#link-text").await?;
    assert!(badge.starts_with("Offline — data as of "), "{badge}");
    assert_eq!(w.count(".tile[data-machine]").await?, 48, "the floor stays on screen");
    assert!(!w.text("#banner").await?.is_empty());
    w.screenshot("offline").await?;

    // Restarted: the app reconnects by itself and catches up with what happened since.
    plant.start_database().await?;
    w.wait_js("live again", r#"document.getElementById('link-badge').dataset.state === 'live'"#, 60).await?;
    let id = plant.inject_fault("P1-L01-M002", "major").await?;
    w.go("#/anomalies").await?;
    w.wait_css(&format!(r#"#anomaly-rows tr[data-anomaly="{id}"]"#), 10).await?;
    w.screenshot("caught-up").await?;
    w.close().await?;

    // Reopened while the database is down: the cached floor is painted from the cache
    // (how fast is `desktop-bench`'s cold start).
    plant.stop_database().await?;
    let mut w = AppWindow::launch("outage-restart", dir.path(), &settings_for(Some(plant.connection()))).await?;
    w.wait_js("cached tiles", "document.querySelectorAll('.tile[data-machine]').length === 48", 20).await?;
    w.screenshot("cached-start").await?;
    w.close().await
}

/// What a person saw is in the cache when the window closes, at full plant size: the
/// window is closed the moment the floor of 10,000 sensors is painted, the database
/// stops, and the app opened again shows that floor from its cache (how fast is
/// `desktop-bench`'s cold start).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_plant_seen_just_before_closing_is_shown_again_offline() -> anyhow::Result<()> {
    let mut plant = FixturePlant::start(Layout::full()).await?;
    let dir = tempfile::tempdir()?;
    let w = AppWindow::launch("cache-full", dir.path(), &settings_for(Some(plant.connection()))).await?;
    w.wait_js("670 tiles", "document.querySelectorAll('.tile[data-machine]').length === 670", 180).await?;
    w.close_like_a_person().await?;

    plant.stop_database().await?;
    let mut w = AppWindow::launch("cache-full-restart", dir.path(), &settings_for(Some(plant.connection()))).await?;
    w.wait_js("670 tiles from the cache", "document.querySelectorAll('.tile[data-machine]').length === 670", 30)
        .await?;
    let reporting = w.text("#kpi-reporting").await?;
    assert!(
        reporting.contains("10000") || reporting.contains("10,000"),
        "the plant's figures came back too: {reporting}"
    );
    w.screenshot("cached-full-plant").await?;
    w.close().await
}

/// A plant whose anomaly detection has stopped must not look calm: the app says so
/// above the floor, with the time it stopped, and takes it away when it runs again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_app_says_when_anomaly_detection_has_stopped() -> anyhow::Result<()> {
    let plant = FixturePlant::start(Layout::full()).await?;
    let dir = tempfile::tempdir()?;
    let mut w = AppWindow::launch("detection-stopped", dir.path(), &settings_for(Some(plant.connection()))).await?;
    w.wait_js("the live badge", r#"document.getElementById('link-badge').dataset.state === 'live'"#, 120).await?;
    w.wait_js("670 tiles", "document.querySelectorAll('.tile[data-machine]').length === 670", 120).await?;
    assert!(w.js("return document.getElementById('tasks-banner').hidden").await?.as_bool().unwrap_or(false));

    let since = supervisor::now_ms() - 30 * 60_000;
    plant.report_task("monitor", "failing", since, Some("checkpoint holds non-finite numbers")).await?;
    w.wait_js(
        "the banner",
        "(document.querySelector('#tasks-banner [data-task=\"monitor\"]') || {}).textContent?.startsWith('Anomaly detection stopped since ')",
        30,
    )
    .await?;
    w.screenshot("detection-stopped").await?;

    plant.report_task("monitor", "running", supervisor::now_ms(), None).await?;
    w.wait_js("the banner gone", "document.getElementById('tasks-banner').hidden", 30).await?;
    w.close().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_run_asks_for_the_plant_and_the_persons_token_and_signs_in_with_it() -> anyhow::Result<()> {
    let plant = FixturePlant::start(layout()).await?;
    let mo = plant.person(access::Role::Maintenance, "Mo Keller").await?;
    let dir = tempfile::tempdir()?;
    let mut w = AppWindow::launch("first-run", dir.path(), &settings_for(None)).await?;
    w.wait_css("#first-run #start-demo", 20).await?;
    w.wait_css("#first-run #first-token", 5).await?;
    let badge = w.text("#link-text").await?;
    assert_eq!(badge, "No plant set up");
    w.screenshot("first-run").await?;

    // A token the plant does not know is refused, and said so.
    let c = plant.connection();
    let fill = |token: &str| {
        anyhow::Ok(format!(
            r#"const set = (id, v) => {{ const e = document.getElementById(id); e.value = v; e.dispatchEvent(new Event('input')); }};
               set('first-plant', {}); set('first-database', {}); set('first-command', {}); set('first-token', {});
               return true;"#,
            serde_json::to_string(&c.plant)?,
            serde_json::to_string(&c.database_url)?,
            serde_json::to_string(&c.command_url)?,
            serde_json::to_string(token)?
        ))
    };
    let forged = format!("fwt_{}_{}", "1".repeat(16), "2".repeat(64));
    w.js(&fill(&forged)?).await?;
    w.click("#first-connect").await?;
    w.wait_js("the refusal", "document.getElementById('first-status').textContent.includes('unknown')", 20).await?;
    w.screenshot("first-run-refused-token").await?;

    // The person's own token: signed in, named as the plant names them.
    w.js(&fill(&mo)?).await?;
    w.click("#first-connect").await?;
    w.wait_js("the live badge", r#"document.getElementById('link-badge').dataset.state === 'live'"#, 30).await?;
    w.wait_js("48 tiles", "document.querySelectorAll('.tile[data-machine]').length === 48", 20).await?;
    w.wait_js("who is signed in", "document.getElementById('user').textContent === 'Mo Keller · maintenance'", 20)
        .await?;
    w.screenshot("signed-in").await?;
    w.go("#/settings").await?;
    w.wait_css("#signed-in-as", 10).await?;
    assert!(w.text("#signed-in-as").await?.contains("Mo Keller (maintenance)"));
    w.screenshot("settings-signed-in").await?;
    w.close().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_action_the_plant_refuses_is_listed_with_its_reason_and_the_actions_after_it_go_through()
-> anyhow::Result<()> {
    let plant = FixturePlant::start(layout()).await?;
    let dir = tempfile::tempdir()?;
    let mut w = AppWindow::launch("failed-list", dir.path(), &settings_for(Some(plant.connection()))).await?;
    w.wait_js("the live badge", r#"document.getElementById('link-badge').dataset.state === 'live'"#, 30).await?;
    w.wait_js("who is signed in", "document.getElementById('user').textContent.startsWith('Ana Lima')", 20).await?;
    w.go("#/anomalies").await?;
    w.wait_css("#anomaly-rows", 10).await?;
    let id = plant.inject_fault("P1-L02-M004", "major").await?;
    let row = format!(r#"#anomaly-rows tr[data-anomaly="{id}"]"#);
    w.wait_css(&row, 30).await?;

    // The plant refuses the first action for good; the note after it must still go through.
    plant.commands.force(&[403]);
    w.click(&format!("{row} td:nth-child(3)")).await.context("selecting the row")?;
    w.js("document.dispatchEvent(new KeyboardEvent('keydown', { key: 'a', bubbles: true })); return true;").await?;
    w.wait_css("dialog[open] #f-note", 5).await?;
    w.keys("#f-note", "refused one").await?;
    w.click("#dialog-submit").await?;
    w.wait_js("the dialog to close", "!document.getElementById('dialog').open", 10).await?;
    w.js("document.dispatchEvent(new KeyboardEvent('keydown', { key: 'n', bubbles: true })); return true;").await?;
    w.wait_css("dialog[open] #f-text", 5).await?;
    w.keys("#f-text", "the note behind it").await?;
    w.click("#dialog-submit").await?;
    w.wait_js("the dialog to close", "!document.getElementById('dialog').open", 10).await?;
    w.wait_js("the refusal counted", "document.getElementById('pending').textContent.includes('1 refused')", 20)
        .await?;
    let plant_state = || plant.anomaly_state(&id);
    for _ in 0..60 {
        if plant.received().iter().any(|r| r.body["text"] == "the note behind it") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    let notes: Vec<_> = plant.received().into_iter().filter(|r| r.body["text"] == "the note behind it").collect();
    assert_eq!(notes.len(), 1, "the note behind the refused action was sent once");
    assert_eq!(plant_state().await?, "new", "the refused acknowledgement was not applied");
    w.click("#pending").await?;
    w.wait_css("#failed-list tr[data-command]", 10).await?;
    let failed = w.text("#failed-list").await?;
    assert!(failed.contains("Acknowledge") && failed.contains("Refused") && failed.contains("forced"), "{failed}");
    w.screenshot("failed-list").await?;
    w.close().await
}
