//! A plant's link to the cloud: its forwarder, and keeping its maintenance model the one
//! the cloud publishes. `floorwatch forward` runs one; `floorwatch up` runs one per plant.

use std::future::Future;
use std::time::Duration;

use anyhow::{Context, Result};
use eventlog::Database;
use forwarder::{CloudClient, ForwarderConfig};

use crate::cli::{ForwardArgs, Global};
use crate::config::Config;
use crate::databases::{Server, data_dir, plant_database};
use crate::secrets::Secrets;

/// How often a plant asks the cloud which model it publishes.
const MODEL_CHECK: Duration = Duration::from_secs(60);

pub async fn run(args: ForwardArgs, global: &Global, config: &Config) -> Result<()> {
    let url = match &args.plant_database {
        Some(url) => url.clone(),
        None => {
            let server = Server::new(global.data_dir.clone(), global.database_url.clone(), config)?;
            server.ensure_running()?;
            server.existing_database(&plant_database(u32::from(args.plant)))?
        }
    };
    let db = Database::new(&url, 4)?;
    readmodels::migrate(&db).await.context("preparing the plant's database")?;
    plant::migrate(&db).await?;
    let token = match args.token {
        Some(t) => t,
        None => Secrets::load_existing(&data_dir(global))?
            .cloud
            .forwarder_tokens
            .get(&args.plant)
            .cloned()
            .with_context(|| format!("no forwarder token for plant {} here: give --token", args.plant))?,
    };
    let url = args.cloud.unwrap_or_else(|| format!("http://127.0.0.1:{}", config.cloud.http_port));
    let mut forwarder = ForwarderConfig::new(args.plant, url.trim_end_matches('/'), token);
    forwarder.batch_max_events = args.batch_events as usize;
    eprintln!("forwarding plant {}'s log to {} (Ctrl-C stops)", args.plant, forwarder.cloud_url);
    run_link(db, forwarder, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await
}

/// Runs the forwarder and the model check until `shutdown`.
pub async fn run_link(db: Database, config: ForwarderConfig, shutdown: impl Future<Output = ()> + Send) -> Result<()> {
    let client = CloudClient::new(&config.cloud_url, &config.token, config.plant, Duration::from_secs(30))?;
    let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
    let models = {
        let db = db.clone();
        tokio::spawn(async move {
            loop {
                if let Err(e) = sync_model(&db, &client).await {
                    tracing::debug!(error = format!("{e:#}"), "could not check the cloud's model; trying again later");
                }
                tokio::select! {
                    _ = stop_rx.wait_for(|s| *s) => return,
                    () = tokio::time::sleep(MODEL_CHECK) => {}
                }
            }
        })
    };
    let result = forwarder::run(db, config, shutdown).await;
    let _ = stop_tx.send(true);
    models.await.context("model check task")?;
    result
}

/// Registers and activates the model the cloud publishes when the plant's active one
/// differs; keeps the plant's model when the cloud publishes none or cannot be reached.
pub async fn sync_model(db: &Database, client: &CloudClient) -> Result<Option<String>> {
    let Some(published) = client.active_model().await? else { return Ok(None) };
    let active = plant::registry::active_version(&db.client().await?).await?;
    if active.as_deref() == Some(published.version.as_str()) {
        return Ok(None);
    }
    let model = maintenance::Model::from_json(&published.model).context("the cloud's model is unreadable")?;
    let version = plant::registry::register(db, &model, Some(published.metrics), true).await?;
    tracing::info!(version, "the cloud's maintenance model is now this plant's active one");
    Ok(Some(version))
}
