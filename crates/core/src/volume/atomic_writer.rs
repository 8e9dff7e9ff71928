//! Writes a set of files into a volume directory so readers never see a half-updated set
//! (upstream AtomicWriter): files go into a fresh `..<timestamp>` directory, the `..data`
//! symlink is swapped to it with a rename, and each visible path is a symlink through
//! `..data`. Used by downwardAPI (and later configMap, secret, projected) volumes.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path};

/// One file of the payload: contents and mode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileProjection {
    pub data: Vec<u8>,
    pub mode: u32,
}

const DATA_LINK: &str = "..data";

fn check_path(p: &str) -> Result<(), String> {
    let path = Path::new(p);
    if p.is_empty() || path.is_absolute() || p.starts_with("..") {
        return Err(format!(
            "invalid path {p:?}: must be relative and must not start with '..'"
        ));
    }
    if path
        .components()
        .any(|c| !matches!(c, Component::Normal(_)))
    {
        return Err(format!("invalid path {p:?}: must not contain '..' or '.'"));
    }
    Ok(())
}

/// Replace the volume's content with `payload` (path -> file). Returns whether anything
/// changed (an identical payload is left alone).
pub fn write(dir: &Path, payload: &BTreeMap<String, FileProjection>) -> Result<bool, String> {
    for p in payload.keys() {
        check_path(p)?;
    }
    std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    let data_link = dir.join(DATA_LINK);
    if let Ok(current) = std::fs::read_link(&data_link)
        && same_content(&dir.join(&current), payload)
    {
        return Ok(false);
    }
    let stamp = format!(
        "..{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
    );
    let ts_dir = dir.join(&stamp);
    std::fs::create_dir(&ts_dir).map_err(|e| format!("creating {}: {e}", ts_dir.display()))?;
    std::fs::set_permissions(&ts_dir, std::fs::Permissions::from_mode(0o755))
        .map_err(|e| e.to_string())?;
    for (rel, file) in payload {
        let target = ts_dir.join(rel);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| format!("creating {}: {e}", parent.display()))?;
        }
        std::fs::write(&target, &file.data)
            .map_err(|e| format!("writing {}: {e}", target.display()))?;
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(file.mode))
            .map_err(|e| e.to_string())?;
    }
    // Swap ..data atomically: make the new link under a temporary name, then rename.
    let tmp_link = dir.join("..data_tmp");
    let _ = std::fs::remove_file(&tmp_link);
    std::os::unix::fs::symlink(&stamp, &tmp_link).map_err(|e| format!("symlink: {e}"))?;
    std::fs::rename(&tmp_link, &data_link).map_err(|e| format!("swapping ..data: {e}"))?;

    // Visible top-level entries: symlinks through ..data.
    let mut wanted: Vec<String> = payload
        .keys()
        .filter_map(|p| Path::new(p).components().next())
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    wanted.sort();
    wanted.dedup();
    for name in &wanted {
        let link = dir.join(name);
        if std::fs::symlink_metadata(&link).is_err() {
            std::os::unix::fs::symlink(Path::new(DATA_LINK).join(name), &link)
                .map_err(|e| format!("symlink {name}: {e}"))?;
        }
    }
    // Remove what the new payload no longer has: old timestamp dirs and stale links.
    for entry in std::fs::read_dir(dir).map_err(|e| e.to_string())?.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let stale_dir = name.starts_with("..") && name != DATA_LINK && name != stamp;
        let stale_link = !name.starts_with("..") && !wanted.contains(&name);
        if stale_dir {
            let _ = std::fs::remove_dir_all(entry.path());
        } else if stale_link && entry.file_type().map(|t| t.is_symlink()).unwrap_or(false) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
    Ok(true)
}

fn same_content(current: &Path, payload: &BTreeMap<String, FileProjection>) -> bool {
    payload.iter().all(|(rel, f)| {
        let p = current.join(rel);
        std::fs::read(&p).ok().as_deref() == Some(f.data.as_slice())
            && std::fs::metadata(&p)
                .map(|m| m.permissions().mode() & 0o7777 == f.mode)
                .unwrap_or(false)
    }) && count_files(current) == payload.len()
}

fn count_files(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| {
                    if e.path().is_dir() {
                        count_files(&e.path())
                    } else {
                        1
                    }
                })
                .sum()
        })
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payload(items: &[(&str, &str)]) -> BTreeMap<String, FileProjection> {
        items
            .iter()
            .map(|(k, v)| {
                (
                    k.to_string(),
                    FileProjection {
                        data: v.as_bytes().to_vec(),
                        mode: 0o644,
                    },
                )
            })
            .collect()
    }

    #[test]
    fn writes_swaps_and_cleans() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("vol");
        assert!(write(&dir, &payload(&[("labels", "app=web"), ("sub/name", "p")])).unwrap());
        assert_eq!(
            std::fs::read_to_string(dir.join("labels")).unwrap(),
            "app=web"
        );
        assert_eq!(std::fs::read_to_string(dir.join("sub/name")).unwrap(), "p");
        assert!(
            std::fs::read_link(dir.join("labels"))
                .unwrap()
                .starts_with("..data")
        );
        let first = std::fs::read_link(dir.join("..data")).unwrap();
        // Same payload: untouched.
        assert!(!write(&dir, &payload(&[("labels", "app=web"), ("sub/name", "p")])).unwrap());
        // New payload: swapped, old dir and the dropped entry gone.
        assert!(write(&dir, &payload(&[("labels", "app=api")])).unwrap());
        assert_eq!(
            std::fs::read_to_string(dir.join("labels")).unwrap(),
            "app=api"
        );
        assert!(!dir.join(&first).exists());
        assert!(std::fs::symlink_metadata(dir.join("sub")).is_err());
    }

    #[test]
    fn rejects_escaping_paths() {
        let tmp = tempfile::tempdir().unwrap();
        for bad in ["../x", "/abs", "a/../b", "..data", ""] {
            assert!(write(tmp.path(), &payload(&[(bad, "x")])).is_err(), "{bad}");
        }
    }
}
