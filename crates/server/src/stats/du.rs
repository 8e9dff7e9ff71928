//! Disk usage of a directory tree, like `du`: allocated blocks and inodes, without
//! following symlinks or crossing into other filesystems.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    pub bytes: u64,
    pub inodes: u64,
}

/// Bounded so a huge tree cannot stall a stats request.
const MAX_ENTRIES: u64 = 200_000;

pub fn usage(root: &Path) -> Option<Usage> {
    let meta = std::fs::symlink_metadata(root).ok()?;
    let dev = meta.dev();
    let mut total = Usage::default();
    let mut stack = vec![root.to_path_buf()];
    while let Some(path) = stack.pop() {
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        total.bytes += meta.blocks() * 512;
        total.inodes += 1;
        if total.inodes >= MAX_ENTRIES {
            break;
        }
        if meta.is_dir()
            && meta.dev() == dev
            && let Ok(entries) = std::fs::read_dir(&path)
        {
            stack.extend(entries.flatten().map(|e| e.path()));
        }
    }
    Some(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_files_and_dirs() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("a")).unwrap();
        std::fs::write(dir.path().join("a/f"), vec![1u8; 10_000]).unwrap();
        std::os::unix::fs::symlink("/etc", dir.path().join("link")).unwrap();
        let u = usage(dir.path()).unwrap();
        assert_eq!(u.inodes, 4, "root, a, a/f, link (not followed)");
        assert!(u.bytes >= 10_000);
        assert!(usage(&dir.path().join("missing")).is_none());
    }
}
