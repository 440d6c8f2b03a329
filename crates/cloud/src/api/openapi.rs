//! The OpenAPI document of the API (`openapi.json`, served at `/v1/openapi.json`). A test
//! keeps it true: every route is in it, and nothing in it is not a route.

use axum::Json;
use serde_json::Value;

use super::error::ApiError;

/// The document's text.
pub const DOCUMENT: &str = include_str!("../../openapi.json");

pub async fn document() -> Result<Json<Value>, ApiError> {
    serde_json::from_str(DOCUMENT)
        .map(Json)
        .map_err(|e| ApiError::unavailable(format!("the API document is unreadable: {e}")))
}

/// Every (method, path) the document describes, methods upper-case.
pub fn operations(document: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    if let Some(paths) = document.get("paths").and_then(Value::as_object) {
        for (path, item) in paths {
            for method in item.as_object().into_iter().flat_map(|m| m.keys()) {
                out.push((method.to_ascii_uppercase(), path.clone()));
            }
        }
    }
    out.sort();
    out
}
