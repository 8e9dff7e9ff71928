//! All Services of the cluster (upstream's service lister), for service environment
//! variables: one cluster-wide watch, started at the first lookup.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Service;
use kube::api::{Api, ListParams};
use kube::runtime::{WatchStreamExt, watcher};
use kubelet_core::objects::ObjectError;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

type Snapshot = Option<Arc<BTreeMap<(String, String), Arc<Service>>>>;

pub struct Services {
    client: kube::Client,
    state: Mutex<Option<watch::Receiver<Snapshot>>>,
    cancel: CancellationToken,
}

impl Services {
    pub fn new(client: kube::Client, cancel: CancellationToken) -> Self {
        Services {
            client,
            state: Mutex::new(None),
            cancel,
        }
    }

    pub async fn in_namespace(&self, namespace: &str) -> Result<Vec<Arc<Service>>, ObjectError> {
        let mut rx = self.receiver();
        let synced = tokio::time::timeout(Duration::from_secs(5), rx.wait_for(|s| s.is_some()))
            .await
            .ok()
            .and_then(|r| r.ok().map(|s| s.clone()))
            .flatten();
        if let Some(all) = synced {
            return Ok(all
                .iter()
                .filter(|((ns, _), _)| ns == namespace)
                .map(|(_, s)| s.clone())
                .collect());
        }
        let api: Api<Service> = Api::namespaced(self.client.clone(), namespace);
        match tokio::time::timeout(Duration::from_secs(10), api.list(&ListParams::default())).await
        {
            Ok(Ok(list)) => Ok(list.items.into_iter().map(Arc::new).collect()),
            Ok(Err(e)) => Err(ObjectError::Failed(format!("failed to list services: {e}"))),
            Err(_) => Err(ObjectError::Failed("timed out listing services".into())),
        }
    }

    fn receiver(&self) -> watch::Receiver<Snapshot> {
        let mut guard = kubelet_core::supervisor::lock(&self.state, "services watch");
        if let Some(rx) = guard.as_ref() {
            return rx.clone();
        }
        let (tx, rx) = watch::channel::<Snapshot>(None);
        *guard = Some(rx.clone());
        let api: Api<Service> = Api::all(self.client.clone());
        let cancel = self.cancel.clone();
        tokio::spawn(async move {
            let stream = watcher(api, watcher::Config::default()).default_backoff();
            futures::pin_mut!(stream);
            let mut current: BTreeMap<(String, String), Arc<Service>> = BTreeMap::new();
            let mut pending: Option<BTreeMap<(String, String), Arc<Service>>> = None;
            let key = |s: &Service| {
                (
                    s.metadata.namespace.clone().unwrap_or_default(),
                    s.metadata.name.clone().unwrap_or_default(),
                )
            };
            loop {
                let event = tokio::select! {
                    _ = cancel.cancelled() => return,
                    e = stream.next() => e,
                };
                let Some(event) = event else { return };
                match event {
                    Ok(watcher::Event::Init) => pending = Some(BTreeMap::new()),
                    Ok(watcher::Event::InitApply(s)) => {
                        if let Some(p) = pending.as_mut() {
                            p.insert(key(&s), Arc::new(s));
                        }
                        continue;
                    }
                    Ok(watcher::Event::InitDone) => current = pending.take().unwrap_or_default(),
                    Ok(watcher::Event::Apply(s)) => {
                        current.insert(key(&s), Arc::new(s));
                    }
                    Ok(watcher::Event::Delete(s)) => {
                        current.remove(&key(&s));
                    }
                    Err(e) => {
                        tracing::debug!(error = %e, "service watch failed; retrying");
                        continue;
                    }
                }
                if pending.is_none() {
                    tx.send_replace(Some(Arc::new(current.clone())));
                }
            }
        });
        rx
    }
}
