//! The probe tasks of one pod (upstream prober_manager, per pod): the pod worker calls
//! [`ProbeManager::sync`] after each pass, which starts a task for every probe of every
//! running container (regular containers and sidecars) of the current sandbox, replaces
//! tasks whose container was replaced, and stops the rest. Dropping the manager stops all.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Container, Pod};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::worker::{FirstAttempt, PodRef, ProbeTask};
use super::{ProbeKind, ProbeResult, ProbeResults, Target, Timing};
use crate::events::EventSink;
use crate::runtime::actions::ContainerHealth;
use crate::runtime::cri::CriClient;
use crate::runtime::model::{ContainerState, ObservedPod, now_ns};
use crate::status::ProbeState;

struct Running {
    container_id: String,
    cancel: CancellationToken,
    first_attempt: FirstAttempt,
    /// The container was already running (past its initial delay) when this manager was
    /// made: the kubelet restarted and adopted it. Cleared once waited for.
    adopted: bool,
    /// The probe task, to notice it panicked (None in tests).
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Running {
    /// Whether the probe task died of a panic (taken: asked once).
    fn panicked(&mut self) -> Option<String> {
        use futures::FutureExt;
        let task = self.task.as_mut().filter(|t| t.is_finished())?;
        let result = task.now_or_never()?;
        self.task = None;
        match result {
            Err(err) if err.is_panic() => Some(crate::supervisor::panic_message(err.into_panic())),
            _ => None,
        }
    }
}

/// How long the first pass over an adopted pod waits for its first readiness and startup
/// results (see [`ProbeManager::settle_adopted`]).
pub const ADOPTED_SETTLE_LIMIT: Duration = Duration::from_secs(3);

pub struct ProbeManager {
    cri: CriClient,
    events: Arc<dyn EventSink>,
    results: ProbeResults,
    workers: HashMap<(String, ProbeKind), Running>,
    root: CancellationToken,
    /// When this manager (the pod's worker) was made, ns since epoch.
    created_ns: i64,
    /// Bumped when a task's first probe attempt is over.
    attempts: Arc<watch::Sender<u64>>,
}

/// Containers that may have probes: regular containers and restartable init containers.
fn probed_containers(pod: &Pod) -> impl Iterator<Item = &Container> {
    let spec = pod.spec.as_ref();
    let sidecars = spec
        .and_then(|s| s.init_containers.as_ref())
        .into_iter()
        .flatten()
        .filter(|c| kubelet_primitives::pod::is_sidecar(c));
    let regular = spec.into_iter().flat_map(|s| s.containers.iter());
    sidecars.chain(regular)
}

impl ProbeManager {
    pub fn new(cri: CriClient, events: Arc<dyn EventSink>) -> ProbeManager {
        ProbeManager {
            cri,
            events,
            results: ProbeResults::default(),
            workers: HashMap::new(),
            root: CancellationToken::new(),
            created_ns: now_ns(),
            attempts: Arc::new(watch::channel(0).0),
        }
    }

    pub fn results(&self) -> &ProbeResults {
        &self.results
    }

    /// Changes whenever a probe result changes.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.results.subscribe()
    }

    pub fn is_probing(&self) -> bool {
        !self.workers.is_empty()
    }

    /// Start, replace and stop probe tasks to match the running containers.
    pub fn sync(&mut self, pod: &Pod, observed: Option<&ObservedPod>, pod_ip: Option<&str>) {
        let sandbox = observed
            .and_then(|o| o.latest_sandbox())
            .filter(|s| s.ready);
        let mut wanted: HashSet<(String, ProbeKind)> = HashSet::new();
        for spec in probed_containers(pod) {
            let Some(running) = sandbox.and_then(|sb| {
                observed?
                    .containers
                    .iter()
                    .find(|c| c.name == spec.name && c.sandbox_id == sb.id)
                    .filter(|c| c.state == ContainerState::Running)
            }) else {
                continue;
            };
            for kind in ProbeKind::ALL {
                let Some(probe) = kind.of(spec) else {
                    continue;
                };
                let key = (spec.name.clone(), kind);
                wanted.insert(key.clone());
                if let Some(w) = self.workers.get_mut(&key)
                    && w.container_id == running.id
                {
                    // A probe task that panicked is started again on the next pass.
                    match w.panicked() {
                        None => continue,
                        Some(message) => {
                            tracing::error!(pod = %pod.metadata.name.as_deref().unwrap_or_default(), container = %spec.name, probe = ?kind, panic = %message, "a probe task panicked; it is restarted");
                        }
                    }
                }
                self.stop(&key);
                let cancel = self.root.child_token();
                let first_attempt = FirstAttempt::new(self.attempts.clone());
                let due_ns = running.started_at.saturating_add(
                    Timing::of(probe)
                        .initial_delay
                        .as_nanos()
                        .min(i64::MAX as u128) as i64,
                );
                let adopted = running.started_at > 0
                    && running.started_at < self.created_ns
                    && due_ns <= self.created_ns;
                let task = ProbeTask {
                    kind,
                    probe: probe.clone(),
                    target: Target {
                        container: spec.clone(),
                        container_id: running.id.clone(),
                        pod_ip: pod_ip.map(str::to_string),
                    },
                    started_at_ns: running.started_at,
                    has_startup_probe: spec.startup_probe.is_some(),
                    pod: PodRef {
                        namespace: pod.metadata.namespace.clone().unwrap_or_default(),
                        name: pod.metadata.name.clone().unwrap_or_default(),
                        uid: pod.metadata.uid.clone().unwrap_or_default(),
                    },
                    event_pod: Pod {
                        metadata: pod.metadata.clone(),
                        spec: pod.spec.clone(),
                        status: None,
                    },
                    events: self.events.clone(),
                    first_attempt: first_attempt.clone(),
                };
                // Set the initial result now, so the pass that follows already sees it.
                self.results.set(&running.id, kind, kind.initial());
                let task =
                    tokio::spawn(task.run(self.cri.clone(), self.results.clone(), cancel.clone()));
                self.workers.insert(
                    key,
                    Running {
                        container_id: running.id.clone(),
                        cancel,
                        first_attempt,
                        adopted,
                        task: Some(task),
                    },
                );
            }
        }
        let stale: Vec<_> = self
            .workers
            .keys()
            .filter(|k| !wanted.contains(*k))
            .cloned()
            .collect();
        for key in stale {
            self.stop(&key);
        }
    }

    /// After a kubelet restart, the containers it adopted start with the initial probe
    /// results (not ready, startup unknown) like upstream, and their probes run at once.
    /// To keep that not-ready window out of the pod's status, the first pass waits (at
    /// most `limit`) until every adopted readiness and startup probe has run once:
    /// readiness that waits for a startup probe counts as settled when the startup
    /// probe has run and not passed. Later passes never wait.
    pub async fn settle_adopted(&mut self, limit: Duration) {
        if !self.workers.values().any(|w| w.adopted) {
            return;
        }
        let started = std::time::Instant::now();
        let mut attempts = self.attempts.subscribe();
        let mut changes = self.results.subscribe();
        let wait = async {
            loop {
                attempts.borrow_and_update();
                changes.borrow_and_update();
                if self.adopted_settled() {
                    return;
                }
                tokio::select! {
                    r = attempts.changed() => if r.is_err() { return },
                    r = changes.changed() => if r.is_err() { return },
                }
            }
        };
        let settled = tokio::time::timeout(limit, wait).await.is_ok();
        tracing::debug!(
            settled,
            waited_ms = started.elapsed().as_millis() as u64,
            "first probe results of adopted containers"
        );
        for w in self.workers.values_mut() {
            w.adopted = false;
        }
    }

    fn adopted_settled(&self) -> bool {
        self.workers.iter().all(|((name, kind), w)| {
            if !w.adopted || w.first_attempt.is_done() {
                return true;
            }
            match kind {
                ProbeKind::Liveness => true,
                ProbeKind::Startup => false,
                // Gated by a startup probe that ran and did not pass: nothing to wait for.
                ProbeKind::Readiness => self
                    .workers
                    .get(&(name.clone(), ProbeKind::Startup))
                    .is_some_and(|s| {
                        s.first_attempt.is_done()
                            && self.results.get(&s.container_id, ProbeKind::Startup)
                                != Some(ProbeResult::Success)
                    }),
            }
        })
    }

    fn stop(&mut self, key: &(String, ProbeKind)) {
        if let Some(w) = self.workers.remove(key) {
            w.cancel.cancel();
            self.results.remove(&w.container_id, key.1);
        }
    }

    /// Stop every probe (the pod is terminating or finished).
    pub fn stop_all(&mut self) {
        let keys: Vec<_> = self.workers.keys().cloned().collect();
        for key in keys {
            self.stop(&key);
        }
    }

    /// What compute-pod-actions needs: failed liveness/startup and finished startup.
    pub fn health(&self) -> ContainerHealth {
        let mut health = ContainerHealth::default();
        for ((_, kind), w) in &self.workers {
            let id = w.container_id.clone();
            match (kind, self.results.get(&w.container_id, *kind)) {
                (ProbeKind::Liveness, Some(ProbeResult::Failure)) => {
                    health.liveness_failed.insert(id);
                }
                (ProbeKind::Startup, Some(ProbeResult::Failure)) => {
                    health.startup_failed.insert(id);
                }
                (ProbeKind::Startup, Some(ProbeResult::Success)) => {
                    health.startup_succeeded.insert(id);
                }
                _ => {}
            }
        }
        health
    }

    /// What the pod status needs: per running container, startup done and readiness.
    pub fn states(&self) -> HashMap<String, ProbeState> {
        let mut states: HashMap<String, ProbeState> = HashMap::new();
        for ((_, kind), w) in &self.workers {
            let result = self.results.get(&w.container_id, *kind);
            let state = states.entry(w.container_id.clone()).or_default();
            match kind {
                ProbeKind::Startup => {
                    state.startup_succeeded = result == Some(ProbeResult::Success)
                }
                ProbeKind::Readiness => state.ready = result == Some(ProbeResult::Success),
                ProbeKind::Liveness => {}
            }
        }
        states
    }
}

impl Drop for ProbeManager {
    fn drop(&mut self) {
        self.root.cancel();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::model::{ObservedContainer, ObservedSandbox};
    use k8s_openapi::api::core::v1::{ExecAction, PodSpec, Probe};

    fn probe() -> Option<Probe> {
        Some(Probe {
            exec: Some(ExecAction {
                command: Some(vec!["true".into()]),
            }),
            period_seconds: Some(3600),
            ..Default::default()
        })
    }

    fn observed(id: &str, state: ContainerState) -> ObservedPod {
        ObservedPod {
            sandboxes: vec![ObservedSandbox {
                id: "sb".into(),
                attempt: 0,
                ready: true,
                created_at: 1,
                ips: vec!["10.0.0.1".into()],
            }],
            containers: vec![ObservedContainer {
                id: id.into(),
                name: "main".into(),
                sandbox_id: "sb".into(),
                state,
                created_at: 2,
                started_at: 2,
                finished_at: 0,
                exit_code: 0,
                reason: String::new(),
                message: String::new(),
                image: String::new(),
                image_ref: String::new(),
                hash: String::new(),
                restart_count: 0,
            }],
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn tasks_follow_the_running_container() {
        let cri = CriClient::new(
            "unix:///nonexistent.sock",
            None,
            std::time::Duration::from_secs(1),
        )
        .unwrap();
        let mut m = ProbeManager::new(cri, Arc::new(crate::events::NoEvents));
        let pod = Pod {
            spec: Some(PodSpec {
                containers: vec![Container {
                    name: "main".into(),
                    readiness_probe: probe(),
                    startup_probe: probe(),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            ..Default::default()
        };
        m.sync(
            &pod,
            Some(&observed("c1", ContainerState::Running)),
            Some("10.0.0.1"),
        );
        assert_eq!(m.workers.len(), 2);
        // Initial results: not ready, startup unknown.
        assert_eq!(m.states()["c1"], ProbeState::default());
        assert!(m.health().startup_succeeded.is_empty());
        m.results
            .set("c1", ProbeKind::Startup, ProbeResult::Success);
        m.results
            .set("c1", ProbeKind::Readiness, ProbeResult::Success);
        assert_eq!(
            m.states()["c1"],
            ProbeState {
                startup_succeeded: true,
                ready: true
            }
        );
        // The container was replaced: fresh tasks, old results gone.
        m.sync(
            &pod,
            Some(&observed("c2", ContainerState::Running)),
            Some("10.0.0.1"),
        );
        assert!(m.workers.values().all(|w| w.container_id == "c2"));
        assert_eq!(m.results.get("c1", ProbeKind::Readiness), None);
        // It exited: no tasks.
        m.sync(
            &pod,
            Some(&observed("c2", ContainerState::Exited)),
            Some("10.0.0.1"),
        );
        assert!(!m.is_probing());
        assert!(m.results.is_empty());
    }

    #[tokio::test]
    async fn adopted_containers_wait_for_their_first_probe() {
        // The runtime is unreachable: the probe errors at once, which is a first attempt.
        let cri = CriClient::new(
            "unix:///nonexistent.sock",
            None,
            std::time::Duration::from_secs(1),
        )
        .unwrap();
        let mut m = ProbeManager::new(cri, Arc::new(crate::events::NoEvents));
        let pod = Pod {
            spec: Some(PodSpec {
                containers: vec![Container {
                    name: "main".into(),
                    readiness_probe: probe(),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            ..Default::default()
        };
        // Started long before the manager: adopted.
        m.sync(
            &pod,
            Some(&observed("c1", ContainerState::Running)),
            Some("10.0.0.1"),
        );
        assert!(m.workers.values().all(|w| w.adopted));
        assert!(!m.adopted_settled());
        let t = std::time::Instant::now();
        m.settle_adopted(Duration::from_secs(30)).await;
        assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
        assert!(
            m.workers
                .values()
                .all(|w| !w.adopted && w.first_attempt.is_done())
        );
        // A container this kubelet started is never waited for.
        let mut fresh = observed("c2", ContainerState::Running);
        fresh.containers[0].started_at = now_ns() + 1_000_000_000;
        m.sync(&pod, Some(&fresh), Some("10.0.0.1"));
        assert!(m.workers.values().all(|w| !w.adopted));
    }

    #[tokio::test]
    async fn readiness_behind_a_failed_startup_probe_is_settled() {
        let cri = CriClient::new(
            "unix:///nonexistent.sock",
            None,
            std::time::Duration::from_secs(1),
        )
        .unwrap();
        let mut m = ProbeManager::new(cri, Arc::new(crate::events::NoEvents));
        let key = |k| ("main".to_string(), k);
        for (kind, adopted) in [(ProbeKind::Startup, true), (ProbeKind::Readiness, true)] {
            m.workers.insert(
                key(kind),
                Running {
                    container_id: "c1".into(),
                    cancel: CancellationToken::new(),
                    first_attempt: FirstAttempt::new(m.attempts.clone()),
                    adopted,
                    task: None,
                },
            );
        }
        assert!(!m.adopted_settled());
        // Startup ran and failed: readiness cannot run yet, nothing more to wait for.
        m.workers[&key(ProbeKind::Startup)].first_attempt.mark();
        m.results
            .set("c1", ProbeKind::Startup, ProbeResult::Failure);
        assert!(m.adopted_settled());
        // Startup passed: readiness must run once first.
        m.results
            .set("c1", ProbeKind::Startup, ProbeResult::Success);
        assert!(!m.adopted_settled());
        m.workers[&key(ProbeKind::Readiness)].first_attempt.mark();
        assert!(m.adopted_settled());
    }
}
