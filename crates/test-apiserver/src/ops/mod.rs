//! API operations on the store, independent of HTTP: what handlers and the built-in
//! controllers both call.

pub mod admission;
pub mod create;
pub mod delete;
pub mod filter;
pub mod list;
pub mod reviews;
pub mod subresources;
pub mod update;

use serde_json::Value;

use crate::error::{ApiError, ApiResult, Subject};
use crate::registry::typed::FieldValidation;
use crate::registry::{ResourceDef, from_storage};
use crate::state::Cluster;
use crate::store::ObjKey;

/// Options of a write (create/update/patch).
#[derive(Debug, Clone, Copy, Default)]
pub struct WriteParams {
    /// `dryRun=All`: validate and return, store nothing.
    pub dry_run: bool,
    /// `fieldValidation`.
    pub field_validation: FieldValidation,
}

/// The store key of an object.
pub fn key(def: &ResourceDef, ns: &str, name: &str) -> ObjKey {
    ObjKey::new(def.storage, if def.namespaced { ns } else { "" }, name)
}

/// NotFound for a resource/name.
pub fn not_found(def: &ResourceDef, name: &str) -> ApiError {
    ApiError::NotFound(Subject::new(def.group, def.plural, name))
}

/// GET one object.
pub fn get(cl: &Cluster, def: &ResourceDef, ns: &str, name: &str) -> ApiResult<Value> {
    cl.store
        .get(&key(def, ns, name))
        .map(|o| from_storage(def, &o))
        .ok_or_else(|| not_found(def, name))
}

/// Checks that a namespace exists and accepts new content.
pub fn check_namespace(cl: &Cluster, def: &ResourceDef, ns: &str, name: &str) -> ApiResult<()> {
    if !def.namespaced {
        return Ok(());
    }
    let nskey = ObjKey::new("namespaces", "", ns);
    match cl.store.get(&nskey) {
        None => Err(ApiError::NotFound(Subject::new("", "namespaces", ns))),
        Some(n) if crate::meta::is_deleting(&n) => Err(ApiError::Forbidden(
            Subject::new(def.group, def.plural, name),
            format!(
                "unable to create new content in namespace {ns} because it is being terminated"
            ),
        )),
        Some(_) => Ok(()),
    }
}
