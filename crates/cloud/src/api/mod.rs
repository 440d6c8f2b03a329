//! The cloud's HTTP API (axum): the forwarders' ingest routes and the query API the
//! manager's app reads, with live updates as Server-Sent Events and an OpenAPI document.
//!
//! Handlers are thin: authenticate ([`Caller`]), check parameters ([`params`]), call a
//! query ([`queries`]), answer JSON. Every route is registered through [`Routes`], which
//! keeps the list the OpenAPI test compares with the document.

pub mod auth;
pub mod error;
pub mod openapi;
pub mod params;
pub mod queries;
mod routes;
pub mod sse;

use std::sync::Arc;
use std::time::Duration;

use access::Authenticator;
use axum::Router;
use axum::extract::{DefaultBodyLimit, FromRequestParts, Query};
use axum::http::Method;
use axum::http::request::Parts;
use axum::routing::{MethodRouter, get, post};
use eventlog::Database;
use serde::de::DeserializeOwned;
use tokio::sync::watch;

pub use auth::Caller;
use error::ApiError;

use crate::CloudConfig;

/// Everything a handler needs.
#[derive(Clone)]
pub struct ApiState {
    pub db: Database,
    pub auth: Arc<Authenticator>,
    pub config: CloudConfig,
    /// The newest position the read models announced (NOTIFY `cloud_readmodel`).
    pub changes: watch::Receiver<i64>,
    /// Becomes true when the node stops: live-update streams end, so the server can.
    pub closing: watch::Receiver<bool>,
    /// Orders each plant's forwarded batches that arrive out of turn.
    pub sequencer: Arc<crate::ingest::Sequencer>,
}

impl ApiState {
    pub fn new(db: Database, config: CloudConfig, changes: watch::Receiver<i64>) -> Self {
        let (_, closing) = watch::channel(false);
        Self::with_closing(db, config, changes, closing)
    }

    pub fn with_closing(
        db: Database,
        config: CloudConfig,
        changes: watch::Receiver<i64>,
        closing: watch::Receiver<bool>,
    ) -> Self {
        let auth = Arc::new(Authenticator::new(db.clone(), Duration::from_millis(config.auth_cache_ms)));
        ApiState { db, auth, config, changes, closing, sequencer: Arc::default() }
    }
}

/// Query parameters of type `T` (unknown ones refused), or a 400 naming the problem.
pub struct Params<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for Params<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(v)| Params(v))
            .map_err(|r| ApiError::bad("bad_parameter", r.body_text()))
    }
}

/// A route: its method and path as the OpenAPI document writes them.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Route {
    pub method: Method,
    pub path: &'static str,
}

/// Builds the router and remembers every route added.
pub struct Routes {
    router: Router<ApiState>,
    list: Vec<Route>,
}

impl Routes {
    fn new() -> Self {
        Routes { router: Router::new(), list: Vec::new() }
    }

    fn add(mut self, method: Method, path: &'static str, handler: MethodRouter<ApiState>) -> Self {
        self.router = self.router.route(path, handler);
        self.list.push(Route { method, path });
        self
    }
}

/// Every route of the API, with the state bound, and the list of them.
pub fn router(state: ApiState) -> (Router, Vec<Route>) {
    let limit = state.config.max_batch_bytes;
    let r = Routes::new()
        .add(Method::GET, "/v1/health", get(routes::health))
        .add(Method::GET, "/v1/openapi.json", get(openapi::document))
        .add(Method::GET, "/v1/ingest/plants/{plant}/position", get(crate::ingest::position))
        .add(Method::POST, "/v1/ingest/plants/{plant}/events", post(crate::ingest::events))
        .add(Method::GET, "/v1/ingest/plants/{plant}/models/active", get(crate::train::active_for_plant))
        .add(Method::GET, "/v1/plants", get(routes::plants))
        .add(Method::GET, "/v1/plants/{plant}/lines", get(routes::lines))
        .add(Method::GET, "/v1/plants/{plant}/machines", get(routes::machines))
        .add(Method::GET, "/v1/machines/{machine}", get(routes::machine))
        .add(Method::GET, "/v1/machines/{machine}/trend", get(routes::trend))
        .add(Method::GET, "/v1/machines/{machine}/predictions", get(routes::predictions))
        .add(Method::GET, "/v1/kpis", get(routes::kpis))
        .add(Method::GET, "/v1/anomalies", get(routes::anomalies))
        .add(Method::GET, "/v1/maintenance", get(routes::maintenance))
        .add(Method::GET, "/v1/maintenance/log", get(routes::maintenance_log))
        .add(Method::GET, "/v1/models", get(routes::models))
        .add(Method::GET, "/v1/events", get(sse::events));
    let list = r.list;
    let router = r
        .router
        .fallback(|| async { ApiError::not_found("no such route") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(axum::http::StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", "method not allowed here")
        })
        .layer(DefaultBodyLimit::max(limit))
        .with_state(state);
    (router, list)
}
