//! Shared support for integration tests: the real kubelet binary against the real
//! containerd that `scripts/test.sh` starts (CONTAINER_RUNTIME_ENDPOINT). Each test gets
//! its own node name, root dir and manifest dir, so tests can run in parallel on one
//! containerd: the kubelet only lists and touches objects labelled with its node name.
#![allow(dead_code)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use k8s_cri::v1 as cri;
use kubelet_core::runtime::cri::CriClient;
use kubelet_core::runtime::labels;

pub const DEADLINE: Duration = Duration::from_secs(60);

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

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// One test node: directories, config, and the kubelet process when running.
pub struct Node {
    pub name: String,
    pub dir: tempfile::TempDir,
    pub manifests: PathBuf,
    pub root_dir: PathBuf,
    pub logs_dir: PathBuf,
    pub config: PathBuf,
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
        let node = Node { name, manifests, root_dir, logs_dir, config, dir, child: None, run: 0 };
        node.write_config("");
        node
    }

    /// The config file: static pods from the manifest dir, private dirs, fast checks.
    pub fn write_config(&self, extra: &str) {
        let text = format!(
            "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n\
             staticPodPath: {}\npodLogsDir: {}\ncontainerRuntimeEndpoint: {}\n\
             fileCheckFrequency: 5s\nenableServer: false\nhealthzPort: 0\nreadOnlyPort: 0\n{extra}",
            self.manifests.display(),
            self.logs_dir.display(),
            endpoint()
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
                assert!(status.success(), "kubelet exited with {status}; log:\n{}", self.logs());
                return started.elapsed();
            }
            if started.elapsed() > Duration::from_secs(20) {
                let _ = child.kill();
                panic!("kubelet did not exit within 20s of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn is_running(&mut self) -> bool {
        matches!(self.child.as_mut().map(|c| c.try_wait()), Some(Ok(None)))
    }

    pub fn logs(&self) -> String {
        (1..=self.run)
            .map(|r| std::fs::read_to_string(self.dir.path().join(format!("kubelet-{r}.log"))).unwrap_or_default())
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
            .list_pod_sandbox(Some(cri::PodSandboxFilter { label_selector: self.selector(), ..Default::default() }))
            .await
            .expect("ListPodSandbox")
    }

    pub async fn containers(&self) -> Vec<cri::Container> {
        cri()
            .list_containers(Some(cri::ContainerFilter { label_selector: self.selector(), ..Default::default() }))
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
    pub async fn wait_running(&self, pod_name: &str, names: &[&str]) -> HashMap<String, cri::Container> {
        let what = format!("pod {pod_name} running containers {names:?}");
        let result = tokio::time::timeout(
            DEADLINE,
            eventually(&what, DEADLINE, || async {
                let running = self.running(pod_name).await;
                names.iter().all(|n| running.contains_key(*n)).then_some(running)
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
