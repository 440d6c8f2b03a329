//! Day partitions of the minute aggregates: a new day is created and attached beside the
//! telemetry projection's open batch (which reads the log and writes the parent) without
//! waiting for it, the API's reads of the parent do not wait either, and two creators of
//! the same day create it once.

use pgcluster::partitions::{assert_made_as_partition, create_beside_open_transaction, create_same_day_twice};
use pgcluster::testdb::TestDb;

async fn cloud_db_at() -> String {
    let t = TestDb::new().await.expect("test database");
    let db = eventlog::Database::new(&t.url, 2).expect("pool");
    cloud::migrate(&db).await.expect("cloud migrations");
    t.url
}

#[tokio::test]
async fn a_minute_partition_is_created_and_read_beside_the_projections_open_batch() {
    let url = cloud_db_at().await;
    let client = pgcluster::testdb::connect(&url).await.unwrap();
    client.batch_execute("SELECT cloud.ensure_minute_partition('2026-03-01')").await.unwrap();
    let hold = [
        "SELECT count(*) FROM eventlog.all_events",
        "SELECT count(*) FROM cloud.sensor_minute",
        "INSERT INTO cloud.sensor_minute VALUES (1, 1, '2026-03-01 12:00+00', 1, 1, 1, 1, 1)
             ON CONFLICT (plant, sensor_id, minute) DO UPDATE SET count = cloud.sensor_minute.count + 1",
    ];
    let created = create_beside_open_transaction(
        &url,
        &hold,
        "SELECT cloud.ensure_minute_partition('2026-03-02')",
        "SELECT count(*) FROM cloud.sensor_minute WHERE plant = 1",
    )
    .await
    .unwrap();
    assert!(created);
    assert_made_as_partition(&url, "cloud.sensor_minute", "cloud.sensor_minute_20260302").await.unwrap();
    client
        .batch_execute("INSERT INTO cloud.sensor_minute VALUES (1, 1, '2026-03-02 00:00+00', 1, 2, 2, 2, 2)")
        .await
        .unwrap();
    let rows: i64 = client.query_one("SELECT count(*) FROM cloud.sensor_minute_20260302", &[]).await.unwrap().get(0);
    assert_eq!(rows, 1);
}

#[tokio::test]
async fn two_creators_of_the_same_minute_day_create_it_once() {
    let url = cloud_db_at().await;
    let created = create_same_day_twice(&url, "SELECT cloud.ensure_minute_partition('2026-03-03')").await.unwrap();
    assert_eq!(created, (true, false), "the first creates the day, the second finds it");
    assert_made_as_partition(&url, "cloud.sensor_minute", "cloud.sensor_minute_20260303").await.unwrap();
}
