//! The log writer: uploads queue here (bounded) and are appended in groups, many
//! gateways' batches per transaction, together with their dead letters.

use std::borrow::Cow;
use std::collections::BTreeSet;
use std::time::Duration;

use chrono::NaiveDate;

use eventlog::{Append, Database, ExpectedVersion, Metadata, NewEvent, StreamName};
use telemetry::Reading;
use tokio::sync::{mpsc, oneshot};

use super::validate::Rejection;

/// One upload, checked and ready to store.
#[derive(Debug, Clone)]
pub struct Upload {
    pub gateway: String,
    /// Idempotency key: a repeated upload is stored once.
    pub key: String,
    pub valid: Vec<Reading>,
    pub rejected: Vec<Rejection>,
    /// The body, when it could not be read at all.
    pub raw: Option<Vec<u8>>,
    /// Accepted timestamps (the validator's window), checked again by the log.
    pub window_ms: (i64, i64),
}

/// What storing an upload did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stored {
    /// Log position of the readings' event (none when nothing was accepted).
    pub position: Option<i64>,
    /// The upload had been stored before; nothing new was written.
    pub duplicate: bool,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum WriteError {
    /// The queue is full: the log is not keeping up. Retry later.
    #[error("the event log is not keeping up; retry later")]
    Busy,
    /// Storing failed (database unavailable, say). Retry later.
    #[error("storing the upload failed: {0}")]
    Failed(String),
    /// The log refused the batch itself (a bug upstream of it: validation should have caught it).
    #[error("the event log refused the batch: {0}")]
    Refused(String),
    /// The database refused this upload for its data; it is kept as a dead letter. Final.
    #[error("{0}")]
    Unstorable(String),
}

struct Job {
    upload: Upload,
    reply: oneshot::Sender<Result<Stored, WriteError>>,
}

/// Settings of the writer.
#[derive(Debug, Clone, Copy)]
pub struct WriterConfig {
    /// Uploads waiting for the log at most; beyond it the API answers 503.
    pub queue_uploads: usize,
    /// Uploads appended in one transaction at most.
    pub uploads_per_transaction: usize,
}

impl Default for WriterConfig {
    fn default() -> Self {
        WriterConfig { queue_uploads: 512, uploads_per_transaction: 64 }
    }
}

/// Handle to submit uploads; the writer task ends when every handle is dropped and
/// the queue is drained.
#[derive(Debug, Clone)]
pub struct Writer {
    tx: mpsc::Sender<Job>,
}

impl Writer {
    pub fn spawn(db: Database, config: WriterConfig) -> (Writer, tokio::task::JoinHandle<()>) {
        let (writer, writing) = Writer::new(db, config);
        (writer, tokio::spawn(async move { writing.run().await }))
    }

    /// The writer and the loop that stores what it queues, to run (and run again after a
    /// panic) under a supervisor.
    pub fn new(db: Database, config: WriterConfig) -> (Writer, WriterLoop) {
        let (tx, rx) = mpsc::channel(config.queue_uploads.max(1));
        let writing = WriterLoop {
            db,
            rx: std::sync::Arc::new(tokio::sync::Mutex::new(rx)),
            per_tx: config.uploads_per_transaction.max(1),
        };
        (Writer { tx }, writing)
    }

    /// Queues an upload and waits until it is stored. Refuses at once when the queue
    /// is full, so memory stays bounded and the gateway backs off.
    pub async fn store(&self, upload: Upload) -> Result<Stored, WriteError> {
        let (reply, answer) = oneshot::channel();
        self.tx.try_send(Job { upload, reply }).map_err(|_| WriteError::Busy)?;
        answer.await.unwrap_or_else(|_| Err(WriteError::Failed("the writer stopped".into())))
    }

    /// Uploads waiting in the queue.
    pub fn queued(&self) -> usize {
        self.tx.max_capacity() - self.tx.capacity()
    }
}

/// The loop that stores queued uploads. A run ends when every [`Writer`] is gone and
/// the queue is drained; a run that died (a panic) can be started again, and goes on
/// with the queue as it is (the uploads it held were answered with an error).
#[derive(Clone)]
pub struct WriterLoop {
    db: Database,
    rx: std::sync::Arc<tokio::sync::Mutex<mpsc::Receiver<Job>>>,
    per_tx: usize,
}

impl WriterLoop {
    pub async fn run(&self) {
        let mut rx = self.rx.lock().await;
        run(self.db.clone(), &mut rx, self.per_tx).await;
    }
}

async fn run(db: Database, rx: &mut mpsc::Receiver<Job>, per_tx: usize) {
    let mut jobs = Vec::with_capacity(per_tx);
    let mut backoff = Duration::from_millis(50);
    let mut days = KnownDays::default();
    while rx.recv_many(&mut jobs, per_tx).await > 0 {
        let answers = store_group(&db, &mut days, &jobs).await;
        let outage = answers.iter().any(|a| matches!(a, Err(WriteError::Failed(_))));
        for (job, answer) in jobs.drain(..).zip(answers) {
            let _ = job.reply.send(answer);
        }
        if outage {
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(2));
        } else {
            backoff = Duration::from_millis(50);
        }
    }
}

/// Stores a group of uploads in one transaction; one answer per job, in order. When the
/// database refuses the group for its data (not for an outage), each upload is stored
/// again on its own, so only the one at fault is refused and the others commit.
async fn store_group(db: &Database, days: &mut KnownDays, jobs: &[Job]) -> Vec<Result<Stored, WriteError>> {
    match store_together(db, days, jobs).await {
        Ok(answers) => answers,
        Err(e) if is_permanent(&e) && jobs.len() > 1 => {
            tracing::warn!(
                error = format!("{e:#}"),
                uploads = jobs.len(),
                "the database refused a group of uploads for its data: storing each on its own"
            );
            let mut answers = Vec::with_capacity(jobs.len());
            for job in jobs {
                answers.push(match store_together(db, days, std::slice::from_ref(job)).await {
                    Ok(mut one) => one.pop().unwrap_or(Err(WriteError::Failed("no answer".into()))),
                    Err(e) => refuse_alone(db, days, &job.upload, e).await,
                });
            }
            answers
        }
        Err(e) => match jobs {
            [job] => vec![refuse_alone(db, days, &job.upload, e).await],
            _ => {
                tracing::warn!(error = format!("{e:#}"), uploads = jobs.len(), "storing uploads failed");
                jobs.iter().map(|_| Err(WriteError::Failed(format!("{e:#}")))).collect()
            }
        },
    }
}

/// The answer to one upload that could not be stored on its own: an outage is worth a
/// retry; a refusal of its data is final, and the upload is kept as a dead letter saying so.
async fn refuse_alone(
    db: &Database,
    days: &mut KnownDays,
    upload: &Upload,
    e: anyhow::Error,
) -> Result<Stored, WriteError> {
    if !is_permanent(&e) {
        tracing::warn!(error = format!("{e:#}"), upload = %upload.key, "storing an upload failed");
        return Err(WriteError::Failed(format!("{e:#}")));
    }
    let reason = format!("the database refused this upload: {e:#}");
    tracing::warn!(upload = %upload.key, gateway = %upload.gateway, "{reason}");
    let letter = Upload {
        gateway: upload.gateway.clone(),
        key: upload.key.clone(),
        valid: Vec::new(),
        rejected: vec![Rejection { index: -1, sensor: None, ts_ms: None, value: None, reason: reason.clone() }],
        raw: None,
        window_ms: upload.window_ms,
    };
    if let Err(kept) = write(db, days, [&letter], &[]).await {
        tracing::error!(error = format!("{kept:#}"), upload = %upload.key, "could not keep a refused upload as a dead letter");
    }
    Err(WriteError::Unstorable(reason))
}

/// Whether the database refused the statement for what it was given (bad data, a
/// constraint, a size limit: trying again cannot help) rather than being unavailable.
fn is_permanent(e: &anyhow::Error) -> bool {
    let Some(code) = e.chain().find_map(|c| c.downcast_ref::<tokio_postgres::Error>()).and_then(|pg| pg.code()) else {
        return false;
    };
    // 22: data exception; 23: integrity constraint; 54: program limit (too large).
    ["22", "23", "54"].iter().any(|class| code.code().starts_with(class))
}

/// Text as PostgreSQL can store it: it refuses the NUL character in `text`, so each is
/// kept as U+2400 (␀), visibly.
pub fn storable(text: &str) -> Cow<'_, str> {
    if text.contains('\0') { Cow::Owned(text.replace('\0', "\u{2400}")) } else { Cow::Borrowed(text) }
}

/// Builds one append per upload with accepted readings; returns the appends, which
/// jobs they belong to, and the jobs whose batch the log refused.
fn prepare(jobs: &[Job]) -> (Vec<Append>, Vec<usize>, Vec<(usize, String)>) {
    let mut appends = Vec::new();
    let mut indexes = Vec::new();
    let mut refused = Vec::new();
    for (i, job) in jobs.iter().enumerate() {
        let u = &job.upload;
        if u.valid.is_empty() {
            continue;
        }
        let metadata = Metadata {
            correlation_id: Some(u.key.clone()),
            source: Some(format!("gateway:{}", u.gateway)),
            ..Metadata::default()
        };
        let built = NewEvent::readings(&u.valid, u.window_ms, metadata)
            .map_err(|e| e.to_string())
            .and_then(|event| StreamName::of("readings", &u.gateway).map(|s| (s, event)).map_err(|e| e.to_string()));
        match built {
            Ok((stream, event)) => {
                appends.push(Append::new(stream, ExpectedVersion::Any, vec![event]).idempotent(u.key.clone()));
                indexes.push(i);
            }
            Err(reason) => refused.push((i, reason)),
        }
    }
    (appends, indexes, refused)
}

/// Stores uploads in one transaction: their dead letters and one append per upload with
/// accepted readings. One answer per job, in order.
async fn store_together(
    db: &Database,
    days: &mut KnownDays,
    jobs: &[Job],
) -> anyhow::Result<Vec<Result<Stored, WriteError>>> {
    let (appends, indexes, refused) = prepare(jobs);
    let results = write(db, days, jobs.iter().map(|j| &j.upload), &appends).await?;
    let mut results = results.into_iter();
    Ok((0..jobs.len())
        .map(|i| {
            if let Some((_, reason)) = refused.iter().find(|(j, _)| *j == i) {
                Err(WriteError::Refused(reason.clone()))
            } else if indexes.contains(&i) {
                let a = results.next().expect("one result per append");
                Ok(Stored { position: Some(a.last_position), duplicate: a.duplicate })
            } else {
                Ok(Stored { position: None, duplicate: false })
            }
        })
        .collect())
}

/// Day partitions of the log's telemetry the writer has seen exist, so a write looks
/// them up only when its readings fall on a day not seen yet (nearly every write falls on
/// today). The append checks the partitions again under the log's head: a day wrongly
/// taken as there (retention dropped it meanwhile) is made again and the write tried once
/// more at once; after any other failed write the days are looked up afresh.
#[derive(Debug, Default)]
struct KnownDays(BTreeSet<NaiveDate>);

impl KnownDays {
    /// Days kept at most; beyond, the set starts again (readings span a few days).
    const MAX: usize = 64;

    /// Creates the partitions of `days` not known to exist; before the transaction that
    /// takes the log's head, since creating one waits for the log's open readers, and one
    /// of them may be waiting for the head.
    async fn ensure(&mut self, db: &Database, days: Vec<NaiveDate>) -> anyhow::Result<()> {
        let unknown: Vec<NaiveDate> = days.into_iter().filter(|d| !self.0.contains(d)).collect();
        if unknown.is_empty() {
            return Ok(());
        }
        eventlog::ensure_partitions(db, &unknown).await?;
        if self.0.len() + unknown.len() > Self::MAX {
            self.0.clear();
        }
        self.0.extend(unknown);
        Ok(())
    }
}

async fn write<'a>(
    db: &Database,
    days: &mut KnownDays,
    uploads: impl IntoIterator<Item = &'a Upload>,
    appends: &[Append],
) -> anyhow::Result<Vec<eventlog::Appended>> {
    let needed = eventlog::telemetry_days(appends);
    days.ensure(db, needed.clone()).await?;
    let uploads: Vec<&Upload> = uploads.into_iter().collect();
    let written = match write_in_transaction(db, uploads.iter().copied(), appends).await {
        // A day taken as there was dropped meanwhile: made again, and written at once.
        Err(e) if e.chain().any(|c| matches!(c.downcast_ref(), Some(eventlog::AppendError::MissingPartitions(_)))) => {
            days.0.clear();
            days.ensure(db, needed).await?;
            write_in_transaction(db, uploads.iter().copied(), appends).await
        }
        written => written,
    };
    if written.is_err() {
        days.0.clear();
    }
    written
}

async fn write_in_transaction<'a>(
    db: &Database,
    uploads: impl IntoIterator<Item = &'a Upload>,
    appends: &[Append],
) -> anyhow::Result<Vec<eventlog::Appended>> {
    let mut client = db.client().await?;
    let tx = client.transaction().await?;
    let mut gateway = Vec::new();
    let mut upload = Vec::new();
    let mut item = Vec::new();
    let mut sensor = Vec::new();
    let mut ts = Vec::new();
    let mut value = Vec::new();
    let mut reason = Vec::new();
    let mut raw: Vec<Option<Vec<u8>>> = Vec::new();
    for u in uploads {
        for r in &u.rejected {
            gateway.push(storable(&u.gateway));
            upload.push(storable(&u.key));
            item.push(r.index.clamp(-1, i64::from(i32::MAX)) as i32);
            sensor.push(r.sensor.as_deref().map(storable));
            ts.push(r.ts_ms);
            value.push(r.value);
            reason.push(storable(&r.reason));
            raw.push(if r.index < 0 { u.raw.as_ref().map(|b| b[..b.len().min(64 * 1024)].to_vec()) } else { None });
        }
    }
    if !gateway.is_empty() {
        let stmt = tx.prepare_cached(include_str!("../../sql/insert_dead_letters.sql")).await?;
        tx.execute(&stmt, &[&gateway, &upload, &item, &sensor, &ts, &value, &reason, &raw]).await?;
    }
    // Appending last keeps the log's head locked for the shortest time.
    let results = if appends.is_empty() { Vec::new() } else { eventlog::append(&tx, appends).await? };
    tx.commit().await?;
    Ok(results)
}
