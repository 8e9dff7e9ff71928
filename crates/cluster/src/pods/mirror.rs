//! Mirror pods (upstream mirror_client.go and the pod manager's sync): every static pod
//! gets a read-only copy in the API server, annotated `kubernetes.io/config.mirror` with
//! the static pod's config hash and owned by the Node. A mirror pod that is deleted, or
//! whose hash no longer matches, is (re)created; one whose static pod is gone is deleted
//! once every source has reported. Deletes use grace 0 and a UID precondition.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::api::{Api, DeleteParams, PostParams, Preconditions};
use kubelet_source::DesiredPods;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::{
    ApiPods, HASH_ANNOTATION, MIRROR_ANNOTATION, annotation, full_name, is_mirror, is_static,
};
use crate::backoff::Backoff;
use crate::error::{ClusterError, with_timeout};

const CALL_TIMEOUT: Duration = Duration::from_secs(10);

pub struct MirrorManager {
    client: kube::Client,
    desired: watch::Receiver<DesiredPods>,
    api: watch::Receiver<Arc<ApiPods>>,
    node: watch::Receiver<Option<Arc<Node>>>,
    node_name: String,
}

impl MirrorManager {
    pub fn new(
        client: kube::Client,
        node_name: String,
        desired: watch::Receiver<DesiredPods>,
        api: watch::Receiver<Arc<ApiPods>>,
        node: watch::Receiver<Option<Arc<Node>>>,
    ) -> Self {
        MirrorManager {
            client,
            desired,
            api,
            node,
            node_name,
        }
    }

    pub async fn run(mut self, cancel: CancellationToken) {
        let mut backoff = Backoff::new(Duration::from_millis(500), Duration::from_secs(30));
        let mut retry_in: Option<Duration> = Some(Duration::ZERO);
        loop {
            let sleep = async {
                match retry_in {
                    Some(d) => tokio::time::sleep(d).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = cancel.cancelled() => return,
                r = self.desired.changed() => if r.is_err() { return },
                r = self.api.changed() => if r.is_err() { return },
                r = self.node.changed() => if r.is_err() { return },
                _ = sleep => {}
            }
            let desired = self.desired.borrow_and_update().clone();
            let api = self.api.borrow_and_update().clone();
            let node = self.node.borrow_and_update().clone();
            if !api.synced {
                retry_in = None;
                continue;
            }
            let failures = self.sync(&desired, &api, node.as_deref()).await;
            retry_in = if failures == 0 {
                backoff.reset();
                None
            } else {
                Some(backoff.next_delay())
            };
        }
    }

    async fn sync(&self, desired: &DesiredPods, api: &ApiPods, node: Option<&Node>) -> usize {
        let mut failures = 0;
        let statics: BTreeMap<String, &Arc<Pod>> = desired
            .pods
            .values()
            .filter(|p| is_static(p))
            .map(|p| (full_name(p), p))
            .collect();
        for (name, pod) in &statics {
            let hash = annotation(pod, HASH_ANNOTATION).unwrap_or_default();
            let mirror = api
                .pods
                .values()
                .find(|m| is_mirror(m) && full_name(m) == *name);
            let result = match mirror {
                Some(m)
                    if annotation(m, MIRROR_ANNOTATION) == Some(hash)
                        && m.metadata.deletion_timestamp.is_none() =>
                {
                    Ok(())
                }
                Some(m) => {
                    tracing::info!(pod = %name, "mirror pod is outdated or being deleted; replacing it");
                    self.delete(m).await
                }
                // Mirror pods are owned by the Node: wait until it is registered (the
                // registration wakes this loop).
                None if node.is_none() => Ok(()),
                None => self.create(pod, node).await,
            };
            if let Err(e) = result {
                tracing::warn!(pod = %name, error = %e, "failed to sync mirror pod; will retry");
                failures += 1;
            }
        }
        if desired.all_sources_ready {
            for m in api.pods.values().filter(|m| is_mirror(m)) {
                if statics.contains_key(&full_name(m)) {
                    continue;
                }
                tracing::info!(pod = %full_name(m), "deleting orphaned mirror pod");
                if let Err(e) = self.delete(m).await {
                    tracing::warn!(pod = %full_name(m), error = %e, "failed to delete orphaned mirror pod; will retry");
                    failures += 1;
                }
            }
        }
        failures
    }

    async fn create(&self, pod: &Pod, node: Option<&Node>) -> Result<(), ClusterError> {
        let mirror = mirror_of(pod, &self.node_name, node);
        let ns = mirror
            .metadata
            .namespace
            .clone()
            .unwrap_or_else(|| "default".into());
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), &ns);
        match with_timeout(CALL_TIMEOUT, pods.create(&PostParams::default(), &mirror)).await {
            Ok(_) => {
                tracing::info!(pod = %full_name(pod), "created mirror pod");
                Ok(())
            }
            // A pod of that name exists that is not our mirror, or our create raced the
            // watch: the next change of the API view decides.
            Err(e) if e.is_conflict() => Ok(()),
            Err(e) => Err(e),
        }
    }

    async fn delete(&self, mirror: &Pod) -> Result<(), ClusterError> {
        let pods: Api<Pod> = Api::namespaced(
            self.client.clone(),
            mirror.metadata.namespace.as_deref().unwrap_or("default"),
        );
        let params = DeleteParams {
            grace_period_seconds: Some(0),
            preconditions: Some(Preconditions {
                uid: mirror.metadata.uid.clone(),
                resource_version: None,
            }),
            ..Default::default()
        };
        let name = mirror.metadata.name.clone().unwrap_or_default();
        match with_timeout(CALL_TIMEOUT, pods.delete(&name, &params)).await {
            Ok(_) => Ok(()),
            Err(e) if e.is_not_found() || e.is_conflict() => Ok(()),
            Err(e) => Err(e),
        }
    }
}

/// The mirror pod of a static pod: same name, labels, annotations and spec, plus the
/// mirror annotation and the Node as owner.
pub fn mirror_of(pod: &Pod, node_name: &str, node: Option<&Node>) -> Pod {
    let mut annotations = pod.metadata.annotations.clone().unwrap_or_default();
    let hash = annotations
        .get(HASH_ANNOTATION)
        .cloned()
        .unwrap_or_default();
    annotations.insert(MIRROR_ANNOTATION.to_string(), hash);
    let owner = node.and_then(|n| {
        Some(OwnerReference {
            api_version: "v1".into(),
            kind: "Node".into(),
            name: n.metadata.name.clone()?,
            uid: n.metadata.uid.clone()?,
            // NodeRestriction admits a node's mirror pod only with the Node as its
            // controller (and without blockOwnerDeletion), as upstream's mirror client sets.
            controller: Some(true),
            block_owner_deletion: None,
        })
    });
    let mut spec = pod.spec.clone().unwrap_or_default();
    spec.node_name = Some(node_name.to_string());
    Pod {
        metadata: ObjectMeta {
            name: pod.metadata.name.clone(),
            namespace: pod.metadata.namespace.clone(),
            labels: pod.metadata.labels.clone(),
            annotations: Some(annotations),
            owner_references: owner.map(|o| vec![o]),
            ..Default::default()
        },
        spec: Some(spec),
        status: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mirror_copies_identity_and_adds_annotation() {
        let pod: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "web-n1", "namespace": "default", "uid": "abc",
                "labels": {"app": "web"},
                "annotations": {"kubernetes.io/config.hash": "abc", "kubernetes.io/config.source": "file"}},
            "spec": {"containers": [{"name": "c", "image": "nginx"}]}
        }))
        .unwrap();
        let node: Node = serde_json::from_value(
            serde_json::json!({"metadata": {"name": "n1", "uid": "node-uid"}}),
        )
        .unwrap();
        let m = mirror_of(&pod, "n1", Some(&node));
        assert_eq!(m.metadata.uid, None);
        assert_eq!(annotation(&m, MIRROR_ANNOTATION), Some("abc"));
        assert_eq!(m.spec.as_ref().unwrap().node_name.as_deref(), Some("n1"));
        let owner = &m.metadata.owner_references.as_ref().unwrap()[0];
        assert_eq!(
            (owner.kind.as_str(), owner.uid.as_str()),
            ("Node", "node-uid")
        );
        assert_eq!(owner.controller, Some(true));
        assert_eq!(owner.block_owner_deletion, None);
    }
}
