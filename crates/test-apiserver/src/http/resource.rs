//! Resource requests: verb, authorization, body decoding, dispatch to the operations, and
//! rendering (JSON, Table, PartialObjectMetadata).

use std::collections::HashMap;
use std::sync::Arc;

use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::header::{ACCEPT, CONTENT_TYPE};
use hyper::{Method, Request};
use serde_json::{Value, json};

use super::handler::ConnInfo;
use super::respond::{self, Representation};
use super::route::ResourcePath;
use super::{Response, protobuf, proxy, watch};
use crate::auth::UserInfo;
use crate::auth::authz::{Attributes, forbidden_message};
use crate::error::{ApiError, ApiResult, Subject};
use crate::ops::delete::{DeleteOptions, delete};
use crate::ops::filter::Filter;
use crate::ops::list::{ListOptions, list};
use crate::ops::{self, WriteParams, reviews, subresources};
use crate::patch::PatchType;
use crate::registry::typed::FieldValidation;
use crate::state::Cluster;
use crate::table::{self, IncludeObject};

const MAX_BODY: usize = 3 * 1024 * 1024;

fn truthy(q: &HashMap<String, String>, k: &str) -> bool {
    q.get(k).is_some_and(|v| v == "1" || v == "true")
}

/// The authorization verb of a request.
fn verb(method: &Method, rp: &ResourcePath, q: &HashMap<String, String>) -> &'static str {
    match (method.as_str(), rp.name.is_some()) {
        ("GET" | "HEAD", false) if truthy(q, "watch") => "watch",
        ("GET" | "HEAD", false) => "list",
        ("GET" | "HEAD", true) if truthy(q, "watch") => "watch",
        ("GET" | "HEAD", true) => "get",
        ("POST", _) => "create",
        ("PUT", _) => "update",
        ("PATCH", _) => "patch",
        ("DELETE", false) => "deletecollection",
        ("DELETE", true) => "delete",
        _ => "",
    }
}

async fn read_body(req: Request<Incoming>) -> ApiResult<Vec<u8>> {
    let collected = Limited::new(req.into_body(), MAX_BODY)
        .collect()
        .await
        .map_err(|e| ApiError::TooLarge(format!("the request body could not be read: {e}")))?;
    Ok(collected.to_bytes().to_vec())
}

fn parse_json(body: &[u8]) -> ApiResult<Value> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::BadRequest(format!("the request body is not valid JSON: {e}")))
}

fn write_params(q: &HashMap<String, String>) -> ApiResult<WriteParams> {
    Ok(WriteParams {
        dry_run: q.get("dryRun").is_some_and(|v| v == "All"),
        field_validation: FieldValidation::parse(
            q.get("fieldValidation").map(String::as_str).unwrap_or(""),
        )?,
    })
}

/// Serves a resource request.
pub async fn handle(
    cl: Arc<Cluster>,
    user: &UserInfo,
    conn: &ConnInfo,
    rp: ResourcePath,
    q: &HashMap<String, String>,
    req: Request<Incoming>,
) -> Response {
    let method = req.method().clone();
    let v = verb(&method, &rp, q);
    let allowed_verbs = match &rp.sub {
        None => rp.def.verbs,
        Some(s) => match rp.def.sub(s) {
            Some(sd) => sd.verbs,
            None => return respond::error(&ApiError::PathNotFound),
        },
    };
    if v.is_empty() || !allowed_verbs.contains(&v) {
        return respond::error(&ApiError::MethodNotAllowed);
    }
    let attrs = Attributes {
        verb: v.to_string(),
        namespace: rp.namespace.clone().unwrap_or_default(),
        api_group: rp.def.group.to_string(),
        resource: rp.def.plural.to_string(),
        subresource: rp.sub.clone().unwrap_or_default(),
        name: rp.name.clone().unwrap_or_default(),
        resource_request: true,
        path: String::new(),
    };
    // Every authenticated user may ask about itself (upstream's system:basic-user role).
    let self_review = matches!(
        rp.def.plural,
        "selfsubjectaccessreviews" | "selfsubjectreviews"
    );
    if !self_review && !cl.policy().authorize(user, &attrs).allowed {
        let subject = Subject::new(
            rp.def.group,
            &rp.def.plural_with_sub(rp.sub.as_deref()),
            rp.name.as_deref().unwrap_or(""),
        );
        return respond::error(&ApiError::Forbidden(
            subject,
            forbidden_message(user, &attrs),
        ));
    }
    let accept = req
        .headers()
        .get(ACCEPT)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("")
        .to_string();
    let repr = match respond::negotiate(&accept) {
        Ok(r) => r,
        Err(e) => return respond::error(&e),
    };
    if matches!(
        rp.sub.as_deref(),
        Some("log" | "exec" | "attach" | "portforward")
    ) || rp.sub.as_deref() == Some("proxy")
    {
        return proxy::handle(&cl, &rp, req).await;
    }
    if v == "watch" {
        return match watch::start(
            cl,
            rp.def,
            rp.namespace.as_deref(),
            rp.name.as_deref(),
            q,
            repr,
        ) {
            Ok(r) => r,
            Err(e) => respond::error(&e),
        };
    }
    let content_type = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("")
        .to_string();
    let body = match read_body(req).await {
        Ok(b) => b,
        Err(e) => return respond::error(&e),
    };
    let body = if matches!(method, Method::POST | Method::PUT) && !is_json(&content_type) {
        match protobuf::to_json(&body) {
            Some(v) if content_type.starts_with("application/vnd.kubernetes.protobuf") => {
                v.to_string().into_bytes()
            }
            _ => {
                return respond::error(&ApiError::UnsupportedMediaType(format!(
                    "the body of the request was in an unknown format - accepted media types include: application/json (got {content_type:?})"
                )));
            }
        }
    } else {
        body
    };
    match dispatch(
        &cl,
        user,
        conn,
        &rp,
        &method,
        q,
        &content_type,
        &body,
        &repr,
    ) {
        Ok(r) => r,
        Err(e) => respond::error(&e),
    }
}

/// Request bodies must be JSON (protobuf and CBOR are not served; clients fall back on 415).
fn is_json(content_type: &str) -> bool {
    let base = content_type.split(';').next().unwrap_or("").trim();
    base.is_empty() || base == "application/json" || base == "*/*"
}

trait PluralWithSub {
    fn plural_with_sub(&self, sub: Option<&str>) -> String;
}

impl PluralWithSub for crate::registry::ResourceDef {
    fn plural_with_sub(&self, sub: Option<&str>) -> String {
        match sub {
            Some(s) => format!("{}/{s}", self.plural),
            None => self.plural.to_string(),
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn dispatch(
    cl: &Cluster,
    user: &UserInfo,
    _conn: &ConnInfo,
    rp: &ResourcePath,
    method: &Method,
    q: &HashMap<String, String>,
    content_type: &str,
    body: &[u8],
    repr: &Representation,
) -> ApiResult<Response> {
    let def = rp.def;
    let ns = rp.namespace.as_deref().unwrap_or("");
    let sub = rp.sub.as_deref();
    match (method.as_str(), rp.name.as_deref()) {
        ("GET" | "HEAD", None) => {
            let filter = Filter::new(
                def,
                rp.namespace.as_deref(),
                q.get("labelSelector").map(String::as_str).unwrap_or(""),
                q.get("fieldSelector").map(String::as_str).unwrap_or(""),
            )?;
            let opts = ListOptions {
                limit: q.get("limit").and_then(|l| l.parse().ok()).unwrap_or(0),
                continue_token: q.get("continue").filter(|c| !c.is_empty()).cloned(),
                resource_version: q.get("resourceVersion").cloned(),
                resource_version_match: q.get("resourceVersionMatch").cloned(),
            };
            let l = list(cl, def, &filter, &opts)?;
            Ok(respond::json(200, &render_list(def, l, repr, q)))
        }
        ("GET" | "HEAD", Some(name)) => {
            let obj = ops::get(cl, def, ns, name)?;
            Ok(respond::json(200, &render_one(def, obj, repr, q)))
        }
        ("POST", None) => create(cl, user, rp, q, body),
        ("POST", Some(name)) => {
            let b = parse_json(body)?;
            let out = match sub {
                Some("binding") => subresources::bind(cl, ns, name, &b)?,
                Some("eviction") => subresources::evict(cl, ns, name, &b)?,
                Some("token") => subresources::token_request(cl, ns, name, &b)?,
                _ => return Err(ApiError::MethodNotAllowed),
            };
            Ok(respond::json(201, &out))
        }
        ("PUT", Some(name)) => {
            let (obj, created, w) = ops::update::update(
                cl,
                def,
                sub,
                ns,
                name,
                parse_json(body)?,
                user,
                write_params(q)?,
            )?;
            Ok(respond::json_warn(
                if created { 201 } else { 200 },
                &obj,
                &w,
            ))
        }
        ("PATCH", Some(name)) => {
            let ptype = PatchType::from_content_type(content_type).ok_or_else(|| {
                ApiError::UnsupportedMediaType(format!("the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, application/strategic-merge-patch+json (got {content_type:?})"))
            })?;
            if ptype == PatchType::Apply {
                if q.get("fieldManager").is_none_or(|f| f.is_empty()) {
                    return Err(ApiError::invalid(
                        "meta.k8s.io",
                        "PatchOptions",
                        "",
                        vec![crate::error::Cause::new(
                            "FieldValueRequired",
                            "fieldManager",
                            "Required value: is required for apply patch",
                        )],
                    ));
                }
                let (obj, created, w) =
                    ops::update::apply(cl, def, sub, ns, name, body, user, write_params(q)?)?;
                return Ok(respond::json_warn(
                    if created { 201 } else { 200 },
                    &obj,
                    &w,
                ));
            }
            let (obj, w) =
                ops::update::patch(cl, def, sub, ns, name, ptype, body, write_params(q)?)?;
            Ok(respond::json_warn(200, &obj, &w))
        }
        ("DELETE", Some(name)) => {
            let opts = delete_options(q, body)?;
            let out = delete(cl, def, ns, name, &opts)?;
            Ok(respond::json(200, &out))
        }
        ("DELETE", None) => delete_collection(cl, rp, q, body),
        _ => Err(ApiError::MethodNotAllowed),
    }
}

fn delete_options(q: &HashMap<String, String>, body: &[u8]) -> ApiResult<DeleteOptions> {
    let mut opts = if body.iter().all(u8::is_ascii_whitespace) {
        DeleteOptions::default()
    } else {
        DeleteOptions::from_body(&parse_json(body)?)
    };
    if let Some(g) = q.get("gracePeriodSeconds") {
        opts.grace_period = Some(
            g.parse()
                .map_err(|_| ApiError::BadRequest(format!("invalid gracePeriodSeconds {g:?}")))?,
        );
    }
    if q.get("dryRun").is_some_and(|v| v == "All") {
        opts.dry_run = true;
    }
    Ok(opts)
}

fn create(
    cl: &Cluster,
    user: &UserInfo,
    rp: &ResourcePath,
    q: &HashMap<String, String>,
    body: &[u8],
) -> ApiResult<Response> {
    let def = rp.def;
    let ns = rp.namespace.as_deref().unwrap_or("");
    let b = parse_json(body)?;
    let out = match (def.group, def.kind) {
        ("authentication.k8s.io", "TokenReview") => reviews::token_review(cl, b)?,
        ("authentication.k8s.io", "SelfSubjectReview") => reviews::self_subject_review(user),
        ("authorization.k8s.io", "SubjectAccessReview") => {
            reviews::subject_access_review(cl, b, None)?
        }
        ("authorization.k8s.io", "LocalSubjectAccessReview") => {
            reviews::subject_access_review(cl, b, Some(ns))?
        }
        ("authorization.k8s.io", "SelfSubjectAccessReview") => {
            reviews::self_subject_access_review(cl, b, user)?
        }
        ("", "Binding") => {
            let name = crate::meta::name(&b).to_string();
            subresources::bind(cl, ns, &name, &b)?
        }
        _ => {
            if def.namespaced && ns.is_empty() {
                return Err(ApiError::MethodNotAllowed);
            }
            let (obj, w) = ops::create::create(cl, def, ns, b, user, write_params(q)?)?;
            return Ok(respond::json_warn(201, &obj, &w));
        }
    };
    Ok(respond::json(201, &out))
}

fn delete_collection(
    cl: &Cluster,
    rp: &ResourcePath,
    q: &HashMap<String, String>,
    body: &[u8],
) -> ApiResult<Response> {
    let def = rp.def;
    let filter = Filter::new(
        def,
        rp.namespace.as_deref(),
        q.get("labelSelector").map(String::as_str).unwrap_or(""),
        q.get("fieldSelector").map(String::as_str).unwrap_or(""),
    )?;
    let opts = delete_options(q, body)?;
    let l = list(cl, def, &filter, &ListOptions::default())?;
    let mut items = Vec::new();
    for item in l
        .get("items")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
    {
        let ns = crate::meta::namespace(&item).to_string();
        match delete(cl, def, &ns, crate::meta::name(&item), &opts) {
            Ok(_) | Err(ApiError::NotFound(_)) => items.push(item),
            Err(e) => return Err(e),
        }
    }
    Ok(respond::json(
        200,
        &json!({"kind": format!("{}List", def.kind), "apiVersion": def.api_version(), "metadata": {}, "items": items}),
    ))
}

fn include_object(q: &HashMap<String, String>) -> IncludeObject {
    match q.get("includeObject").map(String::as_str) {
        Some("None") => IncludeObject::None,
        Some("Object") => IncludeObject::Object,
        _ => IncludeObject::Metadata,
    }
}

/// Renders one object in the negotiated representation.
pub fn render_one(
    def: &crate::registry::ResourceDef,
    obj: Value,
    repr: &Representation,
    q: &HashMap<String, String>,
) -> Value {
    match repr {
        Representation::Json => obj,
        Representation::Table(v) => {
            let md = json!({"resourceVersion": crate::meta::md_str(&obj, "resourceVersion").unwrap_or("")});
            table::table(def, &[obj], md, include_object(q), v)
        }
        Representation::PartialMetadata(_) => table::partial_metadata(&obj),
    }
}

fn render_list(
    def: &crate::registry::ResourceDef,
    list: Value,
    repr: &Representation,
    q: &HashMap<String, String>,
) -> Value {
    match repr {
        Representation::Json => list,
        Representation::Table(v) => {
            let items: Vec<Value> = list
                .get("items")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .map(|i| {
                            let mut i = i.clone();
                            if let Some(m) = i.as_object_mut() {
                                m.insert("apiVersion".into(), json!(def.api_version()));
                                m.insert("kind".into(), json!(def.kind));
                            }
                            i
                        })
                        .collect()
                })
                .unwrap_or_default();
            table::table(
                def,
                &items,
                list.get("metadata").cloned().unwrap_or(json!({})),
                include_object(q),
                v,
            )
        }
        Representation::PartialMetadata(v) => {
            let items: Vec<Value> = list
                .get("items")
                .and_then(Value::as_array)
                .map(|a| a.iter().map(table::partial_metadata).collect())
                .unwrap_or_default();
            json!({"kind": "PartialObjectMetadataList", "apiVersion": format!("meta.k8s.io/{v}"), "metadata": list.get("metadata").cloned().unwrap_or(json!({})), "items": items})
        }
    }
}
