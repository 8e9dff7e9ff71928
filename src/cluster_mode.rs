//! Cluster mode wiring (`--kubeconfig`): builds the cluster client and its loops from the
//! settings; see crates/cluster and docs/cluster-mode.md.

use std::net::IpAddr;

use kubelet_cluster::node::capacity::Reservations;
use kubelet_cluster::node::register::Registration;
use kubelet_cluster::{Cluster, ClusterSettings, NodeSettings};
use kubelet_config::{KubeletConfiguration, KubeletFlags};
use tokio_util::sync::CancellationToken;

/// Connect when `--kubeconfig` is given (not in `--runonce` mode, which only runs the
/// static pods). The API server need not be up: everything retries.
pub async fn connect(
    flags: &KubeletFlags,
    config: &KubeletConfiguration,
    reservations: &kubelet_core::cm::node::Reservations,
    node_name: &str,
    host_ips: &[String],
    shutdown: &CancellationToken,
) -> anyhow::Result<Option<Cluster>> {
    let Some(kubeconfig) = flags.kubeconfig.clone() else {
        return Ok(None);
    };
    if flags.runonce {
        tracing::info!("--runonce: the API server is not used");
        return Ok(None);
    }
    if let Some(bootstrap) = &flags.bootstrap_kubeconfig {
        kubelet_cluster::bootstrap::ensure(
            &kubeconfig,
            bootstrap,
            &flags.cert_dir,
            node_name,
            shutdown,
        )
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    let hostname = flags
        .hostname_override
        .clone()
        .filter(|h| !h.is_empty())
        .map(|h| h.to_lowercase())
        .unwrap_or_else(|| node_name.to_string());
    let settings = ClusterSettings {
        kubeconfig: kubeconfig.clone(),
        node: NodeSettings {
            registration: Registration {
                node_name: node_name.to_string(),
                hostname,
                node_labels: flags.node_labels.clone(),
                taints: config
                    .register_with_taints
                    .iter()
                    .map(|t| k8s_openapi::api::core::v1::Taint {
                        key: t.key.clone(),
                        value: Some(t.value.clone()).filter(|v| !v.is_empty()),
                        effect: t.effect.clone(),
                        time_added: None,
                    })
                    .collect(),
                provider_id: config.provider_id.clone(),
            },
            register_node: config.register_node,
            node_ips: node_ips(&flags.node_ip, host_ips),
            kubelet_port: config.port,
            update_frequency: config.node_status_update_frequency,
            report_frequency: config.node_status_report_frequency,
            lease_duration_seconds: config.node_lease_duration_seconds,
            max_images: config.node_status_max_images,
            reservations: Reservations {
                max_pods: i64::from(config.max_pods),
                node: reservations.clone(),
            },
            root_dir: flags.root_dir.clone(),
        },
        kube_api_qps: f64::from(config.kube_api_qps),
        kube_api_burst: config.kube_api_burst.max(0) as u32,
        event_qps: f64::from(config.event_record_qps),
        event_burst: config.event_burst.max(0) as u32,
        // Only a certificate this kubelet bootstrapped (in --cert-dir) is rotated.
        rotate_in: (flags.bootstrap_kubeconfig.is_some()
            && config.rotate_certificates
            && flags
                .cert_dir
                .join(kubelet_cluster::bootstrap::CURRENT)
                .exists())
        .then(|| flags.cert_dir.clone()),
        serving_cert_dir: config.server_tls_bootstrap.then(|| flags.cert_dir.clone()),
    };
    tracing::info!(kubeconfig = %kubeconfig.display(), node = %node_name, "cluster mode: connecting to the API server");
    let cluster = Cluster::connect(settings, shutdown.clone())
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(Some(cluster))
}

/// The node's addresses: `--node-ip` when given, else the detected ones.
fn node_ips(flag: &[IpAddr], detected: &[String]) -> Vec<String> {
    if !flag.is_empty() && !flag.iter().all(|ip| ip.is_unspecified()) {
        flag.iter().map(|ip| ip.to_string()).collect()
    } else {
        detected.to_vec()
    }
}
