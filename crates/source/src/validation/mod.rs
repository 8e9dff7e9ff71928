//! Pod validation: the essentials of upstream `ValidatePodCreate`, run on the defaulted
//! pod, plus the static-pod rule that no API object may be referenced.
//!
//! Errors are collected (not first-fail) and printed with upstream-style field paths,
//! e.g. `spec.containers[1].name: Duplicate value: "x"`.

mod apiref;
mod containers;
mod field;
pub mod names;
mod volumes;

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{PodSpec, Toleration};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

pub use apiref::api_reference;
pub use field::{BadValue, ErrorType, FieldError, Path, ValidationError};
pub use volumes::volume_source_names;

use crate::Pod;

const RESTART_POLICIES: &[&str] = &["Always", "OnFailure", "Never"];
const DNS_POLICIES: &[&str] = &["ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"];
const TOLERATION_OPERATORS: &[&str] = &["Equal", "Exists"];
const TAINT_EFFECTS: &[&str] = &["NoSchedule", "PreferNoSchedule", "NoExecute"];
const TOTAL_ANNOTATION_SIZE_LIMIT: usize = 256 * 1024;
const MAX_DNS_NAMESERVERS: usize = 3;
const MAX_DNS_SEARCHES: usize = 32;

/// Validates a pod as upstream does on create (the essentials).
pub fn validate_pod(pod: &Pod) -> Result<(), ValidationError> {
    let mut errs = validate_metadata(&pod.metadata, &Path::new("metadata"));
    let default_spec = PodSpec::default();
    let spec = pod.spec.as_ref().unwrap_or(&default_spec);
    errs.extend(validate_spec(spec, &Path::new("spec")));
    if errs.is_empty() {
        Ok(())
    } else {
        Err(ValidationError { errors: errs })
    }
}

/// [`validate_pod`], then the static-pod rule: no references to API objects.
pub fn validate_static_pod(pod: &Pod) -> Result<(), ValidationError> {
    validate_pod(pod)?;
    let default_spec = PodSpec::default();
    let spec = pod.spec.as_ref().unwrap_or(&default_spec);
    match api_reference(spec) {
        None => Ok(()),
        Some(resource) => Err(ValidationError::single(FieldError::forbidden(
            &Path::new("spec"),
            &format!("static pods may not reference {resource}"),
        ))),
    }
}

fn validate_metadata(meta: &ObjectMeta, path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let name_path = path.child("name");
    match meta.name.as_deref() {
        None | Some("") => errs.push(FieldError::required(&name_path, "name is required")),
        Some(name) => {
            for msg in names::dns1123_subdomain(name) {
                errs.push(FieldError::invalid(&name_path, name, &msg));
            }
        }
    }
    let ns_path = path.child("namespace");
    match meta.namespace.as_deref() {
        None | Some("") => errs.push(FieldError::required(&ns_path, "")),
        Some(ns) => {
            for msg in names::dns1123_label(ns) {
                errs.push(FieldError::invalid(&ns_path, ns, &msg));
            }
        }
    }
    if let Some(labels) = &meta.labels {
        errs.extend(validate_labels(labels, &path.child("labels")));
    }
    if let Some(annotations) = &meta.annotations {
        let ann_path = path.child("annotations");
        let mut total = 0;
        for (k, v) in annotations {
            for msg in names::qualified_name(&k.to_lowercase()) {
                errs.push(FieldError::invalid(&ann_path, k, &msg));
            }
            total += k.len() + v.len();
        }
        if total > TOTAL_ANNOTATION_SIZE_LIMIT {
            errs.push(FieldError::too_long(
                &ann_path,
                &format!("may not be more than {TOTAL_ANNOTATION_SIZE_LIMIT} bytes"),
            ));
        }
    }
    errs
}

/// Label (and node selector) keys are qualified names, values label values.
fn validate_labels(labels: &BTreeMap<String, String>, path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    for (k, v) in labels {
        for msg in names::qualified_name(k) {
            errs.push(FieldError::invalid(path, k, &msg));
        }
        for msg in names::label_value(v) {
            errs.push(FieldError::invalid(&path.key(k), v, &msg));
        }
    }
    errs
}

fn validate_spec(spec: &PodSpec, path: &Path) -> Vec<FieldError> {
    let (mut errs, volume_names) = volumes::validate_volumes(
        spec.volumes.as_deref().unwrap_or_default(),
        &path.child("volumes"),
    );
    errs.extend(containers::validate_all(spec, path, &volume_names));
    for (name, q) in spec.overhead.iter().flatten() {
        containers::check_quantity(&q.0, &path.child("overhead").key(name), &mut errs);
    }
    check_enum(
        spec.restart_policy.as_deref(),
        RESTART_POLICIES,
        &path.child("restartPolicy"),
        &mut errs,
    );
    check_enum(
        spec.dns_policy.as_deref(),
        DNS_POLICIES,
        &path.child("dnsPolicy"),
        &mut errs,
    );
    validate_dns_config(spec, path, &mut errs);
    if let Some(secs) = spec.active_deadline_seconds
        && !(1..=i64::from(i32::MAX)).contains(&secs)
    {
        errs.push(FieldError::invalid(
            &path.child("activeDeadlineSeconds"),
            secs,
            "must be between 1 and 2147483647, inclusive",
        ));
    }
    for (field, value) in [("hostname", &spec.hostname), ("subdomain", &spec.subdomain)] {
        if let Some(v) = value.as_deref().filter(|v| !v.is_empty()) {
            for msg in names::dns1123_label(v) {
                errs.push(FieldError::invalid(&path.child(field), v, &msg));
            }
        }
    }
    if let Some(node) = spec.node_name.as_deref().filter(|v| !v.is_empty()) {
        for msg in names::dns1123_subdomain(node) {
            errs.push(FieldError::invalid(&path.child("nodeName"), node, &msg));
        }
    }
    if let Some(selector) = &spec.node_selector {
        errs.extend(validate_labels(selector, &path.child("nodeSelector")));
    }
    if let Some(tolerations) = &spec.tolerations {
        errs.extend(validate_tolerations(
            tolerations,
            &path.child("tolerations"),
        ));
    }
    if spec.share_process_namespace == Some(true) && spec.host_pid == Some(true) {
        errs.push(FieldError::invalid(
            &path.child("shareProcessNamespace"),
            "true",
            "ShareProcessNamespace and HostPID cannot both be enabled",
        ));
    }
    if let Some(r) = &spec.resources {
        errs.extend(containers::validate_resources(r, &path.child("resources")));
    }
    errs
}

fn check_enum(value: Option<&str>, allowed: &[&str], path: &Path, errs: &mut Vec<FieldError>) {
    match value {
        None | Some("") => errs.push(FieldError::required(path, "")),
        Some(v) if !allowed.contains(&v) => {
            errs.push(FieldError::not_supported(path, v, allowed));
        }
        Some(_) => {}
    }
}

fn validate_dns_config(spec: &PodSpec, path: &Path, errs: &mut Vec<FieldError>) {
    let cfg_path = path.child("dnsConfig");
    let Some(cfg) = &spec.dns_config else {
        if spec.dns_policy.as_deref() == Some("None") {
            errs.push(FieldError::required(
                &cfg_path,
                "must provide `dnsConfig` when `dnsPolicy` is None",
            ));
        }
        return;
    };
    let nameservers = cfg.nameservers.as_deref().unwrap_or_default();
    if spec.dns_policy.as_deref() == Some("None") && nameservers.is_empty() {
        errs.push(FieldError::required(
            &cfg_path.child("nameservers"),
            "must provide at least one DNS nameserver when `dnsPolicy` is None",
        ));
    }
    if nameservers.len() > MAX_DNS_NAMESERVERS {
        errs.push(FieldError::invalid(
            &cfg_path.child("nameservers"),
            nameservers.join(","),
            &format!("must not have more than {MAX_DNS_NAMESERVERS} nameservers"),
        ));
    }
    for (i, ns) in nameservers.iter().enumerate() {
        if ns.parse::<std::net::IpAddr>().is_err() {
            errs.push(FieldError::invalid(
                &cfg_path.child("nameservers").index(i),
                ns,
                "must be a valid IP address",
            ));
        }
    }
    let searches = cfg.searches.as_deref().unwrap_or_default();
    if searches.len() > MAX_DNS_SEARCHES {
        errs.push(FieldError::invalid(
            &cfg_path.child("searches"),
            searches.join(","),
            &format!("must not have more than {MAX_DNS_SEARCHES} search paths"),
        ));
    }
}

fn validate_tolerations(tolerations: &[Toleration], path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    for (i, t) in tolerations.iter().enumerate() {
        let idx = path.index(i);
        let key = t.key.as_deref().unwrap_or_default();
        let operator = t.operator.as_deref().unwrap_or("Equal");
        let value = t.value.as_deref().unwrap_or_default();
        if !key.is_empty() {
            for msg in names::qualified_name(key) {
                errs.push(FieldError::invalid(&idx.child("key"), key, &msg));
            }
        } else if operator != "Exists" {
            errs.push(FieldError::invalid(
                &idx.child("operator"),
                operator,
                "operator must be Exists when `key` is empty, which means \"match all values and all keys\"",
            ));
        }
        match operator {
            "Equal" => {
                for msg in names::label_value(value) {
                    errs.push(FieldError::invalid(&idx.child("value"), value, &msg));
                }
            }
            "Exists" if !value.is_empty() => errs.push(FieldError::invalid(
                &idx.child("operator"),
                value,
                "value must be empty when `operator` is 'Exists'",
            )),
            "Exists" => {}
            other => errs.push(FieldError::not_supported(
                &idx.child("operator"),
                other,
                TOLERATION_OPERATORS,
            )),
        }
        let effect = t.effect.as_deref().unwrap_or_default();
        if !effect.is_empty() && !TAINT_EFFECTS.contains(&effect) {
            errs.push(FieldError::not_supported(
                &idx.child("effect"),
                effect,
                TAINT_EFFECTS,
            ));
        }
        if t.toleration_seconds.is_some() && effect != "NoExecute" {
            errs.push(FieldError::invalid(
                &idx.child("effect"),
                effect,
                "effect must be 'NoExecute' when `tolerationSeconds` is set",
            ));
        }
    }
    errs
}

#[cfg(test)]
mod tests;
