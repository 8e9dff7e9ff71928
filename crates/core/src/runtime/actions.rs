//! Decide what to do for one pod: compare the spec with what the runtime holds and
//! return the actions (upstream computePodActions). Pure: no I/O, unit-tested.

use k8s_openapi::api::core::v1::{Container, EphemeralContainer, Pod};
use kubelet_primitives::pod::is_sidecar;

use super::backoff::Backoff;
use super::labels::container_hash;
use super::model::{ContainerState, ObservedContainer, ObservedPod};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KillContainer {
    pub id: String,
    pub name: String,
    pub reason: String,
    /// A probe's own terminationGracePeriodSeconds, replacing the pod's.
    pub grace_override: Option<i64>,
}

/// What the probes say about running containers, by container ID (from
/// prober::ProbeManager::health).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContainerHealth {
    pub liveness_failed: std::collections::HashSet<String>,
    pub startup_failed: std::collections::HashSet<String>,
    pub startup_succeeded: std::collections::HashSet<String>,
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
    Ephemeral,
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
    /// Stop every container and the sandbox of the pod first: the sandbox is being
    /// replaced, or the pod is done (its sidecars must not keep it alive).
    pub kill_pod: bool,
    /// Create a new sandbox with this attempt number.
    pub create_sandbox: Option<u32>,
    /// The ready sandbox to start containers in, when not creating one.
    pub sandbox_id: Option<String>,
    pub kill: Vec<KillContainer>,
    /// In order: ephemeral containers, init containers (at most one regular one, plus
    /// sidecars to (re)start), then the main containers.
    pub start: Vec<StartContainer>,
    pub backing_off: Vec<BackingOff>,
    /// An init container failed and the restart policy forbids retrying: the pod failed.
    pub init_failed: bool,
}

impl PodActions {
    pub fn is_noop(&self) -> bool {
        !self.kill_pod
            && self.create_sandbox.is_none()
            && self.kill.is_empty()
            && self.start.is_empty()
    }
}

/// An ephemeral container has every field of a container (upstream converts the same way).
pub fn ephemeral_as_container(e: &EphemeralContainer) -> Container {
    Container {
        name: e.name.clone(),
        image: e.image.clone(),
        command: e.command.clone(),
        args: e.args.clone(),
        working_dir: e.working_dir.clone(),
        ports: e.ports.clone(),
        env_from: e.env_from.clone(),
        env: e.env.clone(),
        resources: e.resources.clone(),
        resize_policy: e.resize_policy.clone(),
        restart_policy: e.restart_policy.clone(),
        restart_policy_rules: e.restart_policy_rules.clone(),
        volume_mounts: e.volume_mounts.clone(),
        volume_devices: e.volume_devices.clone(),
        liveness_probe: e.liveness_probe.clone(),
        readiness_probe: e.readiness_probe.clone(),
        startup_probe: e.startup_probe.clone(),
        lifecycle: e.lifecycle.clone(),
        termination_message_path: e.termination_message_path.clone(),
        termination_message_policy: e.termination_message_policy.clone(),
        image_pull_policy: e.image_pull_policy.clone(),
        security_context: e.security_context.clone(),
        stdin: e.stdin,
        stdin_once: e.stdin_once,
        tty: e.tty,
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

/// Whether an exited container should run again under the pod's restart policy.
pub fn should_restart(policy: &str, exit_code: i32) -> bool {
    match policy {
        "Never" => false,
        "OnFailure" => exit_code != 0,
        _ => true,
    }
}

pub fn compute(
    pod: &Pod,
    observed: Option<&ObservedPod>,
    backoff: &Backoff,
    now_ns: i64,
) -> PodActions {
    compute_with(pod, observed, backoff, now_ns, &ContainerHealth::default())
}

/// Why a running container must be killed, if it must: a changed definition (always
/// restarted), a failed liveness or startup probe (restarted per policy, with the probe's
/// own grace period when it sets one).
fn kill_reason(
    c: &Container,
    o: &ObservedContainer,
    health: &ContainerHealth,
    what: &str,
) -> Option<(String, Option<i64>, bool)> {
    let grace_of = |p: Option<&k8s_openapi::api::core::v1::Probe>| {
        p.and_then(|p| p.termination_grace_period_seconds)
    };
    if !o.hash.is_empty() && o.hash != container_hash(c) {
        Some((format!("{what} {} definition changed", c.name), None, true))
    } else if health.liveness_failed.contains(&o.id) {
        Some((
            format!("{what} {} failed liveness probe", c.name),
            grace_of(c.liveness_probe.as_ref()),
            false,
        ))
    } else if health.startup_failed.contains(&o.id) {
        Some((
            format!("{what} {} failed startup probe", c.name),
            grace_of(c.startup_probe.as_ref()),
            false,
        ))
    } else {
        None
    }
}

/// Like [`compute`], with what the probes say about the running containers.
pub fn compute_with(
    pod: &Pod,
    observed: Option<&ObservedPod>,
    backoff: &Backoff,
    now_ns: i64,
    health: &ContainerHealth,
) -> PodActions {
    let empty = ObservedPod::default();
    let observed = observed.unwrap_or(&empty);
    let spec = pod.spec.clone().unwrap_or_default();
    let init_containers = spec.init_containers.clone().unwrap_or_default();
    let ephemeral = spec.ephemeral_containers.clone().unwrap_or_default();
    let policy = restart_policy(pod);
    let mut actions = PodActions::default();

    let ready: Vec<_> = observed.sandboxes.iter().filter(|s| s.ready).collect();
    let latest = observed.latest_sandbox();
    let sandbox_ok = ready.len() == 1 && latest.is_some_and(|l| l.ready);
    let anything_running = !ready.is_empty() || observed.running_containers().next().is_some();
    if !sandbox_ok {
        // A sandbox that died after containers ran is not recreated under Never.
        if latest.is_some() && policy == "Never" && !observed.containers.is_empty() {
            actions.kill_pod = anything_running;
            return actions;
        }
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
        // Initialization is done when the last init container succeeded.
        let init_done = init_containers.last().is_none_or(|last| {
            observed
                .latest_container(&last.name)
                .is_some_and(|o| o.state == ContainerState::Exited && o.exit_code == 0)
        });
        if actions.start.is_empty() && init_done {
            // Nothing left to run (every container succeeded under OnFailure): a finished
            // pod does not get a new sandbox, only what still runs is stopped.
            actions.kill_pod = anything_running;
            return actions;
        }
        if !init_containers.is_empty() {
            actions.start = vec![StartContainer {
                kind: ContainerKind::Init,
                index: 0,
                is_restart: false,
            }];
        }
        actions.kill_pod = latest.is_some();
        actions.create_sandbox = Some(latest.map(|s| s.attempt + 1).unwrap_or(0));
        return actions;
    }
    let Some(sandbox) = latest else {
        return actions;
    };
    actions.sandbox_id = Some(sandbox.id.clone());
    let sandbox_id = sandbox.id.as_str();
    let in_sandbox = |name: &str| -> Option<&ObservedContainer> {
        observed
            .containers
            .iter()
            .find(|c| c.name == name && c.sandbox_id == sandbox_id)
    };

    // Containers the spec no longer names (or never did) are stopped.
    for c in observed
        .containers
        .iter()
        .filter(|c| c.sandbox_id == sandbox.id)
    {
        let known = spec
            .containers
            .iter()
            .chain(init_containers.iter())
            .any(|s| s.name == c.name)
            || ephemeral.iter().any(|e| e.name == c.name);
        if !known && c.state != ContainerState::Exited {
            actions.kill.push(KillContainer {
                id: c.id.clone(),
                name: c.name.clone(),
                reason: "Container is not in the pod spec".into(),
                grace_override: None,
            });
        }
    }

    // Ephemeral containers start once, even before initialization finished, and are
    // never restarted.
    for (index, e) in ephemeral.iter().enumerate() {
        if observed.latest_container(&e.name).is_none() {
            actions.start.push(StartContainer {
                kind: ContainerKind::Ephemeral,
                index,
                is_restart: false,
            });
        }
    }

    let initialized = init_actions(
        &init_containers,
        &spec.containers,
        &in_sandbox,
        health,
        policy,
        backoff,
        now_ns,
        &mut actions,
    );
    if actions.kill_pod {
        // An init container failed for good: stop everything, start nothing.
        actions.start.clear();
        actions.kill.clear();
        actions.backing_off.clear();
        return actions;
    }
    if !initialized {
        return actions;
    }

    // Main containers that run (and stay), or will run again.
    let mut keep = 0;
    let mut pending = false;
    for (index, c) in spec.containers.iter().enumerate() {
        let start = StartContainer {
            kind: ContainerKind::Regular,
            index,
            is_restart: true,
        };
        match in_sandbox(&c.name) {
            None => {
                // One that finished in an earlier sandbox stays finished if the policy
                // says so.
                let done = observed.latest_container(&c.name).is_some_and(|o| {
                    o.state == ContainerState::Exited && !should_restart(policy, o.exit_code)
                });
                if !done {
                    pending = true;
                    actions.start.push(StartContainer {
                        is_restart: false,
                        ..start
                    });
                }
            }
            Some(o) if o.state == ContainerState::Running => {
                match kill_reason(c, o, health, "Container") {
                    None => keep += 1,
                    Some((reason, grace_override, changed)) => {
                        // A changed definition restarts at once, whatever the policy; a
                        // failed probe restarts (after the exit, with back-off) unless
                        // the policy is Never.
                        let restarts = changed || policy != "Never";
                        pending |= restarts;
                        actions.kill.push(KillContainer {
                            id: o.id.clone(),
                            name: c.name.clone(),
                            reason: if restarts {
                                format!("{reason}, will be restarted")
                            } else {
                                reason
                            },
                            grace_override,
                        });
                        if changed {
                            actions.start.push(StartContainer {
                                is_restart: false,
                                ..start
                            });
                        }
                    }
                }
            }
            Some(o) if o.state == ContainerState::Exited => {
                if should_restart(policy, o.exit_code) {
                    pending = true;
                    restart_or_wait(
                        &mut actions.start,
                        &mut actions.backing_off,
                        c,
                        o,
                        start,
                        backoff,
                        now_ns,
                    );
                }
            }
            Some(o) => {
                pending = true;
                actions.kill.push(KillContainer {
                    id: o.id.clone(),
                    name: c.name.clone(),
                    reason: "Container is in an unexpected state".into(),
                    grace_override: None,
                });
                actions.start.push(start);
            }
        }
    }
    if keep == 0 && !pending {
        // No main container runs or will run again: the pod is done. Its sidecars must
        // not keep it alive; everything stops, with the sandbox (upstream KillPod).
        actions.kill_pod = anything_running;
        actions.start.clear();
        actions.kill.clear();
        actions.backing_off.clear();
    }
    actions
}

/// Init containers (upstream computeInitContainerActions): run one at a time, in order,
/// each to success; sidecars (restartPolicy Always) start in order, the next one once the
/// previous has started (startup probe passed), and are kept running and restarted. Once
/// a main container ran in this sandbox, regular init containers are never run again.
/// Returns whether the pod is initialized.
#[allow(clippy::too_many_arguments)]
fn init_actions<'a>(
    init: &[Container],
    regular: &[Container],
    in_sandbox: &dyn Fn(&str) -> Option<&'a ObservedContainer>,
    health: &ContainerHealth,
    policy: &str,
    backoff: &Backoff,
    now_ns: i64,
    actions: &mut PodActions,
) -> bool {
    if init.is_empty() {
        return true;
    }
    let last = init.len() - 1;
    let ran_before = regular.iter().any(|c| in_sandbox(&c.name).is_some());
    let mut initialized = ran_before;
    // Whether everything before the current one (walking backwards) was initialized.
    let mut previously = ran_before;
    let mut starts: Vec<StartContainer> = Vec::new();
    // Walk backwards: the last init container that ran tells how far initialization got
    // (earlier ones may have been removed).
    for (i, c) in init.iter().enumerate().rev() {
        let start = StartContainer {
            kind: ContainerKind::Init,
            index: i,
            is_restart: true,
        };
        let Some(o) = in_sandbox(&c.name) else {
            if previously && is_sidecar(c) {
                starts.push(StartContainer {
                    is_restart: false,
                    ..start
                });
            }
            continue;
        };
        if previously && !is_sidecar(c) {
            continue;
        }
        match o.state {
            ContainerState::Running if is_sidecar(c) => {
                let started = c.startup_probe.is_none() || health.startup_succeeded.contains(&o.id);
                if started {
                    if i == last {
                        initialized = true;
                    } else if !previously {
                        starts.push(StartContainer {
                            kind: ContainerKind::Init,
                            index: i + 1,
                            is_restart: false,
                        });
                    }
                }
                // Killed here, restarted after its exit (with back-off).
                if let Some((reason, grace_override, _)) =
                    kill_reason(c, o, health, "Init container")
                {
                    actions.kill.push(KillContainer {
                        id: o.id.clone(),
                        name: c.name.clone(),
                        reason,
                        grace_override,
                    });
                }
            }
            // A regular init container still running: wait for it.
            ContainerState::Running => {}
            ContainerState::Exited if is_sidecar(c) => restart_or_wait(
                &mut starts,
                &mut actions.backing_off,
                c,
                o,
                start,
                backoff,
                now_ns,
            ),
            ContainerState::Exited if o.exit_code != 0 => {
                if policy == "Never" {
                    actions.init_failed = true;
                    actions.kill_pod = true;
                    return false;
                }
                restart_or_wait(
                    &mut starts,
                    &mut actions.backing_off,
                    c,
                    o,
                    start,
                    backoff,
                    now_ns,
                );
            }
            ContainerState::Exited => {
                if i == last {
                    initialized = true;
                } else {
                    starts.push(StartContainer {
                        kind: ContainerKind::Init,
                        index: i + 1,
                        is_restart: false,
                    });
                }
            }
            // Created but never started, or unknown: replace it (a regular init container
            // in an unknown state under Never fails the pod, as upstream).
            state => {
                if state == ContainerState::Unknown && !is_sidecar(c) && policy == "Never" {
                    actions.init_failed = true;
                    actions.kill_pod = true;
                    return false;
                }
                actions.kill.push(KillContainer {
                    id: o.id.clone(),
                    name: c.name.clone(),
                    reason: "Init container is in an unexpected state".into(),
                    grace_override: None,
                });
                starts.push(start);
            }
        }
        previously = true;
    }
    if !previously {
        starts.push(StartContainer {
            kind: ContainerKind::Init,
            index: 0,
            is_restart: false,
        });
    }
    starts.reverse();
    actions.start.extend(starts);
    initialized
}

fn restart_or_wait(
    start_list: &mut Vec<StartContainer>,
    backing_off: &mut Vec<BackingOff>,
    c: &Container,
    o: &ObservedContainer,
    start: StartContainer,
    backoff: &Backoff,
    now_ns: i64,
) {
    let finished = if o.finished_at > 0 {
        o.finished_at
    } else {
        now_ns
    };
    match backoff.in_backoff_since(&backoff_key(c), finished, now_ns) {
        Some(until_ns) => backing_off.push(BackingOff {
            name: c.name.clone(),
            until_ns,
        }),
        None => start_list.push(start),
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
                init_containers: (!init.is_empty())
                    .then(|| init.iter().map(|n| container(n)).collect()),
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

    fn observed(
        name: &str,
        sb: &str,
        state: ContainerState,
        exit: i32,
        finished: i64,
        created: i64,
    ) -> ObservedContainer {
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
        assert_eq!(
            a.kill.iter().map(|k| k.name.as_str()).collect::<Vec<_>>(),
            vec!["zombie"]
        );
        assert!(a.start.is_empty());
    }

    #[test]
    fn init_containers_run_in_order_before_regular_ones() {
        let p = pod("Always", &["main"], &["i1", "i2"]);
        let a = compute(&p, None, &Backoff::containers(), 0);
        assert_eq!(a.create_sandbox, Some(0));
        assert_eq!(
            a.start,
            vec![StartContainer {
                kind: ContainerKind::Init,
                index: 0,
                is_restart: false
            }]
        );

        let mut obs = ObservedPod {
            sandboxes: vec![sandbox("s1", true, 0, 1)],
            containers: vec![observed("i1", "s1", ContainerState::Running, 0, 0, 2)],
            ..Default::default()
        };
        assert!(compute(&p, Some(&obs), &Backoff::containers(), S).is_noop());

        obs.containers = vec![observed("i1", "s1", ContainerState::Exited, 0, S, 2)];
        let a = compute(&p, Some(&obs), &Backoff::containers(), 2 * S);
        assert_eq!(
            a.start,
            vec![StartContainer {
                kind: ContainerKind::Init,
                index: 1,
                is_restart: false
            }]
        );

        obs.containers
            .insert(0, observed("i2", "s1", ContainerState::Exited, 0, 2 * S, 3));
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
        assert_eq!(
            a.start,
            vec![StartContainer {
                kind: ContainerKind::Init,
                index: 0,
                is_restart: true
            }]
        );
    }

    fn sidecar(name: &str) -> Container {
        Container {
            restart_policy: Some("Always".into()),
            ..container(name)
        }
    }

    fn init(index: usize, is_restart: bool) -> StartContainer {
        StartContainer {
            kind: ContainerKind::Init,
            index,
            is_restart,
        }
    }

    /// A pod with the given init containers (sidecars are `Always`) and main containers.
    fn pod_with(policy: &str, init: Vec<Container>, main: &[&str]) -> Pod {
        let mut p = pod(policy, main, &[]);
        if let Some(spec) = p.spec.as_mut() {
            spec.init_containers = Some(init);
        }
        p
    }

    fn running_in(name: &str, created: i64) -> ObservedContainer {
        ObservedContainer {
            hash: String::new(),
            ..observed(name, "s1", ContainerState::Running, 0, 0, created)
        }
    }

    fn exited_in(name: &str, exit: i32, finished: i64, created: i64) -> ObservedContainer {
        ObservedContainer {
            hash: String::new(),
            ..observed(name, "s1", ContainerState::Exited, exit, finished, created)
        }
    }

    fn pod_state(containers: Vec<ObservedContainer>) -> ObservedPod {
        let mut containers = containers;
        containers.sort_by_key(|c| std::cmp::Reverse(c.created_at));
        ObservedPod {
            sandboxes: vec![sandbox("s1", true, 0, 1)],
            containers,
            ..Default::default()
        }
    }

    #[test]
    fn sidecars_start_in_order_and_gate_on_startup() {
        let mut with_probe = sidecar("s2");
        with_probe.startup_probe = Some(Default::default());
        let p = pod_with("Always", vec![sidecar("s1"), with_probe], &["main"]);
        let b = Backoff::containers();
        // New sandbox: the first init container only.
        assert_eq!(compute(&p, None, &b, 0).start, vec![init(0, false)]);
        // s1 runs (no startup probe: started) -> s2 starts.
        let o = pod_state(vec![running_in("s1", 2)]);
        assert_eq!(compute(&p, Some(&o), &b, S).start, vec![init(1, false)]);
        // s2 runs but its startup probe has not passed: nothing more starts.
        let o = pod_state(vec![running_in("s1", 2), running_in("s2", 3)]);
        assert!(compute(&p, Some(&o), &b, S).is_noop());
        // Startup passed: the main container starts; the sidecars keep running.
        let mut health = ContainerHealth::default();
        health.startup_succeeded.insert("s2-3".into());
        let a = compute_with(&p, Some(&o), &b, S, &health);
        assert_eq!(a.start, vec![regular(0, false)]);
        assert!(a.kill.is_empty());
        // Startup failed: s2 is killed (restarted after it exits).
        let mut health = ContainerHealth::default();
        health.startup_failed.insert("s2-3".into());
        let a = compute_with(&p, Some(&o), &b, S, &health);
        assert_eq!(a.kill.len(), 1);
        assert_eq!(a.kill[0].name, "s2");
        assert!(a.start.is_empty());
    }

    #[test]
    fn exited_sidecar_restarts_without_blocking_main_containers() {
        let p = pod_with(
            "Always",
            vec![sidecar("s1"), container("i2")],
            &["main", "other"],
        );
        let mut b = Backoff::containers();
        // Initialized before (main ran); s1 died and i2 was removed; `other` exited.
        let o = pod_state(vec![
            exited_in("s1", 1, 5 * S, 2),
            running_in("main", 4),
            exited_in("other", 1, 5 * S, 5),
        ]);
        let a = compute(&p, Some(&o), &b, 6 * S);
        assert_eq!(
            a.start,
            vec![init(0, true), regular(1, true)],
            "i2 is not re-run"
        );
        // In back-off, the sidecar waits while main keeps running.
        b.next(&backoff_key(&sidecar("s1")), 0);
        let a = compute(&p, Some(&o), &b, 6 * S);
        assert_eq!(
            a.backing_off
                .iter()
                .map(|x| x.name.as_str())
                .collect::<Vec<_>>(),
            vec!["s1"]
        );
        assert!(!a.kill_pod);
    }

    #[test]
    fn finished_pod_stops_its_sidecars() {
        let p = pod_with("Never", vec![sidecar("s1")], &["main"]);
        let o = pod_state(vec![running_in("s1", 2), exited_in("main", 0, 5 * S, 3)]);
        let a = compute(&p, Some(&o), &Backoff::containers(), 6 * S);
        assert!(a.kill_pod, "the sidecar must not keep a finished pod alive");
        assert!(a.start.is_empty());
        // Under Always the main container restarts instead.
        let p = pod_with("Always", vec![sidecar("s1")], &["main"]);
        let a = compute(&p, Some(&o), &Backoff::containers(), 6 * S);
        assert!(!a.kill_pod);
        assert_eq!(a.start, vec![regular(0, true)]);
    }

    #[test]
    fn failed_liveness_kills_with_the_probe_grace_period() {
        let mut c = container("a");
        c.liveness_probe = Some(k8s_openapi::api::core::v1::Probe {
            termination_grace_period_seconds: Some(7),
            ..Default::default()
        });
        for (policy, restarts) in [("Always", true), ("OnFailure", true), ("Never", false)] {
            let mut p = pod(policy, &[], &[]);
            if let Some(spec) = p.spec.as_mut() {
                spec.containers = vec![c.clone()];
            }
            let o = pod_state(vec![running_in("a", 2)]);
            let mut health = ContainerHealth::default();
            health.liveness_failed.insert("a-2".into());
            let a = compute_with(&p, Some(&o), &Backoff::containers(), S, &health);
            // Restarted after it exited, through the back-off (not in the same pass).
            assert!(a.start.is_empty());
            if !restarts {
                // Nothing will run again: the whole pod stops (upstream KillPod).
                assert!(a.kill_pod, "{policy}");
                continue;
            }
            assert!(!a.kill_pod, "{policy}");
            assert_eq!(a.kill.len(), 1, "{policy}");
            assert_eq!(a.kill[0].grace_override, Some(7));
            assert_eq!(
                a.kill[0].reason,
                "Container a failed liveness probe, will be restarted"
            );
        }
    }

    #[test]
    fn ephemeral_containers_start_once_and_never_restart() {
        let mut p = pod("Always", &["main"], &[]);
        if let Some(spec) = p.spec.as_mut() {
            spec.ephemeral_containers =
                Some(vec![k8s_openapi::api::core::v1::EphemeralContainer {
                    name: "debug".into(),
                    image: Some("busybox".into()),
                    ..Default::default()
                }]);
        }
        let o = pod_state(vec![running_in("main", 2)]);
        let a = compute(&p, Some(&o), &Backoff::containers(), S);
        assert_eq!(
            a.start,
            vec![StartContainer {
                kind: ContainerKind::Ephemeral,
                index: 0,
                is_restart: false
            }]
        );
        let o = pod_state(vec![running_in("main", 2), exited_in("debug", 1, 2 * S, 3)]);
        let a = compute(&p, Some(&o), &Backoff::containers(), 3 * S);
        assert!(a.is_noop(), "{a:?}");
        // Not a stranger either: it is not killed while it runs.
        let o = pod_state(vec![running_in("main", 2), running_in("debug", 3)]);
        assert!(compute(&p, Some(&o), &Backoff::containers(), 3 * S).is_noop());
    }

    #[test]
    fn init_containers_are_not_rerun_once_main_containers_ran() {
        let p = pod("Always", &["main"], &["i1"]);
        // The init container record is gone, main runs: nothing to do.
        let o = pod_state(vec![running_in("main", 3)]);
        assert!(compute(&p, Some(&o), &Backoff::containers(), S).is_noop());
        // A new sandbox runs init containers again.
        let o = ObservedPod {
            sandboxes: vec![sandbox("s1", false, 0, 1)],
            containers: vec![exited_in("main", 137, S, 3)],
            ..Default::default()
        };
        let a = compute(&p, Some(&o), &Backoff::containers(), 2 * S);
        assert_eq!(a.create_sandbox, Some(1));
        assert_eq!(a.start, vec![init(0, false)]);
    }

    #[test]
    fn succeeded_under_on_failure_stays_done_in_a_new_sandbox() {
        let p = pod("OnFailure", &["a", "b"], &[]);
        let o = ObservedPod {
            sandboxes: vec![sandbox("s2", true, 1, 10), sandbox("s1", false, 0, 1)],
            containers: vec![
                observed("b", "s2", ContainerState::Running, 0, 0, 11),
                observed("a", "s1", ContainerState::Exited, 0, 5, 2),
            ],
            ..Default::default()
        };
        assert!(compute(&p, Some(&o), &Backoff::containers(), 12 * S).is_noop());
        // Everything succeeded and the sandbox is gone: no new sandbox, nothing to stop.
        let o = ObservedPod {
            sandboxes: vec![sandbox("s1", false, 0, 1)],
            containers: vec![
                observed("a", "s1", ContainerState::Exited, 0, 5, 2),
                observed("b", "s1", ContainerState::Exited, 0, 5, 3),
            ],
            ..Default::default()
        };
        assert!(compute(&p, Some(&o), &Backoff::containers(), 12 * S).is_noop());
    }
}
