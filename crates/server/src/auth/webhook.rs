//! The API-server side of Webhook authentication and authorization: the TokenReview and
//! SubjectAccessReview request bodies, and the traits a cluster-mode client implements
//! to send them. In standalone mode there is no client.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;

use k8s_openapi::api::authentication::v1::{TokenReview, TokenReviewSpec};
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec, SubjectAccessReviewStatus,
};

use super::User;
use super::attributes::Attributes;

#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    #[error("webhook authorization needs an API server (--kubeconfig); none is configured")]
    NoApiServer,
    #[error("webhook call failed: {0}")]
    Call(String),
}

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Sends a SubjectAccessReview and returns its status.
pub trait SubjectAccessReviewer: Send + Sync {
    fn review<'a>(
        &'a self,
        attrs: &'a Attributes,
    ) -> BoxFuture<'a, Result<SubjectAccessReviewStatus, WebhookError>>;
}

/// Sends a TokenReview; Ok(None) when the token is not authenticated.
pub trait TokenReviewer: Send + Sync {
    fn review<'a>(&'a self, token: &'a str) -> BoxFuture<'a, Result<Option<User>, WebhookError>>;
}

/// The SubjectAccessReview upstream's webhook authorizer posts for `attrs`.
pub fn subject_access_review(attrs: &Attributes) -> SubjectAccessReview {
    SubjectAccessReview {
        metadata: Default::default(),
        spec: SubjectAccessReviewSpec {
            resource_attributes: Some(ResourceAttributes {
                namespace: Some(attrs.namespace.clone()).filter(|s| !s.is_empty()),
                verb: Some(attrs.verb.clone()),
                group: Some(attrs.api_group.clone()).filter(|s| !s.is_empty()),
                version: Some(attrs.api_version.clone()),
                resource: Some(attrs.resource.clone()),
                subresource: Some(attrs.subresource.clone()),
                name: Some(attrs.name.clone()),
                ..Default::default()
            }),
            user: Some(attrs.user.name.clone()),
            uid: Some(attrs.user.uid.clone()).filter(|s| !s.is_empty()),
            groups: Some(attrs.user.groups.clone()),
            extra: Some(BTreeMap::new()).filter(|m: &BTreeMap<String, Vec<String>>| !m.is_empty()),
            non_resource_attributes: None,
        },
        status: None,
    }
}

/// The TokenReview upstream's webhook authenticator posts for a bearer token.
pub fn token_review(token: &str) -> TokenReview {
    TokenReview {
        metadata: Default::default(),
        spec: TokenReviewSpec {
            token: Some(token.to_string()),
            audiences: None,
        },
        status: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::request_attributes;

    #[test]
    fn review_shapes() {
        let user = User {
            name: "alice".into(),
            uid: String::new(),
            groups: vec!["dev".into(), "system:authenticated".into()],
        };
        let attrs = &request_attributes(&user, "GET", "/stats/summary", "node-a")[0];
        let v = serde_json::to_value(subject_access_review(attrs)).unwrap();
        assert_eq!(v["apiVersion"], "authorization.k8s.io/v1");
        assert_eq!(v["kind"], "SubjectAccessReview");
        let ra = &v["spec"]["resourceAttributes"];
        assert_eq!(
            (
                ra["verb"].as_str(),
                ra["resource"].as_str(),
                ra["subresource"].as_str(),
                ra["name"].as_str(),
                ra["version"].as_str()
            ),
            (
                Some("get"),
                Some("nodes"),
                Some("stats"),
                Some("node-a"),
                Some("v1")
            )
        );
        assert_eq!(v["spec"]["user"], "alice");
        assert_eq!(v["spec"]["groups"][0], "dev");
        let t = serde_json::to_value(token_review("abc")).unwrap();
        assert_eq!(t["apiVersion"], "authentication.k8s.io/v1");
        assert_eq!(t["spec"]["token"], "abc");
    }
}
