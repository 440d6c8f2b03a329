//! `floorwatch bench up`: the memory of a real `floorwatch up` process over a long run —
//! the whole factory at real time, with a stall of its PostgreSQL in the middle (every
//! process of the cluster stopped with SIGSTOP, then resumed) so uploads are refused,
//! retried and piled up behind, then caught up. Memory must stay bounded by the
//! configuration whatever the backlog or the retries: the figures are the process's
//! resident set and PSS every 10 s, its growth over the last half of the run, and the
//! plants' freshness, beside the machine's load.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::json;

use super::write_json;
use crate::cli::UpBenchArgs;

pub async fn run(args: UpBenchArgs) -> Result<()> {
    let dir = std::env::temp_dir().join(format!("floorwatch-bench-up-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let config = dir.join("floorwatch.toml");
    let text = crate::config::DEFAULTS.replace("http_base_port = 8080", "http_base_port = 0");
    std::fs::write(&config, text)?;
    let data = dir.join("data");
    let log = std::fs::File::create(dir.join("up.log"))?;
    eprintln!(
        "starting floorwatch up ({} plants × {} sensors) in {}",
        args.plants,
        args.sensors_per_plant,
        dir.display()
    );
    let mut up = Command::new(std::env::current_exe()?)
        .arg("--data-dir")
        .arg(&data)
        .arg("--config")
        .arg(&config)
        .args(["up", "--plain", "--plants", &args.plants.to_string()])
        .args(["--sensors-per-plant", &args.sensors_per_plant.to_string()])
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .context("starting floorwatch up")?;
    let result = measure(&args, &mut up, &data).await;
    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(up.id() as i32), nix::sys::signal::Signal::SIGINT);
    let _ = tokio::task::spawn_blocking(move || up.wait()).await;
    let figures = result?;
    write_json(&args.json, &figures)?;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

async fn measure(args: &UpBenchArgs, up: &mut Child, data: &Path) -> Result<serde_json::Value> {
    let began = Instant::now();
    let total = Duration::from_secs(args.minutes * 60);
    let stall_at = total / 3;
    let mut stalled = false;
    let mut samples = Vec::new();
    while began.elapsed() < total {
        if let Some(status) = up.try_wait()? {
            bail!("floorwatch up exited ({status}) after {:?}", began.elapsed());
        }
        if !stalled && args.stall_seconds > 0 && began.elapsed() >= stall_at {
            stalled = true;
            eprintln!("stalling PostgreSQL for {} s", args.stall_seconds);
            let pids = cluster_pids(data);
            signal_all(&pids, nix::sys::signal::Signal::SIGSTOP);
            tokio::time::sleep(Duration::from_secs(args.stall_seconds)).await;
            signal_all(&pids, nix::sys::signal::Signal::SIGCONT);
        }
        let t = began.elapsed().as_secs();
        let (rss_kb, pss_kb) = memory_kb(up.id());
        let pg_kb: u64 = cluster_pids(data).iter().map(|p| memory_kb(*p).0).sum();
        let ages = freshness_s(data, args.plants).await.unwrap_or_default();
        eprintln!(
            "{t:>5} s  up rss {:>6.0} MB pss {:>6.0} MB  postgres rss {:>6.0} MB  freshness {:?}  load {}",
            rss_kb as f64 / 1024.0,
            pss_kb as f64 / 1024.0,
            pg_kb as f64 / 1024.0,
            ages,
            loadavg()
        );
        samples.push(json!({
            "t_s": t, "rss_mb": rss_kb as f64 / 1024.0, "pss_mb": pss_kb as f64 / 1024.0,
            "postgres_rss_mb": pg_kb as f64 / 1024.0, "freshness_s": ages, "load": loadavg(),
        }));
        tokio::time::sleep(Duration::from_secs(10)).await;
    }
    let rss: Vec<(f64, f64)> =
        samples.iter().map(|s| (s["t_s"].as_f64().unwrap_or(0.0), s["rss_mb"].as_f64().unwrap_or(0.0))).collect();
    let second_half: Vec<(f64, f64)> = rss.iter().copied().filter(|(t, _)| *t >= total.as_secs_f64() / 2.0).collect();
    let max = rss.iter().map(|(_, m)| *m).fold(0.0, f64::max);
    Ok(json!({
        "benchmark": "up-memory",
        "plants": args.plants,
        "sensors_per_plant": args.sensors_per_plant,
        "minutes": args.minutes,
        "stall": { "at_s": stall_at.as_secs(), "seconds": args.stall_seconds },
        "rss_mb": {
            "after_3_min": rss.iter().find(|(t, _)| *t >= 180.0).map(|(_, m)| *m),
            "max": max,
            "end": rss.last().map(|(_, m)| *m),
            "growth_mb_per_hour_second_half": slope(&second_half) * 3600.0,
        },
        "machine": { "cores": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0), "load_at_end": loadavg() },
        "samples": samples,
    }))
}

/// Least-squares slope of (t, value), per second.
fn slope(points: &[(f64, f64)]) -> f64 {
    let n = points.len() as f64;
    if n < 2.0 {
        return 0.0;
    }
    let (mt, mv) = (points.iter().map(|p| p.0).sum::<f64>() / n, points.iter().map(|p| p.1).sum::<f64>() / n);
    let cov: f64 = points.iter().map(|(t, v)| (t - mt) * (v - mv)).sum();
    let var: f64 = points.iter().map(|(t, _)| (t - mt).powi(2)).sum();
    if var == 0.0 { 0.0 } else { cov / var }
}

/// (resident set, PSS) of a process in kB; zeros when it is gone.
fn memory_kb(pid: u32) -> (u64, u64) {
    let field = |text: &str, name: &str| {
        text.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    let rss = std::fs::read_to_string(format!("/proc/{pid}/status")).map(|s| field(&s, "VmRSS:")).unwrap_or(0);
    let pss = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).map(|s| field(&s, "Pss:")).unwrap_or(0);
    (rss, pss)
}

/// The postmaster of the run's cluster and its children.
fn cluster_pids(data: &Path) -> Vec<u32> {
    let pid_file: PathBuf = data.join("postgres/data/postmaster.pid");
    let Some(postmaster) = std::fs::read_to_string(pid_file)
        .ok()
        .and_then(|t| t.lines().next().and_then(|l| l.trim().parse::<u32>().ok()))
    else {
        return Vec::new();
    };
    let mut pids = vec![postmaster];
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else { continue };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { continue };
        let ppid = stat.rsplit_once(')').and_then(|(_, rest)| rest.split_whitespace().nth(1)?.parse::<u32>().ok());
        if ppid == Some(postmaster) {
            pids.push(pid);
        }
    }
    pids
}

fn signal_all(pids: &[u32], signal: nix::sys::signal::Signal) {
    for pid in pids {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(*pid as i32), signal);
    }
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// Seconds since each plant's newest reading, by the wall clock.
async fn freshness_s(data: &Path, plants: u32) -> Result<Vec<Option<f64>>> {
    let cluster = pgcluster::Cluster::new(data.join("postgres"), pgcluster::Options::default())?;
    let mut out = Vec::new();
    for n in 1..=plants {
        let url = cluster.url(&crate::databases::plant_database(n))?;
        let connect = tokio_postgres::connect(&url, tokio_postgres::NoTls);
        let Ok(Ok((client, conn))) = tokio::time::timeout(Duration::from_secs(2), connect).await else {
            out.push(None);
            continue;
        };
        tokio::spawn(conn);
        let newest: Option<chrono::DateTime<chrono::Utc>> = tokio::time::timeout(
            Duration::from_secs(2),
            client.query_one("SELECT max(newest_reading) FROM readmodel.plant_status", &[]),
        )
        .await
        .ok()
        .and_then(|r| r.ok())
        .and_then(|r| r.get(0));
        out.push(newest.map(|t| (chrono::Utc::now() - t).num_milliseconds() as f64 / 1000.0));
    }
    Ok(out)
}
