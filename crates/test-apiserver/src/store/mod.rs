//! The in-memory object store: one global resourceVersion counter, a bounded history of
//! changes (for watch resume, exact-RV lists and continue tokens), and a broadcast of
//! changes to watchers. Everything mutating happens under one lock, so a read-modify-write
//! closure is atomic like an etcd transaction.

mod snapshot;

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use serde_json::Value;
use tokio::sync::broadcast;

use crate::error::ApiError;
use crate::meta;

pub use snapshot::Snapshot;

/// Where an object lives: storage name (e.g. `pods`, `leases.coordination.k8s.io`),
/// namespace ("" for cluster-scoped) and name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjKey {
    /// Storage name of the resource.
    pub storage: String,
    /// Namespace, "" when cluster-scoped.
    pub namespace: String,
    /// Object name.
    pub name: String,
}

impl ObjKey {
    /// Builds a key.
    pub fn new(storage: &str, namespace: &str, name: &str) -> Self {
        ObjKey {
            storage: storage.into(),
            namespace: namespace.into(),
            name: name.into(),
        }
    }
}

/// The kind of a change, as in a watch event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    /// Object created.
    Added,
    /// Object updated.
    Modified,
    /// Object removed.
    Deleted,
}

/// One committed change.
#[derive(Debug)]
pub struct Change {
    /// The resourceVersion of this change.
    pub rv: u64,
    /// Which object.
    pub key: ObjKey,
    /// What happened.
    pub kind: ChangeKind,
    /// The object after the change (for a delete: the last state, with the delete's RV).
    pub object: Arc<Value>,
    /// The object before the change.
    pub prev: Option<Arc<Value>>,
}

/// What a mutation closure decided.
pub enum Mutation {
    /// Store this object (create or update; the store sets resourceVersion).
    Put(Value),
    /// Remove the object.
    Delete,
    /// Change nothing; return the current object.
    Keep,
}

/// The result of a mutation.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// The stored object (after a put, or unchanged).
    Stored(Arc<Value>),
    /// The object was removed; its last state with the delete's RV.
    Deleted(Arc<Value>),
}

struct State {
    rv: u64,
    objects: BTreeMap<ObjKey, Arc<Value>>,
    history: VecDeque<Arc<Change>>,
    /// Every change with rv <= this is forgotten.
    compacted: u64,
    history_limit: usize,
}

/// The store. Cheap to share behind an `Arc`.
pub struct Store {
    state: Mutex<State>,
    tx: broadcast::Sender<Arc<Change>>,
}

/// A watch subscription: changes after the requested RV already committed, plus a live
/// receiver for later ones (both taken under the lock, so nothing is missed or repeated).
pub struct Subscription {
    /// Already committed changes with rv greater than the requested RV.
    pub backlog: Vec<Arc<Change>>,
    /// Live changes.
    pub live: broadcast::Receiver<Arc<Change>>,
    /// The store RV when subscribing.
    pub current_rv: u64,
}

impl Store {
    /// A new empty store keeping at most `history_limit` changes.
    pub fn new(history_limit: usize) -> Self {
        let (tx, _) = broadcast::channel(4096);
        Store {
            state: Mutex::new(State {
                rv: 0,
                objects: BTreeMap::new(),
                history: VecDeque::new(),
                compacted: 0,
                history_limit: history_limit.max(1),
            }),
            tx,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A poisoned lock only means a panic elsewhere; the data is still consistent
        // because every mutation is applied in one step.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The current (latest committed) resourceVersion.
    pub fn current_rv(&self) -> u64 {
        self.lock().rv
    }

    /// The oldest RV still servable: changes after it are all retained.
    pub fn compacted_rv(&self) -> u64 {
        self.lock().compacted
    }

    /// One object.
    pub fn get(&self, key: &ObjKey) -> Option<Arc<Value>> {
        self.lock().objects.get(key).cloned()
    }

    /// All objects of a storage (optionally one namespace) at the latest RV, in key order.
    pub fn list(&self, storage: &str, namespace: Option<&str>) -> (Vec<Arc<Value>>, u64) {
        let st = self.lock();
        (
            range(&st.objects, storage, namespace)
                .map(|(_, v)| v.clone())
                .collect(),
            st.rv,
        )
    }

    /// A consistent snapshot of a storage at `rv` (must not be compacted or in the future).
    pub fn snapshot_at(
        &self,
        storage: &str,
        namespace: Option<&str>,
        rv: u64,
    ) -> Result<Snapshot, SnapshotError> {
        let st = self.lock();
        if rv > st.rv {
            return Err(SnapshotError::TooNew { current: st.rv });
        }
        if rv < st.compacted {
            return Err(SnapshotError::Compacted {
                compacted: st.compacted,
            });
        }
        Ok(snapshot::at(
            &st.objects,
            &st.history,
            storage,
            namespace,
            rv,
        ))
    }

    /// Atomically read and mutate one object. `f` sees the current object (if any) and
    /// decides; a `Put` equal to the current object (ignoring resourceVersion) is a no-op
    /// with no new RV and no event, as upstream.
    pub fn mutate<F>(&self, key: &ObjKey, f: F) -> Result<Outcome, ApiError>
    where
        F: FnOnce(Option<&Arc<Value>>) -> Result<Mutation, ApiError>,
    {
        let mut st = self.lock();
        let current = st.objects.get(key).cloned();
        match f(current.as_ref())? {
            Mutation::Keep => match current {
                Some(c) => Ok(Outcome::Stored(c)),
                None => Err(ApiError::Internal("mutation kept a missing object".into())),
            },
            Mutation::Put(mut obj) => {
                if let Some(cur) = &current {
                    meta::set_resource_version(&mut obj, meta::resource_version(cur).unwrap_or(0));
                    if obj == **cur {
                        return Ok(Outcome::Stored(cur.clone()));
                    }
                }
                let rv = st.rv + 1;
                st.rv = rv;
                meta::set_resource_version(&mut obj, rv);
                let obj = Arc::new(obj);
                st.objects.insert(key.clone(), obj.clone());
                let kind = if current.is_some() {
                    ChangeKind::Modified
                } else {
                    ChangeKind::Added
                };
                self.record(
                    &mut st,
                    Change {
                        rv,
                        key: key.clone(),
                        kind,
                        object: obj.clone(),
                        prev: current,
                    },
                );
                Ok(Outcome::Stored(obj))
            }
            Mutation::Delete => {
                let Some(cur) = current else {
                    return Err(ApiError::Internal(
                        "mutation deleted a missing object".into(),
                    ));
                };
                let rv = st.rv + 1;
                st.rv = rv;
                st.objects.remove(key);
                let mut last = (*cur).clone();
                meta::set_resource_version(&mut last, rv);
                let last = Arc::new(last);
                self.record(
                    &mut st,
                    Change {
                        rv,
                        key: key.clone(),
                        kind: ChangeKind::Deleted,
                        object: last.clone(),
                        prev: Some(cur),
                    },
                );
                Ok(Outcome::Deleted(last))
            }
        }
    }

    fn record(&self, st: &mut State, change: Change) {
        let change = Arc::new(change);
        st.history.push_back(change.clone());
        while st.history.len() > st.history_limit {
            if let Some(old) = st.history.pop_front() {
                st.compacted = old.rv;
            }
        }
        // No receivers is fine.
        let _ = self.tx.send(change);
    }

    /// Subscribes to changes after `from_rv`. Fails when `from_rv` is compacted (410) or
    /// newer than the store.
    pub fn subscribe(&self, from_rv: u64) -> Result<Subscription, SnapshotError> {
        let st = self.lock();
        if from_rv > st.rv {
            return Err(SnapshotError::TooNew { current: st.rv });
        }
        if from_rv < st.compacted {
            return Err(SnapshotError::Compacted {
                compacted: st.compacted,
            });
        }
        let backlog = st
            .history
            .iter()
            .filter(|c| c.rv > from_rv)
            .cloned()
            .collect();
        Ok(Subscription {
            backlog,
            live: self.tx.subscribe(),
            current_rv: st.rv,
        })
    }

    /// Subscribes at the current RV, returning the current objects of a storage too
    /// (for watches that start with synthetic ADDED events).
    pub fn subscribe_with_state(
        &self,
        storage: &str,
        namespace: Option<&str>,
    ) -> (Vec<Arc<Value>>, Subscription) {
        let st = self.lock();
        let objects = range(&st.objects, storage, namespace)
            .map(|(_, v)| v.clone())
            .collect();
        (
            objects,
            Subscription {
                backlog: Vec::new(),
                live: self.tx.subscribe(),
                current_rv: st.rv,
            },
        )
    }

    /// Forgets history up to `upto` (default: everything), so older RVs give 410 Gone.
    pub fn compact(&self, upto: Option<u64>) -> u64 {
        let mut st = self.lock();
        let upto = upto.unwrap_or(st.rv).min(st.rv);
        while st.history.front().is_some_and(|c| c.rv <= upto) {
            st.history.pop_front();
        }
        st.compacted = st.compacted.max(upto);
        st.compacted
    }

    /// Number of changes retained.
    pub fn history_len(&self) -> usize {
        self.lock().history.len()
    }
}

/// Why a snapshot or subscription at an RV is impossible.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SnapshotError {
    /// The RV is older than the retained history.
    #[error("resource version compacted (oldest available {compacted})")]
    Compacted {
        /// Newest forgotten RV.
        compacted: u64,
    },
    /// The RV has not been reached yet.
    #[error("resource version too large (current {current})")]
    TooNew {
        /// Current RV.
        current: u64,
    },
}

fn range<'a>(
    objects: &'a BTreeMap<ObjKey, Arc<Value>>,
    storage: &'a str,
    namespace: Option<&'a str>,
) -> impl Iterator<Item = (&'a ObjKey, &'a Arc<Value>)> + 'a {
    let start = ObjKey::new(storage, namespace.unwrap_or(""), "");
    objects.range(start..).take_while(move |(k, _)| {
        k.storage == storage && namespace.is_none_or(|ns| k.namespace == ns)
    })
}

#[cfg(test)]
mod tests;
