//! Stand-ins for the controller-manager loops the kubelet depends on: CSR approval and
//! signing, and namespace termination (delete the content, then finalize).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::broadcast::error::RecvError;
use tokio_util::sync::CancellationToken;

use crate::auth::UserInfo;
use crate::meta;
use crate::ops::delete::{DeleteOptions, delete};
use crate::ops::{WriteParams, update::update};
use crate::registry::{csr, defs};
use crate::state::Cluster;
use crate::store::{Change, ChangeKind};

/// Runs until `stop`.
pub async fn run(cl: Arc<Cluster>, stop: CancellationToken) {
    let mut sub = match cl.store.subscribe(cl.store.current_rv()) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "controllers cannot subscribe");
            return;
        }
    };
    resync(&cl);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            m = sub.live.recv() => match m {
                Ok(c) => on_change(&cl, &c),
                Err(RecvError::Lagged(_)) => resync(&cl),
                Err(RecvError::Closed) => return,
            },
        }
    }
}

/// Re-examines everything (after missing changes or when a knob flips).
pub fn resync(cl: &Cluster) {
    for c in cl.store.list("certificatesigningrequests", None).0 {
        reconcile_csr(cl, &c);
    }
    for ns in cl.store.list("namespaces", None).0 {
        if meta::is_deleting(&ns) {
            reconcile_namespace(cl, meta::name(&ns));
        }
    }
}

fn on_change(cl: &Cluster, c: &Change) {
    match c.key.storage.as_str() {
        "certificatesigningrequests" if c.kind != ChangeKind::Deleted => {
            reconcile_csr(cl, &c.object)
        }
        "namespaces" if c.kind != ChangeKind::Deleted && meta::is_deleting(&c.object) => {
            reconcile_namespace(cl, meta::name(&c.object))
        }
        _ if c.kind == ChangeKind::Deleted
            && !c.key.namespace.is_empty()
            && namespace_terminating(cl, &c.key.namespace) =>
        {
            reconcile_namespace(cl, &c.key.namespace);
        }
        _ => {}
    }
}

fn namespace_terminating(cl: &Cluster, ns: &str) -> bool {
    cl.store
        .get(&crate::store::ObjKey::new("namespaces", "", ns))
        .is_some_and(|n| meta::is_deleting(&n))
}

fn reconcile_csr(cl: &Cluster, obj: &Value) {
    let Some(def) = defs::find("certificates.k8s.io", "v1", "certificatesigningrequests") else {
        return;
    };
    let name = meta::name(obj).to_string();
    let decided = csr::has_condition(obj, "Approved") || csr::has_condition(obj, "Denied");
    if !decided && cl.knobs.auto_approve_csrs.load(Ordering::SeqCst) {
        let mut new = obj.clone();
        new["status"]["conditions"] = json!([{
            "type": "Approved", "status": "True", "reason": "AutoApproved",
            "message": "Auto approving kubelet client certificate after SubjectAccessReview.",
            "lastUpdateTime": meta::now_rfc3339(), "lastTransitionTime": meta::now_rfc3339()
        }]);
        if let Err(e) = update(
            cl,
            def,
            Some("approval"),
            "",
            &name,
            new,
            &UserInfo::admin(),
            WriteParams::default(),
        ) {
            tracing::warn!(csr = name, error = %e, "auto-approving CSR");
        }
        return;
    }
    let issued = meta::path(obj, "status.certificate")
        .and_then(Value::as_str)
        .is_some_and(|c| !c.is_empty());
    let signer = meta::path_string(obj, "spec.signerName");
    if !csr::has_condition(obj, "Approved")
        || issued
        || csr::has_condition(obj, "Failed")
        || !csr::KNOWN_SIGNERS.contains(&signer.as_str())
    {
        return;
    }
    let lifetime = meta::path(obj, "spec.expirationSeconds")
        .and_then(Value::as_u64)
        .map(|s| Duration::from_secs(s.max(600)))
        .unwrap_or(cl.signed_cert_lifetime);
    let usages: Vec<String> = meta::path(obj, "spec.usages")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|u| u.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    let mut new = obj.clone();
    match csr::request_pem(obj)
        .ok_or_else(|| "spec.request is not PEM".to_string())
        .and_then(|pem| {
            cl.ca
                .sign_csr(&pem, &usages, lifetime)
                .map_err(|e| e.to_string())
        }) {
        Ok(cert) => {
            use base64::Engine;
            new["status"]["certificate"] =
                json!(base64::engine::general_purpose::STANDARD.encode(cert));
        }
        Err(e) => {
            let mut conds = meta::path(obj, "status.conditions")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            conds.push(
                json!({"type": "Failed", "status": "True", "reason": "SigningError", "message": e,
                "lastUpdateTime": meta::now_rfc3339(), "lastTransitionTime": meta::now_rfc3339()}),
            );
            new["status"]["conditions"] = Value::Array(conds);
        }
    }
    if let Err(e) = update(
        cl,
        def,
        Some("status"),
        "",
        &name,
        new,
        &UserInfo::admin(),
        WriteParams::default(),
    ) {
        tracing::warn!(csr = name, error = %e, "writing CSR certificate");
    }
}

fn reconcile_namespace(cl: &Cluster, ns: &str) {
    for def in defs::RESOURCES
        .iter()
        .filter(|d| d.namespaced && d.persisted())
    {
        if def.group == "events.k8s.io" {
            continue;
        }
        for obj in cl.store.list(def.storage, Some(ns)).0 {
            if !meta::is_deleting(&obj)
                && let Err(e) = delete(cl, def, ns, meta::name(&obj), &DeleteOptions::default())
                && !matches!(e, crate::error::ApiError::NotFound(_))
            {
                tracing::warn!(namespace = ns, error = %e, "deleting namespace content");
            }
        }
    }
    let still: usize = defs::RESOURCES
        .iter()
        .filter(|d| d.namespaced && d.persisted() && d.group != "events.k8s.io")
        .map(|d| cl.store.list(d.storage, Some(ns)).0.len())
        .sum();
    if still > 0 {
        return;
    }
    let Some(def) = defs::find("", "v1", "namespaces") else {
        return;
    };
    let body = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}, "spec": {"finalizers": []}});
    if let Err(e) = update(
        cl,
        def,
        Some("finalize"),
        "",
        ns,
        body,
        &UserInfo::admin(),
        WriteParams::default(),
    ) && !matches!(e, crate::error::ApiError::NotFound(_))
    {
        tracing::warn!(namespace = ns, error = %e, "finalizing namespace");
    }
}
