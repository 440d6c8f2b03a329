//! `cargo xtask dist`: the installable packages, in `target/dist/`.
//!
//! * The desktop app as a Debian package, built by Tauri's bundler (the `tauri` command
//!   line from the npm registry, kept in `target/tools`), with the `floorwatch` program
//!   inside it as the app's sidecar (`/usr/bin/floorwatch`), so the demo factory and the
//!   simulator come with the app.
//! * The servers' package and archive: `floorwatch` with systemd units for plant nodes,
//!   forwarders and the cloud node (`packaging/server/`).
//!
//! `--install-test` then installs each package with dpkg (root only), opens the installed
//! app in a real window under Xvfb and sees its first-run screen, checks the servers'
//! units and user, and purges both, checking that nothing they installed is left.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use serde_json::json;

use crate::e2e::DESKTOP_LIBRARIES;
use crate::{Requirement, cargo, ensure, is_root, on_path, sh, workspace_root};

const USAGE: &str = "\
usage: cargo xtask dist [--debug] [--install-test]

Builds, in target/dist/:
  floorwatch-desktop_<version>_<arch>.deb   the desktop app (Tauri's bundler), with the
                                           floorwatch program inside for the demo factory
  floorwatch-server_<version>_<arch>.deb    floorwatch and systemd units for plant nodes
                                           (floorwatch-plant@N), forwarders
                                           (floorwatch-forward@N) and the cloud node
  floorwatch-server-<version>-<arch>-linux.tar.gz   the same for other distributions

  --debug         debug builds (quicker to build, much larger)
  --install-test  then, as root: install each package with dpkg, open the installed app
                  under Xvfb and see its first-run screen, and purge both again,
                  checking nothing they installed is left behind
";

const NODE: Requirement = Requirement {
    what: "Node.js and npm (to fetch Tauri's bundler)",
    present: || on_path("node") && on_path("npm"),
    debian_packages: &["nodejs", "npm"],
};

const DPKG: Requirement = Requirement {
    what: "dpkg-deb (to build the servers' package)",
    present: || on_path("dpkg-deb"),
    debian_packages: &["dpkg"],
};

/// The desktop package's name, as Tauri's bundler names it from the product name.
const DESKTOP_PACKAGE: &str = "floorwatch";
const SERVER_PACKAGE: &str = "floorwatch-server";

struct Options {
    debug: bool,
    install_test: bool,
}

fn options(args: &[String]) -> Result<Options> {
    let mut o = Options { debug: false, install_test: false };
    for arg in args {
        match arg.as_str() {
            "--debug" => o.debug = true,
            "--install-test" => o.install_test = true,
            "-h" | "--help" => {
                print!("{USAGE}");
                std::process::exit(0);
            }
            other => bail!("unknown argument {other}\n{USAGE}"),
        }
    }
    Ok(o)
}

/// What `cargo xtask dist` made.
pub(crate) struct Packages {
    desktop_deb: PathBuf,
    server_deb: PathBuf,
}

pub(crate) fn run(args: &[String]) -> Result<()> {
    let o = options(args)?;
    if o.install_test && !is_root() {
        bail!("--install-test installs packages with dpkg: run it as root");
    }
    let packages = build(o.debug)?;
    if o.install_test {
        install_test(&packages)?;
    }
    Ok(())
}

fn output(cmd: &mut Command) -> Result<String> {
    let out = cmd.output().with_context(|| format!("starting {:?}", cmd.get_program()))?;
    if !out.status.success() {
        bail!("{:?} failed: {}", cmd.get_program(), String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The host's target triple (Tauri names a sidecar after it) and Debian's name for its
/// architecture.
fn host() -> Result<(String, String)> {
    let rustc = output(Command::new("rustc").arg("-vV"))?;
    let triple =
        rustc.lines().find_map(|l| l.strip_prefix("host: ")).context("rustc -vV names no host")?.trim().to_owned();
    let arch = output(Command::new("dpkg").arg("--print-architecture"))?.trim().to_owned();
    Ok((triple, arch))
}

/// Tauri's command line, installed from the npm registry into `target/tools` unless there.
fn tauri_cli(root: &Path) -> Result<PathBuf> {
    let tools = root.join("target/tools");
    let cli = tools.join("node_modules/.bin/tauri");
    if !cli.is_file() {
        std::fs::create_dir_all(&tools)?;
        sh(Command::new("npm")
            .args(["install", "--no-audit", "--no-fund", "--prefix"])
            .arg(&tools)
            .arg("@tauri-apps/cli@^2"))?;
    }
    Ok(cli)
}

fn build(debug: bool) -> Result<Packages> {
    ensure(&[DESKTOP_LIBRARIES, NODE, DPKG])?;
    let root = workspace_root();
    let profile = if debug { "debug" } else { "release" };
    let dist = root.join("target/dist");
    if dist.is_dir() {
        std::fs::remove_dir_all(&dist)?;
    }
    std::fs::create_dir_all(&dist)?;

    let mut build = cargo();
    build.args(["build", "-p", "floorwatch"]);
    if !debug {
        build.arg("--release");
    }
    sh(&mut build)?;
    let floorwatch = root.join("target").join(profile).join("floorwatch");
    let version = output(Command::new(&floorwatch).arg("--version"))?
        .split_whitespace()
        .nth(1)
        .context("floorwatch --version printed no version")?
        .to_owned();
    let (triple, arch) = host()?;

    // The sidecar: Tauri's bundler takes `<name>-<target triple>` and installs it as
    // /usr/bin/<name> beside the app.
    let sidecar_dir = dist.join("sidecar");
    std::fs::create_dir_all(&sidecar_dir)?;
    std::fs::copy(&floorwatch, sidecar_dir.join(format!("floorwatch-{triple}")))?;
    let overlay = dist.join("tauri.dist.json");
    std::fs::write(
        &overlay,
        serde_json::to_string_pretty(&json!({
            "bundle": {
                "active": true,
                "targets": ["deb"],
                "externalBin": [sidecar_dir.join("floorwatch")],
            }
        }))?,
    )?;

    let cli = tauri_cli(&root)?;
    let mut bundle = Command::new(&cli);
    bundle.args(["build", "--ci", "--bundles", "deb", "--config"]).arg(&overlay).current_dir(root.join("src-tauri"));
    if debug {
        bundle.arg("--debug");
    }
    sh(&mut bundle)?;
    let bundled = root.join("target").join(profile).join("bundle/deb");
    let built = std::fs::read_dir(&bundled)
        .with_context(|| format!("reading {}", bundled.display()))?
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == "deb") && file_name(p).contains(&format!("_{version}_")))
        .with_context(|| format!("Tauri's bundler left no {version} .deb in {}", bundled.display()))?;
    let desktop_deb = dist.join(format!("floorwatch-desktop_{version}_{arch}.deb"));
    std::fs::copy(&built, &desktop_deb)?;

    let server_deb = server_packages(&root, &dist, &floorwatch, &version, &arch)?;
    eprintln!("xtask: packages in {}:", dist.display());
    for p in std::fs::read_dir(&dist)?.flatten().map(|e| e.path()).filter(|p| p.is_file()) {
        if p.extension().is_some_and(|e| e == "deb" || e == "gz") {
            eprintln!("    {} ({:.1} MB)", file_name(&p), std::fs::metadata(&p)?.len() as f64 / 1e6);
        }
    }
    Ok(Packages { desktop_deb, server_deb })
}

fn file_name(p: &Path) -> String {
    p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
}

/// Copies `from` to `to` with `mode`, making `to`'s directory.
fn install(from: &Path, to: &Path, mode: u32) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(to.parent().context("no parent")?)?;
    std::fs::copy(from, to).with_context(|| format!("copying {} to {}", from.display(), to.display()))?;
    std::fs::set_permissions(to, std::fs::Permissions::from_mode(mode))?;
    Ok(())
}

/// The units shipped for servers.
fn units(root: &Path) -> Result<Vec<PathBuf>> {
    let mut units: Vec<PathBuf> = std::fs::read_dir(root.join("packaging/server/systemd"))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "service"))
        .collect();
    units.sort();
    Ok(units)
}

/// The servers' Debian package (built with dpkg-deb) and the same files as an archive.
fn server_packages(root: &Path, dist: &Path, floorwatch: &Path, version: &str, arch: &str) -> Result<PathBuf> {
    let packaging = root.join("packaging/server");
    let units = units(root)?;

    let tree = dist.join("server-deb");
    install(floorwatch, &tree.join("usr/bin/floorwatch"), 0o755)?;
    for unit in &units {
        install(unit, &tree.join("lib/systemd/system").join(file_name(unit)), 0o644)?;
    }
    install(&packaging.join("floorwatch.env"), &tree.join("etc/floorwatch/floorwatch.env"), 0o640)?;
    install(&packaging.join("README"), &tree.join("usr/share/doc/floorwatch-server/README"), 0o644)?;
    install(
        &root.join("assets/floorwatch.toml"),
        &tree.join("usr/share/doc/floorwatch-server/floorwatch.toml"),
        0o644,
    )?;
    for script in ["postinst", "prerm", "postrm"] {
        install(&packaging.join("debian").join(script), &tree.join("DEBIAN").join(script), 0o755)?;
    }
    std::fs::write(tree.join("DEBIAN/conffiles"), "/etc/floorwatch/floorwatch.env\n")?;
    let installed_kib = output(Command::new("du").args(["-sk", "--exclude=DEBIAN"]).arg(&tree))?
        .split_whitespace()
        .next()
        .unwrap_or("0")
        .to_owned();
    std::fs::write(
        tree.join("DEBIAN/control"),
        format!(
            "Package: {SERVER_PACKAGE}\n\
             Version: {version}\n\
             Architecture: {arch}\n\
             Maintainer: Floorwatch <support@floorwatch.example>\n\
             Installed-Size: {installed_kib}\n\
             Depends: libc6, adduser\n\
             Recommends: postgresql\n\
             Conflicts: {DESKTOP_PACKAGE}\n\
             Section: misc\n\
             Priority: optional\n\
             Description: Floorwatch plant and cloud servers\n \
             The floorwatch program with systemd units for a plant node\n \
             (floorwatch-plant@N), the store-and-forward link of a plant's event log\n \
             to the cloud (floorwatch-forward@N) and the cloud node (floorwatch-cloud).\n"
        ),
    )?;
    let deb = dist.join(format!("{SERVER_PACKAGE}_{version}_{arch}.deb"));
    sh(Command::new("dpkg-deb").args(["--root-owner-group", "--build"]).arg(&tree).arg(&deb))?;

    let name = format!("{SERVER_PACKAGE}-{version}-{arch}-linux");
    let staged = dist.join("server-tar").join(&name);
    install(floorwatch, &staged.join("bin/floorwatch"), 0o755)?;
    for unit in &units {
        install(unit, &staged.join("systemd").join(file_name(unit)), 0o644)?;
    }
    install(&packaging.join("floorwatch.env"), &staged.join("floorwatch.env"), 0o640)?;
    install(&packaging.join("README"), &staged.join("README"), 0o644)?;
    install(&root.join("assets/floorwatch.toml"), &staged.join("floorwatch.toml"), 0o644)?;
    sh(Command::new("tar")
        .args(["--owner=0", "--group=0", "-czf"])
        .arg(dist.join(format!("{name}.tar.gz")))
        .arg("-C")
        .arg(dist.join("server-tar"))
        .arg(&name))?;
    Ok(deb)
}

/// The files (not directories) a package installed, as dpkg lists them.
fn package_files(package: &str) -> Result<Vec<PathBuf>> {
    Ok(output(Command::new("dpkg").args(["-L", package]))?
        .lines()
        .map(PathBuf::from)
        // Directories are shared (and /lib may be a link to one): files and links to files.
        .filter(|p| p.is_file() && p.symlink_metadata().is_ok_and(|m| m.is_file() || m.is_symlink()))
        .collect())
}

fn installed(package: &str) -> bool {
    Command::new("dpkg-query")
        .args(["-W", "-f=${Status}", package])
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("install ok installed"))
}

/// Purges `package` and checks that none of `files` (and nothing of `also`) is left.
fn purge(package: &str, files: &[PathBuf], also: &[&str]) -> Result<()> {
    sh(Command::new("dpkg").args(["--purge", package]))?;
    if installed(package) {
        bail!("{package} is still installed after dpkg --purge");
    }
    let left: Vec<String> = files
        .iter()
        .map(PathBuf::as_path)
        .chain(also.iter().map(Path::new))
        .filter(|p| p.exists() || p.is_symlink())
        .map(|p| p.display().to_string())
        .collect();
    if !left.is_empty() {
        bail!("purging {package} left {}", left.join(", "));
    }
    eprintln!("xtask: {package} purged; none of its {} files is left", files.len());
    Ok(())
}

fn install_test(p: &Packages) -> Result<()> {
    let root = workspace_root();
    // A package left by an earlier, interrupted run would hide what this one installs.
    for package in [DESKTOP_PACKAGE, SERVER_PACKAGE] {
        if installed(package) {
            sh(Command::new("dpkg").args(["--purge", package]))?;
        }
    }

    // The desktop app: installed, opened in a real window on its first-run screen.
    crate::e2e::ensure_requirements()?;
    let driver = crate::e2e::tauri_driver(&root)?;
    sh(Command::new("dpkg").arg("-i").arg(&p.desktop_deb))?;
    let files = package_files(DESKTOP_PACKAGE)?;
    for wanted in ["/usr/bin/floorwatch-desktop", "/usr/bin/floorwatch"] {
        if !files.iter().any(|f| f == Path::new(wanted)) {
            bail!("the desktop package does not install {wanted}");
        }
    }
    if !files.iter().any(|f| f.starts_with("/usr/share/applications")) {
        bail!("the desktop package installs no desktop entry");
    }
    sh(Command::new("/usr/bin/floorwatch").arg("--version"))?;
    let shots = root.join("target/e2e-screenshots");
    let window = sh(Command::new("xvfb-run")
        .args(["-a", "-s", "-screen 0 1280x800x24"])
        .arg(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
        .args(["test", "-p", crate::e2e::CRATE, "--test", "installed", "--", "--ignored", "--test-threads=1"])
        .current_dir(&root)
        .env("FLOORWATCH_DESKTOP_APP", "/usr/bin/floorwatch-desktop")
        .env("TAURI_DRIVER", &driver)
        .env_remove("FLOORWATCH_BIN")
        .env("FLOORWATCH_E2E_SCREENSHOTS", &shots));
    let removed = purge(DESKTOP_PACKAGE, &files, &[]);
    window?;
    removed?;

    // The servers' package: the program, the units, the user and its state directory.
    sh(Command::new("dpkg").arg("-i").arg(&p.server_deb))?;
    let files = package_files(SERVER_PACKAGE)?;
    for unit in units(&root)? {
        let at = Path::new("/lib/systemd/system").join(file_name(&unit));
        if std::fs::read(&at).ok() != Some(std::fs::read(&unit)?) {
            bail!("the servers' package does not install {} as packaging/server has it", at.display());
        }
    }
    let checks = (|| -> Result<()> {
        sh(Command::new("getent").args(["passwd", "floorwatch"]))?;
        let owner = output(Command::new("stat").args(["-c", "%U", "/var/lib/floorwatch"]))?;
        if owner.trim() != "floorwatch" {
            bail!("/var/lib/floorwatch belongs to {}, not floorwatch", owner.trim());
        }
        // The program runs as the units run it, as the service user.
        sh(Command::new("runuser").args(["-u", "floorwatch", "--", "/usr/bin/floorwatch", "plant", "--help"]))
    })();
    let removed = purge(SERVER_PACKAGE, &files, &["/var/lib/floorwatch", "/etc/floorwatch"]);
    checks?;
    removed?;
    if Command::new("getent").args(["passwd", "floorwatch"]).output().is_ok_and(|o| o.status.success()) {
        bail!("purging {SERVER_PACKAGE} left its system user floorwatch");
    }
    eprintln!("xtask: both packages installed, checked and removed cleanly");
    Ok(())
}

/// Whether `cargo xtask test` can run the install test here (it needs root for dpkg).
pub(crate) fn install_test_possible() -> bool {
    is_root() && on_path("dpkg")
}

/// The install test as `cargo xtask test` runs it: debug packages, installed and removed.
pub(crate) fn test() -> Result<()> {
    if !install_test_possible() {
        eprintln!("xtask: the package install test is skipped: it installs with dpkg and needs root");
        return Ok(());
    }
    let packages = build(true)?;
    install_test(&packages)
}
