//! Whether the node is ready, with upstream's reasons: the runtime answered its status
//! check (RuntimeReady, NetworkReady) and the PLEG relists (healthy within 3 minutes).

use std::sync::Arc;
use std::time::Duration;

use kubelet_core::runtime::cri::CriClient;
use kubelet_core::runtime::model::{RuntimeSnapshot, now_ns};
use tokio::sync::watch;

use super::conditions::Readiness;

/// Upstream's PLEG relist threshold.
const PLEG_THRESHOLD: Duration = Duration::from_secs(180);

pub struct HealthCheck {
    cri: CriClient,
    snapshots: watch::Receiver<Arc<RuntimeSnapshot>>,
    /// The runtime has answered a status check at least once.
    runtime_seen: bool,
}

impl HealthCheck {
    pub fn new(cri: CriClient, snapshots: watch::Receiver<Arc<RuntimeSnapshot>>) -> Self {
        HealthCheck {
            cri,
            snapshots,
            runtime_seen: false,
        }
    }

    pub async fn readiness(&mut self) -> Readiness {
        let mut errors = Vec::new();
        match self.cri.status().await {
            Ok(status) => {
                self.runtime_seen = true;
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
