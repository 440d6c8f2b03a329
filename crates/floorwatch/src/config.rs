//! Floorwatch's configuration: one typed struct, defaults in `assets/floorwatch.toml`.

use std::path::Path;

use anyhow::{Context, Result, bail};
use serde::Deserialize;

/// The defaults shipped with the product.
pub const DEFAULTS: &str = include_str!("../../../assets/floorwatch.toml");

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub cluster: ClusterConfig,
    pub log: LogConfig,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterConfig {
    pub shared_buffers_mb: u32,
    pub max_connections: u32,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    pub telemetry_retention_days: u32,
}

impl Config {
    pub fn defaults() -> Config {
        Config::parse(DEFAULTS).expect("the shipped defaults parse (checked by a test)")
    }

    /// Parses and checks a configuration text.
    pub fn parse(text: &str) -> Result<Config> {
        let config: Config = toml::from_str(text)?;
        config.validate()?;
        Ok(config)
    }

    pub fn load(path: &Path) -> Result<Config> {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        Config::parse(&text).with_context(|| format!("in {}", path.display()))
    }

    fn validate(&self) -> Result<()> {
        if !(1..=3650).contains(&self.log.telemetry_retention_days) {
            bail!("log.telemetry_retention_days must be 1..=3650, got {}", self.log.telemetry_retention_days);
        }
        if !(16..=65_536).contains(&self.cluster.shared_buffers_mb) {
            bail!("cluster.shared_buffers_mb must be 16..=65536, got {}", self.cluster.shared_buffers_mb);
        }
        if !(20..=10_000).contains(&self.cluster.max_connections) {
            bail!("cluster.max_connections must be 20..=10000, got {}", self.cluster.max_connections);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_defaults_parse() {
        let c = Config::defaults();
        assert_eq!(c.log.telemetry_retention_days, 7);
    }

    #[test]
    fn bad_config_names_the_problem() {
        let err = |text: &str| format!("{:#}", Config::parse(text).unwrap_err());
        assert!(
            err(&DEFAULTS.replace("telemetry_retention_days = 7", "telemetry_retention_days = 0")).contains("1..=3650")
        );
        assert!(err(&DEFAULTS.replace("[log]", "[log]\nretention = 3")).contains("unknown field"));
        assert!(
            err(&DEFAULTS.replace("shared_buffers_mb = 512", "shared_buffers_mb = \"lots\"")).contains("invalid type")
        );
        assert!(err("").contains("missing field"));
    }
}
