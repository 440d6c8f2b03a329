//! `cargo xtask run | test | bench | chaos | e2e | dist`: the two commands a newcomer
//! runs, the benchmarks, the chaos run, and the installable packages. Each installs what is missing (Debian packages when running as root;
//! otherwise it prints the command to run), builds, and runs.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use anyhow::{Context, Result, bail};

mod bench;
mod chaos;
mod desktop;
mod dist;
mod e2e;

const USAGE: &str = "\
usage: cargo xtask <command> [args…]

  run     set up and run the product: a live factory on this machine, and the
          supervisor's desktop app on it when there is a display
          (arguments after `run` go to `floorwatch up`)
  test    set up and run every check: formatting, clippy (warnings denied), all tests,
          the desktop app's end-to-end tests, and (as root) installing the packages
  bench   run every benchmark in release mode, three times each, and write their
          medians against their targets to BENCHMARKS.md and
          target/bench/results.json (`cargo xtask bench --help` for options)
  chaos   kill the running factory at random instants with SIGKILL (the whole
          `floorwatch up`, or one of its plant nodes, forwarders, cloud node,
          simulator or PostgreSQL) and check nothing was lost or doubled anywhere,
          then fuzz every decoder
          (`--short` for a few minutes; `cargo xtask chaos --help` for options)
  e2e     end-to-end tests of the desktop app's real window under Xvfb; screenshots
          go to target/e2e-screenshots/
  dist    build the installable packages in target/dist/: the desktop app's Debian
          package (with the floorwatch program inside) and the servers' package and
          archive with systemd units (`cargo xtask dist --help` for options)
";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("run") => run(&args[1..]),
        Some("test") => test(),
        Some("bench") => bench::run(&args[1..]),
        Some("chaos") => chaos::run(&args[1..]),
        Some("e2e") => e2e::run(),
        Some("dist") => dist::run(&args[1..]),
        Some("-h" | "--help" | "help") => {
            print!("{USAGE}");
            Ok(())
        }
        _ => {
            eprint!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Something the product or its tests need from the operating system.
struct Requirement {
    what: &'static str,
    present: fn() -> bool,
    debian_packages: &'static [&'static str],
}

fn postgres_present() -> bool {
    let versioned = std::fs::read_dir("/usr/lib/postgresql")
        .map(|dir| {
            dir.flatten().any(|e| e.path().join("bin/initdb").is_file() && e.path().join("bin/postgres").is_file())
        })
        .unwrap_or(false);
    versioned || on_path("initdb") && on_path("pg_ctl")
}

const POSTGRES: Requirement = Requirement {
    what: "PostgreSQL server binaries (initdb, pg_ctl, postgres)",
    present: postgres_present,
    debian_packages: &["postgresql"],
};

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(program).is_file()))
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0").unwrap_or(false)
}

/// Installs whatever of `requirements` is missing, or explains how to.
fn ensure(requirements: &[Requirement]) -> Result<()> {
    let missing: Vec<&Requirement> = requirements.iter().filter(|r| !(r.present)()).collect();
    if missing.is_empty() {
        return Ok(());
    }
    let mut packages: Vec<&str> = missing.iter().flat_map(|r| r.debian_packages.iter().copied()).collect();
    packages.sort_unstable();
    packages.dedup();
    for r in &missing {
        eprintln!("xtask: missing {}", r.what);
    }
    let install = format!("apt-get install -y --no-install-recommends {}", packages.join(" "));
    if !is_root() || !on_path("apt-get") {
        bail!("install the missing packages first, then run this again:\n    sudo apt-get update && sudo {install}");
    }
    // Floorwatch runs its own private clusters; do not let the package create and
    // start a system-wide one.
    let createcluster = Path::new("/etc/postgresql-common/createcluster.conf");
    if packages.iter().any(|p| p.starts_with("postgresql")) && !createcluster.exists() {
        std::fs::create_dir_all("/etc/postgresql-common")?;
        std::fs::write(createcluster, "create_main_cluster = false\n")?;
    }
    eprintln!("xtask: installing {}", packages.join(" "));
    sh(Command::new("apt-get").arg("update").arg("-q"))?;
    sh(Command::new("apt-get")
        .args(["install", "-y", "-q", "--no-install-recommends"])
        .args(&packages)
        .env("DEBIAN_FRONTEND", "noninteractive"))?;
    for r in &missing {
        if !(r.present)() {
            bail!("{} still missing after installing {}", r.what, packages.join(" "));
        }
    }
    Ok(())
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask lives in the workspace root").to_path_buf()
}

fn cargo() -> Command {
    let mut cmd = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cmd.current_dir(workspace_root());
    cmd
}

/// Runs a command, echoing it, and fails if it fails.
fn sh(cmd: &mut Command) -> Result<()> {
    let shown = format!(
        "{} {}",
        cmd.get_program().to_string_lossy(),
        cmd.get_args().map(|a| a.to_string_lossy()).collect::<Vec<_>>().join(" ")
    );
    eprintln!("xtask: $ {shown}");
    let status = cmd.status().with_context(|| format!("starting {shown}"))?;
    if !status.success() {
        bail!("`{shown}` failed ({status})");
    }
    Ok(())
}

fn run(args: &[String]) -> Result<()> {
    ensure(&[POSTGRES])?;
    sh(cargo().args(["build", "--release", "-p", "floorwatch"]))?;
    let app = if desktop::display_available() {
        Some(desktop::build()?)
    } else {
        eprintln!("xtask: no display here, so the desktop app is not opened; the factory runs without it");
        None
    };
    // Ctrl-C reaches every process of the terminal: the factory stops itself cleanly,
    // and this process waits for it instead of leaving it behind.
    ctrlc::set_handler(|| {}).context("installing the Ctrl-C handler")?;
    let floorwatch = workspace_root().join("target/release/floorwatch");
    let data_dir = desktop::data_dir(&floorwatch, args)?;
    let since = std::time::SystemTime::now();
    let mut up = Command::new(&floorwatch).arg("up").args(args).spawn().context("starting floorwatch up")?;
    let mut window = None;
    if let Some(app) = app {
        match desktop::open(&app, &data_dir, since) {
            Ok(child) => window = Some(child),
            Err(e) => eprintln!("xtask: the desktop app was not opened: {e:#}"),
        }
    }
    let status = up.wait()?;
    if let Some(mut w) = window {
        let _ = Command::new("kill").arg(w.id().to_string()).status();
        let _ = w.wait();
    }
    if !status.success() {
        bail!("floorwatch up ended with {status}");
    }
    Ok(())
}

fn test() -> Result<()> {
    ensure(&[POSTGRES])?;
    sh(cargo().args(["fmt", "--all", "--check"]))?;
    // The desktop crates need WebKitGTK to build, so they are installed before clippy.
    e2e::ensure_requirements()?;
    sh(cargo().args(["clippy", "--workspace", "--all-targets", "--", "-D", "warnings"]))?;
    // The end-to-end crate needs a display and runs under Xvfb below.
    sh(cargo().args(["test", "--workspace", "--no-fail-fast", "--exclude", e2e::CRATE]))?;
    e2e::run()?;
    // The packages as a person installs them (root only: dpkg).
    dist::test()?;
    eprintln!("xtask: every check passed");
    Ok(())
}
