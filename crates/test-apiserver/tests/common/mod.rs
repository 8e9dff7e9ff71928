//! Shared helpers for the integration tests: a tiny HTTP client and a kubectl runner.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::net::TcpStream;

/// A response: status and JSON body (Null if not JSON).
pub struct Resp {
    pub code: u16,
    pub body: Value,
}

async fn send(
    addr: SocketAddr,
    req: Request<Full<Bytes>>,
) -> hyper::Response<hyper::body::Incoming> {
    let tcp = TcpStream::connect(addr).await.expect("connect");
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
        .await
        .expect("handshake");
    tokio::spawn(conn);
    sender.send_request(req).await.expect("send")
}

/// One request with an optional JSON body and content type.
pub async fn call(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: Option<&Value>,
    content_type: &str,
) -> Resp {
    call_as(addr, None, method, path, body, content_type).await
}

/// One request, with a bearer token when given.
pub async fn call_as(
    addr: SocketAddr,
    token: Option<&str>,
    method: &str,
    path: &str,
    body: Option<&Value>,
    content_type: &str,
) -> Resp {
    let bytes = body.map(|b| b.to_string()).unwrap_or_default();
    let mut req = Request::builder()
        .method(method)
        .uri(path)
        .header("host", addr.to_string())
        .header("content-type", content_type);
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    let req = req.body(Full::new(Bytes::from(bytes))).expect("request");
    let resp = send(addr, req).await;
    let code = resp.status().as_u16();
    let b = resp.into_body().collect().await.expect("body").to_bytes();
    Resp {
        code,
        body: serde_json::from_slice(&b).unwrap_or(Value::Null),
    }
}

pub async fn get(addr: SocketAddr, path: &str) -> Resp {
    call(addr, "GET", path, None, "application/json").await
}

pub async fn post(addr: SocketAddr, path: &str, body: &Value) -> Resp {
    call(addr, "POST", path, Some(body), "application/json").await
}

pub async fn put(addr: SocketAddr, path: &str, body: &Value) -> Resp {
    call(addr, "PUT", path, Some(body), "application/json").await
}

pub async fn patch(addr: SocketAddr, path: &str, body: &Value, ptype: &str) -> Resp {
    call(addr, "PATCH", path, Some(body), ptype).await
}

pub async fn delete(addr: SocketAddr, path: &str, body: Option<&Value>) -> Resp {
    call(addr, "DELETE", path, body, "application/json").await
}

/// A running watch: yields decoded events.
pub struct WatchStream {
    body: hyper::body::Incoming,
    buf: Vec<u8>,
}

pub async fn watch(addr: SocketAddr, path: &str) -> (u16, WatchStream) {
    let req = Request::builder()
        .uri(path)
        .header("host", addr.to_string())
        .body(Full::new(Bytes::new()))
        .expect("request");
    let resp = send(addr, req).await;
    (
        resp.status().as_u16(),
        WatchStream {
            body: resp.into_body(),
            buf: Vec::new(),
        },
    )
}

impl WatchStream {
    /// The next event, or None on end of stream or after `timeout`.
    pub async fn next(&mut self, timeout: Duration) -> Option<Value> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(pos) = self.buf.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=pos).collect();
                return serde_json::from_slice(&line).ok();
            }
            let frame = tokio::time::timeout_at(deadline, self.body.frame())
                .await
                .ok()??
                .ok()?;
            if let Ok(data) = frame.into_data() {
                self.buf.extend_from_slice(&data);
            }
        }
    }

    /// Events until `n` are collected or `timeout` passes.
    pub async fn take(&mut self, n: usize, timeout: Duration) -> Vec<Value> {
        let mut out = Vec::new();
        let deadline = tokio::time::Instant::now() + timeout;
        while out.len() < n {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.next(left).await {
                Some(e) => out.push(e),
                None => break,
            }
        }
        out
    }
}

/// Runs kubectl with a kubeconfig; returns (success, stdout, stderr).
pub fn kubectl(kubeconfig: &Path, args: &[&str]) -> (bool, String, String) {
    let out = Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(args)
        .env_remove("KUBECONFIG")
        .env("HOME", kubeconfig.parent().unwrap_or(Path::new("/tmp")))
        .output()
        .expect("kubectl must be installed");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs kubectl with stdin.
pub fn kubectl_stdin(kubeconfig: &Path, args: &[&str], stdin: &str) -> (bool, String, String) {
    use std::io::Write;
    let mut child = Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(args)
        .env_remove("KUBECONFIG")
        .env("HOME", kubeconfig.parent().unwrap_or(Path::new("/tmp")))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("kubectl must be installed");
    if let Some(mut s) = child.stdin.take() {
        let _ = s.write_all(stdin.as_bytes());
    }
    let out = child.wait_with_output().expect("kubectl output");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Whether kubectl is available (tests that need it are skipped loudly otherwise).
pub fn have_kubectl() -> bool {
    Command::new("kubectl")
        .arg("version")
        .arg("--client")
        .output()
        .is_ok_and(|o| o.status.success())
}

pub fn pod(name: &str, node: &str) -> Value {
    serde_json::json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {"nodeName": node, "containers": [{"name": "c", "image": "busybox:1.36"}]}
    })
}
