//! The kubelet process's cost from /proc: CPU time and resident memory.
//!
//! CPU: `/proc/<pid>/stat` utime+stime covers every thread, dead ones included, but counts
//! in clock ticks (10 ms). The per-thread `/proc/<pid>/task/*/schedstat` run times are in
//! nanoseconds but lose threads that exit. A window uses the schedstat sum unless the tick
//! count shows more than two ticks beyond it (a thread exited), then the ticks.

use std::time::{Duration, Instant};

use crate::stats::Dist;

#[derive(Debug, Clone, Copy)]
pub struct Snapshot {
    pub at: Instant,
    pub ticks: u64,
    pub sched_ns: u64,
    pub rss_kib: u64,
    pub hwm_kib: u64,
    /// RSS split: anonymous (heap, stacks) and file-backed (the mapped binary and libs).
    pub anon_kib: u64,
    pub file_kib: u64,
    pub threads: u64,
}

fn clk_tck() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 { t as u64 } else { 100 }
}

fn stat_ticks(pid: i32) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may contain spaces) start at field 3 (state).
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

fn sched_ns(pid: i32) -> u64 {
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0;
    };
    dir.flatten()
        .filter_map(|e| std::fs::read_to_string(e.path().join("schedstat")).ok())
        .filter_map(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .sum()
}

fn status_field(text: &str, key: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

pub fn snapshot(pid: i32) -> Option<Snapshot> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    Some(Snapshot {
        at: Instant::now(),
        ticks: stat_ticks(pid)?,
        sched_ns: sched_ns(pid),
        rss_kib: status_field(&status, "VmRSS:"),
        hwm_kib: status_field(&status, "VmHWM:"),
        anon_kib: status_field(&status, "RssAnon:"),
        file_kib: status_field(&status, "RssFile:"),
        threads: status_field(&status, "Threads:"),
    })
}

/// What one measuring window saw.
#[derive(Debug, Clone)]
pub struct Usage {
    pub secs: f64,
    /// RSS samples (MiB), one a second.
    pub rss_mib: Dist,
    /// % of one core over the window.
    pub cpu_pct: f64,
    /// CPU seconds used in the window.
    pub cpu_secs: f64,
    pub hwm_mib: f64,
    /// At the end of the window.
    pub anon_mib: f64,
    pub file_mib: f64,
    pub threads: u64,
}

pub fn cpu_between(a: &Snapshot, b: &Snapshot) -> f64 {
    let tick_ns = 1_000_000_000 / clk_tck();
    let by_ticks = b.ticks.saturating_sub(a.ticks) * tick_ns;
    let by_sched = b.sched_ns.saturating_sub(a.sched_ns);
    let ns = if by_ticks > by_sched + 2 * tick_ns {
        by_ticks
    } else {
        by_sched
    };
    ns as f64 / 1e9
}

/// Sample `pid` once a second for `window`.
pub async fn measure(pid: i32, window: Duration) -> anyhow::Result<Usage> {
    let first = snapshot(pid).ok_or_else(|| anyhow::anyhow!("process {pid} is gone"))?;
    let mut rss = vec![first.rss_kib as f64 / 1024.0];
    let mut last = first;
    let end = first.at + window;
    while Instant::now() < end {
        let wait = (end - Instant::now()).min(Duration::from_secs(1));
        tokio::time::sleep(wait).await;
        last = snapshot(pid)
            .ok_or_else(|| anyhow::anyhow!("process {pid} exited during the window"))?;
        rss.push(last.rss_kib as f64 / 1024.0);
    }
    let secs = (last.at - first.at).as_secs_f64().max(1e-9);
    let cpu_secs = cpu_between(&first, &last);
    Ok(Usage {
        secs,
        rss_mib: Dist::new(rss),
        cpu_pct: 100.0 * cpu_secs / secs,
        cpu_secs,
        hwm_mib: last.hwm_kib as f64 / 1024.0,
        anon_mib: last.anon_kib as f64 / 1024.0,
        file_mib: last.file_kib as f64 / 1024.0,
        threads: last.threads,
    })
}
