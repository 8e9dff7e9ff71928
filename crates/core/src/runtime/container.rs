//! The CRI ContainerConfig for one container of a pod: command and args with `$(VAR)`
//! expansion, env, mounts, log path, labels, resources and security context.

use std::path::Path;

use k8s_cri::v1 as cri;
use k8s_openapi::api::core::v1::{Container, Pod};

use super::envvars::{self, EnvContext};
use super::labels;
use super::security::{self, ImageUser};
use crate::cm;
use crate::cm::node::NodeAllocatable;
use crate::volume::{self, VolumePaths};

/// Node-level settings container configs depend on.
#[derive(Debug, Clone)]
pub struct ContainerSettings {
    pub node_name: String,
    pub root_dir: std::path::PathBuf,
    pub host_ips: Vec<String>,
    pub cpu_cfs_quota: bool,
    pub cpu_cfs_period_us: i64,
    pub memory_capacity: i128,
    pub cluster_domain: String,
    pub seccomp_default: bool,
    /// Node allocatable: the downward API's default for unset limits, and the host's
    /// huge page sizes (every one gets a CRI hugepage limit).
    pub node: NodeAllocatable,
    /// Swap and OOM-group settings added to every container's resources.
    pub memory: cm::container_memory::MemoryPolicy,
}

/// Everything about the running pod a container config needs.
pub struct ContainerInputs<'a> {
    pub pod: &'a Pod,
    pub container: &'a Container,
    pub image_ref: &'a str,
    pub restart_count: u32,
    pub pod_ips: &'a [String],
    pub volumes: &'a VolumePaths,
    /// The image's user, when runAsNonRoot needs checking.
    pub image_user: Option<&'a ImageUser>,
    /// ConfigMaps, Secrets and Services fetched for the pod (cluster mode only).
    pub api: Option<&'a crate::objects::PodApiData>,
}

/// Build the config; the error is what goes into CreateContainerConfigError.
pub fn container_config(
    inputs: &ContainerInputs<'_>,
    settings: &ContainerSettings,
) -> Result<cri::ContainerConfig, String> {
    let ContainerInputs {
        pod, container: c, ..
    } = *inputs;
    let uid = pod.metadata.uid.clone().unwrap_or_default();
    let ctx = EnvContext {
        node_name: &settings.node_name,
        pod_ips: inputs.pod_ips,
        host_ips: &settings.host_ips,
        api: inputs.api,
        node: &settings.node,
    };
    let env = envvars::resolve(pod, c, &ctx)?;
    let lookup = |name: &str| {
        env.iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    let expand_all = |list: &Option<Vec<String>>| -> Vec<String> {
        list.iter()
            .flatten()
            .map(|s| envvars::expand(s, &lookup))
            .collect()
    };

    let mut mounts = Vec::new();
    for vm in c.volume_mounts.iter().flatten() {
        let sub_path = match (&vm.sub_path, &vm.sub_path_expr) {
            (Some(p), _) if !p.is_empty() => Some(p.clone()),
            (_, Some(expr)) if !expr.is_empty() => Some(envvars::expand(expr, &lookup)),
            _ => None,
        };
        let host_path = volume::mount_source(inputs.volumes, vm, sub_path.as_deref())?;
        mounts.push(cri::Mount {
            container_path: vm.mount_path.clone(),
            host_path: host_path.to_string_lossy().into_owned(),
            readonly: vm.read_only.unwrap_or(false),
            propagation: match vm.mount_propagation.as_deref() {
                Some("HostToContainer") => cri::MountPropagation::PropagationHostToContainer as i32,
                Some("Bidirectional") => cri::MountPropagation::PropagationBidirectional as i32,
                _ => cri::MountPropagation::PropagationPrivate as i32,
            },
            ..Default::default()
        });
    }
    security::verify_run_as_non_root(pod, c, inputs.image_user)?;
    if volume::hosts::managed(pod)
        && !inputs.pod_ips.is_empty()
        && !mounts.iter().any(|m| m.container_path == "/etc/hosts")
    {
        let pod_dir = volume::pod_dir(&settings.root_dir, &uid);
        let file = volume::hosts::write(&pod_dir, pod, inputs.pod_ips, &settings.cluster_domain)?;
        mounts.push(cri::Mount {
            container_path: "/etc/hosts".into(),
            host_path: file.to_string_lossy().into_owned(),
            ..Default::default()
        });
    }
    let message_path = c
        .termination_message_path
        .clone()
        .unwrap_or_else(|| "/dev/termination-log".into());
    if !message_path.is_empty() && !mounts.iter().any(|m| m.container_path == message_path) {
        let file = volume::termination_message_file(
            &settings.root_dir,
            &uid,
            &c.name,
            inputs.restart_count,
        )?;
        mounts.push(cri::Mount {
            container_path: message_path,
            host_path: file.to_string_lossy().into_owned(),
            ..Default::default()
        });
    }

    Ok(cri::ContainerConfig {
        metadata: Some(cri::ContainerMetadata {
            name: c.name.clone(),
            attempt: inputs.restart_count,
        }),
        image: Some(cri::ImageSpec {
            image: inputs.image_ref.to_string(),
            user_specified_image: c.image.clone().unwrap_or_default(),
            ..Default::default()
        }),
        command: expand_all(&c.command),
        args: expand_all(&c.args),
        working_dir: c.working_dir.clone().unwrap_or_default(),
        envs: env
            .into_iter()
            .map(|(key, value)| cri::KeyValue { key, value })
            .collect(),
        mounts,
        labels: labels::container_labels(pod, c, &settings.node_name),
        annotations: labels::container_annotations(pod, c, inputs.restart_count),
        log_path: container_log_path(&c.name, inputs.restart_count),
        stdin: c.stdin.unwrap_or(false),
        stdin_once: c.stdin_once.unwrap_or(false),
        tty: c.tty.unwrap_or(false),
        linux: Some(cri::LinuxContainerConfig {
            resources: Some({
                let mut resources = cm::container_resources(
                    pod,
                    c,
                    settings.cpu_cfs_quota,
                    settings.cpu_cfs_period_us,
                    settings.memory_capacity,
                    &settings.node.hugepages.keys().copied().collect::<Vec<_>>(),
                );
                settings
                    .memory
                    .apply(&mut resources, pod, c, settings.memory_capacity);
                resources
            }),
            security_context: Some(security::container_security_context(
                pod,
                c,
                &settings.root_dir,
                settings.seccomp_default,
            )?),
        }),
        ..Default::default()
    })
}

/// Relative to the sandbox log directory: `<container>/<restartCount>.log`.
pub fn container_log_path(name: &str, restart_count: u32) -> String {
    Path::new(name)
        .join(format!("{restart_count}.log"))
        .to_string_lossy()
        .into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{EnvVar, PodSpec, VolumeMount};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    #[test]
    fn config_expands_args_and_mounts_volumes() {
        let tmp = tempfile::tempdir().unwrap();
        let vol = tmp.path().join("vol");
        std::fs::create_dir_all(&vol).unwrap();
        let c = Container {
            name: "web".into(),
            image: Some("busybox".into()),
            command: Some(vec!["/bin/sh".into()]),
            args: Some(vec!["-c".into(), "echo $(MSG)".into()]),
            env: Some(vec![EnvVar {
                name: "MSG".into(),
                value: Some("hello".into()),
                value_from: None,
            }]),
            volume_mounts: Some(vec![VolumeMount {
                name: "logs".into(),
                mount_path: "/logdir".into(),
                ..Default::default()
            }]),
            ..Default::default()
        };
        let pod = Pod {
            metadata: ObjectMeta {
                name: Some("p-n".into()),
                namespace: Some("default".into()),
                uid: Some("u1".into()),
                ..Default::default()
            },
            spec: Some(PodSpec {
                containers: vec![c.clone()],
                ..Default::default()
            }),
            ..Default::default()
        };
        let volumes = VolumePaths::from([("logs".to_string(), vol.clone())]);
        let settings = ContainerSettings {
            node_name: "n".into(),
            root_dir: tmp.path().to_path_buf(),
            host_ips: vec![],
            cpu_cfs_quota: true,
            cpu_cfs_period_us: 100_000,
            memory_capacity: 1 << 30,
            cluster_domain: String::new(),
            seccomp_default: false,
            node: NodeAllocatable::default(),
            memory: Default::default(),
        };
        let cfg = container_config(
            &ContainerInputs {
                pod: &pod,
                container: &c,
                image_ref: "sha256:abc",
                restart_count: 2,
                pod_ips: &[],
                volumes: &volumes,
                image_user: None,
                api: None,
            },
            &settings,
        )
        .unwrap();
        assert_eq!(cfg.args, vec!["-c", "echo hello"]);
        assert_eq!(cfg.log_path, "web/2.log");
        assert_eq!(cfg.metadata.unwrap().attempt, 2);
        assert_eq!(cfg.mounts[0].host_path, vol.to_string_lossy());
        assert_eq!(cfg.mounts[1].container_path, "/dev/termination-log");
        assert!(Path::new(&cfg.mounts[1].host_path).is_file());
        assert_eq!(cfg.labels[labels::CONTAINER_NAME], "web");
        assert_eq!(cfg.annotations[labels::CONTAINER_RESTART_COUNT], "2");

        let missing = Container {
            volume_mounts: Some(vec![VolumeMount {
                name: "nope".into(),
                mount_path: "/x".into(),
                ..Default::default()
            }]),
            ..c
        };
        let err = container_config(
            &ContainerInputs {
                pod: &pod,
                container: &missing,
                image_ref: "x",
                restart_count: 0,
                pod_ips: &[],
                volumes: &volumes,
                image_user: None,
                api: None,
            },
            &settings,
        )
        .unwrap_err();
        assert!(err.contains("nope"), "{err}");
    }
}
