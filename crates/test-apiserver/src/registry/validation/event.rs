//! Event rules (upstream `ValidateEventCreate` / `ValidateEventUpdate`): the legacy checks
//! every event passes (namespace agreement, and for events with an `eventTime` the
//! reporting fields and length limits), and for events written through events.k8s.io/v1
//! the strict ones (name, series, no deprecated fields) and immutability on update.

use serde_json::Value;

use super::content::{dns1123_subdomain, qualified_name};
use super::{Errors, s};

const REPORTING_INSTANCE_MAX: usize = 128;
const ACTION_MAX: usize = 128;
const REASON_MAX: usize = 128;
const NOTE_MAX: usize = 1024;

fn set(v: Option<&Value>) -> bool {
    v.is_some_and(|v| !v.is_null() && v.as_str() != Some(""))
}

/// The checks every event passes, in storage (core/v1) form; `strict` when it was written
/// through events.k8s.io (then the reporting controller field has that API's name).
fn legacy(ev: &Value, strict: bool, out: &mut Errors) {
    let ns = crate::meta::namespace(ev);
    let involved_ns = ev
        .get("involvedObject")
        .map(|o| s(o, "namespace"))
        .unwrap_or("");
    let reporting_field = if strict {
        "reportingController"
    } else {
        "reportingComponent"
    };
    if !set(ev.get("eventTime")) {
        let agrees = if involved_ns.is_empty() {
            ns.is_empty() || ns == "default"
        } else {
            ns == involved_ns
        };
        if !agrees {
            out.invalid(
                "involvedObject.namespace",
                involved_ns,
                "does not match event.namespace",
            );
        }
    } else {
        if involved_ns.is_empty() && ns != "default" && ns != "kube-system" {
            out.invalid(
                "involvedObject.namespace",
                involved_ns,
                "does not match event.namespace",
            );
        }
        let controller = s(ev, "reportingComponent");
        if controller.is_empty() {
            out.required(reporting_field, "");
        }
        for m in qualified_name(controller) {
            out.invalid(reporting_field, controller, &m);
        }
        let instance = s(ev, "reportingInstance");
        if instance.is_empty() {
            out.required("reportingInstance", "");
        }
        if instance.len() > REPORTING_INSTANCE_MAX {
            out.invalid(
                "reportingInstance",
                "",
                &format!("can have at most {REPORTING_INSTANCE_MAX} characters"),
            );
        }
        let action = s(ev, "action");
        if action.is_empty() {
            out.required("action", "");
        }
        if action.len() > ACTION_MAX {
            out.invalid(
                "action",
                "",
                &format!("can have at most {ACTION_MAX} characters"),
            );
        }
        let reason = s(ev, "reason");
        if reason.is_empty() {
            out.required("reason", "");
        }
        if reason.len() > REASON_MAX {
            out.invalid(
                "reason",
                "",
                &format!("can have at most {REASON_MAX} characters"),
            );
        }
        if s(ev, "message").len() > NOTE_MAX {
            out.invalid(
                "message",
                "",
                &format!("can have at most {NOTE_MAX} characters"),
            );
        }
    }
    for m in dns1123_subdomain(ns) {
        out.invalid("namespace", ns, &m);
    }
}

fn series(ev: &Value, out: &mut Errors) {
    if let Some(series) = ev.get("series").filter(|v| !v.is_null()) {
        if series.get("count").and_then(Value::as_i64).unwrap_or(0) < 2 {
            out.invalid("series.count", "", "should be at least 2");
        }
        if !set(series.get("lastObservedTime")) {
            out.required("series.lastObservedTime", "");
        }
    }
}

/// Create; `strict` for events.k8s.io/v1 requests.
pub fn validate_create(ev: &Value, strict: bool) -> Errors {
    let mut out = Errors::new();
    legacy(ev, strict, &mut out);
    if !strict {
        return out;
    }
    out.extend(super::meta::validate_create(ev));
    series(ev, &mut out);
    if !set(ev.get("eventTime")) {
        out.required("eventTime", "");
    }
    let ty = s(ev, "type");
    if ty != "Normal" && ty != "Warning" {
        out.invalid("type", "", &format!("has invalid value: {ty}"));
    }
    for f in ["firstTimestamp", "lastTimestamp"] {
        if set(ev.get(f)) {
            out.invalid(f, "", "needs to be unset");
        }
    }
    if ev.get("count").and_then(Value::as_i64).unwrap_or(0) != 0 {
        out.invalid("count", "", "needs to be unset");
    }
    let source = ev.get("source").cloned().unwrap_or(Value::Null);
    if !s(&source, "component").is_empty() || !s(&source, "host").is_empty() {
        out.invalid("source", "", "needs to be unset");
    }
    out
}

/// Update; `strict` for events.k8s.io/v1 requests.
pub fn validate_update(new: &Value, old: &Value, strict: bool) -> Errors {
    let mut out = Errors::new();
    legacy(new, strict, &mut out);
    if !strict {
        return out;
    }
    out.extend(super::meta::validate_update(new, old));
    if new.get("series") != old.get("series") {
        series(new, &mut out);
    }
    for f in [
        "involvedObject",
        "reason",
        "message",
        "source",
        "firstTimestamp",
        "lastTimestamp",
        "count",
        "type",
        "eventTime",
        "action",
        "related",
        "reportingComponent",
        "reportingInstance",
    ] {
        let (a, b) = (
            new.get(f).filter(|v| !v.is_null()),
            old.get(f).filter(|v| !v.is_null()),
        );
        if a != b {
            let name = if f == "reportingComponent" {
                "reportingController"
            } else {
                f
            };
            out.invalid(
                name,
                a.map(super::Bad::from)
                    .unwrap_or(super::Bad::Plain("null".into())),
                "field is immutable",
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn event_table() {
        // (event in core/v1 form, strict, field, message)
        let cases: Vec<(Value, bool, &str, &str)> = vec![
            (
                json!({"metadata": {"name": "p.1", "namespace": "default"}, "involvedObject": {"kind": "Pod", "namespace": "other"}}),
                false,
                "involvedObject.namespace",
                "Invalid value: \"other\": does not match event.namespace",
            ),
            (
                json!({"metadata": {"name": "vm.1", "namespace": "kube-node-lease"}, "involvedObject": {"kind": "Node", "name": "vm"}}),
                false,
                "involvedObject.namespace",
                "Invalid value: \"\": does not match event.namespace",
            ),
            (
                json!({"metadata": {"name": "p.1", "namespace": "default"}, "involvedObject": {"namespace": "default"}, "eventTime": "2026-01-01T00:00:00.000000Z", "reportingComponent": "kubelet", "reportingInstance": "vm", "reason": "Started"}),
                false,
                "action",
                "Required value",
            ),
            (
                json!({"metadata": {"name": "p.1", "namespace": "default"}, "involvedObject": {"namespace": "default"}, "eventTime": "2026-01-01T00:00:00.000000Z", "reportingComponent": "kubelet", "reportingInstance": "vm", "action": "Start", "reason": "Started", "type": "Normal", "count": 3}),
                true,
                "count",
                "Invalid value: \"\": needs to be unset",
            ),
            (
                json!({"metadata": {"name": "p.1", "namespace": "default"}, "involvedObject": {"namespace": "default"}, "eventTime": "2026-01-01T00:00:00.000000Z", "reportingComponent": "kubelet", "reportingInstance": "vm", "action": "Start", "reason": "Started", "type": "Info"}),
                true,
                "type",
                "Invalid value: \"\": has invalid value: Info",
            ),
        ];
        for (ev, strict, field, msg) in cases {
            let errs = validate_create(&ev, strict).into_causes();
            assert_eq!(errs.len(), 1, "{ev}: {errs:?}");
            assert_eq!(errs[0].field, field);
            assert_eq!(errs[0].message, msg);
        }
        // What a kubelet writes: a pod event in the pod's namespace, a node event in default.
        for ok in [
            json!({"metadata": {"name": "p.1", "namespace": "ns1"}, "involvedObject": {"kind": "Pod", "namespace": "ns1"}, "reason": "Pulled", "source": {"component": "kubelet", "host": "vm"}, "count": 1}),
            json!({"metadata": {"name": "vm.1", "namespace": "default"}, "involvedObject": {"kind": "Node", "name": "vm"}, "reason": "Starting"}),
        ] {
            assert!(validate_create(&ok, false).is_empty(), "{ok}");
        }
    }
}
