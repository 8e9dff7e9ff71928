//! Container management: QoS class, the pod cgroup each sandbox is parented to, CPU and
//! memory values for CRI, and removal of pod cgroups (containerd never removes them).

pub mod admission;
pub mod quantity;

use std::path::{Path, PathBuf};

use k8s_cri::v1 as cri;
use k8s_openapi::api::core::v1::{Container, Pod};

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

/// Cgroup settings the kubelet was configured with.
#[derive(Debug, Clone)]
pub struct CgroupLayout {
    pub per_qos: bool,
    pub root: String,
    pub systemd: bool,
}

impl CgroupLayout {
    /// The cgroup parent of the pod's sandbox (upstream naming for both drivers).
    pub fn pod_cgroup(&self, pod: &Pod) -> String {
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        let root = self.root.trim_end_matches('/');
        if !self.per_qos {
            return if root.is_empty() {
                "/".into()
            } else {
                root.to_string()
            };
        }
        let qos = qos_class(pod);
        if self.systemd {
            let uid = uid.replace('-', "_");
            return match qos {
                QosClass::Guaranteed => format!("kubepods-pod{uid}.slice"),
                QosClass::Burstable => format!("kubepods-burstable-pod{uid}.slice"),
                QosClass::BestEffort => format!("kubepods-besteffort-pod{uid}.slice"),
            };
        }
        match qos {
            QosClass::Guaranteed => format!("{root}/kubepods/pod{uid}"),
            QosClass::Burstable => format!("{root}/kubepods/burstable/pod{uid}"),
            QosClass::BestEffort => format!("{root}/kubepods/besteffort/pod{uid}"),
        }
    }

    /// Every place a cgroupfs pod cgroup of this uid may live.
    fn pod_cgroup_candidates(&self, uid: &str) -> Vec<String> {
        let root = self.root.trim_end_matches('/');
        ["", "/burstable", "/besteffort"]
            .iter()
            .map(|qos| format!("{root}/kubepods{qos}/pod{uid}"))
            .collect()
    }

    /// Remove the pod's cgroup directories in every hierarchy. Only empty directories go
    /// (rmdir), deepest first, so a cgroup still in use is left and reported.
    pub fn remove_pod_cgroups(&self, uid: &str) {
        if !self.per_qos || self.systemd || uid.is_empty() {
            return;
        }
        for mount in cgroup_mounts() {
            for rel in self.pod_cgroup_candidates(uid) {
                let dir = mount.join(rel.trim_start_matches('/'));
                if dir.is_dir()
                    && let Err(err) = remove_tree_of_empty_dirs(&dir)
                {
                    tracing::warn!(cgroup = %dir.display(), error = %err, "could not remove pod cgroup");
                }
            }
        }
    }
}

/// Pod-level limits written into the pod cgroup (upstream pod container manager).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PodLimits {
    pub cpu_shares: i64,
    /// CFS quota in µs per period; 0 = unlimited.
    pub cpu_quota: i64,
    pub cpu_period: i64,
    /// 0 = unlimited.
    pub memory_bytes: i64,
    /// <= 0 = unlimited.
    pub pids: i64,
}

/// Limits of the whole pod: shares from the summed requests; quota and memory only when
/// every container has a limit (otherwise the pod is unbounded), as upstream.
pub fn pod_limits(pod: &Pod, cfs_quota: bool, cfs_period_us: i64, pids_limit: i64) -> PodLimits {
    let containers: Vec<&Container> = pod.spec.iter().flat_map(|s| s.containers.iter()).collect();
    let sum = |limits: bool, name: &str| -> Option<i128> {
        containers
            .iter()
            .map(|c| resource(c, limits, name))
            .sum::<Option<i128>>()
    };
    let requests: i128 = containers
        .iter()
        .map(|c| {
            resource(c, false, "cpu")
                .or_else(|| resource(c, true, "cpu"))
                .unwrap_or(0)
        })
        .sum();
    let quota = match (cfs_quota, sum(true, "cpu")) {
        (true, Some(milli)) => cpu_quota(milli, cfs_period_us),
        _ => 0,
    };
    PodLimits {
        cpu_shares: cpu_shares(requests),
        cpu_quota: quota,
        cpu_period: cfs_period_us,
        memory_bytes: sum(true, "memory").map(|m| (m / 1000) as i64).unwrap_or(0),
        pids: pids_limit,
    }
}

impl CgroupLayout {
    /// Create the pod cgroup in every hierarchy and write its limits, before the sandbox
    /// is created under it. Files a hierarchy does not have are skipped.
    pub fn ensure_pod_cgroup(&self, pod: &Pod, limits: &PodLimits) -> Result<(), String> {
        if !self.per_qos || self.systemd {
            return Ok(());
        }
        let rel = self.pod_cgroup(pod);
        for mount in cgroup_mounts() {
            let dir = mount.join(rel.trim_start_matches('/'));
            if let Err(err) = std::fs::create_dir_all(&dir) {
                return Err(format!("creating pod cgroup {}: {err}", dir.display()));
            }
            let unlimited_quota = if limits.cpu_quota > 0 {
                limits.cpu_quota.to_string()
            } else {
                "-1".into()
            };
            let v2_max = |v: i64| if v > 0 { v.to_string() } else { "max".into() };
            let writes: Vec<(&str, String)> = vec![
                // cgroup v1
                ("cpu.shares", limits.cpu_shares.to_string()),
                ("cpu.cfs_period_us", limits.cpu_period.to_string()),
                ("cpu.cfs_quota_us", unlimited_quota),
                (
                    "memory.limit_in_bytes",
                    if limits.memory_bytes > 0 {
                        limits.memory_bytes.to_string()
                    } else {
                        "-1".into()
                    },
                ),
                ("pids.max", v2_max(limits.pids)),
                // cgroup v2
                (
                    "cpu.max",
                    format!("{} {}", v2_max(limits.cpu_quota), limits.cpu_period),
                ),
                (
                    "cpu.weight",
                    shares_to_weight(limits.cpu_shares).to_string(),
                ),
                ("memory.max", v2_max(limits.memory_bytes)),
            ];
            for (file, value) in writes {
                let path = dir.join(file);
                if !path.exists() {
                    continue;
                }
                if let Err(err) = std::fs::write(&path, &value) {
                    return Err(format!("writing {value} to {}: {err}", path.display()));
                }
            }
        }
        Ok(())
    }
}

/// cgroup v2 cpu.weight from v1 shares (the runc/upstream conversion).
fn shares_to_weight(shares: i64) -> i64 {
    if shares <= 0 {
        return 100;
    }
    1 + ((shares - 2) * 9999) / 262_142
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

/// Mount points of cgroup v1 hierarchies and the v2 unified hierarchy.
pub fn cgroup_mounts() -> Vec<PathBuf> {
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return Vec::new();
    };
    info.lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let fstype = right.split_whitespace().next()?;
            if fstype != "cgroup" && fstype != "cgroup2" {
                return None;
            }
            left.split_whitespace().nth(4).map(PathBuf::from)
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
            let request = resource(container, false, "memory")
                .or_else(|| resource(container, true, "memory"))
                .unwrap_or(0)
                / 1000;
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
) -> cri::LinuxContainerResources {
    let cpu_limit = resource(container, true, "cpu");
    let cpu_request = resource(container, false, "cpu").or(cpu_limit).unwrap_or(0);
    let memory_limit = resource(container, true, "memory")
        .map(|m| (m / 1000) as i64)
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
        ..Default::default()
    }
}

/// Physical memory from /proc/meminfo, in bytes (0 when unreadable).
pub fn memory_capacity() -> i128 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<i128>().ok())
        })
        .map(|kb| kb * 1024)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
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
            ..layout
        };
        assert_eq!(
            systemd.pod_cgroup(&pod_with(&[("cpu", "1")], &[])),
            "kubepods-burstable-podabc.slice"
        );
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
        assert_eq!(shares_to_weight(1024), 39);
    }

    #[test]
    fn seed_deployment_resources() {
        // hello-dep of the seeds: cpu 50m/150m, memory 32Mi limit.
        let p = pod_with(
            &[("cpu", "50m"), ("memory", "32Mi")],
            &[("cpu", "150m"), ("memory", "32Mi")],
        );
        let c = &p.spec.as_ref().unwrap().containers[0];
        let r = container_resources(&p, c, true, 100_000, 8 << 30);
        assert_eq!(r.cpu_shares, 51);
        assert_eq!(r.cpu_quota, 15_000);
        assert_eq!(r.cpu_period, 100_000);
        assert_eq!(r.memory_limit_in_bytes, 32 << 20);
        assert_eq!(r.oom_score_adj, 1000 - (1000 * (32 << 20)) / (8i64 << 30));
        assert_eq!(cpu_shares(0), 2);
        assert_eq!(cpu_quota(1, 100_000), 1000);
    }
}
