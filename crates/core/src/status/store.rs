//! The latest status of every pod the kubelet runs, written by pod workers and read by
//! the node API and `--runonce`. Each entry is the pod as configured with its status set.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use k8s_openapi::api::core::v1::{Pod, PodStatus};

#[derive(Clone, Default)]
pub struct StatusStore {
    inner: Arc<RwLock<BTreeMap<String, Arc<Pod>>>>,
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
        with_status.status = Some(status);
        if let Ok(mut map) = self.inner.write() {
            map.insert(uid, Arc::new(with_status));
        }
    }

    pub fn remove(&self, uid: &str) {
        if let Ok(mut map) = self.inner.write() {
            map.remove(uid);
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
