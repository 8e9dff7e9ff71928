//! REST semantics over HTTP: optimistic concurrency, status subresource, watch resume and
//! 410, selector transitions, pagination, graceful deletion, namespaces, CSR, tokens.

mod common;

use std::time::Duration;

use common::*;
use serde_json::{Value, json};
use test_apiserver::{Options, Policy, Rule, Server};

const PODS: &str = "/api/v1/namespaces/default/pods";

async fn server() -> Server {
    Server::start(Options {
        bookmark_interval: Duration::from_millis(200),
        ..Options::default()
    })
    .await
    .expect("start")
}

fn rv(v: &Value) -> u64 {
    v["metadata"]["resourceVersion"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

#[tokio::test]
async fn create_get_conflict_and_status_split() {
    let s = server().await;
    let a = s.addr();
    let created = post(a, PODS, &pod("p1", "n1")).await;
    assert_eq!(created.code, 201);
    assert_eq!(created.body["status"]["phase"], "Pending");
    assert!(
        !created.body["metadata"]["uid"]
            .as_str()
            .unwrap_or("")
            .is_empty()
    );
    assert_eq!(
        post(a, PODS, &pod("p1", "n1")).await.code,
        409,
        "AlreadyExists"
    );

    // PUT with a stale resourceVersion: 409 Conflict with upstream's message.
    let mut stale = created.body.clone();
    stale["metadata"]["labels"]["x"] = json!("1");
    assert_eq!(put(a, &format!("{PODS}/p1"), &stale).await.code, 200);
    let conflict = put(a, &format!("{PODS}/p1"), &stale).await;
    assert_eq!(conflict.code, 409);
    assert_eq!(conflict.body["reason"], "Conflict");
    assert!(
        conflict.body["message"]
            .as_str()
            .unwrap_or("")
            .contains("the object has been modified")
    );

    // Status updates ignore spec; main updates ignore status.
    let cur = get(a, &format!("{PODS}/p1")).await.body;
    let mut st = cur.clone();
    st["status"]["phase"] = json!("Running");
    st["spec"]["containers"][0]["image"] = json!("changed");
    let r = put(a, &format!("{PODS}/p1/status"), &st).await;
    assert_eq!(r.code, 200);
    assert_eq!(r.body["status"]["phase"], "Running");
    assert_eq!(r.body["spec"]["containers"][0]["image"], "busybox:1.36");
    let mut main = r.body.clone();
    main["status"]["phase"] = json!("Failed");
    let r2 = put(a, &format!("{PODS}/p1"), &main).await;
    assert_eq!(r2.body["status"]["phase"], "Running");

    // A no-op patch does not bump the resourceVersion.
    let before = rv(&r2.body);
    let p = patch(
        a,
        &format!("{PODS}/p1"),
        &json!({"metadata": {"labels": {"x": "1"}}}),
        "application/merge-patch+json",
    )
    .await;
    assert_eq!(rv(&p.body), before);

    // Strategic merge patch of status conditions as the kubelet sends it.
    let smp = json!({"status": {"$setElementOrder/conditions": [{"type": "Ready"}], "conditions": [{"type": "Ready", "status": "True"}]}});
    let p = patch(
        a,
        &format!("{PODS}/p1/status"),
        &smp,
        "application/strategic-merge-patch+json",
    )
    .await;
    assert_eq!(p.code, 200);
    assert_eq!(p.body["status"]["conditions"][0]["type"], "Ready");

    let missing = get(a, &format!("{PODS}/nope")).await;
    assert_eq!(missing.code, 404);
    assert_eq!(
        missing.body,
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": "pods \"nope\" not found", "reason": "NotFound", "details": {"name": "nope", "kind": "pods"}, "code": 404})
    );
    s.stop().await;
}

#[tokio::test]
async fn watch_resume_bookmarks_and_gone() {
    let s = server().await;
    let a = s.addr();
    let first = post(a, PODS, &pod("w1", "n1")).await.body;
    let start = rv(&first);
    post(a, PODS, &pod("w2", "n1")).await;
    delete(
        a,
        &format!("{PODS}/w2"),
        Some(&json!({"gracePeriodSeconds": 0})),
    )
    .await;

    // Resume after the first create: sees w2 ADDED, MODIFIED (deletion), DELETED.
    let (code, mut w) = watch(
        a,
        &format!("{PODS}?watch=1&resourceVersion={start}&allowWatchBookmarks=true"),
    )
    .await;
    assert_eq!(code, 200);
    let evs = w.take(3, Duration::from_secs(3)).await;
    let types: Vec<&str> = evs
        .iter()
        .map(|e| e["type"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(types, vec!["ADDED", "MODIFIED", "DELETED"]);
    assert!(evs.iter().all(|e| e["object"]["metadata"]["name"] == "w2"));
    // A bookmark arrives with the latest RV.
    let bm = w.next(Duration::from_secs(3)).await.unwrap_or_default();
    assert_eq!(bm["type"], "BOOKMARK");
    assert_eq!(rv(&bm["object"]), s.cluster().store.current_rv());

    // After compaction the old RV is gone: one ERROR event with a 410 Expired Status.
    s.compact(None);
    let (code, mut w) = watch(a, &format!("{PODS}?watch=1&resourceVersion={start}")).await;
    assert_eq!(code, 200);
    let ev = w.next(Duration::from_secs(3)).await.unwrap_or_default();
    assert_eq!(ev["type"], "ERROR");
    assert_eq!(ev["object"]["code"], 410);
    assert_eq!(ev["object"]["reason"], "Expired");
    assert!(
        w.next(Duration::from_secs(1)).await.is_none(),
        "the stream ends after the error"
    );

    // Exact-RV lists of compacted versions are 410 too.
    let l = get(
        a,
        &format!("{PODS}?resourceVersion={start}&resourceVersionMatch=Exact"),
    )
    .await;
    assert_eq!(l.code, 410);
    s.stop().await;
}

#[tokio::test]
async fn field_selector_watch_sees_pods_enter_and_leave() {
    let s = server().await;
    let a = s.addr();
    let mut unbound = pod("b1", "");
    unbound["spec"]
        .as_object_mut()
        .map(|m| m.remove("nodeName"));
    post(a, PODS, &unbound).await;
    let (_, mut w) = watch(
        a,
        "/api/v1/pods?watch=true&fieldSelector=spec.nodeName%3Dn1",
    )
    .await;
    assert!(
        w.next(Duration::from_millis(300)).await.is_none(),
        "nothing is on n1 yet"
    );
    // Binding moves the pod onto n1: the kubelet's watch sees ADDED.
    let b = post(a, &format!("{PODS}/b1/binding"), &json!({"apiVersion": "v1", "kind": "Binding", "metadata": {"name": "b1"}, "target": {"kind": "Node", "name": "n1"}})).await;
    assert_eq!(b.code, 201);
    let ev = w.next(Duration::from_secs(3)).await.unwrap_or_default();
    assert_eq!(ev["type"], "ADDED");
    assert_eq!(ev["object"]["spec"]["nodeName"], "n1");
    let again = post(
        a,
        &format!("{PODS}/b1/binding"),
        &json!({"target": {"name": "n2"}}),
    )
    .await;
    assert_eq!(again.code, 409, "already assigned");
    let conds = get(a, &format!("{PODS}/b1")).await.body["status"]["conditions"].clone();
    assert_eq!(conds[0]["type"], "PodScheduled");
    s.stop().await;
}

#[tokio::test]
async fn graceful_deletion_ends_with_the_final_delete() {
    let s = server().await;
    let a = s.addr();
    let p = post(a, PODS, &pod("g1", "n1")).await.body;
    let uid = p["metadata"]["uid"].as_str().unwrap_or("").to_string();
    let d = delete(a, &format!("{PODS}/g1"), None).await;
    assert_eq!(d.code, 200);
    assert_eq!(d.body["metadata"]["deletionGracePeriodSeconds"], 30);
    assert!(
        get(a, &format!("{PODS}/g1")).await.code == 200,
        "still there during the grace period"
    );
    // Wrong UID precondition: conflict; right one with grace 0: gone.
    let bad = delete(
        a,
        &format!("{PODS}/g1"),
        Some(&json!({"gracePeriodSeconds": 0, "preconditions": {"uid": "x"}})),
    )
    .await;
    assert_eq!(bad.code, 409);
    let fin = delete(
        a,
        &format!("{PODS}/g1"),
        Some(&json!({"gracePeriodSeconds": 0, "preconditions": {"uid": uid}})),
    )
    .await;
    assert_eq!(fin.code, 200);
    assert_eq!(get(a, &format!("{PODS}/g1")).await.code, 404);

    // Unscheduled pods go at once.
    let mut u = pod("g2", "");
    u["spec"].as_object_mut().map(|m| m.remove("nodeName"));
    post(a, PODS, &u).await;
    delete(a, &format!("{PODS}/g2"), None).await;
    assert_eq!(get(a, &format!("{PODS}/g2")).await.code, 404);

    // Finalizers hold an object until removed.
    let cm = json!({"metadata": {"name": "f", "finalizers": ["test/hold"]}, "data": {}});
    post(a, "/api/v1/namespaces/default/configmaps", &cm).await;
    let d = delete(a, "/api/v1/namespaces/default/configmaps/f", None).await;
    assert!(d.body["metadata"]["deletionTimestamp"].is_string());
    let p = patch(
        a,
        "/api/v1/namespaces/default/configmaps/f",
        &json!([{"op": "remove", "path": "/metadata/finalizers"}]),
        "application/json-patch+json",
    )
    .await;
    assert_eq!(p.code, 200);
    assert_eq!(
        get(a, "/api/v1/namespaces/default/configmaps/f").await.code,
        404
    );
    s.stop().await;
}

#[tokio::test]
async fn pagination_is_consistent_and_continue_expires() {
    let s = server().await;
    let a = s.addr();
    for i in 0..5 {
        post(
            a,
            "/api/v1/namespaces/default/configmaps",
            &json!({"metadata": {"name": format!("c{i}")}}),
        )
        .await;
    }
    let first = get(a, "/api/v1/namespaces/default/configmaps?limit=2")
        .await
        .body;
    assert_eq!(first["items"].as_array().map(Vec::len), Some(2));
    assert_eq!(
        first["metadata"]["remainingItemCount"], 4,
        "kube-root-ca.crt plus c2..c4"
    );
    let token = first["metadata"]["continue"]
        .as_str()
        .unwrap_or("")
        .to_string();
    // Changes after the first page are not visible in later pages.
    post(
        a,
        "/api/v1/namespaces/default/configmaps",
        &json!({"metadata": {"name": "c9"}}),
    )
    .await;
    let second = get(
        a,
        &format!("/api/v1/namespaces/default/configmaps?limit=10&continue={token}"),
    )
    .await
    .body;
    let names: Vec<&str> = second["items"]
        .as_array()
        .map(|v| {
            v.iter()
                .filter_map(|i| i["metadata"]["name"].as_str())
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(names, vec!["c2", "c3", "c4", "kube-root-ca.crt"]);
    assert_eq!(
        second["metadata"]["resourceVersion"],
        first["metadata"]["resourceVersion"]
    );
    s.compact(None);
    let gone = get(
        a,
        &format!("/api/v1/namespaces/default/configmaps?limit=10&continue={token}"),
    )
    .await;
    assert_eq!(gone.code, 410);
    let bad = get(
        a,
        "/api/v1/namespaces/default/configmaps?resourceVersion=999999",
    )
    .await;
    assert_eq!(bad.code, 504, "too large resource version");
    s.stop().await;
}

#[tokio::test]
async fn tokens_reviews_and_authorization() {
    let s = server().await;
    let a = s.addr();
    post(a, PODS, &pod("t1", "n1")).await;
    let pod_uid = get(a, &format!("{PODS}/t1")).await.body["metadata"]["uid"].clone();
    let tr = post(a, "/api/v1/namespaces/default/serviceaccounts/default/token", &json!({
        "spec": {"audiences": ["api"], "expirationSeconds": 3600, "boundObjectRef": {"kind": "Pod", "apiVersion": "v1", "name": "t1", "uid": pod_uid}}
    })).await;
    assert_eq!(tr.code, 201);
    let token = tr.body["status"]["token"]
        .as_str()
        .unwrap_or("")
        .to_string();
    assert!(tr.body["status"]["expirationTimestamp"].is_string());
    let short = post(
        a,
        "/api/v1/namespaces/default/serviceaccounts/default/token",
        &json!({"spec": {"expirationSeconds": 60}}),
    )
    .await;
    assert_eq!(short.code, 422);

    let review = post(
        a,
        "/apis/authentication.k8s.io/v1/tokenreviews",
        &json!({"spec": {"token": token, "audiences": ["api"]}}),
    )
    .await;
    assert_eq!(review.body["status"]["authenticated"], true);
    assert_eq!(
        review.body["status"]["user"]["username"],
        "system:serviceaccount:default:default"
    );
    let bad = post(
        a,
        "/apis/authentication.k8s.io/v1/tokenreviews",
        &json!({"spec": {"token": "nope"}}),
    )
    .await;
    assert_eq!(bad.body["status"]["authenticated"], false);

    s.set_policy(Policy::Rules(vec![Rule {
        groups: vec!["system:nodes".into()],
        verbs: vec!["get".into()],
        resources: vec!["nodes/proxy".into()],
        ..Rule::default()
    }]));
    let sar = |user: &str, groups: Vec<&str>, sub: &str| json!({"spec": {"user": user, "groups": groups, "resourceAttributes": {"verb": "get", "resource": "nodes", "subresource": sub, "name": "n1"}}});
    let yes = post(
        a,
        "/apis/authorization.k8s.io/v1/subjectaccessreviews",
        &sar("system:node:n1", vec!["system:nodes"], "proxy"),
    )
    .await;
    assert_eq!(yes.body["status"]["allowed"], true);
    let no = post(
        a,
        "/apis/authorization.k8s.io/v1/subjectaccessreviews",
        &sar("bob", vec![], "proxy"),
    )
    .await;
    assert_eq!(no.body["status"]["allowed"], false);
    s.stop().await;
}

#[tokio::test]
async fn csr_is_approved_and_signed() {
    let s = Server::start(Options {
        auto_approve_csrs: true,
        ..Options::default()
    })
    .await
    .expect("start");
    let a = s.addr();
    let key = rcgen::KeyPair::generate().expect("key");
    let mut params = rcgen::CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "system:node:n1");
    params
        .distinguished_name
        .push(rcgen::DnType::OrganizationName, "system:nodes");
    let pem = params
        .serialize_request(&key)
        .expect("csr")
        .pem()
        .expect("pem");
    use base64::Engine;
    let csr = json!({"apiVersion": "certificates.k8s.io/v1", "kind": "CertificateSigningRequest",
        "metadata": {"generateName": "csr-"},
        "spec": {"request": base64::engine::general_purpose::STANDARD.encode(pem), "signerName": "kubernetes.io/kube-apiserver-client-kubelet", "usages": ["digital signature", "client auth"], "expirationSeconds": 3600}});
    let c = post(
        a,
        "/apis/certificates.k8s.io/v1/certificatesigningrequests",
        &csr,
    )
    .await;
    assert_eq!(c.code, 201);
    assert_eq!(c.body["spec"]["username"], "system:admin");
    let name = c.body["metadata"]["name"]
        .as_str()
        .unwrap_or("")
        .to_string();
    let mut cert = Value::Null;
    for _ in 0..50 {
        let cur = get(
            a,
            &format!("/apis/certificates.k8s.io/v1/certificatesigningrequests/{name}"),
        )
        .await
        .body;
        if cur["status"]["certificate"].is_string() {
            cert = cur;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(cert["status"]["conditions"][0]["type"], "Approved");
    let pem = base64::engine::general_purpose::STANDARD
        .decode(cert["status"]["certificate"].as_str().unwrap_or(""))
        .unwrap_or_default();
    let der =
        test_apiserver::auth::ca::pem_to_der(&String::from_utf8_lossy(&pem)).unwrap_or_default();
    let id = test_apiserver::auth::ca::identity_from_cert(&der).unwrap_or_default();
    assert_eq!(id.name, "system:node:n1");
    assert!(id.in_group("system:nodes"));
    s.stop().await;
}

#[tokio::test]
async fn namespace_termination_and_failure_injection() {
    let s = server().await;
    let a = s.addr();
    post(
        a,
        "/api/v1/namespaces",
        &json!({"metadata": {"name": "tmp"}}),
    )
    .await;
    assert_eq!(
        get(a, "/api/v1/namespaces/tmp/serviceaccounts/default")
            .await
            .code,
        200,
        "default SA is created"
    );
    post(a, "/api/v1/namespaces/tmp/pods", &pod("x", "n1")).await;
    let d = delete(a, "/api/v1/namespaces/tmp", None).await;
    assert_eq!(d.body["status"]["phase"], "Terminating");
    let refused = post(
        a,
        "/api/v1/namespaces/tmp/configmaps",
        &json!({"metadata": {"name": "c"}}),
    )
    .await;
    assert_eq!(refused.code, 403);
    // The pod on a node is deleted gracefully; the "kubelet" finishes it, then the
    // namespace goes away.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let p = get(a, "/api/v1/namespaces/tmp/pods/x").await.body;
    assert!(p["metadata"]["deletionTimestamp"].is_string());
    delete(
        a,
        "/api/v1/namespaces/tmp/pods/x",
        Some(&json!({"gracePeriodSeconds": 0})),
    )
    .await;
    let mut gone = false;
    for _ in 0..50 {
        if get(a, "/api/v1/namespaces/tmp").await.code == 404 {
            gone = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(gone, "namespace finalized after its content is gone");

    s.fail_next(2);
    assert_eq!(get(a, "/api/v1/namespaces").await.code, 503);
    assert_eq!(
        get(a, "/api/v1/namespaces").await.body["reason"],
        "ServiceUnavailable"
    );
    assert_eq!(get(a, "/api/v1/namespaces").await.code, 200);
    assert!(
        s.requests()
            .iter()
            .any(|r| r.path == "/api/v1/namespaces/tmp" && r.method == "DELETE")
    );
    s.stop().await;
}

#[tokio::test]
async fn offline_and_back_keeps_state_and_resumable_watches() {
    let s = server().await;
    let a = s.addr();
    let p = post(a, PODS, &pod("o1", "n1")).await.body;
    let (_, mut w) = watch(a, &format!("{PODS}?watch=1&resourceVersion={}", rv(&p))).await;
    s.go_offline().await;
    assert!(
        w.next(Duration::from_secs(2)).await.is_none(),
        "watches end when the server goes away"
    );
    assert!(
        tokio::net::TcpStream::connect(a).await.is_err(),
        "connection refused while offline"
    );
    // Changes made meanwhile (by a test) are seen by a watch resumed from the last RV.
    s.create(
        "",
        "v1",
        "configmaps",
        "default",
        json!({"metadata": {"name": "while-away"}}),
    )
    .expect("create");
    s.go_online().await.expect("online");
    assert_eq!(
        get(a, &format!("{PODS}/o1")).await.code,
        200,
        "state survived"
    );
    let (_, mut w) = watch(
        a,
        &format!(
            "/api/v1/namespaces/default/configmaps?watch=1&resourceVersion={}",
            rv(&p)
        ),
    )
    .await;
    let ev = w.next(Duration::from_secs(3)).await.unwrap_or_default();
    assert_eq!(ev["type"], "ADDED");
    assert_eq!(ev["object"]["metadata"]["name"], "while-away");
    s.stop().await;
}

#[tokio::test]
async fn events_in_both_versions_and_leases() {
    let s = server().await;
    let a = s.addr();
    let ev = json!({"apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": {"name": "e1"},
        "eventTime": "2026-01-01T00:00:00.000000Z", "reportingController": "kubelet", "reportingInstance": "n1",
        "action": "Started", "reason": "Started", "type": "Normal", "note": "Started container c",
        "regarding": {"kind": "Pod", "namespace": "default", "name": "p", "apiVersion": "v1"}});
    assert_eq!(
        post(a, "/apis/events.k8s.io/v1/namespaces/default/events", &ev)
            .await
            .code,
        201
    );
    let core = get(a, "/api/v1/namespaces/default/events/e1").await.body;
    assert_eq!(core["message"], "Started container c");
    assert_eq!(core["involvedObject"]["name"], "p");
    let sel = get(
        a,
        "/api/v1/namespaces/default/events?fieldSelector=involvedObject.name%3Dp,reason%3DStarted",
    )
    .await
    .body;
    assert_eq!(sel["items"].as_array().map(Vec::len), Some(1));
    let back = get(a, "/apis/events.k8s.io/v1/namespaces/default/events/e1")
        .await
        .body;
    assert_eq!(back["note"], "Started container c");
    assert_eq!(back["apiVersion"], "events.k8s.io/v1");

    // Leases: PUT creates (AllowCreateOnUpdate), then renewals need the current RV.
    let lease = json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": "n1"},
        "spec": {"holderIdentity": "n1", "leaseDurationSeconds": 40, "renewTime": "2026-01-01T00:00:00.000000Z"}});
    let path = "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/n1";
    let created = put(a, path, &lease).await;
    assert_eq!(created.code, 201);
    let mut renew = created.body.clone();
    renew["spec"]["renewTime"] = json!("2026-01-01T00:00:10.000000Z");
    assert_eq!(put(a, path, &renew).await.code, 200);
    assert_eq!(
        put(a, path, &renew).await.code,
        409,
        "stale resourceVersion"
    );
    s.stop().await;
}

#[tokio::test]
async fn server_side_apply_is_approximated() {
    let s = server().await;
    let a = s.addr();
    let path = "/api/v1/namespaces/default/configmaps/ssa";
    let body = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "ssa"}, "data": {"a": "1"}});
    let missing_manager = patch(a, path, &body, "application/apply-patch+yaml").await;
    assert_eq!(missing_manager.code, 422);
    let created = patch(
        a,
        &format!("{path}?fieldManager=test"),
        &body,
        "application/apply-patch+yaml",
    )
    .await;
    assert_eq!(created.code, 201);
    let again = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "ssa"}, "data": {"b": "2"}});
    let updated = patch(
        a,
        &format!("{path}?fieldManager=test"),
        &again,
        "application/apply-patch+yaml",
    )
    .await;
    assert_eq!(updated.code, 200);
    assert_eq!(updated.body["data"], json!({"a": "1", "b": "2"}));
    s.stop().await;
}
