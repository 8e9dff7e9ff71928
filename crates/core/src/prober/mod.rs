//! Container probes (liveness, readiness, startup) with upstream semantics
//! (pkg/kubelet/prober): one task per probe of a running container, results shared with
//! the pod worker, which kills containers that fail liveness or startup and reports
//! readiness in the pod status.
//!
//! - [`exec`], [`http`], [`tcp`], [`grpc`]: one probe run of each handler kind.
//! - [`results`]: the latest result per container ID and probe kind, with change
//!   notification.
//! - [`manager`]: starts and stops the probe tasks of one pod as its containers come and go.

pub mod exec;
pub mod grpc;
pub mod http;
pub mod manager;
pub mod results;
pub mod tcp;
mod worker;

use std::time::Duration;

use k8s_openapi::api::core::v1::{Container, Probe};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use crate::runtime::cri::CriClient;

pub use manager::ProbeManager;
pub use results::{ProbeResult, ProbeResults};

/// The Kubernetes minor this kubelet speaks, for `kube-probe/<major>.<minor>` user agents.
pub const KUBE_VERSION: &str = "1.35";

/// Probe output kept for messages and events (upstream maxReadLength / maxRespBodyLength).
pub const MAX_OUTPUT: usize = 10 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ProbeKind {
    Liveness,
    Readiness,
    Startup,
}

impl ProbeKind {
    pub const ALL: [ProbeKind; 3] = [
        ProbeKind::Liveness,
        ProbeKind::Readiness,
        ProbeKind::Startup,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ProbeKind::Liveness => "liveness",
            ProbeKind::Readiness => "readiness",
            ProbeKind::Startup => "startup",
        }
    }

    /// "Liveness", as upstream names probes in messages.
    pub fn title(self) -> &'static str {
        match self {
            ProbeKind::Liveness => "Liveness",
            ProbeKind::Readiness => "Readiness",
            ProbeKind::Startup => "Startup",
        }
    }

    pub fn of(self, c: &Container) -> Option<&Probe> {
        match self {
            ProbeKind::Liveness => c.liveness_probe.as_ref(),
            ProbeKind::Readiness => c.readiness_probe.as_ref(),
            ProbeKind::Startup => c.startup_probe.as_ref(),
        }
    }

    /// The result before the first probe (and during the initial delay): not ready,
    /// alive, startup unknown.
    pub fn initial(self) -> ProbeResult {
        match self {
            ProbeKind::Liveness => ProbeResult::Success,
            ProbeKind::Readiness => ProbeResult::Failure,
            ProbeKind::Startup => ProbeResult::Unknown,
        }
    }
}

/// What one probe run found (upstream probe.Result): a warning counts as success.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Success(String),
    Warning(String),
    Failure(String),
}

impl Outcome {
    pub fn is_success(&self) -> bool {
        !matches!(self, Outcome::Failure(_))
    }

    pub fn output(&self) -> &str {
        match self {
            Outcome::Success(s) | Outcome::Warning(s) | Outcome::Failure(s) => s,
        }
    }
}

/// A probe that could not run at all (unknown named port, no pod IP, runtime error): as
/// upstream, its result is thrown away and the previous one stands.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ProbeError(pub String);

/// Timing of a probe with upstream defaults (and minimums) for unset fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    pub initial_delay: Duration,
    pub period: Duration,
    pub timeout: Duration,
    pub success_threshold: u32,
    pub failure_threshold: u32,
}

fn positive(v: Option<i32>, default: i32) -> i32 {
    match v {
        Some(n) if n > 0 => n,
        _ => default,
    }
}

impl Timing {
    pub fn of(p: &Probe) -> Timing {
        Timing {
            initial_delay: Duration::from_secs(p.initial_delay_seconds.unwrap_or(0).max(0) as u64),
            period: Duration::from_secs(positive(p.period_seconds, 10) as u64),
            timeout: Duration::from_secs(positive(p.timeout_seconds, 1) as u64),
            success_threshold: positive(p.success_threshold, 1) as u32,
            failure_threshold: positive(p.failure_threshold, 3) as u32,
        }
    }
}

/// Where a probe or hook is aimed: the container (ports, env) and its pod IP.
#[derive(Debug, Clone)]
pub struct Target {
    pub container: Container,
    pub container_id: String,
    /// The pod's primary IP (the node's for host-network pods), if known.
    pub pod_ip: Option<String>,
}

/// A port given by number or by the name of one of the container's ports (upstream
/// probe.ResolveContainerPort: a name that matches no port may still be a number).
pub fn resolve_port(port: &IntOrString, container: &Container) -> Result<u16, ProbeError> {
    let n = match port {
        IntOrString::Int(n) => i64::from(*n),
        IntOrString::String(name) => {
            let named = container
                .ports
                .iter()
                .flatten()
                .find(|p| p.name.as_deref() == Some(name.as_str()))
                .map(|p| i64::from(p.container_port));
            match named {
                Some(n) => n,
                None => name.parse::<i64>().map_err(|_| {
                    ProbeError(format!(
                        "port {name:?} not found in container {:?}",
                        container.name
                    ))
                })?,
            }
        }
    };
    if (1..=65535).contains(&n) {
        Ok(n as u16)
    } else {
        Err(ProbeError(format!("invalid port number: {n}")))
    }
}

/// `host:port`, bracketing IPv6 literals (Go net.JoinHostPort).
pub fn join_host_port(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// Keep at most [`MAX_OUTPUT`] bytes, cut on a character boundary.
pub fn limit_output(mut s: String) -> String {
    if s.len() > MAX_OUTPUT {
        let mut cut = MAX_OUTPUT;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
    }
    s
}

/// A probe handler, prepared once per probe task (the HTTP client is reused).
pub enum Runner {
    Exec(exec::ExecProbe),
    Http(http::HttpProbe),
    Tcp(tcp::TcpProbe),
    Grpc(grpc::GrpcProbe),
}

impl Runner {
    /// The runner for `probe`, or why it cannot run at all.
    pub fn new(probe: &Probe, target: &Target) -> Result<Runner, ProbeError> {
        let timeout = Timing::of(probe).timeout;
        if let Some(e) = &probe.exec {
            return Ok(Runner::Exec(exec::ExecProbe::new(e, target, timeout)));
        }
        if let Some(h) = &probe.http_get {
            return http::HttpProbe::new(h, target, timeout, "probe").map(Runner::Http);
        }
        if let Some(t) = &probe.tcp_socket {
            return tcp::TcpProbe::new(t, target, timeout).map(Runner::Tcp);
        }
        if let Some(g) = &probe.grpc {
            return grpc::GrpcProbe::new(g, target, timeout).map(Runner::Grpc);
        }
        Err(ProbeError("probe has no handler".into()))
    }

    pub async fn run(&self, cri: &CriClient) -> Result<Outcome, ProbeError> {
        match self {
            Runner::Exec(p) => p.run(cri).await,
            Runner::Http(p) => Ok(p.run().await),
            Runner::Tcp(p) => Ok(p.run().await),
            Runner::Grpc(p) => Ok(p.run().await),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ContainerPort;

    #[test]
    fn ports_by_number_and_name() {
        let c = Container {
            name: "web".into(),
            ports: Some(vec![ContainerPort {
                name: Some("http".into()),
                container_port: 8080,
                ..Default::default()
            }]),
            ..Default::default()
        };
        assert_eq!(resolve_port(&IntOrString::Int(80), &c), Ok(80));
        assert_eq!(
            resolve_port(&IntOrString::String("http".into()), &c),
            Ok(8080)
        );
        assert_eq!(resolve_port(&IntOrString::String("81".into()), &c), Ok(81));
        assert!(resolve_port(&IntOrString::String("grpc".into()), &c).is_err());
        assert!(resolve_port(&IntOrString::Int(0), &c).is_err());
        assert!(resolve_port(&IntOrString::Int(70000), &c).is_err());
    }

    #[test]
    fn timing_defaults_and_minimums() {
        let t = Timing::of(&Probe::default());
        assert_eq!(t.period, Duration::from_secs(10));
        assert_eq!(t.timeout, Duration::from_secs(1));
        assert_eq!((t.success_threshold, t.failure_threshold), (1, 3));
        let t = Timing::of(&Probe {
            period_seconds: Some(0),
            initial_delay_seconds: Some(-4),
            failure_threshold: Some(1),
            ..Default::default()
        });
        assert_eq!(t.period, Duration::from_secs(10));
        assert_eq!(t.initial_delay, Duration::ZERO);
        assert_eq!(t.failure_threshold, 1);
    }

    #[test]
    fn host_port_joining() {
        assert_eq!(join_host_port("10.0.0.1", 80), "10.0.0.1:80");
        assert_eq!(join_host_port("fd00::1", 80), "[fd00::1]:80");
    }
}
