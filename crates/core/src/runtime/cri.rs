//! CRI v1 client: one gRPC channel to the runtime, every call bounded by a timeout and
//! turned into a typed [`CriError`] that names the operation.
//!
//! The channel is lazy, so the kubelet starts even when containerd is not up yet; tonic
//! reconnects on the next call once the socket answers again.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use hyper_util::rt::TokioIo;
use k8s_cri::v1 as cri;
use k8s_cri::v1::image_service_client::ImageServiceClient;
use k8s_cri::v1::runtime_service_client::RuntimeServiceClient;
use kubelet_metrics::KubeletMetrics;
use tokio::net::UnixStream;
use tonic::transport::{Channel, Endpoint, Uri};

/// A failed runtime call.
#[derive(Debug, thiserror::Error)]
pub enum CriError {
    #[error("CRI {op}: timed out after {timeout:?}")]
    Timeout { op: &'static str, timeout: Duration },
    #[error("CRI {op}: {code:?}: {message}")]
    Status {
        op: &'static str,
        code: tonic::Code,
        message: String,
    },
    #[error("invalid container runtime endpoint {endpoint:?}: {reason}")]
    Endpoint { endpoint: String, reason: String },
}

impl CriError {
    pub fn code(&self) -> Option<tonic::Code> {
        match self {
            CriError::Status { code, .. } => Some(*code),
            _ => None,
        }
    }

    pub fn is_not_found(&self) -> bool {
        self.code() == Some(tonic::Code::NotFound)
    }

    /// The runtime could not be reached at all (as opposed to refusing the request).
    pub fn is_unavailable(&self) -> bool {
        matches!(self, CriError::Timeout { .. }) || self.code() == Some(tonic::Code::Unavailable)
    }

    /// The message without the operation prefix, for status messages shown to users.
    pub fn message(&self) -> String {
        match self {
            CriError::Status { message, .. } => message.clone(),
            other => other.to_string(),
        }
    }

    /// The error as upstream's gRPC client prints it (`rpc error: code = Unknown desc =
    /// ...`), which is what upstream puts in events such as FailedCreatePodSandBox.
    pub fn grpc_text(&self) -> String {
        match self {
            CriError::Status { code, message, .. } => {
                let name = match code {
                    tonic::Code::Ok => "OK".to_string(),
                    tonic::Code::Cancelled => "Canceled".to_string(),
                    other => format!("{other:?}"),
                };
                format!("rpc error: code = {name} desc = {message}")
            }
            CriError::Timeout { .. } => {
                format!("rpc error: code = DeadlineExceeded desc = {self}")
            }
            other => other.to_string(),
        }
    }
}

/// A CRI client. Every pod worker, image puller and probe manager keeps a clone, so the
/// clients and settings sit behind one `Arc`: a clone is a pointer, not two gRPC
/// clients with their channel handles (a few hundred bytes and allocations per clone).
#[derive(Clone)]
pub struct CriClient(Arc<Shared>);

struct Shared {
    runtime: RuntimeServiceClient<Channel>,
    image: ImageServiceClient<Channel>,
    timeout: Duration,
    /// Set once by the binary; every clone shares it (kubelet_runtime_operations_*).
    metrics: Arc<OnceLock<KubeletMetrics>>,
}

/// Turn `unix:///path` (or a bare path) into a socket path.
pub fn socket_path(endpoint: &str) -> Result<String, CriError> {
    let bad = |reason: &str| CriError::Endpoint {
        endpoint: endpoint.to_string(),
        reason: reason.to_string(),
    };
    let path = if let Some(rest) = endpoint.strip_prefix("unix://") {
        rest
    } else if endpoint.starts_with('/') {
        endpoint
    } else {
        return Err(bad("only unix:// endpoints are supported"));
    };
    if path.is_empty() {
        return Err(bad("empty socket path"));
    }
    Ok(path.to_string())
}

fn lazy_channel(endpoint: &str) -> Result<Channel, CriError> {
    let path = socket_path(endpoint)?;
    // The URI is required by tonic but unused: the connector dials the unix socket.
    let channel = Endpoint::try_from("http://[::]:50051")
        .map_err(|e| CriError::Endpoint {
            endpoint: endpoint.to_string(),
            reason: e.to_string(),
        })?
        .connect_timeout(Duration::from_secs(2))
        .connect_with_connector_lazy(tower::service_fn(move |_: Uri| {
            let path = path.clone();
            async move { Ok::<_, std::io::Error>(TokioIo::new(UnixStream::connect(path).await?)) }
        }));
    Ok(channel)
}

/// One CRI call with its timeout, metrics and error mapping. The gRPC call's own future
/// is boxed: it is the largest part of any caller's state, and a pod worker's sync pass
/// awaits a dozen different calls, so inline it would make that pass (allocated whole
/// for every pod that syncs, 30-110 at once while pods start) as large as all of them
/// together; boxed, only the call in flight takes memory, and only while in flight.
macro_rules! call {
    ($self:ident, $svc:ident, $method:ident, $op:literal, $req:expr) => {{
        let mut client = $self.0.$svc.clone();
        let started = std::time::Instant::now();
        let result = tokio::time::timeout($self.0.timeout, Box::pin(client.$method($req))).await;
        tracing::trace!(
            op = $op,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "CRI call"
        );
        if let Some(metrics) = $self.0.metrics.get() {
            metrics
                .runtime
                .observe($op, started.elapsed(), matches!(result, Ok(Ok(_))));
        }
        match result {
            Err(_) => Err(CriError::Timeout {
                op: $op,
                timeout: $self.0.timeout,
            }),
            Ok(Err(status)) => Err(CriError::Status {
                op: $op,
                code: status.code(),
                message: status.message().to_string(),
            }),
            Ok(Ok(resp)) => Ok(resp.into_inner()),
        }
    }};
}

impl CriClient {
    /// `image_endpoint` defaults to the runtime endpoint, as upstream.
    pub fn new(
        runtime_endpoint: &str,
        image_endpoint: Option<&str>,
        timeout: Duration,
    ) -> Result<Self, CriError> {
        let runtime_channel = lazy_channel(runtime_endpoint)?;
        let image_channel = match image_endpoint {
            Some(ep) if !ep.is_empty() && ep != runtime_endpoint => lazy_channel(ep)?,
            _ => runtime_channel.clone(),
        };
        Ok(CriClient(Arc::new(Shared {
            runtime: RuntimeServiceClient::new(runtime_channel),
            image: ImageServiceClient::new(image_channel),
            timeout,
            metrics: Arc::new(OnceLock::new()),
        })))
    }

    /// Record every call of this client and its clones in `metrics` (first call wins).
    pub fn set_metrics(&self, metrics: KubeletMetrics) {
        let _ = self.0.metrics.set(metrics);
    }

    /// The metrics set with [`Self::set_metrics`], if any.
    pub fn metrics(&self) -> Option<&KubeletMetrics> {
        self.0.metrics.get()
    }

    /// The same client with another per-call timeout (pulls and stops take longer).
    pub fn with_timeout(&self, timeout: Duration) -> Self {
        CriClient(Arc::new(Shared {
            runtime: self.0.runtime.clone(),
            image: self.0.image.clone(),
            timeout,
            metrics: Arc::clone(&self.0.metrics),
        }))
    }

    pub async fn version(&self) -> Result<cri::VersionResponse, CriError> {
        call!(
            self,
            runtime,
            version,
            "Version",
            cri::VersionRequest {
                version: "v1".into()
            }
        )
    }

    pub async fn status(&self) -> Result<cri::StatusResponse, CriError> {
        call!(
            self,
            runtime,
            status,
            "Status",
            cri::StatusRequest { verbose: false }
        )
    }

    /// RunPodSandbox with the RuntimeClass's handler (empty: the runtime's default).
    pub async fn run_pod_sandbox(
        &self,
        config: cri::PodSandboxConfig,
        runtime_handler: &str,
    ) -> Result<String, CriError> {
        let req = cri::RunPodSandboxRequest {
            config: Some(config),
            runtime_handler: runtime_handler.to_string(),
        };
        call!(self, runtime, run_pod_sandbox, "RunPodSandbox", req).map(|r| r.pod_sandbox_id)
    }

    pub async fn stop_pod_sandbox(&self, id: &str) -> Result<(), CriError> {
        let req = cri::StopPodSandboxRequest {
            pod_sandbox_id: id.into(),
        };
        call!(self, runtime, stop_pod_sandbox, "StopPodSandbox", req).map(|_| ())
    }

    pub async fn remove_pod_sandbox(&self, id: &str) -> Result<(), CriError> {
        let req = cri::RemovePodSandboxRequest {
            pod_sandbox_id: id.into(),
        };
        call!(self, runtime, remove_pod_sandbox, "RemovePodSandbox", req).map(|_| ())
    }

    pub async fn pod_sandbox_status(&self, id: &str) -> Result<cri::PodSandboxStatus, CriError> {
        let req = cri::PodSandboxStatusRequest {
            pod_sandbox_id: id.into(),
            verbose: false,
        };
        let resp = call!(self, runtime, pod_sandbox_status, "PodSandboxStatus", req)?;
        resp.status.ok_or(CriError::Status {
            op: "PodSandboxStatus",
            code: tonic::Code::Internal,
            message: format!("no status returned for sandbox {id}"),
        })
    }

    pub async fn list_pod_sandbox(
        &self,
        filter: Option<cri::PodSandboxFilter>,
    ) -> Result<Vec<cri::PodSandbox>, CriError> {
        let req = cri::ListPodSandboxRequest { filter };
        call!(self, runtime, list_pod_sandbox, "ListPodSandbox", req).map(|r| r.items)
    }

    pub async fn create_container(
        &self,
        sandbox_id: &str,
        config: cri::ContainerConfig,
        sandbox_config: cri::PodSandboxConfig,
    ) -> Result<String, CriError> {
        let req = cri::CreateContainerRequest {
            pod_sandbox_id: sandbox_id.into(),
            config: Some(config),
            sandbox_config: Some(sandbox_config),
        };
        call!(self, runtime, create_container, "CreateContainer", req).map(|r| r.container_id)
    }

    pub async fn start_container(&self, id: &str) -> Result<(), CriError> {
        let req = cri::StartContainerRequest {
            container_id: id.into(),
        };
        call!(self, runtime, start_container, "StartContainer", req).map(|_| ())
    }

    /// Stop with a grace period: the runtime sends the stop signal, then SIGKILL after
    /// `grace_seconds`. The call itself may take that long, so the timeout grows with it.
    pub async fn stop_container(&self, id: &str, grace_seconds: i64) -> Result<(), CriError> {
        let grace = grace_seconds.max(0);
        let client = self.with_timeout(self.0.timeout + Duration::from_secs(grace as u64));
        let req = cri::StopContainerRequest {
            container_id: id.into(),
            timeout: grace,
        };
        call!(client, runtime, stop_container, "StopContainer", req).map(|_| ())
    }

    pub async fn remove_container(&self, id: &str) -> Result<(), CriError> {
        let req = cri::RemoveContainerRequest {
            container_id: id.into(),
        };
        call!(self, runtime, remove_container, "RemoveContainer", req).map(|_| ())
    }

    pub async fn list_containers(
        &self,
        filter: Option<cri::ContainerFilter>,
    ) -> Result<Vec<cri::Container>, CriError> {
        let req = cri::ListContainersRequest { filter };
        call!(self, runtime, list_containers, "ListContainers", req).map(|r| r.containers)
    }

    pub async fn container_status(&self, id: &str) -> Result<cri::ContainerStatus, CriError> {
        let req = cri::ContainerStatusRequest {
            container_id: id.into(),
            verbose: false,
        };
        let resp = call!(self, runtime, container_status, "ContainerStatus", req)?;
        resp.status.ok_or(CriError::Status {
            op: "ContainerStatus",
            code: tonic::Code::Internal,
            message: format!("no status returned for container {id}"),
        })
    }

    /// ContainerStatus with the runtime's verbose info, and the host pid of the
    /// container's init process when the runtime gives one (containerd: `pid` in the
    /// "info" JSON; 0 or absent once the container stopped).
    pub async fn container_status_with_pid(
        &self,
        id: &str,
    ) -> Result<(cri::ContainerStatus, Option<u32>), CriError> {
        let req = cri::ContainerStatusRequest {
            container_id: id.into(),
            verbose: true,
        };
        let resp = call!(self, runtime, container_status, "ContainerStatus", req)?;
        let pid = resp.info.get("info").and_then(|info| pid_from_info(info));
        let status = resp.status.ok_or(CriError::Status {
            op: "ContainerStatus",
            code: tonic::Code::Internal,
            message: format!("no status returned for container {id}"),
        })?;
        Ok((status, pid))
    }

    /// The runtime's verbose ContainerStatus info (containerd: "info", a JSON document
    /// with the CRI config it was created from and the OCI spec).
    pub async fn container_info(
        &self,
        id: &str,
    ) -> Result<std::collections::HashMap<String, String>, CriError> {
        let req = cri::ContainerStatusRequest {
            container_id: id.into(),
            verbose: true,
        };
        call!(self, runtime, container_status, "ContainerStatus", req).map(|r| r.info)
    }

    /// The runtime's verbose PodSandboxStatus info (containerd: "info", a JSON document
    /// with the CRI config, the runtime handler and the OCI spec).
    pub async fn pod_sandbox_info(
        &self,
        id: &str,
    ) -> Result<std::collections::HashMap<String, String>, CriError> {
        let req = cri::PodSandboxStatusRequest {
            pod_sandbox_id: id.into(),
            verbose: true,
        };
        call!(self, runtime, pod_sandbox_status, "PodSandboxStatus", req).map(|r| r.info)
    }

    pub async fn exec_sync(
        &self,
        id: &str,
        cmd: Vec<String>,
        timeout_seconds: i64,
    ) -> Result<cri::ExecSyncResponse, CriError> {
        let client =
            self.with_timeout(self.0.timeout + Duration::from_secs(timeout_seconds.max(0) as u64));
        let req = cri::ExecSyncRequest {
            container_id: id.into(),
            cmd,
            timeout: timeout_seconds,
        };
        call!(client, runtime, exec_sync, "ExecSync", req)
    }

    pub async fn image_status(&self, image: &str) -> Result<Option<cri::Image>, CriError> {
        let req = cri::ImageStatusRequest {
            image: Some(cri::ImageSpec {
                image: image.into(),
                ..Default::default()
            }),
            verbose: false,
        };
        call!(self, image, image_status, "ImageStatus", req).map(|r| r.image)
    }

    /// Pulls can be slow: the caller passes a client made with [`Self::with_timeout`].
    pub async fn pull_image(
        &self,
        image: &str,
        sandbox_config: Option<cri::PodSandboxConfig>,
    ) -> Result<String, CriError> {
        let req = cri::PullImageRequest {
            image: Some(cri::ImageSpec {
                image: image.into(),
                ..Default::default()
            }),
            auth: None,
            sandbox_config,
        };
        call!(self, image, pull_image, "PullImage", req).map(|r| r.image_ref)
    }

    pub async fn list_images(&self) -> Result<Vec<cri::Image>, CriError> {
        call!(
            self,
            image,
            list_images,
            "ListImages",
            cri::ListImagesRequest { filter: None }
        )
        .map(|r| r.images)
    }

    // Node API: streaming URLs and stats.

    pub async fn exec(&self, req: cri::ExecRequest) -> Result<String, CriError> {
        call!(self, runtime, exec, "Exec", req).map(|r| r.url)
    }

    pub async fn attach(&self, req: cri::AttachRequest) -> Result<String, CriError> {
        call!(self, runtime, attach, "Attach", req).map(|r| r.url)
    }

    pub async fn port_forward(
        &self,
        pod_sandbox_id: &str,
        ports: Vec<i32>,
    ) -> Result<String, CriError> {
        let req = cri::PortForwardRequest {
            pod_sandbox_id: pod_sandbox_id.into(),
            port: ports,
        };
        call!(self, runtime, port_forward, "PortForward", req).map(|r| r.url)
    }

    pub async fn list_container_stats(
        &self,
        filter: Option<cri::ContainerStatsFilter>,
    ) -> Result<Vec<cri::ContainerStats>, CriError> {
        let req = cri::ListContainerStatsRequest { filter };
        call!(
            self,
            runtime,
            list_container_stats,
            "ListContainerStats",
            req
        )
        .map(|r| r.stats)
    }

    pub async fn list_pod_sandbox_stats(
        &self,
        filter: Option<cri::PodSandboxStatsFilter>,
    ) -> Result<Vec<cri::PodSandboxStats>, CriError> {
        let req = cri::ListPodSandboxStatsRequest { filter };
        call!(
            self,
            runtime,
            list_pod_sandbox_stats,
            "ListPodSandboxStats",
            req
        )
        .map(|r| r.stats)
    }

    pub async fn image_fs_info(&self) -> Result<cri::ImageFsInfoResponse, CriError> {
        call!(
            self,
            image,
            image_fs_info,
            "ImageFsInfo",
            cri::ImageFsInfoRequest {}
        )
    }

    // Housekeeping: image GC, log rotation.

    /// Remove an image by ID or reference (image GC).
    pub async fn remove_image(&self, image: &str) -> Result<(), CriError> {
        let req = cri::RemoveImageRequest {
            image: Some(cri::ImageSpec {
                image: image.into(),
                ..Default::default()
            }),
        };
        call!(self, image, remove_image, "RemoveImage", req).map(|_| ())
    }

    /// Ask the runtime to reopen a container's log file after it was renamed (rotation).
    pub async fn reopen_container_log(&self, id: &str) -> Result<(), CriError> {
        let req = cri::ReopenContainerLogRequest {
            container_id: id.into(),
        };
        call!(
            self,
            runtime,
            reopen_container_log,
            "ReopenContainerLog",
            req
        )
        .map(|_| ())
    }

    /// Status with the runtime's verbose info (containerd puts its CRI config, with the
    /// sandbox image, under "config").
    /// The runtime's own configuration (its cgroup driver); containerd before 2.0 answers
    /// `Unimplemented`.
    pub async fn runtime_config(&self) -> Result<cri::RuntimeConfigResponse, CriError> {
        call!(
            self,
            runtime,
            runtime_config,
            "RuntimeConfig",
            cri::RuntimeConfigRequest {}
        )
    }

    pub async fn status_verbose(&self) -> Result<cri::StatusResponse, CriError> {
        call!(
            self,
            runtime,
            status,
            "Status",
            cri::StatusRequest { verbose: true }
        )
    }
}

/// The `pid` field of a runtime's verbose container info (a JSON object; other fields,
/// among them the whole OCI spec, are skipped).
fn pid_from_info(info: &str) -> Option<u32> {
    #[derive(serde::Deserialize)]
    struct Info {
        #[serde(default)]
        pid: Option<u32>,
    }
    serde_json::from_str::<Info>(info)
        .ok()?
        .pid
        .filter(|p| *p > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pid_in_verbose_info() {
        let info = r#"{"sandboxID":"abc","pid":4242,"removing":false,"runtimeSpec":{"ociVersion":"1.0.2","process":{"args":["sh"]}}}"#;
        assert_eq!(pid_from_info(info), Some(4242));
        assert_eq!(pid_from_info(r#"{"pid":0}"#), None);
        assert_eq!(pid_from_info(r#"{"sandboxID":"abc"}"#), None);
        assert_eq!(pid_from_info("not json"), None);
    }
}
