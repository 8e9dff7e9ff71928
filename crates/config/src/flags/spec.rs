//! The table of every kubelet flag accepted (upstream v1.35 names), with its
//! value type, deprecation notice and whether kubelet-rs acts on it.
//!
//! Help texts are kubelet-rs' own; the deprecation notices are upstream's,
//! since scripts and people grep for them.

use super::values::{self, Parser};

/// Upstream's notice for every flag that maps to a `KubeletConfiguration` field.
pub(crate) const CONFIG_FILE: &str = "This parameter should be set via the config file specified by the Kubelet's --config flag. See https://kubernetes.io/docs/tasks/administer-cluster/kubelet-config-file/ for more information.";
const USE_EVICTION: &str =
    "Use --eviction-hard or --eviction-soft instead. Will be removed in a future version.";
const REMOVED_1_25: &str = "will be removed in 1.25 or later.";
const MOUNTER: &str = "will be removed in 1.25 or later. in favor of using CSI.";
const POD_INFRA: &str =
    "will be removed in 1.35. Image garbage collector will get sandbox image information from CRI.";

/// How a flag's value is written and parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Bool,
    Int32,
    Int64,
    Level,
    Duration,
    Str,
    Ip,
    Quantity,
    StrSlice,
    Map,
    MapNoSplit,
    LangleMap,
    LabelMap,
    BoolMap,
    ColonMultimap,
    Taints,
    ReservedMemory,
    VModule,
    Version,
}

impl Kind {
    pub(crate) fn parser(self) -> Parser {
        match self {
            Kind::Bool => values::bool_value,
            Kind::Int32 => values::int32_value,
            Kind::Int64 => values::int64_value,
            Kind::Level => values::level_value,
            Kind::Duration => values::duration_value,
            Kind::Str => values::string_value,
            Kind::Ip => values::ip_value,
            Kind::Quantity => values::quantity_value,
            Kind::StrSlice => values::string_slice_value,
            Kind::Map => values::map_value,
            Kind::MapNoSplit => values::map_no_split_value,
            Kind::LangleMap => values::langle_map_value,
            Kind::LabelMap => values::label_map_value,
            Kind::BoolMap => values::bool_map_value,
            Kind::ColonMultimap => values::colon_multimap_value,
            Kind::Taints => values::taints_value,
            Kind::ReservedMemory => values::reserved_memory_value,
            Kind::VModule => values::vmodule_value,
            Kind::Version => values::version_value,
        }
    }

    pub(crate) fn value_name(self) -> &'static str {
        match self {
            Kind::Bool => "bool",
            Kind::Int32 => "int32",
            Kind::Int64 => "int",
            Kind::Level => "level",
            Kind::Duration => "duration",
            Kind::Str => "string",
            Kind::Ip => "ip",
            Kind::Quantity => "quantity",
            Kind::StrSlice => "strings",
            Kind::Map | Kind::MapNoSplit | Kind::LabelMap => "key=value,...",
            Kind::LangleMap => "signal<quantity,...",
            Kind::BoolMap => "Gate=bool,...",
            Kind::ColonMultimap => "key:value,...",
            Kind::Taints => "key=value:Effect,...",
            Kind::ReservedMemory => "numa:type=quantity,...",
            Kind::VModule => "pattern=N,...",
            Kind::Version => "version",
        }
    }

    /// Flags that take an optional `=value` and mean `true` when bare.
    pub(crate) fn is_bool_like(self) -> bool {
        matches!(self, Kind::Bool | Kind::Version)
    }

    /// Flags whose repeated occurrences accumulate (lists and maps); for the
    /// others the last occurrence wins, as with pflag.
    pub(crate) fn accumulates(self) -> bool {
        matches!(
            self,
            Kind::StrSlice
                | Kind::Map
                | Kind::MapNoSplit
                | Kind::LangleMap
                | Kind::LabelMap
                | Kind::BoolMap
                | Kind::ColonMultimap
                | Kind::Taints
                | Kind::ReservedMemory
                | Kind::VModule
        )
    }
}

/// Whether kubelet-rs acts on a flag's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Support {
    /// The value reaches [`crate::Settings`] and kubelet-rs uses it.
    Used,
    /// Accepted (and recorded in the settings) for command-line
    /// compatibility, but kubelet-rs does not implement the feature.
    NoEffect,
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct FlagSpec {
    pub name: &'static str,
    pub kind: Kind,
    pub deprecated: Option<&'static str>,
    pub support: Support,
    pub help: &'static str,
}

const fn flag(
    name: &'static str,
    kind: Kind,
    deprecated: Option<&'static str>,
    support: Support,
    help: &'static str,
) -> FlagSpec {
    FlagSpec {
        name,
        kind,
        deprecated,
        support,
        help,
    }
}

use Kind::*;
use Support::{NoEffect, Used};

const CFG: Option<&str> = Some(CONFIG_FILE);

/// Every accepted flag, in alphabetical order (the order of `--help`).
#[rustfmt::skip]
pub(crate) const FLAGS: &[FlagSpec] = &[
    flag("address", Ip, CFG, Used, "IP address the kubelet API serves on (0.0.0.0 or :: for all)"),
    flag("allowed-unsafe-sysctls", StrSlice, CFG, Used, "Unsafe sysctls or sysctl patterns (ending in *) that pods may set"),
    flag("anonymous-auth", Bool, CFG, Used, "Treat unauthenticated kubelet API requests as system:anonymous"),
    flag("authentication-token-webhook", Bool, CFG, Used, "Authenticate bearer tokens with the TokenReview API"),
    flag("authentication-token-webhook-cache-ttl", Duration, CFG, NoEffect, "How long to cache token review results"),
    flag("authorization-mode", Str, CFG, Used, "Kubelet API authorization: AlwaysAllow or Webhook"),
    flag("authorization-webhook-cache-authorized-ttl", Duration, CFG, Used, "How long to cache 'authorized' answers"),
    flag("authorization-webhook-cache-unauthorized-ttl", Duration, CFG, Used, "How long to cache 'unauthorized' answers"),
    flag("bootstrap-kubeconfig", Str, None, Used, "Kubeconfig used to obtain a client certificate when --kubeconfig does not exist"),
    flag("cert-dir", Str, None, Used, "Directory of the kubelet's TLS certificates (default /var/lib/kubelet/pki)"),
    flag("cgroup-driver", Str, CFG, Used, "Cgroup driver: cgroupfs or systemd"),
    flag("cgroup-root", Str, CFG, Used, "Root cgroup for pods (empty: the runtime's default)"),
    flag("cgroups-per-qos", Bool, CFG, Used, "Create the QoS and pod cgroup hierarchy"),
    flag("client-ca-file", Str, CFG, Used, "CA bundle used to authenticate client certificates"),
    flag("cloud-provider", Str, None, NoEffect, "Cloud provider: empty or 'external'"),
    flag("cluster-dns", StrSlice, CFG, Used, "Comma-separated cluster DNS server IPs for ClusterFirst pods"),
    flag("cluster-domain", Str, CFG, Used, "Cluster DNS domain added to pod search paths"),
    flag("config", Str, None, Used, "KubeletConfiguration file; flags given on the command line override it"),
    flag("config-dir", Str, None, Used, "Directory of *.conf drop-ins merged over --config in lexical order"),
    flag("container-log-max-files", Int32, CFG, Used, "Maximum number of log files kept per container (>= 2)"),
    flag("container-log-max-size", Str, CFG, Used, "Size at which a container log is rotated (e.g. 10Mi)"),
    flag("container-runtime-endpoint", Str, CFG, Used, "CRI runtime endpoint, e.g. unix:///run/containerd/containerd.sock"),
    flag("contention-profiling", Bool, CFG, NoEffect, "Enable block profiling"),
    flag("cpu-cfs-quota", Bool, CFG, Used, "Enforce CPU limits with CFS quota"),
    flag("cpu-cfs-quota-period", Duration, CFG, Used, "CFS quota period (cpu.cfs_period_us)"),
    flag("cpu-manager-policy", Str, CFG, NoEffect, "CPU manager policy: none or static"),
    flag("cpu-manager-policy-options", MapNoSplit, CFG, NoEffect, "CPU manager policy options (key=value, repeatable)"),
    flag("cpu-manager-reconcile-period", Duration, CFG, NoEffect, "CPU manager reconciliation period"),
    flag("enable-controller-attach-detach", Bool, CFG, NoEffect, "Let the attach/detach controller manage this node's volumes"),
    flag("enable-debugging-handlers", Bool, CFG, Used, "Serve logs, exec, attach and port-forward endpoints"),
    flag("enable-server", Bool, CFG, Used, "Serve the kubelet API"),
    flag("enforce-node-allocatable", StrSlice, CFG, Used, "Node allocatable enforcement levels (none, pods, system-reserved, kube-reserved, ...)"),
    flag("event-burst", Int32, CFG, Used, "Event creation burst"),
    flag("event-qps", Int32, CFG, Used, "Event creations per second (0: default)"),
    flag("eviction-hard", LangleMap, CFG, Used, "Hard eviction thresholds, e.g. memory.available<1Gi"),
    flag("eviction-max-pod-grace-period", Int32, CFG, Used, "Maximum grace period (seconds) for soft evictions"),
    flag("eviction-minimum-reclaim", Map, CFG, Used, "Minimum reclaim per signal, e.g. imagefs.available=2Gi"),
    flag("eviction-pressure-transition-period", Duration, CFG, Used, "Wait before leaving an eviction pressure condition"),
    flag("eviction-soft", LangleMap, CFG, Used, "Soft eviction thresholds, e.g. memory.available<1.5Gi"),
    flag("eviction-soft-grace-period", Map, CFG, Used, "Grace periods for soft thresholds, e.g. memory.available=1m30s"),
    flag("exit-on-lock-contention", Bool, None, NoEffect, "Exit when another process contends for --lock-file"),
    flag("experimental-allocatable-ignore-eviction", Bool, Some(REMOVED_1_25), NoEffect, "Ignore hard eviction thresholds when computing node allocatable"),
    flag("experimental-mounter-path", Str, Some(MOUNTER), NoEffect, "Path of a mount helper binary"),
    flag("fail-cgroupv1", Bool, None, Used, "Refuse to start on hosts using cgroup v1"),
    flag("fail-swap-on", Bool, CFG, Used, "Refuse to start when swap is enabled"),
    flag("feature-gates", BoolMap, CFG, Used, "Feature gates, e.g. Gate1=true,Gate2=false"),
    flag("file-check-frequency", Duration, CFG, Used, "How often static pod files are re-read"),
    flag("hairpin-mode", Str, CFG, NoEffect, "Hairpin NAT mode: promiscuous-bridge, hairpin-veth or none"),
    flag("healthz-bind-address", Ip, CFG, Used, "IP address of the healthz endpoint"),
    flag("healthz-port", Int32, CFG, Used, "Port of the healthz endpoint (0 disables it)"),
    flag("hostname-override", Str, None, Used, "Node name to use instead of the host name"),
    flag("http-check-frequency", Duration, CFG, Used, "How often --manifest-url is polled"),
    flag("image-credential-provider-bin-dir", Str, None, NoEffect, "Directory of image credential provider plugins"),
    flag("image-credential-provider-config", Str, None, NoEffect, "Image credential provider config file or directory"),
    flag("image-gc-high-threshold", Int32, CFG, Used, "Disk usage percent above which image GC always runs"),
    flag("image-gc-low-threshold", Int32, CFG, Used, "Disk usage percent image GC frees down to"),
    flag("image-service-endpoint", Str, CFG, Used, "CRI image endpoint (default: the runtime endpoint)"),
    flag("kernel-memcg-notification", Bool, CFG, NoEffect, "Use kernel memcg notifications for memory eviction"),
    flag("kube-api-burst", Int32, CFG, Used, "API server request burst"),
    flag("kube-api-content-type", Str, CFG, NoEffect, "Content type of API server requests"),
    flag("kube-api-qps", Int32, CFG, Used, "API server requests per second"),
    flag("kube-reserved", Map, CFG, Used, "Resources reserved for Kubernetes components, e.g. cpu=200m,memory=500Mi"),
    flag("kube-reserved-cgroup", Str, CFG, Used, "Cgroup of Kubernetes components for --kube-reserved"),
    flag("kubeconfig", Str, None, Used, "Kubeconfig for the API server; without it the kubelet runs standalone"),
    flag("kubelet-cgroups", Str, CFG, NoEffect, "Cgroup to run the kubelet in"),
    flag("local-storage-capacity-isolation", Bool, CFG, Used, "Enforce ephemeral storage requests and limits"),
    flag("lock-file", Str, None, NoEffect, "Lock file the kubelet holds while running"),
    flag("log-flush-frequency", Duration, None, NoEffect, "Maximum time between log flushes"),
    flag("log-json-info-buffer-size", Quantity, CFG, NoEffect, "Info stream buffer size for split JSON output"),
    flag("log-json-split-stream", Bool, CFG, NoEffect, "JSON format: errors to stderr, info to stdout"),
    flag("log-text-info-buffer-size", Quantity, CFG, NoEffect, "Info stream buffer size for split text output"),
    flag("log-text-split-stream", Bool, CFG, NoEffect, "Text format: errors to stderr, info to stdout"),
    flag("logging-format", Str, CFG, NoEffect, "Log format: text or json"),
    flag("make-iptables-util-chains", Bool, CFG, NoEffect, "Create the KUBE-IPTABLES-HINT chain"),
    flag("manifest-url", Str, CFG, Used, "URL serving static pod manifests"),
    flag("manifest-url-header", ColonMultimap, CFG, Used, "HTTP headers for --manifest-url, e.g. 'a:x,b:y' (repeatable; keys may repeat)"),
    flag("max-open-files", Int64, CFG, NoEffect, "Open file limit for the kubelet process"),
    flag("max-pods", Int32, CFG, Used, "Maximum number of pods on this node"),
    flag("maximum-dead-containers", Int32, Some(USE_EVICTION), Used, "Maximum dead containers kept node-wide (negative: no limit)"),
    flag("maximum-dead-containers-per-container", Int32, Some(USE_EVICTION), Used, "Maximum dead instances kept per container"),
    flag("memory-manager-policy", Str, CFG, NoEffect, "Memory manager policy: None or Static"),
    flag("minimum-container-ttl-duration", Duration, Some(USE_EVICTION), Used, "Minimum age of a dead container before garbage collection"),
    flag("minimum-image-ttl-duration", Duration, CFG, Used, "Minimum age of an unused image before garbage collection"),
    flag("node-ip", Str, None, Used, "Node IP, or comma-separated IPv4,IPv6 dual-stack pair"),
    flag("node-labels", LabelMap, None, Used, "Labels added when registering the node, e.g. a=b,c=d"),
    flag("node-status-max-images", Int32, CFG, Used, "Maximum images reported in node status (-1: no limit)"),
    flag("node-status-update-frequency", Duration, CFG, Used, "How often node status is computed"),
    flag("oom-score-adj", Int32, CFG, NoEffect, "oom_score_adj of the kubelet process, in [-1000, 1000]"),
    flag("pod-cidr", Str, CFG, NoEffect, "Pod CIDR, used in standalone mode"),
    flag("pod-infra-container-image", Str, Some(POD_INFRA), Used, "Sandbox (pause) image protected from image GC"),
    flag("pod-manifest-path", Str, CFG, Used, "Static pod manifest directory or file"),
    flag("pod-max-pids", Int64, CFG, Used, "Maximum processes per pod (-1: node allocatable)"),
    flag("pods-per-core", Int32, CFG, NoEffect, "Maximum pods per CPU core (0: no limit)"),
    flag("port", Int32, CFG, Used, "Port of the kubelet API"),
    flag("protect-kernel-defaults", Bool, CFG, NoEffect, "Fail instead of adjusting kernel tunables"),
    flag("provider-id", Str, None, Used, "Provider ID of this node"),
    flag("qos-reserved", Map, CFG, NoEffect, "Resource percentages reserved per QoS class, e.g. memory=50%"),
    flag("read-only-port", Int32, CFG, Used, "Unauthenticated read-only port (0 disables it)"),
    flag("register-node", Bool, CFG, Used, "Register the node with the API server"),
    flag("register-with-taints", Taints, CFG, Used, "Taints added when registering the node, e.g. key=value:NoSchedule"),
    flag("registry-burst", Int32, CFG, Used, "Image pull burst"),
    flag("registry-qps", Int32, CFG, Used, "Image pulls per second (0: unlimited)"),
    flag("reserved-cpus", Str, CFG, NoEffect, "CPU list reserved for system and Kubernetes daemons"),
    flag("reserved-memory", ReservedMemory, CFG, NoEffect, "Per-NUMA memory reservations, e.g. 0:memory=1Gi (repeatable)"),
    flag("resolv-conf", Str, CFG, Used, "Resolver config used as the base of pod DNS"),
    flag("root-dir", Str, None, Used, "Kubelet state directory (default /var/lib/kubelet)"),
    flag("rotate-certificates", Bool, CFG, Used, "Rotate the client certificate through the API server"),
    flag("rotate-server-certificates", Bool, CFG, Used, "Request and rotate the serving certificate through the API server"),
    flag("runonce", Bool, CFG, Used, "Start the static pods once and exit (the kubelet API is not served)"),
    flag("runtime-cgroups", Str, None, NoEffect, "Cgroup of the container runtime"),
    flag("runtime-class-handlers", Map, None, Used, "kubelet-rs extension, standalone mode only: RuntimeClass name to CRI runtime handler, e.g. fast=runc-alt,sandboxed=runsc (a pod naming an unmapped RuntimeClass is refused)"),
    flag("runtime-request-timeout", Duration, CFG, Used, "Timeout of CRI calls other than pull, logs, exec and attach"),
    flag("seccomp-default", Bool, None, Used, "Use RuntimeDefault as the default seccomp profile"),
    flag("serialize-image-pulls", Bool, CFG, Used, "Pull one image at a time"),
    flag("streaming-connection-idle-timeout", Duration, CFG, NoEffect, "Idle timeout of streaming connections (no effect upstream either)"),
    flag("sync-frequency", Duration, CFG, NoEffect, "Maximum period between pod syncs"),
    flag("system-cgroups", Str, CFG, NoEffect, "Cgroup for non-kernel processes outside containers"),
    flag("system-reserved", Map, CFG, Used, "Resources reserved for the OS, e.g. cpu=200m,memory=500Mi"),
    flag("system-reserved-cgroup", Str, CFG, Used, "Cgroup of OS daemons for --system-reserved"),
    flag("tls-cert-file", Str, CFG, Used, "Serving certificate (self-signed into --cert-dir when unset)"),
    flag("tls-cipher-suites", StrSlice, CFG, Used, "Comma-separated TLS cipher suites"),
    flag("tls-min-version", Str, CFG, Used, "Minimum TLS version: VersionTLS10..VersionTLS13"),
    flag("tls-private-key-file", Str, CFG, Used, "Private key of --tls-cert-file"),
    flag("topology-manager-policy", Str, CFG, NoEffect, "Topology manager policy: none, best-effort, restricted, single-numa-node"),
    flag("topology-manager-policy-options", MapNoSplit, CFG, NoEffect, "Topology manager policy options (key=value, repeatable)"),
    flag("topology-manager-scope", Str, CFG, NoEffect, "Topology manager scope: container or pod"),
    flag("v", Level, None, Used, "Log verbosity level"),
    flag("version", Version, None, Used, "Print the version and exit"),
    flag("vmodule", VModule, None, NoEffect, "Per-file log verbosity, e.g. server=4"),
    flag("volume-plugin-dir", Str, CFG, NoEffect, "Directory of flexvolume plugins"),
    flag("volume-stats-agg-period", Duration, CFG, NoEffect, "How often volume disk usage is computed"),
];

/// Looks a flag up by its long name.
#[cfg(test)]
pub(crate) fn find(name: &str) -> Option<&'static FlagSpec> {
    FLAGS.iter().find(|spec| spec.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_sorted_and_unique() {
        for pair in FLAGS.windows(2) {
            assert!(
                pair[0].name < pair[1].name,
                "{} >= {}",
                pair[0].name,
                pair[1].name
            );
        }
    }

    #[test]
    fn documented_upstream_flags_are_all_present() {
        // A sample across every group of upstream v1.35 flags.
        for name in [
            "pod-manifest-path",
            "manifest-url",
            "manifest-url-header",
            "file-check-frequency",
            "http-check-frequency",
            "sync-frequency",
            "container-runtime-endpoint",
            "image-service-endpoint",
            "runtime-request-timeout",
            "max-pods",
            "cgroup-driver",
            "cgroups-per-qos",
            "cgroup-root",
            "cluster-dns",
            "cluster-domain",
            "resolv-conf",
            "address",
            "port",
            "read-only-port",
            "healthz-port",
            "healthz-bind-address",
            "enable-server",
            "tls-cert-file",
            "tls-private-key-file",
            "tls-min-version",
            "tls-cipher-suites",
            "anonymous-auth",
            "client-ca-file",
            "authorization-mode",
            "authentication-token-webhook",
            "serialize-image-pulls",
            "pod-infra-container-image",
            "fail-swap-on",
            "pod-cidr",
            "max-open-files",
            "node-status-update-frequency",
            "eviction-hard",
            "kubeconfig",
            "bootstrap-kubeconfig",
            "cert-dir",
            "root-dir",
            "hostname-override",
            "node-ip",
            "node-labels",
            "config",
            "config-dir",
            "runonce",
            "register-with-taints",
            "v",
            "vmodule",
            "log-flush-frequency",
            "version",
            "feature-gates",
            "lock-file",
            "seccomp-default",
            "fail-cgroupv1",
        ] {
            assert!(find(name).is_some(), "missing --{name}");
        }
    }

    #[test]
    fn docs_list_every_flag_without_effect() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/configuration.md");
        let docs = std::fs::read_to_string(path).expect("docs/configuration.md");
        let section = docs
            .split("## Accepted flags without effect")
            .nth(1)
            .and_then(|rest| rest.split("\n## ").next())
            .expect("the section listing flags without effect");
        for spec in FLAGS {
            let listed = section.contains(&format!("`--{}`", spec.name));
            assert_eq!(
                listed,
                spec.support == Support::NoEffect,
                "--{} in docs/configuration.md",
                spec.name
            );
        }
    }

    #[test]
    fn config_flags_carry_upstream_notice() {
        let port = find("port").unwrap();
        assert_eq!(port.deprecated, Some(CONFIG_FILE));
        // Logging verbosity, vmodule, flush frequency and provider-id are not deprecated upstream.
        for name in [
            "v",
            "vmodule",
            "log-flush-frequency",
            "provider-id",
            "hostname-override",
        ] {
            assert_eq!(find(name).unwrap().deprecated, None, "{name}");
        }
    }
}
