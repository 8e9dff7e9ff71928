//! The latest status of every pod the kubelet runs, written by pod workers and read by
//! the node API and `--runonce`. Each entry is the pod as configured with its status set.
//!
//! An entry keeps the configured pod as the shared `Arc` the sources, the dispatcher and
//! the worker already hold, next to its status, and readers get the two put together.
//! Storing a ready-made copy instead would keep a second full pod (spec, metadata) per
//! running pod for readers that come every few seconds at most.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use k8s_openapi::api::core::v1::{Pod, PodStatus};

struct Entry {
    /// The pod as configured (its own `status` is not read).
    pod: Arc<Pod>,
    status: PodStatus,
}

impl Entry {
    fn with_status(&self) -> Arc<Pod> {
        Arc::new(Pod {
            metadata: self.pod.metadata.clone(),
            spec: self.pod.spec.clone(),
            status: Some(self.status.clone()),
        })
    }
}

#[derive(Clone, Default)]
pub struct StatusStore {
    inner: Arc<RwLock<BTreeMap<String, Entry>>>,
    /// Bumped when a status changes or a pod leaves (see [`StatusStore::subscribe`]).
    changes: Arc<tokio::sync::watch::Sender<u64>>,
}

impl StatusStore {
    pub fn set(&self, pod: &Arc<Pod>, status: PodStatus) {
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        let mut map = crate::supervisor::write(&self.inner, "pod status store");
        // Keep transition times stable while a condition's status does not change.
        let mut status = status;
        if let Some(old) = map.get(&uid) {
            preserve_transition_times(&old.status, &mut status);
        }
        let changed = map.get(&uid).is_none_or(|old| old.status != status);
        map.insert(
            uid,
            Entry {
                pod: Arc::clone(pod),
                status,
            },
        );
        drop(map);
        if changed {
            self.changes.send_modify(|g| *g += 1);
        }
    }

    /// A receiver that sees a new value whenever some pod's status changed or a pod was
    /// removed, so a consumer (the cluster status manager) never polls.
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        self.changes.subscribe()
    }

    pub fn remove(&self, uid: &str) {
        let removed = crate::supervisor::write(&self.inner, "pod status store")
            .remove(uid)
            .is_some();
        if removed {
            self.changes.send_modify(|g| *g += 1);
        }
    }

    /// The pod with its status.
    pub fn get(&self, uid: &str) -> Option<Arc<Pod>> {
        crate::supervisor::read(&self.inner, "pod status store")
            .get(uid)
            .map(Entry::with_status)
    }

    /// All pods with their status, ordered by UID.
    pub fn list(&self) -> Vec<Arc<Pod>> {
        crate::supervisor::read(&self.inner, "pod status store")
            .values()
            .map(Entry::with_status)
            .collect()
    }
}

fn preserve_transition_times(old: &PodStatus, new: &mut PodStatus) {
    let Some(conditions) = new.conditions.as_mut() else {
        return;
    };
    for c in conditions {
        if let Some(prev) = old.conditions.iter().flatten().find(|o| o.type_ == c.type_)
            && prev.status == c.status
        {
            c.last_transition_time = prev.last_transition_time.clone();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::PodCondition;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};

    fn pod(uid: &str) -> Arc<Pod> {
        Arc::new(Pod {
            metadata: ObjectMeta {
                uid: Some(uid.into()),
                name: Some(format!("pod-{uid}")),
                ..Default::default()
            },
            ..Default::default()
        })
    }

    fn ready(status: &str, at_secs: i64) -> PodStatus {
        PodStatus {
            phase: Some("Running".into()),
            conditions: Some(vec![PodCondition {
                type_: "Ready".into(),
                status: status.into(),
                last_transition_time: Some(Time(
                    k8s_openapi::jiff::Timestamp::from_second(at_secs).unwrap(),
                )),
                ..Default::default()
            }]),
            ..Default::default()
        }
    }

    #[test]
    fn readers_get_the_configured_pod_with_its_status() {
        let store = StatusStore::default();
        let p = pod("a");
        store.set(&p, ready("True", 10));
        let got = store.get("a").expect("stored");
        assert_eq!(got.metadata, p.metadata);
        assert_eq!(
            got.status.as_ref().unwrap().phase.as_deref(),
            Some("Running")
        );
        assert_eq!(store.list().len(), 1);
        assert!(store.get("b").is_none());
        store.remove("a");
        assert!(store.list().is_empty());
    }

    #[test]
    fn transition_time_kept_while_the_condition_holds() {
        let store = StatusStore::default();
        let p = pod("a");
        let mut changes = store.subscribe();
        store.set(&p, ready("True", 10));
        assert!(changes.has_changed().unwrap());
        changes.borrow_and_update();
        store.set(&p, ready("True", 20));
        let time = |s: &StatusStore| {
            s.get("a")
                .unwrap()
                .status
                .clone()
                .unwrap()
                .conditions
                .unwrap()[0]
                .last_transition_time
                .clone()
        };
        assert_eq!(
            time(&store),
            ready("True", 10).conditions.unwrap()[0].last_transition_time
        );
        assert!(
            !changes.has_changed().unwrap(),
            "same status: no change signalled"
        );
        store.set(&p, ready("False", 30));
        assert_eq!(
            time(&store),
            ready("False", 30).conditions.unwrap()[0].last_transition_time
        );
        assert!(changes.has_changed().unwrap());
    }
}
