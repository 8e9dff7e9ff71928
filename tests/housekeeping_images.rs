//! Image garbage collection on a PRIVATE containerd started by this test (own socket,
//! root and state; images pulled from the local registry through the main environment's
//! registry config), so removing unused images never touches the images other tests use
//! on the shared containerd. Pods use the main environment's CNI network (host-local IPAM
//! hands out distinct addresses to both containerds).

#[path = "support/housekeeping.rs"]
mod hk;
mod support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use kubelet_core::runtime::cri::CriClient;
use support::Node;

struct PrivateContainerd {
    dir: tempfile::TempDir,
    child: Child,
}

impl PrivateContainerd {
    async fn start() -> PrivateContainerd {
        let env_dir = std::env::var("KUBELET_ENV_DIR").unwrap_or_else(|_| {
            let ep = support::endpoint();
            Path::new(ep.trim_start_matches("unix://"))
                .parent()
                .unwrap()
                .display()
                .to_string()
        });
        let dir = tempfile::Builder::new()
            .prefix("ctd")
            .tempdir_in("/tmp")
            .unwrap();
        let d = dir.path();
        let config = format!(
            r#"version = 2
root = "{root}"
state = "{state}"
oom_score = 0
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs"]
[grpc]
  address = "{sock}"
[ttrpc]
  address = "{sock}.ttrpc"
[debug]
  address = "{d}/debug.sock"
[metrics]
  address = ""
[plugins]
  [plugins."io.containerd.internal.v1.opt"]
    path = "{d}/opt"
  [plugins."io.containerd.grpc.v1.cri"]
    sandbox_image = "registry.k8s.io/pause:3.10"
    stream_server_address = "127.0.0.1"
    stream_server_port = "0"
    enable_selinux = false
    disable_apparmor = true
    restrict_oom_score_adj = true
    netns_mounts_under_state_dir = true
    [plugins."io.containerd.grpc.v1.cri".containerd]
      snapshotter = "overlayfs"
      default_runtime_name = "runc"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
        runtime_type = "io.containerd.runc.v2"
        [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
          SystemdCgroup = false
          Root = "{state}/runc"
    [plugins."io.containerd.grpc.v1.cri".cni]
      bin_dir = "/usr/lib/cni"
      conf_dir = "{env_dir}/cni/net.d"
      max_conf_num = 1
    [plugins."io.containerd.grpc.v1.cri".registry]
      config_path = "{env_dir}/certs.d"
"#,
            root = d.join("root").display(),
            state = d.join("state").display(),
            sock = d.join("c.sock").display(),
            d = d.display(),
        );
        std::fs::write(d.join("config.toml"), config).unwrap();
        let log = std::fs::File::create(d.join("containerd.log")).unwrap();
        let child = Command::new("containerd")
            .arg("--config")
            .arg(d.join("config.toml"))
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .stdin(Stdio::null())
            .spawn()
            .expect("start containerd");
        let ctd = PrivateContainerd { dir, child };
        let cri = ctd.cri();
        let started = Instant::now();
        while cri.version().await.is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "private containerd did not come up: {}",
                std::fs::read_to_string(ctd.dir.path().join("containerd.log")).unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        ctd
    }

    fn endpoint(&self) -> String {
        format!("unix://{}", self.dir.path().join("c.sock").display())
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

    /// Remove everything, then stop containerd (our own child, by PID).
    async fn stop(mut self) {
        let cri = self.cri();
        for sb in cri.list_pod_sandbox(None).await.unwrap_or_default() {
            let _ = cri.stop_pod_sandbox(&sb.id).await;
            let _ = cri.remove_pod_sandbox(&sb.id).await;
        }
        // SAFETY: kill(2) on our own child.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let _ = self.child.wait();
        unmount_under(self.dir.path());
    }
}

impl Drop for PrivateContainerd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        kill_shims(&self.dir.path().join("c.sock"));
        unmount_under(self.dir.path());
    }
}

/// After a failed test: the shims this containerd started (and their containers).
fn kill_shims(sock: &Path) {
    let procs: Vec<(i32, i32, String)> = std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let pid: i32 = e.file_name().to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(e.path().join("stat")).ok()?;
            let ppid = stat
                .rsplit(')')
                .next()?
                .split_whitespace()
                .nth(1)?
                .parse()
                .ok()?;
            let cmd = std::fs::read(e.path().join("cmdline")).ok()?;
            Some((pid, ppid, String::from_utf8_lossy(&cmd).replace('\0', " ")))
        })
        .collect();
    let sock = sock.display().to_string();
    for (shim, _, _) in procs
        .iter()
        .filter(|(_, _, c)| c.contains("containerd-shim") && c.contains(&sock))
    {
        for (child, _, _) in procs.iter().filter(|(_, ppid, _)| ppid == shim) {
            // SAFETY: kill(2) of a container process our containerd's shim started.
            unsafe { libc::kill(*child, libc::SIGKILL) };
        }
        // SAFETY: as above, the shim itself.
        unsafe { libc::kill(*shim, libc::SIGKILL) };
    }
}

/// Unmount what containerd left mounted under `dir` (deepest first) so it can be removed.
fn unmount_under(dir: &Path) {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut points: Vec<PathBuf> = info
        .lines()
        .filter_map(|l| l.split_whitespace().nth(4))
        .map(PathBuf::from)
        .filter(|p| p.starts_with(dir))
        .collect();
    points.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    for p in points {
        if let Ok(c) = std::ffi::CString::new(p.as_os_str().as_encoded_bytes()) {
            // SAFETY: umount2(2) with a valid path.
            unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
        }
    }
}

fn has(tags: &[String], name: &str) -> bool {
    tags.iter().any(|t| t == name)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn image_gc_removes_unused_images_lru_and_keeps_used_pinned_and_young_ones() {
    let ctd = PrivateContainerd::start().await;
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
