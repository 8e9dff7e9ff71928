//! The listener: plain HTTP or TLS (with optional client certificates), HTTP/1.1 with
//! upgrades, stopped by a cancellation token.

use std::net::SocketAddr;
use std::sync::Arc;

use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::handler::{ConnInfo, handle};
use crate::auth::ca::identity_from_cert;
use crate::state::Cluster;

/// Accepts connections until `stop` is cancelled.
pub async fn serve(
    listener: TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    cl: Arc<Cluster>,
    stop: CancellationToken,
) {
    let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
    loop {
        let (tcp, peer) = tokio::select! {
            _ = stop.cancelled() => return,
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let local = tcp.local_addr().unwrap_or(peer);
        let cl = cl.clone();
        let stop = stop.clone();
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            match acceptor {
                None => {
                    serve_conn(
                        tcp,
                        ConnInfo {
                            tls: false,
                            cert_user: None,
                            local_addr: local,
                        },
                        cl,
                        stop,
                    )
                    .await
                }
                Some(acc) => match acc.accept(tcp).await {
                    Ok(tls) => {
                        let cert_user = tls
                            .get_ref()
                            .1
                            .peer_certificates()
                            .and_then(|c| c.first())
                            .and_then(|c| identity_from_cert(c.as_ref()));
                        serve_conn(
                            tls,
                            ConnInfo {
                                tls: true,
                                cert_user,
                                local_addr: local,
                            },
                            cl,
                            stop,
                        )
                        .await;
                    }
                    Err(e) => tracing::debug!(error = %e, %peer, "TLS handshake failed"),
                },
            }
        });
    }
}

async fn serve_conn<S>(io: S, info: ConnInfo, cl: Arc<Cluster>, stop: CancellationToken)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let info = Arc::new(info);
    let svc = service_fn(move |req| handle(cl.clone(), info.clone(), req));
    let conn = hyper::server::conn::http1::Builder::new()
        .serve_connection(TokioIo::new(io), svc)
        .with_upgrades();
    tokio::select! {
        _ = stop.cancelled() => {}
        r = conn => if let Err(e) = r { tracing::debug!(error = %e, "connection ended with error") },
    }
}

/// The address a listener is bound to, for URLs.
pub fn url(addr: SocketAddr, tls: bool) -> String {
    format!("{}://{addr}", if tls { "https" } else { "http" })
}
