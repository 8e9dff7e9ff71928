//! PodStatus from the spec, what the runtime holds and what the worker knows (waiting
//! reasons): phase, conditions and container statuses with upstream's rules
//! (kubelet_pods.go getPhase / generateAPIPodStatus).

pub mod store;

use std::collections::HashMap;

use k8s_openapi::api::core::v1::{
    Container, ContainerState, ContainerStateRunning, ContainerStateTerminated,
    ContainerStateWaiting, ContainerStatus, HostIP, Pod, PodCondition, PodIP, PodStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;

use crate::cm;
use crate::runtime::model::{self, ObservedContainer, ObservedPod};

/// Why a container is not running, as the worker last saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Waiting {
    pub reason: String,
    pub message: String,
}

/// What the probes say about one running container (see prober::ProbeManager::states).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProbeState {
    /// The startup probe has succeeded.
    pub startup_succeeded: bool,
    /// The readiness probe's latest result is success.
    pub ready: bool,
}

/// What the worker adds to the runtime's view.
#[derive(Debug, Clone, Default)]
pub struct WorkerNotes {
    /// Container name -> waiting reason (ErrImagePull, CrashLoopBackOff, ...).
    pub waiting: HashMap<String, Waiting>,
    /// An init container failed under restartPolicy Never.
    pub init_failed: bool,
    /// When the worker first acted on the pod (ns), for startTime.
    pub start_time_ns: i64,
}

pub fn time_of(ns: i64) -> Option<Time> {
    if ns <= 0 {
        return None;
    }
    Timestamp::from_nanosecond(i128::from(ns)).ok().map(Time)
}

fn terminated(o: &ObservedContainer) -> ContainerStateTerminated {
    let reason = if !o.reason.is_empty() {
        o.reason.clone()
    } else if o.exit_code == 0 {
        "Completed".into()
    } else {
        "Error".into()
    };
    ContainerStateTerminated {
        exit_code: o.exit_code,
        reason: Some(reason),
        message: (!o.message.is_empty()).then(|| o.message.clone()),
        started_at: time_of(o.started_at),
        finished_at: time_of(o.finished_at),
        container_id: Some(format!("containerd://{}", o.id)),
        signal: None,
    }
}

fn container_status(
    spec: &Container,
    observed: Option<&ObservedPod>,
    notes: &WorkerNotes,
    default_waiting: &str,
) -> ContainerStatus {
    let mut history = observed
        .into_iter()
        .flat_map(|o| o.containers_named(&spec.name));
    let latest = history.next();
    let previous = history.next();
    let waiting = notes.waiting.get(&spec.name);
    let mut status = ContainerStatus {
        name: spec.name.clone(),
        image: spec.image.clone().unwrap_or_default(),
        image_id: String::new(),
        ready: false,
        restart_count: latest.map(|c| c.restart_count as i32).unwrap_or(0),
        started: Some(false),
        ..Default::default()
    };
    let waiting_state = |reason: &str, message: Option<String>| ContainerState {
        waiting: Some(ContainerStateWaiting {
            reason: Some(reason.to_string()),
            message,
        }),
        ..Default::default()
    };
    match latest {
        Some(c) => {
            status.container_id = Some(format!("containerd://{}", c.id));
            status.image_id = c.image_ref.clone();
            match c.state {
                model::ContainerState::Running => {
                    status.state = Some(ContainerState {
                        running: Some(ContainerStateRunning {
                            started_at: time_of(c.started_at),
                        }),
                        ..Default::default()
                    });
                    // Without a readiness probe a running container is ready.
                    status.ready = true;
                    status.started = Some(true);
                    status.last_state = previous.map(|p| ContainerState {
                        terminated: Some(terminated(p)),
                        ..Default::default()
                    });
                }
                model::ContainerState::Exited => match waiting {
                    // Exited and about to run again: waiting, with the exit as last state.
                    Some(w) => {
                        status.state = Some(waiting_state(&w.reason, Some(w.message.clone())));
                        status.last_state = Some(ContainerState {
                            terminated: Some(terminated(c)),
                            ..Default::default()
                        });
                    }
                    None => {
                        status.state = Some(ContainerState {
                            terminated: Some(terminated(c)),
                            ..Default::default()
                        });
                        status.last_state = previous.map(|p| ContainerState {
                            terminated: Some(terminated(p)),
                            ..Default::default()
                        });
                    }
                },
                _ => status.state = Some(waiting_state(default_waiting, None)),
            }
        }
        None => {
            status.state = Some(match waiting {
                Some(w) => waiting_state(&w.reason, Some(w.message.clone())),
                None => waiting_state(default_waiting, None),
            });
        }
    }
    status
}

/// Upstream getPhase over the regular containers' statuses.
pub fn phase(
    pod: &Pod,
    init_done: bool,
    init_failed: bool,
    statuses: &[ContainerStatus],
) -> &'static str {
    if init_failed {
        return "Failed";
    }
    if !init_done {
        return "Pending";
    }
    let policy = pod
        .spec
        .as_ref()
        .and_then(|s| s.restart_policy.as_deref())
        .unwrap_or("Always");
    let (mut running, mut waiting, mut stopped, mut succeeded) = (0, 0, 0, 0);
    for s in statuses {
        let state = s.state.as_ref();
        if state.and_then(|st| st.running.as_ref()).is_some() {
            running += 1;
        } else if let Some(t) = state.and_then(|st| st.terminated.as_ref()) {
            stopped += 1;
            if t.exit_code == 0 {
                succeeded += 1;
            }
        } else if s
            .last_state
            .as_ref()
            .and_then(|l| l.terminated.as_ref())
            .is_some()
        {
            stopped += 1;
        } else {
            waiting += 1;
        }
    }
    if waiting > 0 {
        return "Pending";
    }
    if running > 0 {
        return "Running";
    }
    if stopped > 0 {
        if policy == "Always" {
            return "Running";
        }
        if stopped == succeeded {
            return "Succeeded";
        }
        if policy == "Never" {
            return "Failed";
        }
        return "Running";
    }
    "Pending"
}

fn condition(kind: &str, ok: bool, reason: Option<&str>, now: &Time) -> PodCondition {
    PodCondition {
        type_: kind.to_string(),
        status: if ok { "True" } else { "False" }.to_string(),
        reason: reason.map(str::to_string),
        last_transition_time: Some(now.clone()),
        ..Default::default()
    }
}

/// The complete status of one pod.
pub fn compute(
    pod: &Pod,
    observed: Option<&ObservedPod>,
    notes: &WorkerNotes,
    host_ips: &[String],
) -> PodStatus {
    let spec = pod.spec.clone().unwrap_or_default();
    let init_specs = spec.init_containers.clone().unwrap_or_default();
    let current_sandbox = observed.and_then(|o| o.latest_sandbox());
    let init_statuses: Vec<ContainerStatus> = init_specs
        .iter()
        .map(|c| container_status(c, observed, notes, "PodInitializing"))
        .collect();
    let init_done = init_specs.iter().zip(&init_statuses).all(|(spec, s)| {
        let st = s.state.as_ref();
        let sidecar = spec.restart_policy.as_deref() == Some("Always");
        (sidecar && st.and_then(|x| x.running.as_ref()).is_some())
            || st
                .and_then(|x| x.terminated.as_ref())
                .is_some_and(|t| t.exit_code == 0)
    });
    let waiting_reason = if init_done {
        "ContainerCreating"
    } else {
        "PodInitializing"
    };
    let statuses: Vec<ContainerStatus> = spec
        .containers
        .iter()
        .map(|c| container_status(c, observed, notes, waiting_reason))
        .collect();
    let phase = phase(pod, init_done, notes.init_failed, &statuses);
    let now = time_of(model::now_ns()).unwrap_or(Time(Timestamp::UNIX_EPOCH));
    let terminal = phase == "Succeeded" || phase == "Failed";
    let sandbox_ready = current_sandbox.is_some_and(|s| s.ready);
    let all_ready = !statuses.is_empty() && statuses.iter().all(|s| s.ready);
    let not_ready_reason = (!all_ready).then_some(if terminal {
        "PodCompleted"
    } else {
        "ContainersNotReady"
    });
    let conditions = vec![
        condition("PodReadyToStartContainers", sandbox_ready, None, &now),
        condition(
            "Initialized",
            init_done,
            (!init_done).then_some("ContainersNotInitialized"),
            &now,
        ),
        condition("Ready", all_ready, not_ready_reason, &now),
        condition("ContainersReady", all_ready, not_ready_reason, &now),
        condition("PodScheduled", true, None, &now),
    ];
    let ips: Vec<String> = current_sandbox.map(|s| s.ips.clone()).unwrap_or_default();
    PodStatus {
        phase: Some(phase.to_string()),
        conditions: Some(conditions),
        host_ip: host_ips.first().cloned(),
        host_ips: (!host_ips.is_empty()).then(|| {
            host_ips
                .iter()
                .map(|ip| HostIP { ip: ip.clone() })
                .collect()
        }),
        pod_ip: ips.first().cloned(),
        pod_ips: (!ips.is_empty()).then(|| ips.iter().map(|ip| PodIP { ip: ip.clone() }).collect()),
        start_time: time_of(notes.start_time_ns),
        qos_class: Some(cm::qos_class(pod).as_str().to_string()),
        init_container_statuses: (!init_statuses.is_empty()).then_some(init_statuses),
        container_statuses: Some(statuses),
        ..Default::default()
    }
}

/// The status of a pod refused at admission (upstream: phase Failed, reason, message).
pub fn rejected(pod: &Pod, reason: &str, message: &str) -> PodStatus {
    PodStatus {
        phase: Some("Failed".into()),
        reason: Some(reason.to_string()),
        message: Some(message.to_string()),
        qos_class: Some(cm::qos_class(pod).as_str().to_string()),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::model::{ContainerState as CS, ObservedSandbox};
    use k8s_openapi::api::core::v1::PodSpec;

    fn pod(policy: &str, names: &[&str]) -> Pod {
        Pod {
            spec: Some(PodSpec {
                restart_policy: Some(policy.into()),
                containers: names
                    .iter()
                    .map(|n| Container {
                        name: n.to_string(),
                        image: Some("busybox".into()),
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn obs(containers: &[(&str, CS, i32, u32)]) -> ObservedPod {
        ObservedPod {
            uid: "u".into(),
            sandboxes: vec![ObservedSandbox {
                id: "s".into(),
                attempt: 0,
                ready: true,
                created_at: 1,
                ips: vec!["10.88.0.9".into()],
            }],
            containers: containers
                .iter()
                .enumerate()
                .map(|(i, (n, st, code, restarts))| ObservedContainer {
                    id: format!("id{i}"),
                    name: n.to_string(),
                    sandbox_id: "s".into(),
                    state: *st,
                    created_at: 100 - i as i64,
                    started_at: 1_000_000_000,
                    finished_at: if *st == CS::Exited { 2_000_000_000 } else { 0 },
                    exit_code: *code,
                    reason: String::new(),
                    message: String::new(),
                    image: "busybox".into(),
                    image_ref: "sha256:1".into(),
                    hash: String::new(),
                    restart_count: *restarts,
                })
                .collect(),
            ..Default::default()
        }
    }

    fn phase_of(
        policy: &str,
        names: &[&str],
        o: Option<&ObservedPod>,
        notes: &WorkerNotes,
    ) -> String {
        compute(&pod(policy, names), o, notes, &[]).phase.unwrap()
    }

    #[test]
    fn phase_table() {
        let none = WorkerNotes::default();
        assert_eq!(phase_of("Always", &["a"], None, &none), "Pending");
        let running = obs(&[("a", CS::Running, 0, 0)]);
        assert_eq!(phase_of("Always", &["a"], Some(&running), &none), "Running");
        let done = obs(&[("a", CS::Exited, 0, 0)]);
        assert_eq!(phase_of("Never", &["a"], Some(&done), &none), "Succeeded");
        assert_eq!(
            phase_of("OnFailure", &["a"], Some(&done), &none),
            "Succeeded"
        );
        assert_eq!(phase_of("Always", &["a"], Some(&done), &none), "Running");
        let failed = obs(&[("a", CS::Exited, 3, 0)]);
        assert_eq!(phase_of("Never", &["a"], Some(&failed), &none), "Failed");
        assert_eq!(
            phase_of("OnFailure", &["a"], Some(&failed), &none),
            "Running"
        );
        let mixed = obs(&[("a", CS::Running, 0, 0)]);
        assert_eq!(
            phase_of("Always", &["a", "b"], Some(&mixed), &none),
            "Pending"
        );
    }

    #[test]
    fn crash_loop_shows_waiting_with_last_state() {
        let o = obs(&[("a", CS::Exited, 1, 4)]);
        let mut notes = WorkerNotes::default();
        notes.waiting.insert(
            "a".into(),
            Waiting {
                reason: "CrashLoopBackOff".into(),
                message: "back-off 40s restarting failed container".into(),
            },
        );
        let s = compute(
            &pod("Always", &["a"]),
            Some(&o),
            &notes,
            &["192.168.1.2".into()],
        );
        let cs = &s.container_statuses.as_ref().unwrap()[0];
        assert_eq!(
            cs.state
                .as_ref()
                .unwrap()
                .waiting
                .as_ref()
                .unwrap()
                .reason
                .as_deref(),
            Some("CrashLoopBackOff")
        );
        assert_eq!(
            cs.last_state
                .as_ref()
                .unwrap()
                .terminated
                .as_ref()
                .unwrap()
                .exit_code,
            1
        );
        assert_eq!(cs.restart_count, 4);
        assert_eq!(s.phase.as_deref(), Some("Running"));
        assert_eq!(s.pod_ip.as_deref(), Some("10.88.0.9"));
        assert_eq!(s.host_ip.as_deref(), Some("192.168.1.2"));
        let ready = s
            .conditions
            .unwrap()
            .into_iter()
            .find(|c| c.type_ == "Ready")
            .unwrap();
        assert_eq!(
            (ready.status.as_str(), ready.reason.as_deref()),
            ("False", Some("ContainersNotReady"))
        );
    }

    #[test]
    fn image_errors_are_waiting_reasons() {
        let mut notes = WorkerNotes::default();
        notes.waiting.insert(
            "a".into(),
            Waiting {
                reason: "ErrImagePull".into(),
                message: "not found".into(),
            },
        );
        let s = compute(&pod("Always", &["a"]), None, &notes, &[]);
        let cs = &s.container_statuses.unwrap()[0];
        assert_eq!(
            cs.state
                .as_ref()
                .unwrap()
                .waiting
                .as_ref()
                .unwrap()
                .reason
                .as_deref(),
            Some("ErrImagePull")
        );
        assert_eq!(s.phase.as_deref(), Some("Pending"));
        assert_eq!(s.qos_class.as_deref(), Some("BestEffort"));
    }
}
