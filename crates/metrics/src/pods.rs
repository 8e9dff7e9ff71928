//! `kubelet_pod_start_duration_seconds`: from the kubelet first seeing a pod to all its
//! containers running, as upstream.

use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// Upstream's buckets for pod start durations, in seconds.
const BUCKETS: [f64; 25] = [
    0.5, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0, 20.0, 30.0, 45.0, 60.0, 120.0, 180.0, 240.0,
    300.0, 360.0, 480.0, 600.0, 900.0, 1200.0, 1800.0, 2700.0, 3600.0,
];

#[derive(Clone)]
pub struct PodMetrics {
    pub start_duration: Histogram,
}

impl Default for PodMetrics {
    fn default() -> Self {
        PodMetrics {
            start_duration: Histogram::new(BUCKETS),
        }
    }
}

impl PodMetrics {
    pub(crate) fn register(&self, r: &mut Registry) {
        r.register(
            "kubelet_pod_start_duration_seconds",
            "Duration in seconds from kubelet seeing a pod for the first time to the pod starting to run",
            self.start_duration.clone(),
        );
    }
}
