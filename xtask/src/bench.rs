//! `cargo xtask bench`: every benchmark the product has, each run several times on its own
//! private cluster, summarised as medians with their spread against their targets, and
//! written to `target/bench/results.json` and `BENCHMARKS.md`.
//!
//! The benchmarks themselves are `floorwatch bench …` subcommands (and the desktop app's
//! `desktop-bench` where a virtual display is available); this module only runs them,
//! reads the figures they write and says which meet their targets. A figure that misses
//! its target is marked, never left out; a benchmark that fails is reported as failed and
//! makes the command fail after every other benchmark has run.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

use crate::{POSTGRES, cargo, ensure, on_path, sh, workspace_root};

const USAGE: &str = "\
usage: cargo xtask bench [--quick] [--runs N] [--only NAME[,NAME…]] [--no-desktop]

  --quick        smaller settings and one run of each, under ten minutes on a
                 2-core machine once built, for a first look
  --runs N       runs of each benchmark (default 3, or 1 with --quick; figures
                 are their medians)
  --only NAMES   run only these benchmarks (log, ingest, freshness, rebuild,
                 storage, api, forward, timetravel, detect, up, desktop); the
                 others' sections of BENCHMARKS.md are kept as they were
  --no-desktop   leave out the desktop app's benchmark even where Xvfb is present

Writes target/bench/results.json (every run's figures) and BENCHMARKS.md.
";

/// What a figure should be.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Target {
    AtLeast(f64),
    AtMost(f64),
}

impl Target {
    fn met(self, value: f64) -> bool {
        match self {
            Target::AtLeast(t) => value >= t,
            Target::AtMost(t) => value <= t,
        }
    }

    fn describe(self, unit: &str) -> String {
        match self {
            Target::AtLeast(t) => format!("≥ {}{}", number(t), spaced(unit)),
            Target::AtMost(t) => format!("≤ {}{}", number(t), spaced(unit)),
        }
    }
}

/// One number a benchmark writes, found by its JSON pointer in the benchmark's file. A
/// pointer to an array of numbers stands for the array's median.
struct Figure {
    pointer: &'static str,
    what: &'static str,
    unit: &'static str,
    target: Option<Target>,
    /// The figure measured in the same run that this one is compared with.
    baseline: Option<&'static str>,
}

const fn fig(pointer: &'static str, what: &'static str, unit: &'static str) -> Figure {
    Figure { pointer, what, unit, target: None, baseline: None }
}

const fn at_least(pointer: &'static str, what: &'static str, unit: &'static str, t: f64) -> Figure {
    Figure { pointer, what, unit, target: Some(Target::AtLeast(t)), baseline: None }
}

const fn at_most(pointer: &'static str, what: &'static str, unit: &'static str, t: f64) -> Figure {
    Figure { pointer, what, unit, target: Some(Target::AtMost(t)), baseline: None }
}

const fn against(mut f: Figure, baseline: &'static str) -> Figure {
    f.baseline = Some(baseline);
    f
}

/// How a benchmark is run and what it reports.
struct Bench {
    name: &'static str,
    title: &'static str,
    full: &'static [&'static str],
    quick: &'static [&'static str],
    figures: &'static [Figure],
}

const BENCHES: &[Bench] = &[
    Bench {
        name: "log",
        title: "Event log: telemetry appended, against raw COPY and one INSERT per reading",
        full: &[],
        quick: &[
            "--readings",
            "300000",
            "--insert-seconds",
            "2",
            "--delivery-events",
            "10000",
            "--latency-events",
            "400",
        ],
        figures: &[
            against(fig("/log_readings_per_s", "telemetry through the log", "readings/s"), "/copy_readings_per_s"),
            fig("/copy_readings_per_s", "baseline: binary COPY into an indexed table", "readings/s"),
            fig("/insert_readings_per_s", "baseline: one INSERT per reading", "readings/s"),
            at_least("/log_vs_copy", "log ÷ COPY", "×", 1.5),
            fig("/log_vs_insert", "log ÷ one INSERT per reading", "×"),
            fig("/delivery_events_per_s", "delivery to a checkpointing subscriber", "events/s"),
            fig("/delivery_p50_ms", "append → delivery p50", "ms"),
            at_most("/delivery_p99_ms", "append → delivery p99", "ms", 100.0),
        ],
    },
    Bench {
        name: "ingest",
        title: "Ingest: the simulator at full speed, then paced at 50,000 readings/s, against one plant node",
        full: &[],
        quick: &["--seconds", "5"],
        figures: &[
            at_least("/accepted_readings_per_s", "accepted end to end at full speed", "readings/s", 250_000.0),
            fig("/http_p99_ms", "upload p99 at full speed", "ms"),
            at_least(
                "/at_50k/accepted_readings_per_s",
                "accepted, paced at the company's load",
                "readings/s",
                49_500.0,
            ),
            at_most("/at_50k/cpu_share", "share of the machine's CPU at the company's load", "", 0.5),
            fig("/at_50k/http_p99_ms", "upload p99 at the company's load", "ms"),
        ],
    },
    Bench {
        name: "freshness",
        title: "Freshness: the whole factory at real time, reading accepted → visible to a LISTENing client",
        full: &[],
        quick: &["--seconds", "10"],
        figures: &[
            fig("/readings_per_s", "readings accepted", "readings/s"),
            fig("/freshness_p50_ms", "freshness p50", "ms"),
            at_most("/freshness_p99_ms", "freshness p99", "ms", 1000.0),
            fig("/cpu_share", "share of the machine's CPU", ""),
            fig("/max_sustained_readings_per_s", "most the projections keep up with", "readings/s"),
        ],
    },
    Bench {
        name: "rebuild",
        title: "Rebuild: every read model of a plant from its log",
        full: &[],
        quick: &["--seconds", "60"],
        figures: &[at_least("/rebuild_readings_per_s", "rebuild speed", "readings/s", 1_000_000.0)],
    },
    Bench {
        name: "storage",
        title: "Storage: bytes per reading after a simulated day, indexes included",
        full: &[],
        quick: &["--hours", "1"],
        figures: &[
            at_most("/log_bytes_per_reading", "in the log", "B", 10.0),
            at_most("/history_bytes_per_reading", "in the raw-history read model", "B", 10.0),
        ],
    },
    Bench {
        name: "api",
        title: "Cloud query API: a mix of the main queries on a cloud holding simulated days of 5 plants",
        full: &[],
        quick: &["--days", "1", "--seconds", "10"],
        figures: &[
            at_least("/requests_per_s", "requests answered at a steady 500 a second", "requests/s", 500.0),
            fig("/p50_ms", "latency p50", "ms"),
            at_most("/p99_ms", "latency p99", "ms", 20.0),
            fig("/capacity/requests_per_s", "capacity: 16 clients sending as fast as answered", "requests/s"),
            fig("/capacity/p99_ms", "latency p99 at capacity", "ms"),
            fig("/cpu_busy_at_start_percent", "machine's CPU busy when measuring began", "%"),
        ],
    },
    Bench {
        name: "forward",
        title: "Forwarding: a backlog of plant readings reaching the cloud while the plants keep ingesting",
        full: &[],
        quick: &["--backlog-readings", "1000000"],
        figures: &[
            at_least("/catchup_readings_per_s", "catch-up to the cloud's log and read models", "readings/s", 250_000.0),
            fig("/live_readings_per_s_during_catchup", "plants' own ingest meanwhile", "readings/s"),
        ],
    },
    Bench {
        name: "timetravel",
        title: "Time travel: a 10,000-sensor plant holding a simulated day, rebuilt at random instants on both clocks",
        full: &[],
        quick: &["--hours", "3", "--instants", "100"],
        figures: &[
            fig("/reconstruct_p50_ms", "one reconstruction p50", "ms"),
            at_most("/reconstruct_p99_ms", "one reconstruction p99", "ms", 500.0),
            fig("/happened_p99_ms", "as it happened, p99", "ms"),
            fig("/known_p99_ms", "as we knew it then, p99", "ms"),
            fig("/checkpoint_bytes_mean", "one checkpoint", "B"),
        ],
    },
    Bench {
        name: "detect",
        title: "Detection: points per second per core, and state per sensor",
        full: &[],
        quick: &[],
        figures: &[
            at_least("/points_per_s_per_core", "per-sensor detector", "points/s", 2_000_000.0),
            fig("/machine_model_points_per_s_per_core", "machine model", "points/s"),
            fig("/monitor_points_per_s_per_core", "both, as the monitor runs them", "points/s"),
            at_most("/state_bytes_per_sensor", "detector state per sensor", "B", 4096.0),
            fig("/machine_model_bytes_per_sensor", "machine model per sensor", "B"),
        ],
    },
    Bench {
        name: "up",
        title: "floorwatch up: the whole factory at real time, its PostgreSQL stalled for a while a third of the way in",
        full: &["--minutes", "20"],
        quick: &["--minutes", "1", "--stall-seconds", "10"],
        figures: &[
            fig("/rss_mb/after_3_min", "up's resident memory after 3 minutes", "MB"),
            fig("/rss_mb/max", "up's resident memory, highest sample", "MB"),
            fig("/rss_mb/end", "up's resident memory at the end", "MB"),
            fig("/rss_mb/growth_mb_per_hour_second_half", "growth over the second half", "MB/h"),
        ],
    },
];

/// The desktop app's benchmark: a 10,000-sensor fixture plant in a real window.
const DESKTOP: Bench = Bench {
    name: "desktop",
    title: "Desktop app: cold start from the cache, floor updates and memory at 10,000 sensors",
    full: &["--minutes", "10"],
    quick: &["--minutes", "1"],
    figures: &[
        fig("/cold_start_ms/from_webdriver_request", "cold start to first paint from the cache", "ms"),
        fig("/floor_update/render_ms_p95", "floor update of 10,000 sensors rendered, p95", "ms"),
        fig("/floor_update/upload_to_paint_ms_p95", "upload → painted, p95", "ms"),
        at_most("/memory/pss/max_mb", "app + WebKit memory (PSS), highest sample", "MB", 400.0),
    ],
};

struct Options {
    quick: bool,
    runs: Option<usize>,
    only: Option<Vec<String>>,
    desktop: bool,
}

fn options(args: &[String]) -> Result<Options> {
    let mut o = Options { quick: false, runs: None, only: None, desktop: true };
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--quick" => o.quick = true,
            "--no-desktop" => o.desktop = false,
            "--runs" => {
                let n = it.next().context("--runs needs a number")?;
                o.runs = Some(
                    n.parse().ok().filter(|n| (1..=50).contains(n)).with_context(|| format!("--runs {n}: 1 to 50"))?,
                );
            }
            "--only" => {
                let names: Vec<String> =
                    it.next().context("--only needs names")?.split(',').map(str::to_owned).collect();
                for n in &names {
                    if !BENCHES.iter().chain([&DESKTOP]).any(|b| b.name == n) {
                        bail!("--only {n}: no such benchmark\n{USAGE}");
                    }
                }
                o.only = Some(names);
            }
            "-h" | "--help" => {
                print!("{USAGE}");
                std::process::exit(0);
            }
            other => bail!("unknown argument {other}\n{USAGE}"),
        }
    }
    Ok(o)
}

/// Runs of each benchmark when `--runs` is not given: one in quick mode, else three.
fn default_runs(quick: bool) -> usize {
    if quick { 1 } else { 3 }
}

pub(crate) fn run(args: &[String]) -> Result<()> {
    let o = options(args)?;
    let run_count = o.runs.unwrap_or(default_runs(o.quick));
    ensure(&[POSTGRES])?;
    let root = workspace_root();
    let wanted = |name: &str| o.only.as_ref().is_none_or(|only| only.iter().any(|n| n == name));
    let desktop = o.desktop && wanted(DESKTOP.name) && desktop_possible();
    if o.desktop && wanted(DESKTOP.name) && !desktop {
        eprintln!("xtask: the desktop app's benchmark is left out: it needs Xvfb, xvfb-run and WebKitWebDriver");
    }

    sh(cargo().args(["build", "--release", "-p", "floorwatch"]))?;
    let floorwatch = root.join("target/release/floorwatch");
    let mut desktop_env = Vec::new();
    if desktop {
        let app = crate::desktop::build()?;
        desktop_env.push(("FLOORWATCH_DESKTOP_APP", app));
        desktop_env.push(("TAURI_DRIVER", crate::e2e::tauri_driver(&root)?));
        sh(cargo().args(["build", "--release", "-p", crate::e2e::CRATE, "--bin", "desktop-bench"]))?;
    }

    let out = root.join("target/bench");
    std::fs::create_dir_all(&out)?;
    let machine = machine();
    let mut results = Vec::new();
    for bench in BENCHES.iter().chain(desktop.then_some(&DESKTOP)).filter(|b| wanted(b.name)) {
        let args = if o.quick { bench.quick } else { bench.full };
        let mut runs = Vec::new();
        for i in 1..=run_count {
            let json = out.join(format!("{}-{i}.json", bench.name));
            let load = load_average();
            eprintln!("xtask: benchmark {} run {i} of {} (load average {load:.2})", bench.name, run_count);
            let mut cmd = if bench.name == DESKTOP.name {
                let mut c = Command::new("xvfb-run");
                c.args(["-a", "-s", "-screen 0 1280x800x24"])
                    .arg(root.join("target/release/desktop-bench"))
                    .envs(desktop_env.iter().map(|(k, v)| (k, v)))
                    .env("FLOORWATCH_BIN", &floorwatch);
                c
            } else {
                let mut c = Command::new(&floorwatch);
                c.args(["bench", bench.name]);
                c
            };
            cmd.args(args).arg("--json").arg(&json).current_dir(&root);
            let outcome = sh(&mut cmd).and_then(|()| {
                let text = std::fs::read_to_string(&json).with_context(|| format!("reading {}", json.display()))?;
                serde_json::from_str::<Value>(&text).with_context(|| format!("{} is not JSON", json.display()))
            });
            match outcome {
                Ok(figures) => runs.push(Run { load_before: load, figures: Ok(figures) }),
                Err(e) => {
                    eprintln!("xtask: benchmark {} run {i} failed: {e:#}", bench.name);
                    runs.push(Run { load_before: load, figures: Err(format!("{e:#}")) });
                }
            }
        }
        results.push(summarise(bench, args, runs));
    }

    let report = Report { machine, quick: o.quick, runs: run_count, benches: results };
    let json_path = out.join("results.json");
    let previous_json = if o.only.is_some() {
        std::fs::read_to_string(&json_path).ok().and_then(|t| serde_json::from_str::<Value>(&t).ok())
    } else {
        None
    };
    std::fs::write(&json_path, serde_json::to_string_pretty(&report.json(previous_json.as_ref()))?)?;
    let md_path = root.join("BENCHMARKS.md");
    let previous = if o.only.is_some() { std::fs::read_to_string(&md_path).ok() } else { None };
    std::fs::write(&md_path, report.markdown(previous.as_deref()))?;
    eprintln!("xtask: figures in {} and {}", json_path.display(), md_path.display());
    let failed: Vec<&str> = report.benches.iter().filter(|b| b.failures > 0).map(|b| b.name).collect();
    if !failed.is_empty() {
        bail!("these benchmarks failed at least once: {}", failed.join(", "));
    }
    let missed = report.benches.iter().flat_map(|b| &b.figures).filter(|f| f.met == Some(false)).count();
    if missed > 0 {
        eprintln!("xtask: {missed} figure(s) miss their target; BENCHMARKS.md marks them");
    }
    Ok(())
}

fn desktop_possible() -> bool {
    on_path("xvfb-run") && on_path("Xvfb") && on_path("WebKitWebDriver") && crate::e2e::desktop_libraries_present()
}

struct Run {
    load_before: f64,
    figures: std::result::Result<Value, String>,
}

/// One figure over every run of its benchmark.
struct Summary {
    pointer: &'static str,
    what: &'static str,
    unit: &'static str,
    target: Option<Target>,
    values: Vec<f64>,
    median: Option<f64>,
    min: Option<f64>,
    max: Option<f64>,
    /// The median of (this figure ÷ its baseline) over the runs.
    versus_baseline: Option<f64>,
    met: Option<bool>,
}

struct BenchResult {
    name: &'static str,
    title: &'static str,
    args: &'static [&'static str],
    loads: Vec<f64>,
    failures: usize,
    errors: Vec<String>,
    figures: Vec<Summary>,
}

/// The value at `pointer`: a number, or the median of an array of numbers.
fn value_at(doc: &Value, pointer: &str) -> Option<f64> {
    match doc.pointer(pointer)? {
        Value::Number(n) => n.as_f64().filter(|v| v.is_finite()),
        Value::Array(items) => {
            median(&items.iter().filter_map(Value::as_f64).filter(|v| v.is_finite()).collect::<Vec<_>>())
        }
        _ => None,
    }
}

fn median(values: &[f64]) -> Option<f64> {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(v[n / 2]),
        _ => Some((v[n / 2 - 1] + v[n / 2]) / 2.0),
    }
}

fn summarise(bench: &'static Bench, args: &'static [&'static str], runs: Vec<Run>) -> BenchResult {
    let ok: Vec<&Value> = runs.iter().filter_map(|r| r.figures.as_ref().ok()).collect();
    let figures = bench
        .figures
        .iter()
        .map(|f| {
            let values: Vec<f64> = ok.iter().filter_map(|doc| value_at(doc, f.pointer)).collect();
            let ratios: Vec<f64> = f
                .baseline
                .map(|b| {
                    ok.iter()
                        .filter_map(|doc| Some((value_at(doc, f.pointer)?, value_at(doc, b)?)))
                        .filter(|(_, base)| *base != 0.0)
                        .map(|(v, base)| v / base)
                        .collect()
                })
                .unwrap_or_default();
            let median = median(&values);
            Summary {
                pointer: f.pointer,
                what: f.what,
                unit: f.unit,
                target: f.target,
                min: values.iter().copied().reduce(f64::min),
                max: values.iter().copied().reduce(f64::max),
                versus_baseline: self::median(&ratios),
                met: f.target.map(|t| median.is_some_and(|m| t.met(m))),
                median,
                values,
            }
        })
        .collect();
    BenchResult {
        name: bench.name,
        title: bench.title,
        args,
        loads: runs.iter().map(|r| r.load_before).collect(),
        failures: runs.iter().filter(|r| r.figures.is_err()).count(),
        errors: runs.iter().filter_map(|r| r.figures.as_ref().err().cloned()).collect(),
        figures,
    }
}

/// The machine the figures were taken on.
struct Machine {
    cores: usize,
    memory_gib: f64,
    cpu: String,
    postgres: String,
    commit: String,
    date: String,
}

fn machine() -> Machine {
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem_kb: f64 = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:")?.split_whitespace().next()?.parse().ok())
        .unwrap_or(0.0);
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name")?.split_once(':').map(|(_, v)| v.trim().to_owned()))
        .unwrap_or_else(|| "unknown".into());
    let commit = output(Command::new("git").args(["rev-parse", "--short=12", "HEAD"]).current_dir(workspace_root()));
    let dirty = !output(
        Command::new("git").args(["status", "--porcelain", "--untracked-files=no"]).current_dir(workspace_root()),
    )
    .is_empty();
    Machine {
        cores: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        memory_gib: (mem_kb / 1024.0 / 1024.0 * 10.0).round() / 10.0,
        cpu,
        postgres: postgres_version(),
        commit: if commit.is_empty() {
            "unknown".into()
        } else if dirty {
            format!("{commit} (with uncommitted changes)")
        } else {
            commit
        },
        date: chrono::Utc::now().format("%Y-%m-%d %H:%M UTC").to_string(),
    }
}

fn output(cmd: &mut Command) -> String {
    cmd.output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}

/// The version of the newest PostgreSQL server installed, as the benchmarks' clusters use.
fn postgres_version() -> String {
    let mut bins: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|d| d.flatten().map(|e| e.path().join("bin/postgres")).filter(|p| p.is_file()).collect())
        .unwrap_or_default();
    bins.sort();
    let bin = bins.pop().unwrap_or_else(|| PathBuf::from("postgres"));
    let v = output(Command::new(&bin).arg("--version"));
    if v.is_empty() { "unknown".into() } else { v }
}

/// The one-minute load average: how busy the machine was when a run began.
fn load_average() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(f64::NAN)
}

struct Report {
    machine: Machine,
    quick: bool,
    runs: usize,
    benches: Vec<BenchResult>,
}

impl Report {
    /// results.json: every run's figures of the benchmarks run here and, from `previous`
    /// (the file as it was), the entries of the benchmarks not run this time.
    fn json(&self, previous: Option<&Value>) -> Value {
        let m = &self.machine;
        json!({
            "machine": { "cores": m.cores, "memory_gib": m.memory_gib, "cpu": m.cpu, "postgres": m.postgres },
            "commit": m.commit,
            "date": m.date,
            "mode": if self.quick { "quick" } else { "full" },
            "runs_per_benchmark": self.runs,
            "benchmarks": self.benches.iter().map(|b| {
                let figures: BTreeMap<&str, Value> = b.figures.iter().map(|f| (f.pointer, json!({
                    "what": f.what,
                    "unit": f.unit,
                    "median": f.median,
                    "min": f.min,
                    "max": f.max,
                    "runs": f.values,
                    "target": f.target.map(|t| t.describe(f.unit)),
                    "met": f.met,
                    "versus_baseline": f.versus_baseline,
                }))).collect();
                json!({
                    "name": b.name,
                    "mode": if self.quick { "quick" } else { "full" },
                    "runs": self.runs,
                    "commit": m.commit,
                    "date": m.date,
                    "arguments": b.args,
                    "load_average_before_each_run": b.loads,
                    "failed_runs": b.failures,
                    "errors": b.errors,
                    "figures": figures,
                })
            }).chain(
                previous
                    .and_then(|p| p["benchmarks"].as_array())
                    .into_iter()
                    .flatten()
                    .filter(|old| !self.benches.iter().any(|b| old["name"] == b.name))
                    .cloned(),
            ).collect::<Vec<_>>(),
        })
    }

    /// BENCHMARKS.md: a section for each benchmark run here and, from `previous` (the file
    /// as it was), the sections of the benchmarks not run this time, kept as they were, so
    /// `--only` refreshes some figures without losing the others. Each section says its own
    /// mode, runs, commit and date; the list of missed targets covers every section.
    fn markdown(&self, previous: Option<&str>) -> String {
        let fresh = self.sections();
        let kept = previous.map(sections_of).unwrap_or_default();
        let chosen: Vec<(&Bench, &str)> = BENCHES
            .iter()
            .chain([&DESKTOP])
            .filter_map(|b| {
                let text = fresh.iter().chain(&kept).find(|(title, _)| *title == b.title)?;
                Some((b, text.1.as_str()))
            })
            .collect();
        let mut s = String::new();
        let _ = writeln!(s, "# Benchmarks\n");
        let _ = writeln!(
            s,
            "Written by `cargo xtask bench`; each section says how its figures were taken: the command, quick or full \
             mode, the number of runs, the commit, the date and the machine (its cores, processor, memory and \
             PostgreSQL).\n"
        );
        let _ = writeln!(
            s,
            "Each benchmark runs on its own throw-away PostgreSQL cluster; a figure is the median of its runs, with the \
             lowest and highest beside it. The load average before each run says how busy the machine was: figures \
             taken while other work runs can be several times worse than on a quiet machine. Quick-mode figures come \
             from smaller runs; the full run is `cargo xtask bench`.\n"
        );
        let missed: Vec<String> = chosen
            .iter()
            .flat_map(|(b, text)| missed_in(text).into_iter().map(move |what| format!("{}: {what}", b.name)))
            .collect();
        if missed.is_empty() {
            let _ = writeln!(s, "Every figure with a target meets it.\n");
        } else {
            let _ = writeln!(s, "**Missed targets ({}):** {}.\n", missed.len(), missed.join("; "));
        }
        for (_, text) in chosen {
            s.push_str(text.trim_end());
            s.push_str("\n\n");
        }
        s.truncate(s.trim_end().len());
        s.push('\n');
        s
    }

    /// The sections of the benchmarks run here, each with its heading, by title.
    fn sections(&self) -> Vec<(&'static str, String)> {
        let m = &self.machine;
        let mut out = Vec::new();
        for b in &self.benches {
            let mut s = String::new();
            let _ = writeln!(s, "## {}\n", b.title);
            let loads: Vec<String> = b.loads.iter().map(|l| format!("{l:.1}")).collect();
            let _ = writeln!(
                s,
                "`{}` · {} mode, {} run(s) at commit {}, {}, on {} cores ({}), {} GiB, {} · load average before each run: {}{}\n",
                if b.name == DESKTOP.name {
                    format!("desktop-bench {}", b.args.join(" ")).trim_end().to_owned()
                } else {
                    format!("floorwatch bench {} {}", b.name, b.args.join(" ")).trim_end().to_owned()
                },
                if self.quick { "quick" } else { "full" },
                self.runs,
                m.commit,
                m.date,
                m.cores,
                m.cpu,
                m.memory_gib,
                m.postgres,
                loads.join(", "),
                if b.failures > 0 {
                    format!(" · **{} run(s) failed**: {}", b.failures, b.errors.join("; "))
                } else {
                    String::new()
                }
            );
            let _ = writeln!(s, "| figure | median | min – max | target | |\n|---|---:|---:|---|---|");
            for f in &b.figures {
                let value = f.median.map(|v| format!("{}{}", number(v), spaced(f.unit))).unwrap_or_else(|| "—".into());
                let spread = match (f.min, f.max) {
                    (Some(lo), Some(hi)) => format!("{} – {}", number(lo), number(hi)),
                    _ => "—".into(),
                };
                let target = f.target.map(|t| t.describe(f.unit)).unwrap_or_default();
                let mark = match f.met {
                    Some(true) => "met".to_owned(),
                    Some(false) => MISSED.to_owned(),
                    None => String::new(),
                };
                let versus = f.versus_baseline.map(|r| format!(" ({}× the baseline)", number(r))).unwrap_or_default();
                let _ = writeln!(s, "| {}{} | {} | {} | {} | {} |", f.what, versus, value, spread, target, mark);
            }
            out.push((b.title, s));
        }
        out
    }
}

/// How a figure that misses its target is marked in its table.
const MISSED: &str = "**missed**";

/// A BENCHMARKS.md split into its benchmarks' sections (heading included), by title.
fn sections_of(doc: &str) -> Vec<(&'static str, String)> {
    let mut out: Vec<(&'static str, String)> = Vec::new();
    let mut current: Option<usize> = None;
    for line in doc.lines() {
        if let Some(title) = line.strip_prefix("## ") {
            // A section whose benchmark no longer exists is dropped.
            current = BENCHES.iter().chain([&DESKTOP]).find(|b| b.title == title).map(|b| {
                out.push((b.title, String::new()));
                out.len() - 1
            });
        } else if line.starts_with("# ") {
            current = None;
        }
        if let Some(i) = current {
            out[i].1.push_str(line);
            out[i].1.push('\n');
        }
    }
    out
}

/// The figures a section's table marks as missing their target.
fn missed_in(section: &str) -> Vec<String> {
    section
        .lines()
        .filter_map(|l| {
            let cells: Vec<&str> = l.trim().trim_matches('|').split('|').map(str::trim).collect();
            (cells.len() == 5 && cells[4] == MISSED).then(|| cells[0].to_owned())
        })
        .collect()
}

fn spaced(unit: &str) -> String {
    match unit {
        "" => String::new(),
        "×" => "×".into(),
        u => format!(" {u}"),
    }
}

/// A figure as people read it: thousands separated, a sensible number of decimals.
fn number(v: f64) -> String {
    if !v.is_finite() {
        return "—".into();
    }
    let a = v.abs();
    if a >= 1000.0 {
        let digits = format!("{:.0}", a);
        let mut grouped = String::new();
        for (i, c) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i) % 3 == 0 {
                grouped.push(',');
            }
            grouped.push(c);
        }
        format!("{}{grouped}", if v < 0.0 { "-" } else { "" })
    } else if a >= 100.0 {
        format!("{v:.0}")
    } else if a >= 1.0 {
        format!("{v:.2}").trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        format!("{v:.3}").trim_end_matches('0').trim_end_matches('.').to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(v: Value) -> Run {
        Run { load_before: 1.0, figures: Ok(v) }
    }

    #[test]
    fn medians_spread_targets_and_baselines_come_from_every_successful_run() {
        let runs = vec![
            run(
                json!({"log_readings_per_s": 3.0e6, "copy_readings_per_s": 2.0e5, "log_vs_copy": 15.0, "delivery_p99_ms": 150.0}),
            ),
            run(
                json!({"log_readings_per_s": 1.0e6, "copy_readings_per_s": 1.0e6, "log_vs_copy": 1.0, "delivery_p99_ms": 20.0}),
            ),
            Run { load_before: 7.5, figures: Err("the cluster did not start".into()) },
            run(
                json!({"log_readings_per_s": 2.0e6, "copy_readings_per_s": 1.0e6, "log_vs_copy": 2.0, "delivery_p99_ms": 30.0}),
            ),
        ];
        let r = summarise(&BENCHES[0], &[], runs);
        assert_eq!(r.failures, 1);
        let by = |p: &str| r.figures.iter().find(|f| f.pointer == p).unwrap();
        let log = by("/log_readings_per_s");
        assert_eq!((log.median, log.min, log.max), (Some(2.0e6), Some(1.0e6), Some(3.0e6)));
        // Ratios are taken run by run (15, 1, 2), then their median.
        assert_eq!(log.versus_baseline, Some(2.0));
        assert_eq!(by("/log_vs_copy").met, Some(true));
        assert_eq!(by("/delivery_p99_ms").median, Some(30.0));
        assert_eq!(by("/delivery_p99_ms").met, Some(true));
        // A figure no run wrote has no median and does not count as met.
        assert_eq!(by("/delivery_p50_ms").median, None);
        let md = Report { machine: test_machine(), quick: false, runs: 4, benches: vec![r] }.markdown(None);
        assert!(md.contains("1 run(s) failed"), "{md}");
        assert!(
            md.contains(
                "| telemetry through the log (2× the baseline) | 2,000,000 readings/s | 1,000,000 – 3,000,000 |"
            ),
            "{md}"
        );
    }

    #[test]
    fn a_missed_target_is_marked_and_listed_not_hidden() {
        let runs = vec![
            run(json!({"freshness_p99_ms": 1200.0})),
            run(json!({"freshness_p99_ms": 1100.0})),
            run(json!({"freshness_p99_ms": 900.0})),
        ];
        let r = summarise(&BENCHES[2], &[], runs);
        let p99 = r.figures.iter().find(|f| f.pointer == "/freshness_p99_ms").unwrap();
        assert_eq!(p99.median, Some(1100.0));
        assert_eq!(p99.met, Some(false));
        let md = Report { machine: test_machine(), quick: true, runs: 3, benches: vec![r] }.markdown(None);
        assert!(md.contains("**Missed targets (1):** freshness: freshness p99."), "{md}");
        assert!(md.contains("| freshness p99 | 1,100 ms | 900 – 1,200 | ≤ 1,000 ms | **missed** |"), "{md}");
        assert!(md.contains("· quick mode, 3 run(s) at commit abc"), "{md}");
    }

    #[test]
    fn a_partial_run_replaces_its_own_sections_and_keeps_the_others() {
        let first = Report {
            machine: test_machine(),
            quick: true,
            runs: 3,
            benches: vec![
                summarise(&BENCHES[0], &[], vec![run(json!({"log_vs_copy": 9.0, "delivery_p99_ms": 20.0}))]),
                summarise(&BENCHES[2], &[], vec![run(json!({"freshness_p99_ms": 1500.0}))]),
            ],
        };
        let before = first.markdown(None);
        assert!(before.contains("**Missed targets (1):** freshness: freshness p99."), "{before}");
        assert!(
            before.contains(
                "· quick mode, 3 run(s) at commit abc, 2026-12-03 12:00 UTC, on 2 cores (test), 24 GiB, postgres (PostgreSQL) 15 ·"
            ),
            "{before}"
        );

        let mut machine = test_machine();
        machine.commit = "def".into();
        let second = Report {
            machine,
            quick: false,
            runs: 1,
            benches: vec![summarise(&BENCHES[2], &["--seconds", "60"], vec![run(json!({"freshness_p99_ms": 400.0}))])],
        };
        let after = second.markdown(Some(&before));
        // The log's section is kept word for word; freshness is the new run's, now met.
        let log = |md: &str| sections_of(md).into_iter().find(|(t, _)| *t == BENCHES[0].title).unwrap().1;
        assert_eq!(log(&after), log(&before));
        assert!(
            after.contains("`floorwatch bench freshness --seconds 60` · full mode, 1 run(s) at commit def"),
            "{after}"
        );
        assert!(!after.contains("1,500 ms"), "{after}");
        assert!(after.contains("Every figure with a target meets it."), "{after}");
        // Sections stay in the benchmarks' order, whichever ran last.
        assert!(after.find(BENCHES[0].title).unwrap() < after.find(BENCHES[2].title).unwrap());
        // A section a partial run does not touch keeps its missed mark in the summary.
        let third = Report { machine: test_machine(), quick: true, runs: 1, benches: vec![] };
        assert!(third.markdown(Some(&before)).contains("**Missed targets (1):** freshness: freshness p99."));
        // The results file keeps the other benchmarks' entries too.
        let json = second.json(Some(&first.json(None)));
        let names: Vec<&str> =
            json["benchmarks"].as_array().unwrap().iter().map(|b| b["name"].as_str().unwrap()).collect();
        assert_eq!(names, ["freshness", "log"]);
        assert_eq!(json["benchmarks"][0]["commit"], "def");
        assert_eq!(json["benchmarks"][1]["commit"], "abc");
    }

    #[test]
    fn arrays_stand_for_their_median_and_odd_values_are_left_out() {
        let doc = json!({"a": [5.0, 1.0, 3.0, 100.0], "b": "text", "c": null, "d": [1.0]});
        assert_eq!(value_at(&doc, "/a"), Some(4.0));
        assert_eq!(value_at(&doc, "/b"), None);
        assert_eq!(value_at(&doc, "/c"), None);
        assert_eq!(value_at(&doc, "/d"), Some(1.0));
        assert_eq!(value_at(&doc, "/missing"), None);
    }

    #[test]
    fn numbers_read_as_people_write_them() {
        assert_eq!(number(4_698_884.4), "4,698,884");
        assert_eq!(number(-1234.0), "-1,234");
        assert_eq!(number(773.2), "773");
        assert_eq!(number(13.30), "13.3");
        assert_eq!(number(0.367), "0.367");
        assert_eq!(number(2.0), "2");
        assert_eq!(number(f64::NAN), "—");
    }

    #[test]
    fn every_benchmark_named_on_the_command_line_exists_and_unknown_ones_are_refused() {
        let o = options(&["--only".into(), "log,detect".into(), "--runs".into(), "5".into()]).unwrap();
        assert_eq!(o.runs, Some(5));
        assert_eq!(o.only.unwrap(), vec!["log", "detect"]);
        assert!(options(&["--only".into(), "nonsense".into()]).is_err());
        assert!(options(&["--runs".into(), "0".into()]).is_err());
        assert!(options(&["--runs".into(), "lots".into()]).is_err());
        assert!(options(&["--fast".into()]).is_err());
    }

    fn test_machine() -> Machine {
        Machine {
            cores: 2,
            memory_gib: 24.0,
            cpu: "test".into(),
            postgres: "postgres (PostgreSQL) 15".into(),
            commit: "abc".into(),
            date: "2026-12-03 12:00 UTC".into(),
        }
    }
}
