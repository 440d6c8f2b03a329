//! The live projection: runs [`LiveModel`] over the log and writes what changed.

pub mod model;
pub mod tables;

use anyhow::Result;
use chrono::{DateTime, Utc};
use domain::anomaly::AnomalyState;
use domain::events::{LAYOUT_CONFIGURED, LayoutConfigured, PLANT, Severity};
use eventlog::{GenericClient, Handler, RecordedEvent, StreamName, Transaction, Unloadable};
use serde_json::Value;

use crate::timetravel::Recorder;
use model::{AnomalyRow, MaintenanceRow, Rollup};
pub use model::{Changes, LiveModel, PlantLayout, SensorStatus};

/// Name of the live projection (its checkpoint and its row in `readmodel.projections`).
pub const LIVE: &str = "readmodel-live";

/// The live projection of one plant's log.
#[derive(Debug)]
pub struct LiveProjection {
    pub model: LiveModel,
    /// Time travel's checkpoints and late events, kept with the rows.
    recorder: Recorder,
}

impl LiveProjection {
    pub fn new(plant_number: u16) -> Self {
        LiveProjection::with_checkpoints(plant_number, crate::timetravel::CHECKPOINT_EVERY_EVENTS)
    }

    /// A live projection that freezes its model for time travel every `every` positions.
    pub fn with_checkpoints(plant_number: u16, every: i64) -> Self {
        LiveProjection { model: LiveModel::new(plant_number), recorder: Recorder::new(every) }
    }
}

fn ts(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

impl Handler for LiveProjection {
    async fn load(&mut self, tx: &Transaction<'_>) -> Result<()> {
        let mut model = LiveModel::new(self.model.plant_number);
        let (position, memory) = match tx.query_opt(include_str!("../../sql/load_projection.sql"), &[&LIVE]).await? {
            Some(row) => (row.get::<_, i64>(0), row.get::<_, Value>(1)),
            None => (0, Value::Null),
        };
        // A projection stored by a version without time travel kept no clocks: its rows are
        // folded again (the checkpoints and the list of late events need the whole log).
        let recorder = Recorder::restore(self.recorder.every(), &memory, position).ok_or_else(|| {
            Unloadable(format!("the live read models at {position} were stored without time travel's clocks"))
        })?;
        let stream = StreamName::of(PLANT, &format!("P{}", model.plant_number))?;
        let configured = eventlog::read_stream(tx, &stream, 0, 100_000)
            .await?
            .into_iter()
            .rfind(|e| e.event_type == LAYOUT_CONFIGURED && e.position <= position);
        if let Some(e) = configured {
            let unloadable =
                |why: String| Unloadable(format!("the layout at {} of the live read models: {why}", e.position));
            let event: LayoutConfigured = e.json().map_err(|err| unloadable(err.to_string()))?;
            let layout = PlantLayout::build(&event).map_err(unloadable)?;
            model.configure(layout, e.position);
            for row in tx.query(include_str!("../../sql/load_anomalies.sql"), &[]).await? {
                let sensors: Value = row.get(6);
                let sensor_ids = sensors
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter(|s| !s.get("related").and_then(Value::as_bool).unwrap_or(false))
                    .filter_map(|s| s.get("sensor")?.as_u64().and_then(|n| u32::try_from(n).ok()))
                    .collect();
                let notes: Value = row.get(15);
                model.restore_anomaly(AnomalyRow {
                    anomaly_id: row.get(0),
                    machine_id: row.get(1),
                    line_id: row.get(2),
                    severity: Severity::parse(row.get(3)).unwrap_or(Severity::Minor),
                    state: AnomalyState::parse(row.get(4)).unwrap_or(AnomalyState::New),
                    score: row.get(5),
                    sensors,
                    sensor_ids,
                    explanation: row.get(7),
                    started_at: row.get(8),
                    updated_at: row.get(9),
                    resolved_at: row.get(10),
                    acknowledged_by: row.get(11),
                    acknowledged_at: row.get(12),
                    shelved_by: row.get(13),
                    shelved_until: row.get(14),
                    notes: notes.as_array().cloned().unwrap_or_default(),
                    position: row.get(16),
                });
            }
            for row in tx.query(include_str!("../../sql/load_maintenance.sql"), &[]).await? {
                model.restore_maintenance(
                    row.get(0),
                    MaintenanceRow {
                        predicted_days: row.get(1),
                        lower_days: row.get(2),
                        upper_days: row.get(3),
                        predicted_at: row.get(4),
                        model_version: row.get(5),
                        open_order_id: row.get(6),
                        open_order_kind: row.get(7),
                        scheduled_for: row.get(8),
                        last_performed_at: row.get(9),
                        position: row.get(10),
                        due: row.get(11),
                    },
                );
            }
            for row in tx.query(include_str!("../../sql/load_sensor_state.sql"), &[]).await? {
                let id: i32 = row.get(0);
                let at: DateTime<Utc> = row.get(2);
                let status = SensorStatus::parse(row.get(3)).unwrap_or(SensorStatus::Ok);
                model.restore_sensor(id as u32, row.get(1), at.timestamp_millis(), status, row.get(4));
            }
            let mut machines = Vec::new();
            let mut lines = Vec::new();
            let mut plant = 0;
            if let Some(layout) = model.layout.as_ref() {
                for row in tx.query(include_str!("../../sql/load_rollup_positions.sql"), &[]).await? {
                    let id: String = row.get(1);
                    let p: i64 = row.get(2);
                    match row.get::<_, &str>(0) {
                        "machine" => machines.extend(layout.machine_ix(&id).map(|m| (m, p))),
                        "line" => lines.extend(
                            layout
                                .layout
                                .line_index(&id)
                                .and_then(|l| l.checked_sub(layout.first_line))
                                .map(|l| (l, p)),
                        ),
                        _ => plant = p,
                    }
                }
            }
            model.restore_positions(&machines, &lines, plant);
            model.restore_memory(&memory);
        }
        model.take_changes();
        self.model = model;
        self.recorder = recorder;
        Ok(())
    }

    /// The live read models cannot be loaded: they are cleared and folded again from the
    /// whole log (the history, kept apart, is left as it is).
    async fn recover(&mut self, tx: &Transaction<'_>, _stored: i64, _reason: &str) -> Result<Option<i64>> {
        tx.batch_execute(include_str!("../../sql/reset_live.sql")).await?;
        self.model = LiveModel::new(self.model.plant_number);
        self.recorder = Recorder::new(self.recorder.every());
        Ok(Some(0))
    }

    async fn apply(&mut self, tx: &Transaction<'_>, events: &[RecordedEvent]) -> Result<()> {
        for e in events {
            self.recorder.observe(e);
            self.model.apply(e);
            // Time travel's checkpoint at its exact position, wherever the batch ends.
            if self.recorder.due(e.position) {
                self.recorder.checkpoint(tx, &self.model, e.position).await?;
            }
        }
        let last = events.last().map_or(0, |e| e.position);
        let changes = self.model.take_changes();
        for (position, reason) in &changes.unreadable {
            tracing::error!(position, reason, "an event could not be read and is left out of the read models");
        }
        for (position, reason) in &changes.salvaged {
            tracing::error!(
                position,
                reason,
                "an anomaly event could not be read in full: shown from what could be read"
            );
        }
        write(tx, &self.model, &changes).await?;
        self.recorder.store(tx).await?;
        let mut memory = self.model.memory();
        self.recorder.remember(&mut memory);
        tx.execute(include_str!("../../sql/save_projection.sql"), &[&LIVE, &last, &memory]).await?;
        tx.query(include_str!("../../sql/notify.sql"), &[&last.to_string()]).await?;
        Ok(())
    }
}

async fn write(tx: &Transaction<'_>, model: &LiveModel, changes: &Changes) -> Result<()> {
    if changes.reset {
        tx.batch_execute(include_str!("../../sql/reset_layout_tables.sql")).await?;
    }
    if let Some(layout) = model.layout.as_ref() {
        if changes.layout {
            write_layout(tx, layout).await?;
        }
        write_sensors(tx, model, layout, changes).await?;
        write_rollups(tx, model, layout, changes).await?;
    }
    write_anomalies(tx, model, changes).await?;
    write_maintenance(tx, model, changes).await?;
    write_audit(tx, changes).await?;
    Ok(())
}

async fn write_layout(tx: &Transaction<'_>, l: &PlantLayout) -> Result<()> {
    let t = l.tables();
    let position = l.layout_position;
    let p = &t.plant;
    let stmt = tx.prepare_cached(include_str!("../../sql/upsert_plant.sql")).await?;
    tx.execute(&stmt, &[&p.id, &p.name, &p.lines, &p.machines, &p.sensors, &position]).await?;
    let c = &t.lines;
    let positions = vec![position; c.ids.len()];
    tx.execute(include_str!("../../sql/insert_lines.sql"), &[&c.ids, &c.numbers, &c.machines, &c.sensors, &positions])
        .await?;
    let c = &t.machines;
    let positions = vec![position; c.ids.len()];
    tx.execute(
        include_str!("../../sql/insert_machines.sql"),
        &[&c.ids, &c.line_ids, &c.numbers, &c.machine_types, &c.descriptions, &c.sensors, &positions],
    )
    .await?;
    let c = &t.sensors;
    let positions = vec![position; c.ids.len()];
    tx.execute(
        include_str!("../../sql/insert_sensors.sql"),
        &[&c.ids, &c.names, &c.machine_ids, &c.kinds, &c.units, &c.normal_min, &c.normal_max, &positions],
    )
    .await?;
    Ok(())
}

async fn write_sensors(tx: &Transaction<'_>, model: &LiveModel, l: &PlantLayout, changes: &Changes) -> Result<()> {
    if changes.sensors.is_empty() {
        return Ok(());
    }
    let n = changes.sensors.len();
    let mut ids = Vec::with_capacity(n);
    let mut machines = Vec::with_capacity(n);
    let mut values = Vec::with_capacity(n);
    let mut times = Vec::with_capacity(n);
    let mut statuses = Vec::with_capacity(n);
    let mut positions = Vec::with_capacity(n);
    for &ix in &changes.sensors {
        let slot = &model.sensors[ix];
        ids.push((l.first_sensor_id + ix as u32) as i32);
        machines.push(l.machine(l.machine_of[ix] as usize).id.as_str());
        values.push(slot.value);
        times.push(ts(slot.ts_ms));
        statuses.push(slot.status.as_str());
        positions.push(slot.position);
    }
    let stmt = tx.prepare_cached(include_str!("../../sql/upsert_sensor_state.sql")).await?;
    tx.execute(&stmt, &[&ids, &machines, &values, &times, &statuses, &positions]).await?;
    Ok(())
}

struct RollupColumns {
    sensors: Vec<i32>,
    reporting: Vec<i32>,
    stale: Vec<i32>,
    warning: Vec<i32>,
    anomalous: Vec<i32>,
    critical: Vec<i32>,
    major: Vec<i32>,
    minor: Vec<i32>,
    newest: Vec<Option<DateTime<Utc>>>,
    position: Vec<i64>,
}

impl RollupColumns {
    fn new() -> Self {
        RollupColumns {
            sensors: vec![],
            reporting: vec![],
            stale: vec![],
            warning: vec![],
            anomalous: vec![],
            critical: vec![],
            major: vec![],
            minor: vec![],
            newest: vec![],
            position: vec![],
        }
    }

    fn push(&mut self, r: &Rollup) {
        self.sensors.push(r.sensors as i32);
        self.reporting.push(r.reporting() as i32);
        self.stale.push(r.stale() as i32);
        self.warning.push(r.by_status[SensorStatus::Warning as usize] as i32);
        self.anomalous.push(r.by_status[SensorStatus::Anomalous as usize] as i32);
        self.critical.push(r.open[Severity::Critical as usize] as i32);
        self.major.push(r.open[Severity::Major as usize] as i32);
        self.minor.push(r.open[Severity::Minor as usize] as i32);
        self.newest.push(r.newest_ms.map(ts));
        self.position.push(r.position);
    }
}

async fn write_rollups(tx: &Transaction<'_>, model: &LiveModel, l: &PlantLayout, changes: &Changes) -> Result<()> {
    if !changes.machines.is_empty() {
        let mut c = RollupColumns::new();
        let mut ids = vec![];
        let mut lines = vec![];
        let mut status = vec![];
        let mut due_in_days = vec![];
        let mut due = vec![];
        for &m in &changes.machines {
            let agg = &model.machines[m];
            let machine = l.machine(m);
            ids.push(machine.id.as_str());
            lines.push(l.layout.lines()[machine.line].id.as_str());
            status.push(agg.status().as_str());
            due_in_days.push(agg.due_in_days);
            due.push(agg.is_due());
            c.push(&agg.rollup);
        }
        let stmt = tx.prepare_cached(include_str!("../../sql/upsert_machine_status.sql")).await?;
        tx.execute(
            &stmt,
            &[
                &ids,
                &lines,
                &status,
                &c.sensors,
                &c.reporting,
                &c.stale,
                &c.warning,
                &c.anomalous,
                &c.critical,
                &c.major,
                &c.minor,
                &due_in_days,
                &due,
                &c.newest,
                &c.position,
            ],
        )
        .await?;
    }
    if !changes.lines.is_empty() {
        let mut c = RollupColumns::new();
        let mut ids = vec![];
        let mut due = vec![];
        let mut rate = vec![];
        for &x in &changes.lines {
            let agg = &model.lines[x];
            ids.push(l.line(x).id.as_str());
            due.push(agg.machines_due_7d as i32);
            rate.push(agg.shown_rate);
            c.push(&agg.rollup);
        }
        let stmt = tx.prepare_cached(include_str!("../../sql/upsert_line_status.sql")).await?;
        tx.execute(
            &stmt,
            &[
                &ids,
                &c.sensors,
                &c.reporting,
                &c.stale,
                &c.warning,
                &c.anomalous,
                &c.critical,
                &c.major,
                &c.minor,
                &due,
                &rate,
                &c.newest,
                &c.position,
            ],
        )
        .await?;
    }
    if changes.plant {
        let p = &model.plant;
        let r = &p.rollup;
        let stmt = tx.prepare_cached(include_str!("../../sql/upsert_plant_status.sql")).await?;
        tx.execute(
            &stmt,
            &[
                &l.plant().id,
                &(r.sensors as i32),
                &(r.reporting() as i32),
                &(r.stale() as i32),
                &(r.by_status[SensorStatus::Warning as usize] as i32),
                &(r.by_status[SensorStatus::Anomalous as usize] as i32),
                &(r.open[Severity::Critical as usize] as i32),
                &(r.open[Severity::Major as usize] as i32),
                &(r.open[Severity::Minor as usize] as i32),
                &(p.machines_due_7d as i32),
                &p.shown_rate,
                &r.newest_ms.map(ts),
                &r.position,
            ],
        )
        .await?;
    }
    Ok(())
}

async fn write_anomalies(tx: &Transaction<'_>, model: &LiveModel, changes: &Changes) -> Result<()> {
    let rows: Vec<&AnomalyRow> = changes.anomalies.iter().filter_map(|id| model.anomalies.get(id)).collect();
    if rows.is_empty() {
        return Ok(());
    }
    let col = |f: fn(&AnomalyRow) -> Option<String>| rows.iter().map(|r| f(r)).collect::<Vec<_>>();
    let ids = col(|r| Some(r.anomaly_id.clone()));
    let machines = col(|r| Some(r.machine_id.clone()));
    let lines = col(|r| Some(r.line_id.clone()));
    let severities = col(|r| Some(r.severity.as_str().to_owned()));
    let states = col(|r| Some(r.state.as_str().to_owned()));
    let scores: Vec<f64> = rows.iter().map(|r| r.score).collect();
    let sensors: Vec<&Value> = rows.iter().map(|r| &r.sensors).collect();
    let explanations = col(|r| Some(r.explanation.clone()));
    let started: Vec<DateTime<Utc>> = rows.iter().map(|r| r.started_at).collect();
    let updated: Vec<DateTime<Utc>> = rows.iter().map(|r| r.updated_at).collect();
    let resolved: Vec<Option<DateTime<Utc>>> = rows.iter().map(|r| r.resolved_at).collect();
    let ack_by = col(|r| r.acknowledged_by.clone());
    let ack_at: Vec<Option<DateTime<Utc>>> = rows.iter().map(|r| r.acknowledged_at).collect();
    let shelved_by = col(|r| r.shelved_by.clone());
    let shelved_until: Vec<Option<DateTime<Utc>>> = rows.iter().map(|r| r.shelved_until).collect();
    let notes: Vec<Value> = rows.iter().map(|r| Value::Array(r.notes.clone())).collect();
    let positions: Vec<i64> = rows.iter().map(|r| r.position).collect();
    let stmt = tx.prepare_cached(include_str!("../../sql/upsert_anomalies.sql")).await?;
    tx.execute(
        &stmt,
        &[
            &ids,
            &machines,
            &lines,
            &severities,
            &states,
            &scores,
            &sensors,
            &explanations,
            &started,
            &updated,
            &resolved,
            &ack_by,
            &ack_at,
            &shelved_by,
            &shelved_until,
            &notes,
            &positions,
        ],
    )
    .await?;
    Ok(())
}

async fn write_maintenance(tx: &Transaction<'_>, model: &LiveModel, changes: &Changes) -> Result<()> {
    if !changes.maintenance.is_empty() {
        let rows: Vec<(&String, &MaintenanceRow)> =
            changes.maintenance.iter().filter_map(|m| model.maintenance.get_key_value(m)).collect();
        let ids: Vec<&str> = rows.iter().map(|(m, _)| m.as_str()).collect();
        let days: Vec<Option<f64>> = rows.iter().map(|(_, r)| r.predicted_days).collect();
        let lower: Vec<Option<f64>> = rows.iter().map(|(_, r)| r.lower_days).collect();
        let upper: Vec<Option<f64>> = rows.iter().map(|(_, r)| r.upper_days).collect();
        let at: Vec<Option<DateTime<Utc>>> = rows.iter().map(|(_, r)| r.predicted_at).collect();
        let version: Vec<Option<&str>> = rows.iter().map(|(_, r)| r.model_version.as_deref()).collect();
        let order: Vec<Option<&str>> = rows.iter().map(|(_, r)| r.open_order_id.as_deref()).collect();
        let kind: Vec<Option<&str>> = rows.iter().map(|(_, r)| r.open_order_kind.as_deref()).collect();
        let scheduled: Vec<Option<DateTime<Utc>>> = rows.iter().map(|(_, r)| r.scheduled_for).collect();
        let performed: Vec<Option<DateTime<Utc>>> = rows.iter().map(|(_, r)| r.last_performed_at).collect();
        let positions: Vec<i64> = rows.iter().map(|(_, r)| r.position).collect();
        let due: Vec<Option<bool>> = rows.iter().map(|(_, r)| r.due).collect();
        let stmt = tx.prepare_cached(include_str!("../../sql/upsert_maintenance.sql")).await?;
        tx.execute(
            &stmt,
            &[&ids, &days, &lower, &upper, &at, &version, &order, &kind, &scheduled, &performed, &positions, &due],
        )
        .await?;
    }
    if !changes.predictions.is_empty() {
        let p = &changes.predictions;
        let ids: Vec<&str> = p.iter().map(|r| r.machine_id.as_str()).collect();
        let at: Vec<DateTime<Utc>> = p.iter().map(|r| r.predicted_at).collect();
        let days: Vec<f64> = p.iter().map(|r| r.days).collect();
        let lower: Vec<f64> = p.iter().map(|r| r.lower_days).collect();
        let upper: Vec<f64> = p.iter().map(|r| r.upper_days).collect();
        let version: Vec<&str> = p.iter().map(|r| r.model_version.as_str()).collect();
        let positions: Vec<i64> = p.iter().map(|r| r.position).collect();
        let stmt = tx.prepare_cached(include_str!("../../sql/upsert_predictions.sql")).await?;
        tx.execute(&stmt, &[&ids, &at, &days, &lower, &upper, &version, &positions]).await?;
    }
    if !changes.orders.is_empty() {
        let o: Vec<_> = changes.orders.values().collect();
        let ids: Vec<&str> = o.iter().map(|r| r.order_id.as_str()).collect();
        let machines: Vec<&str> = o.iter().map(|r| r.machine_id.as_str()).collect();
        let kinds: Vec<&str> = o.iter().map(|r| r.kind.as_str()).collect();
        let states: Vec<&str> = o.iter().map(|r| r.state.as_str()).collect();
        let scheduled_for: Vec<Option<DateTime<Utc>>> = o.iter().map(|r| r.scheduled_for).collect();
        let scheduled_by: Vec<Option<&str>> = o.iter().map(|r| r.scheduled_by.as_deref()).collect();
        let notes: Vec<Option<&str>> = o.iter().map(|r| r.note.as_deref()).collect();
        let performed_at: Vec<Option<DateTime<Utc>>> = o.iter().map(|r| r.performed_at).collect();
        let performed_by: Vec<Option<&str>> = o.iter().map(|r| r.performed_by.as_deref()).collect();
        let performed_note: Vec<&str> = o.iter().map(|r| r.performed_note.as_str()).collect();
        let positions: Vec<i64> = o.iter().map(|r| r.position).collect();
        let stmt = tx.prepare_cached(include_str!("../../sql/upsert_orders.sql")).await?;
        tx.execute(
            &stmt,
            &[
                &ids,
                &machines,
                &kinds,
                &states,
                &scheduled_for,
                &scheduled_by,
                &notes,
                &performed_at,
                &performed_by,
                &performed_note,
                &positions,
            ],
        )
        .await?;
    }
    Ok(())
}

async fn write_audit(tx: &Transaction<'_>, changes: &Changes) -> Result<()> {
    if changes.audit.is_empty() {
        return Ok(());
    }
    let a = &changes.audit;
    let positions: Vec<i64> = a.iter().map(|r| r.position).collect();
    let recorded: Vec<DateTime<Utc>> = a.iter().map(|r| r.recorded_at).collect();
    let streams: Vec<&str> = a.iter().map(|r| r.stream.as_str()).collect();
    let types: Vec<&str> = a.iter().map(|r| r.event_type.as_str()).collect();
    let machines: Vec<Option<&str>> = a.iter().map(|r| r.machine_id.as_deref()).collect();
    let actors: Vec<Option<&str>> = a.iter().map(|r| r.actor.as_deref()).collect();
    let summaries: Vec<&str> = a.iter().map(|r| r.summary.as_str()).collect();
    let stmt = tx.prepare_cached(include_str!("../../sql/insert_audit.sql")).await?;
    tx.execute(&stmt, &[&positions, &recorded, &streams, &types, &machines, &actors, &summaries]).await?;
    Ok(())
}
