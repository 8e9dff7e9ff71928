//! The few Kubernetes v1.35 feature gates that change configuration defaults
//! or validation. Gate names not listed here are accepted and passed through
//! in `featureGates` unchecked (upstream would reject unknown names).

use std::collections::BTreeMap;

pub const CUSTOM_CPU_CFS_QUOTA_PERIOD: &str = "CustomCPUCFSQuotaPeriod";
pub const GRACEFUL_NODE_SHUTDOWN: &str = "GracefulNodeShutdown";
pub const GRACEFUL_NODE_SHUTDOWN_BASED_ON_POD_PRIORITY: &str =
    "GracefulNodeShutdownBasedOnPodPriority";
pub const IMAGE_MAXIMUM_GC_AGE: &str = "ImageMaximumGCAge";
pub const KUBELET_CRASH_LOOP_BACK_OFF_MAX: &str = "KubeletCrashLoopBackOffMax";
pub const KUBELET_PSI: &str = "KubeletPSI";
pub const KUBELET_ENSURE_SECRET_PULLED_IMAGES: &str = "KubeletEnsureSecretPulledImages";
pub const MEMORY_QOS: &str = "MemoryQoS";
pub const NODE_LOG_QUERY: &str = "NodeLogQuery";
pub const QOS_RESERVED: &str = "QOSReserved";
pub const NODE_SWAP: &str = "NodeSwap";
pub const ROTATE_KUBELET_SERVER_CERTIFICATE: &str = "RotateKubeletServerCertificate";

/// Default state of the gates above in Kubernetes v1.35.
const DEFAULTS: &[(&str, bool)] = &[
    (CUSTOM_CPU_CFS_QUOTA_PERIOD, false),
    (GRACEFUL_NODE_SHUTDOWN, true),
    (GRACEFUL_NODE_SHUTDOWN_BASED_ON_POD_PRIORITY, true),
    (IMAGE_MAXIMUM_GC_AGE, true),
    (KUBELET_CRASH_LOOP_BACK_OFF_MAX, false),
    (KUBELET_ENSURE_SECRET_PULLED_IMAGES, true),
    (KUBELET_PSI, true),
    (MEMORY_QOS, false),
    (NODE_LOG_QUERY, false),
    (NODE_SWAP, true),
    (QOS_RESERVED, false),
    (ROTATE_KUBELET_SERVER_CERTIFICATE, true),
];

/// Whether `name` is enabled, given the configured `featureGates` overrides.
/// `AllAlpha`/`AllBeta` are not modelled.
pub fn enabled(gates: &BTreeMap<String, bool>, name: &str) -> bool {
    gates.get(name).copied().unwrap_or_else(|| {
        DEFAULTS
            .iter()
            .find(|(gate, _)| *gate == name)
            .is_some_and(|(_, on)| *on)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explicit_setting_overrides_default() {
        let mut gates = BTreeMap::new();
        assert!(enabled(&gates, NODE_SWAP));
        assert!(!enabled(&gates, MEMORY_QOS));
        gates.insert(NODE_SWAP.to_string(), false);
        gates.insert(MEMORY_QOS.to_string(), true);
        assert!(!enabled(&gates, NODE_SWAP));
        assert!(enabled(&gates, MEMORY_QOS));
        assert!(!enabled(&gates, "SomethingUnknown"));
    }
}
