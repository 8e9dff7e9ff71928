//! Cluster mode and the node API: `kubectl logs` and `kubectl exec` through the API
//! server (which calls the kubelet with its kubelet-client certificate), and Webhook
//! authentication (TokenReview) and authorization (SubjectAccessReview) of requests made
//! to the kubelet directly.

#[path = "support/cluster.rs"]
mod cluster_support;
mod support;

use std::net::TcpListener;
use std::time::Duration;

use cluster_support::*;
use serde_json::json;
use support::Node;
use test_apiserver::{Policy, Rule, UserInfo};

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_logs_and_exec_and_webhook_auth() {
    let server = api_server().await;
    let client = client(&server).await;
    let mut node = Node::new("cluster_node_api");
    let ca = node.dir.path().join("apiserver-ca.crt");
    std::fs::write(&ca, server.ca_pem()).unwrap();
    let port = free_port();
    node.start_with(&[
        &kubeconfig_flag(&server),
        "--enable-server=true",
        "--address=127.0.0.1",
        "--node-ip=127.0.0.1",
        &format!("--port={port}"),
        &format!("--cert-dir={}", node.dir.path().join("pki").display()),
        &format!("--client-ca-file={}", ca.display()),
        "--anonymous-auth=false",
        "--authentication-token-webhook=true",
        "--authorization-mode=Webhook",
    ]);
    let name = node.name.clone();
    let logs = || node.logs();
    create_bound_pod(&client, &name, json!({
        "metadata": {"name": "talk", "namespace": "default"},
        "spec": {"terminationGracePeriodSeconds": 1, "containers": [
            {"name": "main", "image": "busybox", "command": ["/bin/sh", "-c", "echo hello-from-logs; sleep 3600"]}
        ]}
    }))
    .await;
    wait_for("pod Running", API_DEADLINE, logs, || async {
        let p = get_pod(&client, "default", "talk").await?;
        (phase(&p) == "Running").then_some(())
    })
    .await;
    let kc = server.kubeconfig_path();
    let out = wait_for("kubectl logs", Duration::from_secs(30), logs, || async {
        let (ok, out, _) = kubectl(kc, &["logs", "talk"]);
        (ok && out.contains("hello-from-logs")).then_some(out)
    })
    .await;
    assert_eq!(out.trim(), "hello-from-logs");
    let (ok, out, err) = kubectl(kc, &["exec", "talk", "--", "echo", "exec-works"]);
    assert!(ok, "kubectl exec: {err}\n{}", node.logs());
    assert_eq!(out.trim(), "exec-works");

    // Directly at the kubelet: tokens are checked with TokenReview, access with
    // SubjectAccessReview against the API server's policy.
    server.add_token("eve-token", UserInfo::new("eve", &["dev"]));
    server.add_token("ops-token", UserInfo::new("ops", &["ops"]));
    server.set_policy(Policy::Rules(vec![Rule {
        groups: vec!["ops".into()],
        verbs: vec!["get".into()],
        resources: vec!["nodes/*".into()],
        ..Default::default()
    }]));
    let http = reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .build()
        .unwrap();
    let url = format!("https://127.0.0.1:{port}/pods");
    let status = |token: &'static str| {
        let http = http.clone();
        let url = url.clone();
        async move {
            http.get(&url)
                .bearer_auth(token)
                .send()
                .await
                .map(|r| r.status().as_u16())
                .unwrap_or(0)
        }
    };
    assert_eq!(
        status("bogus").await,
        401,
        "an unknown token is not authenticated"
    );
    assert_eq!(
        status("eve-token").await,
        403,
        "eve may not get nodes/proxy"
    );
    assert_eq!(status("ops-token").await, 200, "ops may");
    let reviews: Vec<_> = server
        .requests()
        .into_iter()
        .filter(|r| r.path.contains("tokenreviews") || r.path.contains("subjectaccessreviews"))
        .collect();
    assert!(
        reviews.iter().any(|r| r.path.contains("tokenreviews")),
        "{reviews:?}"
    );
    assert!(
        reviews
            .iter()
            .any(|r| r.path.contains("subjectaccessreviews")),
        "{reviews:?}"
    );
    node.stop();
}
