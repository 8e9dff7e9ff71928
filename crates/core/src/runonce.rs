//! `--runonce`: start the pods of the local manifests and the URL, wait until each one is
//! running or has failed, print their status and exit (0 only if all run). Pods are left
//! running, and pods the kubelet was not given are never touched.

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Pod;
use kubelet_source::DesiredPods;
use tokio::sync::watch;

use crate::status::store::StatusStore;

/// Outcome of waiting for the pods.
#[derive(Debug, PartialEq, Eq)]
pub enum PodOutcome {
    Running,
    Failed(String),
    TimedOut(String),
}

fn all_running(pod: &Pod) -> bool {
    let Some(status) = &pod.status else {
        return false;
    };
    status.phase.as_deref() == Some("Running")
        && status
            .container_statuses
            .iter()
            .flatten()
            .all(|c| c.state.as_ref().and_then(|s| s.running.as_ref()).is_some())
}

fn failure(pod: &Pod) -> Option<String> {
    let status = pod.status.as_ref()?;
    if matches!(status.phase.as_deref(), Some("Failed") | Some("Succeeded")) {
        return Some(format!(
            "pod phase {}",
            status.phase.as_deref().unwrap_or_default()
        ));
    }
    // Waiting reasons that will not fix themselves within a run.
    status.container_statuses.iter().flatten().find_map(|c| {
        let w = c.state.as_ref()?.waiting.as_ref()?;
        let reason = w.reason.as_deref()?;
        matches!(
            reason,
            "ErrImageNeverPull"
                | "InvalidImageName"
                | "CreateContainerConfigError"
                | "CrashLoopBackOff"
        )
        .then(|| {
            format!(
                "container {}: {reason}: {}",
                c.name,
                w.message.as_deref().unwrap_or_default()
            )
        })
    })
}

/// Wait for every desired pod to run or fail, up to `deadline`.
pub async fn wait(
    mut desired: watch::Receiver<DesiredPods>,
    statuses: &StatusStore,
    deadline: Duration,
) -> Vec<(String, PodOutcome)> {
    let _ = desired.wait_for(|d| d.all_sources_ready).await;
    let pods: Vec<_> = desired.borrow().pods.values().cloned().collect();
    let started = Instant::now();
    // A container that exits at once is briefly "running": a pod counts as running only
    // after it stayed so for STABLE, longer than two relist periods (1s each) so an exit
    // has surely been seen.
    const STABLE: Duration = Duration::from_secs(3);
    let mut running_since: std::collections::HashMap<String, Instant> = Default::default();
    loop {
        let mut results = Vec::new();
        let mut pending = false;
        for pod in &pods {
            let uid = pod.metadata.uid.clone().unwrap_or_default();
            let name = format!(
                "{}/{}",
                pod.metadata.namespace.as_deref().unwrap_or_default(),
                pod.metadata.name.as_deref().unwrap_or_default()
            );
            let current = statuses.get(&uid);
            if !current.as_deref().is_some_and(all_running) {
                running_since.remove(&uid);
            }
            let outcome = match current.as_deref() {
                Some(p) if all_running(p) => {
                    let since = *running_since
                        .entry(uid.clone())
                        .or_insert_with(Instant::now);
                    if since.elapsed() >= STABLE {
                        PodOutcome::Running
                    } else {
                        pending = true;
                        PodOutcome::TimedOut("not yet running for 3s".into())
                    }
                }
                Some(p) if failure(p).is_some() => {
                    PodOutcome::Failed(failure(p).unwrap_or_default())
                }
                other => {
                    pending = true;
                    let phase = other
                        .and_then(|p| p.status.as_ref())
                        .and_then(|s| s.phase.clone())
                        .unwrap_or_else(|| "Pending".into());
                    PodOutcome::TimedOut(format!("still {phase} after {deadline:?}"))
                }
            };
            results.push((name, outcome));
        }
        if !pending || started.elapsed() >= deadline {
            return results;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The report printed to stdout, one line per pod.
pub fn report(results: &[(String, PodOutcome)]) -> String {
    let mut out = String::new();
    for (name, outcome) in results {
        let line = match outcome {
            PodOutcome::Running => format!("pod {name}: running\n"),
            PodOutcome::Failed(why) => format!("pod {name}: failed: {why}\n"),
            PodOutcome::TimedOut(why) => format!("pod {name}: not running: {why}\n"),
        };
        out.push_str(&line);
    }
    if results.is_empty() {
        out.push_str("no pods\n");
    }
    out
}
