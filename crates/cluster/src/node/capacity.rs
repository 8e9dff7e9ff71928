//! Node capacity and allocatable from the machine: cpu, memory, pods, ephemeral-storage
//! and hugepages; allocatable subtracts kubeReserved, systemReserved and the hard
//! eviction thresholds (memory.available, nodefs.available), as upstream's container
//! manager does.

use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use kubelet_core::cm::node::NodeAllocatable;
use std::collections::BTreeMap;

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

/// Facts read from the machine: the same reading the pod admission, the downward API
/// and memory-backed volumes use, so the Node reports exactly what the kubelet enforces.
pub use kubelet_core::cm::node::Machine;

/// Hugepage resource name for a page size in bytes (`hugepages-2Mi`, `hugepages-1Gi`).
pub fn hugepage_name(page_bytes: i128) -> String {
    kubelet_core::cm::node::hugepage_resource_name(page_bytes)
}

fn bytes(value: i128) -> Quantity {
    quantity::bytes(value.max(0) as u64)
}

/// Capacity from the machine; allocatable as computed by kubelet-core's
/// [`NodeAllocatable`] (reservations, hard eviction thresholds, huge pages).
pub fn compute(m: &Machine, r: &Reservations) -> Resources {
    let alloc = NodeAllocatable::compute(m, &r.system_reserved, &r.kube_reserved, &r.eviction_hard);
    let mut capacity = BTreeMap::new();
    let mut allocatable = BTreeMap::new();
    capacity.insert("cpu".to_string(), quantity::cpu_milli(m.cpu_cores * 1000));
    allocatable.insert("cpu".to_string(), quantity::cpu_milli(alloc.cpu_milli));
    capacity.insert("memory".to_string(), bytes(m.memory_bytes));
    allocatable.insert("memory".to_string(), bytes(alloc.memory_bytes));
    capacity.insert("pods".to_string(), quantity::count(r.max_pods));
    allocatable.insert("pods".to_string(), quantity::count(r.max_pods));
    capacity.insert(
        "ephemeral-storage".to_string(),
        bytes(m.ephemeral_storage_bytes),
    );
    allocatable.insert(
        "ephemeral-storage".to_string(),
        bytes(alloc.ephemeral_storage_bytes),
    );
    for h in &m.hugepages {
        let name = hugepage_name(h.page_bytes);
        capacity.insert(name.clone(), bytes(h.page_bytes * h.pages));
        let free = alloc.hugepages.get(&h.page_bytes).copied().unwrap_or(0);
        allocatable.insert(name, bytes(free));
    }
    Resources {
        capacity,
        allocatable,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kubelet_core::cm::node::HugePages;
    use std::path::Path;

    #[test]
    fn allocatable_subtracts_reservations_and_thresholds() {
        let m = Machine {
            cpu_cores: 8,
            memory_bytes: 32 << 30,
            ephemeral_storage_bytes: 100 << 30,
            hugepages: vec![
                HugePages {
                    page_bytes: 2 << 20,
                    pages: 0,
                },
                HugePages {
                    page_bytes: 1 << 30,
                    pages: 1,
                },
            ],
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
        // 10% is a single-precision fraction upstream (0.1f32 = 0.10000000149...), so
        // the threshold is 10737418400 bytes and allocatable not quite 90Gi.
        assert_eq!(res.allocatable["ephemeral-storage"].0, "96636764000");
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
