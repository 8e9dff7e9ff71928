//! Webhook authentication and authorization of the node API (port 10250) through the
//! API server: bearer tokens are checked with a TokenReview, requests with a
//! SubjectAccessReview (the bodies are built by kubelet-server; this only sends them).

use std::time::Duration;

use k8s_openapi::api::authentication::v1::TokenReview;
use k8s_openapi::api::authorization::v1::{SubjectAccessReview, SubjectAccessReviewStatus};
use kube::api::{Api, PostParams};
use kubelet_server::auth::{
    self, Attributes, SubjectAccessReviewer, TokenReviewer, User, WebhookError,
};

const TIMEOUT: Duration = Duration::from_secs(10);

type BoxFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;

/// Sends reviews with the kubelet's API client.
#[derive(Clone)]
pub struct Reviews {
    client: kube::Client,
}

impl Reviews {
    pub fn new(client: kube::Client) -> Self {
        Reviews { client }
    }
}

impl TokenReviewer for Reviews {
    fn review<'a>(&'a self, token: &'a str) -> BoxFuture<'a, Result<Option<User>, WebhookError>> {
        Box::pin(async move {
            let api: Api<TokenReview> = Api::all(self.client.clone());
            let review = auth::token_review(token);
            let answer = tokio::time::timeout(TIMEOUT, api.create(&PostParams::default(), &review))
                .await
                .map_err(|_| WebhookError::Call("TokenReview timed out".into()))?
                .map_err(|e| WebhookError::Call(e.to_string()))?;
            let Some(status) = answer.status.filter(|s| s.authenticated == Some(true)) else {
                return Ok(None);
            };
            let user = status.user.unwrap_or_default();
            Ok(Some(User {
                name: user.username.unwrap_or_default(),
                uid: user.uid.unwrap_or_default(),
                groups: user.groups.unwrap_or_default(),
            }))
        })
    }
}

impl SubjectAccessReviewer for Reviews {
    fn review<'a>(
        &'a self,
        attrs: &'a Attributes,
    ) -> BoxFuture<'a, Result<SubjectAccessReviewStatus, WebhookError>> {
        Box::pin(async move {
            let api: Api<SubjectAccessReview> = Api::all(self.client.clone());
            let review = auth::subject_access_review(attrs);
            let answer = tokio::time::timeout(TIMEOUT, api.create(&PostParams::default(), &review))
                .await
                .map_err(|_| WebhookError::Call("SubjectAccessReview timed out".into()))?
                .map_err(|e| WebhookError::Call(e.to_string()))?;
            Ok(answer.status.unwrap_or_default())
        })
    }
}
