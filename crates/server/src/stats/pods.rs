//! Pod and container stats: the pods with a ready sandbox, their running containers,
//! the pod cgroup, network, logs, volumes and ephemeral storage.

use std::path::{Path, PathBuf};

use k8s_cri::v1 as cri;
use k8s_openapi::api::core::v1::Pod;
use kubelet_core::runtime::model::{ContainerState, ObservedPod, now_ns};
use kubelet_core::runtime::sandbox::pod_log_dir;

use super::cgroup::{Cgroups, expand_slice};
use super::node::memory_stats;
use super::psi::Pressures;
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
        psi: None,
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
        psi: None,
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

    let cgroup = pod_cgroup(settings, ctx.cgroups, pod, &observed.uid);
    let containers: Vec<ContainerStats> = observed
        .containers
        .iter()
        .filter(|c| {
            c.state == ContainerState::Running
                && Some(c.sandbox_id.as_str()) == sandbox.map(|s| s.id.as_str())
        })
        .map(|c| {
            let stats = ctx.readings.containers.get(&c.id);
            let mut cpu = stats.and_then(|s| s.cpu.as_ref()).map(cpu_of);
            let mut memory = stats.and_then(|s| s.memory.as_ref()).map(memory_of);
            let io = cgroup
                .as_deref()
                .and_then(|cg| container_cgroup(ctx.cgroups, cg, &c.id))
                .and_then(|cg| {
                    Pressures::of(ctx.cgroups, &cg, settings.psi).attach(&mut cpu, &mut memory, now)
                });
            let mut out = ContainerStats {
                name: c.name.clone(),
                start_time: time_string(c.created_at),
                cpu,
                memory,
                io,
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

    let cpu = cgroup.as_deref().and_then(|cg| {
        let usage = ctx.cgroups.cpu_usage_ns(cg)?;
        Some(CpuStats {
            time: time_string(now),
            usage_nano_cores: ctx
                .state
                .cpu
                .observe(&format!("pod:{}", observed.uid), now, usage),
            usage_core_nano_seconds: Some(usage),
            psi: None,
        })
    });
    let memory = cgroup
        .as_deref()
        .and_then(|cg| ctx.cgroups.memory(cg))
        .map(|m| memory_stats(m, None, now));
    // No pod cgroup (cgroupsPerQOS off): the sum of the containers'.
    let mut cpu = cpu.or_else(|| sum_cpu(&containers, now));
    let mut memory = memory.or_else(|| sum_memory(&containers, now));
    let io = cgroup.as_deref().and_then(|cg| {
        Pressures::of(ctx.cgroups, cg, settings.psi).attach(&mut cpu, &mut memory, now)
    });
    let mut stats = PodStats {
        pod_ref,
        start_time: time_string(sandbox.map(|s| s.created_at).unwrap_or(now)),
        containers,
        cpu,
        memory,
        io,
        ..Default::default()
    };
    if ctx.only_cpu_and_memory {
        return stats;
    }
    if let Some(cg) = cgroup.as_deref() {
        let running: Vec<&str> = observed
            .containers
            .iter()
            .filter(|c| {
                c.state == ContainerState::Running
                    && Some(c.sandbox_id.as_str()) == sandbox.map(|s| s.id.as_str())
            })
            .map(|c| c.id.as_str())
            .collect();
        // As the runtime counts: the processes of the running containers.
        let count: usize = running
            .iter()
            .filter_map(|id| container_cgroup(ctx.cgroups, cg, id))
            .filter_map(|c| ctx.cgroups.procs(&c))
            .map(|p| p.len())
            .sum();
        stats.process_stats = Some(ProcessStats {
            process_count: Some(count as u64),
        });
        // The network namespace is the sandbox's; any of the pod's processes is in it.
        let pid = sandbox
            .into_iter()
            .map(|s| s.id.as_str())
            .chain(running.iter().copied())
            .filter_map(|id| container_cgroup(ctx.cgroups, cg, id))
            .find_map(|c| ctx.cgroups.procs(&c)?.first().copied());
        stats.network = pid.and_then(|pid| pod_network(pid, now));
    }
    stats.volume_stats = volumes(&settings.root_dir, &observed.uid, now);
    stats.ephemeral_storage = Some(ephemeral(&stats, &settings.root_dir, now));
    stats
}

/// Sum of the containers' figures that are present; `None` when none is.
fn sum_of(items: impl Iterator<Item = Option<u64>>) -> Option<u64> {
    items.flatten().reduce(|a, b| a.saturating_add(b))
}

fn sum_cpu(containers: &[ContainerStats], now: i64) -> Option<CpuStats> {
    let cpus: Vec<&CpuStats> = containers.iter().filter_map(|c| c.cpu.as_ref()).collect();
    if cpus.is_empty() {
        return None;
    }
    Some(CpuStats {
        time: time_string(now),
        usage_nano_cores: sum_of(cpus.iter().map(|c| c.usage_nano_cores)),
        usage_core_nano_seconds: sum_of(cpus.iter().map(|c| c.usage_core_nano_seconds)),
        psi: None,
    })
}

fn sum_memory(containers: &[ContainerStats], now: i64) -> Option<MemoryStats> {
    let mems: Vec<&MemoryStats> = containers
        .iter()
        .filter_map(|c| c.memory.as_ref())
        .collect();
    if mems.is_empty() {
        return None;
    }
    Some(MemoryStats {
        time: time_string(now),
        available_bytes: None,
        usage_bytes: sum_of(mems.iter().map(|m| m.usage_bytes)),
        working_set_bytes: sum_of(mems.iter().map(|m| m.working_set_bytes)),
        rss_bytes: sum_of(mems.iter().map(|m| m.rss_bytes)),
        page_faults: sum_of(mems.iter().map(|m| m.page_faults)),
        major_page_faults: sum_of(mems.iter().map(|m| m.major_page_faults)),
        psi: None,
    })
}

/// A container's cgroup under its pod's: runtimes name it after the container id
/// (cgroupfs `<pod>/<id>`, systemd `<pod slice>/cri-containerd-<id>.scope`).
fn container_cgroup(cgroups: &Cgroups, pod_cgroup: &str, id: &str) -> Option<String> {
    [
        format!("{pod_cgroup}/{id}"),
        format!("{pod_cgroup}/cri-containerd-{id}.scope"),
    ]
    .into_iter()
    .find(|c| cgroups.exists(c))
}

/// The pod's network usage, read from `/proc/<pid>/net/dev` of a process in its network
/// namespace; none for a pod on the host network (as the runtime reports none there).
fn pod_network(pid: u32, now: i64) -> Option<NetworkStats> {
    let netns = std::fs::read_link(format!("/proc/{pid}/ns/net")).ok()?;
    if std::fs::read_link("/proc/self/ns/net").ok().as_ref() == Some(&netns) {
        return None;
    }
    let text = std::fs::read_to_string(format!("/proc/{pid}/net/dev")).ok()?;
    Some(network_from_net_dev(&text, now))
}

/// The interface upstream and the runtimes call the pod's default.
const DEFAULT_INTERFACE: &str = "eth0";

fn network_from_net_dev(text: &str, now: i64) -> NetworkStats {
    let interfaces: Vec<InterfaceStats> = text
        .lines()
        .filter_map(|line| {
            let (name, counters) = line.split_once(':')?;
            let name = name.trim();
            let n: Vec<u64> = counters
                .split_whitespace()
                .map(|v| v.parse().ok())
                .collect::<Option<_>>()?;
            if name == "lo" || n.len() < 11 {
                return None;
            }
            Some(InterfaceStats {
                name: name.to_string(),
                rx_bytes: Some(n[0]),
                rx_errors: Some(n[2]),
                tx_bytes: Some(n[8]),
                tx_errors: Some(n[10]),
            })
        })
        .collect();
    let default = interfaces
        .iter()
        .find(|i| i.name == DEFAULT_INTERFACE)
        .cloned()
        .unwrap_or_else(|| InterfaceStats {
            name: DEFAULT_INTERFACE.into(),
            rx_bytes: Some(0),
            rx_errors: Some(0),
            tx_bytes: Some(0),
            tx_errors: Some(0),
        });
    NetworkStats {
        time: time_string(now),
        default,
        interfaces,
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    const NET_DEV: &str = "\
Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:     100       2    0    0    0     0          0         0      100       2    0    0    0     0       0          0
  eth0:    5406      41    1    0    0     0          0         0     1094      13    3    0    0     0       0          0
";

    #[test]
    fn network_from_proc_net_dev() {
        let n = network_from_net_dev(NET_DEV, 0);
        assert_eq!(n.default.name, "eth0");
        assert_eq!(n.default.rx_bytes, Some(5406));
        assert_eq!(n.default.rx_errors, Some(1));
        assert_eq!(n.default.tx_bytes, Some(1094));
        assert_eq!(n.default.tx_errors, Some(3));
        assert_eq!(n.interfaces, vec![n.default.clone()], "lo is left out");
        // No eth0: zeros under the default name, as the runtime reports.
        let none = network_from_net_dev("", 0);
        assert_eq!(none.default.name, "eth0");
        assert_eq!(none.default.rx_bytes, Some(0));
        assert!(none.interfaces.is_empty());
    }
}
