//! `/metrics/resource`: the resource metrics metrics-server scrapes, in the Prometheus
//! text format 0.0.4 with explicit millisecond timestamps, as upstream writes them.

use std::fmt::Write;

use super::types::{CpuStats, MemoryStats, Summary};

pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

fn millis(time: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(time)
        .ok()
        .map(|t| t.timestamp_millis())
}

fn escape(v: &str) -> String {
    v.replace('\\', r"\\")
        .replace('"', "\\\"")
        .replace('\n', r"\n")
}

fn labels(pairs: &[(&str, &str)]) -> String {
    if pairs.is_empty() {
        return String::new();
    }
    let inner: Vec<String> = pairs
        .iter()
        .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
        .collect();
    format!("{{{}}}", inner.join(","))
}

struct Family {
    name: &'static str,
    help: &'static str,
    kind: &'static str,
    samples: Vec<String>,
}

impl Family {
    fn new(name: &'static str, kind: &'static str, help: &'static str) -> Self {
        Family {
            name,
            help,
            kind,
            samples: Vec::new(),
        }
    }

    fn push(&mut self, labels: String, value: f64, time: &str) {
        let ts = millis(time).map(|t| format!(" {t}")).unwrap_or_default();
        self.samples
            .push(format!("{}{labels} {value}{ts}", self.name));
    }

    fn write(&self, out: &mut String) {
        if self.samples.is_empty() {
            return;
        }
        let _ = writeln!(out, "# HELP {} {}", self.name, self.help);
        let _ = writeln!(out, "# TYPE {} {}", self.name, self.kind);
        for s in &self.samples {
            let _ = writeln!(out, "{s}");
        }
    }
}

fn cpu_seconds(c: &Option<CpuStats>) -> Option<(f64, &str)> {
    let c = c.as_ref()?;
    Some((c.usage_core_nano_seconds? as f64 / 1e9, c.time.as_str()))
}

fn working_set(m: &Option<MemoryStats>) -> Option<(f64, &str)> {
    let m = m.as_ref()?;
    Some((m.working_set_bytes? as f64, m.time.as_str()))
}

/// Render the resource metrics of `summary`; `error` sets `resource_scrape_error 1`.
pub fn render(summary: Option<&Summary>) -> String {
    let mut container_cpu = Family::new(
        "container_cpu_usage_seconds_total",
        "counter",
        "[STABLE] Cumulative cpu time consumed by the container in core-seconds",
    );
    let mut container_mem = Family::new(
        "container_memory_working_set_bytes",
        "gauge",
        "[STABLE] Current working set of the container in bytes",
    );
    let mut container_start = Family::new(
        "container_start_time_seconds",
        "gauge",
        "[STABLE] Start time of the container since unix epoch in seconds",
    );
    let mut node_cpu = Family::new(
        "node_cpu_usage_seconds_total",
        "counter",
        "[STABLE] Cumulative cpu time consumed by the node in core-seconds",
    );
    let mut node_mem = Family::new(
        "node_memory_working_set_bytes",
        "gauge",
        "[STABLE] Current working set of the node in bytes",
    );
    let mut pod_cpu = Family::new(
        "pod_cpu_usage_seconds_total",
        "counter",
        "[STABLE] Cumulative cpu time consumed by the pod in core-seconds",
    );
    let mut pod_mem = Family::new(
        "pod_memory_working_set_bytes",
        "gauge",
        "[STABLE] Current working set of the pod in bytes",
    );
    let mut scrape_error = Family::new(
        "resource_scrape_error",
        "gauge",
        "[STABLE] 1 if there was an error while getting container metrics, 0 otherwise",
    );
    scrape_error.samples.push(format!(
        "resource_scrape_error {}",
        if summary.is_some() { 0 } else { 1 }
    ));

    if let Some(s) = summary {
        if let Some((v, t)) = cpu_seconds(&s.node.cpu) {
            node_cpu.push(String::new(), v, t);
        }
        if let Some((v, t)) = working_set(&s.node.memory) {
            node_mem.push(String::new(), v, t);
        }
        for pod in &s.pods {
            let (ns, name) = (pod.pod_ref.namespace.as_str(), pod.pod_ref.name.as_str());
            if let Some((v, t)) = cpu_seconds(&pod.cpu) {
                pod_cpu.push(labels(&[("namespace", ns), ("pod", name)]), v, t);
            }
            if let Some((v, t)) = working_set(&pod.memory) {
                pod_mem.push(labels(&[("namespace", ns), ("pod", name)]), v, t);
            }
            for c in &pod.containers {
                let l = labels(&[("container", &c.name), ("namespace", ns), ("pod", name)]);
                if let Some((v, t)) = cpu_seconds(&c.cpu) {
                    container_cpu.push(l.clone(), v, t);
                }
                if let Some((v, t)) = working_set(&c.memory) {
                    container_mem.push(l.clone(), v, t);
                }
                if let Some(start) = millis(&c.start_time) {
                    let t = c
                        .cpu
                        .as_ref()
                        .map(|c| c.time.as_str())
                        .unwrap_or(&c.start_time);
                    container_start.push(l, start as f64 / 1000.0, t);
                }
            }
        }
    }
    let mut out = String::new();
    for f in [
        &container_cpu,
        &container_mem,
        &container_start,
        &node_cpu,
        &node_mem,
        &pod_cpu,
        &pod_mem,
        &scrape_error,
    ] {
        f.write(&mut out);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::types::*;

    #[test]
    fn renders_upstream_families() {
        let t = "2024-05-01T10:00:00Z".to_string();
        let summary = Summary {
            node: NodeStats {
                node_name: "n".into(),
                cpu: Some(CpuStats {
                    time: t.clone(),
                    usage_nano_cores: None,
                    usage_core_nano_seconds: Some(2_500_000_000),
                    psi: None,
                }),
                memory: Some(MemoryStats {
                    time: t.clone(),
                    working_set_bytes: Some(1024),
                    ..Default::default()
                }),
                ..Default::default()
            },
            pods: vec![PodStats {
                pod_ref: PodReference {
                    name: "web".into(),
                    namespace: "default".into(),
                    uid: "u".into(),
                },
                containers: vec![ContainerStats {
                    name: "main".into(),
                    start_time: t.clone(),
                    cpu: Some(CpuStats {
                        time: t.clone(),
                        usage_nano_cores: None,
                        usage_core_nano_seconds: Some(1_000_000_000),
                        psi: None,
                    }),
                    ..Default::default()
                }],
                ..Default::default()
            }],
        };
        let text = render(Some(&summary));
        assert!(
            text.contains("node_cpu_usage_seconds_total 2.5 1714557600000"),
            "{text}"
        );
        assert!(
            text.contains("node_memory_working_set_bytes 1024 1714557600000"),
            "{text}"
        );
        assert!(text.contains("container_cpu_usage_seconds_total{container=\"main\",namespace=\"default\",pod=\"web\"} 1 1714557600000"), "{text}");
        assert!(text.contains("container_start_time_seconds{container=\"main\",namespace=\"default\",pod=\"web\"} 1714557600"), "{text}");
        assert!(
            text.contains("# TYPE container_cpu_usage_seconds_total counter"),
            "{text}"
        );
        assert!(text.contains("resource_scrape_error 0"), "{text}");
        assert!(render(None).contains("resource_scrape_error 1"));
    }
}
