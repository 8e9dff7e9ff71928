//! Pods bound to this node: the API source (watch with `spec.nodeName`), the status
//! manager (patch pod status when it changes, final delete after graceful termination)
//! and mirror pods for static pods.

pub mod merge_patch;
pub mod mirror;
pub mod source;
pub mod status_manager;
pub mod terminal;

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::Pod;

/// Annotation of a mirror pod: the config hash of its static pod.
pub const MIRROR_ANNOTATION: &str = "kubernetes.io/config.mirror";
/// Annotation of a static pod: its config hash.
pub const HASH_ANNOTATION: &str = "kubernetes.io/config.hash";
/// Annotation of every pod the kubelet runs: its source (file, http, api).
pub const SOURCE_ANNOTATION: &str = "kubernetes.io/config.source";

/// The API server's view of the pods bound to this node (mirror pods included), keyed
/// by UID, exactly as last listed or watched.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ApiPods {
    pub pods: BTreeMap<String, Arc<Pod>>,
    /// True once the first list completed.
    pub synced: bool,
}

impl ApiPods {
    /// The mirror pod of `namespace/name`, if any.
    pub fn mirror_of(&self, namespace: &str, name: &str) -> Option<&Arc<Pod>> {
        self.pods.values().find(|p| {
            is_mirror(p)
                && p.metadata.namespace.as_deref() == Some(namespace)
                && p.metadata.name.as_deref() == Some(name)
        })
    }
}

pub fn annotation<'a>(pod: &'a Pod, key: &str) -> Option<&'a str> {
    pod.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(key))
        .map(String::as_str)
}

pub fn is_mirror(pod: &Pod) -> bool {
    annotation(pod, MIRROR_ANNOTATION).is_some()
}

/// A pod from a static source (file or URL), i.e. one that gets a mirror pod.
pub fn is_static(pod: &Pod) -> bool {
    matches!(
        annotation(pod, SOURCE_ANNOTATION),
        Some("file") | Some("http")
    )
}

pub fn full_name(pod: &Pod) -> String {
    format!(
        "{}/{}",
        pod.metadata.namespace.as_deref().unwrap_or_default(),
        pod.metadata.name.as_deref().unwrap_or_default()
    )
}
