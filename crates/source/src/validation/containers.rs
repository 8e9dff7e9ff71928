//! `spec.containers` and `spec.initContainers`: names, images, ports, env, mounts,
//! probes, lifecycle hooks, resources.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::{
    Container, ContainerPort, EnvVar, HTTPGetAction, LifecycleHandler, PodSpec, Probe,
    ResourceRequirements, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::field::{FieldError, Path};
use super::names;
use super::volumes::has_backsteps;

const PULL_POLICIES: &[&str] = &["Always", "IfNotPresent", "Never"];
const TERMINATION_MESSAGE_POLICIES: &[&str] = &["File", "FallbackToLogsOnError"];
const PROTOCOLS: &[&str] = &["SCTP", "TCP", "UDP"];
const MOUNT_PROPAGATIONS: &[&str] = &["None", "HostToContainer", "Bidirectional"];
const HTTP_SCHEMES: &[&str] = &["HTTP", "HTTPS"];
const CONTAINER_RESTART_POLICIES: &[&str] = &["Always"];

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Regular,
    Init,
    /// An init container with `restartPolicy: Always`.
    Sidecar,
}

/// Everything a container check needs to know about the pod.
struct Ctx<'a> {
    volumes: &'a BTreeSet<String>,
    host_network: bool,
    /// `spec.hostUsers` (unset means true: the pod shares the host's user namespace).
    host_users: bool,
}

/// Validates every container list of the spec.
pub fn validate_all(
    spec: &PodSpec,
    spec_path: &Path,
    volumes: &BTreeSet<String>,
) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let ctx = Ctx {
        volumes,
        host_network: spec.host_network.unwrap_or(false),
        host_users: spec.host_users.unwrap_or(true),
    };
    let containers_path = spec_path.child("containers");
    if spec.containers.is_empty() {
        errs.push(FieldError::required(&containers_path, ""));
    }
    let mut all_names = BTreeSet::new();
    let mut host_ports = BTreeSet::new();
    for (i, c) in spec.containers.iter().enumerate() {
        let p = containers_path.index(i);
        errs.extend(validate_container(c, &p, Kind::Regular, &ctx));
        check_unique_name(c, &p, &mut all_names, &mut errs);
        accumulate_host_ports(c, &p, &mut host_ports, &mut errs);
    }
    let init_path = spec_path.child("initContainers");
    for (i, c) in spec.init_containers.iter().flatten().enumerate() {
        let p = init_path.index(i);
        let kind = if kubelet_primitives::pod::is_sidecar(c) {
            Kind::Sidecar
        } else {
            Kind::Init
        };
        errs.extend(validate_container(c, &p, kind, &ctx));
        check_unique_name(c, &p, &mut all_names, &mut errs);
        accumulate_host_ports(c, &p, &mut host_ports, &mut errs);
    }
    if spec
        .ephemeral_containers
        .as_ref()
        .is_some_and(|e| !e.is_empty())
    {
        errs.push(FieldError::forbidden(
            &spec_path.child("ephemeralContainers"),
            "cannot be set on create",
        ));
    }
    errs
}

fn check_unique_name(
    c: &Container,
    path: &Path,
    seen: &mut BTreeSet<String>,
    errs: &mut Vec<FieldError>,
) {
    if !c.name.is_empty() && !seen.insert(c.name.clone()) {
        errs.push(FieldError::duplicate(&path.child("name"), &c.name));
    }
}

/// Two containers may not claim the same host port/protocol/IP.
fn accumulate_host_ports(
    c: &Container,
    path: &Path,
    seen: &mut BTreeSet<String>,
    errs: &mut Vec<FieldError>,
) {
    for (j, port) in c.ports.iter().flatten().enumerate() {
        let host_port = port.host_port.unwrap_or(0);
        if host_port == 0 {
            continue;
        }
        let key = format!(
            "{}/{}/{}",
            port.protocol.as_deref().unwrap_or_default(),
            port.host_ip.as_deref().unwrap_or_default(),
            host_port
        );
        if !seen.insert(key.clone()) {
            errs.push(FieldError::duplicate(
                &path.child("ports").index(j).child("hostPort"),
                key,
            ));
        }
    }
}

fn validate_container(c: &Container, path: &Path, kind: Kind, ctx: &Ctx<'_>) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let name_path = path.child("name");
    if c.name.is_empty() {
        errs.push(FieldError::required(&name_path, ""));
    } else {
        for msg in names::dns1123_label(&c.name) {
            errs.push(FieldError::invalid(&name_path, &c.name, &msg));
        }
    }
    let image_path = path.child("image");
    match c.image.as_deref() {
        None | Some("") => errs.push(FieldError::required(&image_path, "")),
        Some(image) if image.trim() != image => errs.push(FieldError::invalid(
            &image_path,
            image,
            "must not have leading or trailing whitespace",
        )),
        Some(_) => {}
    }
    check_enum(
        c.image_pull_policy.as_deref(),
        PULL_POLICIES,
        &path.child("imagePullPolicy"),
        &mut errs,
    );
    check_enum(
        c.termination_message_policy.as_deref(),
        TERMINATION_MESSAGE_POLICIES,
        &path.child("terminationMessagePolicy"),
        &mut errs,
    );
    check_restart_policy(c, path, kind, &mut errs);
    errs.extend(validate_ports(
        c.ports.as_deref().unwrap_or_default(),
        &path.child("ports"),
        ctx.host_network,
    ));
    errs.extend(validate_env(
        c.env.as_deref().unwrap_or_default(),
        &path.child("env"),
    ));
    errs.extend(validate_mounts(
        c.volume_mounts.as_deref().unwrap_or_default(),
        &path.child("volumeMounts"),
        ctx.volumes,
    ));
    errs.extend(validate_probes(c, path, kind));
    errs.extend(validate_lifecycle(c, path, kind));
    if let Some(r) = &c.resources {
        errs.extend(validate_resources(r, &path.child("resources")));
    }
    check_proc_mount(c, path, ctx, &mut errs);
    errs
}

const PROC_MOUNT_TYPES: &[&str] = &["Default", "Unmasked"];

/// `securityContext.procMount`: Default or Unmasked, and Unmasked only in a pod with its
/// own user namespace (`hostUsers: false`), as upstream validation.
fn check_proc_mount(c: &Container, path: &Path, ctx: &Ctx<'_>, errs: &mut Vec<FieldError>) {
    let Some(proc_mount) = c
        .security_context
        .as_ref()
        .and_then(|sc| sc.proc_mount.as_deref())
    else {
        return;
    };
    let p = path.child("securityContext").child("procMount");
    if !PROC_MOUNT_TYPES.contains(&proc_mount) {
        errs.push(FieldError::not_supported(&p, proc_mount, PROC_MOUNT_TYPES));
    } else if ctx.host_users && proc_mount == "Unmasked" {
        errs.push(FieldError::invalid(
            &p,
            proc_mount,
            "`hostUsers` must be false to use `Unmasked`",
        ));
    }
}

/// A required enum field: empty is `Required`, an unknown value is `Unsupported`.
fn check_enum(value: Option<&str>, allowed: &[&str], path: &Path, errs: &mut Vec<FieldError>) {
    match value {
        None | Some("") => errs.push(FieldError::required(path, "")),
        Some(v) if !allowed.contains(&v) => {
            errs.push(FieldError::not_supported(path, v, allowed));
        }
        Some(_) => {}
    }
}

fn check_restart_policy(c: &Container, path: &Path, kind: Kind, errs: &mut Vec<FieldError>) {
    let Some(policy) = c.restart_policy.as_deref() else {
        return;
    };
    let p = path.child("restartPolicy");
    match kind {
        Kind::Regular => errs.push(FieldError::forbidden(
            &p,
            "may not be set for non-init containers",
        )),
        Kind::Init | Kind::Sidecar => {
            if !CONTAINER_RESTART_POLICIES.contains(&policy) {
                errs.push(FieldError::not_supported(
                    &p,
                    policy,
                    CONTAINER_RESTART_POLICIES,
                ));
            }
        }
    }
}

fn check_port_number(port: i32, path: &Path, errs: &mut Vec<FieldError>) {
    if !(1..=65535).contains(&port) {
        errs.push(FieldError::invalid(
            path,
            port,
            "must be between 1 and 65535, inclusive",
        ));
    }
}

fn validate_ports(ports: &[ContainerPort], path: &Path, host_network: bool) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let mut port_names = BTreeSet::new();
    for (i, port) in ports.iter().enumerate() {
        let idx = path.index(i);
        if let Some(name) = port.name.as_deref().filter(|n| !n.is_empty()) {
            let name_path = idx.child("name");
            for msg in names::iana_svc_name(name) {
                errs.push(FieldError::invalid(&name_path, name, &msg));
            }
            if !port_names.insert(name.to_string()) {
                errs.push(FieldError::duplicate(&name_path, name));
            }
        }
        let cp = idx.child("containerPort");
        if port.container_port == 0 {
            errs.push(FieldError::required(&cp, ""));
        } else {
            check_port_number(port.container_port, &cp, &mut errs);
        }
        let host_port = port.host_port.unwrap_or(0);
        if host_port != 0 {
            check_port_number(host_port, &idx.child("hostPort"), &mut errs);
            if host_network && host_port != port.container_port {
                errs.push(FieldError::invalid(
                    &idx.child("hostPort"),
                    host_port,
                    "must match `containerPort` when `hostNetwork` is true",
                ));
            }
        }
        check_enum(
            port.protocol.as_deref(),
            PROTOCOLS,
            &idx.child("protocol"),
            &mut errs,
        );
    }
    errs
}

fn validate_env(env: &[EnvVar], path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    for (i, ev) in env.iter().enumerate() {
        let idx = path.index(i);
        let name_path = idx.child("name");
        if ev.name.is_empty() {
            errs.push(FieldError::required(&name_path, ""));
        } else {
            for msg in names::env_var_name(&ev.name) {
                errs.push(FieldError::invalid(&name_path, &ev.name, &msg));
            }
        }
        let Some(from) = &ev.value_from else {
            continue;
        };
        let from_path = idx.child("valueFrom");
        let sources = [
            from.field_ref.is_some(),
            from.resource_field_ref.is_some(),
            from.config_map_key_ref.is_some(),
            from.secret_key_ref.is_some(),
            from.file_key_ref.is_some(),
        ]
        .into_iter()
        .filter(|set| *set)
        .count();
        if sources != 1 {
            errs.push(FieldError::invalid(
                &from_path,
                "",
                "must specify exactly one of: `fieldRef`, `resourceFieldRef`, \
                 `configMapKeyRef`, `secretKeyRef` or `fileKeyRef`",
            ));
        }
        if ev.value.as_deref().is_some_and(|v| !v.is_empty()) {
            errs.push(FieldError::invalid(
                &from_path,
                "",
                "may not be specified when `value` is not empty",
            ));
        }
        if let Some(fr) = &from.field_ref
            && fr.field_path.is_empty()
        {
            errs.push(FieldError::required(
                &from_path.child("fieldRef").child("fieldPath"),
                "",
            ));
        }
    }
    errs
}

fn validate_mounts(
    mounts: &[VolumeMount],
    path: &Path,
    volumes: &BTreeSet<String>,
) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let mut mount_points = BTreeSet::new();
    for (i, m) in mounts.iter().enumerate() {
        let idx = path.index(i);
        let name_path = idx.child("name");
        if m.name.is_empty() {
            errs.push(FieldError::required(&name_path, ""));
        } else if !volumes.contains(&m.name) {
            errs.push(FieldError::not_found(&name_path, &m.name));
        }
        let mp = idx.child("mountPath");
        if m.mount_path.is_empty() {
            errs.push(FieldError::required(&mp, ""));
        } else if !mount_points.insert(m.mount_path.clone()) {
            errs.push(FieldError::invalid(&mp, &m.mount_path, "must be unique"));
        }
        if let Some(sub) = m.sub_path.as_deref().filter(|s| !s.is_empty()) {
            let sp = idx.child("subPath");
            if sub.starts_with('/') {
                errs.push(FieldError::invalid(&sp, sub, "must be a relative path"));
            }
            if has_backsteps(sub) {
                errs.push(FieldError::invalid(&sp, sub, "must not contain '..'"));
            }
        }
        if m.sub_path.as_deref().is_some_and(|s| !s.is_empty())
            && m.sub_path_expr.as_deref().is_some_and(|s| !s.is_empty())
        {
            errs.push(FieldError::invalid(
                &idx.child("subPathExpr"),
                m.sub_path_expr.as_deref().unwrap_or_default(),
                "`subPathExpr` and `subPath` are mutually exclusive",
            ));
        }
        if let Some(prop) = m.mount_propagation.as_deref()
            && !MOUNT_PROPAGATIONS.contains(&prop)
        {
            errs.push(FieldError::not_supported(
                &idx.child("mountPropagation"),
                prop,
                MOUNT_PROPAGATIONS,
            ));
        }
    }
    errs
}

fn validate_probes(c: &Container, path: &Path, kind: Kind) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let probes = [
        ("livenessProbe", c.liveness_probe.as_ref(), true),
        ("readinessProbe", c.readiness_probe.as_ref(), false),
        ("startupProbe", c.startup_probe.as_ref(), true),
    ];
    for (field, probe, success_must_be_one) in probes {
        let Some(probe) = probe else { continue };
        let p = path.child(field);
        if kind == Kind::Init {
            errs.push(FieldError::forbidden(
                &p,
                "may not be set for init containers without restartPolicy=Always",
            ));
            continue;
        }
        errs.extend(validate_probe(probe, &p, success_must_be_one));
    }
    errs
}

fn validate_probe(probe: &Probe, path: &Path, success_must_be_one: bool) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let handlers: Vec<&str> = [
        ("exec", probe.exec.is_some()),
        ("httpGet", probe.http_get.is_some()),
        ("tcpSocket", probe.tcp_socket.is_some()),
        ("grpc", probe.grpc.is_some()),
    ]
    .into_iter()
    .filter_map(|(n, set)| set.then_some(n))
    .collect();
    check_handler_count(&handlers, path, &mut errs);
    if let Some(h) = &probe.http_get {
        errs.extend(validate_http_get(h, &path.child("httpGet")));
    }
    if let Some(t) = &probe.tcp_socket {
        check_named_port(&t.port, &path.child("tcpSocket").child("port"), &mut errs);
    }
    if let Some(g) = &probe.grpc {
        check_port_number(g.port, &path.child("grpc").child("port"), &mut errs);
    }
    let numbers = [
        ("initialDelaySeconds", probe.initial_delay_seconds),
        ("timeoutSeconds", probe.timeout_seconds),
        ("periodSeconds", probe.period_seconds),
        ("successThreshold", probe.success_threshold),
        ("failureThreshold", probe.failure_threshold),
    ];
    for (field, value) in numbers {
        if let Some(v) = value
            && v < 0
        {
            errs.push(FieldError::invalid(
                &path.child(field),
                v,
                "must be greater than or equal to 0",
            ));
        }
    }
    if success_must_be_one
        && let Some(s) = probe.success_threshold
        && s != 1
    {
        errs.push(FieldError::invalid(
            &path.child("successThreshold"),
            s,
            "must be 1",
        ));
    }
    if let Some(g) = probe.termination_grace_period_seconds
        && g <= 0
    {
        errs.push(FieldError::invalid(
            &path.child("terminationGracePeriodSeconds"),
            g,
            "must be greater than 0",
        ));
    }
    errs
}

fn check_handler_count(handlers: &[&str], path: &Path, errs: &mut Vec<FieldError>) {
    match handlers {
        [] => errs.push(FieldError::required(path, "must specify a handler type")),
        [_] => {}
        [_, rest @ ..] => {
            for extra in rest {
                errs.push(FieldError::forbidden(
                    &path.child(extra),
                    "may not specify more than 1 handler type",
                ));
            }
        }
    }
}

fn validate_http_get(h: &HTTPGetAction, path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    check_named_port(&h.port, &path.child("port"), &mut errs);
    if let Some(scheme) = h.scheme.as_deref()
        && !HTTP_SCHEMES.contains(&scheme)
    {
        errs.push(FieldError::not_supported(
            &path.child("scheme"),
            scheme,
            HTTP_SCHEMES,
        ));
    }
    errs
}

/// A port given as a number (1-65535) or as an IANA service name.
fn check_named_port(port: &IntOrString, path: &Path, errs: &mut Vec<FieldError>) {
    match port {
        IntOrString::Int(n) => check_port_number(*n, path, errs),
        IntOrString::String(s) => {
            for msg in names::iana_svc_name(s) {
                errs.push(FieldError::invalid(path, s, &msg));
            }
        }
    }
}

fn validate_lifecycle(c: &Container, path: &Path, kind: Kind) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let Some(lc) = &c.lifecycle else {
        return errs;
    };
    let p = path.child("lifecycle");
    if kind == Kind::Init {
        errs.push(FieldError::forbidden(
            &p,
            "may not be set for init containers without restartPolicy=Always",
        ));
        return errs;
    }
    for (field, handler) in [("postStart", &lc.post_start), ("preStop", &lc.pre_stop)] {
        if let Some(h) = handler {
            errs.extend(validate_lifecycle_handler(h, &p.child(field)));
        }
    }
    errs
}

fn validate_lifecycle_handler(h: &LifecycleHandler, path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let handlers: Vec<&str> = [
        ("exec", h.exec.is_some()),
        ("httpGet", h.http_get.is_some()),
        ("tcpSocket", h.tcp_socket.is_some()),
        ("sleep", h.sleep.is_some()),
    ]
    .into_iter()
    .filter_map(|(n, set)| set.then_some(n))
    .collect();
    check_handler_count(&handlers, path, &mut errs);
    if let Some(g) = &h.http_get {
        errs.extend(validate_http_get(g, &path.child("httpGet")));
    }
    if let Some(t) = &h.tcp_socket {
        check_named_port(&t.port, &path.child("tcpSocket").child("port"), &mut errs);
    }
    errs
}

/// Quantities must parse and be non-negative; a request may not exceed its limit.
pub fn validate_resources(r: &ResourceRequirements, path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let empty = BTreeMap::new();
    let limits = r.limits.as_ref().unwrap_or(&empty);
    let requests = r.requests.as_ref().unwrap_or(&empty);
    let limit_values = check_quantities(limits, &path.child("limits"), &mut errs);
    let request_values = check_quantities(requests, &path.child("requests"), &mut errs);
    for (name, req) in &request_values {
        if let Some(lim) = limit_values.get(name)
            && req > lim
        {
            errs.push(FieldError::invalid(
                &path.child("requests").key(name),
                &requests[name].0,
                &format!(
                    "must be less than or equal to {name} limit of {}",
                    limits[name].0
                ),
            ));
        }
    }
    errs
}

fn check_quantities(
    list: &BTreeMap<String, Quantity>,
    path: &Path,
    errs: &mut Vec<FieldError>,
) -> BTreeMap<String, kubelet_primitives::Quantity> {
    let mut values = BTreeMap::new();
    for (name, q) in list {
        if let Some(v) = check_quantity(&q.0, &path.key(name), errs) {
            values.insert(name.clone(), v);
        }
    }
    values
}

/// A quantity of the manifest with the exact parser every later user has
/// ([`kubelet_primitives::Quantity`]); an invalid or negative one is an error on `path`,
/// so nothing downstream meets a value it cannot read.
pub(super) fn check_quantity(
    text: &str,
    path: &Path,
    errs: &mut Vec<FieldError>,
) -> Option<kubelet_primitives::Quantity> {
    match kubelet_primitives::Quantity::parse(text) {
        Err(e) => {
            errs.push(FieldError::invalid(path, text, e.reason()));
            None
        }
        Ok(v) if v.is_negative() => {
            errs.push(FieldError::invalid(
                path,
                text,
                "must be greater than or equal to 0",
            ));
            None
        }
        Ok(v) => Some(v),
    }
}
