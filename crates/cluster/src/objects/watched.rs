//! A watch-based cache of single objects (upstream's watch-based ConfigMap/Secret
//! manager): the first lookup of `namespace/name` starts a watch of that one object
//! (`fieldSelector metadata.name=<name>`, which is what the node authorizer allows) and
//! waits for its first list; later lookups read the cache. Every change bumps the shared
//! generation so pod workers refresh volumes. Watches unused for a while are stopped.
//! If the watch has not synced in time, the object is read directly.

use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use kube::api::Api;
use kube::runtime::{WatchStreamExt, watcher};
use kubelet_core::objects::ObjectError;
use serde::de::DeserializeOwned;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::error::status_of;

const SYNC_TIMEOUT: Duration = Duration::from_secs(5);
const UNUSED_AFTER: Duration = Duration::from_secs(600);

/// What a watch knows: not yet synced, the object (None: does not exist), or why the
/// first list failed.
type State<K> = Option<Result<Option<Arc<K>>, String>>;

/// Whether a watch failed because the API server forbids it (403).
fn is_forbidden(e: &watcher::Error) -> bool {
    match e {
        watcher::Error::InitialListFailed(k)
        | watcher::Error::WatchStartFailed(k)
        | watcher::Error::WatchFailed(k) => status_of(k) == Some(403),
        watcher::Error::WatchError(s) => s.code == 403,
        watcher::Error::NoResourceVersion => false,
    }
}

/// (namespace, name) -> its watch.
type Entries<K> = HashMap<(String, String), Arc<Entry<K>>>;

struct Entry<K> {
    state: watch::Receiver<State<K>>,
    cancel: CancellationToken,
    last_used: Mutex<Instant>,
}

pub trait Watchable:
    kube::Resource<Scope = kube::core::NamespaceResourceScope, DynamicType = ()>
    + Clone
    + DeserializeOwned
    + Debug
    + Send
    + Sync
    + 'static
{
}

impl<K> Watchable for K where
    K: kube::Resource<Scope = kube::core::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + DeserializeOwned
        + Debug
        + Send
        + Sync
        + 'static
{
}

pub struct WatchedObjects<K: Watchable> {
    client: kube::Client,
    /// `configmap` or `secret`, for error messages.
    kind: &'static str,
    entries: Mutex<Entries<K>>,
    generation: Arc<watch::Sender<u64>>,
    cancel: CancellationToken,
}

impl<K: Watchable> WatchedObjects<K> {
    pub fn new(
        client: kube::Client,
        kind: &'static str,
        generation: Arc<watch::Sender<u64>>,
        cancel: CancellationToken,
    ) -> Self {
        WatchedObjects {
            client,
            kind,
            entries: Mutex::new(HashMap::new()),
            generation,
            cancel,
        }
    }

    pub async fn get(&self, namespace: &str, name: &str) -> Result<Arc<K>, ObjectError> {
        let entry = self.entry(namespace, name);
        *kubelet_core::supervisor::lock(&entry.last_used, "watched object use time") =
            Instant::now();
        let mut rx = entry.state.clone();
        let state = match tokio::time::timeout(SYNC_TIMEOUT, rx.wait_for(|s| s.is_some())).await {
            Ok(Ok(s)) => s.clone(),
            _ => None,
        };
        match state {
            Some(Ok(Some(obj))) => Ok(obj),
            Some(Ok(None)) => Err(self.not_found(name)),
            // Not synced (or the list failed): ask the API server directly.
            Some(Err(_)) | None => self.get_direct(namespace, name).await,
        }
    }

    fn not_found(&self, name: &str) -> ObjectError {
        ObjectError::NotFound {
            kind: self.kind,
            name: name.to_string(),
        }
    }

    async fn get_direct(&self, namespace: &str, name: &str) -> Result<Arc<K>, ObjectError> {
        let api: Api<K> = Api::namespaced(self.client.clone(), namespace);
        match tokio::time::timeout(Duration::from_secs(10), api.get(name)).await {
            Ok(Ok(obj)) => Ok(Arc::new(obj)),
            Ok(Err(e)) if status_of(&e) == Some(404) => Err(self.not_found(name)),
            Ok(Err(e)) => Err(ObjectError::Failed(format!(
                "failed to get {} {namespace}/{name}: {e}",
                self.kind
            ))),
            Err(_) => Err(ObjectError::Failed(format!(
                "timed out getting {} {namespace}/{name}",
                self.kind
            ))),
        }
    }

    fn entry(&self, namespace: &str, name: &str) -> Arc<Entry<K>> {
        let key = (namespace.to_string(), name.to_string());
        let mut entries = kubelet_core::supervisor::lock(&self.entries, "watched objects");
        if let Some(e) = entries.get(&key)
            && !e.cancel.is_cancelled()
        {
            return e.clone();
        }
        let e = self.start(namespace, name);
        entries.insert(key, e.clone());
        e
    }

    fn start(&self, namespace: &str, name: &str) -> Arc<Entry<K>> {
        let (tx, rx) = watch::channel::<State<K>>(None);
        let cancel = self.cancel.child_token();
        let api: Api<K> = Api::namespaced(self.client.clone(), namespace);
        let config = watcher::Config::default().fields(&format!("metadata.name={name}"));
        let generation = self.generation.clone();
        let task_cancel = cancel.clone();
        tokio::spawn(async move {
            let stream = watcher(api, config).default_backoff();
            futures::pin_mut!(stream);
            let mut pending: Option<Option<Arc<K>>> = None;
            loop {
                let event = tokio::select! {
                    _ = task_cancel.cancelled() => return,
                    e = stream.next() => e,
                };
                let Some(event) = event else { return };
                let next: State<K> = match event {
                    Ok(watcher::Event::Init) => {
                        pending = Some(None);
                        continue;
                    }
                    Ok(watcher::Event::InitApply(obj)) => {
                        pending = Some(Some(Arc::new(obj)));
                        continue;
                    }
                    Ok(watcher::Event::InitDone) => Some(Ok(pending.take().flatten())),
                    Ok(watcher::Event::Apply(obj)) => Some(Ok(Some(Arc::new(obj)))),
                    Ok(watcher::Event::Delete(_)) => Some(Ok(None)),
                    Err(e) => {
                        // Keep serving what was known; only a never-synced watch reports.
                        if tx.borrow().is_none() {
                            tx.send_replace(Some(Err(e.to_string())));
                        }
                        if is_forbidden(&e) {
                            // The node authorizer lets a node read only what its pods
                            // reference: no pod here needs this object any more. Stop
                            // instead of retrying forever; the next lookup watches anew.
                            tracing::debug!(error = %e, "watch forbidden; stopping it");
                            task_cancel.cancel();
                            return;
                        }
                        continue;
                    }
                };
                let changed = match (&*tx.borrow(), &next) {
                    (Some(Ok(Some(a))), Some(Ok(Some(b)))) => {
                        a.meta().resource_version != b.meta().resource_version
                    }
                    (Some(Ok(None)), Some(Ok(None))) => false,
                    _ => true,
                };
                let was_synced = matches!(&*tx.borrow(), Some(Ok(_)));
                tx.send_replace(next);
                if changed && was_synced {
                    generation.send_modify(|g| *g += 1);
                }
            }
        });
        Arc::new(Entry {
            state: rx,
            cancel,
            last_used: Mutex::new(Instant::now()),
        })
    }

    /// Stop watches nobody used for a while.
    pub fn expire_unused(&self) {
        let mut entries = kubelet_core::supervisor::lock(&self.entries, "watched objects");
        entries.retain(|_, e| {
            let fresh = kubelet_core::supervisor::lock(&e.last_used, "watched object use time")
                .elapsed()
                < UNUSED_AFTER;
            if !fresh {
                e.cancel.cancel();
            }
            fresh
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::Secret;
    use test_apiserver::{Credentials, Options, Policy, Rule, Server, UserInfo};

    /// A Secret the node may not read (the node authorizer's answer once no pod on the
    /// node references it) is watched once, not retried forever.
    #[tokio::test]
    async fn a_forbidden_watch_stops() {
        let server = Server::start(Options::default()).await.unwrap();
        server.add_token(
            "node-token",
            UserInfo::new("system:node:n1", &["system:nodes"]),
        );
        server.set_policy(Policy::Rules(vec![Rule {
            users: vec!["system:node:n1".into()],
            verbs: vec!["get".into(), "list".into(), "watch".into()],
            resources: vec!["configmaps".into()],
            ..Default::default()
        }]));
        let path = server.dir().join("node.kubeconfig");
        server
            .write_kubeconfig(&path, &Credentials::Token("node-token".into()))
            .unwrap();
        let kc = kube::config::Kubeconfig::read_from(&path).unwrap();
        let config = kube::Config::from_custom_kubeconfig(kc, &Default::default())
            .await
            .unwrap();
        let client = kube::Client::try_from(config).unwrap();
        let secrets: WatchedObjects<Secret> = WatchedObjects::new(
            client,
            "secret",
            Arc::new(watch::Sender::new(0)),
            CancellationToken::new(),
        );
        let err = secrets.get("default", "s1").await.unwrap_err();
        assert!(err.to_string().contains("forbidden"), "{err}");
        tokio::time::sleep(Duration::from_secs(3)).await;
        let asked = server
            .requests()
            .iter()
            .filter(|r| r.path.contains("/secrets"))
            .count();
        // One list of the watch and the direct read; no retries.
        assert_eq!(asked, 2, "{:?}", server.requests());
    }
}
