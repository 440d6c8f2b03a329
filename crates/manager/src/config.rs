//! The manager profile's settings: where the cloud query API is and the token it is read
//! with, and whether the app opens on the managers' view. Kept in a file of their own
//! beside the supervisor's settings, so each profile is configured without the other.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use app_core::settings_file;
pub use app_core::settings_file::ConfigError;

/// The cloud query API and the manager's token for it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CloudConnection {
    /// Base URL of the cloud node, e.g. `http://cloud.example:8090`.
    pub url: String,
    /// A `manager` or `viewer` token (`floorwatch cloud token create` prints it).
    pub token: String,
}

impl CloudConnection {
    pub fn is_configured(&self) -> bool {
        !self.url.trim().is_empty() && !self.token.trim().is_empty()
    }

    /// The cloud this cache belongs to (the token is left out: a new token reads the same data).
    pub fn source_id(&self) -> String {
        self.url.trim().trim_end_matches('/').to_string()
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        let url = self.url.trim();
        if !(url.is_empty() || url.starts_with("http://") || url.starts_with("https://")) {
            return Err(ConfigError::Invalid("the cloud URL must start with http:// or https://".into()));
        }
        if url.len() > 2048 || url.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return Err(ConfigError::Invalid("the cloud URL is too long or has spaces or control characters".into()));
        }
        if self.token.len() > 4096 {
            return Err(ConfigError::Invalid("the token is too long".into()));
        }
        if self.token.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return Err(ConfigError::Invalid("a token has no spaces or control characters".into()));
        }
        Ok(())
    }
}

/// Everything the manager profile keeps.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ManagerSettings {
    pub cloud: CloudConnection,
    /// Open the app on the managers' view (the profile chosen last).
    pub open_at_start: bool,
}

impl ManagerSettings {
    /// The settings file of the manager profile beside the supervisor's
    /// (`desktop.toml` → `desktop-manager.toml`).
    pub fn path_beside(supervisor_settings: &Path) -> PathBuf {
        let stem = supervisor_settings.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        supervisor_settings.with_file_name(format!("{stem}-manager.toml"))
    }

    /// Reads the file; a missing file is the defaults (first run).
    pub fn load(path: &Path) -> Result<ManagerSettings, ConfigError> {
        settings_file::load(path, "manager settings", ManagerSettings::parse)
    }

    pub fn parse(text: &str) -> Result<ManagerSettings, String> {
        let s: ManagerSettings = settings_file::parse_toml(text)?;
        s.cloud.validate().map_err(|e| e.to_string())?;
        Ok(s)
    }

    /// Writes the file atomically, readable only by the user (it holds a token).
    pub fn save(&self, path: &Path) -> Result<(), ConfigError> {
        self.cloud.validate()?;
        settings_file::save_toml(path, "Floorwatch desktop: the managers' view (also edited from the app).", self)
    }
}

#[derive(Deserialize)]
struct DesktopCloud {
    cloud: CloudConnection,
}

/// The cloud connection `floorwatch up` writes into its `desktop.json` (`cloud.url`,
/// `cloud.token`: a manager's token), for the demo factory.
pub fn cloud_of_desktop_json(text: &str) -> Result<CloudConnection, ConfigError> {
    #[derive(Deserialize)]
    struct Loose {
        cloud: Option<serde_json::Value>,
    }
    let loose: Loose = serde_json::from_str(text)
        .map_err(|e| ConfigError::Invalid(format!("desktop.json is not what `floorwatch up` writes: {e}")))?;
    let Some(cloud) = loose.cloud else {
        return Err(ConfigError::Invalid("desktop.json names no cloud".into()));
    };
    let c: DesktopCloud = serde_json::from_value(serde_json::json!({ "cloud": cloud }))
        .map_err(|e| ConfigError::Invalid(format!("the cloud of desktop.json: {e}")))?;
    c.cloud.validate()?;
    Ok(c.cloud)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_live_beside_the_supervisors_and_come_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = ManagerSettings::path_beside(&dir.path().join("desktop.toml"));
        assert_eq!(path.file_name().unwrap(), "desktop-manager.toml");
        assert_eq!(ManagerSettings::load(&path).unwrap(), ManagerSettings::default());
        let s = ManagerSettings {
            cloud: CloudConnection { url: "http://127.0.0.1:8090".into(), token: "fwt_a_b".into() },
            open_at_start: true,
        };
        s.save(&path).unwrap();
        assert_eq!(ManagerSettings::load(&path).unwrap(), s);
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
    }

    #[test]
    fn hostile_settings_are_refused_with_a_reason() {
        assert!(ManagerSettings::parse("[cloud]\nurl = \"ftp://x\"").unwrap_err().contains("http://"));
        assert!(ManagerSettings::parse("[cloud]\ntoken = \"a b\"").unwrap_err().contains("no spaces"));
        assert!(ManagerSettings::parse("[cloud]\ntoken = \"a\\u0000b\"").is_err());
        assert!(ManagerSettings::parse("colour = 1").unwrap_err().contains("colour"));
        let huge = format!("[cloud]\ntoken = \"{}\"", "x".repeat(5000));
        assert!(ManagerSettings::parse(&huge).unwrap_err().contains("too long"));
        assert!(ManagerSettings::parse("= broken").is_err());
    }

    #[test]
    fn the_demo_file_names_the_cloud() {
        let c = cloud_of_desktop_json(r#"{"plants":[],"cloud":{"url":"http://127.0.0.1:9","token":"fwt_m"}}"#).unwrap();
        assert_eq!((c.url.as_str(), c.token.as_str()), ("http://127.0.0.1:9", "fwt_m"));
        assert!(cloud_of_desktop_json(r#"{"plants":[]}"#).unwrap_err().to_string().contains("no cloud"));
        assert!(cloud_of_desktop_json(r#"{"cloud":{"url":"file:///etc","token":"t"}}"#).is_err());
        assert!(cloud_of_desktop_json("[").is_err());
    }
}
