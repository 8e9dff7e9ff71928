//! The NodeRestriction admission plugin's rules for pods a node creates: only mirror
//! pods, bound to that node, owned (as controller, without blockOwnerDeletion) by that
//! node's Node, and referencing no other API object (service account, Secret, ConfigMap,
//! claim, CSI, projected token or trust bundle ...).

use serde_json::Value;

use super::{items, s};
use crate::auth::UserInfo;
use crate::meta;

/// The node name of a node's credentials (`system:node:<name>` in `system:nodes`).
pub fn node_of(user: &UserInfo) -> Option<&str> {
    user.name
        .strip_prefix("system:node:")
        .filter(|_| user.in_group("system:nodes"))
}

fn names_secret_or_config_map(c: &Value) -> Option<&'static str> {
    for e in items(c, "env") {
        let from = e.get("valueFrom").cloned().unwrap_or(Value::Null);
        if from.get("secretKeyRef").is_some_and(|v| !v.is_null()) {
            return Some("secrets");
        }
        if from.get("configMapKeyRef").is_some_and(|v| !v.is_null()) {
            return Some("configmaps");
        }
    }
    for e in items(c, "envFrom") {
        if e.get("secretRef").is_some_and(|v| !v.is_null()) {
            return Some("secrets");
        }
        if e.get("configMapRef").is_some_and(|v| !v.is_null()) {
            return Some("configmaps");
        }
    }
    None
}

/// Whether a volume names a Secret (upstream VisitPodSecretNames' volume part).
fn volume_names_secret(v: &Value) -> bool {
    let set = |x: Option<&Value>| x.is_some_and(|x| !x.is_null());
    set(v.get("secret"))
        || set(v.get("azureFile"))
        || [
            "cephfs",
            "cinder",
            "flexVolume",
            "rbd",
            "scaleIO",
            "iscsi",
            "storageos",
        ]
        .iter()
        .any(|k| set(v.get(*k).and_then(|x| x.get("secretRef"))))
        || set(v.get("csi").and_then(|x| x.get("nodePublishSecretRef")))
        || items(v.get("projected").unwrap_or(&Value::Null), "sources")
            .iter()
            .any(|src| set(src.get("secret")))
}

/// What API objects the pod refers to, named as the plugin names them.
pub fn api_reference(pod: &Value) -> Option<String> {
    let spec = pod.get("spec").cloned().unwrap_or(Value::Null);
    if !s(&spec, "serviceAccountName").is_empty() {
        return Some("serviceaccounts".into());
    }
    let has_pull_secrets = !items(&spec, "imagePullSecrets").is_empty();
    let containers: Vec<&Value> = ["initContainers", "containers", "ephemeralContainers"]
        .iter()
        .flat_map(|l| items(&spec, l))
        .collect();
    let secret_volume = items(&spec, "volumes").iter().any(volume_names_secret);
    let env_ref: Vec<&'static str> = containers
        .iter()
        .filter_map(|c| names_secret_or_config_map(c))
        .collect();
    if has_pull_secrets || secret_volume || env_ref.contains(&"secrets") {
        return Some("secrets".into());
    }
    let cm_volume = items(&spec, "volumes").iter().any(|v| {
        v.get("configMap").is_some_and(|x| !x.is_null())
            || items(v.get("projected").unwrap_or(&Value::Null), "sources")
                .iter()
                .any(|src| src.get("configMap").is_some_and(|x| !x.is_null()))
    });
    if cm_volume || env_ref.contains(&"configmaps") {
        return Some("configmaps".into());
    }
    if !items(&spec, "resourceClaims").is_empty() {
        return Some("resourceclaims".into());
    }
    for v in items(&spec, "volumes") {
        let has = |k: &str| v.get(k).is_some_and(|x| !x.is_null());
        let found = if has("configMap") {
            Some("configmaps (via configmap volumes)")
        } else if has("secret") {
            Some("secrets (via secret volumes)")
        } else if has("csi") {
            Some("csidrivers (via CSI volumes)")
        } else if has("glusterfs") {
            Some("endpoints (via glusterFS volumes)")
        } else if has("persistentVolumeClaim") {
            Some("persistentvolumeclaims")
        } else if has("ephemeral") {
            Some("persistentvolumeclaims (via ephemeral volumes)")
        } else if has("azureFile") {
            Some("secrets (via azureFile volumes)")
        } else if has("projected") {
            items(v.get("projected").unwrap_or(&Value::Null), "sources")
                .iter()
                .find_map(|src| {
                    let has = |k: &str| src.get(k).is_some_and(|x| !x.is_null());
                    if has("configMap") {
                        Some("configmaps (via projected volumes)")
                    } else if has("secret") {
                        Some("secrets (via projected volumes)")
                    } else if has("serviceAccountToken") {
                        Some("serviceaccounts (via projected volumes)")
                    } else if has("clusterTrustBundle") {
                        Some("clustertrustbundles")
                    } else if has("podCertificate") {
                        Some("podcertificates")
                    } else {
                        None
                    }
                })
        } else {
            None
        };
        if let Some(f) = found {
            return Some(f.into());
        }
    }
    None
}

/// Why a node may not create this pod (the Forbidden message), or None. `node_uid` is the
/// uid of the node's Node object, when it exists.
pub fn refuse_create(node: &str, pod: &Value, node_uid: Option<&str>) -> Option<String> {
    if !super::super::pod::is_mirror(pod) {
        return Some(format!(
            "pod does not have \"kubernetes.io/config.mirror\" annotation, node \"{node}\" can only create mirror pods"
        ));
    }
    if meta::path_string(pod, "spec.nodeName") != node {
        return Some(format!(
            "node \"{node}\" can only create pods with spec.nodeName set to itself"
        ));
    }
    let owners = meta::path(pod, "metadata.ownerReferences")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    match owners.as_slice() {
        [] => {
            return Some(format!(
                "node \"{node}\" can only create pods with an owner reference set to itself"
            ));
        }
        [owner] => {
            if s(owner, "apiVersion") != "v1"
                || s(owner, "kind") != "Node"
                || s(owner, "name") != node
            {
                return Some(format!(
                    "node \"{node}\" can only create pods with an owner reference set to itself"
                ));
            }
            if owner.get("controller").and_then(Value::as_bool) != Some(true) {
                return Some(format!(
                    "node \"{node}\" can only create pods with a controller owner reference set to itself"
                ));
            }
            if owner.get("blockOwnerDeletion").and_then(Value::as_bool) == Some(true) {
                return Some(format!(
                    "node \"{node}\" must not set blockOwnerDeletion on an owner reference"
                ));
            }
            if let Some(uid) = node_uid
                && s(owner, "uid") != uid
            {
                return Some(format!(
                    "node {node} UID mismatch: expected {uid} got {}",
                    s(owner, "uid")
                ));
            }
        }
        _ => {
            return Some(format!(
                "node \"{node}\" can only create pods with a single owner reference set to itself"
            ));
        }
    }
    api_reference(pod)
        .map(|what| format!("node \"{node}\" can not create pods that reference {what}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn mirror(spec: Value) -> Value {
        let mut p = json!({
            "metadata": {"name": "web-vm", "namespace": "default",
                "annotations": {"kubernetes.io/config.mirror": "abc"},
                "ownerReferences": [{"apiVersion": "v1", "kind": "Node", "name": "vm", "uid": "n-uid", "controller": true}]},
            "spec": {"nodeName": "vm", "containers": [{"name": "c", "image": "busybox"}]}
        });
        if let (Some(a), Value::Object(b)) = (p["spec"].as_object_mut(), spec) {
            a.extend(b);
        }
        p
    }

    #[test]
    fn node_restriction_table() {
        let cases: Vec<(Value, &str)> = vec![
            (
                json!({"serviceAccountName": "default"}),
                "node \"vm\" can not create pods that reference serviceaccounts",
            ),
            (
                json!({"volumes": [{"name": "s", "secret": {"secretName": "x"}}]}),
                "node \"vm\" can not create pods that reference secrets",
            ),
            (
                json!({"containers": [{"name": "c", "image": "b", "envFrom": [{"configMapRef": {"name": "x"}}]}]}),
                "node \"vm\" can not create pods that reference configmaps",
            ),
            (
                json!({"volumes": [{"name": "t", "projected": {"sources": [{"serviceAccountToken": {"path": "t"}}]}}]}),
                "node \"vm\" can not create pods that reference serviceaccounts (via projected volumes)",
            ),
            (
                json!({"volumes": [{"name": "p", "persistentVolumeClaim": {"claimName": "x"}}]}),
                "node \"vm\" can not create pods that reference persistentvolumeclaims",
            ),
            (
                json!({"nodeName": "other"}),
                "node \"vm\" can only create pods with spec.nodeName set to itself",
            ),
        ];
        for (spec, msg) in cases {
            assert_eq!(
                refuse_create("vm", &mirror(spec.clone()), Some("n-uid")).as_deref(),
                Some(msg),
                "{spec}"
            );
        }
        let mut plain = mirror(json!({}));
        plain["metadata"]["annotations"] = json!({});
        assert_eq!(
            refuse_create("vm", &plain, None).as_deref(),
            Some(
                "pod does not have \"kubernetes.io/config.mirror\" annotation, node \"vm\" can only create mirror pods"
            )
        );
        let mut wrong_uid = mirror(json!({}));
        wrong_uid["metadata"]["ownerReferences"][0]["uid"] = json!("other");
        assert_eq!(
            refuse_create("vm", &wrong_uid, Some("n-uid")).as_deref(),
            Some("node vm UID mismatch: expected n-uid got other")
        );
        let mut blocking = mirror(json!({}));
        blocking["metadata"]["ownerReferences"][0]["blockOwnerDeletion"] = json!(true);
        assert!(
            refuse_create("vm", &blocking, Some("n-uid"))
                .unwrap()
                .contains("blockOwnerDeletion")
        );
        // A static pod with emptyDir, hostPath and downward API volumes is fine.
        let ok = mirror(
            json!({"volumes": [{"name": "e", "emptyDir": {}}, {"name": "h", "hostPath": {"path": "/x"}},
            {"name": "d", "projected": {"sources": [{"downwardAPI": {"items": []}}]}}]}),
        );
        assert_eq!(refuse_create("vm", &ok, Some("n-uid")), None);
    }
}
