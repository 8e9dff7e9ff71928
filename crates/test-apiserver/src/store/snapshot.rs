//! Reconstructing the state of one storage at a past resourceVersion by undoing the retained
//! changes newer than it (the way etcd serves a read at an old revision).

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use serde_json::Value;

use super::{Change, ChangeKind, ObjKey};

/// Objects of one storage at one RV, in key order.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// The RV the snapshot is at.
    pub rv: u64,
    /// The objects, keyed for pagination.
    pub objects: BTreeMap<ObjKey, Arc<Value>>,
}

pub(super) fn at(
    objects: &BTreeMap<ObjKey, Arc<Value>>,
    history: &VecDeque<Arc<Change>>,
    storage: &str,
    namespace: Option<&str>,
    rv: u64,
) -> Snapshot {
    let wanted = |k: &ObjKey| k.storage == storage && namespace.is_none_or(|ns| k.namespace == ns);
    let mut snap: BTreeMap<ObjKey, Arc<Value>> = objects
        .iter()
        .filter(|(k, _)| wanted(k))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    for change in history.iter().rev().take_while(|c| c.rv > rv) {
        if !wanted(&change.key) {
            continue;
        }
        match (change.kind, &change.prev) {
            (ChangeKind::Added, _) | (_, None) => {
                snap.remove(&change.key);
            }
            (ChangeKind::Modified | ChangeKind::Deleted, Some(prev)) => {
                snap.insert(change.key.clone(), prev.clone());
            }
        }
    }
    Snapshot { rv, objects: snap }
}
