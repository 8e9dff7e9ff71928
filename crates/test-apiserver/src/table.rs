//! `meta.k8s.io/v1 Table` rendering for `kubectl get`, with upstream's columns and the
//! pod STATUS/READY/RESTARTS logic of the API server's printers.

use serde_json::{Value, json};

use crate::meta;
use crate::registry::ResourceDef;

/// What a row's `object` holds (`includeObject`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IncludeObject {
    /// Nothing.
    None,
    /// PartialObjectMetadata (default).
    #[default]
    Metadata,
    /// The full object.
    Object,
}

type Column = (&'static str, &'static str, &'static str, u8);

fn columns(def: &ResourceDef) -> Vec<Column> {
    let name: Column = ("Name", "string", "name", 0);
    let age: Column = ("Age", "string", "", 0);
    match (def.group, def.kind) {
        ("", "Pod") => vec![
            name,
            ("Ready", "string", "", 0),
            ("Status", "string", "", 0),
            ("Restarts", "string", "", 0),
            age,
            ("IP", "string", "", 1),
            ("Node", "string", "", 1),
            ("Nominated Node", "string", "", 1),
            ("Readiness Gates", "string", "", 1),
        ],
        ("", "Node") => vec![
            name,
            ("Status", "string", "", 0),
            ("Roles", "string", "", 0),
            age,
            ("Version", "string", "", 0),
            ("Internal-IP", "string", "", 1),
            ("External-IP", "string", "", 1),
            ("OS-Image", "string", "", 1),
            ("Kernel-Version", "string", "", 1),
            ("Container-Runtime", "string", "", 1),
        ],
        ("", "Namespace") => vec![name, ("Status", "string", "", 0), age],
        ("", "ConfigMap") => vec![name, ("Data", "integer", "", 0), age],
        ("", "Secret") => vec![
            name,
            ("Type", "string", "", 0),
            ("Data", "integer", "", 0),
            age,
        ],
        ("", "ServiceAccount") => vec![name, ("Secrets", "integer", "", 0), age],
        ("", "Service") => vec![
            name,
            ("Type", "string", "", 0),
            ("Cluster-IP", "string", "", 0),
            ("External-IP", "string", "", 0),
            ("Port(s)", "string", "", 0),
            age,
            ("Selector", "string", "", 1),
        ],
        ("", "Event") => vec![
            ("Last Seen", "string", "", 0),
            ("Type", "string", "", 0),
            ("Reason", "string", "", 0),
            ("Object", "string", "", 0),
            ("Message", "string", "", 0),
        ],
        ("coordination.k8s.io", _) => vec![name, ("Holder", "string", "", 0), age],
        ("certificates.k8s.io", _) => vec![
            name,
            age,
            ("SignerName", "string", "", 0),
            ("Requestor", "string", "", 0),
            ("RequestedDuration", "string", "", 0),
            ("Condition", "string", "", 0),
        ],
        _ => vec![name, age],
    }
}

/// Builds a Table of `objects` (already in `def`'s version, with apiVersion/kind).
pub fn table(
    def: &ResourceDef,
    objects: &[Value],
    list_meta: Value,
    include: IncludeObject,
    table_version: &str,
) -> Value {
    let cols: Vec<Value> = columns(def)
        .iter()
        .map(|(n, t, f, p)| json!({"name": n, "type": t, "format": f, "description": description(n), "priority": p}))
        .collect();
    let rows: Vec<Value> = objects.iter().map(|o| row(def, o, include)).collect();
    json!({
        "kind": "Table",
        "apiVersion": format!("meta.k8s.io/{table_version}"),
        "metadata": list_meta,
        "columnDefinitions": cols,
        "rows": rows,
    })
}

fn description(col: &str) -> String {
    match col {
        "Name" => "Name must be unique within a namespace. Is required when creating resources, although some resources may allow a client to request the generation of an appropriate name automatically. Name is primarily intended for creation idempotence and configuration definition. Cannot be updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names".into(),
        "Age" => "CreationTimestamp is a timestamp representing the server time when this object was created. It is not guaranteed to be set in happens-before order across separate operations. Clients may not set this value. It is represented in RFC3339 form and is in UTC.\n\nPopulated by the system. Read-only. Null for lists. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata".into(),
        other => other.to_string(),
    }
}

fn row(def: &ResourceDef, obj: &Value, include: IncludeObject) -> Value {
    let object = match include {
        IncludeObject::None => Value::Null,
        IncludeObject::Metadata => partial_metadata(obj),
        IncludeObject::Object => obj.clone(),
    };
    let mut r = json!({"cells": cells(def, obj), "object": object});
    if def.kind == "Pod" {
        let phase = meta::path_string(obj, "status.phase");
        if phase == "Succeeded" || phase == "Failed" {
            r["conditions"] = json!([{"type": "Completed", "status": "True", "reason": phase, "message": "The pod has completed successfully."}]);
        }
    }
    r
}

/// `PartialObjectMetadata` of an object.
pub fn partial_metadata(obj: &Value) -> Value {
    json!({
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": obj.get("metadata").cloned().unwrap_or(json!({})),
    })
}

fn age(obj: &Value) -> String {
    since(meta::md_str(obj, "creationTimestamp"))
}

fn since(ts: Option<&str>) -> String {
    let Some(t) = ts.and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok()) else {
        return "<unknown>".into();
    };
    human_duration(chrono::Utc::now().signed_duration_since(t).num_seconds())
}

/// Upstream's duration.HumanDuration.
pub fn human_duration(secs: i64) -> String {
    if secs < -1 {
        return "<invalid>".into();
    }
    let s = secs.max(0);
    let (m, h, d) = (s / 60, s / 3600, s / 86400);
    if s < 120 {
        format!("{s}s")
    } else if m < 10 {
        if s % 60 == 0 {
            format!("{m}m")
        } else {
            format!("{m}m{}s", s % 60)
        }
    } else if h < 3 {
        format!("{m}m")
    } else if h < 8 {
        if m % 60 == 0 {
            format!("{h}h")
        } else {
            format!("{h}h{}m", m % 60)
        }
    } else if h < 48 {
        format!("{h}h")
    } else if h < 192 {
        if h % 24 == 0 {
            format!("{d}d")
        } else {
            format!("{d}d{}h", h % 24)
        }
    } else if d < 365 * 2 {
        format!("{d}d")
    } else if d < 365 * 8 {
        let y = d / 365;
        if d % 365 == 0 {
            format!("{y}y")
        } else {
            format!("{y}y{}d", d % 365)
        }
    } else {
        format!("{}y", d / 365)
    }
}

fn none_if_empty(s: String) -> String {
    if s.is_empty() { "<none>".into() } else { s }
}

fn count_map(obj: &Value, field: &str) -> usize {
    obj.get(field)
        .and_then(Value::as_object)
        .map(|m| m.len())
        .unwrap_or(0)
}

fn cells(def: &ResourceDef, obj: &Value) -> Vec<Value> {
    let name = json!(meta::name(obj));
    match (def.group, def.kind) {
        ("", "Pod") => pod_cells(obj),
        ("", "Node") => node_cells(obj),
        ("", "Namespace") => vec![
            name,
            json!(meta::path_string(obj, "status.phase")),
            json!(age(obj)),
        ],
        ("", "ConfigMap") => vec![
            name,
            json!(count_map(obj, "data") + count_map(obj, "binaryData")),
            json!(age(obj)),
        ],
        ("", "Secret") => vec![
            name,
            json!(meta::path_string(obj, "type")),
            json!(count_map(obj, "data")),
            json!(age(obj)),
        ],
        ("", "ServiceAccount") => {
            vec![
                name,
                json!(
                    obj.get("secrets")
                        .and_then(Value::as_array)
                        .map(Vec::len)
                        .unwrap_or(0)
                ),
                json!(age(obj)),
            ]
        }
        ("", "Service") => service_cells(obj),
        ("", "Event") => event_cells(obj),
        ("coordination.k8s.io", _) => vec![
            name,
            json!(meta::path_string(obj, "spec.holderIdentity")),
            json!(age(obj)),
        ],
        ("certificates.k8s.io", _) => csr_cells(obj),
        _ => vec![name, json!(age(obj))],
    }
}

fn statuses(obj: &Value, field: &str) -> Vec<Value> {
    meta::path(obj, &format!("status.{field}"))
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

fn pod_cells(pod: &Value) -> Vec<Value> {
    let total = meta::path(pod, "spec.containers")
        .and_then(Value::as_array)
        .map(Vec::len)
        .unwrap_or(0);
    let init_total = meta::path(pod, "spec.initContainers")
        .and_then(Value::as_array)
        .map(Vec::len)
        .unwrap_or(0);
    let mut restarts = 0i64;
    let mut ready = 0;
    let mut reason = meta::path_string(pod, "status.phase");
    let status_reason = meta::path_string(pod, "status.reason");
    if !status_reason.is_empty() {
        reason = status_reason.clone();
    }
    let s = |c: &Value, p: &str| meta::path_string(c, p);
    let mut initializing = false;
    for (i, c) in statuses(pod, "initContainerStatuses").iter().enumerate() {
        restarts += c.get("restartCount").and_then(Value::as_i64).unwrap_or(0);
        let term = meta::path(c, "state.terminated");
        if term.is_some() && s(c, "state.terminated.exitCode") == "0" {
            continue;
        }
        if term.is_some() {
            let r = s(c, "state.terminated.reason");
            reason = if r.is_empty() {
                let sig = s(c, "state.terminated.signal");
                if !sig.is_empty() && sig != "0" {
                    format!("Init:Signal:{sig}")
                } else {
                    format!("Init:ExitCode:{}", s(c, "state.terminated.exitCode"))
                }
            } else {
                format!("Init:{r}")
            };
        } else if !s(c, "state.waiting.reason").is_empty()
            && s(c, "state.waiting.reason") != "PodInitializing"
        {
            reason = format!("Init:{}", s(c, "state.waiting.reason"));
        } else {
            reason = format!("Init:{i}/{init_total}");
        }
        initializing = true;
        break;
    }
    if !initializing {
        let mut has_running = false;
        for c in statuses(pod, "containerStatuses").iter().rev() {
            restarts += c.get("restartCount").and_then(Value::as_i64).unwrap_or(0);
            let waiting = s(c, "state.waiting.reason");
            let term_reason = s(c, "state.terminated.reason");
            if !waiting.is_empty() {
                reason = waiting;
            } else if !term_reason.is_empty() {
                reason = term_reason;
            } else if meta::path(c, "state.terminated").is_some() {
                let sig = s(c, "state.terminated.signal");
                reason = if !sig.is_empty() && sig != "0" {
                    format!("Signal:{sig}")
                } else {
                    format!("ExitCode:{}", s(c, "state.terminated.exitCode"))
                };
            } else if c.get("ready").and_then(Value::as_bool) == Some(true)
                && meta::path(c, "state.running").is_some()
            {
                has_running = true;
                ready += 1;
            }
        }
        if reason == "Completed" && has_running {
            let pod_ready = statuses(pod, "conditions")
                .iter()
                .any(|c| s(c, "type") == "Ready" && s(c, "status") == "True");
            reason = if pod_ready {
                "Running".into()
            } else {
                "NotReady".into()
            };
        }
    }
    if meta::is_deleting(pod) {
        reason = if status_reason == "NodeLost" {
            "Unknown".into()
        } else {
            "Terminating".into()
        };
    }
    let gates = meta::path(pod, "spec.readinessGates")
        .and_then(Value::as_array)
        .map(Vec::len)
        .unwrap_or(0);
    let gates_cell = if gates == 0 {
        "<none>".to_string()
    } else {
        let true_gates = statuses(pod, "conditions")
            .iter()
            .filter(|c| {
                meta::path(pod, "spec.readinessGates")
                    .and_then(Value::as_array)
                    .is_some_and(|g| {
                        g.iter()
                            .any(|g| meta::path_string(g, "conditionType") == s(c, "type"))
                    })
                    && s(c, "status") == "True"
            })
            .count();
        format!("{true_gates}/{gates}")
    };
    vec![
        json!(meta::name(pod)),
        json!(format!("{ready}/{total}")),
        json!(reason),
        json!(restarts.to_string()),
        json!(age(pod)),
        json!(none_if_empty(meta::path_string(pod, "status.podIP"))),
        json!(none_if_empty(meta::path_string(pod, "spec.nodeName"))),
        json!(none_if_empty(meta::path_string(
            pod,
            "status.nominatedNodeName"
        ))),
        json!(gates_cell),
    ]
}

fn node_cells(node: &Value) -> Vec<Value> {
    let conds = statuses(node, "conditions");
    let mut status = match conds
        .iter()
        .find(|c| meta::path_string(c, "type") == "Ready")
        .map(|c| meta::path_string(c, "status"))
    {
        Some(s) if s == "True" => "Ready".to_string(),
        Some(s) if s == "False" => "NotReady".to_string(),
        _ => "Unknown".to_string(),
    };
    if meta::path(node, "spec.unschedulable").and_then(Value::as_bool) == Some(true) {
        status.push_str(",SchedulingDisabled");
    }
    let labels = meta::labels(node);
    let mut roles: Vec<String> = labels
        .iter()
        .filter_map(|(k, v)| {
            k.strip_prefix("node-role.kubernetes.io/")
                .map(String::from)
                .or_else(|| {
                    (k == "kubernetes.io/role").then(|| v.as_str().unwrap_or("").to_string())
                })
        })
        .filter(|r| !r.is_empty())
        .collect();
    roles.sort();
    let addr = |t: &str| {
        statuses(node, "addresses")
            .iter()
            .filter(|a| meta::path_string(a, "type") == t)
            .map(|a| meta::path_string(a, "address"))
            .collect::<Vec<_>>()
            .join(",")
    };
    vec![
        json!(meta::name(node)),
        json!(status),
        json!(none_if_empty(roles.join(","))),
        json!(age(node)),
        json!(meta::path_string(node, "status.nodeInfo.kubeletVersion")),
        json!(none_if_empty(addr("InternalIP"))),
        json!(none_if_empty(addr("ExternalIP"))),
        json!(meta::path_string(node, "status.nodeInfo.osImage")),
        json!(meta::path_string(node, "status.nodeInfo.kernelVersion")),
        json!(meta::path_string(
            node,
            "status.nodeInfo.containerRuntimeVersion"
        )),
    ]
}

fn service_cells(svc: &Value) -> Vec<Value> {
    let ports: Vec<String> = meta::path(svc, "spec.ports")
        .and_then(Value::as_array)
        .map(|ps| {
            ps.iter()
                .map(|p| {
                    let np = meta::path_string(p, "nodePort");
                    let proto = meta::path_string(p, "protocol");
                    if np.is_empty() {
                        format!("{}/{proto}", meta::path_string(p, "port"))
                    } else {
                        format!("{}:{np}/{proto}", meta::path_string(p, "port"))
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    let selector = meta::path(svc, "spec.selector")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default();
    vec![
        json!(meta::name(svc)),
        json!(meta::path_string(svc, "spec.type")),
        json!(none_if_empty(meta::path_string(svc, "spec.clusterIP"))),
        json!("<none>"),
        json!(none_if_empty(ports.join(","))),
        json!(age(svc)),
        json!(none_if_empty(selector)),
    ]
}

fn event_cells(ev: &Value) -> Vec<Value> {
    let last = ["lastTimestamp", "eventTime"]
        .iter()
        .map(|f| meta::path_string(ev, f))
        .find(|s| !s.is_empty())
        .unwrap_or_else(|| {
            meta::md_str(ev, "creationTimestamp")
                .unwrap_or("")
                .to_string()
        });
    let kind = meta::path_string(ev, "involvedObject.kind").to_lowercase();
    vec![
        json!(since(Some(&last))),
        json!(meta::path_string(ev, "type")),
        json!(meta::path_string(ev, "reason")),
        json!(format!(
            "{kind}/{}",
            meta::path_string(ev, "involvedObject.name")
        )),
        json!(meta::path_string(ev, "message").trim()),
    ]
}

fn csr_cells(csr: &Value) -> Vec<Value> {
    let mut conds: Vec<String> = statuses(csr, "conditions")
        .iter()
        .map(|c| meta::path_string(c, "type"))
        .collect();
    if meta::path(csr, "status.certificate")
        .is_some_and(|c| c.as_str().is_some_and(|s| !s.is_empty()))
    {
        conds.push("Issued".into());
    }
    let cond = if conds.is_empty() {
        "Pending".to_string()
    } else {
        conds.join(",")
    };
    let dur = meta::path(csr, "spec.expirationSeconds")
        .and_then(Value::as_i64)
        .map(human_duration)
        .unwrap_or_else(|| "<none>".into());
    vec![
        json!(meta::name(csr)),
        json!(age(csr)),
        json!(meta::path_string(csr, "spec.signerName")),
        json!(meta::path_string(csr, "spec.username")),
        json!(dur),
        json!(cond),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::defs;

    #[test]
    fn human_durations() {
        assert_eq!(human_duration(5), "5s");
        assert_eq!(human_duration(125), "2m5s");
        assert_eq!(human_duration(3600), "60m");
        assert_eq!(human_duration(4 * 3600 + 120), "4h2m");
        assert_eq!(human_duration(3 * 86400), "3d");
    }

    #[test]
    fn pod_status_column_follows_container_states() {
        let def = defs::find("", "v1", "pods").unwrap_or(&defs::RESOURCES[0]);
        let mut pod = json!({"metadata": {"name": "p", "creationTimestamp": meta::now_rfc3339()},
            "spec": {"containers": [{"name": "c"}]},
            "status": {"phase": "Pending", "containerStatuses": [{"name": "c", "restartCount": 2, "ready": false, "state": {"waiting": {"reason": "ContainerCreating"}}}]}});
        let c = cells(def, &pod);
        assert_eq!(c[1], "0/1");
        assert_eq!(c[2], "ContainerCreating");
        assert_eq!(c[3], "2");
        pod["status"]["containerStatuses"][0] =
            json!({"name": "c", "ready": true, "restartCount": 0, "state": {"running": {}}});
        pod["status"]["phase"] = json!("Running");
        let c = cells(def, &pod);
        assert_eq!(
            (c[1].clone(), c[2].clone()),
            (json!("1/1"), json!("Running"))
        );
        pod["metadata"]["deletionTimestamp"] = json!(meta::now_rfc3339());
        assert_eq!(cells(def, &pod)[2], "Terminating");
    }

    #[test]
    fn node_status_and_roles() {
        let def = defs::find("", "v1", "nodes").unwrap_or(&defs::RESOURCES[0]);
        let node = json!({"metadata": {"name": "n", "labels": {"node-role.kubernetes.io/worker": ""}},
            "spec": {"unschedulable": true},
            "status": {"conditions": [{"type": "Ready", "status": "False"}], "addresses": [{"type": "InternalIP", "address": "10.0.0.2"}]}});
        let c = cells(def, &node);
        assert_eq!(c[1], "NotReady,SchedulingDisabled");
        assert_eq!(c[2], "worker");
        assert_eq!(c[5], "10.0.0.2");
    }
}
