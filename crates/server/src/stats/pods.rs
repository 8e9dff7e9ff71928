//! Pod and container stats: the pods with a ready sandbox, their running containers,
//! the pod cgroup, network, logs, volumes and ephemeral storage.

use std::path::{Path, PathBuf};

use k8s_cri::v1 as cri;
use k8s_openapi::api::core::v1::Pod;
use kubelet_core::runtime::model::{ContainerState, ObservedPod, now_ns};
use kubelet_core::runtime::sandbox::pod_log_dir;

use super::cgroup::{Cgroups, expand_slice};
use super::node::memory_stats;
use super::types::*;
use super::{RuntimeReadings, du};
use crate::machine::statvfs;
use crate::settings::ServerSettings;
use crate::state::Shared;

pub struct Ctx<'a> {
    pub state: &'a Shared,
    pub cgroups: &'a Cgroups,
    pub readings: &'a RuntimeReadings,
    pub only_cpu_and_memory: bool,
}

/// The cgroup all pods live under.
pub fn kubepods_cgroup(settings: &ServerSettings) -> String {
    let layout = &settings.cgroups;
    if layout.systemd {
        return "/kubepods.slice".into();
    }
    format!("{}/kubepods", layout.root.trim_end_matches('/'))
}

/// The pod's cgroup: from its spec (QoS) when known, else wherever one exists.
fn pod_cgroup(
    settings: &ServerSettings,
    cgroups: &Cgroups,
    pod: Option<&Pod>,
    uid: &str,
) -> Option<String> {
    let layout = &settings.cgroups;
    if !layout.per_qos {
        return None;
    }
    let expand = |name: String| {
        if layout.systemd {
            expand_slice(&name)
        } else {
            name
        }
    };
    if let Some(pod) = pod {
        let name = expand(layout.pod_cgroup(pod));
        if cgroups.exists(&name) {
            return Some(name);
        }
    }
    let base = kubepods_cgroup(settings);
    let candidates: Vec<String> = if layout.systemd {
        let u = uid.replace('-', "_");
        [
            "kubepods-pod",
            "kubepods-burstable-pod",
            "kubepods-besteffort-pod",
        ]
        .iter()
        .map(|p| expand_slice(&format!("{p}{u}.slice")))
        .collect()
    } else {
        ["", "/burstable", "/besteffort"]
            .iter()
            .map(|q| format!("{base}{q}/pod{uid}"))
            .collect()
    };
    candidates.into_iter().find(|c| cgroups.exists(c))
}

fn value(v: &Option<cri::UInt64Value>) -> Option<u64> {
    v.as_ref().map(|v| v.value)
}

/// The runtime's sample time; containerd leaves some at 0.
fn sample_time(ts: i64) -> String {
    time_string(if ts > 0 { ts } else { now_ns() })
}

fn cpu_of(u: &cri::CpuUsage) -> CpuStats {
    CpuStats {
        time: sample_time(u.timestamp),
        usage_nano_cores: value(&u.usage_nano_cores),
        usage_core_nano_seconds: value(&u.usage_core_nano_seconds),
    }
}

fn memory_of(m: &cri::MemoryUsage) -> MemoryStats {
    MemoryStats {
        time: sample_time(m.timestamp),
        // containerd reports 0 when there is no limit; upstream omits the field then.
        available_bytes: value(&m.available_bytes).filter(|v| *v > 0),
        usage_bytes: value(&m.usage_bytes),
        working_set_bytes: value(&m.working_set_bytes),
        rss_bytes: value(&m.rss_bytes),
        page_faults: value(&m.page_faults),
        major_page_faults: value(&m.major_page_faults),
    }
}

fn iface_of(i: &cri::NetworkInterfaceUsage) -> InterfaceStats {
    InterfaceStats {
        name: i.name.clone(),
        rx_bytes: value(&i.rx_bytes),
        rx_errors: value(&i.rx_errors),
        tx_bytes: value(&i.tx_bytes),
        tx_errors: value(&i.tx_errors),
    }
}

/// A runtime filesystem usage with the capacity of the filesystem it lives on.
pub fn fs_stats_of(u: &cri::FilesystemUsage, now: i64) -> FsStats {
    let vfs = u
        .fs_id
        .as_ref()
        .and_then(|id| statvfs(Path::new(&id.mountpoint)));
    FsStats {
        time: time_string(if u.timestamp > 0 { u.timestamp } else { now }),
        available_bytes: vfs.map(|v| v.available),
        capacity_bytes: vfs.map(|v| v.capacity),
        used_bytes: value(&u.used_bytes),
        inodes_free: vfs.map(|v| v.inodes_free),
        inodes: vfs.map(|v| v.inodes),
        inodes_used: value(&u.inodes_used),
    }
}

/// `du` of `dir` with the capacity of the filesystem holding `fs_of`.
fn dir_fs_stats(dir: &Path, fs_of: &Path, now: i64) -> FsStats {
    let vfs = statvfs(fs_of);
    let usage = du::usage(dir).unwrap_or_default();
    FsStats {
        time: time_string(now),
        available_bytes: vfs.map(|v| v.available),
        capacity_bytes: vfs.map(|v| v.capacity),
        used_bytes: Some(usage.bytes),
        inodes_free: vfs.map(|v| v.inodes_free),
        inodes: vfs.map(|v| v.inodes),
        inodes_used: Some(usage.inodes),
    }
}

/// Pods with a ready sandbox, with the spec when the kubelet knows it.
fn live_pods(state: &Shared) -> Vec<(std::sync::Arc<ObservedPod>, Option<std::sync::Arc<Pod>>)> {
    let snapshot = state.snapshot();
    let mut out: Vec<_> = snapshot
        .pods
        .values()
        .filter(|p| p.latest_sandbox().is_some_and(|s| s.ready))
        .map(|p| (p.clone(), state.deps.statuses.get(&p.uid)))
        .collect();
    out.sort_by(|a, b| (&a.0.namespace, &a.0.name).cmp(&(&b.0.namespace, &b.0.name)));
    out
}

pub fn sample(state: &Shared, cgroups: &Cgroups) {
    let now = now_ns();
    let pods = live_pods(state);
    for (observed, pod) in &pods {
        if let Some(cg) = pod_cgroup(&state.settings, cgroups, pod.as_deref(), &observed.uid)
            && let Some(usage) = cgroups.cpu_usage_ns(&cg)
        {
            state
                .cpu
                .observe(&format!("pod:{}", observed.uid), now, usage);
        }
    }
    state
        .cpu
        .retain(&|k| !k.starts_with("pod:") || pods.iter().any(|(o, _)| k[4..] == o.uid));
}

pub fn all(ctx: &Ctx) -> Vec<PodStats> {
    live_pods(ctx.state)
        .iter()
        .map(|(observed, pod)| one(ctx, observed, pod.as_deref()))
        .collect()
}

fn one(ctx: &Ctx, observed: &ObservedPod, pod: Option<&Pod>) -> PodStats {
    let now = now_ns();
    let settings = &ctx.state.settings;
    let sandbox = observed.latest_sandbox();
    let sandbox_stats = sandbox
        .and_then(|s| ctx.readings.sandboxes.get(&s.id))
        .and_then(|s| s.linux.as_ref());
    let pod_ref = PodReference {
        name: pod
            .and_then(|p| p.metadata.name.clone())
            .unwrap_or_else(|| observed.name.clone()),
        namespace: pod
            .and_then(|p| p.metadata.namespace.clone())
            .unwrap_or_else(|| observed.namespace.clone()),
        uid: observed.uid.clone(),
    };
    let log_dir = pod
        .map(|p| pod_log_dir(&settings.pod_logs_dir, p))
        .unwrap_or_else(|| {
            settings.pod_logs_dir.join(format!(
                "{}_{}_{}",
                pod_ref.namespace, pod_ref.name, pod_ref.uid
            ))
        });

    let containers: Vec<ContainerStats> = observed
        .containers
        .iter()
        .filter(|c| {
            c.state == ContainerState::Running
                && Some(c.sandbox_id.as_str()) == sandbox.map(|s| s.id.as_str())
        })
        .map(|c| {
            let stats = ctx.readings.containers.get(&c.id);
            let mut out = ContainerStats {
                name: c.name.clone(),
                start_time: time_string(c.created_at),
                cpu: stats.and_then(|s| s.cpu.as_ref()).map(cpu_of),
                memory: stats.and_then(|s| s.memory.as_ref()).map(memory_of),
                rootfs: None,
                logs: None,
            };
            if !ctx.only_cpu_and_memory {
                out.rootfs = stats
                    .and_then(|s| s.writable_layer.as_ref())
                    .map(|w| fs_stats_of(w, now));
                out.logs = Some(dir_fs_stats(
                    &log_dir.join(&c.name),
                    &settings.pod_logs_dir,
                    now,
                ));
            }
            out
        })
        .collect();

    let cgroup = pod_cgroup(settings, ctx.cgroups, pod, &observed.uid);
    let cpu = sandbox_stats
        .and_then(|s| s.cpu.as_ref())
        .map(cpu_of)
        .or_else(|| {
            let usage = ctx.cgroups.cpu_usage_ns(cgroup.as_deref()?)?;
            Some(CpuStats {
                time: time_string(now),
                usage_nano_cores: ctx.state.cpu.observe(
                    &format!("pod:{}", observed.uid),
                    now,
                    usage,
                ),
                usage_core_nano_seconds: Some(usage),
            })
        });
    let memory = sandbox_stats
        .and_then(|s| s.memory.as_ref())
        .map(memory_of)
        .or_else(|| {
            ctx.cgroups
                .memory(cgroup.as_deref()?)
                .map(|m| memory_stats(m, None, now))
        });
    let mut stats = PodStats {
        pod_ref,
        start_time: time_string(sandbox.map(|s| s.created_at).unwrap_or(now)),
        containers,
        cpu,
        memory,
        ..Default::default()
    };
    if ctx.only_cpu_and_memory {
        return stats;
    }
    stats.network = sandbox_stats
        .and_then(|s| s.network.as_ref())
        .map(|n| NetworkStats {
            time: sample_time(n.timestamp),
            default: n
                .default_interface
                .as_ref()
                .map(iface_of)
                .unwrap_or_default(),
            interfaces: n.interfaces.iter().map(iface_of).collect(),
        });
    stats.process_stats = sandbox_stats
        .and_then(|s| s.process.as_ref())
        .map(|p| ProcessStats {
            process_count: value(&p.process_count),
        });
    stats.volume_stats = volumes(&settings.root_dir, &observed.uid, now);
    stats.ephemeral_storage = Some(ephemeral(&stats, &settings.root_dir, now));
    stats
}

/// Every volume directory of the pod: `<root>/pods/<uid>/volumes/<plugin>/<name>`.
fn volumes(root_dir: &Path, uid: &str, now: i64) -> Vec<VolumeStats> {
    let dir = root_dir.join("pods").join(uid).join("volumes");
    let Ok(plugins) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut out: Vec<VolumeStats> = plugins
        .flatten()
        .filter_map(|p| std::fs::read_dir(p.path()).ok())
        .flat_map(|vols| vols.flatten().map(|v| v.path()))
        .map(|path: PathBuf| VolumeStats {
            name: path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            fs: dir_fs_stats(&path, &path, now),
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

/// Containers' writable layers and logs plus the pod's volumes on the node filesystem.
fn ephemeral(stats: &PodStats, root_dir: &Path, now: i64) -> FsStats {
    let vfs = statvfs(root_dir);
    let mut used = 0;
    let mut inodes = 0;
    for c in &stats.containers {
        for fs in [&c.rootfs, &c.logs].into_iter().flatten() {
            used += fs.used_bytes.unwrap_or(0);
            inodes += fs.inodes_used.unwrap_or(0);
        }
    }
    for v in &stats.volume_stats {
        // Memory-backed volumes (tmpfs) do not use node disk.
        if v.fs.capacity_bytes != vfs.map(|f| f.capacity) {
            continue;
        }
        used += v.fs.used_bytes.unwrap_or(0);
        inodes += v.fs.inodes_used.unwrap_or(0);
    }
    FsStats {
        time: time_string(now),
        available_bytes: vfs.map(|v| v.available),
        capacity_bytes: vfs.map(|v| v.capacity),
        used_bytes: Some(used),
        inodes_free: vfs.map(|v| v.inodes_free),
        inodes: vfs.map(|v| v.inodes),
        inodes_used: Some(inodes),
    }
}
