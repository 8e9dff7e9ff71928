//! `/run/{namespace}/{pod}[/{uid}]/{container}?cmd=...`: run a command, return its
//! output (stdout then stderr) as upstream's RunInContainer does.

use axum::extract::{Path, RawQuery, State};
use axum::response::Response;

use super::{json_bytes, query_pairs};
use crate::error::ApiError;
use crate::state::Shared;

async fn run_inner(
    state: Shared,
    ns: String,
    pod: String,
    uid: Option<String>,
    container: String,
    query: Option<String>,
) -> Result<Response, ApiError> {
    let observed_pod = state
        .pod_by_name(&ns, &pod)
        .ok_or_else(|| ApiError::NotFound("pod does not exist".into()))?;
    let pod_uid = observed_pod.metadata.uid.clone().unwrap_or_default();
    if uid.as_deref().is_some_and(|u| u != pod_uid) {
        return Err(ApiError::NotFound("pod not found".into()));
    }
    // For legacy reasons /run takes `cmd`, split on spaces.
    let cmd: Vec<String> = query_pairs(query.as_deref())
        .into_iter()
        .find(|(k, _)| k == "cmd")
        .map(|(_, v)| v.split(' ').map(str::to_string).collect())
        .unwrap_or_default();
    let observed = state
        .observed(&pod_uid)
        .ok_or_else(|| ApiError::NotFound(format!("pod {pod:?} is not running")))?;
    let id = observed
        .containers_named(&container)
        .find(|c| c.state == kubelet_core::runtime::model::ContainerState::Running)
        .map(|c| c.id.clone())
        .ok_or_else(|| ApiError::NotFound(format!("container not found ({container:?})")))?;
    let resp = state
        .deps
        .cri
        .exec_sync(&id, cmd.clone(), 0)
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    let mut out = resp.stdout;
    out.extend(resp.stderr);
    if resp.exit_code != 0 {
        return Err(ApiError::Internal(format!(
            "command '{}' exited with {}: {}",
            cmd.join(" "),
            resp.exit_code,
            String::from_utf8_lossy(&out)
        )));
    }
    Ok(json_bytes(out))
}

pub async fn run(
    State(s): State<Shared>,
    Path((ns, pod, c)): Path<(String, String, String)>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    run_inner(s, ns, pod, None, c, q).await
}

pub async fn run_uid(
    State(s): State<Shared>,
    Path((ns, pod, uid, c)): Path<(String, String, String, String)>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    run_inner(s, ns, pod, Some(uid), c, q).await
}
