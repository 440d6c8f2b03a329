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

/// A small model trained on synthetic runs to failure of a CNC machine's sensor kinds.
fn small_model(layout: &Layout) -> maintenance::Model {
    use maintenance::{
        BoosterParams, DAY_MS, FactoryColumns, FeatureConfig, HOUR_MS, HistoryTable, MachineSchema, RunEnd, SensorHour,
        TrainOptions, TrainingSet,
    };
    let m = &layout.machines()[0];
    let kind = |s: &layout::Sensor| layout.machine_type_of(m).sensors[s.spec].kind.clone();
    let sensors: Vec<(u32, String)> = layout.sensors_in(&m.sensors).iter().map(|s| (s.id, kind(s))).collect();
    let schema =
        MachineSchema::new(&layout.machine_type_of(m).name, sensors.iter().map(|(i, k)| (*i, k.as_str()))).unwrap();
    let columns = FactoryColumns::of_machines([&schema]);
    let mut table = HistoryTable::new(columns.names().to_vec()).unwrap();
    let mut ends = std::collections::HashMap::new();
    for k in 0..8i64 {
        let life = 4.0 + 0.3 * k as f64;
        let service = (k * 20 + 1) * DAY_MS;
        let failure = service + (life * DAY_MS as f64) as i64;
        let unit = format!("u{k}");
        table.start_unit(&unit, maintenance::days_of_ms(service)).unwrap();
        let mut hours = Vec::new();
        let mut hour = service;
        while hour + HOUR_MS <= failure {
            let wear = (hour + HOUR_MS - service) as f64 / (life * DAY_MS as f64);
            for (s, _) in &sensors {
                let mean = 10.0 + f64::from(s % 7) + 8.0 * wear * wear;
                hours.push(SensorHour { sensor: *s, hour_ms: hour, count: 60, min: mean - 0.5, max: mean + 0.5, mean });
            }
            hour += HOUR_MS;
        }
        for (time, row) in columns.rows(&schema, &hours) {
            table.push_row(&unit, time, &row).unwrap();
        }
        ends.insert(unit, RunEnd::Failed { at: maintenance::days_of_ms(failure) });
    }
    let options = TrainOptions {
        rul_cap: Some(4.0),
        seed: 3,
        validation_units: 0,
        calibration_folds: 3,
        interval_min_bin_points: 50,
        time_unit: "days".into(),
        features: FeatureConfig { windows: vec![0.25, 1.0], baseline_window: 0.25 },
        booster: BoosterParams { iterations: 20, learning_rate: 0.2, min_leaf_weight: 5.0, ..BoosterParams::default() },
        ..TrainOptions::default()
    };
    maintenance::train(&TrainingSet::new(table, &ends).unwrap(), &options).unwrap().0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_model_the_cloud_publishes_becomes_the_plants_and_stays_while_the_cloud_is_away() {
    let (plant, plant_url, layout) = plant_db().await;
    let cloud_test = TestDb::new().await.unwrap();
    let cloud_db = Database::new(&cloud_test.url, 8).unwrap();
    cloud::migrate(&cloud_db).await.unwrap();
    let (_, token) = access::create(&cloud_db, Role::Forwarder, Scope::plant(1), "forwarder P1").await.unwrap();
    let model = small_model(&layout);
    let version = cloud::train::register(&cloud_db, &model, None, true).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let cloud_url = format!("http://{}", listener.local_addr().unwrap());
    let (stop_cloud, stopped) = tokio::sync::oneshot::channel::<()>();
    let node = tokio::spawn(cloud::node::run(cloud_db.clone(), cloud::CloudConfig::default(), listener, async move {
        let _ = stopped.await;
    }));
    let mut child = forwarder(&plant_url, &cloud_url, &token);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let active = plant::registry::active_version(&plant.client().await.unwrap()).await.unwrap();
        if active.as_deref() == Some(version.as_str()) {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "the plant did not take the cloud's model");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The cloud goes away: the plant keeps scoring with the model it has.
    let _ = stop_cloud.send(());
    node.await.unwrap().unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let client = plant.client().await.unwrap();
    assert_eq!(plant::registry::active_version(&client).await.unwrap().as_deref(), Some(version.as_str()));
    assert!(plant::registry::active_model(&client).await.unwrap().is_some());
    sigkill(&mut child);
}
