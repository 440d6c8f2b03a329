//! The maintenance scorer: every `interval_ms` of plant time (the newest reading's time),
//! it computes each machine's features from the plant's read models and appends one
//! `MaintenancePredicted` per machine (stream `prediction-<machine>`) with the registry's
//! active model.
//!
//! Ticks fall on whole multiples of the interval. A tick's predictions and the scorer's
//! progress (`maintenance.scorer`) are written in one transaction, and every prediction
//! carries an idempotency key (scorer, machine, tick), so a scorer stopped at any instant
//! and restarted never doubles a prediction. After a long gap (a backfill ingested fast)
//! it scores the latest tick only.
//!
//! Features are those the model was trained on (`maintenance::FactoryColumns` over the
//! `sensor_hour` read model): each machine's complete clock hours since its last
//! service, or since its first reading when none is recorded. Only the hours the features
//! can use are read: the run's baseline and the longest trailing window. A machine under
//! maintenance (an open work order due at or before the tick), of a type the model does
//! not know, or without readings, gets no prediction. With no active model the scorer
//! does nothing, and says so once.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use domain::events::{MAINTENANCE_PREDICTED, MaintenancePredicted, PREDICTION};
use eventlog::{Append, Database, ExpectedVersion, GenericClient, Metadata, NewEvent, StreamName};
use maintenance::{DAY_MS, FactoryColumns, HOUR_MS, HistoryTable, MachineSchema, Model, SensorHour};

use crate::registry;

/// Name of the scorer's progress row and the prefix of its idempotency keys.
pub const SCORER: &str = "maintenance-scorer";

/// How the scorer runs.
#[derive(Debug, Clone, PartialEq)]
pub struct ScorerConfig {
    pub name: String,
    /// Plant time between two rounds of predictions.
    pub interval_ms: i64,
    /// How often the scorer looks at the plant's clock and the registry.
    pub poll_ms: u64,
    /// Machines whose hours are read in one query.
    pub batch_machines: usize,
}

impl Default for ScorerConfig {
    fn default() -> Self {
        ScorerConfig { name: SCORER.into(), interval_ms: 15 * 60_000, poll_ms: 5_000, batch_machines: 200 }
    }
}

impl ScorerConfig {
    fn validate(&self) -> Result<()> {
        anyhow::ensure!(
            (60_000..=7 * DAY_MS).contains(&self.interval_ms),
            "scorer interval_ms must be between one minute and a week, got {}",
            self.interval_ms
        );
        anyhow::ensure!(self.poll_ms >= 10, "scorer poll_ms must be at least 10, got {}", self.poll_ms);
        anyhow::ensure!(
            (1..=100_000).contains(&self.batch_machines),
            "scorer batch_machines must be between 1 and 100000, got {}",
            self.batch_machines
        );
        Ok(())
    }
}

/// What one look at the plant did.
#[derive(Debug, Clone, PartialEq)]
pub enum ScoreOutcome {
    /// No reading has been projected yet.
    NoPlantTime,
    /// No model is active.
    NoModel,
    /// The current tick was scored already.
    UpToDate {
        tick_ms: i64,
    },
    Scored {
        tick_ms: i64,
        model_version: String,
        predictions: usize,
        skipped: Skipped,
    },
}

/// Machines left without a prediction at a tick, by reason.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Skipped {
    pub in_maintenance: usize,
    pub unknown_to_model: usize,
    pub without_readings: usize,
}

/// The scorer's state between looks: the model in use.
#[derive(Debug)]
pub struct Scorer {
    config: ScorerConfig,
    model: Option<(String, Arc<Model>)>,
    said_no_model: bool,
}

struct MachineRow {
    id: String,
    machine_type: String,
    last_performed_at: Option<DateTime<Utc>>,
    in_maintenance: bool,
}

impl Scorer {
    pub fn new(config: ScorerConfig) -> Result<Self> {
        config.validate()?;
        Ok(Scorer { config, model: None, said_no_model: false })
    }

    /// Scores the current tick if it is due and a model is active.
    pub async fn score_once(&mut self, db: &Database) -> Result<ScoreOutcome> {
        let mut client = db.client().await?;
        let plant_time: Option<DateTime<Utc>> =
            client.query_one(include_str!("../sql/scorer_plant_time.sql"), &[]).await?.get(0);
        let Some(plant_time) = plant_time else { return Ok(ScoreOutcome::NoPlantTime) };
        let tick_ms = plant_time.timestamp_millis().div_euclid(self.config.interval_ms) * self.config.interval_ms;
        let last: Option<DateTime<Utc>> = client
            .query_opt(include_str!("../sql/scorer_load_state.sql"), &[&self.config.name])
            .await?
            .map(|r| r.get(0));
        if last.is_some_and(|t| t.timestamp_millis() >= tick_ms) {
            return Ok(ScoreOutcome::UpToDate { tick_ms });
        }
        let Some(version) = registry::active_version(&client).await? else {
            if !self.said_no_model {
                tracing::info!("no active maintenance model: machines get no predictions until one is activated");
                self.said_no_model = true;
            }
            self.model = None;
            return Ok(ScoreOutcome::NoModel);
        };
        self.said_no_model = false;
        let model = match &self.model {
            Some((v, m)) if *v == version => m.clone(),
            _ => {
                let m = Arc::new(registry::load(&client, &version).await?);
                tracing::info!(version, "maintenance scorer uses a new model");
                self.model = Some((version.clone(), m.clone()));
                m
            }
        };
        let (events, skipped) = self.predict(&client, &model, &version, tick_ms).await?;
        let tick = DateTime::from_timestamp_millis(tick_ms).context("tick out of range")?;
        let metadata = Metadata::by(self.config.name.clone());
        let mut appends = Vec::with_capacity(events.len());
        for e in &events {
            let stream = StreamName::of(PREDICTION, &e.machine_id)?;
            let event = NewEvent::json(MAINTENANCE_PREDICTED, 1, e, metadata.clone())?;
            let key = format!("{}:{}:{tick_ms}", self.config.name, e.machine_id);
            appends.push(Append::new(stream, ExpectedVersion::Any, vec![event]).idempotent(key));
        }
        let tx = client.transaction().await?;
        tx.execute(
            include_str!("../sql/scorer_save_state.sql"),
            &[&self.config.name, &tick, &version, &(events.len() as i32)],
        )
        .await?;
        if !appends.is_empty() {
            eventlog::append(&tx, &appends).await?;
        }
        tx.commit().await?;
        Ok(ScoreOutcome::Scored { tick_ms, model_version: version, predictions: events.len(), skipped })
    }

    /// Each eligible machine's prediction as of `tick_ms`.
    async fn predict(
        &self,
        client: &impl GenericClient,
        model: &Model,
        version: &str,
        tick_ms: i64,
    ) -> Result<(Vec<MaintenancePredicted>, Skipped)> {
        let tick = DateTime::from_timestamp_millis(tick_ms).context("tick out of range")?;
        let machines: Vec<MachineRow> = client
            .query(include_str!("../sql/scorer_machines.sql"), &[])
            .await?
            .into_iter()
            .map(|r| {
                let open: Option<String> = r.get(3);
                let due: Option<DateTime<Utc>> = r.get(4);
                MachineRow {
                    id: r.get(0),
                    machine_type: r.get(1),
                    last_performed_at: r.get(2),
                    in_maintenance: open.is_some() && due.is_none_or(|d| d <= tick),
                }
            })
            .collect();
        let mut sensors: HashMap<String, Vec<(u32, String)>> = HashMap::new();
        for r in client.query(include_str!("../sql/scorer_sensors.sql"), &[]).await? {
            let id: i32 = r.get(0);
            sensors.entry(r.get(1)).or_default().push((id as u32, r.get(2)));
        }
        let columns = FactoryColumns::new(model.feature_set().columns.clone());
        let mut skipped = Skipped::default();
        let mut eligible = Vec::new();
        for m in &machines {
            if m.in_maintenance {
                skipped.in_maintenance += 1;
                continue;
            }
            let list = sensors.get(&m.id).map(Vec::as_slice).unwrap_or_default();
            let schema = match MachineSchema::new(&m.machine_type, list.iter().map(|(id, kind)| (*id, kind.as_str()))) {
                Ok(s) if columns.covers(&s) => s,
                _ => {
                    skipped.unknown_to_model += 1;
                    continue;
                }
            };
            eligible.push((m, schema));
        }

        let config = &model.feature_set().config;
        let until_ms = maintenance::hour_of_ms(tick_ms);
        let until = DateTime::from_timestamp_millis(until_ms).context("tick out of range")?;
        let baseline_ms = (config.baseline_window * DAY_MS as f64).ceil() as i64;
        let window_start_ms = until_ms - (config.longest_window() * DAY_MS as f64).ceil() as i64 - HOUR_MS;
        let mut out = Vec::new();
        for chunk in eligible.chunks(self.config.batch_machines) {
            let ids: Vec<&str> = chunk.iter().map(|(m, _)| m.id.as_str()).collect();
            let since: Vec<DateTime<Utc>> =
                chunk.iter().map(|(m, _)| m.last_performed_at.unwrap_or(DateTime::UNIX_EPOCH)).collect();
            let mut first: HashMap<String, DateTime<Utc>> = HashMap::new();
            for r in client.query(include_str!("../sql/scorer_first_hours.sql"), &[&ids, &since, &until]).await? {
                first.insert(r.get(0), r.get(1));
            }
            let mut q_ids = Vec::new();
            let mut q_first = Vec::new();
            let mut q_baseline_end = Vec::new();
            for id in &ids {
                if let Some(f) = first.get(*id) {
                    q_ids.push(*id);
                    q_first.push(*f);
                    q_baseline_end.push(
                        DateTime::from_timestamp_millis(f.timestamp_millis().saturating_add(baseline_ms))
                            .context("baseline out of range")?,
                    );
                }
            }
            skipped.without_readings += ids.len() - q_ids.len();
            if q_ids.is_empty() {
                continue;
            }
            let window_start =
                vec![DateTime::from_timestamp_millis(window_start_ms).context("window out of range")?; q_ids.len()];
            let untils = vec![until; q_ids.len()];
            let mut hours: BTreeMap<String, Vec<SensorHour>> = BTreeMap::new();
            for r in client
                .query(
                    include_str!("../sql/scorer_hours.sql"),
                    &[&q_ids, &q_first, &q_baseline_end, &window_start, &untils],
                )
                .await?
            {
                let hour: DateTime<Utc> = r.get(2);
                hours.entry(r.get(0)).or_default().push(SensorHour {
                    sensor: r.get::<_, i32>(1) as u32,
                    hour_ms: hour.timestamp_millis(),
                    count: i64::from(r.get::<_, i32>(3)),
                    min: r.get(4),
                    max: r.get(5),
                    mean: r.get(6),
                });
            }
            let mut table = HistoryTable::new(columns.names().to_vec())?;
            for (m, schema) in chunk {
                let Some(hs) = hours.get(&m.id) else { continue };
                let origin = m.last_performed_at.map(|t| maintenance::days_of_ms(t.timestamp_millis()));
                table.start_unit_with(&m.id, origin)?;
                for (time, row) in columns.rows(schema, hs) {
                    table.push_row(&m.id, time, &row)?;
                }
            }
            if table.units().is_empty() {
                continue;
            }
            for p in model.predict(&table)? {
                // The features are as of the end of the last complete hour; the prediction
                // is issued at the tick, that much later.
                let age = (maintenance::days_of_ms(tick_ms) - p.time).max(0.0);
                let days = (p.predicted_rul - age).max(0.0);
                out.push(MaintenancePredicted {
                    machine_id: p.unit,
                    at: tick,
                    days,
                    lower_days: (p.lower - age).max(0.0).min(days),
                    upper_days: (p.upper - age).max(days),
                    model_version: version.to_owned(),
                });
            }
        }
        Ok((out, skipped))
    }
}

/// Runs the scorer until `shutdown`; errors are logged and retried at the next poll.
pub async fn run(db: Database, config: ScorerConfig, shutdown: impl Future<Output = ()>) -> Result<()> {
    run_reporting(db, config, None, shutdown).await
}

/// [`run`], telling a supervisor's `slot` whether each poll succeeded.
pub async fn run_reporting(
    db: Database,
    config: ScorerConfig,
    slot: Option<crate::supervise::TaskSlot>,
    shutdown: impl Future<Output = ()>,
) -> Result<()> {
    let poll = Duration::from_millis(config.poll_ms);
    let mut scorer = Scorer::new(config)?;
    tokio::pin!(shutdown);
    loop {
        let outcome = scorer.score_once(&db).await;
        if let Some(slot) = &slot {
            match &outcome {
                Ok(_) => slot.running(),
                Err(e) => slot.failing(e),
            }
        }
        match outcome {
            Ok(ScoreOutcome::Scored { tick_ms, model_version, predictions, skipped }) => tracing::info!(
                tick_ms,
                model_version,
                predictions,
                in_maintenance = skipped.in_maintenance,
                unknown_to_model = skipped.unknown_to_model,
                without_readings = skipped.without_readings,
                "maintenance predictions appended"
            ),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = format!("{e:#}"), "maintenance scorer failed; retrying"),
        }
        tokio::select! {
            () = &mut shutdown => return Ok(()),
            () = tokio::time::sleep(poll) => {}
        }
    }
}
