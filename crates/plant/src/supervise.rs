//! Supervision of the plant node's long-running tasks (the log writer, the projections,
//! the anomaly monitor, the maintenance scorer, retention, and whatever else a node
//! runs): a task that dies, by error or panic, is logged and restarted with back-off; a
//! task that keeps failing inside its own retry loop says so; and every task's state is
//! kept on one board that `/v1/health`, the read models and the status screen show.
//!
//! A task is any `async` body returning `Result<()>` given a [`TaskSlot`] (to report
//! how it fares) and its stop signal. `Ok(())` means it stopped because it was asked to,
//! or finished its work for good (the writer when the API is gone): it is not restarted.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Result;
use serde::Serialize;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use readmodel_contract::TaskState;

/// One task's state as the board keeps it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TaskStatus {
    pub task: String,
    pub state: TaskState,
    /// When the task entered this state (ms since the epoch).
    pub since_ms: i64,
    pub restarts: u32,
    /// The newest error, kept after recovery so a person can see what happened.
    pub last_error: Option<String>,
    /// The log subscriber whose checkpoint measures this task's lag, if any.
    #[serde(skip)]
    pub subscriber: Option<String>,
}

/// Every supervised task's state; changes are announced on a watch channel.
pub struct TaskBoard {
    tasks: Mutex<BTreeMap<String, TaskStatus>>,
    changed: watch::Sender<u64>,
    clock: fn() -> i64,
}

impl std::fmt::Debug for TaskBoard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TaskBoard").field("tasks", &self.snapshot()).finish_non_exhaustive()
    }
}

fn wall_clock_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

impl Default for TaskBoard {
    fn default() -> Self {
        TaskBoard::with_clock(wall_clock_ms)
    }
}

impl TaskBoard {
    pub fn with_clock(clock: fn() -> i64) -> Self {
        TaskBoard { tasks: Mutex::new(BTreeMap::new()), changed: watch::channel(0).0, clock }
    }

    /// A slot for task `task`, starting as [`TaskState::Starting`].
    pub fn slot(self: &Arc<Self>, task: &str, subscriber: Option<&str>) -> TaskSlot {
        let status = TaskStatus {
            task: task.to_owned(),
            state: TaskState::Starting,
            since_ms: (self.clock)(),
            restarts: 0,
            last_error: None,
            subscriber: subscriber.map(str::to_owned),
        };
        self.lock().insert(task.to_owned(), status);
        self.changed.send_modify(|n| *n += 1);
        TaskSlot { board: self.clone(), task: task.to_owned(), healthy: Arc::new(AtomicBool::new(false)) }
    }

    /// Every task's state, by name.
    pub fn snapshot(&self) -> Vec<TaskStatus> {
        self.lock().values().cloned().collect()
    }

    /// Wakes when any task's state changes.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, TaskStatus>> {
        // A panic while holding this lock leaves consistent data (each update is one
        // assignment): keep serving it.
        self.tasks.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn update(&self, task: &str, change: impl FnOnce(&mut TaskStatus, i64)) {
        let now = (self.clock)();
        let changed = {
            let mut tasks = self.lock();
            let Some(status) = tasks.get_mut(task) else { return };
            let before = status.clone();
            change(status, now);
            *status != before
        };
        if changed {
            self.changed.send_modify(|n| *n += 1);
        }
    }
}

/// One task's handle on the board.
#[derive(Clone)]
pub struct TaskSlot {
    board: Arc<TaskBoard>,
    task: String,
    /// Whether the board already says running (so a busy task's reports cost one load).
    healthy: Arc<AtomicBool>,
}

impl TaskSlot {
    pub fn name(&self) -> &str {
        &self.task
    }

    /// The task works (connected, reading, its last attempt succeeded).
    pub fn running(&self) {
        if self.healthy.swap(true, Ordering::Relaxed) {
            return;
        }
        self.set(TaskState::Running, None);
    }

    /// The task's last attempt failed and it retries by itself.
    pub fn failing(&self, error: &anyhow::Error) {
        self.healthy.store(false, Ordering::Relaxed);
        self.set(TaskState::Failing, Some(format!("{error:#}")));
    }

    fn set(&self, state: TaskState, error: Option<String>) {
        self.board.update(&self.task, |s, now| {
            if s.state != state {
                s.state = state;
                s.since_ms = now;
            }
            if error.is_some() {
                s.last_error = error;
            }
        });
    }

    fn died(&self, error: String) {
        self.healthy.store(false, Ordering::Relaxed);
        self.board.update(&self.task, |s, now| {
            // "Down since" is the first failure of a run of them, not the latest restart.
            if !matches!(s.state, TaskState::Failing | TaskState::Restarting) {
                s.since_ms = now;
            }
            s.state = TaskState::Restarting;
            s.restarts += 1;
            s.last_error = Some(error);
        });
    }

    fn stopped(&self) {
        self.healthy.store(false, Ordering::Relaxed);
        self.set(TaskState::Stopped, None);
    }
}

impl eventlog::SubscriberHealth for TaskSlot {
    fn interrupted(&self, error: &anyhow::Error) {
        self.failing(error);
    }

    fn reading(&self) {
        self.running();
    }
}

/// Back-off between restarts of a task that died.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    pub first_ms: u64,
    pub max_ms: u64,
    /// A task that ran this long before dying starts again from `first_ms`.
    pub reset_after_ms: u64,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff { first_ms: 500, max_ms: 60_000, reset_after_ms: 60_000 }
    }
}

/// Runs `body` under supervision until `stop` turns true: restarts it with back-off
/// whenever it returns an error, panics, or returns while not asked to stop.
pub fn supervise<F, Fut>(slot: TaskSlot, backoff: Backoff, stop: watch::Receiver<bool>, mut body: F) -> JoinHandle<()>
where
    F: FnMut(TaskSlot, watch::Receiver<bool>) -> Fut + Send + 'static,
    Fut: Future<Output = Result<()>> + Send + 'static,
{
    tokio::spawn(async move {
        let mut wait = Duration::from_millis(backoff.first_ms);
        loop {
            let began = tokio::time::Instant::now();
            let run = tokio::spawn(body(slot.clone(), stop.clone()));
            let asked_to_stop = || *stop.borrow();
            let error = match run.await {
                Ok(Ok(())) if asked_to_stop() => {
                    slot.stopped();
                    return;
                }
                Ok(Ok(())) => "it ended without being asked to".to_owned(),
                Ok(Err(e)) => format!("{e:#}"),
                Err(e) if e.is_panic() => format!("it panicked: {}", panic_text(e.into_panic())),
                Err(e) => format!("it was cancelled: {e}"),
            };
            if asked_to_stop() {
                tracing::warn!(task = slot.name(), error, "task failed while stopping");
                slot.stopped();
                return;
            }
            if began.elapsed() >= Duration::from_millis(backoff.reset_after_ms) {
                wait = Duration::from_millis(backoff.first_ms);
            }
            tracing::error!(
                task = slot.name(),
                error,
                restart_in_ms = wait.as_millis() as u64,
                "task died; restarting"
            );
            slot.died(error);
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = stopped(stop.clone()) => {
                    slot.stopped();
                    return;
                }
            }
            wait = (wait * 2).min(Duration::from_millis(backoff.max_ms));
        }
    })
}

/// A body that only needs to know when to stop: the future of `stop` turning true.
pub async fn stopped(mut stop: watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

fn panic_text(payload: Box<dyn std::any::Any + Send>) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(no message)".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU32;

    fn fast() -> Backoff {
        Backoff { first_ms: 10, max_ms: 40, reset_after_ms: 60_000 }
    }

    async fn until(board: &TaskBoard, task: &str, f: impl Fn(&TaskStatus) -> bool) -> TaskStatus {
        let mut changes = board.subscribe();
        loop {
            if let Some(s) = board.snapshot().into_iter().find(|s| s.task == task && f(s)) {
                return s;
            }
            changes.changed().await.expect("the board lives");
        }
    }

    #[tokio::test]
    async fn a_task_that_panics_is_restarted_and_its_cause_kept() {
        let board = Arc::new(TaskBoard::default());
        let (stop_tx, stop) = watch::channel(false);
        let runs = Arc::new(AtomicU32::new(0));
        let handle = supervise(board.slot("monitor", None), fast(), stop, {
            let runs = runs.clone();
            move |slot, stop| {
                let run = runs.fetch_add(1, Ordering::SeqCst);
                async move {
                    if run < 2 {
                        panic!("a detector's state went non-finite");
                    }
                    slot.running();
                    stopped(stop).await;
                    Ok(())
                }
            }
        });
        let s = until(&board, "monitor", |s| s.state == TaskState::Running).await;
        assert_eq!(s.restarts, 2);
        assert_eq!(s.last_error.as_deref(), Some("it panicked: a detector's state went non-finite"));
        stop_tx.send(true).unwrap();
        handle.await.unwrap();
        assert_eq!(board.snapshot()[0].state, TaskState::Stopped);
    }

    #[tokio::test]
    async fn a_task_that_fails_inside_its_own_retries_shows_failing_until_it_reads_again() {
        let board = Arc::new(TaskBoard::default());
        let slot = board.slot("live projection", Some("live"));
        slot.running();
        slot.failing(&anyhow::anyhow!("connection refused"));
        let s = &board.snapshot()[0];
        assert_eq!((s.state, s.last_error.as_deref()), (TaskState::Failing, Some("connection refused")));
        let since = s.since_ms;
        slot.failing(&anyhow::anyhow!("connection refused again"));
        assert_eq!(board.snapshot()[0].since_ms, since, "failing since the first failure");
        slot.running();
        assert_eq!(board.snapshot()[0].state, TaskState::Running);
    }

    #[tokio::test]
    async fn a_task_that_returns_unasked_is_restarted_and_one_that_was_asked_is_not() {
        let board = Arc::new(TaskBoard::default());
        let (stop_tx, stop) = watch::channel(false);
        let runs = Arc::new(AtomicU32::new(0));
        let handle = supervise(board.slot("retention", None), fast(), stop, {
            let runs = runs.clone();
            move |slot, stop| {
                let run = runs.fetch_add(1, Ordering::SeqCst);
                async move {
                    if run == 0 {
                        return Ok(());
                    }
                    if run == 1 {
                        anyhow::bail!("the database went away");
                    }
                    slot.running();
                    stopped(stop).await;
                    Ok(())
                }
            }
        });
        let s = until(&board, "retention", |s| s.state == TaskState::Running).await;
        assert_eq!(s.restarts, 2);
        assert_eq!(s.last_error.as_deref(), Some("the database went away"));
        stop_tx.send(true).unwrap();
        handle.await.unwrap();
        assert_eq!(runs.load(Ordering::SeqCst), 3, "not restarted once asked to stop");
    }
}
