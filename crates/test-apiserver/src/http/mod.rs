//! HTTP: routing, content negotiation, handlers, watch streaming, the listener.

pub mod admin;
pub mod handler;
pub mod protobuf;
pub mod proxy;
pub mod resource;
pub mod respond;
pub mod route;
pub mod serve;
pub mod watch;

/// Boxed error for response bodies.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
/// Response body.
pub type Body = http_body_util::combinators::BoxBody<bytes::Bytes, BoxError>;
/// Response.
pub type Response = hyper::Response<Body>;
