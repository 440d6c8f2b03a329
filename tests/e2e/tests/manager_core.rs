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

fn same_within(a: Option<f64>, b: Option<f64>, tolerance: f64) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => (a - b).abs() <= tolerance,
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
    // Every sensor was read every hour: availability is real, all but the hour under way.
    for s in &view.summaries {
        assert!(
            s.sensor_availability.is_some_and(|a| a > 0.95 && a <= 1.0),
            "P{}: {:?}",
            s.plant,
            s.sensor_availability
        );
    }
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

    // New data reaches the cloud while the view is open: P1's machines stood still this
    // hour, forwarded as the plant's forwarder does; the live stream says so and the day
    // shows it without asking.
    let day = request(Preset::Day, Compare::Plants);
    let through = cloud.through_ms;
    let this_hour = |v: &manager::ManagerView, plant: usize| {
        v.chart.series[plant - 1].points.iter().find(|p| p.bucket_start_ms == through).and_then(|p| p.value)
    };
    assert_eq!(this_hour(&m.view(&day).await?, 1), None, "nothing in this hour yet");
    let mut updates = m.subscribe();
    cloud.forward_hour(1, cloud.through_ms, 0.0).await?;
    changed_for(&mut updates, 1).await?;
    assert_eq!(this_hour(&m.view(&day).await?, 1), Some(0.0));
    // The month as it is now (its last day changed), for the comparisons below.
    let view = m.view(&month).await?;
    assert!(matches!(view.source, Source::Cloud));

    // A scope too big for a file is refused before anything is fetched, saying its size
    // and what to narrow; no file is left behind.
    let mut two_years = request(Preset::Custom, Compare::Plants);
    two_years.to_ms = Some(cloud.through_ms);
    two_years.from_ms = Some(cloud.through_ms - 720 * manager::range::DAY_MS);
    let e = m.save_snapshot(&two_years, dir.path()).await.unwrap_err();
    assert!(e.message.contains("fewer plants or a shorter range") && e.message.contains("MB"), "{}", e.message);

    // Saving can be cancelled while it fetches: no file is written.
    let mut updates = m.subscribe();
    let saving = {
        let (m, month, dir) = (m.clone(), month.clone(), dir.path().to_path_buf());
        tokio::spawn(async move { m.save_snapshot(&month, &dir).await })
    };
    loop {
        match tokio::time::timeout(Duration::from_secs(60), updates.recv()).await?? {
            manager::Update::SnapshotProgress { total, .. } if total > 0 => break,
            _ => {}
        }
    }
    m.cancel_snapshot();
    let e = saving.await?.unwrap_err();
    assert!(e.message.contains("cancelled"), "{}", e.message);
    let snapshots = || -> Result<usize> {
        Ok(std::fs::read_dir(dir.path())?
            .filter(|f| f.as_ref().is_ok_and(|f| f.path().extension().is_some_and(|x| x == "fwsnap")))
            .count())
    };
    assert_eq!(snapshots()?, 0);

    // A snapshot of the month, saved while the cloud answers: every machine's trend is in
    // it, though none was opened, with progress reported to the last answer.
    let all_machines: Vec<String> = {
        let client = CloudClient::new(&cloud.connection());
        let mut ids = Vec::new();
        for p in 1..=5 {
            ids.extend(client.machines(p).await?.into_iter().filter(|m| m.sensors > 0).map(|m| m.machine_id));
        }
        ids
    };
    let mut updates = m.subscribe();
    let saved = m.save_snapshot(&month, dir.path()).await?;
    assert_eq!(saved.machine_trends, all_machines.len());
    assert!(saved.notice.is_none(), "{:?}", saved.notice);
    assert!(saved.bytes > 0 && saved.size.ends_with("B"), "{saved:?}");
    let mut last = None;
    while let Ok(u) = updates.try_recv() {
        if let manager::Update::SnapshotProgress { done, total, .. } = u {
            last = Some((done, total));
        }
    }
    let (done, total) = last.context("progress reported")?;
    assert!(done == total && total > all_machines.len(), "{done} of {total}");
    let snap = saved.path;
    // The cloud's hourly figures of P2's lines over the snapshot's last week, to compare.
    let week_from = view.range.to_ms - 7 * manager::range::DAY_MS;
    let hourly_lines =
        CloudClient::new(&cloud.connection()).kpis(&[2], week_from, view.range.to_ms, Bucket::Hour, By::Line).await?;

    // The cloud goes away: offline, and the month is drawn from the cache, same numbers.
    cloud.stop_api().await?;
    wait_link(&m, "offline", |l| matches!(l, Link::Offline { .. })).await?;
    let cached = m.view(&month).await?;
    assert!(matches!(cached.source, Source::Cache { .. }), "{:?}", cached.source);
    assert_eq!(cached.chart.series, view.chart.series);
    // The same numbers, but for the sensors' availability of the day under way, which
    // grows as its hours pass (the snapshot stored the cloud's later answer in the cache).
    let steady = |s: &[manager::kpi::Summary]| -> Vec<manager::kpi::Summary> {
        s.iter().map(|s| manager::kpi::Summary { sensor_availability: None, ..s.clone() }).collect()
    };
    assert_eq!(steady(&cached.summaries), steady(&view.summaries));
    for (a, b) in cached.summaries.iter().zip(&view.summaries) {
        assert!(same_within(a.sensor_availability, b.sensor_availability, 1e-3), "{a:?} {b:?}");
    }
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
    // A machine whose trend was never opened before saving: drawn from the snapshot.
    let never_opened = all_machines.iter().find(|id| id.starts_with("P4-")).context("a machine of P4")?;
    let t = w.machine_trend(never_opened, &in_snapshot).await?;
    assert!(matches!(t.source, Source::Snapshot { .. }));
    assert!(!t.charts.is_empty());
    // Zoomed into a week of it: hour buckets, still there, for the plants and drilled
    // into a plant's lines, with the same hourly numbers the cloud gives.
    in_snapshot.drill = None;
    in_snapshot.from_ms = Some(range.to_ms - 7 * manager::range::DAY_MS);
    let week = w.view(&in_snapshot).await?;
    assert_eq!(week.range.bucket, Bucket::Hour);
    assert_eq!(week.summaries.len(), 5);
    in_snapshot.drill = Some(manager::Drill { plant: 2, by: By::Line });
    let week_lines = w.view(&in_snapshot).await?;
    assert_eq!(week_lines.range.bucket, Bucket::Hour);
    assert_eq!(week_lines.chart.series.len(), 2, "{:?}", week_lines.summaries);
    assert!(hourly_lines.len() >= 2 * 7 * 24 - 2, "{} hourly rows", hourly_lines.len());
    for row in &hourly_lines {
        let series = week_lines.chart.series.iter().find(|s| Some(s.label.as_str()) == row.line_id.as_deref());
        let point = series
            .and_then(|s| s.points.iter().find(|p| p.bucket_start_ms == row.bucket_start.timestamp_millis()))
            .with_context(|| format!("{:?} {} drawn from the snapshot", row.line_id, row.bucket_start))?;
        assert!(
            same(point.value, row.oee.oee),
            "{:?} {}: {:?} vs {:?}",
            row.line_id,
            row.bucket_start,
            point.value,
            row.oee.oee
        );
    }
    // And the machine's trend zoomed to that week: only the week's points.
    in_snapshot.drill = None;
    let zoomed = w.machine_trend(never_opened, &in_snapshot).await?;
    for c in &zoomed.charts {
        assert!(c.series[0].points.iter().all(
            |p| p.x_ms < range.to_ms && p.x_ms + manager::range::DAY_MS > range.to_ms - 7 * manager::range::DAY_MS
        ));
    }

    // A damaged snapshot: a clear message, nothing else changes.
    let bad = other.path().join("bad.fwsnap");
    let mut bytes = std::fs::read(&snap)?;
    bytes.truncate(bytes.len() / 3);
    std::fs::write(&bad, bytes)?;
    let e = w.open_snapshot(&bad).unwrap_err();
    assert!(e.message.contains("damaged") || e.message.contains("snapshot"), "{}", e.message);

    // The app was closed while the cloud went on: the cloud restarts, P2's forwarder sends
    // an hour, the cloud folds it; the app opened again resumes the stream from the last
    // position it had received and gets that change (starting from now would miss it).
    let resumed_from = m.stream_position().context("a stream position kept")?;
    drop(m);
    cloud.restart_api().await?;
    cloud.forward_hour(2, cloud.through_ms, 0.0).await?;
    let api = CloudClient::new(&cloud.connection());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    while api.kpis(&[2], cloud.through_ms, cloud.through_ms + 3_600_000, Bucket::Hour, By::Plant).await?.is_empty() {
        if tokio::time::Instant::now() > deadline {
            bail!("the cloud did not fold P2's forwarded hour within 120 s");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let again = Manager::open(Options {
        settings_path: dir.path().join("desktop-manager.toml"),
        cache_path: Some(dir.path().join("cache-manager.sqlite")),
    })?;
    assert_eq!(again.stream_position(), Some(resumed_from));
    let mut updates = again.subscribe();
    again.start();
    let position = changed_for(&mut updates, 2).await?;
    assert!(position > resumed_from);
    assert_eq!(this_hour(&again.view(&day).await?, 2), Some(0.0));
    again.shutdown();
    Ok(())
}

/// Waits for a live change of `plant`'s KPIs; returns its position.
async fn changed_for(updates: &mut tokio::sync::broadcast::Receiver<manager::Update>, plant: u16) -> Result<i64> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match tokio::time::timeout(left, updates.recv()).await {
            Err(_) => bail!("no live change of P{plant} within 120 s"),
            Ok(Ok(manager::Update::Changed { plants, position, .. })) if plants.contains(&plant) => {
                return Ok(position);
            }
            Ok(Ok(_)) | Ok(Err(tokio::sync::broadcast::error::RecvError::Lagged(_))) => {}
            Ok(Err(e)) => bail!("the updates ended: {e}"),
        }
    }
}
