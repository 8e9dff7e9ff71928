//! The URL source, flags and config errors, and a runtime that comes and goes.

mod support;

use std::time::Duration;

use kubelet_core::runtime::labels;
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn url_source_sends_headers_runs_a_pod_list_and_follows_changes() {
    let list = format!(
        "apiVersion: v1\nkind: PodList\nitems:\n- {}\n- {}\n",
        busybox_pod("one", "sleep 3600", "").replace('\n', "\n  "),
        busybox_pod("two", "sleep 3600", "").replace('\n', "\n  "),
    );
    let server = ManifestServer::start(&list).await;
    let mut node = Node::new("url");
    node.write_config(&format!(
        "staticPodURL: {}\nstaticPodURLHeader:\n  X-Token: [secret]\nhttpCheckFrequency: 1s\n",
        server.url
    ));
    node.start();
    node.wait_running(&node.pod_name("one"), &["main"]).await;
    let two = node.wait_running(&node.pod_name("two"), &["main"]).await["main"].clone();
    assert_eq!(
        two.annotations
            .get(labels::CONTAINER_RESTART_COUNT)
            .map(String::as_str),
        Some("0")
    );
    let first_request = server.requests.lock().unwrap()[0].to_lowercase();
    assert!(first_request.contains("x-token: secret"), "{first_request}");

    // Unchanged content is a no-op: after several polls the pods are the same containers.
    let polls = server.requests.lock().unwrap().len();
    eventually("more polls", DEADLINE, || async {
        (server.requests.lock().unwrap().len() >= polls + 2).then_some(())
    })
    .await;
    assert_eq!(node.running(&node.pod_name("two")).await["main"].id, two.id);

    // A single Pod document replaces the list: `one` stays, `two` goes.
    server.set_body(&busybox_pod("one", "sleep 3600", ""));
    eventually("pod two removed", DEADLINE, || async {
        let sbs = node.sandboxes().await;
        (sbs.len() == 1 && sbs[0].labels[labels::POD_NAME] == node.pod_name("one")).then_some(())
    })
    .await;
    node.stop();
    node.purge_runtime().await;
}

fn kubelet(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_kubelet"))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn unknown_and_invalid_flags_fail_naming_the_flag() {
    let out = kubelet(&["--no-such-flag=1"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--no-such-flag"), "{err}");

    let out = kubelet(&["--file-check-frequency=soon"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("file-check-frequency"), "{err}");
}

#[test]
fn config_file_errors_name_the_file_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("kubelet.yaml");
    std::fs::write(
        &file,
        "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\nstaticPodPth: /etc/kubernetes/manifests\n",
    )
    .unwrap();
    let out = kubelet(&[&format!("--config={}", file.display())]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("staticPodPth") && err.contains("kubelet.yaml"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deprecated_flags_warn_like_upstream_and_still_work() {
    let node = Node::new("deprecated");
    node.write_manifest("p.yaml", &busybox_pod("p", "sleep 3600", ""));
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_kubelet"))
        .arg(format!("--pod-manifest-path={}", node.manifests.display()))
        .arg(format!("--container-runtime-endpoint={}", endpoint()))
        .arg(format!("--root-dir={}", node.root_dir.display()))
        .arg(format!("--hostname-override={}", node.name))
        .arg("--fail-cgroupv1=false")
        .arg("--enable-server=false")
        .arg("--runonce")
        .output()
        .await
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("Flag --pod-manifest-path has been deprecated, This parameter should be set via the config file specified by the Kubelet's --config flag."),
        "{err}"
    );
    assert!(
        out.status.success(),
        "{err}\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(node.running(&node.pod_name("p")).await.contains_key("main"));
    node.purge_runtime().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubelet_waits_for_the_runtime_and_survives_its_restart() {
    let mut node = Node::new("runtime-down");
    let mut proxy = RuntimeProxy::new(node.dir.path());
    node.runtime_endpoint = proxy.endpoint();
    node.write_config("");

    node.write_manifest("p.yaml", &busybox_pod("p", "sleep 3600", ""));
    node.start();
    // No runtime yet: the kubelet keeps running and says so.
    eventually(
        "kubelet reports the runtime is not ready",
        DEADLINE,
        || async {
            node.logs()
                .contains("container runtime not ready")
                .then_some(())
        },
    )
    .await;
    assert!(node.is_running());

    proxy.start();
    let first = node.wait_running(&node.pod_name("p"), &["main"]).await["main"].clone();

    // The runtime goes away and comes back: running pods are not disturbed.
    proxy.stop();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(
        node.is_running(),
        "kubelet must survive the runtime going away"
    );
    proxy.start();
    node.write_manifest("q.yaml", &busybox_pod("q", "sleep 3600", ""));
    node.wait_running(&node.pod_name("q"), &["main"]).await;
    assert_eq!(node.running(&node.pod_name("p")).await["main"].id, first.id);
    node.stop();
    node.purge_runtime().await;
}

/// Upstream's start-up cgroup checks: a cgroup v1 host is refused unless `failCgroupV1` is
/// false (the default is true since v1.35), and the runtime is asked for its cgroup
/// driver (CRI RuntimeConfig; containerd 1.6 does not implement it, so the configured
/// driver stays, with upstream's message).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cgroup_v1_is_refused_by_default_and_the_runtime_is_asked_for_its_driver() {
    let mut node = Node::new("cgroup-checks");
    let v2 = std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists();
    if !v2 {
        node.write_config("failCgroupV1: true\n");
        let out = tokio::time::timeout(
            scaled(DEADLINE),
            tokio::process::Command::new(env!("CARGO_BIN_EXE_kubelet"))
                .args(node.args())
                .output(),
        )
        .await
        .expect("the kubelet must exit on a cgroup v1 host")
        .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert!(
            err.contains("kubelet is configured to not run on a host using cgroup v1"),
            "{err}"
        );
        assert!(node.sandboxes().await.is_empty());
    }

    node.write_config("failCgroupV1: false\n");
    node.write_manifest("p.yaml", &busybox_pod("p", "sleep 3600", ""));
    node.start();
    node.wait_running(&node.pod_name("p"), &["main"]).await;
    let logs = node.logs();
    assert!(
        logs.contains("CRI implementation should be updated to support RuntimeConfig")
            || logs.contains("Using cgroup driver setting received from the CRI runtime"),
        "{logs}"
    );
    assert_eq!(
        logs.contains("cgroup v1 support is in maintenance mode"),
        !v2,
        "{logs}"
    );
    node.stop();
    node.purge_runtime().await;
}

/// Config file fields kubelet-rs does not act on warn like the flags do, naming the field;
/// a refused field with a non-default value fails the start naming it. (The runtime
/// endpoint is one kubelet-rs cannot dial, so every start here ends at once, after the
/// configuration is loaded.)
#[test]
fn config_fields_without_effect_warn_and_refused_ones_fail() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("kubelet.yaml");
    let manifests = dir.path().join("manifests");
    std::fs::create_dir_all(&manifests).unwrap();
    let run = |extra: &str, flags: &[&str]| {
        std::fs::write(
            &file,
            format!(
                "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n\
                 staticPodPath: {}\ncontainerRuntimeEndpoint: tcp://127.0.0.1:1\n\
                 enableServer: false\nhealthzPort: 0\n{extra}",
                manifests.display()
            ),
        )
        .unwrap();
        let mut args = vec![format!("--config={}", file.display())];
        args.extend(flags.iter().map(|f| f.to_string()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = kubelet(&args);
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(out.status.code(), Some(1), "{err}");
        err
    };
    let warning = "config field cpuManagerPolicy is accepted but has no effect in kubelet-rs";
    let err = run("cpuManagerPolicy: static\n", &[]);
    assert!(err.contains(warning), "{err}");
    assert!(err.contains("only unix:// endpoints"), "{err}");
    // A default value is no request for the feature: no warning.
    let err = run("cpuManagerPolicy: none\n", &[]);
    assert!(!err.contains("cpuManagerPolicy"), "{err}");
    // Refused, from the file or from the flag.
    for (extra, flags) in [
        ("protectKernelDefaults: true\n", &[][..]),
        ("", &["--protect-kernel-defaults=true"][..]),
    ] {
        let err = run(extra, flags);
        assert!(
            err.contains("protectKernelDefaults: true is not supported by kubelet-rs"),
            "{err}"
        );
    }
}

/// A supervised loop that dies ends the kubelet with a non-zero exit code, naming the
/// loop (debug builds have a test trigger for it); the pods keep running and the next
/// kubelet adopts them.
#[cfg(debug_assertions)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_supervised_loop_ends_the_kubelet_and_pods_survive() {
    let mut node = Node::new("supervised");
    node.write_config("");
    node.write_manifest("p.yaml", &busybox_pod("p", "sleep 3600", ""));
    node.start();
    let first = node.wait_running(&node.pod_name("p"), &["main"]).await["main"].clone();
    node.stop();

    node.env
        .push(("KUBELET_RS_TEST_PANIC_LOOP".into(), "log-rotation".into()));
    node.start();
    let status = node
        .wait_exit(DEADLINE)
        .expect("the kubelet must exit when a supervised loop dies");
    let logs = node.logs();
    assert_eq!(status.code(), Some(1), "{logs}");
    assert!(
        logs.contains("a supervised loop failed") && logs.contains("log-rotation"),
        "{logs}"
    );
    assert_eq!(node.running(&node.pod_name("p")).await["main"].id, first.id);

    node.env.clear();
    node.start();
    node.write_manifest("q.yaml", &busybox_pod("q", "sleep 3600", ""));
    node.wait_running(&node.pod_name("q"), &["main"]).await;
    assert_eq!(node.running(&node.pod_name("p")).await["main"].id, first.id);
    node.stop();
    node.purge_runtime().await;
}
