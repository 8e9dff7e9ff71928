//! Static pod preparation (upstream `applyDefaults` in `pkg/kubelet/config/common.go`,
//! plus the API defaults and validation the decoder applies there).
//!
//! [`prepare_static_pod`] turns a decoded manifest into the pod the kubelet runs:
//! 1. a name is required (`invalid pod: name is needed for the pod` upstream);
//! 2. the UID: kept when the manifest sets `metadata.uid` (as upstream), otherwise the
//!    md5 hex of the canonical JSON of the pod *as decoded*, followed by
//!    `host:<nodeName>` and `file:<path>` for a file, or `url:<url>` for a URL (upstream
//!    hashes the same inputs in the same order, with Go's object printer instead of JSON);
//! 3. the API defaults ([`apply_api_defaults`]);
//! 4. name `<name>-<lowercase nodeName>`, namespace `default` if unset,
//!    `spec.nodeName = nodeName`, annotations `kubernetes.io/config.hash` (= UID),
//!    `kubernetes.io/config.source` and `kubernetes.io/config.seen` (now; the sources
//!    replace it with the first-seen time, see [`crate::seen`]), a toleration of every
//!    `NoExecute` taint for file pods, `status.phase = Pending`;
//! 5. validation ([`crate::validation::validate_static_pod`]).
//!
//! Because the hash is taken before anything is added, the annotations never feed back
//! into the UID: the same manifest gives the same UID across restarts, an edit a new one.

mod api;
mod image;

use k8s_openapi::api::core::v1::{PodStatus, Toleration};
use md5::{Digest, Md5};

pub use api::apply_api_defaults;
pub use image::{default_pull_policy, image_tag};

use crate::annotations::{CONFIG_HASH, CONFIG_SEEN, CONFIG_SOURCE};
use crate::validation::{FieldError, Path, ValidationError, validate_static_pod};
use crate::{Pod, SourceKind, seen};

const DEFAULT_NAMESPACE: &str = "default";

/// Prepares a decoded static pod from `source_location` (a file path or a URL): UID,
/// naming, annotations, API defaults, then validation. See the module doc.
pub fn prepare_static_pod(
    mut pod: Pod,
    source: SourceKind,
    source_location: &str,
    node_name: &str,
) -> Result<Pod, ValidationError> {
    let Some(name) = pod.metadata.name.clone().filter(|n| !n.is_empty()) else {
        return Err(ValidationError::single(FieldError::required(
            &Path::new("metadata").child("name"),
            "name is needed for the pod",
        )));
    };
    let uid = match pod.metadata.uid.as_deref().filter(|u| !u.is_empty()) {
        Some(uid) => uid.to_string(),
        None => static_pod_uid(&pod, source, source_location, node_name).map_err(|e| {
            ValidationError::single(FieldError::internal(&Path::new("metadata"), &e))
        })?,
    };
    apply_api_defaults(&mut pod);

    let meta = &mut pod.metadata;
    meta.uid = Some(uid.clone());
    meta.name = Some(static_pod_name(&name, node_name));
    if meta.namespace.as_deref().unwrap_or_default().is_empty() {
        meta.namespace = Some(DEFAULT_NAMESPACE.to_string());
    }
    let annotations = meta.annotations.get_or_insert_with(Default::default);
    annotations.insert(CONFIG_HASH.to_string(), uid);
    annotations.insert(CONFIG_SOURCE.to_string(), source.as_str().to_string());
    annotations.insert(CONFIG_SEEN.to_string(), seen::now_rfc3339_nano());

    let spec = pod.spec.get_or_insert_with(Default::default);
    spec.node_name = Some(node_name.to_string());
    if source == SourceKind::File {
        add_toleration(
            spec.tolerations.get_or_insert_with(Vec::new),
            Toleration {
                operator: Some("Exists".to_string()),
                effect: Some("NoExecute".to_string()),
                ..Default::default()
            },
        );
    }
    pod.status.get_or_insert_with(PodStatus::default).phase = Some("Pending".to_string());

    validate_static_pod(&pod)?;
    Ok(pod)
}

/// `<name>-<nodeName in lowercase>`.
pub fn static_pod_name(name: &str, node_name: &str) -> String {
    format!("{name}-{}", node_name.to_lowercase())
}

/// The deterministic UID of a static pod (see the module doc).
pub fn static_pod_uid(
    pod: &Pod,
    source: SourceKind,
    source_location: &str,
    node_name: &str,
) -> Result<String, String> {
    let canonical =
        serde_json::to_vec(pod).map_err(|e| format!("cannot serialise the pod to hash it: {e}"))?;
    let mut hasher = Md5::new();
    hasher.update(&canonical);
    match source {
        SourceKind::File => {
            hasher.update(format!("host:{node_name}"));
            hasher.update(format!("file:{source_location}"));
        }
        SourceKind::Http | SourceKind::Api => hasher.update(format!("url:{source_location}")),
    }
    Ok(hex::encode(hasher.finalize()))
}

/// Adds `t` unless an equivalent toleration (same key, operator, value and effect) is
/// already there (upstream `AddOrUpdateTolerationInPod`).
fn add_toleration(tolerations: &mut Vec<Toleration>, t: Toleration) {
    let same = |a: &Toleration| {
        let s = |v: &Option<String>| v.clone().unwrap_or_default();
        s(&a.key) == s(&t.key)
            && s(&a.effect) == s(&t.effect)
            && a.operator.clone().unwrap_or_else(|| "Equal".into())
                == t.operator.clone().unwrap_or_else(|| "Equal".into())
            && s(&a.value) == s(&t.value)
    };
    if let Some(existing) = tolerations.iter_mut().find(|a| same(a)) {
        *existing = t;
    } else {
        // One more entry, not push's four: the pod is kept for as long as it runs.
        tolerations.reserve_exact(1);
        tolerations.push(t);
    }
}

#[cfg(test)]
mod tests;
