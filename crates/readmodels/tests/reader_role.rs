//! The reader role belongs to the whole server, and every plant node sets its password
//! when it starts: five nodes of one factory start at the same instant.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::plant_db;

/// PostgreSQL refuses the second of two concurrent updates of one role ("tuple
/// concurrently updated") rather than waiting. The race is forced here: another
/// plant's update of the role is held open until this one waits behind it.
#[tokio::test]
async fn setting_the_reader_password_survives_another_plant_updating_the_role() {
    let ours = plant_db().await;
    let theirs = plant_db().await;
    let other_plant = theirs.client().await.unwrap();
    other_plant
        .batch_execute("BEGIN; ALTER ROLE floorwatch_reader PASSWORD 'the-other-plants-password'")
        .await
        .unwrap();

    let setting = tokio::spawn({
        let ours = ours.clone();
        async move { readmodels::set_reader_password(&ours, "reader-password-of-this-plant").await }
    });
    let watcher = theirs.client().await.unwrap();
    let mut waited = Duration::ZERO;
    loop {
        let waiting: i64 = watcher
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE 'ALTER ROLE%'",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        if waiting > 0 {
            break;
        }
        assert!(waited < Duration::from_secs(30), "the second update never waited behind the first");
        tokio::time::sleep(Duration::from_millis(20)).await;
        waited += Duration::from_millis(20);
    }
    other_plant.batch_execute("COMMIT").await.unwrap();

    let result = setting.await.unwrap();
    assert!(result.is_ok(), "setting the password failed: {:#}", result.unwrap_err());
    // The password in force is the one set last, this plant's.
    let config = ours.config();
    let url = format!(
        "postgresql://floorwatch_reader:reader-password-of-this-plant@{}:{}/{}",
        match &config.get_hosts()[0] {
            tokio_postgres::config::Host::Tcp(h) => h.clone(),
            tokio_postgres::config::Host::Unix(p) => p.display().to_string(),
        },
        config.get_ports()[0],
        config.get_dbname().unwrap()
    );
    pgcluster::testdb::connect(&url).await.unwrap();
}

/// The same, as it happens in a factory: many plants' databases set it at once, over
/// and over.
#[tokio::test]
async fn many_plants_set_the_reader_password_at_once() {
    let mut dbs = Vec::new();
    for _ in 0..5 {
        dbs.push(plant_db().await);
    }
    for round in 0..20 {
        let all = dbs.iter().map(|db| readmodels::set_reader_password(db, "the-same-password-for-every-plant"));
        for (plant, r) in futures_util::future::join_all(all).await.into_iter().enumerate() {
            assert!(r.is_ok(), "round {round}, plant {plant}: {:#}", r.unwrap_err());
        }
    }
}
