//! The node Lease in `kube-node-lease` (upstream nodelease controller): created owned by
//! the Node, renewed every quarter of `nodeLeaseDurationSeconds` (10 s for the default
//! 40 s). A renewal that fails is retried with backoff; a conflict re-reads the Lease.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::api::core::v1::Node;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta, OwnerReference};
use kube::api::{Api, PostParams};
use tokio_util::sync::CancellationToken;

use crate::backoff::Backoff;
use crate::error::{ClusterError, with_timeout};

pub const NAMESPACE: &str = "kube-node-lease";

pub struct LeaseRenewer {
    leases: Api<Lease>,
    nodes: Api<Node>,
    node_name: String,
    duration_seconds: i32,
    latest: Option<Lease>,
}

impl LeaseRenewer {
    pub fn new(client: kube::Client, node_name: String, duration_seconds: i32) -> Self {
        LeaseRenewer {
            leases: Api::namespaced(client.clone(), NAMESPACE),
            nodes: Api::all(client),
            node_name,
            duration_seconds,
            latest: None,
        }
    }

    pub fn interval(&self) -> Duration {
        Duration::from_secs_f64(f64::from(self.duration_seconds.max(4)) * 0.25)
    }

    pub async fn run(mut self, cancel: CancellationToken) {
        let interval = self.interval();
        let mut backoff = Backoff::new(
            Duration::from_millis(200),
            interval.max(Duration::from_secs(1)),
        );
        loop {
            let wait = match self.renew(interval).await {
                Ok(()) => {
                    backoff.reset();
                    interval
                }
                Err(err) => {
                    tracing::warn!(node = %self.node_name, error = %err, "failed to renew node lease; will retry");
                    self.latest = None;
                    backoff.next_delay()
                }
            };
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// One renewal: create the Lease if needed, else update its renewTime.
    pub async fn renew(&mut self, limit: Duration) -> Result<(), ClusterError> {
        let current = match self.latest.take() {
            Some(l) => Some(l),
            None => with_timeout(limit, self.leases.get_opt(&self.node_name)).await?,
        };
        let now = crate::time::now_micro();
        let updated = match current {
            None => {
                let lease = self.new_lease(now).await;
                with_timeout(limit, self.leases.create(&PostParams::default(), &lease)).await?
            }
            Some(mut lease) => {
                let spec = lease.spec.get_or_insert_with(Default::default);
                spec.holder_identity = Some(self.node_name.clone());
                spec.lease_duration_seconds = Some(self.duration_seconds);
                spec.renew_time = Some(now);
                if lease
                    .metadata
                    .owner_references
                    .as_ref()
                    .is_none_or(|o| o.is_empty())
                    && let Some(owner) = self.owner().await
                {
                    lease.metadata.owner_references = Some(vec![owner]);
                }
                match with_timeout(
                    limit,
                    self.leases
                        .replace(&self.node_name, &PostParams::default(), &lease),
                )
                .await
                {
                    Ok(l) => l,
                    Err(e) => return Err(e),
                }
            }
        };
        self.latest = Some(updated);
        Ok(())
    }

    async fn owner(&self) -> Option<OwnerReference> {
        let node = self.nodes.get_opt(&self.node_name).await.ok().flatten()?;
        Some(OwnerReference {
            api_version: "v1".into(),
            kind: "Node".into(),
            name: self.node_name.clone(),
            uid: node.metadata.uid?,
            ..Default::default()
        })
    }

    async fn new_lease(&self, now: MicroTime) -> Lease {
        Lease {
            metadata: ObjectMeta {
                name: Some(self.node_name.clone()),
                namespace: Some(NAMESPACE.into()),
                owner_references: self.owner().await.map(|o| vec![o]),
                ..Default::default()
            },
            spec: Some(LeaseSpec {
                holder_identity: Some(self.node_name.clone()),
                lease_duration_seconds: Some(self.duration_seconds),
                renew_time: Some(now),
                ..Default::default()
            }),
        }
    }
}
