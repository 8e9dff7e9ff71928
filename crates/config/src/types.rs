//! `kubelet.config.k8s.io/v1beta1` `KubeletConfiguration`, as Rust types.
//!
//! Field names serialise to upstream's camelCase JSON names and durations to
//! Go duration strings, so `serde_json::to_value(&config)` is what `/configz`
//! serves under `"kubeletconfig"`. Every field of upstream v1beta1 (v1.35) is
//! accepted; unknown fields are rejected.
//!
//! Upstream distinguishes "unset" from "zero" with pointer fields. Here a
//! missing field takes the upstream default through the container-level
//! `#[serde(default)]` (see `defaults.rs`), which gives the same result as
//! upstream's nil-pointer defaulting; upstream fields without any default are
//! `Option`s. Fields upstream marks `omitempty` (and that are not pointers) are
//! left out of the JSON when they hold their zero value, as in Go.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::go_duration::{serde_go, serde_go_opt};

/// The `apiVersion` a kubelet config file must declare.
pub const API_VERSION: &str = "kubelet.config.k8s.io/v1beta1";
/// The `kind` a kubelet config file must declare.
pub const KIND: &str = "KubeletConfiguration";

pub(crate) fn is_zero<T: Default + PartialEq>(value: &T) -> bool {
    *value == T::default()
}

/// The kubelet's configuration (`kubelet.config.k8s.io/v1beta1`), with
/// upstream defaults applied.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct KubeletConfiguration {
    pub kind: String,
    pub api_version: String,

    /// Serve the kubelet API (port `port`). Default `true`.
    pub enable_server: bool,
    /// Directory of static pod manifests, or a single manifest file. Relative
    /// paths in a config file are resolved against the file's directory.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub static_pod_path: String,
    /// Root directory for pod log files. Default `/var/log/pods`.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub pod_logs_dir: String,
    #[serde(with = "serde_go")]
    pub sync_frequency: Duration,
    #[serde(with = "serde_go")]
    pub file_check_frequency: Duration,
    #[serde(rename = "httpCheckFrequency", with = "serde_go")]
    pub http_check_frequency: Duration,
    #[serde(rename = "staticPodURL", skip_serializing_if = "String::is_empty")]
    pub static_pod_url: String,
    /// HTTP headers sent with requests to `staticPodURL`; a header may repeat.
    #[serde(
        rename = "staticPodURLHeader",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub static_pod_url_header: BTreeMap<String, Vec<String>>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub address: String,
    #[serde(skip_serializing_if = "is_zero")]
    pub port: i32,
    /// Unauthenticated read-only port; 0 disables it (the config file default).
    #[serde(skip_serializing_if = "is_zero")]
    pub read_only_port: i32,
    #[serde(rename = "tlsCertFile", skip_serializing_if = "String::is_empty")]
    pub tls_cert_file: String,
    #[serde(rename = "tlsPrivateKeyFile", skip_serializing_if = "String::is_empty")]
    pub tls_private_key_file: String,
    #[serde(rename = "tlsCipherSuites", skip_serializing_if = "Vec::is_empty")]
    pub tls_cipher_suites: Vec<String>,
    #[serde(rename = "tlsCurvePreferences", skip_serializing_if = "Vec::is_empty")]
    pub tls_curve_preferences: Vec<i32>,
    #[serde(rename = "tlsMinVersion", skip_serializing_if = "String::is_empty")]
    pub tls_min_version: String,
    #[serde(skip_serializing_if = "is_zero")]
    pub rotate_certificates: bool,
    #[serde(rename = "serverTLSBootstrap", skip_serializing_if = "is_zero")]
    pub server_tls_bootstrap: bool,
    pub authentication: KubeletAuthentication,
    pub authorization: KubeletAuthorization,
    #[serde(rename = "registryPullQPS")]
    pub registry_pull_qps: i32,
    #[serde(skip_serializing_if = "is_zero")]
    pub registry_burst: i32,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub image_pull_credentials_verification_policy: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub preloaded_images_verification_allowlist: Vec<String>,
    #[serde(rename = "eventRecordQPS")]
    pub event_record_qps: i32,
    #[serde(skip_serializing_if = "is_zero")]
    pub event_burst: i32,
    pub enable_debugging_handlers: bool,
    #[serde(skip_serializing_if = "is_zero")]
    pub enable_contention_profiling: bool,
    /// Localhost healthz port; 0 disables it. Default 10248.
    pub healthz_port: i32,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub healthz_bind_address: String,
    pub oom_score_adj: i32,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub cluster_domain: String,
    /// Cluster DNS server IPs (for pods with `dnsPolicy: ClusterFirst`).
    #[serde(rename = "clusterDNS", skip_serializing_if = "Vec::is_empty")]
    pub cluster_dns: Vec<String>,
    /// Deprecated upstream: no longer has any effect.
    #[serde(with = "serde_go")]
    pub streaming_connection_idle_timeout: Duration,
    #[serde(with = "serde_go")]
    pub node_status_update_frequency: Duration,
    #[serde(with = "serde_go")]
    pub node_status_report_frequency: Duration,
    #[serde(skip_serializing_if = "is_zero")]
    pub node_lease_duration_seconds: i32,
    #[serde(rename = "imageMinimumGCAge", with = "serde_go")]
    pub image_minimum_gc_age: Duration,
    #[serde(rename = "imageMaximumGCAge", with = "serde_go")]
    pub image_maximum_gc_age: Duration,
    #[serde(rename = "imageGCHighThresholdPercent")]
    pub image_gc_high_threshold_percent: i32,
    #[serde(rename = "imageGCLowThresholdPercent")]
    pub image_gc_low_threshold_percent: i32,
    #[serde(with = "serde_go")]
    pub volume_stats_agg_period: Duration,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub kubelet_cgroups: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub system_cgroups: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub cgroup_root: String,
    #[serde(rename = "cgroupsPerQOS")]
    pub cgroups_per_qos: bool,
    /// `cgroupfs` or `systemd`. Default `cgroupfs`.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub cgroup_driver: String,
    #[serde(rename = "cpuManagerPolicy", skip_serializing_if = "String::is_empty")]
    pub cpu_manager_policy: String,
    #[serde(
        rename = "singleProcessOOMKill",
        skip_serializing_if = "Option::is_none"
    )]
    pub single_process_oom_kill: Option<bool>,
    #[serde(
        rename = "cpuManagerPolicyOptions",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub cpu_manager_policy_options: BTreeMap<String, String>,
    #[serde(rename = "cpuManagerReconcilePeriod", with = "serde_go")]
    pub cpu_manager_reconcile_period: Duration,
    /// Newer than v1.35 in some upstream trees; accepted, no default.
    #[serde(
        rename = "draManagerReconcilePeriod",
        with = "serde_go_opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub dra_manager_reconcile_period: Option<Duration>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub memory_manager_policy: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub topology_manager_policy: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub topology_manager_scope: String,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub topology_manager_policy_options: BTreeMap<String, String>,
    #[serde(rename = "qosReserved", skip_serializing_if = "BTreeMap::is_empty")]
    pub qos_reserved: BTreeMap<String, String>,
    #[serde(with = "serde_go")]
    pub runtime_request_timeout: Duration,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub hairpin_mode: String,
    #[serde(skip_serializing_if = "is_zero")]
    pub max_pods: i32,
    #[serde(rename = "podCIDR", skip_serializing_if = "String::is_empty")]
    pub pod_cidr: String,
    pub pod_pids_limit: i64,
    /// Resolver config for pod DNS; an explicit empty string disables it.
    #[serde(rename = "resolvConf")]
    pub resolv_conf: String,
    /// Upstream v1.35 refuses `runOnce: true`; kubelet-rs accepts it (see `load`).
    #[serde(skip_serializing_if = "is_zero")]
    pub run_once: bool,
    #[serde(rename = "cpuCFSQuota")]
    pub cpu_cfs_quota: bool,
    #[serde(rename = "cpuCFSQuotaPeriod", with = "serde_go")]
    pub cpu_cfs_quota_period: Duration,
    pub node_status_max_images: i32,
    #[serde(skip_serializing_if = "is_zero")]
    pub max_open_files: i64,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub content_type: String,
    #[serde(rename = "kubeAPIQPS")]
    pub kube_api_qps: i32,
    #[serde(rename = "kubeAPIBurst", skip_serializing_if = "is_zero")]
    pub kube_api_burst: i32,
    pub serialize_image_pulls: bool,
    /// Maximum parallel image pulls; `None` means no limit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_parallel_image_pulls: Option<i32>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub eviction_hard: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub eviction_soft: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub eviction_soft_grace_period: BTreeMap<String, String>,
    #[serde(with = "serde_go")]
    pub eviction_pressure_transition_period: Duration,
    #[serde(skip_serializing_if = "is_zero")]
    pub eviction_max_pod_grace_period: i32,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub eviction_minimum_reclaim: BTreeMap<String, String>,
    pub merge_default_eviction_settings: bool,
    #[serde(skip_serializing_if = "is_zero")]
    pub pods_per_core: i32,
    pub enable_controller_attach_detach: bool,
    #[serde(skip_serializing_if = "is_zero")]
    pub protect_kernel_defaults: bool,
    #[serde(rename = "makeIPTablesUtilChains")]
    pub make_ip_tables_util_chains: bool,
    /// Deprecated upstream: no longer has any effect.
    #[serde(rename = "iptablesMasqueradeBit")]
    pub iptables_masquerade_bit: i32,
    /// Deprecated upstream: no longer has any effect.
    #[serde(rename = "iptablesDropBit")]
    pub iptables_drop_bit: i32,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub feature_gates: BTreeMap<String, bool>,
    pub fail_swap_on: bool,
    pub memory_swap: MemorySwapConfiguration,
    /// Quantity, e.g. `10Mi`.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub container_log_max_size: String,
    pub container_log_max_files: i32,
    pub container_log_max_workers: i32,
    #[serde(with = "serde_go")]
    pub container_log_monitor_interval: Duration,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub config_map_and_secret_change_detection_strategy: String,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub system_reserved: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub kube_reserved: BTreeMap<String, String>,
    #[serde(
        rename = "reservedSystemCPUs",
        skip_serializing_if = "String::is_empty"
    )]
    pub reserved_system_cpus: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub show_hidden_metrics_for_version: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub system_reserved_cgroup: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub kube_reserved_cgroup: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub enforce_node_allocatable: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub allowed_unsafe_sysctls: Vec<String>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub volume_plugin_dir: String,
    #[serde(rename = "providerID", skip_serializing_if = "String::is_empty")]
    pub provider_id: String,
    #[serde(skip_serializing_if = "is_zero")]
    pub kernel_memcg_notification: bool,
    pub logging: LoggingConfiguration,
    pub enable_system_log_handler: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enable_system_log_query: Option<bool>,
    #[serde(with = "serde_go")]
    pub shutdown_grace_period: Duration,
    #[serde(with = "serde_go")]
    pub shutdown_grace_period_critical_pods: Duration,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub shutdown_grace_period_by_pod_priority: Vec<ShutdownGracePeriodByPodPriority>,
    pub crash_loop_back_off: CrashLoopBackOffConfig,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub reserved_memory: Vec<MemoryReservation>,
    pub enable_profiling_handler: bool,
    pub enable_debug_flags_handler: bool,
    pub seccomp_default: bool,
    pub memory_throttling_factor: f64,
    /// Newer than v1.35 in some upstream trees; accepted, no default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory_reservation_policy: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub register_with_taints: Vec<Taint>,
    pub register_node: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tracing: Option<TracingConfiguration>,
    pub local_storage_capacity_isolation: bool,
    /// CRI runtime endpoint. Default `unix:///run/containerd/containerd.sock`.
    pub container_runtime_endpoint: String,
    /// CRI image endpoint; empty means "same as `containerRuntimeEndpoint`".
    #[serde(skip_serializing_if = "String::is_empty")]
    pub image_service_endpoint: String,
    /// Refuse to start on cgroup v1 hosts. Default `true` since v1.35.
    #[serde(rename = "failCgroupV1")]
    pub fail_cgroup_v1: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_namespaces: Option<UserNamespaces>,
    /// Newer than v1.35 in some upstream trees; accepted, no default.
    #[serde(with = "serde_go_opt", skip_serializing_if = "Option::is_none")]
    pub pod_housekeeping_period: Option<Duration>,
}

impl KubeletConfiguration {
    /// The image service endpoint to use: `imageServiceEndpoint`, or the
    /// runtime endpoint when that is empty (upstream behaviour).
    pub fn effective_image_service_endpoint(&self) -> &str {
        if self.image_service_endpoint.is_empty() {
            &self.container_runtime_endpoint
        } else {
            &self.image_service_endpoint
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct KubeletAuthentication {
    pub x509: KubeletX509Authentication,
    pub webhook: KubeletWebhookAuthentication,
    pub anonymous: KubeletAnonymousAuthentication,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct KubeletX509Authentication {
    #[serde(rename = "clientCAFile", skip_serializing_if = "String::is_empty")]
    pub client_ca_file: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct KubeletWebhookAuthentication {
    pub enabled: bool,
    #[serde(rename = "cacheTTL", with = "serde_go")]
    pub cache_ttl: Duration,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct KubeletAnonymousAuthentication {
    pub enabled: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct KubeletAuthorization {
    /// `AlwaysAllow` or `Webhook`.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub mode: String,
    pub webhook: KubeletWebhookAuthorization,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct KubeletWebhookAuthorization {
    #[serde(rename = "cacheAuthorizedTTL", with = "serde_go")]
    pub cache_authorized_ttl: Duration,
    #[serde(rename = "cacheUnauthorizedTTL", with = "serde_go")]
    pub cache_unauthorized_ttl: Duration,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct MemorySwapConfiguration {
    /// `""`, `NoSwap` or `LimitedSwap`.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub swap_behavior: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct CrashLoopBackOffConfig {
    #[serde(with = "serde_go_opt", skip_serializing_if = "Option::is_none")]
    pub max_container_restart_period: Option<Duration>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ShutdownGracePeriodByPodPriority {
    pub priority: i32,
    pub shutdown_grace_period_seconds: i64,
}

/// Memory reserved on one NUMA node (`reservedMemory`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MemoryReservation {
    pub numa_node: i32,
    /// Resource name (`memory`, `hugepages-<size>`) to quantity.
    pub limits: BTreeMap<String, String>,
}

/// A node taint (`registerWithTaints`), as core/v1 `Taint`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Taint {
    pub key: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub value: String,
    /// `NoSchedule`, `PreferNoSchedule` or `NoExecute`.
    #[serde(default)]
    pub effect: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_added: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct TracingConfiguration {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sampling_rate_per_million: Option<i32>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct UserNamespaces {
    #[serde(rename = "idsPerPod", skip_serializing_if = "Option::is_none")]
    pub ids_per_pod: Option<i64>,
}

/// component-base `LoggingConfiguration` (the `logging` field).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct LoggingConfiguration {
    /// `text` (default) or `json`.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub format: String,
    /// Accepts a Go duration string or an integer number of nanoseconds.
    #[serde(with = "flush_frequency")]
    pub flush_frequency: Duration,
    /// Log verbosity (`-v`).
    pub verbosity: u32,
    #[serde(rename = "vmodule", skip_serializing_if = "Vec::is_empty")]
    pub vmodule: Vec<VModuleItem>,
    pub options: FormatOptions,
}

/// One `--vmodule` entry: a file pattern and its verbosity.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct VModuleItem {
    pub file_pattern: String,
    pub verbosity: u32,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct FormatOptions {
    pub text: OutputRoutingOptions,
    pub json: OutputRoutingOptions,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct OutputRoutingOptions {
    #[serde(skip_serializing_if = "is_zero")]
    pub split_stream: bool,
    /// Quantity (e.g. `"0"`, `"64Ki"`); numbers in the file are accepted too.
    #[serde(deserialize_with = "quantity_string")]
    pub info_buffer_size: String,
}

/// Accepts a quantity given either as a YAML/JSON string or a number.
fn quantity_string<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Text(String),
        Number(serde_json::Number),
    }
    Ok(match Raw::deserialize(deserializer)? {
        Raw::Text(text) => text,
        Raw::Number(number) => number.to_string(),
    })
}

/// `logging.flushFrequency`: upstream accepts a duration string or integer
/// nanoseconds, and (once defaulted) writes a string.
mod flush_frequency {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(value: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
        crate::go_duration::serde_go::serialize(value, serializer)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Text(String),
            Nanos(u64),
        }
        match Raw::deserialize(deserializer)? {
            Raw::Text(text) => crate::go_duration::parse(&text).map_err(serde::de::Error::custom),
            Raw::Nanos(nanos) => Ok(Duration::from_nanos(nanos)),
        }
    }
}
