//! `/configz`: the effective KubeletConfiguration, as `{"kubeletconfig": {...}}`.
//! Upstream serves the versioned struct without its type meta.

use axum::extract::State;
use axum::response::Response;

use super::json_bytes;
use crate::error::ApiError;
use crate::state::Shared;

pub async fn configz(State(state): State<Shared>) -> Result<Response, ApiError> {
    let mut config = state.settings.configz.clone();
    if let Some(map) = config.as_object_mut() {
        map.remove("kind");
        map.remove("apiVersion");
    }
    let body = serde_json::to_vec(&serde_json::json!({ "kubeletconfig": config }))
        .map_err(|e| ApiError::Internal(format!("encoding configz: {e}")))?;
    Ok(json_bytes(body))
}
