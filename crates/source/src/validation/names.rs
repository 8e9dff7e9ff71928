//! Name syntax checks (RFC 1123 labels and subdomains, qualified names, label values,
//! IANA service names, environment variable names). Each returns the problems found,
//! empty when the name is fine.

const DNS_LABEL_MAX: usize = 63;
const DNS_SUBDOMAIN_MAX: usize = 253;
const QUALIFIED_NAME_MAX: usize = 63;
const LABEL_VALUE_MAX: usize = 63;
const IANA_SVC_NAME_MAX: usize = 15;

fn lower_alnum(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit()
}

fn alnum(c: char) -> bool {
    c.is_ascii_alphanumeric()
}

/// `[a-z0-9]([-a-z0-9]*[a-z0-9])?`
fn label_shape_ok(s: &str) -> bool {
    let (Some(first), Some(last)) = (s.chars().next(), s.chars().last()) else {
        return false;
    };
    lower_alnum(first) && lower_alnum(last) && s.chars().all(|c| lower_alnum(c) || c == '-')
}

fn too_long(max: usize) -> String {
    format!("must be no more than {max} characters")
}

/// An RFC 1123 label: namespaces, container names, volume names, hostnames.
pub fn dns1123_label(s: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if s.len() > DNS_LABEL_MAX {
        errs.push(too_long(DNS_LABEL_MAX));
    }
    if !label_shape_ok(s) {
        errs.push(
            "a lowercase RFC 1123 label must contain only lowercase letters, digits and '-', \
             and start and end with a letter or digit (e.g. 'my-name' or '123-abc')"
                .to_string(),
        );
    }
    errs
}

/// An RFC 1123 subdomain: pod names, node names, label-key prefixes.
pub fn dns1123_subdomain(s: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if s.len() > DNS_SUBDOMAIN_MAX {
        errs.push(too_long(DNS_SUBDOMAIN_MAX));
    }
    if s.is_empty() || !s.split('.').all(label_shape_ok) {
        errs.push(
            "a lowercase RFC 1123 subdomain must contain only lowercase letters, digits, '-' \
             and '.', and start and end with a letter or digit (e.g. 'example.com')"
                .to_string(),
        );
    }
    errs
}

/// `([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]`, possibly empty.
fn qualified_shape_ok(s: &str) -> bool {
    let (Some(first), Some(last)) = (s.chars().next(), s.chars().last()) else {
        return false;
    };
    alnum(first) && alnum(last) && s.chars().all(|c| alnum(c) || matches!(c, '-' | '_' | '.'))
}

/// A qualified name (`[prefix/]name`): label and annotation keys.
pub fn qualified_name(s: &str) -> Vec<String> {
    let mut errs = Vec::new();
    let (prefix, name) = match s.split_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, s),
    };
    if let Some(prefix) = prefix {
        if prefix.is_empty() {
            errs.push("prefix part must be non-empty".to_string());
        } else {
            errs.extend(
                dns1123_subdomain(prefix)
                    .into_iter()
                    .map(|e| format!("prefix part {e}")),
            );
        }
    }
    if name.contains('/') {
        errs.push("a qualified name may contain at most one '/'".to_string());
        return errs;
    }
    if name.is_empty() {
        errs.push("name part must be non-empty".to_string());
    } else {
        if name.len() > QUALIFIED_NAME_MAX {
            errs.push(format!("name part {}", too_long(QUALIFIED_NAME_MAX)));
        }
        if !qualified_shape_ok(name) {
            errs.push(
                "name part must contain only letters, digits, '-', '_' and '.', and start and \
                 end with a letter or digit (e.g. 'MyName' or 'my.name')"
                    .to_string(),
            );
        }
    }
    errs
}

/// A label value: empty, or a qualified-name-shaped string of at most 63 characters.
pub fn label_value(s: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if s.is_empty() {
        return errs;
    }
    if s.len() > LABEL_VALUE_MAX {
        errs.push(too_long(LABEL_VALUE_MAX));
    }
    if !qualified_shape_ok(s) {
        errs.push(
            "a label value must be empty or contain only letters, digits, '-', '_' and '.', \
             and start and end with a letter or digit"
                .to_string(),
        );
    }
    errs
}

/// An IANA service name (container port names): at most 15 characters, lowercase
/// letters, digits and '-', at least one letter, no leading/trailing/double '-'.
pub fn iana_svc_name(s: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if s.len() > IANA_SVC_NAME_MAX {
        errs.push(too_long(IANA_SVC_NAME_MAX));
    }
    if !s.chars().all(|c| lower_alnum(c) || c == '-') {
        errs.push("must contain only lowercase letters, digits and '-'".to_string());
    }
    if s.contains("--") {
        errs.push("must not contain consecutive hyphens".to_string());
    }
    if !s.chars().any(|c| c.is_ascii_lowercase()) {
        errs.push("must contain at least one letter".to_string());
    }
    if s.starts_with('-') || s.ends_with('-') {
        errs.push("must not begin or end with a hyphen".to_string());
    }
    errs
}

/// An environment variable name (relaxed rules, GA since v1.34): printable ASCII other
/// than '='.
pub fn env_var_name(s: &str) -> Vec<String> {
    if s.bytes().all(|b| (0x20..0x7f).contains(&b) && b != b'=') {
        Vec::new()
    } else {
        vec![
            "an environment variable name must contain only printable ASCII characters other \
             than '='"
                .to_string(),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels() {
        for ok in ["a", "web-1", "0abc", &"a".repeat(63)] {
            assert!(dns1123_label(ok).is_empty(), "{ok}");
        }
        for bad in ["", "-a", "a-", "A", "a_b", "a.b", &"a".repeat(64)] {
            assert!(!dns1123_label(bad).is_empty(), "{bad}");
        }
    }

    #[test]
    fn subdomains() {
        for ok in ["a", "web-node1", "a.b-c.d", "kube-apiserver-master.local"] {
            assert!(dns1123_subdomain(ok).is_empty(), "{ok}");
        }
        for bad in ["", "a..b", ".a", "a.", "Web", "a_b", &"a".repeat(254)] {
            assert!(!dns1123_subdomain(bad).is_empty(), "{bad}");
        }
    }

    #[test]
    fn qualified_names_and_label_values() {
        for ok in ["app", "App_1.x", "k8s.io/app", "example.com/My-Key"] {
            assert!(qualified_name(ok).is_empty(), "{ok}");
        }
        for bad in ["", "/a", "a/", "a/b/c", "-a", "Bad.Prefix/a", "a b"] {
            assert!(!qualified_name(bad).is_empty(), "{bad}");
        }
        assert!(label_value("").is_empty());
        assert!(label_value("v1.2_beta-3").is_empty());
        assert!(!label_value("-x").is_empty());
        assert!(!label_value(&"x".repeat(64)).is_empty());
    }

    #[test]
    fn port_and_env_names() {
        assert!(iana_svc_name("http").is_empty());
        assert!(iana_svc_name("metrics-2").is_empty());
        assert!(!iana_svc_name("8080").is_empty());
        assert!(!iana_svc_name("a--b").is_empty());
        assert!(!iana_svc_name("-http").is_empty());
        assert!(!iana_svc_name("HTTP").is_empty());
        assert!(!iana_svc_name("averyveryverylongname").is_empty());
        assert!(env_var_name("PATH").is_empty());
        assert!(env_var_name("my.var-1 x").is_empty());
        assert!(!env_var_name("A=B").is_empty());
        assert!(!env_var_name("tab\there").is_empty());
        assert!(!env_var_name("é").is_empty());
    }
}
