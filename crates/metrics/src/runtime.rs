//! `kubelet_runtime_operations_*`: every CRI call, by upstream operation name.

use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::names::operation_type;

type OpLabel = Vec<(String, String)>;

fn op_histogram() -> Histogram {
    // Upstream: ExponentialBuckets(.005, 2.5, 14).
    Histogram::new(exponential_buckets(0.005, 2.5, 14))
}

#[derive(Clone)]
pub struct RuntimeMetrics {
    total: Family<OpLabel, Counter>,
    errors: Family<OpLabel, Counter>,
    duration: Family<OpLabel, Histogram, fn() -> Histogram>,
}

impl Default for RuntimeMetrics {
    fn default() -> Self {
        RuntimeMetrics {
            total: Family::default(),
            errors: Family::default(),
            duration: Family::new_with_constructor(op_histogram),
        }
    }
}

impl RuntimeMetrics {
    /// Record one finished CRI call (`method` is the CRI method name, e.g. `ListPodSandbox`).
    pub fn observe(&self, method: &str, elapsed: Duration, ok: bool) {
        let label = vec![("operation_type".to_string(), operation_type(method))];
        self.total.get_or_create(&label).inc();
        self.duration
            .get_or_create(&label)
            .observe(elapsed.as_secs_f64());
        if !ok {
            self.errors.get_or_create(&label).inc();
        }
    }

    pub(crate) fn register(&self, r: &mut Registry) {
        r.register(
            "kubelet_runtime_operations",
            "Cumulative number of runtime operations by operation type.",
            self.total.clone(),
        );
        r.register(
            "kubelet_runtime_operations_errors",
            "Cumulative number of runtime operation errors by operation type.",
            self.errors.clone(),
        );
        r.register(
            "kubelet_runtime_operations_duration_seconds",
            "Duration in seconds of runtime operations. Broken down by operation type.",
            self.duration.clone(),
        );
    }
}
