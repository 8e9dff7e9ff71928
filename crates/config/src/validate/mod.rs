//! Validation of the effective settings, after upstream's
//! pkg/kubelet/apis/config/validation and `ValidateKubeletFlags`, plus the
//! checks upstream performs later at start-up (cgroup driver, TLS settings,
//! addresses, quantities). Every problem is collected; each message names the
//! config field and, where one exists, its flag.
//!
//! Not checked here: host-dependent rules (cgroup v1 with `failCgroupV1`,
//! swap with `failSwapOn`) and unknown feature-gate names.

pub(crate) mod names;

use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

use crate::feature_gates::{self as gates, enabled};
use crate::kubelet_flags::KubeletFlags;
use crate::quantity;
use crate::types::KubeletConfiguration;

const TLS_VERSIONS: &[&str] = &[
    "VersionTLS10",
    "VersionTLS11",
    "VersionTLS12",
    "VersionTLS13",
];

/// Cipher suite names Go's crypto/tls (and so the upstream kubelet) accepts.
const TLS_CIPHER_SUITES: &[&str] = &[
    "TLS_AES_128_GCM_SHA256",
    "TLS_AES_256_GCM_SHA384",
    "TLS_CHACHA20_POLY1305_SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
    "TLS_ECDHE_ECDSA_WITH_RC4_128_SHA",
    "TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256",
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA",
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
    "TLS_ECDHE_RSA_WITH_RC4_128_SHA",
    "TLS_RSA_WITH_3DES_EDE_CBC_SHA",
    "TLS_RSA_WITH_AES_128_CBC_SHA",
    "TLS_RSA_WITH_AES_128_CBC_SHA256",
    "TLS_RSA_WITH_AES_128_GCM_SHA256",
    "TLS_RSA_WITH_AES_256_CBC_SHA",
    "TLS_RSA_WITH_AES_256_GCM_SHA384",
    "TLS_RSA_WITH_RC4_128_SHA",
];

const EVICTION_SIGNALS: &[&str] = &[
    "memory.available",
    "allocatableMemory.available",
    "nodefs.available",
    "nodefs.inodesFree",
    "imagefs.available",
    "imagefs.inodesFree",
    "containerfs.available",
    "containerfs.inodesFree",
    "pid.available",
];

/// The release whose hidden metrics may be re-enabled (`showHiddenMetricsForVersion`).
const PREVIOUS_MINOR_VERSION: &str = "1.34";

/// Parses `--node-ip`: one IP or a dual-stack pair (upstream `ParseNodeIPArgument`).
pub(crate) fn parse_node_ips(value: &str) -> Result<Vec<IpAddr>, String> {
    if value.trim().is_empty() {
        return Ok(Vec::new());
    }
    let ips = value
        .split(',')
        .map(|part| {
            part.trim().parse::<IpAddr>().map_err(|_| {
                format!("invalid value for --node-ip {value:?}: could not parse {part:?}")
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let dual_stack_ok = match ips.as_slice() {
        [_] => true,
        [a, b] => a.is_ipv6() != b.is_ipv6(),
        _ => false,
    };
    if !dual_stack_ok {
        return Err(format!(
            "invalid value for --node-ip {value:?}: must contain either a single IP or a dual-stack pair of IPs"
        ));
    }
    if ips.len() == 2 && ips.iter().any(IpAddr::is_unspecified) {
        return Err(format!(
            "invalid value for --node-ip {value:?}: dual-stack node IP cannot include '0.0.0.0' or '::'"
        ));
    }
    Ok(ips)
}

/// Validates the flag-only settings (upstream `ValidateKubeletFlags`).
pub(crate) fn validate_flags(f: &KubeletFlags) -> Vec<String> {
    let mut errors = Vec::new();
    let mut forbidden = Vec::new();
    for (key, value) in &f.node_labels {
        if !names::is_allowed_node_label(key) {
            forbidden.push(key.as_str());
        }
        if let Err(e) = names::check_qualified_name(key) {
            errors.push(format!(
                "invalid node label key {key:?} (--node-labels): {e}"
            ));
        }
        if let Err(e) = names::check_label_value(value) {
            errors.push(format!(
                "invalid node label value {value:?} for {key:?} (--node-labels): {e}"
            ));
        }
    }
    if !forbidden.is_empty() {
        errors.push(format!(
            "unknown 'kubernetes.io' or 'k8s.io' labels specified with --node-labels: {forbidden:?}; {}",
            names::allowed_node_labels_hint()
        ));
    }
    errors.extend(validate_runtime_class_handlers(f));
    errors
}

/// `--runtime-class-handlers` (kubelet-rs extension): RuntimeClass names are DNS
/// subdomains and handlers DNS labels (as the RuntimeClass API requires), and the map is
/// for standalone mode only: with an API server, RuntimeClasses come from the API.
fn validate_runtime_class_handlers(f: &KubeletFlags) -> Vec<String> {
    let mut errors = Vec::new();
    if f.runtime_class_handlers.is_empty() {
        return errors;
    }
    if f.kubeconfig.is_some() || f.bootstrap_kubeconfig.is_some() {
        errors.push(
            "--runtime-class-handlers is for standalone mode only: with --kubeconfig, RuntimeClasses (node.k8s.io/v1) come from the API server".into(),
        );
    }
    for (name, handler) in &f.runtime_class_handlers {
        if !names::is_dns_subdomain(name) {
            errors.push(format!(
                "invalid RuntimeClass name {name:?} (--runtime-class-handlers): must be a lowercase RFC 1123 subdomain"
            ));
        }
        if !names::is_dns_label(handler) {
            errors.push(format!(
                "invalid runtime handler {handler:?} for RuntimeClass {name:?} (--runtime-class-handlers): must be a lowercase RFC 1123 label"
            ));
        }
    }
    errors
}

/// Validates the configuration; returns every problem found.
pub(crate) fn validate_config(c: &KubeletConfiguration) -> Vec<String> {
    let mut v = Validator::default();
    v.server(c);
    v.limits(c);
    v.durations(c);
    v.image_gc(c);
    v.cgroups(c);
    v.managers(c);
    v.node_allocatable(c);
    v.eviction(c);
    v.image_pulls(c);
    v.shutdown_and_swap(c);
    v.logs(c);
    v.misc(c);
    v.errors
}

#[derive(Default)]
struct Validator {
    errors: Vec<String>,
}

impl Validator {
    fn fail(&mut self, message: String) {
        self.errors.push(message);
    }

    fn check(&mut self, ok: bool, message: impl FnOnce() -> String) {
        if !ok {
            self.errors.push(message());
        }
    }

    fn non_negative(&mut self, field: &str, flag: &str, value: i64) {
        self.check(value >= 0, || {
            format!("{field} ({flag}) {value} must not be a negative number")
        });
    }

    fn in_range(&mut self, field: &str, flag: &str, value: i64, min: i64, max: i64) {
        self.check((min..=max).contains(&value), || {
            format!("{field} ({flag}) {value} must be between {min} and {max}, inclusive")
        });
    }

    fn positive_duration(&mut self, field: &str, flag: &str, value: Duration) {
        self.check(!value.is_zero(), || {
            format!("{field} ({flag}) must be greater than 0")
        });
    }

    fn ip(&mut self, field: &str, flag: &str, value: &str) {
        self.check(value.parse::<IpAddr>().is_ok(), || {
            format!("{field} ({flag}) {value:?} is not a valid IP address")
        });
    }

    fn one_of(&mut self, field: &str, flag: &str, value: &str, allowed: &[&str]) {
        self.check(allowed.contains(&value), || {
            format!("{field} ({flag}) {value:?} must be one of: {allowed:?}")
        });
    }

    fn server(&mut self, c: &KubeletConfiguration) {
        self.in_range("port", "--port", c.port.into(), 1, 65535);
        self.in_range(
            "readOnlyPort",
            "--read-only-port",
            c.read_only_port.into(),
            0,
            65535,
        );
        self.in_range(
            "healthzPort",
            "--healthz-port",
            c.healthz_port.into(),
            0,
            65535,
        );
        self.ip("address", "--address", &c.address);
        self.ip(
            "healthzBindAddress",
            "--healthz-bind-address",
            &c.healthz_bind_address,
        );
        self.one_of(
            "authorization.mode",
            "--authorization-mode",
            &c.authorization.mode,
            &["AlwaysAllow", "Webhook"],
        );
        if !c.tls_min_version.is_empty() {
            self.one_of(
                "tlsMinVersion",
                "--tls-min-version",
                &c.tls_min_version,
                TLS_VERSIONS,
            );
        }
        for suite in &c.tls_cipher_suites {
            self.check(TLS_CIPHER_SUITES.contains(&suite.as_str()), || {
                format!("tlsCipherSuites (--tls-cipher-suites): cipher suite {suite:?} not supported or doesn't exist")
            });
        }
        self.check(
            c.tls_cert_file.is_empty() == c.tls_private_key_file.is_empty(),
            || "tlsCertFile (--tls-cert-file) and tlsPrivateKeyFile (--tls-private-key-file) must be set together".to_string(),
        );
        if c.server_tls_bootstrap {
            self.check(enabled(&c.feature_gates, gates::ROTATE_KUBELET_SERVER_CERTIFICATE), || {
                "serverTLSBootstrap (--rotate-server-certificates) true requires feature gate RotateKubeletServerCertificate".to_string()
            });
        }
        for dns in &c.cluster_dns {
            self.ip("clusterDNS", "--cluster-dns", dns);
        }
    }

    fn limits(&mut self, c: &KubeletConfiguration) {
        self.non_negative("eventBurst", "--event-burst", c.event_burst.into());
        self.non_negative("eventRecordQPS", "--event-qps", c.event_record_qps.into());
        self.non_negative("kubeAPIBurst", "--kube-api-burst", c.kube_api_burst.into());
        self.non_negative("kubeAPIQPS", "--kube-api-qps", c.kube_api_qps.into());
        self.non_negative("registryBurst", "--registry-burst", c.registry_burst.into());
        self.non_negative(
            "registryPullQPS",
            "--registry-qps",
            c.registry_pull_qps.into(),
        );
        self.non_negative("maxOpenFiles", "--max-open-files", c.max_open_files);
        self.non_negative("maxPods", "--max-pods", c.max_pods.into());
        self.non_negative("podsPerCore", "--pods-per-core", c.pods_per_core.into());
        self.check(c.node_status_max_images >= -1, || {
            format!(
                "nodeStatusMaxImages (--node-status-max-images) {} must be -1 or greater",
                c.node_status_max_images
            )
        });
        self.in_range(
            "oomScoreAdj",
            "--oom-score-adj",
            c.oom_score_adj.into(),
            -1000,
            1000,
        );
        self.in_range(
            "iptablesDropBit",
            "--iptables-drop-bit",
            c.iptables_drop_bit.into(),
            0,
            31,
        );
        self.in_range(
            "iptablesMasqueradeBit",
            "--iptables-masquerade-bit",
            c.iptables_masquerade_bit.into(),
            0,
            31,
        );
        self.check(c.node_lease_duration_seconds > 0, || {
            "nodeLeaseDurationSeconds must be greater than 0".to_string()
        });
    }

    fn durations(&mut self, c: &KubeletConfiguration) {
        self.positive_duration("syncFrequency", "--sync-frequency", c.sync_frequency);
        self.positive_duration(
            "fileCheckFrequency",
            "--file-check-frequency",
            c.file_check_frequency,
        );
        self.positive_duration(
            "httpCheckFrequency",
            "--http-check-frequency",
            c.http_check_frequency,
        );
        self.positive_duration(
            "nodeStatusUpdateFrequency",
            "--node-status-update-frequency",
            c.node_status_update_frequency,
        );
        self.check(!c.node_status_report_frequency.is_zero(), || {
            "nodeStatusReportFrequency must be greater than 0".to_string()
        });
        self.positive_duration(
            "runtimeRequestTimeout",
            "--runtime-request-timeout",
            c.runtime_request_timeout,
        );
        if let Some(period) = c.dra_manager_reconcile_period {
            self.check(!period.is_zero(), || {
                "draManagerReconcilePeriod must be greater than zero".to_string()
            });
        }
        let default_period = Duration::from_millis(100);
        if enabled(&c.feature_gates, gates::CUSTOM_CPU_CFS_QUOTA_PERIOD) {
            self.check(
                (Duration::from_millis(1)..=Duration::from_secs(1)).contains(&c.cpu_cfs_quota_period),
                || "cpuCFSQuotaPeriod (--cpu-cfs-quota-period) must be between 1ms and 1sec, inclusive".to_string(),
            );
        } else {
            self.check(c.cpu_cfs_quota_period == default_period, || {
                format!(
                    "cpuCFSQuotaPeriod (--cpu-cfs-quota-period) {} requires feature gate CustomCPUCFSQuotaPeriod",
                    crate::go_duration::format(c.cpu_cfs_quota_period)
                )
            });
        }
    }

    fn image_gc(&mut self, c: &KubeletConfiguration) {
        let (high, low) = (
            c.image_gc_high_threshold_percent,
            c.image_gc_low_threshold_percent,
        );
        self.in_range(
            "imageGCHighThresholdPercent",
            "--image-gc-high-threshold",
            high.into(),
            0,
            100,
        );
        self.in_range(
            "imageGCLowThresholdPercent",
            "--image-gc-low-threshold",
            low.into(),
            0,
            100,
        );
        self.check(low < high, || {
            format!("imageGCLowThresholdPercent (--image-gc-low-threshold) {low} must be less than imageGCHighThresholdPercent (--image-gc-high-threshold) {high}")
        });
        let (min_age, max_age) = (c.image_minimum_gc_age, c.image_maximum_gc_age);
        if !max_age.is_zero() {
            self.check(enabled(&c.feature_gates, gates::IMAGE_MAXIMUM_GC_AGE), || {
                "ImageMaximumGCAge feature gate is required for Kubelet configuration option imageMaximumGCAge".to_string()
            });
            self.check(max_age > min_age, || {
                format!(
                    "imageMaximumGCAge {} must be greater than imageMinimumGCAge {}",
                    crate::go_duration::format(max_age),
                    crate::go_duration::format(min_age)
                )
            });
        }
    }

    fn cgroups(&mut self, c: &KubeletConfiguration) {
        self.one_of(
            "cgroupDriver",
            "--cgroup-driver",
            &c.cgroup_driver,
            &["cgroupfs", "systemd"],
        );
        self.check(c.system_cgroups.is_empty() || !c.cgroup_root.is_empty(), || {
            "systemCgroups (--system-cgroups) was specified and cgroupRoot (--cgroup-root) was not specified".to_string()
        });
    }

    fn managers(&mut self, c: &KubeletConfiguration) {
        self.one_of(
            "topologyManagerPolicy",
            "--topology-manager-policy",
            &c.topology_manager_policy,
            &["none", "best-effort", "restricted", "single-numa-node"],
        );
        self.one_of(
            "topologyManagerScope",
            "--topology-manager-scope",
            &c.topology_manager_scope,
            &["container", "pod"],
        );
        self.one_of(
            "hairpinMode",
            "--hairpin-mode",
            &c.hairpin_mode,
            &["none", "hairpin-veth", "promiscuous-bridge"],
        );
        if !c.reserved_system_cpus.is_empty() {
            self.check(c.system_reserved_cgroup.is_empty() && c.kube_reserved_cgroup.is_empty(), || {
                "can't use reservedSystemCPUs (--reserved-cpus) with systemReservedCgroup (--system-reserved-cgroup) or kubeReservedCgroup (--kube-reserved-cgroup)".to_string()
            });
            if let Err(e) = parse_cpu_set(&c.reserved_system_cpus) {
                self.fail(format!(
                    "unable to parse reservedSystemCPUs (--reserved-cpus) {:?}: {e}",
                    c.reserved_system_cpus
                ));
            }
        }
        let mut seen = std::collections::BTreeSet::new();
        for reservation in &c.reserved_memory {
            for (resource, amount) in &reservation.limits {
                self.check(seen.insert((reservation.numa_node, resource.clone())), || {
                    format!("reservedMemory (--reserved-memory): the reserved memory has a duplicate value for NUMA node {} and resource {resource:?}", reservation.numa_node)
                });
                if let Err(e) = quantity::validate(amount) {
                    self.fail(format!("reservedMemory (--reserved-memory): {e}"));
                }
            }
        }
        if let Some(policy) = &c.memory_reservation_policy {
            self.one_of(
                "memoryReservationPolicy",
                "(no flag)",
                policy,
                &["None", "TieredReservation"],
            );
        }
    }

    fn node_allocatable(&mut self, c: &KubeletConfiguration) {
        const FIELD: &str = "enforceNodeAllocatable (--enforce-node-allocatable)";
        let list = &c.enforce_node_allocatable;
        let has = |key: &str| list.iter().any(|v| v == key);
        for (plain, compressible) in [
            ("system-reserved", "system-reserved-compressible"),
            ("kube-reserved", "kube-reserved-compressible"),
        ] {
            self.check(!(has(plain) && has(compressible)), || {
                format!(
                    "both {plain:?} and {compressible:?} cannot be specified together in {FIELD}"
                )
            });
        }
        let mut seen = std::collections::BTreeSet::new();
        for value in list {
            if !seen.insert(value.as_str()) {
                self.fail(format!("duplicated enforcements {value:?} in {FIELD}"));
                continue;
            }
            match value.as_str() {
                "pods" => {}
                "system-reserved" | "system-reserved-compressible" => {
                    self.check(!c.system_reserved_cgroup.is_empty(), || {
                        format!("systemReservedCgroup (--system-reserved-cgroup) must be specified when {value:?} is included in {FIELD}")
                    });
                }
                "kube-reserved" | "kube-reserved-compressible" => {
                    self.check(!c.kube_reserved_cgroup.is_empty(), || {
                        format!("kubeReservedCgroup (--kube-reserved-cgroup) must be specified when {value:?} is included in {FIELD}")
                    });
                }
                "none" => {
                    self.check(list.len() == 1, || {
                        format!("{FIELD} may not contain additional enforcements when \"none\" is specified")
                    });
                    continue;
                }
                other => {
                    self.fail(format!(
                        "option {other:?} specified for {FIELD}. Valid options are \"pods\", \"system-reserved\", \"system-reserved-compressible\", \"kube-reserved\", \"kube-reserved-compressible\" or \"none\""
                    ));
                    continue;
                }
            }
            self.check(c.cgroups_per_qos, || {
                format!("cgroupsPerQOS (--cgroups-per-qos) must be set to true when {value:?} is contained in {FIELD}")
            });
        }
        for (field, flag, map) in [
            ("systemReserved", "--system-reserved", &c.system_reserved),
            ("kubeReserved", "--kube-reserved", &c.kube_reserved),
        ] {
            for (resource, amount) in map {
                if let Err(e) = quantity::validate_non_negative(amount) {
                    self.fail(format!("{field} ({flag}) {resource}: {e}"));
                }
            }
        }
    }

    fn eviction(&mut self, c: &KubeletConfiguration) {
        for (field, flag, map) in [
            ("evictionHard", "--eviction-hard", &c.eviction_hard),
            ("evictionSoft", "--eviction-soft", &c.eviction_soft),
            (
                "evictionMinimumReclaim",
                "--eviction-minimum-reclaim",
                &c.eviction_minimum_reclaim,
            ),
        ] {
            for (signal, threshold) in map {
                self.check(EVICTION_SIGNALS.contains(&signal.as_str()), || {
                    format!("{field} ({flag}): unsupported eviction signal {signal:?}")
                });
                if let Err(e) = quantity::validate_threshold(threshold) {
                    self.fail(format!("{field} ({flag}) {signal}: {e}"));
                }
            }
        }
        for (signal, period) in &c.eviction_soft_grace_period {
            if let Err(e) = crate::go_duration::parse(period) {
                self.fail(format!(
                    "evictionSoftGracePeriod (--eviction-soft-grace-period) {signal}: {e}"
                ));
            }
            self.check(c.eviction_soft.contains_key(signal), || {
                format!("evictionSoftGracePeriod (--eviction-soft-grace-period) {signal}: no matching evictionSoft (--eviction-soft) threshold")
            });
        }
        for signal in c.eviction_soft.keys() {
            self.check(c.eviction_soft_grace_period.contains_key(signal), || {
                format!("evictionSoft (--eviction-soft) {signal}: a grace period must be specified in evictionSoftGracePeriod (--eviction-soft-grace-period)")
            });
        }
    }

    fn image_pulls(&mut self, c: &KubeletConfiguration) {
        if let Some(n) = c.max_parallel_image_pulls {
            self.check(n >= 1, || {
                format!("maxParallelImagePulls {n} must be a positive number")
            });
            self.check(!(c.serialize_image_pulls && n > 1), || {
                "maxParallelImagePulls cannot be larger than 1 unless serializeImagePulls (--serialize-image-pulls) is set to false".to_string()
            });
        }
        let policy = c.image_pull_credentials_verification_policy.as_str();
        if enabled(&c.feature_gates, gates::KUBELET_ENSURE_SECRET_PULLED_IMAGES) {
            self.one_of(
                "imagePullCredentialsVerificationPolicy",
                "(no flag)",
                policy,
                &[
                    "NeverVerify",
                    "NeverVerifyPreloadedImages",
                    "NeverVerifyAllowlistedImages",
                    "AlwaysVerify",
                ],
            );
            self.check(
                c.preloaded_images_verification_allowlist.is_empty() || policy == "NeverVerifyAllowlistedImages",
                || "can't set preloadedImagesVerificationAllowlist if imagePullCredentialsVerificationPolicy is not \"NeverVerifyAllowlistedImages\"".to_string(),
            );
        } else {
            self.check(policy.is_empty(), || {
                "imagePullCredentialsVerificationPolicy must not be set if KubeletEnsureSecretPulledImages feature gate is not enabled".to_string()
            });
            self.check(c.preloaded_images_verification_allowlist.is_empty(), || {
                "preloadedImagesVerificationAllowlist must not be set if KubeletEnsureSecretPulledImages feature gate is not enabled".to_string()
            });
        }
    }

    fn shutdown_and_swap(&mut self, c: &KubeletConfiguration) {
        let (total, critical) = (
            c.shutdown_grace_period,
            c.shutdown_grace_period_critical_pods,
        );
        let fmt = crate::go_duration::format;
        if enabled(&c.feature_gates, gates::GRACEFUL_NODE_SHUTDOWN) {
            self.check(critical <= total, || {
                format!(
                    "shutdownGracePeriodCriticalPods {} must be <= shutdownGracePeriod {}",
                    fmt(critical),
                    fmt(total)
                )
            });
            for (field, value) in [
                ("shutdownGracePeriod", total),
                ("shutdownGracePeriodCriticalPods", critical),
            ] {
                self.check(value.is_zero() || value >= Duration::from_secs(1), || {
                    format!(
                        "{field} {} must be either zero or otherwise >= 1 sec",
                        fmt(value)
                    )
                });
            }
        } else {
            self.check(total.is_zero() && critical.is_zero(), || {
                "specifying shutdownGracePeriod or shutdownGracePeriodCriticalPods requires feature gate GracefulNodeShutdown".to_string()
            });
        }
        if !c.shutdown_grace_period_by_pod_priority.is_empty() {
            if enabled(
                &c.feature_gates,
                gates::GRACEFUL_NODE_SHUTDOWN_BASED_ON_POD_PRIORITY,
            ) {
                self.check(total.is_zero() && critical.is_zero(), || {
                    "cannot specify both shutdownGracePeriodByPodPriority and shutdownGracePeriod at the same time".to_string()
                });
            } else {
                self.fail("specifying shutdownGracePeriodByPodPriority requires feature gate GracefulNodeShutdownBasedOnPodPriority".to_string());
            }
        }
        let swap = c.memory_swap.swap_behavior.as_str();
        if enabled(&c.feature_gates, gates::NODE_SWAP) {
            self.one_of(
                "memorySwap.swapBehavior",
                "(no flag)",
                swap,
                &["", "NoSwap", "LimitedSwap"],
            );
        } else {
            self.check(swap.is_empty(), || {
                "memorySwap.swapBehavior cannot be set when NodeSwap feature flag is disabled"
                    .to_string()
            });
        }
        let restart = c.crash_loop_back_off.max_container_restart_period;
        if enabled(&c.feature_gates, gates::KUBELET_CRASH_LOOP_BACK_OFF_MAX) {
            match restart {
                None => self.fail("crashLoopBackOff.maxContainerRestartPeriod must be set when feature gate KubeletCrashLoopBackOffMax is enabled".to_string()),
                Some(period) => self.check(
                    (Duration::from_secs(1)..=Duration::from_secs(300)).contains(&period),
                    || format!("crashLoopBackOff.maxContainerRestartPeriod {} must be between 1s and 300s", fmt(period)),
                ),
            }
        } else {
            self.check(restart.is_none(), || {
                "crashLoopBackOff.maxContainerRestartPeriod must not be set when feature gate KubeletCrashLoopBackOffMax is not enabled".to_string()
            });
        }
        self.check(c.memory_throttling_factor > 0.0 && c.memory_throttling_factor <= 1.0, || {
            format!(
                "memoryThrottlingFactor {} must be greater than 0 and less than or equal to 1.0",
                c.memory_throttling_factor
            )
        });
        if c.memory_reservation_policy.as_deref() == Some("TieredReservation") {
            self.check(enabled(&c.feature_gates, gates::MEMORY_QOS), || {
                "memoryReservationPolicy \"TieredReservation\" requires MemoryQoS feature gate to be enabled".to_string()
            });
        }
    }

    fn logs(&mut self, c: &KubeletConfiguration) {
        self.check(c.container_log_max_files > 1, || {
            "containerLogMaxFiles (--container-log-max-files) must be greater than 1".to_string()
        });
        self.check(c.container_log_max_workers >= 1, || {
            "containerLogMaxWorkers must be greater than or equal to 1".to_string()
        });
        self.check(c.container_log_monitor_interval >= Duration::from_secs(3), || {
            "containerLogMonitorInterval must be a positive time duration greater than or equal to 3s".to_string()
        });
        if let Err(e) = quantity::validate(&c.container_log_max_size) {
            self.fail(format!(
                "containerLogMaxSize (--container-log-max-size): {e}"
            ));
        }
        let dir = c.pod_logs_dir.as_str();
        if dir.is_empty() {
            self.fail("podLogsDir was not specified".to_string());
        } else {
            self.check(Path::new(dir).is_absolute(), || {
                format!("pod logs path {dir:?} must be absolute path")
            });
            self.check(
                crate::file::clean_path(Path::new(dir)) == Path::new(dir),
                || format!("pod logs path {dir:?} must be normalized"),
            );
            self.check(dir.is_ascii(), || {
                format!("pod logs path {dir:?} must contain ASCII characters only")
            });
        }
        let logging = &c.logging;
        self.one_of(
            "logging.format",
            "--logging-format",
            &logging.format,
            &["text", "json"],
        );
        self.check(!logging.flush_frequency.is_zero(), || {
            "logging.flushFrequency (--log-flush-frequency) must be greater than 0".to_string()
        });
        self.check(
            logging.format == "text" || logging.vmodule.is_empty(),
            || "logging.vmodule (--vmodule): only supported for text log format".to_string(),
        );
        for (name, options) in [
            ("text", &logging.options.text),
            ("json", &logging.options.json),
        ] {
            if let Err(e) = quantity::validate(&options.info_buffer_size) {
                self.fail(format!(
                    "logging.options.{name}.infoBufferSize (--log-{name}-info-buffer-size): {e}"
                ));
            }
        }
        if c.enable_system_log_query == Some(true) {
            self.check(enabled(&c.feature_gates, gates::NODE_LOG_QUERY), || {
                "NodeLogQuery feature gate is required for enableSystemLogQuery".to_string()
            });
            self.check(c.enable_system_log_handler, || {
                "enableSystemLogHandler is required for enableSystemLogQuery".to_string()
            });
        }
    }

    fn misc(&mut self, c: &KubeletConfiguration) {
        self.check(!c.container_runtime_endpoint.is_empty(), || {
            "containerRuntimeEndpoint (--container-runtime-endpoint) was not specified or empty"
                .to_string()
        });
        for taint in &c.register_with_taints {
            let problem = names::check_qualified_name(&taint.key)
                .err()
                .or_else(|| names::check_label_value(&taint.value).err())
                .or_else(|| {
                    (!taint.effect.is_empty())
                        .then(|| names::check_taint_effect(&taint.effect).err())
                        .flatten()
                });
            if let Some(e) = problem {
                self.fail(format!(
                    "registerWithTaints (--register-with-taints): invalid taint {:?}: {e}",
                    taint.key
                ));
            }
            self.check(taint.time_added.is_none(), || {
                "registerWithTaints (--register-with-taints): taint.timeAdded must not be set"
                    .to_string()
            });
        }
        if !c.pod_cidr.is_empty() && !is_cidr(&c.pod_cidr) {
            self.fail(format!(
                "podCIDR (--pod-cidr) {:?} is not a valid CIDR",
                c.pod_cidr
            ));
        }
        let hidden = c.show_hidden_metrics_for_version.as_str();
        self.check(hidden.is_empty() || hidden == PREVIOUS_MINOR_VERSION, || {
            format!("showHiddenMetricsForVersion {hidden:?}: only the previous minor version {PREVIOUS_MINOR_VERSION} is allowed")
        });
        if let Some(tracing) = &c.tracing
            && let Some(rate) = tracing.sampling_rate_per_million
        {
            self.in_range(
                "tracing.samplingRatePerMillion",
                "(no flag)",
                rate.into(),
                0,
                1_000_000,
            );
        }
    }
}

/// Parses a Linux CPU list such as `0-3,8,10-11`.
fn parse_cpu_set(list: &str) -> Result<(), String> {
    for part in list.split(',') {
        let part = part.trim();
        let (start, end) = part.split_once('-').unwrap_or((part, part));
        let start: u32 = start.parse().map_err(|_| format!("invalid CPU {part:?}"))?;
        let end: u32 = end
            .parse()
            .map_err(|_| format!("invalid CPU range {part:?}"))?;
        if start > end {
            return Err(format!("invalid range {part:?} (start > end)"));
        }
    }
    Ok(())
}

fn is_cidr(value: &str) -> bool {
    let Some((ip, prefix)) = value.split_once('/') else {
        return false;
    };
    match (ip.parse::<IpAddr>(), prefix.parse::<u8>()) {
        (Ok(IpAddr::V4(_)), Ok(len)) => len <= 32,
        (Ok(IpAddr::V6(_)), Ok(len)) => len <= 128,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{ShutdownGracePeriodByPodPriority, Taint};

    fn errors_for(change: impl FnOnce(&mut KubeletConfiguration)) -> Vec<String> {
        let mut c = KubeletConfiguration::default();
        crate::defaults::apply_post_flag_defaults(&mut c);
        change(&mut c);
        validate_config(&c)
    }

    #[test]
    fn defaults_are_valid() {
        assert_eq!(errors_for(|_| {}), Vec::<String>::new());
    }

    #[test]
    fn all_errors_are_collected_and_name_fields() {
        let errors = errors_for(|c| {
            c.port = 99999;
            c.image_gc_low_threshold_percent = 90;
            c.cgroup_driver = "upstart".into();
            c.max_pods = -1;
            c.sync_frequency = Duration::ZERO;
        });
        assert_eq!(errors.len(), 5, "{errors:#?}");
        assert!(
            errors
                .iter()
                .any(|e| e == "port (--port) 99999 must be between 1 and 65535, inclusive")
        );
        assert!(errors.iter().any(|e| e.contains(
            "imageGCLowThresholdPercent (--image-gc-low-threshold) 90 must be less than"
        )));
        assert!(
            errors
                .iter()
                .any(|e| e.contains("cgroupDriver (--cgroup-driver) \"upstart\""))
        );
        assert!(
            errors
                .iter()
                .any(|e| e.contains("maxPods (--max-pods) -1 must not be a negative number"))
        );
        assert!(
            errors
                .iter()
                .any(|e| e.contains("syncFrequency (--sync-frequency) must be greater than 0"))
        );
    }

    #[test]
    fn ports_allow_zero_only_where_upstream_does() {
        assert!(errors_for(|c| c.healthz_port = 0).is_empty());
        assert!(errors_for(|c| c.read_only_port = 0).is_empty());
        assert_eq!(errors_for(|c| c.port = 0).len(), 1);
        assert_eq!(errors_for(|c| c.read_only_port = 70000).len(), 1);
    }

    #[test]
    fn addresses_and_tls_are_checked() {
        let errors = errors_for(|c| {
            c.address = "not-an-ip".into();
            c.tls_min_version = "TLS1.2".into();
            c.tls_cipher_suites = vec!["TLS_AES_128_GCM_SHA256".into(), "BOGUS".into()];
            c.cluster_dns = vec!["10.0.0.10".into(), "dns".into()];
            c.tls_cert_file = "/cert".into();
        });
        assert_eq!(errors.len(), 5, "{errors:#?}");
        assert!(errors[0].starts_with("address (--address)"));
    }

    #[test]
    fn eviction_settings_are_checked() {
        let errors = errors_for(|c| {
            c.eviction_hard.insert("memory.avail".into(), "1Gi".into());
            c.eviction_hard
                .insert("nodefs.available".into(), "120%".into());
            c.eviction_soft
                .insert("memory.available".into(), "2Gi".into());
        });
        assert_eq!(errors.len(), 3, "{errors:#?}");
        assert!(
            errors
                .iter()
                .any(|e| e.contains("unsupported eviction signal \"memory.avail\""))
        );
        assert!(
            errors
                .iter()
                .any(|e| e.contains("grace period must be specified"))
        );
    }

    #[test]
    fn node_allocatable_rules() {
        let errors = errors_for(|c| {
            c.enforce_node_allocatable =
                vec!["pods".into(), "system-reserved".into(), "bogus".into()];
        });
        assert_eq!(errors.len(), 2, "{errors:#?}");
        let errors = errors_for(|c| {
            c.enforce_node_allocatable = vec!["pods".into()];
            c.cgroups_per_qos = false;
        });
        assert_eq!(errors.len(), 1);
        assert!(errors[0].contains("cgroupsPerQOS (--cgroups-per-qos)"));
    }

    #[test]
    fn parallel_pulls_and_shutdown() {
        let errors = errors_for(|c| {
            c.max_parallel_image_pulls = Some(3);
            c.shutdown_grace_period = Duration::from_secs(10);
            c.shutdown_grace_period_critical_pods = Duration::from_secs(20);
            c.shutdown_grace_period_by_pod_priority = vec![ShutdownGracePeriodByPodPriority {
                priority: 1,
                shutdown_grace_period_seconds: 5,
            }];
        });
        assert_eq!(errors.len(), 3, "{errors:#?}");
    }

    #[test]
    fn taints_and_misc() {
        let errors = errors_for(|c| {
            c.register_with_taints = vec![Taint {
                key: "ok".into(),
                effect: "Sometimes".into(),
                ..Taint::default()
            }];
            c.pod_cidr = "10.0.0.0/33".into();
            c.container_log_max_size = "10MB".into();
            c.reserved_system_cpus = "0-x".into();
            c.pod_logs_dir = "var/log/../pods".into();
        });
        assert_eq!(errors.len(), 6, "{errors:#?}");
    }

    #[test]
    fn node_ips() {
        assert_eq!(parse_node_ips(""), Ok(vec![]));
        assert_eq!(parse_node_ips("10.0.0.5").unwrap().len(), 1);
        assert_eq!(parse_node_ips("10.0.0.5, fd00::5").unwrap().len(), 2);
        assert!(
            parse_node_ips("10.0.0.5,10.0.0.6")
                .unwrap_err()
                .contains("dual-stack pair")
        );
        assert!(
            parse_node_ips("0.0.0.0,::1")
                .unwrap_err()
                .contains("cannot include")
        );
        assert!(
            parse_node_ips("10.0.0.300")
                .unwrap_err()
                .contains("could not parse")
        );
    }

    #[test]
    fn runtime_class_handlers() {
        let mut f = KubeletFlags::default();
        f.runtime_class_handlers
            .insert("fast".into(), "runc-alt".into());
        assert!(validate_flags(&f).is_empty());
        f.runtime_class_handlers
            .insert("Bad_Name".into(), "Bad.Handler".into());
        let errs = validate_flags(&f);
        assert_eq!(errs.len(), 2, "{errs:?}");
        assert!(errs[0].contains("invalid RuntimeClass name \"Bad_Name\""));
        assert!(errs[1].contains("invalid runtime handler \"Bad.Handler\""));
        f.runtime_class_handlers.remove("Bad_Name");
        f.kubeconfig = Some("/etc/kubernetes/kubelet.conf".into());
        assert!(validate_flags(&f)[0].contains("standalone mode only"));
    }

    #[test]
    fn node_labels() {
        let mut f = KubeletFlags::default();
        f.node_labels
            .insert("node-role.kubernetes.io/worker".into(), "".into());
        f.node_labels.insert("bad key".into(), "v".into());
        f.node_labels.insert("ok".into(), "bad value".into());
        let errors = validate_flags(&f);
        assert_eq!(errors.len(), 3, "{errors:#?}");
        assert!(
            errors
                .iter()
                .any(|e| e.contains("unknown 'kubernetes.io' or 'k8s.io' labels"))
        );
    }

    #[test]
    fn cpu_sets_and_cidrs() {
        assert!(parse_cpu_set("0-3,8,10-11").is_ok());
        assert!(parse_cpu_set("3-1").is_err());
        assert!(is_cidr("10.244.0.0/16"));
        assert!(is_cidr("fd00::/64"));
        assert!(!is_cidr("10.244.0.0"));
    }
}
