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

use crate::auth::{
    Attributes, Authenticator, Authorizer, Decision, PeerCertificates, WebhookError,
    request_attributes,
};
use crate::error::ApiError;
use crate::handlers::{
    self as h, configz, container_logs, healthz, metrics, node_logs, pods, run, spec, stats,
    streaming,
};
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
        .route(
            "/exec/{ns}/{pod}/{container}",
            get(streaming::exec).post(streaming::exec),
        )
        .route(
            "/exec/{ns}/{pod}/{uid}/{container}",
            get(streaming::exec_uid).post(streaming::exec_uid),
        )
        .route(
            "/attach/{ns}/{pod}/{container}",
            get(streaming::attach).post(streaming::attach),
        )
        .route(
            "/attach/{ns}/{pod}/{uid}/{container}",
            get(streaming::attach_uid).post(streaming::attach_uid),
        )
        .route(
            "/portForward/{ns}/{pod}",
            get(streaming::port_forward).post(streaming::port_forward),
        )
        .route(
            "/portForward/{ns}/{pod}/{uid}",
            get(streaming::port_forward_uid).post(streaming::port_forward_uid),
        )
        .route(
            "/containerLogs/{ns}/{pod}/{container}",
            get(container_logs::container_logs),
        )
        .route("/configz", get(configz::configz))
        .route("/runningpods", get(pods::running_pods))
        .route("/runningpods/", get(pods::running_pods));
    if system_logs {
        r.route("/logs", get(node_logs::root))
            .route("/logs/", get(node_logs::root))
            .route("/logs/{*path}", get(node_logs::path))
    } else {
        r.route("/logs", any(h::logs_disabled))
            .route("/logs/", any(h::logs_disabled))
            .route("/logs/{*rest}", any(h::logs_disabled))
    }
}

fn debugging_disabled_routes(mut r: Router<Shared>) -> Router<Shared> {
    for p in [
        "/run",
        "/exec",
        "/attach",
        "/portForward",
        "/containerLogs",
        "/runningpods",
        "/debug/pprof",
        "/logs",
    ] {
        r = r
            .route(&format!("{p}/"), any(h::debugging_disabled))
            .route(&format!("{p}/{{*rest}}"), any(h::debugging_disabled));
    }
    r
}

/// A handler that panics answers 500 with a Status body instead of dropping the
/// connection; the panic is logged.
fn panic_response(err: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let what = err
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| err.downcast_ref::<&str>().copied())
        .unwrap_or("unknown panic");
    tracing::error!(panic = what, "node API handler panicked");
    ApiError::Internal("internal error".into()).into_response()
}

fn with_metrics(r: Router, state: &Shared, server_type: &'static str) -> Router {
    let ctx = HttpMetricsLayer {
        metrics: state.deps.metrics.clone(),
        server_type,
    };
    r.layer(tower_http::catch_panic::CatchPanicLayer::custom(
        panic_response,
    ))
    .layer(middleware::from_fn_with_state(ctx, http_metrics::record))
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
    let r = debugging_disabled_routes(default_routes(Router::new()))
        .fallback(h::not_found)
        .with_state(state.clone());
    with_metrics(r, &state, "readonly")
}

/// Authentication and authorization of the HTTPS port.
pub(crate) struct Auth {
    pub authenticator: Authenticator,
    pub authorizer: Authorizer,
    pub node_name: String,
}

fn describe(a: &Attributes) -> String {
    format!(
        "user={}, verb={}, resource={}",
        a.user.name, a.verb, a.resource
    )
}

async fn authenticate_and_authorize(
    State(auth): State<Arc<Auth>>,
    req: Request,
    next: Next,
) -> Response {
    let peer = req.extensions().get::<PeerCertificates>();
    let bearer = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let user = match auth.authenticator.authenticate(peer, bearer).await {
        Ok(Some(user)) => user,
        Ok(None) => return ApiError::Unauthorized("Unauthorized".into()).into_response(),
        Err(reason) => {
            tracing::info!(%reason, "unable to authenticate the request");
            return ApiError::Unauthorized("Unauthorized".into()).into_response();
        }
    };
    let attrs = request_attributes(
        &user,
        req.method().as_str(),
        req.uri().path(),
        &auth.node_name,
    );
    let mut reasons = Vec::new();
    for a in &attrs {
        match auth.authorizer.authorize(a).await {
            Ok(Decision::Allow) => return next.run(req).await,
            Ok(Decision::Deny(reason)) => reasons.push(reason),
            Err(WebhookError::NoApiServer) => reasons.push(WebhookError::NoApiServer.to_string()),
            Err(err) => {
                tracing::error!(error = %err, attributes = %describe(a), subresource = %a.subresource, "authorization error");
                return ApiError::Internal(format!(
                    "Authorization error ({}, subresource={})",
                    describe(a),
                    a.subresource
                ))
                .into_response();
            }
        }
    }
    let subresources: Vec<&str> = attrs.iter().map(|a| a.subresource.as_str()).collect();
    let first = &attrs[0];
    tracing::debug!(attributes = %describe(first), ?subresources, "forbidden");
    let mut msg = format!(
        "Forbidden ({}, subresource(s)=[{}])",
        describe(first),
        subresources.join(" ")
    );
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
    let r =
        r.fallback(h::not_found)
            .with_state(state.clone())
            .layer(middleware::from_fn_with_state(
                auth,
                authenticate_and_authorize,
            ));
    with_metrics(r, &state, "readwrite")
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use http_body_util::BodyExt;
    use kubelet_core::runtime::cri::CriClient;
    use kubelet_core::runtime::model::{RuntimeSnapshot, now_ns};
    use kubelet_core::status::store::StatusStore;
    use kubelet_metrics::KubeletMetrics;
    use tower::ServiceExt;

    use super::*;
    use crate::settings::ServerSettings;
    use crate::state::{AppState, ServerDeps};

    fn state(taken_at_ns: i64) -> Shared {
        state_with(taken_at_ns, None)
    }

    fn state_with(
        taken_at_ns: i64,
        rejected_writes: Option<Arc<dyn crate::state::RejectedWrites>>,
    ) -> Shared {
        let snapshot = RuntimeSnapshot {
            taken_at_ns,
            healthy: taken_at_ns > 0,
            ..Default::default()
        };
        let (tx, rx) = tokio::sync::watch::channel(Arc::new(snapshot));
        std::mem::forget(tx); // keep the channel open for the test's lifetime
        let deps = ServerDeps {
            statuses: StatusStore::default(),
            snapshots: rx,
            cri: CriClient::new(
                "unix:///nonexistent/cri.sock",
                None,
                std::time::Duration::from_secs(1),
            )
            .unwrap(),
            metrics: KubeletMetrics::new("node-a"),
            reviewers: Default::default(),
            rejected_writes,
        };
        AppState::new(ServerSettings::for_node("node-a"), deps)
    }

    async fn call(router: Router, method: &str, path: &str) -> (StatusCode, String) {
        let req = Request::builder()
            .method(method)
            .uri(path)
            .body(Body::empty())
            .unwrap();
        let resp = router.oneshot(req).await.unwrap();
        let status = resp.status();
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    #[tokio::test]
    async fn healthz_fails_with_a_reason_when_the_pleg_is_stale() {
        let fresh = state(now_ns());
        assert_eq!(
            call(healthz_router(fresh.clone()), "GET", "/healthz").await,
            (StatusCode::OK, "ok".into())
        );
        let (status, body) = call(healthz_router(fresh), "GET", "/healthz/syncloop").await;
        assert_eq!((status, body.as_str()), (StatusCode::OK, "ok"));

        let stale = state(now_ns() - 200 * 1_000_000_000);
        let (status, body) = call(healthz_router(stale.clone()), "GET", "/healthz").await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(
            body.starts_with(
                "[+]ping ok\n[+]log ok\n[-]syncloop failed: pleg was last seen active 3m20"
            ),
            "{body}"
        );
        assert!(
            body.ends_with("threshold is 3m0s\nhealthz check failed\n"),
            "{body}"
        );
        let (status, _) = call(
            healthz_router(stale.clone()),
            "GET",
            "/healthz?exclude=syncloop",
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        let (status, body) = call(healthz_router(stale), "GET", "/healthz/syncloop").await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(
            body.starts_with("internal server error: pleg was last seen active"),
            "{body}"
        );

        // Never relisted: healthy during the first 3 minutes after start.
        assert_eq!(
            call(healthz_router(state(0)), "GET", "/healthz").await.0,
            StatusCode::OK
        );
    }

    /// A fixed record of refused writes.
    struct Refused(Vec<crate::state::RejectedWrite>);

    impl crate::state::RejectedWrites for Refused {
        fn standing(&self) -> Vec<crate::state::RejectedWrite> {
            self.0.clone()
        }
        fn totals(&self) -> Vec<(String, u64)> {
            self.0
                .iter()
                .map(|r| (r.operation.clone(), r.count))
                .collect()
        }
    }

    #[tokio::test]
    async fn healthz_and_metrics_show_writes_the_api_server_refuses() {
        let none = state_with(now_ns(), Some(Arc::new(Refused(vec![]))));
        let (status, body) = call(healthz_router(none), "GET", "/healthz?verbose").await;
        assert_eq!(status, StatusCode::OK);
        assert!(body.contains("[+]apiserver-writes ok\n"), "{body}");
        let refused = state_with(
            now_ns(),
            Some(Arc::new(Refused(vec![crate::state::RejectedWrite {
                operation: "register node".into(),
                object: "vm".into(),
                message:
                    "metadata.nodeSwapStatus.capacity: Invalid value: 0: must be greater than zero"
                        .into(),
                count: 3,
            }]))),
        );
        let (status, body) = call(healthz_router(refused.clone()), "GET", "/healthz").await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(
            body.contains("[-]apiserver-writes failed: register node vm refused as invalid by the API server (3 times): metadata.nodeSwapStatus.capacity: Invalid value: 0: must be greater than zero\n"),
            "{body}"
        );
        crate::handlers::metrics::refresh_gauges(&refused);
        let text = refused.deps.metrics.encode();
        assert!(
            text.contains("kubelet_api_server_invalid_writes_total{operation=\"register node\"} 3"),
            "{text}"
        );
    }

    #[tokio::test]
    async fn read_only_port_refuses_debugging_endpoints() {
        let s = state(now_ns());
        let (status, body) = call(read_only_router(s.clone()), "GET", "/pods").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            body,
            r#"{"kind":"PodList","apiVersion":"v1","metadata":{},"items":null}"#
        );
        for path in [
            "/exec/a/b/c",
            "/attach/a/b/c",
            "/portForward/a/b",
            "/run/a/b/c",
            "/containerLogs/a/b/c",
            "/runningpods/",
            "/logs/x",
            "/debug/pprof/",
        ] {
            let (status, body) = call(read_only_router(s.clone()), "POST", path).await;
            assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{path}");
            assert!(body.contains("Debug endpoints are disabled."), "{body}");
        }
        assert_eq!(
            call(read_only_router(s.clone()), "GET", "/configz").await.0,
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            call(read_only_router(s), "GET", "/nothing").await.0,
            StatusCode::NOT_FOUND
        );
    }

    fn auth(anonymous: bool, authorizer: Authorizer) -> Arc<Auth> {
        Arc::new(Auth {
            authenticator: Authenticator {
                anonymous,
                client_ca: None,
                tokens: None,
            },
            authorizer,
            node_name: "node-a".into(),
        })
    }

    #[tokio::test]
    async fn secure_port_authenticates_and_authorizes() {
        let s = state(now_ns());
        let (status, _) = call(
            secure_router(s.clone(), auth(true, Authorizer::AlwaysAllow)),
            "GET",
            "/configz",
        )
        .await;
        assert_eq!(status, StatusCode::OK);

        let (status, body) = call(
            secure_router(s.clone(), auth(false, Authorizer::AlwaysAllow)),
            "GET",
            "/pods",
        )
        .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert!(body.contains(r#""reason":"Unauthorized""#), "{body}");

        let webhook = Authorizer::webhook(
            None,
            std::time::Duration::from_secs(1),
            std::time::Duration::from_secs(1),
        );
        let (status, body) = call(
            secure_router(s.clone(), auth(true, webhook)),
            "POST",
            "/exec/ns/p/c",
        )
        .await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert!(body.contains("Forbidden (user=system:anonymous, verb=create, resource=nodes, subresource(s)=[proxy])"), "{body}");

        // Debugging handlers off: 405 on the HTTPS port too.
        let mut settings = ServerSettings::for_node("node-a");
        settings.enable_debugging_handlers = false;
        let off = AppState::new(settings, s.deps.clone());
        let (status, _) = call(
            secure_router(off, auth(true, Authorizer::AlwaysAllow)),
            "GET",
            "/containerLogs/a/b/c",
        )
        .await;
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    }
}

#[cfg(test)]
mod webhook_tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use k8s_openapi::api::authorization::v1::SubjectAccessReviewStatus;

    use crate::auth::webhook_box::BoxFuture;
    use crate::auth::{
        Attributes, Authorizer, Decision, SubjectAccessReviewer, User, WebhookError,
        request_attributes, subject_access_review,
    };

    /// Allows `alice` on stats only; counts calls.
    struct Fake(AtomicUsize);

    impl SubjectAccessReviewer for Fake {
        fn review<'a>(
            &'a self,
            attrs: &'a Attributes,
        ) -> BoxFuture<'a, Result<SubjectAccessReviewStatus, WebhookError>> {
            self.0.fetch_add(1, Ordering::SeqCst);
            let sar = subject_access_review(attrs);
            let ra = sar.spec.resource_attributes.unwrap_or_default();
            let allowed = sar.spec.user.as_deref() == Some("alice")
                && ra.subresource.as_deref() == Some("stats");
            Box::pin(async move {
                Ok(SubjectAccessReviewStatus {
                    allowed,
                    reason: Some("fake policy".into()),
                    ..Default::default()
                })
            })
        }
    }

    #[tokio::test]
    async fn webhook_decisions_are_cached() {
        let fake = Arc::new(Fake(AtomicUsize::new(0)));
        let authz = Authorizer::webhook(
            Some(fake.clone()),
            std::time::Duration::from_secs(60),
            std::time::Duration::from_secs(60),
        );
        let alice = User {
            name: "alice".into(),
            uid: String::new(),
            groups: vec![],
        };
        let stats = &request_attributes(&alice, "GET", "/stats/summary", "n")[0];
        assert_eq!(authz.authorize(stats).await.unwrap(), Decision::Allow);
        assert_eq!(authz.authorize(stats).await.unwrap(), Decision::Allow);
        assert_eq!(
            fake.0.load(Ordering::SeqCst),
            1,
            "second decision from the cache"
        );
        let exec = &request_attributes(&alice, "POST", "/exec/a/b/c", "n")[0];
        assert_eq!(
            authz.authorize(exec).await.unwrap(),
            Decision::Deny("fake policy".into())
        );
    }
}
