//! Pod lifecycle event generator: relists sandboxes and containers through CRI on a
//! period (and on demand, after a worker acted), fetches details only for what changed,
//! and publishes a [`RuntimeSnapshot`] on a watch channel.
//!
//! containerd 1.6 does not implement GetContainerEvents, so relisting is the only source
//! of truth; to notice a container's exit without waiting for the period, the processes
//! of running containers are watched (see [`exits`]) and an exit triggers a relist. Only
//! objects labelled with this kubelet's node name are listed.

pub mod exits;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_cri::v1 as cri;
use tokio::sync::{Notify, watch};
use tokio_util::sync::CancellationToken;

use crate::runtime::cri::{CriClient, CriError};
use crate::runtime::labels;
use crate::runtime::model::{
    ContainerState, ObservedContainer, ObservedPod, ObservedSandbox, RuntimeSnapshot, now_ns,
};

/// Handle used by workers to ask for a relist now instead of at the next period, and
/// to pass on what they already know about a sandbox they created.
#[derive(Clone, Default)]
pub struct RelistTrigger(Arc<TriggerShared>);

#[derive(Default)]
struct TriggerShared {
    notify: Notify,
    /// Sandbox id -> (pod IPs from the creator's PodSandboxStatus, when recorded).
    sandbox_ips: Mutex<HashMap<String, (Vec<String>, Instant)>>,
}

/// A hint not taken within this long is dropped (its sandbox went away unseen).
const HINT_TTL: Duration = Duration::from_secs(60);

impl RelistTrigger {
    pub fn request(&self) {
        self.0.notify.notify_one();
    }

    /// A sandbox this kubelet just created, with the IPs its PodSandboxStatus gave: the
    /// PLEG takes them instead of asking the runtime a second time.
    pub fn sandbox_created(&self, id: &str, ips: Vec<String>) {
        let mut hints = self.hints();
        let now = Instant::now();
        hints.retain(|_, (_, at)| now.duration_since(*at) < HINT_TTL);
        hints.insert(id.to_string(), (ips, now));
    }

    fn take_sandbox_ips(&self, id: &str) -> Option<Vec<String>> {
        self.hints().remove(id).map(|(ips, _)| ips)
    }

    fn hints(&self) -> std::sync::MutexGuard<'_, HashMap<String, (Vec<String>, Instant)>> {
        crate::supervisor::lock(&self.0.sandbox_ips, "sandbox IP hints")
    }
}

/// After a watched container's process exited, the runtime records the exit 50-150 ms
/// later (containerd's shim reaps it first). Until then its ContainerStatus is asked this
/// often, one cheap call per exited container instead of a full relist, and the relist
/// follows as soon as the runtime agrees.
const EXIT_POLL: Duration = Duration::from_millis(20);

/// How long an exited container is polled; after that it is left to the periodic relist.
const EXIT_POLL_LIMIT: Duration = Duration::from_secs(2);

/// At most this many exited containers are polled at once (the oldest first).
const EXIT_POLL_BATCH: usize = 8;

/// On-demand relists wait this many times the last relist's duration after it ended: a
/// burst of requests (a hundred pods starting, each asking to see its effect) then keeps
/// the runtime answering lists at most a third of the time, while a cheap relist (a few
/// milliseconds with few pods) still follows a request at once.
const ON_DEMAND_SPACING: u32 = 2;

/// What the PLEG remembers of a container between relists.
struct Known {
    /// The state the list showed when it was inspected.
    listed_state: i32,
    detail: ObservedContainer,
    /// Host pid of its init process while running, when the runtime gave one.
    pid: Option<u32>,
}

pub struct Pleg {
    cri: CriClient,
    node_name: String,
    period: Duration,
    trigger: RelistTrigger,
    /// Details cache: container id -> what was seen. A container is re-inspected only
    /// when its listed state changes.
    containers: HashMap<String, Known>,
    /// Sandbox id -> (state seen, ips).
    sandboxes: HashMap<String, (i32, Vec<String>)>,
    generation: u64,
    exits: exits::ExitWatcher,
    /// Containers whose process exited but which the last relist still showed running,
    /// with when the exit was seen.
    exited: HashMap<String, Instant>,
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
            exits: exits::ExitWatcher::default(),
            exited: HashMap::new(),
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
        let mut relist_due = true;
        let mut last_relist = Instant::now();
        let mut last_end = Instant::now();
        loop {
            if relist_due {
                last_relist = Instant::now();
                failures = self.relist_and_publish(&out, failures).await;
                last_end = Instant::now();
            }
            // Every wake-up relists, except a poll of exited containers the runtime still
            // lists running.
            relist_due = true;
            // Back off while the runtime is down (bounded), otherwise relist on the period,
            // as soon as a worker asks, or as soon as a watched container's exit is recorded.
            let wait = if failures > 0 {
                (self.period * failures.min(5)).min(Duration::from_secs(5))
            } else if !self.exited.is_empty() {
                EXIT_POLL
            } else {
                self.period.saturating_sub(last_relist.elapsed())
            };
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tokio::time::sleep(wait) => {
                    if failures == 0
                        && !self.exited.is_empty()
                        && last_relist.elapsed() < self.period
                    {
                        relist_due = self.exit_recorded().await;
                    }
                }
                _ = self.trigger.0.notify.notified(), if failures == 0 => {
                    let took = last_end.duration_since(last_relist);
                    let resume = last_end + (took * ON_DEMAND_SPACING).min(self.period);
                    tokio::select! {
                        _ = cancel.cancelled() => return,
                        _ = tokio::time::sleep_until(resume.into()) => {}
                    }
                }
                id = self.exits.next_exit(), if failures == 0 => {
                    tracing::debug!(container = %id, "container process exited; relisting");
                    self.exited.insert(id, Instant::now());
                }
            }
        }
    }

    /// One relist; publishes the snapshot (or an unhealthy copy of the previous one) and
    /// returns the count of consecutive failures.
    async fn relist_and_publish(
        &mut self,
        out: &watch::Sender<Arc<RuntimeSnapshot>>,
        mut failures: u32,
    ) -> u32 {
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
        failures
    }

    /// Whether the runtime now records the exit of a polled container (or lost it). Drops
    /// containers polled for longer than [`EXIT_POLL_LIMIT`].
    async fn exit_recorded(&mut self) -> bool {
        self.exited
            .retain(|_, seen| seen.elapsed() < EXIT_POLL_LIMIT);
        let mut oldest: Vec<(&String, &Instant)> = self.exited.iter().collect();
        oldest.sort_by_key(|(_, seen)| **seen);
        let ids: Vec<String> = oldest
            .into_iter()
            .take(EXIT_POLL_BATCH)
            .map(|(id, _)| id.clone())
            .collect();
        let running = cri::ContainerState::ContainerRunning as i32;
        let polls = ids.iter().map(|id| self.cri.container_status(id));
        futures::future::join_all(polls)
            .await
            .into_iter()
            .any(|r| match r {
                Ok(status) => status.state != running,
                Err(err) => err.is_not_found(),
            })
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
            let known = match self.containers.remove(&c.id) {
                Some(known) if known.listed_state == c.state => known,
                _ => match self.inspect_container(c).await {
                    Some(known) => known,
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
            pod.containers.push(known.detail.clone());
            if let Some(pid) = known.pid
                && c.state == cri::ContainerState::ContainerRunning as i32
            {
                self.exits.watch(&c.id, pid);
            }
            live_containers.insert(c.id.clone(), known);
        }
        self.containers = live_containers;
        let running = cri::ContainerState::ContainerRunning as i32;
        let still_running = |id: &str, known: &HashMap<String, Known>| {
            known.get(id).is_some_and(|k| k.listed_state == running)
        };
        self.exits.retain(|id| still_running(id, &self.containers));
        self.exited
            .retain(|id, _| still_running(id, &self.containers));

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
                    _ => {
                        // Kept until the pod changes: without the room `push` left
                        // (four entries at least, ~1 KiB for the containers).
                        pod.sandboxes.shrink_to_fit();
                        pod.containers.shrink_to_fit();
                        Arc::new(pod)
                    }
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
        if let Some(ips) = self.trigger.take_sandbox_ips(&sb.id) {
            return ips;
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

    /// The details of a container whose listed state changed. A created container has
    /// none beyond the list (no start, no exit), so the runtime is asked only once it runs
    /// (start time, and the pid to watch) and once it exited (exit code, reason).
    async fn inspect_container(&self, c: &cri::Container) -> Option<Known> {
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
        let mut pid = None;
        if c.state != cri::ContainerState::ContainerCreated as i32 {
            let status = if c.state == cri::ContainerState::ContainerRunning as i32 {
                self.cri.container_status_with_pid(&c.id).await
            } else {
                self.cri.container_status(&c.id).await.map(|s| (s, None))
            };
            match status {
                Ok((s, p)) => {
                    pid = p;
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
                Err(err) => {
                    tracing::debug!(container = %c.id, error = %err, "ContainerStatus failed")
                }
            }
        }
        Some(Known {
            listed_state: c.state,
            detail,
            pid,
        })
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
