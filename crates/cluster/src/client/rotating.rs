//! A client whose TLS client certificate can change while it runs (certificate rotation
//! after TLS bootstrap): the rustls configuration asks a shared [`CurrentCert`] for the
//! certificate at each handshake, so new connections use the rotated one. The request
//! stack is kube's (base URI, auth, rate limit) over hyper with rustls.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use kube::client::ConfigExt;
use rustls::SignatureScheme;
use rustls::client::ResolvesClientCert;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;
use tower::{BoxError, ServiceBuilder};

use crate::error::ClusterError;

fn err(msg: impl std::fmt::Display) -> ClusterError {
    ClusterError::Bootstrap(msg.to_string())
}

/// The certificate handshakes present; swapped by the rotation task.
#[derive(Debug)]
pub struct CurrentCert {
    key: RwLock<Arc<CertifiedKey>>,
}

impl CurrentCert {
    /// From a PEM holding the certificate (chain) and the private key.
    pub fn from_pem(pem: &[u8]) -> Result<Arc<Self>, ClusterError> {
        Ok(Arc::new(CurrentCert {
            key: RwLock::new(certified_key(pem)?),
        }))
    }

    pub fn replace(&self, pem: &[u8]) -> Result<(), ClusterError> {
        let key = certified_key(pem)?;
        *kubelet_core::supervisor::write(&self.key, "client certificate") = key;
        Ok(())
    }
}

impl ResolvesClientCert for CurrentCert {
    fn resolve(&self, _hints: &[&[u8]], _schemes: &[SignatureScheme]) -> Option<Arc<CertifiedKey>> {
        Some(kubelet_core::supervisor::read(&self.key, "client certificate").clone())
    }

    fn has_certs(&self) -> bool {
        true
    }
}

fn certified_key(pem: &[u8]) -> Result<Arc<CertifiedKey>, ClusterError> {
    use rustls::pki_types::pem::{PemObject, SectionKind};
    let mut certs: Vec<CertificateDer<'static>> = Vec::new();
    let mut key: Option<PrivateKeyDer<'static>> = None;
    for item in <(SectionKind, Vec<u8>)>::pem_slice_iter(pem) {
        let (kind, der) = item.map_err(err)?;
        match kind {
            SectionKind::Certificate => certs.push(der.into()),
            SectionKind::PrivateKey => key = Some(PrivateKeyDer::Pkcs8(der.into())),
            SectionKind::EcPrivateKey => key = Some(PrivateKeyDer::Sec1(der.into())),
            SectionKind::RsaPrivateKey => key = Some(PrivateKeyDer::Pkcs1(der.into())),
            _ => {}
        }
    }
    let key = key.ok_or_else(|| err("no private key in the client certificate file"))?;
    if certs.is_empty() {
        return Err(err("no certificate in the client certificate file"));
    }
    let signing = rustls::crypto::ring::sign::any_supported_type(&key).map_err(err)?;
    Ok(Arc::new(CertifiedKey::new(certs, signing)))
}

/// A kube client for `config` that presents `cert`, rate limited like [`super::build`].
pub fn build(
    config: kube::Config,
    cert: Arc<CurrentCert>,
    qps: f64,
    burst: u32,
) -> Result<kube::Client, ClusterError> {
    let mut tls = config
        .rustls_client_config()
        .map_err(ClusterError::Client)?;
    tls.client_auth_cert_resolver = cert;
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_connect_timeout(Some(Duration::from_secs(30)));
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .wrap_connector(http);
    let hyper = HyperClient::builder(TokioExecutor::new()).build(https);
    let service = ServiceBuilder::new()
        .layer(config.base_uri_layer())
        .option_layer(config.auth_layer().map_err(ClusterError::Client)?)
        .layer(super::ratelimit::RateLimitLayer::new(qps, burst))
        .map_err(BoxError::from)
        .service(hyper);
    Ok(kube::Client::new(service, config.default_namespace))
}
