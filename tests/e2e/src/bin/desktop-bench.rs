//! `desktop-bench`: the desktop app's figures at full plant load (10,000 sensors, 670
//! machines, every sensor updated every second), written as JSON.
//!
//! * cold start to first paint from the cache (the plant database stopped, so only the
//!   cache can paint), measured from asking WebDriver for the window to the floor's tiles
//!   being on screen, and inside the page from its navigation start;
//! * the time for a plant-floor update of 10,000 sensors to render: from the upload's
//!   append to the fixture plant's log to the next painted frame (projection, NOTIFY,
//!   catch-up and render), and from the app applying the catch-up to it;
//! * memory of the app and its WebKit processes, sampled every 30 s over the run: their
//!   resident set as a group (every physical page any of them has resident, counted once),
//!   PSS (shared pages split between the processes that map them), RSS summed per process
//!   (a shared library's pages counted once per process) and private memory.
//!
//! * `manager_render_ms`: the managers' view showing a 30-day comparison of 5 plants, from
//!   a real cloud node's query API and from the cache (`--manager` measures only this).
//!
//! Run under a display, after `cargo xtask e2e` has built the app:
//! `xvfb-run -a cargo run -p floorwatch-e2e --bin desktop-bench -- --minutes 60
//! --json target/bench/desktop.json` (`FLOORWATCH_DESKTOP_APP` picks another build of the app).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::Parser;
use floorwatch_e2e::plant::{FixturePlant, PlantUnderTest};
use floorwatch_e2e::window::{AppWindow, settings_for};
use plant_fixture::Layout;
use serde_json::{Value, json};
use supervisor::now_ms;
use tokio::sync::Mutex;

/// The desktop app's figures at full plant load (cold start, update render, memory over
/// the run, the managers' view), written as JSON. Run under a display (`xvfb-run -a`).
#[derive(Parser)]
#[command(name = "desktop-bench")]
struct Args {
    /// How long to sample memory, in minutes.
    #[arg(long, default_value_t = 20.0)]
    minutes: f64,
    /// Where to write the figures.
    #[arg(long, value_name = "FILE", default_value_os_t = floorwatch_e2e::repo_root().join("target/bench/desktop.json"))]
    json: PathBuf,
    /// The data directory of a running `floorwatch up`: measure the app on its plant 1
    /// instead of a fixture plant.
    #[arg(long, value_name = "DATA_DIR")]
    up: Option<PathBuf>,
    /// Measure only the managers' view.
    #[arg(long)]
    manager: bool,
}

/// The group's resident set in kB: every physical page that any of `pids` has resident,
/// counted once (the union of their page frames, read from /proc/PID/pagemap). This is
/// what the group occupies in RAM; summing the processes' RSS counts a page of a shared
/// library once per process that maps it. `None` where page frames cannot be read
/// (reading them needs CAP_SYS_ADMIN: the kernel reports 0 to others).
fn group_resident_kb(pids: &[u32]) -> Option<u64> {
    use std::os::unix::fs::FileExt;
    const PRESENT: u64 = 1 << 63;
    const FRAME: u64 = (1 << 55) - 1;
    let page = 4096u64;
    let mut frames: std::collections::HashSet<u64> = std::collections::HashSet::new();
    let mut unreadable = false;
    let mut buf = vec![0u8; 8 * 65_536];
    for pid in pids {
        let Ok(smaps) = std::fs::read_to_string(format!("/proc/{pid}/smaps")) else { continue };
        let Ok(pagemap) = std::fs::File::open(format!("/proc/{pid}/pagemap")) else { continue };
        // Only mappings with resident pages: WebKit reserves tens of GB it never touches.
        let mut range: Option<(u64, u64)> = None;
        for line in smaps.lines() {
            if let Some((a, rest)) = line.split_once('-')
                && let Some(b) = rest.split_whitespace().next()
                && let (Ok(start), Ok(end)) = (u64::from_str_radix(a, 16), u64::from_str_radix(b, 16))
            {
                range = Some((start, end));
                continue;
            }
            let resident = line.strip_prefix("Rss:").and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok());
            let Some((start, end)) = range.filter(|_| resident.is_some_and(|kb| kb > 0)) else { continue };
            let mut vpage = start / page;
            while vpage < end / page {
                let n = ((end / page - vpage) as usize).min(buf.len() / 8);
                let Ok(read) = pagemap.read_at(&mut buf[..n * 8], vpage * 8) else { break };
                for entry in buf[..read].chunks_exact(8) {
                    let e = u64::from_le_bytes(entry.try_into().unwrap_or_default());
                    if e & PRESENT != 0 {
                        let frame = e & FRAME;
                        if frame == 0 {
                            unreadable = true;
                        } else {
                            frames.insert(frame);
                        }
                    }
                }
                if read < n * 8 {
                    break;
                }
                vpage += n as u64;
            }
        }
    }
    (!unreadable && !frames.is_empty()).then(|| frames.len() as u64 * page / 1024)
}

/// Memory of a group of processes, in kB. `rss` sums each process's resident set, so pages
/// of the shared libraries that the app and its WebKit processes all map (libwebkit2gtk,
/// JavaScriptCore, GTK) are counted once per process; `pss` counts every shared page once
/// in total, split between the processes that map it (what the group costs the machine);
/// `private` is what would be freed if the group exited.
#[derive(Debug, Default, Clone, Copy)]
struct Memory {
    rss: u64,
    pss: u64,
    private: u64,
}

impl Memory {
    fn of(pid: u32) -> Memory {
        let text = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).unwrap_or_default();
        let field = |name: &str| -> u64 {
            text.lines()
                .find(|l| l.starts_with(name))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
        };
        Memory { rss: field("Rss:"), pss: field("Pss:"), private: field("Private_Clean:") + field("Private_Dirty:") }
    }

    fn add(&mut self, other: Memory) {
        self.rss += other.rss;
        self.pss += other.pss;
        self.private += other.private;
    }

    fn mb(self) -> Value {
        let mb = |kb: u64| (kb as f64 / 1024.0 * 10.0).round() / 10.0;
        json!({ "rss_mb": mb(self.rss), "pss_mb": mb(self.pss), "private_mb": mb(self.private) })
    }
}

/// Memory of the app's own process and of its WebKit processes (its children), and how
/// many processes there were.
fn memory_of_app(app: &str) -> (Memory, Memory, Vec<u32>) {
    let mut parent: HashMap<u32, u32> = HashMap::new();
    let mut exe: HashMap<u32, String> = HashMap::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else { continue };
        let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else { continue };
        let ppid = status
            .lines()
            .find(|l| l.starts_with("PPid:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        parent.insert(pid, ppid);
        exe.insert(
            pid,
            std::fs::read_link(format!("/proc/{pid}/exe")).map(|p| p.display().to_string()).unwrap_or_default(),
        );
    }
    let apps: Vec<u32> = exe.iter().filter(|(_, e)| e.as_str() == app).map(|(p, _)| *p).collect();
    let (mut own, mut webkit, mut group) = (Memory::default(), Memory::default(), Vec::new());
    for &pid in parent.keys() {
        if apps.contains(&pid) {
            own.add(Memory::of(pid));
            group.push(pid);
            continue;
        }
        // WebKit's web and network processes are children of the app.
        let mut p = parent.get(&pid).copied().unwrap_or(0);
        for _ in 0..4 {
            if apps.contains(&p) {
                webkit.add(Memory::of(pid));
                group.push(pid);
                break;
            }
            p = parent.get(&p).copied().unwrap_or(0);
        }
    }
    (own, webkit, group)
}

fn percentile(mut v: Vec<f64>, p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    v[((v.len() - 1) as f64 * p).round() as usize]
}

/// One memory sample of the app and its WebKit processes, printed as it is taken.
fn memory_sample(app_path: &str, minute: f64) -> Value {
    let (own, webkit, group) = memory_of_app(app_path);
    let mut total = own;
    total.add(webkit);
    let resident = group_resident_kb(&group);
    eprintln!(
        "{minute:6.1} min: resident {} MB; PSS app {} MB + WebKit {} MB = {} MB (RSS summed {} MB, {} processes); load {}",
        resident.map_or_else(|| "?".to_owned(), |kb| (kb / 1024).to_string()),
        own.pss / 1024,
        webkit.pss / 1024,
        total.pss / 1024,
        total.rss / 1024,
        group.len(),
        loadavg(),
    );
    let mut total_mb = total.mb();
    total_mb["resident_mb"] = json!(resident.map(|kb| (kb as f64 / 1024.0 * 10.0).round() / 10.0));
    json!({
        "minute": minute,
        "app": own.mb(),
        "webkit": webkit.mb(),
        "total": total_mb,
        "processes": group.len(),
        "load": loadavg(),
    })
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// Growth: the mean of the last quarter of the run against the mean of its second quarter
/// (the first quarter is left out: caches fill while the app warms up).
fn memory_summary(samples: &[Value], key: &str) -> Value {
    let v: Vec<f64> = samples.iter().filter_map(|s| s["total"][key].as_f64()).collect();
    let mean = |v: &[f64]| if v.is_empty() { f64::NAN } else { v.iter().sum::<f64>() / v.len() as f64 };
    let q = v.len() / 4;
    json!({
        "max_mb": v.iter().cloned().fold(f64::NAN, f64::max),
        "mean_second_quarter_mb": mean(&v[q..(2 * q).min(v.len())]),
        "mean_last_quarter_mb": mean(&v[v.len() - q.min(v.len())..]),
    })
}

/// The app on plant 1 of a running `floorwatch up` (its real factory drives every update):
/// memory over the run, as for the fixture plant.
async fn soak_on_up(args: &Args, data_dir: &std::path::Path, app_path: &str) -> Result<()> {
    let text = std::fs::read_to_string(data_dir.join("desktop.json")).context("reading the factory's desktop.json")?;
    // Signed in as the demo supervisor `up` made, as the app's first run does.
    let connection =
        supervisor::config::DesktopFile::parse(&text)?.first_connection().context("desktop.json lists no plant")?;
    let dir = tempfile::tempdir()?;
    let mut w = AppWindow::launch("bench-up", dir.path(), &settings_for(Some(connection))).await?;
    w.wait_js("live", "document.getElementById('link-badge').dataset.state === 'live'", 300).await?;
    w.wait_js("the floor", "document.querySelectorAll('.tile[data-machine]').length > 0", 120).await?;
    let machines = w.count(".tile[data-machine]").await?;
    let started = Instant::now();
    let mut samples = Vec::new();
    while started.elapsed() < Duration::from_secs_f64(args.minutes * 60.0) {
        tokio::time::sleep(Duration::from_secs(30)).await;
        samples.push(memory_sample(app_path, started.elapsed().as_secs_f64() / 60.0));
    }
    let not_ok = w
        .js("return [...document.querySelectorAll('.tile[data-machine]')].filter(t => !/\\bok\\b/.test(t.className)).length;")
        .await?;
    w.screenshot("after-soak-on-up").await?;
    w.close().await?;
    let out = json!({
        "build": if app_path.contains("/release/") { "release" } else { "debug" },
        "plant": { "source": "floorwatch up, plant 1", "machines": machines, "machines_not_ok_at_end": not_ok },
        "memory": {
            "minutes": args.minutes,
            "resident": memory_summary(&samples, "resident_mb"),
            "pss": memory_summary(&samples, "pss_mb"),
            "rss_summed": memory_summary(&samples, "rss_mb"),
            "private": memory_summary(&samples, "private_mb"),
            "samples": samples,
        },
    });
    if let Some(parent) = args.json.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(&args.json, serde_json::to_string_pretty(&out)?)?;
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(())
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    let args = Args::parse();
    let app_path = floorwatch_e2e::app_path().canonicalize()?.display().to_string();
    if let Some(dir) = &args.up {
        return soak_on_up(&args, dir, &app_path).await;
    }
    if args.manager {
        let out = json!({ "manager_render_ms": floorwatch_e2e::manager_bench::manager_render_ms(10).await? });
        if let Some(parent) = args.json.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&args.json, serde_json::to_string_pretty(&out)?)?;
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    eprintln!("starting a fixture plant of 10,000 sensors…");
    let mut plant = FixturePlant::start(Layout::full()).await?;
    let dir = tempfile::tempdir()?;
    let settings = settings_for(Some(plant.connection()));

    // Show the whole plant once and close the window the moment it is painted, as a person
    // would (what was shown must be in the cache by then), then measure cold starts from it.
    let w = AppWindow::launch("bench", dir.path(), &settings).await?;
    w.wait_js("670 tiles", "document.querySelectorAll('.tile[data-machine]').length === 670", 120).await?;
    w.close_like_a_person().await?;
    plant.stop_database().await?;
    let mut cold = Vec::new();
    for _ in 0..3 {
        let t0 = Instant::now();
        let w = AppWindow::launch("bench-cold", dir.path(), &settings).await?;
        w.wait_js("cached tiles", "document.querySelectorAll('.tile[data-machine]').length === 670", 60).await?;
        let outside = t0.elapsed().as_secs_f64() * 1000.0;
        let inside = w.js("return window.__fwFirstPaint || null;").await?.as_f64().unwrap_or(f64::NAN);
        cold.push((outside, inside));
        w.close().await?;
    }
    plant.start_database().await?;
    eprintln!("cold starts (ms, from the WebDriver request / from the page's start): {cold:?}");

    // The long run: every second all 10,000 sensors change; an anomaly now and then.
    let mut w = AppWindow::launch("bench-soak", dir.path(), &settings).await?;
    if let Err(e) = w.wait_js("live", "document.getElementById('link-badge').dataset.state === 'live'", 180).await {
        let badge =
            w.js("const b = document.getElementById('link-badge'); return b.dataset.state + ': ' + b.title;").await;
        w.screenshot("bench-not-live").await?;
        // The app's own log says what its connection was doing.
        let log = floorwatch_e2e::screenshots_dir().join("bench-not-live.log");
        let _ = std::fs::copy(dir.path().join("tauri-driver.log"), &log);
        return Err(e.context(format!("the link badge says {badge:?}; the app's log is in {}", log.display())));
    }
    let uploads: Arc<Mutex<Vec<i64>>> = Arc::new(Mutex::new(Vec::new()));
    let slot = plant.fixture.clone();
    let log = uploads.clone();
    let machines: Vec<String> = slot.lock().await.as_ref().map(|f| f.machine_ids()).transpose()?.unwrap_or_default();
    // Tick here rather than in the fixture, to know when each upload was appended.
    plant.stop_ticking();
    let ticker = tokio::spawn(async move {
        let mut n = 0u64;
        loop {
            tokio::time::sleep(Duration::from_millis(1000)).await;
            let mut guard = slot.lock().await;
            if let Some(f) = guard.as_mut() {
                if n % 30 == 29 {
                    let m = &machines[(n as usize / 30 * 37) % machines.len()];
                    let s = f.sensor_ids(m)[0];
                    let _ = f.raise_anomaly(s, if n % 60 == 59 { "critical" } else { "major" }, now_ms()).await;
                } else {
                    let appended = now_ms();
                    if f.tick(appended).await.is_ok() {
                        log.lock().await.push(appended);
                    }
                }
            }
            n += 1;
        }
    });
    let started = Instant::now();
    let mut samples = Vec::new();
    let total = Duration::from_secs_f64(args.minutes * 60.0);
    while started.elapsed() < total {
        tokio::time::sleep(Duration::from_secs(30)).await;
        samples.push(memory_sample(&app_path, started.elapsed().as_secs_f64() / 60.0));
    }
    ticker.abort();
    let perf = w.js("return window.__fwPerf;").await?;
    w.screenshot("after-soak").await?;
    w.close().await?;

    let floor = perf["floor"].as_array().cloned().unwrap_or_default();
    let render: Vec<f64> = floor.iter().filter_map(|p| p["ms"].as_f64()).collect();
    let since_apply: Vec<f64> = floor.iter().filter_map(|p| p["since_apply_ms"].as_f64()).collect();
    let appended = uploads.lock().await.clone();
    // From the newest upload before each paint to that paint.
    let from_upload: Vec<f64> = floor
        .iter()
        .filter_map(|p| p["at"].as_f64())
        .filter_map(|at| appended.iter().rev().find(|n| (**n as f64) <= at).map(|n| at - *n as f64))
        .filter(|d| *d < 5000.0)
        .collect();
    let rows: Vec<f64> = floor.iter().filter_map(|p| p["rows"].as_f64()).collect();
    let manager_render_ms = floorwatch_e2e::manager_bench::manager_render_ms(10).await?;
    let out: Value = json!({
        "manager_render_ms": manager_render_ms,
        "build": if app_path.contains("/release/") { "release" } else { "debug" },
        "plant": { "sensors": 10000, "machines": 670, "update_hz": 1 },
        "cold_start_ms": {
            "from_webdriver_request": cold.iter().map(|c| c.0).collect::<Vec<_>>(),
            "from_page_start": cold.iter().map(|c| c.1).collect::<Vec<_>>(),
        },
        "floor_update": {
            "samples": render.len(),
            "rows_per_update_median": percentile(rows, 0.5),
            "render_ms_p50": percentile(render.clone(), 0.5),
            "render_ms_p95": percentile(render, 0.95),
            "apply_to_paint_ms_p50": percentile(since_apply.clone(), 0.5),
            "apply_to_paint_ms_p95": percentile(since_apply, 0.95),
            "upload_to_paint_ms_p50": percentile(from_upload.clone(), 0.5),
            "upload_to_paint_ms_p95": percentile(from_upload, 0.95),
            "updates_seen": perf["updates"],
        },
        "memory": {
            "minutes": args.minutes,
            "resident": memory_summary(&samples, "resident_mb"),
            "pss": memory_summary(&samples, "pss_mb"),
            "rss_summed": memory_summary(&samples, "rss_mb"),
            "private": memory_summary(&samples, "private_mb"),
            "samples": samples,
        },
    });
    if let Some(parent) = args.json.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(&args.json, serde_json::to_string_pretty(&out)?)?;
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(())
}
