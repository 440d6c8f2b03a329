//! Retention of telemetry batches: one partition per day of the readings' time,
//! created ahead of need and dropped whole once older than the window.

use anyhow::Context;
use chrono::{DateTime, Duration, NaiveDate, Utc};
use deadpool_postgres::GenericClient;

use crate::db::Database;

/// One partition of a partitioned table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Partition {
    /// The table's name (without its schema).
    pub name: String,
    /// Space it takes, indexes included.
    pub bytes: i64,
}

/// The partitions of `parent` (a schema-qualified partitioned table, the log's or a read
/// model's), in name order: day partitions end in their day, so oldest first.
pub async fn partitions(client: &impl GenericClient, parent: &str) -> anyhow::Result<Vec<Partition>> {
    let stmt = client.prepare_cached(include_str!("../sql/partitions.sql")).await?;
    Ok(client.query(&stmt, &[&parent]).await?.iter().map(|r| Partition { name: r.get(0), bytes: r.get(1) }).collect())
}

/// Disk space the log's telemetry takes, indexes included.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TelemetryStorage {
    /// Every day partition of the batches.
    pub batch_bytes: i64,
    /// The idempotency keys (mostly those of batches).
    pub idempotency_key_bytes: i64,
}

pub async fn telemetry_storage(client: &impl GenericClient) -> anyhow::Result<TelemetryStorage> {
    let batch_bytes = partitions(client, "eventlog.telemetry").await?.iter().map(|p| p.bytes).sum();
    let stmt = client.prepare_cached(include_str!("../sql/idempotency_key_bytes.sql")).await?;
    let idempotency_key_bytes = client.query_one(&stmt, &[]).await?.get(0);
    Ok(TelemetryStorage { batch_bytes, idempotency_key_bytes })
}

/// What one expiry run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RetentionReport {
    pub dropped: Vec<String>,
    /// Partitions old enough to drop that a subscriber has not read yet.
    pub held_back: Vec<String>,
    pub idempotency_keys_expired: u64,
}

/// Creates the partitions for `days` that do not exist yet, in a short transaction of its
/// own. Writers call this before they take the log's head ([`crate::append_and_commit`],
/// [`crate::import_and_commit`]). A day's table is created on its own and then attached
/// (`eventlog.ensure_telemetry_partition`), which does not wait for open readers of the
/// telemetry table nor make them wait; it waits only for another attach or a dropped
/// partition. Creating it under the head would still hold every writer through that.
///
/// Readers never skip an event: a partition commits before any event in it, and a
/// subscriber reads only up to the head it read first in its transaction
/// ([`crate::Subscription`]), so every partition holding an event it reads was attached
/// before its read took its lock on the telemetry table, and the read sees it.
pub async fn ensure_partitions(db: &Database, days: &[NaiveDate]) -> anyhow::Result<()> {
    let mut client = db.client().await?;
    create_partitions(&mut client, days).await.context("creating telemetry day partitions")
}

pub(crate) async fn create_partitions(
    client: &mut deadpool_postgres::Client,
    days: &[NaiveDate],
) -> Result<(), tokio_postgres::Error> {
    // Nearly always there: one catalog lookup and no lock.
    if days.is_empty() || missing_partitions(&*client, days).await?.is_empty() {
        return Ok(());
    }
    let tx = client.transaction().await?;
    tx.query(&tx.prepare_cached(include_str!("../sql/ensure_partitions.sql")).await?, &[&days]).await?;
    tx.commit().await
}

/// The days of `days` without a telemetry partition. Inside a writer's transaction, after
/// it took the head, so retention (which drops partitions under the head) cannot drop one
/// in between.
pub(crate) async fn missing_partitions(
    client: &impl GenericClient,
    days: &[NaiveDate],
) -> Result<Vec<NaiveDate>, tokio_postgres::Error> {
    let stmt = client.prepare_cached(include_str!("../sql/missing_partitions.sql")).await?;
    Ok(client.query(&stmt, &[&days]).await?.iter().map(|r| r.get(0)).collect())
}

/// The days of `at`, each once, in order.
pub(crate) fn days_of(at: impl Iterator<Item = DateTime<Utc>>) -> Vec<NaiveDate> {
    let mut days: Vec<NaiveDate> = at.map(|t| t.date_naive()).collect();
    days.sort();
    days.dedup();
    days
}

/// Creates partitions for `now`'s day and the next two, so appends rarely create one.
pub async fn prepare_days_ahead(db: &Database, now: DateTime<Utc>) -> anyhow::Result<()> {
    let today = now.date_naive();
    let days: Vec<NaiveDate> = (0..3).filter_map(|d| today.checked_add_signed(Duration::days(d))).collect();
    ensure_partitions(db, &days).await
}

/// Drops every telemetry partition whose whole day lies before `cutoff`, unless a
/// subscriber has not yet read all of it, and forgets the idempotency keys of the
/// batches that went with them. First it finishes any drop an earlier run left half-way.
///
/// `db` must connect as the log's owner: a day is detached with `DETACH PARTITION …
/// CONCURRENTLY` ([`drop_day_table`]), which only the owner may run, and only as a
/// statement of its own. Readers and writers of the log never wait for it.
///
/// A day is checked under the head (no append in between) and, in the same
/// transaction, recorded in `eventlog.retiring_days`; from that commit on writers treat
/// it as missing, so nothing lands in it between the check and the detach.
pub async fn expire_telemetry(db: &Database, cutoff: DateTime<Utc>) -> anyhow::Result<RetentionReport> {
    let mut client = db.client().await?;
    let mut report = RetentionReport::default();
    let mut oldest_kept: Option<DateTime<Utc>> = None;
    let retiring: Vec<NaiveDate> = client
        .query(&client.prepare_cached(include_str!("../sql/retiring_days.sql")).await?, &[])
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    for table in day_tables(&client, TELEMETRY).await? {
        let Some(day) = partition_day(&table.name) else {
            continue;
        };
        if table.state != DayTableState::Attached || retiring.contains(&day) {
            // Left half-way by an earlier run: every check passed then.
            drop_day_table(&client, TELEMETRY, &table).await?;
            report.dropped.push(table.name);
            continue;
        }
        let start = day.and_hms_opt(0, 0, 0).expect("midnight exists").and_utc();
        if start + Duration::days(1) > cutoff {
            oldest_kept = oldest_kept.or(Some(start));
            continue;
        }
        let tx = client.transaction().await?;
        tx.query(&tx.prepare_cached(include_str!("../sql/lock_head.sql")).await?, &[]).await?;
        let stmt = tx.prepare_cached(include_str!("../sql/newest_position_of_day.sql")).await?;
        let newest: Option<i64> = tx.query_one(&stmt, &[&day]).await?.get(0);
        let stmt = tx.prepare_cached(include_str!("../sql/min_checkpoint.sql")).await?;
        let slowest: Option<i64> = tx.query_one(&stmt, &[]).await?.get(0);
        if let (Some(newest), Some(slowest)) = (newest, slowest)
            && newest > slowest
        {
            tx.rollback().await?;
            tracing::warn!(partition = %table.name, newest, slowest, "telemetry partition past retention kept: a subscriber has not read it yet");
            oldest_kept = oldest_kept.or(Some(start));
            report.held_back.push(table.name);
            continue;
        }
        tx.execute(&tx.prepare_cached(include_str!("../sql/mark_retiring.sql")).await?, &[&day]).await?;
        tx.commit().await?;
        drop_day_table(&client, TELEMETRY, &table).await?;
        report.dropped.push(table.name);
    }
    client.execute(&client.prepare_cached(include_str!("../sql/unmark_retiring.sql")).await?, &[]).await?;
    let keys_before = oldest_kept.unwrap_or(cutoff);
    let stmt = client.prepare_cached(include_str!("../sql/expire_idempotency_keys.sql")).await?;
    report.idempotency_keys_expired = client.execute(&stmt, &[&keys_before]).await?;
    Ok(report)
}

/// The log's table of telemetry day partitions.
const TELEMETRY: &str = "eventlog.telemetry";

/// Where a day table stands in its parent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DayTableState {
    Attached,
    /// A concurrent detach stopped half-way: readers no longer see the day, and the
    /// detach must be finished (`FINALIZE`) before the table can go.
    DetachPending,
    /// No longer a partition: a drop stopped after the detach.
    Detached,
}

/// A day table of a partitioned table (`parent_YYYYMMDD`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DayTable {
    /// Its name, without the schema.
    pub name: String,
    pub state: DayTableState,
}

/// The day tables of `parent` (schema-qualified), oldest first: its partitions and any
/// day table a drop left detached or pending detach.
pub async fn day_tables(client: &impl GenericClient, parent: &str) -> anyhow::Result<Vec<DayTable>> {
    let stmt = client.prepare_cached(include_str!("../sql/day_tables.sql")).await?;
    let rows = client.query(&stmt, &[&parent]).await.with_context(|| format!("listing the day tables of {parent}"))?;
    Ok(rows
        .iter()
        .map(|r| {
            let state = match r.get::<_, Option<bool>>(1) {
                Some(false) => DayTableState::Attached,
                Some(true) => DayTableState::DetachPending,
                None => DayTableState::Detached,
            };
            DayTable { name: r.get(0), state }
        })
        .collect())
}

/// Drops day table `table` of `parent` without making the parent's readers or writers
/// wait: detaches it concurrently (finishes a detach left pending), then drops the
/// detached table, which locks that table alone. The detach waits for the transactions
/// that were using the parent, however long they take; the client must not be in a
/// transaction, and must connect as the parent's owner.
pub async fn drop_day_table(client: &impl GenericClient, parent: &str, table: &DayTable) -> anyhow::Result<()> {
    // The parent is a constant of the caller; the name came from the catalog through
    // `day_tables`, which only matches `parent_YYYYMMDD`.
    let schema = parent.split_once('.').map_or("public", |(s, _)| s);
    let partition = format!("{schema}.{}", table.name);
    let sql = |text: &str| text.replace("{parent}", parent).replace("{partition}", &partition);
    let detach = match table.state {
        DayTableState::Attached => Some(sql(include_str!("../sql/detach_partition.sql"))),
        DayTableState::DetachPending => Some(sql(include_str!("../sql/finalize_detach.sql"))),
        DayTableState::Detached => None,
    };
    if let Some(detach) = detach {
        // One statement, sent as a simple query: a concurrent detach refuses to run in a
        // transaction block.
        match client.batch_execute(&detach).await {
            Ok(()) => {}
            // A server that cannot detach concurrently (Citus refuses it on distributed
            // tables) detaches the way drops always did, holding the parent's readers.
            Err(e) if e.code() == Some(&tokio_postgres::error::SqlState::FEATURE_NOT_SUPPORTED) => {
                tracing::warn!(partition = %partition, error = %e, "the server cannot detach concurrently: readers wait for this drop");
                client
                    .batch_execute(&sql(include_str!("../sql/detach_partition_blocking.sql")))
                    .await
                    .with_context(|| format!("detaching {partition} from {parent}"))?;
            }
            Err(e) => return Err(anyhow::Error::new(e).context(format!("detaching {partition} from {parent}"))),
        }
    }
    client
        .batch_execute(&sql(include_str!("../sql/drop_detached.sql")))
        .await
        .with_context(|| format!("dropping the detached {partition}"))?;
    Ok(())
}

fn partition_day(name: &str) -> Option<NaiveDate> {
    let digits = name.strip_prefix("telemetry_")?;
    NaiveDate::parse_from_str(digits, "%Y%m%d").ok()
}
