//! Day partitions of the history against a real PostgreSQL: a new day is created and
//! attached beside the history projection's open batch (which reads and writes the
//! parent) without waiting for it, readers of the parent do not wait either, two creators
//! of the same day create it once, and the partition has the parent's indexes and the
//! reader role's grant. Old days are dropped beside an open batch without anybody
//! waiting for the drop, and a drop that stopped half-way is finished by the next run.
#![allow(clippy::unwrap_used)]

use eventlog::Database;
use pgcluster::partitions::{assert_made_as_partition, create_beside_open_transaction, create_same_day_twice};

async fn plant_db_at() -> String {
    let test_db = pgcluster::testdb::TestDb::new().await.unwrap();
    let db = Database::new(&test_db.url, 2).unwrap();
    readmodels::migrate(&db).await.unwrap();
    test_db.url
}

#[tokio::test]
async fn a_day_partition_is_created_and_read_beside_an_open_batch() {
    let url = plant_db_at().await;
    let client = pgcluster::testdb::connect(&url).await.unwrap();
    client
        .batch_execute(
            "SELECT readmodel.ensure_day_partition('sensor_history', '2026-03-01');
             SELECT readmodel.ensure_day_partition('sensor_minute', '2026-03-01');",
        )
        .await
        .unwrap();
    for table in ["sensor_history", "sensor_minute"] {
        // The projection's batch: it has read both tables and written a minute.
        let hold = [
            "SELECT count(*) FROM readmodel.sensor_history",
            "SELECT count(*) FROM readmodel.sensor_minute",
            "INSERT INTO readmodel.sensor_minute VALUES (1, '2026-03-01 12:00+00', 1, 1, 1, 1, 1)
                 ON CONFLICT (sensor_id, minute) DO UPDATE SET count = readmodel.sensor_minute.count + 1",
        ];
        let create = format!("SELECT readmodel.ensure_day_partition('{table}', '2026-03-02')");
        let read = format!("SELECT count(*) FROM readmodel.{table}");
        assert!(create_beside_open_transaction(&url, &hold, &create, &read).await.unwrap(), "{table}");
        assert_made_as_partition(&url, &format!("readmodel.{table}"), &format!("readmodel.{table}_20260302"))
            .await
            .unwrap();
    }
    let reader_may_read: bool = client
        .query_one("SELECT has_table_privilege('floorwatch_reader', 'readmodel.sensor_minute_20260302', 'SELECT')", &[])
        .await
        .unwrap()
        .get(0);
    assert!(reader_may_read);
    // The new day takes rows through the parent.
    client
        .batch_execute("INSERT INTO readmodel.sensor_minute VALUES (1, '2026-03-02 00:00+00', 1, 2, 2, 2, 2)")
        .await
        .unwrap();
    let rows: i64 =
        client.query_one("SELECT count(*) FROM readmodel.sensor_minute_20260302", &[]).await.unwrap().get(0);
    assert_eq!(rows, 1);
}

#[tokio::test]
async fn two_creators_of_the_same_day_create_it_once() {
    let url = plant_db_at().await;
    let created = create_same_day_twice(&url, "SELECT readmodel.ensure_day_partition('sensor_history', '2026-03-03')")
        .await
        .unwrap();
    assert_eq!(created, (true, false), "the first creates the day, the second finds it");
    assert_made_as_partition(&url, "readmodel.sensor_history", "readmodel.sensor_history_20260303").await.unwrap();
}

#[tokio::test]
async fn only_the_tables_of_day_partitions_get_one() {
    let url = plant_db_at().await;
    let client = pgcluster::testdb::connect(&url).await.unwrap();
    for parent in ["sensor_hour", "audit", "sensor_history\"; DROP TABLE readmodel.audit; --", "", "sensor_history\0"] {
        let err =
            client.query_one("SELECT readmodel.ensure_day_partition($1, '2026-03-04')", &[&parent]).await.unwrap_err();
        let code = err.as_db_error().map(|e| e.code().code().to_owned());
        // A NUL is refused as text before the function sees it.
        assert!(
            code.as_deref() == Some("22023") || (parent.contains('\0') && code.as_deref() == Some("22021")),
            "{parent:?}: {err}"
        );
    }
    let audit: Option<String> =
        client.query_one("SELECT to_regclass('readmodel.audit')::text", &[]).await.unwrap().get(0);
    assert_eq!(audit.as_deref(), Some("readmodel.audit"));
}

#[tokio::test]
async fn old_days_are_dropped_beside_an_open_batch_and_nobody_waits_for_the_drop() {
    let url = plant_db_at().await;
    let db = Database::new(&url, 2).unwrap();
    let client = pgcluster::testdb::connect(&url).await.unwrap();
    for day in ["2026-03-01", "2026-03-20"] {
        client
            .batch_execute(&format!(
                "SELECT readmodel.ensure_day_partition('sensor_history', '{day}');
                 SELECT readmodel.ensure_day_partition('sensor_minute', '{day}');"
            ))
            .await
            .unwrap();
    }
    let hold = [
        "SELECT count(*) FROM readmodel.sensor_history",
        "SELECT count(*) FROM readmodel.sensor_minute",
        "INSERT INTO readmodel.sensor_minute VALUES (1, '2026-03-20 12:00+00', 1, 1, 1, 1, 1)
             ON CONFLICT (sensor_id, minute) DO UPDATE SET count = readmodel.sensor_minute.count + 1",
    ];
    let beside = [
        "SELECT count(*) FROM readmodel.sensor_history",
        "SELECT count(*) FROM readmodel.sensor_minute",
        "INSERT INTO readmodel.sensor_minute VALUES (2, '2026-03-20 12:00+00', 1, 1, 1, 1, 1)
             ON CONFLICT (sensor_id, minute) DO UPDATE SET count = readmodel.sensor_minute.count + 1",
    ];
    let cutoff = chrono::DateTime::parse_from_rfc3339("2026-03-10T00:00:00Z").unwrap().to_utc();
    let dropped = {
        let db = db.clone();
        pgcluster::partitions::drop_beside_open_transaction(
            &url,
            &hold,
            async move { readmodels::expire(&db, cutoff, cutoff).await },
            &beside,
        )
        .await
        .unwrap()
    };
    assert_eq!(dropped, ["sensor_history_20260301", "sensor_minute_20260301"]);
    for table in ["sensor_history_20260301", "sensor_minute_20260301"] {
        assert!(!pgcluster::partitions::table_exists(&url, &format!("readmodel.{table}")).await.unwrap(), "{table}");
    }
    let rows: i64 = client.query_one("SELECT count(*) FROM readmodel.sensor_minute", &[]).await.unwrap().get(0);
    assert_eq!(rows, 2, "the recent day keeps what both wrote");
}

#[tokio::test]
async fn a_day_whose_drop_stopped_after_the_detach_is_dropped_by_the_next_run_and_made_again() {
    let url = plant_db_at().await;
    let db = Database::new(&url, 2).unwrap();
    let client = pgcluster::testdb::connect(&url).await.unwrap();
    client.batch_execute("SELECT readmodel.ensure_day_partition('sensor_minute', '2026-03-01')").await.unwrap();
    // A drop that stopped after its detach.
    client
        .batch_execute(
            "ALTER TABLE readmodel.sensor_minute DETACH PARTITION readmodel.sensor_minute_20260301 CONCURRENTLY",
        )
        .await
        .unwrap();
    // While the detached table is there the day cannot be made again.
    let made: bool = client
        .query_one("SELECT readmodel.ensure_day_partition('sensor_minute', '2026-03-01')", &[])
        .await
        .unwrap()
        .get(0);
    assert!(!made);
    // Even a cut-off before that day finishes the drop: the day was old enough then.
    let long_ago = chrono::DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z").unwrap().to_utc();
    assert_eq!(readmodels::expire(&db, long_ago, long_ago).await.unwrap(), ["sensor_minute_20260301"]);
    let made: bool = client
        .query_one("SELECT readmodel.ensure_day_partition('sensor_minute', '2026-03-01')", &[])
        .await
        .unwrap()
        .get(0);
    assert!(made);
    assert_made_as_partition(&url, "readmodel.sensor_minute", "readmodel.sensor_minute_20260301").await.unwrap();
}
