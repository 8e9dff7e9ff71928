//! Create-style subresources: pods/binding, pods/eviction, serviceaccounts/token.

use serde_json::{Value, json};

use super::delete::{DeleteOptions, delete};
use super::{key, not_found};
use crate::auth::tokens::ISSUER;
use crate::error::{ApiError, ApiResult, Cause, Subject};
use crate::meta;
use crate::registry::defs;
use crate::state::Cluster;
use crate::store::{Mutation, ObjKey};

fn created_status() -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201})
}

fn pods() -> ApiResult<&'static defs::ResourceDef> {
    defs::find("", "v1", "pods").ok_or_else(|| ApiError::Internal("pods not registered".into()))
}

/// pods/binding (and POST bindings): assigns a pod to a node, as the scheduler does.
pub fn bind(cl: &Cluster, ns: &str, pod_name: &str, binding: &Value) -> ApiResult<Value> {
    let def = pods()?;
    let body_name = meta::name(binding);
    if !body_name.is_empty() && body_name != pod_name {
        return Err(ApiError::BadRequest(format!(
            "the name of the object ({body_name}) does not match the name on the URL ({pod_name})"
        )));
    }
    let node = meta::path_string(binding, "target.name");
    if node.is_empty() {
        return Err(ApiError::invalid(
            "",
            "Binding",
            pod_name,
            vec![Cause::new(
                "FieldValueRequired",
                "target.name",
                "Required value",
            )],
        ));
    }
    let annotations = meta::path(binding, "metadata.annotations")
        .and_then(Value::as_object)
        .cloned();
    cl.store.mutate(&key(def, ns, pod_name), |cur| {
        let cur = cur.ok_or_else(|| not_found(def, pod_name))?;
        let subject = Subject::new("", "pods", pod_name);
        if meta::is_deleting(cur) {
            return Err(ApiError::Conflict(subject, format!("pod {pod_name} is being deleted, cannot be assigned to a host")));
        }
        let assigned = meta::path_string(cur, "spec.nodeName");
        if !assigned.is_empty() {
            return Err(ApiError::Conflict(subject, format!("pod {pod_name} is already assigned to node {assigned:?}")));
        }
        let mut pod = (**cur).clone();
        if let Some(spec) = pod.get_mut("spec").and_then(Value::as_object_mut) {
            spec.insert("nodeName".into(), json!(node));
        }
        if let Some(a) = &annotations {
            let md = meta::metadata_mut(&mut pod);
            let ann = meta::ensure_object(md.entry("annotations").or_insert(json!({})));
            for (k, v) in a {
                ann.insert(k.clone(), v.clone());
            }
        }
        let status = meta::ensure_object(meta::ensure_object(&mut pod).entry("status").or_insert(json!({})));
        let conds = status.entry("conditions").or_insert(json!([]));
        if let Some(list) = conds.as_array_mut() {
            list.retain(|c| c.get("type").and_then(Value::as_str) != Some("PodScheduled"));
            list.push(json!({"type": "PodScheduled", "status": "True", "lastProbeTime": null, "lastTransitionTime": meta::now_rfc3339()}));
        }
        Ok(Mutation::Put(pod))
    })?;
    Ok(created_status())
}

/// pods/eviction: deletes the pod with the eviction's DeleteOptions (no disruption budgets).
pub fn evict(cl: &Cluster, ns: &str, pod_name: &str, eviction: &Value) -> ApiResult<Value> {
    let def = pods()?;
    let opts = eviction
        .get("deleteOptions")
        .map(DeleteOptions::from_body)
        .unwrap_or_default();
    delete(cl, def, ns, pod_name, &opts)?;
    Ok(created_status())
}

/// serviceaccounts/token (TokenRequest).
pub fn token_request(cl: &Cluster, ns: &str, sa_name: &str, req: &Value) -> ApiResult<Value> {
    let sa = cl
        .store
        .get(&ObjKey::new("serviceaccounts", ns, sa_name))
        .ok_or_else(|| ApiError::NotFound(Subject::new("", "serviceaccounts", sa_name)))?;
    let expiration = meta::path(req, "spec.expirationSeconds")
        .and_then(Value::as_i64)
        .unwrap_or(3600);
    if expiration < 600 {
        return Err(ApiError::invalid(
            "authentication.k8s.io",
            "TokenRequest",
            sa_name,
            vec![Cause::new(
                "FieldValueInvalid",
                "spec.expirationSeconds",
                "Invalid value: may not specify a duration less than 10 minutes",
            )],
        ));
    }
    if expiration > 1 << 32 {
        return Err(ApiError::invalid(
            "authentication.k8s.io",
            "TokenRequest",
            sa_name,
            vec![Cause::new(
                "FieldValueTooLong",
                "spec.expirationSeconds",
                "Invalid value: may not specify a duration larger than 2^32 seconds",
            )],
        ));
    }
    let mut audiences: Vec<String> = meta::path(req, "spec.audiences")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    if audiences.is_empty() {
        audiences.push(ISSUER.to_string());
    }
    let bound = match meta::path(req, "spec.boundObjectRef") {
        Some(r) if r.is_object() => {
            let kind = meta::path_string(r, "kind");
            let name = meta::path_string(r, "name");
            let uid = meta::path_string(r, "uid");
            let storage = match kind.as_str() {
                "Pod" => "pods",
                "Secret" => "secrets",
                "Node" => "nodes",
                other => {
                    return Err(ApiError::BadRequest(format!(
                        "cannot bind token to object of type {other}"
                    )));
                }
            };
            let obj_ns = if kind == "Node" { "" } else { ns };
            let obj = cl
                .store
                .get(&ObjKey::new(storage, obj_ns, &name))
                .ok_or_else(|| ApiError::NotFound(Subject::new("", storage, &name)))?;
            if !uid.is_empty() && uid != meta::uid(&obj) {
                return Err(ApiError::Conflict(
                    Subject::new("", storage, &name),
                    format!(
                        "the UID in the bound object reference ({uid}) does not match the UID in record. The object might have been deleted and then recreated"
                    ),
                ));
            }
            Some((kind, name, meta::uid(&obj).to_string()))
        }
        _ => None,
    };
    let cap = cl
        .knobs
        .max_token_seconds
        .load(std::sync::atomic::Ordering::SeqCst) as i64;
    let expiration = if cap > 0 {
        expiration.min(cap)
    } else {
        expiration
    };
    let tokens = cl.tokens.read().unwrap_or_else(|p| p.into_inner());
    let (token, exp) = tokens.issue(
        &sa,
        &audiences,
        expiration,
        bound
            .as_ref()
            .map(|(k, n, u)| (k.as_str(), n.as_str(), u.as_str())),
    );
    let exp_ts = chrono::DateTime::from_timestamp(exp, 0)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default();
    let mut spec = req.get("spec").cloned().unwrap_or(json!({}));
    meta::ensure_object(&mut spec).insert("audiences".into(), json!(audiences));
    meta::ensure_object(&mut spec).insert("expirationSeconds".into(), json!(expiration));
    Ok(json!({
        "kind": "TokenRequest",
        "apiVersion": "authentication.k8s.io/v1",
        "metadata": {"name": sa_name, "namespace": ns, "creationTimestamp": meta::now_rfc3339()},
        "spec": spec,
        "status": {"token": token, "expirationTimestamp": exp_ts},
    }))
}
