//! Validation over HTTP as kube-apiserver v1.36 answers it: the Node a kubelet created
//! with `nodeInfo.swap.capacity: 0` on a swapless machine (the real server refused it
//! with exactly this Status), Node status updates, Leases, Events, pod status updates and
//! the NodeRestriction rules for mirror pods a node creates.

mod common;

use common::*;
use serde_json::{Value, json};
use test_apiserver::{Options, Server, UserInfo};

const NODE_TOKEN: &str = "node-vm-token";

async fn server() -> Server {
    let s = Server::start(Options::default()).await.expect("start");
    s.add_token(
        NODE_TOKEN,
        UserInfo::new("system:node:vm", &["system:nodes"]),
    );
    s
}

fn node(swap: Option<i64>) -> Value {
    let mut n = json!({
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": "vm", "labels": {"kubernetes.io/hostname": "vm"},
            "annotations": {"volumes.kubernetes.io/controller-managed-attach-detach": "true"}},
        "status": {
            "capacity": {"cpu": "2", "memory": "4026Mi", "pods": "110"},
            "allocatable": {"cpu": "2", "memory": "3926Mi", "pods": "110"},
            "addresses": [{"type": "InternalIP", "address": "10.0.0.5"}, {"type": "Hostname", "address": "vm"}],
            "nodeInfo": {"machineID": "m", "systemUUID": "s", "bootID": "b", "kernelVersion": "6.1.0",
                "osImage": "Debian GNU/Linux 12 (bookworm)", "containerRuntimeVersion": "containerd://1.6.20",
                "kubeletVersion": "v1.35.0", "kubeProxyVersion": "", "operatingSystem": "linux", "architecture": "amd64"}
        }
    });
    if let Some(c) = swap {
        n["status"]["nodeInfo"]["swap"] = json!({"capacity": c});
    }
    n
}

fn single_cause(body: &Value) -> (String, String, String) {
    let causes = body["details"]["causes"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(causes.len(), 1, "{body}");
    let c = &causes[0];
    (
        c["reason"].as_str().unwrap_or("").into(),
        c["field"].as_str().unwrap_or("").into(),
        c["message"].as_str().unwrap_or("").into(),
    )
}

#[tokio::test]
async fn a_zero_swap_capacity_is_refused_as_the_real_server_does() {
    let s = server().await;
    let a = s.addr();
    let r = call_as(
        a,
        Some(NODE_TOKEN),
        "POST",
        "/api/v1/nodes",
        Some(&node(Some(0))),
        "application/json",
    )
    .await;
    assert_eq!(r.code, 422, "{}", r.body);
    // The Status kube-apiserver v1.36.2 answered (checked against it by hand).
    assert_eq!(
        r.body,
        json!({
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": "Node \"vm\" is invalid: metadata.nodeSwapStatus.capacity: Invalid value: 0: must be greater than zero",
            "reason": "Invalid",
            "details": {"name": "vm", "kind": "Node", "causes": [{
                "reason": "FieldValueInvalid",
                "message": "Invalid value: 0: must be greater than zero",
                "field": "metadata.nodeSwapStatus.capacity"}]},
            "code": 422
        })
    );
    // Without swap status (what upstream sends on a swapless machine), or with a real
    // capacity, it is created.
    let ok = call_as(
        a,
        Some(NODE_TOKEN),
        "POST",
        "/api/v1/nodes",
        Some(&node(None)),
        "application/json",
    )
    .await;
    assert_eq!(ok.code, 201, "{}", ok.body);
    s.stop().await;
    let s = server().await;
    let with_swap = post(s.addr(), "/api/v1/nodes", &node(Some(1 << 30))).await;
    assert_eq!(with_swap.code, 201, "{}", with_swap.body);
}

#[tokio::test]
async fn node_status_updates_are_validated() {
    let s = server().await;
    let a = s.addr();
    assert_eq!(post(a, "/api/v1/nodes", &node(None)).await.code, 201);
    let dup = json!({"status": {"addresses": [
        {"type": "InternalIP", "address": "10.0.0.5"}, {"type": "InternalIP", "address": "10.0.0.5"}]}});
    let r = patch(
        a,
        "/api/v1/nodes/vm/status",
        &dup,
        "application/merge-patch+json",
    )
    .await;
    assert_eq!(r.code, 422, "{}", r.body);
    assert_eq!(
        single_cause(&r.body),
        (
            "FieldValueDuplicate".into(),
            "status.addresses[1]".into(),
            "Duplicate value: {\"Type\":\"InternalIP\",\"Address\":\"10.0.0.5\"}".into()
        )
    );
    let neg = json!({"status": {"allocatable": {"memory": "-1Mi"}}});
    let r = patch(
        a,
        "/api/v1/nodes/vm/status",
        &neg,
        "application/merge-patch+json",
    )
    .await;
    assert_eq!(r.code, 422, "{}", r.body);
    assert_eq!(
        r.body["message"],
        "Node \"vm\" is invalid: status.allocatable.memory: Invalid value: \"-1Mi\": must be greater than or equal to 0"
    );
    // A status update is not checked for swap (only create and spec updates are).
    let swap0 = json!({"status": {"nodeInfo": {"swap": {"capacity": 0}}}});
    let r = patch(
        a,
        "/api/v1/nodes/vm/status",
        &swap0,
        "application/merge-patch+json",
    )
    .await;
    assert_eq!(r.code, 200, "{}", r.body);
    // ... but a spec update then is, as ValidateNode runs on the stored status.
    let label = json!({"metadata": {"labels": {"x": "y"}}});
    let r = patch(
        a,
        "/api/v1/nodes/vm",
        &label,
        "application/merge-patch+json",
    )
    .await;
    assert_eq!(r.code, 422, "{}", r.body);
    assert_eq!(single_cause(&r.body).1, "metadata.nodeSwapStatus.capacity");
}

#[tokio::test]
async fn leases_events_and_pod_status_updates_are_validated() {
    let s = server().await;
    let a = s.addr();
    let lease = json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
        "metadata": {"name": "vm"}, "spec": {"holderIdentity": "vm", "leaseDurationSeconds": 0}});
    let r = post(
        a,
        "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases",
        &lease,
    )
    .await;
    assert_eq!(r.code, 422, "{}", r.body);
    assert_eq!(
        r.body["message"],
        "Lease.coordination.k8s.io \"vm\" is invalid: spec.leaseDurationSeconds: Invalid value: 0: must be greater than 0"
    );
    let bad_name = json!({"metadata": {"name": "VM"}, "spec": {"holderIdentity": "VM"}});
    let r = post(
        a,
        "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases",
        &bad_name,
    )
    .await;
    assert_eq!(r.code, 422, "{}", r.body);
    assert_eq!(single_cause(&r.body).1, "metadata.name");

    let event = json!({"metadata": {"name": "vm.1", "namespace": "kube-node-lease"},
        "involvedObject": {"kind": "Node", "name": "vm"}, "reason": "Starting", "type": "Normal"});
    let r = post(a, "/api/v1/namespaces/kube-node-lease/events", &event).await;
    assert_eq!(r.code, 422, "{}", r.body);
    assert_eq!(
        single_cause(&r.body),
        (
            "FieldValueInvalid".into(),
            "involvedObject.namespace".into(),
            "Invalid value: \"\": does not match event.namespace".into()
        )
    );

    let mut p = pod("p1", "vm");
    p["spec"]["restartPolicy"] = json!("Never");
    assert_eq!(
        post(a, "/api/v1/namespaces/default/pods", &p).await.code,
        201
    );
    let done = json!({"status": {"containerStatuses": [{"name": "c", "image": "busybox", "imageID": "", "ready": false, "restartCount": 0,
        "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}]}});
    let path = "/api/v1/namespaces/default/pods/p1/status";
    assert_eq!(
        patch(a, path, &done, "application/merge-patch+json")
            .await
            .code,
        200
    );
    let again = json!({"status": {"containerStatuses": [{"name": "c", "image": "busybox", "imageID": "", "ready": true, "restartCount": 0,
        "state": {"running": {"startedAt": "2026-01-01T00:00:00Z"}}}]}});
    let r = patch(a, path, &again, "application/merge-patch+json").await;
    assert_eq!(r.code, 422, "{}", r.body);
    assert_eq!(
        single_cause(&r.body),
        (
            "FieldValueForbidden".into(),
            "status.containerStatuses[0].state".into(),
            "Forbidden: may not be transitioned to non-terminated state".into()
        )
    );
}

#[tokio::test]
async fn a_node_may_only_create_mirror_pods_without_api_references() {
    let s = server().await;
    let a = s.addr();
    let created = call_as(
        a,
        Some(NODE_TOKEN),
        "POST",
        "/api/v1/nodes",
        Some(&node(None)),
        "application/json",
    )
    .await;
    assert_eq!(created.code, 201, "{}", created.body);
    let uid = created.body["metadata"]["uid"].clone();
    let mirror = |extra: Value| {
        let mut p = json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "static-vm", "namespace": "default",
                "annotations": {"kubernetes.io/config.mirror": "hash", "kubernetes.io/config.source": "file"},
                "ownerReferences": [{"apiVersion": "v1", "kind": "Node", "name": "vm", "uid": uid, "controller": true}]},
            "spec": {"nodeName": "vm", "containers": [{"name": "c", "image": "busybox"}]}});
        if let (Some(spec), Value::Object(e)) = (p["spec"].as_object_mut(), extra) {
            spec.extend(e);
        }
        p
    };
    let pods = "/api/v1/namespaces/default/pods";
    let r = call_as(a, Some(NODE_TOKEN), "POST", pods, Some(&mirror(json!({"volumes": [{"name": "s", "secret": {"secretName": "x"}}],
        "containers": [{"name": "c", "image": "busybox", "volumeMounts": [{"name": "s", "mountPath": "/s"}]}]}))), "application/json").await;
    assert_eq!(r.code, 403, "{}", r.body);
    assert_eq!(
        r.body["message"],
        "pods \"static-vm\" is forbidden: node \"vm\" can not create pods that reference secrets"
    );
    let mut plain = mirror(json!({}));
    plain["metadata"]["annotations"] = json!({});
    let r = call_as(
        a,
        Some(NODE_TOKEN),
        "POST",
        pods,
        Some(&plain),
        "application/json",
    )
    .await;
    assert_eq!(r.code, 403, "{}", r.body);
    let r = call_as(
        a,
        Some(NODE_TOKEN),
        "POST",
        pods,
        Some(&mirror(json!({}))),
        "application/json",
    )
    .await;
    assert_eq!(r.code, 201, "{}", r.body);
    // The admin is not a node: a non-mirror pod is fine for it.
    plain["metadata"]["name"] = json!("plain");
    assert_eq!(post(a, pods, &plain).await.code, 201);
}
