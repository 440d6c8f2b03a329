//! A fleet of simulated gateways: one per production line, each uploading its line's
//! batch every simulated second to its plant's ingest API, as a real gateway would —
//! binary body, bearer token, sequence number, retries with back-off, honouring
//! `503 Retry-After`. The simulator decides what the readings are; this crate decides
//! when and how they are sent.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Result;
use simulator::{FactoryEvent, GatewayBatch, MaintenanceKind, PlantSim, ProductionReport, ProductionSim, Step};
use tokio::sync::watch;
use tokio::time::Instant;

/// Content type of a binary upload (the ingest API's).
pub const BINARY_CONTENT_TYPE: &str = "application/x-floorwatch-batch";

/// Where one plant's gateways send.
#[derive(Debug, Clone)]
pub struct PlantTarget {
    pub plant_number: u16,
    /// `http://127.0.0.1:8081`
    pub base_url: String,
    /// Gateway id → bearer token.
    pub tokens: BTreeMap<String, String>,
    /// The simulated maintenance crew's own credential at the plant: with it, the crew
    /// records its work orders through the command API (scheduled when a service starts,
    /// performed when it ends), and the plant names the crew in those events.
    pub crew_token: Option<String>,
}

/// How fast simulated time runs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Pace {
    /// Simulated time is the wall clock: a step is sent when its time comes, and steps
    /// already in the past are sent at once (catching up).
    RealTime,
    /// Simulated time runs `factor` times as fast as the wall clock from the first step.
    Clock { factor: f64 },
    /// As fast as the plant accepts.
    Max,
}

#[derive(Debug, Clone)]
pub struct FleetConfig {
    pub pace: Pace,
    /// Stop after this simulated time (exclusive); run until stopped when `None`.
    pub end_ms: Option<i64>,
    /// Until this simulated time, step coarsely (`coarse_step_ms`): history generated
    /// fast, as a backfill or to catch up after a pause.
    pub coarse_until_ms: Option<i64>,
    pub coarse_step_ms: u64,
    /// Coarse steps a gateway sends as one upload (1: one upload a step). A backfill of
    /// a small plant is otherwise many small uploads; grouped, a gateway's upload holds
    /// several minutes of its readings, as a gateway catching up after an outage sends
    /// them. Each group's sequence is its first step's, the same in every run.
    pub coarse_steps_per_upload: usize,
    pub request_timeout_ms: u64,
    /// Longest pause between retries of one upload.
    pub max_backoff_ms: u64,
    /// Steps whose uploads may be in flight at once when sending as fast as the plant
    /// accepts: at `Pace::Max`, coarsely, or in real time while behind the wall clock (a
    /// gateway with a backlog; with one step at a time a plant whose round trip exceeds a
    /// second would never catch up). Paced sending of steps not yet due keeps one. It
    /// bounds what the fleet holds: at most this many steps' batches per plant.
    pub max_steps_in_flight: usize,
}

impl Default for FleetConfig {
    fn default() -> Self {
        FleetConfig {
            pace: Pace::RealTime,
            end_ms: None,
            coarse_until_ms: None,
            coarse_step_ms: 60_000,
            coarse_steps_per_upload: 1,
            request_timeout_ms: 10_000,
            max_backoff_ms: 5_000,
            max_steps_in_flight: 8,
        }
    }
}

/// Counters of a fleet run.
pub struct FleetStats {
    pub readings_sent: AtomicU64,
    pub readings_accepted: AtomicU64,
    pub readings_rejected: AtomicU64,
    pub uploads: AtomicU64,
    pub retries: AtomicU64,
    /// 503 answers (the plant asked to slow down).
    pub busy: AtomicU64,
    /// Uploads refused for good (4xx other than 503): a bug or a misconfiguration.
    pub refused: AtomicU64,
    /// Newest simulated time fully sent, per plant would be ambiguous: the minimum.
    pub sent_through_ms: AtomicI64,
    /// Per plant, the newest simulated time whose every upload was acknowledged (so a
    /// restart can resume there, even after a kill).
    acknowledged_through: Mutex<BTreeMap<u16, i64>>,
    latency_us: Mutex<hdrhistogram::Histogram<u64>>,
    on_accepted: std::sync::OnceLock<AcceptHook>,
}

/// Called with (gateway, sequence) when an upload has been accepted (benchmarks time
/// how long the readings then take to show up in the read models).
pub type AcceptHook = std::sync::Arc<dyn Fn(&str, u64) + Send + Sync>;

impl Default for FleetStats {
    fn default() -> Self {
        FleetStats {
            readings_sent: AtomicU64::new(0),
            readings_accepted: AtomicU64::new(0),
            readings_rejected: AtomicU64::new(0),
            uploads: AtomicU64::new(0),
            retries: AtomicU64::new(0),
            busy: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            sent_through_ms: AtomicI64::new(i64::MIN),
            acknowledged_through: Mutex::new(BTreeMap::new()),
            latency_us: Mutex::new(hdrhistogram::Histogram::new_with_bounds(1, 120_000_000, 3).expect("valid bounds")),
            on_accepted: std::sync::OnceLock::new(),
        }
    }
}

impl std::fmt::Debug for FleetStats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FleetStats")
            .field("readings_sent", &self.readings_sent)
            .field("readings_accepted", &self.readings_accepted)
            .field("uploads", &self.uploads)
            .finish_non_exhaustive()
    }
}

impl FleetStats {
    /// Sets the hook called for every accepted upload (once; later calls are ignored).
    pub fn on_accepted(&self, hook: AcceptHook) {
        let _ = self.on_accepted.set(hook);
    }

    fn record_latency(&self, d: Duration) {
        if let Ok(mut h) = self.latency_us.lock() {
            let _ = h.record(d.as_micros().clamp(1, 120_000_000) as u64);
        }
    }

    /// Upload latency percentile in milliseconds (successful uploads, retries included).
    pub fn latency_ms(&self, percentile: f64) -> f64 {
        self.latency_us.lock().map(|h| h.value_at_percentile(percentile) as f64 / 1000.0).unwrap_or(f64::NAN)
    }

    /// The newest simulated time plant `plant` had every upload acknowledged through,
    /// once it has had one step acknowledged.
    pub fn acknowledged_through(&self, plant: u16) -> Option<i64> {
        self.acknowledged_through.lock().ok().and_then(|m| m.get(&plant).copied())
    }

    /// Records that plant `plant` had every upload through `through_ms` acknowledged.
    pub fn acknowledge(&self, plant: u16, through_ms: i64) {
        self.sent_through_ms.fetch_max(through_ms, Ordering::Relaxed);
        if let Ok(mut m) = self.acknowledged_through.lock() {
            let t = m.entry(plant).or_insert(through_ms);
            *t = (*t).max(through_ms);
        }
    }

    pub fn reset_latency(&self) {
        if let Ok(mut h) = self.latency_us.lock() {
            h.reset();
        }
    }
}

/// Steps one plant's simulation and uploads every batch until `end_ms` or `stop`.
/// Returns the simulated time it had fully sent.
pub async fn run_plant(
    sim: PlantSim,
    target: PlantTarget,
    config: FleetConfig,
    stats: std::sync::Arc<FleetStats>,
    stop: watch::Receiver<bool>,
) -> Result<i64> {
    run_plant_with(sim, None, target, config, stats, stop).await
}

/// [`run_plant`], and with `production` the gateways also relay their machines'
/// production counters at the end of every report period.
pub async fn run_plant_with(
    mut sim: PlantSim,
    mut production: Option<ProductionSim>,
    target: PlantTarget,
    config: FleetConfig,
    stats: std::sync::Arc<FleetStats>,
    mut stop: watch::Receiver<bool>,
) -> Result<i64> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_millis(config.request_timeout_ms))
        .pool_max_idle_per_host(64)
        .build()?;
    let mut step = Step::default();
    let coarse = |ts: i64| config.coarse_until_ms.is_some_and(|until| ts < until);
    if coarse(sim.next_ts_ms()) {
        sim.set_step_ms(config.coarse_step_ms)?;
    }
    let wall_start = Instant::now();
    let mut pace_origin: Option<(Instant, i64)> = None;
    let mut sent_through = sim.next_ts_ms() - 1;
    // Steps in flight complete in order; a step's machine reports go out after its
    // readings, and in step order, so work orders never overtake one another.
    let mut in_flight = futures_util::stream::FuturesOrdered::new();
    let mut exhausted = false;
    loop {
        let limit = if config.pace == Pace::Max || coarse(sim.next_ts_ms()) || behind(&config, sim.next_ts_ms()) {
            config.max_steps_in_flight.max(1)
        } else {
            1
        };
        while !exhausted && in_flight.len() < limit {
            let ts = sim.next_ts_ms();
            if *stop.borrow() || config.end_ms.is_some_and(|end| ts >= end) {
                exhausted = true;
                break;
            }
            if !coarse(ts) && sim.step_ms() != 1_000 {
                sim.set_step_ms(1_000)?;
            }
            let due = match config.pace {
                _ if coarse(ts) => None,
                Pace::Max => None,
                Pace::RealTime => {
                    let ahead_ms = ts - wall_clock_ms();
                    (ahead_ms > 0).then(|| Instant::now() + Duration::from_millis(ahead_ms as u64))
                }
                Pace::Clock { factor } => {
                    let (wall0, sim0) = *pace_origin.get_or_insert((Instant::now().max(wall_start), ts));
                    Some(wall0 + Duration::from_secs_f64(((ts - sim0) as f64 / 1000.0 / factor.max(1e-6)).max(0.0)))
                }
            };
            if let Some(due) = due {
                tokio::select! {
                    () = tokio::time::sleep_until(due) => {}
                    _ = stop.changed() => { exhausted = true; break; }
                }
            }
            let mut reports = Vec::new();
            advance(&mut sim, production.as_mut(), &mut step, &mut reports);
            let mut batches: Vec<GatewayBatch> = step.batches.clone();
            let (mut ts, mut events) = (step.ts_ms, step.events.clone());
            // Further coarse steps join this upload, each gateway's readings appended to its
            // batch, while they stay within the end and below the batch's reading limit.
            let group = if coarse(ts) { config.coarse_steps_per_upload.max(1) } else { 1 };
            let per_step = batches.iter().map(|b| b.readings.len()).max().unwrap_or(0);
            for _ in 1..group {
                let next = sim.next_ts_ms();
                let room = batches.iter().all(|b| b.readings.len() + per_step <= telemetry::MAX_READINGS);
                if !coarse(next) || config.end_ms.is_some_and(|end| next >= end) || !room {
                    break;
                }
                advance(&mut sim, production.as_mut(), &mut step, &mut reports);
                for (batch, more) in batches.iter_mut().zip(&step.batches) {
                    batch.readings.extend_from_slice(&more.readings);
                }
                ts = step.ts_ms;
                events.extend(step.events.iter().cloned());
            }
            batches.retain(|b| !b.readings.is_empty());
            let (http, target, config, stats, stop) =
                (http.clone(), target.clone(), config.clone(), stats.clone(), stop.clone());
            in_flight.push_back(async move {
                let uploads = batches.iter().map(|b| upload(&http, &target, b, &config, &stats, stop.clone()));
                let stopped =
                    futures_util::future::join_all(uploads).await.iter().any(|r| matches!(r, Upload::Stopped));
                (ts, events, reports, stopped)
            });
        }
        let Some((ts, events, reports, stopped)) = futures_util::StreamExt::next(&mut in_flight).await else { break };
        if stopped {
            break;
        }
        for event in &events {
            if let Some((url, token, body)) = machine_report(&target, event)
                && let Upload::Stopped = post_json(&http, &url, &token, &body, &config, &stats, stop.clone()).await
            {
                return Ok(sent_through);
            }
        }
        for (url, token, body) in production_reports(&target, &reports) {
            if let Upload::Stopped = post_json(&http, &url, &token, &body, &config, &stats, stop.clone()).await {
                return Ok(sent_through);
            }
        }
        sent_through = ts;
        stats.acknowledge(target.plant_number, sent_through);
    }
    Ok(sent_through)
}

/// Runs the simulation one step into `step`; the production counters observe it, adding
/// their reports to `reports`.
fn advance(
    sim: &mut PlantSim,
    production: Option<&mut ProductionSim>,
    step: &mut Step,
    reports: &mut Vec<ProductionReport>,
) {
    sim.step_into(step);
    if let Some(p) = production {
        p.observe(sim, step.ts_ms, &step.events, reports);
    }
}

/// Whether a real-time plant's next step is already a whole step in the past: it is
/// catching up, and several steps may be in flight.
fn behind(config: &FleetConfig, next_ts_ms: i64) -> bool {
    config.pace == Pace::RealTime && next_ts_ms + 1_000 <= wall_clock_ms()
}

enum Upload {
    Done,
    Stopped,
}

async fn upload(
    http: &reqwest::Client,
    target: &PlantTarget,
    batch: &GatewayBatch,
    config: &FleetConfig,
    stats: &FleetStats,
    mut stop: watch::Receiver<bool>,
) -> Upload {
    let body = match telemetry::encode(&batch.readings) {
        Ok(b) => b,
        Err(e) => {
            tracing::error!(gateway = %batch.gateway, error = %e, "batch could not be encoded");
            stats.refused.fetch_add(1, Ordering::Relaxed);
            return Upload::Done;
        }
    };
    let url = format!("{}/v1/gateways/{}/batches/{}", target.base_url, batch.gateway, batch.sequence);
    let token = target.tokens.get(&*batch.gateway).cloned().unwrap_or_default();
    let n = batch.readings.len() as u64;
    stats.readings_sent.fetch_add(n, Ordering::Relaxed);
    let started = Instant::now();
    let mut backoff = Duration::from_millis(100);
    loop {
        let request =
            http.post(&url).bearer_auth(&token).header("content-type", BINARY_CONTENT_TYPE).body(body.clone()).send();
        let wait = match request.await {
            Ok(r) if r.status().is_success() => {
                stats.record_latency(started.elapsed());
                if let Some(hook) = stats.on_accepted.get() {
                    hook(&batch.gateway, batch.sequence);
                }
                stats.uploads.fetch_add(1, Ordering::Relaxed);
                let rejected = match r.bytes().await {
                    Ok(b) => count_rejected(&b),
                    Err(_) => 0,
                };
                stats.readings_rejected.fetch_add(rejected, Ordering::Relaxed);
                stats.readings_accepted.fetch_add(n.saturating_sub(rejected), Ordering::Relaxed);
                return Upload::Done;
            }
            Ok(r) if r.status().as_u16() == 503 => {
                stats.busy.fetch_add(1, Ordering::Relaxed);
                let after =
                    r.headers().get("retry-after").and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
                after.map_or(backoff, |s| Duration::from_secs(s.min(30)))
            }
            Ok(r) if r.status().is_client_error() => {
                let status = r.status();
                let text = r.text().await.unwrap_or_default();
                tracing::error!(gateway = %batch.gateway, %status, body = %text, "upload refused");
                stats.refused.fetch_add(1, Ordering::Relaxed);
                return Upload::Done;
            }
            Ok(r) => {
                tracing::warn!(gateway = %batch.gateway, status = %r.status(), "upload failed; retrying");
                backoff
            }
            Err(e) => {
                tracing::debug!(gateway = %batch.gateway, error = %e, "upload failed; retrying");
                backoff
            }
        };
        stats.retries.fetch_add(1, Ordering::Relaxed);
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            _ = stop.changed() => return Upload::Stopped,
        }
        backoff = (backoff * 2).min(Duration::from_millis(config.max_backoff_ms));
    }
}

/// What a machine's controller or the maintenance crew reports for a factory event:
/// failures through the line's gateway, services as work orders through the command API.
fn machine_report(target: &PlantTarget, event: &FactoryEvent) -> Option<(String, String, serde_json::Value)> {
    let at = |ms: i64| chrono::DateTime::from_timestamp_millis(ms).map(|t| t.to_rfc3339());
    match event {
        FactoryEvent::MachineFailed { machine, ts_ms, .. } => {
            let gateway = machine.rsplit_once('-').map(|(line, _)| line)?;
            let token = target.tokens.get(gateway)?.clone();
            let body = serde_json::json!({ "event_id": format!("{machine}-failed-{ts_ms}"), "machine_id": machine, "kind": "failed", "at": at(*ts_ms)? });
            Some((format!("{}/v1/gateways/{gateway}/machine-events", target.base_url), token, body))
        }
        FactoryEvent::MaintenanceStarted { machine, ts_ms, kind, .. } => {
            let token = target.crew_token.clone()?;
            let kind = match kind {
                MaintenanceKind::Preventive => "planned",
                MaintenanceKind::Corrective => "emergency",
            };
            let body = serde_json::json!({
                "command_id": format!("sim-{machine}-{ts_ms}-s"), "kind": kind,
                "scheduled_for": at(*ts_ms)?, "note": "simulated"
            });
            Some((format!("{}/v1/commands/machines/{machine}/maintenance/schedule", target.base_url), token, body))
        }
        FactoryEvent::MaintenanceCompleted { machine, ts_ms, .. } => {
            let token = target.crew_token.clone()?;
            let body = serde_json::json!({
                "command_id": format!("sim-{machine}-{ts_ms}-p"), "performed_at": at(*ts_ms)?, "note": "simulated"
            });
            Some((format!("{}/v1/commands/machines/{machine}/maintenance/perform", target.base_url), token, body))
        }
        FactoryEvent::FaultStarted(_) | FactoryEvent::FaultEnded { .. } => None,
    }
}

/// One upload per gateway of its machines' production reports.
fn production_reports(target: &PlantTarget, reports: &[ProductionReport]) -> Vec<(String, String, serde_json::Value)> {
    let at = |ms: i64| chrono::DateTime::from_timestamp_millis(ms).map(|t| t.to_rfc3339());
    let mut by_gateway: BTreeMap<&str, Vec<serde_json::Value>> = BTreeMap::new();
    for r in reports {
        let (Some(from), Some(to)) = (at(r.from_ms), at(r.to_ms)) else { continue };
        by_gateway.entry(&r.gateway).or_default().push(serde_json::json!({
            "machine_id": r.machine, "from": from, "to": to,
            "planned_s": r.planned_ms as f64 / 1000.0, "running_s": r.running_ms as f64 / 1000.0,
            "parts": r.parts, "rejects": r.rejects, "ideal_cycle_s": r.ideal_cycle_ms as f64 / 1000.0,
        }));
    }
    by_gateway
        .into_iter()
        .filter_map(|(gateway, reports)| {
            let token = target.tokens.get(gateway)?.clone();
            let url = format!("{}/v1/gateways/{gateway}/production", target.base_url);
            Some((url, token, serde_json::json!({ "reports": reports })))
        })
        .collect()
}

/// Posts a JSON report, retrying like an upload. A refusal (4xx) is logged, not retried.
async fn post_json(
    http: &reqwest::Client,
    url: &str,
    token: &str,
    body: &serde_json::Value,
    config: &FleetConfig,
    stats: &FleetStats,
    mut stop: watch::Receiver<bool>,
) -> Upload {
    let mut backoff = Duration::from_millis(100);
    loop {
        let wait = match http.post(url).bearer_auth(token).json(body).send().await {
            Ok(r) if r.status().is_success() => return Upload::Done,
            Ok(r) if r.status().as_u16() == 503 => {
                stats.busy.fetch_add(1, Ordering::Relaxed);
                backoff
            }
            Ok(r) if r.status().is_client_error() => {
                let status = r.status();
                let text = r.text().await.unwrap_or_default();
                tracing::warn!(%url, %status, body = %text, "machine report refused");
                stats.refused.fetch_add(1, Ordering::Relaxed);
                return Upload::Done;
            }
            Ok(_) | Err(_) => backoff,
        };
        stats.retries.fetch_add(1, Ordering::Relaxed);
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            _ = stop.changed() => return Upload::Stopped,
        }
        backoff = (backoff * 2).min(Duration::from_millis(config.max_backoff_ms));
    }
}

/// Number of entries in the answer's `rejected` array, without parsing it all.
fn count_rejected(body: &[u8]) -> u64 {
    #[derive(serde::Deserialize)]
    struct Answer {
        rejected: Vec<serde::de::IgnoredAny>,
    }
    serde_json::from_slice::<Answer>(body).map_or(0, |a| a.rejected.len() as u64)
}

/// Milliseconds since the Unix epoch, now.
pub fn wall_clock_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

/// Advances a plant's simulation to `to_ms` without sending anything: coarse steps while
/// far away, then real-time steps. Used to resume a run where it stopped.
pub fn fast_forward(sim: &mut PlantSim, to_ms: i64, coarse_step_ms: u64) -> Result<()> {
    let mut step = Step::default();
    sim.set_step_ms(coarse_step_ms)?;
    while sim.next_ts_ms() + coarse_step_ms as i64 <= to_ms {
        sim.step_into(&mut step);
    }
    sim.set_step_ms(1_000)?;
    while sim.next_ts_ms() <= to_ms {
        sim.step_into(&mut step);
    }
    Ok(())
}
