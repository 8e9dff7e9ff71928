//! `/exec`, `/attach` and `/portForward`: find the pod and container, ask the runtime
//! for a streaming URL, and proxy the client's upgraded connection to it.

use axum::extract::{Path, Request, State};
use axum::response::Response;
use k8s_cri::v1 as cri;
use kubelet_core::runtime::model::{ContainerState, ObservedPod};

use super::query_pairs;
use crate::error::ApiError;
use crate::proxy::{is_upgrade, is_websocket, proxy};
use crate::state::Shared;

/// stdin/stdout/stderr/tty of an exec or attach (upstream remotecommand.NewOptions).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct StreamOptions {
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
    pub tty: bool,
    pub command: Vec<String>,
}

fn flag(pairs: &[(String, String)], name: &str) -> bool {
    pairs
        .iter()
        .find(|(k, _)| k == name)
        .is_some_and(|(_, v)| v == "1" || v.eq_ignore_ascii_case("true"))
}

/// The API server asks with `input`, `output`, `error`, `tty` set to "1" (what upstream's
/// kubelet reads); `stdin`, `stdout`, `stderr` (the names of the pod's exec options) are
/// accepted too for clients that call the kubelet directly.
pub fn stream_options(pairs: &[(String, String)]) -> Result<StreamOptions, ApiError> {
    let mut o = StreamOptions {
        stdin: flag(pairs, "input") || flag(pairs, "stdin"),
        stdout: flag(pairs, "output") || flag(pairs, "stdout"),
        stderr: flag(pairs, "error") || flag(pairs, "stderr"),
        tty: flag(pairs, "tty"),
        command: pairs
            .iter()
            .filter(|(k, _)| k == "command")
            .map(|(_, v)| v.clone())
            .collect(),
    };
    if o.tty && o.stderr {
        // As upstream: a TTY merges stderr into stdout.
        o.stderr = false;
    }
    if !o.stdin && !o.stdout && !o.stderr {
        return Err(ApiError::BadRequest(
            "you must specify at least 1 of stdin, stdout, stderr".into(),
        ));
    }
    Ok(o)
}

/// Ports of a port-forward (upstream portforward.NewV4Options): required for
/// WebSocket clients, who cannot name them per stream as SPDY clients do.
pub fn ports(pairs: &[(String, String)], websocket: bool) -> Result<Vec<i32>, ApiError> {
    let raw: Vec<&str> = pairs
        .iter()
        .filter(|(k, _)| k == "port")
        .flat_map(|(_, v)| v.split(','))
        .collect();
    if websocket && raw.is_empty() {
        return Err(ApiError::BadRequest(
            "query parameter \"port\" is required".into(),
        ));
    }
    raw.into_iter()
        .map(|p| {
            let port: u16 = p.parse().map_err(|e| {
                ApiError::BadRequest(format!("unable to parse {p:?} as a port: {e}"))
            })?;
            if port == 0 {
                return Err(ApiError::BadRequest(format!("port {p:?} must be > 0")));
            }
            Ok(i32::from(port))
        })
        .collect()
}

/// The pod by namespace/name (and UID, when the path carries one) as the runtime sees it.
fn find_pod(
    state: &Shared,
    namespace: &str,
    name: &str,
    uid: Option<&str>,
) -> Result<std::sync::Arc<ObservedPod>, ApiError> {
    let pod = state
        .pod_by_name(namespace, name)
        .ok_or_else(|| ApiError::NotFound("pod does not exist".into()))?;
    let pod_uid = pod.metadata.uid.clone().unwrap_or_default();
    if uid.is_some_and(|u| u != pod_uid) {
        return Err(ApiError::NotFound("pod not found".into()));
    }
    state
        .observed(&pod_uid)
        .ok_or_else(|| ApiError::NotFound(format!("pod {name:?} is not running")))
}

fn running_container(pod: &ObservedPod, name: &str) -> Result<String, ApiError> {
    pod.containers_named(name)
        .find(|c| c.state == ContainerState::Running)
        .map(|c| c.id.clone())
        .ok_or_else(|| ApiError::NotFound(format!("container not found ({name:?})")))
}

fn require_upgrade(req: &Request) -> Result<(), ApiError> {
    if is_upgrade(req) {
        Ok(())
    } else {
        Err(ApiError::BadRequest("Upgrade request required".into()))
    }
}

async fn exec_or_attach(
    state: Shared,
    ns: String,
    pod: String,
    uid: Option<String>,
    container: String,
    req: Request,
    exec: bool,
) -> Result<Response, ApiError> {
    let pairs = query_pairs(req.uri().query());
    let opts = stream_options(&pairs)?;
    if exec && opts.command.is_empty() {
        return Err(ApiError::BadRequest("you must specify a command".into()));
    }
    let observed = find_pod(&state, &ns, &pod, uid.as_deref())?;
    let id = running_container(&observed, &container)?;
    require_upgrade(&req)?;
    let cri = &state.deps.cri;
    let url = if exec {
        cri.exec(cri::ExecRequest {
            container_id: id,
            cmd: opts.command,
            tty: opts.tty,
            stdin: opts.stdin,
            stdout: opts.stdout,
            stderr: opts.stderr,
        })
        .await
    } else {
        cri.attach(cri::AttachRequest {
            container_id: id,
            stdin: opts.stdin,
            tty: opts.tty,
            stdout: opts.stdout,
            stderr: opts.stderr,
        })
        .await
    }
    .map_err(|e| ApiError::from_cri(&e))?;
    proxy(req, &url).await
}

pub async fn exec(
    State(s): State<Shared>,
    Path((ns, pod, c)): Path<(String, String, String)>,
    req: Request,
) -> Result<Response, ApiError> {
    exec_or_attach(s, ns, pod, None, c, req, true).await
}

pub async fn exec_uid(
    State(s): State<Shared>,
    Path((ns, pod, uid, c)): Path<(String, String, String, String)>,
    req: Request,
) -> Result<Response, ApiError> {
    exec_or_attach(s, ns, pod, Some(uid), c, req, true).await
}

pub async fn attach(
    State(s): State<Shared>,
    Path((ns, pod, c)): Path<(String, String, String)>,
    req: Request,
) -> Result<Response, ApiError> {
    exec_or_attach(s, ns, pod, None, c, req, false).await
}

pub async fn attach_uid(
    State(s): State<Shared>,
    Path((ns, pod, uid, c)): Path<(String, String, String, String)>,
    req: Request,
) -> Result<Response, ApiError> {
    exec_or_attach(s, ns, pod, Some(uid), c, req, false).await
}

async fn port_forward_inner(
    state: Shared,
    ns: String,
    pod: String,
    uid: Option<String>,
    req: Request,
) -> Result<Response, ApiError> {
    let ports = ports(&query_pairs(req.uri().query()), is_websocket(&req))?;
    let observed = find_pod(&state, &ns, &pod, uid.as_deref())?;
    let sandbox = observed
        .latest_sandbox()
        .filter(|s| s.ready)
        .ok_or_else(|| ApiError::NotFound(format!("pod {pod:?} has no running sandbox")))?;
    require_upgrade(&req)?;
    let url = state
        .deps
        .cri
        .port_forward(&sandbox.id, ports)
        .await
        .map_err(|e| ApiError::from_cri(&e))?;
    proxy(req, &url).await
}

pub async fn port_forward(
    State(s): State<Shared>,
    Path((ns, pod)): Path<(String, String)>,
    req: Request,
) -> Result<Response, ApiError> {
    port_forward_inner(s, ns, pod, None, req).await
}

pub async fn port_forward_uid(
    State(s): State<Shared>,
    Path((ns, pod, uid)): Path<(String, String, String)>,
    req: Request,
) -> Result<Response, ApiError> {
    port_forward_inner(s, ns, pod, Some(uid), req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(s: &str) -> Vec<(String, String)> {
        form_urlencoded::parse(s.as_bytes()).into_owned().collect()
    }

    #[test]
    fn stream_flags() {
        let o = stream_options(&q("command=ls&command=-l&stdout=1&stderr=true&tty=0")).unwrap();
        assert_eq!(o.command, vec!["ls", "-l"]);
        assert!(o.stdout && o.stderr && !o.stdin && !o.tty);
        let o = stream_options(&q("stdout=1&stderr=1&tty=1")).unwrap();
        assert!(!o.stderr, "tty drops stderr");
        // What kube-apiserver sends the kubelet for `kubectl exec -i` (upstream's names).
        let o = stream_options(&q("command=sh&input=1&output=1&error=1")).unwrap();
        assert!(o.stdin && o.stdout && o.stderr && !o.tty);
        assert_eq!(
            stream_options(&q("command=ls"))
                .unwrap_err()
                .status()
                .as_u16(),
            400
        );
    }

    #[test]
    fn port_list() {
        assert_eq!(
            ports(&q("port=80&port=8080"), true).unwrap(),
            vec![80, 8080]
        );
        assert_eq!(ports(&q("port=80,81"), true).unwrap(), vec![80, 81]);
        assert!(ports(&q(""), false).unwrap().is_empty());
        assert_eq!(ports(&q(""), true).unwrap_err().status().as_u16(), 400);
        assert_eq!(
            ports(&q("port=0"), true).unwrap_err().status().as_u16(),
            400
        );
        assert_eq!(
            ports(&q("port=70000"), true).unwrap_err().status().as_u16(),
            400
        );
    }
}
