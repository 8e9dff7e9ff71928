//! `/pods` (the pods the kubelet runs, spec and status) and `/runningpods/` (what the
//! runtime holds), as `PodList` JSON the way the API server writes it: `kind`,
//! `apiVersion`, empty `metadata`, `items` (null when empty), items without their own
//! `kind`/`apiVersion`.

use std::sync::Arc;

use axum::extract::State;
use axum::response::Response;
use k8s_openapi::api::core::v1::{Container, Pod, PodSpec, PodStatus, ResourceRequirements};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kubelet_core::runtime::model::ObservedPod;

use super::json_bytes;
use crate::error::ApiError;
use crate::state::Shared;

const ITEM_PREFIX: &[u8] = br#"{"apiVersion":"v1","kind":"Pod","#;

/// One pod as a list item: its JSON without the leading `apiVersion` and `kind`.
fn item_json(pod: &Pod) -> Result<Vec<u8>, ApiError> {
    let bytes =
        serde_json::to_vec(pod).map_err(|e| ApiError::Internal(format!("encoding pod: {e}")))?;
    Ok(match bytes.strip_prefix(ITEM_PREFIX) {
        Some(rest) => [b"{".as_slice(), rest].concat(),
        None => bytes,
    })
}

pub fn encode_pod_list<'a>(pods: impl IntoIterator<Item = &'a Pod>) -> Result<Vec<u8>, ApiError> {
    let mut out = br#"{"kind":"PodList","apiVersion":"v1","metadata":{},"items":"#.to_vec();
    let mut any = false;
    for pod in pods {
        out.push(if any { b',' } else { b'[' });
        out.extend(item_json(pod)?);
        any = true;
    }
    out.extend_from_slice(if any { b"]}" } else { b"null}" });
    Ok(out)
}

pub async fn pods(State(state): State<Shared>) -> Result<Response, ApiError> {
    let pods = state.deps.statuses.list();
    Ok(json_bytes(encode_pod_list(pods.iter().map(Arc::as_ref))?))
}

/// A runtime pod as upstream's `Pod.ToAPIPod`: identity and running containers only.
fn to_api_pod(observed: &ObservedPod) -> Pod {
    Pod {
        metadata: ObjectMeta {
            name: Some(observed.name.clone()),
            namespace: Some(observed.namespace.clone()),
            uid: Some(observed.uid.clone()),
            ..Default::default()
        },
        spec: Some(PodSpec {
            containers: observed
                .running_containers()
                .map(|c| Container {
                    name: c.name.clone(),
                    image: Some(c.image.clone()),
                    resources: Some(ResourceRequirements::default()),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }),
        status: Some(PodStatus::default()),
    }
}

pub async fn running_pods(State(state): State<Shared>) -> Result<Response, ApiError> {
    let snapshot = state.snapshot();
    let mut observed: Vec<&Arc<ObservedPod>> = snapshot
        .pods
        .values()
        .filter(|p| {
            p.latest_sandbox().is_some_and(|s| s.ready) || p.running_containers().next().is_some()
        })
        .collect();
    observed.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
    let pods: Vec<Pod> = observed.into_iter().map(|p| to_api_pod(p)).collect();
    Ok(json_bytes(encode_pod_list(pods.iter())?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_list_has_null_items() {
        let out = encode_pod_list(std::iter::empty()).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"{"kind":"PodList","apiVersion":"v1","metadata":{},"items":null}"#
        );
    }

    #[test]
    fn items_drop_type_meta() {
        let pod = Pod {
            metadata: ObjectMeta {
                name: Some("a".into()),
                ..Default::default()
            },
            ..Default::default()
        };
        let out = String::from_utf8(encode_pod_list([&pod, &pod]).unwrap()).unwrap();
        assert_eq!(
            out,
            r#"{"kind":"PodList","apiVersion":"v1","metadata":{},"items":[{"metadata":{"name":"a"}},{"metadata":{"name":"a"}}]}"#
        );
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["items"][0]["metadata"]["name"], "a");
    }
}
