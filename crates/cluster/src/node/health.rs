//! Whether the node is ready, with upstream's reasons: the runtime answered its status
//! check (RuntimeReady, NetworkReady) and the PLEG relists (healthy within 3 minutes).

use std::sync::Arc;
use std::time::Duration;

use kubelet_core::runtime::cri::CriClient;
use kubelet_core::runtime::model::{RuntimeSnapshot, now_ns};
use tokio::sync::watch;

use super::conditions::Readiness;
use super::runtime_features::RuntimeFeatures;

/// Upstream's PLEG relist threshold.
const PLEG_THRESHOLD: Duration = Duration::from_secs(180);

pub struct HealthCheck {
    cri: CriClient,
    snapshots: watch::Receiver<Arc<RuntimeSnapshot>>,
    /// The runtime has answered a status check at least once.
    runtime_seen: bool,
    /// Handlers and features from the runtime's last status answer.
    features: RuntimeFeatures,
}

impl HealthCheck {
    pub fn new(cri: CriClient, snapshots: watch::Receiver<Arc<RuntimeSnapshot>>) -> Self {
        HealthCheck {
            cri,
            snapshots,
            runtime_seen: false,
            features: RuntimeFeatures::default(),
        }
    }

    /// What the runtime said it supports at its last status check.
    pub fn runtime_features(&self) -> RuntimeFeatures {
        self.features.clone()
    }

    pub async fn readiness(&mut self) -> Readiness {
        let mut errors = Vec::new();
        match self.cri.status().await {
            Ok(status) => {
                self.runtime_seen = true;
                self.features = super::runtime_features::from_status(&status);
                for c in status.status.iter().flat_map(|s| s.conditions.iter()) {
                    if c.status {
                        continue;
                    }
                    let detail = format!(
                        "{}=false reason:{} message:{}",
                        c.r#type, c.reason, c.message
                    );
                    match c.r#type.as_str() {
                        "RuntimeReady" => {
                            errors.push(format!("container runtime not ready: {detail}"))
                        }
                        "NetworkReady" => {
                            errors.push(format!("container runtime network not ready: {detail}"))
                        }
                        _ => {}
                    }
                }
            }
            Err(_) if !self.runtime_seen => {
                errors.push("container runtime status check may not have completed yet".into());
            }
            Err(_) => errors.push("container runtime is down".into()),
        }
        let snapshot = self.snapshots.borrow().clone();
        if snapshot.generation == 0 && !snapshot.healthy {
            errors.push("PLEG is not healthy: pleg has yet to be successful".into());
        } else {
            let age = Duration::from_nanos((now_ns() - snapshot.taken_at_ns).max(0) as u64);
            if age > PLEG_THRESHOLD {
                errors.push(format!(
                    "PLEG is not healthy: pleg was last seen active {}s ago; threshold is 3m0s",
                    age.as_secs()
                ));
            }
        }
        Readiness { errors }
    }
}
