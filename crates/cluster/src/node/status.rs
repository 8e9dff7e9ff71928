//! The Node's status from what the kubelet knows (pure): capacity and allocatable,
//! conditions, addresses, nodeInfo, images, daemon endpoints.

use k8s_openapi::api::core::v1::{
    ContainerImage, DaemonEndpoint, NodeAddress, NodeDaemonEndpoints, NodeStatus, NodeSystemInfo,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::capacity::Resources;
use super::conditions::{self, Pressure, Readiness};

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
        // Fields the kubelet does not own are kept.
        volumes_attached: previous.and_then(|s| s.volumes_attached.clone()),
        volumes_in_use: previous.and_then(|s| s.volumes_in_use.clone()),
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

    #[test]
    fn heartbeat_only_changes_are_not_changes() {
        let facts = NodeFacts {
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
        };
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
}
