//! Memory capacity, swap and huge pages.

use std::path::Path;

use super::{HugePagesInfo, Roots, read_u64};

pub struct Memory {
    pub total: u64,
    pub swap_total: u64,
    pub hugepages: Vec<HugePagesInfo>,
}

/// `Key: value kB` lines of a meminfo file, in bytes.
pub fn meminfo_value(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        // Per-node files prefix lines with "Node N ".
        let line = line.trim_start();
        let line = match line.strip_prefix("Node ") {
            Some(rest) => rest
                .split_once(' ')
                .map(|(_, r)| r.trim_start())
                .unwrap_or(rest),
            None => line,
        };
        let rest = line.strip_prefix(key)?.strip_prefix(':')?;
        let mut parts = rest.split_whitespace();
        let value: u64 = parts.next()?.parse().ok()?;
        Some(if parts.next() == Some("kB") {
            value * 1024
        } else {
            value
        })
    })
}

pub fn read(roots: &Roots) -> Memory {
    let text = std::fs::read_to_string(roots.proc.join("meminfo")).unwrap_or_default();
    Memory {
        total: meminfo_value(&text, "MemTotal").unwrap_or(0),
        swap_total: meminfo_value(&text, "SwapTotal").unwrap_or(0),
        hugepages: hugepages(&roots.sys.join("kernel/mm/hugepages")),
    }
}

/// `hugepages-<size>kB/nr_hugepages` entries of a hugepages directory.
pub fn hugepages(dir: &Path) -> Vec<HugePagesInfo> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<HugePagesInfo> = entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let size = name
                .strip_prefix("hugepages-")?
                .strip_suffix("kB")?
                .parse()
                .ok()?;
            let num = read_u64(&e.path().join("nr_hugepages")).unwrap_or(0);
            Some(HugePagesInfo {
                page_size: size,
                num_pages: num,
            })
        })
        .collect();
    out.sort_by_key(|h| h.page_size);
    out
}

#[cfg(test)]
mod tests {
    use super::meminfo_value;

    #[test]
    fn parses_meminfo_and_node_meminfo() {
        let text = "MemTotal:        8169640 kB\nMemFree:  100 kB\nHugePages_Total:       0\n";
        assert_eq!(meminfo_value(text, "MemTotal"), Some(8169640 * 1024));
        assert_eq!(meminfo_value(text, "HugePages_Total"), Some(0));
        let node = "Node 0 MemTotal:       8169640 kB\nNode 0 MemFree: 1 kB\n";
        assert_eq!(meminfo_value(node, "MemTotal"), Some(8169640 * 1024));
        assert_eq!(meminfo_value(node, "Missing"), None);
    }
}
