//! TLS for the HTTPS port: the serving certificate (given, or self-signed once into the
//! cert dir and reused), `tlsMinVersion`, `tlsCipherSuites`, and client certificates
//! requested (never required) when a client CA is configured.

mod ciphers;
mod dynamic;
mod selfsigned;
mod verifier;

use std::path::Path;
use std::sync::Arc;

use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::danger::ClientCertVerifier;

pub use ciphers::{cipher_suites, protocol_versions};
pub use dynamic::ServingCert;
pub use selfsigned::{CERT_FILE, KEY_FILE, ensure_self_signed};
pub use verifier::RequestClientCert;

use crate::error::ServerError;
use crate::settings::{AuthSettings, TlsSettings};

fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, ServerError> {
    let certs: Result<Vec<_>, _> = CertificateDer::pem_file_iter(path)
        .map_err(|e| ServerError::Tls(format!("reading {}: {e}", path.display())))?
        .collect();
    let certs = certs.map_err(|e| ServerError::Tls(format!("parsing {}: {e}", path.display())))?;
    if certs.is_empty() {
        return Err(ServerError::Tls(format!(
            "no certificate in {}",
            path.display()
        )));
    }
    Ok(certs)
}

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, ServerError> {
    PrivateKeyDer::from_pem_file(path)
        .map_err(|e| ServerError::Tls(format!("reading private key {}: {e}", path.display())))
}

/// The verifier of client chains against `clientCAFile`, if one is configured.
pub fn client_ca_verifier(
    auth: &AuthSettings,
) -> Result<Option<Arc<dyn ClientCertVerifier>>, ServerError> {
    let Some(path) = auth.client_ca_file.as_deref() else {
        return Ok(None);
    };
    let mut roots = rustls::RootCertStore::empty();
    for cert in read_certs(path)? {
        roots
            .add(cert)
            .map_err(|e| ServerError::Tls(format!("client CA {}: {e}", path.display())))?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier =
        rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
            .build()
            .map_err(|e| ServerError::Tls(format!("client CA {}: {e}", path.display())))?;
    Ok(Some(verifier))
}

/// The rustls server config for the HTTPS port.
pub fn server_config(
    tls: &TlsSettings,
    node_name: &str,
    client_ca: Option<Arc<dyn ClientCertVerifier>>,
) -> Result<Arc<ServerConfig>, ServerError> {
    if let Some(serving) = &tls.serving {
        let builder = tls_builder(tls)?;
        let builder = match client_ca {
            Some(inner) => {
                builder.with_client_cert_verifier(Arc::new(RequestClientCert::new(inner)))
            }
            None => builder.with_no_client_auth(),
        };
        let mut config = builder.with_cert_resolver(serving.clone());
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        return Ok(Arc::new(config));
    }
    let (cert_path, key_path) = match (&tls.cert_file, &tls.key_file) {
        (Some(c), Some(k)) => (c.clone(), k.clone()),
        (None, None) => ensure_self_signed(&tls.cert_dir, node_name)?,
        _ => {
            return Err(ServerError::Tls(
                "tlsCertFile and tlsPrivateKeyFile must be given together".into(),
            ));
        }
    };
    let certs = read_certs(&cert_path)?;
    let key = read_key(&key_path)?;
    let builder = tls_builder(tls)?;
    let builder = match client_ca {
        Some(inner) => builder.with_client_cert_verifier(Arc::new(RequestClientCert::new(inner))),
        None => builder.with_no_client_auth(),
    };
    let mut config = builder.with_single_cert(certs, key).map_err(|e| {
        ServerError::Tls(format!("serving certificate {}: {e}", cert_path.display()))
    })?;
    // Upgraded streams (SPDY, WebSocket) need HTTP/1.1.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// The config builder with the configured protocol versions and cipher suites.
fn tls_builder(
    tls: &TlsSettings,
) -> Result<rustls::ConfigBuilder<ServerConfig, rustls::WantsVerifier>, ServerError> {
    let mut provider = rustls::crypto::ring::default_provider();
    provider.cipher_suites = cipher_suites(&tls.cipher_suites)?;
    ServerConfig::builder_with_provider(Arc::new(provider))
        .with_protocol_versions(protocol_versions(&tls.min_version)?)
        .map_err(|e| ServerError::Tls(e.to_string()))
}
