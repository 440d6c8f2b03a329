//! Live updates as Server-Sent Events (`GET /v1/events`).
//!
//! Each event is a page of read-model rows that changed (`plants`, `anomalies`,
//! `maintenance`, `maintenance_log`, `kpi_hour`), with `id` = the cloud position it is
//! complete through: every change at or before it has been sent. A client that reconnects
//! with `Last-Event-ID` (or `?after=`) gets everything that changed after it, so it misses
//! nothing; a client that connects without one starts from now. The first event is always
//! `ready`, naming the position the stream starts after. Rows carry their current state: a row changed twice in a page is sent once.
//!
//! A page is read in one repeatable-read snapshot and goes only as far as every projection
//! has read (their `read_through` in the log's checkpoints), so a row a slower projection has yet to write can
//! never fall behind an id already sent.

use std::convert::Infallible;
use std::time::Duration;

use anyhow::Result;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use eventlog::Database;
use futures_util::Stream;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use tokio::sync::watch;
use tokio_postgres::IsolationLevel;

use super::error::ApiError;
use super::{ApiState, Caller, Params, params, queries};
use crate::operations::OPERATIONS;
use crate::telemetry::TELEMETRY;

/// Rows per table in one event at most.
const PAGE_ROWS: i64 = 500;
/// Look at the read models this often even without a notification (a safety net).
const RECHECK: Duration = Duration::from_secs(5);

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventsParams {
    plant: Option<String>,
    after: Option<String>,
}

fn position(name: &str, s: &str) -> Result<i64, ApiError> {
    s.trim().parse::<i64>().ok().filter(|p| *p >= 0).ok_or_else(|| {
        params::bad(format!(
            "{name} {:?} is not a cloud position (a whole number, 0 or more)",
            s.chars().take(40).collect::<String>()
        ))
    })
}

pub async fn events(
    State(s): State<ApiState>,
    caller: Caller,
    headers: HeaderMap,
    Params(p): Params<EventsParams>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let asked = params::plants(p.plant.as_deref())?;
    let scope = caller.readable(asked.as_ref())?;
    let resume = match headers.get("last-event-id") {
        Some(v) => Some(position("Last-Event-ID", v.to_str().map_err(|_| params::bad("Last-Event-ID is not text"))?)?),
        None => p.after.as_deref().map(|a| position("after", a)).transpose()?,
    };
    let start = match resume {
        Some(n) => n,
        None => projected(&s.db).await?,
    };
    // A `ready` event first, at once: the client knows the stream is open and where it
    // starts, whether or not anything changes soon.
    let state = Follow {
        db: s.db.clone(),
        scope,
        after: start,
        changes: s.changes.clone(),
        closing: s.closing.clone(),
        ready: true,
    };
    let stream = futures_util::stream::unfold(state, |mut st| async move {
        let event = st.next().await?;
        Some((Ok(event), st))
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

struct Follow {
    db: Database,
    scope: Option<Vec<i16>>,
    after: i64,
    changes: watch::Receiver<i64>,
    closing: watch::Receiver<bool>,
    ready: bool,
}

impl Follow {
    /// The next event; `None` ends the stream (the node is stopping).
    async fn next(&mut self) -> Option<Event> {
        if std::mem::take(&mut self.ready) {
            let data = json!({ "position": self.after }).to_string();
            return Some(Event::default().event("ready").id(self.after.to_string()).data(data));
        }
        loop {
            if *self.closing.borrow() {
                return None;
            }
            match changes_since(&self.db, self.scope.as_deref(), self.after).await {
                Ok(Some((through, Some(body)))) => {
                    self.after = through;
                    return Some(Event::default().event("changes").id(through.to_string()).data(body.to_string()));
                }
                Ok(Some((through, None))) => self.after = through,
                Ok(None) => {
                    tokio::select! {
                        _ = tokio::time::timeout(RECHECK, self.changes.changed()) => {}
                        () = stopping(&mut self.closing) => {}
                    }
                }
                Err(e) => {
                    tracing::debug!(error = format!("{e:#}"), "live updates: reading changes failed; retrying");
                    tokio::select! {
                        () = tokio::time::sleep(Duration::from_secs(1)) => {}
                        () = stopping(&mut self.closing) => {}
                    }
                }
            }
        }
    }
}

/// Returns once the node is stopping (never, when nothing can stop it).
async fn stopping(closing: &mut watch::Receiver<bool>) {
    if closing.wait_for(|c| *c).await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// The position both projections have read through: every read-model row for an event
/// at or before it is committed (0 before both have started).
pub async fn projected(db: &Database) -> Result<i64, ApiError> {
    let client = db.client().await?;
    Ok(applied(&client).await?)
}

async fn applied(client: &impl eventlog::GenericClient) -> Result<i64> {
    let (position, all_started) = eventlog::read_through(client, &[TELEMETRY, OPERATIONS]).await?;
    Ok(if all_started { position } else { 0 })
}

type Table = (&'static str, &'static str, fn(&tokio_postgres::Row) -> Value);

const TABLES: &[Table] = &[
    ("plants", include_str!("../../sql/api/since_plants.sql"), plant_row),
    ("anomalies", include_str!("../../sql/api/since_anomalies.sql"), anomaly_row),
    ("maintenance", include_str!("../../sql/api/since_maintenance.sql"), maintenance_row),
    ("maintenance_log", include_str!("../../sql/api/since_log.sql"), log_row),
    ("kpi_hour", include_str!("../../sql/api/since_kpi_hour.sql"), kpi_row),
];

fn plant_row(r: &tokio_postgres::Row) -> Value {
    json!({ "plant": r.get::<_, i16>(0), "readings": r.get::<_, i64>(1),
            "newest_reading": r.get::<_, Option<chrono::DateTime<chrono::Utc>>>(2) })
}

fn anomaly_row(r: &tokio_postgres::Row) -> Value {
    serde_json::to_value(queries::anomaly(r)).unwrap_or(Value::Null)
}

fn maintenance_row(r: &tokio_postgres::Row) -> Value {
    serde_json::to_value(queries::maintenance_row(r)).unwrap_or(Value::Null)
}

fn log_row(r: &tokio_postgres::Row) -> Value {
    serde_json::to_value(queries::log_row(r)).unwrap_or(Value::Null)
}

fn kpi_row(r: &tokio_postgres::Row) -> Value {
    let names = [
        "readings",
        "sensor_hours",
        "anomalies_minor",
        "anomalies_major",
        "anomalies_critical",
        "acknowledged",
        "ack_ms",
        "maintenance_performed",
        "failures",
        "predictions",
        "predicted_millidays",
        "planned_ms",
        "running_ms",
        "parts",
        "good_parts",
        "ideal_ms",
    ];
    let mut m = Map::new();
    m.insert("plant".into(), json!(r.get::<_, i16>(0)));
    m.insert("line_id".into(), json!(r.get::<_, String>(1)));
    m.insert("machine_type".into(), json!(r.get::<_, String>(2)));
    m.insert("hour".into(), json!(r.get::<_, chrono::DateTime<chrono::Utc>>(3)));
    for (i, n) in names.iter().enumerate() {
        m.insert((*n).into(), json!(r.get::<_, i64>(4 + i)));
    }
    Value::Object(m)
}

/// What changed after `after`, up to a position every projection has applied: that
/// position and the rows (`None` when none are the caller's); `None` when the read models
/// have not moved past `after`.
pub async fn changes_since(db: &Database, scope: Option<&[i16]>, after: i64) -> Result<Option<(i64, Option<Value>)>> {
    let mut client = db.client().await?;
    let tx = client.build_transaction().isolation_level(IsolationLevel::RepeatableRead).read_only(true).start().await?;
    let applied = applied(&tx).await?;
    if applied <= after {
        return Ok(None);
    }
    let mut through = applied;
    let mut pages = Vec::with_capacity(TABLES.len());
    for (name, sql, _) in TABLES {
        let stmt = tx.prepare_cached(sql).await?;
        let mut rows = tx.query(&stmt, &[&after, &scope, &PAGE_ROWS]).await?;
        let position_col = rows.first().map_or(0, |r| r.len() - 1);
        if rows.len() as i64 == PAGE_ROWS {
            let last: i64 = rows.last().map_or(after, |r| r.get(position_col));
            if last - 1 > after {
                through = through.min(last - 1);
            } else {
                // More than a page of rows at one position: send them all at once.
                rows = tx.query(&stmt, &[&after, &scope, &i64::MAX]).await?;
                rows.retain(|r| r.get::<_, i64>(position_col) <= last);
                through = through.min(last);
            }
        }
        pages.push((name, rows, position_col));
    }
    tx.commit().await?;
    let mut body = Map::new();
    body.insert("position".into(), json!(through));
    let mut any = false;
    for ((name, rows, col), (_, _, to_json)) in pages.into_iter().zip(TABLES) {
        let items: Vec<Value> = rows.iter().filter(|r| r.get::<_, i64>(col) <= through).map(to_json).collect();
        any |= !items.is_empty();
        body.insert((*name).into(), Value::Array(items));
    }
    // Nothing of the caller's plants changed: move on quietly, without an event.
    Ok(Some((through, any.then_some(Value::Object(body)))))
}
