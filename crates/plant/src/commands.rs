//! The command API: people acknowledge, shelve and annotate anomalies, and schedule and
//! record maintenance. Each command loads its aggregate's stream, lets the domain rules
//! decide, and appends the resulting events under the stream's expected version; the
//! client's `command_id` is the idempotency key, so a resent command is answered, not
//! applied twice.
//!
//! Who acts is who signed the request: each person's own credential (`access`), checked
//! before the body is read, for its role and this plant. The name written into the
//! events is the credential's, never a field of the body.

use std::sync::Arc;

use access::{Authenticator, Credential, Denied, Permission, Role};
use axum::extract::rejection::JsonRejection;
use axum::extract::{Extension, Path, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::{Next, from_fn_with_state};
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use domain::Rejection;
use domain::anomaly::{self, AnomalyCommand, AnomalyEvent, ShelvePolicy};
use domain::events::{ANOMALY, MAINTENANCE, OrderKind};
use domain::workorder::{self, OrderCommand, OrderEvent};
use eventlog::{Append, AppendError, Database, ExpectedVersion, Metadata, NewEvent, StreamName};
use layout::Layout;
use serde::{Deserialize, Serialize};

use crate::api::{ApiError, bearer};
use crate::ingest::Clock;

/// Everything a command handler needs.
#[derive(Clone)]
pub struct CommandState {
    pub db: Database,
    pub layout: Arc<Layout>,
    pub plant_number: u16,
    /// Finds the credential a bearer token proves (people's credentials in this plant's
    /// database).
    pub auth: Arc<Authenticator>,
    pub clock: Clock,
    pub shelve: ShelvePolicy,
}

/// The person a request was authenticated as.
#[derive(Debug, Clone)]
pub struct Actor {
    /// The name written into events (`by`).
    pub name: String,
    /// The name and the credential, for the events' metadata and the audit trail.
    pub credential: String,
}

/// The answer to an accepted command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Accepted {
    /// Log position of the command's last event.
    pub position: i64,
    /// The command had been carried out before (same `command_id`).
    pub duplicate: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Acknowledge {
    command_id: String,
    #[serde(default)]
    note: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Shelve {
    command_id: String,
    until: DateTime<Utc>,
    #[serde(default)]
    note: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Note {
    command_id: String,
    text: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Schedule {
    command_id: String,
    kind: OrderKind,
    scheduled_for: DateTime<Utc>,
    #[serde(default)]
    note: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Perform {
    command_id: String,
    #[serde(default)]
    order_id: Option<String>,
    #[serde(default)]
    performed_at: Option<DateTime<Utc>>,
    #[serde(default)]
    note: String,
}

/// The permission each group of routes needs: the roles that hold it are `access`'s rule.
pub fn router(state: CommandState) -> Router {
    let gate = |permission: Permission| from_fn_with_state((state.clone(), permission), signed_in);
    let anomalies = Router::new()
        .route("/v1/commands/anomalies/{anomaly_id}/acknowledge", post(acknowledge))
        .route("/v1/commands/anomalies/{anomaly_id}/shelve", post(shelve))
        .route("/v1/commands/anomalies/{anomaly_id}/notes", post(add_note))
        .route_layer(gate(Permission::ActOnAnomalies));
    let maintenance = Router::new()
        .route("/v1/commands/machines/{machine_id}/maintenance/schedule", post(schedule))
        .route("/v1/commands/machines/{machine_id}/maintenance/perform", post(perform))
        .route_layer(gate(Permission::RecordMaintenance));
    let me = Router::new().route("/v1/me", get(me)).route_layer(gate(Permission::ReadPlantData));
    anomalies.merge(maintenance).merge(me).with_state(state)
}

/// Authenticates a request from its headers alone, before its body is read: the
/// credential must exist, not be revoked (401), and hold `permission` on this plant (403).
pub(crate) async fn signed_in(
    State((s, permission)): State<(CommandState, Permission)>,
    mut request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let credential = authenticate(&s, request.headers()).await?;
    credential.authorize(permission, Some(s.plant_number)).map_err(|denied| match denied {
        Denied::Revoked => ApiError::unauthorized(denied.to_string()),
        Denied::Role { .. } | Denied::Plant { .. } => {
            ApiError::new(StatusCode::FORBIDDEN, "forbidden", denied.to_string())
        }
    })?;
    request.extensions_mut().insert(Actor { name: credential.label.clone(), credential: credential.actor() });
    request.extensions_mut().insert(credential);
    Ok(next.run(request).await)
}

/// The credential a request's bearer token proves.
pub async fn authenticate(s: &CommandState, headers: &HeaderMap) -> Result<Credential, ApiError> {
    let Some(token) = bearer(headers) else {
        return Err(ApiError::unauthorized("sign in: a bearer token (a person's credential) is required"));
    };
    match s.auth.authenticate(token).await {
        Ok(Some(c)) => Ok(c),
        Ok(None) => Err(ApiError::unauthorized("unknown or wrong credential")),
        Err(e) if e.is_transient() => Err(unavailable(e)),
        Err(e) => Err(ApiError::unauthorized(e.to_string())),
    }
}

/// Who the request's credential belongs to (the app shows it after signing in).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Me {
    pub id: String,
    pub name: String,
    pub role: Role,
    pub plant: u16,
}

async fn me(State(s): State<CommandState>, Extension(c): Extension<Credential>) -> Json<Me> {
    Json(Me { id: c.id, name: c.label, role: c.role, plant: s.plant_number })
}

fn body<T>(body: Result<Json<T>, JsonRejection>) -> Result<T, ApiError> {
    body.map(|Json(b)| b).map_err(|e| {
        let text = e.body_text();
        let message = if text.contains("unknown field `by`") {
            "`by` is not accepted: who acts is the person the request's credential belongs to".to_owned()
        } else {
            text
        };
        ApiError::new(StatusCode::BAD_REQUEST, "invalid_body", message)
    })
}

fn check_command_id(id: &str) -> Result<String, ApiError> {
    let ok = (8..=64).contains(&id.len()) && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok {
        Ok(format!("cmd:{id}"))
    } else {
        Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_command_id",
            "command_id must be 8 to 64 letters, digits, - or _",
        ))
    }
}

fn rejected(r: Rejection) -> ApiError {
    match r {
        Rejection::NotFound(m) => ApiError::new(StatusCode::NOT_FOUND, "not_found", m),
        Rejection::Rule(m) => ApiError::new(StatusCode::CONFLICT, "rejected", m),
        Rejection::Invalid(m) => ApiError::new(StatusCode::BAD_REQUEST, "invalid", m),
    }
}

fn unavailable(e: impl std::fmt::Display) -> ApiError {
    ApiError::retry_later(2, format!("the plant's log is unavailable: {e}"))
}

/// A command against one aggregate, decided and appended with retries on conflict.
async fn run<E>(
    s: &CommandState,
    stream: StreamName,
    key: String,
    actor: &Actor,
    decide: impl Fn(&[eventlog::RecordedEvent], DateTime<Utc>) -> Result<Vec<E>, ApiError>,
    encode: impl Fn(&E) -> (&'static str, serde_json::Value),
) -> Result<Json<Accepted>, ApiError> {
    let client = s.db.client().await.map_err(unavailable)?;
    if let Some(done) = eventlog::find_idempotency_key(&client, &key).await.map_err(unavailable)? {
        return Ok(Json(Accepted { position: done.last_position, duplicate: true }));
    }
    drop(client);
    for _ in 0..5 {
        let client = s.db.client().await.map_err(unavailable)?;
        let history = eventlog::read_stream(&client, &stream, 0, 100_000).await.map_err(unavailable)?;
        drop(client);
        let now = DateTime::from_timestamp_millis((s.clock)()).unwrap_or_default();
        let decided = decide(&history, now)?;
        let metadata = Metadata {
            correlation_id: key.strip_prefix("cmd:").map(str::to_owned),
            actor: Some(actor.credential.clone()),
            source: Some("command-api".into()),
            ..Metadata::default()
        };
        let events = decided
            .iter()
            .map(|e| {
                let (event_type, body) = encode(e);
                NewEvent::json(event_type, 1, &body, metadata.clone())
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "invalid", e.to_string()))?;
        let expected = history.last().map_or(ExpectedVersion::NoStream, |e| ExpectedVersion::Exact(e.version));
        let append = Append::new(stream.clone(), expected, events).idempotent(key.clone());
        match eventlog::append_and_commit(&s.db, &[append]).await {
            Ok(done) => return Ok(Json(Accepted { position: done[0].last_position, duplicate: done[0].duplicate })),
            Err(AppendError::Conflict { .. }) => continue, // someone appended first: decide again
            Err(AppendError::Invalid(e)) => {
                return Err(ApiError::new(StatusCode::BAD_REQUEST, "invalid", e.to_string()));
            }
            Err(e) => return Err(unavailable(e)),
        }
    }
    Err(ApiError::retry_later(1, "the anomaly kept changing while deciding; try again"))
}

fn anomaly_stream(id: &str) -> Result<StreamName, ApiError> {
    StreamName::of(ANOMALY, id)
        .map_err(|_| ApiError::new(StatusCode::NOT_FOUND, "not_found", format!("no anomaly {id:?}")))
}

fn fold_anomaly(history: &[eventlog::RecordedEvent]) -> Result<anomaly::Anomaly, ApiError> {
    let mut state = anomaly::Anomaly::default();
    for e in history {
        let body = e.json::<serde_json::Value>().map_err(unavailable)?;
        if let Some(ev) = AnomalyEvent::from_json(&e.event_type, &body).map_err(unavailable)? {
            anomaly::evolve(&mut state, &ev);
        }
    }
    Ok(state)
}

async fn anomaly_command(
    s: CommandState,
    id: String,
    key: String,
    command: AnomalyCommand,
    actor: Actor,
) -> Result<Json<Accepted>, ApiError> {
    let stream = anomaly_stream(&id)?;
    run(
        &s,
        stream,
        key,
        &actor,
        |h, now| anomaly::decide(&fold_anomaly(h)?, &id, &command, now, s.shelve).map_err(rejected),
        |e: &AnomalyEvent| (e.event_type(), e.to_json()),
    )
    .await
}

async fn acknowledge(
    State(s): State<CommandState>,
    Path(id): Path<String>,
    Extension(actor): Extension<Actor>,
    b: Result<Json<Acknowledge>, JsonRejection>,
) -> Result<Json<Accepted>, ApiError> {
    let b = body(b)?;
    let key = check_command_id(&b.command_id)?;
    let command = AnomalyCommand::Acknowledge { by: actor.name.clone(), note: b.note };
    anomaly_command(s, id, key, command, actor).await
}

async fn shelve(
    State(s): State<CommandState>,
    Path(id): Path<String>,
    Extension(actor): Extension<Actor>,
    b: Result<Json<Shelve>, JsonRejection>,
) -> Result<Json<Accepted>, ApiError> {
    let b = body(b)?;
    let key = check_command_id(&b.command_id)?;
    let command = AnomalyCommand::Shelve { by: actor.name.clone(), until: b.until, note: b.note };
    anomaly_command(s, id, key, command, actor).await
}

async fn add_note(
    State(s): State<CommandState>,
    Path(id): Path<String>,
    Extension(actor): Extension<Actor>,
    b: Result<Json<Note>, JsonRejection>,
) -> Result<Json<Accepted>, ApiError> {
    let b = body(b)?;
    let key = check_command_id(&b.command_id)?;
    let command = AnomalyCommand::AddNote { by: actor.name.clone(), text: b.text };
    anomaly_command(s, id, key, command, actor).await
}

fn fold_orders(history: &[eventlog::RecordedEvent]) -> Result<workorder::MachineOrders, ApiError> {
    let mut state = workorder::MachineOrders::default();
    for e in history {
        let body = e.json::<serde_json::Value>().map_err(unavailable)?;
        if let Some(ev) = OrderEvent::from_json(&e.event_type, &body).map_err(unavailable)? {
            workorder::evolve(&mut state, &ev);
        }
    }
    Ok(state)
}

async fn order_command(
    s: CommandState,
    machine_id: String,
    key: String,
    command: OrderCommand,
    actor: Actor,
) -> Result<Json<Accepted>, ApiError> {
    if s.layout.machine_by_id(&machine_id).is_none() {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no machine {machine_id:?} in this plant"),
        ));
    }
    let stream = StreamName::of(MAINTENANCE, &machine_id)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "invalid", e.to_string()))?;
    run(
        &s,
        stream,
        key,
        &actor,
        |h, now| workorder::decide(&fold_orders(h)?, &machine_id, &command, now).map_err(rejected),
        |e: &OrderEvent| (e.event_type(), e.to_json()),
    )
    .await
}

async fn schedule(
    State(s): State<CommandState>,
    Path(machine_id): Path<String>,
    Extension(actor): Extension<Actor>,
    b: Result<Json<Schedule>, JsonRejection>,
) -> Result<Json<Accepted>, ApiError> {
    let b = body(b)?;
    let key = check_command_id(&b.command_id)?;
    let by = actor.name.clone();
    let command = OrderCommand::Schedule { kind: b.kind, scheduled_for: b.scheduled_for, by, note: b.note };
    order_command(s, machine_id, key, command, actor).await
}

async fn perform(
    State(s): State<CommandState>,
    Path(machine_id): Path<String>,
    Extension(actor): Extension<Actor>,
    b: Result<Json<Perform>, JsonRejection>,
) -> Result<Json<Accepted>, ApiError> {
    let b = body(b)?;
    let key = check_command_id(&b.command_id)?;
    let by = actor.name.clone();
    let command = OrderCommand::Perform { order_id: b.order_id, performed_at: b.performed_at, by, note: b.note };
    order_command(s, machine_id, key, command, actor).await
}
