//! Node-level stats: the root cgroup, /proc, the kubelet's filesystems and the runtime's
//! image filesystem, plus the `kubelet` and `pods` system containers.

use kubelet_core::runtime::model::now_ns;

use super::cgroup::{Cgroups, MemorySample};
use super::pods::{Ctx, fs_stats_of};
use super::psi::Pressures;
use super::types::*;
use super::{host, pods};
use crate::machine::statvfs;
use crate::state::Shared;

const NODE_KEY: &str = "node:/";

fn node_cpu(state: &Shared, cgroups: &Cgroups, now: i64) -> Option<CpuStats> {
    let usage = cgroups.cpu_usage_ns("/")?;
    Some(CpuStats {
        time: time_string(now),
        usage_nano_cores: state.cpu.observe(NODE_KEY, now, usage),
        usage_core_nano_seconds: Some(usage),
        psi: None,
    })
}

pub fn sample(state: &Shared, cgroups: &Cgroups) {
    node_cpu(state, cgroups, now_ns());
}

pub fn memory_stats(m: MemorySample, capacity: Option<u64>, now: i64) -> MemoryStats {
    MemoryStats {
        time: time_string(now),
        available_bytes: m
            .limit
            .or(capacity)
            .map(|l| l.saturating_sub(m.working_set)),
        usage_bytes: Some(m.usage),
        working_set_bytes: Some(m.working_set),
        rss_bytes: Some(m.rss),
        page_faults: Some(m.page_faults),
        major_page_faults: Some(m.major_page_faults),
        psi: None,
    }
}

fn system_container(
    ctx: &Ctx,
    name: &str,
    cgroup: &str,
    now: i64,
    start: &str,
) -> Option<ContainerStats> {
    if !ctx.cgroups.exists(cgroup) {
        return None;
    }
    let usage = ctx.cgroups.cpu_usage_ns(cgroup);
    let cpu = usage.map(|u| CpuStats {
        time: time_string(now),
        usage_nano_cores: ctx.state.cpu.observe(&format!("sys:{name}"), now, u),
        usage_core_nano_seconds: Some(u),
        psi: None,
    });
    let mut cpu = cpu;
    let mut memory = ctx.cgroups.memory(cgroup).map(|m| MemoryStats {
        available_bytes: None,
        ..memory_stats(m, None, now)
    });
    let io = Pressures::of(ctx.cgroups, cgroup, ctx.state.settings.psi).attach(
        &mut cpu,
        &mut memory,
        now,
    );
    Some(ContainerStats {
        name: name.into(),
        start_time: start.into(),
        cpu,
        memory,
        io,
        rootfs: None,
        logs: None,
    })
}

pub fn stats(ctx: &Ctx) -> NodeStats {
    let now = now_ns();
    let settings = &ctx.state.settings;
    let capacity = host::memory_capacity();
    let start_time = time_string(host::boot_time_secs() * 1_000_000_000);
    let memory = ctx
        .cgroups
        .memory("/")
        .map(|m| MemorySample { limit: None, ..m })
        .or_else(host::meminfo_sample)
        .map(|m| memory_stats(m, Some(capacity), now));
    let mut system_containers = Vec::new();
    let own = ctx.cgroups.own_cgroup();
    if own != "/" {
        system_containers.extend(system_container(ctx, "kubelet", &own, now, &start_time));
    }
    system_containers.extend(system_container(
        ctx,
        "pods",
        &pods::kubepods_cgroup(settings),
        now,
        &start_time,
    ));
    let mut cpu = node_cpu(ctx.state, ctx.cgroups, now);
    let mut memory = memory;
    let io = Pressures::of(ctx.cgroups, "/", settings.psi).attach(&mut cpu, &mut memory, now);
    let mut node = NodeStats {
        node_name: settings.node_name.clone(),
        system_containers,
        start_time,
        cpu,
        memory,
        io,
        ..Default::default()
    };
    if ctx.only_cpu_and_memory {
        return node;
    }
    let default_if = host::default_interface();
    let interfaces = host::host_interfaces();
    node.network = Some(NetworkStats {
        time: time_string(now),
        default: interfaces
            .iter()
            .find(|i| i.name == default_if)
            .cloned()
            .unwrap_or_default(),
        interfaces,
    });
    node.fs = statvfs(&settings.root_dir).map(|v| FsStats {
        time: time_string(now),
        available_bytes: Some(v.available),
        capacity_bytes: Some(v.capacity),
        used_bytes: Some(v.used()),
        inodes_free: Some(v.inodes_free),
        inodes: Some(v.inodes),
        inodes_used: Some(v.inodes.saturating_sub(v.inodes_free)),
    });
    node.runtime = ctx.readings.image_fs.as_ref().map(|info| RuntimeStats {
        image_fs: info.image_filesystems.first().map(|u| fs_stats_of(u, now)),
        container_fs: info
            .container_filesystems
            .first()
            .map(|u| fs_stats_of(u, now)),
    });
    let (maxpid, curproc) = host::rlimit();
    node.rlimit = Some(RlimitStats {
        time: time_string(now),
        maxpid,
        curproc,
    });
    node
}
