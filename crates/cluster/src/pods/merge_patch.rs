//! JSON merge patch (RFC 7386) between two values: what to send so that `from` becomes
//! `to`. Objects are diffed key by key (removed keys become `null`); anything else that
//! differs, arrays included, is replaced whole.

use serde_json::{Map, Value};

/// The patch, or `None` when the values are equal.
pub fn diff(from: &Value, to: &Value) -> Option<Value> {
    match (from, to) {
        (Value::Object(a), Value::Object(b)) => {
            let mut out = Map::new();
            for (k, va) in a {
                match b.get(k) {
                    None => {
                        out.insert(k.clone(), Value::Null);
                    }
                    Some(vb) => {
                        if let Some(d) = diff(va, vb) {
                            out.insert(k.clone(), d);
                        }
                    }
                }
            }
            for (k, vb) in b {
                if !a.contains_key(k) && !vb.is_null() {
                    out.insert(k.clone(), vb.clone());
                }
            }
            (!out.is_empty()).then_some(Value::Object(out))
        }
        (a, b) if a == b => None,
        (_, b) => Some(b.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn minimal_patches() {
        assert_eq!(diff(&json!({"a": 1}), &json!({"a": 1})), None);
        assert_eq!(
            diff(
                &json!({"a": 1, "b": {"c": 2, "d": 3}, "e": [1]}),
                &json!({"a": 1, "b": {"c": 2}, "e": [1, 2], "f": "x"})
            ),
            Some(json!({"b": {"d": null}, "e": [1, 2], "f": "x"}))
        );
        assert_eq!(
            diff(&json!({"a": {"b": 1}}), &json!({"a": 5})),
            Some(json!({"a": 5}))
        );
    }
}
