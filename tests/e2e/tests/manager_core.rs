//! The managers' view's core against a real cloud node with backfilled weeks of 5 plants,
//! without a window: the numbers drawn are the API's, comparisons line up, the CSV holds
//! what is drawn, the cache serves the view when the cloud is gone, and a snapshot opens
//! on a workstation that has no cloud at all.

use std::collections::HashMap;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use floorwatch_e2e::cloud::BackfilledCloud;
use manager::api::{By, CloudClient};
use manager::kpi::Metric;
use manager::range::{Bucket, Preset, Range};
use manager::{Compare, Manager, Options, Source, ViewRequest};
use supervisor::link::Link;

fn request(preset: Preset, compare: Compare) -> ViewRequest {
    ViewRequest {
        preset,
        from_ms: None,
        to_ms: None,
        metric: Metric::Oee,
        plants: Vec::new(),
        compare,
        drill: None,
        style: manager::chart::Style::default(),
    }
}

async fn wait_link(m: &Manager, what: &str, ok: impl Fn(&Link) -> bool) -> Result<()> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    while !ok(&m.link()) {
        if tokio::time::Instant::now() > deadline {
            bail!("waited 90 s for {what}; the link is {:?}", m.link());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

/// Equal but for the last unit: serde_json (without its float_roundtrip feature) may read
/// a decimal one unit in the last place off, and the cache stores and reads it again.
fn same(a: Option<f64>, b: Option<f64>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => (a - b).abs() <= 1e-14 * b.abs().max(1.0),
        (a, b) => a == b,
    }
}

/// The CSV's rows by (series, bucket start) → value.
fn csv_values(text: &str) -> Result<HashMap<(String, String), String>> {
    let body: String = text.lines().filter(|l| !l.starts_with('#')).map(|l| format!("{l}\n")).collect();
    let mut r = csv::Reader::from_reader(body.as_bytes());
    let mut out = HashMap::new();
    for rec in r.records() {
        let rec = rec?;
        out.insert((rec[0].to_string(), rec[1].to_string()), rec[2].to_string());
    }
    Ok(out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_managers_view_shows_the_clouds_numbers_offline_too_and_in_a_snapshot() -> Result<()> {
    let mut cloud = BackfilledCloud::start(5, 62).await?;
    let dir = tempfile::tempdir()?;
    let m = Manager::open(Options {
        settings_path: dir.path().join("desktop-manager.toml"),
        cache_path: Some(dir.path().join("cache-manager.sqlite")),
    })?;
    m.configure(&cloud.url, &cloud.token, true)?;
    m.start();
    wait_link(&m, "live", |l| l.is_live()).await?;

    // A month of the 5 plants, side by side: every plant's OEE per day is the API's.
    let month = request(Preset::Month, Compare::Plants);
    let view = m.view(&month).await?;
    assert_eq!(view.source, Source::Cloud);
    assert_eq!(view.plants.len(), 5);
    assert_eq!(view.summaries.len(), 5);
    assert_eq!(view.chart.series.len(), 5);
    assert_eq!(view.range.bucket, Bucket::Day);
    let api = CloudClient::new(&cloud.connection())
        .kpis(&[], view.range.from_ms, view.range.to_ms, Bucket::Day, By::Plant)
        .await?;
    let from_api: HashMap<(u16, i64), Option<f64>> =
        api.iter().map(|r| ((r.plant, r.bucket_start.timestamp_millis()), r.oee.oee)).collect();
    for (i, s) in view.chart.series.iter().enumerate() {
        let plant = (i + 1) as u16;
        assert!(s.label.starts_with(&format!("P{plant}")), "{}", s.label);
        for p in &s.points {
            assert_eq!(
                p.value,
                from_api.get(&(plant, p.bucket_start_ms)).copied().flatten(),
                "P{plant} {}",
                p.bucket_start_ms
            );
        }
        assert!(s.points.iter().filter(|p| p.value.is_some()).count() >= 29);
    }

    // The CSV export holds exactly the drawn numbers.
    let csv_path = m.export(&month, "chart", "csv", dir.path())?;
    let csv_text = std::fs::read_to_string(&csv_path)?;
    assert!(csv_text.starts_with("# title: Plants side by side\n"));
    let values = csv_values(&csv_text)?;
    let mut checked = 0;
    for r in &api {
        let label = &view.chart.series[usize::from(r.plant) - 1].label;
        let t = r.bucket_start.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let cell = values.get(&(label.clone(), t.clone())).with_context(|| format!("{label} {t} in the CSV"))?;
        match r.oee.oee {
            // serde_json may read a decimal one unit in the last place off; the CSV is exact.
            Some(v) => assert!((cell.parse::<f64>()? - v).abs() <= 1e-14 * v.abs().max(1.0), "{cell} {v}"),
            None => assert!(cell.is_empty()),
        }
        checked += 1;
    }
    assert!(checked >= 150);
    for format in ["png", "svg"] {
        let p = m.export(&month, "chart", format, dir.path())?;
        let bytes = std::fs::read(&p)?;
        assert!(bytes.len() > 1000, "{format} export is {} bytes", bytes.len());
    }

    // This period against the previous one: two lines of the first plant, the earlier
    // one drawn over this one, each point the API's value of its own bucket.
    let prev = m.view(&request(Preset::Month, Compare::Previous)).await?;
    assert_eq!(prev.chart.series.len(), 2);
    let before = &prev.chart.series[1];
    assert!(before.label.contains("Previous period"));
    let api_before = CloudClient::new(&cloud.connection())
        .kpis(&[1], prev.range.previous().from_ms, prev.range.from_ms, Bucket::Day, By::Plant)
        .await?;
    for (p, r) in before.points.iter().zip(&api_before) {
        assert_eq!(p.bucket_start_ms, r.bucket_start.timestamp_millis());
        assert_eq!(p.x_ms, p.bucket_start_ms + prev.range.span_ms());
        assert!(same(p.value, r.oee.oee), "{:?} {:?}", p.value, r.oee.oee);
    }
    let two = m.view(&request(Preset::Week, Compare::TwoPlants { a: 2, b: 4 })).await?;
    assert_eq!(two.chart.series.len(), 2);
    assert!(two.chart.series[0].label.starts_with("P2") && two.chart.series[1].label.starts_with("P4"));

    // Drill-down: plant 3 by line, a machine's trend is asked of the cloud.
    let mut drilled = request(Preset::Week, Compare::Plants);
    drilled.drill = Some(manager::Drill { plant: 3, by: By::Line });
    let d = m.view(&drilled).await?;
    assert_eq!(d.lines.len(), 2, "{:?}", d.notice);
    assert_eq!(d.chart.series.len(), 2);
    assert!(d.summaries.iter().all(|s| s.plant == 3 && s.group.starts_with("P3-L")));
    assert!(!d.machines.is_empty());

    // A snapshot of the month, saved while the cloud answers.
    let snap = m.save_snapshot(&month, dir.path()).await?;

    // The cloud goes away: offline, and the month is drawn from the cache, same numbers.
    cloud.stop_api().await?;
    wait_link(&m, "offline", |l| matches!(l, Link::Offline { .. })).await?;
    let cached = m.view(&month).await?;
    assert!(matches!(cached.source, Source::Cache { .. }), "{:?}", cached.source);
    assert_eq!(cached.chart.series, view.chart.series);
    assert_eq!(cached.summaries, view.summaries);
    m.shutdown();

    // Another workstation: no cloud configured, the snapshot opened and navigated.
    let other = tempfile::tempdir()?;
    let w = Manager::open(Options { settings_path: other.path().join("m.toml"), cache_path: None })?;
    let range: Range = w.open_snapshot(&snap)?;
    let mut in_snapshot = request(Preset::Custom, Compare::Plants);
    in_snapshot.from_ms = Some(range.from_ms);
    in_snapshot.to_ms = Some(range.to_ms);
    let s = w.view(&in_snapshot).await?;
    assert!(matches!(s.source, Source::Snapshot { .. }));
    assert_eq!(s.chart.series, view.chart.series);
    in_snapshot.compare = Compare::Previous;
    assert_eq!(w.view(&in_snapshot).await?.chart.series.len(), 2);
    // Drilled into a plant the view was never drilled into while online: its lines are there.
    in_snapshot.compare = Compare::Plants;
    in_snapshot.drill = Some(manager::Drill { plant: 4, by: By::MachineType });
    let drilled = w.view(&in_snapshot).await?;
    assert!(!drilled.summaries.is_empty() && drilled.summaries.iter().all(|s| s.plant == 4));
    assert_eq!(drilled.lines.len(), 2);
    // Zoomed into a week of it: hour buckets, still there.
    in_snapshot.drill = None;
    in_snapshot.from_ms = Some(range.to_ms - 7 * manager::range::DAY_MS);
    let week = w.view(&in_snapshot).await?;
    assert_eq!(week.range.bucket, Bucket::Hour);
    assert_eq!(week.summaries.len(), 5);

    // A damaged snapshot: a clear message, nothing else changes.
    let bad = other.path().join("bad.fwsnap");
    let mut bytes = std::fs::read(&snap)?;
    bytes.truncate(bytes.len() / 3);
    std::fs::write(&bad, bytes)?;
    let e = w.open_snapshot(&bad).unwrap_err();
    assert!(e.message.contains("damaged") || e.message.contains("snapshot"), "{}", e.message);
    Ok(())
}
