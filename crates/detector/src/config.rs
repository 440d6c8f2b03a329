//! Detector settings (validated, with units in their names) and the constants derived from them.

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::stats::{alpha_for_half_life, z_for_surprise};

/// Scores are `-log10(p) / SURPRISE_SCALE`, clamped to [0, 1]: a score of 1 means the
/// reading is at least as surprising as a 1-in-10^10 event under the sensor's normal
/// behaviour.
pub const SURPRISE_SCALE: f64 = 10.0;

/// Which parts of the detector run. Every part can be switched off, so each one's
/// contribution can be measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Enabled {
    /// Single-reading outlier against the one-step expectation.
    pub spike: bool,
    /// Short window mean against the slow baseline.
    pub level_shift: bool,
    /// Medium window mean against a very slow baseline.
    pub drift: bool,
    /// Short-window variance against the learned noise level (both directions).
    pub variance: bool,
    /// Exactly repeated values where the sensor is normally noisy.
    pub stuck: bool,
    /// Changes far more often than the sensor's learned change rate (a chattering contact).
    pub chatter: bool,
    /// Missing readings, from the learned reporting interval.
    pub dropout: bool,
    /// Learned 24-hour profile removed before every test.
    pub seasonal_profile: bool,
    /// Per-sensor calibration of the spike and variance tests' tails: the spread is widened
    /// until |z| > 3 is as rare as for Gaussian noise (heavier-tailed noise).
    pub tail_calibration: bool,
}

impl Default for Enabled {
    fn default() -> Self {
        Enabled {
            spike: true,
            level_shift: true,
            drift: true,
            variance: true,
            stuck: true,
            chatter: true,
            dropout: true,
            seasonal_profile: true,
            tail_calibration: true,
        }
    }
}

/// Settings of the streaming detector. Half-lives are counted in readings (one reading a
/// second on the plant floor), so the same settings work for irregular offline series.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Readings learned before any score is given (scores are 0 until then).
    pub warmup_readings: u32,
    /// Half-life of the one-step expectation the spike test compares against.
    pub fast_half_life_readings: f32,
    /// Half-life of the learned noise level and of the tail calibration.
    pub scale_half_life_readings: f32,
    /// Half-life of the short mean of the level-shift test.
    pub shift_half_life_readings: f32,
    /// Half-life of the baseline the level-shift test compares against.
    pub baseline_half_life_readings: f32,
    /// Half-life of the mean of the drift test.
    pub drift_half_life_readings: f32,
    /// Half-life of the baseline the drift test compares against.
    pub drift_baseline_half_life_readings: f32,
    /// Half-life of the short-window variance of the variance test.
    pub variance_half_life_readings: f32,
    /// Half-life with which the normal spread of each test statistic is learned.
    pub stat_scale_half_life_readings: f32,
    /// How many days of history the 24-hour profile mostly reflects.
    pub season_memory_days: f32,
    /// After this many readings judged abnormal in a row (give or take brief dips), the
    /// current behaviour is accepted as the new normal (e.g. after maintenance).
    pub adapt_after_readings: u32,
    /// Smallest level shift, in units of the noise, that can reach `band_score` on the
    /// level-shift test (however steady the sensor): smaller shifts are not worth an alarm.
    pub min_shift_sigmas: f32,
    /// Same for the drift test.
    pub min_drift_sigmas: f32,
    /// Readings scoring at or above this are not learned from.
    pub learn_gate_score: f32,
    /// The expected band (lower/upper) is where a single reading scores below this.
    pub band_score: f32,
    /// The alarm threshold the scores are shaped for (the default of `floorwatch detect`'s
    /// users and of the plant's episodes): once a condition scores this, later readings of
    /// the same condition score only what is new about them, until the sensor has looked
    /// normal for `release_readings` readings.
    pub alarm_score: f32,
    pub release_readings: u32,
    pub enabled: Enabled,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            warmup_readings: 120,
            fast_half_life_readings: 20.0,
            scale_half_life_readings: 1800.0,
            shift_half_life_readings: 4.0,
            baseline_half_life_readings: 900.0,
            drift_half_life_readings: 150.0,
            drift_baseline_half_life_readings: 5400.0,
            variance_half_life_readings: 15.0,
            stat_scale_half_life_readings: 7200.0,
            season_memory_days: 1.0,
            adapt_after_readings: 1800,
            min_shift_sigmas: 2.5,
            min_drift_sigmas: 2.5,
            learn_gate_score: 0.35,
            band_score: 0.6,
            alarm_score: 0.6,
            release_readings: 30,
            enabled: Enabled::default(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Error)]
pub enum ConfigError {
    #[error("{field} must be a finite number of at least {min}, got {got}")]
    TooSmall { field: &'static str, min: f32, got: f32 },
    #[error("{field} must be at most {max}, got {got}")]
    TooLarge { field: &'static str, max: f32, got: f32 },
    #[error("{short} ({short_value}) must be shorter than {long} ({long_value})")]
    Order { short: &'static str, short_value: f32, long: &'static str, long_value: f32 },
    #[error("{field} must lie strictly between 0 and 1, got {got}")]
    NotAFraction { field: &'static str, got: f32 },
    #[error("at least one test must be enabled")]
    NoTests,
}

fn at_least(field: &'static str, got: f32, min: f32, max: f32) -> Result<(), ConfigError> {
    if !got.is_finite() || got < min {
        return Err(ConfigError::TooSmall { field, min, got });
    }
    if got > max {
        return Err(ConfigError::TooLarge { field, max, got });
    }
    Ok(())
}

fn fraction(field: &'static str, got: f32) -> Result<(), ConfigError> {
    if got.is_finite() && got > 0.0 && got < 1.0 { Ok(()) } else { Err(ConfigError::NotAFraction { field, got }) }
}

fn shorter(short: &'static str, short_value: f32, long: &'static str, long_value: f32) -> Result<(), ConfigError> {
    if short_value < long_value { Ok(()) } else { Err(ConfigError::Order { short, short_value, long, long_value }) }
}

/// Largest half-life accepted: about a year of one-second readings. Longer ones would
/// round the per-reading weight to zero in single precision.
const MAX_HALF_LIFE: f32 = 3.2e7;

impl Config {
    /// The settings for raw readings when a machine model judges the same sensors: a
    /// reading alone is judged only for being stuck or missing; its level, noise and
    /// spikes are judged against the rest of its machine, since a change of load moves
    /// every sensor at once.
    pub fn beside_machine_model() -> Self {
        Config {
            enabled: Enabled {
                spike: false,
                level_shift: false,
                drift: false,
                variance: false,
                chatter: false,
                ..Enabled::default()
            },
            ..Config::default()
        }
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        at_least("warmup_readings", self.warmup_readings as f32, 10.0, 1.0e7)?;
        at_least("fast_half_life_readings", self.fast_half_life_readings, 1.0, MAX_HALF_LIFE)?;
        at_least("scale_half_life_readings", self.scale_half_life_readings, 10.0, MAX_HALF_LIFE)?;
        at_least("shift_half_life_readings", self.shift_half_life_readings, 1.0, MAX_HALF_LIFE)?;
        at_least("baseline_half_life_readings", self.baseline_half_life_readings, 10.0, MAX_HALF_LIFE)?;
        at_least("drift_half_life_readings", self.drift_half_life_readings, 1.0, MAX_HALF_LIFE)?;
        at_least("drift_baseline_half_life_readings", self.drift_baseline_half_life_readings, 10.0, MAX_HALF_LIFE)?;
        at_least("variance_half_life_readings", self.variance_half_life_readings, 2.0, MAX_HALF_LIFE)?;
        at_least("stat_scale_half_life_readings", self.stat_scale_half_life_readings, 10.0, MAX_HALF_LIFE)?;
        at_least("season_memory_days", self.season_memory_days, 0.1, 3650.0)?;
        at_least("adapt_after_readings", self.adapt_after_readings as f32, 1.0, 1.0e9)?;
        at_least("min_shift_sigmas", self.min_shift_sigmas, 0.0, 1.0e3)?;
        at_least("min_drift_sigmas", self.min_drift_sigmas, 0.0, 1.0e3)?;
        fraction("learn_gate_score", self.learn_gate_score)?;
        fraction("band_score", self.band_score)?;
        fraction("alarm_score", self.alarm_score)?;
        at_least("release_readings", self.release_readings as f32, 1.0, 1.0e7)?;
        shorter(
            "shift_half_life_readings",
            self.shift_half_life_readings,
            "baseline_half_life_readings",
            self.baseline_half_life_readings,
        )?;
        shorter(
            "drift_half_life_readings",
            self.drift_half_life_readings,
            "drift_baseline_half_life_readings",
            self.drift_baseline_half_life_readings,
        )?;
        let e = &self.enabled;
        if !(e.spike || e.level_shift || e.drift || e.variance || e.stuck || e.chatter || e.dropout) {
            return Err(ConfigError::NoTests);
        }
        Ok(())
    }
}

/// Constants derived once from a validated [`Config`] and shared by every sensor.
#[derive(Debug, Clone)]
pub(crate) struct Params {
    pub cfg: Config,
    pub a_fast: f32,
    pub a_scale: f32,
    pub a_short: f32,
    pub a_base: f32,
    pub a_mid: f32,
    pub a_drift_base: f32,
    pub a_var: f32,
    pub a_stat: f32,
    pub a_sigma_fast: f32,
    pub a_day: f32,
    /// Per-reading weight of the 24-hour profile update, as a multiple of the reporting
    /// interval in days (the profile learns per unit of time, not per reading).
    pub season_rate_per_day: f32,
    /// Bonferroni correction for the number of tests, in log10 units.
    pub log10_tests: f64,
    /// |z| at which a single reading reaches `band_score` on the spike test.
    pub band_z: f64,
    /// Tail calibration steps (up on an exceedance of the level, down otherwise), one pair
    /// per entry of `TAIL_LEVELS`, so each exceedance rate settles at its Gaussian value.
    pub tail_steps: [(f32, f32); 3],
    pub shift_floor_sigmas: f64,
    pub drift_floor_sigmas: f64,
    /// Maturity (in readings) before each slow test speaks at full strength.
    pub drift_maturity: f32,
    pub variance_maturity: f32,
}

/// Levels at which the tail calibration tracks exceedance rates of |z|: the spike test at
/// 2.5 and 3.5, the variance test at 3.
pub(crate) const TAIL_LEVELS: [f32; 3] = [2.5, 3.5, 3.0];
/// Two-sided Gaussian P(|Z| > level) for each of `TAIL_LEVELS`.
pub(crate) const TAIL_RATES: [f32; 3] = [0.012_419_3, 0.000_465_3, 0.002_699_8];

impl Params {
    pub fn new(cfg: Config) -> Result<Self, ConfigError> {
        cfg.validate()?;
        let e = cfg.enabled;
        let tests = [e.spike, e.level_shift, e.drift, e.variance, e.stuck, e.chatter, e.dropout]
            .iter()
            .filter(|on| **on)
            .count()
            .max(1);
        let log10_tests = (tests as f64).log10();
        let band_z = z_for_surprise(f64::from(cfg.band_score) * SURPRISE_SCALE + log10_tests);
        // Each exceedance widens the calibration by 5 %: a few hours of data settle it.
        let eta = 0.05_f32;
        Ok(Params {
            a_fast: alpha_for_half_life(cfg.fast_half_life_readings),
            a_scale: alpha_for_half_life(cfg.scale_half_life_readings),
            a_short: alpha_for_half_life(cfg.shift_half_life_readings),
            a_base: alpha_for_half_life(cfg.baseline_half_life_readings),
            a_mid: alpha_for_half_life(cfg.drift_half_life_readings),
            a_drift_base: alpha_for_half_life(cfg.drift_baseline_half_life_readings),
            a_var: alpha_for_half_life(cfg.variance_half_life_readings),
            a_stat: alpha_for_half_life(cfg.stat_scale_half_life_readings),
            a_sigma_fast: alpha_for_half_life(60.0),
            a_day: alpha_for_half_life(cfg.drift_baseline_half_life_readings * 4.0),
            season_rate_per_day: 1.0 / cfg.season_memory_days,
            log10_tests,
            band_z,
            tail_steps: TAIL_RATES.map(|r| ((eta * (1.0 - r)).exp(), (-eta * r).exp())),
            shift_floor_sigmas: f64::from(cfg.min_shift_sigmas) / band_z,
            drift_floor_sigmas: f64::from(cfg.min_drift_sigmas) / band_z,
            drift_maturity: cfg.drift_baseline_half_life_readings,
            variance_maturity: (cfg.variance_half_life_readings * 20.0).max(cfg.warmup_readings as f32),
            cfg,
        })
    }
}
