//! The latest status of every pod the kubelet runs, written by pod workers and read by
//! the node API and `--runonce`. Each entry is the pod as configured with its status set.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use k8s_openapi::api::core::v1::{Pod, PodStatus};

#[derive(Clone, Default)]
pub struct StatusStore {
    inner: Arc<RwLock<BTreeMap<String, Arc<Pod>>>>,
    /// Bumped when a status changes or a pod leaves (see [`StatusStore::subscribe`]).
    changes: Arc<tokio::sync::watch::Sender<u64>>,
}

impl StatusStore {
    pub fn set(&self, pod: &Pod, status: PodStatus) {
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        let mut with_status = pod.clone();
        // Keep transition times stable while a condition's status does not change.
        let mut status = status;
        if let Ok(map) = self.inner.read()
            && let Some(old) = map.get(&uid).and_then(|p| p.status.as_ref())
        {
            preserve_transition_times(old, &mut status);
        }
        let changed = match self.inner.read() {
            Ok(map) => map
                .get(&uid)
                .is_none_or(|old| old.status.as_ref() != Some(&status)),
            Err(_) => true,
        };
        with_status.status = Some(status);
        if let Ok(mut map) = self.inner.write() {
            map.insert(uid, Arc::new(with_status));
        }
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
        let removed = match self.inner.write() {
            Ok(mut map) => map.remove(uid).is_some(),
            Err(_) => false,
        };
        if removed {
            self.changes.send_modify(|g| *g += 1);
        }
    }

    pub fn get(&self, uid: &str) -> Option<Arc<Pod>> {
        self.inner.read().ok().and_then(|m| m.get(uid).cloned())
    }

    /// All pods, ordered by UID.
    pub fn list(&self) -> Vec<Arc<Pod>> {
        self.inner
            .read()
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default()
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
