//! cgroup v2 under both cgroup drivers (issue 14): the pod, QoS and node allocatable
//! cgroups hold upstream's values, read back from the files, and pod cgroups go with
//! their pods. These need a cgroup v2 machine whose containerd uses the same driver as
//! the kubelet: `scripts/guest.sh` boots one (Debian 12, systemd) and runs them there
//! once with `KUBELET_TEST_CGROUP_DRIVER=cgroupfs` and once with `systemd`. On the
//! cgroup v1 host they are ignored.

mod support;

use std::path::PathBuf;
use std::time::Duration;

use kubelet_core::runtime::labels;
use support::http::*;
use support::*;

fn systemd() -> bool {
    cgroup_driver() == "systemd"
}

/// The v2 hierarchy's mount point.
fn unified() -> PathBuf {
    let mounts = kubelet_core::cm::CgroupHost::detect().mounts;
    assert!(
        mounts.len() == 1 && mounts[0].options.is_none(),
        "not a cgroup v2 (unified only) machine: {mounts:?}"
    );
    mounts[0].path.clone()
}

/// A cgroup directory by its components (`kubepods`, `burstable`, `pod<uid>`) as the
/// driver names it: `kubepods/burstable/pod<uid>` or
/// `kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod<uid_>.slice`.
fn cgroup(parts: &[&str]) -> PathBuf {
    let mut dir = unified();
    for n in 1..=parts.len() {
        if systemd() {
            let unit: Vec<String> = parts[..n].iter().map(|p| p.replace('-', "_")).collect();
            dir.push(format!("{}.slice", unit.join("-")));
        } else {
            dir.push(parts[n - 1]);
        }
    }
    dir
}

fn read(dir: &std::path::Path, file: &str) -> String {
    let path = dir.join(file);
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .trim()
        .to_string()
}

/// cgroup v2 cpu.weight for v1 shares, as current runc converts them (the oracle the
/// values below are checked against: 2 → 1, 1024 → 100, 262144 → 10000).
fn weight(shares: u64) -> u64 {
    if shares <= 2 {
        return 1;
    }
    if shares >= 262_144 {
        return 10_000;
    }
    let l = (shares as f64).log2();
    10f64.powf((l * l + 125.0 * l) / 612.0 - 7.0 / 34.0).ceil() as u64
}

fn task_limit() -> u64 {
    ["pid_max", "threads-max"]
        .iter()
        .map(|f| {
            read(std::path::Path::new("/proc/sys/kernel"), f)
                .parse::<u64>()
                .unwrap()
        })
        .min()
        .unwrap()
}

fn pod(name: &str, resources: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}}}\nspec:\n  terminationGracePeriodSeconds: 1\n  containers:\n  - name: main\n    image: busybox\n    command: [sleep, \"3600\"]\n    resources: {resources}\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs cgroup v2 and a matching containerd: run by scripts/guest.sh"]
async fn pod_qos_and_node_allocatable_values_and_removal() {
    let mut node = Node::new("v2-values");
    node.write_config(
        "podPidsLimit: 100\nkubeReserved: {cpu: 100m, memory: 100Mi, pid: \"1000\"}\n\
         featureGates: {CustomCPUCFSQuotaPeriod: true}\ncpuCFSQuotaPeriod: 50ms\n",
    );
    node.write_manifest("g.yaml", &pod("g", "{limits: {cpu: 200m, memory: 64Mi}}"));
    node.write_manifest(
        "b.yaml",
        &pod(
            "b",
            "{requests: {cpu: 100m, memory: 32Mi}, limits: {memory: 128Mi}}",
        ),
    );
    node.write_manifest("e.yaml", &pod("e", "{}"));
    node.start();
    let uid = |c: &k8s_cri::v1::Container| c.labels[labels::POD_UID].clone();
    let g = uid(&node.wait_running(&node.pod_name("g"), &["main"]).await["main"]);
    let b_main = node.wait_running(&node.pod_name("b"), &["main"]).await["main"].clone();
    let b = uid(&b_main);
    let e = uid(&node.wait_running(&node.pod_name("e"), &["main"]).await["main"]);
    let g_dir = cgroup(&["kubepods", &format!("pod{g}")]);
    let b_dir = cgroup(&["kubepods", "burstable", &format!("pod{b}")]);
    let e_dir = cgroup(&["kubepods", "besteffort", &format!("pod{e}")]);

    // Guaranteed: cpu 200m over a 50 ms period, 64Mi, the pods' pid limit.
    assert_eq!(read(&g_dir, "memory.max"), (64u64 << 20).to_string());
    assert_eq!(read(&g_dir, "cpu.max"), "10000 50000");
    assert_eq!(read(&g_dir, "cpu.weight"), weight(204).to_string());
    assert_eq!(read(&g_dir, "pids.max"), "100");
    // Burstable with a memory limit on every container: bounded memory, no cpu quota.
    assert_eq!(read(&b_dir, "memory.max"), (128u64 << 20).to_string());
    assert_eq!(read(&b_dir, "cpu.max"), "max 100000");
    assert_eq!(read(&b_dir, "cpu.weight"), weight(102).to_string());
    assert_eq!(read(&b_dir, "pids.max"), "100");
    // BestEffort: the minimum weight, nothing bounded but pids.
    assert_eq!(read(&e_dir, "cpu.weight"), "1");
    assert_eq!(read(&e_dir, "memory.max"), "max");
    assert_eq!(read(&e_dir, "pids.max"), "100");

    // The container's own cgroup (runc's, named by the runtime after the container):
    // its memory limit, no swap (swapBehavior NoSwap) and OOM kills of the whole container
    // (singleProcessOOMKill unset: false on v2), as upstream asks the runtime for them.
    let b_container = [
        b_dir.join(&b_main.id),
        b_dir.join(format!("cri-containerd-{}.scope", b_main.id)),
    ]
    .into_iter()
    .find(|d| d.is_dir())
    .unwrap_or_else(|| {
        panic!(
            "no cgroup of container {} under {}",
            b_main.id,
            b_dir.display()
        )
    });
    assert_eq!(read(&b_container, "memory.max"), (128u64 << 20).to_string());
    assert_eq!(read(&b_container, "memory.oom.group"), "1");
    assert_eq!(read(&b_container, "memory.swap.max"), "0");

    // QoS cgroups: burstable weighs the Burstable pods' requests, besteffort the minimum.
    let burstable = cgroup(&["kubepods", "burstable"]);
    let besteffort = cgroup(&["kubepods", "besteffort"]);
    assert_eq!(read(&burstable, "cpu.weight"), weight(102).to_string());
    assert_eq!(read(&besteffort, "cpu.weight"), "1");

    // Huge pages (the Debian kernel has the hugetlb controller and 2 MiB pages): pods
    // that ask for none get 0, the QoS cgroups are unbounded.
    let controllers = read(&unified(), "cgroup.controllers");
    assert!(
        controllers.split_whitespace().any(|c| c == "hugetlb"),
        "{controllers}"
    );
    for dir in [&g_dir, &b_dir, &e_dir] {
        assert_eq!(read(dir, "hugetlb.2MB.max"), "0", "{}", dir.display());
    }
    for dir in [&burstable, &besteffort] {
        assert_eq!(read(dir, "hugetlb.2MB.max"), "max", "{}", dir.display());
    }

    // Node allocatable on kubepods: capacity minus kubeReserved (page-rounded memory).
    let kubepods = cgroup(&["kubepods"]);
    let cores = std::thread::available_parallelism().unwrap().get() as u64;
    assert_eq!(
        read(&kubepods, "cpu.weight"),
        weight((cores * 1000 - 100) * 1024 / 1000).to_string()
    );
    let memory = kubelet_core::cm::memory_capacity() as u64 - (100 << 20);
    assert_eq!(
        read(&kubepods, "memory.max"),
        (memory / 4096 * 4096).to_string()
    );
    assert_eq!(
        read(&kubepods, "pids.max"),
        (task_limit() - 1000).to_string()
    );

    // The Burstable pod goes: its cgroup within seconds, the QoS weight follows.
    node.remove_manifest("b.yaml");
    eventually(
        "the Burstable pod cgroup removed",
        Duration::from_secs(15),
        || async { (!b_dir.exists()).then_some(()) },
    )
    .await;
    eventually(
        "kubepods/burstable back to the minimum weight",
        Duration::from_secs(15),
        || async {
            (std::fs::read_to_string(burstable.join("cpu.weight"))
                .ok()?
                .trim()
                == "1")
                .then_some(())
        },
    )
    .await;
    node.remove_manifest("g.yaml");
    node.remove_manifest("e.yaml");
    node.wait_no_sandboxes().await;
    eventually(
        "every pod cgroup removed",
        Duration::from_secs(15),
        || async { (!g_dir.exists() && !e_dir.exists()).then_some(()) },
    )
    .await;
    node.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs cgroup v2 and a matching containerd: run by scripts/guest.sh"]
async fn stats_summary_reads_v2_files() {
    let mut node = Node::new("v2-stats");
    let ports = ApiPorts::new();
    node.write_manifest(
        "m.yaml",
        &busybox_pod(
            "m",
            // 8 MiB held in a tmpfs-backed file: charged to the container's memory.
            "dd if=/dev/zero of=/dev/shm/x bs=1M count=8 && while true; do sleep 0.2; done",
            "",
        ),
    );
    let flags = ports.flags(&node);
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    node.start_with(&flags);
    let pod = node.pod_name("m");
    node.wait_running(&pod, &["main"]).await;
    wait_listening(ports.read_only).await;
    let client = insecure_client();
    let summary = eventually("v2 pod stats in /stats/summary", DEADLINE, || async {
        let (_, body) = get(&client, &ports.read_only_url("/stats/summary")).await;
        let v = json(&body);
        let p = v["pods"]
            .as_array()?
            .iter()
            .find(|p| p["podRef"]["name"] == pod.as_str())?
            .clone();
        let c = &p["containers"][0];
        (c["cpu"]["usageCoreNanoSeconds"].as_u64()? > 0
            && c["memory"]["workingSetBytes"].as_u64()? >= 8 << 20
            && p["memory"]["workingSetBytes"].as_u64()? >= 8 << 20
            && p["cpu"]["usageCoreNanoSeconds"].as_u64()? > 0)
            .then_some(v)
    })
    .await;
    let n = &summary["node"];
    assert!(
        n["cpu"]["usageCoreNanoSeconds"].as_u64().unwrap() > 0,
        "{n}"
    );
    let working_set = n["memory"]["workingSetBytes"].as_u64().unwrap();
    let available = n["memory"]["availableBytes"].as_u64().unwrap();
    let capacity = kubelet_core::cm::memory_capacity() as u64;
    assert!(working_set > 0 && working_set < capacity, "{n}");
    assert!(available > 0 && available + working_set <= capacity, "{n}");

    // Pressure stall information (KubeletPSI), from the cgroups' *.pressure files: the
    // guest boots with psi=1, so the kernel has it.
    let kernel = std::fs::read_to_string("/proc/pressure/io").expect("PSI in the kernel");
    let pod_stats = summary["pods"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["podRef"]["name"] == pod.as_str())
        .unwrap();
    let container = &pod_stats["containers"][0];
    for (what, stats) in [("node", n), ("pod", pod_stats), ("container", container)] {
        for psi in [
            &stats["cpu"]["psi"],
            &stats["memory"]["psi"],
            &stats["io"]["psi"],
        ] {
            for kind in ["some", "full"] {
                assert!(
                    psi[kind]["total"].is_u64()
                        && ["avg10", "avg60", "avg300"]
                            .iter()
                            .all(|a| psi[kind][a].as_f64().is_some_and(|v| v >= 0.0)),
                    "{what}: psi {kind} missing or malformed in {stats}"
                );
            }
        }
    }
    // Totals are the files' cumulative microseconds: never ahead of a later read.
    let later_some_io: u64 = kernel
        .lines()
        .find_map(|l| l.strip_prefix("some "))
        .and_then(|l| l.split_whitespace().find_map(|f| f.strip_prefix("total=")))
        .and_then(|t| t.parse().ok())
        .unwrap();
    let served = n["io"]["psi"]["some"]["total"].as_u64().unwrap();
    assert!(
        served <= later_some_io,
        "node io psi total {served} is ahead of /proc/pressure/io read later ({later_some_io})"
    );
    node.remove_manifest("m.yaml");
    node.wait_no_sandboxes().await;
    node.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs cgroup v2 and a matching containerd: run by scripts/guest.sh"]
async fn memory_qos_writes_min_and_high() {
    let mut node = Node::new("v2-memqos");
    node.write_config("featureGates: {MemoryQoS: true}\nmemoryThrottlingFactor: 0.5\n");
    node.write_manifest(
        "b.yaml",
        &pod("b", "{requests: {memory: 32Mi}, limits: {memory: 128Mi}}"),
    );
    node.write_manifest("g.yaml", &pod("g", "{limits: {cpu: 100m, memory: 64Mi}}"));
    node.start();
    let b_main = node.wait_running(&node.pod_name("b"), &["main"]).await["main"].clone();
    let g_main = node.wait_running(&node.pod_name("g"), &["main"]).await["main"].clone();
    let b_dir = cgroup(&[
        "kubepods",
        "burstable",
        &format!("pod{}", b_main.labels[labels::POD_UID]),
    ]);
    let g_dir = cgroup(&[
        "kubepods",
        &format!("pod{}", g_main.labels[labels::POD_UID]),
    ]);
    let container = [
        b_dir.join(&b_main.id),
        b_dir.join(format!("cri-containerd-{}.scope", b_main.id)),
    ]
    .into_iter()
    .find(|d| d.is_dir())
    .expect("the container's cgroup");
    // Container: min = request; high = 32Mi + 0.5 * (128Mi - 32Mi) = 80Mi (page-aligned).
    assert_eq!(read(&container, "memory.min"), (32u64 << 20).to_string());
    assert_eq!(read(&container, "memory.high"), (80u64 << 20).to_string());
    // Pods: their requests. QoS: burstable the Burstable requests, kubepods both tiers.
    assert_eq!(read(&b_dir, "memory.min"), (32u64 << 20).to_string());
    assert_eq!(read(&g_dir, "memory.min"), (64u64 << 20).to_string());
    eventually("QoS memory.min", Duration::from_secs(15), || async {
        let burstable =
            std::fs::read_to_string(cgroup(&["kubepods", "burstable"]).join("memory.min")).ok()?;
        let kubepods = std::fs::read_to_string(cgroup(&["kubepods"]).join("memory.min")).ok()?;
        (burstable.trim() == (32u64 << 20).to_string()
            && kubepods.trim() == (96u64 << 20).to_string())
        .then_some(())
    })
    .await;
    node.remove_manifest("b.yaml");
    node.remove_manifest("g.yaml");
    node.wait_no_sandboxes().await;
    node.stop();
}
