//! Who is asking: a verified client certificate, else a bearer token the TokenReview
//! webhook accepts, else anonymous (when enabled). As upstream's delegating
//! authenticator, a presented credential that fails verification is an error (401),
//! never a fall back to anonymous.

use std::sync::Arc;

use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::danger::ClientCertVerifier;
use x509_parser::prelude::*;

use super::User;
use super::webhook::TokenReviewer;

/// The certificate chain the client presented on this connection (leaf first).
#[derive(Clone, Debug, Default)]
pub struct PeerCertificates(pub Arc<Vec<CertificateDer<'static>>>);

pub struct Authenticator {
    pub anonymous: bool,
    /// Verifies client chains against the client CA (`clientCAFile`).
    pub client_ca: Option<Arc<dyn ClientCertVerifier>>,
    /// TokenReview webhook, when enabled and an API server is known.
    pub tokens: Option<Arc<dyn TokenReviewer>>,
}

/// CN and O of a certificate.
pub fn user_from_cert(der: &[u8]) -> Result<User, String> {
    let (_, cert) =
        X509Certificate::from_der(der).map_err(|e| format!("bad client certificate: {e}"))?;
    let subject = cert.subject();
    let name = subject
        .iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())
        .unwrap_or_default()
        .to_string();
    if name.is_empty() {
        return Err("client certificate has no common name".into());
    }
    let groups = subject
        .iter_organization()
        .filter_map(|o| o.as_str().ok().map(str::to_string))
        .collect();
    Ok(User {
        name,
        uid: String::new(),
        groups,
    })
}

fn with_authenticated_group(mut user: User) -> User {
    if !user.groups.iter().any(|g| g == "system:authenticated") {
        user.groups.push("system:authenticated".into());
    }
    user
}

impl Authenticator {
    /// Ok(Some(user)), Ok(None) = unauthenticated (401), Err = credential rejected (401).
    pub async fn authenticate(
        &self,
        peer: Option<&PeerCertificates>,
        authorization: Option<&str>,
    ) -> Result<Option<User>, String> {
        if let (Some(verifier), Some(peer)) = (&self.client_ca, peer)
            && let Some((leaf, intermediates)) = peer.0.split_first()
        {
            verifier
                .verify_client_cert(leaf, intermediates, UnixTime::now())
                .map_err(|e| format!("verifying certificate: {e}"))?;
            return user_from_cert(leaf).map(|u| Some(with_authenticated_group(u)));
        }
        if let Some(token) = authorization
            .and_then(|h| h.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            && let Some(reviewer) = &self.tokens
        {
            return match reviewer.review(token).await {
                Ok(Some(user)) => Ok(Some(with_authenticated_group(user))),
                Ok(None) => Err("invalid bearer token".into()),
                Err(e) => Err(e.to_string()),
            };
        }
        Ok(self.anonymous.then(User::anonymous))
    }
}
