//! Authentication (bearer tokens, service-account JWTs, client certificates), authorization
//! rules, and the test CA.

pub mod authz;
pub mod ca;
pub mod jwt;
pub mod tokens;

use std::collections::BTreeMap;

use ring::rand::SecureRandom;
use serde::{Deserialize, Serialize};

/// An authenticated user (what TokenReview returns and SubjectAccessReview checks).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserInfo {
    /// User name, e.g. `system:node:n1`.
    pub name: String,
    /// Stable uid (may be empty).
    #[serde(default)]
    pub uid: String,
    /// Groups, e.g. `system:nodes`.
    #[serde(default)]
    pub groups: Vec<String>,
    /// Extra attributes.
    #[serde(default)]
    pub extra: BTreeMap<String, Vec<String>>,
}

impl UserInfo {
    /// A user with groups (plus `system:authenticated`).
    pub fn new(name: &str, groups: &[&str]) -> Self {
        let mut groups: Vec<String> = groups.iter().map(|g| g.to_string()).collect();
        if !groups.iter().any(|g| g == "system:authenticated") {
            groups.push("system:authenticated".into());
        }
        UserInfo {
            name: name.into(),
            uid: String::new(),
            groups,
            extra: BTreeMap::new(),
        }
    }

    /// The cluster admin identity (group `system:masters`).
    pub fn admin() -> Self {
        UserInfo::new("system:admin", &["system:masters"])
    }

    /// The anonymous user.
    pub fn anonymous() -> Self {
        UserInfo {
            name: "system:anonymous".into(),
            uid: String::new(),
            groups: vec!["system:unauthenticated".into()],
            extra: BTreeMap::new(),
        }
    }

    /// Whether the user is in a group.
    pub fn in_group(&self, g: &str) -> bool {
        self.groups.iter().any(|x| x == g)
    }
}

/// Cryptographically random bytes.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    // SystemRandom only fails if the OS RNG is unavailable; fall back to a time-derived
    // value rather than panicking (these values are test credentials and names).
    if ring::rand::SystemRandom::new().fill(&mut b).is_err() {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
            .to_le_bytes();
        for (i, x) in b.iter_mut().enumerate() {
            *x = t[i % t.len()] ^ (i as u8).wrapping_mul(31);
        }
    }
    b
}

/// A random hex token of 32 characters.
pub fn random_token() -> String {
    random_bytes::<16>()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
