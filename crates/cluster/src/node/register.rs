//! Node registration (upstream `registerWithAPIServer`): create the Node with the default
//! labels, `--node-labels` and `registerWithTaints`; when it already exists, adopt it and
//! bring its default labels up to date instead of creating a duplicate.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Node, NodeSpec, NodeStatus, Taint};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, Patch, PatchParams, PostParams};

use crate::error::{ClusterError, with_timeout};

/// What the Node is registered with.
#[derive(Debug, Clone, Default)]
pub struct Registration {
    pub node_name: String,
    /// The machine's host name (label kubernetes.io/hostname, address Hostname).
    pub hostname: String,
    pub node_labels: BTreeMap<String, String>,
    pub taints: Vec<Taint>,
    pub provider_id: String,
}

/// The labels the kubelet always sets and keeps up to date.
pub fn default_labels(r: &Registration) -> BTreeMap<String, String> {
    let os = std::env::consts::OS.to_string();
    let arch = super::info::go_arch().to_string();
    BTreeMap::from([
        ("kubernetes.io/hostname".to_string(), r.hostname.clone()),
        ("kubernetes.io/os".to_string(), os.clone()),
        ("kubernetes.io/arch".to_string(), arch.clone()),
        ("beta.kubernetes.io/os".to_string(), os),
        ("beta.kubernetes.io/arch".to_string(), arch),
    ])
}

/// The Node object to create.
pub fn initial_node(r: &Registration) -> Node {
    let mut labels = r.node_labels.clone();
    labels.extend(default_labels(r));
    Node {
        metadata: ObjectMeta {
            name: Some(r.node_name.clone()),
            labels: Some(labels),
            annotations: Some(BTreeMap::from([(
                "volumes.kubernetes.io/controller-managed-attach-detach".to_string(),
                "true".to_string(),
            )])),
            ..Default::default()
        },
        spec: Some(NodeSpec {
            taints: (!r.taints.is_empty()).then(|| r.taints.clone()),
            provider_id: (!r.provider_id.is_empty()).then(|| r.provider_id.clone()),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Create the Node, or adopt the existing one. Returns the Node as the server has it.
pub async fn register(
    api: &Api<Node>,
    r: &Registration,
    status: NodeStatus,
) -> Result<Node, ClusterError> {
    let limit = std::time::Duration::from_secs(10);
    let mut node = initial_node(r);
    node.status = Some(status);
    match with_timeout(limit, api.create(&PostParams::default(), &node)).await {
        Ok(node) => {
            tracing::info!(node = %r.node_name, "successfully registered node");
            Ok(node)
        }
        Err(e) if e.is_conflict() => {
            let existing = with_timeout(limit, api.get(&r.node_name)).await?;
            tracing::info!(node = %r.node_name, "node was previously registered; adopting it");
            adopt(api, r, existing).await
        }
        Err(e) => Err(e),
    }
}

/// Bring the default labels of an existing Node up to date.
async fn adopt(api: &Api<Node>, r: &Registration, existing: Node) -> Result<Node, ClusterError> {
    let have = existing.metadata.labels.clone().unwrap_or_default();
    let missing: BTreeMap<String, String> = default_labels(r)
        .into_iter()
        .filter(|(k, v)| have.get(k) != Some(v))
        .collect();
    if missing.is_empty() {
        return Ok(existing);
    }
    let patch = serde_json::json!({"metadata": {"labels": missing}});
    with_timeout(
        std::time::Duration::from_secs(10),
        api.patch(&r.node_name, &PatchParams::default(), &Patch::Merge(&patch)),
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_and_taints() {
        let r = Registration {
            node_name: "n1".into(),
            hostname: "n1".into(),
            node_labels: [("role".to_string(), "edge".to_string())].into(),
            taints: vec![Taint {
                key: "dedicated".into(),
                value: Some("x".into()),
                effect: "NoSchedule".into(),
                time_added: None,
            }],
            provider_id: String::new(),
        };
        let node = initial_node(&r);
        let labels = node.metadata.labels.unwrap();
        assert_eq!(labels["kubernetes.io/hostname"], "n1");
        assert_eq!(labels["kubernetes.io/os"], "linux");
        assert_eq!(
            labels["beta.kubernetes.io/arch"],
            labels["kubernetes.io/arch"]
        );
        assert_eq!(labels["role"], "edge");
        assert_eq!(node.spec.unwrap().taints.unwrap()[0].key, "dedicated");
    }
}
