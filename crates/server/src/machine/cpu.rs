//! CPUs and topology: logical CPUs grouped into cores (by socket and core id) and
//! NUMA nodes, with their caches, as cAdvisor builds `topology`.

use std::collections::BTreeMap;
use std::path::Path;

use super::memory::{self, Memory};
use super::{Cache, Core, NumaNode, Roots, read_trim, read_u64};

#[derive(Debug, Clone)]
pub struct LogicalCpu {
    pub id: u32,
    pub core_id: u32,
    pub socket_id: u32,
    pub node_id: u32,
}

pub struct Cpus {
    pub logical: Vec<LogicalCpu>,
    pub vendor_id: String,
    pub frequency_khz: u64,
}

impl Cpus {
    pub fn physical_cores(&self) -> usize {
        let mut set: Vec<(u32, u32)> = self
            .logical
            .iter()
            .map(|c| (c.socket_id, c.core_id))
            .collect();
        set.sort_unstable();
        set.dedup();
        set.len()
    }

    pub fn sockets(&self) -> usize {
        let mut set: Vec<u32> = self.logical.iter().map(|c| c.socket_id).collect();
        set.sort_unstable();
        set.dedup();
        set.len()
    }
}

/// "0-3,6,8-9" -> [0,1,2,3,6,8,9].
pub fn parse_cpu_list(text: &str) -> Vec<u32> {
    let mut out = Vec::new();
    for part in text.trim().split(',').filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => {
                if let (Ok(a), Ok(b)) = (a.trim().parse::<u32>(), b.trim().parse::<u32>()) {
                    out.extend(a..=b.min(a.saturating_add(65535)));
                }
            }
            None => {
                if let Ok(v) = part.trim().parse() {
                    out.push(v);
                }
            }
        }
    }
    out
}

fn node_of_cpu(roots: &Roots, cpu: u32) -> u32 {
    let dir = roots.sys.join(format!("devices/system/cpu/cpu{cpu}"));
    std::fs::read_dir(dir)
        .ok()
        .and_then(|entries| {
            entries
                .flatten()
                .find_map(|e| e.file_name().to_str()?.strip_prefix("node")?.parse().ok())
        })
        .unwrap_or(0)
}

pub fn read(roots: &Roots) -> Cpus {
    let cpuinfo = std::fs::read_to_string(roots.proc.join("cpuinfo")).unwrap_or_default();
    let field = |key: &str| {
        cpuinfo.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            (k.trim() == key).then(|| v.trim().to_string())
        })
    };
    let online =
        read_trim(&roots.sys.join("devices/system/cpu/online")).map(|s| parse_cpu_list(&s));
    let ids = match online {
        Some(ids) if !ids.is_empty() => ids,
        // No sysfs: count "processor" lines.
        _ => (0..cpuinfo
            .lines()
            .filter(|l| l.starts_with("processor"))
            .count()
            .max(1) as u32)
            .collect(),
    };
    let logical = ids
        .into_iter()
        .map(|id| {
            let topo = roots
                .sys
                .join(format!("devices/system/cpu/cpu{id}/topology"));
            LogicalCpu {
                id,
                core_id: read_u64(&topo.join("core_id"))
                    .map(|v| v as u32)
                    .unwrap_or(id),
                socket_id: read_u64(&topo.join("physical_package_id"))
                    .map(|v| v as u32)
                    .unwrap_or(0),
                node_id: node_of_cpu(roots, id),
            }
        })
        .collect();
    let max_freq = read_u64(
        &roots
            .sys
            .join("devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq"),
    );
    let mhz = field("cpu MHz")
        .and_then(|v| v.parse::<f64>().ok())
        .map(|m| (m * 1000.0) as u64);
    Cpus {
        logical,
        vendor_id: field("vendor_id").unwrap_or_default(),
        frequency_khz: max_freq.or(mhz).unwrap_or(0),
    }
}

/// Caches of one logical CPU: (level, type, size in bytes, id, cpus sharing it).
fn caches_of(roots: &Roots, cpu: u32) -> Vec<(Cache, Vec<u32>)> {
    let dir = roots.sys.join(format!("devices/system/cpu/cpu{cpu}/cache"));
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut out: Vec<(Cache, Vec<u32>)> = entries
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("index"))
        .filter_map(|e| {
            let p = e.path();
            let level = read_u64(&p.join("level"))? as u32;
            let cache_type = read_trim(&p.join("type"))?;
            let size = parse_size(&read_trim(&p.join("size"))?)?;
            let id = read_u64(&p.join("id")).unwrap_or(0) as u32;
            let shared = read_trim(&p.join("shared_cpu_list"))
                .map(|s| parse_cpu_list(&s))
                .unwrap_or_else(|| vec![cpu]);
            Some((
                Cache {
                    id,
                    size,
                    cache_type,
                    level,
                },
                shared,
            ))
        })
        .collect();
    out.sort_by(|a, b| (a.0.level, &a.0.cache_type).cmp(&(b.0.level, &b.0.cache_type)));
    out
}

/// "32K" -> 32768, "1M" -> 1048576.
fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let (num, mult) = match s.chars().last()? {
        'K' => (&s[..s.len() - 1], 1024),
        'M' => (&s[..s.len() - 1], 1024 * 1024),
        'G' => (&s[..s.len() - 1], 1024 * 1024 * 1024),
        _ => (s, 1),
    };
    num.parse::<u64>().ok().map(|v| v * mult)
}

pub fn topology(roots: &Roots, cpus: &Cpus, mem: &Memory) -> Vec<NumaNode> {
    let mut nodes: BTreeMap<u32, NumaNode> = BTreeMap::new();
    for cpu in &cpus.logical {
        let node = nodes
            .entry(cpu.node_id)
            .or_insert_with(|| numa_node(roots, cpu.node_id, mem));
        let caches = caches_of(roots, cpu.id);
        let core = match node
            .cores
            .iter_mut()
            .find(|c| c.core_id == cpu.core_id && c.socket_id == cpu.socket_id)
        {
            Some(core) => core,
            None => {
                node.cores.push(Core {
                    core_id: cpu.core_id,
                    thread_ids: Vec::new(),
                    caches: Vec::new(),
                    uncore_caches: Vec::new(),
                    socket_id: cpu.socket_id,
                });
                let last = node.cores.len() - 1;
                &mut node.cores[last]
            }
        };
        core.thread_ids.push(cpu.id);
        for (cache, _shared) in caches {
            // cAdvisor: levels 1 and 2 belong to the core, level 3+ to the node.
            if cache.level <= 2 {
                if !core.caches.contains(&cache) {
                    core.caches.push(cache);
                }
            } else if !node.caches.contains(&cache) {
                node.caches.push(cache);
            }
        }
    }
    for node in nodes.values_mut() {
        node.cores.sort_by_key(|c| (c.socket_id, c.core_id));
    }
    nodes.into_values().collect()
}

fn numa_node(roots: &Roots, id: u32, mem: &Memory) -> NumaNode {
    let dir = roots.sys.join(format!("devices/system/node/node{id}"));
    let memory = std::fs::read_to_string(dir.join("meminfo"))
        .ok()
        .and_then(|t| memory::meminfo_value(&t, "MemTotal"))
        .unwrap_or(mem.total);
    let hugepages = if Path::new(&dir.join("hugepages")).is_dir() {
        memory::hugepages(&dir.join("hugepages"))
    } else {
        mem.hugepages.clone()
    };
    let distances = read_trim(&dir.join("distance"))
        .map(|s| {
            s.split_whitespace()
                .filter_map(|v| v.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    NumaNode {
        node_id: id,
        memory,
        hugepages,
        cores: Vec::new(),
        caches: Vec::new(),
        distances,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lists() {
        assert_eq!(parse_cpu_list("0-3,6,8-9\n"), vec![0, 1, 2, 3, 6, 8, 9]);
        assert_eq!(parse_cpu_list("0"), vec![0]);
        assert!(parse_cpu_list("").is_empty());
    }

    #[test]
    fn cache_sizes() {
        assert_eq!(parse_size("32K"), Some(32768));
        assert_eq!(parse_size("16M"), Some(16 * 1024 * 1024));
        assert_eq!(parse_size("512"), Some(512));
        assert_eq!(parse_size("x"), None);
    }
}
