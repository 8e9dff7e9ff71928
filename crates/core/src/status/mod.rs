//! PodStatus from the spec, what the runtime holds and what the worker knows (waiting
//! reasons): phase, conditions and container statuses with upstream's rules
//! (kubelet_pods.go getPhase / generateAPIPodStatus).

pub mod start;
pub mod store;

use std::collections::HashMap;

use k8s_openapi::api::core::v1::{
    Container, ContainerState, ContainerStateRunning, ContainerStateTerminated,
    ContainerStateWaiting, ContainerStatus, HostIP, Pod, PodCondition, PodIP, PodStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kubelet_primitives::pod::is_sidecar;

use crate::cm;
use crate::runtime::model::{self, ObservedContainer, ObservedPod};

/// Why a container is not running, as the worker last saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Waiting {
    pub reason: String,
    pub message: String,
}

/// What the probes say about one running container (see prober::ProbeManager::states).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProbeState {
    /// The startup probe has succeeded.
    pub startup_succeeded: bool,
    /// The readiness probe's latest result is success.
    pub ready: bool,
}

/// What the worker adds to the runtime's view.
#[derive(Debug, Clone, Default)]
pub struct WorkerNotes {
    /// Container name -> waiting reason (ErrImagePull, CrashLoopBackOff, ...).
    pub waiting: HashMap<String, Waiting>,
    /// An init container failed under restartPolicy Never.
    pub init_failed: bool,
    /// When the worker first acted on the pod (ns), for startTime.
    pub start_time_ns: i64,
    /// Probe verdicts of running containers, by container ID.
    pub probes: HashMap<String, ProbeState>,
    /// Full termination messages of exited containers, by container ID.
    pub termination_messages: HashMap<String, String>,
    /// activeDeadlineSeconds passed: the pod failed with reason DeadlineExceeded.
    pub deadline_exceeded: bool,
    /// The phase last reported: a terminal phase is never left.
    pub last_phase: Option<String>,
}

pub fn time_of(ns: i64) -> Option<Time> {
    if ns <= 0 {
        return None;
    }
    Timestamp::from_nanosecond(i128::from(ns)).ok().map(Time)
}

fn terminated(o: &ObservedContainer, notes: &WorkerNotes) -> ContainerStateTerminated {
    let reason = if !o.reason.is_empty() {
        o.reason.clone()
    } else if o.exit_code == 0 {
        "Completed".into()
    } else {
        "Error".into()
    };
    // The runtime's message, enriched with the container's termination message.
    let message = notes
        .termination_messages
        .get(&o.id)
        .cloned()
        .unwrap_or_else(|| o.message.clone());
    ContainerStateTerminated {
        exit_code: o.exit_code,
        reason: Some(reason),
        message: (!message.is_empty()).then_some(message),
        started_at: time_of(o.started_at),
        finished_at: time_of(o.finished_at),
        container_id: Some(format!("containerd://{}", o.id)),
        signal: None,
    }
}

/// Which list of the spec a container comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Init,
    Regular,
    Ephemeral,
}

/// Whether a container that is not running will be started again (upstream
/// ShouldContainerBeRestarted): never-run, created and unknown ones will; exited ones per
/// the restart policy (sidecars always, ephemeral containers never).
fn will_start(
    kind: Kind,
    spec: &Container,
    latest: Option<&ObservedContainer>,
    policy: &str,
) -> bool {
    let Some(o) = latest else {
        return true;
    };
    match o.state {
        model::ContainerState::Running => false,
        model::ContainerState::Exited => match kind {
            Kind::Ephemeral => false,
            _ if is_sidecar(spec) => true,
            _ => crate::runtime::actions::should_restart(policy, o.exit_code),
        },
        _ => true,
    }
}

fn terminated_state(t: ContainerStateTerminated) -> ContainerState {
    ContainerState {
        terminated: Some(t),
        ..Default::default()
    }
}

fn waiting_state(reason: Option<&str>, message: Option<String>) -> ContainerState {
    ContainerState {
        waiting: Some(ContainerStateWaiting {
            reason: reason.map(str::to_string),
            message,
        }),
        ..Default::default()
    }
}

/// One container's status (upstream convertToAPIContainerStatuses plus the prober's
/// started/ready): the newest instance gives the state, the one before the last state; a
/// container that will be started again shows the reason the worker recorded for it.
fn container_status(
    spec: &Container,
    kind: Kind,
    observed: Option<&ObservedPod>,
    notes: &WorkerNotes,
    policy: &str,
    default_waiting: &str,
) -> ContainerStatus {
    let mut history = observed
        .into_iter()
        .flat_map(|o| o.containers_named(&spec.name));
    let latest = history.next();
    let previous = history.next();
    let mut status = ContainerStatus {
        name: spec.name.clone(),
        image: spec.image.clone().unwrap_or_default(),
        image_id: String::new(),
        ready: false,
        restart_count: latest.map(|c| c.restart_count as i32).unwrap_or(0),
        started: (kind != Kind::Ephemeral).then_some(false),
        ..Default::default()
    };
    status.last_state = previous.map(|p| terminated_state(terminated(p, notes)));
    match latest {
        None => status.state = Some(waiting_state(Some(default_waiting), None)),
        Some(c) => {
            status.container_id = Some(format!("containerd://{}", c.id));
            status.image_id = c.image_ref.clone();
            status.state = Some(match c.state {
                model::ContainerState::Running => ContainerState {
                    running: Some(ContainerStateRunning {
                        started_at: time_of(c.started_at),
                    }),
                    ..Default::default()
                },
                model::ContainerState::Exited => terminated_state(terminated(c, notes)),
                // Created but not started, or unknown: waiting to run.
                _ => waiting_state(None, None),
            });
        }
    }
    // A container about to be (re)started shows why it is not running yet.
    let init_succeeded = kind == Kind::Init
        && !is_sidecar(spec)
        && latest.is_some_and(|c| c.state == model::ContainerState::Exited && c.exit_code == 0);
    if let Some(w) = notes.waiting.get(&spec.name)
        && !init_succeeded
        && will_start(kind, spec, latest, policy)
    {
        if let Some(t) = status.state.as_ref().and_then(|s| s.terminated.clone()) {
            status.last_state = Some(terminated_state(t));
        }
        status.state = Some(waiting_state(Some(&w.reason), Some(w.message.clone())));
    }
    match latest {
        Some(c) if c.state == model::ContainerState::Running && kind != Kind::Ephemeral => {
            let probes = notes.probes.get(&c.id).copied().unwrap_or_default();
            let started = spec.startup_probe.is_none() || probes.startup_succeeded;
            status.started = Some(started);
            // A regular init container is ready only once it succeeded.
            let can_be_ready = kind == Kind::Regular || is_sidecar(spec);
            status.ready =
                can_be_ready && started && (spec.readiness_probe.is_none() || probes.ready);
        }
        _ if init_succeeded => status.ready = true,
        _ => {}
    }
    status
}

fn running(s: &ContainerStatus) -> bool {
    s.state.as_ref().is_some_and(|st| st.running.is_some())
}

fn terminated_exit(s: &ContainerStatus) -> Option<i32> {
    s.state
        .as_ref()
        .and_then(|st| st.terminated.as_ref())
        .map(|t| t.exit_code)
}

fn last_exit(s: &ContainerStatus) -> Option<i32> {
    s.last_state
        .as_ref()
        .and_then(|st| st.terminated.as_ref())
        .map(|t| t.exit_code)
}

/// Whether any main container has run (upstream HasAnyRegularContainerStarted).
fn any_main_started(statuses: &[ContainerStatus]) -> bool {
    statuses
        .iter()
        .any(|s| running(s) || terminated_exit(s).is_some())
}

/// Upstream getPhase: `init` and `main` are the statuses in spec order.
pub fn phase(pod: &Pod, init: &[ContainerStatus], main: &[ContainerStatus]) -> &'static str {
    let spec = pod.spec.clone().unwrap_or_default();
    let policy = spec.restart_policy.as_deref().unwrap_or("Always");
    let init_specs = spec.init_containers.unwrap_or_default();
    let (mut pending_init, mut failed_init) = (0, 0);
    let (mut unknown, mut running_n, mut waiting, mut stopped, mut succeeded) = (0, 0, 0, 0, 0);
    for (c, s) in init_specs.iter().zip(init) {
        let waiting_now = s.state.as_ref().is_some_and(|st| st.waiting.is_some());
        if is_sidecar(c) {
            if running(s) {
                if s.started != Some(true) {
                    pending_init += 1;
                }
                running_n += 1;
            } else if terminated_exit(s).is_some() || (waiting_now && last_exit(s).is_some()) {
                // Stopped sidecars do not count for the phase.
            } else {
                pending_init += 1;
                if waiting_now {
                    waiting += 1;
                } else {
                    unknown += 1;
                }
            }
        } else if running(s) {
            pending_init += 1;
        } else if let Some(code) = terminated_exit(s) {
            if code != 0 {
                failed_init += 1;
            }
        } else if waiting_now && let Some(code) = last_exit(s) {
            if code != 0 {
                failed_init += 1;
            }
        } else {
            pending_init += 1;
        }
    }
    for s in main {
        if running(s) {
            running_n += 1;
        } else if let Some(code) = terminated_exit(s) {
            stopped += 1;
            if code == 0 {
                succeeded += 1;
            }
        } else if s.state.as_ref().is_some_and(|st| st.waiting.is_some()) {
            if last_exit(s).is_some() {
                stopped += 1;
            } else {
                waiting += 1;
            }
        } else {
            unknown += 1;
        }
    }
    if failed_init > 0 && policy == "Never" {
        return "Failed";
    }
    if (pending_init > 0 && !any_main_started(main)) || waiting > 0 {
        return "Pending";
    }
    if running_n > 0 && unknown == 0 {
        return "Running";
    }
    if running_n == 0 && stopped > 0 && unknown == 0 {
        return match policy {
            "Always" => "Running",
            _ if stopped == succeeded => "Succeeded",
            "Never" => "Failed",
            _ => "Running",
        };
    }
    "Pending"
}

fn condition(
    kind: &str,
    ok: bool,
    reason: Option<&str>,
    message: Option<String>,
    now: &Time,
) -> PodCondition {
    PodCondition {
        type_: kind.to_string(),
        status: if ok { "True" } else { "False" }.to_string(),
        reason: reason.map(str::to_string),
        message,
        last_transition_time: Some(now.clone()),
        ..Default::default()
    }
}

/// Go's `%s` of a string slice: `[a b]`.
fn go_list(names: &[String]) -> String {
    format!("[{}]", names.join(" "))
}

/// The pod conditions the kubelet owns, with upstream rules (status/generate.go).
pub fn conditions(
    pod: &Pod,
    phase: &str,
    sandbox_ok: bool,
    init: &[ContainerStatus],
    main: &[ContainerStatus],
    now: &Time,
) -> Vec<PodCondition> {
    let spec = pod.spec.clone().unwrap_or_default();
    let init_specs = spec.init_containers.clone().unwrap_or_default();

    let incomplete: Vec<String> = init_specs
        .iter()
        .zip(init)
        .filter(|(c, s)| {
            if is_sidecar(c) {
                s.started != Some(true)
            } else {
                !s.ready
            }
        })
        .map(|(c, _)| c.name.clone())
        .collect();
    let initialized = if phase == "Succeeded" {
        condition("Initialized", true, Some("PodCompleted"), None, now)
    } else if any_main_started(main) || incomplete.is_empty() {
        condition("Initialized", true, None, None, now)
    } else {
        condition(
            "Initialized",
            false,
            Some("ContainersNotInitialized"),
            Some(format!(
                "containers with incomplete status: {}",
                go_list(&incomplete)
            )),
            now,
        )
    };

    let unready: Vec<String> = init_specs
        .iter()
        .zip(init)
        .filter(|(c, s)| is_sidecar(c) && !s.ready)
        .map(|(c, _)| c.name.clone())
        .chain(main.iter().filter(|s| !s.ready).map(|s| s.name.clone()))
        .collect();
    let containers_ready = match phase {
        "Succeeded" => condition("ContainersReady", false, Some("PodCompleted"), None, now),
        "Failed" => condition("ContainersReady", false, Some("PodFailed"), None, now),
        _ if !unready.is_empty() => condition(
            "ContainersReady",
            false,
            Some("ContainersNotReady"),
            Some(format!(
                "containers with unready status: {}",
                go_list(&unready)
            )),
            now,
        ),
        _ => condition("ContainersReady", true, None, None, now),
    };
    let ready = if containers_ready.status != "True" {
        PodCondition {
            type_: "Ready".into(),
            ..containers_ready.clone()
        }
    } else {
        // Readiness gates name conditions set by others (an API client); a static pod has
        // none, so a gate keeps it unready, as upstream.
        let existing = pod.status.as_ref().and_then(|s| s.conditions.as_ref());
        let unmet: Vec<String> = spec
            .readiness_gates
            .iter()
            .flatten()
            .filter_map(|g| {
                match existing
                    .into_iter()
                    .flatten()
                    .find(|c| c.type_ == g.condition_type)
                {
                    None => Some(format!(
                        "corresponding condition of pod readiness gate {:?} does not exist.",
                        g.condition_type
                    )),
                    Some(c) if c.status != "True" => Some(format!(
                        "the status of pod readiness gate {:?} is not \"True\", but {}",
                        g.condition_type, c.status
                    )),
                    Some(_) => None,
                }
            })
            .collect();
        if unmet.is_empty() {
            condition("Ready", true, None, None, now)
        } else {
            condition(
                "Ready",
                false,
                Some("ReadinessGatesNotReady"),
                Some(unmet.join(", ")),
                now,
            )
        }
    };
    vec![
        condition("PodReadyToStartContainers", sandbox_ok, None, None, now),
        initialized,
        ready,
        containers_ready,
        condition("PodScheduled", true, None, None, now),
    ]
}

/// Cut every termination message so that together they stay within 12 KiB (upstream
/// normalizeStatus: an equal share per container).
fn limit_messages(statuses: &mut [&mut Vec<ContainerStatus>], containers: usize) {
    let share = crate::lifecycle::termination::MAX_POD_MESSAGE_BYTES / containers.max(1);
    let cut = |state: &mut Option<ContainerState>| {
        if let Some(m) = state
            .as_mut()
            .and_then(|s| s.terminated.as_mut())
            .and_then(|t| t.message.as_mut())
            && m.len() > share
        {
            *m = crate::lifecycle::termination::first_bytes(m, share).to_string();
        }
    };
    for list in statuses.iter_mut() {
        for s in list.iter_mut() {
            cut(&mut s.state);
            cut(&mut s.last_state);
        }
    }
}

pub const DEADLINE_EXCEEDED: &str = "DeadlineExceeded";
pub const DEADLINE_EXCEEDED_MESSAGE: &str =
    "Pod was active on the node longer than the specified deadline";

/// The complete status of one pod.
pub fn compute(
    pod: &Pod,
    observed: Option<&ObservedPod>,
    notes: &WorkerNotes,
    host_ips: &[String],
) -> PodStatus {
    let spec = pod.spec.clone().unwrap_or_default();
    let policy = spec.restart_policy.as_deref().unwrap_or("Always");
    let init_specs = spec.init_containers.clone().unwrap_or_default();
    let ephemeral_specs: Vec<Container> = spec
        .ephemeral_containers
        .iter()
        .flatten()
        .map(crate::runtime::actions::ephemeral_as_container)
        .collect();
    let default_waiting = if init_specs.is_empty() {
        "ContainerCreating"
    } else {
        "PodInitializing"
    };
    let status_of = |c: &Container, kind: Kind| {
        container_status(c, kind, observed, notes, policy, default_waiting)
    };
    let mut init_statuses: Vec<ContainerStatus> = init_specs
        .iter()
        .map(|c| status_of(c, Kind::Init))
        .collect();
    let mut statuses: Vec<ContainerStatus> = spec
        .containers
        .iter()
        .map(|c| status_of(c, Kind::Regular))
        .collect();
    let mut ephemeral_statuses: Vec<ContainerStatus> = ephemeral_specs
        .iter()
        .map(|c| status_of(c, Kind::Ephemeral))
        .collect();
    let containers = init_statuses.len() + statuses.len() + ephemeral_statuses.len();
    limit_messages(
        &mut [&mut init_statuses, &mut statuses, &mut ephemeral_statuses],
        containers,
    );

    let mut phase = phase(pod, &init_statuses, &statuses);
    let (mut reason, mut message) = (None, None);
    if notes.deadline_exceeded {
        phase = "Failed";
        reason = Some(DEADLINE_EXCEEDED.to_string());
        message = Some(DEADLINE_EXCEEDED_MESSAGE.to_string());
    } else if let Some(last) = notes.last_phase.as_deref()
        && matches!(last, "Succeeded" | "Failed")
        && phase != last
    {
        // Pods do not leave a terminal phase.
        phase = if last == "Succeeded" {
            "Succeeded"
        } else {
            "Failed"
        };
    }
    let now = time_of(model::now_ns()).unwrap_or(Time(Timestamp::UNIX_EPOCH));
    let sandbox_ok = observed.is_some_and(|o| {
        o.sandboxes.iter().filter(|s| s.ready).count() == 1
            && o.latest_sandbox().is_some_and(|s| s.ready)
    });
    let conditions = conditions(pod, phase, sandbox_ok, &init_statuses, &statuses, &now);
    let current_sandbox = observed.and_then(|o| o.latest_sandbox());
    let ips: Vec<String> = current_sandbox.map(|s| s.ips.clone()).unwrap_or_default();
    PodStatus {
        phase: Some(phase.to_string()),
        reason,
        message,
        conditions: Some(conditions),
        host_ip: host_ips.first().cloned(),
        host_ips: (!host_ips.is_empty()).then(|| {
            host_ips
                .iter()
                .map(|ip| HostIP { ip: ip.clone() })
                .collect()
        }),
        pod_ip: ips.first().cloned(),
        pod_ips: (!ips.is_empty()).then(|| ips.iter().map(|ip| PodIP { ip: ip.clone() }).collect()),
        start_time: time_of(notes.start_time_ns),
        qos_class: Some(cm::qos_class(pod).as_str().to_string()),
        init_container_statuses: (!init_statuses.is_empty()).then_some(init_statuses),
        container_statuses: Some(statuses),
        ephemeral_container_statuses: (!ephemeral_statuses.is_empty())
            .then_some(ephemeral_statuses),
        ..Default::default()
    }
}

/// The status of a pod refused at admission (upstream: phase Failed, reason, message).
pub fn rejected(pod: &Pod, reason: &str, message: &str) -> PodStatus {
    PodStatus {
        phase: Some("Failed".into()),
        reason: Some(reason.to_string()),
        message: Some(message.to_string()),
        qos_class: Some(cm::qos_class(pod).as_str().to_string()),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::model::{ContainerState as CS, ObservedSandbox};
    use k8s_openapi::api::core::v1::PodSpec;

    fn pod(policy: &str, names: &[&str]) -> Pod {
        Pod {
            spec: Some(PodSpec {
                restart_policy: Some(policy.into()),
                containers: names
                    .iter()
                    .map(|n| Container {
                        name: n.to_string(),
                        image: Some("busybox".into()),
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn obs(containers: &[(&str, CS, i32, u32)]) -> ObservedPod {
        ObservedPod {
            uid: "u".into(),
            sandboxes: vec![ObservedSandbox {
                id: "s".into(),
                attempt: 0,
                ready: true,
                created_at: 1,
                ips: vec!["10.88.0.9".into()],
            }],
            containers: containers
                .iter()
                .enumerate()
                .map(|(i, (n, st, code, restarts))| ObservedContainer {
                    id: format!("id{i}"),
                    name: n.to_string(),
                    sandbox_id: "s".into(),
                    state: *st,
                    created_at: 100 - i as i64,
                    started_at: 1_000_000_000,
                    finished_at: if *st == CS::Exited { 2_000_000_000 } else { 0 },
                    exit_code: *code,
                    reason: String::new(),
                    message: String::new(),
                    image: "busybox".into(),
                    image_ref: "sha256:1".into(),
                    hash: String::new(),
                    restart_count: *restarts,
                })
                .collect(),
            ..Default::default()
        }
    }

    fn phase_of(
        policy: &str,
        names: &[&str],
        o: Option<&ObservedPod>,
        notes: &WorkerNotes,
    ) -> String {
        compute(&pod(policy, names), o, notes, &[]).phase.unwrap()
    }

    #[test]
    fn phase_table() {
        let none = WorkerNotes::default();
        assert_eq!(phase_of("Always", &["a"], None, &none), "Pending");
        let running = obs(&[("a", CS::Running, 0, 0)]);
        assert_eq!(phase_of("Always", &["a"], Some(&running), &none), "Running");
        let done = obs(&[("a", CS::Exited, 0, 0)]);
        assert_eq!(phase_of("Never", &["a"], Some(&done), &none), "Succeeded");
        assert_eq!(
            phase_of("OnFailure", &["a"], Some(&done), &none),
            "Succeeded"
        );
        assert_eq!(phase_of("Always", &["a"], Some(&done), &none), "Running");
        let failed = obs(&[("a", CS::Exited, 3, 0)]);
        assert_eq!(phase_of("Never", &["a"], Some(&failed), &none), "Failed");
        assert_eq!(
            phase_of("OnFailure", &["a"], Some(&failed), &none),
            "Running"
        );
        let mixed = obs(&[("a", CS::Running, 0, 0)]);
        assert_eq!(
            phase_of("Always", &["a", "b"], Some(&mixed), &none),
            "Pending"
        );
    }

    #[test]
    fn crash_loop_shows_waiting_with_last_state() {
        let o = obs(&[("a", CS::Exited, 1, 4)]);
        let mut notes = WorkerNotes::default();
        notes.waiting.insert(
            "a".into(),
            Waiting {
                reason: "CrashLoopBackOff".into(),
                message: "back-off 40s restarting failed container".into(),
            },
        );
        let s = compute(
            &pod("Always", &["a"]),
            Some(&o),
            &notes,
            &["192.168.1.2".into()],
        );
        let cs = &s.container_statuses.as_ref().unwrap()[0];
        assert_eq!(
            cs.state
                .as_ref()
                .unwrap()
                .waiting
                .as_ref()
                .unwrap()
                .reason
                .as_deref(),
            Some("CrashLoopBackOff")
        );
        assert_eq!(
            cs.last_state
                .as_ref()
                .unwrap()
                .terminated
                .as_ref()
                .unwrap()
                .exit_code,
            1
        );
        assert_eq!(cs.restart_count, 4);
        assert_eq!(s.phase.as_deref(), Some("Running"));
        assert_eq!(s.pod_ip.as_deref(), Some("10.88.0.9"));
        assert_eq!(s.host_ip.as_deref(), Some("192.168.1.2"));
        let ready = s
            .conditions
            .unwrap()
            .into_iter()
            .find(|c| c.type_ == "Ready")
            .unwrap();
        assert_eq!(
            (ready.status.as_str(), ready.reason.as_deref()),
            ("False", Some("ContainersNotReady"))
        );
    }

    #[test]
    fn image_errors_are_waiting_reasons() {
        let mut notes = WorkerNotes::default();
        notes.waiting.insert(
            "a".into(),
            Waiting {
                reason: "ErrImagePull".into(),
                message: "not found".into(),
            },
        );
        let s = compute(&pod("Always", &["a"]), None, &notes, &[]);
        let cs = &s.container_statuses.unwrap()[0];
        assert_eq!(
            cs.state
                .as_ref()
                .unwrap()
                .waiting
                .as_ref()
                .unwrap()
                .reason
                .as_deref(),
            Some("ErrImagePull")
        );
        assert_eq!(s.phase.as_deref(), Some("Pending"));
        assert_eq!(s.qos_class.as_deref(), Some("BestEffort"));
    }

    fn named(name: &str) -> Container {
        Container {
            name: name.into(),
            image: Some("busybox".into()),
            ..Default::default()
        }
    }

    fn with_init(policy: &str, init: Vec<Container>, main: &[&str]) -> Pod {
        let mut p = pod(policy, main);
        if let Some(s) = p.spec.as_mut() {
            s.init_containers = Some(init);
        }
        p
    }

    fn cond<'a>(s: &'a PodStatus, kind: &str) -> &'a PodCondition {
        s.conditions
            .as_ref()
            .and_then(|c| c.iter().find(|c| c.type_ == kind))
            .unwrap()
    }

    fn waiting_reason(s: &ContainerStatus) -> Option<&str> {
        s.state.as_ref()?.waiting.as_ref()?.reason.as_deref()
    }

    #[test]
    fn init_container_progress_table() {
        let notes = WorkerNotes::default();
        let p = with_init("Always", vec![named("i1"), named("i2")], &["main"]);
        // Nothing ran yet: Pending, Init 0/2, main waits with PodInitializing.
        let s = compute(&p, None, &notes, &[]);
        assert_eq!(s.phase.as_deref(), Some("Pending"));
        let init = s.init_container_statuses.as_ref().unwrap();
        assert_eq!(waiting_reason(&init[0]), Some("PodInitializing"));
        assert_eq!(
            waiting_reason(&s.container_statuses.as_ref().unwrap()[0]),
            Some("PodInitializing")
        );
        let c = cond(&s, "Initialized");
        assert_eq!(
            (c.status.as_str(), c.reason.as_deref(), c.message.as_deref()),
            (
                "False",
                Some("ContainersNotInitialized"),
                Some("containers with incomplete status: [i1 i2]")
            )
        );
        // i1 done, i2 running: still Pending, i1 ready (succeeded).
        let o = obs(&[("i2", CS::Running, 0, 0), ("i1", CS::Exited, 0, 0)]);
        let s = compute(&p, Some(&o), &notes, &[]);
        assert_eq!(s.phase.as_deref(), Some("Pending"));
        let init = s.init_container_statuses.as_ref().unwrap();
        assert!(init[0].ready && !init[1].ready);
        assert_eq!(
            cond(&s, "Initialized").message.as_deref(),
            Some("containers with incomplete status: [i2]")
        );
        // All done, main running: Running and initialized.
        let o = obs(&[
            ("main", CS::Running, 0, 0),
            ("i2", CS::Exited, 0, 0),
            ("i1", CS::Exited, 0, 0),
        ]);
        let s = compute(&p, Some(&o), &notes, &[]);
        assert_eq!(s.phase.as_deref(), Some("Running"));
        assert_eq!(cond(&s, "Initialized").status, "True");
        assert_eq!(cond(&s, "Ready").status, "True");
        // An init container failed under Never: the pod failed.
        let p = with_init("Never", vec![named("i1")], &["main"]);
        let o = obs(&[("i1", CS::Exited, 2, 0)]);
        assert_eq!(
            compute(&p, Some(&o), &notes, &[]).phase.as_deref(),
            Some("Failed")
        );
        // ...and under OnFailure it is retried: Pending, waiting with the last exit.
        let p = with_init("OnFailure", vec![named("i1")], &["main"]);
        let mut crash = WorkerNotes::default();
        crash.waiting.insert(
            "i1".into(),
            Waiting {
                reason: "CrashLoopBackOff".into(),
                message: "back-off".into(),
            },
        );
        let s = compute(&p, Some(&o), &crash, &[]);
        assert_eq!(s.phase.as_deref(), Some("Pending"));
        let i1 = &s.init_container_statuses.as_ref().unwrap()[0];
        assert_eq!(waiting_reason(i1), Some("CrashLoopBackOff"));
        assert_eq!(
            i1.last_state
                .as_ref()
                .unwrap()
                .terminated
                .as_ref()
                .unwrap()
                .exit_code,
            2
        );
    }

    #[test]
    fn sidecars_count_as_started_and_ready() {
        let mut side = named("side");
        side.restart_policy = Some("Always".into());
        side.readiness_probe = Some(Default::default());
        side.startup_probe = Some(Default::default());
        let p = with_init("Never", vec![side], &["main"]);
        let o = obs(&[("side", CS::Running, 0, 0)]);
        let mut notes = WorkerNotes::default();
        // Not started yet (startup probe pending): Pending, not initialized.
        let s = compute(&p, Some(&o), &notes, &[]);
        assert_eq!(s.phase.as_deref(), Some("Pending"));
        let side = &s.init_container_statuses.as_ref().unwrap()[0];
        assert_eq!((side.started, side.ready), (Some(false), false));
        assert_eq!(cond(&s, "Initialized").status, "False");
        // Started and ready, main running: Running, everything ready.
        notes.probes.insert(
            "id1".into(),
            ProbeState {
                startup_succeeded: true,
                ready: true,
            },
        );
        let o = obs(&[("main", CS::Running, 0, 0), ("side", CS::Running, 0, 0)]);
        let s = compute(&p, Some(&o), &notes, &[]);
        assert_eq!(s.phase.as_deref(), Some("Running"));
        assert_eq!(cond(&s, "ContainersReady").status, "True");
        // Main done, sidecar stopped by the kubelet: Succeeded.
        let o = obs(&[("main", CS::Exited, 0, 0), ("side", CS::Exited, 137, 0)]);
        let s = compute(&p, Some(&o), &WorkerNotes::default(), &[]);
        assert_eq!(s.phase.as_deref(), Some("Succeeded"));
        assert_eq!(cond(&s, "Ready").reason.as_deref(), Some("PodCompleted"));
        assert_eq!(
            cond(&s, "Initialized").reason.as_deref(),
            Some("PodCompleted")
        );
    }

    #[test]
    fn readiness_probe_drives_ready_and_conditions() {
        let mut p = pod("Always", &["web", "side"]);
        if let Some(s) = p.spec.as_mut() {
            s.containers[0].readiness_probe = Some(Default::default());
        }
        let o = obs(&[("web", CS::Running, 0, 0), ("side", CS::Running, 0, 0)]);
        let mut notes = WorkerNotes::default();
        let s = compute(&p, Some(&o), &notes, &[]);
        let statuses = s.container_statuses.as_ref().unwrap();
        assert!(!statuses[0].ready && statuses[1].ready);
        assert_eq!(statuses[0].started, Some(true));
        let ready = cond(&s, "Ready");
        assert_eq!(
            (
                ready.status.as_str(),
                ready.reason.as_deref(),
                ready.message.as_deref()
            ),
            (
                "False",
                Some("ContainersNotReady"),
                Some("containers with unready status: [web]")
            )
        );
        notes.probes.insert(
            "id0".into(),
            ProbeState {
                startup_succeeded: false,
                ready: true,
            },
        );
        let s = compute(&p, Some(&o), &notes, &[]);
        assert_eq!(cond(&s, "Ready").status, "True");
        assert_eq!(cond(&s, "ContainersReady").status, "True");
        assert_eq!(cond(&s, "PodReadyToStartContainers").status, "True");
        assert_eq!(cond(&s, "PodScheduled").status, "True");
        // A readiness gate nobody sets keeps a static pod unready.
        if let Some(spec) = p.spec.as_mut() {
            spec.readiness_gates = Some(vec![k8s_openapi::api::core::v1::PodReadinessGate {
                condition_type: "example.com/gate".into(),
            }]);
        }
        let s = compute(&p, Some(&o), &notes, &[]);
        assert_eq!(
            cond(&s, "Ready").reason.as_deref(),
            Some("ReadinessGatesNotReady")
        );
        assert_eq!(cond(&s, "ContainersReady").status, "True");
    }

    #[test]
    fn deadline_and_terminal_phases_stick() {
        let o = obs(&[("a", CS::Exited, 137, 0)]);
        let notes = WorkerNotes {
            deadline_exceeded: true,
            ..Default::default()
        };
        let s = compute(&pod("Always", &["a"]), Some(&o), &notes, &[]);
        assert_eq!(s.phase.as_deref(), Some("Failed"));
        assert_eq!(s.reason.as_deref(), Some("DeadlineExceeded"));
        assert_eq!(cond(&s, "Ready").reason.as_deref(), Some("PodFailed"));
        let notes = WorkerNotes {
            last_phase: Some("Succeeded".into()),
            ..Default::default()
        };
        let s = compute(&pod("Never", &["a"]), None, &notes, &[]);
        assert_eq!(s.phase.as_deref(), Some("Succeeded"));
    }

    #[test]
    fn termination_messages_share_12k() {
        let names: Vec<String> = (0..4).map(|i| format!("c{i}")).collect();
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let o = obs(&[
            ("c0", CS::Exited, 1, 0),
            ("c1", CS::Exited, 0, 0),
            ("c2", CS::Exited, 0, 0),
            ("c3", CS::Exited, 0, 0),
        ]);
        let mut notes = WorkerNotes::default();
        notes
            .termination_messages
            .insert("id0".into(), format!("Error: {}", "x".repeat(5000)));
        notes
            .termination_messages
            .insert("id1".into(), "bye".into());
        let s = compute(&pod("Never", &refs), Some(&o), &notes, &[]);
        let statuses = s.container_statuses.unwrap();
        let msg = |i: usize| {
            statuses[i]
                .state
                .as_ref()
                .unwrap()
                .terminated
                .as_ref()
                .unwrap()
                .message
                .clone()
        };
        assert_eq!(msg(0).unwrap().len(), 12 * 1024 / 4);
        assert_eq!(msg(1).as_deref(), Some("bye"));
        assert_eq!(msg(2), None);
        let t = statuses[0]
            .state
            .as_ref()
            .unwrap()
            .terminated
            .as_ref()
            .unwrap();
        assert_eq!(t.reason.as_deref(), Some("Error"));
        let t = statuses[1]
            .state
            .as_ref()
            .unwrap()
            .terminated
            .as_ref()
            .unwrap();
        assert_eq!(t.reason.as_deref(), Some("Completed"));
    }

    #[test]
    fn ephemeral_containers_have_their_own_statuses() {
        let mut p = pod("Always", &["main"]);
        if let Some(s) = p.spec.as_mut() {
            s.ephemeral_containers = Some(vec![k8s_openapi::api::core::v1::EphemeralContainer {
                name: "debug".into(),
                image: Some("busybox".into()),
                ..Default::default()
            }]);
        }
        let o = obs(&[("main", CS::Running, 0, 0), ("debug", CS::Exited, 0, 0)]);
        let s = compute(&p, Some(&o), &WorkerNotes::default(), &[]);
        let e = &s.ephemeral_container_statuses.as_ref().unwrap()[0];
        assert_eq!(e.name, "debug");
        assert!(e.state.as_ref().unwrap().terminated.is_some());
        assert_eq!(e.started, None);
        // They do not count for the phase or readiness.
        assert_eq!(s.phase.as_deref(), Some("Running"));
        assert_eq!(cond(&s, "Ready").status, "True");
    }
}
