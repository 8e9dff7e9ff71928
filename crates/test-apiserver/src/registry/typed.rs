//! Decoding request bodies through the k8s-openapi types: the round trip prunes unknown
//! fields (as upstream does), and the diff between input and output finds them for
//! `fieldValidation=Strict|Warn`.

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::error::ApiError;

use super::defs::ResourceDef;

/// The `fieldValidation` query parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FieldValidation {
    /// Drop unknown fields silently.
    Ignore,
    /// Drop them and return a `Warning` header (upstream default).
    #[default]
    Warn,
    /// Reject the request.
    Strict,
}

impl FieldValidation {
    /// Parses the query value (case-sensitive like upstream).
    pub fn parse(s: &str) -> Result<Self, ApiError> {
        match s {
            "" | "Warn" => Ok(FieldValidation::Warn),
            "Ignore" => Ok(FieldValidation::Ignore),
            "Strict" => Ok(FieldValidation::Strict),
            other => Err(ApiError::BadRequest(format!(
                "fieldValidation parameter unsupported: {other}. Valid values are Ignore, Warn and Strict"
            ))),
        }
    }
}

/// Round-trips `input` through `T`, filling apiVersion/kind when absent and rejecting a
/// mismatch. Returns the pruned object and the unknown fields found.
pub fn roundtrip<T: DeserializeOwned + Serialize>(
    def_api_version: &str,
    kind: &str,
    mut input: Value,
) -> Result<(Value, Vec<String>), ApiError> {
    let Value::Object(map) = &mut input else {
        return Err(ApiError::BadRequest(
            "the request body is not a JSON object".into(),
        ));
    };
    match map.get("apiVersion").and_then(Value::as_str) {
        None | Some("") => {
            map.insert("apiVersion".into(), Value::String(def_api_version.into()));
        }
        Some(v) if v != def_api_version => {
            return Err(ApiError::BadRequest(format!(
                "the API version in the data ({v}) does not match the expected API version ({def_api_version})"
            )));
        }
        Some(_) => {}
    }
    match map.get("kind").and_then(Value::as_str) {
        None | Some("") => {
            map.insert("kind".into(), Value::String(kind.into()));
        }
        Some(k) if k != kind => {
            return Err(ApiError::BadRequest(format!(
                "the kind in the data ({k}) does not match the expected kind ({kind})"
            )));
        }
        Some(_) => {}
    }
    let typed: T = serde_json::from_value(input.clone())
        .map_err(|e| ApiError::BadRequest(format!("error decoding {kind}: {e}")))?;
    let out = serde_json::to_value(&typed).map_err(|e| ApiError::Internal(e.to_string()))?;
    let mut unknown = Vec::new();
    diff_unknown(&input, &out, "", &mut unknown);
    Ok((out, unknown))
}

/// Applies the field-validation mode to unknown fields: Strict fails, Warn returns warnings.
pub fn check_unknown(mode: FieldValidation, unknown: &[String]) -> Result<Vec<String>, ApiError> {
    if unknown.is_empty() {
        return Ok(Vec::new());
    }
    let msgs: Vec<String> = unknown
        .iter()
        .map(|f| format!("unknown field \"{f}\""))
        .collect();
    match mode {
        FieldValidation::Ignore => Ok(Vec::new()),
        FieldValidation::Warn => Ok(msgs),
        FieldValidation::Strict => Err(ApiError::BadRequest(format!(
            "strict decoding error: {}",
            msgs.join(", ")
        ))),
    }
}

fn diff_unknown(input: &Value, out: &Value, prefix: &str, found: &mut Vec<String>) {
    match (input, out) {
        (Value::Object(i), Value::Object(o)) => {
            for (k, v) in i {
                let p = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                match o.get(k) {
                    None if !v.is_null() => found.push(p),
                    Some(ov) => diff_unknown(v, ov, &p, found),
                    None => {}
                }
            }
        }
        (Value::Array(i), Value::Array(o)) => {
            for (n, (iv, ov)) in i.iter().zip(o.iter()).enumerate() {
                diff_unknown(iv, ov, &format!("{prefix}[{n}]"), found);
            }
        }
        _ => {}
    }
}

/// Round-trips an object through the k8s-openapi type of `def` (kinds without a typed
/// model pass through unchanged).
pub fn decode(def: &ResourceDef, input: Value) -> Result<(Value, Vec<String>), ApiError> {
    use k8s_openapi::api::{
        authentication, authorization, certificates, coordination, core, events, node,
    };
    let av = def.api_version();
    let av = av.as_str();
    match (def.group, def.kind) {
        ("", "Pod") => roundtrip::<core::v1::Pod>(av, def.kind, input),
        ("", "Node") => roundtrip::<core::v1::Node>(av, def.kind, input),
        ("", "Namespace") => roundtrip::<core::v1::Namespace>(av, def.kind, input),
        ("", "ConfigMap") => roundtrip::<core::v1::ConfigMap>(av, def.kind, input),
        ("", "Secret") => roundtrip::<core::v1::Secret>(av, def.kind, input),
        ("", "Service") => roundtrip::<core::v1::Service>(av, def.kind, input),
        ("", "ServiceAccount") => roundtrip::<core::v1::ServiceAccount>(av, def.kind, input),
        ("", "Event") => roundtrip::<core::v1::Event>(av, def.kind, input),
        ("", "Binding") => roundtrip::<core::v1::Binding>(av, def.kind, input),
        ("events.k8s.io", _) => roundtrip::<events::v1::Event>(av, def.kind, input),
        ("coordination.k8s.io", _) => roundtrip::<coordination::v1::Lease>(av, def.kind, input),
        ("node.k8s.io", _) => roundtrip::<node::v1::RuntimeClass>(av, def.kind, input),
        ("certificates.k8s.io", _) => {
            roundtrip::<certificates::v1::CertificateSigningRequest>(av, def.kind, input)
        }
        ("authentication.k8s.io", "TokenReview") => {
            roundtrip::<authentication::v1::TokenReview>(av, def.kind, input)
        }
        ("authorization.k8s.io", "SubjectAccessReview") => {
            roundtrip::<authorization::v1::SubjectAccessReview>(av, def.kind, input)
        }
        ("authorization.k8s.io", "SelfSubjectAccessReview") => {
            roundtrip::<authorization::v1::SelfSubjectAccessReview>(av, def.kind, input)
        }
        ("authorization.k8s.io", "LocalSubjectAccessReview") => {
            roundtrip::<authorization::v1::LocalSubjectAccessReview>(av, def.kind, input)
        }
        _ => Ok((input, Vec::new())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn prunes_and_reports_unknown_fields() {
        let input = json!({"metadata": {"name": "x", "bogus": 1}, "data": {"k": "v"}, "extra": null, "other": true});
        let (out, unknown) =
            roundtrip::<k8s_openapi::api::core::v1::ConfigMap>("v1", "ConfigMap", input).unwrap();
        assert_eq!(out["apiVersion"], "v1");
        assert_eq!(out["kind"], "ConfigMap");
        assert!(out["metadata"].get("bogus").is_none());
        assert_eq!(
            unknown,
            vec!["metadata.bogus".to_string(), "other".to_string()]
        );
        assert!(check_unknown(FieldValidation::Strict, &unknown).is_err());
        assert_eq!(
            check_unknown(FieldValidation::Warn, &unknown)
                .unwrap()
                .len(),
            2
        );
    }

    #[test]
    fn wrong_kind_or_type_is_bad_request() {
        let r = roundtrip::<k8s_openapi::api::core::v1::ConfigMap>(
            "v1",
            "ConfigMap",
            json!({"kind": "Pod"}),
        );
        assert!(matches!(r, Err(ApiError::BadRequest(_))));
        let r = roundtrip::<k8s_openapi::api::core::v1::ConfigMap>(
            "v1",
            "ConfigMap",
            json!({"data": 5}),
        );
        assert!(matches!(r, Err(ApiError::BadRequest(_))));
    }
}
