//! Machine facts for `/spec/`, in cAdvisor's `MachineInfo` JSON shape, read from /proc
//! and /sys each time (nothing hard-coded). Every reader tolerates missing files: a
//! container or VM without DMI or NUMA information still gets an answer.

mod cpu;
mod disks;
pub mod fs;
mod ids;
mod memory;
mod net;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;

pub use fs::statvfs;

#[derive(Debug, Clone, Serialize)]
pub struct MachineInfo {
    pub timestamp: String,
    pub vendor_id: String,
    pub num_cores: usize,
    pub num_physical_cores: usize,
    pub num_sockets: usize,
    pub cpu_frequency_khz: u64,
    pub memory_capacity: u64,
    pub swap_capacity: u64,
    pub memory_by_type: BTreeMap<String, MemoryInfo>,
    pub nvm: NvmInfo,
    pub hugepages: Vec<HugePagesInfo>,
    pub machine_id: String,
    pub system_uuid: String,
    pub boot_id: String,
    pub filesystems: Vec<FsInfo>,
    pub disk_map: BTreeMap<String, DiskInfo>,
    pub network_devices: Vec<NetInfo>,
    pub topology: Vec<NumaNode>,
    pub cloud_provider: String,
    pub instance_type: String,
    pub instance_id: String,
}

#[derive(Debug, Clone, Serialize, Default)]
pub struct MemoryInfo {
    pub capacity: u64,
    pub dimm_count: u32,
}

#[derive(Debug, Clone, Serialize, Default)]
pub struct NvmInfo {
    pub memory_mode_capacity: u64,
    pub app_direct_mode_capacity: u64,
    pub avg_power_budget: u32,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct HugePagesInfo {
    /// Page size in KiB.
    pub page_size: u64,
    pub num_pages: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct FsInfo {
    pub device: String,
    pub capacity: u64,
    #[serde(rename = "type")]
    pub fs_type: String,
    pub inodes: u64,
    pub has_inodes: bool,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct DiskInfo {
    pub name: String,
    pub major: u64,
    pub minor: u64,
    pub size: u64,
    pub scheduler: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct NetInfo {
    pub name: String,
    pub mac_address: String,
    pub speed: i64,
    pub mtu: i64,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct NumaNode {
    pub node_id: u32,
    pub memory: u64,
    pub hugepages: Vec<HugePagesInfo>,
    pub cores: Vec<Core>,
    pub caches: Vec<Cache>,
    pub distances: Vec<u64>,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Core {
    pub core_id: u32,
    pub thread_ids: Vec<u32>,
    pub caches: Vec<Cache>,
    pub uncore_caches: Vec<Cache>,
    pub socket_id: u32,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Cache {
    pub id: u32,
    pub size: u64,
    #[serde(rename = "type")]
    pub cache_type: String,
    pub level: u32,
}

/// Where the facts come from; tests point this at a fake tree.
#[derive(Debug, Clone)]
pub struct Roots {
    pub proc: PathBuf,
    pub sys: PathBuf,
    pub etc: PathBuf,
}

impl Default for Roots {
    fn default() -> Self {
        Roots {
            proc: "/proc".into(),
            sys: "/sys".into(),
            etc: "/etc".into(),
        }
    }
}

pub(crate) fn read_trim(path: &Path) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_string())
}

pub(crate) fn read_u64(path: &Path) -> Option<u64> {
    read_trim(path)?.parse().ok()
}

/// Collect the machine info now. `mount_roots` are paths whose filesystems must appear
/// in `filesystems` even when they are not block devices (the kubelet root dir).
pub fn collect(roots: &Roots, cloud_provider_flag: &str) -> MachineInfo {
    let cpus = cpu::read(roots);
    let mem = memory::read(roots);
    let topology = cpu::topology(roots, &cpus, &mem);
    let cloud = ids::cloud(roots, cloud_provider_flag);
    MachineInfo {
        timestamp: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
        vendor_id: cpus.vendor_id.clone(),
        num_cores: cpus.logical.len(),
        num_physical_cores: cpus.physical_cores(),
        num_sockets: cpus.sockets(),
        cpu_frequency_khz: cpus.frequency_khz,
        memory_capacity: mem.total,
        swap_capacity: mem.swap_total,
        memory_by_type: BTreeMap::new(),
        nvm: NvmInfo::default(),
        hugepages: mem.hugepages.clone(),
        machine_id: ids::machine_id(roots),
        system_uuid: ids::system_uuid(roots),
        boot_id: ids::boot_id(roots),
        filesystems: fs::filesystems(roots),
        disk_map: disks::disk_map(roots),
        network_devices: net::devices(roots),
        topology,
        cloud_provider: cloud.provider,
        instance_type: cloud.instance_type,
        instance_id: cloud.instance_id,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_machine() {
        let info = collect(&Roots::default(), "");
        assert!(info.num_cores >= 1);
        assert!(info.memory_capacity > 0);
        assert!(!info.boot_id.is_empty());
        assert!(!info.topology.is_empty());
        let threads: usize = info
            .topology
            .iter()
            .flat_map(|n| &n.cores)
            .map(|c| c.thread_ids.len())
            .sum();
        assert_eq!(threads, info.num_cores);
        let json = serde_json::to_value(&info).unwrap();
        for key in [
            "num_cores",
            "cpu_frequency_khz",
            "memory_capacity",
            "hugepages",
            "machine_id",
            "system_uuid",
            "boot_id",
            "filesystems",
            "disk_map",
            "network_devices",
            "topology",
            "cloud_provider",
            "instance_type",
            "instance_id",
        ] {
            assert!(json.get(key).is_some(), "missing {key}");
        }
    }
}
