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
    pub plant: PlantConfig,
    pub cloud: CloudSection,
    pub simulator: SimulatorConfig,
}

/// The cloud node (`floorwatch cloud`, and the one `floorwatch up` runs).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CloudSection {
    pub http_port: u16,
    pub telemetry_retention_days: u32,
    pub minute_retention_days: u32,
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

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlantConfig {
    pub http_base_port: u16,
    pub stale_after_ms: i64,
    pub max_clock_skew_ms: i64,
    pub max_upload_bytes: usize,
    pub max_shelve_minutes: i64,
    pub minute_retention_days: u32,
    pub prediction_interval_minutes: i64,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimulatorConfig {
    pub seed: u64,
    /// Missing from files copied before it existed: the shipped value.
    #[serde(default = "default_steps_in_flight")]
    pub max_steps_in_flight: usize,
}

fn default_steps_in_flight() -> usize {
    8
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
        let check = |ok: bool, what: &str, value: String| if ok { Ok(()) } else { bail!("{what}, got {value}") };
        let l = &self.log;
        check(
            (1..=3650).contains(&l.telemetry_retention_days),
            "log.telemetry_retention_days must be 1..=3650",
            l.telemetry_retention_days.to_string(),
        )?;
        let c = &self.cluster;
        check(
            (16..=65_536).contains(&c.shared_buffers_mb),
            "cluster.shared_buffers_mb must be 16..=65536",
            c.shared_buffers_mb.to_string(),
        )?;
        check(
            (20..=10_000).contains(&c.max_connections),
            "cluster.max_connections must be 20..=10000",
            c.max_connections.to_string(),
        )?;
        check(
            (1..=256).contains(&self.simulator.max_steps_in_flight),
            "simulator.max_steps_in_flight must be 1..=256",
            self.simulator.max_steps_in_flight.to_string(),
        )?;
        let p = &self.plant;
        check(
            p.http_base_port == 0 || p.http_base_port >= 1024,
            "plant.http_base_port must be 0 or at least 1024",
            p.http_base_port.to_string(),
        )?;
        check(
            (1_000..=86_400_000).contains(&p.stale_after_ms),
            "plant.stale_after_ms must be 1000..=86400000",
            p.stale_after_ms.to_string(),
        )?;
        check(
            (0..=3_600_000).contains(&p.max_clock_skew_ms),
            "plant.max_clock_skew_ms must be 0..=3600000",
            p.max_clock_skew_ms.to_string(),
        )?;
        check(
            (1024..=64 * 1024 * 1024).contains(&p.max_upload_bytes),
            "plant.max_upload_bytes must be 1 KiB..=64 MiB",
            p.max_upload_bytes.to_string(),
        )?;
        check(
            (1..=10_080).contains(&p.max_shelve_minutes),
            "plant.max_shelve_minutes must be 1..=10080",
            p.max_shelve_minutes.to_string(),
        )?;
        check(
            (1..=10_080).contains(&p.prediction_interval_minutes),
            "plant.prediction_interval_minutes must be 1..=10080",
            p.prediction_interval_minutes.to_string(),
        )?;
        check(
            p.minute_retention_days >= self.log.telemetry_retention_days,
            "plant.minute_retention_days must be at least log.telemetry_retention_days",
            p.minute_retention_days.to_string(),
        )?;
        let c = &self.cloud;
        check(
            c.http_port == 0 || c.http_port >= 1024,
            "cloud.http_port must be 0 or at least 1024",
            c.http_port.to_string(),
        )?;
        check(
            (1..=3650).contains(&c.telemetry_retention_days),
            "cloud.telemetry_retention_days must be 1..=3650",
            c.telemetry_retention_days.to_string(),
        )?;
        check(
            (1..=3650).contains(&c.minute_retention_days),
            "cloud.minute_retention_days must be 1..=3650",
            c.minute_retention_days.to_string(),
        )?;
        Ok(())
    }

    /// The cloud node's settings from this configuration.
    pub fn cloud_config(&self) -> cloud::CloudConfig {
        cloud::CloudConfig {
            telemetry_retention_days: self.cloud.telemetry_retention_days,
            minute_retention_days: self.cloud.minute_retention_days,
            ..cloud::CloudConfig::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_defaults_parse() {
        let c = Config::defaults();
        assert_eq!(c.log.telemetry_retention_days, 7);
        assert_eq!(c.plant.stale_after_ms, 10_000);
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
        assert!(err(&DEFAULTS.replace("http_base_port = 8080", "http_base_port = 80")).contains("at least 1024"));
        assert!(err(&DEFAULTS.replace("minute_retention_days = 35", "minute_retention_days = 3")).contains("at least"));
        assert!(err("").contains("missing field"));
        assert!(err(&DEFAULTS.replace("http_port = 8090", "http_port = 80")).contains("cloud.http_port"));
        assert!(
            err(&DEFAULTS
                .replace("minute_retention_days = 7\n\n[simulator]", "minute_retention_days = 0\n\n[simulator]"))
            .contains("cloud.minute_retention_days")
        );
        assert!(
            err(&DEFAULTS.replace("max_steps_in_flight = 8", "max_steps_in_flight = 0")).contains("1..=256"),
            "no step in flight would never send"
        );
        let older = Config::parse(&DEFAULTS.replace("max_steps_in_flight = 8", "")).unwrap();
        assert_eq!(older.simulator.max_steps_in_flight, 8, "a file from before the setting still loads");
    }
}
