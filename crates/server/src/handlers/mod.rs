//! Request handlers, one module per endpoint family.

pub mod configz;
pub mod container_logs;
pub mod healthz;
pub mod metrics;
pub mod node_logs;
pub mod pods;
pub mod run;
pub mod spec;
pub mod stats;
pub mod streaming;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;

/// Query parameters as (name, value) pairs, in order, repeated names kept.
pub fn query_pairs(raw: Option<&str>) -> Vec<(String, String)> {
    form_urlencoded::parse(raw.unwrap_or_default().as_bytes())
        .into_owned()
        .collect()
}

/// A JSON body that is already serialised.
pub fn json_bytes(body: Vec<u8>) -> Response {
    let mut resp = (StatusCode::OK, body).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

/// Plain text with Go's headers for text answers.
pub fn text(status: StatusCode, body: String) -> Response {
    let mut resp = (status, body).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    resp
}

/// What the read-only port (and a kubelet with `enableDebuggingHandlers: false`)
/// answers on the debugging endpoints, as upstream.
pub async fn debugging_disabled() -> ApiError {
    ApiError::MethodNotAllowed("Debug endpoints are disabled.".into())
}

pub async fn logs_disabled() -> ApiError {
    ApiError::MethodNotAllowed("logs endpoint is disabled.".into())
}

pub async fn not_found() -> Response {
    text(StatusCode::NOT_FOUND, "404 page not found\n".into())
}
