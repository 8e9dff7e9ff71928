//! What the node API needs from the kubelet's configuration. The binary fills this in
//! from the flags and the KubeletConfiguration, so the server does not depend on how
//! they are parsed.

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::time::Duration;

use kubelet_core::cm::CgroupLayout;

#[derive(Debug, Clone)]
pub struct ServerSettings {
    pub node_name: String,
    /// `address`: where the HTTPS and read-only servers listen (default 0.0.0.0).
    pub address: IpAddr,
    /// `port` (`--port`), HTTPS. Served only when `enable_server`.
    pub port: u16,
    /// `enableServer` (`--enable-server`).
    pub enable_server: bool,
    /// `readOnlyPort` (`--read-only-port`); 0 disables it.
    pub read_only_port: u16,
    /// `healthzPort` (`--healthz-port`); 0 disables it.
    pub healthz_port: u16,
    /// `healthzBindAddress` (`--healthz-bind-address`, default 127.0.0.1).
    pub healthz_bind_address: IpAddr,
    /// `enableDebuggingHandlers`: logs, exec, attach, port-forward, run, runningpods, configz.
    pub enable_debugging_handlers: bool,
    /// `enableSystemLogHandler`: `/logs/`.
    pub enable_system_log_handler: bool,
    pub tls: TlsSettings,
    pub auth: AuthSettings,
    /// `--root-dir`, whose filesystem is the node filesystem in `/stats/summary`.
    pub root_dir: PathBuf,
    /// `podLogsDir` (container logs).
    pub pod_logs_dir: PathBuf,
    /// Directory served by `/logs/` (upstream: /var/log).
    pub node_log_dir: PathBuf,
    /// Cgroup layout, to find pod cgroups for stats.
    pub cgroups: CgroupLayout,
    /// `--cloud-provider`, for `/spec/` when the machine does not tell.
    pub cloud_provider: String,
    /// KubeletPSI: pressure stall information in `/stats/summary` (cgroup v2 hosts).
    pub psi: bool,
    /// The effective KubeletConfiguration as JSON, served by `/configz`.
    pub configz: serde_json::Value,
}

#[derive(Debug, Clone, Default)]
pub struct TlsSettings {
    /// `tlsCertFile` / `tlsPrivateKeyFile`: a serving certificate (chain) and key.
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
    /// `--cert-dir`: where a self-signed kubelet.crt/kubelet.key is generated when no
    /// certificate is given, and reused afterwards.
    pub cert_dir: PathBuf,
    /// `tlsMinVersion`: VersionTLS10..VersionTLS13 (rustls serves 1.2 and 1.3 only).
    pub min_version: String,
    /// `tlsCipherSuites`: Go cipher suite names.
    pub cipher_suites: Vec<String>,
    /// `serverTLSBootstrap` in cluster mode: the certificate issued through a CSR,
    /// replaced when rotated (takes precedence over the files and the self-signed one).
    pub serving: Option<std::sync::Arc<crate::tls::ServingCert>>,
}

#[derive(Debug, Clone)]
pub struct AuthSettings {
    /// `authentication.anonymous.enabled` (`--anonymous-auth`).
    pub anonymous: bool,
    /// `authentication.x509.clientCAFile` (`--client-ca-file`).
    pub client_ca_file: Option<PathBuf>,
    /// `authentication.webhook.enabled` (bearer tokens through TokenReview).
    pub webhook_authentication: bool,
    /// `authorization.webhook.cacheAuthorizedTTL` / `cacheUnauthorizedTTL`.
    pub webhook_cache_authorized_ttl: Duration,
    pub webhook_cache_unauthorized_ttl: Duration,
    /// `authorization.mode`: `AlwaysAllow` or `Webhook`.
    pub authorization_mode: String,
}

impl Default for AuthSettings {
    fn default() -> Self {
        AuthSettings {
            anonymous: true,
            client_ca_file: None,
            webhook_authentication: false,
            webhook_cache_authorized_ttl: Duration::from_secs(300),
            webhook_cache_unauthorized_ttl: Duration::from_secs(30),
            authorization_mode: "AlwaysAllow".into(),
        }
    }
}

impl ServerSettings {
    /// Upstream's command-line defaults for `node_name`, with nothing listening unless
    /// the caller sets ports: a convenient start for tests.
    pub fn for_node(node_name: &str) -> Self {
        ServerSettings {
            node_name: node_name.to_string(),
            address: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            port: 10250,
            enable_server: true,
            read_only_port: 0,
            healthz_port: 0,
            healthz_bind_address: IpAddr::V4(Ipv4Addr::LOCALHOST),
            enable_debugging_handlers: true,
            enable_system_log_handler: true,
            tls: TlsSettings::default(),
            auth: AuthSettings::default(),
            root_dir: PathBuf::from("/var/lib/kubelet"),
            pod_logs_dir: PathBuf::from("/var/log/pods"),
            node_log_dir: PathBuf::from("/var/log"),
            cgroups: CgroupLayout::detect(true, "/", false),
            cloud_provider: String::new(),
            psi: true,
            configz: serde_json::Value::Object(Default::default()),
        }
    }
}
