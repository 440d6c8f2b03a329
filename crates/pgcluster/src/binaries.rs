//! Finds the PostgreSQL server binaries (`initdb`, `pg_ctl`, `postgres`) on this machine.

use std::path::{Path, PathBuf};

use anyhow::{Result, bail};

/// The directory holding `initdb`, `pg_ctl`, `postgres` and `pg_isready`: the newest
/// `/usr/lib/postgresql/<major>/bin` (Debian's layout), else the directory of `initdb`
/// on PATH.
pub fn find_bin_dir() -> Result<PathBuf> {
    if let Ok(dir) = std::env::var("FLOORWATCH_PG_BIN") {
        let dir = PathBuf::from(dir);
        if has_server(&dir) {
            return Ok(dir);
        }
        bail!("FLOORWATCH_PG_BIN={} does not hold initdb, pg_ctl and postgres", dir.display());
    }
    let mut versioned: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let major = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            has_server(&bin).then_some((major, bin))
        })
        .collect();
    versioned.sort();
    if let Some((_, bin)) = versioned.pop() {
        return Ok(bin);
    }
    for dir in std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()) {
        if has_server(&dir) {
            return Ok(dir);
        }
        // PATH may hold a symlink to initdb; its target's directory has the rest.
        if let Ok(target) = std::fs::canonicalize(dir.join("initdb"))
            && let Some(parent) = target.parent()
            && has_server(parent)
        {
            return Ok(parent.to_path_buf());
        }
    }
    bail!(
        "PostgreSQL server binaries (initdb, pg_ctl, postgres) not found under /usr/lib/postgresql/*/bin or on PATH; \
         install them (Debian: apt-get install postgresql) or pass --database-url to use your own server"
    )
}

fn has_server(dir: &Path) -> bool {
    ["initdb", "pg_ctl", "postgres", "pg_isready"].iter().all(|b| dir.join(b).is_file())
}
