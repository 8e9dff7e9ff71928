//! What pod workers need from the API server ([`kubelet_core::objects::ApiObjects`]):
//! watched ConfigMaps and Secrets, Services, service account tokens and RuntimeClasses.

pub mod runtime_classes;
pub mod services;
pub mod tokens;
pub mod watched;

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{ConfigMap, Pod, Secret, Service};
use kubelet_core::objects::{ApiObjects, BoxFuture, ObjectError, TokenRequestSpec};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

pub struct ClusterObjects {
    config_maps: watched::WatchedObjects<ConfigMap>,
    secrets: watched::WatchedObjects<Secret>,
    services: services::Services,
    tokens: tokens::Tokens,
    runtime_classes: runtime_classes::RuntimeClasses,
    generation: Arc<watch::Sender<u64>>,
}

impl ClusterObjects {
    pub fn new(client: kube::Client, cancel: CancellationToken) -> Arc<Self> {
        let generation = Arc::new(watch::Sender::new(0));
        let objects = Arc::new(ClusterObjects {
            config_maps: watched::WatchedObjects::new(
                client.clone(),
                "configmap",
                generation.clone(),
                cancel.clone(),
            ),
            secrets: watched::WatchedObjects::new(
                client.clone(),
                "secret",
                generation.clone(),
                cancel.clone(),
            ),
            services: services::Services::new(client.clone(), cancel.clone()),
            runtime_classes: runtime_classes::RuntimeClasses::new(client.clone(), cancel.clone()),
            tokens: tokens::Tokens::new(client, generation.clone()),
            generation,
        });
        let janitor = Arc::downgrade(&objects);
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    _ = tokio::time::sleep(Duration::from_secs(60)) => {}
                }
                let Some(o) = janitor.upgrade() else { return };
                o.config_maps.expire_unused();
                o.secrets.expire_unused();
                o.tokens.expire_unused();
            }
        });
        objects
    }
}

impl ApiObjects for ClusterObjects {
    fn config_map<'a>(
        &'a self,
        namespace: &'a str,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Arc<ConfigMap>, ObjectError>> {
        Box::pin(self.config_maps.get(namespace, name))
    }

    fn secret<'a>(
        &'a self,
        namespace: &'a str,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Arc<Secret>, ObjectError>> {
        Box::pin(self.secrets.get(namespace, name))
    }

    fn services<'a>(
        &'a self,
        namespace: &'a str,
    ) -> BoxFuture<'a, Result<Vec<Arc<Service>>, ObjectError>> {
        Box::pin(self.services.in_namespace(namespace))
    }

    fn service_account_token<'a>(
        &'a self,
        pod: &'a Pod,
        spec: &'a TokenRequestSpec,
    ) -> BoxFuture<'a, Result<String, ObjectError>> {
        Box::pin(self.tokens.get(pod, spec))
    }

    fn changes(&self) -> watch::Receiver<u64> {
        self.generation.subscribe()
    }

    fn runtime_handler<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<String, ObjectError>> {
        Box::pin(self.runtime_classes.handler(name))
    }
}
