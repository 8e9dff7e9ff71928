//! Security context for CRI: user and groups, capabilities, privileged, read-only root,
//! no_new_privs, seccomp (container over pod over `seccompDefault`), procMount masked and
//! read-only paths, and the runAsNonRoot check against the image's user.

use std::path::Path;

use k8s_cri::v1 as cri;
use k8s_openapi::api::core::v1::{Container, Pod, SeccompProfile};

use super::sandbox::namespace_options;

/// Paths a container must not read (upstream securitycontext defaults for procMount Default).
pub const DEFAULT_MASKED_PATHS: &[&str] = &[
    "/proc/asound",
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];
pub const DEFAULT_READONLY_PATHS: &[&str] = &[
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// The user an image runs as, from CRI ImageStatus.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ImageUser {
    pub uid: Option<i64>,
    pub username: String,
}

fn effective_run_as_user(pod: &Pod, c: &Container) -> Option<i64> {
    let psc = pod.spec.as_ref().and_then(|s| s.security_context.as_ref());
    c.security_context
        .as_ref()
        .and_then(|s| s.run_as_user)
        .or(psc.and_then(|p| p.run_as_user))
}

pub fn wants_non_root(pod: &Pod, c: &Container) -> bool {
    let psc = pod.spec.as_ref().and_then(|s| s.security_context.as_ref());
    c.security_context
        .as_ref()
        .and_then(|s| s.run_as_non_root)
        .or(psc.and_then(|p| p.run_as_non_root))
        .unwrap_or(false)
}

/// Upstream verifyRunAsNonRoot. `image` is consulted only when no runAsUser is set.
pub fn verify_run_as_non_root(
    pod: &Pod,
    c: &Container,
    image: Option<&ImageUser>,
) -> Result<(), String> {
    if !wants_non_root(pod, c) {
        return Ok(());
    }
    let who = format!(
        "(pod: {:?}, container: {})",
        format!(
            "{}_{}({})",
            pod.metadata.name.as_deref().unwrap_or_default(),
            pod.metadata.namespace.as_deref().unwrap_or_default(),
            pod.metadata.uid.as_deref().unwrap_or_default()
        ),
        c.name
    );
    if let Some(uid) = effective_run_as_user(pod, c) {
        return if uid == 0 {
            Err(format!(
                "container's runAsUser breaks non-root policy {who}"
            ))
        } else {
            Ok(())
        };
    }
    let image = image.cloned().unwrap_or_default();
    match image.uid {
        Some(0) => Err(format!(
            "container has runAsNonRoot and image will run as root {who}"
        )),
        Some(_) => Ok(()),
        None if image.username.is_empty() || image.username == "root" => Err(format!(
            "container has runAsNonRoot and image will run as root {who}"
        )),
        None => match image
            .username
            .split(':')
            .next()
            .and_then(|u| u.parse::<i64>().ok())
        {
            Some(0) => Err(format!(
                "container has runAsNonRoot and image will run as root {who}"
            )),
            Some(_) => Ok(()),
            None => Err(format!(
                "container has runAsNonRoot and image has non-numeric user ({}), cannot verify user is non-root {who}",
                image.username
            )),
        },
    }
}

/// CRI seccomp profile: container's, else pod's, else RuntimeDefault when `seccompDefault`
/// is on, else Unconfined. A Localhost profile must exist under `<root-dir>/seccomp`.
pub fn seccomp(
    pod: &Pod,
    c: &Container,
    root_dir: &Path,
    seccomp_default: bool,
) -> Result<cri::SecurityProfile, String> {
    let psc = pod.spec.as_ref().and_then(|s| s.security_context.as_ref());
    let profile: Option<&SeccompProfile> = c
        .security_context
        .as_ref()
        .and_then(|s| s.seccomp_profile.as_ref())
        .or(psc.and_then(|p| p.seccomp_profile.as_ref()));
    let kind = profile
        .map(|p| p.type_.as_str())
        .unwrap_or(if seccomp_default {
            "RuntimeDefault"
        } else {
            "Unconfined"
        });
    match kind {
        "RuntimeDefault" => Ok(cri::SecurityProfile {
            profile_type: cri::security_profile::ProfileType::RuntimeDefault as i32,
            localhost_ref: String::new(),
        }),
        "Unconfined" => Ok(cri::SecurityProfile {
            profile_type: cri::security_profile::ProfileType::Unconfined as i32,
            localhost_ref: String::new(),
        }),
        "Localhost" => {
            let rel = profile
                .and_then(|p| p.localhost_profile.clone())
                .unwrap_or_default();
            if rel.is_empty()
                || Path::new(&rel).is_absolute()
                || rel.split('/').any(|part| part == "..")
            {
                return Err(format!(
                    "seccomp profile localhostProfile {rel:?} must be a relative path inside {}/seccomp",
                    root_dir.display()
                ));
            }
            let path = root_dir.join("seccomp").join(&rel);
            if !path.is_file() {
                return Err(format!("seccomp profile {} does not exist", path.display()));
            }
            Ok(cri::SecurityProfile {
                profile_type: cri::security_profile::ProfileType::Localhost as i32,
                localhost_ref: path.to_string_lossy().into_owned(),
            })
        }
        other => Err(format!("unknown seccomp profile type {other:?}")),
    }
}

pub fn container_security_context(
    pod: &Pod,
    c: &Container,
    root_dir: &Path,
    seccomp_default: bool,
) -> Result<cri::LinuxContainerSecurityContext, String> {
    let psc = pod.spec.as_ref().and_then(|s| s.security_context.as_ref());
    let sc = c.security_context.as_ref();
    let run_as_group = sc
        .and_then(|s| s.run_as_group)
        .or(psc.and_then(|p| p.run_as_group));
    let privileged = sc.and_then(|s| s.privileged).unwrap_or(false);
    let caps = sc.and_then(|s| s.capabilities.as_ref());
    let mut supplemental = psc
        .and_then(|p| p.supplemental_groups.clone())
        .unwrap_or_default();
    if let Some(fs_group) = psc.and_then(|p| p.fs_group) {
        supplemental.push(fs_group);
    }
    // Unmasked /proc only makes sense (and is only allowed upstream) without masks at all;
    // privileged containers get no masks from the runtime either.
    let unmasked = sc.and_then(|s| s.proc_mount.as_deref()) == Some("Unmasked") || privileged;
    let list = |paths: &[&str]| {
        if unmasked {
            Vec::new()
        } else {
            paths.iter().map(|p| p.to_string()).collect()
        }
    };
    Ok(cri::LinuxContainerSecurityContext {
        capabilities: caps.map(|c| cri::Capability {
            add_capabilities: c.add.clone().unwrap_or_default(),
            drop_capabilities: c.drop.clone().unwrap_or_default(),
            ..Default::default()
        }),
        privileged,
        namespace_options: Some(namespace_options(pod)),
        run_as_user: effective_run_as_user(pod, c).map(|value| cri::Int64Value { value }),
        run_as_group: run_as_group.map(|value| cri::Int64Value { value }),
        readonly_rootfs: sc
            .and_then(|s| s.read_only_root_filesystem)
            .unwrap_or(false),
        supplemental_groups: supplemental,
        no_new_privs: sc.and_then(|s| s.allow_privilege_escalation) == Some(false),
        masked_paths: list(DEFAULT_MASKED_PATHS),
        readonly_paths: list(DEFAULT_READONLY_PATHS),
        seccomp: Some(seccomp(pod, c, root_dir, seccomp_default)?),
        ..Default::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{PodSecurityContext, PodSpec, SecurityContext};

    fn pod_with(psc: PodSecurityContext, sc: Option<SecurityContext>) -> (Pod, Container) {
        let c = Container {
            name: "c".into(),
            security_context: sc,
            ..Default::default()
        };
        let pod = Pod {
            spec: Some(PodSpec {
                security_context: Some(psc),
                containers: vec![c.clone()],
                ..Default::default()
            }),
            ..Default::default()
        };
        (pod, c)
    }

    #[test]
    fn run_as_non_root_rules() {
        let (pod, c) = pod_with(
            PodSecurityContext {
                run_as_non_root: Some(true),
                ..Default::default()
            },
            None,
        );
        let root = ImageUser {
            uid: Some(0),
            username: String::new(),
        };
        let err = verify_run_as_non_root(&pod, &c, Some(&root)).unwrap_err();
        assert!(err.contains("image will run as root"), "{err}");
        assert!(
            verify_run_as_non_root(
                &pod,
                &c,
                Some(&ImageUser {
                    uid: Some(1000),
                    username: String::new()
                })
            )
            .is_ok()
        );
        let named = ImageUser {
            uid: None,
            username: "nginx".into(),
        };
        assert!(
            verify_run_as_non_root(&pod, &c, Some(&named))
                .unwrap_err()
                .contains("non-numeric user (nginx)")
        );
        let (pod, c) = pod_with(
            PodSecurityContext {
                run_as_non_root: Some(true),
                run_as_user: Some(0),
                ..Default::default()
            },
            None,
        );
        assert!(
            verify_run_as_non_root(&pod, &c, None)
                .unwrap_err()
                .contains("runAsUser breaks non-root policy")
        );
        let (pod, c) = pod_with(
            PodSecurityContext {
                run_as_non_root: Some(true),
                ..Default::default()
            },
            Some(SecurityContext {
                run_as_user: Some(1000),
                ..Default::default()
            }),
        );
        assert!(
            verify_run_as_non_root(&pod, &c, Some(&root)).is_ok(),
            "container runAsUser wins"
        );
    }

    #[test]
    fn seccomp_precedence_and_localhost_check() {
        let tmp = tempfile::tempdir().unwrap();
        let profile = |t: &str, local: Option<&str>| SeccompProfile {
            type_: t.into(),
            localhost_profile: local.map(Into::into),
        };
        let (pod, c) = pod_with(
            PodSecurityContext {
                seccomp_profile: Some(profile("RuntimeDefault", None)),
                ..Default::default()
            },
            None,
        );
        assert_eq!(
            seccomp(&pod, &c, tmp.path(), false).unwrap().profile_type,
            cri::security_profile::ProfileType::RuntimeDefault as i32
        );
        let (pod, c) = pod_with(
            PodSecurityContext {
                seccomp_profile: Some(profile("RuntimeDefault", None)),
                ..Default::default()
            },
            Some(SecurityContext {
                seccomp_profile: Some(profile("Unconfined", None)),
                ..Default::default()
            }),
        );
        assert_eq!(
            seccomp(&pod, &c, tmp.path(), true).unwrap().profile_type,
            cri::security_profile::ProfileType::Unconfined as i32
        );
        let (pod, c) = pod_with(PodSecurityContext::default(), None);
        assert_eq!(
            seccomp(&pod, &c, tmp.path(), true).unwrap().profile_type,
            cri::security_profile::ProfileType::RuntimeDefault as i32
        );
        let (pod, c) = pod_with(
            PodSecurityContext {
                seccomp_profile: Some(profile("Localhost", Some("p.json"))),
                ..Default::default()
            },
            None,
        );
        assert!(
            seccomp(&pod, &c, tmp.path(), false)
                .unwrap_err()
                .contains("does not exist")
        );
        std::fs::create_dir_all(tmp.path().join("seccomp")).unwrap();
        std::fs::write(tmp.path().join("seccomp/p.json"), "{}").unwrap();
        assert!(
            seccomp(&pod, &c, tmp.path(), false)
                .unwrap()
                .localhost_ref
                .ends_with("seccomp/p.json")
        );
        let (pod, c) = pod_with(
            PodSecurityContext {
                seccomp_profile: Some(profile("Localhost", Some("../x"))),
                ..Default::default()
            },
            None,
        );
        assert!(seccomp(&pod, &c, tmp.path(), false).is_err());
        let (pod, c) = pod_with(
            PodSecurityContext {
                seccomp_profile: Some(profile("Bogus", None)),
                ..Default::default()
            },
            None,
        );
        assert!(
            seccomp(&pod, &c, tmp.path(), false)
                .unwrap_err()
                .contains("unknown seccomp profile type")
        );
    }

    #[test]
    fn masked_paths_by_proc_mount() {
        let tmp = tempfile::tempdir().unwrap();
        let (pod, c) = pod_with(PodSecurityContext::default(), None);
        let sc = container_security_context(&pod, &c, tmp.path(), false).unwrap();
        assert!(sc.masked_paths.contains(&"/proc/kcore".to_string()));
        assert!(sc.readonly_paths.contains(&"/proc/sys".to_string()));
        let (pod, c) = pod_with(
            PodSecurityContext::default(),
            Some(SecurityContext {
                proc_mount: Some("Unmasked".into()),
                ..Default::default()
            }),
        );
        assert!(
            container_security_context(&pod, &c, tmp.path(), false)
                .unwrap()
                .masked_paths
                .is_empty()
        );
    }
}
