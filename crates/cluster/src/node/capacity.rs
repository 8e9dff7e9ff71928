//! Node capacity and allocatable from the machine: cpu, memory, pods, ephemeral-storage
//! and hugepages; allocatable subtracts kubeReserved, systemReserved and the hard
//! eviction thresholds (memory.available, nodefs.available), as upstream's container
//! manager does.

use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use kubelet_core::cm::node::NodeAllocatable;
use std::collections::BTreeMap;

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
    /// systemReserved, kubeReserved and evictionHard as parsed once at start-up.
    pub node: kubelet_core::cm::node::Reservations,
}

/// Facts read from the machine: the same reading the pod admission, the downward API
/// and memory-backed volumes use, so the Node reports exactly what the kubelet enforces.
pub use kubelet_core::cm::node::Machine;

/// Hugepage resource name for a page size in bytes (`hugepages-2Mi`, `hugepages-1Gi`).
pub fn hugepage_name(page_bytes: i128) -> String {
    kubelet_core::cm::node::hugepage_resource_name(page_bytes)
}

/// Bytes as the API server prints them (BinarySI: `1Gi`, `32665980Ki`, `0`).
fn bytes(value: i128) -> Quantity {
    api(kubelet_primitives::Quantity::from_bytes(value.max(0)))
}

/// CPU in millicores, canonical (`4`, `3500m`).
fn cpu_milli(milli: i128) -> Quantity {
    api(kubelet_primitives::Quantity::from_milli(milli.max(0)))
}

/// A plain count.
fn count(n: i64) -> Quantity {
    api(kubelet_primitives::Quantity::from_value(i128::from(
        n.max(0),
    )))
}

fn api(q: kubelet_primitives::Quantity) -> Quantity {
    Quantity(q.to_string())
}

/// Capacity from the machine; allocatable as computed by kubelet-core's
/// [`NodeAllocatable`] (reservations, hard eviction thresholds, huge pages).
pub fn compute(m: &Machine, r: &Reservations) -> Resources {
    let alloc = NodeAllocatable::compute(m, &r.node);
    let mut capacity = BTreeMap::new();
    let mut allocatable = BTreeMap::new();
    capacity.insert("cpu".to_string(), cpu_milli(m.cpu_cores * 1000));
    allocatable.insert("cpu".to_string(), cpu_milli(alloc.cpu_milli));
    capacity.insert("memory".to_string(), bytes(m.memory_bytes));
    allocatable.insert("memory".to_string(), bytes(alloc.memory_bytes));
    capacity.insert("pods".to_string(), count(r.max_pods));
    allocatable.insert("pods".to_string(), count(r.max_pods));
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
            node: kubelet_core::cm::node::Reservations::parse(
                &[("cpu".to_string(), "500m".to_string())].into(),
                &[("memory".to_string(), "1Gi".to_string())].into(),
                &[
                    ("memory.available".to_string(), "100Mi".to_string()),
                    ("nodefs.available".to_string(), "10%".to_string()),
                ]
                .into(),
            )
            .unwrap(),
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
    fn canonical_forms() {
        assert_eq!(bytes(0).0, "0");
        assert_eq!(bytes(1 << 30).0, "1Gi");
        assert_eq!(bytes(33449963520).0, "32665980Ki");
        // Below 1024 upstream prints a binary quantity with decimal suffixes.
        assert_eq!(bytes(1000).0, "1k");
        assert_eq!(bytes(2 * 1024 * 1024).0, "2Mi");
        assert_eq!(cpu_milli(8000).0, "8");
        assert_eq!(cpu_milli(3500).0, "3500m");
        assert_eq!(count(110).0, "110");
    }

    /// `systemReserved: {cpu: 500000u}` is 500m off the node's allocatable.
    #[test]
    fn micro_unit_reservations_are_honoured() {
        let m = Machine {
            cpu_cores: 8,
            memory_bytes: 32 << 30,
            ..Default::default()
        };
        let r = Reservations {
            max_pods: 110,
            node: kubelet_core::cm::node::Reservations::parse(
                &[("cpu".to_string(), "500000u".to_string())].into(),
                &BTreeMap::new(),
                &BTreeMap::new(),
            )
            .unwrap(),
        };
        assert_eq!(compute(&m, &r).allocatable["cpu"].0, "7500m");
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
