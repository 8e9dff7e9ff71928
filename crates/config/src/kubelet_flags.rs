//! Flag-only settings (upstream `KubeletFlags`): values that are specific to
//! one node or fixed for the node's lifetime and so are not part of the
//! shareable `KubeletConfiguration`.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::defaults::{DEFAULT_CERT_DIR, DEFAULT_ROOT_DIR};

/// Settings that only exist as command-line flags.
#[derive(Debug, Clone, PartialEq)]
pub struct KubeletFlags {
    /// `--kubeconfig`: API server credentials. `None` means standalone mode.
    pub kubeconfig: Option<PathBuf>,
    /// `--bootstrap-kubeconfig`.
    pub bootstrap_kubeconfig: Option<PathBuf>,
    /// `--hostname-override`, as given (the node name derived from it is
    /// [`crate::Settings::node_name`]).
    pub hostname_override: Option<String>,
    /// `--node-ip`: one IP, or a dual-stack pair (one IPv4 and one IPv6).
    pub node_ip: Vec<IpAddr>,
    /// `--cert-dir`. Default `/var/lib/kubelet/pki`; like upstream this does
    /// not follow `--root-dir`.
    pub cert_dir: PathBuf,
    /// `--cloud-provider`.
    pub cloud_provider: String,
    /// `--root-dir`. Default `/var/lib/kubelet`.
    pub root_dir: PathBuf,
    /// `--config`: the KubeletConfiguration file, if any.
    pub config_file: Option<PathBuf>,
    /// `--config-dir`: directory of `*.conf` drop-ins, if any.
    pub config_dir: Option<PathBuf>,
    /// `--node-labels`.
    pub node_labels: BTreeMap<String, String>,
    /// `--lock-file`.
    pub lock_file: Option<PathBuf>,
    /// `--exit-on-lock-contention`.
    pub exit_on_lock_contention: bool,
    /// `--seccomp-default`. Upstream honours it in addition to the
    /// `seccompDefault` config field (either one enables the default profile).
    pub seccomp_default: bool,
    /// `--runtime-cgroups`.
    pub runtime_cgroups: String,
    /// `--runtime-class-handlers` (kubelet-rs extension, standalone mode only):
    /// RuntimeClass name -> CRI runtime handler.
    pub runtime_class_handlers: BTreeMap<String, String>,
    /// `--pod-infra-container-image` (removed upstream in v1.35; accepted here).
    pub pod_infra_container_image: Option<String>,
    /// `--image-credential-provider-config`.
    pub image_credential_provider_config: Option<PathBuf>,
    /// `--image-credential-provider-bin-dir`.
    pub image_credential_provider_bin_dir: Option<PathBuf>,
    /// `--experimental-mounter-path` (deprecated).
    pub experimental_mounter_path: String,
    /// `--experimental-allocatable-ignore-eviction` (deprecated).
    pub experimental_allocatable_ignore_eviction: bool,
    /// `--minimum-container-ttl-duration` (deprecated).
    pub minimum_container_ttl_duration: Duration,
    /// `--maximum-dead-containers-per-container` (deprecated). Default 1.
    pub maximum_dead_containers_per_container: i32,
    /// `--maximum-dead-containers` (deprecated). Default -1 (no limit).
    pub maximum_dead_containers: i32,
    /// Run the static pods once and exit: the effective `runOnce` setting
    /// (from `--runonce` or the config file's `runOnce`), mirrored here for
    /// convenience. The kubelet server is not started in this mode; see
    /// [`crate::Settings::serve_kubelet_api`].
    pub runonce: bool,
    /// Log verbosity from `-v`/`--v` (or the config file's
    /// `logging.verbosity`), saturated to 255.
    pub verbosity: u8,
}

impl Default for KubeletFlags {
    fn default() -> Self {
        Self {
            kubeconfig: None,
            bootstrap_kubeconfig: None,
            hostname_override: None,
            node_ip: Vec::new(),
            cert_dir: PathBuf::from(DEFAULT_CERT_DIR),
            cloud_provider: String::new(),
            root_dir: PathBuf::from(DEFAULT_ROOT_DIR),
            config_file: None,
            config_dir: None,
            node_labels: BTreeMap::new(),
            lock_file: None,
            exit_on_lock_contention: false,
            seccomp_default: false,
            runtime_cgroups: String::new(),
            runtime_class_handlers: BTreeMap::new(),
            pod_infra_container_image: None,
            image_credential_provider_config: None,
            image_credential_provider_bin_dir: None,
            experimental_mounter_path: String::new(),
            experimental_allocatable_ignore_eviction: false,
            minimum_container_ttl_duration: Duration::ZERO,
            maximum_dead_containers_per_container: 1,
            maximum_dead_containers: -1,
            runonce: false,
            verbosity: 0,
        }
    }
}
