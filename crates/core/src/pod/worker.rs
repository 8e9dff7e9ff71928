//! One task per pod UID. It makes the runtime match the pod (sandbox, images, volumes,
//! containers), records the pod's status, and on termination stops everything within the
//! grace period and removes what the kubelet owns for that pod.

use std::borrow::Cow;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Container, Pod};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::cm::CgroupLayout;
use crate::events::{EventType, PodEvent};
use crate::lifecycle::{self, Kill};
use crate::pleg::RelistTrigger;
use crate::prober::{ProbeManager, Target as ProbeTarget};
use crate::runtime::actions::{
    self, ContainerKind, PodActions, backoff_key, ephemeral_as_container,
};
use crate::runtime::backoff::Backoff;
use crate::runtime::container::{ContainerInputs, ContainerSettings, container_config};
use crate::runtime::cri::CriClient;
use crate::runtime::images::ImagePuller;
use crate::runtime::model::{ContainerState, ObservedPod, RuntimeSnapshot, now_ns};
use crate::runtime::sandbox::{SandboxSettings, pod_log_dir, sandbox_config};
use crate::status::{self, Waiting, WorkerNotes, store::StatusStore};
use crate::volume;

/// What the pod worker is asked to do.
#[derive(Clone, Debug)]
pub enum Target {
    Run(Arc<Pod>),
    /// Stop and remove the pod; `grace_seconds` overrides the pod's own period.
    Terminate {
        pod: Arc<Pod>,
        grace_seconds: Option<i64>,
        /// Set when the kubelet itself ends a pod that stays configured (eviction, node
        /// shutdown; see `pod::kill`): the status the pod keeps once its containers are
        /// gone, instead of being forgotten.
        final_status: Option<Arc<k8s_openapi::api::core::v1::PodStatus>>,
    },
}

/// Shared by every worker: clients and node settings. Read-only.
pub struct WorkerContext {
    pub cri: CriClient,
    pub pull_cri: CriClient,
    /// Node-wide image pull limits (serializeImagePulls, registryPullQPS, ...).
    pub pull_limits: Arc<crate::runtime::pull_limits::PullLimits>,
    pub sandbox: SandboxSettings,
    pub container: ContainerSettings,
    pub root_dir: PathBuf,
    pub cgroups: CgroupLayout,
    /// The burstable/besteffort QoS cgroups, kept in step with the active pods.
    pub qos: Arc<crate::cm::qos::QosCgroups>,
    /// podPidsLimit (<= 0: unlimited).
    pub pod_pids_limit: i64,
    pub relist: RelistTrigger,
    pub statuses: StatusStore,
    /// ConfigMaps, Secrets, tokens and Services (cluster mode; `None` standalone).
    pub api: Option<Arc<dyn crate::objects::ApiObjects>>,
    /// Where pod events go (`events::no_events()` standalone).
    pub events: Arc<dyn crate::events::EventSink>,
    /// Standalone mode: RuntimeClass name -> CRI handler (`--runtime-class-handlers`).
    /// Cluster mode resolves RuntimeClasses through `api`.
    pub runtime_class_handlers: std::collections::BTreeMap<String, String>,
}

pub struct PodWorker {
    uid: String,
    ctx: Arc<WorkerContext>,
    target: watch::Receiver<Target>,
    snapshots: watch::Receiver<Arc<RuntimeSnapshot>>,
    backoff: Backoff,
    images: ImagePuller,
    notes: WorkerNotes,
    /// Probe tasks of the running containers; results wake the worker.
    probes: ProbeManager,
    probe_changes: watch::Receiver<u64>,
    /// What the pod references from the API server, fetched before starting containers.
    api_data: Option<crate::objects::PodApiData>,
    /// Bumped when a watched ConfigMap/Secret changes: volumes are refreshed.
    api_changes: Option<watch::Receiver<u64>>,
    /// The last volume refresh error reported as an event (not repeated).
    last_mount_error: Option<String>,
}

/// Backoff key for sandbox creation (no container is named like this: names are DNS labels).
const SANDBOX_BACKOFF_KEY: &str = "\u{0}sandbox";
const SETTLE_TIMEOUT: Duration = Duration::from_secs(2);
/// Re-check a pod at least this often even without events (upstream syncFrequency is 1m;
/// the dispatcher has no periodic resync of its own).
const RESYNC: Duration = Duration::from_secs(60);

impl PodWorker {
    pub fn new(
        uid: String,
        ctx: Arc<WorkerContext>,
        target: watch::Receiver<Target>,
        snapshots: watch::Receiver<Arc<RuntimeSnapshot>>,
    ) -> Self {
        let images = ImagePuller::new(
            ctx.cri.clone(),
            ctx.pull_cri.clone(),
            ctx.pull_limits.clone(),
        );
        let probes = ProbeManager::new(ctx.cri.clone(), ctx.events.clone());
        let probe_changes = probes.subscribe();
        let api_changes = ctx.api.as_ref().map(|a| a.changes());
        PodWorker {
            uid,
            ctx,
            target,
            snapshots,
            backoff: Backoff::containers(),
            images,
            notes: WorkerNotes::default(),
            probes,
            probe_changes,
            api_data: None,
            api_changes,
            last_mount_error: None,
        }
    }

    /// Runs until the pod is terminated (returns true) or the kubelet shuts down (false).
    pub async fn run(mut self, shutdown: CancellationToken) -> bool {
        let mut seen: Option<Arc<ObservedPod>> = None;
        let mut seen_healthy;
        let mut wake_after = RESYNC;
        loop {
            let target = self.target.borrow_and_update().clone();
            match target {
                Target::Terminate {
                    pod,
                    grace_seconds,
                    final_status,
                } => {
                    // Boxed, as the sync pass below: a task's future is allocated for
                    // its whole life at the size of its largest await, and these (CRI
                    // calls, hooks, image pulls) are far larger than the idle wait.
                    return Box::pin(self.terminate(&pod, grace_seconds, final_status, &shutdown))
                        .await;
                }
                Target::Run(pod) => {
                    let snapshot = self.snapshots.borrow_and_update().clone();
                    self.probe_changes.borrow_and_update();
                    if snapshot.healthy {
                        let observed = snapshot.pod(&self.uid).cloned();
                        let (acted, next) = Box::pin(self.sync(&pod, observed.as_deref())).await;
                        wake_after = next.unwrap_or(RESYNC).min(RESYNC);
                        if acted {
                            // See the effect before deciding again: only a relist that
                            // started after the actions finished shows it (one started by
                            // another worker mid-way may show a created, unstarted container).
                            let acted_at = now_ns();
                            self.ctx.relist.request();
                            let _ = tokio::time::timeout(
                                SETTLE_TIMEOUT,
                                self.snapshots.wait_for(|s| s.taken_at_ns >= acted_at),
                            )
                            .await;
                            continue;
                        }
                        seen = observed;
                    }
                    seen_healthy = snapshot.healthy;
                }
            }
            // Sleep until something relevant to this pod changes.
            let sleep = tokio::time::sleep(wake_after);
            tokio::pin!(sleep);
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => return false,
                    changed = self.target.changed() => {
                        if changed.is_err() { return false; }
                        break;
                    }
                    // A ConfigMap, Secret or token changed: refresh the volumes.
                    _ = api_changed(&mut self.api_changes) => break,
                    // A probe result changed (readiness, or a liveness failure to act on).
                    changed = self.probe_changes.changed() => {
                        if changed.is_err() { return false; }
                        break;
                    }
                    changed = self.snapshots.changed() => {
                        if changed.is_err() { return false; }
                        let snap = self.snapshots.borrow();
                        let now = snap.pod(&self.uid);
                        let same = match (&seen, now) {
                            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
                            (None, None) => true,
                            _ => false,
                        };
                        if !same || snap.healthy != seen_healthy { break; }
                    }
                    _ = &mut sleep => break,
                }
            }
        }
    }

    /// One pass. Returns whether the runtime was changed, and when to look again.
    async fn sync(
        &mut self,
        pod: &Arc<Pod>,
        observed: Option<&ObservedPod>,
    ) -> (bool, Option<Duration>) {
        let now = now_ns();
        if self.notes.start_time_ns == 0 {
            // After a kubelet restart the pod started when its first sandbox did.
            let first_sandbox = observed.and_then(|o| {
                o.sandboxes
                    .iter()
                    .map(|s| s.created_at)
                    .filter(|t| *t > 0)
                    .min()
            });
            self.notes.start_time_ns = first_sandbox.map_or(now, |t| t.min(now));
        }
        self.refresh_api_volumes(pod, observed).await;
        let deadline = active_deadline_ns(pod, self.notes.start_time_ns);
        if deadline.is_some_and(|d| now >= d) && !self.notes.deadline_exceeded {
            tracing::info!(pod = %pod_ref(pod), "pod was active on the node longer than its activeDeadlineSeconds; stopping it");
            self.notes.deadline_exceeded = true;
        }
        let plan = if self.notes.deadline_exceeded {
            // Past activeDeadlineSeconds: everything stops and nothing restarts.
            self.probes.stop_all();
            PodActions {
                kill_pod: observed.is_some_and(|o| {
                    o.running_containers().next().is_some() || o.sandboxes.iter().any(|s| s.ready)
                }),
                ..PodActions::default()
            }
        } else {
            actions::compute_with(pod, observed, &self.backoff, now, &self.probes.health())
        };
        let acted = self.execute(pod, observed, &plan).await;
        self.notes.init_failed = plan.init_failed;
        self.collect_termination_messages(observed).await;
        let pod_ip = self.pod_ip(pod, observed);
        if !self.notes.deadline_exceeded {
            self.probes.sync(pod, observed, pod_ip.as_deref());
            // After a kubelet restart: the first results of adopted containers' probes.
            self.probes
                .settle_adopted(crate::prober::manager::ADOPTED_SETTLE_LIMIT)
                .await;
        }
        self.notes.probes = self.probes.states();
        let mut next_wake: Option<i64> = None;
        for waiting in &plan.backing_off {
            let container = find_container(pod, &waiting.name);
            let delay = container
                .and_then(|c| self.backoff.current(&backoff_key(&c)))
                .unwrap_or(Duration::from_secs(10));
            self.notes.waiting.insert(
                waiting.name.clone(),
                Waiting {
                    reason: "CrashLoopBackOff".into(),
                    message: format!(
                        "back-off {} restarting failed container={} pod={}",
                        kubelet_primitives::duration::format(delay),
                        waiting.name,
                        pod_ref(pod)
                    ),
                },
            );
            self.event_for(
                pod,
                &waiting.name,
                EventType::Warning,
                "BackOff",
                format!(
                    "Back-off restarting failed container {} in pod {}",
                    waiting.name,
                    pod_ref(pod)
                ),
            );
            next_wake = Some(next_wake.map_or(waiting.until_ns, |w| w.min(waiting.until_ns)));
        }
        let status = status::compute(pod, observed, &self.notes, &self.ctx.container.host_ips);
        let terminal = matches!(status.phase.as_deref(), Some("Succeeded") | Some("Failed"));
        if terminal {
            // A finished pod is probed no more (upstream stops its probe workers).
            self.probes.stop_all();
        }
        if let Some(secs) = status::start::start_duration(
            pod,
            self.notes.last_phase.as_deref(),
            status.phase.as_deref(),
            now_ns(),
        ) && let Some(metrics) = self.ctx.cri.metrics()
        {
            metrics.pods.start_duration.observe(secs);
        }
        self.notes.last_phase = status.phase.clone();
        self.ctx.statuses.set(pod, status);
        self.ctx.qos.track(pod, !terminal);
        self.backoff.gc(now);
        if terminal && !acted {
            self.stop_finished_sandbox(observed).await;
        }
        // Image pull errors are retried on a short period; the puller itself backs off.
        let retry_errors = self
            .notes
            .waiting
            .values()
            .any(|w| w.reason != "CrashLoopBackOff")
            .then_some(Duration::from_secs(2));
        let backoff_wake =
            next_wake.map(|ns| Duration::from_nanos((ns - now_ns()).max(0) as u64 + 1_000_000));
        let deadline_wake = deadline
            .filter(|_| !self.notes.deadline_exceeded)
            .map(|ns| Duration::from_nanos((ns - now_ns()).max(0) as u64 + 1_000_000));
        let next = [retry_errors, backoff_wake, deadline_wake]
            .into_iter()
            .flatten()
            .min();
        (acted, next)
    }

    /// The pod's primary IP: the sandbox's, or the node's for host-network pods.
    fn pod_ip(&self, pod: &Pod, observed: Option<&ObservedPod>) -> Option<String> {
        observed
            .and_then(|o| o.latest_sandbox())
            .and_then(|s| s.ips.first().cloned())
            .or_else(|| {
                crate::runtime::sandbox::host_network(pod)
                    .then(|| self.ctx.container.host_ips.first().cloned())
                    .flatten()
            })
    }

    /// Read the termination message of every container that exited since the last pass
    /// (once per container), and forget those the runtime no longer has.
    async fn collect_termination_messages(&mut self, observed: Option<&ObservedPod>) {
        let Some(o) = observed else {
            self.notes.termination_messages.clear();
            return;
        };
        self.notes
            .termination_messages
            .retain(|id, _| o.containers.iter().any(|c| &c.id == id));
        for c in o
            .containers
            .iter()
            .filter(|c| c.state == ContainerState::Exited)
        {
            if self.notes.termination_messages.contains_key(&c.id) {
                continue;
            }
            let exit = lifecycle::termination::Exit {
                container_id: &c.id,
                exit_code: c.exit_code,
                reason: &c.reason,
                message: &c.message,
            };
            if let Some(message) = lifecycle::termination::message(&self.ctx.cri, &exit).await {
                self.notes
                    .termination_messages
                    .insert(c.id.clone(), message);
            }
        }
    }

    /// Carry out the plan; returns whether anything in the runtime changed.
    async fn execute(
        &mut self,
        pod: &Pod,
        observed: Option<&ObservedPod>,
        plan: &PodActions,
    ) -> bool {
        let mut acted = false;
        self.images.forget_present();
        let grace = crate::runtime::labels::termination_grace_seconds(pod);
        if plan.kill_pod
            && let Some(o) = observed
        {
            self.stop_all(pod, o, grace).await;
            acted = true;
        }
        let pod_ip = self.pod_ip(pod, observed);
        for kill in &plan.kill {
            let spec = find_container(pod, &kill.name).map(Cow::into_owned);
            let in_spec = spec.is_some();
            let k = Kill {
                container_id: kill.id.clone(),
                name: kill.name.clone(),
                spec,
                grace_seconds: kill.grace_override.unwrap_or(grace),
                message: kill.reason.clone(),
            };
            let no_turn: Option<std::future::Ready<()>> = None;
            self.event_for(
                pod,
                &kill.name,
                EventType::Normal,
                "Killing",
                kill.reason.clone(),
            );
            // Boxed, as the hook and API calls below: rare, and large (preStop and
            // postStart hooks make HTTP or exec calls); inline they would size the
            // boxed sync pass of every pod that starts.
            if let Err(err) = Box::pin(lifecycle::kill_container(
                &self.ctx.cri,
                self.ctx.events.as_ref(),
                pod,
                &k,
                pod_ip.as_deref(),
                no_turn,
            ))
            .await
            {
                tracing::warn!(pod = %pod_ref(pod), container = %kill.name, error = %err, "failed to stop container");
            }
            // A container the spec lost goes at once; a killed one stays as the last
            // state of its successor (restart count, back-off, `previous` logs).
            if !in_spec {
                let _ = self.ctx.cri.remove_container(&kill.id).await;
            }
            acted = true;
        }
        if plan.start.is_empty() {
            return acted;
        }

        let (sandbox_id, pod_ips) = match (plan.create_sandbox, &plan.sandbox_id) {
            (Some(attempt), _) => {
                // A failing RunPodSandbox is retried with backoff (10s doubling to 5 min),
                // like upstream's pod worker requeue, not on every pass.
                let now = now_ns();
                let last_failure = self.backoff.last_update(SANDBOX_BACKOFF_KEY).unwrap_or(now);
                if self
                    .backoff
                    .in_backoff_since(SANDBOX_BACKOFF_KEY, last_failure, now)
                    .is_some()
                {
                    return acted;
                }
                // The images are looked up while the sandbox is created: one round trip
                // less between the sandbox and its first container.
                let cri = self.ctx.cri.clone();
                let to_start: Vec<Cow<'_, Container>> = plan
                    .start
                    .iter()
                    .filter_map(|s| spec_container(pod, s.kind, s.index))
                    .collect();
                let to_start: Vec<&Container> = to_start.iter().map(|c| c.as_ref()).collect();
                let (created, present) = tokio::join!(
                    self.create_sandbox(pod, attempt),
                    ImagePuller::find_present(&cri, &to_start)
                );
                self.images.remember_present(present);
                match created {
                    Some(created) => {
                        acted = true;
                        created
                    }
                    None => {
                        self.backoff.next(SANDBOX_BACKOFF_KEY, now_ns());
                        return acted;
                    }
                }
            }
            (None, Some(id)) => {
                let ips = observed
                    .and_then(|o| o.sandboxes.iter().find(|s| &s.id == id))
                    .map(|s| s.ips.clone())
                    .unwrap_or_default();
                (id.clone(), ips)
            }
            (None, None) => return acted,
        };
        self.api_data = match self.ctx.api.clone() {
            Some(api) => Some(Box::pin(crate::objects::prefetch(api.as_ref(), pod, true)).await),
            None => None,
        };
        let volumes = match volume::prepare_with(
            &self.ctx.root_dir,
            pod,
            self.api_data.as_ref(),
            &self.ctx.container.node,
        ) {
            Ok(v) => v,
            Err(err) => {
                tracing::error!(pod = %pod_ref(pod), error = %err, "failed to set up volumes");
                self.ctx.events.record(PodEvent::new(
                    pod,
                    EventType::Warning,
                    "FailedMount",
                    err.clone(),
                ));
                for start in &plan.start {
                    if let Some(c) = spec_container(pod, start.kind, start.index) {
                        self.notes.waiting.insert(
                            c.name.clone(),
                            Waiting {
                                reason: "CreateContainerConfigError".into(),
                                message: err.clone(),
                            },
                        );
                    }
                }
                return acted;
            }
        };
        let sandbox_cfg = sandbox_config(pod, 0, &self.ctx.sandbox);
        let hook_ip = pod_ips.first().cloned().or(pod_ip);
        for start in &plan.start {
            let Some(container) = spec_container(pod, start.kind, start.index) else {
                continue;
            };
            let container = container.as_ref();
            // An ephemeral container may join a running container's process namespace.
            let pid_target = (start.kind == ContainerKind::Ephemeral)
                .then(|| ephemeral_target(pod, start.index))
                .flatten()
                .and_then(|name| {
                    observed?
                        .containers
                        .iter()
                        .find(|c| c.name == name && c.state == ContainerState::Running)
                        .map(|c| c.id.clone())
                });
            let restart_count = observed
                .and_then(|o| o.latest_container(&container.name))
                .map(|c| c.restart_count + 1)
                .unwrap_or(0);
            if start.is_restart {
                self.backoff.next(&backoff_key(container), now_ns());
            }
            match self
                .start_container(
                    pod,
                    container,
                    &sandbox_id,
                    &sandbox_cfg,
                    &pod_ips,
                    &volumes,
                    restart_count,
                    pid_target.as_deref(),
                )
                .await
            {
                Ok(id) => {
                    acted = true;
                    if let Err(waiting) = self
                        .post_start(pod, container, &id, hook_ip.as_deref(), grace)
                        .await
                    {
                        self.notes.waiting.insert(container.name.clone(), waiting);
                        if start.kind == ContainerKind::Init {
                            break;
                        }
                        continue;
                    }
                    self.notes.waiting.remove(&container.name);
                }
                Err(waiting) => {
                    tracing::warn!(pod = %pod_ref(pod), container = %container.name, reason = %waiting.reason, message = %waiting.message, "container not started");
                    self.notes.waiting.insert(container.name.clone(), waiting);
                    // Init containers run strictly in order: do not go on past a failure.
                    if start.kind == ContainerKind::Init {
                        break;
                    }
                }
            }
        }
        if let Some(o) = observed {
            self.prune_dead_containers(o).await;
        }
        acted
    }

    async fn create_sandbox(&mut self, pod: &Pod, attempt: u32) -> Option<(String, Vec<String>)> {
        let config = sandbox_config(pod, attempt, &self.ctx.sandbox);
        let mut limits = crate::cm::pod_limits(
            pod,
            self.ctx.container.cpu_cfs_quota,
            self.ctx.container.cpu_cfs_period_us,
            self.ctx.pod_pids_limit,
        );
        if self.ctx.container.memory.memory_qos.is_none() {
            limits.memory_min = 0;
        }
        // As upstream's SyncPod: no sandbox without its pod cgroup and limits; the sync
        // fails and is retried with the sandbox backoff.
        if let Err(failure) = ensure_pod_cgroup(&self.ctx.cgroups, pod, &limits) {
            tracing::error!(pod = %pod_ref(pod), error = %failure.sync_error, "pod sync failed");
            self.ctx.events.record(PodEvent::new(
                pod,
                EventType::Warning,
                "FailedToCreatePodContainer",
                failure.event,
            ));
            for c in pod.spec.iter().flat_map(|s| s.containers.iter()) {
                self.notes.waiting.insert(
                    c.name.clone(),
                    Waiting {
                        reason: "ContainerCreating".into(),
                        message: failure.sync_error.clone(),
                    },
                );
            }
            return None;
        }
        if let Err(err) = std::fs::create_dir_all(&config.log_directory) {
            tracing::warn!(pod = %pod_ref(pod), dir = %config.log_directory, error = %err, "cannot create pod log directory");
        }
        let handler = match crate::runtime::runtime_class::runtime_handler(
            pod,
            self.ctx.api.as_deref(),
            &self.ctx.runtime_class_handlers,
        )
        .await
        {
            Ok(h) => h,
            Err(err) => {
                self.sandbox_failed(pod, &err);
                return None;
            }
        };
        if !handler.is_empty() {
            tracing::debug!(pod = %pod_ref(pod), runtime_handler = %handler, "running pod with runtime handler");
        }
        match self.ctx.cri.run_pod_sandbox(config, &handler).await {
            Ok(id) => {
                tracing::info!(pod = %pod_ref(pod), sandbox = %id, attempt, "created pod sandbox");
                let ips = match self.ctx.cri.pod_sandbox_status(&id).await {
                    Ok(s) => {
                        let ips: Vec<String> = s
                            .network
                            .map(|n| {
                                std::iter::once(n.ip)
                                    .chain(n.additional_ips.into_iter().map(|i| i.ip))
                                    .filter(|ip| !ip.is_empty())
                                    .collect()
                            })
                            .unwrap_or_default();
                        // The PLEG need not ask again when it first lists this sandbox.
                        self.ctx.relist.sandbox_created(&id, ips.clone());
                        ips
                    }
                    Err(_) => Vec::new(),
                };
                Some((id, ips))
            }
            Err(err) => {
                self.sandbox_failed(pod, &err.grpc_text());
                None
            }
        }
    }

    /// A sandbox that could not be created: upstream's FailedCreatePodSandBox event, and
    /// the containers wait in ContainerCreating with the reason.
    fn sandbox_failed(&mut self, pod: &Pod, err: &str) {
        tracing::error!(pod = %pod_ref(pod), error = %err, "failed to create pod sandbox");
        self.ctx.events.record(PodEvent::new(
            pod,
            EventType::Warning,
            "FailedCreatePodSandBox",
            format!("Failed to create pod sandbox: {err}"),
        ));
        for c in pod.spec.iter().flat_map(|s| s.containers.iter()) {
            self.notes.waiting.insert(
                c.name.clone(),
                Waiting {
                    reason: "ContainerCreating".into(),
                    message: format!("failed to create pod sandbox: {err}"),
                },
            );
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn start_container(
        &mut self,
        pod: &Pod,
        container: &Container,
        sandbox_id: &str,
        sandbox_cfg: &k8s_cri::v1::PodSandboxConfig,
        pod_ips: &[String],
        volumes: &volume::VolumePaths,
        restart_count: u32,
        pid_target: Option<&str>,
    ) -> Result<String, Waiting> {
        let result = self
            .start_container_inner(
                pod,
                container,
                sandbox_id,
                sandbox_cfg,
                pod_ips,
                volumes,
                restart_count,
                pid_target,
            )
            .await;
        match &result {
            Ok(_) => self.event_for(
                pod,
                &container.name,
                EventType::Normal,
                "Started",
                format!("Started container {}", container.name),
            ),
            // Image failures were reported by the puller.
            Err(w) if !IMAGE_REASONS.contains(&w.reason.as_str()) => {
                self.event_for(
                    pod,
                    &container.name,
                    EventType::Warning,
                    "Failed",
                    format!("Error: {}", w.message),
                );
            }
            Err(_) => {}
        }
        result
    }

    #[allow(clippy::too_many_arguments)]
    async fn start_container_inner(
        &mut self,
        pod: &Pod,
        container: &Container,
        sandbox_id: &str,
        sandbox_cfg: &k8s_cri::v1::PodSandboxConfig,
        pod_ips: &[String],
        volumes: &volume::VolumePaths,
        restart_count: u32,
        pid_target: Option<&str>,
    ) -> Result<String, Waiting> {
        let events = self.ctx.events.clone();
        let mut emit = |kind: EventType, reason: &'static str, message: String| {
            events.record(
                PodEvent::new(pod, kind, reason, message).for_container(pod, &container.name),
            );
        };
        let image_ref = self
            .images
            .ensure_with_events(container, &mut emit)
            .await
            .map_err(|e| Waiting {
                reason: e.reason.to_string(),
                message: e.message,
            })?;
        // runAsNonRoot without runAsUser is checked against the image's user.
        let image_user = if crate::runtime::security::wants_non_root(pod, container) {
            match self.ctx.cri.image_status(&image_ref).await {
                Ok(Some(image)) => Some(crate::runtime::security::ImageUser {
                    uid: image.uid.map(|u| u.value),
                    username: image.username,
                }),
                _ => None,
            }
        } else {
            None
        };
        let inputs = ContainerInputs {
            pod,
            container,
            image_ref: &image_ref,
            restart_count,
            pod_ips,
            volumes,
            image_user: image_user.as_ref(),
            api: self.api_data.as_ref(),
        };
        let mut config =
            container_config(&inputs, &self.ctx.container).map_err(|message| Waiting {
                reason: "CreateContainerConfigError".into(),
                message,
            })?;
        if let Some(target) = pid_target
            && let Some(ns) = config
                .linux
                .as_mut()
                .and_then(|l| l.security_context.as_mut())
                .and_then(|sc| sc.namespace_options.as_mut())
        {
            ns.pid = k8s_cri::v1::NamespaceMode::Target as i32;
            ns.target_id = target.to_string();
        }
        let id = self
            .ctx
            .cri
            .create_container(sandbox_id, config, sandbox_cfg.clone())
            .await
            .map_err(|e| Waiting {
                reason: "CreateContainerError".into(),
                message: e.message(),
            })?;
        self.event_for(
            pod,
            &container.name,
            EventType::Normal,
            "Created",
            format!("Created container: {}", container.name),
        );
        if let Err(err) = self.ctx.cri.start_container(&id).await {
            return Err(Waiting {
                reason: "RunContainerError".into(),
                message: err.message(),
            });
        }
        tracing::info!(pod = %pod_ref(pod), container = %container.name, id = %id, restart_count, "started container");
        Ok(id)
    }

    /// Run the container's postStart hook, if any. On failure the container is killed
    /// (reason FailedPostStartHook) and the error is its waiting reason until it restarts.
    async fn post_start(
        &self,
        pod: &Pod,
        container: &Container,
        id: &str,
        pod_ip: Option<&str>,
        grace: i64,
    ) -> Result<(), Waiting> {
        let Some(handler) = container
            .lifecycle
            .as_ref()
            .and_then(|l| l.post_start.as_ref())
        else {
            return Ok(());
        };
        let target = ProbeTarget {
            container: container.clone(),
            container_id: id.to_string(),
            pod_ip: pod_ip.map(str::to_string),
        };
        let Err(message) = Box::pin(lifecycle::run_handler(
            &self.ctx.cri,
            pod,
            &target,
            handler,
            lifecycle::POST_START_LIMIT,
        ))
        .await
        else {
            return Ok(());
        };
        tracing::warn!(pod = %pod_ref(pod), container = %container.name, message = %message, "FailedPostStartHook");
        // As upstream, the message (which may hold secrets) stays out of the event.
        self.event_for(
            pod,
            &container.name,
            EventType::Warning,
            "FailedPostStartHook",
            "PostStartHook failed".into(),
        );
        let kill = Kill {
            container_id: id.to_string(),
            name: container.name.clone(),
            spec: Some(container.clone()),
            grace_seconds: grace,
            message: "FailedPostStartHook".into(),
        };
        let no_turn: Option<std::future::Ready<()>> = None;
        if let Err(err) = Box::pin(lifecycle::kill_container(
            &self.ctx.cri,
            self.ctx.events.as_ref(),
            pod,
            &kill,
            pod_ip,
            no_turn,
        ))
        .await
        {
            tracing::warn!(pod = %pod_ref(pod), container = %container.name, error = %err, "failed to kill container");
        }
        Err(Waiting {
            reason: "PostStartHookError".into(),
            message,
        })
    }

    /// Keep one exited instance per container name (the one `previous` logs read) and the
    /// newest dead sandbox; remove older ones.
    async fn prune_dead_containers(&self, observed: &ObservedPod) {
        let mut kept: HashMap<&str, bool> = HashMap::new();
        for c in &observed.containers {
            if c.state != ContainerState::Exited {
                continue;
            }
            let seen = kept.entry(c.name.as_str()).or_insert(false);
            if *seen {
                let _ = self.ctx.cri.remove_container(&c.id).await;
            }
            *seen = true;
        }
        for sb in observed.sandboxes.iter().filter(|s| !s.ready).skip(1) {
            let _ = self.ctx.cri.remove_pod_sandbox(&sb.id).await;
        }
    }

    /// Stop every running container (preStop hooks, grace period, sidecars last), then
    /// the ready sandboxes.
    async fn stop_all(&self, pod: &Pod, observed: &ObservedPod, grace: i64) {
        let kills = observed
            .running_containers()
            .map(|c| Kill {
                container_id: c.id.clone(),
                name: c.name.clone(),
                spec: find_container(pod, &c.name).map(Cow::into_owned),
                grace_seconds: grace,
                message: format!("Stopping container {}", c.name),
            })
            .collect();
        let pod_ip = self.pod_ip(pod, Some(observed));
        for c in observed.running_containers() {
            self.event_for(
                pod,
                &c.name,
                EventType::Normal,
                "Killing",
                format!("Stopping container {}", c.name),
            );
        }
        for (name, err) in lifecycle::stop_containers(
            &self.ctx.cri,
            self.ctx.events.as_ref(),
            pod,
            kills,
            pod_ip.as_deref(),
        )
        .await
        {
            tracing::warn!(pod = %pod_ref(pod), container = %name, error = %err, "failed to stop container");
        }
        for sb in observed.sandboxes.iter().filter(|s| s.ready) {
            if let Err(err) = self.ctx.cri.stop_pod_sandbox(&sb.id).await
                && !err.is_not_found()
            {
                tracing::warn!(sandbox = %sb.id, error = %err, "failed to stop sandbox");
            }
        }
    }

    async fn stop_finished_sandbox(&self, observed: Option<&ObservedPod>) {
        let Some(o) = observed else { return };
        if o.running_containers().next().is_none() {
            for sb in o.sandboxes.iter().filter(|s| s.ready) {
                tracing::info!(pod_uid = %self.uid, sandbox = %sb.id, "pod finished; stopping its sandbox");
                let _ = self.ctx.cri.stop_pod_sandbox(&sb.id).await;
                self.ctx.relist.request();
            }
        }
    }

    /// Stop containers (grace period), stop and remove sandboxes, then remove the pod's
    /// directories and cgroups. Retries with bounded backoff while the runtime fails.
    async fn terminate(
        &mut self,
        pod: &Arc<Pod>,
        grace_override: Option<i64>,
        final_status: Option<Arc<k8s_openapi::api::core::v1::PodStatus>>,
        shutdown: &CancellationToken,
    ) -> bool {
        let grace = grace_override
            .unwrap_or_else(|| crate::runtime::labels::termination_grace_seconds(pod));
        let mut delay = Duration::from_millis(500);
        // A pod deleted through the API ends with the status its stopped containers left
        // (exit codes); the cluster status manager sends it before the final delete and
        // then drops it.
        let api_deleted = final_status.is_none() && pod.metadata.deletion_timestamp.is_some();
        let mut stopped_status = None;
        loop {
            let snapshot = self.snapshots.borrow_and_update().clone();
            let observed = snapshot.pod(&self.uid).cloned();
            if let Some(o) = observed.as_deref() {
                tracing::info!(pod = %pod_ref(pod), grace_seconds = grace, "terminating pod");
                self.probes.stop_all();
                self.stop_all(pod, o, grace).await;
                if api_deleted && stopped_status.is_none() {
                    stopped_status = Some(self.stopped_status(pod).await);
                }
                let mut failed = false;
                for sb in &o.sandboxes {
                    if let Err(err) = self.ctx.cri.remove_pod_sandbox(&sb.id).await
                        && !err.is_not_found()
                    {
                        tracing::warn!(sandbox = %sb.id, error = %err, "failed to remove sandbox");
                        failed = true;
                    }
                }
                for c in o
                    .containers
                    .iter()
                    .filter(|c| !o.sandboxes.iter().any(|s| s.id == c.sandbox_id))
                {
                    let _ = self.ctx.cri.remove_container(&c.id).await;
                }
                if failed || !snapshot.healthy {
                    tokio::select! {
                        _ = shutdown.cancelled() => return false,
                        _ = tokio::time::sleep(delay) => {}
                    }
                    delay = (delay * 2).min(Duration::from_secs(10));
                    self.ctx.relist.request();
                    continue;
                }
            } else if !snapshot.healthy {
                tokio::select! {
                    _ = shutdown.cancelled() => return false,
                    _ = self.snapshots.changed() => continue,
                }
            }
            break;
        }
        self.cleanup(pod);
        match (final_status, stopped_status) {
            (Some(status), _) => self.ctx.statuses.set(pod, (*status).clone()),
            (None, Some(status)) => self.ctx.statuses.set(pod, status),
            (None, None) => self.ctx.statuses.remove(&self.uid),
        }
        self.ctx.relist.request();
        tracing::info!(pod = %pod_ref(pod), "pod removed");
        true
    }

    /// The status after the containers were stopped, from a relist started after the stop.
    async fn stopped_status(&mut self, pod: &Pod) -> k8s_openapi::api::core::v1::PodStatus {
        let stopped_at = now_ns();
        self.ctx.relist.request();
        let _ = tokio::time::timeout(
            SETTLE_TIMEOUT,
            self.snapshots.wait_for(|s| s.taken_at_ns >= stopped_at),
        )
        .await;
        let snapshot = self.snapshots.borrow_and_update().clone();
        status::compute(
            pod,
            snapshot.pod(&self.uid).map(|p| p.as_ref()),
            &self.notes,
            &self.ctx.container.host_ips,
        )
    }

    fn cleanup(&self, pod: &Pod) {
        if let Err(err) = volume::cleanup_pod_dir(&self.ctx.root_dir, &self.uid) {
            tracing::warn!(pod = %pod_ref(pod), error = %err, "failed to clean pod directory");
        }
        let logs = pod_log_dir(&self.ctx.sandbox.pod_logs_dir, pod);
        // Only a directory named after this pod's UID, inside the logs dir, is ever removed.
        if logs.parent() == Some(self.ctx.sandbox.pod_logs_dir.as_path())
            && logs
                .file_name()
                .is_some_and(|n| n.to_string_lossy().ends_with(&format!("_{}", self.uid)))
            && logs.is_dir()
            && let Err(err) = std::fs::remove_dir_all(&logs)
            // Gone already (housekeeping removes orphaned log directories too).
            && err.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(dir = %logs.display(), error = %err, "failed to remove pod log directory");
        }
        self.ctx.cgroups.remove_pod_cgroups(&self.uid);
        self.ctx.qos.forget(&self.uid);
    }
}

fn spec_container(pod: &Pod, kind: ContainerKind, index: usize) -> Option<Cow<'_, Container>> {
    let spec = pod.spec.as_ref()?;
    match kind {
        ContainerKind::Init => spec.init_containers.as_ref()?.get(index).map(Cow::Borrowed),
        ContainerKind::Regular => spec.containers.get(index).map(Cow::Borrowed),
        ContainerKind::Ephemeral => spec
            .ephemeral_containers
            .as_ref()?
            .get(index)
            .map(|e| Cow::Owned(ephemeral_as_container(e))),
    }
}

/// Any container of the pod by name: regular, init or ephemeral.
fn find_container<'a>(pod: &'a Pod, name: &str) -> Option<Cow<'a, Container>> {
    let spec = pod.spec.as_ref()?;
    spec.containers
        .iter()
        .chain(spec.init_containers.iter().flatten())
        .find(|c| c.name == name)
        .map(Cow::Borrowed)
        .or_else(|| {
            spec.ephemeral_containers
                .iter()
                .flatten()
                .find(|e| e.name == name)
                .map(|e| Cow::Owned(ephemeral_as_container(e)))
        })
}

fn ephemeral_target(pod: &Pod, index: usize) -> Option<String> {
    pod.spec
        .as_ref()?
        .ephemeral_containers
        .as_ref()?
        .get(index)?
        .target_container_name
        .clone()
        .filter(|t| !t.is_empty())
}

/// When the pod must be done by (ns), from activeDeadlineSeconds and its start time.
fn active_deadline_ns(pod: &Pod, start_ns: i64) -> Option<i64> {
    let secs = pod.spec.as_ref()?.active_deadline_seconds?;
    (secs > 0).then(|| start_ns.saturating_add(secs.saturating_mul(1_000_000_000)))
}

/// Waiting reasons of image failures (their events come from the image puller).
const IMAGE_REASONS: &[&str] = &[
    "ErrImagePull",
    "ImagePullBackOff",
    "ErrImageNeverPull",
    "InvalidImageName",
];

/// Resolves when the API objects changed; never, without an API server.
async fn api_changed(rx: &mut Option<watch::Receiver<u64>>) {
    let ok = match rx.as_mut() {
        Some(r) => r.changed().await.is_ok(),
        None => false,
    };
    if ok {
        return;
    }
    *rx = None;
    std::future::pending::<()>().await
}

impl PodWorker {
    fn event_for(
        &self,
        pod: &Pod,
        container: &str,
        kind: EventType,
        reason: &str,
        message: String,
    ) {
        self.ctx
            .events
            .record(PodEvent::new(pod, kind, reason, message).for_container(pod, container));
    }

    /// Cluster mode: rewrite configMap, secret, projected and downwardAPI volumes of a
    /// pod that has a sandbox, so updates and refreshed tokens reach running containers.
    async fn refresh_api_volumes(&mut self, pod: &Pod, observed: Option<&ObservedPod>) {
        let Some(api) = self.ctx.api.clone() else {
            return;
        };
        let has_sandbox = observed.is_some_and(|o| o.latest_sandbox().is_some());
        let refreshable = pod
            .spec
            .iter()
            .flat_map(|s| s.volumes.iter().flatten())
            .any(|v| volume::api_volumes::is_api_volume(v) || v.downward_api.is_some());
        if !has_sandbox || !refreshable {
            return;
        }
        let data = crate::objects::prefetch(api.as_ref(), pod, false).await;
        match volume::refresh(
            &self.ctx.root_dir,
            pod,
            Some(&data),
            &self.ctx.container.node,
        ) {
            Ok(()) => self.last_mount_error = None,
            Err(err) => {
                if self.last_mount_error.as_deref() != Some(err.as_str()) {
                    tracing::warn!(pod = %pod_ref(pod), error = %err, "failed to refresh volumes");
                    self.ctx.events.record(PodEvent::new(
                        pod,
                        EventType::Warning,
                        "FailedMount",
                        err.clone(),
                    ));
                    self.last_mount_error = Some(err);
                }
            }
        }
    }
}

/// `name_namespace(uid)`, the way upstream names pods in logs.
pub fn pod_ref(pod: &Pod) -> String {
    format!(
        "{}_{}({})",
        pod.metadata.name.as_deref().unwrap_or_default(),
        pod.metadata.namespace.as_deref().unwrap_or_default(),
        pod.metadata.uid.as_deref().unwrap_or_default()
    )
}

/// Why a pod's sync failed on its cgroup: upstream's event message and sync error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PodCgroupFailure {
    pub event: String,
    pub sync_error: String,
}

/// Create or update the pod cgroup with its limits (cgroupsPerQOS). A failure fails the
/// pod's sync, as upstream: the sandbox must not start outside its limits.
pub(crate) fn ensure_pod_cgroup(
    cgroups: &CgroupLayout,
    pod: &Pod,
    limits: &crate::cm::PodLimits,
) -> Result<(), PodCgroupFailure> {
    cgroups.ensure_pod_cgroup(pod, limits).map_err(|err| {
        let uid = pod.metadata.uid.as_deref().unwrap_or_default();
        PodCgroupFailure {
            event: format!("unable to ensure pod container exists: {err}"),
            sync_error: format!(
                "failed to ensure that the pod: {uid} cgroups exist and are correctly applied: {err}"
            ),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cm::{CgroupHost, CgroupMount};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn pod() -> Pod {
        Pod {
            metadata: ObjectMeta {
                uid: Some("uid-1".into()),
                name: Some("web".into()),
                namespace: Some("default".into()),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    /// A cgroup v1 hierarchy "mounted" under a regular file: no cgroup can be created.
    fn broken_layout(dir: &std::path::Path, per_qos: bool) -> CgroupLayout {
        let blocker = dir.join("not-a-directory");
        std::fs::write(&blocker, "").unwrap();
        CgroupLayout::on_host(
            per_qos,
            "/",
            false,
            CgroupHost {
                mounts: vec![CgroupMount {
                    path: blocker.join("cpu"),
                    options: Some(vec!["cpu".into()]),
                }],
                page_sizes: Vec::new(),
            },
        )
    }

    #[test]
    fn a_pod_cgroup_that_cannot_be_created_fails_the_sync() {
        let dir = tempfile::tempdir().unwrap();
        let pod = pod();
        let limits = crate::cm::pod_limits(&pod, true, 100_000, 0);
        let failure = ensure_pod_cgroup(&broken_layout(dir.path(), true), &pod, &limits)
            .expect_err("the cgroup cannot be created");
        assert!(
            failure
                .sync_error
                .starts_with("failed to ensure that the pod: uid-1 cgroups exist and are correctly applied: creating cgroup "),
            "{}",
            failure.sync_error
        );
        assert!(
            failure
                .event
                .starts_with("unable to ensure pod container exists: "),
            "{}",
            failure.event
        );
    }

    #[test]
    fn the_pod_cgroup_is_written_where_it_can_be_and_skipped_without_cgroups_per_qos() {
        let dir = tempfile::tempdir().unwrap();
        let pod = pod();
        let limits = crate::cm::pod_limits(&pod, true, 100_000, 0);
        // cgroupsPerQOS false: no pod cgroup, nothing to fail.
        assert_eq!(
            ensure_pod_cgroup(&broken_layout(dir.path(), false), &pod, &limits),
            Ok(())
        );
        let ok = CgroupLayout::on_host(
            true,
            "/",
            false,
            CgroupHost {
                mounts: vec![CgroupMount {
                    path: dir.path().join("cpu"),
                    options: Some(vec!["cpu".into()]),
                }],
                page_sizes: Vec::new(),
            },
        );
        assert_eq!(ensure_pod_cgroup(&ok, &pod, &limits), Ok(()));
    }
}
