//! LIST with resourceVersion/resourceVersionMatch semantics and limit/continue pagination
//! over consistent snapshots (continue tokens expire with compaction, as with etcd).

use base64::Engine;
use serde_json::{Map, Value, json};

use super::filter::Filter;
use crate::error::{ApiError, ApiResult, Cause};
use crate::registry::{ResourceDef, from_storage};
use crate::state::Cluster;
use crate::store::{ObjKey, SnapshotError};

/// The list query parameters.
#[derive(Debug, Clone, Default)]
pub struct ListOptions {
    /// `limit` (0 = no limit).
    pub limit: usize,
    /// `continue`.
    pub continue_token: Option<String>,
    /// `resourceVersion`.
    pub resource_version: Option<String>,
    /// `resourceVersionMatch`.
    pub resource_version_match: Option<String>,
}

/// What a continue token carries.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ContinueToken {
    rv: u64,
    namespace: String,
    name: String,
}

fn encode_continue(t: &ContinueToken) -> String {
    let v = json!({"v": "meta.k8s.io/v1", "rv": t.rv, "start": format!("{}/{}\u{0}", t.namespace, t.name)});
    base64::engine::general_purpose::URL_SAFE.encode(v.to_string())
}

fn decode_continue(s: &str) -> ApiResult<ContinueToken> {
    let bad = || {
        ApiError::BadRequest("continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)".into())
    };
    let raw = base64::engine::general_purpose::URL_SAFE
        .decode(s)
        .map_err(|_| bad())?;
    let v: Value = serde_json::from_slice(&raw).map_err(|_| bad())?;
    let rv = v.get("rv").and_then(Value::as_u64).ok_or_else(bad)?;
    let start = v.get("start").and_then(Value::as_str).ok_or_else(bad)?;
    let start = start.strip_suffix('\u{0}').unwrap_or(start);
    let (ns, name) = start.split_once('/').ok_or_else(bad)?;
    Ok(ContinueToken {
        rv,
        namespace: ns.into(),
        name: name.into(),
    })
}

/// Parses a resourceVersion parameter.
pub fn parse_rv(s: &str) -> ApiResult<u64> {
    s.parse::<u64>()
        .map_err(|_| ApiError::BadRequest(format!("invalid resource version: {s:?}")))
}

/// The 504 upstream returns for an RV the store has not reached.
pub fn too_large(requested: u64, current: u64) -> ApiError {
    ApiError::Timeout(
        format!("Too large resource version: {requested}, current: {current}"),
        vec![Cause::new(
            "ResourceVersionTooLarge",
            "",
            "Too large resource version",
        )],
    )
}

fn expired_list() -> ApiError {
    ApiError::Expired("The resourceVersion for the provided list is too old.".into())
}

fn expired_continue() -> ApiError {
    ApiError::Expired("The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.".into())
}

/// Lists objects; returns the `<Kind>List` object.
pub fn list(
    cl: &Cluster,
    def: &'static ResourceDef,
    filter: &Filter,
    opts: &ListOptions,
) -> ApiResult<Value> {
    let current = cl.store.current_rv();
    let rv_param = opts.resource_version.as_deref().filter(|s| !s.is_empty());
    let (at, start) = if let Some(c) = &opts.continue_token {
        if rv_param.is_some_and(|r| r != "0") {
            return Err(ApiError::BadRequest(
                "specifying resource version is not allowed when using continue".into(),
            ));
        }
        let t = decode_continue(c)?;
        (t.rv, Some((t.namespace, t.name)))
    } else {
        match (
            opts.resource_version_match
                .as_deref()
                .filter(|s| !s.is_empty()),
            rv_param,
        ) {
            (Some("Exact"), Some(rv)) => {
                let rv = parse_rv(rv)?;
                if rv == 0 {
                    return Err(ApiError::BadRequest(
                        "resourceVersionMatch \"Exact\" is forbidden for resourceVersion \"0\""
                            .into(),
                    ));
                }
                (rv, None)
            }
            (Some("NotOlderThan") | None, Some(rv)) => {
                let rv = parse_rv(rv)?;
                if rv > current {
                    return Err(too_large(rv, current));
                }
                (current, None)
            }
            (Some(m @ ("Exact" | "NotOlderThan")), None) => {
                return Err(ApiError::BadRequest(format!(
                    "resourceVersionMatch is forbidden unless resourceVersion is provided (got {m})"
                )));
            }
            (Some(other), _) => {
                return Err(ApiError::BadRequest(format!(
                    "resourceVersionMatch: Unsupported value: \"{other}\": supported values: \"Exact\", \"NotOlderThan\", \"\""
                )));
            }
            (None, None) => (current, None),
        }
    };
    let snap = cl
        .store
        .snapshot_at(def.storage, filter.namespace(), at)
        .map_err(|e| match e {
            SnapshotError::Compacted { .. } if opts.continue_token.is_some() => expired_continue(),
            SnapshotError::Compacted { .. } => expired_list(),
            SnapshotError::TooNew { current } => too_large(at, current),
        })?;
    let mut items = Vec::new();
    let mut next: Option<ContinueToken> = None;
    let mut remaining = 0i64;
    let iter = snap.objects.iter().filter(|(k, _)| match &start {
        Some((ns, name)) => (k.namespace.as_str(), k.name.as_str()) > (ns.as_str(), name.as_str()),
        None => true,
    });
    for (k, obj) in iter {
        if !filter.matches(obj) {
            continue;
        }
        if opts.limit > 0 && items.len() >= opts.limit {
            remaining += 1;
            continue;
        }
        if opts.limit > 0 && items.len() + 1 == opts.limit {
            next = Some(token_after(k, snap.rv));
        }
        items.push(strip_type_meta(from_storage(def, obj)));
    }
    let mut md = Map::new();
    md.insert("resourceVersion".into(), json!(snap.rv.to_string()));
    if remaining > 0 {
        if let Some(t) = &next {
            md.insert("continue".into(), json!(encode_continue(t)));
        }
        if !filter.has_selectors() {
            md.insert("remainingItemCount".into(), json!(remaining));
        }
    }
    Ok(json!({
        "kind": format!("{}List", def.kind),
        "apiVersion": def.api_version(),
        "metadata": md,
        "items": items,
    }))
}

fn token_after(k: &ObjKey, rv: u64) -> ContinueToken {
    ContinueToken {
        rv,
        namespace: k.namespace.clone(),
        name: k.name.clone(),
    }
}

/// List items carry no apiVersion/kind in upstream responses.
fn strip_type_meta(mut v: Value) -> Value {
    if let Some(m) = v.as_object_mut() {
        m.remove("apiVersion");
        m.remove("kind");
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continue_tokens_round_trip() {
        let t = ContinueToken {
            rv: 42,
            namespace: "ns".into(),
            name: "a".into(),
        };
        assert_eq!(decode_continue(&encode_continue(&t)).unwrap(), t);
        assert!(decode_continue("!!").is_err());
    }
}
