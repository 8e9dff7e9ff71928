//! What the runtime says exists, grouped per pod: the PLEG builds it, workers and the
//! status code read it. Plain data, no behaviour beyond lookups.

use std::collections::HashMap;
use std::sync::Arc;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContainerState {
    Created,
    Running,
    Exited,
    Unknown,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObservedSandbox {
    pub id: String,
    pub attempt: u32,
    pub ready: bool,
    pub created_at: i64,
    /// Pod IPs, primary first (empty for host-network pods or before the network is set up).
    pub ips: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObservedContainer {
    pub id: String,
    pub name: String,
    pub sandbox_id: String,
    pub state: ContainerState,
    pub created_at: i64,
    pub started_at: i64,
    pub finished_at: i64,
    pub exit_code: i32,
    pub reason: String,
    pub message: String,
    pub image: String,
    pub image_ref: String,
    pub hash: String,
    pub restart_count: u32,
}

/// Everything the runtime holds for one pod UID, newest first in each list.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ObservedPod {
    pub uid: String,
    pub name: String,
    pub namespace: String,
    /// From the container annotation, for orphans whose spec is gone.
    pub termination_grace_seconds: Option<i64>,
    pub sandboxes: Vec<ObservedSandbox>,
    pub containers: Vec<ObservedContainer>,
}

impl ObservedPod {
    pub fn latest_sandbox(&self) -> Option<&ObservedSandbox> {
        self.sandboxes.first()
    }

    /// Newest container with this name (any sandbox).
    pub fn latest_container(&self, name: &str) -> Option<&ObservedContainer> {
        self.containers.iter().find(|c| c.name == name)
    }

    /// Containers with this name, newest first.
    pub fn containers_named<'a>(
        &'a self,
        name: &'a str,
    ) -> impl Iterator<Item = &'a ObservedContainer> {
        self.containers.iter().filter(move |c| c.name == name)
    }

    pub fn running_containers(&self) -> impl Iterator<Item = &ObservedContainer> {
        self.containers.iter().filter(|c| {
            matches!(
                c.state,
                ContainerState::Running | ContainerState::Unknown | ContainerState::Created
            )
        })
    }
}

/// One relist's view of the whole runtime. Unchanged pods keep the same `Arc` between
/// snapshots, so a worker can tell in O(1) whether its pod changed.
#[derive(Debug, Default)]
pub struct RuntimeSnapshot {
    pub generation: u64,
    /// Wall clock (ns since epoch) when the relist that built this snapshot started.
    pub taken_at_ns: i64,
    /// False until the first successful relist, and after a failed one.
    pub healthy: bool,
    pub pods: HashMap<String, Arc<ObservedPod>>,
}

impl RuntimeSnapshot {
    pub fn pod(&self, uid: &str) -> Option<&Arc<ObservedPod>> {
        self.pods.get(uid)
    }
}

pub fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}
