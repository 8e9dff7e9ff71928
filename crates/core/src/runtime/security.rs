//! Security context for CRI: user and groups (fsGroup, then supplementalGroups, and the
//! supplementalGroupsPolicy), capabilities, privileged, read-only root, no_new_privs,
//! seccomp (container over pod over `seccompDefault`), AppArmor (container field, then the
//! deprecated annotation, then the pod field), SELinux options (container over pod),
//! procMount masked and read-only paths, and the runAsNonRoot check against the image's
//! user. What the node cannot honour is refused at admission ([`admit`]).

use std::path::Path;

use k8s_cri::v1 as cri;
use k8s_openapi::api::core::v1::{AppArmorProfile, Container, Pod, SELinuxOptions, SeccompProfile};

use crate::cm::admission::Rejection;

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

/// The deprecated per-container AppArmor annotation (`<prefix><container name>`).
pub const APPARMOR_ANNOTATION_PREFIX: &str = "container.apparmor.security.beta.kubernetes.io/";

fn apparmor_from_annotation(pod: &Pod, container: &str) -> Option<AppArmorProfile> {
    let value = pod
        .metadata
        .annotations
        .as_ref()?
        .get(&format!("{APPARMOR_ANNOTATION_PREFIX}{container}"))?;
    let profile = |type_: &str, local: Option<&str>| AppArmorProfile {
        type_: type_.into(),
        localhost_profile: local.map(str::to_string),
    };
    match value.as_str() {
        "runtime/default" => Some(profile("RuntimeDefault", None)),
        "unconfined" => Some(profile("Unconfined", None)),
        v => v
            .strip_prefix("localhost/")
            .map(|name| profile("Localhost", Some(name))),
    }
}

/// The container's AppArmor profile as upstream picks it: the container's field, else the
/// deprecated annotation (static pods never had it synced to the fields), else the pod's.
pub fn apparmor_profile(pod: &Pod, c: &Container) -> Option<AppArmorProfile> {
    c.security_context
        .as_ref()
        .and_then(|s| s.app_armor_profile.clone())
        .or_else(|| apparmor_from_annotation(pod, &c.name))
        .or_else(|| {
            pod.spec
                .as_ref()
                .and_then(|s| s.security_context.as_ref())
                .and_then(|p| p.app_armor_profile.clone())
        })
}

/// Whether the pod asks for any AppArmor confinement (upstream `isRequired`).
fn apparmor_required(pod: &Pod) -> bool {
    let spec = pod.spec.as_ref();
    let confining = |p: Option<&AppArmorProfile>| p.is_some_and(|p| p.type_ != "Unconfined");
    if confining(
        spec.and_then(|s| s.security_context.as_ref())
            .and_then(|p| p.app_armor_profile.as_ref()),
    ) {
        return true;
    }
    if all_containers(pod).any(|c| {
        confining(
            c.security_context
                .as_ref()
                .and_then(|s| s.app_armor_profile.as_ref()),
        )
    }) {
        return true;
    }
    pod.metadata
        .annotations
        .iter()
        .flatten()
        .any(|(k, v)| k.starts_with(APPARMOR_ANNOTATION_PREFIX) && v != "unconfined")
}

fn all_containers(pod: &Pod) -> impl Iterator<Item = &Container> {
    pod.spec.iter().flat_map(|s| {
        s.init_containers
            .iter()
            .flatten()
            .chain(s.containers.iter())
    })
}

/// Whether AppArmor is enabled on this host (as runc checks it).
pub fn apparmor_enabled_on_host() -> bool {
    Path::new("/sys/kernel/security/apparmor").exists()
        && std::fs::read_to_string("/sys/module/apparmor/parameters/enabled")
            .is_ok_and(|v| v.starts_with('Y'))
}

/// Upstream's AppArmor validator: nothing to check unless the pod asks for confinement;
/// then the host must have AppArmor and every Localhost profile a name.
fn validate_apparmor(pod: &Pod, host_enabled: bool) -> Result<(), String> {
    if !apparmor_required(pod) {
        return Ok(());
    }
    if !host_enabled {
        return Err("AppArmor is not enabled on the host".into());
    }
    for c in all_containers(pod) {
        if let Some(p) = apparmor_profile(pod, c)
            && p.type_ == "Localhost"
            && p.localhost_profile
                .as_deref()
                .unwrap_or("")
                .trim()
                .is_empty()
        {
            return Err(format!(
                "invalid empty AppArmor profile name: {:?}",
                format!(
                    "{{{} {:?}}}",
                    p.type_,
                    p.localhost_profile.unwrap_or_default()
                )
            ));
        }
    }
    Ok(())
}

/// The CRI AppArmor profile and its deprecated string form, both sent as upstream does.
fn cri_apparmor(
    profile: Option<AppArmorProfile>,
) -> Result<(Option<cri::SecurityProfile>, String), String> {
    use cri::security_profile::ProfileType;
    let Some(p) = profile else {
        return Ok((None, String::new()));
    };
    let make = |t: ProfileType, local: &str| cri::SecurityProfile {
        profile_type: t as i32,
        localhost_ref: local.to_string(),
    };
    match p.type_.as_str() {
        "RuntimeDefault" => Ok((
            Some(make(ProfileType::RuntimeDefault, "")),
            "runtime/default".into(),
        )),
        "Unconfined" => Ok((Some(make(ProfileType::Unconfined, "")), "unconfined".into())),
        "Localhost" => {
            let name = p
                .localhost_profile
                .ok_or("missing localhost apparmor profile name")?;
            Ok((
                Some(make(ProfileType::Localhost, &name)),
                format!("localhost/{name}"),
            ))
        }
        other => Err(format!("unknown apparmor profile type: {other:?}")),
    }
}

pub fn selinux_options(o: &SELinuxOptions) -> cri::SeLinuxOption {
    cri::SeLinuxOption {
        user: o.user.clone().unwrap_or_default(),
        role: o.role.clone().unwrap_or_default(),
        r#type: o.type_.clone().unwrap_or_default(),
        level: o.level.clone().unwrap_or_default(),
    }
}

/// CRI value of `supplementalGroupsPolicy` (upstream errors on a value CRI lacks).
pub fn supplemental_groups_policy(pod: &Pod) -> Result<i32, String> {
    let policy = pod
        .spec
        .as_ref()
        .and_then(|s| s.security_context.as_ref())
        .and_then(|p| p.supplemental_groups_policy.as_deref());
    match policy {
        None | Some("Merge") => Ok(cri::SupplementalGroupsPolicy::Merge as i32),
        Some("Strict") => Ok(cri::SupplementalGroupsPolicy::Strict as i32),
        Some(other) => Err(format!("unsupported supplementalGroupsPolicy: {other}")),
    }
}

/// What the node and its runtime can honour, for [`admit`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeSecurity {
    /// AppArmor is enabled on the host ([`apparmor_enabled_on_host`]).
    pub apparmor: bool,
    /// The runtime reports the supplementalGroupsPolicy feature (CRI Status features).
    pub supplemental_groups_policy: bool,
}

/// Admission for pod security fields the kubelet cannot honour on this node, with
/// upstream's reasons and messages where upstream refuses too:
/// - `supplementalGroupsPolicy: Strict` when the runtime lacks the feature
///   (SupplementalGroupsPolicyNotSupported, from upstream's predicate admit handler);
/// - AppArmor confinement on a host without AppArmor (AppArmor, upstream's handler);
/// - `hostUsers: false`: kubelet-rs does not allocate user namespace ID mappings, so the
///   pod is refused rather than run in the host's user namespace (kubelet-rs' own reason).
pub fn admit(pod: &Pod, node: NodeSecurity) -> Result<(), Rejection> {
    let spec = pod.spec.as_ref();
    let strict = spec
        .and_then(|s| s.security_context.as_ref())
        .and_then(|p| p.supplemental_groups_policy.as_deref())
        == Some("Strict");
    if let Err(e) = supplemental_groups_policy(pod) {
        return Err(Rejection {
            reason: "SupplementalGroupsPolicyNotSupported".into(),
            message: format!("Pod was rejected: {e}"),
        });
    }
    if strict && !node.supplemental_groups_policy {
        return Err(Rejection {
            reason: "SupplementalGroupsPolicyNotSupported".into(),
            message:
                "Pod was rejected: SupplementalGroupsPolicy=Strict is not supported in this node"
                    .into(),
        });
    }
    if let Err(e) = validate_apparmor(pod, node.apparmor) {
        return Err(Rejection {
            reason: "AppArmor".into(),
            message: format!("Pod was rejected: Cannot enforce AppArmor: {e}"),
        });
    }
    if spec.and_then(|s| s.host_users) == Some(false) {
        return Err(Rejection {
            reason: "UserNamespacesNotSupported".into(),
            message: "Pod was rejected: hostUsers: false is not supported by kubelet-rs: it does not allocate user namespace ID mappings, and will not run the pod in the host's user namespace instead".into(),
        });
    }
    Ok(())
}

/// The AdmitHandler form of [`admit`].
#[derive(Debug)]
pub struct SecurityAdmission {
    pub node: NodeSecurity,
}

impl crate::cm::admission::AdmitHandler for SecurityAdmission {
    fn admit(&self, pod: &Pod) -> Result<(), Rejection> {
        admit(pod, self.node)
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
    // Upstream's order: fsGroup first, then the supplementalGroups.
    let supplemental: Vec<i64> = psc
        .and_then(|p| p.fs_group)
        .into_iter()
        .chain(
            psc.and_then(|p| p.supplemental_groups.clone())
                .unwrap_or_default(),
        )
        .collect();
    // Masked and read-only paths by procMount alone, as upstream sends them (the runtime
    // itself drops them for privileged containers).
    let unmasked = sc.and_then(|s| s.proc_mount.as_deref()) == Some("Unmasked");
    let list = |paths: &[&str]| {
        if unmasked {
            Vec::new()
        } else {
            paths.iter().map(|p| p.to_string()).collect()
        }
    };
    let (apparmor, apparmor_profile) = cri_apparmor(apparmor_profile(pod, c))?;
    let selinux = sc
        .and_then(|s| s.se_linux_options.as_ref())
        .or(psc.and_then(|p| p.se_linux_options.as_ref()))
        .map(selinux_options);
    #[allow(deprecated)]
    Ok(cri::LinuxContainerSecurityContext {
        capabilities: caps.map(|c| cri::Capability {
            add_capabilities: c.add.clone().unwrap_or_default(),
            drop_capabilities: c.drop.clone().unwrap_or_default(),
            ..Default::default()
        }),
        privileged,
        namespace_options: Some(namespace_options(pod)),
        selinux_options: selinux,
        run_as_user: effective_run_as_user(pod, c).map(|value| cri::Int64Value { value }),
        run_as_group: run_as_group.map(|value| cri::Int64Value { value }),
        readonly_rootfs: sc
            .and_then(|s| s.read_only_root_filesystem)
            .unwrap_or(false),
        supplemental_groups: supplemental,
        supplemental_groups_policy: supplemental_groups_policy(pod)?,
        no_new_privs: sc.and_then(|s| s.allow_privilege_escalation) == Some(false),
        masked_paths: list(DEFAULT_MASKED_PATHS),
        readonly_paths: list(DEFAULT_READONLY_PATHS),
        seccomp: Some(seccomp(pod, c, root_dir, seccomp_default)?),
        apparmor,
        apparmor_profile,
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

    const NODE_WITHOUT: NodeSecurity = NodeSecurity {
        apparmor: false,
        supplemental_groups_policy: false,
    };
    const NODE_WITH: NodeSecurity = NodeSecurity {
        apparmor: true,
        supplemental_groups_policy: true,
    };

    fn apparmor(t: &str, local: Option<&str>) -> AppArmorProfile {
        AppArmorProfile {
            type_: t.into(),
            localhost_profile: local.map(str::to_string),
        }
    }

    #[test]
    fn groups_selinux_apparmor_and_policy_reach_the_container_config() {
        let tmp = tempfile::tempdir().unwrap();
        let (pod, c) = pod_with(
            PodSecurityContext {
                fs_group: Some(2000),
                supplemental_groups: Some(vec![4000, 5000]),
                supplemental_groups_policy: Some("Strict".into()),
                se_linux_options: Some(SELinuxOptions {
                    level: Some("s0:c1".into()),
                    ..Default::default()
                }),
                app_armor_profile: Some(apparmor("Localhost", Some("k8s-x"))),
                ..Default::default()
            },
            None,
        );
        let sc = container_security_context(&pod, &c, tmp.path(), false).unwrap();
        assert_eq!(
            sc.supplemental_groups,
            vec![2000, 4000, 5000],
            "fsGroup first"
        );
        assert_eq!(
            sc.supplemental_groups_policy,
            cri::SupplementalGroupsPolicy::Strict as i32
        );
        assert_eq!(sc.selinux_options.unwrap().level, "s0:c1");
        let aa = sc.apparmor.unwrap();
        assert_eq!(
            aa.profile_type,
            cri::security_profile::ProfileType::Localhost as i32
        );
        assert_eq!(aa.localhost_ref, "k8s-x");
        #[allow(deprecated)]
        let deprecated = sc.apparmor_profile;
        assert_eq!(deprecated, "localhost/k8s-x");
        assert_eq!(
            sc.namespace_options.unwrap().userns_options.unwrap().mode,
            cri::NamespaceMode::Node as i32
        );
        // The container's SELinux options and AppArmor profile win over the pod's.
        let (pod, c) = pod_with(
            PodSecurityContext {
                se_linux_options: Some(SELinuxOptions {
                    level: Some("s0:c1".into()),
                    ..Default::default()
                }),
                app_armor_profile: Some(apparmor("RuntimeDefault", None)),
                ..Default::default()
            },
            Some(SecurityContext {
                se_linux_options: Some(SELinuxOptions {
                    type_: Some("spc_t".into()),
                    ..Default::default()
                }),
                app_armor_profile: Some(apparmor("Unconfined", None)),
                ..Default::default()
            }),
        );
        let sc = container_security_context(&pod, &c, tmp.path(), false).unwrap();
        let se = sc.selinux_options.unwrap();
        assert_eq!((se.r#type.as_str(), se.level.as_str()), ("spc_t", ""));
        #[allow(deprecated)]
        let deprecated = sc.apparmor_profile;
        assert_eq!(deprecated, "unconfined");
    }

    #[test]
    fn the_deprecated_apparmor_annotation_sits_between_container_and_pod() {
        let (mut pod, c) = pod_with(
            PodSecurityContext {
                app_armor_profile: Some(apparmor("Unconfined", None)),
                ..Default::default()
            },
            None,
        );
        pod.metadata.annotations = Some(
            [(
                format!("{APPARMOR_ANNOTATION_PREFIX}c"),
                "runtime/default".to_string(),
            )]
            .into(),
        );
        assert_eq!(apparmor_profile(&pod, &c).unwrap().type_, "RuntimeDefault");
        assert!(apparmor_required(&pod));
        pod.metadata.annotations = Some(
            [(
                format!("{APPARMOR_ANNOTATION_PREFIX}c"),
                "localhost/p1".to_string(),
            )]
            .into(),
        );
        assert_eq!(
            apparmor_profile(&pod, &c)
                .unwrap()
                .localhost_profile
                .as_deref(),
            Some("p1")
        );
    }

    #[test]
    fn admission_refuses_what_the_node_cannot_honour_with_upstreams_words() {
        let (plain, _) = pod_with(PodSecurityContext::default(), None);
        assert!(admit(&plain, NODE_WITHOUT).is_ok());
        let (strict, _) = pod_with(
            PodSecurityContext {
                supplemental_groups_policy: Some("Strict".into()),
                ..Default::default()
            },
            None,
        );
        let r = admit(&strict, NODE_WITHOUT).unwrap_err();
        assert_eq!(r.reason, "SupplementalGroupsPolicyNotSupported");
        assert_eq!(
            r.message,
            "Pod was rejected: SupplementalGroupsPolicy=Strict is not supported in this node"
        );
        assert!(admit(&strict, NODE_WITH).is_ok());
        let (merge, _) = pod_with(
            PodSecurityContext {
                supplemental_groups_policy: Some("Merge".into()),
                ..Default::default()
            },
            None,
        );
        assert!(admit(&merge, NODE_WITHOUT).is_ok());
        let (confined, _) = pod_with(
            PodSecurityContext::default(),
            Some(SecurityContext {
                app_armor_profile: Some(apparmor("RuntimeDefault", None)),
                ..Default::default()
            }),
        );
        let r = admit(&confined, NODE_WITHOUT).unwrap_err();
        assert_eq!(r.reason, "AppArmor");
        assert_eq!(
            r.message,
            "Pod was rejected: Cannot enforce AppArmor: AppArmor is not enabled on the host"
        );
        assert!(admit(&confined, NODE_WITH).is_ok());
        let (unconfined, _) = pod_with(
            PodSecurityContext {
                app_armor_profile: Some(apparmor("Unconfined", None)),
                ..Default::default()
            },
            None,
        );
        assert!(
            admit(&unconfined, NODE_WITHOUT).is_ok(),
            "Unconfined needs no AppArmor"
        );
        let (empty_local, _) = pod_with(
            PodSecurityContext {
                app_armor_profile: Some(apparmor("Localhost", Some(" "))),
                ..Default::default()
            },
            None,
        );
        assert!(
            admit(&empty_local, NODE_WITH)
                .unwrap_err()
                .message
                .contains("invalid empty AppArmor profile name")
        );
        let (mut userns, _) = pod_with(PodSecurityContext::default(), None);
        userns.spec.as_mut().unwrap().host_users = Some(false);
        let r = admit(&userns, NODE_WITH).unwrap_err();
        assert_eq!(r.reason, "UserNamespacesNotSupported");
        assert!(
            r.message
                .starts_with("Pod was rejected: hostUsers: false is not supported")
        );
        userns.spec.as_mut().unwrap().host_users = Some(true);
        assert!(admit(&userns, NODE_WITH).is_ok());
    }
}
