//! A cloud that first starts on a backlog longer than its telemetry retention (a backfill,
//! or the node coming back after the plants' forwarders caught up without it): every
//! reading imported becomes part of its plant's KPIs, day by day, however old it is.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use domain::events::{LAYOUT_CONFIGURED, LayoutConfigured};
use eventlog::{ImportedEvent, Metadata, NewEvent, StreamName};
use layout::Layout;
use telemetry::Reading;

use crate::support::*;

const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 24 * HOUR_MS;

fn at(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap()
}

/// `days` days of one plant as its forwarder ships them: its layout, then each line's
/// sensors read once an hour, in the plant's order. Returns the events and the readings
/// of each day.
fn plant_history(
    plant: u16,
    layout: &Layout,
    start_ms: i64,
    end_ms: i64,
) -> (Vec<ImportedEvent>, BTreeMap<NaiveDate, i64>) {
    let s = scale(3);
    let config = LayoutConfigured {
        plant,
        layout_toml: layout::DEFAULT_LAYOUT_TOML.to_owned(),
        plants: s.plants,
        lines_per_plant: s.lines_per_plant,
        sensors_per_plant: s.sensors_per_plant,
        stale_after_ms: 10_000,
    };
    let mut events = Vec::new();
    let mut versions: BTreeMap<String, u64> = BTreeMap::new();
    let mut push = |stream: String, event: NewEvent, recorded_ms: i64| {
        let version = versions.entry(stream.clone()).or_insert(0);
        *version += 1;
        events.push(ImportedEvent {
            origin_position: events.len() as i64 + 1,
            origin_recorded_at: at(recorded_ms),
            stream: StreamName::new(&stream).unwrap(),
            version: *version,
            idempotency_key: None,
            event,
        });
    };
    let layout_event = NewEvent::json(LAYOUT_CONFIGURED, 1, &config, Metadata::by("plant-node")).unwrap();
    push(format!("plant-P{plant}"), layout_event, start_ms);
    let p = layout.plant_by_number(plant).unwrap();
    let mut per_day: BTreeMap<NaiveDate, i64> = BTreeMap::new();
    let mut hour = start_ms;
    while hour < end_ms {
        let at_ms = hour + 1_800_000;
        for line in &layout.lines()[p.lines.clone()] {
            let readings: Vec<Reading> =
                line.sensor_ids.clone().map(|s| Reading::new(s, at_ms, 20.0 + f64::from(s % 7))).collect();
            *per_day.entry(at(at_ms).date_naive()).or_default() += readings.len() as i64;
            let event =
                NewEvent::readings(&readings, (hour, hour + HOUR_MS), Metadata::from_source("gateway")).unwrap();
            push(format!("readings-{}", line.id), event, at_ms);
        }
        hour += HOUR_MS;
    }
    // One reading past the end moves the plant's clock on, so the last hour is written.
    for line in &layout.lines()[p.lines.clone()] {
        let sensor = line.sensor_ids.start;
        let event = NewEvent::readings(
            &[Reading::new(sensor, end_ms + 60_000, 1.0)],
            (end_ms, end_ms + 60_000),
            Metadata::by("x"),
        )
        .unwrap();
        push(format!("readings-{}", line.id), event, end_ms + 60_000);
    }
    (events, per_day)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backlog_older_than_the_retention_all_reaches_the_kpis_when_the_node_first_starts() {
    let db = cloud_db().await;
    let layout = Layout::default_with(&scale(3)).unwrap();
    // Twelve days, more than the seven of raw telemetry the cloud keeps, starting in the
    // evening: the first day is a few hours long.
    let now = Utc::now().timestamp_millis();
    let end_ms = now - now.rem_euclid(HOUR_MS) - HOUR_MS;
    let start_ms = end_ms - 12 * DAY_MS - 4 * HOUR_MS;
    let mut expected: BTreeMap<(u16, NaiveDate), i64> = BTreeMap::new();
    for plant in 1..=3u16 {
        let (events, per_day) = plant_history(plant, &layout, start_ms, end_ms);
        let mut after = 0;
        for batch in events.chunks(500) {
            after = eventlog::import_and_commit(&db, plant, after, batch).await.unwrap().acknowledged;
        }
        expected.extend(per_day.into_iter().map(|(d, n)| ((plant, d), n)));
    }
    // Every reading is in the cloud's log before the node starts.
    let client = db.client().await.unwrap();
    let mut logged: BTreeMap<(u16, NaiveDate), i64> = BTreeMap::new();
    let mut after = 0;
    loop {
        let events = eventlog::read_all(&client, after, 1_000, None).await.unwrap();
        let Some(last) = events.last() else { break };
        after = last.position;
        for e in events.iter().filter(|e| e.stream.category() == "readings") {
            let plant = e.origin.unwrap().plant;
            for r in e.readings().unwrap().iter().filter(|r| r.ts_ms < end_ms) {
                *logged.entry((plant, at(r.ts_ms).date_naive())).or_default() += 1;
            }
        }
    }
    assert_eq!(logged, expected, "the cloud's log holds every reading imported");
    assert!(expected.keys().filter(|(p, _)| *p == 1).count() >= 13, "twelve days and a few hours");

    let node =
        CloudNode::start_with(&db, 0, cloud::CloudConfig { auth_cache_ms: 0, ..cloud::CloudConfig::default() }).await;
    let head = eventlog::head_position(&client).await.unwrap();
    wait_for("the telemetry projection to read the whole log", Duration::from_secs(300), || {
        let db = db.clone();
        async move {
            let client = db.client().await.unwrap();
            eventlog::read_through(&client, &[cloud::telemetry::TELEMETRY]).await.unwrap().0 >= head
        }
    })
    .await;
    node.stop().await;

    let rows = client
        .query("SELECT plant, day, sum(readings)::bigint FROM cloud.kpi_day GROUP BY plant, day", &[])
        .await
        .unwrap();
    let in_kpis: BTreeMap<(u16, NaiveDate), i64> = rows
        .iter()
        .map(|r| ((r.get::<_, i16>(0) as u16, r.get::<_, DateTime<Utc>>(1).date_naive()), r.get(2)))
        .collect();
    let missing: Vec<String> = expected
        .iter()
        .filter(|(key, n)| in_kpis.get(key) != Some(n))
        .map(|((p, d), n)| format!("plant {p} on {d}: {n} readings, {:?} in the KPIs", in_kpis.get(&(*p, *d))))
        .collect();
    assert!(missing.is_empty(), "{} plant-days differ:\n{}", missing.len(), missing.join("\n"));
}
