//! What the container runtime says it supports, as the Node reports it (upstream's
//! RuntimeHandlers and NodeFeatures setters): `status.runtimeHandlers` lists the
//! handlers the CRI Status call names, each with its recursiveReadOnlyMounts and
//! userNamespaces support; `status.features.supplementalGroupsPolicy` comes from the
//! runtime's features. A runtime that reports neither (containerd before 2.0) leaves both
//! fields out, as upstream does.

use k8s_cri::v1 as cri;
use k8s_openapi::api::core::v1::{NodeFeatures, NodeRuntimeHandler, NodeRuntimeHandlerFeatures};

/// The runtime's handlers and features from its Status answer.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RuntimeFeatures {
    pub handlers: Vec<NodeRuntimeHandler>,
    pub features: Option<NodeFeatures>,
}

pub fn from_status(status: &cri::StatusResponse) -> RuntimeFeatures {
    let handlers = status
        .runtime_handlers
        .iter()
        .map(|h| {
            let f = h.features.unwrap_or_default();
            NodeRuntimeHandler {
                name: Some(h.name.clone()),
                features: Some(NodeRuntimeHandlerFeatures {
                    recursive_read_only_mounts: Some(f.recursive_read_only_mounts),
                    user_namespaces: Some(f.user_namespaces),
                }),
            }
        })
        .collect();
    let features = status.features.as_ref().map(|f| NodeFeatures {
        supplemental_groups_policy: Some(f.supplemental_groups_policy),
    });
    RuntimeFeatures { handlers, features }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handlers_and_features_are_mapped() {
        let status = cri::StatusResponse {
            runtime_handlers: vec![
                cri::RuntimeHandler {
                    name: String::new(),
                    features: Some(cri::RuntimeHandlerFeatures {
                        recursive_read_only_mounts: true,
                        user_namespaces: false,
                    }),
                },
                cri::RuntimeHandler {
                    name: "runc".into(),
                    features: None,
                },
            ],
            features: Some(cri::RuntimeFeatures {
                supplemental_groups_policy: true,
            }),
            ..Default::default()
        };
        let r = from_status(&status);
        assert_eq!(r.handlers.len(), 2);
        assert_eq!(r.handlers[0].name.as_deref(), Some(""));
        let f = r.handlers[0].features.clone().unwrap();
        assert_eq!(
            (f.recursive_read_only_mounts, f.user_namespaces),
            (Some(true), Some(false))
        );
        assert_eq!(
            r.handlers[1]
                .features
                .clone()
                .unwrap()
                .recursive_read_only_mounts,
            Some(false)
        );
        assert_eq!(r.features.unwrap().supplemental_groups_policy, Some(true));
    }

    #[test]
    fn a_runtime_reporting_nothing_gives_nothing() {
        let r = from_status(&cri::StatusResponse::default());
        assert!(r.handlers.is_empty());
        assert!(r.features.is_none());
    }
}
