//! The image-reference facts the pull-policy default needs.

/// The tag of an image reference, as upstream's `ParseImageName` reports it: the explicit
/// tag if any; `latest` when there is neither a tag nor a digest; `None` for a digest-only
/// reference.
pub fn image_tag(image: &str) -> Option<&str> {
    let (name, digest) = match image.split_once('@') {
        Some((name, digest)) => (name, Some(digest)),
        None => (image, None),
    };
    // A ':' before the last '/' belongs to a registry host:port, not to a tag.
    let last_component_start = name.rfind('/').map_or(0, |i| i + 1);
    let tag = name[last_component_start..]
        .split_once(':')
        .map(|(_, tag)| tag);
    match (tag, digest) {
        (Some(tag), _) => Some(tag),
        (None, None) => Some("latest"),
        (None, Some(_)) => None,
    }
}

/// `Always` for `:latest` (explicit or implied), `IfNotPresent` otherwise.
pub fn default_pull_policy(image: &str) -> &'static str {
    if image_tag(image) == Some("latest") {
        "Always"
    } else {
        "IfNotPresent"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_and_pull_policies() {
        let cases = [
            ("nginx", Some("latest"), "Always"),
            ("nginx:latest", Some("latest"), "Always"),
            ("nginx:1.25", Some("1.25"), "IfNotPresent"),
            (
                "registry.k8s.io/etcd:3.5.9-0",
                Some("3.5.9-0"),
                "IfNotPresent",
            ),
            ("localhost:5000/app", Some("latest"), "Always"),
            ("localhost:5000/app:v2", Some("v2"), "IfNotPresent"),
            ("nginx@sha256:abcd", None, "IfNotPresent"),
            ("nginx:latest@sha256:abcd", Some("latest"), "Always"),
            ("nginx:1.0@sha256:abcd", Some("1.0"), "IfNotPresent"),
        ];
        for (image, tag, policy) in cases {
            assert_eq!(image_tag(image), tag, "{image}");
            assert_eq!(default_pull_policy(image), policy, "{image}");
        }
    }
}
