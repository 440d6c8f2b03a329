//! The JSON upload body: `{"readings": [{"sensor": …, "ts": …, "value": …}, …]}`.
//!
//! `sensor` is a numeric id (`1002345`) or a text id (`"P1-L03-M042-TEMP1"`); `ts` is
//! milliseconds since the Unix epoch or an RFC 3339 time (`"2026-03-01T12:00:00.250Z"`);
//! `value` is a JSON number. One bad reading is refused on its own; a body that is not
//! this shape is refused whole.

use serde_json::Value;
use telemetry::{MAX_READINGS, Reading};

use super::validate::{Checked, Rejection, Validator};

/// Why a body could not be read at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    #[error("body is not valid JSON: {0}")]
    Syntax(String),
    #[error("body must be a JSON object with a \"readings\" array")]
    Shape,
    #[error("an upload holds 1 to {MAX_READINGS} readings, got {0}")]
    Count(usize),
    #[error("binary batch: {0}")]
    Binary(#[from] telemetry::DecodeError),
}

/// Reads and checks a JSON upload.
pub fn check_json(body: &[u8], validator: &Validator<'_>) -> Result<Checked, BodyError> {
    let value: Value = serde_json::from_slice(body).map_err(|e| BodyError::Syntax(e.to_string()))?;
    let items = value.get("readings").and_then(Value::as_array).ok_or(BodyError::Shape)?;
    if items.is_empty() || items.len() > MAX_READINGS {
        return Err(BodyError::Count(items.len()));
    }
    let mut checked = Checked::default();
    for (i, item) in items.iter().enumerate() {
        match reading(i, item, validator) {
            Ok(r) => checked.valid.push(r),
            Err(rej) => checked.rejected.push(rej),
        }
    }
    Ok(checked)
}

fn reading(i: usize, item: &Value, validator: &Validator<'_>) -> Result<Reading, Rejection> {
    let named = item.get("sensor").map(|s| match s {
        Value::String(s) => s.chars().take(100).collect(),
        other => other.to_string().chars().take(100).collect(),
    });
    let fail = |reason: &str| Rejection::unreadable(i, named.clone(), reason);
    if !item.is_object() {
        return Err(fail("a reading must be an object with sensor, ts and value"));
    }
    let sensor = match item.get("sensor") {
        Some(Value::Number(n)) => n
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .ok_or_else(|| fail("numeric sensor id must be a whole number 0..=4294967295"))?,
        Some(Value::String(name)) => validator
            .layout
            .sensor_id(name)
            .ok_or_else(|| fail(&format!("unknown sensor {}", named.as_deref().unwrap_or(""))))?,
        Some(_) => return Err(fail("sensor must be a numeric id or a text id")),
        None => return Err(fail("missing sensor")),
    };
    let ts_ms = match item.get("ts") {
        Some(Value::Number(n)) => {
            n.as_i64().ok_or_else(|| fail("ts must be whole milliseconds since the Unix epoch"))?
        }
        Some(Value::String(s)) => chrono::DateTime::parse_from_rfc3339(s)
            .map_err(|e| fail(&format!("ts {s:?} is not an RFC 3339 time: {e}")))?
            .timestamp_millis(),
        Some(_) => return Err(fail("ts must be milliseconds since the epoch or an RFC 3339 time")),
        None => return Err(fail("missing ts")),
    };
    let value = match item.get("value") {
        Some(Value::Number(n)) => n.as_f64().ok_or_else(|| fail("value is not representable as a 64-bit float"))?,
        Some(_) => return Err(fail("value must be a JSON number")),
        None => return Err(fail("missing value")),
    };
    validator.check(i, Reading::new(sensor, ts_ms, value), named.as_deref())
}
