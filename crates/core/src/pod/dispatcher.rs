//! The sync loop: keeps one worker per pod UID. Desired pods get a worker; workers whose
//! pod is no longer desired are told to terminate; runtime pods nobody wants (orphans,
//! e.g. after a restart with fewer manifests) are terminated once every source has
//! reported, so a restart never kills pods whose manifest simply has not been read yet.

use std::collections::HashMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kubelet_source::DesiredPods;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::worker::{PodWorker, Target, WorkerContext};
use crate::cm::admission::{self, Allocatable};
use crate::runtime::model::{ObservedPod, RuntimeSnapshot};

struct WorkerHandle {
    target: watch::Sender<Target>,
    terminating: bool,
}

pub struct Dispatcher {
    ctx: Arc<WorkerContext>,
    desired: watch::Receiver<DesiredPods>,
    snapshots: watch::Receiver<Arc<RuntimeSnapshot>>,
    /// False for --runonce: never remove pods the kubelet was not given.
    remove_orphans: bool,
    admission: AdmissionPolicy,
    workers: HashMap<String, WorkerHandle>,
    /// Pods refused at admission: never started; their status says why.
    rejected: std::collections::HashSet<String>,
}

/// What pods are admitted against.
#[derive(Debug, Clone)]
pub struct AdmissionPolicy {
    pub allocatable: Allocatable,
    pub allowed_unsafe_sysctls: Vec<String>,
}

impl Dispatcher {
    pub fn new(
        ctx: Arc<WorkerContext>,
        desired: watch::Receiver<DesiredPods>,
        snapshots: watch::Receiver<Arc<RuntimeSnapshot>>,
        remove_orphans: bool,
        admission: AdmissionPolicy,
    ) -> Self {
        Dispatcher {
            ctx,
            desired,
            snapshots,
            remove_orphans,
            admission,
            workers: HashMap::new(),
            rejected: Default::default(),
        }
    }

    pub async fn run(mut self, shutdown: CancellationToken) {
        let (done_tx, mut done_rx) = mpsc::unbounded_channel::<String>();
        let mut tasks = JoinSet::new();
        loop {
            self.reconcile(&mut tasks, &done_tx, &shutdown);
            tokio::select! {
                _ = shutdown.cancelled() => break,
                changed = self.desired.changed() => if changed.is_err() { break },
                changed = self.snapshots.changed() => if changed.is_err() { break },
                Some(uid) = done_rx.recv() => {
                    self.workers.remove(&uid);
                }
                Some(joined) = tasks.join_next(), if !tasks.is_empty() => {
                    if let Err(err) = joined && err.is_panic() {
                        tracing::error!(error = %err, "a pod worker panicked; it will be restarted");
                    }
                }
            }
        }
        // Workers see the same token and return; pods stay running.
        while tasks.join_next().await.is_some() {}
    }

    fn reconcile(
        &mut self,
        tasks: &mut JoinSet<()>,
        done: &mpsc::UnboundedSender<String>,
        shutdown: &CancellationToken,
    ) {
        let desired = self.desired.borrow_and_update().clone_shallow();
        let snapshot = self.snapshots.borrow_and_update().clone();

        // Workers whose task is gone (panicked) are dropped so they can be re-created.
        self.workers.retain(|_, w| !w.target.is_closed());

        let mut new_pods = Vec::new();
        for (uid, pod) in &desired.pods {
            match self.workers.get_mut(uid) {
                Some(w) if !w.terminating => {
                    let changed =
                        matches!(&*w.target.borrow(), Target::Run(old) if !Arc::ptr_eq(old, pod));
                    if changed {
                        w.target.send_replace(Target::Run(pod.clone()));
                    }
                }
                Some(_) => {} // still terminating an earlier incarnation; re-created after
                None if self.rejected.contains(uid) => {}
                None => new_pods.push(pod.clone()),
            }
        }
        // Admit in the order the pods were first seen, as upstream admits by creation time.
        new_pods.sort_by_key(|p| (first_seen(p), p.metadata.name.clone()));
        for pod in new_pods {
            let uid = pod.metadata.uid.clone().unwrap_or_default();
            match self.admit(&pod) {
                Ok(()) => self.spawn(&uid, Target::Run(pod), tasks, done, shutdown),
                Err(rejection) => {
                    tracing::warn!(pod = %super::worker::pod_ref(&pod), reason = %rejection.reason, message = %rejection.message, "pod rejected at admission");
                    self.ctx.statuses.set(&pod, crate::status::rejected(&pod, &rejection.reason, &rejection.message));
                    self.rejected.insert(uid);
                }
            }
        }
        let gone: Vec<String> = self.rejected.iter().filter(|uid| !desired.pods.contains_key(*uid)).cloned().collect();
        for uid in gone {
            self.rejected.remove(&uid);
            self.ctx.statuses.remove(&uid);
        }
        for (uid, w) in self.workers.iter_mut() {
            if !w.terminating && !desired.pods.contains_key(uid) {
                let pod = match &*w.target.borrow() {
                    Target::Run(p) | Target::Terminate { pod: p, .. } => p.clone(),
                };
                w.terminating = true;
                w.target.send_replace(Target::Terminate {
                    pod,
                    grace_seconds: None,
                });
            }
        }
        if self.remove_orphans && desired.all_sources_ready && snapshot.healthy {
            let orphans: Vec<Arc<ObservedPod>> = snapshot
                .pods
                .iter()
                .filter(|(uid, _)| {
                    !desired.pods.contains_key(*uid) && !self.workers.contains_key(*uid)
                })
                .map(|(_, p)| p.clone())
                .collect();
            for orphan in orphans {
                tracing::info!(pod = %orphan.name, namespace = %orphan.namespace, uid = %orphan.uid, "removing pod that is no longer configured");
                let target = Target::Terminate {
                    pod: Arc::new(pod_from_runtime(&orphan)),
                    grace_seconds: None,
                };
                self.spawn(&orphan.uid, target, tasks, done, shutdown);
            }
        }
    }

    fn spawn(
        &mut self,
        uid: &str,
        target: Target,
        tasks: &mut JoinSet<()>,
        done: &mpsc::UnboundedSender<String>,
        shutdown: &CancellationToken,
    ) {
        let terminating = matches!(target, Target::Terminate { .. });
        let (tx, rx) = watch::channel(target);
        let worker = PodWorker::new(
            uid.to_string(),
            self.ctx.clone(),
            rx,
            self.snapshots.clone(),
        );
        let done = done.clone();
        let uid_owned = uid.to_string();
        let shutdown = shutdown.clone();
        tasks.spawn(async move {
            if worker.run(shutdown).await {
                let _ = done.send(uid_owned);
            }
        });
        self.workers.insert(
            uid.to_string(),
            WorkerHandle {
                target: tx,
                terminating,
            },
        );
    }
}

impl Dispatcher {
    /// Admission against the pods already running (terminal ones do not count).
    fn admit(&self, pod: &Pod) -> Result<(), admission::Rejection> {
        let running: Vec<Arc<Pod>> = self
            .workers
            .values()
            .filter(|w| !w.terminating)
            .filter_map(|w| match &*w.target.borrow() {
                Target::Run(p) => Some(p.clone()),
                Target::Terminate { .. } => None,
            })
            .filter(|p| {
                let uid = p.metadata.uid.as_deref().unwrap_or_default();
                let phase = self.ctx.statuses.get(uid).and_then(|s| s.status.as_ref().and_then(|st| st.phase.clone()));
                !matches!(phase.as_deref(), Some("Succeeded") | Some("Failed"))
            })
            .collect();
        admission::admit(
            pod,
            running.iter().map(|p| p.as_ref()),
            &self.admission.allocatable,
            &self.admission.allowed_unsafe_sysctls,
        )
    }
}

fn first_seen(pod: &Pod) -> String {
    pod.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get("kubernetes.io/config.seen"))
        .cloned()
        .unwrap_or_default()
}

/// A stand-in Pod for an orphan: identity from the runtime labels and the termination
/// grace period its containers were created with.
fn pod_from_runtime(o: &ObservedPod) -> Pod {
    Pod {
        metadata: ObjectMeta {
            name: Some(o.name.clone()),
            namespace: Some(o.namespace.clone()),
            uid: Some(o.uid.clone()),
            ..Default::default()
        },
        spec: Some(k8s_openapi::api::core::v1::PodSpec {
            termination_grace_period_seconds: o.termination_grace_seconds,
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// DesiredPods is a map of Arcs: a shallow copy is cheap and frees the watch lock.
trait CloneShallow {
    fn clone_shallow(&self) -> DesiredPods;
}

impl CloneShallow for DesiredPods {
    fn clone_shallow(&self) -> DesiredPods {
        DesiredPods {
            pods: self.pods.clone(),
            all_sources_ready: self.all_sources_ready,
        }
    }
}
