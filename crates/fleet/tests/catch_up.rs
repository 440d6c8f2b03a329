//! A plant behind real time catches up even when an upload's round trip is longer than
//! a simulated second: the fleet keeps several steps in flight, never more than its
//! configured bound.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::routing::post;
use fleet::{FleetConfig, FleetStats, Pace, PlantTarget};
use layout::{Layout, Scale};
use simulator::{Factory, SimConfig};
use tokio::sync::watch;

/// A plant whose every answer takes `ROUND_TRIP`, counting the uploads it holds at once.
#[derive(Default)]
struct SlowPlant {
    now: AtomicUsize,
    most: AtomicUsize,
}

const ROUND_TRIP: Duration = Duration::from_millis(1_500);

async fn serve(plant: Arc<SlowPlant>) -> String {
    let upload = {
        let plant = plant.clone();
        move || {
            let plant = plant.clone();
            async move {
                let n = plant.now.fetch_add(1, Ordering::SeqCst) + 1;
                plant.most.fetch_max(n, Ordering::SeqCst);
                tokio::time::sleep(ROUND_TRIP).await;
                plant.now.fetch_sub(1, Ordering::SeqCst);
                axum::Json(serde_json::json!({ "accepted": 1, "rejected": [] }))
            }
        }
    };
    let app = Router::new()
        .route("/v1/gateways/{gateway}/batches/{sequence}", post(upload))
        .route("/v1/gateways/{gateway}/machine-events", post(|| async { "{}" }))
        .fallback(post(|| async { "{}" }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    base
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plant_with_a_slow_round_trip_catches_up_with_steps_in_flight() {
    let scale = Scale { plants: Some(1), lines_per_plant: Some(2), sensors_per_plant: Some(40) };
    let layout = Layout::default_with(&scale).unwrap();
    let tokens = plant::GatewayTokens::issue(&layout, 1, &plant::GatewayTokens::default()).unwrap();
    let gateways = tokens.as_map().len();
    let plant = Arc::new(SlowPlant::default());
    let target = PlantTarget {
        plant_number: 1,
        base_url: serve(plant.clone()).await,
        tokens: tokens.as_map().clone(),
        command_token: None,
    };
    // Twenty simulated seconds behind the wall clock, to be sent in real time.
    let now = chrono::Utc::now().timestamp_millis().div_euclid(1000) * 1000;
    let (start, end) = (now - 20_000, now + 2_000);
    let sim = Factory::new(&layout, &SimConfig::default(), 5, start).unwrap().into_plants().remove(0);
    let config = FleetConfig { pace: Pace::RealTime, end_ms: Some(end), ..FleetConfig::default() };
    let bound = config.max_steps_in_flight;
    let stats = Arc::new(FleetStats::default());
    let (_stop, stopped) = watch::channel(false);
    let through = fleet::run_plant(sim, target, config, stats.clone(), stopped).await.unwrap();

    assert_eq!(through, end - 1_000, "every step was sent");
    assert_eq!(stats.acknowledged_through(1), Some(end - 1_000));
    let most = plant.most.load(Ordering::SeqCst);
    assert!(most > gateways, "behind real time, more than one step was in flight ({most} uploads at once)");
    assert!(most <= gateways * bound, "never more than {bound} steps in flight ({most} uploads at once)");
}
