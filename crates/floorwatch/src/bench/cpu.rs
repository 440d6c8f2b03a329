//! CPU time of processes, from /proc, to split a benchmark's CPU between its parts; and
//! of the whole machine, to start measuring only once it is quiet.

use std::time::Instant;

/// Clock ticks per second of /proc's CPU times (USER_HZ; 100 on every Linux we run on).
const TICKS_PER_S: f64 = 100.0;

/// User + system CPU ticks of `pid`; with `children`, also its waited-for children's.
fn ticks(pid: u32, children: bool) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may contain spaces and parentheses: fields start after the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // rest[0] is field 3 (state); utime is field 14, stime 15, cutime 16, cstime 17.
    let field = |n: usize| fields.get(n - 3)?.parse::<u64>().ok();
    let own = field(14)? + field(15)?;
    Some(if children { own + field(16)? + field(17)? } else { own })
}

fn parent(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat[stat.rfind(')')? + 2..].split_whitespace().nth(1)?.parse().ok()
}

/// CPU ticks of a process tree one level deep: `root` (with its exited children) and
/// its live children — the shape of a PostgreSQL server.
fn tree_ticks(root: u32) -> u64 {
    let mut total = ticks(root, true).unwrap_or(0);
    if let Ok(entries) = std::fs::read_dir("/proc") {
        for e in entries.flatten() {
            let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else { continue };
            if parent(pid) == Some(root) {
                total += ticks(pid, false).unwrap_or(0);
            }
        }
    }
    total
}

/// The parts whose CPU a benchmark reports.
#[derive(Debug, Clone)]
pub struct Parts {
    pub names: Vec<&'static str>,
    pids: Vec<(u32, bool)>,
}

impl Parts {
    /// `(name, pid, is_tree)`: a tree counts the process and its children.
    pub fn new(parts: &[(&'static str, u32, bool)]) -> Self {
        Parts { names: parts.iter().map(|p| p.0).collect(), pids: parts.iter().map(|p| (p.1, p.2)).collect() }
    }

    pub fn sample(&self) -> Sample {
        let ticks = self
            .pids
            .iter()
            .map(|&(pid, tree)| if tree { tree_ticks(pid) } else { ticks(pid, false).unwrap_or(0) })
            .collect();
        Sample { at: Instant::now(), ticks }
    }
}

#[derive(Debug, Clone)]
pub struct Sample {
    at: Instant,
    ticks: Vec<u64>,
}

/// CPU use between two samples: per part and in all, as a share of the whole machine.
pub fn shares(parts: &Parts, from: &Sample, to: &Sample) -> (Vec<(&'static str, f64)>, f64) {
    let cpus = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1) as f64;
    let wall = (to.at - from.at).as_secs_f64().max(1e-9);
    let per: Vec<(&'static str, f64)> = parts
        .names
        .iter()
        .zip(from.ticks.iter().zip(&to.ticks))
        .map(|(name, (a, b))| (*name, b.saturating_sub(*a) as f64 / TICKS_PER_S / wall / cpus))
        .collect();
    let total = per.iter().map(|(_, s)| s).sum();
    (per, total)
}

/// The share of the machine's CPU time (0–1, all cores) spent busy over the next
/// `interval`, from `/proc/stat`; `None` where that file is not.
async fn cpu_busy(interval: std::time::Duration) -> Option<f64> {
    fn sample() -> Option<(u64, u64)> {
        let text = std::fs::read_to_string("/proc/stat").ok()?;
        let fields: Vec<u64> =
            text.lines().next()?.strip_prefix("cpu ")?.split_whitespace().filter_map(|x| x.parse().ok()).collect();
        // user nice system idle iowait irq softirq steal: idle and iowait are not busy.
        let total: u64 = fields.iter().take(8).sum();
        let idle = fields.get(3)? + fields.get(4).copied().unwrap_or(0);
        Some((total, idle))
    }
    let (t0, i0) = sample()?;
    tokio::time::sleep(interval).await;
    let (t1, i1) = sample()?;
    let total = t1.saturating_sub(t0);
    (total > 0).then(|| 1.0 - i1.saturating_sub(i0) as f64 / total as f64)
}

/// Waits, up to `at_most`, until the machine is quiet (under `busy` of its CPU for a whole
/// second): what an earlier phase of a benchmark left running (writeback, autovacuum, a
/// checkpoint) is then not measured as the next phase's latency. Answers the last
/// second's busy share and how long it waited.
pub async fn wait_until_quiet(busy: f64, at_most: std::time::Duration) -> (Option<f64>, std::time::Duration) {
    let began = std::time::Instant::now();
    loop {
        let now = cpu_busy(std::time::Duration::from_secs(1)).await;
        if now.is_none_or(|b| b < busy) || began.elapsed() >= at_most {
            return (now, began.elapsed());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_spent_by_a_process_is_counted() {
        let me = std::process::id();
        let parts = Parts::new(&[("me", me, false)]);
        let a = parts.sample();
        let start = ticks(me, false).unwrap();
        let mut x = 0u64;
        while ticks(me, false).unwrap() < start + 10 {
            for _ in 0..100_000 {
                x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
            }
        }
        std::hint::black_box(x);
        let b = parts.sample();
        let (per, total) = shares(&parts, &a, &b);
        assert!(total > 0.0 && per[0].1 == total, "{per:?}");
        assert!(b.ticks[0] - a.ticks[0] >= 10);
    }

    #[tokio::test]
    async fn the_machines_busy_share_is_a_share() {
        let busy = cpu_busy(std::time::Duration::from_millis(100)).await.unwrap();
        assert!((0.0..=1.0).contains(&busy), "{busy}");
    }
}
