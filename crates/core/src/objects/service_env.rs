//! Service environment variables (`FOO_SERVICE_HOST`, `FOO_PORT_80_TCP` ...), as upstream
//! `getServiceEnvVarMap` and `envvars.FromServices`: the `kubernetes` Service of the
//! `default` namespace always, the pod's namespace's Services when `enableServiceLinks`
//! (default true). Services without a cluster IP (headless) give nothing.

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Pod, Service};

use super::{ApiObjects, ObjectError};

const MASTER_NAMESPACE: &str = "default";
const MASTER_SERVICE: &str = "kubernetes";

/// Look the Services up and build the variables for `pod`.
pub async fn fetch(api: &dyn ApiObjects, pod: &Pod) -> Result<Vec<(String, String)>, ObjectError> {
    let namespace = pod.metadata.namespace.as_deref().unwrap_or("default");
    let links = pod
        .spec
        .as_ref()
        .and_then(|s| s.enable_service_links)
        .unwrap_or(true);
    let mut services = api.services(MASTER_NAMESPACE).await?;
    if links && namespace != MASTER_NAMESPACE {
        services.extend(api.services(namespace).await?);
    }
    Ok(env_for(namespace, links, &services))
}

/// The variables for a pod in `namespace` given every Service seen (pure).
pub fn env_for(namespace: &str, links: bool, services: &[Arc<Service>]) -> Vec<(String, String)> {
    let mut chosen: BTreeMap<String, &Service> = BTreeMap::new();
    for svc in services {
        if !ip_set(svc) {
            continue;
        }
        let name = svc.metadata.name.clone().unwrap_or_default();
        let ns = svc.metadata.namespace.as_deref().unwrap_or_default();
        if ns == MASTER_NAMESPACE && name == MASTER_SERVICE {
            chosen.entry(name).or_insert(svc);
        } else if ns == namespace && links {
            chosen.insert(name, svc);
        }
    }
    chosen.values().flat_map(|svc| from_service(svc)).collect()
}

fn ip_set(svc: &Service) -> bool {
    svc.spec
        .as_ref()
        .and_then(|s| s.cluster_ip.as_deref())
        .is_some_and(|ip| !ip.is_empty() && ip != "None")
}

fn var_name(name: &str) -> String {
    name.to_uppercase().replace('-', "_")
}

fn from_service(svc: &Service) -> Vec<(String, String)> {
    let Some(spec) = svc.spec.as_ref() else {
        return Vec::new();
    };
    let ip = spec.cluster_ip.clone().unwrap_or_default();
    let prefix = var_name(svc.metadata.name.as_deref().unwrap_or_default());
    let ports = spec.ports.as_deref().unwrap_or_default();
    let mut out = vec![(format!("{prefix}_SERVICE_HOST"), ip.clone())];
    let Some(first) = ports.first() else {
        return out;
    };
    out.push((format!("{prefix}_SERVICE_PORT"), first.port.to_string()));
    for p in ports {
        if let Some(n) = p.name.as_deref().filter(|n| !n.is_empty()) {
            out.push((
                format!("{prefix}_SERVICE_PORT_{}", var_name(n)),
                p.port.to_string(),
            ));
        }
    }
    let host_port = |port: i32| {
        if ip.contains(':') {
            format!("[{ip}]:{port}")
        } else {
            format!("{ip}:{port}")
        }
    };
    for (i, p) in ports.iter().enumerate() {
        let protocol = p.protocol.clone().unwrap_or_else(|| "TCP".into());
        let lower = protocol.to_lowercase();
        let url = format!("{lower}://{}", host_port(p.port));
        if i == 0 {
            out.push((format!("{prefix}_PORT"), url.clone()));
        }
        let pp = format!("{prefix}_PORT_{}_{}", p.port, protocol.to_uppercase());
        out.push((pp.clone(), url));
        out.push((format!("{pp}_PROTO"), lower));
        out.push((format!("{pp}_PORT"), p.port.to_string()));
        out.push((format!("{pp}_ADDR"), ip.clone()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn svc(ns: &str, name: &str, ip: &str, ports: serde_json::Value) -> Arc<Service> {
        Arc::new(
            serde_json::from_value(serde_json::json!({
                "metadata": {"name": name, "namespace": ns},
                "spec": {"clusterIP": ip, "ports": ports}
            }))
            .unwrap(),
        )
    }

    #[test]
    fn upstream_names_and_values() {
        let services = vec![
            svc(
                "default",
                "kubernetes",
                "10.0.0.1",
                serde_json::json!([{"name": "https", "port": 443, "protocol": "TCP"}]),
            ),
            svc(
                "app",
                "my-web",
                "10.0.0.9",
                serde_json::json!([{"port": 80}, {"name": "metrics", "port": 9090, "protocol": "UDP"}]),
            ),
            svc("app", "headless", "None", serde_json::json!([{"port": 80}])),
            svc(
                "other",
                "elsewhere",
                "10.0.0.7",
                serde_json::json!([{"port": 80}]),
            ),
        ];
        let env: BTreeMap<String, String> = env_for("app", true, &services).into_iter().collect();
        assert_eq!(env["KUBERNETES_SERVICE_HOST"], "10.0.0.1");
        assert_eq!(env["KUBERNETES_SERVICE_PORT"], "443");
        assert_eq!(env["KUBERNETES_SERVICE_PORT_HTTPS"], "443");
        assert_eq!(env["KUBERNETES_PORT"], "tcp://10.0.0.1:443");
        assert_eq!(env["KUBERNETES_PORT_443_TCP_ADDR"], "10.0.0.1");
        assert_eq!(env["MY_WEB_SERVICE_HOST"], "10.0.0.9");
        assert_eq!(env["MY_WEB_PORT"], "tcp://10.0.0.9:80");
        assert_eq!(env["MY_WEB_SERVICE_PORT_METRICS"], "9090");
        assert_eq!(env["MY_WEB_PORT_9090_UDP"], "udp://10.0.0.9:9090");
        assert_eq!(env["MY_WEB_PORT_9090_UDP_PROTO"], "udp");
        assert!(!env.contains_key("HEADLESS_SERVICE_HOST"));
        assert!(!env.contains_key("ELSEWHERE_SERVICE_HOST"));
        // enableServiceLinks: false keeps only the master service.
        let env: BTreeMap<String, String> = env_for("app", false, &services).into_iter().collect();
        assert!(env.contains_key("KUBERNETES_SERVICE_HOST"));
        assert!(!env.contains_key("MY_WEB_SERVICE_HOST"));
    }
}
