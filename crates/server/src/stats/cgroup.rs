//! CPU and memory usage of a cgroup, on cgroup v1 (cpuacct, memory controllers) or v2
//! (unified), including hybrid hosts where v1 controllers sit beside an empty unified
//! tree. Paths are cgroup names relative to the hierarchy root ("/kubepods/pod<uid>").

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use kubelet_core::cm::CgroupMount;

use super::psi;
use super::types::PsiStats;

/// Where the hierarchies are mounted.
#[derive(Debug, Clone, Default)]
pub struct Cgroups {
    /// v1 controller name -> mount point.
    v1: HashMap<String, PathBuf>,
    /// The unified (v2) mount, if any.
    unified: Option<PathBuf>,
}

/// A memory reading in bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MemorySample {
    pub usage: u64,
    pub working_set: u64,
    pub rss: u64,
    pub page_faults: u64,
    pub major_page_faults: u64,
    /// The limit, when one is set.
    pub limit: Option<u64>,
}

impl Cgroups {
    /// The hierarchies usage is read from: the first unified mount, and the first mount
    /// of each v1 controller read here.
    pub fn from_mounts(mounts: &[CgroupMount]) -> Self {
        let mut c = Cgroups::default();
        for mount in mounts {
            match &mount.options {
                None => {
                    c.unified.get_or_insert_with(|| mount.path.clone());
                }
                Some(options) => {
                    for opt in options {
                        if matches!(opt.as_str(), "cpuacct" | "cpu" | "memory" | "pids") {
                            c.v1.entry(opt.clone())
                                .or_insert_with(|| mount.path.clone());
                        }
                    }
                }
            }
        }
        c
    }

    fn v1_dir(&self, controller: &str, cgroup: &str) -> Option<PathBuf> {
        self.v1
            .get(controller)
            .map(|m| m.join(cgroup.trim_start_matches('/')))
    }

    fn v2_dir(&self, cgroup: &str) -> Option<PathBuf> {
        self.unified
            .as_ref()
            .map(|m| m.join(cgroup.trim_start_matches('/')))
    }

    /// Whether this cgroup exists in the hierarchy CPU usage is read from.
    pub fn exists(&self, cgroup: &str) -> bool {
        self.v1_dir("cpuacct", cgroup)
            .or_else(|| self.v2_dir(cgroup))
            .is_some_and(|d| d.is_dir())
    }

    /// Cumulative CPU time in nanoseconds.
    pub fn cpu_usage_ns(&self, cgroup: &str) -> Option<u64> {
        if let Some(dir) = self.v1_dir("cpuacct", cgroup)
            && let Some(v) = read_u64(&dir.join("cpuacct.usage"))
        {
            return Some(v);
        }
        let stat = std::fs::read_to_string(self.v2_dir(cgroup)?.join("cpu.stat")).ok()?;
        keyed(&stat, "usage_usec").map(|us| us * 1000)
    }

    pub fn memory(&self, cgroup: &str) -> Option<MemorySample> {
        if let Some(dir) = self.v1_dir("memory", cgroup)
            && let Some(usage) = read_u64(&dir.join("memory.usage_in_bytes"))
        {
            let stat = std::fs::read_to_string(dir.join("memory.stat")).unwrap_or_default();
            let inactive = keyed(&stat, "total_inactive_file").unwrap_or(0);
            let limit = read_u64(&dir.join("memory.limit_in_bytes")).filter(|l| *l < (1 << 62));
            return Some(MemorySample {
                usage,
                working_set: usage.saturating_sub(inactive),
                rss: keyed(&stat, "total_rss").unwrap_or(0),
                page_faults: keyed(&stat, "total_pgfault").unwrap_or(0),
                major_page_faults: keyed(&stat, "total_pgmajfault").unwrap_or(0),
                limit,
            });
        }
        let dir = self.v2_dir(cgroup)?;
        let usage = read_u64(&dir.join("memory.current"))?;
        let stat = std::fs::read_to_string(dir.join("memory.stat")).unwrap_or_default();
        let inactive = keyed(&stat, "inactive_file").unwrap_or(0);
        let limit = std::fs::read_to_string(dir.join("memory.max"))
            .ok()
            .and_then(|s| s.trim().parse().ok());
        Some(MemorySample {
            usage,
            working_set: usage.saturating_sub(inactive),
            rss: keyed(&stat, "anon").unwrap_or(0),
            page_faults: keyed(&stat, "pgfault").unwrap_or(0),
            major_page_faults: keyed(&stat, "pgmajfault").unwrap_or(0),
            limit,
        })
    }

    /// The pressure stall information of `resource` in this cgroup, on a cgroup v2 host
    /// (upstream reads none on v1 or hybrid hosts). The root cgroup falls back to
    /// /proc/pressure, the same system-wide numbers on kernels whose root has no files.
    pub fn pressure(&self, cgroup: &str, resource: psi::Resource) -> Option<PsiStats> {
        if !self.v1.is_empty() {
            return None;
        }
        let dir = self.v2_dir(cgroup)?;
        psi::read_dir(&dir, resource).or_else(|| {
            let root = cgroup.trim_matches('/').is_empty();
            root.then(|| psi::read_file(&Path::new("/proc/pressure").join(resource.name())))
                .flatten()
        })
    }

    /// The processes in this cgroup itself (not its children), in the hierarchy CPU
    /// usage is read from; `None` when the cgroup does not exist.
    pub fn procs(&self, cgroup: &str) -> Option<Vec<u32>> {
        let dir = self
            .v1_dir("cpuacct", cgroup)
            .or_else(|| self.v2_dir(cgroup))?;
        let text = std::fs::read_to_string(dir.join("cgroup.procs")).ok()?;
        Some(text.lines().filter_map(|l| l.trim().parse().ok()).collect())
    }

    /// The cgroup of this process in the CPU hierarchy ("/" when unknown).
    pub fn own_cgroup(&self) -> String {
        let text = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
        own_cgroup_from(&text, !self.v1.is_empty())
    }
}

fn own_cgroup_from(text: &str, v1: bool) -> String {
    text.lines()
        .find_map(|line| {
            let mut parts = line.splitn(3, ':');
            let _id = parts.next()?;
            let controllers = parts.next()?;
            let path = parts.next()?;
            let wanted = if v1 {
                controllers.split(',').any(|c| c == "cpuacct")
            } else {
                controllers.is_empty()
            };
            wanted.then(|| path.to_string())
        })
        .unwrap_or_else(|| "/".into())
}

fn read_u64(path: &Path) -> Option<u64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// `key value` lines (memory.stat, cpu.stat).
pub fn keyed(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(' ')?;
        (k == key).then(|| v.trim().parse().ok()).flatten()
    })
}

/// A systemd slice name expanded to its path: "kubepods-burstable-pod1.slice" ->
/// "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1.slice".
pub fn expand_slice(name: &str) -> String {
    let Some(stem) = name.strip_suffix(".slice") else {
        return name.to_string();
    };
    let mut path = String::new();
    let mut prefix = String::new();
    for part in stem.split('-') {
        if !prefix.is_empty() {
            prefix.push('-');
        }
        prefix.push_str(part);
        path.push('/');
        path.push_str(&prefix);
        path.push_str(".slice");
    }
    path
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID: &str = "\
35 24 0:30 / /sys/fs/cgroup/unified rw,nosuid - cgroup2 cgroup2 rw,nsdelegate
36 24 0:31 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,xattr,name=systemd
40 24 0:35 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct
41 24 0:36 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory
";

    #[test]
    fn finds_hierarchies() {
        let c = Cgroups::from_mounts(&kubelet_core::cm::parse_cgroup_mounts(HYBRID));
        assert_eq!(
            c.v1.get("cpuacct").unwrap(),
            Path::new("/sys/fs/cgroup/cpu,cpuacct")
        );
        assert_eq!(
            c.v1.get("memory").unwrap(),
            Path::new("/sys/fs/cgroup/memory")
        );
        assert_eq!(
            c.unified.as_deref(),
            Some(Path::new("/sys/fs/cgroup/unified"))
        );
        assert_eq!(
            c.v1_dir("memory", "/kubepods/podx").unwrap(),
            Path::new("/sys/fs/cgroup/memory/kubepods/podx")
        );
    }

    #[test]
    fn own_cgroup() {
        let text = "12:memory:/a\n4:cpu,cpuacct:/user.slice\n0::/init.scope\n";
        assert_eq!(own_cgroup_from(text, true), "/user.slice");
        assert_eq!(own_cgroup_from(text, false), "/init.scope");
    }

    #[test]
    fn slices() {
        assert_eq!(
            expand_slice("kubepods-burstable-pod1.slice"),
            "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1.slice"
        );
        assert_eq!(expand_slice("/kubepods/pod1"), "/kubepods/pod1");
    }

    #[test]
    fn reads_root_of_this_host() {
        let c = Cgroups::from_mounts(&kubelet_core::cm::CgroupHost::detect().mounts);
        assert!(c.cpu_usage_ns("/").is_some(), "{c:?}");
    }
}
