//! The entry point of every request: authentication, injected failures, routing,
//! request log.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use hyper::body::Incoming;
use hyper::header::{AUTHORIZATION, USER_AGENT};
use hyper::{Method, Request};

use super::{Response, admin, resource, respond};
use crate::auth::UserInfo;
use crate::discovery;
use crate::error::ApiError;
use crate::http::route::Route;
use crate::openapi;
use crate::state::Cluster;

/// What the connection tells about the client.
#[derive(Debug, Clone)]
pub struct ConnInfo {
    /// Over TLS?
    pub tls: bool,
    /// The identity of a verified client certificate.
    pub cert_user: Option<UserInfo>,
    /// The server address the client connected to.
    pub local_addr: SocketAddr,
}

/// Parses a query string (last value wins).
pub fn parse_query(q: &str) -> HashMap<String, String> {
    form_urlencoded::parse(q.as_bytes()).into_owned().collect()
}

fn authenticate(
    cl: &Cluster,
    conn: &ConnInfo,
    req: &Request<Incoming>,
) -> Result<UserInfo, ApiError> {
    if let Some(h) = req.headers().get(AUTHORIZATION) {
        let v = h.to_str().map_err(|_| ApiError::Unauthorized)?;
        let token = v
            .strip_prefix("Bearer ")
            .or_else(|| v.strip_prefix("bearer "))
            .ok_or(ApiError::Unauthorized)?;
        let tokens = cl.tokens.read().unwrap_or_else(|p| p.into_inner());
        return tokens
            .authenticate(token.trim(), &[], &cl.store)
            .map(|id| id.user)
            .map_err(|_| ApiError::Unauthorized);
    }
    if let Some(u) = &conn.cert_user {
        return Ok(u.clone());
    }
    if !conn.tls && cl.insecure_is_admin {
        return Ok(UserInfo::admin());
    }
    if cl.anonymous {
        return Ok(UserInfo::anonymous());
    }
    Err(ApiError::Unauthorized)
}

/// Serves one request.
pub async fn handle(
    cl: Arc<Cluster>,
    conn: Arc<ConnInfo>,
    req: Request<Incoming>,
) -> Result<Response, Infallible> {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or("").to_string();
    let agent = req
        .headers()
        .get(USER_AGENT)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("")
        .to_string();
    let route = Route::parse(&path);
    if let Route::Admin(p) = &route {
        return Ok(admin::handle(&cl, &method, p, &query, req).await);
    }
    let user = match authenticate(&cl, &conn, &req) {
        Ok(u) => u,
        Err(e) => {
            cl.record(method.as_str(), &path, &query, None, e.code(), &agent);
            return Ok(respond::error(&e));
        }
    };
    if cl.knobs.should_fail() {
        let e = ApiError::ServiceUnavailable(
            "the server is currently unable to handle the request".into(),
        );
        cl.record(
            method.as_str(),
            &path,
            &query,
            Some(&user),
            e.code(),
            &agent,
        );
        return Ok(respond::error(&e));
    }
    let q = parse_query(&query);
    let resp = match route {
        Route::Resource(rp) => resource::handle(cl.clone(), &user, &conn, rp, &q, req).await,
        other if method != Method::GET && method != Method::HEAD => {
            let _ = other;
            respond::error(&ApiError::MethodNotAllowed)
        }
        Route::ApiVersions => {
            respond::json(200, &discovery::api_versions(&conn.local_addr.to_string()))
        }
        Route::ApiGroups => respond::json(200, &discovery::api_groups()),
        Route::ApiGroup(g) => discovery::api_group(&g)
            .map(|d| respond::json(200, &d))
            .unwrap_or_else(|| respond::error(&ApiError::PathNotFound)),
        Route::ResourceList(g, v) => discovery::resource_list(&g, &v)
            .map(|d| respond::json(200, &d))
            .unwrap_or_else(|| respond::error(&ApiError::PathNotFound)),
        Route::Version => respond::json(200, &discovery::version()),
        Route::Health => {
            let mut r = hyper::Response::new(respond::full("ok"));
            r.headers_mut().insert(
                hyper::header::CONTENT_TYPE,
                hyper::header::HeaderValue::from_static("text/plain; charset=utf-8"),
            );
            r
        }
        Route::OpenApi(p) => openapi::serve(&p),
        Route::NotFound | Route::Admin(_) => respond::error(&ApiError::PathNotFound),
    };
    cl.record(
        method.as_str(),
        &path,
        &query,
        Some(&user),
        resp.status().as_u16(),
        &agent,
    );
    Ok(resp)
}
