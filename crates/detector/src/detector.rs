//! The streaming per-sensor detector: one reading in, one calibrated score out.
//!
//! Each sensor keeps a small fixed-size [`SensorState`]; one shared [`Detector`] holds the
//! settings and scores readings against it. [`StreamingDetector`] bundles both for a single
//! series (the offline CSV path).
//!
//! # Model
//! A reading `x` at time `t` is first deseasonalised by a learned 24-hour profile
//! `S(t)` (24 hourly bins, linearly interpolated). Six tests then look at it, each
//! turning a statistic into a tail probability under the sensor's own learned normal
//! behaviour:
//!
//! | test | statistic | reference |
//! |---|---|---|
//! | spike | `x - S(t)` | fast robust mean (one-step expectation), noise scale σ |
//! | level shift | short mean of median-of-3 | slow baseline, learned spread of the difference |
//! | drift | medium mean | very slow baseline, learned spread of the difference |
//! | variance | cube root of short mean of squared successive differences (capped) | learned mean and spread (two-sided) |
//! | stuck | run of exactly repeated values | learned probability of a repeat |
//! | dropout | missing reporting slots | learned interval, gap rate and gap length |
//!
//! The score is the largest surprise `-log10 p` over the tests, corrected for the number of
//! tests (Bonferroni), divided by 10 and clamped to [0, 1]. Because every test is
//! standardised by spreads learned per sensor, the same threshold means the same
//! false-alarm probability per reading on every sensor, whatever its units.
//!
//! Readings scoring above `learn_gate_score` are not learned from, so a fault does not
//! teach the detector that it is normal. If abnormal behaviour persists for
//! `adapt_after_s`, it is accepted as the new normal: baselines jump to the current
//! level and noise, and the score carries `adapted = true` once.
//!
//! # Hostile values
//! Non-finite readings are refused ([`ValueError::NonFinite`]) and change nothing. A finite
//! reading beyond ±[`MAX_READING_MAGNITUDE`] is clamped to that bound before it is scored
//! and learned from (no physical sensor reads that far; squares and sums of larger values
//! would overflow the state); the score reports the value as sent, says `clamped`, and its
//! explanation says so. Such a reading always scores 1 (a spike, unless a test found more):
//! however quiet the sensor was, or whatever the tests enabled, it is no measurement. Every number the state keeps is finite whatever it is fed, so a
//! checkpoint always loads.

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::config::{Config, ConfigError, Params, Rates, SURPRISE_SCALE, TAIL_LEVELS, TAIL_RATES};
use crate::stats::{cbrt_nonneg, surprise_two_sided};

/// Number of bins of the learned 24-hour profile.
pub const SEASON_BINS: usize = 24;
const DAY_MS: i64 = 86_400_000;
const BIN_MS: f64 = (DAY_MS / SEASON_BINS as i64) as f64;
/// Largest tail calibration factor: beyond it a sensor's statistic is too wild to score.
const MAX_TAIL: f32 = 8.0;
/// A run of repeats entered by a step of at most this many noise units is a frozen value;
/// one entered by a larger step is a sensor parked at a rest value.
const FROZEN_ENTRY_SIGMAS: f64 = 4.0;
/// Bounds of the learned repeat probabilities. A run's end probability may fall very low:
/// a sensor that has only ever repeated itself may stay flat for weeks without surprise.
const REPEAT_MIN: f32 = 1e-4;
const REPEAT_MAX: f32 = 1.0 - 1e-4;
/// End probability of a run of a kind the sensor has never completed.
const END_MIN: f32 = 1e-9;
/// Weight of each completed run in the mean run length.
const RUN_WEIGHT: f32 = 0.05;
/// `ln` of the number of runs the mean run length reflects (about `1 / RUN_WEIGHT`): the
/// longest of that many geometric runs of mean `m` is about `m` times this, so the runs a
/// sensor makes in its longest-running regime (a quantised reading near a daily peak, a
/// counter at low load) have a mean of at least their learned longest run over this.
const LN_RUNS: f32 = 3.0;
/// Fewest changes of a state in a window that can be normal however rarely it changes
/// (a machine that starts and stops again): the chatter test counts changes beyond them.
const CHATTER_MIN_CHANGES: f64 = 0.5;
/// Window statistics beyond this many spreads are not learned from.
const TRIM: f64 = 3.0;
/// 1 / E[z² | |z| < 3] for Gaussian z: undoes the trimming's shrinkage of the variance.
const TRIM_BIAS: f32 = 1.030_2;

/// Largest magnitude a reading is scored and learned at: beyond it, a reading is clamped
/// to this bound (and its score says so).
pub const MAX_READING_MAGNITUDE: f64 = 1e15;

/// The value a reading is scored and learned at, and whether it had to be clamped to
/// ±[`MAX_READING_MAGNITUDE`] to get there. The one rule for every part of the detector.
#[inline]
pub fn clamp_reading(value: f64) -> (f64, bool) {
    let clamped = value.clamp(-MAX_READING_MAGNITUDE, MAX_READING_MAGNITUDE);
    (clamped, clamped != value)
}

/// The score of a reading beyond ±[`MAX_READING_MAGNITUDE`]: no working sensor reads
/// that, so it is as abnormal as a reading can be (a spike, unless a test found more),
/// whatever the tests make of it at the bound. They may make nothing of it: a detector
/// still warming up, or one judging only what the machine model leaves to it (the
/// reading's departure is the model's to judge, and a model that cannot yet tell a change
/// of load from a fault stays silent), or a sensor that has long read at the bound.
fn beyond_any_sensor(mut score: Score) -> Score {
    score.score = 1.0;
    score.level = 1.0;
    if score.test == Test::None {
        score.test = Test::Spike;
    }
    score
}

/// A finite `f64` in single precision, saturating at the largest finite `f32` (and 0 for
/// NaN), so a state field can never become infinite through a narrowing conversion.
#[inline]
pub(crate) fn f32_sat(x: f64) -> f32 {
    if x.is_nan() { 0.0 } else { x.clamp(-f64::from(f32::MAX), f64::from(f32::MAX)) as f32 }
}

/// Which test produced a score.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Test {
    /// Nothing stood out (or the detector is still warming up).
    None,
    Spike,
    LevelShift,
    Drift,
    /// Noise level changed (a burst, or an unusually quiet signal).
    Variance,
    Stuck,
    Dropout,
}

impl Test {
    /// Which kind of condition the test reports: 1 a departure of level (spike, level
    /// shift, drift: one change often shows in all three), 2 noise, 3 a frozen value, 4 a
    /// silence; 0 none. A condition of another kind is new, whatever else is going on.
    fn family(self) -> u8 {
        match self {
            Test::None => 0,
            Test::Spike | Test::LevelShift | Test::Drift => 1,
            Test::Variance => 2,
            Test::Stuck => 3,
            Test::Dropout => 4,
        }
    }

    /// Human name for explanations ("level-shift test").
    pub fn describe(self) -> &'static str {
        match self {
            Test::None => "no test",
            Test::Spike => "spike test",
            Test::LevelShift => "level-shift test",
            Test::Drift => "drift test",
            Test::Variance => "variance test",
            Test::Stuck => "stuck-value test",
            Test::Dropout => "dropout test",
        }
    }
}

/// The result for one reading (or one overdue check).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Score {
    pub ts_ms: i64,
    /// The observed value (for a dropout: the last value received).
    pub value: f64,
    /// What the firing test expected (for a level shift: the baseline before the shift).
    pub expected: f64,
    /// Band in which a single reading would score below `band_score`.
    pub lower: f64,
    pub upper: f64,
    /// Calibrated surprise in [0, 1]: `-log10(p) / 10`, p being the probability of a reading
    /// at least this surprising under normal behaviour, corrected for the number of tests.
    /// It peaks when something changes: once a condition has scored `alarm_score`, later
    /// readings of the same condition score only what is new about them.
    pub score: f32,
    /// How abnormal the sensor is right now against its learned normal, on the same scale:
    /// it stays high while a condition lasts ("still abnormal"), until the sensor returns
    /// to normal or the detector accepts its new behaviour as normal.
    #[serde(default)]
    pub level: f32,
    pub test: Test,
    /// Time since the previous reading (0 for the first one).
    pub gap_ms: i64,
    /// True on the reading at which persistent new behaviour was accepted as normal.
    pub adapted: bool,
    /// The value was beyond ±[`MAX_READING_MAGNITUDE`] and was scored and learned at that
    /// bound (`value` is still the value as sent).
    #[serde(default)]
    pub clamped: bool,
    /// The score is an overdue check of a silent sensor (see [`Detector::overdue`]), not
    /// a reading: `value` is the last value received.
    #[serde(default)]
    pub overdue: bool,
}

impl Score {
    /// Probability per reading of a score at least this high under normal behaviour.
    pub fn p_value(&self) -> f64 {
        10f64.powf(-f64::from(self.score) * SURPRISE_SCALE)
    }

    /// One-line explanation: "observed 91.3, expected 70.1 ± 4.2, level-shift test, score 0.998".
    pub fn explain(&self) -> String {
        let half = 0.5 * (self.upper - self.lower);
        let text = match self.test {
            Test::Dropout => format!(
                "no reading for {:.1} s (last value {:.4}), {}, score {:.3}",
                self.gap_ms as f64 / 1000.0,
                self.value,
                self.test.describe(),
                self.score
            ),
            _ => format!(
                "observed {:.4}, expected {:.4} ± {:.4}, {}, score {:.3}",
                self.value,
                self.expected,
                half,
                self.test.describe(),
                self.score
            ),
        };
        if self.clamped {
            format!("{text} (the value is beyond ±{MAX_READING_MAGNITUDE:e}: scored and learned at that bound)")
        } else {
            text
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum ValueError {
    #[error("value is not a finite number")]
    NonFinite,
}

/// Everything the detector remembers about one sensor: a fixed-size plain value
/// (see [`SensorState::MEMORY_BYTES`]) that serializes compactly for checkpoints.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SensorState {
    n: u32,
    run: u32,
    streak: u32,
    last_ts_ms: i64,
    last: f64,
    prev: f64,
    /// The reading before `prev` (a cycling signal's spike may hold for two readings).
    prev2: f64,
    /// One-step expectation (deseasonalised).
    fast: f64,
    short: f64,
    base: f64,
    mid: f64,
    drift_base: f64,
    /// Daily mean: the base the 24-hour profile is learned against.
    day: f64,
    sigma: f32,
    sigma_fast: f32,
    /// Tail calibration: spike test at |z| = 2.5 and 3.5, variance test at 3.
    tails: [f32; 3],
    shift_var: f32,
    drift_var: f32,
    var_ewma: f32,
    var_mean: f32,
    var_var: f32,
    /// Probability that a reading repeats the previous one exactly, and the mean length
    /// of the runs of repeats the sensor has completed, for runs it froze into and for runs
    /// it jumped into (a rest value, a plateau); 0 while it has completed none. Runs are
    /// taken as geometric with that mean.
    repeat_start: f32,
    run_frozen: f32,
    run_parked: f32,
    /// The longest runs of each kind completed lately (decaying over `rare_half_life_s`).
    run_frozen_max: f32,
    run_parked_max: f32,
    interval_ms: f32,
    jitter_ms: f32,
    /// Mean time between readings, gaps included (each up to ten intervals): what the
    /// time constants are counted in. It is longer than the interval for a sensor that
    /// reports irregularly or is read only now and then.
    spacing_ms: f32,
    gap_p: f32,
    gap_len: f32,
    /// Smallest step between readings seen lately: the sensor's resolution.
    quantum: f32,
    season: [f32; SEASON_BINS],
    /// Whether the current run of repeats began without a jump (a frozen value), and
    /// whether the last reading was itself a jump.
    frozen: bool,
    jumped: bool,
    /// Long-run share of readings that differ from the one before, and its short mean: a
    /// sensor that normally changes rarely (a state, a set point, a batch cycle) and starts
    /// changing all the time chatters.
    change_p: f32,
    change_short: f32,
    /// Most changes in a short window the sensor made lately while normal (decaying over
    /// `rare_half_life_s`): a state that flips twice at every start-up does so by design.
    change_peak: f32,
    /// Most changes in a short window during the current burst of changes: it joins
    /// `change_peak` when the burst ends without having been judged chatter.
    burst: f32,
    /// Largest |z| of the spike test (in units of the core noise) the sensor reached lately
    /// while normal (decaying over `rare_half_life_s`): beyond it, a heavy-tailed or spiky
    /// sensor's reading is judged as Gaussian noise on top of its largest normal excursion.
    envelope: f32,
    /// The kind of condition (see `Test::family`) that last scored an alarm and still
    /// lasts (0: none), and readings judged normal since it last looked abnormal.
    latched: u8,
    calm: u16,
    /// Readings since an abnormal reading last widened the tails.
    since_exceed: u16,
    /// A cycling signal's shape (see `Enabled::cycle_shape`): the mean |second difference|
    /// of its readings judged normal (its noise, which a ramp does not add to; 0 until
    /// learned), and the range its cycle spans lately.
    curve: f32,
    range_lo: f32,
    range_hi: f32,
}

impl Default for SensorState {
    fn default() -> Self {
        SensorState {
            n: 0,
            run: 0,
            streak: 0,
            last_ts_ms: 0,
            last: 0.0,
            prev: 0.0,
            prev2: 0.0,
            fast: 0.0,
            short: 0.0,
            base: 0.0,
            mid: 0.0,
            drift_base: 0.0,
            day: 0.0,
            sigma: 0.0,
            sigma_fast: 0.0,
            tails: [1.0; 3],
            shift_var: 0.0,
            drift_var: 0.0,
            var_ewma: 1.0,
            var_mean: 0.0,
            var_var: 0.0,
            // A new sensor is assumed noisy; repeats teach otherwise within minutes.
            repeat_start: 0.05,
            run_frozen: 0.0,
            run_parked: 0.0,
            run_frozen_max: 0.0,
            run_parked_max: 0.0,
            interval_ms: 0.0,
            jitter_ms: 0.0,
            spacing_ms: 0.0,
            gap_p: 0.002,
            gap_len: 1.5,
            quantum: f32::MAX,
            season: [0.0; SEASON_BINS],
            frozen: false,
            jumped: false,
            change_p: 0.5,
            change_short: 0.5,
            change_peak: 0.0,
            burst: 0.0,
            envelope: 0.0,
            latched: 0,
            calm: 0,
            since_exceed: 0,
            curve: 0.0,
            range_lo: 0.0,
            range_hi: 0.0,
        }
    }
}

#[derive(Debug, Error)]
pub enum CheckpointError {
    #[error("checkpoint does not decode as detector state: {0}")]
    Decode(#[from] postcard::Error),
    #[error("checkpoint holds non-finite numbers")]
    NonFinite,
}

impl SensorState {
    /// Bytes the state occupies in memory.
    pub const MEMORY_BYTES: usize = std::mem::size_of::<SensorState>();

    /// Readings seen so far.
    pub fn readings(&self) -> u32 {
        self.n
    }

    /// Timestamp of the last reading, if any.
    pub fn last_ts_ms(&self) -> Option<i64> {
        (self.n > 0).then_some(self.last_ts_ms)
    }

    /// Learned reporting interval in milliseconds (0 until two readings were seen).
    pub fn interval_ms(&self) -> f32 {
        self.interval_ms
    }

    /// What the detector has learned about this sensor, for inspection and debugging views.
    pub fn diagnostics(&self) -> Diagnostics {
        Diagnostics {
            readings: self.n,
            level: self.fast,
            noise_sigma: self.sigma,
            tails: self.tails,
            shift_sd: self.shift_var.sqrt(),
            drift_sd: self.drift_var.sqrt(),
            baseline: self.base,
            drift_baseline: self.drift_base,
            repeat_probability: self.repeat_start,
            interval_ms: self.interval_ms,
            gap_probability: self.gap_p,
            season: self.season,
            abnormal_streak: self.streak,
            envelope: self.envelope,
        }
    }

    /// Compact binary checkpoint (postcard).
    pub fn to_bytes(&self) -> Vec<u8> {
        postcard::to_allocvec(self).unwrap_or_default()
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Self, CheckpointError> {
        let s: SensorState = postcard::from_bytes(bytes)?;
        if s.is_finite() { Ok(s) } else { Err(CheckpointError::NonFinite) }
    }

    /// Whether every number of the state is finite (always true of a state the detector
    /// made; a checkpoint from elsewhere may not be).
    pub fn is_finite(&self) -> bool {
        self.scalars_finite() && self.season.iter().all(|v| v.is_finite())
    }

    /// Whether every number but the day profile is finite: with the profile's bins a step
    /// touched, what a step checks (the whole profile would be two dozen more per reading).
    fn scalars_finite(&self) -> bool {
        let s = self;
        let floats = [s.last, s.prev, s.prev2, s.fast, s.short, s.base, s.mid, s.drift_base, s.day];
        let small = [
            s.sigma,
            s.sigma_fast,
            s.tails[0],
            s.tails[1],
            s.tails[2],
            s.shift_var,
            s.drift_var,
            s.var_ewma,
            s.var_mean,
            s.var_var,
            s.repeat_start,
            s.run_frozen,
            s.run_parked,
            s.run_frozen_max,
            s.run_parked_max,
            s.change_p,
            s.change_short,
            s.change_peak,
            s.burst,
            s.envelope,
            s.interval_ms,
            s.jitter_ms,
            s.spacing_ms,
            s.gap_p,
            s.gap_len,
            s.quantum,
            s.curve,
            s.range_lo,
            s.range_hi,
        ];
        floats.iter().all(|v| v.is_finite()) && small.iter().all(|v| v.is_finite())
    }
}

/// A readable summary of a [`SensorState`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Diagnostics {
    pub readings: u32,
    /// One-step expectation without the daily profile.
    pub level: f64,
    pub noise_sigma: f32,
    /// Tail calibration factors: spike test at |z| = 2.5 and 3.5, variance test at 3.
    pub tails: [f32; 3],
    pub shift_sd: f32,
    pub drift_sd: f32,
    pub baseline: f64,
    pub drift_baseline: f64,
    pub repeat_probability: f32,
    pub interval_ms: f32,
    pub gap_probability: f32,
    pub season: [f32; SEASON_BINS],
    pub abnormal_streak: u32,
    /// Largest |z| of the spike test the sensor reached lately while normal.
    #[serde(default)]
    pub envelope: f32,
}

/// Position of `ts_ms` in the 24-hour profile: the two neighbouring bin centres and the
/// weight of the second.
#[inline]
fn season_position(ts_ms: i64) -> (usize, usize, f32) {
    let tod = ts_ms.rem_euclid(DAY_MS) as f64 / BIN_MS - 0.5;
    let tod = if tod < 0.0 { tod + SEASON_BINS as f64 } else { tod };
    let i = (tod as usize).min(SEASON_BINS - 1);
    let w = (tod - i as f64) as f32;
    (i, (i + 1) % SEASON_BINS, w)
}

/// Surprise of a spike-test z under the sensor's calibrated tail. `c1` and `c2` widen
/// the Gaussian so that |z| > 2.5 and |z| > 3.5 occur at their Gaussian rates. When the
/// outer calibration is clearly wider than the inner one, the noise has heavier tails
/// than a Gaussian: beyond 3.5·c2 the tail is then extrapolated exponentially through the
/// two calibration points (exact for Laplace noise, conservative in between).
#[inline]
fn is_heavy_tail(z: f64, c1: f64, c2: f64) -> bool {
    c2 > 1.1 * c1 && z.abs() > f64::from(TAIL_LEVELS[1]) * c2
}

/// Ratio of the outer to the inner tail calibration from which a sensor's tail is a shell
/// of spikes beyond a Gaussian core rather than a smoothly heavy tail (see
/// [`spike_surprise`]).
const SHELL_RATIO: f64 = 1.6;

/// Surprise of a spike-test z of a heavy-tailed sensor: the tail extrapolated through the
/// calibration points (see [`is_heavy_tail`]).
///
/// Beyond `envelope`, the largest |z| the sensor reached lately while normal, a reading of
/// a sensor that spikes by design is further judged as Gaussian noise on top of that
/// largest excursion: a sensor that spikes up to ten noise units is not expected at twenty,
/// however heavy its tail looked below ten. Such a sensor is told by its tails: a Gaussian
/// core (`c1` near 1) and a shell of spikes far out (`c2` over `SHELL_RATIO` times `c1`).
/// A tail that falls smoothly (Laplace noise: `c2` about 1.25 `c1`) has no largest
/// excursion; each day brings a new one, and it is judged by the extrapolated tail alone.
#[inline]
fn spike_surprise(z: f64, c1: f64, c2: f64, envelope: f64) -> f64 {
    let a = z.abs();
    let gauss = surprise_two_sided(a / c1.max(c2));
    let q2 = f64::from(TAIL_LEVELS[1]) * c2;
    if c2 <= 1.1 * c1 || a <= q2 {
        return gauss;
    }
    let q1 = f64::from(TAIL_LEVELS[0]) * c1;
    let s1 = -f64::from(TAIL_RATES[0]).log10();
    let s2 = -f64::from(TAIL_RATES[1]).log10();
    let slope = (s2 - s1) / (q2 - q1).max(1e-9);
    let beyond = if envelope > q2 && a > envelope && c2 > SHELL_RATIO * c1 {
        surprise_two_sided((a - envelope) / c1)
    } else {
        0.0
    };
    gauss.min(s2 + slope * (a - q2) + beyond)
}

#[inline]
fn median3(a: f64, b: f64, c: f64) -> f64 {
    a.max(b).min(a.min(b).max(c))
}

/// Every statistic of one reading, computed before anything is learned from it.
#[derive(Debug, Clone, Copy)]
struct Observation {
    ts_ms: i64,
    /// The reading as scored (clamped).
    value: f64,
    /// The condition the sensor was in before this reading (see `SensorState::latched`).
    latched_before: u8,
    gap_ms: i64,
    /// The daily profile at the reading's time, and where the time falls in it.
    season: f64,
    season_pos: (usize, usize, f32),
    /// The reading without its daily profile, and the median of the last three.
    y: f64,
    m3: f64,
    /// Expectations before this reading.
    fast: f64,
    base: f64,
    drift_base: f64,
    /// Noise scale, residual against the one-step expectation and its z.
    sigma: f64,
    r: f64,
    z: f64,
    /// Window means after this reading, their departures and the departures' z.
    short: f64,
    mid: f64,
    d_shift: f64,
    d_drift: f64,
    z_shift: f64,
    z_drift: f64,
    z_drift_raw: f64,
    var_ewma: f32,
    lv: f32,
    z_var: f64,
    z_var_raw: f64,
    change_short: f32,
    s_chatter: f64,
    /// Exact repeats so far, and whether the sensor froze into them.
    run: u32,
    frozen: bool,
    jumped: bool,
    s_stuck: f64,
    missed: u32,
    s_gap: f64,
    /// The step from the previous reading against the noise of the last minute.
    z_new: f64,
    /// A cycling signal's tests (0 when off): the reading before this one left and this
    /// one came straight back (in units of the noise of a step), and how far this reading
    /// lies beyond the range of the cycle (in units of the noise).
    z_blip: f64,
    z_range: f64,
    /// |second difference| of this reading (0 when off).
    curve: f64,
}

/// What the tests make of one reading.
#[derive(Debug, Clone, Copy)]
struct Judged {
    level: f32,
    test: Test,
    half_band: f64,
    warm: bool,
}

/// Scores readings of any number of sensors with one set of settings.
#[derive(Debug, Clone)]
pub struct Detector {
    p: Params,
}

impl Detector {
    pub fn new(cfg: Config) -> Result<Self, ConfigError> {
        Ok(Detector { p: Params::new(cfg)? })
    }

    pub fn config(&self) -> &Config {
        &self.p.cfg
    }

    /// The per-reading constants for `state`'s spacing of readings.
    #[inline]
    fn rates(&self, state: &SensorState) -> &Rates {
        self.p.rates(state.spacing_ms)
    }

    /// |z| at which a single reading reaches `band_score`.
    pub fn band_z(&self) -> f64 {
        self.p.band_z
    }

    fn noise_floor(level: f64) -> f64 {
        // Keeps z finite on perfectly constant sensors; 1e-6 of the level is well above
        // single-precision rounding of the value.
        1e-9 + 1e-6 * level.abs()
    }

    /// The learned daily profile at `ts_ms` (0 when the profile is switched off), and where
    /// `ts_ms` falls in it.
    #[inline]
    fn season_at(&self, state: &SensorState, ts_ms: i64) -> (f64, (usize, usize, f32)) {
        let pos = season_position(ts_ms);
        if !self.p.cfg.enabled.seasonal_profile {
            return (0.0, pos);
        }
        let (bi, bj, bw) = pos;
        (f64::from(state.season[bi] * (1.0 - bw) + state.season[bj] * bw), pos)
    }

    /// The smallest noise the spike test assumes: above single-precision rounding, and at
    /// least half the sensor's resolution once it has been seen to move (a change of one
    /// step is then never a surprise). A sensor never seen to move has no resolution yet:
    /// its first movement is measured against the rounding floor alone.
    #[inline]
    fn sigma_floor(state: &SensorState) -> f64 {
        let resolution = if state.quantum < f32::MAX { 0.5 * f64::from(state.quantum) } else { 0.0 };
        Self::noise_floor(state.fast).max(resolution)
    }

    /// The level the sensor is expected to hold at `ts_ms` when nothing is wrong: its
    /// learned baseline plus its daily profile (0 until the detector has warmed up).
    pub(crate) fn normal_level(&self, state: &SensorState, ts_ms: i64) -> f64 {
        if state.n < self.rates(state).warmup {
            return 0.0;
        }
        self.season_at(state, ts_ms).0 + state.base
    }

    /// Scores one reading against `state`, then learns from it.
    pub fn next(&self, state: &mut SensorState, ts_ms: i64, sent: f64) -> Result<Score, ValueError> {
        self.next_with_floor(state, ts_ms, sent, 0.0)
    }

    /// [`Detector::next`] for a series whose noise is known to be at least `floor` (in its
    /// units): a machine's residual of a quantised sensor moves by fractions of a step with
    /// the other sensors, yet a change of less than about one step of the reading is no news.
    pub fn next_with_floor(
        &self,
        state: &mut SensorState,
        ts_ms: i64,
        sent: f64,
        floor: f64,
    ) -> Result<Score, ValueError> {
        if !sent.is_finite() {
            return Err(ValueError::NonFinite);
        }
        let (value, clamped) = clamp_reading(sent);
        if state.n == 0 {
            let mut score = self.first(state, ts_ms, value);
            (score.value, score.clamped) = (sent, clamped);
            return Ok(if clamped { beyond_any_sensor(score) } else { score });
        }
        let floor = if floor.is_finite() { floor.clamp(0.0, MAX_READING_MAGNITUDE) } else { 0.0 };
        let obs = self.observe(state, ts_ms, value, floor);
        let judged = self.judge(state, &obs);
        let score = self.onset(state, &obs, &judged);
        let adapted = self.learn(state, &obs, &judged);
        let (bi, bj, _) = obs.season_pos;
        if !(state.scalars_finite() && state.season[bi].is_finite() && state.season[bj].is_finite()) {
            // Cannot happen with readings clamped as they are; were it ever to, the sensor
            // starts learning again rather than keep (and checkpoint) a broken state.
            *state = SensorState::default();
        }
        let expected = obs.season
            + match judged.test {
                Test::LevelShift => obs.base,
                Test::Drift => obs.drift_base,
                _ => obs.fast,
            };
        let score = Score {
            ts_ms,
            value: sent,
            expected,
            lower: expected - judged.half_band,
            upper: expected + judged.half_band,
            score,
            level: judged.level,
            test: judged.test,
            gap_ms: obs.gap_ms,
            adapted,
            clamped,
            overdue: false,
        };
        Ok(if clamped { beyond_any_sensor(score) } else { score })
    }

    /// Every statistic of one reading against what the sensor has learned (no learning).
    fn observe(&self, state: &SensorState, ts_ms: i64, value: f64, floor: f64) -> Observation {
        let p = &self.p;
        let rt = self.rates(state);
        let n = state.n as f32;
        // Early on, a plain running mean learns faster than the long half-lives allow.
        let rate = |a: f32| a.max(1.0 / (n + 1.0));
        let gap_ms = ts_ms.saturating_sub(state.last_ts_ms);
        let (season, season_pos) = self.season_at(state, ts_ms);
        let y = value - season;
        let m3 = median3(state.prev, state.last, value) - season;

        // Spike: residual against the one-step expectation.
        let sigma = f64::from(state.sigma).max(Self::sigma_floor(state)).max(floor);
        let r = y - state.fast;
        // A reading back at the sensor's normal level is no spike, however far the one-step
        // expectation has wandered with an abnormal condition that is now ending.
        let z =
            if state.n >= rt.warmup && (y - state.base).abs() < r.abs() { (y - state.base) / sigma } else { r / sigma };

        // Level shift and drift: window means against gated baselines.
        let short = state.short + f64::from(rate(rt.a_short)) * (m3 - state.short);
        let mid = state.mid + f64::from(rate(rt.a_mid)) * (m3 - state.mid);
        let d_shift = short - state.base;
        let d_drift = mid - state.drift_base;
        // Spreads never fall below a fraction of the noise: a change of a fraction of the
        // noise is not worth an alarm, however quiet the statistic has been.
        let shift_sd = f64::from(state.shift_var).sqrt().max(p.shift_floor_sigmas * sigma);
        let drift_sd = f64::from(state.drift_var).sqrt().max(p.drift_floor_sigmas * sigma);
        let z_shift_raw = d_shift / shift_sd;
        let z_drift_raw = d_drift / drift_sd;
        let z_drift = z_drift_raw * f64::from((n / rt.drift_maturity).min(1.0));

        // Variance: cube root of the short mean of capped z² (nearly Gaussian for a
        // chi-square-like statistic, Wilson-Hilferty), against its learned distribution.
        // Successive differences, so a change of level is not mistaken for noise. Only a
        // rise counts: a sensor going quiet is judged by the stuck test, and many sensors
        // (set points, positions, states) are normally quiet.
        // A cycling signal's noise is measured on second differences, which its ramps do
        // not add to; scaled to the variance of a successive difference of white noise.
        let shape = p.cfg.enabled.cycle_shape;
        let d2 = value - 2.0 * state.last + state.prev;
        let curve_sd = f64::from(state.curve) * 1.253_314;
        let shape_known = shape && state.curve > 0.0 && state.n >= rt.tail_warmup;
        let zd = if shape_known {
            d2 / curve_sd.max(Self::sigma_floor(state)) * std::f64::consts::SQRT_2
        } else {
            (value - state.last) / sigma
        };
        let zz = (0.5 * zd * zd).min(16.0) as f32;
        let var_ewma = state.var_ewma + rate(rt.a_var) * (zz - state.var_ewma);
        let lv = cbrt_nonneg(var_ewma);
        let var_sd = state.var_var.sqrt().max(0.01);
        let z_var_raw = f64::from((lv - state.var_mean) / var_sd);
        let z_var = (z_var_raw / f64::from(state.tails[2])).max(0.0) * f64::from((n / rt.variance_maturity).min(1.0));
        // Chatter: changes counted over the short window, beyond the most the sensor has
        // made in such a window lately while normal, against its long-run change rate
        // (Poisson upper tail, Chernoff bound in log space). A state that changes rarely
        // is no chatter when it changes, nor when it starts and stops within a minute as
        // it has done before: only when it keeps flipping.
        let changed = f32::from(u8::from(value != state.last));
        let change_short = state.change_short + rt.a_var * (changed - state.change_short);
        let s_chatter = if p.cfg.enabled.chatter && state.n >= rt.warmup {
            let window = f64::from(1.0 / rt.a_var);
            let excess = f64::from(change_short - state.change_peak) * window;
            let lambda = (f64::from(state.change_p) * window).max(CHATTER_MIN_CHANGES);
            if excess > lambda {
                (lambda - excess + excess * (excess / lambda).ln()) * std::f64::consts::LOG10_E
            } else {
                0.0
            }
        } else {
            0.0
        };

        // Stuck: a run of exactly repeated values the sensor froze into (a value reached
        // by a jump is a sensor parked at rest, e.g. a current at 0 when its machine
        // idles: the jump itself is what other tests judge).
        let run = if value == state.last { state.run.saturating_add(1) } else { 0 };
        let jumped = (value - state.last).abs() > FROZEN_ENTRY_SIGMAS * sigma;
        let frozen = if run == 0 {
            false
        } else if state.run == 0 {
            !state.jumped
        } else {
            state.frozen
        };
        // A run is judged against the runs of its kind the sensor has completed. Without
        // any: a sensor flat since it was installed, or one that never parked at a value
        // before, gives no evidence that it should move again; one that never froze
        // before is taken to end its runs at once, as noisy sensors do.
        let s_stuck = if p.cfg.enabled.stuck && run > 0 {
            let (start, mean, longest) = if frozen {
                (-f64::from(state.repeat_start).log10(), state.run_frozen, state.run_frozen_max)
            } else {
                (0.0, state.run_parked, state.run_parked_max)
            };
            // Runs come in regimes (a quantised reading holds longer near a daily peak than
            // on a slope): the tail is that of the longest-running regime seen lately.
            let mean = mean.max(longest / LN_RUNS);
            let flat_since_start = run.saturating_add(rt.warmup) >= state.n;
            // Completed runs hold at least one repeat: a geometric run length of mean m
            // ends after each repeat with probability 1/m; half a repeat more allows for
            // run lengths more spread than geometric (a quantised sensor near a peak).
            let end = if mean > 0.0 {
                (1.0 / (f64::from(mean) + 0.5)).min(f64::from(REPEAT_MAX))
            } else if frozen && !flat_since_start {
                0.9
            } else {
                f64::from(END_MIN)
            };
            start + f64::from(run - 1) * -(-end).ln_1p() * std::f64::consts::LOG10_E
        } else {
            0.0
        };

        // Dropout: missing reporting slots before this reading.
        let missed = self.missed_slots(state, gap_ms);
        let s_gap = if p.cfg.enabled.dropout { self.gap_surprise(state, missed) } else { 0.0 };

        // Novelty: the step from the previous reading against the noise of the last
        // minute, i.e. what is new given whatever the sensor has just been doing.
        // A step back towards the normal level is a return, never news.
        let sigma_new = f64::from(state.sigma_fast).max(Self::sigma_floor(state)).max(floor) * std::f64::consts::SQRT_2;
        let last_y = state.last - season;
        let away = (y - state.base).abs() > (last_y - state.base).abs();
        let z_new = if away { (value - state.last) / sigma_new } else { 0.0 };

        // A cycling signal: a spike is a reading that left the one before it and that this
        // one came straight back from (a ramp moves one way, a square wave's edge stays);
        // a shift takes its plateaus beyond the range its cycle spans.
        let (z_blip, z_range) = if shape_known {
            let noise = (curve_sd / 6f64.sqrt()).max(Self::sigma_floor(state));
            let (left, back) = (state.last - state.prev, value - state.last);
            let one = if left * back < 0.0 { left.abs().min(back.abs()) } else { 0.0 };
            // Or out for two readings that agree with each other, and back now.
            let (left2, held) = (state.prev - state.prev2, state.last - state.prev);
            let out2 = left2.abs().min(back.abs());
            let two = if left2 * back < 0.0 && held.abs() < 0.5 * out2 { out2 } else { 0.0 };
            let blip = one.max(two) / (noise * std::f64::consts::SQRT_2);
            let beyond = (f64::from(state.range_lo) - value).max(value - f64::from(state.range_hi)).max(0.0);
            (blip, beyond / noise)
        } else {
            (0.0, 0.0)
        };

        Observation {
            ts_ms,
            value,
            latched_before: state.latched,
            gap_ms,
            season,
            season_pos,
            y,
            m3,
            fast: state.fast,
            base: state.base,
            drift_base: state.drift_base,
            sigma,
            r,
            z,
            short,
            mid,
            d_shift,
            d_drift,
            z_shift: z_shift_raw,
            z_drift,
            z_drift_raw,
            var_ewma,
            lv,
            z_var,
            z_var_raw,
            change_short,
            s_chatter,
            run,
            frozen,
            jumped,
            s_stuck,
            missed,
            s_gap,
            z_new,
            z_blip,
            z_range,
            curve: if shape { d2.abs() } else { 0.0 },
        }
    }

    /// The strongest test and the sensor's abnormality level: the largest surprise over the
    /// tests, corrected for their number.
    fn judge(&self, state: &SensorState, o: &Observation) -> Judged {
        let p = &self.p;
        let rt = self.rates(state);
        let en = p.cfg.enabled;
        let t = state.tails.map(f64::from);
        // Strongest z test, then the direct surprises.
        let mut best_z = 0.0;
        let mut test = Test::None;
        for (on, zt, t) in [
            (en.level_shift, o.z_shift, Test::LevelShift),
            (en.drift, o.z_drift, Test::Drift),
            (en.variance, o.z_var, Test::Variance),
        ] {
            if on && zt.abs() > best_z {
                best_z = zt.abs();
                test = t;
            }
        }
        if en.cycle_shape {
            for (zt, t) in [(o.z_blip, Test::Spike), (o.z_range, Test::LevelShift)] {
                if zt > best_z {
                    best_z = zt;
                    test = t;
                }
            }
        }
        let other_test = test;
        // The spike test's Gaussian part competes on z like the others; only a reading
        // in the far tail of a heavy-tailed sensor needs its own surprise.
        let other_z = best_z;
        // Until the sensor has been watched long enough to know whether it spikes by
        // design, a reading is judged against the widest tails any sensor may learn: only
        // what no sensor's normal spikes reach (many tens of its noise units) is news.
        let tails_known = state.n >= rt.tail_warmup;
        let spike_z = o.z.abs() / if tails_known { t[0].max(t[1]) } else { f64::from(MAX_TAIL) };
        if en.spike && spike_z > best_z {
            best_z = spike_z;
            test = Test::Spike;
        }
        let mut surprise = surprise_two_sided(best_z);
        if en.spike && test == Test::Spike && tails_known && is_heavy_tail(o.z, t[0], t[1]) {
            surprise = spike_surprise(o.z, t[0], t[1], f64::from(state.envelope)).max(surprise_two_sided(other_z));
            if surprise_two_sided(other_z) >= surprise && other_z > 0.0 {
                test = other_test;
            }
        }
        if o.s_chatter > surprise {
            surprise = o.s_chatter;
            test = Test::Variance;
        }
        if o.s_stuck > surprise {
            surprise = o.s_stuck;
            test = Test::Stuck;
        }
        if o.s_gap > surprise {
            surprise = o.s_gap;
            test = Test::Dropout;
        }
        let warm = state.n >= rt.warmup;
        let level = if warm { ((surprise - p.log10_tests) / SURPRISE_SCALE).clamp(0.0, 1.0) as f32 } else { 0.0 };
        if level <= 0.0 {
            test = Test::None;
        }
        Judged { level, test, half_band: p.band_z * o.sigma * t[0].max(t[1]), warm }
    }

    /// The reported score: the abnormality level until it reaches `alarm_score`; from then
    /// on, while the condition lasts, only what is new about a reading (its step from the
    /// reading before, against the noise of the last minute) or a condition of another
    /// kind. So a change scores at its onset, and a long fault is one alarm.
    fn onset(&self, state: &mut SensorState, o: &Observation, j: &Judged) -> f32 {
        let p = &self.p;
        let rt = self.rates(state);
        let family = j.test.family();
        let score = if state.latched == 0 || (family != 0 && family != state.latched) {
            j.level
        } else {
            let novelty = ((surprise_two_sided(o.z_new) - p.log10_tests) / SURPRISE_SCALE).clamp(0.0, 1.0) as f32;
            j.level.min(novelty)
        };
        if score >= p.cfg.alarm_score && family != 0 {
            state.latched = family;
            state.calm = 0;
        } else if state.latched != 0 {
            state.calm = if j.level < p.cfg.learn_gate_score { state.calm.saturating_add(1) } else { 0 };
            if u32::from(state.calm) >= rt.release {
                state.latched = 0;
            }
        }
        score
    }

    /// Learns from the reading: the spreads, baselines and profile only from readings
    /// judged normal (so a fault does not teach the detector that it is normal), the
    /// one-step expectation, the sensor's resolution, its repeats and its timing from
    /// every reading. Returns whether persistent new behaviour was accepted as normal.
    fn learn(&self, state: &mut SensorState, o: &Observation, j: &Judged) -> bool {
        let p = &self.p;
        let rt = self.rates(state);
        let en = p.cfg.enabled;
        let n = state.n as f32;
        let rate = |a: f32| a.max(1.0 / (n + 1.0));
        let mut learn = !j.warm || j.level < p.cfg.learn_gate_score;
        let mut adapted = false;
        if learn {
            state.streak = state.streak.saturating_sub(1);
        } else {
            state.streak += 1;
            if state.streak >= rt.adapt_after {
                adapted = true;
                learn = true;
                self.adapt(state, o);
            }
        }

        let clip = 4.0 * o.sigma;
        state.fast += f64::from(rate(rt.a_fast)) * o.r.clamp(-clip, clip);
        let abs_r = f32_sat(o.r.abs().min(clip));
        let fast_clip = 6.0 * f64::from(state.sigma_fast).max(Self::noise_floor(state.fast));
        state.sigma_fast += rate(rt.a_sigma_fast)
            * (1.253_314 * f32_sat(o.r.abs().min(if state.n > 10 { fast_clip } else { f64::MAX })) - state.sigma_fast);
        state.short = o.short;
        state.mid = o.mid;
        state.var_ewma = o.var_ewma;
        state.change_short = o.change_short;
        if state.latched == Test::LevelShift.family() && (o.short - o.base).abs() < o.sigma {
            // The departure has ended: the slower window forgets it rather than keep
            // reporting its memory as a drift.
            state.mid = o.short;
        }

        // While its spike test is silent (the first hour), the sensor's tails and its
        // largest normal excursion are learned from every reading: a sensor that spikes by
        // design shows it within minutes.
        let tail_learning = state.n < rt.tail_warmup;
        // An abnormal reading may teach the tails and the envelope, at most one a minute.
        let mut abnormal_counted = false;
        if en.tail_calibration && j.warm {
            // Exceedances widen the tails even from readings judged abnormal (a sensor that
            // spikes by design is judged abnormal at first), but at most one a minute of
            // readings, so a lasting fault does not quickly teach that it is normal.
            state.since_exceed = state.since_exceed.saturating_add(1);
            let counted = learn || tail_learning || state.since_exceed >= rt.exceed_every;
            abnormal_counted = counted && !learn && !tail_learning;
            let mut widened = false;
            for (i, (c, zr)) in state.tails.iter_mut().zip([o.z, o.z, o.z_var_raw]).enumerate() {
                let exceed = (zr.abs() as f32) > TAIL_LEVELS[i] * *c;
                let (up, down) = p.tail_steps[i];
                if exceed && counted {
                    *c = (*c * up).clamp(1.0, MAX_TAIL);
                    widened = true;
                } else if !exceed && (learn || tail_learning) {
                    *c = (*c * down).clamp(1.0, MAX_TAIL);
                }
            }
            if widened && !learn {
                state.since_exceed = 0;
            }
        }
        let keep = 1.0 - rt.a_rare;
        state.envelope *= keep;
        // Only once warmed up: before, the noise the excursion is measured in is not known
        // (the second reading's |z| is the step over a noise of nearly nothing), and an
        // envelope of thousands of noise units, forgotten only over days, hid every spike of
        // a sensor that spikes by design.
        if (learn || tail_learning) && j.warm {
            state.envelope = state.envelope.max(f32_sat(o.z.abs()));
        } else if abnormal_counted && j.test == Test::Spike {
            // A spike beyond the envelope, judged abnormal, moves it out by one noise unit
            // (at most one a minute): a sensor that keeps spiking a little beyond its
            // envelope, as it forgets its largest spikes over a day, keeps it where its
            // spikes reach, whereas a fault's far spike moves it by one unit only. Learned
            // only from readings judged normal, the envelope shrank below the sensor's own
            // spikes, which then alarmed (spiky vibrations: 12 false episodes a day).
            let z = f32_sat(o.z.abs());
            state.envelope = state.envelope.max(z.min(state.envelope + 1.0));
        }
        // A burst of changes joins the sensor's record once it is over (a window without a
        // change), unless it was judged chatter.
        state.change_peak *= keep;
        if j.warm {
            state.burst = state.burst.max(o.change_short);
        }
        if o.change_short < 0.5 * rt.a_var {
            if o.latched_before != Test::Variance.family() && state.latched != Test::Variance.family() {
                state.change_peak = state.change_peak.max(state.burst);
            }
            state.burst = 0.0;
        }
        state.run_frozen_max *= keep;
        state.run_parked_max *= keep;
        if learn && en.cycle_shape {
            // The cycle's noise on second differences (clipped, so a spike does not teach
            // it), and the range it spans: widened by every reading judged normal, and
            // drawn in towards them over `rare_half_life_s`, so it is the range of lately.
            let c = f32_sat(o.curve);
            state.curve = if state.curve > 0.0 {
                state.curve + rate(rt.a_scale) * (c.min(6.0 * state.curve) - state.curve)
            } else {
                c
            };
            let v = f32_sat(o.value);
            let a = rt.a_rare;
            state.range_lo = (state.range_lo + a * (v - state.range_lo).max(0.0)).min(v);
            state.range_hi = (state.range_hi + a * (v - state.range_hi).min(0.0)).max(v);
        }
        if learn {
            let a_scale = rate(rt.a_scale);
            state.sigma += a_scale * (1.253_314 * abs_r - state.sigma);
            let changed = f32::from(u8::from(o.value != state.last));
            state.change_p += rate(rt.a_rare) * (changed - state.change_p);
            state.base += f64::from(rate(rt.a_base)) * (o.m3 - state.base);
            state.drift_base += f64::from(rate(rt.a_drift_base)) * (o.m3 - state.drift_base);
            if state.n + 1 == rt.warmup {
                self.set_stat_priors(state);
            } else if j.warm {
                self.learn_spreads(state, o);
            }
            if en.seasonal_profile {
                state.day += f64::from(rate(rt.a_day)) * (o.y - state.day);
                let interval = if state.spacing_ms > 0.0 { state.spacing_ms } else { 1000.0 };
                let g = (interval / 3.6e6 * p.season_rate_per_day).min(0.5);
                let err = f32_sat(o.y - state.day);
                let (bi, bj, bw) = o.season_pos;
                state.season[bi] += g * (1.0 - bw) * err;
                state.season[bj] += g * bw * err;
            }
        }
        // How often the sensor repeats itself is learned from every reading: a sensor that
        // has always been flat or stepwise must learn that it is, and a stuck one that
        // keeps repeating is accepted in time like any lasting change.
        if state.run == 0 {
            let repeated = f32::from(u8::from(o.run > 0));
            state.repeat_start += rate(rt.a_scale) * (repeated - state.repeat_start);
            state.repeat_start = state.repeat_start.clamp(REPEAT_MIN, REPEAT_MAX);
        } else if o.run == 0 && o.latched_before == 0 {
            // A run just ended outside any abnormal condition: its length joins the
            // sensor's record (about the last twenty runs of its kind).
            let (mean, longest) = if state.frozen {
                (&mut state.run_frozen, &mut state.run_frozen_max)
            } else {
                (&mut state.run_parked, &mut state.run_parked_max)
            };
            let length = state.run as f32;
            *mean = if *mean > 0.0 { *mean + RUN_WEIGHT * (length - *mean) } else { length };
            *longest = longest.max(length);
        }
        if o.gap_ms > 0 {
            self.learn_gap(state, o.gap_ms, o.missed);
        }
        let value = o.value;
        let step = f32_sat((value - state.last).abs());
        // Every step counts, a fault's too: a sensor seen to move by a step can move by it.
        if step > 0.0 && step.is_finite() {
            // Decaying minimum: forgets an old small step within a few thousand readings.
            state.quantum = (state.quantum * 1.001).min(step);
        }
        state.run = o.run;
        state.frozen = o.frozen;
        state.jumped = o.jumped;
        state.prev2 = state.prev;
        state.prev = state.last;
        state.last = value;
        state.last_ts_ms = o.ts_ms;
        state.n = state.n.saturating_add(1);
        adapted
    }

    /// Accepts the current behaviour as the new normal: baselines jump to the current
    /// level and noise.
    fn adapt(&self, state: &mut SensorState, o: &Observation) {
        let rt = self.rates(state);
        // A run that lasts this long is now one the sensor makes.
        let (mean, longest) = if o.frozen {
            (&mut state.run_frozen, &mut state.run_frozen_max)
        } else {
            (&mut state.run_parked, &mut state.run_parked_max)
        };
        *mean = mean.max(o.run as f32);
        *longest = longest.max(o.run as f32);
        // A cycle that now spans another range spans it from here on.
        let v = f32_sat(o.value);
        (state.range_lo, state.range_hi) = (state.range_lo.min(v), state.range_hi.max(v));
        state.streak = 0;
        state.latched = 0;
        state.calm = 0;
        state.base = o.short;
        state.drift_base = o.mid;
        state.day = o.mid;
        let new_sigma = state.sigma_fast.max(f32_sat(Self::noise_floor(o.mid)));
        let ratio = (new_sigma / state.sigma.max(f32::MIN_POSITIVE)).powi(2).clamp(1e-6, 1e6);
        state.sigma = new_sigma;
        // The tails keep their calibration: the shape of a sensor's noise does not change
        // with its level.
        // The learned wander of the window statistics carries over, in the new units of
        // noise; the variance statistic restarts from its theory.
        state.shift_var *= ratio;
        state.drift_var *= ratio;
        let nu = 2.0 / rt.a_var;
        state.var_mean = 1.0 - 2.0 / (9.0 * nu);
        state.var_var = 2.0 / (9.0 * nu);
    }

    /// The spreads of the window statistics, learned after warm-up from readings judged
    /// normal. They start from priors worth an hour of readings: the first hours
    /// of a sensor rarely show all of its normal variability. Trimmed: only values within
    /// TRIM spreads are learned (rescaled so the Gaussian spread is unbiased), so a slowly
    /// growing fault cannot widen the spread it is measured against before it is flagged.
    fn learn_spreads(&self, state: &mut SensorState, o: &Observation) {
        let rt = self.rates(state);
        let since = (state.n - rt.warmup) as f32;
        let a_stat = rt.a_stat.max(1.0 / (since + rt.stat_prior));
        if o.z_shift.abs() < TRIM {
            state.shift_var += a_stat * (f32_sat(o.d_shift * o.d_shift) * TRIM_BIAS - state.shift_var);
        }
        if o.z_drift_raw.abs() < TRIM {
            state.drift_var += a_stat * (f32_sat(o.d_drift * o.d_drift) * TRIM_BIAS - state.drift_var);
        }
        if o.z_var_raw.abs() < TRIM {
            state.var_mean += a_stat * (o.lv - state.var_mean);
            let dv = o.lv - state.var_mean;
            state.var_var += a_stat * (dv * dv * TRIM_BIAS - state.var_var);
        }
    }

    /// Priors for the spreads of the window statistics, from the noise level learned in
    /// warm-up: white noise through each window, plus slow wander of half a noise unit
    /// (level shift) and one noise unit (drift).
    fn set_stat_priors(&self, state: &mut SensorState) {
        let rt = self.rates(state);
        let s2 = state.sigma * state.sigma;
        let white = |a: f32| a / (2.0 - a);
        state.shift_var = s2 * (white(rt.a_short) + 0.25);
        state.drift_var = s2 * (white(rt.a_mid) + 1.0);
        // cbrt of a mean of ν/2 chi-square(1) terms: mean ≈ 1 - 2/(9ν), sd ≈ sqrt(2/(9ν)).
        let nu = 2.0 / rt.a_var;
        state.var_mean = 1.0 - 2.0 / (9.0 * nu);
        state.var_var = 2.0 / (9.0 * nu);
    }

    fn first(&self, state: &mut SensorState, ts_ms: i64, value: f64) -> Score {
        *state = SensorState::default();
        for v in [
            &mut state.last,
            &mut state.prev,
            &mut state.prev2,
            &mut state.fast,
            &mut state.short,
            &mut state.base,
            &mut state.mid,
            &mut state.drift_base,
            &mut state.day,
        ] {
            *v = value;
        }
        state.last_ts_ms = ts_ms;
        state.n = 1;
        (state.range_lo, state.range_hi) = (f32_sat(value), f32_sat(value));
        Score {
            ts_ms,
            value,
            expected: value,
            lower: value,
            upper: value,
            score: 0.0,
            level: 0.0,
            test: Test::None,
            gap_ms: 0,
            adapted: false,
            clamped: false,
            overdue: false,
        }
    }

    /// Whole reporting slots missed in a gap, allowing for the learned jitter.
    #[inline]
    fn missed_slots(&self, state: &SensorState, gap_ms: i64) -> u32 {
        if state.interval_ms <= 0.0 || gap_ms <= 0 || state.n < 3 {
            return 0;
        }
        let allowance = 0.5 * state.interval_ms + 4.0 * state.jitter_ms;
        let k = (gap_ms as f32 - allowance) / state.interval_ms;
        if k >= 1.0 { k.min(1e9) as u32 } else { 0 }
    }

    /// Surprise of `missed` consecutive missing slots: a gap starts with the learned
    /// probability of a gap, and each further slot continues it with the learned
    /// continuation probability (geometric gap lengths).
    #[inline]
    fn gap_surprise(&self, state: &SensorState, missed: u32) -> f64 {
        if missed == 0 {
            return 0.0;
        }
        let start = -f64::from(state.gap_p).log10();
        let cont = (1.0 - 1.0 / f64::from(state.gap_len)).clamp(0.01, 0.99);
        start + f64::from(missed - 1) * -cont.log10()
    }

    fn learn_gap(&self, state: &mut SensorState, gap_ms: i64, missed: u32) {
        let rt = self.rates(state);
        let gap = gap_ms.min(i64::from(i32::MAX)) as f32;
        if state.interval_ms <= 0.0 {
            state.interval_ms = gap;
            state.spacing_ms = gap;
            state.jitter_ms = 0.1 * gap;
            return;
        }
        let a = rt.a_scale.max(1.0 / (state.n as f32 + 1.0));
        state.spacing_ms += a * (gap.min(10.0 * state.interval_ms) - state.spacing_ms);
        // A gap is learned as one interval of the clipped length, so dropouts do not
        // stretch the interval.
        let g = gap.clamp(0.5 * state.interval_ms, 2.0 * state.interval_ms);
        if missed == 0 {
            state.jitter_ms += a * ((g - state.interval_ms).abs() - state.jitter_ms);
            state.interval_ms += a * (g - state.interval_ms);
        }
        if state.n > 3 {
            let a_gap = rt.a_scale;
            state.gap_p += a_gap * ((missed > 0) as u8 as f32 - state.gap_p);
            state.gap_p = state.gap_p.clamp(1e-5, 0.5);
            if missed > 0 {
                state.gap_len += 20.0 * a_gap * ((missed.min(10) as f32) - state.gap_len);
                state.gap_len = state.gap_len.clamp(1.0, 10.0);
            }
        }
    }

    /// Is this sensor overdue at `now_ms`? Scores the silence since its last reading with
    /// the dropout test (score 0 while the silence is within normal jitter). Does not
    /// change the state.
    pub fn overdue(&self, state: &SensorState, now_ms: i64) -> Score {
        let gap_ms = now_ms.saturating_sub(state.last_ts_ms);
        let warm = state.n >= self.rates(state).warmup;
        let s = if warm && self.p.cfg.enabled.dropout {
            self.gap_surprise(state, self.missed_slots(state, gap_ms))
        } else {
            0.0
        };
        let score = ((s - self.p.log10_tests) / SURPRISE_SCALE).clamp(0.0, 1.0) as f32;
        let expected = state.fast + self.season_at(state, now_ms).0;
        let sigma = f64::from(state.sigma).max(Self::noise_floor(state.fast));
        let half = self.p.band_z * sigma * f64::from(state.tails[0].max(state.tails[1]));
        Score {
            ts_ms: now_ms,
            value: state.last,
            expected,
            lower: expected - half,
            upper: expected + half,
            score,
            level: score,
            test: if score > 0.0 { Test::Dropout } else { Test::None },
            gap_ms,
            adapted: false,
            clamped: false,
            overdue: true,
        }
    }
}

/// A detector with its own state, for one series: `next` in, score out, `reset` to start over.
#[derive(Debug, Clone)]
pub struct StreamingDetector {
    detector: Detector,
    state: SensorState,
}

impl StreamingDetector {
    pub fn new(cfg: Config) -> Result<Self, ConfigError> {
        Ok(StreamingDetector { detector: Detector::new(cfg)?, state: SensorState::default() })
    }

    pub fn next(&mut self, ts_ms: i64, value: f64) -> Result<Score, ValueError> {
        self.detector.next(&mut self.state, ts_ms, value)
    }

    pub fn overdue(&self, now_ms: i64) -> Score {
        self.detector.overdue(&self.state, now_ms)
    }

    pub fn reset(&mut self) {
        self.state = SensorState::default();
    }

    pub fn state(&self) -> &SensorState {
        &self.state
    }

    /// Continues from a checkpointed state.
    pub fn with_state(cfg: Config, state: SensorState) -> Result<Self, ConfigError> {
        Ok(StreamingDetector { detector: Detector::new(cfg)?, state })
    }

    pub fn detector(&self) -> &Detector {
        &self.detector
    }
}
