//! Every `KubeletConfiguration` field with what kubelet-rs does with it: the one home
//! of that fact for config files (flags have theirs in `flags/spec.rs`), printed in
//! docs/configuration.md.
//!
//! - [`Status::Used`]: the value reaches the kubelet and is acted on.
//! - [`Status::NoEffect`]: accepted for drop-in compatibility; a config file that
//!   sets it to anything but the default gets a warning naming the field and why.
//! - [`Status::Refused`]: a value other than the default would make kubelet-rs behave
//!   against what the field asks (e.g. skip a safety check); the start fails.
//!
//! A row may name a sub-field (`logging.format`) when only part of a used field has
//! no effect.

use serde_json::Value;

use crate::KubeletConfiguration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Used,
    /// Accepted, no effect; the reason is printed with the warning.
    NoEffect(&'static str),
    /// A non-default value fails the start; the reason is printed with the error.
    Refused(&'static str),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldSpec {
    /// The JSON name (`cpuManagerPolicy`), or a dotted path to a sub-field.
    pub name: &'static str,
    pub status: Status,
}

const fn used(name: &'static str) -> FieldSpec {
    FieldSpec {
        name,
        status: Status::Used,
    }
}

const fn no_effect(name: &'static str, reason: &'static str) -> FieldSpec {
    FieldSpec {
        name,
        status: Status::NoEffect(reason),
    }
}

const fn refused(name: &'static str, reason: &'static str) -> FieldSpec {
    FieldSpec {
        name,
        status: Status::Refused(reason),
    }
}

const NO_CPU_MANAGER: &str = "there is no CPU manager; containers share all CPUs (policy none)";
const NO_MEMORY_MANAGER: &str =
    "there is no memory manager; no NUMA pinning of memory (policy None)";
const NO_TOPOLOGY_MANAGER: &str =
    "there is no topology manager; pods are admitted without NUMA alignment (policy none)";
const NO_SYSTEM_CGROUPS: &str =
    "the kubelet and runtime processes are not moved into cgroups by kubelet-rs";
const NO_QOS_RESERVED: &str = "memory limits on the QoS cgroups (QOSReserved) are not implemented";
const NO_PROFILING: &str = "no profiling or debug-flags handlers are served";
const NO_IPTABLES: &str = "kubelet-rs does not manage iptables rules";

/// Every top-level field of `KubeletConfiguration` (v1beta1), in declaration order,
/// then the sub-field rows.
#[rustfmt::skip]
pub const FIELDS: &[FieldSpec] = &[
    used("kind"),
    used("apiVersion"),
    used("enableServer"),
    used("staticPodPath"),
    used("podLogsDir"),
    no_effect("syncFrequency", "pods are synced on every change and re-checked every 1m (the default)"),
    used("fileCheckFrequency"),
    used("httpCheckFrequency"),
    used("staticPodURL"),
    used("staticPodURLHeader"),
    used("address"),
    used("port"),
    used("readOnlyPort"),
    used("tlsCertFile"),
    used("tlsPrivateKeyFile"),
    used("tlsCipherSuites"),
    no_effect("tlsCurvePreferences", "the TLS library's default key exchange groups are used"),
    used("tlsMinVersion"),
    used("rotateCertificates"),
    used("serverTLSBootstrap"),
    used("authentication"),
    used("authorization"),
    used("registryPullQPS"),
    used("registryBurst"),
    no_effect("imagePullCredentialsVerificationPolicy", "pulled-image credential verification is not implemented"),
    no_effect("preloadedImagesVerificationAllowlist", "pulled-image credential verification is not implemented"),
    used("eventRecordQPS"),
    used("eventBurst"),
    used("enableDebuggingHandlers"),
    no_effect("enableContentionProfiling", NO_PROFILING),
    used("healthzPort"),
    used("healthzBindAddress"),
    no_effect("oomScoreAdj", "the kubelet process's oom_score_adj is left as started"),
    used("clusterDomain"),
    used("clusterDNS"),
    no_effect("streamingConnectionIdleTimeout", "streaming sessions have no idle timeout"),
    used("nodeStatusUpdateFrequency"),
    used("nodeStatusReportFrequency"),
    used("nodeLeaseDurationSeconds"),
    used("imageMinimumGCAge"),
    used("imageMaximumGCAge"),
    used("imageGCHighThresholdPercent"),
    used("imageGCLowThresholdPercent"),
    no_effect("volumeStatsAggPeriod", "volume usage is measured when stats are requested"),
    no_effect("kubeletCgroups", NO_SYSTEM_CGROUPS),
    no_effect("systemCgroups", NO_SYSTEM_CGROUPS),
    used("cgroupRoot"),
    used("cgroupsPerQOS"),
    used("cgroupDriver"),
    no_effect("cpuManagerPolicy", NO_CPU_MANAGER),
    used("singleProcessOOMKill"),
    no_effect("cpuManagerPolicyOptions", NO_CPU_MANAGER),
    no_effect("cpuManagerReconcilePeriod", NO_CPU_MANAGER),
    no_effect("draManagerReconcilePeriod", "dynamic resource allocation is not implemented"),
    no_effect("memoryManagerPolicy", NO_MEMORY_MANAGER),
    no_effect("topologyManagerPolicy", NO_TOPOLOGY_MANAGER),
    no_effect("topologyManagerScope", NO_TOPOLOGY_MANAGER),
    no_effect("topologyManagerPolicyOptions", NO_TOPOLOGY_MANAGER),
    no_effect("qosReserved", NO_QOS_RESERVED),
    used("runtimeRequestTimeout"),
    no_effect("hairpinMode", "hairpin traffic is left to the CNI plugin"),
    used("maxPods"),
    no_effect("podCIDR", "pod IPs come from the CNI configuration"),
    used("podPidsLimit"),
    used("resolvConf"),
    used("runOnce"),
    used("cpuCFSQuota"),
    used("cpuCFSQuotaPeriod"),
    used("nodeStatusMaxImages"),
    no_effect("maxOpenFiles", "the kubelet's open-file limit is left as started"),
    no_effect("contentType", "the API client uses its default content type"),
    used("kubeAPIQPS"),
    used("kubeAPIBurst"),
    used("serializeImagePulls"),
    used("maxParallelImagePulls"),
    used("evictionHard"),
    used("evictionSoft"),
    used("evictionSoftGracePeriod"),
    used("evictionPressureTransitionPeriod"),
    used("evictionMaxPodGracePeriod"),
    used("evictionMinimumReclaim"),
    no_effect("mergeDefaultEvictionSettings", "evictionHard replaces the default thresholds as a whole"),
    no_effect("podsPerCore", "only maxPods limits the number of pods"),
    no_effect("enableControllerAttachDetach", "kubelet-rs attaches no volumes; the node is not annotated for the attach/detach controller"),
    refused("protectKernelDefaults", "kubelet-rs does not check kernel tunables against the kubelet's defaults; refusing rather than starting without the requested check"),
    no_effect("makeIPTablesUtilChains", NO_IPTABLES),
    no_effect("iptablesMasqueradeBit", NO_IPTABLES),
    no_effect("iptablesDropBit", NO_IPTABLES),
    used("featureGates"),
    used("failSwapOn"),
    used("memorySwap"),
    used("containerLogMaxSize"),
    used("containerLogMaxFiles"),
    no_effect("containerLogMaxWorkers", "logs are rotated by one worker"),
    used("containerLogMonitorInterval"),
    no_effect("configMapAndSecretChangeDetectionStrategy", "config maps and secrets are always watched (strategy Watch)"),
    used("systemReserved"),
    used("kubeReserved"),
    no_effect("reservedSystemCPUs", NO_CPU_MANAGER),
    no_effect("showHiddenMetricsForVersion", "no hidden metrics are served"),
    used("systemReservedCgroup"),
    used("kubeReservedCgroup"),
    used("enforceNodeAllocatable"),
    used("allowedUnsafeSysctls"),
    no_effect("volumePluginDir", "flex volume plugins are not supported"),
    used("providerID"),
    no_effect("kernelMemcgNotification", "memory pressure is observed on the monitoring interval"),
    used("logging"),
    used("enableSystemLogHandler"),
    no_effect("enableSystemLogQuery", "node log queries (journal) are not implemented; /logs/ serves files"),
    used("shutdownGracePeriod"),
    used("shutdownGracePeriodCriticalPods"),
    used("shutdownGracePeriodByPodPriority"),
    no_effect("crashLoopBackOff", "container restarts back off 10s doubling to 5 min"),
    no_effect("reservedMemory", NO_MEMORY_MANAGER),
    no_effect("enableProfilingHandler", NO_PROFILING),
    no_effect("enableDebugFlagsHandler", NO_PROFILING),
    used("seccompDefault"),
    used("memoryThrottlingFactor"),
    no_effect("memoryReservationPolicy", "the TieredReservation policy of MemoryQoS is not implemented"),
    used("registerWithTaints"),
    used("registerNode"),
    no_effect("tracing", "no OpenTelemetry traces are exported"),
    used("localStorageCapacityIsolation"),
    used("containerRuntimeEndpoint"),
    used("imageServiceEndpoint"),
    used("failCgroupV1"),
    no_effect("userNamespaces", "user namespaces for pods are not implemented"),
    no_effect("podHousekeepingPeriod", "pods are cleaned up on every relist"),
    // Parts of used fields.
    no_effect("logging.format", "logs are always text"),
    no_effect("logging.flushFrequency", "log lines are written as they come"),
    no_effect("logging.options", "logs are always text"),
];

/// Feature gates whose enabled behaviour kubelet-rs does not have: enabling one warns.
pub const GATES_WITHOUT_EFFECT: &[(&str, &str)] = &[(
    crate::feature_gates::QOS_RESERVED,
    "memory limits on the QoS cgroups (qosReserved) are not implemented",
)];

/// The row for `name`, if any.
pub fn field(name: &str) -> Option<&'static FieldSpec> {
    FIELDS.iter().find(|f| f.name == name)
}

/// The value at a dotted path of a serialized configuration.
fn at<'a>(value: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(value, |v, key| v.get(key))
}

/// Warnings for no-effect fields the config file sets to a non-default value, and
/// errors for refused fields whose effective value (file and flags) is not the default.
/// `doc` is the config document as read (drop-ins merged), `config` the effective
/// configuration, `defaults` the configuration of an empty config file.
pub(crate) fn check(
    doc: Option<&Value>,
    config: &KubeletConfiguration,
    defaults: &KubeletConfiguration,
) -> (Vec<String>, Vec<String>) {
    let (Ok(effective), Ok(default)) =
        (serde_json::to_value(config), serde_json::to_value(defaults))
    else {
        return (Vec::new(), Vec::new());
    };
    let mut warnings = Vec::new();
    let mut errors = Vec::new();
    for f in FIELDS {
        let differs = at(&effective, f.name) != at(&default, f.name);
        match f.status {
            Status::Used => {}
            Status::NoEffect(reason) => {
                let in_file = doc.is_some_and(|d| at(d, f.name).is_some());
                if in_file && differs {
                    warnings.push(format!(
                        "config field {} is accepted but has no effect in kubelet-rs: {reason}",
                        f.name
                    ));
                }
            }
            Status::Refused(reason) => {
                if differs {
                    let value = at(&effective, f.name)
                        .map(Value::to_string)
                        .unwrap_or_else(|| "(unset)".into());
                    errors.push(format!(
                        "{}: {value} is not supported by kubelet-rs ({reason}); remove it or set the default",
                        f.name
                    ));
                }
            }
        }
    }
    for (gate, reason) in GATES_WITHOUT_EFFECT {
        if config.feature_gates.get(*gate) == Some(&true) {
            warnings.push(format!(
                "feature gate {gate} is enabled but has no effect in kubelet-rs: {reason}"
            ));
        }
    }
    (warnings, errors)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    /// The JSON names of every `KubeletConfiguration` field, read from its source.
    fn declared_fields() -> Vec<String> {
        let src = include_str!("types.rs");
        let start = src
            .find("pub struct KubeletConfiguration {")
            .expect("struct");
        let body = &src[start..];
        let body = &body[..body.find("\n}\n").expect("struct end")];
        let mut names = Vec::new();
        let mut rename: Option<String> = None;
        for line in body.lines() {
            if let Some(i) = line.find("rename = \"") {
                let rest = &line[i + 10..];
                rename = Some(rest[..rest.find('"').expect("quote")].to_string());
            }
            let t = line.trim_start();
            if let Some(rest) = t.strip_prefix("pub ")
                && let Some((field, _)) = rest.split_once(':')
                && field
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c == '_' || c.is_ascii_digit())
            {
                let camel = rename.take().unwrap_or_else(|| {
                    let mut out = String::new();
                    let mut up = false;
                    for c in field.chars() {
                        if c == '_' {
                            up = true;
                        } else if up {
                            out.push(c.to_ascii_uppercase());
                            up = false;
                        } else {
                            out.push(c);
                        }
                    }
                    out
                });
                names.push(camel);
            }
        }
        names
    }

    #[test]
    fn every_field_has_exactly_one_row() {
        let declared = declared_fields();
        assert!(declared.len() > 120, "parsed {} fields", declared.len());
        let rows: Vec<&str> = FIELDS
            .iter()
            .map(|f| f.name)
            .filter(|n| !n.contains('.'))
            .collect();
        let unique: BTreeSet<&str> = rows.iter().copied().collect();
        assert_eq!(unique.len(), rows.len(), "a field has two rows");
        let declared_set: BTreeSet<&str> = declared.iter().map(String::as_str).collect();
        let missing: Vec<_> = declared_set.difference(&unique).collect();
        let extra: Vec<_> = unique.difference(&declared_set).collect();
        assert!(missing.is_empty(), "fields without a row: {missing:?}");
        assert!(extra.is_empty(), "rows for no field: {extra:?}");
    }

    #[test]
    fn the_docs_list_every_field_without_effect() {
        let docs = include_str!("../../../docs/configuration.md");
        for f in FIELDS.iter().filter(|f| f.status != Status::Used) {
            assert!(
                docs.contains(&format!("| `{}` |", f.name)),
                "docs/configuration.md lacks a row for {}",
                f.name
            );
        }
    }

    #[test]
    fn sub_field_rows_name_a_used_field() {
        for f in FIELDS.iter().filter(|f| f.name.contains('.')) {
            let parent = f.name.split('.').next().unwrap_or_default();
            assert_eq!(
                field(parent).map(|p| p.status),
                Some(Status::Used),
                "{}",
                f.name
            );
        }
    }

    fn decoded(yaml: &str) -> (Value, KubeletConfiguration) {
        let doc: Value = serde_saphyr::from_str(yaml).expect("yaml");
        let config = crate::file::decode(&doc, std::path::Path::new("test.yaml")).expect("decode");
        (doc, config)
    }

    fn defaults() -> KubeletConfiguration {
        decoded("{}").1
    }

    #[test]
    fn a_no_effect_field_set_in_the_file_warns_naming_it() {
        let (doc, config) = decoded("cpuManagerPolicy: static\nlogging: {format: json}\n");
        let (warnings, errors) = check(Some(&doc), &config, &defaults());
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(warnings.len(), 2, "{warnings:?}");
        assert!(warnings[0].starts_with(
            "config field cpuManagerPolicy is accepted but has no effect in kubelet-rs: "
        ));
        assert!(warnings[1].starts_with("config field logging.format "));
    }

    #[test]
    fn default_values_and_used_fields_do_not_warn() {
        let (doc, config) = decoded(
            "cpuManagerPolicy: none\nsyncFrequency: 1m\nmaxPods: 10\nlogging: {verbosity: 4}\n",
        );
        let (warnings, errors) = check(Some(&doc), &config, &defaults());
        assert!(warnings.is_empty(), "{warnings:?}");
        assert!(errors.is_empty(), "{errors:?}");
    }

    #[test]
    fn a_no_effect_value_from_flags_only_is_left_to_the_flag_warning() {
        let mut config = defaults();
        config.cpu_manager_policy = "static".into();
        let (warnings, _) = check(None, &config, &defaults());
        assert!(warnings.is_empty(), "{warnings:?}");
    }

    #[test]
    fn a_refused_field_with_a_non_default_value_is_an_error() {
        let (doc, config) = decoded("protectKernelDefaults: true\n");
        let (_, errors) = check(Some(&doc), &config, &defaults());
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(
            errors[0].starts_with("protectKernelDefaults: true is not supported by kubelet-rs"),
            "{}",
            errors[0]
        );
        let (doc, config) = decoded("protectKernelDefaults: false\n");
        assert!(check(Some(&doc), &config, &defaults()).1.is_empty());
    }

    #[test]
    fn an_enabled_gate_without_effect_warns_naming_it() {
        let (doc, config) = decoded("featureGates: {QOSReserved: true}\n");
        let (warnings, _) = check(Some(&doc), &config, &defaults());
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(
            warnings[0].starts_with("feature gate QOSReserved is enabled but has no effect"),
            "{}",
            warnings[0]
        );
        let (doc, config) = decoded("featureGates: {QOSReserved: false}\n");
        assert!(check(Some(&doc), &config, &defaults()).0.is_empty());
    }
}
