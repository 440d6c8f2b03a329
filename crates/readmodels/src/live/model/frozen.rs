//! The live model frozen into bytes and thawed again: the checkpoints time travel starts
//! its folds from. Everything a fold needs is kept; what a fold derives again (the
//! staleness deadlines, the layout's indexes) is not.

use std::collections::{BTreeSet, HashMap};

use anyhow::{Context, Result, bail};
use chrono::{DateTime, Utc};
use domain::anomaly::AnomalyState;
use domain::events::{LayoutConfigured, Severity};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{AnomalyRow, AreaAgg, LiveModel, MachineAgg, MaintenanceRow, PlantLayout, Rollup, SensorStatus, Slot};

/// Bumped whenever the frozen shape changes; an older checkpoint is then not thawed (the
/// fold starts from an earlier one, or from the beginning).
const VERSION: u8 = 1;

#[derive(Serialize, Deserialize)]
struct Frozen {
    version: u8,
    plant_number: u16,
    /// The layout event as JSON text and its position.
    layout: Option<(String, i64)>,
    sensors: Vec<FrozenSlot>,
    machines: Vec<(FrozenRollup, Option<f64>, bool)>,
    lines: Vec<FrozenArea>,
    plant: FrozenArea,
    watermark_ms: i64,
    /// Anomaly and maintenance rows as JSON text (they hold JSON values of their own).
    anomalies: String,
    maintenance: String,
}

/// has_value, value, ts_ms, stale, anomalies, status, position, counted.
type FrozenSlot = (bool, f64, i64, bool, u16, u8, i64, bool);

#[derive(Serialize, Deserialize)]
struct FrozenRollup {
    sensors: u32,
    by_status: [u32; 4],
    open: [u32; 3],
    newest_ms: Option<i64>,
    position: i64,
}

#[derive(Serialize, Deserialize)]
struct FrozenArea {
    rollup: FrozenRollup,
    machines_due_7d: u32,
    rate: Vec<(i64, u32)>,
    shown_rate: f64,
}

#[derive(Serialize, Deserialize)]
struct FrozenAnomaly {
    anomaly_id: String,
    machine_id: String,
    line_id: String,
    severity: Severity,
    state: String,
    score: f64,
    sensors: Value,
    sensor_ids: Vec<u32>,
    explanation: String,
    started_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    resolved_at: Option<DateTime<Utc>>,
    acknowledged_by: Option<String>,
    acknowledged_at: Option<DateTime<Utc>>,
    shelved_by: Option<String>,
    shelved_until: Option<DateTime<Utc>>,
    notes: Vec<Value>,
    position: i64,
}

#[derive(Serialize, Deserialize)]
struct FrozenMaintenance {
    machine_id: String,
    predicted_days: Option<f64>,
    lower_days: Option<f64>,
    upper_days: Option<f64>,
    predicted_at: Option<DateTime<Utc>>,
    model_version: Option<String>,
    open_order_id: Option<String>,
    open_order_kind: Option<String>,
    scheduled_for: Option<DateTime<Utc>>,
    last_performed_at: Option<DateTime<Utc>>,
    due: Option<bool>,
    position: i64,
}

const STATUSES: [SensorStatus; 4] =
    [SensorStatus::Ok, SensorStatus::Warning, SensorStatus::Anomalous, SensorStatus::Stale];

fn rollup(r: &Rollup) -> FrozenRollup {
    FrozenRollup {
        sensors: r.sensors,
        by_status: r.by_status,
        open: r.open,
        newest_ms: r.newest_ms,
        position: r.position,
    }
}

fn thaw_rollup(r: FrozenRollup) -> Rollup {
    Rollup {
        sensors: r.sensors,
        by_status: r.by_status,
        open: r.open,
        newest_ms: r.newest_ms,
        position: r.position,
        dirty: false,
    }
}

fn area(a: &AreaAgg) -> FrozenArea {
    FrozenArea {
        rollup: rollup(&a.rollup),
        machines_due_7d: a.machines_due_7d,
        rate: a.rate.iter().copied().collect(),
        shown_rate: a.shown_rate,
    }
}

fn thaw_area(a: FrozenArea) -> AreaAgg {
    AreaAgg {
        rollup: thaw_rollup(a.rollup),
        machines_due_7d: a.machines_due_7d,
        rate: a.rate.into_iter().collect(),
        shown_rate: a.shown_rate,
        rate_dirty: false,
    }
}

/// `t` to the microsecond, as a `timestamptz` column holds it.
fn micros(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(t.timestamp_micros()).unwrap_or(t)
}

impl LiveModel {
    /// The whole state as bytes (postcard; rows holding JSON as JSON text).
    pub fn freeze(&self) -> Result<Vec<u8>> {
        let layout = match &self.layout {
            Some(l) => Some((serde_json::to_string(&l.event)?, l.layout_position)),
            None => None,
        };
        // In key order, times as PostgreSQL keeps them (µs): a model restored from its rows
        // after a restart freezes to the same bytes as one folded from the log, so the
        // checkpoints equal a rebuild's byte for byte.
        let mut anomalies: Vec<&AnomalyRow> = self.anomalies.values().collect();
        anomalies.sort_unstable_by(|a, b| a.anomaly_id.cmp(&b.anomaly_id));
        let anomalies: Vec<FrozenAnomaly> = anomalies
            .into_iter()
            .map(|a| FrozenAnomaly {
                anomaly_id: a.anomaly_id.clone(),
                machine_id: a.machine_id.clone(),
                line_id: a.line_id.clone(),
                severity: a.severity,
                state: a.state.as_str().to_owned(),
                score: a.score,
                sensors: a.sensors.clone(),
                sensor_ids: a.sensor_ids.clone(),
                explanation: a.explanation.clone(),
                started_at: micros(a.started_at),
                updated_at: micros(a.updated_at),
                resolved_at: a.resolved_at.map(micros),
                acknowledged_by: a.acknowledged_by.clone(),
                acknowledged_at: a.acknowledged_at.map(micros),
                shelved_by: a.shelved_by.clone(),
                shelved_until: a.shelved_until.map(micros),
                notes: a.notes.clone(),
                position: a.position,
            })
            .collect();
        let mut maintenance: Vec<(&String, &MaintenanceRow)> = self.maintenance.iter().collect();
        maintenance.sort_unstable_by(|a, b| a.0.cmp(b.0));
        let maintenance: Vec<FrozenMaintenance> = maintenance
            .into_iter()
            .map(|(m, r)| FrozenMaintenance {
                machine_id: m.clone(),
                predicted_days: r.predicted_days,
                lower_days: r.lower_days,
                upper_days: r.upper_days,
                predicted_at: r.predicted_at.map(micros),
                model_version: r.model_version.clone(),
                open_order_id: r.open_order_id.clone(),
                open_order_kind: r.open_order_kind.clone(),
                scheduled_for: r.scheduled_for.map(micros),
                last_performed_at: r.last_performed_at.map(micros),
                due: r.due,
                position: r.position,
            })
            .collect();
        let frozen = Frozen {
            version: VERSION,
            plant_number: self.plant_number,
            layout,
            sensors: self
                .sensors
                .iter()
                .map(|s| (s.has_value, s.value, s.ts_ms, s.stale, s.anomalies, s.status as u8, s.position, s.counted))
                .collect(),
            machines: self.machines.iter().map(|m| (rollup(&m.rollup), m.due_in_days, m.due)).collect(),
            lines: self.lines.iter().map(area).collect(),
            plant: area(&self.plant),
            watermark_ms: self.watermark_ms,
            anomalies: serde_json::to_string(&anomalies)?,
            maintenance: serde_json::to_string(&maintenance)?,
        };
        Ok(postcard::to_allocvec(&frozen)?)
    }

    /// The state [`LiveModel::freeze`] wrote. `known` is a layout already built (it is
    /// used when it is the frozen one, which spares parsing the layout again).
    pub fn thaw(bytes: &[u8], known: Option<&PlantLayout>) -> Result<LiveModel> {
        let frozen: Frozen = postcard::from_bytes(bytes).context("reading a frozen live model")?;
        if frozen.version != VERSION {
            bail!("a frozen live model of version {} (this version reads {VERSION})", frozen.version);
        }
        let mut model = LiveModel::new(frozen.plant_number);
        if let Some((event, position)) = frozen.layout {
            let event: LayoutConfigured = serde_json::from_str(&event).context("the frozen layout")?;
            let mut layout = match known.filter(|l| l.event == event) {
                Some(l) => l.clone(),
                None => PlantLayout::build(&event).map_err(|e| anyhow::anyhow!("the frozen layout: {e}"))?,
            };
            layout.layout_position = position;
            if frozen.sensors.len() != layout.machine_of.len()
                || frozen.machines.len() != layout.line_of.len()
                || frozen.lines.len() != layout.plant().lines.len()
            {
                bail!("a frozen live model that does not fit its layout");
            }
            model.layout = Some(layout);
        }
        let stale_after = model.stale_after_ms();
        let mut deadlines = BTreeSet::new();
        model.sensors = frozen
            .sensors
            .into_iter()
            .enumerate()
            .map(|(ix, (has_value, value, ts_ms, stale, anomalies, status, position, counted))| {
                if has_value && !stale {
                    deadlines.insert((ts_ms.saturating_add(stale_after), ix as u32));
                }
                Slot {
                    has_value,
                    value,
                    ts_ms,
                    stale,
                    anomalies,
                    status: STATUSES.get(usize::from(status)).copied().unwrap_or(SensorStatus::Ok),
                    position,
                    counted,
                    dirty: false,
                }
            })
            .collect();
        model.deadlines = deadlines;
        model.machines = frozen
            .machines
            .into_iter()
            .map(|(r, due_in_days, due)| MachineAgg { rollup: thaw_rollup(r), due_in_days, due })
            .collect();
        model.lines = frozen.lines.into_iter().map(thaw_area).collect();
        model.plant = thaw_area(frozen.plant);
        model.watermark_ms = frozen.watermark_ms;
        let anomalies: Vec<FrozenAnomaly> = serde_json::from_str(&frozen.anomalies).context("frozen anomalies")?;
        model.anomalies = anomalies
            .into_iter()
            .map(|a| {
                let row = AnomalyRow {
                    state: AnomalyState::parse(&a.state).unwrap_or(AnomalyState::New),
                    anomaly_id: a.anomaly_id,
                    machine_id: a.machine_id,
                    line_id: a.line_id,
                    severity: a.severity,
                    score: a.score,
                    sensors: a.sensors,
                    sensor_ids: a.sensor_ids,
                    explanation: a.explanation,
                    started_at: a.started_at,
                    updated_at: a.updated_at,
                    resolved_at: a.resolved_at,
                    acknowledged_by: a.acknowledged_by,
                    acknowledged_at: a.acknowledged_at,
                    shelved_by: a.shelved_by,
                    shelved_until: a.shelved_until,
                    notes: a.notes,
                    position: a.position,
                };
                (row.anomaly_id.clone(), row)
            })
            .collect::<HashMap<_, _>>();
        let maintenance: Vec<FrozenMaintenance> =
            serde_json::from_str(&frozen.maintenance).context("frozen maintenance")?;
        model.maintenance = maintenance
            .into_iter()
            .map(|m| {
                let row = MaintenanceRow {
                    predicted_days: m.predicted_days,
                    lower_days: m.lower_days,
                    upper_days: m.upper_days,
                    predicted_at: m.predicted_at,
                    model_version: m.model_version,
                    open_order_id: m.open_order_id,
                    open_order_kind: m.open_order_kind,
                    scheduled_for: m.scheduled_for,
                    last_performed_at: m.last_performed_at,
                    due: m.due,
                    position: m.position,
                };
                (m.machine_id, row)
            })
            .collect();
        Ok(model)
    }
}
