//! Static pod sources: the file source (a directory or one file) and the URL source.
//!
//! Every source sends *complete snapshots* of its pods (set semantics) as [`SourceUpdate`]s;
//! [`merge`] folds them into one [`DesiredPods`] view. Pods leave this crate decoded,
//! validated, defaulted, named `<name>-<nodeName>`, with a deterministic UID and the
//! `kubernetes.io/config.*` annotations set. This crate knows nothing of the runtime.
//!
//! INTERFACE CONTRACT (used by the kubelet binary; keep these names and shapes):
//! - `SourceKind` (`File`, `Http`, later `Api`), `as_str()` -> "file" | "http" | "api".
//! - `SourceUpdate { source: SourceKind, pods: Vec<Arc<Pod>> }`.
//! - `DesiredPods { pods: BTreeMap<String /*uid*/, Arc<Pod>>, all_sources_ready: bool }`.
//! - `file::FileSource::new(path, node_name, check_frequency).run(tx, cancel).await`;
//!   `FileSource::read_once(&self) -> SourceUpdate`; `file::load_manifest(path, node_name)`
//!   and `file::prepare_manifest(bytes, origin, node_name)` for one-off checks.
//! - `http::HttpSource::new(url, headers: Vec<(String,String)>, node_name, check_frequency)
//!   .run(tx, cancel).await`; `HttpSource::fetch_once(&mut self).await
//!   -> Result<Option<SourceUpdate>, SourceError>`.
//! - `merge::run(expected_sources: BTreeSet<SourceKind>, rx, watch_tx, cancel).await`
//!   (runs until `cancel`; keeps the watch sender alive even when every source is gone).
//! - `decode::{decode_pod, decode_pods}`; `defaults::prepare_static_pod(pod, source,
//!   source_location, node_name) -> Result<Pod, ValidationError>`.
//!
//! Module map (one job each):
//! - [`decode`]: bytes (YAML or JSON) to `Pod`s, with positioned error messages.
//! - [`defaults`]: static-pod preparation (UID, naming, annotations, API defaults) and
//!   the entry point that also validates.
//! - [`validation`]: the essentials of upstream `ValidatePodCreate`, with upstream-style
//!   field paths.
//! - [`seen`]: first-seen timestamps (`kubernetes.io/config.seen`) that stay stable.
//! - [`file`], [`http`]: the two static sources; [`merge`]: the per-source snapshot merge.
//!
//! See `docs/static-pods.md` for the behaviour and the deliberate differences from upstream.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

pub use k8s_openapi::api::core::v1::Pod;

pub mod annotations;
mod backoff;
pub mod decode;
pub mod defaults;
mod error;
pub mod file;
pub mod http;
pub mod merge;
pub mod seen;
pub mod validation;

pub use decode::DecodeError;
pub use error::SourceError;
pub use validation::{FieldError, ValidationError};

/// Where a pod came from. The order (`File` < `Http` < `Api`) is the precedence used
/// when two sources claim the same pod full name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SourceKind {
    /// `--pod-manifest-path` / `staticPodPath`.
    File,
    /// `--manifest-url` / `staticPodURL`.
    Http,
    /// Pods bound to this node by the API server.
    Api,
}

impl SourceKind {
    /// The value used in `kubernetes.io/config.source`.
    pub fn as_str(self) -> &'static str {
        match self {
            SourceKind::File => "file",
            SourceKind::Http => "http",
            SourceKind::Api => "api",
        }
    }
}

impl fmt::Display for SourceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A complete snapshot of one source's pods (not a delta). The pods are shared: a
/// source, the merge and every consumer of [`DesiredPods`] hold the same `Arc`, so a
/// running pod's spec is kept in memory once, not once per stage.
#[derive(Clone, Debug, PartialEq)]
pub struct SourceUpdate {
    pub source: SourceKind,
    pub pods: Vec<Arc<Pod>>,
}

/// Whether two snapshots hold the same pods: pointer equality first (a source re-sends
/// the `Arc`s of unchanged pods), then by value.
pub(crate) fn same_pods(a: &[Arc<Pod>], b: &[Arc<Pod>]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| Arc::ptr_eq(x, y) || x == y)
}

/// The merged view of every source, keyed by pod UID.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DesiredPods {
    pub pods: BTreeMap<String, Arc<Pod>>,
    /// True once every expected source has delivered at least one snapshot.
    pub all_sources_ready: bool,
}

/// `namespace/name` of a pod, the key upstream uses to detect duplicates.
pub fn pod_full_name(pod: &Pod) -> String {
    format!(
        "{}/{}",
        pod.metadata.namespace.as_deref().unwrap_or_default(),
        pod.metadata.name.as_deref().unwrap_or_default()
    )
}

/// The pod's UID, or "" when unset.
pub fn pod_uid(pod: &Pod) -> &str {
    pod.metadata.uid.as_deref().unwrap_or_default()
}
