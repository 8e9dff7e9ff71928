//! The probe tasks of one pod (upstream prober_manager, per pod): the pod worker calls
//! [`ProbeManager::sync`] after each pass, which starts a task for every probe of every
//! running container (regular containers and sidecars) of the current sandbox, replaces
//! tasks whose container was replaced, and stops the rest. Dropping the manager stops all.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Container, Pod};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::worker::{PodRef, ProbeTask};
use super::{ProbeKind, ProbeResult, ProbeResults, Target};
use crate::events::EventSink;
use crate::runtime::actions::ContainerHealth;
use crate::runtime::cri::CriClient;
use crate::runtime::model::{ContainerState, ObservedPod};
use crate::status::ProbeState;

struct Running {
    container_id: String,
    cancel: CancellationToken,
}

pub struct ProbeManager {
    cri: CriClient,
    events: Arc<dyn EventSink>,
    results: ProbeResults,
    workers: HashMap<(String, ProbeKind), Running>,
    root: CancellationToken,
}

/// Containers that may have probes: regular containers and restartable init containers.
fn probed_containers(pod: &Pod) -> impl Iterator<Item = &Container> {
    let spec = pod.spec.as_ref();
    let sidecars = spec
        .and_then(|s| s.init_containers.as_ref())
        .into_iter()
        .flatten()
        .filter(|c| c.restart_policy.as_deref() == Some("Always"));
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
                if self
                    .workers
                    .get(&key)
                    .is_some_and(|w| w.container_id == running.id)
                {
                    continue;
                }
                self.stop(&key);
                let cancel = self.root.child_token();
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
                };
                // Set the initial result now, so the pass that follows already sees it.
                self.results.set(&running.id, kind, kind.initial());
                tokio::spawn(task.run(self.cri.clone(), self.results.clone(), cancel.clone()));
                self.workers.insert(
                    key,
                    Running {
                        container_id: running.id.clone(),
                        cancel,
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
}
