//! What a pod spec asks of a standalone kubelet: env and `$(VAR)` expansion, hostPath,
//! graceful termination, container logs, pod cgroups, image errors.

mod support;

use std::time::{Duration, Instant};

use kubelet_core::runtime::labels;
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn env_expansion_field_refs_and_host_path() {
    let mut node = Node::new("env");
    let host_dir = node.dir.path().join("host-data");
    let manifest = format!(
        r#"apiVersion: v1
kind: Pod
metadata:
  name: envy
  labels: {{app: web}}
  annotations: {{team: blue}}
spec:
  containers:
  - name: main
    image: busybox
    command: ["/bin/sh", "-c"]
    args: ["echo $(GREETING) > /data/out.txt; env > /data/env.txt; sleep 3600"]
    workingDir: /data
    env:
    - {{name: WHO, value: world}}
    - {{name: GREETING, value: "hello $(WHO) $$(WHO)"}}
    - name: POD_NAME
      valueFrom: {{fieldRef: {{fieldPath: metadata.name}}}}
    - name: APP
      valueFrom: {{fieldRef: {{fieldPath: "metadata.labels['app']"}}}}
    - name: POD_IP
      valueFrom: {{fieldRef: {{fieldPath: status.podIP}}}}
    - name: POD_IPS
      valueFrom: {{fieldRef: {{fieldPath: status.podIPs}}}}
    - name: NS
      valueFrom: {{fieldRef: {{fieldPath: metadata.namespace}}}}
    - name: UID
      valueFrom: {{fieldRef: {{fieldPath: metadata.uid}}}}
    - name: NODE
      valueFrom: {{fieldRef: {{fieldPath: spec.nodeName}}}}
    - name: SA
      valueFrom: {{fieldRef: {{fieldPath: spec.serviceAccountName}}}}
    - name: HOST_IP
      valueFrom: {{fieldRef: {{fieldPath: status.hostIP}}}}
    - name: TEAM
      valueFrom: {{fieldRef: {{fieldPath: "metadata.annotations['team']"}}}}
    volumeMounts:
    - {{name: data, mountPath: /data}}
  volumes:
  - name: data
    hostPath: {{path: {}, type: DirectoryOrCreate}}
"#,
        host_dir.display()
    );
    node.write_manifest("envy.yaml", &manifest);
    node.start();
    node.wait_running(&node.pod_name("envy"), &["main"]).await;
    let env = eventually("env written to the hostPath", DEADLINE, || async {
        std::fs::read_to_string(host_dir.join("env.txt")).ok()
    })
    .await;
    // `$$` escapes; the shell then sees `$(WHO)` in the echo, so compare the env itself.
    assert!(env.contains("GREETING=hello world $(WHO)"), "{env}");
    assert!(
        std::fs::read_to_string(host_dir.join("out.txt"))
            .unwrap()
            .starts_with("hello world")
    );
    assert!(
        env.contains(&format!("POD_NAME={}", node.pod_name("envy"))),
        "{env}"
    );
    assert!(env.contains("APP=web"), "{env}");
    let ip_line = env
        .lines()
        .find(|l| l.starts_with("POD_IP="))
        .expect("POD_IP set");
    let sandbox = node
        .sandboxes()
        .await
        .into_iter()
        .next()
        .expect("one sandbox");
    let sandbox_ip = cri()
        .pod_sandbox_status(&sandbox.id)
        .await
        .unwrap()
        .network
        .unwrap()
        .ip;
    assert_eq!(
        ip_line,
        format!("POD_IP={sandbox_ip}"),
        "status.podIP is the sandbox's IP"
    );
    assert!(env.contains(&format!("POD_IPS={sandbox_ip}\n")), "{env}");
    assert!(env.contains("NS=default\n"), "{env}");
    let uid = node.running(&node.pod_name("envy")).await["main"].labels[labels::POD_UID].clone();
    assert!(env.contains(&format!("UID={uid}\n")), "{env}");
    assert!(env.contains(&format!("NODE={}\n", node.name)), "{env}");
    // Static pods may not name a service account (upstream rule): the field is empty.
    assert!(env.contains("SA=\n"), "{env}");
    assert!(env.contains("TEAM=blue\n"), "{env}");
    let host_ip = env
        .lines()
        .find_map(|l| l.strip_prefix("HOST_IP="))
        .expect("HOST_IP set");
    assert!(
        host_ip.parse::<std::net::IpAddr>().is_ok(),
        "status.hostIP is the node's address: {host_ip:?}"
    );
    node.stop();
    node.purge_runtime().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removal_sends_sigterm_then_sigkill_after_the_grace_period() {
    let mut node = Node::new("grace");
    let marks = node.dir.path().join("marks");
    std::fs::create_dir_all(&marks).unwrap();
    let pod = |name: &str, script: &str, grace: u32| {
        format!(
            r#"apiVersion: v1
kind: Pod
metadata: {{name: {name}}}
spec:
  terminationGracePeriodSeconds: {grace}
  containers:
  - name: main
    image: busybox
    command: ["/bin/sh", "-c", {script:?}]
    volumeMounts: [{{name: marks, mountPath: /marks}}]
  volumes:
  - {{name: marks, hostPath: {{path: {}}}}}
"#,
            marks.display()
        )
    };
    // Leaves on SIGTERM, writing a mark.
    node.write_manifest(
        "polite.yaml",
        &pod(
            "polite",
            "trap 'echo term > /marks/polite; exit 0' TERM; while true; do sleep 0.2; done",
            30,
        ),
    );
    // Ignores SIGTERM: only SIGKILL after 3 s ends it.
    node.write_manifest(
        "stubborn.yaml",
        &pod(
            "stubborn",
            "trap 'echo term > /marks/stubborn' TERM; while true; do sleep 0.2; done",
            3,
        ),
    );
    node.start();
    node.wait_running(&node.pod_name("polite"), &["main"]).await;
    node.wait_running(&node.pod_name("stubborn"), &["main"])
        .await;

    let started = Instant::now();
    node.remove_manifest("polite.yaml");
    node.remove_manifest("stubborn.yaml");
    eventually("polite pod gone", DEADLINE, || async {
        node.running(&node.pod_name("polite"))
            .await
            .is_empty()
            .then_some(())
    })
    .await;
    let polite_took = started.elapsed();
    eventually("stubborn pod gone", DEADLINE, || async {
        node.running(&node.pod_name("stubborn"))
            .await
            .is_empty()
            .then_some(())
    })
    .await;
    let stubborn_took = started.elapsed();
    assert_eq!(
        std::fs::read_to_string(marks.join("polite"))
            .unwrap()
            .trim(),
        "term"
    );
    assert_eq!(
        std::fs::read_to_string(marks.join("stubborn"))
            .unwrap()
            .trim(),
        "term",
        "SIGTERM first"
    );
    assert!(
        polite_took < Duration::from_secs(20),
        "a polite container is not held for its 30s grace period: {polite_took:?}"
    );
    assert!(
        stubborn_took >= Duration::from_secs(3),
        "SIGKILL must wait for the grace period: {stubborn_took:?}"
    );
    node.wait_no_sandboxes().await;
    node.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn container_logs_are_in_cri_format_and_pod_cgroups_are_removed() {
    let mut node = Node::new("logs");
    node.write_manifest(
        "talker.yaml",
        &busybox_pod(
            "talker",
            "echo hello-out; echo hello-err >&2; sleep 3600",
            "",
        ),
    );
    node.start();
    let c = node.wait_running(&node.pod_name("talker"), &["main"]).await["main"].clone();
    let uid = c.labels[labels::POD_UID].clone();
    let log = node.logs_dir.join(format!(
        "default_{}_{uid}/main/0.log",
        node.pod_name("talker")
    ));
    let text = eventually("both lines logged", DEADLINE, || async {
        std::fs::read_to_string(&log)
            .ok()
            .filter(|t| t.contains("hello-err"))
    })
    .await;
    // <RFC3339Nano timestamp> <stream> <P|F> <message>
    let out = text
        .lines()
        .find(|l| l.ends_with("hello-out"))
        .expect("stdout line");
    let fields: Vec<&str> = out.splitn(4, ' ').collect();
    assert_eq!(&fields[1..], &["stdout", "F", "hello-out"], "{out}");
    assert!(
        fields[0].contains('T') && fields[0].ends_with('Z') || fields[0].contains('+'),
        "{out}"
    );
    assert!(
        text.lines().any(|l| l.contains(" stderr F hello-err")),
        "{text}"
    );

    // The pod cgroup exists (BestEffort) in the memory hierarchy and goes with the pod.
    let cgroup = kubelet_core::cm::cgroup_mounts()
        .into_iter()
        .find(|m| m.ends_with("memory") || m.ends_with("unified"))
        .map(|m| m.join(format!("kubepods/besteffort/pod{uid}")))
        .expect("a cgroup hierarchy");
    assert!(
        cgroup.is_dir(),
        "{} should exist while the pod runs",
        cgroup.display()
    );
    node.remove_manifest("talker.yaml");
    node.wait_no_sandboxes().await;
    eventually("pod cgroup removed", DEADLINE, || async {
        (!cgroup.exists()).then_some(())
    })
    .await;
    node.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_image_is_retried_with_backoff_and_does_not_block_other_pods() {
    let mut node = Node::new("noimage");
    node.write_manifest(
        "ghost.yaml",
        "apiVersion: v1\nkind: Pod\nmetadata: {name: ghost}\nspec:\n  containers:\n  - {name: main, image: no-such-image:1.0}\n",
    );
    node.write_manifest("fine.yaml", &busybox_pod("fine", "sleep 3600", ""));
    node.start();
    node.wait_running(&node.pod_name("fine"), &["main"]).await;
    let logs = eventually("pull failure logged", DEADLINE, || async {
        let l = node.logs();
        l.contains("no-such-image").then_some(l)
    })
    .await;
    assert!(logs.contains("ErrImagePull"), "{logs}");
    // Retried, but not in a hot loop: the second attempt waits for the 10s back-off.
    // One warning per pull attempt; back-off refusals say ImagePullBackOff instead.
    let attempts = |l: &str| {
        l.lines()
            .filter(|x| x.contains("reason=ErrImagePull"))
            .count()
    };
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(
        attempts(&node.logs()),
        1,
        "a retry inside the back-off window"
    );
    eventually(
        "pull retried after the back-off",
        Duration::from_secs(30),
        || async { (attempts(&node.logs()) >= 2).then_some(()) },
    )
    .await;
    assert!(node.running(&node.pod_name("ghost")).await.is_empty());
    node.stop();
    node.purge_runtime().await;
}

/// `MemTotal` in bytes, read here independently of the kubelet.
fn mem_total_bytes() -> i128 {
    let info = std::fs::read_to_string("/proc/meminfo").unwrap();
    let kib: i128 = info
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("MemTotal");
    kib * 1024
}

/// Memory held by reserved huge pages of every size.
fn hugepages_bytes() -> i128 {
    let Ok(dirs) = std::fs::read_dir("/sys/kernel/mm/hugepages") else {
        return 0;
    };
    dirs.flatten()
        .filter_map(|d| {
            let name = d.file_name().to_string_lossy().into_owned();
            let kib: i128 = name
                .strip_prefix("hugepages-")?
                .strip_suffix("kB")?
                .parse()
                .ok()?;
            let pages: i128 = std::fs::read_to_string(d.path().join("nr_hugepages"))
                .ok()?
                .trim()
                .parse()
                .ok()?;
            Some(kib * 1024 * pages)
        })
        .sum()
}

/// Size of the filesystem holding `path`.
fn fs_size(path: &std::path::Path) -> i128 {
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: a zeroed statvfs filled by the call; `c` is NUL-terminated.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    assert_eq!(unsafe { libc::statvfs(c.as_ptr(), &mut st) }, 0);
    st.f_blocks as i128 * st.f_frsize as i128
}

fn env_of(env: &str, name: &str) -> String {
    env.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}=")))
        .unwrap_or_else(|| panic!("{name} not in {env}"))
        .to_string()
}

/// The `size=` a tmpfs of `bytes` shows in /proc/mounts (whole pages, in KiB).
fn tmpfs_size_option(bytes: i128) -> String {
    format!("size={}k", (bytes + 4095) / 4096 * 4)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resource_field_refs_default_to_node_allocatable_and_size_memory_volumes() {
    let mut node = Node::new("allocatable");
    node.write_config(
        "systemReserved: {cpu: 100m, memory: 100Mi}\n\
         kubeReserved: {memory: 50Mi, ephemeral-storage: 1Gi}\n\
         evictionHard: {memory.available: 10Mi, nodefs.available: 2Gi, nodefs.inodesFree: \"1%\", imagefs.available: \"1%\"}\n\
         imageGCHighThresholdPercent: 100\nimageGCLowThresholdPercent: 99\n",
    );
    let env_item = |name: &str, resource: &str, divisor: &str| {
        format!(
            "    - name: {name}\n      valueFrom: {{resourceFieldRef: {{resource: {resource}, divisor: {divisor}}}}}\n"
        )
    };
    let env: String = [
        env_item("CPU_LIMIT_MILLI", "limits.cpu", "1m"),
        env_item("CPU_LIMIT", "limits.cpu", "1"),
        env_item("MEM_LIMIT", "limits.memory", "1"),
        env_item("EPH_LIMIT_MI", "limits.ephemeral-storage", "1Mi"),
        env_item("MEM_REQUEST", "requests.memory", "1"),
        env_item("CPU_REQUEST_MILLI", "requests.cpu", "1m"),
    ]
    .concat();
    let pod = |name: &str, resources: &str| {
        format!(
            r#"apiVersion: v1
kind: Pod
metadata: {{name: {name}}}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: busybox
    command: ["sleep", "3600"]
    resources: {resources}
    env:
{env}    volumeMounts:
    - {{name: info, mountPath: /info}}
    - {{name: ram, mountPath: /ram}}
  volumes:
  - name: info
    downwardAPI:
      items:
      - {{path: mem_limit_ki, resourceFieldRef: {{containerName: main, resource: limits.memory, divisor: 1Ki}}}}
      - {{path: cpu_limit_milli, resourceFieldRef: {{containerName: main, resource: limits.cpu, divisor: 1m}}}}
  - name: ram
    emptyDir: {{medium: Memory}}
"#
        )
    };
    // No limits at all, and a memory limit with a cpu request.
    node.write_manifest("unbounded.yaml", &pod("unbounded", "{}"));
    node.write_manifest(
        "bounded.yaml",
        &pod("bounded", "{requests: {cpu: 150m}, limits: {memory: 48Mi}}"),
    );
    node.start();
    let unbounded = node
        .wait_running(&node.pod_name("unbounded"), &["main"])
        .await["main"]
        .clone();
    let bounded = node
        .wait_running(&node.pod_name("bounded"), &["main"])
        .await["main"]
        .clone();

    // What the node can give pods, computed here from the machine and the config.
    let cpu_milli = std::thread::available_parallelism().unwrap().get() as i128 * 1000 - 100;
    let memory = mem_total_bytes() - (100 << 20) - (50 << 20) - (10 << 20) - hugepages_bytes();
    let ephemeral = fs_size(node.dir.path()) - (1 << 30) - (2 << 30);
    let ceil = |v: i128, d: i128| (v + d - 1) / d;

    let (_, env) = exec(&unbounded.id, "env").await;
    assert_eq!(env_of(&env, "CPU_LIMIT_MILLI"), cpu_milli.to_string());
    assert_eq!(env_of(&env, "CPU_LIMIT"), ceil(cpu_milli, 1000).to_string());
    assert_eq!(env_of(&env, "MEM_LIMIT"), memory.to_string());
    assert_eq!(
        env_of(&env, "EPH_LIMIT_MI"),
        ceil(ephemeral, 1 << 20).to_string()
    );
    assert_eq!(
        env_of(&env, "MEM_REQUEST"),
        "0",
        "requests never default to the node"
    );
    assert_eq!(env_of(&env, "CPU_REQUEST_MILLI"), "0");
    let (_, file) = exec(&unbounded.id, "cat /info/mem_limit_ki").await;
    assert_eq!(file, ceil(memory, 1024).to_string());
    let (_, file) = exec(&unbounded.id, "cat /info/cpu_limit_milli").await;
    assert_eq!(file, cpu_milli.to_string());
    // A memory-backed emptyDir of a pod without a memory limit: node allocatable.
    let (_, mounts) = exec(&unbounded.id, "grep ' /ram ' /proc/mounts").await;
    assert!(
        mounts.starts_with("tmpfs /ram tmpfs") && mounts.contains(&tmpfs_size_option(memory)),
        "expected {} (allocatable {memory} bytes): {mounts}",
        tmpfs_size_option(memory)
    );

    // The declared memory limit wins; the unset cpu limit is still the node's.
    let (_, env) = exec(&bounded.id, "env").await;
    assert_eq!(env_of(&env, "MEM_LIMIT"), (48u64 << 20).to_string());
    assert_eq!(env_of(&env, "MEM_REQUEST"), (48u64 << 20).to_string());
    assert_eq!(env_of(&env, "CPU_LIMIT_MILLI"), cpu_milli.to_string());
    assert_eq!(env_of(&env, "CPU_REQUEST_MILLI"), "150");
    let (_, file) = exec(&bounded.id, "cat /info/mem_limit_ki").await;
    assert_eq!(file, (48 * 1024).to_string());
    // ... and sizes its memory-backed emptyDir.
    let (_, mounts) = exec(&bounded.id, "grep ' /ram ' /proc/mounts").await;
    assert!(mounts.contains(&tmpfs_size_option(48 << 20)), "{mounts}");
    node.remove_manifest("unbounded.yaml");
    node.remove_manifest("bounded.yaml");
    node.wait_no_sandboxes().await;
    node.stop();
}
