//! `manager_render_ms` of `desktop-bench`: how long the managers' view takes to show a
//! 30-day comparison of 5 plants in the real window, from the cloud query API (a real
//! cloud node holding two months of backfilled history) and from the cache (the same
//! node stopped). Timed inside the page, from asking the app for the view to the frame
//! after it is drawn.

use std::time::Duration;

use anyhow::{Context, Result};
use serde_json::{Value, json};

use crate::cloud::BackfilledCloud;
use crate::window::{AppWindow, settings_for};

fn percentile(mut v: Vec<f64>, p: f64) -> Option<f64> {
    v.retain(|x| x.is_finite());
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let i = ((v.len() - 1) as f64 * p).round() as usize;
    Some((v[i] * 10.0).round() / 10.0)
}

/// Shows the month `runs` times and returns the render times of the renders whose source
/// was `source`.
async fn renders(w: &AppWindow, runs: usize, source: &str) -> Result<Vec<f64>> {
    let mut out = Vec::new();
    for _ in 0..runs {
        let before = w.js("return window.__fwManager.renders.length;").await?.as_u64().unwrap_or(0);
        w.click("button[data-preset=month]").await?;
        w.wait_js("the month drawn", &format!("window.__fwManager.renders.length > {before}"), 60).await?;
        let last = w.js("return window.__fwManager.renders[window.__fwManager.renders.length - 1];").await?;
        if last["source"] == source {
            out.push(last["ms"].as_f64().context("a render time")?);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Ok(out)
}

/// Measures and returns `{ "api": {...}, "cache": {...} }` in milliseconds.
pub async fn manager_render_ms(runs: usize) -> Result<Value> {
    eprintln!("starting a cloud node with 62 days of 5 plants…");
    let mut cloud = BackfilledCloud::start(5, 62).await?;
    let dir = tempfile::tempdir()?;
    let app = dir.path().join("app");
    std::fs::create_dir_all(&app)?;
    manager::config::ManagerSettings { cloud: cloud.connection(), open_at_start: true }
        .save(&app.join("desktop-manager.toml"))?;
    let w = AppWindow::launch("manager-bench", &app, &settings_for(None)).await?;
    w.wait_js(
        "the cloud live",
        "(document.getElementById('manager-badge') || { dataset: {} }).dataset.state === 'live'",
        60,
    )
    .await?;
    w.wait_js("5 plants", "document.querySelectorAll('#manager-table tr[data-plant]').length === 5", 60).await?;
    w.js("const s = document.getElementById('manager-compare'); s.value = 'previous'; s.dispatchEvent(new Event('change')); return true;")
        .await?;
    let api = renders(&w, runs, "cloud").await?;
    cloud.stop_api().await?;
    w.wait_js("offline", "document.getElementById('manager-badge').dataset.state === 'offline'", 90).await?;
    let cache = renders(&w, runs, "cache").await?;
    w.close().await?;
    let summary = |v: Vec<f64>| json!({ "samples": v.len(), "p50": percentile(v.clone(), 0.5), "p95": percentile(v.clone(), 0.95), "max": percentile(v, 1.0) });
    Ok(json!({
        "what": "a 30-day comparison of 5 plants (this month against the previous one, and the 5 plants' table)",
        "target_ms": { "api": 2000, "cache": 1000 },
        "api": summary(api),
        "cache": summary(cache),
    }))
}
