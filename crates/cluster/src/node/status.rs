//! The Node's status from what the kubelet knows (pure): capacity and allocatable,
//! conditions, addresses, nodeInfo, images, daemon endpoints.

use k8s_openapi::api::core::v1::{
    ContainerImage, DaemonEndpoint, NodeAddress, NodeDaemonEndpoints, NodeStatus, NodeSystemInfo,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::capacity::Resources;
use super::conditions::{self, Pressure, Readiness};
use super::runtime_features::RuntimeFeatures;

/// Everything one status update reports.
#[derive(Debug, Clone)]
pub struct NodeFacts {
    pub resources: Resources,
    pub addresses: Vec<NodeAddress>,
    pub info: NodeSystemInfo,
    pub images: Vec<ContainerImage>,
    pub readiness: Readiness,
    pub pressure: Pressure,
    pub kubelet_port: i32,
    pub runtime: RuntimeFeatures,
}

pub fn build(previous: Option<&NodeStatus>, facts: &NodeFacts, now: &Time) -> NodeStatus {
    let prev_conditions = previous
        .and_then(|s| s.conditions.clone())
        .unwrap_or_default();
    NodeStatus {
        capacity: Some(facts.resources.capacity.clone()),
        allocatable: Some(facts.resources.allocatable.clone()),
        conditions: Some(conditions::build(
            &prev_conditions,
            &facts.readiness,
            facts.pressure,
            now,
        )),
        addresses: Some(facts.addresses.clone()),
        daemon_endpoints: Some(NodeDaemonEndpoints {
            kubelet_endpoint: Some(DaemonEndpoint {
                port: facts.kubelet_port,
            }),
        }),
        node_info: Some(facts.info.clone()),
        images: Some(facts.images.clone()),
        runtime_handlers: (!facts.runtime.handlers.is_empty())
            .then(|| facts.runtime.handlers.clone()),
        features: facts.runtime.features.clone(),
        // Upstream lists only attachable or device-mountable volumes (CSI, iSCSI, ...)
        // in volumesInUse; every volume this kubelet mounts (emptyDir, hostPath,
        // configMap, secret, projected, downwardAPI) is neither, so the list is empty.
        volumes_in_use: None,
        // Fields the kubelet does not own are kept (volumesAttached is the attach/detach
        // controller's).
        volumes_attached: previous.and_then(|s| s.volumes_attached.clone()),
        config: previous.and_then(|s| s.config.clone()),
        ..Default::default()
    }
}

/// Whether two statuses differ only in condition heartbeat times (then there is nothing
/// new to report until `nodeStatusReportFrequency` passes).
pub fn same_but_heartbeats(a: &NodeStatus, b: &NodeStatus) -> bool {
    let strip = |s: &NodeStatus| {
        let mut s = s.clone();
        for c in s.conditions.iter_mut().flatten() {
            c.last_heartbeat_time = None;
        }
        s
    };
    strip(a) == strip(b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::jiff::Timestamp;

    /// Facts of a node that reports nothing beyond its kubelet port.
    fn empty_facts() -> NodeFacts {
        NodeFacts {
            resources: Resources {
                capacity: Default::default(),
                allocatable: Default::default(),
            },
            addresses: vec![],
            info: Default::default(),
            images: vec![],
            readiness: Readiness::default(),
            pressure: Pressure::default(),
            kubelet_port: 10250,
            runtime: RuntimeFeatures::default(),
        }
    }

    #[test]
    fn heartbeat_only_changes_are_not_changes() {
        let facts = empty_facts();
        let t1 = Time(Timestamp::from_second(1).unwrap());
        let t2 = Time(Timestamp::from_second(2).unwrap());
        let a = build(None, &facts, &t1);
        let b = build(Some(&a), &facts, &t2);
        assert_ne!(a, b);
        assert!(same_but_heartbeats(&a, &b));
        assert_eq!(
            b.daemon_endpoints.unwrap().kubelet_endpoint.unwrap().port,
            10250
        );
        let mut not_ready = facts.clone();
        not_ready
            .readiness
            .errors
            .push("container runtime is down".into());
        let c = build(Some(&a), &not_ready, &t2);
        assert!(!same_but_heartbeats(&a, &c));
    }

    #[test]
    fn runtime_handlers_features_and_volumes() {
        use k8s_openapi::api::core::v1::{NodeFeatures, NodeRuntimeHandler};
        let mut facts = empty_facts();
        let t = Time(Timestamp::from_second(1).unwrap());
        let previous = NodeStatus {
            volumes_in_use: Some(vec!["kubernetes.io/csi/x".into()]),
            ..Default::default()
        };
        let s = build(Some(&previous), &facts, &t);
        assert!(s.runtime_handlers.is_none() && s.features.is_none());
        assert!(s.volumes_in_use.is_none(), "no attachable volumes in use");
        facts.runtime = RuntimeFeatures {
            handlers: vec![NodeRuntimeHandler {
                name: Some(String::new()),
                features: None,
            }],
            features: Some(NodeFeatures {
                supplemental_groups_policy: Some(false),
            }),
        };
        let s = build(None, &facts, &t);
        assert_eq!(s.runtime_handlers.unwrap().len(), 1);
        assert_eq!(s.features.unwrap().supplemental_groups_policy, Some(false));
    }
}
