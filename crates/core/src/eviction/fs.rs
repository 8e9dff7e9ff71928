//! Filesystem facts the housekeeping needs: statvfs of a filesystem and `du` of a
//! directory (bytes and inodes, staying on one filesystem, never following symlinks).

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// Capacity and free space of the filesystem holding a path (statvfs(3)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FsStats {
    pub capacity_bytes: i128,
    /// Available to unprivileged users (f_bavail), as cadvisor reports.
    pub available_bytes: i128,
    pub inodes: i128,
    pub inodes_free: i128,
}

impl FsStats {
    pub fn used_bytes(&self) -> i128 {
        (self.capacity_bytes - self.available_bytes).max(0)
    }
}

pub fn statvfs(path: &Path) -> std::io::Result<FsStats> {
    let c = CString::new(path.as_os_str().as_bytes())
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    // SAFETY: `c` is a valid NUL-terminated path and `buf` a properly sized out-parameter.
    let mut buf: libc::statvfs = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::statvfs(c.as_ptr(), &mut buf) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let frsize = if buf.f_frsize > 0 {
        buf.f_frsize as i128
    } else {
        buf.f_bsize as i128
    };
    Ok(FsStats {
        capacity_bytes: buf.f_blocks as i128 * frsize,
        available_bytes: buf.f_bavail as i128 * frsize,
        inodes: buf.f_files as i128,
        inodes_free: buf.f_ffree as i128,
    })
}

/// Disk usage of a directory tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Usage {
    /// Allocated bytes (st_blocks * 512), as `du` counts.
    pub bytes: i128,
    pub inodes: i128,
}

impl std::ops::AddAssign for Usage {
    fn add_assign(&mut self, rhs: Usage) {
        self.bytes += rhs.bytes;
        self.inodes += rhs.inodes;
    }
}

/// `du -s` of `dir` (missing: zero), on the filesystem of `dir` only. Blocking.
pub fn du(dir: &Path) -> Usage {
    let Ok(meta) = std::fs::symlink_metadata(dir) else {
        return Usage::default();
    };
    let mut usage = Usage::default();
    walk(dir, meta.dev(), &meta, &mut usage, 0);
    usage
}

fn walk(path: &Path, dev: u64, meta: &std::fs::Metadata, usage: &mut Usage, depth: u32) {
    usage.bytes += meta.blocks() as i128 * 512;
    usage.inodes += 1;
    if !meta.is_dir() || depth > 64 {
        return;
    }
    let Ok(entries) = std::fs::read_dir(path) else {
        return;
    };
    for entry in entries.flatten() {
        let p = entry.path();
        let Ok(m) = std::fs::symlink_metadata(&p) else {
            continue;
        };
        if m.dev() != dev {
            continue;
        }
        walk(&p, dev, &m, usage, depth + 1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn du_counts_files_and_dirs() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("a")).unwrap();
        std::fs::write(dir.path().join("a/f"), vec![1u8; 64 * 1024]).unwrap();
        let u = du(dir.path());
        assert_eq!(u.inodes, 3);
        assert!(u.bytes >= 64 * 1024, "{u:?}");
        assert_eq!(du(&dir.path().join("missing")), Usage::default());
    }

    #[test]
    fn statvfs_of_root() {
        let s = statvfs(Path::new("/")).unwrap();
        assert!(s.capacity_bytes > 0 && s.available_bytes <= s.capacity_bytes);
    }
}
