//! Wiring of node housekeeping (docs/housekeeping.md): container and image garbage
//! collection, log rotation, the eviction manager and graceful node shutdown (SIGPWR).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use kubelet_config::{KubeletConfiguration, KubeletFlags};
use kubelet_core::cm::CgroupLayout;
use kubelet_core::cm::node::Reservations;
use kubelet_core::eviction::signals::NodeSources;
use kubelet_core::eviction::stats::PodPaths;
use kubelet_core::eviction::{
    EvictionManager, EvictionSettings, NodeHealthView, NodeHealthWriter, thresholds,
};
use kubelet_core::gc::{ContainerGcPolicy, GarbageCollector, GcSettings, ImageGcPolicy};
use kubelet_core::logs::{LogRotator, RotatePolicy};
use kubelet_core::pod::kill::PodKiller;
use kubelet_core::runtime::cri::CriClient;
use kubelet_core::shutdown::{ShutdownManager, groups};
use kubelet_core::status::store::StatusStore;
use kubelet_core::supervisor::Loops;
use kubelet_primitives::quantity;
use kubelet_source::DesiredPods;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// Testing aid: `KUBELET_RS_HOUSEKEEPING_PERIOD=2s` (a Go duration) replaces the container
/// GC (1m) and image GC (5m) periods and the eviction monitoring interval (10s).
const PERIOD_ENV: &str = "KUBELET_RS_HOUSEKEEPING_PERIOD";

fn period_override() -> Option<Duration> {
    let v = std::env::var(PERIOD_ENV).ok()?;
    match kubelet_primitives::duration::parse(v.trim()) {
        Ok(d) => (!d.is_zero()).then_some(d),
        Err(e) => {
            tracing::warn!("{PERIOD_ENV} ignored: {e}");
            None
        }
    }
}

pub struct Deps<'a> {
    pub flags: &'a KubeletFlags,
    pub config: &'a KubeletConfiguration,
    /// systemReserved, kubeReserved and evictionHard as parsed at start-up.
    pub reservations: &'a Reservations,
    pub node_name: &'a str,
    pub cri: &'a CriClient,
    pub statuses: &'a StatusStore,
    pub desired: watch::Receiver<DesiredPods>,
    pub killer: PodKiller,
    pub health: NodeHealthWriter,
    /// The layout the kubelet detected at start.
    pub cgroups: CgroupLayout,
    pub loops: &'a Loops,
    pub shutdown: &'a CancellationToken,
}

/// Start the housekeeping loops; returns the node shutdown manager.
pub fn start(d: Deps<'_>) -> anyhow::Result<Arc<ShutdownManager>> {
    let Deps {
        flags,
        config,
        reservations,
        node_name,
        cri,
        statuses,
        desired,
        killer,
        health,
        cgroups,
        loops,
        shutdown,
    } = d;
    let fast = period_override();
    if let Some(p) = fast {
        tracing::warn!(period = ?p, "{PERIOD_ENV} is set: housekeeping runs on a test period");
    }
    let root_dir = flags.root_dir.clone();
    let pod_logs_dir = PathBuf::from(&config.pod_logs_dir);

    let gc = GarbageCollector::new(
        cri.clone(),
        GcSettings {
            node_name: node_name.to_string(),
            containers: ContainerGcPolicy {
                min_age: flags.minimum_container_ttl_duration,
                max_per_pod_container: flags.maximum_dead_containers_per_container,
                max_containers: flags.maximum_dead_containers,
            },
            images: ImageGcPolicy {
                high_threshold_percent: config.image_gc_high_threshold_percent,
                low_threshold_percent: config.image_gc_low_threshold_percent,
                min_age: config.image_minimum_gc_age,
                max_age: config.image_maximum_gc_age,
            },
            pinned_images: flags.pod_infra_container_image.iter().cloned().collect(),
            pod_logs_dir: pod_logs_dir.clone(),
            root_dir: root_dir.clone(),
            container_period: fast.unwrap_or(kubelet_core::gc::CONTAINER_GC_PERIOD),
            image_period: fast.unwrap_or(kubelet_core::gc::IMAGE_GC_PERIOD),
        },
        desired,
    );
    // imageGCHighThresholdPercent 100 disables image GC upstream; containers still go.
    loops.spawn("garbage-collection", gc.clone().run(shutdown.clone()));

    let max_size = quantity::parse_value(&config.container_log_max_size).map_err(|e| {
        anyhow::anyhow!(
            "containerLogMaxSize {:?}: {e}",
            config.container_log_max_size
        )
    })?;
    let rotator = LogRotator::new(
        cri.clone(),
        node_name.to_string(),
        RotatePolicy {
            max_size: i64::try_from(max_size).unwrap_or(i64::MAX),
            max_files: config.container_log_max_files.max(2),
        },
        config
            .container_log_monitor_interval
            .max(Duration::from_secs(1)),
    );
    loops.spawn("log-rotation", rotator.run(shutdown.clone()));

    let thresholds = thresholds::parse(
        &config.eviction_hard,
        &config.eviction_soft,
        &config.eviction_soft_grace_period,
        &config.eviction_minimum_reclaim,
        config.enforce_node_allocatable.iter().any(|k| k == "pods"),
    )
    .map_err(|e| anyhow::anyhow!("eviction thresholds: {e}"))?;
    let pods_cgroup = if cgroups.systemd {
        "/kubepods.slice".to_string()
    } else {
        format!("{}/kubepods", config.cgroup_root.trim_end_matches('/'))
    };
    let eviction = EvictionManager::new(
        EvictionSettings {
            node_name: node_name.to_string(),
            thresholds,
            pressure_transition_period: config.eviction_pressure_transition_period,
            max_pod_grace_period: i64::from(config.eviction_max_pod_grace_period),
            local_storage_capacity_isolation: config.local_storage_capacity_isolation,
            node: NodeSources {
                root_dir: root_dir.clone(),
                proc_dir: PathBuf::from("/proc"),
                cgroup_dir: PathBuf::from("/sys/fs/cgroup"),
                pods_cgroup,
                pod_allocatable_memory: kubelet_core::cm::memory_capacity()
                    - reservations.reserved("memory"),
            },
            pods: PodPaths {
                root_dir,
                pod_logs_dir,
                cgroup_dir: PathBuf::from("/sys/fs/cgroup"),
                cgroups,
            },
            monitoring_interval: fast.unwrap_or(kubelet_core::eviction::MONITORING_INTERVAL),
        },
        cri.clone(),
        statuses.clone(),
        killer.clone(),
        health.clone(),
        Some(gc),
    );
    loops.spawn("eviction-manager", eviction.run(shutdown.clone()));

    let by_priority: Vec<(i32, i64)> = config
        .shutdown_grace_period_by_pod_priority
        .iter()
        .map(|p| (p.priority, p.shutdown_grace_period_seconds))
        .collect();
    Ok(Arc::new(ShutdownManager::new(
        groups(
            config.shutdown_grace_period,
            config.shutdown_grace_period_critical_pods,
            &by_priority,
        ),
        statuses.clone(),
        killer,
        health,
    )))
}

/// SIGPWR: graceful node shutdown, then exit (so a shutdown script can wait for the
/// process). With graceful shutdown disabled (shutdownGracePeriod 0) it is SIGTERM.
pub fn spawn_power_signal_handler(
    loops: &Loops,
    manager: Arc<ShutdownManager>,
    shutdown: CancellationToken,
) {
    loops.spawn("power-signal-handler", async move {
        use tokio::signal::unix::{SignalKind, signal};
        let Ok(mut pwr) = signal(SignalKind::from_raw(libc::SIGPWR)) else {
            tracing::error!("cannot install the SIGPWR handler");
            return;
        };
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = pwr.recv() => {}
        }
        if manager.enabled() {
            tracing::info!("received SIGPWR: the node is shutting down");
            manager.shutdown().await;
            tracing::info!("node shutdown complete; exiting");
        } else {
            tracing::info!(
                "received SIGPWR; graceful node shutdown is disabled (shutdownGracePeriod is 0): exiting, pods are left running"
            );
        }
        shutdown.cancel();
    });
}

/// The pressure view in the shape the cluster crate's node status takes.
pub fn pressure_for_cluster(
    loops: &Loops,
    view: NodeHealthView,
    shutdown: CancellationToken,
) -> watch::Receiver<kubelet_cluster::Pressure> {
    let convert = |h: &kubelet_core::eviction::NodeHealth| kubelet_cluster::Pressure {
        memory: h.memory_pressure.active,
        disk: h.disk_pressure.active,
        pid: h.pid_pressure.active,
        shutting_down: h.shutting_down.active,
    };
    let mut rx = view.subscribe();
    let (tx, out) = watch::channel(convert(&rx.borrow()));
    // Ends when the health writer is dropped (no housekeeping in --runonce).
    loops.spawn_finite("node-pressure-relay", async move {
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                changed = rx.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    let p = convert(&rx.borrow_and_update());
                    tx.send_replace(p);
                }
            }
        }
    });
    out
}
