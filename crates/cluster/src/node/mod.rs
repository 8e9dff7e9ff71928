//! The Node: registration, status every `nodeStatusUpdateFrequency` (reported when it
//! changed or every `nodeStatusReportFrequency`), and the Lease.
//!
//! At start the status is checked every 500 ms until the node is ready, so the Node goes
//! NotReady → Ready as soon as the runtime and the PLEG are up (upstream's fast status
//! update), then every `nodeStatusUpdateFrequency`.

pub mod capacity;
pub mod conditions;
pub mod health;
pub mod images;
pub mod info;
pub mod lease;
pub mod register;
pub mod runtime_features;
pub mod status;

use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Node, NodeStatus};
use kube::api::{Api, Patch, PatchParams};
use kubelet_core::runtime::cri::CriClient;
use kubelet_core::runtime::model::RuntimeSnapshot;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::backoff::Backoff;
use crate::error::{ClusterError, with_timeout};
use crate::rejections::Rejections;
use capacity::{Machine, Reservations};
use conditions::Pressure;
use health::HealthCheck;
use register::Registration;

/// Node settings from the kubelet configuration.
#[derive(Debug, Clone)]
pub struct NodeSettings {
    pub registration: Registration,
    pub register_node: bool,
    pub node_ips: Vec<String>,
    pub kubelet_port: i32,
    pub update_frequency: Duration,
    pub report_frequency: Duration,
    pub lease_duration_seconds: i32,
    pub max_images: i32,
    pub reservations: Reservations,
    pub root_dir: std::path::PathBuf,
}

pub struct NodeManager {
    client: kube::Client,
    settings: NodeSettings,
    health: HealthCheck,
    cri: CriClient,
    pressure: Option<watch::Receiver<Pressure>>,
    /// Published after each successful registration (the Node as the server has it).
    registered: watch::Sender<Option<Arc<Node>>>,
    rejections: Rejections,
}

const REGISTER: &str = "register node";
const PATCH_STATUS: &str = "update node status";

impl NodeManager {
    pub fn new(
        client: kube::Client,
        settings: NodeSettings,
        cri: CriClient,
        snapshots: watch::Receiver<Arc<RuntimeSnapshot>>,
        pressure: Option<watch::Receiver<Pressure>>,
        rejections: Rejections,
    ) -> Self {
        NodeManager {
            rejections,
            health: HealthCheck::new(cri.clone(), snapshots),
            client,
            settings,
            cri,
            pressure,
            registered: watch::Sender::new(None),
        }
    }

    /// The registered Node (None until registration succeeded).
    pub fn registered(&self) -> watch::Receiver<Option<Arc<Node>>> {
        self.registered.subscribe()
    }

    pub async fn run(mut self, loops: kubelet_core::supervisor::Loops, cancel: CancellationToken) {
        let nodes: Api<Node> = Api::all(self.client.clone());
        if self.settings.register_node && !self.register_until_done(&nodes, &cancel).await {
            return;
        }
        let lease = lease::LeaseRenewer::new(
            self.client.clone(),
            self.settings.registration.node_name.clone(),
            self.settings.lease_duration_seconds,
        );
        loops.spawn("node-lease", lease.run(cancel.clone()));

        let mut last_report: Option<(NodeStatus, Instant)> = None;
        let mut backoff = Backoff::new(Duration::from_millis(500), self.settings.update_frequency);
        let mut ever_ready = false;
        loop {
            let name = self.settings.registration.node_name.clone();
            let wait = match self.update(&nodes, &mut last_report).await {
                Ok(ready) => {
                    self.rejections.accepted(PATCH_STATUS, &name);
                    backoff.reset();
                    ever_ready |= ready;
                    if ever_ready {
                        self.settings.update_frequency
                    } else {
                        Duration::from_millis(500)
                    }
                }
                Err(err) => {
                    if !self.rejections.record(PATCH_STATUS, &name, &err) {
                        tracing::warn!(node = %name, error = %err, "error updating node status, will retry");
                    }
                    backoff.next_delay()
                }
            };
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// Register with bounded backoff (100 ms doubling to 7 s, as upstream) until it works.
    async fn register_until_done(&mut self, nodes: &Api<Node>, cancel: &CancellationToken) -> bool {
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(7));
        loop {
            tracing::info!(node = %self.settings.registration.node_name, "attempting to register node");
            // The Node is created with its status, so it is never seen without one.
            let facts = self.facts().await;
            let status = status::build(None, &facts, &crate::time::now());
            let name = self.settings.registration.node_name.clone();
            match register::register(nodes, &self.settings.registration, status).await {
                Ok(node) => {
                    self.rejections.accepted(REGISTER, &name);
                    self.registered.send_replace(Some(Arc::new(node)));
                    return true;
                }
                Err(err) => {
                    if !self.rejections.record(REGISTER, &name, &err) {
                        tracing::warn!(node = %name, error = %err, "unable to register node with API server");
                    }
                }
            }
            if !backoff.wait(cancel).await {
                return false;
            }
        }
    }

    async fn facts(&mut self) -> status::NodeFacts {
        let pressure = self
            .pressure
            .as_ref()
            .map(|p| *p.borrow())
            .unwrap_or_default();
        let mut readiness = self.health.readiness().await;
        if pressure.shutting_down {
            readiness.errors.push("node is shutting down".into());
        }
        let runtime_version = match self.cri.version().await {
            Ok(v) => format!("{}://{}", v.runtime_name, v.runtime_version),
            Err(_) => String::new(),
        };
        let images = match self.cri.list_images().await {
            Ok(list) => images::node_images(list, self.settings.max_images),
            Err(_) => Vec::new(),
        };
        let machine = Machine::read(&self.settings.root_dir);
        status::NodeFacts {
            resources: capacity::compute(&machine, &self.settings.reservations),
            addresses: info::addresses(
                &self.settings.node_ips,
                &self.settings.registration.hostname,
            ),
            info: info::system_info(&runtime_version),
            images,
            readiness,
            pressure,
            kubelet_port: self.settings.kubelet_port,
            runtime: self.health.runtime_features(),
        }
    }

    /// One status update. Returns whether the node is ready.
    async fn update(
        &mut self,
        nodes: &Api<Node>,
        last: &mut Option<(NodeStatus, Instant)>,
    ) -> Result<bool, ClusterError> {
        let limit = Duration::from_secs(10);
        let name = self.settings.registration.node_name.clone();
        let current = match with_timeout(limit, nodes.get_opt(&name)).await? {
            Some(n) => n,
            None if self.settings.register_node => {
                tracing::warn!(node = %name, "node object is gone; registering it again");
                let facts = self.facts().await;
                let status = status::build(None, &facts, &crate::time::now());
                let node = register::register(nodes, &self.settings.registration, status).await?;
                self.registered.send_replace(Some(Arc::new(node.clone())));
                node
            }
            None => return Err(ClusterError::Api(format!("node {name:?} not found"))),
        };
        let facts = self.facts().await;
        let ready = facts.readiness.errors.is_empty();
        let now = crate::time::now();
        let new_status = status::build(current.status.as_ref(), &facts, &now);
        let unchanged = last.as_ref().is_some_and(|(prev, at)| {
            status::same_but_heartbeats(prev, &new_status)
                && at.elapsed() < self.settings.report_frequency
        }) && current
            .status
            .as_ref()
            .is_some_and(|s| status::same_but_heartbeats(s, &new_status));
        if unchanged {
            return Ok(ready);
        }
        let patch = serde_json::json!({ "status": new_status });
        with_timeout(
            limit,
            nodes.patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch)),
        )
        .await?;
        tracing::debug!(node = %name, ready, "node status updated");
        *last = Some((new_status, Instant::now()));
        Ok(ready)
    }
}
