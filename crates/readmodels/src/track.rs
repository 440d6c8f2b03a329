//! The plant's maintenance track record: how its predictions turned out, per machine, per
//! machine type and for the whole plant, each per model version — the third projection,
//! into `readmodel.track_record` and `readmodel.track_failures` (readers read them through
//! `readmodel_contract`, `ReadModel::TrackRecord` and `ReadModel::TrackFailures`).
//!
//! The fold is `maintenance::TrackRecord`, the one `floorwatch eval maintenance` runs over
//! a recording, so the plant's record and the evaluation's figures mean the same: a
//! prediction is a `MaintenancePredicted` event (due when its `due` says so; in events from
//! before the scorer decided it, when its lower bound is within the read models' due
//! horizon), a failure a `MachineFailed`, a service a `MaintenancePerformed`. One
//! prediction an hour per machine is kept (the latest of the hour), as the evaluation's
//! hourly predictions are.
//!
//! Every row carries the position of the event that last changed it, and each applied
//! batch sends `NOTIFY readmodel`, as the other projections do. The fold's state (a machine's
//! predictions of the last two weeks, the sums) is snapshotted every
//! `snapshot_every_ms` of prediction time; the stored checkpoint stays at the snapshot, and
//! after a restart the events since are folded again — rows are written with the values
//! the fold holds, not incremented, so nothing is counted twice.

use std::collections::{BTreeMap, HashMap};

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use domain::events::*;
use eventlog::{Database, Handler, Payload, RecordedEvent, Subscription, SubscriptionConfig, Transaction};
use maintenance::{FailureRecord, TrackFigures, TrackOptions, TrackRecord, TrackScope, TrackedPrediction};
use serde::{Deserialize, Serialize};

use crate::live::PlantLayout;
use crate::live::model::DUE_WITHIN_DAYS;

/// Name of the projection's subscription and state row.
pub const TRACK: &str = "readmodel-track-record";

/// Version of the snapshot format; a snapshot of another version is dropped and the log
/// folded again from the start.
const SNAPSHOT_VERSION: u32 = 1;

/// The categories the projection reads: the layout (machine types), predictions,
/// failures and work orders.
pub const CATEGORIES: [&str; 4] = [PLANT, PREDICTION, "machine", MAINTENANCE];

#[derive(Debug, Clone)]
pub struct TrackConfig {
    pub plant_number: u16,
    /// Prediction time between snapshots of the fold.
    pub snapshot_every_ms: i64,
    pub options: TrackOptions,
}

impl TrackConfig {
    /// Days: the prediction at 1, 3, 7 and 14 days before a failure; caught when due
    /// between 7 and 3 days before; false when no failure within 14 days; one prediction
    /// an hour per machine.
    pub fn new(plant_number: u16) -> Self {
        TrackConfig {
            plant_number,
            snapshot_every_ms: 6 * 3_600_000,
            options: TrackOptions {
                leads: vec![1.0, 3.0, 7.0, 14.0],
                max_staleness: 1.0,
                warning_lead: 3.0,
                horizon: DUE_WITHIN_DAYS,
                quiet_horizon: 14.0,
                resolution: 1.0 / 24.0,
            },
        }
    }
}

/// What is snapshotted.
#[derive(Debug, Serialize, Deserialize)]
struct Snapshot {
    version: u32,
    record: TrackRecord,
    machine_types: BTreeMap<String, String>,
    plant_id: String,
    next_snapshot_ms: i64,
}

/// The projection.
#[derive(Debug)]
pub struct TrackRecordProjection {
    config: TrackConfig,
    record: TrackRecord,
    machine_types: BTreeMap<String, String>,
    plant_id: String,
    next_snapshot_ms: i64,
    snapshot_position: i64,
    snapshot_due: bool,
    /// Rows changed in the batch: figures by key, failures by (machine, time), each with
    /// the position of the event that last changed it.
    figures: BTreeMap<(TrackScope, String), (TrackFigures, i64)>,
    failures: Vec<(FailureRecord, i64)>,
}

impl TrackRecordProjection {
    pub fn new(config: TrackConfig) -> Self {
        TrackRecordProjection {
            record: TrackRecord::new(config.options.clone()),
            plant_id: format!("P{}", config.plant_number),
            config,
            machine_types: BTreeMap::new(),
            next_snapshot_ms: i64::MIN,
            snapshot_position: 0,
            snapshot_due: false,
            figures: BTreeMap::new(),
            failures: Vec::new(),
        }
    }

    /// The fold so far (for tests and tools).
    pub fn record(&self) -> &TrackRecord {
        &self.record
    }

    fn machine_type(&self, machine: &str) -> String {
        self.machine_types.get(machine).cloned().unwrap_or_default()
    }

    /// Whether an event about `machine` belongs in the record: a machine of the plant's
    /// layout (once one is known), so a stray or hostile id never reaches a row.
    fn known(&self, machine: &str) -> bool {
        if self.machine_types.is_empty() { machine_ok(machine) } else { self.machine_types.contains_key(machine) }
    }

    /// Folds one event; an event whose body cannot be read, or about a machine the plant
    /// does not have, is left out with a warning.
    fn apply_event(&mut self, e: &RecordedEvent) {
        let Payload::Json(body) = &e.payload else { return };
        let machine = body.get("machine_id").and_then(serde_json::Value::as_str);
        if e.event_type != LAYOUT_CONFIGURED && machine.is_some_and(|m| !self.known(m)) {
            tracing::warn!(
                position = e.position,
                event_type = e.event_type,
                "event about an unknown machine left out of the track record"
            );
            return;
        }
        let result = match e.event_type.as_str() {
            LAYOUT_CONFIGURED => serde_json::from_value::<LayoutConfigured>(body.clone()).map(|l| self.layout(&l)),
            MAINTENANCE_PREDICTED => serde_json::from_value::<MaintenancePredicted>(body.clone()).map(|p| {
                if !version_ok(&p.model_version) {
                    tracing::warn!(
                        position = e.position,
                        "prediction with an unusable model version left out of the track record"
                    );
                    return;
                }
                let machine_type = self.machine_type(&p.machine_id);
                let at_ms = p.at.timestamp_millis();
                let tracked = TrackedPrediction {
                    time: maintenance::days_of_ms(at_ms),
                    predicted: p.days,
                    lower: p.lower_days,
                    upper: p.upper_days,
                    alert: crate::live::model::is_due(Some(p.lower_days), p.due),
                    model_version: p.model_version,
                };
                self.record.predicted(&p.machine_id, &machine_type, &tracked);
                if at_ms >= self.next_snapshot_ms {
                    if self.next_snapshot_ms != i64::MIN {
                        self.snapshot_due = true;
                    }
                    self.next_snapshot_ms = at_ms.saturating_add(self.config.snapshot_every_ms);
                }
            }),
            MACHINE_FAILED => serde_json::from_value::<MachineFailed>(body.clone()).map(|f| {
                let machine_type = self.machine_type(&f.machine_id);
                self.record.failed(&f.machine_id, &machine_type, maintenance::days_of_ms(f.at.timestamp_millis()));
            }),
            MAINTENANCE_PERFORMED => serde_json::from_value::<MaintenancePerformed>(body.clone()).map(|s| {
                let machine_type = self.machine_type(&s.machine_id);
                let at = maintenance::days_of_ms(s.performed_at.timestamp_millis());
                self.record.serviced(&s.machine_id, &machine_type, at);
            }),
            _ => Ok(()),
        };
        if let Err(err) = result {
            tracing::warn!(position = e.position, event_type = e.event_type, error = %err, "event left out of the track record");
        }
        let changes = self.record.take_changes();
        for (scope, version, figures) in changes.figures {
            self.figures.insert((scope, version), (figures, e.position));
        }
        self.failures.extend(changes.failures.into_iter().map(|f| (f, e.position)));
    }

    fn layout(&mut self, event: &LayoutConfigured) {
        if event.plant != self.config.plant_number {
            return;
        }
        match PlantLayout::build(event) {
            Ok(layout) => {
                let plant = layout.plant();
                self.plant_id = plant.id.clone();
                self.machine_types = layout.layout.machines()[plant.machines.clone()]
                    .iter()
                    .map(|m| (m.id.clone(), layout.layout.machine_type_of(m).name.clone()))
                    .collect();
            }
            Err(err) => tracing::warn!(error = err, "the track record keeps the previous layout"),
        }
    }

    fn snapshot(&self) -> Result<Vec<u8>> {
        let snapshot = Snapshot {
            version: SNAPSHOT_VERSION,
            record: self.record.clone(),
            machine_types: self.machine_types.clone(),
            plant_id: self.plant_id.clone(),
            next_snapshot_ms: self.next_snapshot_ms,
        };
        Ok(postcard::to_allocvec(&snapshot)?)
    }

    /// Restores from a snapshot; `false` (and a fresh fold) when it cannot be read, so the
    /// log is folded again from the start.
    fn restore(&mut self, position: i64, bytes: &[u8]) -> bool {
        match postcard::from_bytes::<Snapshot>(bytes) {
            Ok(s) if s.version == SNAPSHOT_VERSION && s.record.options() == &self.config.options => {
                self.record = s.record;
                self.machine_types = s.machine_types;
                self.plant_id = s.plant_id;
                self.next_snapshot_ms = s.next_snapshot_ms;
                self.snapshot_position = position;
                true
            }
            _ => {
                tracing::warn!("the track record's snapshot cannot be resumed; folding the log again");
                false
            }
        }
    }

    fn scope_row(&self, scope: &TrackScope) -> (&'static str, String) {
        match scope {
            TrackScope::Unit(machine) => ("machine", machine.clone()),
            TrackScope::Group(machine_type) => ("machine_type", machine_type.clone()),
            TrackScope::All => ("plant", self.plant_id.clone()),
        }
    }
}

impl Handler for TrackRecordProjection {
    async fn load(&mut self, tx: &Transaction<'_>) -> Result<()> {
        let mut fresh = TrackRecordProjection::new(self.config.clone());
        let stored = eventlog::checkpoint(tx, TRACK).await?;
        let row = tx.query_opt(include_str!("../sql/track/load_state.sql"), &[&TRACK]).await?;
        let restored = row.is_some_and(|r| r.get::<_, i64>(0) == stored && fresh.restore(r.get(0), r.get(1)));
        if !restored && stored > 0 {
            // No snapshot to resume from at the checkpoint (an older format, or lost):
            // fold the log again up to it, from the first event.
            tx.batch_execute(include_str!("../sql/track/reset.sql")).await?;
            fresh = TrackRecordProjection::new(self.config.clone());
            let categories: Vec<String> = CATEGORIES.iter().map(|c| (*c).to_owned()).collect();
            let mut after = 0;
            while after < stored {
                let events: Vec<RecordedEvent> = eventlog::read_all(tx, after, 2_000, Some(&categories))
                    .await?
                    .into_iter()
                    .filter(|e| e.position <= stored)
                    .collect();
                let Some(last) = events.last().map(|e| e.position) else { break };
                fresh.apply(tx, &events).await?;
                after = last;
            }
            // Resumable from the checkpoint from now on.
            let bytes = fresh.snapshot()?;
            tx.execute(include_str!("../sql/track/save_state.sql"), &[&TRACK, &stored, &bytes]).await?;
            fresh.snapshot_position = stored;
            fresh.snapshot_due = false;
        }
        *self = fresh;
        Ok(())
    }

    async fn apply(&mut self, tx: &Transaction<'_>, events: &[RecordedEvent]) -> Result<()> {
        for e in events {
            self.apply_event(e);
        }
        let changed = !self.figures.is_empty() || !self.failures.is_empty();
        write_figures(tx, self).await?;
        write_failures(tx, self).await?;
        let last = events.last().map_or(0, |e| e.position);
        if changed {
            tx.query(include_str!("../sql/notify.sql"), &[&last.to_string()]).await?;
        }
        if self.snapshot_due {
            let bytes = self.snapshot()?;
            tx.execute(include_str!("../sql/track/save_state.sql"), &[&TRACK, &last, &bytes]).await?;
            self.snapshot_position = last;
            self.snapshot_due = false;
        }
        Ok(())
    }

    fn durable_position(&self, _last: i64) -> i64 {
        self.snapshot_position
    }
}

/// A machine id that can be a row's key: not empty, at most 128 bytes, no control
/// characters (PostgreSQL text holds no NUL).
fn machine_ok(id: &str) -> bool {
    !id.is_empty() && id.len() <= 128 && !id.chars().any(char::is_control)
}

/// A model version that can be a row's key.
fn version_ok(version: &str) -> bool {
    version.len() <= 128 && !version.chars().any(char::is_control)
}

fn days_since_epoch(days: f64) -> Option<DateTime<Utc>> {
    let ms = days * maintenance::DAY_MS as f64;
    ms.is_finite().then(|| DateTime::from_timestamp_millis(ms.round() as i64)).flatten()
}

async fn write_figures(tx: &Transaction<'_>, p: &mut TrackRecordProjection) -> Result<()> {
    let rows = std::mem::take(&mut p.figures);
    if rows.is_empty() {
        return Ok(());
    }
    let n = rows.len();
    let count = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
    let (mut scope, mut id, mut version, mut position) =
        (Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n));
    let mut c: [Vec<i64>; 11] = Default::default();
    let mut d: [Vec<f64>; 3] = Default::default();
    for ((s, v), (f, at)) in rows {
        let (kind, key) = p.scope_row(&s);
        scope.push(kind);
        id.push(key);
        version.push(v);
        position.push(at);
        let counts = [
            f.failures,
            f.caught,
            f.watched,
            f.caught_watched,
            f.scored,
            f.covered,
            f.alerts,
            f.premature_alerts,
            f.alerts_without_failure,
            f.false_alerts,
            f.false_alert_onsets,
        ];
        for (column, value) in c.iter_mut().zip(counts) {
            column.push(count(value));
        }
        for (column, value) in d.iter_mut().zip([f.abs_error_sum, f.false_alert_time, f.judged_time]) {
            column.push(value);
        }
    }
    let stmt = tx.prepare_cached(include_str!("../sql/track/upsert_figures.sql")).await?;
    tx.execute(
        &stmt,
        &[
            &scope, &id, &version, &c[0], &c[1], &c[2], &c[3], &c[4], &c[5], &d[0], &c[6], &c[7], &c[8], &c[9], &d[1],
            &c[10], &d[2], &position,
        ],
    )
    .await
    .context("writing the track record")?;
    Ok(())
}

async fn write_failures(tx: &Transaction<'_>, p: &mut TrackRecordProjection) -> Result<()> {
    let rows = std::mem::take(&mut p.failures);
    if rows.is_empty() {
        return Ok(());
    }
    let mut machine = Vec::new();
    let mut failed_at = Vec::new();
    let mut machine_type = Vec::new();
    let mut version: Vec<Option<String>> = Vec::new();
    let mut caught = Vec::new();
    let mut alert_lead = Vec::new();
    let mut scored = Vec::new();
    let mut covered = Vec::new();
    let mut at_leads = Vec::new();
    let mut position = Vec::new();
    for (f, at) in rows {
        let Some(time) = days_since_epoch(f.time) else { continue };
        let leads: Vec<serde_json::Value> = f
            .at_leads
            .iter()
            .map(|l| {
                serde_json::json!({
                    "lead_days": l.lead,
                    "issued_at_ms": days_since_epoch(l.issued).map(|t| t.timestamp_millis()),
                    "predicted_days": l.predicted,
                    "lower_days": l.lower,
                    "upper_days": l.upper,
                    "actual_days": l.actual,
                })
            })
            .collect();
        machine.push(f.unit);
        failed_at.push(time);
        machine_type.push(f.group);
        version.push(f.model_version);
        caught.push(f.caught);
        alert_lead.push(f.alert_lead);
        scored.push(i64::try_from(f.scored).unwrap_or(i64::MAX));
        covered.push(i64::try_from(f.covered).unwrap_or(i64::MAX));
        at_leads.push(serde_json::Value::Array(leads));
        position.push(at);
    }
    let stmt = tx.prepare_cached(include_str!("../sql/track/upsert_failures.sql")).await?;
    tx.execute(
        &stmt,
        &[&machine, &failed_at, &machine_type, &version, &caught, &alert_lead, &scored, &covered, &at_leads, &position],
    )
    .await
    .context("writing the track record's failures")?;
    Ok(())
}

fn subscription(db: &Database, batch: usize) -> Subscription {
    Subscription::new(db.clone(), SubscriptionConfig::new(TRACK).categories(&CATEGORIES).batch_max_events(batch))
}

/// Runs the projection until `shutdown`.
pub async fn run(db: Database, config: TrackConfig, shutdown: impl std::future::Future<Output = ()>) -> Result<()> {
    subscription(&db, 500).run(&mut TrackRecordProjection::new(config), shutdown).await
}

/// Applies everything in the log now; returns the position reached.
pub async fn catch_up(db: &Database, config: TrackConfig) -> Result<i64> {
    subscription(db, 500).catch_up(&mut TrackRecordProjection::new(config)).await
}

/// Drops the track record and folds the whole log again (`crate::rebuild` does this with
/// the other projections).
pub async fn rebuild(db: &Database, config: TrackConfig) -> Result<i64> {
    {
        let mut client = db.client().await?;
        let tx = client.transaction().await?;
        eventlog::reset_checkpoints(&tx, &[TRACK]).await?;
        tx.batch_execute(include_str!("../sql/track/reset.sql")).await?;
        tx.commit().await?;
    }
    catch_up(db, config).await
}

/// Machine → machine type of the plant's layout, for tests and tools.
pub fn machine_types(event: &LayoutConfigured) -> Result<HashMap<String, String>> {
    let layout = PlantLayout::build(event).map_err(anyhow::Error::msg)?;
    let plant = layout.plant();
    Ok(layout.layout.machines()[plant.machines.clone()]
        .iter()
        .map(|m| (m.id.clone(), layout.layout.machine_type_of(m).name.clone()))
        .collect())
}
