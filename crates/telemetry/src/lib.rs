//! Sensor readings and the compact, versioned binary encoding of a batch of them.
//!
//! This crate is the only place that knows the batch wire format. It is used for the
//! payload of `ReadingsRecorded` events in the event log and for the body of a binary
//! gateway upload, so one codec serves both. It does no IO.
//!
//! # Format, version 1 (all integers little-endian)
//!
//! ```text
//! u8      version            = 1
//! u8      flags              bit 0: values are f64 (else f32)
//!                            bit 1: every reading has the base timestamp (no timestamp column)
//!                            bits 2-7: must be zero
//! varint  count              number of readings, 1 ..= MAX_READINGS
//! zigzag  base_ts_ms         timestamp of the first reading, ms since the Unix epoch
//! count × zigzag  sensor id delta from the previous reading's sensor id (the first from 0)
//! count × zigzag  timestamp delta from the previous reading's timestamp   (absent if bit 1)
//! count × f32|f64 value
//! ```
//!
//! `varint` is LEB128 (7 bits per byte, low groups first, at most 10 bytes);
//! `zigzag` maps signed to unsigned (0, -1, 1, -2 … → 0, 1, 2, 3 …) before LEB128.
//! Columns rather than rows keep similar bytes together: a gateway batch sorted by
//! sensor with one timestamp costs 1 byte of sensor id and 4 bytes of value per reading.
//! Values are stored as f32 when every value of the batch survives the round trip
//! exactly, so encoding never changes a value.

mod codec;
pub mod history;

pub use codec::{DecodeError, EncodeError, FORMAT_VERSION, MAX_READINGS, count, decode, encode};

use serde::{Deserialize, Serialize};

/// Numeric sensor id used on the wire and in the log (human-readable ids such as
/// `P1-L03-M042-TEMP1` map to these through the plant layout).
pub type SensorId = u32;

/// One measurement of one sensor.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Reading {
    pub sensor: SensorId,
    /// Milliseconds since the Unix epoch (UTC).
    pub ts_ms: i64,
    pub value: f64,
}

impl Reading {
    pub fn new(sensor: SensorId, ts_ms: i64, value: f64) -> Self {
        Reading { sensor, ts_ms, value }
    }
}
