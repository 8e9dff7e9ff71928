//! events.k8s.io/v1 Event <-> core/v1 Event (the storage form), field for field as
//! upstream's conversion functions map them.

use serde_json::{Map, Value};

const PAIRS: &[(&str, &str)] = &[
    // (events.k8s.io/v1, core/v1)
    ("regarding", "involvedObject"),
    ("note", "message"),
    ("deprecatedSource", "source"),
    ("deprecatedFirstTimestamp", "firstTimestamp"),
    ("deprecatedLastTimestamp", "lastTimestamp"),
    ("deprecatedCount", "count"),
    ("reportingController", "reportingComponent"),
];

const SAME: &[&str] = &[
    "metadata",
    "reason",
    "type",
    "action",
    "related",
    "eventTime",
    "series",
    "reportingInstance",
];

fn convert(obj: &Value, api_version: &str, to_core: bool) -> Value {
    let mut out = Map::new();
    out.insert("apiVersion".into(), Value::String(api_version.into()));
    out.insert("kind".into(), Value::String("Event".into()));
    for f in SAME {
        if let Some(v) = obj.get(*f) {
            out.insert((*f).into(), v.clone());
        }
    }
    for (ev, core) in PAIRS {
        let (from, to) = if to_core { (ev, core) } else { (core, ev) };
        if let Some(v) = obj.get(*from) {
            out.insert((*to).into(), v.clone());
        }
    }
    Value::Object(out)
}

/// events.k8s.io/v1 → core/v1.
pub fn to_core(obj: &Value) -> Value {
    convert(obj, "v1", true)
}

/// core/v1 → events.k8s.io/v1.
pub fn from_core(obj: &Value) -> Value {
    convert(obj, "events.k8s.io/v1", false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn round_trip() {
        let ev = json!({"apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": {"name": "e"},
            "regarding": {"kind": "Pod", "name": "p"}, "note": "hi", "reason": "Started", "type": "Normal",
            "reportingController": "kubelet", "reportingInstance": "n1", "action": "Start", "eventTime": "2024-01-01T00:00:00.000000Z"});
        let core = to_core(&ev);
        assert_eq!(core["involvedObject"]["name"], "p");
        assert_eq!(core["message"], "hi");
        assert_eq!(core["reportingComponent"], "kubelet");
        assert_eq!(from_core(&core), ev);
    }
}
