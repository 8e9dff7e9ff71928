//! Request attributes (upstream nodeAuthorizerAttributesGetter): every request is a
//! request on the node object, subresource chosen by path, verb by method. With fine
//! grained authorization (upstream default) `/pods`, `/runningpods`, `/healthz` and
//! `/configz` are tried as their own subresource first and as `proxy` second.

use super::User;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attributes {
    pub user: User,
    pub verb: String,
    pub namespace: String,
    pub api_group: String,
    pub api_version: String,
    pub resource: String,
    pub subresource: String,
    pub name: String,
    pub path: String,
}

fn is_subpath(sub: &str, path: &str) -> bool {
    let path = path.trim_end_matches('/');
    sub == path || (sub.starts_with(path) && sub.as_bytes().get(path.len()) == Some(&b'/'))
}

pub fn verb(method: &str) -> &'static str {
    match method {
        "POST" => "create",
        "GET" => "get",
        "PUT" => "update",
        "PATCH" => "patch",
        "DELETE" => "delete",
        _ => "",
    }
}

/// The attributes to authorize, in order: allowed if any one is allowed.
pub fn request_attributes(
    user: &User,
    method: &str,
    path: &str,
    node_name: &str,
) -> Vec<Attributes> {
    let mut subresources = Vec::new();
    if is_subpath(path, "/pods") || is_subpath(path, "/runningpods/") {
        subresources.push("pods");
    } else if is_subpath(path, "/healthz") {
        subresources.push("healthz");
    } else if is_subpath(path, "/configz") {
        subresources.push("configz");
    } else if is_subpath(path, "/statusz") {
        subresources.push("statusz");
    }
    subresources.push(if is_subpath(path, "/stats/") {
        "stats"
    } else if is_subpath(path, "/metrics") {
        "metrics"
    } else if is_subpath(path, "/logs/") {
        "log"
    } else if is_subpath(path, "/checkpoint/") {
        "checkpoint"
    } else {
        "proxy"
    });
    subresources
        .into_iter()
        .map(|sub| Attributes {
            user: user.clone(),
            verb: verb(method).into(),
            namespace: String::new(),
            api_group: String::new(),
            api_version: "v1".into(),
            resource: "nodes".into(),
            subresource: sub.into(),
            name: node_name.into(),
            path: path.into(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subs(method: &str, path: &str) -> Vec<(String, String)> {
        request_attributes(&User::anonymous(), method, path, "n")
            .into_iter()
            .map(|a| (a.verb, a.subresource))
            .collect()
    }

    fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn upstream_mapping() {
        assert_eq!(subs("GET", "/stats/summary"), pairs(&[("get", "stats")]));
        assert_eq!(subs("GET", "/stats"), pairs(&[("get", "stats")]));
        assert_eq!(subs("GET", "/metrics"), pairs(&[("get", "metrics")]));
        assert_eq!(
            subs("GET", "/metrics/cadvisor"),
            pairs(&[("get", "metrics")])
        );
        assert_eq!(subs("GET", "/metricsfoo"), pairs(&[("get", "proxy")]));
        assert_eq!(subs("GET", "/logs/syslog"), pairs(&[("get", "log")]));
        assert_eq!(
            subs("GET", "/pods"),
            pairs(&[("get", "pods"), ("get", "proxy")])
        );
        assert_eq!(
            subs("GET", "/runningpods/"),
            pairs(&[("get", "pods"), ("get", "proxy")])
        );
        assert_eq!(
            subs("GET", "/healthz"),
            pairs(&[("get", "healthz"), ("get", "proxy")])
        );
        assert_eq!(
            subs("GET", "/configz"),
            pairs(&[("get", "configz"), ("get", "proxy")])
        );
        assert_eq!(subs("POST", "/exec/ns/p/c"), pairs(&[("create", "proxy")]));
        assert_eq!(
            subs("GET", "/containerLogs/ns/p/c"),
            pairs(&[("get", "proxy")])
        );
        assert_eq!(subs("GET", "/spec/"), pairs(&[("get", "proxy")]));
        let a = &request_attributes(&User::anonymous(), "GET", "/pods", "node-1")[0];
        assert_eq!(
            (a.resource.as_str(), a.name.as_str(), a.api_version.as_str()),
            ("nodes", "node-1", "v1")
        );
    }
}
