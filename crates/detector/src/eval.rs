//! Measurement: throughput and state size of the detector, and detection quality (recall,
//! delay, false episodes) on the synthetic plant of [`crate::synth`].
//!
//! Both take what they cannot compute purely as arguments (a clock for the benchmark),
//! so the library itself never reads time.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::config::{Config, ConfigError};
use crate::detector::{Detector, SensorState, Test};
use crate::episode::{Episode, EpisodeConfig, EpisodeConfigError, EpisodeEvent, EpisodeTracker};
use crate::machine::{MachineModel, MachineModelConfig};
use crate::stats::SplitMix;
use crate::synth::{FaultKind, Plant, PlantSpec};

/// Sensors per plant, for scaling false episodes to a plant-hour.
pub const SENSORS_PER_PLANT: f64 = 10_000.0;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BenchSpec {
    pub sensors: usize,
    pub readings_per_sensor: usize,
    pub seed: u64,
}

impl Default for BenchSpec {
    fn default() -> Self {
        BenchSpec { sensors: 50_000, readings_per_sensor: 200, seed: 1 }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BenchReport {
    pub points_per_s_per_core: f64,
    pub ns_per_point: f64,
    /// In-memory size of one sensor's state.
    pub state_bytes_per_sensor: usize,
    /// Size of one sensor's serialized checkpoint (postcard), averaged over the sensors.
    pub checkpoint_bytes_per_sensor: f64,
    pub sensors: usize,
    pub points: u64,
    /// Share of one core that the plant floor's load (50,000 sensors at 1 Hz) would take.
    pub core_share_at_50k_sensors_1hz: f64,
    /// Sum of scores, so the work cannot be optimised away; also a cheap sanity value.
    pub score_checksum: f64,
    /// The machine model (common mode removed, every residual scored by a detector of its
    /// own), per reading, on machines of `MACHINE_SENSORS` sensors whose model is ready.
    pub machine_model_points_per_s_per_core: f64,
    /// What the monitor does per reading: the per-sensor detector with the monitor's
    /// settings (stuck and dropout tests on the readings) plus the machine model.
    pub monitor_points_per_s_per_core: f64,
    /// In-memory size of the machine model per sensor (its residual detector included).
    pub machine_model_bytes_per_sensor: f64,
    /// Machines in the machine-model benchmark, and how many had their model ready (scoring
    /// residuals) while timed.
    pub machines: usize,
    pub machines_ready: usize,
}

/// Sensors per machine in the machine-model benchmark.
pub const MACHINE_SENSORS: usize = 15;

/// Scores `readings_per_sensor` readings of `sensors` sensors in time order (the access
/// pattern of the monitor: every sensor's state once per second). `elapsed` must return
/// the time since an arbitrary fixed start (e.g. `|| start.elapsed()`).
pub fn benchmark(
    spec: &BenchSpec,
    cfg: Config,
    mut elapsed: impl FnMut() -> Duration,
) -> Result<BenchReport, ConfigError> {
    let detector = Detector::new(cfg)?;
    let sensors = spec.sensors.max(1);
    let steps = spec.readings_per_sensor.max(1);
    let mut rng = SplitMix::new(spec.seed);
    // Values are prepared beforehand so only the detector is timed; 64 distinct seconds
    // are cycled through, each sensor with its own level and noise.
    const CYCLE: usize = 64;
    let mut values = vec![0.0f64; sensors * CYCLE];
    for s in 0..sensors {
        let level = 10f64.powf(rng.range(-1.0, 3.0));
        let noise = level * 0.01;
        for t in 0..CYCLE {
            values[t * sensors + s] = f64::from((level + noise * rng.normal()) as f32);
        }
    }
    let base_ms = 1_700_000_000_000i64;
    let points = (sensors * steps) as u64;
    // Every sensor's state once per second, in time order; returns points/s, the sum of
    // the scores and the states.
    let mut time_detector = |detector: &Detector| {
        let mut states = vec![SensorState::default(); sensors];
        let mut sum = 0.0f64;
        let start = elapsed();
        for t in 0..steps {
            let row = &values[(t % CYCLE) * sensors..(t % CYCLE + 1) * sensors];
            let ts = base_ms + t as i64 * 1000;
            for (state, &v) in states.iter_mut().zip(row) {
                if let Ok(s) = detector.next(state, ts, v) {
                    sum += f64::from(s.score);
                }
            }
        }
        let pps = points as f64 / (elapsed() - start).as_secs_f64().max(1e-9);
        (pps, sum, states)
    };
    let (pps, mut checksum, states) = time_detector(&detector);
    let (raw_pps, raw_sum, _) = time_detector(&Detector::new(Config::beside_machine_model())?);
    checksum += raw_sum;
    let checkpoint: usize = states.iter().map(|s| s.to_bytes().len()).sum();

    // The machine model needs a machine to have changed load for a while before it
    // speaks; that time is not timed, and fewer machines keep it short.
    let machines = (sensors / MACHINE_SENSORS).clamp(1, 200);
    let mm_cfg = MachineModelConfig::default();
    let mut models = vec![MachineModel::default(); machines];
    // Each sensor moves by 20 to 60 times its noise over the load's range.
    let gains: Vec<f64> = (0..machines * MACHINE_SENSORS).map(|_| rng.range(20.0, 60.0)).collect();
    // Its noise is drawn beforehand too, cycling like the detector's values.
    let noise: Vec<f64> = (0..machines * MACHINE_SENSORS * CYCLE).map(|_| rng.normal()).collect();
    let mut loads = vec![0.6f64; machines];
    let mut out = Vec::new();
    let mut instant = |t: usize, models: &mut [MachineModel], loads: &mut [f64], rng: &mut SplitMix| {
        let ts = base_ms + t as i64 * 1000;
        let mut sum = 0.0f64;
        for (m, model) in models.iter_mut().enumerate() {
            if t.is_multiple_of(300) {
                loads[m] = rng.range(0.3, 1.0);
            }
            for k in 0..MACHINE_SENSORS {
                let id = (m * MACHINE_SENSORS + k) as u32;
                let v = 100.0 + gains[id as usize] * loads[m] + noise[(t % CYCLE) * gains.len() + id as usize];
                model.observe(id, ts, v, &mm_cfg, &mut out)?;
            }
            sum += out.drain(..).map(|r| f64::from(r.score.score)).sum::<f64>();
        }
        Ok::<f64, ConfigError>(sum)
    };
    let mut warm = 0;
    while warm < 4 * 3600 && !(warm > 0 && warm % 600 == 0 && models.iter().all(|m| m.ready(&mm_cfg))) {
        instant(warm, &mut models, &mut loads, &mut rng)?;
        warm += 1;
    }
    let ready = models.iter().filter(|m| m.ready(&mm_cfg)).count();
    let mm_steps = 600;
    let start = elapsed();
    for t in warm..warm + mm_steps {
        checksum += instant(t, &mut models, &mut loads, &mut rng)?;
    }
    let mm_secs = (elapsed() - start).as_secs_f64().max(1e-9);
    let mm_pps = (machines * MACHINE_SENSORS * mm_steps) as f64 / mm_secs;
    let mm_bytes = models.iter().map(|m| m.memory_bytes()).sum::<usize>() as f64 / (machines * MACHINE_SENSORS) as f64;

    // The monitor runs the per-sensor detector as configured beside the machine model.
    let monitor_pps = 1.0 / (1.0 / raw_pps + 1.0 / mm_pps);
    Ok(BenchReport {
        points_per_s_per_core: pps,
        ns_per_point: 1e9 / pps,
        state_bytes_per_sensor: SensorState::MEMORY_BYTES,
        checkpoint_bytes_per_sensor: checkpoint as f64 / sensors as f64,
        sensors,
        points,
        core_share_at_50k_sensors_1hz: 50_000.0 / pps,
        score_checksum: checksum,
        machine_model_points_per_s_per_core: mm_pps,
        monitor_points_per_s_per_core: monitor_pps,
        machine_model_bytes_per_sensor: mm_bytes,
        machines,
        machines_ready: ready,
    })
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalSpec {
    pub plant: PlantSpec,
    pub detector: Config,
    pub episodes: EpisodeConfig,
    /// An alarm up to this long after a fault's end still counts for it (the return to
    /// normal is itself a change).
    pub grace_ms: i64,
    /// Copy the injected faults into the report.
    pub keep_faults: bool,
}

impl Default for EvalSpec {
    fn default() -> Self {
        EvalSpec {
            plant: PlantSpec::default(),
            detector: Config::default(),
            episodes: EpisodeConfig::default(),
            grace_ms: 300_000,
            keep_faults: false,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KindReport {
    pub faults: usize,
    pub detected: usize,
    pub recall: f64,
    pub median_delay_s: Option<f64>,
    pub p90_delay_s: Option<f64>,
    /// Which test first flagged the faulted sensor, over detected faults.
    pub first_test: BTreeMap<String, usize>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalReport {
    pub sensors: usize,
    pub hours: f64,
    pub readings: u64,
    pub episodes: usize,
    pub false_episodes: usize,
    /// False episodes scaled to a plant of 10,000 sensors.
    pub false_episodes_per_plant_hour: f64,
    pub false_episodes_per_sensor_hour: f64,
    /// Same, counting only after the first day (the detector has then seen a full cycle).
    pub false_episodes_per_plant_hour_after_day1: f64,
    /// First test of each false episode.
    pub false_by_test: BTreeMap<String, usize>,
    pub recall_by_kind: BTreeMap<String, f64>,
    pub median_delay_s_by_kind: BTreeMap<String, Option<f64>>,
    pub kinds: BTreeMap<String, KindReport>,
    /// A few false episodes, for inspection.
    pub false_samples: Vec<Episode>,
    /// The injected faults (for inspection; empty unless asked for).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub faults: Vec<crate::synth::Fault>,
}

#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Episode(#[from] EpisodeConfigError),
}

fn test_name(t: Test) -> String {
    serde_json::to_value(t).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_else(|| "none".to_owned())
}

/// Runs the synthetic plant through per-sensor detectors and per-machine episode trackers,
/// as the monitor would (readings each second, an overdue sweep for sensors that did not
/// report), and compares the episodes with the injected faults.
pub fn evaluate(spec: &EvalSpec) -> Result<EvalReport, EvalError> {
    let detector = Detector::new(spec.detector.clone())?;
    let mut plant = Plant::new(spec.plant.clone());
    let n = plant.sensor_count();
    let mut states = vec![SensorState::default(); n];
    let mut trackers = (0..spec.plant.machines)
        .map(|m| EpisodeTracker::new(format!("M{m}"), spec.episodes.clone()))
        .collect::<Result<Vec<_>, _>>()?;
    let mut episodes: Vec<Episode> = Vec::new();
    let mut open_index: Vec<Option<usize>> = vec![None; spec.plant.machines as usize];
    let mut readings = 0u64;
    let mut out = Vec::with_capacity(n);
    let mut seen = vec![false; n];
    let seconds = spec.plant.duration_s as u64;
    let record = |m: usize, ev: EpisodeEvent, episodes: &mut Vec<Episode>, open_index: &mut Vec<Option<usize>>| match ev
    {
        EpisodeEvent::Detected(ep) => {
            episodes.push(ep);
            open_index[m] = Some(episodes.len() - 1);
        }
        EpisodeEvent::Updated(ep) => {
            if let Some(i) = open_index[m] {
                episodes[i] = ep;
            }
        }
        EpisodeEvent::Resolved { episode, .. } => {
            if let Some(i) = open_index[m].take() {
                episodes[i] = episode;
            }
        }
    };
    for _ in 0..seconds {
        let now = plant.now_ms();
        plant.step(&mut out);
        seen.iter_mut().for_each(|s| *s = false);
        for &(sensor, value) in &out {
            let i = sensor as usize;
            seen[i] = true;
            readings += 1;
            if let Ok(score) = detector.next(&mut states[i], now, value)
                && score.level >= spec.episodes.related_threshold
            {
                let m = plant.machine_of(sensor) as usize;
                for ev in trackers[m].observe(sensor, &score) {
                    record(m, ev, &mut episodes, &mut open_index);
                }
            }
        }
        for (i, was_seen) in seen.iter().enumerate() {
            if !was_seen && states[i].readings() > 0 {
                let score = detector.overdue(&states[i], now);
                if score.level >= spec.episodes.related_threshold {
                    let m = plant.machine_of(i as u32) as usize;
                    for ev in trackers[m].observe(i as u32, &score) {
                        record(m, ev, &mut episodes, &mut open_index);
                    }
                }
            }
        }
        for (m, tracker) in trackers.iter_mut().enumerate() {
            if let Some(ev) = tracker.tick(now) {
                record(m, ev, &mut episodes, &mut open_index);
            }
        }
    }
    // Episodes still open at the end keep their latest state.
    for (m, tracker) in trackers.iter().enumerate() {
        if let (Some(ep), Some(i)) = (tracker.open_episode(), open_index[m]) {
            episodes[i] = ep.clone();
        }
    }
    Ok(score_run(spec, &plant, &episodes, n, readings))
}

/// Faults of one kind, delays of the detected ones, and which test flagged them first.
type KindTally = (usize, Vec<f64>, BTreeMap<String, usize>);
/// A change to the detector's settings.
pub type ConfigChange = fn(&mut Config);

fn score_run(spec: &EvalSpec, plant: &Plant, episodes: &[Episode], n: usize, readings: u64) -> EvalReport {
    let faults = plant.faults();
    let machine_of = |ep: &Episode| -> u32 { ep.machine.trim_start_matches('M').parse().unwrap_or(u32::MAX) };
    // An episode is true if one of its alarming sensors first crossed inside the window
    // (plus grace) of a fault of that sensor.
    let mut is_true = vec![false; episodes.len()];
    let mut kinds: BTreeMap<FaultKind, KindTally> = BTreeMap::new();
    for f in faults {
        let entry = kinds.entry(f.kind).or_default();
        entry.0 += 1;
        let mut best: Option<(i64, Test)> = None;
        for (i, ep) in episodes.iter().enumerate() {
            if machine_of(ep) != f.machine {
                continue;
            }
            for e in &ep.sensors {
                if f.sensors.contains(&e.sensor) && e.first_ms >= f.start_ms && e.first_ms <= f.end_ms + spec.grace_ms {
                    is_true[i] = true;
                    if best.is_none_or(|(t, _)| e.first_ms < t) {
                        best = Some((e.first_ms, e.test));
                    }
                }
            }
        }
        if let Some((t, test)) = best {
            entry.1.push((t - f.start_ms) as f64 / 1000.0);
            *entry.2.entry(test_name(test)).or_default() += 1;
        }
    }
    let hours = spec.plant.duration_s / 3600.0;
    let day1_end = spec.plant.start_ms + 86_400_000;
    let mut false_by_test: BTreeMap<String, usize> = BTreeMap::new();
    let mut false_after = 0usize;
    for (ep, t) in episodes.iter().zip(&is_true) {
        if !t {
            let test = ep.primary().map_or(Test::None, |e| e.test);
            *false_by_test.entry(test_name(test)).or_default() += 1;
            if ep.start_ms >= day1_end {
                false_after += 1;
            }
        }
    }
    let false_episodes = is_true.iter().filter(|t| !**t).count();
    let sensor_hours = n as f64 * hours;
    let sensor_hours_after = n as f64 * (hours - 24.0).max(1e-9);
    let mut report = EvalReport {
        sensors: n,
        hours,
        readings,
        episodes: episodes.len(),
        false_episodes,
        false_episodes_per_plant_hour: false_episodes as f64 / sensor_hours * SENSORS_PER_PLANT,
        false_episodes_per_sensor_hour: false_episodes as f64 / sensor_hours,
        false_episodes_per_plant_hour_after_day1: false_after as f64 / sensor_hours_after * SENSORS_PER_PLANT,
        false_by_test,
        recall_by_kind: BTreeMap::new(),
        median_delay_s_by_kind: BTreeMap::new(),
        kinds: BTreeMap::new(),
        false_samples: episodes.iter().zip(&is_true).filter(|(_, t)| !**t).map(|(e, _)| e.clone()).take(60).collect(),
        faults: if spec.keep_faults { faults.to_vec() } else { Vec::new() },
    };
    for (kind, (count, mut delays, first_test)) in kinds {
        delays.sort_by(f64::total_cmp);
        let pick = |q: f64| -> Option<f64> {
            if delays.is_empty() { None } else { Some(delays[((delays.len() - 1) as f64 * q).round() as usize]) }
        };
        let recall = delays.len() as f64 / count.max(1) as f64;
        let name = kind.name().to_owned();
        report.recall_by_kind.insert(name.clone(), recall);
        report.median_delay_s_by_kind.insert(name.clone(), pick(0.5));
        report.kinds.insert(
            name,
            KindReport {
                faults: count,
                detected: delays.len(),
                recall,
                median_delay_s: pick(0.5),
                p90_delay_s: pick(0.9),
                first_test,
            },
        );
    }
    report
}

/// The detector with each of its parts switched off in turn: a name and the change to
/// the settings, so any evaluation can measure what each part contributes.
pub fn ablation_variants() -> [(&'static str, ConfigChange); 8] {
    [
        ("no_spike", |c| c.enabled.spike = false),
        ("no_level_shift", |c| c.enabled.level_shift = false),
        ("no_drift", |c| c.enabled.drift = false),
        ("no_variance", |c| c.enabled.variance = false),
        ("no_stuck", |c| c.enabled.stuck = false),
        ("no_dropout", |c| c.enabled.dropout = false),
        ("no_seasonal_profile", |c| c.enabled.seasonal_profile = false),
        ("no_tail_calibration", |c| c.enabled.tail_calibration = false),
    ]
}

/// Evaluates the default detector and then the detector with each part switched off in
/// turn, to show what each part contributes.
pub fn ablation(spec: &EvalSpec) -> Result<Vec<(String, EvalReport)>, EvalError> {
    let mut runs = vec![("all".to_owned(), evaluate(spec)?)];
    for (name, change) in ablation_variants() {
        let mut s = spec.clone();
        change(&mut s.detector);
        runs.push((name.to_owned(), evaluate(&s)?));
    }
    Ok(runs)
}
