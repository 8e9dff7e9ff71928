//! `tlsMinVersion` and `tlsCipherSuites` with Go's names. rustls speaks TLS 1.2 and
//! 1.3 only, so VersionTLS10/11 mean 1.2; Go suites rustls does not implement (CBC,
//! RSA key exchange, 3DES, RC4) are left out with a warning, unknown names are errors.
//! As in Go, TLS 1.3 suites are always enabled.

use rustls::SupportedCipherSuite;
use rustls::crypto::ring::cipher_suite as cs;

use crate::error::ServerError;

static TLS13_ONLY: [&rustls::SupportedProtocolVersion; 1] = [&rustls::version::TLS13];

pub fn protocol_versions(
    min: &str,
) -> Result<&'static [&'static rustls::SupportedProtocolVersion], ServerError> {
    match min {
        "" | "VersionTLS10" | "VersionTLS11" | "VersionTLS12" => Ok(rustls::ALL_VERSIONS),
        "VersionTLS13" => Ok(&TLS13_ONLY),
        other => Err(ServerError::Tls(format!(
            "unknown tlsMinVersion {other:?}: use VersionTLS10..VersionTLS13"
        ))),
    }
}

const GO_ONLY: [&str; 14] = [
    "TLS_RSA_WITH_RC4_128_SHA",
    "TLS_RSA_WITH_3DES_EDE_CBC_SHA",
    "TLS_RSA_WITH_AES_128_CBC_SHA",
    "TLS_RSA_WITH_AES_256_CBC_SHA",
    "TLS_RSA_WITH_AES_128_CBC_SHA256",
    "TLS_RSA_WITH_AES_128_GCM_SHA256",
    "TLS_RSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_ECDSA_WITH_RC4_128_SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA",
    "TLS_ECDHE_RSA_WITH_RC4_128_SHA",
    "TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA",
    "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA",
];

fn tls12(name: &str) -> Option<SupportedCipherSuite> {
    Some(match name {
        "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256" => cs::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
        "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384" => cs::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
        "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305"
        | "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256" => {
            cs::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256
        }
        "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256" => cs::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
        "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384" => cs::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
        "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305" | "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256" => {
            cs::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256
        }
        _ => return None,
    })
}

const TLS13_NAMES: [&str; 3] = [
    "TLS_AES_128_GCM_SHA256",
    "TLS_AES_256_GCM_SHA384",
    "TLS_CHACHA20_POLY1305_SHA256",
];

pub fn cipher_suites(names: &[String]) -> Result<Vec<SupportedCipherSuite>, ServerError> {
    let all = rustls::crypto::ring::default_provider().cipher_suites;
    if names.is_empty() {
        return Ok(all);
    }
    let mut out: Vec<SupportedCipherSuite> = vec![
        cs::TLS13_AES_128_GCM_SHA256,
        cs::TLS13_AES_256_GCM_SHA384,
        cs::TLS13_CHACHA20_POLY1305_SHA256,
    ];
    let mut tls12_count = 0;
    for name in names {
        let name = name.trim();
        if let Some(suite) = tls12(name) {
            if !out.contains(&suite) {
                out.push(suite);
                tls12_count += 1;
            }
        } else if TLS13_NAMES.contains(&name) {
            // Always on, as in Go.
        } else if GO_ONLY.contains(&name) {
            tracing::warn!(
                cipher = name,
                "cipher suite not supported by kubelet-rs (rustls); ignored"
            );
        } else {
            return Err(ServerError::Tls(format!(
                "Cipher suite {name} not supported or doesn't exist"
            )));
        }
    }
    if tls12_count == 0 {
        tracing::warn!(
            "no TLS 1.2 cipher suite of tlsCipherSuites is supported: serving TLS 1.3 only"
        );
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_go_names() {
        let suites = cipher_suites(&[
            "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256".into(),
            "TLS_RSA_WITH_AES_128_CBC_SHA".into(),
        ])
        .unwrap();
        assert_eq!(suites.len(), 4, "3 TLS 1.3 suites + 1");
        assert!(cipher_suites(&["TLS_BOGUS".into()]).is_err());
        assert_eq!(
            cipher_suites(&[]).unwrap().len(),
            rustls::crypto::ring::default_provider().cipher_suites.len()
        );
        assert_eq!(protocol_versions("VersionTLS13").unwrap().len(), 1);
        assert!(protocol_versions("VersionSSL30").is_err());
    }
}
