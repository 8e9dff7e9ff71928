//! `/metrics` (kubelet metrics), `/metrics/resource` (resource usage for
//! metrics-server) and `/metrics/probes` (prober results).

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use kubelet_core::runtime::model::ContainerState;
use kubelet_metrics::OPENMETRICS_CONTENT_TYPE;

use crate::state::Shared;
use crate::stats::{self, resource_metrics};

fn with_type(body: String, content_type: &'static str) -> Response {
    let mut resp = (StatusCode::OK, body).into_response();
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    resp
}

/// Set the gauges that describe the runtime right now.
pub(crate) fn refresh_gauges(state: &Shared) {
    let snapshot = state.snapshot();
    let m = &state.deps.metrics;
    let running_pods = snapshot
        .pods
        .values()
        .filter(|p| p.latest_sandbox().is_some_and(|s| s.ready))
        .count();
    m.running_pods.set(running_pods as i64);
    if let Some(w) = &state.deps.rejected_writes {
        for (operation, total) in w.totals() {
            let c = m
                .api_invalid_writes
                .get_or_create(&vec![("operation".to_string(), operation)]);
            c.inc_by(total.saturating_sub(c.get()));
        }
    }
    for (label, wanted) in [
        ("running", ContainerState::Running),
        ("exited", ContainerState::Exited),
        ("created", ContainerState::Created),
        ("unknown", ContainerState::Unknown),
    ] {
        let n = snapshot
            .pods
            .values()
            .flat_map(|p| &p.containers)
            .filter(|c| c.state == wanted)
            .count();
        m.running_containers
            .get_or_create(&vec![("container_state".to_string(), label.to_string())])
            .set(n as i64);
    }
}

pub async fn kubelet(State(state): State<Shared>) -> Response {
    refresh_gauges(&state);
    with_type(state.deps.metrics.encode(), OPENMETRICS_CONTENT_TYPE)
}

pub async fn probes(State(state): State<Shared>) -> Response {
    with_type(state.deps.metrics.encode_probes(), OPENMETRICS_CONTENT_TYPE)
}

pub async fn resource(State(state): State<Shared>) -> Response {
    let summary = stats::summary(&state, true).await;
    if let Err(err) = &summary {
        tracing::warn!(error = %err, "resource metrics: stats unavailable");
    }
    with_type(
        resource_metrics::render(summary.as_ref().ok()),
        resource_metrics::CONTENT_TYPE,
    )
}
