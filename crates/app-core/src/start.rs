//! How a profile starts: its settings (or the defaults, with the reason the file could
//! not be used, for the settings screen), and its cache (a file that cannot be opened is
//! replaced by a new one: a cache only holds what can be fetched again).

use std::path::Path;

use crate::settings_file::ConfigError;

/// The settings read, or the defaults and why the file was not used.
pub fn settings_or_default<T: Default>(loaded: Result<T, ConfigError>) -> (T, Option<String>) {
    match loaded {
        Ok(s) => (s, None),
        Err(e) => {
            tracing::warn!("{e}");
            (T::default(), Some(e.to_string()))
        }
    }
}

/// Opens the cache at `path` (a file that cannot be opened is removed and started
/// afresh), or one in memory when there is no path.
pub fn open_cache<C, E: std::fmt::Display>(
    path: Option<&Path>,
    open: impl Fn(&Path) -> Result<C, E>,
    in_memory: impl FnOnce() -> Result<C, E>,
) -> Result<C, E> {
    match path {
        Some(p) => open(p).or_else(|e| {
            tracing::warn!("cache {} unusable ({e}); starting a new one", p.display());
            let _ = std::fs::remove_file(p);
            open(p)
        }),
        None => in_memory(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unreadable_settings_give_the_defaults_and_say_why() {
        let (s, why) = settings_or_default::<u8>(Err(ConfigError::Invalid("a token has no spaces".into())));
        assert_eq!((s, why.as_deref()), (0, Some("a token has no spaces")));
        assert_eq!(settings_or_default::<u8>(Ok(7)), (7, None));
    }

    #[test]
    fn a_cache_file_that_cannot_be_opened_is_started_afresh() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cache.sqlite");
        std::fs::write(&path, b"damaged").unwrap();
        // Refuses the damaged file, accepts an absent one.
        let open = |p: &Path| if p.exists() { Err("not a cache") } else { Ok("new cache") };
        assert_eq!(open_cache(Some(&path), open, || Ok("memory")), Ok("new cache"));
        assert!(!path.exists());
        assert_eq!(open_cache(None, open, || Ok("memory")), Ok("memory"));
        // A file that still cannot be opened is an error, not a loop.
        let never = |_: &Path| Err::<&str, _>("disk full");
        assert_eq!(open_cache(Some(&path), never, || Ok("memory")), Err("disk full"));
    }
}
