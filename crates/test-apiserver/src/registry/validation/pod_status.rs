//! Pod status update rules (upstream `ValidatePodStatusUpdate`) beyond the terminal phase
//! check in `registry::pod`: condition types, observedGeneration, the QoS class, container
//! state transitions the restart policy forbids, pod and host IPs.

use std::net::IpAddr;

use serde_json::Value;

use super::content::qualified_name;
use super::{Bad, Errors, items, s};
use crate::meta;

const SYSTEM_CONDITIONS: &[&str] = &["PodScheduled", "Ready", "Initialized"];

fn conditions(new: &Value, out: &mut Errors) {
    let status = new.get("status").cloned().unwrap_or(Value::Null);
    for (i, c) in items(&status, "conditions").iter().enumerate() {
        if let Some(g) = c.get("observedGeneration").and_then(Value::as_i64)
            && g < 0
        {
            out.invalid(
                &format!("status.conditions[{i}].observedGeneration"),
                g,
                "must be a non-negative integer",
            );
        }
        let ty = s(c, "type");
        if SYSTEM_CONDITIONS.contains(&ty) {
            continue;
        }
        for m in qualified_name(ty) {
            out.invalid(&format!("status.conditions[{i}].Type"), ty, &m);
        }
    }
}

fn is_terminated(status: &Value) -> bool {
    status
        .get("state")
        .and_then(|s| s.get("terminated"))
        .is_some_and(|t| !t.is_null())
}

fn exit_code(status: &Value) -> i64 {
    meta::path(status, "state.terminated.exitCode")
        .and_then(Value::as_i64)
        .unwrap_or(0)
}

/// Terminated containers of a pod that does not restart them stay terminated.
fn transitions(new: &Value, old: &Value, list: &str, out: &mut Errors) {
    let policy = meta::path_string(old, "spec.restartPolicy");
    if policy == "Always" {
        return;
    }
    let sidecars: Vec<&str> = if list == "initContainerStatuses" {
        meta::path(old, "spec.initContainers")
            .and_then(Value::as_array)
            .map(|cs| {
                cs.iter()
                    .filter(|c| s(c, "restartPolicy") == "Always")
                    .map(|c| s(c, "name"))
                    .collect()
            })
            .unwrap_or_default()
    } else {
        Vec::new()
    };
    let old_list = meta::path(old, &format!("status.{list}"))
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let new_list = meta::path(new, &format!("status.{list}"))
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for (i, o) in old_list.iter().enumerate() {
        if !is_terminated(o) || sidecars.contains(&s(o, "name")) {
            continue;
        }
        if exit_code(o) != 0 && policy == "OnFailure" {
            continue;
        }
        for n in &new_list {
            if s(n, "name") == s(o, "name") && !is_terminated(n) {
                out.forbidden(
                    &format!("status.{list}[{i}].state"),
                    "may not be transitioned to non-terminated state",
                );
            }
        }
    }
}

/// podIPs / hostIPs: valid IPs (kept invalid ones excepted), one per family.
fn ips(new: &Value, old: &Value, list: &str, out: &mut Errors) {
    let addrs = |p: &Value| -> Vec<String> {
        meta::path(p, &format!("status.{list}"))
            .and_then(Value::as_array)
            .map(|a| a.iter().map(|x| s(x, "ip").to_string()).collect())
            .unwrap_or_default()
    };
    let (now, before) = (addrs(new), addrs(old));
    if list == "hostIPs"
        && let Some(first) = now.first()
        && *first != meta::path_string(new, "status.hostIP")
    {
        out.invalid(
            "status.hostIPs[0].ip",
            first.as_str(),
            "must be equal to `hostIP`",
        );
    }
    let mut families = Vec::new();
    for (i, ip) in now.iter().enumerate() {
        match ip.parse::<IpAddr>() {
            Ok(a) => families.push(a.is_ipv4()),
            Err(_) if before.contains(ip) => {}
            Err(_) => out.invalid(
                &format!("status.{list}[{i}]"),
                ip.as_str(),
                "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)",
            ),
        }
    }
    if now.len() > 1 && (now.len() > 2 || families.len() != 2 || families[0] == families[1]) {
        let value: Vec<String> = now
            .iter()
            .map(|ip| format!("{{\"IP\":{}}}", Value::from(ip.as_str())))
            .collect();
        out.invalid(
            &format!("status.{list}"),
            Bad::Plain(format!("[{}]", value.join(","))),
            "may specify no more than one IP for each IP family",
        );
    }
}

/// The status update checks (the metadata rules run beside them).
pub fn validate(new: &Value, old: &Value) -> Errors {
    let mut out = super::meta::validate_update(new, old);
    conditions(new, &mut out);
    if let Some(g) = meta::path(new, "status.observedGeneration").and_then(Value::as_i64)
        && g < 0
    {
        out.invalid(
            "status.observedGeneration",
            g,
            "must be a non-negative integer",
        );
    }
    let (q_new, q_old) = (
        meta::path_string(new, "status.qosClass"),
        meta::path_string(old, "status.qosClass"),
    );
    if q_new != q_old {
        out.invalid("status.qosClass", q_new.as_str(), "field is immutable");
    }
    transitions(new, old, "containerStatuses", &mut out);
    transitions(new, old, "initContainerStatuses", &mut out);
    ips(new, old, "podIPs", &mut out);
    ips(new, old, "hostIPs", &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(policy: &str, status: Value) -> Value {
        json!({"metadata": {"name": "p", "namespace": "default"},
               "spec": {"restartPolicy": policy, "containers": [{"name": "c", "image": "busybox"}]},
               "status": status})
    }

    #[test]
    fn status_update_table() {
        let terminated = json!({"qosClass": "BestEffort", "containerStatuses": [{"name": "c", "state": {"terminated": {"exitCode": 0}}}]});
        let running = json!({"qosClass": "BestEffort", "containerStatuses": [{"name": "c", "state": {"running": {}}}]});
        // (old, new, field, message)
        let cases: Vec<(Value, Value, &str, &str)> = vec![
            (
                pod("Never", terminated.clone()),
                pod("Never", running.clone()),
                "status.containerStatuses[0].state",
                "Forbidden: may not be transitioned to non-terminated state",
            ),
            (
                pod("Always", json!({"qosClass": "BestEffort"})),
                pod("Always", json!({"qosClass": "Burstable"})),
                "status.qosClass",
                "Invalid value: \"Burstable\": field is immutable",
            ),
            (
                pod("Always", json!({"qosClass": "BestEffort"})),
                pod(
                    "Always",
                    json!({"qosClass": "BestEffort", "conditions": [{"type": "bad type", "status": "True"}]}),
                ),
                "status.conditions[0].Type",
                "Invalid value: \"bad type\": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')",
            ),
            (
                pod("Always", json!({"qosClass": "BestEffort"})),
                pod(
                    "Always",
                    json!({"qosClass": "BestEffort", "podIP": "10.0.0.300", "podIPs": [{"ip": "10.0.0.300"}]}),
                ),
                "status.podIPs[0]",
                "Invalid value: \"10.0.0.300\": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)",
            ),
            (
                pod("Always", json!({"qosClass": "BestEffort"})),
                pod(
                    "Always",
                    json!({"qosClass": "BestEffort", "podIPs": [{"ip": "10.0.0.3"}, {"ip": "10.0.0.4"}]}),
                ),
                "status.podIPs",
                "Invalid value: [{\"IP\":\"10.0.0.3\"},{\"IP\":\"10.0.0.4\"}]: may specify no more than one IP for each IP family",
            ),
            (
                pod("Always", json!({"qosClass": "BestEffort"})),
                pod(
                    "Always",
                    json!({"qosClass": "BestEffort", "hostIP": "10.0.0.1", "hostIPs": [{"ip": "10.0.0.2"}]}),
                ),
                "status.hostIPs[0].ip",
                "Invalid value: \"10.0.0.2\": must be equal to `hostIP`",
            ),
        ];
        for (old, new, field, msg) in cases {
            let errs = validate(&new, &old).into_causes();
            assert_eq!(errs.len(), 1, "{new}: {errs:?}");
            assert_eq!(errs[0].field, field);
            assert_eq!(errs[0].message, msg);
        }
        // Restarting under Always or after a failure under OnFailure is fine; so is what a
        // kubelet reports for a running pod.
        assert!(
            validate(
                &pod("Always", running.clone()),
                &pod("Always", terminated.clone())
            )
            .is_empty()
        );
        let failed = json!({"qosClass": "BestEffort", "containerStatuses": [{"name": "c", "state": {"terminated": {"exitCode": 1}}}]});
        assert!(
            validate(
                &pod("OnFailure", running.clone()),
                &pod("OnFailure", failed)
            )
            .is_empty()
        );
        let kubelet = json!({"qosClass": "BestEffort", "phase": "Running", "hostIP": "10.0.0.1", "hostIPs": [{"ip": "10.0.0.1"}],
            "podIP": "10.91.0.5", "podIPs": [{"ip": "10.91.0.5"}],
            "conditions": [{"type": "PodReadyToStartContainers", "status": "True"}, {"type": "Ready", "status": "True"}]});
        assert!(
            validate(
                &pod("Always", kubelet),
                &pod("Always", json!({"qosClass": "BestEffort"}))
            )
            .is_empty()
        );
    }
}
