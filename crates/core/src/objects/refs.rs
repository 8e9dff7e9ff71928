//! Which API objects a pod references: ConfigMaps and Secrets from env, envFrom and
//! volumes (plain and projected), and service account token requests.

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::{Container, Pod};

/// One projected `serviceAccountToken` source: the token is bound to the pod.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TokenRequestSpec {
    pub service_account: String,
    /// Empty: the API server's default audiences.
    pub audience: String,
    pub expiration_seconds: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PodRefs {
    pub config_maps: BTreeSet<String>,
    pub secrets: BTreeSet<String>,
    pub tokens: BTreeSet<TokenRequestSpec>,
}

/// Upstream default for a projected token's expirationSeconds.
pub const DEFAULT_TOKEN_EXPIRATION: i64 = 3600;

impl PodRefs {
    pub fn of(pod: &Pod) -> PodRefs {
        let mut refs = PodRefs::default();
        let Some(spec) = pod.spec.as_ref() else {
            return refs;
        };
        let containers = spec
            .containers
            .iter()
            .chain(spec.init_containers.iter().flatten());
        for c in containers {
            refs.add_container(c);
        }
        let service_account = spec
            .service_account_name
            .clone()
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "default".to_string());
        for v in spec.volumes.iter().flatten() {
            if let Some(cm) = &v.config_map {
                refs.config_maps.insert(cm.name.clone());
            }
            if let Some(s) = &v.secret
                && let Some(name) = &s.secret_name
            {
                refs.secrets.insert(name.clone());
            }
            for source in v.projected.iter().flat_map(|p| p.sources.iter().flatten()) {
                if let Some(cm) = &source.config_map {
                    refs.config_maps.insert(cm.name.clone());
                }
                if let Some(s) = &source.secret {
                    refs.secrets.insert(s.name.clone());
                }
                if let Some(t) = &source.service_account_token {
                    refs.tokens.insert(TokenRequestSpec {
                        service_account: service_account.clone(),
                        audience: t.audience.clone().unwrap_or_default(),
                        expiration_seconds: t
                            .expiration_seconds
                            .unwrap_or(DEFAULT_TOKEN_EXPIRATION),
                    });
                }
            }
        }
        refs
    }

    fn add_container(&mut self, c: &Container) {
        for var in c.env.iter().flatten() {
            if let Some(from) = &var.value_from {
                if let Some(cm) = &from.config_map_key_ref {
                    self.config_maps.insert(cm.name.clone());
                }
                if let Some(s) = &from.secret_key_ref {
                    self.secrets.insert(s.name.clone());
                }
            }
        }
        for from in c.env_from.iter().flatten() {
            if let Some(cm) = &from.config_map_ref {
                self.config_maps.insert(cm.name.clone());
            }
            if let Some(s) = &from.secret_ref {
                self.secrets.insert(s.name.clone());
            }
        }
    }

    /// Whether the pod has volumes whose content comes from the API server.
    pub fn has_api_volumes(pod: &Pod) -> bool {
        pod.spec
            .iter()
            .flat_map(|s| s.volumes.iter().flatten())
            .any(|v| v.config_map.is_some() || v.secret.is_some() || v.projected.is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collects_env_envfrom_volumes_and_tokens() {
        let pod: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "p", "namespace": "ns"},
            "spec": {
                "serviceAccountName": "robot",
                "containers": [{
                    "name": "c",
                    "env": [
                        {"name": "A", "valueFrom": {"configMapKeyRef": {"name": "cm1", "key": "a"}}},
                        {"name": "B", "valueFrom": {"secretKeyRef": {"name": "s1", "key": "b"}}}
                    ],
                    "envFrom": [{"configMapRef": {"name": "cm2"}}, {"secretRef": {"name": "s2"}}]
                }],
                "volumes": [
                    {"name": "v1", "configMap": {"name": "cm3"}},
                    {"name": "v2", "secret": {"secretName": "s3"}},
                    {"name": "v3", "projected": {"sources": [
                        {"configMap": {"name": "kube-root-ca.crt"}},
                        {"serviceAccountToken": {"path": "token", "expirationSeconds": 3607}},
                        {"serviceAccountToken": {"path": "t2", "audience": "vault"}}
                    ]}}
                ]
            }
        }))
        .unwrap();
        let refs = PodRefs::of(&pod);
        assert_eq!(
            refs.config_maps
                .iter()
                .map(String::as_str)
                .collect::<Vec<_>>(),
            ["cm1", "cm2", "cm3", "kube-root-ca.crt"]
        );
        assert_eq!(
            refs.secrets.iter().map(String::as_str).collect::<Vec<_>>(),
            ["s1", "s2", "s3"]
        );
        let tokens: Vec<_> = refs.tokens.iter().cloned().collect();
        assert_eq!(tokens.len(), 2);
        assert_eq!(tokens[0].service_account, "robot");
        assert_eq!(tokens[0].expiration_seconds, 3607);
        assert_eq!(tokens[1].audience, "vault");
        assert_eq!(tokens[1].expiration_seconds, 3600);
        assert!(PodRefs::has_api_volumes(&pod));
    }
}
