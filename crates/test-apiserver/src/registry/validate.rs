//! Name validation shared by the resources, with upstream's messages.

use crate::error::Cause;

const SUBDOMAIN_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
const LABEL_MSG: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
const DNS1035_MSG: &str = "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')";

fn is_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// RFC 1123 subdomain.
pub fn is_subdomain(s: &str) -> bool {
    !s.is_empty() && s.len() <= 253 && s.split('.').all(is_label)
}

/// Which naming rule a resource uses.
#[derive(Debug, Clone, Copy)]
pub enum NameRule {
    /// RFC 1123 subdomain (most resources).
    Subdomain,
    /// RFC 1123 label (namespaces).
    Label,
    /// RFC 1035 label (services).
    Dns1035,
    /// Path segment only (events, leases allow anything without '/').
    PathSegment,
}

/// Validates `metadata.name` (or `metadata.namespace` with field "metadata.namespace").
pub fn check_name(rule: NameRule, name: &str, field: &str) -> Option<Cause> {
    if name.is_empty() {
        return Some(Cause::new(
            "FieldValueRequired",
            field,
            "Required value: name or generateName is required",
        ));
    }
    let bad_segment = name == "." || name == ".." || name.contains('/') || name.contains('%');
    let (ok, msg) = match rule {
        NameRule::Subdomain => (is_subdomain(name), SUBDOMAIN_MSG),
        NameRule::Label => (is_label(name), LABEL_MSG),
        NameRule::Dns1035 => (
            is_label(name) && name.starts_with(|c: char| c.is_ascii_lowercase()),
            DNS1035_MSG,
        ),
        NameRule::PathSegment => (
            !bad_segment,
            "may not contain '/' or '%' and may not be '.' or '..'",
        ),
    };
    if ok && !bad_segment {
        None
    } else {
        Some(Cause::new(
            "FieldValueInvalid",
            field,
            format!("Invalid value: \"{name}\": {msg}"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules() {
        assert!(check_name(NameRule::Subdomain, "a.b-c", "metadata.name").is_none());
        assert!(check_name(NameRule::Subdomain, "A", "metadata.name").is_some());
        assert!(check_name(NameRule::Label, "a.b", "metadata.name").is_some());
        assert!(check_name(NameRule::Dns1035, "1abc", "metadata.name").is_some());
        assert!(check_name(NameRule::PathSegment, "Any:Thing", "metadata.name").is_none());
        assert!(check_name(NameRule::PathSegment, "a/b", "metadata.name").is_some());
        assert!(check_name(NameRule::Subdomain, "", "metadata.name").is_some());
    }
}
