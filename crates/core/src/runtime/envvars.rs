//! Container environment: `value`, `valueFrom.fieldRef` and `resourceFieldRef`, with
//! `$(VAR)` expansion as upstream (expansion.go): `$$` escapes, unknown references stay
//! as written.

use std::collections::HashMap;

use k8s_openapi::api::core::v1::{Container, EnvVar, Pod};

use crate::cm::node::NodeAllocatable;
use crate::cm::resource_field;
use crate::objects::PodApiData;

/// What env resolution may read that is not in the spec.
pub struct EnvContext<'a> {
    pub node_name: &'a str,
    pub pod_ips: &'a [String],
    pub host_ips: &'a [String],
    /// ConfigMaps, Secrets and Services fetched for the pod (cluster mode); `None` in
    /// standalone mode, where references to them are errors unless optional.
    pub api: Option<&'a PodApiData>,
    /// Unset cpu, memory and ephemeral-storage limits read as this in `resourceFieldRef`.
    pub node: &'a NodeAllocatable,
}

/// Expand `$(NAME)` references in `input` using `lookup`.
pub fn expand(input: &str, lookup: &dyn Fn(&str) -> Option<String>) -> String {
    let bytes = input.as_bytes();
    let mut out = String::with_capacity(input.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'$' && i + 1 < bytes.len() {
            match bytes[i + 1] {
                b'$' => {
                    out.push('$');
                    i += 2;
                    continue;
                }
                b'(' => {
                    if let Some(close) = input[i + 2..].find(')') {
                        let name = &input[i + 2..i + 2 + close];
                        match lookup(name) {
                            Some(v) => out.push_str(&v),
                            None => out.push_str(&input[i..i + 3 + close]),
                        }
                        i += 3 + close;
                        continue;
                    }
                }
                _ => {}
            }
        }
        let ch = input[i..].chars().next().unwrap_or('\u{fffd}');
        out.push(ch);
        i += ch.len_utf8();
    }
    out
}

/// Resolve the container's env in order; each value may refer to earlier ones.
pub fn resolve(
    pod: &Pod,
    container: &Container,
    ctx: &EnvContext<'_>,
) -> Result<Vec<(String, String)>, String> {
    let mut resolved: Vec<(String, String)> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    let mut set =
        |resolved: &mut Vec<(String, String)>, name: &str, value: String| match index.get(name) {
            Some(&i) => resolved[i].1 = value,
            None => {
                index.insert(name.to_string(), resolved.len());
                resolved.push((name.to_string(), value));
            }
        };
    // Upstream order: envFrom, then env (which may refer to both and to the service
    // variables), then the service variables no one else defined.
    for (name, value) in env_from(pod, container, ctx)? {
        set(&mut resolved, &name, value);
    }
    let service_env = ctx
        .api
        .map(|a| a.service_env.as_slice())
        .unwrap_or_default();
    for var in container.env.iter().flatten() {
        let mut known = resolved.clone();
        for (k, v) in service_env {
            if !known.iter().any(|(n, _)| n == k) {
                known.push((k.clone(), v.clone()));
            }
        }
        let known_index: HashMap<String, usize> = known
            .iter()
            .enumerate()
            .map(|(i, (k, _))| (k.clone(), i))
            .collect();
        if let Some(value) = resolve_one(pod, container, var, ctx, &known, &known_index)? {
            set(&mut resolved, &var.name, value);
        }
    }
    for (k, v) in service_env {
        if !resolved.iter().any(|(n, _)| n == k) {
            set(&mut resolved, k, v.clone());
        }
    }
    Ok(resolved)
}

/// `envFrom`: every key of the ConfigMap or Secret, with the prefix. A missing source
/// is an error unless optional.
fn env_from(
    pod: &Pod,
    container: &Container,
    ctx: &EnvContext<'_>,
) -> Result<Vec<(String, String)>, String> {
    let namespace = pod.metadata.namespace.as_deref().unwrap_or_default();
    let mut out = Vec::new();
    for from in container.env_from.iter().flatten() {
        let prefix = from.prefix.as_deref().unwrap_or_default();
        if let Some(cm_ref) = &from.config_map_ref {
            let optional = cm_ref.optional == Some(true);
            let Some(api) = ctx.api else {
                if optional {
                    continue;
                }
                return Err(format!(
                    "couldn't get configMap {namespace}/{}, no kubeClient defined",
                    cm_ref.name
                ));
            };
            match api.config_map(&cm_ref.name) {
                Ok(cm) => {
                    for (k, v) in cm.data.iter().flatten() {
                        out.push((format!("{prefix}{k}"), v.clone()));
                    }
                }
                Err(e) if e.is_not_found() && optional => {}
                Err(e) => return Err(e.to_string()),
            }
        }
        if let Some(secret_ref) = &from.secret_ref {
            let optional = secret_ref.optional == Some(true);
            let Some(api) = ctx.api else {
                if optional {
                    continue;
                }
                return Err(format!(
                    "couldn't get secret {namespace}/{}, no kubeClient defined",
                    secret_ref.name
                ));
            };
            match api.secret(&secret_ref.name) {
                Ok(secret) => {
                    for (k, v) in secret.data.iter().flatten() {
                        out.push((
                            format!("{prefix}{k}"),
                            String::from_utf8_lossy(&v.0).into_owned(),
                        ));
                    }
                }
                Err(e) if e.is_not_found() && optional => {}
                Err(e) => return Err(e.to_string()),
            }
        }
    }
    Ok(out
        .into_iter()
        .filter(|(k, _)| !k.is_empty() && !k.contains('='))
        .collect())
}

fn resolve_one(
    pod: &Pod,
    container: &Container,
    var: &EnvVar,
    ctx: &EnvContext<'_>,
    resolved: &[(String, String)],
    index: &HashMap<String, usize>,
) -> Result<Option<String>, String> {
    let lookup = |name: &str| index.get(name).map(|&i| resolved[i].1.clone());
    if let Some(value) = &var.value {
        return Ok(Some(expand(value, &lookup)));
    }
    let Some(from) = &var.value_from else {
        return Ok(Some(String::new()));
    };
    let namespace = pod.metadata.namespace.as_deref().unwrap_or_default();
    if let (Some(cm), Some(api)) = (&from.config_map_key_ref, ctx.api) {
        let optional = cm.optional == Some(true);
        return match api.config_map(&cm.name) {
            Ok(found) => match found.data.as_ref().and_then(|d| d.get(&cm.key)) {
                Some(v) => Ok(Some(v.clone())),
                None if optional => Ok(None),
                None => Err(format!(
                    "couldn't find key {} in ConfigMap {namespace}/{}",
                    cm.key, cm.name
                )),
            },
            Err(e) if e.is_not_found() && optional => Ok(None),
            Err(e) => Err(e.to_string()),
        };
    }
    if let (Some(sk), Some(api)) = (&from.secret_key_ref, ctx.api) {
        let optional = sk.optional == Some(true);
        return match api.secret(&sk.name) {
            Ok(found) => match PodApiData::secret_value(found, &sk.key) {
                Some(v) => Ok(Some(v)),
                None if optional => Ok(None),
                None => Err(format!(
                    "couldn't find key {} in Secret {namespace}/{}",
                    sk.key, sk.name
                )),
            },
            Err(e) if e.is_not_found() && optional => Ok(None),
            Err(e) => Err(e.to_string()),
        };
    }
    if let Some(field) = &from.field_ref {
        return field_value(pod, &field.field_path, ctx)
            .map(Some)
            .ok_or_else(|| {
                format!(
                    "env {}: unsupported fieldRef {:?}",
                    var.name, field.field_path
                )
            });
    }
    if let Some(res) = &from.resource_field_ref {
        // Upstream merges node allocatable into the limits of the pod's regular containers
        // and of the container itself; a named init container keeps its own.
        let spec = pod.spec.as_ref();
        let (target, with_defaults) = match res.container_name.as_deref() {
            Some(name) if !name.is_empty() && name != container.name => {
                let regular = spec.and_then(|s| s.containers.iter().find(|c| c.name == name));
                let init =
                    spec.and_then(|s| s.init_containers.iter().flatten().find(|c| c.name == name));
                match (regular, init) {
                    (Some(c), _) => (c, true),
                    (None, Some(c)) => (c, false),
                    (None, None) => {
                        return Err(format!(
                            "env {}: resourceFieldRef names unknown container {name:?}",
                            var.name
                        ));
                    }
                }
            }
            _ => (container, true),
        };
        return resource_field::resource_field_value(
            target,
            &res.resource,
            res.divisor.as_ref().map(|d| d.0.as_str()),
            with_defaults.then_some(ctx.node),
        )
        .map(Some)
        .map_err(|e| format!("env {}: {e}", var.name));
    }
    if let Some(cm) = &from.config_map_key_ref {
        if cm.optional == Some(true) {
            return Ok(Some(String::new()));
        }
        return Err(format!(
            "configmap {:?} not found (no API server in standalone mode)",
            cm.name
        ));
    }
    if let Some(secret) = &from.secret_key_ref {
        if secret.optional == Some(true) {
            return Ok(Some(String::new()));
        }
        return Err(format!(
            "secret {:?} not found (no API server in standalone mode)",
            secret.name
        ));
    }
    Ok(Some(String::new()))
}

/// The downward API fields a kubelet can answer (upstream podFieldSelectorRuntimeValue).
pub fn field_value(pod: &Pod, path: &str, ctx: &EnvContext<'_>) -> Option<String> {
    let meta = &pod.metadata;
    let spec = pod.spec.as_ref();
    let map_key = |prefix: &str| -> Option<String> {
        let rest = path
            .strip_prefix(prefix)?
            .strip_prefix("['")?
            .strip_suffix("']")?;
        Some(rest.to_string())
    };
    Some(match path {
        "metadata.name" => meta.name.clone().unwrap_or_default(),
        "metadata.namespace" => meta.namespace.clone().unwrap_or_default(),
        "metadata.uid" => meta.uid.clone().unwrap_or_default(),
        "spec.nodeName" => spec
            .and_then(|s| s.node_name.clone())
            .unwrap_or_else(|| ctx.node_name.to_string()),
        "spec.serviceAccountName" => spec
            .and_then(|s| s.service_account_name.clone())
            .unwrap_or_default(),
        "status.podIP" => ctx.pod_ips.first().cloned().unwrap_or_default(),
        "status.podIPs" => ctx.pod_ips.join(","),
        "status.hostIP" => ctx.host_ips.first().cloned().unwrap_or_default(),
        "status.hostIPs" => ctx.host_ips.join(","),
        _ => {
            if let Some(key) = map_key("metadata.labels") {
                meta.labels
                    .as_ref()
                    .and_then(|l| l.get(&key))
                    .cloned()
                    .unwrap_or_default()
            } else if let Some(key) = map_key("metadata.annotations") {
                meta.annotations
                    .as_ref()
                    .and_then(|l| l.get(&key))
                    .cloned()
                    .unwrap_or_default()
            } else {
                return None;
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{EnvVarSource, ObjectFieldSelector, PodSpec};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn lookup(name: &str) -> Option<String> {
        match name {
            "A" => Some("x".into()),
            "B" => Some("y".into()),
            _ => None,
        }
    }

    #[test]
    fn expansion_rules() {
        assert_eq!(expand("$(A)-$(B)", &lookup), "x-y");
        assert_eq!(expand("$$(A)", &lookup), "$(A)");
        assert_eq!(expand("$(C)", &lookup), "$(C)");
        assert_eq!(expand("$(A", &lookup), "$(A");
        assert_eq!(expand("a$", &lookup), "a$");
        assert_eq!(expand("ünï$(A)", &lookup), "ünïx");
    }

    #[test]
    fn env_refers_to_earlier_vars_and_fields() {
        let pod = Pod {
            metadata: ObjectMeta {
                name: Some("p-node".into()),
                namespace: Some("default".into()),
                labels: Some([("app".to_string(), "web".to_string())].into()),
                ..Default::default()
            },
            spec: Some(PodSpec::default()),
            ..Default::default()
        };
        let field = |p: &str| EnvVarSource {
            field_ref: Some(ObjectFieldSelector {
                field_path: p.into(),
                api_version: None,
            }),
            ..Default::default()
        };
        let c = Container {
            name: "c".into(),
            env: Some(vec![
                EnvVar {
                    name: "NAME".into(),
                    value_from: Some(field("metadata.name")),
                    value: None,
                },
                EnvVar {
                    name: "APP".into(),
                    value_from: Some(field("metadata.labels['app']")),
                    value: None,
                },
                EnvVar {
                    name: "GREETING".into(),
                    value: Some("hi $(NAME) $(APP) $(MISSING)".into()),
                    value_from: None,
                },
                EnvVar {
                    name: "IP".into(),
                    value_from: Some(field("status.podIP")),
                    value: None,
                },
            ]),
            ..Default::default()
        };
        let ctx = EnvContext {
            node_name: "node",
            pod_ips: &["10.88.0.5".into()],
            host_ips: &[],
            api: None,
            node: &NodeAllocatable::default(),
        };
        let env = resolve(&pod, &c, &ctx).expect("resolves");
        assert_eq!(
            env[2],
            ("GREETING".into(), "hi p-node web $(MISSING)".into())
        );
        assert_eq!(env[3].1, "10.88.0.5");
        let bad = Container {
            env: Some(vec![EnvVar {
                name: "X".into(),
                value_from: Some(field("spec.bogus")),
                value: None,
            }]),
            ..c
        };
        assert!(
            resolve(&pod, &bad, &ctx)
                .unwrap_err()
                .contains("spec.bogus")
        );
    }
}
