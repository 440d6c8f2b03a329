//! Checks, against a real server, that a new day partition is created beside an open
//! transaction on its parent without waiting for it, without making readers wait, and
//! once when two connections create the same day together; and that an old day is
//! dropped beside an open transaction without making readers or writers wait. Every
//! crate that creates or drops day partitions runs them against its own code.

use std::future::Future;
use std::time::Duration;

use anyhow::{Context, Result, bail};

use crate::testdb::connect;

/// How long a statement may wait for a lock before the check fails: a creation that
/// queued behind the open transaction fails here instead of hanging.
const LOCK_TIMEOUT: &str = "SET lock_timeout = '3s'";

/// Runs `hold` (statements that read and write the parent, as a projection's batch does)
/// in a transaction left open; meanwhile `create` (which creates a new day's partition)
/// runs on a second connection and `read` (which reads the parent) on a third, while the
/// creation is under way or just done. Both must complete while the transaction is still
/// open; it commits afterwards. Returns the first column of `create`'s single row.
pub async fn create_beside_open_transaction(url: &str, hold: &[&str], create: &str, read: &str) -> Result<bool> {
    let holder = connect(url).await?;
    holder.batch_execute("BEGIN").await?;
    for statement in hold {
        holder.batch_execute(statement).await.with_context(|| format!("holding: {statement}"))?;
    }
    let creator = connect(url).await?;
    creator.batch_execute(LOCK_TIMEOUT).await?;
    let reader = connect(url).await?;
    reader.batch_execute(LOCK_TIMEOUT).await?;

    let creating = {
        let create = create.to_owned();
        tokio::spawn(async move { creator.query_one(&create, &[]).await.map(|row| row.get::<_, bool>(0)) })
    };
    // Read while the creation is pending (the old way it waited, and readers queued
    // behind it) or, on a quick machine, right after.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let read_result = reader.batch_execute(read).await;
    let created = creating.await.context("the creating task")?;

    // Inside the transaction its start (now()) lies before this statement's.
    let still_open: bool =
        holder.query_one("SELECT now() < statement_timestamp()", &[]).await.context("the open transaction")?.get(0);
    if !still_open {
        bail!("the holding transaction ended early: the check needs it open throughout");
    }
    holder.batch_execute("COMMIT").await.context("committing the open transaction")?;
    let created = created.context("creating the partition beside an open transaction on its parent")?;
    read_result.context("reading the parent while its partition was created")?;
    Ok(created)
}

/// Two connections create the same day's partition at once: the first in a transaction
/// it holds open until the second is seen waiting for a lock (or done), then commits.
/// Returns what each call returned (`true`: it created the partition).
pub async fn create_same_day_twice(url: &str, create: &str) -> Result<(bool, bool)> {
    let first = connect(url).await?;
    first.batch_execute("BEGIN").await?;
    let created_first: bool = first.query_one(create, &[]).await.context("the first creation")?.get(0);

    let second = connect(url).await?;
    second.batch_execute("SET lock_timeout = '20s'").await?;
    let pid: i32 = second.query_one("SELECT pg_backend_pid()", &[]).await?.get(0);
    let creating = {
        let create = create.to_owned();
        tokio::spawn(async move { second.query_one(&create, &[]).await.map(|row| row.get::<_, bool>(0)) })
    };
    let watcher = connect(url).await?;
    for _ in 0..200 {
        let waiting: bool = watcher
            .query_one(
                "SELECT coalesce(bool_or(wait_event_type = 'Lock'), false) FROM pg_stat_activity WHERE pid = $1",
                &[&pid],
            )
            .await?
            .get(0);
        if waiting || creating.is_finished() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    first.batch_execute("COMMIT").await.context("committing the first creation")?;
    let created_second = creating.await.context("the second creating task")?.context("the second creation")?;
    Ok((created_first, created_second))
}

/// Checks that `partition` is what `CREATE TABLE … PARTITION OF parent` made: attached to
/// `parent`, with every index of the parent attached to one of its own, no CHECK left over
/// from the attach, and the parent's owner, grants and row security. (In a database where
/// the parent's grants came from the schema's default privileges, as the read models' do,
/// a partition created the old way had the same grants.)
pub async fn assert_made_as_partition(url: &str, parent: &str, partition: &str) -> Result<()> {
    let client = connect(url).await?;
    let row = client
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM pg_inherits WHERE inhrelid = c.oid AND inhparent = p.oid),
                    (SELECT count(*) FROM pg_index WHERE indrelid = p.oid),
                    (SELECT count(*) FROM pg_index x JOIN pg_inherits i ON i.inhrelid = x.indexrelid
                      WHERE x.indrelid = c.oid),
                    (SELECT count(*) FROM pg_constraint WHERE conrelid = c.oid AND contype = 'c'),
                    c.relowner = p.relowner,
                    c.relacl IS NOT DISTINCT FROM p.relacl,
                    c.relrowsecurity = p.relrowsecurity
               FROM pg_class c, pg_class p
              WHERE c.oid = $1::text::regclass AND p.oid = $2::text::regclass",
            &[&partition, &parent],
        )
        .await
        .with_context(|| format!("describing {partition}"))?;
    let (attached, parent_indexes, indexes, checks): (bool, i64, i64, i64) =
        (row.get(0), row.get(1), row.get(2), row.get(3));
    let (owner, grants, row_security): (bool, bool, bool) = (row.get(4), row.get(5), row.get(6));
    if !attached {
        bail!("{partition} is not a partition of {parent}");
    }
    if indexes != parent_indexes {
        bail!("{partition} has {indexes} of {parent}'s {parent_indexes} indexes");
    }
    if checks != 0 {
        bail!("{partition} keeps {checks} CHECK constraints");
    }
    if !(owner && grants && row_security) {
        bail!("{partition} differs from {parent}: same owner {owner}, grants {grants}, row security {row_security}");
    }
    Ok(())
}

/// Runs `hold` (statements that read and write the parent, as a projection's batch does)
/// in a transaction left open; meanwhile `drop` (retention dropping an old day) runs, and
/// once it waits for a lock, `beside` (readers and writers of the parent) run on a third
/// connection under a short lock time-out: none may wait for the drop. The open
/// transaction then runs `hold` once more (it is not held back either) and commits, and
/// the drop must complete. Returns what `drop` returned.
pub async fn drop_beside_open_transaction<T: Send + 'static>(
    url: &str,
    hold: &[&str],
    drop: impl Future<Output = Result<T>> + Send + 'static,
    beside: &[&str],
) -> Result<T> {
    let holder = connect(url).await?;
    holder.batch_execute(LOCK_TIMEOUT).await?;
    holder.batch_execute("BEGIN").await?;
    for statement in hold {
        holder.batch_execute(statement).await.with_context(|| format!("holding: {statement}"))?;
    }
    let holder_pid: i32 = holder.query_one("SELECT pg_backend_pid()", &[]).await?.get(0);
    let dropping = tokio::spawn(drop);

    // Until the drop waits for a lock (for the open transaction) or is done.
    let watcher = connect(url).await?;
    for _ in 0..400 {
        let waiting: bool = watcher
            .query_one(
                "SELECT count(*) > 0 FROM pg_stat_activity
                  WHERE datname = current_database() AND pid <> $1 AND wait_event_type = 'Lock'",
                &[&holder_pid],
            )
            .await?
            .get(0);
        if waiting || dropping.is_finished() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }

    let other = connect(url).await?;
    other.batch_execute(LOCK_TIMEOUT).await?;
    let mut beside_result = Ok(());
    for statement in beside {
        if let Err(e) = other.batch_execute(statement).await {
            beside_result = Err(anyhow::Error::new(e).context(format!("beside the drop: {statement}")));
            break;
        }
    }
    let mut hold_again = Ok(());
    for statement in hold {
        if let Err(e) = holder.batch_execute(statement).await {
            hold_again = Err(anyhow::Error::new(e).context(format!("holding again: {statement}")));
            break;
        }
    }
    let still_open: bool =
        holder.query_one("SELECT now() < statement_timestamp()", &[]).await.context("the open transaction")?.get(0);
    if !still_open {
        bail!("the holding transaction ended early: the check needs it open throughout");
    }
    holder.batch_execute("COMMIT").await.context("committing the open transaction")?;
    let dropped = tokio::time::timeout(Duration::from_secs(60), dropping)
        .await
        .context("the drop did not complete once the open transaction ended")?
        .context("the dropping task")?
        .context("dropping the old day beside an open transaction on its parent")?;
    beside_result.context("reading and writing the parent while an old day was dropped")?;
    hold_again.context("the open transaction going on while an old day was dropped")?;
    Ok(dropped)
}

/// Whether `table` (schema-qualified) exists.
pub async fn table_exists(url: &str, table: &str) -> Result<bool> {
    let client = connect(url).await?;
    Ok(client.query_one("SELECT to_regclass($1) IS NOT NULL", &[&table]).await?.get(0))
}
