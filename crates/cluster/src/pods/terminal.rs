//! The last status of a pod deleted through the API, sent before the final delete
//! (upstream: the status of syncTerminatedPod, then statusManager.TerminatePod; the
//! status manager only deletes a pod whose API phase is terminal).
//!
//! Every container that was started ends up terminated (one whose end was not seen is
//! `ContainerStatusUnknown`, exit code 137: a missing status never counts as success),
//! the phase is Succeeded when every regular container exited 0, else Failed, and the
//! readiness conditions are False with the terminal reasons.

use k8s_openapi::api::core::v1::{
    ContainerState, ContainerStateTerminated, ContainerStatus, Pod, PodCondition, PodStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

pub const STATUS_UNKNOWN: &str = "ContainerStatusUnknown";
pub const STATUS_UNKNOWN_MESSAGE: &str =
    "The container could not be located when the pod was terminated";

/// Whether `status` is already a terminal one (phase Succeeded or Failed).
pub fn is_terminal(status: Option<&PodStatus>) -> bool {
    matches!(
        status.and_then(|s| s.phase.as_deref()),
        Some("Succeeded") | Some("Failed")
    )
}

/// The terminal form of `status` for `pod`, whose containers are all stopped.
pub fn terminal_status(pod: &Pod, mut status: PodStatus, now: &Time) -> PodStatus {
    let has_init = pod
        .spec
        .as_ref()
        .and_then(|s| s.init_containers.as_ref())
        .is_some_and(|i| !i.is_empty());
    if !has_init || initialized(&status) {
        for cs in status.container_statuses.iter_mut().flatten() {
            terminate(cs);
        }
    }
    if let Some(inits) = status.init_container_statuses.as_mut() {
        let started = started_prefix(inits);
        for cs in inits.iter_mut().take(started) {
            terminate(cs);
        }
    }
    for cs in status.ephemeral_container_statuses.iter_mut().flatten() {
        if cs.state.as_ref().is_some_and(|s| s.running.is_some()) {
            terminate(cs);
        }
    }
    if !is_terminal(Some(&status)) {
        let main = status.container_statuses.as_deref().unwrap_or_default();
        let all_succeeded = !main.is_empty() && main.iter().all(|c| exit_code(c) == Some(0));
        status.phase = Some(if all_succeeded { "Succeeded" } else { "Failed" }.into());
    }
    let reason = if status.phase.as_deref() == Some("Succeeded") {
        "PodCompleted"
    } else {
        "PodFailed"
    };
    let mut conditions = status.conditions.take().unwrap_or_default();
    for (kind, reason) in [
        ("Ready", Some(reason)),
        ("ContainersReady", Some(reason)),
        ("PodReadyToStartContainers", None),
    ] {
        set_false(&mut conditions, kind, reason, now);
    }
    status.conditions = Some(conditions);
    status
}

fn terminate(cs: &mut ContainerStatus) {
    cs.ready = false;
    if cs.state.as_ref().is_some_and(|s| s.terminated.is_some()) {
        return;
    }
    cs.started = Some(false);
    cs.state = Some(ContainerState {
        terminated: Some(ContainerStateTerminated {
            exit_code: 137,
            reason: Some(STATUS_UNKNOWN.into()),
            message: Some(STATUS_UNKNOWN_MESSAGE.into()),
            ..Default::default()
        }),
        ..Default::default()
    });
}

fn exit_code(cs: &ContainerStatus) -> Option<i32> {
    cs.state.as_ref()?.terminated.as_ref().map(|t| t.exit_code)
}

/// Whether the pod ever got past its init containers: a regular container left waiting
/// or ran before, or the last init container succeeded.
fn initialized(status: &PodStatus) -> bool {
    let ran = status.container_statuses.iter().flatten().any(|c| {
        c.last_state
            .as_ref()
            .is_some_and(|s| s.terminated.is_some())
            || c.state.as_ref().is_none_or(|s| s.waiting.is_none())
    });
    let last_init_ok = status
        .init_container_statuses
        .as_ref()
        .and_then(|i| i.last())
        .is_some_and(|c| {
            [c.state.as_ref(), c.last_state.as_ref()]
                .into_iter()
                .flatten()
                .any(|s| s.terminated.as_ref().is_some_and(|t| t.exit_code == 0))
        });
    ran || last_init_ok
}

/// How many init containers from the start had a go (all but the trailing ones still
/// waiting for their first start; at least one).
fn started_prefix(inits: &[ContainerStatus]) -> usize {
    let started = |c: &ContainerStatus| {
        c.state.as_ref().is_none_or(|s| s.waiting.is_none())
            || c.last_state
                .as_ref()
                .is_some_and(|s| s.terminated.is_some())
    };
    inits
        .iter()
        .rposition(started)
        .map_or(inits.len().min(1), |i| i + 1)
}

fn set_false(conditions: &mut Vec<PodCondition>, kind: &str, reason: Option<&str>, now: &Time) {
    match conditions.iter_mut().find(|c| c.type_ == kind) {
        Some(c) if c.status == "False" && reason.is_none() => {}
        Some(c) => {
            if c.status != "False" {
                c.last_transition_time = Some(now.clone());
            }
            c.status = "False".into();
            if reason.is_some() {
                c.reason = reason.map(str::to_string);
                c.message = None;
            }
        }
        None => conditions.push(PodCondition {
            type_: kind.into(),
            status: "False".into(),
            reason: reason.map(str::to_string),
            last_transition_time: Some(now.clone()),
            ..Default::default()
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{ContainerStateRunning, ContainerStateWaiting, PodSpec};

    fn now() -> Time {
        Time(k8s_openapi::jiff::Timestamp::from_second(1_700_000_000).unwrap())
    }

    fn pod(inits: usize) -> Pod {
        Pod {
            spec: Some(PodSpec {
                init_containers: Some(
                    (0..inits)
                        .map(|i| k8s_openapi::api::core::v1::Container {
                            name: format!("init{i}"),
                            ..Default::default()
                        })
                        .collect(),
                ),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn exited(name: &str, code: i32) -> ContainerStatus {
        ContainerStatus {
            name: name.into(),
            state: Some(ContainerState {
                terminated: Some(ContainerStateTerminated {
                    exit_code: code,
                    reason: Some(if code == 0 { "Completed" } else { "Error" }.into()),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn running(name: &str) -> ContainerStatus {
        ContainerStatus {
            name: name.into(),
            ready: true,
            started: Some(true),
            state: Some(ContainerState {
                running: Some(ContainerStateRunning::default()),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn waiting(name: &str) -> ContainerStatus {
        ContainerStatus {
            name: name.into(),
            state: Some(ContainerState {
                waiting: Some(ContainerStateWaiting {
                    reason: Some("PodInitializing".into()),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn cond(status: &PodStatus, kind: &str) -> (String, Option<String>) {
        let c = status
            .conditions
            .iter()
            .flatten()
            .find(|c| c.type_ == kind)
            .unwrap();
        (c.status.clone(), c.reason.clone())
    }

    #[test]
    fn all_exited_zero_is_succeeded() {
        let status = PodStatus {
            phase: Some("Running".into()),
            conditions: Some(vec![PodCondition {
                type_: "Ready".into(),
                status: "True".into(),
                ..Default::default()
            }]),
            container_statuses: Some(vec![exited("a", 0), exited("b", 0)]),
            ..Default::default()
        };
        let t = terminal_status(&pod(0), status, &now());
        assert_eq!(t.phase.as_deref(), Some("Succeeded"));
        assert_eq!(
            cond(&t, "Ready"),
            ("False".into(), Some("PodCompleted".into()))
        );
        assert_eq!(
            cond(&t, "ContainersReady"),
            ("False".into(), Some("PodCompleted".into()))
        );
        assert_eq!(cond(&t, "PodReadyToStartContainers").0, "False");
    }

    #[test]
    fn a_failure_or_an_unseen_end_is_failed() {
        let status = PodStatus {
            phase: Some("Running".into()),
            container_statuses: Some(vec![exited("a", 0), exited("b", 137)]),
            ..Default::default()
        };
        let t = terminal_status(&pod(0), status, &now());
        assert_eq!(t.phase.as_deref(), Some("Failed"));
        assert_eq!(
            cond(&t, "Ready"),
            ("False".into(), Some("PodFailed".into()))
        );

        let status = PodStatus {
            phase: Some("Running".into()),
            container_statuses: Some(vec![exited("a", 0), running("b")]),
            ..Default::default()
        };
        let t = terminal_status(&pod(0), status, &now());
        assert_eq!(t.phase.as_deref(), Some("Failed"));
        let b = &t.container_statuses.unwrap()[1];
        let term = b.state.as_ref().unwrap().terminated.as_ref().unwrap();
        assert_eq!(
            (term.exit_code, term.reason.as_deref()),
            (137, Some(STATUS_UNKNOWN))
        );
        assert!(!b.ready);
    }

    #[test]
    fn a_terminal_phase_is_kept() {
        let status = PodStatus {
            phase: Some("Succeeded".into()),
            container_statuses: Some(vec![exited("a", 0)]),
            ..Default::default()
        };
        let t = terminal_status(&pod(0), status, &now());
        assert_eq!(t.phase.as_deref(), Some("Succeeded"));
    }

    #[test]
    fn uninitialized_pod_keeps_waiting_containers_and_unstarted_inits() {
        let status = PodStatus {
            phase: Some("Pending".into()),
            init_container_statuses: Some(vec![running("init0"), waiting("init1")]),
            container_statuses: Some(vec![waiting("main")]),
            ..Default::default()
        };
        let t = terminal_status(&pod(2), status, &now());
        assert_eq!(t.phase.as_deref(), Some("Failed"));
        let inits = t.init_container_statuses.unwrap();
        assert!(inits[0].state.as_ref().unwrap().terminated.is_some());
        assert!(inits[1].state.as_ref().unwrap().waiting.is_some());
        let main = &t.container_statuses.unwrap()[0];
        assert!(main.state.as_ref().unwrap().waiting.is_some());
    }
}
