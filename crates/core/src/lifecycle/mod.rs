//! Container lifecycle with upstream semantics (kuberuntime_container.go, lifecycle/):
//!
//! - hooks: postStart and preStop handlers (exec, httpGet, sleep), [`run_handler`];
//! - stopping: preStop within the grace period, then the stop signal with what is left of
//!   it (at least 2 s), SIGKILL after that, [`kill_container`]; a pod's containers stop
//!   together, sidecars (restartable init containers) only after the main containers and
//!   in reverse order, [`stop_containers`];
//! - termination messages, [`termination`].

pub mod termination;

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Container, LifecycleHandler, Pod};
use kubelet_primitives::pod::is_sidecar;
use tokio::sync::watch;

use crate::events::{EventSink, EventType, PodEvent};
use crate::prober::http::HttpProbe;
use crate::prober::{ProbeError, Target};
use crate::runtime::cri::{CriClient, CriError};

/// Upstream minimumGracePeriodInSeconds: every container gets at least this long between
/// the stop signal and SIGKILL.
pub const MIN_GRACE_SECONDS: i64 = 2;

/// How long a postStart hook may take before it counts as failed (upstream has no bound;
/// a hung hook would hold the pod worker forever).
pub const POST_START_LIMIT: Duration = Duration::from_secs(120);

fn pod_name(pod: &Pod) -> String {
    format!(
        "{}_{}",
        pod.metadata.name.as_deref().unwrap_or_default(),
        pod.metadata.namespace.as_deref().unwrap_or_default()
    )
}

/// Run one lifecycle handler against a running container, within `limit`. The error is
/// the message upstream records for the failed hook.
pub async fn run_handler(
    cri: &CriClient,
    pod: &Pod,
    target: &Target,
    handler: &LifecycleHandler,
    limit: Duration,
) -> Result<(), String> {
    let container = &target.container.name;
    let pod = pod_name(pod);
    if let Some(exec) = &handler.exec {
        let cmd = exec.command.clone().unwrap_or_default();
        let secs = limit.as_secs().max(1) as i64;
        let run = cri.exec_sync(&target.container_id, cmd.clone(), secs);
        let failure = match tokio::time::timeout(limit + Duration::from_secs(1), run).await {
            Ok(Ok(resp)) if resp.exit_code == 0 => return Ok(()),
            Ok(Ok(resp)) => {
                let mut out = resp.stdout;
                out.extend_from_slice(&resp.stderr);
                format!(
                    "command '{}' exited with {}: {}, message: {:?}",
                    cmd.join(" "),
                    resp.exit_code,
                    String::from_utf8_lossy(&resp.stderr).trim_end(),
                    String::from_utf8_lossy(&out)
                )
            }
            Ok(Err(err)) => err.to_string(),
            Err(_) => format!("command '{}' timed out after {limit:?}", cmd.join(" ")),
        };
        return Err(format!(
            "Exec lifecycle hook ({cmd:?}) for Container {container:?} in Pod {pod:?} failed - error: {failure}"
        ));
    }
    if let Some(http) = &handler.http_get {
        let path = http.path.clone().unwrap_or_default();
        let fail = |e: String| {
            format!(
                "HTTP lifecycle hook ({path}) for Container {container:?} in Pod {pod:?} failed - error: {e}"
            )
        };
        let probe =
            HttpProbe::new(http, target, limit, "lifecycle").map_err(|ProbeError(e)| fail(e))?;
        // As upstream, only a failed request fails the hook; the status code does not.
        return probe.get().await.map(|_| ()).map_err(fail);
    }
    if let Some(sleep) = &handler.sleep {
        let wanted = Duration::from_secs(sleep.seconds.max(0) as u64);
        tokio::time::sleep(wanted.min(limit)).await;
        return Ok(());
    }
    Err(format!(
        "Cannot run handler: invalid handler for Container {container:?} in Pod {pod:?}"
    ))
}

/// One container to stop.
#[derive(Debug, Clone)]
pub struct Kill {
    pub container_id: String,
    pub name: String,
    /// The spec, for the preStop hook and ports (absent for containers the spec lost).
    pub spec: Option<Container>,
    pub grace_seconds: i64,
    /// Why, for the log ("Container web failed liveness probe, will be restarted").
    pub message: String,
}

/// Stop one container: the preStop hook (if any, and if there is grace time), then the
/// stop signal with the rest of the grace period (at least [`MIN_GRACE_SECONDS`]).
/// `wait_turn` is awaited, within what is left of the grace period, between the hook and
/// the stop signal (sidecars waiting for the main containers).
pub async fn kill_container<F>(
    cri: &CriClient,
    events: &dyn EventSink,
    pod: &Pod,
    kill: &Kill,
    pod_ip: Option<&str>,
    wait_turn: Option<F>,
) -> Result<(), CriError>
where
    F: std::future::Future<Output = ()>,
{
    let started = Instant::now();
    let mut grace = kill.grace_seconds;
    tracing::info!(pod = %pod_name(pod), container = %kill.name, grace_seconds = grace, reason = %kill.message, "killing container");
    let restored;
    let spec = match kill.spec.as_ref() {
        Some(spec) => Some(spec),
        None => {
            restored = restore_spec(cri, pod, kill).await;
            restored.as_ref()
        }
    };
    let pre_stop = spec
        .and_then(|c| c.lifecycle.as_ref())
        .and_then(|l| l.pre_stop.as_ref());
    if let (Some(handler), Some(spec)) = (pre_stop, spec)
        && grace > 0
    {
        let target = Target {
            container: spec.clone(),
            container_id: kill.container_id.clone(),
            pod_ip: pod_ip.map(str::to_string),
        };
        let limit = Duration::from_secs(grace as u64);
        match tokio::time::timeout(limit, run_handler(cri, pod, &target, handler, limit)).await {
            Ok(Ok(())) => {}
            Ok(Err(msg)) => {
                tracing::warn!(pod = %pod_name(pod), container = %kill.name, message = %msg, "PreStop hook failed");
                // As upstream, the message (which may hold secrets) stays out of the event.
                events.record(
                    PodEvent::new(
                        pod,
                        EventType::Warning,
                        "FailedPreStopHook",
                        "PreStopHook failed",
                    )
                    .for_container(pod, &kill.name),
                );
            }
            Err(_) => {
                tracing::info!(pod = %pod_name(pod), container = %kill.name, grace_seconds = grace, "PreStop hook not completed in grace period")
            }
        }
        grace -= started.elapsed().as_secs() as i64;
    }
    if let Some(turn) = wait_turn
        && grace > 0
    {
        let waited = Instant::now();
        let _ = tokio::time::timeout(Duration::from_secs(grace as u64), turn).await;
        grace -= waited.elapsed().as_secs() as i64;
    }
    let grace = grace.max(MIN_GRACE_SECONDS);
    match cri.stop_container(&kill.container_id, grace).await {
        Err(err) if !err.is_not_found() => Err(err),
        _ => Ok(()),
    }
}

/// The container's spec as far as its annotations keep it (name, ports, preStop hook),
/// for a container the pod's spec no longer has: a pod whose manifest was removed while
/// the kubelet was down, or a container removed from the spec. `None` when the runtime
/// cannot say (the container is then stopped without a hook).
async fn restore_spec(cri: &CriClient, pod: &Pod, kill: &Kill) -> Option<Container> {
    match cri.container_status(&kill.container_id).await {
        Ok(status) => Some(crate::runtime::labels::restore_container(
            &kill.name,
            &status.annotations,
        )),
        Err(err) => {
            if !err.is_not_found() {
                tracing::warn!(pod = %pod_name(pod), container = %kill.name, error = %err, "cannot read the container's annotations; stopping it without its preStop hook");
            }
            None
        }
    }
}

/// Who each running container waits for before its stop signal (upstream
/// newTerminationOrdering): a sidecar waits for every running main container and for the
/// running sidecars after it in the spec; main containers wait for nobody.
pub fn termination_order(pod: &Pod, running: &[String]) -> HashMap<String, Vec<String>> {
    let mut order = HashMap::new();
    let Some(spec) = pod.spec.as_ref() else {
        return order;
    };
    let is_running = |n: &str| running.iter().any(|r| r == n);
    let mains: Vec<String> = spec
        .containers
        .iter()
        .map(|c| c.name.clone())
        .filter(|n| is_running(n))
        .collect();
    let mut later_sidecar: Option<String> = None;
    for ic in spec.init_containers.iter().flatten().rev() {
        if !is_sidecar(ic) {
            continue;
        }
        if is_running(&ic.name) {
            let mut prereqs = mains.clone();
            prereqs.extend(later_sidecar.clone());
            order.insert(ic.name.clone(), prereqs);
        }
        // A sidecar that is not running is nothing to wait for, but the one before it
        // still waits for those after it.
        if is_running(&ic.name) {
            later_sidecar = Some(ic.name.clone());
        }
    }
    order
}

/// Stop these containers of the pod together, in upstream termination order; returns
/// the names of those that could not be stopped, with the error.
pub async fn stop_containers(
    cri: &CriClient,
    events: &dyn EventSink,
    pod: &Pod,
    kills: Vec<Kill>,
    pod_ip: Option<&str>,
) -> Vec<(String, CriError)> {
    let names: Vec<String> = kills.iter().map(|k| k.name.clone()).collect();
    let order = termination_order(pod, &names);
    let (done_tx, done_rx) = watch::channel(HashSet::<String>::new());
    let done_tx = &done_tx;
    let stops = kills.into_iter().map(|kill| {
        let prereqs = order.get(&kill.name).cloned().unwrap_or_default();
        let mut rx = done_rx.clone();
        async move {
            let waits = !prereqs.is_empty();
            let turn = async move {
                let _ = rx
                    .wait_for(|done| prereqs.iter().all(|p| done.contains(p)))
                    .await;
            };
            let turn = waits.then_some(turn);
            let result = kill_container(cri, events, pod, &kill, pod_ip, turn).await;
            done_tx.send_modify(|d| {
                d.insert(kill.name.clone());
            });
            result.err().map(|e| (kill.name.clone(), e))
        }
    });
    futures::future::join_all(stops)
        .await
        .into_iter()
        .flatten()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::PodSpec;

    fn c(name: &str, sidecar: bool) -> Container {
        Container {
            name: name.into(),
            restart_policy: sidecar.then(|| "Always".to_string()),
            ..Default::default()
        }
    }

    #[test]
    fn sidecars_stop_after_main_containers_in_reverse_order() {
        let pod = Pod {
            spec: Some(PodSpec {
                init_containers: Some(vec![
                    c("s1", true),
                    c("init", false),
                    c("s2", true),
                    c("s3", true),
                ]),
                containers: vec![c("a", false), c("b", false)],
                ..Default::default()
            }),
            ..Default::default()
        };
        let running: Vec<String> = ["s1", "s2", "s3", "a", "b"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let order = termination_order(&pod, &running);
        assert_eq!(order.get("a"), None);
        assert_eq!(order["s3"], vec!["a", "b"]);
        assert_eq!(order["s2"], vec!["a", "b", "s3"]);
        assert_eq!(order["s1"], vec!["a", "b", "s2"]);
        // b already exited and s2 is not running: nobody waits for them.
        let running: Vec<String> = ["s1", "s3", "a"].iter().map(|s| s.to_string()).collect();
        let order = termination_order(&pod, &running);
        assert_eq!(order["s3"], vec!["a"]);
        assert_eq!(order["s1"], vec!["a", "s3"]);
    }
}
