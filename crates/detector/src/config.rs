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
    /// For a signal whose ramps and plateaus are its normal shape (a batch cycle), judged
    /// against that shape rather than against a level: its noise on second differences (a
    /// ramp has none), a spike as a reading that leaves and comes straight back, a shift as
    /// a reading beyond the range its cycle spans. Off by default: only sensors known to
    /// cycle so are judged this way.
    #[serde(default)]
    pub cycle_shape: bool,
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
            cycle_shape: false,
        }
    }
}

/// Settings of the streaming detector. Time constants are in seconds of the sensor's own
/// time, so a sensor reporting every second and one reporting every minute remember the
/// same stretch of their history; a slowly reporting sensor keeps at least a few readings
/// in each (see [`Rates`]: an hourly series gets a baseline of a day and a drift reference
/// of a week, rather than baselines shorter than one reading).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Time learned before any score is given (scores are 0 until then).
    pub warmup_s: f32,
    /// Half-life of the one-step expectation the spike test compares against.
    pub fast_half_life_s: f32,
    /// Half-life of the learned noise level.
    pub scale_half_life_s: f32,
    /// Half-life of the short mean of the level-shift test.
    pub shift_half_life_s: f32,
    /// Half-life of the baseline the level-shift test compares against.
    pub baseline_half_life_s: f32,
    /// Half-life of the mean of the drift test.
    pub drift_half_life_s: f32,
    /// Half-life of the baseline the drift test compares against.
    pub drift_baseline_half_life_s: f32,
    /// Half-life of the short-window variance of the variance test.
    pub variance_half_life_s: f32,
    /// Half-life with which the normal spread of each test statistic is learned.
    pub stat_scale_half_life_s: f32,
    /// Half-life of what the detector learns about rare normal events: how often a state
    /// changes, how far and how often a sensor spikes by design, its longest runs of repeats.
    pub rare_half_life_s: f32,
    /// Time a sensor is watched before its spike test speaks: long enough to see whether
    /// it spikes by design (until then it learns how often and how far it does).
    pub tail_warmup_s: f32,
    /// How many days of history the 24-hour profile mostly reflects.
    pub season_memory_days: f32,
    /// After abnormal readings for this long (give or take brief dips), the current
    /// behaviour is accepted as the new normal (e.g. after maintenance).
    pub adapt_after_s: f32,
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
    /// normal for `release_s`.
    pub alarm_score: f32,
    pub release_s: f32,
    pub enabled: Enabled,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            warmup_s: 120.0,
            fast_half_life_s: 20.0,
            scale_half_life_s: 1800.0,
            shift_half_life_s: 4.0,
            baseline_half_life_s: 900.0,
            drift_half_life_s: 150.0,
            drift_baseline_half_life_s: 5400.0,
            variance_half_life_s: 15.0,
            stat_scale_half_life_s: 7200.0,
            rare_half_life_s: 86_400.0,
            tail_warmup_s: 3600.0,
            season_memory_days: 1.0,
            adapt_after_s: 1800.0,
            min_shift_sigmas: 2.5,
            min_drift_sigmas: 2.5,
            learn_gate_score: 0.35,
            band_score: 0.6,
            alarm_score: 0.6,
            release_s: 30.0,
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

/// Longest time constant accepted: about a year. Longer ones would round the per-reading
/// weight of a sensor reporting every second to zero in single precision.
const MAX_TIME_S: f32 = 3.2e7;

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
        at_least("warmup_s", self.warmup_s, 10.0, MAX_TIME_S)?;
        at_least("fast_half_life_s", self.fast_half_life_s, 1.0, MAX_TIME_S)?;
        at_least("scale_half_life_s", self.scale_half_life_s, 10.0, MAX_TIME_S)?;
        at_least("shift_half_life_s", self.shift_half_life_s, 1.0, MAX_TIME_S)?;
        at_least("baseline_half_life_s", self.baseline_half_life_s, 10.0, MAX_TIME_S)?;
        at_least("drift_half_life_s", self.drift_half_life_s, 1.0, MAX_TIME_S)?;
        at_least("drift_baseline_half_life_s", self.drift_baseline_half_life_s, 10.0, MAX_TIME_S)?;
        at_least("variance_half_life_s", self.variance_half_life_s, 2.0, MAX_TIME_S)?;
        at_least("stat_scale_half_life_s", self.stat_scale_half_life_s, 10.0, MAX_TIME_S)?;
        at_least("rare_half_life_s", self.rare_half_life_s, 60.0, MAX_TIME_S)?;
        at_least("tail_warmup_s", self.tail_warmup_s, 0.0, MAX_TIME_S)?;
        at_least("season_memory_days", self.season_memory_days, 0.1, 3650.0)?;
        at_least("adapt_after_s", self.adapt_after_s, 1.0, MAX_TIME_S)?;
        at_least("min_shift_sigmas", self.min_shift_sigmas, 0.0, 1.0e3)?;
        at_least("min_drift_sigmas", self.min_drift_sigmas, 0.0, 1.0e3)?;
        fraction("learn_gate_score", self.learn_gate_score)?;
        fraction("band_score", self.band_score)?;
        fraction("alarm_score", self.alarm_score)?;
        at_least("release_s", self.release_s, 1.0, MAX_TIME_S)?;
        shorter("shift_half_life_s", self.shift_half_life_s, "baseline_half_life_s", self.baseline_half_life_s)?;
        shorter(
            "drift_half_life_s",
            self.drift_half_life_s,
            "drift_baseline_half_life_s",
            self.drift_baseline_half_life_s,
        )?;
        let e = &self.enabled;
        if !(e.spike || e.level_shift || e.drift || e.variance || e.stuck || e.chatter || e.dropout) {
            return Err(ConfigError::NoTests);
        }
        Ok(())
    }
}

/// Per-reading constants for sensors reporting at one interval: every time constant of the
/// settings in readings, but never fewer than its floor, so that a sensor reporting once an
/// hour still averages over a day for its baseline and over a week for its drift reference.
#[derive(Debug, Clone)]
pub(crate) struct Rates {
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
    pub a_rare: f32,
    /// Readings of warm-up, of spike-tail learning, before adapting, and before release.
    pub warmup: u32,
    pub tail_warmup: u32,
    pub adapt_after: u32,
    pub release: u32,
    /// Weight, in readings, of the priors of the window statistics' spreads.
    pub stat_prior: f32,
    /// An abnormal reading counts towards the spike tail at most once in this many readings.
    pub exceed_every: u16,
    /// Maturity (in readings) before each slow test speaks at full strength.
    pub drift_maturity: f32,
    pub variance_maturity: f32,
}

/// Fewest readings each time constant spans, however slowly a sensor reports (see
/// [`Rates`]), in the order of the half-lives they bound.
const FLOOR_FAST: f32 = 3.0;
const FLOOR_SCALE: f32 = 48.0;
const FLOOR_SHIFT: f32 = 1.0;
const FLOOR_BASE: f32 = 24.0;
const FLOOR_MID: f32 = 8.0;
const FLOOR_DRIFT_BASE: f32 = 168.0;
const FLOOR_VAR: f32 = 4.0;
const FLOOR_STAT: f32 = 336.0;
const FLOOR_SIGMA_FAST: f32 = 4.0;
const FLOOR_RARE: f32 = 720.0;
const FLOOR_WARMUP: f32 = 24.0;
const FLOOR_TAIL_WARMUP: f32 = 48.0;
const FLOOR_ADAPT: f32 = 24.0;
const FLOOR_RELEASE: f32 = 2.0;
const FLOOR_STAT_PRIOR: f32 = 48.0;
/// Half-life of the 1-minute noise estimate that judges what is new about a reading.
const SIGMA_FAST_HALF_LIFE_S: f32 = 60.0;
/// Weight of the spike-tail calibration's priors and the spacing of its abnormal updates.
const STAT_PRIOR_S: f32 = 3600.0;
const EXCEED_EVERY_S: f32 = 60.0;

/// Reporting intervals are grouped in half-octaves centred on one second: bucket
/// `RATE_BUCKET_ONE_SECOND + k` holds intervals within a quarter-octave of `2^(k/2)` s.
pub(crate) const RATE_BUCKETS: usize = 68;
const RATE_BUCKET_ONE_SECOND: i32 = 20;

/// The bucket of a reporting interval (one second while it is not known yet).
#[inline]
pub(crate) fn rate_bucket(interval_ms: f32) -> usize {
    if !(interval_ms > 0.0 && interval_ms.is_finite()) {
        return RATE_BUCKET_ONE_SECOND as usize;
    }
    // floor(2 log2(interval / (1 s · 2^-1/4))) from the bits of a normal float: twice the
    // exponent, plus one in the upper half-octave of the mantissa (at or above √2 - 1).
    let u = (interval_ms * (1.0 / 840.896_4)).max(1e-30);
    let bits = u.to_bits();
    let exponent = ((bits >> 23) & 0xff) as i32 - 127;
    let upper = i32::from((bits & 0x7f_ffff) >= 0x35_04f3);
    (2 * exponent + upper + RATE_BUCKET_ONE_SECOND).clamp(0, RATE_BUCKETS as i32 - 1) as usize
}

impl Rates {
    fn new(cfg: &Config, interval_s: f32) -> Self {
        let readings = |time_s: f32, floor: f32| (time_s / interval_s).max(floor);
        let a = |time_s: f32, floor: f32| alpha_for_half_life(readings(time_s, floor));
        let count = |time_s: f32, floor: f32| readings(time_s, floor).round().min(1e9) as u32;
        let warmup = count(cfg.warmup_s, FLOOR_WARMUP).max(10);
        let a_var = a(cfg.variance_half_life_s, FLOOR_VAR);
        Rates {
            a_fast: a(cfg.fast_half_life_s, FLOOR_FAST),
            a_scale: a(cfg.scale_half_life_s, FLOOR_SCALE),
            a_short: a(cfg.shift_half_life_s, FLOOR_SHIFT),
            a_base: a(cfg.baseline_half_life_s, FLOOR_BASE),
            a_mid: a(cfg.drift_half_life_s, FLOOR_MID),
            a_drift_base: a(cfg.drift_baseline_half_life_s, FLOOR_DRIFT_BASE),
            a_var,
            a_stat: a(cfg.stat_scale_half_life_s, FLOOR_STAT),
            a_sigma_fast: a(SIGMA_FAST_HALF_LIFE_S, FLOOR_SIGMA_FAST),
            a_day: a(cfg.drift_baseline_half_life_s * 4.0, FLOOR_DRIFT_BASE * 4.0),
            a_rare: a(cfg.rare_half_life_s, FLOOR_RARE),
            warmup,
            tail_warmup: count(cfg.tail_warmup_s, FLOOR_TAIL_WARMUP).max(warmup),
            adapt_after: count(cfg.adapt_after_s, FLOOR_ADAPT).max(1),
            release: count(cfg.release_s, FLOOR_RELEASE).max(1),
            stat_prior: readings(STAT_PRIOR_S, FLOOR_STAT_PRIOR),
            exceed_every: readings(EXCEED_EVERY_S, 1.0).min(f32::from(u16::MAX)) as u16,
            drift_maturity: readings(cfg.drift_baseline_half_life_s, FLOOR_DRIFT_BASE),
            variance_maturity: (readings(cfg.variance_half_life_s, FLOOR_VAR) * 20.0).max(warmup as f32),
        }
    }
}

/// Constants derived once from a validated [`Config`] and shared by every sensor.
#[derive(Debug, Clone)]
pub(crate) struct Params {
    pub cfg: Config,
    /// Per-reading constants by reporting interval (see [`rate_bucket`]).
    rates: Vec<Rates>,
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
            // A cycle's shape adds two tests: a spike that comes straight back, a reading
            // beyond the cycle's range.
            .saturating_add(if e.cycle_shape { 2 } else { 0 })
            .max(1);
        let log10_tests = (tests as f64).log10();
        let band_z = z_for_surprise(f64::from(cfg.band_score) * SURPRISE_SCALE + log10_tests);
        // Each exceedance widens the calibration by 5 %: a few hours of data settle it.
        let eta = 0.05_f32;
        let rates = (0..RATE_BUCKETS as i32)
            .map(|b| Rates::new(&cfg, 2f32.powf((b - RATE_BUCKET_ONE_SECOND) as f32 * 0.5)))
            .collect();
        Ok(Params {
            rates,
            season_rate_per_day: 1.0 / cfg.season_memory_days,
            log10_tests,
            band_z,
            tail_steps: TAIL_RATES.map(|r| ((eta * (1.0 - r)).exp(), (-eta * r).exp())),
            shift_floor_sigmas: f64::from(cfg.min_shift_sigmas) / band_z,
            drift_floor_sigmas: f64::from(cfg.min_drift_sigmas) / band_z,
            cfg,
        })
    }

    /// The per-reading constants for a sensor reporting every `interval_ms` (0: not known yet).
    #[inline]
    pub fn rates(&self, interval_ms: f32) -> &Rates {
        &self.rates[rate_bucket(interval_ms)]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_second_is_its_own_bucket_and_buckets_are_half_octaves() {
        assert_eq!(rate_bucket(1000.0), RATE_BUCKET_ONE_SECOND as usize);
        assert_eq!(rate_bucket(0.0), RATE_BUCKET_ONE_SECOND as usize);
        assert_eq!(rate_bucket(f32::NAN), RATE_BUCKET_ONE_SECOND as usize);
        assert_eq!(rate_bucket(1150.0), RATE_BUCKET_ONE_SECOND as usize);
        assert_eq!(rate_bucket(1250.0), RATE_BUCKET_ONE_SECOND as usize + 1);
        assert_eq!(rate_bucket(2000.0), RATE_BUCKET_ONE_SECOND as usize + 2);
        assert_eq!(rate_bucket(3_600_000.0), RATE_BUCKET_ONE_SECOND as usize + 24);
        assert_eq!(rate_bucket(500.0), RATE_BUCKET_ONE_SECOND as usize - 2);
        assert_eq!(rate_bucket(1e-20), 0);
        assert_eq!(rate_bucket(f32::MAX), RATE_BUCKETS - 1);
    }

    #[test]
    fn one_reading_a_second_keeps_the_settings_and_an_hourly_one_keeps_the_floors() {
        let p = Params::new(Config::default()).expect("defaults are valid");
        let second = p.rates(1000.0);
        assert!((second.a_base - alpha_for_half_life(900.0)).abs() < 1e-9);
        assert_eq!((second.warmup, second.adapt_after, second.release), (120, 1800, 30));
        let hourly = p.rates(3_600_000.0);
        assert!((hourly.a_base - alpha_for_half_life(FLOOR_BASE)).abs() < 1e-9);
        assert!((hourly.a_drift_base - alpha_for_half_life(FLOOR_DRIFT_BASE)).abs() < 1e-9);
        assert_eq!(hourly.warmup, FLOOR_WARMUP as u32);
        // A sensor reporting every 2 s remembers the same time as one reporting every second.
        let two = p.rates(2000.0);
        assert!((two.a_base - alpha_for_half_life(450.0)).abs() < 1e-6);
    }
}
