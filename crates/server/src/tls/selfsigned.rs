//! The self-signed serving certificate: generated once into the cert dir as upstream
//! does (a CA "<host>-ca@<unix time>" and a serving cert "<host>@<unix time>" signed by
//! it, valid a year, the cert file holding both), and reused while both files exist.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

use crate::error::ServerError;

pub const CERT_FILE: &str = "kubelet.crt";
pub const KEY_FILE: &str = "kubelet.key";

fn tls_err(e: impl std::fmt::Display) -> ServerError {
    ServerError::Tls(format!("generating the self-signed certificate: {e}"))
}

fn write(path: &Path, data: &[u8], mode: u32) -> Result<(), ServerError> {
    let werr = |source| ServerError::Write {
        path: path.to_path_buf(),
        source,
    };
    // Write a temp file and rename, so a crash never leaves half a certificate.
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(&tmp)
        .map_err(werr)?;
    f.write_all(data).map_err(werr)?;
    f.sync_all().map_err(werr)?;
    std::fs::rename(&tmp, path).map_err(werr)
}

/// (cert path, key path) in `cert_dir`, generating them when either is missing.
pub fn ensure_self_signed(cert_dir: &Path, host: &str) -> Result<(PathBuf, PathBuf), ServerError> {
    let cert = cert_dir.join(CERT_FILE);
    let key = cert_dir.join(KEY_FILE);
    if cert.is_file() && key.is_file() {
        tracing::info!(cert = %cert.display(), "using the existing self-signed serving certificate");
        return Ok((cert, key));
    }
    std::fs::create_dir_all(cert_dir).map_err(|source| ServerError::Write {
        path: cert_dir.to_path_buf(),
        source,
    })?;
    let (cert_pem, key_pem) = generate(host)?;
    write(&key, key_pem.as_bytes(), 0o600)?;
    write(&cert, cert_pem.as_bytes(), 0o644)?;
    tracing::info!(cert = %cert.display(), "generated a self-signed serving certificate");
    Ok((cert, key))
}

/// PEM of (serving cert followed by its CA, serving key).
pub fn generate(host: &str) -> Result<(String, String), ServerError> {
    let now = time_now();
    let stamp = now.unix_timestamp();
    let until = now + time::Duration::days(365);

    let ca_key = KeyPair::generate().map_err(tls_err)?;
    let mut ca = CertificateParams::new(Vec::<String>::new()).map_err(tls_err)?;
    ca.distinguished_name
        .push(DnType::CommonName, format!("{host}-ca@{stamp}"));
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    ca.not_before = now;
    ca.not_after = until;
    let ca_cert = ca.self_signed(&ca_key).map_err(tls_err)?;
    let issuer = Issuer::new(ca, ca_key);

    let key = KeyPair::generate().map_err(tls_err)?;
    let mut params = CertificateParams::new(vec![host.to_string()]).map_err(tls_err)?;
    params
        .distinguished_name
        .push(DnType::CommonName, format!("{host}@{stamp}"));
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.not_before = now;
    params.not_after = until;
    let cert = params.signed_by(&key, &issuer).map_err(tls_err)?;
    Ok((
        format!("{}{}", cert.pem(), ca_cert.pem()),
        key.serialize_pem(),
    ))
}

fn time_now() -> time::OffsetDateTime {
    time::OffsetDateTime::now_utc()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_once_then_reused() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = ensure_self_signed(dir.path(), "node-a").unwrap();
        let first = std::fs::read(&cert).unwrap();
        assert_eq!(
            String::from_utf8_lossy(&first)
                .matches("BEGIN CERTIFICATE")
                .count(),
            2
        );
        assert!(
            std::fs::read_to_string(&key)
                .unwrap()
                .contains("PRIVATE KEY")
        );
        ensure_self_signed(dir.path(), "node-a").unwrap();
        assert_eq!(
            std::fs::read(&cert).unwrap(),
            first,
            "reused, not regenerated"
        );
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
}
