//! Pressure stall information (`cpu.pressure`, `memory.pressure`, `io.pressure` of a
//! cgroup v2 directory), as the Summary API's `psi` (KubeletPSI, beta and on by default in
//! v1.35).
//!
//! `total` is the kernel's cumulative stall time as the file gives it, in microseconds:
//! upstream's API comment says nanoseconds, but the value it serves is the same raw number
//! (cAdvisor divides it by 10^6 to get the seconds of `container_pressure_*_seconds_total`).

use std::path::Path;

use super::cgroup::Cgroups;
use super::types::{CpuStats, IoStats, MemoryStats, PsiData, PsiStats, time_string};

/// The three resources with a pressure file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resource {
    Cpu,
    Memory,
    Io,
}

impl Resource {
    /// `cpu`, `memory`, `io`: the name in /proc/pressure; the cgroup file adds `.pressure`.
    pub fn name(self) -> &'static str {
        match self {
            Resource::Cpu => "cpu",
            Resource::Memory => "memory",
            Resource::Io => "io",
        }
    }
}

/// The three pressures of one cgroup.
#[derive(Debug, Default)]
pub struct Pressures {
    cpu: Option<PsiStats>,
    memory: Option<PsiStats>,
    io: Option<PsiStats>,
}

impl Pressures {
    /// Read when `enabled` (KubeletPSI) on a cgroup v2 host; nothing otherwise.
    pub fn of(cgroups: &Cgroups, cgroup: &str, enabled: bool) -> Self {
        if !enabled {
            return Pressures::default();
        }
        Pressures {
            cpu: cgroups.pressure(cgroup, Resource::Cpu),
            memory: cgroups.pressure(cgroup, Resource::Memory),
            io: cgroups.pressure(cgroup, Resource::Io),
        }
    }

    /// Puts the CPU and memory pressure on those stats (when there are stats) and
    /// returns the I/O stats, which are only a pressure.
    pub fn attach(
        self,
        cpu: &mut Option<CpuStats>,
        memory: &mut Option<MemoryStats>,
        now: i64,
    ) -> Option<IoStats> {
        if let Some(cpu) = cpu.as_mut() {
            cpu.psi = self.cpu;
        }
        if let Some(memory) = memory.as_mut() {
            memory.psi = self.memory;
        }
        self.io.map(|psi| IoStats {
            time: time_string(now),
            psi: Some(psi),
        })
    }
}

/// The pressure of `resource` in the cgroup directory `dir`; `None` when the file is
/// missing (cgroup v1, a kernel without PSI) or unreadable.
pub fn read_dir(dir: &Path, resource: Resource) -> Option<PsiStats> {
    read_file(&dir.join(format!("{}.pressure", resource.name())))
}

/// One pressure file (a cgroup's `<resource>.pressure` or `/proc/pressure/<resource>`).
pub fn read_file(path: &Path) -> Option<PsiStats> {
    parse(&std::fs::read_to_string(path).ok()?)
}

/// `some avg10=0.12 avg60=0.05 avg300=0.01 total=12345` and the same for `full` (missing
/// from cpu.pressure before Linux 5.13: then zero, as upstream).
pub fn parse(text: &str) -> Option<PsiStats> {
    let mut stats = PsiStats::default();
    let mut seen_some = false;
    for line in text.lines() {
        let mut fields = line.split_whitespace();
        let target = match fields.next() {
            Some("some") => {
                seen_some = true;
                &mut stats.some
            }
            Some("full") => &mut stats.full,
            _ => continue,
        };
        *target = parse_data(fields)?;
    }
    seen_some.then_some(stats)
}

fn parse_data<'a>(fields: impl Iterator<Item = &'a str>) -> Option<PsiData> {
    let mut data = PsiData::default();
    for field in fields {
        let (key, value) = field.split_once('=')?;
        match key {
            "avg10" => data.avg10 = value.parse().ok()?,
            "avg60" => data.avg60 = value.parse().ok()?,
            "avg300" => data.avg300 = value.parse().ok()?,
            "total" => data.total = value.parse().ok()?,
            _ => {}
        }
    }
    Some(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_some_and_full() {
        let s = parse(
            "some avg10=1.50 avg60=0.25 avg300=0.00 total=123456\n\
             full avg10=0.10 avg60=0.00 avg300=0.00 total=789\n",
        )
        .unwrap();
        assert_eq!(
            s.some,
            PsiData {
                total: 123456,
                avg10: 1.5,
                avg60: 0.25,
                avg300: 0.0
            }
        );
        assert_eq!(s.full.total, 789);
        assert_eq!(s.full.avg10, 0.1);
    }

    #[test]
    fn cpu_pressure_of_old_kernels_has_no_full_line() {
        let s = parse("some avg10=0.00 avg60=0.00 avg300=0.00 total=42\n").unwrap();
        assert_eq!(s.some.total, 42);
        assert_eq!(s.full, PsiData::default());
    }

    #[test]
    fn garbage_is_no_reading() {
        assert_eq!(parse(""), None);
        assert_eq!(parse("some avg10=x avg60=0 avg300=0 total=1\n"), None);
        assert_eq!(parse("some total\n"), None);
    }

    #[test]
    fn reads_the_files_of_a_cgroup_directory() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("io.pressure"),
            "some avg10=0.00 avg60=0.00 avg300=0.00 total=7\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=3\n",
        )
        .unwrap();
        assert_eq!(read_dir(dir.path(), Resource::Io).unwrap().full.total, 3);
        assert_eq!(read_dir(dir.path(), Resource::Cpu), None);
    }
}
