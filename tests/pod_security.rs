//! Pod fields that must reach the runtime exactly as upstream sends them, or be refused
//! at admission (issue 15): RuntimeClass handlers, SELinux options, supplemental groups,
//! AppArmor, seccomp Localhost, user namespaces, procMount. Checked against the real
//! containerd (its verbose status echoes the CRI config it was given).

#[path = "support/cluster.rs"]
mod cluster_support;
mod support;

use k8s_openapi::api::node::v1::RuntimeClass;
use kube::api::{Api, DeleteParams, PostParams};
use kubelet_core::runtime::labels;
use support::*;

/// The CRI sandbox id and the verbose info of pod `pod_name`'s sandbox.
async fn sandbox_of(node: &Node, pod_name: &str) -> (String, serde_json::Value) {
    let sb = node
        .sandboxes()
        .await
        .into_iter()
        .find(|s| s.labels.get(labels::POD_NAME).map(String::as_str) == Some(pod_name))
        .unwrap_or_else(|| panic!("no sandbox for {pod_name}"));
    let info = cri()
        .pod_sandbox_info(&sb.id)
        .await
        .expect("PodSandboxStatus");
    let info = serde_json::from_str(&info["info"]).expect("sandbox info is JSON");
    (sb.id, info)
}

/// The CRI config containerd received for container `id` (verbose ContainerStatus).
async fn container_config(id: &str) -> serde_json::Value {
    let info = cri().container_info(id).await.expect("ContainerStatus");
    let info: serde_json::Value = serde_json::from_str(&info["info"]).expect("info is JSON");
    info["config"].clone()
}

async fn runtime_handler_of(sandbox_id: &str) -> String {
    cri()
        .pod_sandbox_status(sandbox_id)
        .await
        .expect("PodSandboxStatus")
        .runtime_handler
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn standalone_runtime_class_handlers_reach_the_sandbox_or_refuse_the_pod() {
    let mut node = Node::new("rc-standalone");
    node.write_manifest(
        "alt.yaml",
        &busybox_pod("alt", "sleep 3600", "  runtimeClassName: alt\n"),
    );
    node.write_manifest("plain.yaml", &busybox_pod("plain", "sleep 3600", ""));
    node.write_manifest(
        "unmapped.yaml",
        &busybox_pod("unmapped", "sleep 3600", "  runtimeClassName: gvisor\n"),
    );
    node.write_manifest(
        "bogus.yaml",
        &busybox_pod("bogus", "sleep 3600", "  runtimeClassName: bogus\n"),
    );
    node.start_with(&["--runtime-class-handlers=alt=runc-alt,bogus=no-such-handler"]);
    node.wait_running(&node.pod_name("alt"), &["main"]).await;
    node.wait_running(&node.pod_name("plain"), &["main"]).await;
    let (alt, _) = sandbox_of(&node, &node.pod_name("alt")).await;
    assert_eq!(runtime_handler_of(&alt).await, "runc-alt");
    let (plain, _) = sandbox_of(&node, &node.pod_name("plain")).await;
    assert_eq!(
        runtime_handler_of(&plain).await,
        "",
        "no class: the default handler"
    );
    // A class the flag does not map is refused at admission, never run with the default.
    let logs = eventually(
        "unmapped and unknown handlers refused",
        DEADLINE,
        || async {
            let l = node.logs();
            (l.contains("RuntimeClassNotConfigured")
                && l.contains("no runtime for \"no-such-handler\" is configured"))
            .then_some(l)
        },
    )
    .await;
    assert!(
        logs.contains(
            "RuntimeClass \"gvisor\" cannot be resolved without an API server: map it to a CRI runtime handler with --runtime-class-handlers=gvisor=HANDLER"
        ),
        "{logs}"
    );
    // A handler the runtime does not know fails the sandbox with the runtime's error, as
    // upstream's FailedCreatePodSandBox event says it.
    assert!(
        logs.contains("Failed to create pod sandbox: rpc error: code = Unknown desc = failed to get sandbox runtime: no runtime for \"no-such-handler\" is configured"),
        "{logs}"
    );
    let names: Vec<String> = node
        .sandboxes()
        .await
        .iter()
        .filter_map(|s| s.labels.get(labels::POD_NAME).cloned())
        .collect();
    assert!(
        !names.contains(&node.pod_name("unmapped")),
        "an unmapped RuntimeClass never runs: {names:?}"
    );
    node.stop();
    node.purge_runtime().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_runtime_class_is_resolved_through_the_api() {
    use cluster_support::*;
    let server = api_server().await;
    let client = client(&server).await;
    let classes: Api<RuntimeClass> = Api::all(client.clone());
    let pods = Api::<k8s_openapi::api::core::v1::Pod>::namespaced(client.clone(), "default");
    let class = |name: &str, handler: &str| -> RuntimeClass {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": name},
            "handler": handler,
            "overhead": {"podFixed": {"cpu": "250m", "memory": "32Mi"}},
        }))
        .unwrap()
    };
    for name in ["alt", "late"] {
        classes
            .create(&PostParams::default(), &class(name, "runc-alt"))
            .await
            .expect("create RuntimeClass");
    }
    // The pods are bound before the kubelet starts, so the class "late" can be deleted
    // after the API server admitted its pod and before the kubelet looks it up.
    let mut node = Node::new("rc-cluster");
    let with_class = |name: &str, class: &str| {
        let mut p = sleeper(name);
        p["spec"]["runtimeClassName"] = class.into();
        p
    };
    let created = create_bound_pod(&client, &node.name, with_class("alt", "alt")).await;
    // The API server's RuntimeClass admission put the class's overhead in the pod.
    let overhead = created.spec.as_ref().unwrap().overhead.clone().unwrap();
    assert_eq!(overhead["cpu"].0, "250m");
    create_bound_pod(&client, &node.name, with_class("late", "late")).await;
    classes
        .delete("late", &DeleteParams::default())
        .await
        .expect("delete RuntimeClass late");
    // A class that does not exist at all is refused by the API server's admission.
    let mut refused = with_class("refused", "missing");
    refused["spec"]["nodeName"] = node.name.clone().into();
    let err = pods
        .create(
            &PostParams::default(),
            &serde_json::from_value(refused).unwrap(),
        )
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("pod rejected: RuntimeClass \"missing\" not found"),
        "{err}"
    );
    node.start_with(&[&kubeconfig_flag(&server)]);
    wait_phase(&client, "alt", "Running", || node.logs()).await;
    let (sandbox, _) = sandbox_of(&node, "alt").await;
    assert_eq!(runtime_handler_of(&sandbox).await, "runc-alt");
    // The kubelet cannot resolve "late": upstream's event, and the pod never runs.
    wait_for("FailedCreatePodSandBox for late", API_DEADLINE, || node.logs(), || async {
        pod_events(&client, "default", "late")
            .await
            .into_iter()
            .find(|(reason, message)| {
                reason == "FailedCreatePodSandBox"
                    && message
                        == "Failed to create pod sandbox: runtimeclasses.node.k8s.io \"late\" not found"
            })
    })
    .await;
    let late = get_pod(&client, "default", "late").await.unwrap();
    assert_eq!(phase(&late), "Pending");
    assert_eq!(
        waiting_reason(&late, "main").map(|(r, _)| r).as_deref(),
        Some("ContainerCreating")
    );
    node.stop();
    node.purge_runtime().await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn security_fields_reach_the_runtime_as_upstream_sends_them() {
    let mut node = Node::new("secfields");
    let seccomp_dir = node.root_dir.join("seccomp");
    std::fs::create_dir_all(&seccomp_dir).unwrap();
    std::fs::write(
        seccomp_dir.join("allow.json"),
        r#"{"defaultAction": "SCMP_ACT_ALLOW"}"#,
    )
    .unwrap();
    node.write_manifest(
        "fields.yaml",
        r#"apiVersion: v1
kind: Pod
metadata: {name: fields}
spec:
  terminationGracePeriodSeconds: 2
  securityContext:
    fsGroup: 2000
    supplementalGroups: [4000, 5000]
    supplementalGroupsPolicy: Merge
    seLinuxOptions: {level: "s0:c123,c456"}
    appArmorProfile: {type: Unconfined}
    seccompProfile: {type: Localhost, localhostProfile: allow.json}
  containers:
  - name: main
    image: busybox
    command: ["sleep", "3600"]
    securityContext:
      seLinuxOptions: {type: "container_t", level: "s0:c1,c2"}
"#,
    );
    node.start();
    let main = node.wait_running(&node.pod_name("fields"), &["main"]).await["main"].clone();
    let config = container_config(&main.id).await;
    let sc = &config["linux"]["security_context"];
    assert_eq!(
        sc["supplemental_groups"],
        serde_json::json!([2000, 4000, 5000]),
        "fsGroup first, then supplementalGroups: {sc}"
    );
    assert_eq!(sc["selinux_options"]["type"], "container_t", "{sc}");
    assert_eq!(sc["selinux_options"]["level"], "s0:c1,c2", "{sc}");
    assert_eq!(
        sc["seccomp"]["localhost_ref"],
        node.root_dir
            .join("seccomp/allow.json")
            .to_string_lossy()
            .as_ref(),
        "{sc}"
    );
    assert_eq!(sc["apparmor_profile"], "unconfined", "{sc}");
    let (_, sandbox) = sandbox_of(&node, &node.pod_name("fields")).await;
    let ssc = &sandbox["config"]["linux"]["security_context"];
    assert_eq!(ssc["selinux_options"]["level"], "s0:c123,c456", "{ssc}");
    assert_eq!(
        ssc["supplemental_groups"],
        serde_json::json!([2000, 4000, 5000]),
        "{ssc}"
    );
    node.stop();
    node.purge_runtime().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn security_fields_the_node_cannot_honour_are_refused_at_admission() {
    let mut node = Node::new("secrefuse");
    let apparmor = kubelet_core::runtime::security::apparmor_enabled_on_host();
    node.write_manifest(
        "apparmor.yaml",
        &busybox_pod(
            "apparmor",
            "sleep 3600",
            "  securityContext:\n    appArmorProfile: {type: RuntimeDefault}\n",
        ),
    );
    node.write_manifest(
        "annotated.yaml",
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: annotated\n  annotations:\n    container.apparmor.security.beta.kubernetes.io/main: runtime/default\nspec:\n  containers:\n  - {name: main, image: busybox, command: [sleep, \"3600\"]}\n",
    );
    node.write_manifest(
        "userns.yaml",
        &busybox_pod("userns", "sleep 3600", "  hostUsers: false\n"),
    );
    node.write_manifest(
        "strict.yaml",
        &busybox_pod(
            "strict",
            "sleep 3600",
            "  securityContext:\n    supplementalGroupsPolicy: Strict\n",
        ),
    );
    node.write_manifest(
        "unmasked.yaml",
        "apiVersion: v1\nkind: Pod\nmetadata: {name: unmasked}\nspec:\n  containers:\n  - name: main\n    image: busybox\n    securityContext: {procMount: Unmasked}\n",
    );
    node.start();
    let logs = eventually("refusals logged", DEADLINE, || async {
        let l = node.logs();
        (l.contains("UserNamespacesNotSupported")
            && l.contains("SupplementalGroupsPolicyNotSupported")
            && l.contains("must be false to use `Unmasked`")
            && (apparmor || l.matches("Cannot enforce AppArmor").count() >= 2))
            .then_some(l)
    })
    .await;
    if !apparmor {
        assert!(
            logs.contains("Cannot enforce AppArmor: AppArmor is not enabled on the host"),
            "{logs}"
        );
    }
    assert!(
        logs.contains("SupplementalGroupsPolicy=Strict is not supported in this node"),
        "{logs}"
    );
    let started: Vec<String> = node
        .sandboxes()
        .await
        .iter()
        .filter_map(|s| s.labels.get(labels::POD_NAME).cloned())
        .collect();
    for refused in ["userns", "strict", "unmasked"] {
        assert!(
            !started.contains(&node.pod_name(refused)),
            "{refused} must never run: {started:?}"
        );
    }
    node.stop();
    node.purge_runtime().await;
}
