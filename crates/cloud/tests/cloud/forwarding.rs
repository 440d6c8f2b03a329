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

/// A cloud that answers slowly: a proxy in front of the node that holds every ingest
/// answer back, some of them longer than the forwarder waits. It records how many of
/// the forwarder's batches were in flight at once and how large each was.
struct SlowCloud {
    url: String,
    most_in_flight: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    largest_body: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    batches: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    /// Questions where the cloud stands: the forwarder asks on every (re)start.
    asked: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    /// Answers held back beyond the forwarder's timeout (ms; 0: none).
    too_slow_ms: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl SlowCloud {
    async fn start(upstream: String) -> SlowCloud {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::SeqCst};

        use axum::body::Bytes;
        use axum::http::{HeaderMap, Method, StatusCode, Uri};

        let in_flight = Arc::new(AtomicUsize::new(0));
        let most_in_flight = Arc::new(AtomicUsize::new(0));
        let largest_body = Arc::new(AtomicUsize::new(0));
        let batches = Arc::new(AtomicUsize::new(0));
        let too_slow_ms = Arc::new(AtomicU64::new(0));
        let asked = Arc::new(AtomicUsize::new(0));
        let http = reqwest::Client::new();
        let (f, m, l, b, t, r) = (
            in_flight.clone(),
            most_in_flight.clone(),
            largest_body.clone(),
            batches.clone(),
            too_slow_ms.clone(),
            asked.clone(),
        );
        let proxy = move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
            let (http, upstream) = (http.clone(), upstream.clone());
            let (f, m, l, b, t, asked) = (f.clone(), m.clone(), l.clone(), b.clone(), t.clone(), r.clone());
            async move {
                let batch = method == Method::POST;
                if batch {
                    m.fetch_max(f.fetch_add(1, SeqCst) + 1, SeqCst);
                    // An event larger than the bound travels alone; the rest must fit it.
                    if forwarder::wire::WireBatch::decode(&body, 1).is_ok_and(|(_, events)| events.len() > 1) {
                        l.fetch_max(body.len(), SeqCst);
                    }
                }
                let n = b.fetch_add(usize::from(batch), SeqCst);
                let mut request = http.request(method, format!("{upstream}{uri}")).body(body);
                for (name, value) in headers.iter().filter(|(n, _)| *n != "host" && *n != "content-length") {
                    request = request.header(name, value);
                }
                let answer = match request.send().await {
                    Ok(r) => Ok((r.status().as_u16(), r.bytes().await.unwrap_or_default().to_vec())),
                    Err(e) => Err(e),
                };
                if uri.path().ends_with("/position") {
                    asked.fetch_add(1, SeqCst);
                }
                // Stored (or refused) by the cloud; the answer comes late, and once asked to,
                // every fourth batch's later than the forwarder waits.
                let late = t.load(SeqCst);
                let hold = if batch && late > 0 && n % 4 == 3 { late } else { 150 + (n as u64 * 97) % 400 };
                if batch {
                    tokio::time::sleep(Duration::from_millis(hold)).await;
                    f.fetch_sub(1, SeqCst);
                }
                match answer {
                    Ok((status, body)) => (StatusCode::from_u16(status).unwrap(), body),
                    Err(e) => (StatusCode::BAD_GATEWAY, e.to_string().into_bytes()),
                }
            }
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, axum::Router::new().fallback(proxy)).await });
        SlowCloud { url, most_in_flight, largest_body, batches, asked, too_slow_ms }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_slow_cloud_gets_a_bounded_number_of_batches_at_once_and_each_event_once() {
    use std::sync::atomic::Ordering::SeqCst;

    let cloud = cloud_db().await;
    let node = CloudNode::start(&cloud, 0).await;
    let slow = SlowCloud::start(node.url.clone()).await;
    let plant = Plant::new(1, 1).await;
    let token = token(&cloud, Role::Forwarder, Scope::plant(1)).await;
    let t0 = now_s() - 3_600_000;
    for s in 0..60 {
        plant.readings(t0 + s * 1_000, |sensor| f64::from(sensor % 5) * 0.5 + s as f64).await;
        if s % 3 == 0 {
            plant
                .append(&format!("anomaly-P1-x{s}"), "AnomalyNoteAdded", &json!({ "s": s, "x": "y".repeat(300) }))
                .await;
        }
    }
    let mut config = forwarder::ForwarderConfig::new(plant.number, &slow.url, &token);
    config.batch_max_events = 40;
    config.request_max_events = 6;
    config.request_max_bytes = 4_000;
    config.requests_in_flight = 3;
    config.request_timeout_ms = 4_000;
    config.retry_max_backoff_ms = 300;
    let (stop, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(forwarder::run(plant.db.clone(), config, async move {
        let _ = rx.await;
    }));

    // Slow answers, all within the forwarder's patience: several batches travel at once,
    // never more than it allows, none larger than it allows.
    wait_for("the backlog to arrive through the slow cloud", Duration::from_secs(120), || arrived(&cloud, &plant))
        .await;
    let most = slow.most_in_flight.load(SeqCst);
    assert!(
        (2..=3).contains(&most),
        "{most} batches were in flight at once (at most 3 allowed, and a slow cloud should see more than one)"
    );
    let largest = slow.largest_body.load(SeqCst);
    // A bounded request is its events' size and the batch's own few bytes.
    assert!(largest <= 4_000 + 256 && largest > 2_000, "a request of several events of {largest} bytes");
    assert!(slow.batches.load(SeqCst) >= 10, "the backlog went in many bounded requests");

    // Now some answers come later than the forwarder waits: it gives up on them, asks
    // where the cloud stands (it had in fact stored them) and goes on from there.
    let asked = slow.asked.load(SeqCst);
    slow.too_slow_ms.store(6_000, SeqCst);
    for s in 60..90 {
        plant.readings(t0 + s * 1_000, |sensor| f64::from(sensor % 3) + s as f64).await;
        if s % 2 == 0 {
            plant.append(&format!("anomaly-P1-x{s}"), "AnomalyNoteAdded", &json!({ "s": s })).await;
        }
    }
    wait_for("everything to arrive once despite abandoned answers", Duration::from_secs(180), || {
        arrived(&cloud, &plant)
    })
    .await;
    let copy = cloud_copy(&cloud, 1).await;
    let mut positions: Vec<i64> = copy.iter().map(|e| e.0).collect();
    positions.dedup();
    assert_eq!(positions.len(), copy.len(), "no event twice");
    assert_eq!(copy, plant_log(&plant.db).await, "every event, in order");
    assert!(slow.asked.load(SeqCst) > asked, "the forwarder gave up on a late answer and asked again");
    let _ = stop.send(());
    task.await.unwrap().unwrap();
    node.stop().await;
}
