//! `/healthz` with the upstream checks `ping`, `log` and `syncloop`, and
//! `/healthz/<check>` for one of them. `syncloop` fails when the PLEG has not relisted
//! successfully for longer than upstream's relist threshold (3 minutes): the runtime
//! view every decision depends on is stale.

use std::time::Duration;

use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use kubelet_core::runtime::model::now_ns;

use super::{query_pairs, text};
use crate::state::Shared;

/// Upstream's PLEG relist threshold.
pub const RELIST_THRESHOLD: Duration = Duration::from_secs(180);

/// Go's duration formatting for the messages upstream prints ("3m5.2s").
pub use kubelet_primitives::duration::format as go_duration;

/// The PLEG health: ok, or why not.
pub fn pleg_health(state: &Shared) -> Result<(), String> {
    let snapshot = state.snapshot();
    if snapshot.taken_at_ns <= 0 {
        // Give the runtime the same threshold to answer once after start.
        return if state.started.elapsed() > RELIST_THRESHOLD {
            Err("pleg has yet to be successful".into())
        } else {
            Ok(())
        };
    }
    let elapsed = Duration::from_nanos(now_ns().saturating_sub(snapshot.taken_at_ns).max(0) as u64);
    if elapsed > RELIST_THRESHOLD {
        return Err(format!(
            "pleg was last seen active {} ago; threshold is {}",
            go_duration(elapsed),
            go_duration(RELIST_THRESHOLD)
        ));
    }
    Ok(())
}

/// Cluster mode: fails while the API server refuses a write as Invalid (the Node cannot
/// register, a status cannot be reported), naming the write and the server's causes.
pub fn writes_health(state: &Shared) -> Result<(), String> {
    let Some(w) = &state.deps.rejected_writes else {
        return Ok(());
    };
    let standing = w.standing();
    if standing.is_empty() {
        return Ok(());
    }
    let list: Vec<String> = standing
        .iter()
        .map(|r| {
            format!(
                "{} {} refused as invalid by the API server ({} times): {}",
                r.operation, r.object, r.count, r.message
            )
        })
        .collect();
    Err(list.join("; "))
}

fn checks(state: &Shared) -> Vec<(&'static str, Result<(), String>)> {
    let mut list = vec![
        ("ping", Ok(())),
        ("log", Ok(())),
        ("syncloop", pleg_health(state)),
    ];
    if state.deps.rejected_writes.is_some() {
        list.push(("apiserver-writes", writes_health(state)));
    }
    list
}

pub async fn all(State(state): State<Shared>, RawQuery(query): RawQuery) -> Response {
    let params = query_pairs(query.as_deref());
    let verbose = params.iter().any(|(k, _)| k == "verbose");
    let excluded: Vec<&str> = params
        .iter()
        .filter(|(k, _)| k == "exclude")
        .map(|(_, v)| v.as_str())
        .collect();
    let mut failed = false;
    let mut report = String::new();
    for (name, result) in checks(&state) {
        if excluded.contains(&name) {
            report.push_str(&format!("[+]{name} excluded: ok\n"));
            continue;
        }
        match result {
            Ok(()) => report.push_str(&format!("[+]{name} ok\n")),
            Err(reason) => {
                failed = true;
                tracing::info!(check = name, %reason, "healthz check failed");
                report.push_str(&format!("[-]{name} failed: {reason}\n"));
            }
        }
    }
    if failed {
        report.push_str("healthz check failed\n");
        return text(StatusCode::INTERNAL_SERVER_ERROR, report);
    }
    if !verbose {
        return text(StatusCode::OK, "ok".into());
    }
    report.push_str("healthz check passed\n");
    text(StatusCode::OK, report)
}

pub async fn one(State(state): State<Shared>, Path(name): Path<String>) -> Response {
    match checks(&state).into_iter().find(|(n, _)| *n == name) {
        Some((_, Ok(()))) => text(StatusCode::OK, "ok".into()),
        Some((_, Err(reason))) => text(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("internal server error: {reason}\n"),
        ),
        None => text(StatusCode::NOT_FOUND, "404 page not found\n".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::go_duration;
    use std::time::Duration;

    #[test]
    fn formats_like_go() {
        assert_eq!(go_duration(Duration::from_secs(180)), "3m0s");
        assert_eq!(go_duration(Duration::from_millis(185_500)), "3m5.5s");
        assert_eq!(go_duration(Duration::from_millis(1500)), "1.5s");
        assert_eq!(go_duration(Duration::from_secs(3600 * 2 + 1)), "2h0m1s");
    }
}
