//! The upgrade-aware proxy behind exec, attach and port-forward: the client's upgrade
//! request (SPDY/3.1 or WebSocket, whatever it asks for) is replayed to the runtime's
//! streaming URL; when the runtime switches protocols, the two upgraded connections
//! are spliced together byte for byte, so every streaming protocol passes through.

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::error::ApiError;

/// Whether the request asks to switch protocols.
pub fn is_upgrade(req: &Request) -> bool {
    let connection_upgrade = req
        .headers()
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| {
            v.split(',')
                .any(|t| t.trim().eq_ignore_ascii_case("upgrade"))
        });
    connection_upgrade && req.headers().contains_key(header::UPGRADE)
}

pub fn is_websocket(req: &Request) -> bool {
    is_upgrade(req)
        && req
            .headers()
            .get(header::UPGRADE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
}

/// Proxy `req` to the streaming `location` (an http:// URL from the runtime).
pub async fn proxy(mut req: Request, location: &str) -> Result<Response, ApiError> {
    let uri: Uri = location
        .parse()
        .map_err(|e| ApiError::Internal(format!("bad streaming URL {location:?}: {e}")))?;
    if uri.scheme_str() != Some("http") {
        return Err(ApiError::Internal(format!(
            "unsupported streaming URL scheme in {location:?}"
        )));
    }
    let authority = uri
        .authority()
        .ok_or_else(|| ApiError::Internal(format!("no host in {location:?}")))?
        .clone();
    let port = authority.port_u16().unwrap_or(80);
    let stream = TcpStream::connect((
        authority.host().trim_matches(|c| c == '[' || c == ']'),
        port,
    ))
    .await
    .map_err(|e| ApiError::Internal(format!("error dialing backend: {e}")))?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| ApiError::Internal(format!("error dialing backend: {e}")))?;
    tokio::spawn(async move {
        if let Err(err) = conn.with_upgrades().await {
            tracing::debug!(error = %err, "streaming backend connection ended");
        }
    });

    let mut path = uri.path().to_string();
    if let Some(q) = req.uri().query() {
        path.push('?');
        path.push_str(q);
    }
    let mut backend_req = hyper::Request::builder()
        .method(req.method().clone())
        .uri(path);
    for (name, value) in req.headers() {
        if name != header::HOST {
            backend_req = backend_req.header(name, value);
        }
    }
    let backend_req = backend_req
        .header(header::HOST, authority.as_str())
        .body(Empty::<Bytes>::new())
        .map_err(|e| ApiError::Internal(format!("building backend request: {e}")))?;

    let client_upgrade = hyper::upgrade::on(&mut req);
    let mut backend_resp = sender
        .send_request(backend_req)
        .await
        .map_err(|e| ApiError::Internal(format!("error proxying to the runtime: {e}")))?;

    if backend_resp.status() != StatusCode::SWITCHING_PROTOCOLS {
        // The runtime refused (bad token, unsupported protocol...): relay its answer.
        let status = backend_resp.status();
        let headers = backend_resp.headers().clone();
        let body = backend_resp
            .into_body()
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        let mut resp = (status, Body::from(body)).into_response();
        for (k, v) in &headers {
            if k != header::CONTENT_LENGTH && k != header::TRANSFER_ENCODING {
                resp.headers_mut().insert(k, v.clone());
            }
        }
        return Ok(resp);
    }

    let backend_upgrade = hyper::upgrade::on(&mut backend_resp);
    tokio::spawn(async move {
        let (client, backend) = match tokio::try_join!(client_upgrade, backend_upgrade) {
            Ok(pair) => pair,
            Err(err) => {
                tracing::debug!(error = %err, "upgrade failed");
                return;
            }
        };
        let mut client = TokioIo::new(client);
        let mut backend = TokioIo::new(backend);
        if let Err(err) = tokio::io::copy_bidirectional(&mut client, &mut backend).await {
            tracing::debug!(error = %err, "streaming connection closed");
        }
    });

    let mut resp = Response::new(Body::empty());
    *resp.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    for (k, v) in backend_resp.headers() {
        resp.headers_mut().append(k, v.clone());
    }
    if !resp.headers().contains_key(header::CONNECTION) {
        resp.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    }
    Ok(resp)
}
