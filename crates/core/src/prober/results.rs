//! The latest result of every probe of a pod, by container ID and probe kind (upstream
//! results.Manager). Probe tasks write; the pod worker reads, and wakes when a result
//! changes.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::watch;

use super::ProbeKind;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProbeResult {
    Unknown,
    Success,
    Failure,
}

#[derive(Clone)]
pub struct ProbeResults {
    inner: Arc<Mutex<HashMap<(String, ProbeKind), ProbeResult>>>,
    /// Bumped on every change; the pod worker waits on it.
    version: Arc<watch::Sender<u64>>,
}

impl Default for ProbeResults {
    fn default() -> Self {
        ProbeResults {
            inner: Arc::default(),
            version: Arc::new(watch::channel(0).0),
        }
    }
}

impl ProbeResults {
    pub fn get(&self, container_id: &str, kind: ProbeKind) -> Option<ProbeResult> {
        let map = crate::supervisor::lock(&self.inner, "probe results");
        map.get(&(container_id.to_string(), kind)).copied()
    }

    /// Record a result; watchers are told only when it differs from the previous one.
    pub fn set(&self, container_id: &str, kind: ProbeKind, result: ProbeResult) {
        let changed = crate::supervisor::lock(&self.inner, "probe results")
            .insert((container_id.to_string(), kind), result)
            != Some(result);
        if changed {
            self.version.send_modify(|v| *v += 1);
        }
    }

    pub fn remove(&self, container_id: &str, kind: ProbeKind) {
        let removed = crate::supervisor::lock(&self.inner, "probe results")
            .remove(&(container_id.to_string(), kind))
            .is_some();
        if removed {
            self.version.send_modify(|v| *v += 1);
        }
    }

    /// A receiver that sees a new value after every change.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.version.subscribe()
    }

    pub fn len(&self) -> usize {
        crate::supervisor::lock(&self.inner, "probe results").len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_are_announced_once() {
        let r = ProbeResults::default();
        let mut rx = r.subscribe();
        rx.borrow_and_update();
        r.set("c1", ProbeKind::Readiness, ProbeResult::Failure);
        assert!(rx.has_changed().unwrap());
        rx.borrow_and_update();
        r.set("c1", ProbeKind::Readiness, ProbeResult::Failure);
        assert!(!rx.has_changed().unwrap(), "same value is not a change");
        r.set("c1", ProbeKind::Readiness, ProbeResult::Success);
        assert!(rx.has_changed().unwrap());
        assert_eq!(
            r.get("c1", ProbeKind::Readiness),
            Some(ProbeResult::Success)
        );
        assert_eq!(r.get("c1", ProbeKind::Liveness), None);
        r.remove("c1", ProbeKind::Readiness);
        assert!(r.is_empty());
    }
}
