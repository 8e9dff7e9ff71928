//! The status manager (upstream status_manager.go): every pod status the workers compute
//! is patched to the API server when it differs from what the server has, with retries
//! and backoff; static pods report through their mirror pod. Conditions the kubelet does
//! not own (set by others) and fields it does not compute are kept.
//!
//! It also finishes graceful deletion: once the dispatcher says a deleted pod's
//! termination completed, the pod is deleted with grace period 0 and a UID precondition.
//!
//! Nothing polls: it wakes on status changes (StatusStore), on the API view changing, on
//! terminations, and on a retry timer after a failure.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Pod, PodStatus};
use kube::api::{Api, DeleteParams, Patch, PatchParams, Preconditions};
use kubelet_core::status::store::StatusStore;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::{ApiPods, is_static, merge_patch, terminal};
use crate::backoff::Backoff;
use crate::error::{ClusterError, with_timeout};
use crate::rejections::Rejections;

/// Pod condition types the kubelet owns (upstream PodConditionsByKubelet).
const KUBELET_CONDITIONS: &[&str] = &[
    "PodScheduled",
    "Ready",
    "Initialized",
    "ContainersReady",
    "PodReadyToStartContainers",
];

const CALL_TIMEOUT: Duration = Duration::from_secs(10);

pub struct StatusManager {
    client: kube::Client,
    statuses: StatusStore,
    status_changes: watch::Receiver<u64>,
    api: watch::Receiver<Arc<ApiPods>>,
    terminated: watch::Receiver<BTreeSet<String>>,
    /// target pod UID -> (API resourceVersion seen when sent, status sent).
    sent: HashMap<String, (String, PodStatus)>,
    /// Pods finally deleted (or gone) already.
    deleted: BTreeSet<String>,
    rejections: Rejections,
}

const PATCH_STATUS: &str = "update pod status";

impl StatusManager {
    pub fn new(
        client: kube::Client,
        statuses: StatusStore,
        api: watch::Receiver<Arc<ApiPods>>,
        terminated: watch::Receiver<BTreeSet<String>>,
        rejections: Rejections,
    ) -> Self {
        StatusManager {
            rejections,
            client,
            status_changes: statuses.subscribe(),
            statuses,
            api,
            terminated,
            sent: HashMap::new(),
            deleted: BTreeSet::new(),
        }
    }

    pub async fn run(mut self, cancel: CancellationToken) {
        tracing::info!("starting to sync pod status with apiserver");
        let mut backoff = Backoff::new(Duration::from_millis(500), Duration::from_secs(30));
        let mut retry_in: Option<Duration> = None;
        loop {
            let sleep = async {
                match retry_in {
                    Some(d) => tokio::time::sleep(d).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = cancel.cancelled() => return,
                r = self.status_changes.changed() => if r.is_err() { return },
                r = self.api.changed() => if r.is_err() { return },
                r = self.terminated.changed() => if r.is_err() { return },
                _ = sleep => {}
            }
            self.status_changes.borrow_and_update();
            self.terminated.borrow_and_update();
            let api = self.api.borrow_and_update().clone();
            if !api.synced {
                retry_in = None;
                continue;
            }
            let failures = self.sync(&api).await;
            retry_in = if failures == 0 {
                backoff.reset();
                None
            } else {
                Some(backoff.next_delay())
            };
        }
    }

    /// One pass over every pod; returns how many calls failed.
    async fn sync(&mut self, api: &ApiPods) -> usize {
        let mut failures = 0;
        let mut targets_seen = BTreeSet::new();
        for pod in self.statuses.list() {
            let Some(target) = target_of(&pod, api) else {
                continue;
            };
            let target_uid = target.metadata.uid.clone().unwrap_or_default();
            targets_seen.insert(target_uid.clone());
            let Some(ours) = pod.status.as_ref() else {
                continue;
            };
            let mut desired = merged(target.status.as_ref(), ours);
            // The worker of a pod deleted through the API leaves the status its stopped
            // containers ended with: that is the pod's last status, sent terminal before
            // the final delete.
            if pod.metadata.deletion_timestamp.is_some()
                && target.metadata.deletion_timestamp.is_some()
                && !is_static(&pod)
            {
                desired = final_api_status(&target, desired);
            }
            let rv = target.metadata.resource_version.clone().unwrap_or_default();
            if self
                .sent
                .get(&target_uid)
                .is_some_and(|(sent_rv, s)| *sent_rv == rv && *s == desired)
            {
                continue;
            }
            let name = super::full_name(&target);
            match self.patch(&target, &desired).await {
                Ok(()) => {
                    self.rejections.accepted(PATCH_STATUS, &name);
                    self.sent.insert(target_uid, (rv, desired));
                }
                Err(e) if e.is_not_found() => self.rejections.accepted(PATCH_STATUS, &name),
                Err(e) => {
                    if !self.rejections.record(PATCH_STATUS, &name, &e) {
                        tracing::warn!(pod = %name, error = %e, "failed to update pod status; will retry");
                    }
                    failures += 1;
                }
            }
        }
        self.sent.retain(|uid, _| targets_seen.contains(uid));
        failures += self.finish_deletions(api).await;
        failures
    }

    async fn patch(&self, target: &Pod, desired: &PodStatus) -> Result<(), ClusterError> {
        let from =
            serde_json::to_value(target.status.clone().unwrap_or_default()).unwrap_or_default();
        let to = serde_json::to_value(desired).unwrap_or_default();
        let Some(diff) = merge_patch::diff(&from, &to) else {
            return Ok(());
        };
        let uid = target.metadata.uid.clone().unwrap_or_default();
        let patch = serde_json::json!({"metadata": {"uid": uid}, "status": diff});
        let pods: Api<Pod> = Api::namespaced(
            self.client.clone(),
            target.metadata.namespace.as_deref().unwrap_or("default"),
        );
        let name = target.metadata.name.clone().unwrap_or_default();
        with_timeout(
            CALL_TIMEOUT,
            pods.patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch)),
        )
        .await?;
        tracing::debug!(pod = %name, phase = ?desired.phase, "pod status patched");
        Ok(())
    }

    /// Final delete (grace 0, UID precondition) of deleted pods whose termination ended,
    /// once the API has their terminal status (upstream canBeDeleted).
    async fn finish_deletions(&mut self, api: &ApiPods) -> usize {
        let terminated = self.terminated.borrow().clone();
        self.deleted.retain(|uid| terminated.contains(uid));
        self.forget_gone_statuses(api);
        let mut failures = 0;
        for uid in terminated.difference(&self.deleted.clone()) {
            let Some(pod) = api.pods.get(uid) else {
                self.deleted.insert(uid.clone());
                self.statuses.remove(uid);
                continue;
            };
            if pod.metadata.deletion_timestamp.is_none() {
                continue;
            }
            let sent_terminal = self
                .sent
                .get(uid)
                .is_some_and(|(_, s)| terminal::is_terminal(Some(s)));
            if !sent_terminal && !terminal::is_terminal(pod.status.as_ref()) {
                // No terminal status from the worker (nothing ran, or a restart lost it):
                // the server's status made terminal.
                let ours = self
                    .statuses
                    .get(uid)
                    .and_then(|p| p.status.clone())
                    .unwrap_or_else(|| pod.status.clone().unwrap_or_default());
                let desired = final_api_status(pod, merged(pod.status.as_ref(), &ours));
                let name = super::full_name(pod);
                match self.patch(pod, &desired).await {
                    Ok(()) => self.rejections.accepted(PATCH_STATUS, &name),
                    Err(e) if e.is_not_found() => {
                        self.rejections.accepted(PATCH_STATUS, &name);
                        self.deleted.insert(uid.clone());
                        self.statuses.remove(uid);
                        continue;
                    }
                    Err(e) => {
                        if !self.rejections.record(PATCH_STATUS, &name, &e) {
                            tracing::warn!(pod = %name, error = %e, "failed to update the terminal pod status; will retry");
                        }
                        failures += 1;
                        continue;
                    }
                }
            }
            let pods: Api<Pod> = Api::namespaced(
                self.client.clone(),
                pod.metadata.namespace.as_deref().unwrap_or("default"),
            );
            let params = DeleteParams {
                grace_period_seconds: Some(0),
                preconditions: Some(Preconditions {
                    uid: Some(uid.clone()),
                    resource_version: None,
                }),
                ..Default::default()
            };
            let name = pod.metadata.name.clone().unwrap_or_default();
            match with_timeout(CALL_TIMEOUT, pods.delete(&name, &params)).await {
                Ok(_) => {
                    tracing::info!(pod = %super::full_name(pod), "pod terminated; deleted from the API server");
                    self.deleted.insert(uid.clone());
                    self.statuses.remove(uid);
                }
                Err(e) if e.is_not_found() || e.is_conflict() => {
                    self.deleted.insert(uid.clone());
                    self.statuses.remove(uid);
                }
                Err(e) => {
                    tracing::warn!(pod = %name, error = %e, "final delete failed; will retry");
                    failures += 1;
                }
            }
        }
        failures
    }

    /// The final status a worker keeps for a pod deleted through the API is dropped once
    /// the API no longer has the pod (deleted by someone else, e.g. with grace 0).
    fn forget_gone_statuses(&self, api: &ApiPods) {
        for pod in self.statuses.list() {
            let uid = pod.metadata.uid.as_deref().unwrap_or_default();
            if pod.metadata.deletion_timestamp.is_some()
                && !is_static(&pod)
                && !api.pods.contains_key(uid)
            {
                self.statuses.remove(uid);
            }
        }
    }
}

/// The terminal status of a deleted API pod (see [`terminal`]), keeping the pod's IPs.
fn final_api_status(pod: &Pod, desired: PodStatus) -> PodStatus {
    let server = pod.status.as_ref();
    let mut status = terminal::terminal_status(pod, desired, &crate::time::now());
    if status.pod_ip.is_none() {
        status.pod_ip = server.and_then(|s| s.pod_ip.clone());
        status.pod_ips = server.and_then(|s| s.pod_ips.clone());
    }
    status
}

/// The API pod a status goes to: the pod itself, or the mirror pod of a static pod.
fn target_of(pod: &Pod, api: &ApiPods) -> Option<Arc<Pod>> {
    if is_static(pod) {
        api.mirror_of(
            pod.metadata.namespace.as_deref().unwrap_or_default(),
            pod.metadata.name.as_deref().unwrap_or_default(),
        )
        .cloned()
    } else {
        api.pods.get(pod.metadata.uid.as_deref()?).cloned()
    }
}

/// The server's status with the kubelet's fields replaced by ours; conditions others
/// own are kept (upstream mergePodStatus).
pub fn merged(server: Option<&PodStatus>, ours: &PodStatus) -> PodStatus {
    let base = server.cloned().unwrap_or_default();
    let mut conditions: Vec<_> = ours.conditions.clone().unwrap_or_default();
    let owned: BTreeMap<&str, ()> = KUBELET_CONDITIONS.iter().map(|c| (*c, ())).collect();
    for c in base.conditions.iter().flatten() {
        if !owned.contains_key(c.type_.as_str()) && !conditions.iter().any(|o| o.type_ == c.type_) {
            conditions.push(c.clone());
        }
    }
    // A condition the kubelet owns keeps the server's transition time while unchanged.
    for c in conditions.iter_mut() {
        if let Some(prev) = base
            .conditions
            .iter()
            .flatten()
            .find(|p| p.type_ == c.type_ && p.status == c.status)
            && prev.last_transition_time.is_some()
        {
            c.last_transition_time = prev.last_transition_time.clone();
        }
    }
    PodStatus {
        phase: ours.phase.clone(),
        conditions: Some(conditions),
        message: ours.message.clone(),
        reason: ours.reason.clone(),
        host_ip: ours.host_ip.clone(),
        host_ips: ours.host_ips.clone(),
        pod_ip: ours.pod_ip.clone(),
        pod_ips: ours.pod_ips.clone(),
        start_time: base.start_time.clone().or_else(|| ours.start_time.clone()),
        init_container_statuses: ours.init_container_statuses.clone(),
        container_statuses: ours.container_statuses.clone(),
        ephemeral_container_statuses: ours.ephemeral_container_statuses.clone(),
        qos_class: ours.qos_class.clone().or(base.qos_class.clone()),
        resize: ours.resize.clone().or(base.resize.clone()),
        ..base
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::PodCondition;

    fn cond(t: &str, s: &str) -> PodCondition {
        PodCondition {
            type_: t.into(),
            status: s.into(),
            ..Default::default()
        }
    }

    #[test]
    fn keeps_foreign_conditions_and_fields() {
        let server = PodStatus {
            phase: Some("Pending".into()),
            conditions: Some(vec![
                cond("PodScheduled", "True"),
                cond("example.com/gate", "True"),
            ]),
            nominated_node_name: Some("n".into()),
            ..Default::default()
        };
        let ours = PodStatus {
            phase: Some("Running".into()),
            conditions: Some(vec![cond("Ready", "True"), cond("PodScheduled", "True")]),
            pod_ip: Some("10.88.0.4".into()),
            ..Default::default()
        };
        let m = merged(Some(&server), &ours);
        assert_eq!(m.phase.as_deref(), Some("Running"));
        let types: Vec<_> = m.conditions.unwrap().into_iter().map(|c| c.type_).collect();
        assert_eq!(types, ["Ready", "PodScheduled", "example.com/gate"]);
        assert_eq!(m.nominated_node_name.as_deref(), Some("n"));
        assert_eq!(m.pod_ip.as_deref(), Some("10.88.0.4"));
    }
}
