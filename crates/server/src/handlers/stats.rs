//! `/stats/summary`.

use axum::Json;
use axum::extract::{RawQuery, State};

use super::query_pairs;
use crate::error::ApiError;
use crate::state::Shared;
use crate::stats::{self, Summary};

pub async fn summary(
    State(state): State<Shared>,
    RawQuery(query): RawQuery,
) -> Result<Json<Summary>, ApiError> {
    let mut only_cpu_and_memory = false;
    for (k, v) in query_pairs(query.as_deref()) {
        if k == "only_cpu_and_memory" {
            only_cpu_and_memory = match v.as_str() {
                "true" | "1" | "True" | "TRUE" | "t" | "T" => true,
                "false" | "0" | "False" | "FALSE" | "f" | "F" | "" => false,
                other => {
                    return Err(ApiError::BadRequest(format!(
                        "Invalid only_cpu_and_memory value {other:?}"
                    )));
                }
            };
        }
    }
    stats::summary(&state, only_cpu_and_memory).await.map(Json)
}
