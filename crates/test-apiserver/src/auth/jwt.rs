//! Compact JWS tokens signed with HMAC-SHA256 (service-account tokens). Only this server
//! verifies them, so a symmetric key is enough; the claims are upstream's.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use ring::hmac;
use serde_json::{Value, json};

/// Signs and verifies tokens with one random key.
pub struct Signer {
    key: hmac::Key,
}

/// Why a token was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwtError {
    /// Not three base64url parts of JSON.
    #[error("token is malformed")]
    Malformed,
    /// Bad signature.
    #[error("invalid signature")]
    Signature,
    /// Past `exp`.
    #[error("token has expired")]
    Expired,
}

impl Signer {
    /// A signer with a fresh random key.
    pub fn new() -> Self {
        Signer {
            key: hmac::Key::new(hmac::HMAC_SHA256, &super::random_bytes::<32>()),
        }
    }

    /// Signs claims into a compact JWS.
    pub fn sign(&self, claims: &Value) -> String {
        let header =
            B64.encode(json!({"alg": "HS256", "typ": "JWT", "kid": "test-apiserver"}).to_string());
        let payload = B64.encode(claims.to_string());
        let input = format!("{header}.{payload}");
        let sig = hmac::sign(&self.key, input.as_bytes());
        format!("{input}.{}", B64.encode(sig.as_ref()))
    }

    /// Verifies signature and expiry (`now` in Unix seconds) and returns the claims.
    pub fn verify(&self, token: &str, now: i64) -> Result<Value, JwtError> {
        let mut parts = token.split('.');
        let (Some(h), Some(p), Some(s), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(JwtError::Malformed);
        };
        let sig = B64.decode(s).map_err(|_| JwtError::Malformed)?;
        hmac::verify(&self.key, format!("{h}.{p}").as_bytes(), &sig)
            .map_err(|_| JwtError::Signature)?;
        let claims: Value =
            serde_json::from_slice(&B64.decode(p).map_err(|_| JwtError::Malformed)?)
                .map_err(|_| JwtError::Malformed)?;
        if claims
            .get("exp")
            .and_then(Value::as_i64)
            .is_some_and(|exp| exp <= now)
        {
            return Err(JwtError::Expired);
        }
        Ok(claims)
    }
}

impl Default for Signer {
    fn default() -> Self {
        Signer::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_verify_expire_tamper() {
        let s = Signer::new();
        let t = s.sign(&json!({"sub": "x", "exp": 100}));
        assert_eq!(s.verify(&t, 50).unwrap()["sub"], "x");
        assert_eq!(s.verify(&t, 100), Err(JwtError::Expired));
        let other = Signer::new();
        assert_eq!(other.verify(&t, 50), Err(JwtError::Signature));
        assert_eq!(s.verify("a.b", 0), Err(JwtError::Malformed));
    }
}
