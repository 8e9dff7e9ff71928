//! JSON patch (RFC 6902): add, remove, replace, move, copy, test.

use serde_json::Value;

use super::PatchError;

/// Applies a JSON patch document (an array of operations).
pub fn apply(original: &Value, patch: &Value) -> Result<Value, PatchError> {
    let Value::Array(ops) = patch else {
        return Err(PatchError::Malformed(
            "json patch must be an array of operations".into(),
        ));
    };
    let mut doc = original.clone();
    for op in ops {
        let name = op
            .get("op")
            .and_then(Value::as_str)
            .ok_or_else(|| malformed("operation has no \"op\""))?;
        let path = op
            .get("path")
            .and_then(Value::as_str)
            .ok_or_else(|| malformed("operation has no \"path\""))?;
        let path = parse_pointer(path)?;
        match name {
            "add" => add(&mut doc, &path, value_of(op)?)?,
            "remove" => {
                remove(&mut doc, &path)?;
            }
            "replace" => {
                remove(&mut doc, &path)?;
                add(&mut doc, &path, value_of(op)?)?;
            }
            "move" => {
                let from = parse_pointer(from_of(op)?)?;
                let v = remove(&mut doc, &from)?;
                add(&mut doc, &path, v)?;
            }
            "copy" => {
                let from = parse_pointer(from_of(op)?)?;
                let v = get(&doc, &from)?.clone();
                add(&mut doc, &path, v)?;
            }
            "test" => {
                let want = value_of(op)?;
                if *get(&doc, &path)? != want {
                    return Err(PatchError::Unapplicable(format!(
                        "testing value {} failed",
                        pointer_str(&path)
                    )));
                }
            }
            other => return Err(malformed(&format!("unexpected operation {other:?}"))),
        }
    }
    Ok(doc)
}

fn malformed(m: &str) -> PatchError {
    PatchError::Malformed(m.to_string())
}

fn value_of(op: &Value) -> Result<Value, PatchError> {
    op.get("value")
        .cloned()
        .ok_or_else(|| malformed("operation has no \"value\""))
}

fn from_of(op: &Value) -> Result<&str, PatchError> {
    op.get("from")
        .and_then(Value::as_str)
        .ok_or_else(|| malformed("operation has no \"from\""))
}

fn parse_pointer(p: &str) -> Result<Vec<String>, PatchError> {
    if p.is_empty() {
        return Ok(Vec::new());
    }
    let Some(rest) = p.strip_prefix('/') else {
        return Err(malformed(&format!("invalid JSON pointer {p:?}")));
    };
    Ok(rest
        .split('/')
        .map(|t| t.replace("~1", "/").replace("~0", "~"))
        .collect())
}

fn pointer_str(path: &[String]) -> String {
    path.iter()
        .map(|t| format!("/{}", t.replace('~', "~0").replace('/', "~1")))
        .collect()
}

fn missing(path: &[String]) -> PatchError {
    PatchError::Unapplicable(format!("doc is missing path: \"{}\"", pointer_str(path)))
}

fn get<'a>(doc: &'a Value, path: &[String]) -> Result<&'a Value, PatchError> {
    let mut cur = doc;
    for tok in path {
        cur = match cur {
            Value::Object(m) => m.get(tok),
            Value::Array(a) => tok.parse::<usize>().ok().and_then(|i| a.get(i)),
            _ => None,
        }
        .ok_or_else(|| missing(path))?;
    }
    Ok(cur)
}

fn parent_mut<'a>(
    doc: &'a mut Value,
    path: &[String],
) -> Result<(&'a mut Value, String), PatchError> {
    let Some((last, parents)) = path.split_last() else {
        return Err(PatchError::Unapplicable(
            "cannot address the document root here".into(),
        ));
    };
    let mut cur = doc;
    for tok in parents {
        cur = match cur {
            Value::Object(m) => m.get_mut(tok),
            Value::Array(a) => tok.parse::<usize>().ok().and_then(|i| a.get_mut(i)),
            _ => None,
        }
        .ok_or_else(|| missing(path))?;
    }
    Ok((cur, last.clone()))
}

fn add(doc: &mut Value, path: &[String], value: Value) -> Result<(), PatchError> {
    if path.is_empty() {
        *doc = value;
        return Ok(());
    }
    let (parent, last) = parent_mut(doc, path)?;
    match parent {
        Value::Object(m) => {
            m.insert(last, value);
            Ok(())
        }
        Value::Array(a) => {
            let idx = if last == "-" {
                a.len()
            } else {
                last.parse::<usize>().map_err(|_| missing(path))?
            };
            if idx > a.len() {
                return Err(PatchError::Unapplicable(format!(
                    "index out of bounds at \"{}\"",
                    pointer_str(path)
                )));
            }
            a.insert(idx, value);
            Ok(())
        }
        _ => Err(missing(path)),
    }
}

fn remove(doc: &mut Value, path: &[String]) -> Result<Value, PatchError> {
    let (parent, last) = parent_mut(doc, path)?;
    match parent {
        Value::Object(m) => m.remove(&last).ok_or_else(|| missing(path)),
        Value::Array(a) => {
            let idx = last.parse::<usize>().map_err(|_| missing(path))?;
            if idx >= a.len() {
                return Err(missing(path));
            }
            Ok(a.remove(idx))
        }
        _ => Err(missing(path)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn add_replace_remove_test() {
        let doc = json!({"metadata": {"labels": {"a": "1"}}, "spec": {"list": [1, 2]}});
        let patch = json!([
            {"op": "add", "path": "/metadata/labels/b~1c", "value": "2"},
            {"op": "replace", "path": "/metadata/labels/a", "value": "x"},
            {"op": "add", "path": "/spec/list/-", "value": 3},
            {"op": "add", "path": "/spec/list/0", "value": 0},
            {"op": "remove", "path": "/spec/list/1"},
            {"op": "test", "path": "/spec/list", "value": [0, 2, 3]},
            {"op": "copy", "from": "/metadata/labels/a", "path": "/metadata/labels/c"},
            {"op": "move", "from": "/metadata/labels/c", "path": "/spec/moved"},
        ]);
        let out = apply(&doc, &patch).unwrap();
        assert_eq!(out["metadata"]["labels"], json!({"a": "x", "b/c": "2"}));
        assert_eq!(out["spec"]["list"], json!([0, 2, 3]));
        assert_eq!(out["spec"]["moved"], "x");
    }

    #[test]
    fn failures() {
        let doc = json!({"a": 1});
        assert!(matches!(
            apply(&doc, &json!([{"op": "remove", "path": "/b"}])),
            Err(PatchError::Unapplicable(_))
        ));
        assert!(matches!(
            apply(&doc, &json!([{"op": "test", "path": "/a", "value": 2}])),
            Err(PatchError::Unapplicable(_))
        ));
        assert!(matches!(
            apply(&doc, &json!({"op": "add"})),
            Err(PatchError::Malformed(_))
        ));
        assert!(matches!(
            apply(&doc, &json!([{"op": "nope", "path": "/a"}])),
            Err(PatchError::Malformed(_))
        ));
    }
}
