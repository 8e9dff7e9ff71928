//! `kubelet_pod_start_duration_seconds`, observed when the start happens: at the sync in
//! which a pod this kubelet last reported Pending is first reported Running, the time since
//! the kubelet first saw it (`kubernetes.io/config.seen`), as upstream's SyncPod does.
//!
//! Upstream also observes on a pod's very first sync (no status yet), which adds a
//! near-zero sample per pod; that sample is not taken here (docs/node-api.md). Pods adopted
//! after a kubelet restart are first reported Running, never Pending, so they are not
//! counted again.

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::jiff::Timestamp;
use kubelet_source::annotations::CONFIG_SEEN;

/// Seconds from first seen to `now_ns` (Unix nanoseconds) when this sync is the pod's
/// Pending -> Running step.
pub fn start_duration(
    pod: &Pod,
    previous_phase: Option<&str>,
    phase: Option<&str>,
    now_ns: i64,
) -> Option<f64> {
    if previous_phase != Some("Pending") || phase != Some("Running") {
        return None;
    }
    let seen: Timestamp = pod
        .metadata
        .annotations
        .as_ref()?
        .get(CONFIG_SEEN)?
        .parse()
        .ok()?;
    let nanos = i128::from(now_ns) - seen.as_nanosecond();
    Some((nanos as f64 / 1e9).max(0.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(seen: Option<&str>) -> Pod {
        let mut p = Pod::default();
        if let Some(seen) = seen {
            p.metadata.annotations = Some([(CONFIG_SEEN.to_string(), seen.to_string())].into());
        }
        p
    }

    #[test]
    fn observed_only_on_the_pending_to_running_step() {
        let now = "2024-01-01T00:00:03Z"
            .parse::<Timestamp>()
            .unwrap()
            .as_nanosecond() as i64;
        let p = pod(Some("2024-01-01T00:00:00.5Z"));
        assert_eq!(
            start_duration(&p, Some("Pending"), Some("Running"), now),
            Some(2.5)
        );
        // First sync (nothing reported yet), adoption (straight to Running), later syncs.
        assert_eq!(start_duration(&p, None, Some("Pending"), now), None);
        assert_eq!(start_duration(&p, None, Some("Running"), now), None);
        assert_eq!(
            start_duration(&p, Some("Running"), Some("Running"), now),
            None
        );
        assert_eq!(
            start_duration(&p, Some("Pending"), Some("Failed"), now),
            None
        );
    }

    #[test]
    fn needs_a_readable_first_seen_time() {
        let now = "2024-01-01T00:00:03Z"
            .parse::<Timestamp>()
            .unwrap()
            .as_nanosecond() as i64;
        for p in [pod(None), pod(Some("yesterday"))] {
            assert_eq!(
                start_duration(&p, Some("Pending"), Some("Running"), now),
                None
            );
        }
        // A clock step back never yields a negative duration.
        let later = pod(Some("2024-01-01T00:00:09Z"));
        assert_eq!(
            start_duration(&later, Some("Pending"), Some("Running"), now),
            Some(0.0)
        );
    }
}
