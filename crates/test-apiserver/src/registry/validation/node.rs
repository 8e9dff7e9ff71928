//! Node rules (upstream `ValidateNode`, `ValidateNodeUpdate`): node-specific metadata,
//! taints, capacity and allocatable quantities, `nodeInfo.swap`, `declaredFeatures`, pod
//! CIDRs; on update duplicate addresses and the fields that may only be set once.

use std::collections::BTreeSet;
use std::net::IpAddr;

use serde_json::Value;

use super::content::{SUBDOMAIN_MAX, label_value, qualified_name};
use super::{Bad, Errors, entries, items, s};
use crate::meta;
use kubelet_primitives::Quantity;

const TAINT_EFFECTS: &[&str] = &["NoSchedule", "PreferNoSchedule", "NoExecute"];

/// The JSON of one of the server's internal structs (Go field names in field order), as a
/// rejected value is printed.
fn go_struct(fields: &[(&str, Value)]) -> Bad {
    let body: Vec<String> = fields
        .iter()
        .map(|(k, v)| format!("{}:{}", Value::from(*k), v))
        .collect();
    Bad::Plain(format!("{{{}}}", body.join(",")))
}

/// Resources counted in whole units (upstream `IsIntegerResourceName`).
fn is_integer_resource(name: &str) -> bool {
    const INTEGER: &[&str] = &[
        "pods",
        "resourcequotas",
        "services",
        "replicationcontrollers",
        "secrets",
        "configmaps",
        "persistentvolumeclaims",
        "services.nodeports",
        "services.loadbalancers",
    ];
    INTEGER.contains(&name) || is_extended_resource(name)
}

/// A resource outside the `kubernetes.io` namespace (device plugins, `example.com/gpu`).
pub fn is_extended_resource(name: &str) -> bool {
    let native = !name.contains('/') || name.contains("kubernetes.io/");
    !native
        && !name.starts_with("requests.")
        && qualified_name(&format!("requests.{name}")).is_empty()
}

/// `ValidateResourceQuantityValue`: not negative, whole for integer resources.
fn quantity_value(name: &str, q: &Value, field: &str, out: &mut Errors) {
    let text = match q {
        Value::String(t) => t.clone(),
        Value::Number(n) => n.to_string(),
        _ => String::new(),
    };
    let v = match Quantity::parse(&text) {
        Ok(v) => v,
        Err(e) => {
            out.invalid(field, text.as_str(), e.reason());
            return;
        }
    };
    if v.is_negative() {
        out.invalid(field, text.as_str(), "must be greater than or equal to 0");
    }
    // A whole number of units has no milli remainder.
    if is_integer_resource(name) && v.milli_value() % 1000 != 0 {
        out.invalid(field, text.as_str(), "must be an integer");
    }
}

fn resources(node: &Value, out: &mut Errors) {
    let status = node.get("status").cloned().unwrap_or(Value::Null);
    for list in ["capacity", "allocatable"] {
        for (k, v) in entries(&status, list) {
            quantity_value(k, v, &format!("status.{list}.{k}"), out);
        }
    }
}

fn taints(node: &Value, out: &mut Errors) {
    // Upstream reports taints under the metadata path.
    let list = meta::path(node, "spec.taints")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut seen: BTreeSet<(String, String)> = BTreeSet::new();
    for (i, t) in list.iter().enumerate() {
        let base = format!("metadata.taints[{i}]");
        let key = s(t, "key");
        for m in qualified_name(key) {
            out.invalid(&format!("{base}.key"), key, &m);
        }
        let value = s(t, "value");
        let value_errs = label_value(value);
        if !value_errs.is_empty() {
            out.invalid(&format!("{base}.value"), value, &value_errs.join(";"));
        }
        let effect = s(t, "effect");
        if effect.is_empty() {
            out.required(&format!("{base}.effect"), "");
        } else if !TAINT_EFFECTS.contains(&effect) {
            out.not_supported(&format!("{base}.effect"), effect, TAINT_EFFECTS);
        }
        if !seen.insert((effect.to_string(), key.to_string())) {
            out.duplicate(
                &base,
                go_struct(&[
                    ("Key", Value::from(key)),
                    ("Value", Value::from(value)),
                    ("Effect", Value::from(effect)),
                    (
                        "TimeAdded",
                        t.get("timeAdded").cloned().unwrap_or(Value::Null),
                    ),
                ]),
                "taints must be unique by key and effect pair",
            );
        }
    }
}

fn swap(node: &Value, out: &mut Errors) {
    if let Some(cap) = meta::path(node, "status.nodeInfo.swap.capacity").and_then(Value::as_i64)
        && cap <= 0
    {
        out.invalid(
            "metadata.nodeSwapStatus.capacity",
            cap,
            "must be greater than zero",
        );
    }
}

/// A declared feature: an UpperCamelCase segment, then `/`-separated alphanumeric ones.
fn feature_name_ok(f: &str) -> bool {
    let mut segments = f.split('/');
    let first = segments.next().unwrap_or("");
    first.starts_with(|c: char| c.is_ascii_uppercase())
        && first.chars().all(|c| c.is_ascii_alphanumeric())
        && segments.all(|s| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric()))
}

fn declared_features(node: &Value, out: &mut Errors) {
    let list: Vec<&str> = meta::path(node, "status.declaredFeatures")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    for (i, f) in list.iter().enumerate() {
        let field = format!("status.declaredFeatures[{i}]");
        if f.len() > SUBDOMAIN_MAX {
            out.invalid(
                &field,
                *f,
                &format!(
                    "invalid feature name {}: must be no more than {SUBDOMAIN_MAX} characters",
                    super::go_quote(f)
                ),
            );
        } else if !feature_name_ok(f) {
            out.invalid(&field, *f, &format!("invalid feature name {}: must start with an UpperCamelCase segment, with subsequent segments separated by '/' (e.g., MyFeature or MyFeature/mySubFeature), and contain only alphanumeric characters and slashes", super::go_quote(f)));
        }
        if let Some(next) = list.get(i + 1) {
            let next_field = format!("status.declaredFeatures[{}]", i + 1);
            if f == next {
                out.duplicate(&next_field, *next, "");
            } else if f > next {
                out.invalid(&next_field, *next, "list must be sorted alphabetically");
            }
        }
    }
}

fn pod_cidrs(node: &Value, out: &mut Errors) {
    let cidrs: Vec<&str> = meta::path(node, "spec.podCIDRs")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let mut families = Vec::new();
    for (i, c) in cidrs.iter().enumerate() {
        let parsed = c.split_once('/').and_then(|(ip, bits)| {
            let ip: IpAddr = ip.parse().ok()?;
            let bits: u8 = bits.parse().ok()?;
            (bits <= if ip.is_ipv4() { 32 } else { 128 }).then_some(ip)
        });
        match parsed {
            Some(ip) => families.push(ip.is_ipv4()),
            None => out.invalid(
                &format!("spec.podCIDRs[{i}]"),
                *c,
                "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)",
            ),
        }
    }
    if cidrs.len() > 1 && (cidrs.len() > 2 || families.len() != 2 || families[0] == families[1]) {
        out.invalid(
            "spec.podCIDRs",
            Bad::Json(serde_json::json!(cidrs)),
            "may specify no more than one CIDR for each IP family",
        );
    }
}

/// `ValidateNode`: the ObjectMeta rules and the Node's own (the taints a
/// `scheduler.alpha.kubernetes.io/taints` annotation may carry are not read; no kubelet
/// writes it).
pub fn validate(node: &Value) -> Errors {
    let mut out = super::meta::validate_create(node);
    out.extend(validate_kind_rules(node));
    out
}

/// The Node's own rules of `ValidateNode`, without the shared ObjectMeta ones.
pub fn validate_kind_rules(node: &Value) -> Errors {
    let mut out = Errors::new();
    taints(node, &mut out);
    resources(node, &mut out);
    swap(node, &mut out);
    declared_features(node, &mut out);
    pod_cidrs(node, &mut out);
    out
}

/// `ValidateNodeUpdate` (the status subresource runs only this; the main resource runs
/// `validate` on the result too).
pub fn validate_update(new: &Value, old: &Value) -> Errors {
    let mut out = super::meta::validate_update(new, old);
    resources(new, &mut out);
    declared_features(new, &mut out);
    let status = new.get("status").cloned().unwrap_or(Value::Null);
    let mut seen = Vec::new();
    for (i, a) in items(&status, "addresses").iter().enumerate() {
        let key = (s(a, "type").to_string(), s(a, "address").to_string());
        if seen.contains(&key) {
            let value = go_struct(&[
                ("Type", Value::from(key.0.as_str())),
                ("Address", Value::from(key.1.as_str())),
            ]);
            out.duplicate(&format!("status.addresses[{i}]"), value, "");
        }
        seen.push(key);
    }
    let cidrs = |n: &Value| {
        meta::path(n, "spec.podCIDRs")
            .cloned()
            .unwrap_or(Value::Array(vec![]))
    };
    let old_cidrs = cidrs(old);
    if old_cidrs.as_array().is_some_and(|a| !a.is_empty()) {
        let new_cidrs = cidrs(new);
        let (o, n) = (
            old_cidrs.as_array().cloned().unwrap_or_default(),
            new_cidrs.as_array().cloned().unwrap_or_default(),
        );
        let msg = "node updates may not change podCIDR except from \"\" to valid";
        if o.len() != n.len() {
            out.forbidden("spec.podCIDRs", msg);
        } else {
            for (a, b) in o.iter().zip(n.iter()) {
                if a != b {
                    out.forbidden("spec.podCIDRs", msg);
                }
            }
        }
    }
    let old_provider = meta::path_string(old, "spec.providerID");
    if !old_provider.is_empty() && old_provider != meta::path_string(new, "spec.providerID") {
        out.forbidden(
            "spec.providerID",
            "node updates may not change providerID except from \"\" to valid",
        );
    }
    taints(new, &mut out);
    if meta::path_string(new, "spec.externalID") != meta::path_string(old, "spec.externalID") {
        out.forbidden("spec.externalID", "may not be updated");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn node(extra: Value) -> Value {
        let mut n = json!({
            "metadata": {"name": "vm", "labels": {"kubernetes.io/hostname": "vm"}},
            "spec": {},
            "status": {
                "capacity": {"cpu": "2", "memory": "4026Mi", "pods": "110", "ephemeral-storage": "40Gi"},
                "allocatable": {"cpu": "2", "memory": "3926Mi", "pods": "110"},
                "nodeInfo": {"kubeletVersion": "v1.35.0"},
                "addresses": [{"type": "InternalIP", "address": "10.0.0.5"}, {"type": "Hostname", "address": "vm"}]
            }
        });
        merge(&mut n, extra);
        n
    }

    fn merge(a: &mut Value, b: Value) {
        match (a, b) {
            (Value::Object(a), Value::Object(b)) => {
                for (k, v) in b {
                    merge(a.entry(k).or_insert(Value::Null), v);
                }
            }
            (a, b) => *a = b,
        }
    }

    /// (change to a valid Node, field, message) as kube-apiserver v1.36 reports them on
    /// create.
    #[test]
    fn create_table() {
        let cases: Vec<(Value, &str, &str)> = vec![
            (
                json!({"status": {"nodeInfo": {"swap": {"capacity": 0}}}}),
                "metadata.nodeSwapStatus.capacity",
                "Invalid value: 0: must be greater than zero",
            ),
            (
                json!({"status": {"nodeInfo": {"swap": {"capacity": -5}}}}),
                "metadata.nodeSwapStatus.capacity",
                "Invalid value: -5: must be greater than zero",
            ),
            (
                json!({"status": {"capacity": {"cpu": "-1"}}}),
                "status.capacity.cpu",
                "Invalid value: \"-1\": must be greater than or equal to 0",
            ),
            (
                json!({"status": {"allocatable": {"pods": "1500m"}}}),
                "status.allocatable.pods",
                "Invalid value: \"1500m\": must be an integer",
            ),
            (
                json!({"status": {"capacity": {"example.com/gpu": "500m"}}}),
                "status.capacity.example.com/gpu",
                "Invalid value: \"500m\": must be an integer",
            ),
            (
                json!({"spec": {"taints": [{"key": "k", "effect": "Sometimes"}]}}),
                "metadata.taints[0].effect",
                "Unsupported value: \"Sometimes\": supported values: \"NoSchedule\", \"PreferNoSchedule\", \"NoExecute\"",
            ),
            (
                json!({"spec": {"taints": [{"key": "k"}]}}),
                "metadata.taints[0].effect",
                "Required value",
            ),
            (
                json!({"spec": {"taints": [{"key": "k", "effect": "NoSchedule"}, {"key": "k", "value": "v", "effect": "NoSchedule"}]}}),
                "metadata.taints[1]",
                "Duplicate value: {\"Key\":\"k\",\"Value\":\"v\",\"Effect\":\"NoSchedule\",\"TimeAdded\":null}: taints must be unique by key and effect pair",
            ),
            (
                json!({"status": {"declaredFeatures": ["B", "A"]}}),
                "status.declaredFeatures[1]",
                "Invalid value: \"A\": list must be sorted alphabetically",
            ),
            (
                json!({"status": {"declaredFeatures": ["lower"]}}),
                "status.declaredFeatures[0]",
                "Invalid value: \"lower\": invalid feature name \"lower\": must start with an UpperCamelCase segment, with subsequent segments separated by '/' (e.g., MyFeature or MyFeature/mySubFeature), and contain only alphanumeric characters and slashes",
            ),
            (
                json!({"status": {"declaredFeatures": ["A", "A"]}}),
                "status.declaredFeatures[1]",
                "Duplicate value: \"A\"",
            ),
            (
                json!({"spec": {"podCIDRs": ["10.0.0.0/33"]}}),
                "spec.podCIDRs[0]",
                "Invalid value: \"10.0.0.0/33\": must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)",
            ),
            (
                json!({"spec": {"podCIDRs": ["10.0.0.0/24", "10.1.0.0/24"]}}),
                "spec.podCIDRs",
                "Invalid value: [\"10.0.0.0/24\",\"10.1.0.0/24\"]: may specify no more than one CIDR for each IP family",
            ),
        ];
        for (change, field, msg) in cases {
            let n = node(change.clone());
            let errs = validate(&n).into_causes();
            assert_eq!(errs.len(), 1, "{change}: {errs:?}");
            assert_eq!(errs[0].field, field, "{change}");
            assert_eq!(errs[0].message, msg, "{change}");
        }
        // What a kubelet writes is accepted: swap left out, or a positive capacity;
        // runtime handlers, features, extended resources in whole units.
        for ok in [
            json!({}),
            json!({"status": {"nodeInfo": {"swap": {"capacity": 1073741824}}}}),
            json!({"status": {"nodeInfo": {"swap": {}}}}),
            json!({"status": {"capacity": {"example.com/gpu": "2", "hugepages-2Mi": "0"}, "declaredFeatures": ["A", "B/c"]}}),
            json!({"spec": {"taints": [{"key": "node.kubernetes.io/not-ready", "effect": "NoSchedule"}, {"key": "node.kubernetes.io/not-ready", "effect": "NoExecute"}], "podCIDRs": ["10.0.0.0/24", "fd00::/64"]}}),
        ] {
            let errs = validate(&node(ok.clone())).into_causes();
            assert!(errs.is_empty(), "{ok}: {errs:?}");
        }
    }

    #[test]
    fn update_table() {
        let old = node(json!({"spec": {"podCIDRs": ["10.0.0.0/24"], "providerID": "p://1"}}));
        let cases: Vec<(Value, &str, &str)> = vec![
            (
                json!({"status": {"addresses": [{"type": "InternalIP", "address": "10.0.0.5"}, {"type": "InternalIP", "address": "10.0.0.5"}]}}),
                "status.addresses[1]",
                "Duplicate value: {\"Type\":\"InternalIP\",\"Address\":\"10.0.0.5\"}",
            ),
            (
                json!({"spec": {"podCIDRs": ["10.0.1.0/24"]}}),
                "spec.podCIDRs",
                "Forbidden: node updates may not change podCIDR except from \"\" to valid",
            ),
            (
                json!({"spec": {"providerID": "p://2"}}),
                "spec.providerID",
                "Forbidden: node updates may not change providerID except from \"\" to valid",
            ),
            (
                json!({"status": {"capacity": {"memory": "-1Gi"}}}),
                "status.capacity.memory",
                "Invalid value: \"-1Gi\": must be greater than or equal to 0",
            ),
        ];
        for (change, field, msg) in cases {
            let mut new = old.clone();
            merge(&mut new, change.clone());
            let errs = validate_update(&new, &old).into_causes();
            assert_eq!(errs.len(), 1, "{change}: {errs:?}");
            assert_eq!(errs[0].field, field, "{change}");
            assert_eq!(errs[0].message, msg, "{change}");
        }
        // A status update is not checked for swap (only create and main updates are).
        let mut new = old.clone();
        merge(
            &mut new,
            json!({"status": {"nodeInfo": {"swap": {"capacity": 0}}}}),
        );
        assert!(validate_update(&new, &old).is_empty());
    }
}
