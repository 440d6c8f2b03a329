//! The app's settings (a TOML file in the user's config directory, edited from the
//! settings screen) and the demo factory's `desktop.json` that names its plants.

use std::path::Path;

use app_core::settings_file;
use serde::{Deserialize, Serialize};

pub use app_core::settings_file::ConfigError;

/// Where the plant is, how to send commands to it, and who is signed in.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Connection {
    /// The plant, e.g. "P1".
    pub plant: String,
    /// PostgreSQL URL of the plant's read models, as the read-only role.
    pub database_url: String,
    /// Base URL of the plant node's command API.
    pub command_url: String,
    /// The signed-in person's own token (`floorwatch user add` prints it): every command
    /// carries it, and the plant names its holder in the events.
    #[serde(alias = "command_token")]
    pub token: String,
    /// Who the plant said the token belongs to, and their role, as of signing in (shown
    /// while offline; the plant decides from the token, never from these).
    pub user: String,
    pub role: String,
}

impl Connection {
    pub fn is_configured(&self) -> bool {
        !self.database_url.trim().is_empty()
    }

    /// A stable identity of the plant, so the cache never mixes two plants. The password
    /// is left out: rotating it is still the same plant.
    pub fn source_id(&self) -> String {
        let url = self.database_url.trim();
        let without_secret = match (url.find("://"), url.rfind('@')) {
            (Some(scheme), Some(at)) if at > scheme => {
                let user_part = &url[scheme + 3..at];
                let user = user_part.split(':').next().unwrap_or("");
                format!("{}{}@{}", &url[..scheme + 3], user, &url[at + 1..])
            }
            _ => url.to_string(),
        };
        format!("{}|{}", self.plant.trim(), without_secret)
    }

    /// Checks what can be checked without connecting.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let db = self.database_url.trim();
        if !(db.is_empty() || db.starts_with("postgres://") || db.starts_with("postgresql://") || db.contains("host="))
        {
            return Err(ConfigError::Invalid(
                "the database URL must look like postgresql://user:password@host:port/database".into(),
            ));
        }
        let cmd = self.command_url.trim();
        if !(cmd.is_empty() || cmd.starts_with("http://") || cmd.starts_with("https://")) {
            return Err(ConfigError::Invalid("the command URL must start with http:// or https://".into()));
        }
        if self.plant.chars().count() > 32 || self.token.len() > 4096 {
            return Err(ConfigError::Invalid("the plant name or the token is too long".into()));
        }
        if self.token.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return Err(ConfigError::Invalid("a token has no spaces or control characters".into()));
        }
        if self.user.chars().count() > 100 || self.role.chars().count() > 32 {
            return Err(ConfigError::Invalid("the signed-in name or role is too long".into()));
        }
        Ok(())
    }

    /// Whether a person is signed in (has a token) for this connection.
    pub fn signed_in(&self) -> bool {
        !self.token.trim().is_empty()
    }
}

/// light | dark | system (follow the desktop's preference).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Theme {
    #[default]
    System,
    Light,
    Dark,
}

/// The demo factory this app started, to start it again next time.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Demo {
    /// The `floorwatch up --data-dir` directory; empty when no demo is used.
    pub data_dir: String,
}

/// Everything the settings screen edits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    pub connection: Connection,
    /// A name typed in by earlier versions of the app; who acts now comes from the token.
    /// Read (so an old file still loads) and dropped.
    #[serde(rename = "operator", skip_serializing)]
    pub legacy_operator: Option<String>,
    pub theme: Theme,
    /// Show a desktop notification for every new critical anomaly.
    pub notify_critical: bool,
    pub demo: Demo,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            connection: Connection::default(),
            legacy_operator: None,
            theme: Theme::System,
            notify_critical: true,
            demo: Demo::default(),
        }
    }
}

impl Settings {
    /// Reads the settings file; a missing file is the defaults (first run).
    pub fn load(path: &Path) -> Result<Settings, ConfigError> {
        settings_file::load(path, "settings", Settings::parse)
    }

    pub fn parse(text: &str) -> Result<Settings, String> {
        let settings: Settings = settings_file::parse_toml(text)?;
        settings.validate().map_err(|e| e.to_string())?;
        Ok(settings)
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        self.connection.validate()
    }

    /// Writes the settings atomically (readable only by the user: it holds a token).
    pub fn save(&self, path: &Path) -> Result<(), ConfigError> {
        self.validate()?;
        settings_file::save_toml(
            path,
            "Floorwatch desktop settings (also edited from the app's settings screen).",
            self,
        )
    }
}

/// One plant as `floorwatch up` describes it in `desktop.json`, with the demo
/// supervisor's token the app signs in with.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct DesktopPlant {
    pub plant: String,
    #[serde(default)]
    pub name: String,
    pub database_url: String,
    pub command_url: String,
    pub token: String,
    #[serde(default)]
    pub user: String,
    #[serde(default)]
    pub role: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct DesktopFile {
    pub plants: Vec<DesktopPlant>,
}

impl DesktopFile {
    pub fn parse(text: &str) -> Result<DesktopFile, ConfigError> {
        let file: DesktopFile = serde_json::from_str(text)
            .map_err(|e| ConfigError::Invalid(format!("desktop.json is not what `floorwatch up` writes: {e}")))?;
        if file.plants.is_empty() {
            return Err(ConfigError::Invalid("desktop.json lists no plant".into()));
        }
        Ok(file)
    }

    /// The connection to the first plant.
    pub fn first_connection(&self) -> Option<Connection> {
        self.plants.first().map(|p| Connection {
            plant: p.plant.clone(),
            database_url: p.database_url.clone(),
            command_url: p.command_url.clone(),
            token: p.token.clone(),
            user: p.user.clone(),
            role: p.role.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_file_is_the_first_run_and_a_saved_one_comes_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("desktop.toml");
        let s = Settings::load(&path).unwrap();
        assert!(!s.connection.is_configured());
        let mut s2 = s.clone();
        s2.connection.database_url = "postgresql://floorwatch_reader:pw@127.0.0.1:5432/floorwatch_p1".into();
        s2.theme = Theme::Dark;
        s2.save(&path).unwrap();
        assert_eq!(Settings::load(&path).unwrap(), s2);
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
    }

    #[test]
    fn bad_settings_name_what_is_wrong() {
        assert!(Settings::parse("theme = \"purple\"").unwrap_err().contains("purple"));
        assert!(Settings::parse("colour = 1").unwrap_err().contains("colour"));
        assert!(Settings::parse("[connection]\ndatabase_url = \"mysql://x\"").unwrap_err().contains("postgresql://"));
        assert!(Settings::parse("[connection]\ntoken = \"fwt_a b\"").unwrap_err().contains("no spaces"));
        assert!(Settings::parse("[connection]\ncommand_url = \"ftp://x\"").is_err());
        assert!(Settings::parse("= broken").is_err());
    }

    #[test]
    fn settings_of_an_earlier_version_load_with_their_token_and_without_the_typed_name() {
        let old = "operator = \"anyone\"\n[connection]\nplant = \"P1\"\ncommand_token = \"t0\"\n";
        let s = Settings::parse(old).unwrap();
        assert_eq!(s.connection.token, "t0");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("desktop.toml");
        s.save(&path).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(!text.contains("operator") && !text.contains("anyone"), "{text}");
    }

    #[test]
    fn the_source_id_ignores_the_password() {
        let c = |url: &str| Connection { plant: "P1".into(), database_url: url.into(), ..Connection::default() };
        assert_eq!(c("postgresql://r:one@h:1/db").source_id(), c("postgresql://r:two@h:1/db").source_id());
        assert_ne!(c("postgresql://r:one@h:1/db").source_id(), c("postgresql://r:one@h:2/db").source_id());
        assert!(!c("postgresql://r:secret@h:1/db").source_id().contains("secret"));
    }

    #[test]
    fn the_demo_file_gives_plant_one() {
        let f = DesktopFile::parse(
            r#"{"plants":[{"plant":"P1","name":"Lyon","database_url":"postgresql://floorwatch_reader:x@127.0.0.1:5/floorwatch_p1","command_url":"http://127.0.0.1:6","token":"fwt_t","user":"Demo supervisor","role":"supervisor"}]}"#,
        )
        .unwrap();
        let c = f.first_connection().unwrap();
        assert_eq!(
            (c.plant.as_str(), c.token.as_str(), c.user.as_str(), c.role.as_str()),
            ("P1", "fwt_t", "Demo supervisor", "supervisor")
        );
        assert!(DesktopFile::parse(r#"{"plants":[]}"#).is_err());
        assert!(DesktopFile::parse("[").is_err());
    }
}
