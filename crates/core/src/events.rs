//! Kubernetes Events about pods, as the upstream kubelet records them (reasons Pulling,
//! Pulled, Created, Started, Killing, BackOff, Failed, FailedMount ...). Core code only
//! *records* through [`EventSink`]; where they go is the binary's choice: nowhere in
//! standalone mode ([`NoEvents`]), the API server in cluster mode.

use std::sync::Arc;

use k8s_openapi::api::core::v1::Pod;

/// `Normal` or `Warning`, as in `Event.type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventType {
    Normal,
    Warning,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Normal => "Normal",
            EventType::Warning => "Warning",
        }
    }
}

/// One event about a pod (or one of its containers, named by `field_path`, e.g.
/// `spec.containers{nginx}`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodEvent {
    pub namespace: String,
    pub pod_name: String,
    pub pod_uid: String,
    pub field_path: Option<String>,
    pub event_type: EventType,
    pub reason: String,
    pub message: String,
}

impl PodEvent {
    pub fn new(pod: &Pod, event_type: EventType, reason: &str, message: impl Into<String>) -> Self {
        PodEvent {
            namespace: pod.metadata.namespace.clone().unwrap_or_default(),
            pod_name: pod.metadata.name.clone().unwrap_or_default(),
            pod_uid: pod.metadata.uid.clone().unwrap_or_default(),
            field_path: None,
            event_type,
            reason: reason.to_string(),
            message: message.into(),
        }
    }

    /// The event concerns container `name` (`spec.containers{name}` or
    /// `spec.initContainers{name}`).
    pub fn for_container(mut self, pod: &Pod, name: &str) -> Self {
        let init = pod
            .spec
            .as_ref()
            .and_then(|s| s.init_containers.as_ref())
            .is_some_and(|cs| cs.iter().any(|c| c.name == name));
        let list = if init { "initContainers" } else { "containers" };
        self.field_path = Some(format!("spec.{list}{{{name}}}"));
        self
    }
}

/// Where events go. `record` never blocks and never fails: a sink that cannot keep up
/// drops events, as upstream's does.
pub trait EventSink: Send + Sync {
    fn record(&self, event: PodEvent);
}

/// Standalone mode: events are only logged at debug level.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoEvents;

impl EventSink for NoEvents {
    fn record(&self, event: PodEvent) {
        tracing::debug!(pod = %event.pod_name, namespace = %event.namespace, reason = %event.reason, message = %event.message, "event");
    }
}

/// A shared sink that drops everything (the default for a worker context).
pub fn no_events() -> Arc<dyn EventSink> {
    Arc::new(NoEvents)
}
