//! Pod lifecycle event generator: relists sandboxes and containers through CRI on a
//! period (and on demand, after a worker acted), fetches details only for what changed,
//! and publishes a [`RuntimeSnapshot`] on a watch channel.
//!
//! containerd 1.6 does not implement GetContainerEvents, so relisting is the only source
//! of truth. Only objects labelled with this kubelet's node name are listed.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_cri::v1 as cri;
use tokio::sync::{Notify, watch};
use tokio_util::sync::CancellationToken;

use crate::runtime::cri::{CriClient, CriError};
use crate::runtime::labels;
use crate::runtime::model::{
    ContainerState, ObservedContainer, ObservedPod, ObservedSandbox, RuntimeSnapshot, now_ns,
};

/// Handle used by workers to ask for a relist now instead of at the next period.
#[derive(Clone, Default)]
pub struct RelistTrigger(Arc<Notify>);

impl RelistTrigger {
    pub fn request(&self) {
        self.0.notify_one();
    }
}

pub struct Pleg {
    cri: CriClient,
    node_name: String,
    period: Duration,
    trigger: RelistTrigger,
    /// Details cache: container id -> (state seen, detail). A container is re-inspected
    /// only when its listed state changes.
    containers: HashMap<String, (i32, ObservedContainer)>,
    /// Sandbox id -> (state seen, ips).
    sandboxes: HashMap<String, (i32, Vec<String>)>,
    generation: u64,
}

impl Pleg {
    pub fn new(cri: CriClient, node_name: String, period: Duration) -> Self {
        Pleg {
            cri,
            node_name,
            period,
            trigger: RelistTrigger::default(),
            containers: HashMap::new(),
            sandboxes: HashMap::new(),
            generation: 0,
        }
    }

    pub fn trigger(&self) -> RelistTrigger {
        self.trigger.clone()
    }

    pub async fn run(
        mut self,
        out: watch::Sender<Arc<RuntimeSnapshot>>,
        cancel: CancellationToken,
    ) {
        let mut failures: u32 = 0;
        loop {
            let started = Instant::now();
            if let Some(metrics) = self.cri.metrics() {
                metrics.pleg.relist_started();
            }
            let previous = out.borrow().clone();
            match self.relist(&previous).await {
                Ok(snapshot) => {
                    if failures > 0 {
                        tracing::info!("container runtime is reachable again");
                    }
                    failures = 0;
                    if let Some(metrics) = self.cri.metrics() {
                        metrics.pleg.observe_relist(started.elapsed());
                    }
                    out.send_replace(Arc::new(snapshot));
                }
                Err(err) => {
                    failures += 1;
                    if failures == 1 || failures.is_multiple_of(30) {
                        tracing::warn!(error = %err, failures, "PLEG relist failed");
                    }
                    if previous.healthy {
                        out.send_replace(Arc::new(RuntimeSnapshot {
                            generation: previous.generation,
                            taken_at_ns: previous.taken_at_ns,
                            healthy: false,
                            pods: previous.pods.clone(),
                        }));
                    }
                }
            }
            tracing::trace!(
                elapsed_us = started.elapsed().as_micros() as u64,
                "PLEG relist"
            );
            // Back off while the runtime is down (bounded), otherwise relist on the period
            // or as soon as a worker asks.
            let wait = if failures > 0 {
                (self.period * failures.min(5)).min(Duration::from_secs(5))
            } else {
                self.period
            };
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tokio::time::sleep(wait) => {}
                _ = self.trigger.0.notified(), if failures == 0 => {}
            }
        }
    }

    async fn relist(&mut self, previous: &RuntimeSnapshot) -> Result<RuntimeSnapshot, CriError> {
        let taken_at_ns = now_ns();
        let selector =
            HashMap::from([(labels::MANAGED_BY_NODE.to_string(), self.node_name.clone())]);
        let (sandboxes, containers) = tokio::try_join!(
            self.cri.list_pod_sandbox(Some(cri::PodSandboxFilter {
                label_selector: selector.clone(),
                ..Default::default()
            })),
            self.cri.list_containers(Some(cri::ContainerFilter {
                label_selector: selector,
                ..Default::default()
            })),
        )?;

        let mut pods: HashMap<String, ObservedPod> = HashMap::new();
        let mut live_sandboxes = HashMap::with_capacity(sandboxes.len());
        for sb in &sandboxes {
            let Some(uid) = sb.labels.get(labels::POD_UID) else {
                continue;
            };
            let ips = self.sandbox_ips(sb).await;
            live_sandboxes.insert(sb.id.clone(), (sb.state, ips.clone()));
            let meta = sb.metadata.clone().unwrap_or_default();
            let pod = pods.entry(uid.clone()).or_insert_with(|| ObservedPod {
                uid: uid.clone(),
                name: meta.name.clone(),
                namespace: meta.namespace.clone(),
                ..Default::default()
            });
            pod.sandboxes.push(ObservedSandbox {
                id: sb.id.clone(),
                attempt: meta.attempt,
                ready: sb.state == cri::PodSandboxState::SandboxReady as i32,
                created_at: sb.created_at,
                ips,
            });
        }
        self.sandboxes = live_sandboxes;

        let mut live_containers = HashMap::with_capacity(containers.len());
        for c in &containers {
            let Some(uid) = c.labels.get(labels::POD_UID) else {
                continue;
            };
            let detail = match self.containers.remove(&c.id) {
                Some((state, detail)) if state == c.state => detail,
                _ => match self.inspect_container(c).await {
                    Some(d) => d,
                    None => continue, // removed between list and inspect
                },
            };
            let pod = pods.entry(uid.clone()).or_insert_with(|| ObservedPod {
                uid: uid.clone(),
                name: c.labels.get(labels::POD_NAME).cloned().unwrap_or_default(),
                namespace: c
                    .labels
                    .get(labels::POD_NAMESPACE)
                    .cloned()
                    .unwrap_or_default(),
                ..Default::default()
            });
            if pod.termination_grace_seconds.is_none() {
                pod.termination_grace_seconds = c
                    .annotations
                    .get(labels::POD_TERMINATION_GRACE_PERIOD)
                    .and_then(|v| v.parse().ok());
            }
            pod.containers.push(detail.clone());
            live_containers.insert(c.id.clone(), (c.state, detail));
        }
        self.containers = live_containers;

        self.generation += 1;
        let pods = pods
            .into_iter()
            .map(|(uid, mut pod)| {
                pod.sandboxes
                    .sort_by_key(|s| std::cmp::Reverse(s.created_at));
                pod.containers
                    .sort_by_key(|c| std::cmp::Reverse(c.created_at));
                // Keep the previous Arc when nothing changed: workers compare pointers.
                let arc = match previous.pods.get(&uid) {
                    Some(old) if **old == pod => old.clone(),
                    _ => Arc::new(pod),
                };
                (uid, arc)
            })
            .collect();
        Ok(RuntimeSnapshot {
            generation: self.generation,
            taken_at_ns,
            healthy: true,
            pods,
        })
    }

    async fn sandbox_ips(&self, sb: &cri::PodSandbox) -> Vec<String> {
        if let Some((state, ips)) = self.sandboxes.get(&sb.id)
            && *state == sb.state
        {
            return ips.clone();
        }
        if sb.state != cri::PodSandboxState::SandboxReady as i32 {
            return Vec::new();
        }
        match self.cri.pod_sandbox_status(&sb.id).await {
            Ok(status) => status
                .network
                .map(|n| {
                    let mut ips = vec![n.ip];
                    ips.extend(n.additional_ips.into_iter().map(|i| i.ip));
                    ips.retain(|ip| !ip.is_empty());
                    ips
                })
                .unwrap_or_default(),
            Err(err) => {
                tracing::debug!(sandbox = %sb.id, error = %err, "PodSandboxStatus failed");
                Vec::new()
            }
        }
    }

    async fn inspect_container(&self, c: &cri::Container) -> Option<ObservedContainer> {
        let name = c
            .labels
            .get(labels::CONTAINER_NAME)
            .cloned()
            .or_else(|| c.metadata.as_ref().map(|m| m.name.clone()))
            .unwrap_or_default();
        let mut detail = ObservedContainer {
            id: c.id.clone(),
            name,
            sandbox_id: c.pod_sandbox_id.clone(),
            state: state_of(c.state),
            created_at: c.created_at,
            started_at: 0,
            finished_at: 0,
            exit_code: 0,
            reason: String::new(),
            message: String::new(),
            image: c
                .image
                .as_ref()
                .map(|i| i.image.clone())
                .unwrap_or_default(),
            image_ref: c.image_ref.clone(),
            hash: c
                .annotations
                .get(labels::CONTAINER_HASH)
                .cloned()
                .unwrap_or_default(),
            restart_count: labels::restart_count(&c.annotations),
        };
        match self.cri.container_status(&c.id).await {
            Ok(s) => {
                detail.state = state_of(s.state);
                detail.started_at = s.started_at;
                detail.finished_at = s.finished_at;
                detail.exit_code = s.exit_code;
                detail.reason = s.reason;
                detail.message = s.message;
                if !s.image_ref.is_empty() {
                    detail.image_ref = s.image_ref;
                }
            }
            Err(err) if err.is_not_found() => return None,
            Err(err) => tracing::debug!(container = %c.id, error = %err, "ContainerStatus failed"),
        }
        Some(detail)
    }
}

fn state_of(state: i32) -> ContainerState {
    match cri::ContainerState::try_from(state) {
        Ok(cri::ContainerState::ContainerCreated) => ContainerState::Created,
        Ok(cri::ContainerState::ContainerRunning) => ContainerState::Running,
        Ok(cri::ContainerState::ContainerExited) => ContainerState::Exited,
        _ => ContainerState::Unknown,
    }
}
