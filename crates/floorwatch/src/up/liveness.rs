//! What `floorwatch up` watches while it runs: a plant node that stops ends the whole
//! run at once with its cause in words; the simulation's position is saved as its
//! uploads are acknowledged, so a kill leaves no gap; and the status screen says
//! "starting…" before a plant serves, and shows a rate only for a plant that sends.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use anyhow::Result;
use fleet::FleetStats;
use tokio::task::JoinHandle;

/// A plant node's task, and whether it has begun to serve.
pub struct NodeTask {
    pub plant: u16,
    pub task: JoinHandle<Result<()>>,
    pub serving: Arc<AtomicBool>,
}

/// How a plant node ended while the factory was meant to run.
#[derive(Debug)]
pub struct NodeEnded {
    pub plant: u16,
    pub cause: String,
}

impl std::fmt::Display for NodeEnded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "plant P{}'s node stopped: {}", self.plant, self.cause)
    }
}

/// Waits for the first node that ends, and takes it out of `tasks` (so stopping the rest
/// does not wait for it again). Never completes while every node runs, or when there
/// are none.
pub async fn first_node_ended(tasks: &mut Vec<NodeTask>) -> NodeEnded {
    if tasks.is_empty() {
        return std::future::pending().await;
    }
    let (result, index, _) = futures_util::future::select_all(tasks.iter_mut().map(|t| &mut t.task)).await;
    let plant = tasks.remove(index).plant;
    let cause = match result {
        Ok(Ok(())) => "it ended without being asked to".to_owned(),
        Ok(Err(e)) => format!("{e:#}"),
        Err(e) if e.is_panic() => format!("it panicked: {}", panic_text(e.into_panic())),
        Err(e) => format!("its task was cancelled: {e}"),
    };
    NodeEnded { plant, cause }
}

fn panic_text(payload: Box<dyn std::any::Any + Send>) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(no message)".to_owned())
}

/// Saves where the simulation stands as its uploads are acknowledged: the oldest
/// acknowledged step over every plant. A restart resumes there; the few steps after it
/// that were already acknowledged are sent again and the plants' idempotency keys
/// (gateway and step time) keep them once.
pub struct PositionSaver {
    plants: Vec<u16>,
    /// Where the run resumed (or began): a plant with nothing acknowledged yet is there.
    from_ms: i64,
    saved_ms: i64,
}

impl PositionSaver {
    pub fn new(plants: Vec<u16>, from_ms: i64) -> Self {
        PositionSaver { plants, from_ms, saved_ms: from_ms }
    }

    /// The time every plant has had acknowledged through.
    pub fn through(&self, stats: &FleetStats) -> i64 {
        self.plants.iter().map(|p| stats.acknowledged_through(*p).unwrap_or(self.from_ms)).min().unwrap_or(self.from_ms)
    }

    /// Calls `save` with the position when it moved since the last save.
    pub fn save_if_moved(&mut self, stats: &FleetStats, save: impl FnOnce(i64) -> Result<()>) -> Result<()> {
        let through = self.through(stats);
        if through > self.saved_ms {
            save(through)?;
            self.saved_ms = through;
        }
        Ok(())
    }
}

/// How long a plant's rollup may stay unchanged before its rate is no longer shown.
const SILENT_AFTER: Duration = Duration::from_secs(5);

/// Per plant, when its rollup last changed: the rollup keeps its last rate when nothing
/// arrives any more, and a screen must not show a rate for a plant that sends nothing.
#[derive(Default)]
pub struct RateGuard {
    seen: BTreeMap<u16, (i64, Instant)>,
}

impl RateGuard {
    /// The rate to show for plant `plant` whose rollup is at `position` with `rate`:
    /// `None` once the rollup has not moved for a few seconds.
    pub fn rate(&mut self, plant: u16, position: i64, rate: f64, now: Instant) -> Option<f64> {
        let entry = self.seen.entry(plant).or_insert((position, now));
        if entry.0 != position {
            *entry = (position, now);
        }
        (now.duration_since(entry.1) < SILENT_AFTER).then_some(rate)
    }
}

/// A plant's tasks that are down, in words, with their last error cut short.
pub fn tasks_down(tasks: &[readmodel_contract::NodeTask]) -> Vec<String> {
    tasks
        .iter()
        .filter_map(|t| {
            let line = t.down_since()?;
            Some(match &t.last_error {
                Some(e) => format!("{line} — {}", e.chars().take(120).collect::<String>()),
                None => line,
            })
        })
        .collect()
}

/// The file the simulation's position is kept in.
pub fn fleet_file(dir: &Path) -> PathBuf {
    dir.join("fleet.json")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::Ordering;

    #[tokio::test]
    async fn a_node_that_fails_at_start_is_reported_with_its_cause() {
        let running = NodeTask {
            plant: 1,
            task: tokio::spawn(std::future::pending::<Result<()>>()),
            serving: Arc::new(AtomicBool::new(true)),
        };
        let failing = NodeTask {
            plant: 5,
            task: tokio::spawn(async { Err(anyhow::anyhow!("db error: ERROR: tuple concurrently updated")) }),
            serving: Arc::new(AtomicBool::new(false)),
        };
        let mut tasks = vec![running, failing];
        let ended = first_node_ended(&mut tasks).await;
        assert_eq!(ended.to_string(), "plant P5's node stopped: db error: ERROR: tuple concurrently updated");
        assert_eq!(tasks.len(), 1, "the ended node is taken out");
        assert!(!tasks[0].serving.load(Ordering::Relaxed) || tasks[0].plant == 1);
        tasks[0].task.abort();
    }

    #[tokio::test]
    async fn a_node_that_panics_or_just_returns_is_reported_too() {
        let mut tasks = vec![NodeTask {
            plant: 2,
            task: tokio::spawn(async { panic!("the writer's invariant broke") }),
            serving: Arc::new(AtomicBool::new(true)),
        }];
        let ended = first_node_ended(&mut tasks).await;
        assert_eq!(ended.to_string(), "plant P2's node stopped: it panicked: the writer's invariant broke");
        let mut tasks =
            vec![NodeTask { plant: 3, task: tokio::spawn(async { Ok(()) }), serving: Arc::new(AtomicBool::new(true)) }];
        assert_eq!(
            first_node_ended(&mut tasks).await.to_string(),
            "plant P3's node stopped: it ended without being asked to"
        );
    }

    #[test]
    fn the_saved_position_is_the_oldest_acknowledged_over_every_plant() {
        let stats = FleetStats::default();
        let mut saver = PositionSaver::new(vec![1, 2], 1_000);
        let mut saved = Vec::new();
        saver
            .save_if_moved(&stats, |t| {
                saved.push(t);
                Ok(())
            })
            .unwrap();
        assert!(saved.is_empty(), "nothing acknowledged, nothing to save");
        stats.acknowledge(1, 5_000);
        saver
            .save_if_moved(&stats, |t| {
                saved.push(t);
                Ok(())
            })
            .unwrap();
        assert!(saved.is_empty(), "plant 2 has nothing acknowledged: still where the run began");
        stats.acknowledge(2, 3_000);
        saver
            .save_if_moved(&stats, |t| {
                saved.push(t);
                Ok(())
            })
            .unwrap();
        saver
            .save_if_moved(&stats, |t| {
                saved.push(t);
                Ok(())
            })
            .unwrap();
        assert_eq!(saved, vec![3_000], "saved once, at the slower plant");
    }

    #[test]
    fn a_task_that_is_down_is_said_in_words() {
        let task = |name: &str, state: &str| readmodel_contract::NodeTask {
            task: name.into(),
            state: state.into(),
            since_ms: 1_772_366_400_000,
            restarts: 3,
            last_error: Some("checkpoint holds non-finite numbers".into()),
            lag_events: Some(12),
            updated_at_ms: 0,
            position: 1,
            label: String::new(),
            down: false,
        };
        let lines = tasks_down(&[task("writer", "running"), task("monitor", "failing"), task("scorer", "restarting")]);
        assert_eq!(
            lines,
            [
                "anomaly detection stopped since 2026-03-01 12:00:00 UTC — checkpoint holds non-finite numbers",
                "maintenance predictions stopped since 2026-03-01 12:00:00 UTC — checkpoint holds non-finite numbers",
            ]
        );
    }

    #[test]
    fn a_rate_is_shown_only_while_the_rollup_moves() {
        let mut guard = RateGuard::default();
        let t0 = Instant::now();
        assert_eq!(guard.rate(1, 10, 10_000.0, t0), Some(10_000.0));
        assert_eq!(guard.rate(1, 11, 10_000.0, t0 + Duration::from_secs(4)), Some(10_000.0));
        assert_eq!(guard.rate(1, 11, 10_000.0, t0 + Duration::from_secs(8)), Some(10_000.0));
        assert_eq!(guard.rate(1, 11, 10_000.0, t0 + Duration::from_secs(10)), None, "silent for 6 s");
        assert_eq!(guard.rate(1, 12, 9_000.0, t0 + Duration::from_secs(11)), Some(9_000.0));
    }
}
