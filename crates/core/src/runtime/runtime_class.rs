//! RuntimeClass: which CRI runtime handler a pod's sandbox runs with.
//!
//! Cluster mode resolves `spec.runtimeClassName` through the API server's RuntimeClasses
//! (upstream's runtimeclass manager), at sandbox creation: a class that does not exist
//! fails the sandbox with upstream's error (`runtimeclasses.node.k8s.io "x" not found`),
//! retried like any sandbox failure. The RuntimeClass's overhead and scheduling reach the
//! pod through the API server's RuntimeClass admission (spec.overhead, nodeSelector,
//! tolerations), as upstream; the kubelet reads them from the pod.
//!
//! Standalone mode has no API server (upstream then ignores runtimeClassName and uses the
//! default handler). kubelet-rs never ignores it: a pod naming a RuntimeClass is refused
//! at admission unless `--runtime-class-handlers=NAME=HANDLER` (a kubelet-rs extension)
//! maps the name.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Pod;

use crate::cm::admission::{AdmitHandler, Rejection};
use crate::objects::ApiObjects;

/// The API resource, as upstream names it in NotFound errors.
pub const RESOURCE: &str = "runtimeclasses.node.k8s.io";

/// The pod's `spec.runtimeClassName`, if set and not empty (empty means the default).
pub fn class_name(pod: &Pod) -> Option<&str> {
    pod.spec
        .as_ref()
        .and_then(|s| s.runtime_class_name.as_deref())
        .filter(|n| !n.is_empty())
}

fn standalone_message(name: &str) -> String {
    format!(
        "RuntimeClass {name:?} cannot be resolved without an API server: map it to a CRI runtime handler with --runtime-class-handlers={name}=HANDLER"
    )
}

/// The handler for `pod` in standalone mode, from the `--runtime-class-handlers` map.
pub fn standalone_handler(
    handlers: &BTreeMap<String, String>,
    pod: &Pod,
) -> Result<String, String> {
    match class_name(pod) {
        None => Ok(String::new()),
        Some(name) => handlers
            .get(name)
            .cloned()
            .ok_or_else(|| standalone_message(name)),
    }
}

/// The runtime handler to run `pod`'s sandbox with. The error is the text upstream puts
/// after "Failed to create pod sandbox: ".
pub async fn runtime_handler(
    pod: &Pod,
    api: Option<&dyn ApiObjects>,
    standalone: &BTreeMap<String, String>,
) -> Result<String, String> {
    let Some(name) = class_name(pod) else {
        return Ok(String::new());
    };
    match api {
        Some(api) => api.runtime_handler(name).await.map_err(|e| e.to_string()),
        None => standalone_handler(standalone, pod),
    }
}

/// Standalone admission: a pod naming a RuntimeClass the flag does not map is refused.
#[derive(Debug)]
pub struct StandaloneRuntimeClassAdmission {
    pub handlers: BTreeMap<String, String>,
}

impl AdmitHandler for StandaloneRuntimeClassAdmission {
    fn admit(&self, pod: &Pod) -> Result<(), Rejection> {
        standalone_handler(&self.handlers, pod)
            .map(|_| ())
            .map_err(|e| Rejection {
                reason: "RuntimeClassNotConfigured".into(),
                message: format!("Pod was rejected: {e}"),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::objects::{BoxFuture, ObjectError, TokenRequestSpec};
    use k8s_openapi::api::core::v1::{ConfigMap, PodSpec, Secret, Service};
    use std::sync::Arc;
    use tokio::sync::watch;

    fn pod(class: Option<&str>) -> Pod {
        Pod {
            spec: Some(PodSpec {
                runtime_class_name: class.map(str::to_string),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    struct Classes(BTreeMap<String, String>);

    impl ApiObjects for Classes {
        fn config_map<'a>(
            &'a self,
            _: &'a str,
            _: &'a str,
        ) -> BoxFuture<'a, Result<Arc<ConfigMap>, ObjectError>> {
            unimplemented!()
        }
        fn secret<'a>(
            &'a self,
            _: &'a str,
            _: &'a str,
        ) -> BoxFuture<'a, Result<Arc<Secret>, ObjectError>> {
            unimplemented!()
        }
        fn services<'a>(
            &'a self,
            _: &'a str,
        ) -> BoxFuture<'a, Result<Vec<Arc<Service>>, ObjectError>> {
            unimplemented!()
        }
        fn service_account_token<'a>(
            &'a self,
            _: &'a Pod,
            _: &'a TokenRequestSpec,
        ) -> BoxFuture<'a, Result<String, ObjectError>> {
            unimplemented!()
        }
        fn changes(&self) -> watch::Receiver<u64> {
            unimplemented!()
        }
        fn runtime_handler<'a>(
            &'a self,
            name: &'a str,
        ) -> BoxFuture<'a, Result<String, ObjectError>> {
            Box::pin(async move {
                self.0.get(name).cloned().ok_or(ObjectError::NotFound {
                    kind: RESOURCE,
                    name: name.to_string(),
                })
            })
        }
    }

    #[tokio::test]
    async fn cluster_mode_resolves_through_the_api_with_upstreams_not_found() {
        let api = Classes([("fast".to_string(), "runc-alt".to_string())].into());
        let none = BTreeMap::new();
        assert_eq!(
            runtime_handler(&pod(Some("fast")), Some(&api), &none).await,
            Ok("runc-alt".into())
        );
        assert_eq!(
            runtime_handler(&pod(None), Some(&api), &none).await,
            Ok(String::new())
        );
        assert_eq!(
            runtime_handler(&pod(Some("")), Some(&api), &none).await,
            Ok(String::new()),
            "an empty name is the default class"
        );
        assert_eq!(
            runtime_handler(&pod(Some("gone")), Some(&api), &none).await,
            Err("runtimeclasses.node.k8s.io \"gone\" not found".into())
        );
    }

    #[tokio::test]
    async fn standalone_mode_uses_the_flag_map_or_refuses() {
        let map: BTreeMap<String, String> = [("fast".to_string(), "runc-alt".to_string())].into();
        assert_eq!(
            runtime_handler(&pod(Some("fast")), None, &map).await,
            Ok("runc-alt".into())
        );
        let admission = StandaloneRuntimeClassAdmission { handlers: map };
        assert!(admission.admit(&pod(None)).is_ok());
        assert!(admission.admit(&pod(Some("fast"))).is_ok());
        let r = admission.admit(&pod(Some("gvisor"))).unwrap_err();
        assert_eq!(r.reason, "RuntimeClassNotConfigured");
        assert_eq!(
            r.message,
            "Pod was rejected: RuntimeClass \"gvisor\" cannot be resolved without an API server: map it to a CRI runtime handler with --runtime-class-handlers=gvisor=HANDLER"
        );
    }
}
