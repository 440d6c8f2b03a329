//! The cloud query API as the manager's app reads it (docs/CLOUD-API.md): the rows it
//! answers, and a reqwest client that tells a refusal (permanent: a bad token, a bad
//! parameter) from an outage (transient: network, 503), so the caller retries only the
//! second.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::config::CloudConnection;

#[derive(Debug, Clone, Error, PartialEq)]
pub enum ApiError {
    /// The cloud could not be reached, or said to come back later.
    #[error("the cloud is unreachable: {0}")]
    Unreachable(String),
    /// The cloud refused the request; sending it again will not help.
    #[error("the cloud refused: {message} ({code})")]
    Refused { status: u16, code: String, message: String },
    /// The answer is not what this API answers.
    #[error("the cloud's answer could not be read: {0}")]
    Malformed(String),
}

impl ApiError {
    pub fn is_transient(&self) -> bool {
        matches!(self, ApiError::Unreachable(_))
    }
}

/// One plant as `GET /v1/plants` lists it (the fields the view shows).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlantInfo {
    pub plant: u16,
    pub plant_id: String,
    pub name: String,
    pub lines: i32,
    pub machines: i32,
    pub sensors: i32,
    pub readings: i64,
    pub newest_reading: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupInfo {
    pub machine_type: String,
    pub machines: i32,
    pub sensors: i32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LineInfo {
    pub line_id: String,
    pub number: i32,
    pub machines: i32,
    pub sensors: i32,
    pub machine_types: Vec<GroupInfo>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MachineInfo {
    pub plant: u16,
    pub machine_id: String,
    pub line_id: String,
    pub machine_type: String,
    pub sensors: i32,
    pub open_anomalies: i64,
    pub predicted_days: Option<f64>,
    pub last_failure_at: Option<DateTime<Utc>>,
}

// The KPI rows are the cloud's own types (one owner for both sides of the API).
pub use cloud_contract::{Anomalies, KpiRow, Oee, Production};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Point {
    pub t: DateTime<Utc>,
    pub count: i32,
    pub min: f64,
    pub max: f64,
    pub mean: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SensorTrend {
    pub sensor_id: i32,
    pub name: String,
    pub kind: String,
    pub unit: String,
    pub normal_min: f64,
    pub normal_max: f64,
    pub points: Vec<Point>,
}

/// `GET /v1/machines/{machine}/trend`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Trend {
    pub plant: u16,
    pub machine_id: String,
    pub resolution: String,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub sensors: Vec<SensorTrend>,
}

#[derive(Deserialize)]
struct Items<T> {
    items: Vec<T>,
    #[serde(default)]
    next_cursor: Option<String>,
}

#[derive(Deserialize)]
struct ErrorBody {
    error: ErrorDetail,
}

#[derive(Deserialize)]
struct ErrorDetail {
    code: String,
    message: String,
}

/// KPI grouping within a plant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum By {
    Plant,
    Line,
    MachineType,
}

impl By {
    pub fn as_str(self) -> &'static str {
        match self {
            By::Plant => "plant",
            By::Line => "line",
            By::MachineType => "machine_type",
        }
    }
}

/// Seconds a request may take before the cloud counts as unreachable.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);
/// The largest answer read (a KPI answer of 20,000 rows is ~12 MB).
const MAX_ANSWER_BYTES: usize = 64 << 20;
/// Pages read at most for one list.
const MAX_PAGES: usize = 50;

/// A client of one cloud with one token.
#[derive(Debug, Clone)]
pub struct CloudClient {
    http: reqwest::Client,
    base: String,
    token: String,
}

fn rfc3339(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms).unwrap_or_default().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

impl CloudClient {
    pub fn new(connection: &CloudConnection) -> CloudClient {
        let http = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .connect_timeout(Duration::from_secs(5))
            .build()
            .unwrap_or_default();
        CloudClient { http, base: connection.source_id(), token: connection.token.trim().to_string() }
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    pub(crate) fn request(&self, path: &str) -> reqwest::RequestBuilder {
        self.http.get(format!("{}{path}", self.base)).bearer_auth(&self.token)
    }

    pub(crate) fn events_request(&self, after: Option<i64>) -> reqwest::RequestBuilder {
        // The stream stays open: no overall timeout, only the connect one of the client.
        let client = reqwest::Client::builder().connect_timeout(Duration::from_secs(5)).build().unwrap_or_default();
        let r = client.get(format!("{}/v1/events", self.base)).bearer_auth(&self.token);
        match after {
            Some(id) => r.header("Last-Event-ID", id.to_string()),
            None => r,
        }
    }

    async fn get<T: DeserializeOwned>(&self, path: &str, query: &[(&str, String)]) -> Result<T, ApiError> {
        let response =
            self.request(path).query(query).send().await.map_err(|e| ApiError::Unreachable(e.to_string()))?;
        read(response).await
    }

    async fn list<T: DeserializeOwned>(&self, path: &str, query: &[(&str, String)]) -> Result<Vec<T>, ApiError> {
        let mut out = Vec::new();
        let mut cursor: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let mut q = query.to_vec();
            q.push(("limit", "1000".into()));
            if let Some(c) = cursor.take() {
                q.push(("cursor", c));
            }
            let page: Items<T> = self.get(path, &q).await?;
            out.extend(page.items);
            match page.next_cursor {
                Some(c) => cursor = Some(c),
                None => return Ok(out),
            }
        }
        Ok(out)
    }

    pub async fn plants(&self) -> Result<Vec<PlantInfo>, ApiError> {
        self.get("/v1/plants", &[]).await
    }

    pub async fn lines(&self, plant: u16) -> Result<Vec<LineInfo>, ApiError> {
        self.get(&format!("/v1/plants/{plant}/lines"), &[]).await
    }

    pub async fn machines(&self, plant: u16) -> Result<Vec<MachineInfo>, ApiError> {
        self.list(&format!("/v1/plants/{plant}/machines"), &[]).await
    }

    /// KPIs of `plants` (empty: every plant the token may read) over `[from_ms, to_ms)`.
    pub async fn kpis(
        &self,
        plants: &[u16],
        from_ms: i64,
        to_ms: i64,
        bucket: crate::range::Bucket,
        by: By,
    ) -> Result<Vec<KpiRow>, ApiError> {
        let mut q = vec![
            ("from", rfc3339(from_ms)),
            ("to", rfc3339(to_ms)),
            ("bucket", bucket.as_str().to_string()),
            ("by", by.as_str().to_string()),
        ];
        if !plants.is_empty() {
            q.push(("plant", plants.iter().map(|p| p.to_string()).collect::<Vec<_>>().join(",")));
        }
        self.get("/v1/kpis", &q).await
    }

    pub async fn trend(&self, machine: &str, from_ms: i64, to_ms: i64) -> Result<Trend, ApiError> {
        self.trend_at(machine, from_ms, to_ms, "auto").await
    }

    /// A machine's trend at a resolution chosen by the caller (`minute`, `hour`, `day`, `auto`).
    pub async fn trend_at(&self, machine: &str, from_ms: i64, to_ms: i64, resolution: &str) -> Result<Trend, ApiError> {
        let q = [("from", rfc3339(from_ms)), ("to", rfc3339(to_ms)), ("resolution", resolution.to_string())];
        self.get(&format!("/v1/machines/{}/trend", encode_segment(machine)), &q).await
    }
}

/// A path segment with everything but unreserved characters percent-encoded.
fn encode_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Reads an answer: the body on success, else the error the status says.
pub(crate) async fn read<T: DeserializeOwned>(response: reqwest::Response) -> Result<T, ApiError> {
    let status = response.status();
    if response.content_length().is_some_and(|n| n as usize > MAX_ANSWER_BYTES) {
        return Err(ApiError::Malformed("the answer is larger than 64 MiB".into()));
    }
    let body = response.bytes().await.map_err(|e| ApiError::Unreachable(e.to_string()))?;
    if body.len() > MAX_ANSWER_BYTES {
        return Err(ApiError::Malformed("the answer is larger than 64 MiB".into()));
    }
    classify(status.as_u16(), &body)
}

/// The answer of a status and a body, as the API defines them.
pub(crate) fn classify<T: DeserializeOwned>(status: u16, body: &[u8]) -> Result<T, ApiError> {
    if (200..300).contains(&status) {
        return serde_json::from_slice(body).map_err(|e| ApiError::Malformed(e.to_string()));
    }
    let detail = serde_json::from_slice::<ErrorBody>(body).ok().map(|b| b.error);
    if status == 503 || status == 502 || status == 504 || status == 429 {
        let message = detail.map(|d| d.message).unwrap_or_else(|| format!("status {status}"));
        return Err(ApiError::Unreachable(message));
    }
    let (code, message) = match detail {
        Some(d) => (d.code, d.message),
        None => ("http".into(), format!("status {status}")),
    };
    Err(ApiError::Refused { status, code, message })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outages_are_transient_and_refusals_are_not() {
        let e = classify::<serde_json::Value>(503, br#"{"error":{"code":"retry_later","message":"db away"}}"#);
        assert_eq!(e, Err(ApiError::Unreachable("db away".into())));
        assert!(e.unwrap_err().is_transient());
        let r = classify::<serde_json::Value>(401, br#"{"error":{"code":"unauthorized","message":"unknown token"}}"#)
            .unwrap_err();
        assert!(!r.is_transient());
        assert!(matches!(r, ApiError::Refused { status: 401, ref code, .. } if code == "unauthorized"));
        // A body that is not the API's error still gives a plain refusal, never a panic.
        assert!(matches!(
            classify::<serde_json::Value>(400, b"\xff\x00not json"),
            Err(ApiError::Refused { status: 400, .. })
        ));
        assert!(matches!(classify::<Vec<KpiRow>>(200, b"{\"items\": 3}"), Err(ApiError::Malformed(_))));
    }

    #[test]
    fn kpi_rows_read_as_the_cloud_writes_them() {
        let body = r#"[{"plant":1,"line_id":"P1-L01","bucket_start":"2026-03-01T00:00:00Z",
            "bucket_end":"2026-03-02T00:00:00Z","readings":10,"sensors":4,"sensor_availability":0.5,
            "anomalies":{"minor":1,"major":0,"critical":2},"acknowledged":1,"mean_time_to_acknowledge_s":30.0,
            "maintenance_performed":0,"failures":0,"predictions":2,"mean_predicted_days_to_service":12.5,
            "production":{"planned_s":3600.0,"running_s":1800.0,"parts":10,"good_parts":9},
            "oee":{"oee":0.4,"availability":0.5,"performance":0.9,"quality":0.9}}]"#;
        let rows: Vec<KpiRow> = classify(200, body.as_bytes()).unwrap();
        assert_eq!(rows[0].group(), "P1-L01");
        assert_eq!(rows[0].anomalies.critical, 2);
    }

    #[test]
    fn machine_ids_are_encoded_in_paths() {
        assert_eq!(encode_segment("P1-L03-M042"), "P1-L03-M042");
        assert_eq!(encode_segment("a/../b c"), "a%2F..%2Fb%20c");
    }
}
