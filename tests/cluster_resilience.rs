//! Cluster mode when things go wrong or change underneath: mirror pods for static pods
//! (created, recreated when deleted, replaced when the manifest changes, removed with the
//! static pod), the API server going away and coming back, and the pod watch resumed
//! after its history was compacted (410 Gone → relist).

#[path = "support/cluster.rs"]
mod cluster_support;
mod support;

use std::time::Duration;

use cluster_support::*;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams};
use serde_json::json;
use support::{Node, busybox_pod};

fn mirror_of(pods: &[Pod], name: &str) -> Option<Pod> {
    pods.iter()
        .find(|p| {
            p.metadata.name.as_deref() == Some(name)
                && p.metadata
                    .annotations
                    .as_ref()
                    .is_some_and(|a| a.contains_key("kubernetes.io/config.mirror"))
        })
        .cloned()
}

async fn all_pods(client: &kube::Client) -> Vec<Pod> {
    Api::<Pod>::all(client.clone())
        .list(&Default::default())
        .await
        .map(|l| l.items)
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mirror_pods_follow_static_pods() {
    let server = api_server().await;
    let client = client(&server).await;
    let mut node = Node::new("cluster_mirror");
    node.write_manifest("web.yaml", &busybox_pod("web", "sleep 3600", ""));
    // The kubelet acts as the node (`system:node:<name>` in `system:nodes`), so the API
    // server's NodeRestriction rules for the mirror pods it creates apply.
    let token = format!("node-token-{}", node.name);
    server.add_token(
        &token,
        test_apiserver::UserInfo::new(&format!("system:node:{}", node.name), &["system:nodes"]),
    );
    let kubeconfig = node.dir.path().join("node.kubeconfig");
    server
        .write_kubeconfig(&kubeconfig, &test_apiserver::Credentials::Token(token))
        .unwrap();
    node.start_with(&[&format!("--kubeconfig={}", kubeconfig.display())]);
    let pod_name = node.pod_name("web");
    let logs = || node.logs();
    let mirror = wait_for("mirror pod Running", API_DEADLINE, logs, || async {
        let m = mirror_of(&all_pods(&client).await, &pod_name)?;
        (phase(&m) == "Running").then_some(m)
    })
    .await;
    let ann = mirror.metadata.annotations.clone().unwrap();
    assert_eq!(
        ann["kubernetes.io/config.mirror"],
        ann["kubernetes.io/config.hash"]
    );
    assert_eq!(ann["kubernetes.io/config.source"], "file");
    assert_eq!(
        mirror.spec.as_ref().unwrap().node_name.as_deref(),
        Some(node.name.as_str())
    );
    let owner = &mirror.metadata.owner_references.clone().unwrap()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.name.as_str(), owner.controller),
        ("Node", node.name.as_str(), Some(true))
    );
    let container_id = node.wait_running(&pod_name, &["main"]).await["main"]
        .id
        .clone();

    // Events of a static pod: involvedObject is the pod by name with the static pod's
    // UID (= the mirror annotation), as upstream; `kubectl describe` of the mirror pod
    // finds them through that annotation.
    let events = wait_for("static pod events", API_DEADLINE, logs, || async {
        use k8s_openapi::api::core::v1::Event;
        let lp =
            kube::api::ListParams::default().fields(&format!("involvedObject.name={pod_name}"));
        let list = Api::<Event>::namespaced(client.clone(), "default")
            .list(&lp)
            .await
            .ok()?
            .items;
        list.iter()
            .any(|e| e.reason.as_deref() == Some("Started"))
            .then_some(list)
    })
    .await;
    for e in &events {
        let obj = &e.involved_object;
        assert_eq!(obj.kind.as_deref(), Some("Pod"));
        assert_eq!(obj.namespace.as_deref(), Some("default"));
        assert_eq!(
            obj.uid.as_deref(),
            Some(ann["kubernetes.io/config.mirror"].as_str()),
            "event {:?} refers to the static pod UID",
            e.reason
        );
        assert_ne!(obj.uid, mirror.metadata.uid);
    }
    let (ok, out, err) = kubectl(server.kubeconfig_path(), &["describe", "pod", &pod_name]);
    assert!(ok, "{err}");
    assert!(
        out.contains("Started") && out.contains("Started container main"),
        "kubectl describe shows the static pod's events:\n{out}"
    );

    // Deleted by hand: recreated (new UID); the static pod keeps running.
    let (ok, _, err) = kubectl(
        server.kubeconfig_path(),
        &["delete", "pod", &pod_name, "--wait=false"],
    );
    assert!(ok, "{err}");
    let old_uid = mirror.metadata.uid.clone();
    wait_for("mirror pod recreated", API_DEADLINE, logs, || async {
        let m = mirror_of(&all_pods(&client).await, &pod_name)?;
        (m.metadata.uid != old_uid && m.metadata.deletion_timestamp.is_none()).then_some(())
    })
    .await;
    assert_eq!(
        node.wait_running(&pod_name, &["main"]).await["main"].id,
        container_id,
        "not restarted"
    );

    // New manifest content: a new hash, a new mirror.
    node.write_manifest("web.yaml", &busybox_pod("web", "sleep 3601", ""));
    let old_hash = ann["kubernetes.io/config.hash"].clone();
    wait_for(
        "mirror pod of the new version",
        API_DEADLINE,
        logs,
        || async {
            let m = mirror_of(&all_pods(&client).await, &pod_name)?;
            let a = m.metadata.annotations?;
            (a["kubernetes.io/config.mirror"] != old_hash
                && a["kubernetes.io/config.mirror"] == a["kubernetes.io/config.hash"])
                .then_some(())
        },
    )
    .await;

    // Static pod removed: mirror removed.
    node.remove_manifest("web.yaml");
    wait_for("mirror pod removed", API_DEADLINE, logs, || async {
        mirror_of(&all_pods(&client).await, &pod_name)
            .is_none()
            .then_some(())
    })
    .await;
    node.wait_no_sandboxes().await;
    node.stop();
    node.purge_runtime().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_server_outage_keeps_pods_running_and_resyncs() {
    let server = api_server().await;
    let client = client(&server).await;
    let mut node = Node::new("cluster_outage");
    node.write_manifest("static.yaml", &busybox_pod("static", "sleep 3600", ""));
    node.start_with(&[&kubeconfig_flag(&server)]);
    let name = node.name.clone();
    let log_file = node.log_path();
    let logs = move || std::fs::read_to_string(&log_file).unwrap_or_default();
    create_bound_pod(&client, &name, sleeper("api-pod")).await;
    wait_phase(&client, "api-pod", "Running", logs.clone()).await;
    let static_name = node.pod_name("static");
    let static_id = node.wait_running(&static_name, &["main"]).await["main"]
        .id
        .clone();
    let api_id = node.wait_running("api-pod", &["main"]).await["main"]
        .id
        .clone();

    server.go_offline().await;
    tokio::time::sleep(Duration::from_secs(15)).await;
    assert!(node.is_running(), "the kubelet survives the outage");
    assert_eq!(
        node.wait_running(&static_name, &["main"]).await["main"].id,
        static_id
    );
    assert_eq!(
        node.wait_running("api-pod", &["main"]).await["main"].id,
        api_id
    );

    server.go_online().await.expect("API server back");
    // Liveness resumes through the Lease (the status itself is only patched on change or
    // every nodeStatusReportFrequency, as upstream).
    let leases: Api<k8s_openapi::api::coordination::v1::Lease> =
        Api::namespaced(client.clone(), "kube-node-lease");
    let back_at = k8s_openapi::jiff::Timestamp::from_second(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64,
    )
    .unwrap();
    wait_for(
        "lease renewed after the outage",
        API_DEADLINE,
        logs.clone(),
        || async {
            let l = leases.get_opt(&name).await.ok().flatten()?;
            (l.spec?.renew_time?.0 >= back_at).then_some(())
        },
    )
    .await;
    let n = get_node(&client, &name).await.unwrap();
    assert_eq!(ready_condition(&n).unwrap().0, "True");
    // The watch resumed: a deletion made now is carried out.
    Api::<Pod>::namespaced(client.clone(), "default")
        .delete("api-pod", &DeleteParams::default())
        .await
        .unwrap();
    wait_for(
        "API pod deleted after the outage",
        API_DEADLINE,
        logs,
        || async {
            get_pod(&client, "default", "api-pod")
                .await
                .is_none()
                .then_some(())
        },
    )
    .await;
    assert_eq!(
        node.wait_running(&static_name, &["main"]).await["main"].id,
        static_id
    );
    node.remove_manifest("static.yaml");
    node.wait_no_sandboxes().await;
    node.stop();
    node.purge_runtime().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pod_watch_relists_after_410_gone() {
    let server = api_server().await;
    let client = client(&server).await;
    let mut node = Node::new("cluster_410");
    node.start_with(&[&kubeconfig_flag(&server)]);
    let name = node.name.clone();
    let logs = || node.logs();
    create_bound_pod(&client, &name, sleeper("first")).await;
    wait_phase(&client, "first", "Running", logs).await;
    let lists_before = pod_lists(&server);
    // While the kubelet is cut off, a pod is bound and the history forgotten: resuming
    // from its old resourceVersion gets 410 Gone, so it must list again.
    server.go_offline().await;
    server
        .create("", "v1", "pods", "default", json!({
            "metadata": {"name": "second", "namespace": "default"},
            "spec": {"nodeName": name, "terminationGracePeriodSeconds": 1,
                     "containers": [{"name": "main", "image": "busybox", "command": ["sleep", "3600"]}]}
        }))
        .expect("create while offline");
    server.compact(None);
    server.go_online().await.expect("back online");
    wait_phase(&client, "second", "Running", logs).await;
    assert!(
        pod_lists(&server) > lists_before,
        "the kubelet listed pods again"
    );
    let first = node.wait_running("first", &["main"]).await;
    assert_eq!(first.len(), 1, "the first pod was not disturbed");
    // A pod that vanishes (force delete, no graceful deletion) is stopped and cleaned up.
    Api::<Pod>::namespaced(client.clone(), "default")
        .delete(
            "second",
            &DeleteParams {
                grace_period_seconds: Some(0),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    support::eventually("vanished pod stopped", Duration::from_secs(60), || async {
        node.running("second").await.is_empty().then_some(())
    })
    .await;
    assert_eq!(node.wait_running("first", &["main"]).await.len(), 1);
    node.stop();
    node.purge_runtime().await;
}

/// How many LISTs of the node's pods the server answered.
fn pod_lists(server: &test_apiserver::Server) -> usize {
    server
        .requests()
        .iter()
        .filter(|r| {
            let dbg = format!("{r:?}");
            r.method == "GET"
                && dbg.contains("/api/v1/pods")
                && dbg.contains("spec.nodeName")
                && !dbg.contains("watch=")
        })
        .count()
}
