//! The plant the app is pointed at. [`FixturePlant`] is a plant fixture (a real log, the
//! real projections and command API) driven by the test; a real `floorwatch up` factory
//! can implement the same trait.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use plant_fixture::{CommandApi, Layout, PlantFixture, Received, reader_url};
use supervisor::config::Connection;
use supervisor::now_ms;
use tokio::sync::Mutex;

/// What the end-to-end tests need from a plant.
#[allow(async_fn_in_trait)]
pub trait PlantUnderTest {
    /// How the app connects to it.
    fn connection(&self) -> Connection;
    /// Makes a fault that the plant reports as a new anomaly; returns the anomaly's id.
    async fn inject_fault(&self, machine_id: &str, severity: &str) -> Result<String>;
    /// The anomaly's state as the plant's read models hold it.
    async fn anomaly_state(&self, anomaly_id: &str) -> Result<String>;
    async fn stop_database(&mut self) -> Result<()>;
    async fn start_database(&mut self) -> Result<()>;
}

/// A private cluster with one plant database run by [`PlantFixture`], every sensor
/// reporting every second, and the plant's command API.
pub struct FixturePlant {
    _dir: tempfile::TempDir,
    cluster: pgcluster::Cluster,
    server: Option<pgcluster::AttachedServer>,
    admin_url: String,
    pub fixture: Arc<Mutex<Option<PlantFixture>>>,
    pub commands: CommandApi,
    ticker: tokio::task::JoinHandle<()>,
}

pub const TOKEN: &str = "e2e-token";

impl FixturePlant {
    pub async fn start(layout: Layout) -> Result<FixturePlant> {
        let dir = tempfile::tempdir()?;
        let cluster = pgcluster::Cluster::new(dir.path().join("pg"), pgcluster::Options::for_tests())?;
        let server = cluster.start_attached()?;
        pgcluster::ensure_database(&server.url("postgres")?, "floorwatch_p1").await?;
        let admin_url = server.url("floorwatch_p1")?;
        let mut fixture = PlantFixture::install(&admin_url).await?;
        fixture.seed(layout, now_ms()).await?;
        let commands = CommandApi::start(&fixture, TOKEN).await?;
        let slot = Arc::new(Mutex::new(Some(fixture)));
        let ticker = tokio::spawn(tick_every_second(slot.clone()));
        Ok(FixturePlant { _dir: dir, cluster, server: Some(server), admin_url, fixture: slot, commands, ticker })
    }

    /// Stops the once-a-second updates (a benchmark drives its own).
    pub fn stop_ticking(&self) {
        self.ticker.abort();
    }

    pub fn received(&self) -> Vec<Received> {
        self.commands.received()
    }

    pub async fn sensor_ids(&self, machine_id: &str) -> Vec<i32> {
        self.fixture.lock().await.as_ref().map(|f| f.sensor_ids(machine_id)).unwrap_or_default()
    }

    /// Reports a plant node task's state, as the node's supervisor does.
    pub async fn report_task(&self, task: &str, state: &'static str, since_ms: i64, error: Option<&str>) -> Result<()> {
        let guard = self.fixture.lock().await;
        guard.as_ref().context("no fixture")?.report_task(task, state, since_ms, error).await
    }

    /// Writes an hour of history for a machine's sensors and its maintenance record.
    pub async fn write_history(&self, machine_id: &str) -> Result<()> {
        let ids = self.sensor_ids(machine_id).await;
        let mut guard = self.fixture.lock().await;
        let f = guard.as_mut().context("no fixture")?;
        let now = now_ms();
        f.write_history(&ids, now - 3_600_000, now).await?;
        f.write_maintenance_history(machine_id, now).await
    }
}

async fn tick_every_second(slot: Arc<Mutex<Option<PlantFixture>>>) {
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        if let Some(f) = slot.lock().await.as_mut() {
            // While the database is down the ticks fail; they resume when it is back.
            let _ = f.tick(now_ms()).await;
        }
    }
}

impl Drop for FixturePlant {
    fn drop(&mut self) {
        self.ticker.abort();
    }
}

impl PlantUnderTest for FixturePlant {
    fn connection(&self) -> Connection {
        Connection {
            plant: "P1".into(),
            database_url: reader_url(&self.admin_url),
            command_url: self.commands.url(),
            command_token: TOKEN.into(),
        }
    }

    async fn inject_fault(&self, machine_id: &str, severity: &str) -> Result<String> {
        let sensor = *self.sensor_ids(machine_id).await.first().context("no such machine")?;
        let mut guard = self.fixture.lock().await;
        guard.as_mut().context("no fixture")?.raise_anomaly(sensor, severity, now_ms()).await
    }

    async fn anomaly_state(&self, anomaly_id: &str) -> Result<String> {
        let guard = self.fixture.lock().await;
        let state = guard.as_ref().context("no fixture")?.anomaly_state(anomaly_id).await?;
        state.with_context(|| format!("no anomaly {anomaly_id} in the read models"))
    }

    async fn stop_database(&mut self) -> Result<()> {
        if let Some(server) = self.server.take() {
            server.stop()?;
        }
        Ok(())
    }

    async fn start_database(&mut self) -> Result<()> {
        if self.server.is_none() {
            self.server = Some(self.cluster.start_attached()?);
        }
        Ok(())
    }
}
