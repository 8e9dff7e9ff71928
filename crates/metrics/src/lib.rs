//! Metrics of the kubelet, with the names upstream's kubelet exports, in
//! prometheus-client registries. Nothing is global: the binary builds one
//! [`KubeletMetrics`] and hands clones to the components that record (the CRI client,
//! the PLEG, the HTTP server). Every handle is cheap to clone and shares its values.

mod http;
mod names;
mod pleg;
mod pods;
mod probes;
mod runtime;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

pub use http::{HttpLabels, HttpMetrics};
pub use names::operation_type;
pub use pleg::PlegMetrics;
pub use pods::PodMetrics;
pub use probes::{ProbeLabels, ProbeMetrics};
pub use runtime::RuntimeMetrics;

/// `Content-Type` of [`KubeletMetrics::encode`] output.
pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Label set of one-label families (`container_state`, `node`).
pub type StateLabel = Vec<(String, String)>;

/// Every kubelet metric served on `/metrics`, plus the prober metrics of `/metrics/probes`.
#[derive(Clone)]
pub struct KubeletMetrics {
    pub runtime: RuntimeMetrics,
    pub pleg: PlegMetrics,
    pub http: HttpMetrics,
    pub probes: ProbeMetrics,
    pub pods: PodMetrics,
    /// `kubelet_running_pods`: pods with a running sandbox (set when scraped).
    pub running_pods: Gauge,
    /// `kubelet_running_containers{container_state}` (set when scraped).
    pub running_containers: Family<StateLabel, Gauge>,
    /// `kubelet_api_server_invalid_writes_total{operation}`: writes the API server refused
    /// as Invalid (cluster mode; kubelet-rs only; brought up to date when scraped).
    pub api_invalid_writes: Family<StateLabel, Counter>,
    node_name: Family<StateLabel, Gauge>,
    process_start_time: Gauge<f64, std::sync::atomic::AtomicU64>,
}

impl KubeletMetrics {
    pub fn new(node_name: &str) -> Self {
        let m = KubeletMetrics {
            runtime: RuntimeMetrics::default(),
            pleg: PlegMetrics::default(),
            http: HttpMetrics::default(),
            probes: ProbeMetrics::default(),
            pods: PodMetrics::default(),
            running_pods: Gauge::default(),
            running_containers: Family::default(),
            api_invalid_writes: Family::default(),
            node_name: Family::default(),
            process_start_time: Gauge::default(),
        };
        m.node_name
            .get_or_create(&vec![("node".to_string(), node_name.to_string())])
            .set(1);
        m.process_start_time.set(process_start_seconds());
        m
    }

    /// The `/metrics` registry: kubelet, runtime, PLEG and HTTP metrics.
    fn kubelet_registry(&self) -> Registry {
        let mut r = Registry::default();
        r.register(
            "kubelet_node_name",
            "The node's name. The count is always 1.",
            self.node_name.clone(),
        );
        r.register(
            "kubelet_running_pods",
            "Number of pods that have a running pod sandbox",
            self.running_pods.clone(),
        );
        r.register(
            "kubelet_running_containers",
            "Number of containers currently running",
            self.running_containers.clone(),
        );
        r.register(
            "kubelet_api_server_invalid_writes",
            "Writes (node registration, node and pod status) the API server refused as Invalid",
            self.api_invalid_writes.clone(),
        );
        self.pods.register(&mut r);
        self.runtime.register(&mut r);
        self.pleg.register(&mut r);
        self.http.register(&mut r);
        r.register(
            "process_start_time_seconds",
            "Start time of the process since unix epoch in seconds.",
            self.process_start_time.clone(),
        );
        r
    }

    /// `/metrics` in the OpenMetrics text format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.kubelet_registry());
        out
    }

    /// `/metrics/probes`: prober results and durations, plus the process start time.
    pub fn encode_probes(&self) -> String {
        let mut r = Registry::default();
        r.register(
            "process_start_time_seconds",
            "Start time of the process since unix epoch in seconds.",
            self.process_start_time.clone(),
        );
        self.probes.register(&mut r);
        let mut out = String::new();
        let _ = encode(&mut out, &r);
        out
    }

    /// Seconds since the epoch at which this process started.
    pub fn process_start_time(&self) -> f64 {
        self.process_start_time.get()
    }
}

/// Start time of this process from /proc (boot time + start ticks), else "now".
fn process_start_seconds() -> f64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0);
    let boot = std::fs::read_to_string("/proc/stat").ok().and_then(|s| {
        s.lines()
            .find_map(|l| l.strip_prefix("btime "))
            .and_then(|v| v.trim().parse::<f64>().ok())
    });
    let ticks = std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| {
            // Field 22 (starttime) counts from after the parenthesised command name.
            let rest = s.rsplit_once(')')?.1;
            rest.split_whitespace().nth(19)?.parse::<f64>().ok()
        });
    match (boot, ticks) {
        // USER_HZ is 100 on every Linux architecture the kubelet runs on.
        (Some(boot), Some(ticks)) => boot + ticks / 100.0,
        _ => now,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_upstream_names() {
        let m = KubeletMetrics::new("node-a");
        m.runtime
            .observe("ListPodSandbox", std::time::Duration::from_millis(3), true);
        m.runtime
            .observe("RunPodSandbox", std::time::Duration::from_millis(50), false);
        m.pleg.observe_relist(std::time::Duration::from_millis(2));
        m.running_pods.set(2);
        let text = m.encode();
        assert!(
            text.contains("kubelet_node_name{node=\"node-a\"} 1"),
            "{text}"
        );
        assert!(text.contains("kubelet_running_pods 2"), "{text}");
        assert!(
            text.contains("kubelet_runtime_operations_total{operation_type=\"list_podsandbox\"} 1"),
            "{text}"
        );
        assert!(
            text.contains(
                "kubelet_runtime_operations_errors_total{operation_type=\"run_podsandbox\"} 1"
            ),
            "{text}"
        );
        assert!(text.contains("kubelet_runtime_operations_duration_seconds_bucket{le=\"0.005\",operation_type=\"list_podsandbox\"} 1")
            || text.contains("kubelet_runtime_operations_duration_seconds_bucket{operation_type=\"list_podsandbox\",le=\"0.005\"} 1"), "{text}");
        assert!(
            text.contains("kubelet_pleg_relist_duration_seconds_count 1"),
            "{text}"
        );
        assert!(m.process_start_time() > 1.0e9);
    }

    #[test]
    fn probes_registry() {
        let m = KubeletMetrics::new("n");
        m.probes.record(
            "liveness",
            "successful",
            "default",
            "web",
            "uid-1",
            "main",
            0.01,
        );
        let text = m.encode_probes();
        assert!(text.contains("prober_probe_total{"), "{text}");
        assert!(text.contains("probe_type=\"Liveness\""), "{text}");
        assert!(text.contains("process_start_time_seconds"), "{text}");
    }
}
