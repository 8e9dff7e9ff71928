//! A serving certificate that is replaced while the server runs (`serverTLSBootstrap`):
//! each TLS handshake takes the current one; before the first is issued, handshakes
//! fail (upstream: "no serving certificate available for the kubelet").

use std::sync::{Arc, RwLock};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use crate::error::ServerError;

#[derive(Debug, Default)]
pub struct ServingCert {
    current: RwLock<Option<Arc<CertifiedKey>>>,
}

impl ServingCert {
    /// Serve the certificate chain and key in `pem` (one file holding both) from the next
    /// handshake on.
    pub fn set_pem(&self, pem: &[u8]) -> Result<(), ServerError> {
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(pem)
            .collect::<Result<_, _>>()
            .map_err(|e| ServerError::Tls(format!("serving certificate: {e}")))?;
        if certs.is_empty() {
            return Err(ServerError::Tls(
                "serving certificate: no CERTIFICATE block".into(),
            ));
        }
        let key = PrivateKeyDer::from_pem_slice(pem)
            .map_err(|e| ServerError::Tls(format!("serving certificate key: {e}")))?;
        let signing = rustls::crypto::ring::sign::any_supported_type(&key)
            .map_err(|e| ServerError::Tls(format!("serving certificate key: {e}")))?;
        let certified = Arc::new(CertifiedKey::new(certs, signing));
        *kubelet_core::supervisor::write(&self.current, "serving certificate") = Some(certified);
        Ok(())
    }

    /// Whether a certificate is being served.
    pub fn is_set(&self) -> bool {
        kubelet_core::supervisor::read(&self.current, "serving certificate").is_some()
    }
}

impl ResolvesServerCert for ServingCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        kubelet_core::supervisor::read(&self.current, "serving certificate").clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serves_nothing_until_set_then_the_pair() {
        let slot = ServingCert::default();
        assert!(!slot.is_set());
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["node-a".to_string()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let pem = format!("{}{}", cert.pem(), key.serialize_pem());
        slot.set_pem(pem.as_bytes()).unwrap();
        assert!(slot.is_set());
        assert!(slot.set_pem(b"not pem").is_err());
        assert!(slot.is_set(), "a bad pair keeps the current one");
    }
}
