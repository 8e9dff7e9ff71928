//! Authentication and authorization of the HTTPS port, with upstream's rules:
//! x509 client certificates (CN = user, O = groups), bearer tokens through a
//! TokenReview webhook, anonymous requests; then AlwaysAllow or a SubjectAccessReview
//! webhook on `nodes/<subresource>` attributes derived from the path.

mod attributes;
mod authn;
mod authz;
mod webhook;

pub use attributes::{Attributes, request_attributes};
pub use authn::{Authenticator, PeerCertificates};
pub use authz::{Authorizer, Decision};
/// The boxed future type of the reviewer traits.
pub mod webhook_box {
    pub use super::webhook::BoxFuture;
}
pub use webhook::{
    SubjectAccessReviewer, TokenReviewer, WebhookError, subject_access_review, token_review,
};

/// An authenticated (or anonymous) user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub name: String,
    pub uid: String,
    pub groups: Vec<String>,
}

impl User {
    pub fn anonymous() -> Self {
        User {
            name: "system:anonymous".into(),
            uid: String::new(),
            groups: vec!["system:unauthenticated".into()],
        }
    }
}
