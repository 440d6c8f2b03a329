//! HTTP routes of the ingest API (axum). Thin: authentication, content negotiation and
//! status codes; validation and storage live in their own modules.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::routing::post;
use layout::Layout;
use serde::Serialize;

use super::json::{BodyError, check_json};
use super::machine_message;
use super::validate::{Checked, Rejection, Validator};
use super::writer::{Upload, WriteError, Writer};
use crate::api::{ApiError, bearer};
use crate::tokens::GatewayTokens;

/// Content type of a binary upload: the body is one batch in the `telemetry` encoding.
pub const BINARY_CONTENT_TYPE: &str = "application/x-floorwatch-batch";

/// Milliseconds since the Unix epoch, now. Injected so tests control time.
pub type Clock = Arc<dyn Fn() -> i64 + Send + Sync>;

/// The wall clock.
pub fn system_clock() -> Clock {
    Arc::new(|| chrono::Utc::now().timestamp_millis())
}

/// Limits of the ingest API.
#[derive(Debug, Clone, Copy)]
pub struct IngestConfig {
    pub max_body_bytes: usize,
    pub max_clock_skew_ms: i64,
    pub retention_days: u32,
}

impl Default for IngestConfig {
    fn default() -> Self {
        IngestConfig { max_body_bytes: 4 * 1024 * 1024, max_clock_skew_ms: 5_000, retention_days: 7 }
    }
}

/// Counters for progress displays and benchmarks.
#[derive(Debug, Default)]
pub struct IngestStats {
    pub uploads: AtomicU64,
    pub accepted_readings: AtomicU64,
    pub rejected_readings: AtomicU64,
    pub refused_uploads: AtomicU64,
    pub busy_responses: AtomicU64,
}

/// Everything a request handler needs.
#[derive(Clone)]
pub struct IngestState {
    /// The plant's log, for the rare writes that bypass the batching writer.
    pub db: eventlog::Database,
    pub layout: Arc<Layout>,
    pub plant_number: u16,
    pub tokens: Arc<GatewayTokens>,
    pub writer: Writer,
    pub config: IngestConfig,
    pub clock: Clock,
    pub stats: Arc<IngestStats>,
}

/// The answer to an upload.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct UploadOutcome {
    pub gateway: String,
    pub upload: String,
    pub accepted: usize,
    pub rejected: Vec<RejectedReading>,
    /// Log position of the stored readings; absent when none were accepted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub position: Option<i64>,
    /// True when this upload had already been stored (a retry).
    pub duplicate: bool,
}

/// One refused reading in an [`UploadOutcome`].
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct RejectedReading {
    pub index: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sensor: Option<String>,
    pub reason: String,
}

pub fn router(state: IngestState) -> Router {
    let limit = state.config.max_body_bytes;
    Router::new()
        .route("/v1/gateways/{gateway}/batches/{sequence}", post(upload_batch))
        .route("/v1/machine-telemetry", post(machine_message))
        .route("/v1/gateways/{gateway}/machine-events", post(machine_event))
        .route("/v1/gateways/{gateway}/production", post(super::production::production))
        .layer(DefaultBodyLimit::max(limit))
        .with_state(state)
}

fn body_or_error(body: Result<Bytes, BytesRejection>) -> Result<Bytes, ApiError> {
    body.map_err(|rejection| {
        let status = rejection.status();
        let code = if status == StatusCode::PAYLOAD_TOO_LARGE { "body_too_large" } else { "unreadable_body" };
        ApiError::new(status, code, rejection.body_text())
    })
}

enum BodyKind {
    Binary,
    Json,
}

fn body_kind(headers: &HeaderMap) -> Result<BodyKind, ApiError> {
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let essence = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    match essence.as_str() {
        BINARY_CONTENT_TYPE => Ok(BodyKind::Binary),
        "application/json" => Ok(BodyKind::Json),
        _ => Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_content_type",
            format!("content type {content_type:?} is not {BINARY_CONTENT_TYPE} or application/json"),
        )),
    }
}

async fn upload_batch(
    State(s): State<IngestState>,
    Path((gateway, sequence)): Path<(String, String)>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<UploadOutcome>, ApiError> {
    // Authenticate first: nothing from an unknown sender is read or stored.
    if !bearer(&headers).is_some_and(|token| s.tokens.verify(&gateway, token)) {
        return Err(ApiError::unauthorized(format!("unknown gateway {gateway:?} or wrong token")));
    }
    let line = s
        .layout
        .line_index(&gateway)
        .ok_or_else(|| ApiError::unauthorized(format!("gateway {gateway:?} is not in this plant's layout")))?;
    let sequence = sequence.parse::<u64>().map_err(|_| {
        ApiError::new(StatusCode::BAD_REQUEST, "bad_sequence", format!("sequence {sequence:?} is not a whole number"))
    })?;
    let kind = body_kind(&headers)?;
    let body = body_or_error(body)?;
    let validator = validator(&s, line);
    let key = format!("{gateway}:{sequence}");
    let checked = match kind {
        BodyKind::Binary => telemetry::decode(&body).map_err(BodyError::from).map(|r| validator.check_all(r)),
        BodyKind::Json => check_json(&body, &validator),
    };
    match checked {
        Ok(checked) => store(&s, gateway, key, checked, validator.window()).await,
        Err(e) => Err(refuse_body(&s, gateway, key, &body, e, validator.window()).await),
    }
}

async fn machine_message(
    State(s): State<IngestState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<UploadOutcome>, ApiError> {
    if let BodyKind::Binary = body_kind(&headers)? {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_content_type",
            "machine messages are JSON",
        ));
    }
    let body = body_or_error(body)?;
    let message = machine_message::parse(&body, &s.layout, s.plant_number).map_err(|e| {
        // The machine, and so its gateway, is unknown: refuse without storing.
        if bearer(&headers).is_none() {
            ApiError::unauthorized("a bearer token is required")
        } else {
            ApiError::new(StatusCode::BAD_REQUEST, "malformed_body", e.to_string())
        }
    })?;
    let gateway = s.layout.lines()[message.line].id.clone();
    if !bearer(&headers).is_some_and(|token| s.tokens.verify(&gateway, token)) {
        return Err(ApiError::unauthorized(format!("wrong token for gateway {gateway}")));
    }
    let validator = validator(&s, message.line);
    let checked = message.check(&s.layout, &validator);
    store(&s, gateway, message.key(), checked, validator.window()).await
}

/// A machine controller's report, relayed by its line's gateway.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct MachineEvent {
    /// Unique per gateway: a resent report is stored once.
    event_id: String,
    machine_id: String,
    kind: MachineEventKind,
    at: chrono::DateTime<chrono::Utc>,
}

#[derive(Debug, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
enum MachineEventKind {
    Failed,
}

/// The answer to a machine event.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct EventOutcome {
    pub position: i64,
    pub duplicate: bool,
}

async fn machine_event(
    State(s): State<IngestState>,
    Path(gateway): Path<String>,
    headers: HeaderMap,
    body: Result<axum::Json<MachineEvent>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<EventOutcome>, ApiError> {
    if !bearer(&headers).is_some_and(|token| s.tokens.verify(&gateway, token)) {
        return Err(ApiError::unauthorized(format!("unknown gateway {gateway:?} or wrong token")));
    }
    let Json(e) = body.map_err(|r| ApiError::new(StatusCode::BAD_REQUEST, "malformed_body", r.body_text()))?;
    let ok_id = (1..=100).contains(&e.event_id.len()) && e.event_id.chars().all(|c| c.is_ascii_graphic());
    if !ok_id {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "malformed_body",
            "event_id must be 1 to 100 printable characters",
        ));
    }
    let line = s.layout.line_index(&gateway);
    let machine = s.layout.machine_index(&e.machine_id);
    if line.is_none() || machine.is_none_or(|m| Some(s.layout.machines()[m].line) != line) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "unknown_machine",
            format!("machine {:?} is not on gateway {gateway}'s line", e.machine_id),
        ));
    }
    let (from, to) = validator(&s, line.unwrap_or_default()).window();
    if !(from..=to).contains(&e.at.timestamp_millis()) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_time",
            format!("{} is outside the accepted window", e.at),
        ));
    }
    let MachineEventKind::Failed = e.kind;
    let body = domain::events::MachineFailed {
        machine_id: e.machine_id.clone(),
        at: e.at,
        source: format!("gateway:{gateway}"),
    };
    let event = eventlog::NewEvent::json(
        domain::events::MACHINE_FAILED,
        1,
        &body,
        eventlog::Metadata::from_source(format!("gateway:{gateway}")),
    )
    .map_err(|err| ApiError::new(StatusCode::BAD_REQUEST, "malformed_body", err.to_string()))?;
    let stream = eventlog::StreamName::of("machine", &e.machine_id)
        .map_err(|err| ApiError::new(StatusCode::BAD_REQUEST, "unknown_machine", err.to_string()))?;
    let append = eventlog::Append::new(stream, eventlog::ExpectedVersion::Any, vec![event])
        .idempotent(format!("{gateway}:event:{}", e.event_id));
    match eventlog::append_and_commit(&s.db, &[append]).await {
        Ok(done) => Ok(Json(EventOutcome { position: done[0].last_position, duplicate: done[0].duplicate })),
        Err(err) => Err(ApiError::retry_later(2, format!("the plant's log is unavailable: {err}"))),
    }
}

pub(super) fn validator(s: &IngestState, line: usize) -> Validator<'_> {
    Validator {
        layout: &s.layout,
        line,
        now_ms: (s.clock)(),
        skew_ms: s.config.max_clock_skew_ms,
        retention_ms: i64::from(s.config.retention_days) * 86_400_000,
    }
}

async fn refuse_body(
    s: &IngestState,
    gateway: String,
    key: String,
    body: &[u8],
    e: BodyError,
    window: (i64, i64),
) -> ApiError {
    s.stats.refused_uploads.fetch_add(1, Ordering::Relaxed);
    let rejected = vec![Rejection { index: -1, sensor: None, ts_ms: None, value: None, reason: e.to_string() }];
    let upload = Upload { gateway, key, valid: Vec::new(), rejected, raw: Some(body.to_vec()), window_ms: window };
    // The body is kept as a dead letter; the answer is 400 either way.
    if let Err(store_error) = s.writer.store(upload).await {
        tracing::warn!(error = %store_error, "could not keep a malformed upload as a dead letter");
    }
    ApiError::new(StatusCode::BAD_REQUEST, "malformed_body", e.to_string())
}

async fn store(
    s: &IngestState,
    gateway: String,
    key: String,
    checked: Checked,
    window: (i64, i64),
) -> Result<Json<UploadOutcome>, ApiError> {
    let accepted = checked.valid.len();
    let rejected: Vec<RejectedReading> = checked
        .rejected
        .iter()
        .map(|r| RejectedReading { index: r.index, sensor: r.sensor.clone(), reason: r.reason.clone() })
        .collect();
    let upload = Upload {
        gateway: gateway.clone(),
        key: key.clone(),
        valid: checked.valid,
        rejected: checked.rejected,
        raw: None,
        window_ms: window,
    };
    match s.writer.store(upload).await {
        Ok(stored) => {
            s.stats.uploads.fetch_add(1, Ordering::Relaxed);
            if !stored.duplicate {
                s.stats.accepted_readings.fetch_add(accepted as u64, Ordering::Relaxed);
                s.stats.rejected_readings.fetch_add(rejected.len() as u64, Ordering::Relaxed);
            }
            Ok(Json(UploadOutcome {
                gateway,
                upload: key,
                accepted,
                rejected,
                position: stored.position,
                duplicate: stored.duplicate,
            }))
        }
        Err(WriteError::Busy) => {
            s.stats.busy_responses.fetch_add(1, Ordering::Relaxed);
            Err(ApiError::retry_later(1, WriteError::Busy.to_string()))
        }
        Err(e @ WriteError::Failed(_)) => Err(ApiError::retry_later(2, e.to_string())),
        Err(e @ WriteError::Refused(_)) => {
            Err(ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "refused_by_log", e.to_string()))
        }
    }
}
