//! Image garbage collection on a PRIVATE node environment started by this test with
//! scripts/node-env.sh in its own env dir (own containerd socket, root and state, own
//! registry port, bridge and pod CIDR), so removing unused images never touches the
//! images other tests use on the shared containerd. Images are pulled from the shared
//! environment's registry (read only): the private env's registry hosts are pointed at it.

#[path = "support/housekeeping.rs"]
mod hk;
mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use kubelet_core::runtime::cri::CriClient;
use support::Node;

/// A node environment of our own: `node-env.sh up` in a temporary env dir, removed with
/// `node-env.sh clean` on that same dir (never the shared one).
struct PrivateEnv {
    dir: tempfile::TempDir,
    vars: Vec<(&'static str, String)>,
    cleaned: bool,
}

fn node_env_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/node-env.sh")
}

impl PrivateEnv {
    async fn start() -> PrivateEnv {
        let dir = tempfile::Builder::new()
            .prefix("hkenv")
            .tempdir_in("/tmp")
            .unwrap();
        // Distinct from the shared env's (kubeletrs0, 10.88.0.0/16, 5000) and from another
        // run of this test at the same time.
        let pid = std::process::id();
        let vars = vec![
            ("KUBELET_ENV_DIR", dir.path().display().to_string()),
            (
                "KUBELET_ENV_REGISTRY_PORT",
                support::http::free_port().to_string(),
            ),
            ("KUBELET_ENV_BRIDGE", format!("hk{}", pid % 10_000_000)),
            (
                "KUBELET_ENV_POD_CIDR",
                format!("10.{}.{}.0/24", 200 + pid % 50, (pid / 50) % 256),
            ),
        ];
        let env = PrivateEnv {
            dir,
            vars,
            cleaned: false,
        };
        env.run("up");
        // Pull from the shared registry: the private one is empty.
        let shared = std::env::var("REGISTRY").unwrap_or_else(|_| "127.0.0.1:5000".into());
        for host in ["docker.io", "registry.k8s.io"] {
            let file = env.dir.path().join("certs.d").join(host).join("hosts.toml");
            std::fs::write(
                &file,
                format!(
                    "server = \"http://{shared}\"\n\n[host.\"http://{shared}\"]\n  capabilities = [\"pull\", \"resolve\"]\n  skip_verify = true\n"
                ),
            )
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", file.display()));
        }
        let cri = env.cri();
        let started = Instant::now();
        while cri.version().await.is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "private containerd does not answer on {}",
                env.endpoint()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        env
    }

    /// Run `node-env.sh <cmd>` on this env dir; panics with its output when it fails.
    fn run(&self, cmd: &str) {
        let out = Command::new("bash")
            .arg(node_env_script())
            .arg(cmd)
            .envs(self.vars.iter().map(|(k, v)| (*k, v.as_str())))
            .output()
            .expect("run scripts/node-env.sh");
        assert!(
            out.status.success(),
            "node-env.sh {cmd} failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn endpoint(&self) -> String {
        format!(
            "unix://{}",
            self.dir.path().join("containerd.sock").display()
        )
    }

    fn cri(&self) -> CriClient {
        CriClient::new(&self.endpoint(), None, Duration::from_secs(60)).unwrap()
    }

    async fn tags(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .cri()
            .list_images()
            .await
            .unwrap_or_default()
            .into_iter()
            .flat_map(|i| i.repo_tags)
            .collect();
        v.sort();
        v
    }

    /// Remove the pods, then `clean` the env: containerd and registry stopped by their
    /// PIDs, leftovers killed, mounts, bridge and env dir removed.
    async fn stop(mut self) {
        let cri = self.cri();
        for sb in cri.list_pod_sandbox(None).await.unwrap_or_default() {
            let _ = cri.stop_pod_sandbox(&sb.id).await;
            let _ = cri.remove_pod_sandbox(&sb.id).await;
        }
        self.cleaned = true;
        self.run("clean");
    }
}

impl Drop for PrivateEnv {
    fn drop(&mut self) {
        if !self.cleaned {
            // After a failed test; a failure to clean is reported, not raised again.
            let _ = Command::new("bash")
                .arg(node_env_script())
                .arg("clean")
                .envs(self.vars.iter().map(|(k, v)| (*k, v.as_str())))
                .status();
        }
    }
}

fn has(tags: &[String], name: &str) -> bool {
    tags.iter().any(|t| t == name)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn image_gc_removes_unused_images_lru_and_keeps_used_pinned_and_young_ones() {
    let ctd = PrivateEnv::start().await;
    let cri = ctd.cri();
    // (alpine is the same image as busybox here: in use too.)
    for image in ["busybox", "nginx:latest", "nginx:1.7.9"] {
        cri.pull_image(image, None).await.expect("pull");
    }
    let mut node = Node::new("hk_image_gc");
    node.runtime_endpoint = ctd.endpoint();
    // Any usage is over the high threshold and the low one asks for everything: every
    // unused image older than the minimum age (8 s since the kubelet saw it) goes.
    node.write_config(
        "imageGCHighThresholdPercent: 1\nimageGCLowThresholdPercent: 0\nimageMinimumGCAge: 8s\n",
    );
    hk::fast_housekeeping(&mut node, "2s");
    node.write_manifest("user.yaml", &support::busybox_pod("user", "sleep 3600", ""));
    let started = Instant::now();
    node.start();
    // The pod runs on the private containerd.
    let name = node.pod_name("user");
    support::eventually(
        "pod running on the private containerd",
        Duration::from_secs(60),
        || async {
            let running = cri
                .list_containers(None)
                .await
                .unwrap_or_default()
                .into_iter()
                .any(|c| c.labels.get("io.kubernetes.pod.name") == Some(&name) && c.state == 1);
            running.then_some(())
        },
    )
    .await;
    // Nothing goes before the minimum age.
    let tags = ctd.tags().await;
    assert!(has(&tags, "docker.io/library/nginx:latest"), "{tags:?}");
    // Then the unused ones go; the one in use and the sandbox image stay.
    support::eventually("unused images removed", Duration::from_secs(60), || async {
        let t = ctd.tags().await;
        (!has(&t, "docker.io/library/nginx:latest") && !has(&t, "docker.io/library/nginx:1.7.9"))
            .then_some(())
    })
    .await;
    assert!(
        started.elapsed() >= Duration::from_secs(8),
        "removed before imageMinimumGCAge"
    );
    // A newly pulled image is young: kept for the minimum age, then removed.
    cri.pull_image("nginx:1.9.1", None).await.expect("pull");
    let pulled = Instant::now();
    tokio::time::sleep(Duration::from_secs(4)).await;
    let tags = ctd.tags().await;
    assert!(
        has(&tags, "docker.io/library/nginx:1.9.1"),
        "young image removed: {tags:?}"
    );
    support::eventually(
        "young image removed once old enough",
        Duration::from_secs(60),
        || async { (!has(&ctd.tags().await, "docker.io/library/nginx:1.9.1")).then_some(()) },
    )
    .await;
    assert!(pulled.elapsed() >= Duration::from_secs(8));
    let tags = ctd.tags().await;
    assert!(
        has(&tags, "docker.io/library/busybox:latest"),
        "in-use image kept: {tags:?}"
    );
    assert!(
        has(&tags, "registry.k8s.io/pause:3.10"),
        "sandbox image kept: {tags:?}"
    );
    let log = node.logs();
    assert!(log.contains("removed unused image"), "{log}");
    node.remove_manifest("user.yaml");
    support::eventually("pod removed", Duration::from_secs(60), || async {
        cri.list_pod_sandbox(None)
            .await
            .unwrap_or_default()
            .is_empty()
            .then_some(())
    })
    .await;
    node.stop();
    ctd.stop().await;
}
