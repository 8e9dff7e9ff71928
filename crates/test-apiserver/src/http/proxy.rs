//! pods/log, pods/exec, pods/attach, pods/portforward and nodes/proxy. Upstream proxies
//! them to the kubelet at the node's InternalIP and daemonEndpoints.kubeletEndpoint port.
//! Not implemented yet: answers 503 with a Status naming what would be contacted.

use hyper::Request;
use hyper::body::Incoming;

use super::Response;
use super::respond;
use super::route::ResourcePath;
use crate::error::ApiError;
use crate::meta;
use crate::state::Cluster;
use crate::store::ObjKey;

/// Serves a proxy subresource (currently a 503 stub).
pub async fn handle(cl: &Cluster, rp: &ResourcePath, _req: Request<Incoming>) -> Response {
    let ns = rp.namespace.as_deref().unwrap_or("");
    let name = rp.name.as_deref().unwrap_or("");
    let node_name = if rp.def.kind == "Pod" {
        match cl.store.get(&ObjKey::new("pods", ns, name)) {
            Some(p) => meta::path_string(&p, "spec.nodeName"),
            None => return respond::error(&crate::ops::not_found(rp.def, name)),
        }
    } else {
        name.to_string()
    };
    let target = cl
        .store
        .get(&ObjKey::new("nodes", "", &node_name))
        .map(|n| {
            let ip = meta::path(&n, "status.addresses")
                .and_then(|a| a.as_array())
                .and_then(|a| a.iter().find(|x| meta::path_string(x, "type") == "InternalIP"))
                .map(|x| meta::path_string(x, "address"))
                .unwrap_or_default();
            let port = meta::path_string(&n, "status.daemonEndpoints.kubeletEndpoint.Port");
            format!("https://{ip}:{port}")
        })
        .unwrap_or_else(|| "<no node>".into());
    respond::error(&ApiError::ServiceUnavailable(format!(
        "the test API server does not proxy {} to kubelets yet (would contact node {node_name:?} at {target})",
        rp.sub.as_deref().unwrap_or("")
    )))
}
