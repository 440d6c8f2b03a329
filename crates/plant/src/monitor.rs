//! The anomaly monitor: a consumer of the plant's log that scores every reading with
//! its sensor's streaming detector, groups abnormal readings into episodes per machine,
//! and appends `AnomalyDetected` / `AnomalyUpdated` / `AnomalyResolved` events with an
//! explanation, in the same transaction as its checkpoint.
//!
//! Its state (a detector per sensor, a tracker per machine) is snapshotted with its log
//! position every `snapshot_every_ms` of plant time; the stored checkpoint stays at the
//! snapshot. After a restart it replays the events since the snapshot, which gives the
//! same episode events again; each carries an idempotency key (episode id and its
//! sequence number), so what was already appended is not appended twice and nothing is
//! lost. Sweeps for silent sensors and episode timeouts run on plant time (the newest
//! reading), decided per event, so a replay makes the same decisions as the first run.

use std::collections::BTreeMap;

use anyhow::{Context, Result};
use chrono::DateTime;
use detector::{Detector, EpisodeConfig, EpisodeEvent, EpisodeTracker, SensorState, Test};
use domain::events::*;
use eventlog::{Append, ExpectedVersion, Handler, Metadata, NewEvent, Payload, RecordedEvent, StreamName, Transaction};
use readmodels::live::PlantLayout;
use serde::{Deserialize, Serialize};

/// Name of the monitor's subscription and state row.
pub const MONITOR: &str = "anomaly-monitor";

/// Version of the detector and the format of its snapshots.
pub const DETECTOR_VERSION: &str = "floorwatch-detector-2";

#[derive(Debug, Clone)]
pub struct MonitorConfig {
    pub plant_number: u16,
    /// The detector of the readings of measurements the machine model judges too.
    pub detector: detector::Config,
    /// The detector of sensors the machine model leaves out (set points, states,
    /// counters, batch cycles), on the readings alone: each kind runs the tests that mean
    /// something for it (see [`standalone_tests`]).
    pub standalone: detector::Config,
    pub episodes: EpisodeConfig,
    /// Plant time between snapshots of the monitor's state.
    pub snapshot_every_ms: i64,
    /// Plant time between checks for sensors that stopped reporting.
    pub sweep_every_ms: i64,
}

impl MonitorConfig {
    pub fn new(plant_number: u16) -> Self {
        MonitorConfig {
            plant_number,
            // The episode tracker's machine model judges level, noise and spikes.
            detector: detector::Config::beside_machine_model(),
            standalone: detector::Config::default(),
            episodes: EpisodeConfig::default(),
            snapshot_every_ms: 60_000,
            sweep_every_ms: 1_000,
        }
    }
}

/// What is snapshotted.
#[derive(Debug, Serialize, Deserialize)]
struct Snapshot {
    version: String,
    layout: Option<LayoutConfigured>,
    sensors: Vec<Vec<u8>>,
    trackers: Vec<EpisodeTracker>,
    watermark: i64,
    next_sweep_ms: i64,
    next_snapshot_ms: i64,
    /// Events emitted per open episode, for idempotency keys.
    emitted: BTreeMap<String, u32>,
}

/// The monitor's fold.
#[derive(Debug)]
pub struct Monitor {
    config: MonitorConfig,
    /// The measurements' detector first, then one per kind of sensor left out of the
    /// machine model (`STANDALONE` order).
    detectors: Vec<Detector>,
    /// Per plant-local sensor: its detector in `detectors`.
    detector_of: Vec<u8>,
    layout: Option<PlantLayout>,
    sensors: Vec<SensorState>,
    trackers: Vec<EpisodeTracker>,
    watermark: i64,
    next_sweep_ms: i64,
    next_snapshot_ms: i64,
    emitted: BTreeMap<String, u32>,
    /// Position of the stored snapshot.
    snapshot_position: i64,
    out: Vec<Append>,
    snapshot_due: bool,
}

impl Monitor {
    pub fn new(config: MonitorConfig) -> Result<Self> {
        let mut detectors = vec![Detector::new(config.detector.clone()).context("detector configuration")?];
        for kind in STANDALONE {
            let cfg = detector::Config { enabled: standalone_tests(kind), ..config.standalone.clone() };
            detectors.push(Detector::new(cfg).context("standalone detector configuration")?);
        }
        config.episodes.validate().context("episode configuration")?;
        Ok(Monitor {
            config,
            detectors,
            detector_of: Vec::new(),
            layout: None,
            sensors: Vec::new(),
            trackers: Vec::new(),
            watermark: i64::MIN,
            next_sweep_ms: i64::MIN,
            next_snapshot_ms: i64::MIN,
            emitted: BTreeMap::new(),
            snapshot_position: 0,
            out: Vec::new(),
            snapshot_due: false,
        })
    }

    fn configure(&mut self, event: &LayoutConfigured) -> Result<()> {
        let layout = PlantLayout::build(event).map_err(anyhow::Error::msg)?;
        let machines = layout.line_of.len();
        self.sensors = vec![SensorState::default(); layout.machine_of.len()];
        self.trackers = (0..machines)
            .map(|m| EpisodeTracker::new(layout.machine(m).id.clone(), self.config.episodes.clone()))
            .collect::<Result<_, _>>()?;
        // Only measurements that move with the machine's operating point go into its model.
        self.detector_of = (0..layout.machine_of.len())
            .map(|ix| {
                let id = layout.first_sensor_id + ix as u32;
                let signal = layout.layout.sensor(id).map_or(layout::SignalKind::Analog, |info| info.spec.signal);
                match STANDALONE.iter().position(|k| *k == signal) {
                    Some(k) => {
                        self.trackers[layout.machine_of[ix] as usize].leave_out_of_model(id);
                        k as u8 + 1
                    }
                    None => 0,
                }
            })
            .collect();
        self.emitted.clear();
        self.layout = Some(layout);
        Ok(())
    }

    /// Folds one event; episode events to append collect in `self.out`.
    pub fn apply(&mut self, e: &RecordedEvent) -> Result<()> {
        match &e.payload {
            Payload::Json(_) if e.event_type == LAYOUT_CONFIGURED => {
                let event: LayoutConfigured = e.json()?;
                if event.plant == self.config.plant_number && self.layout.as_ref().is_none_or(|l| l.event != event) {
                    self.configure(&event)?;
                }
            }
            Payload::Telemetry { .. } => {
                let readings = match e.readings() {
                    Ok(r) => r,
                    Err(err) => {
                        tracing::warn!(position = e.position, error = %err, "monitor skipped an unreadable batch");
                        return Ok(());
                    }
                };
                self.readings(&readings);
            }
            Payload::Json(_) => {}
        }
        Ok(())
    }

    fn readings(&mut self, readings: &[telemetry::Reading]) {
        let Some(layout) = self.layout.as_ref() else { return };
        let mut episode_events = Vec::new();
        let mut newest = self.watermark;
        for r in readings {
            let Some(ix) = layout.sensor_ix(r.sensor) else { continue };
            let detector = &self.detectors[usize::from(self.detector_of.get(ix).copied().unwrap_or(0))];
            let Ok(score) = detector.next(&mut self.sensors[ix], r.ts_ms, r.value) else { continue };
            newest = newest.max(r.ts_ms);
            let machine = layout.machine_of[ix] as usize;
            for ev in self.trackers[machine].observe(r.sensor, &score) {
                episode_events.push((machine, ev));
            }
        }
        self.watermark = newest;
        if self.next_sweep_ms == i64::MIN {
            self.next_sweep_ms = newest + self.config.sweep_every_ms;
            self.next_snapshot_ms = newest + self.config.snapshot_every_ms;
        }
        if newest >= self.next_sweep_ms {
            self.next_sweep_ms = newest + self.config.sweep_every_ms;
            // Sensors that stopped reporting, and episodes gone quiet.
            for ix in 0..self.sensors.len() {
                let state = &self.sensors[ix];
                if state.last_ts_ms().is_none_or(|t| t >= newest) {
                    continue;
                }
                let score = self.detectors[0].overdue(state, newest);
                if score.test == Test::Dropout {
                    let machine = layout.machine_of[ix] as usize;
                    let id = layout.first_sensor_id + ix as u32;
                    for ev in self.trackers[machine].observe(id, &score) {
                        episode_events.push((machine, ev));
                    }
                }
            }
            for (m, tracker) in self.trackers.iter_mut().enumerate() {
                if let Some(ev) = tracker.tick(newest) {
                    episode_events.push((m, ev));
                }
            }
        }
        if newest >= self.next_snapshot_ms {
            self.next_snapshot_ms = newest + self.config.snapshot_every_ms;
            self.snapshot_due = true;
        }
        for (machine, ev) in episode_events {
            if let Some(append) = self.episode_append(machine, ev) {
                self.out.push(append);
            }
        }
    }

    fn episode_append(&mut self, machine: usize, ev: EpisodeEvent) -> Option<Append> {
        let layout = self.layout.as_ref()?;
        let (episode, kind) = match &ev {
            EpisodeEvent::Detected(e) => (e, "detected"),
            EpisodeEvent::Updated(e) => (e, "updated"),
            EpisodeEvent::Resolved { episode, .. } => (episode, "resolved"),
        };
        let n = self.emitted.entry(episode.id.clone()).or_default();
        *n += 1;
        let key = format!("{}:{n}", episode.id);
        if kind == "resolved" {
            self.emitted.remove(&episode.id);
        }
        let m = layout.machine(machine);
        let line_id = layout.layout.lines()[m.line].id.clone();
        let evidence = |e: &detector::SensorEvidence, related: bool| {
            let info = layout.layout.sensor(e.sensor)?;
            Some(SensorEvidence {
                sensor: e.sensor,
                name: info.name().to_owned(),
                kind: info.kind().to_owned(),
                unit: info.unit().to_owned(),
                at: DateTime::from_timestamp_millis(e.ts_ms)?,
                observed: e.observed,
                expected: e.expected,
                lower: e.lower,
                upper: e.upper,
                test: test_name(e.test).to_owned(),
                score: f64::from(e.score),
                related,
            })
        };
        let sensors: Vec<SensorEvidence> = episode
            .sensors
            .iter()
            .filter_map(|e| evidence(e, false))
            .chain(episode.related.iter().filter_map(|e| evidence(e, true)))
            .collect();
        let explanation = explain(&sensors);
        let severity = match episode.severity {
            detector::Severity::Minor => Severity::Minor,
            detector::Severity::Major => Severity::Major,
            detector::Severity::Critical => Severity::Critical,
        };
        let (event_type, body) = match &ev {
            EpisodeEvent::Detected(e) => (
                ANOMALY_DETECTED,
                serde_json::to_value(AnomalyDetected {
                    anomaly_id: e.id.clone(),
                    machine_id: m.id.clone(),
                    line_id,
                    started_at: DateTime::from_timestamp_millis(e.start_ms)?,
                    severity,
                    score: f64::from(e.peak_score),
                    sensors,
                    explanation,
                    detector_version: DETECTOR_VERSION.into(),
                }),
            ),
            EpisodeEvent::Updated(e) => (
                ANOMALY_UPDATED,
                serde_json::to_value(AnomalyUpdated {
                    anomaly_id: e.id.clone(),
                    at: DateTime::from_timestamp_millis(e.last_alarm_ms)?,
                    severity,
                    score: f64::from(e.peak_score),
                    sensors,
                    explanation,
                }),
            ),
            EpisodeEvent::Resolved { episode, resolved_ms } => (
                ANOMALY_RESOLVED,
                serde_json::to_value(AnomalyResolved {
                    anomaly_id: episode.id.clone(),
                    at: DateTime::from_timestamp_millis(*resolved_ms)?,
                }),
            ),
        };
        let event = NewEvent::json(event_type, 1, &body.ok()?, Metadata::by("anomaly-monitor")).ok()?;
        let stream = StreamName::of(ANOMALY, &episode.id).ok()?;
        Some(Append::new(stream, ExpectedVersion::Any, vec![event]).idempotent(key))
    }

    fn snapshot(&self) -> Result<Vec<u8>> {
        let snapshot = Snapshot {
            version: DETECTOR_VERSION.into(),
            layout: self.layout.as_ref().map(|l| l.event.clone()),
            sensors: self.sensors.iter().map(SensorState::to_bytes).collect(),
            trackers: self.trackers.clone(),
            watermark: self.watermark,
            next_sweep_ms: self.next_sweep_ms,
            next_snapshot_ms: self.next_snapshot_ms,
            emitted: self.emitted.clone(),
        };
        Ok(postcard::to_allocvec(&snapshot)?)
    }

    fn restore(&mut self, position: i64, bytes: &[u8]) -> Result<()> {
        let s: Snapshot = postcard::from_bytes(bytes).context("reading the monitor's snapshot")?;
        if s.version != DETECTOR_VERSION {
            anyhow::bail!("snapshot of detector {} cannot be resumed by {DETECTOR_VERSION}", s.version);
        }
        if let Some(layout) = &s.layout {
            self.configure(layout)?;
        }
        self.sensors = s.sensors.iter().map(|b| SensorState::from_bytes(b)).collect::<Result<_, _>>()?;
        self.trackers = s.trackers;
        self.watermark = s.watermark;
        self.next_sweep_ms = s.next_sweep_ms;
        self.next_snapshot_ms = s.next_snapshot_ms;
        self.emitted = s.emitted;
        self.snapshot_position = position;
        Ok(())
    }

    /// Takes the episode events folded so far, leaving them unappended: how the monitor is
    /// driven in-process (offline evaluation over recorded readings) with no database.
    pub fn take_appends(&mut self) -> Vec<Append> {
        std::mem::take(&mut self.out)
    }

    /// Open episodes right now (for status displays).
    pub fn open_episodes(&self) -> usize {
        self.trackers.iter().filter(|t| t.open_episode().is_some()).count()
    }
}

fn test_name(t: Test) -> &'static str {
    match t {
        Test::None => "none",
        Test::Spike => "spike",
        Test::LevelShift => "level_shift",
        Test::Drift => "drift",
        Test::Variance => "variance",
        Test::Stuck => "stuck",
        Test::Dropout => "dropout",
    }
}

/// "TEMP1 91.3 °C, expected 70.1 (66.0–74.2): level shift; VIB2 and CURR1 moved with it".
fn explain(sensors: &[SensorEvidence]) -> String {
    let short = |s: &SensorEvidence| s.name.rsplit('-').next().unwrap_or(&s.name).to_owned();
    let crossed: Vec<&SensorEvidence> = sensors.iter().filter(|s| !s.related).collect();
    let mut text = match crossed.first() {
        Some(p) if p.test == "dropout" => format!("{} stopped reporting (last {:.1} {})", short(p), p.observed, p.unit),
        Some(p) => format!(
            "{} {:.1} {}, expected {:.1} ({:.1}–{:.1}): {}",
            short(p),
            p.observed,
            p.unit,
            p.expected,
            p.lower,
            p.upper,
            p.test.replace('_', " ")
        ),
        None => "abnormal readings".to_owned(),
    };
    if crossed.len() > 1 {
        let others: Vec<String> = crossed[1..].iter().map(|s| short(s)).collect();
        text.push_str(&format!("; also {}", others.join(", ")));
    }
    let related: Vec<String> = sensors.iter().filter(|s| s.related).map(short).collect();
    if !related.is_empty() {
        text.push_str(&format!("; {} moved with it", related.join(", ")));
    }
    text
}

/// Kinds of sensor the machine model leaves out, each with a detector of its own.
const STANDALONE: [layout::SignalKind; 4] =
    [layout::SignalKind::Setpoint, layout::SignalKind::State, layout::SignalKind::Counter, layout::SignalKind::Batch];

/// The tests that mean something for a kind of sensor left out of the machine model: a set
/// point is written, not measured (only its silence is news); an on/off state can chatter
/// or fall silent; a counter can stop or fall silent; a batch cycle can be noisy, freeze or
/// fall silent (its own ramps and plateaus would pass for shifts and spikes: a change of
/// its level is not judged yet).
pub fn standalone_tests(kind: layout::SignalKind) -> detector::Enabled {
    let only = |stuck, chatter| detector::Enabled {
        spike: false,
        level_shift: false,
        drift: false,
        variance: false,
        stuck,
        chatter,
        dropout: true,
        ..detector::Enabled::default()
    };
    match kind {
        layout::SignalKind::Setpoint => only(false, false),
        layout::SignalKind::State => only(false, true),
        layout::SignalKind::Counter => only(true, false),
        layout::SignalKind::Batch => detector::Enabled { variance: true, ..only(true, true) },
        layout::SignalKind::Analog | layout::SignalKind::Valve => detector::Enabled::default(),
    }
}

/// The monitor as a log consumer.
#[derive(Debug)]
pub struct MonitorHandler {
    pub monitor: Monitor,
}

impl MonitorHandler {
    pub fn new(config: MonitorConfig) -> Result<Self> {
        Ok(MonitorHandler { monitor: Monitor::new(config)? })
    }
}

impl Handler for MonitorHandler {
    async fn load(&mut self, tx: &Transaction<'_>) -> Result<()> {
        let mut monitor = Monitor::new(self.monitor.config.clone())?;
        if let Some(row) = tx.query_opt(include_str!("../sql/load_monitor_state.sql"), &[&MONITOR]).await? {
            monitor.restore(row.get(0), row.get(1))?;
        }
        self.monitor = monitor;
        Ok(())
    }

    async fn apply(&mut self, tx: &Transaction<'_>, events: &[RecordedEvent]) -> Result<()> {
        for e in events {
            self.monitor.apply(e)?;
        }
        let last = events.last().map_or(0, |e| e.position);
        if self.monitor.snapshot_due {
            let bytes = self.monitor.snapshot()?;
            tx.execute(include_str!("../sql/save_monitor_state.sql"), &[&MONITOR, &last, &bytes]).await?;
            self.monitor.snapshot_position = last;
            self.monitor.snapshot_due = false;
        }
        let appends = std::mem::take(&mut self.monitor.out);
        if !appends.is_empty() {
            eventlog::append(tx, &appends).await?;
        }
        Ok(())
    }

    fn durable_position(&self, _last: i64) -> i64 {
        self.monitor.snapshot_position
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn evidence(name: &str, test: &str, related: bool) -> SensorEvidence {
        SensorEvidence {
            sensor: 1,
            name: name.into(),
            kind: "TEMP".into(),
            unit: "°C".into(),
            at: DateTime::from_timestamp_millis(0).unwrap_or_default(),
            observed: 91.34,
            expected: 70.1,
            lower: 66.0,
            upper: 74.2,
            test: test.into(),
            score: 0.99,
            related,
        }
    }

    #[test]
    fn explanations_read_like_a_sentence() {
        let text = explain(&[
            evidence("P1-L01-M003-TEMP1", "level_shift", false),
            evidence("P1-L01-M003-TEMP2", "spike", false),
            evidence("P1-L01-M003-VIB1", "none", true),
        ]);
        assert_eq!(text, "TEMP1 91.3 °C, expected 70.1 (66.0–74.2): level shift; also TEMP2; VIB1 moved with it");
        assert_eq!(
            explain(&[evidence("P1-L01-M003-FLOW1", "dropout", false)]),
            "FLOW1 stopped reporting (last 91.3 °C)"
        );
    }
}
