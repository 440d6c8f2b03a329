//! Time travel from the app against a real plant (log, projections, the node's routes):
//! the plant at an instant before and after an anomaly, on both clocks, what changed, and
//! the shift report exported as a PNG page and a CSV; without the plant, the instants this
//! workstation's cache holds.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use supervisor::timetravel::Clock;
use supervisor::{ErrorCode, now_ms};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_app_shows_the_plant_at_an_instant_what_changed_and_exports_the_shift_report() {
    let db = pgcluster::testdb::TestDb::new().await.unwrap();
    let plant = plant(&db.url).await;
    let app = plant.app();
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let before = now_ms();
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let sensor = plant.with(async |f| f.sensor_ids("P1-L01-M002")[0]).await;
    let id = plant.with(async |f| f.raise_anomaly(sensor, "critical", now_ms()).await.unwrap()).await;
    let position = plant.with(async |f| f.tick(now_ms()).await.unwrap()).await;
    plant.with(async |f| f.wait_until_shown(position).await.unwrap()).await;
    let after = now_ms();

    for clock in [Clock::Happened, Clock::Known] {
        let then = app.floor_at(before, clock).await.unwrap();
        assert!(then.anomalies.iter().all(|a| a.anomaly_id != id), "{clock:?}: not yet");
        assert_eq!(then.clock, clock);
        let now = app.floor_at(after, clock).await.unwrap();
        let a = now.anomalies.iter().find(|a| a.anomaly_id == id).unwrap();
        assert_eq!((a.severity.as_str(), a.state.as_str()), ("critical", "new"), "{clock:?}");
        let m = now.machine_status.iter().find(|m| m.machine_id == "P1-L01-M002").unwrap();
        assert_eq!(m.status, "anomaly");
    }

    let diff = app.changes(before, after, Clock::Happened).await.unwrap();
    assert!(
        diff.changes
            .iter()
            .any(|c| c.anomaly_id.as_deref() == Some(id.as_str()) && c.machine_id.as_deref() == Some("P1-L01-M002"))
    );

    let dir = tempfile::tempdir().unwrap();
    let (png, csv) = app.export_shift_report(before, after, Clock::Happened, dir.path()).await.unwrap();
    let bytes = std::fs::read(&png).unwrap();
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "a PNG page");
    assert!(bytes.len() > 5_000, "with text on it: {} bytes", bytes.len());
    let text = std::fs::read_to_string(&csv).unwrap();
    assert!(text.contains(&id) && text.contains("open_anomaly"), "{text}");

    // The plant refuses what it cannot rebuild, in its own words.
    let e = app.floor_at(after + 3_600_000, Clock::Happened).await.unwrap_err();
    assert_eq!(e.code, ErrorCode::InvalidInput);
    assert!(e.message.contains("future"), "{}", e.message);
    let e = app.changes(after, before, Clock::Known).await.unwrap_err();
    assert_eq!(e.code, ErrorCode::InvalidInput);
    // A revoked token is a sign-in problem, not a network one.
    plant.with(async |f| f.revoke(&plant.token).await.unwrap()).await;
    let e = app.floor_at(after, Clock::Known).await.unwrap_err();
    assert_eq!(e.code, ErrorCode::SignIn, "{}", e.message);
}

/// The floor without what only the question sets.
fn rows_of(mut f: supervisor::timetravel::Floor) -> supervisor::timetravel::Floor {
    f.at_ms = 0;
    f.through_position = 0;
    f
}

/// The app reopened on the same cache with its plant node away (nothing answers at its
/// command URL); it is not started, so the cache holds only what it received before.
fn app_with_the_node_away(plant: &Plant) -> supervisor::Supervisor {
    let options = plant.options();
    let mut settings = supervisor::config::Settings::load(&options.settings_path).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    settings.connection.command_url = format!("http://127.0.0.1:{port}");
    settings.save(&options.settings_path).unwrap();
    supervisor::Supervisor::open(options).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_plant_the_cache_answers_the_instants_it_holds_and_refuses_the_others_plainly() {
    let db = pgcluster::testdb::TestDb::new().await.unwrap();
    let plant = plant(&db.url).await;
    let before_start = now_ms() - 1_000;
    let app = plant.app();
    app.start();
    common::until(20, "live", || app.link().is_live()).await;

    // Moments while the app follows the plant: after each change has reached the app and
    // its cache, the plant's own answer "as we knew it then" for that instant.
    let sensors = plant.with(async |f| f.sensor_ids("P1-L01-M002")).await;
    let mut moments = Vec::new();
    for (step, &sensor) in sensors.iter().enumerate().take(4) {
        let position = plant
            .with(async |f| {
                if step % 2 == 1 {
                    f.raise_anomaly(sensor, if step == 1 { "critical" } else { "major" }, now_ms()).await.unwrap();
                }
                f.tick(now_ms()).await.unwrap()
            })
            .await;
        plant.with(async |f| f.wait_until_shown(position).await.unwrap()).await;
        common::until(20, "the app synced", || app.floor().synced >= position).await;
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        let t = now_ms();
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        moments.push(t);
    }
    let mut plants_answers = Vec::new();
    for &t in &moments {
        let answer = app.floor_at(t, Clock::Known).await.unwrap();
        assert!(answer.from_cache.is_none(), "the plant answered");
        plants_answers.push(answer.floor);
    }
    assert!(plants_answers[3].anomalies.len() == 2 && plants_answers[0].anomalies.is_empty());
    // The cache holds a stretch up to the last catch-up stored: wait for the next one
    // (at most 5 s while nothing changes) so that it reaches past the last moment.
    tokio::time::sleep(std::time::Duration::from_millis(5_500)).await;
    app.shutdown().await;
    drop(app);

    // The fold of what was received equals the plant's answer at each instant.
    let cache = supervisor::cache::Cache::open(&plant.dir.path().join("cache.sqlite")).unwrap();
    for (t, plants) in moments.iter().zip(&plants_answers) {
        let folded = cache
            .floor_received(*t)
            .unwrap()
            .unwrap_or_else(|| panic!("{t} covered: {:?} {moments:?}", cache.travel_spans()));
        assert_eq!(rows_of(folded), rows_of(plants.clone()), "at {t}");
    }
    let spans = cache.travel_spans().unwrap();
    assert_eq!(spans.len(), 1, "{spans:?}");
    assert!(spans[0].from_ms <= moments[0] && spans[0].to_ms >= moments[3], "{spans:?}");
    assert_eq!(cache.floor_received(before_start).unwrap(), None, "before the app followed the plant");
    assert_eq!(cache.floor_received(i64::MIN).unwrap(), None);
    assert_eq!(cache.floor_received(i64::MAX).unwrap(), None);
    drop(cache);

    // The node away: an instant fetched before is the plant's answer from the cache; any
    // other instant the cache holds is folded; both say so, with the range held.
    let offline = app_with_the_node_away(&plant);
    let fetched = offline.floor_at(moments[1], Clock::Known).await.unwrap();
    let note = fetched.from_cache.clone().expect("from the cache");
    assert_eq!(note.source, supervisor::timetravel::CacheSource::Answer);
    assert_eq!(fetched.floor, plants_answers[1]);
    assert!(!note.reason.is_empty() && note.covers == spans, "{note:?}");
    let between = offline.floor_at(moments[3] + 5, Clock::Known).await.unwrap();
    assert_eq!(between.from_cache.as_ref().unwrap().source, supervisor::timetravel::CacheSource::Received);
    assert_eq!(between.at_ms, moments[3] + 5);
    assert_eq!(rows_of(between.floor.clone()), rows_of(plants_answers[3].clone()));

    // Outside what the cache holds, or on the other clock: refused, saying what it holds.
    let e = offline.floor_at(before_start, Clock::Known).await.unwrap_err();
    assert_eq!(e.code, ErrorCode::Unreachable);
    assert!(
        e.message.contains("cannot be reached")
            && e.message.contains("as received here")
            && e.message.contains("not in the cache"),
        "{}",
        e.message
    );
    let e = offline.floor_at(moments[3] + 5, Clock::Happened).await.unwrap_err();
    assert!(e.message.contains("choose \"as we knew it then\""), "{}", e.message);
    let answer_on_the_other_clock = offline.floor_at(moments[1], Clock::Happened).await.unwrap_err();
    assert_eq!(answer_on_the_other_clock.code, ErrorCode::Unreachable);
    drop(offline);

    // Damaged and hostile rows: a kept answer that cannot be read is no answer (the fold
    // still is); a damaged journal entry is a clear cache error, never a wrong floor.
    {
        let raw = rusqlite::Connection::open(plant.dir.path().join("cache.sqlite")).unwrap();
        raw.execute("UPDATE travel_answers SET body = ?1", ["{\"clock\":\"known\",\"at_ms\":\"x\u{0}\"}"]).unwrap();
        raw.execute("INSERT INTO floor_spans (from_ms, to_ms) VALUES (?1, ?2)", [i64::MAX - 5, i64::MIN]).unwrap();
    }
    let offline = app_with_the_node_away(&plant);
    let refetched = offline.floor_at(moments[1], Clock::Known).await.unwrap();
    assert_eq!(refetched.from_cache.as_ref().unwrap().source, supervisor::timetravel::CacheSource::Received);
    assert_eq!(rows_of(refetched.floor.clone()), rows_of(plants_answers[1].clone()));
    assert!(offline.floor_at(i64::MAX - 6, Clock::Known).await.is_err(), "an upside-down span covers nothing");
    drop(offline);
    {
        let raw = rusqlite::Connection::open(plant.dir.path().join("cache.sqlite")).unwrap();
        raw.execute(
            "INSERT INTO floor_journal (at_ms, bytes, body) VALUES (?1, 5, '{\"sensor_state\":[{\"sensor_id\":1e300}]')",
            [moments[2]],
        )
        .unwrap();
    }
    let offline = app_with_the_node_away(&plant);
    let e = offline.floor_at(moments[3] + 7, Clock::Known).await.unwrap_err();
    assert_eq!(e.code, ErrorCode::Cache, "{}", e.message);
    assert!(e.message.contains("could not be read"), "{}", e.message);
}
