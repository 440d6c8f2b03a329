//! Importing a plant's events into another log (the cloud's) against a real PostgreSQL:
//! stored once, in order, stamped; overlaps skipped, gaps refused.
#![allow(clippy::unwrap_used)]

use chrono::{DateTime, TimeZone, Utc};
use eventlog::*;
use pgcluster::testdb::TestDb;
use serde_json::json;
use telemetry::Reading;

async fn log() -> Database {
    let db = TestDb::new().await.unwrap();
    Database::connect_and_migrate(&db.url, 8).await.unwrap()
}

fn at(s: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_772_366_400 + s, 0).unwrap()
}

/// The plant's event at `position`: odd positions are telemetry batches, even ones notes.
fn plant_event(position: i64) -> ImportedEvent {
    let event = if position % 2 == 1 {
        let ms = at(position).timestamp_millis();
        let readings = [Reading::new(1_000_001, ms, position as f64), Reading::new(1_000_002, ms, 0.5)];
        NewEvent::readings(&readings, (ms - 1, ms + 1), Metadata::from_source("gateway:P1-L01")).unwrap()
    } else {
        NewEvent::json("NoteAdded", 1, &json!({ "n": position }), Metadata::by("alice")).unwrap()
    };
    let stream = if position % 2 == 1 { "readings-P1-L01" } else { "anomaly-P1.7" };
    ImportedEvent {
        origin_position: position,
        origin_recorded_at: at(position),
        stream: StreamName::new(stream).unwrap(),
        version: position as u64,
        idempotency_key: Some(format!("P1-L01:{position}")),
        event,
    }
}

fn batch(positions: std::ops::RangeInclusive<i64>) -> Vec<ImportedEvent> {
    positions.map(plant_event).collect()
}

#[tokio::test]
async fn batches_that_continue_are_stored_once_in_order_with_their_plant_stamp() {
    let db = log().await;
    let first = import_and_commit(&db, 1, 0, &batch(1..=4)).await.unwrap();
    assert_eq!((first.acknowledged, first.stored, first.already_stored, first.position), (4, 4, 0, 4));
    // A local event in between: the log's own order goes on.
    let note = NewEvent::json("ModelRegistered", 1, &json!({}), Metadata::by("cloud")).unwrap();
    append_and_commit(&db, &[Append::new(StreamName::new("model-x").unwrap(), ExpectedVersion::Any, vec![note])])
        .await
        .unwrap();
    // Another plant with the same stream names and versions does not clash.
    let other = import_and_commit(&db, 2, 0, &batch(1..=2)).await.unwrap();
    assert_eq!((other.acknowledged, other.position), (2, 7));
    // A retry overlapping what is stored keeps only the new events.
    let retry = import_and_commit(&db, 1, 2, &batch(3..=6)).await.unwrap();
    assert_eq!((retry.acknowledged, retry.stored, retry.already_stored, retry.position), (6, 2, 2, 9));
    let again = import_and_commit(&db, 1, 0, &batch(1..=6)).await.unwrap();
    assert_eq!((again.stored, again.already_stored, again.acknowledged, again.position), (0, 6, 6, 9));

    let client = db.client().await.unwrap();
    let all = read_all(&client, 0, 100, None).await.unwrap();
    let stamps: Vec<(i64, Option<(u16, i64)>)> =
        all.iter().map(|e| (e.position, e.origin.map(|o| (o.plant, o.position)))).collect();
    assert_eq!(
        stamps,
        vec![
            (1, Some((1, 1))),
            (2, Some((1, 2))),
            (3, Some((1, 3))),
            (4, Some((1, 4))),
            (5, None),
            (6, Some((2, 1))),
            (7, Some((2, 2))),
            (8, Some((1, 5))),
            (9, Some((1, 6))),
        ]
    );
    // Bodies arrive unchanged: telemetry stays binary, JSON stays JSON.
    assert_eq!(
        all[0].readings().unwrap(),
        vec![
            Reading::new(1_000_001, at(1).timestamp_millis(), 1.0),
            Reading::new(1_000_002, at(1).timestamp_millis(), 0.5)
        ]
    );
    assert_eq!(all[1].json::<serde_json::Value>().unwrap(), json!({ "n": 2 }));
    assert_eq!(all[1].metadata.actor.as_deref(), Some("alice"));
    assert_eq!(all[0].origin.unwrap().recorded_at, at(1));
    let p1 = origin_position(&client, 1).await.unwrap();
    assert_eq!((p1.acknowledged, p1.position, p1.recorded_at), (6, 9, Some(at(6))));
    assert_eq!(origin_position(&client, 3).await.unwrap().acknowledged, 0);
    assert_eq!(origins(&client).await.unwrap().len(), 2);
    // The log's own streams are read by version without the plants' copies.
    let own = read_stream(&client, &StreamName::new("anomaly-P1.7").unwrap(), 0, 10).await.unwrap();
    assert!(own.is_empty());
}

#[tokio::test]
async fn a_batch_that_would_leave_a_gap_or_is_out_of_order_is_refused_and_stores_nothing() {
    let db = log().await;
    import_and_commit(&db, 1, 0, &batch(1..=2)).await.unwrap();
    let err = import_and_commit(&db, 1, 3, &batch(4..=5)).await.unwrap_err();
    assert!(matches!(err, ImportError::Gap { origin: 1, after: 3, acknowledged: 2 }), "{err}");
    assert!(!err.is_transient());
    let mut backwards = batch(3..=5);
    backwards.swap(0, 2);
    assert!(matches!(import_and_commit(&db, 1, 2, &backwards).await, Err(ImportError::Order { index: 1, .. })));
    assert!(matches!(import_and_commit(&db, 1, 3, &batch(3..=4)).await, Err(ImportError::Order { index: 0, .. })));
    assert!(matches!(import_and_commit(&db, 0, 0, &batch(1..=1)).await, Err(ImportError::Origin(0))));
    let mut bad_key = batch(3..=3);
    bad_key[0].idempotency_key = Some("has space".into());
    assert!(matches!(import_and_commit(&db, 1, 2, &bad_key).await, Err(ImportError::Invalid(_))));
    let client = db.client().await.unwrap();
    assert_eq!(head_position(&client).await.unwrap(), 2);
    assert_eq!(origin_position(&client, 1).await.unwrap().acknowledged, 2);
}

#[tokio::test]
async fn the_database_itself_refuses_a_second_copy_of_a_plant_event() {
    let db = log().await;
    import_and_commit(&db, 1, 0, &batch(1..=2)).await.unwrap();
    let client = db.client().await.unwrap();
    let err = client
        .execute(
            "INSERT INTO eventlog.events (position, stream, version, type, schema_version, payload, metadata, origin, origin_position, origin_recorded_at)
             VALUES (99, 'anomaly-P1.7', 99, 'NoteAdded', 1, '{}', '{}', 1, 2, now())",
            &[],
        )
        .await
        .unwrap_err();
    assert_eq!(err.code().map(|c| c.code()), Some("23505"), "{err}");
}

#[tokio::test]
async fn a_day_retention_drops_while_an_import_waits_is_made_again_and_the_batch_stored() {
    // A plant catching up sends a day older than this log keeps (2026-03-01).
    let db = log().await;
    import_and_commit(&db, 1, 0, &batch(2..=2)).await.unwrap();
    // Another import of the same plant holds its origin row: the next one creates its
    // day's partition, then waits for that row before its check under the head.
    let mut holder = db.client().await.unwrap();
    let holding = holder.transaction().await.unwrap();
    holding.query_one("SELECT 1 FROM eventlog.origins WHERE origin = 1 FOR UPDATE", &[]).await.unwrap();
    let importing = tokio::spawn({
        let db = db.clone();
        async move { import_and_commit(&db, 1, 2, &batch(3..=3)).await }
    });
    let watcher = db.client().await.unwrap();
    tokio::time::timeout(std::time::Duration::from_secs(30), async {
        loop {
            let waiting: bool = watcher
                .query_one(
                    "SELECT to_regclass('eventlog.telemetry_20260301') IS NOT NULL
                        AND EXISTS (SELECT 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock'
                                     AND datname = current_database())",
                    &[],
                )
                .await
                .unwrap()
                .get(0);
            if waiting {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the import creates its partition and waits for the plant's row");
    // Retention runs now: the day is past the cutoff and still empty.
    let report = tokio::time::timeout(std::time::Duration::from_secs(30), expire_telemetry(&db, Utc::now()))
        .await
        .expect("retention does not wait for the import")
        .unwrap();
    assert_eq!(report.dropped, ["telemetry_20260301"]);
    holding.commit().await.unwrap();

    let imported = importing.await.unwrap().expect("the import makes the day again and stores the batch");
    assert_eq!((imported.acknowledged, imported.stored), (3, 1));
    let client = db.client().await.unwrap();
    let all = read_all(&client, 0, 10, None).await.unwrap();
    assert_eq!(all.iter().map(|e| e.origin.map(|o| o.position)).collect::<Vec<_>>(), [Some(2), Some(3)]);
}
