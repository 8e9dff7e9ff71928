//! Shared support for integration tests: the real kubelet binary against the real
//! containerd that `scripts/test.sh` starts (CONTAINER_RUNTIME_ENDPOINT). Each test gets
//! its own node name, root dir and manifest dir, so tests can run in parallel on one
//! containerd: the kubelet only lists and touches objects labelled with its node name.
#![allow(dead_code)]

pub mod http;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use k8s_cri::v1 as cri;
use kubelet_core::runtime::cri::CriClient;
use kubelet_core::runtime::labels;

pub const DEADLINE: Duration = Duration::from_secs(60);

/// How much slower than the host this machine runs the tests:
/// `KUBELET_TEST_TIMEOUT_SCALE` (e.g. 4 in scripts/guest.sh's emulated guest), 1 unless
/// set. Every wait of this module is stretched by it.
pub fn timeout_scale() -> f64 {
    std::env::var("KUBELET_TEST_TIMEOUT_SCALE")
        .ok()
        .and_then(|v| v.parse::<f64>().ok())
        .filter(|v| *v >= 1.0)
        .unwrap_or(1.0)
}

/// `d` stretched by [`timeout_scale`].
pub fn scaled(d: Duration) -> Duration {
    d.mul_f64(timeout_scale())
}

/// The cgroup driver test kubelets use: `KUBELET_TEST_CGROUP_DRIVER` (`systemd` in the
/// guest's systemd run; containerd's SystemdCgroup must match), else `cgroupfs`.
pub fn cgroup_driver() -> String {
    std::env::var("KUBELET_TEST_CGROUP_DRIVER").unwrap_or_else(|_| "cgroupfs".into())
}

pub fn endpoint() -> String {
    std::env::var("CONTAINER_RUNTIME_ENDPOINT").unwrap_or_else(|_| {
        panic!(
            "CONTAINER_RUNTIME_ENDPOINT is not set: integration tests need the private containerd; \
             run them with `make test` (or `eval $(scripts/node-env.sh env)` after `make env`)"
        )
    })
}

pub fn cri() -> CriClient {
    CriClient::new(&endpoint(), None, Duration::from_secs(30)).expect("CRI client")
}

/// Poll `check` until it returns Some, or panic with `what` after `deadline`.
pub async fn eventually<T, F, Fut>(what: &str, deadline: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = scaled(deadline);
    let start = Instant::now();
    loop {
        if let Some(v) = check().await {
            return v;
        }
        if start.elapsed() > deadline {
            panic!("timed out after {deadline:?} waiting for: {what}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Tests must not depend on how full this machine's disk or memory is: unless a test sets
/// them, eviction thresholds sit far below any real state and image GC is off (the shared
/// containerd's images belong to every test). Returns `extra` with those defaults before it.
pub fn with_safe_defaults(extra: &str) -> String {
    let mut defaults = String::new();
    if !extra.contains("evictionHard:") {
        defaults.push_str(
            "evictionHard: {memory.available: \"1Mi\", nodefs.available: \"1%\", nodefs.inodesFree: \"1%\", imagefs.available: \"1%\"}\n",
        );
    }
    if !extra.contains("imageGCHighThresholdPercent:") {
        defaults.push_str("imageGCHighThresholdPercent: 100\nimageGCLowThresholdPercent: 99\n");
    }
    // This machine is cgroup v1, which upstream (and kubelet-rs) refuse by default.
    if !extra.contains("failCgroupV1:") {
        defaults.push_str("failCgroupV1: false\n");
    }
    if !extra.contains("cgroupDriver:") && cgroup_driver() != "cgroupfs" {
        defaults.push_str(&format!("cgroupDriver: {}\n", cgroup_driver()));
    }
    format!("{defaults}{extra}")
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// One test node: directories, config, and the kubelet process when running.
pub struct Node {
    pub name: String,
    pub dir: tempfile::TempDir,
    pub manifests: PathBuf,
    pub root_dir: PathBuf,
    pub logs_dir: PathBuf,
    pub config: PathBuf,
    /// The CRI endpoint written into the config (the shared containerd by default).
    pub runtime_endpoint: String,
    /// Environment variables the kubelet is started with (besides the test's own).
    pub env: Vec<(String, String)>,
    child: Option<Child>,
    run: u32,
}

impl Node {
    pub fn new(test: &str) -> Node {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let name = format!("it-{}-{}-{n}", test.replace('_', "-"), std::process::id());
        let dir = tempfile::tempdir().expect("tempdir");
        let manifests = dir.path().join("manifests");
        let root_dir = dir.path().join("root");
        let logs_dir = dir.path().join("pod-logs");
        std::fs::create_dir_all(&manifests).unwrap();
        let config = dir.path().join("kubelet.yaml");
        let node = Node {
            name,
            manifests,
            root_dir,
            logs_dir,
            config,
            dir,
            runtime_endpoint: endpoint(),
            env: Vec::new(),
            child: None,
            run: 0,
        };
        node.write_config("");
        node
    }

    /// The config file: static pods from the manifest dir, private dirs, fast checks.
    pub fn write_config(&self, extra: &str) {
        let extra = with_safe_defaults(extra);
        let text = format!(
            "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n\
             staticPodPath: {}\npodLogsDir: {}\ncontainerRuntimeEndpoint: {}\n\
             fileCheckFrequency: 5s\nenableServer: false\nhealthzPort: 0\nreadOnlyPort: 0\n{extra}",
            self.manifests.display(),
            self.logs_dir.display(),
            self.runtime_endpoint
        );
        std::fs::write(&self.config, text).unwrap();
    }

    pub fn args(&self) -> Vec<String> {
        vec![
            format!("--config={}", self.config.display()),
            format!("--root-dir={}", self.root_dir.display()),
            format!("--hostname-override={}", self.name),
            "-v=4".into(),
        ]
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join(format!("kubelet-{}.log", self.run))
    }

    pub fn start(&mut self) {
        self.start_with(&[]);
    }

    pub fn start_with(&mut self, extra: &[&str]) {
        assert!(self.child.is_none(), "kubelet already running");
        self.run += 1;
        let log = std::fs::File::create(self.log_path()).unwrap();
        let mut args = self.args();
        args.extend(extra.iter().map(|s| s.to_string()));
        let child = Command::new(env!("CARGO_BIN_EXE_kubelet"))
            .args(&args)
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .stdin(Stdio::null())
            .spawn()
            .expect("spawn kubelet");
        self.child = Some(child);
    }

    /// SIGTERM the kubelet and wait for it; returns how long it took to exit.
    pub fn stop(&mut self) -> Duration {
        let mut child = self.child.take().expect("kubelet not running");
        let started = Instant::now();
        // SAFETY: plain kill(2) on our own child's pid.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                assert!(
                    status.success(),
                    "kubelet exited with {status}; log:\n{}",
                    self.logs()
                );
                return started.elapsed();
            }
            if started.elapsed() > scaled(Duration::from_secs(20)) {
                let _ = child.kill();
                panic!("kubelet did not exit within 20s (scaled) of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The running kubelet's process ID.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Wait up to `deadline` for the kubelet to exit on its own; its exit status.
    pub fn wait_exit(&mut self, deadline: Duration) -> Option<std::process::ExitStatus> {
        let deadline = scaled(deadline);
        let started = Instant::now();
        while started.elapsed() < deadline {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                self.child = None;
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }

    pub fn is_running(&mut self) -> bool {
        matches!(self.child.as_mut().map(|c| c.try_wait()), Some(Ok(None)))
    }

    pub fn logs(&self) -> String {
        (1..=self.run)
            .map(|r| {
                std::fs::read_to_string(self.dir.path().join(format!("kubelet-{r}.log")))
                    .unwrap_or_default()
            })
            .collect::<Vec<_>>()
            .join("\n--- restart ---\n")
    }

    pub fn write_manifest(&self, file: &str, text: &str) {
        // Write then rename, as an editor or config management would.
        let tmp = self.manifests.join(format!(".{file}.tmp"));
        std::fs::write(&tmp, text).unwrap();
        std::fs::rename(&tmp, self.manifests.join(file)).unwrap();
    }

    pub fn remove_manifest(&self, file: &str) {
        std::fs::remove_file(self.manifests.join(file)).unwrap();
    }

    /// The static pod name this node gives a manifest named `name`.
    pub fn pod_name(&self, name: &str) -> String {
        format!("{name}-{}", self.name)
    }

    fn selector(&self) -> HashMap<String, String> {
        HashMap::from([(labels::MANAGED_BY_NODE.to_string(), self.name.clone())])
    }

    pub async fn sandboxes(&self) -> Vec<cri::PodSandbox> {
        cri()
            .list_pod_sandbox(Some(cri::PodSandboxFilter {
                label_selector: self.selector(),
                ..Default::default()
            }))
            .await
            .expect("ListPodSandbox")
    }

    pub async fn containers(&self) -> Vec<cri::Container> {
        cri()
            .list_containers(Some(cri::ContainerFilter {
                label_selector: self.selector(),
                ..Default::default()
            }))
            .await
            .expect("ListContainers")
    }

    /// Running containers of pod `pod_name` by container name.
    pub async fn running(&self, pod_name: &str) -> HashMap<String, cri::Container> {
        self.containers()
            .await
            .into_iter()
            .filter(|c| c.labels.get(labels::POD_NAME).map(String::as_str) == Some(pod_name))
            .filter(|c| c.state == cri::ContainerState::ContainerRunning as i32)
            .map(|c| (c.labels[labels::CONTAINER_NAME].clone(), c))
            .collect()
    }

    /// Wait until pod `pod_name` has all `names` running; returns them.
    pub async fn wait_running(
        &self,
        pod_name: &str,
        names: &[&str],
    ) -> HashMap<String, cri::Container> {
        let what = format!("pod {pod_name} running containers {names:?}");
        let result = tokio::time::timeout(
            scaled(DEADLINE),
            eventually(&what, DEADLINE, || async {
                let running = self.running(pod_name).await;
                names
                    .iter()
                    .all(|n| running.contains_key(*n))
                    .then_some(running)
            }),
        )
        .await;
        match result {
            Ok(r) => r,
            Err(_) => panic!("timed out: {what}\nkubelet log:\n{}", self.logs()),
        }
    }

    /// Wait until nothing of this node is left in the runtime.
    pub async fn wait_no_sandboxes(&self) {
        eventually("all sandboxes removed", DEADLINE, || async {
            self.sandboxes().await.is_empty().then_some(())
        })
        .await;
    }

    /// Remove everything this node left in the runtime (tests must not leak pods).
    pub async fn purge_runtime(&self) {
        let cri = cri();
        for sb in self.sandboxes().await {
            let _ = cri.stop_pod_sandbox(&sb.id).await;
            let _ = cri.remove_pod_sandbox(&sb.id).await;
        }
        for c in self.containers().await {
            let _ = cri.remove_container(&c.id).await;
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("=== kubelet log of {} ===\n{}", self.name, self.logs());
        }
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A busybox pod manifest running `sh -c <script>` in one container.
pub fn busybox_pod(name: &str, script: &str, extra_spec: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\nspec:\n{extra_spec}  terminationGracePeriodSeconds: 2\n  containers:\n  - name: main\n    image: busybox\n    command: [\"/bin/sh\", \"-c\", {script:?}]\n"
    )
}

pub fn path_exists(p: &Path) -> bool {
    p.exists()
}

/// A unix socket in front of the real containerd socket that a test can take away and
/// bring back, to play a runtime that is down, or restarting, without touching containerd.
pub struct RuntimeProxy {
    pub path: PathBuf,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl RuntimeProxy {
    /// A proxy path that does not answer yet.
    pub fn new(dir: &Path) -> RuntimeProxy {
        RuntimeProxy {
            path: dir.join("cri-proxy.sock"),
            task: None,
        }
    }

    pub fn endpoint(&self) -> String {
        format!("unix://{}", self.path.display())
    }

    pub fn start(&mut self) {
        let _ = std::fs::remove_file(&self.path);
        let listener = tokio::net::UnixListener::bind(&self.path).expect("bind proxy socket");
        let target = endpoint().trim_start_matches("unix://").to_string();
        self.task = Some(tokio::spawn(async move {
            let mut conns = tokio::task::JoinSet::new();
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else {
                    return;
                };
                let target = target.clone();
                conns.spawn(async move {
                    if let Ok(mut outbound) = tokio::net::UnixStream::connect(&target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
            }
        }));
    }

    /// Drop the socket and every connection through it.
    pub fn stop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

impl Drop for RuntimeProxy {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A one-route HTTP server for the URL source: serves `body()` and records request headers.
pub struct ManifestServer {
    pub url: String,
    pub body: std::sync::Arc<std::sync::Mutex<String>>,
    pub requests: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl ManifestServer {
    pub async fn start(body: &str) -> ManifestServer {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/manifests", listener.local_addr().unwrap());
        let shared_body = std::sync::Arc::new(std::sync::Mutex::new(body.to_string()));
        let requests = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let (b, r) = (shared_body.clone(), requests.clone());
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut sock, _)) = listener.accept().await else {
                    return;
                };
                let (b, r) = (b.clone(), r.clone());
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 16384];
                    let mut got = 0;
                    while let Ok(n) = sock.read(&mut buf[got..]).await {
                        if n == 0 {
                            break;
                        }
                        got += n;
                        if buf[..got].windows(4).any(|w| w == b"\r\n\r\n") || got == buf.len() {
                            break;
                        }
                    }
                    r.lock()
                        .unwrap()
                        .push(String::from_utf8_lossy(&buf[..got]).into_owned());
                    let body = b.lock().unwrap().clone();
                    let resp = format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: application/yaml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = sock.write_all(resp.as_bytes()).await;
                });
            }
        });
        ManifestServer {
            url,
            body: shared_body,
            requests,
            task,
        }
    }

    pub fn set_body(&self, body: &str) {
        *self.body.lock().unwrap() = body.to_string();
    }
}

impl Drop for ManifestServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Run a command in a container; returns (exit code, stdout).
pub async fn exec(container_id: &str, script: &str) -> (i32, String) {
    let out = cri()
        .exec_sync(
            container_id,
            vec!["/bin/sh".into(), "-c".into(), script.into()],
            10,
        )
        .await
        .expect("ExecSync");
    (
        out.exit_code,
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}
