//! `prober_probe_*`: results and durations of liveness, readiness and startup probes,
//! served on `/metrics/probes`. The prober records through [`ProbeMetrics::record`].

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ProbeLabels {
    pub probe_type: String,
    pub result: String,
    pub container: String,
    pub pod: String,
    pub namespace: String,
    pub pod_uid: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DurationLabels {
    probe_type: String,
    container: String,
    pod: String,
    namespace: String,
}

fn duration_histogram() -> Histogram {
    // Upstream: ExponentialBuckets(0.001, 2, 10)... up to ~0.5 s; probes time out later.
    Histogram::new(exponential_buckets(0.001, 2.0, 14))
}

#[derive(Clone)]
pub struct ProbeMetrics {
    results: Family<ProbeLabels, Counter>,
    duration: Family<DurationLabels, Histogram, fn() -> Histogram>,
}

impl Default for ProbeMetrics {
    fn default() -> Self {
        ProbeMetrics {
            results: Family::default(),
            duration: Family::new_with_constructor(duration_histogram),
        }
    }
}

/// `liveness` -> `Liveness`, as upstream labels probe types.
fn title(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) => c.to_ascii_uppercase().to_string() + chars.as_str(),
        None => String::new(),
    }
}

impl ProbeMetrics {
    /// One probe run: `probe_type` liveness|readiness|startup, `result`
    /// successful|failed|unknown, and how long it took in seconds. The arguments are
    /// the upstream label set, one each.
    #[allow(clippy::too_many_arguments)]
    pub fn record(
        &self,
        probe_type: &str,
        result: &str,
        namespace: &str,
        pod: &str,
        pod_uid: &str,
        container: &str,
        seconds: f64,
    ) {
        let probe_type = title(probe_type);
        self.results
            .get_or_create(&ProbeLabels {
                probe_type: probe_type.clone(),
                result: result.to_string(),
                container: container.to_string(),
                pod: pod.to_string(),
                namespace: namespace.to_string(),
                pod_uid: pod_uid.to_string(),
            })
            .inc();
        self.duration
            .get_or_create(&DurationLabels {
                probe_type,
                container: container.to_string(),
                pod: pod.to_string(),
                namespace: namespace.to_string(),
            })
            .observe(seconds);
    }

    pub(crate) fn register(&self, r: &mut Registry) {
        r.register(
            "prober_probe",
            "Cumulative number of a liveness, readiness or startup probe for a container by result.",
            self.results.clone(),
        );
        r.register(
            "prober_probe_duration_seconds",
            "Duration in seconds for a probe response.",
            self.duration.clone(),
        );
    }
}
