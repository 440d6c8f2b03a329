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

/// A plant node on a fresh database, and the fleet's target for it.
struct Node {
    db: Database,
    target: PlantTarget,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
    _test_db: pgcluster::testdb::TestDb,
}

async fn start_node(layout: &Layout) -> Node {
    let test_db = pgcluster::testdb::TestDb::new().await.unwrap();
    let db = Database::new(&test_db.url, 16).unwrap();
    let secrets = NodeSecrets {
        gateway_tokens: GatewayTokens::issue(layout, 1, &GatewayTokens::default()).unwrap(),
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
    let (stop, node_stopped) = watch::channel(false);
    let task = tokio::spawn(plant::node::run(
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
    Node { db, target, stop, task, _test_db: test_db }
}

impl Node {
    /// The log's readings, counted by sensor.
    async fn logged(&self) -> BTreeMap<u32, u64> {
        let client = self.db.client().await.unwrap();
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
        logged
    }

    async fn stop(self) {
        let _ = self.stop.send(true);
        self.task.await.unwrap().unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_simulated_hour_arrives_complete_and_once() {
    let layout = Layout::default_with(&scale()).unwrap();
    let node = start_node(&layout).await;
    let target = &node.target;

    let now = chrono::Utc::now().timestamp_millis().div_euclid(1000) * 1000;
    let (start, end) = (now - 2 * 3_600_000, now - 3_600_000);
    let first = send(target, &layout, start, end).await;
    assert_eq!(first.refused.load(Ordering::Relaxed), 0);
    // The gateways restart and send the first ten minutes again.
    let again = send(target, &layout, start, start + 600_000).await;
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
    assert_eq!(node.logged().await, expected);
    assert_eq!(first.readings_accepted.load(Ordering::Relaxed), expected.values().sum::<u64>());
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backfill_grouped_into_half_hour_uploads_arrives_complete_and_once() {
    let layout = Layout::default_with(&scale()).unwrap();
    let node = start_node(&layout).await;
    let now = chrono::Utc::now().timestamp_millis().div_euclid(60_000) * 60_000;
    // Five hours a reading a minute, grouped by 30 steps: the last group is cut short by
    // the end, which is not a multiple of the group.
    let (start, end) = (now - 6 * 3_600_000, now - 3_600_000 + 17 * 60_000);
    let grouped = |to: i64| {
        let target = node.target.clone();
        let plant = Factory::new(&layout, &SimConfig::default(), SEED, start).unwrap().into_plants().remove(0);
        async move {
            let stats = Arc::new(FleetStats::default());
            let (_stop, stopped) = watch::channel(false);
            let config = FleetConfig {
                pace: Pace::Max,
                end_ms: Some(to),
                coarse_until_ms: Some(to),
                coarse_steps_per_upload: 30,
                ..FleetConfig::default()
            };
            fleet::run_plant(plant, target, config, stats.clone(), stopped).await.unwrap();
            stats
        }
    };
    let first = grouped(end).await;
    assert_eq!(first.refused.load(Ordering::Relaxed), 0);
    // Sent again from the start (a gateway restarted), the same groups are stored once.
    let again = grouped(start + 90 * 60_000).await;
    assert_eq!(again.refused.load(Ordering::Relaxed), 0);

    let mut expected: BTreeMap<u32, u64> = BTreeMap::new();
    let mut plant = Factory::new(&layout, &SimConfig::default(), SEED, start).unwrap().into_plants().remove(0);
    plant.set_step_ms(60_000).unwrap();
    let mut step = Step::default();
    let mut steps = 0u64;
    while plant.next_ts_ms() < end {
        plant.step_into(&mut step);
        steps += 1;
        for r in step.batches.iter().flat_map(|b| &b.readings) {
            *expected.entry(r.sensor).or_default() += 1;
        }
    }
    assert_eq!(node.logged().await, expected);
    // One upload per gateway per 30 steps (the last group shorter), not one per step.
    let gateways = layout.lines().len() as u64;
    assert_eq!(first.uploads.load(Ordering::Relaxed), gateways * steps.div_ceil(30));
    node.stop().await;
}
