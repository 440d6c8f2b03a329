//! How the plant node's tasks fare, for people and machines: `GET /v1/health` (each
//! task's state and lag; 503 when one is down or far behind) and the `node_tasks` read
//! model, which the desktop app and the status screen show ("anomaly detection stopped
//! since …").

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use eventlog::Database;
use readmodel_contract::{TaskState, task_label};
use serde_json::json;
use tokio::sync::watch;

use crate::ingest::Writer;
use crate::supervise::{TaskBoard, TaskStatus};

/// What the health route reads.
#[derive(Clone)]
pub struct HealthState {
    pub board: Arc<TaskBoard>,
    pub db: Database,
    pub plant_number: u16,
    pub writer: Writer,
    /// A subscriber this many events behind the log counts as down.
    pub max_lag_events: i64,
}

pub fn router(state: HealthState) -> Router {
    Router::new().route("/v1/health", get(health)).with_state(state)
}

/// One task with its lag, as the route and the read model report it.
#[derive(Debug, Clone)]
pub struct TaskReport {
    pub status: TaskStatus,
    pub lag_events: Option<i64>,
}

impl TaskReport {
    /// Why a person should worry about this task, in words; `None` when it is well.
    pub fn problem(&self, max_lag_events: i64) -> Option<String> {
        let label = task_label(&self.status.task);
        let since = chrono::DateTime::from_timestamp_millis(self.status.since_ms)
            .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
            .unwrap_or_default();
        match (self.status.state, self.lag_events) {
            (s, _) if s.is_down() => Some(format!("{label} stopped since {since}")),
            (TaskState::Starting, _) => Some(format!("{label} starting since {since}")),
            (_, Some(lag)) if lag > max_lag_events => Some(format!("{label} is {lag} events behind")),
            _ => None,
        }
    }
}

/// Every task's state, with the lag of those that follow the log (`None` when the
/// database cannot be asked).
pub async fn reports(board: &TaskBoard, db: &Database) -> (Vec<TaskReport>, Option<String>) {
    let tasks = board.snapshot();
    let mut unreachable = None;
    let client = match db.client().await {
        Ok(c) => Some(c),
        Err(e) => {
            unreachable = Some(format!("{e:#}"));
            None
        }
    };
    let mut out = Vec::with_capacity(tasks.len());
    for status in tasks {
        let lag_events = match (&client, &status.subscriber) {
            (Some(c), Some(name)) => match eventlog::lag(c, name).await {
                Ok(lag) => Some(lag),
                Err(e) => {
                    unreachable.get_or_insert(format!("{e:#}"));
                    None
                }
            },
            _ => None,
        };
        out.push(TaskReport { status, lag_events });
    }
    (out, unreachable)
}

async fn health(State(s): State<HealthState>) -> Response {
    let (reports, unreachable) = reports(&s.board, &s.db).await;
    let mut problems: Vec<String> = reports.iter().filter_map(|r| r.problem(s.max_lag_events)).collect();
    if let Some(e) = &unreachable {
        problems.push(format!("the plant's database cannot be reached: {e}"));
    }
    let tasks: Vec<serde_json::Value> = reports
        .iter()
        .map(|r| {
            json!({
                "task": r.status.task,
                "label": task_label(&r.status.task),
                "state": r.status.state.as_str(),
                "since": chrono::DateTime::from_timestamp_millis(r.status.since_ms).map(|t| t.to_rfc3339()),
                "restarts": r.status.restarts,
                "last_error": r.status.last_error,
                "lag_events": r.lag_events,
            })
        })
        .collect();
    let status = if problems.is_empty() { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    let body = json!({
        "status": if problems.is_empty() { "ok" } else { "degraded" },
        "plant": s.plant_number,
        "queued_uploads": s.writer.queued(),
        "tasks": tasks,
        "problems": problems,
    });
    (status, axum::Json(body)).into_response()
}

/// Writes the board to the `node_tasks` read model whenever a task's state changes (a
/// burst of changes is written once) and every `heartbeat`, until `stop`; then once more,
/// so the read model shows the tasks stopped with the node.
pub async fn report_to_read_models(
    board: Arc<TaskBoard>,
    db: Database,
    heartbeat: Duration,
    stop: watch::Receiver<bool>,
) {
    let mut changes = board.subscribe();
    let stopping = crate::supervise::stopped(stop);
    tokio::pin!(stopping);
    loop {
        write(&board, &db).await;
        tokio::select! {
            _ = changes.changed() => tokio::time::sleep(Duration::from_millis(100)).await,
            () = tokio::time::sleep(heartbeat) => {}
            () = &mut stopping => return,
        }
    }
}

/// Writes the board once (also the last time, when the node has stopped).
pub async fn write(board: &TaskBoard, db: &Database) {
    let (reports, _) = reports(board, db).await;
    let rows: Vec<readmodels::NodeTaskReport> = reports
        .into_iter()
        .map(|r| readmodels::NodeTaskReport {
            task: r.status.task,
            state: r.status.state.as_str(),
            since: chrono::DateTime::from_timestamp_millis(r.status.since_ms).unwrap_or_default(),
            restarts: r.status.restarts,
            last_error: r.status.last_error,
            lag_events: r.lag_events,
        })
        .collect();
    if let Err(e) = readmodels::record_node_tasks(db, &rows).await {
        tracing::warn!(error = format!("{e:#}"), "could not record the node's task states");
    }
}
