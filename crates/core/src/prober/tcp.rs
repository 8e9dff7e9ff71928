//! tcpSocket probes: success when a TCP connection opens within the timeout.

use std::time::Duration;

use k8s_openapi::api::core::v1::TCPSocketAction;

use super::{Outcome, ProbeError, Target, join_host_port, resolve_port};

pub struct TcpProbe {
    address: String,
    timeout: Duration,
}

impl TcpProbe {
    pub fn new(
        action: &TCPSocketAction,
        target: &Target,
        timeout: Duration,
    ) -> Result<TcpProbe, ProbeError> {
        let host = match action.host.as_deref().filter(|h| !h.is_empty()) {
            Some(h) => h.to_string(),
            None => target
                .pod_ip
                .clone()
                .ok_or_else(|| ProbeError("the pod has no IP yet".into()))?,
        };
        let port = resolve_port(&action.port, &target.container)?;
        Ok(TcpProbe {
            address: join_host_port(&host, port),
            timeout,
        })
    }

    pub async fn run(&self) -> Outcome {
        match tokio::time::timeout(
            self.timeout,
            tokio::net::TcpStream::connect(self.address.as_str()),
        )
        .await
        {
            Ok(Ok(_stream)) => Outcome::Success(String::new()),
            Ok(Err(err)) => Outcome::Failure(format!(
                "dial tcp {}: connect: {}",
                self.address,
                err.kind().to_string().to_lowercase()
            )),
            Err(_) => Outcome::Failure(format!("dial tcp {}: i/o timeout", self.address)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::Container;
    use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

    #[tokio::test]
    async fn open_and_closed_ports() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let target = Target {
            container: Container::default(),
            container_id: "c".into(),
            pod_ip: Some("127.0.0.1".into()),
        };
        let probe = |port: u16| {
            TcpProbe::new(
                &TCPSocketAction {
                    port: IntOrString::Int(i32::from(port)),
                    host: None,
                },
                &target,
                Duration::from_secs(1),
            )
            .unwrap()
        };
        assert_eq!(probe(port).run().await, Outcome::Success(String::new()));
        drop(listener);
        let out = probe(port).run().await;
        assert_eq!(
            out,
            Outcome::Failure(format!(
                "dial tcp 127.0.0.1:{port}: connect: connection refused"
            ))
        );
    }
}
