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
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use chrono::DateTime;
use detector::{Detector, EpisodeConfig, EpisodeEvent, EpisodeTracker, SensorState, Test};
use domain::events::*;
use eventlog::{
    Append, ExpectedVersion, Handler, Metadata, NewEvent, Payload, RecordedEvent, StreamName, Transaction, Unloadable,
};
use readmodels::live::PlantLayout;
use serde::{Deserialize, Serialize};

/// Name of the monitor's subscription and state row.
pub const MONITOR: &str = "anomaly-monitor";

/// Version of the detector and the format of its snapshots.
pub const DETECTOR_VERSION: &str = "floorwatch-detector-4";

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
    /// Wall time at least between two snapshots: catching up, plant time runs many times
    /// faster than the clock, and a snapshot of every sensor each second of it would cost
    /// more than the replay it saves after a crash.
    pub snapshot_min_interval: Duration,
    /// Plant time between checks for sensors that stopped reporting.
    pub sweep_every_ms: i64,
}

impl MonitorConfig {
    /// Events per batch the monitor reads (one transaction, and at most one snapshot):
    /// full batches come only when it is behind, where longer ones save per-batch work.
    pub const BATCH_MAX_EVENTS: usize = 1_000;

    pub fn new(plant_number: u16) -> Self {
        MonitorConfig {
            plant_number,
            // The episode tracker's machine model judges level, noise and spikes.
            detector: detector::Config::beside_machine_model(),
            standalone: detector::Config::default(),
            episodes: EpisodeConfig::default(),
            snapshot_every_ms: 60_000,
            snapshot_min_interval: Duration::from_secs(10),
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
                        let tracker = &mut self.trackers[layout.machine_of[ix] as usize];
                        if signal == layout::SignalKind::Counter {
                            tracker.watch_counter(id);
                        } else {
                            tracker.leave_out_of_model(id);
                        }
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
                observed: finite(e.observed),
                expected: finite(e.expected),
                lower: finite(e.lower),
                upper: finite(e.upper),
                test: test_name(e.test).to_owned(),
                score: finite(f64::from(e.score)),
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
                    score: finite(f64::from(e.peak_score)),
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
                    score: finite(f64::from(e.peak_score)),
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
        let built = body
            .map_err(anyhow::Error::from)
            .and_then(|body| Ok(NewEvent::json(event_type, 1, &body, Metadata::by("anomaly-monitor"))?))
            .and_then(|event| Ok((StreamName::of(ANOMALY, &episode.id)?, event)));
        match built {
            Ok((stream, event)) => Some(Append::new(stream, ExpectedVersion::Any, vec![event]).idempotent(key)),
            Err(e) => {
                // Cannot happen with finite numbers and valid ids; never silently.
                tracing::error!(episode = %episode.id, event_type, error = format!("{e:#}"), "an anomaly event could not be written");
                None
            }
        }
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

    /// Loads a snapshot. One that cannot be read at all, or that a version which cannot
    /// resume it wrote, is [`Unloadable`]; parts holding non-finite numbers (which older
    /// versions could save) are repaired, loudly: those sensors' detectors and those
    /// machines' models start learning again, and open episodes are kept.
    fn restore(&mut self, position: i64, bytes: &[u8]) -> Result<()> {
        let s: Snapshot = postcard::from_bytes(bytes)
            .map_err(|e| Unloadable(format!("the monitor's snapshot at {position} does not decode: {e}")))?;
        if s.version != DETECTOR_VERSION {
            return Err(Unloadable(format!(
                "the snapshot at {position} is of detector {}, which {DETECTOR_VERSION} cannot resume",
                s.version
            ))
            .into());
        }
        if let Some(layout) = &s.layout {
            self.configure(layout)
                .map_err(|e| Unloadable(format!("the layout of the snapshot at {position}: {e:#}")))?;
        }
        let mut sensors = Vec::with_capacity(s.sensors.len());
        let mut reset = 0usize;
        for b in &s.sensors {
            sensors.push(match SensorState::from_bytes(b) {
                Ok(state) => state,
                Err(detector::CheckpointError::NonFinite) => {
                    reset += 1;
                    SensorState::default()
                }
                Err(e) => return Err(Unloadable(format!("the snapshot at {position}: {e}")).into()),
            });
        }
        if sensors.len() != self.sensors.len() {
            return Err(Unloadable(format!(
                "the snapshot at {position} has {} sensors, its layout {}",
                sensors.len(),
                self.sensors.len()
            ))
            .into());
        }
        self.sensors = sensors;
        self.trackers = s.trackers;
        let repaired = self.trackers.iter_mut().map(EpisodeTracker::repair).filter(|r| *r).count();
        if reset > 0 || repaired > 0 {
            tracing::error!(
                position,
                sensors_reset = reset,
                machines_repaired = repaired,
                "the monitor's snapshot held numbers that are not finite (saved by an older version): those sensors and machine models learn again"
            );
        }
        self.watermark = s.watermark;
        self.next_sweep_ms = s.next_sweep_ms;
        self.next_snapshot_ms = s.next_snapshot_ms;
        self.emitted = s.emitted;
        self.snapshot_position = position;
        Ok(())
    }

    /// Repairs, before a snapshot is saved, any state that is not finite, so a snapshot
    /// always loads. The detector keeps its states finite; this is the last guard.
    fn keep_finite(&mut self) {
        let mut reset = 0usize;
        for state in &mut self.sensors {
            if !state.is_finite() {
                *state = SensorState::default();
                reset += 1;
            }
        }
        let repaired = self.trackers.iter_mut().map(EpisodeTracker::repair).filter(|r| *r).count();
        if reset > 0 || repaired > 0 {
            tracing::error!(
                sensors_reset = reset,
                machines_repaired = repaired,
                "the monitor's state held numbers that are not finite: those sensors and machine models learn again"
            );
        }
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

/// A number an event can hold (JSON has no infinity): the detector's numbers are finite,
/// and this keeps it so whatever reaches here.
fn finite(x: f64) -> f64 {
    if x.is_nan() { 0.0 } else { x.clamp(f64::MIN, f64::MAX) }
}

/// A reading for people: one decimal, or exponent form when it is very large.
fn reading(v: f64) -> String {
    if v.abs() >= 1e9 { format!("{v:.3e}") } else { format!("{v:.1}") }
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
        Some(p) if p.test == "dropout" => {
            format!("{} stopped reporting (last {} {})", short(p), reading(p.observed), p.unit)
        }
        Some(p) => format!(
            "{} {} {}, expected {} ({}–{}): {}",
            short(p),
            reading(p.observed),
            p.unit,
            reading(p.expected),
            reading(p.lower),
            reading(p.upper),
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
    let beyond: Vec<String> =
        crossed.iter().filter(|s| s.observed.abs() > detector::MAX_READING_MAGNITUDE).map(|s| short(s)).collect();
    if !beyond.is_empty() {
        text.push_str(&format!(
            "; {} beyond ±{:e}, judged at that bound",
            beyond.join(", "),
            detector::MAX_READING_MAGNITUDE
        ));
    }
    text
}

/// Kinds of sensor the machine model leaves out, each with a detector of its own.
const STANDALONE: [layout::SignalKind; 4] =
    [layout::SignalKind::Setpoint, layout::SignalKind::State, layout::SignalKind::Counter, layout::SignalKind::Batch];

/// The tests that mean something for a kind of sensor left out of the machine model: a set
/// point is written, not measured (only its silence is news); an on/off state can chatter
/// or fall silent; a counter can stop or fall silent (and is judged by its machine's
/// operating point too, see `detector::counter`); a batch cycle can be noisy, spike, shift,
/// freeze or fall silent, each judged against its cycle's shape (`Enabled::cycle_shape`:
/// its own ramps and plateaus would pass for shifts and spikes against a level).
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
        layout::SignalKind::Batch => detector::Enabled { variance: true, cycle_shape: true, ..only(true, true) },
        layout::SignalKind::Analog | layout::SignalKind::Valve => detector::Enabled::default(),
    }
}

/// The monitor as a log consumer.
#[derive(Debug)]
pub struct MonitorHandler {
    pub monitor: Monitor,
    /// When this handler last saved a snapshot.
    saved_at: Option<Instant>,
}

impl MonitorHandler {
    pub fn new(config: MonitorConfig) -> Result<Self> {
        Ok(MonitorHandler { monitor: Monitor::new(config)?, saved_at: None })
    }

    /// A snapshot is due by plant time and the last one is old enough by the clock.
    fn snapshot_now(&self) -> bool {
        self.monitor.snapshot_due
            && self.saved_at.is_none_or(|t| t.elapsed() >= self.monitor.config.snapshot_min_interval)
    }
}

/// Snapshots kept, newest first: the monitor falls back to an older one when the newest
/// cannot be loaded.
const SNAPSHOTS_KEPT: i64 = 3;

impl Handler for MonitorHandler {
    async fn load(&mut self, tx: &Transaction<'_>) -> Result<()> {
        let mut monitor = Monitor::new(self.monitor.config.clone())?;
        let checkpoint = eventlog::checkpoint(tx, MONITOR).await?;
        let stmt = include_str!("../sql/load_monitor_state.sql");
        if let Some(row) = tx.query_opt(stmt, &[&MONITOR, &checkpoint]).await? {
            monitor.restore(row.get(0), row.get(1))?;
        }
        self.monitor = monitor;
        Ok(())
    }

    /// The newest snapshot cannot be loaded: the newest older one that can, else none at
    /// all (the monitor reads the log again from its start, appending nothing twice).
    async fn recover(&mut self, tx: &Transaction<'_>, stored: i64, reason: &str) -> Result<Option<i64>> {
        let rows = tx.query(include_str!("../sql/monitor_snapshots.sql"), &[&MONITOR, &stored]).await?;
        let mut restored = None;
        for row in &rows {
            let position: i64 = row.get(0);
            let mut monitor = Monitor::new(self.monitor.config.clone())?;
            match monitor.restore(position, row.get(1)) {
                Ok(()) => {
                    restored = Some((position, monitor));
                    break;
                }
                Err(e) => tracing::error!(
                    position,
                    error = format!("{e:#}"),
                    "an older monitor snapshot cannot be loaded either"
                ),
            }
        }
        let (position, monitor) = match restored {
            Some(found) => found,
            None => (0, Monitor::new(self.monitor.config.clone())?),
        };
        tracing::error!(
            reason,
            from = stored,
            to = position,
            "the anomaly monitor falls back to {}",
            if position > 0 { "an older snapshot" } else { "reading the whole log again" }
        );
        tx.execute(include_str!("../sql/drop_monitor_state_after.sql"), &[&MONITOR, &position]).await?;
        self.monitor = monitor;
        Ok(Some(position))
    }

    async fn apply(&mut self, tx: &Transaction<'_>, events: &[RecordedEvent]) -> Result<()> {
        for e in events {
            self.monitor.apply(e)?;
        }
        let last = events.last().map_or(0, |e| e.position);
        if self.snapshot_now() {
            self.monitor.keep_finite();
            let bytes = self.monitor.snapshot()?;
            tx.execute(include_str!("../sql/save_monitor_state.sql"), &[&MONITOR, &last, &bytes]).await?;
            tx.execute(include_str!("../sql/prune_monitor_state.sql"), &[&MONITOR, &SNAPSHOTS_KEPT]).await?;
            self.monitor.snapshot_position = last;
            self.monitor.snapshot_due = false;
            self.saved_at = Some(Instant::now());
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

    /// A monitor fed like the log feeds it: the layout, then one batch a second.
    struct Fed {
        monitor: Monitor,
        position: i64,
        events: Vec<(String, serde_json::Value)>,
    }

    impl Fed {
        fn new(scale: &layout::Scale) -> Fed {
            let mut monitor = Monitor::new(MonitorConfig::new(1)).unwrap();
            let layout = LayoutConfigured {
                plant: 1,
                layout_toml: layout::DEFAULT_LAYOUT_TOML.into(),
                plants: scale.plants,
                lines_per_plant: scale.lines_per_plant,
                sensors_per_plant: scale.sensors_per_plant,
                stale_after_ms: 10_000,
            };
            let body = serde_json::to_value(&layout).unwrap();
            monitor.apply(&recorded(1, "plant-P1", LAYOUT_CONFIGURED, Payload::Json(body), 0)).unwrap();
            Fed { monitor, position: 1, events: Vec::new() }
        }

        fn batch(&mut self, readings: &[telemetry::Reading]) {
            self.position += 1;
            let at = readings[0].ts_ms;
            let payload = Payload::Telemetry {
                bytes: telemetry::encode(readings).unwrap(),
                occurred_at: DateTime::from_timestamp_millis(at).unwrap(),
            };
            self.monitor
                .apply(&recorded(self.position, "readings-P1-L01", eventlog::READINGS_RECORDED, payload, at))
                .unwrap();
            for append in self.monitor.take_appends() {
                for e in append.events {
                    if let Payload::Json(body) = e.payload {
                        self.events.push((e.event_type, body));
                    }
                }
            }
        }
    }

    fn recorded(position: i64, stream: &str, event_type: &str, payload: Payload, at_ms: i64) -> RecordedEvent {
        RecordedEvent {
            position,
            stream: StreamName::new(stream).unwrap(),
            version: 1,
            event_type: event_type.into(),
            schema_version: 1,
            payload,
            metadata: Metadata::default(),
            idempotency_key: None,
            recorded_at: DateTime::from_timestamp_millis(at_ms).unwrap(),
            origin: None,
        }
    }

    /// A log written before ingest refused such values: a perfectly regular pattern (every
    /// sensor repeats ten values in steps of 0.05, once a second), then 200 readings of
    /// 1e300 on one sensor. However quiet the warm-up, they are an anomaly, with finite
    /// numbers and an explanation saying they were judged at the detector's bound; and the
    /// monitor's state stays finite, so its snapshot loads.
    #[test]
    fn readings_of_1e300_after_a_perfectly_regular_warm_up_raise_an_anomaly_with_finite_numbers() {
        let scale = layout::Scale { plants: Some(1), lines_per_plant: Some(2), sensors_per_plant: Some(60) };
        let layout = layout::Layout::default_with(&scale).unwrap();
        let sensors = layout.lines()[0].sensor_ids.clone();
        let target = sensors.start + 3;
        let t0 = 1_780_000_000_000_i64;
        let mut fed = Fed::new(&scale);
        for s in 0..1000_i64 {
            let readings: Vec<telemetry::Reading> = sensors
                .clone()
                .map(|id| {
                    let regular = 40.0 + ((i64::from(id) * 7 + s * 13) % 10) as f64 / 20.0;
                    let value = if id == target && (700..900).contains(&s) { 1e300 } else { regular };
                    telemetry::Reading::new(id, t0 + s * 1000, value)
                })
                .collect();
            fed.batch(&readings);
        }
        let detected: Vec<AnomalyDetected> = fed
            .events
            .iter()
            .filter(|(t, _)| t == ANOMALY_DETECTED)
            .map(|(_, body)| serde_json::from_value(body.clone()).unwrap())
            .collect();
        let raised = detected
            .iter()
            .find(|d| d.sensors.iter().any(|s| s.sensor == target && !s.related))
            .unwrap_or_else(|| panic!("the readings of 1e300 raise an anomaly; raised: {detected:#?}"));
        let evidence = raised.sensors.iter().find(|s| s.sensor == target).unwrap();
        assert_eq!(evidence.observed, 1e300);
        for x in [raised.score, evidence.expected, evidence.lower, evidence.upper, evidence.score] {
            assert!(x.is_finite(), "{raised:?}");
        }
        assert!(raised.score > 0.0, "{raised:?}");
        assert!(raised.explanation.contains("1.000e300"), "{}", raised.explanation);
        assert!(raised.explanation.contains("judged at that bound"), "{}", raised.explanation);
        assert!(fed.monitor.sensors.iter().all(SensorState::is_finite), "every sensor's state stays finite");
        assert!(fed.monitor.trackers.iter().all(EpisodeTracker::is_finite), "every machine's model stays finite");
    }

    #[test]
    fn a_reading_beyond_the_detector_bound_is_written_short_and_said_to_be_judged_at_the_bound() {
        let huge = SensorEvidence {
            observed: 1e300,
            expected: 1e15,
            lower: 9.0e14,
            upper: 1.1e15,
            ..evidence("P1-L01-M003-TEMP1", "spike", false)
        };
        assert_eq!(
            explain(&[huge]),
            "TEMP1 1.000e300 °C, expected 1.000e15 (9.000e14–1.100e15): spike; TEMP1 beyond ±1e15, judged at that bound"
        );
    }
}
