//! Which operating-system user owns and runs the server: the caller, or `postgres` when
//! the caller is root (PostgreSQL refuses to run as root).
#![allow(unsafe_code)]

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command};
use std::sync::mpsc;

use anyhow::{Context, Result, anyhow, bail};
use nix::unistd::{Gid, Uid, User};

const SERVER_USER: &str = "postgres";

#[derive(Debug, Clone)]
pub(crate) enum Owner {
    /// Not root: the server runs as whoever we are.
    Caller,
    /// Root: the server runs as this ordinary user.
    User { name: String, uid: Uid, gid: Gid },
}

impl Owner {
    pub(crate) fn for_server() -> Result<Self> {
        if !Uid::effective().is_root() {
            return Ok(Owner::Caller);
        }
        let user = match User::from_name(SERVER_USER)? {
            Some(user) => user,
            None => {
                let status = Command::new("useradd")
                    .args(["--system", "--user-group", "--no-create-home", "--shell", "/usr/sbin/nologin", SERVER_USER])
                    .status()
                    .context("running useradd to create the postgres system user")?;
                if !status.success() {
                    bail!("useradd {SERVER_USER} failed ({status})");
                }
                User::from_name(SERVER_USER)?.ok_or_else(|| anyhow!("user {SERVER_USER} missing after useradd"))?
            }
        };
        Ok(Owner::User { name: user.name, uid: user.uid, gid: user.gid })
    }

    pub(crate) fn apply(&self, cmd: &mut Command) {
        if let Owner::User { uid, gid, .. } = self {
            cmd.uid(uid.as_raw()).gid(gid.as_raw());
        }
    }

    pub(crate) fn chown(&self, path: &Path) -> Result<()> {
        if let Owner::User { uid, gid, .. } = self {
            std::os::unix::fs::chown(path, Some(uid.as_raw()), Some(gid.as_raw()))
                .with_context(|| format!("chown {}", path.display()))?;
        }
        Ok(())
    }

    pub(crate) fn make_dir(&self, path: &Path, mode: u32) -> Result<()> {
        fs::create_dir_all(path).with_context(|| format!("creating {}", path.display()))?;
        fs::set_permissions(path, fs::Permissions::from_mode(mode))?;
        self.chown(path)
    }

    /// The server user must be able to walk down to the cluster directory.
    pub(crate) fn check_reachable(&self, dir: &Path) -> Result<()> {
        let Owner::User { name, uid, .. } = self else {
            return Ok(());
        };
        for ancestor in dir.ancestors().skip(1) {
            let meta = fs::metadata(ancestor)?;
            if meta.mode() & 0o001 == 0 && meta.uid() != uid.as_raw() {
                bail!(
                    "the server runs as the user '{name}', who cannot enter {} (not world-searchable); \
                     choose a data directory under /var/lib or /tmp (--data-dir)",
                    ancestor.display()
                );
            }
        }
        Ok(())
    }
}

/// Spawns `cmd` so that the kernel stops it (SIGINT: PostgreSQL's fast shutdown) when
/// this process ends, even by SIGKILL. The parent-death signal fires when the spawning
/// *thread* exits, so the spawn happens on a thread that lives as long as the process.
pub(crate) fn spawn_tied_to_this_process(mut cmd: Command) -> Result<Child> {
    let (tx, rx) = mpsc::channel();
    let parent = nix::unistd::getpid();
    std::thread::Builder::new().name("pg-parent".into()).spawn(move || {
        // SAFETY: the closure runs in the forked child before exec and only calls
        // prctl(2) and getppid(2), both async-signal-safe.
        unsafe {
            cmd.pre_exec(move || {
                nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGINT).map_err(std::io::Error::from)?;
                // The parent may already have died between fork and prctl.
                if nix::unistd::getppid() != parent {
                    return Err(std::io::Error::other("parent exited before the server started"));
                }
                Ok(())
            });
        }
        let _ = tx.send(cmd.spawn());
        loop {
            std::thread::park();
        }
    })?;
    rx.recv().context("the spawning thread died")?.context("starting postgres")
}
