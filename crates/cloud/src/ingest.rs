//! The forwarders' side of the cloud: where the cloud stands for a plant, and storing a
//! batch of the plant's events. Authenticated as that plant's forwarder: the plant in
//! the path (and in the batch) must be the one the credential is for.
//!
//! A forwarder keeps a few requests in flight, each following the one before, and they
//! may reach the log out of turn. A batch that follows events not stored yet waits
//! ([`Sequencer`]) while this node is storing that plant's batches, and is checked
//! meanwhile; a batch whose predecessor does not come is refused as a gap, as before.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use eventlog::ImportError;
use forwarder::wire::{Ack, CONTENT_TYPE, WireBatch};
use tokio::sync::watch;
use tokio::time::Instant;

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
    let turn = s.sequencer.plant(plant);
    let started = Instant::now();
    let imported = loop {
        let result = {
            let _storing = turn.storing();
            eventlog::import_and_commit(&s.db, plant, after, &events).await
        };
        match result {
            Err(ImportError::Gap { acknowledged, .. }) if turn.wait_beyond(acknowledged, started).await => {}
            result => break result.map_err(import_error)?,
        }
    };
    turn.stored(imported.acknowledged);
    Ok(Json(Ack {
        acknowledged: imported.acknowledged,
        cloud_position: imported.position,
        stored: imported.stored,
        already_stored: imported.already_stored,
    }))
}

/// Longest a batch waits for the ones before it.
const TURN_WAIT: Duration = Duration::from_secs(10);
/// How long a batch waits for a predecessor while none of the plant's is being stored
/// here (it may still be on its way).
const IN_TRANSIT: Duration = Duration::from_secs(1);

/// Each plant's turn at the log on this node, so a batch that arrived before its
/// predecessor waits for it.
#[derive(Debug, Default)]
pub struct Sequencer {
    plants: Mutex<HashMap<u16, Arc<Turn>>>,
}

impl Sequencer {
    fn plant(&self, plant: u16) -> Arc<Turn> {
        let mut plants = self.plants.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        plants.entry(plant).or_insert_with(|| Arc::new(Turn { stored: watch::channel(0).0, storing: 0.into() })).clone()
    }
}

/// One plant's: what is stored through, and how many of its batches are being stored.
#[derive(Debug)]
struct Turn {
    stored: watch::Sender<i64>,
    storing: AtomicUsize,
}

struct Storing<'a>(&'a AtomicUsize);

impl Drop for Storing<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Turn {
    fn storing(&self) -> Storing<'_> {
        self.storing.fetch_add(1, Ordering::SeqCst);
        Storing(&self.storing)
    }

    fn stored(&self, acknowledged: i64) {
        self.stored.send_if_modified(|a| {
            let newer = acknowledged > *a;
            *a = (*a).max(acknowledged);
            newer
        });
    }

    /// Waits until the plant's log is stored beyond `acknowledged` (what a refused import
    /// saw): true when it is, false when no batch of the plant was stored here for
    /// [`IN_TRANSIT`] or the batch has waited [`TURN_WAIT`] since `started`.
    async fn wait_beyond(&self, acknowledged: i64, started: Instant) -> bool {
        let mut rx = self.stored.subscribe();
        let mut idle_since = Instant::now();
        loop {
            if *rx.borrow_and_update() > acknowledged {
                return true;
            }
            let now = Instant::now();
            if self.storing.load(Ordering::SeqCst) > 0 {
                idle_since = now;
            }
            if now >= started + TURN_WAIT || now >= idle_since + IN_TRANSIT {
                return false;
            }
            let _ = tokio::time::timeout(Duration::from_millis(20), rx.changed()).await;
        }
    }
}

fn import_error(e: ImportError) -> ApiError {
    match e {
        ImportError::Gap { .. } => ApiError::new(StatusCode::CONFLICT, "gap", e.to_string()),
        ImportError::Invalid(_) | ImportError::Order { .. } | ImportError::Origin(_) => {
            ApiError::bad("malformed_batch", e.to_string())
        }
        ImportError::Database(ref db) if db.code().is_some_and(|c| c.code() == "23505") => {
            let constraint = db.as_db_error().and_then(|d| d.constraint()).unwrap_or("");
            if constraint.ends_with("origin_position") {
                // The unique index refused a second copy: the batch raced another sender.
                ApiError::new(StatusCode::CONFLICT, "gap", "another batch of this plant was stored meanwhile")
            } else {
                // An event of the plant already holds this stream's version: a plant's own
                // log never has two, so the batch is wrong, and sending it again (as a
                // sender told of a race would) can never store it.
                ApiError::bad("malformed_batch", format!("the batch repeats a stream version already stored: {e}"))
            }
        }
        ImportError::Database(ref db) if db.code().is_some_and(|c| c.code().starts_with("22")) => {
            // A value the database cannot hold: sending it again will not help.
            let reason = db.as_db_error().map_or_else(|| db.to_string(), |d| d.message().to_owned());
            ApiError::bad("malformed_batch", format!("the batch holds a value the log cannot store: {reason}"))
        }
        ImportError::Database(_) | ImportError::Pool(_) | ImportError::MissingPartitions(_) => {
            tracing::warn!(error = %e, "storing a forwarded batch failed");
            ApiError::unavailable("the cloud's log is unavailable; retry later")
        }
    }
}
