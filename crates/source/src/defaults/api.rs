//! The API defaults upstream applies to a `v1` Pod when it is decoded
//! (`pkg/apis/core/v1/defaults.go` and the generated `SetObjectDefaults_Pod`).
//!
//! Not applied (see `docs/static-pods.md`): resource quantity canonicalisation (rounding
//! to milli-units), and pod-level resource defaulting (`spec.resources`).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Container, ContainerPort, EnvVar, HTTPGetAction, Lifecycle, PodSecurityContext, PodSpec, Probe,
    ResourceRequirements, Volume,
};

use super::image::default_pull_policy;
use crate::Pod;

const DEFAULT_TERMINATION_GRACE_PERIOD_SECONDS: i64 = 30;
const DEFAULT_SCHEDULER_NAME: &str = "default-scheduler";
const TERMINATION_MESSAGE_PATH: &str = "/dev/termination-log";
/// 0644, the default file mode of configMap, secret, downwardAPI and projected volumes.
const DEFAULT_VOLUME_MODE: i32 = 0o644;
const DEFAULT_TOKEN_EXPIRATION_SECONDS: i64 = 3600;

/// Fills the fields common to `Container` and `EphemeralContainer` (two distinct types
/// with the same field names).
macro_rules! default_container {
    ($c:expr) => {{
        let c = $c;
        if c.image_pull_policy
            .as_deref()
            .unwrap_or_default()
            .is_empty()
        {
            let image = c.image.as_deref().unwrap_or_default();
            c.image_pull_policy = Some(default_pull_policy(image).to_string());
        }
        set_if_empty(&mut c.termination_message_path, TERMINATION_MESSAGE_PATH);
        set_if_empty(&mut c.termination_message_policy, "File");
        default_ports(c.ports.as_mut());
        default_env(c.env.as_mut());
        for probe in [
            c.liveness_probe.as_mut(),
            c.readiness_probe.as_mut(),
            c.startup_probe.as_mut(),
        ]
        .into_iter()
        .flatten()
        {
            default_probe(probe);
        }
        if let Some(lc) = c.lifecycle.as_mut() {
            default_lifecycle(lc);
        }
    }};
}

/// Applies the upstream API defaults to `pod` in place.
pub fn apply_api_defaults(pod: &mut Pod) {
    let spec = pod.spec.get_or_insert_with(Default::default);
    default_requests_to_limits(spec.containers.iter_mut());
    default_requests_to_limits(spec.init_containers.iter_mut().flatten());
    if spec.enable_service_links.is_none() {
        spec.enable_service_links = Some(true);
    }
    if spec.host_network == Some(true) {
        let all = spec
            .containers
            .iter_mut()
            .chain(spec.init_containers.iter_mut().flatten());
        for port in all.flat_map(|c| c.ports.iter_mut().flatten()) {
            if port.host_port.unwrap_or(0) == 0 {
                port.host_port = Some(port.container_port);
            }
        }
    }
    default_pod_spec(spec);
    for v in spec.volumes.iter_mut().flatten() {
        default_volume(v);
    }
    for c in spec
        .init_containers
        .iter_mut()
        .flatten()
        .chain(spec.containers.iter_mut())
    {
        default_container!(c);
    }
    for c in spec.ephemeral_containers.iter_mut().flatten() {
        default_container!(c);
    }
}

fn set_if_empty(field: &mut Option<String>, value: &str) {
    if field.as_deref().unwrap_or_default().is_empty() {
        *field = Some(value.to_string());
    }
}

fn default_pod_spec(spec: &mut PodSpec) {
    set_if_empty(&mut spec.dns_policy, "ClusterFirst");
    set_if_empty(&mut spec.restart_policy, "Always");
    if spec.security_context.is_none() {
        spec.security_context = Some(PodSecurityContext::default());
    }
    if spec.termination_grace_period_seconds.is_none() {
        spec.termination_grace_period_seconds = Some(DEFAULT_TERMINATION_GRACE_PERIOD_SECONDS);
    }
    set_if_empty(&mut spec.scheduler_name, DEFAULT_SCHEDULER_NAME);
}

/// Requests default to limits for every resource limited but not requested.
fn default_requests_to_limits<'a>(containers: impl Iterator<Item = &'a mut Container>) {
    for c in containers {
        let Some(ResourceRequirements {
            limits: Some(limits),
            requests,
            ..
        }) = c.resources.as_mut()
        else {
            continue;
        };
        let requests = requests.get_or_insert_with(BTreeMap::new);
        for (name, value) in limits.iter() {
            requests
                .entry(name.clone())
                .or_insert_with(|| value.clone());
        }
    }
}

fn default_ports(ports: Option<&mut Vec<ContainerPort>>) {
    for p in ports.into_iter().flatten() {
        set_if_empty(&mut p.protocol, "TCP");
    }
}

fn default_env(env: Option<&mut Vec<EnvVar>>) {
    for e in env.into_iter().flatten() {
        if let Some(fr) = e.value_from.as_mut().and_then(|f| f.field_ref.as_mut()) {
            set_if_empty(&mut fr.api_version, "v1");
        }
    }
}

fn default_probe(p: &mut Probe) {
    for (field, value) in [
        (&mut p.timeout_seconds, 1),
        (&mut p.period_seconds, 10),
        (&mut p.success_threshold, 1),
        (&mut p.failure_threshold, 3),
    ] {
        if field.unwrap_or(0) == 0 {
            *field = Some(value);
        }
    }
    if let Some(h) = p.http_get.as_mut() {
        default_http_get(h);
    }
    if let Some(g) = p.grpc.as_mut()
        && g.service.is_none()
    {
        g.service = Some(String::new());
    }
}

fn default_http_get(h: &mut HTTPGetAction) {
    set_if_empty(&mut h.path, "/");
    set_if_empty(&mut h.scheme, "HTTP");
}

fn default_lifecycle(lc: &mut Lifecycle) {
    for handler in [lc.post_start.as_mut(), lc.pre_stop.as_mut()]
        .into_iter()
        .flatten()
    {
        if let Some(h) = handler.http_get.as_mut() {
            default_http_get(h);
        }
    }
}

fn default_mode(mode: &mut Option<i32>) {
    if mode.is_none() {
        *mode = Some(DEFAULT_VOLUME_MODE);
    }
}

fn default_volume(v: &mut Volume) {
    if crate::validation::volume_source_names(v).is_empty() {
        v.empty_dir = Some(Default::default());
    }
    if let Some(img) = v.image.as_mut()
        && img.pull_policy.as_deref().unwrap_or_default().is_empty()
    {
        let reference = img.reference.as_deref().unwrap_or_default();
        img.pull_policy = Some(default_pull_policy(reference).to_string());
    }
    if let Some(hp) = v.host_path.as_mut()
        && hp.type_.is_none()
    {
        hp.type_ = Some(String::new());
    }
    if let Some(s) = v.secret.as_mut() {
        default_mode(&mut s.default_mode);
    }
    if let Some(c) = v.config_map.as_mut() {
        default_mode(&mut c.default_mode);
    }
    if let Some(d) = v.downward_api.as_mut() {
        default_mode(&mut d.default_mode);
        for item in d.items.iter_mut().flatten() {
            if let Some(fr) = item.field_ref.as_mut() {
                set_if_empty(&mut fr.api_version, "v1");
            }
        }
    }
    if let Some(p) = v.projected.as_mut() {
        default_mode(&mut p.default_mode);
        for s in p.sources.iter_mut().flatten() {
            for item in s
                .downward_api
                .iter_mut()
                .flat_map(|d| d.items.iter_mut().flatten())
            {
                if let Some(fr) = item.field_ref.as_mut() {
                    set_if_empty(&mut fr.api_version, "v1");
                }
            }
            if let Some(t) = s.service_account_token.as_mut()
                && t.expiration_seconds.is_none()
            {
                t.expiration_seconds = Some(DEFAULT_TOKEN_EXPIRATION_SECONDS);
            }
        }
    }
    default_legacy_volume_sources(v);
}

/// Defaults of the in-tree storage plugins.
fn default_legacy_volume_sources(v: &mut Volume) {
    if let Some(i) = v.iscsi.as_mut() {
        set_if_empty(&mut i.iscsi_interface, "default");
    }
    if let Some(r) = v.rbd.as_mut() {
        set_if_empty(&mut r.pool, "rbd");
        set_if_empty(&mut r.user, "admin");
        set_if_empty(&mut r.keyring, "/etc/ceph/keyring");
    }
    if let Some(a) = v.azure_disk.as_mut() {
        set_if_empty(&mut a.caching_mode, "ReadWrite");
        set_if_empty(&mut a.kind, "Shared");
        set_if_empty(&mut a.fs_type, "ext4");
        if a.read_only.is_none() {
            a.read_only = Some(false);
        }
    }
    if let Some(s) = v.scale_io.as_mut() {
        set_if_empty(&mut s.storage_mode, "ThinProvisioned");
        set_if_empty(&mut s.fs_type, "xfs");
    }
    if let Some(spec) = v
        .ephemeral
        .as_mut()
        .and_then(|e| e.volume_claim_template.as_mut())
        .map(|t| &mut t.spec)
        && spec.volume_mode.is_none()
    {
        spec.volume_mode = Some("Filesystem".to_string());
    }
}
