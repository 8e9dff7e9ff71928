//! Whether a user may do what it asks: AlwaysAllow, or a SubjectAccessReview webhook
//! with upstream's decision caches (authorized 5 min, unauthorized 30 s by default).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::attributes::Attributes;
use super::webhook::{SubjectAccessReviewer, WebhookError};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Allow,
    Deny(String),
}

pub enum Authorizer {
    AlwaysAllow,
    Webhook {
        /// None in standalone mode: there is no API server to ask.
        reviewer: Option<Arc<dyn SubjectAccessReviewer>>,
        allow_ttl: Duration,
        deny_ttl: Duration,
        cache: Mutex<HashMap<String, (Decision, Instant)>>,
    },
}

impl Authorizer {
    pub fn webhook(
        reviewer: Option<Arc<dyn SubjectAccessReviewer>>,
        allow_ttl: Duration,
        deny_ttl: Duration,
    ) -> Self {
        Authorizer::Webhook {
            reviewer,
            allow_ttl,
            deny_ttl,
            cache: Mutex::new(HashMap::new()),
        }
    }

    pub async fn authorize(&self, attrs: &Attributes) -> Result<Decision, WebhookError> {
        match self {
            Authorizer::AlwaysAllow => Ok(Decision::Allow),
            Authorizer::Webhook {
                reviewer,
                allow_ttl,
                deny_ttl,
                cache,
            } => {
                let Some(reviewer) = reviewer else {
                    return Err(WebhookError::NoApiServer);
                };
                let key = format!("{attrs:?}");
                let cached = kubelet_core::supervisor::lock(cache, "authorization cache")
                    .get(&key)
                    .cloned();
                if let Some((d, at)) = cached {
                    let ttl = if d == Decision::Allow {
                        *allow_ttl
                    } else {
                        *deny_ttl
                    };
                    if at.elapsed() < ttl {
                        return Ok(d);
                    }
                }
                let status = reviewer.review(attrs).await?;
                let decision = if status.allowed {
                    Decision::Allow
                } else {
                    Decision::Deny(status.reason.unwrap_or_default())
                };
                kubelet_core::supervisor::lock(cache, "authorization cache")
                    .insert(key, (decision.clone(), Instant::now()));
                Ok(decision)
            }
        }
    }
}
