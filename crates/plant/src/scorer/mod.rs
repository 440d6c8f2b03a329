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
//! can use are read: the run's baseline and the longest trailing window before each hour
//! the alert rule looks back on. A machine under maintenance (an open work order due at or
//! before the tick), of a type the model does not know, or without readings, gets no
//! prediction. With no active model the scorer does nothing, and says so once.
//!
//! Each prediction carries the probability of failure within the horizon and whether the
//! machine is *due* by the model's alert rule (`maintenance::AlertRule`, the rule the
//! evaluation scored), which may ask the condition to have held over the last hours: the
//! model predicts each of those hours again from the same history.
//!
//! `plan.rs` is the pure part (eligibility, hours to read, features, events), `store.rs`
//! every query; this file runs them.

mod plan;
mod store;

pub use plan::{MachineRow, Skipped, alert_rule};

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use domain::events::{MAINTENANCE_PREDICTED, MaintenancePredicted, PREDICTION};
use eventlog::{Append, Database, ExpectedVersion, GenericClient, Metadata, NewEvent, StreamName};
use maintenance::{DAY_MS, FactoryColumns, Model};

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

/// The scorer's state between looks: the model in use.
#[derive(Debug)]
pub struct Scorer {
    config: ScorerConfig,
    model: Option<(String, Arc<Model>)>,
    said_no_model: bool,
}

impl Scorer {
    pub fn new(config: ScorerConfig) -> Result<Self> {
        config.validate()?;
        Ok(Scorer { config, model: None, said_no_model: false })
    }

    /// Scores the current tick if it is due and a model is active.
    pub async fn score_once(&mut self, db: &Database) -> Result<ScoreOutcome> {
        let mut client = db.client().await?;
        let Some(plant_time) = store::plant_time(&client).await? else { return Ok(ScoreOutcome::NoPlantTime) };
        let tick_ms = plant_time.timestamp_millis().div_euclid(self.config.interval_ms) * self.config.interval_ms;
        let last = store::last_tick(&client, &self.config.name).await?;
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
        store::save_tick(&tx, &self.config.name, tick, &version, events.len()).await?;
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
        let machines = store::machines(client).await?;
        let sensors = store::sensors(client).await?;
        let columns = FactoryColumns::new(model.feature_set().columns.clone());
        let (eligible, mut skipped) = plan::eligible(&machines, &sensors, &columns, tick);
        let rule = plan::alert_rule(model);
        let window = plan::Window::new(&model.feature_set().config, &rule, tick_ms)?;
        let mut out = Vec::new();
        for chunk in eligible.chunks(self.config.batch_machines) {
            let ids: Vec<&str> = chunk.iter().map(|(m, _)| m.id.as_str()).collect();
            let since: Vec<DateTime<Utc>> =
                chunk.iter().map(|(m, _)| m.last_performed_at.unwrap_or(DateTime::UNIX_EPOCH)).collect();
            let first = store::first_hours(client, &ids, &since, window.until).await?;
            let ranges: Vec<plan::HourRange<'_>> =
                ids.iter().filter_map(|id| first.get(*id).map(|f| window.range(id, *f))).collect::<Result<_>>()?;
            skipped.without_readings += ids.len() - ranges.len();
            if ranges.is_empty() {
                continue;
            }
            let hours = store::hours(client, &ranges).await?;
            let table = plan::table(&columns, chunk, &hours)?;
            out.extend(plan::predictions(model, &rule, &table, tick_ms, version)?);
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
