//! Standalone mode against the real containerd: static pods from files, observed through
//! CRI, files on disk and the process itself.

mod support;

use std::time::Duration;

use k8s_cri::v1 as cri;
use kubelet_core::runtime::labels;
use support::*;

const NGINX_POD: &str = r#"
apiVersion: v1
kind: Pod
metadata:
  name: nginx
spec:
  terminationGracePeriodSeconds: 3
  containers:
  - name: nginx
    image: nginx
    ports:
    - containerPort: 80
    volumeMounts:
    - mountPath: /var/log/nginx
      name: nginx-logs
  - name: log-truncator
    image: busybox
    command:
    - /bin/sh
    args: [-c, 'while true; do cat /dev/null > /logdir/access.log; sleep 10; done']
    volumeMounts:
    - mountPath: /logdir
      name: nginx-logs
  volumes:
  - name: nginx-logs
    emptyDir: {}
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_two_container_pod_runs_shares_volume_and_is_torn_down() {
    let mut node = Node::new("seed");
    node.write_manifest("nginx.yaml", NGINX_POD);
    node.start();
    let pod = node.pod_name("nginx");
    let running = node.wait_running(&pod, &["nginx", "log-truncator"]).await;

    // Identity labels and annotations as upstream.
    let web = &running["nginx"];
    assert_eq!(web.labels[labels::POD_NAMESPACE], "default");
    let uid = web.labels[labels::POD_UID].clone();
    assert_eq!(uid.len(), 32, "uid is an md5 hex digest: {uid}");
    assert_eq!(web.annotations[labels::CONTAINER_RESTART_COUNT], "0");
    assert_eq!(web.annotations[labels::POD_TERMINATION_GRACE_PERIOD], "3");
    assert!(web.annotations[labels::CONTAINER_PORTS].contains("\"containerPort\":80"));

    // One sandbox with an IP from the CNI bridge and the upstream log directory.
    let sandboxes = node.sandboxes().await;
    assert_eq!(sandboxes.len(), 1);
    let status = cri().pod_sandbox_status(&sandboxes[0].id).await.unwrap();
    let ip = status.network.unwrap().ip;
    let parsed: std::net::Ipv4Addr = ip.parse().unwrap_or_else(|_| panic!("pod IP {ip:?}"));
    assert!(
        !parsed.is_loopback() && !parsed.is_unspecified(),
        "pod IP {ip}"
    );
    let log_dir = node.logs_dir.join(format!("default_{pod}_{uid}"));
    eventually("container log file", DEADLINE, || async {
        log_dir.join("nginx/0.log").is_file().then_some(())
    })
    .await;

    // The emptyDir is shared: a file written in one container is seen in the other.
    let cri = cri();
    let out = cri
        .exec_sync(
            &web.id,
            vec![
                "sh".into(),
                "-c".into(),
                "echo hello > /var/log/nginx/probe.txt".into(),
            ],
            10,
        )
        .await
        .unwrap();
    assert_eq!(out.exit_code, 0);
    let out = cri
        .exec_sync(
            &running["log-truncator"].id,
            vec!["cat".into(), "/logdir/probe.txt".into()],
            10,
        )
        .await
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "hello");
    let empty_dir = node.root_dir.join(format!(
        "pods/{uid}/volumes/kubernetes.io~empty-dir/nginx-logs"
    ));
    assert!(empty_dir.join("probe.txt").is_file());

    // The web server answers on the pod IP.
    let body = eventually("nginx answers on the pod IP", DEADLINE, || {
        let ip = ip.clone();
        async move {
            let mut s = tokio::net::TcpStream::connect((ip.as_str(), 80))
                .await
                .ok()?;
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            s.write_all(b"GET / HTTP/1.0\r\n\r\n").await.ok()?;
            let mut buf = String::new();
            s.read_to_string(&mut buf).await.ok()?;
            Some(buf)
        }
    })
    .await;
    assert!(body.contains("Welcome to nginx!"), "{body}");

    // Manifest removed: containers stopped, sandbox removed, owned dirs cleaned.
    node.remove_manifest("nginx.yaml");
    node.wait_no_sandboxes().await;
    eventually("pod dirs removed", DEADLINE, || async {
        (!log_dir.exists() && !node.root_dir.join(format!("pods/{uid}")).exists()).then_some(())
    })
    .await;
    assert!(node.containers().await.is_empty());
    assert!(node.is_running(), "kubelet must keep running");
    node.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manifest_edit_replaces_the_pod() {
    let mut node = Node::new("edit");
    node.write_manifest("web.yaml", &busybox_pod("web", "sleep 3600", ""));
    node.start();
    let pod = node.pod_name("web");
    let first = node.wait_running(&pod, &["main"]).await["main"].clone();
    let first_uid = first.labels[labels::POD_UID].clone();

    node.write_manifest("web.yaml", &busybox_pod("web", "sleep 7200", ""));
    let second = eventually("new pod with a new UID", DEADLINE, || async {
        let running = node.running(&pod).await;
        running
            .get("main")
            .filter(|c| c.labels[labels::POD_UID] != first_uid)
            .cloned()
    })
    .await;
    assert_ne!(second.id, first.id);
    // The old pod is gone entirely.
    eventually("old sandbox removed", DEADLINE, || async {
        let sbs = node.sandboxes().await;
        (sbs.len() == 1 && sbs[0].labels[labels::POD_UID] != first_uid).then_some(())
    })
    .await;
    node.stop();
    node.purge_runtime().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exited_containers_restart_per_restart_policy() {
    let mut node = Node::new("restart");
    node.write_manifest("always.yaml", &busybox_pod("always", "sleep 1; exit 3", ""));
    node.write_manifest(
        "never.yaml",
        &busybox_pod("never", "exit 0", "  restartPolicy: Never\n"),
    );
    node.write_manifest(
        "onfail.yaml",
        &busybox_pod("onfail", "exit 0", "  restartPolicy: OnFailure\n"),
    );
    node.start();

    // Always: the first restart is immediate, with restartCount 1 and a new log file.
    let always = node.pod_name("always");
    let restarted = eventually("always pod restarted once", DEADLINE, || async {
        node.containers().await.into_iter().find(|c| {
            c.labels[labels::POD_NAME] == always
                && c.annotations[labels::CONTAINER_RESTART_COUNT] == "1"
        })
    })
    .await;
    assert_eq!(restarted.metadata.as_ref().unwrap().attempt, 1);

    // Then back-off: after the second exit, no third container for at least ~8s.
    eventually("second exit", DEADLINE, || async {
        let cs = node.containers().await;
        cs.iter()
            .any(|c| {
                c.labels[labels::POD_NAME] == always
                    && c.annotations[labels::CONTAINER_RESTART_COUNT] == "1"
                    && c.state == cri::ContainerState::ContainerExited as i32
            })
            .then_some(())
    })
    .await;
    let check_until = std::time::Instant::now() + Duration::from_secs(7);
    while std::time::Instant::now() < check_until {
        let third = node.containers().await.into_iter().any(|c| {
            c.labels[labels::POD_NAME] == always
                && c.annotations[labels::CONTAINER_RESTART_COUNT] == "2"
        });
        assert!(!third, "restarted again inside the 10s back-off");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    eventually(
        "restart after the back-off",
        Duration::from_secs(30),
        || async {
            node.containers()
                .await
                .into_iter()
                .any(|c| {
                    c.labels[labels::POD_NAME] == always
                        && c.annotations[labels::CONTAINER_RESTART_COUNT] == "2"
                })
                .then_some(())
        },
    )
    .await;

    // Never and OnFailure with exit 0: exactly one container each, never restarted, and
    // the finished pod's sandbox is stopped.
    for name in ["never", "onfail"] {
        let pod = node.pod_name(name);
        eventually(&format!("{name} sandbox stopped"), DEADLINE, || async {
            let sbs = node.sandboxes().await;
            sbs.iter()
                .any(|s| {
                    s.labels[labels::POD_NAME] == pod
                        && s.state == cri::PodSandboxState::SandboxNotready as i32
                })
                .then_some(())
        })
        .await;
        let cs: Vec<_> = node
            .containers()
            .await
            .into_iter()
            .filter(|c| c.labels[labels::POD_NAME] == pod)
            .collect();
        assert_eq!(cs.len(), 1, "{name}: {cs:?}");
    }
    node.stop();
    node.purge_runtime().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_adopts_running_pods_and_removes_unconfigured_ones() {
    let mut node = Node::new("adopt");
    node.write_manifest("keep.yaml", &busybox_pod("keep", "sleep 3600", ""));
    node.write_manifest("drop.yaml", &busybox_pod("drop", "sleep 3600", ""));
    node.start();
    let keep = node.wait_running(&node.pod_name("keep"), &["main"]).await["main"].clone();
    node.wait_running(&node.pod_name("drop"), &["main"]).await;

    // SIGTERM: exits without tearing the pods down (that would wait out their 30 s grace
    // period: `sleep` as PID 1 ignores SIGTERM) and leaves them running. The bound is loose
    // because a loaded machine slows the exit; the pods' state is what is checked below.
    let took = node.stop();
    assert!(
        took < scaled(Duration::from_secs(15)),
        "kubelet took {took:?} to stop"
    );
    assert_eq!(node.sandboxes().await.len(), 2);
    assert!(
        node.running(&node.pod_name("keep"))
            .await
            .contains_key("main")
    );

    // Restart with one manifest fewer: `keep` is adopted untouched, `drop` removed.
    node.remove_manifest("drop.yaml");
    node.start();
    eventually("unconfigured pod removed", DEADLINE, || async {
        let sbs = node.sandboxes().await;
        (sbs.len() == 1 && sbs[0].labels[labels::POD_NAME] == node.pod_name("keep")).then_some(())
    })
    .await;
    let still = node.running(&node.pod_name("keep")).await;
    assert_eq!(
        still["main"].id, keep.id,
        "the adopted container must not be restarted"
    );
    node.stop();
    node.purge_runtime().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn foreign_sandboxes_are_never_touched() {
    let node_name_for_foreign = format!("foreign-{}", std::process::id());
    let cri = cri();
    // A sandbox with kubelet-style labels, made by someone else (no kubelet-rs node label).
    let foreign = cri
        .run_pod_sandbox(
            cri::PodSandboxConfig {
                metadata: Some(cri::PodSandboxMetadata {
                    name: node_name_for_foreign.clone(),
                    uid: format!("{:032x}", std::process::id()),
                    namespace: "default".into(),
                    attempt: 0,
                }),
                labels: [
                    (labels::POD_NAME.to_string(), node_name_for_foreign.clone()),
                    (labels::POD_UID.to_string(), "foreign".to_string()),
                ]
                .into(),
                linux: Some(cri::LinuxPodSandboxConfig::default()),
                ..Default::default()
            },
            "",
        )
        .await
        .expect("create foreign sandbox");

    let mut node = Node::new("foreign");
    node.write_manifest("mine.yaml", &busybox_pod("mine", "sleep 3600", ""));
    node.start();
    node.wait_running(&node.pod_name("mine"), &["main"]).await;
    node.remove_manifest("mine.yaml");
    node.wait_no_sandboxes().await;
    let status = cri
        .pod_sandbox_status(&foreign)
        .await
        .expect("foreign sandbox still exists");
    assert_eq!(status.state, cri::PodSandboxState::SandboxReady as i32);
    node.stop();
    let _ = cri.stop_pod_sandbox(&foreign).await;
    let _ = cri.remove_pod_sandbox(&foreign).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_manifest_does_not_disturb_others_and_starts_once_fixed() {
    let mut node = Node::new("broken");
    node.write_manifest("good.yaml", &busybox_pod("good", "sleep 3600", ""));
    node.write_manifest(
        "bad.yaml",
        "apiVersion: v1\nkind: Pod\nmetadata: {name: bad\nspec: [",
    );
    node.write_manifest(
        "dup.yaml",
        "apiVersion: v1\nkind: Pod\nmetadata: {name: dup}\nspec:\n  containers:\n  - {name: a, image: busybox}\n  - {name: a, image: busybox}\n",
    );
    node.write_manifest(
        "empty.yaml",
        "apiVersion: v1\nkind: Pod\nmetadata: {name: empty}\nspec:\n  containers: []\n",
    );
    node.write_manifest(
        "deploy.yaml",
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\nspec: {}\n",
    );
    node.start();
    let good = node.wait_running(&node.pod_name("good"), &["main"]).await["main"].clone();
    // The errors are logged with the file and the reason.
    let logs = eventually("errors logged", DEADLINE, || async {
        let l = node.logs();
        (l.contains("bad.yaml")
            && l.contains("dup.yaml")
            && l.contains("empty.yaml")
            && l.contains("deploy.yaml"))
        .then_some(l)
    })
    .await;
    assert!(logs.contains("Duplicate value"), "{logs}");
    assert!(logs.contains("Deployment"), "{logs}");
    assert_eq!(node.sandboxes().await.len(), 1, "only the good pod runs");

    // Fixing the file starts the pod; the good pod is untouched throughout.
    node.write_manifest("bad.yaml", &busybox_pod("bad", "sleep 3600", ""));
    node.wait_running(&node.pod_name("bad"), &["main"]).await;
    assert_eq!(
        node.running(&node.pod_name("good")).await["main"].id,
        good.id
    );
    assert!(node.is_running());
    node.stop();
    node.purge_runtime().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runonce_starts_pods_reports_and_exits() {
    let node = Node::new("runonce");
    node.write_manifest("a.yaml", &busybox_pod("a", "sleep 3600", ""));
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_kubelet"))
        .args(node.args())
        .arg("--runonce")
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "stdout: {stdout}\nstderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains(&format!("pod default/{}: running", node.pod_name("a"))),
        "{stdout}"
    );
    // Pods stay running after the kubelet exits.
    assert!(node.running(&node.pod_name("a")).await.contains_key("main"));

    // A pod that cannot run makes --runonce exit non-zero and say why.
    node.write_manifest(
        "b.yaml",
        &busybox_pod("b", "exit 1", "  restartPolicy: Never\n"),
    );
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_kubelet"))
        .args(node.args())
        .arg("--runonce")
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{stdout}");
    assert!(
        stdout.contains(&format!("pod default/{}: failed", node.pod_name("b"))),
        "{stdout}"
    );
    node.purge_runtime().await;
}
