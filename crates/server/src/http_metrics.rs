//! `kubelet_http_requests_total`, `kubelet_http_inflight_requests` and
//! `kubelet_http_requests_duration_seconds`, labelled as upstream.

use std::time::Instant;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use kubelet_metrics::{HttpLabels, KubeletMetrics};

const BUCKETS: [&str; 18] = [
    "healthz",
    "pods",
    "stats",
    "metrics",
    "metrics/cadvisor",
    "metrics/probes",
    "metrics/resource",
    "run",
    "exec",
    "attach",
    "portForward",
    "containerLogs",
    "configz",
    "runningpods",
    "logs",
    "spec",
    "debug",
    "checkpoint",
];

const METHODS: [&str; 8] = [
    "OPTIONS", "GET", "HEAD", "POST", "PUT", "DELETE", "TRACE", "CONNECT",
];

/// "/metrics/resource" -> "metrics/resource", "/exec/a/b/c" -> "exec", unknown -> "other".
pub fn path_bucket(path: &str) -> String {
    let mut parts = path.trim_start_matches('/').splitn(3, '/');
    let first = parts.next().unwrap_or_default();
    let root = match (first, parts.next()) {
        ("metrics", Some(second)) if !second.is_empty() => format!("metrics/{second}"),
        _ => first.to_string(),
    };
    if BUCKETS.contains(&root.as_str()) {
        root
    } else {
        "other".into()
    }
}

#[derive(Clone)]
pub struct HttpMetricsLayer {
    pub metrics: KubeletMetrics,
    pub server_type: &'static str,
}

pub async fn record(State(ctx): State<HttpMetricsLayer>, req: Request, next: Next) -> Response {
    let method = req.method().as_str();
    let path = path_bucket(req.uri().path());
    let labels = HttpLabels {
        method: if METHODS.contains(&method) {
            method.to_string()
        } else {
            "other".into()
        },
        long_running: matches!(path.as_str(), "exec" | "attach" | "portForward" | "debug")
            .to_string(),
        path,
        server_type: ctx.server_type.to_string(),
    };
    let http = &ctx.metrics.http;
    http.requests.get_or_create(&labels).inc();
    http.inflight.get_or_create(&labels).inc();
    let started = Instant::now();
    let resp = next.run(req).await;
    http.inflight.get_or_create(&labels).dec();
    http.duration
        .get_or_create(&labels)
        .observe(started.elapsed().as_secs_f64());
    resp
}

#[cfg(test)]
mod tests {
    use super::path_bucket;

    #[test]
    fn buckets() {
        assert_eq!(path_bucket("/metrics"), "metrics");
        assert_eq!(path_bucket("/metrics/resource"), "metrics/resource");
        assert_eq!(path_bucket("/metrics/bogus"), "other");
        assert_eq!(path_bucket("/exec/ns/pod/c"), "exec");
        assert_eq!(path_bucket("/"), "other");
    }
}
