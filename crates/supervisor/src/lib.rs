//! The floor supervisor's app, without its window: it follows one plant's read models
//! (LISTEN/NOTIFY and since-position catch-up), keeps everything it has seen in a SQLite
//! cache so the screen survives restarts and outages, queues the supervisor's commands
//! and sends them with idempotency keys, and draws trend charts with plotters.
//!
//! Every front end (the Tauri shell, tests, benchmarks) calls [`Supervisor`]; this crate
//! knows nothing of windows. Time is read here, at the edge, and passed to the pure
//! modules (`state`, `link`, `commands`, `trend`, `chart`).

pub mod cache;
pub mod chart;
pub mod commands;
pub mod config;
pub mod demo;
pub mod error;
pub mod link;
pub mod outbox;
pub mod state;
mod sync;
pub mod timetravel;
pub mod trend;

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use serde::Serialize;
use tokio::sync::{Notify, broadcast, watch};

use crate::cache::{Cache, CacheError};
use crate::chart::{ChartStyle, Frame};
use crate::commands::{Command, CommandState, QueuedCommand};
use crate::config::Settings;
use crate::demo::DemoFactory;
pub use crate::error::{AppError, ErrorCode};
use crate::link::Link;
use crate::state::{Floor, PlantState};
use crate::trend::{Resolution, Trend, TrendPoint, Window};
use readmodel_contract::*;

/// The wall clock, read only at the edge of the crate.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// A new anomaly older than this is history, not news: no desktop notification.
const NOTIFY_WITHIN_MS: i64 = 15 * 60 * 1000;
/// Resolved anomalies listed with the open ones.
const RECENT_RESOLVED: usize = 200;
/// Resolved anomalies the app holds (in memory and in its cache) for the machine pages
/// and the anomaly list; older ones are left to the plant.
const RESOLVED_KEPT: usize = 5_000;
const CRITICAL: &str = domain::events::Severity::Critical.as_str();

/// Where the app keeps its files and finds the demo factory. Only the binary reads the
/// environment; it fills this in.
#[derive(Debug, Clone)]
pub struct Options {
    pub settings_path: PathBuf,
    /// The SQLite cache file; `None` keeps it in memory.
    pub cache_path: Option<PathBuf>,
    /// Where `floorwatch up` keeps its data when the app starts it.
    pub demo_dir: PathBuf,
    /// `FLOORWATCH_BIN`, if set.
    pub floorwatch_bin: Option<PathBuf>,
    /// The directory of the app's executable.
    pub exe_dir: Option<PathBuf>,
    /// The PATH to search for `floorwatch`.
    pub path_var: Option<String>,
}

impl Options {
    /// The usual places: settings in the user's config directory, cache and demo data in
    /// the data directory.
    pub fn standard() -> Options {
        let config = dirs::config_dir().unwrap_or_else(std::env::temp_dir).join("floorwatch");
        let data = dirs::data_local_dir().unwrap_or_else(std::env::temp_dir).join("floorwatch");
        Options {
            settings_path: config.join("desktop.toml"),
            cache_path: Some(data.join("desktop-cache.sqlite")),
            demo_dir: data.join("demo"),
            floorwatch_bin: None,
            exe_dir: None,
            path_var: None,
        }
    }
}

/// Something the screen should know, pushed as it happens.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Update {
    /// Rows that changed (sensor rows and machine history only for the watched machine).
    Delta { changes: Arc<Changes>, synced: i64, as_of_ms: i64 },
    /// The connection state changed.
    Link { link: Link },
    /// The outbox changed.
    Commands { commands: Vec<QueuedCommand> },
    /// A new critical anomaly: worth a desktop notification.
    Critical { anomaly: Box<Anomaly> },
    /// The whole picture was replaced (another plant): fetch the floor again.
    Reset,
}

/// The first screen: the floor, the connection, the outbox and the settings that matter.
#[derive(Debug, Clone, Serialize)]
pub struct FloorView {
    #[serde(flatten)]
    pub floor: Floor,
    pub link: Link,
    pub as_of_ms: Option<i64>,
    pub synced: i64,
    pub commands: Vec<QueuedCommand>,
    pub configured: bool,
    /// Who is signed in (`None`: no token, actions cannot be sent).
    pub user: Option<SignedIn>,
    pub settings_error: Option<String>,
}

/// The person the app acts as: the holder of the token in the settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct SignedIn {
    /// As the plant names them in events (empty until the plant has confirmed the token).
    pub name: String,
    pub role: String,
    /// Whether the plant confirmed the token (it could not be asked while offline).
    pub confirmed: bool,
}

/// A machine's page, less its charts.
#[derive(Debug, Clone, Serialize)]
pub struct MachineView {
    pub machine: Machine,
    pub status: Option<MachineStatus>,
    pub sensors: Vec<Sensor>,
    pub states: Vec<SensorState>,
    pub maintenance: Option<Maintenance>,
    pub predictions: Vec<Prediction>,
    pub work_orders: Vec<WorkOrder>,
    pub audit: Vec<AuditEntry>,
    pub anomalies: Vec<Anomaly>,
    /// How past predictions turned out: for this machine and for its machine type (every
    /// model version), and the machine's failures with what was predicted before them.
    pub track: MachineTrack,
}

/// A machine's track record and its type's.
#[derive(Debug, Clone, Default, Serialize)]
pub struct MachineTrack {
    pub machine: Vec<TrackRecord>,
    pub machine_type: Vec<TrackRecord>,
    /// Newest first.
    pub failures: Vec<TrackFailure>,
}

/// One drawn trend: the SVG, where its plot area is, and the points for reading values.
#[derive(Debug, Clone, Serialize)]
pub struct ChartView {
    pub sensor: Sensor,
    pub resolution: Resolution,
    pub svg: String,
    pub frame: Frame,
    pub points: Vec<TrendPoint>,
    pub marks: Vec<trend::AnomalyMark>,
    /// Whether the data came from the local cache (the plant was unreachable).
    pub from_cache: bool,
}

pub(crate) struct Shared {
    options: Options,
    cache: Mutex<Cache>,
    state: RwLock<PlantState>,
    cursors: Mutex<Cursors>,
    synced: AtomicI64,
    as_of: AtomicI64,
    link: watch::Sender<Link>,
    updates: broadcast::Sender<Update>,
    outbox_wake: Notify,
    outbox_len: AtomicUsize,
    reconnect: Notify,
    generation: AtomicU64,
    stop: watch::Sender<bool>,
    settings: RwLock<Settings>,
    settings_error: Mutex<Option<String>>,
    watched: Mutex<Option<String>>,
    query: tokio::sync::Mutex<Option<tokio_postgres::Client>>,
    demo: tokio::sync::Mutex<Option<DemoFactory>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding a lock leaves plain data behind; keep serving it.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Shared {
    pub(crate) fn settings(&self) -> Settings {
        self.settings.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn state(&self) -> std::sync::RwLockReadGuard<'_, PlantState> {
        self.state.read().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn link(&self) -> Link {
        self.link.borrow().clone()
    }

    pub(crate) fn set_link(&self, link: Link) {
        if *self.link.borrow() != link {
            self.link.send_replace(link.clone());
            let _ = self.updates.send(Update::Link { link });
        }
    }

    /// Called after a catch-up while live: the badge's position moves on, quietly.
    pub(crate) fn touch_live(&self) {
        let position = self.synced.load(Ordering::SeqCst);
        self.link.send_if_modified(|l| match l {
            Link::Live { position: p, .. } if *p != position => {
                *p = position;
                true
            }
            _ => false,
        });
    }

    pub(crate) fn as_of_ms(&self) -> Option<i64> {
        Some(self.as_of.load(Ordering::SeqCst)).filter(|v| *v > 0)
    }

    pub(crate) fn cursors(&self) -> Cursors {
        lock(&self.cursors).clone()
    }

    pub(crate) fn with_cache<T>(&self, f: impl FnOnce(&mut Cache) -> Result<T, CacheError>) -> Result<T, CacheError> {
        f(&mut lock(&self.cache))
    }

    pub(crate) fn outbox_retry_now(&self) {
        let now = now_ms();
        let _ = self.with_cache(|c| c.retry_now(now));
        self.outbox_wake.notify_one();
    }

    pub(crate) fn publish_commands(&self) {
        if let Ok(commands) = self.with_cache(|c| c.outbox()) {
            self.outbox_len.store(commands.len(), Ordering::SeqCst);
            let _ = self.updates.send(Update::Commands { commands });
        }
    }

    /// Applies one catch-up to memory, the cache and the screen.
    ///
    /// What a person has seen must be in the cache when the window closes: the cache is
    /// held from before the screen is given the rows until they are committed, so
    /// [`Shared::flush`] (at exit) waits for the rows on screen to be stored.
    pub(crate) fn apply(&self, fetched: Fetched, now: i64) -> Result<(), CacheError> {
        let mut cache = lock(&self.cache);
        let watched = lock(&self.watched).clone();
        let (delta, critical, forgotten) = {
            let mut state = self.state.write().unwrap_or_else(|e| e.into_inner());
            let critical: Vec<Anomaly> = fetched
                .changes
                .anomalies
                .iter()
                .filter(|a| a.severity == CRITICAL && !a.is_resolved() && now - a.started_at_ms < NOTIFY_WITHIN_MS)
                .filter(|a| state.anomalies.get(&a.anomaly_id).is_none_or(|old| old.severity != CRITICAL))
                .cloned()
                .collect();
            let delta = state.apply(fetched.changes.clone());
            (delta, critical, state.forget_resolved(RESOLVED_KEPT))
        };
        *lock(&self.cursors) = fetched.cursors.clone();
        self.synced.store(fetched.synced, Ordering::SeqCst);
        self.as_of.store(now, Ordering::SeqCst);
        // The screen first; the cache write (the slow part) follows.
        let for_screen = screen_delta(delta, watched.as_deref());
        if !for_screen.is_empty() {
            let _ = self.updates.send(Update::Delta {
                changes: Arc::new(for_screen),
                synced: fetched.synced,
                as_of_ms: now,
            });
        }
        for anomaly in critical {
            let _ = self.updates.send(Update::Critical { anomaly: Box::new(anomaly) });
        }
        let stored = cache
            .store(&fetched.changes, &fetched.cursors, fetched.synced, now)
            .and_then(|()| cache.forget(ReadModel::Anomalies, &forgotten));
        drop(cache);
        if self.outbox_len.load(Ordering::SeqCst) > 0 {
            self.forget_applied_commands();
            self.publish_commands();
        }
        stored
    }
}

impl Shared {
    /// Waits until every row given to the screen is committed to the cache.
    pub(crate) fn flush(&self) {
        drop(lock(&self.cache));
    }

    /// Accepted commands are shown as pending until the row they change carries their
    /// position: the projections apply them at different paces, so the slowest
    /// projection's position would keep them pending for longer than needed.
    fn forget_applied_commands(&self) {
        let Ok(commands) = self.with_cache(|c| c.outbox()) else { return };
        let synced = self.synced.load(Ordering::SeqCst);
        let applied: Vec<String> = {
            let state = self.state();
            commands
                .into_iter()
                .filter(|c| c.state == CommandState::Sent)
                .filter(|c| {
                    let Some(position) = c.position else { return false };
                    let shown = match &c.command {
                        Command::Acknowledge { anomaly_id, .. }
                        | Command::Shelve { anomaly_id, .. }
                        | Command::AddNote { anomaly_id, .. } => {
                            state.anomalies.get(anomaly_id).is_some_and(|a| a.position >= position)
                        }
                        Command::ScheduleMaintenance { machine_id, .. }
                        | Command::RecordMaintenance { machine_id, .. } => {
                            state.maintenance.get(machine_id).is_some_and(|m| m.position >= position)
                        }
                    };
                    shown || synced >= position
                })
                .map(|c| c.command_id)
                .collect()
        };
        if !applied.is_empty() && self.with_cache(|c| c.forget_applied(&applied)).is_ok() {
            self.publish_commands();
        }
    }
}

/// What the queued-command list shows as the actor before the plant has named them.
const SIGNED_IN: &str = "signed-in user";

fn signed_in(c: &config::Connection) -> Option<SignedIn> {
    c.signed_in().then(|| SignedIn { name: c.user.clone(), role: c.role.clone(), confirmed: !c.user.is_empty() })
}

/// Keeps what the screen draws: sensor rows and history only of the watched machine.
fn screen_delta(mut d: Changes, watched: Option<&str>) -> Changes {
    match watched {
        Some(m) => {
            d.sensors.retain(|s| s.machine_id == m);
            d.sensor_state.retain(|s| s.machine_id == m);
            d.predictions.retain(|p| p.machine_id == m);
            d.work_orders.retain(|w| w.machine_id == m);
            d.audit.retain(|a| a.machine_id.as_deref() == Some(m));
            d.track_failures.retain(|f| f.machine_id == m);
        }
        None => {
            d.sensors.clear();
            d.sensor_state.clear();
            d.predictions.clear();
            d.audit.clear();
            d.track_failures.clear();
        }
    }
    d
}

/// The app's core: cheap to clone, shared by every command handler.
#[derive(Clone)]
pub struct Supervisor {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Supervisor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Supervisor").finish_non_exhaustive()
    }
}

impl Supervisor {
    /// Reads the settings and the cache, so the first screen can be drawn at once. Nothing
    /// connects until [`Supervisor::start`]. A damaged cache is started afresh, not fatal.
    pub fn open(options: Options) -> Result<Supervisor, AppError> {
        let (settings, settings_error) = app_core::start::settings_or_default(Settings::load(&options.settings_path));
        let mut cache = app_core::start::open_cache(options.cache_path.as_deref(), Cache::open, Cache::open_in_memory)?;
        if settings.connection.is_configured() {
            cache.bind_to_source(&settings.connection.source_id())?;
        }
        let (state, cursors) = match cache.load() {
            Ok(loaded) => loaded,
            Err(e) => {
                tracing::warn!("cache unreadable ({e}); starting from empty");
                cache.bind_to_source("")?;
                cache.bind_to_source(&settings.connection.source_id())?;
                (PlantState::default(), Cursors::new())
            }
        };
        let synced = cache.synced_position()?;
        let as_of = cache.as_of_ms()?.unwrap_or(0);
        let outbox_len = cache.outbox()?.len();
        let link = if settings.connection.is_configured() {
            Link::Connecting { as_of_ms: Some(as_of).filter(|v| *v > 0) }
        } else {
            Link::NotConfigured
        };
        let (updates, _) = broadcast::channel(256);
        Ok(Supervisor {
            shared: Arc::new(Shared {
                options,
                cache: Mutex::new(cache),
                state: RwLock::new(state),
                cursors: Mutex::new(cursors),
                synced: AtomicI64::new(synced),
                as_of: AtomicI64::new(as_of),
                link: watch::channel(link).0,
                updates,
                outbox_wake: Notify::new(),
                outbox_len: AtomicUsize::new(outbox_len),
                reconnect: Notify::new(),
                generation: AtomicU64::new(0),
                stop: watch::channel(false).0,
                settings: RwLock::new(settings),
                settings_error: Mutex::new(settings_error),
                watched: Mutex::new(None),
                query: tokio::sync::Mutex::new(None),
                demo: tokio::sync::Mutex::new(None),
            }),
        })
    }

    /// Starts following the plant and sending queued commands, on the current tokio runtime.
    pub fn start(&self) {
        tokio::spawn(sync::run(self.shared.clone()));
        tokio::spawn(outbox::run(self.shared.clone()));
        let demo_dir = self.shared.settings().demo.data_dir;
        if !demo_dir.is_empty() {
            // The demo factory this app started last time: start it again.
            let me = self.clone();
            tokio::spawn(async move {
                if let Err(e) = me.start_demo().await {
                    tracing::warn!("restarting the demo factory: {e}");
                }
            });
        }
    }

    /// Stops following, and stops the demo factory if this app started it.
    pub async fn shutdown(&self) {
        self.shared.stop.send_replace(true);
        // A catch-up being stored now holds what the window showed last.
        let shared = self.shared.clone();
        let _ = tokio::task::spawn_blocking(move || shared.flush()).await;
        if let Some(mut demo) = self.shared.demo.lock().await.take() {
            demo.stop().await;
        }
    }

    /// Pushed updates; after `Lagged`, fetch [`Supervisor::floor`] again.
    pub fn subscribe(&self) -> broadcast::Receiver<Update> {
        self.shared.updates.subscribe()
    }

    pub fn link(&self) -> Link {
        self.shared.link()
    }

    /// Everything the first screen needs, from memory (the cache at start).
    pub fn floor(&self) -> FloorView {
        let floor = self.shared.state().floor(RECENT_RESOLVED);
        let settings = self.shared.settings();
        FloorView {
            floor,
            link: self.shared.link(),
            as_of_ms: self.shared.as_of_ms(),
            synced: self.shared.synced.load(Ordering::SeqCst),
            commands: self.commands(),
            configured: settings.connection.is_configured(),
            user: signed_in(&settings.connection),
            settings_error: lock(&self.shared.settings_error).clone(),
        }
    }

    pub fn commands(&self) -> Vec<QueuedCommand> {
        self.shared.with_cache(|c| c.outbox()).unwrap_or_default()
    }

    /// A machine's page; its sensor rows are pushed with every update from now on.
    pub fn machine(&self, machine_id: &str) -> Result<MachineView, AppError> {
        let (machine, status, sensors, states, maintenance, mut anomalies, mut track) = {
            let state = self.shared.state();
            let machine = state.machines.get(machine_id).cloned().ok_or_else(|| {
                AppError::new(ErrorCode::NotFound, format!("no machine {machine_id:?} in this plant"))
            })?;
            let (sensors, states) = state.machine_sensors(machine_id);
            let anomalies: Vec<Anomaly> =
                state.anomalies.values().filter(|a| a.machine_id == machine_id).cloned().collect();
            let track = MachineTrack {
                machine: state.track_of("machine", machine_id),
                machine_type: state.track_of("machine_type", &machine.machine_type),
                failures: Vec::new(),
            };
            (
                machine,
                state.machine_status.get(machine_id).cloned(),
                sensors,
                states,
                state.maintenance.get(machine_id).cloned(),
                anomalies,
                track,
            )
        };
        anomalies.sort_by_key(|a| std::cmp::Reverse(a.started_at_ms));
        anomalies.truncate(100);
        let (mut predictions, work_orders, audit, mut failures) =
            self.shared.with_cache(|c| c.machine_history(machine_id))?;
        predictions.sort_by_key(|p| p.predicted_at_ms);
        failures.sort_by_key(|f| std::cmp::Reverse(f.failed_at_ms));
        track.failures = failures;
        *lock(&self.shared.watched) = Some(machine_id.to_string());
        Ok(MachineView {
            machine,
            status,
            sensors,
            states,
            maintenance,
            predictions,
            work_orders,
            audit,
            anomalies,
            track,
        })
    }

    /// No machine page is open: stop pushing sensor rows.
    pub fn unwatch(&self) {
        *lock(&self.shared.watched) = None;
    }

    async fn query_client(&self) -> Option<tokio::sync::MutexGuard<'_, Option<tokio_postgres::Client>>> {
        if !self.shared.link().is_live() {
            return None;
        }
        let mut guard = self.shared.query.lock().await;
        if guard.as_ref().is_some_and(|c| c.is_closed()) {
            *guard = None;
        }
        if guard.is_none() {
            let url = self.shared.settings().connection.database_url;
            match sync::connect_query(&url).await {
                Ok(c) => *guard = Some(c),
                Err(e) => {
                    tracing::info!("history connection: {e}");
                    return None;
                }
            }
        }
        Some(guard)
    }

    /// The trends of the given sensors over `span_ms` ending at `end_ms` (now if `None`):
    /// from the plant while it is reachable (and kept in the cache), else from the cache.
    pub async fn trends(
        &self,
        sensor_ids: &[i32],
        span_ms: i64,
        end_ms: Option<i64>,
        style: ChartStyle,
    ) -> Result<Vec<ChartView>, AppError> {
        if sensor_ids.len() > 64 {
            return Err(AppError::new(ErrorCode::InvalidInput, "at most 64 charts at a time"));
        }
        let window = Window::ending_at(end_ms.unwrap_or_else(now_ms), span_ms)?;
        let resolution = window.resolution();
        let (sensors, anomalies) = {
            let state = self.shared.state();
            let sensors: Vec<Sensor> = sensor_ids
                .iter()
                .map(|id| {
                    state
                        .sensors
                        .get(id)
                        .cloned()
                        .ok_or_else(|| AppError::new(ErrorCode::NotFound, format!("no sensor {id} in this plant")))
                })
                .collect::<Result<_, _>>()?;
            let machines: HashSet<&str> = sensors.iter().map(|s| s.machine_id.as_str()).collect();
            let anomalies: Vec<Anomaly> =
                state.anomalies.values().filter(|a| machines.contains(a.machine_id.as_str())).cloned().collect();
            (sensors, anomalies)
        };
        let from_cache = !self.fetch_history(sensor_ids, window, resolution).await;
        let columns = (style.width.saturating_sub(70) / 2).max(60) as usize;
        let mut out = Vec::with_capacity(sensors.len());
        for sensor in sensors {
            let points = self.points(sensor.sensor_id, window, resolution, columns)?;
            let trend =
                Trend { marks: trend::marks(&anomalies, sensor.sensor_id, window), sensor, window, resolution, points };
            let rendered = chart::render_svg(&trend, &style)?;
            out.push(ChartView {
                sensor: trend.sensor,
                resolution,
                svg: rendered.svg,
                frame: rendered.frame,
                points: trend.points,
                marks: trend.marks,
                from_cache,
            });
        }
        Ok(out)
    }

    /// Reads the window's history from the plant into the cache; `false` if the plant
    /// could not be asked (the cache then serves what it has).
    async fn fetch_history(&self, sensor_ids: &[i32], window: Window, resolution: Resolution) -> bool {
        let Some(guard) = self.query_client().await else {
            return false;
        };
        let Some(client) = guard.as_ref() else {
            return false;
        };
        let result = match resolution {
            Resolution::Raw => {
                match history::raw(client, sensor_ids, window.from_ms - trend::MINUTE_MS, window.to_ms).await {
                    Ok(rows) => self.shared.with_cache(|c| c.store_raw(&rows)).map_err(|e| e.to_string()),
                    Err(e) => Err(e.to_string()),
                }
            }
            Resolution::Minute | Resolution::Hour => {
                let hourly = resolution == Resolution::Hour;
                match history::buckets(client, hourly, sensor_ids, window.from_ms, window.to_ms).await {
                    Ok(rows) => self
                        .shared
                        .with_cache(|c| c.store_buckets(resolution.as_str(), &rows))
                        .map_err(|e| e.to_string()),
                    Err(e) => Err(e.to_string()),
                }
            }
        };
        match result {
            Ok(()) => true,
            Err(e) => {
                tracing::info!("history from the plant failed, using the cache: {e}");
                false
            }
        }
    }

    fn points(
        &self,
        sensor_id: i32,
        window: Window,
        resolution: Resolution,
        columns: usize,
    ) -> Result<Vec<TrendPoint>, AppError> {
        Ok(match resolution {
            Resolution::Raw => {
                let chunks = self
                    .shared
                    .with_cache(|c| c.raw_range(sensor_id, window.from_ms - trend::MINUTE_MS, window.to_ms))?;
                let mut raw = Vec::new();
                for (_, bytes) in chunks {
                    match telemetry::history::decode(&bytes) {
                        Ok(points) => raw.extend(points),
                        Err(e) => tracing::warn!(sensor_id, "skipping an unreadable history chunk: {e}"),
                    }
                }
                trend::fold(trend::raw_samples(&raw), window, columns)
            }
            Resolution::Minute | Resolution::Hour => {
                let buckets = self
                    .shared
                    .with_cache(|c| c.bucket_range(resolution.as_str(), sensor_id, window.from_ms, window.to_ms))?;
                trend::fold(trend::bucket_samples(&buckets), window, columns)
            }
        })
    }

    /// Writes one sensor's chart to a PNG or SVG file.
    pub async fn export_chart(
        &self,
        sensor_id: i32,
        span_ms: i64,
        end_ms: Option<i64>,
        style: ChartStyle,
        path: PathBuf,
        format: &str,
    ) -> Result<PathBuf, AppError> {
        let charts = self.trends(&[sensor_id], span_ms, end_ms, style).await?;
        let Some(view) = charts.into_iter().next() else {
            return Err(AppError::new(ErrorCode::NotFound, format!("no sensor {sensor_id}")));
        };
        let window = Window { from_ms: view.frame.from_ms, to_ms: view.frame.to_ms };
        let trend =
            Trend { sensor: view.sensor, window, resolution: view.resolution, points: view.points, marks: view.marks };
        chart::export(&trend, &style, &path, format)?;
        Ok(path)
    }

    /// Queues a command (checked first) and sends it as soon as the plant is reachable.
    pub fn submit(&self, command: Command) -> Result<QueuedCommand, AppError> {
        let now = now_ms();
        let connection = self.shared.settings().connection;
        if !connection.is_configured() {
            return Err(AppError::new(ErrorCode::NotConfigured, "connect to a plant first (Settings)"));
        }
        if !connection.signed_in() {
            return Err(AppError::new(ErrorCode::SignIn, "sign in first: actions are sent with your own token"));
        }
        // Kept with the queued command for the list; the plant names who acts from the token.
        let by = Some(connection.user.trim()).filter(|u| !u.is_empty()).unwrap_or(SIGNED_IN).to_string();
        command.validate(&by, now)?;
        let command_id = uuid::Uuid::new_v4().to_string();
        self.shared.with_cache(|c| c.enqueue(&command_id, &by, &command, now))?;
        self.shared.publish_commands();
        self.shared.outbox_wake.notify_one();
        Ok(QueuedCommand {
            seq: 0,
            label: command.label(),
            command,
            command_id,
            by,
            created_at_ms: now,
            state: CommandState::Pending,
            attempts: 0,
            next_attempt_ms: now,
            error: None,
            position: None,
        })
    }

    /// Forgets a refused command after the user has read why.
    pub fn dismiss(&self, command_id: &str) -> Result<(), AppError> {
        if !self.shared.with_cache(|c| c.dismiss(command_id))? {
            return Err(AppError::new(ErrorCode::NotFound, "no refused command with that id"));
        }
        self.shared.publish_commands();
        Ok(())
    }

    pub fn settings(&self) -> Settings {
        self.shared.settings()
    }

    /// Saves the settings; a different plant starts from an empty cache and reconnects.
    pub fn save_settings(&self, new: Settings) -> Result<(), AppError> {
        new.validate()?;
        new.save(&self.shared.options.settings_path)?;
        *lock(&self.shared.settings_error) = None;
        let old = std::mem::replace(&mut *self.shared.settings.write().unwrap_or_else(|e| e.into_inner()), new.clone());
        if old.connection != new.connection {
            self.shared.generation.fetch_add(1, Ordering::SeqCst);
            let same_plant = old.connection.source_id() == new.connection.source_id();
            if !same_plant {
                let (state, cursors) = self.shared.with_cache(|c| {
                    c.bind_to_source(&new.connection.source_id())?;
                    c.load()
                })?;
                *self.shared.state.write().unwrap_or_else(|e| e.into_inner()) = state;
                *lock(&self.shared.cursors) = cursors;
                self.shared.synced.store(0, Ordering::SeqCst);
                self.shared.as_of.store(0, Ordering::SeqCst);
                let _ = self.shared.updates.send(Update::Reset);
            }
            self.shared.set_link(if new.connection.is_configured() {
                Link::Connecting { as_of_ms: self.shared.as_of_ms() }
            } else {
                Link::NotConfigured
            });
            self.shared.reconnect.notify_one();
            self.shared.outbox_wake.notify_one();
        }
        Ok(())
    }

    /// Signs in with a person's token (at `connection`, or the plant already connected):
    /// asks the plant who it belongs to, and keeps the token (and the name and role, for
    /// showing while offline) in the settings, with the connection. A token the plant
    /// refuses is not kept, nor the connection. When the plant cannot be reached, the token
    /// is kept unconfirmed; the plant still decides on every command.
    pub async fn sign_in(&self, token: &str, connection: Option<config::Connection>) -> Result<SignedIn, AppError> {
        let token = token.trim();
        let mut settings = self.settings();
        if let Some(c) = connection {
            settings.connection =
                config::Connection { token: String::new(), user: String::new(), role: String::new(), ..c };
        }
        settings.connection.token = token.to_owned();
        settings.connection.validate()?;
        if token.is_empty() {
            return Err(AppError::new(ErrorCode::SignIn, "paste your token (floorwatch user add prints it)"));
        }
        let confirmed = match outbox::who_am_i(&outbox::http_client(), &settings.connection).await {
            Ok(me) => {
                settings.connection.user = me.name;
                settings.connection.role = me.role;
                true
            }
            Err(outbox::WhoAmIError::Refused(message)) => return Err(AppError::new(ErrorCode::SignIn, message)),
            Err(outbox::WhoAmIError::Unreachable(message)) => {
                tracing::info!("signing in without the plant: {message}");
                settings.connection.user.clear();
                settings.connection.role.clear();
                false
            }
        };
        self.save_settings(settings.clone())?;
        let mut user =
            signed_in(&settings.connection).unwrap_or(SignedIn { name: String::new(), role: String::new(), confirmed });
        user.confirmed = confirmed;
        Ok(user)
    }

    /// Signs out: the token is forgotten; queued commands wait until someone signs in.
    pub fn sign_out(&self) -> Result<(), AppError> {
        let mut settings = self.settings();
        settings.connection.token.clear();
        settings.connection.user.clear();
        settings.connection.role.clear();
        self.save_settings(settings)
    }

    /// Whether the demo factory can be started from here (its binary was found).
    pub fn demo_available(&self) -> bool {
        self.floorwatch_bin().is_some()
    }

    fn floorwatch_bin(&self) -> Option<PathBuf> {
        let o = &self.shared.options;
        demo::find_floorwatch(o.floorwatch_bin.as_deref(), o.exe_dir.as_deref(), o.path_var.as_deref())
    }

    /// Starts `floorwatch up` on this machine and connects to its first plant.
    pub async fn start_demo(&self) -> Result<(), AppError> {
        let bin = self.floorwatch_bin().ok_or_else(|| {
            AppError::new(
                ErrorCode::Demo,
                "the floorwatch program was not found (set FLOORWATCH_BIN, or put it next to the app or on PATH)",
            )
        })?;
        let mut slot = self.shared.demo.lock().await;
        if let Some(mut old) = slot.take() {
            old.stop().await;
        }
        let dir = self.shared.options.demo_dir.clone();
        let (factory, connection) = DemoFactory::start(&bin, &dir).await?;
        *slot = Some(factory);
        drop(slot);
        let mut settings = self.settings();
        settings.connection = connection;
        settings.demo.data_dir = dir.display().to_string();
        self.save_settings(settings)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_screen_gets_sensor_rows_only_of_the_open_machine() {
        let s = |id: i32, m: &str| SensorState {
            sensor_id: id,
            machine_id: m.into(),
            value: 0.0,
            ts_ms: 0,
            status: "ok".into(),
            position: 1,
        };
        let d = Changes { sensor_state: vec![s(1, "A"), s(2, "B")], ..Changes::default() };
        assert_eq!(screen_delta(d.clone(), Some("B")).sensor_state, vec![s(2, "B")]);
        assert!(screen_delta(d, None).is_empty());
    }
}
