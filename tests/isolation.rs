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
    // The seeds' hello-dep: cpu 50m/150m, memory 32Mi; the cpu limit written in micro
    // units (any suffix upstream accepts is honoured, not treated as unset).
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
      limits: {cpu: 150000u, memory: 32Mi}
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
    // Same network namespace as the host (compared by inode: the interface list itself
    // changes whenever other pods on this machine come and go).
    let host_net = std::fs::read_link("/proc/self/ns/net").unwrap();
    let (_, pod_net) = exec(&c.id, "readlink /proc/self/ns/net").await;
    assert_eq!(pod_net.trim(), host_net.to_string_lossy());
    let (_, hosts) = exec(&c.id, "cat /etc/hosts").await;
    assert!(
        !hosts.starts_with("# Kubernetes-managed hosts file."),
        "host-network pods keep the runtime's hosts file"
    );
    node.stop();
    node.purge_runtime().await;
}

/// Remove the cgroup directories `rels` (deepest first) in every hierarchy; what is
/// still in use stays.
fn remove_cgroups(rels: &[String]) {
    for mount in kubelet_core::cm::cgroup_mounts() {
        for rel in rels {
            let _ = std::fs::remove_dir(mount.join(rel));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn qos_cgroups_follow_the_burstable_requests() {
    let mut node = Node::new("qos");
    // A cgroup root of its own: other kubelets on this machine write /kubepods.
    let root = format!("kubelet-rs-it-qos-{}", std::process::id());
    node.write_config(&format!("cgroupRoot: /{root}\n"));
    let pod = |name: &str, resources: &str| {
        format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}}}\nspec:\n  terminationGracePeriodSeconds: 1\n  containers:\n  - name: main\n    image: busybox\n    command: [sleep, \"3600\"]\n    resources: {resources}\n"
        )
    };
    node.write_manifest("a.yaml", &pod("a", "{requests: {cpu: 250m}}"));
    node.write_manifest(
        "b.yaml",
        &pod("b", "{requests: {cpu: 500m}, limits: {memory: 64Mi}}"),
    );
    node.write_manifest("c.yaml", &pod("c", "{}"));
    node.write_manifest("g.yaml", &pod("g", "{limits: {cpu: 100m, memory: 32Mi}}"));
    let read_only = support::http::free_port();
    node.start_with(&[&format!("--read-only-port={read_only}")]);
    let c = node.wait_running(&node.pod_name("c"), &["main"]).await["main"].clone();
    let a = node.wait_running(&node.pod_name("a"), &["main"]).await["main"].clone();
    node.wait_running(&node.pod_name("b"), &["main"]).await;
    let g = node.wait_running(&node.pod_name("g"), &["main"]).await["main"].clone();
    // status.qosClass, as the read-only API serves the pods.
    let client = reqwest::Client::new();
    let url = format!("http://127.0.0.1:{read_only}/pods");
    let pods: serde_json::Value = eventually("pods served", DEADLINE, || async {
        let body = client.get(&url).send().await.ok()?.text().await.ok()?;
        serde_json::from_str::<serde_json::Value>(&body)
            .ok()
            .filter(|v| v["items"].as_array().is_some_and(|i| i.len() == 4))
    })
    .await;
    let qos_of = |name: &str| {
        let items = pods["items"].as_array().unwrap();
        let pod = items
            .iter()
            .find(|p| p["metadata"]["name"] == node.pod_name(name).as_str())
            .unwrap_or_else(|| panic!("{name} not served: {pods}"));
        pod["status"]["qosClass"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    assert_eq!(qos_of("a"), "Burstable");
    assert_eq!(qos_of("b"), "Burstable");
    assert_eq!(qos_of("c"), "BestEffort");
    assert_eq!(qos_of("g"), "Guaranteed");
    let kubepods = format!("{root}/kubepods");
    let shares = |tier: &str| {
        let file = cgroup_dir("cpu", &format!("{kubepods}/{tier}")).join("cpu.shares");
        std::fs::read_to_string(file)
            .ok()
            .map(|s| s.trim().to_string())
    };
    let wait_shares = |want: &'static str| async move {
        eventually(
            &format!("kubepods/burstable cpu.shares = {want}"),
            DEADLINE,
            || async { (shares("burstable").as_deref() == Some(want)).then_some(()) },
        )
        .await
    };
    // 250m + 500m = 750m → 768 shares; BestEffort always 2.
    wait_shares("768").await;
    assert_eq!(shares("besteffort").as_deref(), Some("2"));
    let pod_cgroup = |c: &k8s_cri::v1::Container, tier: &str| {
        cgroup_dir(
            "cpu",
            &format!("{kubepods}/{tier}pod{}", c.labels[labels::POD_UID]),
        )
    };
    assert!(
        pod_cgroup(&c, "besteffort/").is_dir(),
        "the BestEffort pod cgroup sits under its QoS cgroup"
    );
    assert!(pod_cgroup(&a, "burstable/").is_dir());
    assert!(
        pod_cgroup(&g, "").is_dir(),
        "Guaranteed pods sit directly under kubepods"
    );
    node.remove_manifest("b.yaml");
    wait_shares("256").await;
    node.remove_manifest("a.yaml");
    node.remove_manifest("c.yaml");
    node.remove_manifest("g.yaml");
    wait_shares("2").await;
    assert_eq!(shares("besteffort").as_deref(), Some("2"));
    node.wait_no_sandboxes().await;
    node.stop();
    remove_cgroups(&[
        format!("{kubepods}/burstable"),
        format!("{kubepods}/besteffort"),
        kubepods.clone(),
        root.clone(),
    ]);
}

/// The host supports 2 MiB huge pages (reserved or not).
fn has_2mi_hugepages() -> bool {
    std::path::Path::new("/sys/kernel/mm/hugepages/hugepages-2048kB").is_dir()
}

/// The tests of this binary that change the host's 2 MiB huge page reservation.
static HUGEPAGES: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// At least `pages` 2 MiB huge pages reserved on the host while held (admission counts
/// only reserved pages as allocatable, as upstream); the previous count comes back on
/// drop. `None` when the kernel cannot reserve them.
struct ReservedHugepages {
    before: String,
    _lock: std::sync::MutexGuard<'static, ()>,
}

const NR_2MI_HUGEPAGES: &str = "/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages";

fn reserve_2mi_hugepages(pages: u64) -> Option<ReservedHugepages> {
    let lock = HUGEPAGES.lock().unwrap_or_else(|e| e.into_inner());
    let before = std::fs::read_to_string(NR_2MI_HUGEPAGES)
        .ok()?
        .trim()
        .to_string();
    let guard = ReservedHugepages {
        before: before.clone(),
        _lock: lock,
    };
    if before.parse::<u64>().ok()? < pages {
        std::fs::write(NR_2MI_HUGEPAGES, pages.to_string()).ok()?;
    }
    let now: u64 = std::fs::read_to_string(NR_2MI_HUGEPAGES)
        .ok()?
        .trim()
        .parse()
        .ok()?;
    (now >= pages).then_some(guard)
}

impl Drop for ReservedHugepages {
    fn drop(&mut self) {
        let _ = std::fs::write(NR_2MI_HUGEPAGES, &self.before);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hugepages_medium_mounts_hugetlbfs_with_the_requested_page_size() {
    if !has_2mi_hugepages() {
        eprintln!("skipped: no 2 MiB huge pages on this host");
        return;
    }
    // The pods' huge pages must be reserved to be admitted.
    let Some(_reserved) = reserve_2mi_hugepages(8) else {
        eprintln!("skipped: cannot reserve 2 MiB huge pages here");
        return;
    };
    let mut node = Node::new("hugepages-volume");
    node.write_manifest(
        "hp.yaml",
        r#"apiVersion: v1
kind: Pod
metadata: {name: hp}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: busybox
    command: ["sleep", "3600"]
    resources:
      limits: {hugepages-2Mi: 4Mi, memory: 16Mi, cpu: 100m}
    volumeMounts: [{name: pages, mountPath: /hugepages}]
  volumes:
  - {name: pages, emptyDir: {medium: HugePages}}
"#,
    );
    node.write_manifest(
        "mixed.yaml",
        "apiVersion: v1\nkind: Pod\nmetadata: {name: mixed}\nspec:\n  containers:\n  - name: main\n    image: busybox\n    resources: {limits: {memory: 16Mi}}\n    volumeMounts: [{name: pages, mountPath: /hugepages}]\n  volumes:\n  - {name: pages, emptyDir: {medium: HugePages}}\n",
    );
    node.start();
    let c = node.wait_running(&node.pod_name("hp"), &["main"]).await["main"].clone();
    let (_, mounts) = exec(&c.id, "grep ' /hugepages ' /proc/mounts").await;
    assert!(
        mounts.contains(" /hugepages hugetlbfs ") && mounts.contains("pagesize=2M"),
        "{mounts}"
    );
    // No huge page request: the volume cannot be set up and the pod does not start.
    let logs = eventually("volume error logged", DEADLINE, || async {
        let l = node.logs();
        l.contains("no resource request for huge pages")
            .then_some(l)
    })
    .await;
    assert!(logs.contains("\"pages\""), "the volume is named: {logs}");
    assert!(node.running(&node.pod_name("mixed")).await.is_empty());
    node.remove_manifest("hp.yaml");
    node.remove_manifest("mixed.yaml");
    node.wait_no_sandboxes().await;
    node.stop();
}

/// A kubelet started by the test itself; killed if the test fails.
struct OwnKubelet(std::process::Child);

impl Drop for OwnKubelet {
    fn drop(&mut self) {
        // SAFETY: signalling our own child by its pid.
        unsafe { libc::kill(self.0.id() as i32, libc::SIGTERM) };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while std::time::Instant::now() < deadline {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The hugetlb controller is not mounted on these VMs (cgroup v1 without a hugetlb
/// hierarchy), so the kubelet runs in a mount namespace of its own where it is: the pod
/// cgroup's hugetlb limits are then read through /proc/<pid>/root. containerd and runc do
/// not see that hierarchy, so only the kubelet's own pod-level limits are checked here;
/// the CRI hugepage limits are unit-tested.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hugepages_limits_reach_the_pod_hugetlb_cgroup() {
    if !has_2mi_hugepages() {
        eprintln!("skipped: no 2 MiB huge pages on this host");
        return;
    }
    // The pods' huge pages must be reserved to be admitted.
    let Some(_reserved) = reserve_2mi_hugepages(8) else {
        eprintln!("skipped: cannot reserve 2 MiB huge pages here");
        return;
    };
    let node = Node::new("hugetlb");
    let hierarchy = node.dir.path().join("hugetlb");
    std::fs::create_dir_all(&hierarchy).unwrap();
    let mount = format!(
        "mount -t cgroup -o hugetlb kubelet-rs-hugetlb {}",
        hierarchy.display()
    );
    // Mounting binds the controller to a hierarchy (or reuses the host's, if it had one).
    let was_bound = hugetlb_hierarchy_bound();
    let probe = std::process::Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c", &mount])
        .status();
    if !probe.is_ok_and(|s| s.success()) {
        eprintln!("skipped: cannot mount a hugetlb cgroup hierarchy here");
        return;
    }
    node.write_manifest(
        "hp.yaml",
        "apiVersion: v1\nkind: Pod\nmetadata: {name: hp}\nspec:\n  terminationGracePeriodSeconds: 1\n  containers:\n  - name: main\n    image: busybox\n    command: [sleep, \"3600\"]\n    resources: {limits: {hugepages-2Mi: 6Mi, memory: 16Mi, cpu: 100m}}\n  - name: side\n    image: busybox\n    command: [sleep, \"3600\"]\n    resources: {limits: {hugepages-2Mi: 2Mi, memory: 16Mi, cpu: 100m}}\n",
    );
    let log = std::fs::File::create(node.log_path()).unwrap();
    let script = format!("{mount} && exec \"$0\" \"$@\"");
    let kubelet = OwnKubelet(
        std::process::Command::new("unshare")
            .args(["--mount", "--propagation", "private", "sh", "-c", &script])
            .arg(env!("CARGO_BIN_EXE_kubelet"))
            .args(node.args())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .stdin(std::process::Stdio::null())
            .spawn()
            .expect("spawn kubelet"),
    );
    let c = node
        .wait_running(&node.pod_name("hp"), &["main", "side"])
        .await["main"]
        .clone();
    let uid = &c.labels[labels::POD_UID];
    // Through the kubelet's mount namespace.
    let seen = std::path::PathBuf::from(format!("/proc/{}/root", kubelet.0.id()))
        .join(hierarchy.strip_prefix("/").unwrap());
    let pod_dir = seen.join(format!("kubepods/pod{uid}"));
    assert_eq!(
        read(&pod_dir.join("hugetlb.2MB.limit_in_bytes")),
        (8u64 << 20).to_string(),
        "the pod's summed hugepages-2Mi"
    );
    if pod_dir.join("hugetlb.1GB.limit_in_bytes").exists() {
        assert_eq!(read(&pod_dir.join("hugetlb.1GB.limit_in_bytes")), "0");
    }
    node.remove_manifest("hp.yaml");
    node.wait_no_sandboxes().await;
    eventually("pod hugetlb cgroup removed", DEADLINE, || async {
        (!pod_dir.exists()).then_some(())
    })
    .await;
    drop(kubelet);
    // Mounted once more to remove the QoS cgroups: an empty hierarchy is destroyed when
    // its last mount goes, which leaves the machine as it was.
    let cleanup = format!(
        "{mount} && cd {} && rmdir kubepods/burstable kubepods/besteffort kubepods; true",
        hierarchy.display()
    );
    let _ = std::process::Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c", &cleanup])
        .status();
    // The removed cgroups die asynchronously; a later mount cycle releases the hierarchy.
    for _ in 0..50 {
        if was_bound || !hugetlb_hierarchy_bound() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
        let _ = std::process::Command::new("unshare")
            .args(["--mount", "--propagation", "private", "sh", "-c", &mount])
            .status();
    }
}

/// Whether the hugetlb controller is bound to a hierarchy (/proc/cgroups).
fn hugetlb_hierarchy_bound() -> bool {
    std::fs::read_to_string("/proc/cgroups")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("hugetlb\t"))
        .and_then(|rest| rest.split('\t').next())
        .is_some_and(|h| h != "0")
}

/// A hex capability mask from /proc/<pid>/status.
fn cap_eff(status: &str) -> u64 {
    let hex = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .unwrap_or_else(|| panic!("no CapEff in {status}"))
        .trim();
    u64::from_str_radix(hex, 16).unwrap()
}

fn status_field(status: &str, name: &str) -> String {
    status
        .lines()
        .find_map(|l| l.strip_prefix(name))
        .unwrap_or_else(|| panic!("no {name} in {status}"))
        .trim()
        .to_string()
}

const CAP_NET_ADMIN: u64 = 1 << 12;
const CAP_SYS_ADMIN: u64 = 1 << 21;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn privileges_seccomp_sysctls_namespaces_and_oom_scores() {
    let mut node = Node::new("privileges");
    node.write_config("allowedUnsafeSysctls: [\"kernel.msg*\"]\n");
    let profiles = node.root_dir.join("seccomp/profiles");
    std::fs::create_dir_all(&profiles).unwrap();
    std::fs::write(
        profiles.join("allow.json"),
        r#"{"defaultAction": "SCMP_ACT_ALLOW"}"#,
    )
    .unwrap();
    node.write_manifest(
        "caps.yaml",
        r#"apiVersion: v1
kind: Pod
metadata: {name: caps}
spec:
  terminationGracePeriodSeconds: 1
  securityContext:
    sysctls: [{name: kernel.msgmax, value: "12345"}]
  containers:
  - name: priv
    image: busybox
    command: ["sleep", "3600"]
    securityContext: {privileged: true}
  - name: netadmin
    image: busybox
    command: ["sleep", "3600"]
    securityContext:
      capabilities: {add: [NET_ADMIN]}
      seccompProfile: {type: Unconfined}
  - name: local
    image: busybox
    command: ["sleep", "3600"]
    securityContext:
      runAsNonRoot: true
      runAsUser: 1000
      seccompProfile: {type: Localhost, localhostProfile: profiles/allow.json}
"#,
    );
    node.write_manifest(
        "shared.yaml",
        "apiVersion: v1\nkind: Pod\nmetadata: {name: shared}\nspec:\n  terminationGracePeriodSeconds: 1\n  shareProcessNamespace: true\n  containers:\n  - {name: main, image: busybox, command: [sleep, \"3600\"]}\n  - {name: peer, image: busybox, command: [sleep, \"3601\"]}\n",
    );
    node.write_manifest(
        "hostns.yaml",
        "apiVersion: v1\nkind: Pod\nmetadata: {name: hostns}\nspec:\n  terminationGracePeriodSeconds: 1\n  hostPID: true\n  hostIPC: true\n  containers:\n  - {name: main, image: busybox, command: [sleep, \"3600\"]}\n",
    );
    node.write_manifest(
        "burst.yaml",
        "apiVersion: v1\nkind: Pod\nmetadata: {name: burst}\nspec:\n  terminationGracePeriodSeconds: 1\n  containers:\n  - name: main\n    image: busybox\n    command: [sleep, \"3600\"]\n    resources: {requests: {memory: 32Mi}}\n",
    );
    node.write_manifest(
        "guar.yaml",
        "apiVersion: v1\nkind: Pod\nmetadata: {name: guar}\nspec:\n  terminationGracePeriodSeconds: 1\n  containers:\n  - name: main\n    image: busybox\n    command: [sleep, \"3600\"]\n    resources: {limits: {cpu: 100m, memory: 32Mi}}\n",
    );
    node.start();
    let caps = node
        .wait_running(&node.pod_name("caps"), &["priv", "netadmin", "local"])
        .await;
    let shared = node
        .wait_running(&node.pod_name("shared"), &["main", "peer"])
        .await;
    let hostns = node.wait_running(&node.pod_name("hostns"), &["main"]).await["main"].clone();
    let burst = node.wait_running(&node.pod_name("burst"), &["main"]).await["main"].clone();
    let guar = node.wait_running(&node.pod_name("guar"), &["main"]).await["main"].clone();

    // privileged: every capability; capabilities.add: the default set plus NET_ADMIN.
    let (_, status) = exec(&caps["priv"].id, "cat /proc/self/status").await;
    assert_ne!(cap_eff(&status) & CAP_SYS_ADMIN, 0, "{status}");
    let (_, status) = exec(&caps["netadmin"].id, "cat /proc/1/status").await;
    assert_ne!(cap_eff(&status) & CAP_NET_ADMIN, 0, "{status}");
    assert_eq!(cap_eff(&status) & CAP_SYS_ADMIN, 0, "{status}");
    // seccomp Unconfined: no filter; Localhost: the profile's filter (mode 2).
    assert_eq!(status_field(&status, "Seccomp:"), "0");
    let (_, status) = exec(&caps["local"].id, "cat /proc/1/status").await;
    assert_eq!(status_field(&status, "Seccomp:"), "2");
    assert_eq!(
        status_field(&status, "Uid:").split_whitespace().next(),
        Some("1000"),
        "runAsNonRoot is satisfied by runAsUser"
    );
    // An unsafe sysctl allowed by allowedUnsafeSysctls reaches the pod's IPC namespace.
    let (_, msgmax) = exec(&caps["priv"].id, "cat /proc/sys/kernel/msgmax").await;
    assert_eq!(msgmax.trim(), "12345");
    let host_msgmax = std::fs::read_to_string("/proc/sys/kernel/msgmax").unwrap();
    assert_ne!(host_msgmax.trim(), "12345", "the host keeps its own value");

    // Namespaces, compared by inode with the host's (the test runs in containerd's).
    let ns = |what: &str| std::fs::read_link(format!("/proc/self/ns/{what}")).unwrap();
    let ns_in = |id: String, what: &'static str| async move {
        let (_, link) = exec(&id, &format!("readlink /proc/self/ns/{what}")).await;
        link.trim().to_string()
    };
    let host_pid = ns("pid").to_string_lossy().into_owned();
    let host_ipc = ns("ipc").to_string_lossy().into_owned();
    assert_eq!(ns_in(hostns.id.clone(), "pid").await, host_pid, "hostPID");
    assert_eq!(ns_in(hostns.id.clone(), "ipc").await, host_ipc, "hostIPC");
    let main_pid = ns_in(shared["main"].id.clone(), "pid").await;
    assert_eq!(
        ns_in(shared["peer"].id.clone(), "pid").await,
        main_pid,
        "shareProcessNamespace"
    );
    assert_ne!(main_pid, host_pid);
    let (_, ps) = exec(&shared["main"].id, "ps").await;
    assert!(
        ps.contains("sleep 3601"),
        "the peer's process is visible: {ps}"
    );
    let other = ns_in(caps["priv"].id.clone(), "pid").await;
    let other2 = ns_in(caps["netadmin"].id.clone(), "pid").await;
    assert_ne!(
        other, other2,
        "containers of a pod have their own PID namespaces by default"
    );
    assert_ne!(ns_in(caps["priv"].id.clone(), "ipc").await, host_ipc);

    // oom_score_adj by QoS class (of the container's first process).
    let adj = |id: String| async move {
        let (_, v) = exec(&id, "cat /proc/1/oom_score_adj").await;
        v.trim().parse::<i64>().unwrap()
    };
    assert_eq!(adj(caps["netadmin"].id.clone()).await, 1000, "BestEffort");
    let capacity = {
        let info = std::fs::read_to_string("/proc/meminfo").unwrap();
        let kib: i64 = info
            .lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap();
        kib * 1024
    };
    let expected = (1000 - 1000 * (32i64 << 20) / capacity).clamp(3, 999);
    assert_eq!(adj(burst.id.clone()).await, expected, "Burstable");
    // Guaranteed asks for -997; containerd here may not go below its own score
    // (restrict_oom_score_adj, as negative scores are refused on these VMs).
    let containerd_adj: i64 = std::env::var("KUBELET_ENV_DIR")
        .ok()
        .and_then(|d| std::fs::read_to_string(format!("{d}/containerd.pid")).ok())
        .and_then(|pid| std::fs::read_to_string(format!("/proc/{}/oom_score_adj", pid.trim())).ok())
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    assert_eq!(
        adj(guar.id.clone()).await,
        containerd_adj.max(-997),
        "Guaranteed"
    );
    node.stop();
    node.purge_runtime().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sub_paths_host_path_types_and_volume_cleanup() {
    let mut node = Node::new("subpaths");
    let host = node.dir.path().join("host");
    std::fs::create_dir_all(&host).unwrap();
    std::os::unix::fs::symlink("/etc", host.join("out")).unwrap();
    node.write_manifest(
        "paths.yaml",
        &format!(
            r#"apiVersion: v1
kind: Pod
metadata: {{name: paths}}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: busybox
    command: ["sh", "-c", "echo hi > /data/out.txt; echo there > /fixed/f.txt; sleep 3600"]
    env:
    - name: POD
      valueFrom: {{fieldRef: {{fieldPath: metadata.name}}}}
    volumeMounts:
    - {{name: scratch, mountPath: /data, subPathExpr: "$(POD)/data"}}
    - {{name: host, mountPath: /fixed, subPath: sub}}
  volumes:
  - {{name: scratch, emptyDir: {{}}}}
  - {{name: host, hostPath: {{path: {host}, type: Directory}}}}
"#,
            host = host.display()
        ),
    );
    node.write_manifest(
        "wrongtype.yaml",
        &format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: wrongtype}}\nspec:\n  containers:\n  - {{name: main, image: busybox, command: [sleep, \"3600\"], volumeMounts: [{{name: h, mountPath: /h}}]}}\n  volumes:\n  - {{name: h, hostPath: {{path: {}, type: File}}}}\n",
            host.display()
        ),
    );
    node.write_manifest(
        "escape.yaml",
        &format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: escape}}\nspec:\n  containers:\n  - {{name: main, image: busybox, command: [sleep, \"3600\"], volumeMounts: [{{name: h, mountPath: /h, subPath: out}}]}}\n  volumes:\n  - {{name: h, hostPath: {{path: {}}}}}\n",
            host.display()
        ),
    );
    node.start();
    let c = node.wait_running(&node.pod_name("paths"), &["main"]).await["main"].clone();
    let uid = c.labels[labels::POD_UID].clone();
    let pod_dir = node.root_dir.join("pods").join(&uid);
    let expanded = pod_dir
        .join("volumes/kubernetes.io~empty-dir/scratch")
        .join(node.pod_name("paths"))
        .join("data/out.txt");
    let text = eventually("subPathExpr file written", DEADLINE, || async {
        std::fs::read_to_string(&expanded).ok()
    })
    .await;
    assert_eq!(text.trim(), "hi");
    let text = eventually("subPath file written", DEADLINE, || async {
        std::fs::read_to_string(host.join("sub/f.txt")).ok()
    })
    .await;
    assert_eq!(text.trim(), "there");

    let logs = eventually("volume errors logged", DEADLINE, || async {
        let l = node.logs();
        (l.contains("is not a file") && l.contains("resolves outside the volume")).then_some(l)
    })
    .await;
    assert!(logs.contains("hostPath type check failed"), "{logs}");
    assert!(node.running(&node.pod_name("wrongtype")).await.is_empty());
    assert!(node.running(&node.pod_name("escape")).await.is_empty());

    node.remove_manifest("paths.yaml");
    eventually("pod directory removed", DEADLINE, || async {
        (!pod_dir.exists()).then_some(())
    })
    .await;
    assert!(host.join("sub/f.txt").exists(), "hostPath content stays");
    node.stop();
    node.purge_runtime().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_over_allocatable_are_rejected_with_upstream_reasons() {
    let mut node = Node::new("overcommit");
    let request_pod = |name: &str, requests: &str| {
        format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}}}\nspec:\n  containers:\n  - name: main\n    image: busybox\n    command: [sleep, \"3600\"]\n    resources: {{requests: {requests}}}\n"
        )
    };
    node.write_manifest("hungry.yaml", &request_pod("hungry", "{memory: 1Pi}"));
    node.write_manifest("greedy.yaml", &request_pod("greedy", "{cpu: \"5000\"}"));
    node.write_manifest("fits.yaml", &request_pod("fits", "{cpu: 10m, memory: 8Mi}"));
    // 1 GiB pages are never reserved on these VMs: nothing of that size is allocatable.
    let gigantic = "apiVersion: v1\nkind: Pod\nmetadata: {name: gigantic}\nspec:\n  containers:\n  - name: main\n    image: busybox\n    command: [sleep, \"3600\"]\n    resources: {limits: {hugepages-1Gi: 1Gi, memory: 8Mi, cpu: 10m}}\n";
    let no_1gi_pages =
        std::fs::read_to_string("/sys/kernel/mm/hugepages/hugepages-1048576kB/nr_hugepages")
            .map_or(true, |n| n.trim() == "0");
    if no_1gi_pages {
        node.write_manifest("gigantic.yaml", gigantic);
    }
    node.start();
    node.wait_running(&node.pod_name("fits"), &["main"]).await;
    let logs = eventually("rejections logged", DEADLINE, || async {
        let l = node.logs();
        (l.contains("OutOfmemory")
            && l.contains("OutOfcpu")
            && (!no_1gi_pages || l.contains("OutOfhugepages-1Gi")))
        .then_some(l)
    })
    .await;
    if no_1gi_pages {
        assert!(
            logs.contains("Node didn't have enough resource: hugepages-1Gi, requested: 1073741824, used: 0, capacity: 0"),
            "{logs}"
        );
        assert!(node.running(&node.pod_name("gigantic")).await.is_empty());
    }
    assert!(
        logs.contains("Node didn't have enough resource: memory, requested: 1125899906842624"),
        "{logs}"
    );
    assert!(
        logs.contains("Node didn't have enough resource: cpu, requested: 5000000"),
        "{logs}"
    );
    assert!(node.running(&node.pod_name("hungry")).await.is_empty());
    assert!(node.running(&node.pod_name("greedy")).await.is_empty());
    assert_eq!(
        node.sandboxes().await.len(),
        1,
        "rejected pods are never started"
    );
    node.stop();
    node.purge_runtime().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cfs_quota_settings_reach_container_and_pod_cgroups() {
    let limited = "apiVersion: v1\nkind: Pod\nmetadata: {name: limited}\nspec:\n  terminationGracePeriodSeconds: 1\n  containers:\n  - name: main\n    image: busybox\n    command: [sleep, \"3600\"]\n    resources: {limits: {cpu: 150m, memory: 32Mi}}\n";
    // cpuCFSQuota: false leaves cpu limits unenforced; a custom period scales the quota.
    let mut off = Node::new("cfs-off");
    off.write_config("cpuCFSQuota: false\n");
    off.write_manifest("limited.yaml", limited);
    let mut custom = Node::new("cfs-period");
    custom.write_config("featureGates: {CustomCPUCFSQuotaPeriod: true}\ncpuCFSQuotaPeriod: 50ms\n");
    custom.write_manifest("limited.yaml", limited);
    off.start();
    custom.start();
    for (node, quota, period) in [(&off, "-1", "100000"), (&custom, "7500", "50000")] {
        let c = node
            .wait_running(&node.pod_name("limited"), &["main"])
            .await["main"]
            .clone();
        let pod_rel = format!("kubepods/pod{}", c.labels[labels::POD_UID]);
        for rel in [pod_rel.clone(), format!("{pod_rel}/{}", c.id)] {
            let dir = cgroup_dir("cpu", &rel);
            assert_eq!(read(&dir.join("cpu.cfs_quota_us")), quota, "{}", node.name);
            if quota != "-1" {
                assert_eq!(
                    read(&dir.join("cpu.cfs_period_us")),
                    period,
                    "{}",
                    node.name
                );
            }
        }
        node.remove_manifest("limited.yaml");
    }
    off.wait_no_sandboxes().await;
    custom.wait_no_sandboxes().await;
    off.stop();
    custom.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dns_policies_default_none_and_host_network() {
    let mut node = Node::new("dns");
    let resolv = node.dir.path().join("resolv.conf");
    std::fs::write(&resolv, "nameserver 9.9.9.9\nsearch example.test\n").unwrap();
    node.write_config(&format!(
        "clusterDNS: [10.96.0.10]\nclusterDomain: cluster.local\nresolvConf: {}\n",
        resolv.display()
    ));
    let pod = |name: &str, spec: &str| {
        format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}}}\nspec:\n  terminationGracePeriodSeconds: 1\n{spec}  containers:\n  - {{name: main, image: busybox, command: [sleep, \"3600\"]}}\n"
        )
    };
    node.write_manifest("dflt.yaml", &pod("dflt", "  dnsPolicy: Default\n"));
    node.write_manifest(
        "none.yaml",
        &pod(
            "none",
            "  dnsPolicy: None\n  dnsConfig:\n    nameservers: [1.2.3.4]\n    searches: [a.example]\n    options: [{name: ndots, value: \"1\"}]\n",
        ),
    );
    node.write_manifest(
        "hostdns.yaml",
        &pod(
            "hostdns",
            "  hostNetwork: true\n  dnsPolicy: ClusterFirstWithHostNet\n",
        ),
    );
    node.write_manifest(
        "hostfirst.yaml",
        &pod(
            "hostfirst",
            "  hostNetwork: true\n  dnsPolicy: ClusterFirst\n",
        ),
    );
    node.start();
    let resolv_of = |name: &'static str| {
        let node = &node;
        async move {
            let c = node.wait_running(&node.pod_name(name), &["main"]).await["main"].clone();
            exec(&c.id, "cat /etc/resolv.conf").await.1
        }
    };
    let dflt = resolv_of("dflt").await;
    assert!(
        dflt.contains("nameserver 9.9.9.9") && dflt.contains("search example.test"),
        "Default uses resolvConf: {dflt}"
    );
    assert!(!dflt.contains("10.96.0.10"), "{dflt}");
    let none = resolv_of("none").await;
    assert!(
        none.contains("nameserver 1.2.3.4")
            && none.contains("search a.example")
            && none.contains("ndots:1"),
        "{none}"
    );
    assert!(
        !none.contains("9.9.9.9") && !none.contains("10.96.0.10"),
        "None uses dnsConfig only: {none}"
    );
    let hostdns = resolv_of("hostdns").await;
    assert!(
        hostdns.contains("nameserver 10.96.0.10")
            && hostdns.contains("search default.svc.cluster.local"),
        "ClusterFirstWithHostNet: {hostdns}"
    );
    let hostfirst = resolv_of("hostfirst").await;
    assert!(
        hostfirst.contains("nameserver 9.9.9.9") && !hostfirst.contains("10.96.0.10"),
        "ClusterFirst on the host network falls back to Default: {hostfirst}"
    );
    node.stop();
    node.purge_runtime().await;
}

/// `<mount>/<rel>` exists for some hierarchy: create it in every one (a reserved cgroup
/// the administrator made).
fn make_cgroup(rel: &str) {
    for mount in kubelet_core::cm::cgroup_mounts() {
        let _ = std::fs::create_dir_all(mount.join(rel));
    }
}

fn task_limit() -> i128 {
    ["pid_max", "threads-max"]
        .iter()
        .map(|f| {
            read(&std::path::Path::new("/proc/sys/kernel").join(f))
                .parse::<i128>()
                .unwrap()
        })
        .min()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_allocatable_is_enforced_on_kubepods_and_the_reserved_cgroup() {
    // A cgroup root of its own: other kubelets on this machine write /kubepods. The cpu
    // reservation is written in micro units: 500000u is 500m everywhere.
    let root = format!("kubelet-rs-it-alloc-{}", std::process::id());
    let system = format!("{root}-system");
    make_cgroup(&system);
    let config = |enforce: &str, system_cgroup: &str| {
        format!(
            "cgroupRoot: /{root}\nsystemReserved: {{cpu: 500000u, memory: 1Gi, pid: \"1000\"}}\nkubeReserved: {{memory: 256Mi}}\nenforceNodeAllocatable: [{enforce}]\nsystemReservedCgroup: \"{system_cgroup}\"\n"
        )
    };
    // Enforcing system-reserved without its cgroup is a configuration error; on a cgroup
    // that does not exist the kubelet does not start either.
    let mut bad = Node::new("alloc-bad");
    bad.write_config(&config("pods, system-reserved", ""));
    bad.start();
    let status = bad.wait_exit(DEADLINE).expect("kubelet exits");
    assert!(!status.success());
    assert!(
        bad.logs()
            .contains("systemReservedCgroup (--system-reserved-cgroup) must be specified"),
        "{}",
        bad.logs()
    );
    let mut missing = Node::new("alloc-missing");
    missing.write_config(&config("pods, system-reserved", &format!("/{root}-nope")));
    missing.start();
    let status = missing.wait_exit(DEADLINE).expect("kubelet exits");
    assert!(!status.success());
    assert!(
        missing
            .logs()
            .contains("Failed to enforce System Reserved Cgroup Limits"),
        "{}",
        missing.logs()
    );

    let mut node = Node::new("alloc");
    node.write_config(&config("pods, system-reserved", &format!("/{system}")));
    // The pod asks for an Unconfined profile; its sandbox still runs RuntimeDefault.
    node.write_manifest(
        "p.yaml",
        "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  terminationGracePeriodSeconds: 1\n  securityContext:\n    seccompProfile: {type: Unconfined}\n  containers:\n  - {name: main, image: busybox, command: [sleep, \"3600\"]}\n",
    );
    node.start();
    let main = node.wait_running(&node.pod_name("p"), &["main"]).await["main"].clone();
    let kubepods = format!("{root}/kubepods");
    let file = |controller: &str, rel: &str, f: &str| read(&cgroup_dir(controller, rel).join(f));
    let cores = std::thread::available_parallelism().unwrap().get() as i64;
    assert_eq!(
        file("cpu", &kubepods, "cpu.shares"),
        ((cores * 1000 - 500) * 1024 / 1000).to_string(),
        "allocatable cpu"
    );
    // Capacity minus both reservations; the eviction threshold is not subtracted.
    let memory = kubelet_core::cm::memory_capacity() - (1 << 30) - (256 << 20);
    assert_eq!(
        file("memory", &kubepods, "memory.limit_in_bytes"),
        memory.to_string()
    );
    assert_eq!(
        file("pids", &kubepods, "pids.max"),
        (task_limit() - 1000).to_string()
    );
    // The reserved cgroup holds the reservation itself.
    assert_eq!(file("cpu", &system, "cpu.shares"), "512");
    assert_eq!(
        file("memory", &system, "memory.limit_in_bytes"),
        (1u64 << 30).to_string()
    );
    assert_eq!(file("pids", &system, "pids.max"), "1000");
    // The pause process of the sandbox: seccomp filter mode (2), while the container
    // runs unconfined (0).
    let uid = &main.labels[labels::POD_UID];
    let sandbox = node
        .sandboxes()
        .await
        .into_iter()
        .find(|s| s.metadata.as_ref().is_some_and(|m| m.uid == *uid))
        .expect("sandbox");
    let procs = file(
        "pids",
        &format!("{kubepods}/besteffort/pod{uid}/{}", sandbox.id),
        "cgroup.procs",
    );
    let pause: u32 = procs
        .lines()
        .next()
        .expect("pause pid")
        .trim()
        .parse()
        .unwrap();
    let status = read(std::path::Path::new(&format!("/proc/{pause}/status")));
    assert_eq!(status_field(&status, "Seccomp:"), "2", "pause: {status}");
    let procs = file(
        "pids",
        &format!("{kubepods}/besteffort/pod{uid}/{}", main.id),
        "cgroup.procs",
    );
    let pid: u32 = procs
        .lines()
        .next()
        .expect("container pid")
        .trim()
        .parse()
        .unwrap();
    let status = read(std::path::Path::new(&format!("/proc/{pid}/status")));
    assert_eq!(
        status_field(&status, "Seccomp:"),
        "0",
        "container: {status}"
    );

    node.remove_manifest("p.yaml");
    node.wait_no_sandboxes().await;
    node.stop();
    remove_cgroups(&[
        format!("{kubepods}/burstable"),
        format!("{kubepods}/besteffort"),
        kubepods.clone(),
        root.clone(),
        system.clone(),
    ]);
}
