//! Binding the listeners and serving: plain HTTP for the read-only and healthz ports,
//! TLS (with the client's certificates handed to authentication) for the HTTPS port.
//! A port that cannot be bound stops the kubelet, as upstream.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use kubelet_core::supervisor::Loops;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

use crate::auth::{Authenticator, Authorizer, PeerCertificates};
use crate::error::ServerError;
use crate::router::{Auth, healthz_router, read_only_router, secure_router};
use crate::settings::ServerSettings;
use crate::state::{AppState, Reviewers, ServerDeps, Shared};
use crate::{stats, tls};

/// Where the servers listen (None = not started).
#[derive(Debug, Clone, Default)]
pub struct NodeApi {
    pub secure: Option<SocketAddr>,
    pub read_only: Option<SocketAddr>,
    pub healthz: Option<SocketAddr>,
}

fn bind(addr: SocketAddr) -> Result<TcpListener, ServerError> {
    let err = |source| ServerError::Bind {
        addr: addr.to_string(),
        source,
    };
    let std = std::net::TcpListener::bind(addr).map_err(err)?;
    std.set_nonblocking(true).map_err(err)?;
    TcpListener::from_std(std).map_err(err)
}

fn serve_plain(
    loops: &Loops,
    listener: TcpListener,
    router: Router,
    shutdown: CancellationToken,
    name: &'static str,
) {
    loops.spawn(name, async move {
        let server =
            axum::serve(listener, router).with_graceful_shutdown(shutdown.cancelled_owned());
        if let Err(err) = server.await {
            tracing::error!(server = name, error = %err, "server stopped");
        }
    });
}

fn serve_tls(
    loops: &Loops,
    listener: TcpListener,
    acceptor: TlsAcceptor,
    router: Router,
    shutdown: CancellationToken,
) {
    loops.spawn("https-server", async move {
        loop {
            let (tcp, _peer) = tokio::select! {
                _ = shutdown.cancelled() => return,
                r = listener.accept() => match r {
                    Ok(conn) => conn,
                    Err(err) => {
                        tracing::warn!(error = %err, "accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                },
            };
            let acceptor = acceptor.clone();
            let router = router.clone();
            tokio::spawn(async move {
                let stream =
                    match tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp)).await
                    {
                        Ok(Ok(s)) => s,
                        Ok(Err(err)) => {
                            tracing::debug!(error = %err, "TLS handshake failed");
                            return;
                        }
                        Err(_) => return,
                    };
                let peer = stream.get_ref().1.peer_certificates().map(|chain| {
                    PeerCertificates(Arc::new(
                        chain.iter().map(|c| c.clone().into_owned()).collect(),
                    ))
                });
                let service =
                    hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
                        if let Some(p) = &peer {
                            req.extensions_mut().insert(p.clone());
                        }
                        let router = router.clone();
                        async move {
                            Ok::<_, Infallible>(
                                router.oneshot(req).await.unwrap_or_else(|e| match e {}),
                            )
                        }
                    });
                let mut builder = auto::Builder::new(TokioExecutor::new());
                // A client that never finishes its headers does not hold a task forever.
                builder
                    .http1()
                    .timer(TokioTimer::new())
                    .header_read_timeout(Duration::from_secs(30));
                if let Err(err) = builder
                    .serve_connection_with_upgrades(TokioIo::new(stream), service)
                    .await
                {
                    tracing::debug!(error = %err, "connection ended");
                }
            });
        }
    });
}

type ClientVerifier = Option<Arc<dyn rustls::server::danger::ClientCertVerifier>>;

fn build_auth(
    settings: &ServerSettings,
    reviewers: &Reviewers,
) -> Result<(Authenticator, Authorizer, ClientVerifier), ServerError> {
    let auth = &settings.auth;
    let client_ca = tls::client_ca_verifier(auth)?;
    let tokens = if auth.webhook_authentication {
        if reviewers.tokens.is_none() {
            tracing::warn!(
                "authentication.webhook.enabled: bearer tokens need an API server to be checked; none is configured"
            );
        }
        reviewers.tokens.clone()
    } else {
        None
    };
    let authorizer = match auth.authorization_mode.as_str() {
        "AlwaysAllow" => Authorizer::AlwaysAllow,
        "Webhook" => {
            if reviewers.access.is_none() {
                tracing::warn!(
                    "authorization mode Webhook needs an API server (--kubeconfig); without one every request to port {} is forbidden. \
                     Use authorization.mode AlwaysAllow (--authorization-mode=AlwaysAllow) for a standalone kubelet",
                    settings.port
                );
            }
            Authorizer::webhook(
                reviewers.access.clone(),
                auth.webhook_cache_authorized_ttl,
                auth.webhook_cache_unauthorized_ttl,
            )
        }
        "" => return Err(ServerError::Auth("No authorization mode specified".into())),
        other => {
            return Err(ServerError::Auth(format!(
                "Unknown authorization mode {other}"
            )));
        }
    };
    let authenticator = Authenticator {
        anonymous: auth.anonymous,
        client_ca: client_ca.clone(),
        tokens,
    };
    Ok((authenticator, authorizer, client_ca))
}

/// Bind every enabled listener and serve until `shutdown`. Must run inside tokio.
pub fn start(
    settings: ServerSettings,
    deps: ServerDeps,
    loops: &Loops,
    shutdown: CancellationToken,
) -> Result<NodeApi, ServerError> {
    deps.cri.set_metrics(deps.metrics.clone());
    let state: Shared = AppState::new(settings, deps);
    let s = &state.settings;
    let mut api = NodeApi::default();

    // Bind everything first: a port in use fails the start before anything serves.
    let healthz = (s.healthz_port > 0)
        .then(|| bind(SocketAddr::new(s.healthz_bind_address, s.healthz_port)))
        .transpose()?;
    let read_only = (s.read_only_port > 0)
        .then(|| bind(SocketAddr::new(s.address, s.read_only_port)))
        .transpose()?;
    let secure = if s.enable_server {
        let (authenticator, authorizer, client_ca) = build_auth(s, &state.deps.reviewers)?;
        let config = tls::server_config(&s.tls, &s.node_name, client_ca)?;
        let listener = bind(SocketAddr::new(s.address, s.port))?;
        Some((
            listener,
            TlsAcceptor::from(config),
            Auth {
                authenticator,
                authorizer,
                node_name: s.node_name.clone(),
            },
        ))
    } else {
        None
    };

    if let Some(l) = healthz {
        api.healthz = l.local_addr().ok();
        tracing::info!(address = ?api.healthz, "serving healthz");
        serve_plain(
            loops,
            l,
            healthz_router(state.clone()),
            shutdown.clone(),
            "healthz",
        );
    }
    if let Some(l) = read_only {
        api.read_only = l.local_addr().ok();
        tracing::info!(address = ?api.read_only, "serving the read-only kubelet API");
        serve_plain(
            loops,
            l,
            read_only_router(state.clone()),
            shutdown.clone(),
            "read-only",
        );
    }
    if let Some((l, acceptor, auth)) = secure {
        api.secure = l.local_addr().ok();
        tracing::info!(address = ?api.secure, "serving the kubelet API (HTTPS)");
        serve_tls(
            loops,
            l,
            acceptor,
            secure_router(state.clone(), Arc::new(auth)),
            shutdown.clone(),
        );
    }
    if api.secure.is_some() || api.read_only.is_some() {
        spawn_cpu_sampler(loops, state, shutdown);
    }
    Ok(api)
}

/// Every 10 s: sample CPU usage (so `usageNanoCores` is known at the first request).
fn spawn_cpu_sampler(loops: &Loops, state: Shared, shutdown: CancellationToken) {
    loops.spawn("cpu-sampler", async move {
        let mut tick = tokio::time::interval(Duration::from_secs(10));
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tick.tick() => {}
            }
            let s = state.clone();
            let _ = tokio::task::spawn_blocking(move || stats::sample_cpu(&s)).await;
        }
    });
}
