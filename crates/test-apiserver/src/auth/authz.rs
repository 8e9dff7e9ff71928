//! Authorization: `system:masters` may do anything; everyone else is checked against
//! configurable allow rules (or allowed everything in `AlwaysAllow` mode).

use serde::{Deserialize, Serialize};

use super::UserInfo;

/// What a request wants to do (SubjectAccessReview's attributes).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attributes {
    /// Verb: get, list, watch, create, update, patch, delete, deletecollection, ...
    pub verb: String,
    /// Namespace ("" for cluster scope).
    pub namespace: String,
    /// API group.
    pub api_group: String,
    /// Resource plural.
    pub resource: String,
    /// Subresource.
    pub subresource: String,
    /// Object name.
    pub name: String,
    /// Whether this is a resource request (else `path` applies).
    pub resource_request: bool,
    /// Non-resource path.
    pub path: String,
}

/// One allow rule; an empty list matches anything.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Rule {
    /// Users this rule applies to.
    #[serde(default)]
    pub users: Vec<String>,
    /// Groups this rule applies to.
    #[serde(default)]
    pub groups: Vec<String>,
    /// Verbs allowed.
    #[serde(default)]
    pub verbs: Vec<String>,
    /// API groups ("" core).
    #[serde(default)]
    pub api_groups: Vec<String>,
    /// Resources, `pods` or `pods/log`.
    #[serde(default)]
    pub resources: Vec<String>,
    /// Namespaces.
    #[serde(default)]
    pub namespaces: Vec<String>,
    /// Object names.
    #[serde(default)]
    pub names: Vec<String>,
    /// Non-resource URL prefixes (`/healthz`, `/api*`).
    #[serde(default)]
    pub non_resource_urls: Vec<String>,
}

/// The authorization policy.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "mode", content = "rules")]
pub enum Policy {
    /// Allow every authenticated request.
    #[default]
    AlwaysAllow,
    /// Allow `system:masters` and what a rule allows; deny the rest.
    Rules(Vec<Rule>),
}

fn any_or(list: &[String], v: &str) -> bool {
    list.is_empty() || list.iter().any(|x| x == "*" || x == v)
}

impl Rule {
    fn subject_matches(&self, user: &UserInfo) -> bool {
        if self.users.is_empty() && self.groups.is_empty() {
            return true;
        }
        self.users.iter().any(|u| u == "*" || *u == user.name)
            || self.groups.iter().any(|g| user.in_group(g))
    }

    fn allows(&self, user: &UserInfo, a: &Attributes) -> bool {
        if !self.subject_matches(user) || !any_or(&self.verbs, &a.verb) {
            return false;
        }
        if !a.resource_request {
            return self
                .non_resource_urls
                .iter()
                .any(|p| match p.strip_suffix('*') {
                    Some(prefix) => a.path.starts_with(prefix),
                    None => *p == a.path,
                });
        }
        if !self.non_resource_urls.is_empty() && self.resources.is_empty() {
            return false;
        }
        let res = if a.subresource.is_empty() {
            a.resource.clone()
        } else {
            format!("{}/{}", a.resource, a.subresource)
        };
        any_or(&self.api_groups, &a.api_group)
            && (any_or(&self.resources, &res)
                || self
                    .resources
                    .iter()
                    .any(|r| r == &format!("{}/*", a.resource)))
            && any_or(&self.namespaces, &a.namespace)
            && any_or(&self.names, &a.name)
    }
}

/// The decision and its reason (for SubjectAccessReview status).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// Allowed?
    pub allowed: bool,
    /// Why.
    pub reason: String,
}

impl Policy {
    /// Decides a request.
    pub fn authorize(&self, user: &UserInfo, a: &Attributes) -> Decision {
        if user.in_group("system:masters") {
            return Decision {
                allowed: true,
                reason: "user is in system:masters".into(),
            };
        }
        match self {
            Policy::AlwaysAllow => Decision {
                allowed: true,
                reason: "AlwaysAllow".into(),
            },
            Policy::Rules(rules) => match rules.iter().position(|r| r.allows(user, a)) {
                Some(i) => Decision {
                    allowed: true,
                    reason: format!("allowed by rule {i}"),
                },
                None => Decision {
                    allowed: false,
                    reason: String::new(),
                },
            },
        }
    }
}

/// Upstream's forbidden message tail: `User "u" cannot get resource "pods" in API group ""
/// in the namespace "ns"`.
pub fn forbidden_message(user: &UserInfo, a: &Attributes) -> String {
    if !a.resource_request {
        return format!(
            "User \"{}\" cannot {} path \"{}\"",
            user.name, a.verb, a.path
        );
    }
    let res = if a.subresource.is_empty() {
        a.resource.clone()
    } else {
        format!("{}/{}", a.resource, a.subresource)
    };
    let scope = if a.namespace.is_empty() {
        " at the cluster scope".to_string()
    } else {
        format!(" in the namespace \"{}\"", a.namespace)
    };
    format!(
        "User \"{}\" cannot {} resource \"{}\" in API group \"{}\"{}",
        user.name, a.verb, res, a.api_group, scope
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attrs(verb: &str, res: &str, sub: &str, ns: &str) -> Attributes {
        Attributes {
            verb: verb.into(),
            resource: res.into(),
            subresource: sub.into(),
            namespace: ns.into(),
            resource_request: true,
            ..Default::default()
        }
    }

    #[test]
    fn rules_match_by_group_verb_resource() {
        let p = Policy::Rules(vec![Rule {
            groups: vec!["system:nodes".into()],
            verbs: vec!["get".into(), "list".into(), "watch".into()],
            resources: vec!["pods".into(), "nodes/*".into()],
            ..Default::default()
        }]);
        let node = UserInfo::new("system:node:n1", &["system:nodes"]);
        assert!(
            p.authorize(&node, &attrs("get", "pods", "", "default"))
                .allowed
        );
        assert!(
            p.authorize(&node, &attrs("get", "nodes", "status", ""))
                .allowed
        );
        assert!(
            !p.authorize(&node, &attrs("delete", "pods", "", "default"))
                .allowed
        );
        assert!(
            !p.authorize(&node, &attrs("get", "pods", "log", "default"))
                .allowed
        );
        let other = UserInfo::new("bob", &[]);
        assert!(
            !p.authorize(&other, &attrs("get", "pods", "", "default"))
                .allowed
        );
        assert!(
            p.authorize(&UserInfo::admin(), &attrs("delete", "pods", "", "x"))
                .allowed
        );
    }

    #[test]
    fn forbidden_message_matches_upstream() {
        let u = UserInfo::new("bob", &[]);
        assert_eq!(
            forbidden_message(&u, &attrs("list", "pods", "", "default")),
            "User \"bob\" cannot list resource \"pods\" in API group \"\" in the namespace \"default\""
        );
        assert!(
            forbidden_message(&u, &attrs("list", "nodes", "", ""))
                .ends_with("at the cluster scope")
        );
    }
}
