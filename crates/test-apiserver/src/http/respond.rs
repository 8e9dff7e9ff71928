//! Building responses: JSON bodies, Status errors, warnings, content negotiation.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::{CONTENT_TYPE, HeaderValue};
use serde_json::Value;

use super::{Body, Response};
use crate::error::ApiError;

/// A body from bytes.
pub fn full(b: impl Into<Bytes>) -> Body {
    Full::new(b.into()).map_err(|never| match never {}).boxed()
}

/// A JSON response.
pub fn json(code: u16, v: &Value) -> Response {
    let mut r = hyper::Response::new(full(v.to_string()));
    *r.status_mut() =
        hyper::StatusCode::from_u16(code).unwrap_or(hyper::StatusCode::INTERNAL_SERVER_ERROR);
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

/// A JSON response with `Warning` headers.
pub fn json_warn(code: u16, v: &Value, warnings: &[String]) -> Response {
    let mut r = json(code, v);
    for w in warnings {
        let text = format!("299 - \"{}\"", w.replace('"', "\\\""));
        if let Ok(h) = HeaderValue::from_str(&text) {
            r.headers_mut().append("Warning", h);
        }
    }
    r
}

/// A Status error response.
pub fn error(e: &ApiError) -> Response {
    let mut r = json(e.code(), &e.to_status());
    if matches!(e, ApiError::ServiceUnavailable(_) | ApiError::Timeout(..)) {
        r.headers_mut()
            .insert("Retry-After", HeaderValue::from_static("1"));
    }
    if matches!(e, ApiError::Unauthorized) {
        r.headers_mut()
            .insert("WWW-Authenticate", HeaderValue::from_static("Bearer"));
    }
    r
}

/// What representation the client asked for in `Accept`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Representation {
    /// Plain JSON.
    Json,
    /// `as=Table` with the meta.k8s.io version.
    Table(String),
    /// `as=PartialObjectMetadata[List]`.
    PartialMetadata(String),
}

/// Negotiates `Accept`. JSON is served for `*/*`, `application/json` and protobuf lists
/// that also accept JSON; a request accepting only protobuf gets 406.
pub fn negotiate(accept: &str) -> Result<Representation, ApiError> {
    if accept.trim().is_empty() {
        return Ok(Representation::Json);
    }
    let mut plain_ok = false;
    for part in accept.split(',') {
        let mut params = part.split(';').map(str::trim);
        let media = params.next().unwrap_or("");
        let (mut as_, mut g, mut v) = ("", "", "");
        for p in params {
            match p.split_once('=') {
                Some(("as", x)) => as_ = x,
                Some(("g", x)) => g = x,
                Some(("v", x)) => v = x,
                _ => {}
            }
        }
        let json_media = matches!(media, "application/json" | "*/*" | "application/*");
        if !json_media {
            continue;
        }
        match (as_, g) {
            ("Table", "meta.k8s.io") if v == "v1" || v == "v1beta1" => {
                return Ok(Representation::Table(v.to_string()));
            }
            ("PartialObjectMetadata" | "PartialObjectMetadataList", "meta.k8s.io")
                if v == "v1" || v == "v1beta1" =>
            {
                return Ok(Representation::PartialMetadata(v.to_string()));
            }
            ("", _) => plain_ok = true,
            _ => {}
        }
    }
    if plain_ok {
        Ok(Representation::Json)
    } else {
        Err(ApiError::NotAcceptable(
            "only the following media types are accepted: application/json, application/yaml, application/vnd.kubernetes.protobuf".into(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubectl_accept_headers() {
        let k = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json";
        assert_eq!(negotiate(k).unwrap(), Representation::Table("v1".into()));
        assert_eq!(
            negotiate("application/vnd.kubernetes.protobuf,application/json").unwrap(),
            Representation::Json
        );
        assert_eq!(negotiate("").unwrap(), Representation::Json);
        assert!(negotiate("application/vnd.kubernetes.protobuf").is_err());
        assert_eq!(
            negotiate("application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1").unwrap(),
            Representation::PartialMetadata("v1".into())
        );
    }
}
