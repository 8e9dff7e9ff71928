//! Pod strategy: defaults, validation, update rules, QoS class, field selectors,
//! graceful deletion period.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::error::Cause;
use crate::meta;

use super::validate::{NameRule, check_name};
use super::{default_field, get_array};
use kubelet_primitives::Quantity;

/// Fields supported by `fieldSelector` on pods.
pub const FIELDS: &[&str] = &[
    "metadata.name",
    "metadata.namespace",
    "spec.nodeName",
    "spec.restartPolicy",
    "spec.schedulerName",
    "spec.serviceAccountName",
    "spec.hostNetwork",
    "status.phase",
    "status.podIP",
    "status.nominatedNodeName",
];

/// Field values for selectors.
pub fn fields(pod: &Value) -> BTreeMap<String, String> {
    let mut f = BTreeMap::new();
    for k in FIELDS {
        f.insert(k.to_string(), meta::path_string(pod, k));
    }
    if f.get("spec.hostNetwork").is_some_and(String::is_empty) {
        f.insert("spec.hostNetwork".into(), "false".into());
    }
    f
}

const CONTAINER_LISTS: &[&str] = &["containers", "initContainers", "ephemeralContainers"];

/// Applies the API defaults upstream's SetDefaults_Pod and admission plugins add.
pub fn apply_defaults(pod: &mut Value) {
    let Some(spec) = pod.get_mut("spec").filter(|s| s.is_object()) else {
        return;
    };
    default_field(spec, "restartPolicy", json!("Always"));
    default_field(spec, "dnsPolicy", json!("ClusterFirst"));
    default_field(spec, "schedulerName", json!("default-scheduler"));
    default_field(spec, "terminationGracePeriodSeconds", json!(30));
    default_field(spec, "securityContext", json!({}));
    default_field(spec, "enableServiceLinks", json!(true));
    default_field(spec, "priority", json!(0));
    default_field(spec, "preemptionPolicy", json!("PreemptLowerPriority"));
    default_tolerations(spec);
    for list in CONTAINER_LISTS {
        if let Some(Value::Array(cs)) = spec.get_mut(*list) {
            for c in cs {
                default_container(c);
            }
        }
    }
    if let Some(Value::Array(vols)) = spec.get_mut("volumes") {
        for v in vols {
            for src in ["secret", "configMap", "projected", "downwardAPI"] {
                if let Some(s) = v.get_mut(src).filter(|s| s.is_object()) {
                    default_field(s, "defaultMode", json!(420));
                }
            }
            if let Some(h) = v.get_mut("hostPath").filter(|s| s.is_object()) {
                default_field(h, "type", json!(""));
            }
        }
    }
}

fn default_tolerations(spec: &mut Value) {
    // DefaultTolerationSeconds admission.
    let mut tols = spec
        .get("tolerations")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for key in [
        "node.kubernetes.io/not-ready",
        "node.kubernetes.io/unreachable",
    ] {
        let present = tols.iter().any(|t| {
            t.get("key").and_then(Value::as_str) == Some(key)
                || (t.get("operator").and_then(Value::as_str) == Some("Exists")
                    && t.get("key").is_none())
        });
        if !present {
            tols.push(json!({"key": key, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}));
        }
    }
    if let Some(m) = spec.as_object_mut() {
        m.insert("tolerations".into(), Value::Array(tols));
    }
}

fn default_container(c: &mut Value) {
    if !c.is_object() {
        return;
    }
    let image = c
        .get("image")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    default_field(c, "imagePullPolicy", json!(pull_policy_for(&image)));
    default_field(c, "terminationMessagePath", json!("/dev/termination-log"));
    default_field(c, "terminationMessagePolicy", json!("File"));
    default_field(c, "resources", json!({}));
    if let Some(Value::Array(ports)) = c.get_mut("ports") {
        for p in ports {
            default_field(p, "protocol", json!("TCP"));
        }
    }
    for probe in ["livenessProbe", "readinessProbe", "startupProbe"] {
        if let Some(p) = c.get_mut(probe).filter(|p| p.is_object()) {
            default_field(p, "timeoutSeconds", json!(1));
            default_field(p, "periodSeconds", json!(10));
            default_field(p, "successThreshold", json!(1));
            default_field(p, "failureThreshold", json!(3));
            if let Some(h) = p.get_mut("httpGet").filter(|h| h.is_object()) {
                default_field(h, "scheme", json!("HTTP"));
                default_field(h, "path", json!("/"));
            }
        }
    }
    if let Some(Value::Array(env)) = c.get_mut("env") {
        for e in env {
            if let Some(fr) = e
                .get_mut("valueFrom")
                .and_then(|v| v.get_mut("fieldRef"))
                .filter(|f| f.is_object())
            {
                default_field(fr, "apiVersion", json!("v1"));
            }
        }
    }
}

/// `Always` for `:latest` or untagged images, `IfNotPresent` otherwise.
pub fn pull_policy_for(image: &str) -> &'static str {
    if image.contains('@') {
        return "IfNotPresent";
    }
    let last = image.rsplit('/').next().unwrap_or(image);
    match last.split_once(':') {
        Some((_, "latest")) | None => "Always",
        Some(_) => "IfNotPresent",
    }
}

/// Validation on create.
pub fn validate_create(pod: &Value) -> Vec<Cause> {
    let mut causes = Vec::new();
    let spec = pod.get("spec").cloned().unwrap_or(Value::Null);
    let containers = get_array(&spec, "containers");
    if containers.is_empty() {
        causes.push(Cause::new(
            "FieldValueRequired",
            "spec.containers",
            "Required value",
        ));
    }
    let volumes: Vec<String> = get_array(&spec, "volumes")
        .iter()
        .filter_map(|v| v.get("name").and_then(Value::as_str).map(String::from))
        .collect();
    let mut seen = Vec::new();
    for list in ["initContainers", "containers"] {
        for (i, c) in get_array(&spec, list).iter().enumerate() {
            let base = format!("spec.{list}[{i}]");
            let name = c.get("name").and_then(Value::as_str).unwrap_or("");
            if let Some(cause) = check_name(NameRule::Label, name, &format!("{base}.name")) {
                causes.push(cause);
            } else if seen.contains(&name.to_string()) {
                causes.push(Cause::new(
                    "FieldValueDuplicate",
                    &format!("{base}.name"),
                    format!("Duplicate value: \"{name}\""),
                ));
            }
            seen.push(name.to_string());
            if c.get("image")
                .and_then(Value::as_str)
                .unwrap_or("")
                .trim()
                .is_empty()
            {
                causes.push(Cause::new(
                    "FieldValueRequired",
                    &format!("{base}.image"),
                    "Required value",
                ));
            }
            for (j, m) in get_array(c, "volumeMounts").iter().enumerate() {
                let vn = m.get("name").and_then(Value::as_str).unwrap_or("");
                if !volumes.iter().any(|v| v == vn) {
                    causes.push(Cause::new(
                        "FieldValueNotFound",
                        &format!("{base}.volumeMounts[{j}].name"),
                        format!("Not found: \"{vn}\""),
                    ));
                }
            }
        }
    }
    let rp = meta::path_string(pod, "spec.restartPolicy");
    if !["Always", "OnFailure", "Never"].contains(&rp.as_str()) {
        causes.push(Cause::new(
            "FieldValueNotSupported",
            "spec.restartPolicy",
            format!("Unsupported value: \"{rp}\": supported values: \"Always\", \"OnFailure\", \"Never\""),
        ));
    }
    causes
}

const SPEC_UPDATE_MSG: &str = "Forbidden: pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)";

/// Spec changes allowed on update: images, activeDeadlineSeconds, tolerations additions,
/// terminationGracePeriodSeconds.
pub fn validate_spec_update(old: &Value, new: &Value) -> Vec<Cause> {
    let (Some(old_spec), Some(new_spec)) = (old.get("spec"), new.get("spec")) else {
        return Vec::new();
    };
    let mut mutable = old_spec.clone();
    for list in ["containers", "initContainers"] {
        let new_list = get_array(new_spec, list);
        if let Some(Value::Array(cs)) = mutable.get_mut(list)
            && cs.len() == new_list.len()
        {
            for (c, n) in cs.iter_mut().zip(new_list.iter()) {
                if let (Some(m), Some(img)) = (c.as_object_mut(), n.get("image")) {
                    m.insert("image".into(), img.clone());
                }
            }
        }
    }
    if let Some(m) = mutable.as_object_mut() {
        for f in ["activeDeadlineSeconds", "terminationGracePeriodSeconds"] {
            match new_spec.get(f) {
                Some(v) => m.insert(f.into(), v.clone()),
                None => m.remove(f),
            };
        }
        let old_tols = get_array(old_spec, "tolerations");
        let new_tols = get_array(new_spec, "tolerations");
        if old_tols.iter().all(|t| new_tols.contains(t)) {
            match new_spec.get("tolerations") {
                Some(v) => m.insert("tolerations".into(), v.clone()),
                None => m.remove("tolerations"),
            };
        }
    }
    if mutable == *new_spec {
        Vec::new()
    } else {
        vec![Cause::new("FieldValueForbidden", "spec", SPEC_UPDATE_MSG)]
    }
}

/// The QoS class from container requests and limits.
pub fn qos_class(pod: &Value) -> &'static str {
    let spec = pod.get("spec").cloned().unwrap_or(Value::Null);
    let mut any = false;
    let mut guaranteed = true;
    for list in ["initContainers", "containers"] {
        for c in get_array(&spec, list) {
            let req = c.get("resources").and_then(|r| r.get("requests"));
            let lim = c.get("resources").and_then(|r| r.get("limits"));
            for res in ["cpu", "memory"] {
                let l = lim.and_then(|l| l.get(res)).and_then(quantity_of);
                let r = req.and_then(|r| r.get(res)).and_then(quantity_of).or(l);
                let positive = |q: &Quantity| !q.is_zero() && !q.is_negative();
                if r.as_ref().is_some_and(positive) || l.as_ref().is_some_and(positive) {
                    any = true;
                }
                match (r, l) {
                    (Some(r), Some(l)) if r == l => {}
                    _ => guaranteed = false,
                }
            }
        }
    }
    if !any {
        "BestEffort"
    } else if guaranteed {
        "Guaranteed"
    } else {
        "Burstable"
    }
}

/// A quantity of the stored object: a string, or a JSON number as the API accepts.
pub fn quantity_of(v: &Value) -> Option<Quantity> {
    match v {
        Value::String(s) => Quantity::parse(s).ok(),
        Value::Number(n) => Quantity::parse(&n.to_string()).ok(),
        _ => None,
    }
}

/// The grace period a delete with `requested` seconds gets (upstream CheckGracefulDelete).
pub fn graceful_period(pod: &Value, requested: Option<i64>) -> i64 {
    let mut period = requested
        .or_else(|| meta::path(pod, "spec.terminationGracePeriodSeconds").and_then(Value::as_i64))
        .unwrap_or(0);
    if meta::path_string(pod, "spec.nodeName").is_empty() {
        period = 0;
    }
    let phase = meta::path_string(pod, "status.phase");
    if phase == "Failed" || phase == "Succeeded" {
        period = 0;
    }
    period
}

/// Whether a status update validly keeps the pod's phase rules (terminal phases stick).
pub fn validate_status_update(old: &Value, new: &Value) -> Vec<Cause> {
    let old_phase = meta::path_string(old, "status.phase");
    let new_phase = meta::path_string(new, "status.phase");
    let terminal = |p: &str| p == "Succeeded" || p == "Failed";
    if terminal(&old_phase) && new_phase != old_phase {
        return vec![Cause::new(
            "FieldValueForbidden",
            "status.phase",
            format!(
                "Forbidden: cannot transition from terminal phase {old_phase:?} to {new_phase:?}"
            ),
        )];
    }
    Vec::new()
}

/// Whether the pod is a kubelet mirror pod.
pub fn is_mirror(pod: &Value) -> bool {
    meta::path(pod, "metadata.annotations")
        .and_then(|a| a.get("kubernetes.io/config.mirror"))
        .is_some()
}

/// pods/ephemeralcontainers update (upstream ephemeralContainersStrategy): only
/// `spec.ephemeralContainers` is taken from the request; the rest of the pod is the
/// stored one. New ephemeral containers get the container defaults.
pub fn apply_ephemeral_update(old: &Value, new: &Value) -> Value {
    let mut pod = old.clone();
    let list = meta::path(new, "spec.ephemeralContainers")
        .cloned()
        .unwrap_or(json!([]));
    if let Some(spec) = pod.get_mut("spec").and_then(Value::as_object_mut) {
        spec.insert("ephemeralContainers".into(), list);
        if let Some(Value::Array(cs)) = spec.get_mut("ephemeralContainers") {
            for c in cs {
                default_container(c);
            }
        }
    }
    pod
}

/// Fields an ephemeral container may not set (upstream validateEphemeralContainers).
const EPHEMERAL_FORBIDDEN: &[&str] = &[
    "ports",
    "livenessProbe",
    "readinessProbe",
    "startupProbe",
    "lifecycle",
    "resizePolicy",
    "restartPolicy",
];

/// Validation of a pods/ephemeralcontainers update: existing ephemeral containers stay
/// as they are; new ones have a unique name, an image, a valid target and none of the
/// fields ephemeral containers cannot have.
pub fn validate_ephemeral_update(old: &Value, new: &Value) -> Vec<Cause> {
    let mut causes = Vec::new();
    let old_list = meta::path(old, "spec.ephemeralContainers")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let spec = new.get("spec").cloned().unwrap_or(Value::Null);
    let new_list = get_array(&spec, "ephemeralContainers");
    let name_of = |c: &Value| {
        c.get("name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    for o in &old_list {
        let name = name_of(o);
        match new_list.iter().find(|n| name_of(n) == name) {
            None => causes.push(Cause::new(
                "FieldValueForbidden",
                "spec.ephemeralContainers",
                format!("Forbidden: existing ephemeral containers \"{name}\" may not be removed"),
            )),
            Some(n) if n != o => causes.push(Cause::new(
                "FieldValueForbidden",
                "spec.ephemeralContainers",
                format!("Forbidden: existing ephemeral containers \"{name}\" may not be changed"),
            )),
            Some(_) => {}
        }
    }
    let regular: Vec<String> = ["initContainers", "containers"]
        .iter()
        .flat_map(|l| get_array(&spec, l).iter().map(name_of))
        .collect();
    let mut seen = regular.clone();
    for (i, c) in new_list.iter().enumerate() {
        let base = format!("spec.ephemeralContainers[{i}]");
        let name = name_of(c);
        if old_list.iter().any(|o| name_of(o) == name) {
            seen.push(name);
            continue;
        }
        if let Some(cause) = check_name(NameRule::Label, &name, &format!("{base}.name")) {
            causes.push(cause);
        } else if seen.contains(&name) {
            causes.push(Cause::new(
                "FieldValueDuplicate",
                &format!("{base}.name"),
                format!("Duplicate value: \"{name}\""),
            ));
        }
        seen.push(name);
        if c.get("image")
            .and_then(Value::as_str)
            .unwrap_or("")
            .trim()
            .is_empty()
        {
            causes.push(Cause::new(
                "FieldValueRequired",
                &format!("{base}.image"),
                "Required value",
            ));
        }
        for f in EPHEMERAL_FORBIDDEN {
            if c.get(*f).is_some_and(|v| !v.is_null()) {
                causes.push(Cause::new(
                    "FieldValueForbidden",
                    &format!("{base}.{f}"),
                    "Forbidden: cannot be set for an Ephemeral Container",
                ));
            }
        }
        if c.get("resources")
            .and_then(Value::as_object)
            .is_some_and(|r| {
                r.values()
                    .any(|v| v.as_object().is_none_or(|o| !o.is_empty()))
            })
        {
            causes.push(Cause::new(
                "FieldValueForbidden",
                &format!("{base}.resources"),
                "Forbidden: cannot be set for an Ephemeral Container",
            ));
        }
        let target = c
            .get("targetContainerName")
            .and_then(Value::as_str)
            .unwrap_or("");
        if !target.is_empty() && !regular.iter().any(|r| r == target) {
            causes.push(Cause::new(
                "FieldValueNotFound",
                &format!("{base}.targetContainerName"),
                format!("Not found: \"{target}\""),
            ));
        }
    }
    causes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(spec: Value) -> Value {
        json!({"metadata": {"name": "p"}, "spec": spec})
    }

    /// Stored quantities are read with the exact parser (strings and JSON numbers).
    #[test]
    fn quantities_of_stored_objects() {
        let q = |v: Value| quantity_of(&v).map(|q| q.nano_value());
        assert_eq!(q(json!("100m")), Some(100_000_000));
        assert_eq!(q(json!("1Gi")), Some((1i128 << 30) * 1_000_000_000));
        assert_eq!(q(json!("1G")), Some(1_000_000_000_000_000_000));
        assert_eq!(q(json!("2")), Some(2_000_000_000));
        assert_eq!(q(json!(2)), Some(2_000_000_000));
        assert_eq!(q(json!("1e3")), Some(1_000_000_000_000));
        assert_eq!(q(json!("x")), None);
        // Equal amounts written differently make a Guaranteed pod.
        let p = pod(json!({"containers": [{"name": "c", "resources": {
            "requests": {"cpu": "500000u", "memory": "1Gi"},
            "limits": {"cpu": "0.5", "memory": "1073741824"}}}]}));
        assert_eq!(qos_class(&p), "Guaranteed");
    }

    #[test]
    fn defaults_match_upstream() {
        let mut p = pod(
            json!({"containers": [{"name": "c", "image": "nginx", "ports": [{"containerPort": 80}]}]}),
        );
        apply_defaults(&mut p);
        assert_eq!(p["spec"]["restartPolicy"], "Always");
        assert_eq!(p["spec"]["terminationGracePeriodSeconds"], 30);
        assert_eq!(p["spec"]["containers"][0]["imagePullPolicy"], "Always");
        assert_eq!(p["spec"]["containers"][0]["ports"][0]["protocol"], "TCP");
        assert_eq!(p["spec"]["tolerations"].as_array().map(Vec::len), Some(2));
        assert_eq!(pull_policy_for("nginx:1.25"), "IfNotPresent");
        assert_eq!(pull_policy_for("localhost:5000/nginx"), "Always");
    }

    #[test]
    fn validation_causes() {
        let p = pod(
            json!({"containers": [{"name": "c"}, {"name": "c", "image": "x", "volumeMounts": [{"name": "v", "mountPath": "/v"}]}], "restartPolicy": "Always"}),
        );
        let fields: Vec<String> = validate_create(&p).into_iter().map(|c| c.field).collect();
        assert!(fields.contains(&"spec.containers[0].image".to_string()));
        assert!(fields.contains(&"spec.containers[1].name".to_string()));
        assert!(fields.contains(&"spec.containers[1].volumeMounts[0].name".to_string()));
    }

    #[test]
    fn spec_updates_limited_to_images() {
        let old = pod(json!({"containers": [{"name": "c", "image": "a"}], "nodeName": "n"}));
        let img = pod(json!({"containers": [{"name": "c", "image": "b"}], "nodeName": "n"}));
        assert!(validate_spec_update(&old, &img).is_empty());
        let node = pod(json!({"containers": [{"name": "c", "image": "a"}], "nodeName": "m"}));
        assert_eq!(validate_spec_update(&old, &node).len(), 1);
    }

    #[test]
    fn qos() {
        let be = pod(json!({"containers": [{"name": "c", "image": "x"}]}));
        assert_eq!(qos_class(&be), "BestEffort");
        let g = pod(
            json!({"containers": [{"name": "c", "image": "x", "resources": {"limits": {"cpu": "1", "memory": "1Gi"}}}]}),
        );
        assert_eq!(qos_class(&g), "Guaranteed");
        let b = pod(
            json!({"containers": [{"name": "c", "image": "x", "resources": {"requests": {"cpu": "100m"}}}]}),
        );
        assert_eq!(qos_class(&b), "Burstable");
    }

    #[test]
    fn grace_rules() {
        let mut p = pod(json!({"terminationGracePeriodSeconds": 30}));
        assert_eq!(graceful_period(&p, None), 0, "unscheduled pods go at once");
        p["spec"]["nodeName"] = json!("n1");
        assert_eq!(graceful_period(&p, None), 30);
        assert_eq!(graceful_period(&p, Some(5)), 5);
        p["status"] = json!({"phase": "Succeeded"});
        assert_eq!(
            graceful_period(&p, Some(5)),
            0,
            "terminated pods go at once"
        );
    }

    #[test]
    fn ephemeral_containers_are_added_only() {
        let old = pod(json!({
            "containers": [{"name": "main", "image": "busybox"}],
            "restartPolicy": "Always"
        }));
        let request = pod(json!({
            "containers": [{"name": "changed", "image": "x"}],
            "ephemeralContainers": [{"name": "dbg", "image": "busybox", "targetContainerName": "main"}]
        }));
        let new = apply_ephemeral_update(&old, &request);
        assert_eq!(
            new["spec"]["containers"], old["spec"]["containers"],
            "only ephemeral containers change"
        );
        assert_eq!(
            new["spec"]["ephemeralContainers"][0]["terminationMessagePolicy"],
            "File"
        );
        assert!(validate_ephemeral_update(&old, &new).is_empty());

        let reasons = |old: &Value, req: Value| -> Vec<String> {
            let new = apply_ephemeral_update(old, &pod(req));
            validate_ephemeral_update(old, &new)
                .into_iter()
                .map(|c| c.message)
                .collect()
        };
        let removed = reasons(&new, json!({"ephemeralContainers": []}));
        assert!(removed[0].contains("may not be removed"), "{removed:?}");
        let changed = reasons(
            &new,
            json!({"ephemeralContainers": [{"name": "dbg", "image": "alpine", "targetContainerName": "main"}]}),
        );
        assert!(changed[0].contains("may not be changed"), "{changed:?}");
        let bad = reasons(
            &old,
            json!({"ephemeralContainers": [
                {"name": "main", "image": "busybox"},
                {"name": "probe", "image": "busybox", "readinessProbe": {"exec": {"command": ["true"]}}},
                {"name": "noimage"},
                {"name": "t", "image": "busybox", "targetContainerName": "nope"}
            ]}),
        );
        assert_eq!(bad.len(), 4, "{bad:?}");
        assert!(bad[0].contains("Duplicate value"), "{bad:?}");
        assert!(
            bad[1].contains("cannot be set for an Ephemeral Container"),
            "{bad:?}"
        );
        assert!(bad[2].contains("Required value"), "{bad:?}");
        assert!(bad[3].contains("Not found"), "{bad:?}");
    }
}
