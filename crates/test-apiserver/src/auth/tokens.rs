//! Bearer token authentication: static tokens, bootstrap tokens (`<id>.<secret>`) and
//! service-account tokens issued by TokenRequest.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::UserInfo;
use super::jwt::Signer;
use crate::meta;
use crate::store::{ObjKey, Store};

/// The issuer and default audience of service-account tokens (upstream's default).
pub const ISSUER: &str = "https://kubernetes.default.svc.cluster.local";

/// A static token and the user it authenticates as.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StaticToken {
    /// The bearer token.
    pub token: String,
    /// Who it is.
    pub user: UserInfo,
}

/// Authenticates bearer tokens.
pub struct TokenAuthenticator {
    statics: Vec<StaticToken>,
    signer: Signer,
}

/// A successful token authentication.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenIdentity {
    /// The user.
    pub user: UserInfo,
    /// Audiences the token is valid for.
    pub audiences: Vec<String>,
}

impl TokenAuthenticator {
    /// With the given static tokens (bootstrap tokens are static tokens whose user is
    /// `system:bootstrap:<id>`, see [`bootstrap_token`]).
    pub fn new(statics: Vec<StaticToken>) -> Self {
        TokenAuthenticator {
            statics,
            signer: Signer::new(),
        }
    }

    /// Adds a static token.
    pub fn add(&mut self, t: StaticToken) {
        self.statics.push(t);
    }

    /// Authenticates a token; `audiences` are the ones the caller accepts (empty: the API
    /// server's own audience).
    pub fn authenticate(
        &self,
        token: &str,
        audiences: &[String],
        store: &Store,
    ) -> Result<TokenIdentity, String> {
        if let Some(s) = self.statics.iter().find(|s| s.token == token) {
            let aud = if audiences.is_empty() {
                vec![ISSUER.to_string()]
            } else {
                audiences.to_vec()
            };
            return Ok(TokenIdentity {
                user: s.user.clone(),
                audiences: aud,
            });
        }
        if token.matches('.').count() != 2 {
            return Err("invalid bearer token".into());
        }
        let now = chrono::Utc::now().timestamp();
        let claims = self
            .signer
            .verify(token, now)
            .map_err(|e| format!("invalid bearer token, {e}"))?;
        let token_aud: Vec<String> = claims
            .get("aud")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default();
        let wanted: Vec<String> = if audiences.is_empty() {
            vec![ISSUER.to_string()]
        } else {
            audiences.to_vec()
        };
        let matched: Vec<String> = token_aud
            .iter()
            .filter(|a| wanted.contains(a))
            .cloned()
            .collect();
        if matched.is_empty() {
            return Err(
                "invalid bearer token, token audiences [...] is invalid for the target audiences"
                    .into(),
            );
        }
        let k8s = claims.get("kubernetes.io").cloned().unwrap_or(Value::Null);
        let ns = meta::path_string(&k8s, "namespace");
        let sa_name = meta::path_string(&k8s, "serviceaccount.name");
        let sa_uid = meta::path_string(&k8s, "serviceaccount.uid");
        let sa = store
            .get(&ObjKey::new("serviceaccounts", &ns, &sa_name))
            .ok_or_else(|| {
                format!("invalid bearer token, serviceaccounts \"{sa_name}\" not found")
            })?;
        if meta::uid(&sa) != sa_uid {
            return Err(format!(
                "invalid bearer token, service account UID ({sa_uid}) does not match"
            ));
        }
        let mut extra = BTreeMap::new();
        if let Some(jti) = claims.get("jti").and_then(Value::as_str) {
            extra.insert(
                "authentication.kubernetes.io/credential-id".to_string(),
                vec![format!("JTI={jti}")],
            );
        }
        let pod_name = meta::path_string(&k8s, "pod.name");
        if !pod_name.is_empty() {
            let pod = store.get(&ObjKey::new("pods", &ns, &pod_name));
            let pod_uid = meta::path_string(&k8s, "pod.uid");
            match pod {
                Some(p) if meta::uid(&p) == pod_uid && !meta::is_deleting(&p) => {}
                _ => {
                    return Err(format!(
                        "invalid bearer token, pod \"{pod_name}\" bound to the token is gone"
                    ));
                }
            }
            extra.insert(
                "authentication.kubernetes.io/pod-name".to_string(),
                vec![pod_name],
            );
            extra.insert(
                "authentication.kubernetes.io/pod-uid".to_string(),
                vec![pod_uid],
            );
        }
        let node = meta::path_string(&k8s, "node.name");
        if !node.is_empty() {
            extra.insert(
                "authentication.kubernetes.io/node-name".to_string(),
                vec![node],
            );
        }
        Ok(TokenIdentity {
            user: UserInfo {
                name: format!("system:serviceaccount:{ns}:{sa_name}"),
                uid: sa_uid,
                groups: vec![
                    "system:serviceaccounts".into(),
                    format!("system:serviceaccounts:{ns}"),
                    "system:authenticated".into(),
                ],
                extra,
            },
            audiences: matched,
        })
    }

    /// Issues a service-account token (TokenRequest).
    #[allow(clippy::too_many_arguments)]
    pub fn issue(
        &self,
        sa: &Value,
        audiences: &[String],
        expiration_seconds: i64,
        bound: Option<(&str, &str, &str)>,
    ) -> (String, i64) {
        let now = chrono::Utc::now().timestamp();
        let exp = now + expiration_seconds;
        let mut k8s = json!({
            "namespace": meta::namespace(sa),
            "serviceaccount": {"name": meta::name(sa), "uid": meta::uid(sa)},
        });
        if let Some((kind, name, uid)) = bound {
            let key = if kind == "Pod" {
                "pod"
            } else if kind == "Node" {
                "node"
            } else {
                "secret"
            };
            k8s[key] = json!({"name": name, "uid": uid});
        }
        let claims = json!({
            "aud": audiences,
            "exp": exp,
            "iat": now,
            "nbf": now,
            "iss": ISSUER,
            "jti": meta::new_uid(),
            "kubernetes.io": k8s,
            "sub": format!("system:serviceaccount:{}:{}", meta::namespace(sa), meta::name(sa)),
        });
        (self.signer.sign(&claims), exp)
    }
}

/// A bootstrap token `<id>.<secret>` authenticating as `system:bootstrap:<id>` in
/// `system:bootstrappers` (what `kubeadm token create` sets up).
pub fn bootstrap_token(id: &str, secret: &str) -> StaticToken {
    StaticToken {
        token: format!("{id}.{secret}"),
        user: UserInfo::new(&format!("system:bootstrap:{id}"), &["system:bootstrappers"]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Mutation;

    fn put(store: &Store, key: ObjKey, v: Value) {
        let _ = store.mutate(&key, |_| Ok(Mutation::Put(v)));
    }

    #[test]
    fn static_and_service_account_tokens() {
        let store = Store::new(100);
        put(
            &store,
            ObjKey::new("serviceaccounts", "ns", "sa"),
            json!({"metadata": {"name": "sa", "namespace": "ns", "uid": "sa-uid"}}),
        );
        put(
            &store,
            ObjKey::new("pods", "ns", "p"),
            json!({"metadata": {"name": "p", "namespace": "ns", "uid": "p-uid"}}),
        );
        let a = TokenAuthenticator::new(vec![bootstrap_token("abcdef", "0123456789abcdef")]);
        let b = a
            .authenticate("abcdef.0123456789abcdef", &[], &store)
            .unwrap();
        assert_eq!(b.user.name, "system:bootstrap:abcdef");
        assert!(b.user.in_group("system:bootstrappers"));

        let sa = store
            .get(&ObjKey::new("serviceaccounts", "ns", "sa"))
            .unwrap();
        let (tok, _) = a.issue(&sa, &["api".to_string()], 600, Some(("Pod", "p", "p-uid")));
        let id = a.authenticate(&tok, &["api".to_string()], &store).unwrap();
        assert_eq!(id.user.name, "system:serviceaccount:ns:sa");
        assert_eq!(
            id.user.extra["authentication.kubernetes.io/pod-name"],
            vec!["p".to_string()]
        );
        assert!(
            a.authenticate(&tok, &["other".to_string()], &store)
                .is_err(),
            "audience must match"
        );
        // Deleting the bound pod invalidates the token.
        let _ = store.mutate(&ObjKey::new("pods", "ns", "p"), |_| Ok(Mutation::Delete));
        assert!(a.authenticate(&tok, &["api".to_string()], &store).is_err());
        assert!(a.authenticate("nope", &[], &store).is_err());
    }
}
