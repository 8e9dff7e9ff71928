//! Support for cluster-mode tests: a test API server in the test process, a kube client
//! and kubectl pointed at it, and waits on API objects. Used as
//! `#[path = "support/cluster.rs"] mod cluster_support;` next to `mod support;`.
#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Node as ApiNode, Pod};
use kube::api::{Api, PostParams};
use test_apiserver::{Options, Server};

pub const API_DEADLINE: Duration = Duration::from_secs(90);

/// Start a test API server (plain HTTP, admin token kubeconfig).
pub async fn api_server() -> Server {
    api_server_with(Options::default()).await
}

pub async fn api_server_with(opts: Options) -> Server {
    Server::start(opts).await.expect("test API server starts")
}

/// A kube client with the server's admin kubeconfig.
pub async fn client(server: &Server) -> kube::Client {
    let kc = kube::config::Kubeconfig::read_from(server.kubeconfig_path()).expect("kubeconfig");
    let config = kube::Config::from_custom_kubeconfig(kc, &Default::default())
        .await
        .expect("client config");
    kube::Client::try_from(config).expect("client")
}

/// `--kubeconfig=<path>` for the kubelet.
pub fn kubeconfig_flag(server: &Server) -> String {
    format!("--kubeconfig={}", server.kubeconfig_path().display())
}

/// Run kubectl against `kubeconfig`; returns (success, stdout, stderr).
pub fn kubectl(kubeconfig: &Path, args: &[&str]) -> (bool, String, String) {
    let out = Command::new("kubectl")
        .arg(format!("--kubeconfig={}", kubeconfig.display()))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("kubectl runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `kubectl ... -w` in the background, its output collected until `stop`.
pub struct KubectlWatch {
    child: std::process::Child,
    out: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl KubectlWatch {
    pub fn start(kubeconfig: &Path, args: &[&str]) -> KubectlWatch {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("watch.out");
        let file = std::fs::File::create(&out).unwrap();
        let child = Command::new("kubectl")
            .arg(format!("--kubeconfig={}", kubeconfig.display()))
            .args(args)
            .stdin(Stdio::null())
            .stdout(file)
            .stderr(Stdio::null())
            .spawn()
            .expect("kubectl -w runs");
        KubectlWatch {
            child,
            out,
            _dir: dir,
        }
    }

    pub fn output(&self) -> String {
        std::fs::read_to_string(&self.out).unwrap_or_default()
    }

    pub fn stop(mut self) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.output()
    }
}

impl Drop for KubectlWatch {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Poll `check` every 200 ms until it gives Some, or panic with `what` (and `context()`).
pub async fn wait_for<T, F, Fut>(
    what: &str,
    deadline: Duration,
    context: impl Fn() -> String,
    mut check: F,
) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = check().await {
            return v;
        }
        if start.elapsed() > deadline {
            panic!(
                "timed out after {deadline:?} waiting for: {what}\n{}",
                context()
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

pub async fn get_node(client: &kube::Client, name: &str) -> Option<ApiNode> {
    Api::<ApiNode>::all(client.clone())
        .get_opt(name)
        .await
        .ok()
        .flatten()
}

/// The Ready condition's (status, reason, message).
pub fn ready_condition(node: &ApiNode) -> Option<(String, String, String)> {
    node.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "Ready")
        .map(|c| {
            (
                c.status.clone(),
                c.reason.clone().unwrap_or_default(),
                c.message.clone().unwrap_or_default(),
            )
        })
}

pub async fn get_pod(client: &kube::Client, ns: &str, name: &str) -> Option<Pod> {
    Api::<Pod>::namespaced(client.clone(), ns)
        .get_opt(name)
        .await
        .ok()
        .flatten()
}

/// Create a pod bound to `node` (as the scheduler would have) from JSON.
pub async fn create_bound_pod(
    client: &kube::Client,
    node: &str,
    mut pod: serde_json::Value,
) -> Pod {
    pod["spec"]["nodeName"] = serde_json::json!(node);
    let ns = pod["metadata"]["namespace"]
        .as_str()
        .unwrap_or("default")
        .to_string();
    let pod: Pod = serde_json::from_value(pod).expect("pod JSON");
    Api::<Pod>::namespaced(client.clone(), &ns)
        .create(&PostParams::default(), &pod)
        .await
        .expect("create pod")
}

pub fn phase(pod: &Pod) -> String {
    pod.status
        .as_ref()
        .and_then(|s| s.phase.clone())
        .unwrap_or_default()
}

/// Names of the pod's containers that are running.
pub fn running_containers(pod: &Pod) -> Vec<String> {
    pod.status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .into_iter()
        .flatten()
        .filter(|c| c.state.as_ref().is_some_and(|s| s.running.is_some()))
        .map(|c| c.name.clone())
        .collect()
}

/// The waiting reason of container `name`, if it is waiting.
pub fn waiting_reason(pod: &Pod, name: &str) -> Option<(String, String)> {
    pod.status
        .as_ref()?
        .container_statuses
        .as_ref()?
        .iter()
        .find(|c| c.name == name)?
        .state
        .as_ref()?
        .waiting
        .as_ref()
        .map(|w| {
            (
                w.reason.clone().unwrap_or_default(),
                w.message.clone().unwrap_or_default(),
            )
        })
}

/// Events of pod `name`: (reason, message) in creation order.
pub async fn pod_events(client: &kube::Client, ns: &str, name: &str) -> Vec<(String, String)> {
    use k8s_openapi::api::core::v1::Event;
    let lp = kube::api::ListParams::default().fields(&format!("involvedObject.name={name}"));
    Api::<Event>::namespaced(client.clone(), ns)
        .list(&lp)
        .await
        .map(|l| {
            l.items
                .into_iter()
                .map(|e| (e.reason.unwrap_or_default(), e.message.unwrap_or_default()))
                .collect()
        })
        .unwrap_or_default()
}

/// The content of a file inside a volume of an API pod, as the kubelet wrote it.
pub fn volume_file(
    root_dir: &Path,
    uid: &str,
    plugin: &str,
    volume: &str,
    file: &str,
) -> Option<String> {
    std::fs::read_to_string(
        root_dir
            .join("pods")
            .join(uid)
            .join("volumes")
            .join(plugin)
            .join(volume)
            .join(file),
    )
    .ok()
}

/// The current log of container `container` of pod `ns/name` (uid) under `logs_dir`.
pub fn container_log(logs_dir: &Path, ns: &str, name: &str, uid: &str, container: &str) -> String {
    let dir = logs_dir.join(format!("{ns}_{name}_{uid}")).join(container);
    let mut out = String::new();
    if let Ok(rd) = std::fs::read_dir(&dir) {
        let mut files: Vec<_> = rd.flatten().map(|e| e.path()).collect();
        files.sort();
        for f in files {
            out.push_str(&std::fs::read_to_string(f).unwrap_or_default());
        }
    }
    out
}

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Flags that serve the node API on 127.0.0.1:`port` (the node's InternalIP) and trust
/// the API server's kubelet-client certificate, so `kubectl logs/exec` through the API
/// server reach the kubelet.
pub fn node_api_flags(server: &Server, dir: &Path, port: u16) -> Vec<String> {
    let ca = dir.join("apiserver-ca.crt");
    std::fs::write(&ca, server.ca_pem()).expect("write the API server CA");
    vec![
        kubeconfig_flag(server),
        "--enable-server=true".into(),
        "--address=127.0.0.1".into(),
        "--node-ip=127.0.0.1".into(),
        format!("--port={port}"),
        format!("--cert-dir={}", dir.join("pki").display()),
        format!("--client-ca-file={}", ca.display()),
    ]
}

/// Wait until Node `name` is Ready.
pub async fn wait_node_ready(client: &kube::Client, name: &str, logs: impl Fn() -> String) {
    wait_for("node Ready", API_DEADLINE, logs, || async {
        let n = get_node(client, name).await?;
        (ready_condition(&n)?.0 == "True").then_some(())
    })
    .await;
}

/// A kubelet (node `test`) joined to `server` with `extra` flags, once its Node is Ready.
pub async fn ready_node(
    test: &str,
    server: &Server,
    client: &kube::Client,
    extra: &[&str],
) -> crate::support::Node {
    let mut node = crate::support::Node::new(test);
    let mut flags = vec![kubeconfig_flag(server)];
    flags.extend(extra.iter().map(|s| s.to_string()));
    node.start_with(&flags.iter().map(String::as_str).collect::<Vec<_>>());
    let name = node.name.clone();
    wait_node_ready(client, &name, || node.logs()).await;
    node
}

/// A test API server, its admin client, and a kubelet (node `test`) joined and Ready.
pub async fn cluster_with_node(test: &str) -> (Server, kube::Client, crate::support::Node) {
    let server = api_server().await;
    let client = client(&server).await;
    let node = ready_node(test, &server, &client, &[]).await;
    (server, client, node)
}

/// A pod `default/<name>` with one busybox container `main` sleeping, stopped within 1 s.
pub fn sleeper(name: &str) -> serde_json::Value {
    serde_json::json!({
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"terminationGracePeriodSeconds": 1, "containers": [
            {"name": "main", "image": "busybox", "command": ["sleep", "3600"]}
        ]}
    })
}

/// Wait until pod `default/<name>` is in `phase`; returns it.
pub async fn wait_phase(
    client: &kube::Client,
    name: &str,
    phase_wanted: &str,
    logs: impl Fn() -> String,
) -> Pod {
    wait_for(
        &format!("pod {name} {phase_wanted}"),
        API_DEADLINE,
        logs,
        || async {
            let p = get_pod(client, "default", name).await?;
            (phase(&p) == phase_wanted).then_some(p)
        },
    )
    .await
}
