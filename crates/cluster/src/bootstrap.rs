//! TLS bootstrap (`--bootstrap-kubeconfig`, upstream pkg/kubelet/certificate/bootstrap):
//! when the `--kubeconfig` file is missing, or its client certificate is expired, the
//! kubelet uses the bootstrap credentials to ask for a client certificate: it makes an
//! ECDSA P-256 key, sends a CertificateSigningRequest (CN `system:node:<node>`, O
//! `system:nodes`, signer `kubernetes.io/kube-apiserver-client-kubelet`, usages digital
//! signature and client auth), waits until it is approved and signed, stores key and
//! certificate in `<cert-dir>/kubelet-client-<time>.pem` with the
//! `kubelet-client-current.pem` link, and writes the kubeconfig pointing at that file.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine;
use futures::StreamExt;
use k8s_openapi::ByteString;
use k8s_openapi::api::certificates::v1::{
    CertificateSigningRequest, CertificateSigningRequestSpec,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, PostParams};
use kube::config::Kubeconfig;
use kube::runtime::{WatchStreamExt, watcher};
use tokio_util::sync::CancellationToken;

use crate::backoff::Backoff;
use crate::error::ClusterError;

pub const SIGNER: &str = "kubernetes.io/kube-apiserver-client-kubelet";
pub const CURRENT: &str = "kubelet-client-current.pem";

fn err(msg: impl std::fmt::Display) -> ClusterError {
    ClusterError::Bootstrap(msg.to_string())
}

/// Make sure `kubeconfig` holds usable credentials, bootstrapping them if needed.
pub async fn ensure(
    kubeconfig: &Path,
    bootstrap: &Path,
    cert_dir: &Path,
    node_name: &str,
    cancel: &CancellationToken,
) -> Result<(), ClusterError> {
    if usable(kubeconfig) {
        return Ok(());
    }
    tracing::info!(kubeconfig = %kubeconfig.display(), bootstrap = %bootstrap.display(), "no usable client credentials; starting TLS bootstrap");
    let config = crate::client::kubeconfig::load(bootstrap).await?;
    let client = crate::client::build(config, 0.0, 0)?;
    let key = rcgen::KeyPair::generate().map_err(err)?;
    let csr_pem = request_pem(node_name, &key)?;
    let mut backoff = Backoff::new(Duration::from_millis(500), Duration::from_secs(30));
    let cert_pem = loop {
        match request_certificate(&client, &csr_pem, cancel).await {
            Ok(pem) => break pem,
            Err(e) => {
                tracing::warn!(error = %e, "TLS bootstrap: certificate request failed; retrying");
                if !backoff.wait(cancel).await {
                    return Err(err("cancelled"));
                }
            }
        }
    };
    let current = store(cert_dir, &cert_pem, &key.serialize_pem())?;
    write_kubeconfig(bootstrap, kubeconfig, &current)?;
    tracing::info!(kubeconfig = %kubeconfig.display(), cert = %current.display(), "TLS bootstrap done: client certificate issued");
    Ok(())
}

/// The kubeconfig exists, loads, and any client certificate it names is still valid.
pub fn usable(kubeconfig: &Path) -> bool {
    let Ok(kc) = Kubeconfig::read_from(kubeconfig) else {
        return false;
    };
    for user in kc.auth_infos.iter().filter_map(|a| a.auth_info.as_ref()) {
        let pem = match (&user.client_certificate, &user.client_certificate_data) {
            (_, Some(data)) => base64::engine::general_purpose::STANDARD.decode(data).ok(),
            (Some(path), None) => std::fs::read(path).ok(),
            (None, None) => continue,
        };
        let Some(pem) = pem else { return false };
        if !cert_valid_now(&pem) {
            return false;
        }
    }
    true
}

fn cert_valid_now(pem: &[u8]) -> bool {
    let Ok((_, p)) = x509_parser::pem::parse_x509_pem(pem) else {
        return false;
    };
    let Ok(cert) = p.parse_x509() else {
        return false;
    };
    cert.validity().is_valid()
}

/// The PEM CERTIFICATE REQUEST for the node's identity.
pub fn request_pem(node_name: &str, key: &rcgen::KeyPair) -> Result<String, ClusterError> {
    node_request_pem(node_name, key, &[])
}

/// The node's CERTIFICATE REQUEST with subject alternative names (host names and IP
/// addresses, as strings).
pub fn node_request_pem(
    node_name: &str,
    key: &rcgen::KeyPair,
    alt_names: &[String],
) -> Result<String, ClusterError> {
    let mut params = rcgen::CertificateParams::new(alt_names.to_vec()).map_err(err)?;
    let mut dn = rcgen::DistinguishedName::new();
    dn.push(rcgen::DnType::OrganizationName, "system:nodes");
    dn.push(
        rcgen::DnType::CommonName,
        format!("system:node:{node_name}"),
    );
    params.distinguished_name = dn;
    params
        .serialize_request(key)
        .map_err(err)?
        .pem()
        .map_err(err)
}

/// Create the client certificate CSR and wait until it is signed (or denied / failed).
pub async fn request_certificate(
    client: &kube::Client,
    csr_pem: &str,
    cancel: &CancellationToken,
) -> Result<Vec<u8>, ClusterError> {
    request_signed(
        client,
        csr_pem,
        SIGNER,
        &["digital signature", "client auth"],
        cancel,
    )
    .await
}

/// Create a CSR for `signer` with `usages` and wait until it is signed (or denied /
/// failed).
pub async fn request_signed(
    client: &kube::Client,
    csr_pem: &str,
    signer: &str,
    usages: &[&str],
    cancel: &CancellationToken,
) -> Result<Vec<u8>, ClusterError> {
    let api: Api<CertificateSigningRequest> = Api::all(client.clone());
    let csr = CertificateSigningRequest {
        metadata: ObjectMeta {
            generate_name: Some("csr-".into()),
            ..Default::default()
        },
        spec: CertificateSigningRequestSpec {
            request: ByteString(csr_pem.as_bytes().to_vec()),
            signer_name: signer.into(),
            usages: Some(usages.iter().map(|u| u.to_string()).collect()),
            ..Default::default()
        },
        status: None,
    };
    let created = api.create(&PostParams::default(), &csr).await?;
    let name = created.metadata.name.clone().unwrap_or_default();
    tracing::info!(csr = %name, signer, "waiting for the certificate to be approved and issued");
    let stream = watcher(
        api,
        watcher::Config::default().fields(&format!("metadata.name={name}")),
    )
    .default_backoff()
    .applied_objects();
    futures::pin_mut!(stream);
    loop {
        let next = tokio::select! {
            _ = cancel.cancelled() => return Err(err("cancelled")),
            n = stream.next() => n,
        };
        let csr = match next {
            Some(Ok(csr)) => csr,
            Some(Err(e)) => {
                tracing::debug!(error = %e, "CSR watch failed; retrying");
                continue;
            }
            None => return Err(err("CSR watch ended")),
        };
        let status = csr.status.unwrap_or_default();
        for c in status.conditions.iter().flatten() {
            if (c.type_ == "Denied" || c.type_ == "Failed") && c.status == "True" {
                return Err(err(format!(
                    "certificate signing request {name} {}: {}",
                    c.type_.to_lowercase(),
                    c.message.clone().unwrap_or_default()
                )));
            }
        }
        if let Some(cert) = status.certificate.filter(|c| !c.0.is_empty()) {
            return Ok(cert.0);
        }
    }
}

/// Write `<cert-dir>/kubelet-client-<time>.pem` (certificate and key, 0600) and point
/// `kubelet-client-current.pem` at it. Returns the link's path.
pub fn store(cert_dir: &Path, cert_pem: &[u8], key_pem: &str) -> Result<PathBuf, ClusterError> {
    store_pair(cert_dir, "kubelet-client", cert_pem, key_pem)
}

/// Write `<cert-dir>/<prefix>-<time>.pem` (certificate and key, 0600) and point
/// `<prefix>-current.pem` at it. Returns the link's path.
pub fn store_pair(
    cert_dir: &Path,
    prefix: &str,
    cert_pem: &[u8],
    key_pem: &str,
) -> Result<PathBuf, ClusterError> {
    std::fs::create_dir_all(cert_dir).map_err(err)?;
    let stamp = chrono::Utc::now().format("%Y-%m-%d-%H-%M-%S");
    let file = cert_dir.join(format!("{prefix}-{stamp}.pem"));
    let mut content = cert_pem.to_vec();
    if !content.ends_with(b"\n") {
        content.push(b'\n');
    }
    content.extend_from_slice(key_pem.as_bytes());
    std::fs::write(&file, &content).map_err(err)?;
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).map_err(err)?;
    let current = format!("{prefix}-current.pem");
    let link = cert_dir.join(&current);
    let tmp = cert_dir.join(format!("{current}.tmp"));
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(&file, &tmp).map_err(err)?;
    std::fs::rename(&tmp, &link).map_err(err)?;
    Ok(link)
}

/// The kubeconfig upstream writes: the bootstrap kubeconfig's cluster, the new cert.
pub fn write_kubeconfig(bootstrap: &Path, out: &Path, cert: &Path) -> Result<(), ClusterError> {
    let kc = Kubeconfig::read_from(bootstrap).map_err(err)?;
    let context_cluster = kc
        .current_context
        .as_ref()
        .and_then(|name| kc.contexts.iter().find(|c| &c.name == name))
        .and_then(|c| c.context.as_ref())
        .map(|c| c.cluster.clone());
    let cluster = kc
        .clusters
        .iter()
        .find(|c| Some(&c.name) == context_cluster.as_ref())
        .or_else(|| kc.clusters.first())
        .and_then(|c| c.cluster.clone())
        .ok_or_else(|| err("the bootstrap kubeconfig names no cluster"))?;
    let mut c = serde_json::json!({"server": cluster.server});
    if let Some(ca) = &cluster.certificate_authority_data {
        c["certificate-authority-data"] = serde_json::json!(ca);
    } else if let Some(ca) = &cluster.certificate_authority {
        let data = std::fs::read(ca).map_err(err)?;
        c["certificate-authority-data"] =
            serde_json::json!(base64::engine::general_purpose::STANDARD.encode(data));
    }
    if cluster.insecure_skip_tls_verify == Some(true) {
        c["insecure-skip-tls-verify"] = serde_json::json!(true);
    }
    let cert = cert.display().to_string();
    let doc = serde_json::json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "default-cluster", "cluster": c}],
        "contexts": [{"name": "default-context", "context": {"cluster": "default-cluster", "namespace": "default", "user": "default-auth"}}],
        "current-context": "default-context",
        "preferences": {},
        "users": [{"name": "default-auth", "user": {"client-certificate": cert, "client-key": cert}}],
    });
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir).map_err(err)?;
    }
    let text = serde_json::to_string_pretty(&doc).map_err(err)?;
    std::fs::write(out, text).map_err(err)?;
    std::fs::set_permissions(out, std::fs::Permissions::from_mode(0o600)).map_err(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csr_has_the_node_identity() {
        let key = rcgen::KeyPair::generate().unwrap();
        let pem = request_pem("node-a", &key).unwrap();
        assert!(pem.contains("BEGIN CERTIFICATE REQUEST"));
        let (_, p) = x509_parser::pem::parse_x509_pem(pem.as_bytes()).unwrap();
        use x509_parser::prelude::FromDer;
        let (_, csr) =
            x509_parser::certification_request::X509CertificationRequest::from_der(&p.contents)
                .unwrap();
        let subject = csr.certification_request_info.subject.to_string();
        assert!(subject.contains("CN=system:node:node-a"), "{subject}");
        assert!(subject.contains("O=system:nodes"), "{subject}");
    }

    #[test]
    fn a_missing_kubeconfig_is_not_usable() {
        assert!(!usable(Path::new("/nonexistent/kubeconfig")));
    }
}
