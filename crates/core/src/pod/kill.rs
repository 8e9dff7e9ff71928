//! Ending a pod on the kubelet's own initiative (eviction, graceful node shutdown), the
//! way upstream's `killPodFunc` does: through the pod's worker, never behind its back.
//!
//! A [`PodKiller`] asks the dispatcher to terminate one pod with a grace period override
//! and a status change (phase Failed, a reason, a message and the `DisruptionTarget`
//! condition). The dispatcher hands the worker `Target::Terminate` with the final status;
//! the worker stops the containers, removes what the kubelet owns for the pod and leaves
//! that status in the status store. While the pod stays configured (a static pod whose
//! manifest is unchanged) it is not started again; a changed manifest (new UID) is a new
//! pod, and a removed manifest forgets the status.

use k8s_openapi::api::core::v1::{
    ContainerState, ContainerStateTerminated, ContainerStatus, Pod, PodCondition, PodStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use tokio::sync::{mpsc, oneshot};

/// What a kill request asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KillSpec {
    pub uid: String,
    /// Replaces the pod's terminationGracePeriodSeconds (None: the pod's own).
    pub grace_seconds: Option<i64>,
    /// PodStatus.reason, e.g. `Evicted` or `Terminated`.
    pub reason: String,
    /// PodStatus.message and the DisruptionTarget condition's message.
    pub message: String,
    /// A pod that already succeeded keeps phase Succeeded (node shutdown does this).
    pub keep_succeeded: bool,
}

/// What happened to a kill request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KillOutcome {
    /// The pod's worker stopped it and removed its runtime objects.
    Killed,
    /// No running pod with that UID (unknown, already terminating, or finished).
    NotRunning,
    /// The kubelet is shutting down; the pod may still be running.
    Cancelled,
}

/// A request the dispatcher answers through `done`.
#[derive(Debug)]
pub struct KillRequest {
    pub spec: KillSpec,
    pub done: oneshot::Sender<KillOutcome>,
}

/// Cheap to clone; every clone talks to the same dispatcher.
#[derive(Clone, Debug)]
pub struct PodKiller {
    tx: mpsc::UnboundedSender<KillRequest>,
}

impl PodKiller {
    pub fn channel() -> (PodKiller, mpsc::UnboundedReceiver<KillRequest>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (PodKiller { tx }, rx)
    }

    /// Ask for the pod to be killed and wait until its worker is done (containers
    /// stopped within the grace period, sandbox and directories removed).
    pub async fn kill(&self, spec: KillSpec) -> KillOutcome {
        let (done, rx) = oneshot::channel();
        if self.tx.send(KillRequest { spec, done }).is_err() {
            return KillOutcome::Cancelled;
        }
        rx.await.unwrap_or(KillOutcome::Cancelled)
    }
}

/// The current time as an API timestamp.
pub fn now() -> Time {
    let ns = crate::runtime::model::now_ns();
    Time(
        k8s_openapi::jiff::Timestamp::from_nanosecond(i128::from(ns))
            .unwrap_or(k8s_openapi::jiff::Timestamp::UNIX_EPOCH),
    )
}

/// `DisruptionTarget` reason upstream uses for kubelet-initiated terminations.
pub const TERMINATION_BY_KUBELET: &str = "TerminationByKubelet";

/// The status a killed pod keeps: the last status with phase Failed (or Succeeded when
/// asked to keep it), the reason and message, Ready/ContainersReady false, the
/// DisruptionTarget condition, and containers that were running shown as terminated
/// (exit code 137, the SIGKILL a hard eviction ends in; upstream shows what the runtime
/// reports, which is gone here once the worker removed the containers).
pub fn final_status(pod: &Pod, last: Option<&PodStatus>, spec: &KillSpec, now: Time) -> PodStatus {
    let mut status = last.cloned().unwrap_or_default();
    let succeeded = status.phase.as_deref() == Some("Succeeded");
    if !(spec.keep_succeeded && succeeded) {
        status.phase = Some("Failed".into());
    }
    status.reason = Some(spec.reason.clone());
    status.message = Some(spec.message.clone());
    let mut conditions = status.conditions.take().unwrap_or_default();
    for c in conditions.iter_mut() {
        if (c.type_ == "Ready" || c.type_ == "ContainersReady") && c.status != "False" {
            c.status = "False".into();
            c.reason = Some("PodFailed".into());
            c.message = None;
            c.last_transition_time = Some(now.clone());
        }
    }
    conditions.retain(|c| c.type_ != "DisruptionTarget");
    conditions.push(PodCondition {
        type_: "DisruptionTarget".into(),
        status: "True".into(),
        reason: Some(TERMINATION_BY_KUBELET.into()),
        message: Some(spec.message.clone()),
        last_transition_time: Some(now.clone()),
        observed_generation: pod.metadata.generation,
        ..Default::default()
    });
    status.conditions = Some(conditions);
    for list in [
        status.container_statuses.as_mut(),
        status.init_container_statuses.as_mut(),
    ]
    .into_iter()
    .flatten()
    {
        for cs in list.iter_mut() {
            stop_container_status(cs, &now);
        }
    }
    status
}

fn stop_container_status(cs: &mut ContainerStatus, now: &Time) {
    cs.ready = false;
    cs.started = Some(false);
    let state = cs.state.take().unwrap_or_default();
    cs.state = Some(match state {
        ContainerState {
            running: Some(running),
            ..
        } => ContainerState {
            terminated: Some(ContainerStateTerminated {
                exit_code: 137,
                reason: Some("Error".into()),
                started_at: running.started_at,
                finished_at: Some(now.clone()),
                container_id: cs.container_id.clone(),
                ..Default::default()
            }),
            ..Default::default()
        },
        ContainerState {
            waiting: Some(_), ..
        } => ContainerState {
            terminated: Some(ContainerStateTerminated {
                exit_code: 137,
                reason: Some("ContainerStatusUnknown".into()),
                message: Some(
                    "The container could not be located when the pod was terminated".into(),
                ),
                finished_at: Some(now.clone()),
                ..Default::default()
            }),
            ..Default::default()
        },
        other => other,
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{ContainerStateRunning, ContainerStateWaiting};

    fn now() -> Time {
        Time(k8s_openapi::jiff::Timestamp::from_second(1_700_000_000).unwrap())
    }

    fn spec(keep: bool) -> KillSpec {
        KillSpec {
            uid: "u".into(),
            grace_seconds: Some(1),
            reason: "Evicted".into(),
            message: "The node was low on resource: memory. ".into(),
            keep_succeeded: keep,
        }
    }

    #[test]
    fn running_pod_becomes_failed_with_disruption_condition() {
        let last = PodStatus {
            phase: Some("Running".into()),
            conditions: Some(vec![PodCondition {
                type_: "Ready".into(),
                status: "True".into(),
                ..Default::default()
            }]),
            container_statuses: Some(vec![
                ContainerStatus {
                    name: "a".into(),
                    ready: true,
                    state: Some(ContainerState {
                        running: Some(ContainerStateRunning {
                            started_at: Some(now()),
                        }),
                        ..Default::default()
                    }),
                    ..Default::default()
                },
                ContainerStatus {
                    name: "b".into(),
                    state: Some(ContainerState {
                        waiting: Some(ContainerStateWaiting::default()),
                        ..Default::default()
                    }),
                    ..Default::default()
                },
            ]),
            ..Default::default()
        };
        let s = final_status(&Pod::default(), Some(&last), &spec(false), now());
        assert_eq!(s.phase.as_deref(), Some("Failed"));
        assert_eq!(s.reason.as_deref(), Some("Evicted"));
        let conds = s.conditions.unwrap();
        assert!(
            conds
                .iter()
                .any(|c| c.type_ == "Ready" && c.status == "False")
        );
        let dt = conds
            .iter()
            .find(|c| c.type_ == "DisruptionTarget")
            .unwrap();
        assert_eq!(dt.reason.as_deref(), Some(TERMINATION_BY_KUBELET));
        let cs = s.container_statuses.unwrap();
        let t = cs[0].state.as_ref().unwrap().terminated.as_ref().unwrap();
        assert_eq!(t.exit_code, 137);
        assert!(!cs[0].ready);
        assert_eq!(
            cs[1]
                .state
                .as_ref()
                .unwrap()
                .terminated
                .as_ref()
                .unwrap()
                .reason
                .as_deref(),
            Some("ContainerStatusUnknown")
        );
    }

    #[test]
    fn succeeded_pod_keeps_its_phase_when_asked() {
        let last = PodStatus {
            phase: Some("Succeeded".into()),
            ..Default::default()
        };
        let s = final_status(&Pod::default(), Some(&last), &spec(true), now());
        assert_eq!(s.phase.as_deref(), Some("Succeeded"));
        let s = final_status(&Pod::default(), Some(&last), &spec(false), now());
        assert_eq!(s.phase.as_deref(), Some("Failed"));
    }
}
