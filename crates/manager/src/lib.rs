//! The manager's app, without its window: the 5 plants side by side from the cloud query
//! API, over a day, a week, a month or a range picked by hand; drill-down to a plant's
//! lines and machine types and to a machine's trend; this period against the previous one
//! and plant against plant in one chart; exports (PNG, SVG, CSV) stamped with what they
//! show; everything shown kept in SQLite, so the view works offline; and snapshot files.
//!
//! Every front end (the Tauri shell, tests, benchmarks) calls [`Manager`]. Time is read
//! here, at the edge, and passed to the pure modules (`range`, `kpi`, `chart`).

pub mod api;
pub mod cache;
pub mod chart;
pub mod config;
pub mod kpi;
mod live;
pub mod range;
pub mod snapshot;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use serde::{Deserialize, Serialize};
use supervisor::link::Link;
use supervisor::{AppError, ErrorCode};
use tokio::sync::{Notify, broadcast, watch};

use crate::api::{ApiError, By, CloudClient, KpiRow, LineInfo, MachineInfo, PlantInfo};
use crate::cache::{Cache, CacheError, Origin};
use crate::chart::{Chart, ChartError, Drawing, Stamp, Style, Table};
use crate::config::{ConfigError, ManagerSettings};
use crate::kpi::{Metric, Series, SeriesPoint, Summary};
use crate::range::{Bucket, Preset, Range, RangeError};

pub use supervisor::now_ms;

/// Where the manager profile keeps its files. Only the binary decides; it fills this in.
#[derive(Debug, Clone)]
pub struct Options {
    pub settings_path: PathBuf,
    /// The SQLite cache; `None` keeps it in memory.
    pub cache_path: Option<PathBuf>,
}

impl Options {
    /// Beside the supervisor's files: `desktop.toml` → `desktop-manager.toml`,
    /// `cache.sqlite` → `cache-manager.sqlite`.
    pub fn beside(supervisor: &supervisor::Options) -> Options {
        let cache_path = supervisor.cache_path.as_ref().map(|p| {
            let stem = p.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
            p.with_file_name(format!("{stem}-manager.sqlite"))
        });
        Options { settings_path: ManagerSettings::path_beside(&supervisor.settings_path), cache_path }
    }
}

/// Pushed to the screen as it happens.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Update {
    /// The link to the cloud changed.
    ManagerLink { link: Link },
    /// The cloud's read models changed: KPI rows of these plants, or other rows.
    Changed { plants: Vec<u16>, kpi_rows: usize, other_rows: usize, position: i64 },
    /// Saving a snapshot: `done` of `total` answers of the cloud fetched.
    SnapshotProgress { done: usize, total: usize, estimated_bytes: u64 },
}

/// A snapshot file written.
#[derive(Debug, Clone, Serialize)]
pub struct SavedSnapshot {
    pub path: PathBuf,
    pub bytes: u64,
    /// `bytes` as people read it ("12.3 MB").
    pub size: String,
    /// Machines whose trend the file holds.
    pub machine_trends: usize,
    /// Why the file holds only what this workstation had stored, if so.
    pub notice: Option<String>,
}

/// Why fetching a snapshot's scope stopped.
enum ScopeError {
    Api(ApiError),
    /// The scope is too big for a file (the sentence says what to narrow).
    TooBig(String),
    Cancelled,
}

impl From<ApiError> for ScopeError {
    fn from(e: ApiError) -> ScopeError {
        ScopeError::Api(e)
    }
}

/// Answers of the cloud asked at once while saving a snapshot.
const SNAPSHOT_CONCURRENCY: usize = 4;

/// How a chart compares.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Compare {
    /// One line per plant (or per line / machine type when drilled down).
    #[default]
    Plants,
    /// This period against the one before, of the first plant chosen (or all together).
    Previous,
    /// One plant against another.
    TwoPlants { a: u16, b: u16 },
}

/// Which plant and grouping the view is drilled into.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Drill {
    pub plant: u16,
    pub by: By,
}

/// What the screen asks for.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ViewRequest {
    pub preset: Preset,
    /// For `custom`: the range picked.
    #[serde(default)]
    pub from_ms: Option<i64>,
    #[serde(default)]
    pub to_ms: Option<i64>,
    pub metric: Metric,
    /// Plants chosen (empty: every plant).
    #[serde(default)]
    pub plants: Vec<u16>,
    #[serde(default)]
    pub compare: Compare,
    #[serde(default)]
    pub drill: Option<Drill>,
    #[serde(default)]
    pub style: Style,
}

/// Where the numbers on screen came from.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Source {
    /// Fetched from the cloud for this view.
    Cloud,
    /// The cloud was not reachable: the cache, as of the time given.
    Cache { as_of_ms: Option<i64> },
    /// A snapshot file, made at the time given.
    Snapshot { path: String, made_at_ms: i64, scope: String, range: Range },
}

/// Everything the managers' view draws.
#[derive(Debug, Clone, Serialize)]
pub struct ManagerView {
    pub configured: bool,
    pub source: Source,
    pub link: Link,
    pub range: Range,
    pub range_label: String,
    pub plants: Vec<PlantInfo>,
    pub summaries: Vec<Summary>,
    pub table: Table,
    pub table_svg: String,
    pub chart: Chart,
    pub svg: String,
    /// The drilled plant's lines and machines.
    pub lines: Vec<LineInfo>,
    pub machines: Vec<MachineInfo>,
    /// Why the cloud's answer is not on screen, if it is not.
    pub notice: Option<String>,
}

/// A machine's trend, one chart per sensor.
#[derive(Debug, Clone, Serialize)]
pub struct MachineTrendView {
    pub machine_id: String,
    pub source: Source,
    pub resolution: String,
    pub charts: Vec<Chart>,
    pub svgs: Vec<String>,
}

pub(crate) struct Shared {
    options: Options,
    settings: RwLock<ManagerSettings>,
    settings_error: Mutex<Option<String>>,
    cache: Mutex<Cache>,
    snapshot: Mutex<Option<(PathBuf, Cache, Range)>>,
    link: watch::Sender<Link>,
    pub(crate) updates: broadcast::Sender<Update>,
    last_event: AtomicI64,
    pub(crate) as_of: AtomicI64,
    pub(crate) reconnect: Notify,
    pub(crate) generation: AtomicU64,
    pub(crate) stop: watch::Sender<bool>,
    /// A snapshot is being saved; and whether it was asked to stop.
    saving: AtomicBool,
    cancel_saving: AtomicBool,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding a lock leaves plain data behind; keep serving it.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Shared {
    pub(crate) fn settings(&self) -> ManagerSettings {
        self.settings.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub(crate) fn link(&self) -> Link {
        self.link.borrow().clone()
    }

    pub(crate) fn set_link(&self, link: Link) {
        if *self.link.borrow() != link {
            self.link.send_replace(link.clone());
            let _ = self.updates.send(Update::ManagerLink { link });
        }
    }

    /// After a change while live: the badge's position moves on, quietly.
    pub(crate) fn touch_live(&self, _now: i64) {
        let position = self.last_event_id().unwrap_or(0);
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

    pub(crate) fn last_event_id(&self) -> Option<i64> {
        Some(self.last_event.load(Ordering::SeqCst)).filter(|v| *v > 0)
    }

    /// Kept in the cache, so a restart resumes the stream where it stopped.
    pub(crate) fn set_last_event_id(&self, id: i64) {
        self.last_event.store(id, Ordering::SeqCst);
        let cache = lock(&self.cache);
        let _ = cache.set_meta("last_event_id", &id.to_string());
        let _ = cache.set_meta("as_of_ms", &now_ms().to_string());
    }
}

fn cache_err(e: CacheError) -> AppError {
    let code = match e {
        CacheError::Missing(_) => ErrorCode::NotFound,
        CacheError::Newer { .. } | CacheError::Damaged { .. } => ErrorCode::InvalidInput,
        _ => ErrorCode::Cache,
    };
    AppError::new(code, e.to_string())
}

fn chart_err(e: ChartError) -> AppError {
    let code = match e {
        ChartError::Size { .. } | ChartError::Format { .. } => ErrorCode::InvalidInput,
        _ => ErrorCode::Chart,
    };
    AppError::new(code, e.to_string())
}

fn range_err(e: RangeError) -> AppError {
    AppError::new(ErrorCode::InvalidInput, e.to_string())
}

fn config_err(e: ConfigError) -> AppError {
    let code = match e {
        ConfigError::Invalid(_) | ConfigError::Parse { .. } => ErrorCode::InvalidInput,
        _ => ErrorCode::Settings,
    };
    AppError::new(code, e.to_string())
}

/// The settings screen's part of the manager profile.
#[derive(Debug, Clone, Serialize)]
pub struct ManagerSettingsView {
    pub url: String,
    pub token_set: bool,
    pub open_at_start: bool,
    pub settings_error: Option<String>,
}

/// The app's core for managers: cheap to clone.
#[derive(Clone)]
pub struct Manager {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Manager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Manager").finish_non_exhaustive()
    }
}

fn plant_label(plants: &[PlantInfo], plant: u16) -> String {
    match plants.iter().find(|p| p.plant == plant) {
        Some(p) if !p.name.is_empty() => format!("{} {}", p.plant_id, p.name),
        Some(p) => p.plant_id.clone(),
        None => format!("P{plant}"),
    }
}

fn cell(v: Option<f64>, metric: Metric) -> String {
    match v {
        None => "—".into(),
        Some(v) if metric.is_share() => format!("{:.1} %", v * 100.0),
        Some(v) if metric.is_count() => format!("{v:.0}"),
        Some(v) if v.abs() >= 100.0 => format!("{v:.0}"),
        Some(v) => format!("{v:.1}"),
    }
}

impl Manager {
    /// Reads the settings and the cache; nothing connects until [`Manager::start`]. A
    /// damaged cache is started afresh, not fatal.
    pub fn open(options: Options) -> Result<Manager, AppError> {
        let (settings, settings_error) =
            app_core::start::settings_or_default(ManagerSettings::load(&options.settings_path));
        let mut cache = app_core::start::open_cache(options.cache_path.as_deref(), Cache::open, Cache::open_in_memory)
            .map_err(cache_err)?;
        // A cache of another cloud is not shown as this one's.
        let source = settings.cloud.source_id();
        if cache.meta("source").map_err(cache_err)?.is_some_and(|s| s != source) {
            cache.clear().map_err(cache_err)?;
        }
        cache.set_meta("source", &source).map_err(cache_err)?;
        let last_event = cache.meta("last_event_id").ok().flatten().and_then(|v| v.parse().ok()).unwrap_or(0);
        let as_of = cache.meta("as_of_ms").ok().flatten().and_then(|v| v.parse().ok()).unwrap_or(0);
        let link = if settings.cloud.is_configured() {
            Link::Connecting { as_of_ms: Some(as_of).filter(|v| *v > 0) }
        } else {
            Link::NotConfigured
        };
        let (updates, _) = broadcast::channel(256);
        Ok(Manager {
            shared: Arc::new(Shared {
                options,
                settings: RwLock::new(settings),
                settings_error: Mutex::new(settings_error),
                cache: Mutex::new(cache),
                snapshot: Mutex::new(None),
                link: watch::channel(link).0,
                updates,
                last_event: AtomicI64::new(last_event),
                as_of: AtomicI64::new(as_of),
                reconnect: Notify::new(),
                generation: AtomicU64::new(0),
                stop: watch::channel(false).0,
                saving: AtomicBool::new(false),
                cancel_saving: AtomicBool::new(false),
            }),
        })
    }

    /// Starts following the cloud's live updates, on the current tokio runtime.
    pub fn start(&self) {
        tokio::spawn(live::run(self.shared.clone()));
    }

    pub fn shutdown(&self) {
        self.shared.stop.send_replace(true);
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Update> {
        self.shared.updates.subscribe()
    }

    pub fn link(&self) -> Link {
        self.shared.link()
    }

    /// The cloud position the live stream has received everything through (kept in the
    /// cache, so the stream resumes there after a drop or a restart of the app).
    pub fn stream_position(&self) -> Option<i64> {
        self.shared.last_event_id()
    }

    pub fn settings(&self) -> ManagerSettingsView {
        let s = self.shared.settings();
        ManagerSettingsView {
            url: s.cloud.url,
            token_set: !s.cloud.token.is_empty(),
            open_at_start: s.open_at_start,
            settings_error: lock(&self.shared.settings_error).clone(),
        }
    }

    /// Connects the manager profile to a cloud (an empty token keeps the one set).
    pub fn configure(&self, url: &str, token: &str, open_at_start: bool) -> Result<(), AppError> {
        let mut s = self.shared.settings();
        s.cloud.url = url.trim().to_string();
        if !token.trim().is_empty() {
            s.cloud.token = token.trim().to_string();
        }
        s.open_at_start = open_at_start;
        self.save(s)
    }

    /// Connects to the cloud of the demo factory's `desktop.json`.
    pub fn configure_from_desktop_json(&self, path: &Path) -> Result<(), AppError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| AppError::new(ErrorCode::Demo, format!("reading {}: {e}", path.display())))?;
        let cloud = config::cloud_of_desktop_json(&text).map_err(config_err)?;
        let mut s = self.shared.settings();
        s.cloud = cloud;
        self.save(s)
    }

    fn save(&self, new: ManagerSettings) -> Result<(), AppError> {
        new.save(&self.shared.options.settings_path).map_err(config_err)?;
        *lock(&self.shared.settings_error) = None;
        let old = std::mem::replace(&mut *self.shared.settings.write().unwrap_or_else(|e| e.into_inner()), new.clone());
        if old.cloud != new.cloud {
            if old.cloud.source_id() != new.cloud.source_id() {
                let cache = lock(&self.shared.cache);
                let mut cache = cache;
                cache.clear().map_err(cache_err)?;
                cache.set_meta("source", &new.cloud.source_id()).map_err(cache_err)?;
                self.shared.last_event.store(0, Ordering::SeqCst);
                self.shared.as_of.store(0, Ordering::SeqCst);
            }
            self.shared.generation.fetch_add(1, Ordering::SeqCst);
            self.shared.set_link(if new.cloud.is_configured() {
                Link::Connecting { as_of_ms: self.shared.as_of_ms() }
            } else {
                Link::NotConfigured
            });
            self.shared.reconnect.notify_waiters();
            self.shared.reconnect.notify_one();
        }
        Ok(())
    }

    fn client(&self) -> Option<CloudClient> {
        let s = self.shared.settings();
        s.cloud.is_configured().then(|| CloudClient::new(&s.cloud))
    }

    /// Whether to ask the cloud: configured, no snapshot open, and not known to be away.
    fn online_client(&self) -> Option<CloudClient> {
        if lock(&self.shared.snapshot).is_some() {
            return None;
        }
        match self.shared.link() {
            Link::Offline { .. } | Link::NotConfigured => None,
            _ => self.client(),
        }
    }

    /// Runs `f` on the open snapshot, else on the cache.
    fn read<T>(&self, f: impl FnOnce(&mut Cache) -> Result<T, CacheError>) -> Result<T, AppError> {
        let mut snap = lock(&self.shared.snapshot);
        if let Some((_, cache, _)) = snap.as_mut() {
            return f(cache).map_err(cache_err);
        }
        drop(snap);
        f(&mut lock(&self.shared.cache)).map_err(cache_err)
    }

    fn source(&self, fetched: bool) -> Source {
        if let Some((path, cache, range)) = lock(&self.shared.snapshot).as_ref()
            && let Origin::Snapshot { made_at_ms, scope, .. } = cache.origin()
        {
            return Source::Snapshot {
                path: path.display().to_string(),
                made_at_ms: *made_at_ms,
                scope: scope.clone(),
                range: *range,
            };
        }
        if fetched { Source::Cloud } else { Source::Cache { as_of_ms: self.shared.as_of_ms() } }
    }

    /// Fetches what the request needs from the cloud into the cache; `Err` says why not.
    async fn fetch(&self, client: &CloudClient, range: &Range, request: &ViewRequest) -> Result<(), ApiError> {
        let wide = Range { from_ms: range.previous().from_ms, ..*range };
        let plants = client.plants().await?;
        let by_plant = client.kpis(&request.plants, wide.from_ms, wide.to_ms, range.bucket, By::Plant).await?;
        let drilled = match request.drill {
            Some(d) => Some((
                d,
                // This period and the one before asked apart: the API bounds one answer's
                // rows, and a week of a plant's lines by the hour is near that bound.
                {
                    let before = range.previous();
                    let mut rows = client.kpis(&[d.plant], before.from_ms, before.to_ms, range.bucket, d.by).await?;
                    rows.extend(client.kpis(&[d.plant], range.from_ms, range.to_ms, range.bucket, d.by).await?);
                    rows
                },
                client.lines(d.plant).await?,
                client.machines(d.plant).await?,
            )),
            None => None,
        };
        let mut cache = lock(&self.shared.cache);
        let stored = (|| {
            cache.store_plants(&plants)?;
            cache.store_kpis(range.bucket, By::Plant, &by_plant)?;
            if let Some((d, rows, lines, machines)) = &drilled {
                cache.store_kpis(range.bucket, d.by, rows)?;
                cache.store_lines(d.plant, lines)?;
                cache.store_machines(d.plant, machines)?;
            }
            cache.set_meta("as_of_ms", &now_ms().to_string())
        })();
        if let Err(e) = stored {
            tracing::warn!("the manager cache could not store an answer: {e}");
        }
        self.shared.as_of.store(now_ms(), Ordering::SeqCst);
        Ok(())
    }

    fn range_of(&self, request: &ViewRequest, now: i64) -> Result<Range, AppError> {
        match (request.preset, request.from_ms, request.to_ms) {
            (Preset::Custom, Some(f), Some(t)) => Range::ending(f, t).map_err(range_err),
            (Preset::Custom, _, _) => {
                Err(AppError::new(ErrorCode::InvalidInput, "pick the start and the end of the range"))
            }
            (p, _, _) => Range::preset(p, now).map_err(range_err),
        }
    }

    /// The view for a request: from the cloud when it answers (and kept in the cache),
    /// else from the cache or the open snapshot.
    pub async fn view(&self, request: &ViewRequest) -> Result<ManagerView, AppError> {
        let now = now_ms();
        let range = self.range_of(request, now)?;
        let mut notice = None;
        let mut fetched = false;
        if let Some(client) = self.online_client() {
            match self.fetch(&client, &range, request).await {
                Ok(()) => fetched = true,
                Err(e) => notice = Some(e.to_string()),
            }
        }
        let mut view = self.build(request, range, now)?;
        view.source = self.source(fetched);
        view.notice = notice;
        Ok(view)
    }

    /// The view from what is stored (cache or snapshot) alone.
    pub fn view_stored(&self, request: &ViewRequest) -> Result<ManagerView, AppError> {
        let now = now_ms();
        let range = self.range_of(request, now)?;
        let mut view = self.build(request, range, now)?;
        view.source = self.source(false);
        Ok(view)
    }

    fn build(&self, request: &ViewRequest, range: Range, now: i64) -> Result<ManagerView, AppError> {
        let wide = Range { from_ms: range.previous().from_ms, ..range };
        let (plants, rows, drilled, lines, machines) = self.read(|c| {
            let plants = c.plants()?;
            let rows = c.kpis(&wide, By::Plant, &request.plants)?;
            let (drilled, lines, machines) = match request.drill {
                Some(d) => (c.kpis(&wide, d.by, &[d.plant])?, c.lines(d.plant)?, c.machines(d.plant)?),
                None => (Vec::new(), Vec::new(), Vec::new()),
            };
            Ok((plants, rows, drilled, lines, machines))
        })?;
        let shown: Vec<u16> =
            if request.plants.is_empty() { plants.iter().map(|p| p.plant).collect() } else { request.plants.clone() };
        let plants_label = match (request.drill, request.compare) {
            (Some(d), _) => format!("P{}", d.plant),
            (None, Compare::TwoPlants { a, b }) => format!("P{a}, P{b}"),
            _ => shown.iter().map(|p| format!("P{p}")).collect::<Vec<_>>().join(", "),
        };
        let metric = request.metric;
        let label = |p: u16, g: &str| if g.is_empty() { plant_label(&plants, p) } else { g.to_string() };
        let in_range = |r: &&KpiRow| {
            let t = r.bucket_start.timestamp_millis();
            t >= range.from_ms && t < range.to_ms
        };
        let (chart_rows, title): (Vec<KpiRow>, String) = match request.drill {
            Some(d) => (
                drilled.clone(),
                format!(
                    "{} by {}",
                    plant_label(&plants, d.plant),
                    if d.by == By::Line { "line" } else { "machine type" }
                ),
            ),
            None => (rows.clone(), "Plants side by side".to_string()),
        };
        let series: Vec<Series> = match request.compare {
            Compare::Plants => kpi::series(&chart_rows, metric, &range, label, 0),
            Compare::TwoPlants { a, b } => {
                let two: Vec<KpiRow> = rows.iter().filter(|r| r.plant == a || r.plant == b).cloned().collect();
                let mut s = kpi::series(&two, metric, &range, label, 0);
                s.sort_by_key(|x| if x.label == plant_label(&plants, a) { 0 } else { 1 });
                s
            }
            Compare::Previous => {
                // The chosen group's (or the first plant's) periods, the earlier drawn over this one.
                let first = request.drill.map(|d| d.plant).or(shown.first().copied()).unwrap_or(1);
                let mine: Vec<KpiRow> = rows.iter().filter(|r| r.plant == first).cloned().collect();
                let this = kpi::series(&mine, metric, &range, |_, _| "This period".into(), 0);
                let before =
                    kpi::series(&mine, metric, &range.previous(), |_, _| "Previous period".into(), range.span_ms());
                let name = plant_label(&plants, first);
                this.into_iter().chain(before).map(|s| Series { label: format!("{name}: {}", s.label), ..s }).collect()
            }
        };
        let title = match request.compare {
            Compare::Plants => title,
            Compare::Previous => format!("{title}: this period against the previous one"),
            Compare::TwoPlants { a, b } => format!("{} against {}", plant_label(&plants, a), plant_label(&plants, b)),
        };
        let stamp = Stamp { title: title.clone(), range: range.label(), plants: plants_label.clone(), made_at_ms: now };
        let chart = Chart {
            stamp: stamp.clone(),
            y_label: metric.label().to_string(),
            share: metric.is_share(),
            from_ms: range.from_ms,
            to_ms: range.to_ms,
            series,
        };
        let table_rows: Vec<KpiRow> = match request.drill {
            Some(_) => drilled.iter().filter(in_range).cloned().collect(),
            None => rows.iter().filter(in_range).cloned().collect(),
        };
        let summaries = kpi::summarize(&table_rows);
        let first_column = match request.drill {
            Some(Drill { by: By::Line, .. }) => "Line",
            Some(Drill { by: By::MachineType, .. }) => "Machine type",
            _ => "Plant",
        };
        let table =
            summary_table(first_column, &summaries, Stamp { title: format!("{title} — totals"), ..stamp }, |p, g| {
                if g.is_empty() { plant_label(&plants, p) } else { g.to_string() }
            });
        let svg = chart::chart_svg(&chart, &request.style).map_err(chart_err)?;
        let table_svg = chart::table_svg(&table, &chart::table_style(&table, request.style.width, request.style.dark))
            .map_err(chart_err)?;
        let settings = self.shared.settings();
        Ok(ManagerView {
            configured: settings.cloud.is_configured() || lock(&self.shared.snapshot).is_some(),
            source: Source::Cloud,
            link: self.shared.link(),
            range,
            range_label: range.label(),
            plants,
            summaries,
            table,
            table_svg,
            chart,
            svg,
            lines,
            machines,
            notice: None,
        })
    }

    /// A machine's trend over the range: each sensor's mean, minimum and maximum.
    pub async fn machine_trend(&self, machine: &str, request: &ViewRequest) -> Result<MachineTrendView, AppError> {
        let now = now_ms();
        let range = self.range_of(request, now)?;
        let mut fetched = false;
        if let Some(client) = self.online_client() {
            match client.trend(machine, range.from_ms, range.to_ms).await {
                Ok(t) => {
                    let _ = lock(&self.shared.cache).store_trend(&t, range.from_ms, range.to_ms);
                    fetched = true;
                }
                Err(e @ ApiError::Refused { .. }) => return Err(AppError::new(ErrorCode::NotFound, e.to_string())),
                Err(e) => tracing::info!("machine trend from the cache: {e}"),
            }
        }
        let mut trend = self.read(|c| c.trend(machine, range.from_ms, range.to_ms))?.ok_or_else(|| {
            AppError::new(ErrorCode::NotFound, format!("no trend of {machine} is stored for this range"))
        })?;
        // A stored trend of a wider range (a snapshot's, zoomed in): the points of this one.
        let width = match trend.resolution.as_str() {
            "minute" => 60_000,
            "hour" => range::HOUR_MS,
            _ => range::DAY_MS,
        };
        for s in &mut trend.sensors {
            s.points.retain(|p| {
                let t = p.t.timestamp_millis();
                t < range.to_ms && t.saturating_add(width) > range.from_ms
            });
        }
        let mut charts = Vec::new();
        let mut svgs = Vec::new();
        for s in &trend.sensors {
            let pts = |f: fn(&api::Point) -> f64| -> Vec<SeriesPoint> {
                s.points
                    .iter()
                    .map(|p| {
                        let t = p.t.timestamp_millis();
                        SeriesPoint { x_ms: t, bucket_start_ms: t, value: Some(f(p)).filter(|v| v.is_finite()) }
                    })
                    .collect()
            };
            let chart = Chart {
                stamp: Stamp {
                    title: format!("{machine} {}", s.name),
                    range: range.label(),
                    plants: format!("P{}", trend.plant),
                    made_at_ms: now,
                },
                y_label: if s.unit.is_empty() { s.kind.clone() } else { format!("{} ({})", s.kind, s.unit) },
                share: false,
                from_ms: range.from_ms,
                to_ms: range.to_ms,
                series: vec![
                    Series { label: "mean".into(), points: pts(|p| p.mean) },
                    Series { label: "min".into(), points: pts(|p| p.min) },
                    Series { label: "max".into(), points: pts(|p| p.max) },
                ],
            };
            let style = Style { height: 260, ..request.style };
            svgs.push(chart::chart_svg(&chart, &style).map_err(chart_err)?);
            charts.push(chart);
        }
        Ok(MachineTrendView {
            machine_id: machine.to_string(),
            source: self.source(fetched),
            resolution: trend.resolution,
            charts,
            svgs,
        })
    }

    /// Writes the view's chart or table (as on screen, from what is stored) to `dir`.
    pub fn export(&self, request: &ViewRequest, what: &str, format: &str, dir: &Path) -> Result<PathBuf, AppError> {
        let view = self.view_stored(request)?;
        let drawing = match what {
            "chart" => Drawing::Chart(&view.chart),
            "table" => Drawing::Table(&view.table),
            "report" => Drawing::Report(&view.chart, &view.table),
            other => {
                return Err(AppError::new(
                    ErrorCode::InvalidInput,
                    format!("export a chart, a table or a report, not {other:?}"),
                ));
            }
        };
        if !["png", "svg", "csv"].contains(&format) {
            return Err(chart_err(ChartError::Format { got: format.to_string(), allowed: "png, svg or csv" }));
        }
        std::fs::create_dir_all(dir).map_err(|e| AppError::new(ErrorCode::Chart, format!("{}: {e}", dir.display())))?;
        let path = dir.join(format!("floorwatch-{what}-{}.{format}", now_ms()));
        chart::export(drawing, &request.style, &path, format).map_err(chart_err)?;
        Ok(path)
    }

    /// Fetches everything a snapshot of `plants` (empty: all) over `range` and the period
    /// before it holds, so it can be explored without the cloud at every level: the
    /// plants' lines and machines, KPIs by plant, line and machine type in day and hour
    /// buckets, and every machine's trend (see [`snapshot::plan`]). Refuses a scope too
    /// big for a file before fetching it; reports progress; stops when cancelled.
    /// Returns the number of machine trends fetched.
    async fn fetch_scope(&self, client: &CloudClient, plants: &[u16], range: &Range) -> Result<usize, ScopeError> {
        let cancelled = || self.shared.cancel_saving.load(Ordering::SeqCst);
        let all = client.plants().await?;
        let scope: Vec<u16> = if plants.is_empty() { all.iter().map(|p| p.plant).collect() } else { plants.to_vec() };
        let mut docs = Vec::new();
        for &p in &scope {
            if cancelled() {
                return Err(ScopeError::Cancelled);
            }
            docs.push((p, client.lines(p).await?, client.machines(p).await?));
        }
        let groups: Vec<(u16, usize, usize)> = docs
            .iter()
            .map(|(p, lines, machines)| {
                let types: std::collections::BTreeSet<&str> =
                    machines.iter().map(|m| m.machine_type.as_str()).collect();
                (*p, lines.len(), types.len())
            })
            .collect();
        // A machine without sensors has no trend.
        let machines: Vec<MachineInfo> =
            docs.iter().flat_map(|(_, _, m)| m.iter().filter(|m| m.sensors > 0).cloned()).collect();
        let plan = snapshot::plan(&scope, range, &groups, &machines);
        if let Some(why) = plan.too_big() {
            return Err(ScopeError::TooBig(why));
        }
        {
            let mut cache = lock(&self.shared.cache);
            let stored = (|| {
                cache.store_plants(&all)?;
                for (p, lines, machines) in &docs {
                    cache.store_lines(*p, lines)?;
                    cache.store_machines(*p, machines)?;
                }
                Ok::<_, CacheError>(())
            })();
            stored.map_err(|e| ApiError::Malformed(e.to_string()))?;
        }
        let total = plan.fetches.len();
        let progress = |done: usize| {
            let _ = self.shared.updates.send(Update::SnapshotProgress {
                done,
                total,
                estimated_bytes: plan.estimated_bytes,
            });
        };
        progress(0);
        let mut pending = plan.fetches.clone().into_iter();
        let mut running = tokio::task::JoinSet::new();
        let (mut done, mut trends) = (0, 0);
        loop {
            while running.len() < SNAPSHOT_CONCURRENCY
                && let Some(fetch) = pending.next()
            {
                let client = client.clone();
                running.spawn(async move {
                    match &fetch {
                        snapshot::Fetch::Kpis { plants, from_ms, to_ms, bucket, by } => client
                            .kpis(plants, *from_ms, *to_ms, *bucket, *by)
                            .await
                            .map(|rows| Fetched::Kpis(*bucket, *by, rows)),
                        snapshot::Fetch::Trend { machine, from_ms, to_ms, resolution } => {
                            match client.trend_at(machine, *from_ms, *to_ms, resolution).await {
                                Ok(t) => Ok(Fetched::Trend(Box::new(t), *from_ms, *to_ms)),
                                // A machine the cloud no longer knows is left out, not fatal.
                                Err(ApiError::Refused { .. }) => Ok(Fetched::Nothing),
                                Err(e) => Err(e),
                            }
                        }
                    }
                });
            }
            let Some(joined) = running.join_next().await else { break };
            if cancelled() {
                running.abort_all();
                return Err(ScopeError::Cancelled);
            }
            let fetched = joined.map_err(|e| ApiError::Malformed(format!("a snapshot request failed: {e}")))??;
            let cache = &mut lock(&self.shared.cache);
            let stored = match fetched {
                Fetched::Kpis(bucket, by, rows) => cache.store_kpis(bucket, by, &rows),
                Fetched::Trend(t, from_ms, to_ms) => {
                    trends += 1;
                    cache.store_trend(&t, from_ms, to_ms)
                }
                Fetched::Nothing => Ok(()),
            };
            stored.map_err(|e| ApiError::Malformed(e.to_string()))?;
            done += 1;
            // About a hundred steps whatever the size.
            if done == total || done % (total / 100).max(1) == 0 {
                progress(done);
            }
        }
        Ok(trends)
    }

    /// Saves a snapshot file of the request's plants and range into `dir`: what the cloud
    /// answers for that scope now (when it is reachable), else what the cache holds. One
    /// at a time; [`Manager::cancel_snapshot`] stops it (no file is written then).
    pub async fn save_snapshot(&self, request: &ViewRequest, dir: &Path) -> Result<SavedSnapshot, AppError> {
        let range = self.range_of(request, now_ms())?;
        if self.shared.saving.swap(true, Ordering::SeqCst) {
            return Err(AppError::new(ErrorCode::InvalidInput, "a snapshot is being saved already"));
        }
        self.shared.cancel_saving.store(false, Ordering::SeqCst);
        let result = self.save_snapshot_now(request, &range, dir).await;
        self.shared.saving.store(false, Ordering::SeqCst);
        result
    }

    async fn save_snapshot_now(
        &self,
        request: &ViewRequest,
        range: &Range,
        dir: &Path,
    ) -> Result<SavedSnapshot, AppError> {
        let mut notice = None;
        if let Some(client) = self.online_client() {
            match self.fetch_scope(&client, &request.plants, range).await {
                Ok(_) => {}
                Err(ScopeError::Cancelled) => {
                    return Err(AppError::new(ErrorCode::InvalidInput, "saving the snapshot was cancelled"));
                }
                Err(ScopeError::TooBig(why)) => return Err(AppError::new(ErrorCode::InvalidInput, why)),
                Err(ScopeError::Api(e)) if e.is_transient() => {
                    tracing::info!("the snapshot holds what the cache has: {e}");
                    notice = Some(format!(
                        "the cloud stopped answering ({e}): the snapshot holds what this workstation had stored"
                    ));
                }
                Err(ScopeError::Api(e)) => {
                    return Err(AppError::new(
                        ErrorCode::InvalidInput,
                        format!("the cloud refused the snapshot's scope: {e}"),
                    ));
                }
            }
        } else if lock(&self.shared.snapshot).is_none() {
            notice = Some("the cloud is not reachable: the snapshot holds what this workstation had stored".into());
        }
        std::fs::create_dir_all(dir).map_err(|e| AppError::new(ErrorCode::Cache, format!("{}: {e}", dir.display())))?;
        let path = dir.join(format!("floorwatch-snapshot-{}.fwsnap", now_ms()));
        let scope = if request.plants.is_empty() {
            "every plant".to_string()
        } else {
            request.plants.iter().map(|p| format!("P{p}")).collect::<Vec<_>>().join(", ")
        };
        let source = self.shared.settings().cloud.source_id();
        let machine_trends =
            self.read(|c| c.save_snapshot(&path, &request.plants, range, now_ms(), &source, &scope))?;
        let bytes = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        Ok(SavedSnapshot { path, bytes, size: snapshot::human_bytes(bytes), machine_trends, notice })
    }

    /// Stops the snapshot being saved, if any.
    pub fn cancel_snapshot(&self) {
        self.shared.cancel_saving.store(true, Ordering::SeqCst);
    }

    /// Opens a snapshot file: the view shows it, and nothing else, until it is closed.
    pub fn open_snapshot(&self, path: &Path) -> Result<Range, AppError> {
        let (cache, range) = Cache::open_snapshot(path).map_err(cache_err)?;
        *lock(&self.shared.snapshot) = Some((path.to_path_buf(), cache, range));
        Ok(range)
    }

    pub fn close_snapshot(&self) {
        *lock(&self.shared.snapshot) = None;
    }
}

/// One answer fetched for a snapshot.
enum Fetched {
    Kpis(Bucket, By, Vec<KpiRow>),
    Trend(Box<api::Trend>, i64, i64),
    Nothing,
}

fn summary_table(
    first_column: &str,
    summaries: &[Summary],
    stamp: Stamp,
    label: impl Fn(u16, &str) -> String,
) -> Table {
    let mut columns = vec![first_column.to_string()];
    columns.extend(Metric::ALL.iter().map(|m| m.label().to_string()));
    let rows = summaries
        .iter()
        .map(|s| {
            let mut r = vec![label(s.plant, &s.group)];
            r.extend(Metric::ALL.iter().map(|m| cell(m.of_summary(s), *m)));
            r
        })
        .collect();
    Table { stamp, columns, rows }
}
