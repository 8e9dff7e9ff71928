//! The sync loop: keeps one worker per pod UID. Desired pods get a worker; workers whose
//! pod is no longer desired are told to terminate; runtime pods nobody wants (orphans,
//! e.g. after a restart with fewer manifests) are terminated once every source has
//! reported, so a restart never kills pods whose manifest simply has not been read yet.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use futures::FutureExt;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kubelet_source::DesiredPods;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::kill::{KillOutcome, KillRequest, PodKiller};
use super::worker::{PodWorker, Target, WorkerContext};
use crate::cm::admission::{self, Allocatable};
use crate::runtime::model::{ObservedPod, RuntimeSnapshot, now_ns};

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
    /// Kill requests (eviction, node shutdown), once `pod_killer` was called.
    kills: Option<mpsc::UnboundedReceiver<KillRequest>>,
    /// Pods being killed on request -> who waits for the outcome.
    killed: HashMap<String, Vec<tokio::sync::oneshot::Sender<KillOutcome>>>,
    /// Pods being deleted (deletionTimestamp) whose termination has completed; they stay
    /// here while a source still lists them, so they are not started again.
    finished: BTreeSet<String>,
    /// Where `finished` is published (cluster mode: the final API delete).
    terminated_tx: Option<watch::Sender<BTreeSet<String>>>,
    /// Pods whose worker just removed them: not orphans while snapshots older than the
    /// removal still list them.
    tombstones: Tombstones,
    /// When the last worker was started (see [`TRIM_AFTER_STARTS`]).
    last_spawn: Option<tokio::time::Instant>,
    /// Which pod each worker task serves, to know whose worker panicked.
    task_uids: HashMap<tokio::task::Id, String>,
    /// Pods whose worker panicked: restarted after a growing delay.
    restarts: WorkerRestarts,
}

/// A panicked pod worker is started again after 1s, doubling up to 2 min for a worker
/// that keeps panicking; a worker that ran 4 min without panicking starts over at 1s.
const WORKER_RESTART_INITIAL: std::time::Duration = std::time::Duration::from_secs(1);
const WORKER_RESTART_MAX: std::time::Duration = std::time::Duration::from_secs(120);

/// The restart backoff of panicked pod workers (bounded; see [`WORKER_RESTART_MAX`]).
#[derive(Debug)]
struct WorkerRestarts {
    backoff: crate::runtime::backoff::Backoff,
    /// UID -> when its worker may be started again (ns since epoch).
    held_until: HashMap<String, i64>,
}

impl Default for WorkerRestarts {
    fn default() -> Self {
        WorkerRestarts {
            backoff: crate::runtime::backoff::Backoff::new(
                WORKER_RESTART_INITIAL,
                WORKER_RESTART_MAX,
            ),
            held_until: HashMap::new(),
        }
    }
}

impl WorkerRestarts {
    /// The worker of `uid` panicked at `now_ns`: returns the delay before its restart.
    fn panicked(&mut self, uid: &str, now_ns: i64) -> std::time::Duration {
        let delay = self.backoff.next(uid, now_ns);
        self.held_until
            .insert(uid.to_string(), now_ns + delay.as_nanos() as i64);
        delay
    }

    /// Whether a worker for `uid` must not be started yet.
    fn held(&self, uid: &str, now_ns: i64) -> bool {
        self.held_until
            .get(uid)
            .is_some_and(|until| now_ns < *until)
    }

    /// Drop the holds that are over; how long until the next one is (to wake up then).
    fn release(&mut self, now_ns: i64) -> Option<std::time::Duration> {
        self.held_until.retain(|_, until| now_ns < *until);
        self.backoff.gc(now_ns);
        self.held_until
            .values()
            .min()
            .map(|until| std::time::Duration::from_nanos((*until - now_ns).max(0) as u64))
    }
}

/// Starting pods is the kubelet's memory peak: every starting pod's sync pass, CRI
/// messages and buffers at once, freed when they run. glibc keeps that freed heap
/// resident, in holes between what stays (about a third of the anonymous memory
/// measured with 110 pods), so it is handed back on the check that follows, while
/// workers started within this window (the starts may take that long).
const TRIM_AFTER_STARTS: std::time::Duration = std::time::Duration::from_secs(90);
const TRIM_CHECK: std::time::Duration = std::time::Duration::from_secs(30);

/// UIDs of pods a worker has just torn down, with when (ns since epoch). A snapshot whose
/// relist started before that moment may still list the pod; treating it as an orphan
/// would terminate it a second time (Stop/RemovePodSandbox again, its directories again).
/// An entry lives until the first healthy snapshot taken at or after the removal: if that
/// snapshot no longer lists the pod the removal is confirmed, and if it still does, the pod
/// really is left over and the orphan path may remove it.
#[derive(Debug, Default)]
struct Tombstones {
    removed_at: HashMap<String, i64>,
}

impl Tombstones {
    /// Remember that `uid` was torn down at `at_ns` (the earliest record wins: it is the
    /// later one that could be too early, never the first).
    fn record(&mut self, uid: &str, at_ns: i64) {
        self.removed_at.entry(uid.to_string()).or_insert(at_ns);
    }

    /// Forget the entries `snapshot` settles: those it was taken after.
    fn settle(&mut self, snapshot: &RuntimeSnapshot) {
        if snapshot.healthy {
            self.removed_at.retain(|_, at| snapshot.taken_at_ns < *at);
        }
    }

    /// Whether `uid`, listed by a snapshot, is only an echo of its own removal.
    fn hides(&self, uid: &str) -> bool {
        self.removed_at.contains_key(uid)
    }

    fn forget(&mut self, uid: &str) {
        self.removed_at.remove(uid);
    }
}

/// What pods are admitted against.
#[derive(Debug, Clone)]
pub struct AdmissionPolicy {
    pub allocatable: Allocatable,
    pub allowed_unsafe_sysctls: Vec<String>,
    /// More checks after the resource fit (eviction: node pressure; node shutdown).
    pub handlers: Vec<Arc<dyn admission::AdmitHandler>>,
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
            kills: None,
            killed: HashMap::new(),
            finished: BTreeSet::new(),
            terminated_tx: None,
            tombstones: Tombstones::default(),
            last_spawn: None,
            task_uids: HashMap::new(),
            restarts: WorkerRestarts::default(),
        }
    }

    /// Publish the UIDs of pods with a deletionTimestamp whose containers are stopped and
    /// whose resources are cleaned up (what upstream waits for before the final delete).
    pub fn with_terminated(mut self, tx: watch::Sender<BTreeSet<String>>) -> Self {
        self.terminated_tx = Some(tx);
        self
    }

    /// A handle to end pods through their workers (see `pod::kill`).
    pub fn pod_killer(&mut self) -> PodKiller {
        let (killer, rx) = PodKiller::channel();
        self.kills = Some(rx);
        killer
    }

    pub async fn run(mut self, shutdown: CancellationToken) {
        let (done_tx, mut done_rx) = mpsc::unbounded_channel::<(String, i64)>();
        let mut tasks = JoinSet::new();
        let mut kills = self.kills.take();
        let mut trim_check = tokio::time::interval(TRIM_CHECK);
        trim_check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            self.reconcile(&mut tasks, &done_tx, &shutdown);
            let next_restart = self.restarts.release(now_ns());
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tokio::time::sleep(next_restart.unwrap_or_default()), if next_restart.is_some() => {}
                _ = trim_check.tick() => {
                    if self.last_spawn.is_some_and(|at| at.elapsed() < TRIM_AFTER_STARTS) {
                        release_freed_memory();
                    }
                }
                changed = self.desired.changed() => if changed.is_err() { break },
                changed = self.snapshots.changed() => if changed.is_err() { break },
                Some((uid, removed_at)) = done_rx.recv() => {
                    // The handle may already be gone (seen closed), or belong to a new
                    // worker for the same UID, which must stay.
                    let replaced = self.workers.get(&uid).is_some_and(|w| !w.target.is_closed());
                    if !replaced {
                        self.workers.remove(&uid);
                        self.tombstones.record(&uid, removed_at);
                        if !self.workers.values().any(|w| w.terminating) {
                            release_freed_memory();
                        }
                    }
                    let deleting = self
                        .desired
                        .borrow()
                        .pods
                        .get(&uid)
                        .is_some_and(|p| p.metadata.deletion_timestamp.is_some());
                    if deleting {
                        self.finished.insert(uid.clone());
                    }
                    self.finish_kill(&uid);
                }
                Some(req) = async {
                    match kills.as_mut() {
                        Some(rx) => rx.recv().await,
                        None => std::future::pending().await,
                    }
                } => self.handle_kill(req),
                Some(joined) = tasks.join_next_with_id(), if !tasks.is_empty() => {
                    let id = match &joined {
                        Ok((id, ())) => *id,
                        Err(err) => err.id(),
                    };
                    let uid = self.task_uids.remove(&id);
                    if let (Err(err), Some(uid)) = (joined, uid)
                        && err.is_panic()
                    {
                        let message = crate::supervisor::panic_message(err.into_panic());
                        let delay = self.restarts.panicked(&uid, now_ns());
                        tracing::error!(uid = %uid, panic = %message, restart_in = ?delay, "a pod worker panicked; it is restarted after a backoff");
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
        done: &mpsc::UnboundedSender<(String, i64)>,
        shutdown: &CancellationToken,
    ) {
        // A map of Arcs: the clone is cheap and frees the watch lock.
        let desired = self.desired.borrow_and_update().clone();
        let snapshot = self.snapshots.borrow_and_update().clone();

        // Workers whose task is gone (done, or panicked) are dropped so they can be
        // re-created. A terminating one may have finished before its done message
        // arrives: its pod counts as just removed.
        let now = now_ns();
        let tombstones = &mut self.tombstones;
        self.workers.retain(|uid, w| {
            let gone = w.target.is_closed();
            if gone && w.terminating {
                tombstones.record(uid, now);
            }
            !gone
        });
        self.tombstones.settle(&snapshot);
        // A killed pod's worker may be seen gone here before its done message arrives.
        let finished: Vec<String> = self
            .killed
            .keys()
            .filter(|uid| !self.workers.contains_key(*uid))
            .cloned()
            .collect();
        for uid in finished {
            self.finish_kill(&uid);
        }

        // Pods no longer wanted are told to stop first, so that a pod replacing one of
        // them (an edited manifest: same name, new UID) is admitted without counting it.
        for (uid, w) in self.workers.iter_mut() {
            if !w.terminating && !desired.pods.contains_key(uid) {
                let pod = match &*w.target.borrow() {
                    Target::Run(p) | Target::Terminate { pod: p, .. } => p.clone(),
                };
                w.terminating = true;
                w.target.send_replace(Target::Terminate {
                    pod,
                    grace_seconds: None,
                    final_status: None,
                });
            }
        }

        let mut new_pods = Vec::new();
        for (uid, pod) in &desired.pods {
            // Graceful deletion through the API: stop within deletionGracePeriodSeconds.
            let deleting = pod.metadata.deletion_timestamp.is_some();
            let deletion_grace = pod.metadata.deletion_grace_period_seconds;
            match self.workers.get_mut(uid) {
                Some(w) if !w.terminating && deleting => {
                    w.terminating = true;
                    w.target.send_replace(Target::Terminate {
                        pod: pod.clone(),
                        grace_seconds: deletion_grace,
                        final_status: None,
                    });
                }
                None if deleting => {
                    if !self.finished.contains(uid) {
                        let target = Target::Terminate {
                            pod: pod.clone(),
                            grace_seconds: deletion_grace,
                            final_status: None,
                        };
                        self.spawn(uid, target, tasks, done, shutdown);
                    }
                }
                Some(w) if !w.terminating => {
                    let changed =
                        matches!(&*w.target.borrow(), Target::Run(old) if !Arc::ptr_eq(old, pod));
                    if changed {
                        w.target.send_replace(Target::Run(pod.clone()));
                    }
                }
                Some(_) => {} // still terminating an earlier incarnation; re-created after
                None if self.rejected.contains(uid) => {}
                // Finished before (an API pod in phase Succeeded/Failed): never re-run.
                None if terminal_phase(pod) => {}
                None => new_pods.push(pod.clone()),
            }
        }
        // Admit in the order the pods were first seen, as upstream admits by creation time.
        new_pods.sort_by_key(|p| (first_seen(p), p.metadata.name.clone()));
        for pod in new_pods {
            let uid = pod.metadata.uid.clone().unwrap_or_default();
            match self.admit(&pod, &desired) {
                Ok(()) => self.spawn(&uid, Target::Run(pod), tasks, done, shutdown),
                Err(rejection) => {
                    tracing::warn!(pod = %super::worker::pod_ref(&pod), reason = %rejection.reason, message = %rejection.message, "pod rejected at admission");
                    self.ctx.statuses.set(
                        &pod,
                        crate::status::rejected(&pod, &rejection.reason, &rejection.message),
                    );
                    self.rejected.insert(uid);
                }
            }
        }
        self.finished.retain(|uid| desired.pods.contains_key(uid));
        if let Some(tx) = &self.terminated_tx {
            tx.send_if_modified(|current| {
                if *current == self.finished {
                    false
                } else {
                    current.clone_from(&self.finished);
                    true
                }
            });
        }
        let gone: Vec<String> = self
            .rejected
            .iter()
            .filter(|uid| !desired.pods.contains_key(*uid))
            .cloned()
            .collect();
        for uid in gone {
            self.rejected.remove(&uid);
            self.ctx.statuses.remove(&uid);
        }
        if self.remove_orphans && desired.all_sources_ready && snapshot.healthy {
            let orphans: Vec<Arc<ObservedPod>> = snapshot
                .pods
                .iter()
                .filter(|(uid, _)| {
                    !desired.pods.contains_key(*uid)
                        && !self.workers.contains_key(*uid)
                        && !self.tombstones.hides(uid)
                })
                .map(|(_, p)| p.clone())
                .collect();
            for orphan in orphans {
                tracing::info!(pod = %orphan.name, namespace = %orphan.namespace, uid = %orphan.uid, "removing pod that is no longer configured");
                let target = Target::Terminate {
                    pod: Arc::new(pod_from_runtime(&orphan)),
                    grace_seconds: None,
                    final_status: None,
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
        done: &mpsc::UnboundedSender<(String, i64)>,
        shutdown: &CancellationToken,
    ) {
        if self.restarts.held(uid, now_ns()) {
            // Its worker panicked: started again when the backoff is over.
            return;
        }
        let terminating = matches!(target, Target::Terminate { .. });
        self.tombstones.forget(uid);
        self.last_spawn = Some(tokio::time::Instant::now());
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
        // `map`, not an `async` block awaiting the run: a block keeps its captured
        // worker beside the future it moved into, and the task is allocated at that
        // size for the pod's whole life.
        let fut = worker.run(shutdown).map(move |removed| {
            if removed {
                let _ = done.send((uid_owned, now_ns()));
            }
        });
        let task = tasks.spawn(fut);
        self.task_uids.insert(task.id(), uid.to_string());
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
    /// A pod killed on request is done: it is not started again while still configured.
    fn finish_kill(&mut self, uid: &str) {
        if let Some(waiters) = self.killed.remove(uid) {
            self.rejected.insert(uid.to_string());
            for w in waiters {
                let _ = w.send(KillOutcome::Killed);
            }
        }
    }

    /// Terminate a running pod through its worker with the requested grace period; the
    /// pod keeps the final status (see `pod::kill`) and is not restarted.
    fn handle_kill(&mut self, req: KillRequest) {
        let KillRequest { spec, done } = req;
        let Some(w) = self.workers.get_mut(&spec.uid).filter(|w| !w.terminating) else {
            let _ = done.send(KillOutcome::NotRunning);
            return;
        };
        let pod = match &*w.target.borrow() {
            Target::Run(p) | Target::Terminate { pod: p, .. } => p.clone(),
        };
        let last = self.ctx.statuses.get(&spec.uid);
        let status = super::kill::final_status(
            &pod,
            last.as_ref().and_then(|p| p.status.as_ref()),
            &spec,
            super::kill::now(),
        );
        tracing::info!(pod = %super::worker::pod_ref(&pod), reason = %spec.reason, message = %spec.message, grace_seconds = ?spec.grace_seconds, "killing pod");
        // Visible at once, as upstream's killPodFunc updates the status before the kill.
        self.ctx.statuses.set(&pod, status.clone());
        w.terminating = true;
        w.target.send_replace(Target::Terminate {
            pod,
            grace_seconds: spec.grace_seconds,
            final_status: Some(Arc::new(status)),
        });
        self.killed.entry(spec.uid).or_default().push(done);
    }

    /// Admission against the pods already admitted that still count (see
    /// [`admission::counts_against_node`]).
    fn admit(&self, pod: &Pod, desired: &DesiredPods) -> Result<(), admission::Rejection> {
        let running: Vec<Arc<Pod>> = self
            .workers
            .iter()
            .filter_map(|(uid, w)| match &*w.target.borrow() {
                Target::Run(p) => Some((uid, w.terminating, p.clone())),
                Target::Terminate { .. } => None,
            })
            .filter(|(uid, terminating, _)| {
                let phase = self
                    .ctx
                    .statuses
                    .get(uid)
                    .and_then(|s| s.status.as_ref().and_then(|st| st.phase.clone()));
                admission::counts_against_node(
                    desired.pods.contains_key(*uid),
                    *terminating,
                    phase.as_deref(),
                )
            })
            .map(|(_, _, p)| p)
            .collect();
        for handler in &self.admission.handlers {
            handler.admit(pod)?;
        }
        admission::admit(
            pod,
            running.iter().map(|p| p.as_ref()),
            &self.admission.allocatable,
            &self.admission.allowed_unsafe_sysctls,
        )
    }
}

/// At the end of a teardown, and after pods started (see [`TRIM_AFTER_STARTS`]), hand
/// freed memory back to the system: glibc keeps freed heap at its peak otherwise (seen
/// as anonymous RSS that never comes down after many pods were removed).
fn release_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free heap pages to the kernel.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// A pod whose (API) status is already terminal.
fn terminal_phase(pod: &Pod) -> bool {
    matches!(
        pod.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Succeeded") | Some("Failed")
    )
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

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot(taken_at_ns: i64, healthy: bool, uids: &[&str]) -> RuntimeSnapshot {
        RuntimeSnapshot {
            generation: 1,
            taken_at_ns,
            healthy,
            pods: uids
                .iter()
                .map(|u| {
                    let pod = ObservedPod {
                        uid: u.to_string(),
                        ..Default::default()
                    };
                    (u.to_string(), Arc::new(pod))
                })
                .collect(),
        }
    }

    #[test]
    fn a_snapshot_older_than_the_removal_does_not_make_an_orphan() {
        let mut t = Tombstones::default();
        t.record("a", 1_000);
        // Taken before the worker finished: it may still list the pod.
        t.settle(&snapshot(900, true, &["a"]));
        assert!(t.hides("a"));
        // Unhealthy snapshots settle nothing.
        t.settle(&snapshot(2_000, false, &["a"]));
        assert!(t.hides("a"));
        // Taken after, without the pod: the removal is confirmed and forgotten.
        t.settle(&snapshot(1_000, true, &[]));
        assert!(!t.hides("a"));
    }

    #[test]
    fn a_pod_still_listed_after_its_removal_is_an_orphan_again() {
        let mut t = Tombstones::default();
        t.record("a", 1_000);
        t.settle(&snapshot(1_500, true, &["a"]));
        assert!(
            !t.hides("a"),
            "left over for real: the orphan path must see it"
        );
    }

    #[test]
    fn the_first_record_wins_and_a_new_worker_forgets() {
        let mut t = Tombstones::default();
        t.record("a", 1_000);
        t.record("a", 5_000);
        t.settle(&snapshot(1_200, true, &[]));
        assert!(!t.hides("a"));
        t.record("b", 1_000);
        t.forget("b");
        assert!(!t.hides("b"));
    }

    const S: i64 = 1_000_000_000;

    #[test]
    fn a_panicked_worker_is_held_back_with_a_growing_bounded_delay() {
        let mut r = WorkerRestarts::default();
        assert!(!r.held("a", 0));
        assert_eq!(r.panicked("a", 0), WORKER_RESTART_INITIAL);
        assert!(r.held("a", S / 2), "restarted before its backoff");
        assert!(!r.held("b", S / 2), "other pods are not held");
        assert_eq!(
            r.release(S / 2),
            Some(std::time::Duration::from_millis(500))
        );
        assert!(!r.held("a", S));
        assert_eq!(r.release(S), None, "the hold is over");
        // It panics again at once: 2s, then 4s, ... never more than the maximum.
        assert_eq!(r.panicked("a", S), 2 * WORKER_RESTART_INITIAL);
        let mut now = S;
        let mut last = std::time::Duration::ZERO;
        for _ in 0..20 {
            now += 10 * S;
            last = r.panicked("a", now);
            assert!(last <= WORKER_RESTART_MAX);
        }
        assert_eq!(last, WORKER_RESTART_MAX);
        // A worker that ran long enough starts over.
        now += 2 * WORKER_RESTART_MAX.as_nanos() as i64 + S;
        assert_eq!(r.release(now), None);
        assert_eq!(r.panicked("a", now), WORKER_RESTART_INITIAL);
    }
}
