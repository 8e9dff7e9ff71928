//! What is served and the per-resource rules (defaults, validation, update semantics,
//! field selectors), the equivalent of upstream's registry strategies.

pub mod csr;
pub mod defs;
pub mod event_conv;
pub mod pod;
pub mod service;
pub mod typed;
pub mod validate;
pub mod validation;

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};

use crate::auth::UserInfo;
use crate::error::{ApiError, ApiResult, Cause};
use crate::meta;
use crate::store::Store;

pub use defs::{ResourceDef, SubDef};
use validate::{NameRule, check_name};

/// What a strategy may look at besides the object.
pub struct HookCtx<'a> {
    /// The requesting user.
    pub user: &'a UserInfo,
    /// The store (read-only use: allocation, lookups).
    pub store: &'a Store,
}

/// Sets `obj[key] = value` when absent or null.
pub fn default_field(obj: &mut Value, key: &str, value: Value) {
    if let Some(m) = obj.as_object_mut() {
        let slot = m.entry(key.to_string()).or_insert(Value::Null);
        if slot.is_null() {
            *slot = value;
        }
    }
}

/// `obj[key]` as a slice of values (empty if absent).
pub fn get_array<'a>(obj: &'a Value, key: &str) -> &'a [Value] {
    obj.get(key)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

fn name_rule(def: &ResourceDef) -> NameRule {
    match (def.group, def.kind) {
        (_, "Namespace") => NameRule::Label,
        (_, "Service") => NameRule::Dns1035,
        // core/v1 events skip the ObjectMeta rules; events.k8s.io/v1 ones do not.
        ("", "Event") | (_, "CertificateSigningRequest") => NameRule::PathSegment,
        _ => NameRule::Subdomain,
    }
}

/// Whether an Event write came through events.k8s.io (strict validation).
fn strict_event(def: &ResourceDef) -> bool {
    def.group == "events.k8s.io"
}

/// Converts an object of `def`'s version into the storage form.
pub fn to_storage(def: &ResourceDef, obj: Value) -> Value {
    if def.group == "events.k8s.io" {
        event_conv::to_core(&obj)
    } else {
        obj
    }
}

/// Converts a stored object into `def`'s version.
pub fn from_storage(def: &ResourceDef, obj: &Value) -> Value {
    if def.group == "events.k8s.io" {
        event_conv::from_core(obj)
    } else {
        obj.clone()
    }
}

/// Defaults and validation for a create (metadata system fields are set by the caller).
pub fn prepare_create(def: &ResourceDef, obj: &mut Value, ctx: &HookCtx<'_>) -> ApiResult<()> {
    let mut causes = Vec::new();
    if let Some(c) = check_name(name_rule(def), meta::name(obj), "metadata.name") {
        causes.push(c);
    }
    if def.kind != "Event" {
        causes.extend(validation::meta::validate_create(obj).into_causes());
    }
    match def.kind {
        "Node" => causes.extend(validation::node::validate_kind_rules(obj).into_causes()),
        "Lease" => causes.extend(validation::lease::validate(obj).into_causes()),
        "Event" => {
            causes.extend(validation::event::validate_create(obj, strict_event(def)).into_causes())
        }
        "Pod" => {
            pod::apply_defaults(obj);
            causes.extend(pod::validate_create(obj));
            if let Some(node) = validation::mirror::node_of(ctx.user) {
                let node_uid = ctx
                    .store
                    .get(&crate::store::ObjKey::new("nodes", "", node))
                    .map(|n| meta::uid(&n).to_string());
                if let Some(why) = validation::mirror::refuse_create(node, obj, node_uid.as_deref())
                {
                    return Err(ApiError::Forbidden(
                        crate::error::Subject::new(def.group, def.plural, meta::name(obj)),
                        why,
                    ));
                }
            }
            let qos = pod::qos_class(obj);
            meta::ensure_object(obj).insert(
                "status".into(),
                json!({"phase": "Pending", "qosClass": qos}),
            );
        }
        "Namespace" => {
            let name = meta::name(obj).to_string();
            let md = meta::metadata_mut(obj);
            let labels = meta::ensure_object(md.entry("labels").or_insert(json!({})));
            labels.insert("kubernetes.io/metadata.name".into(), json!(name));
            let root = meta::ensure_object(obj);
            root.insert("spec".into(), json!({"finalizers": ["kubernetes"]}));
            root.insert("status".into(), json!({"phase": "Active"}));
        }
        "Service" => {
            let (svcs, _) = ctx.store.list("services", None);
            let used: BTreeSet<String> = svcs
                .iter()
                .filter_map(|s| {
                    meta::path(s, "spec.clusterIP")
                        .and_then(Value::as_str)
                        .map(String::from)
                })
                .chain(std::iter::once(service::KUBERNETES_SERVICE_IP.to_string()))
                .collect();
            if let Err(ApiError::Invalid(_, c, _)) = service::apply_defaults(obj, &used) {
                causes.extend(c);
            }
        }
        "Secret" => secret_defaults(obj),
        "CertificateSigningRequest" => {
            csr::prepare_create(obj, ctx.user);
            causes.extend(csr::validate_create(obj));
        }
        _ => {}
    }
    if causes.is_empty() {
        Ok(())
    } else {
        Err(ApiError::invalid(
            def.group,
            def.kind,
            meta::name(obj),
            causes,
        ))
    }
}

fn secret_defaults(obj: &mut Value) {
    use base64::Engine;
    default_field(obj, "type", json!("Opaque"));
    let Some(root) = obj.as_object_mut() else {
        return;
    };
    if let Some(Value::Object(sd)) = root.remove("stringData") {
        let data = meta::ensure_object(root.entry("data").or_insert(json!({})));
        for (k, v) in sd {
            let s = v.as_str().unwrap_or("");
            data.insert(
                k,
                json!(base64::engine::general_purpose::STANDARD.encode(s)),
            );
        }
    }
}

/// Merges an update of the main resource or a subresource into the stored object,
/// enforcing the status/spec split and the metadata system fields (upstream BeforeUpdate).
pub fn prepare_update(
    def: &ResourceDef,
    sub: Option<&str>,
    old: &Value,
    new: Value,
) -> ApiResult<Value> {
    let name = meta::name(old).to_string();
    let mut new = match (def.kind, sub) {
        ("CertificateSigningRequest", Some("approval")) => csr::apply_approval(old, &new),
        ("CertificateSigningRequest", Some("status")) => csr::apply_status(old, &new),
        (_, Some("status")) => {
            // Status updates ignore spec.
            let mut n = new;
            let root = meta::ensure_object(&mut n);
            match old.get("spec") {
                Some(spec) => root.insert("spec".into(), spec.clone()),
                None => root.remove("spec"),
            };
            if let Some(owners) = meta::path(old, "metadata.ownerReferences") {
                meta::metadata_mut(&mut n).insert("ownerReferences".into(), owners.clone());
            }
            n
        }
        ("Pod", Some("ephemeralcontainers")) => pod::apply_ephemeral_update(old, &new),
        ("Namespace", Some("finalize")) => {
            let mut n = old.clone();
            let fins = meta::path(&new, "spec.finalizers")
                .cloned()
                .unwrap_or(json!([]));
            meta::ensure_object(
                meta::ensure_object(&mut n)
                    .entry("spec")
                    .or_insert(json!({})),
            )
            .insert("finalizers".into(), fins);
            n
        }
        (_, None) => {
            let mut n = new;
            if def.has_status()
                || def.kind == "Namespace"
                || def.kind == "CertificateSigningRequest"
            {
                let root = meta::ensure_object(&mut n);
                match old.get("status") {
                    Some(st) => root.insert("status".into(), st.clone()),
                    None => root.remove("status"),
                };
            }
            if def.kind == "Namespace" {
                let spec = old.get("spec").cloned().unwrap_or(json!({}));
                meta::ensure_object(&mut n).insert("spec".into(), spec);
            }
            if def.kind == "Pod" {
                pod::apply_defaults(&mut n);
            }
            if def.kind == "Secret" {
                secret_defaults(&mut n);
            }
            n
        }
        (_, Some(other)) => {
            return Err(ApiError::BadRequest(format!(
                "subresource {other} does not support update"
            )));
        }
    };
    keep_system_fields(old, &mut new)?;
    let mut causes = Vec::new();
    match (def.kind, sub) {
        ("Node", None) => {
            causes.extend(validation::node::validate(&new).into_causes());
            causes.extend(validation::node::validate_update(&new, old).into_causes());
        }
        ("Node", Some("status")) => {
            causes.extend(validation::node::validate_update(&new, old).into_causes())
        }
        ("Lease", _) => {
            causes.extend(validation::meta::validate_update(&new, old).into_causes());
            causes.extend(validation::lease::validate(&new).into_causes());
        }
        ("Event", _) => causes
            .extend(validation::event::validate_update(&new, old, strict_event(def)).into_causes()),
        ("Pod", None) => {
            causes.extend(validation::meta::validate_update(&new, old).into_causes());
            causes.extend(pod::validate_spec_update(old, &new));
        }
        ("Pod", Some("status")) => {
            causes.extend(pod::validate_status_update(old, &new));
            causes.extend(validation::pod_status::validate(&new, old).into_causes());
        }
        ("Pod", Some("ephemeralcontainers")) => {
            causes.extend(pod::validate_ephemeral_update(old, &new))
        }
        _ => {}
    }
    if meta::is_deleting(old) {
        let before = meta::finalizers(old);
        if meta::finalizers(&new).iter().any(|f| !before.contains(f)) {
            causes.push(Cause::new(
                "FieldValueForbidden",
                "metadata.finalizers",
                "Forbidden: no new finalizers can be added if the object is being deleted",
            ));
        }
    }
    if causes.is_empty() {
        Ok(new)
    } else {
        Err(ApiError::invalid(def.group, def.kind, &name, causes))
    }
}

fn keep_system_fields(old: &Value, new: &mut Value) -> ApiResult<()> {
    let old_uid = meta::uid(old).to_string();
    let new_uid = meta::uid(new).to_string();
    if !new_uid.is_empty() && new_uid != old_uid {
        return Err(ApiError::invalid(
            "",
            old.get("kind").and_then(Value::as_str).unwrap_or(""),
            meta::name(old),
            vec![Cause::new(
                "FieldValueInvalid",
                "metadata.uid",
                format!("Invalid value: \"{new_uid}\": field is immutable"),
            )],
        ));
    }
    let md = meta::metadata_mut(new);
    for f in [
        "uid",
        "creationTimestamp",
        "deletionTimestamp",
        "generation",
        "name",
        "namespace",
    ] {
        match old.get("metadata").and_then(|m| m.get(f)) {
            Some(v) => md.insert(f.into(), v.clone()),
            None => md.remove(f),
        };
    }
    if let Some(g) = meta::deletion_grace(old) {
        md.insert("deletionGracePeriodSeconds".into(), json!(g));
    }
    Ok(())
}

/// Fields `fieldSelector` supports for a resource.
pub fn supported_fields(def: &ResourceDef) -> &'static [&'static str] {
    match (def.group, def.kind) {
        ("", "Pod") => pod::FIELDS,
        ("", "Node") => &["metadata.name", "spec.unschedulable"],
        ("", "Namespace") => &["metadata.name", "status.phase"],
        ("", "Secret") => &["metadata.name", "metadata.namespace", "type"],
        ("", "Event") => &[
            "metadata.name",
            "metadata.namespace",
            "involvedObject.kind",
            "involvedObject.namespace",
            "involvedObject.name",
            "involvedObject.uid",
            "involvedObject.apiVersion",
            "involvedObject.resourceVersion",
            "involvedObject.fieldPath",
            "reason",
            "reportingComponent",
            "source",
            "type",
        ],
        ("events.k8s.io", _) => &[
            "metadata.name",
            "metadata.namespace",
            "regarding.kind",
            "regarding.namespace",
            "regarding.name",
            "regarding.uid",
            "reason",
            "reportingController",
            "type",
        ],
        ("certificates.k8s.io", _) => &["metadata.name", "spec.signerName"],
        _ => &["metadata.name", "metadata.namespace"],
    }
}

/// Field values of an object (in `def`'s version) for selectors.
pub fn field_set(def: &ResourceDef, obj: &Value) -> BTreeMap<String, String> {
    if def.kind == "Pod" {
        return pod::fields(obj);
    }
    let mut f: BTreeMap<String, String> = supported_fields(def)
        .iter()
        .map(|k| (k.to_string(), meta::path_string(obj, k)))
        .collect();
    if def.kind == "Node" && f.get("spec.unschedulable").is_some_and(String::is_empty) {
        f.insert("spec.unschedulable".into(), "false".into());
    }
    if def.group.is_empty() && def.kind == "Event" {
        f.insert("source".into(), meta::path_string(obj, "source.component"));
    }
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    fn def(kind: &str) -> &'static ResourceDef {
        defs::RESOURCES
            .iter()
            .find(|d| d.kind == kind && d.group.is_empty())
            .unwrap_or(&defs::RESOURCES[0])
    }

    #[test]
    fn status_update_ignores_spec_and_main_update_ignores_status() {
        let d = def("Pod");
        let mut old = json!({"metadata": {"name": "p", "uid": "u1"}, "spec": {"containers": [{"name": "c", "image": "a"}]}, "status": {"phase": "Pending"}});
        pod::apply_defaults(&mut old);
        let new = json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "CHANGED"}]}, "status": {"phase": "Running"}});
        let s = prepare_update(d, Some("status"), &old, new.clone()).unwrap();
        assert_eq!(s["spec"]["containers"][0]["image"], "a");
        assert_eq!(s["status"]["phase"], "Running");
        assert_eq!(s["metadata"]["uid"], "u1");
        let m = prepare_update(d, None, &old, new).unwrap();
        assert_eq!(m["status"]["phase"], "Pending");
        assert_eq!(m["spec"]["containers"][0]["image"], "CHANGED");
    }

    #[test]
    fn uid_is_immutable_and_finalizers_cannot_grow_while_deleting() {
        let d = def("ConfigMap");
        let old = json!({"metadata": {"name": "c", "uid": "u1", "deletionTimestamp": "2024-01-01T00:00:00Z", "finalizers": ["a"]}});
        assert!(
            prepare_update(
                d,
                None,
                &old,
                json!({"metadata": {"name": "c", "uid": "u2"}})
            )
            .is_err()
        );
        assert!(
            prepare_update(
                d,
                None,
                &old,
                json!({"metadata": {"name": "c", "finalizers": ["a", "b"]}})
            )
            .is_err()
        );
        let ok = prepare_update(
            d,
            None,
            &old,
            json!({"metadata": {"name": "c", "finalizers": []}}),
        )
        .unwrap();
        assert_eq!(ok["metadata"]["deletionTimestamp"], "2024-01-01T00:00:00Z");
    }

    #[test]
    fn secret_string_data_becomes_data() {
        let mut s = json!({"metadata": {"name": "s"}, "stringData": {"k": "v"}});
        secret_defaults(&mut s);
        assert_eq!(s["data"]["k"], "dg==");
        assert_eq!(s["type"], "Opaque");
        assert!(s.get("stringData").is_none());
    }
}
