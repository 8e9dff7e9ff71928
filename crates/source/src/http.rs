//! The URL source (`--manifest-url` / `staticPodURL`).
//!
//! The URL is fetched at start and then every `check_frequency`, with the configured
//! headers and a 10 s timeout (as upstream). The body is a Pod, a `v1` PodList or a `v1`
//! List of Pods (YAML or JSON); an empty body is an empty set.
//!
//! - Same bytes as the previous answer: nothing is sent (the pods, and their
//!   `kubernetes.io/config.seen`, stay as they are).
//! - A failed request, a non-2xx status, or a body that cannot be decoded at all: the
//!   error is logged (the first few at warning level, then at debug, as upstream) and
//!   the last snapshot stays in force; nothing is sent. After a failure the next try
//!   comes sooner (1 s, doubling, bounded by `check_frequency`).
//!
//! Deliberate differences from upstream:
//! - any 2xx status is accepted (upstream: 200 only);
//! - one invalid pod in a list rejects that pod only, not the whole list; if the
//!   previous snapshot had a pod of the same full name, that previous pod is kept (the
//!   file source's "keep the last good pod" policy);
//! - a `v1` `List` of Pods is accepted besides a `PodList`.

use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::backoff::Backoff;
use crate::error::MAX_MANIFEST_BYTES;
use crate::seen::FirstSeen;
use crate::{
    Pod, SourceError, SourceKind, SourceUpdate, decode, defaults, pod_full_name, pod_uid, same_pods,
};

const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
const MIN_CHECK_FREQUENCY: Duration = Duration::from_millis(100);
/// Longest accepted poll period (keeps timer arithmetic far from overflow).
const MAX_CHECK_FREQUENCY: Duration = Duration::from_secs(365 * 24 * 3600);
const RETRY_INITIAL: Duration = Duration::from_secs(1);
/// Failures logged at warning level before dropping to debug.
const LOUD_FAILURES: u32 = 3;

/// Static pods from a URL.
#[derive(Debug)]
pub struct HttpSource {
    url: String,
    headers: HeaderMap,
    node_name: String,
    check_frequency: Duration,
    client: Result<reqwest::Client, String>,
    /// The body of the last answer processed.
    last_body: Option<Vec<u8>>,
    /// The last snapshot returned.
    last_pods: Option<Vec<Arc<Pod>>>,
    seen: FirstSeen,
}

impl HttpSource {
    /// `headers` are sent with every request (a name may repeat); invalid ones are
    /// logged and skipped.
    pub fn new(
        url: String,
        headers: Vec<(String, String)>,
        node_name: String,
        check_frequency: Duration,
    ) -> Self {
        let client = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .build()
            .map_err(|e| e.to_string());
        Self {
            headers: header_map(&url, headers),
            url,
            node_name,
            check_frequency: check_frequency.clamp(MIN_CHECK_FREQUENCY, MAX_CHECK_FREQUENCY),
            client,
            last_body: None,
            last_pods: None,
            seen: FirstSeen::new(),
        }
    }

    /// Fetches the URL once. `Ok(None)`: nothing changed since the last snapshot.
    pub async fn fetch_once(&mut self) -> Result<Option<SourceUpdate>, SourceError> {
        let client = self
            .client
            .as_ref()
            .map_err(|message| SourceError::Client {
                url: self.url.clone(),
                message: message.clone(),
            })?;
        let http_err = |source| SourceError::Http {
            url: self.url.clone(),
            source,
        };
        let mut resp = client
            .get(&self.url)
            .headers(self.headers.clone())
            .send()
            .await
            .map_err(http_err)?;
        let status = resp.status();
        if !status.is_success() {
            return Err(SourceError::Status {
                url: self.url.clone(),
                status: status.as_u16(),
            });
        }
        let too_large = || SourceError::TooLarge {
            origin: self.url.clone(),
            limit: MAX_MANIFEST_BYTES,
        };
        if resp
            .content_length()
            .is_some_and(|n| n > MAX_MANIFEST_BYTES as u64)
        {
            return Err(too_large());
        }
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(http_err)? {
            if body.len() + chunk.len() > MAX_MANIFEST_BYTES {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        if self.last_body.as_deref() == Some(body.as_slice()) {
            return Ok(None);
        }
        // Remembered before decoding, so the same broken body is reported once.
        self.last_body = Some(body.clone());
        let pods = self.snapshot(&body)?;
        if self
            .last_pods
            .as_ref()
            .is_some_and(|last| same_pods(last, &pods))
        {
            return Ok(None);
        }
        self.last_pods = Some(pods.clone());
        Ok(Some(SourceUpdate {
            source: SourceKind::Http,
            pods,
        }))
    }

    /// Decodes and prepares the body's pods (see the module doc for invalid pods).
    fn snapshot(&mut self, body: &[u8]) -> Result<Vec<Arc<Pod>>, SourceError> {
        let items = decode::decode_pods(body).map_err(|source| SourceError::Decode {
            origin: self.url.clone(),
            source,
        })?;
        let mut pods: Vec<Arc<Pod>> = Vec::with_capacity(items.len());
        for item in items {
            let name = item
                .as_ref()
                .ok()
                .and_then(|p| p.metadata.name.clone())
                .filter(|n| !n.is_empty());
            let namespace = item
                .as_ref()
                .ok()
                .and_then(|p| p.metadata.namespace.clone())
                .filter(|n| !n.is_empty())
                .unwrap_or_else(|| "default".to_string());
            let prepared = item
                .map_err(|source| SourceError::Decode {
                    origin: self.url.clone(),
                    source,
                })
                .and_then(|pod| {
                    defaults::prepare_static_pod(pod, SourceKind::Http, &self.url, &self.node_name)
                        .map_err(|source| SourceError::Invalid {
                            origin: self.url.clone(),
                            source,
                        })
                });
            match prepared {
                Ok(pod) => pods.push(Arc::new(pod)),
                Err(e) => {
                    let full_name = name.map(|n| {
                        format!(
                            "{namespace}/{}",
                            defaults::static_pod_name(&n, &self.node_name)
                        )
                    });
                    let previous = full_name.as_ref().and_then(|fname| {
                        self.last_pods
                            .iter()
                            .flatten()
                            .find(|p| pod_full_name(p) == *fname)
                    });
                    match previous {
                        Some(prev) => {
                            tracing::error!(
                                url = %self.url,
                                "static pod rejected: {e} (keeping the last valid version)"
                            );
                            pods.push(Arc::clone(prev));
                        }
                        None => tracing::error!(url = %self.url, "static pod rejected: {e}"),
                    }
                }
            }
        }
        let pods = self.dedupe(pods);
        let uids = pods.iter().map(|p| pod_uid(p).to_string()).collect();
        self.seen.retain(&uids);
        Ok(pods)
    }

    /// First pod of each full name wins; the first-seen times are applied.
    fn dedupe(&mut self, pods: Vec<Arc<Pod>>) -> Vec<Arc<Pod>> {
        let mut names = std::collections::BTreeSet::new();
        let mut kept = Vec::with_capacity(pods.len());
        for mut pod in pods {
            let full_name = pod_full_name(&pod);
            if !names.insert(full_name.clone()) {
                tracing::error!(
                    url = %self.url,
                    "static pod {full_name} is defined more than once; ignoring the duplicate"
                );
                continue;
            }
            self.seen.stamp_shared(&mut pod);
            kept.push(pod);
        }
        kept
    }

    /// Polls until `cancel` fires or the receiver of `tx` is gone.
    pub async fn run(mut self, tx: mpsc::Sender<SourceUpdate>, cancel: CancellationToken) {
        tracing::debug!(url = %self.url, "URL source started");
        let mut backoff = Backoff::new(RETRY_INITIAL, self.check_frequency);
        let mut failures: u32 = 0;
        loop {
            let result = tokio::select! {
                _ = cancel.cancelled() => return,
                r = self.fetch_once() => r,
            };
            let delay = match result {
                Ok(update) => {
                    if failures > 0 {
                        tracing::info!(url = %self.url, "static pod URL readable again");
                    }
                    failures = 0;
                    backoff.reset();
                    if let Some(update) = update {
                        let sent = tokio::select! {
                            _ = cancel.cancelled() => return,
                            r = tx.send(update) => r,
                        };
                        if sent.is_err() {
                            return;
                        }
                    }
                    self.check_frequency
                }
                Err(e) => {
                    failures = failures.saturating_add(1);
                    if failures <= LOUD_FAILURES {
                        tracing::warn!("cannot read static pods from URL: {e}");
                    } else {
                        tracing::debug!("cannot read static pods from URL: {e}");
                    }
                    backoff.next_delay()
                }
            };
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tokio::time::sleep(delay) => {}
            }
        }
    }
}

fn header_map(url: &str, headers: Vec<(String, String)>) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in headers {
        match (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(&value),
        ) {
            (Ok(n), Ok(v)) => {
                map.append(n, v);
            }
            _ => tracing::error!(%url, header = %name, "invalid manifest URL header, skipped"),
        }
    }
    map
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_keep_repeats_and_skip_invalid() {
        let map = header_map(
            "http://x",
            vec![
                ("X-A".into(), "1".into()),
                ("X-A".into(), "2".into()),
                ("bad name".into(), "v".into()),
                ("X-B".into(), "line\nbreak".into()),
            ],
        );
        let a: Vec<_> = map.get_all("x-a").iter().collect();
        assert_eq!(a.len(), 2);
        assert_eq!(map.len(), 2);
    }
}
