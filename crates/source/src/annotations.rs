//! The `kubernetes.io/config.*` annotation keys the kubelet puts on pods it takes from a
//! source (same keys as upstream `pkg/kubelet/types`).

/// The pod UID; for static pods, the hash of the manifest.
pub const CONFIG_HASH: &str = "kubernetes.io/config.hash";
/// The source kind: "file", "http" or "api".
pub const CONFIG_SOURCE: &str = "kubernetes.io/config.source";
/// RFC 3339 (nanoseconds) time at which this process first saw the pod.
pub const CONFIG_SEEN: &str = "kubernetes.io/config.seen";
/// Set on mirror pods by the kubelet (not used by this crate; listed for completeness).
pub const CONFIG_MIRROR: &str = "kubernetes.io/config.mirror";
