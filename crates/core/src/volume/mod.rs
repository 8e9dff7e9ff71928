//! Volumes the kubelet provides without an API server: emptyDir (disk or tmpfs) and
//! hostPath with its type checks; the per-pod directory layout under the root dir; and
//! cleanup that never crosses a mount point.

use std::collections::HashMap;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use k8s_openapi::api::core::v1::{DownwardAPIVolumeSource, Pod, Volume, VolumeMount};

use crate::cm::node::{self, NodeAllocatable};

pub mod api_volumes;
pub mod atomic_writer;
pub mod hosts;

/// Where each volume of a pod lives on the host.
pub type VolumePaths = HashMap<String, PathBuf>;

/// `<root>/pods/<uid>`, the pod's own directory.
pub fn pod_dir(root_dir: &Path, uid: &str) -> PathBuf {
    root_dir.join("pods").join(uid)
}

/// Set up every volume of the pod without node facts (memory-backed emptyDirs are sized
/// only by `sizeLimit` and the pod's memory limit); the error names the volume and the
/// reason.
pub fn prepare(root_dir: &Path, pod: &Pod) -> Result<VolumePaths, String> {
    prepare_with(root_dir, pod, None, &NodeAllocatable::default())
}

/// [`prepare`] with the API objects the pod references (cluster mode: configMap, secret
/// and projected volumes need them) and the node's allocatable resources (downward API
/// defaults, the size of memory-backed emptyDirs).
pub fn prepare_with(
    root_dir: &Path,
    pod: &Pod,
    api: Option<&crate::objects::PodApiData>,
    node: &NodeAllocatable,
) -> Result<VolumePaths, String> {
    let uid = pod.metadata.uid.clone().unwrap_or_default();
    let mut paths = VolumePaths::new();
    let fs_group = pod
        .spec
        .as_ref()
        .and_then(|s| s.security_context.as_ref())
        .and_then(|sc| sc.fs_group);
    for volume in pod.spec.iter().flat_map(|s| s.volumes.iter().flatten()) {
        let path = prepare_one(root_dir, &uid, pod, volume, api, node).map_err(|e| {
            format!(
                "MountVolume.SetUp failed for volume {:?} : {e}",
                volume.name
            )
        })?;
        // fsGroup owns the kubelet-made volumes (never a hostPath: that is the host's).
        if let Some(gid) = fs_group
            && volume.host_path.is_none()
        {
            set_group_ownership(&path, gid as u32)
                .map_err(|e| format!("volume {:?}: fsGroup: {e}", volume.name))?;
        }
        paths.insert(volume.name.clone(), path);
    }
    Ok(paths)
}

/// Upstream SetVolumeOwnership: group `gid` on everything, group read/write, setgid dirs.
fn set_group_ownership(dir: &Path, gid: u32) -> std::io::Result<()> {
    let meta = std::fs::symlink_metadata(dir)?;
    if meta.file_type().is_symlink() {
        return Ok(());
    }
    std::os::unix::fs::lchown(dir, None, Some(gid))?;
    let mut mode = meta.permissions().mode() | 0o060;
    if meta.is_dir() {
        mode |= 0o2010;
        for entry in std::fs::read_dir(dir)? {
            set_group_ownership(&entry?.path(), gid)?;
        }
    }
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode & 0o7777))
}

/// Rewrite the content of the pod's API-backed and downwardAPI volumes (ConfigMap or
/// Secret updates, token refresh, label changes). Only volumes already set up are touched.
pub fn refresh(
    root_dir: &Path,
    pod: &Pod,
    api: Option<&crate::objects::PodApiData>,
    node: &NodeAllocatable,
) -> Result<(), String> {
    let uid = pod.metadata.uid.clone().unwrap_or_default();
    for volume in pod.spec.iter().flat_map(|s| s.volumes.iter().flatten()) {
        let refreshable = api_volumes::is_api_volume(volume) || volume.downward_api.is_some();
        if !refreshable {
            continue;
        }
        let dir = volume_dir(root_dir, &uid, volume);
        if !dir.join("..data").exists() {
            continue;
        }
        prepare_one(root_dir, &uid, pod, volume, api, node).map_err(|e| {
            format!(
                "MountVolume.SetUp failed for volume {:?} : {e}",
                volume.name
            )
        })?;
    }
    Ok(())
}

fn volume_dir(root_dir: &Path, uid: &str, volume: &Volume) -> PathBuf {
    let plugin = if volume.downward_api.is_some() {
        "kubernetes.io~downward-api"
    } else {
        api_volumes::plugin_dir(volume)
    };
    pod_dir(root_dir, uid)
        .join("volumes")
        .join(plugin)
        .join(&volume.name)
}

fn prepare_one(
    root_dir: &Path,
    uid: &str,
    pod: &Pod,
    volume: &Volume,
    api: Option<&crate::objects::PodApiData>,
    node: &NodeAllocatable,
) -> Result<PathBuf, String> {
    if api_volumes::is_api_volume(volume) {
        let payload = api_volumes::payload(pod, volume, api, node)?;
        let dir = volume_dir(root_dir, uid, volume);
        std::fs::create_dir_all(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
        if api_volumes::in_memory(volume) && !is_mount_point(&dir) {
            // Secrets stay off the disk when tmpfs can be mounted (needs root).
            if let Err(err) = mount_fs("tmpfs", &dir, "tmpfs", "mode=0777") {
                tracing::debug!(dir = %dir.display(), error = %err, "secret volume stays on disk");
            }
        }
        atomic_writer::write(&dir, &payload)?;
        return Ok(dir);
    }
    if let Some(downward) = &volume.downward_api {
        let dir = pod_dir(root_dir, uid)
            .join("volumes/kubernetes.io~downward-api")
            .join(&volume.name);
        atomic_writer::write(&dir, &downward_payload(pod, downward, node)?)?;
        return Ok(dir);
    }
    if let Some(empty) = &volume.empty_dir {
        let dir = pod_dir(root_dir, uid)
            .join("volumes/kubernetes.io~empty-dir")
            .join(&volume.name);
        std::fs::create_dir_all(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
        // Writable by any container user, as upstream.
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777))
            .map_err(|e| format!("chmod {}: {e}", dir.display()))?;
        let medium = empty.medium.as_deref().unwrap_or_default();
        if medium == "Memory" && !is_mount_point(&dir) {
            let size_limit = match &empty.size_limit {
                Some(q) => Some(
                    kubelet_primitives::quantity::parse_value(&q.0)
                        .map_err(|e| format!("sizeLimit: {e}"))?,
                ),
                None => None,
            };
            let options = match memory_medium_size(pod, size_limit, node.memory_bytes) {
                Some(bytes) => format!("mode=0777,size={bytes}"),
                None => "mode=0777".into(),
            };
            mount_fs("tmpfs", &dir, "tmpfs", &options)?;
        } else if medium.starts_with("HugePages") && !is_mount_point(&dir) {
            let option = hugepages_mount_option(pod, medium)?;
            mount_fs("nodev", &dir, "hugetlbfs", &option)?;
        } else if !matches!(medium, "" | "Memory") && !medium.starts_with("HugePages") {
            return Err(format!("unknown emptyDir medium {medium:?}"));
        }
        return Ok(dir);
    }
    if let Some(host) = &volume.host_path {
        let path = PathBuf::from(&host.path);
        check_host_path(&path, host.type_.as_deref().unwrap_or(""))?;
        return Ok(path);
    }
    Err(
        "volume type is not supported in standalone mode (emptyDir, hostPath and downwardAPI are)"
            .into(),
    )
}

/// The size of a memory-backed emptyDir (upstream SizeMemoryBackedVolumes): node
/// allocatable memory, or the pod's memory limit when that is smaller, or the volume's
/// `sizeLimit` when that is smaller still. `None` (the kernel's default, half the RAM)
/// only when none of them is known.
pub fn memory_medium_size(pod: &Pod, size_limit: Option<i128>, node_memory: i128) -> Option<i128> {
    let mut size = (node_memory > 0).then_some(node_memory);
    for candidate in [crate::cm::pod_memory_limit(pod), size_limit] {
        if let Some(c) = candidate.filter(|c| *c > 0)
            && size.is_none_or(|s| c <= s)
        {
            size = Some(c);
        }
    }
    size
}

/// The `pagesize=` option of a HugePages emptyDir (upstream getPageSizeMountOption):
/// `HugePages-<size>` names the size, which some container must request; plain
/// `HugePages` takes the one size the containers request.
pub fn hugepages_mount_option(pod: &Pod, medium: &str) -> Result<String, String> {
    let wanted = match medium.strip_prefix("HugePages-") {
        Some(size) => Some(
            kubelet_primitives::quantity::parse_value(size)
                .ok()
                .filter(|b| *b > 0)
                .ok_or_else(|| format!("invalid huge page size in medium {medium:?}"))?,
        ),
        None if medium == "HugePages" => None,
        None => return Err(format!("unknown emptyDir medium {medium:?}")),
    };
    let spec = pod.spec.as_ref();
    let containers = spec.into_iter().flat_map(|s| {
        s.containers
            .iter()
            .chain(s.init_containers.iter().flatten())
    });
    let mut found: Option<(i128, String)> = None;
    for c in containers {
        let res = c.resources.as_ref();
        let names = res
            .into_iter()
            .flat_map(|r| r.requests.iter().flatten().chain(r.limits.iter().flatten()))
            .map(|(k, _)| k);
        for name in names {
            let Some(size) = node::hugepage_size_of(name) else {
                continue;
            };
            let text = name.trim_start_matches("hugepages-").to_string();
            match wanted {
                Some(w) if w == size => found = Some((size, text)),
                Some(_) => {}
                None => match &found {
                    Some((s, _)) if *s != size => {
                        return Err(format!(
                            "medium: {medium} can't be used if container requests multiple huge page sizes"
                        ));
                    }
                    _ => found = Some((size, text)),
                },
            }
        }
    }
    found
        .map(|(_, text)| format!("pagesize={text}"))
        .ok_or_else(|| {
            format!(
                "medium {medium}: hugePages storage requested, but there is no resource request for huge pages"
            )
        })
}

/// `key="value"` lines sorted by key, as upstream formats labels and annotations.
fn format_map(map: Option<&std::collections::BTreeMap<String, String>>) -> String {
    map.into_iter()
        .flatten()
        .map(|(k, v)| format!("{k}={}", serde_json::to_string(v).unwrap_or_default()))
        .collect::<Vec<_>>()
        .join("\n")
}

pub(crate) fn downward_payload(
    pod: &Pod,
    source: &DownwardAPIVolumeSource,
    node: &NodeAllocatable,
) -> Result<std::collections::BTreeMap<String, atomic_writer::FileProjection>, String> {
    let default_mode = source.default_mode.unwrap_or(0o644) as u32;
    let mut payload = std::collections::BTreeMap::new();
    for item in source.items.iter().flatten() {
        let data = if let Some(field) = &item.field_ref {
            match field.field_path.as_str() {
                "metadata.labels" => format_map(pod.metadata.labels.as_ref()),
                "metadata.annotations" => format_map(pod.metadata.annotations.as_ref()),
                path => {
                    let ctx = crate::runtime::envvars::EnvContext {
                        node_name: "",
                        pod_ips: &[],
                        host_ips: &[],
                        api: None,
                        node,
                    };
                    crate::runtime::envvars::field_value(pod, path, &ctx).ok_or_else(|| {
                        format!("item {:?}: unsupported fieldRef {path:?}", item.path)
                    })?
                }
            }
        } else if let Some(res) = &item.resource_field_ref {
            let name = res.container_name.as_deref().unwrap_or_default();
            let container = pod
                .spec
                .iter()
                .flat_map(|s| {
                    s.containers
                        .iter()
                        .chain(s.init_containers.iter().flatten())
                })
                .find(|c| c.name == name)
                .ok_or_else(|| format!("item {:?}: unknown container {name:?}", item.path))?;
            // Volumes default every named container's unset limits to the node's.
            crate::cm::resource_field::resource_field_value(
                container,
                &res.resource,
                res.divisor.as_ref().map(|d| d.0.as_str()),
                Some(node),
            )
            .map_err(|e| format!("item {:?}: {e}", item.path))?
        } else {
            return Err(format!(
                "item {:?}: needs fieldRef or resourceFieldRef",
                item.path
            ));
        };
        let mode = item.mode.map(|m| m as u32).unwrap_or(default_mode);
        payload.insert(
            item.path.clone(),
            atomic_writer::FileProjection {
                data: data.into_bytes(),
                mode,
            },
        );
    }
    Ok(payload)
}

/// hostPath `type` checks (upstream hostpath plugin).
pub fn check_host_path(path: &Path, kind: &str) -> Result<(), String> {
    let meta = std::fs::metadata(path);
    let shown = path.display();
    let want = |ok: bool, what: &str| {
        if ok {
            Ok(())
        } else {
            Err(format!(
                "hostPath type check failed: {shown} is not a {what}"
            ))
        }
    };
    match kind {
        "" => Ok(()),
        "DirectoryOrCreate" => {
            if meta.is_err() {
                std::fs::create_dir_all(path).map_err(|e| format!("creating {shown}: {e}"))?;
                std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
                    .map_err(|e| e.to_string())?;
                return Ok(());
            }
            want(meta.map(|m| m.is_dir()).unwrap_or(false), "directory")
        }
        "FileOrCreate" => {
            if meta.is_err() {
                if let Some(parent) = path.parent() {
                    std::fs::create_dir_all(parent)
                        .map_err(|e| format!("creating {}: {e}", parent.display()))?;
                }
                std::fs::File::create(path).map_err(|e| format!("creating {shown}: {e}"))?;
                std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644))
                    .map_err(|e| e.to_string())?;
                return Ok(());
            }
            want(meta.map(|m| m.is_file()).unwrap_or(false), "file")
        }
        other => {
            let m =
                meta.map_err(|_| format!("hostPath type check failed: {shown} does not exist"))?;
            let ft = m.file_type();
            match other {
                "Directory" => want(ft.is_dir(), "directory"),
                "File" => want(ft.is_file(), "file"),
                "Socket" => want(ft.is_socket(), "socket"),
                "CharDevice" => want(ft.is_char_device(), "character device"),
                "BlockDevice" => want(ft.is_block_device(), "block device"),
                _ => Err(format!("invalid hostPath type {other:?}")),
            }
        }
    }
}

/// The host path of a volumeMount, with `subPath` checked to stay inside the volume
/// (no absolute path, no `..`, no symlink leading out).
pub fn mount_source(
    paths: &VolumePaths,
    mount: &VolumeMount,
    sub_path: Option<&str>,
) -> Result<PathBuf, String> {
    let base = paths
        .get(&mount.name)
        .ok_or_else(|| format!("volumeMount {:?}: no volume of that name", mount.name))?;
    let Some(sub) = sub_path.filter(|s| !s.is_empty()) else {
        return Ok(base.clone());
    };
    let rel = Path::new(sub);
    if rel
        .components()
        .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir))
    {
        return Err(format!(
            "subPath {sub:?} must be a relative path without '..'"
        ));
    }
    let full = base.join(rel);
    if !full.exists() {
        std::fs::create_dir_all(&full)
            .map_err(|e| format!("creating subPath {}: {e}", full.display()))?;
        std::fs::set_permissions(&full, std::fs::Permissions::from_mode(0o777))
            .map_err(|e| e.to_string())?;
    }
    let real = full
        .canonicalize()
        .map_err(|e| format!("subPath {sub:?}: {e}"))?;
    let real_base = base
        .canonicalize()
        .map_err(|e| format!("volume {:?}: {e}", mount.name))?;
    if !real.starts_with(&real_base) {
        return Err(format!("subPath {sub:?} resolves outside the volume"));
    }
    Ok(real)
}

/// The file a container's termination message is written to, created empty.
pub fn termination_message_file(
    root_dir: &Path,
    uid: &str,
    container: &str,
    restart_count: u32,
) -> Result<PathBuf, String> {
    let dir = pod_dir(root_dir, uid).join("containers").join(container);
    std::fs::create_dir_all(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    let file = dir.join(format!("termination-{restart_count}"));
    std::fs::File::create(&file).map_err(|e| format!("creating {}: {e}", file.display()))?;
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o666))
        .map_err(|e| e.to_string())?;
    Ok(file)
}

fn mount_points_under(dir: &Path) -> Vec<PathBuf> {
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return Vec::new();
    };
    let mut points: Vec<PathBuf> = info
        .lines()
        .filter_map(|l| l.split_whitespace().nth(4))
        .map(|p| PathBuf::from(p.replace("\\040", " ")))
        .filter(|p| p.starts_with(dir))
        .collect();
    // Deepest first.
    points.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    points
}

fn is_mount_point(dir: &Path) -> bool {
    mount_points_under(dir).iter().any(|p| p == dir)
}

/// Mount a `fstype` filesystem (tmpfs, hugetlbfs) at `dir`, nosuid and nodev.
fn mount_fs(source: &str, dir: &Path, fstype: &str, options: &str) -> Result<(), String> {
    let cstr = |s: &[u8]| std::ffi::CString::new(s).map_err(|e| e.to_string());
    let target = cstr(dir.as_os_str().as_encoded_bytes())?;
    let source_c = cstr(source.as_bytes())?;
    let fstype_c = cstr(fstype.as_bytes())?;
    let data = cstr(options.as_bytes())?;
    // SAFETY: every pointer is a valid NUL-terminated string that outlives the call.
    let rc = unsafe {
        libc::mount(
            source_c.as_ptr(),
            target.as_ptr(),
            fstype_c.as_ptr(),
            libc::MS_NOSUID | libc::MS_NODEV,
            data.as_ptr().cast(),
        )
    };
    if rc != 0 {
        return Err(format!(
            "mounting {fstype} ({options}) at {}: {}",
            dir.display(),
            std::io::Error::last_os_error()
        ));
    }
    Ok(())
}

/// Remove the pod's directory. Mounts inside it are unmounted first; if one cannot be,
/// nothing is deleted (deleting through a mount could destroy data outside the pod).
pub fn cleanup_pod_dir(root_dir: &Path, uid: &str) -> Result<(), String> {
    if uid.is_empty() || uid.contains('/') || uid == ".." || uid == "." {
        return Err(format!("refusing to clean pod dir for uid {uid:?}"));
    }
    let dir = pod_dir(root_dir, uid);
    if !dir.exists() {
        return Ok(());
    }
    for point in mount_points_under(&dir) {
        let c = std::ffi::CString::new(point.as_os_str().as_encoded_bytes())
            .map_err(|e| e.to_string())?;
        // SAFETY: valid NUL-terminated path.
        if unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) } != 0 {
            return Err(format!(
                "unmounting {}: {}",
                point.display(),
                std::io::Error::last_os_error()
            ));
        }
    }
    if !mount_points_under(&dir).is_empty() {
        return Err(format!("{} still has mounts; left in place", dir.display()));
    }
    std::fs::remove_dir_all(&dir).map_err(|e| format!("removing {}: {e}", dir.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_path_types() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path().join("made");
        check_host_path(&d, "DirectoryOrCreate").unwrap();
        assert!(d.is_dir());
        check_host_path(&d, "Directory").unwrap();
        assert!(
            check_host_path(&d, "File")
                .unwrap_err()
                .contains("not a file")
        );
        let f = tmp.path().join("sub/file");
        check_host_path(&f, "FileOrCreate").unwrap();
        assert!(f.is_file());
        assert!(
            check_host_path(&f, "Socket")
                .unwrap_err()
                .contains("not a socket")
        );
        assert!(
            check_host_path(&tmp.path().join("nope"), "Directory")
                .unwrap_err()
                .contains("does not exist")
        );
        assert!(
            check_host_path(&d, "Weird")
                .unwrap_err()
                .contains("invalid hostPath type")
        );
    }

    #[test]
    fn sub_path_cannot_escape() {
        let tmp = tempfile::tempdir().unwrap();
        let vol = tmp.path().join("vol");
        std::fs::create_dir_all(&vol).unwrap();
        std::os::unix::fs::symlink("/etc", vol.join("out")).unwrap();
        let paths = VolumePaths::from([("v".to_string(), vol.clone())]);
        let m = VolumeMount {
            name: "v".into(),
            mount_path: "/x".into(),
            ..Default::default()
        };
        assert!(mount_source(&paths, &m, Some("../x")).is_err());
        assert!(mount_source(&paths, &m, Some("/abs")).is_err());
        assert!(
            mount_source(&paths, &m, Some("out"))
                .unwrap_err()
                .contains("outside")
        );
        let ok = mount_source(&paths, &m, Some("a/b")).unwrap();
        assert!(ok.ends_with("vol/a/b") && ok.is_dir());
    }

    fn pod_with_container(resources: serde_json::Value) -> Pod {
        serde_json::from_value(serde_json::json!({
            "metadata": {"uid": "u1"},
            "spec": {"containers": [{"name": "c", "resources": resources}]}
        }))
        .unwrap()
    }

    #[test]
    fn memory_medium_sizes_as_upstream() {
        let best_effort = pod_with_container(serde_json::json!({}));
        let limited = pod_with_container(serde_json::json!({"limits": {"memory": "64Mi"}}));
        let gib = 1i128 << 30;
        // Node allocatable by default, the pod limit when smaller, sizeLimit when smaller still.
        assert_eq!(memory_medium_size(&best_effort, None, gib), Some(gib));
        assert_eq!(memory_medium_size(&limited, None, gib), Some(64 << 20));
        assert_eq!(
            memory_medium_size(&limited, Some(16 << 20), gib),
            Some(16 << 20)
        );
        // A sizeLimit over what the pod may use is ignored.
        assert_eq!(
            memory_medium_size(&limited, Some(2 * gib), gib),
            Some(64 << 20)
        );
        assert_eq!(
            memory_medium_size(&best_effort, Some(2 * gib), gib),
            Some(gib)
        );
        // Without node facts only what the pod says counts.
        assert_eq!(memory_medium_size(&best_effort, None, 0), None);
        assert_eq!(
            memory_medium_size(&best_effort, Some(16 << 20), 0),
            Some(16 << 20)
        );
    }

    #[test]
    fn hugepages_medium_page_size() {
        let two_mi = pod_with_container(
            serde_json::json!({"limits": {"hugepages-2Mi": "4Mi", "memory": "8Mi"}}),
        );
        assert_eq!(
            hugepages_mount_option(&two_mi, "HugePages").unwrap(),
            "pagesize=2Mi"
        );
        assert_eq!(
            hugepages_mount_option(&two_mi, "HugePages-2Mi").unwrap(),
            "pagesize=2Mi"
        );
        assert!(
            hugepages_mount_option(&two_mi, "HugePages-1Gi")
                .unwrap_err()
                .contains("no resource request for huge pages")
        );
        let both = pod_with_container(
            serde_json::json!({"limits": {"hugepages-2Mi": "4Mi", "hugepages-1Gi": "1Gi"}}),
        );
        assert!(
            hugepages_mount_option(&both, "HugePages")
                .unwrap_err()
                .contains("multiple huge page sizes")
        );
        assert_eq!(
            hugepages_mount_option(&both, "HugePages-1Gi").unwrap(),
            "pagesize=1Gi"
        );
        let none = pod_with_container(serde_json::json!({}));
        assert!(hugepages_mount_option(&none, "HugePages").is_err());
    }

    #[test]
    fn downward_api_resource_items_default_to_node_allocatable() {
        let pod = pod_with_container(serde_json::json!({"requests": {"cpu": "250m"}}));
        let source: DownwardAPIVolumeSource = serde_json::from_value(serde_json::json!({"items": [
            {"path": "cpu_limit", "resourceFieldRef": {"containerName": "c", "resource": "limits.cpu", "divisor": "1m"}},
            {"path": "mem_limit", "resourceFieldRef": {"containerName": "c", "resource": "limits.memory", "divisor": "1Mi"}},
            {"path": "cpu_request", "resourceFieldRef": {"containerName": "c", "resource": "requests.cpu", "divisor": "1m"}}
        ]}))
        .unwrap();
        let node = NodeAllocatable {
            cpu_milli: 1900,
            memory_bytes: 3 << 30,
            ..Default::default()
        };
        let files = downward_payload(&pod, &source, &node).unwrap();
        let text = |k: &str| String::from_utf8(files[k].data.clone()).unwrap();
        assert_eq!(text("cpu_limit"), "1900");
        assert_eq!(text("mem_limit"), "3072");
        assert_eq!(text("cpu_request"), "250");
    }

    #[test]
    fn cleanup_removes_only_the_pod_dir() {
        let tmp = tempfile::tempdir().unwrap();
        let keep = tmp.path().join("pods/other");
        std::fs::create_dir_all(&keep).unwrap();
        let pod = Pod {
            metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
                uid: Some("u1".into()),
                ..Default::default()
            },
            spec: Some(k8s_openapi::api::core::v1::PodSpec {
                volumes: Some(vec![Volume {
                    name: "scratch".into(),
                    empty_dir: Some(Default::default()),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            ..Default::default()
        };
        let paths = prepare(tmp.path(), &pod).unwrap();
        assert!(paths["scratch"].is_dir());
        cleanup_pod_dir(tmp.path(), "u1").unwrap();
        assert!(!pod_dir(tmp.path(), "u1").exists());
        assert!(keep.exists());
        assert!(cleanup_pod_dir(tmp.path(), "..").is_err());
    }
}
