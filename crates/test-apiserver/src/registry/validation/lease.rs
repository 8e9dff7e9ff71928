//! Lease rules (upstream coordination `ValidateLeaseSpec`); the name is an RFC 1123
//! subdomain (checked with the other names).

use serde_json::Value;

use super::{Bad, Errors};

/// The spec checks of create and update.
pub fn validate(lease: &Value) -> Errors {
    let mut out = Errors::new();
    let spec = lease.get("spec").cloned().unwrap_or(Value::Null);
    if let Some(d) = spec.get("leaseDurationSeconds").filter(|v| !v.is_null())
        && d.as_i64().is_some_and(|d| d <= 0)
    {
        out.invalid(
            "spec.leaseDurationSeconds",
            Bad::from(d),
            "must be greater than 0",
        );
    }
    if let Some(t) = spec.get("leaseTransitions").filter(|v| !v.is_null())
        && t.as_i64().is_some_and(|t| t < 0)
    {
        out.invalid(
            "spec.leaseTransitions",
            Bad::from(t),
            "must be greater than or equal to 0",
        );
    }
    if let Some(strategy) = spec.get("strategy").and_then(Value::as_str) {
        const STRATEGIES: &[&str] = &["OldestEmulationVersion"];
        if !strategy.contains('/') {
            if !STRATEGIES.contains(&strategy) {
                out.not_supported("spec.strategy", strategy, STRATEGIES);
            }
        } else {
            for m in super::content::qualified_name(strategy) {
                out.invalid("spec.strategy", strategy, &m);
            }
        }
    }
    let preferred = spec
        .get("preferredHolder")
        .and_then(Value::as_str)
        .unwrap_or("");
    let strategy = spec.get("strategy").and_then(Value::as_str).unwrap_or("");
    if !preferred.is_empty() && strategy.is_empty() {
        out.forbidden(
            "spec.preferredHolder",
            "may only be specified if `strategy` is defined",
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn lease_table() {
        let cases: Vec<(Value, &str, &str)> = vec![
            (
                json!({"spec": {"holderIdentity": "vm", "leaseDurationSeconds": 0}}),
                "spec.leaseDurationSeconds",
                "Invalid value: 0: must be greater than 0",
            ),
            (
                json!({"spec": {"leaseTransitions": -1}}),
                "spec.leaseTransitions",
                "Invalid value: -1: must be greater than or equal to 0",
            ),
            (
                json!({"spec": {"preferredHolder": "vm"}}),
                "spec.preferredHolder",
                "Forbidden: may only be specified if `strategy` is defined",
            ),
        ];
        for (lease, field, msg) in cases {
            let errs = validate(&lease).into_causes();
            assert_eq!(errs.len(), 1, "{lease}: {errs:?}");
            assert_eq!(errs[0].field, field);
            assert_eq!(errs[0].message, msg);
        }
        let kubelet = json!({"spec": {"holderIdentity": "vm", "leaseDurationSeconds": 40, "renewTime": "2026-01-01T00:00:00.000000Z"}});
        assert!(validate(&kubelet).is_empty());
    }
}
