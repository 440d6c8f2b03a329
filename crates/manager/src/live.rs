//! Live updates from the cloud (`GET /v1/events`, Server-Sent Events): the stream is
//! resumed with `Last-Event-ID` after a drop, so nothing is missed, and the badge shows
//! live / reconnecting / offline as of … exactly as the supervisor's does.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use serde::Deserialize;
use supervisor::link::{Backoff, Link};

use crate::api::{self, ApiError, CloudClient};
use crate::{Shared, Update, now_ms};

/// The cloud comments every 15 s: a stream silent for longer has died.
const SILENCE: Duration = Duration::from_secs(45);
/// An event larger than this is not the cloud's.
const MAX_EVENT_BYTES: usize = 32 << 20;

/// One event of the stream.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Event {
    pub event: String,
    pub id: Option<i64>,
    pub data: String,
}

/// Splits a stream into events as the SSE format frames them; keeps a partial event.
#[derive(Debug, Default)]
pub struct Parser {
    buffer: String,
    /// Whether anything (a comment too) arrived since last asked.
    pub heard: bool,
}

impl Parser {
    /// Adds bytes; returns the events now complete, or an error for a hostile stream.
    pub fn push(&mut self, bytes: &[u8]) -> Result<Vec<Event>, String> {
        self.heard = true;
        self.buffer.push_str(&String::from_utf8_lossy(bytes));
        if self.buffer.len() > MAX_EVENT_BYTES {
            return Err("an event of the live stream is larger than 32 MiB".into());
        }
        let mut out = Vec::new();
        loop {
            let text = self.buffer.replace("\r\n", "\n");
            let Some(end) = text.find("\n\n") else {
                self.buffer = text;
                return Ok(out);
            };
            let block = &text[..end];
            let mut e = Event::default();
            let mut data = Vec::new();
            for line in block.lines() {
                if line.starts_with(':') {
                    continue;
                }
                let (field, value) =
                    line.split_once(':').map(|(f, v)| (f, v.strip_prefix(' ').unwrap_or(v))).unwrap_or((line, ""));
                match field {
                    "event" => e.event = value.to_string(),
                    "id" => e.id = value.trim().parse().ok(),
                    "data" => data.push(value),
                    _ => {}
                }
            }
            e.data = data.join("\n");
            if !e.event.is_empty() || !e.data.is_empty() {
                out.push(e);
            }
            self.buffer = text[end + 2..].to_string();
        }
    }
}

/// What a `changes` event carries that the view cares about.
#[derive(Debug, Default, Deserialize)]
struct Changes {
    #[serde(default)]
    plants: Vec<serde_json::Value>,
    #[serde(default)]
    kpi_hour: Vec<KpiHour>,
    #[serde(default)]
    anomalies: Vec<serde_json::Value>,
    #[serde(default)]
    maintenance: Vec<serde_json::Value>,
}

#[derive(Debug, Deserialize)]
struct KpiHour {
    plant: u16,
}

enum Ended {
    Stopped,
    Reconfigured,
    Failed { reason: String, was_live: bool },
}

/// Follows the cloud until the app stops.
pub(crate) async fn run(shared: Arc<Shared>) {
    let mut stop = shared.stop.subscribe();
    let backoff = Backoff::default();
    let mut attempt: u32 = 0;
    loop {
        if *stop.borrow() {
            return;
        }
        let settings = shared.settings();
        if !settings.cloud.is_configured() {
            shared.set_link(Link::NotConfigured);
            tokio::select! {
                _ = shared.reconnect.notified() => continue,
                _ = stop.changed() => return,
            }
        }
        let generation = shared.generation.load(Ordering::SeqCst);
        let client = CloudClient::new(&settings.cloud);
        match follow(&shared, &client, generation, &mut stop).await {
            Ended::Stopped => return,
            Ended::Reconfigured => attempt = 0,
            Ended::Failed { reason, was_live } => {
                if was_live {
                    attempt = 0;
                }
                attempt = attempt.saturating_add(1);
                let jitter = (now_ms().rem_euclid(1000)) as f64 / 1000.0;
                let wait = backoff.delay_ms(attempt, jitter);
                shared.set_link(Link::failed(attempt, now_ms() + wait as i64, shared.as_of_ms(), reason));
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(wait)) => {}
                    _ = shared.reconnect.notified() => attempt = 0,
                    _ = stop.changed() => return,
                }
            }
        }
    }
}

async fn follow(
    shared: &Arc<Shared>,
    client: &CloudClient,
    generation: u64,
    stop: &mut tokio::sync::watch::Receiver<bool>,
) -> Ended {
    let after = shared.last_event_id();
    let response = tokio::select! {
        r = client.events_request(after).send() => r,
        _ = stop.changed() => return Ended::Stopped,
    };
    let mut response = match response {
        Ok(r) => r,
        Err(e) => return Ended::Failed { reason: ApiError::Unreachable(e.to_string()).to_string(), was_live: false },
    };
    if !response.status().is_success() {
        let status = response.status().as_u16();
        let body = response.bytes().await.unwrap_or_default();
        let reason = match api::classify::<serde_json::Value>(status, &body) {
            Err(e) => e.to_string(),
            Ok(_) => format!("status {status}"),
        };
        return Ended::Failed { reason, was_live: false };
    }
    let mut parser = Parser::default();
    let mut live = false;
    loop {
        if shared.generation.load(Ordering::SeqCst) != generation {
            return Ended::Reconfigured;
        }
        let chunk = tokio::select! {
            c = tokio::time::timeout(SILENCE, response.chunk()) => c,
            _ = stop.changed() => return Ended::Stopped,
            _ = shared.reconnect.notified() => return Ended::Reconfigured,
        };
        let bytes = match chunk {
            Err(_) => return Ended::Failed { reason: "the live stream fell silent".into(), was_live: live },
            Ok(Err(e)) => return Ended::Failed { reason: format!("the live stream broke: {e}"), was_live: live },
            Ok(Ok(None)) => return Ended::Failed { reason: "the cloud closed the live stream".into(), was_live: live },
            Ok(Ok(Some(b))) => b,
        };
        let events = match parser.push(&bytes) {
            Ok(e) => e,
            Err(reason) => return Ended::Failed { reason, was_live: live },
        };
        let now = now_ms();
        shared.as_of.store(now, Ordering::SeqCst);
        for e in events {
            match e.event.as_str() {
                "ready" => {
                    if let Some(id) = e.id {
                        shared.set_last_event_id(id);
                    }
                    live = true;
                    shared.set_link(Link::Live { since_ms: now, position: shared.last_event_id().unwrap_or(0) });
                }
                "changes" => {
                    let changes: Changes = match serde_json::from_str(&e.data) {
                        Ok(c) => c,
                        Err(err) => {
                            // One unreadable event is skipped (its id still moves on): the
                            // view refetches what it shows on the next change anyway.
                            tracing::warn!("an unreadable live update was skipped: {err}");
                            Changes::default()
                        }
                    };
                    if let Some(id) = e.id {
                        shared.set_last_event_id(id);
                    }
                    let mut plants: Vec<u16> = changes.kpi_hour.iter().map(|k| k.plant).collect();
                    plants.sort_unstable();
                    plants.dedup();
                    let _ = shared.updates.send(Update::Changed {
                        plants,
                        kpi_rows: changes.kpi_hour.len(),
                        other_rows: changes.plants.len() + changes.anomalies.len() + changes.maintenance.len(),
                        position: e.id.unwrap_or(0),
                    });
                    shared.touch_live(now);
                }
                _ => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_framed_across_chunks_and_comments_are_skipped() {
        let mut p = Parser::default();
        assert!(p.push(b": keep-alive\n\nevent: ready\nid: 4").unwrap().is_empty());
        let e = p.push(b"2\ndata: {}\n\nevent: changes\r\nid: 50\r\ndata: {\"kpi_hour\":[]}\r\n\r\n").unwrap();
        assert_eq!(e.len(), 2);
        assert_eq!((e[0].event.as_str(), e[0].id), ("ready", Some(42)));
        assert_eq!((e[1].event.as_str(), e[1].id, e[1].data.as_str()), ("changes", Some(50), "{\"kpi_hour\":[]}"));
    }

    #[test]
    fn a_hostile_stream_ends_with_a_reason_not_a_crash() {
        let mut p = Parser::default();
        assert!(p.push(b"id: not-a-number\ndata: x\n\n").unwrap()[0].id.is_none());
        assert!(p.push(b"\xff\xfe\x00 data\n\n").is_ok());
        let huge = vec![b'a'; MAX_EVENT_BYTES + 1];
        assert!(p.push(&huge).unwrap_err().contains("larger"));
    }
}
