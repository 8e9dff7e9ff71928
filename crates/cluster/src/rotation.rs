//! Client certificate rotation (`rotateCertificates`, upstream certificate manager): a
//! bootstrapped client certificate is renewed at a jittered 70–90% of its life with a new
//! key and CSR sent with the current identity; the new pair replaces
//! `kubelet-client-current.pem` and is presented from the next TLS handshake on.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio_util::sync::CancellationToken;

use crate::backoff::Backoff;
use crate::bootstrap::{self, CURRENT};
use crate::client::rotating::CurrentCert;
use crate::error::ClusterError;

pub struct Rotation {
    pub client: kube::Client,
    pub cert_dir: PathBuf,
    pub node_name: String,
    pub current: Arc<CurrentCert>,
}

/// (notBefore, notAfter) of the first certificate in `pem`.
pub fn validity(pem: &[u8]) -> Option<(SystemTime, SystemTime)> {
    let (_, p) = x509_parser::pem::parse_x509_pem(pem).ok()?;
    let cert = p.parse_x509().ok()?;
    let at = |t: i64| SystemTime::UNIX_EPOCH + Duration::from_secs(t.max(0) as u64);
    Some((
        at(cert.validity().not_before.timestamp()),
        at(cert.validity().not_after.timestamp()),
    ))
}

/// When to rotate: a jittered 70–90% of the way from notBefore to notAfter.
pub fn deadline(not_before: SystemTime, not_after: SystemTime, jitter: f64) -> SystemTime {
    let life = not_after.duration_since(not_before).unwrap_or_default();
    not_before + life.mul_f64(0.7 + 0.2 * jitter.clamp(0.0, 1.0))
}

/// Sleep until the jittered rotation point of a certificate valid from `not_before` to
/// `not_after`; false when cancelled first. `what` names the certificate in the log.
pub async fn sleep_until_rotation(
    not_before: SystemTime,
    not_after: SystemTime,
    what: &str,
    cancel: &CancellationToken,
) -> bool {
    let jitter = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| f64::from(d.subsec_nanos() % 1000) / 1000.0)
        .unwrap_or(0.5);
    let wait = deadline(not_before, not_after, jitter)
        .duration_since(SystemTime::now())
        .unwrap_or_default();
    tracing::info!(
        wait_secs = wait.as_secs(),
        "{what} certificate rotation scheduled"
    );
    tokio::select! {
        _ = cancel.cancelled() => false,
        _ = tokio::time::sleep(wait) => true,
    }
}

impl Rotation {
    pub async fn run(self, cancel: CancellationToken) {
        let mut backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(60));
        loop {
            let pem = std::fs::read(self.cert_dir.join(CURRENT)).unwrap_or_default();
            let Some((from, to)) = validity(&pem) else {
                tracing::warn!(dir = %self.cert_dir.display(), "cannot read the current client certificate; rotation stops");
                return;
            };
            if !sleep_until_rotation(from, to, "client", &cancel).await {
                return;
            }
            loop {
                match self.rotate(&cancel).await {
                    Ok(()) => {
                        backoff.reset();
                        break;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "client certificate rotation failed; retrying");
                        if !backoff.wait(&cancel).await {
                            return;
                        }
                    }
                }
            }
        }
    }

    async fn rotate(&self, cancel: &CancellationToken) -> Result<(), ClusterError> {
        let key = rcgen::KeyPair::generate().map_err(|e| ClusterError::Bootstrap(e.to_string()))?;
        let csr = bootstrap::request_pem(&self.node_name, &key)?;
        let cert = bootstrap::request_certificate(&self.client, &csr, cancel).await?;
        let link = bootstrap::store(&self.cert_dir, &cert, &key.serialize_pem())?;
        let pem = std::fs::read(&link).map_err(|e| ClusterError::Bootstrap(e.to_string()))?;
        self.current.replace(&pem)?;
        tracing::info!(cert = %link.display(), "client certificate rotated");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotation_between_seventy_and_ninety_percent() {
        let from = SystemTime::UNIX_EPOCH + Duration::from_secs(1000);
        let to = from + Duration::from_secs(100);
        assert_eq!(deadline(from, to, 0.0), from + Duration::from_secs(70));
        assert_eq!(deadline(from, to, 1.0), from + Duration::from_secs(90));
        assert_eq!(deadline(from, to, 0.5), from + Duration::from_secs(80));
    }
}
