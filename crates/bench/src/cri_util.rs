//! CRI helpers for the bench: listing by node label, waiting for states, the verbose
//! ContainerStatus that carries a container's pid, and purging what the bench created.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use hyper_util::rt::TokioIo;
use k8s_cri::v1 as cri;
use k8s_cri::v1::runtime_service_client::RuntimeServiceClient;
use kubelet_core::cm::CgroupLayout;
use kubelet_core::runtime::cri::{CriClient, socket_path};
use kubelet_core::runtime::labels;
use tokio::net::UnixStream;
use tonic::transport::{Channel, Endpoint, Uri};

/// How often state is polled while waiting for the kubelet (or the floor) to get somewhere.
pub const POLL: Duration = Duration::from_millis(25);

pub fn client(endpoint: &str) -> anyhow::Result<CriClient> {
    CriClient::new(endpoint, None, Duration::from_secs(60)).context("CRI client")
}

pub fn selector(node: &str) -> HashMap<String, String> {
    HashMap::from([(labels::MANAGED_BY_NODE.to_string(), node.to_string())])
}

pub async fn containers(
    cri: &CriClient,
    sel: HashMap<String, String>,
) -> anyhow::Result<Vec<cri::Container>> {
    Ok(cri
        .list_containers(Some(cri::ContainerFilter {
            label_selector: sel,
            ..Default::default()
        }))
        .await?)
}

pub async fn sandboxes(
    cri: &CriClient,
    sel: HashMap<String, String>,
) -> anyhow::Result<Vec<cri::PodSandbox>> {
    Ok(cri
        .list_pod_sandbox(Some(cri::PodSandboxFilter {
            label_selector: sel,
            ..Default::default()
        }))
        .await?)
}

pub fn is_running(c: &cri::Container) -> bool {
    c.state == cri::ContainerState::ContainerRunning as i32
}

pub fn pod_name(labels_: &HashMap<String, String>) -> &str {
    labels_
        .get(labels::POD_NAME)
        .map(String::as_str)
        .unwrap_or("")
}

/// Poll until every pod in `pods` (by pod name) has a RUNNING container; the time each
/// was first seen running, from `t0`.
pub async fn wait_all_running(
    cri: &CriClient,
    node: &str,
    pods: &[String],
    t0: Instant,
    deadline: Duration,
) -> anyhow::Result<HashMap<String, Duration>> {
    let wanted: HashSet<&str> = pods.iter().map(String::as_str).collect();
    let mut seen: HashMap<String, Duration> = HashMap::new();
    loop {
        let list = containers(cri, selector(node)).await?;
        let at = t0.elapsed();
        for c in list.iter().filter(|c| is_running(c)) {
            let name = pod_name(&c.labels);
            if wanted.contains(name) && !seen.contains_key(name) {
                seen.insert(name.to_string(), at);
            }
        }
        if seen.len() == wanted.len() {
            return Ok(seen);
        }
        if at > deadline {
            bail!(
                "only {} of {} pods running after {:?}",
                seen.len(),
                wanted.len(),
                deadline
            );
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Poll until no sandbox matches `sel`; the time from `t0`.
pub async fn wait_no_sandboxes(
    cri: &CriClient,
    sel: HashMap<String, String>,
    t0: Instant,
    deadline: Duration,
) -> anyhow::Result<Duration> {
    loop {
        let left = sandboxes(cri, sel.clone()).await?.len();
        let at = t0.elapsed();
        if left == 0 {
            return Ok(at);
        }
        if at > deadline {
            bail!("{left} sandboxes still there after {deadline:?}");
        }
        tokio::time::sleep(POLL).await;
    }
}

/// A second, raw client for what the kubelet's client does not expose: the verbose
/// ContainerStatus, whose `info` JSON holds the container's pid.
#[derive(Clone)]
pub struct Raw {
    rt: RuntimeServiceClient<Channel>,
}

impl Raw {
    pub fn new(endpoint: &str) -> anyhow::Result<Raw> {
        let path = socket_path(endpoint)?;
        let channel =
            Endpoint::try_from("http://[::]:50051")?
                .connect_timeout(Duration::from_secs(2))
                .connect_with_connector_lazy(tower::service_fn(move |_: Uri| {
                    let path = path.clone();
                    async move {
                        Ok::<_, std::io::Error>(TokioIo::new(UnixStream::connect(path).await?))
                    }
                }));
        Ok(Raw {
            rt: RuntimeServiceClient::new(channel),
        })
    }

    pub async fn container_pid(&self, id: &str) -> anyhow::Result<i32> {
        let resp = self
            .rt
            .clone()
            .container_status(cri::ContainerStatusRequest {
                container_id: id.into(),
                verbose: true,
            })
            .await?
            .into_inner();
        let info = resp
            .info
            .get("info")
            .ok_or_else(|| anyhow!("no verbose info for container {id}"))?;
        let v: serde_json::Value = serde_json::from_str(info)?;
        let pid = v["pid"]
            .as_i64()
            .filter(|p| *p > 0)
            .ok_or_else(|| anyhow!("no pid in the verbose status of {id}"))?;
        Ok(pid as i32)
    }
}

/// Stop and remove every sandbox (and container) whose node label satisfies `owned`, and
/// the pod cgroups of their UIDs. Returns how many sandboxes were removed.
pub async fn purge(cri: &CriClient, owned: impl Fn(&str) -> bool) -> usize {
    let owned_labels = |l: &HashMap<String, String>| {
        l.get(labels::MANAGED_BY_NODE)
            .is_some_and(|node| owned(node))
    };
    let Ok(all) = cri.list_pod_sandbox(None).await else {
        return 0;
    };
    let mine: Vec<_> = all
        .into_iter()
        .filter(|s| owned_labels(&s.labels))
        .collect();
    let n = mine.len();
    futures::future::join_all(mine.iter().map(|sb| async move {
        let _ = cri.stop_pod_sandbox(&sb.id).await;
        let _ = cri.remove_pod_sandbox(&sb.id).await;
    }))
    .await;
    if let Ok(list) = cri.list_containers(None).await {
        for c in list.iter().filter(|c| owned_labels(&c.labels)) {
            let _ = cri.stop_container(&c.id, 0).await;
            let _ = cri.remove_container(&c.id).await;
        }
    }
    let cgroups = default_cgroups();
    for sb in &mine {
        if let Some(uid) = sb.labels.get(labels::POD_UID) {
            cgroups.remove_pod_cgroups(uid);
        }
    }
    n
}

/// The kubelet's default cgroup layout (cgroupfs, per-QoS, root "/"), which the bench's
/// kubelets and floor pods use.
pub fn default_cgroups() -> CgroupLayout {
    CgroupLayout::detect(true, "", false)
}
