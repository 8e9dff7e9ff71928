//! The container memory settings upstream's kuberuntime adds to the CRI resources beside
//! the limits: swap (`memorySwap.swapBehavior`, NodeSwap), on cgroup v2 OOM kills of the
//! whole container (`singleProcessOOMKill: false`, the v2 default: `memory.oom.group`) and
//! MemoryQoS (alpha gate: `memory.min` from the request, `memory.high` throttling before
//! the limit).

use std::path::Path;

use k8s_cri::v1 as cri;
use k8s_openapi::api::core::v1::{Container, Pod};

use kubelet_primitives::quantity;

use super::{QosClass, qos_class, resource};

/// How containers may use swap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SwapBehavior {
    /// No swap for any container (`""` or `NoSwap`).
    #[default]
    NoSwap,
    /// Burstable containers get swap in proportion to their memory request.
    LimitedSwap,
}

impl SwapBehavior {
    /// The config value (validated already: `""`, `NoSwap` or `LimitedSwap`).
    pub fn from_config(value: &str) -> Self {
        if value == "LimitedSwap" {
            SwapBehavior::LimitedSwap
        } else {
            SwapBehavior::NoSwap
        }
    }
}

/// The host facts and settings these decisions need, read once at start.
#[derive(Debug, Clone, Default)]
pub struct MemoryPolicy {
    pub cgroup_v2: bool,
    /// The swap controller is there: v2 `memory.swap.max` in the kubelet's own cgroup,
    /// v1 `memory.memsw.limit_in_bytes` (upstream's test).
    pub swap_controller: bool,
    /// SwapTotal, in bytes.
    pub swap_capacity: i128,
    pub swap_behavior: SwapBehavior,
    /// The NodeSwap feature gate.
    pub node_swap: bool,
    /// `singleProcessOOMKill` as configured; unset means true on v1, false on v2.
    pub single_process_oom_kill: Option<bool>,
    /// MemoryQoS on a cgroup v2 host: `memory.min` and `memory.high`.
    pub memory_qos: Option<MemoryQos>,
}

/// MemoryQoS settings (the gate on, cgroup v2).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MemoryQos {
    /// `memoryThrottlingFactor` (default 0.9).
    pub throttling_factor: f64,
    /// Node allocatable memory: `memory.high` of a container without a memory limit.
    pub allocatable_memory: i128,
}

/// The page size `memory.high` is rounded down to, as upstream (its Go default).
const PAGE_SIZE: i128 = 4096;

impl MemoryPolicy {
    /// Reads the host facts; `cgroup_v2` comes from the detected hierarchy.
    pub fn on_host(
        cgroup_v2: bool,
        swap_behavior: SwapBehavior,
        node_swap: bool,
        single_process_oom_kill: Option<bool>,
    ) -> Self {
        let swap_controller = if cgroup_v2 {
            let own = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
            own.lines()
                .find_map(|l| l.strip_prefix("0::"))
                .is_some_and(|p| {
                    Path::new("/sys/fs/cgroup")
                        .join(p.trim_start_matches('/'))
                        .join("memory.swap.max")
                        .exists()
                })
        } else {
            Path::new("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes").exists()
        };
        let swap_capacity = super::meminfo_bytes("SwapTotal").unwrap_or(0);
        MemoryPolicy {
            cgroup_v2,
            swap_controller,
            swap_capacity,
            swap_behavior,
            node_swap,
            single_process_oom_kill,
            memory_qos: None,
        }
    }

    /// MemoryQoS, when the gate is on and the host runs cgroup v2 (upstream enforces it
    /// only there).
    pub fn with_memory_qos(mut self, gate: bool, qos: MemoryQos) -> Self {
        self.memory_qos = (gate && self.cgroup_v2).then_some(qos);
        self
    }

    /// Adds the swap, OOM-group and MemoryQoS settings to a container's CRI resources.
    pub fn apply(
        &self,
        resources: &mut cri::LinuxContainerResources,
        pod: &Pod,
        container: &Container,
        memory_capacity: i128,
    ) {
        if self.cgroup_v2 && !self.single_process_oom_kill.unwrap_or(false) {
            resources
                .unified
                .insert("memory.oom.group".into(), "1".into());
        }
        if let Some(qos) = &self.memory_qos {
            for (file, value) in memory_qos_files(container, qos) {
                resources.unified.insert(file.into(), value.to_string());
            }
        }
        if !self.swap_controller {
            return;
        }
        match self.container_swap(pod, container, memory_capacity) {
            Some(bytes) if self.cgroup_v2 => {
                resources
                    .unified
                    .insert("memory.swap.max".into(), bytes.to_string());
            }
            // v1 has no LimitedSwap: memory+swap capped at the memory limit (0: unset).
            _ if !self.cgroup_v2 => {
                resources.memory_swap_limit_in_bytes = resources.memory_limit_in_bytes;
            }
            _ => {
                resources
                    .unified
                    .insert("memory.swap.max".into(), "0".into());
            }
        }
    }

    /// The swap a container may use under LimitedSwap: Burstable, not critical, with a
    /// memory request below its limit gets request / capacity of the node's swap. `None`
    /// means no swap (NoSwap).
    fn container_swap(&self, pod: &Pod, container: &Container, capacity: i128) -> Option<i128> {
        if self.swap_behavior != SwapBehavior::LimitedSwap || !self.node_swap || !self.cgroup_v2 {
            return None;
        }
        if crate::eviction::rank::is_critical(pod) || qos_class(pod) != QosClass::Burstable {
            return None;
        }
        let request = resource(container, false, "memory").unwrap_or(0) / 1000;
        let limit = resource(container, true, "memory").unwrap_or(0) / 1000;
        if (request == 0 && limit == 0) || request == limit {
            return None;
        }
        if capacity <= 0 || request > capacity {
            tracing::error!(
                request,
                capacity,
                "cannot calculate swap allocation amount; disallowing swap"
            );
            return None;
        }
        Some((request as f64 / capacity as f64 * self.swap_capacity as f64) as i128)
    }
}

/// A container's `memory.min` (its request) and `memory.high` (the request plus the
/// throttling factor of the way to its limit, or to node allocatable without one, rounded
/// down to a page; only when above the request, never for request == limit).
fn memory_qos_files(container: &Container, qos: &MemoryQos) -> Vec<(&'static str, i128)> {
    let bytes =
        |limits| quantity::milli_to_units(resource(container, limits, "memory").unwrap_or(0));
    let (request, limit) = (bytes(false), bytes(true));
    let mut out = Vec::new();
    if request != 0 {
        out.push(("memory.min", request));
    }
    if request != limit {
        let ceiling = if limit != 0 {
            limit
        } else {
            qos.allocatable_memory
        };
        if ceiling > 0 {
            let high = (request as f64 + (ceiling - request) as f64 * qos.throttling_factor)
                / PAGE_SIZE as f64;
            let high = high.floor() as i128 * PAGE_SIZE;
            if high != 0 && high > request {
                out.push(("memory.high", high));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(requests: &str, limits: &str) -> Pod {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "p", "namespace": "d", "uid": "u"},
            "spec": {"containers": [{"name": "c", "image": "i", "resources": {
                "requests": if requests.is_empty() { serde_json::json!({}) } else { serde_json::json!({"memory": requests}) },
                "limits": if limits.is_empty() { serde_json::json!({}) } else { serde_json::json!({"memory": limits}) },
            }}]}
        }))
        .unwrap()
    }

    fn applied(policy: &MemoryPolicy, pod: &Pod) -> cri::LinuxContainerResources {
        let container = &pod.spec.as_ref().unwrap().containers[0];
        let mut r = cri::LinuxContainerResources {
            memory_limit_in_bytes: resource(container, true, "memory").unwrap_or(0) as i64 / 1000,
            ..Default::default()
        };
        policy.apply(&mut r, pod, container, 8 << 30);
        r
    }

    fn v2() -> MemoryPolicy {
        MemoryPolicy {
            cgroup_v2: true,
            swap_controller: true,
            swap_capacity: 4 << 30,
            node_swap: true,
            ..Default::default()
        }
    }

    #[test]
    fn v2_groups_oom_kills_unless_single_process_is_asked_for() {
        let p = pod("", "");
        assert_eq!(applied(&v2(), &p).unified["memory.oom.group"], "1");
        let single = MemoryPolicy {
            single_process_oom_kill: Some(true),
            ..v2()
        };
        assert!(
            !applied(&single, &p)
                .unified
                .contains_key("memory.oom.group")
        );
        let v1 = MemoryPolicy {
            cgroup_v2: false,
            ..v2()
        };
        assert!(applied(&v1, &p).unified.is_empty());
    }

    #[test]
    fn no_swap_by_default() {
        let p = pod("64Mi", "128Mi");
        assert_eq!(applied(&v2(), &p).unified["memory.swap.max"], "0");
        // v1: memory+swap capped at the memory limit.
        let v1 = MemoryPolicy {
            cgroup_v2: false,
            ..v2()
        };
        let r = applied(&v1, &p);
        assert_eq!(r.memory_swap_limit_in_bytes, 128 << 20);
        // No swap controller: nothing about swap.
        let none = MemoryPolicy {
            swap_controller: false,
            ..v2()
        };
        assert!(!applied(&none, &p).unified.contains_key("memory.swap.max"));
    }

    #[test]
    fn limited_swap_is_proportional_for_burstable_containers_only() {
        let limited = MemoryPolicy {
            swap_behavior: SwapBehavior::LimitedSwap,
            ..v2()
        };
        // 1 GiB of 8 GiB requested: an eighth of 4 GiB of swap.
        let burstable = pod("1Gi", "2Gi");
        assert_eq!(
            applied(&limited, &burstable).unified["memory.swap.max"],
            (512u64 << 20).to_string()
        );
        for (name, p) in [
            ("guaranteed", pod("1Gi", "1Gi")),
            ("best effort", pod("", "")),
        ] {
            assert_eq!(
                applied(&limited, &p).unified["memory.swap.max"],
                "0",
                "{name}"
            );
        }
        let gate_off = MemoryPolicy {
            node_swap: false,
            ..limited.clone()
        };
        assert_eq!(
            applied(&gate_off, &burstable).unified["memory.swap.max"],
            "0"
        );
        let mut critical = burstable.clone();
        critical.spec.as_mut().unwrap().priority = Some(2_000_000_000);
        assert_eq!(applied(&limited, &critical).unified["memory.swap.max"], "0");
    }

    #[test]
    fn memory_qos_sets_min_and_high_as_upstream() {
        let qos = MemoryQos {
            throttling_factor: 0.9,
            allocatable_memory: 8 << 30,
        };
        let on = v2().with_memory_qos(true, qos);
        // request 64Mi, limit 128Mi: high = floor((64 + 0.9 * 64) Mi / 4 KiB) pages.
        let r = applied(&on, &pod("64Mi", "128Mi"));
        assert_eq!(r.unified["memory.min"], (64u64 << 20).to_string());
        let high = ((64.0 + 0.9 * 64.0) * 1048576.0 / 4096.0) as u64 * 4096;
        assert_eq!(r.unified["memory.high"], high.to_string());
        // No limit: towards node allocatable.
        let r = applied(&on, &pod("1Gi", ""));
        let high = ((1.0 + 0.9 * 7.0) * 1073741824.0 / 4096.0) as u64 * 4096;
        assert_eq!(r.unified["memory.high"], high.to_string());
        // Guaranteed memory: min only; nothing requested: nothing.
        let r = applied(&on, &pod("128Mi", "128Mi"));
        assert!(r.unified.contains_key("memory.min") && !r.unified.contains_key("memory.high"));
        let r = applied(&on, &pod("", ""));
        assert!(!r.unified.contains_key("memory.min"));
        // Gate off, or a cgroup v1 host: nothing.
        for off in [
            v2().with_memory_qos(false, qos),
            MemoryPolicy {
                cgroup_v2: false,
                ..v2()
            }
            .with_memory_qos(true, qos),
        ] {
            let r = applied(&off, &pod("64Mi", "128Mi"));
            assert!(!r.unified.contains_key("memory.min"), "{off:?}");
        }
    }
}
