//! pods/log, pods/exec, pods/attach, pods/portforward and nodes/proxy, proxied to the
//! kubelet at the node's InternalIP and `status.daemonEndpoints.kubeletEndpoint.Port` over
//! HTTPS with the API server's kubelet-client certificate (CN kube-apiserver-kubelet-client,
//! O system:masters), like kube-apiserver. The kubelet's serving certificate is not
//! verified (upstream's default without --kubelet-certificate-authority). Upgrades
//! (SPDY/WebSocket for exec, attach, port-forward) are spliced byte for byte.

use std::collections::HashMap;
use std::sync::Arc;

use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper::header::{CONNECTION, HOST, UPGRADE};
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use serde_json::Value;

use super::handler::parse_query;
use super::route::ResourcePath;
use super::{BoxError, Response, respond};
use crate::error::{ApiError, ApiResult};
use crate::meta;
use crate::state::Cluster;
use crate::store::ObjKey;

/// Serves a proxy subresource.
pub async fn handle(cl: &Cluster, rp: &ResourcePath, req: Request<Incoming>) -> Response {
    match proxy(cl, rp, req).await {
        Ok(r) => r,
        Err(e) => respond::error(&e),
    }
}

/// The kubelet query of an exec or attach as kube-apiserver builds it from the decoded
/// PodExecOptions / PodAttachOptions: the commands, then `input`, `output`, `error`, `tty`
/// as "1" for the streams asked for (the kubelet reads only those names).
fn kubelet_stream_query(query: &str) -> String {
    let pairs: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let truthy = |name: &str| {
        pairs.iter().any(|(k, v)| {
            k == name && matches!(v.as_str(), "1" | "t" | "T" | "true" | "TRUE" | "True")
        })
    };
    let mut out = form_urlencoded::Serializer::new(String::new());
    for (k, v) in &pairs {
        if k == "command" {
            out.append_pair("command", v);
        }
    }
    for (from, to) in [
        ("stdin", "input"),
        ("stdout", "output"),
        ("stderr", "error"),
        ("tty", "tty"),
    ] {
        if truthy(from) {
            out.append_pair(to, "1");
        }
    }
    out.finish()
}

/// The kubelet URL path (with query) a subresource request maps to, and the node.
fn target(cl: &Cluster, rp: &ResourcePath, uri: &hyper::Uri) -> ApiResult<(String, String)> {
    let ns = rp.namespace.as_deref().unwrap_or("");
    let name = rp.name.as_deref().unwrap_or("");
    let query = uri.query().unwrap_or("");
    if rp.def.kind == "Node" {
        // /api/v1/nodes/<name>/proxy/<rest>
        let marker = format!("/nodes/{name}/proxy");
        let rest = uri.path().split_once(&marker).map(|(_, r)| r).unwrap_or("");
        let rest = if rest.is_empty() { "/" } else { rest };
        let pq = if query.is_empty() {
            rest.to_string()
        } else {
            format!("{rest}?{query}")
        };
        return Ok((name.to_string(), pq));
    }
    let pod = cl
        .store
        .get(&ObjKey::new("pods", ns, name))
        .ok_or_else(|| crate::ops::not_found(rp.def, name))?;
    let node = meta::path_string(&pod, "spec.nodeName");
    if node.is_empty() {
        return Err(ApiError::BadRequest(format!(
            "pod {name} does not have a host assigned"
        )));
    }
    let sub = rp.sub.as_deref().unwrap_or("");
    if sub == "portforward" {
        return Ok((node, format!("/portForward/{ns}/{name}?{query}")));
    }
    let q = parse_query(query);
    let container = container_for(&pod, &q)?;
    let prefix = match sub {
        "log" => "containerLogs",
        "exec" => "exec",
        _ => "attach",
    };
    let kept: String = if sub == "log" {
        form_urlencoded::Serializer::new(String::new())
            .extend_pairs(
                form_urlencoded::parse(query.as_bytes()).filter(|(k, _)| k != "container"),
            )
            .finish()
    } else {
        kubelet_stream_query(query)
    };
    let path = format!("/{prefix}/{ns}/{name}/{container}");
    Ok((
        node,
        if kept.is_empty() {
            path
        } else {
            format!("{path}?{kept}")
        },
    ))
}

fn container_for(pod: &Value, q: &HashMap<String, String>) -> ApiResult<String> {
    let names = |list: &str| -> Vec<String> {
        meta::path(pod, list)
            .and_then(Value::as_array)
            .map(|a| a.iter().map(|c| meta::path_string(c, "name")).collect())
            .unwrap_or_default()
    };
    let containers = names("spec.containers");
    let mut all = names("spec.initContainers");
    all.extend(containers.iter().cloned());
    all.extend(names("spec.ephemeralContainers"));
    let pod_name = meta::name(pod);
    match q.get("container").filter(|c| !c.is_empty()) {
        Some(c) if all.contains(c) => Ok(c.clone()),
        Some(c) => Err(ApiError::BadRequest(format!(
            "container {c} is not valid for pod {pod_name}"
        ))),
        None if containers.len() == 1 => Ok(containers[0].clone()),
        None => Err(ApiError::BadRequest(format!(
            "a container name must be specified for pod {pod_name}, choose one of: [{}]",
            containers.join(" ")
        ))),
    }
}

fn kubelet_address(cl: &Cluster, node: &str) -> ApiResult<(String, u16)> {
    let n = cl
        .store
        .get(&ObjKey::new("nodes", "", node))
        .ok_or_else(|| ApiError::NotFound(crate::error::Subject::new("", "nodes", node)))?;
    let addrs = meta::path(&n, "status.addresses")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let pick = |t: &str| {
        addrs
            .iter()
            .find(|a| meta::path_string(a, "type") == t)
            .map(|a| meta::path_string(a, "address"))
    };
    let host = pick("InternalIP")
        .or_else(|| pick("ExternalIP"))
        .or_else(|| pick("Hostname"))
        .unwrap_or_else(|| node.to_string());
    let port = meta::path(&n, "status.daemonEndpoints.kubeletEndpoint.Port")
        .and_then(Value::as_u64)
        .unwrap_or(10250);
    Ok((host, u16::try_from(port).unwrap_or(10250)))
}

async fn proxy(cl: &Cluster, rp: &ResourcePath, mut req: Request<Incoming>) -> ApiResult<Response> {
    let (node, path) = target(cl, rp, req.uri())?;
    let (host, port) = kubelet_address(cl, &node)?;
    let dial_err =
        |e: &dyn std::fmt::Display| ApiError::Internal(format!("error dialing backend: {e}"));
    let tcp = tokio::net::TcpStream::connect((host.as_str(), port))
        .await
        .map_err(|e| dial_err(&e))?;
    let server_name = ServerName::try_from(host.clone()).map_err(|e| dial_err(&e))?;
    let tls = tokio_rustls::TlsConnector::from(cl.kubelet_client.clone())
        .connect(server_name, tcp)
        .await
        .map_err(|e| dial_err(&e))?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .map_err(|e| dial_err(&e))?;
    tokio::spawn(async move {
        if let Err(e) = conn.with_upgrades().await {
            tracing::debug!(error = %e, "kubelet connection ended");
        }
    });
    let upgrade = req.headers().contains_key(UPGRADE);
    let mut out = Request::builder().method(req.method().clone()).uri(&path);
    for (k, v) in req.headers() {
        if k == HOST || k == hyper::header::AUTHORIZATION {
            continue;
        }
        out = out.header(k, v);
    }
    out = out.header(HOST, format!("{host}:{port}"));
    let resp = if upgrade {
        let client_upgrade = hyper::upgrade::on(&mut req);
        let outgoing = out
            .body(
                Empty::<bytes::Bytes>::new()
                    .map_err(|never| match never {})
                    .boxed(),
            )
            .map_err(|e| ApiError::Internal(e.to_string()))?;
        let mut resp = sender
            .send_request(outgoing)
            .await
            .map_err(|e| dial_err(&e))?;
        if resp.status() == StatusCode::SWITCHING_PROTOCOLS {
            let backend_upgrade = hyper::upgrade::on(&mut resp);
            tokio::spawn(async move {
                match (client_upgrade.await, backend_upgrade.await) {
                    (Ok(c), Ok(b)) => {
                        let (mut c, mut b) = (TokioIo::new(c), TokioIo::new(b));
                        let _ = tokio::io::copy_bidirectional(&mut c, &mut b).await;
                    }
                    (c, b) => {
                        tracing::debug!(client = c.is_ok(), backend = b.is_ok(), "upgrade failed")
                    }
                }
            });
        }
        resp
    } else {
        let body = req.into_body().map_err(|e| Box::new(e) as BoxError).boxed();
        let outgoing = out
            .body(body)
            .map_err(|e| ApiError::Internal(e.to_string()))?;
        sender
            .send_request(outgoing)
            .await
            .map_err(|e| dial_err(&e))?
    };
    let (parts, body) = resp.into_parts();
    let mut r =
        hyper::Response::from_parts(parts, body.map_err(|e| Box::new(e) as BoxError).boxed());
    if upgrade && r.status() == StatusCode::SWITCHING_PROTOCOLS {
        r.headers_mut().insert(
            CONNECTION,
            hyper::header::HeaderValue::from_static("Upgrade"),
        );
    }
    Ok(r)
}

/// A rustls client config presenting `cert` and accepting any kubelet serving certificate.
pub fn kubelet_client_config(
    cert_pem: &str,
    key_der: Vec<u8>,
) -> Result<Arc<rustls::ClientConfig>, rustls::Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let chain = vec![rustls::pki_types::CertificateDer::from(
        crate::auth::ca::pem_to_der(cert_pem).unwrap_or_default(),
    )];
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(key_der.into());
    let mut cfg = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyServerCert(provider)))
        .with_client_auth_cert(chain, key)?;
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}

/// Accepts any server certificate but still checks the handshake signatures.
#[derive(Debug)]
struct AnyServerCert(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AnyServerCert {
    fn verify_server_cert(
        &self,
        _end_entity: &rustls::pki_types::CertificateDer<'_>,
        _intermediates: &[rustls::pki_types::CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::kubelet_stream_query;

    #[test]
    fn exec_options_reach_the_kubelet_under_upstream_names() {
        assert_eq!(
            kubelet_stream_query(
                "command=sh&command=-c&container=web&stdin=true&stdout=true&stderr=true"
            ),
            "command=sh&command=-c&input=1&output=1&error=1"
        );
        assert_eq!(
            kubelet_stream_query("stdout=1&tty=true&stderr=false"),
            "output=1&tty=1"
        );
    }
}
