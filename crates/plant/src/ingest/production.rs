//! Production reports: a line's gateway relays its machines' counters (parts made and
//! rejected, time planned and running) for a period, and each becomes a
//! `ProductionReported` event on the machine's stream, stored once per machine and period.

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use chrono::{DateTime, Utc};
use domain::production::{PRODUCTION_REPORTED, ProductionReported};
use eventlog::{Append, ExpectedVersion, Metadata, NewEvent, StreamName};
use serde::{Deserialize, Serialize};

use super::http::{IngestState, validator};
use crate::api::{ApiError, bearer, read_body};

/// Most reports one request may carry (a line's machines for one period, with room).
pub const MAX_REPORTS: usize = 1_000;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProductionBody {
    reports: Vec<ReportBody>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReportBody {
    machine_id: String,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    planned_s: f64,
    running_s: f64,
    parts: u64,
    rejects: u64,
    ideal_cycle_s: f64,
}

/// The answer to a production upload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProductionOutcome {
    pub stored: usize,
    pub duplicates: usize,
    pub position: Option<i64>,
}

pub async fn production(
    State(s): State<IngestState>,
    Path(gateway): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<ProductionOutcome>, ApiError> {
    // Authenticate from the headers before reading the body: an unknown sender costs no
    // more than its headers.
    if !bearer(&headers).is_some_and(|token| s.tokens.verify(&gateway, token)) {
        return Err(ApiError::unauthorized(format!("unknown gateway {gateway:?} or wrong token")));
    }
    let line = s
        .layout
        .line_index(&gateway)
        .ok_or_else(|| ApiError::unauthorized(format!("gateway {gateway:?} is not in this plant's layout")))?;
    let body = read_body(&headers, body, s.config.max_body_bytes).await?;
    let body: ProductionBody = serde_json::from_slice(&body)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "malformed_body", e.to_string()))?;
    let bad = |index: usize, message: String| {
        ApiError::new(StatusCode::BAD_REQUEST, "invalid_report", format!("report {index}: {message}"))
    };
    if body.reports.is_empty() || body.reports.len() > MAX_REPORTS {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_report",
            format!("an upload carries 1 to {MAX_REPORTS} reports, not {}", body.reports.len()),
        ));
    }
    let (from, to) = validator(&s, line).window();
    let mut appends = Vec::with_capacity(body.reports.len());
    for (i, r) in body.reports.into_iter().enumerate() {
        let on_line = s.layout.machine_index(&r.machine_id).is_some_and(|m| s.layout.machines()[m].line == line);
        if !on_line {
            return Err(bad(i, format!("machine {:?} is not on gateway {gateway}'s line", r.machine_id)));
        }
        if !(from..=to).contains(&r.to.timestamp_millis()) || r.from.timestamp_millis() < from {
            return Err(bad(i, format!("{} – {} is outside the accepted window", r.from, r.to)));
        }
        let event = ProductionReported {
            machine_id: r.machine_id,
            from: r.from,
            to: r.to,
            planned_s: r.planned_s,
            running_s: r.running_s,
            parts: r.parts,
            rejects: r.rejects,
            ideal_cycle_s: r.ideal_cycle_s,
            source: format!("gateway:{gateway}"),
        };
        event.check().map_err(|e| bad(i, e.to_string()))?;
        let key = format!("{gateway}:production:{}:{}", event.machine_id, event.from.timestamp_millis());
        let stream = StreamName::of("machine", &event.machine_id).map_err(|e| bad(i, e.to_string()))?;
        let new = NewEvent::json(PRODUCTION_REPORTED, 1, &event, Metadata::from_source(format!("gateway:{gateway}")))
            .map_err(|e| bad(i, e.to_string()))?;
        appends.push(Append::new(stream, ExpectedVersion::Any, vec![new]).idempotent(key));
    }
    match eventlog::append_and_commit(&s.db, &appends).await {
        Ok(done) => {
            let duplicates = done.iter().filter(|a| a.duplicate).count();
            Ok(Json(ProductionOutcome {
                stored: done.len() - duplicates,
                duplicates,
                position: done.iter().filter(|a| !a.duplicate).map(|a| a.last_position).max(),
            }))
        }
        Err(e) if e.is_retryable() => Err(ApiError::retry_later(2, format!("the plant's log is unavailable: {e}"))),
        Err(e) => Err(ApiError::new(StatusCode::BAD_REQUEST, "invalid_report", e.to_string())),
    }
}
