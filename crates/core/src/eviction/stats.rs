//! What each pod uses, for ranking and for the local storage limits: container working
//! sets and writable layers from CRI `ListContainerStats` (only this node's containers),
//! log files and local volumes measured with `du`, processes from the pod's pids cgroup.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use k8s_cri::v1 as cri;
use k8s_openapi::api::core::v1::{Pod, Volume};

use super::fs::{Usage, du};
use super::rank::PodUsage;
use super::signals::cgroup_pids;
use crate::cm::CgroupLayout;
use crate::runtime::cri::{CriClient, CriError};
use crate::runtime::labels;
use crate::runtime::sandbox::pod_log_dir;
use crate::volume::pod_dir;

/// Per-container usage, for the container ephemeral-storage limit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ContainerUsage {
    pub memory: i128,
    pub rootfs: Usage,
    pub logs: Usage,
}

/// Everything measured about one pod.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PodStats {
    pub total: PodUsage,
    pub containers: HashMap<String, ContainerUsage>,
    /// Every emptyDir (any medium), by volume name.
    pub empty_dirs: HashMap<String, Usage>,
}

/// Where pod data lives on this node.
#[derive(Debug, Clone)]
pub struct PodPaths {
    pub root_dir: PathBuf,
    pub pod_logs_dir: PathBuf,
    pub cgroup_dir: PathBuf,
    pub cgroups: CgroupLayout,
}

/// Volumes whose content is local ephemeral storage (upstream IsLocalEphemeralVolume).
pub fn is_local_ephemeral(v: &Volume) -> bool {
    v.git_repo.is_some()
        || v.config_map.is_some()
        || v.empty_dir
            .as_ref()
            .is_some_and(|e| e.medium.as_deref().unwrap_or("").is_empty())
}

fn volume_dir(root: &Path, uid: &str, v: &Volume) -> PathBuf {
    let plugin = if v.empty_dir.is_some() {
        "kubernetes.io~empty-dir"
    } else if v.config_map.is_some() {
        "kubernetes.io~configmap"
    } else {
        "kubernetes.io~git-repo"
    };
    pod_dir(root, uid)
        .join("volumes")
        .join(plugin)
        .join(&v.name)
}

/// The pod cgroup relative to a hierarchy root (cgroupfs and systemd drivers).
fn pod_cgroup_path(layout: &CgroupLayout, pod: &Pod) -> String {
    let name = layout.pod_cgroup(pod);
    if !layout.systemd {
        return name;
    }
    // kubepods-burstable-pod<uid>.slice lives in kubepods.slice/kubepods-burstable.slice.
    let stem = name.trim_end_matches(".slice");
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

/// Measure every pod in `pods`. Runtime errors leave the CRI part out (the pod then has
/// log and volume usage only); filesystem walks run on a blocking thread.
pub async fn collect(
    cri: &CriClient,
    node_name: &str,
    paths: &PodPaths,
    pods: &[Arc<Pod>],
) -> Result<HashMap<String, PodStats>, CriError> {
    let filter = cri::ContainerStatsFilter {
        label_selector: [(labels::MANAGED_BY_NODE.to_string(), node_name.to_string())].into(),
        ..Default::default()
    };
    let stats = cri.list_container_stats(Some(filter)).await?;
    let mut runtime: HashMap<String, HashMap<String, ContainerUsage>> = HashMap::new();
    for s in stats {
        let Some(attrs) = s.attributes.as_ref() else {
            continue;
        };
        let (Some(uid), Some(name)) = (
            attrs.labels.get(labels::POD_UID),
            attrs.labels.get(labels::CONTAINER_NAME),
        ) else {
            continue;
        };
        let entry = runtime
            .entry(uid.clone())
            .or_default()
            .entry(name.clone())
            .or_default();
        if let Some(ws) = s.memory.as_ref().and_then(|m| m.working_set_bytes.as_ref()) {
            entry.memory += ws.value as i128;
        }
        if let Some(w) = s.writable_layer.as_ref() {
            entry.rootfs.bytes += w.used_bytes.as_ref().map_or(0, |v| v.value as i128);
            entry.rootfs.inodes += w.inodes_used.as_ref().map_or(0, |v| v.value as i128);
        }
    }
    let paths = paths.clone();
    let pods: Vec<Arc<Pod>> = pods.to_vec();
    let measured = tokio::task::spawn_blocking(move || {
        pods.iter()
            .map(|pod| {
                let uid = pod.metadata.uid.clone().unwrap_or_default();
                let containers = runtime.remove(&uid).unwrap_or_default();
                (uid, measure_pod(&paths, pod, containers))
            })
            .collect::<HashMap<_, _>>()
    })
    .await
    .unwrap_or_default();
    Ok(measured)
}

fn measure_pod(
    paths: &PodPaths,
    pod: &Pod,
    mut containers: HashMap<String, ContainerUsage>,
) -> PodStats {
    let uid = pod.metadata.uid.clone().unwrap_or_default();
    let log_dir = pod_log_dir(&paths.pod_logs_dir, pod);
    if let Ok(entries) = std::fs::read_dir(&log_dir) {
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            containers.entry(name).or_default().logs = du(&entry.path());
        }
    }
    let mut stats = PodStats::default();
    for v in pod.spec.iter().flat_map(|s| s.volumes.iter().flatten()) {
        let local = is_local_ephemeral(v);
        if v.empty_dir.is_none() && !local {
            continue;
        }
        let usage = du(&volume_dir(&paths.root_dir, &uid, v));
        if v.empty_dir.is_some() {
            stats.empty_dirs.insert(v.name.clone(), usage);
        }
        if local {
            stats.total.volumes_bytes += usage.bytes;
            stats.total.volumes_inodes += usage.inodes;
        }
    }
    for c in containers.values() {
        stats.total.memory += c.memory;
        stats.total.rootfs_bytes += c.rootfs.bytes;
        stats.total.rootfs_inodes += c.rootfs.inodes;
        stats.total.logs_bytes += c.logs.bytes;
        stats.total.logs_inodes += c.logs.inodes;
    }
    stats.total.processes =
        cgroup_pids(&paths.cgroup_dir, &pod_cgroup_path(&paths.cgroups, pod)).unwrap_or(0);
    stats.containers = containers;
    stats
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{EmptyDirVolumeSource, PodSpec};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    #[test]
    fn measures_logs_and_volumes_from_disk() {
        let dir = tempfile::tempdir().unwrap();
        let paths = PodPaths {
            root_dir: dir.path().join("root"),
            pod_logs_dir: dir.path().join("logs"),
            cgroup_dir: dir.path().join("cg"),
            cgroups: CgroupLayout {
                per_qos: true,
                root: String::new(),
                systemd: false,
                host: Default::default(),
            },
        };
        let pod = Pod {
            metadata: ObjectMeta {
                name: Some("p".into()),
                namespace: Some("default".into()),
                uid: Some("u1".into()),
                ..Default::default()
            },
            spec: Some(PodSpec {
                volumes: Some(vec![
                    Volume {
                        name: "scratch".into(),
                        empty_dir: Some(EmptyDirVolumeSource::default()),
                        ..Default::default()
                    },
                    Volume {
                        name: "shm".into(),
                        empty_dir: Some(EmptyDirVolumeSource {
                            medium: Some("Memory".into()),
                            ..Default::default()
                        }),
                        ..Default::default()
                    },
                ]),
                ..Default::default()
            }),
            ..Default::default()
        };
        let vol = paths
            .root_dir
            .join("pods/u1/volumes/kubernetes.io~empty-dir");
        std::fs::create_dir_all(vol.join("scratch")).unwrap();
        std::fs::write(vol.join("scratch/data"), vec![0u8; 1 << 20]).unwrap();
        std::fs::create_dir_all(vol.join("shm")).unwrap();
        std::fs::write(vol.join("shm/data"), vec![0u8; 8192]).unwrap();
        let logs = paths.pod_logs_dir.join("default_p_u1/main");
        std::fs::create_dir_all(&logs).unwrap();
        std::fs::write(logs.join("0.log"), vec![b'x'; 100_000]).unwrap();
        let s = measure_pod(&paths, &pod, HashMap::new());
        assert!(s.empty_dirs["scratch"].bytes >= 1 << 20);
        assert!(s.empty_dirs["shm"].bytes >= 8192);
        // Only the disk-backed emptyDir counts as local ephemeral storage.
        assert_eq!(s.total.volumes_bytes, s.empty_dirs["scratch"].bytes);
        assert!(s.containers["main"].logs.bytes >= 100_000);
        assert_eq!(s.total.logs_bytes, s.containers["main"].logs.bytes);
    }

    #[test]
    fn systemd_pod_cgroup_path_is_nested() {
        let layout = CgroupLayout {
            per_qos: true,
            root: String::new(),
            systemd: true,
            host: Default::default(),
        };
        let pod = Pod {
            metadata: ObjectMeta {
                uid: Some("a-b".into()),
                ..Default::default()
            },
            spec: Some(PodSpec::default()),
            ..Default::default()
        };
        assert_eq!(
            pod_cgroup_path(&layout, &pod),
            "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-poda_b.slice"
        );
    }
}
