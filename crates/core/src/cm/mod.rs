//! Container management: QoS class, the pod cgroup each sandbox is parented to, CPU and
//! memory values for CRI, and removal of pod cgroups (containerd never removes them).

pub mod admission;
pub mod cgroup;
pub mod container_memory;
pub mod enforce;
pub mod host_checks;
pub mod node;
pub mod qos;
pub mod resource_field;
pub mod systemd;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use k8s_cri::v1 as cri;
use k8s_openapi::api::core::v1::{Container, Pod};
use kubelet_primitives::pod::is_sidecar;
use kubelet_primitives::quantity;

use cgroup::CgroupName;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QosClass {
    Guaranteed,
    Burstable,
    BestEffort,
}

impl QosClass {
    pub fn as_str(self) -> &'static str {
        match self {
            QosClass::Guaranteed => "Guaranteed",
            QosClass::Burstable => "Burstable",
            QosClass::BestEffort => "BestEffort",
        }
    }
}

fn all_containers(pod: &Pod) -> impl Iterator<Item = &Container> {
    let spec = pod.spec.as_ref();
    spec.into_iter().flat_map(|s| {
        s.containers
            .iter()
            .chain(s.init_containers.iter().flatten())
    })
}

/// A container's request or limit of `name` in milli-units; `None` when unset or zero.
/// Manifests are validated before they reach here (source validation, the API server),
/// so every quantity upstream accepts parses (`500000u` is 500m).
fn resource(c: &Container, limits: bool, name: &str) -> Option<i128> {
    let res = c.resources.as_ref()?;
    let map = if limits {
        res.limits.as_ref()
    } else {
        res.requests.as_ref()
    }?;
    quantity::parse_milli(&map.get(name)?.0)
        .ok()
        .filter(|v| *v > 0)
}

/// Upstream GetPodQOS for cpu and memory.
pub fn qos_class(pod: &Pod) -> QosClass {
    let mut any = false;
    let mut guaranteed = true;
    for c in all_containers(pod) {
        for name in ["cpu", "memory"] {
            let limit = resource(c, true, name);
            let request = resource(c, false, name).or(limit);
            if request.is_some() || limit.is_some() {
                any = true;
            }
            if limit.is_none() || request != limit {
                guaranteed = false;
            }
        }
    }
    match (any, guaranteed) {
        (false, _) => QosClass::BestEffort,
        (true, true) => QosClass::Guaranteed,
        (true, false) => QosClass::Burstable,
    }
}

/// Cgroup settings the kubelet was configured with, and the host's cgroup hierarchies.
#[derive(Debug, Clone)]
pub struct CgroupLayout {
    pub per_qos: bool,
    pub root: String,
    pub systemd: bool,
    pub host: Arc<CgroupHost>,
}

/// What the host offers, read once at start ([`CgroupHost::detect`]): every pod start
/// used to read `/proc/self/mountinfo` (which grows with every pod's mounts) and the
/// huge page sizes again.
#[derive(Debug, Clone, Default)]
pub struct CgroupHost {
    pub mounts: Vec<CgroupMount>,
    /// Huge page sizes of the host, in bytes.
    pub page_sizes: Vec<i128>,
}

impl CgroupHost {
    /// Whether the host runs the v2 unified hierarchy only (no v1 hierarchy mounted).
    pub fn is_v2(&self) -> bool {
        !self.mounts.is_empty() && self.mounts.iter().all(|m| m.options.is_none())
    }

    pub fn detect() -> Self {
        CgroupHost {
            mounts: std::fs::read_to_string("/proc/self/mountinfo")
                .map(|info| parse_cgroup_mounts(&info))
                .unwrap_or_default(),
            page_sizes: node::host_hugepages(Path::new(HUGEPAGES_DIR))
                .iter()
                .map(|h| h.page_bytes)
                .collect(),
        }
    }
}

/// A mounted cgroup hierarchy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CgroupMount {
    pub path: PathBuf,
    /// cgroup v1: the hierarchy's mount options, which name its controllers (`cpu`,
    /// `cpuacct`, ...; none for a named hierarchy such as `name=systemd`). None for the
    /// v2 unified hierarchy, where any controller may be enabled.
    pub options: Option<Vec<String>>,
}

impl CgroupMount {
    /// Whether control file `file` (`cpu.shares`, `hugetlb.2MB.max`) can exist in this
    /// hierarchy: its controller (the name up to the first dot) is one of the hierarchy's.
    fn may_have(&self, file: &str) -> bool {
        let controller = file.split('.').next().unwrap_or(file);
        self.options
            .as_ref()
            .is_none_or(|options| options.iter().any(|o| o == controller))
    }

    /// Write the files of `files` this hierarchy may have, in `dir` (a cgroup of it).
    pub(crate) fn write(&self, dir: &Path, files: &[(String, String)]) -> Result<(), String> {
        let mine: Vec<(String, String)> = files
            .iter()
            .filter(|(f, _)| self.may_have(f))
            .cloned()
            .collect();
        write_existing(dir, &mine)
    }
}

impl CgroupLayout {
    /// The configured layout, with the host's hierarchies read now.
    pub fn detect(per_qos: bool, root: &str, systemd: bool) -> Self {
        Self::on_host(per_qos, root, systemd, CgroupHost::detect())
    }

    /// The configured layout on hierarchies already read.
    pub fn on_host(per_qos: bool, root: &str, systemd: bool, host: CgroupHost) -> Self {
        CgroupLayout {
            per_qos,
            root: root.to_string(),
            systemd,
            host: Arc::new(host),
        }
    }

    /// The node allocatable cgroup `<cgroupRoot>/kubepods` by name.
    pub fn kubepods_name(&self) -> CgroupName {
        self.root_name().child("kubepods")
    }

    /// The QoS cgroup of a class (`kubepods` itself for Guaranteed).
    pub fn qos_name(&self, qos: QosClass) -> CgroupName {
        match qos {
            QosClass::Guaranteed => self.kubepods_name(),
            QosClass::Burstable => self.kubepods_name().child("burstable"),
            QosClass::BestEffort => self.kubepods_name().child("besteffort"),
        }
    }

    /// The pod cgroup by name, under its QoS cgroup.
    pub fn pod_cgroup_name(&self, pod: &Pod) -> CgroupName {
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        self.qos_name(qos_class(pod)).child(&format!("pod{uid}"))
    }

    /// The cgroup parent of the pod's sandbox (upstream naming for both drivers): a
    /// cgroupfs path, or the pod's slice unit for systemd.
    pub fn pod_cgroup(&self, pod: &Pod) -> String {
        let root = self.root.trim_end_matches('/');
        if !self.per_qos {
            return if root.is_empty() {
                "/".into()
            } else {
                root.to_string()
            };
        }
        let name = self.pod_cgroup_name(pod);
        if self.systemd {
            name.systemd_unit()
        } else {
            name.cgroupfs()
        }
    }

    /// Remove the pod's cgroup (every QoS class it may have had): stop its slice
    /// (systemd) and rmdir its directories in every hierarchy. Only empty directories go,
    /// deepest first, so a cgroup still in use is left and reported.
    pub fn remove_pod_cgroups(&self, uid: &str) {
        if !self.per_qos || uid.is_empty() {
            return;
        }
        let pod = format!("pod{uid}");
        for qos in [
            QosClass::Guaranteed,
            QosClass::Burstable,
            QosClass::BestEffort,
        ] {
            let name = self.qos_name(qos).child(&pod);
            if !self.systemd && !self.exists(&name) {
                continue;
            }
            if let Err(err) = self.remove_cgroup(&name) {
                tracing::warn!(cgroup = %self.cgroup_path(&name), error = %err, "could not remove pod cgroup");
            }
        }
    }

    /// Whether the cgroup exists in some hierarchy.
    pub fn exists(&self, name: &CgroupName) -> bool {
        let rel = self.cgroup_path(name);
        self.host
            .mounts
            .iter()
            .any(|m| m.path.join(rel.trim_start_matches('/')).is_dir())
    }
}

/// Pod-level limits written into the pod cgroup (upstream pod container manager).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PodLimits {
    pub cpu_shares: i64,
    /// CFS quota in µs per period; 0 = unlimited.
    pub cpu_quota: i64,
    pub cpu_period: i64,
    /// 0 = unlimited.
    pub memory_bytes: i64,
    /// <= 0 = unlimited.
    pub pids: i64,
    /// cgroup v2 `memory.min` with MemoryQoS: the pod's memory requests; 0 = not written.
    pub memory_min: i64,
    /// Huge page size in bytes → bytes the pod requested; sizes not listed get 0.
    pub hugepages: BTreeMap<i128, i128>,
}

/// The pod's total of one resource in milli-units, as upstream's PodRequests/PodLimits:
/// regular containers and sidecars (restartable init containers) summed, or the largest
/// init container plus the sidecars started before it when that is more; plus the pod
/// overhead (for limits only when some container set one). Requests default to limits.
fn pod_total(pod: &Pod, limits: bool, name: &str) -> i128 {
    let Some(spec) = pod.spec.as_ref() else {
        return 0;
    };
    let of = |c: &Container| {
        if limits {
            resource(c, true, name)
        } else {
            resource(c, false, name).or_else(|| resource(c, true, name))
        }
    };
    let mut total: Option<i128> = spec.containers.iter().filter_map(of).reduce(|a, b| a + b);
    let mut sidecars: i128 = 0;
    let mut init_max: Option<i128> = None;
    for c in spec.init_containers.iter().flatten() {
        let own = of(c);
        let effective = if is_sidecar(c) {
            if let Some(v) = own {
                total = Some(total.unwrap_or(0) + v);
                sidecars += v;
            }
            own.map(|_| sidecars)
        } else {
            own.map(|v| v + sidecars)
        };
        if let Some(v) = effective {
            init_max = Some(init_max.map_or(v, |m| m.max(v)));
        }
    }
    let total = match (total, init_max) {
        (Some(t), Some(i)) => Some(t.max(i)),
        (t, i) => t.or(i),
    };
    let overhead = spec
        .overhead
        .as_ref()
        .and_then(|o| o.get(name))
        .and_then(|q| quantity::parse_milli(&q.0).ok())
        .unwrap_or(0);
    match total {
        Some(t) => t + overhead,
        None if limits => 0,
        None => overhead,
    }
}

/// Whether every container (init containers too) sets a limit for `name`.
fn limits_declared(pod: &Pod, name: &str) -> bool {
    all_containers(pod).all(|c| resource(c, true, name).is_some())
}

/// The memory limit of the pod cgroup in bytes (upstream ResourceConfigForPod): the
/// summed limits for Guaranteed pods, for Burstable pods only when every container has
/// one, none for BestEffort.
pub fn pod_memory_limit(pod: &Pod) -> Option<i128> {
    let declared = match qos_class(pod) {
        QosClass::Guaranteed => true,
        QosClass::Burstable => limits_declared(pod, "memory"),
        QosClass::BestEffort => false,
    };
    let bytes = pod_total(pod, true, "memory") / 1000;
    (declared && bytes > 0).then_some(bytes)
}

/// Huge page size in bytes → bytes the pod requests (upstream HugePageLimits).
fn pod_hugepages(pod: &Pod) -> BTreeMap<i128, i128> {
    let names: std::collections::BTreeSet<String> = all_containers(pod)
        .filter_map(|c| c.resources.as_ref())
        .flat_map(|r| r.requests.iter().flatten().chain(r.limits.iter().flatten()))
        .map(|(k, _)| k.clone())
        .filter(|k| node::hugepage_size_of(k).is_some())
        .collect();
    let mut out = BTreeMap::new();
    for name in names {
        if let Some(size) = node::hugepage_size_of(&name) {
            *out.entry(size).or_insert(0) += quantity::milli_to_units(pod_total(pod, false, &name));
        }
    }
    out
}

/// Limits of the whole pod as upstream: shares from the summed requests (2 for
/// BestEffort); a CFS quota and a memory limit for Guaranteed pods, and for Burstable
/// pods only when every container has that limit (otherwise the pod is unbounded).
pub fn pod_limits(pod: &Pod, cfs_quota: bool, cfs_period_us: i64, pids_limit: i64) -> PodLimits {
    let qos = qos_class(pod);
    let (cpu_declared, memory_declared) = match qos {
        QosClass::Guaranteed => (true, true),
        QosClass::Burstable => (limits_declared(pod, "cpu"), limits_declared(pod, "memory")),
        QosClass::BestEffort => (false, false),
    };
    let quota = if cfs_quota && cpu_declared {
        cpu_quota(pod_total(pod, true, "cpu"), cfs_period_us)
    } else {
        0
    };
    PodLimits {
        cpu_shares: if qos == QosClass::BestEffort {
            2
        } else {
            cpu_shares(pod_total(pod, false, "cpu"))
        },
        cpu_quota: quota,
        cpu_period: cfs_period_us,
        memory_bytes: if memory_declared {
            quantity::milli_to_units(pod_total(pod, true, "memory")) as i64
        } else {
            0
        },
        pids: pids_limit,
        memory_min: quantity::milli_to_units(pod_total(pod, false, "memory")) as i64,
        hugepages: pod_hugepages(pod),
    }
}

impl CgroupLayout {
    /// Create the pod cgroup (in every hierarchy, or as a systemd slice) and write its
    /// limits, before the sandbox is created under it. Files a hierarchy does not have
    /// are skipped.
    pub fn ensure_pod_cgroup(&self, pod: &Pod, limits: &PodLimits) -> Result<(), String> {
        if !self.per_qos {
            return Ok(());
        }
        let files = pod_cgroup_files(limits, &self.host.page_sizes);
        self.apply_cgroup(&self.pod_cgroup_name(pod), &files)
    }
}

/// The control files of a pod cgroup and their values, for cgroup v1 and v2 alike (each
/// hierarchy has only some of them).
fn pod_cgroup_files(limits: &PodLimits, host_sizes: &[i128]) -> Vec<(String, String)> {
    let v1_unlimited = |v: i64| if v > 0 { v.to_string() } else { "-1".into() };
    let v2_max = |v: i64| if v > 0 { v.to_string() } else { "max".into() };
    let mut files: Vec<(String, String)> = [
        // cgroup v1
        ("cpu.shares", limits.cpu_shares.to_string()),
        ("cpu.cfs_period_us", limits.cpu_period.to_string()),
        ("cpu.cfs_quota_us", v1_unlimited(limits.cpu_quota)),
        ("memory.limit_in_bytes", v1_unlimited(limits.memory_bytes)),
        // both
        ("pids.max", v2_max(limits.pids)),
        // cgroup v2
        (
            "cpu.weight",
            shares_to_weight(limits.cpu_shares).to_string(),
        ),
        ("memory.max", v2_max(limits.memory_bytes)),
    ]
    .into_iter()
    .map(|(f, v)| (f.to_string(), v))
    .collect();
    // cgroup v2: a quota with its period; without one upstream leaves cpu.max alone
    // (unbounded, at the kernel's default period).
    if limits.cpu_quota > 0 {
        files.push((
            "cpu.max".into(),
            format!("{} {}", limits.cpu_quota, limits.cpu_period),
        ));
    }
    // MemoryQoS (the caller leaves it 0 otherwise): protected from reclaim up to the
    // pod's requests, as upstream's ResourceConfigForPod.
    if limits.memory_min > 0 {
        files.push(("memory.min".into(), limits.memory_min.to_string()));
    }
    files.extend(hugetlb_writes(&limits.hugepages, host_sizes));
    files
}

/// Write each file that exists in `dir`; the others belong to hierarchies `dir` is not in
/// (or to controllers the kernel lacks). Opened without creating: cgroupfs files exist
/// or not, and a missing one costs no extra stat.
fn write_existing(dir: &Path, files: &[(String, String)]) -> Result<(), String> {
    use std::io::Write;
    for (file, value) in files {
        let path = dir.join(file);
        let written = std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .and_then(|mut f| f.write_all(value.as_bytes()));
        match written {
            Ok(()) => {}
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
            Err(err) => return Err(format!("writing {value} to {}: {err}", path.display())),
        }
    }
    Ok(())
}

/// Where the kernel lists the huge page sizes it supports.
pub const HUGEPAGES_DIR: &str = "/sys/kernel/mm/hugepages";

/// hugetlb cgroup files for every host page size (v1 `limit_in_bytes`, v2 `max`, and
/// their reservation twins): the given limit, 0 for sizes not listed.
fn hugetlb_writes(limits: &BTreeMap<i128, i128>, host_sizes: &[i128]) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for size in host_sizes {
        let name = node::hugepage_cgroup_size(*size);
        let value = limits.get(size).copied().unwrap_or(0).to_string();
        for file in [
            format!("hugetlb.{name}.limit_in_bytes"),
            format!("hugetlb.{name}.rsvd.limit_in_bytes"),
            format!("hugetlb.{name}.max"),
            format!("hugetlb.{name}.rsvd.max"),
        ] {
            out.push((file, value.clone()));
        }
    }
    out
}

/// cgroup v2 cpu.weight from v1 shares, with the conversion current runc and upstream's
/// cgroup library use: a curve through the three fixed points 2 → 1, 1024 → 100 (the
/// kernel default) and 262144 → 10000, rounded up. (The older linear mapping gave 1024
/// shares a weight of 39, below an unconfigured cgroup.) 0 means unset: the default.
fn shares_to_weight(shares: i64) -> i64 {
    match shares {
        ..=0 => 100,
        1..=2 => 1,
        262_144.. => 10_000,
        _ => {
            let l = (shares as f64).log2();
            let exponent = (l * l + 125.0 * l) / 612.0 - 7.0 / 34.0;
            10f64.powf(exponent).ceil() as i64
        }
    }
}

/// rmdir a cgroup and its child cgroups, children first. Cgroup directories hold only
/// control files, which rmdir takes with them.
fn remove_tree_of_empty_dirs(dir: &Path) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            remove_tree_of_empty_dirs(&entry.path())?;
        }
    }
    std::fs::remove_dir(dir)
}

/// Mount points of the host's cgroup v1 hierarchies and the v2 unified hierarchy, read
/// now (the kubelet itself reads them once, into [`CgroupHost`]).
pub fn cgroup_mounts() -> Vec<PathBuf> {
    CgroupHost::detect()
        .mounts
        .into_iter()
        .map(|m| m.path)
        .collect()
}

/// The cgroup hierarchies of a `/proc/self/mountinfo`: mount point (field 5) and, after
/// the ` - ` separator, file system type and super block options.
pub fn parse_cgroup_mounts(info: &str) -> Vec<CgroupMount> {
    info.lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let mut fields = right.split_whitespace();
            let fstype = fields.next()?;
            let options = fields.nth(1).unwrap_or_default();
            let path = PathBuf::from(left.split_whitespace().nth(4)?);
            match fstype {
                "cgroup" => Some(CgroupMount {
                    path,
                    options: Some(options.split(',').map(str::to_string).collect()),
                }),
                "cgroup2" => Some(CgroupMount {
                    path,
                    options: None,
                }),
                _ => None,
            }
        })
        .collect()
}

/// Upstream milliCPUToShares: 2 minimum, 1024 per core.
pub fn cpu_shares(milli: i128) -> i64 {
    if milli <= 0 {
        return 2;
    }
    ((milli * 1024) / 1000).max(2) as i64
}

/// Upstream milliCPUToQuota: quota for the period, 1ms minimum; 0 = no limit.
pub fn cpu_quota(milli: i128, period_us: i64) -> i64 {
    if milli <= 0 {
        return 0;
    }
    ((milli * period_us as i128) / 1000).max(1000) as i64
}

/// oom_score_adj by QoS (upstream qos/policy.go).
pub fn oom_score_adj(pod: &Pod, container: &Container, memory_capacity: i128) -> i64 {
    match qos_class(pod) {
        QosClass::Guaranteed => -997,
        QosClass::BestEffort => 1000,
        QosClass::Burstable => {
            // Bytes rounded up, as upstream's Value().
            let request = quantity::milli_to_units(
                resource(container, false, "memory")
                    .or_else(|| resource(container, true, "memory"))
                    .unwrap_or(0),
            );
            if memory_capacity <= 0 {
                return 999;
            }
            let adj = 1000 - (1000 * request) / memory_capacity;
            adj.clamp(3, 999) as i64
        }
    }
}

/// CRI resources for a container (requests default to limits, as the API does).
pub fn container_resources(
    pod: &Pod,
    container: &Container,
    cfs_quota: bool,
    cfs_period_us: i64,
    memory_capacity: i128,
    hugepage_sizes: &[i128],
) -> cri::LinuxContainerResources {
    let cpu_limit = resource(container, true, "cpu");
    let cpu_request = resource(container, false, "cpu").or(cpu_limit).unwrap_or(0);
    let memory_limit = resource(container, true, "memory")
        .map(|m| quantity::milli_to_units(m) as i64)
        .unwrap_or(0);
    let quota = match (cfs_quota, cpu_limit) {
        (true, Some(limit)) => cpu_quota(limit, cfs_period_us),
        _ => 0,
    };
    cri::LinuxContainerResources {
        cpu_shares: cpu_shares(cpu_request),
        cpu_quota: quota,
        cpu_period: if quota > 0 { cfs_period_us } else { 0 },
        memory_limit_in_bytes: memory_limit,
        oom_score_adj: oom_score_adj(pod, container, memory_capacity),
        hugepage_limits: hugepage_limits(container, hugepage_sizes),
        ..Default::default()
    }
}

/// CRI hugepage limits (upstream GetHugepageLimitsFromResources): every page size of the
/// host, limited to what the container's `hugepages-<size>` limit says, else to 0.
pub fn hugepage_limits(container: &Container, host_sizes: &[i128]) -> Vec<cri::HugepageLimit> {
    let asked: BTreeMap<i128, i128> = container
        .resources
        .as_ref()
        .and_then(|r| r.limits.as_ref())
        .into_iter()
        .flatten()
        .filter_map(|(name, q)| {
            let size = node::hugepage_size_of(name)?;
            let bytes = quantity::parse_value(&q.0).ok()?;
            Some((size, bytes))
        })
        .collect();
    host_sizes
        .iter()
        .map(|size| cri::HugepageLimit {
            page_size: node::hugepage_cgroup_size(*size),
            limit: asked.get(size).copied().unwrap_or(0).max(0) as u64,
        })
        .collect()
}

/// Physical memory from /proc/meminfo, in bytes (0 when unreadable).
pub fn memory_capacity() -> i128 {
    meminfo_bytes("MemTotal").unwrap_or(0)
}

/// One `/proc/meminfo` value (`MemTotal`, `SwapTotal`, ...) in bytes.
pub fn meminfo_bytes(key: &str) -> Option<i128> {
    meminfo_value(&std::fs::read_to_string("/proc/meminfo").ok()?, key)
}

/// `key` of a /proc/meminfo text, in bytes (the file gives kB).
fn meminfo_value(text: &str, key: &str) -> Option<i128> {
    let kb = text
        .lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))?
        .split_whitespace()
        .next()?
        .parse::<i128>()
        .ok()?;
    Some(kb * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_meminfo_values_in_bytes() {
        let text = "MemTotal:       100 kB\nSwapTotal:    2048 kB\n";
        assert_eq!(meminfo_value(text, "SwapTotal"), Some(2 << 20));
        assert_eq!(meminfo_value(text, "MemTotal"), Some(100 * 1024));
        assert_eq!(meminfo_value(text, "Swap"), None);
        assert_eq!(meminfo_value(text, "HugePages_Total"), None);
    }
    use k8s_openapi::api::core::v1::{PodSpec, ResourceRequirements};
    use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn pod_with(requests: &[(&str, &str)], limits: &[(&str, &str)]) -> Pod {
        let map = |kv: &[(&str, &str)]| {
            (!kv.is_empty()).then(|| {
                kv.iter()
                    .map(|(k, v)| (k.to_string(), Quantity(v.to_string())))
                    .collect()
            })
        };
        Pod {
            metadata: ObjectMeta {
                uid: Some("abc".into()),
                ..Default::default()
            },
            spec: Some(PodSpec {
                containers: vec![Container {
                    name: "c".into(),
                    resources: Some(ResourceRequirements {
                        requests: map(requests),
                        limits: map(limits),
                        ..Default::default()
                    }),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn qos_classes() {
        assert_eq!(qos_class(&pod_with(&[], &[])), QosClass::BestEffort);
        assert_eq!(
            qos_class(&pod_with(&[], &[("cpu", "1"), ("memory", "1Gi")])),
            QosClass::Guaranteed
        );
        assert_eq!(
            qos_class(&pod_with(
                &[("cpu", "50m"), ("memory", "32Mi")],
                &[("cpu", "150m"), ("memory", "32Mi")]
            )),
            QosClass::Burstable
        );
    }

    #[test]
    fn cgroup_parents() {
        let layout = CgroupLayout {
            per_qos: true,
            root: "/".into(),
            systemd: false,
            host: Default::default(),
        };
        assert_eq!(
            layout.pod_cgroup(&pod_with(&[], &[])),
            "/kubepods/besteffort/podabc"
        );
        assert_eq!(
            layout.pod_cgroup(&pod_with(&[], &[("cpu", "1"), ("memory", "1Gi")])),
            "/kubepods/podabc"
        );
        let systemd = CgroupLayout {
            systemd: true,
            host: Default::default(),
            ..layout
        };
        assert_eq!(
            systemd.pod_cgroup(&pod_with(&[("cpu", "1")], &[])),
            "kubepods-burstable-podabc.slice"
        );
        assert_eq!(
            systemd.pod_cgroup(&pod_with(&[], &[("cpu", "1"), ("memory", "1Gi")])),
            "kubepods-podabc.slice"
        );
        assert_eq!(
            systemd.pod_cgroup(&pod_with(&[], &[])),
            "kubepods-besteffort-podabc.slice"
        );
        // cgroupsPerQOS: false puts every pod directly under the cgroup root.
        let flat = CgroupLayout {
            per_qos: false,
            root: "/custom/".into(),
            systemd: false,
            host: Default::default(),
        };
        assert_eq!(flat.pod_cgroup(&pod_with(&[("cpu", "1")], &[])), "/custom");
    }

    #[test]
    fn oom_score_adj_by_qos() {
        let capacity = 8i128 << 30;
        let guaranteed = pod_with(&[], &[("cpu", "1"), ("memory", "1Gi")]);
        let c = |p: &Pod| p.spec.as_ref().unwrap().containers[0].clone();
        // Negative values are refused on these VMs; the computed values are checked here.
        assert_eq!(oom_score_adj(&guaranteed, &c(&guaranteed), capacity), -997);
        let best_effort = pod_with(&[], &[]);
        assert_eq!(
            oom_score_adj(&best_effort, &c(&best_effort), capacity),
            1000
        );
        let half = pod_with(&[("memory", "4Gi")], &[]);
        assert_eq!(oom_score_adj(&half, &c(&half), capacity), 500);
        // Clamped to [3, 999]: a tiny request stays below BestEffort, a huge one above
        // Guaranteed-like values.
        let tiny = pod_with(&[("memory", "1")], &[]);
        assert_eq!(oom_score_adj(&tiny, &c(&tiny), capacity), 999);
        let huge = pod_with(&[("memory", "8Gi")], &[("memory", "16Gi")]);
        assert_eq!(oom_score_adj(&huge, &c(&huge), capacity), 3);
    }

    #[test]
    fn pod_level_limits() {
        let p = pod_with(
            &[("cpu", "50m"), ("memory", "32Mi")],
            &[("cpu", "150m"), ("memory", "32Mi")],
        );
        let l = pod_limits(&p, true, 100_000, 100);
        assert_eq!(
            (l.cpu_shares, l.cpu_quota, l.memory_bytes, l.pids),
            (51, 15_000, 32 << 20, 100)
        );
        let unbounded = pod_limits(&pod_with(&[("cpu", "50m")], &[]), true, 100_000, -1);
        assert_eq!((unbounded.cpu_quota, unbounded.memory_bytes), (0, 0));
        assert_eq!(shares_to_weight(1024), 100);
    }

    fn container(name: &str, requests: &[(&str, &str)], limits: &[(&str, &str)]) -> Container {
        let map = |kv: &[(&str, &str)]| {
            (!kv.is_empty()).then(|| {
                kv.iter()
                    .map(|(k, v)| (k.to_string(), Quantity(v.to_string())))
                    .collect()
            })
        };
        Container {
            name: name.into(),
            resources: Some(ResourceRequirements {
                requests: map(requests),
                limits: map(limits),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn pod_totals_count_init_containers_and_sidecars_as_upstream() {
        let mut sidecar = container("side", &[("cpu", "100m")], &[("memory", "10Mi")]);
        sidecar.restart_policy = Some("Always".into());
        let pod = Pod {
            spec: Some(PodSpec {
                init_containers: Some(vec![
                    container("init1", &[("cpu", "900m")], &[("memory", "100Mi")]),
                    sidecar,
                    container("init2", &[("cpu", "850m")], &[("memory", "50Mi")]),
                ]),
                containers: vec![
                    container("a", &[("cpu", "200m")], &[("memory", "20Mi")]),
                    container("b", &[("cpu", "300m")], &[("memory", "20Mi")]),
                ],
                overhead: Some([("cpu".to_string(), Quantity("50m".into()))].into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        // Regular 500m + sidecar 100m = 600m; init2 runs beside the sidecar: 950m; the
        // largest wins, plus the overhead.
        assert_eq!(pod_total(&pod, false, "cpu"), 1000);
        // Limits: regular 40Mi + sidecar 10Mi = 50Mi; init1 alone 100Mi wins. Memory
        // has no overhead.
        assert_eq!(pod_total(&pod, true, "memory"), (100 << 20) * 1000);
        assert_eq!(pod_memory_limit(&pod), Some(100 << 20));
        let l = pod_limits(&pod, true, 100_000, -1);
        assert_eq!(l.cpu_shares, 1024);
        assert_eq!(l.cpu_quota, 0, "no cpu limits declared: no pod quota");
        assert_eq!(l.memory_bytes, 100 << 20);
        // One container without a memory limit leaves the pod unbounded.
        let mut partial = pod.clone();
        partial.spec.as_mut().unwrap().containers[0] = container("a", &[("cpu", "1")], &[]);
        assert_eq!(pod_memory_limit(&partial), None);
        assert_eq!(pod_limits(&partial, true, 100_000, -1).memory_bytes, 0);
        assert_eq!(pod_memory_limit(&pod_with(&[], &[])), None, "BestEffort");
        assert_eq!(
            pod_limits(&pod_with(&[], &[]), true, 100_000, -1).cpu_shares,
            2
        );
    }

    #[test]
    fn hugepages_in_cri_and_pod_cgroup() {
        let c = container(
            "c",
            &[],
            &[("hugepages-2Mi", "6Mi"), ("memory", "64Mi"), ("cpu", "1")],
        );
        let limits = hugepage_limits(&c, &[2 << 20, 1 << 30]);
        let got: Vec<(&str, u64)> = limits
            .iter()
            .map(|h| (h.page_size.as_str(), h.limit))
            .collect();
        assert_eq!(got, vec![("2MB", 6 << 20), ("1GB", 0)]);
        assert!(
            hugepage_limits(&c, &[]).is_empty(),
            "no host sizes, no limits"
        );
        let pod = Pod {
            spec: Some(PodSpec {
                containers: vec![c.clone(), c],
                ..Default::default()
            }),
            ..Default::default()
        };
        let l = pod_limits(&pod, true, 100_000, -1);
        assert_eq!(l.hugepages, BTreeMap::from([(2 << 20, 12 << 20)]));
        let writes = hugetlb_writes(&l.hugepages, &[2 << 20, 1 << 30]);
        assert!(writes.contains(&(
            "hugetlb.2MB.limit_in_bytes".into(),
            (12u64 << 20).to_string()
        )));
        assert!(writes.contains(&("hugetlb.2MB.max".into(), (12u64 << 20).to_string())));
        assert!(writes.contains(&("hugetlb.1GB.limit_in_bytes".into(), "0".into())));
    }

    #[test]
    fn pod_cgroup_files_for_v1_and_v2() {
        let p = pod_with(
            &[("cpu", "50m"), ("memory", "32Mi")],
            &[("cpu", "150m"), ("memory", "32Mi")],
        );
        let limits = pod_limits(&p, true, 100_000, 100);
        // MemoryQoS: memory.min is the pod's memory requests, written only when set.
        assert_eq!(limits.memory_min, 32 << 20);
        let with_min = pod_cgroup_files(&limits, &[]);
        assert!(with_min.contains(&("memory.min".into(), (32u64 << 20).to_string())));
        let without = PodLimits {
            memory_min: 0,
            ..limits.clone()
        };
        assert!(
            !pod_cgroup_files(&without, &[])
                .iter()
                .any(|(f, _)| f == "memory.min")
        );
        // A fake cgroup v2 directory: only the v2 files exist, so only they are written.
        let tmp = tempfile::tempdir().unwrap();
        for f in [
            "cpu.max",
            "cpu.weight",
            "memory.max",
            "pids.max",
            "hugetlb.2MB.max",
        ] {
            std::fs::write(tmp.path().join(f), "").unwrap();
        }
        write_existing(tmp.path(), &pod_cgroup_files(&limits, &[2 << 20])).unwrap();
        let read = |f: &str| std::fs::read_to_string(tmp.path().join(f)).unwrap();
        assert_eq!(read("cpu.max"), "15000 100000");
        assert_eq!(read("cpu.weight"), shares_to_weight(51).to_string());
        assert_eq!(read("memory.max"), (32u64 << 20).to_string());
        assert_eq!(read("pids.max"), "100");
        assert_eq!(read("hugetlb.2MB.max"), "0");
        assert!(
            !tmp.path().join("cpu.shares").exists(),
            "v1 files are not created"
        );
        // Unbounded pods: "max" on v2, -1 on v1.
        let unbounded = pod_limits(&pod_with(&[("cpu", "50m")], &[]), true, 50_000, -1);
        let files: BTreeMap<String, String> =
            pod_cgroup_files(&unbounded, &[]).into_iter().collect();
        assert!(
            !files.contains_key("cpu.max"),
            "no quota: cpu.max is left alone, as upstream"
        );
        assert_eq!(files["memory.max"], "max");
        assert_eq!(files["pids.max"], "max");
        assert_eq!(files["cpu.cfs_quota_us"], "-1");
        assert_eq!(files["memory.limit_in_bytes"], "-1");
        assert_eq!(files["cpu.cfs_period_us"], "50000");
    }

    #[test]
    fn cgroup_hierarchies_from_mountinfo() {
        let info = "\
25 30 0:22 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755
26 25 0:23 / /sys/fs/cgroup/systemd rw,nosuid shared:10 - cgroup cgroup rw,xattr,name=systemd
29 25 0:26 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid shared:13 - cgroup cgroup rw,cpu,cpuacct
31 25 0:28 / /sys/fs/cgroup/memory rw,nosuid shared:15 - cgroup cgroup rw,memory
40 30 0:35 / /sys/fs/cgroup/unified rw,nosuid shared:20 - cgroup2 cgroup2 rw,nsdelegate
41 30 0:36 / /proc rw shared:21 - proc proc rw";
        let mounts = parse_cgroup_mounts(info);
        let paths: Vec<&str> = mounts.iter().map(|m| m.path.to_str().unwrap()).collect();
        assert_eq!(
            paths,
            [
                "/sys/fs/cgroup/systemd",
                "/sys/fs/cgroup/cpu,cpuacct",
                "/sys/fs/cgroup/memory",
                "/sys/fs/cgroup/unified"
            ]
        );
        let [named, cpu, memory, unified] = &mounts[..] else {
            panic!("{mounts:?}")
        };
        assert!(!named.may_have("cpu.shares"));
        assert!(cpu.may_have("cpu.shares") && cpu.may_have("cpuacct.usage"));
        assert!(!cpu.may_have("memory.limit_in_bytes") && !cpu.may_have("pids.max"));
        assert!(memory.may_have("memory.limit_in_bytes"));
        assert!(unified.may_have("memory.max") && unified.may_have("hugetlb.2MB.max"));

        // A hierarchy writes only its controllers' files, even where others exist.
        let tmp = tempfile::tempdir().unwrap();
        for f in ["cpu.shares", "memory.limit_in_bytes"] {
            std::fs::write(tmp.path().join(f), "").unwrap();
        }
        let files = [
            ("cpu.shares".to_string(), "2".to_string()),
            ("memory.limit_in_bytes".to_string(), "1024".to_string()),
            ("pids.max".to_string(), "10".to_string()),
        ];
        cpu.write(tmp.path(), &files).unwrap();
        let read = |f: &str| std::fs::read_to_string(tmp.path().join(f)).unwrap();
        assert_eq!(read("cpu.shares"), "2");
        assert_eq!(
            read("memory.limit_in_bytes"),
            "",
            "not the cpu hierarchy's file"
        );
        assert!(
            !tmp.path().join("pids.max").exists(),
            "missing files are not created"
        );
    }

    #[test]
    fn cgroup_v2_weights_from_shares() {
        // The fixed points of the conversion, and values between them.
        assert_eq!(shares_to_weight(2), 1);
        assert_eq!(shares_to_weight(1024), 100);
        assert_eq!(shares_to_weight(262_144), 10_000);
        assert_eq!(shares_to_weight(3), 2);
        assert_eq!(shares_to_weight(51), 11);
        assert_eq!(shares_to_weight(768), 80);
        assert_eq!(shares_to_weight(2048), 174);
        assert_eq!(shares_to_weight(0), 100, "unset");
    }

    #[test]
    fn seed_deployment_resources() {
        // hello-dep of the seeds: cpu 50m/150m, memory 32Mi limit.
        let p = pod_with(
            &[("cpu", "50m"), ("memory", "32Mi")],
            &[("cpu", "150m"), ("memory", "32Mi")],
        );
        let c = &p.spec.as_ref().unwrap().containers[0];
        let r = container_resources(&p, c, true, 100_000, 8 << 30, &[]);
        assert_eq!(r.cpu_shares, 51);
        assert_eq!(r.cpu_quota, 15_000);
        assert_eq!(r.cpu_period, 100_000);
        assert_eq!(r.memory_limit_in_bytes, 32 << 20);
        assert_eq!(r.oom_score_adj, 1000 - (1000 * (32 << 20)) / (8i64 << 30));
        assert_eq!(cpu_shares(0), 2);
        assert_eq!(cpu_quota(1, 100_000), 1000);
    }

    /// A limit written as `500000u` is 500m (it used to be treated as unset).
    #[test]
    fn micro_unit_limits_are_honoured() {
        let p = pod_with(&[], &[("cpu", "500000u"), ("memory", "64Mi")]);
        let c = &p.spec.as_ref().unwrap().containers[0];
        let r = container_resources(&p, c, true, 100_000, 8 << 30, &[]);
        assert_eq!(r.cpu_quota, 50_000);
        assert_eq!(r.cpu_shares, 512, "the request defaults to the limit");
        // Both limits set (requests default to them): Guaranteed, where an unreadable cpu
        // limit made the pod Burstable.
        assert_eq!(qos_class(&p), QosClass::Guaranteed);
        assert_eq!(pod_limits(&p, true, 100_000, 0).cpu_quota, 50_000);
    }
}
