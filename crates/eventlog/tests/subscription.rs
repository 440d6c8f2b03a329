//! Subscriptions against a real PostgreSQL: concurrent writers with transactions held
//! open, a subscriber killed and restarted at random, NOTIFY wake-ups.
#![allow(clippy::unwrap_used)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use eventlog::*;
use pgcluster::testdb::TestDb;
use serde_json::json;

async fn log() -> Database {
    let db = TestDb::new().await.unwrap();
    let db = Database::connect_and_migrate(&db.url, 16).await.unwrap();
    db.client()
        .await
        .unwrap()
        .batch_execute(
            "CREATE TABLE seen (seq bigserial PRIMARY KEY, subscriber text NOT NULL, position bigint NOT NULL);
             CREATE TABLE side_effects (v int)",
        )
        .await
        .unwrap();
    db
}

fn event(i: u64) -> NewEvent {
    NewEvent::json("ThingHappened", 1, &json!({ "i": i }), Metadata::default()).unwrap()
}

/// Records every position it applies, in the same transaction as the checkpoint.
struct Recorder {
    name: &'static str,
}

impl Handler for Recorder {
    async fn apply(&mut self, tx: &Transaction<'_>, events: &[RecordedEvent]) -> anyhow::Result<()> {
        let positions: Vec<i64> = events.iter().map(|e| e.position).collect();
        tx.execute(
            "INSERT INTO seen (subscriber, position) SELECT $1, unnest($2::bigint[])",
            &[&self.name, &positions],
        )
        .await?;
        Ok(())
    }
}

struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

async fn seen(db: &Database, subscriber: &str) -> Vec<i64> {
    let client = db.client().await.unwrap();
    client
        .query("SELECT position FROM seen WHERE subscriber = $1 ORDER BY seq", &[&subscriber])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

/// Several writers append concurrently; some hold their transaction open (before and
/// after appending) while others commit, some roll back. A subscriber is aborted at
/// random instants and restarted. It must see every committed event exactly once, in
/// position order, and never an event that was rolled back.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn subscriber_sees_every_committed_event_exactly_once_in_order_across_restarts() {
    let db = log().await;
    let committed = Arc::new(Mutex::new(Vec::<i64>::new()));
    let writers: Vec<_> = (0..6u64)
        .map(|w| {
            let db = db.clone();
            let committed = committed.clone();
            tokio::spawn(async move {
                let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ ((w + 1) * 0x1000_0001));
                for t in 0..60u64 {
                    // Writers pause between transactions so the subscriber is often caught
                    // up: the moment a late commit could be skipped.
                    tokio::time::sleep(Duration::from_millis(rng.below(12))).await;
                    let mut client = db.client().await.unwrap();
                    let tx = client.transaction().await.unwrap();
                    let style = rng.below(10);
                    if style < 3 {
                        // Open, busy with other work, while later transactions commit.
                        tx.execute("INSERT INTO side_effects VALUES (1)", &[]).await.unwrap();
                        tokio::time::sleep(Duration::from_millis(rng.below(25))).await;
                    }
                    let n = 1 + rng.below(3);
                    let stream = StreamName::new(format!("w{w}-{}", t % 5)).unwrap();
                    let appended =
                        append(&tx, &[Append::new(stream, ExpectedVersion::Any, (0..n).map(event).collect())])
                            .await
                            .unwrap();
                    if style >= 8 {
                        // Held open after appending: nothing later may be delivered before it.
                        tokio::time::sleep(Duration::from_millis(rng.below(20))).await;
                    }
                    if style == 7 {
                        tx.rollback().await.unwrap();
                        continue;
                    }
                    tx.commit().await.unwrap();
                    let a = &appended[0];
                    committed.lock().unwrap().extend(a.first_position..=a.last_position);
                }
            })
        })
        .collect();

    let subscription = Subscription::new(db.clone(), SubscriptionConfig::new("recorder").batch_max_events(7));
    let mut rng = Rng(42);
    let mut restarts = 0;
    while !writers.iter().all(|w| w.is_finished()) {
        let sub = subscription.clone();
        let task = tokio::spawn(async move {
            let mut handler = Recorder { name: "recorder" };
            sub.run(&mut handler, std::future::pending()).await
        });
        tokio::time::sleep(Duration::from_millis(30 + rng.below(150))).await;
        task.abort();
        let _ = task.await;
        restarts += 1;
    }
    for w in writers {
        w.await.unwrap();
    }
    let delivered_live = seen(&db, "recorder").await.len();
    subscription.catch_up(&mut Recorder { name: "recorder" }).await.unwrap();

    let mut expected = committed.lock().unwrap().clone();
    expected.sort_unstable();
    let got = seen(&db, "recorder").await;
    assert!(restarts > 3, "the subscriber was restarted only {restarts} times");
    assert!(
        delivered_live > got.len() / 2,
        "only {delivered_live} of {} events were delivered while writers ran",
        got.len()
    );
    assert!(got.windows(2).all(|w| w[0] < w[1]), "out of order or doubled: {got:?}");
    assert_eq!(got, expected, "seen positions differ from committed ones");
}

/// The race in its plainest form: A appends and stays open, B appends and commits, the
/// subscriber reads, then A commits. A's event must still be delivered, before B's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_committed_late_is_not_skipped() {
    let db = log().await;
    let sub = Subscription::new(db.clone(), SubscriptionConfig::new("late"));
    let mut client_a = db.client().await.unwrap();
    let tx_a = client_a.transaction().await.unwrap();
    let a = append(&tx_a, &[Append::new(StreamName::new("a-1").unwrap(), ExpectedVersion::Any, vec![event(1)])])
        .await
        .unwrap();

    let b = tokio::spawn({
        let db = db.clone();
        async move {
            let s = StreamName::new("b-1").unwrap();
            append_and_commit(&db, &[Append::new(s, ExpectedVersion::Any, vec![event(2)])]).await.unwrap()
        }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    sub.catch_up(&mut Recorder { name: "late" }).await.unwrap();
    tx_a.commit().await.unwrap();
    let b = b.await.unwrap();
    sub.catch_up(&mut Recorder { name: "late" }).await.unwrap();

    assert_eq!(seen(&db, "late").await, [a[0].first_position, b[0].first_position]);
}

#[tokio::test]
async fn a_notification_wakes_the_subscriber_without_polling() {
    let db = log().await;
    let mut config = SubscriptionConfig::new("waker");
    config.idle_recheck_ms = 3_600_000; // without NOTIFY it would wait an hour
    let subscription = Subscription::new(db.clone(), config);
    let task =
        tokio::spawn(async move { subscription.run(&mut Recorder { name: "waker" }, std::future::pending()).await });
    // Let it start, read nothing and go to sleep on LISTEN.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let s = StreamName::new("thing-1").unwrap();
    append_and_commit(&db, &[Append::new(s, ExpectedVersion::Any, vec![event(1)])]).await.unwrap();
    let mut waited = Duration::ZERO;
    while seen(&db, "waker").await.is_empty() {
        assert!(waited < Duration::from_secs(30), "no wake-up after a NOTIFY");
        tokio::time::sleep(Duration::from_millis(20)).await;
        waited += Duration::from_millis(20);
    }
    task.abort();
}

#[tokio::test]
async fn a_filtered_subscriber_moves_past_events_of_other_categories() {
    let db = log().await;
    for i in 0..5 {
        let s = StreamName::new(format!("other-{i}")).unwrap();
        append_and_commit(&db, &[Append::new(s, ExpectedVersion::Any, vec![event(i)])]).await.unwrap();
    }
    let wanted = StreamName::new("wanted-1").unwrap();
    append_and_commit(&db, &[Append::new(wanted, ExpectedVersion::Any, vec![event(9)])]).await.unwrap();
    append_and_commit(&db, &[Append::new(StreamName::new("other-9").unwrap(), ExpectedVersion::Any, vec![event(9)])])
        .await
        .unwrap();
    let sub = Subscription::new(db.clone(), SubscriptionConfig::new("filtered").categories(&["wanted"]));
    let checkpoint = sub.catch_up(&mut Recorder { name: "filtered" }).await.unwrap();
    assert_eq!(seen(&db, "filtered").await, [6]);
    assert_eq!(checkpoint, 7, "the checkpoint reaches the head, not just the last wanted event");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_of_one_subscriber_never_apply_an_event_twice() {
    let db = log().await;
    for i in 0..300u64 {
        let s = StreamName::new(format!("thing-{}", i % 7)).unwrap();
        append_and_commit(&db, &[Append::new(s, ExpectedVersion::Any, vec![event(i)])]).await.unwrap();
    }
    let sub = Subscription::new(db.clone(), SubscriptionConfig::new("twin").batch_max_events(3));
    let a = tokio::spawn({
        let sub = sub.clone();
        async move { sub.catch_up(&mut Recorder { name: "twin" }).await.unwrap() }
    });
    let b = tokio::spawn({
        let sub = sub.clone();
        async move { sub.catch_up(&mut Recorder { name: "twin" }).await.unwrap() }
    });
    a.await.unwrap();
    b.await.unwrap();
    assert_eq!(seen(&db, "twin").await, (1..=300).collect::<Vec<i64>>());
}

/// Keeps the last two events it saw "in memory" only: its durable checkpoint lags.
struct Lagging {
    seen: Vec<i64>,
    loads: usize,
}

impl Handler for Lagging {
    async fn load(&mut self, _tx: &Transaction<'_>) -> anyhow::Result<()> {
        self.loads += 1;
        Ok(())
    }

    async fn apply(&mut self, _tx: &Transaction<'_>, events: &[RecordedEvent]) -> anyhow::Result<()> {
        self.seen.extend(events.iter().map(|e| e.position));
        Ok(())
    }

    fn durable_position(&self, last: i64) -> i64 {
        last - 2
    }
}

#[tokio::test]
async fn a_handler_that_keeps_effects_in_memory_gets_them_again_after_a_restart() {
    let db = log().await;
    for i in 0..10u64 {
        append_and_commit(
            &db,
            &[Append::new(StreamName::new("thing-1").unwrap(), ExpectedVersion::Any, vec![event(i)])],
        )
        .await
        .unwrap();
    }
    let sub = Subscription::new(db.clone(), SubscriptionConfig::new("lagging").batch_max_events(4));
    let mut first = Lagging { seen: vec![], loads: 0 };
    sub.catch_up(&mut first).await.unwrap();
    assert_eq!(first.seen, (1..=10).collect::<Vec<i64>>(), "one run reads each event once");
    assert_eq!(first.loads, 1);
    assert_eq!(sub.checkpoint().await.unwrap(), 8);

    // A new instance (a restart) starts from the durable checkpoint.
    let mut second = Lagging { seen: vec![], loads: 0 };
    sub.catch_up(&mut second).await.unwrap();
    assert_eq!(second.seen, [9, 10]);

    // Someone else moves the checkpoint (a rebuild): the running handler reloads.
    let mut client = db.client().await.unwrap();
    let mut cursor = None;
    let mut third = Lagging { seen: vec![], loads: 0 };
    sub.apply_next_batch(&mut client, &mut third, &mut cursor).await.unwrap();
    client.execute("UPDATE eventlog.checkpoints SET position = 0 WHERE subscriber = 'lagging'", &[]).await.unwrap();
    sub.apply_next_batch(&mut client, &mut third, &mut cursor).await.unwrap();
    assert_eq!(third.loads, 2);
    assert_eq!(third.seen, [9, 10, 1, 2, 3, 4]);
}

/// Its stored state cannot be loaded (`broken`); it can fall back to position `fallback`
/// (`None`: it cannot recover at all).
struct Damaged {
    broken: bool,
    fallback: Option<i64>,
    recovered_from: Vec<i64>,
    seen: Vec<i64>,
}

impl Handler for Damaged {
    async fn load(&mut self, _tx: &Transaction<'_>) -> anyhow::Result<()> {
        if self.broken {
            return Err(anyhow::Error::new(Unloadable("holds infinity".into())).context("loading the snapshot"));
        }
        Ok(())
    }

    async fn recover(&mut self, _tx: &Transaction<'_>, stored: i64, reason: &str) -> anyhow::Result<Option<i64>> {
        assert!(reason.contains("holds infinity"), "{reason}");
        self.recovered_from.push(stored);
        self.broken = false;
        Ok(self.fallback)
    }

    async fn apply(&mut self, _tx: &Transaction<'_>, events: &[RecordedEvent]) -> anyhow::Result<()> {
        self.seen.extend(events.iter().map(|e| e.position));
        Ok(())
    }
}

#[tokio::test]
async fn a_handler_whose_state_cannot_be_loaded_falls_back_and_reads_again_from_there_instead_of_failing_forever() {
    let db = log().await;
    for i in 0..10u64 {
        append_and_commit(
            &db,
            &[Append::new(StreamName::new("thing-1").unwrap(), ExpectedVersion::Any, vec![event(i)])],
        )
        .await
        .unwrap();
    }
    let sub = Subscription::new(db.clone(), SubscriptionConfig::new("damaged").batch_max_events(100));
    sub.catch_up(&mut Damaged { broken: false, fallback: None, recovered_from: vec![], seen: vec![] }).await.unwrap();
    assert_eq!(sub.checkpoint().await.unwrap(), 10);

    // Falls back to an older state at 6: reads 7..=10 again and stores where it got to.
    let mut older = Damaged { broken: true, fallback: Some(6), recovered_from: vec![], seen: vec![] };
    sub.catch_up(&mut older).await.unwrap();
    assert_eq!(older.recovered_from, [10]);
    assert_eq!(older.seen, [7, 8, 9, 10]);
    assert_eq!(sub.checkpoint().await.unwrap(), 10);

    // No state at all: the whole log again.
    let mut nothing = Damaged { broken: true, fallback: Some(0), recovered_from: vec![], seen: vec![] };
    sub.catch_up(&mut nothing).await.unwrap();
    assert_eq!(nothing.seen, (1..=10).collect::<Vec<i64>>());

    // A handler that cannot fall back keeps failing (and is retried), as before.
    let mut stuck = Damaged { broken: true, fallback: None, recovered_from: vec![], seen: vec![] };
    assert!(sub.catch_up(&mut stuck).await.is_err());
    assert!(stuck.seen.is_empty());
}

/// Records the size of every batch it applies.
struct Batches(Arc<Mutex<Vec<Vec<i64>>>>);

impl Handler for Batches {
    async fn apply(&mut self, _tx: &Transaction<'_>, events: &[RecordedEvent]) -> anyhow::Result<()> {
        self.0.lock().unwrap().push(events.iter().map(|e| e.position).collect());
        Ok(())
    }
}

#[tokio::test]
async fn batches_are_bounded_by_their_readings_and_the_next_follows_at_once() {
    let db = log().await;
    let stream = StreamName::new("readings-P1-L01").unwrap();
    let at = chrono::Utc::now();
    ensure_partitions(&db, &[at.date_naive()]).await.unwrap();
    // Batches of 40 readings, a domain event after every third, and one batch of 500.
    // Positions: 1–3 telemetry, 4 domain, 5–7 telemetry, 8 domain, 9 the large batch,
    // 10–11 telemetry, 12 domain, 13–15 telemetry, 16 domain.
    let mut appends = Vec::new();
    for i in 0..12u32 {
        let readings: Vec<telemetry::Reading> = (0..if i == 6 { 500 } else { 40 })
            .map(|s| telemetry::Reading::new(s, at.timestamp_millis(), 1.0))
            .collect();
        let ms = at.timestamp_millis();
        let batch = NewEvent::readings(&readings, (ms - 1, ms + 1), Metadata::default()).unwrap();
        appends.push(Append::new(stream.clone(), ExpectedVersion::Any, vec![batch]));
        if i % 3 == 2 {
            appends.push(Append::new(
                StreamName::new("thing-1").unwrap(),
                ExpectedVersion::Any,
                vec![event(u64::from(i))],
            ));
        }
    }
    append_and_commit(&db, &appends).await.unwrap();

    let batches = Arc::new(Mutex::new(Vec::new()));
    let sub = Subscription::new(
        db.clone(),
        SubscriptionConfig {
            idle_recheck_ms: 60_000,
            ..SubscriptionConfig::new("bounded").batch_max_events(100).batch_max_readings(100)
        },
    );
    // Run, not catch up: a batch cut by its readings must not wait for a notification
    // (none comes) before the next.
    let task = {
        let (sub, batches) = (sub.clone(), batches.clone());
        tokio::spawn(async move { sub.run(&mut Batches(batches), std::future::pending()).await })
    };
    let everything: Vec<i64> = (1..=16).collect();
    for _ in 0..200 {
        if batches.lock().unwrap().concat() == everything {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    task.abort();
    let batches = batches.lock().unwrap().clone();
    assert_eq!(batches.concat(), everything, "every event once, in order: {batches:?}");
    // Three batches of 40 reach the bound of 100; the batch of 500 ends its batch at
    // once; the rest is below the bound.
    assert_eq!(
        batches,
        vec![vec![1, 2, 3], vec![4, 5, 6, 7], vec![8, 9], vec![10, 11, 12, 13], vec![14, 15, 16]],
        "{batches:?}"
    );
    assert_eq!(sub.checkpoint().await.unwrap(), 16);
}
