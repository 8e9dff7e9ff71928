//! The table of served resources (what discovery advertises and the router accepts).

/// Verbs of a normal persisted resource.
pub const CRUD: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];
/// Verbs of a create-only virtual resource (reviews).
pub const CREATE: &[&str] = &["create"];
const GET_PATCH_UPDATE: &[&str] = &["get", "patch", "update"];

/// A subresource: name, the kind it takes/returns, its verbs.
#[derive(Debug, Clone, Copy)]
pub struct SubDef {
    /// e.g. `status`.
    pub name: &'static str,
    /// Kind served by the subresource.
    pub kind: &'static str,
    /// Group of that kind ("" core).
    pub kind_group: &'static str,
    /// Version of that kind.
    pub kind_version: &'static str,
    /// Verbs.
    pub verbs: &'static [&'static str],
}

/// One served resource.
#[derive(Debug, Clone, Copy)]
pub struct ResourceDef {
    /// API group ("" for core).
    pub group: &'static str,
    /// API version.
    pub version: &'static str,
    /// Kind.
    pub kind: &'static str,
    /// Plural resource name.
    pub plural: &'static str,
    /// Singular name.
    pub singular: &'static str,
    /// Namespaced or cluster-scoped.
    pub namespaced: bool,
    /// kubectl short names.
    pub short_names: &'static [&'static str],
    /// Discovery categories.
    pub categories: &'static [&'static str],
    /// Verbs.
    pub verbs: &'static [&'static str],
    /// Storage name (shared by the two Event versions).
    pub storage: &'static str,
    /// Subresources.
    pub subresources: &'static [SubDef],
    /// Whether DELETE returns the object (true) or a Status (false).
    pub delete_returns_object: bool,
}

impl ResourceDef {
    /// `v1` or `group/version`.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_string()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// A subresource by name.
    pub fn sub(&self, name: &str) -> Option<&'static SubDef> {
        self.subresources.iter().find(|s| s.name == name)
    }

    /// Whether the resource is persisted (not a create-only review).
    pub fn persisted(&self) -> bool {
        self.verbs.contains(&"get")
    }

    /// Whether the resource has a status subresource.
    pub fn has_status(&self) -> bool {
        self.sub("status").is_some()
    }
}

const fn sub(name: &'static str, kind: &'static str, verbs: &'static [&'static str]) -> SubDef {
    SubDef {
        name,
        kind,
        kind_group: "",
        kind_version: "v1",
        verbs,
    }
}

const fn sub_g(
    name: &'static str,
    kind: &'static str,
    group: &'static str,
    version: &'static str,
    verbs: &'static [&'static str],
) -> SubDef {
    SubDef {
        name,
        kind,
        kind_group: group,
        kind_version: version,
        verbs,
    }
}

#[allow(clippy::too_many_arguments)]
const fn def(
    group: &'static str,
    version: &'static str,
    kind: &'static str,
    plural: &'static str,
    singular: &'static str,
    namespaced: bool,
    short_names: &'static [&'static str],
    verbs: &'static [&'static str],
    subresources: &'static [SubDef],
) -> ResourceDef {
    ResourceDef {
        group,
        version,
        kind,
        plural,
        singular,
        namespaced,
        short_names,
        categories: &[],
        verbs,
        storage: plural,
        subresources,
        delete_returns_object: false,
    }
}

/// One table row: `group version Kind plural singular namespaced [short names] verbs
/// [subresources]`, then overrides of the other fields (`categories`,
/// `delete_returns_object`, `storage`).
macro_rules! resource {
    ($group:literal $version:literal $kind:literal $plural:literal $singular:literal
     $namespaced:literal [$($short:literal),*] $verbs:ident [$($sub:expr),* $(,)?]
     $(, $field:ident: $value:expr)* $(,)?) => {
        ResourceDef {
            $($field: $value,)*
            ..def($group, $version, $kind, $plural, $singular, $namespaced,
                  &[$($short),*], $verbs, &[$($sub),*])
        }
    };
}

/// Every served resource.
pub static RESOURCES: &[ResourceDef] = &[
    resource!("" "v1" "Namespace" "namespaces" "namespace" false ["ns"] CRUD [
        sub("status", "Namespace", GET_PATCH_UPDATE),
        sub("finalize", "Namespace", &["update"]),
    ], delete_returns_object: true),
    resource!("" "v1" "Node" "nodes" "node" false ["no"] CRUD [
        sub("status", "Node", GET_PATCH_UPDATE),
        sub("proxy", "NodeProxyOptions", &["create", "delete", "get", "patch", "update"]),
    ], delete_returns_object: true),
    resource!("" "v1" "Pod" "pods" "pod" true ["po"] CRUD [
        sub("status", "Pod", GET_PATCH_UPDATE),
        sub("binding", "Binding", CREATE),
        sub("ephemeralcontainers", "Pod", GET_PATCH_UPDATE),
        sub_g("eviction", "Eviction", "policy", "v1", CREATE),
        sub("log", "Pod", &["get"]),
        sub("exec", "PodExecOptions", &["create", "get"]),
        sub("attach", "PodAttachOptions", &["create", "get"]),
        sub("portforward", "PodPortForwardOptions", &["create", "get"]),
    ], categories: &["all"], delete_returns_object: true),
    resource!("" "v1" "Binding" "bindings" "binding" true [] CREATE []),
    resource!("" "v1" "ConfigMap" "configmaps" "configmap" true ["cm"] CRUD []),
    resource!("" "v1" "Secret" "secrets" "secret" true [] CRUD []),
    resource!("" "v1" "Service" "services" "service" true ["svc"] CRUD [
        sub("status", "Service", GET_PATCH_UPDATE),
    ], categories: &["all"], delete_returns_object: true),
    resource!("" "v1" "ServiceAccount" "serviceaccounts" "serviceaccount" true ["sa"] CRUD [
        sub_g("token", "TokenRequest", "authentication.k8s.io", "v1", CREATE),
    ]),
    resource!("" "v1" "Event" "events" "event" true ["ev"] CRUD []),
    resource!("events.k8s.io" "v1" "Event" "events" "event" true ["ev"] CRUD [],
        storage: "events"),
    resource!("coordination.k8s.io" "v1" "Lease" "leases" "lease" true [] CRUD []),
    resource!("node.k8s.io" "v1" "RuntimeClass" "runtimeclasses" "runtimeclass" false [] CRUD []),
    resource!("certificates.k8s.io" "v1" "CertificateSigningRequest"
        "certificatesigningrequests" "certificatesigningrequest" false ["csr"] CRUD [
        sub_g("approval", "CertificateSigningRequest", "certificates.k8s.io", "v1", GET_PATCH_UPDATE),
        sub_g("status", "CertificateSigningRequest", "certificates.k8s.io", "v1", GET_PATCH_UPDATE),
    ]),
    resource!("authentication.k8s.io" "v1" "TokenReview" "tokenreviews" "tokenreview" false [] CREATE []),
    resource!("authentication.k8s.io" "v1" "SelfSubjectReview" "selfsubjectreviews"
        "selfsubjectreview" false [] CREATE []),
    resource!("authorization.k8s.io" "v1" "SubjectAccessReview" "subjectaccessreviews"
        "subjectaccessreview" false [] CREATE []),
    resource!("authorization.k8s.io" "v1" "SelfSubjectAccessReview" "selfsubjectaccessreviews"
        "selfsubjectaccessreview" false [] CREATE []),
    resource!("authorization.k8s.io" "v1" "LocalSubjectAccessReview" "localsubjectaccessreviews"
        "localsubjectaccessreview" true [] CREATE []),
];

/// The served API groups with their (single) version, in discovery order.
pub const GROUPS: &[(&str, &str)] = &[
    ("events.k8s.io", "v1"),
    ("authentication.k8s.io", "v1"),
    ("authorization.k8s.io", "v1"),
    ("certificates.k8s.io", "v1"),
    ("coordination.k8s.io", "v1"),
];

/// Looks a resource up by group, version and plural.
pub fn find(group: &str, version: &str, plural: &str) -> Option<&'static ResourceDef> {
    RESOURCES
        .iter()
        .find(|r| r.group == group && r.version == version && r.plural == plural)
}

/// The resources of one group/version.
pub fn in_group_version<'a>(
    group: &'a str,
    version: &'a str,
) -> impl Iterator<Item = &'static ResourceDef> + 'a {
    RESOURCES
        .iter()
        .filter(move |r| r.group == group && r.version == version)
}

/// The storage definition (the one whose kind is stored) for a storage name: the first
/// definition with that storage.
pub fn storage_def(storage: &str) -> Option<&'static ResourceDef> {
    RESOURCES.iter().find(|r| r.storage == storage)
}
