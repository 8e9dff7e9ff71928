//! The eviction manager (upstream pkg/kubelet/eviction): every 10 s it observes the
//! node's signals ([`signals`]), compares them with the configured thresholds
//! ([`thresholds`]), publishes MemoryPressure / DiskPressure / PIDPressure
//! ([`conditions`]), enforces emptyDir sizeLimit and ephemeral-storage limits
//! ([`local`]), and when a threshold has been met for its grace period first reclaims
//! node-level resources (container and image garbage collection, for disk signals),
//! then evicts one pod ranked as upstream ([`rank`]) through its pod worker
//! ([`crate::pod::kill`]): phase Failed, reason `Evicted`, upstream's message, the
//! `DisruptionTarget` condition. Its admission handler refuses pods while the node is
//! under pressure (BestEffort pods only, for memory pressure alone).
//!
//! Differences from upstream, on purpose (see docs/housekeeping.md): static pods are not
//! treated as critical (in standalone mode every pod is static, so upstream would never
//! evict or refuse anything); only pods whose priority is system-critical are spared.

pub mod conditions;
pub mod fs;
pub mod local;
pub mod rank;
pub mod signals;
pub mod stats;
pub mod thresholds;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Pod;
use tokio_util::sync::CancellationToken;

use crate::cm::admission::{AdmitHandler, Rejection};
use crate::cm::{QosClass, qos_class};
use crate::gc::GarbageCollector;
use crate::pod::kill::{KillOutcome, KillSpec, PodKiller};
use crate::runtime::cri::CriClient;
use crate::status::store::StatusStore;
pub use conditions::{NodeHealth, NodeHealthView, NodeHealthWriter, node_health};
use signals::{NodeSources, Observations, Pressure, Signal};
use stats::{PodPaths, PodStats};
use thresholds::{Threshold, ThresholdState};

/// PodStatus.reason of evicted pods and of pods refused under pressure.
pub const REASON: &str = "Evicted";
/// How long a hard or local-storage eviction gives the pod (upstream's constant).
pub const IMMEDIATE_GRACE_SECONDS: i64 = 1;
/// How often signals are observed (upstream evictionMonitoringPeriod).
pub const MONITORING_INTERVAL: Duration = Duration::from_secs(10);

#[derive(Debug, Clone)]
pub struct EvictionSettings {
    pub node_name: String,
    pub thresholds: Vec<Threshold>,
    pub pressure_transition_period: Duration,
    /// evictionMaxPodGracePeriod: the longest grace a soft eviction gives.
    pub max_pod_grace_period: i64,
    pub local_storage_capacity_isolation: bool,
    pub node: NodeSources,
    pub pods: PodPaths,
    pub monitoring_interval: Duration,
}

pub struct EvictionManager {
    settings: EvictionSettings,
    cri: CriClient,
    statuses: StatusStore,
    killer: PodKiller,
    health: NodeHealthWriter,
    gc: Option<GarbageCollector>,
    state: ThresholdState,
    image_fs: Option<PathBuf>,
}

impl EvictionManager {
    pub fn new(
        settings: EvictionSettings,
        cri: CriClient,
        statuses: StatusStore,
        killer: PodKiller,
        health: NodeHealthWriter,
        gc: Option<GarbageCollector>,
    ) -> Self {
        let state = ThresholdState::new(
            settings.thresholds.clone(),
            settings.pressure_transition_period,
        );
        EvictionManager {
            settings,
            cri,
            statuses,
            killer,
            health,
            gc,
            state,
            image_fs: None,
        }
    }

    pub async fn run(mut self, cancel: CancellationToken) {
        if self.settings.thresholds.is_empty() && !self.settings.local_storage_capacity_isolation {
            // Nothing to watch; idle until shutdown (a supervised loop that returns early
            // is a failure).
            cancel.cancelled().await;
            return;
        }
        tracing::info!(
            thresholds = ?self.settings.thresholds.iter().map(|t| format!("{}<{:?} grace={:?}", t.signal.name(), t.value, t.grace_period)).collect::<Vec<_>>(),
            "eviction manager: starting control loop"
        );
        loop {
            let evicted = self.synchronize().await;
            // After an eviction look again soon (the kill already waited for the pod to be
            // cleaned up), otherwise on the monitoring interval.
            let wait = if evicted > 0 {
                Duration::from_secs(1)
            } else {
                self.settings.monitoring_interval
            };
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }

    async fn observe(&mut self) -> Observations {
        if self.image_fs.is_none()
            && let Ok(info) = self.cri.image_fs_info().await
        {
            self.image_fs = info
                .image_filesystems
                .first()
                .and_then(|f| f.fs_id.as_ref())
                .map(|id| PathBuf::from(&id.mountpoint))
                .filter(|p| p.is_absolute());
        }
        let src = self.settings.node.clone();
        let image_fs = self.image_fs.clone();
        tokio::task::spawn_blocking(move || signals::observe_node(&src, image_fs.as_deref()))
            .await
            .unwrap_or_default()
    }

    /// One pass; returns how many pods were evicted.
    async fn synchronize(&mut self) -> usize {
        let obs = self.observe().await;
        let verdict = self.state.observe(&obs, Instant::now());
        let active: Vec<Pressure> = verdict.conditions.iter().copied().collect();
        for (p, on) in self.health.set_pressures(&active) {
            tracing::info!(
                condition = %p.condition_type(),
                status = %if on { "True" } else { "False" },
                "eviction manager: node condition changed"
            );
        }
        let pods = self.active_pods();
        let need_stats =
            self.settings.local_storage_capacity_isolation || !verdict.to_reclaim.is_empty();
        let stats: HashMap<String, PodStats> = if need_stats && !pods.is_empty() {
            match stats::collect(
                &self.cri,
                &self.settings.node_name,
                &self.settings.pods,
                &pods,
            )
            .await
            {
                Ok(s) => s,
                Err(err) => {
                    tracing::debug!(error = %err, "eviction manager: cannot read pod stats");
                    HashMap::new()
                }
            }
        } else {
            HashMap::new()
        };
        if self.settings.local_storage_capacity_isolation {
            let evicted = self.local_storage_eviction(&pods, &stats).await;
            if evicted > 0 {
                return evicted;
            }
        }
        let Some(&index) = verdict.to_reclaim.first() else {
            return 0;
        };
        let threshold = self.state.thresholds[index].clone();
        tracing::info!(
            resource = threshold.signal.resource(),
            signal = threshold.signal.name(),
            "eviction manager: attempting to reclaim"
        );
        if self.reclaim_node_level(threshold.signal).await {
            tracing::info!(
                resource = threshold.signal.resource(),
                "eviction manager: able to reduce resource pressure without evicting pods"
            );
            return 0;
        }
        tracing::info!(
            resource = threshold.signal.resource(),
            "eviction manager: must evict pod(s) to reclaim"
        );
        let mut candidates: Vec<rank::Candidate> = pods
            .iter()
            .filter(|p| !rank::is_critical(p))
            .map(|p| rank::Candidate {
                pod: p.as_ref(),
                usage: stats
                    .get(p.metadata.uid.as_deref().unwrap_or_default())
                    .map(|s| s.total),
            })
            .collect();
        if candidates.is_empty() {
            tracing::warn!(
                "eviction manager: eviction thresholds have been met, but no pods are active to evict"
            );
            return 0;
        }
        rank::rank(threshold.signal, &mut candidates);
        tracing::info!(pods = ?candidates.iter().map(|c| c.pod.metadata.name.clone().unwrap_or_default()).collect::<Vec<_>>(), "eviction manager: pods ranked for eviction");
        let order: Vec<Arc<Pod>> = candidates
            .iter()
            .filter_map(|c| {
                pods.iter()
                    .find(|p| std::ptr::eq(p.as_ref(), c.pod))
                    .cloned()
            })
            .collect();
        drop(candidates);
        for pod in order {
            let uid = pod.metadata.uid.clone().unwrap_or_default();
            let grace = if threshold.is_hard() {
                IMMEDIATE_GRACE_SECONDS
            } else {
                let own = pod
                    .spec
                    .as_ref()
                    .and_then(|s| s.termination_grace_period_seconds)
                    .unwrap_or(self.settings.max_pod_grace_period);
                self.settings.max_pod_grace_period.min(own)
            };
            let message = local::eviction_message(
                &pod,
                stats.get(&uid),
                &threshold,
                obs.get(&threshold.signal),
            );
            if self.evict(&pod, grace, message).await {
                return 1;
            }
        }
        tracing::info!("eviction manager: unable to evict any pods from the node");
        0
    }

    /// Pods the kubelet runs that have not finished.
    fn active_pods(&self) -> Vec<Arc<Pod>> {
        self.statuses
            .list()
            .into_iter()
            .filter(|p| {
                let phase = p.status.as_ref().and_then(|s| s.phase.as_deref());
                !matches!(phase, Some("Succeeded") | Some("Failed"))
                    && p.metadata.uid.as_deref().is_some_and(|u| !u.is_empty())
            })
            .collect()
    }

    async fn local_storage_eviction(
        &self,
        pods: &[Arc<Pod>],
        stats: &HashMap<String, PodStats>,
    ) -> usize {
        let mut evicted = 0;
        for pod in pods {
            let Some(s) = stats.get(pod.metadata.uid.as_deref().unwrap_or_default()) else {
                continue;
            };
            if let Some(message) = local::check(pod, s)
                && !rank::is_critical(pod)
                && self.evict(pod, IMMEDIATE_GRACE_SECONDS, message).await
            {
                evicted += 1;
            }
        }
        evicted
    }

    async fn evict(&self, pod: &Pod, grace: i64, message: String) -> bool {
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        tracing::info!(pod = %crate::pod::worker::pod_ref(pod), grace_seconds = grace, message = %message, "eviction manager: evicting pod");
        let outcome = self
            .killer
            .kill(KillSpec {
                uid,
                grace_seconds: Some(grace),
                reason: REASON.into(),
                message,
                keep_succeeded: false,
            })
            .await;
        match outcome {
            KillOutcome::Killed => {
                tracing::info!(pod = %crate::pod::worker::pod_ref(pod), "eviction manager: pod is evicted successfully");
                true
            }
            other => {
                tracing::info!(pod = %crate::pod::worker::pod_ref(pod), outcome = ?other, "eviction manager: pod was not evicted");
                false
            }
        }
    }

    /// Disk signals: delete dead containers (and their logs) and unused images, then
    /// look again; true when no threshold is met any more (min reclaim included).
    async fn reclaim_node_level(&mut self, signal: Signal) -> bool {
        if signal.pressure() != Pressure::Disk {
            return false;
        }
        let Some(gc) = self.gc.clone() else {
            return false;
        };
        gc.delete_all_unused_containers().await;
        gc.delete_unused_images().await;
        let obs = self.observe().await;
        !self.state.any_met_with_reclaim(&obs)
    }
}

/// Refuses pods while the node is under pressure, as upstream's eviction admit handler:
/// under memory pressure alone only BestEffort pods are refused (unless they tolerate
/// the memory-pressure taint); any other pressure refuses every pod. Critical pods pass.
#[derive(Debug)]
pub struct PressureAdmission {
    pub view: NodeHealthView,
}

impl AdmitHandler for PressureAdmission {
    fn admit(&self, pod: &Pod) -> Result<(), Rejection> {
        let health = self.view.current();
        let active = health.active_pressures();
        if active.is_empty() || rank::is_critical(pod) {
            return Ok(());
        }
        if active == [Pressure::Memory]
            && (qos_class(pod) != QosClass::BestEffort || tolerates_memory_pressure(pod))
        {
            return Ok(());
        }
        let names: Vec<&str> = active.iter().map(|p| p.condition_type()).collect();
        Err(Rejection {
            reason: REASON.into(),
            message: format!("The node had condition: [{}]. ", names.join(" ")),
        })
    }
}

fn tolerates_memory_pressure(pod: &Pod) -> bool {
    pod.spec
        .iter()
        .flat_map(|s| s.tolerations.iter().flatten())
        .any(|t| {
            let effect_ok = matches!(t.effect.as_deref(), None | Some("") | Some("NoSchedule"));
            let key = t.key.as_deref().unwrap_or("");
            let exists = t.operator.as_deref() == Some("Exists");
            effect_ok
                && ((key.is_empty() && exists)
                    || (key == "node.kubernetes.io/memory-pressure"
                        && (exists || t.value.as_deref().unwrap_or("").is_empty())))
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{Container, PodSpec, ResourceRequirements, Toleration};
    use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

    fn pod(requests: bool) -> Pod {
        Pod {
            spec: Some(PodSpec {
                containers: vec![Container {
                    name: "c".into(),
                    resources: requests.then(|| ResourceRequirements {
                        requests: Some([("memory".to_string(), Quantity("10Mi".into()))].into()),
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
    fn admission_under_pressure() {
        let (w, view) = node_health();
        let h = PressureAdmission { view };
        assert!(h.admit(&pod(false)).is_ok());
        w.set_pressures(&[Pressure::Memory]);
        let r = h.admit(&pod(false)).unwrap_err();
        assert_eq!(r.reason, "Evicted");
        assert_eq!(r.message, "The node had condition: [MemoryPressure]. ");
        assert!(
            h.admit(&pod(true)).is_ok(),
            "burstable pods pass memory pressure"
        );
        let mut tolerant = pod(false);
        tolerant.spec.as_mut().unwrap().tolerations = Some(vec![Toleration {
            key: Some("node.kubernetes.io/memory-pressure".into()),
            operator: Some("Exists".into()),
            effect: Some("NoSchedule".into()),
            ..Default::default()
        }]);
        assert!(h.admit(&tolerant).is_ok());
        w.set_pressures(&[Pressure::Memory, Pressure::Disk]);
        let r = h.admit(&pod(true)).unwrap_err();
        assert_eq!(
            r.message,
            "The node had condition: [MemoryPressure DiskPressure]. "
        );
        let mut critical = pod(false);
        critical.spec.as_mut().unwrap().priority_class_name = Some("system-node-critical".into());
        assert!(h.admit(&critical).is_ok());
    }
}
