//! What a factory run under faults must still hold, beyond its readings' and the cloud's
//! counts: no dead letter for an upload the plant stored, the readings an uninterrupted
//! simulation of the same seed makes, and the anomaly episodes an uninterrupted monitor
//! makes from the same log.
#![allow(clippy::unwrap_used, dead_code)]

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{Context, Result};
use layout::{Layout, Scale};
use plant::monitor::{MONITOR, Monitor, MonitorConfig};
use simulator::{Factory, FaultConfig, SimConfig, Step};

use super::{FactoryRun, PLANTS, SENSORS_PER_PLANT};

/// A plant's readings as its log holds them.
pub struct PlantLog {
    /// (sensor, instant) → the value's bits.
    pub readings: BTreeMap<(u32, i64), u64>,
    /// Each gateway's newest instant.
    pub newest_per_gateway: BTreeMap<String, i64>,
    /// The uploads (idempotency keys) whose readings the log holds.
    pub uploads: BTreeSet<String>,
}

/// A plant's dead letters.
#[derive(Debug)]
pub struct DeadLetterCheck {
    pub total: usize,
    /// (sensor, instant) of the refused readings a gateway sent by numeric id.
    pub refused: BTreeSet<(u32, i64)>,
    /// Dead letters of readings or uploads the log holds: refused after they were
    /// acknowledged as accepted.
    pub of_stored: Vec<String>,
}

/// A plant's log against an uninterrupted simulation of the same seed from the same start.
#[derive(Debug)]
pub struct SimulationCheck {
    /// The simulated instant every gateway's readings reached (the range compared ends here).
    pub through_ms: i64,
    pub equal: u64,
    /// Simulated readings the plant refused (in its dead letters, not in its log).
    pub refused: u64,
    /// (sensor, time) whose stored value differs from the simulation's.
    pub differing: Vec<(u32, i64)>,
    /// Simulated readings neither in the log nor in the dead letters.
    pub missing: Vec<(u32, i64)>,
    /// Stored readings the simulation never made.
    pub foreign: Vec<(u32, i64)>,
}

/// A plant's anomaly events against a monitor that read the same log without a kill.
#[derive(Debug)]
pub struct AnomalyCheck {
    /// Episodes the uninterrupted monitor opened (whole log) and the live monitor did.
    pub reference_episodes: usize,
    pub live_episodes: usize,
    /// Events of the uninterrupted monitor, and of them those it made from events up to
    /// where the live monitor had read and written everything it ever will.
    pub reference_events: usize,
    pub compared_events: usize,
    /// The log position the comparison of losses runs through.
    pub through_position: i64,
    /// Events (idempotency keys) the uninterrupted monitor made through the compared
    /// position and the log lacks.
    pub lost: Vec<String>,
    /// Events in the log the uninterrupted monitor never made (a doubled episode gets a
    /// second id), or stored twice.
    pub doubled_or_foreign: Vec<String>,
}

/// The factory's layout as `--plants PLANTS --sensors-per-plant SENSORS_PER_PLANT` builds it.
pub fn layout() -> Result<Layout> {
    let scale = Scale { plants: Some(PLANTS), lines_per_plant: None, sensors_per_plant: Some(SENSORS_PER_PLANT) };
    Ok(Layout::from_toml(layout::DEFAULT_LAYOUT_TOML, &scale)?)
}

impl FactoryRun {
    /// Every reading of plant `plant`'s log.
    pub async fn plant_log(&self, plant: u32) -> Result<PlantLog> {
        let (_db, client) = self.log_client(plant).await?;
        let mut log =
            PlantLog { readings: BTreeMap::new(), newest_per_gateway: BTreeMap::new(), uploads: BTreeSet::new() };
        super::each_stored_batch(&client, |e, readings| {
            log.uploads.extend(e.idempotency_key.clone());
            let newest = log.newest_per_gateway.entry(e.stream.to_string()).or_insert(i64::MIN);
            for r in readings {
                log.readings.insert((r.sensor, r.ts_ms), r.value.to_bits());
                *newest = (*newest).max(r.ts_ms);
            }
        })
        .await?;
        Ok(log)
    }

    /// Plant `plant`'s dead letters, and those of readings or uploads its log holds.
    pub async fn dead_letters(&self, plant: u32, log: &PlantLog) -> Result<DeadLetterCheck> {
        let client = self.connect(plant).await?;
        let rows = client
            .query("SELECT upload, item, sensor, ts_ms, reason FROM ingest.dead_letters ORDER BY id", &[])
            .await?;
        let mut check = DeadLetterCheck { total: rows.len(), refused: BTreeSet::new(), of_stored: Vec::new() };
        for row in rows {
            let (upload, item, sensor, ts_ms, reason): (String, i32, Option<String>, Option<i64>, String) =
                (row.get(0), row.get(1), row.get(2), row.get(3), row.get(4));
            let reading = sensor.as_deref().and_then(|s| s.parse::<u32>().ok()).zip(ts_ms);
            let stored = match reading {
                Some(key) if item >= 0 => {
                    check.refused.insert(key);
                    log.readings.contains_key(&key)
                }
                _ => item < 0 && log.uploads.contains(&upload),
            };
            if stored {
                check.of_stored.push(format!("{upload} item {item} ({sensor:?} at {ts_ms:?}): {reason}"));
            }
        }
        Ok(check)
    }

    /// Compares plant `plant`'s log with what an uninterrupted simulator of `seed`
    /// starting at `start_ms` with `faults` sends, through the instant every one of the
    /// plant's gateways reached: each simulated reading is stored with its value or
    /// refused into the dead letters, and nothing else is stored.
    pub fn simulation(
        &self,
        plant: u32,
        log: &PlantLog,
        dead: &DeadLetterCheck,
        seed: u64,
        start_ms: i64,
        faults: FaultConfig,
    ) -> Result<SimulationCheck> {
        let through_ms = log.newest_per_gateway.values().copied().min().unwrap_or(i64::MIN);
        let layout = layout()?;
        let config = SimConfig { faults, ..SimConfig::default() };
        let mut sim = Factory::new(&layout, &config, seed, start_ms)?
            .into_plants()
            .into_iter()
            .find(|p| u32::from(p.plant_number()) == plant)
            .context("no such plant in the simulation")?;
        let mut check = SimulationCheck {
            through_ms,
            equal: 0,
            refused: 0,
            differing: Vec::new(),
            missing: Vec::new(),
            foreign: Vec::new(),
        };
        let mut simulated = BTreeSet::new();
        let mut step = Step::default();
        while sim.next_ts_ms() <= through_ms {
            sim.step_into(&mut step);
            for r in step.batches.iter().flat_map(|b| b.readings.iter()) {
                simulated.insert((r.sensor, r.ts_ms));
                match log.readings.get(&(r.sensor, r.ts_ms)) {
                    Some(bits) if *bits == r.value.to_bits() => check.equal += 1,
                    Some(_) => check.differing.push((r.sensor, r.ts_ms)),
                    None if dead.refused.contains(&(r.sensor, r.ts_ms)) => check.refused += 1,
                    None => check.missing.push((r.sensor, r.ts_ms)),
                }
            }
        }
        check.foreign =
            log.readings.keys().filter(|k| k.1 <= through_ms && !simulated.contains(k)).copied().take(20).collect();
        Ok(check)
    }

    /// Replays plant `plant`'s log through a fresh anomaly monitor (the node's
    /// configuration) in one go, and compares the episode events it makes with those the
    /// live monitor appended while it was killed and restarted.
    pub async fn anomalies(&self, plant: u32) -> Result<AnomalyCheck> {
        let (_db, client) = self.log_client(plant).await?;
        let through_position: i64 = client
            .query_one(
                "SELECT coalesce(max(greatest(position, read_through)), 0) FROM eventlog.checkpoints WHERE subscriber = $1",
                &[&MONITOR],
            )
            .await?
            .get(0);
        let mut monitor = Monitor::new(MonitorConfig::new(plant as u16))?;
        let mut reference: BTreeMap<String, i64> = BTreeMap::new();
        let mut reference_episodes = 0;
        let mut after = 0i64;
        let categories = ["readings".to_owned(), domain::events::PLANT.to_owned()];
        loop {
            let events = eventlog::read_all(&client, after, 1000, Some(&categories)).await?;
            let Some(last) = events.last() else { break };
            after = last.position;
            for e in &events {
                monitor.apply(e)?;
                for append in monitor.take_appends() {
                    reference_episodes +=
                        append.events.iter().filter(|ev| ev.event_type == domain::events::ANOMALY_DETECTED).count();
                    let key = append.idempotency_key.context("a monitor append without an idempotency key")?;
                    reference.insert(key, e.position);
                }
            }
        }
        let live: Vec<(Option<String>, String)> = client
            .query(
                "SELECT idempotency_key, type FROM eventlog.all_events WHERE type = ANY($1) ORDER BY position",
                &[&vec![
                    domain::events::ANOMALY_DETECTED,
                    domain::events::ANOMALY_UPDATED,
                    domain::events::ANOMALY_RESOLVED,
                ]],
            )
            .await?
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
        let live_episodes = live.iter().filter(|(_, t)| t == domain::events::ANOMALY_DETECTED).count();
        let mut seen = BTreeSet::new();
        let doubled_or_foreign = live
            .iter()
            .map(|(k, _)| k.clone().unwrap_or_else(|| "(no key)".into()))
            .filter(|k| !seen.insert(k.clone()) || !reference.contains_key(k))
            .collect();
        let compared: Vec<&String> =
            reference.iter().filter(|(_, p)| **p <= through_position).map(|(k, _)| k).collect();
        let lost = compared.iter().filter(|k| !seen.contains(**k)).map(|k| (*k).clone()).collect();
        Ok(AnomalyCheck {
            reference_episodes,
            live_episodes,
            reference_events: reference.len(),
            compared_events: compared.len(),
            through_position,
            lost,
            doubled_or_foreign,
        })
    }
}
