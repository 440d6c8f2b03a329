//! Sending queued commands to the plant node, oldest first, with the command id as the
//! idempotency key so a resend after a lost answer is applied once, signed with the
//! signed-in person's token. Final refusals (4xx) move to the failed list for the user to
//! read, and the commands behind them go on; only an unavailable plant is retried, with
//! back-off.

use std::sync::Arc;
use std::time::Duration;

use crate::commands::{ApiError, Outcome, QueuedCommand, classify};
use crate::config::Connection;
use crate::link::Backoff;
use crate::{Shared, now_ms};

const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest answer body read from the command API.
const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// An HTTP client for the command API.
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(REQUEST_TIMEOUT)
        .connect_timeout(Duration::from_secs(3))
        .user_agent("floorwatch-desktop")
        .build()
        .unwrap_or_default()
}

/// Sends one command and classifies the answer; transport failures are retryable.
pub async fn send(http: &reqwest::Client, conn: &Connection, command: &QueuedCommand) -> Outcome {
    let base = conn.command_url.trim().trim_end_matches('/');
    if base.is_empty() {
        return Outcome::Retry(ApiError {
            code: "not_configured".into(),
            message: "no command URL is configured for this plant".into(),
        });
    }
    let url = format!("{base}{}", command.command.path());
    let body = command.command.body(&command.command_id);
    let response = http.post(&url).bearer_auth(conn.token.trim()).json(&body).send().await;
    match response {
        Ok(r) => {
            let status = r.status().as_u16();
            let bytes = r.bytes().await.map(|b| b.to_vec()).unwrap_or_default();
            classify(status, &bytes[..bytes.len().min(MAX_ANSWER_BYTES)])
        }
        Err(e) => Outcome::Retry(ApiError {
            code: "unreachable".into(),
            message: format!("the plant node could not be reached: {}", without_url(&e)),
        }),
    }
}

/// Who a token belongs to, as the plant node says (`GET /v1/me`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct Me {
    pub name: String,
    pub role: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WhoAmIError {
    /// The plant refused the token (unknown, revoked, another plant's, a role without
    /// access): the message says why.
    Refused(String),
    /// The plant could not be asked.
    Unreachable(String),
}

/// Asks the plant node whose token `conn` holds.
pub async fn who_am_i(http: &reqwest::Client, conn: &Connection) -> Result<Me, WhoAmIError> {
    let base = conn.command_url.trim().trim_end_matches('/');
    if base.is_empty() {
        return Err(WhoAmIError::Unreachable("no command URL is configured for this plant".into()));
    }
    let response = http
        .get(format!("{base}/v1/me"))
        .bearer_auth(conn.token.trim())
        .send()
        .await
        .map_err(|e| WhoAmIError::Unreachable(without_url(&e)))?;
    let status = response.status().as_u16();
    let bytes = response.bytes().await.map(|b| b.to_vec()).unwrap_or_default();
    let bytes = &bytes[..bytes.len().min(MAX_ANSWER_BYTES)];
    classify_me(status, bytes)
}

fn classify_me(status: u16, bytes: &[u8]) -> Result<Me, WhoAmIError> {
    if (200..300).contains(&status) {
        return serde_json::from_slice(bytes)
            .map_err(|e| WhoAmIError::Unreachable(format!("the plant node's answer could not be read: {e}")));
    }
    // Errors are classified as a command's would be: a refusal is final, the rest is not.
    match classify(status, bytes) {
        Outcome::Rejected(e) => Err(WhoAmIError::Refused(e.message)),
        Outcome::Retry(e) => Err(WhoAmIError::Unreachable(e.message)),
        Outcome::Accepted { .. } => Err(WhoAmIError::Unreachable(format!("the plant node answered {status}"))),
    }
}

fn without_url(e: &reqwest::Error) -> String {
    let mut msg = e.to_string();
    if let Some(u) = e.url() {
        msg = msg.replace(&format!(" ({u})"), "").replace(u.as_str(), "");
    }
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        msg = format!("{msg}: {s}");
        source = s.source();
    }
    msg
}

/// Runs until `shared.stop` is set.
pub(crate) async fn run(shared: Arc<Shared>) {
    let http = http_client();
    let backoff = Backoff { base_ms: 1_000, max_ms: 60_000 };
    let mut stop = shared.stop.subscribe();
    loop {
        if *stop.borrow() {
            return;
        }
        let head = shared.with_cache(|c| c.outbox_head()).ok().flatten();
        let wait = match head {
            None => None,
            Some(cmd) if cmd.next_attempt_ms > now_ms() => {
                Some(Duration::from_millis((cmd.next_attempt_ms - now_ms()) as u64))
            }
            Some(cmd) => {
                let conn = shared.settings().connection;
                let outcome = send(&http, &conn, &cmd).await;
                let id = cmd.command_id.clone();
                let result = shared.with_cache(|c| match &outcome {
                    Outcome::Accepted { position, .. } => c.mark_sent(&id, *position),
                    Outcome::Rejected(e) => c.mark_failed(&id, e),
                    Outcome::Retry(e) => {
                        let attempt = u32::try_from(cmd.attempts + 1).unwrap_or(u32::MAX);
                        let jitter = (cmd.seq.unsigned_abs() % 7) as f64 / 7.0;
                        c.mark_retry(&id, now_ms() + backoff.delay_ms(attempt, jitter) as i64, e)
                    }
                });
                if let Err(e) = result {
                    tracing::warn!("outbox update failed: {e}");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
                match &outcome {
                    Outcome::Accepted { position, duplicate } => {
                        tracing::info!(command = %id, position, duplicate, "command accepted")
                    }
                    Outcome::Rejected(e) => tracing::info!(command = %id, code = %e.code, "command refused"),
                    Outcome::Retry(e) => tracing::info!(command = %id, code = %e.code, "command will be retried"),
                }
                shared.publish_commands();
                continue;
            }
        };
        tokio::select! {
            _ = shared.outbox_wake.notified() => {}
            _ = async {
                match wait {
                    Some(d) => tokio::time::sleep(d).await,
                    None => std::future::pending().await,
                }
            } => {}
            _ = stop.changed() => {}
        }
    }
}
