//! Shared, read-only views the handlers answer from.

use std::sync::Arc;
use std::time::Instant;

use k8s_openapi::api::core::v1::Pod;
use kubelet_core::runtime::cri::CriClient;
use kubelet_core::runtime::model::{ObservedPod, RuntimeSnapshot};
use kubelet_core::status::store::StatusStore;
use kubelet_metrics::KubeletMetrics;
use tokio::sync::watch;

use crate::auth::{SubjectAccessReviewer, TokenReviewer};
use crate::settings::ServerSettings;
use crate::stats::{Cgroups, CpuSampler};

/// What the binary hands the node API.
#[derive(Clone)]
pub struct ServerDeps {
    pub statuses: StatusStore,
    pub snapshots: watch::Receiver<Arc<RuntimeSnapshot>>,
    pub cri: CriClient,
    pub metrics: KubeletMetrics,
    /// API-server clients for Webhook authentication/authorization (cluster mode).
    pub reviewers: Reviewers,
    /// Writes the API server refused as Invalid (cluster mode): the `apiserver-writes`
    /// healthz check and `kubelet_api_server_invalid_writes_total`.
    pub rejected_writes: Option<Arc<dyn RejectedWrites>>,
}

/// A write the API server refuses as Invalid, standing until it is accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RejectedWrite {
    /// What the kubelet tried, e.g. `register node`.
    pub operation: String,
    /// The object, e.g. `vm` or `default/web-1`.
    pub object: String,
    /// `field: message` of each cause.
    pub message: String,
    /// Refusals in a row.
    pub count: u64,
}

/// Cluster mode's record of refused writes.
pub trait RejectedWrites: Send + Sync {
    /// The refusals standing now.
    fn standing(&self) -> Vec<RejectedWrite>;
    /// Refusals since start, by operation.
    fn totals(&self) -> Vec<(String, u64)>;
}

/// The TokenReview and SubjectAccessReview senders; none in standalone mode.
#[derive(Clone, Default)]
pub struct Reviewers {
    pub tokens: Option<Arc<dyn TokenReviewer>>,
    pub access: Option<Arc<dyn SubjectAccessReviewer>>,
}

pub(crate) struct AppState {
    pub settings: ServerSettings,
    pub deps: ServerDeps,
    pub started: Instant,
    pub cpu: CpuSampler,
    /// Where the cgroup hierarchies usage is read from: the ones the kubelet detected at
    /// start (`settings.cgroups`). They do not move while the kubelet runs, and
    /// /proc/self/mountinfo lists every container's mounts (reading it was a tenth of the
    /// idle kubelet's CPU when done at every sample).
    pub cgroups: Cgroups,
}

pub(crate) type Shared = Arc<AppState>;

impl AppState {
    pub fn new(settings: ServerSettings, deps: ServerDeps) -> Shared {
        Arc::new(AppState {
            deps,
            started: Instant::now(),
            cpu: CpuSampler::default(),
            cgroups: Cgroups::from_mounts(&settings.cgroups.host.mounts),
            settings,
        })
    }

    pub fn snapshot(&self) -> Arc<RuntimeSnapshot> {
        self.deps.snapshots.borrow().clone()
    }

    /// The pod the kubelet runs with this namespace and name.
    pub fn pod_by_name(&self, namespace: &str, name: &str) -> Option<Arc<Pod>> {
        self.deps.statuses.list().into_iter().find(|p| {
            p.metadata.name.as_deref() == Some(name)
                && p.metadata.namespace.as_deref().unwrap_or("default") == namespace
        })
    }

    /// What the runtime holds for a pod UID.
    pub fn observed(&self, uid: &str) -> Option<Arc<ObservedPod>> {
        self.snapshot().pod(uid).cloned()
    }
}
