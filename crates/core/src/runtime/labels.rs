//! CRI labels and annotations the kubelet puts on sandboxes and containers, with the
//! upstream keys, and the container hash that tells whether a running container still
//! matches its spec.

use std::collections::HashMap;

use k8s_openapi::api::core::v1::{Container, Pod};

pub const POD_NAME: &str = "io.kubernetes.pod.name";
pub const POD_NAMESPACE: &str = "io.kubernetes.pod.namespace";
pub const POD_UID: &str = "io.kubernetes.pod.uid";
pub const CONTAINER_NAME: &str = "io.kubernetes.container.name";
pub const CONTAINER_HASH: &str = "io.kubernetes.container.hash";
pub const CONTAINER_RESTART_COUNT: &str = "io.kubernetes.container.restartCount";
pub const CONTAINER_TERMINATION_MESSAGE_PATH: &str =
    "io.kubernetes.container.terminationMessagePath";
pub const CONTAINER_TERMINATION_MESSAGE_POLICY: &str =
    "io.kubernetes.container.terminationMessagePolicy";
pub const CONTAINER_PORTS: &str = "io.kubernetes.container.ports";
pub const POD_TERMINATION_GRACE_PERIOD: &str = "io.kubernetes.pod.terminationGracePeriod";
pub const POD_DELETION_GRACE_PERIOD: &str = "io.kubernetes.pod.deletionGracePeriod";
/// The container's preStop handler as JSON, so it can still run when the spec is gone
/// (the pod's manifest was removed while the kubelet was down).
pub const CONTAINER_PRE_STOP_HANDLER: &str = "io.kubernetes.container.preStopHandler";
/// `init`, `container` or `ephemeral`: which list of the spec the container came from.
pub const CONTAINER_TYPE: &str = "io.kubernetes.container.type";
/// kubelet-rs only: which node (kubelet) created this sandbox or container. Everything the
/// kubelet lists, adopts or removes carries it, so pods of another kubelet sharing the
/// runtime, and containers made by hand, are never touched.
pub const MANAGED_BY_NODE: &str = "kubelet-rs.io/node";

fn pod_identity(pod: &Pod, node_name: &str) -> HashMap<String, String> {
    let meta = &pod.metadata;
    HashMap::from([
        (POD_NAME.to_string(), meta.name.clone().unwrap_or_default()),
        (
            POD_NAMESPACE.to_string(),
            meta.namespace.clone().unwrap_or_default(),
        ),
        (POD_UID.to_string(), meta.uid.clone().unwrap_or_default()),
        (MANAGED_BY_NODE.to_string(), node_name.to_string()),
    ])
}

/// The pod's own labels plus the identity labels (identity wins on a clash).
pub fn sandbox_labels(pod: &Pod, node_name: &str) -> HashMap<String, String> {
    let mut labels: HashMap<String, String> = pod
        .metadata
        .labels
        .iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    labels.extend(pod_identity(pod, node_name));
    labels
}

pub fn sandbox_annotations(pod: &Pod) -> HashMap<String, String> {
    pod.metadata
        .annotations
        .iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

pub fn container_labels(
    pod: &Pod,
    container: &Container,
    node_name: &str,
) -> HashMap<String, String> {
    let mut labels = pod_identity(pod, node_name);
    labels.insert(CONTAINER_NAME.to_string(), container.name.clone());
    labels
}

pub fn container_annotations(
    pod: &Pod,
    container: &Container,
    restart_count: u32,
) -> HashMap<String, String> {
    let mut ann = HashMap::from([
        (CONTAINER_HASH.to_string(), container_hash(container)),
        (
            CONTAINER_RESTART_COUNT.to_string(),
            restart_count.to_string(),
        ),
        (
            CONTAINER_TERMINATION_MESSAGE_PATH.to_string(),
            container
                .termination_message_path
                .clone()
                .unwrap_or_else(|| "/dev/termination-log".into()),
        ),
        (
            CONTAINER_TERMINATION_MESSAGE_POLICY.to_string(),
            container
                .termination_message_policy
                .clone()
                .unwrap_or_else(|| "File".into()),
        ),
        (
            POD_TERMINATION_GRACE_PERIOD.to_string(),
            termination_grace_seconds(pod).to_string(),
        ),
    ]);
    if let Some(ports) = container.ports.as_ref().filter(|p| !p.is_empty())
        && let Ok(json) = serde_json::to_string(ports)
    {
        ann.insert(CONTAINER_PORTS.to_string(), json);
    }
    if let Some(grace) = pod.metadata.deletion_grace_period_seconds {
        ann.insert(POD_DELETION_GRACE_PERIOD.to_string(), grace.to_string());
    }
    if let Some(handler) = container
        .lifecycle
        .as_ref()
        .and_then(|l| l.pre_stop.as_ref())
        && let Ok(json) = serde_json::to_string(handler)
    {
        ann.insert(CONTAINER_PRE_STOP_HANDLER.to_string(), json);
    }
    if let Some(kind) = container_type(pod, &container.name) {
        ann.insert(CONTAINER_TYPE.to_string(), kind.to_string());
    }
    ann
}

fn container_type(pod: &Pod, name: &str) -> Option<&'static str> {
    let spec = pod.spec.as_ref()?;
    if spec
        .init_containers
        .iter()
        .flatten()
        .any(|c| c.name == name)
    {
        Some("init")
    } else if spec.containers.iter().any(|c| c.name == name) {
        Some("container")
    } else if spec
        .ephemeral_containers
        .iter()
        .flatten()
        .any(|c| c.name == name)
    {
        Some("ephemeral")
    } else {
        None
    }
}

/// What can be rebuilt of a container's spec from its annotations when the pod's spec
/// no longer has it (upstream restoreSpecsFromContainerLabels): its name, ports,
/// termination message path and preStop hook. Nothing else may be read from it. A bad
/// annotation is logged and left out.
pub fn restore_container(name: &str, annotations: &HashMap<String, String>) -> Container {
    let mut container = Container {
        name: name.to_string(),
        termination_message_path: annotations.get(CONTAINER_TERMINATION_MESSAGE_PATH).cloned(),
        ..Default::default()
    };
    if let Some(raw) = annotations.get(CONTAINER_PORTS) {
        match serde_json::from_str(raw) {
            Ok(ports) => container.ports = Some(ports),
            Err(err) => {
                tracing::warn!(container = %name, annotation = CONTAINER_PORTS, error = %err, "cannot read container annotation")
            }
        }
    }
    if let Some(raw) = annotations.get(CONTAINER_PRE_STOP_HANDLER) {
        match serde_json::from_str(raw) {
            Ok(handler) => {
                container.lifecycle = Some(k8s_openapi::api::core::v1::Lifecycle {
                    pre_stop: Some(handler),
                    ..Default::default()
                })
            }
            Err(err) => {
                tracing::warn!(container = %name, annotation = CONTAINER_PRE_STOP_HANDLER, error = %err, "cannot read container annotation")
            }
        }
    }
    container
}

/// The grace period a container's annotations give when its pod's spec is gone: the
/// deletion grace period if the pod was being deleted, else the pod's termination grace
/// period (upstream's order).
pub fn restored_grace_seconds(annotations: &HashMap<String, String>) -> Option<i64> {
    [POD_DELETION_GRACE_PERIOD, POD_TERMINATION_GRACE_PERIOD]
        .iter()
        .find_map(|k| annotations.get(*k).and_then(|v| v.parse::<i64>().ok()))
        .map(|g| g.max(0))
}

pub fn termination_grace_seconds(pod: &Pod) -> i64 {
    pod.spec
        .as_ref()
        .and_then(|s| s.termination_grace_period_seconds)
        .unwrap_or(30)
        .max(0)
}

/// FNV-1a 64 over the container's JSON with `resources` cleared (resizing resources must
/// not restart a container, as upstream), printed as hex.
pub fn container_hash(container: &Container) -> String {
    let mut c = container.clone();
    c.resources = None;
    c.resize_policy = None;
    let json = serde_json::to_vec(&c).unwrap_or_default();
    format!("{:x}", fnv1a64(&json))
}

fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        hash ^= u64::from(*b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

/// Parse a restart count annotation; a missing or bad one counts as 0.
pub fn restart_count(annotations: &HashMap<String, String>) -> u32 {
    annotations
        .get(CONTAINER_RESTART_COUNT)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{PodSpec, ResourceRequirements};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn container(image: &str) -> Container {
        Container {
            name: "c".into(),
            image: Some(image.into()),
            ..Default::default()
        }
    }

    #[test]
    fn hash_changes_with_spec_but_not_resources() {
        let a = container("busybox:1");
        let b = container("busybox:2");
        assert_ne!(container_hash(&a), container_hash(&b));
        let mut r = a.clone();
        r.resources = Some(ResourceRequirements::default());
        assert_eq!(container_hash(&a), container_hash(&r));
        assert_eq!(container_hash(&a), container_hash(&a.clone()));
    }

    #[test]
    fn fnv_known_vectors() {
        assert_eq!(fnv1a64(b""), 0xcbf29ce484222325);
        assert_eq!(fnv1a64(b"a"), 0xaf63dc4c8601ec8c);
    }

    #[test]
    fn identity_labels_win_over_pod_labels() {
        let pod = Pod {
            metadata: ObjectMeta {
                name: Some("web-node1".into()),
                namespace: Some("default".into()),
                uid: Some("u1".into()),
                labels: Some([(POD_UID.to_string(), "forged".to_string())].into()),
                ..Default::default()
            },
            spec: Some(PodSpec::default()),
            ..Default::default()
        };
        let labels = sandbox_labels(&pod, "node1");
        assert_eq!(labels[POD_UID], "u1");
        assert_eq!(labels[MANAGED_BY_NODE], "node1");
        let c = container("busybox");
        let ann = container_annotations(&pod, &c, 3);
        assert_eq!(restart_count(&ann), 3);
        assert_eq!(ann[POD_TERMINATION_GRACE_PERIOD], "30");
        assert_eq!(
            ann[CONTAINER_TERMINATION_MESSAGE_PATH],
            "/dev/termination-log"
        );
        assert!(!ann.contains_key(CONTAINER_PRE_STOP_HANDLER));
        assert!(!ann.contains_key(POD_DELETION_GRACE_PERIOD));
    }

    #[test]
    fn pre_stop_and_ports_survive_the_spec() {
        use k8s_openapi::api::core::v1::{ContainerPort, ExecAction, Lifecycle, LifecycleHandler};
        let handler = LifecycleHandler {
            exec: Some(ExecAction {
                command: Some(vec!["sh".into(), "-c".into(), "echo bye".into()]),
            }),
            ..Default::default()
        };
        let c = Container {
            name: "web".into(),
            image: Some("busybox".into()),
            termination_message_path: Some("/tmp/msg".into()),
            ports: Some(vec![ContainerPort {
                name: Some("http".into()),
                container_port: 8080,
                ..Default::default()
            }]),
            lifecycle: Some(Lifecycle {
                pre_stop: Some(handler.clone()),
                ..Default::default()
            }),
            ..Default::default()
        };
        let pod = Pod {
            metadata: ObjectMeta {
                deletion_grace_period_seconds: Some(7),
                ..Default::default()
            },
            spec: Some(PodSpec {
                containers: vec![c.clone()],
                termination_grace_period_seconds: Some(12),
                ..Default::default()
            }),
            ..Default::default()
        };
        let ann = container_annotations(&pod, &c, 0);
        assert_eq!(ann[CONTAINER_TYPE], "container");
        let restored = restore_container("web", &ann);
        assert_eq!(restored.name, "web");
        assert_eq!(
            restored.lifecycle.and_then(|l| l.pre_stop),
            Some(handler),
            "the preStop handler round-trips"
        );
        assert_eq!(restored.ports, c.ports);
        assert_eq!(
            restored.termination_message_path.as_deref(),
            Some("/tmp/msg")
        );
        // The deletion grace period wins over the pod's termination grace period.
        assert_eq!(restored_grace_seconds(&ann), Some(7));
        let mut ann = ann;
        ann.remove(POD_DELETION_GRACE_PERIOD);
        assert_eq!(restored_grace_seconds(&ann), Some(12));
        // A damaged annotation is left out, not fatal.
        ann.insert(CONTAINER_PRE_STOP_HANDLER.into(), "{not json".into());
        assert!(restore_container("web", &ann).lifecycle.is_none());
        assert_eq!(restored_grace_seconds(&HashMap::new()), None);
    }
}
