//! Eviction on the real containerd: local storage limits, disk pressure and memory
//! pressure driven by test pods against thresholds set just below what the node has now
//! (never the machine's real limits). Statuses are read from the read-only node API.

#[path = "support/housekeeping.rs"]
mod hk;
mod support;

use std::time::Duration;

use support::Node;

const WAIT: Duration = Duration::from_secs(90);

fn pod(name: &str, spec: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\nspec:\n  terminationGracePeriodSeconds: 2\n{spec}"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_storage_limits_evict_the_offending_pods_only() {
    let mut node = Node::new("hk_local_storage");
    let port = hk::free_port();
    hk::write_config(&node, port, "evictionHard: {}\n");
    hk::fast_housekeeping(&mut node, "2s");
    // emptyDir over its sizeLimit.
    node.write_manifest(
        "edir.yaml",
        &pod(
            "edir",
            "  containers:\n  - name: main\n    image: busybox\n    command: [\"/bin/sh\", \"-c\", \"dd if=/dev/zero of=/data/f bs=1M count=20; sleep 3600\"]\n    volumeMounts:\n    - {name: data, mountPath: /data}\n  volumes:\n  - name: data\n    emptyDir: {sizeLimit: 10Mi}\n",
        ),
    );
    // One container over its own ephemeral-storage limit; the pod total is not exceeded.
    node.write_manifest(
        "ctr.yaml",
        &pod(
            "ctr",
            "  containers:\n  - name: writer\n    image: busybox\n    command: [\"/bin/sh\", \"-c\", \"dd if=/dev/zero of=/tmp/f bs=1M count=30; sleep 3600\"]\n    resources: {limits: {ephemeral-storage: 10Mi}}\n  - name: idle\n    image: busybox\n    command: [\"sleep\", \"3600\"]\n    resources: {limits: {ephemeral-storage: 100Mi}}\n",
        ),
    );
    // Within its limits: stays.
    node.write_manifest(
        "ok.yaml",
        &pod(
            "ok",
            "  containers:\n  - name: main\n    image: busybox\n    command: [\"/bin/sh\", \"-c\", \"dd if=/dev/zero of=/data/f bs=1M count=1; sleep 3600\"]\n    resources: {limits: {ephemeral-storage: 50Mi}}\n    volumeMounts:\n    - {name: data, mountPath: /data}\n  volumes:\n  - name: data\n    emptyDir: {sizeLimit: 10Mi}\n",
        ),
    );
    node.start();
    let evicted = |s: &serde_json::Value| hk::phase(s) == "Failed" && hk::reason(s) == "Evicted";
    let s = hk::wait_status(&node, port, &node.pod_name("edir"), WAIT, evicted).await;
    assert_eq!(
        hk::message(&s),
        "Usage of EmptyDir volume \"data\" exceeds the limit \"10Mi\". "
    );
    let conds = s["conditions"].as_array().cloned().unwrap_or_default();
    assert!(
        conds.iter().any(|c| c["type"] == "DisruptionTarget"
            && c["status"] == "True"
            && c["reason"] == "TerminationByKubelet"),
        "{s:#}"
    );
    let s = hk::wait_status(&node, port, &node.pod_name("ctr"), WAIT, evicted).await;
    assert_eq!(
        hk::message(&s),
        "Container writer exceeded its local ephemeral storage limit \"10Mi\". "
    );
    // The evicted pods' runtime objects and volumes are gone; the good pod runs.
    node.wait_running(&node.pod_name("ok"), &["main"]).await;
    support::eventually("evicted pods removed from the runtime", WAIT, || async {
        let left: Vec<String> = node
            .sandboxes()
            .await
            .into_iter()
            .filter_map(|s| s.metadata.map(|m| m.name))
            .collect();
        (left == [node.pod_name("ok")]).then_some(())
    })
    .await;
    let s = hk::pod_status(port, &node.pod_name("ok")).await.unwrap();
    assert_eq!(hk::phase(&s), "Running", "{s:#}");
    // Evicted static pods are not started again while their manifest is unchanged.
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert!(node.running(&node.pod_name("edir")).await.is_empty());
    let s = hk::pod_status(port, &node.pod_name("edir")).await.unwrap();
    assert_eq!(hk::reason(&s), "Evicted");
    node.remove_manifest("ok.yaml");
    node.remove_manifest("edir.yaml");
    node.remove_manifest("ctr.yaml");
    node.wait_no_sandboxes().await;
    node.stop();
}

/// available bytes of the filesystem holding `path` (statvfs, as the kubelet reads it).
fn fs_available(path: &std::path::Path) -> i128 {
    kubelet_core::eviction::fs::statvfs(path)
        .expect("statvfs")
        .available_bytes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disk_pressure_reclaims_then_evicts_and_refuses_new_pods() {
    let mut node = Node::new("hk_disk_pressure");
    std::fs::create_dir_all(&node.root_dir).unwrap();
    let port = hk::free_port();
    // nodefs.available threshold 500Mi below what is available now; the filler writes
    // 1200Mi. Only this signal has a threshold; images are protected by their age.
    let threshold_mi = fs_available(&node.root_dir) / (1 << 20) - 500;
    hk::write_config(
        &node,
        port,
        &format!(
            "evictionHard: {{nodefs.available: {threshold_mi}Mi}}\nevictionPressureTransitionPeriod: 20s\nimageMinimumGCAge: 1h\n"
        ),
    );
    hk::fast_housekeeping(&mut node, "2s");
    node.write_manifest(
        "bystander.yaml",
        &pod(
            "bystander",
            "  containers:\n  - name: main\n    image: busybox\n    command: [\"sleep\", \"3600\"]\n    resources: {requests: {ephemeral-storage: 100Mi, memory: 10Mi}}\n",
        ),
    );
    node.start();
    node.wait_running(&node.pod_name("bystander"), &["main"])
        .await;
    node.write_manifest(
        "filler.yaml",
        &pod(
            "filler",
            "  containers:\n  - name: main\n    image: busybox\n    command: [\"/bin/sh\", \"-c\", \"dd if=/dev/zero of=/data/f bs=1M count=1200; sleep 3600\"]\n    volumeMounts:\n    - {name: data, mountPath: /data}\n  volumes:\n  - name: data\n    emptyDir: {}\n",
        ),
    );
    let evicted = |s: &serde_json::Value| hk::phase(s) == "Failed" && hk::reason(s) == "Evicted";
    let s = hk::wait_status(&node, port, &node.pod_name("filler"), WAIT, evicted).await;
    assert!(
        hk::message(&s)
            .starts_with("The node was low on resource: ephemeral-storage. Threshold quantity: "),
        "{s:#}"
    );
    assert!(
        hk::message(&s).contains("Container main was using"),
        "{}",
        hk::message(&s)
    );
    // Node-level reclaim was tried before the eviction; the condition was raised.
    let log = node.logs();
    let reclaim = log
        .find("eviction manager: attempting to reclaim")
        .expect("reclaim attempted");
    let unused = log
        .find("attempting to delete unused containers")
        .expect("container GC");
    let must = log
        .find("eviction manager: must evict")
        .expect("eviction decided");
    assert!(
        reclaim < unused && unused < must,
        "order of reclaim and eviction"
    );
    assert!(log.contains("condition=DiskPressure status=True"));
    // While DiskPressure holds (transition period 20s), new pods are refused.
    node.write_manifest(
        "late.yaml",
        &pod("late", "  containers:\n  - name: main\n    image: busybox\n    command: [\"sleep\", \"3600\"]\n"),
    );
    let s = hk::wait_status(&node, port, &node.pod_name("late"), WAIT, |s| {
        hk::phase(s) == "Failed"
    })
    .await;
    assert_eq!(hk::reason(&s), "Evicted");
    assert_eq!(hk::message(&s), "The node had condition: [DiskPressure]. ");
    // The bystander was never touched; the pressure clears after the transition period.
    let s = hk::pod_status(port, &node.pod_name("bystander"))
        .await
        .unwrap();
    assert_eq!(hk::phase(&s), "Running");
    hk::wait_log(&node, "condition=DiskPressure status=False", WAIT).await;
    for f in ["bystander.yaml", "filler.yaml", "late.yaml"] {
        node.remove_manifest(f);
    }
    node.wait_no_sandboxes().await;
    node.stop();
}

/// Working set of the `kubepods` cgroup (every pod on this machine), as the kubelet reads
/// it for allocatableMemory.available.
fn pods_working_set() -> i128 {
    kubelet_core::eviction::signals::cgroup_working_set("/sys/fs/cgroup".as_ref(), "/kubepods")
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_pressure_evicts_the_hog_and_refuses_best_effort_pods() {
    let mut node = Node::new("hk_memory_pressure");
    let port = hk::free_port();
    // Memory signal of the pods only (allocatableMemory.available), so the machine's
    // other processes do not disturb the test: pods may use 1200Mi more than they use
    // now (systemReserved takes the rest), the threshold is 500Mi, and the hog fills a
    // 1500Mi tmpfs (charged to its memory cgroup). The shared /kubepods must not get
    // that small allocatable as its memory limit: other tests' pods live there too.
    let allocatable = pods_working_set() + (1200 << 20);
    let reserved = kubelet_core::cm::memory_capacity() - allocatable;
    hk::write_config(
        &node,
        port,
        &format!(
            "evictionHard: {{allocatableMemory.available: 500Mi}}\nsystemReserved: {{memory: \"{reserved}\"}}\nenforceNodeAllocatable: [none]\nevictionPressureTransitionPeriod: 25s\n"
        ),
    );
    hk::fast_housekeeping(&mut node, "2s");
    node.write_manifest(
        "guarded.yaml",
        &pod(
            "guarded",
            "  containers:\n  - name: main\n    image: busybox\n    command: [\"sleep\", \"3600\"]\n    resources: {requests: {memory: 64Mi}, limits: {memory: 64Mi}}\n",
        ),
    );
    node.start();
    node.wait_running(&node.pod_name("guarded"), &["main"])
        .await;
    node.write_manifest(
        "hog.yaml",
        &pod(
            "hog",
            "  containers:\n  - name: main\n    image: busybox\n    command: [\"/bin/sh\", \"-c\", \"dd if=/dev/zero of=/mem/f bs=1M count=1500; sleep 3600\"]\n    volumeMounts:\n    - {name: mem, mountPath: /mem}\n  volumes:\n  - name: mem\n    emptyDir: {medium: Memory}\n",
        ),
    );
    let evicted = |s: &serde_json::Value| hk::phase(s) == "Failed" && hk::reason(s) == "Evicted";
    let s = hk::wait_status(&node, port, &node.pod_name("hog"), WAIT, evicted).await;
    let msg = hk::message(&s).to_string();
    assert!(
        msg.starts_with("The node was low on resource: memory. Threshold quantity: "),
        "{msg}"
    );
    assert!(msg.contains("Container main was using"), "{msg}");
    // Under MemoryPressure: a BestEffort pod is refused, a Burstable one admitted.
    node.write_manifest(
        "besteffort.yaml",
        &pod("besteffort", "  containers:\n  - name: main\n    image: busybox\n    command: [\"sleep\", \"3600\"]\n"),
    );
    node.write_manifest(
        "burstable.yaml",
        &pod(
            "burstable",
            "  containers:\n  - name: main\n    image: busybox\n    command: [\"sleep\", \"3600\"]\n    resources: {requests: {memory: 16Mi}}\n",
        ),
    );
    let s = hk::wait_status(&node, port, &node.pod_name("besteffort"), WAIT, |s| {
        hk::phase(s) == "Failed"
    })
    .await;
    assert_eq!(hk::reason(&s), "Evicted");
    assert_eq!(
        hk::message(&s),
        "The node had condition: [MemoryPressure]. "
    );
    node.wait_running(&node.pod_name("burstable"), &["main"])
        .await;
    // The guarded pod (within its request) was not evicted.
    let s = hk::pod_status(port, &node.pod_name("guarded"))
        .await
        .unwrap();
    assert_eq!(hk::phase(&s), "Running", "{s:#}");
    assert!(node.logs().contains("condition=MemoryPressure status=True"));
    hk::wait_log(&node, "condition=MemoryPressure status=False", WAIT).await;
    for f in [
        "guarded.yaml",
        "hog.yaml",
        "besteffort.yaml",
        "burstable.yaml",
    ] {
        node.remove_manifest(f);
    }
    node.wait_no_sandboxes().await;
    node.stop();
}
