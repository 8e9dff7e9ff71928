//! The three servers' routes. Default handlers are on both the HTTPS and read-only
//! ports; debugging handlers (logs, exec, attach, port-forward, run, runningpods,
//! configz) only on the HTTPS port, the read-only port answering 405 as upstream.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};

use crate::auth::{Attributes, Authenticator, Authorizer, Decision, PeerCertificates, WebhookError, request_attributes};
use crate::error::ApiError;
use crate::handlers::{self as h, configz, container_logs, healthz, metrics, node_logs, pods, run, spec, stats, streaming};
use crate::http_metrics::{self, HttpMetricsLayer};
use crate::state::Shared;

fn default_routes(r: Router<Shared>) -> Router<Shared> {
    r.route("/healthz", get(healthz::all))
        .route("/healthz/{check}", get(healthz::one))
        .route("/pods", get(pods::pods))
        .route("/pods/", get(pods::pods))
        .route("/stats/summary", get(stats::summary))
        .route("/metrics", get(metrics::kubelet))
        .route("/metrics/resource", get(metrics::resource))
        .route("/metrics/probes", get(metrics::probes))
        .route("/spec", get(spec::spec))
        .route("/spec/", get(spec::spec))
}

fn debugging_routes(r: Router<Shared>, system_logs: bool) -> Router<Shared> {
    let r = r
        .route("/run/{ns}/{pod}/{container}", post(run::run))
        .route("/run/{ns}/{pod}/{uid}/{container}", post(run::run_uid))
        .route("/exec/{ns}/{pod}/{container}", get(streaming::exec).post(streaming::exec))
        .route("/exec/{ns}/{pod}/{uid}/{container}", get(streaming::exec_uid).post(streaming::exec_uid))
        .route("/attach/{ns}/{pod}/{container}", get(streaming::attach).post(streaming::attach))
        .route("/attach/{ns}/{pod}/{uid}/{container}", get(streaming::attach_uid).post(streaming::attach_uid))
        .route("/portForward/{ns}/{pod}", get(streaming::port_forward).post(streaming::port_forward))
        .route("/portForward/{ns}/{pod}/{uid}", get(streaming::port_forward_uid).post(streaming::port_forward_uid))
        .route("/containerLogs/{ns}/{pod}/{container}", get(container_logs::container_logs))
        .route("/configz", get(configz::configz))
        .route("/runningpods", get(pods::running_pods))
        .route("/runningpods/", get(pods::running_pods));
    if system_logs {
        r.route("/logs", get(node_logs::root)).route("/logs/", get(node_logs::root)).route("/logs/{*path}", get(node_logs::path))
    } else {
        r.route("/logs", any(h::logs_disabled)).route("/logs/", any(h::logs_disabled)).route("/logs/{*rest}", any(h::logs_disabled))
    }
}

fn debugging_disabled_routes(mut r: Router<Shared>) -> Router<Shared> {
    for p in ["/run", "/exec", "/attach", "/portForward", "/containerLogs", "/runningpods", "/debug/pprof", "/logs"] {
        r = r
            .route(&format!("{p}/"), any(h::debugging_disabled))
            .route(&format!("{p}/{{*rest}}"), any(h::debugging_disabled));
    }
    r
}

fn with_metrics(r: Router, state: &Shared, server_type: &'static str) -> Router {
    let ctx = HttpMetricsLayer { metrics: state.deps.metrics.clone(), server_type };
    r.layer(middleware::from_fn_with_state(ctx, http_metrics::record))
}

/// The healthz port: `/healthz` only.
pub(crate) fn healthz_router(state: Shared) -> Router {
    Router::new()
        .route("/healthz", get(healthz::all))
        .route("/healthz/{check}", get(healthz::one))
        .fallback(h::not_found)
        .with_state(state)
}

/// The read-only port.
pub(crate) fn read_only_router(state: Shared) -> Router {
    let r = debugging_disabled_routes(default_routes(Router::new())).fallback(h::not_found).with_state(state.clone());
    with_metrics(r, &state, "readonly")
}

/// Authentication and authorization of the HTTPS port.
pub(crate) struct Auth {
    pub authenticator: Authenticator,
    pub authorizer: Authorizer,
    pub node_name: String,
}

fn describe(a: &Attributes) -> String {
    format!("user={}, verb={}, resource={}", a.user.name, a.verb, a.resource)
}

async fn authenticate_and_authorize(State(auth): State<Arc<Auth>>, req: Request, next: Next) -> Response {
    let peer = req.extensions().get::<PeerCertificates>();
    let bearer = req.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    let user = match auth.authenticator.authenticate(peer, bearer).await {
        Ok(Some(user)) => user,
        Ok(None) => return ApiError::Unauthorized("Unauthorized".into()).into_response(),
        Err(reason) => {
            tracing::info!(%reason, "unable to authenticate the request");
            return ApiError::Unauthorized("Unauthorized".into()).into_response();
        }
    };
    let attrs = request_attributes(&user, req.method().as_str(), req.uri().path(), &auth.node_name);
    let mut reasons = Vec::new();
    for a in &attrs {
        match auth.authorizer.authorize(a).await {
            Ok(Decision::Allow) => return next.run(req).await,
            Ok(Decision::Deny(reason)) => reasons.push(reason),
            Err(WebhookError::NoApiServer) => reasons.push(WebhookError::NoApiServer.to_string()),
            Err(err) => {
                tracing::error!(error = %err, attributes = %describe(a), subresource = %a.subresource, "authorization error");
                return ApiError::Internal(format!("Authorization error ({}, subresource={})", describe(a), a.subresource))
                    .into_response();
            }
        }
    }
    let subresources: Vec<&str> = attrs.iter().map(|a| a.subresource.as_str()).collect();
    let first = &attrs[0];
    tracing::debug!(attributes = %describe(first), ?subresources, "forbidden");
    let mut msg = format!("Forbidden ({}, subresource(s)=[{}])", describe(first), subresources.join(" "));
    if let Some(reason) = reasons.into_iter().find(|r| !r.is_empty()) {
        msg.push_str(": ");
        msg.push_str(&reason);
    }
    ApiError::Forbidden(msg).into_response()
}

/// The HTTPS port.
pub(crate) fn secure_router(state: Shared, auth: Arc<Auth>) -> Router {
    let r = default_routes(Router::new());
    let r = if state.settings.enable_debugging_handlers {
        debugging_routes(r, state.settings.enable_system_log_handler)
    } else {
        debugging_disabled_routes(r)
    };
    let r = r
        .fallback(h::not_found)
        .with_state(state.clone())
        .layer(middleware::from_fn_with_state(auth, authenticate_and_authorize));
    with_metrics(r, &state, "readwrite")
}
