//! Node-wide readings from /proc: memory, network interfaces, boot time, process limits.

use super::cgroup::{MemorySample, keyed};
use super::types::InterfaceStats;

/// Node memory when the root memory cgroup has no usage file (cgroup v2), the way
/// cAdvisor computes it: usage = MemTotal - MemFree, working set = usage - Inactive(file).
pub fn meminfo_sample() -> Option<MemorySample> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let kb = |k: &str| {
        text.lines().find_map(|l| {
            let rest = l.strip_prefix(k)?.strip_prefix(':')?;
            rest.split_whitespace()
                .next()?
                .parse::<u64>()
                .ok()
                .map(|v| v * 1024)
        })
    };
    let total = kb("MemTotal")?;
    let usage = total.saturating_sub(kb("MemFree").unwrap_or(0));
    let vmstat = std::fs::read_to_string("/proc/vmstat").unwrap_or_default();
    Some(MemorySample {
        usage,
        working_set: usage.saturating_sub(kb("Inactive(file)").unwrap_or(0)),
        rss: kb("AnonPages").unwrap_or(0),
        page_faults: keyed(&vmstat, "pgfault").unwrap_or(0),
        major_page_faults: keyed(&vmstat, "pgmajfault").unwrap_or(0),
        limit: Some(total),
    })
}

pub fn memory_capacity() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        })
        .map(|kb| kb * 1024)
        .unwrap_or(0)
}

/// Boot time in seconds since the epoch.
pub fn boot_time_secs() -> i64 {
    std::fs::read_to_string("/proc/stat")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("btime "))
                .and_then(|v| v.trim().parse().ok())
        })
        .unwrap_or(0)
}

/// Parse /proc/net/dev (or /proc/<pid>/net/dev).
pub fn parse_net_dev(text: &str) -> Vec<InterfaceStats> {
    text.lines()
        .skip(2)
        .filter_map(|line| {
            let (name, rest) = line.split_once(':')?;
            let cols: Vec<u64> = rest
                .split_whitespace()
                .filter_map(|v| v.parse().ok())
                .collect();
            if cols.len() < 16 {
                return None;
            }
            Some(InterfaceStats {
                name: name.trim().to_string(),
                rx_bytes: Some(cols[0]),
                rx_errors: Some(cols[2]),
                tx_bytes: Some(cols[8]),
                tx_errors: Some(cols[10]),
            })
        })
        .collect()
}

/// Host interfaces cAdvisor reports (no loopback, veth, docker or nerdctl devices).
pub fn host_interfaces() -> Vec<InterfaceStats> {
    let text = std::fs::read_to_string("/proc/net/dev").unwrap_or_default();
    parse_net_dev(&text)
        .into_iter()
        .filter(|i| {
            !["lo", "veth", "docker", "nerdctl"]
                .iter()
                .any(|p| i.name.starts_with(p))
        })
        .collect()
}

/// The interface of the default route, else "eth0" as upstream.
pub fn default_interface() -> String {
    std::fs::read_to_string("/proc/net/route")
        .ok()
        .and_then(|t| {
            t.lines().skip(1).find_map(|l| {
                let mut cols = l.split_whitespace();
                let name = cols.next()?;
                (cols.next()? == "00000000").then(|| name.to_string())
            })
        })
        .unwrap_or_else(|| "eth0".into())
}

/// (max PID, number of processes) as upstream's rlimit stats.
pub fn rlimit() -> (Option<i64>, Option<i64>) {
    let max = std::fs::read_to_string("/proc/sys/kernel/pid_max")
        .ok()
        .and_then(|s| s.trim().parse().ok());
    let cur = std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().nth(3)?.split_once('/')?.1.parse().ok());
    (max, cur)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn net_dev() {
        let text = "Inter-|   Receive |  Transmit\n face |bytes packets errs drop fifo frame compressed multicast|bytes packets errs drop fifo colls carrier compressed\n  eth0: 100 2 3 0 0 0 0 0 200 4 5 0 0 0 0 0\n    lo: 1 1 0 0 0 0 0 0 1 1 0 0 0 0 0 0\n";
        let ifs = parse_net_dev(text);
        assert_eq!(ifs.len(), 2);
        assert_eq!(ifs[0].name, "eth0");
        assert_eq!(
            (
                ifs[0].rx_bytes,
                ifs[0].rx_errors,
                ifs[0].tx_bytes,
                ifs[0].tx_errors
            ),
            (Some(100), Some(3), Some(200), Some(5))
        );
    }

    #[test]
    fn host_readings() {
        assert!(meminfo_sample().unwrap().usage > 0);
        assert!(boot_time_secs() > 0);
        let (max, cur) = rlimit();
        assert!(max.unwrap() > 0 && cur.unwrap() > 0);
    }
}
