//! The review APIs: TokenReview, SubjectAccessReview (+Self, +Local), SelfSubjectReview.

use serde_json::{Value, json};

use crate::auth::UserInfo;
use crate::auth::authz::Attributes;
use crate::error::{ApiError, ApiResult, Cause};
use crate::meta;
use crate::state::Cluster;

fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

fn user_json(u: &UserInfo) -> Value {
    let mut v = json!({"username": u.name, "groups": u.groups});
    if !u.uid.is_empty() {
        v["uid"] = json!(u.uid);
    }
    if !u.extra.is_empty() {
        v["extra"] = json!(u.extra);
    }
    v
}

/// TokenReview.
pub fn token_review(cl: &Cluster, mut review: Value) -> ApiResult<Value> {
    let token = meta::path_string(&review, "spec.token");
    let audiences = strings(meta::path(&review, "spec.audiences"));
    let status = if token.is_empty() {
        json!({"authenticated": false, "user": {}, "error": "token is empty"})
    } else {
        let tokens = cl.tokens.read().unwrap_or_else(|p| p.into_inner());
        match tokens.authenticate(&token, &audiences, &cl.store) {
            Ok(id) => {
                json!({"authenticated": true, "user": user_json(&id.user), "audiences": id.audiences})
            }
            Err(e) => json!({"authenticated": false, "user": {}, "error": e}),
        }
    };
    meta::ensure_object(&mut review).insert("status".into(), status);
    Ok(review)
}

fn attributes(spec: &Value, ns_override: Option<&str>) -> ApiResult<Attributes> {
    if let Some(r) = spec.get("resourceAttributes").filter(|r| r.is_object()) {
        return Ok(Attributes {
            verb: meta::path_string(r, "verb"),
            namespace: ns_override
                .map(String::from)
                .unwrap_or_else(|| meta::path_string(r, "namespace")),
            api_group: meta::path_string(r, "group"),
            resource: meta::path_string(r, "resource"),
            subresource: meta::path_string(r, "subresource"),
            name: meta::path_string(r, "name"),
            resource_request: true,
            path: String::new(),
        });
    }
    if let Some(n) = spec.get("nonResourceAttributes").filter(|r| r.is_object()) {
        return Ok(Attributes {
            verb: meta::path_string(n, "verb"),
            path: meta::path_string(n, "path"),
            resource_request: false,
            ..Default::default()
        });
    }
    Err(ApiError::invalid(
        "authorization.k8s.io",
        "SubjectAccessReview",
        "",
        vec![Cause::new(
            "FieldValueRequired",
            "spec.resourceAttributes",
            "Required value: exactly one of nonResourceAttributes or resourceAttributes must be specified",
        )],
    ))
}

fn decide(cl: &Cluster, mut review: Value, user: &UserInfo, attrs: &Attributes) -> Value {
    let d = cl.policy().authorize(user, attrs);
    let mut status = json!({"allowed": d.allowed});
    if !d.reason.is_empty() {
        status["reason"] = json!(d.reason);
    }
    meta::ensure_object(&mut review).insert("status".into(), status);
    review
}

/// SubjectAccessReview (and LocalSubjectAccessReview when `local_ns` is set).
pub fn subject_access_review(
    cl: &Cluster,
    review: Value,
    local_ns: Option<&str>,
) -> ApiResult<Value> {
    let spec = review.get("spec").cloned().unwrap_or(Value::Null);
    if let Some(ns) = local_ns {
        let body_ns = meta::path_string(&spec, "resourceAttributes.namespace");
        if !body_ns.is_empty() && body_ns != ns {
            return Err(ApiError::BadRequest(format!(
                "spec.resourceAttributes.namespace must match namespace: {ns}"
            )));
        }
    }
    let attrs = attributes(&spec, local_ns)?;
    let user = UserInfo {
        name: meta::path_string(&spec, "user"),
        uid: meta::path_string(&spec, "uid"),
        groups: strings(spec.get("groups")),
        extra: spec
            .get("extra")
            .and_then(Value::as_object)
            .map(|m| {
                m.iter()
                    .map(|(k, v)| (k.clone(), strings(Some(v))))
                    .collect()
            })
            .unwrap_or_default(),
    };
    if user.name.is_empty() && user.groups.is_empty() {
        return Err(ApiError::invalid(
            "authorization.k8s.io",
            "SubjectAccessReview",
            "",
            vec![Cause::new(
                "FieldValueRequired",
                "spec.user",
                "Required value: at least one of user or group must be specified",
            )],
        ));
    }
    Ok(decide(cl, review, &user, &attrs))
}

/// SelfSubjectAccessReview.
pub fn self_subject_access_review(
    cl: &Cluster,
    review: Value,
    user: &UserInfo,
) -> ApiResult<Value> {
    let spec = review.get("spec").cloned().unwrap_or(Value::Null);
    let attrs = attributes(&spec, None)?;
    Ok(decide(cl, review, user, &attrs))
}

/// SelfSubjectReview (`kubectl auth whoami`).
pub fn self_subject_review(user: &UserInfo) -> Value {
    json!({
        "kind": "SelfSubjectReview",
        "apiVersion": "authentication.k8s.io/v1",
        "metadata": {"creationTimestamp": meta::now_rfc3339()},
        "status": {"userInfo": user_json(user)},
    })
}
