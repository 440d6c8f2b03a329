//! Training across plants: the model learns from every plant's history as the cloud
//! holds it, is registered with its metrics, and is what the registry publishes.

use std::time::Duration;

use access::{Role, Scope};
use chrono::DateTime;
use factory_history::FactoryTrainOptions;
use maintenance::{BoosterParams, DAY_MS, HOUR_MS};

use crate::projections::projected;
use crate::support::*;

/// Every machine of `plant` runs to failure again and again over `days`: its sensors
/// drift up with wear; each run is one entry of the maintenance log.
async fn history(cloud: &eventlog::Database, plant: u16, start: i64, days: i64) {
    let client = cloud.client().await.unwrap();
    let machines: Vec<(String, Vec<i32>)> = client
        .query(
            "SELECT machine_id, array_agg(sensor_id ORDER BY sensor_id) FROM cloud.sensors WHERE plant = $1 GROUP BY 1 ORDER BY 1",
            &[&(plant as i16)],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    for (m, (machine, sensors)) in machines.iter().enumerate() {
        let life_days = 5.0 + (m % 4) as f64;
        let mut service = start;
        let mut run = 0;
        while service + (life_days * DAY_MS as f64) as i64 <= start + days * DAY_MS {
            let failure = service + (life_days * DAY_MS as f64) as i64;
            let (mut ids, mut hours, mut means) = (Vec::new(), Vec::new(), Vec::new());
            let mut hour = service;
            while hour + HOUR_MS <= failure {
                let wear = (hour + HOUR_MS - service) as f64 / (life_days * DAY_MS as f64);
                for &s in sensors {
                    ids.push(s);
                    hours.push(DateTime::from_timestamp_millis(hour).unwrap());
                    means.push(10.0 + f64::from(s % 7) + 8.0 * wear * wear + f64::from((s as u32 ^ run) % 5) / 50.0);
                }
                hour += HOUR_MS;
            }
            client
                .execute(
                    "INSERT INTO cloud.sensor_hour (plant, sensor_id, hour, count, min, max, mean, position)
                     SELECT $1, s, h, 60, m - 0.5, m + 0.5, m, 0 FROM unnest($2::int[], $3::timestamptz[], $4::float8[]) u(s, h, m)",
                    &[&(plant as i16), &ids, &hours, &means],
                )
                .await
                .unwrap();
            let at = DateTime::from_timestamp_millis(failure).unwrap();
            let done = DateTime::from_timestamp_millis(failure + 12 * HOUR_MS).unwrap();
            client
                .execute(
                    "INSERT INTO cloud.maintenance_log (plant, entry_id, machine_id, kind, state, at, position)
                     VALUES ($1, $2, $3, 'failure', 'failed', $4, 0),
                            ($1, $5, $3, 'emergency', 'performed', $6, 0)",
                    &[
                        &(plant as i16),
                        &format!("{machine}-F{run}"),
                        machine,
                        &at,
                        &format!("{machine}-WO{run}"),
                        &done,
                    ],
                )
                .await
                .unwrap();
            client
                .execute(
                    "UPDATE cloud.maintenance_log SET performed_at = at WHERE plant = $1 AND entry_id = $2",
                    &[&(plant as i16), &format!("{machine}-WO{run}")],
                )
                .await
                .unwrap();
            service = failure + 12 * HOUR_MS;
            run += 1;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_model_is_trained_on_every_plants_history_registered_and_published() {
    let cloud = cloud_db().await;
    let node = CloudNode::start(&cloud, 0).await;
    let plants = [Plant::new(1, 2).await, Plant::new(2, 2).await];
    let mut links = Vec::new();
    for p in &plants {
        let t = token(&cloud, Role::Forwarder, Scope::plant(p.number)).await;
        links.push(forwarder(p, &node.url, &t));
    }
    wait_for("both layouts", Duration::from_secs(60), || async {
        let client = cloud.client().await.unwrap();
        client.query_one("SELECT count(*) FROM cloud.plants", &[]).await.unwrap().get::<_, i64>(0) == 2
    })
    .await;
    projected(&cloud).await;
    let start = now_s() - 70 * DAY_MS;
    let start = start - start.rem_euclid(DAY_MS);
    for p in &plants {
        history(&cloud, p.number, start, 60).await;
    }
    let options = FactoryTrainOptions {
        seed: 5,
        windows_days: vec![0.5, 1.0],
        baseline_days: 0.5,
        rul_cap_days: 6.0,
        booster: BoosterParams { iterations: 30, learning_rate: 0.2, min_leaf_weight: 5.0, ..BoosterParams::default() },
        ..FactoryTrainOptions::default()
    };
    let (model, report) = cloud::train::train(&cloud, None, options, true).await.unwrap();
    assert_eq!(report.machines, 20, "every machine of both plants");
    assert!(report.runs_failed >= 100, "{report:?}");
    assert!(report.validation_machines > 0 && report.validation.is_some());
    let published = cloud::train::active(&cloud).await.unwrap().unwrap();
    assert_eq!(published.version, model.version().unwrap());
    assert_eq!(maintenance::Model::from_json(&published.model).unwrap().version().unwrap(), published.version);

    // The registry, as the manager's app and the plants' forwarders read it.
    let manager = token(&cloud, Role::Manager, Scope::AllPlants).await;
    let http = reqwest::Client::new();
    let models: serde_json::Value =
        http.get(format!("{}/v1/models", node.url)).bearer_auth(&manager).send().await.unwrap().json().await.unwrap();
    assert_eq!(models[0]["version"], published.version.as_str());
    assert_eq!(models[0]["active"], true);
    assert!(models[0]["metrics"]["validation"].is_object(), "{models}");
    let f1 = token(&cloud, Role::Forwarder, Scope::plant(1)).await;
    let fetched: serde_json::Value = http
        .get(format!("{}/v1/ingest/plants/1/models/active", node.url))
        .bearer_auth(&f1)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(fetched["version"], published.version.as_str());
    node.stop().await;
    for (stop, task) in links {
        let _ = stop.send(());
        task.await.unwrap().unwrap();
    }
}
