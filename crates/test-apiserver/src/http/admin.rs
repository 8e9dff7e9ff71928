//! `/test/...`: knobs for tests (no authentication; the server is a test fixture).
//!
//! | request | effect |
//! |---|---|
//! | `POST /test/compact[?resourceVersion=N]` | forget watch history up to N (default: all) |
//! | `POST /test/fail?count=N` or `?seconds=S` | next N requests / all for S seconds get 503 |
//! | `DELETE /test/fail` | stop failing |
//! | `GET /test/requests`, `DELETE /test/requests` | request log |
//! | `GET/PUT /test/authz` | authorization policy (JSON `{"mode":"AlwaysAllow"}` or `{"mode":"Rules","rules":[...]}`) |
//! | `PUT /test/csr-auto-approve?enabled=true` | approve CSRs automatically |
//! | `POST /test/close-watches` | end every open watch |
//! | `POST /test/tokens` | add a static token (`{"token":..,"user":{"name":..,"groups":[..]}}`) |
//! | `GET /test/state` | current and compacted resourceVersion |

use std::sync::atomic::Ordering;
use std::time::Duration;

use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::{Method, Request};
use serde_json::{Value, json};

use super::handler::parse_query;
use super::{Response, respond};
use crate::auth::authz::Policy;
use crate::auth::tokens::StaticToken;
use crate::error::ApiError;
use crate::state::Cluster;

async fn body_json(req: Request<Incoming>) -> Result<Value, ApiError> {
    let b = Limited::new(req.into_body(), 1 << 20)
        .collect()
        .await
        .map_err(|e| ApiError::BadRequest(e.to_string()))?
        .to_bytes();
    serde_json::from_slice(&b).map_err(|e| ApiError::BadRequest(e.to_string()))
}

/// Serves `/test/<path>`.
pub async fn handle(
    cl: &Cluster,
    method: &Method,
    path: &str,
    query: &str,
    req: Request<Incoming>,
) -> Response {
    match run(cl, method, path, query, req).await {
        Ok(v) => respond::json(200, &v),
        Err(e) => respond::error(&e),
    }
}

async fn run(
    cl: &Cluster,
    method: &Method,
    path: &str,
    query: &str,
    req: Request<Incoming>,
) -> Result<Value, ApiError> {
    let q = parse_query(query);
    match (method.as_str(), path) {
        ("POST", "compact") => {
            let upto = match q.get("resourceVersion") {
                Some(rv) => Some(
                    rv.parse::<u64>()
                        .map_err(|_| ApiError::BadRequest("bad resourceVersion".into()))?,
                ),
                None => None,
            };
            Ok(json!({"compactedResourceVersion": cl.store.compact(upto)}))
        }
        ("POST", "fail") => {
            if let Some(n) = q.get("count").and_then(|c| c.parse::<u64>().ok()) {
                cl.knobs.fail_next(n);
            }
            if let Some(s) = q.get("seconds").and_then(|c| c.parse::<f64>().ok()) {
                cl.knobs.fail_for(Duration::from_secs_f64(s.max(0.0)));
            }
            Ok(json!({}))
        }
        ("DELETE", "fail") => {
            cl.knobs.clear_failures();
            Ok(json!({}))
        }
        ("GET", "requests") => {
            let r = cl.requests.lock().unwrap_or_else(|p| p.into_inner());
            Ok(json!({"requests": *r}))
        }
        ("DELETE", "requests") => {
            cl.requests
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clear();
            Ok(json!({}))
        }
        ("GET", "authz") => Ok(serde_json::to_value(cl.policy()).unwrap_or_default()),
        ("PUT", "authz") => {
            let p: Policy = serde_json::from_value(body_json(req).await?)
                .map_err(|e| ApiError::BadRequest(e.to_string()))?;
            *cl.policy.write().unwrap_or_else(|p| p.into_inner()) = p;
            Ok(json!({}))
        }
        ("PUT", "csr-auto-approve") => {
            let on = q.get("enabled").is_none_or(|v| v == "true" || v == "1");
            cl.knobs.auto_approve_csrs.store(on, Ordering::SeqCst);
            Ok(json!({"enabled": on}))
        }
        ("POST", "close-watches") => {
            cl.close_watches();
            Ok(json!({}))
        }
        ("POST", "tokens") => {
            let t: StaticToken = serde_json::from_value(body_json(req).await?)
                .map_err(|e| ApiError::BadRequest(e.to_string()))?;
            cl.tokens.write().unwrap_or_else(|p| p.into_inner()).add(t);
            Ok(json!({}))
        }
        ("GET", "state") => Ok(json!({
            "resourceVersion": cl.store.current_rv(),
            "compactedResourceVersion": cl.store.compacted_rv(),
            "historyLength": cl.store.history_len(),
        })),
        _ => Err(ApiError::PathNotFound),
    }
}
