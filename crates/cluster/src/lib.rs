//! Cluster mode: the kubelet as a Node of a Kubernetes cluster (`--kubeconfig`).
//!
//! - [`client`]: the API client from a kubeconfig, with the QPS/burst limit.
//! - [`node`]: registration, node status and the Lease.
//! - [`pods`]: the API pod source, the status manager (status patches and the final
//!   delete of gracefully deleted pods) and mirror pods for static pods.
//! - [`objects`]: ConfigMaps, Secrets, Services and tokens for pod workers.
//! - [`events`]: the event recorder.
//! - [`webhook`]: TokenReview / SubjectAccessReview for the node API.
//! - [`bootstrap`]: TLS bootstrap of the client certificate (`--bootstrap-kubeconfig`).
//!
//! The binary calls [`Cluster::connect`], hands [`Cluster::objects`] and
//! [`Cluster::events`] to the pod workers, feeds [`Cluster::pod_source`] into the source
//! merge, and finally [`Cluster::start`]s the background loops. Each loop survives errors
//! (logs, backs off, retries); the API server may come and go.

pub mod backoff;
pub mod bootstrap;
pub mod client;
pub mod error;
pub mod events;
pub mod node;
pub mod objects;
pub mod pods;
pub mod rejections;
pub mod rotation;
pub mod serving;
pub mod time;
pub mod webhook;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;

use kubelet_core::events::EventSink;
use kubelet_core::objects::ApiObjects;
use kubelet_core::runtime::cri::CriClient;
use kubelet_core::runtime::model::RuntimeSnapshot;
use kubelet_core::status::store::StatusStore;
use kubelet_source::DesiredPods;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

pub use error::ClusterError;
pub use node::NodeSettings;
pub use node::conditions::Pressure;

/// Cluster-mode settings.
#[derive(Debug, Clone)]
pub struct ClusterSettings {
    pub kubeconfig: PathBuf,
    pub node: NodeSettings,
    pub kube_api_qps: f64,
    pub kube_api_burst: u32,
    pub event_qps: f64,
    pub event_burst: u32,
    /// `rotateCertificates` with a bootstrapped certificate: the cert dir holding
    /// `kubelet-client-current.pem`.
    pub rotate_in: Option<PathBuf>,
    /// `serverTLSBootstrap`: the serving certificate comes from a kubelet-serving CSR
    /// and is kept in this cert dir.
    pub serving_cert_dir: Option<PathBuf>,
}

/// What the cluster loops read from the rest of the kubelet.
pub struct ClusterDeps {
    /// Where the cluster-mode loops are spawned (supervised).
    pub loops: kubelet_core::supervisor::Loops,
    pub cri: CriClient,
    pub snapshots: watch::Receiver<Arc<RuntimeSnapshot>>,
    pub statuses: StatusStore,
    pub desired: watch::Receiver<DesiredPods>,
    /// Deleted pods whose termination completed (from the dispatcher).
    pub terminated: watch::Receiver<BTreeSet<String>>,
    /// Node pressure from the eviction manager, when there is one.
    pub pressure: Option<watch::Receiver<Pressure>>,
}

pub struct Cluster {
    settings: ClusterSettings,
    client: kube::Client,
    objects: Arc<objects::ClusterObjects>,
    recorder: Arc<events::EventRecorder>,
    event_sender: events::EventSender,
    api_pods: watch::Sender<Arc<pods::ApiPods>>,
    rotation: Option<rotation::Rotation>,
    serving: Option<Arc<kubelet_server::tls::ServingCert>>,
    rejections: rejections::Rejections,
    cancel: CancellationToken,
}

impl Cluster {
    /// Build the client (no request is made yet: the API server may be down).
    pub async fn connect(
        settings: ClusterSettings,
        cancel: CancellationToken,
    ) -> Result<Cluster, ClusterError> {
        let (client, rotation) = match &settings.rotate_in {
            None => (
                client::connect(
                    &settings.kubeconfig,
                    settings.kube_api_qps,
                    settings.kube_api_burst,
                )
                .await?,
                None,
            ),
            Some(dir) => {
                let pem = std::fs::read(dir.join(bootstrap::CURRENT)).map_err(|e| {
                    ClusterError::Bootstrap(format!("reading the client certificate: {e}"))
                })?;
                let current = client::rotating::CurrentCert::from_pem(&pem)?;
                let config = client::kubeconfig::load(&settings.kubeconfig).await?;
                let client = client::rotating::build(
                    config,
                    current.clone(),
                    settings.kube_api_qps,
                    settings.kube_api_burst,
                )?;
                let rotation = rotation::Rotation {
                    client: client.clone(),
                    cert_dir: dir.clone(),
                    node_name: settings.node.registration.node_name.clone(),
                    current,
                };
                (client, Some(rotation))
            }
        };
        let objects = objects::ClusterObjects::new(client.clone(), cancel.clone());
        let (recorder, event_sender) = events::recorder(
            client.clone(),
            settings.node.registration.node_name.clone(),
            settings.event_qps,
            settings.event_burst,
        );
        Ok(Cluster {
            client,
            objects,
            recorder: Arc::new(recorder),
            event_sender,
            api_pods: watch::Sender::new(Arc::new(pods::ApiPods::default())),
            rotation,
            serving: settings
                .serving_cert_dir
                .as_ref()
                .map(|_| Arc::new(kubelet_server::tls::ServingCert::default())),
            settings,
            rejections: rejections::Rejections::default(),
            cancel,
        })
    }

    pub fn client(&self) -> kube::Client {
        self.client.clone()
    }

    pub fn objects(&self) -> Arc<dyn ApiObjects> {
        self.objects.clone()
    }

    pub fn events(&self) -> Arc<dyn EventSink> {
        self.recorder.clone()
    }

    /// The serving certificate the node API must use (`serverTLSBootstrap`); empty
    /// until the CSR is issued.
    pub fn serving_cert(&self) -> Option<Arc<kubelet_server::tls::ServingCert>> {
        self.serving.clone()
    }

    /// Writes the API server refused as Invalid, for the node API's healthz and metrics.
    pub fn rejected_writes(&self) -> Arc<dyn kubelet_server::RejectedWrites> {
        Arc::new(self.rejections.clone())
    }

    /// The webhook reviewers for the node API.
    pub fn reviews(&self) -> webhook::Reviews {
        webhook::Reviews::new(self.client.clone())
    }

    /// The API pod source; run it with the merge's sender.
    pub fn pod_source(&self) -> pods::source::ApiPodSource {
        pods::source::ApiPodSource::new(
            self.client.clone(),
            self.settings.node.registration.node_name.clone(),
            self.api_pods.clone(),
        )
    }

    /// Start the node manager, lease, status manager, mirror pods and event sending.
    pub fn start(self, deps: ClusterDeps) {
        let cancel = self.cancel.clone();
        let node_name = self.settings.node.registration.node_name.clone();
        let manager = node::NodeManager::new(
            self.client.clone(),
            self.settings.node.clone(),
            deps.cri.clone(),
            deps.snapshots.clone(),
            deps.pressure,
            self.rejections.clone(),
        );
        let registered = manager.registered();
        let loops = deps.loops;
        loops.spawn("node-status", manager.run(loops.clone(), cancel.clone()));
        let status = pods::status_manager::StatusManager::new(
            self.client.clone(),
            deps.statuses,
            self.api_pods.subscribe(),
            deps.terminated,
            self.rejections.clone(),
        );
        loops.spawn("pod-status-manager", status.run(cancel.clone()));
        let mirrors = pods::mirror::MirrorManager::new(
            self.client.clone(),
            node_name,
            deps.desired,
            self.api_pods.subscribe(),
            registered,
        );
        loops.spawn("mirror-pods", mirrors.run(cancel.clone()));
        if let (Some(slot), Some(dir)) = (self.serving, self.settings.serving_cert_dir.clone()) {
            let manager = serving::ServingCertManager {
                client: self.client.clone(),
                node_name: self.settings.node.registration.node_name.clone(),
                cert_dir: dir,
                addresses: node::info::addresses(
                    &self.settings.node.node_ips,
                    &self.settings.node.registration.hostname,
                ),
                slot,
            };
            // Stops on its own (logged) when no certificate can be requested.
            loops.spawn_finite("serving-certificate", manager.run(cancel.clone()));
        }
        if let Some(rotation) = self.rotation {
            // Stops on its own (logged) when the current certificate is unreadable.
            loops.spawn_finite("client-certificate-rotation", rotation.run(cancel.clone()));
        }
        loops.spawn("event-sender", self.event_sender.run(cancel));
    }
}
