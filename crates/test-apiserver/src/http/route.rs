//! Parsing request paths into routes.

use crate::registry::defs::{self, ResourceDef};

/// A resource request's target.
#[derive(Debug, Clone)]
pub struct ResourcePath {
    /// The resource.
    pub def: &'static ResourceDef,
    /// Namespace from the path (None: all namespaces or cluster-scoped).
    pub namespace: Option<String>,
    /// Object name.
    pub name: Option<String>,
    /// Subresource.
    pub sub: Option<String>,
}

/// Where a request goes.
#[derive(Debug, Clone)]
pub enum Route {
    /// `/api`.
    ApiVersions,
    /// `/apis`.
    ApiGroups,
    /// `/apis/<group>`.
    ApiGroup(String),
    /// `/api/v1`, `/apis/<g>/<v>`.
    ResourceList(String, String),
    /// `/version`.
    Version,
    /// `/healthz`, `/livez`, `/readyz` and their sub-paths.
    Health,
    /// `/openapi/...`.
    OpenApi(String),
    /// `/test/...`.
    Admin(String),
    /// A resource.
    Resource(ResourcePath),
    /// Nothing here.
    NotFound,
}

impl Route {
    /// Parses a path (already without the query).
    pub fn parse(path: &str) -> Route {
        let segs: Vec<String> = path
            .split('/')
            .filter(|s| !s.is_empty())
            .map(|s| {
                percent_encoding::percent_decode_str(s)
                    .decode_utf8_lossy()
                    .into_owned()
            })
            .collect();
        let s: Vec<&str> = segs.iter().map(String::as_str).collect();
        match s.as_slice() {
            ["api"] => Route::ApiVersions,
            ["apis"] => Route::ApiGroups,
            ["version"] => Route::Version,
            ["healthz" | "livez" | "readyz", ..] => Route::Health,
            ["openapi", rest @ ..] => Route::OpenApi(rest.join("/")),
            ["test", rest @ ..] => Route::Admin(rest.join("/")),
            ["api", "v1"] => Route::ResourceList(String::new(), "v1".into()),
            ["apis", g] => Route::ApiGroup(g.to_string()),
            ["apis", g, v] => Route::ResourceList(g.to_string(), v.to_string()),
            ["api", "v1", rest @ ..] => resource("", "v1", rest),
            ["apis", g, v, rest @ ..] => resource(g, v, rest),
            _ => Route::NotFound,
        }
    }
}

fn resource(group: &str, version: &str, rest: &[&str]) -> Route {
    let rp =
        |plural: &str, ns: Option<&str>, name: Option<&str>, sub: Option<&str>| match defs::find(
            group, version, plural,
        ) {
            Some(def) if ns.is_none() || def.namespaced => Route::Resource(ResourcePath {
                def,
                namespace: ns.map(String::from),
                name: name.map(String::from),
                sub: sub.map(String::from),
            }),
            _ => Route::NotFound,
        };
    match rest {
        // /api/v1/namespaces/<ns>/status|finalize
        ["namespaces", ns, sub]
            if group.is_empty()
                && defs::find(group, version, sub).is_none_or(|d| !d.namespaced) =>
        {
            rp("namespaces", None, Some(ns), Some(sub))
        }
        ["namespaces", ns, plural] => rp(plural, Some(ns), None, None),
        ["namespaces", ns, plural, name] => rp(plural, Some(ns), Some(name), None),
        ["namespaces", ns, plural, name, sub, ..] => rp(plural, Some(ns), Some(name), Some(sub)),
        [plural] => match defs::find(group, version, plural) {
            Some(def) => Route::Resource(ResourcePath {
                def,
                namespace: None,
                name: None,
                sub: None,
            }),
            None => Route::NotFound,
        },
        [plural, name] => cluster_scoped(group, version, plural, name, None),
        [plural, name, sub, ..] => cluster_scoped(group, version, plural, name, Some(sub)),
        _ => Route::NotFound,
    }
}

fn cluster_scoped(
    group: &str,
    version: &str,
    plural: &str,
    name: &str,
    sub: Option<&str>,
) -> Route {
    match defs::find(group, version, plural) {
        Some(def) if !def.namespaced => Route::Resource(ResourcePath {
            def,
            namespace: None,
            name: Some(name.to_string()),
            sub: sub.map(String::from),
        }),
        _ => Route::NotFound,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Parsed = (String, Option<String>, Option<String>, Option<String>);

    fn rp(p: &str) -> Option<Parsed> {
        match Route::parse(p) {
            Route::Resource(r) => Some((r.def.plural.to_string(), r.namespace, r.name, r.sub)),
            _ => None,
        }
    }

    #[test]
    fn paths() {
        assert_eq!(rp("/api/v1/pods"), Some(("pods".into(), None, None, None)));
        assert_eq!(
            rp("/api/v1/namespaces/d/pods/p/status"),
            Some((
                "pods".into(),
                Some("d".into()),
                Some("p".into()),
                Some("status".into())
            ))
        );
        assert_eq!(
            rp("/api/v1/namespaces/d"),
            Some(("namespaces".into(), None, Some("d".into()), None))
        );
        assert_eq!(
            rp("/api/v1/namespaces/d/finalize"),
            Some((
                "namespaces".into(),
                None,
                Some("d".into()),
                Some("finalize".into())
            ))
        );
        assert_eq!(
            rp("/api/v1/nodes/n1/status"),
            Some((
                "nodes".into(),
                None,
                Some("n1".into()),
                Some("status".into())
            ))
        );
        assert_eq!(
            rp("/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/n1"),
            Some((
                "leases".into(),
                Some("kube-node-lease".into()),
                Some("n1".into()),
                None
            ))
        );
        assert!(
            rp("/api/v1/pods/p").is_none(),
            "namespaced objects need a namespace"
        );
        assert!(rp("/api/v1/widgets").is_none());
        assert!(matches!(
            Route::parse("/apis/events.k8s.io/v1"),
            Route::ResourceList(..)
        ));
    }
}
