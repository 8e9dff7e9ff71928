//! grpc probes: the gRPC health checking protocol (grpc.health.v1.Health/Check) on the
//! pod IP and port, plaintext; SERVING is success, anything else a failure.

use std::time::Duration;

use k8s_openapi::api::core::v1::GRPCAction;
use tonic::transport::Endpoint;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use super::{KUBE_VERSION, Outcome, ProbeError, Target, join_host_port};

pub struct GrpcProbe {
    address: String,
    service: String,
    timeout: Duration,
}

impl GrpcProbe {
    pub fn new(
        action: &GRPCAction,
        target: &Target,
        timeout: Duration,
    ) -> Result<GrpcProbe, ProbeError> {
        let host = target
            .pod_ip
            .clone()
            .ok_or_else(|| ProbeError("the pod has no IP yet".into()))?;
        let port = u16::try_from(action.port)
            .ok()
            .filter(|p| *p > 0)
            .ok_or_else(|| ProbeError(format!("invalid port number: {}", action.port)))?;
        Ok(GrpcProbe {
            address: join_host_port(&host, port),
            service: action.service.clone().unwrap_or_default(),
            timeout,
        })
    }

    pub async fn run(&self) -> Outcome {
        let secs = self.timeout.as_secs();
        let endpoint = match Endpoint::from_shared(format!("http://{}", self.address)) {
            Ok(e) => e,
            Err(err) => {
                return Outcome::Failure(format!(
                    "error: failed to connect service at {:?}: {err}",
                    self.address
                ));
            }
        };
        let endpoint = endpoint
            .connect_timeout(self.timeout)
            .timeout(self.timeout)
            .user_agent(format!("kube-probe/{KUBE_VERSION}"));
        let channel = match endpoint {
            Ok(e) => match tokio::time::timeout(self.timeout, e.connect()).await {
                Ok(Ok(channel)) => channel,
                Ok(Err(err)) => {
                    return Outcome::Failure(format!(
                        "error: failed to connect service at {:?}: {}",
                        self.address,
                        error_chain(&err)
                    ));
                }
                Err(_) => {
                    return Outcome::Failure(format!(
                        "timeout: failed to connect service {:?} within {secs}s",
                        self.address
                    ));
                }
            },
            Err(err) => return Outcome::Failure(format!("error: {err}")),
        };
        let mut client = HealthClient::new(channel);
        let request = HealthCheckRequest {
            service: self.service.clone(),
        };
        let response = tokio::time::timeout(self.timeout, client.check(request)).await;
        match response {
            Err(_) => Outcome::Failure(format!(
                "timeout: health rpc did not complete within {secs}s"
            )),
            Ok(Err(status)) => match status.code() {
                tonic::Code::Unimplemented => Outcome::Failure(format!(
                    "this server does not implement the grpc health protocol (grpc.health.v1.Health): {}",
                    status.message()
                )),
                tonic::Code::DeadlineExceeded | tonic::Code::Cancelled => Outcome::Failure(
                    format!("timeout: health rpc did not complete within {secs}s"),
                ),
                _ => Outcome::Failure(format!(
                    "error: health rpc probe failed: {}",
                    error_chain(&status)
                )),
            },
            Ok(Ok(resp)) => {
                let status = resp.into_inner().status;
                if status == ServingStatus::Serving as i32 {
                    Outcome::Success("service healthy".into())
                } else {
                    let name = ServingStatus::try_from(status)
                        .map(|s| s.as_str_name())
                        .unwrap_or("UNKNOWN");
                    Outcome::Failure(format!("service unhealthy (responded with {name:?})"))
                }
            }
        }
    }
}

fn error_chain(err: &dyn std::error::Error) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::Container;

    fn probe(port: u16, service: &str) -> GrpcProbe {
        GrpcProbe::new(
            &GRPCAction {
                port: i32::from(port),
                service: Some(service.into()),
            },
            &Target {
                container: Container::default(),
                container_id: "c".into(),
                pod_ip: Some("127.0.0.1".into()),
            },
            Duration::from_secs(1),
        )
        .unwrap()
    }

    #[tokio::test]
    async fn health_protocol_serving_not_serving_and_refused() {
        let (reporter, service) = tonic_health::server::health_reporter();
        reporter
            .set_service_status("good", tonic_health::ServingStatus::Serving)
            .await;
        reporter
            .set_service_status("bad", tonic_health::ServingStatus::NotServing)
            .await;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(service)
                .serve_with_incoming(tokio_stream_from(listener)),
        );
        assert_eq!(
            probe(port, "good").run().await,
            Outcome::Success("service healthy".into())
        );
        assert_eq!(
            probe(port, "bad").run().await,
            Outcome::Failure("service unhealthy (responded with \"NOT_SERVING\")".into())
        );
        let unknown = probe(port, "nope").run().await;
        assert!(!unknown.is_success(), "{unknown:?}");
        server.abort();
        let _ = server.await;

        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let closed = l.local_addr().unwrap().port();
        drop(l);
        let out = probe(closed, "").run().await;
        assert!(
            matches!(&out, Outcome::Failure(m) if m.starts_with("error: failed to connect")),
            "{out:?}"
        );
    }

    fn tokio_stream_from(
        listener: tokio::net::TcpListener,
    ) -> impl futures::Stream<Item = std::io::Result<tokio::net::TcpStream>> {
        futures::stream::unfold(listener, |l| async move {
            let conn = l.accept().await.map(|(s, _)| s);
            Some((conn, l))
        })
    }
}
