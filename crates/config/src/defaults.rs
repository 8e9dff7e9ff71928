//! Upstream defaults (pkg/kubelet/apis/config/v1beta1/defaults.go, v1.35).
//!
//! Defaulting happens in stages, mirroring upstream's order:
//! 1. `Default` impls: the value of every field absent from the file (what
//!    upstream does for nil pointers and zero values);
//! 2. [`apply_zero_value_defaults`]: non-pointer fields written as zero in the
//!    file (`port: 0`, `syncFrequency: 0s`) also get their default, as in Go;
//! 3. [`apply_presence_defaults`]: defaults that depend on which other fields
//!    the file sets;
//! 4. [`apply_legacy_flag_defaults`]: only without a config file, the four
//!    command-line-era defaults that differ from the file's;
//! 5. [`apply_post_flag_defaults`]: defaults that depend on the final feature
//!    gates, computed after command-line flags were applied.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::Value;

use crate::feature_gates;
use crate::types::*;

pub const DEFAULT_ROOT_DIR: &str = "/var/lib/kubelet";
pub const DEFAULT_CERT_DIR: &str = "/var/lib/kubelet/pki";
pub const DEFAULT_POD_LOGS_DIR: &str = "/var/log/pods";
pub const DEFAULT_CONTAINER_RUNTIME_ENDPOINT: &str = "unix:///run/containerd/containerd.sock";
pub const DEFAULT_VOLUME_PLUGIN_DIR: &str = "/usr/libexec/kubernetes/kubelet-plugins/volume/exec/";
pub const DEFAULT_RESOLV_CONF: &str = "/etc/resolv.conf";
/// The read-only port used when no config file is given (`--read-only-port`).
pub const LEGACY_READ_ONLY_PORT: i32 = 10255;
/// Upstream's internal crash-loop back-off ceiling.
pub const MAX_CONTAINER_BACK_OFF: Duration = Duration::from_secs(300);

const fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// Linux hard-eviction defaults, as reported by upstream's `/configz`.
pub fn default_eviction_hard() -> BTreeMap<String, String> {
    [
        ("imagefs.available", "15%"),
        ("imagefs.inodesFree", "5%"),
        ("memory.available", "100Mi"),
        ("nodefs.available", "10%"),
        ("nodefs.inodesFree", "5%"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

impl Default for KubeletConfiguration {
    fn default() -> Self {
        Self {
            kind: KIND.to_string(),
            api_version: API_VERSION.to_string(),
            enable_server: true,
            static_pod_path: String::new(),
            pod_logs_dir: DEFAULT_POD_LOGS_DIR.to_string(),
            sync_frequency: secs(60),
            file_check_frequency: secs(20),
            http_check_frequency: secs(20),
            static_pod_url: String::new(),
            static_pod_url_header: BTreeMap::new(),
            address: "0.0.0.0".to_string(),
            port: 10250,
            read_only_port: 0,
            tls_cert_file: String::new(),
            tls_private_key_file: String::new(),
            tls_cipher_suites: Vec::new(),
            tls_curve_preferences: Vec::new(),
            tls_min_version: String::new(),
            rotate_certificates: false,
            server_tls_bootstrap: false,
            authentication: KubeletAuthentication::default(),
            authorization: KubeletAuthorization::default(),
            registry_pull_qps: 5,
            registry_burst: 10,
            image_pull_credentials_verification_policy: String::new(),
            preloaded_images_verification_allowlist: Vec::new(),
            event_record_qps: 50,
            event_burst: 100,
            enable_debugging_handlers: true,
            enable_contention_profiling: false,
            healthz_port: 10248,
            healthz_bind_address: "127.0.0.1".to_string(),
            oom_score_adj: -999,
            cluster_domain: String::new(),
            cluster_dns: Vec::new(),
            streaming_connection_idle_timeout: secs(4 * 3600),
            node_status_update_frequency: secs(10),
            node_status_report_frequency: secs(5 * 60),
            node_lease_duration_seconds: 40,
            image_minimum_gc_age: secs(120),
            image_maximum_gc_age: Duration::ZERO,
            image_gc_high_threshold_percent: 85,
            image_gc_low_threshold_percent: 80,
            volume_stats_agg_period: secs(60),
            kubelet_cgroups: String::new(),
            system_cgroups: String::new(),
            cgroup_root: String::new(),
            cgroups_per_qos: true,
            cgroup_driver: "cgroupfs".to_string(),
            cpu_manager_policy: "none".to_string(),
            single_process_oom_kill: None,
            cpu_manager_policy_options: BTreeMap::new(),
            cpu_manager_reconcile_period: secs(10),
            dra_manager_reconcile_period: None,
            memory_manager_policy: "None".to_string(),
            topology_manager_policy: "none".to_string(),
            topology_manager_scope: "container".to_string(),
            topology_manager_policy_options: BTreeMap::new(),
            qos_reserved: BTreeMap::new(),
            runtime_request_timeout: secs(120),
            hairpin_mode: "promiscuous-bridge".to_string(),
            max_pods: 110,
            pod_cidr: String::new(),
            pod_pids_limit: -1,
            resolv_conf: DEFAULT_RESOLV_CONF.to_string(),
            run_once: false,
            cpu_cfs_quota: true,
            cpu_cfs_quota_period: Duration::from_millis(100),
            node_status_max_images: 50,
            max_open_files: 1_000_000,
            content_type: "application/vnd.kubernetes.protobuf".to_string(),
            kube_api_qps: 50,
            kube_api_burst: 100,
            serialize_image_pulls: true,
            max_parallel_image_pulls: None,
            eviction_hard: default_eviction_hard(),
            eviction_soft: BTreeMap::new(),
            eviction_soft_grace_period: BTreeMap::new(),
            eviction_pressure_transition_period: secs(5 * 60),
            eviction_max_pod_grace_period: 0,
            eviction_minimum_reclaim: BTreeMap::new(),
            merge_default_eviction_settings: false,
            pods_per_core: 0,
            enable_controller_attach_detach: true,
            protect_kernel_defaults: false,
            make_ip_tables_util_chains: true,
            iptables_masquerade_bit: 14,
            iptables_drop_bit: 15,
            feature_gates: BTreeMap::new(),
            fail_swap_on: true,
            memory_swap: MemorySwapConfiguration::default(),
            container_log_max_size: "10Mi".to_string(),
            container_log_max_files: 5,
            container_log_max_workers: 1,
            container_log_monitor_interval: secs(10),
            config_map_and_secret_change_detection_strategy: "Watch".to_string(),
            system_reserved: BTreeMap::new(),
            kube_reserved: BTreeMap::new(),
            reserved_system_cpus: String::new(),
            show_hidden_metrics_for_version: String::new(),
            system_reserved_cgroup: String::new(),
            kube_reserved_cgroup: String::new(),
            enforce_node_allocatable: vec!["pods".to_string()],
            allowed_unsafe_sysctls: Vec::new(),
            volume_plugin_dir: DEFAULT_VOLUME_PLUGIN_DIR.to_string(),
            provider_id: String::new(),
            kernel_memcg_notification: false,
            logging: LoggingConfiguration::default(),
            enable_system_log_handler: true,
            enable_system_log_query: None,
            shutdown_grace_period: Duration::ZERO,
            shutdown_grace_period_critical_pods: Duration::ZERO,
            shutdown_grace_period_by_pod_priority: Vec::new(),
            crash_loop_back_off: CrashLoopBackOffConfig::default(),
            reserved_memory: Vec::new(),
            enable_profiling_handler: true,
            enable_debug_flags_handler: true,
            seccomp_default: false,
            memory_throttling_factor: 0.9,
            memory_reservation_policy: None,
            register_with_taints: Vec::new(),
            register_node: true,
            tracing: None,
            local_storage_capacity_isolation: true,
            container_runtime_endpoint: DEFAULT_CONTAINER_RUNTIME_ENDPOINT.to_string(),
            image_service_endpoint: String::new(),
            fail_cgroup_v1: true,
            user_namespaces: None,
            pod_housekeeping_period: None,
        }
    }
}

impl Default for KubeletWebhookAuthentication {
    fn default() -> Self {
        Self {
            enabled: true,
            cache_ttl: secs(120),
        }
    }
}

impl Default for KubeletAuthorization {
    fn default() -> Self {
        Self {
            mode: "Webhook".to_string(),
            webhook: KubeletWebhookAuthorization::default(),
        }
    }
}

impl Default for KubeletWebhookAuthorization {
    fn default() -> Self {
        Self {
            cache_authorized_ttl: secs(5 * 60),
            cache_unauthorized_ttl: secs(30),
        }
    }
}

impl Default for LoggingConfiguration {
    fn default() -> Self {
        Self {
            format: "text".to_string(),
            flush_frequency: secs(5),
            verbosity: 0,
            vmodule: Vec::new(),
            options: FormatOptions::default(),
        }
    }
}

impl Default for OutputRoutingOptions {
    fn default() -> Self {
        Self {
            split_stream: false,
            info_buffer_size: "0".to_string(),
        }
    }
}

fn default_if_zero<T: PartialEq + Default>(field: &mut T, default: T) {
    if *field == T::default() {
        *field = default;
    }
}

/// Stage 2: upstream defaults non-pointer fields that hold their zero value.
pub fn apply_zero_value_defaults(c: &mut KubeletConfiguration) {
    let d = KubeletConfiguration::default();
    default_if_zero(&mut c.sync_frequency, d.sync_frequency);
    default_if_zero(&mut c.file_check_frequency, d.file_check_frequency);
    default_if_zero(&mut c.http_check_frequency, d.http_check_frequency);
    default_if_zero(&mut c.address, d.address);
    default_if_zero(&mut c.port, d.port);
    default_if_zero(
        &mut c.authentication.webhook.cache_ttl,
        d.authentication.webhook.cache_ttl,
    );
    default_if_zero(&mut c.authorization.mode, d.authorization.mode);
    default_if_zero(
        &mut c.authorization.webhook.cache_authorized_ttl,
        d.authorization.webhook.cache_authorized_ttl,
    );
    default_if_zero(
        &mut c.authorization.webhook.cache_unauthorized_ttl,
        d.authorization.webhook.cache_unauthorized_ttl,
    );
    default_if_zero(&mut c.registry_burst, d.registry_burst);
    default_if_zero(&mut c.event_burst, d.event_burst);
    default_if_zero(&mut c.healthz_bind_address, d.healthz_bind_address);
    default_if_zero(
        &mut c.streaming_connection_idle_timeout,
        d.streaming_connection_idle_timeout,
    );
    default_if_zero(
        &mut c.node_status_update_frequency,
        d.node_status_update_frequency,
    );
    default_if_zero(
        &mut c.node_lease_duration_seconds,
        d.node_lease_duration_seconds,
    );
    default_if_zero(&mut c.image_minimum_gc_age, d.image_minimum_gc_age);
    default_if_zero(&mut c.volume_stats_agg_period, d.volume_stats_agg_period);
    default_if_zero(&mut c.cgroup_driver, d.cgroup_driver);
    default_if_zero(&mut c.cpu_manager_policy, d.cpu_manager_policy);
    default_if_zero(
        &mut c.cpu_manager_reconcile_period,
        d.cpu_manager_reconcile_period,
    );
    default_if_zero(&mut c.memory_manager_policy, d.memory_manager_policy);
    default_if_zero(&mut c.topology_manager_policy, d.topology_manager_policy);
    default_if_zero(&mut c.topology_manager_scope, d.topology_manager_scope);
    default_if_zero(&mut c.runtime_request_timeout, d.runtime_request_timeout);
    default_if_zero(&mut c.hairpin_mode, d.hairpin_mode);
    default_if_zero(&mut c.max_pods, d.max_pods);
    if c.pod_pids_limit < 0 {
        c.pod_pids_limit = -1;
    }
    default_if_zero(&mut c.max_open_files, d.max_open_files);
    default_if_zero(&mut c.content_type, d.content_type);
    default_if_zero(&mut c.kube_api_burst, d.kube_api_burst);
    default_if_zero(
        &mut c.eviction_pressure_transition_period,
        d.eviction_pressure_transition_period,
    );
    default_if_zero(&mut c.container_log_max_size, d.container_log_max_size);
    default_if_zero(
        &mut c.config_map_and_secret_change_detection_strategy,
        d.config_map_and_secret_change_detection_strategy,
    );
    default_if_zero(&mut c.volume_plugin_dir, d.volume_plugin_dir);
    default_if_zero(&mut c.logging.format, d.logging.format);
    default_if_zero(&mut c.logging.flush_frequency, d.logging.flush_frequency);
    for options in [&mut c.logging.options.text, &mut c.logging.options.json] {
        default_if_zero(&mut options.info_buffer_size, "0".to_string());
    }
    default_if_zero(
        &mut c.container_runtime_endpoint,
        d.container_runtime_endpoint,
    );
    default_if_zero(&mut c.pod_logs_dir, d.pod_logs_dir);
}

/// True when `doc` sets the field at `pointer` to something other than null.
fn is_set(doc: &Value, pointer: &str) -> bool {
    doc.pointer(pointer).is_some_and(|v| !v.is_null())
}

/// True when `doc` sets the duration at `pointer` to a non-zero value.
fn is_set_nonzero_duration(doc: &Value, pointer: &str) -> bool {
    doc.pointer(pointer)
        .and_then(Value::as_str)
        .and_then(|text| crate::go_duration::parse(text).ok())
        .is_some_and(|d| !d.is_zero())
}

/// Stage 3: defaults that depend on what the (merged) config document sets.
pub fn apply_presence_defaults(c: &mut KubeletConfiguration, doc: &Value) {
    // nodeStatusReportFrequency follows an explicitly set nodeStatusUpdateFrequency.
    if !is_set_nonzero_duration(doc, "/nodeStatusReportFrequency") {
        c.node_status_report_frequency =
            if is_set_nonzero_duration(doc, "/nodeStatusUpdateFrequency") {
                c.node_status_update_frequency
            } else {
                secs(5 * 60)
            };
    }
    // serializeImagePulls defaults to false when parallel pulls are configured.
    if !is_set(doc, "/serializeImagePulls") {
        c.serialize_image_pulls = c.max_parallel_image_pulls.is_none_or(|n| n < 2);
    }
}

/// Stage 4: without `--config`, upstream starts from these command-line
/// defaults instead of the file defaults (cmd/kubelet `applyLegacyDefaults`).
/// Fields that a `--config-dir` drop-in (`doc`) sets are left alone.
pub fn apply_legacy_flag_defaults(c: &mut KubeletConfiguration, doc: &Value) {
    if !is_set(doc, "/authentication/anonymous/enabled") {
        c.authentication.anonymous.enabled = true;
    }
    if !is_set(doc, "/authentication/webhook/enabled") {
        c.authentication.webhook.enabled = false;
    }
    if doc
        .pointer("/authorization/mode")
        .and_then(Value::as_str)
        .is_none_or(str::is_empty)
    {
        c.authorization.mode = "AlwaysAllow".to_string();
    }
    if !is_set(doc, "/readOnlyPort") {
        c.read_only_port = LEGACY_READ_ONLY_PORT;
    }
}

/// Stage 5: defaults that depend on the final feature gates, and the
/// `mergeDefaultEvictionSettings` merge.
pub fn apply_post_flag_defaults(c: &mut KubeletConfiguration) {
    if feature_gates::enabled(
        &c.feature_gates,
        feature_gates::KUBELET_ENSURE_SECRET_PULLED_IMAGES,
    ) && c.image_pull_credentials_verification_policy.is_empty()
    {
        c.image_pull_credentials_verification_policy = "NeverVerifyPreloadedImages".to_string();
    }
    if feature_gates::enabled(
        &c.feature_gates,
        feature_gates::KUBELET_CRASH_LOOP_BACK_OFF_MAX,
    ) && c.crash_loop_back_off.max_container_restart_period.is_none()
    {
        c.crash_loop_back_off.max_container_restart_period = Some(MAX_CONTAINER_BACK_OFF);
    }
    if c.merge_default_eviction_settings {
        for (signal, threshold) in default_eviction_hard() {
            c.eviction_hard.entry(signal).or_insert(threshold);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn file_defaults_match_upstream() {
        let c = KubeletConfiguration::default();
        assert!(c.enable_server);
        assert_eq!(c.sync_frequency, secs(60));
        assert_eq!(c.file_check_frequency, secs(20));
        assert_eq!(c.http_check_frequency, secs(20));
        assert_eq!(c.address, "0.0.0.0");
        assert_eq!(c.port, 10250);
        assert_eq!(c.read_only_port, 0);
        assert_eq!(c.healthz_port, 10248);
        assert_eq!(c.healthz_bind_address, "127.0.0.1");
        assert_eq!(
            c.container_runtime_endpoint,
            DEFAULT_CONTAINER_RUNTIME_ENDPOINT
        );
        assert_eq!(c.runtime_request_timeout, secs(120));
        assert_eq!(c.pod_logs_dir, "/var/log/pods");
        assert_eq!(c.max_pods, 110);
        assert_eq!(c.cgroup_driver, "cgroupfs");
        assert!(c.cgroups_per_qos);
        assert_eq!(c.cgroup_root, "");
        assert_eq!(c.cluster_domain, "");
        assert_eq!(c.resolv_conf, "/etc/resolv.conf");
        assert!(c.serialize_image_pulls);
        assert_eq!(c.image_gc_high_threshold_percent, 85);
        assert_eq!(c.image_gc_low_threshold_percent, 80);
        assert_eq!(c.image_minimum_gc_age, secs(120));
        assert_eq!(c.container_log_max_size, "10Mi");
        assert_eq!(c.container_log_max_files, 5);
        assert_eq!(
            c.eviction_hard.get("memory.available").map(String::as_str),
            Some("100Mi")
        );
        assert_eq!(c.eviction_hard.len(), 5);
        assert_eq!(c.node_status_update_frequency, secs(10));
        assert_eq!(c.node_status_report_frequency, secs(300));
        assert_eq!(c.node_lease_duration_seconds, 40);
        assert!(c.cpu_cfs_quota);
        assert_eq!(c.cpu_cfs_quota_period, Duration::from_millis(100));
        assert_eq!(c.pod_pids_limit, -1);
        assert!(c.register_node);
        assert!(!c.authentication.anonymous.enabled);
        assert!(c.authentication.webhook.enabled);
        assert_eq!(c.authorization.mode, "Webhook");
        assert_eq!(c.kube_api_qps, 50);
        assert_eq!(c.kube_api_burst, 100);
        assert_eq!(c.hairpin_mode, "promiscuous-bridge");
        assert_eq!(c.max_parallel_image_pulls, None);
        assert!(c.fail_cgroup_v1);
        assert_eq!(c.logging.format, "text");
    }

    #[test]
    fn zero_values_take_defaults_but_pointer_fields_keep_zero() {
        let mut c = KubeletConfiguration {
            port: 0,
            sync_frequency: Duration::ZERO,
            address: String::new(),
            max_pods: 0,
            healthz_port: 0,
            read_only_port: 0,
            pod_pids_limit: -7,
            ..KubeletConfiguration::default()
        };
        apply_zero_value_defaults(&mut c);
        assert_eq!(c.port, 10250);
        assert_eq!(c.sync_frequency, secs(60));
        assert_eq!(c.address, "0.0.0.0");
        assert_eq!(c.max_pods, 110);
        assert_eq!(
            c.healthz_port, 0,
            "healthzPort is a pointer upstream: 0 disables"
        );
        assert_eq!(c.read_only_port, 0);
        assert_eq!(c.pod_pids_limit, -1);
    }

    #[test]
    fn report_frequency_follows_explicit_update_frequency() {
        let mut c = KubeletConfiguration {
            node_status_update_frequency: secs(20),
            ..KubeletConfiguration::default()
        };
        apply_presence_defaults(&mut c, &json!({"nodeStatusUpdateFrequency": "20s"}));
        assert_eq!(c.node_status_report_frequency, secs(20));

        let mut c = KubeletConfiguration::default();
        apply_presence_defaults(&mut c, &json!({}));
        assert_eq!(c.node_status_report_frequency, secs(300));
    }

    #[test]
    fn serialize_image_pulls_depends_on_parallel_pulls() {
        let mut c = KubeletConfiguration {
            max_parallel_image_pulls: Some(4),
            ..KubeletConfiguration::default()
        };
        apply_presence_defaults(&mut c, &json!({"maxParallelImagePulls": 4}));
        assert!(!c.serialize_image_pulls);

        let mut c = KubeletConfiguration {
            max_parallel_image_pulls: Some(4),
            ..KubeletConfiguration::default()
        };
        apply_presence_defaults(
            &mut c,
            &json!({"maxParallelImagePulls": 4, "serializeImagePulls": true}),
        );
        assert!(c.serialize_image_pulls, "explicit value wins");
    }

    #[test]
    fn legacy_defaults_only_fill_unset_fields() {
        let mut c = KubeletConfiguration::default();
        apply_legacy_flag_defaults(&mut c, &json!({}));
        assert!(c.authentication.anonymous.enabled);
        assert!(!c.authentication.webhook.enabled);
        assert_eq!(c.authorization.mode, "AlwaysAllow");
        assert_eq!(c.read_only_port, 10255);

        let mut c = KubeletConfiguration::default();
        apply_legacy_flag_defaults(
            &mut c,
            &json!({"readOnlyPort": 0, "authorization": {"mode": "Webhook"}}),
        );
        assert_eq!(c.read_only_port, 0);
        assert_eq!(c.authorization.mode, "Webhook");
    }

    #[test]
    fn post_flag_defaults_follow_feature_gates_and_eviction_merge() {
        let mut c = KubeletConfiguration {
            eviction_hard: [("memory.available".to_string(), "1Gi".to_string())].into(),
            merge_default_eviction_settings: true,
            ..KubeletConfiguration::default()
        };
        apply_post_flag_defaults(&mut c);
        assert_eq!(
            c.image_pull_credentials_verification_policy,
            "NeverVerifyPreloadedImages"
        );
        assert_eq!(c.crash_loop_back_off.max_container_restart_period, None);
        assert_eq!(
            c.eviction_hard.get("memory.available").map(String::as_str),
            Some("1Gi")
        );
        assert_eq!(c.eviction_hard.len(), 5);

        let mut c = KubeletConfiguration::default();
        c.feature_gates
            .insert(feature_gates::KUBELET_CRASH_LOOP_BACK_OFF_MAX.into(), true);
        c.feature_gates.insert(
            feature_gates::KUBELET_ENSURE_SECRET_PULLED_IMAGES.into(),
            false,
        );
        apply_post_flag_defaults(&mut c);
        assert_eq!(c.image_pull_credentials_verification_policy, "");
        assert_eq!(
            c.crash_loop_back_off.max_container_restart_period,
            Some(MAX_CONTAINER_BACK_OFF)
        );
    }
}
