//! The machine's common mode: what a machine's sensors do together (a change of load moves
//! every one of them, by its own gain), learned online and removed, so that each sensor's
//! own departures can be tested as if the machine ran steadily.
//!
//! # Model
//! Each sensor's reading is scaled by its noise (`y = x / σ`, σ from successive
//! differences while the sensor is new, then fixed) and centred on a reference level
//! (`d = y - m`). The machine's readings of one instant form a vector `d`. The covariance of
//! their short-term deviations is learned (exponentially weighted, in proportion to how much
//! the machine moved at that instant; each pair at the instants both sensors report, at a
//! rate raised by how rarely that is; a sensor only once its noise scale is fixed, and with
//! what lies off the known direction clipped, so a fault of one sensor does not teach it)
//! and its leading eigenvector `v` (power iteration, one step a row) is the direction in
//! which the machine's operating point moves. A sensor's
//! **residual** is its deviation minus what the *other* sensors say the operating point is:
//!
//! `r_i = d_i - v_i · L_{-i}`, with `L_{-i} = Σ_{j≠i} v_j d_j / Σ_{j≠i} v_j²`
//!
//! Leaving the sensor out means a fault on it cannot hide in the operating point. Each
//! residual (back in the sensor's units) is scored by a streaming [`Detector`] of its own
//! (spike, level shift, drift and variance tests; the raw readings keep the stuck and
//! dropout tests, which load does not disturb).
//!
//! # Over days
//! What the model learns must survive what a machine does over weeks, or false alarms pile
//! up with every repair:
//! * The direction is learned only from instants at which the machine moves. Instants of
//!   noise alone carry no direction; were they to dilute the covariance, a machine stopped
//!   for a day-long repair would forget its direction and relearn it from the step of its
//!   restart, in which wear reset by the repair moves every sensor off the load direction.
//!   That wrong direction would stick (instants the known direction explains badly are
//!   learned with little weight) and every change of load would raise an alarm.
//! * Once known (`ready_eigenvalue` reached for `ready_rows` instants) the direction stays
//!   known and is only refined; nothing is reported before (a sensor judged alone cannot
//!   tell a change of load from a fault).
//! * The reference level `m` is a running mean while the noise scale is learned and then
//!   all but fixed (`mean_half_life_rows`, a week): the residual detectors follow wear,
//!   drift and the new levels after a repair themselves (baselines, adaptation), whereas a
//!   reference catching up over hours would show in every residual as a ramp that they
//!   take for a drift or a level shift.
//!
//! Readings a residual test judges abnormal are not learned from: the reference learns the
//! value the other sensors predict for them instead.

use serde::{Deserialize, Serialize};

use crate::config::{Config, ConfigError, Enabled};
use crate::counter::CounterWatch;
use crate::detector::{Detector, Diagnostics, Score, SensorState, Test, clamp_reading, f32_sat};
use crate::stats::alpha_for_half_life;

/// Instants a sensor must have been seen before the model may speak: its noise scale is
/// rough before.
const WARMUP_ROWS: u32 = 600;
/// Energy off the operating point's direction, per sensor and in units of noise variance,
/// up to which an instant is learned with full weight.
const OFF_DIRECTION_ALLOWANCE: f64 = 4.0;
/// Mean energy per sensor (in units of noise variance) above the noise's own 1 from which
/// an instant starts to teach the direction; it teaches fully one unit further up.
const EXCITATION_MARGIN: f64 = 1.0;
/// Sensors that must move with the operating point's direction before it is taken for one:
/// a change of load moves at least two sensors clearly, whereas a fault or a spike moves one.
const MIN_SENSORS_IN_DIRECTION: usize = 2;
/// Share of a sensor's short-term variance the direction must explain for the sensor to
/// count as moving with it (a correlation of about 0.7). Counted this way rather than by
/// the direction's weights, which one sensor far less noisy than the others (a speed
/// against temperatures) would take nearly all of.
const MIN_SHARE_IN_DIRECTION: f32 = 0.5;
/// Distance (in units of noise) from the point the other sensors give beyond which a
/// sensor counts as off it.
const OUTLIER: f64 = 6.0;
/// Largest departure from the operating point's direction (noise units) a sensor teaches
/// the direction once it is known.
const TAUGHT_OFF_DIRECTION: f64 = 4.0;
/// Half-life (instants) of each sensor's share of the machine's instants.
const SHARE_HALF_LIFE_ROWS: f32 = 3600.0;
/// Smallest share a sensor's learning rates are raised for: one that has hardly reported
/// lately (a dropout) learns no faster than ten times the others when it is back.
const MIN_SHARE: f32 = 0.1;
/// Distance (in units of noise) from the point the other sensors give from which a sensor
/// judged abnormal is left out of the operating point.
const SUSPECT_OFF: f64 = 3.0;

/// Largest deviation (in units of noise) an instant is modelled with: beyond it a sensor is
/// simply very far off, and products of such deviations (the covariance) stay finite.
const MAX_DEVIATION: f64 = 1e6;

/// Settings of the machine model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MachineModelConfig {
    pub enabled: bool,
    /// The detector run on every residual.
    pub residual: Config,
    /// Half-life (instants) of each sensor's noise scale.
    pub scale_half_life_rows: f32,
    /// Half-life (instants) of each sensor's reference level, from which residuals are
    /// measured. Long: the residual detectors follow slow changes themselves.
    pub mean_half_life_rows: f32,
    /// Half-life (instants) of the short mean around which the covariance is taken: short,
    /// so the daily cycle and slow drift stay out of it and only changes of operating
    /// point (and noise) remain.
    pub fast_mean_half_life_rows: f32,
    /// Half-life of the covariance of the machine's sensors, in instants at which the
    /// machine moves (instants of noise alone do not age it).
    pub covariance_half_life_rows: f32,
    /// Leading eigenvalue (in units of noise variance) from which the operating point's
    /// direction is taken to be known.
    pub ready_eigenvalue: f32,
    /// Instants the direction must have been known before residuals are scored.
    pub ready_rows: u32,
    /// Sensors modelled per machine (the rest keep only their own tests).
    pub max_sensors: usize,
}

impl Default for MachineModelConfig {
    fn default() -> Self {
        MachineModelConfig {
            enabled: true,
            // The variance test's window is longer than on raw readings: a residual's noise
            // wanders a little with the other sensors', and noise bursts are large.
            residual: Config {
                enabled: Enabled { stuck: false, chatter: false, dropout: false, ..Enabled::default() },
                variance_half_life_s: 60.0,
                ..Config::default()
            },
            scale_half_life_rows: 3600.0,
            mean_half_life_rows: 604_800.0,
            fast_mean_half_life_rows: 600.0,
            covariance_half_life_rows: 7200.0,
            ready_eigenvalue: 50.0,
            ready_rows: 300,
            max_sensors: 64,
        }
    }
}

impl MachineModelConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.residual.validate()?;
        for (field, got) in [
            ("scale_half_life_rows", self.scale_half_life_rows),
            ("mean_half_life_rows", self.mean_half_life_rows),
            ("fast_mean_half_life_rows", self.fast_mean_half_life_rows),
            ("covariance_half_life_rows", self.covariance_half_life_rows),
        ] {
            if !(got.is_finite() && (10.0..=3.2e7).contains(&got)) {
                return Err(ConfigError::TooSmall { field, min: 10.0, got });
            }
        }
        if !(self.ready_eigenvalue.is_finite() && self.ready_eigenvalue > 1.0) {
            return Err(ConfigError::TooSmall { field: "ready_eigenvalue", min: 1.0, got: self.ready_eigenvalue });
        }
        if !(2..=256).contains(&self.max_sensors) {
            return Err(ConfigError::TooSmall { field: "max_sensors", min: 2.0, got: self.max_sensors as f32 });
        }
        Ok(())
    }
}

/// The residual detector, rebuilt from the settings after a restore (it is not state).
#[derive(Debug, Clone, Default)]
struct Cached(Option<Detector>);

impl PartialEq for Cached {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

/// One machine's common-mode model and its sensors' residual detectors.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MachineModel {
    ids: Vec<u32>,
    scale: Vec<f32>,
    last: Vec<f64>,
    mean: Vec<f64>,
    fast_mean: Vec<f64>,
    /// Covariance, `n × n` row-major, in units of noise variance.
    cov: Vec<f32>,
    load: Vec<f32>,
    eigenvalue: f32,
    ready_for: u32,
    seen: Vec<u32>,
    states: Vec<SensorState>,
    row_ts: i64,
    row: Vec<f64>,
    /// The pending instant's readings as sent (`row` holds them clamped to the bound the
    /// model learns at), so a residual reports what the sensor actually read.
    #[serde(default)]
    row_sent: Vec<f64>,
    present: Vec<bool>,
    /// Sensors whose residual was judged abnormal at their last instant: left out of the
    /// operating point the other sensors are measured against while they are off it.
    #[serde(default)]
    suspect: Vec<bool>,
    /// Sensors that do not measure the machine's operating point (set points, states,
    /// counters, batch cycles): left out of the model, judged by their own detector alone.
    #[serde(default)]
    left_out: Vec<u32>,
    /// Each sensor's smallest step while its scale was learned (its resolution, for a
    /// quantised sensor, whose successive differences are mostly zero).
    #[serde(default)]
    step: Vec<f32>,
    /// Each sensor's share of the machine's instants at which it reports (1 for a sensor
    /// that reports at every one). A sensor that reports irregularly learns at the instants
    /// it is there, at a rate raised by how rarely it is, so that what it has learned spans
    /// the same stretch of the machine's history as the other sensors' (see
    /// [`MachineModel::learn_direction`]).
    #[serde(default)]
    share: Vec<f32>,
    /// Instants the model has scored (for the running mean of the shares early on).
    #[serde(default)]
    instants: u32,
    /// The machine's operating point at its latest instant (noise units along the
    /// direction), while the direction is known.
    #[serde(default)]
    point: Option<f64>,
    /// The machine's counters, each judged against the rate its operating point gives
    /// (see [`crate::counter`]).
    #[serde(default)]
    counters: Vec<CounterWatch>,
    #[serde(skip)]
    detector: Cached,
    #[serde(skip)]
    scratch: Scratch,
}

impl Default for MachineModel {
    fn default() -> Self {
        MachineModel {
            ids: Vec::new(),
            scale: Vec::new(),
            last: Vec::new(),
            mean: Vec::new(),
            fast_mean: Vec::new(),
            cov: Vec::new(),
            load: Vec::new(),
            eigenvalue: 0.0,
            ready_for: 0,
            seen: Vec::new(),
            states: Vec::new(),
            row_ts: i64::MIN,
            row: Vec::new(),
            row_sent: Vec::new(),
            present: Vec::new(),
            suspect: Vec::new(),
            left_out: Vec::new(),
            step: Vec::new(),
            share: Vec::new(),
            instants: 0,
            point: None,
            counters: Vec::new(),
            detector: Cached(None),
            scratch: Scratch::default(),
        }
    }
}

/// A residual score of one sensor, in the sensor's own units.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Residual {
    pub sensor: u32,
    pub score: Score,
}

impl MachineModel {
    /// Whether the operating point's direction is known and residuals are scored.
    pub fn ready(&self, cfg: &MachineModelConfig) -> bool {
        self.ready_for >= cfg.ready_rows
    }

    fn slot(&mut self, sensor: u32, cfg: &MachineModelConfig) -> Option<usize> {
        if let Some(i) = self.ids.iter().position(|s| *s == sensor) {
            return Some(i);
        }
        if self.ids.len() >= cfg.max_sensors {
            return None;
        }
        let n = self.ids.len();
        let mut cov = vec![0.0f32; (n + 1) * (n + 1)];
        for r in 0..n {
            cov[r * (n + 1)..r * (n + 1) + n].copy_from_slice(&self.cov[r * n..r * n + n]);
        }
        cov[n * (n + 1) + n] = 1.0;
        self.cov = cov;
        self.ids.push(sensor);
        self.scale.push(0.0);
        self.last.push(0.0);
        self.mean.push(0.0);
        self.fast_mean.push(0.0);
        self.load.push(1.0);
        self.seen.push(0);
        self.states.push(SensorState::default());
        self.row.push(0.0);
        self.present.push(false);
        self.suspect.push(false);
        self.step.resize(n + 1, f32::MAX);
        self.share.resize(n + 1, 1.0);
        Some(n)
    }

    /// Leaves a sensor out of the model: a set point, an on/off state, a counter or a batch
    /// cycle says nothing about how the machine's measurements move together (a counter only
    /// grows, a batch cycle would pass for the load), and is judged on its own.
    pub fn leave_out(&mut self, sensor: u32) {
        if !self.left_out.contains(&sensor) {
            self.left_out.push(sensor);
        }
    }

    /// Each modelled sensor with its share of the operating point's direction, its noise
    /// scale and its mean, for inspection.
    pub fn loadings(&self) -> Vec<(u32, f32, f32, f64)> {
        (0..self.ids.len()).map(|i| (self.ids[i], self.load[i], self.scale[i], self.mean[i])).collect()
    }

    /// What the residual detector of `sensor` has learned, for inspection.
    pub fn residual_diagnostics(&self, sensor: u32) -> Option<Diagnostics> {
        self.ids.iter().position(|s| *s == sensor).map(|i| self.states[i].diagnostics())
    }

    /// Bytes the model occupies in memory, its sensors' residual detector states included.
    pub fn memory_bytes(&self) -> usize {
        fn heap<T>(v: &Vec<T>) -> usize {
            v.capacity() * std::mem::size_of::<T>()
        }
        std::mem::size_of::<Self>()
            + heap(&self.ids)
            + heap(&self.scale)
            + heap(&self.last)
            + heap(&self.mean)
            + heap(&self.fast_mean)
            + heap(&self.cov)
            + heap(&self.load)
            + heap(&self.seen)
            + heap(&self.states)
            + heap(&self.row)
            + heap(&self.row_sent)
            + heap(&self.present)
            + heap(&self.suspect)
            + heap(&self.left_out)
            + heap(&self.step)
            + heap(&self.share)
            + heap(&self.counters)
    }

    /// Whether every number the model keeps is finite (always true of a model fed through
    /// [`MachineModel::observe`]; a checkpoint from elsewhere may not be).
    pub fn is_finite(&self) -> bool {
        let f64s = self.last.iter().chain(&self.mean).chain(&self.fast_mean).chain(&self.row).chain(&self.row_sent);
        let f32s = self
            .scale
            .iter()
            .chain(&self.cov)
            .chain(&self.load)
            .chain(&self.share)
            .chain(std::iter::once(&self.eigenvalue));
        f64s.into_iter().all(|v| v.is_finite())
            && f32s.into_iter().all(|v| v.is_finite())
            && self.states.iter().all(SensorState::is_finite)
            && self.point.is_none_or(f64::is_finite)
            && self.counters.iter().all(CounterWatch::is_finite)
    }

    /// The leading eigenvalue of the covariance, in units of noise variance.
    pub fn eigenvalue(&self) -> f32 {
        self.eigenvalue
    }

    /// Half of sensor `i`'s resolution (its smallest step while its scale was learned), or 0
    /// when it has none: the residual of a quantised sensor moves by fractions of a step with
    /// the other sensors, but a change of its reading by one step is no news.
    /// Leaves a counter out of the model and judges it by the rate the machine's operating
    /// point gives (see [`crate::counter`]): a stop at full load is a fault, a pause at idle
    /// is not.
    pub fn watch_counter(&mut self, sensor: u32) {
        self.leave_out(sensor);
        if !self.counters.iter().any(|c| c.sensor == sensor) {
            self.counters.push(CounterWatch::new(sensor));
        }
    }

    /// Takes one reading of a watched counter; returns its score when counts were expected
    /// and did not come (None for any other sensor).
    pub fn counter_reading(&mut self, sensor: u32, ts_ms: i64, value: f64) -> Option<Score> {
        let point = self.point;
        self.counters.iter_mut().find(|c| c.sensor == sensor)?.reading(ts_ms, value, point)
    }

    fn resolution(&self, i: usize) -> f64 {
        self.step.get(i).copied().filter(|s| *s < f32::MAX).map_or(0.0, |s| 0.5 * f64::from(s))
    }

    fn noise(&self, i: usize) -> f64 {
        // A quantised sensor's noise is at least half its resolution: a change of one step
        // is no news.
        let step = self.step.get(i).copied().filter(|s| *s < f32::MAX).map_or(0.0, |s| 0.5 * f64::from(s));
        f64::from(self.scale[i]).max(step).max(1e-9 + 1e-6 * self.mean[i].abs())
    }

    /// Takes one reading of one of the machine's sensors. When it completes an instant (or
    /// starts the next one), the instant is scored: residual scores come out in `out`.
    pub fn observe(
        &mut self,
        sensor: u32,
        ts_ms: i64,
        value: f64,
        cfg: &MachineModelConfig,
        out: &mut Vec<Residual>,
    ) -> Result<(), ConfigError> {
        if !cfg.enabled || !value.is_finite() || self.left_out.contains(&sensor) {
            return Ok(());
        }
        // Learned at the bound, as the sensor's own detector does; its score says so.
        let sent = value;
        let (value, _) = clamp_reading(value);
        if ts_ms != self.row_ts {
            self.flush(cfg, out)?;
            self.row_ts = ts_ms;
        }
        let Some(i) = self.slot(sensor, cfg) else { return Ok(()) };
        if self.present[i] {
            // The same sensor twice in an instant: score what there is and start again.
            self.flush(cfg, out)?;
            self.row_ts = ts_ms;
        }
        self.row[i] = value;
        if self.row_sent.len() < self.row.len() {
            self.row_sent.resize(self.row.len(), 0.0);
        }
        self.row_sent[i] = sent;
        self.present[i] = true;
        if self.present.iter().all(|p| *p) {
            self.flush(cfg, out)?;
        }
        Ok(())
    }

    /// Scores the pending instant, if any.
    // Every per-sensor vector is indexed by the sensor's slot, several at a time.
    #[allow(clippy::needless_range_loop)]
    pub fn flush(&mut self, cfg: &MachineModelConfig, out: &mut Vec<Residual>) -> Result<(), ConfigError> {
        if !self.present.iter().any(|p| *p) {
            return Ok(());
        }
        if self.detector.0.is_none() {
            self.detector.0 = Some(Detector::new(cfg.residual.clone())?);
        }
        let n = self.ids.len();
        let a_scale = alpha_for_half_life(cfg.scale_half_life_rows);
        let a_mean = alpha_for_half_life(cfg.mean_half_life_rows) as f64;
        let a_fast = alpha_for_half_life(cfg.fast_mean_half_life_rows) as f64;
        let a_cov = alpha_for_half_life(cfg.covariance_half_life_rows);
        let mut scratch = std::mem::take(&mut self.scratch);
        let Scratch { d, fast, learn, point, next, alone, taught } = &mut scratch;
        for v in [&mut *d, &mut *fast, &mut *learn] {
            v.clear();
            v.resize(n, 0.0);
        }
        // How often each sensor reports, over the machine's instants.
        self.share.resize(n, 1.0);
        self.instants = self.instants.saturating_add(1);
        let a_share = alpha_for_half_life(SHARE_HALF_LIFE_ROWS).max(1.0 / self.instants as f32);
        for (share, present) in self.share.iter_mut().zip(&self.present) {
            *share = (*share + a_share * (f32::from(u8::from(*present)) - *share)).clamp(MIN_SHARE, 1.0);
        }
        // Noise scales from successive differences (|Δx| · √π / 2 for Gaussian noise),
        // clipped so that a change of operating point does not pass for noise.
        for i in 0..n {
            if !self.present[i] {
                continue;
            }
            let x = self.row[i];
            // The scale is a fixed weighting once learned: were it to follow the noise
            // (which a change of load inflates a little), the covariance would mix units
            // and the residuals would move with every change of load. Its accuracy hardly
            // matters: the direction and the residuals are the same in any fixed units.
            if self.seen[i] > 0 && self.seen[i] < WARMUP_ROWS {
                let dx = f32_sat((x - self.last[i]).abs());
                let a = a_scale.max(1.0 / (self.seen[i] as f32 + 1.0));
                let clip = if self.seen[i] > 30 { 4.0 * self.scale[i] } else { f32::MAX };
                self.scale[i] += a * (0.886_227 * dx.min(clip) - self.scale[i]);
                if dx > 0.0 && i < self.step.len() {
                    self.step[i] = self.step[i].min(dx);
                }
            }
            self.last[i] = x;
            self.seen[i] = self.seen[i].saturating_add(1);
            if self.seen[i] == 1 {
                self.mean[i] = x;
                self.fast_mean[i] = x;
            }
            fast[i] = ((x - self.fast_mean[i]) / self.noise(i)).clamp(-MAX_DEVIATION, MAX_DEVIATION);
            // Deviations, not values, are scaled: a sensor far from zero would otherwise
            // seem to move whenever its noise estimate does.
            d[i] = ((x - self.mean[i]) / self.noise(i)).clamp(-MAX_DEVIATION, MAX_DEVIATION);
        }
        learn.copy_from_slice(d);
        // Until the operating point's direction is known, a sensor is judged alone and its
        // spikes are reported while the rest of the machine stands still: it cannot tell a
        // change of load from a fault, but a machine whose other sensors are quiet has not
        // changed load (and a machine that never changes load never learns a direction).
        if self.ready(cfg) {
            self.score_residuals(d, learn, point, cfg, out)?;
        } else {
            self.point = None;
            self.score_alone(d, fast, alone, cfg, out)?;
        }
        for i in 0..n {
            if self.present[i] && self.seen[i] > 1 {
                // The reference level is a running mean while the scale is learned and then
                // all but fixed: the residual detectors follow slow changes (wear, drift, a
                // machine back from repair) themselves, and a reference still settling
                // would show in every residual as a ramp that they would take for a drift.
                let k = if self.seen[i] <= WARMUP_ROWS { 1.0 / f64::from(self.seen[i]) } else { 0.0 };
                self.mean[i] += a_mean.max(k) * learn[i] * self.noise(i);
                // The short mean forgets over the machine's instants, not the sensor's
                // readings: an irregular sensor's short-term deviation must be taken over the
                // same stretch of time as the others', or their covariance is skewed.
                let a = (a_fast / f64::from(self.share[i])).min(0.5);
                self.fast_mean[i] += a.max(1.0 / f64::from(self.seen[i])) * fast[i] * self.noise(i);
            }
        }
        self.learn_direction(fast, next, taught, cfg, a_cov);
        self.scratch = scratch;
        self.present.iter_mut().for_each(|p| *p = false);
        Ok(())
    }

    /// A score of sensor `i`'s residual, back in the sensor's units: observed is the
    /// reading, expected what the sensor's own history (and the rest of the machine) say
    /// it should read.
    fn in_sensor_units(&self, i: usize, mut score: Score) -> Residual {
        let shift = self.row[i] - score.value;
        let sent = self.row_sent.get(i).copied().unwrap_or(self.row[i]);
        score.value = sent;
        score.clamped = sent != self.row[i];
        score.expected += shift;
        score.lower += shift;
        score.upper += shift;
        Residual { sensor: self.ids[i], score }
    }

    /// Before the direction is known: scores each sensor's own deviation and reports a
    /// spike when it is the machine's only sensor judged abnormal and the others are quiet
    /// at this instant (a change of load moves, and sets off, several at once). Slower
    /// tests wait for the direction: early on, a load change that moves one sensor much
    /// more than the others (in units of their noise) looks like that sensor shifting.
    #[allow(clippy::needless_range_loop)]
    fn score_alone(
        &mut self,
        d: &[f64],
        fast: &[f64],
        scores: &mut Vec<Option<Score>>,
        cfg: &MachineModelConfig,
        out: &mut Vec<Residual>,
    ) -> Result<(), ConfigError> {
        let n = self.ids.len();
        let detector = self.detector.0.as_ref().ok_or(ConfigError::NoTests)?;
        let present = self.present.iter().filter(|p| **p).count();
        let energy: f64 = (0..n).filter(|i| self.present[*i]).map(|i| fast[i] * fast[i]).sum();
        scores.clear();
        for i in 0..n {
            let score = if self.present[i] && self.seen[i] >= WARMUP_ROWS {
                let (value, floor) = (d[i] * self.noise(i), self.resolution(i));
                detector.next_with_floor(&mut self.states[i], self.row_ts, value, floor).ok()
            } else {
                None
            };
            scores.push(score);
        }
        let abnormal = |s: &Option<Score>| s.is_some_and(|s| s.level >= cfg.residual.learn_gate_score);
        let abnormal_count = scores.iter().filter(|s| abnormal(s)).count();
        for i in 0..n {
            let Some(score) = scores[i] else { continue };
            let others = if present > 1 { (energy - fast[i] * fast[i]) / (present - 1) as f64 } else { 0.0 };
            let alone = abnormal_count <= usize::from(abnormal(&scores[i]));
            if score.test == Test::Spike && alone && others <= 1.0 + EXCITATION_MARGIN {
                out.push(self.in_sensor_units(i, score));
            }
        }
        Ok(())
    }

    /// Scores each present sensor's residual against the operating point the other
    /// sensors give; a sensor judged abnormal is learned at the value the others predict.
    ///
    /// A fault on one sensor must not leak into the others' residuals through the operating
    /// point (every other sensor would seem to shift a little and, minutes later, alarm):
    /// a sensor judged abnormal at its last instant is left out of the operating point,
    /// and the others enter it less the level their own residual detector has accepted as
    /// normal (after a lasting change has been adapted to, it no longer counts as load).
    #[allow(clippy::needless_range_loop)]
    fn score_residuals(
        &mut self,
        d: &[f64],
        learn: &mut [f64],
        work: &mut PointScratch,
        cfg: &MachineModelConfig,
        out: &mut Vec<Residual>,
    ) -> Result<(), ConfigError> {
        let n = self.ids.len();
        let PointScratch { own, off, weight } = work;
        own.clear();
        own.resize(n, 0.0);
        if self.suspect.len() != n {
            self.suspect.resize(n, false);
        }
        let detector = self.detector.0.as_ref().ok_or(ConfigError::NoTests)?;
        // Each sensor's deviation less the level its residual detector holds for normal.
        for i in 0..n {
            if self.present[i] {
                own[i] = d[i] - detector.normal_level(&self.states[i], self.row_ts) / self.noise(i);
            }
        }
        // The operating point leaves out the sensors judged abnormal at their last instant
        // that are now well off the point the others give (one that is not would change
        // nothing but the noise of the others' residuals), but never most of the machine:
        // what moves most sensors is the machine (were they all left out, nothing would
        // tell a fault from a change of load); then only the one farthest off is.
        let sums = |weight: &dyn Fn(usize) -> f64| {
            (0..n).filter(|j| self.present[*j]).fold((0.0f64, 0.0f64), |(s, q), j| {
                let (v, w) = (f64::from(self.load[j]), weight(j));
                (s + w * v * own[j], q + w * v * v)
            })
        };
        // The point the sensors other than `i` give, `w` being `i`'s weight in `(s, q)`.
        let point_without = |(s, q): (f64, f64), i: usize, w: f64| {
            let v = f64::from(self.load[i]);
            let (s, q) = (s - w * v * own[i], q - w * v * v);
            if q > 1e-6 { s / q } else { 0.0 }
        };
        let all = sums(&|_| 1.0);
        // The machine's operating point, for its counters: every sensor present counts (a
        // fault of one moves it by that sensor's share alone).
        self.point = (all.1 > 1e-6).then(|| all.0 / all.1);
        weight.clear();
        weight.resize(n, 1.0);
        // Without a suspect (nearly always) every sensor counts and no distance is needed.
        let kept = if (0..n).any(|i| self.present[i] && self.suspect[i]) {
            off.clear();
            off.extend((0..n).map(|i| {
                if self.present[i] {
                    (own[i] - f64::from(self.load[i]) * point_without(all, i, 1.0)).abs()
                } else {
                    0.0
                }
            }));
            for i in 0..n {
                if self.suspect[i] && off[i] > SUSPECT_OFF {
                    weight[i] = 0.0;
                }
            }
            let present = self.present.iter().filter(|p| **p).count();
            let held_out = (0..n).filter(|i| self.present[*i] && weight[*i] == 0.0).count();
            if held_out * 2 > present {
                let worst = (0..n).filter(|i| self.present[*i]).max_by(|a, b| off[*a].total_cmp(&off[*b]));
                weight.iter_mut().for_each(|w| *w = 1.0);
                if let Some(w) = worst.filter(|w| off[*w] > OUTLIER) {
                    weight[w] = 0.0;
                }
            }
            sums(&|j| weight[j])
        } else {
            all
        };
        for i in 0..n {
            if !self.present[i] {
                continue;
            }
            let v = f64::from(self.load[i]);
            let point = point_without(kept, i, weight[i]);
            let r = d[i] - v * point;
            let noise = self.noise(i);
            let floor = self.resolution(i);
            let Ok(score) = detector.next_with_floor(&mut self.states[i], self.row_ts, r * noise, floor) else {
                continue;
            };
            self.suspect[i] = score.level >= cfg.residual.learn_gate_score;
            if self.suspect[i] {
                learn[i] = v * point;
            }
            if score.test != Test::None {
                out.push(self.in_sensor_units(i, score));
            }
        }
        Ok(())
    }

    /// Learns the operating point's direction from one instant's short-term deviations
    /// `fast` (in units of noise), and whether it is known yet.
    ///
    /// The covariance learns in proportion to how much the machine moved: an instant of
    /// noise alone says nothing about the direction, and were it learned at full weight a
    /// machine standing still for a day (a repair) would forget its direction and relearn
    /// it from whatever moved first when it started again (the step of a repair itself).
    fn learn_direction(
        &mut self,
        fast: &[f64],
        next: &mut Vec<f32>,
        taught: &mut Vec<f64>,
        cfg: &MachineModelConfig,
        a_cov: f32,
    ) {
        let n = self.ids.len();
        let ready = self.ready(cfg);
        let present = (0..n).filter(|i| self.present[*i]).count().max(2) as f64;
        let energy: f64 = (0..n).filter(|i| self.present[*i]).map(|i| fast[i] * fast[i]).sum();
        let excitation = (energy / present - 1.0 - EXCITATION_MARGIN).clamp(0.0, 1.0);
        // An instant that the known direction explains badly (energy well off it, as when
        // a fault moves a few sensors, or wear reset by a repair moves all of them) is
        // learned with less weight, so it does not become part of the machine's common
        // mode; the noise alone leaves about one unit per sensor off the direction.
        let along: f64 = (0..n).filter(|i| self.present[*i]).map(|i| f64::from(self.load[i]) * fast[i]).sum();
        let off: f64 =
            (0..n).filter(|i| self.present[*i]).map(|i| (fast[i] - f64::from(self.load[i]) * along).powi(2)).sum();
        let weight = if ready { (OFF_DIRECTION_ALLOWANCE * (present - 1.0) / off.max(1e-9)).min(1.0) } else { 1.0 };
        let a_row = a_cov * (weight * excitation) as f32;
        if a_row > 0.0 {
            // Each pair is learned at the instants both sensors report, at a rate raised by
            // how rarely that is (the sensors' shares, taken as independent), so that every
            // entry averages over the same stretch of the machine's history. Learned at the
            // plain rate, an irregular sensor's entries would average over twice as many
            // changes of load as the others' and lag them; its share of the direction then
            // follows how large the recent changes of load were (a humidity reported at
            // half the instants came out 25 % short after large ones, and alarmed at the
            // next). A sensor still learning its noise scale is left out: its units still
            // change, and what the covariance learned in the old ones would stay for hours
            // (a speed whose scale fell by a third while a change of load was learned came
            // out a tenth short of its share, and each later change of load was a shift).
            next.clear();
            next.extend(
                (0..n).map(
                    |i| {
                        if self.present[i] && self.seen[i] >= WARMUP_ROWS { a_row / self.share[i] } else { 0.0 }
                    },
                ),
            );
            // Once the direction is known, each sensor teaches it its deviation with what
            // lies off the direction clipped to a few noise units: as much as noise and a
            // share still being refined leave there, but not a fault of that sensor, which
            // is no part of how the machine moves (a temperature drifting away for two
            // hours had taught the machine half its share, and alarmed at every change of
            // load for the rest of the day). Leaving the sensor out while it is judged
            // abnormal does worse: a sensor whose share is a little off is judged abnormal
            // at changes of load, the very instants that teach the direction, and its share
            // then shrinks further.
            taught.clear();
            taught.extend((0..n).map(|i| {
                if ready {
                    let on = f64::from(self.load[i]) * along;
                    on + (fast[i] - on).clamp(-TAUGHT_OFF_DIRECTION, TAUGHT_OFF_DIRECTION)
                } else {
                    fast[i]
                }
            }));
            for r in 0..n {
                if next[r] == 0.0 {
                    continue;
                }
                let boost = next[r] / a_row;
                for c in 0..n {
                    if next[c] > 0.0 {
                        let k = r * n + c;
                        let a = (boost * next[c]).min(0.5);
                        self.cov[k] += a * (f32_sat(taught[r] * taught[c]) - self.cov[k]);
                    }
                }
            }
        }
        // One step of power iteration keeps the leading direction current.
        next.clear();
        next.extend((0..n).map(|r| (0..n).map(|c| self.cov[r * n + c] * self.load[c]).sum::<f32>()));
        let norm = next.iter().map(|x| x * x).sum::<f32>().sqrt();
        if norm.is_finite() && norm > 0.0 {
            for (l, x) in self.load.iter_mut().zip(next.iter()) {
                *l = x / norm;
            }
            self.eigenvalue = norm;
        }
        if ready {
            // Once known, the direction stays known: it is only refined from here on.
            return;
        }
        let settled = self.seen.iter().all(|n| *n >= WARMUP_ROWS);
        // A direction carried by one sensor alone (a spike, a fault) is no operating point.
        let moving = (0..n)
            .filter(|&i| {
                let var = self.cov[i * n + i];
                var > 0.0 && self.load[i] * self.load[i] * self.eigenvalue >= MIN_SHARE_IN_DIRECTION * var
            })
            .count();
        let shared = moving >= MIN_SENSORS_IN_DIRECTION;
        if settled && shared && self.eigenvalue >= cfg.ready_eigenvalue {
            self.ready_for += 1;
            if self.ready_for == cfg.ready_rows {
                // The residual detectors start on residuals that mean something.
                self.states.iter_mut().for_each(|s| *s = SensorState::default());
            }
        } else {
            self.ready_for = 0;
        }
    }
}

/// Working memory of one instant, kept between instants so scoring allocates nothing.
#[derive(Debug, Clone, Default)]
struct Scratch {
    d: Vec<f64>,
    fast: Vec<f64>,
    learn: Vec<f64>,
    point: PointScratch,
    next: Vec<f32>,
    /// Each sensor's own score, before the direction is known.
    alone: Vec<Option<Score>>,
    /// Each sensor's short-term deviation as the direction learns it (noise units).
    taught: Vec<f64>,
}

/// Working memory for the operating point of one instant.
#[derive(Debug, Clone, Default)]
struct PointScratch {
    /// Each sensor's deviation less its residual's normal level (noise units).
    own: Vec<f64>,
    /// Each sensor's distance from the point the others give (noise units).
    off: Vec<f64>,
    /// Each sensor's weight in the operating point.
    weight: Vec<f64>,
}

impl PartialEq for Scratch {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}
