//! `/stats/summary`: node, pod and container CPU, memory, filesystem and network
//! usage, the shape metrics-server and `kubectl top` read. Container figures come from
//! CRI `ListContainerStats`; pod figures from the pod cgroup (CPU, memory, processes) and
//! the sandbox's network namespace (/proc/<pid>/net/dev), as upstream's cAdvisor path
//! does, rather than CRI `ListPodSandboxStats`, which containerd answers by asking every
//! pod's shim (~20 ms a pod); node figures from the root cgroup and /proc, filesystems
//! from statvfs and a `du` of log and volume directories.

mod cgroup;
mod du;
mod host;
mod node;
mod pods;
mod psi;
pub mod resource_metrics;
mod sampler;
pub mod types;

use std::collections::HashMap;
use std::sync::Arc;

use k8s_cri::v1 as cri;
use kubelet_core::runtime::labels;

pub use cgroup::Cgroups;
pub use sampler::CpuSampler;
pub use types::*;

use crate::error::ApiError;
use crate::state::Shared;

/// What the runtime reported for one request, gathered before the blocking work.
pub(crate) struct RuntimeReadings {
    pub containers: HashMap<String, cri::ContainerStats>,
    pub image_fs: Option<cri::ImageFsInfoResponse>,
}

async fn read_runtime(state: &Shared) -> Result<RuntimeReadings, ApiError> {
    let selector = HashMap::from([(
        labels::MANAGED_BY_NODE.to_string(),
        state.settings.node_name.clone(),
    )]);
    let cri = &state.deps.cri;
    let (containers, image_fs) = tokio::join!(
        cri.list_container_stats(Some(cri::ContainerStatsFilter {
            label_selector: selector,
            ..Default::default()
        })),
        cri.image_fs_info(),
    );
    let containers = containers
        .map_err(|e| ApiError::Internal(format!("failed to list container stats: {e}")))?;
    let image_fs = image_fs
        .map_err(|e| tracing::debug!(error = %e, "ImageFsInfo failed"))
        .ok();
    Ok(RuntimeReadings {
        containers: containers
            .into_iter()
            .filter_map(|s| Some((s.attributes.as_ref()?.id.clone(), s)))
            .collect(),
        image_fs,
    })
}

/// The summary now. `only_cpu_and_memory` leaves out filesystems, network and volumes.
pub(crate) async fn summary(
    state: &Shared,
    only_cpu_and_memory: bool,
) -> Result<Summary, ApiError> {
    let readings = read_runtime(state).await?;
    let state = Arc::clone(state);
    tokio::task::spawn_blocking(move || {
        let ctx = pods::Ctx {
            state: &state,
            cgroups: &state.cgroups,
            readings: &readings,
            only_cpu_and_memory,
        };
        let pods = pods::all(&ctx);
        let node = node::stats(&ctx);
        Summary { node, pods }
    })
    .await
    .map_err(|e| ApiError::Internal(format!("stats collection failed: {e}")))
}

/// Feed the CPU sampler (node and pod cgroups) so rates exist before the first request.
pub(crate) fn sample_cpu(state: &Shared) {
    node::sample(state, &state.cgroups);
    pods::sample(state, &state.cgroups);
}
