//! An HTTP API compatible with Azure AI Anomaly Detector's univariate REST API (v1.1):
//! entire-series, last-point and change-point detection, with its request and response
//! fields and its error format, so existing clients only change the endpoint. The
//! detection itself is the `detector` crate's; this is the thin HTTP shell.

use axum::Router;
use axum::body::Bytes;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use detector::azure::{self, ApiError};
use serde::Serialize;

/// Requests larger than this are refused (8,640 points with long timestamps fit easily).
const MAX_BODY_BYTES: usize = 4 * 1024 * 1024;

pub fn router() -> Router {
    Router::new()
        .route("/anomalydetector/v1.1/timeseries/entire/detect", post(entire))
        .route("/anomalydetector/v1.1/timeseries/last/detect", post(last))
        .route("/anomalydetector/v1.1/timeseries/changepoint/detect", post(change_point))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY_BYTES))
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

async fn entire(body: Bytes) -> Response {
    answer(azure::parse_detect_request(&body).and_then(|r| azure::entire_detect(&r)))
}

async fn last(body: Bytes) -> Response {
    answer(azure::parse_detect_request(&body).and_then(|r| azure::last_detect(&r)))
}

async fn change_point(body: Bytes) -> Response {
    answer(azure::parse_change_point_request(&body).and_then(|r| azure::change_point_detect(&r)))
}
