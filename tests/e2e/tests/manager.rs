//! The managers' view in the real window, against a real cloud node holding two months of
//! 5 plants: the 5 plants side by side; a month against the month before; exports of the
//! chart as PNG, SVG and CSV whose numbers are the API's; a drill-down to a machine; the
//! one-page report; new data forwarded to the cloud shows live; the cloud stopped → offline with
//! the cached month, restarted → live again with what arrived meanwhile; a snapshot saved, then
//! opened on a second workstation with no cloud at all and navigated down to a machine never
//! opened before saving, and zoomed below a week.

use std::collections::HashMap;
use std::time::Duration;

use anyhow::{Context, Result};
use floorwatch_e2e::cloud::BackfilledCloud;
use floorwatch_e2e::window::{AppWindow, settings_for};
use manager::api::{By, CloudClient};
use manager::config::ManagerSettings;
use manager::range::Bucket;
use serde_json::Value;

fn manager_settings(dir: &std::path::Path, cloud: Option<&BackfilledCloud>) -> Result<()> {
    std::fs::create_dir_all(dir)?;
    let s = ManagerSettings { cloud: cloud.map(|c| c.connection()).unwrap_or_default(), open_at_start: true };
    s.save(&dir.join("desktop-manager.toml"))?;
    Ok(())
}

const ROWS: &str = "document.querySelectorAll('#manager-table tr[data-plant]').length";

async fn select(w: &AppWindow, id: &str, value: &str) -> Result<()> {
    w.js(&format!(
        "const s = document.getElementById('{id}'); s.value = '{value}'; s.dispatchEvent(new Event('change')); return true;"
    ))
    .await?;
    Ok(())
}

/// Clicks through the page: the view re-renders while it is live, and WebKitWebDriver
/// answers a native click on a node being replaced with an empty error.
async fn press(w: &AppWindow, css: &str) -> Result<()> {
    w.wait_css(css, 30).await?;
    w.js(&format!("document.querySelector({}).click(); return true;", serde_json::json!(css))).await?;
    Ok(())
}

/// Waits until the chart's picture is decoded (an image loads after the page has it), so
/// a screenshot shows it.
async fn painted(w: &AppWindow) -> Result<()> {
    w.wait_js(
        "the chart painted",
        "(() => { const i = document.getElementById('manager-chart'); return i && i.complete && i.naturalWidth > 0; })()",
        30,
    )
    .await
}

async fn exported(w: &AppWindow, n: usize) -> Result<Vec<Value>> {
    if let Err(e) = w.wait_js("the exports", &format!("window.__fwManager.exports.length >= {n}"), 30).await {
        let said = w.js("return document.getElementById('toasts').innerText + ' / ' + JSON.stringify(window.__fwManager.exports) + JSON.stringify(window.__fwManager.errors);").await?;
        return Err(e.context(format!("the page said: {said}")));
    }
    Ok(w.js("return window.__fwManager.exports;").await?.as_array().cloned().unwrap_or_default())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_managers_view_end_to_end() -> Result<()> {
    let mut cloud = BackfilledCloud::start(5, 62).await?;
    let dir = tempfile::tempdir()?;
    let app_dir = dir.path().join("app");
    manager_settings(&app_dir, Some(&cloud))?;
    let mut w = AppWindow::launch("manager", &app_dir, &settings_for(None)).await?;
    w.wait_js("the managers' view", "location.hash === '#/manager'", 30).await?;
    w.wait_js("the cloud live", "document.getElementById('manager-badge').dataset.state === 'live'", 60).await?;
    w.wait_js("5 plants side by side", &format!("{ROWS} === 5"), 60).await?;
    painted(&w).await?;
    w.screenshot("plants").await?;

    // A month of the 5 plants; exports of its chart.
    press(&w, "button[data-preset=month]").await?;
    w.wait_js("the month", "document.getElementById('manager-range').textContent.includes('day buckets')", 30).await?;
    for f in ["png", "svg", "csv"] {
        press(&w, &format!("button[data-export='chart:{f}']")).await?;
    }
    press(&w, "#manager-report").await?;
    let files = exported(&w, 4).await?;
    let report = files.iter().find(|e| e["what"] == "report").and_then(|e| e["path"].as_str()).context("the report")?;
    assert_eq!(&std::fs::read(report)?[..8], b"\x89PNG\r\n\x1a\n");
    let path = |f: &str| -> Result<String> {
        files
            .iter()
            .find(|e| e["format"] == f && e["what"] == "chart")
            .and_then(|e| e["path"].as_str())
            .map(String::from)
            .with_context(|| format!("the {f} export"))
    };
    let png = std::fs::read(path("png")?)?;
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    let svg = std::fs::read_to_string(path("svg")?)?;
    assert!(svg.starts_with("<svg") && svg.contains("Plants side by side") && svg.contains("made "));
    let csv_text = std::fs::read_to_string(path("csv")?)?;
    assert!(csv_text.contains("# plants: P1, P2, P3, P4, P5\n"), "{csv_text}");
    // Every number of the CSV is the API's OEE of that plant and day.
    let first_bucket = csv_text.lines().find(|l| l.starts_with("\"P1") || l.starts_with("P1")).context("a P1 row")?;
    let from = first_bucket.split(',').rev().nth(1).context("a bucket")?;
    let from_ms = chrono::DateTime::parse_from_rfc3339(from)?.timestamp_millis();
    let api = CloudClient::new(&cloud.connection())
        .kpis(&[], from_ms, from_ms + 31 * manager::range::DAY_MS, Bucket::Day, By::Plant)
        .await?;
    let by_key: HashMap<(u16, String), Option<f64>> = api
        .iter()
        .map(|r| ((r.plant, r.bucket_start.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)), r.oee.oee))
        .collect();
    let body: String = csv_text.lines().filter(|l| !l.starts_with('#')).map(|l| format!("{l}\n")).collect();
    let mut checked = 0;
    for rec in csv::Reader::from_reader(body.as_bytes()).records() {
        let rec = rec?;
        let plant: u16 = rec[0].trim_start_matches('P').split(' ').next().unwrap_or("").parse()?;
        let want = by_key.get(&(plant, rec[1].to_string())).with_context(|| format!("{:?} from the API", &rec))?;
        // serde_json (without its float_roundtrip feature) may read a decimal one unit in
        // the last place off; the CSV prints each drawn value exactly. Equal to 1e-14.
        match (rec[2].parse::<f64>().ok(), *want) {
            (Some(got), Some(want)) => assert!((got - want).abs() <= 1e-14 * want.abs().max(1.0), "{:?} {want}", &rec),
            (got, want) => assert_eq!(got, want, "{:?}", &rec),
        }
        checked += 1;
    }
    assert_eq!(checked, 5 * 31);

    // This month against the month before, in one chart.
    select(&w, "manager-compare", "previous").await?;
    w.wait_js("the comparison", "document.getElementById('manager-chart').alt.includes('previous')", 30).await?;
    painted(&w).await?;
    w.screenshot("month-against-previous").await?;
    select(&w, "manager-compare", "plants").await?;
    w.wait_js("plants again", "!document.getElementById('manager-chart').alt.includes('previous')", 30).await?;

    // Drill down: plant 2's lines, a line's machines, a machine's trend.
    press(&w, "#manager-table tr[data-plant='2']").await?;
    w.wait_css("#crumb-plant", 30).await?;
    w.wait_js("plant 2's lines", "document.querySelectorAll('#manager-table tr[data-group]').length === 2", 30).await?;
    press(&w, "#manager-table tr[data-group]").await?;
    press(&w, "#manager-machines button[data-machine]").await?;
    w.wait_css("#manager-trend img", 30).await?;
    w.screenshot("drill-down").await?;
    press(&w, "#crumb-all").await?;
    w.wait_js("5 plants again", &format!("{ROWS} === 5"), 30).await?;

    // A snapshot of the month while the cloud answers.
    press(&w, "#manager-save-snapshot").await?;
    w.wait_js("the snapshot", "window.__fwManager.snapshots.length === 1", 30).await?;
    let snapshot = w.js("return window.__fwManager.snapshots[0];").await?.as_str().context("a path")?.to_string();

    // New data reaches the cloud while the view is open (P1's machines stood still this
    // hour, sent by its forwarder): the day's table changes without a reload.
    press(&w, "button[data-preset=day]").await?;
    w.wait_js("the day", "document.getElementById('manager-range').textContent.includes('hour buckets')", 30).await?;
    w.wait_js("5 plants", &format!("{ROWS} === 5"), 30).await?;
    w.js("window.__notReloaded = true; return true;").await?;
    let before = w.text("#manager-table tr[data-plant='1'] td:nth-child(2)").await?;
    cloud.forward_hour(1, cloud.through_ms, 0.0).await?;
    w.wait_js(
        "P1's day updated live",
        &format!(
            "window.__notReloaded === true && document.querySelector(\"#manager-table tr[data-plant='1'] td:nth-child(2)\").textContent !== {}",
            serde_json::json!(before)
        ),
        120,
    )
    .await?;
    painted(&w).await?;
    w.screenshot("live-update").await?;

    // The cloud goes away: offline, the month from the cache.
    cloud.stop_api().await?;
    w.wait_js("offline", "document.getElementById('manager-badge').dataset.state === 'offline'", 90).await?;
    press(&w, "button[data-preset=month]").await?;
    w.wait_js("the cached month", "document.getElementById('manager-source').dataset.source === 'cache'", 30).await?;
    assert_eq!(w.count("#manager-table tr[data-plant]").await?, 5);
    painted(&w).await?;
    w.screenshot("offline").await?;

    // The cloud comes back: the stream resumes, and what P3's forwarder sent meanwhile
    // shows in the day without a reload.
    press(&w, "button[data-preset=day]").await?;
    w.wait_js("the cached day", "document.getElementById('manager-range').textContent.includes('hour buckets')", 30)
        .await?;
    let before = w.text("#manager-table tr[data-plant='3'] td:nth-child(2)").await?;
    cloud.restart_api().await?;
    cloud.forward_hour(3, cloud.through_ms, 0.0).await?;
    w.wait_js("live again", "document.getElementById('manager-badge').dataset.state === 'live'", 120).await?;
    w.wait_js(
        "P3's day updated after the restart",
        &format!(
            "window.__notReloaded === true && document.querySelector(\"#manager-table tr[data-plant='3'] td:nth-child(2)\").textContent !== {}",
            serde_json::json!(before)
        ),
        120,
    )
    .await?;
    w.close().await?;
    drop(cloud);

    // Another workstation, no cloud: the snapshot opened, marked as such, and navigated.
    let other = dir.path().join("other");
    manager_settings(&other, None)?;
    let mut w = AppWindow::launch("manager", &other, &settings_for(None)).await?;
    w.wait_css("#manager-first-run", 30).await?;
    press(&w, "#manager-open-snapshot").await?;
    w.wait_css("dialog[open] #f-path", 10).await?;
    w.js("document.getElementById('f-path').value = ''; return true;").await?;
    w.keys("#f-path", &snapshot).await?;
    press(&w, "#dialog-submit").await?;
    w.wait_js("the snapshot", "document.getElementById('manager-source').dataset.source === 'snapshot'", 30).await?;
    w.wait_js("its 5 plants", &format!("{ROWS} === 5"), 30).await?;
    assert!(w.text("#manager-source").await?.contains("Snapshot made"));
    press(&w, "#manager-table tr[data-plant='4']").await?;
    w.wait_js("plant 4's lines", "document.querySelectorAll('#manager-table tr[data-group]').length === 2", 30).await?;
    select(&w, "manager-by", "machine_type").await?;
    w.wait_js("by machine type", "document.querySelectorAll('#manager-table tr[data-group]').length >= 1", 30).await?;
    painted(&w).await?;
    w.screenshot("snapshot").await?;
    // A machine of P4, whose trend was never opened before saving: in the snapshot.
    press(&w, "#manager-machines button[data-machine^='P4-']").await?;
    w.wait_css("#manager-trend img", 30).await?;
    assert!(w.text("#manager-trend h2").await?.starts_with("P4-"));
    // Zoomed below a week: hour buckets of P4's machine types, and the machine's trend.
    w.js(
        "const t = new Date(document.getElementById('manager-to').value).getTime(); const d = new Date(t - 5 * 86400000); \
         const pad = (n) => String(n).padStart(2, '0'); \
         document.getElementById('manager-from').value = `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`; \
         document.getElementById('manager-apply').click(); return true;",
    )
    .await?;
    w.wait_js("hour buckets", "document.getElementById('manager-range').textContent.includes('hour buckets')", 30)
        .await?;
    w.wait_js(
        "P4's machine types by the hour",
        "[...document.querySelectorAll('#manager-table tr[data-group]')].some((r) => /%/.test(r.cells[1].textContent))",
        30,
    )
    .await?;
    w.wait_css("#manager-trend img", 30).await?;
    painted(&w).await?;
    w.screenshot("snapshot-zoomed").await?;

    // A damaged file: a clear message in the dialog, the app still there.
    let bad = other.join("damaged.fwsnap");
    std::fs::write(&bad, b"SQLite format 3\0 and then nothing useful".repeat(50))?;
    press(&w, "#manager-open-snapshot").await?;
    w.wait_css("dialog[open] #f-path", 10).await?;
    w.js("document.getElementById('f-path').value = ''; return true;").await?;
    w.keys("#f-path", &bad.display().to_string()).await?;
    press(&w, "#dialog-submit").await?;
    w.wait_js("the message", "/damaged|snapshot/.test(document.querySelector('dialog[open] .error').textContent)", 10)
        .await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    w.screenshot("damaged-snapshot").await?;
    w.close().await
}
