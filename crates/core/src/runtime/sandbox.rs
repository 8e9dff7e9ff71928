//! The CRI PodSandboxConfig for a pod: metadata, hostname, log directory, DNS, host ports,
//! namespaces and the pod cgroup.

use std::path::{Path, PathBuf};

use k8s_cri::v1 as cri;
use k8s_openapi::api::core::v1::Pod;

use super::labels;
use crate::cm::CgroupLayout;

/// Node-level settings sandbox configs depend on.
#[derive(Debug, Clone)]
pub struct SandboxSettings {
    pub node_name: String,
    pub pod_logs_dir: PathBuf,
    pub cgroups: CgroupLayout,
    pub cluster_dns: Vec<String>,
    pub cluster_domain: String,
    pub resolv_conf: PathBuf,
}

/// `<podLogsDir>/<namespace>_<name>_<uid>`, as upstream.
pub fn pod_log_dir(logs_dir: &Path, pod: &Pod) -> PathBuf {
    let m = &pod.metadata;
    logs_dir.join(format!(
        "{}_{}_{}",
        m.namespace.as_deref().unwrap_or("default"),
        m.name.as_deref().unwrap_or_default(),
        m.uid.as_deref().unwrap_or_default()
    ))
}

pub fn host_network(pod: &Pod) -> bool {
    pod.spec
        .as_ref()
        .and_then(|s| s.host_network)
        .unwrap_or(false)
}

/// Hostname: spec.hostname or the pod name, cut to 63 characters without a trailing
/// '-' or '.' (upstream truncatePodHostnameIfNeeded).
pub fn hostname(pod: &Pod, cluster_domain: &str) -> String {
    // Host-network pods share the node's UTS namespace: the runtime must not be asked to
    // set a hostname (runc refuses "unable to set hostname without a private UTS namespace").
    if host_network(pod) {
        return String::new();
    }
    let (name, domain) = crate::volume::hosts::hostname_and_domain(pod, cluster_domain);
    let as_fqdn = pod
        .spec
        .as_ref()
        .and_then(|s| s.set_hostname_as_fqdn)
        .unwrap_or(false);
    match domain {
        // Upstream refuses FQDNs over 64 characters; the short name is used then.
        Some(d) if as_fqdn && name.len() + 1 + d.len() <= 64 => format!("{name}.{d}"),
        Some(d) if as_fqdn => {
            tracing::warn!(hostname = %name, domain = %d, "FQDN longer than 64 characters; using the short hostname");
            name
        }
        _ => name,
    }
}

pub fn namespace_options(pod: &Pod) -> cri::NamespaceOption {
    let spec = pod.spec.as_ref();
    let flag = |f: Option<bool>| f.unwrap_or(false);
    let node = cri::NamespaceMode::Node as i32;
    let pod_mode = cri::NamespaceMode::Pod as i32;
    cri::NamespaceOption {
        network: if flag(spec.and_then(|s| s.host_network)) {
            node
        } else {
            pod_mode
        },
        pid: if flag(spec.and_then(|s| s.host_pid)) {
            node
        } else if flag(spec.and_then(|s| s.share_process_namespace)) {
            pod_mode
        } else {
            cri::NamespaceMode::Container as i32
        },
        ipc: if flag(spec.and_then(|s| s.host_ipc)) {
            node
        } else {
            pod_mode
        },
        // Upstream (UserNamespacesSupport, on by default) names the host's user namespace
        // explicitly; `hostUsers: false` is refused at admission (see security::admit).
        userns_options: Some(cri::UserNamespace {
            mode: node,
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// resolv.conf contents: nameservers, search domains, options.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ResolvConf {
    pub servers: Vec<String>,
    pub searches: Vec<String>,
    pub options: Vec<String>,
}

pub fn parse_resolv_conf(text: &str) -> ResolvConf {
    let mut conf = ResolvConf::default();
    for line in text.lines() {
        let line = line.split(['#', ';']).next().unwrap_or("");
        let mut words = line.split_whitespace();
        match words.next() {
            Some("nameserver") => conf.servers.extend(words.next().map(str::to_string)),
            Some("search") | Some("domain") => conf.searches = words.map(str::to_string).collect(),
            Some("options") => conf.options.extend(words.map(str::to_string)),
            _ => {}
        }
    }
    conf
}

/// DNS for the sandbox by dnsPolicy (upstream pkg/kubelet/network/dns).
pub fn dns_config(pod: &Pod, settings: &SandboxSettings) -> cri::DnsConfig {
    let spec = pod.spec.as_ref();
    let policy = spec
        .and_then(|s| s.dns_policy.as_deref())
        .unwrap_or("ClusterFirst");
    let host = || {
        std::fs::read_to_string(&settings.resolv_conf)
            .map(|t| parse_resolv_conf(&t))
            .unwrap_or_default()
    };
    let cluster = || {
        let ns = pod.metadata.namespace.as_deref().unwrap_or("default");
        let domain = &settings.cluster_domain;
        let mut searches = Vec::new();
        if !domain.is_empty() {
            searches = vec![
                format!("{ns}.svc.{domain}"),
                format!("svc.{domain}"),
                domain.clone(),
            ];
        }
        searches.extend(host().searches);
        ResolvConf {
            servers: settings.cluster_dns.clone(),
            searches,
            options: vec!["ndots:5".into()],
        }
    };
    let use_cluster = !settings.cluster_dns.is_empty()
        && match policy {
            "ClusterFirstWithHostNet" => true,
            "ClusterFirst" => !host_network(pod),
            _ => false,
        };
    let mut conf = match policy {
        "None" => ResolvConf::default(),
        _ if use_cluster => cluster(),
        _ => host(),
    };
    if let Some(extra) = spec.and_then(|s| s.dns_config.as_ref()) {
        conf.servers
            .extend(extra.nameservers.iter().flatten().cloned());
        conf.searches
            .extend(extra.searches.iter().flatten().cloned());
        for opt in extra.options.iter().flatten() {
            let text = match &opt.value {
                Some(v) => format!("{}:{v}", opt.name.as_deref().unwrap_or_default()),
                None => opt.name.clone().unwrap_or_default(),
            };
            let key = opt.name.clone().unwrap_or_default();
            conf.options
                .retain(|o| o.split(':').next() != Some(key.as_str()));
            conf.options.push(text);
        }
    }
    conf.searches.dedup();
    conf.servers.truncate(3);
    conf.searches.truncate(32);
    cri::DnsConfig {
        servers: conf.servers,
        searches: conf.searches,
        options: conf.options,
    }
}

pub fn port_mappings(pod: &Pod) -> Vec<cri::PortMapping> {
    let containers = pod.spec.iter().flat_map(|s| s.containers.iter());
    containers
        .flat_map(|c| c.ports.iter().flatten())
        .filter(|p| p.host_port.unwrap_or(0) > 0)
        .map(|p| cri::PortMapping {
            protocol: match p.protocol.as_deref() {
                Some("UDP") => cri::Protocol::Udp as i32,
                Some("SCTP") => cri::Protocol::Sctp as i32,
                _ => cri::Protocol::Tcp as i32,
            },
            container_port: p.container_port,
            host_port: p.host_port.unwrap_or(0),
            host_ip: p.host_ip.clone().unwrap_or_default(),
        })
        .collect()
}

/// Whether any container of the pod is privileged: the runtime then needs a privileged
/// sandbox (containerd refuses privileged containers in an unprivileged one), as upstream.
pub fn has_privileged_container(pod: &Pod) -> bool {
    let Some(spec) = pod.spec.as_ref() else {
        return false;
    };
    let privileged = |sc: Option<&k8s_openapi::api::core::v1::SecurityContext>| {
        sc.and_then(|s| s.privileged).unwrap_or(false)
    };
    spec.containers
        .iter()
        .chain(spec.init_containers.iter().flatten())
        .any(|c| privileged(c.security_context.as_ref()))
        || spec
            .ephemeral_containers
            .iter()
            .flatten()
            .any(|c| privileged(c.security_context.as_ref()))
}

/// The sandbox's seccomp profile: always the runtime's default, whatever the pod or its
/// containers ask for (upstream: so pods may give their containers profiles stricter
/// than the pause process could live with; their own profiles apply to the containers).
pub fn sandbox_seccomp() -> cri::SecurityProfile {
    cri::SecurityProfile {
        profile_type: cri::security_profile::ProfileType::RuntimeDefault as i32,
        ..Default::default()
    }
}

pub fn sandbox_config(
    pod: &Pod,
    attempt: u32,
    settings: &SandboxSettings,
) -> cri::PodSandboxConfig {
    let m = &pod.metadata;
    let spec = pod.spec.as_ref();
    let sysctls = spec
        .and_then(|s| s.security_context.as_ref())
        .and_then(|sc| sc.sysctls.as_ref())
        .map(|list| {
            list.iter()
                .map(|s| (s.name.clone(), s.value.clone()))
                .collect()
        })
        .unwrap_or_default();
    let psc = spec.and_then(|s| s.security_context.as_ref());
    cri::PodSandboxConfig {
        metadata: Some(cri::PodSandboxMetadata {
            name: m.name.clone().unwrap_or_default(),
            uid: m.uid.clone().unwrap_or_default(),
            namespace: m.namespace.clone().unwrap_or_default(),
            attempt,
        }),
        hostname: hostname(pod, &settings.cluster_domain),
        log_directory: pod_log_dir(&settings.pod_logs_dir, pod)
            .to_string_lossy()
            .into_owned(),
        dns_config: Some(dns_config(pod, settings)),
        port_mappings: port_mappings(pod),
        labels: labels::sandbox_labels(pod, &settings.node_name),
        annotations: labels::sandbox_annotations(pod),
        linux: Some(cri::LinuxPodSandboxConfig {
            cgroup_parent: settings.cgroups.pod_cgroup(pod),
            security_context: Some(cri::LinuxSandboxSecurityContext {
                namespace_options: Some(namespace_options(pod)),
                run_as_user: psc
                    .and_then(|p| p.run_as_user)
                    .map(|value| cri::Int64Value { value }),
                run_as_group: psc
                    .and_then(|p| p.run_as_group)
                    .map(|value| cri::Int64Value { value }),
                // Upstream adds the fsGroup to the sandbox's groups too, first.
                supplemental_groups: psc
                    .and_then(|p| p.fs_group)
                    .into_iter()
                    .chain(
                        psc.and_then(|p| p.supplemental_groups.clone())
                            .unwrap_or_default(),
                    )
                    .collect(),
                // Unknown values are refused at admission (security::admit).
                supplemental_groups_policy: super::security::supplemental_groups_policy(pod)
                    .unwrap_or_default(),
                selinux_options: psc
                    .and_then(|p| p.se_linux_options.as_ref())
                    .map(super::security::selinux_options),
                privileged: has_privileged_container(pod),
                seccomp: Some(sandbox_seccomp()),
                ..Default::default()
            }),
            sysctls,
            ..Default::default()
        }),
        windows: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{Container, ContainerPort, PodSpec};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn settings(dir: &Path, dns: &[&str]) -> SandboxSettings {
        let resolv = dir.join("resolv.conf");
        std::fs::write(
            &resolv,
            "# host\nnameserver 1.1.1.1\nsearch corp.example\noptions edns0\n",
        )
        .unwrap();
        SandboxSettings {
            node_name: "node1".into(),
            pod_logs_dir: "/var/log/pods".into(),
            cgroups: CgroupLayout {
                per_qos: true,
                root: "/".into(),
                systemd: false,
                host: Default::default(),
            },
            cluster_dns: dns.iter().map(|s| s.to_string()).collect(),
            cluster_domain: "cluster.local".into(),
            resolv_conf: resolv,
        }
    }

    fn pod(policy: &str, host_net: bool) -> Pod {
        Pod {
            metadata: ObjectMeta {
                name: Some("web-node1".into()),
                namespace: Some("team".into()),
                uid: Some("u1".into()),
                ..Default::default()
            },
            spec: Some(PodSpec {
                dns_policy: Some(policy.into()),
                host_network: Some(host_net),
                containers: vec![Container {
                    name: "c".into(),
                    ports: Some(vec![ContainerPort {
                        container_port: 80,
                        host_port: Some(8080),
                        protocol: Some("TCP".into()),
                        ..Default::default()
                    }]),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn dns_by_policy() {
        let tmp = tempfile::tempdir().unwrap();
        let without_cluster_dns = settings(tmp.path(), &[]);
        let d = dns_config(&pod("ClusterFirst", false), &without_cluster_dns);
        assert_eq!(
            d.servers,
            vec!["1.1.1.1"],
            "ClusterFirst without clusterDNS falls back to the host"
        );
        let s = settings(tmp.path(), &["10.96.0.10"]);
        let d = dns_config(&pod("ClusterFirst", false), &s);
        assert_eq!(d.servers, vec!["10.96.0.10"]);
        assert_eq!(d.searches[0], "team.svc.cluster.local");
        assert_eq!(d.options, vec!["ndots:5"]);
        let d = dns_config(&pod("ClusterFirst", true), &s);
        assert_eq!(
            d.servers,
            vec!["1.1.1.1"],
            "host network pods use the host's DNS"
        );
        let d = dns_config(&pod("ClusterFirstWithHostNet", true), &s);
        assert_eq!(d.servers, vec!["10.96.0.10"]);
        let d = dns_config(&pod("None", false), &s);
        assert!(d.servers.is_empty());
    }

    #[test]
    fn sandbox_has_identity_log_dir_and_ports() {
        let tmp = tempfile::tempdir().unwrap();
        let cfg = sandbox_config(&pod("Default", false), 2, &settings(tmp.path(), &[]));
        let md = cfg.metadata.unwrap();
        assert_eq!(
            (
                md.name.as_str(),
                md.namespace.as_str(),
                md.uid.as_str(),
                md.attempt
            ),
            ("web-node1", "team", "u1", 2)
        );
        assert_eq!(cfg.log_directory, "/var/log/pods/team_web-node1_u1");
        assert_eq!(cfg.port_mappings.len(), 1);
        assert_eq!(cfg.port_mappings[0].host_port, 8080);
        assert_eq!(
            cfg.linux.as_ref().unwrap().cgroup_parent,
            "/kubepods/besteffort/podu1"
        );
        assert_eq!(cfg.hostname, "web-node1");
        let sc = cfg.linux.unwrap().security_context.unwrap();
        assert!(!sc.privileged);
    }

    #[test]
    fn a_privileged_container_makes_a_privileged_sandbox() {
        let tmp = tempfile::tempdir().unwrap();
        let mut p = pod("Default", false);
        let spec = p.spec.as_mut().unwrap();
        spec.init_containers = Some(vec![Container {
            name: "init".into(),
            security_context: Some(k8s_openapi::api::core::v1::SecurityContext {
                privileged: Some(true),
                ..Default::default()
            }),
            ..Default::default()
        }]);
        spec.security_context = Some(k8s_openapi::api::core::v1::PodSecurityContext {
            supplemental_groups: Some(vec![4000]),
            fs_group: Some(2000),
            ..Default::default()
        });
        let cfg = sandbox_config(&p, 0, &settings(tmp.path(), &[]));
        let sc = cfg.linux.unwrap().security_context.unwrap();
        assert!(sc.privileged);
        assert_eq!(sc.supplemental_groups, vec![2000, 4000], "fsGroup first");
    }

    #[test]
    fn selinux_options_policy_and_host_user_namespace_reach_the_sandbox() {
        let tmp = tempfile::tempdir().unwrap();
        let mut p = pod("Default", false);
        p.spec.as_mut().unwrap().security_context =
            Some(k8s_openapi::api::core::v1::PodSecurityContext {
                se_linux_options: Some(k8s_openapi::api::core::v1::SELinuxOptions {
                    user: Some("system_u".into()),
                    role: Some("system_r".into()),
                    type_: Some("container_t".into()),
                    level: Some("s0:c1,c2".into()),
                }),
                supplemental_groups_policy: Some("Strict".into()),
                ..Default::default()
            });
        let sc = sandbox_config(&p, 0, &settings(tmp.path(), &[]))
            .linux
            .unwrap()
            .security_context
            .unwrap();
        let se = sc.selinux_options.unwrap();
        assert_eq!(
            (
                se.user.as_str(),
                se.role.as_str(),
                se.r#type.as_str(),
                se.level.as_str()
            ),
            ("system_u", "system_r", "container_t", "s0:c1,c2")
        );
        assert_eq!(
            sc.supplemental_groups_policy,
            cri::SupplementalGroupsPolicy::Strict as i32
        );
        assert_eq!(
            sc.namespace_options.unwrap().userns_options.unwrap().mode,
            cri::NamespaceMode::Node as i32
        );
    }

    #[test]
    fn the_sandbox_always_runs_with_the_runtime_default_seccomp_profile() {
        let tmp = tempfile::tempdir().unwrap();
        let runtime_default = cri::security_profile::ProfileType::RuntimeDefault as i32;
        let profile = |p: &Pod| {
            sandbox_config(p, 0, &settings(tmp.path(), &[]))
                .linux
                .unwrap()
                .security_context
                .unwrap()
                .seccomp
                .unwrap()
        };
        // No profile anywhere.
        let plain = pod("Default", false);
        assert_eq!(profile(&plain).profile_type, runtime_default);
        // The pod's own profile (Unconfined or Localhost) is for its containers only.
        for (kind, local) in [("Unconfined", None), ("Localhost", Some("p.json"))] {
            let mut p = pod("Default", false);
            p.spec.as_mut().unwrap().security_context =
                Some(k8s_openapi::api::core::v1::PodSecurityContext {
                    seccomp_profile: Some(k8s_openapi::api::core::v1::SeccompProfile {
                        type_: kind.into(),
                        localhost_profile: local.map(str::to_string),
                    }),
                    ..Default::default()
                });
            let got = profile(&p);
            assert_eq!(got.profile_type, runtime_default, "pod profile {kind}");
            assert!(got.localhost_ref.is_empty());
        }
    }

    #[test]
    fn long_hostnames_are_cut() {
        let mut p = pod("Default", false);
        p.metadata.name = Some(format!("{}-{}", "a".repeat(62), "b"));
        assert_eq!(hostname(&p, ""), "a".repeat(62));
        let mut fqdn = pod("Default", false);
        let spec = fqdn.spec.as_mut().unwrap();
        spec.hostname = Some("web".into());
        spec.subdomain = Some("svc1".into());
        spec.set_hostname_as_fqdn = Some(true);
        assert_eq!(
            hostname(&fqdn, "cluster.local"),
            "web.svc1.team.svc.cluster.local"
        );
    }
}
