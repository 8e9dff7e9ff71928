//! Admission on create: the ServiceAccount plugin (default SA, kube-api-access projected
//! volume and mounts). Priority and DefaultTolerationSeconds live in the pod defaults.

use serde_json::{Value, json};

use crate::error::{ApiError, ApiResult, Subject};
use crate::meta;
use crate::registry::{ResourceDef, get_array, pod};
use crate::state::Cluster;
use crate::store::ObjKey;

/// Where the token volume is mounted in every container.
pub const SA_MOUNT_PATH: &str = "/var/run/secrets/kubernetes.io/serviceaccount";

/// Runs the admission plugins for a create.
pub fn admit_create(cl: &Cluster, def: &ResourceDef, obj: &mut Value) -> ApiResult<()> {
    if def.kind == "Pod" && def.group.is_empty() {
        service_account(cl, obj)?;
    }
    Ok(())
}

fn service_account(cl: &Cluster, pod_obj: &mut Value) -> ApiResult<()> {
    if pod::is_mirror(pod_obj) {
        return Ok(());
    }
    let ns = meta::namespace(pod_obj).to_string();
    let name = meta::name(pod_obj).to_string();
    let Some(spec) = pod_obj.get_mut("spec").and_then(Value::as_object_mut) else {
        return Ok(());
    };
    let sa_name = match spec.get("serviceAccountName").and_then(Value::as_str) {
        Some(s) if !s.is_empty() => s.to_string(),
        _ => "default".to_string(),
    };
    spec.insert("serviceAccountName".into(), json!(sa_name));
    spec.insert("serviceAccount".into(), json!(sa_name));
    let sa = cl.store.get(&ObjKey::new("serviceaccounts", &ns, &sa_name)).ok_or_else(|| {
        ApiError::Forbidden(
            Subject::new("", "pods", &name),
            format!("error looking up service account {ns}/{sa_name}: serviceaccount \"{sa_name}\" not found"),
        )
    })?;
    let automount = spec
        .get("automountServiceAccountToken")
        .and_then(Value::as_bool)
        .or_else(|| {
            sa.get("automountServiceAccountToken")
                .and_then(Value::as_bool)
        })
        .unwrap_or(true);
    if !automount {
        return Ok(());
    }
    let spec_value = Value::Object(spec.clone());
    let already_mounted = |c: &Value| {
        get_array(c, "volumeMounts")
            .iter()
            .any(|m| m.get("mountPath").and_then(Value::as_str) == Some(SA_MOUNT_PATH))
    };
    let vol_name = format!("kube-api-access-{}", meta::random_suffix(5));
    let volume = json!({
        "name": vol_name,
        "projected": {
            "defaultMode": 420,
            "sources": [
                {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
                {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
                {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}}
            ]
        }
    });
    let mut added = false;
    for list in ["initContainers", "containers"] {
        if get_array(&spec_value, list).is_empty() {
            continue;
        }
        if let Some(Value::Array(cs)) = spec.get_mut(list) {
            for c in cs.iter_mut().filter(|c| !already_mounted(c)) {
                if let Some(cm) = c.as_object_mut() {
                    let mounts = cm.entry("volumeMounts").or_insert(json!([]));
                    if let Some(a) = mounts.as_array_mut() {
                        a.push(
                            json!({"name": vol_name, "readOnly": true, "mountPath": SA_MOUNT_PATH}),
                        );
                        added = true;
                    }
                }
            }
        }
    }
    if added && let Some(a) = spec.entry("volumes").or_insert(json!([])).as_array_mut() {
        a.push(volume);
    }
    Ok(())
}
