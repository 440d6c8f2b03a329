//! Time travel from the app against a real plant (log, projections, the node's routes):
//! the plant at an instant before and after an anomaly, on both clocks, what changed, and
//! the shift report exported as a PNG page and a CSV.

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
