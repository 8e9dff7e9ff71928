//! `kubelet_http_*`: requests to the kubelet's HTTP servers.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

const DEF_BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Labels of the HTTP families, as upstream.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HttpLabels {
    pub method: String,
    pub path: String,
    pub server_type: String,
    pub long_running: String,
}

fn duration_histogram() -> Histogram {
    Histogram::new(DEF_BUCKETS)
}

#[derive(Clone)]
pub struct HttpMetrics {
    pub requests: Family<HttpLabels, Counter>,
    pub inflight: Family<HttpLabels, Gauge>,
    pub duration: Family<HttpLabels, Histogram, fn() -> Histogram>,
}

impl Default for HttpMetrics {
    fn default() -> Self {
        HttpMetrics {
            requests: Family::default(),
            inflight: Family::default(),
            duration: Family::new_with_constructor(duration_histogram),
        }
    }
}

impl HttpMetrics {
    pub(crate) fn register(&self, r: &mut Registry) {
        r.register(
            "kubelet_http_requests",
            "Number of the http requests received since the server started",
            self.requests.clone(),
        );
        r.register(
            "kubelet_http_inflight_requests",
            "Number of the inflight http requests",
            self.inflight.clone(),
        );
        r.register(
            "kubelet_http_requests_duration_seconds",
            "Duration in seconds to serve http requests",
            self.duration.clone(),
        );
    }
}
