//! The dispatcher and the PLEG against the real containerd: admission when a pod replaces
//! another at maxPods, one termination per removed pod, and container exits noticed
//! through the exit watcher rather than the periodic relist.

mod support;

use std::time::{Duration, Instant};

use kubelet_core::runtime::labels;
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edited_manifest_at_max_pods_replaces_the_pod() {
    let mut node = Node::new("maxpods-edit");
    node.write_config("maxPods: 2\n");
    node.write_manifest("a.yaml", &busybox_pod("a", "sleep 3600", ""));
    node.write_manifest("b.yaml", &busybox_pod("b", "sleep 3600", ""));
    node.start();
    let pod_a = node.pod_name("a");
    let pod_b = node.pod_name("b");
    let first = node.wait_running(&pod_a, &["main"]).await["main"].clone();
    node.wait_running(&pod_b, &["main"]).await;
    let first_uid = first.labels[labels::POD_UID].clone();

    // Same name, new content: a new UID that replaces the old pod at the pod limit.
    node.write_manifest("a.yaml", &busybox_pod("a", "sleep 7200", ""));
    let second = eventually(
        "the edited pod running with a new UID",
        DEADLINE,
        || async {
            node.running(&pod_a)
                .await
                .get("main")
                .filter(|c| c.labels[labels::POD_UID] != first_uid)
                .cloned()
        },
    )
    .await;
    assert_ne!(second.id, first.id);
    eventually("the old incarnation removed", DEADLINE, || async {
        let sbs = node.sandboxes().await;
        (sbs.len() == 2 && sbs.iter().all(|s| s.labels[labels::POD_UID] != first_uid)).then_some(())
    })
    .await;
    let logs = node.logs();
    assert!(
        !logs.contains("OutOfpods") && !logs.contains("rejected at admission"),
        "the pod being replaced was counted against maxPods:\n{logs}"
    );
    node.wait_running(&pod_b, &["main"]).await;
    node.stop();
    node.purge_runtime().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removed_pods_are_terminated_once() {
    let mut node = Node::new("remove-once");
    let names = ["r1", "r2", "r3"];
    for n in names {
        node.write_manifest(&format!("{n}.yaml"), &busybox_pod(n, "sleep 3600", ""));
    }
    node.start();
    for n in names {
        node.wait_running(&node.pod_name(n), &["main"]).await;
    }
    for n in names {
        node.remove_manifest(&format!("{n}.yaml"));
    }
    node.wait_no_sandboxes().await;
    eventually("three pods removed", DEADLINE, || async {
        (node.logs().matches("pod removed").count() >= 3).then_some(())
    })
    .await;
    // A stale snapshot that still lists a removed pod arrives within a relist or two
    // (1 s each): give it that long to (wrongly) start a second termination.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let logs = node.logs();
    assert_eq!(
        logs.matches("terminating pod").count(),
        3,
        "one termination pass per pod:\n{logs}"
    );
    assert_eq!(
        logs.matches("removing pod that is no longer configured")
            .count(),
        0,
        "a removed pod was taken for an orphan:\n{logs}"
    );
    node.stop();
    node.purge_runtime().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_container_is_noticed_without_waiting_for_the_relist() {
    let mut node = Node::new("exit-watch");
    node.write_manifest("k.yaml", &busybox_pod("k", "sleep 3600", ""));
    node.start();
    let pod = node.pod_name("k");
    let first = node.wait_running(&pod, &["main"]).await["main"].clone();
    let (_, pid) = cri()
        .container_status_with_pid(&first.id)
        .await
        .expect("ContainerStatus");
    let pid = pid.expect("containerd gives the container's pid");
    // The kubelet watches the container once it has seen it running.
    eventually(
        "the kubelet saw the container running",
        DEADLINE,
        || async { node.logs().contains("started container").then_some(()) },
    )
    .await;
    tokio::time::sleep(Duration::from_millis(1200)).await;

    let killed = Instant::now();
    // SAFETY: kill(2) with a pid and a signal number; no memory is passed.
    assert_eq!(unsafe { libc::kill(pid as i32, libc::SIGKILL) }, 0);
    let second = eventually("a replacement running", DEADLINE, || async {
        node.running(&pod)
            .await
            .get("main")
            .filter(|c| c.id != first.id)
            .cloned()
    })
    .await;
    let took = killed.elapsed();
    assert_eq!(
        second.labels[labels::POD_UID],
        first.labels[labels::POD_UID]
    );
    let logs = node.logs();
    assert!(
        logs.lines()
            .any(|l| l.contains("container process exited") && l.contains(first.id.as_str())),
        "the exit was not reported by the exit watcher (replacement after {took:?}):\n{logs}"
    );
    node.stop();
    node.purge_runtime().await;
}
