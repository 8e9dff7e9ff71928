//! Node capacity and allocatable from the machine: cpu, memory, pods, ephemeral-storage
//! and hugepages; allocatable subtracts kubeReserved, systemReserved and the hard
//! eviction thresholds (memory.available, nodefs.available), as upstream's container
//! manager does.

use std::collections::BTreeMap;
use std::path::Path;

use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use kubelet_core::cm::quantity as q;

use super::quantity;

/// What the node reports it has.
#[derive(Debug, Clone, PartialEq)]
pub struct Resources {
    pub capacity: BTreeMap<String, Quantity>,
    pub allocatable: BTreeMap<String, Quantity>,
}

/// Reservations from the kubelet configuration.
#[derive(Debug, Clone, Default)]
pub struct Reservations {
    pub max_pods: i64,
    pub system_reserved: BTreeMap<String, String>,
    pub kube_reserved: BTreeMap<String, String>,
    pub eviction_hard: BTreeMap<String, String>,
}

/// Facts read from the machine.
#[derive(Debug, Clone, Default)]
pub struct Machine {
    pub cores: u64,
    pub memory_bytes: u64,
    /// Capacity of the filesystem holding the kubelet root dir.
    pub ephemeral_bytes: u64,
    /// (page size in KiB, pages).
    pub hugepages: Vec<(u64, u64)>,
}

impl Machine {
    pub fn read(root_dir: &Path) -> Machine {
        let info = kubelet_server::machine::collect(&kubelet_server::machine::Roots::default(), "");
        let ephemeral = kubelet_server::machine::statvfs(root_dir)
            .or_else(|| kubelet_server::machine::statvfs(Path::new("/")))
            .map(|v| v.capacity)
            .unwrap_or(0);
        Machine {
            cores: info.num_cores as u64,
            memory_bytes: info.memory_capacity,
            ephemeral_bytes: ephemeral,
            hugepages: info
                .hugepages
                .iter()
                .map(|h| (h.page_size, h.num_pages))
                .collect(),
        }
    }
}

fn reserved(maps: &[&BTreeMap<String, String>], key: &str, milli: bool) -> i128 {
    maps.iter()
        .filter_map(|m| m.get(key))
        .filter_map(|v| {
            if milli {
                q::parse_milli(v).ok()
            } else {
                q::parse_value(v).ok()
            }
        })
        .sum()
}

/// A threshold (`100Mi` or `10%`) in bytes of `total`.
fn threshold(value: Option<&String>, total: u64) -> i128 {
    match value {
        Some(v) => match v.strip_suffix('%') {
            Some(p) => p
                .parse::<f64>()
                .map(|p| (total as f64 * p / 100.0) as i128)
                .unwrap_or(0),
            None => q::parse_value(v).unwrap_or(0),
        },
        None => 0,
    }
}

/// Hugepage resource name for a page size in KiB (`hugepages-2Mi`, `hugepages-1Gi`).
pub fn hugepage_name(page_kib: u64) -> String {
    format!("hugepages-{}", quantity::bytes(page_kib * 1024).0)
}

pub fn compute(m: &Machine, r: &Reservations) -> Resources {
    let reservations = [&r.system_reserved, &r.kube_reserved];
    let mut capacity = BTreeMap::new();
    let mut allocatable = BTreeMap::new();
    let cpu_milli = i128::from(m.cores) * 1000;
    capacity.insert("cpu".to_string(), quantity::cpu_milli(cpu_milli));
    allocatable.insert(
        "cpu".to_string(),
        quantity::cpu_milli(cpu_milli - reserved(&reservations, "cpu", true)),
    );
    let hugepages_total: u64 = m.hugepages.iter().map(|(kib, n)| kib * 1024 * n).sum();
    capacity.insert("memory".to_string(), quantity::bytes(m.memory_bytes));
    let mem_alloc = i128::from(m.memory_bytes)
        - reserved(&reservations, "memory", false)
        - threshold(r.eviction_hard.get("memory.available"), m.memory_bytes)
        - i128::from(hugepages_total);
    allocatable.insert(
        "memory".to_string(),
        quantity::bytes(mem_alloc.max(0) as u64),
    );
    capacity.insert("pods".to_string(), quantity::count(r.max_pods));
    allocatable.insert("pods".to_string(), quantity::count(r.max_pods));
    capacity.insert(
        "ephemeral-storage".to_string(),
        quantity::bytes(m.ephemeral_bytes),
    );
    let eph_alloc = i128::from(m.ephemeral_bytes)
        - reserved(&reservations, "ephemeral-storage", false)
        - threshold(r.eviction_hard.get("nodefs.available"), m.ephemeral_bytes);
    allocatable.insert(
        "ephemeral-storage".to_string(),
        quantity::bytes(eph_alloc.max(0) as u64),
    );
    for (kib, pages) in &m.hugepages {
        let name = hugepage_name(*kib);
        let total = quantity::bytes(kib * 1024 * pages);
        capacity.insert(name.clone(), total.clone());
        allocatable.insert(name, total);
    }
    Resources {
        capacity,
        allocatable,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allocatable_subtracts_reservations_and_thresholds() {
        let m = Machine {
            cores: 8,
            memory_bytes: 32 << 30,
            ephemeral_bytes: 100 << 30,
            hugepages: vec![(2048, 0), (1048576, 1)],
        };
        let r = Reservations {
            max_pods: 110,
            system_reserved: [("cpu".to_string(), "500m".to_string())].into(),
            kube_reserved: [("memory".to_string(), "1Gi".to_string())].into(),
            eviction_hard: [
                ("memory.available".to_string(), "100Mi".to_string()),
                ("nodefs.available".to_string(), "10%".to_string()),
            ]
            .into(),
        };
        let res = compute(&m, &r);
        assert_eq!(res.capacity["cpu"].0, "8");
        assert_eq!(res.allocatable["cpu"].0, "7500m");
        assert_eq!(res.capacity["memory"].0, "32Gi");
        // 32Gi - 1Gi reserved - 100Mi eviction - 1Gi hugepages = 30620Mi
        assert_eq!(res.allocatable["memory"].0, "30620Mi");
        assert_eq!(res.capacity["pods"].0, "110");
        assert_eq!(res.capacity["hugepages-2Mi"].0, "0");
        assert_eq!(res.capacity["hugepages-1Gi"].0, "1Gi");
        assert_eq!(res.capacity["ephemeral-storage"].0, "100Gi");
        assert_eq!(res.allocatable["ephemeral-storage"].0, "90Gi");
    }

    #[test]
    fn this_machine_has_everything() {
        let m = Machine::read(Path::new("/"));
        let res = compute(
            &m,
            &Reservations {
                max_pods: 110,
                ..Default::default()
            },
        );
        for key in ["cpu", "memory", "pods", "ephemeral-storage"] {
            assert!(res.capacity.contains_key(key), "{key}");
            assert!(res.allocatable.contains_key(key), "{key}");
        }
    }
}
