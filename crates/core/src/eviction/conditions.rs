//! The node conditions housekeeping owns, as a small shared view: MemoryPressure,
//! DiskPressure and PIDPressure (eviction manager) and "shutting down" (graceful node
//! shutdown, which makes Ready false). The node status code (cluster mode) reads a
//! [`NodeHealthView`] and publishes [`NodeHealth::node_conditions`]; admission reads it
//! too. Writers: the eviction manager and the node shutdown manager.

use std::sync::Arc;

use k8s_openapi::api::core::v1::NodeCondition;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use tokio::sync::watch;

use super::signals::Pressure;
use crate::runtime::model::now_ns;

/// One condition and when it last changed (ns since the epoch; 0: never).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ConditionState {
    pub active: bool,
    pub since_ns: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NodeHealth {
    pub memory_pressure: ConditionState,
    pub disk_pressure: ConditionState,
    pub pid_pressure: ConditionState,
    /// Graceful node shutdown has begun: Ready is False with "node is shutting down".
    pub shutting_down: ConditionState,
}

impl NodeHealth {
    pub fn pressure(&self, p: Pressure) -> ConditionState {
        match p {
            Pressure::Memory => self.memory_pressure,
            Pressure::Disk => self.disk_pressure,
            Pressure::Pid => self.pid_pressure,
        }
    }

    fn pressure_mut(&mut self, p: Pressure) -> &mut ConditionState {
        match p {
            Pressure::Memory => &mut self.memory_pressure,
            Pressure::Disk => &mut self.disk_pressure,
            Pressure::Pid => &mut self.pid_pressure,
        }
    }

    /// The pressure conditions that are true, in upstream's order (as Go prints a
    /// `[]NodeConditionType` in messages: `[MemoryPressure DiskPressure]`).
    pub fn active_pressures(&self) -> Vec<Pressure> {
        [Pressure::Memory, Pressure::Disk, Pressure::Pid]
            .into_iter()
            .filter(|p| self.pressure(*p).active)
            .collect()
    }

    /// MemoryPressure, DiskPressure and PIDPressure with upstream's reasons and
    /// messages (pkg/kubelet/nodestatus/setters.go), `heartbeat` as lastHeartbeatTime.
    pub fn node_conditions(&self, heartbeat: &Time) -> Vec<NodeCondition> {
        let make = |type_: &str, c: ConditionState, yes: (&str, &str), no: (&str, &str)| {
            let (reason, message) = if c.active { yes } else { no };
            NodeCondition {
                type_: type_.into(),
                status: if c.active { "True" } else { "False" }.into(),
                reason: Some(reason.into()),
                message: Some(message.into()),
                last_heartbeat_time: Some(heartbeat.clone()),
                last_transition_time: crate::status::time_of(c.since_ns)
                    .or_else(|| Some(heartbeat.clone())),
            }
        };
        vec![
            make(
                "MemoryPressure",
                self.memory_pressure,
                (
                    "KubeletHasInsufficientMemory",
                    "kubelet has insufficient memory available",
                ),
                (
                    "KubeletHasSufficientMemory",
                    "kubelet has sufficient memory available",
                ),
            ),
            make(
                "DiskPressure",
                self.disk_pressure,
                ("KubeletHasDiskPressure", "kubelet has disk pressure"),
                ("KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
            ),
            make(
                "PIDPressure",
                self.pid_pressure,
                (
                    "KubeletHasInsufficientPID",
                    "kubelet has insufficient PID available",
                ),
                (
                    "KubeletHasSufficientPID",
                    "kubelet has sufficient PID available",
                ),
            ),
        ]
    }
}

/// Read side; cheap to clone.
#[derive(Clone, Debug)]
pub struct NodeHealthView {
    rx: watch::Receiver<NodeHealth>,
}

impl NodeHealthView {
    pub fn current(&self) -> NodeHealth {
        self.rx.borrow().clone()
    }

    /// A receiver to wait for changes with.
    pub fn subscribe(&self) -> watch::Receiver<NodeHealth> {
        self.rx.clone()
    }
}

/// Write side; cheap to clone.
#[derive(Clone, Debug)]
pub struct NodeHealthWriter {
    tx: Arc<watch::Sender<NodeHealth>>,
}

impl NodeHealthWriter {
    /// Set the pressure conditions; returns those that changed.
    pub fn set_pressures(&self, active: &[Pressure]) -> Vec<(Pressure, bool)> {
        let mut changed = Vec::new();
        self.tx.send_if_modified(|h| {
            for p in [Pressure::Memory, Pressure::Disk, Pressure::Pid] {
                let want = active.contains(&p);
                let c = h.pressure_mut(p);
                if c.active != want || c.since_ns == 0 {
                    if c.active != want {
                        changed.push((p, want));
                    }
                    *c = ConditionState {
                        active: want,
                        since_ns: now_ns(),
                    };
                }
            }
            !changed.is_empty()
        });
        changed
    }

    pub fn set_shutting_down(&self) {
        self.tx.send_if_modified(|h| {
            if h.shutting_down.active {
                return false;
            }
            h.shutting_down = ConditionState {
                active: true,
                since_ns: now_ns(),
            };
            true
        });
    }

    pub fn view(&self) -> NodeHealthView {
        NodeHealthView {
            rx: self.tx.subscribe(),
        }
    }
}

pub fn node_health() -> (NodeHealthWriter, NodeHealthView) {
    let (tx, rx) = watch::channel(NodeHealth::default());
    (NodeHealthWriter { tx: Arc::new(tx) }, NodeHealthView { rx })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conditions_carry_upstream_reasons_and_transitions() {
        let (w, view) = node_health();
        assert_eq!(
            w.set_pressures(&[Pressure::Memory]),
            vec![(Pressure::Memory, true)]
        );
        assert!(w.set_pressures(&[Pressure::Memory]).is_empty());
        let h = view.current();
        assert_eq!(h.active_pressures(), vec![Pressure::Memory]);
        let hb = crate::pod::kill::now();
        let conds = h.node_conditions(&hb);
        assert_eq!(conds.len(), 3);
        assert_eq!(conds[0].status, "True");
        assert_eq!(
            conds[0].reason.as_deref(),
            Some("KubeletHasInsufficientMemory")
        );
        assert_eq!(conds[1].reason.as_deref(), Some("KubeletHasNoDiskPressure"));
        assert_eq!(conds[2].status, "False");
        assert!(conds[0].last_transition_time.is_some());
        w.set_shutting_down();
        assert!(view.current().shutting_down.active);
    }
}
