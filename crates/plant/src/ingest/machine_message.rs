//! The per-machine JSON telemetry message of the reference factory simulator (one
//! machine, one instant), mapped onto that machine's sensors so an existing gateway of
//! that kind can send to Floorwatch unchanged:
//!
//! ```json
//! {"factoryId": 1, "machine": {"machineId": 42, "temperature": 71.2, "pressure": 2.1,
//!  "electricityUtilization": 33.0}, "ambient": {"temperature": 21.4, "humidity": 40},
//!  "timeCreated": "2026-03-01T12:00:00Z"}
//! ```
//!
//! `machineId` may also sit at the top level. `factoryId` is the plant number; machine
//! `n` is the plant's n-th machine in layout order (1-based). Machine temperature,
//! pressure and electricity utilisation go to the machine's first TEMP, PRES and CURR
//! sensors; ambient temperature and humidity to its first AMBT and HUM sensors.

use layout::Layout;
use serde::Deserialize;
use telemetry::Reading;

use super::json::BodyError;
use super::validate::{Checked, Rejection, Validator};

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Message {
    factory_id: u16,
    #[serde(default)]
    machine_id: Option<u32>,
    machine: MachinePart,
    #[serde(default)]
    ambient: Option<AmbientPart>,
    time_created: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct MachinePart {
    #[serde(default)]
    machine_id: Option<u32>,
    temperature: Option<f64>,
    pressure: Option<f64>,
    electricity_utilization: Option<f64>,
}

#[derive(Debug, Deserialize)]
struct AmbientPart {
    temperature: Option<f64>,
    humidity: Option<f64>,
}

/// A machine message resolved to the plant's layout.
#[derive(Debug, Clone, PartialEq)]
pub struct MachineMessage {
    /// Index of the machine's line (its gateway authenticates the message).
    pub line: usize,
    pub machine_id: String,
    pub ts_ms: i64,
    /// `(kind, value)` pairs present in the message.
    pub values: Vec<(&'static str, f64)>,
}

/// Parses a message and finds its machine in `layout` (which must hold the plant).
pub fn parse(body: &[u8], layout: &Layout, plant_number: u16) -> Result<MachineMessage, BodyError> {
    let m: Message = serde_json::from_slice(body).map_err(|e| BodyError::Syntax(e.to_string()))?;
    if m.factory_id != plant_number {
        return Err(BodyError::Syntax(format!("factoryId {} is not this plant ({plant_number})", m.factory_id)));
    }
    let number = m.machine.machine_id.or(m.machine_id).ok_or_else(|| BodyError::Syntax("missing machineId".into()))?;
    let plant = layout.plant_by_number(plant_number).ok_or(BodyError::Shape)?;
    let machines = &layout.machines()[plant.machines.clone()];
    let machine =
        usize::try_from(number).ok().and_then(|n| n.checked_sub(1)).and_then(|i| machines.get(i)).ok_or_else(|| {
            BodyError::Syntax(format!(
                "machineId {number} is not a machine of plant {plant_number} (1..={})",
                machines.len()
            ))
        })?;
    let ts_ms = chrono::DateTime::parse_from_rfc3339(&m.time_created)
        .map_err(|e| BodyError::Syntax(format!("timeCreated {:?}: {e}", m.time_created)))?
        .timestamp_millis();
    let ambient = m.ambient.unwrap_or(AmbientPart { temperature: None, humidity: None });
    let values = [
        ("TEMP", m.machine.temperature),
        ("PRES", m.machine.pressure),
        ("CURR", m.machine.electricity_utilization),
        ("AMBT", ambient.temperature),
        ("HUM", ambient.humidity),
    ]
    .into_iter()
    .filter_map(|(kind, v)| v.map(|v| (kind, v)))
    .collect();
    Ok(MachineMessage { line: machine.line, machine_id: machine.id.clone(), ts_ms, values })
}

impl MachineMessage {
    /// The message's readings, each checked like any other.
    pub fn check(&self, layout: &Layout, validator: &Validator<'_>) -> Checked {
        let mut checked = Checked::default();
        let Some(machine) = layout.machine_by_id(&self.machine_id) else { return checked };
        for (i, (kind, value)) in self.values.iter().enumerate() {
            match layout.machine_sensor(machine, kind, 1) {
                Some(sensor) => match validator.check(i, Reading::new(sensor, self.ts_ms, *value), None) {
                    Ok(r) => checked.valid.push(r),
                    Err(rej) => checked.rejected.push(rej),
                },
                None => checked.rejected.push(Rejection {
                    index: i as i64,
                    sensor: Some(format!("{}-{kind}1", self.machine_id)),
                    ts_ms: Some(self.ts_ms),
                    value: Some(*value),
                    reason: format!("machine {} has no {kind} sensor", self.machine_id),
                }),
            }
        }
        checked
    }

    /// The upload's idempotency key: one message per machine per instant.
    pub fn key(&self) -> String {
        format!("{}@{}", self.machine_id, self.ts_ms)
    }
}
