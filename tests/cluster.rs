//! Cluster mode against the test API server and the real containerd: registration and
//! adoption, Ready transitions, the Lease, pods bound to the node from Pending to Running
//! (status, events, `kubectl get pods -w`), completion, and graceful deletion ending in
//! the final delete.

#[path = "support/cluster.rs"]
mod cluster_support;
mod support;

use std::time::Duration;

use cluster_support::*;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Node as ApiNode;
use kube::api::{Api, DeleteParams, PostParams};
use serde_json::json;
use support::{Node, RuntimeProxy};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registers_goes_ready_and_renews_its_lease() {
    let server = api_server().await;
    let client = client(&server).await;
    let mut node = Node::new("cluster_register");
    // The runtime is away at first: the node must register NotReady, then turn Ready.
    let mut proxy = RuntimeProxy::new(node.dir.path());
    node.runtime_endpoint = proxy.endpoint();
    node.write_config(
        "registerWithTaints:\n- key: dedicated\n  value: edge\n  effect: NoSchedule\n",
    );
    node.start_with(&[
        &kubeconfig_flag(&server),
        "--node-labels=tier=edge,example.com/role=test",
    ]);
    let name = node.name.clone();
    let logs = || node.logs();

    let registered = wait_for("node registered", API_DEADLINE, logs, || async {
        get_node(&client, &name).await
    })
    .await;
    let labels = registered.metadata.labels.clone().unwrap_or_default();
    assert_eq!(labels["kubernetes.io/hostname"], name);
    assert_eq!(labels["kubernetes.io/os"], "linux");
    assert_eq!(labels["beta.kubernetes.io/os"], "linux");
    assert!(labels.contains_key("kubernetes.io/arch"));
    assert_eq!(labels["tier"], "edge");
    assert_eq!(labels["example.com/role"], "test");
    let taints = registered
        .spec
        .clone()
        .unwrap_or_default()
        .taints
        .unwrap_or_default();
    assert_eq!(
        (taints[0].key.as_str(), taints[0].effect.as_str()),
        ("dedicated", "NoSchedule")
    );
    let (status, reason, message) =
        ready_condition(&registered).expect("created with a Ready condition");
    assert_eq!(
        (status.as_str(), reason.as_str()),
        ("False", "KubeletNotReady"),
        "{message}"
    );
    assert!(message.contains("container runtime"), "{message}");

    // The runtime comes: Ready with upstream's reason and message.
    proxy.start();
    let ready = wait_for("node Ready", API_DEADLINE, logs, || async {
        let n = get_node(&client, &name).await?;
        (ready_condition(&n)?.0 == "True").then_some(n)
    })
    .await;
    let (_, reason, message) = ready_condition(&ready).unwrap();
    assert_eq!(
        (reason.as_str(), message.as_str()),
        ("KubeletReady", "kubelet is posting ready status")
    );
    let st = ready.status.clone().unwrap();
    for c in ["MemoryPressure", "DiskPressure", "PIDPressure"] {
        let cond = st
            .conditions
            .iter()
            .flatten()
            .find(|x| x.type_ == c)
            .expect(c);
        assert_eq!(cond.status, "False", "{c}");
    }
    let cap = st.capacity.clone().unwrap();
    let alloc = st.allocatable.clone().unwrap();
    for r in ["cpu", "memory", "pods", "ephemeral-storage"] {
        assert!(
            cap.contains_key(r) && alloc.contains_key(r),
            "{r} in capacity and allocatable"
        );
    }
    assert_eq!(cap["pods"].0, "110");
    let info = st.node_info.clone().unwrap();
    assert_eq!(info.kubelet_version, "v1.35.0");
    assert!(
        info.container_runtime_version.starts_with("containerd://"),
        "{}",
        info.container_runtime_version
    );
    assert_eq!(info.operating_system, "linux");
    // nodeInfo.swap only where there is swap (the API server refuses a capacity of 0, and
    // the test API server validates it as the real one does, so registration itself
    // fails on a swapless machine if this is wrong).
    let swap_total = std::fs::read_to_string("/proc/meminfo")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("SwapTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<i64>().ok())
        .unwrap_or(0)
        * 1024;
    assert_eq!(
        info.swap.and_then(|s| s.capacity),
        (swap_total > 0).then_some(swap_total)
    );
    assert!(
        !info.boot_id.is_empty() && !info.kernel_version.is_empty() && !info.os_image.is_empty()
    );
    let addrs = st.addresses.clone().unwrap();
    assert!(addrs.iter().any(|a| a.type_ == "InternalIP"), "{addrs:?}");
    assert!(
        addrs
            .iter()
            .any(|a| a.type_ == "Hostname" && a.address == name),
        "{addrs:?}"
    );
    assert_eq!(
        st.daemon_endpoints.unwrap().kubelet_endpoint.unwrap().port,
        10250
    );
    assert!(
        !st.images.clone().unwrap_or_default().is_empty(),
        "images reported"
    );
    // runtimeHandlers and features exactly as the runtime's Status reports them (none
    // from containerd 1.6, in which case upstream leaves both out too).
    let cri_status = support::cri().status().await.expect("CRI Status");
    let handlers: Vec<String> = st
        .runtime_handlers
        .clone()
        .unwrap_or_default()
        .into_iter()
        .map(|h| h.name.unwrap_or_default())
        .collect();
    let expected: Vec<String> = cri_status
        .runtime_handlers
        .iter()
        .map(|h| h.name.clone())
        .collect();
    assert_eq!(handlers, expected);
    assert_eq!(
        st.features
            .clone()
            .and_then(|f| f.supplemental_groups_policy),
        cri_status.features.map(|f| f.supplemental_groups_policy)
    );
    assert!(st.volumes_in_use.is_none(), "no attachable volumes");

    // kubectl agrees.
    let (ok, out, err) = kubectl(server.kubeconfig_path(), &["get", "nodes", "--no-headers"]);
    assert!(ok, "{err}");
    assert!(out.contains(&name) && out.contains(" Ready "), "{out}");

    // The Lease: held by the node, 40 s, owned by the Node, renewed every 10 s.
    let leases: Api<Lease> = Api::namespaced(client.clone(), "kube-node-lease");
    let lease = wait_for("lease created", API_DEADLINE, logs, || async {
        leases.get_opt(&name).await.ok().flatten()
    })
    .await;
    let spec = lease.spec.clone().unwrap();
    assert_eq!(spec.holder_identity.as_deref(), Some(name.as_str()));
    assert_eq!(spec.lease_duration_seconds, Some(40));
    let owner = &lease.metadata.owner_references.clone().unwrap()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.uid.as_str()),
        ("Node", registered.metadata.uid.as_deref().unwrap())
    );
    let first = spec.renew_time.unwrap();
    let renewed = wait_for("lease renewed", Duration::from_secs(25), logs, || async {
        let l = leases.get_opt(&name).await.ok().flatten()?;
        let t = l.spec?.renew_time?;
        (t.0 > first.0).then_some(t)
    })
    .await;
    let gap = renewed.0.as_second() - first.0.as_second();
    assert!((5..=15).contains(&gap), "renewed after {gap}s");

    // The runtime goes away: NotReady again ("container runtime is down").
    proxy.stop();
    let down = wait_for(
        "node NotReady after the runtime left",
        API_DEADLINE,
        logs,
        || async {
            let n = get_node(&client, &name).await?;
            let c = ready_condition(&n)?;
            (c.0 == "False").then_some(c)
        },
    )
    .await;
    assert_eq!(down.1, "KubeletNotReady");
    assert!(down.2.contains("container runtime is down"), "{}", down.2);
    node.stop();
    node.purge_runtime().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adopts_an_existing_node() {
    let server = api_server().await;
    let client = client(&server).await;
    let mut node = Node::new("cluster_adopt");
    let name = node.name.clone();
    let existing: ApiNode = serde_json::from_value(json!({
        "metadata": {"name": name, "labels": {"keep": "me", "kubernetes.io/os": "windows"}},
        "spec": {"podCIDR": "10.244.1.0/24"}
    }))
    .unwrap();
    let created = Api::<ApiNode>::all(client.clone())
        .create(&PostParams::default(), &existing)
        .await
        .unwrap();
    node.start_with(&[&kubeconfig_flag(&server)]);
    let logs = || node.logs();
    let adopted = wait_for("node adopted and Ready", API_DEADLINE, logs, || async {
        let n = get_node(&client, &name).await?;
        (ready_condition(&n)?.0 == "True").then_some(n)
    })
    .await;
    assert_eq!(
        adopted.metadata.uid, created.metadata.uid,
        "the same Node, not a new one"
    );
    let labels = adopted.metadata.labels.unwrap();
    assert_eq!(labels["keep"], "me");
    assert_eq!(
        labels["kubernetes.io/os"], "linux",
        "default labels reconciled"
    );
    assert_eq!(
        adopted.spec.unwrap().pod_cidr.as_deref(),
        Some("10.244.1.0/24")
    );
    let all = Api::<ApiNode>::all(client.clone())
        .list(&Default::default())
        .await
        .unwrap();
    assert_eq!(all.items.len(), 1);
    assert!(node.logs().contains("adopting"), "{}", node.logs());
    node.stop();
    node.purge_runtime().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_bound_pods_reports_status_and_finishes_graceful_deletion() {
    let (server, client, mut node) = cluster_with_node("cluster_pods").await;
    let name = node.name.clone();
    let logs = || node.logs();

    let watch = KubectlWatch::start(
        server.kubeconfig_path(),
        &["get", "pods", "-w", "--no-headers"],
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    // Like the seed's Deployment: nginx + a shell loop sharing an emptyDir.
    let pod = create_bound_pod(&client, &name, json!({
        "metadata": {"name": "hello", "namespace": "default", "labels": {"app": "hello"}},
        "spec": {
            "terminationGracePeriodSeconds": 5,
            "volumes": [{"name": "html", "emptyDir": {}}],
            "containers": [
                {"name": "nginx", "image": "nginx:1.7.9", "volumeMounts": [{"name": "html", "mountPath": "/usr/share/nginx/html"}]},
                {"name": "echo", "image": "busybox", "command": ["/bin/sh", "-c", "while true; do date >> /html/index.html; sleep 1; done"],
                 "volumeMounts": [{"name": "html", "mountPath": "/html"}]}
            ]
        }
    }))
    .await;
    let uid = pod.metadata.uid.clone().unwrap();
    let running = wait_for("pod Running 2/2 with an IP", API_DEADLINE, logs, || async {
        let p = get_pod(&client, "default", "hello").await?;
        (phase(&p) == "Running"
            && running_containers(&p).len() == 2
            && p.status.as_ref()?.pod_ip.is_some())
        .then_some(p)
    })
    .await;
    let status = running.status.clone().unwrap();
    assert!(status.host_ip.is_some());
    let conds = status.conditions.unwrap();
    for c in [
        "Ready",
        "ContainersReady",
        "Initialized",
        "PodScheduled",
        "PodReadyToStartContainers",
    ] {
        let cond = conds
            .iter()
            .find(|x| x.type_ == c)
            .unwrap_or_else(|| panic!("{c} in {conds:?}"));
        assert_eq!(cond.status, "True", "{c}");
    }
    assert_eq!(status.qos_class.as_deref(), Some("BestEffort"));
    // kubectl shows it running with its IP on this node.
    let (ok, out, err) = kubectl(
        server.kubeconfig_path(),
        &["get", "pods", "-o", "wide", "--no-headers"],
    );
    assert!(ok, "{err}");
    assert!(
        out.contains("2/2") && out.contains("Running") && out.contains(&name),
        "{out}"
    );
    // Events with upstream reasons.
    let events = wait_for("Started events", Duration::from_secs(20), logs, || async {
        let e = pod_events(&client, "default", "hello").await;
        (e.iter().filter(|(r, _)| r == "Started").count() >= 2).then_some(e)
    })
    .await;
    let reasons: Vec<&str> = events.iter().map(|(r, _)| r.as_str()).collect();
    for r in ["Pulled", "Created", "Started"] {
        assert!(reasons.contains(&r), "{r} in {events:?}");
    }
    assert!(
        events
            .iter()
            .any(|(r, m)| r == "Created" && m == "Created container: nginx"),
        "{events:?}"
    );
    assert!(
        events
            .iter()
            .any(|(r, m)| r == "Started" && m == "Started container echo"),
        "{events:?}"
    );

    // kubectl delete: graceful, then the kubelet's final delete removes it.
    let started = std::time::Instant::now();
    let (ok, _, err) = kubectl(
        server.kubeconfig_path(),
        &["delete", "pod", "hello", "--wait=true", "--timeout=60s"],
    );
    assert!(ok, "kubectl delete: {err}\n{}", node.logs());
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "deleted in {:?}",
        started.elapsed()
    );
    assert!(get_pod(&client, "default", "hello").await.is_none());
    support::eventually(
        "containers of the deleted pod gone",
        Duration::from_secs(30),
        || async {
            node.containers()
                .await
                .iter()
                .all(|c| c.labels.get("io.kubernetes.pod.uid") != Some(&uid))
                .then_some(())
        },
    )
    .await;
    let events = pod_events(&client, "default", "hello").await;
    assert!(
        events
            .iter()
            .any(|(r, m)| r == "Killing" && m == "Stopping container nginx"),
        "{events:?}"
    );

    let seen = watch.stop();
    let lines: Vec<&str> = seen.lines().filter(|l| l.starts_with("hello ")).collect();
    let statuses: Vec<&str> = lines
        .iter()
        .filter_map(|l| l.split_whitespace().nth(2))
        .collect();
    let pos = |s: &str| statuses.iter().position(|x| *x == s);
    assert!(pos("Pending").is_some(), "{seen}");
    assert!(pos("ContainerCreating").is_some(), "{seen}");
    assert!(pos("Running").is_some(), "{seen}");
    assert!(
        pos("Pending") < pos("ContainerCreating") && pos("ContainerCreating") < pos("Running"),
        "{statuses:?}"
    );
    assert!(statuses.contains(&"Terminating"), "{statuses:?}");
    node.stop();
    node.purge_runtime().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_finished_pod_is_completed_and_not_run_again() {
    let server = api_server().await;
    let client = client(&server).await;
    let mut node = Node::new("cluster_completed");
    node.start_with(&[&kubeconfig_flag(&server)]);
    let name = node.name.clone();
    let watch = KubectlWatch::start(
        server.kubeconfig_path(),
        &["get", "pods", "-w", "--no-headers"],
    );
    create_bound_pod(&client, &name, json!({
        "metadata": {"name": "job", "namespace": "default"},
        "spec": {"restartPolicy": "Never", "containers": [
            {"name": "main", "image": "busybox", "command": ["/bin/sh", "-c", "sleep 2; echo done"]}
        ]}
    }))
    .await;
    let logs = || node.logs();
    wait_for("pod Succeeded", API_DEADLINE, logs, || async {
        let p = get_pod(&client, "default", "job").await?;
        (phase(&p) == "Succeeded").then_some(())
    })
    .await;
    // A restarted kubelet does not run it again.
    node.stop();
    node.start_with(&[&kubeconfig_flag(&server)]);
    tokio::time::sleep(Duration::from_secs(5)).await;
    let p = get_pod(&client, "default", "job").await.unwrap();
    assert_eq!(phase(&p), "Succeeded");
    let restarts: i32 = p
        .status
        .unwrap()
        .container_statuses
        .unwrap()
        .iter()
        .map(|c| c.restart_count)
        .sum();
    assert_eq!(restarts, 0);
    let running = node.running("job").await;
    assert!(running.is_empty(), "{running:?}");
    let seen = watch.stop();
    assert!(
        seen.lines()
            .any(|l| l.starts_with("job ") && l.contains("Completed")),
        "{seen}"
    );
    // Deleting a finished pod is immediate (grace 0 for terminal pods) and cleans up.
    Api::<k8s_openapi::api::core::v1::Pod>::namespaced(client.clone(), "default")
        .delete("job", &DeleteParams::default())
        .await
        .unwrap();
    node.wait_no_sandboxes().await;
    node.stop();
    node.purge_runtime().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_bootstrap_gets_a_client_certificate() {
    use test_apiserver::{Credentials, Options, bootstrap_token};
    let server = api_server_with(Options {
        tls: true,
        auto_approve_csrs: true,
        tokens: vec![bootstrap_token("abcdef", "0123456789abcdef")],
        ..Default::default()
    })
    .await;
    let client = client(&server).await;
    let mut node = Node::new("cluster_bootstrap");
    let bootstrap = node.dir.path().join("bootstrap.kubeconfig");
    server
        .write_kubeconfig(
            &bootstrap,
            &Credentials::Token("abcdef.0123456789abcdef".into()),
        )
        .unwrap();
    let kubeconfig = node.dir.path().join("kubelet.conf");
    let cert_dir = node.dir.path().join("pki");
    node.start_with(&[
        &format!("--bootstrap-kubeconfig={}", bootstrap.display()),
        &format!("--kubeconfig={}", kubeconfig.display()),
        &format!("--cert-dir={}", cert_dir.display()),
    ]);
    let name = node.name.clone();
    let logs = || node.logs();
    wait_for(
        "node Ready with bootstrapped credentials",
        API_DEADLINE,
        logs,
        || async {
            let n = get_node(&client, &name).await?;
            (ready_condition(&n)?.0 == "True").then_some(())
        },
    )
    .await;
    assert!(kubeconfig.exists());
    let current = cert_dir.join("kubelet-client-current.pem");
    let pem = std::fs::read_to_string(&current).unwrap();
    assert!(pem.contains("BEGIN CERTIFICATE") && pem.contains("PRIVATE KEY"));
    // The CSR was made by the bootstrap identity for the kubelet signer...
    let csrs: Api<k8s_openapi::api::certificates::v1::CertificateSigningRequest> =
        Api::all(client.clone());
    let list = csrs.list(&Default::default()).await.unwrap().items;
    assert_eq!(list.len(), 1);
    let spec = &list[0].spec;
    assert_eq!(
        spec.signer_name,
        "kubernetes.io/kube-apiserver-client-kubelet"
    );
    assert_eq!(spec.username.as_deref(), Some("system:bootstrap:abcdef"));
    // ... and the node then talks as system:node:<name>.
    let node_user = format!("system:node:{name}");
    assert!(
        server
            .requests()
            .iter()
            .any(|r| r.user == node_user && r.path.contains("/nodes")),
        "requests made as {node_user}"
    );
    // A restart reuses the certificate (no new CSR).
    node.stop();
    node.start_with(&[
        &format!("--bootstrap-kubeconfig={}", bootstrap.display()),
        &format!("--kubeconfig={}", kubeconfig.display()),
        &format!("--cert-dir={}", cert_dir.display()),
    ]);
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(csrs.list(&Default::default()).await.unwrap().items.len(), 1);
    node.stop();
    node.purge_runtime().await;
}

/// The seed's set-up: `kubectl config set-cluster local --server localhost:8080` (no
/// scheme, no user) against an API server whose plain-HTTP port acts as admin, and
/// `kubelet --register-node --kubeconfig ~/.kube/config`. Also: a pod the node cannot fit
/// is rejected at admission and the rejection is its status.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_insecure_kubeconfig_and_admission_rejection() {
    use test_apiserver::{KubeconfigAuth, Options};
    let server = api_server_with(Options {
        kubeconfig_auth: KubeconfigAuth::None,
        ..Default::default()
    })
    .await;
    let client = client(&server).await;
    let mut node = Node::new("cluster_seed");
    let kubeconfig = node.dir.path().join("config");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nclusters:\n  - cluster:\n      server: {}\n    name: localhost\n\
             contexts:\n  - context:\n      cluster: localhost\n      user: \"\"\n    name: localhost\n\
             current-context: localhost\nkind: Config\npreferences: {{}}\nusers: []\n",
            server.addr()
        ),
    )
    .unwrap();
    node.start_with(&[
        "--register-node",
        &format!("--kubeconfig={}", kubeconfig.display()),
    ]);
    let name = node.name.clone();
    let logs = || node.logs();
    wait_for("node Ready", API_DEADLINE, logs, || async {
        let n = get_node(&client, &name).await?;
        (ready_condition(&n)?.0 == "True").then_some(())
    })
    .await;
    let (ok, out, err) = kubectl(&kubeconfig, &["get", "nodes", "--no-headers"]);
    assert!(ok, "{err}");
    assert!(out.contains(&name) && out.contains("Ready"), "{out}");

    create_bound_pod(&client, &name, json!({
        "metadata": {"name": "too-big", "namespace": "default"},
        "spec": {"containers": [{"name": "main", "image": "busybox", "command": ["sleep", "3600"],
                 "resources": {"requests": {"cpu": "100000"}}}]}
    }))
    .await;
    let rejected = wait_for("pod rejected", API_DEADLINE, logs, || async {
        let p = get_pod(&client, "default", "too-big").await?;
        (phase(&p) == "Failed").then_some(p)
    })
    .await;
    let status = rejected.status.unwrap();
    assert_eq!(status.reason.as_deref(), Some("OutOfcpu"));
    let message = status.message.unwrap_or_default();
    assert!(message.contains("enough resource: cpu"), "{message}");
    assert!(node.running("too-big").await.is_empty());
    node.stop();
    node.purge_runtime().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_certificate_rotates_before_expiry() {
    use test_apiserver::{Credentials, Options, bootstrap_token};
    let server = api_server_with(Options {
        tls: true,
        auto_approve_csrs: true,
        signed_cert_lifetime: Duration::from_secs(20),
        tokens: vec![bootstrap_token("abcdef", "0123456789abcdef")],
        ..Default::default()
    })
    .await;
    let client = client(&server).await;
    let mut node = Node::new("cluster_rotation");
    node.write_config("rotateCertificates: true\n");
    let bootstrap = node.dir.path().join("bootstrap.kubeconfig");
    server
        .write_kubeconfig(
            &bootstrap,
            &Credentials::Token("abcdef.0123456789abcdef".into()),
        )
        .unwrap();
    let kubeconfig = node.dir.path().join("kubelet.conf");
    let cert_dir = node.dir.path().join("pki");
    node.start_with(&[
        &format!("--bootstrap-kubeconfig={}", bootstrap.display()),
        &format!("--kubeconfig={}", kubeconfig.display()),
        &format!("--cert-dir={}", cert_dir.display()),
    ]);
    let name = node.name.clone();
    let logs = || node.logs();
    let csrs: Api<k8s_openapi::api::certificates::v1::CertificateSigningRequest> =
        Api::all(client.clone());
    // A second CSR, made by the node itself, at 70-90% of the 20 s life.
    let renewal = wait_for("rotation CSR", Duration::from_secs(40), logs, || async {
        let list = csrs.list(&Default::default()).await.ok()?.items;
        list.into_iter()
            .find(|c| c.spec.username.as_deref() == Some(format!("system:node:{name}").as_str()))
    })
    .await;
    assert_eq!(
        renewal.spec.signer_name,
        "kubernetes.io/kube-apiserver-client-kubelet"
    );
    // Past the first certificate's expiry the node still renews its Lease.
    tokio::time::sleep(Duration::from_secs(15)).await;
    let leases: Api<Lease> = Api::namespaced(client.clone(), "kube-node-lease");
    let now = k8s_openapi::jiff::Timestamp::from_second(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64,
    )
    .unwrap();
    wait_for(
        "lease renewed with the rotated certificate",
        Duration::from_secs(30),
        logs,
        || async {
            let l = leases.get_opt(&name).await.ok().flatten()?;
            (l.spec?.renew_time?.0 >= now).then_some(())
        },
    )
    .await;
    assert!(node.logs().contains("client certificate rotated"));
    node.stop();
    node.purge_runtime().await;
}

/// Graceful deletion as upstream: the stopped pod's terminal status (phase, every
/// container terminated with its exit code) reaches the API server before the final
/// delete, so a watcher sees it in the last MODIFIED event before DELETED.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_deletion_reports_the_terminal_status_before_the_final_delete() {
    use futures::StreamExt;
    use k8s_openapi::api::core::v1::Pod;
    use kube::api::{WatchEvent, WatchParams};
    let (server, client, mut node) = cluster_with_node("cluster_terminal").await;
    let name = node.name.clone();
    let logs = || node.logs();
    // "polite" exits 0 on SIGTERM; "stubborn" (sleep as PID 1) ignores it and is killed.
    let pod = create_bound_pod(&client, &name, json!({
        "metadata": {"name": "ending", "namespace": "default"},
        "spec": {"terminationGracePeriodSeconds": 2, "containers": [
            {"name": "polite", "image": "busybox", "command": ["/bin/sh", "-c", "trap 'exit 0' TERM; while true; do sleep 0.2; done"]},
            {"name": "stubborn", "image": "busybox", "command": ["sleep", "3600"]}
        ]}
    }))
    .await;
    let uid = pod.metadata.uid.clone().unwrap();
    wait_for("pod Running 2/2", API_DEADLINE, logs, || async {
        let p = get_pod(&client, "default", "ending").await?;
        (running_containers(&p).len() == 2).then_some(())
    })
    .await;

    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let current = pods.get("ending").await.unwrap();
    let rv = current.metadata.resource_version.clone().unwrap();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::<(String, Pod)>::new()));
    let watcher = {
        let seen = seen.clone();
        let pods = pods.clone();
        tokio::spawn(async move {
            let wp = WatchParams::default().fields("metadata.name=ending");
            let mut stream = pods.watch(&wp, &rv).await.expect("watch").boxed();
            while let Some(Ok(event)) = stream.next().await {
                let (kind, pod) = match event {
                    WatchEvent::Added(p) => ("ADDED", p),
                    WatchEvent::Modified(p) => ("MODIFIED", p),
                    WatchEvent::Deleted(p) => ("DELETED", p),
                    _ => continue,
                };
                let done = kind == "DELETED";
                seen.lock().unwrap().push((kind.to_string(), pod));
                if done {
                    return;
                }
            }
        })
    };
    pods.delete("ending", &DeleteParams::default())
        .await
        .unwrap();
    tokio::time::timeout(Duration::from_secs(60), watcher)
        .await
        .unwrap_or_else(|_| panic!("no DELETED event\n{}", node.logs()))
        .unwrap();
    let events = seen.lock().unwrap().clone();
    let kinds: Vec<String> = events
        .iter()
        .map(|(k, p)| format!("{k} {}", phase(p)))
        .collect();
    assert!(
        kinds.last().is_some_and(|k| k.starts_with("DELETED")),
        "{kinds:?}"
    );
    assert!(events.len() >= 2, "{kinds:?}\n{}", node.logs());
    let (_, last) = &events[events.len() - 2];
    let status = last.status.clone().unwrap();
    assert!(
        last.metadata.deletion_timestamp.is_some(),
        "the terminal status is written while the pod is being deleted"
    );
    assert_eq!(
        status.phase.as_deref(),
        Some("Failed"),
        "{kinds:?}\n{status:?}\n{}",
        node.logs()
    );
    let exit = |c: &str| {
        let cs = status
            .container_statuses
            .iter()
            .flatten()
            .find(|s| s.name == c)
            .unwrap_or_else(|| panic!("{c} in {status:?}"));
        assert!(!cs.ready, "{c} not ready");
        let t = cs
            .state
            .as_ref()
            .and_then(|s| s.terminated.clone())
            .unwrap_or_else(|| panic!("{c} terminated in {status:?}"));
        (t.exit_code, t.reason.unwrap_or_default())
    };
    assert_eq!(exit("polite"), (0, "Completed".to_string()));
    assert_eq!(exit("stubborn").0, 137);
    let ready = status
        .conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == "Ready")
        .unwrap();
    assert_eq!(
        (ready.status.as_str(), ready.reason.as_deref()),
        ("False", Some("PodFailed"))
    );
    // The final delete came from the kubelet, with grace 0 and the UID precondition.
    let deletes: Vec<_> = server
        .requests()
        .into_iter()
        .filter(|r| r.method == "DELETE" && r.path.ends_with("/pods/ending"))
        .collect();
    assert_eq!(deletes.len(), 2, "{deletes:?}");
    support::eventually(
        "containers of the deleted pod gone",
        Duration::from_secs(30),
        || async {
            node.containers()
                .await
                .iter()
                .all(|c| c.labels.get("io.kubernetes.pod.uid") != Some(&uid))
                .then_some(())
        },
    )
    .await;
    node.stop();
    node.purge_runtime().await;
}

/// Pods that stop being this node's are stopped: one whose `spec.nodeName` changes
/// underneath (the node's watch sees it leave) and one removed at once (grace 0). Neither
/// is touched in the API afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pods_that_leave_the_node_or_vanish_are_stopped() {
    use test_apiserver::store::{Mutation, ObjKey};
    let (server, client, mut node) = cluster_with_node("cluster_leave").await;
    let name = node.name.clone();
    for pod in ["moved", "gone", "stays"] {
        create_bound_pod(&client, &name, sleeper(pod)).await;
    }
    for pod in ["moved", "gone", "stays"] {
        node.wait_running(pod, &["main"]).await;
    }
    let logs = || node.logs();
    // Running in the API too: once the pod is another node's, this kubelet no longer
    // reports its status, so the phase checked below must already be there.
    wait_phase(&client, "moved", "Running", logs).await;
    // Bound elsewhere behind the kubelet's back (the store, bypassing validation).
    server
        .cluster()
        .store
        .mutate(&ObjKey::new("pods", "default", "moved"), |cur| {
            let mut pod = (**cur.expect("pod moved")).clone();
            pod["spec"]["nodeName"] = json!("another-node");
            Ok(Mutation::Put(pod))
        })
        .unwrap();
    Api::<k8s_openapi::api::core::v1::Pod>::namespaced(client.clone(), "default")
        .delete(
            "gone",
            &DeleteParams {
                grace_period_seconds: Some(0),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    for pod in ["moved", "gone"] {
        support::eventually(
            &format!("containers of {pod} stopped"),
            Duration::from_secs(60),
            || async { node.running(pod).await.is_empty().then_some(()) },
        )
        .await;
    }
    support::eventually(
        "sandboxes of the pods that left removed",
        Duration::from_secs(60),
        || async {
            let left = node.sandboxes().await;
            left.iter()
                .all(|s| s.metadata.as_ref().is_some_and(|m| m.name == "stays"))
                .then_some(())
        },
    )
    .await;
    assert_eq!(node.running("stays").await.len(), 1, "{}", logs());
    // The moved pod is another node's now: not deleted, its status not rewritten.
    let moved = get_pod(&client, "default", "moved")
        .await
        .expect("moved pod kept");
    assert!(moved.metadata.deletion_timestamp.is_none());
    assert_eq!(phase(&moved), "Running");
    assert!(
        !server
            .requests()
            .iter()
            .any(|r| r.method == "DELETE" && r.path.ends_with("/pods/moved")),
        "the kubelet does not delete another node's pod"
    );
    node.stop();
    node.purge_runtime().await;
}

/// Ephemeral containers (`kubectl debug`): added through pods/ephemeralcontainers to a
/// running pod, started in it once, reported in ephemeralContainerStatuses, never
/// restarted after they exit. The API keeps existing ones immutable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ephemeral_containers_run_once_in_the_running_pod() {
    use k8s_openapi::api::core::v1::{ContainerStatus, Pod};
    use kube::api::{Patch, PatchParams};
    let (server, client, mut node) = cluster_with_node("cluster_debug").await;
    let name = node.name.clone();
    let logs = || node.logs();
    let pod = create_bound_pod(
        &client,
        &name,
        json!({
            "metadata": {"name": "debuggee", "namespace": "default"},
            "spec": {"terminationGracePeriodSeconds": 1, "containers": [
                {"name": "main", "image": "busybox", "command": ["sleep", "3600"]}
            ]}
        }),
    )
    .await;
    let uid = pod.metadata.uid.clone().unwrap();
    let main = node.wait_running("debuggee", &["main"]).await["main"]
        .id
        .clone();
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    // As kubectl debug does: a strategic merge patch of the subresource.
    let patch = json!({"spec": {"ephemeralContainers": [{
        "name": "debugger", "image": "busybox", "targetContainerName": "main",
        "command": ["/bin/sh", "-c", "echo debugging $(hostname); sleep 2"]
    }]}});
    let patched = pods
        .patch_subresource(
            "ephemeralcontainers",
            "debuggee",
            &PatchParams::default(),
            &Patch::Strategic(&patch),
        )
        .await
        .expect("patch pods/ephemeralcontainers");
    let added = &patched.spec.unwrap().ephemeral_containers.unwrap()[0];
    assert_eq!(
        added.termination_message_path.as_deref(),
        Some("/dev/termination-log"),
        "defaults applied"
    );
    let ephemeral = |p: &Pod, n: &str| -> Option<ContainerStatus> {
        p.status
            .as_ref()?
            .ephemeral_container_statuses
            .as_ref()?
            .iter()
            .find(|c| c.name == n)
            .cloned()
    };
    let running = wait_for("debugger reported running", API_DEADLINE, logs, || async {
        let p = get_pod(&client, "default", "debuggee").await?;
        let s = ephemeral(&p, "debugger")?;
        s.state.as_ref()?.running.as_ref()?;
        Some(s)
    })
    .await;
    assert!(running.container_id.is_some());
    let finished = wait_for("debugger terminated", API_DEADLINE, logs, || async {
        let p = get_pod(&client, "default", "debuggee").await?;
        let s = ephemeral(&p, "debugger")?;
        s.state.as_ref()?.terminated.as_ref()?;
        Some(s)
    })
    .await;
    assert_eq!(
        finished.state.unwrap().terminated.unwrap().exit_code,
        0,
        "{}",
        logs()
    );
    // It ran inside the pod (same sandbox, same hostname) and its output is logged.
    let in_cri: Vec<_> = node
        .containers()
        .await
        .into_iter()
        .filter(|c| c.labels.get("io.kubernetes.pod.uid") == Some(&uid))
        .collect();
    let debugger: Vec<_> = in_cri
        .iter()
        .filter(|c| {
            c.labels
                .get("io.kubernetes.container.name")
                .map(String::as_str)
                == Some("debugger")
        })
        .collect();
    assert_eq!(debugger.len(), 1, "{in_cri:?}");
    let main_sandbox = in_cri
        .iter()
        .find(|c| c.id == main)
        .map(|c| c.pod_sandbox_id.clone())
        .unwrap();
    assert_eq!(debugger[0].pod_sandbox_id, main_sandbox);
    let log = container_log(&node.logs_dir, "default", "debuggee", &uid, "debugger");
    assert!(log.contains("debugging debuggee"), "{log}");
    // Never restarted: still one debugger container, the pod keeps running.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let p = get_pod(&client, "default", "debuggee").await.unwrap();
    let s = ephemeral(&p, "debugger").unwrap();
    assert_eq!(s.restart_count, 0);
    assert!(s.state.unwrap().terminated.is_some());
    assert_eq!(phase(&p), "Running");
    let count = node
        .containers()
        .await
        .iter()
        .filter(|c| {
            c.labels.get("io.kubernetes.pod.uid") == Some(&uid)
                && c.labels
                    .get("io.kubernetes.container.name")
                    .map(String::as_str)
                    == Some("debugger")
        })
        .count();
    assert_eq!(count, 1, "the ephemeral container is not restarted");
    assert_eq!(node.running("debuggee").await["main"].id, main);

    // The API rules: existing ones may not change, the main resource may not add any.
    let change =
        json!({"spec": {"ephemeralContainers": [{"name": "debugger", "image": "alpine"}]}});
    let err = pods
        .patch_subresource(
            "ephemeralcontainers",
            "debuggee",
            &PatchParams::default(),
            &Patch::Strategic(&change),
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("may not be changed"), "{err}");
    let sneak = json!({"spec": {"ephemeralContainers": [{"name": "other", "image": "busybox"}]}});
    assert!(
        pods.patch(
            "debuggee",
            &PatchParams::default(),
            &Patch::Strategic(&sneak)
        )
        .await
        .is_err(),
        "pod updates may not add ephemeral containers"
    );

    // kubectl debug itself (no attach): a second ephemeral container.
    let (ok, out, err) = kubectl(
        server.kubeconfig_path(),
        &[
            "debug",
            "debuggee",
            "--image=busybox",
            "--container=kdebug",
            "--profile=general",
            "--",
            "/bin/sh",
            "-c",
            "echo from-kubectl-debug",
        ],
    );
    assert!(ok, "kubectl debug: {out}\n{err}");
    let done = wait_for("kdebug terminated", API_DEADLINE, logs, || async {
        let p = get_pod(&client, "default", "debuggee").await?;
        let s = ephemeral(&p, "kdebug")?;
        s.state.as_ref()?.terminated.as_ref()?;
        Some(s)
    })
    .await;
    assert_eq!(done.state.unwrap().terminated.unwrap().exit_code, 0);
    let log = container_log(&node.logs_dir, "default", "debuggee", &uid, "kdebug");
    assert!(log.contains("from-kubectl-debug"), "{log}");
    node.stop();
    node.purge_runtime().await;
}

/// GET http://127.0.0.1:`port``path`: (status code, body).
fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    let code = out.split_whitespace().nth(1)?.parse().ok()?;
    let body = out.split_once("\r\n\r\n").map(|(_, b)| b.to_string())?;
    Some((code, body))
}

/// A Node the API server refuses as Invalid (here: two taints with the same key and
/// effect, which the configuration accepts and kube-apiserver does not): the refusal is
/// logged once with the field and message however often registration is retried, and
/// `/healthz` fails naming it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_the_api_server_refuses_is_reported_once_and_in_healthz() {
    let server = api_server().await;
    let mut node = Node::new("cluster_refused");
    node.write_config(
        "registerWithTaints:\n- {key: dedicated, effect: NoSchedule}\n- {key: dedicated, value: x, effect: NoSchedule}\n",
    );
    let port = free_port();
    node.start_with(&[&kubeconfig_flag(&server), &format!("--healthz-port={port}")]);
    let logs = || node.logs();
    let body = wait_for("healthz names the refusal", API_DEADLINE, logs, || async {
        let (code, body) = http_get(port, "/healthz?verbose")?;
        (code == 500 && body.contains("[-]apiserver-writes failed")).then_some(body)
    })
    .await;
    let expected = format!(
        "[-]apiserver-writes failed: register node {} refused as invalid by the API server (",
        node.name
    );
    assert!(body.contains(&expected), "{body}");
    assert!(
        body.contains("metadata.taints[1]: Duplicate value: {\"Key\":\"dedicated\",\"Value\":\"x\",\"Effect\":\"NoSchedule\",\"TimeAdded\":null}: taints must be unique by key and effect pair"),
        "{body}"
    );
    // Registration goes on being retried, but the refusal is logged once.
    wait_for(
        "three registration attempts",
        API_DEADLINE,
        logs,
        || async {
            let posts = server
                .requests()
                .iter()
                .filter(|r| r.method == "POST" && r.path == "/api/v1/nodes" && r.code == 422)
                .count();
            (posts >= 3).then_some(())
        },
    )
    .await;
    let log = node.logs();
    assert_eq!(
        log.matches("refused the write as invalid").count(),
        1,
        "{log}"
    );
    assert!(log.contains("metadata.taints[1]: Duplicate value"), "{log}");
    assert!(!log.contains("unable to register node"), "{log}");
    node.stop();
}
