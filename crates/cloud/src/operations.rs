//! The operations projection: every plant's layout, anomalies, maintenance (predictions,
//! work orders, failures) and production, into the cloud's tables and KPI deltas.
//!
//! Each batch loads the rows its events touch, folds the events into them in order, and
//! writes them back with their KPI deltas and the checkpoint in one transaction. Rows hold
//! only what the events say, so a rebuild gives the same rows as the live run.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use domain::anomaly::AnomalyEvent;
use domain::events::{
    LAYOUT_CONFIGURED, MACHINE_FAILED, MAINTENANCE_PERFORMED, MAINTENANCE_PREDICTED, MAINTENANCE_SCHEDULED,
    MachineFailed, MaintenancePerformed, MaintenanceScheduled, Severity,
};
use domain::production::{PRODUCTION_REPORTED, ProductionReported};
use eventlog::{Handler, Payload, RecordedEvent, Transaction};
use serde_json::{Value, json};

use crate::kpi::{Deltas, Sums};
use crate::layouts::{Group, LayoutChange, Layouts, PlantGroups};

/// Name of the operations projection (its checkpoint and its row in `cloud.projections`).
pub const OPERATIONS: &str = "cloud-operations";

/// Stream categories the projection reads (everything but telemetry).
pub const CATEGORIES: &[&str] = &["plant", "anomaly", "prediction", "maintenance", "machine"];

/// A row of `cloud.anomalies`.
#[derive(Debug, Clone, PartialEq)]
pub struct AnomalyRow {
    pub plant: u16,
    pub anomaly_id: String,
    pub machine_id: String,
    pub line_id: String,
    pub machine_type: String,
    pub severity: String,
    pub state: String,
    pub score: f64,
    pub sensors: Value,
    pub explanation: String,
    pub detector_version: String,
    pub started_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub resolved_at: Option<DateTime<Utc>>,
    pub acknowledged_by: Option<String>,
    pub acknowledged_at: Option<DateTime<Utc>>,
    pub shelved_by: Option<String>,
    pub shelved_until: Option<DateTime<Utc>>,
    pub notes: Vec<Value>,
    pub position: i64,
}

/// A row of `cloud.maintenance`: the plant's maintenance row of the machine (latest
/// prediction, open order, last service; `position` the cloud's), with where the machine
/// is and its last failure.
#[derive(Debug, Clone, PartialEq)]
pub struct MaintenanceRow {
    pub plant: u16,
    pub machine_id: String,
    pub line_id: String,
    pub machine_type: String,
    pub machine: readmodels::live::model::MaintenanceRow,
    pub last_failure_at: Option<DateTime<Utc>>,
}

/// A row of `cloud.maintenance_log`.
#[derive(Debug, Clone, PartialEq)]
pub struct LogRow {
    pub plant: u16,
    pub entry_id: String,
    pub machine_id: String,
    pub kind: String,
    pub state: String,
    pub at: DateTime<Utc>,
    pub scheduled_for: Option<DateTime<Utc>>,
    pub scheduled_by: Option<String>,
    pub performed_at: Option<DateTime<Utc>>,
    pub performed_by: Option<String>,
    pub note: String,
    pub performed_note: String,
    pub position: i64,
}

struct PredictionRow {
    plant: u16,
    machine_id: String,
    at: DateTime<Utc>,
    days: f64,
    lower: f64,
    upper: f64,
    model_version: String,
    position: i64,
}

/// The operations projection of the cloud's log.
#[derive(Debug, Default)]
pub struct OperationsProjection {
    layouts: Layouts,
}

impl OperationsProjection {
    pub fn new() -> Self {
        OperationsProjection::default()
    }
}

/// What a batch changes, before it is written.
#[derive(Default)]
struct Batch {
    anomalies: BTreeMap<(u16, String), AnomalyRow>,
    maintenance: BTreeMap<(u16, String), MaintenanceRow>,
    log: BTreeMap<(u16, String), LogRow>,
    predictions: Vec<PredictionRow>,
    layouts: BTreeMap<u16, (std::sync::Arc<PlantGroups>, i64)>,
    touched_anomalies: BTreeSet<(u16, String)>,
    touched_maintenance: BTreeSet<(u16, String)>,
    touched_log: BTreeSet<(u16, String)>,
    deltas: Deltas,
}

fn text(v: &Value, key: &str) -> Option<String> {
    v.get(key).and_then(Value::as_str).map(str::to_owned)
}

/// The key of the machine a domain event is about, and of its anomaly or log entry.
fn keys(e: &RecordedEvent, body: &Value) -> (Option<String>, Option<String>, Option<String>) {
    match e.event_type.as_str() {
        t if t.starts_with("Anomaly") => (None, text(body, "anomaly_id"), None),
        MAINTENANCE_PREDICTED => (text(body, "machine_id"), None, None),
        MAINTENANCE_SCHEDULED | MAINTENANCE_PERFORMED => (text(body, "machine_id"), None, text(body, "order_id")),
        MACHINE_FAILED => {
            let machine = text(body, "machine_id");
            let at = body.get("at").and_then(|a| serde_json::from_value::<DateTime<Utc>>(a.clone()).ok());
            let entry = machine.as_ref().zip(at).map(|(m, at)| failure_id(m, at));
            (machine, None, entry)
        }
        _ => (None, None, None),
    }
}

fn failure_id(machine: &str, at: DateTime<Utc>) -> String {
    format!("{machine}-F{}", at.timestamp_millis())
}

fn group_of(layouts: &Layouts, plant: u16, machine_id: &str, line_hint: Option<&str>) -> Group {
    layouts.get(plant).and_then(|g| g.machine_group(machine_id).cloned()).unwrap_or_else(|| Group {
        line_id: line_hint
            .map(str::to_owned)
            .or_else(|| machine_id.rsplit_once('-').map(|(line, _)| line.to_owned()))
            .unwrap_or_default(),
        machine_type: "unknown".into(),
    })
}

impl Handler for OperationsProjection {
    async fn load(&mut self, tx: &Transaction<'_>) -> Result<()> {
        let checkpoint = eventlog::checkpoint(tx, OPERATIONS).await?;
        self.layouts = Layouts::load(tx, checkpoint).await.context("loading the plants' layouts")?;
        Ok(())
    }

    async fn apply(&mut self, tx: &Transaction<'_>, events: &[RecordedEvent]) -> Result<()> {
        let mut b = Batch::default();
        for e in events {
            let (Some(origin), Payload::Json(body)) = (e.origin, &e.payload) else { continue };
            let (machine, anomaly, entry) = keys(e, body);
            if let Some(m) = machine {
                b.touched_maintenance.insert((origin.plant, m));
            }
            if let Some(a) = anomaly {
                b.touched_anomalies.insert((origin.plant, a));
            }
            if let Some(l) = entry {
                b.touched_log.insert((origin.plant, l));
            }
        }
        load_rows(tx, &mut b).await?;
        for e in events {
            let Some(origin) = e.origin else { continue };
            if let Err(reason) = self.fold(&mut b, origin.plant, e) {
                tracing::warn!(
                    plant = origin.plant,
                    position = e.position,
                    reason,
                    "event left out of the cloud's read models"
                );
            }
        }
        write(tx, b).await?;
        let last = events.last().map_or(0, |e| e.position);
        tx.execute(include_str!("../sql/save_projection.sql"), &[&OPERATIONS, &last, &json!({})]).await?;
        tx.query(include_str!("../sql/notify.sql"), &[&last.to_string()]).await?;
        Ok(())
    }
}

impl OperationsProjection {
    fn fold(&mut self, b: &mut Batch, plant: u16, e: &RecordedEvent) -> Result<(), String> {
        let position = e.position;
        match self.layouts.apply(plant, e) {
            Some(LayoutChange::Configured(groups)) => {
                b.layouts.insert(plant, (groups, position));
                return Ok(());
            }
            Some(LayoutChange::Refused(reason)) => return Err(reason),
            None => {}
        }
        let Payload::Json(body) = &e.payload else { return Ok(()) };
        let bad = |err: serde_json::Error| format!("{} is unreadable: {err}", e.event_type);
        if let Some(event) = AnomalyEvent::from_json(&e.event_type, body).map_err(bad)? {
            self.anomaly(b, plant, event, position);
            return Ok(());
        }
        match e.event_type.as_str() {
            MAINTENANCE_PREDICTED => {
                let p: domain::events::MaintenancePredicted = e.json().map_err(bad)?;
                let finite = [p.days, p.lower_days, p.upper_days].iter().all(|v| v.is_finite());
                if !finite {
                    return Err("a prediction with a non-finite number of days".into());
                }
                let row = self.maintenance_row(b, plant, &p.machine_id, position);
                if row.machine.predicted_at.is_none_or(|t| t <= p.at) {
                    row.machine.take_prediction(&p);
                }
                let group = group_of(&self.layouts, plant, &p.machine_id, None);
                let millidays = (p.days * 1000.0).round().clamp(-1e15, 1e15) as i64;
                b.deltas.add(
                    plant,
                    &group,
                    p.at,
                    position,
                    Sums { predictions: 1, predicted_millidays: millidays, ..Sums::default() },
                );
                b.predictions.push(PredictionRow {
                    plant,
                    machine_id: p.machine_id,
                    at: p.at,
                    days: p.days,
                    lower: p.lower_days,
                    upper: p.upper_days,
                    model_version: p.model_version,
                    position,
                });
            }
            MAINTENANCE_SCHEDULED => {
                let s: MaintenanceScheduled = e.json().map_err(bad)?;
                let row = self.maintenance_row(b, plant, &s.machine_id, position);
                row.machine.open_order_id = Some(s.order_id.clone());
                row.machine.open_order_kind = Some(s.kind.as_str().to_owned());
                row.machine.scheduled_for = Some(s.scheduled_for);
                let entry = b.log.entry((plant, s.order_id.clone())).or_insert_with(|| LogRow {
                    plant,
                    entry_id: s.order_id.clone(),
                    machine_id: s.machine_id.clone(),
                    kind: s.kind.as_str().to_owned(),
                    state: "scheduled".into(),
                    at: s.scheduled_for,
                    scheduled_for: None,
                    scheduled_by: None,
                    performed_at: None,
                    performed_by: None,
                    note: String::new(),
                    performed_note: String::new(),
                    position,
                });
                entry.scheduled_for = Some(s.scheduled_for);
                entry.scheduled_by = Some(s.by);
                entry.note = s.note;
                entry.position = position;
            }
            MAINTENANCE_PERFORMED => {
                let p: MaintenancePerformed = e.json().map_err(bad)?;
                let row = self.maintenance_row(b, plant, &p.machine_id, position);
                if row.machine.open_order_id.as_deref() == Some(p.order_id.as_str()) {
                    row.machine.open_order_id = None;
                    row.machine.open_order_kind = None;
                    row.machine.scheduled_for = None;
                }
                row.machine.last_performed_at = row.machine.last_performed_at.max(Some(p.performed_at));
                let entry = b.log.entry((plant, p.order_id.clone())).or_insert_with(|| LogRow {
                    plant,
                    entry_id: p.order_id.clone(),
                    machine_id: p.machine_id.clone(),
                    kind: "planned".into(),
                    state: "performed".into(),
                    at: p.performed_at,
                    scheduled_for: None,
                    scheduled_by: None,
                    performed_at: None,
                    performed_by: None,
                    note: String::new(),
                    performed_note: String::new(),
                    position,
                });
                entry.state = "performed".into();
                entry.at = p.performed_at;
                entry.performed_at = Some(p.performed_at);
                entry.performed_by = Some(p.by);
                entry.performed_note = p.note;
                entry.position = position;
                let group = group_of(&self.layouts, plant, &p.machine_id, None);
                b.deltas.add(
                    plant,
                    &group,
                    p.performed_at,
                    position,
                    Sums { maintenance_performed: 1, ..Sums::default() },
                );
            }
            MACHINE_FAILED => {
                let f: MachineFailed = e.json().map_err(bad)?;
                let row = self.maintenance_row(b, plant, &f.machine_id, position);
                row.last_failure_at = row.last_failure_at.max(Some(f.at));
                let id = failure_id(&f.machine_id, f.at);
                b.log.insert(
                    (plant, id.clone()),
                    LogRow {
                        plant,
                        entry_id: id,
                        machine_id: f.machine_id.clone(),
                        kind: "failure".into(),
                        state: "failed".into(),
                        at: f.at,
                        scheduled_for: None,
                        scheduled_by: None,
                        performed_at: None,
                        performed_by: None,
                        note: f.source,
                        performed_note: String::new(),
                        position,
                    },
                );
                let group = group_of(&self.layouts, plant, &f.machine_id, None);
                b.deltas.add(plant, &group, f.at, position, Sums { failures: 1, ..Sums::default() });
            }
            PRODUCTION_REPORTED => {
                let r: ProductionReported = e.json().map_err(bad)?;
                r.check().map_err(|e| e.to_string())?;
                let group = group_of(&self.layouts, plant, &r.machine_id, None);
                let ms = |s: f64| (s * 1000.0).round() as i64;
                let ideal_ms = (r.parts as f64 * r.ideal_cycle_s * 1000.0).round() as i64;
                let sums = Sums {
                    planned_ms: ms(r.planned_s),
                    running_ms: ms(r.running_s),
                    parts: r.parts as i64,
                    good_parts: (r.parts - r.rejects) as i64,
                    ideal_ms,
                    ..Sums::default()
                };
                b.deltas.add(plant, &group, r.from, position, sums);
            }
            LAYOUT_CONFIGURED => {}
            _ => {}
        }
        Ok(())
    }

    fn maintenance_row<'b>(
        &self,
        b: &'b mut Batch,
        plant: u16,
        machine_id: &str,
        position: i64,
    ) -> &'b mut MaintenanceRow {
        let group = group_of(&self.layouts, plant, machine_id, None);
        let row = b.maintenance.entry((plant, machine_id.to_owned())).or_insert_with(|| MaintenanceRow {
            plant,
            machine_id: machine_id.to_owned(),
            line_id: group.line_id.clone(),
            machine_type: group.machine_type.clone(),
            machine: readmodels::live::model::MaintenanceRow::default(),
            last_failure_at: None,
        });
        row.machine.position = position;
        row
    }

    fn anomaly(&mut self, b: &mut Batch, plant: u16, event: AnomalyEvent, position: i64) {
        let id = match &event {
            AnomalyEvent::Detected(e) => e.anomaly_id.clone(),
            AnomalyEvent::Updated(e) => e.anomaly_id.clone(),
            AnomalyEvent::Resolved(e) => e.anomaly_id.clone(),
            AnomalyEvent::Acknowledged(e) => e.anomaly_id.clone(),
            AnomalyEvent::Shelved(e) => e.anomaly_id.clone(),
            AnomalyEvent::NoteAdded(e) => e.anomaly_id.clone(),
        };
        let key = (plant, id);
        if let AnomalyEvent::Detected(d) = &event {
            if b.anomalies.contains_key(&key) {
                return; // detected once; a repeat changes nothing
            }
            let group = group_of(&self.layouts, plant, &d.machine_id, Some(&d.line_id));
            let mut sums = Sums::default();
            match d.severity {
                Severity::Minor => sums.anomalies_minor = 1,
                Severity::Major => sums.anomalies_major = 1,
                Severity::Critical => sums.anomalies_critical = 1,
            }
            b.deltas.add(plant, &group, d.started_at, position, sums);
            b.anomalies.insert(
                key,
                AnomalyRow {
                    plant,
                    anomaly_id: d.anomaly_id.clone(),
                    machine_id: d.machine_id.clone(),
                    line_id: d.line_id.clone(),
                    machine_type: group.machine_type,
                    severity: d.severity.as_str().to_owned(),
                    state: "new".into(),
                    score: finite_or_zero(d.score),
                    sensors: serde_json::to_value(&d.sensors).unwrap_or(Value::Null),
                    explanation: d.explanation.clone(),
                    detector_version: d.detector_version.clone(),
                    started_at: d.started_at,
                    updated_at: d.started_at,
                    resolved_at: None,
                    acknowledged_by: None,
                    acknowledged_at: None,
                    shelved_by: None,
                    shelved_until: None,
                    notes: Vec::new(),
                    position,
                },
            );
            return;
        }
        let Some(row) = b.anomalies.get_mut(&key) else { return };
        row.position = position;
        match event {
            AnomalyEvent::Updated(u) => {
                row.severity = u.severity.as_str().to_owned();
                row.score = finite_or_zero(u.score);
                row.sensors = serde_json::to_value(&u.sensors).unwrap_or(Value::Null);
                row.explanation = u.explanation;
                row.updated_at = u.at;
            }
            AnomalyEvent::Resolved(r) => {
                row.state = "resolved".into();
                row.resolved_at = Some(r.at);
                row.updated_at = r.at;
            }
            AnomalyEvent::Acknowledged(a) => {
                if row.state != "resolved" {
                    row.state = "acknowledged".into();
                }
                if row.acknowledged_at.is_none() {
                    let group = Group { line_id: row.line_id.clone(), machine_type: row.machine_type.clone() };
                    let ack_ms = (a.at - row.started_at).num_milliseconds().max(0);
                    b.deltas.add(
                        plant,
                        &group,
                        row.started_at,
                        position,
                        Sums { acknowledged: 1, ack_ms, ..Sums::default() },
                    );
                }
                row.acknowledged_by = Some(a.by);
                row.acknowledged_at = Some(a.at);
            }
            AnomalyEvent::Shelved(s) => {
                if row.state != "resolved" {
                    row.state = "shelved".into();
                }
                row.shelved_by = Some(s.by);
                row.shelved_until = Some(s.until);
            }
            AnomalyEvent::NoteAdded(n) => row.notes.push(json!({ "by": n.by, "at": n.at, "text": n.text })),
            AnomalyEvent::Detected(_) => {}
        }
    }
}

fn finite_or_zero(v: f64) -> f64 {
    if v.is_finite() { v } else { 0.0 }
}

async fn load_rows(tx: &Transaction<'_>, b: &mut Batch) -> Result<()> {
    let split = |keys: &BTreeSet<(u16, String)>| -> (Vec<i16>, Vec<String>) {
        keys.iter().map(|(p, k)| (*p as i16, k.clone())).unzip()
    };
    if !b.touched_anomalies.is_empty() {
        let (plants, ids) = split(&b.touched_anomalies);
        for r in tx.query(include_str!("../sql/load_anomalies.sql"), &[&plants, &ids]).await? {
            let notes: Value = r.get(18);
            let row = AnomalyRow {
                plant: r.get::<_, i16>(0) as u16,
                anomaly_id: r.get(1),
                machine_id: r.get(2),
                line_id: r.get(3),
                machine_type: r.get(4),
                severity: r.get(5),
                state: r.get(6),
                score: r.get(7),
                sensors: r.get(8),
                explanation: r.get(9),
                detector_version: r.get(10),
                started_at: r.get(11),
                updated_at: r.get(12),
                resolved_at: r.get(13),
                acknowledged_by: r.get(14),
                acknowledged_at: r.get(15),
                shelved_by: r.get(16),
                shelved_until: r.get(17),
                notes: notes.as_array().cloned().unwrap_or_default(),
                position: r.get(19),
            };
            b.anomalies.insert((row.plant, row.anomaly_id.clone()), row);
        }
    }
    if !b.touched_maintenance.is_empty() {
        let (plants, ids) = split(&b.touched_maintenance);
        for r in tx.query(include_str!("../sql/load_maintenance.sql"), &[&plants, &ids]).await? {
            let row = MaintenanceRow {
                plant: r.get::<_, i16>(0) as u16,
                machine_id: r.get(1),
                line_id: r.get(2),
                machine_type: r.get(3),
                machine: readmodels::live::model::MaintenanceRow {
                    predicted_days: r.get(4),
                    lower_days: r.get(5),
                    upper_days: r.get(6),
                    predicted_at: r.get(7),
                    model_version: r.get(8),
                    open_order_id: r.get(9),
                    open_order_kind: r.get(10),
                    scheduled_for: r.get(11),
                    last_performed_at: r.get(12),
                    position: r.get(14),
                    due: r.get(15),
                },
                last_failure_at: r.get(13),
            };
            b.maintenance.insert((row.plant, row.machine_id.clone()), row);
        }
    }
    if !b.touched_log.is_empty() {
        let (plants, ids) = split(&b.touched_log);
        for r in tx.query(include_str!("../sql/load_log.sql"), &[&plants, &ids]).await? {
            let row = LogRow {
                plant: r.get::<_, i16>(0) as u16,
                entry_id: r.get(1),
                machine_id: r.get(2),
                kind: r.get(3),
                state: r.get(4),
                at: r.get(5),
                scheduled_for: r.get(6),
                scheduled_by: r.get(7),
                performed_at: r.get(8),
                performed_by: r.get(9),
                note: r.get(10),
                performed_note: r.get(11),
                position: r.get(12),
            };
            b.log.insert((row.plant, row.entry_id.clone()), row);
        }
    }
    Ok(())
}

async fn write(tx: &Transaction<'_>, b: Batch) -> Result<()> {
    for (plant, (groups, position)) in &b.layouts {
        crate::layout_tables::write(tx, *plant, groups, *position).await?;
    }
    if !b.anomalies.is_empty() {
        let rows: Vec<&AnomalyRow> = b.anomalies.values().collect();
        let c = |f: &dyn Fn(&AnomalyRow) -> String| rows.iter().map(|r| f(r)).collect::<Vec<String>>();
        let o = |f: &dyn Fn(&AnomalyRow) -> Option<String>| rows.iter().map(|r| f(r)).collect::<Vec<Option<String>>>();
        let t = |f: &dyn Fn(&AnomalyRow) -> Option<DateTime<Utc>>| rows.iter().map(|r| f(r)).collect::<Vec<_>>();
        let plants: Vec<i16> = rows.iter().map(|r| r.plant as i16).collect();
        let scores: Vec<f64> = rows.iter().map(|r| r.score).collect();
        let sensors: Vec<&Value> = rows.iter().map(|r| &r.sensors).collect();
        let started: Vec<DateTime<Utc>> = rows.iter().map(|r| r.started_at).collect();
        let updated: Vec<DateTime<Utc>> = rows.iter().map(|r| r.updated_at).collect();
        let notes: Vec<Value> = rows.iter().map(|r| Value::Array(r.notes.clone())).collect();
        let positions: Vec<i64> = rows.iter().map(|r| r.position).collect();
        tx.execute(
            include_str!("../sql/upsert_anomalies.sql"),
            &[
                &plants,
                &c(&|r| r.anomaly_id.clone()),
                &c(&|r| r.machine_id.clone()),
                &c(&|r| r.line_id.clone()),
                &c(&|r| r.machine_type.clone()),
                &c(&|r| r.severity.clone()),
                &c(&|r| r.state.clone()),
                &scores,
                &sensors,
                &c(&|r| r.explanation.clone()),
                &c(&|r| r.detector_version.clone()),
                &started,
                &updated,
                &t(&|r| r.resolved_at),
                &o(&|r| r.acknowledged_by.clone()),
                &t(&|r| r.acknowledged_at),
                &o(&|r| r.shelved_by.clone()),
                &t(&|r| r.shelved_until),
                &notes,
                &positions,
            ],
        )
        .await?;
    }
    if !b.maintenance.is_empty() {
        let rows: Vec<&MaintenanceRow> = b.maintenance.values().collect();
        let plants: Vec<i16> = rows.iter().map(|r| r.plant as i16).collect();
        let s = |f: &dyn Fn(&MaintenanceRow) -> String| rows.iter().map(|r| f(r)).collect::<Vec<String>>();
        let o = |f: &dyn Fn(&MaintenanceRow) -> Option<String>| rows.iter().map(|r| f(r)).collect::<Vec<_>>();
        let d = |f: &dyn Fn(&MaintenanceRow) -> Option<f64>| rows.iter().map(|r| f(r)).collect::<Vec<_>>();
        let t = |f: &dyn Fn(&MaintenanceRow) -> Option<DateTime<Utc>>| rows.iter().map(|r| f(r)).collect::<Vec<_>>();
        let positions: Vec<i64> = rows.iter().map(|r| r.machine.position).collect();
        tx.execute(
            include_str!("../sql/upsert_maintenance.sql"),
            &[
                &plants,
                &s(&|r| r.machine_id.clone()),
                &s(&|r| r.line_id.clone()),
                &s(&|r| r.machine_type.clone()),
                &d(&|r| r.machine.predicted_days),
                &d(&|r| r.machine.lower_days),
                &d(&|r| r.machine.upper_days),
                &t(&|r| r.machine.predicted_at),
                &o(&|r| r.machine.model_version.clone()),
                &o(&|r| r.machine.open_order_id.clone()),
                &o(&|r| r.machine.open_order_kind.clone()),
                &t(&|r| r.machine.scheduled_for),
                &t(&|r| r.machine.last_performed_at),
                &t(&|r| r.last_failure_at),
                &positions,
                &rows.iter().map(|r| r.machine.due).collect::<Vec<_>>(),
            ],
        )
        .await?;
    }
    if !b.log.is_empty() {
        let rows: Vec<&LogRow> = b.log.values().collect();
        let plants: Vec<i16> = rows.iter().map(|r| r.plant as i16).collect();
        let s = |f: &dyn Fn(&LogRow) -> String| rows.iter().map(|r| f(r)).collect::<Vec<String>>();
        let o = |f: &dyn Fn(&LogRow) -> Option<String>| rows.iter().map(|r| f(r)).collect::<Vec<_>>();
        let t = |f: &dyn Fn(&LogRow) -> Option<DateTime<Utc>>| rows.iter().map(|r| f(r)).collect::<Vec<_>>();
        let at: Vec<DateTime<Utc>> = rows.iter().map(|r| r.at).collect();
        let positions: Vec<i64> = rows.iter().map(|r| r.position).collect();
        tx.execute(
            include_str!("../sql/upsert_log.sql"),
            &[
                &plants,
                &s(&|r| r.entry_id.clone()),
                &s(&|r| r.machine_id.clone()),
                &s(&|r| r.kind.clone()),
                &s(&|r| r.state.clone()),
                &at,
                &t(&|r| r.scheduled_for),
                &o(&|r| r.scheduled_by.clone()),
                &t(&|r| r.performed_at),
                &o(&|r| r.performed_by.clone()),
                &s(&|r| r.note.clone()),
                &s(&|r| r.performed_note.clone()),
                &positions,
            ],
        )
        .await?;
    }
    if !b.predictions.is_empty() {
        let p = &b.predictions;
        let plants: Vec<i16> = p.iter().map(|r| r.plant as i16).collect();
        let machines: Vec<&str> = p.iter().map(|r| r.machine_id.as_str()).collect();
        let at: Vec<DateTime<Utc>> = p.iter().map(|r| r.at).collect();
        let days: Vec<f64> = p.iter().map(|r| r.days).collect();
        let lower: Vec<f64> = p.iter().map(|r| r.lower).collect();
        let upper: Vec<f64> = p.iter().map(|r| r.upper).collect();
        let versions: Vec<&str> = p.iter().map(|r| r.model_version.as_str()).collect();
        let positions: Vec<i64> = p.iter().map(|r| r.position).collect();
        tx.execute(
            include_str!("../sql/insert_predictions.sql"),
            &[&plants, &machines, &at, &days, &lower, &upper, &versions, &positions],
        )
        .await?;
    }
    b.deltas.write(tx).await
}
