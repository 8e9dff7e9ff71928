//! Strategic merge patch: JSON merge patch plus list merging by key and the `$patch`,
//! `$retainKeys`, `$setElementOrder/` and `$deleteFromPrimitiveList/` directives.

use serde_json::{Map, Value};

use super::PatchError;
use super::schema::{ListStrategy, list_strategy};

const PATCH: &str = "$patch";
const RETAIN_KEYS: &str = "$retainKeys";
const SET_ORDER: &str = "$setElementOrder/";
const DELETE_PRIMITIVE: &str = "$deleteFromPrimitiveList/";

/// Applies a strategic merge patch to `original`.
pub fn apply(
    kind: &str,
    original: &Value,
    patch: &Map<String, Value>,
) -> Result<Value, PatchError> {
    let base = match original {
        Value::Object(m) => m.clone(),
        _ => Map::new(),
    };
    let mut path = Vec::new();
    Ok(Value::Object(merge_map(kind, &mut path, base, patch)?))
}

fn merge_map(
    kind: &str,
    path: &mut Vec<String>,
    mut base: Map<String, Value>,
    patch: &Map<String, Value>,
) -> Result<Map<String, Value>, PatchError> {
    match patch.get(PATCH).and_then(Value::as_str) {
        Some("replace") => return Ok(strip_directives(patch)),
        Some("delete") => return Ok(Map::new()),
        Some("merge") | None => {}
        Some(other) => {
            return Err(PatchError::Malformed(format!(
                "unknown patch type: {other}"
            )));
        }
    }
    for (k, pv) in patch {
        if k.starts_with('$') {
            continue;
        }
        if pv.is_null() {
            base.remove(k);
            continue;
        }
        path.push(k.clone());
        let merged = merge_value(kind, path, base.remove(k), pv)?;
        path.pop();
        if let Some(v) = merged {
            base.insert(k.clone(), v);
        }
    }
    for (k, pv) in patch {
        if let Some(field) = k.strip_prefix(DELETE_PRIMITIVE) {
            let remove: Vec<&Value> = pv
                .as_array()
                .map(|a| a.iter().collect())
                .unwrap_or_default();
            if let Some(Value::Array(list)) = base.get_mut(field) {
                list.retain(|v| !remove.contains(&v));
            }
        }
    }
    for (k, pv) in patch {
        if let Some(field) = k.strip_prefix(SET_ORDER) {
            let strategy = field_strategy(kind, path, field);
            if let (Some(Value::Array(list)), Some(order)) = (base.get_mut(field), pv.as_array()) {
                reorder(list, order, strategy);
            }
        }
    }
    if let Some(Value::Array(keep)) = patch.get(RETAIN_KEYS) {
        let keep: Vec<&str> = keep.iter().filter_map(Value::as_str).collect();
        base.retain(|k, _| keep.contains(&k.as_str()));
    }
    Ok(base)
}

fn field_strategy(kind: &str, path: &[String], field: &str) -> ListStrategy {
    let mut p: Vec<&str> = path.iter().map(String::as_str).collect();
    p.push(field);
    list_strategy(kind, &p)
}

/// Merges one field; `None` means the field is removed.
fn merge_value(
    kind: &str,
    path: &mut Vec<String>,
    base: Option<Value>,
    pv: &Value,
) -> Result<Option<Value>, PatchError> {
    match pv {
        Value::Object(pm) => {
            if pm.get(PATCH).and_then(Value::as_str) == Some("delete") {
                return Ok(None);
            }
            let bm = match base {
                Some(Value::Object(bm)) => bm,
                _ => Map::new(),
            };
            Ok(Some(Value::Object(merge_map(kind, path, bm, pm)?)))
        }
        Value::Array(items) => {
            let p: Vec<&str> = path.iter().map(String::as_str).collect();
            let strategy = list_strategy(kind, &p);
            let base_list = match base {
                Some(Value::Array(b)) => b,
                _ => Vec::new(),
            };
            Ok(Some(Value::Array(merge_list(
                kind, path, base_list, items, strategy,
            )?)))
        }
        other => Ok(Some(other.clone())),
    }
}

fn merge_list(
    kind: &str,
    path: &mut Vec<String>,
    mut base: Vec<Value>,
    items: &[Value],
    strategy: ListStrategy,
) -> Result<Vec<Value>, PatchError> {
    let replace_all = items
        .iter()
        .any(|i| i.get(PATCH).and_then(Value::as_str) == Some("replace"));
    match strategy {
        _ if replace_all => Ok(items
            .iter()
            .filter(|i| i.get(PATCH).is_none())
            .map(clean)
            .collect()),
        ListStrategy::Replace => Ok(items.iter().map(clean).collect()),
        ListStrategy::MergePrimitives => {
            for i in items {
                if !base.contains(i) {
                    base.push(i.clone());
                }
            }
            Ok(base)
        }
        ListStrategy::MergeByKey(key) => {
            for item in items {
                let Value::Object(im) = item else {
                    return Err(PatchError::Unapplicable(format!(
                        "list item of {} is not an object",
                        path.join(".")
                    )));
                };
                let Some(kv) = im.get(key) else {
                    return Err(PatchError::Unapplicable(format!(
                        "map: {item} does not contain declared merge key: {key}"
                    )));
                };
                let pos = base.iter().position(|b| b.get(key) == Some(kv));
                if im.get(PATCH).and_then(Value::as_str) == Some("delete") {
                    base.retain(|b| b.get(key) != Some(kv));
                    continue;
                }
                match pos {
                    Some(i) => {
                        let existing = match std::mem::take(&mut base[i]) {
                            Value::Object(m) => m,
                            _ => Map::new(),
                        };
                        base[i] = Value::Object(merge_map(kind, path, existing, im)?);
                    }
                    None => base.push(Value::Object(merge_map(kind, path, Map::new(), im)?)),
                }
            }
            Ok(base)
        }
    }
}

/// Orders `list` as `order` says; items not named keep their relative order after them.
fn reorder(list: &mut Vec<Value>, order: &[Value], strategy: ListStrategy) {
    let key_of = |v: &Value| -> Option<Value> {
        match strategy {
            ListStrategy::MergeByKey(k) => v.get(k).cloned(),
            _ => Some(v.clone()),
        }
    };
    let order_keys: Vec<Value> = order.iter().filter_map(&key_of).collect();
    let mut items = std::mem::take(list);
    for k in &order_keys {
        if let Some(pos) = items.iter().position(|i| key_of(i).as_ref() == Some(k)) {
            list.push(items.remove(pos));
        }
    }
    list.append(&mut items);
}

fn strip_directives(m: &Map<String, Value>) -> Map<String, Value> {
    m.iter()
        .filter(|(k, _)| !k.starts_with('$'))
        .map(|(k, v)| (k.clone(), clean(v)))
        .collect()
}

fn clean(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(strip_directives(m)),
        Value::Array(a) => Value::Array(a.iter().map(clean).collect()),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn smp(kind: &str, orig: Value, patch: Value) -> Value {
        let Value::Object(p) = patch else {
            return Value::Null;
        };
        apply(kind, &orig, &p).unwrap_or(Value::Null)
    }

    #[test]
    fn pod_conditions_merge_by_type_with_element_order() {
        // What the kubelet's status manager sends.
        let orig = json!({"status": {"phase": "Pending", "conditions": [
            {"type": "PodScheduled", "status": "True"},
            {"type": "Ready", "status": "False"}
        ]}});
        let patch = json!({"status": {
            "$setElementOrder/conditions": [{"type": "Initialized"}, {"type": "Ready"}, {"type": "PodScheduled"}],
            "conditions": [{"type": "Initialized", "status": "True"}, {"type": "Ready", "status": "True"}],
            "phase": "Running"
        }});
        let out = smp("Pod", orig, patch);
        assert_eq!(out["status"]["phase"], "Running");
        assert_eq!(
            out["status"]["conditions"],
            json!([
                {"type": "Initialized", "status": "True"},
                {"type": "Ready", "status": "True"},
                {"type": "PodScheduled", "status": "True"}
            ])
        );
    }

    #[test]
    fn container_statuses_are_replaced() {
        let orig = json!({"status": {"containerStatuses": [{"name": "a"}, {"name": "b"}]}});
        let out = smp(
            "Pod",
            orig,
            json!({"status": {"containerStatuses": [{"name": "b", "ready": true}]}}),
        );
        assert_eq!(
            out["status"]["containerStatuses"],
            json!([{"name": "b", "ready": true}])
        );
    }

    #[test]
    fn delete_directives_and_nulls() {
        let orig = json!({
            "metadata": {"labels": {"a": "1", "b": "2"}, "finalizers": ["x", "y"]},
            "spec": {"containers": [{"name": "c1", "image": "i1"}, {"name": "c2", "image": "i2"}]}
        });
        let patch = json!({
            "metadata": {"labels": {"a": null, "c": "3"}, "$deleteFromPrimitiveList/finalizers": ["x"], "finalizers": ["z"]},
            "spec": {"containers": [{"name": "c1", "$patch": "delete"}, {"name": "c2", "image": "i3"}]}
        });
        let out = smp("Pod", orig, patch);
        assert_eq!(out["metadata"]["labels"], json!({"b": "2", "c": "3"}));
        assert_eq!(out["metadata"]["finalizers"], json!(["y", "z"]));
        assert_eq!(
            out["spec"]["containers"],
            json!([{"name": "c2", "image": "i3"}])
        );
    }

    #[test]
    fn replace_directive_and_retain_keys() {
        let orig =
            json!({"spec": {"volumes": [{"name": "v", "emptyDir": {}}], "x": {"a": 1, "b": 2}}});
        let patch = json!({"spec": {
            "x": {"$patch": "replace", "c": 3},
            "volumes": [{"name": "v", "$retainKeys": ["name", "hostPath"], "hostPath": {"path": "/tmp"}}]
        }});
        let out = smp("Pod", orig, patch);
        assert_eq!(out["spec"]["x"], json!({"c": 3}));
        assert_eq!(
            out["spec"]["volumes"],
            json!([{"name": "v", "hostPath": {"path": "/tmp"}}])
        );
    }

    #[test]
    fn node_addresses_merge_and_missing_key_fails() {
        let orig =
            json!({"status": {"addresses": [{"type": "InternalIP", "address": "10.0.0.1"}]}});
        let out = smp(
            "Node",
            orig.clone(),
            json!({"status": {"addresses": [{"type": "Hostname", "address": "n1"}]}}),
        );
        assert_eq!(out["status"]["addresses"].as_array().map(Vec::len), Some(2));
        let Value::Object(p) = json!({"status": {"addresses": [{"address": "x"}]}}) else {
            return;
        };
        assert!(apply("Node", &orig, &p).is_err());
    }
}
