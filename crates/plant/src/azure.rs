//! An HTTP API compatible with Azure AI Anomaly Detector's univariate REST API (v1.1):
//! entire-series, last-point and change-point detection, with its request and response
//! fields and its error format, so existing clients only change the endpoint. The
//! detection itself is the `detector` crate's; this is the thin HTTP shell.
//!
//! As the service does, it can require a key (`Ocp-Apim-Subscription-Key`, the header
//! Azure's clients send), checked before the body is read; the body is limited before it
//! is parsed; and the detection, which is CPU work, runs on the blocking pool, a bounded
//! number at a time, so it never stalls the node's other requests (uploads, commands).

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use detector::azure::{self, ApiError};
use serde::Serialize;
use subtle::ConstantTimeEq;
use tokio::sync::Semaphore;

/// The header Azure's clients send their key in.
pub const KEY_HEADER: &str = "Ocp-Apim-Subscription-Key";

/// How the Anomaly Detector routes are served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AzureConfig {
    /// The key clients must send; `None` serves without one (loopback use).
    pub api_key: Option<String>,
    /// Requests larger than this are refused before parsing (8,640 points with long
    /// timestamps fit easily in the default).
    pub max_body_bytes: usize,
    /// Detections running at once; the others wait, up to `queue_wait_ms`, then get 429.
    pub max_parallel: usize,
    pub queue_wait_ms: u64,
}

impl Default for AzureConfig {
    fn default() -> Self {
        AzureConfig {
            api_key: None,
            max_body_bytes: 4 * 1024 * 1024,
            max_parallel: std::thread::available_parallelism().map_or(2, |n| n.get()),
            queue_wait_ms: 10_000,
        }
    }
}

#[derive(Debug)]
struct Shared {
    config: AzureConfig,
    slots: Arc<Semaphore>,
}

#[derive(Debug, Clone, Copy)]
enum Kind {
    Entire,
    Last,
    ChangePoint,
}

pub fn router(config: AzureConfig) -> Router {
    let slots = Arc::new(Semaphore::new(config.max_parallel.max(1)));
    let shared = Arc::new(Shared { config, slots });
    let route = |kind: Kind| {
        post(move |State(s): State<Arc<Shared>>, headers: HeaderMap, body: Body| detect(s, kind, headers, body))
    };
    Router::new()
        .route("/anomalydetector/v1.1/timeseries/entire/detect", route(Kind::Entire))
        .route("/anomalydetector/v1.1/timeseries/last/detect", route(Kind::Last))
        .route("/anomalydetector/v1.1/timeseries/changepoint/detect", route(Kind::ChangePoint))
        .with_state(shared)
}

/// An error of the transport (key, size, load) in the API's `{code, message}` shape.
fn refused(status: StatusCode, code: &'static str, message: impl Into<String>) -> Response {
    #[derive(Serialize)]
    struct Body {
        code: &'static str,
        message: String,
    }
    let mut response = (status, axum::Json(Body { code, message: message.into() })).into_response();
    response.headers_mut().insert("x-ms-error-code", HeaderValue::from_static(code));
    if status == StatusCode::TOO_MANY_REQUESTS {
        response.headers_mut().insert(axum::http::header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    response
}

async fn detect(s: Arc<Shared>, kind: Kind, headers: HeaderMap, body: Body) -> Response {
    if let Some(key) = &s.config.api_key {
        let sent = headers.get(KEY_HEADER).map(|v| v.as_bytes()).unwrap_or_default();
        if !(sent.len() == key.len() && bool::from(sent.ct_eq(key.as_bytes()))) {
            return refused(
                StatusCode::UNAUTHORIZED,
                "Unauthorized",
                format!("access denied: a valid key is required in the {KEY_HEADER} header"),
            );
        }
    }
    let body = match crate::api::read_body(&headers, body, s.config.max_body_bytes).await {
        Ok(b) => b,
        Err(e) => return refused(e.status, "InvalidRequest", e.message),
    };
    let wait = Duration::from_millis(s.config.queue_wait_ms);
    let Ok(Ok(slot)) = tokio::time::timeout(wait, s.slots.clone().acquire_owned()).await else {
        return refused(StatusCode::TOO_MANY_REQUESTS, "TooManyRequests", "too many detections at once; retry");
    };
    let answer = tokio::task::spawn_blocking(move || {
        let _slot = slot;
        match kind {
            Kind::Entire => answer(azure::parse_detect_request(&body).and_then(|r| azure::entire_detect(&r))),
            Kind::Last => answer(azure::parse_detect_request(&body).and_then(|r| azure::last_detect(&r))),
            Kind::ChangePoint => {
                answer(azure::parse_change_point_request(&body).and_then(|r| azure::change_point_detect(&r)))
            }
        }
    })
    .await;
    match answer {
        Ok(response) => response,
        Err(e) => {
            tracing::error!(error = %e, "an anomaly detection failed");
            refused(StatusCode::INTERNAL_SERVER_ERROR, "InternalServerError", "the detection failed")
        }
    }
}

fn answer<T: Serialize>(result: Result<T, ApiError>) -> Response {
    match result {
        Ok(body) => axum::Json(body).into_response(),
        Err(e) => {
            let status = StatusCode::from_u16(e.status).unwrap_or(StatusCode::BAD_REQUEST);
            let code = e.code.as_str();
            let mut response = (status, axum::Json(&e)).into_response();
            if let Ok(v) = HeaderValue::from_str(code) {
                response.headers_mut().insert("x-ms-error-code", v);
            }
            response
        }
    }
}
