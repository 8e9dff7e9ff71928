//! Helpers of the housekeeping tests (tests/housekeeping*.rs): a config with the
//! read-only port so pod statuses can be read from `/pods`, and waiting on them.
#![allow(dead_code)]

use std::time::{Duration, Instant};

use super::Node;

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// Write the node's config with the read-only node API on `port` and `extra` fields.
pub fn write_config(node: &Node, port: u16, extra: &str) {
    let extra = crate::support::with_safe_defaults(extra);
    let text = format!(
        "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n\
         staticPodPath: {}\npodLogsDir: {}\ncontainerRuntimeEndpoint: {}\n\
         fileCheckFrequency: 5s\nenableServer: false\nhealthzPort: 0\n\
         address: 127.0.0.1\nreadOnlyPort: {port}\n{extra}",
        node.manifests.display(),
        node.logs_dir.display(),
        node.runtime_endpoint
    );
    std::fs::write(&node.config, text).unwrap();
}

/// Make housekeeping loops run every `period` (GC, eviction monitoring).
pub fn fast_housekeeping(node: &mut Node, period: &str) {
    node.env
        .push(("KUBELET_RS_HOUSEKEEPING_PERIOD".into(), period.into()));
}

/// `/pods` of the read-only port, as JSON items.
pub async fn pods(port: u16) -> Vec<serde_json::Value> {
    let Ok(resp) = reqwest::get(format!("http://127.0.0.1:{port}/pods")).await else {
        return Vec::new();
    };
    let Ok(text) = resp.text().await else {
        return Vec::new();
    };
    serde_json::from_str::<serde_json::Value>(&text)
        .ok()
        .and_then(|v| v.get("items").and_then(|i| i.as_array()).cloned())
        .unwrap_or_default()
}

/// The status of pod `name` in `/pods`.
pub async fn pod_status(port: u16, name: &str) -> Option<serde_json::Value> {
    pods(port)
        .await
        .into_iter()
        .find(|p| p["metadata"]["name"].as_str() == Some(name))
        .map(|p| p["status"].clone())
}

/// Wait until pod `name`'s status satisfies `pred`; returns it. Panics with the kubelet
/// log after `deadline`.
pub async fn wait_status(
    node: &Node,
    port: u16,
    name: &str,
    deadline: Duration,
    pred: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = crate::support::scaled(deadline);
    let started = Instant::now();
    let mut last = None;
    while started.elapsed() < deadline {
        if let Some(s) = pod_status(port, name).await {
            if pred(&s) {
                return s;
            }
            last = Some(s);
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    panic!(
        "pod {name}: status not reached within {deadline:?}; last: {last:#?}\nkubelet log:\n{}",
        node.logs()
    );
}

/// Wait until the kubelet log contains `text`.
pub async fn wait_log(node: &Node, text: &str, deadline: Duration) {
    let deadline = crate::support::scaled(deadline);
    let started = Instant::now();
    while started.elapsed() < deadline {
        if node.logs().contains(text) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!(
        "kubelet log has no {text:?} within {deadline:?}:\n{}",
        node.logs()
    );
}

pub fn phase(s: &serde_json::Value) -> &str {
    s["phase"].as_str().unwrap_or("")
}

pub fn reason(s: &serde_json::Value) -> &str {
    s["reason"].as_str().unwrap_or("")
}

pub fn message(s: &serde_json::Value) -> &str {
    s["message"].as_str().unwrap_or("")
}
