//! Applies explicitly given flags to the configuration and the flag-only
//! settings, with pflag/cliflag accumulation rules: scalars take the last
//! occurrence; lists and maps replace the file's value with everything given
//! on the command line (feature gates are merged key by key, see `lib.rs`).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use super::values::FlagValue;
use crate::kubelet_flags::KubeletFlags;
use crate::types::KubeletConfiguration;

fn last<'a>(values: &[&'a FlagValue]) -> Option<&'a FlagValue> {
    values.last().copied()
}

fn boolean(values: &[&FlagValue]) -> Option<bool> {
    match last(values) {
        Some(FlagValue::Bool(b)) => Some(*b),
        _ => None,
    }
}

fn int64(values: &[&FlagValue]) -> Option<i64> {
    match last(values) {
        Some(FlagValue::Int(i)) => Some(*i),
        _ => None,
    }
}

/// The parsers already range-checked 32-bit flags; saturate rather than panic.
fn int32(values: &[&FlagValue]) -> Option<i32> {
    int64(values).map(|v| i32::try_from(v).unwrap_or(if v < 0 { i32::MIN } else { i32::MAX }))
}

fn duration(values: &[&FlagValue]) -> Option<Duration> {
    match last(values) {
        Some(FlagValue::Duration(d)) => Some(*d),
        _ => None,
    }
}

fn string(values: &[&FlagValue]) -> Option<String> {
    match last(values) {
        Some(FlagValue::Str(s)) => Some(s.clone()),
        _ => None,
    }
}

fn optional_path(values: &[&FlagValue]) -> Option<Option<PathBuf>> {
    string(values).map(|s| (!s.is_empty()).then(|| PathBuf::from(s)))
}

fn list(values: &[&FlagValue]) -> Vec<String> {
    values
        .iter()
        .flat_map(|v| match v {
            FlagValue::List(items) => items.clone(),
            _ => Vec::new(),
        })
        .collect()
}

fn map(values: &[&FlagValue]) -> BTreeMap<String, String> {
    values
        .iter()
        .flat_map(|v| match v {
            FlagValue::Pairs(pairs) => pairs.clone(),
            _ => Vec::new(),
        })
        .collect()
}

fn multimap(values: &[&FlagValue]) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for value in values {
        if let FlagValue::Multimap(pairs) = value {
            for (key, item) in pairs {
                out.entry(key.clone()).or_default().push(item.clone());
            }
        }
    }
    out
}

fn set<T>(field: &mut T, value: Option<T>) {
    if let Some(value) = value {
        *field = value;
    }
}

/// Applies the occurrences of flag `name` (in command-line order). Returns
/// false for a name this function does not know, which the tests use to keep
/// it in step with the flag table.
pub(crate) fn apply(
    name: &str,
    values: &[&FlagValue],
    c: &mut KubeletConfiguration,
    f: &mut KubeletFlags,
) -> bool {
    let v = values;
    match name {
        // Flag-only settings.
        "bootstrap-kubeconfig" => set(&mut f.bootstrap_kubeconfig, optional_path(v)),
        "cert-dir" => set(&mut f.cert_dir, string(v).map(PathBuf::from)),
        "cloud-provider" => set(&mut f.cloud_provider, string(v)),
        "config" => set(&mut f.config_file, optional_path(v)),
        "config-dir" => set(&mut f.config_dir, optional_path(v)),
        "exit-on-lock-contention" => set(&mut f.exit_on_lock_contention, boolean(v)),
        "experimental-allocatable-ignore-eviction" => {
            set(&mut f.experimental_allocatable_ignore_eviction, boolean(v))
        }
        "experimental-mounter-path" => set(&mut f.experimental_mounter_path, string(v)),
        "hostname-override" => set(
            &mut f.hostname_override,
            string(v).map(|s| (!s.is_empty()).then_some(s)),
        ),
        "image-credential-provider-bin-dir" => {
            set(&mut f.image_credential_provider_bin_dir, optional_path(v))
        }
        "image-credential-provider-config" => {
            set(&mut f.image_credential_provider_config, optional_path(v))
        }
        "kubeconfig" => set(&mut f.kubeconfig, optional_path(v)),
        "lock-file" => set(&mut f.lock_file, optional_path(v)),
        "maximum-dead-containers" => set(&mut f.maximum_dead_containers, int32(v)),
        "maximum-dead-containers-per-container" => {
            set(&mut f.maximum_dead_containers_per_container, int32(v))
        }
        "minimum-container-ttl-duration" => set(&mut f.minimum_container_ttl_duration, duration(v)),
        // `node-ip` is validated and parsed in `validate`, with the other flags.
        "node-ip" => {}
        "node-labels" => f.node_labels.extend(map(v)),
        "pod-infra-container-image" => set(
            &mut f.pod_infra_container_image,
            string(v).map(|s| (!s.is_empty()).then_some(s)),
        ),
        "root-dir" => set(&mut f.root_dir, string(v).map(PathBuf::from)),
        "runtime-cgroups" => set(&mut f.runtime_cgroups, string(v)),
        "runtime-class-handlers" => f.runtime_class_handlers.extend(map(v)),
        "seccomp-default" => set(&mut f.seccomp_default, boolean(v)),
        "version" => {}

        // Logging (not deprecated upstream).
        "v" => set(
            &mut c.logging.verbosity,
            int64(v).map(|l| u32::try_from(l).unwrap_or(u32::MAX)),
        ),
        "vmodule" => {
            c.logging.vmodule = values
                .iter()
                .flat_map(|v| match v {
                    FlagValue::VModule(items) => items.clone(),
                    _ => Vec::new(),
                })
                .collect();
        }
        "log-flush-frequency" => set(&mut c.logging.flush_frequency, duration(v)),
        "logging-format" => set(&mut c.logging.format, string(v)),
        "log-json-info-buffer-size" => set(&mut c.logging.options.json.info_buffer_size, string(v)),
        "log-json-split-stream" => set(&mut c.logging.options.json.split_stream, boolean(v)),
        "log-text-info-buffer-size" => set(&mut c.logging.options.text.info_buffer_size, string(v)),
        "log-text-split-stream" => set(&mut c.logging.options.text.split_stream, boolean(v)),

        // KubeletConfiguration fields.
        "address" => set(&mut c.address, string(v)),
        "allowed-unsafe-sysctls" => c.allowed_unsafe_sysctls = list(v),
        "anonymous-auth" => set(&mut c.authentication.anonymous.enabled, boolean(v)),
        "authentication-token-webhook" => set(&mut c.authentication.webhook.enabled, boolean(v)),
        "authentication-token-webhook-cache-ttl" => {
            set(&mut c.authentication.webhook.cache_ttl, duration(v))
        }
        "authorization-mode" => set(&mut c.authorization.mode, string(v)),
        "authorization-webhook-cache-authorized-ttl" => set(
            &mut c.authorization.webhook.cache_authorized_ttl,
            duration(v),
        ),
        "authorization-webhook-cache-unauthorized-ttl" => set(
            &mut c.authorization.webhook.cache_unauthorized_ttl,
            duration(v),
        ),
        "cgroup-driver" => set(&mut c.cgroup_driver, string(v)),
        "cgroup-root" => set(&mut c.cgroup_root, string(v)),
        "cgroups-per-qos" => set(&mut c.cgroups_per_qos, boolean(v)),
        "client-ca-file" => set(&mut c.authentication.x509.client_ca_file, string(v)),
        "cluster-dns" => c.cluster_dns = list(v),
        "cluster-domain" => set(&mut c.cluster_domain, string(v)),
        "container-log-max-files" => set(&mut c.container_log_max_files, int32(v)),
        "container-log-max-size" => set(&mut c.container_log_max_size, string(v)),
        "container-runtime-endpoint" => set(&mut c.container_runtime_endpoint, string(v)),
        "contention-profiling" => set(&mut c.enable_contention_profiling, boolean(v)),
        "cpu-cfs-quota" => set(&mut c.cpu_cfs_quota, boolean(v)),
        "cpu-cfs-quota-period" => set(&mut c.cpu_cfs_quota_period, duration(v)),
        "cpu-manager-policy" => set(&mut c.cpu_manager_policy, string(v)),
        "cpu-manager-policy-options" => c.cpu_manager_policy_options = map(v),
        "cpu-manager-reconcile-period" => set(&mut c.cpu_manager_reconcile_period, duration(v)),
        "enable-controller-attach-detach" => {
            set(&mut c.enable_controller_attach_detach, boolean(v))
        }
        "enable-debugging-handlers" => set(&mut c.enable_debugging_handlers, boolean(v)),
        "enable-server" => set(&mut c.enable_server, boolean(v)),
        "enforce-node-allocatable" => c.enforce_node_allocatable = list(v),
        "event-burst" => set(&mut c.event_burst, int32(v)),
        "event-qps" => set(&mut c.event_record_qps, int32(v)),
        "eviction-hard" => c.eviction_hard = map(v),
        "eviction-max-pod-grace-period" => set(&mut c.eviction_max_pod_grace_period, int32(v)),
        "eviction-minimum-reclaim" => c.eviction_minimum_reclaim = map(v),
        "eviction-pressure-transition-period" => {
            set(&mut c.eviction_pressure_transition_period, duration(v))
        }
        "eviction-soft" => c.eviction_soft = map(v),
        "eviction-soft-grace-period" => c.eviction_soft_grace_period = map(v),
        "fail-cgroupv1" => set(&mut c.fail_cgroup_v1, boolean(v)),
        "fail-swap-on" => set(&mut c.fail_swap_on, boolean(v)),
        "feature-gates" => {
            for value in values {
                if let FlagValue::BoolPairs(pairs) = value {
                    c.feature_gates.extend(pairs.iter().cloned());
                }
            }
        }
        "file-check-frequency" => set(&mut c.file_check_frequency, duration(v)),
        "hairpin-mode" => set(&mut c.hairpin_mode, string(v)),
        "healthz-bind-address" => set(&mut c.healthz_bind_address, string(v)),
        "healthz-port" => set(&mut c.healthz_port, int32(v)),
        "http-check-frequency" => set(&mut c.http_check_frequency, duration(v)),
        "image-gc-high-threshold" => set(&mut c.image_gc_high_threshold_percent, int32(v)),
        "image-gc-low-threshold" => set(&mut c.image_gc_low_threshold_percent, int32(v)),
        "image-service-endpoint" => set(&mut c.image_service_endpoint, string(v)),
        "kernel-memcg-notification" => set(&mut c.kernel_memcg_notification, boolean(v)),
        "kube-api-burst" => set(&mut c.kube_api_burst, int32(v)),
        "kube-api-content-type" => set(&mut c.content_type, string(v)),
        "kube-api-qps" => set(&mut c.kube_api_qps, int32(v)),
        "kube-reserved" => c.kube_reserved = map(v),
        "kube-reserved-cgroup" => set(&mut c.kube_reserved_cgroup, string(v)),
        "kubelet-cgroups" => set(&mut c.kubelet_cgroups, string(v)),
        "local-storage-capacity-isolation" => {
            set(&mut c.local_storage_capacity_isolation, boolean(v))
        }
        "make-iptables-util-chains" => set(&mut c.make_ip_tables_util_chains, boolean(v)),
        "manifest-url" => set(&mut c.static_pod_url, string(v)),
        "manifest-url-header" => c.static_pod_url_header = multimap(v),
        "max-open-files" => set(&mut c.max_open_files, int64(v)),
        "max-pods" => set(&mut c.max_pods, int32(v)),
        "memory-manager-policy" => set(&mut c.memory_manager_policy, string(v)),
        "minimum-image-ttl-duration" => set(&mut c.image_minimum_gc_age, duration(v)),
        "node-status-max-images" => set(&mut c.node_status_max_images, int32(v)),
        "node-status-update-frequency" => set(&mut c.node_status_update_frequency, duration(v)),
        "oom-score-adj" => set(&mut c.oom_score_adj, int32(v)),
        "pod-cidr" => set(&mut c.pod_cidr, string(v)),
        "pod-manifest-path" => set(&mut c.static_pod_path, string(v)),
        "pod-max-pids" => set(&mut c.pod_pids_limit, int64(v)),
        "pods-per-core" => set(&mut c.pods_per_core, int32(v)),
        "port" => set(&mut c.port, int32(v)),
        "protect-kernel-defaults" => set(&mut c.protect_kernel_defaults, boolean(v)),
        "provider-id" => set(&mut c.provider_id, string(v)),
        "qos-reserved" => c.qos_reserved = map(v),
        "read-only-port" => set(&mut c.read_only_port, int32(v)),
        "register-node" => set(&mut c.register_node, boolean(v)),
        "register-with-taints" => {
            // Each occurrence replaces the list, as upstream's RegisterWithTaintsVar does.
            if let Some(FlagValue::Taints(taints)) = last(v) {
                c.register_with_taints = taints.clone();
            }
        }
        "registry-burst" => set(&mut c.registry_burst, int32(v)),
        "registry-qps" => set(&mut c.registry_pull_qps, int32(v)),
        "reserved-cpus" => set(&mut c.reserved_system_cpus, string(v)),
        "reserved-memory" => {
            c.reserved_memory = values
                .iter()
                .flat_map(|v| match v {
                    FlagValue::Reservations(r) => r.clone(),
                    _ => Vec::new(),
                })
                .collect();
        }
        "resolv-conf" => set(&mut c.resolv_conf, string(v)),
        "rotate-certificates" => set(&mut c.rotate_certificates, boolean(v)),
        "rotate-server-certificates" => set(&mut c.server_tls_bootstrap, boolean(v)),
        "runonce" => set(&mut c.run_once, boolean(v)),
        "runtime-request-timeout" => set(&mut c.runtime_request_timeout, duration(v)),
        "serialize-image-pulls" => set(&mut c.serialize_image_pulls, boolean(v)),
        "streaming-connection-idle-timeout" => {
            set(&mut c.streaming_connection_idle_timeout, duration(v))
        }
        "sync-frequency" => set(&mut c.sync_frequency, duration(v)),
        "system-cgroups" => set(&mut c.system_cgroups, string(v)),
        "system-reserved" => c.system_reserved = map(v),
        "system-reserved-cgroup" => set(&mut c.system_reserved_cgroup, string(v)),
        "tls-cert-file" => set(&mut c.tls_cert_file, string(v)),
        "tls-cipher-suites" => c.tls_cipher_suites = list(v),
        "tls-min-version" => set(&mut c.tls_min_version, string(v)),
        "tls-private-key-file" => set(&mut c.tls_private_key_file, string(v)),
        "topology-manager-policy" => set(&mut c.topology_manager_policy, string(v)),
        "topology-manager-policy-options" => c.topology_manager_policy_options = map(v),
        "topology-manager-scope" => set(&mut c.topology_manager_scope, string(v)),
        "volume-plugin-dir" => set(&mut c.volume_plugin_dir, string(v)),
        "volume-stats-agg-period" => set(&mut c.volume_stats_agg_period, duration(v)),
        _ => return false,
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flags::spec::FLAGS;

    #[test]
    fn every_flag_in_the_table_is_applied() {
        let mut c = KubeletConfiguration::default();
        let mut f = KubeletFlags::default();
        for spec in FLAGS {
            assert!(
                apply(spec.name, &[], &mut c, &mut f),
                "--{} is not applied",
                spec.name
            );
        }
        assert!(!apply("no-such-flag", &[], &mut c, &mut f));
    }

    #[test]
    fn scalars_take_the_last_value_and_lists_accumulate() {
        let mut c = KubeletConfiguration::default();
        let mut f = KubeletFlags::default();
        apply(
            "max-pods",
            &[&FlagValue::Int(10), &FlagValue::Int(20)],
            &mut c,
            &mut f,
        );
        assert_eq!(c.max_pods, 20);
        let a = FlagValue::List(vec!["10.0.0.10".into()]);
        let b = FlagValue::List(vec!["10.0.0.11".into()]);
        apply("cluster-dns", &[&a, &b], &mut c, &mut f);
        assert_eq!(c.cluster_dns, ["10.0.0.10", "10.0.0.11"]);
    }

    #[test]
    fn empty_path_flags_mean_unset() {
        let mut c = KubeletConfiguration::default();
        let mut f = KubeletFlags::default();
        apply(
            "kubeconfig",
            &[&FlagValue::Str(String::new())],
            &mut c,
            &mut f,
        );
        assert_eq!(f.kubeconfig, None);
        apply(
            "kubeconfig",
            &[&FlagValue::Str("/k".into())],
            &mut c,
            &mut f,
        );
        assert_eq!(f.kubeconfig, Some(PathBuf::from("/k")));
    }
}
