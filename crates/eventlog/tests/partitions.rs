//! A new day's telemetry partition while a reader of the log is in the middle of a batch,
//! against a real PostgreSQL: the partition is created and attached beside the reader's
//! open transaction without waiting for it, readers of the log do not wait either, and
//! the write that needed it completes while the reader's batch is still open (a consumer
//! that appends in its batch then takes the head after it). Every event is then read
//! once, in order, with no gap. Two creators of the same day create it once.
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
