//! Filesystems: the mounted block-device filesystems plus /run and /dev/shm, and a
//! statvfs wrapper the stats code shares.

use std::collections::BTreeSet;
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use super::{FsInfo, Roots};

/// Capacity figures of the filesystem holding a path.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Vfs {
    pub capacity: u64,
    pub available: u64,
    pub free: u64,
    pub inodes: u64,
    pub inodes_free: u64,
}

impl Vfs {
    pub fn used(&self) -> u64 {
        self.capacity.saturating_sub(self.free)
    }
}

pub fn statvfs(path: &Path) -> Option<Vfs> {
    let c = CString::new(path.as_os_str().as_bytes()).ok()?;
    // SAFETY: statvfs(3) writes into the zeroed struct we own; `c` is NUL-terminated.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::statvfs(c.as_ptr(), &mut st) };
    if rc != 0 {
        return None;
    }
    let frsize = st.f_frsize as u64;
    Some(Vfs {
        capacity: st.f_blocks as u64 * frsize,
        available: st.f_bavail as u64 * frsize,
        free: st.f_bfree as u64 * frsize,
        inodes: st.f_files as u64,
        inodes_free: st.f_ffree as u64,
    })
}

const BLOCK_FS: [&str; 8] = [
    "ext2", "ext3", "ext4", "xfs", "btrfs", "zfs", "f2fs", "vfat",
];

/// One mount from mountinfo: (source device, mount point, fs type).
pub fn mounts(roots: &Roots) -> Vec<(String, String, String)> {
    let text = std::fs::read_to_string(roots.proc.join("self/mountinfo")).unwrap_or_default();
    text.lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let mount_point = unescape(left.split_whitespace().nth(4)?);
            let mut r = right.split_whitespace();
            let fs_type = r.next()?.to_string();
            let source = unescape(r.next()?);
            Some((source, mount_point, fs_type))
        })
        .collect()
}

/// mountinfo escapes spaces and the like as `\040`.
fn unescape(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\'
            && i + 3 < bytes.len()
            && bytes[i + 1..i + 4]
                .iter()
                .all(|b| (b'0'..=b'7').contains(b))
        {
            let v = (bytes[i + 1] - b'0') * 64 + (bytes[i + 2] - b'0') * 8 + (bytes[i + 3] - b'0');
            out.push(v);
            i += 4;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub fn filesystems(roots: &Roots) -> Vec<FsInfo> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for (source, mount_point, fs_type) in mounts(roots) {
        let device = if source.starts_with("/dev/") && BLOCK_FS.contains(&fs_type.as_str()) {
            source
        } else if fs_type == "tmpfs" && mount_point == "/dev/shm" {
            "shm".to_string()
        } else if fs_type == "tmpfs" && mount_point == "/run" {
            "tmpfs".to_string()
        } else {
            continue;
        };
        if !seen.insert(device.clone()) {
            continue;
        }
        let Some(vfs) = statvfs(Path::new(&mount_point)) else {
            continue;
        };
        out.push(FsInfo {
            device,
            capacity: vfs.capacity,
            fs_type: "vfs".into(),
            inodes: vfs.inodes,
            has_inodes: vfs.inodes > 0,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statvfs_of_root() {
        let v = statvfs(Path::new("/")).unwrap();
        assert!(v.capacity > 0 && v.capacity >= v.free && v.free >= v.available);
        assert!(statvfs(Path::new("/nonexistent/path")).is_none());
    }

    #[test]
    fn unescapes_mountinfo() {
        assert_eq!(unescape(r"/mnt/with\040space"), "/mnt/with space");
        assert_eq!(unescape("/plain"), "/plain");
    }
}
