//! Container garbage collection, log rotation and graceful node shutdown on the real
//! containerd (docs/housekeeping.md).

#[path = "support/housekeeping.rs"]
mod hk;
mod support;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use support::{Node, busybox_pod};

const WAIT: Duration = Duration::from_secs(90);

fn pod_log_dir(node: &Node, pod: &str) -> Option<PathBuf> {
    std::fs::read_dir(&node.logs_dir)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with(&format!("default_{pod}_")))
        })
}

fn files(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|r| {
            r.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn container_gc_removes_logs_of_removed_containers_and_pods() {
    let mut node = Node::new("hk_container_gc");
    hk::fast_housekeeping(&mut node, "2s");
    // A log directory left by a pod that no longer exists anywhere.
    let ghost = node
        .logs_dir
        .join("default_ghost_0b7f3f4e-dead-beef-0000-000000000001/main");
    std::fs::create_dir_all(&ghost).unwrap();
    std::fs::write(ghost.join("0.log"), "2024-01-01T00:00:00Z stdout F old\n").unwrap();
    // A container that keeps failing: the worker keeps one dead instance (for `previous`
    // logs) and removes older ones; their log files are the GC's to remove.
    node.write_manifest(
        "crash.yaml",
        &busybox_pod("crash", "echo run $(date +%s%N); sleep 1; exit 1", ""),
    );
    node.start();
    let name = node.pod_name("crash");
    let dir =
        support::eventually("pod log dir", WAIT, || async { pod_log_dir(&node, &name) }).await;
    // Restarts 0 (immediately), then after 10 s: the third instance makes #0 the oldest.
    support::eventually("third instance of the crashing container", WAIT, || async {
        node.containers()
            .await
            .iter()
            .any(|c| c.metadata.as_ref().is_some_and(|m| m.attempt >= 2))
            .then_some(())
    })
    .await;
    support::eventually("log of the removed instance 0 collected", WAIT, || async {
        let f = files(&dir.join("main"));
        (!f.contains(&"0.log".to_string())).then_some(())
    })
    .await;
    // The instances that still exist keep their logs.
    let left = files(&dir.join("main"));
    let attempts: Vec<u32> = node
        .containers()
        .await
        .iter()
        .filter_map(|c| c.metadata.as_ref().map(|m| m.attempt))
        .collect();
    for a in &attempts {
        assert!(
            left.contains(&format!("{a}.log")) || !dir.join(format!("main/{a}.log")).exists(),
            "log of existing container {a} kept: {left:?}"
        );
    }
    assert!(
        attempts.iter().any(|a| left.contains(&format!("{a}.log"))),
        "{left:?} {attempts:?}"
    );
    // The ghost pod's directory is gone once every source has reported.
    support::eventually(
        "log dir of a pod that no longer exists removed",
        WAIT,
        || async { (!ghost.parent().unwrap().exists()).then_some(()) },
    )
    .await;
    assert!(dir.exists(), "the live pod's log dir is kept");
    // Removed by the GC with its container, or swept after the worker pruned it.
    let log = node.logs();
    assert!(
        log.contains("removed dead container")
            || log.contains("removed log file of a removed container"),
        "{log}"
    );
    node.remove_manifest("crash.yaml");
    node.wait_no_sandboxes().await;
    node.stop();
}

/// The line numbers of "n <number>" lines in CRI log text.
fn line_numbers(text: &str) -> Vec<u64> {
    text.lines()
        .filter_map(|l| l.split(" F n ").nth(1))
        .filter_map(|n| n.split_whitespace().next()?.parse().ok())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_rotation_keeps_max_files_compressed_and_readable_across_rotation() {
    let mut node = Node::new("hk_log_rotation");
    let port = hk::free_port();
    hk::write_config(
        &node,
        port,
        "containerLogMaxSize: 16Ki\ncontainerLogMaxFiles: 3\ncontainerLogMonitorInterval: 3s\n",
    );
    hk::fast_housekeeping(&mut node, "2s");
    // ~100 lines of ~110 bytes a second: a rotation every few seconds.
    node.write_manifest(
        "talker.yaml",
        &busybox_pod(
            "talker",
            "i=0; while true; do echo n $i xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx; i=$((i+1)); usleep 10000; done",
            "",
        ),
    );
    node.start();
    let name = node.pod_name("talker");
    node.wait_running(&name, &["main"]).await;
    let dir =
        support::eventually("pod log dir", WAIT, || async { pod_log_dir(&node, &name) }).await;
    let main = dir.join("main");
    // Wait for at least two rotations: a compressed file and an uncompressed newest one.
    let started = Instant::now();
    let mut max_seen = 0;
    loop {
        let f = files(&main);
        max_seen = max_seen.max(f.len());
        if f.iter().any(|n| n.ends_with(".gz"))
            && f.iter().filter(|n| n.starts_with("0.log.")).count() >= 2
        {
            break;
        }
        assert!(
            started.elapsed() < WAIT,
            "no rotation: {f:?}\n{}",
            node.logs()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Keep watching a few more rotations: never more than containerLogMaxFiles files,
    // only the newest rotated file uncompressed.
    let until = Instant::now() + Duration::from_secs(12);
    while Instant::now() < until {
        let f = files(&main);
        // A plain file whose compressed twin exists is mid-compression (the .gz was
        // renamed into place, the plain one is removed next): one file, not two.
        let counted = f
            .iter()
            .filter(|n| !n.ends_with(".tmp") && !f.contains(&format!("{n}.gz")))
            .count();
        max_seen = max_seen.max(counted);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        max_seen <= 3,
        "more than containerLogMaxFiles files: {max_seen}"
    );
    let f = files(&main);
    let plain_rotated: Vec<&String> = f
        .iter()
        .filter(|n| n.starts_with("0.log.") && !n.ends_with(".gz"))
        .collect();
    assert_eq!(plain_rotated.len(), 1, "{f:?}");
    assert!(node.logs().contains("rotated container log"));
    // Reading across rotation: every file, oldest first, gives consecutive lines.
    let path = main.join("0.log");
    let mut text = String::new();
    kubelet_core::logs::open_all(&path)
        .unwrap()
        .read_to_string(&mut text)
        .unwrap();
    let numbers = line_numbers(&text);
    assert!(numbers.len() > 200, "{} lines", numbers.len());
    for w in numbers.windows(2) {
        assert_eq!(
            w[1],
            w[0] + 1,
            "a line was lost or duplicated across rotation"
        );
    }
    // The node API still serves the current file of the rotated log.
    let url = format!("http://127.0.0.1:{port}/containerLogs/default/{name}/main?tailLines=5");
    if let Ok(resp) = reqwest::get(&url).await
        && resp.status().is_success()
    {
        let body = resp.text().await.unwrap_or_default();
        assert_eq!(body.lines().count(), 5, "{body}");
        assert!(body.lines().all(|l| l.starts_with("n ")), "{body}");
    }
    node.remove_manifest("talker.yaml");
    node.wait_no_sandboxes().await;
    // The worker removes the pod's log dir right after the sandbox.
    support::eventually(
        "log dir with its rotated files removed with the pod",
        Duration::from_secs(15),
        || async { (!dir.exists()).then_some(()) },
    )
    .await;
    node.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigpwr_shuts_pods_down_by_priority_within_the_grace_period() {
    let mut node = Node::new("hk_node_shutdown");
    node.write_config("shutdownGracePeriod: 8s\nshutdownGracePeriodCriticalPods: 3s\n");
    // Ignores SIGTERM and asks for 30 s: the non-critical group's 5 s cap it.
    node.write_manifest(
        "stubborn.yaml",
        &busybox_pod("stubborn", "trap '' TERM; while true; do sleep 1; done", "").replace(
            "terminationGracePeriodSeconds: 2",
            "terminationGracePeriodSeconds: 30",
        ),
    );
    node.write_manifest(
        "critical.yaml",
        &busybox_pod(
            "critical",
            "trap 'exit 0' TERM; while true; do sleep 1; done",
            "  priorityClassName: system-node-critical\n",
        ),
    );
    node.start();
    node.wait_running(&node.pod_name("stubborn"), &["main"])
        .await;
    node.wait_running(&node.pod_name("critical"), &["main"])
        .await;
    let pid = node.pid().expect("kubelet pid") as i32;
    let started = Instant::now();
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(pid, libc::SIGPWR) };
    let status = node
        .wait_exit(Duration::from_secs(30))
        .unwrap_or_else(|| panic!("kubelet did not exit after SIGPWR:\n{}", node.logs()));
    let took = started.elapsed();
    assert!(status.success(), "{status}");
    // The stubborn pod took its capped 5 s, the critical one stopped at once, in order.
    assert!(took >= Duration::from_secs(4), "{took:?}");
    // Well under the stubborn pod's own 30 s: the group's grace period capped it. (Not a
    // tighter bound: on a loaded 2-core machine stopping takes a few seconds more.)
    assert!(took < Duration::from_secs(25), "{took:?}");
    assert!(node.sandboxes().await.is_empty(), "every pod terminated");
    let log = node.logs();
    let first = log
        .find(&format!("killing pod pod={}", node.pod_name("stubborn")))
        .expect("stubborn killed");
    let second = log
        .find(&format!("killing pod pod={}", node.pod_name("critical")))
        .expect("critical killed");
    assert!(first < second, "non-critical pods go first");
    assert!(log.contains("Pod was terminated in response to imminent node shutdown."));
    assert!(
        log.contains("grace_seconds=Some(5)"),
        "group grace caps the pod's 30 s"
    );
    // Started again, the kubelet runs the pods again (the node came back).
    node.start();
    node.wait_running(&node.pod_name("stubborn"), &["main"])
        .await;
    node.remove_manifest("stubborn.yaml");
    node.remove_manifest("critical.yaml");
    node.wait_no_sandboxes().await;
    node.stop();
}
