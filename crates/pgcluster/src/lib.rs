//! A private PostgreSQL cluster in its own directory, started from the system's binaries.
//!
//! `floorwatch db start|stop|status`, `floorwatch up` and every database test use this
//! crate, so the product and its tests run against the same real server. The cluster
//! listens on loopback only (a free port chosen at start) and on a Unix socket inside
//! its own directory; TCP logins need the superuser password generated at `initdb`
//! time, which is kept in the cluster directory readable only by its owner.
//!
//! PostgreSQL refuses to run as root, so when the caller is root the server's files
//! and processes belong to the ordinary `postgres` system user (created if missing).
//!
//! Directory layout:
//!
//! ```text
//! DIR/cluster.json   port, superuser name and password (mode 0600)
//! DIR/data/          PGDATA
//! DIR/run/           Unix socket and server log
//! ```

mod binaries;
mod owner;
pub mod partitions;
pub mod testdb;

use std::fs;
use std::io::Write;
use std::net::TcpListener;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use serde::{Deserialize, Serialize};

pub use binaries::find_bin_dir;
use owner::Owner;

const SUPERUSER: &str = "postgres";
const STATE_FILE: &str = "cluster.json";
/// How long a start waits for crash recovery: replaying up to `max_wal_size` of WAL
/// on a loaded machine takes minutes, not seconds.
const RECOVERY_TIMEOUT: Duration = Duration::from_secs(900);
/// Starts tried while the processes of a killed server are still leaving.
const START_ATTEMPTS: u64 = 8;
/// How long a postmaster just launched has to write its pid file.
const LAUNCH_GRACE: Duration = Duration::from_secs(5);

/// Settings written into the cluster's configuration at every start.
#[derive(Debug, Clone)]
pub struct Options {
    /// `false` turns off fsync and full-page writes: much faster, and a crash of the
    /// machine may corrupt the cluster. Only for throw-away test clusters.
    pub durable: bool,
    pub shared_buffers_mb: u32,
    pub max_connections: u32,
}

impl Default for Options {
    fn default() -> Self {
        Options { durable: true, shared_buffers_mb: 512, max_connections: 200 }
    }
}

impl Options {
    /// Settings for a cluster that lives only as long as a test run.
    pub fn for_tests() -> Self {
        Options { durable: false, shared_buffers_mb: 128, max_connections: 300 }
    }
}

/// What is stored in `DIR/cluster.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct State {
    port: u16,
    superuser: String,
    password: String,
}

/// Whether the server of a cluster directory is running.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    /// No cluster has been initialised in the directory.
    Missing,
    Stopped,
    Running {
        port: u16,
        pid: u32,
    },
}

/// A cluster directory and the binaries that serve it.
#[derive(Debug, Clone)]
pub struct Cluster {
    dir: PathBuf,
    bin: PathBuf,
    owner: Owner,
    options: Options,
}

impl Cluster {
    /// Prepares to manage the cluster in `dir` (nothing is created yet).
    pub fn new(dir: impl Into<PathBuf>, options: Options) -> Result<Self> {
        let dir = dir.into();
        let dir = if dir.is_absolute() { dir } else { std::env::current_dir()?.join(dir) };
        Ok(Cluster { dir, bin: find_bin_dir()?, owner: Owner::for_server()?, options })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }

    fn run_dir(&self) -> PathBuf {
        self.dir.join("run")
    }

    pub fn log_file(&self) -> PathBuf {
        self.run_dir().join("postgres.log")
    }

    fn state(&self) -> Result<State> {
        let path = self.dir.join(STATE_FILE);
        let text = fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
        serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
    }

    fn write_state(&self, state: &State) -> Result<()> {
        let path = self.dir.join(STATE_FILE);
        let tmp = self.dir.join(format!("{STATE_FILE}.tmp"));
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .with_context(|| format!("writing {}", tmp.display()))?;
        file.write_all(serde_json::to_string_pretty(state)?.as_bytes())?;
        file.sync_all()?;
        fs::rename(&tmp, &path)?;
        Ok(())
    }

    pub fn is_initialised(&self) -> bool {
        self.data_dir().join("PG_VERSION").exists() && self.dir.join(STATE_FILE).exists()
    }

    /// Runs `initdb` unless the directory already holds a cluster.
    pub fn init(&self) -> Result<()> {
        if self.is_initialised() {
            return Ok(());
        }
        fs::create_dir_all(&self.dir).with_context(|| format!("creating {}", self.dir.display()))?;
        self.owner.check_reachable(&self.dir)?;
        let data = self.data_dir();
        if data.exists() {
            // A previous initdb died half-way: start over rather than trust it.
            fs::remove_dir_all(&data).with_context(|| format!("removing incomplete {}", data.display()))?;
        }
        self.owner.make_dir(&data, 0o700)?;
        self.owner.make_dir(&self.run_dir(), 0o700)?;

        let password = random_hex(24)?;
        let pwfile = self.run_dir().join("initdb.pw");
        fs::write(&pwfile, format!("{password}\n"))?;
        fs::set_permissions(&pwfile, fs::Permissions::from_mode(0o600))?;
        self.owner.chown(&pwfile)?;

        let mut cmd = self.command("initdb");
        cmd.arg("-D")
            .arg(&data)
            .args(["-U", SUPERUSER, "--auth-local=trust", "--auth-host=scram-sha-256"])
            .arg(format!("--pwfile={}", pwfile.display()))
            .args(["--encoding=UTF8", "--locale=C.UTF-8"]);
        if !self.options.durable {
            cmd.arg("--no-sync");
        }
        let result = run_quiet(cmd, "initdb");
        let _ = fs::remove_file(&pwfile);
        result?;

        let conf = data.join("postgresql.conf");
        let mut f = fs::OpenOptions::new().append(true).open(&conf)?;
        writeln!(
            f,
            "\n# Settings owned by Floorwatch, rewritten at every start.\ninclude_if_exists = 'floorwatch.conf'"
        )?;
        self.write_state(&State { port: 0, superuser: SUPERUSER.into(), password })?;
        Ok(())
    }

    /// Rewrites `floorwatch.conf` for this start, keeping the previous port if it is free.
    fn configure(&self) -> Result<u16> {
        let mut state = self.state()?;
        let port = if state.port != 0 && port_is_free(state.port) { state.port } else { free_port()? };
        state.port = port;
        self.write_state(&state)?;
        let o = &self.options;
        let durability = if o.durable { "" } else { "fsync = off\nfull_page_writes = off\nsynchronous_commit = off\n" };
        let text = format!(
            "listen_addresses = '127.0.0.1'\n\
             port = {port}\n\
             unix_socket_directories = '{run}'\n\
             max_connections = {max_conn}\n\
             shared_buffers = {sb}MB\n\
             max_wal_size = 4GB\n\
             checkpoint_timeout = 15min\n\
             log_min_messages = warning\n\
             log_min_error_statement = panic\n\
             {durability}",
            run = self.run_dir().display(),
            max_conn = o.max_connections,
            sb = o.shared_buffers_mb,
        );
        let path = self.data_dir().join("floorwatch.conf");
        fs::write(&path, text)?;
        self.owner.chown(&path)?;
        Ok(port)
    }

    /// Starts the server as a daemon that outlives this process (`pg_ctl start`), and
    /// returns once it accepts logins. A server that is already running is waited for
    /// too: after a crash of one of its processes it replays its WAL first. A server
    /// killed outright leaves a stale `postmaster.pid` and processes that take a moment
    /// to notice; the start removes the one and outlasts the others.
    pub fn start(&self) -> Result<u16> {
        Ok(self.ensure_started()?.0)
    }

    /// [`Cluster::start`], also saying whether this call launched the server (`false`:
    /// it was running and accepts logins).
    pub fn ensure_started(&self) -> Result<(u16, bool)> {
        if let Status::Running { port, .. } = self.status()? {
            match self.wait_ready(port, RECOVERY_TIMEOUT, Duration::ZERO) {
                Ok(()) => return Ok((port, false)),
                // It was dying (killed a moment ago): start a new one below.
                Err(_) if !matches!(self.status()?, Status::Running { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        if !self.is_initialised() {
            self.init()?;
        }
        let mut attempt = 0;
        loop {
            attempt += 1;
            self.remove_stale_pid_file()?;
            let port = self.configure()?;
            let mut cmd = self.command("pg_ctl");
            // `-W`: do not wait here; crash recovery may outlast any fixed pg_ctl time-out,
            // and `wait_ready` tells a slow start from a failed one.
            cmd.arg("-D").arg(self.data_dir()).arg("-l").arg(self.log_file()).args(["-W", "start"]);
            run_quiet(cmd, "pg_ctl start").with_context(|| format!("see {}", self.log_file().display()))?;
            match self.wait_ready(port, RECOVERY_TIMEOUT, LAUNCH_GRACE) {
                Ok(()) => return Ok((port, true)),
                // Processes of a killed server may still hold its shared memory for a
                // moment; the new postmaster then exits at once. Try again shortly.
                Err(e) if attempt < START_ATTEMPTS && !matches!(self.status()?, Status::Running { .. }) => {
                    tracing::warn!(attempt, error = format!("{e:#}"), "PostgreSQL did not start; trying again");
                    std::thread::sleep(Duration::from_millis(500 * attempt));
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Starts the server as a child of this process that stops when this process ends,
    /// however it ends. Used for throw-away clusters (tests, benchmarks).
    pub fn start_attached(&self) -> Result<AttachedServer> {
        if !self.is_initialised() {
            self.init()?;
        }
        if let Status::Running { .. } = self.status()? {
            bail!("the cluster in {} is already running; stop it first", self.dir.display());
        }
        self.remove_stale_pid_file()?;
        let port = self.configure()?;
        let log = fs::File::create(self.log_file())?;
        let mut cmd = self.command("postgres");
        cmd.arg("-D").arg(self.data_dir()).stdout(Stdio::null()).stderr(log);
        let child = owner::spawn_tied_to_this_process(cmd)?;
        let server = AttachedServer { child: Some(child), cluster: self.clone(), port };
        self.wait_ready(port, RECOVERY_TIMEOUT, LAUNCH_GRACE)?;
        Ok(server)
    }

    /// Stops the server (fast shutdown: running transactions are rolled back).
    pub fn stop(&self) -> Result<()> {
        if !matches!(self.status()?, Status::Running { .. }) {
            return Ok(());
        }
        let mut cmd = self.command("pg_ctl");
        cmd.arg("-D").arg(self.data_dir()).args(["-m", "fast", "-w", "-t", "60", "stop"]);
        run_quiet(cmd, "pg_ctl stop")
    }

    pub fn status(&self) -> Result<Status> {
        if !self.is_initialised() {
            return Ok(Status::Missing);
        }
        match read_postmaster_pid(&self.data_dir())? {
            Some(pid) if process_alive(pid) => {
                let port = self.state()?.port;
                Ok(Status::Running { port, pid })
            }
            _ => Ok(Status::Stopped),
        }
    }

    /// A connection string for the superuser over TCP loopback.
    pub fn url(&self, database: &str) -> Result<String> {
        let state = self.state()?;
        Ok(format!("postgresql://{}:{}@127.0.0.1:{}/{}", state.superuser, state.password, state.port, database))
    }

    fn remove_stale_pid_file(&self) -> Result<()> {
        let pid_file = self.data_dir().join("postmaster.pid");
        if let Some(pid) = read_postmaster_pid(&self.data_dir())?
            && !process_alive(pid)
        {
            tracing::warn!(pid, "removing stale postmaster.pid left by a server that is gone");
            fs::remove_file(&pid_file)?;
        }
        // The socket's lock file names the killed postmaster too. PostgreSQL checks it
        // with kill(pid, 0), which a zombie passes (a killed server whose parent never
        // reaps it), and would refuse to start while it stays.
        for entry in fs::read_dir(self.run_dir()).into_iter().flatten().flatten() {
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if !(name.starts_with(".s.PGSQL.") && name.ends_with(".lock")) {
                continue;
            }
            let pid = fs::read_to_string(entry.path())
                .ok()
                .and_then(|t| t.lines().next().and_then(|l| l.trim().parse::<u32>().ok()));
            if let Some(pid) = pid
                && !process_alive(pid)
            {
                tracing::warn!(pid, file = name, "removing a stale socket lock file left by a server that is gone");
                fs::remove_file(entry.path())?;
            }
        }
        Ok(())
    }

    /// Waits until the superuser can log in and run a query: `pg_isready` alone says yes
    /// to a server that is about to restart for crash recovery. Gives up when the
    /// postmaster is gone (after `grace`, the time a new one has to write its pid file)
    /// or when `timeout` passes; says once when it is waiting for recovery.
    fn wait_ready(&self, port: u16, timeout: Duration, grace: Duration) -> Result<()> {
        let began = Instant::now();
        let deadline = began + timeout;
        let password = self.state()?.password;
        let mut told = false;
        loop {
            let mut cmd = Command::new(self.bin.join("psql"));
            cmd.args(["-X", "-q", "-At", "-h", "127.0.0.1", "-U", SUPERUSER, "-d", "postgres", "-c", "SELECT 1"])
                .arg("-p")
                .arg(port.to_string())
                .env("PGPASSWORD", &password)
                .env("PGCONNECT_TIMEOUT", "2")
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            if cmd.status().map(|s| s.success()).unwrap_or(false) {
                if told {
                    tracing::info!(waited_s = began.elapsed().as_secs(), "PostgreSQL accepts logins again");
                }
                return Ok(());
            }
            let running = matches!(self.status()?, Status::Running { .. });
            if !running && began.elapsed() >= grace {
                bail!("PostgreSQL stopped while starting; see {}", self.log_file().display());
            }
            if Instant::now() > deadline {
                bail!("PostgreSQL did not accept logins within {timeout:?}; see {}", self.log_file().display());
            }
            if running && !told && began.elapsed() > Duration::from_secs(2) {
                told = true;
                tracing::warn!("PostgreSQL is running but not accepting logins yet (crash recovery?); waiting");
                eprintln!("PostgreSQL is recovering (replaying its write-ahead log); waiting…");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new(self.bin.join(program));
        // The server user must be able to read its working directory.
        cmd.current_dir("/");
        cmd.env_remove("PGDATA").env_remove("PGPORT").env_remove("PGHOST");
        self.owner.apply(&mut cmd);
        cmd
    }
}

/// A server started by [`Cluster::start_attached`]; dropping it stops the server.
#[derive(Debug)]
pub struct AttachedServer {
    child: Option<Child>,
    cluster: Cluster,
    port: u16,
}

impl AttachedServer {
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Process id of the postmaster (the parent of every server process).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    pub fn url(&self, database: &str) -> Result<String> {
        self.cluster.url(database)
    }

    pub fn cluster(&self) -> &Cluster {
        &self.cluster
    }

    /// Stops the server and waits for it to exit.
    pub fn stop(mut self) -> Result<()> {
        self.shutdown()
    }

    fn shutdown(&mut self) -> Result<()> {
        if let Some(mut child) = self.child.take() {
            let pid = nix::unistd::Pid::from_raw(child.id() as i32);
            // SIGINT is PostgreSQL's fast shutdown.
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT);
            child.wait().context("waiting for PostgreSQL to stop")?;
        }
        Ok(())
    }
}

impl Drop for AttachedServer {
    fn drop(&mut self) {
        let _ = self.shutdown();
    }
}

fn run_quiet(mut cmd: Command, what: &str) -> Result<()> {
    let out = cmd.output().with_context(|| format!("running {what}"))?;
    if out.status.success() {
        return Ok(());
    }
    Err(anyhow!(
        "{what} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    ))
}

fn read_postmaster_pid(data: &Path) -> Result<Option<u32>> {
    let path = data.join("postmaster.pid");
    match fs::read_to_string(&path) {
        Ok(text) => Ok(text.lines().next().and_then(|l| l.trim().parse().ok())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

fn process_alive(pid: u32) -> bool {
    // A pid can be reused after a crash; only a postgres process counts. A killed
    // postmaster whose parent does not reap it stays a zombie: that is no server.
    let postgres =
        fs::read_to_string(format!("/proc/{pid}/comm")).map(|c| c.trim().starts_with("postgres")).unwrap_or(false);
    let zombie = fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rsplit_once(") ").and_then(|(_, rest)| rest.chars().next()))
        .is_some_and(|state| state == 'Z' || state == 'X');
    postgres && !zombie
}

fn free_port() -> Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").context("finding a free loopback port")?;
    Ok(listener.local_addr()?.port())
}

fn port_is_free(port: u16) -> bool {
    TcpListener::bind(("127.0.0.1", port)).is_ok()
}

fn random_hex(bytes: usize) -> Result<String> {
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf).map_err(|e| anyhow!("no randomness for a password: {e}"))?;
    Ok(buf.iter().map(|b| format!("{b:02x}")).collect())
}

/// Whether this process runs as root (the server then runs as the `postgres` user).
pub fn running_as_root() -> bool {
    nix::unistd::Uid::effective().is_root()
}

/// The same server URL with another database name (URL or key=value form).
pub fn url_with_database(url: &str, database: &str) -> Result<String> {
    if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
        // key=value form: a later dbname overrides an earlier one.
        return Ok(format!("{url} dbname={database}"));
    }
    let (base, query) = url.split_once('?').map_or((url, None), |(b, q)| (b, Some(q)));
    let authority_start = base.find("//").map_or(0, |i| i + 2);
    let server = match base[authority_start..].find('/') {
        Some(i) => &base[..authority_start + i],
        None => base,
    };
    Ok(match query {
        Some(q) => format!("{server}/{database}?{q}"),
        None => format!("{server}/{database}"),
    })
}

/// Creates `database` on the server of `admin_url` unless it exists. Names are
/// restricted to lower-case letters, digits and `_` so they need no quoting.
pub async fn ensure_database(admin_url: &str, database: &str) -> Result<bool> {
    if database.is_empty()
        || database.len() > 63
        || !database.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    {
        bail!("database name {database:?} must be 1-63 characters of a-z, 0-9 and _");
    }
    let (client, connection) = tokio_postgres::connect(admin_url, tokio_postgres::NoTls)
        .await
        .context("connecting to the PostgreSQL server")?;
    let task = tokio::spawn(connection);
    let exists = client.query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&database]).await?.is_some();
    let created = if exists {
        false
    } else {
        match client.batch_execute(&format!("CREATE DATABASE {database}")).await {
            Ok(()) => true,
            // Another process created it between our check and our CREATE.
            Err(e) if e.code() == Some(&tokio_postgres::error::SqlState::DUPLICATE_DATABASE) => false,
            Err(e) => return Err(e).with_context(|| format!("creating database {database}")),
        }
    };
    drop(client);
    let _ = task.await;
    Ok(created)
}

#[cfg(test)]
mod tests {
    use super::url_with_database;

    #[test]
    fn database_name_is_replaced_in_both_url_forms() {
        let check = |url: &str, want: &str| assert_eq!(url_with_database(url, "t1").unwrap(), want);
        check("postgresql://u:p@127.0.0.1:5432/postgres", "postgresql://u:p@127.0.0.1:5432/t1");
        check("postgres://u@h:1/db?sslmode=disable", "postgres://u@h:1/t1?sslmode=disable");
        check("postgres://u@h:1", "postgres://u@h:1/t1");
        check("host=h user=u dbname=x", "host=h user=u dbname=x dbname=t1");
    }
}
