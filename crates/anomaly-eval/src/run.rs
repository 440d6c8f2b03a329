//! Drives the production monitor (`plant::monitor::Monitor`) in-process over recorded or
//! freshly simulated readings, batch by batch as the plant's log would deliver them, and
//! collects the anomaly events it raises.

use std::path::Path;
use std::sync::mpsc;

use chrono::DateTime;
use domain::events::{LAYOUT_CONFIGURED, LayoutConfigured};
use eventlog::{Metadata, Payload, READINGS_RECORDED, RecordedEvent, StreamName};
use layout::{Layout, Scale};
use plant::monitor::{Monitor, MonitorConfig};
use serde::{Deserialize, Serialize};
use simulator::{Factory, SimConfig, Step};

use crate::EvalError;
use crate::episodes::{AnomalyEvent, fold, parse_event};
use crate::score::{PlantSize, Report, ScoreRules, Span, score};
use crate::truth::{TruthBuilder, UnreadFaults, read_truth};

/// How a run is evaluated: the monitor's settings (the plant's defaults unless changed),
/// the layout file the run was simulated with, and the scoring rules.
#[derive(Debug, Clone)]
pub struct RunOptions {
    pub detector: detector::Config,
    pub episodes: detector::EpisodeConfig,
    /// The layout file's text; `None` for the built-in default layout.
    pub layout_toml: Option<String>,
    pub rules: ScoreRules,
}

impl Default for RunOptions {
    fn default() -> Self {
        let monitor = MonitorConfig::new(1);
        RunOptions {
            detector: monitor.detector,
            episodes: monitor.episodes,
            layout_toml: None,
            rules: ScoreRules::default(),
        }
    }
}

impl RunOptions {
    fn monitor_config(&self, plant: u16) -> MonitorConfig {
        MonitorConfig { detector: self.detector.clone(), episodes: self.episodes.clone(), ..MonitorConfig::new(plant) }
    }

    fn describe(&self) -> serde_json::Value {
        serde_json::json!({ "detector": self.detector, "episodes": self.episodes })
    }
}

/// One plant's monitor, fed like the plant's log feeds it.
struct PlantMonitor {
    monitor: Monitor,
    position: i64,
    events: Vec<AnomalyEvent>,
}

fn recorded(
    position: i64,
    stream: &str,
    event_type: &str,
    payload: Payload,
    at_ms: i64,
) -> Result<RecordedEvent, EvalError> {
    Ok(RecordedEvent {
        position,
        stream: StreamName::new(stream).map_err(|e| EvalError::Layout(e.to_string()))?,
        version: 1,
        event_type: event_type.to_owned(),
        schema_version: 1,
        payload,
        metadata: Metadata::default(),
        idempotency_key: None,
        recorded_at: DateTime::from_timestamp_millis(at_ms).unwrap_or_default(),
        origin: None,
    })
}

impl PlantMonitor {
    fn new(config: MonitorConfig, layout: LayoutConfigured, start_ms: i64) -> Result<Self, EvalError> {
        let mut monitor = Monitor::new(config).map_err(|e| EvalError::Monitor(format!("{e:#}")))?;
        let body = serde_json::to_value(&layout).map_err(|e| EvalError::Layout(e.to_string()))?;
        let event = recorded(1, &format!("plant-P{}", layout.plant), LAYOUT_CONFIGURED, Payload::Json(body), start_ms)?;
        monitor.apply(&event).map_err(|e| EvalError::Monitor(format!("{e:#}")))?;
        Ok(PlantMonitor { monitor, position: 1, events: Vec::new() })
    }

    /// Applies one gateway batch (encoded readings) raised at plant time `at_ms`.
    fn batch(&mut self, gateway: &str, at_ms: i64, bytes: Vec<u8>) -> Result<(), EvalError> {
        self.position += 1;
        let occurred_at = DateTime::from_timestamp_millis(at_ms).unwrap_or_default();
        let event = recorded(
            self.position,
            &format!("readings-{gateway}"),
            READINGS_RECORDED,
            Payload::Telemetry { bytes, occurred_at },
            at_ms,
        )?;
        self.monitor.apply(&event).map_err(|e| EvalError::Monitor(format!("{e:#}")))?;
        for append in self.monitor.take_appends() {
            for e in &append.events {
                if let Payload::Json(body) = &e.payload
                    && let Some(ev) = parse_event(&e.event_type, body, Some(at_ms))?
                {
                    self.events.push(ev);
                }
            }
        }
        Ok(())
    }
}

fn layout_event(plant: u16, layout_toml: &str, scale: &Scale) -> LayoutConfigured {
    LayoutConfigured {
        plant,
        layout_toml: layout_toml.to_owned(),
        plants: scale.plants,
        lines_per_plant: scale.lines_per_plant,
        sensors_per_plant: scale.sensors_per_plant,
        stale_after_ms: 10_000,
    }
}

/// Evaluates a recorded run (`floorwatch simulate --output DIR`) with the plant's default
/// monitor settings.
pub fn evaluate_run(dir: &Path) -> Result<Report, EvalError> {
    evaluate_run_with(dir, &RunOptions::default())
}

/// Evaluates a recorded run: every plant's readings through its own monitor, in the
/// order they were recorded, scored against the run's ground truth.
pub fn evaluate_run_with(dir: &Path, options: &RunOptions) -> Result<Report, EvalError> {
    let manifest = simulator::read_manifest(dir)?;
    if !manifest.complete {
        return Err(EvalError::Incomplete(dir.to_path_buf()));
    }
    let first = manifest.plants.first().ok_or_else(|| EvalError::Layout("the run records no plant".into()))?;
    let layout_toml = options.layout_toml.as_deref().unwrap_or(layout::DEFAULT_LAYOUT_TOML);
    let scale = Scale {
        plants: Some(manifest.plants.len() as u32),
        lines_per_plant: Some(first.gateways.len() as u32),
        sensors_per_plant: Some(first.sensors as u32),
    };
    let layout = Layout::from_toml(layout_toml, &scale).map_err(|e| EvalError::Layout(e.to_string()))?;
    // The run must be the layout's: same plants, gateways and sensors.
    for (mp, lp) in manifest.plants.iter().zip(layout.plants()) {
        let gateways: Vec<&str> = layout.lines()[lp.lines.clone()].iter().map(|l| l.id.as_str()).collect();
        if mp.id != lp.id || mp.gateways != gateways || mp.sensors != lp.sensors.len() as u64 {
            return Err(EvalError::LayoutMismatch(format!(
                "plant {} of the run has {} sensors on gateways {:?}; the layout gives {} with {} sensors on {:?}",
                mp.id,
                mp.sensors,
                mp.gateways,
                lp.id,
                lp.sensors.len(),
                gateways
            )));
        }
    }
    let truth_path = dir.join(&manifest.ground_truth);
    let file = std::fs::File::open(&truth_path).map_err(|source| EvalError::Io { path: truth_path.clone(), source })?;
    let mut truth = read_truth(std::io::BufReader::new(file))?;
    check_truth_names(&truth, &layout)?;
    let mut unread = UnreadFaults::new();
    for fault in &truth.faults {
        unread.fault(fault);
    }

    let mut events = Vec::new();
    let mut plants = Vec::new();
    for (mp, lp) in manifest.plants.iter().zip(layout.plants()) {
        let mut monitor = PlantMonitor::new(
            options.monitor_config(lp.number),
            layout_event(lp.number, layout_toml, &scale),
            manifest.start_ms,
        )?;
        for record in simulator::open_readings(dir, &mp.id)? {
            let record = record.map_err(|source| EvalError::Replay { path: dir.join(&mp.file), source })?;
            let at_ms = i64::try_from(record.sequence).unwrap_or(i64::MAX);
            // A batch the monitor cannot read is skipped by it too: none of its readings count.
            for r in telemetry::decode(&record.payload).unwrap_or_default() {
                unread.reading(r.sensor, r.ts_ms);
            }
            monitor.batch(&record.gateway, at_ms, record.payload)?;
        }
        events.append(&mut monitor.events);
        plants.push(PlantSize { id: mp.id.clone(), sensors: mp.sensors });
    }
    truth.unread = unread.finish();
    let episodes = fold(events)?;
    let end_ms = manifest.last_ts_ms.map_or(manifest.start_ms, |t| t + manifest.step_ms as i64);
    let span = Span { start_ms: manifest.start_ms, end_ms };
    let mut report =
        score(&episodes, &truth, span, &plants, &options.rules, &dir.display().to_string(), "raised", Some(&layout));
    report.monitor = Some(options.describe());
    Ok(report)
}

/// Every sensor a fault names must be the layout's sensor of that id and name: otherwise
/// the run was simulated with another layout, and nothing would match.
fn check_truth_names(truth: &crate::truth::GroundTruth, layout: &Layout) -> Result<(), EvalError> {
    for f in &truth.faults {
        for s in &f.sensors {
            let ok = layout.sensor(s.id).is_some_and(|info| info.name() == s.name && info.machine.id == f.machine);
            if !ok {
                return Err(EvalError::LayoutMismatch(format!(
                    "fault {}#{} names sensor {} ({}) on {}, which the layout does not have",
                    f.plant, f.fault, s.id, s.name, f.machine
                )));
            }
        }
    }
    Ok(())
}

/// A simulation to evaluate without writing files: the factory's size, seed, start and
/// length, and the simulator's settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Simulation {
    pub plants: u32,
    pub sensors_per_plant: u32,
    /// `None`: the layout's own number, scaled with the plant's size.
    pub lines_per_plant: Option<u32>,
    pub seed: u64,
    pub start_ms: i64,
    pub duration_s: u64,
    pub config: SimConfig,
}

impl Default for Simulation {
    fn default() -> Self {
        Simulation {
            plants: 1,
            sensors_per_plant: 1_000,
            lines_per_plant: None,
            seed: 1,
            // 2026-03-02 00:00 UTC.
            start_ms: 1_772_409_600_000,
            duration_s: 86_400,
            config: SimConfig::default(),
        }
    }
}

/// One step's output, encoded as the gateways would send it.
struct EncodedStep {
    ts_ms: i64,
    batches: Vec<(usize, String, Vec<u8>)>,
    events: Vec<simulator::FactoryEvent>,
}

/// Simulates and evaluates in one go (the simulator on its own thread), with no files.
/// Equivalent to `floorwatch simulate --output DIR` followed by [`evaluate_run_with`].
pub fn evaluate_simulation(sim: &Simulation, options: &RunOptions) -> Result<Report, EvalError> {
    let layout_toml = options.layout_toml.as_deref().unwrap_or(layout::DEFAULT_LAYOUT_TOML);
    let scale = Scale {
        plants: Some(sim.plants),
        lines_per_plant: sim.lines_per_plant,
        sensors_per_plant: Some(sim.sensors_per_plant),
    };
    let layout = Layout::from_toml(layout_toml, &scale).map_err(|e| EvalError::Layout(e.to_string()))?;
    let mut factory =
        Factory::new(&layout, &sim.config, sim.seed, sim.start_ms).map_err(|e| EvalError::Sim(e.to_string()))?;
    let mut monitors = Vec::new();
    let mut plants = Vec::new();
    for lp in layout.plants() {
        monitors.push(PlantMonitor::new(
            options.monitor_config(lp.number),
            layout_event(lp.number, layout_toml, &scale),
            sim.start_ms,
        )?);
        plants.push(PlantSize { id: lp.id.clone(), sensors: lp.sensors.len() as u64 });
    }
    let plant_of_line: Vec<usize> = layout.lines().iter().map(|l| l.plant).collect();
    let end_ms =
        sim.start_ms.saturating_add(i64::try_from(sim.duration_s).unwrap_or(i64::MAX / 2).saturating_mul(1000));

    let (tx, rx) = mpsc::sync_channel::<Result<EncodedStep, EvalError>>(64);
    let mut truth = TruthBuilder::new();
    let unread = std::thread::scope(|scope| -> Result<UnreadFaults, EvalError> {
        let simulated = scope.spawn(move || {
            let mut step = Step::default();
            let mut unread = UnreadFaults::new();
            while factory.next_ts_ms() < end_ms {
                factory.step_into(&mut step);
                for event in &step.events {
                    if let simulator::FactoryEvent::FaultStarted(record) = event {
                        unread.fault(record);
                    }
                }
                for r in step.batches.iter().flat_map(|b| &b.readings) {
                    unread.reading(r.sensor, r.ts_ms);
                }
                let mut batches = Vec::with_capacity(step.batches.len());
                for b in step.batches.iter().filter(|b| !b.readings.is_empty()) {
                    match telemetry::encode(&b.readings) {
                        Ok(bytes) => batches.push((b.line, b.gateway.to_string(), bytes)),
                        Err(e) => {
                            let _ = tx.send(Err(EvalError::Sim(e.to_string())));
                            return unread;
                        }
                    }
                }
                let encoded = EncodedStep { ts_ms: step.ts_ms, batches, events: std::mem::take(&mut step.events) };
                if tx.send(Ok(encoded)).is_err() {
                    return unread;
                }
            }
            unread
        });
        for step in rx {
            let step = step?;
            for event in &step.events {
                truth.push(event)?;
            }
            for (line, gateway, bytes) in step.batches {
                monitors[plant_of_line[line]].batch(&gateway, step.ts_ms, bytes)?;
            }
        }
        simulated.join().map_err(|_| EvalError::Sim("the simulator's thread panicked".into()))
    })?;
    let events: Vec<AnomalyEvent> = monitors.into_iter().flat_map(|m| m.events).collect();
    let episodes = fold(events)?;
    let span = Span { start_ms: sim.start_ms, end_ms };
    let source = format!(
        "simulation: {} plant(s) × {} sensors, seed {}, {} s",
        sim.plants, sim.sensors_per_plant, sim.seed, sim.duration_s
    );
    let mut truth = truth.finish();
    truth.unread = unread.finish();
    let mut report = score(&episodes, &truth, span, &plants, &options.rules, &source, "raised", Some(&layout));
    report.monitor = Some(options.describe());
    Ok(report)
}
