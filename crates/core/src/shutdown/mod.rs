//! Graceful node shutdown (upstream pkg/kubelet/nodeshutdown): when the node is about to
//! go down, terminate pods in priority groups within `shutdownGracePeriod`.
//!
//! Groups come from `shutdownGracePeriodByPodPriority`, or, when that is empty, from
//! `shutdownGracePeriod` and `shutdownGracePeriodCriticalPods` as upstream migrates them:
//! priorities below system-critical get `shutdownGracePeriod − shutdownGracePeriodCriticalPods`
//! seconds, system-critical ones get `shutdownGracePeriodCriticalPods`. Groups run lowest
//! priority first; every pod of a group is killed at once with
//! min(its terminationGracePeriodSeconds, the group's period), and the next group starts
//! when they are all gone or the group's period has passed. Pods end with phase Failed
//! (Succeeded ones keep it), reason `Terminated`, message "Pod was terminated in response
//! to imminent node shutdown." and the DisruptionTarget condition; from the start of the
//! shutdown new pods are refused (reason `NodeShutdown`) and the node's Ready condition
//! is false ([`crate::eviction::NodeHealth::shutting_down`]).
//!
//! Trigger: upstream takes a systemd-logind delay inhibitor lock and acts on logind's
//! PrepareForShutdown signal. These machines have no systemd, so kubelet-rs does not
//! talk to logind; the shutdown is triggered by **SIGPWR** (the power-failure signal
//! init systems send to announce the machine is going down), which the binary wires to
//! [`ShutdownManager::shutdown`]. SIGTERM/SIGINT keep meaning "stop the kubelet, leave
//! the pods running". See docs/housekeeping.md for a shutdown hook.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use tokio::task::JoinSet;

use crate::cm::admission::{AdmitHandler, Rejection};
use crate::eviction::rank::{SYSTEM_CRITICAL_PRIORITY, priority};
use crate::eviction::{NodeHealthView, NodeHealthWriter};
use crate::pod::kill::{KillOutcome, KillSpec, PodKiller};
use crate::status::store::StatusStore;

pub const REASON: &str = "Terminated";
pub const MESSAGE: &str = "Pod was terminated in response to imminent node shutdown.";
pub const REJECT_REASON: &str = "NodeShutdown";
pub const REJECT_MESSAGE: &str = "Pod was rejected as the node is shutting down.";

/// One priority group: pods with priority ≥ `priority` (up to the next group).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Group {
    pub priority: i32,
    pub grace_seconds: i64,
}

/// The groups, lowest priority first; empty when graceful shutdown is disabled.
pub fn groups(
    grace_period: Duration,
    critical_grace_period: Duration,
    by_priority: &[(i32, i64)],
) -> Vec<Group> {
    let mut g: Vec<Group> = if by_priority.is_empty() {
        if grace_period.is_zero() || critical_grace_period > grace_period {
            return Vec::new();
        }
        vec![
            Group {
                priority: 0,
                grace_seconds: (grace_period - critical_grace_period).as_secs() as i64,
            },
            Group {
                priority: SYSTEM_CRITICAL_PRIORITY,
                grace_seconds: critical_grace_period.as_secs() as i64,
            },
        ]
    } else {
        by_priority
            .iter()
            .map(|&(priority, grace_seconds)| Group {
                priority,
                grace_seconds,
            })
            .collect()
    };
    g.sort_by_key(|g| g.priority);
    g
}

/// Total budget of all groups.
pub fn budget(groups: &[Group]) -> Duration {
    Duration::from_secs(groups.iter().map(|g| g.grace_seconds.max(0) as u64).sum())
}

/// Index of the group a pod belongs to: the highest group whose priority is ≤ the pod's
/// (pods below the lowest group go to the lowest).
pub fn group_of(groups: &[Group], pod_priority: i32) -> usize {
    groups
        .iter()
        .rposition(|g| g.priority <= pod_priority)
        .unwrap_or(0)
}

pub struct ShutdownManager {
    groups: Vec<Group>,
    statuses: StatusStore,
    killer: PodKiller,
    health: NodeHealthWriter,
}

impl ShutdownManager {
    pub fn new(
        groups: Vec<Group>,
        statuses: StatusStore,
        killer: PodKiller,
        health: NodeHealthWriter,
    ) -> Self {
        ShutdownManager {
            groups,
            statuses,
            killer,
            health,
        }
    }

    pub fn enabled(&self) -> bool {
        !self.groups.is_empty()
    }

    /// Terminate every running pod, group by group; returns when all are gone or the
    /// budget is spent (plus a few seconds for kills already under way).
    pub async fn shutdown(&self) {
        self.health.set_shutting_down();
        tracing::info!(budget = ?budget(&self.groups), groups = ?self.groups, "node shutdown: shutting down pods");
        let pods: Vec<Arc<Pod>> = self
            .statuses
            .list()
            .into_iter()
            .filter(|p| {
                !matches!(
                    p.status.as_ref().and_then(|s| s.phase.as_deref()),
                    Some("Succeeded") | Some("Failed")
                )
            })
            .collect();
        let mut by_group: Vec<Vec<Arc<Pod>>> = vec![Vec::new(); self.groups.len()];
        for pod in pods {
            by_group[group_of(&self.groups, priority(&pod))].push(pod);
        }
        let mut pending = JoinSet::new();
        for (group, pods) in self.groups.iter().zip(by_group) {
            if pods.is_empty() {
                continue;
            }
            tracing::info!(
                priority = group.priority,
                grace_seconds = group.grace_seconds,
                pods = pods.len(),
                "node shutdown: killing pods of a priority group"
            );
            let mut this_group = JoinSet::new();
            for pod in pods {
                let own = pod
                    .spec
                    .as_ref()
                    .and_then(|s| s.termination_grace_period_seconds)
                    .unwrap_or(group.grace_seconds);
                let spec = KillSpec {
                    uid: pod.metadata.uid.clone().unwrap_or_default(),
                    grace_seconds: Some(own.min(group.grace_seconds).max(0)),
                    reason: REASON.into(),
                    message: MESSAGE.into(),
                    keep_succeeded: true,
                };
                let killer = self.killer.clone();
                let name = crate::pod::worker::pod_ref(&pod);
                this_group.spawn(async move {
                    let outcome = killer.kill(spec).await;
                    if outcome != KillOutcome::Killed {
                        tracing::info!(pod = %name, ?outcome, "node shutdown: pod was not killed");
                    }
                });
            }
            let wait = Duration::from_secs(group.grace_seconds.max(0) as u64);
            let all_done = async { while this_group.join_next().await.is_some() {} };
            if tokio::time::timeout(wait, all_done).await.is_err() {
                tracing::info!(
                    priority = group.priority,
                    "node shutdown: pod killing timed out for the group; going on"
                );
                // Their kills go on while the next groups start.
                pending.spawn(async move { while this_group.join_next().await.is_some() {} });
            }
        }
        let _ = tokio::time::timeout(Duration::from_secs(5), async {
            while pending.join_next().await.is_some() {}
        })
        .await;
        tracing::info!("node shutdown: done shutting down pods");
    }
}

/// Refuses every pod once the shutdown began (upstream's shutdown admit handler).
#[derive(Debug)]
pub struct ShutdownAdmission {
    pub view: NodeHealthView,
}

impl AdmitHandler for ShutdownAdmission {
    fn admit(&self, _pod: &Pod) -> Result<(), Rejection> {
        if self.view.current().shutting_down.active {
            return Err(Rejection {
                reason: REJECT_REASON.into(),
                message: REJECT_MESSAGE.into(),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_from_the_two_periods_or_by_priority() {
        assert!(groups(Duration::ZERO, Duration::ZERO, &[]).is_empty());
        assert!(groups(Duration::from_secs(10), Duration::from_secs(20), &[]).is_empty());
        let g = groups(Duration::from_secs(30), Duration::from_secs(10), &[]);
        assert_eq!(
            g,
            vec![
                Group {
                    priority: 0,
                    grace_seconds: 20
                },
                Group {
                    priority: SYSTEM_CRITICAL_PRIORITY,
                    grace_seconds: 10
                },
            ]
        );
        assert_eq!(budget(&g), Duration::from_secs(30));
        let g = groups(
            Duration::ZERO,
            Duration::ZERO,
            &[(100000, 5), (0, 10), (10000, 3)],
        );
        assert_eq!(
            g.iter().map(|g| g.priority).collect::<Vec<_>>(),
            [0, 10000, 100000]
        );
    }

    #[test]
    fn pods_go_to_the_highest_group_at_or_below_their_priority() {
        let g = groups(
            Duration::ZERO,
            Duration::ZERO,
            &[(0, 10), (1000, 5), (SYSTEM_CRITICAL_PRIORITY, 2)],
        );
        assert_eq!(group_of(&g, -5), 0);
        assert_eq!(group_of(&g, 0), 0);
        assert_eq!(group_of(&g, 999), 0);
        assert_eq!(group_of(&g, 1000), 1);
        assert_eq!(group_of(&g, 2_000_001_000), 2);
    }

    #[test]
    fn admission_refuses_once_shutting_down() {
        let (w, view) = crate::eviction::node_health();
        let h = ShutdownAdmission { view };
        assert!(h.admit(&Pod::default()).is_ok());
        w.set_shutting_down();
        let r = h.admit(&Pod::default()).unwrap_err();
        assert_eq!(r.reason, "NodeShutdown");
        assert_eq!(r.message, "Pod was rejected as the node is shutting down.");
    }
}
