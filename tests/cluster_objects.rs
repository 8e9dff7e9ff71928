//! Cluster mode: ConfigMaps, Secrets, service account tokens and Services reach the
//! containers (env, envFrom, configMap/secret/projected volumes, service variables);
//! volume updates propagate; a missing required object is CreateContainerConfigError and
//! a retry, never an empty value.

#[path = "support/cluster.rs"]
mod cluster_support;
mod support;

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use cluster_support::*;
use k8s_openapi::api::authentication::v1::TokenReview;
use k8s_openapi::api::core::v1::{ConfigMap, Secret, Service};
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;

async fn create<K>(client: &kube::Client, ns: &str, obj: serde_json::Value)
where
    K: kube::Resource<Scope = kube::core::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + k8s_openapi::serde::de::DeserializeOwned
        + k8s_openapi::serde::Serialize
        + std::fmt::Debug,
{
    let obj: K = serde_json::from_value(obj).unwrap();
    Api::<K>::namespaced(client.clone(), ns)
        .create(&PostParams::default(), &obj)
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_maps_secrets_and_services_reach_the_container() {
    let server = api_server().await;
    let client = client(&server).await;
    let mut node = ready_node("cluster_config", &server, &client, &[]).await;
    create::<ConfigMap>(
        &client,
        "default",
        json!({"metadata": {"name": "app-config"}, "data": {"GREETING": "hello", "COLOR": "blue"}}),
    )
    .await;
    create::<Secret>(
        &client,
        "default",
        json!({"metadata": {"name": "app-secret"}, "stringData": {"password": "s3cret"}}),
    )
    .await;
    create::<Service>(&client, "default", json!({"metadata": {"name": "my-svc"}, "spec": {"ports": [{"name": "http", "port": 80}], "selector": {"app": "x"}}})).await;
    let pod = create_bound_pod(&client, &node.name, json!({
        "metadata": {"name": "cfg", "namespace": "default"},
        "spec": {
            "terminationGracePeriodSeconds": 1,
            "containers": [{
                "name": "main", "image": "busybox",
                "command": ["/bin/sh", "-c", "env; sleep 3600"],
                "env": [
                    {"name": "GREETING", "valueFrom": {"configMapKeyRef": {"name": "app-config", "key": "GREETING"}}},
                    {"name": "PASSWORD", "valueFrom": {"secretKeyRef": {"name": "app-secret", "key": "password"}}},
                    {"name": "MAYBE", "valueFrom": {"configMapKeyRef": {"name": "nope", "key": "x", "optional": true}}},
                    {"name": "COMBINED", "value": "$(GREETING)-$(MY_SVC_SERVICE_PORT)"}
                ],
                "envFrom": [
                    {"prefix": "CFG_", "configMapRef": {"name": "app-config"}},
                    {"secretRef": {"name": "missing-secret", "optional": true}}
                ],
                "volumeMounts": [{"name": "cfg", "mountPath": "/cfg"}, {"name": "sec", "mountPath": "/sec"}]
            }],
            "volumes": [
                {"name": "cfg", "configMap": {"name": "app-config", "defaultMode": 0o440, "items": [{"key": "COLOR", "path": "color.txt", "mode": 0o600}, {"key": "GREETING", "path": "sub/greeting"}]}},
                {"name": "sec", "secret": {"secretName": "app-secret"}}
            ]
        }
    }))
    .await;
    let uid = pod.metadata.uid.clone().unwrap();
    let logs = || node.logs();
    wait_for("pod Running", API_DEADLINE, logs, || async {
        let p = get_pod(&client, "default", "cfg").await?;
        (phase(&p) == "Running").then_some(())
    })
    .await;
    let env = wait_for("env printed", Duration::from_secs(20), logs, || async {
        let log = container_log(&node.logs_dir, "default", "cfg", &uid, "main");
        log.contains("PASSWORD=").then_some(log)
    })
    .await;
    for want in [
        "GREETING=hello",
        "PASSWORD=s3cret",
        "CFG_COLOR=blue",
        "CFG_GREETING=hello",
        "COMBINED=hello-80",
        "MY_SVC_SERVICE_PORT_HTTP=80",
        "MY_SVC_PORT_80_TCP_PROTO=tcp",
        "KUBERNETES_SERVICE_HOST=10.96.0.1",
        "KUBERNETES_SERVICE_PORT=443",
    ] {
        assert!(env.contains(want), "{want} in\n{env}");
    }
    assert!(
        !env.contains("MAYBE="),
        "an optional missing key is unset, not empty:\n{env}"
    );
    assert!(env.contains("MY_SVC_SERVICE_HOST=10."), "{env}");

    // Volumes: items, modes, the ..data link.
    let root = node.root_dir.clone();
    assert_eq!(
        volume_file(&root, &uid, "kubernetes.io~configmap", "cfg", "color.txt").as_deref(),
        Some("blue")
    );
    assert_eq!(
        volume_file(
            &root,
            &uid,
            "kubernetes.io~configmap",
            "cfg",
            "sub/greeting"
        )
        .as_deref(),
        Some("hello")
    );
    let vol = root
        .join("pods")
        .join(&uid)
        .join("volumes/kubernetes.io~configmap/cfg");
    assert_eq!(
        std::fs::metadata(vol.join("color.txt"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o600
    );
    assert_eq!(
        std::fs::metadata(vol.join("sub/greeting"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o440
    );
    assert!(
        std::fs::symlink_metadata(vol.join("..data"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert_eq!(
        volume_file(&root, &uid, "kubernetes.io~secret", "sec", "password").as_deref(),
        Some("s3cret")
    );

    // An update reaches the volume (watch-based), without restarting the container.
    Api::<ConfigMap>::namespaced(client.clone(), "default")
        .patch(
            "app-config",
            &PatchParams::default(),
            &Patch::Merge(&json!({"data": {"COLOR": "red"}})),
        )
        .await
        .unwrap();
    wait_for(
        "configmap update in the volume",
        Duration::from_secs(30),
        logs,
        || async {
            (volume_file(&root, &uid, "kubernetes.io~configmap", "cfg", "color.txt").as_deref()
                == Some("red"))
            .then_some(())
        },
    )
    .await;
    let p = get_pod(&client, "default", "cfg").await.unwrap();
    assert_eq!(
        p.status.unwrap().container_statuses.unwrap()[0].restart_count,
        0
    );
    node.stop();
    node.purge_runtime().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_config_map_is_an_error_until_it_exists() {
    let server = api_server().await;
    let client = client(&server).await;
    let mut node = ready_node("cluster_missing_cm", &server, &client, &[]).await;
    create_bound_pod(&client, &node.name, json!({
        "metadata": {"name": "waits", "namespace": "default"},
        "spec": {"terminationGracePeriodSeconds": 1, "containers": [{
            "name": "main", "image": "busybox", "command": ["sleep", "3600"],
            "env": [{"name": "V", "valueFrom": {"configMapKeyRef": {"name": "later", "key": "v"}}}]
        }]}
    }))
    .await;
    let logs = || node.logs();
    let (reason, message) = wait_for("CreateContainerConfigError", API_DEADLINE, logs, || async {
        let p = get_pod(&client, "default", "waits").await?;
        waiting_reason(&p, "main").filter(|(r, _)| r == "CreateContainerConfigError")
    })
    .await;
    assert_eq!(reason, "CreateContainerConfigError");
    assert!(
        message.contains("configmap \"later\" not found"),
        "{message}"
    );
    let p = get_pod(&client, "default", "waits").await.unwrap();
    assert_eq!(phase(&p), "Pending");
    let events = pod_events(&client, "default", "waits").await;
    assert!(
        events
            .iter()
            .any(|(r, m)| r == "Failed" && m.starts_with("Error: ")),
        "{events:?}"
    );

    create::<ConfigMap>(
        &client,
        "default",
        json!({"metadata": {"name": "later"}, "data": {"v": "now"}}),
    )
    .await;
    wait_for(
        "pod Running after the ConfigMap appeared",
        API_DEADLINE,
        logs,
        || async {
            let p = get_pod(&client, "default", "waits").await?;
            (phase(&p) == "Running").then_some(())
        },
    )
    .await;
    node.stop();
    node.purge_runtime().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_account_tokens_are_projected() {
    let server = api_server().await;
    let client = client(&server).await;
    let mut node = ready_node("cluster_token", &server, &client, &[]).await;
    let pod = create_bound_pod(&client, &node.name, json!({
        "metadata": {"name": "sa", "namespace": "default"},
        "spec": {"terminationGracePeriodSeconds": 1, "containers": [{
            "name": "main", "image": "busybox",
            "command": ["/bin/sh", "-c", "cat /var/run/secrets/kubernetes.io/serviceaccount/namespace; echo; ls /var/run/secrets/kubernetes.io/serviceaccount; sleep 3600"]
        }]}
    }))
    .await;
    let uid = pod.metadata.uid.clone().unwrap();
    let volume = pod
        .spec
        .as_ref()
        .unwrap()
        .volumes
        .iter()
        .flatten()
        .find(|v| v.name.starts_with("kube-api-access-"))
        .expect("the ServiceAccount admission added kube-api-access")
        .name
        .clone();
    let logs = || node.logs();
    wait_for("pod Running", API_DEADLINE, logs, || async {
        let p = get_pod(&client, "default", "sa").await?;
        (phase(&p) == "Running").then_some(())
    })
    .await;
    let root = node.root_dir.clone();
    let read = |f: &str| volume_file(&root, &uid, "kubernetes.io~projected", &volume, f);
    assert_eq!(read("namespace").as_deref(), Some("default"));
    assert_eq!(read("ca.crt").as_deref(), Some(server.ca_pem()));
    let token = read("token").expect("token file");
    let out = wait_for(
        "container sees the files",
        Duration::from_secs(20),
        logs,
        || async {
            let l = container_log(&node.logs_dir, "default", "sa", &uid, "main");
            l.contains("token").then_some(l)
        },
    )
    .await;
    assert!(out.contains("default") && out.contains("ca.crt"), "{out}");
    // The token is a real one, bound to the pod.
    let review: TokenReview = serde_json::from_value(json!({"spec": {"token": token}})).unwrap();
    let answer = Api::<TokenReview>::all(client.clone())
        .create(&PostParams::default(), &review)
        .await
        .unwrap();
    let status = answer.status.unwrap();
    assert_eq!(status.authenticated, Some(true), "{status:?}");
    assert_eq!(
        status.user.unwrap().username.as_deref(),
        Some("system:serviceaccount:default:default")
    );

    // automountServiceAccountToken: false gets no token.
    let plain = create_bound_pod(&client, &node.name, json!({
        "metadata": {"name": "plain", "namespace": "default"},
        "spec": {"automountServiceAccountToken": false, "terminationGracePeriodSeconds": 1,
                 "containers": [{"name": "main", "image": "busybox", "command": ["sleep", "3600"]}]}
    }))
    .await;
    assert!(plain.spec.unwrap().volumes.unwrap_or_default().is_empty());
    wait_for("plain pod Running", API_DEADLINE, logs, || async {
        let p = get_pod(&client, "default", "plain").await?;
        (phase(&p) == "Running").then_some(())
    })
    .await;
    node.stop();
    node.purge_runtime().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn projected_tokens_are_refreshed_at_eighty_percent_of_their_life() {
    let server = api_server().await;
    // The API server issues 10 s tokens (as --service-account-max-token-expiration would).
    server
        .cluster()
        .knobs
        .max_token_seconds
        .store(10, std::sync::atomic::Ordering::SeqCst);
    let client = client(&server).await;
    let mut node = ready_node("cluster_token_refresh", &server, &client, &[]).await;
    let pod = create_bound_pod(&client, &node.name, json!({
        "metadata": {"name": "refresh", "namespace": "default"},
        "spec": {"terminationGracePeriodSeconds": 1, "containers": [{"name": "main", "image": "busybox", "command": ["sleep", "3600"]}],
                 "volumes": [{"name": "vault", "projected": {"sources": [{"serviceAccountToken": {"path": "token", "audience": "vault", "expirationSeconds": 600}}]}}]}
    }))
    .await;
    let uid = pod.metadata.uid.clone().unwrap();
    let logs = || node.logs();
    let root = node.root_dir.clone();
    let first = wait_for("token written", API_DEADLINE, logs, || async {
        volume_file(&root, &uid, "kubernetes.io~projected", "vault", "token")
    })
    .await;
    let started = std::time::Instant::now();
    let second = wait_for("token refreshed", Duration::from_secs(30), logs, || async {
        volume_file(&root, &uid, "kubernetes.io~projected", "vault", "token")
            .filter(|t| *t != first)
    })
    .await;
    // Refreshed at 80% of 10 s, not at expiry nor on a 60 s resync.
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "refreshed after {:?}",
        started.elapsed()
    );
    let review: TokenReview =
        serde_json::from_value(json!({"spec": {"token": second, "audiences": ["vault"]}})).unwrap();
    let answer = Api::<TokenReview>::all(client.clone())
        .create(&PostParams::default(), &review)
        .await
        .unwrap();
    assert_eq!(answer.status.unwrap().authenticated, Some(true));
    let p = get_pod(&client, "default", "refresh").await.unwrap();
    assert_eq!(
        p.status.unwrap().container_statuses.unwrap()[0].restart_count,
        0
    );
    node.stop();
    node.purge_runtime().await;
}
