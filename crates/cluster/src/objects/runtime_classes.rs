//! node.k8s.io/v1 RuntimeClasses (upstream's runtimeclass manager): one cluster-wide
//! watch, started with the kubelet, whose cache answers handler lookups.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::node::v1::RuntimeClass;
use kube::api::Api;
use kube::runtime::{WatchStreamExt, watcher};
use kubelet_core::objects::ObjectError;
use kubelet_core::runtime::runtime_class::RESOURCE;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// RuntimeClass name -> handler; `None` until the first list arrived.
type Snapshot = Option<Arc<BTreeMap<String, String>>>;

/// How long a lookup waits for the first list before failing (the sandbox is retried).
const SYNC_WAIT: Duration = Duration::from_secs(5);

pub struct RuntimeClasses {
    rx: watch::Receiver<Snapshot>,
}

impl RuntimeClasses {
    pub fn new(client: kube::Client, cancel: CancellationToken) -> Self {
        let (tx, rx) = watch::channel::<Snapshot>(None);
        let api: Api<RuntimeClass> = Api::all(client);
        tokio::spawn(async move {
            let stream = watcher(api, watcher::Config::default()).default_backoff();
            futures::pin_mut!(stream);
            let mut current: BTreeMap<String, String> = BTreeMap::new();
            let mut pending: Option<BTreeMap<String, String>> = None;
            let entry = |rc: RuntimeClass| (rc.metadata.name.unwrap_or_default(), rc.handler);
            loop {
                let event = tokio::select! {
                    _ = cancel.cancelled() => return,
                    e = stream.next() => e,
                };
                let Some(event) = event else { return };
                match event {
                    Ok(watcher::Event::Init) => pending = Some(BTreeMap::new()),
                    Ok(watcher::Event::InitApply(rc)) => {
                        if let Some(p) = pending.as_mut() {
                            let (name, handler) = entry(rc);
                            p.insert(name, handler);
                        }
                        continue;
                    }
                    Ok(watcher::Event::InitDone) => current = pending.take().unwrap_or_default(),
                    Ok(watcher::Event::Apply(rc)) => {
                        let (name, handler) = entry(rc);
                        current.insert(name, handler);
                    }
                    Ok(watcher::Event::Delete(rc)) => {
                        current.remove(&rc.metadata.name.unwrap_or_default());
                    }
                    Err(e) => {
                        tracing::debug!(error = %e, "runtimeclass watch failed; retrying");
                        continue;
                    }
                }
                if pending.is_none() {
                    tx.send_replace(Some(Arc::new(current.clone())));
                }
            }
        });
        RuntimeClasses { rx }
    }

    /// The handler of RuntimeClass `name`, as upstream's LookupRuntimeHandler.
    pub async fn handler(&self, name: &str) -> Result<String, ObjectError> {
        let mut rx = self.rx.clone();
        let synced = tokio::time::timeout(SYNC_WAIT, rx.wait_for(|s| s.is_some()))
            .await
            .ok()
            .and_then(|r| r.ok().map(|s| s.clone()))
            .flatten();
        let Some(classes) = synced else {
            return Err(ObjectError::Failed(format!(
                "failed to lookup RuntimeClass {name}: RuntimeClasses not listed from the API server yet"
            )));
        };
        classes
            .get(name)
            .cloned()
            .ok_or_else(|| ObjectError::NotFound {
                kind: RESOURCE,
                name: name.to_string(),
            })
    }
}
