//! Node allocatable enforcement on cgroups, as upstream's node container manager: the
//! `kubepods` cgroup (cgroupfs driver, `cgroupsPerQOS: true`) gets the cpu shares, memory
//! limit, pids limit and hugetlb limits of what the node gives pods. With "pods" in
//! `enforceNodeAllocatable` (the default) that is capacity minus `systemReserved` and
//! `kubeReserved` (the hard eviction thresholds are NOT subtracted here, unlike the
//! node's reported allocatable); without it, the whole capacity. "system-reserved" and
//! "kube-reserved" write the reservations themselves on the existing
//! `systemReservedCgroup` / `kubeReservedCgroup`; the `-compressible` variants write only
//! the cpu shares.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::cgroup::CgroupName;
pub use super::node::Resources;
use super::node::{self, Machine};
use super::{CgroupLayout, cpu_shares, shares_to_weight};

/// The resource upstream calls the process-id limit (`pid` in the reserved maps).
pub const PIDS: &str = "pid";

/// How long to wait between attempts to update the `kubepods` limits (upstream: a
/// minute), e.g. while the pods use more memory than the new limit allows.
pub const RETRY_PERIOD: Duration = Duration::from_secs(60);

/// The enforcement settings of the kubelet configuration.
#[derive(Debug, Clone, Default)]
pub struct Enforcement {
    /// `enforceNodeAllocatable`.
    pub enforce: Vec<String>,
    /// `systemReserved` / `kubeReserved`, parsed once with the configuration
    /// ([`node::Reservations`]).
    pub system_reserved: Resources,
    pub kube_reserved: Resources,
    /// `systemReservedCgroup` / `kubeReservedCgroup` (cgroupfs paths).
    pub system_reserved_cgroup: String,
    pub kube_reserved_cgroup: String,
}

impl Enforcement {
    fn has(&self, key: &str) -> bool {
        self.enforce.iter().any(|v| v == key)
    }
}

/// The system-wide task limit: the smaller of `kernel.pid_max` and `kernel.threads-max`
/// (upstream's pidlimit stats), from `proc_sys_kernel` (normally /proc/sys/kernel).
pub fn max_pids(proc_sys_kernel: &Path) -> Option<i128> {
    ["pid_max", "threads-max"]
        .iter()
        .filter_map(|f| std::fs::read_to_string(proc_sys_kernel.join(f)).ok())
        .filter_map(|s| s.trim().parse::<i128>().ok())
        .min()
}

/// Upstream's internal capacity: cpu, memory, ephemeral storage, every huge page size,
/// and the pid limit when known.
pub fn internal_capacity(machine: &Machine, pids: Option<i128>) -> Resources {
    let mut out = Resources::new();
    out.insert("cpu".into(), machine.cpu_cores * 1000);
    out.insert("memory".into(), machine.memory_bytes);
    out.insert("ephemeral-storage".into(), machine.ephemeral_storage_bytes);
    for h in &machine.hugepages {
        out.insert(
            node::hugepage_resource_name(h.page_bytes),
            h.page_bytes * h.pages,
        );
    }
    if let Some(p) = pids {
        out.insert(PIDS.into(), p);
    }
    out
}

/// Capacity minus both reservations, per resource, never negative (upstream
/// getNodeAllocatableAbsolute; no eviction thresholds).
pub fn allocatable_absolute(capacity: &Resources, e: &Enforcement) -> Resources {
    capacity
        .iter()
        .map(|(name, value)| {
            let reserved = e.system_reserved.get(name).copied().unwrap_or(0)
                + e.kube_reserved.get(name).copied().unwrap_or(0);
            (name.clone(), (value - reserved).max(0))
        })
        .collect()
}

/// What the `kubepods` cgroup is limited to: allocatable when "pods" is enforced (with
/// per-QoS cgroups), else the capacity.
pub fn kubepods_resources(capacity: &Resources, e: &Enforcement, per_qos: bool) -> Resources {
    if per_qos && e.has("pods") {
        allocatable_absolute(capacity, e)
    } else {
        capacity.clone()
    }
}

/// Limits for one cgroup, as upstream's getCgroupConfig: only what the list names is set.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CgroupLimits {
    pub cpu_shares: Option<i64>,
    pub memory_bytes: Option<i128>,
    pub pids: Option<i128>,
    /// Page size in bytes → limit in bytes; host sizes not listed get 0. `None`: the
    /// hugetlb files are left alone (compressible-only limits).
    pub hugepages: Option<BTreeMap<i128, i128>>,
}

impl CgroupLimits {
    /// From a resource list; `compressible_only` keeps just the cpu shares.
    pub fn from_resources(list: &Resources, compressible_only: bool) -> CgroupLimits {
        let cpu_shares = list.get("cpu").map(|m| cpu_shares(*m));
        if compressible_only {
            return CgroupLimits {
                cpu_shares,
                ..Default::default()
            };
        }
        CgroupLimits {
            cpu_shares,
            // 0 means "leave alone" to the OCI runtimes' cgroup code upstream relies on.
            memory_bytes: list.get("memory").copied().filter(|v| *v > 0),
            pids: list.get(PIDS).copied().filter(|v| *v > 0),
            hugepages: Some(
                list.iter()
                    .filter_map(|(name, v)| Some((node::hugepage_size_of(name)?, *v)))
                    .collect(),
            ),
        }
    }

    /// The control files and values for cgroup v1 and v2 alike (a hierarchy has only
    /// some of them). Every host huge page size gets a hugetlb limit (0 when not listed),
    /// as upstream, except for compressible-only limits.
    pub fn files(&self, host_sizes: &[i128]) -> Vec<(String, String)> {
        let mut out = Vec::new();
        if let Some(shares) = self.cpu_shares {
            out.push(("cpu.shares".into(), shares.to_string()));
            out.push(("cpu.weight".into(), shares_to_weight(shares).to_string()));
        }
        if let Some(bytes) = self.memory_bytes {
            out.push(("memory.limit_in_bytes".into(), bytes.to_string()));
            out.push(("memory.max".into(), bytes.to_string()));
        }
        if let Some(pids) = self.pids {
            out.push(("pids.max".into(), pids.to_string()));
        }
        if let Some(hugepages) = &self.hugepages {
            for size in host_sizes {
                let name = node::hugepage_cgroup_size(*size);
                let value = hugepages.get(size).copied().unwrap_or(0).to_string();
                for file in [
                    format!("hugetlb.{name}.limit_in_bytes"),
                    format!("hugetlb.{name}.rsvd.limit_in_bytes"),
                    format!("hugetlb.{name}.max"),
                    format!("hugetlb.{name}.rsvd.max"),
                ] {
                    out.push((file, value.clone()));
                }
            }
        }
        out
    }
}

/// The node allocatable cgroup: `<cgroupRoot>/kubepods` (`kubepods.slice` with systemd),
/// or the cgroup root itself without per-QoS cgroups (`None` for the root cgroup, which
/// is never limited).
pub fn node_cgroup(layout: &CgroupLayout) -> Option<CgroupName> {
    if layout.per_qos {
        return Some(layout.kubepods_name());
    }
    let root = layout.root_name();
    (!root.0.is_empty()).then_some(root)
}

/// Writes the node-level cgroups.
#[derive(Debug, Clone)]
pub struct NodeCgroups {
    pub layout: CgroupLayout,
    pub enforcement: Enforcement,
    pub capacity: Resources,
    /// Huge page sizes of the host, in bytes.
    pub host_sizes: Vec<i128>,
    /// Mount points of the cgroup hierarchies.
    pub mounts: Vec<PathBuf>,
}

impl NodeCgroups {
    /// Read the machine (capacity, pid limit); huge page sizes and cgroup mounts come
    /// from the layout's host.
    pub fn for_host(layout: CgroupLayout, enforcement: Enforcement, root_dir: &Path) -> Self {
        let machine = Machine::read(root_dir);
        NodeCgroups {
            capacity: internal_capacity(&machine, max_pids(Path::new("/proc/sys/kernel"))),
            host_sizes: layout.host.page_sizes.clone(),
            mounts: layout.host.mounts.iter().map(|m| m.path.clone()).collect(),
            layout,
            enforcement,
        }
    }

    /// The limits of the node allocatable cgroup.
    pub fn kubepods_limits(&self) -> CgroupLimits {
        CgroupLimits::from_resources(
            &kubepods_resources(&self.capacity, &self.enforcement, self.layout.per_qos),
            false,
        )
    }

    /// Create the node allocatable cgroup (in every hierarchy, or as a systemd slice)
    /// and write its limits.
    pub fn enforce_kubepods(&self) -> Result<(), String> {
        let Some(name) = node_cgroup(&self.layout) else {
            return Ok(());
        };
        let files = self.kubepods_limits().files(&self.host_sizes);
        self.layout.apply_cgroup(&name, &files)
    }

    /// Write the reservations on `systemReservedCgroup` / `kubeReservedCgroup` when
    /// enforced. Those cgroups must exist already (in some hierarchy); any failure is an
    /// error naming the cgroup, as upstream fails the kubelet's start then.
    pub fn enforce_reserved(&self) -> Result<(), String> {
        let e = &self.enforcement;
        for (key, cgroup, reserved, what) in [
            (
                "system-reserved",
                &e.system_reserved_cgroup,
                &e.system_reserved,
                "System Reserved",
            ),
            (
                "kube-reserved",
                &e.kube_reserved_cgroup,
                &e.kube_reserved,
                "Kube Reserved",
            ),
        ] {
            let compressible = e.has(&format!("{key}-compressible"));
            if !e.has(key) && !compressible {
                continue;
            }
            let limits = CgroupLimits::from_resources(reserved, compressible);
            let written = if reserved.is_empty() {
                // Nothing reserved: upstream has no limits to apply and refuses.
                Err(format!("{cgroup:?} cgroup is not configured properly"))
            } else {
                self.write_existing_cgroup(cgroup, &limits)
            };
            written.map_err(|err| {
                format!("Failed to enforce {what} Cgroup Limits on {cgroup:?}: {err}")
            })?;
            tracing::info!(cgroup = %cgroup, ?limits, "enforced {key} limits");
        }
        Ok(())
    }

    fn write_existing_cgroup(&self, cgroup: &str, limits: &CgroupLimits) -> Result<(), String> {
        let rel = cgroup.trim_matches('/');
        let dirs: Vec<PathBuf> = self
            .mounts
            .iter()
            .map(|m| m.join(rel))
            .filter(|d| d.is_dir())
            .collect();
        if dirs.is_empty() {
            return Err(format!("cgroup {cgroup:?} does not exist"));
        }
        let files = limits.files(&self.host_sizes);
        for dir in dirs {
            super::write_existing(&dir, &files)?;
        }
        Ok(())
    }

    /// What the kubelet does at start, before any pod: the reserved cgroups (an error
    /// stops the start), then `kubepods`; if that cannot be written now, it is retried in
    /// the background every [`RETRY_PERIOD`] until it works or `cancel` fires. Needs a
    /// tokio runtime.
    pub fn enforce_at_start(
        self,
        loops: &crate::supervisor::Loops,
        cancel: CancellationToken,
    ) -> Result<(), String> {
        self.enforce_reserved()?;
        match self.enforce_kubepods() {
            Ok(()) => {
                tracing::info!(limits = ?self.kubepods_limits(), "enforced node allocatable");
            }
            Err(err) => {
                tracing::warn!(error = %err, "failed to update node allocatable limits; retrying");
                loops.spawn_finite(
                    "kubepods-enforcement",
                    self.keep_enforcing_kubepods(RETRY_PERIOD, cancel),
                );
            }
        }
        Ok(())
    }

    /// Keep trying to write the `kubepods` limits until it works (the pods may use more
    /// memory than a lowered limit allows until evictions bring them down), every
    /// `period`. Returns when written or cancelled.
    pub async fn keep_enforcing_kubepods(self, period: Duration, cancel: CancellationToken) {
        loop {
            match self.enforce_kubepods() {
                Ok(()) => {
                    tracing::info!(limits = ?self.kubepods_limits(), "updated node allocatable limit across pods");
                    return;
                }
                Err(err) => {
                    tracing::warn!(error = %err, "failed to update node allocatable limits; retrying")
                }
            }
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tokio::time::sleep(period) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cm::node::HugePages;

    /// A reserved map as the configuration gives it, parsed as at start-up.
    fn map(kv: &[(&str, &str)]) -> Resources {
        let strings: BTreeMap<String, String> = kv
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        node::parse_resources(&strings).unwrap()
    }

    fn machine() -> Machine {
        Machine {
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
        }
    }

    fn enforcement(enforce: &[&str]) -> Enforcement {
        Enforcement {
            enforce: enforce.iter().map(|s| s.to_string()).collect(),
            system_reserved: map(&[("cpu", "500m"), ("memory", "1Gi"), ("pid", "1000")]),
            kube_reserved: map(&[
                ("cpu", "250m"),
                ("memory", "512Mi"),
                ("hugepages-2Mi", "4Mi"),
            ]),
            ..Default::default()
        }
    }

    #[test]
    fn kubepods_gets_capacity_minus_reservations_when_pods_are_enforced() {
        let capacity = internal_capacity(&machine(), Some(32768));
        let l = CgroupLimits::from_resources(
            &kubepods_resources(&capacity, &enforcement(&["pods"]), true),
            false,
        );
        // 4000m - 750m = 3250m → 3328 shares.
        assert_eq!(l.cpu_shares, Some(3328));
        // The hard eviction threshold is not subtracted for the cgroup, nor the memory
        // of reserved huge pages.
        assert_eq!(l.memory_bytes, Some((8 << 30) - (1 << 30) - (512 << 20)));
        assert_eq!(l.pids, Some(32768 - 1000));
        assert_eq!(
            l.hugepages,
            Some(BTreeMap::from([(2 << 20, 16 << 20), (1 << 30, 0)]))
        );
        // Without "pods" (or without per-QoS cgroups): the whole capacity.
        for (list, per_qos) in [(&["none"][..], true), (&["pods"][..], false)] {
            let full = CgroupLimits::from_resources(
                &kubepods_resources(&capacity, &enforcement(list), per_qos),
                false,
            );
            assert_eq!(full.cpu_shares, Some(4096));
            assert_eq!(full.memory_bytes, Some(8 << 30));
            assert_eq!(full.pids, Some(32768));
            assert_eq!(full.hugepages.unwrap()[&(2 << 20)], 20 << 20);
        }
        // Unknown pid limit: pids left alone.
        let no_pids = internal_capacity(&machine(), None);
        assert_eq!(
            CgroupLimits::from_resources(&no_pids, false).pids,
            None,
            "no pid limit known"
        );
        // Reservations over capacity give 0, not a negative value.
        let mut greedy = enforcement(&["pods"]);
        greedy.system_reserved = map(&[("cpu", "8")]);
        greedy.kube_reserved = map(&[("memory", "9Gi")]);
        let zero = allocatable_absolute(&capacity, &greedy);
        assert_eq!(zero["cpu"], 0);
        assert_eq!(zero["memory"], 0);
        // Nothing left: the minimum shares, and no memory limit written (as runc treats 0).
        let l = CgroupLimits::from_resources(&zero, false);
        assert_eq!((l.cpu_shares, l.memory_bytes), (Some(2), None));
    }

    /// `systemReserved: {cpu: 500000u}` is 500m on the kubepods cgroup, as `500m` is.
    #[test]
    fn micro_unit_reservations_reach_the_cgroup() {
        let capacity = internal_capacity(&machine(), None);
        let mut e = enforcement(&["pods"]);
        e.system_reserved = map(&[("cpu", "500000u")]);
        e.kube_reserved = map(&[]);
        let l = CgroupLimits::from_resources(&kubepods_resources(&capacity, &e, true), false);
        // 4000m - 500m = 3500m → 3584 shares.
        assert_eq!(l.cpu_shares, Some(3584));
    }

    #[test]
    fn cgroup_files_for_v1_and_v2() {
        let capacity = internal_capacity(&machine(), Some(32768));
        let l = CgroupLimits::from_resources(
            &kubepods_resources(&capacity, &enforcement(&["pods"]), true),
            false,
        );
        let files: BTreeMap<String, String> = l.files(&[2 << 20, 1 << 30]).into_iter().collect();
        let memory = ((8i128 << 30) - (1 << 30) - (512 << 20)).to_string();
        assert_eq!(files["cpu.shares"], "3328");
        assert_eq!(files["cpu.weight"], shares_to_weight(3328).to_string());
        assert_eq!(files["memory.limit_in_bytes"], memory);
        assert_eq!(files["memory.max"], memory);
        assert_eq!(files["pids.max"], "31768");
        assert_eq!(
            files["hugetlb.2MB.limit_in_bytes"],
            (16u64 << 20).to_string()
        );
        assert_eq!(files["hugetlb.2MB.max"], (16u64 << 20).to_string());
        assert_eq!(files["hugetlb.1GB.max"], "0");
        // A fake cgroup v2 directory gets only its own files.
        let tmp = tempfile::tempdir().unwrap();
        for f in ["cpu.weight", "memory.max", "pids.max", "hugetlb.2MB.max"] {
            std::fs::write(tmp.path().join(f), "").unwrap();
        }
        let nc = NodeCgroups {
            layout: CgroupLayout {
                per_qos: true,
                root: "/".into(),
                systemd: false,
                host: Default::default(),
            },
            enforcement: enforcement(&["pods"]),
            capacity,
            host_sizes: vec![2 << 20],
            mounts: vec![],
        };
        crate::cm::write_existing(tmp.path(), &nc.kubepods_limits().files(&nc.host_sizes)).unwrap();
        let read = |f: &str| std::fs::read_to_string(tmp.path().join(f)).unwrap();
        assert_eq!(read("memory.max"), memory);
        assert_eq!(read("pids.max"), "31768");
        assert_eq!(read("cpu.weight"), shares_to_weight(3328).to_string());
        assert!(!tmp.path().join("cpu.shares").exists());
        // Compressible only: just the cpu files, no memory, pids or hugetlb.
        let c = CgroupLimits::from_resources(&map(&[("cpu", "1"), ("memory", "1Gi")]), true);
        let names: Vec<String> = c.files(&[2 << 20]).into_iter().map(|(f, _)| f).collect();
        assert_eq!(names, vec!["cpu.shares", "cpu.weight"]);
    }

    #[test]
    fn node_cgroup_names() {
        let layout = |per_qos: bool, root: &str, systemd: bool| CgroupLayout {
            per_qos,
            root: root.into(),
            systemd,
            host: Default::default(),
        };
        let path = |l: CgroupLayout| node_cgroup(&l).map(|n| l.cgroup_path(&n));
        assert_eq!(path(layout(true, "/", false)).as_deref(), Some("/kubepods"));
        assert_eq!(path(layout(true, "", false)).as_deref(), Some("/kubepods"));
        assert_eq!(
            path(layout(true, "/custom/", false)).as_deref(),
            Some("/custom/kubepods")
        );
        assert_eq!(path(layout(false, "/", false)), None, "never the root");
        assert_eq!(
            path(layout(false, "/flat", false)).as_deref(),
            Some("/flat")
        );
        assert_eq!(
            path(layout(true, "/", true)).as_deref(),
            Some("/kubepods.slice")
        );
    }

    #[test]
    fn reserved_cgroups_are_written_only_when_enforced_and_must_exist() {
        let tmp = tempfile::tempdir().unwrap();
        let mount = tmp.path().to_path_buf();
        std::fs::create_dir_all(mount.join("system.slice")).unwrap();
        for f in ["cpu.shares", "memory.limit_in_bytes", "pids.max"] {
            std::fs::write(mount.join("system.slice").join(f), "").unwrap();
        }
        let mut e = enforcement(&["pods", "system-reserved"]);
        e.system_reserved_cgroup = "/system.slice".into();
        let nc = NodeCgroups {
            layout: CgroupLayout {
                per_qos: true,
                root: "/".into(),
                systemd: false,
                host: Default::default(),
            },
            enforcement: e,
            capacity: internal_capacity(&machine(), Some(32768)),
            host_sizes: vec![],
            mounts: vec![mount.clone()],
        };
        nc.enforce_reserved().unwrap();
        let read = |f: &str| std::fs::read_to_string(mount.join("system.slice").join(f)).unwrap();
        assert_eq!(read("cpu.shares"), "512");
        assert_eq!(read("memory.limit_in_bytes"), (1u64 << 30).to_string());
        assert_eq!(read("pids.max"), "1000");
        // kube-reserved enforced on a cgroup that does not exist: an error naming it.
        let mut missing = nc.clone();
        missing.enforcement.enforce.push("kube-reserved".into());
        missing.enforcement.kube_reserved_cgroup = "/kube.slice".into();
        let err = missing.enforce_reserved().unwrap_err();
        assert!(
            err.contains("Kube Reserved") && err.contains("/kube.slice"),
            "{err}"
        );
        // Enforced with nothing reserved: refused, as upstream.
        let mut empty = nc.clone();
        empty.enforcement.system_reserved.clear();
        let err = empty.enforce_reserved().unwrap_err();
        assert!(err.contains("not configured properly"), "{err}");
        // Compressible: only the shares change.
        let mut soft = nc.clone();
        soft.enforcement.enforce = vec!["system-reserved-compressible".into()];
        soft.enforcement.system_reserved = map(&[("cpu", "1"), ("memory", "2Gi")]);
        soft.enforce_reserved().unwrap();
        assert_eq!(read("cpu.shares"), "1024");
        assert_eq!(read("memory.limit_in_bytes"), (1u64 << 30).to_string());
    }

    #[test]
    fn task_limit_is_the_smaller_kernel_limit() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("pid_max"), "32768\n").unwrap();
        std::fs::write(tmp.path().join("threads-max"), "1000\n").unwrap();
        assert_eq!(max_pids(tmp.path()), Some(1000));
        assert_eq!(max_pids(&tmp.path().join("nope")), None);
    }
}
