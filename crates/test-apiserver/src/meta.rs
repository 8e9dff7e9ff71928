//! Small accessors for `metadata` of objects held as `serde_json::Value`.

use serde_json::{Map, Value, json};

/// Makes `v` an object (replacing any other value) and returns its map.
pub fn ensure_object(v: &mut Value) -> &mut Map<String, Value> {
    if !v.is_object() {
        *v = Value::Object(Map::new());
    }
    match v {
        Value::Object(m) => m,
        // The value was made an object just above.
        _ => unreachable!("value is an object"),
    }
}

/// `metadata` of an object, created if missing.
pub fn metadata_mut(obj: &mut Value) -> &mut Map<String, Value> {
    ensure_object(
        ensure_object(obj)
            .entry("metadata")
            .or_insert_with(|| json!({})),
    )
}

/// A string field of metadata.
pub fn md_str<'a>(obj: &'a Value, field: &str) -> Option<&'a str> {
    obj.get("metadata")?.get(field)?.as_str()
}

/// metadata.name ("" if missing).
pub fn name(obj: &Value) -> &str {
    md_str(obj, "name").unwrap_or("")
}

/// metadata.namespace ("" if missing).
pub fn namespace(obj: &Value) -> &str {
    md_str(obj, "namespace").unwrap_or("")
}

/// metadata.uid ("" if missing).
pub fn uid(obj: &Value) -> &str {
    md_str(obj, "uid").unwrap_or("")
}

/// metadata.resourceVersion parsed.
pub fn resource_version(obj: &Value) -> Option<u64> {
    md_str(obj, "resourceVersion")?.parse().ok()
}

/// Sets metadata.resourceVersion.
pub fn set_resource_version(obj: &mut Value, rv: u64) {
    metadata_mut(obj).insert("resourceVersion".into(), Value::String(rv.to_string()));
}

/// metadata.labels as pairs.
pub fn labels(obj: &Value) -> Map<String, Value> {
    obj.get("metadata")
        .and_then(|m| m.get("labels"))
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default()
}

/// metadata.finalizers.
pub fn finalizers(obj: &Value) -> Vec<String> {
    obj.get("metadata")
        .and_then(|m| m.get("finalizers"))
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

/// Whether metadata.deletionTimestamp is set.
pub fn is_deleting(obj: &Value) -> bool {
    md_str(obj, "deletionTimestamp").is_some()
}

/// metadata.deletionGracePeriodSeconds.
pub fn deletion_grace(obj: &Value) -> Option<i64> {
    obj.get("metadata")?
        .get("deletionGracePeriodSeconds")?
        .as_i64()
}

/// Follows a dotted path of object fields.
pub fn path<'a>(obj: &'a Value, dotted: &str) -> Option<&'a Value> {
    dotted.split('.').try_fold(obj, |v, k| v.get(k))
}

/// A string at a dotted path ("" if missing or not a string; booleans/numbers rendered).
pub fn path_string(obj: &Value, dotted: &str) -> String {
    match path(obj, dotted) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Bool(b)) => b.to_string(),
        Some(Value::Number(n)) => n.to_string(),
        _ => String::new(),
    }
}

/// Now as an RFC 3339 timestamp with second precision (metav1.Time).
pub fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// Now plus `secs` seconds, RFC 3339.
pub fn rfc3339_in(secs: i64) -> String {
    (chrono::Utc::now() + chrono::Duration::seconds(secs))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// Now as metav1.MicroTime.
pub fn now_micro() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

/// A random RFC 4122 version 4 UUID.
pub fn new_uid() -> String {
    let mut b = crate::auth::random_bytes::<16>();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// The random suffix upstream appends for generateName (5 chars of bcdfghjklmnpqrstvwxz2456789).
pub fn random_suffix(len: usize) -> String {
    const ALPHA: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    crate::auth::random_bytes::<16>()
        .iter()
        .take(len)
        .map(|b| ALPHA[*b as usize % ALPHA.len()] as char)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uid_is_v4_shaped() {
        let u = new_uid();
        assert_eq!(u.len(), 36);
        assert_eq!(&u[14..15], "4");
        assert_ne!(new_uid(), u);
    }

    #[test]
    fn path_helpers() {
        let v = json!({"spec": {"nodeName": "n1", "hostNetwork": true}});
        assert_eq!(path_string(&v, "spec.nodeName"), "n1");
        assert_eq!(path_string(&v, "spec.hostNetwork"), "true");
        assert_eq!(path_string(&v, "spec.missing"), "");
    }

    #[test]
    fn metadata_mut_repairs_non_objects() {
        let mut v = json!({"metadata": 3});
        set_resource_version(&mut v, 7);
        assert_eq!(resource_version(&v), Some(7));
    }
}
