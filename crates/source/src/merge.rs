//! The merge of the sources' snapshots into one [`DesiredPods`] (upstream
//! `pkg/kubelet/config/config.go`, reduced to set semantics).
//!
//! The latest snapshot of each source is kept. After each update the merged view is
//! recomputed and published on the watch channel only when it changed (pods or
//! readiness). `all_sources_ready` turns true once every expected source has sent at
//! least one snapshot, and stays true.
//!
//! A pod full name (namespace/name) claimed by two sources goes to the first source in
//! [`SourceKind`] order (file, then http, then api); the conflict is logged. A UID
//! claimed twice keeps the first pod likewise. Unchanged pods keep their `Arc`, so
//! consumers can compare cheaply with `Arc::ptr_eq`, and a pod that already carries
//! the annotations below is published as the very `Arc` its source sent (the file and
//! URL sources set them), so the merged view holds no copy of its own.
//!
//! `kubernetes.io/config.source` is set from the snapshot's source, and
//! `kubernetes.io/config.seen` keeps the first value seen for each UID for as long as
//! the UID stays in the merged view.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use crate::annotations::CONFIG_SOURCE;
use crate::seen::FirstSeen;
use crate::{DesiredPods, Pod, SourceKind, SourceUpdate, pod_full_name, pod_uid};

/// Merges snapshots from `rx` into `out` until `cancel` fires. When every sender is gone
/// the last state stays published (the watch sender is kept alive) until `cancel`, so
/// consumers never see a closed channel before shutdown.
pub async fn run(
    expected: BTreeSet<SourceKind>,
    mut rx: mpsc::Receiver<SourceUpdate>,
    out: watch::Sender<DesiredPods>,
    cancel: CancellationToken,
) {
    let mut merger = Merger::new(expected);
    publish(&out, merger.desired());
    loop {
        let update = tokio::select! {
            _ = cancel.cancelled() => return,
            u = rx.recv() => u,
        };
        let Some(update) = update else {
            tracing::debug!("all pod sources closed; the merged view stays as it is");
            cancel.cancelled().await;
            return;
        };
        merger.apply(update);
        publish(&out, merger.desired());
    }
}

fn publish(out: &watch::Sender<DesiredPods>, desired: DesiredPods) {
    out.send_if_modified(|current| {
        if *current == desired {
            false
        } else {
            *current = desired;
            true
        }
    });
}

/// The merge state, independent of channels (unit-testable).
pub struct Merger {
    expected: BTreeSet<SourceKind>,
    seen_sources: BTreeSet<SourceKind>,
    snapshots: BTreeMap<SourceKind, Vec<Arc<Pod>>>,
    first_seen: FirstSeen,
    current: BTreeMap<String, Arc<Pod>>,
    conflicts: BTreeSet<String>,
}

impl Merger {
    pub fn new(expected: BTreeSet<SourceKind>) -> Self {
        Self {
            expected,
            seen_sources: BTreeSet::new(),
            snapshots: BTreeMap::new(),
            first_seen: FirstSeen::new(),
            current: BTreeMap::new(),
            conflicts: BTreeSet::new(),
        }
    }

    /// Records a source's complete snapshot and recomputes the merged pods.
    pub fn apply(&mut self, update: SourceUpdate) {
        if !self.expected.contains(&update.source) {
            tracing::warn!(source = %update.source, "snapshot from a source that was not expected");
        }
        self.seen_sources.insert(update.source);
        self.snapshots.insert(update.source, update.pods);
        self.recompute();
    }

    pub fn all_sources_ready(&self) -> bool {
        self.expected.is_subset(&self.seen_sources)
    }

    pub fn desired(&self) -> DesiredPods {
        DesiredPods {
            pods: self.current.clone(),
            all_sources_ready: self.all_sources_ready(),
        }
    }

    fn recompute(&mut self) {
        let mut by_name: BTreeMap<String, SourceKind> = BTreeMap::new();
        let mut next: BTreeMap<String, Arc<Pod>> = BTreeMap::new();
        let mut conflicts = BTreeSet::new();
        let snapshots = std::mem::take(&mut self.snapshots);
        for (&source, pods) in &snapshots {
            for pod in pods {
                let full_name = pod_full_name(pod);
                let uid = pod_uid(pod).to_string();
                if let Some(owner) = by_name.get(&full_name) {
                    conflicts.insert(format!(
                        "pod {full_name} from {source} ignored: already provided by {owner}"
                    ));
                    continue;
                }
                if uid.is_empty() || next.contains_key(&uid) {
                    conflicts.insert(format!(
                        "pod {full_name} from {source} ignored: empty or duplicate UID {uid:?}"
                    ));
                    continue;
                }
                by_name.insert(full_name, source);
                let pod = self.annotated(source, pod);
                let pod = match self.current.get(&uid) {
                    Some(existing) if Arc::ptr_eq(existing, &pod) || **existing == *pod => {
                        Arc::clone(existing)
                    }
                    _ => pod,
                };
                next.insert(uid, pod);
            }
        }
        self.snapshots = snapshots;
        for c in conflicts.difference(&self.conflicts) {
            tracing::error!("{c}");
        }
        self.conflicts = conflicts;
        let uids: BTreeSet<String> = next.keys().cloned().collect();
        self.first_seen.retain(&uids);
        self.current = next;
    }

    /// `pod` with `config.source` naming `source` and its first-seen `config.seen`:
    /// the source's own `Arc` when both are already right, else an annotated copy.
    fn annotated(&mut self, source: SourceKind, pod: &Arc<Pod>) -> Arc<Pod> {
        let mut pod = Arc::clone(pod);
        let source_set = pod
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(CONFIG_SOURCE))
            .is_some_and(|v| v == source.as_str());
        if !source_set {
            Arc::make_mut(&mut pod)
                .metadata
                .annotations
                .get_or_insert_with(Default::default)
                .insert(CONFIG_SOURCE.to_string(), source.as_str().to_string());
        }
        self.first_seen.stamp_shared(&mut pod);
        pod
    }
}

#[cfg(test)]
mod tests;
