//! Node API latency over the read-only port (plain HTTP): a tiny HTTP/1.1 GET with
//! `Connection: close`, so nothing but the kubelet's answer is measured.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::stats::Dist;

#[derive(Debug, Clone)]
pub struct ApiResult {
    pub path: String,
    pub outcome: Result<ApiTimes, String>,
}

#[derive(Debug, Clone)]
pub struct ApiTimes {
    pub latency: Dist,
    pub bytes: usize,
    /// `items` in a /pods answer, or pods in a /stats/summary answer.
    pub pods: Option<usize>,
}

async fn get(port: u16, path: &str) -> anyhow::Result<(u16, Vec<u8>, Duration)> {
    let t0 = Instant::now();
    let mut sock = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .context("connect")?;
    sock.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAccept: application/json\r\nConnection: close\r\n\r\n")
            .as_bytes(),
    )
    .await?;
    let mut buf = Vec::new();
    sock.read_to_end(&mut buf).await?;
    let elapsed = t0.elapsed();
    let head_end = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .context("no HTTP header in the answer")?;
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .context("bad status line")?;
    let mut body = buf[head_end + 4..].to_vec();
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        body = dechunk(&body);
    }
    Ok((status, body, elapsed))
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = data.windows(2).position(|w| w == b"\r\n") {
        let size_text = String::from_utf8_lossy(&data[..eol]);
        let Ok(size) = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
        else {
            break;
        };
        data = &data[eol + 2..];
        if size == 0 || data.len() < size {
            break;
        }
        out.extend_from_slice(&data[..size]);
        data = &data[(size + 2).min(data.len())..];
    }
    out
}

fn count_pods(path: &str, body: &[u8]) -> Option<usize> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    if path.starts_with("/pods") {
        v["items"].as_array().map(Vec::len)
    } else {
        v["pods"].as_array().map(Vec::len)
    }
}

async fn measure_inner(port: u16, path: &str, samples: usize) -> anyhow::Result<ApiTimes> {
    // One warm-up request, not counted (connection set-up paths, first-use caches).
    let (status, body, _) = tokio::time::timeout(Duration::from_secs(30), get(port, path))
        .await
        .context("timed out")??;
    if status != 200 {
        bail!(
            "HTTP {status}: {}",
            String::from_utf8_lossy(&body)
                .chars()
                .take(120)
                .collect::<String>()
        );
    }
    let mut times = Vec::new();
    let mut bytes = body.len();
    let mut pods = count_pods(path, &body);
    for _ in 0..samples {
        let (status, body, t) = tokio::time::timeout(Duration::from_secs(30), get(port, path))
            .await
            .context("timed out")??;
        if status != 200 {
            bail!("HTTP {status}");
        }
        bytes = body.len();
        pods = count_pods(path, &body).or(pods);
        times.push(t);
    }
    Ok(ApiTimes {
        latency: Dist::from_durations(times),
        bytes,
        pods,
    })
}

/// `kubelet_runtime_operations_total` by operation type, from `/metrics` (None when the
/// kubelet does not serve it).
pub async fn runtime_ops(port: u16) -> Option<BTreeMap<String, f64>> {
    let (status, body, _) = tokio::time::timeout(Duration::from_secs(10), get(port, "/metrics"))
        .await
        .ok()?
        .ok()?;
    if status != 200 {
        return None;
    }
    let text = String::from_utf8_lossy(&body);
    let mut ops = BTreeMap::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("kubelet_runtime_operations_total{operation_type=\"")
        else {
            continue;
        };
        let Some((op, value)) = rest.split_once("\"}") else {
            continue;
        };
        if let Ok(v) = value.trim().parse::<f64>() {
            ops.insert(op.to_string(), v);
        }
    }
    Some(ops)
}

/// `after - before`, operations that did not change left out.
pub fn ops_delta(
    before: &BTreeMap<String, f64>,
    after: &BTreeMap<String, f64>,
) -> BTreeMap<String, f64> {
    after
        .iter()
        .map(|(k, v)| (k.clone(), v - before.get(k).copied().unwrap_or(0.0)))
        .filter(|(_, d)| *d > 0.0)
        .collect()
}

pub async fn measure(port: u16, path: &str, samples: usize) -> ApiResult {
    ApiResult {
        path: path.to_string(),
        outcome: measure_inner(port, path, samples)
            .await
            .map_err(|e| format!("{e:#}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunked() {
        assert_eq!(dechunk(b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"), b"abcde");
    }
}
