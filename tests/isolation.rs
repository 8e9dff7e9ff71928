//! Resources, isolation and environment (issue 5) against the real containerd: cgroup
//! files, /proc inside containers, /etc/hosts, /etc/resolv.conf, volumes, admission.

mod support;

use kubelet_core::runtime::labels;
use support::*;

fn cgroup_dir(controller: &str, rel: &str) -> std::path::PathBuf {
    kubelet_core::cm::cgroup_mounts()
        .into_iter()
        .find(|m| {
            m.file_name()
                .is_some_and(|n| n.to_string_lossy().split(',').any(|c| c == controller))
        })
        .unwrap_or_else(|| panic!("no {controller} cgroup hierarchy"))
        .join(rel.trim_start_matches('/'))
}

fn read(path: &std::path::Path) -> String {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .trim()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_and_limits_become_cgroup_values() {
    let mut node = Node::new("cgroups");
    node.write_config("podPidsLimit: 200\n");
    // The seeds' hello-dep: cpu 50m/150m, memory 32Mi.
    node.write_manifest(
        "hello.yaml",
        r#"apiVersion: v1
kind: Pod
metadata: {name: hello}
spec:
  containers:
  - name: main
    image: busybox
    command: ["sleep", "3600"]
    resources:
      requests: {cpu: 50m, memory: 32Mi}
      limits: {cpu: 150m, memory: 32Mi}
"#,
    );
    node.start();
    let c = node.wait_running(&node.pod_name("hello"), &["main"]).await["main"].clone();
    let uid = c.labels[labels::POD_UID].clone();
    let pod_rel = format!("kubepods/burstable/pod{uid}");
    // Pod cgroup: the pod's totals and the pids limit.
    assert_eq!(
        read(&cgroup_dir("memory", &pod_rel).join("memory.limit_in_bytes")),
        (32u64 << 20).to_string()
    );
    assert_eq!(
        read(&cgroup_dir("cpu", &pod_rel).join("cpu.cfs_quota_us")),
        "15000"
    );
    assert_eq!(read(&cgroup_dir("cpu", &pod_rel).join("cpu.shares")), "51");
    assert_eq!(read(&cgroup_dir("pids", &pod_rel).join("pids.max")), "200");
    // Container cgroup under it.
    let c_rel = format!("{pod_rel}/{}", c.id);
    assert_eq!(
        read(&cgroup_dir("memory", &c_rel).join("memory.limit_in_bytes")),
        (32u64 << 20).to_string()
    );
    assert_eq!(
        read(&cgroup_dir("cpu", &c_rel).join("cpu.cfs_quota_us")),
        "15000"
    );
    assert_eq!(
        read(&cgroup_dir("cpu", &c_rel).join("cpu.cfs_period_us")),
        "100000"
    );
    assert_eq!(read(&cgroup_dir("cpu", &c_rel).join("cpu.shares")), "51");
    node.remove_manifest("hello.yaml");
    node.wait_no_sandboxes().await;
    eventually("pod cgroup removed", DEADLINE, || async {
        (!cgroup_dir("memory", &pod_rel).exists()).then_some(())
    })
    .await;
    node.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admission_rejects_what_does_not_fit_and_never_starts_it() {
    let mut node = Node::new("admission");
    node.write_config("maxPods: 2\n");
    node.write_manifest("a.yaml", &busybox_pod("a", "sleep 3600", ""));
    node.write_manifest("b.yaml", &busybox_pod("b", "sleep 3600", ""));
    node.start();
    node.wait_running(&node.pod_name("a"), &["main"]).await;
    node.wait_running(&node.pod_name("b"), &["main"]).await;
    node.write_manifest("c.yaml", &busybox_pod("c", "sleep 3600", ""));
    node.write_manifest(
        "huge.yaml",
        "apiVersion: v1\nkind: Pod\nmetadata: {name: huge}\nspec:\n  containers:\n  - name: main\n    image: busybox\n    resources: {requests: {cpu: \"500\"}}\n",
    );
    node.write_manifest(
        "sysctl.yaml",
        "apiVersion: v1\nkind: Pod\nmetadata: {name: sysctl}\nspec:\n  securityContext:\n    sysctls: [{name: kernel.msgmax, value: \"1\"}]\n  containers:\n  - {name: main, image: busybox}\n",
    );
    let logs = eventually("rejections logged", DEADLINE, || async {
        let l = node.logs();
        (l.contains("OutOfpods") && l.contains("SysctlForbidden") && l.contains("huge"))
            .then_some(l)
    })
    .await;
    assert!(
        logs.contains("forbidden sysctl: \"kernel.msgmax\" not allowlisted"),
        "{logs}"
    );
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    let sandboxes = node.sandboxes().await;
    assert_eq!(sandboxes.len(), 2, "rejected pods are never started");
    node.stop();
    node.purge_runtime().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn security_context_reaches_the_process() {
    let mut node = Node::new("security");
    node.write_manifest(
        "locked.yaml",
        r#"apiVersion: v1
kind: Pod
metadata: {name: locked}
spec:
  securityContext:
    runAsUser: 1000
    runAsGroup: 3000
    supplementalGroups: [4000]
    fsGroup: 2000
    seccompProfile: {type: RuntimeDefault}
    sysctls: [{name: net.ipv4.tcp_syncookies, value: "0"}]
  containers:
  - name: main
    image: busybox
    command: ["sleep", "3600"]
    securityContext:
      readOnlyRootFilesystem: true
      allowPrivilegeEscalation: false
      capabilities: {drop: [ALL]}
    volumeMounts: [{name: scratch, mountPath: /scratch}]
  volumes:
  - {name: scratch, emptyDir: {}}
"#,
    );
    node.write_manifest(
        "rootful.yaml",
        "apiVersion: v1\nkind: Pod\nmetadata: {name: rootful}\nspec:\n  securityContext: {runAsNonRoot: true}\n  containers:\n  - {name: main, image: busybox, command: [sleep, \"3600\"]}\n",
    );
    node.write_manifest(
        "badseccomp.yaml",
        "apiVersion: v1\nkind: Pod\nmetadata: {name: badseccomp}\nspec:\n  securityContext:\n    seccompProfile: {type: Localhost, localhostProfile: missing.json}\n  containers:\n  - {name: main, image: busybox, command: [sleep, \"3600\"]}\n",
    );
    node.start();
    let c = node.wait_running(&node.pod_name("locked"), &["main"]).await["main"].clone();
    let (_, ids) = exec(&c.id, "id -u; id -g; id -G").await;
    let ids: Vec<&str> = ids.lines().collect();
    assert_eq!(&ids[..2], &["1000", "3000"]);
    assert!(
        ids[2].split(' ').any(|g| g == "4000") && ids[2].split(' ').any(|g| g == "2000"),
        "{ids:?}"
    );
    let (_, status) = exec(&c.id, "cat /proc/self/status").await;
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .map(|l| l[name.len()..].trim().to_string())
    };
    assert_eq!(
        field("CapEff:").as_deref(),
        Some("0000000000000000"),
        "{status}"
    );
    assert_eq!(field("NoNewPrivs:").as_deref(), Some("1"));
    assert_eq!(
        field("Seccomp:").as_deref(),
        Some("2"),
        "RuntimeDefault seccomp filter"
    );
    let (code, _) = exec(&c.id, "touch /rootfs-write").await;
    assert_ne!(code, 0, "read-only root filesystem");
    let (code, _) = exec(&c.id, "touch /scratch/ok").await;
    assert_eq!(code, 0, "fsGroup makes the emptyDir writable for the group");
    let (_, group) = exec(&c.id, "stat -c %g /scratch/ok").await;
    assert_eq!(
        group.trim(),
        "2000",
        "new files inherit the fsGroup (setgid dir)"
    );
    let (_, sysctl) = exec(&c.id, "cat /proc/sys/net/ipv4/tcp_syncookies").await;
    assert_eq!(sysctl.trim(), "0");
    // Masked paths are covered by a mount (of /dev/null), read-only paths remounted ro.
    let (_, mounts) = exec(&c.id, "cat /proc/mounts").await;
    assert!(
        mounts
            .lines()
            .any(|l| l.split(' ').nth(1) == Some("/proc/keys")),
        "masked /proc/keys: {mounts}"
    );
    assert!(
        mounts
            .lines()
            .any(|l| l.split(' ').nth(1) == Some("/proc/sys")
                && l.split(' ').nth(3).is_some_and(|o| o.starts_with("ro"))),
        "read-only /proc/sys: {mounts}"
    );

    // Config errors leave the pod waiting with a reason; nothing is started.
    let logs = eventually("config errors logged", DEADLINE, || async {
        let l = node.logs();
        (l.contains("image will run as root") && l.contains("missing.json")).then_some(l)
    })
    .await;
    assert!(logs.contains("CreateContainerConfigError"), "{logs}");
    assert!(node.running(&node.pod_name("rootful")).await.is_empty());
    assert!(node.running(&node.pod_name("badseccomp")).await.is_empty());
    node.stop();
    node.purge_runtime().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hosts_dns_downward_api_and_memory_volumes() {
    let mut node = Node::new("environment");
    node.write_config("clusterDNS: [10.96.0.10]\nclusterDomain: cluster.local\n");
    node.write_manifest(
        "web.yaml",
        r#"apiVersion: v1
kind: Pod
metadata:
  name: web
  labels: {app: web, tier: front}
spec:
  hostname: www
  subdomain: svc1
  setHostnameAsFQDN: true
  hostAliases:
  - {ip: 10.1.2.3, hostnames: [foo.local, bar.local]}
  dnsConfig:
    options: [{name: ndots, value: "2"}]
  containers:
  - name: main
    image: busybox
    command: ["sleep", "3600"]
    resources: {limits: {memory: 64Mi}}
    volumeMounts:
    - {name: info, mountPath: /etc/podinfo}
    - {name: ram, mountPath: /ram}
  volumes:
  - name: info
    downwardAPI:
      items:
      - {path: labels, fieldRef: {fieldPath: metadata.labels}}
      - {path: name, fieldRef: {fieldPath: metadata.name}}
      - {path: mem_limit, resourceFieldRef: {containerName: main, resource: limits.memory, divisor: 1Mi}}
  - name: ram
    emptyDir: {medium: Memory, sizeLimit: 16Mi}
"#,
    );
    node.start();
    let c = node.wait_running(&node.pod_name("web"), &["main"]).await["main"].clone();
    let sb = node.sandboxes().await.into_iter().next().unwrap();
    let ip = cri()
        .pod_sandbox_status(&sb.id)
        .await
        .unwrap()
        .network
        .unwrap()
        .ip;

    let (_, hosts) = exec(&c.id, "cat /etc/hosts").await;
    assert!(
        hosts.starts_with("# Kubernetes-managed hosts file."),
        "{hosts}"
    );
    assert!(
        hosts.contains(&format!("{ip}\twww.svc1.default.svc.cluster.local\twww")),
        "{hosts}"
    );
    assert!(hosts.contains("10.1.2.3\tfoo.local\tbar.local"), "{hosts}");
    let (_, hostname) = exec(&c.id, "hostname").await;
    assert_eq!(hostname.trim(), "www.svc1.default.svc.cluster.local");

    let (_, resolv) = exec(&c.id, "cat /etc/resolv.conf").await;
    assert!(resolv.contains("nameserver 10.96.0.10"), "{resolv}");
    assert!(
        resolv.contains("search default.svc.cluster.local svc.cluster.local cluster.local"),
        "{resolv}"
    );
    assert!(
        resolv.contains("ndots:2") && !resolv.contains("ndots:5"),
        "dnsConfig option overrides: {resolv}"
    );

    let (_, labels) = exec(&c.id, "cat /etc/podinfo/labels").await;
    assert_eq!(labels, "app=\"web\"\ntier=\"front\"");
    let (_, name) = exec(&c.id, "cat /etc/podinfo/name").await;
    assert_eq!(name, node.pod_name("web"));
    let (_, mem) = exec(&c.id, "cat /etc/podinfo/mem_limit").await;
    assert_eq!(mem, "64");

    let (_, mounts) = exec(&c.id, "grep ' /ram ' /proc/mounts").await;
    assert!(
        mounts.starts_with("tmpfs /ram tmpfs") && mounts.contains("size=16384k"),
        "{mounts}"
    );
    node.remove_manifest("web.yaml");
    node.wait_no_sandboxes().await;
    node.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_network_pods_share_the_node_network_and_hosts_file() {
    let mut node = Node::new("hostnet");
    node.write_manifest(
        "hn.yaml",
        "apiVersion: v1\nkind: Pod\nmetadata: {name: hn}\nspec:\n  hostNetwork: true\n  containers:\n  - {name: main, image: busybox, command: [sleep, \"3600\"]}\n",
    );
    node.start();
    let c = node.wait_running(&node.pod_name("hn"), &["main"]).await["main"].clone();
    // Same network namespace as the host: the host's interfaces are visible.
    let host_ifaces = std::fs::read_to_string("/proc/net/dev").unwrap();
    let (_, pod_ifaces) = exec(&c.id, "cat /proc/net/dev").await;
    let names = |t: &str| -> Vec<String> {
        let mut v: Vec<String> = t
            .lines()
            .skip(2)
            .filter_map(|l| l.split(':').next())
            .map(|n| n.trim().to_string())
            .collect();
        v.sort();
        v
    };
    assert_eq!(names(&pod_ifaces), names(&host_ifaces));
    let (_, hosts) = exec(&c.id, "cat /etc/hosts").await;
    assert!(
        !hosts.starts_with("# Kubernetes-managed hosts file."),
        "host-network pods keep the runtime's hosts file"
    );
    node.stop();
    node.purge_runtime().await;
}
