//! Strategic-merge metadata (`patchStrategy`/`patchMergeKey` of the Go types) for the lists
//! the kubelet and kubectl patch. Lists not named here are replaced as a whole, like
//! upstream's atomic lists.

/// How a list is merged by a strategic merge patch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListStrategy {
    /// Replaced as a whole.
    Replace,
    /// Merged by a key field (lists of objects).
    MergeByKey(&'static str),
    /// Set union (lists of scalars with `patchStrategy:"merge"`).
    MergePrimitives,
}

const POD_SPEC: &[(&str, ListStrategy)] = &[
    ("containers", ListStrategy::MergeByKey("name")),
    ("initContainers", ListStrategy::MergeByKey("name")),
    ("ephemeralContainers", ListStrategy::MergeByKey("name")),
    ("containers.env", ListStrategy::MergeByKey("name")),
    ("initContainers.env", ListStrategy::MergeByKey("name")),
    ("ephemeralContainers.env", ListStrategy::MergeByKey("name")),
    (
        "containers.ports",
        ListStrategy::MergeByKey("containerPort"),
    ),
    (
        "initContainers.ports",
        ListStrategy::MergeByKey("containerPort"),
    ),
    (
        "containers.volumeMounts",
        ListStrategy::MergeByKey("mountPath"),
    ),
    (
        "initContainers.volumeMounts",
        ListStrategy::MergeByKey("mountPath"),
    ),
    (
        "ephemeralContainers.volumeMounts",
        ListStrategy::MergeByKey("mountPath"),
    ),
    (
        "containers.volumeDevices",
        ListStrategy::MergeByKey("devicePath"),
    ),
    (
        "initContainers.volumeDevices",
        ListStrategy::MergeByKey("devicePath"),
    ),
    ("volumes", ListStrategy::MergeByKey("name")),
    ("imagePullSecrets", ListStrategy::MergeByKey("name")),
    ("hostAliases", ListStrategy::MergeByKey("ip")),
    (
        "topologySpreadConstraints",
        ListStrategy::MergeByKey("topologyKey"),
    ),
    ("schedulingGates", ListStrategy::MergeByKey("name")),
    ("resourceClaims", ListStrategy::MergeByKey("name")),
];

const POD_STATUS: &[(&str, ListStrategy)] = &[
    ("conditions", ListStrategy::MergeByKey("type")),
    ("podIPs", ListStrategy::MergeByKey("ip")),
    ("hostIPs", ListStrategy::MergeByKey("ip")),
    ("resourceClaimStatuses", ListStrategy::MergeByKey("name")),
];

const NODE: &[(&str, ListStrategy)] = &[
    ("spec.podCIDRs", ListStrategy::MergePrimitives),
    ("status.conditions", ListStrategy::MergeByKey("type")),
    ("status.addresses", ListStrategy::MergeByKey("type")),
];

const SERVICE: &[(&str, ListStrategy)] = &[("spec.ports", ListStrategy::MergeByKey("port"))];

const METADATA: &[(&str, ListStrategy)] = &[
    ("metadata.finalizers", ListStrategy::MergePrimitives),
    ("metadata.ownerReferences", ListStrategy::MergeByKey("uid")),
];

/// The strategy for the list at `path` (field names from the root, list indices omitted)
/// in an object of `kind`.
pub fn list_strategy(kind: &str, path: &[&str]) -> ListStrategy {
    let joined = path.join(".");
    let lookup = |table: &[(&str, ListStrategy)], p: &str| {
        table.iter().find(|(k, _)| *k == p).map(|(_, s)| *s)
    };
    if let Some(s) = lookup(METADATA, &joined) {
        return s;
    }
    let found = match kind {
        "Pod" => {
            if let Some(rest) = joined.strip_prefix("spec.") {
                lookup(POD_SPEC, rest)
            } else if let Some(rest) = joined.strip_prefix("status.") {
                lookup(POD_STATUS, rest)
            } else {
                None
            }
        }
        "Node" => lookup(NODE, &joined),
        "Service" => lookup(SERVICE, &joined),
        // Pod templates inside other kinds would go here; not needed by the kubelet.
        _ => None,
    };
    found.unwrap_or(ListStrategy::Replace)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_and_default_strategies() {
        assert_eq!(
            list_strategy("Pod", &["status", "conditions"]),
            ListStrategy::MergeByKey("type")
        );
        assert_eq!(
            list_strategy("Pod", &["spec", "containers", "env"]),
            ListStrategy::MergeByKey("name")
        );
        assert_eq!(
            list_strategy("Pod", &["status", "containerStatuses"]),
            ListStrategy::Replace
        );
        assert_eq!(
            list_strategy("Node", &["status", "addresses"]),
            ListStrategy::MergeByKey("type")
        );
        assert_eq!(
            list_strategy("ConfigMap", &["metadata", "finalizers"]),
            ListStrategy::MergePrimitives
        );
        assert_eq!(
            list_strategy("Node", &["spec", "taints"]),
            ListStrategy::Replace
        );
    }
}
