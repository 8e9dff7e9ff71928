//! The kubelet's serving certificate from the cluster (`serverTLSBootstrap`, upstream
//! NewKubeletServerCertificateManager): an ECDSA P-256 key and a CSR for signer
//! `kubernetes.io/kubelet-serving` (CN `system:node:<node>`, O `system:nodes`, usages
//! digital signature and server auth, SANs = the node's host names and IP addresses as
//! its status reports them). Once approved and issued, the pair is stored as
//! `<cert-dir>/kubelet-server-<time>.pem` linked from `kubelet-server-current.pem` and
//! served on the HTTPS port from the next handshake; a valid stored pair is reused after a
//! restart. It is renewed at a jittered 70–90% of its life. Until the first certificate
//! is issued, TLS handshakes on the port fail, as upstream.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use k8s_openapi::api::core::v1::NodeAddress;
use kubelet_server::tls::ServingCert;
use tokio_util::sync::CancellationToken;

use crate::backoff::Backoff;
use crate::bootstrap;
use crate::error::ClusterError;
use crate::rotation::{sleep_until_rotation, validity};

pub const SIGNER: &str = "kubernetes.io/kubelet-serving";
pub const PREFIX: &str = "kubelet-server";
pub const USAGES: &[&str] = &["digital signature", "server auth"];

pub struct ServingCertManager {
    pub client: kube::Client,
    pub node_name: String,
    pub cert_dir: PathBuf,
    /// The node's addresses, as its status reports them.
    pub addresses: Vec<NodeAddress>,
    pub slot: Arc<ServingCert>,
}

/// The subject alternative names for `addresses` (upstream: host names from Hostname,
/// InternalDNS and ExternalDNS, IPs from InternalIP and ExternalIP), deduplicated.
pub fn alt_names(addresses: &[NodeAddress]) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for kind in [
        "Hostname",
        "InternalDNS",
        "ExternalDNS",
        "InternalIP",
        "ExternalIP",
    ] {
        for a in addresses.iter().filter(|a| a.type_ == kind) {
            if !a.address.is_empty() && !names.contains(&a.address) {
                names.push(a.address.clone());
            }
        }
    }
    names
}

impl ServingCertManager {
    fn current_path(&self) -> PathBuf {
        self.cert_dir.join(format!("{PREFIX}-current.pem"))
    }

    /// The stored pair when it is still valid and loads: its (notBefore, notAfter).
    fn load_current(&self) -> Option<(SystemTime, SystemTime)> {
        let pem = std::fs::read(self.current_path()).ok()?;
        let (from, to) = validity(&pem)?;
        if SystemTime::now() >= to {
            return None;
        }
        match self.slot.set_pem(&pem) {
            Ok(()) => Some((from, to)),
            Err(e) => {
                tracing::warn!(error = %e, "stored serving certificate unusable; requesting a new one");
                None
            }
        }
    }

    pub async fn run(self, cancel: CancellationToken) {
        if alt_names(&self.addresses).is_empty() {
            tracing::warn!(
                "serverTLSBootstrap: the node has no address to put in a serving certificate; none is requested"
            );
            return;
        }
        let mut backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(60));
        let mut just_issued = false;
        loop {
            let current = self.load_current();
            if current.is_none() && just_issued && !backoff.wait(&cancel).await {
                // Issued but not loadable: do not spin on new requests.
                return;
            }
            if let Some((from, to)) = current {
                backoff.reset();
                if !sleep_until_rotation(from, to, "serving", &cancel).await {
                    return;
                }
            }
            loop {
                match self.request(&cancel).await {
                    Ok(()) => {
                        just_issued = true;
                        break;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "serving certificate request failed; retrying");
                        if !backoff.wait(&cancel).await {
                            return;
                        }
                    }
                }
            }
        }
    }

    async fn request(&self, cancel: &CancellationToken) -> Result<(), ClusterError> {
        let key = rcgen::KeyPair::generate().map_err(|e| ClusterError::Bootstrap(e.to_string()))?;
        let csr = bootstrap::node_request_pem(&self.node_name, &key, &alt_names(&self.addresses))?;
        let cert = bootstrap::request_signed(&self.client, &csr, SIGNER, USAGES, cancel).await?;
        let link = bootstrap::store_pair(&self.cert_dir, PREFIX, &cert, &key.serialize_pem())?;
        tracing::info!(cert = %link.display(), "serving certificate issued");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(kind: &str, a: &str) -> NodeAddress {
        NodeAddress {
            type_: kind.into(),
            address: a.into(),
        }
    }

    #[test]
    fn alt_names_are_host_names_then_ips() {
        let names = alt_names(&[
            addr("InternalIP", "10.0.0.5"),
            addr("Hostname", "node-a"),
            addr("InternalIP", "10.0.0.5"),
            addr("ExternalIP", "203.0.113.9"),
        ]);
        assert_eq!(names, ["node-a", "10.0.0.5", "203.0.113.9"]);
        assert!(alt_names(&[]).is_empty());
    }

    #[test]
    fn the_request_carries_the_sans() {
        let key = rcgen::KeyPair::generate().unwrap();
        let pem = bootstrap::node_request_pem(
            "node-a",
            &key,
            &["node-a".to_string(), "10.0.0.5".to_string()],
        )
        .unwrap();
        let (_, p) = x509_parser::pem::parse_x509_pem(pem.as_bytes()).unwrap();
        use x509_parser::prelude::FromDer;
        let (_, csr) =
            x509_parser::certification_request::X509CertificationRequest::from_der(&p.contents)
                .unwrap();
        let mut sans = Vec::new();
        for ext in csr.requested_extensions().into_iter().flatten() {
            if let x509_parser::extensions::ParsedExtension::SubjectAlternativeName(san) = ext {
                for n in &san.general_names {
                    sans.push(n.to_string());
                }
            }
        }
        assert_eq!(sans.len(), 2, "{sans:?}");
        assert!(sans.iter().any(|s| s.contains("node-a")), "{sans:?}");
        assert!(
            sans.contains(&"IPAddress(0a:00:00:05)".to_string()),
            "an IP SAN: {sans:?}"
        );
    }
}
