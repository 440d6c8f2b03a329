//! The log writer: uploads queue here (bounded) and are appended in groups, many
//! gateways' batches per transaction, together with their dead letters.

use std::time::Duration;

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
    while rx.recv_many(&mut jobs, per_tx).await > 0 {
        let (appends, indexes, refused) = prepare(&jobs);
        match write(&db, &jobs, &appends).await {
            Ok(results) => {
                backoff = Duration::from_millis(50);
                let mut results = results.into_iter();
                for (i, job) in jobs.drain(..).enumerate() {
                    let answer = if let Some(reason) = refused.iter().find(|(j, _)| *j == i).map(|(_, r)| r.clone()) {
                        Err(WriteError::Refused(reason))
                    } else if indexes.contains(&i) {
                        let a = results.next().expect("one result per append");
                        Ok(Stored { position: Some(a.last_position), duplicate: a.duplicate })
                    } else {
                        Ok(Stored { position: None, duplicate: false })
                    };
                    let _ = job.reply.send(answer);
                }
            }
            Err(e) => {
                tracing::warn!(error = format!("{e:#}"), uploads = jobs.len(), "storing uploads failed");
                for job in jobs.drain(..) {
                    let _ = job.reply.send(Err(WriteError::Failed(format!("{e:#}"))));
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(2));
            }
        }
    }
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

async fn write(db: &Database, jobs: &[Job], appends: &[Append]) -> anyhow::Result<Vec<eventlog::Appended>> {
    // Before the transaction that takes the log's head: creating a day partition waits
    // for the log's open readers, and one of them may be waiting for the head.
    eventlog::ensure_partitions(db, &eventlog::telemetry_days(appends)).await?;
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
    for job in jobs {
        let u = &job.upload;
        for r in &u.rejected {
            gateway.push(u.gateway.as_str());
            upload.push(u.key.as_str());
            item.push(r.index.clamp(-1, i64::from(i32::MAX)) as i32);
            sensor.push(r.sensor.as_deref());
            ts.push(r.ts_ms);
            value.push(r.value);
            reason.push(r.reason.as_str());
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
