//! ObjectMeta rules every resource shares (apimachinery `ValidateObjectMeta` without the
//! name, which `registry::validate::check_name` covers): labels, annotations, owner
//! references, finalizers; on update also what may not change.

use serde_json::Value;

use super::content::{label_value, qualified_name};
use super::{Bad, Errors, entries, items, s};

/// Total bytes of annotation keys and values allowed.
pub const ANNOTATIONS_MAX_BYTES: usize = 256 * 1024;

fn labels(md: &Value, out: &mut Errors) {
    for (k, v) in entries(md, "labels") {
        for m in qualified_name(k) {
            out.invalid("metadata.labels", k.as_str(), &m);
        }
        let v = v.as_str().unwrap_or("");
        for m in label_value(v) {
            out.invalid("metadata.labels", v, &m);
        }
    }
}

fn annotations(md: &Value, out: &mut Errors) {
    let mut size = 0;
    for (k, v) in entries(md, "annotations") {
        for m in qualified_name(&k.to_lowercase()) {
            out.invalid("metadata.annotations", k.as_str(), &m);
        }
        size += k.len() + v.as_str().map_or(0, str::len);
    }
    if size > ANNOTATIONS_MAX_BYTES {
        out.too_long("metadata.annotations", ANNOTATIONS_MAX_BYTES);
    }
}

fn owner_references(md: &Value, out: &mut Errors) {
    let path = "metadata.ownerReferences";
    let refs = items(md, "ownerReferences");
    let mut first_controller = String::new();
    for r in refs {
        let api_version = s(r, "apiVersion");
        let version = api_version.rsplit('/').next().unwrap_or("");
        if version.is_empty() || api_version.matches('/').count() > 1 {
            out.invalid(
                &format!("{path}.apiVersion"),
                api_version,
                "version must not be empty",
            );
        }
        for (f, detail) in [("kind", "must not be empty"), ("name", "must not be empty")] {
            if s(r, f).is_empty() {
                out.invalid(&format!("{path}.{f}"), s(r, f), detail);
            }
        }
        if s(r, "uid").is_empty() {
            out.invalid(&format!("{path}.uid"), "", "must not be empty");
        }
        if api_version == "events.k8s.io/v1" && s(r, "kind") == "Event" {
            out.invalid(
                path,
                Bad::Json(r.clone()),
                "events.k8s.io/v1, Kind=Event is disallowed from being an owner",
            );
        }
        if r.get("controller").and_then(Value::as_bool) == Some(true) {
            let this = format!("{}/{}", s(r, "kind"), s(r, "name"));
            if first_controller.is_empty() {
                first_controller = this;
            } else {
                out.invalid(
                    path,
                    Bad::Json(Value::Array(refs.to_vec())),
                    &format!("Only one reference can have Controller set to true. Found \"true\" in references for {first_controller} and {this}"),
                );
            }
        }
    }
}

fn finalizers(md: &Value, out: &mut Errors) {
    let list: Vec<&str> = items(md, "finalizers")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for f in &list {
        for m in qualified_name(f) {
            out.invalid("metadata.finalizers", *f, &m);
        }
    }
    if list.contains(&"orphan") && list.contains(&"foregroundDeletion") {
        out.invalid(
            "metadata.finalizers",
            Bad::Json(serde_json::json!(list)),
            "finalizer orphan and foregroundDeletion cannot be both set",
        );
    }
}

/// The shared ObjectMeta rules of a create.
pub fn validate_create(obj: &Value) -> Errors {
    let mut out = Errors::new();
    let md = obj.get("metadata").cloned().unwrap_or(Value::Null);
    labels(&md, &mut out);
    annotations(&md, &mut out);
    owner_references(&md, &mut out);
    finalizers(&md, &mut out);
    out
}

/// The shared ObjectMeta rules of an update (after the server kept the system fields).
pub fn validate_update(new: &Value, old: &Value) -> Errors {
    let mut out = Errors::new();
    let md = new.get("metadata").cloned().unwrap_or(Value::Null);
    let old_md = old.get("metadata").cloned().unwrap_or(Value::Null);
    let generation = |m: &Value| m.get("generation").and_then(Value::as_i64).unwrap_or(0);
    if generation(&md) < generation(&old_md) {
        out.invalid(
            "metadata.generation",
            generation(&md),
            "must not be decremented",
        );
    }
    labels(&md, &mut out);
    annotations(&md, &mut out);
    owner_references(&md, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// (object, field, message) as the real server reports them.
    #[test]
    fn object_meta_table() {
        let cases: &[(Value, &str, &str)] = &[
            (
                json!({"metadata": {"labels": {"a/b/c": "x"}}}),
                "metadata.labels",
                "Invalid value: \"a/b/c\": a valid label key must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')",
            ),
            (
                json!({"metadata": {"labels": {"k": "bad value"}}}),
                "metadata.labels",
                "Invalid value: \"bad value\": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')",
            ),
            (
                json!({"metadata": {"annotations": {"x": "a".repeat(ANNOTATIONS_MAX_BYTES)}}}),
                "metadata.annotations",
                "Too long: may not be more than 262144 bytes",
            ),
            (
                json!({"metadata": {"ownerReferences": [{"apiVersion": "v1", "kind": "Node", "name": "vm", "uid": ""}]}}),
                "metadata.ownerReferences.uid",
                "Invalid value: \"\": must not be empty",
            ),
            (
                json!({"metadata": {"ownerReferences": [{"apiVersion": "", "kind": "Node", "name": "vm", "uid": "u"}]}}),
                "metadata.ownerReferences.apiVersion",
                "Invalid value: \"\": version must not be empty",
            ),
            (
                json!({"metadata": {"finalizers": ["a/b/c"]}}),
                "metadata.finalizers",
                "Invalid value: \"a/b/c\": a valid label key must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')",
            ),
        ];
        for (obj, field, msg) in cases {
            let errs = validate_create(obj).into_causes();
            assert_eq!(errs.len(), 1, "{obj}: {errs:?}");
            assert_eq!(errs[0].field, *field, "{obj}");
            assert_eq!(errs[0].message, *msg, "{obj}");
        }
        let ok = json!({"metadata": {
            "labels": {"kubernetes.io/hostname": "vm", "beta.kubernetes.io/os": "linux"},
            "annotations": {"volumes.kubernetes.io/controller-managed-attach-detach": "true", "Kubernetes.io/Config.Mirror": "x"},
            "ownerReferences": [{"apiVersion": "v1", "kind": "Node", "name": "vm", "uid": "u", "controller": true}],
            "finalizers": ["kubernetes"]}});
        assert!(validate_create(&ok).is_empty());
        let two = json!({"metadata": {"ownerReferences": [
            {"apiVersion": "v1", "kind": "Node", "name": "a", "uid": "1", "controller": true},
            {"apiVersion": "v1", "kind": "Node", "name": "b", "uid": "2", "controller": true}]}});
        let errs = validate_create(&two).into_causes();
        assert!(
            errs[0]
                .message
                .ends_with("Found \"true\" in references for Node/a and Node/b")
        );
    }
}
