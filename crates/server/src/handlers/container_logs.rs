//! `/containerLogs/{namespace}/{pod}/{container}`: a container's log, streamed.

use std::path::PathBuf;

use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use k8s_openapi::api::core::v1::Pod;
use kubelet_core::runtime::container::container_log_path;
use kubelet_core::runtime::model::{ContainerState, ObservedContainer, now_ns};
use kubelet_core::runtime::sandbox::pod_log_dir;

use super::query_pairs;
use crate::body::ChunkStream;
use crate::error::ApiError;
use crate::logs::LogOptions;
use crate::logs::reader::{Follow, read_logs};
use crate::state::Shared;

fn has_container(pod: &Pod, name: &str) -> bool {
    let Some(spec) = pod.spec.as_ref() else {
        return false;
    };
    spec.containers.iter().any(|c| c.name == name)
        || spec
            .init_containers
            .iter()
            .flatten()
            .any(|c| c.name == name)
        || spec
            .ephemeral_containers
            .iter()
            .flatten()
            .any(|c| c.name == name)
}

/// The container whose log is wanted, as upstream's validateContainerLogStatus decides.
fn pick_container(
    state: &Shared,
    pod: &Pod,
    name: &str,
    previous: bool,
) -> Result<ObservedContainer, ApiError> {
    let pod_name = pod.metadata.name.clone().unwrap_or_default();
    let uid = pod.metadata.uid.clone().unwrap_or_default();
    let observed = state.observed(&uid);
    let mut named = observed
        .iter()
        .flat_map(|p| p.containers_named(name).cloned().collect::<Vec<_>>());
    let latest = named.next();
    if previous {
        // The container before the current one (or the current one if it has exited
        // and nothing replaced it yet is not "previous").
        return named.next().ok_or_else(|| {
            ApiError::BadRequest(format!(
                "previous terminated container {name:?} in pod {pod_name:?} not found"
            ))
        });
    }
    latest.ok_or_else(|| {
        ApiError::BadRequest(format!(
            "container {name:?} in pod {pod_name:?} is waiting to start: ContainerCreating"
        ))
    })
}

async fn log_path(state: &Shared, pod: &Pod, c: &ObservedContainer) -> PathBuf {
    match state.deps.cri.container_status(&c.id).await {
        Ok(s) if !s.log_path.is_empty() => PathBuf::from(s.log_path),
        _ => pod_log_dir(&state.settings.pod_logs_dir, pod)
            .join(container_log_path(&c.name, c.restart_count)),
    }
}

pub async fn container_logs(
    State(state): State<Shared>,
    Path((namespace, pod_name, container)): Path<(String, String, String)>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let opts = LogOptions::from_query(&query_pairs(query.as_deref()))?;
    let pod = state
        .pod_by_name(&namespace, &pod_name)
        .ok_or_else(|| ApiError::NotFound(format!("pod {pod_name:?} does not exist")))?;
    if !has_container(&pod, &container) {
        return Err(ApiError::NotFound(format!(
            "container {container:?} not found in pod {pod_name:?}"
        )));
    }
    let target = pick_container(&state, &pod, &container, opts.previous)?;
    let path = log_path(&state, &pod, &target).await;
    // Open now, so a missing file is an error status rather than an empty body.
    std::fs::metadata(&path).map_err(|e| {
        ApiError::BadRequest(format!(
            "failed to read log file {:?}: {e}",
            path.display().to_string()
        ))
    })?;

    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(16);
    let snapshots = state.deps.snapshots.clone();
    let uid = pod.metadata.uid.clone().unwrap_or_default();
    let id = target.id.clone();
    let follow_running = opts.follow && target.state == ContainerState::Running;
    let started = now_ns();
    tokio::task::spawn_blocking(move || {
        let running = || {
            follow_running
                && snapshots
                    .borrow()
                    .pod(&uid)
                    .and_then(|p| p.containers.iter().find(|c| c.id == id))
                    .is_some_and(|c| c.state == ContainerState::Running)
        };
        let tx_gone = tx.clone();
        let gone = move || tx_gone.is_closed();
        let follow = Follow {
            running: &running,
            client_gone: &gone,
        };
        let opts = LogOptions {
            follow: follow_running,
            ..opts
        };
        let mut sink = |chunk: Vec<u8>| tx.blocking_send(Ok(Bytes::from(chunk))).is_ok();
        if let Err(err) = read_logs(&path, &opts, started, &follow, &mut sink) {
            tracing::debug!(error = %err, path = %path.display(), "reading container log failed");
            let _ = tx.blocking_send(Err(err));
        }
    });
    let mut resp = (StatusCode::OK, Body::from_stream(ChunkStream(rx))).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    Ok(resp)
}
