//! The `kubelet` binary: parse flags and config, build the components, run until
//! SIGTERM/SIGINT. Pods keep running when the kubelet stops.

mod cluster_mode;
mod housekeeping;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use kubelet_config::{ConfigError, Settings};
use kubelet_core::cm::admission;
use kubelet_core::cm::{CgroupHost, CgroupLayout, host_checks};
use kubelet_core::pleg::Pleg;
use kubelet_core::pod::dispatcher::{AdmissionPolicy, Dispatcher};
use kubelet_core::pod::worker::WorkerContext;
use kubelet_core::runtime::container::ContainerSettings;
use kubelet_core::runtime::cri::CriClient;
use kubelet_core::runtime::model::RuntimeSnapshot;
use kubelet_core::runtime::sandbox::SandboxSettings;
use kubelet_core::status::store::StatusStore;
use kubelet_core::supervisor::{Loops, Supervisor};
use kubelet_source::{DesiredPods, SourceKind, file::FileSource, http::HttpSource};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

/// How often the runtime is relisted when nothing asks for it sooner.
const RELIST_PERIOD: Duration = Duration::from_secs(1);

fn main() -> ExitCode {
    let loaded = match kubelet_config::load(std::env::args_os()) {
        Ok(loaded) => loaded,
        Err(ConfigError::Clap(err)) => err.exit(),
        Err(err) => {
            eprintln!("kubelet: {err}");
            return ExitCode::from(1);
        }
    };
    for warning in &loaded.warnings {
        eprintln!("{warning}");
    }
    init_logging(loaded.settings.flags.verbosity);
    limit_malloc_arenas();
    // One worker thread: the kubelet waits on the runtime, files and the network and does
    // little computing of its own (stats, log and eviction reads go to the blocking pool;
    // a pod start's few directory and cgroup writes stay on the worker). With a
    // second worker, every gRPC call hopped between threads (futex and eventfd wake-ups):
    // measured with 30 pods, 0.17% of a core against 0.43% with two workers, and no
    // change in how fast pods start (docs/benchmarks.md).
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("kubelet: cannot start the async runtime: {err}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(run(loaded.settings)) {
        Ok(code) => code,
        Err(err) => {
            tracing::error!(error = %format!("{err:#}"), "kubelet failed");
            ExitCode::from(1)
        }
    }
}

/// glibc gives every thread that allocates under contention an arena of its own (up to
/// 8 per core), each keeping freed memory for reuse; the kubelet's few threads (the
/// runtime worker, blocking file work) need no more than two, and fewer arenas keep
/// resident memory closer to what is live. `MALLOC_ARENA_MAX` in the environment wins.
fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: mallopt only sets an allocator tunable; called before any thread starts.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, 2);
        }
    }
}

fn init_logging(verbosity: u8) {
    let level = match verbosity {
        0..=1 => "info",
        2..=4 => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("KUBELET_LOG").unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new(format!(
            "warn,kubelet={level},kubelet_core={level},kubelet_source={level},kubelet_server={level},kubelet_cluster={level},kubelet_rs={level},kube_client=off"
        ))
    });
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .init();
}

async fn run(settings: Settings) -> anyhow::Result<ExitCode> {
    let Settings {
        flags,
        mut config,
        node_name,
    } = settings;
    tracing::info!(version = env!("CARGO_PKG_VERSION"), node = %node_name, "starting kubelet-rs");
    let shutdown = CancellationToken::new();
    let (supervisor, loops) = Supervisor::new(shutdown.clone());
    spawn_signal_handler(&loops, shutdown.clone());

    let cri = CriClient::new(
        &config.container_runtime_endpoint,
        Some(config.image_service_endpoint.as_str()).filter(|e| !e.is_empty()),
        config.runtime_request_timeout,
    )?;
    // Pulls can take longer than ordinary calls.
    let pull_cri = cri.with_timeout(config.runtime_request_timeout.max(Duration::from_secs(300)));
    spawn_runtime_probe(&loops, cri.clone(), shutdown.clone());

    let root_dir = flags.root_dir.clone();
    std::fs::create_dir_all(root_dir.join("pods"))
        .map_err(|e| anyhow::anyhow!("cannot create root dir {}: {e}", root_dir.display()))?;
    let pod_logs_dir = PathBuf::from(&config.pod_logs_dir);
    std::fs::create_dir_all(&pod_logs_dir).map_err(|e| {
        anyhow::anyhow!("cannot create pod logs dir {}: {e}", pod_logs_dir.display())
    })?;
    let host_ips = kubelet_core::node::host_ips(&flags.node_ip);
    // Host cgroup checks as upstream: cgroup v1 against failCgroupV1, then the runtime's
    // own cgroup driver (CRI RuntimeConfig) over the configured one.
    let cgroup_host = CgroupHost::detect();
    host_checks::check_cgroup_version(cgroup_host.is_v2(), config.fail_cgroup_v1)
        .map_err(anyhow::Error::msg)?;
    config.cgroup_driver = host_checks::cgroup_driver(
        || cri.runtime_config(),
        &config.cgroup_driver,
        host_checks::RUNTIME_CONFIG_RETRY,
    )
    .await
    .map_err(anyhow::Error::msg)?;
    // Then the container manager's swap check (failSwapOn), as upstream.
    if config.fail_swap_on {
        let swaps = host_checks::read_proc_swaps().map_err(anyhow::Error::msg)?;
        host_checks::check_swap(swaps.as_deref(), true).map_err(anyhow::Error::msg)?;
    }
    let cgroups = CgroupLayout::on_host(
        config.cgroups_per_qos,
        &config.cgroup_root,
        config.cgroup_driver == "systemd",
        cgroup_host,
    );

    // systemReserved, kubeReserved and evictionHard, parsed once (validation refused
    // anything malformed already) and shared by every user below.
    let reservations = kubelet_core::cm::node::Reservations::parse(
        &config.system_reserved,
        &config.kube_reserved,
        &config.eviction_hard,
    )
    .map_err(anyhow::Error::msg)?;
    // Node allocatable enforcement: the kubepods cgroup before any pod is created under
    // it (retried in the background while it fails), the reserved cgroups or no start.
    let node_cgroups = kubelet_core::cm::enforce::NodeCgroups::for_host(
        cgroups.clone(),
        kubelet_core::cm::enforce::Enforcement {
            enforce: config.enforce_node_allocatable.clone(),
            system_reserved: reservations.system_reserved.clone(),
            kube_reserved: reservations.kube_reserved.clone(),
            system_reserved_cgroup: config.system_reserved_cgroup.clone(),
            kube_reserved_cgroup: config.kube_reserved_cgroup.clone(),
        },
        &root_dir,
    );
    node_cgroups
        .enforce_at_start(&loops, shutdown.clone())
        .map_err(anyhow::Error::msg)?;

    // Cluster mode (--kubeconfig): the API client; nothing is requested yet.
    let cluster = cluster_mode::connect(
        &flags,
        &config,
        &reservations,
        &node_name,
        &host_ips,
        &shutdown,
    )
    .await?;

    // Sources -> merge -> desired pods.
    let (updates_tx, updates_rx) = mpsc::channel(16);
    let mut expected = BTreeSet::new();
    if let Some(path) = Some(config.static_pod_path.as_str()).filter(|p| !p.is_empty()) {
        expected.insert(SourceKind::File);
        tracing::info!(path, "watching static pod path");
        let source = FileSource::new(
            PathBuf::from(path),
            node_name.clone(),
            config.file_check_frequency,
        );
        loops.spawn(
            "file-pod-source",
            source.run(updates_tx.clone(), shutdown.clone()),
        );
    }
    if let Some(url) = Some(config.static_pod_url.as_str()).filter(|u| !u.is_empty()) {
        expected.insert(SourceKind::Http);
        let headers: Vec<(String, String)> = config
            .static_pod_url_header
            .iter()
            .flat_map(|(k, vs)| vs.iter().map(move |v| (k.clone(), v.clone())))
            .collect();
        tracing::info!(url, headers = ?headers.iter().map(|(k, _)| k).collect::<Vec<_>>(), "adding pod url");
        let source = HttpSource::new(
            url.to_string(),
            headers,
            node_name.clone(),
            config.http_check_frequency,
        );
        loops.spawn(
            "http-pod-source",
            source.run(updates_tx.clone(), shutdown.clone()),
        );
    }
    if let Some(cluster) = &cluster {
        expected.insert(SourceKind::Api);
        loops.spawn(
            "api-pod-source",
            cluster
                .pod_source()
                .run(updates_tx.clone(), shutdown.clone()),
        );
    }
    drop(updates_tx);
    let (desired_tx, desired_rx) = watch::channel(DesiredPods::default());
    loops.spawn(
        "pod-source-merge",
        kubelet_source::merge::run(expected, updates_rx, desired_tx, shutdown.clone()),
    );

    // Runtime view.
    let pleg = Pleg::new(cri.clone(), node_name.clone(), RELIST_PERIOD);
    let relist = pleg.trigger();
    let (snapshot_tx, snapshot_rx) = watch::channel(Arc::new(RuntimeSnapshot::default()));
    loops.spawn("pleg", pleg.run(snapshot_tx, shutdown.clone()));

    let statuses = StatusStore::default();
    let reviewers = match &cluster {
        Some(c) => {
            let reviews = Arc::new(c.reviews());
            kubelet_server::Reviewers {
                tokens: Some(reviews.clone()),
                access: Some(reviews),
            }
        }
        None => kubelet_server::Reviewers::default(),
    };
    start_node_api(
        reviewers,
        cluster.as_ref().map(|c| c.rejected_writes()),
        cluster.as_ref().and_then(|c| c.serving_cert()),
        &flags,
        &config,
        &node_name,
        &statuses,
        &snapshot_rx,
        &cri,
        &cgroups,
        &loops,
        &shutdown,
    )?;
    let node_allocatable = kubelet_core::cm::node::NodeAllocatable::compute(
        &kubelet_core::cm::node::Machine::read(&root_dir),
        &reservations,
    );
    let gate = |name| kubelet_config::feature_gates::enabled(&config.feature_gates, name);
    let memory_policy = kubelet_core::cm::container_memory::MemoryPolicy::on_host(
        cgroups.host.is_v2(),
        kubelet_core::cm::container_memory::SwapBehavior::from_config(
            &config.memory_swap.swap_behavior,
        ),
        gate(kubelet_config::feature_gates::NODE_SWAP),
        config.single_process_oom_kill,
    )
    .with_memory_qos(
        gate(kubelet_config::feature_gates::MEMORY_QOS),
        kubelet_core::cm::container_memory::MemoryQos {
            throttling_factor: config.memory_throttling_factor,
            allocatable_memory: node_allocatable.memory_bytes,
        },
    );
    let ctx = Arc::new(WorkerContext {
        cri: cri.clone(),
        pull_cri,
        pull_limits: Arc::new(kubelet_core::runtime::pull_limits::PullLimits::new(
            config.registry_pull_qps,
            config.registry_burst,
            config.serialize_image_pulls,
            config.max_parallel_image_pulls,
        )),
        sandbox: SandboxSettings {
            node_name: node_name.clone(),
            pod_logs_dir,
            cgroups: cgroups.clone(),
            cluster_dns: config.cluster_dns.clone(),
            cluster_domain: config.cluster_domain.clone(),
            resolv_conf: PathBuf::from(&config.resolv_conf),
        },
        container: ContainerSettings {
            node_name: node_name.clone(),
            root_dir: root_dir.clone(),
            host_ips,
            cpu_cfs_quota: config.cpu_cfs_quota,
            cpu_cfs_period_us: config.cpu_cfs_quota_period.as_micros() as i64,
            memory_capacity: kubelet_core::cm::memory_capacity(),
            cluster_domain: config.cluster_domain.clone(),
            // The flag and the config field are ORed, as upstream.
            seccomp_default: config.seccomp_default || flags.seccomp_default,
            node: node_allocatable.clone(),
            memory: memory_policy.clone(),
        },
        root_dir,
        qos: Arc::new(
            kubelet_core::cm::qos::QosCgroups::new(cgroups.clone())
                .with_memory_qos(memory_policy.memory_qos.is_some()),
        ),
        cgroups: cgroups.clone(),
        pod_pids_limit: config.pod_pids_limit,
        relist,
        statuses: statuses.clone(),
        api: cluster.as_ref().map(|c| c.objects()),
        events: cluster
            .as_ref()
            .map(|c| c.events())
            .unwrap_or_else(kubelet_core::events::no_events),
        runtime_class_handlers: flags.runtime_class_handlers.clone(),
    });
    // Node conditions housekeeping owns (pressure, shutting down); admission reads them.
    let (health, health_view) = kubelet_core::eviction::node_health();
    let admission = AdmissionPolicy {
        allocatable: admission::Allocatable::from_node(
            &node_allocatable,
            i64::from(config.max_pods),
        ),
        allowed_unsafe_sysctls: config.allowed_unsafe_sysctls.clone(),
        handlers: admit_handlers(&cri, &flags, cluster.is_some(), &health_view).await,
    };
    tracing::info!(allocatable = ?admission.allocatable, "node allocatable");
    let snapshot_rx_cluster = snapshot_rx.clone();
    let mut dispatcher = Dispatcher::new(
        ctx,
        desired_rx.clone(),
        snapshot_rx,
        !flags.runonce,
        admission,
    );
    let (terminated_tx, terminated_rx) = watch::channel(BTreeSet::new());
    let killer = dispatcher.pod_killer();
    let dispatcher = dispatcher.with_terminated(terminated_tx);
    // The dispatcher's end (return or panic) is visible to the shutdown path below.
    let dispatcher_done = CancellationToken::new();
    {
        let done = dispatcher_done.clone().drop_guard();
        let shutdown = shutdown.clone();
        loops.spawn("pod-dispatcher", async move {
            let _done = done;
            dispatcher.run(shutdown).await;
        });
    }
    if let Some(cluster) = cluster {
        cluster.start(kubelet_cluster::ClusterDeps {
            loops: loops.clone(),
            cri: cri.clone(),
            snapshots: snapshot_rx_cluster,
            statuses: statuses.clone(),
            desired: desired_rx.clone(),
            terminated: terminated_rx,
            pressure: Some(housekeeping::pressure_for_cluster(
                &loops,
                health_view.clone(),
                shutdown.clone(),
            )),
        });
    }

    if flags.runonce {
        let deadline = config.runtime_request_timeout.max(Duration::from_secs(30));
        let results = tokio::select! {
            r = kubelet_core::runonce::wait(desired_rx, &statuses, deadline) => r,
            _ = shutdown.cancelled() => Vec::new(),
        };
        print!("{}", kubelet_core::runonce::report(&results));
        shutdown.cancel();
        let _ = tokio::time::timeout(Duration::from_secs(5), dispatcher_done.cancelled()).await;
        let ok = !results.is_empty()
            && results
                .iter()
                .all(|(_, o)| *o == kubelet_core::runonce::PodOutcome::Running);
        return Ok(if ok {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        });
    }

    let node_shutdown = housekeeping::start(housekeeping::Deps {
        flags: &flags,
        config: &config,
        reservations: &reservations,
        node_name: &node_name,
        cri: &cri,
        statuses: &statuses,
        desired: desired_rx.clone(),
        killer,
        health,
        cgroups,
        loops: &loops,
        shutdown: &shutdown,
    })?;
    housekeeping::spawn_power_signal_handler(&loops, node_shutdown, shutdown.clone());

    let code = tokio::select! {
        _ = shutdown.cancelled() => {
            tracing::info!("shutting down; pods are left running");
            ExitCode::SUCCESS
        }
        failure = supervisor.failure() => {
            // Logged by the supervisor, naming the loop; pods are left running and
            // the restarted kubelet adopts them.
            tracing::error!(task = failure.name(), "exiting after a background loop failed; pods are left running");
            shutdown.cancel();
            ExitCode::from(1)
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(5), dispatcher_done.cancelled()).await;
    Ok(code)
}

fn spawn_signal_handler(loops: &Loops, shutdown: CancellationToken) {
    loops.spawn("signal-handler", async move {
        use tokio::signal::unix::{SignalKind, signal};
        let (Ok(mut term), Ok(mut int)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) else {
            tracing::error!("cannot install signal handlers");
            return;
        };
        tokio::select! {
            _ = term.recv() => tracing::info!("received SIGTERM"),
            _ = int.recv() => tracing::info!("received SIGINT"),
        }
        shutdown.cancel();
    });
}

/// Log the runtime's name and version once it answers (it may come up after us).
fn spawn_runtime_probe(loops: &Loops, cri: CriClient, shutdown: CancellationToken) {
    loops.spawn_finite("runtime-probe", async move {
        let mut delay = Duration::from_millis(200);
        loop {
            match cri.version().await {
                Ok(v) => {
                    tracing::info!(runtime = %v.runtime_name, version = %v.runtime_version, api = %v.runtime_api_version, "connected to container runtime");
                    return;
                }
                Err(err) => tracing::warn!(error = %err, "container runtime not ready yet"),
            }
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(delay) => {}
            }
            delay = (delay * 2).min(Duration::from_secs(10));
        }
    });
}

/// The node API: HTTPS (10250), read-only (10255) and healthz (10248) servers; see
/// docs/node-api.md. Nothing is served in `--runonce` mode, as upstream.
#[allow(clippy::too_many_arguments)] // each argument is one component the API reads
fn start_node_api(
    reviewers: kubelet_server::Reviewers,
    rejected_writes: Option<Arc<dyn kubelet_server::RejectedWrites>>,
    serving: Option<Arc<kubelet_server::tls::ServingCert>>,
    flags: &kubelet_config::KubeletFlags,
    config: &kubelet_config::KubeletConfiguration,
    node_name: &str,
    statuses: &StatusStore,
    snapshots: &watch::Receiver<Arc<RuntimeSnapshot>>,
    cri: &CriClient,
    cgroups: &CgroupLayout,
    loops: &Loops,
    shutdown: &CancellationToken,
) -> anyhow::Result<()> {
    use std::net::{IpAddr, Ipv4Addr};
    if flags.runonce {
        return Ok(());
    }
    let ip = |value: &str, default: IpAddr| -> anyhow::Result<IpAddr> {
        if value.is_empty() {
            return Ok(default);
        }
        value
            .parse()
            .map_err(|e| anyhow::anyhow!("invalid IP address {value:?}: {e}"))
    };
    let port = |name: &str, value: i32| -> anyhow::Result<u16> {
        u16::try_from(value).map_err(|_| anyhow::anyhow!("invalid {name} {value}: must be 0-65535"))
    };
    let path = |value: &str| Some(PathBuf::from(value)).filter(|p| !p.as_os_str().is_empty());
    let settings = kubelet_server::ServerSettings {
        node_name: node_name.to_string(),
        address: ip(&config.address, IpAddr::V4(Ipv4Addr::UNSPECIFIED))?,
        port: port("port", config.port)?,
        enable_server: config.enable_server,
        read_only_port: port("readOnlyPort", config.read_only_port)?,
        healthz_port: port("healthzPort", config.healthz_port)?,
        healthz_bind_address: ip(
            &config.healthz_bind_address,
            IpAddr::V4(Ipv4Addr::LOCALHOST),
        )?,
        enable_debugging_handlers: config.enable_debugging_handlers,
        enable_system_log_handler: config.enable_system_log_handler,
        tls: kubelet_server::TlsSettings {
            cert_file: path(&config.tls_cert_file),
            key_file: path(&config.tls_private_key_file),
            cert_dir: flags.cert_dir.clone(),
            min_version: config.tls_min_version.clone(),
            cipher_suites: config.tls_cipher_suites.clone(),
            serving,
        },
        auth: kubelet_server::AuthSettings {
            anonymous: config.authentication.anonymous.enabled,
            client_ca_file: path(&config.authentication.x509.client_ca_file),
            webhook_authentication: config.authentication.webhook.enabled,
            webhook_cache_authorized_ttl: config.authorization.webhook.cache_authorized_ttl,
            webhook_cache_unauthorized_ttl: config.authorization.webhook.cache_unauthorized_ttl,
            authorization_mode: config.authorization.mode.clone(),
        },
        root_dir: flags.root_dir.clone(),
        pod_logs_dir: PathBuf::from(&config.pod_logs_dir),
        node_log_dir: PathBuf::from("/var/log"),
        cgroups: cgroups.clone(),
        cloud_provider: flags.cloud_provider.clone(),
        psi: kubelet_config::feature_gates::enabled(
            &config.feature_gates,
            kubelet_config::feature_gates::KUBELET_PSI,
        ),
        configz: serde_json::to_value(config)?,
    };
    let deps = kubelet_server::ServerDeps {
        statuses: statuses.clone(),
        snapshots: snapshots.clone(),
        cri: cri.clone(),
        metrics: kubelet_metrics::KubeletMetrics::new(node_name),
        // Cluster mode plugs its TokenReview/SubjectAccessReview clients in here.
        reviewers,
        rejected_writes,
    };
    kubelet_server::start(settings, deps, loops, shutdown.clone())?;
    Ok(())
}

/// The admission checks after the resource fit: node pressure, node shutdown, the pod
/// security fields this node can honour, and (standalone) the RuntimeClass map.
async fn admit_handlers(
    cri: &CriClient,
    flags: &kubelet_config::KubeletFlags,
    cluster_mode: bool,
    health_view: &kubelet_core::eviction::NodeHealthView,
) -> Vec<Arc<dyn admission::AdmitHandler>> {
    use kubelet_core::runtime::security::{NodeSecurity, SecurityAdmission};
    // The runtime's supplementalGroupsPolicy feature, from CRI Status (containerd before
    // 2.0 does not report features: Strict is then refused, as upstream).
    let supplemental_groups_policy = match tokio::time::timeout(
        Duration::from_secs(10),
        cri.status(),
    )
    .await
    {
        Ok(Ok(s)) => s.features.is_some_and(|f| f.supplemental_groups_policy),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "CRI Status failed: the runtime's features are unknown; supplementalGroupsPolicy Strict will be refused");
            false
        }
        Err(_) => {
            tracing::warn!(
                "CRI Status timed out after 10s: the runtime's features are unknown; supplementalGroupsPolicy Strict will be refused"
            );
            false
        }
    };
    let node = NodeSecurity {
        apparmor: kubelet_core::runtime::security::apparmor_enabled_on_host(),
        supplemental_groups_policy,
    };
    tracing::info!(
        apparmor = node.apparmor,
        supplemental_groups_policy,
        "pod security features of this node"
    );
    let mut handlers: Vec<Arc<dyn admission::AdmitHandler>> = vec![
        Arc::new(kubelet_core::eviction::PressureAdmission {
            view: health_view.clone(),
        }),
        Arc::new(kubelet_core::shutdown::ShutdownAdmission {
            view: health_view.clone(),
        }),
        Arc::new(SecurityAdmission { node }),
    ];
    if !cluster_mode {
        handlers.push(Arc::new(
            kubelet_core::runtime::runtime_class::StandaloneRuntimeClassAdmission {
                handlers: flags.runtime_class_handlers.clone(),
            },
        ));
    }
    handlers
}
