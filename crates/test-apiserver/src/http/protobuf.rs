//! Decoding the few protobuf request bodies kubectl's typed clients send (kubectl always
//! asks for protobuf on writes made through client-go clientsets): SelfSubjectReview,
//! SelfSubjectAccessReview, TokenRequest, Eviction and CertificateSigningRequest (for
//! `kubectl certificate approve|deny`). Responses stay JSON, which those clients accept.
//! Field numbers are those of the upstream `generated.proto` files.

use base64::Engine;
use serde_json::{Map, Value, json};

const MAGIC: &[u8] = b"k8s\0";

#[derive(Clone, Copy)]
enum Ty {
    Str,
    Bytes,
    Int,
    Time,
    StrMap,
    Msg(&'static [F]),
}

#[derive(Clone, Copy)]
struct F(u64, &'static str, Ty, bool);

const OBJECT_META: &[F] = &[
    F(1, "name", Ty::Str, false),
    F(2, "generateName", Ty::Str, false),
    F(3, "namespace", Ty::Str, false),
    F(5, "uid", Ty::Str, false),
    F(6, "resourceVersion", Ty::Str, false),
    F(11, "labels", Ty::StrMap, false),
    F(12, "annotations", Ty::StrMap, false),
    F(14, "finalizers", Ty::Str, true),
];
const CSR_CONDITION: &[F] = &[
    F(1, "type", Ty::Str, false),
    F(6, "status", Ty::Str, false),
    F(2, "reason", Ty::Str, false),
    F(3, "message", Ty::Str, false),
    F(4, "lastUpdateTime", Ty::Time, false),
    F(5, "lastTransitionTime", Ty::Time, false),
];
const CSR_SPEC: &[F] = &[
    F(1, "request", Ty::Bytes, false),
    F(7, "signerName", Ty::Str, false),
    F(8, "expirationSeconds", Ty::Int, false),
    F(5, "usages", Ty::Str, true),
    F(2, "username", Ty::Str, false),
    F(3, "uid", Ty::Str, false),
    F(4, "groups", Ty::Str, true),
];
const CSR_STATUS: &[F] = &[
    F(1, "conditions", Ty::Msg(CSR_CONDITION), true),
    F(2, "certificate", Ty::Bytes, false),
];
const CSR: &[F] = &[
    F(1, "metadata", Ty::Msg(OBJECT_META), false),
    F(2, "spec", Ty::Msg(CSR_SPEC), false),
    F(3, "status", Ty::Msg(CSR_STATUS), false),
];
const RESOURCE_ATTRIBUTES: &[F] = &[
    F(1, "namespace", Ty::Str, false),
    F(2, "verb", Ty::Str, false),
    F(3, "group", Ty::Str, false),
    F(4, "version", Ty::Str, false),
    F(5, "resource", Ty::Str, false),
    F(6, "subresource", Ty::Str, false),
    F(7, "name", Ty::Str, false),
];
const NON_RESOURCE_ATTRIBUTES: &[F] = &[F(1, "path", Ty::Str, false), F(2, "verb", Ty::Str, false)];
const SSAR_SPEC: &[F] = &[
    F(1, "resourceAttributes", Ty::Msg(RESOURCE_ATTRIBUTES), false),
    F(
        2,
        "nonResourceAttributes",
        Ty::Msg(NON_RESOURCE_ATTRIBUTES),
        false,
    ),
];
const SSAR: &[F] = &[
    F(1, "metadata", Ty::Msg(OBJECT_META), false),
    F(2, "spec", Ty::Msg(SSAR_SPEC), false),
];
const SSR: &[F] = &[F(1, "metadata", Ty::Msg(OBJECT_META), false)];
const BOUND_REF: &[F] = &[
    F(1, "kind", Ty::Str, false),
    F(2, "apiVersion", Ty::Str, false),
    F(3, "name", Ty::Str, false),
    F(4, "uid", Ty::Str, false),
];
const TOKEN_REQUEST_SPEC: &[F] = &[
    F(1, "audiences", Ty::Str, true),
    F(4, "expirationSeconds", Ty::Int, false),
    F(3, "boundObjectRef", Ty::Msg(BOUND_REF), false),
];
const TOKEN_REQUEST: &[F] = &[
    F(1, "metadata", Ty::Msg(OBJECT_META), false),
    F(2, "spec", Ty::Msg(TOKEN_REQUEST_SPEC), false),
];
const PRECONDITIONS: &[F] = &[
    F(1, "uid", Ty::Str, false),
    F(2, "resourceVersion", Ty::Str, false),
];
const DELETE_OPTIONS: &[F] = &[
    F(1, "gracePeriodSeconds", Ty::Int, false),
    F(2, "preconditions", Ty::Msg(PRECONDITIONS), false),
    F(4, "propagationPolicy", Ty::Str, false),
    F(5, "dryRun", Ty::Str, true),
];
const EVICTION: &[F] = &[
    F(1, "metadata", Ty::Msg(OBJECT_META), false),
    F(2, "deleteOptions", Ty::Msg(DELETE_OPTIONS), false),
];
const TYPE_META: &[F] = &[
    F(1, "apiVersion", Ty::Str, false),
    F(2, "kind", Ty::Str, false),
];
const UNKNOWN: &[F] = &[
    F(1, "typeMeta", Ty::Msg(TYPE_META), false),
    F(2, "raw", Ty::Bytes, false),
];

enum Wire<'a> {
    Varint(u64),
    Len(&'a [u8]),
}

fn varint(b: &[u8], pos: &mut usize) -> Option<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = *b.get(*pos)?;
        *pos += 1;
        v |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

fn fields(b: &[u8]) -> Option<Vec<(u64, Wire<'_>)>> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < b.len() {
        let key = varint(b, &mut pos)?;
        let (num, wt) = (key >> 3, key & 7);
        match wt {
            0 => out.push((num, Wire::Varint(varint(b, &mut pos)?))),
            2 => {
                let len = usize::try_from(varint(b, &mut pos)?).ok()?;
                let end = pos.checked_add(len).filter(|e| *e <= b.len())?;
                out.push((num, Wire::Len(&b[pos..end])));
                pos = end;
            }
            1 => pos = pos.checked_add(8)?,
            5 => pos = pos.checked_add(4)?,
            _ => return None,
        }
    }
    Some(out)
}

fn value(ty: Ty, w: &Wire<'_>) -> Option<Value> {
    match (ty, w) {
        (Ty::Str, Wire::Len(b)) => Some(json!(String::from_utf8_lossy(b))),
        (Ty::Bytes, Wire::Len(b)) => {
            Some(json!(base64::engine::general_purpose::STANDARD.encode(b)))
        }
        (Ty::Int, Wire::Varint(v)) => Some(json!(*v as i64)),
        (Ty::Msg(schema), Wire::Len(b)) => message(schema, b),
        (Ty::Time, Wire::Len(b)) => {
            let secs = fields(b)?.into_iter().find_map(|(n, w)| match (n, w) {
                (1, Wire::Varint(v)) => Some(v as i64),
                _ => None,
            });
            let t = chrono::DateTime::from_timestamp(secs.unwrap_or(0), 0)?;
            Some(json!(t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)))
        }
        _ => None,
    }
}

fn message(schema: &[F], b: &[u8]) -> Option<Value> {
    let mut m = Map::new();
    for (num, w) in fields(b)? {
        let Some(F(_, name, ty, repeated)) = schema.iter().find(|f| f.0 == num).copied() else {
            continue;
        };
        if let (Ty::StrMap, Wire::Len(entry)) = (ty, &w) {
            let kv = fields(entry)?;
            let get = |n: u64| {
                kv.iter().find_map(|(k, v)| match (k, v) {
                    (k, Wire::Len(s)) if *k == n => Some(String::from_utf8_lossy(s).into_owned()),
                    _ => None,
                })
            };
            let map = m.entry(name).or_insert_with(|| json!({}));
            if let Some(obj) = map.as_object_mut() {
                obj.insert(
                    get(1).unwrap_or_default(),
                    json!(get(2).unwrap_or_default()),
                );
            }
            continue;
        }
        let v = value(ty, &w)?;
        if repeated {
            if let Some(a) = m.entry(name).or_insert_with(|| json!([])).as_array_mut() {
                a.push(v);
            }
        } else {
            m.insert(name.into(), v);
        }
    }
    Some(Value::Object(m))
}

/// Decodes a `k8s\0`-framed protobuf body of a supported kind into its JSON form.
pub fn to_json(body: &[u8]) -> Option<Value> {
    let rest = body.strip_prefix(MAGIC)?;
    let unknown = message(UNKNOWN, rest)?;
    let api_version = unknown["typeMeta"]["apiVersion"].as_str()?.to_string();
    let kind = unknown["typeMeta"]["kind"].as_str()?.to_string();
    let raw = base64::engine::general_purpose::STANDARD
        .decode(unknown["raw"].as_str().unwrap_or(""))
        .ok()?;
    let schema = match kind.as_str() {
        "SelfSubjectReview" => SSR,
        "SelfSubjectAccessReview" => SSAR,
        "TokenRequest" => TOKEN_REQUEST,
        "Eviction" => EVICTION,
        "CertificateSigningRequest" => CSR,
        _ => return None,
    };
    let mut obj = message(schema, &raw)?;
    let m = obj.as_object_mut()?;
    m.insert("apiVersion".into(), json!(api_version));
    m.insert("kind".into(), json!(kind));
    Some(obj)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tag(num: u64, wt: u64) -> u8 {
        ((num << 3) | wt) as u8
    }

    fn len_field(num: u64, payload: &[u8]) -> Vec<u8> {
        let mut v = vec![tag(num, 2), payload.len() as u8];
        v.extend_from_slice(payload);
        v
    }

    #[test]
    fn decodes_a_self_subject_access_review() {
        let attrs = [
            len_field(2, b"delete"),
            len_field(5, b"pods"),
            len_field(1, b"default"),
        ]
        .concat();
        let spec = len_field(1, &attrs);
        let raw = len_field(2, &spec);
        let type_meta = [
            len_field(1, b"authorization.k8s.io/v1"),
            len_field(2, b"SelfSubjectAccessReview"),
        ]
        .concat();
        let unknown = [len_field(1, &type_meta), len_field(2, &raw)].concat();
        let body = [MAGIC, &unknown].concat();
        let v = to_json(&body).unwrap_or_default();
        assert_eq!(v["kind"], "SelfSubjectAccessReview");
        assert_eq!(
            v["spec"]["resourceAttributes"],
            json!({"verb": "delete", "resource": "pods", "namespace": "default"})
        );
    }

    #[test]
    fn rejects_garbage() {
        assert!(to_json(b"{}").is_none());
        assert!(to_json(b"k8s\0\xff\xff").is_none());
    }
}
