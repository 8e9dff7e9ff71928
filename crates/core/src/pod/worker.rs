//! One task per pod UID. It makes the runtime match the pod (sandbox, images, volumes,
//! containers), records the pod's status, and on termination stops everything within the
//! grace period and removes what the kubelet owns for that pod.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Container, Pod};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::cm::CgroupLayout;
use crate::pleg::RelistTrigger;
use crate::runtime::actions::{self, ContainerKind, PodActions, backoff_key};
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
    Terminate { pod: Arc<Pod>, grace_seconds: Option<i64> },
}

/// Shared by every worker: clients and node settings. Read-only.
pub struct WorkerContext {
    pub cri: CriClient,
    pub pull_cri: CriClient,
    pub sandbox: SandboxSettings,
    pub container: ContainerSettings,
    pub root_dir: PathBuf,
    pub cgroups: CgroupLayout,
    pub relist: RelistTrigger,
    pub statuses: StatusStore,
}

pub struct PodWorker {
    uid: String,
    ctx: Arc<WorkerContext>,
    target: watch::Receiver<Target>,
    snapshots: watch::Receiver<Arc<RuntimeSnapshot>>,
    backoff: Backoff,
    images: ImagePuller,
    notes: WorkerNotes,
}

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
        let images = ImagePuller::new(ctx.cri.clone(), ctx.pull_cri.clone());
        PodWorker {
            uid,
            ctx,
            target,
            snapshots,
            backoff: Backoff::containers(),
            images,
            notes: WorkerNotes::default(),
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
                Target::Terminate { pod, grace_seconds } => {
                    return self.terminate(&pod, grace_seconds, &shutdown).await;
                }
                Target::Run(pod) => {
                    let snapshot = self.snapshots.borrow_and_update().clone();
                    if snapshot.healthy {
                        let observed = snapshot.pod(&self.uid).cloned();
                        let (acted, next) = self.sync(&pod, observed.as_deref()).await;
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
    async fn sync(&mut self, pod: &Pod, observed: Option<&ObservedPod>) -> (bool, Option<Duration>) {
        if self.notes.start_time_ns == 0 {
            self.notes.start_time_ns = now_ns();
        }
        let now = now_ns();
        let plan = actions::compute(pod, observed, &self.backoff, now);
        let acted = self.execute(pod, observed, &plan).await;
        self.notes.init_failed = plan.init_failed;
        let mut next_wake: Option<i64> = None;
        for waiting in &plan.backing_off {
            let container = find_container(pod, &waiting.name);
            let delay = container
                .and_then(|c| self.backoff.current(&backoff_key(c)))
                .unwrap_or(Duration::from_secs(10));
            self.notes.waiting.insert(
                waiting.name.clone(),
                Waiting {
                    reason: "CrashLoopBackOff".into(),
                    message: format!(
                        "back-off {} restarting failed container={} pod={}",
                        humantime(delay),
                        waiting.name,
                        pod_ref(pod)
                    ),
                },
            );
            next_wake = Some(next_wake.map_or(waiting.until_ns, |w| w.min(waiting.until_ns)));
        }
        let status = status::compute(pod, observed, &self.notes, &self.ctx.container.host_ips);
        let terminal = matches!(status.phase.as_deref(), Some("Succeeded") | Some("Failed"));
        self.ctx.statuses.set(pod, status);
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
        let backoff_wake = next_wake.map(|ns| Duration::from_nanos((ns - now_ns()).max(0) as u64 + 1_000_000));
        let next = match (retry_errors, backoff_wake) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        (acted, next)
    }

    /// Carry out the plan; returns whether anything in the runtime changed.
    async fn execute(&mut self, pod: &Pod, observed: Option<&ObservedPod>, plan: &PodActions) -> bool {
        let mut acted = false;
        let grace = crate::runtime::labels::termination_grace_seconds(pod);
        if plan.kill_pod
            && let Some(o) = observed
        {
            self.stop_all(o, grace).await;
            acted = true;
        }
        for kill in &plan.kill {
            tracing::info!(pod = %pod_ref(pod), container = %kill.name, reason = %kill.reason, "killing container");
            if let Err(err) = self.ctx.cri.stop_container(&kill.id, grace).await {
                tracing::warn!(pod = %pod_ref(pod), container = %kill.name, error = %err, "failed to stop container");
            }
            let _ = self.ctx.cri.remove_container(&kill.id).await;
            acted = true;
        }
        if plan.start.is_empty() {
            return acted;
        }

        let (sandbox_id, pod_ips) = match (plan.create_sandbox, &plan.sandbox_id) {
            (Some(attempt), _) => match self.create_sandbox(pod, attempt).await {
                Some(created) => {
                    acted = true;
                    created
                }
                None => return true,
            },
            (None, Some(id)) => {
                let ips = observed
                    .and_then(|o| o.sandboxes.iter().find(|s| &s.id == id))
                    .map(|s| s.ips.clone())
                    .unwrap_or_default();
                (id.clone(), ips)
            }
            (None, None) => return acted,
        };
        let volumes = match volume::prepare(&self.ctx.root_dir, pod) {
            Ok(v) => v,
            Err(err) => {
                tracing::error!(pod = %pod_ref(pod), error = %err, "failed to set up volumes");
                for start in &plan.start {
                    if let Some(c) = spec_container(pod, start.kind, start.index) {
                        self.notes.waiting.insert(
                            c.name.clone(),
                            Waiting { reason: "CreateContainerConfigError".into(), message: err.clone() },
                        );
                    }
                }
                return acted;
            }
        };
        let sandbox_cfg = sandbox_config(pod, 0, &self.ctx.sandbox);
        for start in &plan.start {
            let Some(container) = spec_container(pod, start.kind, start.index) else { continue };
            let restart_count = observed
                .and_then(|o| o.latest_container(&container.name))
                .map(|c| c.restart_count + 1)
                .unwrap_or(0);
            if start.is_restart {
                self.backoff.next(&backoff_key(container), now_ns());
            }
            match self
                .start_container(pod, container, &sandbox_id, &sandbox_cfg, &pod_ips, &volumes, restart_count)
                .await
            {
                Ok(()) => {
                    self.notes.waiting.remove(&container.name);
                    acted = true;
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
        if let Err(err) = std::fs::create_dir_all(&config.log_directory) {
            tracing::warn!(pod = %pod_ref(pod), dir = %config.log_directory, error = %err, "cannot create pod log directory");
        }
        match self.ctx.cri.run_pod_sandbox(config).await {
            Ok(id) => {
                tracing::info!(pod = %pod_ref(pod), sandbox = %id, attempt, "created pod sandbox");
                let ips = match self.ctx.cri.pod_sandbox_status(&id).await {
                    Ok(s) => s
                        .network
                        .map(|n| std::iter::once(n.ip).chain(n.additional_ips.into_iter().map(|i| i.ip)).filter(|ip| !ip.is_empty()).collect())
                        .unwrap_or_default(),
                    Err(_) => Vec::new(),
                };
                Some((id, ips))
            }
            Err(err) => {
                tracing::error!(pod = %pod_ref(pod), error = %err, "failed to create pod sandbox");
                for c in pod.spec.iter().flat_map(|s| s.containers.iter()) {
                    self.notes.waiting.insert(
                        c.name.clone(),
                        Waiting { reason: "ContainerCreating".into(), message: format!("failed to create pod sandbox: {}", err.message()) },
                    );
                }
                None
            }
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
    ) -> Result<(), Waiting> {
        let image_ref = self.images.ensure(container).await.map_err(|e| Waiting {
            reason: e.reason.to_string(),
            message: e.message,
        })?;
        let inputs = ContainerInputs { pod, container, image_ref: &image_ref, restart_count, pod_ips, volumes };
        let config = container_config(&inputs, &self.ctx.container).map_err(|message| Waiting {
            reason: "CreateContainerConfigError".into(),
            message,
        })?;
        let id = self
            .ctx
            .cri
            .create_container(sandbox_id, config, sandbox_cfg.clone())
            .await
            .map_err(|e| Waiting { reason: "CreateContainerError".into(), message: e.message() })?;
        if let Err(err) = self.ctx.cri.start_container(&id).await {
            return Err(Waiting { reason: "RunContainerError".into(), message: err.message() });
        }
        tracing::info!(pod = %pod_ref(pod), container = %container.name, id = %id, restart_count, "started container");
        Ok(())
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

    async fn stop_all(&self, observed: &ObservedPod, grace: i64) {
        let stops = observed
            .running_containers()
            .map(|c| async move {
                if let Err(err) = self.ctx.cri.stop_container(&c.id, grace).await
                    && !err.is_not_found()
                {
                    tracing::warn!(container = %c.id, error = %err, "failed to stop container");
                }
            })
            .collect::<Vec<_>>();
        futures::future::join_all(stops).await;
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
    async fn terminate(&mut self, pod: &Pod, grace_override: Option<i64>, shutdown: &CancellationToken) -> bool {
        let grace = grace_override.unwrap_or_else(|| crate::runtime::labels::termination_grace_seconds(pod));
        let mut delay = Duration::from_millis(500);
        loop {
            let snapshot = self.snapshots.borrow_and_update().clone();
            let observed = snapshot.pod(&self.uid).cloned();
            if let Some(o) = observed.as_deref() {
                tracing::info!(pod = %pod_ref(pod), grace_seconds = grace, "terminating pod");
                self.stop_all(o, grace).await;
                let mut failed = false;
                for sb in &o.sandboxes {
                    if let Err(err) = self.ctx.cri.remove_pod_sandbox(&sb.id).await
                        && !err.is_not_found()
                    {
                        tracing::warn!(sandbox = %sb.id, error = %err, "failed to remove sandbox");
                        failed = true;
                    }
                }
                for c in o.containers.iter().filter(|c| !o.sandboxes.iter().any(|s| s.id == c.sandbox_id)) {
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
        self.ctx.statuses.remove(&self.uid);
        self.ctx.relist.request();
        tracing::info!(pod = %pod_ref(pod), "pod removed");
        true
    }

    fn cleanup(&self, pod: &Pod) {
        if let Err(err) = volume::cleanup_pod_dir(&self.ctx.root_dir, &self.uid) {
            tracing::warn!(pod = %pod_ref(pod), error = %err, "failed to clean pod directory");
        }
        let logs = pod_log_dir(&self.ctx.sandbox.pod_logs_dir, pod);
        // Only a directory named after this pod's UID, inside the logs dir, is ever removed.
        if logs.parent() == Some(self.ctx.sandbox.pod_logs_dir.as_path())
            && logs.file_name().is_some_and(|n| n.to_string_lossy().ends_with(&format!("_{}", self.uid)))
            && logs.is_dir()
            && let Err(err) = std::fs::remove_dir_all(&logs)
        {
            tracing::warn!(dir = %logs.display(), error = %err, "failed to remove pod log directory");
        }
        self.ctx.cgroups.remove_pod_cgroups(&self.uid);
    }
}

fn spec_container(pod: &Pod, kind: ContainerKind, index: usize) -> Option<&Container> {
    let spec = pod.spec.as_ref()?;
    match kind {
        ContainerKind::Init => spec.init_containers.as_ref()?.get(index),
        ContainerKind::Regular => spec.containers.get(index),
    }
}

fn find_container<'a>(pod: &'a Pod, name: &str) -> Option<&'a Container> {
    let spec = pod.spec.as_ref()?;
    spec.containers
        .iter()
        .chain(spec.init_containers.iter().flatten())
        .find(|c| c.name == name)
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

/// Go-style short durations ("10s", "1m20s", "5m0s").
fn humantime(d: Duration) -> String {
    let secs = d.as_secs();
    if secs < 60 { format!("{secs}s") } else { format!("{}m{}s", secs / 60, secs % 60) }
}
