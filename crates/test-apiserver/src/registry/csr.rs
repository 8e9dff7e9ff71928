//! CertificateSigningRequest strategy: requester identity on create, validation of the
//! PEM request, and what each subresource may change.

use base64::Engine;
use serde_json::{Value, json};

use crate::auth::UserInfo;
use crate::error::Cause;
use crate::meta;

/// Signers the test CA signs for (as the controller-manager's csrsigning controller).
pub const KNOWN_SIGNERS: &[&str] = &[
    "kubernetes.io/kube-apiserver-client",
    "kubernetes.io/kube-apiserver-client-kubelet",
    "kubernetes.io/kubelet-serving",
];

/// Sets spec.username/uid/groups/extra from the requester and clears status.
pub fn prepare_create(csr: &mut Value, user: &UserInfo) {
    if let Some(spec) = csr.get_mut("spec").and_then(Value::as_object_mut) {
        spec.insert("username".into(), json!(user.name));
        spec.insert("uid".into(), json!(user.uid));
        spec.insert("groups".into(), json!(user.groups));
        if user.extra.is_empty() {
            spec.remove("extra");
        } else {
            spec.insert("extra".into(), json!(user.extra));
        }
    }
    meta::ensure_object(csr).insert("status".into(), json!({}));
}

/// Decodes spec.request (base64 of a PEM CERTIFICATE REQUEST) into PEM text.
pub fn request_pem(csr: &Value) -> Option<String> {
    let b64 = meta::path(csr, "spec.request")?.as_str()?;
    let bytes = base64::engine::general_purpose::STANDARD.decode(b64).ok()?;
    String::from_utf8(bytes).ok()
}

/// Validation on create.
pub fn validate_create(csr: &Value) -> Vec<Cause> {
    let mut causes = Vec::new();
    match request_pem(csr) {
        Some(pem) if pem.contains("BEGIN CERTIFICATE REQUEST") => {}
        _ => causes.push(Cause::new(
            "FieldValueInvalid",
            "spec.request",
            "Invalid value: []byte{...}: PEM block type must be CERTIFICATE REQUEST",
        )),
    }
    if meta::path_string(csr, "spec.signerName").is_empty() {
        causes.push(Cause::new(
            "FieldValueRequired",
            "spec.signerName",
            "Required value",
        ));
    }
    if meta::path(csr, "spec.usages")
        .and_then(Value::as_array)
        .is_none_or(|u| u.is_empty())
    {
        causes.push(Cause::new(
            "FieldValueRequired",
            "spec.usages",
            "Required value",
        ));
    }
    causes
}

fn conditions(csr: &Value) -> Vec<Value> {
    meta::path(csr, "status.conditions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

/// Whether a condition of `ctype` is True.
pub fn has_condition(csr: &Value, ctype: &str) -> bool {
    conditions(csr).iter().any(|c| {
        c.get("type").and_then(Value::as_str) == Some(ctype)
            && c.get("status").and_then(Value::as_str).unwrap_or("True") == "True"
    })
}

/// The approval subresource changes only status.conditions.
pub fn apply_approval(old: &Value, new: &Value) -> Value {
    let mut out = old.clone();
    let conds = meta::path(new, "status.conditions")
        .cloned()
        .unwrap_or(json!([]));
    let status = meta::ensure_object(
        meta::ensure_object(&mut out)
            .entry("status")
            .or_insert(json!({})),
    );
    status.insert("conditions".into(), conds);
    out
}

/// The status subresource changes status but keeps Approved/Denied conditions and a
/// certificate once issued.
pub fn apply_status(old: &Value, new: &Value) -> Value {
    let mut out = old.clone();
    let mut status = new.get("status").cloned().unwrap_or(json!({}));
    let kept: Vec<Value> = conditions(old)
        .into_iter()
        .filter(|c| {
            matches!(
                c.get("type").and_then(Value::as_str),
                Some("Approved" | "Denied")
            )
        })
        .collect();
    let mut conds: Vec<Value> = meta::path(&status, "conditions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|c| {
            !matches!(
                c.get("type").and_then(Value::as_str),
                Some("Approved" | "Denied")
            )
        })
        .collect();
    conds.splice(0..0, kept);
    let s = meta::ensure_object(&mut status);
    if conds.is_empty() {
        s.remove("conditions");
    } else {
        s.insert("conditions".into(), Value::Array(conds));
    }
    if let Some(cert) =
        meta::path(old, "status.certificate").filter(|c| c.as_str().is_some_and(|c| !c.is_empty()))
    {
        s.insert("certificate".into(), cert.clone());
    }
    meta::ensure_object(&mut out).insert("status".into(), status);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn approval_only_touches_conditions() {
        let old = json!({"spec": {"signerName": "s"}, "status": {}});
        let new = json!({"spec": {"signerName": "other"}, "status": {"conditions": [{"type": "Approved", "status": "True"}], "certificate": "x"}});
        let out = apply_approval(&old, &new);
        assert_eq!(out["spec"]["signerName"], "s");
        assert!(has_condition(&out, "Approved"));
        assert!(out["status"].get("certificate").is_none());
    }

    #[test]
    fn status_keeps_approval_and_issued_cert() {
        let old = json!({"status": {"conditions": [{"type": "Approved", "status": "True"}], "certificate": "Y2VydA=="}});
        let new = json!({"status": {"conditions": [{"type": "Failed", "status": "True"}], "certificate": "b3RoZXI="}});
        let out = apply_status(&old, &new);
        assert!(has_condition(&out, "Approved"));
        assert!(has_condition(&out, "Failed"));
        assert_eq!(out["status"]["certificate"], "Y2VydA==");
    }
}
