//! Reading a kubeconfig the way client-go does for the kubelet.

use std::path::Path;

use kube::config::{KubeConfigOptions, Kubeconfig};

use crate::error::ClusterError;

/// Load `path` into a client config. A server without a scheme (`localhost:8080`, as the
/// old insecure-port set-ups write it) gets `https://` when TLS material is configured and
/// `http://` otherwise (client-go `DefaultServerURL`).
pub async fn load(path: &Path) -> Result<kube::Config, ClusterError> {
    let err = |source| ClusterError::Kubeconfig {
        path: path.to_path_buf(),
        source,
    };
    let mut kc = Kubeconfig::read_from(path).map_err(err)?;
    fix_schemes(&mut kc);
    let mut config = kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .map_err(err)?;
    // The kubelet talks to its API server directly.
    config.proxy_url = None;
    Ok(config)
}

/// Give scheme-less servers a scheme (see [`load`]).
pub fn fix_schemes(kc: &mut Kubeconfig) {
    let has_client_cert = kc.auth_infos.iter().any(|a| {
        a.auth_info
            .as_ref()
            .is_some_and(|u| u.client_certificate.is_some() || u.client_certificate_data.is_some())
    });
    for named in &mut kc.clusters {
        let Some(cluster) = named.cluster.as_mut() else {
            continue;
        };
        let tls = cluster.certificate_authority.is_some()
            || cluster.certificate_authority_data.is_some()
            || cluster.insecure_skip_tls_verify == Some(true)
            || has_client_cert;
        if let Some(server) = cluster.server.as_mut()
            && !server.contains("://")
        {
            let scheme = if tls { "https" } else { "http" };
            *server = format!("{scheme}://{server}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scheme_less_servers_follow_client_go() {
        let mut kc = Kubeconfig::from_yaml(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: local\n  cluster:\n    server: localhost:8080\n\
             - name: tls\n  cluster:\n    server: example:6443\n    certificate-authority-data: Zm9v\n\
             - name: full\n  cluster:\n    server: http://x:1\ncontexts:\n- name: local\n  context:\n    cluster: local\n    user: \"\"\n\
             current-context: local\nusers: []\n",
        )
        .unwrap();
        fix_schemes(&mut kc);
        let servers: Vec<_> = kc
            .clusters
            .iter()
            .map(|c| c.cluster.as_ref().unwrap().server.clone().unwrap())
            .collect();
        assert_eq!(
            servers,
            [
                "http://localhost:8080",
                "https://example:6443",
                "http://x:1"
            ]
        );
    }

    #[tokio::test]
    async fn the_seed_kubeconfig_loads() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config");
        std::fs::write(
            &path,
            "apiVersion: v1\nclusters:\n  - cluster:\n      server: localhost:8080\n    name: localhost\n\
             contexts:\n  - context:\n      cluster: localhost\n      user: \"\"\n    name: localhost\n\
             current-context: localhost\nkind: Config\npreferences: {}\nusers: []\n",
        )
        .unwrap();
        let config = load(&path).await.unwrap();
        assert_eq!(config.cluster_url.to_string(), "http://localhost:8080/");
    }
}
