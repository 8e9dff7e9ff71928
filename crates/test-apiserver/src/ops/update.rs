//! PUT and PATCH: optimistic concurrency on resourceVersion, the status/spec split, and
//! deletion once the last finalizer of a deleting object is removed.

use serde_json::{Value, json};

use super::{WriteParams, create::create, key, not_found};
use crate::auth::UserInfo;
use crate::error::{ApiError, ApiResult, Subject};
use crate::meta;
use crate::patch::{self, PatchError, PatchType};
use crate::registry::{ResourceDef, from_storage, prepare_update, to_storage, typed};
use crate::state::Cluster;
use crate::store::{Mutation, Outcome};

const CONFLICT_MSG: &str =
    "the object has been modified; please apply your changes to the latest version and try again";

/// Resources whose PUT creates a missing object (upstream AllowCreateOnUpdate).
fn allow_create_on_update(def: &ResourceDef) -> bool {
    matches!(def.kind, "Lease" | "Event" | "Service")
}

/// Whether an update of a deleting object must delete it instead (finalizers gone and no
/// grace period pending, upstream shouldDeleteDuringUpdate).
fn should_delete(def: &ResourceDef, new: &Value) -> bool {
    if !meta::is_deleting(new) || !meta::finalizers(new).is_empty() {
        return false;
    }
    if def.kind == "Namespace" {
        return meta::path(new, "spec.finalizers")
            .and_then(Value::as_array)
            .is_none_or(|f| f.is_empty());
    }
    meta::deletion_grace(new).unwrap_or(0) == 0
}

fn check_identity(def: &ResourceDef, obj: &mut Value, ns: &str, name: &str) -> ApiResult<()> {
    let body_name = meta::name(obj).to_string();
    if !body_name.is_empty() && body_name != name {
        return Err(ApiError::BadRequest(format!(
            "the name of the object ({body_name}) does not match the name on the URL ({name})"
        )));
    }
    if def.namespaced {
        let body_ns = meta::namespace(obj).to_string();
        if !body_ns.is_empty() && body_ns != ns {
            return Err(ApiError::BadRequest(
                "the namespace of the provided object does not match the namespace sent on the request".into(),
            ));
        }
    }
    let md = meta::metadata_mut(obj);
    md.insert("name".into(), json!(name));
    if def.namespaced {
        md.insert("namespace".into(), json!(ns));
    }
    Ok(())
}

fn commit(
    def: &ResourceDef,
    cur: &Value,
    new: Value,
    precondition_rv: Option<u64>,
) -> ApiResult<Mutation> {
    if let Some(rv) = precondition_rv
        && Some(rv) != meta::resource_version(cur)
    {
        return Err(ApiError::Conflict(
            Subject::new(def.group, def.plural, meta::name(cur)),
            CONFLICT_MSG.into(),
        ));
    }
    if should_delete(def, &new) {
        Ok(Mutation::Delete)
    } else {
        Ok(Mutation::Put(new))
    }
}

fn outcome_value(def: &ResourceDef, o: Outcome) -> Value {
    match o {
        Outcome::Stored(v) | Outcome::Deleted(v) => from_storage(def, &v),
    }
}

/// PUT. Returns the object, whether it was created, and warnings.
#[allow(clippy::too_many_arguments)]
pub fn update(
    cl: &Cluster,
    def: &'static ResourceDef,
    sub: Option<&str>,
    ns: &str,
    name: &str,
    body: Value,
    user: &UserInfo,
    params: WriteParams,
) -> ApiResult<(Value, bool, Vec<String>)> {
    let (mut obj, unknown) = typed::decode(def, body)?;
    let warnings = typed::check_unknown(params.field_validation, &unknown)?;
    check_identity(def, &mut obj, ns, name)?;
    let obj = to_storage(def, obj);
    let precondition = meta::md_str(&obj, "resourceVersion")
        .filter(|s| !s.is_empty())
        .map(str::parse::<u64>);
    let precondition = match precondition {
        Some(Ok(rv)) => Some(rv),
        Some(Err(_)) => {
            return Err(ApiError::BadRequest(
                "invalid resourceVersion in metadata".into(),
            ));
        }
        None => None,
    };
    let k = key(def, ns, name);
    if cl.store.get(&k).is_none() {
        if sub.is_none() && allow_create_on_update(def) {
            let (created, w) = create(cl, def, ns, from_storage(def, &obj), user, params)?;
            return Ok((created, true, w));
        }
        return Err(not_found(def, name));
    }
    if params.dry_run {
        let cur = cl.store.get(&k).ok_or_else(|| not_found(def, name))?;
        let new = prepare_update(def, sub, &cur, obj)?;
        return Ok((from_storage(def, &new), false, warnings));
    }
    let out = cl.store.mutate(&k, |cur| {
        let cur = cur.ok_or_else(|| not_found(def, name))?;
        let new = prepare_update(def, sub, cur, obj)?;
        commit(def, cur, new, precondition)
    })?;
    Ok((outcome_value(def, out), false, warnings))
}

/// PATCH (JSON, merge, strategic). Returns the object and warnings.
#[allow(clippy::too_many_arguments)]
pub fn patch(
    cl: &Cluster,
    def: &'static ResourceDef,
    sub: Option<&str>,
    ns: &str,
    name: &str,
    ptype: PatchType,
    body: &[u8],
    params: WriteParams,
) -> ApiResult<(Value, Vec<String>)> {
    let k = key(def, ns, name);
    let mut warnings = Vec::new();
    let mut dry_result = None;
    let out = cl.store.mutate(&k, |cur| {
        let cur = cur.ok_or_else(|| not_found(def, name))?;
        let external = from_storage(def, cur);
        let patched = patch::apply(def.kind, ptype, &external, body).map_err(|e| match e {
            PatchError::Malformed(m) => ApiError::BadRequest(m),
            PatchError::Unapplicable(m) => ApiError::Unprocessable(m),
        })?;
        let (mut obj, unknown) = typed::decode(def, patched)?;
        warnings = typed::check_unknown(params.field_validation, &unknown)?;
        let precondition = meta::resource_version(&obj);
        let md = meta::metadata_mut(&mut obj);
        md.insert("name".into(), json!(name));
        if def.namespaced {
            md.insert("namespace".into(), json!(ns));
        }
        let new = prepare_update(def, sub, cur, to_storage(def, obj))?;
        if params.dry_run {
            dry_result = Some(new);
            return Ok(Mutation::Keep);
        }
        commit(def, cur, new, precondition)
    })?;
    if let Some(d) = dry_result {
        return Ok((from_storage(def, &d), warnings));
    }
    Ok((outcome_value(def, out), warnings))
}

/// Server-side apply, approximated: creates the object when missing, otherwise merges the
/// applied configuration strategically. No field ownership, no conflicts, and fields left
/// out of a later apply are not removed. Returns the object, whether it was created, and
/// warnings.
#[allow(clippy::too_many_arguments)]
pub fn apply(
    cl: &Cluster,
    def: &'static ResourceDef,
    sub: Option<&str>,
    ns: &str,
    name: &str,
    body: &[u8],
    user: &UserInfo,
    params: WriteParams,
) -> ApiResult<(Value, bool, Vec<String>)> {
    if sub.is_none() && cl.store.get(&key(def, ns, name)).is_none() {
        let mut obj: Value = serde_json::from_slice(body).map_err(|_| {
            ApiError::UnsupportedMediaType(
                "apply patches must be JSON for the test API server (YAML is not supported)".into(),
            )
        })?;
        check_identity(def, &mut obj, ns, name)?;
        let (created, w) = create(cl, def, ns, obj, user, params)?;
        return Ok((created, true, w));
    }
    let (patched, w) = patch(cl, def, sub, ns, name, PatchType::Apply, body, params)?;
    Ok((patched, false, w))
}
