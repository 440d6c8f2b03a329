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
//! `adapt_after_readings`, it is accepted as the new normal: baselines jump to the current
//! level and noise, and the score carries `adapted = true` once.
//!
//! # Hostile values
//! Non-finite readings are refused ([`ValueError::NonFinite`]) and change nothing. A finite
//! reading beyond ±[`MAX_READING_MAGNITUDE`] is clamped to that bound before it is scored
//! and learned from (no physical sensor reads that far; squares and sums of larger values
//! would overflow the state); the score reports the value as sent, says `clamped`, and its
//! explanation says so. Every number the state keeps is finite whatever it is fed, so a
//! checkpoint always loads.

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::config::{Config, ConfigError, Params, SURPRISE_SCALE, TAIL_LEVELS, TAIL_RATES};
use crate::stats::{cbrt_nonneg, surprise_two_sided};

/// Number of bins of the learned 24-hour profile.
pub const SEASON_BINS: usize = 24;
const DAY_MS: i64 = 86_400_000;
const BIN_MS: f64 = (DAY_MS / SEASON_BINS as i64) as f64;
/// Weight, in readings, of the priors of the window statistics' spreads.
const STAT_PRIOR_READINGS: f32 = 3600.0;
/// Largest tail calibration factor: beyond it a sensor's statistic is too wild to score.
const MAX_TAIL: f32 = 8.0;
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
    /// Calibrated score in [0, 1]: `-log10(p) / 10`, p being the probability of a reading
    /// at least this surprising under normal behaviour, corrected for the number of tests.
    pub score: f32,
    pub test: Test,
    /// Time since the previous reading (0 for the first one).
    pub gap_ms: i64,
    /// True on the reading at which persistent new behaviour was accepted as normal.
    pub adapted: bool,
    /// The value was beyond ±[`MAX_READING_MAGNITUDE`] and was scored and learned at that
    /// bound (`value` is still the value as sent).
    #[serde(default)]
    pub clamped: bool,
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
    /// Probability that a reading repeats the previous one exactly, and that a repeat
    /// continues (runs of repeats are geometric).
    repeat_start: f32,
    repeat_cont: f32,
    interval_ms: f32,
    jitter_ms: f32,
    gap_p: f32,
    gap_len: f32,
    /// Smallest step between readings seen lately: the sensor's resolution.
    quantum: f32,
    season: [f32; SEASON_BINS],
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
            repeat_cont: 0.1,
            interval_ms: 0.0,
            jitter_ms: 0.0,
            gap_p: 0.002,
            gap_len: 1.5,
            quantum: f32::MAX,
            season: [0.0; SEASON_BINS],
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
        let s = self;
        let floats = [s.last, s.prev, s.fast, s.short, s.base, s.mid, s.drift_base, s.day];
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
            s.repeat_cont,
            s.interval_ms,
            s.jitter_ms,
            s.gap_p,
            s.gap_len,
            s.quantum,
        ];
        floats.iter().all(|v| v.is_finite())
            && small.iter().all(|v| v.is_finite())
            && s.season.iter().all(|v| v.is_finite())
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

#[inline]
fn spike_surprise(z: f64, c1: f64, c2: f64) -> f64 {
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
    gauss.min(s2 + slope * (a - q2))
}

#[inline]
fn median3(a: f64, b: f64, c: f64) -> f64 {
    a.max(b).min(a.min(b).max(c))
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

    /// |z| at which a single reading reaches `band_score`.
    pub fn band_z(&self) -> f64 {
        self.p.band_z
    }

    fn noise_floor(level: f64) -> f64 {
        // Keeps z finite on perfectly constant sensors; 1e-6 of the level is well above
        // single-precision rounding of the value.
        1e-9 + 1e-6 * level.abs()
    }

    /// The level the sensor is expected to hold at `ts_ms` when nothing is wrong: its
    /// learned baseline plus its daily profile (0 until the detector has warmed up).
    pub(crate) fn normal_level(&self, state: &SensorState, ts_ms: i64) -> f64 {
        if state.n < self.p.cfg.warmup_readings {
            return 0.0;
        }
        let season = if self.p.cfg.enabled.seasonal_profile {
            let (bi, bj, bw) = season_position(ts_ms);
            f64::from(state.season[bi] * (1.0 - bw) + state.season[bj] * bw)
        } else {
            0.0
        };
        season + state.base
    }

    /// Scores one reading against `state`, then learns from it.
    pub fn next(&self, state: &mut SensorState, ts_ms: i64, sent: f64) -> Result<Score, ValueError> {
        if !sent.is_finite() {
            return Err(ValueError::NonFinite);
        }
        let (value, clamped) = clamp_reading(sent);
        let p = &self.p;
        let en = p.cfg.enabled;
        if state.n == 0 {
            let mut score = self.first(state, ts_ms, value);
            (score.value, score.clamped) = (sent, clamped);
            return Ok(score);
        }
        let n = state.n as f32;
        // Early on, a plain running mean learns faster than the long half-lives allow.
        let rate = |a: f32| a.max(1.0 / (n + 1.0));

        let gap_ms = ts_ms.saturating_sub(state.last_ts_ms);
        let (bi, bj, bw) = season_position(ts_ms);
        let s_t =
            if en.seasonal_profile { f64::from(state.season[bi] * (1.0 - bw) + state.season[bj] * bw) } else { 0.0 };
        let y = value - s_t;
        let m3 = median3(state.prev, state.last, value) - s_t;

        // Spike: residual against the one-step expectation.
        // A coarse resolution bounds how small the noise can be taken to be: a change of
        // one step is then never a surprise.
        let sigma =
            f64::from(state.sigma).max(Self::noise_floor(state.fast)).max(0.5 * f64::from(state.quantum).min(f64::MAX));
        let r = y - state.fast;
        let z = r / sigma;
        let t = state.tails.map(f64::from);

        // Level shift and drift: window means against gated baselines.
        let short = state.short + f64::from(rate(p.a_short)) * (m3 - state.short);
        let mid = state.mid + f64::from(rate(p.a_mid)) * (m3 - state.mid);
        let d_shift = short - state.base;
        let d_drift = mid - state.drift_base;
        // Spreads never fall below a fraction of the noise: a change of a fraction of the
        // noise is not worth an alarm, however quiet the statistic has been.
        let shift_sd = f64::from(state.shift_var).sqrt().max(p.shift_floor_sigmas * sigma);
        let drift_sd = f64::from(state.drift_var).sqrt().max(p.drift_floor_sigmas * sigma);
        let z_shift_raw = d_shift / shift_sd;
        let z_drift_raw = d_drift / drift_sd;
        let z_shift = z_shift_raw;
        let z_drift = z_drift_raw * f64::from((n / p.drift_maturity).min(1.0));

        // Variance: cube root of the short mean of capped z² (nearly Gaussian for a
        // chi-square-like statistic, Wilson-Hilferty), against its learned distribution.
        // Successive differences, so a change of level is not mistaken for noise.
        let zd = (value - state.last) / sigma;
        let zz = (0.5 * zd * zd).min(16.0) as f32;
        let var_ewma = state.var_ewma + rate(p.a_var) * (zz - state.var_ewma);
        let lv = cbrt_nonneg(var_ewma);
        let var_sd = state.var_var.sqrt().max(0.01);
        let z_var_raw = f64::from((lv - state.var_mean) / var_sd);
        let z_var = z_var_raw / t[2] * f64::from((n / p.variance_maturity).min(1.0));

        // Stuck: run of exactly repeated values.
        let run = if value == state.last { state.run.saturating_add(1) } else { 0 };
        let s_stuck = if en.stuck && run > 0 {
            -f64::from(state.repeat_start).log10() + f64::from(run - 1) * -f64::from(state.repeat_cont).log10()
        } else {
            0.0
        };

        // Dropout: missing reporting slots before this reading.
        let missed = self.missed_slots(state, gap_ms);
        let s_gap = if en.dropout { self.gap_surprise(state, missed) } else { 0.0 };

        // Strongest z test, then the direct surprises.
        let mut best_z = 0.0;
        let mut test = Test::None;
        for (on, zt, t) in [
            (en.level_shift, z_shift, Test::LevelShift),
            (en.drift, z_drift, Test::Drift),
            (en.variance, z_var, Test::Variance),
        ] {
            if on && zt.abs() > best_z {
                best_z = zt.abs();
                test = t;
            }
        }
        let other_test = test;
        // The spike test's Gaussian part competes on z like the others; only a reading
        // in the far tail of a heavy-tailed sensor needs its own surprise.
        let other_z = best_z;
        let spike_z = z.abs() / t[0].max(t[1]);
        if en.spike && spike_z > best_z {
            best_z = spike_z;
            test = Test::Spike;
        }
        let mut surprise = surprise_two_sided(best_z);
        if test == Test::Spike && is_heavy_tail(z, t[0], t[1]) {
            surprise = spike_surprise(z, t[0], t[1]).max(surprise_two_sided(other_z));
            if surprise_two_sided(other_z) >= surprise && other_z > 0.0 {
                test = other_test;
            }
        }
        if s_stuck > surprise {
            surprise = s_stuck;
            test = Test::Stuck;
        }
        if s_gap > surprise {
            surprise = s_gap;
            test = Test::Dropout;
        }
        let warm = state.n >= p.cfg.warmup_readings;
        let score = if warm { ((surprise - p.log10_tests) / SURPRISE_SCALE).clamp(0.0, 1.0) as f32 } else { 0.0 };
        if !warm || score <= 0.0 {
            test = if warm { test } else { Test::None };
        }

        let expected = s_t
            + match test {
                Test::LevelShift => state.base,
                Test::Drift => state.drift_base,
                _ => state.fast,
            };
        let half = p.band_z * sigma * t[0].max(t[1]);

        // Learning.
        let mut learn = !warm || score < p.cfg.learn_gate_score;
        let mut adapted = false;
        if learn {
            state.streak = state.streak.saturating_sub(1);
        } else {
            state.streak += 1;
            if state.streak >= p.cfg.adapt_after_readings {
                adapted = true;
                learn = true;
                state.streak = 0;
                state.base = short;
                state.drift_base = mid;
                state.day = mid;
                let new_sigma = state.sigma_fast.max(f32_sat(Self::noise_floor(mid)));
                let ratio = (new_sigma / state.sigma.max(f32::MIN_POSITIVE)).powi(2).clamp(1e-6, 1e6);
                state.sigma = new_sigma;
                state.tails = [1.0; 3];
                // The learned wander of the window statistics carries over, in the new units
                // of noise; the variance statistic restarts from its theory.
                state.shift_var *= ratio;
                state.drift_var *= ratio;
                let nu = 2.0 / p.a_var;
                state.var_mean = 1.0 - 2.0 / (9.0 * nu);
                state.var_var = 2.0 / (9.0 * nu);
            }
        }

        let clip = 4.0 * sigma;
        state.fast += f64::from(rate(p.a_fast)) * r.clamp(-clip, clip);
        let abs_r = f32_sat(r.abs().min(clip));
        let fast_clip = 6.0 * f64::from(state.sigma_fast).max(Self::noise_floor(state.fast));
        state.sigma_fast += rate(p.a_sigma_fast)
            * (1.253_314 * f32_sat(r.abs().min(if state.n > 10 { fast_clip } else { f64::MAX })) - state.sigma_fast);
        state.short = short;
        state.mid = mid;
        state.var_ewma = var_ewma;

        if learn {
            let a_scale = rate(p.a_scale);
            state.sigma += a_scale * (1.253_314 * abs_r - state.sigma);
            if en.tail_calibration && warm {
                for (i, (c, zr)) in state.tails.iter_mut().zip([z, z, z_var_raw]).enumerate() {
                    let exceed = (zr.abs() as f32) > TAIL_LEVELS[i] * *c;
                    let (up, down) = p.tail_steps[i];
                    *c = (*c * if exceed { up } else { down }).clamp(1.0, MAX_TAIL);
                }
            }
            state.base += f64::from(rate(p.a_base)) * (m3 - state.base);
            state.drift_base += f64::from(rate(p.a_drift_base)) * (m3 - state.drift_base);
            if state.n + 1 == p.cfg.warmup_readings {
                self.set_stat_priors(state);
            } else if warm {
                // The spreads start from priors worth `STAT_PRIOR_READINGS` readings: the
                // first hours of a sensor rarely show all of its normal variability.
                let since = (state.n - p.cfg.warmup_readings) as f32;
                let a_stat = p.a_stat.max(1.0 / (since + STAT_PRIOR_READINGS));
                // Trimmed: only values within TRIM spreads are learned (rescaled so the
                // Gaussian spread is unbiased), so a slowly growing fault cannot widen the
                // spread it is measured against before it is flagged.
                if z_shift_raw.abs() < TRIM {
                    state.shift_var += a_stat * (f32_sat(d_shift * d_shift) * TRIM_BIAS - state.shift_var);
                }
                if z_drift_raw.abs() < TRIM {
                    state.drift_var += a_stat * (f32_sat(d_drift * d_drift) * TRIM_BIAS - state.drift_var);
                }
                if z_var_raw.abs() < TRIM {
                    state.var_mean += a_stat * (lv - state.var_mean);
                    let dv = lv - state.var_mean;
                    state.var_var += a_stat * (dv * dv * TRIM_BIAS - state.var_var);
                }
            }
            let repeated = f32::from(u8::from(run > 0));
            if state.run == 0 {
                state.repeat_start += rate(p.a_scale) * (repeated - state.repeat_start);
                state.repeat_start = state.repeat_start.clamp(1e-3, 0.999);
            } else {
                state.repeat_cont += rate(p.a_scale) * (repeated - state.repeat_cont);
                state.repeat_cont = state.repeat_cont.clamp(1e-3, 0.999);
            }
            if en.seasonal_profile {
                state.day += f64::from(rate(p.a_day)) * (y - state.day);
                let interval = if state.interval_ms > 0.0 { state.interval_ms } else { 1000.0 };
                let g = (interval / 3.6e6 * p.season_rate_per_day).min(0.5);
                let err = f32_sat(y - state.day);
                state.season[bi] += g * (1.0 - bw) * err;
                state.season[bj] += g * bw * err;
            }
        }
        if gap_ms > 0 {
            self.learn_gap(state, gap_ms, missed);
        }

        let step = f32_sat((value - state.last).abs());
        if step > 0.0 && step.is_finite() {
            // Decaying minimum: forgets an old small step within a few thousand readings.
            state.quantum = (state.quantum * 1.001).min(step);
        }
        state.run = run;
        state.prev = state.last;
        state.last = value;
        state.last_ts_ms = ts_ms;
        state.n = state.n.saturating_add(1);

        if !state.is_finite() {
            // Cannot happen with readings clamped as they are; were it ever to, the sensor
            // starts learning again rather than keep (and checkpoint) a broken state.
            *state = SensorState::default();
        }
        Ok(Score {
            ts_ms,
            value: sent,
            expected,
            lower: expected - half,
            upper: expected + half,
            score,
            test,
            gap_ms,
            adapted,
            clamped,
        })
    }

    /// Priors for the spreads of the window statistics, from the noise level learned in
    /// warm-up: white noise through each window, plus slow wander of half a noise unit
    /// (level shift) and one noise unit (drift).
    fn set_stat_priors(&self, state: &mut SensorState) {
        let p = &self.p;
        let s2 = state.sigma * state.sigma;
        let white = |a: f32| a / (2.0 - a);
        state.shift_var = s2 * (white(p.a_short) + 0.25);
        state.drift_var = s2 * (white(p.a_mid) + 1.0);
        // cbrt of a mean of ν/2 chi-square(1) terms: mean ≈ 1 - 2/(9ν), sd ≈ sqrt(2/(9ν)).
        let nu = 2.0 / p.a_var;
        state.var_mean = 1.0 - 2.0 / (9.0 * nu);
        state.var_var = 2.0 / (9.0 * nu);
    }

    fn first(&self, state: &mut SensorState, ts_ms: i64, value: f64) -> Score {
        *state = SensorState::default();
        for v in [
            &mut state.last,
            &mut state.prev,
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
        Score {
            ts_ms,
            value,
            expected: value,
            lower: value,
            upper: value,
            score: 0.0,
            test: Test::None,
            gap_ms: 0,
            adapted: false,
            clamped: false,
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
        let gap = gap_ms.min(i64::from(i32::MAX)) as f32;
        if state.interval_ms <= 0.0 {
            state.interval_ms = gap;
            state.jitter_ms = 0.1 * gap;
            return;
        }
        let a = self.p.a_scale.max(1.0 / (state.n as f32 + 1.0));
        // A gap is learned as one interval of the clipped length, so dropouts do not
        // stretch the interval.
        let g = gap.clamp(0.5 * state.interval_ms, 2.0 * state.interval_ms);
        if missed == 0 {
            state.jitter_ms += a * ((g - state.interval_ms).abs() - state.jitter_ms);
            state.interval_ms += a * (g - state.interval_ms);
        }
        if state.n > 3 {
            let a_gap = self.p.a_scale;
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
        let warm = state.n >= self.p.cfg.warmup_readings;
        let s = if warm && self.p.cfg.enabled.dropout {
            self.gap_surprise(state, self.missed_slots(state, gap_ms))
        } else {
            0.0
        };
        let score = ((s - self.p.log10_tests) / SURPRISE_SCALE).clamp(0.0, 1.0) as f32;
        let (bi, bj, bw) = season_position(now_ms);
        let s_t = if self.p.cfg.enabled.seasonal_profile {
            f64::from(state.season[bi] * (1.0 - bw) + state.season[bj] * bw)
        } else {
            0.0
        };
        let expected = state.fast + s_t;
        let sigma = f64::from(state.sigma).max(Self::noise_floor(state.fast));
        let half = self.p.band_z * sigma * f64::from(state.tails[0].max(state.tails[1]));
        Score {
            ts_ms: now_ms,
            value: state.last,
            expected,
            lower: expected - half,
            upper: expected + half,
            score,
            test: if score > 0.0 { Test::Dropout } else { Test::None },
            gap_ms,
            adapted: false,
            clamped: false,
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
