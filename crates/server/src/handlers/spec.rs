//! `/spec/`: machine info (cAdvisor `MachineInfo`), read fresh from /proc and /sys.

use axum::Json;
use axum::extract::State;

use crate::error::ApiError;
use crate::machine::{self, MachineInfo, Roots};
use crate::state::Shared;

pub async fn spec(State(state): State<Shared>) -> Result<Json<MachineInfo>, ApiError> {
    let cloud = state.settings.cloud_provider.clone();
    tokio::task::spawn_blocking(move || machine::collect(&Roots::default(), &cloud))
        .await
        .map(Json)
        .map_err(|e| ApiError::Internal(format!("reading machine info: {e}")))
}
