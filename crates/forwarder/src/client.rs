//! The forwarder's side of the cloud's ingest API: where the cloud stands for this
//! plant, and sending a batch.

use std::time::Duration;

use reqwest::StatusCode;
use thiserror::Error;

use crate::wire::{Ack, CONTENT_TYPE, PublishedModel};

/// Why a call to the cloud did not succeed.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum CloudError {
    /// The cloud is down, slow or busy: the same request later may succeed.
    #[error("the cloud is unreachable: {0}")]
    Unreachable(String),
    /// The batch does not continue where the cloud stands: ask it and resume there.
    #[error("the cloud stands elsewhere: {0}")]
    Gap(String),
    /// The cloud refuses this (wrong token, wrong plant, a batch it will never store).
    #[error("the cloud refused it ({status}, {code}): {message}")]
    Refused { status: u16, code: String, message: String },
}

/// A plant's connection to the cloud's ingest API, authenticated as its forwarder.
#[derive(Debug, Clone)]
pub struct CloudClient {
    http: reqwest::Client,
    base_url: String,
    token: String,
    plant: u16,
}

impl CloudClient {
    /// `base_url` such as `http://127.0.0.1:8090`; `token` a forwarder credential of `plant`.
    pub fn new(base_url: &str, token: &str, plant: u16, timeout: Duration) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            .build()?;
        Ok(CloudClient { http, base_url: base_url.trim_end_matches('/').to_owned(), token: token.to_owned(), plant })
    }

    pub fn plant(&self) -> u16 {
        self.plant
    }

    /// The plant position the cloud has stored through: where forwarding resumes.
    pub async fn position(&self) -> Result<Ack, CloudError> {
        let url = format!("{}/v1/ingest/plants/{}/position", self.base_url, self.plant);
        let response = self.http.get(&url).bearer_auth(&self.token).send().await.map_err(unreachable)?;
        answer(response).await
    }

    /// Sends one encoded batch; the cloud stores what it does not have yet.
    pub async fn send(&self, body: Vec<u8>) -> Result<Ack, CloudError> {
        let url = format!("{}/v1/ingest/plants/{}/events", self.base_url, self.plant);
        let response = self
            .http
            .post(&url)
            .bearer_auth(&self.token)
            .header(reqwest::header::CONTENT_TYPE, CONTENT_TYPE)
            .body(body)
            .send()
            .await
            .map_err(unreachable)?;
        answer(response).await
    }
}

impl CloudClient {
    /// The model the cloud publishes to this plant, if one is active there.
    pub async fn active_model(&self) -> Result<Option<PublishedModel>, CloudError> {
        let url = format!("{}/v1/ingest/plants/{}/models/active", self.base_url, self.plant);
        let response = self.http.get(&url).bearer_auth(&self.token).send().await.map_err(unreachable)?;
        if response.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let status = response.status();
        let body = response.bytes().await.map_err(unreachable)?;
        if status.is_success() {
            return serde_json::from_slice(&body)
                .map(Some)
                .map_err(|e| CloudError::Unreachable(format!("the cloud's model is unreadable: {e}")));
        }
        let (code, message) = error_of(&body);
        if status.is_server_error() {
            return Err(CloudError::Unreachable(format!("{status}: {message}")));
        }
        Err(CloudError::Refused { status: status.as_u16(), code, message })
    }
}

fn unreachable(e: reqwest::Error) -> CloudError {
    // Without the URL: it is in the configuration, and the error is shown on screens.
    CloudError::Unreachable(e.without_url().to_string())
}

async fn answer(response: reqwest::Response) -> Result<Ack, CloudError> {
    let status = response.status();
    let body = response.bytes().await.map_err(unreachable)?;
    if status.is_success() {
        return serde_json::from_slice(&body)
            .map_err(|e| CloudError::Unreachable(format!("the cloud's answer is not an acknowledgement: {e}")));
    }
    let (code, message) = error_of(&body);
    match status {
        StatusCode::CONFLICT => Err(CloudError::Gap(message)),
        s if s.is_server_error() || s == StatusCode::TOO_MANY_REQUESTS || s == StatusCode::REQUEST_TIMEOUT => {
            Err(CloudError::Unreachable(format!("{s}: {message}")))
        }
        s => Err(CloudError::Refused { status: s.as_u16(), code, message }),
    }
}

/// The `{"error": {"code", "message"}}` of an error answer (or what there is of it).
fn error_of(body: &[u8]) -> (String, String) {
    #[derive(serde::Deserialize)]
    struct Body {
        error: Inner,
    }
    #[derive(serde::Deserialize)]
    struct Inner {
        code: String,
        message: String,
    }
    match serde_json::from_slice::<Body>(body) {
        Ok(b) => (b.error.code, b.error.message),
        Err(_) => ("unknown".into(), String::from_utf8_lossy(&body[..body.len().min(300)]).into_owned()),
    }
}
