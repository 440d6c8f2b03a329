//! A new day's telemetry partition while a reader of the log is in the middle of a batch,
//! against a real PostgreSQL: the partition is created and attached beside the reader's
//! open transaction without waiting for it, readers of the log do not wait either, and
//! the write that needed it completes while the reader's batch is still open (a consumer
//! that appends in its batch then takes the head after it). Every event is then read
//! once, in order, with no gap. Two creators of the same day create it once. An old day
//! is dropped beside an open batch without anybody waiting for the drop, and a drop that
//! stopped half-way is finished by the next run.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use eventlog::*;
use pgcluster::testdb::TestDb;
use serde_json::json;
use telemetry::Reading;

/// Generous: this checks that the write finishes at all, not how fast.
const LIVENESS: Duration = Duration::from_secs(20);

async fn log() -> Database {
    log_at().await.1
}

/// The log and its URL, for checks on connections of their own.
async fn log_at() -> (String, Database) {
    let db = TestDb::new().await.unwrap();
    let log = Database::connect_and_migrate(&db.url, 8).await.unwrap();
    (db.url, log)
}

fn day(d: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_772_366_400 + d * 86_400 + 3_600, 0).unwrap()
}

fn readings_at(t: DateTime<Utc>, value: f64) -> NewEvent {
    let ms = t.timestamp_millis();
    NewEvent::readings(&[Reading::new(1_000_001, ms, value)], (ms - 1, ms + 1), Metadata::from_source("gateway:P1-L01"))
        .unwrap()
}

fn note(n: i64) -> NewEvent {
    NewEvent::json("NoteAdded", 1, &json!({ "n": n }), Metadata::by("alice")).unwrap()
}

/// The plant's event at `position`: odd positions are telemetry batches on day `day(d)`,
/// even ones notes.
fn plant_event(position: i64, d: i64) -> ImportedEvent {
    let (stream, event) = if position % 2 == 1 {
        ("readings-P1-L01", readings_at(day(d), position as f64))
    } else {
        ("anomaly-P1.7", note(position))
    };
    ImportedEvent {
        origin_position: position,
        origin_recorded_at: day(d),
        stream: StreamName::new(stream).unwrap(),
        version: position as u64,
        idempotency_key: Some(format!("P1-L01:{position}")),
        event,
    }
}

/// A consumer's batch: reads the log (telemetry included), then appends what it
/// concluded, in the same transaction, once `go` says so.
async fn reader_batch(db: Database, read: tokio::sync::oneshot::Sender<()>, go: tokio::sync::oneshot::Receiver<()>) {
    let mut client = db.client().await.unwrap();
    let tx = client.transaction().await.unwrap();
    read_all(&tx, 0, 100, None).await.unwrap();
    read.send(()).unwrap();
    go.await.unwrap();
    append(&tx, &[Append::new(StreamName::new("anomaly-P1.9").unwrap(), ExpectedVersion::Any, vec![note(-1)])])
        .await
        .unwrap();
    tx.commit().await.unwrap();
}

/// Every event of the log, read the way a subscriber reads it.
async fn everything(db: &Database) -> Vec<RecordedEvent> {
    let client = db.client().await.unwrap();
    read_all(&client, 0, 1_000, None).await.unwrap()
}

#[tokio::test]
async fn an_import_that_needs_a_new_day_partition_completes_while_a_consumer_reads_and_appends() {
    let db = log().await;
    import_and_commit(&db, 1, 0, &[plant_event(1, 0), plant_event(2, 0)]).await.unwrap();

    let (read_tx, read_rx) = tokio::sync::oneshot::channel();
    let (go_tx, go_rx) = tokio::sync::oneshot::channel();
    let reader = tokio::spawn(reader_batch(db.clone(), read_tx, go_rx));
    read_rx.await.unwrap();

    // Day 2 has no partition yet.
    let importing = {
        let db = db.clone();
        tokio::spawn(async move {
            tokio::time::timeout(LIVENESS, import_and_commit(&db, 1, 2, &[plant_event(3, 2), plant_event(4, 2)])).await
        })
    };
    let imported = importing.await.unwrap().expect("the import stalled behind the reader").unwrap();
    go_tx.send(()).unwrap();
    assert_eq!((imported.acknowledged, imported.stored), (4, 2));
    tokio::time::timeout(LIVENESS, reader).await.expect("the reader stalled").unwrap();

    let events = everything(&db).await;
    let positions: Vec<i64> = events.iter().map(|e| e.position).collect();
    assert_eq!(positions, (1..=5).collect::<Vec<_>>(), "every position once, none skipped");
    let plant: Vec<i64> = events.iter().filter_map(|e| e.origin.map(|o| o.position)).collect();
    assert_eq!(plant, vec![1, 2, 3, 4], "the plant's events once each, in its order");
    let day2 = events.iter().find(|e| e.origin.is_some_and(|o| o.position == 3)).unwrap();
    assert_eq!(day2.readings().unwrap()[0].value, 3.0);
    let client = db.client().await.unwrap();
    assert_eq!(head_position(&client).await.unwrap(), 5);
    assert_eq!(origin_position(&client, 1).await.unwrap().acknowledged, 4);
}

#[tokio::test]
async fn an_append_that_needs_a_new_day_partition_completes_while_a_consumer_reads_and_appends() {
    let db = log().await;
    let readings = StreamName::new("readings-P1-L01").unwrap();
    append_and_commit(&db, &[Append::new(readings.clone(), ExpectedVersion::Any, vec![readings_at(day(0), 1.0)])])
        .await
        .unwrap();

    let (read_tx, read_rx) = tokio::sync::oneshot::channel();
    let (go_tx, go_rx) = tokio::sync::oneshot::channel();
    let reader = tokio::spawn(reader_batch(db.clone(), read_tx, go_rx));
    read_rx.await.unwrap();

    let appending = {
        let db = db.clone();
        let a = Append::new(readings, ExpectedVersion::Any, vec![readings_at(day(3), 2.0)]).idempotent("P1-L01:2");
        tokio::spawn(async move { tokio::time::timeout(LIVENESS, append_and_commit(&db, &[a])).await })
    };
    let appended = appending.await.unwrap().expect("the append stalled behind the reader").unwrap();
    go_tx.send(()).unwrap();
    assert_eq!(appended[0].first_version, 2);
    tokio::time::timeout(LIVENESS, reader).await.expect("the reader stalled").unwrap();

    let events = everything(&db).await;
    let positions: Vec<i64> = events.iter().map(|e| e.position).collect();
    assert_eq!(positions, vec![1, 2, 3], "every position once, none skipped");
    let values: Vec<f64> = events.iter().flat_map(|e| e.readings().unwrap()).map(|r| r.value).collect::<Vec<_>>();
    assert_eq!(values, vec![1.0, 2.0]);
}

#[tokio::test]
async fn a_write_in_the_callers_transaction_never_creates_a_partition_under_the_head() {
    let db = log().await;
    let readings = StreamName::new("readings-P1-L01").unwrap();
    let mut client = db.client().await.unwrap();

    let tx = client.transaction().await.unwrap();
    let err = append(&tx, &[Append::new(readings.clone(), ExpectedVersion::Any, vec![readings_at(day(5), 1.0)])])
        .await
        .unwrap_err();
    assert!(matches!(&err, AppendError::MissingPartitions(days) if *days == vec![day(5).date_naive()]), "{err}");
    assert!(err.is_retryable());
    tx.rollback().await.unwrap();

    let tx = client.transaction().await.unwrap();
    let err = import(&tx, 1, 0, &[plant_event(1, 6)]).await.unwrap_err();
    assert!(matches!(&err, ImportError::MissingPartitions(days) if *days == vec![day(6).date_naive()]), "{err}");
    assert!(err.is_transient());
    tx.rollback().await.unwrap();

    // Created first, the same writes go through.
    ensure_partitions(&db, &[day(5).date_naive(), day(6).date_naive()]).await.unwrap();
    let tx = client.transaction().await.unwrap();
    append(&tx, &[Append::new(readings, ExpectedVersion::Any, vec![readings_at(day(5), 1.0)])]).await.unwrap();
    import(&tx, 1, 0, &[plant_event(1, 6)]).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(everything(&db).await.iter().map(|e| e.position).collect::<Vec<_>>(), vec![1, 2]);
}

#[tokio::test]
async fn a_day_partition_is_created_and_the_log_read_beside_an_open_batch() {
    let (url, db) = log_at().await;
    import_and_commit(&db, 1, 0, &[plant_event(1, 0), plant_event(2, 0)]).await.unwrap();
    let created = pgcluster::partitions::create_beside_open_transaction(
        &url,
        &[
            "SELECT count(*) FROM eventlog.all_events",
            "SELECT count(*) FROM eventlog.telemetry WHERE category = 'readings'",
        ],
        "SELECT eventlog.ensure_telemetry_partition('2026-03-10')",
        "SELECT count(*) FROM eventlog.all_events",
    )
    .await
    .unwrap();
    assert!(created);
    pgcluster::partitions::assert_made_as_partition(&url, "eventlog.telemetry", "eventlog.telemetry_20260310")
        .await
        .unwrap();

    // The attached day takes events, and readers find them.
    let at = Utc.with_ymd_and_hms(2026, 3, 10, 12, 0, 0).unwrap();
    let readings = StreamName::new("readings-P1-L01").unwrap();
    append_and_commit(&db, &[Append::new(readings, ExpectedVersion::Any, vec![readings_at(at, 7.0)])]).await.unwrap();
    let events = everything(&db).await;
    assert_eq!(events.iter().map(|e| e.position).collect::<Vec<_>>(), vec![1, 2, 3]);
    assert_eq!(events[2].readings().unwrap()[0].value, 7.0);
}

#[tokio::test]
async fn two_creators_of_the_same_day_create_it_once() {
    let (url, _db) = log_at().await;
    let created =
        pgcluster::partitions::create_same_day_twice(&url, "SELECT eventlog.ensure_telemetry_partition('2026-03-11')")
            .await
            .unwrap();
    assert_eq!(created, (true, false), "the first creates the day, the second finds it");
    pgcluster::partitions::assert_made_as_partition(&url, "eventlog.telemetry", "eventlog.telemetry_20260311")
        .await
        .unwrap();
}

/// A raw telemetry row of day `d` at `position`, written straight into the parent (no
/// head: the holder and the writers beside the drop must not queue on it, only on the
/// table's locks); a second write of it changes nothing.
fn raw_write(position: i64, d: i64) -> String {
    format!(
        "INSERT INTO eventlog.telemetry (position, stream, version, type, schema_version, payload, metadata, occurred_at)
         VALUES ({position}, 'readings-P9-L01', {position}, 'ReadingsRecorded', 1, '\\x00', '{{}}', '{}')
         ON CONFLICT DO NOTHING",
        day(d).to_rfc3339()
    )
}

#[tokio::test]
async fn an_old_day_is_dropped_while_a_batch_holds_the_log_open_and_nobody_waits_for_the_drop() {
    let (url, db) = log_at().await;
    import_and_commit(&db, 1, 0, &[plant_event(1, 0), plant_event(2, 0), plant_event(3, 20), plant_event(4, 20)])
        .await
        .unwrap();
    let hold =
        ["SELECT count(*) FROM eventlog.all_events", "SELECT count(*) FROM eventlog.telemetry", &raw_write(1_001, 20)];
    let beside = [
        "SELECT count(*) FROM eventlog.all_events",
        "SELECT count(*) FROM eventlog.telemetry WHERE category = 'readings'",
        &raw_write(1_002, 20),
    ];
    let report = {
        let db = db.clone();
        pgcluster::partitions::drop_beside_open_transaction(
            &url,
            &hold,
            async move { expire_telemetry(&db, day(10)).await },
            &beside,
        )
        .await
        .unwrap()
    };
    assert_eq!(report.dropped, ["telemetry_20260301"]);
    assert!(report.held_back.is_empty());
    assert!(!pgcluster::partitions::table_exists(&url, "eventlog.telemetry_20260301").await.unwrap());
    let client = db.client().await.unwrap();
    let retiring: i64 = client.query_one("SELECT count(*) FROM eventlog.retiring_days", &[]).await.unwrap().get(0);
    assert_eq!(retiring, 0, "a finished drop leaves no mark");
    let plant: Vec<i64> = everything(&db).await.iter().filter_map(|e| e.origin.map(|o| o.position)).collect();
    assert_eq!(plant, vec![2, 3, 4], "the recent day and every domain event stay");
}

#[tokio::test]
async fn a_drop_stopped_after_its_detach_is_finished_by_the_next_run_and_writers_wait_for_it() {
    let (url, db) = log_at().await;
    import_and_commit(&db, 1, 0, &[plant_event(1, 0), plant_event(2, 0), plant_event(3, 20)]).await.unwrap();
    // Retention checked day 0 and marked it, detached it, and stopped before the drop.
    let admin = pgcluster::testdb::connect(&url).await.unwrap();
    admin.batch_execute("INSERT INTO eventlog.retiring_days (day) VALUES ('2026-03-01')").await.unwrap();
    admin
        .batch_execute("ALTER TABLE eventlog.telemetry DETACH PARTITION eventlog.telemetry_20260301 CONCURRENTLY")
        .await
        .unwrap();

    // Meanwhile nothing is written into the day: writers take it as missing, a retryable
    // error (an import is answered 503 and retried).
    let late = [plant_event(4, 20), plant_event(5, 0)];
    let err = import_and_commit(&db, 1, 3, &late).await.unwrap_err();
    assert!(matches!(&err, ImportError::MissingPartitions(days) if *days == vec![day(0).date_naive()]), "{err}");
    assert!(err.is_transient());

    let report = expire_telemetry(&db, day(10)).await.unwrap();
    assert_eq!(report.dropped, ["telemetry_20260301"]);
    assert!(!pgcluster::partitions::table_exists(&url, "eventlog.telemetry_20260301").await.unwrap());
    let retiring: i64 = admin.query_one("SELECT count(*) FROM eventlog.retiring_days", &[]).await.unwrap().get(0);
    assert_eq!(retiring, 0);

    // The day is gone for good: the retried import makes it anew and lands.
    let imported = import_and_commit(&db, 1, 3, &late).await.unwrap();
    assert_eq!(imported.acknowledged, 5);
    let plant: Vec<i64> = everything(&db).await.iter().filter_map(|e| e.origin.map(|o| o.position)).collect();
    assert_eq!(plant, vec![2, 3, 4, 5]);
}

#[tokio::test]
async fn a_detach_interrupted_half_way_is_finalized_and_dropped_by_the_next_run() {
    let (url, db) = log_at().await;
    import_and_commit(&db, 1, 0, &[plant_event(1, 0), plant_event(2, 0), plant_event(3, 20)]).await.unwrap();
    // A reader holds the log open; the concurrent detach gives up waiting for it (as a
    // detach does when its process dies or its statement is cancelled) and leaves the
    // partition pending detach.
    let reader = pgcluster::testdb::connect(&url).await.unwrap();
    reader.batch_execute("BEGIN; SELECT count(*) FROM eventlog.telemetry").await.unwrap();
    let admin = pgcluster::testdb::connect(&url).await.unwrap();
    admin.batch_execute("SET lock_timeout = '200ms'").await.unwrap();
    admin
        .batch_execute("ALTER TABLE eventlog.telemetry DETACH PARTITION eventlog.telemetry_20260301 CONCURRENTLY")
        .await
        .unwrap_err();
    reader.batch_execute("COMMIT").await.unwrap();
    let tables = day_tables(&db.client().await.unwrap(), "eventlog.telemetry").await.unwrap();
    assert_eq!(tables[0], DayTable { name: "telemetry_20260301".into(), state: DayTableState::DetachPending });

    let report = expire_telemetry(&db, day(10)).await.unwrap();
    assert_eq!(report.dropped, ["telemetry_20260301"]);
    assert!(!pgcluster::partitions::table_exists(&url, "eventlog.telemetry_20260301").await.unwrap());
    let tables = day_tables(&db.client().await.unwrap(), "eventlog.telemetry").await.unwrap();
    assert!(tables.iter().all(|t| t.state == DayTableState::Attached), "{tables:?}");
    let plant: Vec<i64> = everything(&db).await.iter().filter_map(|e| e.origin.map(|o| o.position)).collect();
    assert_eq!(plant, vec![2, 3]);
}
