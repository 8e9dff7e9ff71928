//! The kubelet-managed /etc/hosts of a pod (upstream managedHostsFileContent): localhost
//! entries, the pod's own IPs with its hostname (and FQDN when it has a subdomain), and
//! the spec's hostAliases.

use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::Pod;

/// Whether the kubelet manages /etc/hosts for this pod (not for host-network pods).
pub fn managed(pod: &Pod) -> bool {
    !pod.spec
        .as_ref()
        .and_then(|s| s.host_network)
        .unwrap_or(false)
}

/// The pod's hostname and, with a subdomain, its domain (`<sub>.<ns>.svc.<clusterDomain>`).
pub fn hostname_and_domain(pod: &Pod, cluster_domain: &str) -> (String, Option<String>) {
    let spec = pod.spec.as_ref();
    let hostname = spec
        .and_then(|s| s.hostname.clone())
        .filter(|h| !h.is_empty())
        .or_else(|| pod.metadata.name.clone())
        .unwrap_or_default();
    let hostname = if hostname.len() > 63 {
        hostname[..63].trim_end_matches(['-', '.']).to_string()
    } else {
        hostname
    };
    let domain = spec
        .and_then(|s| s.subdomain.clone())
        .filter(|s| !s.is_empty())
        .map(|sub| {
            let ns = pod.metadata.namespace.as_deref().unwrap_or("default");
            if cluster_domain.is_empty() {
                format!("{sub}.{ns}.svc")
            } else {
                format!("{sub}.{ns}.svc.{cluster_domain}")
            }
        });
    (hostname, domain)
}

pub fn content(pod: &Pod, pod_ips: &[String], cluster_domain: &str) -> String {
    let (hostname, domain) = hostname_and_domain(pod, cluster_domain);
    let mut out = String::from(
        "# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n\
         fe00::0\tip6-localnet\nfe00::0\tip6-mcastprefix\nfe00::1\tip6-allnodes\nfe00::2\tip6-allrouters\n",
    );
    for ip in pod_ips {
        match &domain {
            Some(d) => out.push_str(&format!("{ip}\t{hostname}.{d}\t{hostname}\n")),
            None => out.push_str(&format!("{ip}\t{hostname}\n")),
        }
    }
    let aliases = pod.spec.as_ref().and_then(|s| s.host_aliases.as_ref());
    if let Some(aliases) = aliases.filter(|a| !a.is_empty()) {
        out.push_str("\n# Entries added by HostAliases.\n");
        for a in aliases {
            let names = a.hostnames.clone().unwrap_or_default().join("\t");
            out.push_str(&format!("{}\t{names}\n", a.ip));
        }
    }
    out
}

/// Write `<pod dir>/etc-hosts` and return its path.
pub fn write(
    pod_dir: &Path,
    pod: &Pod,
    pod_ips: &[String],
    cluster_domain: &str,
) -> Result<PathBuf, String> {
    std::fs::create_dir_all(pod_dir).map_err(|e| format!("creating {}: {e}", pod_dir.display()))?;
    let path = pod_dir.join("etc-hosts");
    let text = content(pod, pod_ips, cluster_domain);
    if std::fs::read_to_string(&path).ok().as_deref() != Some(text.as_str()) {
        std::fs::write(&path, text).map_err(|e| format!("writing {}: {e}", path.display()))?;
    }
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{HostAlias, PodSpec};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    #[test]
    fn hosts_file_like_upstream() {
        let pod = Pod {
            metadata: ObjectMeta {
                name: Some("web-n1".into()),
                namespace: Some("team".into()),
                ..Default::default()
            },
            spec: Some(PodSpec {
                hostname: Some("web".into()),
                subdomain: Some("svc1".into()),
                host_aliases: Some(vec![HostAlias {
                    ip: "10.1.2.3".into(),
                    hostnames: Some(vec!["foo.local".into(), "bar.local".into()]),
                }]),
                ..Default::default()
            }),
            ..Default::default()
        };
        let text = content(&pod, &["10.88.0.4".into()], "cluster.local");
        assert!(text.starts_with("# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n"));
        assert!(
            text.contains("10.88.0.4\tweb.svc1.team.svc.cluster.local\tweb\n"),
            "{text}"
        );
        assert!(
            text.ends_with("# Entries added by HostAliases.\n10.1.2.3\tfoo.local\tbar.local\n"),
            "{text}"
        );
        let plain = Pod {
            spec: Some(PodSpec::default()),
            ..pod
        };
        assert!(content(&plain, &["10.88.0.4".into()], "").contains("10.88.0.4\tweb-n1\n"));
    }
}
