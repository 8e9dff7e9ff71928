//! Pod admission as upstream's predicate admit handler: a pod that does not fit the node's
//! allocatable resources or pod count, or asks for a forbidden sysctl, is rejected and
//! never started. The rejection becomes the pod's status (phase Failed, reason, message).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Container, Pod};
use kubelet_primitives::pod::is_sidecar;
use kubelet_primitives::quantity;

/// What the node can give pods: capacity minus reservations and the hard eviction
/// threshold for memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Allocatable {
    pub cpu_milli: i128,
    pub memory_bytes: i128,
    pub pods: i64,
    /// 0 = not checked (a view built without the node's storage).
    pub ephemeral_storage_bytes: i128,
    /// Huge page size in bytes → allocatable bytes, for every size of the host.
    pub hugepages: BTreeMap<i128, i128>,
}

impl Allocatable {
    /// The node's allocatable as its status reports it (huge pages taken out of memory).
    pub fn from_node(node: &super::node::NodeAllocatable, max_pods: i64) -> Allocatable {
        Allocatable {
            cpu_milli: node.cpu_milli,
            memory_bytes: node.memory_bytes,
            pods: max_pods,
            ephemeral_storage_bytes: node.ephemeral_storage_bytes,
            hugepages: node.hugepages.clone(),
        }
    }

    /// The resources every pod is checked against (name, allocatable), in upstream's
    /// units: cpu in millicores, the rest in bytes. Huge pages come per pod.
    fn checked(&self) -> Vec<(String, i128)> {
        let mut out = vec![
            ("cpu".to_string(), self.cpu_milli),
            ("memory".to_string(), self.memory_bytes),
        ];
        if self.ephemeral_storage_bytes > 0 {
            out.push(("ephemeral-storage".into(), self.ephemeral_storage_bytes));
        }
        out
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub reason: String,
    pub message: String,
}

/// A further admission check (upstream PodAdmitHandler): the eviction manager refuses
/// pods under node pressure, the node shutdown manager every pod once shutdown began.
pub trait AdmitHandler: Send + Sync + std::fmt::Debug {
    fn admit(&self, pod: &Pod) -> Result<(), Rejection>;
}

/// Sysctls any pod may set (upstream's safe set for v1.35).
pub const SAFE_SYSCTLS: &[&str] = &[
    "kernel.shm_rmid_forced",
    "net.ipv4.ip_local_port_range",
    "net.ipv4.tcp_syncookies",
    "net.ipv4.ping_group_range",
    "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_keepalive_time",
    "net.ipv4.tcp_fin_timeout",
    "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
    "net.ipv4.tcp_rmem",
    "net.ipv4.tcp_wmem",
];

fn request(c: &Container, name: &str) -> i128 {
    let Some(res) = c.resources.as_ref() else {
        return 0;
    };
    let q = res
        .requests
        .as_ref()
        .and_then(|r| r.get(name))
        .or_else(|| res.limits.as_ref().and_then(|l| l.get(name)));
    let parse = if name == "cpu" {
        quantity::parse_milli
    } else {
        quantity::parse_value
    };
    q.and_then(|q| parse(&q.0).ok()).unwrap_or(0)
}

/// The pod's effective request: the larger of the regular containers (plus sidecars)
/// summed and any single init container, plus the pod overhead.
pub fn pod_request(pod: &Pod, name: &str) -> i128 {
    let Some(spec) = pod.spec.as_ref() else {
        return 0;
    };
    let sidecars: i128 = spec
        .init_containers
        .iter()
        .flatten()
        .filter(|c| is_sidecar(c))
        .map(|c| request(c, name))
        .sum();
    let regular: i128 = spec
        .containers
        .iter()
        .map(|c| request(c, name))
        .sum::<i128>()
        + sidecars;
    let init_max = spec
        .init_containers
        .iter()
        .flatten()
        .map(|c| request(c, name))
        .max()
        .unwrap_or(0);
    let overhead = spec
        .overhead
        .as_ref()
        .and_then(|o| o.get(name))
        .and_then(|q| {
            if name == "cpu" {
                quantity::parse_milli(&q.0)
            } else {
                quantity::parse_value(&q.0)
            }
            .ok()
        })
        .unwrap_or(0);
    regular.max(init_max) + overhead
}

fn check_sysctls(pod: &Pod, allowed_unsafe: &[String]) -> Result<(), Rejection> {
    let spec = pod.spec.as_ref();
    let host_net = spec.and_then(|s| s.host_network).unwrap_or(false);
    let host_ipc = spec.and_then(|s| s.host_ipc).unwrap_or(false);
    for s in spec
        .and_then(|s| s.security_context.as_ref())
        .and_then(|sc| sc.sysctls.as_ref())
        .into_iter()
        .flatten()
    {
        let name = s.name.replace('/', ".");
        let allowed = SAFE_SYSCTLS.contains(&name.as_str())
            || allowed_unsafe
                .iter()
                .any(|pattern| match pattern.strip_suffix('*') {
                    Some(prefix) => name.starts_with(&prefix.replace('/', ".")),
                    None => pattern.replace('/', ".") == name,
                });
        if !allowed {
            return Err(Rejection {
                reason: "SysctlForbidden".into(),
                message: format!(
                    "Pod was rejected: forbidden sysctl: \"{}\" not allowlisted",
                    s.name
                ),
            });
        }
        if host_net && name.starts_with("net.") {
            return Err(Rejection {
                reason: "SysctlForbidden".into(),
                message: format!(
                    "Pod was rejected: sysctl \"{}\" not allowed with host net enabled",
                    s.name
                ),
            });
        }
        if host_ipc
            && (name.starts_with("kernel.shm")
                || name.starts_with("kernel.msg")
                || name.starts_with("kernel.sem")
                || name.starts_with("fs.mqueue."))
        {
            return Err(Rejection {
                reason: "SysctlForbidden".into(),
                message: format!(
                    "Pod was rejected: sysctl \"{}\" not allowed with host ipc enabled",
                    s.name
                ),
            });
        }
    }
    Ok(())
}

/// Admit `pod` onto a node already running `admitted`.
pub fn admit<'a>(
    pod: &Pod,
    admitted: impl Iterator<Item = &'a Pod>,
    alloc: &Allocatable,
    allowed_unsafe_sysctls: &[String],
) -> Result<(), Rejection> {
    check_sysctls(pod, allowed_unsafe_sysctls)?;
    let admitted: Vec<&Pod> = admitted.collect();
    if admitted.len() as i64 + 1 > alloc.pods {
        return Err(Rejection {
            reason: "OutOfpods".into(),
            message: format!(
                "Pod was rejected: Node didn't have enough resource: pods, requested: 1, used: {}, capacity: {}",
                admitted.len(),
                alloc.pods
            ),
        });
    }
    // Huge pages the pod asks for are checked whether the node has that size or not
    // (then its allocatable is 0), as upstream checks every scalar resource.
    let mut checked = alloc.checked();
    for name in hugepage_names(pod) {
        let size = super::node::hugepage_size_of(&name).unwrap_or(0);
        checked.push((name, alloc.hugepages.get(&size).copied().unwrap_or(0)));
    }
    for (name, capacity) in checked {
        let name = name.as_str();
        let requested = pod_request(pod, name);
        if requested == 0 {
            continue;
        }
        let used: i128 = admitted.iter().map(|p| pod_request(p, name)).sum();
        if used + requested > capacity {
            return Err(Rejection {
                reason: format!("OutOf{name}"),
                message: format!(
                    "Pod was rejected: Node didn't have enough resource: {name}, requested: {requested}, used: {used}, capacity: {capacity}"
                ),
            });
        }
    }
    Ok(())
}

/// The `hugepages-<size>` resources any container of the pod requests or limits.
fn hugepage_names(pod: &Pod) -> std::collections::BTreeSet<String> {
    let spec = pod.spec.as_ref();
    spec.into_iter()
        .flat_map(|s| {
            s.containers
                .iter()
                .chain(s.init_containers.iter().flatten())
        })
        .filter_map(|c| c.resources.as_ref())
        .flat_map(|r| r.requests.iter().flatten().chain(r.limits.iter().flatten()))
        .map(|(name, _)| name.clone())
        .filter(|name| super::node::hugepage_size_of(name).is_some())
        .collect()
}

/// Whether an already admitted pod counts against the node when admitting another, as
/// upstream counts only active pods: one that no source wants any more (an edited
/// manifest's old incarnation, a removed file), one being terminated, and one that
/// finished (phase Succeeded or Failed) free their place at once.
pub fn counts_against_node(still_desired: bool, terminating: bool, phase: Option<&str>) -> bool {
    still_desired && !terminating && !matches!(phase, Some("Succeeded") | Some("Failed"))
}

/// Online CPUs (what cadvisor reports as num_cores).
pub fn cpu_cores() -> i128 {
    std::thread::available_parallelism()
        .map(|n| n.get() as i128)
        .unwrap_or(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_active_desired_pods_count() {
        assert!(counts_against_node(true, false, None));
        assert!(counts_against_node(true, false, Some("Running")));
        assert!(counts_against_node(true, false, Some("Pending")));
        // The pod an edited manifest replaces is no longer desired.
        assert!(!counts_against_node(false, false, Some("Running")));
        assert!(!counts_against_node(true, true, Some("Running")));
        assert!(!counts_against_node(true, false, Some("Succeeded")));
        assert!(!counts_against_node(true, false, Some("Failed")));
    }
    use k8s_openapi::api::core::v1::{PodSecurityContext, PodSpec, ResourceRequirements, Sysctl};
    use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

    fn pod(cpu: &str, mem: &str) -> Pod {
        let mut requests = BTreeMap::new();
        if !cpu.is_empty() {
            requests.insert("cpu".to_string(), Quantity(cpu.into()));
        }
        if !mem.is_empty() {
            requests.insert("memory".to_string(), Quantity(mem.into()));
        }
        Pod {
            spec: Some(PodSpec {
                containers: vec![Container {
                    name: "c".into(),
                    resources: Some(ResourceRequirements {
                        requests: Some(requests),
                        ..Default::default()
                    }),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn node() -> Allocatable {
        use crate::cm::node::{Machine, NodeAllocatable, Reservations};
        let machine = Machine {
            cpu_cores: 2,
            memory_bytes: 4 << 30,
            ..Default::default()
        };
        let reservations = Reservations::parse(
            &BTreeMap::from([("cpu".to_string(), "500m".to_string())]),
            &BTreeMap::new(),
            &BTreeMap::from([("memory.available".to_string(), "100Mi".to_string())]),
        )
        .unwrap();
        Allocatable::from_node(&NodeAllocatable::compute(&machine, &reservations), 3)
    }

    #[test]
    fn allocatable_subtracts_reservations() {
        let a = node();
        assert_eq!(a.cpu_milli, 1500);
        assert_eq!(a.memory_bytes, (4 << 30) - (100 << 20));
    }

    #[test]
    fn rejects_what_does_not_fit_with_upstream_reasons() {
        let a = node();
        let running = [pod("1", "1Gi")];
        assert!(admit(&pod("400m", ""), running.iter(), &a, &[]).is_ok());
        let r = admit(&pod("600m", ""), running.iter(), &a, &[]).unwrap_err();
        assert_eq!(r.reason, "OutOfcpu");
        assert!(
            r.message
                .contains("requested: 600, used: 1000, capacity: 1500"),
            "{}",
            r.message
        );
        let r = admit(&pod("", "3Gi"), running.iter(), &a, &[]).unwrap_err();
        assert_eq!(r.reason, "OutOfmemory");
        let three = [pod("", ""), pod("", ""), pod("", "")];
        assert_eq!(
            admit(&pod("", ""), three.iter(), &a, &[])
                .unwrap_err()
                .reason,
            "OutOfpods"
        );
        // Best-effort pods need no resources.
        assert!(admit(&pod("", ""), running.iter(), &a, &[]).is_ok());
    }

    #[test]
    fn hugepages_and_ephemeral_storage_use_the_node_allocatable() {
        use crate::cm::node::{HugePages, Machine, NodeAllocatable};
        let machine = Machine {
            cpu_cores: 2,
            memory_bytes: 4 << 30,
            ephemeral_storage_bytes: 10 << 30,
            hugepages: vec![
                HugePages {
                    page_bytes: 2 << 20,
                    pages: 4,
                },
                HugePages {
                    page_bytes: 1 << 30,
                    pages: 0,
                },
            ],
        };
        let node = NodeAllocatable::compute(
            &machine,
            &crate::cm::node::Reservations::parse(
                &BTreeMap::new(),
                &BTreeMap::new(),
                &BTreeMap::from([("memory.available".to_string(), "100Mi".to_string())]),
            )
            .unwrap(),
        );
        let a = Allocatable::from_node(&node, 110);
        // Reserved huge pages are not memory pods can have.
        assert_eq!(a.memory_bytes, (4 << 30) - (100 << 20) - (8 << 20));
        let with = |kv: &[(&str, &str)]| {
            let mut p = pod("", "");
            let res = p.spec.as_mut().unwrap().containers[0]
                .resources
                .as_mut()
                .unwrap();
            let limits: BTreeMap<String, Quantity> = kv
                .iter()
                .map(|(k, v)| (k.to_string(), Quantity(v.to_string())))
                .collect();
            res.requests = Some(limits.clone());
            res.limits = Some(limits);
            p
        };
        let small = with(&[("hugepages-2Mi", "4Mi"), ("memory", "10Mi")]);
        assert!(admit(&small, [].iter(), &a, &[]).is_ok());
        let r = admit(&small, [small.clone(), small.clone()].iter(), &a, &[]).unwrap_err();
        assert_eq!(r.reason, "OutOfhugepages-2Mi");
        assert_eq!(
            r.message,
            format!(
                "Pod was rejected: Node didn't have enough resource: hugepages-2Mi, requested: {}, used: {}, capacity: {}",
                4 << 20,
                8 << 20,
                8 << 20
            )
        );
        // A size with no pages reserved (or not on the host at all) has nothing.
        let big = with(&[("hugepages-1Gi", "1Gi"), ("memory", "10Mi")]);
        assert_eq!(
            admit(&big, [].iter(), &a, &[]).unwrap_err().reason,
            "OutOfhugepages-1Gi"
        );
        let odd = with(&[("hugepages-64Ki", "64Ki")]);
        assert_eq!(
            admit(&odd, [].iter(), &a, &[]).unwrap_err().reason,
            "OutOfhugepages-64Ki"
        );
        let disk = with(&[("ephemeral-storage", "11Gi")]);
        assert_eq!(
            admit(&disk, [].iter(), &a, &[]).unwrap_err().reason,
            "OutOfephemeral-storage"
        );
    }

    #[test]
    fn sysctls_safe_set_and_allowlist() {
        let with = |name: &str| {
            let mut p = pod("", "");
            p.spec.as_mut().unwrap().security_context = Some(PodSecurityContext {
                sysctls: Some(vec![Sysctl {
                    name: name.into(),
                    value: "1".into(),
                }]),
                ..Default::default()
            });
            p
        };
        let a = node();
        assert!(admit(&with("net.ipv4.tcp_syncookies"), [].iter(), &a, &[]).is_ok());
        let r = admit(&with("kernel.msgmax"), [].iter(), &a, &[]).unwrap_err();
        assert_eq!(r.reason, "SysctlForbidden");
        assert!(r.message.contains("kernel.msgmax"));
        assert!(
            admit(
                &with("kernel.msgmax"),
                [].iter(),
                &a,
                &["kernel.msg*".into()]
            )
            .is_ok()
        );
    }
}
