//! Watch: a chunked stream of `{"type","object"}` lines. Starts with synthetic ADDED events
//! (resourceVersion unset or "0", or sendInitialEvents), or resumes after a given RV from
//! the retained history; an RV older than the history gets one ERROR event with a 410
//! Expired Status. Objects moving in/out of the selection become ADDED/DELETED, as upstream.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc};

use super::respond::Representation;
use super::{BoxError, Response, resource::render_one};
use crate::error::{ApiError, ApiResult};
use crate::ops::filter::Filter;
use crate::ops::list::{parse_rv, too_large};
use crate::registry::{ResourceDef, from_storage};
use crate::state::Cluster;
use crate::store::{Change, ChangeKind, SnapshotError, Subscription};

struct Watch {
    cl: Arc<Cluster>,
    def: &'static ResourceDef,
    filter: Filter,
    repr: Representation,
    query: HashMap<String, String>,
    bookmarks: bool,
    tx: mpsc::Sender<Bytes>,
}

fn event_line(kind: &str, object: &Value) -> Bytes {
    let mut s = json!({"type": kind, "object": object}).to_string();
    s.push('\n');
    Bytes::from(s)
}

/// Starts a watch; the response streams until timeout, client disconnect, or close.
pub fn start(
    cl: Arc<Cluster>,
    def: &'static ResourceDef,
    namespace: Option<&str>,
    name: Option<&str>,
    q: &HashMap<String, String>,
    repr: Representation,
) -> ApiResult<Response> {
    let mut fields = q.get("fieldSelector").cloned().unwrap_or_default();
    if let Some(n) = name {
        // GET .../pods/<name>?watch=1 is a watch with metadata.name=<name>.
        let term = format!("metadata.name={n}");
        fields = if fields.is_empty() {
            term
        } else {
            format!("{fields},{term}")
        };
    }
    let filter = Filter::new(
        def,
        namespace,
        q.get("labelSelector").map(String::as_str).unwrap_or(""),
        &fields,
    )?;
    let rv = q.get("resourceVersion").map(String::as_str).unwrap_or("");
    let send_initial = q.get("sendInitialEvents").map(|v| v == "true");
    let bookmarks = q
        .get("allowWatchBookmarks")
        .is_some_and(|v| v == "true" || v == "1");
    if send_initial == Some(true)
        && q.get("resourceVersionMatch").map(String::as_str) != Some("NotOlderThan")
    {
        return Err(ApiError::invalid(
            "meta.k8s.io",
            "ListOptions",
            "",
            vec![crate::error::Cause::new(
                "FieldValueForbidden",
                "resourceVersionMatch",
                "Forbidden: sendInitialEvents requires setting resourceVersionMatch to NotOlderThan",
            )],
        ));
    }
    let timeout = q
        .get("timeoutSeconds")
        .and_then(|t| t.parse::<u64>().ok())
        .map(Duration::from_secs)
        .unwrap_or(Duration::from_secs(1800));
    let (tx, rx) = mpsc::channel::<Bytes>(256);
    let w = Watch {
        cl: cl.clone(),
        def,
        filter,
        repr,
        query: q.clone(),
        bookmarks,
        tx,
    };
    let initial = send_initial.unwrap_or(rv.is_empty() || rv == "0");
    let begin: Result<(Vec<Arc<Value>>, Subscription), ApiError> = if initial {
        let (objs, sub) = cl
            .store
            .subscribe_with_state(def.storage, w.filter.namespace());
        if !rv.is_empty() && rv != "0" {
            let want = parse_rv(rv)?;
            if want > sub.current_rv {
                return Err(too_large(want, sub.current_rv));
            }
        }
        Ok((objs, sub))
    } else {
        let want = parse_rv(rv)?;
        match cl.store.subscribe(want) {
            Ok(sub) => Ok((Vec::new(), sub)),
            Err(SnapshotError::Compacted { compacted }) => Err(ApiError::Expired(format!(
                "too old resource version: {want} ({})",
                compacted + 1
            ))),
            Err(SnapshotError::TooNew { current }) => Err(too_large(want, current)),
        }
    };
    let epoch = cl.watch_epoch.subscribe();
    match begin {
        Ok((objs, sub)) => {
            tokio::spawn(async move {
                w.run(
                    objs,
                    sub,
                    initial && send_initial == Some(true),
                    timeout,
                    epoch,
                )
                .await
            });
        }
        Err(e) => {
            // Upstream answers 200 and sends the error as the only event.
            let line = event_line("ERROR", &e.to_status());
            tokio::spawn(async move {
                let _ = w.tx.send(line).await;
            });
        }
    }
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|b| (Ok::<_, BoxError>(Frame::data(b)), rx))
    });
    let mut resp = hyper::Response::new(StreamBody::new(stream).boxed());
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp.headers_mut().insert(
        "Cache-Control",
        HeaderValue::from_static("no-cache, private"),
    );
    Ok(resp)
}

impl Watch {
    fn render(&self, stored: &Value) -> Value {
        render_one(
            self.def,
            from_storage(self.def, stored),
            &self.repr,
            &self.query,
        )
    }

    fn bookmark(&self, rv: u64, initial_end: bool) -> Value {
        let mut md = json!({"resourceVersion": rv.to_string()});
        if initial_end {
            md["annotations"] = json!({"k8s.io/initial-events-end": "true"});
        }
        match &self.repr {
            Representation::Table(v) => {
                json!({"kind": "Table", "apiVersion": format!("meta.k8s.io/{v}"), "metadata": md, "columnDefinitions": [], "rows": []})
            }
            _ => {
                json!({"kind": self.def.kind, "apiVersion": self.def.api_version(), "metadata": md})
            }
        }
    }

    /// The event (if any) a change produces for this watch.
    fn translate(&self, c: &Change) -> Option<Bytes> {
        if c.key.storage != self.def.storage {
            return None;
        }
        let now = self.filter.matches(&c.object);
        let before = c.prev.as_ref().is_some_and(|p| self.filter.matches(p));
        let kind = match (c.kind, before, now) {
            (ChangeKind::Deleted, true, _) => "DELETED",
            (ChangeKind::Deleted, false, _) => return None,
            (ChangeKind::Added, _, true) => "ADDED",
            (ChangeKind::Modified, true, true) => "MODIFIED",
            (ChangeKind::Modified, false, true) => "ADDED",
            (ChangeKind::Modified, true, false) => "DELETED",
            _ => return None,
        };
        Some(event_line(kind, &self.render(&c.object)))
    }

    async fn run(
        self,
        initial: Vec<Arc<Value>>,
        mut sub: Subscription,
        initial_end_bookmark: bool,
        timeout: Duration,
        mut epoch: tokio::sync::watch::Receiver<u64>,
    ) {
        for o in initial.iter().filter(|o| self.filter.matches(o)) {
            if self
                .tx
                .send(event_line("ADDED", &self.render(o)))
                .await
                .is_err()
            {
                return;
            }
        }
        let mut last_rv = sub.current_rv;
        if initial_end_bookmark && self.bookmarks {
            let _ = self
                .tx
                .send(event_line("BOOKMARK", &self.bookmark(last_rv, true)))
                .await;
        }
        for c in std::mem::take(&mut sub.backlog) {
            last_rv = last_rv.max(c.rv);
            if let Some(line) = self.translate(&c)
                && self.tx.send(line).await.is_err()
            {
                return;
            }
        }
        let deadline = tokio::time::sleep(timeout);
        tokio::pin!(deadline);
        let mut ticker = tokio::time::interval(self.cl.bookmark_interval);
        ticker.tick().await;
        loop {
            // Biased, closing first: once `close_watches` returned, no change made after
            // it may reach this watch (a test cuts the kubelet off, then writes).
            tokio::select! {
                biased;
                _ = epoch.changed() => return,
                _ = &mut deadline => return,
                _ = self.tx.closed() => return,
                _ = ticker.tick(), if self.bookmarks => {
                    let rv = last_rv;
                    if self.tx.send(event_line("BOOKMARK", &self.bookmark(rv, false))).await.is_err() {
                        return;
                    }
                }
                msg = sub.live.recv() => match msg {
                    Ok(c) => {
                        if epoch.has_changed().unwrap_or(true) {
                            return;
                        }
                        if c.rv <= last_rv {
                            continue;
                        }
                        last_rv = c.rv;
                        if let Some(line) = self.translate(&c)
                            && self.tx.send(line).await.is_err()
                        {
                            return;
                        }
                    }
                    // A slow watcher is cut off, like upstream; the client re-watches.
                    Err(broadcast::error::RecvError::Lagged(_)) | Err(broadcast::error::RecvError::Closed) => return,
                },
            }
        }
    }
}
