//! Writes the API server refuses as Invalid (422): a Node it will not register, a status
//! patch it will not take. Retrying such a write changes nothing until the kubelet or the
//! server changes, so each distinct refusal is logged once at ERROR with its fields and
//! messages (not at WARN on every retry), stays visible in `/healthz` (check
//! `apiserver-writes`) until the same write is accepted, and is counted in
//! `kubelet_api_server_invalid_writes_total{operation}`.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use kubelet_server::{RejectedWrite, RejectedWrites};

use crate::error::ClusterError;

#[derive(Debug, Default)]
struct State {
    /// (operation, object) -> the refusal standing now.
    standing: BTreeMap<(String, String), RejectedWrite>,
    /// operation -> refusals since start.
    totals: BTreeMap<String, u64>,
}

/// Shared by every loop that writes to the API server.
#[derive(Debug, Clone, Default)]
pub struct Rejections(Arc<Mutex<State>>);

/// `field: message` of each cause of an Invalid Status, else its message.
pub fn invalid_details(err: &ClusterError) -> Option<String> {
    let ClusterError::Client(kube::Error::Api(status)) = err else {
        return None;
    };
    if status.code != 422 {
        return None;
    }
    let causes: Vec<String> = status
        .details
        .iter()
        .flat_map(|d| d.causes.iter())
        .map(|c| {
            if c.field.is_empty() {
                c.message.clone()
            } else {
                format!("{}: {}", c.field, c.message)
            }
        })
        .collect();
    Some(if causes.is_empty() {
        status.message.clone()
    } else {
        causes.join("; ")
    })
}

impl Rejections {
    /// Note the outcome of a failed write of `object` by `operation` ("register node",
    /// "update node status", "update pod status"). Returns whether it was an Invalid
    /// refusal (which this logged, once per distinct refusal); other errors are the
    /// caller's to report.
    pub fn record(&self, operation: &str, object: &str, err: &ClusterError) -> bool {
        let Some(details) = invalid_details(err) else {
            return false;
        };
        let mut st = kubelet_core::supervisor::lock(&self.0, "rejected writes");
        *st.totals.entry(operation.to_string()).or_default() += 1;
        let key = (operation.to_string(), object.to_string());
        let same = st.standing.get(&key).is_some_and(|r| r.message == details);
        if same {
            if let Some(r) = st.standing.get_mut(&key) {
                r.count += 1;
            }
        } else {
            tracing::error!(
                operation,
                object,
                invalid = %details,
                "the API server refused the write as invalid; retrying will not help until the kubelet or the server changes (see /healthz)"
            );
            st.standing.insert(
                key,
                RejectedWrite {
                    operation: operation.to_string(),
                    object: object.to_string(),
                    message: details,
                    count: 1,
                },
            );
        }
        true
    }

    /// The write of `object` by `operation` went through (or the object is gone): its
    /// refusal, if any, is over.
    pub fn accepted(&self, operation: &str, object: &str) {
        let mut st = kubelet_core::supervisor::lock(&self.0, "rejected writes");
        if st.standing.is_empty() {
            return;
        }
        if let Some(r) = st
            .standing
            .remove(&(operation.to_string(), object.to_string()))
        {
            tracing::info!(
                operation,
                object,
                refused = r.count,
                "the API server accepts the write again"
            );
        }
    }
}

impl RejectedWrites for Rejections {
    fn standing(&self) -> Vec<RejectedWrite> {
        kubelet_core::supervisor::lock(&self.0, "rejected writes")
            .standing
            .values()
            .cloned()
            .collect()
    }

    fn totals(&self) -> Vec<(String, u64)> {
        kubelet_core::supervisor::lock(&self.0, "rejected writes")
            .totals
            .iter()
            .map(|(k, v)| (k.clone(), *v))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn invalid(msg: &str) -> ClusterError {
        let status: kube::core::Status = serde_json::from_value(serde_json::json!({
            "status": "Failure", "code": 422, "reason": "Invalid",
            "message": format!("Node \"vm\" is invalid: {msg}"),
            "details": {"name": "vm", "kind": "Node", "causes": [
                {"reason": "FieldValueInvalid", "field": "metadata.nodeSwapStatus.capacity", "message": msg}]}
        }))
        .unwrap();
        ClusterError::Client(kube::Error::Api(Box::new(status)))
    }

    #[test]
    fn invalid_refusals_stand_until_accepted() {
        let r = Rejections::default();
        let unavailable = ClusterError::Api("connection refused".into());
        assert!(!r.record("register node", "vm", &unavailable));
        let e = invalid("Invalid value: 0: must be greater than zero");
        assert!(r.record("register node", "vm", &e));
        assert!(r.record("register node", "vm", &e));
        let standing = r.standing();
        assert_eq!(standing.len(), 1);
        assert_eq!(standing[0].count, 2);
        assert_eq!(
            standing[0].message,
            "metadata.nodeSwapStatus.capacity: Invalid value: 0: must be greater than zero"
        );
        assert!(r.record("update pod status", "default/p", &e));
        assert_eq!(r.standing().len(), 2, "one per object");
        r.accepted("register node", "vm");
        r.accepted("update pod status", "default/p");
        assert!(r.standing().is_empty());
        assert_eq!(
            r.totals(),
            vec![
                ("register node".to_string(), 2),
                ("update pod status".to_string(), 1)
            ]
        );
    }
}
