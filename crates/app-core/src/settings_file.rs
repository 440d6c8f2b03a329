//! A profile's settings file: TOML in the user's config directory, edited from the app. A
//! missing file is the first run (the defaults); a file larger than 1 MiB is not ours; a
//! file is written whole (a temporary file renamed over it) and readable only by the user,
//! since it holds a token.

use std::path::{Path, PathBuf};

use serde::Serialize;
use serde::de::DeserializeOwned;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("reading {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("writing {path}: {source}")]
    Write { path: PathBuf, source: std::io::Error },
    /// `what` names the file's kind ("settings", "manager settings").
    #[error("{path} is not valid {what}: {message}")]
    Parse { path: PathBuf, what: &'static str, message: String },
    #[error("{0}")]
    Invalid(String),
}

/// Largest settings or desktop file read, in bytes: anything bigger is not ours.
pub const MAX_FILE_BYTES: u64 = 1 << 20;

/// Reads a settings file with `parse`; a missing file is `T::default()` (the first run).
pub fn load<T: Default>(
    path: &Path,
    what: &'static str,
    parse: impl FnOnce(&str) -> Result<T, String>,
) -> Result<T, ConfigError> {
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(T::default()),
        Err(source) => return Err(ConfigError::Read { path: path.into(), source }),
    };
    if meta.len() > MAX_FILE_BYTES {
        return Err(ConfigError::Parse { path: path.into(), what, message: "the file is larger than 1 MiB".into() });
    }
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.into(), source })?;
    parse(&text).map_err(|message| ConfigError::Parse { path: path.into(), what, message })
}

/// Parses TOML text, the parser's message as the reason when it is not.
pub fn parse_toml<T: DeserializeOwned>(text: &str) -> Result<T, String> {
    toml::from_str(text).map_err(|e| e.message().to_string())
}

/// Writes `value` as TOML under a `# header` line, atomically, with mode 0600.
pub fn save_toml<T: Serialize>(path: &Path, header: &str, value: &T) -> Result<(), ConfigError> {
    let text = toml::to_string_pretty(value).map_err(|e| ConfigError::Invalid(e.to_string()))?;
    let err = |source| ConfigError::Write { path: path.into(), source };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(err)?;
    }
    let tmp = path.with_extension("toml.tmp");
    {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let mut f =
            std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&tmp).map_err(err)?;
        f.write_all(format!("# {}\n", header.replace(['\n', '\r'], " ")).as_bytes()).map_err(err)?;
        f.write_all(text.as_bytes()).map_err(err)?;
        f.sync_all().map_err(err)?;
    }
    std::fs::rename(&tmp, path).map_err(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Default, PartialEq, serde::Deserialize, Serialize)]
    struct Demo {
        url: String,
    }

    fn parse(text: &str) -> Result<Demo, String> {
        let d: Demo = parse_toml(text)?;
        if d.url.contains('\0') { Err("a NUL in the URL".into()) } else { Ok(d) }
    }

    #[test]
    fn a_missing_file_is_the_first_run_and_a_saved_one_comes_back_private() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("deep/er/settings.toml");
        assert_eq!(load(&path, "settings", parse).unwrap(), Demo::default());
        let d = Demo { url: "http://cloud:8090".into() };
        save_toml(&path, "Floorwatch\nsettings", &d).unwrap();
        assert_eq!(load(&path, "settings", parse).unwrap(), d);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.starts_with("# Floorwatch settings\n"), "{text}");
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
    }

    #[test]
    fn oversized_garbage_and_refused_files_name_the_file_and_the_reason() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.toml");
        std::fs::write(&path, vec![b'a'; MAX_FILE_BYTES as usize + 1]).unwrap();
        let e = load(&path, "manager settings", parse).unwrap_err();
        assert!(e.to_string().contains("larger than 1 MiB") && e.to_string().contains("manager settings"), "{e}");
        std::fs::write(&path, b"url = \xff\xfe").unwrap();
        assert!(matches!(load(&path, "settings", parse), Err(ConfigError::Read { .. })));
        std::fs::write(&path, "url = [").unwrap();
        assert!(matches!(load(&path, "settings", parse), Err(ConfigError::Parse { .. })));
        std::fs::write(&path, "url = \"a\\u0000b\"").unwrap();
        let e = load(&path, "settings", parse).unwrap_err();
        assert!(e.to_string().contains("NUL"), "{e}");
        assert!(matches!(load(dir.path(), "settings", parse), Err(ConfigError::Read { .. })));
    }
}
