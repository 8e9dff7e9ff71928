//! The QoS-level cgroups of upstream's QoS container manager, for both drivers:
//! `kubepods/besteffort` (`kubepods-besteffort.slice`) always has the minimum 2 cpu shares, `kubepods/burstable` the
//! shares of the summed cpu requests of the node's active Burstable pods (2 at least);
//! both have unbounded hugetlb limits. Rewritten whenever the active pods or their
//! requests change. Memory limits on these cgroups come upstream only with the alpha
//! `QOSReserved` feature gate; kubelet-rs does not implement it.

use std::collections::BTreeMap;
use std::sync::Mutex;

use k8s_openapi::api::core::v1::Pod;

use super::{CgroupLayout, QosClass, cpu_shares, node};

/// Values upstream writes on hugetlb limits it means as unbounded.
const UNBOUNDED_HUGETLB: i128 = 1 << 62;

/// The shares of the two QoS cgroups for the given Burstable pods' cpu requests.
pub fn qos_shares(burstable_cpu_requests_milli: impl Iterator<Item = i128>) -> (i64, i64) {
    (cpu_shares(burstable_cpu_requests_milli.sum()), 2)
}

/// What the QoS cgroups should hold, and what was last written.
#[derive(Debug, Default)]
struct State {
    /// Active Burstable pods by UID → their cpu request in millicores.
    burstable: BTreeMap<String, i128>,
    /// Burstable shares last written (None: nothing written yet).
    written: Option<i64>,
    /// MemoryQoS: active Guaranteed and Burstable pods by UID → class and memory request.
    memory: BTreeMap<String, (QosClass, i128)>,
    /// `memory.min` of (kubepods, burstable) last written.
    written_memory: Option<(i128, i128)>,
    /// A failure was already logged as a warning (later ones go to debug: every pod sync
    /// retries, e.g. when the kubelet runs without the right to write cgroups).
    warned: bool,
}

/// Keeps `kubepods/burstable` and `kubepods/besteffort` in step with the active pods.
#[derive(Debug)]
pub struct QosCgroups {
    layout: CgroupLayout,
    /// MemoryQoS (gate on, cgroup v2): `memory.min` on the burstable and kubepods cgroups.
    memory_qos: bool,
    state: Mutex<State>,
}

impl QosCgroups {
    pub fn new(layout: CgroupLayout) -> Self {
        QosCgroups {
            layout,
            memory_qos: false,
            state: Mutex::new(State::default()),
        }
    }

    /// With MemoryQoS, as upstream's QoS container manager: `burstable` gets `memory.min`
    /// = the Burstable pods' memory requests, `kubepods` = those plus the Guaranteed pods'.
    pub fn with_memory_qos(mut self, on: bool) -> Self {
        self.memory_qos = on;
        self
    }

    fn managed(&self) -> bool {
        self.layout.per_qos
    }

    /// Record whether `pod` is active (admitted and not finished) and rewrite the QoS
    /// cgroups if the Burstable total changed.
    pub fn track(&self, pod: &Pod, active: bool) {
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        let class = super::qos_class(pod);
        let request = (active && class == QosClass::Burstable).then(|| pod_cpu_request(pod));
        if self.memory_qos && self.managed() && !uid.is_empty() {
            let memory = (active && class != QosClass::BestEffort)
                .then(|| (class, super::pod_total(pod, false, "memory") / 1000));
            self.set_memory(&uid, memory);
        }
        self.set(&uid, request);
    }

    /// Record a pod's memory request (MemoryQoS) and rewrite `memory.min` if a sum changed.
    fn set_memory(&self, uid: &str, entry: Option<(QosClass, i128)>) {
        let mut state = crate::supervisor::lock(&self.state, "QoS cgroup state");
        match entry {
            Some(e) => state.memory.insert(uid.to_string(), e),
            None => state.memory.remove(uid),
        };
        let sums = memory_mins(state.memory.values().copied());
        if state.written_memory == Some(sums) {
            return;
        }
        let (kubepods, burstable) = sums;
        let write = |qos, bytes: i128| {
            self.layout.apply_cgroup(
                &self.layout.qos_name(qos),
                &[("memory.min".to_string(), bytes.to_string())],
            )
        };
        match write(QosClass::Burstable, burstable)
            .and_then(|()| write(QosClass::Guaranteed, kubepods))
        {
            Ok(()) => state.written_memory = Some(sums),
            Err(err) => tracing::warn!(error = %err, "cannot write memory.min of the QoS cgroups"),
        }
    }

    /// The pod is gone from the node.
    pub fn forget(&self, uid: &str) {
        if self.memory_qos && self.managed() && !uid.is_empty() {
            self.set_memory(uid, None);
        }
        self.set(uid, None);
    }

    fn set(&self, uid: &str, burstable_request: Option<i128>) {
        if !self.managed() || uid.is_empty() {
            return;
        }
        let mut state = crate::supervisor::lock(&self.state, "QoS cgroup state");
        match burstable_request {
            Some(milli) => state.burstable.insert(uid.to_string(), milli),
            None => state.burstable.remove(uid),
        };
        let (burstable, _) = qos_shares(state.burstable.values().copied());
        if state.written == Some(burstable) {
            return;
        }
        match self.write(burstable) {
            Ok(()) => {
                tracing::debug!(burstable_shares = burstable, "updated QoS cgroups");
                state.written = Some(burstable);
            }
            Err(err) if !state.warned => {
                state.warned = true;
                tracing::warn!(error = %err, "cannot update QoS cgroups");
            }
            Err(err) => tracing::debug!(error = %err, "cannot update QoS cgroups"),
        }
    }

    /// Create the QoS cgroups (in every hierarchy, or as systemd slices) and write
    /// their values (files a hierarchy lacks are skipped).
    fn write(&self, burstable_shares: i64) -> Result<(), String> {
        let sizes: Vec<String> = self
            .layout
            .host
            .page_sizes
            .iter()
            .map(|bytes| node::hugepage_cgroup_size(*bytes))
            .collect();
        for (qos, shares) in [
            (QosClass::Burstable, burstable_shares),
            (QosClass::BestEffort, 2),
        ] {
            let mut writes = vec![
                ("cpu.shares".to_string(), shares.to_string()),
                (
                    "cpu.weight".to_string(),
                    super::shares_to_weight(shares).to_string(),
                ),
            ];
            for size in &sizes {
                let v1 = UNBOUNDED_HUGETLB.to_string();
                writes.push((format!("hugetlb.{size}.limit_in_bytes"), v1));
                writes.push((format!("hugetlb.{size}.max"), "max".into()));
            }
            self.layout
                .apply_cgroup(&self.layout.qos_name(qos), &writes)?;
        }
        Ok(())
    }
}

/// `memory.min` of (kubepods, burstable): the Burstable pods' memory requests on
/// burstable, and those plus the Guaranteed pods' on kubepods (upstream setMemoryQoS).
fn memory_mins(pods: impl Iterator<Item = (QosClass, i128)>) -> (i128, i128) {
    let (mut guaranteed, mut burstable) = (0, 0);
    for (class, bytes) in pods {
        match class {
            QosClass::Guaranteed => guaranteed += bytes,
            QosClass::Burstable => burstable += bytes,
            QosClass::BestEffort => {}
        }
    }
    (guaranteed + burstable, burstable)
}

/// The pod's cpu request as upstream sums it for the Burstable tier.
fn pod_cpu_request(pod: &Pod) -> i128 {
    super::pod_total(pod, false, "cpu")
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{Container, PodSpec, ResourceRequirements};
    use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn pod(uid: &str, cpu_request: Option<&str>) -> Pod {
        Pod {
            metadata: ObjectMeta {
                uid: Some(uid.into()),
                ..Default::default()
            },
            spec: Some(PodSpec {
                containers: vec![Container {
                    name: "c".into(),
                    resources: cpu_request.map(|q| ResourceRequirements {
                        requests: Some([("cpu".to_string(), Quantity(q.into()))].into()),
                        ..Default::default()
                    }),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn shares_follow_the_burstable_requests() {
        assert_eq!(qos_shares([].into_iter()), (2, 2));
        assert_eq!(qos_shares([250, 500].into_iter()), (768, 2));
        assert_eq!(pod_cpu_request(&pod("a", Some("250m"))), 250);

        // Unmanaged layouts (no per-QoS cgroups) never touch the filesystem.
        let flat = QosCgroups::new(CgroupLayout {
            per_qos: false,
            root: "/".into(),
            systemd: false,
            host: Default::default(),
        });
        flat.track(&pod("a", Some("250m")), true);
        assert!(flat.state.lock().unwrap().burstable.is_empty());
    }

    #[test]
    fn memory_min_sums_per_tier() {
        assert_eq!(memory_mins([].into_iter()), (0, 0));
        let pods = [
            (QosClass::Guaranteed, 100),
            (QosClass::Burstable, 30),
            (QosClass::Burstable, 20),
            (QosClass::BestEffort, 999),
        ];
        assert_eq!(memory_mins(pods.into_iter()), (150, 50));
    }
}
