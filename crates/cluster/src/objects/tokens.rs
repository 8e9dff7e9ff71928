//! Service account tokens for projected volumes (upstream token manager): a TokenRequest
//! bound to the pod, cached, and requested again once 80% of its life has passed (or it
//! is older than 24 h). If a refresh fails while the old token is still valid, the old
//! token is used.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use k8s_openapi::api::authentication::v1::{
    BoundObjectReference, TokenRequest, TokenRequestSpec as ApiSpec,
};
use k8s_openapi::api::core::v1::{Pod, ServiceAccount};
use kube::api::{Api, PostParams};
use kubelet_core::objects::{ObjectError, TokenRequestSpec};
use tokio::sync::watch;

use crate::error::status_of;

const MAX_AGE: Duration = Duration::from_secs(24 * 3600);
const UNUSED_AFTER: Duration = Duration::from_secs(600);

#[derive(Debug, Clone)]
struct Cached {
    token: String,
    issued: SystemTime,
    expires: SystemTime,
    last_used: Instant,
}

impl Cached {
    /// Upstream requiresRefresh: past 80% of the life, or older than 24 h.
    fn needs_refresh(&self, now: SystemTime) -> bool {
        let life = self.expires.duration_since(self.issued).unwrap_or_default();
        let age = now.duration_since(self.issued).unwrap_or_default();
        age >= life.mul_f64(0.8) || age > MAX_AGE
    }

    fn valid(&self, now: SystemTime) -> bool {
        now < self.expires
    }
}

type Key = (String, String, TokenRequestSpec);

pub struct Tokens {
    client: kube::Client,
    cache: Mutex<HashMap<Key, Cached>>,
    /// Bumped when a cached token is due for refresh, so workers rewrite the volumes.
    generation: Arc<watch::Sender<u64>>,
}

impl Tokens {
    pub fn new(client: kube::Client, generation: Arc<watch::Sender<u64>>) -> Self {
        Tokens {
            client,
            cache: Mutex::new(HashMap::new()),
            generation,
        }
    }

    /// Wake the workers when `token` is due for refresh.
    fn schedule_refresh(&self, token: &Cached) {
        let life = token
            .expires
            .duration_since(token.issued)
            .unwrap_or_default();
        let due = token.issued + life.mul_f64(0.8) + Duration::from_millis(200);
        let wait = due
            .duration_since(SystemTime::now())
            .unwrap_or_default()
            .min(MAX_AGE);
        let generation = Arc::downgrade(&self.generation);
        tokio::spawn(async move {
            tokio::time::sleep(wait).await;
            if let Some(g) = generation.upgrade() {
                g.send_modify(|n| *n += 1);
            }
        });
    }

    pub async fn get(&self, pod: &Pod, spec: &TokenRequestSpec) -> Result<String, ObjectError> {
        let namespace = pod
            .metadata
            .namespace
            .clone()
            .unwrap_or_else(|| "default".into());
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        let key: Key = (namespace.clone(), uid.clone(), spec.clone());
        let now = SystemTime::now();
        let cached = kubelet_core::supervisor::lock(&self.cache, "service account tokens")
            .get_mut(&key)
            .map(|e| {
                e.last_used = Instant::now();
                e.clone()
            });
        if let Some(c) = &cached
            && !c.needs_refresh(now)
        {
            return Ok(c.token.clone());
        }
        match self.request(pod, &namespace, spec).await {
            Ok(fresh) => {
                let token = fresh.token.clone();
                self.schedule_refresh(&fresh);
                kubelet_core::supervisor::lock(&self.cache, "service account tokens")
                    .insert(key, fresh);
                Ok(token)
            }
            Err(e) => match cached {
                Some(c) if c.valid(now) => {
                    tracing::warn!(error = %e, "token refresh failed; the current token is still valid");
                    Ok(c.token)
                }
                _ => Err(e),
            },
        }
    }

    async fn request(
        &self,
        pod: &Pod,
        namespace: &str,
        spec: &TokenRequestSpec,
    ) -> Result<Cached, ObjectError> {
        let api: Api<ServiceAccount> = Api::namespaced(self.client.clone(), namespace);
        let req = TokenRequest {
            spec: ApiSpec {
                audiences: if spec.audience.is_empty() {
                    Vec::new()
                } else {
                    vec![spec.audience.clone()]
                },
                expiration_seconds: Some(spec.expiration_seconds),
                bound_object_ref: Some(BoundObjectReference {
                    api_version: Some("v1".into()),
                    kind: Some("Pod".into()),
                    name: pod.metadata.name.clone(),
                    uid: pod.metadata.uid.clone(),
                }),
            },
            ..Default::default()
        };
        let issued = SystemTime::now();
        let result = tokio::time::timeout(
            Duration::from_secs(10),
            api.create_token_request(&spec.service_account, &PostParams::default(), &req),
        )
        .await;
        let resp = match result {
            Ok(Ok(r)) => r,
            Ok(Err(e)) if status_of(&e) == Some(404) => {
                return Err(ObjectError::NotFound {
                    kind: "serviceaccount",
                    name: spec.service_account.clone(),
                });
            }
            Ok(Err(e)) => return Err(ObjectError::Failed(format!("failed to fetch token: {e}"))),
            Err(_) => return Err(ObjectError::Failed("timed out requesting a token".into())),
        };
        let status = resp
            .status
            .ok_or_else(|| ObjectError::Failed("TokenRequest answered without a token".into()))?;
        let expires_ns = status.expiration_timestamp.0.as_nanosecond();
        let expires = SystemTime::UNIX_EPOCH + Duration::from_nanos(expires_ns.max(0) as u64);
        Ok(Cached {
            token: status.token,
            issued,
            expires,
            last_used: Instant::now(),
        })
    }

    pub fn expire_unused(&self) {
        kubelet_core::supervisor::lock(&self.cache, "service account tokens")
            .retain(|_, e| e.last_used.elapsed() < UNUSED_AFTER);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refresh_at_eighty_percent() {
        let issued = SystemTime::UNIX_EPOCH + Duration::from_secs(1000);
        let c = Cached {
            token: "t".into(),
            issued,
            expires: issued + Duration::from_secs(3600),
            last_used: Instant::now(),
        };
        assert!(!c.needs_refresh(issued + Duration::from_secs(2879)));
        assert!(c.needs_refresh(issued + Duration::from_secs(2880)));
        assert!(c.valid(issued + Duration::from_secs(3599)));
        assert!(!c.valid(issued + Duration::from_secs(3600)));
    }
}
