//! The API pod source: a watch of the pods bound to this node (`fieldSelector
//! spec.nodeName=<node>`), resumed from the last resourceVersion after a disconnect and
//! relisted after `410 Gone` (kube's watcher does both, with bounded backoff).
//!
//! Every change sends a complete [`SourceUpdate`] (source `api`) to the merge. API pods
//! keep their names and UIDs. Mirror pods are not pods to run: they only appear in the
//! [`ApiPods`] view the status and mirror managers read. The pods sent to the merge carry
//! no status (only the phase, so a finished pod is never started again), no
//! resourceVersion and no managedFields: a status patch then changes nothing the workers
//! see.

use std::collections::BTreeMap;
use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Pod, PodStatus};
use kube::api::Api;
use kube::runtime::{WatchStreamExt, watcher};
use kubelet_source::{SourceKind, SourceUpdate};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use super::{ApiPods, is_mirror};

pub struct ApiPodSource {
    client: kube::Client,
    node_name: String,
    view: watch::Sender<Arc<ApiPods>>,
}

impl ApiPodSource {
    pub fn new(client: kube::Client, node_name: String, view: watch::Sender<Arc<ApiPods>>) -> Self {
        ApiPodSource {
            client,
            node_name,
            view,
        }
    }

    pub async fn run(self, tx: mpsc::Sender<SourceUpdate>, cancel: CancellationToken) {
        let api: Api<Pod> = Api::all(self.client.clone());
        let config =
            watcher::Config::default().fields(&format!("spec.nodeName={}", self.node_name));
        let stream = watcher(api, config).default_backoff();
        futures::pin_mut!(stream);
        let mut current: BTreeMap<String, Arc<Pod>> = BTreeMap::new();
        let mut relisting: Option<BTreeMap<String, Arc<Pod>>> = None;
        let mut synced = false;
        let mut last_sent: Option<Vec<Arc<Pod>>> = None;
        loop {
            let event = tokio::select! {
                _ = cancel.cancelled() => return,
                e = stream.next() => e,
            };
            let Some(event) = event else {
                tracing::warn!("pod watch stream ended");
                return;
            };
            match event {
                Ok(watcher::Event::Init) => relisting = Some(BTreeMap::new()),
                Ok(watcher::Event::InitApply(pod)) => {
                    if let (Some(buf), Some(uid)) = (relisting.as_mut(), pod.metadata.uid.clone()) {
                        buf.insert(uid, Arc::new(pod));
                    }
                    continue;
                }
                Ok(watcher::Event::InitDone) => {
                    if let Some(buf) = relisting.take() {
                        current = buf;
                    }
                    if !synced {
                        tracing::info!(
                            pods = current.len(),
                            "pods bound to this node listed from the API server"
                        );
                    }
                    synced = true;
                }
                Ok(watcher::Event::Apply(pod)) => {
                    if let Some(uid) = pod.metadata.uid.clone() {
                        current.insert(uid, Arc::new(pod));
                    }
                }
                Ok(watcher::Event::Delete(pod)) => {
                    if let Some(uid) = pod.metadata.uid.as_deref() {
                        current.remove(uid);
                    }
                }
                Err(err) => {
                    tracing::warn!(error = %err, "pod watch failed; retrying with backoff");
                    continue;
                }
            }
            if relisting.is_some() || !synced {
                continue;
            }
            self.view.send_replace(Arc::new(ApiPods {
                pods: current.clone(),
                synced,
            }));
            let pods: Vec<Arc<Pod>> = current
                .values()
                .filter(|p| !is_mirror(p))
                .map(|p| Arc::new(for_workers(p)))
                .collect();
            if last_sent.as_ref() == Some(&pods) {
                continue;
            }
            last_sent = Some(pods.clone());
            let update = SourceUpdate {
                source: SourceKind::Api,
                pods,
            };
            if tx.send(update).await.is_err() {
                return;
            }
        }
    }
}

/// The pod as workers get it (see the module doc).
pub fn for_workers(pod: &Pod) -> Pod {
    let mut p = pod.clone();
    p.metadata.resource_version = None;
    p.metadata.managed_fields = None;
    p.status = pod
        .status
        .as_ref()
        .and_then(|s| s.phase.clone())
        .map(|phase| PodStatus {
            phase: Some(phase),
            ..Default::default()
        });
    p
}
