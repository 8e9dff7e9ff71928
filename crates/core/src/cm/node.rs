//! What the node can give pods, as upstream's node status `allocatable`: capacity read
//! from the machine minus `systemReserved`, `kubeReserved` and the hard eviction
//! thresholds; memory held by huge pages is not allocatable as memory. The downward API
//! defaults unset limits to it, and memory-backed emptyDirs are sized by it.

use std::collections::BTreeMap;
use std::path::Path;

use kubelet_primitives::{Quantity, ThresholdValue, quantity};

/// Huge pages of one size the host supports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HugePages {
    pub page_bytes: i128,
    /// Pages reserved (`nr_hugepages`).
    pub pages: i128,
}

/// Facts read from the machine (what cadvisor reports upstream).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Machine {
    pub cpu_cores: i128,
    /// `MemTotal`.
    pub memory_bytes: i128,
    /// Size of the filesystem holding the kubelet root dir.
    pub ephemeral_storage_bytes: i128,
    /// Every huge page size of the host, smallest first.
    pub hugepages: Vec<HugePages>,
}

impl Machine {
    pub fn read(root_dir: &Path) -> Machine {
        Machine {
            cpu_cores: std::thread::available_parallelism()
                .map(|n| n.get() as i128)
                .unwrap_or(1),
            memory_bytes: super::memory_capacity(),
            ephemeral_storage_bytes: filesystem_size(root_dir)
                .or_else(|| filesystem_size(Path::new("/")))
                .unwrap_or(0),
            hugepages: host_hugepages(Path::new("/sys/kernel/mm/hugepages")),
        }
    }
}

/// Total bytes of the filesystem holding `path` (the nearest existing ancestor).
fn filesystem_size(path: &Path) -> Option<i128> {
    let existing = path.ancestors().find(|p| p.exists())?;
    let c = std::ffi::CString::new(existing.as_os_str().as_encoded_bytes()).ok()?;
    // SAFETY: statvfs fills the zeroed struct; `c` is a valid NUL-terminated path.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
        return None;
    }
    Some(st.f_blocks as i128 * st.f_frsize as i128)
}

/// `hugepages-<kB>kB/nr_hugepages` under `dir`, smallest page size first.
pub fn host_hugepages(dir: &Path) -> Vec<HugePages> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<HugePages> = entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let kib: i128 = name
                .strip_prefix("hugepages-")?
                .strip_suffix("kB")?
                .parse()
                .ok()?;
            let pages = std::fs::read_to_string(e.path().join("nr_hugepages"))
                .ok()
                .and_then(|s| s.trim().parse().ok())
                .unwrap_or(0);
            Some(HugePages {
                page_bytes: kib * 1024,
                pages,
            })
        })
        .collect();
    out.sort_by_key(|h| h.page_bytes);
    out
}

/// The API resource name of a huge page size: `hugepages-2Mi`, `hugepages-1Gi` (the size
/// as a canonical BinarySI quantity, as upstream).
pub fn hugepage_resource_name(page_bytes: i128) -> String {
    format!("hugepages-{}", Quantity::from_bytes(page_bytes))
}

/// The page size of a `hugepages-<size>` resource name, in bytes.
pub fn hugepage_size_of(resource: &str) -> Option<i128> {
    let size = resource.strip_prefix("hugepages-")?;
    quantity::parse_value(size).ok().filter(|b| *b > 0)
}

/// The page size as the CRI and the hugetlb cgroup files name it: `2MB`, `1GB`, `64KB`
/// (binary units with the suffixes runc and the kernel use).
pub fn hugepage_cgroup_size(page_bytes: i128) -> String {
    let units = ["B", "KB", "MB", "GB", "TB", "PB"];
    let mut value = page_bytes;
    let mut unit = 0;
    while value >= 1024 && unit + 1 < units.len() {
        value /= 1024;
        unit += 1;
    }
    format!("{value}{}", units[unit])
}

/// Allocatable resources of the node.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeAllocatable {
    pub cpu_milli: i128,
    pub memory_bytes: i128,
    pub ephemeral_storage_bytes: i128,
    /// Every huge page size of the host: page size in bytes → allocatable bytes.
    pub hugepages: BTreeMap<i128, i128>,
}

/// A resource list in base units: `cpu` in millicores, everything else in units (bytes,
/// process ids).
pub type Resources = BTreeMap<String, i128>;

/// The amount of one resource in base units: millicores for `cpu`, whole units (rounded
/// up, as upstream's `Value`) for everything else.
pub fn base_units(resource: &str, q: &Quantity) -> i128 {
    if resource == "cpu" {
        q.milli_value()
    } else {
        q.value()
    }
}

/// A reserved map (`systemReserved`, `kubeReserved`) in base units; a malformed or
/// negative quantity is an error naming the resource and the value.
pub fn parse_resources(map: &BTreeMap<String, String>) -> Result<Resources, String> {
    map.iter()
        .map(|(name, text)| {
            let q = Quantity::parse(text).map_err(|e| format!("{name}: {e}"))?;
            if q.is_negative() {
                return Err(format!("{name}: quantity {text:?} must not be negative"));
            }
            Ok((name.clone(), base_units(name, &q)))
        })
        .collect()
}

/// `systemReserved`, `kubeReserved` and `evictionHard`, parsed once where the
/// configuration is read and shared by everything that needs them: the node's
/// allocatable (status, admission, downward API), the `kubepods` and reserved cgroups,
/// and the eviction manager's pod memory.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Reservations {
    pub system_reserved: Resources,
    pub kube_reserved: Resources,
    /// Signal (`memory.available`, `nodefs.available`, ...) → threshold.
    pub eviction_hard: BTreeMap<String, ThresholdValue>,
}

impl Reservations {
    /// Parses the three maps of the configuration; the error names the field, the
    /// resource and the value.
    pub fn parse(
        system_reserved: &BTreeMap<String, String>,
        kube_reserved: &BTreeMap<String, String>,
        eviction_hard: &BTreeMap<String, String>,
    ) -> Result<Reservations, String> {
        Ok(Reservations {
            system_reserved: parse_resources(system_reserved)
                .map_err(|e| format!("systemReserved {e}"))?,
            kube_reserved: parse_resources(kube_reserved)
                .map_err(|e| format!("kubeReserved {e}"))?,
            eviction_hard: eviction_hard
                .iter()
                .map(|(signal, text)| {
                    ThresholdValue::parse(text)
                        .map(|v| (signal.clone(), v))
                        .map_err(|e| format!("evictionHard {signal}: {e}"))
                })
                .collect::<Result<_, _>>()?,
        })
    }

    /// systemReserved plus kubeReserved of one resource, in base units.
    pub fn reserved(&self, resource: &str) -> i128 {
        self.system_reserved.get(resource).copied().unwrap_or(0)
            + self.kube_reserved.get(resource).copied().unwrap_or(0)
    }

    /// The hard eviction threshold of `signal` in units of `capacity` (percentages in
    /// single precision, as upstream); 0 when there is none.
    fn threshold(&self, signal: &str, capacity: i128) -> i128 {
        self.eviction_hard
            .get(signal)
            .map_or(0, |t| t.amount(capacity))
    }
}

impl NodeAllocatable {
    /// Capacity minus reservations and hard eviction thresholds, never negative.
    pub fn compute(machine: &Machine, r: &Reservations) -> NodeAllocatable {
        let hugepages_total: i128 = machine
            .hugepages
            .iter()
            .map(|h| h.page_bytes * h.pages)
            .sum();
        NodeAllocatable {
            cpu_milli: (machine.cpu_cores * 1000 - r.reserved("cpu")).max(0),
            memory_bytes: (machine.memory_bytes
                - r.reserved("memory")
                - r.threshold("memory.available", machine.memory_bytes)
                - hugepages_total)
                .max(0),
            ephemeral_storage_bytes: (machine.ephemeral_storage_bytes
                - r.reserved("ephemeral-storage")
                - r.threshold("nodefs.available", machine.ephemeral_storage_bytes))
            .max(0),
            hugepages: machine
                .hugepages
                .iter()
                .map(|h| {
                    let name = hugepage_resource_name(h.page_bytes);
                    let free = h.page_bytes * h.pages - r.reserved(&name);
                    (h.page_bytes, free.max(0))
                })
                .collect(),
        }
    }

    /// The allocatable amount of `resource` (an API name) in milli-units, for the
    /// downward API's defaults; `None` for resources the node does not have.
    pub fn milli_of(&self, resource: &str) -> Option<i128> {
        match resource {
            "cpu" => Some(self.cpu_milli),
            "memory" => Some(self.memory_bytes * 1000),
            "ephemeral-storage" => Some(self.ephemeral_storage_bytes * 1000),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(kv: &[(&str, &str)]) -> BTreeMap<String, String> {
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    pub(crate) fn reservations(
        system: &[(&str, &str)],
        kube: &[(&str, &str)],
        eviction_hard: &[(&str, &str)],
    ) -> Reservations {
        Reservations::parse(&map(system), &map(kube), &map(eviction_hard)).unwrap()
    }

    #[test]
    fn allocatable_subtracts_reservations_thresholds_and_hugepages() {
        let machine = Machine {
            cpu_cores: 4,
            memory_bytes: 8 << 30,
            ephemeral_storage_bytes: 100 << 30,
            hugepages: vec![
                HugePages {
                    page_bytes: 2 << 20,
                    pages: 10,
                },
                HugePages {
                    page_bytes: 1 << 30,
                    pages: 0,
                },
            ],
        };
        let a = NodeAllocatable::compute(
            &machine,
            &reservations(
                &[("cpu", "500m"), ("memory", "1Gi")],
                &[("cpu", "250m"), ("ephemeral-storage", "1Gi")],
                &[("memory.available", "100Mi"), ("nodefs.available", "10%")],
            ),
        );
        assert_eq!(a.cpu_milli, 3250);
        assert_eq!(
            a.memory_bytes,
            (8 << 30) - (1 << 30) - (100 << 20) - (20 << 20)
        );
        // 10% in single precision, as upstream.
        let ten_percent = ((100i128 << 30) as f64 * f64::from(10f32 / 100.0)) as i128;
        assert_eq!(
            a.ephemeral_storage_bytes,
            (100 << 30) - (1 << 30) - ten_percent
        );
        assert_eq!(a.hugepages[&(2 << 20)], 20 << 20);
        assert_eq!(a.hugepages[&(1 << 30)], 0);
        assert_eq!(a.milli_of("cpu"), Some(3250));
        assert_eq!(a.milli_of("nvidia.com/gpu"), None);
        let over = NodeAllocatable::compute(&machine, &reservations(&[("cpu", "8")], &[], &[]));
        assert_eq!(over.cpu_milli, 0, "never negative");
    }

    /// Every quantity form upstream accepts is honoured: `500000u` of cpu is 500m, as
    /// `0.5` and `500m` are (it used to parse in the configuration and be dropped here).
    #[test]
    fn reservations_in_any_quantity_form_are_honoured() {
        let machine = Machine {
            cpu_cores: 2,
            memory_bytes: 4 << 30,
            ..Default::default()
        };
        for cpu in ["500000u", "0.5", "500m", "500000000n", "5e-1"] {
            let a = NodeAllocatable::compute(&machine, &reservations(&[("cpu", cpu)], &[], &[]));
            assert_eq!(a.cpu_milli, 1500, "systemReserved cpu {cpu}");
        }
        let a = NodeAllocatable::compute(
            &machine,
            &reservations(&[], &[("memory", "1Gi")], &[("memory.available", "0.5Gi")]),
        );
        assert_eq!(a.memory_bytes, (4 << 30) - (1 << 30) - (512 << 20));
    }

    #[test]
    fn malformed_reservations_are_refused_naming_them() {
        let err =
            Reservations::parse(&map(&[("cpu", "1 core")]), &map(&[]), &map(&[])).unwrap_err();
        assert!(
            err.contains("systemReserved cpu") && err.contains("\"1 core\""),
            "{err}"
        );
        let err =
            Reservations::parse(&map(&[]), &map(&[("memory", "-1Gi")]), &map(&[])).unwrap_err();
        assert!(
            err.contains("kubeReserved memory") && err.contains("negative"),
            "{err}"
        );
        let err = Reservations::parse(&map(&[]), &map(&[]), &map(&[("memory.available", "10MB")]))
            .unwrap_err();
        assert!(err.contains("evictionHard memory.available"), "{err}");
    }

    #[test]
    fn hugepage_names() {
        assert_eq!(hugepage_resource_name(2 << 20), "hugepages-2Mi");
        assert_eq!(hugepage_resource_name(1 << 30), "hugepages-1Gi");
        assert_eq!(hugepage_resource_name(64 << 10), "hugepages-64Ki");
        assert_eq!(hugepage_size_of("hugepages-2Mi"), Some(2 << 20));
        assert_eq!(hugepage_size_of("hugepages-1Gi"), Some(1 << 30));
        assert_eq!(hugepage_size_of("hugepages-x"), None);
        assert_eq!(hugepage_size_of("memory"), None);
        assert_eq!(hugepage_cgroup_size(2 << 20), "2MB");
        assert_eq!(hugepage_cgroup_size(1 << 30), "1GB");
        assert_eq!(hugepage_cgroup_size(64 << 10), "64KB");
    }

    #[test]
    fn reads_host_hugepage_dirs() {
        let tmp = tempfile::tempdir().unwrap();
        for (dir, n) in [("hugepages-2048kB", "3"), ("hugepages-1048576kB", "0")] {
            std::fs::create_dir_all(tmp.path().join(dir)).unwrap();
            std::fs::write(tmp.path().join(dir).join("nr_hugepages"), n).unwrap();
        }
        std::fs::create_dir_all(tmp.path().join("other")).unwrap();
        assert_eq!(
            host_hugepages(tmp.path()),
            vec![
                HugePages {
                    page_bytes: 2 << 20,
                    pages: 3
                },
                HugePages {
                    page_bytes: 1 << 30,
                    pages: 0
                }
            ]
        );
    }
}
