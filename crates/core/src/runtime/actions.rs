//! Decide what to do for one pod: compare the spec with what the runtime holds and
//! return the actions (upstream computePodActions). Pure: no I/O, unit-tested.

use k8s_openapi::api::core::v1::{Container, Pod};

use super::backoff::Backoff;
use super::labels::container_hash;
use super::model::{ContainerState, ObservedContainer, ObservedPod};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KillContainer {
    pub id: String,
    pub name: String,
    pub reason: String,
}

/// A container that should run but must wait for its restart backoff.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackingOff {
    pub name: String,
    pub until_ns: i64,
}

/// Which list a container to start comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContainerKind {
    Init,
    Regular,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StartContainer {
    pub kind: ContainerKind,
    pub index: usize,
    /// True when this replaces an exited container: the restart backoff advances.
    pub is_restart: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PodActions {
    /// Stop every container and sandbox of the pod first (the sandbox is being replaced).
    pub kill_pod: bool,
    /// Create a new sandbox with this attempt number.
    pub create_sandbox: Option<u32>,
    /// The ready sandbox to start containers in, when not creating one.
    pub sandbox_id: Option<String>,
    pub kill: Vec<KillContainer>,
    /// In order: at most one init container, or the regular containers.
    pub start: Vec<StartContainer>,
    pub backing_off: Vec<BackingOff>,
    /// An init container failed and the restart policy forbids retrying: the pod failed.
    pub init_failed: bool,
}

impl PodActions {
    pub fn is_noop(&self) -> bool {
        !self.kill_pod && self.create_sandbox.is_none() && self.kill.is_empty() && self.start.is_empty()
    }
}

/// The backoff key of a container: a changed spec starts a fresh backoff.
pub fn backoff_key(container: &Container) -> String {
    format!("{}_{}", container.name, container_hash(container))
}

fn restart_policy(pod: &Pod) -> &str {
    pod.spec
        .as_ref()
        .and_then(|s| s.restart_policy.as_deref())
        .unwrap_or("Always")
}

fn is_sidecar(c: &Container) -> bool {
    c.restart_policy.as_deref() == Some("Always")
}

/// Whether an exited container should run again under the pod's restart policy.
pub fn should_restart(policy: &str, exit_code: i32) -> bool {
    match policy {
        "Never" => false,
        "OnFailure" => exit_code != 0,
        _ => true,
    }
}

pub fn compute(pod: &Pod, observed: Option<&ObservedPod>, backoff: &Backoff, now_ns: i64) -> PodActions {
    let empty = ObservedPod::default();
    let observed = observed.unwrap_or(&empty);
    let spec = pod.spec.clone().unwrap_or_default();
    let init_containers = spec.init_containers.clone().unwrap_or_default();
    let policy = restart_policy(pod);
    let mut actions = PodActions::default();

    let ready: Vec<_> = observed.sandboxes.iter().filter(|s| s.ready).collect();
    let latest = observed.latest_sandbox();
    let sandbox_ok = ready.len() == 1 && latest.is_some_and(|l| l.ready);
    if !sandbox_ok {
        // A sandbox that died after containers ran is not recreated under Never.
        if latest.is_some() && policy == "Never" && !observed.containers.is_empty() {
            actions.kill_pod = !ready.is_empty() || observed.running_containers().next().is_some();
            return actions;
        }
        actions.kill_pod = latest.is_some();
        actions.create_sandbox = Some(latest.map(|s| s.attempt + 1).unwrap_or(0));
        if init_containers.is_empty() {
            for (index, c) in spec.containers.iter().enumerate() {
                // Under OnFailure a container that already succeeded is done for good.
                let succeeded = observed
                    .latest_container(&c.name)
                    .is_some_and(|o| o.state == ContainerState::Exited && o.exit_code == 0);
                if policy == "OnFailure" && succeeded {
                    continue;
                }
                actions.start.push(StartContainer {
                    kind: ContainerKind::Regular,
                    index,
                    is_restart: false,
                });
            }
        } else {
            actions.start.push(StartContainer {
                kind: ContainerKind::Init,
                index: 0,
                is_restart: false,
            });
        }
        // Nothing left to run (e.g. every container succeeded under OnFailure): a
        // finished pod does not get a new sandbox.
        if actions.start.is_empty() {
            actions.create_sandbox = None;
        }
        return actions;
    }
    let Some(sandbox) = latest else { return actions };
    actions.sandbox_id = Some(sandbox.id.clone());
    let sandbox_id = sandbox.id.as_str();
    let in_sandbox = |name: &str| -> Option<&ObservedContainer> {
        observed.containers.iter().find(|c| c.name == name && c.sandbox_id == sandbox_id)
    };

    // Containers the spec no longer names (or never did) are stopped.
    for c in observed.containers.iter().filter(|c| c.sandbox_id == sandbox.id) {
        let known = spec.containers.iter().chain(init_containers.iter()).any(|s| s.name == c.name);
        if !known && c.state != ContainerState::Exited {
            actions.kill.push(KillContainer {
                id: c.id.clone(),
                name: c.name.clone(),
                reason: "Container is not in the pod spec".into(),
            });
        }
    }

    // Init containers run one at a time, in order; sidecars start and keep running.
    for (index, c) in init_containers.iter().enumerate() {
        let start = StartContainer {
            kind: ContainerKind::Init,
            index,
            is_restart: true,
        };
        match in_sandbox(&c.name) {
            None => {
                actions.start.push(StartContainer { is_restart: false, ..start });
                return actions;
            }
            Some(o) if o.state == ContainerState::Running && is_sidecar(c) => continue,
            Some(o) if o.state == ContainerState::Running => return actions,
            Some(o) if o.state == ContainerState::Exited => {
                if !is_sidecar(c) && o.exit_code == 0 {
                    continue;
                }
                if !is_sidecar(c) && policy == "Never" {
                    actions.init_failed = true;
                    return actions;
                }
                restart_or_wait(&mut actions, c, o, start, backoff, now_ns);
                return actions;
            }
            Some(o) => {
                // Created but never started, or unknown: replace it.
                actions.kill.push(KillContainer {
                    id: o.id.clone(),
                    name: c.name.clone(),
                    reason: "Container is in an unexpected state".into(),
                });
                actions.start.push(start);
                return actions;
            }
        }
    }

    for (index, c) in spec.containers.iter().enumerate() {
        let start = StartContainer {
            kind: ContainerKind::Regular,
            index,
            is_restart: true,
        };
        match in_sandbox(&c.name) {
            None => actions.start.push(StartContainer { is_restart: false, ..start }),
            Some(o) if o.state == ContainerState::Running => {
                if !o.hash.is_empty() && o.hash != container_hash(c) {
                    actions.kill.push(KillContainer {
                        id: o.id.clone(),
                        name: c.name.clone(),
                        reason: format!("Container {} definition changed, will be restarted", c.name),
                    });
                    actions.start.push(StartContainer { is_restart: false, ..start });
                }
            }
            Some(o) if o.state == ContainerState::Exited => {
                if should_restart(policy, o.exit_code) {
                    restart_or_wait(&mut actions, c, o, start, backoff, now_ns);
                }
            }
            Some(o) => {
                actions.kill.push(KillContainer {
                    id: o.id.clone(),
                    name: c.name.clone(),
                    reason: "Container is in an unexpected state".into(),
                });
                actions.start.push(start);
            }
        }
    }
    actions
}

fn restart_or_wait(
    actions: &mut PodActions,
    c: &Container,
    o: &ObservedContainer,
    start: StartContainer,
    backoff: &Backoff,
    now_ns: i64,
) {
    let finished = if o.finished_at > 0 { o.finished_at } else { now_ns };
    match backoff.in_backoff_since(&backoff_key(c), finished, now_ns) {
        Some(until_ns) => actions.backing_off.push(BackingOff {
            name: c.name.clone(),
            until_ns,
        }),
        None => actions.start.push(start),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::model::ObservedSandbox;
    use k8s_openapi::api::core::v1::PodSpec;

    const S: i64 = 1_000_000_000;

    fn container(name: &str) -> Container {
        Container {
            name: name.into(),
            image: Some("busybox".into()),
            ..Default::default()
        }
    }

    fn pod(policy: &str, names: &[&str], init: &[&str]) -> Pod {
        Pod {
            spec: Some(PodSpec {
                restart_policy: Some(policy.into()),
                containers: names.iter().map(|n| container(n)).collect(),
                init_containers: (!init.is_empty()).then(|| init.iter().map(|n| container(n)).collect()),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn sandbox(id: &str, ready: bool, attempt: u32, created: i64) -> ObservedSandbox {
        ObservedSandbox {
            id: id.into(),
            attempt,
            ready,
            created_at: created,
            ips: vec![],
        }
    }

    fn observed(name: &str, sb: &str, state: ContainerState, exit: i32, finished: i64, created: i64) -> ObservedContainer {
        ObservedContainer {
            id: format!("{name}-{created}"),
            name: name.into(),
            sandbox_id: sb.into(),
            state,
            created_at: created,
            started_at: created,
            finished_at: finished,
            exit_code: exit,
            reason: String::new(),
            message: String::new(),
            image: "busybox".into(),
            image_ref: "sha256:x".into(),
            hash: container_hash(&container(name)),
            restart_count: 0,
        }
    }

    fn regular(index: usize, is_restart: bool) -> StartContainer {
        StartContainer {
            kind: ContainerKind::Regular,
            index,
            is_restart,
        }
    }

    #[test]
    fn new_pod_creates_sandbox_and_starts_all() {
        let p = pod("Always", &["a", "b"], &[]);
        let a = compute(&p, None, &Backoff::containers(), 0);
        assert_eq!(a.create_sandbox, Some(0));
        assert!(!a.kill_pod);
        assert_eq!(a.start, vec![regular(0, false), regular(1, false)]);
    }

    #[test]
    fn running_pod_is_left_alone() {
        let p = pod("Always", &["a"], &[]);
        let o = ObservedPod {
            sandboxes: vec![sandbox("s1", true, 0, 1)],
            containers: vec![observed("a", "s1", ContainerState::Running, 0, 0, 2)],
            ..Default::default()
        };
        let a = compute(&p, Some(&o), &Backoff::containers(), 10 * S);
        assert!(a.is_noop(), "{a:?}");
    }

    #[test]
    fn dead_sandbox_is_replaced_with_next_attempt() {
        let p = pod("Always", &["a"], &[]);
        let o = ObservedPod {
            sandboxes: vec![sandbox("s1", false, 2, 1)],
            containers: vec![observed("a", "s1", ContainerState::Exited, 137, 5, 2)],
            ..Default::default()
        };
        let a = compute(&p, Some(&o), &Backoff::containers(), 10 * S);
        assert!(a.kill_pod);
        assert_eq!(a.create_sandbox, Some(3));
        assert_eq!(a.start, vec![regular(0, false)]);
    }

    #[test]
    fn dead_sandbox_not_recreated_under_never() {
        let p = pod("Never", &["a"], &[]);
        let o = ObservedPod {
            sandboxes: vec![sandbox("s1", false, 0, 1)],
            containers: vec![observed("a", "s1", ContainerState::Exited, 0, 5, 2)],
            ..Default::default()
        };
        let a = compute(&p, Some(&o), &Backoff::containers(), 10 * S);
        assert_eq!(a.create_sandbox, None);
        assert!(a.start.is_empty());
    }

    #[test]
    fn restart_policy_table() {
        for (policy, exit, restarts) in [
            ("Always", 0, true),
            ("Always", 1, true),
            ("OnFailure", 0, false),
            ("OnFailure", 2, true),
            ("Never", 0, false),
            ("Never", 1, false),
        ] {
            let p = pod(policy, &["a"], &[]);
            let o = ObservedPod {
                sandboxes: vec![sandbox("s1", true, 0, 1)],
                containers: vec![observed("a", "s1", ContainerState::Exited, exit, 5 * S, 2)],
                ..Default::default()
            };
            let a = compute(&p, Some(&o), &Backoff::containers(), 6 * S);
            assert_eq!(!a.start.is_empty(), restarts, "{policy} exit {exit}");
            if restarts {
                assert_eq!(a.start, vec![regular(0, true)]);
            }
        }
    }

    #[test]
    fn crash_loop_waits_for_backoff() {
        let p = pod("Always", &["a"], &[]);
        let mut backoff = Backoff::containers();
        backoff.next(&backoff_key(&container("a")), 0);
        let o = ObservedPod {
            sandboxes: vec![sandbox("s1", true, 0, 1)],
            containers: vec![observed("a", "s1", ContainerState::Exited, 1, 3 * S, 2)],
            ..Default::default()
        };
        let a = compute(&p, Some(&o), &backoff, 4 * S);
        assert!(a.start.is_empty());
        assert_eq!(
            a.backing_off,
            vec![BackingOff {
                name: "a".into(),
                until_ns: 13 * S
            }]
        );
        let a = compute(&p, Some(&o), &backoff, 13 * S);
        assert_eq!(a.start, vec![regular(0, true)]);
    }

    #[test]
    fn changed_spec_restarts_running_container() {
        let p = pod("Always", &["a"], &[]);
        let mut o = observed("a", "s1", ContainerState::Running, 0, 0, 2);
        o.hash = "stale".into();
        let obs = ObservedPod {
            sandboxes: vec![sandbox("s1", true, 0, 1)],
            containers: vec![o],
            ..Default::default()
        };
        let a = compute(&p, Some(&obs), &Backoff::containers(), 5 * S);
        assert_eq!(a.kill.len(), 1);
        assert_eq!(a.start, vec![regular(0, false)]);
    }

    #[test]
    fn unknown_running_container_is_killed() {
        let p = pod("Always", &["a"], &[]);
        let obs = ObservedPod {
            sandboxes: vec![sandbox("s1", true, 0, 1)],
            containers: vec![
                observed("a", "s1", ContainerState::Running, 0, 0, 2),
                observed("zombie", "s1", ContainerState::Running, 0, 0, 3),
            ],
            ..Default::default()
        };
        let a = compute(&p, Some(&obs), &Backoff::containers(), 5 * S);
        assert_eq!(a.kill.iter().map(|k| k.name.as_str()).collect::<Vec<_>>(), vec!["zombie"]);
        assert!(a.start.is_empty());
    }

    #[test]
    fn init_containers_run_in_order_before_regular_ones() {
        let p = pod("Always", &["main"], &["i1", "i2"]);
        let a = compute(&p, None, &Backoff::containers(), 0);
        assert_eq!(a.create_sandbox, Some(0));
        assert_eq!(a.start, vec![StartContainer { kind: ContainerKind::Init, index: 0, is_restart: false }]);

        let mut obs = ObservedPod {
            sandboxes: vec![sandbox("s1", true, 0, 1)],
            containers: vec![observed("i1", "s1", ContainerState::Running, 0, 0, 2)],
            ..Default::default()
        };
        assert!(compute(&p, Some(&obs), &Backoff::containers(), S).is_noop());

        obs.containers = vec![observed("i1", "s1", ContainerState::Exited, 0, S, 2)];
        let a = compute(&p, Some(&obs), &Backoff::containers(), 2 * S);
        assert_eq!(a.start, vec![StartContainer { kind: ContainerKind::Init, index: 1, is_restart: false }]);

        obs.containers.insert(0, observed("i2", "s1", ContainerState::Exited, 0, 2 * S, 3));
        let a = compute(&p, Some(&obs), &Backoff::containers(), 3 * S);
        assert_eq!(a.start, vec![regular(0, false)]);
    }

    #[test]
    fn failed_init_container_fails_pod_under_never() {
        let p = pod("Never", &["main"], &["i1"]);
        let obs = ObservedPod {
            sandboxes: vec![sandbox("s1", true, 0, 1)],
            containers: vec![observed("i1", "s1", ContainerState::Exited, 1, S, 2)],
            ..Default::default()
        };
        let a = compute(&p, Some(&obs), &Backoff::containers(), 2 * S);
        assert!(a.init_failed);
        assert!(a.start.is_empty());
        let p = pod("OnFailure", &["main"], &["i1"]);
        let a = compute(&p, Some(&obs), &Backoff::containers(), 2 * S);
        assert!(!a.init_failed);
        assert_eq!(a.start, vec![StartContainer { kind: ContainerKind::Init, index: 0, is_restart: true }]);
    }
}
