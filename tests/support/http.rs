//! HTTP, TLS and WebSocket clients for the node API tests: free ports, the flags that
//! turn the servers on, an HTTPS client that trusts any certificate, raw TLS requests
//! (for paths a URL parser would normalise, and for protocol upgrades), and a
//! WebSocket client speaking the Kubernetes channel protocols.

use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use super::{DEADLINE, Node, eventually};

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// The three node API ports of one test kubelet.
#[derive(Debug, Clone, Copy)]
pub struct ApiPorts {
    pub secure: u16,
    pub read_only: u16,
    pub healthz: u16,
}

impl ApiPorts {
    pub fn new() -> Self {
        ApiPorts {
            secure: free_port(),
            read_only: free_port(),
            healthz: free_port(),
        }
    }

    /// Flags that serve all three ports on 127.0.0.1, certificates in `<node dir>/pki`,
    /// anonymous AlwaysAllow (the command-line defaults).
    pub fn flags(&self, node: &Node) -> Vec<String> {
        vec![
            "--enable-server=true".into(),
            "--address=127.0.0.1".into(),
            format!("--port={}", self.secure),
            format!("--read-only-port={}", self.read_only),
            format!("--healthz-port={}", self.healthz),
            format!("--cert-dir={}", cert_dir(node).display()),
            "--anonymous-auth=true".into(),
            "--authorization-mode=AlwaysAllow".into(),
        ]
    }

    pub fn https(&self, path: &str) -> String {
        format!("https://127.0.0.1:{}{path}", self.secure)
    }

    pub fn read_only_url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.read_only)
    }

    pub fn healthz_url(&self) -> String {
        format!("http://127.0.0.1:{}/healthz", self.healthz)
    }
}

pub fn cert_dir(node: &Node) -> PathBuf {
    node.dir.path().join("pki")
}

/// An HTTPS client that accepts any server certificate (like `curl -k`).
pub fn insecure_client() -> reqwest::Client {
    reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client")
}

/// Wait until something accepts connections on `port`.
pub async fn wait_listening(port: u16) {
    eventually(&format!("port {port} listening"), DEADLINE, || async move {
        TcpStream::connect(("127.0.0.1", port))
            .await
            .ok()
            .map(|_| ())
    })
    .await;
}

pub async fn connect_refused(port: u16) -> bool {
    TcpStream::connect(("127.0.0.1", port)).await.is_err()
}

/// GET `url`: (status, body).
pub async fn get(client: &reqwest::Client, url: &str) -> (u16, String) {
    let resp = client
        .get(url)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    let status = resp.status().as_u16();
    (status, resp.text().await.unwrap_or_default())
}

pub fn json(body: &str) -> serde_json::Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
}

/// Assert a metav1 Status body with this code and reason.
pub fn assert_status(body: &str, code: u16, reason: &str) -> serde_json::Value {
    let v = json(body);
    assert_eq!(v["kind"], "Status", "{body}");
    assert_eq!(v["status"], "Failure", "{body}");
    assert_eq!(v["code"], code, "{body}");
    assert_eq!(v["reason"], reason, "{body}");
    v
}

#[derive(Debug)]
struct AcceptAny;

impl ServerCertVerifier for AcceptAny {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        _: &[u8],
        _: &CertificateDer<'_>,
        _: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }
    fn verify_tls13_signature(
        &self,
        _: &[u8],
        _: &CertificateDer<'_>,
        _: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        rustls::crypto::ring::default_provider()
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// A TLS connection to the HTTPS port that trusts any certificate.
pub async fn tls_connect(port: u16) -> TlsStream<TcpStream> {
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .dangerous()
    .with_custom_certificate_verifier(Arc::new(AcceptAny))
    .with_no_client_auth();
    let tcp = TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from("localhost").expect("name"), tcp)
        .await
        .expect("TLS handshake")
}

/// The certificate the HTTPS port serves (leaf).
pub async fn served_certificate(port: u16) -> Vec<u8> {
    let tls = tls_connect(port).await;
    tls.get_ref()
        .1
        .peer_certificates()
        .expect("server certificate")[0]
        .to_vec()
}

/// Send raw request bytes over TLS and read what comes back within `wait`.
pub async fn raw_tls(port: u16, request: &str, wait: Duration) -> String {
    let mut tls = tls_connect(port).await;
    tls.write_all(request.as_bytes()).await.expect("write");
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    let _ = tokio::time::timeout(wait, async {
        loop {
            match tls.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    out.extend_from_slice(&buf[..n]);
                    if out.windows(4).any(|w| w == b"\r\n\r\n") && !out.starts_with(b"HTTP/1.1 200")
                    {
                        break;
                    }
                }
            }
        }
    })
    .await;
    String::from_utf8_lossy(&out).into_owned()
}

/// A WebSocket to the HTTPS port offering `protocols`; returns the socket and the
/// protocol the server picked.
pub async fn websocket(
    port: u16,
    path: &str,
    protocols: &[&str],
) -> (WebSocketStream<TlsStream<TcpStream>>, String) {
    let mut request = format!("wss://127.0.0.1:{port}{path}")
        .into_client_request()
        .expect("request");
    request.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        protocols.join(", ").parse().expect("header"),
    );
    let tls = tls_connect(port).await;
    let (ws, resp) = tokio_tungstenite::client_async(request, tls)
        .await
        .unwrap_or_else(|e| panic!("websocket {path}: {e}"));
    let proto = resp
        .headers()
        .get("Sec-WebSocket-Protocol")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    (ws, proto)
}

/// Read channel frames until `done` says so (given channel -> bytes so far) or 20 s pass.
pub async fn read_channels(
    ws: &mut WebSocketStream<TlsStream<TcpStream>>,
    done: impl Fn(&std::collections::HashMap<u8, Vec<u8>>) -> bool,
) -> std::collections::HashMap<u8, Vec<u8>> {
    let mut got: std::collections::HashMap<u8, Vec<u8>> = std::collections::HashMap::new();
    let _ = tokio::time::timeout(Duration::from_secs(20), async {
        while let Some(msg) = ws.next().await {
            let Ok(msg) = msg else { break };
            if let Message::Binary(data) = msg
                && let Some((chan, rest)) = data.split_first()
            {
                got.entry(*chan).or_default().extend_from_slice(rest);
            }
            if done(&got) {
                break;
            }
        }
    })
    .await;
    got
}

/// Send `data` on channel `chan`.
pub async fn send_channel(ws: &mut WebSocketStream<TlsStream<TcpStream>>, chan: u8, data: &[u8]) {
    let mut frame = vec![chan];
    frame.extend_from_slice(data);
    ws.send(Message::Binary(frame.into())).await.expect("send");
}

/// TCP ports the node's kubelet process listens on (from its fds and /proc/net/tcp*).
pub fn listening_ports(node: &Node) -> Vec<u16> {
    let Some(pid) = node.child.as_ref().map(|c| c.id()) else {
        return Vec::new();
    };
    let inodes: std::collections::HashSet<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|entries| {
            entries
                .flatten()
                .filter_map(|e| std::fs::read_link(e.path()).ok())
                .filter_map(|l| {
                    let l = l.to_string_lossy().into_owned();
                    Some(l.strip_prefix("socket:[")?.strip_suffix(']')?.to_string())
                })
                .collect()
        })
        .unwrap_or_default();
    let mut ports = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let text = std::fs::read_to_string(table).unwrap_or_default();
        for line in text.lines().skip(1) {
            let cols: Vec<&str> = line.split_whitespace().collect();
            if cols.len() > 9
                && cols[3] == "0A"
                && inodes.contains(cols[9])
                && let Some(port) = cols[1]
                    .rsplit(':')
                    .next()
                    .and_then(|p| u16::from_str_radix(p, 16).ok())
            {
                ports.push(port);
            }
        }
    }
    ports.sort_unstable();
    ports.dedup();
    ports
}
