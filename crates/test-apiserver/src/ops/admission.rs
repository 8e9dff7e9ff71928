//! Admission on create: the RuntimeClass plugin (overhead and scheduling from the pod's
//! RuntimeClass) and the ServiceAccount plugin (default SA, kube-api-access projected
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
        runtime_class(cl, obj)?;
        service_account(cl, obj)?;
    }
    Ok(())
}

/// Upstream's RuntimeClass admission plugin on pod create: a pod naming a RuntimeClass
/// that does not exist is refused; the class's `overhead.podFixed` becomes the pod's
/// `spec.overhead` (a different overhead already set is refused); its
/// `scheduling.nodeSelector` is merged into the pod's (a conflicting value is refused) and
/// its tolerations are added to the pod's.
fn runtime_class(cl: &Cluster, pod_obj: &mut Value) -> ApiResult<()> {
    let name = meta::name(pod_obj).to_string();
    let Some(spec) = pod_obj.get_mut("spec").and_then(Value::as_object_mut) else {
        return Ok(());
    };
    let class = match spec.get("runtimeClassName").and_then(Value::as_str) {
        Some(c) if !c.is_empty() => c.to_string(),
        _ => return Ok(()),
    };
    let forbidden = |msg: String| ApiError::Forbidden(Subject::new("", "pods", &name), msg);
    let rc = cl
        .store
        .get(&ObjKey::new("runtimeclasses", "", &class))
        .ok_or_else(|| forbidden(format!("pod rejected: RuntimeClass {class:?} not found")))?;
    if let Some(fixed) = rc.pointer("/overhead/podFixed").filter(|v| !v.is_null()) {
        match spec.get("overhead").filter(|v| !v.is_null()) {
            Some(existing) if existing != fixed => {
                return Err(forbidden(
                    "pod rejected: Pod's Overhead doesn't match RuntimeClass's defined Overhead"
                        .into(),
                ));
            }
            _ => {
                spec.insert("overhead".into(), fixed.clone());
            }
        }
    }
    if let Some(selector) = rc
        .pointer("/scheduling/nodeSelector")
        .and_then(Value::as_object)
    {
        let pod_selector = spec.entry("nodeSelector").or_insert_with(|| json!({}));
        if let Some(pod_selector) = pod_selector.as_object_mut() {
            for (k, v) in selector {
                match pod_selector.get(k) {
                    Some(existing) if existing != v => {
                        return Err(forbidden(format!(
                            "conflict: runtimeClass.scheduling.nodeSelector[{k}] = {}; pod.spec.nodeSelector[{k}] = {}",
                            v.as_str().unwrap_or_default(),
                            existing.as_str().unwrap_or_default()
                        )));
                    }
                    _ => {
                        pod_selector.insert(k.clone(), v.clone());
                    }
                }
            }
        }
    }
    let rc_tolerations = rc
        .pointer("/scheduling/tolerations")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if !rc_tolerations.is_empty() {
        let tolerations = spec.entry("tolerations").or_insert_with(|| json!([]));
        if let Some(list) = tolerations.as_array_mut() {
            for t in rc_tolerations {
                if !list.contains(&t) {
                    list.push(t);
                }
            }
        }
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
