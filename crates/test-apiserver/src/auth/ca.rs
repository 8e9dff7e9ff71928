//! The test CA: serving certificate, client certificates, CSR signing, and reading the
//! identity (CN = user, O = groups) from a presented client certificate.

use std::sync::Arc;
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, CertificateSigningRequestParams, DistinguishedName,
    DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use super::UserInfo;

/// A CA failure.
#[derive(Debug, thiserror::Error)]
pub enum CaError {
    /// Certificate generation failed.
    #[error("certificate generation: {0}")]
    Rcgen(#[from] rcgen::Error),
    /// TLS configuration failed.
    #[error("tls configuration: {0}")]
    Tls(#[from] rustls::Error),
    /// Client verifier failed to build.
    #[error("client verifier: {0}")]
    Verifier(String),
}

/// A certificate and its private key, PEM encoded.
#[derive(Debug, Clone)]
pub struct CertPair {
    /// Certificate PEM.
    pub cert_pem: String,
    /// PKCS#8 key PEM.
    pub key_pem: String,
    cert_der: Vec<u8>,
    key_der: Vec<u8>,
}

impl CertPair {
    /// The PKCS#8 private key DER.
    pub fn key_der(&self) -> Vec<u8> {
        self.key_der.clone()
    }
}

/// The CA.
pub struct TestCa {
    issuer: Issuer<'static, KeyPair>,
    cert_pem: String,
    cert_der: Vec<u8>,
}

fn validity(params: &mut CertificateParams, lifetime: Duration) {
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::hours(1);
    params.not_after =
        now + time::Duration::seconds(i64::try_from(lifetime.as_secs()).unwrap_or(i64::MAX / 2));
}

/// Validity of a certificate issued for a CSR: backdated for clock skew like the
/// controller-manager's signer (5 minutes), but never by more than a tenth of the
/// lifetime, so a short-lived certificate's rotation point (70-90% of its life) stays in
/// the future.
fn csr_validity(params: &mut CertificateParams, lifetime: Duration) {
    let now = time::OffsetDateTime::now_utc();
    let backdate = lifetime.min(Duration::from_secs(3000)) / 10;
    params.not_before = now - time::Duration::milliseconds(backdate.as_millis() as i64);
    params.not_after =
        now + time::Duration::seconds(i64::try_from(lifetime.as_secs()).unwrap_or(i64::MAX / 2));
}

fn serial() -> rcgen::SerialNumber {
    let mut b = super::random_bytes::<16>();
    b[0] &= 0x7f;
    rcgen::SerialNumber::from_slice(&b)
}

impl TestCa {
    /// A new self-signed CA valid for ten years.
    pub fn new() -> Result<Self, CaError> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, "test-apiserver-ca");
        params.distinguished_name = dn;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        validity(&mut params, Duration::from_secs(10 * 365 * 24 * 3600));
        let cert = params.self_signed(&key)?;
        let cert_pem = cert.pem();
        let cert_der = cert.der().to_vec();
        Ok(TestCa {
            issuer: Issuer::new(params, key),
            cert_pem,
            cert_der,
        })
    }

    /// The CA certificate PEM (`ca.crt`).
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    fn issue(
        &self,
        mut params: CertificateParams,
        lifetime: Duration,
    ) -> Result<CertPair, CaError> {
        let key = KeyPair::generate()?;
        validity(&mut params, lifetime);
        params.serial_number = Some(serial());
        params.use_authority_key_identifier_extension = true;
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok(CertPair {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            cert_der: cert.der().to_vec(),
            key_der: key.serialize_der(),
        })
    }

    /// A serving certificate for the API server (localhost, 127.0.0.1, kubernetes.default...).
    pub fn serving_cert(&self) -> Result<CertPair, CaError> {
        let mut params = CertificateParams::new(vec![
            "localhost".to_string(),
            "127.0.0.1".to_string(),
            "::1".to_string(),
            "kubernetes".to_string(),
            "kubernetes.default".to_string(),
            "kubernetes.default.svc".to_string(),
            "kubernetes.default.svc.cluster.local".to_string(),
            super::super::registry::service::KUBERNETES_SERVICE_IP.to_string(),
        ])?;
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, "kube-apiserver");
        params.distinguished_name = dn;
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        self.issue(params, Duration::from_secs(365 * 24 * 3600))
    }

    /// A client certificate: CN = user, O = groups.
    pub fn client_cert(
        &self,
        user: &str,
        groups: &[&str],
        lifetime: Duration,
    ) -> Result<CertPair, CaError> {
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, user);
        for g in groups {
            dn.push(DnType::OrganizationName, *g);
        }
        params.distinguished_name = dn;
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        self.issue(params, lifetime)
    }

    /// Signs a PEM CSR with the given CSR-API usages; returns the certificate PEM.
    pub fn sign_csr(
        &self,
        csr_pem: &str,
        usages: &[String],
        lifetime: Duration,
    ) -> Result<String, CaError> {
        let mut csr = CertificateSigningRequestParams::from_pem(csr_pem)?;
        csr_validity(&mut csr.params, lifetime);
        csr.params.serial_number = Some(serial());
        csr.params.is_ca = IsCa::ExplicitNoCa;
        csr.params.use_authority_key_identifier_extension = true;
        csr.params.key_usages.clear();
        csr.params.extended_key_usages.clear();
        for u in usages {
            match u.as_str() {
                "digital signature" => csr
                    .params
                    .key_usages
                    .push(KeyUsagePurpose::DigitalSignature),
                "key encipherment" => csr.params.key_usages.push(KeyUsagePurpose::KeyEncipherment),
                "client auth" => csr
                    .params
                    .extended_key_usages
                    .push(ExtendedKeyUsagePurpose::ClientAuth),
                "server auth" => csr
                    .params
                    .extended_key_usages
                    .push(ExtendedKeyUsagePurpose::ServerAuth),
                _ => {}
            }
        }
        Ok(csr.signed_by(&self.issuer)?.pem())
    }

    /// A rustls server config presenting `serving`, asking for (not requiring) client certs
    /// signed by this CA.
    pub fn server_config(&self, serving: &CertPair) -> Result<rustls::ServerConfig, CaError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        roots.add(CertificateDer::from(self.cert_der.clone()))?;
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
            Arc::new(roots),
            provider.clone(),
        )
        .allow_unauthenticated()
        .build()
        .map_err(|e| CaError::Verifier(e.to_string()))?;
        let chain = vec![
            CertificateDer::from(serving.cert_der.clone()),
            CertificateDer::from(self.cert_der.clone()),
        ];
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(serving.key_der.clone()));
        let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_client_cert_verifier(verifier)
            .with_single_cert(chain, key)?;
        cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(cfg)
    }
}

/// The user a verified client certificate names (CN, O).
pub fn identity_from_cert(der: &[u8]) -> Option<UserInfo> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let subject = cert.subject();
    let cn = subject
        .iter_common_name()
        .next()?
        .as_str()
        .ok()?
        .to_string();
    let mut groups: Vec<String> = subject
        .iter_organization()
        .filter_map(|o| o.as_str().ok().map(String::from))
        .collect();
    groups.push("system:authenticated".into());
    Some(UserInfo {
        name: cn,
        uid: String::new(),
        groups,
        extra: Default::default(),
    })
}

/// Reads the DER of the first certificate in a PEM string.
pub fn pem_to_der(pem: &str) -> Option<Vec<u8>> {
    use base64::Engine;
    let body: String = pem
        .lines()
        .skip_while(|l| !l.starts_with("-----BEGIN CERTIFICATE-----"))
        .skip(1)
        .take_while(|l| !l.starts_with("-----END"))
        .collect();
    base64::engine::general_purpose::STANDARD.decode(body).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_cert_identity_and_csr_signing() {
        let ca = TestCa::new().unwrap();
        let c = ca
            .client_cert(
                "system:node:n1",
                &["system:nodes"],
                Duration::from_secs(3600),
            )
            .unwrap();
        let id = identity_from_cert(&pem_to_der(&c.cert_pem).unwrap()).unwrap();
        assert_eq!(id.name, "system:node:n1");
        assert!(id.in_group("system:nodes"));

        let key = KeyPair::generate().unwrap();
        let mut p = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, "system:node:n2");
        dn.push(DnType::OrganizationName, "system:nodes");
        p.distinguished_name = dn;
        let csr = p.serialize_request(&key).unwrap().pem().unwrap();
        let cert = ca
            .sign_csr(&csr, &["client auth".to_string()], Duration::from_secs(60))
            .unwrap();
        let id = identity_from_cert(&pem_to_der(&cert).unwrap()).unwrap();
        assert_eq!(id.name, "system:node:n2");
        assert!(ca.server_config(&ca.serving_cert().unwrap()).is_ok());
    }
}
