//! Cluster mode and the node API: `kubectl logs` and `kubectl exec` through the API
//! server (which calls the kubelet with its kubelet-client certificate), and Webhook
//! authentication (TokenReview) and authorization (SubjectAccessReview) of requests made
//! to the kubelet directly.

#[path = "support/cluster.rs"]
mod cluster_support;
mod support;

use std::time::Duration;

use cluster_support::*;
use serde_json::json;
use support::Node;
use test_apiserver::{Policy, Rule, UserInfo};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_logs_and_exec_and_webhook_auth() {
    let server = api_server().await;
    let client = client(&server).await;
    let mut node = Node::new("cluster_node_api");
    let port = free_port();
    let mut flags = node_api_flags(&server, node.dir.path(), port);
    flags.extend(
        [
            "--anonymous-auth=false",
            "--authentication-token-webhook=true",
            "--authorization-mode=Webhook",
        ]
        .map(String::from),
    );
    node.start_with(&flags.iter().map(String::as_str).collect::<Vec<_>>());
    let name = node.name.clone();
    let logs = || node.logs();
    create_bound_pod(&client, &name, json!({
        "metadata": {"name": "talk", "namespace": "default"},
        "spec": {"terminationGracePeriodSeconds": 1, "containers": [
            {"name": "main", "image": "busybox", "command": ["/bin/sh", "-c", "echo hello-from-logs; sleep 3600"]}
        ]}
    }))
    .await;
    wait_phase(&client, "talk", "Running", logs).await;
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
    node.purge_runtime().await;
}

/// The seed's "Fifth component: kubelet" with the scheduler emulated: the Deployment's
/// two pods are created without a node and bound through pods/binding, as the scheduler
/// does; both reach Running with IPs, the ConfigMap reaches the environment (envFrom),
/// the emptyDir is shared, and `kubectl logs`, `exec` and `delete` work.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_deployment_pods_bound_by_the_scheduler_run() {
    use k8s_openapi::api::core::v1::{ConfigMap, Pod};
    use kube::api::{Api, PostParams};
    let server = api_server().await;
    let client = client(&server).await;
    let mut node = Node::new("cluster_seed_dep");
    let port = free_port();
    let flags = node_api_flags(&server, node.dir.path(), port);
    node.start_with(&flags.iter().map(String::as_str).collect::<Vec<_>>());
    let name = node.name.clone();
    let logs = || node.logs();
    let kc = server.kubeconfig_path();
    wait_node_ready(&client, &name, logs).await;
    let cm: ConfigMap = serde_json::from_value(json!({
        "metadata": {"name": "hello-cm"}, "data": {"GREETING": "Hello folks"}
    }))
    .unwrap();
    Api::<ConfigMap>::namespaced(client.clone(), "default")
        .create(&PostParams::default(), &cm)
        .await
        .unwrap();
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let names = ["hello-dep-758fcd6b44-abcde", "hello-dep-758fcd6b44-fghij"];
    for pod_name in names {
        let pod: Pod = serde_json::from_value(json!({
            "metadata": {"name": pod_name, "labels": {"app": "hello", "pod-template-hash": "758fcd6b44"}},
            "spec": {
                "terminationGracePeriodSeconds": 5,
                "volumes": [{"name": "html", "emptyDir": {}}],
                "containers": [
                    {"name": "nginx", "image": "nginx",
                     "resources": {"limits": {"cpu": "150m", "memory": "32Mi"}, "requests": {"cpu": "50m", "memory": "32Mi"}},
                     "volumeMounts": [{"name": "html", "mountPath": "/var/www/html"}]},
                    {"name": "echo", "image": "alpine", "command": ["/bin/sh", "-c"],
                     "args": ["while true; do echo $GREETING from $HOSTNAME at `date` | tee -a /var/www/html/index.html; sleep 10; done;"],
                     "envFrom": [{"configMapRef": {"name": "hello-cm"}}],
                     "resources": {"limits": {"cpu": "50m", "memory": "32Mi"}, "requests": {"cpu": "25m", "memory": "32Mi"}},
                     "volumeMounts": [{"name": "html", "mountPath": "/var/www/html"}]}
                ]
            }
        }))
        .unwrap();
        pods.create(&PostParams::default(), &pod).await.unwrap();
    }
    // Unscheduled: the kubelet leaves them alone.
    tokio::time::sleep(Duration::from_secs(2)).await;
    for pod_name in names {
        assert!(node.running(pod_name).await.is_empty());
        let p = get_pod(&client, "default", pod_name).await.unwrap();
        assert_eq!(phase(&p), "Pending");
    }
    // The scheduler's binding.
    for pod_name in names {
        let binding = json!({
            "apiVersion": "v1", "kind": "Binding",
            "metadata": {"name": pod_name},
            "target": {"apiVersion": "v1", "kind": "Node", "name": name}
        });
        let _: serde_json::Value = pods
            .create_subresource("binding", pod_name, &PostParams::default(), &binding)
            .await
            .expect("pods/binding");
    }
    let mut ips = Vec::new();
    for pod_name in names {
        let p = wait_for(
            &format!("{pod_name} Running 2/2 with an IP"),
            API_DEADLINE,
            logs,
            || async {
                let p = get_pod(&client, "default", pod_name).await?;
                (phase(&p) == "Running"
                    && running_containers(&p).len() == 2
                    && p.status.as_ref()?.pod_ip.is_some())
                .then_some(p)
            },
        )
        .await;
        assert_eq!(p.spec.unwrap().node_name.as_deref(), Some(name.as_str()));
        ips.push(p.status.unwrap().pod_ip.unwrap());
    }
    assert_ne!(ips[0], ips[1]);
    let (ok, out, err) = kubectl(kc, &["get", "pods", "-o", "wide", "--no-headers"]);
    assert!(ok, "{err}");
    assert_eq!(
        out.lines()
            .filter(|l| l.contains("2/2") && l.contains("Running"))
            .count(),
        2,
        "{out}"
    );

    // kubectl logs: the ConfigMap's greeting from the pod's hostname.
    let pod_name = names[0];
    let out = wait_for("kubectl logs", Duration::from_secs(30), logs, || async {
        let (ok, out, _) = kubectl(kc, &["logs", pod_name, "-c", "echo"]);
        (ok && out.contains("Hello folks")).then_some(out)
    })
    .await;
    assert!(
        out.contains(&format!("Hello folks from {pod_name} at")),
        "{out}"
    );
    // kubectl exec: the environment and the shared emptyDir, seen from nginx.
    let (ok, out, err) = kubectl(kc, &["exec", pod_name, "-c", "echo", "--", "env"]);
    assert!(ok, "kubectl exec: {err}\n{}", node.logs());
    assert!(out.lines().any(|l| l == "GREETING=Hello folks"), "{out}");
    let (ok, out, err) = kubectl(
        kc,
        &[
            "exec",
            pod_name,
            "-c",
            "nginx",
            "--",
            "cat",
            "/var/www/html/index.html",
        ],
    );
    assert!(ok, "kubectl exec: {err}");
    assert!(out.contains("Hello folks from"), "{out}");

    // kubectl delete: graceful, finished by the kubelet.
    let (ok, _, err) = kubectl(
        kc,
        &[
            "delete",
            "pod",
            names[0],
            names[1],
            "--wait=true",
            "--timeout=60s",
        ],
    );
    assert!(ok, "kubectl delete: {err}\n{}", node.logs());
    for pod_name in names {
        assert!(get_pod(&client, "default", pod_name).await.is_none());
    }
    node.wait_no_sandboxes().await;
    node.stop();
    node.purge_runtime().await;
}

/// The certificate the HTTPS port on 127.0.0.1:`port` serves, verified against `ca_pem`
/// for the name 127.0.0.1 (chain and IP SAN), or why the handshake failed.
async fn verified_serving_cert(port: u16, ca_pem: &str) -> Result<Vec<u8>, String> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, ServerName};
    use std::sync::Arc;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(cert.unwrap()).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .map_err(|e| e.to_string())?;
    let name = ServerName::IpAddress(std::net::Ipv4Addr::LOCALHOST.into());
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .map_err(|e| e.to_string())?;
    let certs = tls
        .get_ref()
        .1
        .peer_certificates()
        .ok_or("no certificate")?;
    Ok(certs[0].to_vec())
}

/// `serverTLSBootstrap: true`: the HTTPS port serves a certificate the cluster signed
/// for a kubelet-serving CSR (subject system:node:<node>/system:nodes, SANs = the node's
/// host name and IP), and a new one once it is rotated before expiry.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_tls_bootstrap_serves_a_cluster_signed_certificate() {
    use k8s_openapi::api::certificates::v1::CertificateSigningRequest;
    use kube::api::Api;
    use x509_parser::prelude::*;
    let server = api_server_with(test_apiserver::Options {
        auto_approve_csrs: true,
        signed_cert_lifetime: Duration::from_secs(20),
        ..Default::default()
    })
    .await;
    let client = client(&server).await;
    let mut node = Node::new("cluster_serving");
    node.write_config("serverTLSBootstrap: true\n");
    let port = free_port();
    let flags = node_api_flags(&server, node.dir.path(), port);
    node.start_with(&flags.iter().map(String::as_str).collect::<Vec<_>>());
    let name = node.name.clone();
    let logs = || node.logs();
    let csrs: Api<CertificateSigningRequest> = Api::all(client.clone());
    let csr = wait_for("kubelet-serving CSR", API_DEADLINE, logs, || async {
        csrs.list(&Default::default())
            .await
            .ok()?
            .items
            .into_iter()
            .find(|c| c.spec.signer_name == "kubernetes.io/kubelet-serving")
    })
    .await;
    assert_eq!(
        csr.spec.usages.clone().unwrap_or_default(),
        ["digital signature", "server auth"]
    );
    let ca = server.ca_pem().to_string();
    let first = wait_for(
        "the issued certificate served",
        API_DEADLINE,
        logs,
        || async { verified_serving_cert(port, &ca).await.ok() },
    )
    .await;
    let (_, cert) = X509Certificate::from_der(&first).unwrap();
    let subject = cert.subject().to_string();
    assert!(
        subject.contains(&format!("CN=system:node:{name}")),
        "{subject}"
    );
    assert!(subject.contains("O=system:nodes"), "{subject}");
    let issuer = cert.issuer().to_string();
    assert_ne!(issuer, subject, "signed by the cluster CA, not self-signed");
    let sans: Vec<String> = cert
        .subject_alternative_name()
        .unwrap()
        .map(|s| {
            s.value
                .general_names
                .iter()
                .map(|n| match n {
                    GeneralName::DNSName(d) => d.to_string(),
                    GeneralName::IPAddress(ip) if ip.len() == 4 => {
                        std::net::Ipv4Addr::new(ip[0], ip[1], ip[2], ip[3]).to_string()
                    }
                    other => format!("{other:?}"),
                })
                .collect()
        })
        .unwrap_or_default();
    assert!(sans.contains(&name), "{sans:?}");
    assert!(sans.contains(&"127.0.0.1".to_string()), "{sans:?}");
    let cert_dir = node.dir.path().join("pki");
    assert!(cert_dir.join("kubelet-server-current.pem").exists());
    assert!(
        !cert_dir.join("kubelet.crt").exists(),
        "no self-signed certificate"
    );
    // Rotated at 70-90% of its 20 s life: a new CSR, a new certificate served.
    let serial = cert.raw_serial().to_vec();
    let rotated = wait_for(
        "a rotated serving certificate",
        Duration::from_secs(40),
        logs,
        || async {
            let der = verified_serving_cert(port, &ca).await.ok()?;
            let (_, c) = X509Certificate::from_der(&der).ok()?;
            (c.raw_serial() != serial.as_slice()).then(|| der.clone())
        },
    )
    .await;
    assert_ne!(rotated, first);
    let serving_csrs = csrs
        .list(&Default::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|c| c.spec.signer_name == "kubernetes.io/kubelet-serving")
        .count();
    assert!(serving_csrs >= 2, "{serving_csrs}");
    node.stop();
    node.purge_runtime().await;
}
