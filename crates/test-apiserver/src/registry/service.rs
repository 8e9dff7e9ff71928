//! Service defaults and ClusterIP allocation from 10.96.0.0/12 (10.96.0.1 is `kubernetes`).

use std::collections::BTreeSet;
use std::net::Ipv4Addr;

use serde_json::{Value, json};

use crate::error::{ApiError, Cause};

use super::default_field;

/// The first address of the service range, given to the `kubernetes` service.
pub const KUBERNETES_SERVICE_IP: &str = "10.96.0.1";

/// Applies Service defaults; allocates a ClusterIP not in `used` unless headless/ExternalName.
pub fn apply_defaults(svc: &mut Value, used: &BTreeSet<String>) -> Result<(), ApiError> {
    let Some(spec) = svc.get_mut("spec").filter(|s| s.is_object()) else {
        return Err(ApiError::invalid(
            "",
            "Service",
            "",
            vec![Cause::new("FieldValueRequired", "spec", "Required value")],
        ));
    };
    default_field(spec, "type", json!("ClusterIP"));
    default_field(spec, "sessionAffinity", json!("None"));
    let external_name = spec.get("type").and_then(Value::as_str) == Some("ExternalName");
    if !external_name {
        default_field(spec, "internalTrafficPolicy", json!("Cluster"));
        default_field(spec, "ipFamilies", json!(["IPv4"]));
        default_field(spec, "ipFamilyPolicy", json!("SingleStack"));
        if let Some(Value::Array(ports)) = spec.get_mut("ports") {
            for p in ports {
                default_field(p, "protocol", json!("TCP"));
                if p.get("targetPort").is_none()
                    && let Some(port) = p.get("port").cloned()
                {
                    default_field(p, "targetPort", port);
                }
            }
        }
        let ip = spec
            .get("clusterIP")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let ip = if ip.is_empty() { allocate(used)? } else { ip };
        if let Some(m) = spec.as_object_mut() {
            m.insert("clusterIP".into(), json!(ip));
            m.insert("clusterIPs".into(), json!([ip]));
        }
    }
    if let Some(m) = svc.as_object_mut() {
        m.insert("status".into(), json!({"loadBalancer": {}}));
    }
    Ok(())
}

fn allocate(used: &BTreeSet<String>) -> Result<String, ApiError> {
    let base = u32::from(Ipv4Addr::new(10, 96, 0, 0));
    (2..(1u32 << 20) - 1)
        .map(|i| Ipv4Addr::from(base + i).to_string())
        .find(|ip| !used.contains(ip))
        .ok_or_else(|| ApiError::Internal("failed to allocate a serviceIP: range is full".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allocates_first_free_and_defaults_ports() {
        let mut used = BTreeSet::new();
        used.insert(KUBERNETES_SERVICE_IP.to_string());
        used.insert("10.96.0.2".to_string());
        let mut svc = json!({"spec": {"ports": [{"port": 80}]}});
        apply_defaults(&mut svc, &used).unwrap();
        assert_eq!(svc["spec"]["clusterIP"], "10.96.0.3");
        assert_eq!(svc["spec"]["ports"][0]["targetPort"], 80);
        assert_eq!(svc["spec"]["ports"][0]["protocol"], "TCP");
        let mut headless = json!({"spec": {"clusterIP": "None"}});
        apply_defaults(&mut headless, &used).unwrap();
        assert_eq!(headless["spec"]["clusterIP"], "None");
    }
}
