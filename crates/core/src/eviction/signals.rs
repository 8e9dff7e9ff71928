//! Eviction signals and how they are observed, as upstream computes them from its
//! summary stats (pkg/kubelet/eviction/helpers.go makeSignalObservations):
//!
//! | signal | available | capacity |
//! |---|---|---|
//! | `memory.available` | MemTotal − working set of the root memory cgroup (usage − inactive_file) | MemTotal |
//! | `allocatableMemory.available` | pod allocatable memory − working set of the `kubepods` cgroup | pod allocatable memory |
//! | `nodefs.available`, `nodefs.inodesFree` | statvfs of the kubelet root dir: f_bavail·f_frsize, f_ffree | f_blocks·f_frsize, f_files |
//! | `imagefs.available`, `imagefs.inodesFree` | statvfs of the runtime's image filesystem (CRI ImageFsInfo mountpoint) | as above |
//! | `containerfs.*` | the same as `nodefs.*` (no split image/container filesystem) | |
//! | `pid.available` | min(kernel.pid_max, kernel.threads-max) − tasks (`/proc/loadavg`) | min(pid_max, threads-max) |
//!
//! On cgroup v2 the root cgroup has no `memory.current`; the root working set is then
//! MemTotal − MemFree − inactive_file (root `memory.stat`, or `Inactive(file)` of
//! /proc/meminfo), the way runc reads the root from meminfo.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::fs::{FsStats, statvfs};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Signal {
    MemoryAvailable,
    AllocatableMemoryAvailable,
    NodeFsAvailable,
    NodeFsInodesFree,
    ImageFsAvailable,
    ImageFsInodesFree,
    ContainerFsAvailable,
    ContainerFsInodesFree,
    PidAvailable,
}

/// The node conditions eviction signals map to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Pressure {
    Memory,
    Disk,
    Pid,
}

impl Pressure {
    pub fn condition_type(self) -> &'static str {
        match self {
            Pressure::Memory => "MemoryPressure",
            Pressure::Disk => "DiskPressure",
            Pressure::Pid => "PIDPressure",
        }
    }
}

pub const ALL_SIGNALS: [Signal; 9] = [
    Signal::MemoryAvailable,
    Signal::AllocatableMemoryAvailable,
    Signal::NodeFsAvailable,
    Signal::NodeFsInodesFree,
    Signal::ImageFsAvailable,
    Signal::ImageFsInodesFree,
    Signal::ContainerFsAvailable,
    Signal::ContainerFsInodesFree,
    Signal::PidAvailable,
];

impl Signal {
    pub fn name(self) -> &'static str {
        match self {
            Signal::MemoryAvailable => "memory.available",
            Signal::AllocatableMemoryAvailable => "allocatableMemory.available",
            Signal::NodeFsAvailable => "nodefs.available",
            Signal::NodeFsInodesFree => "nodefs.inodesFree",
            Signal::ImageFsAvailable => "imagefs.available",
            Signal::ImageFsInodesFree => "imagefs.inodesFree",
            Signal::ContainerFsAvailable => "containerfs.available",
            Signal::ContainerFsInodesFree => "containerfs.inodesFree",
            Signal::PidAvailable => "pid.available",
        }
    }

    pub fn parse(name: &str) -> Option<Signal> {
        ALL_SIGNALS.into_iter().find(|s| s.name() == name)
    }

    pub fn pressure(self) -> Pressure {
        match self {
            Signal::MemoryAvailable | Signal::AllocatableMemoryAvailable => Pressure::Memory,
            Signal::PidAvailable => Pressure::Pid,
            _ => Pressure::Disk,
        }
    }

    /// The resource named in eviction messages (upstream signalToResource).
    pub fn resource(self) -> &'static str {
        match self {
            Signal::MemoryAvailable | Signal::AllocatableMemoryAvailable => "memory",
            Signal::NodeFsAvailable | Signal::ImageFsAvailable | Signal::ContainerFsAvailable => {
                "ephemeral-storage"
            }
            Signal::NodeFsInodesFree
            | Signal::ImageFsInodesFree
            | Signal::ContainerFsInodesFree => "inodes",
            Signal::PidAvailable => "pids",
        }
    }

    pub fn is_memory(self) -> bool {
        self.pressure() == Pressure::Memory
    }
}

/// One signal's value at one time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Observation {
    pub available: i128,
    pub capacity: i128,
}

pub type Observations = BTreeMap<Signal, Observation>;

/// Where node-level stats are read from.
#[derive(Debug, Clone)]
pub struct NodeSources {
    /// The kubelet root dir (nodefs).
    pub root_dir: PathBuf,
    /// `/proc` (tests point it elsewhere).
    pub proc_dir: PathBuf,
    /// The cgroup mount root, `/sys/fs/cgroup`.
    pub cgroup_dir: PathBuf,
    /// The `kubepods` cgroup relative to a hierarchy root (e.g. `/kubepods`).
    pub pods_cgroup: String,
    /// Memory pods may use (capacity − reservations), for allocatableMemory.available.
    pub pod_allocatable_memory: i128,
}

/// Read every node-level signal that can be read; `image_fs` is the image filesystem's
/// mount point if the runtime told it. Blocking (small /proc and /sys reads, statvfs).
pub fn observe_node(src: &NodeSources, image_fs: Option<&Path>) -> Observations {
    let mut obs = Observations::new();
    let meminfo = std::fs::read_to_string(src.proc_dir.join("meminfo")).unwrap_or_default();
    let mem = parse_meminfo(&meminfo);
    if let Some(total) = mem.get("MemTotal").copied()
        && let Some(ws) = root_working_set(&src.cgroup_dir, &mem)
    {
        obs.insert(
            Signal::MemoryAvailable,
            Observation {
                available: total - ws,
                capacity: total,
            },
        );
    }
    if src.pod_allocatable_memory > 0
        && let Some(ws) = cgroup_working_set(&src.cgroup_dir, &src.pods_cgroup)
    {
        obs.insert(
            Signal::AllocatableMemoryAvailable,
            Observation {
                available: src.pod_allocatable_memory - ws,
                capacity: src.pod_allocatable_memory,
            },
        );
    }
    if let Ok(fs) = statvfs(&src.root_dir) {
        insert_fs(
            &mut obs,
            fs,
            Signal::NodeFsAvailable,
            Signal::NodeFsInodesFree,
        );
        insert_fs(
            &mut obs,
            fs,
            Signal::ContainerFsAvailable,
            Signal::ContainerFsInodesFree,
        );
        let image = image_fs.and_then(|p| statvfs(p).ok()).unwrap_or(fs);
        insert_fs(
            &mut obs,
            image,
            Signal::ImageFsAvailable,
            Signal::ImageFsInodesFree,
        );
    }
    if let Some((max, running)) = pids(&src.proc_dir) {
        obs.insert(
            Signal::PidAvailable,
            Observation {
                available: max - running,
                capacity: max,
            },
        );
    }
    obs
}

fn insert_fs(obs: &mut Observations, fs: FsStats, bytes: Signal, inodes: Signal) {
    obs.insert(
        bytes,
        Observation {
            available: fs.available_bytes.min(fs.capacity_bytes),
            capacity: fs.capacity_bytes,
        },
    );
    if fs.inodes > 0 {
        obs.insert(
            inodes,
            Observation {
                available: fs.inodes_free,
                capacity: fs.inodes,
            },
        );
    }
}

/// /proc/meminfo values in bytes.
pub fn parse_meminfo(text: &str) -> BTreeMap<String, i128> {
    text.lines()
        .filter_map(|l| {
            let (key, rest) = l.split_once(':')?;
            let mut parts = rest.split_whitespace();
            let value: i128 = parts.next()?.parse().ok()?;
            let scale = if parts.next() == Some("kB") { 1024 } else { 1 };
            Some((key.trim().to_string(), value * scale))
        })
        .collect()
}

fn read_number(path: &Path) -> Option<i128> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// A key of a cgroup `memory.stat` file.
fn stat_value(path: &Path, key: &str) -> Option<i128> {
    let text = std::fs::read_to_string(path).ok()?;
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(' ')?;
        (k == key).then(|| v.trim().parse().ok())?
    })
}

/// Working set of the whole machine: the root memory cgroup's usage minus inactive
/// file pages (cgroup v1), or meminfo on cgroup v2.
pub fn root_working_set(cgroup_dir: &Path, meminfo: &BTreeMap<String, i128>) -> Option<i128> {
    let v1 = cgroup_dir.join("memory");
    if let Some(usage) = read_number(&v1.join("memory.usage_in_bytes")) {
        let inactive = stat_value(&v1.join("memory.stat"), "total_inactive_file").unwrap_or(0);
        return Some((usage - inactive).max(0));
    }
    let total = *meminfo.get("MemTotal")?;
    let free = *meminfo.get("MemFree")?;
    let inactive = stat_value(&cgroup_dir.join("memory.stat"), "inactive_file")
        .or_else(|| meminfo.get("Inactive(file)").copied())
        .unwrap_or(0);
    Some((total - free - inactive).max(0))
}

/// Working set of one cgroup (`rel` like `/kubepods/burstable/pod<uid>`), v1 or v2.
pub fn cgroup_working_set(cgroup_dir: &Path, rel: &str) -> Option<i128> {
    let rel = rel.trim_start_matches('/');
    let v1 = cgroup_dir.join("memory").join(rel);
    if let Some(usage) = read_number(&v1.join("memory.usage_in_bytes")) {
        let inactive = stat_value(&v1.join("memory.stat"), "total_inactive_file").unwrap_or(0);
        return Some((usage - inactive).max(0));
    }
    let v2 = cgroup_dir.join(rel);
    let usage = read_number(&v2.join("memory.current"))?;
    let inactive = stat_value(&v2.join("memory.stat"), "inactive_file").unwrap_or(0);
    Some((usage - inactive).max(0))
}

/// Number of tasks in one cgroup (pids controller), v1 or v2.
pub fn cgroup_pids(cgroup_dir: &Path, rel: &str) -> Option<i64> {
    let rel = rel.trim_start_matches('/');
    read_number(&cgroup_dir.join("pids").join(rel).join("pids.current"))
        .or_else(|| read_number(&cgroup_dir.join(rel).join("pids.current")))
        .map(|n| n as i64)
}

/// (task limit, running tasks): min(pid_max, threads-max) and the task count of
/// /proc/loadavg ("1.0 0.5 0.2 3/512 1234": 512).
pub fn pids(proc_dir: &Path) -> Option<(i128, i128)> {
    let max = ["sys/kernel/pid_max", "sys/kernel/threads-max"]
        .iter()
        .filter_map(|f| read_number(&proc_dir.join(f)))
        .min()?;
    let loadavg = std::fs::read_to_string(proc_dir.join("loadavg")).ok()?;
    let running = parse_loadavg_tasks(&loadavg)?;
    Some((max, running))
}

pub fn parse_loadavg_tasks(text: &str) -> Option<i128> {
    text.split_whitespace()
        .nth(3)?
        .split_once('/')?
        .1
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(p: &Path, text: &str) {
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }

    #[test]
    fn names_round_trip_and_map_to_conditions() {
        for s in ALL_SIGNALS {
            assert_eq!(Signal::parse(s.name()), Some(s));
        }
        assert_eq!(
            Signal::parse("nodefs.inodesFree").unwrap().pressure(),
            Pressure::Disk
        );
        assert_eq!(Signal::PidAvailable.resource(), "pids");
        assert_eq!(Signal::ImageFsAvailable.resource(), "ephemeral-storage");
    }

    #[test]
    fn memory_available_is_total_minus_root_working_set_v1() {
        let dir = tempfile::tempdir().unwrap();
        let proc_dir = dir.path().join("proc");
        let cg = dir.path().join("cg");
        write(
            &proc_dir.join("meminfo"),
            "MemTotal:       1000 kB\nMemFree:         100 kB\n",
        );
        write(&cg.join("memory/memory.usage_in_bytes"), "600000\n");
        write(
            &cg.join("memory/memory.stat"),
            "cache 1\ntotal_inactive_file 100000\ntotal_active_file 5\n",
        );
        write(&proc_dir.join("sys/kernel/pid_max"), "32768\n");
        write(&proc_dir.join("sys/kernel/threads-max"), "20000\n");
        write(&proc_dir.join("loadavg"), "0.10 0.20 0.30 2/345 999\n");
        write(&cg.join("memory/kubepods/memory.usage_in_bytes"), "300\n");
        write(
            &cg.join("memory/kubepods/memory.stat"),
            "total_inactive_file 100\n",
        );
        let src = NodeSources {
            root_dir: dir.path().to_path_buf(),
            proc_dir,
            cgroup_dir: cg,
            pods_cgroup: "/kubepods".into(),
            pod_allocatable_memory: 1000,
        };
        let obs = observe_node(&src, None);
        assert_eq!(
            obs[&Signal::MemoryAvailable],
            Observation {
                available: 1_024_000 - 500_000,
                capacity: 1_024_000
            }
        );
        assert_eq!(
            obs[&Signal::AllocatableMemoryAvailable],
            Observation {
                available: 800,
                capacity: 1000
            }
        );
        assert_eq!(
            obs[&Signal::PidAvailable],
            Observation {
                available: 20000 - 345,
                capacity: 20000
            }
        );
        let fs = obs[&Signal::NodeFsAvailable];
        assert!(fs.capacity > 0 && fs.available <= fs.capacity);
        assert_eq!(obs[&Signal::ImageFsAvailable], fs);
        assert!(obs.contains_key(&Signal::NodeFsInodesFree));
    }

    #[test]
    fn cgroup_v2_root_from_meminfo() {
        let dir = tempfile::tempdir().unwrap();
        let mem = parse_meminfo("MemTotal: 1000 kB\nMemFree: 200 kB\nInactive(file): 300 kB\n");
        assert_eq!(root_working_set(dir.path(), &mem), Some(500 * 1024));
        write(&dir.path().join("pod1/memory.current"), "5000\n");
        write(
            &dir.path().join("pod1/memory.stat"),
            "anon 1\ninactive_file 1000\n",
        );
        write(&dir.path().join("pod1/pids.current"), "7\n");
        assert_eq!(cgroup_working_set(dir.path(), "/pod1"), Some(4000));
        assert_eq!(cgroup_pids(dir.path(), "/pod1"), Some(7));
    }

    #[test]
    fn loadavg_tasks() {
        assert_eq!(parse_loadavg_tasks("1.0 0.5 0.2 3/512 1234\n"), Some(512));
        assert_eq!(parse_loadavg_tasks("garbage"), None);
    }
}
