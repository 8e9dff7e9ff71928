//! The downward API's `resourceFieldRef` values, from the exact quantities of
//! [`kubelet_primitives::quantity`].

use k8s_openapi::api::core::v1::Container;
use kubelet_primitives::quantity::parse_milli;

fn quantity_of(container: &Container, limits: bool, resource: &str) -> Option<i128> {
    let res = container.resources.as_ref()?;
    let map = if limits {
        res.limits.as_ref()
    } else {
        res.requests.as_ref()
    }?;
    map.get(resource)
        .and_then(|q| parse_milli(&q.0).ok())
        .filter(|v| *v > 0)
}

/// `resourceFieldRef` (`limits.cpu`, `requests.memory`, `limits.hugepages-2Mi`, ...) with
/// its divisor, as upstream: an unset request is the limit (API defaulting), an unset or
/// zero cpu, memory or ephemeral-storage limit is the node's allocatable when
/// `node_defaults` is given, and the value is divided by the divisor rounding up (cpu in
/// millicores, the rest in whole units; a zero divisor means 1).
pub fn resource_field_value(
    container: &Container,
    resource: &str,
    divisor: Option<&str>,
    node_defaults: Option<&super::node::NodeAllocatable>,
) -> Result<String, String> {
    let unsupported = || format!("unsupported container resource: {resource:?}");
    let (limits, name) = match resource.split_once('.') {
        Some(("limits", name)) => (true, name),
        Some(("requests", name)) => (false, name),
        _ => return Err(unsupported()),
    };
    let known = matches!(name, "cpu" | "memory" | "ephemeral-storage")
        || super::node::hugepage_size_of(name).is_some();
    if !known {
        return Err(unsupported());
    }
    let own_limit = quantity_of(container, true, name);
    let limit = own_limit.or_else(|| node_defaults.and_then(|n| n.milli_of(name)));
    let value = if limits {
        limit
    } else {
        // Requests default to the limit the container declared, never to the node's.
        quantity_of(container, false, name).or(own_limit)
    }
    .unwrap_or(0);
    let divisor =
        parse_milli(divisor.unwrap_or("1")).map_err(|e| format!("divisor of {resource:?}: {e}"))?;
    let divisor = if divisor == 0 { 1000 } else { divisor };
    let (value, divisor) = if name == "cpu" {
        (value, divisor)
    } else {
        // Whole units, each rounded up, as Quantity.Value().
        ((value + 999) / 1000, (divisor + 999) / 1000)
    };
    Ok(((value + divisor - 1) / divisor).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    use kubelet_primitives::quantity::parse_value;

    /// The values the downward API and the cgroups take from quantities (the parser
    /// itself is kubelet_primitives').
    #[test]
    fn parses_units() {
        assert_eq!(parse_milli("50m"), Ok(50));
        assert_eq!(parse_milli("1"), Ok(1000));
        assert_eq!(parse_milli("1.5"), Ok(1500));
        assert_eq!(parse_value("32Mi"), Ok(32 << 20));
        assert_eq!(parse_value("1G"), Ok(1_000_000_000));
        assert_eq!(parse_value("1e3"), Ok(1000));
        assert_eq!(parse_milli("0.0001"), Ok(1)); // rounds up
        assert!(parse_milli("abc").is_err());
        assert!(parse_milli("-1").is_err());
        assert!(parse_milli("1Zi").is_err());
        assert!(parse_milli("").is_err());
        assert_eq!(parse_milli("500000u"), Ok(500));
    }

    fn container(requests: &[(&str, &str)], limits: &[(&str, &str)]) -> Container {
        let map = |kv: &[(&str, &str)]| {
            Some(
                kv.iter()
                    .map(|(k, v)| {
                        (
                            k.to_string(),
                            k8s_openapi::apimachinery::pkg::api::resource::Quantity(v.to_string()),
                        )
                    })
                    .collect(),
            )
        };
        Container {
            name: "c".into(),
            resources: Some(k8s_openapi::api::core::v1::ResourceRequirements {
                requests: map(requests),
                limits: map(limits),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn resource_fields_with_divisors_and_node_defaults() {
        let node = super::super::node::NodeAllocatable {
            cpu_milli: 1500,
            memory_bytes: 3 << 30,
            ephemeral_storage_bytes: 10 << 30,
            hugepages: Default::default(),
        };
        let c = container(
            &[("cpu", "250m")],
            &[("memory", "64Mi"), ("hugepages-2Mi", "4Mi")],
        );
        let v = |r: &str, d: Option<&str>, n| resource_field_value(&c, r, d, n).unwrap();
        assert_eq!(v("limits.memory", Some("1Mi"), Some(&node)), "64");
        assert_eq!(
            v("requests.memory", None, Some(&node)),
            (64u64 << 20).to_string()
        );
        // No cpu limit: the node's allocatable, rounded up per divisor.
        assert_eq!(v("limits.cpu", None, Some(&node)), "2");
        assert_eq!(v("limits.cpu", Some("1m"), Some(&node)), "1500");
        assert_eq!(
            v("limits.cpu", None, None),
            "0",
            "no node facts, no default"
        );
        assert_eq!(v("requests.cpu", None, Some(&node)), "1");
        assert_eq!(v("requests.cpu", Some("1m"), Some(&node)), "250");
        assert_eq!(
            v("limits.ephemeral-storage", Some("1Gi"), Some(&node)),
            "10"
        );
        assert_eq!(v("requests.ephemeral-storage", None, Some(&node)), "0");
        assert_eq!(v("limits.hugepages-2Mi", Some("1Mi"), Some(&node)), "4");
        // Memory divisors below one unit count as one byte; a zero divisor is 1.
        assert_eq!(
            v("limits.memory", Some("1m"), None),
            (64u64 << 20).to_string()
        );
        assert_eq!(
            v("limits.memory", Some("0"), None),
            (64u64 << 20).to_string()
        );
        assert_eq!(v("limits.memory", Some("1G"), None), "1");
        for bad in ["limits.gpu", "limits", "status.cpu", "requests.hugepages-x"] {
            assert!(
                resource_field_value(&c, bad, None, Some(&node))
                    .unwrap_err()
                    .contains("unsupported container resource"),
                "{bad}"
            );
        }
        assert!(resource_field_value(&c, "limits.cpu", Some("-1"), None).is_err());
    }
}
