//! The real kubectl against the test API server: proof that a real client accepts it.

mod common;

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;
use test_apiserver::{KubeconfigAuth, Options, Policy, Rule, Server};

const POD: &str = r#"
apiVersion: v1
kind: Pod
metadata:
  name: web
  labels: {app: web}
spec:
  nodeName: n1
  containers:
  - name: c
    image: nginx:1.25
"#;

const NODE: &str = r#"{"apiVersion":"v1","kind":"Node","metadata":{"name":"n1","labels":{"node-role.kubernetes.io/worker":""}},
"status":{"conditions":[{"type":"Ready","status":"True","reason":"KubeletReady","message":"kubelet is posting ready status"}],
"addresses":[{"type":"InternalIP","address":"127.0.0.1"},{"type":"Hostname","address":"n1"}],
"nodeInfo":{"kubeletVersion":"v1.35.0","osImage":"Debian GNU/Linux 13","kernelVersion":"6.12.0","containerRuntimeVersion":"containerd://2.1.0","machineID":"m","systemUUID":"s","bootID":"b","kubeProxyVersion":"","operatingSystem":"linux","architecture":"amd64"}}}"#;

macro_rules! need_kubectl {
    () => {
        if !have_kubectl() {
            eprintln!("kubectl not found: skipping");
            return;
        }
    };
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_crud_patch_and_tables() {
    need_kubectl!();
    let s = Server::start(Options::default()).await.expect("start");
    let kc = s.kubeconfig_path().to_path_buf();
    let k = |args: &[&str]| kubectl(&kc, args);

    let (ok, out, err) = kubectl_stdin(&kc, &["create", "-f", "-"], POD);
    assert!(ok, "create: {err}");
    assert_eq!(out.trim(), "pod/web created");
    let (ok, _, err) = kubectl_stdin(&kc, &["create", "-f", "-"], NODE);
    assert!(ok, "create node: {err}");

    let (ok, out, _) = k(&["get", "pods"]);
    assert!(ok);
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        lines[0].starts_with("NAME") && lines[0].contains("READY") && lines[0].contains("STATUS"),
        "{out}"
    );
    assert!(
        lines[1].starts_with("web") && lines[1].contains("0/1") && lines[1].contains("Pending"),
        "{out}"
    );

    let (ok, out, _) = k(&["get", "nodes", "-o", "wide"]);
    assert!(ok);
    assert!(
        out.contains("Ready")
            && out.contains("worker")
            && out.contains("127.0.0.1")
            && out.contains("containerd://2.1.0"),
        "{out}"
    );

    let (ok, out, _) = k(&["get", "pods", "-o", "json"]);
    assert!(ok);
    let list: serde_json::Value = serde_json::from_str(&out).unwrap_or_default();
    assert_eq!(list["items"][0]["spec"]["serviceAccountName"], "default");
    assert_eq!(
        list["items"][0]["spec"]["containers"][0]["imagePullPolicy"],
        "IfNotPresent"
    );

    assert!(
        k(&[
            "patch",
            "pod",
            "web",
            "--type=merge",
            "-p",
            r#"{"metadata":{"labels":{"m":"1"}}}"#
        ])
        .0
    );
    assert!(
        k(&[
            "patch",
            "pod",
            "web",
            "--type=strategic",
            "-p",
            r#"{"spec":{"containers":[{"name":"c","image":"nginx:1.26"}]}}"#
        ])
        .0
    );
    assert!(
        k(&[
            "patch",
            "pod",
            "web",
            "--type=json",
            "-p",
            r#"[{"op":"add","path":"/metadata/labels/j","value":"2"}]"#
        ])
        .0
    );
    let (_, out, _) = k(&[
        "get",
        "pod",
        "web",
        "-o",
        "jsonpath={.metadata.labels.m}{.metadata.labels.j} {.spec.containers[0].image}",
    ]);
    assert_eq!(out, "12 nginx:1.26");
    let (ok, _, err) = k(&[
        "patch",
        "pod",
        "web",
        "--type=merge",
        "-p",
        r#"{"spec":{"nodeName":"n2"}}"#,
    ]);
    assert!(
        !ok && err.contains("Forbidden: pod updates may not change fields"),
        "{err}"
    );

    let (ok, out, _) = k(&[
        "get",
        "pods",
        "-l",
        "app=web,m=1",
        "--field-selector",
        "spec.nodeName=n1",
        "-o",
        "name",
    ]);
    assert!(ok);
    assert_eq!(out.trim(), "pod/web");
    let (ok, _, err) = k(&["get", "pods", "--field-selector", "spec.bogus=1"]);
    assert!(
        !ok && err.contains("field label not supported: spec.bogus"),
        "{err}"
    );

    // apply: create then configure (client-side apply with last-applied).
    let cm = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cfg}\ndata: {a: \"1\"}\n";
    let (ok, out, err) = kubectl_stdin(&kc, &["apply", "-f", "-"], cm);
    assert!(ok && out.contains("created"), "{err}");
    let (ok, out, err) = kubectl_stdin(&kc, &["apply", "-f", "-"], &cm.replace("\"1\"", "\"2\""));
    assert!(ok && out.contains("configured"), "{err}");
    assert_eq!(k(&["get", "cm", "cfg", "-o", "jsonpath={.data.a}"]).1, "2");

    // Strict server-side field validation.
    let bad = POD
        .replace("name: web", "name: bad")
        .replace("image: nginx:1.25", "image: x\n    bogus: 1");
    let (ok, _, err) = kubectl_stdin(&kc, &["create", "-f", "-"], &bad);
    assert!(
        !ok && err.contains("unknown field \"spec.containers[0].bogus\""),
        "{err}"
    );

    let (ok, out, _) = k(&["describe", "pod", "web"]);
    assert!(
        ok && out.contains("Service Account:  default") && out.contains("kube-api-access-"),
        "{out}"
    );

    let (ok, out, _) = k(&["get", "ns"]);
    assert!(ok && out.contains("kube-node-lease") && out.contains("Active"));
    let (ok, out, _) = k(&["get", "svc", "kubernetes"]);
    assert!(ok && out.contains("10.96.0.1"), "{out}");
    let (ok, out, _) = k(&["api-resources"]);
    assert!(
        ok && out.contains("leases") && out.contains("certificatesigningrequests"),
        "{out}"
    );
    let (ok, out, _) = k(&["version", "-o", "json"]);
    assert!(ok && out.contains("\"minor\": \"35\""), "{out}");

    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_watch_shows_graceful_deletion() {
    need_kubectl!();
    let s = Server::start(Options::default()).await.expect("start");
    let kc = s.kubeconfig_path().to_path_buf();
    assert!(kubectl_stdin(&kc, &["create", "-f", "-"], POD).0);
    let mut watcher = Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(&kc)
        .args(["get", "pods", "-w", "--output-watch-events"])
        .env("HOME", s.dir())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("kubectl");
    tokio::time::sleep(Duration::from_millis(800)).await;
    let (ok, out, err) = kubectl(&kc, &["delete", "pod", "web", "--wait=false"]);
    assert!(ok, "{err}");
    assert!(out.contains("deleted"));
    let (_, ts, _) = kubectl(
        &kc,
        &[
            "get",
            "pod",
            "web",
            "-o",
            "jsonpath={.metadata.deletionGracePeriodSeconds}",
        ],
    );
    assert_eq!(ts, "30", "the pod stays with its grace period");
    let (ok, _, err) = kubectl(
        &kc,
        &["delete", "pod", "web", "--grace-period=0", "--force"],
    );
    assert!(ok, "{err}");
    tokio::time::sleep(Duration::from_millis(800)).await;
    let _ = watcher.kill();
    let mut out = String::new();
    if let Some(mut so) = watcher.stdout.take() {
        let _ = so.read_to_string(&mut out);
    }
    let _ = watcher.wait();
    let events: Vec<&str> = out
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(events.first(), Some(&"ADDED"), "{out}");
    assert_eq!(events.last(), Some(&"DELETED"), "{out}");
    assert!(out.contains("Terminating"), "{out}");
    assert!(!kubectl(&kc, &["get", "pod", "web"]).0);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_over_tls_with_cert_token_and_authz() {
    need_kubectl!();
    let s = Server::start(Options {
        tls: true,
        kubeconfig_auth: KubeconfigAuth::ClientCert,
        ..Options::default()
    })
    .await
    .expect("start");
    assert!(s.url().starts_with("https://"));
    let kc = s.kubeconfig_path().to_path_buf();
    let (ok, out, err) = kubectl(&kc, &["get", "ns", "default", "-o", "name"]);
    assert!(ok, "{err}");
    assert_eq!(out.trim(), "namespace/default");

    // A node identity from a client certificate, restricted by rules.
    let cert = s
        .issue_client_cert(
            "system:node:n1",
            &["system:nodes"],
            Duration::from_secs(3600),
        )
        .expect("cert");
    let node_kc = s.dir().join("node.kubeconfig");
    s.write_kubeconfig(&node_kc, &test_apiserver::Credentials::Cert(cert))
        .expect("kubeconfig");
    s.set_policy(Policy::Rules(vec![Rule {
        groups: vec!["system:nodes".into()],
        verbs: vec!["get".into(), "list".into(), "watch".into()],
        resources: vec!["pods".into()],
        ..Rule::default()
    }]));
    let (ok, _, err) = kubectl(&node_kc, &["get", "pods"]);
    assert!(ok, "{err}");
    let (ok, _, err) = kubectl(&node_kc, &["get", "configmaps"]);
    assert!(!ok);
    assert!(
        err.contains("User \"system:node:n1\" cannot list resource \"configmaps\" in API group \"\" in the namespace \"default\""),
        "{err}"
    );

    let (ok, out, err) = kubectl(&node_kc, &["auth", "whoami"]);
    assert!(
        ok && out.contains("system:node:n1") && out.contains("system:nodes"),
        "{out}{err}"
    );
    assert_eq!(
        kubectl(&node_kc, &["auth", "can-i", "list", "pods"])
            .1
            .trim(),
        "yes"
    );
    assert_eq!(
        kubectl(&node_kc, &["auth", "can-i", "delete", "pods"])
            .1
            .trim(),
        "no"
    );

    // TokenRequest and CSR approval go through kubectl's protobuf clients.
    let (ok, token, err) = kubectl(
        &kc,
        &[
            "create",
            "token",
            "default",
            "--audience=api",
            "--duration=20m",
        ],
    );
    assert!(ok && token.trim().split('.').count() == 3, "{err}");
    let key = rcgen::KeyPair::generate().expect("key");
    let mut p = rcgen::CertificateParams::default();
    p.distinguished_name = rcgen::DistinguishedName::new();
    p.distinguished_name
        .push(rcgen::DnType::CommonName, "system:node:n7");
    p.distinguished_name
        .push(rcgen::DnType::OrganizationName, "system:nodes");
    let pem = p.serialize_request(&key).expect("csr").pem().expect("pem");
    use base64::Engine;
    let csr = format!(
        "apiVersion: certificates.k8s.io/v1\nkind: CertificateSigningRequest\nmetadata: {{name: n7}}\nspec:\n  request: {}\n  signerName: kubernetes.io/kube-apiserver-client-kubelet\n  usages: [digital signature, client auth]\n",
        base64::engine::general_purpose::STANDARD.encode(pem)
    );
    assert!(kubectl_stdin(&kc, &["create", "-f", "-"], &csr).0);
    let (_, out, _) = kubectl(&kc, &["get", "csr", "n7"]);
    assert!(out.contains("Pending"), "{out}");
    let (ok, _, err) = kubectl(&kc, &["certificate", "approve", "n7"]);
    assert!(ok, "{err}");
    let mut issued = String::new();
    for _ in 0..50 {
        issued = kubectl(
            &kc,
            &["get", "csr", "n7", "-o", "jsonpath={.status.certificate}"],
        )
        .1;
        if !issued.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(!issued.is_empty(), "certificate issued after approval");
    assert!(
        kubectl(&kc, &["get", "csr", "n7"])
            .1
            .contains("Approved,Issued")
    );

    // Bad token: 401.
    let bad_kc = s.dir().join("bad.kubeconfig");
    s.write_kubeconfig(&bad_kc, &test_apiserver::Credentials::Token("wrong".into()))
        .expect("kubeconfig");
    let (ok, _, err) = kubectl(&bad_kc, &["get", "pods"]);
    assert!(!ok && err.contains("Unauthorized"), "{err}");
    s.stop().await;
}
