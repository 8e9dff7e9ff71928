//! Pod start durations for `kubelet_pod_start_duration_seconds`, read from what the
//! kubelet already records: the time it first saw the pod (`kubernetes.io/config.seen`)
//! and when the last of its containers started running. Each pod is observed once.

use std::collections::HashSet;
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use k8s_openapi::api::core::v1::Pod;
use kubelet_metrics::KubeletMetrics;

const CONFIG_SEEN: &str = "kubernetes.io/config.seen";

#[derive(Default)]
pub struct PodStartTracker {
    recorded: Mutex<HashSet<String>>,
}

/// Seconds from first seen to all containers running, once they all run.
pub fn start_duration(pod: &Pod) -> Option<f64> {
    let seen = pod.metadata.annotations.as_ref()?.get(CONFIG_SEEN)?;
    let seen = DateTime::parse_from_rfc3339(seen).ok()?.with_timezone(&Utc);
    let statuses = pod.status.as_ref()?.container_statuses.as_ref()?;
    let expected = pod.spec.as_ref().map(|s| s.containers.len()).unwrap_or(0);
    if statuses.is_empty() || statuses.len() < expected {
        return None;
    }
    let mut last: Option<DateTime<Utc>> = None;
    for cs in statuses {
        let started = cs.state.as_ref()?.running.as_ref()?.started_at.as_ref()?.0;
        let started = DateTime::<Utc>::from_timestamp_nanos(started.as_nanosecond() as i64);
        last = Some(last.map_or(started, |l| l.max(started)));
    }
    let secs = (last? - seen).num_milliseconds() as f64 / 1000.0;
    Some(secs.max(0.0))
}

impl PodStartTracker {
    /// Observe every pod that has started since the last call.
    pub fn record(&self, pods: &[std::sync::Arc<Pod>], metrics: &KubeletMetrics) {
        let mut recorded = kubelet_core::supervisor::lock(&self.recorded, "pod start tracker");
        let live: HashSet<&str> = pods
            .iter()
            .filter_map(|p| p.metadata.uid.as_deref())
            .collect();
        recorded.retain(|uid| live.contains(uid.as_str()));
        for pod in pods {
            let Some(uid) = pod.metadata.uid.as_deref() else {
                continue;
            };
            if recorded.contains(uid) {
                continue;
            }
            if let Some(secs) = start_duration(pod) {
                metrics.pods.start_duration.observe(secs);
                recorded.insert(uid.to_string());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(seen: &str, started: &[&str]) -> Pod {
        let statuses: Vec<serde_json::Value> = started
            .iter()
            .enumerate()
            .map(|(i, s)| serde_json::json!({"name": format!("c{i}"), "image": "x", "imageID": "", "ready": true, "restartCount": 0,
                "state": {"running": {"startedAt": s}}}))
            .collect();
        let containers: Vec<serde_json::Value> = started
            .iter()
            .enumerate()
            .map(|(i, _)| serde_json::json!({"name": format!("c{i}")}))
            .collect();
        serde_json::from_value(serde_json::json!({
            "metadata": {"uid": "u1", "annotations": {CONFIG_SEEN: seen}},
            "spec": {"containers": containers},
            "status": {"containerStatuses": statuses}
        }))
        .unwrap()
    }

    #[test]
    fn duration_to_last_container_running() {
        let p = pod(
            "2024-01-01T00:00:00.500Z",
            &["2024-01-01T00:00:01Z", "2024-01-01T00:00:03Z"],
        );
        assert_eq!(start_duration(&p), Some(2.5));
        let m = KubeletMetrics::new("n");
        let t = PodStartTracker::default();
        let pods = vec![std::sync::Arc::new(p)];
        t.record(&pods, &m);
        t.record(&pods, &m);
        assert!(
            m.encode()
                .contains("kubelet_pod_start_duration_seconds_count 1")
        );
    }
}
