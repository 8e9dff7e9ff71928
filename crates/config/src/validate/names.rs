//! Kubernetes name rules used by node labels and taints
//! (apimachinery `IsQualifiedName`, `IsValidLabelValue`) and the kubelet's
//! rules on which `kubernetes.io` labels a node may set on itself.

const NAME_MAX: usize = 63;
const DNS_SUBDOMAIN_MAX: usize = 253;

/// `[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?`, at most 63 characters.
fn check_name_part(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("name part must be non-empty".into());
    }
    if name.len() > NAME_MAX {
        return Err(format!(
            "name part must be no more than {NAME_MAX} characters"
        ));
    }
    let bytes = name.as_bytes();
    let alnum = |b: u8| b.is_ascii_alphanumeric();
    let ok = alnum(bytes[0])
        && alnum(bytes[bytes.len() - 1])
        && bytes
            .iter()
            .all(|&b| alnum(b) || b == b'-' || b == b'_' || b == b'.');
    if ok {
        Ok(())
    } else {
        Err("name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character".into())
    }
}

/// A lowercase RFC 1123 DNS label (at most 63 characters).
pub(crate) fn is_dns_label(label: &str) -> bool {
    let b = label.as_bytes();
    !b.is_empty()
        && b.len() <= NAME_MAX
        && (b[0].is_ascii_lowercase() || b[0].is_ascii_digit())
        && (b[b.len() - 1].is_ascii_lowercase() || b[b.len() - 1].is_ascii_digit())
        && b.iter()
            .all(|&c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-')
}

/// A lowercase RFC 1123 DNS subdomain (at most 253 characters).
pub(crate) fn is_dns_subdomain(value: &str) -> bool {
    value.len() <= DNS_SUBDOMAIN_MAX && value.split('.').all(is_dns_label)
}

/// A lowercase RFC 1123 DNS subdomain.
fn check_dns_subdomain(value: &str) -> Result<(), String> {
    if !is_dns_subdomain(value) {
        return Err(format!(
            "prefix part {value:?} must be a lowercase RFC 1123 subdomain"
        ));
    }
    Ok(())
}

/// `[prefix/]name`, with a DNS-subdomain prefix (label keys, taint keys).
pub(crate) fn check_qualified_name(value: &str) -> Result<(), String> {
    match value.split_once('/') {
        Some((prefix, name)) => {
            if prefix.is_empty() {
                return Err("prefix part must be non-empty".into());
            }
            check_dns_subdomain(prefix)?;
            check_name_part(name)
        }
        None => check_name_part(value),
    }
}

/// Empty, or a name part (label values, taint values).
pub(crate) fn check_label_value(value: &str) -> Result<(), String> {
    if value.is_empty() {
        Ok(())
    } else {
        check_name_part(value).map_err(|e| e.replace("name part", "label value"))
    }
}

pub(crate) fn check_taint_effect(effect: &str) -> Result<(), String> {
    match effect {
        "NoSchedule" | "PreferNoSchedule" | "NoExecute" => Ok(()),
        _ => Err(format!(
            "invalid taint effect: {effect}, unsupported taint effect"
        )),
    }
}

/// Label namespaces under `kubernetes.io` that a kubelet may set.
const KUBELET_LABEL_NAMESPACES: &[&str] = &["kubelet.kubernetes.io", "node.kubernetes.io"];
/// Individual `kubernetes.io` labels a kubelet may set.
const KUBELET_LABELS: &[&str] = &[
    "beta.kubernetes.io/arch",
    "beta.kubernetes.io/instance-type",
    "beta.kubernetes.io/os",
    "failure-domain.beta.kubernetes.io/region",
    "failure-domain.beta.kubernetes.io/zone",
    "kubernetes.io/arch",
    "kubernetes.io/hostname",
    "kubernetes.io/os",
    "node.kubernetes.io/instance-type",
    "topology.kubernetes.io/region",
    "topology.kubernetes.io/zone",
];

fn in_namespace(namespace: &str, domain: &str) -> bool {
    namespace == domain || namespace.ends_with(&format!(".{domain}"))
}

/// Whether a node may label itself with `key` (upstream `--node-labels` rule):
/// keys in the `kubernetes.io`/`k8s.io` namespaces must be on the allow list.
pub(crate) fn is_allowed_node_label(key: &str) -> bool {
    let Some((namespace, _)) = key.split_once('/') else {
        return true;
    };
    if !in_namespace(namespace, "kubernetes.io") && !in_namespace(namespace, "k8s.io") {
        return true;
    }
    KUBELET_LABELS.contains(&key)
        || KUBELET_LABEL_NAMESPACES
            .iter()
            .any(|allowed| in_namespace(namespace, allowed))
}

/// Upstream's hint listing the allowed `kubernetes.io` labels.
pub(crate) fn allowed_node_labels_hint() -> String {
    format!(
        "--node-labels in the 'kubernetes.io' namespace must begin with an allowed prefix ({}) or be in the specifically allowed set ({})",
        KUBELET_LABEL_NAMESPACES.join(", "),
        KUBELET_LABELS.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qualified_names() {
        for ok in [
            "app",
            "example.com/app",
            "a.b-c_d",
            "node-role.example.io/worker",
            "A1",
        ] {
            assert_eq!(check_qualified_name(ok), Ok(()), "{ok}");
        }
        for bad in [
            "",
            "-app",
            "app-",
            "Example.com/app",
            "/app",
            "a/b/c",
            "bad key",
            &"x".repeat(64),
        ] {
            assert!(check_qualified_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn label_values() {
        assert_eq!(check_label_value(""), Ok(()));
        assert_eq!(check_label_value("v1.2"), Ok(()));
        assert!(
            check_label_value("has space")
                .unwrap_err()
                .contains("label value")
        );
    }

    #[test]
    fn kubernetes_io_labels_need_allow_list() {
        assert!(is_allowed_node_label("team"));
        assert!(is_allowed_node_label("example.com/team"));
        assert!(is_allowed_node_label("node.kubernetes.io/role"));
        assert!(is_allowed_node_label("foo.node.kubernetes.io/x"));
        assert!(is_allowed_node_label("topology.kubernetes.io/zone"));
        assert!(!is_allowed_node_label("node-role.kubernetes.io/master"));
        assert!(!is_allowed_node_label("k8s.io/anything"));
    }

    #[test]
    fn taint_effects() {
        assert_eq!(check_taint_effect("NoExecute"), Ok(()));
        assert!(check_taint_effect("Never").is_err());
    }
}
