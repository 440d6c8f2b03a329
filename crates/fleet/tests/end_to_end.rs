//! A simulated hour of a small plant sent through a real plant node over HTTP: every
//! reading arrives in the log exactly once, by sensor, even when the gateways send it
//! all again; failures and services arrive as events.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use eventlog::Database;
use fleet::{FleetConfig, FleetStats, Pace, PlantTarget};
use layout::{Layout, Scale};
use plant::GatewayTokens;
use plant::ingest::system_clock;
use plant::node::{NodeConfig, NodeSecrets};
use simulator::{Factory, SimConfig, Step};
use tokio::sync::watch;

const SEED: u64 = 21;

fn scale() -> Scale {
    Scale { plants: Some(1), lines_per_plant: Some(2), sensors_per_plant: Some(40) }
}

async fn send(target: &PlantTarget, layout: &Layout, start: i64, end: i64) -> Arc<FleetStats> {
    let plant = Factory::new(layout, &SimConfig::default(), SEED, start).unwrap().into_plants().remove(0);
    let stats = Arc::new(FleetStats::default());
    let (_stop, stopped) = watch::channel(false);
    let config = FleetConfig { pace: Pace::Max, end_ms: Some(end), ..FleetConfig::default() };
    fleet::run_plant(plant, target.clone(), config, stats.clone(), stopped).await.unwrap();
    stats
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_simulated_hour_arrives_complete_and_once() {
    let test_db = pgcluster::testdb::TestDb::new().await.unwrap();
    let db = Database::new(&test_db.url, 16).unwrap();
    let layout = Layout::default_with(&scale()).unwrap();
    let secrets = NodeSecrets {
        gateway_tokens: GatewayTokens::issue(&layout, 1, &GatewayTokens::default()).unwrap(),
        reader_password: "reader-password-for-tests-0123456789".into(),
        node_password: "node-password-for-tests-0123456789".into(),
    };
    // The maintenance crew signs its work orders with its own credential.
    access::migrate(&db).await.unwrap();
    let (_, crew) = access::create(&db, access::Role::Maintenance, access::Scope::plant(1), "crew").await.unwrap();
    let config = NodeConfig::new(1, layout::DEFAULT_LAYOUT_TOML.into(), scale());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let target = PlantTarget {
        plant_number: 1,
        base_url: format!("http://{}", listener.local_addr().unwrap()),
        tokens: secrets.gateway_tokens.as_map().clone(),
        crew_token: Some(crew),
    };
    let (stop_node, node_stopped) = watch::channel(false);
    let node = tokio::spawn(plant::node::run(
        db.clone(),
        config,
        secrets,
        listener,
        system_clock(),
        async move {
            let mut s = node_stopped;
            let _ = s.wait_for(|v| *v).await;
        },
        |_| {},
    ));

    let now = chrono::Utc::now().timestamp_millis().div_euclid(1000) * 1000;
    let (start, end) = (now - 2 * 3_600_000, now - 3_600_000);
    let first = send(&target, &layout, start, end).await;
    assert_eq!(first.refused.load(Ordering::Relaxed), 0);
    // The gateways restart and send the first ten minutes again.
    let again = send(&target, &layout, start, start + 600_000).await;
    assert_eq!(again.refused.load(Ordering::Relaxed), 0);

    // What the simulator generated, by sensor.
    let mut expected: BTreeMap<u32, u64> = BTreeMap::new();
    let mut factory = Factory::new(&layout, &SimConfig::default(), SEED, start).unwrap();
    let mut step = Step::default();
    while factory.next_ts_ms() < end {
        factory.step_into(&mut step);
        for r in step.batches.iter().flat_map(|b| &b.readings) {
            *expected.entry(r.sensor).or_default() += 1;
        }
    }
    // What the log holds, by sensor.
    let client = db.client().await.unwrap();
    let mut logged: BTreeMap<u32, u64> = BTreeMap::new();
    let mut after = 0;
    loop {
        let events = eventlog::read_all(&client, after, 1000, Some(&["readings".to_owned()])).await.unwrap();
        let Some(last) = events.last() else { break };
        after = last.position;
        for r in events.iter().flat_map(|e| e.readings().unwrap()) {
            *logged.entry(r.sensor).or_default() += 1;
        }
    }
    assert_eq!(logged, expected);
    assert_eq!(first.readings_accepted.load(Ordering::Relaxed), expected.values().sum::<u64>());

    let _ = stop_node.send(true);
    node.await.unwrap().unwrap();
}
