//! Facts about pod specs every crate decides the same way.

use k8s_openapi::api::core::v1::Container;

/// A sidecar: an init container with `restartPolicy: Always` (upstream
/// `IsRestartableInitContainer`); it starts in init order and then runs beside the
/// regular containers.
pub fn is_sidecar(c: &Container) -> bool {
    c.restart_policy.as_deref() == Some("Always")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_restart_policy_always_makes_a_sidecar() {
        let with = |policy: Option<&str>| Container {
            name: "c".into(),
            restart_policy: policy.map(str::to_string),
            ..Default::default()
        };
        assert!(is_sidecar(&with(Some("Always"))));
        assert!(!is_sidecar(&with(None)));
        assert!(!is_sidecar(&with(Some("OnFailure"))));
    }
}
