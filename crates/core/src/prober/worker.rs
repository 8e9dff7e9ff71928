//! One probe of one container instance, run every `periodSeconds` until cancelled
//! (upstream prober/worker.go): the initial result, the initial delay, startup gating,
//! success/failure thresholds, and holding a failed liveness/startup result until the
//! container is replaced.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use k8s_openapi::api::core::v1::{Pod, Probe};
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::{Outcome, ProbeKind, ProbeResult, ProbeResults, Runner, Target, Timing};
use crate::events::{EventSink, EventType, PodEvent};
use crate::runtime::cri::CriClient;
use crate::runtime::model::now_ns;

/// Consecutive results (upstream lastResult/resultRun): a result is recorded once it has
/// been seen `successThreshold` (or `failureThreshold`) times in a row.
#[derive(Debug, Clone)]
pub struct Thresholds {
    last: Option<bool>,
    run: u32,
    success: u32,
    failure: u32,
}

impl Thresholds {
    pub fn new(timing: &Timing) -> Thresholds {
        Thresholds {
            last: None,
            run: 0,
            success: timing.success_threshold.max(1),
            failure: timing.failure_threshold.max(1),
        }
    }

    /// Feed one probe outcome; returns the result to record when a threshold is reached.
    pub fn observe(&mut self, success: bool) -> Option<ProbeResult> {
        if self.last == Some(success) {
            self.run = self.run.saturating_add(1);
        } else {
            self.last = Some(success);
            self.run = 1;
        }
        let needed = if success { self.success } else { self.failure };
        if self.run < needed {
            return None;
        }
        Some(if success {
            ProbeResult::Success
        } else {
            ProbeResult::Failure
        })
    }

    /// After a failed liveness/startup result the count starts over.
    pub fn reset(&mut self) {
        self.run = 0;
    }
}

/// Names for metrics and logs.
#[derive(Debug, Clone, Default)]
pub struct PodRef {
    pub namespace: String,
    pub name: String,
    pub uid: String,
}

pub struct ProbeTask {
    pub kind: ProbeKind,
    pub probe: Probe,
    pub target: Target,
    /// When the container started (ns since epoch), for initialDelaySeconds.
    pub started_at_ns: i64,
    /// Liveness and readiness wait until the startup probe has succeeded.
    pub has_startup_probe: bool,
    pub pod: PodRef,
    /// The pod, for events about it (`Unhealthy`, `ProbeWarning`).
    pub event_pod: Pod,
    pub events: Arc<dyn EventSink>,
    /// Told once the first probe has run (or cannot run at all), so the pod worker can
    /// wait for the first results of containers it adopted after a restart.
    pub first_attempt: FirstAttempt,
}

/// Set once a task's first probe attempt is over; the manager reads it.
#[derive(Clone, Default)]
pub struct FirstAttempt {
    done: Arc<AtomicBool>,
    /// Bumped when any task of the pod finishes its first attempt.
    notify: Option<Arc<watch::Sender<u64>>>,
}

impl FirstAttempt {
    pub fn new(notify: Arc<watch::Sender<u64>>) -> FirstAttempt {
        FirstAttempt {
            done: Arc::default(),
            notify: Some(notify),
        }
    }

    pub fn is_done(&self) -> bool {
        self.done.load(Ordering::Acquire)
    }

    pub(super) fn mark(&self) {
        if !self.done.swap(true, Ordering::AcqRel)
            && let Some(n) = &self.notify
        {
            n.send_modify(|v| *v += 1);
        }
    }
}

fn result_label(outcome: &Result<Outcome, super::ProbeError>) -> &'static str {
    match outcome {
        Ok(o) if o.is_success() => "successful",
        Ok(_) => "failed",
        Err(_) => "unknown",
    }
}

impl ProbeTask {
    fn id(&self) -> &str {
        &self.target.container_id
    }

    fn event(&self, kind: EventType, reason: &str, message: String) {
        self.events.record(
            PodEvent::new(&self.event_pod, kind, reason, message)
                .for_container(&self.event_pod, &self.target.container.name),
        );
    }

    /// Whether this probe must not run now: liveness/readiness before startup succeeded;
    /// startup once it has.
    fn gated(&self, results: &ProbeResults) -> bool {
        let startup = results.get(self.id(), ProbeKind::Startup);
        match self.kind {
            ProbeKind::Startup => startup == Some(ProbeResult::Success),
            _ => self.has_startup_probe && startup != Some(ProbeResult::Success),
        }
    }

    pub async fn run(self, cri: CriClient, results: ProbeResults, cancel: CancellationToken) {
        let timing = Timing::of(&self.probe);
        let id = self.id().to_string();
        let container = self.target.container.name.clone();
        results.set(&id, self.kind, self.kind.initial());
        let runner = match Runner::new(&self.probe, &self.target) {
            Ok(r) => Some(r),
            Err(err) => {
                // As upstream: a probe that cannot run leaves its result as it was.
                tracing::warn!(pod = %self.pod.name, container = %container, probe = self.kind.as_str(), error = %err, "probe cannot run");
                None
            }
        };
        let mut changes = results.subscribe();
        let mut thresholds = Thresholds::new(&timing);
        let mut on_hold = false;
        let age = Duration::from_nanos((now_ns() - self.started_at_ns).max(0) as u64);
        let mut next = Instant::now() + timing.initial_delay.saturating_sub(age);
        loop {
            let waiting_for_startup = self.kind != ProbeKind::Startup && self.gated(&results);
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tokio::time::sleep_until(next) => {
                    next += timing.period;
                    let now = Instant::now();
                    if next < now {
                        next = now + timing.period;
                    }
                }
                // Startup just succeeded: probe now rather than at the next tick
                // (upstream triggers readiness manually).
                changed = changes.changed(), if waiting_for_startup => {
                    if changed.is_err() {
                        return;
                    }
                    if self.gated(&results) {
                        continue;
                    }
                }
            }
            let Some(runner) = runner.as_ref() else {
                self.first_attempt.mark();
                continue;
            };
            if on_hold || self.gated(&results) {
                continue;
            }
            let started = std::time::Instant::now();
            let outcome = runner.run(&cri).await;
            if let Some(m) = cri.metrics() {
                m.probes.record(
                    self.kind.as_str(),
                    result_label(&outcome),
                    &self.pod.namespace,
                    &self.pod.name,
                    &self.pod.uid,
                    &container,
                    started.elapsed().as_secs_f64(),
                );
            }
            let outcome = match outcome {
                Ok(o) => o,
                Err(err) => {
                    tracing::debug!(pod = %self.pod.name, container = %container, probe = self.kind.as_str(), error = %err, "probe errored; result ignored");
                    self.first_attempt.mark();
                    self.event(
                        EventType::Warning,
                        "Unhealthy",
                        format!(
                            "{} probe errored and resulted in unknown state: {err}",
                            self.kind.title()
                        ),
                    );
                    continue;
                }
            };
            match &outcome {
                Outcome::Failure(out) => {
                    tracing::debug!(pod = %self.pod.name, container = %container, probe = self.kind.as_str(), output = %out, "{} probe failed", self.kind.title());
                    self.event(
                        EventType::Warning,
                        "Unhealthy",
                        format!("{} probe failed: {out}", self.kind.title()),
                    );
                }
                Outcome::Warning(out) => {
                    tracing::debug!(pod = %self.pod.name, container = %container, probe = self.kind.as_str(), output = %out, "{} probe warning", self.kind.title());
                    self.event(
                        EventType::Warning,
                        "ProbeWarning",
                        format!("{} probe warning: {out}", self.kind.title()),
                    );
                }
                Outcome::Success(_) => {}
            }
            let Some(result) = thresholds.observe(outcome.is_success()) else {
                self.first_attempt.mark();
                continue;
            };
            if results.get(&id, self.kind) != Some(result) {
                tracing::info!(pod = %self.pod.name, container = %container, probe = self.kind.as_str(), result = ?result, output = %outcome.output(), "probe result changed");
            }
            results.set(&id, self.kind, result);
            self.first_attempt.mark();
            if result == ProbeResult::Failure && self.kind != ProbeKind::Readiness {
                // The container will be restarted: stop probing it (upstream onHold).
                on_hold = true;
                thresholds.reset();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn timing(success: u32, failure: u32) -> Timing {
        Timing {
            initial_delay: Duration::ZERO,
            period: Duration::from_secs(1),
            timeout: Duration::from_secs(1),
            success_threshold: success,
            failure_threshold: failure,
        }
    }

    #[test]
    fn failure_threshold_needs_consecutive_failures() {
        let mut t = Thresholds::new(&timing(1, 3));
        assert_eq!(t.observe(true), Some(ProbeResult::Success));
        assert_eq!(t.observe(false), None);
        assert_eq!(t.observe(false), None);
        // A success in between starts the count over.
        assert_eq!(t.observe(true), Some(ProbeResult::Success));
        assert_eq!(t.observe(false), None);
        assert_eq!(t.observe(false), None);
        assert_eq!(t.observe(false), Some(ProbeResult::Failure));
        // Further failures keep it failed.
        assert_eq!(t.observe(false), Some(ProbeResult::Failure));
    }

    #[test]
    fn success_threshold_for_readiness() {
        let mut t = Thresholds::new(&timing(2, 1));
        assert_eq!(t.observe(false), Some(ProbeResult::Failure));
        assert_eq!(t.observe(true), None);
        assert_eq!(t.observe(true), Some(ProbeResult::Success));
        assert_eq!(t.observe(false), Some(ProbeResult::Failure));
        assert_eq!(t.observe(true), None);
    }

    #[test]
    fn reset_after_failure() {
        let mut t = Thresholds::new(&timing(1, 2));
        t.observe(false);
        assert_eq!(t.observe(false), Some(ProbeResult::Failure));
        t.reset();
        assert_eq!(t.observe(false), None);
        assert_eq!(t.observe(false), Some(ProbeResult::Failure));
    }

    fn task(kind: ProbeKind, has_startup: bool) -> ProbeTask {
        ProbeTask {
            kind,
            probe: Probe::default(),
            target: Target {
                container: Default::default(),
                container_id: "c1".into(),
                pod_ip: None,
            },
            started_at_ns: 0,
            has_startup_probe: has_startup,
            pod: PodRef::default(),
            event_pod: Pod::default(),
            events: Arc::new(crate::events::NoEvents),
            first_attempt: FirstAttempt::default(),
        }
    }

    #[test]
    fn startup_gates_the_others() {
        let results = ProbeResults::default();
        let live = task(ProbeKind::Liveness, true);
        let startup = task(ProbeKind::Startup, true);
        assert!(live.gated(&results));
        assert!(!startup.gated(&results));
        results.set("c1", ProbeKind::Startup, ProbeResult::Unknown);
        assert!(live.gated(&results));
        results.set("c1", ProbeKind::Startup, ProbeResult::Success);
        assert!(!live.gated(&results));
        assert!(startup.gated(&results), "startup stops once it succeeded");
        assert!(!task(ProbeKind::Readiness, false).gated(&ProbeResults::default()));
    }
}
