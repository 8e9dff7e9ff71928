//! Static pods may not reference API objects (upstream feature `PreventStaticPodAPIReferences`,
//! beta and on by default since v1.34): a static pod runs without the API server, so
//! service accounts, secrets, config maps, claims and API-backed volumes are refused.

use k8s_openapi::api::core::v1::{Container, EnvFromSource, EnvVar, PodSpec, Volume};

/// What the pod references, as the plural resource upstream names in its message
/// (`static pods may not reference <resource>`), or `None` when it references nothing.
pub fn api_reference(spec: &PodSpec) -> Option<String> {
    if non_empty(&spec.service_account_name) || non_empty(&spec.service_account) {
        return Some("serviceaccounts".into());
    }
    if references_secrets(spec) {
        return Some("secrets".into());
    }
    if references_config_maps(spec) {
        return Some("configmaps".into());
    }
    if spec.resource_claims.as_ref().is_some_and(|c| !c.is_empty()) {
        return Some("resourceclaims".into());
    }
    spec.volumes.iter().flatten().find_map(volume_reference)
}

fn non_empty(s: &Option<String>) -> bool {
    s.as_deref().is_some_and(|s| !s.is_empty())
}

/// Env and envFrom of every container kind.
fn all_env(spec: &PodSpec) -> (Vec<&EnvVar>, Vec<&EnvFromSource>) {
    let regular: Vec<&Container> = spec
        .containers
        .iter()
        .chain(spec.init_containers.iter().flatten())
        .collect();
    let mut env: Vec<&EnvVar> = regular
        .iter()
        .flat_map(|c| c.env.iter().flatten())
        .collect();
    let mut env_from: Vec<&EnvFromSource> = regular
        .iter()
        .flat_map(|c| c.env_from.iter().flatten())
        .collect();
    for e in spec.ephemeral_containers.iter().flatten() {
        env.extend(e.env.iter().flatten());
        env_from.extend(e.env_from.iter().flatten());
    }
    (env, env_from)
}

fn references_secrets(spec: &PodSpec) -> bool {
    if spec
        .image_pull_secrets
        .as_ref()
        .is_some_and(|s| !s.is_empty())
    {
        return true;
    }
    let (env, env_from) = all_env(spec);
    if env.iter().any(|e| {
        e.value_from
            .as_ref()
            .is_some_and(|f| f.secret_key_ref.is_some())
    }) || env_from.iter().any(|e| e.secret_ref.is_some())
    {
        return true;
    }
    spec.volumes.iter().flatten().any(|v| {
        v.secret.is_some()
            || v.azure_file.is_some()
            || v.scale_io.is_some()
            || v.cephfs.as_ref().is_some_and(|s| s.secret_ref.is_some())
            || v.cinder.as_ref().is_some_and(|s| s.secret_ref.is_some())
            || v.flex_volume
                .as_ref()
                .is_some_and(|s| s.secret_ref.is_some())
            || v.rbd.as_ref().is_some_and(|s| s.secret_ref.is_some())
            || v.iscsi.as_ref().is_some_and(|s| s.secret_ref.is_some())
            || v.storageos.as_ref().is_some_and(|s| s.secret_ref.is_some())
            || v.csi
                .as_ref()
                .is_some_and(|s| s.node_publish_secret_ref.is_some())
            || v.projected
                .as_ref()
                .is_some_and(|p| p.sources.iter().flatten().any(|s| s.secret.is_some()))
    })
}

fn references_config_maps(spec: &PodSpec) -> bool {
    let (env, env_from) = all_env(spec);
    if env.iter().any(|e| {
        e.value_from
            .as_ref()
            .is_some_and(|f| f.config_map_key_ref.is_some())
    }) || env_from.iter().any(|e| e.config_map_ref.is_some())
    {
        return true;
    }
    spec.volumes.iter().flatten().any(|v| {
        v.config_map.is_some()
            || v.projected
                .as_ref()
                .is_some_and(|p| p.sources.iter().flatten().any(|s| s.config_map.is_some()))
    })
}

fn volume_reference(v: &Volume) -> Option<String> {
    let found = if v.config_map.is_some() {
        "configmaps (via configmap volumes)"
    } else if v.secret.is_some() {
        "secrets (via secret volumes)"
    } else if v.csi.is_some() {
        "csidrivers (via CSI volumes)"
    } else if v.glusterfs.is_some() {
        "endpoints (via glusterFS volumes)"
    } else if v.persistent_volume_claim.is_some() {
        "persistentvolumeclaims"
    } else if v.ephemeral.is_some() {
        "persistentvolumeclaims (via ephemeral volumes)"
    } else if v.azure_file.is_some() {
        "secrets (via azureFile volumes)"
    } else if let Some(p) = &v.projected {
        return p.sources.iter().flatten().find_map(|s| {
            let r = if s.config_map.is_some() {
                "configmaps (via projected volumes)"
            } else if s.secret.is_some() {
                "secrets (via projected volumes)"
            } else if s.service_account_token.is_some() {
                "serviceaccounts (via projected volumes)"
            } else if s.cluster_trust_bundle.is_some() {
                "clustertrustbundles"
            } else if s.pod_certificate.is_some() {
                "podcertificates"
            } else if s.downward_api.is_some() {
                return None;
            } else {
                "an unknown projected volume source"
            };
            Some(r.to_string())
        });
    } else {
        return None;
    };
    Some(found.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{
        EnvVarSource, LocalObjectReference, PersistentVolumeClaimVolumeSource,
        ProjectedVolumeSource, SecretKeySelector, ServiceAccountTokenProjection, VolumeProjection,
    };

    fn spec_with(f: impl FnOnce(&mut PodSpec)) -> PodSpec {
        let mut s = PodSpec {
            containers: vec![Container {
                name: "c".into(),
                ..Default::default()
            }],
            ..Default::default()
        };
        f(&mut s);
        s
    }

    #[test]
    fn plain_pod_references_nothing() {
        assert_eq!(api_reference(&spec_with(|_| {})), None);
    }

    #[test]
    fn each_reference_kind_is_named() {
        let sa = spec_with(|s| s.service_account_name = Some("default".into()));
        assert_eq!(api_reference(&sa).as_deref(), Some("serviceaccounts"));

        let pull = spec_with(|s| {
            s.image_pull_secrets = Some(vec![LocalObjectReference { name: "r".into() }])
        });
        assert_eq!(api_reference(&pull).as_deref(), Some("secrets"));

        let env = spec_with(|s| {
            s.containers[0].env = Some(vec![EnvVar {
                name: "X".into(),
                value_from: Some(EnvVarSource {
                    secret_key_ref: Some(SecretKeySelector {
                        name: "s".into(),
                        key: "k".into(),
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
                ..Default::default()
            }])
        });
        assert_eq!(api_reference(&env).as_deref(), Some("secrets"));

        let pvc = spec_with(|s| {
            s.volumes = Some(vec![Volume {
                name: "v".into(),
                persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                    claim_name: "c".into(),
                    ..Default::default()
                }),
                ..Default::default()
            }])
        });
        assert_eq!(
            api_reference(&pvc).as_deref(),
            Some("persistentvolumeclaims")
        );

        let token = spec_with(|s| {
            s.volumes = Some(vec![Volume {
                name: "v".into(),
                projected: Some(ProjectedVolumeSource {
                    sources: Some(vec![VolumeProjection {
                        service_account_token: Some(ServiceAccountTokenProjection {
                            path: "t".into(),
                            ..Default::default()
                        }),
                        ..Default::default()
                    }]),
                    ..Default::default()
                }),
                ..Default::default()
            }])
        });
        assert_eq!(
            api_reference(&token).as_deref(),
            Some("serviceaccounts (via projected volumes)")
        );
    }
}
