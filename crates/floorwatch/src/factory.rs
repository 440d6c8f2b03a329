//! The factory a command runs: the layout file scaled to the requested size, and the
//! node configuration of each plant derived from it and the configuration file.

use std::sync::Arc;

use anyhow::{Context, Result};
use layout::{Layout, Scale};
use plant::node::NodeConfig;

use crate::cli::FactoryArgs;
use crate::config::Config;

#[derive(Debug, Clone)]
pub struct FactorySpec {
    pub layout_toml: String,
    pub scale: Scale,
    pub layout: Arc<Layout>,
}

impl FactorySpec {
    pub fn from_args(args: &FactoryArgs) -> Result<FactorySpec> {
        let layout_toml = match &args.layout {
            Some(path) => std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?,
            None => layout::DEFAULT_LAYOUT_TOML.to_owned(),
        };
        let scale = Scale {
            plants: Some(args.plants),
            lines_per_plant: args.lines_per_plant,
            sensors_per_plant: Some(args.sensors_per_plant),
        };
        let layout = Layout::from_toml(&layout_toml, &scale).context("building the plant layout")?;
        Ok(FactorySpec { layout_toml, scale, layout: Arc::new(layout) })
    }

    /// Plant numbers, in layout order.
    pub fn plant_numbers(&self) -> Vec<u16> {
        self.layout.plants().iter().map(|p| p.number).collect()
    }

    pub fn node_config(&self, plant: u16, config: &Config) -> NodeConfig {
        let mut node = NodeConfig::new(plant, self.layout_toml.clone(), self.scale);
        node.stale_after_ms = config.plant.stale_after_ms;
        node.ingest.max_clock_skew_ms = config.plant.max_clock_skew_ms;
        node.ingest.max_body_bytes = config.plant.max_upload_bytes;
        node.ingest.retention_days = config.log.telemetry_retention_days;
        node.shelve.max_shelve = chrono::Duration::minutes(config.plant.max_shelve_minutes);
        node.minute_retention_days = config.plant.minute_retention_days;
        node.scorer.interval_ms = config.plant.prediction_interval_minutes * 60_000;
        node.http = server_limits(config);
        node.anomaly_detector = anomaly_detector(config);
        node.dead_letters = plant::dead_letters::DeadLetterPolicy {
            retention_days: config.plant.dead_letter_retention_days,
            max_rows: config.plant.dead_letter_max_rows,
            max_bodies: config.plant.dead_letter_max_bodies,
        };
        node
    }

    /// The port plant `n`'s HTTP API listens on by default (0: any free port).
    pub fn port(plant: u16, config: &Config) -> u16 {
        if config.plant.http_base_port == 0 { 0 } else { config.plant.http_base_port.saturating_add(plant) }
    }
}

/// The HTTP limits of a plant node (and of `detect --serve`).
pub fn server_limits(config: &Config) -> plant::server::ServerLimits {
    plant::server::ServerLimits {
        max_connections: config.plant.max_connections,
        header_timeout_ms: config.plant.header_timeout_ms,
        request_timeout_ms: config.plant.request_timeout_ms,
    }
}

/// How the Anomaly Detector routes are served: the key when one is given.
pub fn anomaly_detector(config: &Config) -> plant::azure::AzureConfig {
    plant::azure::AzureConfig {
        api_key: config.anomaly_detector_key.clone(),
        max_body_bytes: config.plant.max_upload_bytes,
        ..plant::azure::AzureConfig::default()
    }
}
