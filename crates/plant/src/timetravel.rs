//! Time travel over HTTP: the plant as it was at an instant, what changed between two
//! instants, and a shift's report, for anyone who may read this plant (the log itself
//! stays closed to readers). Handlers are thin over `readmodels::timetravel`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use access::Permission;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::middleware::from_fn_with_state;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use chrono::DateTime;
use readmodels::live::PlantLayout;
use readmodels::timetravel::{self, Clock};
use tokio::sync::Semaphore;

use crate::api::ApiError;
use crate::commands::{CommandState, signed_in};

/// The longest span a diff or a shift report covers.
pub const MAX_RANGE_MS: i64 = 24 * 3_600_000;
/// How far ahead of the node's clock an instant may be (a screen's clock runs a little
/// ahead); later is refused.
const MAX_AHEAD_MS: i64 = 60_000;
/// How long a request waits for its turn before it is told to come back.
const QUEUE_WAIT: Duration = Duration::from_secs(10);

/// What the time-travel routes need.
#[derive(Clone)]
pub struct TimeTravelState {
    pub commands: CommandState,
    /// Raw readings are kept this many days: older instants cannot be rebuilt.
    pub retention_days: u32,
    /// Reconstructions at once (each folds up to a checkpoint's worth of events).
    pub permits: Arc<Semaphore>,
    /// The plant's layout once built, so a reconstruction does not parse it again.
    layout: Arc<Mutex<Option<PlantLayout>>>,
}

impl TimeTravelState {
    pub fn new(commands: CommandState, retention_days: u32, at_once: usize) -> Self {
        TimeTravelState {
            commands,
            retention_days,
            permits: Arc::new(Semaphore::new(at_once.max(1))),
            layout: Arc::new(Mutex::new(None)),
        }
    }
}

pub fn router(state: TimeTravelState) -> Router {
    let gate = from_fn_with_state((state.commands.clone(), Permission::ReadPlantData), signed_in);
    Router::new()
        .route("/v1/timetravel/floor", get(floor))
        .route("/v1/timetravel/changes", get(changes))
        .route("/v1/timetravel/shift-report", get(shift_report))
        .route_layer(gate)
        .with_state(state)
}

type Params = Result<Query<HashMap<String, String>>, QueryRejection>;

fn bad(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "bad_parameter", message)
}

/// Shortens what a caller sent before it is quoted back.
fn quoted(text: &str) -> String {
    let mut s: String = text.chars().take(40).map(|c| if c.is_control() { '\u{FFFD}' } else { c }).collect();
    if text.chars().count() > 40 {
        s.push('…');
    }
    format!("{s:?}")
}

/// An instant: RFC 3339 or milliseconds since the epoch.
fn instant(params: &HashMap<String, String>, name: &str) -> Result<i64, ApiError> {
    let text = params.get(name).ok_or_else(|| bad(format!("`{name}` is required (RFC 3339 or ms since the epoch)")))?;
    if let Ok(ms) = text.parse::<i64>() {
        return Ok(ms);
    }
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.timestamp_millis())
        .map_err(|_| bad(format!("`{name}` {} is neither an RFC 3339 time nor ms since the epoch", quoted(text))))
}

fn clock(params: &HashMap<String, String>) -> Result<Clock, ApiError> {
    match params.get("clock") {
        None => Ok(Clock::Happened),
        Some(c) => Clock::parse(c).ok_or_else(|| bad(format!("`clock` {} is not `happened` or `known`", quoted(c)))),
    }
}

fn params(p: Params) -> Result<HashMap<String, String>, ApiError> {
    let Query(p) = p.map_err(|e| bad(e.body_text()))?;
    if let Some(unknown) = p.keys().find(|k| !["at", "from", "to", "clock", "format"].contains(&k.as_str())) {
        return Err(bad(format!("unknown parameter {}", quoted(unknown))));
    }
    Ok(p)
}

impl TimeTravelState {
    /// Refuses an instant the plant cannot rebuild: before the raw readings' retention
    /// window, or ahead of the node's clock.
    fn in_window(&self, name: &str, at_ms: i64) -> Result<(), ApiError> {
        let now = (self.commands.clock)();
        let oldest = now.saturating_sub(i64::from(self.retention_days) * 86_400_000);
        if at_ms < oldest {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "out_of_window",
                format!("`{name}` is before the {} days of readings the plant keeps", self.retention_days),
            ));
        }
        if at_ms > now.saturating_add(MAX_AHEAD_MS) {
            return Err(bad(format!("`{name}` is in the future")));
        }
        Ok(())
    }

    fn range(&self, p: &HashMap<String, String>) -> Result<(i64, i64), ApiError> {
        let (from, to) = (instant(p, "from")?, instant(p, "to")?);
        self.in_window("from", from)?;
        self.in_window("to", to)?;
        if from >= to {
            return Err(bad("`from` must be before `to`"));
        }
        if to - from > MAX_RANGE_MS {
            return Err(ApiError::new(StatusCode::BAD_REQUEST, "range_too_long", "a range covers at most 24 hours"));
        }
        Ok((from, to))
    }

    async fn turn(&self) -> Result<tokio::sync::SemaphorePermit<'_>, ApiError> {
        match tokio::time::timeout(QUEUE_WAIT, self.permits.acquire()).await {
            Ok(Ok(permit)) => Ok(permit),
            _ => Err(ApiError::retry_later(2, "the plant is busy rebuilding other instants")),
        }
    }

    fn known_layout(&self) -> Option<PlantLayout> {
        self.layout.lock().ok().and_then(|l| l.clone())
    }

    fn keep_layout(&self, layout: Option<&PlantLayout>) {
        if let (Some(l), Ok(mut kept)) = (layout, self.layout.lock()) {
            *kept = Some(l.clone());
        }
    }
}

fn unavailable(e: anyhow::Error) -> ApiError {
    ApiError::retry_later(2, format!("the plant's log is unavailable: {e:#}"))
}

async fn floor(State(s): State<TimeTravelState>, p: Params) -> Result<Response, ApiError> {
    let p = params(p)?;
    let (at, clock) = (instant(&p, "at")?, clock(&p)?);
    s.in_window("at", at)?;
    let _turn = s.turn().await?;
    let client = s.commands.db.client().await.map_err(unavailable)?;
    let known = s.known_layout();
    let r = timetravel::reconstruct(&client, s.commands.plant_number, clock, at, known.as_ref())
        .await
        .map_err(unavailable)?;
    s.keep_layout(r.model.layout.as_ref());
    Ok(Json(timetravel::floor(&r.model, clock, at, r.through)).into_response())
}

async fn changes(State(s): State<TimeTravelState>, p: Params) -> Result<Response, ApiError> {
    let p = params(p)?;
    let ((from, to), clock) = (s.range(&p)?, clock(&p)?);
    let _turn = s.turn().await?;
    let client = s.commands.db.client().await.map_err(unavailable)?;
    let known = s.known_layout();
    let b = timetravel::between(&client, s.commands.plant_number, clock, from, to, known.as_ref())
        .await
        .map_err(unavailable)?;
    Ok(Json(b.diff).into_response())
}

async fn shift_report(State(s): State<TimeTravelState>, p: Params) -> Result<Response, ApiError> {
    let p = params(p)?;
    let ((from, to), clock) = (s.range(&p)?, clock(&p)?);
    let csv = match p.get("format").map(String::as_str) {
        None | Some("json") => false,
        Some("csv") => true,
        Some(other) => return Err(bad(format!("`format` {} is not `json` or `csv`", quoted(other)))),
    };
    let _turn = s.turn().await?;
    let client = s.commands.db.client().await.map_err(unavailable)?;
    let known = s.known_layout();
    let report = timetravel::shift_report(&client, s.commands.plant_number, clock, from, to, known.as_ref())
        .await
        .map_err(unavailable)?;
    if csv {
        let text =
            report.to_csv().map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()))?;
        return Ok(([(header::CONTENT_TYPE, "text/csv; charset=utf-8")], text).into_response());
    }
    Ok(Json(report).into_response())
}
