//! `floorwatch forward` as a process: killed with SIGKILL at random instants while it
//! ships (mid-batch, mid-request), restarted each time, the plant's log still arrives in
//! the cloud complete and once.
#![allow(clippy::unwrap_used)]

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use access::{Role, Scope};
use domain::events::{LAYOUT_CONFIGURED, LayoutConfigured};
use eventlog::{Append, Database, ExpectedVersion, Metadata, NewEvent, StreamName};
use layout::{Layout, Scale};
use pgcluster::testdb::TestDb;
use telemetry::Reading;

async fn plant_db() -> (Database, String, Layout) {
    let t = TestDb::new().await.unwrap();
    let db = Database::new(&t.url, 4).unwrap();
    readmodels::migrate(&db).await.unwrap();
    plant::migrate(&db).await.unwrap();
    let scale = Scale { plants: Some(1), lines_per_plant: Some(4), sensors_per_plant: Some(400) };
    let layout = Layout::default_with(&scale).unwrap();
    let event = LayoutConfigured {
        plant: 1,
        layout_toml: layout::DEFAULT_LAYOUT_TOML.into(),
        plants: scale.plants,
        lines_per_plant: scale.lines_per_plant,
        sensors_per_plant: scale.sensors_per_plant,
        stale_after_ms: 10_000,
    };
    let e = NewEvent::json(LAYOUT_CONFIGURED, 1, &event, Metadata::by("test")).unwrap();
    eventlog::append_and_commit(
        &db,
        &[Append::new(StreamName::new("plant-P1").unwrap(), ExpectedVersion::Any, vec![e])],
    )
    .await
    .unwrap();
    (db, t.url, layout)
}

async fn readings(db: &Database, layout: &Layout, ts: i64) {
    let appends: Vec<Append> = layout
        .lines()
        .iter()
        .map(|line| {
            let r: Vec<Reading> = line.sensor_ids.clone().map(|s| Reading::new(s, ts, f64::from(s % 17))).collect();
            let e = NewEvent::readings(&r, (ts - 1, ts + 1), Metadata::from_source("gateway")).unwrap();
            Append::new(StreamName::of("readings", &line.id).unwrap(), ExpectedVersion::Any, vec![e])
        })
        .collect();
    eventlog::append_and_commit(db, &appends).await.unwrap();
}

async fn log(db: &Database, origin: Option<u16>) -> Vec<(i64, String)> {
    let client = db.client().await.unwrap();
    let mut out = Vec::new();
    let mut after = 0;
    loop {
        let events = eventlog::read_all(&client, after, 500, None).await.unwrap();
        let Some(last) = events.last() else { return out };
        after = last.position;
        for e in events {
            match origin {
                None => out.push((e.position, format!("{}{:?}", e.event_type, e.payload))),
                Some(p) if e.origin.is_some_and(|o| o.plant == p) => {
                    out.push((e.origin.unwrap().position, format!("{}{:?}", e.event_type, e.payload)));
                }
                Some(_) => {}
            }
        }
    }
}

fn forwarder(plant_url: &str, cloud_url: &str, token: &str) -> Child {
    Command::new(env!("CARGO_BIN_EXE_floorwatch"))
        .args(["forward", "--plant", "1", "--cloud", cloud_url, "--plant-database", plant_url, "--batch-events", "7"])
        .env("FLOORWATCH_FORWARDER_TOKEN", token)
        .env("FLOORWATCH_DATA_DIR", std::env::temp_dir().join(format!("fw-forward-{}", std::process::id())))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

fn sigkill(child: &mut Child) {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), nix::sys::signal::Signal::SIGKILL).unwrap();
    child.wait().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_forwarder_killed_at_random_instants_loses_and_doubles_nothing() {
    let (plant, plant_url, layout) = plant_db().await;
    let cloud_test = TestDb::new().await.unwrap();
    let cloud_db = Database::new(&cloud_test.url, 16).unwrap();
    cloud::migrate(&cloud_db).await.unwrap();
    let (_, token) = access::create(&cloud_db, Role::Forwarder, Scope::plant(1), "forwarder P1").await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let cloud_url = format!("http://{}", listener.local_addr().unwrap());
    let (stop_cloud, stopped) = tokio::sync::oneshot::channel::<()>();
    let node = tokio::spawn(cloud::node::run(cloud_db.clone(), cloud::CloudConfig::default(), listener, async move {
        let _ = stopped.await;
    }));

    // The plant keeps writing while the forwarder is killed and restarted.
    let t0 = chrono::Utc::now().timestamp_millis().div_euclid(1000) * 1000 - 3_600_000;
    let writer = {
        let (plant, layout) = (plant.clone(), layout.clone());
        tokio::spawn(async move {
            for s in 0..240 {
                readings(&plant, &layout, t0 + s * 1000).await;
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
    };
    let mut rng = 0x9e37_79b9_7f4a_7c15u64;
    for _ in 0..8 {
        let mut child = forwarder(&plant_url, &cloud_url, &token);
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        tokio::time::sleep(Duration::from_millis(300 + rng % 900)).await;
        sigkill(&mut child);
    }
    writer.await.unwrap();
    let mut child = forwarder(&plant_url, &cloud_url, &token);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    let expected = log(&plant, None).await;
    loop {
        let copy = log(&cloud_db, Some(1)).await;
        if copy.len() >= expected.len() {
            assert_eq!(copy, expected, "the cloud's copy is the plant's log, once, in order");
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "only {} of {} events arrived", copy.len(), expected.len());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    sigkill(&mut child);
    let _ = stop_cloud.send(());
    node.await.unwrap().unwrap();
}
