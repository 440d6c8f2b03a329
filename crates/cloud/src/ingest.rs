//! The forwarders' side of the cloud: where the cloud stands for a plant, and storing a
//! batch of the plant's events. Authenticated as that plant's forwarder: the plant in
//! the path (and in the batch) must be the one the credential is for.

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use eventlog::ImportError;
use forwarder::wire::{Ack, CONTENT_TYPE, WireBatch};

use crate::api::error::ApiError;
use crate::api::params::plant_number;
use crate::api::{ApiState, Caller};

pub async fn position(
    State(s): State<ApiState>,
    caller: Caller,
    Path(plant): Path<String>,
) -> Result<Json<Ack>, ApiError> {
    let plant = plant_number(&plant)?;
    caller.forward(plant)?;
    let client = s.db.client().await?;
    let p = eventlog::origin_position(&client, plant).await.map_err(import_error)?;
    Ok(Json(Ack { acknowledged: p.acknowledged, cloud_position: p.position, stored: 0, already_stored: 0 }))
}

pub async fn events(
    State(s): State<ApiState>,
    caller: Caller,
    Path(plant): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Ack>, ApiError> {
    let plant = plant_number(&plant)?;
    caller.forward(plant)?;
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    if content_type.split(';').next().unwrap_or("").trim() != CONTENT_TYPE {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_content_type",
            format!("content type {content_type:?} is not {CONTENT_TYPE}"),
        ));
    }
    let body = body.map_err(|r| {
        let code = if r.status() == StatusCode::PAYLOAD_TOO_LARGE { "body_too_large" } else { "unreadable_body" };
        ApiError::new(r.status(), code, r.body_text())
    })?;
    let (after, events) = WireBatch::decode(&body, plant).map_err(|e| match e {
        forwarder::wire::WireError::Plant { .. } => ApiError::forbidden(e.to_string()),
        _ => ApiError::bad("malformed_batch", e.to_string()),
    })?;
    let imported = eventlog::import_and_commit(&s.db, plant, after, &events).await.map_err(import_error)?;
    Ok(Json(Ack {
        acknowledged: imported.acknowledged,
        cloud_position: imported.position,
        stored: imported.stored,
        already_stored: imported.already_stored,
    }))
}

fn import_error(e: ImportError) -> ApiError {
    match e {
        ImportError::Gap { .. } => ApiError::new(StatusCode::CONFLICT, "gap", e.to_string()),
        ImportError::Invalid(_) | ImportError::Order { .. } | ImportError::Origin(_) => {
            ApiError::bad("malformed_batch", e.to_string())
        }
        ImportError::Database(ref db) if db.code().is_some_and(|c| c.code() == "23505") => {
            // The unique index refused a second copy: the batch raced another sender.
            ApiError::new(StatusCode::CONFLICT, "gap", "another batch of this plant was stored meanwhile")
        }
        ImportError::Database(ref db) if db.code().is_some_and(|c| c.code().starts_with("22")) => {
            // A value the database cannot hold: sending it again will not help.
            ApiError::bad("malformed_batch", format!("the batch holds a value the log cannot store: {e}"))
        }
        ImportError::Database(_) | ImportError::Pool(_) | ImportError::MissingPartitions(_) => {
            tracing::warn!(error = %e, "storing a forwarded batch failed");
            ApiError::unavailable("the cloud's log is unavailable; retry later")
        }
    }
}
