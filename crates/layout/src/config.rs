//! The plant layout file as written (TOML), and the checks it must pass before a layout is built.

use crate::error::LayoutError;
use serde::{Deserialize, Serialize};
use std::collections::HashSet;

/// Highest plant number: numeric sensor ids are `plant × PLANT_ID_STRIDE + position`, and
/// the highest id must fit in a `u32`.
pub const MAX_PLANT_NUMBER: u16 = 4293;
/// Numeric sensor ids of plant `n` start at `n × PLANT_ID_STRIDE`.
pub const PLANT_ID_STRIDE: u32 = 1_000_000;
/// A plant holds at most this many sensors (one id stride).
pub const MAX_SENSORS_PER_PLANT: u32 = PLANT_ID_STRIDE;
/// Upper bound on the sensors of a whole layout, so that a scaling request cannot ask
/// for more memory than a machine has (50,000 is the default; this is 400 times that).
pub const MAX_SENSORS_PER_LAYOUT: u64 = 20_000_000;
/// A line's gateway reports all its sensors in one batch, and the batch format holds at
/// most 100,000 readings (`telemetry::MAX_READINGS`).
pub const MAX_SENSORS_PER_LINE: u32 = 100_000;
/// Line numbers are written with two digits (`L03`).
pub const MAX_LINES_PER_PLANT: u32 = 99;
/// Machine numbers are written with three digits (`M042`).
pub const MAX_MACHINES_PER_LINE: u32 = 999;
/// Sensor indices within a kind are written without padding, but stay small and readable.
pub const MAX_SENSORS_PER_KIND: u32 = 99;
/// Longest sensor kind code (`TEMP`, `VIB`, `SPEED`, …).
pub const MAX_KIND_LEN: usize = 8;

/// The whole layout file. Every table rejects keys it does not know, so a typo is an
/// error rather than a silently ignored setting.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LayoutConfig {
    /// Production lines per plant, for plants that do not set their own `lines`.
    pub lines_per_plant: u32,
    /// The plants, in the order they are numbered on the wire and shown.
    #[serde(rename = "plant")]
    pub plants: Vec<PlantConfig>,
    /// The machines of every production line, numbered `M001…` in this order.
    #[serde(rename = "line_machines")]
    pub line_machines: Vec<LineMachines>,
    /// The kinds of machine, each with its sensors and how they behave.
    #[serde(rename = "machine_type")]
    pub machine_types: Vec<MachineType>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlantConfig {
    /// The stable plant number: plant `3` is `P3`, and its sensor ids start at 3,000,000.
    pub number: u16,
    /// A display name, e.g. the site.
    pub name: String,
    /// Lines in this plant, overriding `lines_per_plant`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lines: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LineMachines {
    /// Name of a `[[machine_type]]`.
    pub machine_type: String,
    /// How many machines of that type each line has.
    pub count: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MachineType {
    /// Short name, lower case (`cnc`, `press`).
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// Days from a fresh service to failure for a machine of this type with an average
    /// wear rate at typical load.
    pub life_days: f64,
    /// The sensors of one machine, in the order they are numbered.
    #[serde(rename = "sensor")]
    pub sensors: Vec<SensorSpec>,
}

/// One kind of sensor on a machine type, and the shape of its normal signal.
///
/// The value of a healthy machine is `nominal` plus the daily cycle, plus the load
/// response times the machine's load away from its typical 0.75, plus slow drift and
/// noise; wear adds `wear_response × wear²` as the machine ages towards failure.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SensorSpec {
    /// Upper-case code used in sensor ids (`TEMP` → `…-TEMP1`).
    pub kind: String,
    /// How many sensors of this kind a machine has (`TEMP1` … `TEMPn`).
    pub count: u32,
    pub unit: String,
    /// The band a healthy machine stays inside, at any load and time of day.
    pub normal_min: f64,
    pub normal_max: f64,
    /// Typical value at typical load (must lie inside the normal band).
    pub nominal: f64,
    /// Standard deviation of reading-to-reading noise, in the unit.
    pub noise_sd: f64,
    /// Peak deviation of the daily cycle, in the unit.
    #[serde(default)]
    pub daily_amplitude: f64,
    /// Standard deviation of the slow sensor-specific drift (days), in the unit.
    #[serde(default)]
    pub drift_sd: f64,
    /// Change of the value from an idle machine (load 0) to full load (load 1), in the unit.
    #[serde(default)]
    pub load_response: f64,
    /// Change of the value from a fresh machine to one at the end of its life, in the unit.
    #[serde(default)]
    pub wear_response: f64,
    /// What kind of signal the sensor gives (default: an analog measurement).
    #[serde(default, skip_serializing_if = "is_default")]
    pub signal: SignalKind,
    /// Resolution of the reading (0: none): values are multiples of it, as from an
    /// integer display, 0.5-degree steps or a 12-bit converter.
    #[serde(default, skip_serializing_if = "is_default")]
    pub resolution: f64,
    /// The sensor reads exactly `normal_min`, without noise, while its machine is stopped
    /// (a motor current, a flow through a closed line).
    #[serde(default, skip_serializing_if = "is_default")]
    pub flat_when_idle: bool,
    /// The shape of its noise (default Gaussian).
    #[serde(default, skip_serializing_if = "is_default")]
    pub noise: NoiseKind,
    /// The sensor reports irregularly (on change, or when its gateway polls it), missing
    /// about half the sampling slots, instead of every slot.
    #[serde(default, skip_serializing_if = "is_default")]
    pub irregular: bool,
    /// The range a working sensor of this kind can report at all (its measuring range):
    /// a reading outside it is a broken sensor or a forged value, and ingest refuses it.
    /// When not given: the normal band widened by [`PLAUSIBLE_WIDTHS`] times its width on
    /// each side, far beyond any fault or wear of a healthy instrument; a counter has no
    /// upper bound (it rises for as long as its machine runs) and never reads below zero.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plausible_min: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plausible_max: Option<f64>,
}

fn is_default<T: Default + PartialEq>(value: &T) -> bool {
    *value == T::default()
}

/// The kinds of signal a plant's sensors give.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SignalKind {
    /// A measurement: `nominal` plus daily cycle, load and wear responses, drift, noise.
    #[default]
    Analog,
    /// A set point: constant, stepping to the machine's recipe value when its load target
    /// changes (`nominal + load_response × (target − 0.75)`, in steps of a quarter of full
    /// load); no noise.
    Setpoint,
    /// An actuator position (valve, damper) in `normal_min..normal_max`, following its
    /// machine's load with the load's lag, with a little positioning noise.
    Valve,
    /// An on/off state: `normal_max` while the machine runs above idle, `normal_min`
    /// otherwise; no noise.
    State,
    /// A counter (parts, strokes, items): whole numbers, rising by `nominal` a minute at
    /// typical load, in proportion to the load; it never goes down.
    Counter,
    /// A batch cycle: a trapezoid wave between the lower and upper fifth of the normal
    /// band, its period and duty varying cycle to cycle, plus noise.
    Batch,
}

/// The shapes of a sensor's noise.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NoiseKind {
    #[default]
    Gaussian,
    /// Heavy tails (Laplace: exponential tails, scaled to `noise_sd`).
    Heavy,
    /// Gaussian, plus a spike of 5 to 10 `noise_sd` every few minutes by design (impacts,
    /// switching transients).
    Spiky,
}

/// The highest count a counter can report: 2^53, past which a double no longer counts by
/// one. A reading above it is not one a working counter sent, and sums of a minute's or a
/// day's readings of a thousand machines stay far from overflowing.
pub const COUNTER_MAX: f64 = 9_007_199_254_740_992.0;

/// How many widths of the normal band the default plausible range reaches beyond it.
pub const PLAUSIBLE_WIDTHS: f64 = 10.0;

impl SensorSpec {
    pub fn normal_range(&self) -> (f64, f64) {
        (self.normal_min, self.normal_max)
    }

    /// The values a working sensor of this kind can report, inclusive.
    /// A counter's default range is `min(0, normal_min)..=`[`COUNTER_MAX`]: a count only
    /// ever rises, so no lower bound above zero holds for every machine's lifetime, and
    /// below zero it is broken.
    pub fn plausible_range(&self) -> (f64, f64) {
        let width = self.normal_max - self.normal_min;
        let (lo, hi) = match self.signal {
            SignalKind::Counter => (self.normal_min.min(0.0), COUNTER_MAX),
            _ => (self.normal_min - PLAUSIBLE_WIDTHS * width, self.normal_max + PLAUSIBLE_WIDTHS * width),
        };
        (self.plausible_min.unwrap_or(lo), self.plausible_max.unwrap_or(hi))
    }
}

impl LayoutConfig {
    /// Parses and checks a layout file's text.
    pub fn from_toml(text: &str) -> Result<Self, LayoutError> {
        let config: LayoutConfig = toml::from_str(text)?;
        config.validate()?;
        Ok(config)
    }

    /// Checks everything that does not depend on scaling: names, counts, ranges.
    pub fn validate(&self) -> Result<(), LayoutError> {
        if self.plants.is_empty() {
            return Err(LayoutError::Missing("at least one [[plant]]"));
        }
        if self.line_machines.is_empty() {
            return Err(LayoutError::Missing("at least one [[line_machines]] entry"));
        }
        if self.machine_types.is_empty() {
            return Err(LayoutError::Missing("at least one [[machine_type]]"));
        }
        check_count("lines_per_plant", self.lines_per_plant, MAX_LINES_PER_PLANT)?;

        let mut numbers = HashSet::new();
        let mut names = HashSet::new();
        for plant in &self.plants {
            let what = format!("plant {}", plant.number);
            if plant.number == 0 || plant.number > MAX_PLANT_NUMBER {
                return Err(LayoutError::TooMany {
                    what: "plant number".into(),
                    got: u64::from(plant.number),
                    max: u64::from(MAX_PLANT_NUMBER),
                    min: 1,
                });
            }
            if !numbers.insert(plant.number) {
                return Err(LayoutError::Duplicate { what: "plant number", name: plant.number.to_string() });
            }
            if plant.name.trim().is_empty() {
                return Err(LayoutError::BadName {
                    what: "plant name",
                    name: plant.name.clone(),
                    rule: "must not be blank",
                });
            }
            if !names.insert(plant.name.as_str()) {
                return Err(LayoutError::Duplicate { what: "plant name", name: plant.name.clone() });
            }
            if let Some(lines) = plant.lines {
                check_count(&format!("{what} lines"), lines, MAX_LINES_PER_PLANT)?;
            }
        }

        let mut type_names = HashSet::new();
        for machine_type in &self.machine_types {
            check_type_name(&machine_type.name)?;
            if !type_names.insert(machine_type.name.as_str()) {
                return Err(LayoutError::Duplicate { what: "machine type", name: machine_type.name.clone() });
            }
            check_machine_type(machine_type)?;
        }

        let mut listed = HashSet::new();
        let mut per_line = 0u64;
        for entry in &self.line_machines {
            if !type_names.contains(entry.machine_type.as_str()) {
                return Err(LayoutError::UnknownMachineType(entry.machine_type.clone()));
            }
            if !listed.insert(entry.machine_type.as_str()) {
                return Err(LayoutError::Duplicate { what: "line_machines entry", name: entry.machine_type.clone() });
            }
            let what = format!("line_machines \"{}\" count", entry.machine_type);
            check_count(&what, entry.count, MAX_MACHINES_PER_LINE)?;
            per_line += u64::from(entry.count);
        }
        if per_line > u64::from(MAX_MACHINES_PER_LINE) {
            return Err(LayoutError::TooMany {
                what: "machines per line".into(),
                got: per_line,
                max: u64::from(MAX_MACHINES_PER_LINE),
                min: 1,
            });
        }
        Ok(())
    }

    pub fn machine_type_index(&self, name: &str) -> Option<usize> {
        self.machine_types.iter().position(|t| t.name == name)
    }
}

fn check_count(what: &str, got: u32, max: u32) -> Result<(), LayoutError> {
    if got == 0 {
        return Err(LayoutError::Zero(what.to_string()));
    }
    if got > max {
        return Err(LayoutError::TooMany { what: what.to_string(), got: u64::from(got), max: u64::from(max), min: 1 });
    }
    Ok(())
}

fn check_type_name(name: &str) -> Result<(), LayoutError> {
    let ok = !name.is_empty()
        && name.len() <= 32
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(LayoutError::BadName {
            what: "machine type name",
            name: name.to_string(),
            rule: "1 to 32 characters of a-z, 0-9, '_' or '-'",
        })
    }
}

fn check_machine_type(machine_type: &MachineType) -> Result<(), LayoutError> {
    let type_what = format!("machine type \"{}\"", machine_type.name);
    if machine_type.sensors.is_empty() {
        return Err(LayoutError::Zero(format!("{type_what} sensors")));
    }
    if !(machine_type.life_days.is_finite() && machine_type.life_days > 0.0) {
        return Err(LayoutError::BadNumber {
            what: type_what,
            field: "life_days",
            value: machine_type.life_days,
            rule: "a positive number of days",
        });
    }
    let mut kinds = HashSet::new();
    for spec in &machine_type.sensors {
        let ok = !spec.kind.is_empty()
            && spec.kind.len() <= MAX_KIND_LEN
            && spec.kind.bytes().all(|b| b.is_ascii_uppercase());
        if !ok {
            return Err(LayoutError::BadName {
                what: "sensor kind",
                name: spec.kind.clone(),
                rule: "1 to 8 upper-case letters A-Z (the index follows it in ids)",
            });
        }
        if !kinds.insert(spec.kind.as_str()) {
            return Err(LayoutError::Duplicate {
                what: "sensor kind",
                name: format!("{}.{}", machine_type.name, spec.kind),
            });
        }
        let what = format!("sensor {}.{}", machine_type.name, spec.kind);
        check_count(&format!("{what} count"), spec.count, MAX_SENSORS_PER_KIND)?;
        if spec.unit.trim().is_empty() {
            return Err(LayoutError::BadName {
                what: "sensor unit",
                name: spec.unit.clone(),
                rule: "must not be blank",
            });
        }
        let finite = [
            ("normal_min", spec.normal_min),
            ("normal_max", spec.normal_max),
            ("nominal", spec.nominal),
            ("noise_sd", spec.noise_sd),
            ("daily_amplitude", spec.daily_amplitude),
            ("drift_sd", spec.drift_sd),
            ("load_response", spec.load_response),
            ("wear_response", spec.wear_response),
        ];
        for (field, value) in finite {
            if !value.is_finite() {
                return Err(LayoutError::BadNumber { what: what.clone(), field, value, rule: "a finite number" });
            }
        }
        for (field, value) in [("plausible_min", spec.plausible_min), ("plausible_max", spec.plausible_max)] {
            if let Some(value) = value.filter(|v| !v.is_finite()) {
                return Err(LayoutError::BadNumber { what: what.clone(), field, value, rule: "a finite number" });
            }
        }
        if spec.normal_min >= spec.normal_max {
            return Err(LayoutError::BadRange { what, min: spec.normal_min, max: spec.normal_max });
        }
        let (lo, hi) = spec.plausible_range();
        // Only a counter's default range is open above (see `plausible_range`).
        let open_above = spec.signal == SignalKind::Counter && spec.plausible_max.is_none();
        if !(lo.is_finite() && (hi.is_finite() || open_above)) {
            return Err(LayoutError::BadRange { what, min: lo, max: hi });
        }
        // A counter starts at its lowest reading (zero), so it may be plausible at the
        // bottom of its band; any other sensor's range reaches strictly beyond the band.
        let below_band = if spec.signal == SignalKind::Counter { lo > spec.normal_min } else { lo >= spec.normal_min };
        if below_band {
            return Err(LayoutError::BadNumber { what, field: "plausible_min", value: lo, rule: "below normal_min" });
        }
        if hi <= spec.normal_max {
            return Err(LayoutError::BadNumber { what, field: "plausible_max", value: hi, rule: "above normal_max" });
        }
        if !(spec.normal_min..=spec.normal_max).contains(&spec.nominal) {
            return Err(LayoutError::BadNumber {
                what,
                field: "nominal",
                value: spec.nominal,
                rule: "inside normal_min..=normal_max",
            });
        }
        if !(spec.resolution.is_finite()
            && spec.resolution >= 0.0
            && spec.resolution <= spec.normal_max - spec.normal_min)
        {
            return Err(LayoutError::BadNumber {
                what,
                field: "resolution",
                value: spec.resolution,
                rule: "zero or more, and at most the width of the normal band",
            });
        }
        for (field, value) in
            [("noise_sd", spec.noise_sd), ("daily_amplitude", spec.daily_amplitude), ("drift_sd", spec.drift_sd)]
        {
            if value < 0.0 {
                return Err(LayoutError::BadNumber { what: what.clone(), field, value, rule: "zero or more" });
            }
        }
    }
    Ok(())
}
