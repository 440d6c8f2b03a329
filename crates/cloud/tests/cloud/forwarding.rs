//! Store-and-forward: a plant's log reaches the cloud complete and once, through outages,
//! with telemetry retention held back until shipped.

use std::time::Duration;

use access::{Role, Scope};
use serde_json::json;

use crate::support::*;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

async fn link_state(plant: &Plant) -> Option<(String, i64)> {
    let client = plant.db.client().await.unwrap();
    readmodel_contract::forwarding_lag(&client).await.unwrap().map(|l| (l.state, l.events))
}

async fn arrived(cloud: &eventlog::Database, plant: &Plant) -> bool {
    cloud_copy(cloud, plant.number).await == plant_log(&plant.db).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_plants_log_arrives_complete_and_once_through_cloud_outages() {
    let cloud = cloud_db().await;
    let plant = Plant::new(1, 1).await;
    let token = token(&cloud, Role::Forwarder, Scope::plant(1)).await;
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let (stop, task) = forwarder(&plant, &url, &token);
    let t0 = now_s() - 600_000;
    let mut second = 0;
    let mut write = |n: i64| {
        let plant = &plant;
        let start = second;
        second += n;
        async move {
            for s in start..start + n {
                plant.readings(t0 + s * 1_000, |sensor| f64::from(sensor % 7) + s as f64).await;
                if s % 5 == 0 {
                    plant.append(&format!("anomaly-P1-x{s}"), "AnomalyNoteAdded", &json!({ "s": s })).await;
                }
            }
        }
    };
    // The cloud is away: the plant keeps its log, and says it cannot ship.
    write(30).await;
    wait_for("the link to say the cloud is unreachable", Duration::from_secs(30), || async {
        link_state(&plant).await.is_some_and(|(state, lag)| state == "unreachable" && lag > 0)
    })
    .await;
    assert!(cloud_copy(&cloud, 1).await.is_empty());

    // The cloud comes: everything arrives, once.
    let node = CloudNode::start(&cloud, port).await;
    wait_for("the backlog to arrive", Duration::from_secs(60), || arrived(&cloud, &plant)).await;
    // Away again while the plant writes; back; more writes.
    node.stop().await;
    write(20).await;
    let node = CloudNode::start(&cloud, port).await;
    write(20).await;
    wait_for("everything to arrive after the second outage", Duration::from_secs(60), || arrived(&cloud, &plant)).await;
    wait_for("the link to report no lag", Duration::from_secs(30), || async {
        link_state(&plant).await.is_some_and(|(state, lag)| state == "caught_up" && lag == 0)
    })
    .await;
    let copy = cloud_copy(&cloud, 1).await;
    let mut positions: Vec<i64> = copy.iter().map(|e| e.0).collect();
    positions.dedup();
    assert_eq!(positions.len(), copy.len(), "no event twice");
    assert_eq!(copy.len(), plant_log(&plant.db).await.len());
    let _ = stop.send(());
    task.await.unwrap().unwrap();
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_unshipped_day_of_telemetry_is_kept_until_the_cloud_has_it() {
    let cloud = cloud_db().await;
    let plant = Plant::new(1, 1).await;
    let token = token(&cloud, Role::Forwarder, Scope::plant(1)).await;
    let ten_days_ago = now_s() - 10 * 86_400_000;
    for s in 0..3 {
        plant.readings(ten_days_ago + s * 1_000, |_| 1.0).await;
    }
    plant.readings(now_s(), |_| 2.0).await;
    let port = free_port();
    let (stop, task) = forwarder(&plant, &format!("http://127.0.0.1:{port}"), &token);
    wait_for("the forwarder to hold retention", Duration::from_secs(30), || async {
        link_state(&plant).await.is_some_and(|(state, _)| state == "unreachable")
    })
    .await;
    let cutoff = chrono::Utc::now() - chrono::Duration::days(7);
    let report = eventlog::expire_telemetry(&plant.db, cutoff).await.unwrap();
    assert!(report.dropped.is_empty(), "dropped {:?} before it was shipped", report.dropped);
    assert_eq!(report.held_back.len(), 1, "{report:?}");

    let node = CloudNode::start(&cloud, port).await;
    wait_for("the old day to arrive", Duration::from_secs(60), || arrived(&cloud, &plant)).await;
    wait_for("the checkpoint to pass it", Duration::from_secs(30), || async {
        link_state(&plant).await.is_some_and(|(state, lag)| state == "caught_up" && lag == 0)
    })
    .await;
    let report = eventlog::expire_telemetry(&plant.db, cutoff).await.unwrap();
    assert_eq!(report.dropped.len(), 1, "{report:?}");
    let _ = stop.send(());
    task.await.unwrap().unwrap();
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_cloud_that_lost_events_gets_them_again_from_the_plant() {
    let plant = Plant::new(2, 2).await;
    let first = cloud_db().await;
    let token_first = token(&first, Role::Forwarder, Scope::plant(2)).await;
    let port = free_port();
    let node = CloudNode::start(&first, port).await;
    let (stop, task) = forwarder(&plant, &node.url, &token_first);
    for s in 0..10 {
        plant.readings(now_s() - 60_000 + s * 1000, |_| 3.0).await;
    }
    wait_for("the log to arrive", Duration::from_secs(60), || arrived(&first, &plant)).await;
    let _ = stop.send(());
    task.await.unwrap().unwrap();
    node.stop().await;

    // A cloud restored to nothing (a new database) on the same address.
    let second = cloud_db().await;
    let token_second = token(&second, Role::Forwarder, Scope::plant(2)).await;
    let node = CloudNode::start(&second, port).await;
    let (stop, task) = forwarder(&plant, &node.url, &token_second);
    plant.readings(now_s(), |_| 4.0).await;
    wait_for("the whole log to arrive again", Duration::from_secs(60), || arrived(&second, &plant)).await;
    let _ = stop.send(());
    task.await.unwrap().unwrap();
    node.stop().await;
}
