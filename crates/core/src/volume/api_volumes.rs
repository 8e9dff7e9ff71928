//! Volumes whose content comes from the API server: configMap, secret and projected
//! (configMap, secret, downwardAPI and serviceAccountToken sources). The payload is built
//! from the objects the worker fetched ([`PodApiData`]) and written with the atomic
//! writer, so an update swaps the whole set at once. Secret and projected volumes live
//! on tmpfs, as upstream, so secrets never touch the disk.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    ConfigMap, DownwardAPIVolumeSource, KeyToPath, Pod, ProjectedVolumeSource, Secret, Volume,
};

use super::atomic_writer::FileProjection;
use crate::cm::node::NodeAllocatable;
use crate::objects::{ObjectError, PodApiData, TokenRequestSpec, refs::DEFAULT_TOKEN_EXPIRATION};

pub type Payload = BTreeMap<String, FileProjection>;

const DEFAULT_MODE: u32 = 0o644;

/// Whether `volume` is one of the kinds handled here.
pub fn is_api_volume(volume: &Volume) -> bool {
    volume.config_map.is_some() || volume.secret.is_some() || volume.projected.is_some()
}

/// The directory name of the volume plugin (`kubernetes.io~configmap` ...).
pub fn plugin_dir(volume: &Volume) -> &'static str {
    if volume.config_map.is_some() {
        "kubernetes.io~configmap"
    } else if volume.secret.is_some() {
        "kubernetes.io~secret"
    } else {
        "kubernetes.io~projected"
    }
}

/// Whether the volume should sit on tmpfs (it may hold secrets or tokens).
pub fn in_memory(volume: &Volume) -> bool {
    volume.secret.is_some() || volume.projected.is_some()
}

/// The files of an API-backed volume. Errors read like upstream's FailedMount reasons.
pub fn payload(
    pod: &Pod,
    volume: &Volume,
    api: Option<&PodApiData>,
    node: &NodeAllocatable,
) -> Result<Payload, String> {
    let Some(api) = api else {
        return Err(format!(
            "volume type of {:?} needs an API server (--kubeconfig); standalone mode has none",
            volume.name
        ));
    };
    if let Some(src) = &volume.config_map {
        let source = KeySource {
            items: src.items.as_deref(),
            optional: src.optional == Some(true),
            mode: mode_of(src.default_mode, DEFAULT_MODE),
        };
        return source.files(config_map_keys(api, &src.name));
    }
    if let Some(src) = &volume.secret {
        let name = src.secret_name.clone().unwrap_or_default();
        let source = KeySource {
            items: src.items.as_deref(),
            optional: src.optional == Some(true),
            mode: mode_of(src.default_mode, DEFAULT_MODE),
        };
        return source.files(secret_keys(api, &name));
    }
    if let Some(src) = &volume.projected {
        return projected_files(pod, src, api, node);
    }
    Err(format!("volume {:?} is not an API volume", volume.name))
}

fn mode_of(mode: Option<i32>, default: u32) -> u32 {
    mode.map(|m| m as u32 & 0o777).unwrap_or(default)
}

/// Every key of an object with its bytes, and the message for a listed key it lacks.
struct Keys<'a> {
    all: BTreeMap<&'a str, Vec<u8>>,
    missing: &'static str,
}

fn config_map_keys<'a>(api: &'a PodApiData, name: &str) -> Result<Keys<'a>, ObjectError> {
    let cm: &ConfigMap = api.config_map(name)?;
    let text = cm
        .data
        .iter()
        .flatten()
        .map(|(k, v)| (k.as_str(), v.clone().into_bytes()));
    let binary = cm
        .binary_data
        .iter()
        .flatten()
        .map(|(k, v)| (k.as_str(), v.0.clone()));
    Ok(Keys {
        all: text.chain(binary).collect(),
        missing: "configmap references non-existent config key",
    })
}

fn secret_keys<'a>(api: &'a PodApiData, name: &str) -> Result<Keys<'a>, ObjectError> {
    let secret: &Secret = api.secret(name)?;
    Ok(Keys {
        all: secret
            .data
            .iter()
            .flatten()
            .map(|(k, v)| (k.as_str(), v.0.clone()))
            .collect(),
        missing: "references non-existent secret key",
    })
}

/// How a ConfigMap or Secret becomes files: which keys, whether it may be missing, and
/// the default file mode.
struct KeySource<'a> {
    items: Option<&'a [KeyToPath]>,
    optional: bool,
    mode: u32,
}

impl KeySource<'_> {
    /// A missing optional object is no files; any other lookup error is the error.
    fn files(&self, keys: Result<Keys<'_>, ObjectError>) -> Result<Payload, String> {
        match keys {
            Ok(keys) => project(keys, self.items, self.optional, self.mode),
            Err(e) if e.is_not_found() && self.optional => Ok(Payload::new()),
            Err(e) => Err(e.to_string()),
        }
    }
}

/// All keys (path = key) or the listed items; a listed key that is missing is an error
/// unless the source is optional.
fn project(
    keys: Keys<'_>,
    items: Option<&[KeyToPath]>,
    optional: bool,
    mode: u32,
) -> Result<Payload, String> {
    let Keys { all, missing } = keys;
    let mut out = Payload::new();
    match items.filter(|i| !i.is_empty()) {
        None => {
            for (k, data) in all {
                out.insert(k.to_string(), FileProjection { data, mode });
            }
        }
        Some(items) => {
            for item in items {
                match all.get(item.key.as_str()) {
                    Some(data) => {
                        out.insert(
                            item.path.clone(),
                            FileProjection {
                                data: data.clone(),
                                mode: mode_of(item.mode, mode),
                            },
                        );
                    }
                    None if optional => {}
                    None => return Err(format!("{missing}: {}", item.key)),
                }
            }
        }
    }
    Ok(out)
}

fn projected_files(
    pod: &Pod,
    src: &ProjectedVolumeSource,
    api: &PodApiData,
    node: &NodeAllocatable,
) -> Result<Payload, String> {
    let mode = mode_of(src.default_mode, DEFAULT_MODE);
    let service_account = pod
        .spec
        .as_ref()
        .and_then(|s| s.service_account_name.clone())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "default".to_string());
    let mut out = Payload::new();
    for source in src.sources.iter().flatten() {
        let part = if let Some(cm) = &source.config_map {
            let source = KeySource {
                items: cm.items.as_deref(),
                optional: cm.optional == Some(true),
                mode,
            };
            source.files(config_map_keys(api, &cm.name))?
        } else if let Some(s) = &source.secret {
            let source = KeySource {
                items: s.items.as_deref(),
                optional: s.optional == Some(true),
                mode,
            };
            source.files(secret_keys(api, &s.name))?
        } else if let Some(d) = &source.downward_api {
            let as_volume = DownwardAPIVolumeSource {
                items: d.items.clone(),
                default_mode: Some(mode as i32),
            };
            super::downward_payload(pod, &as_volume, node)?
        } else if let Some(t) = &source.service_account_token {
            let spec = TokenRequestSpec {
                service_account: service_account.clone(),
                audience: t.audience.clone().unwrap_or_default(),
                expiration_seconds: t.expiration_seconds.unwrap_or(DEFAULT_TOKEN_EXPIRATION),
            };
            let token = api
                .token(&spec)
                .map_err(|e| format!("failed to fetch token: {e}"))?;
            Payload::from([(
                t.path.clone(),
                FileProjection {
                    data: token.as_bytes().to_vec(),
                    mode,
                },
            )])
        } else if source.cluster_trust_bundle.is_some() {
            return Err("clusterTrustBundle projections are not supported".into());
        } else {
            continue;
        };
        for (path, file) in part {
            if out.contains_key(&path) {
                return Err(format!("conflicting projected path {path:?}"));
            }
            out.insert(path, file);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn payload(pod: &Pod, volume: &Volume, api: Option<&PodApiData>) -> Result<Payload, String> {
        super::payload(pod, volume, api, &NodeAllocatable::default())
    }

    fn data() -> PodApiData {
        let cm: ConfigMap = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "cfg"}, "data": {"a": "1", "b": "2"}
        }))
        .unwrap();
        let secret: Secret = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "sec"}, "data": {"pw": "aHVudGVyMg=="}
        }))
        .unwrap();
        let mut d = PodApiData::default();
        d.config_maps.insert("cfg".into(), Ok(Arc::new(cm)));
        d.config_maps.insert(
            "gone".into(),
            Err(ObjectError::NotFound {
                kind: "configmap",
                name: "gone".into(),
            }),
        );
        d.secrets.insert("sec".into(), Ok(Arc::new(secret)));
        d.tokens.insert(
            TokenRequestSpec {
                service_account: "default".into(),
                audience: String::new(),
                expiration_seconds: 3607,
            },
            Ok("tok".into()),
        );
        d
    }

    fn volume(v: serde_json::Value) -> Volume {
        serde_json::from_value(v).unwrap()
    }

    fn pod() -> Pod {
        serde_json::from_value(serde_json::json!({"metadata": {"name": "p", "namespace": "ns"}, "spec": {"containers": []}})).unwrap()
    }

    #[test]
    fn config_map_items_modes_and_optional() {
        let d = data();
        let all = payload(
            &pod(),
            &volume(serde_json::json!({"name": "v", "configMap": {"name": "cfg"}})),
            Some(&d),
        )
        .unwrap();
        assert_eq!(all.len(), 2);
        assert_eq!(all["a"].data, b"1");
        assert_eq!(all["a"].mode, 0o644);
        let some = payload(&pod(), &volume(serde_json::json!({"name": "v", "configMap": {"name": "cfg", "defaultMode": 0o400, "items": [{"key": "b", "path": "dir/b.txt", "mode": 0o600}, {"key": "a", "path": "a"}]}})), Some(&d)).unwrap();
        assert_eq!(some["dir/b.txt"].mode, 0o600);
        assert_eq!(some["a"].mode, 0o400);
        let err = payload(
            &pod(),
            &volume(serde_json::json!({"name": "v", "configMap": {"name": "gone"}})),
            Some(&d),
        )
        .unwrap_err();
        assert_eq!(err, "configmap \"gone\" not found");
        let empty = payload(
            &pod(),
            &volume(
                serde_json::json!({"name": "v", "configMap": {"name": "gone", "optional": true}}),
            ),
            Some(&d),
        )
        .unwrap();
        assert!(empty.is_empty());
        let err = payload(&pod(), &volume(serde_json::json!({"name": "v", "configMap": {"name": "cfg", "items": [{"key": "zz", "path": "z"}]}})), Some(&d)).unwrap_err();
        assert!(err.contains("non-existent config key: zz"), "{err}");
    }

    #[test]
    fn secret_and_projected() {
        let d = data();
        let s = payload(
            &pod(),
            &volume(serde_json::json!({"name": "v", "secret": {"secretName": "sec"}})),
            Some(&d),
        )
        .unwrap();
        assert_eq!(s["pw"].data, b"hunter2");
        let p = payload(&pod(), &volume(serde_json::json!({"name": "kube-api-access", "projected": {"defaultMode": 0o644, "sources": [
            {"serviceAccountToken": {"path": "token", "expirationSeconds": 3607}},
            {"configMap": {"name": "cfg", "items": [{"key": "a", "path": "ca.crt"}]}},
            {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"fieldPath": "metadata.namespace"}}]}}
        ]}})), Some(&d)).unwrap();
        assert_eq!(p["token"].data, b"tok");
        assert_eq!(p["ca.crt"].data, b"1");
        assert_eq!(p["namespace"].data, b"ns");
        assert!(
            payload(
                &pod(),
                &volume(serde_json::json!({"name": "v", "secret": {"secretName": "sec"}})),
                None
            )
            .is_err()
        );
    }
}
