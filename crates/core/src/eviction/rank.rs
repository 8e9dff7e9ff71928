//! Which pod goes first, as upstream ranks them (helpers.go rankMemoryPressure,
//! rankDiskPressureFunc, rankPIDPressure):
//!
//! - memory: pods whose working set exceeds their memory request first, then lower
//!   priority first, then the largest usage above the request;
//! - disk (bytes or inodes): the same with ephemeral-storage usage and requests;
//! - PIDs: lower priority first, then the most processes.
//!
//! QoS enters through the requests: a BestEffort pod requests nothing, so any usage
//! exceeds its request and it ranks before Burstable and Guaranteed pods of the same
//! priority that stay within theirs. Pods without stats go first. Pure and unit-tested.

use std::cmp::Ordering;

use k8s_openapi::api::core::v1::Pod;

use super::signals::Signal;
use crate::cm::admission::pod_request;

/// What one pod uses, as far as it could be measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PodUsage {
    /// Working set of its containers.
    pub memory: i128,
    /// Writable layers of its containers.
    pub rootfs_bytes: i128,
    pub rootfs_inodes: i128,
    /// Its container log files.
    pub logs_bytes: i128,
    pub logs_inodes: i128,
    /// Its local ephemeral volumes on disk (emptyDir without medium Memory, configMap, ...).
    pub volumes_bytes: i128,
    pub volumes_inodes: i128,
    pub processes: i64,
}

impl PodUsage {
    /// Everything on the node filesystem (no dedicated image filesystem here).
    pub fn disk_bytes(&self) -> i128 {
        self.rootfs_bytes + self.logs_bytes + self.volumes_bytes
    }

    pub fn disk_inodes(&self) -> i128 {
        self.rootfs_inodes + self.logs_inodes + self.volumes_inodes
    }
}

/// Scheduling priority of system-cluster-critical; at or above it a pod is critical.
pub const SYSTEM_CRITICAL_PRIORITY: i32 = 2_000_000_000;

/// spec.priority, or what the built-in priority classes mean when only the class name is
/// set (static pods never pass the API server's priority admission).
pub fn priority(pod: &Pod) -> i32 {
    let Some(spec) = pod.spec.as_ref() else {
        return 0;
    };
    if let Some(p) = spec.priority {
        return p;
    }
    match spec.priority_class_name.as_deref() {
        Some("system-node-critical") => SYSTEM_CRITICAL_PRIORITY + 1000,
        Some("system-cluster-critical") => SYSTEM_CRITICAL_PRIORITY,
        _ => 0,
    }
}

/// Critical pods are never evicted and always admitted (upstream IsCriticalPod, without
/// its "every static pod is critical" rule: see docs/housekeeping.md).
pub fn is_critical(pod: &Pod) -> bool {
    priority(pod) >= SYSTEM_CRITICAL_PRIORITY
}

pub struct Candidate<'a> {
    pub pod: &'a Pod,
    pub usage: Option<PodUsage>,
}

fn cmp_bool_true_first(a: bool, b: bool) -> Ordering {
    b.cmp(&a)
}

fn by_priority(a: &Candidate, b: &Candidate) -> Ordering {
    priority(a.pod).cmp(&priority(b.pod))
}

/// Pods without stats first.
fn by_stats_missing(a: &Candidate, b: &Candidate) -> Ordering {
    cmp_bool_true_first(a.usage.is_none(), b.usage.is_none())
}

type Measure = fn(&PodUsage) -> i128;

fn exceeds(
    measure: Measure,
    resource: &'static str,
) -> impl Fn(&Candidate, &Candidate) -> Ordering {
    move |a, b| match (&a.usage, &b.usage) {
        (Some(ua), Some(ub)) => cmp_bool_true_first(
            measure(ua) > pod_request(a.pod, resource),
            measure(ub) > pod_request(b.pod, resource),
        ),
        _ => by_stats_missing(a, b),
    }
}

fn above_request(
    measure: Measure,
    resource: &'static str,
) -> impl Fn(&Candidate, &Candidate) -> Ordering {
    move |a, b| match (&a.usage, &b.usage) {
        (Some(ua), Some(ub)) => {
            let da = measure(ua) - pod_request(a.pod, resource);
            let db = measure(ub) - pod_request(b.pod, resource);
            db.cmp(&da)
        }
        _ => by_stats_missing(a, b),
    }
}

/// Sort `pods` so the first is the one to evict for pressure on `signal`.
pub fn rank(signal: Signal, pods: &mut [Candidate]) {
    match signal {
        Signal::MemoryAvailable | Signal::AllocatableMemoryAvailable => {
            let m: Measure = |u| u.memory;
            let ex = exceeds(m, "memory");
            let above = above_request(m, "memory");
            pods.sort_by(|a, b| {
                ex(a, b)
                    .then_with(|| by_priority(a, b))
                    .then_with(|| above(a, b))
            });
        }
        Signal::PidAvailable => {
            pods.sort_by(|a, b| {
                by_priority(a, b).then_with(|| match (&a.usage, &b.usage) {
                    (Some(ua), Some(ub)) => ub.processes.cmp(&ua.processes),
                    _ => by_stats_missing(a, b),
                })
            });
        }
        Signal::NodeFsInodesFree | Signal::ImageFsInodesFree | Signal::ContainerFsInodesFree => {
            let m: Measure = |u| u.disk_inodes();
            let ex = exceeds(m, "ephemeral-storage");
            let above = above_request(m, "ephemeral-storage");
            pods.sort_by(|a, b| {
                ex(a, b)
                    .then_with(|| by_priority(a, b))
                    .then_with(|| above(a, b))
            });
        }
        Signal::NodeFsAvailable | Signal::ImageFsAvailable | Signal::ContainerFsAvailable => {
            let m: Measure = |u| u.disk_bytes();
            let ex = exceeds(m, "ephemeral-storage");
            let above = above_request(m, "ephemeral-storage");
            pods.sort_by(|a, b| {
                ex(a, b)
                    .then_with(|| by_priority(a, b))
                    .then_with(|| above(a, b))
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{Container, PodSpec, ResourceRequirements};
    use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn pod(name: &str, mem_request: Option<&str>, priority: Option<i32>) -> Pod {
        let resources = mem_request.map(|r| ResourceRequirements {
            requests: Some([("memory".to_string(), Quantity(r.into()))].into()),
            limits: Some([("memory".to_string(), Quantity(r.into()))].into()),
            ..Default::default()
        });
        Pod {
            metadata: ObjectMeta {
                name: Some(name.into()),
                ..Default::default()
            },
            spec: Some(PodSpec {
                priority,
                containers: vec![Container {
                    name: "c".into(),
                    resources,
                    ..Default::default()
                }],
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn mem(mi: i128) -> Option<PodUsage> {
        Some(PodUsage {
            memory: mi << 20,
            ..Default::default()
        })
    }

    fn names(c: &[Candidate]) -> Vec<String> {
        c.iter()
            .map(|c| c.pod.metadata.name.clone().unwrap())
            .collect()
    }

    #[test]
    fn memory_exceeding_requests_first_then_priority_then_usage() {
        let guaranteed_big = pod("guaranteed-big", Some("1Gi"), None);
        let best_effort_small = pod("besteffort-small", None, None);
        let best_effort_big = pod("besteffort-big", None, None);
        let high_prio_hog = pod("high-prio-hog", None, Some(1000));
        let no_stats = pod("no-stats", Some("1Gi"), None);
        let mut c = vec![
            Candidate {
                pod: &guaranteed_big,
                usage: mem(900),
            },
            Candidate {
                pod: &best_effort_small,
                usage: mem(10),
            },
            Candidate {
                pod: &high_prio_hog,
                usage: mem(2000),
            },
            Candidate {
                pod: &best_effort_big,
                usage: mem(300),
            },
            Candidate {
                pod: &no_stats,
                usage: None,
            },
        ];
        rank(Signal::MemoryAvailable, &mut c);
        assert_eq!(
            names(&c),
            [
                "no-stats",
                "besteffort-big",
                "besteffort-small",
                "high-prio-hog",
                "guaranteed-big"
            ]
        );
    }

    #[test]
    fn disk_uses_ephemeral_storage_usage() {
        let a = pod("a", None, None);
        let b = pod("b", None, None);
        let usage = |bytes| {
            Some(PodUsage {
                volumes_bytes: bytes,
                logs_bytes: 1,
                ..Default::default()
            })
        };
        let mut c = vec![
            Candidate {
                pod: &a,
                usage: usage(10),
            },
            Candidate {
                pod: &b,
                usage: usage(1000),
            },
        ];
        rank(Signal::NodeFsAvailable, &mut c);
        assert_eq!(names(&c), ["b", "a"]);
    }

    #[test]
    fn pids_by_priority_then_process_count() {
        let low = pod("low", None, Some(-5));
        let many = pod("many", None, None);
        let few = pod("few", None, None);
        let procs = |n| {
            Some(PodUsage {
                processes: n,
                ..Default::default()
            })
        };
        let mut c = vec![
            Candidate {
                pod: &few,
                usage: procs(2),
            },
            Candidate {
                pod: &many,
                usage: procs(900),
            },
            Candidate {
                pod: &low,
                usage: procs(1),
            },
        ];
        rank(Signal::PidAvailable, &mut c);
        assert_eq!(names(&c), ["low", "many", "few"]);
    }

    #[test]
    fn critical_by_priority_or_class_name() {
        let mut p = pod("p", None, None);
        assert!(!is_critical(&p));
        p.spec.as_mut().unwrap().priority_class_name = Some("system-node-critical".into());
        assert!(is_critical(&p));
        assert_eq!(priority(&p), 2_000_001_000);
    }
}
