//! POST: decode, default, validate, admit, store.

use serde_json::{Value, json};

use super::{WriteParams, admission, check_namespace, key};
use crate::auth::UserInfo;
use crate::error::{ApiError, ApiResult, Subject};
use crate::meta;
use crate::registry::{
    HookCtx, ResourceDef, defs, from_storage, prepare_create, to_storage, typed,
};
use crate::state::Cluster;
use crate::store::Mutation;

/// Creates an object in `ns` (ignored for cluster-scoped resources). Returns the stored
/// object in `def`'s version and any field warnings.
pub fn create(
    cl: &Cluster,
    def: &'static ResourceDef,
    ns: &str,
    body: Value,
    user: &UserInfo,
    params: WriteParams,
) -> ApiResult<(Value, Vec<String>)> {
    let (obj, unknown) = typed::decode(def, body)?;
    let warnings = typed::check_unknown(params.field_validation, &unknown)?;
    let mut obj = to_storage(def, obj);
    if def.namespaced {
        let body_ns = meta::namespace(&obj);
        if !body_ns.is_empty() && body_ns != ns {
            return Err(ApiError::BadRequest(
                "the namespace of the provided object does not match the namespace sent on the request".into(),
            ));
        }
        meta::metadata_mut(&mut obj).insert("namespace".into(), json!(ns));
    } else {
        meta::metadata_mut(&mut obj).remove("namespace");
    }
    if meta::name(&obj).is_empty()
        && let Some(prefix) = meta::md_str(&obj, "generateName").map(String::from)
    {
        let name = format!("{prefix}{}", meta::random_suffix(5));
        meta::metadata_mut(&mut obj).insert("name".into(), json!(name));
    }
    let name = meta::name(&obj).to_string();
    check_namespace(cl, def, ns, &name)?;
    let md = meta::metadata_mut(&mut obj);
    md.insert("uid".into(), json!(meta::new_uid()));
    md.insert("creationTimestamp".into(), json!(meta::now_rfc3339()));
    for f in [
        "resourceVersion",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "selfLink",
    ] {
        md.remove(f);
    }
    prepare_create(
        def,
        &mut obj,
        &HookCtx {
            user,
            store: &cl.store,
        },
    )?;
    admission::admit_create(cl, def, &mut obj)?;
    if params.dry_run {
        return Ok((from_storage(def, &obj), warnings));
    }
    let outcome = cl.store.mutate(&key(def, ns, &name), |cur| match cur {
        Some(_) => Err(ApiError::AlreadyExists(Subject::new(
            def.group, def.plural, &name,
        ))),
        None => Ok(Mutation::Put(obj)),
    })?;
    let stored = match outcome {
        crate::store::Outcome::Stored(o) | crate::store::Outcome::Deleted(o) => o,
    };
    if def.kind == "Namespace" {
        populate_namespace(cl, &name);
    }
    Ok((from_storage(def, &stored), warnings))
}

/// What the controller-manager puts in every new namespace: the `default` ServiceAccount
/// and the `kube-root-ca.crt` ConfigMap. Done synchronously so pods can be created right
/// after their namespace.
pub fn populate_namespace(cl: &Cluster, ns: &str) {
    let admin = UserInfo::admin();
    let p = WriteParams::default();
    if let Some(sa) = defs::find("", "v1", "serviceaccounts") {
        let body =
            json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default"}});
        if let Err(e) = create(cl, sa, ns, body, &admin, p)
            && !matches!(e, ApiError::AlreadyExists(_))
        {
            tracing::warn!(namespace = ns, error = %e, "creating default service account");
        }
    }
    if let Some(cm) = defs::find("", "v1", "configmaps") {
        let body = json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "kube-root-ca.crt", "annotations": {"kubernetes.io/description": "Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints such as the internal service IP or kubernetes.default.svc. No other usage is guaranteed across distributions of Kubernetes clusters."}},
            "data": {"ca.crt": cl.ca.cert_pem()}
        });
        if let Err(e) = create(cl, cm, ns, body, &admin, p)
            && !matches!(e, ApiError::AlreadyExists(_))
        {
            tracing::warn!(namespace = ns, error = %e, "creating kube-root-ca.crt");
        }
    }
}
