//! The factory the cloud benchmarks run: plant nodes on fresh databases, a cloud node,
//! each plant's link to it, and the simulator sending like gateways.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use eventlog::Database;
use fleet::{FleetConfig, FleetStats, Pace, PlantTarget};
use plant::ingest::system_clock;
use simulator::{Factory, ProductionConfig, ProductionSim, SimConfig};
use tokio::sync::watch;

use super::BenchServer;
use crate::config::Config;
use crate::databases::plant_database;
use crate::factory::FactorySpec;
use crate::secrets::Secrets;

pub struct PlantRun {
    pub number: u16,
    pub db: Database,
    pub target: PlantTarget,
}

pub struct Stack {
    pub spec: FactorySpec,
    pub plants: Vec<PlantRun>,
    pub cloud_db: Database,
    pub cloud_url: Option<String>,
    /// Coarse (backfill) steps a gateway groups into one upload (see `FleetConfig`).
    pub coarse_steps_per_upload: usize,
    stop_nodes: watch::Sender<bool>,
    nodes: Vec<tokio::task::JoinHandle<Result<()>>>,
    stop_cloud: watch::Sender<bool>,
    stop_links: watch::Sender<bool>,
    cloud: Option<tokio::task::JoinHandle<Result<()>>>,
    links: Vec<tokio::task::JoinHandle<Result<()>>>,
    dir: std::path::PathBuf,
}

impl Stack {
    /// Plant nodes keeping `retention_days` of readings, and the cloud's database.
    pub async fn start(
        server: &BenchServer,
        config: &Config,
        plants: u32,
        sensors_per_plant: u32,
        lines_per_plant: Option<u32>,
        retention_days: u32,
    ) -> Result<Stack> {
        let dir = std::env::temp_dir().join(format!("floorwatch-bench-stack-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let factory_args = crate::cli::FactoryArgs { plants, sensors_per_plant, lines_per_plant, layout: None };
        let spec = FactorySpec::from_args(&factory_args)?;
        let numbers = spec.plant_numbers();
        let mut secrets = Secrets::load_or_create(&dir, &spec.layout, &numbers)?;
        let (stop_nodes, nodes_stopped) = watch::channel(false);
        let mut runs = Vec::new();
        let mut nodes = Vec::new();
        for &n in &numbers {
            let url = server.fresh_database(&plant_database(u32::from(n))).await?;
            let db = Database::new(&url, 24)?;
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
            // The simulated crew records its work orders with its own credential.
            crate::people::ensure(&db, n, &mut secrets, crate::people::Demo::CrewOnly).await?;
            let node_secrets = secrets.node(n)?;
            let target = PlantTarget {
                plant_number: n,
                base_url: format!("http://{}", listener.local_addr()?),
                tokens: node_secrets.gateway_tokens.as_map().clone(),
                crew_token: secrets.plants.get(&n).map(|p| p.crew_token.clone()),
            };
            let mut node_config = spec.node_config(n, config);
            node_config.ingest.retention_days = retention_days;
            node_config.minute_retention_days = node_config.minute_retention_days.max(retention_days);
            let mut stop = nodes_stopped.clone();
            nodes.push(tokio::spawn(plant::node::run(
                db.clone(),
                node_config,
                node_secrets,
                listener,
                system_clock(),
                async move {
                    let _ = stop.wait_for(|s| *s).await;
                },
                |_| {},
            )));
            runs.push(PlantRun { number: n, db, target });
        }
        let cloud_db = Database::new(&server.fresh_database("cloud").await?, 32)?;
        cloud::migrate(&cloud_db).await?;
        let (stop_cloud, _) = watch::channel(false);
        let (stop_links, _) = watch::channel(false);
        Ok(Stack {
            spec,
            plants: runs,
            cloud_db,
            cloud_url: None,
            coarse_steps_per_upload: 1,
            stop_nodes,
            nodes,
            stop_cloud,
            stop_links,
            cloud: None,
            links: Vec::new(),
            dir,
        })
    }

    /// Starts the cloud node and every plant's link to it.
    pub async fn start_cloud(&mut self, config: &Config) -> Result<()> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        let mut stopped = self.stop_cloud.subscribe();
        self.cloud =
            Some(tokio::spawn(cloud::node::run(self.cloud_db.clone(), config.cloud_config(), listener, async move {
                let _ = stopped.wait_for(|s| *s).await;
            })));
        for p in &self.plants {
            let (_, token) =
                access::create(&self.cloud_db, access::Role::Forwarder, access::Scope::plant(p.number), "bench")
                    .await?;
            let forwarder = forwarder::ForwarderConfig::new(p.number, url.clone(), token);
            let mut stopped = self.stop_links.subscribe();
            self.links.push(tokio::spawn(crate::link::run_link(p.db.clone(), forwarder, async move {
                let _ = stopped.wait_for(|s| *s).await;
            })));
        }
        self.cloud_url = Some(url);
        Ok(())
    }

    /// Runs every plant's gateways from `start_ms` to `end_ms` (forever when `None`) until
    /// `stop`; production is counted as the plants' controllers would.
    pub fn drive(
        &self,
        pace: Pace,
        start_ms: i64,
        end_ms: Option<i64>,
        coarse_until_ms: Option<i64>,
        stats: Arc<FleetStats>,
        stop: watch::Receiver<bool>,
    ) -> Result<Vec<tokio::task::JoinHandle<Result<i64>>>> {
        let seed = 11;
        let factory = Factory::new(&self.spec.layout, &SimConfig::default(), seed, start_ms)?;
        let mut tasks = Vec::new();
        for (i, (sim, p)) in factory.into_plants().into_iter().zip(&self.plants).enumerate() {
            let production = ProductionSim::new(&self.spec.layout, i, &ProductionConfig::default(), seed)?;
            let config = FleetConfig {
                pace,
                end_ms,
                coarse_until_ms,
                coarse_steps_per_upload: self.coarse_steps_per_upload,
                ..FleetConfig::default()
            };
            tasks.push(tokio::spawn(fleet::run_plant_with(
                sim,
                Some(production),
                p.target.clone(),
                config,
                stats.clone(),
                stop.clone(),
            )));
        }
        Ok(tasks)
    }

    /// Each plant's log head.
    pub async fn plant_heads(&self) -> Result<Vec<(u16, i64)>> {
        let mut out = Vec::new();
        for p in &self.plants {
            out.push((p.number, eventlog::head_position(&p.db.client().await?).await?));
        }
        Ok(out)
    }

    /// Waits until the cloud has stored each plant's log through `heads` and both cloud
    /// projections have read through what it stored then; returns the cloud's position.
    pub async fn wait_shipped(&self, heads: &[(u16, i64)], timeout: Duration) -> Result<i64> {
        let deadline = tokio::time::Instant::now() + timeout;
        let client = self.cloud_db.client().await?;
        let mut cloud_position = 0;
        for &(plant, head) in heads {
            loop {
                let o = eventlog::origin_position(&client, plant).await?;
                if o.acknowledged >= head {
                    cloud_position = cloud_position.max(o.position);
                    break;
                }
                anyhow::ensure!(tokio::time::Instant::now() < deadline, "plant {plant} was not shipped in time");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
        loop {
            if cloud::api::sse::projected(&self.cloud_db).await.map_err(|e| anyhow::anyhow!("{}", e.message))?
                >= cloud_position
            {
                return Ok(cloud_position);
            }
            anyhow::ensure!(tokio::time::Instant::now() < deadline, "the cloud's read models did not catch up in time");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Stops every plant's link and node; the cloud keeps running.
    pub async fn stop_plants(&mut self) -> Result<()> {
        let _ = self.stop_links.send(true);
        for l in self.links.drain(..) {
            l.await.context("link task")??;
        }
        let _ = self.stop_nodes.send(true);
        for n in self.nodes.drain(..) {
            n.await.context("plant node task")??;
        }
        Ok(())
    }

    pub async fn stop(mut self) -> Result<()> {
        self.stop_plants().await?;
        let _ = self.stop_cloud.send(true);
        if let Some(c) = self.cloud.take() {
            c.await.context("cloud task")??;
        }
        let _ = std::fs::remove_dir_all(&self.dir);
        Ok(())
    }
}

/// Joins gateway tasks.
pub async fn join(tasks: Vec<tokio::task::JoinHandle<Result<i64>>>) -> Result<()> {
    for t in tasks {
        t.await.context("gateway task")??;
    }
    Ok(())
}
