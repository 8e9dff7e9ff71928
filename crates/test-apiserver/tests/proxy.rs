//! pods/log and pods/exec reach the kubelet through the API server: a fake kubelet (HTTPS,
//! client certificates required from the API server's CA) answers logs and an upgrade.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use serde_json::json;
use test_apiserver::{Options, Server};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use common::*;

/// Starts a fake kubelet; returns its port and the client identities it saw.
async fn fake_kubelet(client_ca_pem: &str) -> (u16, Arc<Mutex<Vec<String>>>) {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cert = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).expect("cert");
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from(
            test_apiserver::auth::ca::pem_to_der(client_ca_pem).expect("ca der"),
        ))
        .expect("root");
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    )
    .build()
    .expect("verifier");
    let cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_client_cert_verifier(verifier)
        .with_single_cert(
            vec![cert.cert.der().clone()],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(cert.signing_key.serialize_der())),
        )
        .expect("server config");
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(cfg));
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let seen2 = seen.clone();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let Ok(tls) = acceptor.accept(tcp).await else {
                continue;
            };
            let der = tls
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|c| c.first())
                .map(|c| c.to_vec())
                .unwrap_or_default();
            let who = test_apiserver::auth::ca::identity_from_cert(&der)
                .map(|u| u.name)
                .unwrap_or_default();
            seen2.lock().map(|mut s| s.push(who)).ok();
            tokio::spawn(async move {
                let svc = service_fn(|mut req: Request<hyper::body::Incoming>| async move {
                    let path = req.uri().path().to_string();
                    let query = req.uri().query().unwrap_or("").to_string();
                    if req.headers().contains_key("upgrade") {
                        let on = hyper::upgrade::on(&mut req);
                        tokio::spawn(async move {
                            if let Ok(up) = on.await {
                                let mut io = TokioIo::new(up);
                                let mut buf = [0u8; 64];
                                if let Ok(n) = io.read(&mut buf).await {
                                    let _ = io.write_all(&buf[..n]).await;
                                }
                            }
                        });
                        let r = Response::builder()
                            .status(101)
                            .header("connection", "Upgrade")
                            .header("upgrade", "test-echo")
                            .header("x-path", path)
                            .body(Full::new(Bytes::new()))
                            .expect("response");
                        return Ok::<_, std::convert::Infallible>(r);
                    }
                    let body = format!("path={path} query={query}\nline2\n");
                    Ok(Response::new(Full::new(Bytes::from(body))))
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tls), svc)
                    .with_upgrades()
                    .await;
            });
        }
    });
    (port, seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_and_exec_are_proxied_to_the_kubelet() {
    let s = Server::start(Options::default()).await.expect("start");
    let a = s.addr();
    let (port, seen) = fake_kubelet(s.ca_pem()).await;
    let node = json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1"},
        "status": {"addresses": [{"type": "InternalIP", "address": "127.0.0.1"}], "daemonEndpoints": {"kubeletEndpoint": {"Port": port}}}});
    assert_eq!(post(a, "/api/v1/nodes", &node).await.code, 201);
    assert_eq!(
        post(a, "/api/v1/namespaces/default/pods", &pod("web", "n1"))
            .await
            .code,
        201
    );

    if have_kubectl() {
        let (ok, out, err) = kubectl(s.kubeconfig_path(), &["logs", "web", "--tail=2"]);
        assert!(ok, "{err}");
        assert!(
            out.starts_with("path=/containerLogs/default/web/c query=tailLines=2"),
            "{out}"
        );
    }
    let r = get(a, "/api/v1/namespaces/default/pods/web/log?container=nope").await;
    assert_eq!(r.code, 400);
    assert_eq!(r.body["message"], "container nope is not valid for pod web");

    // An upgraded exec stream is spliced both ways.
    let mut tcp = TcpStream::connect(a).await.expect("connect");
    tcp.write_all(
        b"GET /api/v1/namespaces/default/pods/web/exec?command=sh&stdin=true&stdout=true HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: test-echo\r\n\r\n",
    )
    .await
    .expect("write");
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        let n = tokio::time::timeout(Duration::from_secs(5), tcp.read(&mut b))
            .await
            .expect("timely")
            .expect("read");
        assert!(
            n > 0,
            "connection closed early: {}",
            String::from_utf8_lossy(&head)
        );
        head.push(b[0]);
    }
    let head = String::from_utf8_lossy(&head).to_lowercase();
    assert!(head.starts_with("http/1.1 101"), "{head}");
    assert!(head.contains("x-path: /exec/default/web/c"), "{head}");
    tcp.write_all(b"ping").await.expect("write");
    let mut echo = [0u8; 4];
    tokio::time::timeout(Duration::from_secs(5), tcp.read_exact(&mut echo))
        .await
        .expect("timely")
        .expect("read");
    assert_eq!(&echo, b"ping");

    let ids = seen.lock().map(|s| s.clone()).unwrap_or_default();
    assert!(
        !ids.is_empty() && ids.iter().all(|i| i == "kube-apiserver-kubelet-client"),
        "{ids:?}"
    );
    s.stop().await;
}
