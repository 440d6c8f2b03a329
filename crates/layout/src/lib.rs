//! The plant layout every part of Floorwatch shares: plants, lines, machines, sensors.
//!
//! A layout is read from a TOML file (the default is `assets/plant-layout.toml`, also
//! available as [`DEFAULT_LAYOUT_TOML`]), checked, and built — optionally resized with a
//! [`Scale`] — into a [`Layout`] that answers, in O(1):
//!
//! * numeric sensor id → plant, line, machine, machine type, kind, unit, normal range
//!   ([`Layout::sensor`]);
//! * text id → index or numeric id, for sensors (`P1-L03-M042-TEMP1`), machines
//!   (`P1-L03-M042`), lines and gateways (`P1-L03`) and plants (`P1`).
//!
//! # Ids
//!
//! Plant `n` is `Pn`; line `l` of it is `Pn-Lll` (two digits); machine `m` of that line is
//! `Pn-Lll-Mmmm` (three digits); sensor `i` of kind `K` on that machine is
//! `Pn-Lll-Mmmm-Ki`. The numeric id of a sensor is `n × 1,000,000 + position`, where
//! position counts the plant's sensors in id order from 0. Ids are therefore unique
//! across plants, and a plant's, line's or machine's sensors are one contiguous id range.
//! Numbers come from the layout (plant numbers are written in the file), so the ids of
//! one layout never change between runs.
//!
//! # Rules
//!
//! This crate does no IO: the caller reads the file and passes its text. Every check on
//! the file returns a [`LayoutError`] naming what is wrong; nothing panics on bad input.

mod config;
mod error;
mod model;

pub use config::{
    COUNTER_MAX, LayoutConfig, LineMachines, MAX_KIND_LEN, MAX_LINES_PER_PLANT, MAX_MACHINES_PER_LINE,
    MAX_PLANT_NUMBER, MAX_SENSORS_PER_KIND, MAX_SENSORS_PER_LAYOUT, MAX_SENSORS_PER_LINE, MAX_SENSORS_PER_PLANT,
    MachineType, NoiseKind, PLANT_ID_STRIDE, PlantConfig, SensorSpec, SignalKind,
};
pub use error::LayoutError;
pub use model::{Layout, Line, Machine, Plant, Scale, Sensor, SensorId, SensorInfo};

/// The shipped default layout (`assets/plant-layout.toml`): 5 plants of 10,000 sensors.
pub const DEFAULT_LAYOUT_TOML: &str = include_str!("../../../assets/plant-layout.toml");

/// The same factory with mixed kinds of signal (`assets/plant-layout-mixed-signals.toml`):
/// about two sensors in five are set points, valves, on/off states, counters, batch
/// cycles, quantised, flat when idle, spiky, heavy-tailed or irregular.
pub const MIXED_SIGNALS_LAYOUT_TOML: &str = include_str!("../../../assets/plant-layout-mixed-signals.toml");

impl Layout {
    /// The shipped default layout at the given scale.
    pub fn default_with(scale: &Scale) -> Result<Layout, LayoutError> {
        Layout::from_toml(DEFAULT_LAYOUT_TOML, scale)
    }
}

#[cfg(test)]
mod tests;
