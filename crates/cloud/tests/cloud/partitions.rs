//! Day partitions of the minute aggregates: a new day is created and attached beside the
//! telemetry projection's open batch (which reads the log and writes the parent) without
//! waiting for it, the API's reads of the parent do not wait either, and two creators of
//! the same day create it once.

use pgcluster::partitions::{
    assert_made_as_partition, create_beside_open_transaction, create_same_day_twice, drop_beside_open_transaction,
    table_exists,
};
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

#[tokio::test]
async fn an_old_minute_day_is_dropped_beside_the_projections_open_batch_and_nobody_waits() {
    let url = cloud_db_at().await;
    let db = eventlog::Database::new(&url, 2).expect("pool");
    let client = pgcluster::testdb::connect(&url).await.unwrap();
    client
        .batch_execute(
            "SELECT cloud.ensure_minute_partition('2026-03-01');
             SELECT cloud.ensure_minute_partition('2026-03-20');
             INSERT INTO cloud.sensor_minute VALUES (1, 1, '2026-03-01 12:00+00', 1, 1, 1, 1, 1);",
        )
        .await
        .unwrap();
    // The telemetry projection is past every row of the old day.
    client
        .batch_execute("INSERT INTO eventlog.checkpoints (subscriber, position) VALUES ('cloud-telemetry', 5)")
        .await
        .unwrap();
    let hold = [
        "SELECT count(*) FROM eventlog.all_events",
        "SELECT count(*) FROM cloud.sensor_minute",
        "INSERT INTO cloud.sensor_minute VALUES (1, 1, '2026-03-20 12:00+00', 1, 1, 1, 1, 9)
             ON CONFLICT (plant, sensor_id, minute) DO UPDATE SET count = cloud.sensor_minute.count + 1",
    ];
    let beside = [
        "SELECT count(*) FROM cloud.sensor_minute WHERE plant = 1",
        "INSERT INTO cloud.sensor_minute VALUES (2, 1, '2026-03-20 12:00+00', 1, 1, 1, 1, 9)
             ON CONFLICT (plant, sensor_id, minute) DO UPDATE SET count = cloud.sensor_minute.count + 1",
    ];
    let cutoff = chrono::DateTime::parse_from_rfc3339("2026-03-10T00:00:00Z").unwrap().to_utc();
    let dropped = drop_beside_open_transaction(
        &url,
        &hold,
        async move { cloud::projections::expire_minutes(&db, cutoff).await },
        &beside,
    )
    .await
    .unwrap();
    assert_eq!(dropped, ["sensor_minute_20260301"]);
    assert!(!table_exists(&url, "cloud.sensor_minute_20260301").await.unwrap());
    let rows: i64 = client.query_one("SELECT count(*) FROM cloud.sensor_minute", &[]).await.unwrap().get(0);
    assert_eq!(rows, 2);
}

#[tokio::test]
async fn a_minute_day_left_pending_detach_is_finished_by_the_next_run() {
    let url = cloud_db_at().await;
    let db = eventlog::Database::new(&url, 2).expect("pool");
    let client = pgcluster::testdb::connect(&url).await.unwrap();
    client.batch_execute("SELECT cloud.ensure_minute_partition('2026-03-01')").await.unwrap();
    // A reader holds the table; the detach gives up waiting for it half-way.
    let reader = pgcluster::testdb::connect(&url).await.unwrap();
    reader.batch_execute("BEGIN; SELECT count(*) FROM cloud.sensor_minute").await.unwrap();
    client.batch_execute("SET lock_timeout = '200ms'").await.unwrap();
    client
        .batch_execute("ALTER TABLE cloud.sensor_minute DETACH PARTITION cloud.sensor_minute_20260301 CONCURRENTLY")
        .await
        .unwrap_err();
    reader.batch_execute("COMMIT").await.unwrap();
    // Whatever the cut-off: the drop was decided before.
    let long_ago = chrono::DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z").unwrap().to_utc();
    assert_eq!(cloud::projections::expire_minutes(&db, long_ago).await.unwrap(), ["sensor_minute_20260301"]);
    assert!(!table_exists(&url, "cloud.sensor_minute_20260301").await.unwrap());
    let made: bool = client.query_one("SELECT cloud.ensure_minute_partition('2026-03-01')", &[]).await.unwrap().get(0);
    assert!(made, "the day can be made again");
}
