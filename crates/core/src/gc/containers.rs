//! Container garbage collection (upstream kuberuntime_gc.go), as a pure plan over what
//! the runtime holds plus the pods that are still configured:
//!
//! - dead containers (not running) created more than `minAge` ago are grouped per
//!   (pod UID, container name); those of pods no longer configured all go (once every
//!   source has reported); the others are cut to `maxPerPodContainer` newest, then to
//!   `maxContainers` in total (an equal share per group, at least one, then oldest
//!   first);
//! - sandboxes that are not ready and hold no container go, except the newest of a pod
//!   that is still configured.
//!
//! One difference from upstream, on purpose: the newest dead instance of each container
//! of a configured pod is never removed, whatever the limits say. Here the runtime is the
//! only record of a container's exit (there is no API status to fall back on in
//! standalone mode), and without it a finished `restartPolicy: Never` pod would be
//! started again. A container in state CREATED is left alone for a minute: the pod
//! worker may be about to start it.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use k8s_cri::v1 as cri;

use crate::runtime::labels;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ContainerGcPolicy {
    /// `--minimum-container-ttl-duration`.
    pub min_age: Duration,
    /// `--maximum-dead-containers-per-container` (negative: no limit).
    pub max_per_pod_container: i32,
    /// `--maximum-dead-containers` (negative: no limit).
    pub max_containers: i32,
}

impl Default for ContainerGcPolicy {
    fn default() -> Self {
        ContainerGcPolicy {
            min_age: Duration::ZERO,
            max_per_pod_container: 1,
            max_containers: -1,
        }
    }
}

/// A CREATED container younger than this is never collected.
const CREATED_GRACE: Duration = Duration::from_secs(60);

/// What to remove.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// Container IDs, with whether the container must be stopped first (state unknown).
    pub containers: Vec<(String, bool)>,
    pub sandboxes: Vec<String>,
}

#[derive(Debug, Clone)]
struct Dead {
    id: String,
    attempt: u32,
    created_at: i64,
    unknown: bool,
}

/// Newest first: by attempt, then creation time (upstream byAttempt).
fn newest_first(a: &Dead, b: &Dead) -> std::cmp::Ordering {
    b.attempt
        .cmp(&a.attempt)
        .then_with(|| b.created_at.cmp(&a.created_at))
}

/// Plan one collection. `configured` holds the UIDs of pods that are still wanted;
/// `evict_terminated` is accepted for upstream's DeleteAllUnusedContainers and changes
/// nothing here (see the module doc).
pub fn plan(
    containers: &[cri::Container],
    sandboxes: &[cri::PodSandbox],
    configured: &HashSet<String>,
    all_sources_ready: bool,
    policy: &ContainerGcPolicy,
    now_ns: i64,
) -> Plan {
    let mut out = Plan::default();
    let min_age_ns = policy.min_age.as_nanos() as i64;
    let mut units: BTreeMap<(String, String), Vec<Dead>> = BTreeMap::new();
    for c in containers {
        if c.state == cri::ContainerState::ContainerRunning as i32 {
            continue;
        }
        let age = now_ns - c.created_at;
        if age < min_age_ns {
            continue;
        }
        if c.state == cri::ContainerState::ContainerCreated as i32
            && age < CREATED_GRACE.as_nanos() as i64
        {
            continue;
        }
        let Some(uid) = c.labels.get(labels::POD_UID) else {
            continue;
        };
        let name = c
            .labels
            .get(labels::CONTAINER_NAME)
            .cloned()
            .or_else(|| c.metadata.as_ref().map(|m| m.name.clone()))
            .unwrap_or_default();
        units.entry((uid.clone(), name)).or_default().push(Dead {
            id: c.id.clone(),
            attempt: c.metadata.as_ref().map_or(0, |m| m.attempt),
            created_at: c.created_at,
            unknown: c.state == cri::ContainerState::ContainerUnknown as i32,
        });
    }
    for list in units.values_mut() {
        list.sort_by(newest_first);
    }
    let remove = |d: &Dead, out: &mut Plan| out.containers.push((d.id.clone(), d.unknown));

    // Pods that are gone: everything.
    if all_sources_ready {
        units.retain(|(uid, _), list| {
            if configured.contains(uid) {
                return true;
            }
            for d in list.iter() {
                remove(d, &mut out);
            }
            false
        });
    }
    // The newest of each remaining unit is protected when its pod is configured.
    let floor = |uid: &str| usize::from(configured.contains(uid));
    let keep_at_most =
        |units: &mut BTreeMap<(String, String), Vec<Dead>>, n: usize, out: &mut Plan| {
            for ((uid, _), list) in units.iter_mut() {
                let keep = n.max(floor(uid));
                if list.len() > keep {
                    for d in list.drain(keep..) {
                        out.containers.push((d.id.clone(), d.unknown));
                    }
                }
            }
        };
    if policy.max_per_pod_container >= 0 {
        keep_at_most(&mut units, policy.max_per_pod_container as usize, &mut out);
    }
    if policy.max_containers >= 0 {
        let max = policy.max_containers as usize;
        let total: usize = units.values().map(Vec::len).sum();
        if total > max && !units.is_empty() {
            let share = (max / units.len()).max(1);
            keep_at_most(&mut units, share, &mut out);
            let total: usize = units.values().map(Vec::len).sum();
            if total > max {
                // Oldest first, never a protected newest instance.
                let mut flat: Vec<Dead> = Vec::new();
                for ((uid, _), list) in &units {
                    let skip = floor(uid);
                    flat.extend(list.iter().skip(skip).cloned());
                }
                flat.sort_by(newest_first);
                let excess = total - max;
                for d in flat.iter().rev().take(excess) {
                    out.containers.push((d.id.clone(), d.unknown));
                }
            }
        }
    }

    // Sandboxes: not ready and without containers (after the removals above).
    let removed: HashSet<&str> = out.containers.iter().map(|(id, _)| id.as_str()).collect();
    let with_containers: HashSet<&str> = containers
        .iter()
        .filter(|c| !removed.contains(c.id.as_str()))
        .map(|c| c.pod_sandbox_id.as_str())
        .collect();
    let mut per_pod: BTreeMap<String, Vec<&cri::PodSandbox>> = BTreeMap::new();
    for sb in sandboxes {
        let Some(uid) = sb.labels.get(labels::POD_UID) else {
            continue;
        };
        per_pod.entry(uid.clone()).or_default().push(sb);
    }
    for (uid, mut list) in per_pod {
        list.sort_by(|a, b| {
            let (aa, ba) = (
                a.metadata.as_ref().map_or(0, |m| m.attempt),
                b.metadata.as_ref().map_or(0, |m| m.attempt),
            );
            ba.cmp(&aa).then_with(|| b.created_at.cmp(&a.created_at))
        });
        let gone = all_sources_ready && !configured.contains(&uid);
        let keep = if gone { 0 } else { 1 };
        for sb in list.iter().skip(keep) {
            let active = sb.state == cri::PodSandboxState::SandboxReady as i32
                || with_containers.contains(sb.id.as_str());
            if !active {
                out.sandboxes.push(sb.id.clone());
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    const SEC: i64 = 1_000_000_000;

    fn container(
        id: &str,
        uid: &str,
        name: &str,
        attempt: u32,
        state: cri::ContainerState,
        created_s: i64,
        sandbox: &str,
    ) -> cri::Container {
        cri::Container {
            id: id.into(),
            pod_sandbox_id: sandbox.into(),
            metadata: Some(cri::ContainerMetadata {
                name: name.into(),
                attempt,
            }),
            state: state as i32,
            created_at: created_s * SEC,
            labels: HashMap::from([
                (labels::POD_UID.to_string(), uid.to_string()),
                (labels::CONTAINER_NAME.to_string(), name.to_string()),
            ]),
            ..Default::default()
        }
    }

    fn sandbox(id: &str, uid: &str, attempt: u32, ready: bool, created_s: i64) -> cri::PodSandbox {
        cri::PodSandbox {
            id: id.into(),
            metadata: Some(cri::PodSandboxMetadata {
                uid: uid.into(),
                attempt,
                ..Default::default()
            }),
            state: if ready {
                cri::PodSandboxState::SandboxReady
            } else {
                cri::PodSandboxState::SandboxNotready
            } as i32,
            created_at: created_s * SEC,
            labels: HashMap::from([(labels::POD_UID.to_string(), uid.to_string())]),
            ..Default::default()
        }
    }

    use cri::ContainerState::{
        ContainerCreated as Created, ContainerExited as Exited, ContainerRunning as Running,
    };

    fn ids(p: &Plan) -> Vec<&str> {
        let mut v: Vec<&str> = p.containers.iter().map(|(id, _)| id.as_str()).collect();
        v.sort();
        v
    }

    #[test]
    fn keeps_newest_dead_per_container_and_respects_min_age() {
        let cs = vec![
            container("a0", "u1", "a", 0, Exited, 100, "s1"),
            container("a1", "u1", "a", 1, Exited, 200, "s1"),
            container("a2", "u1", "a", 2, Exited, 300, "s1"),
            container("a3", "u1", "a", 3, Running, 400, "s1"),
            container("b0", "u1", "b", 0, Exited, 990, "s1"),
            container("b1", "u1", "b", 1, Exited, 995, "s1"),
        ];
        let configured = HashSet::from(["u1".to_string()]);
        let policy = ContainerGcPolicy {
            min_age: Duration::from_secs(60),
            ..Default::default()
        };
        let p = plan(&cs, &[], &configured, true, &policy, 1000 * SEC);
        // a2 (newest dead) stays; b0/b1 are younger than minAge.
        assert_eq!(ids(&p), ["a0", "a1"]);
    }

    #[test]
    fn removed_pods_lose_everything_once_sources_are_ready() {
        let cs = vec![
            container("x0", "gone", "x", 0, Exited, 1, "sx"),
            container("y0", "kept", "y", 0, Exited, 1, "sy"),
        ];
        let sbs = vec![
            sandbox("sx", "gone", 0, false, 1),
            sandbox("sy", "kept", 0, false, 1),
        ];
        let configured = HashSet::from(["kept".to_string()]);
        let p = plan(
            &cs,
            &sbs,
            &configured,
            false,
            &Default::default(),
            1000 * SEC,
        );
        assert!(p.containers.is_empty() && p.sandboxes.is_empty(), "{p:?}");
        let p = plan(
            &cs,
            &sbs,
            &configured,
            true,
            &Default::default(),
            1000 * SEC,
        );
        assert_eq!(ids(&p), ["x0"]);
        assert_eq!(p.sandboxes, ["sx"]);
    }

    #[test]
    fn max_containers_removes_oldest_but_never_the_protected_newest() {
        let cs = vec![
            container("g0", "gone", "g", 0, Exited, 10, "sg"),
            container("g1", "gone", "g", 1, Exited, 20, "sg"),
            container("p0", "u1", "p", 0, Exited, 30, "s1"),
            container("q0", "u2", "q", 0, Exited, 40, "s2"),
        ];
        // "gone" is not configured but sources are not ready: it is only limited.
        let configured = HashSet::from(["u1".to_string(), "u2".to_string()]);
        let policy = ContainerGcPolicy {
            min_age: Duration::ZERO,
            max_per_pod_container: -1,
            max_containers: 1,
        };
        let p = plan(&cs, &[], &configured, false, &policy, 1000 * SEC);
        // Share 1 per unit removes g0; then the oldest unprotected (g1) goes; p0 and q0
        // are the newest of configured pods and stay although the total is 2 > 1.
        assert_eq!(ids(&p), ["g0", "g1"]);
    }

    #[test]
    fn fresh_created_containers_are_left_for_the_worker() {
        let cs = vec![
            container("c0", "u1", "c", 0, Exited, 100, "s1"),
            container("c1", "u1", "c", 1, Created, 990, "s1"),
        ];
        let configured = HashSet::from(["u1".to_string()]);
        let p = plan(&cs, &[], &configured, true, &Default::default(), 1000 * SEC);
        assert!(p.containers.is_empty(), "{p:?}");
    }

    #[test]
    fn dead_sandboxes_except_newest_of_configured_pods() {
        let cs = vec![container("c", "u1", "c", 0, Running, 1, "s3")];
        let sbs = vec![
            sandbox("s1", "u1", 0, false, 1),
            sandbox("s2", "u1", 1, false, 2),
            sandbox("s3", "u1", 2, true, 3),
            sandbox("t1", "u2", 0, false, 1),
            sandbox("t2", "u2", 1, false, 2),
        ];
        let configured = HashSet::from(["u1".to_string(), "u2".to_string()]);
        let p = plan(
            &cs,
            &sbs,
            &configured,
            true,
            &Default::default(),
            1000 * SEC,
        );
        let mut s = p.sandboxes.clone();
        s.sort();
        // u1 keeps s3 (newest, ready); s1 and s2 go. u2 keeps t2 (newest).
        assert_eq!(s, ["s1", "s2", "t1"]);
    }
}
