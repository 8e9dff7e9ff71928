//! API objects a pod needs from the API server before its containers can be configured:
//! ConfigMaps and Secrets (env and volumes), service account tokens (projected volumes)
//! and Services (service environment variables).
//!
//! Core code does not talk to the API server: the binary hands pod workers an
//! [`ApiObjects`] implementation in cluster mode (none in standalone mode). Before it
//! builds container configs or refreshes volumes, a worker calls [`prefetch`], which
//! gathers everything the pod references into a [`PodApiData`] snapshot; env resolution
//! and volume payloads then read only that snapshot (plain, synchronous, testable).
//! A lookup that fails is recorded, not hidden: a required object that is missing gives
//! an error naming it, never an empty value.

pub mod refs;
pub mod service_env;

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{ConfigMap, Pod, Secret, Service};
use tokio::sync::watch;

pub use refs::{PodRefs, TokenRequestSpec};

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Why an object could not be had.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ObjectError {
    /// The API server says it does not exist (`kind` is `configmap`, `secret` ...).
    #[error("{kind} {name:?} not found")]
    NotFound { kind: &'static str, name: String },
    /// Any other failure (API server unreachable, forbidden, timed out).
    #[error("{0}")]
    Failed(String),
}

impl ObjectError {
    pub fn is_not_found(&self) -> bool {
        matches!(self, ObjectError::NotFound { .. })
    }
}

/// The API server, as pod workers see it. Implemented by the cluster crate.
pub trait ApiObjects: Send + Sync {
    fn config_map<'a>(
        &'a self,
        namespace: &'a str,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Arc<ConfigMap>, ObjectError>>;

    fn secret<'a>(
        &'a self,
        namespace: &'a str,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Arc<Secret>, ObjectError>>;

    /// Services of `namespace` (for service environment variables).
    fn services<'a>(
        &'a self,
        namespace: &'a str,
    ) -> BoxFuture<'a, Result<Vec<Arc<Service>>, ObjectError>>;

    /// A token for the pod's service account (TokenRequest bound to the pod), cached
    /// and refreshed by the implementation.
    fn service_account_token<'a>(
        &'a self,
        pod: &'a Pod,
        spec: &'a TokenRequestSpec,
    ) -> BoxFuture<'a, Result<String, ObjectError>>;

    /// Bumped whenever a watched object changes, so workers refresh volumes promptly.
    fn changes(&self) -> watch::Receiver<u64>;

    /// The CRI handler of the RuntimeClass `name` (upstream's runtimeclass manager: a
    /// watched cache of node.k8s.io/v1 RuntimeClasses). A class that does not exist is
    /// [`ObjectError::NotFound`] with kind [`crate::runtime::runtime_class::RESOURCE`].
    fn runtime_handler<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<String, ObjectError>>;
}

/// Everything a pod references, as fetched for one sync.
#[derive(Debug, Clone, Default)]
pub struct PodApiData {
    pub config_maps: BTreeMap<String, Result<Arc<ConfigMap>, ObjectError>>,
    pub secrets: BTreeMap<String, Result<Arc<Secret>, ObjectError>>,
    pub tokens: BTreeMap<TokenRequestSpec, Result<String, ObjectError>>,
    /// Service environment variables (empty when the lookup failed; see `services_error`).
    pub service_env: Vec<(String, String)>,
    pub services_error: Option<ObjectError>,
}

impl PodApiData {
    pub fn config_map(&self, name: &str) -> Result<&ConfigMap, ObjectError> {
        match self.config_maps.get(name) {
            Some(Ok(cm)) => Ok(cm),
            Some(Err(e)) => Err(e.clone()),
            None => Err(ObjectError::Failed(format!(
                "configmap {name:?} was not fetched"
            ))),
        }
    }

    pub fn secret(&self, name: &str) -> Result<&Secret, ObjectError> {
        match self.secrets.get(name) {
            Some(Ok(s)) => Ok(s),
            Some(Err(e)) => Err(e.clone()),
            None => Err(ObjectError::Failed(format!(
                "secret {name:?} was not fetched"
            ))),
        }
    }

    pub fn token(&self, spec: &TokenRequestSpec) -> Result<&str, ObjectError> {
        match self.tokens.get(spec) {
            Some(Ok(t)) => Ok(t),
            Some(Err(e)) => Err(e.clone()),
            None => Err(ObjectError::Failed(
                "service account token was not fetched".into(),
            )),
        }
    }

    /// A secret value as text (Secret data is bytes).
    pub fn secret_value(secret: &Secret, key: &str) -> Option<String> {
        secret
            .data
            .as_ref()
            .and_then(|d| d.get(key))
            .map(|b| String::from_utf8_lossy(&b.0).into_owned())
    }
}

/// Fetch what `pod` references. `with_service_env` adds the service variables (only
/// needed when containers are about to be created).
pub async fn prefetch(api: &dyn ApiObjects, pod: &Pod, with_service_env: bool) -> PodApiData {
    let refs = PodRefs::of(pod);
    let namespace = pod.metadata.namespace.as_deref().unwrap_or("default");
    let mut data = PodApiData::default();
    for name in &refs.config_maps {
        data.config_maps
            .insert(name.clone(), api.config_map(namespace, name).await);
    }
    for name in &refs.secrets {
        data.secrets
            .insert(name.clone(), api.secret(namespace, name).await);
    }
    for spec in &refs.tokens {
        data.tokens
            .insert(spec.clone(), api.service_account_token(pod, spec).await);
    }
    if with_service_env {
        match service_env::fetch(api, pod).await {
            Ok(env) => data.service_env = env,
            Err(e) => data.services_error = Some(e),
        }
    }
    data
}
