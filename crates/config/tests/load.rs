//! End-to-end tests of `kubelet_config::load`: command line, config files,
//! precedence, warnings and validation.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::error::ErrorKind;
use kubelet_config::{ConfigError, Loaded, load};

const HEADER: &str = "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n";
const CONFIG_FILE_NOTICE: &str = "This parameter should be set via the config file specified by the Kubelet's --config flag. See https://kubernetes.io/docs/tasks/administer-cluster/kubelet-config-file/ for more information.";

fn run(args: &[&str]) -> Result<Loaded, ConfigError> {
    load(std::iter::once("kubelet").chain(args.iter().copied()))
}

fn ok(args: &[&str]) -> Loaded {
    match run(args) {
        Ok(loaded) => loaded,
        Err(e) => panic!("load({args:?}) failed: {e}"),
    }
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    std::fs::write(&path, text).unwrap();
    path
}

fn arg(flag: &str, path: &Path) -> String {
    format!("--{flag}={}", path.display())
}

#[test]
fn without_a_config_file_the_flag_defaults_apply() {
    let loaded = ok(&[]);
    let c = &loaded.settings.config;
    assert_eq!(c.read_only_port, 10255);
    assert!(c.authentication.anonymous.enabled);
    assert!(!c.authentication.webhook.enabled);
    assert_eq!(c.authorization.mode, "AlwaysAllow");
    assert_eq!(c.port, 10250);
    assert_eq!(c.sync_frequency, Duration::from_secs(60));
    assert_eq!(
        c.container_runtime_endpoint,
        "unix:///run/containerd/containerd.sock"
    );
    let f = &loaded.settings.flags;
    assert_eq!(f.root_dir, PathBuf::from("/var/lib/kubelet"));
    assert_eq!(f.cert_dir, PathBuf::from("/var/lib/kubelet/pki"));
    assert_eq!(f.config_file, None);
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    assert!(!loaded.settings.node_name.is_empty());
}

#[test]
fn a_yaml_config_file_is_read_with_file_defaults() {
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "{HEADER}staticPodPath: /etc/kubernetes/manifests\nport: 11250\nsyncFrequency: 30s\nfileCheckFrequency: 1m30s\nclusterDNS: [10.96.0.10]\nclusterDomain: cluster.local\ncgroupDriver: systemd\nstaticPodURLHeader:\n  X-Token: [a, b]\n"
    );
    let path = write(dir.path(), "kubelet.yaml", &text);
    let loaded = ok(&[&arg("config", &path)]);
    let c = &loaded.settings.config;
    assert_eq!(c.static_pod_path, "/etc/kubernetes/manifests");
    assert_eq!(c.port, 11250);
    assert_eq!(c.sync_frequency, Duration::from_secs(30));
    assert_eq!(c.file_check_frequency, Duration::from_secs(90));
    assert_eq!(c.http_check_frequency, Duration::from_secs(20));
    assert_eq!(c.cluster_dns, ["10.96.0.10"]);
    assert_eq!(c.cluster_domain, "cluster.local");
    assert_eq!(c.cgroup_driver, "systemd");
    assert_eq!(c.static_pod_url_header["X-Token"], ["a", "b"]);
    // File defaults, not the command-line-era ones.
    assert_eq!(c.read_only_port, 0);
    assert!(!c.authentication.anonymous.enabled);
    assert!(c.authentication.webhook.enabled);
    assert_eq!(c.authorization.mode, "Webhook");
    assert_eq!(c.max_pods, 110);
    assert_eq!(loaded.settings.flags.config_file, Some(path));
}

#[test]
fn a_json_config_file_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let text = r#"{"apiVersion": "kubelet.config.k8s.io/v1beta1", "kind": "KubeletConfiguration",
        "maxPods": 42, "authentication": {"anonymous": {"enabled": true}}, "evictionHard": {"memory.available": "200Mi"}}"#;
    let path = write(dir.path(), "kubelet.json", text);
    let c = ok(&[&arg("config", &path)]).settings.config;
    assert_eq!(c.max_pods, 42);
    assert!(c.authentication.anonymous.enabled);
    assert!(
        c.authentication.webhook.enabled,
        "sibling fields keep their defaults"
    );
    assert_eq!(
        c.eviction_hard,
        BTreeMap::from([("memory.available".to_string(), "200Mi".to_string())])
    );
}

#[test]
fn only_explicit_flags_override_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let text = format!("{HEADER}port: 11250\nmaxPods: 50\nreadOnlyPort: 0\nfailSwapOn: false\n");
    let path = write(dir.path(), "kubelet.yaml", &text);
    let loaded = ok(&[&arg("config", &path), "--max-pods", "60", "--fail-swap-on"]);
    let c = &loaded.settings.config;
    assert_eq!(c.max_pods, 60, "flag wins");
    assert!(c.fail_swap_on, "bare bool flag means true and wins");
    assert_eq!(c.port, 11250, "--port not given: the file's value stays");
    assert_eq!(
        c.read_only_port, 0,
        "the flag default (10255) does not override the file"
    );
}

#[test]
fn feature_gates_merge_key_by_key() {
    let dir = tempfile::tempdir().unwrap();
    let text = format!("{HEADER}featureGates:\n  A: true\n  B: true\n");
    let path = write(dir.path(), "kubelet.yaml", &text);
    let c = ok(&[&arg("config", &path), "--feature-gates=B=false,C=true"])
        .settings
        .config;
    assert_eq!(
        c.feature_gates,
        BTreeMap::from([("A".into(), true), ("B".into(), false), ("C".into(), true)])
    );
}

#[test]
fn map_flags_replace_the_file_value() {
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "{HEADER}staticPodURLHeader:\n  Old: [x]\nevictionHard:\n  memory.available: 1Gi\n"
    );
    let path = write(dir.path(), "kubelet.yaml", &text);
    let c = ok(&[
        &arg("config", &path),
        "--manifest-url-header=a:hello,b:again",
        "--manifest-url-header",
        "b:beautiful",
        "--eviction-hard=nodefs.available<5%",
    ])
    .settings
    .config;
    let expected: BTreeMap<String, Vec<String>> = BTreeMap::from([
        ("a".into(), vec!["hello".into()]),
        ("b".into(), vec!["again".into(), "beautiful".into()]),
    ]);
    assert_eq!(c.static_pod_url_header, expected);
    assert_eq!(
        c.eviction_hard,
        BTreeMap::from([("nodefs.available".into(), "5%".into())])
    );
}

#[test]
fn deprecated_flags_warn_with_upstream_wording_and_still_work() {
    let loaded = ok(&[
        "--pod-manifest-path=/etc/kubernetes/manifests",
        "--hostname-override=Node-A",
        "--file-check-frequency",
        "5s",
        "--minimum-container-ttl-duration=1m",
    ]);
    assert_eq!(
        loaded.warnings,
        [
            format!("Flag --pod-manifest-path has been deprecated, {CONFIG_FILE_NOTICE}"),
            format!("Flag --file-check-frequency has been deprecated, {CONFIG_FILE_NOTICE}"),
            "Flag --minimum-container-ttl-duration has been deprecated, Use --eviction-hard or --eviction-soft instead. Will be removed in a future version.".to_string(),
        ]
    );
    let s = &loaded.settings;
    assert_eq!(s.config.static_pod_path, "/etc/kubernetes/manifests");
    assert_eq!(s.config.file_check_frequency, Duration::from_secs(5));
    assert_eq!(
        s.flags.minimum_container_ttl_duration,
        Duration::from_secs(60)
    );
    assert_eq!(s.node_name, "node-a");
    assert_eq!(s.flags.hostname_override.as_deref(), Some("Node-A"));
}

#[test]
fn unimplemented_flags_are_accepted_with_a_notice() {
    let loaded = ok(&[
        "--cpu-manager-policy=static",
        "--lock-file=/run/kubelet.lock",
    ]);
    assert!(loaded.warnings.contains(
        &"flag --cpu-manager-policy is accepted but has no effect in kubelet-rs".to_string()
    ));
    assert!(
        loaded
            .warnings
            .contains(&"flag --lock-file is accepted but has no effect in kubelet-rs".to_string())
    );
    assert_eq!(loaded.settings.config.cpu_manager_policy, "static");
    assert_eq!(
        loaded.settings.flags.lock_file,
        Some(PathBuf::from("/run/kubelet.lock"))
    );
}

#[test]
fn usage_errors_are_clap_errors() {
    let Err(ConfigError::Clap(e)) = run(&["--no-such-flag"]) else {
        panic!("expected a clap error");
    };
    assert_eq!(e.kind(), ErrorKind::UnknownArgument);
    let Err(ConfigError::Clap(e)) = run(&["--file-check-frequency=abc"]) else {
        panic!("expected a clap error");
    };
    assert_eq!(e.kind(), ErrorKind::ValueValidation);
    assert!(e.to_string().contains("--file-check-frequency"));
    let Err(ConfigError::Clap(e)) = run(&["--version"]) else {
        panic!("expected a clap error");
    };
    assert_eq!(e.kind(), ErrorKind::DisplayVersion);
    let Err(ConfigError::Clap(e)) = run(&["--help"]) else {
        panic!("expected a clap error");
    };
    assert_eq!(e.kind(), ErrorKind::DisplayHelp);
    assert!(e.to_string().contains("--pod-manifest-path"));
    assert!(run(&["--version=false"]).is_ok());
}

#[test]
fn validation_errors_are_all_reported() {
    let Err(ConfigError::Invalid(errors)) = run(&[
        "--port=99999",
        "--image-gc-low-threshold=90",
        "--cgroup-driver=upstart",
        "--node-ip=10.0.0.1,10.0.0.2",
        "--node-labels=node-role.kubernetes.io/worker=",
    ]) else {
        panic!("expected validation errors");
    };
    assert_eq!(errors.len(), 5, "{errors:#?}");
    assert!(
        errors
            .iter()
            .any(|e| e == "port (--port) 99999 must be between 1 and 65535, inclusive")
    );
    assert!(
        errors
            .iter()
            .any(|e| e.contains("--image-gc-low-threshold"))
    );
    assert!(errors.iter().any(|e| e.contains("--cgroup-driver")));
    assert!(errors.iter().any(|e| e.contains("--node-ip")));
    assert!(errors.iter().any(|e| e.contains("--node-labels")));
}

#[test]
fn config_file_errors_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "kubelet.yaml",
        &format!("{HEADER}staticPodPth: /x\n"),
    );
    let err = run(&[&arg("config", &path)]).unwrap_err();
    assert!(matches!(err, ConfigError::ConfigFile { .. }));
    assert!(
        err.to_string().starts_with(&format!(
            "config file {}: unknown field \"staticPodPth\"",
            path.display()
        )),
        "{err}"
    );

    let path = write(dir.path(), "pod.yaml", "apiVersion: v1\nkind: Pod\n");
    let err = run(&[&arg("config", &path)]).unwrap_err().to_string();
    assert!(err.contains("kind \"Pod\" is not supported"), "{err}");
}

#[test]
fn relative_paths_resolve_against_the_file_but_flags_stay_relative() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "etc/kubelet.yaml",
        &format!("{HEADER}staticPodPath: manifests\n"),
    );
    let c = ok(&[&arg("config", &path)]).settings.config;
    assert_eq!(
        PathBuf::from(&c.static_pod_path),
        dir.path().join("etc/manifests")
    );

    let c = ok(&[&arg("config", &path), "--pod-manifest-path=manifests"])
        .settings
        .config;
    assert_eq!(c.static_pod_path, "manifests");
}

#[test]
fn drop_ins_merge_over_the_config_file() {
    let dir = tempfile::tempdir().unwrap();
    let main = write(
        dir.path(),
        "kubelet.yaml",
        &format!("{HEADER}maxPods: 50\nport: 11250\n"),
    );
    write(
        dir.path(),
        "conf.d/10-pods.conf",
        &format!("{HEADER}maxPods: 70\nclusterDNS: [10.0.0.10]\n"),
    );
    write(
        dir.path(),
        "conf.d/20-more.conf",
        &format!("{HEADER}maxPods: 80\n"),
    );
    let c = ok(&[
        &arg("config", &main),
        &arg("config-dir", &dir.path().join("conf.d")),
        "--port=12250",
    ])
    .settings
    .config;
    assert_eq!(c.max_pods, 80, "later drop-ins win");
    assert_eq!(c.cluster_dns, ["10.0.0.10"]);
    assert_eq!(c.port, 12250, "flags win over drop-ins");
}

#[test]
fn drop_ins_without_a_config_file_keep_the_flag_defaults() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "10.conf", &format!("{HEADER}readOnlyPort: 0\n"));
    let c = ok(&[&arg("config-dir", dir.path())]).settings.config;
    assert_eq!(c.read_only_port, 0, "set by the drop-in");
    assert_eq!(
        c.authorization.mode, "AlwaysAllow",
        "command-line-era default"
    );
}

#[test]
fn runonce_is_accepted_without_serving_the_api() {
    let loaded = ok(&["--runonce", "--pod-manifest-path=/m"]);
    assert!(loaded.settings.flags.runonce);
    assert!(loaded.settings.config.run_once);
    assert!(loaded.settings.config.enable_server);
    assert!(!loaded.settings.serve_kubelet_api());
    assert!(loaded.warnings.iter().any(|w| w.contains("runonce mode")));
    assert!(ok(&[]).settings.serve_kubelet_api());
}

#[test]
fn verbosity_and_node_ip_flags() {
    let s = ok(&["-v", "4", "--node-ip=10.0.0.5,fd00::5"]).settings;
    assert_eq!(s.flags.verbosity, 4);
    assert_eq!(s.config.logging.verbosity, 4);
    assert_eq!(
        s.flags.node_ip,
        [
            "10.0.0.5".parse::<std::net::IpAddr>().unwrap(),
            "fd00::5".parse().unwrap()
        ]
    );
    assert_eq!(ok(&["--v=300"]).settings.flags.verbosity, 255);
}

#[test]
fn configz_json_uses_upstream_names_and_go_durations() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "k.yaml",
        &format!("{HEADER}staticPodURL: http://x/pods\nstaticPodURLHeader:\n  A: [b]\n"),
    );
    let config = ok(&[&arg("config", &path)]).settings.config;
    let json = serde_json::to_value(&config).unwrap();
    assert_eq!(json["kind"], "KubeletConfiguration");
    assert_eq!(json["apiVersion"], "kubelet.config.k8s.io/v1beta1");
    assert_eq!(json["syncFrequency"], "1m0s");
    assert_eq!(json["fileCheckFrequency"], "20s");
    assert_eq!(json["cpuCFSQuotaPeriod"], "100ms");
    assert_eq!(json["streamingConnectionIdleTimeout"], "4h0m0s");
    assert_eq!(json["staticPodURL"], "http://x/pods");
    assert_eq!(json["staticPodURLHeader"]["A"][0], "b");
    assert_eq!(json["authentication"]["webhook"]["cacheTTL"], "2m0s");
    assert_eq!(json["authorization"]["mode"], "Webhook");
    assert_eq!(json["healthzPort"], 10248);
    assert_eq!(
        json["containerRuntimeEndpoint"],
        "unix:///run/containerd/containerd.sock"
    );
    assert_eq!(json["logging"]["flushFrequency"], "5s");
    assert!(
        json.get("readOnlyPort").is_none(),
        "zero omitempty fields are left out"
    );
    assert!(json.get("staticPodPath").is_none());
}

#[test]
fn serialized_config_loads_back_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let original = ok(&[
        "--pod-manifest-path=/m",
        "--register-with-taints=a=b:NoSchedule",
        "--max-pods=7",
    ])
    .settings
    .config;
    let path = write(
        dir.path(),
        "round.json",
        &serde_json::to_string_pretty(&original).unwrap(),
    );
    let reloaded = ok(&[&arg("config", &path)]).settings.config;
    assert_eq!(reloaded, original);
}

#[test]
fn report_frequency_follows_the_files_update_frequency() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "k.yaml",
        &format!("{HEADER}nodeStatusUpdateFrequency: 20s\n"),
    );
    let c = ok(&[&arg("config", &path)]).settings.config;
    assert_eq!(c.node_status_report_frequency, Duration::from_secs(20));
    assert_eq!(
        ok(&[]).settings.config.node_status_report_frequency,
        Duration::from_secs(300)
    );
}

/// The file `kubeadm init` writes to /var/lib/kubelet/config.yaml: many
/// zero values (`0s`, `""`, integer `flushFrequency: 0`) that must default.
#[test]
fn a_kubeadm_generated_config_loads() {
    let text = r#"apiVersion: kubelet.config.k8s.io/v1beta1
authentication:
  anonymous:
    enabled: false
  webhook:
    cacheTTL: 0s
    enabled: true
  x509:
    clientCAFile: /etc/kubernetes/pki/ca.crt
authorization:
  mode: Webhook
  webhook:
    cacheAuthorizedTTL: 0s
    cacheUnauthorizedTTL: 0s
cgroupDriver: systemd
clusterDNS:
- 10.96.0.10
clusterDomain: cluster.local
containerRuntimeEndpoint: ""
cpuManagerReconcilePeriod: 0s
crashLoopBackOff: {}
evictionPressureTransitionPeriod: 0s
fileCheckFrequency: 0s
healthzBindAddress: 127.0.0.1
healthzPort: 10248
httpCheckFrequency: 0s
imageMaximumGCAge: 0s
imageMinimumGCAge: 0s
kind: KubeletConfiguration
logging:
  flushFrequency: 0
  options:
    json:
      infoBufferSize: "0"
    text:
      infoBufferSize: "0"
  verbosity: 0
memorySwap: {}
nodeStatusReportFrequency: 0s
nodeStatusUpdateFrequency: 0s
resolvConf: /run/systemd/resolve/resolv.conf
rotateCertificates: true
runtimeRequestTimeout: 0s
shutdownGracePeriod: 0s
shutdownGracePeriodCriticalPods: 0s
staticPodPath: /etc/kubernetes/manifests
streamingConnectionIdleTimeout: 0s
syncFrequency: 0s
volumeStatsAggPeriod: 0s
"#;
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "config.yaml", text);
    let loaded = ok(&[
        &arg("config", &path),
        "--kubeconfig=/etc/kubernetes/kubelet.conf",
        "--container-runtime-endpoint=unix:///var/run/containerd/containerd.sock",
        "--node-ip=192.168.1.10",
    ]);
    // kubeadm writes zero values for defaults: no field is taken for a request.
    assert!(
        loaded
            .warnings
            .iter()
            .all(|w| !w.starts_with("config field")),
        "{:?}",
        loaded.warnings
    );
    let c = &loaded.settings.config;
    assert_eq!(c.authentication.webhook.cache_ttl, Duration::from_secs(120));
    assert_eq!(
        c.authorization.webhook.cache_unauthorized_ttl,
        Duration::from_secs(30)
    );
    assert_eq!(c.sync_frequency, Duration::from_secs(60));
    assert_eq!(c.node_status_update_frequency, Duration::from_secs(10));
    assert_eq!(c.node_status_report_frequency, Duration::from_secs(300));
    assert_eq!(c.logging.flush_frequency, Duration::from_secs(5));
    assert_eq!(
        c.container_runtime_endpoint,
        "unix:///var/run/containerd/containerd.sock"
    );
    assert_eq!(c.resolv_conf, "/run/systemd/resolve/resolv.conf");
    assert_eq!(
        c.authentication.x509.client_ca_file,
        "/etc/kubernetes/pki/ca.crt"
    );
    assert!(c.rotate_certificates);
    assert_eq!(
        loaded.settings.flags.kubeconfig,
        Some(PathBuf::from("/etc/kubernetes/kubelet.conf"))
    );
    assert_eq!(
        loaded.warnings,
        [format!(
            "Flag --container-runtime-endpoint has been deprecated, {CONFIG_FILE_NOTICE}"
        )]
    );
}
