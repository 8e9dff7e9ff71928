//! Authentication and authorization of the HTTPS port, with certificates the test
//! makes: a provided serving certificate, x509 client certificates (CN = user, O =
//! groups), anonymous requests, 401 and 403 with Status bodies.

mod support;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
};
use support::http::*;
use support::*;

struct Ca {
    pem: String,
    issuer: Issuer<'static, KeyPair>,
}

fn ca(name: &str) -> Ca {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name.push(DnType::CommonName, name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let cert = params.self_signed(&key).unwrap();
    Ca {
        pem: cert.pem(),
        issuer: Issuer::new(params, key),
    }
}

/// (cert PEM, key PEM) signed by `ca`.
fn leaf(
    ca: &Ca,
    cn: &str,
    orgs: &[&str],
    sans: &[&str],
    usage: ExtendedKeyUsagePurpose,
) -> (String, String) {
    let key = KeyPair::generate().unwrap();
    let mut params =
        CertificateParams::new(sans.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
    params.distinguished_name.push(DnType::CommonName, cn);
    for o in orgs {
        params.distinguished_name.push(DnType::OrganizationName, *o);
    }
    params.extended_key_usages = vec![usage];
    let cert = params.signed_by(&key, &ca.issuer).unwrap();
    (cert.pem(), key.serialize_pem())
}

fn client(ca_pem: &str, identity: Option<(&str, &str)>) -> reqwest::Client {
    let mut b = reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(ca_pem.as_bytes()).unwrap());
    if let Some((cert, key)) = identity {
        b = b.identity(reqwest::Identity::from_pem(format!("{cert}{key}").as_bytes()).unwrap());
    }
    b.build().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn x509_clients_anonymous_and_forbidden() {
    let mut node = Node::new("api-auth");
    let dir = node.dir.path().to_path_buf();
    let server_ca = ca("server-ca");
    let client_ca = ca("client-ca");
    let other_ca = ca("other-ca");
    let (srv_cert, srv_key) = leaf(
        &server_ca,
        "kubelet",
        &[],
        &["localhost", "127.0.0.1"],
        ExtendedKeyUsagePurpose::ServerAuth,
    );
    std::fs::write(dir.join("srv.crt"), &srv_cert).unwrap();
    std::fs::write(dir.join("srv.key"), &srv_key).unwrap();
    std::fs::write(dir.join("client-ca.crt"), &client_ca.pem).unwrap();
    let (alice_cert, alice_key) = leaf(
        &client_ca,
        "alice",
        &["dev", "ops"],
        &[],
        ExtendedKeyUsagePurpose::ClientAuth,
    );
    let (mallory_cert, mallory_key) = leaf(
        &other_ca,
        "mallory",
        &[],
        &[],
        ExtendedKeyUsagePurpose::ClientAuth,
    );

    let ports = ApiPorts::new();
    let base = |node: &Node, extra: &[&str]| -> Vec<String> {
        let mut f = ports.flags(node);
        f.retain(|f| !f.starts_with("--anonymous-auth") && !f.starts_with("--authorization-mode"));
        f.push(format!("--tls-cert-file={}", dir.join("srv.crt").display()));
        f.push(format!(
            "--tls-private-key-file={}",
            dir.join("srv.key").display()
        ));
        f.push(format!(
            "--client-ca-file={}",
            dir.join("client-ca.crt").display()
        ));
        f.extend(extra.iter().map(|s| s.to_string()));
        f
    };
    let flags = base(
        &node,
        &["--anonymous-auth=false", "--authorization-mode=AlwaysAllow"],
    );
    node.start_with(&flags.iter().map(String::as_str).collect::<Vec<_>>());
    wait_listening(ports.secure).await;
    let url = format!("https://localhost:{}/pods", ports.secure);

    // The provided certificate is served: a client trusting only its CA connects.
    let anonymous = client(&server_ca.pem, None);
    let resp = anonymous
        .get(&url)
        .send()
        .await
        .expect("TLS with the provided certificate");
    assert_eq!(resp.status(), 401);
    assert_status(&resp.text().await.unwrap(), 401, "Unauthorized");
    assert!(
        !cert_dir(&node).join("kubelet.crt").exists(),
        "no self-signed cert when one is provided"
    );

    // A client certificate from the client CA authenticates.
    let alice = client(&server_ca.pem, Some((&alice_cert, &alice_key)));
    let resp = alice.get(&url).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert!(
        resp.text()
            .await
            .unwrap()
            .starts_with(r#"{"kind":"PodList""#)
    );

    // A certificate from another CA is rejected, not treated as anonymous.
    let mallory = client(&server_ca.pem, Some((&mallory_cert, &mallory_key)));
    assert_eq!(mallory.get(&url).send().await.unwrap().status(), 401);
    node.stop();

    // Webhook authorization without an API server: authenticated, then forbidden.
    let flags = base(
        &node,
        &["--anonymous-auth=true", "--authorization-mode=Webhook"],
    );
    node.start_with(&flags.iter().map(String::as_str).collect::<Vec<_>>());
    wait_listening(ports.secure).await;
    let resp = anonymous.get(&url).send().await.unwrap();
    assert_eq!(resp.status(), 403);
    let body = resp.text().await.unwrap();
    let status = assert_status(&body, 403, "Forbidden");
    let msg = status["message"].as_str().unwrap();
    assert!(
        msg.starts_with("Forbidden (user=system:anonymous, verb=get, resource=nodes, subresource(s)=[pods proxy])"),
        "{msg}"
    );
    let resp = alice
        .get(format!("https://localhost:{}/stats/summary", ports.secure))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    let body = resp.text().await.unwrap();
    assert!(
        body.contains("user=alice") && body.contains("subresource(s)=[stats]"),
        "{body}"
    );
    node.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_settings_are_applied() {
    let mut node = Node::new("api-tls");
    let ports = ApiPorts::new();
    let mut flags = ports.flags(&node);
    flags.push("--tls-min-version=VersionTLS13".into());
    node.start_with(&flags.iter().map(String::as_str).collect::<Vec<_>>());
    wait_listening(ports.secure).await;
    // A TLS 1.2-only client cannot connect; the default client (1.3) can.
    let tls12 = reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .max_tls_version(reqwest::tls::Version::TLS_1_2)
        .build()
        .unwrap();
    assert!(tls12.get(ports.https("/healthz")).send().await.is_err());
    let (status, body) = get(&insecure_client(), &ports.https("/healthz")).await;
    assert_eq!((status, body.as_str()), (200, "ok"));
    node.stop();

    // An unknown cipher suite stops the kubelet at start.
    flags.push("--tls-cipher-suites=TLS_NOT_A_SUITE".into());
    node.start_with(&flags.iter().map(String::as_str).collect::<Vec<_>>());
    eventually("kubelet exits", DEADLINE, || {
        let running = node.is_running();
        async move { (!running).then_some(()) }
    })
    .await;
    assert!(node.logs().contains("TLS_NOT_A_SUITE"), "{}", node.logs());
}
