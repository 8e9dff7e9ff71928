//! Node conditions with upstream's reasons and messages (pkg/kubelet/nodestatus):
//! Ready (KubeletReady / KubeletNotReady) and the three pressure conditions. Transition
//! times stay while a condition's status does not change; heartbeats move every update.

use k8s_openapi::api::core::v1::NodeCondition;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

/// What the eviction manager (pressure) and the node shutdown manager say; all false
/// until they say otherwise.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pressure {
    pub memory: bool,
    pub disk: bool,
    pub pid: bool,
    /// Graceful node shutdown has begun: Ready turns False ("node is shutting down").
    pub shutting_down: bool,
}

/// Why the node is not ready; empty means ready.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Readiness {
    pub errors: Vec<String>,
}

impl Readiness {
    /// Aggregate message as Go's `errors.NewAggregate`: one error as is, several in brackets.
    pub fn message(&self) -> String {
        match self.errors.as_slice() {
            [one] => one.clone(),
            many => format!("[{}]", many.join(", ")),
        }
    }
}

fn condition(
    kind: &str,
    status: bool,
    reason: &str,
    message: &str,
    previous: Option<&NodeCondition>,
    now: &Time,
) -> NodeCondition {
    let status = if status { "True" } else { "False" }.to_string();
    let transition = previous
        .filter(|p| p.status == status)
        .and_then(|p| p.last_transition_time.clone())
        .unwrap_or_else(|| now.clone());
    NodeCondition {
        type_: kind.to_string(),
        status,
        reason: Some(reason.to_string()),
        message: Some(message.to_string()),
        last_heartbeat_time: Some(now.clone()),
        last_transition_time: Some(transition),
    }
}

/// The kubelet's conditions in upstream order; conditions others set are kept after them.
pub fn build(
    previous: &[NodeCondition],
    readiness: &Readiness,
    pressure: Pressure,
    now: &Time,
) -> Vec<NodeCondition> {
    let prev = |kind: &str| previous.iter().find(|c| c.type_ == kind);
    let mut out = vec![
        if pressure.memory {
            condition(
                "MemoryPressure",
                true,
                "KubeletHasInsufficientMemory",
                "kubelet has insufficient memory available",
                prev("MemoryPressure"),
                now,
            )
        } else {
            condition(
                "MemoryPressure",
                false,
                "KubeletHasSufficientMemory",
                "kubelet has sufficient memory available",
                prev("MemoryPressure"),
                now,
            )
        },
        if pressure.disk {
            condition(
                "DiskPressure",
                true,
                "KubeletHasDiskPressure",
                "kubelet has disk pressure",
                prev("DiskPressure"),
                now,
            )
        } else {
            condition(
                "DiskPressure",
                false,
                "KubeletHasNoDiskPressure",
                "kubelet has no disk pressure",
                prev("DiskPressure"),
                now,
            )
        },
        if pressure.pid {
            condition(
                "PIDPressure",
                true,
                "KubeletHasInsufficientPID",
                "kubelet has insufficient PID available",
                prev("PIDPressure"),
                now,
            )
        } else {
            condition(
                "PIDPressure",
                false,
                "KubeletHasSufficientPID",
                "kubelet has sufficient PID available",
                prev("PIDPressure"),
                now,
            )
        },
        if readiness.errors.is_empty() {
            condition(
                "Ready",
                true,
                "KubeletReady",
                "kubelet is posting ready status",
                prev("Ready"),
                now,
            )
        } else {
            condition(
                "Ready",
                false,
                "KubeletNotReady",
                &readiness.message(),
                prev("Ready"),
                now,
            )
        },
    ];
    let ours = ["MemoryPressure", "DiskPressure", "PIDPressure", "Ready"];
    out.extend(
        previous
            .iter()
            .filter(|c| !ours.contains(&c.type_.as_str()))
            .cloned(),
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::jiff::Timestamp;

    fn t(s: i64) -> Time {
        Time(Timestamp::from_second(s).unwrap())
    }

    #[test]
    fn ready_transitions_keep_times() {
        let not_ready = Readiness {
            errors: vec![
                "container runtime status check may not have completed yet".into(),
                "PLEG is not healthy: pleg has yet to be successful".into(),
            ],
        };
        let first = build(&[], &not_ready, Pressure::default(), &t(100));
        let ready = first.iter().find(|c| c.type_ == "Ready").unwrap();
        assert_eq!(ready.status, "False");
        assert_eq!(ready.reason.as_deref(), Some("KubeletNotReady"));
        assert_eq!(
            ready.message.as_deref(),
            Some(
                "[container runtime status check may not have completed yet, PLEG is not healthy: pleg has yet to be successful]"
            )
        );
        let second = build(&first, &Readiness::default(), Pressure::default(), &t(110));
        let ready = second.iter().find(|c| c.type_ == "Ready").unwrap();
        assert_eq!(
            (ready.status.as_str(), ready.reason.as_deref()),
            ("True", Some("KubeletReady"))
        );
        assert_eq!(
            ready.message.as_deref(),
            Some("kubelet is posting ready status")
        );
        assert_eq!(ready.last_transition_time, Some(t(110)));
        let mem = second.iter().find(|c| c.type_ == "MemoryPressure").unwrap();
        assert_eq!(mem.last_transition_time, Some(t(100)));
        assert_eq!(mem.last_heartbeat_time, Some(t(110)));
        assert_eq!(mem.reason.as_deref(), Some("KubeletHasSufficientMemory"));
        let pressured = build(
            &second,
            &Readiness::default(),
            Pressure {
                disk: true,
                ..Default::default()
            },
            &t(120),
        );
        let disk = pressured
            .iter()
            .find(|c| c.type_ == "DiskPressure")
            .unwrap();
        assert_eq!(
            (disk.status.as_str(), disk.reason.as_deref()),
            ("True", Some("KubeletHasDiskPressure"))
        );
    }
}
